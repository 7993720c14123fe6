## Base of every test suite: checks that record failures, and helpers that drive servers and
## clients frame by frame.
class_name TestSuite
extends Node

## Where the servers of this run do their socket work: the runner runs every suite once with
## WebSocketServer.IO_MODE_THREAD and once with IO_MODE_INLINE.
static var io_mode := WebSocketServer.IO_MODE_THREAD

var current_test := ""
var failures := PackedStringArray()
## Messages (substrings) the current test makes Godot print as errors or warnings; the runner
## checks that each appears and that nothing else does.
var expected_errors := PackedStringArray()
## The runner's logger, to count what a test made Godot print.
var logger: CaptureLogger
## Servers, clients and harnesses made by the current test; closed by cleanup().
var _owned: Array = []


## Why the current test does not apply in this run (set by `skip`); the runner reports it as
## skipped, not passed.
var skipped := ""


## Marks the current test as not applying in this run (it must return right after).
func skip(why: String) -> void:
	skipped = why


## Announces an error or warning this test causes on purpose (a substring of it).
func expect_error(substring: String) -> void:
	expected_errors.append(substring)


func check(condition: bool, what: String) -> bool:
	if not condition:
		var msg := "%s: %s" % [current_test, what]
		failures.append(msg)
		push_error("FAILED " + msg)
	return condition


## Compares type and value (GDScript's == errors on some mixed types).
func check_eq(actual: Variant, expected: Variant, what: String) -> bool:
	var same: bool = typeof(actual) == typeof(expected) and actual == expected
	return check(same, "%s: expected %s, got %s" % [what, var_to_str(expected), var_to_str(actual)])


## Polls every object in `pollables` once a frame until `condition` holds or `timeout` passes.
func pump(pollables: Array, condition: Callable, timeout := 5.0) -> bool:
	var deadline := Time.get_ticks_msec() + int(timeout * 1000.0)
	while true:
		for p: Object in pollables:
			p.poll()
		if condition.call():
			return true
		if Time.get_ticks_msec() > deadline:
			return false
		await get_tree().process_frame
	return false


## Polls for `seconds` regardless.
func pump_for(pollables: Array, seconds: float) -> void:
	await pump(pollables, func() -> bool: return false, seconds)


## A listening server on a free loopback port, with its signals recorded.
func start_server(protocols := PackedStringArray(), configure := Callable(), gd_mp_api := false) -> ServerHarness:
	var h := ServerHarness.new()
	h.server.bind_ip = "127.0.0.1"
	h.server.io_mode = io_mode
	if configure.is_valid():
		configure.call(h.server)
	var err := h.server.listen(0, protocols, gd_mp_api)
	check_eq(err, OK, "listen")
	h.port = h.server.get_local_port()
	_owned.append(h)
	return h


## A new server in this run's I/O mode (not listening, not owned: for tests of one server's API).
func new_server() -> WebSocketServer:
	var s := WebSocketServer.new()
	s.io_mode = io_mode
	return s


## Whether this run's servers do their socket work inside poll().
func inline_io() -> bool:
	return io_mode == WebSocketServer.IO_MODE_INLINE


## A Godot WebSocketPeer connecting to `h`.
func client(h: ServerHarness, path := "/", protocols := PackedStringArray()) -> WebSocketPeer:
	var c := WebSocketPeer.new()
	c.supported_protocols = protocols
	check_eq(c.connect_to_url(h.url(path)), OK, "connect_to_url")
	_owned.append(c)
	return c


## Connects a client and waits until both sides see it; returns [client, id].
func connected_client(h: ServerHarness, path := "/") -> Array:
	var c := client(h, path)
	var before := h.count("connected")
	var ok: bool = await pump([h, c], func() -> bool:
		return c.get_ready_state() == WebSocketPeer.STATE_OPEN and h.count("connected") > before)
	check(ok, "client connects")
	var ids := h.ids("connected")
	return [c, ids[ids.size() - 1] if ids.size() > 0 else -1]


func cleanup() -> void:
	for o: Object in _owned:
		if o is ServerHarness:
			o.server.stop()
			# Handlers a test connected may hold the harness (a reference cycle): let go of them.
			o.decide = Callable()
			for sig: Dictionary in o.server.get_signal_list():
				for c: Dictionary in o.server.get_signal_connection_list(sig["name"]):
					o.server.disconnect(sig["name"], c["callable"])
		elif o is WebSocketPeer:
			o.close()
		elif o is StreamPeerTCP:
			o.disconnect_from_host()
	_owned.clear()
	await get_tree().process_frame


## A raw TCP connection to `h`, once connected.
func raw_tcp(h: ServerHarness, host := "127.0.0.1") -> StreamPeerTCP:
	var t := StreamPeerTCP.new()
	_owned.append(t)
	check_eq(t.connect_to_host(host, h.port), OK, "connect_to_host")
	await pump([h, t], func() -> bool: return t.get_status() != StreamPeerTCP.STATUS_CONNECTING, 3.0)
	return t


## Sends an upgrade request by hand and returns the response head (up to the blank line).
func raw_upgrade(h: ServerHarness, t: StreamPeerTCP, extra := "", path := "/raw") -> String:
	var req := "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % [path, extra]
	t.put_data(req.to_utf8_buffer())
	return await read_head(h, t)


## Reads from `t` until a blank line (an HTTP head) or until it is closed.
func read_head(h: ServerHarness, t: StreamPeerTCP) -> String:
	var acc: Array = [""]
	await pump([h, t], func() -> bool:
		var n := t.get_available_bytes()
		if n > 0:
			acc[0] += t.get_utf8_string(n)
		return acc[0].contains("\r\n\r\n") or t.get_status() != StreamPeerTCP.STATUS_CONNECTED, 3.0)
	return acc[0]
