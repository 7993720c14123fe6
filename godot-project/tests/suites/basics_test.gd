## Several clients, messages both ways in text and binary, Variants, peer getters.
extends TestSuite


func test_several_clients_echo_their_own_messages() -> void:
	var h := start_server()
	var clients: Array[WebSocketPeer] = []
	for i in 5:
		clients.append(client(h, "/c%d" % i))
	var all := [h] + clients
	var ok: bool = await pump(all, func() -> bool: return h.count("connected") == 5)
	check(ok, "five clients connect")
	var ids := h.ids("connected")
	check_eq(ids.duplicate().filter(func(x: int) -> bool: return ids.count(x) == 1).size(), 5, "ids are unique")
	for id: int in ids:
		check(id >= 2 and id <= 2147483647, "id %d in 2..2^31-1" % id)
		check(h.server.has_peer(id), "has_peer(%d)" % id)
	var got_ids := Array(h.server.get_peer_ids())
	got_ids.sort()
	var sorted_ids := ids.duplicate()
	sorted_ids.sort()
	check_eq(got_ids, sorted_ids, "get_peer_ids")
	for i in 5:
		clients[i].send_text("from %d" % i)
	ok = await pump(all, func() -> bool: return h.count("data") == 5)
	check(ok, "five messages arrive")
	for id: int in ids:
		var peer := h.server.get_peer(id)
		peer.send_text("echo " + peer.get_packet().get_string_from_utf8())
	ok = await pump(all, func() -> bool:
		return clients.all(func(c: WebSocketPeer) -> bool: return c.get_available_packet_count() == 1))
	check(ok, "every client gets its echo")
	for i in 5:
		check_eq(clients[i].get_packet().get_string_from_utf8(), "echo from %d" % i, "client %d echo" % i)


func test_sends_outside_poll_are_written_by_the_end_of_the_frame() -> void:
	# No second poll() is needed after sending: inline I/O writes what was sent outside poll() in
	# one deferred call at the end of the frame; the I/O thread as soon as it is woken.
	var h := start_server()
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	var peer := h.server.get_peer(r[1])
	check_eq(peer.send_text("now"), OK, "send_text outside poll()")
	check_eq(peer.put_packet(PackedByteArray([1])), OK, "put_packet outside poll()")
	if inline_io():
		check(peer.get_current_outbound_buffered_amount() > 0, "queued until the end of the frame")
		await get_tree().process_frame
		check_eq(peer.get_current_outbound_buffered_amount(), 0, "written by the end of the frame, with no poll()")
	var ok: bool = await pump([c], func() -> bool: return c.get_available_packet_count() == 2)
	check(ok, "the client gets both while the server does not poll")


func test_text_and_binary_both_ways() -> void:
	var h := start_server()
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	var id: int = r[1]
	var peer := h.server.get_peer(id)
	c.send_text("héllo ✓")
	c.put_packet(PackedByteArray([0, 1, 2, 255]))
	var ok: bool = await pump([h, c], func() -> bool: return peer.get_available_packet_count() == 2)
	check(ok, "two messages")
	check_eq(h.count("data", id), 2, "one data_received per message")
	check_eq(peer.get_packet().get_string_from_utf8(), "héllo ✓", "text payload")
	check(peer.was_string_packet(), "first is text")
	check_eq(peer.get_packet(), PackedByteArray([0, 1, 2, 255]), "binary payload")
	check(not peer.was_string_packet(), "second is binary")

	check_eq(peer.write_mode, WebSocketServerPeer.WRITE_MODE_BINARY, "binary by default")
	check_eq(peer.put_packet(PackedByteArray([9, 8])), OK, "put_packet binary")
	peer.write_mode = WebSocketServerPeer.WRITE_MODE_TEXT
	check_eq(peer.put_packet("as text".to_utf8_buffer()), OK, "put_packet text")
	check_eq(peer.send_text("send_text"), OK, "send_text")
	ok = await pump([h, c], func() -> bool: return c.get_available_packet_count() == 3)
	check(ok, "three messages reach the client")
	check_eq(c.get_packet(), PackedByteArray([9, 8]), "binary to client")
	check(not c.was_string_packet(), "client sees binary")
	check_eq(c.get_packet().get_string_from_utf8(), "as text", "text via write_mode")
	check(c.was_string_packet(), "client sees text")
	check_eq(c.get_packet().get_string_from_utf8(), "send_text", "send_text payload")
	check(c.was_string_packet(), "client sees text again")


func test_put_var_and_get_var() -> void:
	var h := start_server()
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	var peer := h.server.get_peer(r[1])
	c.put_var({"name": "ann", "pos": Vector2(1, 2), "items": [1, "two"]})
	var ok: bool = await pump([h, c], func() -> bool: return peer.get_available_packet_count() == 1)
	check(ok, "var arrives")
	check_eq(peer.get_var(), {"name": "ann", "pos": Vector2(1, 2), "items": [1, "two"]}, "get_var")
	check_eq(peer.put_var([3.5, Color.RED]), OK, "put_var")
	ok = await pump([h, c], func() -> bool: return c.get_available_packet_count() == 1)
	check(ok, "var reaches the client")
	check_eq(c.get_var(), [3.5, Color.RED], "client get_var")


func test_resource_name_keeps_the_query_string() -> void:
	var h := start_server()
	var r := await connected_client(h, "/game/room?id=5&x=y%20z")
	check_eq(h.events[0], ["connected", r[1], "", "/game/room?id=5&x=y%20z"], "client_connected args")
	r = await connected_client(h, "")
	check_eq(h.events[1][3], "/", "an empty path is /")


func test_peer_getters() -> void:
	var h := start_server()
	var r := await connected_client(h)
	var id: int = r[1]
	var peer := h.server.get_peer(id)
	check(peer == h.server.get_peer(id), "get_peer returns the same object for an id")
	check_eq(h.server.get_peer_address(id), "127.0.0.1", "get_peer_address")
	var port := h.server.get_peer_port(id)
	check(port > 0 and port != h.port, "get_peer_port is the client's port")
	check_eq(peer.get_connected_host(), "127.0.0.1", "get_connected_host")
	check_eq(peer.get_connected_port(), port, "get_connected_port")
	check_eq(peer.get_id(), id, "get_id")
	check(peer.is_connected_to_host(), "is_connected_to_host")
	check_eq(peer.get_ready_state(), WebSocketServerPeer.STATE_OPEN, "open")
	check_eq(peer.get_current_outbound_buffered_amount(), 0, "nothing buffered")
	check(h.server.is_listening(), "is_listening")
	check(h.server.get_local_port() == h.port and h.port > 0, "get_local_port")
	check_eq(h.server.get_unique_id(), 1, "the server is peer 1")
	check_eq(h.server.get_connection_status(), MultiplayerPeer.CONNECTION_CONNECTED, "connection status")


func test_empty_messages_both_ways() -> void:
	expect_error("write_mode must be WRITE_MODE_TEXT (0) or WRITE_MODE_BINARY (1), not 5")
	var h := start_server()
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	var peer := h.server.get_peer(r[1])
	c.send_text("")
	c.send(PackedByteArray())
	var ok: bool = await pump([h, c], func() -> bool: return peer.get_available_packet_count() == 2)
	check(ok, "two empty messages arrive")
	check_eq(peer.get_packet(), PackedByteArray(), "empty text")
	check(peer.was_string_packet(), "as text")
	check_eq(peer.get_packet(), PackedByteArray(), "empty binary")
	check(not peer.was_string_packet(), "as binary")
	check_eq(peer.send(PackedByteArray(), WebSocketServerPeer.WRITE_MODE_TEXT), OK, "send empty text")
	check_eq(peer.send(PackedByteArray()), OK, "send empty binary")
	check_eq(peer.send(PackedByteArray([1]), 5), ERR_INVALID_PARAMETER, "bad write_mode")
	ok = await pump([h, c], func() -> bool: return c.get_available_packet_count() == 2)
	check(ok, "both reach the client")
	check_eq(c.get_packet(), PackedByteArray(), "empty text received")
	check(c.was_string_packet(), "text")
	check_eq(c.get_packet(), PackedByteArray(), "empty binary received")
	check(not c.was_string_packet(), "binary")


## busy_poll_usec (the I/O thread's busy-poll window; no effect with inline I/O): messages still
## go both ways, and a client that sends while the game is not answering is still served.
func test_echo_with_busy_polling() -> void:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.busy_poll_usec = 2000)
	check_eq(h.server.busy_poll_usec, 2000, "busy_poll_usec set before listen")
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	var peer := h.server.get_peer(r[1])
	for i in 20:
		c.send_text("ping %d" % i)
		var ok: bool = await pump([h, c], func() -> bool: return peer.get_available_packet_count() > 0)
		check(ok, "message %d arrives" % i)
		peer.send_text("pong " + peer.get_packet().get_string_from_utf8())
		ok = await pump([h, c], func() -> bool: return c.get_available_packet_count() > 0)
		check(ok, "reply %d arrives" % i)
		check_eq(c.get_packet().get_string_from_utf8(), "pong ping %d" % i, "reply %d" % i)
	# The game does not answer for longer than the window: the server still reads the next one.
	c.send_text("late")
	await pump_for([c], 0.05)
	var ok: bool = await pump([h, c], func() -> bool: return peer.get_available_packet_count() > 0)
	check(ok and peer.get_packet().get_string_from_utf8() == "late", "a message after an unanswered window")



func test_data_received_handler_connected_in_the_same_poll_gets_the_message() -> void:
	# poll() asks whether data_received has a handler once, not per message, and again after any
	# other signal's handler ran. Here one poll() has: a message from A while nothing handles
	# data_received, then B's connection, whose handler connects one, then B's message, which it
	# must get. Without a handler a message just waits for get_packet.
	if inline_io():
		skip("inline I/O does the handshake inside poll(): a connection and its message never share one")
		return
	var h := start_server()
	h.server.data_received.disconnect(h._on_data)
	var got: Array[int] = []
	var on_data := func(id: int) -> void: got.append(id)
	var r := await connected_client(h)
	var a: WebSocketPeer = r[0]
	var a_id: int = r[1]
	h.server.client_connected.connect(func(_id: int, _p: String, _r: String) -> void:
		if not h.server.data_received.is_connected(on_data):
			h.server.data_received.connect(on_data))
	# The I/O thread reads A's message, completes B's handshake and reads B's message while the
	# game does not poll.
	a.send_text("from a")
	await pump_for([a], 0.2)
	var b := client(h)
	var ok: bool = await pump([b], func() -> bool: return b.get_ready_state() == WebSocketPeer.STATE_OPEN)
	check(ok, "B connects")
	b.send_text("from b")
	await pump_for([a, b], 0.3)
	check_eq(h.count("connected"), 1, "B not yet signalled")
	h.poll()
	check_eq(h.count("connected"), 2, "one poll(): B's client_connected")
	var b_id: int = h.ids("connected")[1]
	check_eq(got, [b_id] as Array[int], "and data_received for B's message (none for A's, before any handler)")
	check_eq(h.server.get_peer(a_id).get_packet().get_string_from_utf8(), "from a", "A's message waits for get_packet")
	check_eq(h.server.get_peer(b_id).get_packet().get_string_from_utf8(), "from b", "B's message")
