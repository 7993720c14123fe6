## What the benchmark servers read about their own process from /proc (Linux).
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
