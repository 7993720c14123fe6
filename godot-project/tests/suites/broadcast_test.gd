## Raw mode's one-call broadcast: to everyone, to all but some, to a list; text and binary; empty
## messages; every recipient that did not get it is returned with the reason.
extends TestSuite


func _received(c: WebSocketPeer) -> Array:
	var got := []
	while c.get_available_packet_count() > 0:
		var data := c.get_packet()
		got.append([data.get_string_from_utf8(), c.was_string_packet()])
	return got


func test_everyone_all_but_some_and_a_list() -> void:
	var h := start_server()
	var a := await connected_client(h)
	var b := await connected_client(h)
	var c := await connected_client(h)
	var clients: Array = [a[0], b[0], c[0]]
	check_eq(h.server.broadcast("to all".to_utf8_buffer(), WebSocketServerPeer.WRITE_MODE_TEXT), {}, "everyone has it")
	check_eq(h.server.broadcast("not b".to_utf8_buffer(), WebSocketServerPeer.WRITE_MODE_BINARY,
		PackedInt32Array([b[1]])), {}, "all but b")
	check_eq(h.server.send_to_peers(PackedInt32Array([c[1], a[1], c[1]]), "a and c".to_utf8_buffer(),
		WebSocketServerPeer.WRITE_MODE_TEXT), {}, "a list (c twice)")
	check_eq(h.server.broadcast(PackedByteArray(), WebSocketServerPeer.WRITE_MODE_TEXT), {}, "an empty message")
	var ok: bool = await pump([h] + clients, func() -> bool:
		return a[0].get_available_packet_count() == 4 and b[0].get_available_packet_count() == 2 \
			and c[0].get_available_packet_count() == 4)
	check(ok, "4, 2 and 4 messages")
	var all := [["to all", true], ["not b", false], ["a and c", true], ["", true]]
	check_eq(_received(a[0]), all, "a: everything, in order, text and binary kept")
	check_eq(_received(b[0]), [["to all", true], ["", true]], "b: not the excluded one nor the list")
	check_eq(_received(c[0]), all, "c: the list's message once")


func test_failures_are_returned_not_dropped() -> void:
	expect_error("not queued for")
	expect_error("WebSocketServer.broadcast: a text message must be UTF-8")
	expect_error("WebSocketServer.broadcast: raw mode only")
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.outbound_buffer_size = 100)
	var a := await connected_client(h)
	var b := await connected_client(h)
	check_eq(h.server.send_to_peers(PackedInt32Array([a[1], 12345]), PackedByteArray([1])), {12345: ERR_DOES_NOT_EXIST},
		"an unknown id is returned; a still gets it")
	var big := PackedByteArray()
	big.resize(150)
	check_eq(h.server.broadcast(big), {a[1]: ERR_OUT_OF_MEMORY, b[1]: ERR_OUT_OF_MEMORY}, "over the outbound limit")
	h.server.get_peer(b[1]).close()
	check_eq(h.server.broadcast(PackedByteArray([2])), {b[1]: FAILED}, "b is closing")
	check_eq(h.server.broadcast(PackedByteArray([0xff, 0xfe]), WebSocketServerPeer.WRITE_MODE_TEXT), {}, "not UTF-8: refused")
	var ok: bool = await pump([h, a[0]], func() -> bool: return a[0].get_available_packet_count() == 2)
	check(ok, "a got the two it was sent")
	check_eq([a[0].get_packet(), a[0].get_packet()], [PackedByteArray([1]), PackedByteArray([2])], "a's messages")
	var mp := start_server(PackedStringArray(), Callable(), true)
	check_eq(mp.server.broadcast(PackedByteArray([1])), {}, "multiplayer mode: refused with an error")
