## Collects every error and warning Godot prints, so that each test can say which ones it expects
## (TestSuite.expect_error) and the runner can fail a test on any other.
class_name CaptureLogger
extends Logger

var _mutex := Mutex.new()
var _lines := PackedStringArray()


func _log_error(_function: String, _file: String, _line: int, code: String, rationale: String,
		_editor_notify: bool, error_type: int, _script_backtraces: Array[ScriptBacktrace]) -> void:
	var kind := "WARNING" if error_type == ERROR_TYPE_WARNING else "ERROR"
	var text := code if rationale.is_empty() else "%s: %s" % [code, rationale]
	_mutex.lock()
	_lines.append("%s %s" % [kind, text])
	_mutex.unlock()


func _log_message(_message: String, _error: bool) -> void:
	pass


## Everything captured since the last call.
func take() -> PackedStringArray:
	_mutex.lock()
	var out := _lines
	_lines = PackedStringArray()
	_mutex.unlock()
	return out


## How many lines captured since the last take() contain `substring` (without taking them).
func count(substring: String) -> int:
	_mutex.lock()
	var n := 0
	for line: String in _lines:
		if line.contains(substring):
			n += 1
	_mutex.unlock()
	return n
