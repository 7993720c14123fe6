## What the benchmark servers share: their command-line options, how they announce that they
## listen, and what they read about their own process from /proc (Linux).
class_name ProcStats
extends RefCounted


## CPU clock ticks (user + system) of the process, or of one thread with its stat file
## ("/proc/self/task/<tid>/stat").
static func cpu_ticks(path := "/proc/self/stat") -> int:
	var f := FileAccess.open(path, FileAccess.READ)
	if f == null:
		return 0
	var line := f.get_line()
	var fields := line.substr(line.rfind(")") + 2).split(" ")
	return int(fields[11]) + int(fields[12])


## Resident memory of the process, in KiB.
static func rss_kib() -> int:
	var f := FileAccess.open("/proc/self/status", FileAccess.READ)
	while f != null and not f.eof_reached():
		var line := f.get_line()
		if line.begins_with("VmRSS:"):
			return int(line.split(":")[1].strip_edges().split(" ")[0])
	return 0


## The value after `name` among the user arguments (after `--`), or `default`.
static func opt(name: String, default := "") -> String:
	var args := OS.get_cmdline_user_args()
	var i := args.find(name)
	return args[i + 1] if i >= 0 and i + 1 < args.size() else default


## After listen(): prints "LISTENING <port>" and starts calling `report` every `every` seconds, or
## prints "LISTEN FAILED" and quits. Returns whether the server listens.
static func started(node: Node, err: Error, port: int, every: float, report: Callable) -> bool:
	if err != OK:
		print("LISTEN FAILED %s" % error_string(err))
		node.get_tree().quit(1)
		return false
	print("LISTENING %d" % port)
	var timer := Timer.new()
	timer.wait_time = every
	timer.timeout.connect(report)
	node.add_child(timer)
	timer.start()
	return true
