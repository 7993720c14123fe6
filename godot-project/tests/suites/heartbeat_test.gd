## The heartbeat: the server pings every client; Godot's WebSocketPeer answers while it is polled
## and stays, with its round trip measured; a client that never answers is dropped within about
## two intervals.
extends TestSuite


func _with_heartbeat(seconds: float) -> Callable:
	return func(s: WebSocketServer) -> void: s.heartbeat_interval = seconds


func test_a_quiet_healthy_client_stays_and_its_round_trip_is_measured() -> void:
	var h := start_server(PackedStringArray(), _with_heartbeat(0.2))
	var r := await connected_client(h)
	var peer := h.server.get_peer(r[1])
	check_eq(peer.get_round_trip_time(), -1.0, "no round trip before the first pong")
	# Five intervals of silence from the game and the client; the client only polls.
	await pump_for([h, r[0]], 1.0)
	check_eq(r[0].get_ready_state(), WebSocketPeer.STATE_OPEN, "still open")
	check_eq(h.count("disconnected"), 0, "not dropped")
	var rtt := peer.get_round_trip_time()
	check(rtt > 0.0 and rtt < 0.5, "round trip measured: %f s" % rtt)


func test_a_client_that_never_answers_is_dropped() -> void:
	var h := start_server(PackedStringArray(), _with_heartbeat(0.2))
	var t := await raw_tcp(h)
	var head := await raw_upgrade(h, t)
	check(head.begins_with("HTTP/1.1 101 "), "upgraded")
	var ok: bool = await pump([h, t], func() -> bool: return h.count("connected") == 1)
	check(ok, "connected")
	var started := Time.get_ticks_msec()
	# The raw client reads nothing and answers nothing, like a frozen one.
	ok = await pump([h], func() -> bool: return h.count("disconnected") == 1, 3.0)
	var elapsed := Time.get_ticks_msec() - started
	check(ok, "dropped")
	check(elapsed >= 300 and elapsed < 1000, "after about two intervals (%d ms)" % elapsed)
	check_eq(h.events.back()[2], false, "an unclean end")


func test_heartbeat_off_leaves_a_silent_client_alone() -> void:
	var h := start_server(PackedStringArray(), _with_heartbeat(0.0))
	check_eq(h.server.heartbeat_interval, 0.0, "0 turns it off")
	var t := await raw_tcp(h)
	await raw_upgrade(h, t)
	var ok: bool = await pump([h, t], func() -> bool: return h.count("connected") == 1)
	check(ok, "connected")
	await pump_for([h], 0.8)
	check_eq(h.count("disconnected"), 0, "not dropped")
	check_eq(t.get_available_bytes(), 0, "never pinged")


func test_the_default_is_20_seconds_and_bad_values_are_refused() -> void:
	expect_error("WebSocketServer: heartbeat_interval must be a number of seconds in (0, 86400], not -1 (or 0 to turn the heartbeat off)")
	var s := new_server()
	check_eq(s.heartbeat_interval, 20.0, "default")
	s.heartbeat_interval = -1.0
	check_eq(s.heartbeat_interval, 20.0, "unchanged")
