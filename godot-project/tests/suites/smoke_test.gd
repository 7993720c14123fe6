extends TestSuite


func test_echo_text() -> void:
	var h := start_server()
	var r := await connected_client(h, "/echo")
	var c: WebSocketPeer = r[0]
	var id: int = r[1]
	c.send_text("hello")
	var ok: bool = await pump([h, c], func() -> bool: return h.count("data", id) == 1)
	check(ok, "data_received")
	var peer := h.server.get_peer(id)
	check_eq(peer.get_available_packet_count(), 1, "one packet")
	var pkt := peer.get_packet()
	check_eq(pkt.get_string_from_utf8(), "hello", "payload")
	check(peer.was_string_packet(), "text")
	peer.send_text("back")
	ok = await pump([h, c], func() -> bool: return c.get_available_packet_count() > 0)
	check(ok, "echo arrives")
	check_eq(c.get_packet().get_string_from_utf8(), "back", "echo payload")
