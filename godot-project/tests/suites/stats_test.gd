## Statistics: the server's and each peer's counters against known traffic, exactly; and the
## Performance monitors that show them in the editor's debugger.
extends TestSuite


func _quiet(s: WebSocketServer) -> void:
	s.heartbeat_interval = 0.0


func test_the_counts_match_known_traffic() -> void:
	var h := start_server(PackedStringArray(), _quiet)
	var echoed := [0]
	var a := await connected_client(h)
	var a_id: int = a[1]
	h.server.data_received.connect(func(id: int) -> void:
		if id != a_id:
			return  # b's messages stay unread
		var peer := h.server.get_peer(id)
		var data := peer.get_packet()
		if echoed[0] < 2:
			echoed[0] += 1
			peer.put_packet(data))
	for size in [10, 20, 30]:
		a[0].put_packet(PackedByteArray(range(size)))
	var ok: bool = await pump([h, a[0]], func() -> bool: return a[0].get_available_packet_count() == 2)
	check(ok, "two echoes back")
	var b := await connected_client(h)
	b[0].put_packet(PackedByteArray([1, 2, 3, 4, 5]))
	b[0].send_text("hello")
	ok = await pump([h, b[0]], func() -> bool: return h.count("data", b[1]) == 2)
	check(ok, "b's two messages arrived")
	var s := h.server.get_stats()
	check_eq(s["connections_open"], 2, "open")
	check_eq(s["connections_handshaking"], 0, "handshaking")
	check_eq(s["accepted_total"], 2, "accepted")
	check_eq(s["messages_in_total"], 5, "messages in")
	check_eq(s["bytes_in_total"], 70, "bytes in: 10 + 20 + 30 + 5 + 5")
	check_eq(s["messages_out_total"], 2, "messages out")
	check_eq(s["bytes_out_total"], 30, "bytes out: 10 + 20")
	check_eq(s["messages_queued_in"], 2, "b's unread messages")
	check_eq(s["bytes_queued_in"], 10, "b's unread bytes")
	check_eq(s["messages_queued_out"], 0, "nothing waiting to be written")
	check_eq(h.server.get_stat("bytes_in_total"), 70, "get_stat")
	var pa := h.server.get_peer(a_id).get_stats()
	check_eq([pa["messages_in"], pa["bytes_in"], pa["messages_out"], pa["bytes_out"]], [3, 60, 2, 30], "a's totals")
	check_eq([pa["messages_queued_in"], pa["messages_queued_out"]], [0, 0], "a's queues")
	check_eq(pa["round_trip_time"], -1.0, "no heartbeat, no round trip")
	check(pa["connected_time"] > 0.0 and pa["connected_time"] < 10.0, "connected time %f" % pa["connected_time"])
	var pb := h.server.get_peer(b[1]).get_stats()
	check_eq([pb["messages_in"], pb["bytes_in"], pb["messages_queued_in"], pb["bytes_queued_in"]], [2, 10, 2, 10], "b's")
	# Reading b's messages empties the queue.
	h.server.get_peer(b[1]).get_packet()
	h.server.get_peer(b[1]).get_packet()
	check_eq(h.server.get_stats()["messages_queued_in"], 0, "read")
	h.server.refuse_new_connections = true
	var c := client(h)
	ok = await pump([h, c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "refused")
	check_eq(h.server.get_stats()["refused_total"], 1, "refused counted")
	a[0].close()
	ok = await pump([h, a[0]], func() -> bool: return h.count("disconnected") == 1)
	check(ok, "a left")
	check_eq(h.server.get_stats()["connections_open"], 1, "one open")


func test_timeouts_and_heartbeat_drops_are_counted() -> void:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void:
		s.handshake_timeout = 0.3
		s.heartbeat_interval = 0.2)
	var idle := await raw_tcp(h)  # never sends its request
	var frozen := await raw_tcp(h)
	var head := await raw_upgrade(h, frozen)  # then never answers a ping
	check(head.begins_with("HTTP/1.1 101 "), "upgraded")
	var ok: bool = await pump([h], func() -> bool:
		var st := h.server.get_stats()
		return st["connections_handshaking"] == 1 and st["connections_open"] == 1, 2.0)
	check(ok, "one handshaking, one open: %s" % h.server.get_stats())
	ok = await pump([h], func() -> bool:
		var s := h.server.get_stats()
		return s["timed_out_total"] == 1 and s["heartbeat_dropped_total"] == 1, 3.0)
	check(ok, "one timed out, one dropped: %s" % h.server.get_stats())
	var s := h.server.get_stats()
	check_eq([s["connections_open"], s["connections_handshaking"]], [0, 0], "none left")
	idle.disconnect_from_host()


func test_monitors_show_the_statistics_under_distinct_names() -> void:
	expect_error("WebSocketServer.register_monitors: the monitor WebSocketServer alpha/connections_open exists already")
	expect_error("WebSocketServer.get_stat: no statistic \"nope\"")
	var h := start_server(PackedStringArray(), _quiet)
	var other := start_server(PackedStringArray(), _quiet)
	check_eq(h.server.register_monitors("alpha"), OK, "registered")
	check_eq(other.server.register_monitors("alpha"), ERR_ALREADY_EXISTS, "a name is taken once")
	check_eq(other.server.register_monitors(), OK, "the default name is distinct")
	var mine := "WebSocketServer %d/connections_open" % other.server.get_instance_id()
	check(Performance.has_custom_monitor(mine), "default name: %s" % mine)
	var c := await connected_client(h)
	check_eq(Performance.get_custom_monitor("WebSocketServer alpha/connections_open"), 1, "the monitor reads the server")
	check_eq(Performance.get_custom_monitor("WebSocketServer alpha/accepted_total"), 1, "accepted")
	check_eq(Performance.get_custom_monitor(mine), 0, "the other server's")
	check_eq(h.server.get_stat("nope"), 0, "unknown key")
	h.server.unregister_monitors()
	check(not Performance.has_custom_monitor("WebSocketServer alpha/connections_open"), "unregistered")
	# A freed server takes its monitors with it.
	var temp := new_server()
	check_eq(temp.register_monitors("temp"), OK, "registered")
	temp = null
	check(not Performance.has_custom_monitor("WebSocketServer temp/bytes_in_total"), "gone with the server")
	other.server.unregister_monitors()
	c[0].close()
