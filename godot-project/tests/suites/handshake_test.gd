## Subprotocols, extra headers, the 101 response, and handshake_timeout.
extends TestSuite


func _try(h: ServerHarness, offered: PackedStringArray) -> WebSocketPeer:
	var c := client(h, "/", offered)
	await pump([h, c], func() -> bool:
		return c.get_ready_state() == WebSocketPeer.STATE_OPEN or c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	return c


## Waits on a condition rather than a time: a well-behaved client connects after the refused one;
## the server reports connections in the order they happened, so once the good one is reported,
## the refused one would have been reported before it.
func _check_no_connection_before_a_good_one(h: ServerHarness, protocols: PackedStringArray) -> void:
	var good := await _try(h, protocols)
	var ok: bool = await pump([h, good], func() -> bool: return h.count("connected") > 0)
	check(ok, "the well-behaved client connects")
	check_eq(h.count("connected"), 1, "only the well-behaved client is reported, not the refused one")


func test_subprotocol_first_match_in_the_clients_order() -> void:
	var h := start_server(PackedStringArray(["chat", "json"]))
	var c := await _try(h, PackedStringArray(["xml", "json", "chat"]))
	check_eq(c.get_ready_state(), WebSocketPeer.STATE_OPEN, "accepted")
	check_eq(c.get_selected_protocol(), "json", "client sees the chosen protocol")
	await pump([h, c], func() -> bool: return h.count("connected") == 1)
	check_eq(h.events[0][2], "json", "client_connected protocol")


func test_subprotocol_no_match_is_refused() -> void:
	expect_error("Invalid status code. Got: '400', expected '101'.")
	expect_error("Invalid response headers")
	var h := start_server(PackedStringArray(["chat"]))
	var c := await _try(h, PackedStringArray(["xml"]))
	check_eq(c.get_ready_state(), WebSocketPeer.STATE_CLOSED, "refused")
	await _check_no_connection_before_a_good_one(h, PackedStringArray(["chat"]))


func test_subprotocol_required_but_none_offered_is_refused() -> void:
	expect_error("Invalid status code. Got: '400', expected '101'.")
	expect_error("Invalid response headers")
	var h := start_server(PackedStringArray(["chat"]))
	var c := await _try(h, PackedStringArray())
	check_eq(c.get_ready_state(), WebSocketPeer.STATE_CLOSED, "refused")
	await _check_no_connection_before_a_good_one(h, PackedStringArray(["chat"]))


func test_no_subprotocols_on_either_side() -> void:
	var h := start_server()
	var c := await _try(h, PackedStringArray())
	check_eq(c.get_ready_state(), WebSocketPeer.STATE_OPEN, "accepted")
	check_eq(c.get_selected_protocol(), "", "no protocol")


func test_extra_headers_are_in_the_101() -> void:
	var h := start_server()
	h.server.set_extra_headers(PackedStringArray(["X-Game: demo", "Cache-Control: no-store"]))
	var t := await raw_tcp(h)
	var head := await raw_upgrade(h, t)
	check(head.begins_with("HTTP/1.1 101 Switching Protocols\r\n"), "101 status line: " + head)
	check(head.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "accept key")
	check(head.contains("\r\nX-Game: demo\r\n"), "first extra header")
	check(head.contains("\r\nCache-Control: no-store\r\n"), "second extra header")
	check(not head.contains("Sec-WebSocket-Protocol"), "no protocol header when none was asked")
	await pump([h, t], func() -> bool: return h.count("connected") == 1)
	check_eq(h.events[0][3], "/raw", "raw client connected")


func test_a_bad_request_gets_400_and_is_closed() -> void:
	var h := start_server()
	var t := await raw_tcp(h)
	t.put_data("GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_utf8_buffer())
	var head := await read_head(h, t)
	check(head.begins_with("HTTP/1.1 400 "), "400: " + head)
	var closed: bool = await pump([h, t], func() -> bool: return t.get_status() != StreamPeerTCP.STATUS_CONNECTED)
	check(closed, "connection closed after the refusal")
	check_eq(h.count("connected"), 0, "no client_connected")


func test_handshake_timeout_drops_a_silent_client() -> void:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.handshake_timeout = 0.5)
	check_eq(h.server.handshake_timeout, 0.5, "handshake_timeout set")
	var t := await raw_tcp(h)
	check_eq(t.get_status(), StreamPeerTCP.STATUS_CONNECTED, "TCP connected")
	var started := Time.get_ticks_msec()
	await pump_for([h, t], 0.25)
	check_eq(t.get_status(), StreamPeerTCP.STATUS_CONNECTED, "still connected before the timeout")
	var dropped: bool = await pump([h, t], func() -> bool: return t.get_status() != StreamPeerTCP.STATUS_CONNECTED, 3.0)
	var elapsed := Time.get_ticks_msec() - started
	check(dropped, "dropped after handshake_timeout")
	check(elapsed >= 450 and elapsed < 2000, "dropped after about 0.5 s (%d ms)" % elapsed)
	check_eq(h.events.size(), 0, "no signal for a client that never connected")


func test_handshake_timeout_does_not_apply_once_open() -> void:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.handshake_timeout = 0.3)
	var r := await connected_client(h)
	await pump_for([h, r[0]], 0.6)
	check_eq(r[0].get_ready_state(), WebSocketPeer.STATE_OPEN, "still open")
	check_eq(h.count("disconnected"), 0, "not disconnected")
