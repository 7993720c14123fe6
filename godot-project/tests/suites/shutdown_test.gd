## The graceful shutdown: shutdown(), is_shutting_down(), shutdown_finished, with Godot's own
## clients (WebSocketPeer, WebSocketMultiplayerPeer) and raw sockets, in both I/O modes.
extends TestSuite


## Records shutdown_finished into the harness's events, after the disconnects it follows.
func _record_finish(h: ServerHarness) -> void:
	h.server.shutdown_finished.connect(func() -> void: h.events.append(["finished", 0]))


func test_every_client_gets_1001_after_what_was_queued_and_the_port_is_free_at_once() -> void:
	var h := start_server()
	_record_finish(h)
	var clients: Array[WebSocketPeer] = []
	var ids: Array[int] = []
	for i in 3:
		var r := await connected_client(h, "/c%d" % i)
		clients.append(r[0])
		ids.append(r[1])
	# A raw client shows the bytes: the message queued before the shutdown, then the Close.
	# (Godot's WebSocketPeer empties its buffers when the close handshake completes, so a message
	# that arrives in the same poll as the Close cannot be read there.)
	var t := await raw_tcp(h)
	check(( await raw_upgrade(h, t)).begins_with("HTTP/1.1 101"), "upgraded by hand")
	await pump([h, t], func() -> bool: return h.count("connected") == 4)
	var raw_id: int = h.ids("connected")[3]
	check_eq(h.server.get_peer(raw_id).send_text("last words"), OK, "queued before the shutdown")
	var port := h.port
	check_eq(h.server.shutdown(1001, "restarting"), OK, "shutdown")
	check(not h.server.is_listening(), "not listening from the call on")
	check(h.server.is_shutting_down(), "shutting down")
	check_eq(h.server.get_local_port(), 0, "no port")
	# A new process (here: another server) can take the port while the clients are closed.
	var next := new_server()
	next.bind_ip = "127.0.0.1"
	check_eq(next.listen(port), OK, "the port is free at once")
	next.stop()
	var read: Array[PackedByteArray] = [PackedByteArray()]
	var answered := [false]
	var ok: bool = await pump([h, t] + clients, func() -> bool:
		if t.get_status() == StreamPeerTCP.STATUS_CONNECTED and t.get_available_bytes() > 0:
			read[0].append_array(t.get_partial_data(t.get_available_bytes())[1])
		if read[0].size() >= 26 and not answered[0]:
			# Our Close reply (masked with a zero key): 1001.
			t.put_data(PackedByteArray([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9]))
			answered[0] = true
		return h.count("finished") == 1 and clients.all(func(c: WebSocketPeer) -> bool:
			return c.get_ready_state() == WebSocketPeer.STATE_CLOSED))
	check(ok, "every client closed and the shutdown finished")
	var text := PackedByteArray([0x81, 10]) + "last words".to_utf8_buffer()
	var close := PackedByteArray([0x88, 12, 0x03, 0xe9]) + "restarting".to_utf8_buffer()
	check_eq(read[0], text + close, "the queued message, then the Close")
	for i in clients.size():
		check_eq(clients[i].get_close_code(), 1001, "close code")
		check_eq(clients[i].get_close_reason(), "restarting", "close reason")
		check_eq(h.of(ids[i]), [["connected", ids[i], "", "/c%d" % i], ["disconnected", ids[i], true]], "clean disconnect, no close_request")
	check_eq(h.of(raw_id).back(), ["disconnected", raw_id, true], "the raw client answered: clean")
	check_eq(h.events.back(), ["finished", 0], "shutdown_finished comes last")
	check(not h.server.is_shutting_down() and not h.server.is_listening(), "stopped")
	check_eq(h.server.listen(0), OK, "it can listen again")


func test_a_client_that_never_answers_is_dropped_at_the_timeout() -> void:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.shutdown_timeout = 0.5)
	_record_finish(h)
	var t := await raw_tcp(h)
	check(( await raw_upgrade(h, t)).begins_with("HTTP/1.1 101"), "upgraded by hand")
	await pump([h, t], func() -> bool: return h.count("connected") == 1)
	var id: int = h.ids("connected")[0]
	var started := Time.get_ticks_msec()
	check_eq(h.server.shutdown(), OK, "shutdown with shutdown_timeout")
	var read: Array[PackedByteArray] = [PackedByteArray()]
	var ok: bool = await pump([h, t], func() -> bool:
		if t.get_status() == StreamPeerTCP.STATUS_CONNECTED and t.get_available_bytes() > 0:
			read[0].append_array(t.get_partial_data(t.get_available_bytes())[1])
		return h.count("finished") == 1)
	var elapsed := Time.get_ticks_msec() - started
	check(ok, "finished")
	check(elapsed >= 400 and elapsed < 3000, "dropped at the timeout (%d ms)" % elapsed)
	check_eq(h.events, [["connected", id, "", "/raw"], ["disconnected", id, false], ["finished", 0]], "unclean disconnect, then finished")
	# What the raw client read: our Close frame, 1001 with the default reason.
	check_eq(read[0].slice(0, 4), PackedByteArray([0x88, 2, 0x03, 0xe9]), "a Close frame with 1001")


func test_a_request_waiting_for_the_game_is_answered_503() -> void:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.authorize_upgrades = true)
	_record_finish(h)
	var t := await raw_tcp(h)
	var req := "GET /wait HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	t.put_data(req.to_utf8_buffer())
	await pump([h, t], func() -> bool: return h.count("requested") == 1)
	var id: int = h.ids("requested")[0]
	check_eq(h.server.shutdown(), OK, "shutdown")
	var head := await read_head(h, t)
	check(head.begins_with("HTTP/1.1 503 "), "503: " + head)
	var ok: bool = await pump([h], func() -> bool: return h.count("finished") == 1)
	check(ok, "finished")
	check_eq(h.events, [["requested", id], ["cancelled", id, "the server is shutting down"], ["finished", 0]], "cancelled, then finished")


func test_multiplayer_mode_reports_peer_disconnected_then_finishes() -> void:
	var h := start_server(PackedStringArray(), Callable(), true)
	_record_finish(h)
	var mp := WebSocketMultiplayerPeer.new()
	check_eq(mp.create_client(h.url()), OK, "create_client")
	var ok: bool = await pump([h, mp], func() -> bool:
		return h.count("peer_connected") == 1 and mp.get_connection_status() == MultiplayerPeer.CONNECTION_CONNECTED)
	check(ok, "connected")
	var id: int = h.ids("peer_connected")[0]
	check_eq(h.server.shutdown(4000, "maintenance"), OK, "shutdown")
	check_eq(h.server.get_connection_status(), MultiplayerPeer.CONNECTION_CONNECTED, "still polled by SceneMultiplayer while closing")
	ok = await pump([h, mp], func() -> bool:
		return h.count("finished") == 1 and mp.get_connection_status() == MultiplayerPeer.CONNECTION_DISCONNECTED)
	check(ok, "the client is gone and the shutdown finished")
	check_eq(h.events, [["peer_connected", id], ["peer_disconnected", id], ["finished", 0]], "signals")
	check_eq(h.server.get_connection_status(), MultiplayerPeer.CONNECTION_DISCONNECTED, "disconnected after")
	mp.close()


func test_queued_messages_of_the_last_clients_stay_readable_for_one_more_frame() -> void:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.queue_messages = true)
	_record_finish(h)
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	c.send_text("sent just before the shutdown")
	# The message has reached the server's queue (not taken by the game).
	await pump([h, c], func() -> bool: return h.server.get_available_packet_count() == 1)
	check_eq(h.server.shutdown(), OK, "shutdown")
	var ok: bool = await pump([h, c], func() -> bool: return h.count("disconnected") == 1)
	check(ok, "disconnected")
	check_eq(h.count("finished"), 0, "not finished while a message waits")
	var msgs := h.server.take_messages()
	check_eq(msgs.size(), 1, "the last message is still there after client_disconnected")
	h.poll()
	check_eq(h.count("finished"), 1, "finished at the next poll")


func test_bad_calls_are_refused_with_an_error() -> void:
	expect_error("shutdown(): not listening")
	expect_error("close code 1005 may not be sent")
	expect_error("already shutting down")
	expect_error("still shutting down")
	expect_error("shutdown timeout must be a number of seconds")
	var s := new_server()
	check_eq(s.shutdown(), ERR_UNCONFIGURED, "not listening")
	var h := start_server()
	_record_finish(h)
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	check_eq(h.server.shutdown(1005), ERR_INVALID_PARAMETER, "1005 may not be sent")
	check_eq(h.server.shutdown(1001, "", 0.0), ERR_INVALID_PARAMETER, "a timeout of 0")
	check(h.server.is_listening(), "still listening after refused calls")
	check_eq(h.server.shutdown(), OK, "shutdown")
	check_eq(h.server.shutdown(), ERR_BUSY, "twice")
	check_eq(h.server.listen(0), ERR_ALREADY_IN_USE, "listen while shutting down")
	# stop() still ends everything at once, without shutdown_finished.
	h.server.stop()
	check(not h.server.is_shutting_down(), "stopped")
	await pump([h, c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check_eq(h.count("finished"), 0, "no shutdown_finished after stop()")
