## Headless test runner: runs every `test_*` method of every suite in res://tests/suites/, in file
## order, awaiting each; the whole set twice, once with each WebSocketServer.io_mode (thread, then
## inline; TEST_IO_MODE=thread or inline runs one). Prints one line per test and a closing "N passed, M failed, K skipped" line (a test that does not apply to a run calls skip()); exits
## non-zero if any check failed. Run by scripts/test.sh, which also fails the run on SCRIPT ERROR,
## a failed extension load, leaked objects, or a Rust panic.
##
## Every error and warning printed while a test runs is captured: each one the test announced
## with `expect_error` must appear, and any other fails the test.
extends SceneTree

const SUITES_DIR := "res://tests/suites/"


func _initialize() -> void:
	# Unpaced frames: the suites wait on real sockets, not on frame timing.
	OS.low_processor_usage_mode_sleep_usec = 1000
	_run.call_deferred()


func _run() -> void:
	if not ClassDB.class_exists(&"WebSocketServer"):
		push_error("The WebSocketServer extension is not loaded")
		quit(2)
		return
	var logger := CaptureLogger.new()
	OS.add_logger(logger)
	var only := OS.get_environment("TEST_FILTER")
	var passed := 0
	var failed := 0
	var skipped := 0
	var files := Array(DirAccess.get_files_at(SUITES_DIR))
	files.sort()
	var modes := {"thread": WebSocketServer.IO_MODE_THREAD, "inline": WebSocketServer.IO_MODE_INLINE}
	var only_mode := OS.get_environment("TEST_IO_MODE")
	for mode: String in modes:
		if only_mode != "" and only_mode != mode:
			continue
		TestSuite.io_mode = modes[mode]
		print("== io_mode %s" % mode)
		for file: String in files:
			if not file.ends_with("_test.gd"):
				continue
			var script: GDScript = load(SUITES_DIR + file)
			if script == null or not script.can_instantiate():
				# A suite that does not even parse fails the run at once (its error is printed above).
				failed += 1
				print("  FAIL  %s does not load" % file)
				continue
			var suite: TestSuite = script.new()
			suite.logger = logger
			root.add_child(suite)
			for method: Dictionary in suite.get_method_list():
				var name: String = method["name"]
				if not name.begins_with("test_") or (only != "" and not name.contains(only)):
					continue
				suite.current_test = name
				suite.skipped = ""
				suite.expected_errors.clear()
				logger.take()
				var before := suite.failures.size()
				var started := Time.get_ticks_msec()
				await suite.call(name)
				await suite.cleanup()
				_check_errors(suite, logger.take())
				var ms := Time.get_ticks_msec() - started
				if suite.failures.size() == before and suite.skipped != "":
					skipped += 1
					print("  skip  [%s] %s.%s: %s" % [mode, file.get_basename(), name, suite.skipped])
				elif suite.failures.size() == before:
					passed += 1
					print("  ok    [%s] %s.%s (%d ms)" % [mode, file.get_basename(), name, ms])
				else:
					failed += 1
					print("  FAIL  [%s] %s.%s (%d ms)" % [mode, file.get_basename(), name, ms])
					for i in range(before, suite.failures.size()):
						print("        " + suite.failures[i])
			suite.free()
	OS.remove_logger(logger)
	print("%d passed, %d failed, %d skipped" % [passed, failed, skipped])
	quit(1 if failed > 0 or passed == 0 else 0)


## Each expected message printed at least once; nothing else printed.
func _check_errors(suite: TestSuite, lines: PackedStringArray) -> void:
	var seen := {}
	for line: String in lines:
		if line.begins_with("ERROR FAILED "):
			continue  # a failed check, already recorded
		var matched := false
		for expected: String in suite.expected_errors:
			if line.contains(expected):
				seen[expected] = true
				matched = true
		if not matched:
			suite.failures.append("%s: unexpected %s" % [suite.current_test, line])
	for expected: String in suite.expected_errors:
		if not seen.has(expected):
			suite.failures.append("%s: expected message not printed: %s" % [suite.current_test, expected])
