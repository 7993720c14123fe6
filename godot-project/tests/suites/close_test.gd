## Close handshakes both ways, abrupt exits, stop(), forced disconnects, signal order.
extends TestSuite


func test_client_close_request_then_clean_disconnect() -> void:
	var h := start_server()
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	var id: int = r[1]
	c.close(4000, "bye now")
	var ok: bool = await pump([h, c], func() -> bool:
		return h.count("disconnected", id) == 1 and c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "both sides closed")
	check_eq(h.of(id), [["connected", id, "", "/"], ["close_request", id, 4000, "bye now"], ["disconnected", id, true]], "signals in order")
	check_eq(c.get_close_code(), 4000, "the client got its code echoed")
	check(not h.server.has_peer(id), "peer gone")


func test_disconnect_peer_sends_code_and_reason() -> void:
	expect_error("cannot send, the connection is closing")
	var h := start_server()
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	var id: int = r[1]
	h.server.disconnect_peer(id, 4001, "kicked: spam")
	check_eq(h.server.get_peer(id).get_ready_state(), WebSocketServerPeer.STATE_CLOSING, "closing")
	check_eq(h.server.get_peer(id).put_packet(PackedByteArray([1])), FAILED, "no sends while closing")
	var ok: bool = await pump([h, c], func() -> bool:
		return h.count("disconnected", id) == 1 and c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "closed")
	check_eq(c.get_close_code(), 4001, "client sees our code")
	check_eq(c.get_close_reason(), "kicked: spam", "client sees our reason")
	check_eq(h.of(id), [["connected", id, "", "/"], ["disconnected", id, true]], "no close_request for our own close")


func test_disconnect_peer_defaults_to_1000() -> void:
	var h := start_server()
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	h.server.disconnect_peer(r[1])
	await pump([h, c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check_eq(c.get_close_code(), 1000, "default code")
	check_eq(c.get_close_reason(), "", "default reason")


func test_peer_close_from_the_peer_object() -> void:
	var h := start_server()
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	h.server.get_peer(r[1]).close(3001, "bye")
	await pump([h, c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check_eq(c.get_close_code(), 3001, "code")
	check_eq(c.get_close_reason(), "bye", "reason")


func test_abrupt_exit_is_not_clean() -> void:
	var h := start_server()
	var t := await raw_tcp(h)
	var head := await raw_upgrade(h, t)
	check(head.begins_with("HTTP/1.1 101"), "upgraded by hand")
	await pump([h, t], func() -> bool: return h.count("connected") == 1)
	var id: int = h.ids("connected")[0]
	t.disconnect_from_host()
	var ok: bool = await pump([h], func() -> bool: return h.count("disconnected") == 1)
	check(ok, "disconnect noticed")
	check_eq(h.events[1], ["disconnected", id, false], "was_clean_close == false")


func test_unanswered_close_is_dropped_after_close_timeout() -> void:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.close_timeout = 0.4)
	var t := await raw_tcp(h)
	await raw_upgrade(h, t)
	await pump([h, t], func() -> bool: return h.count("connected") == 1)
	var id: int = h.ids("connected")[0]
	var started := Time.get_ticks_msec()
	h.server.disconnect_peer(id, 1001, "going away")
	# The raw client reads our Close frame but never answers.
	var ok: bool = await pump([h, t], func() -> bool: return h.count("disconnected") == 1)
	var elapsed := Time.get_ticks_msec() - started
	check(ok, "dropped")
	check(elapsed >= 350 and elapsed < 2000, "after about close_timeout (%d ms)" % elapsed)
	check_eq(h.events[1], ["disconnected", id, false], "not clean")


func test_stop_closes_everyone_without_signals() -> void:
	expect_error("cannot send, the connection is closed")
	var h := start_server()
	var a := await connected_client(h)
	var b := await connected_client(h)
	var kept := h.server.get_peer(a[1])
	var before := h.events.size()
	h.server.stop()
	check(not h.server.is_listening(), "not listening")
	check_eq(h.server.get_peer_ids(), PackedInt32Array(), "no peers")
	var ok: bool = await pump([h, a[0], b[0]], func() -> bool:
		return a[0].get_ready_state() == WebSocketPeer.STATE_CLOSED and b[0].get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "clients see the connection close")
	check_eq(h.events.size(), before, "stop() emits nothing")
	check_eq(kept.get_ready_state(), WebSocketServerPeer.STATE_CLOSED, "kept peer object reports closed")
	check_eq(kept.put_packet(PackedByteArray([1])), FAILED, "kept peer object refuses sends")
	check_eq(h.server.listen(0), OK, "can listen again after stop")
	h.server.stop()


func test_a_kept_peer_object_after_the_client_left() -> void:
	expect_error("cannot send, the connection is closed")
	expect_error("is already closing or closed")
	var h := start_server()
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	var id: int = r[1]
	var peer := h.server.get_peer(id)
	c.send_text("last words")
	c.close()
	await pump([h, c], func() -> bool: return h.count("disconnected", id) == 1)
	check(not peer.is_connected_to_host(), "not connected")
	check_eq(peer.get_ready_state(), WebSocketServerPeer.STATE_CLOSED, "closed")
	check_eq(peer.get_available_packet_count(), 1, "the message received before the close is still there")
	check_eq(peer.get_packet().get_string_from_utf8(), "last words", "and readable")
	check_eq(peer.put_packet(PackedByteArray([1])), FAILED, "sending fails")
	check_eq(peer.send_text("x"), FAILED, "send_text fails")
	peer.close()
	check_eq(peer.get_available_packet_count(), 0, "nothing left")


func test_forced_disconnect_through_multiplayer_peer() -> void:
	var h := start_server()
	var a := await connected_client(h)
	var b := await connected_client(h)
	var mp: MultiplayerPeer = h.server
	mp.disconnect_peer(a[1], true)
	check(not h.server.has_peer(a[1]), "removed at once")
	var ok: bool = await pump([h, a[0]], func() -> bool: return a[0].get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "client dropped")
	check_eq(h.count("disconnected", a[1]), 0, "no signal for a forced disconnect")
	mp.disconnect_peer(b[1])
	ok = await pump([h, b[0]], func() -> bool: return h.count("disconnected", b[1]) == 1)
	check(ok, "unforced: a normal close")
	check_eq(b[0].get_close_code(), 1000, "with 1000")


## Regression (issue 8.7): through an untyped variable (or a WebSocketServer-typed one) the call
## `disconnect_peer(id, true)` reaches the 3-argument method with code 1; it must still be the
## forced drop that MultiplayerPeer's signature promises, and `false` (0) a normal close.
func test_forced_disconnect_through_an_untyped_variable() -> void:
	var h := start_server()
	var a := await connected_client(h)
	var b := await connected_client(h)
	var untyped = h.server
	untyped.disconnect_peer(a[1], true)
	check(not h.server.has_peer(a[1]), "removed at once")
	var ok: bool = await pump([h, a[0]], func() -> bool: return a[0].get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "client dropped")
	check_eq(h.count("disconnected", a[1]), 0, "no signal for a forced disconnect")
	untyped.disconnect_peer(b[1], false)
	ok = await pump([h, b[0]], func() -> bool: return h.count("disconnected", b[1]) == 1)
	check(ok, "false: a normal close")
	check_eq(b[0].get_close_code(), 1000, "with 1000")


func test_signals_of_one_poll_follow_godots_order() -> void:
	if inline_io():
		skip("the scenario needs a server that works between polls (the I/O thread)")
		return
	var h := start_server()
	var old := await connected_client(h)
	# Without polling the server: a new client connects, talks and leaves; the old one talks.
	var c := client(h, "/new")
	await pump([c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_OPEN)
	c.send_text("one")
	c.send_text("two")
	c.close(1000, "done")
	await pump([c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	old[0].send_text("old")
	await pump([old[0]], func() -> bool: return false, 0.1)
	h.events.clear()
	h.poll()
	var id: int = h.ids("connected")[0] if h.count("connected") == 1 else -1
	check_eq(h.events, [
		["data", old[1]],
		["connected", id, "", "/new"],
		["data", id],
		["data", id],
		["close_request", id, 1000, "done"],
		["disconnected", id, true],
	], "known peers first, then the new one from connected to disconnected")
