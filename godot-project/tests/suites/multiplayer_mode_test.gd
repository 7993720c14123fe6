## gd_mp_api = true seen from raw clients: the id message, one packet queue with senders, targets,
## MultiplayerPeer signals, refusing, forced disconnects, close(). (The scenario with SceneMultiplayer
## and stock clients in separate processes is tests/python/test_multiplayer.py.)
extends TestSuite


## A raw WebSocketPeer against a multiplayer-mode server; returns [client, id from its first message].
func _mp_client(h: ServerHarness) -> Array:
	var c := client(h)
	var ok: bool = await pump([h, c], func() -> bool: return c.get_available_packet_count() > 0)
	check(ok, "the id message arrives")
	if not ok:
		return [c, -1]
	var first := c.get_packet()
	check_eq(first.size(), 4, "the first message is 4 bytes")
	check(not c.was_string_packet(), "and binary")
	return [c, first.decode_s32(0)]


func test_ids_packets_and_targets() -> void:
	var h := start_server(PackedStringArray(), Callable(), true)
	var a := await _mp_client(h)
	var b := await _mp_client(h)
	await pump([h], func() -> bool: return h.count("peer_connected") == 2)
	check_eq(h.ids("peer_connected"), [a[1], b[1]], "peer_connected with the ids the clients got")
	check_eq(h.count("connected"), 0, "no client_connected in multiplayer mode")
	check(a[1] >= 2 and b[1] >= 2 and a[1] != b[1], "valid, distinct ids")

	a[0].put_packet(PackedByteArray([1, 2, 3]))
	var ok: bool = await pump([h, a[0]], func() -> bool: return h.server.get_available_packet_count() == 1)
	check(ok, "the packet is queued on the server itself")
	check_eq(h.server.get_packet_peer(), a[1], "get_packet_peer is the sender")
	check_eq(h.server.get_packet_channel(), 0, "channel 0")
	check_eq(h.server.get_packet_mode(), MultiplayerPeer.TRANSFER_MODE_RELIABLE, "reliable")
	check_eq(h.server.get_packet(), PackedByteArray([1, 2, 3]), "payload")
	check_eq(h.count("data"), 0, "no data_received in multiplayer mode")

	h.server.transfer_mode = MultiplayerPeer.TRANSFER_MODE_UNRELIABLE
	h.server.transfer_channel = 3
	check_eq(h.server.transfer_mode, MultiplayerPeer.TRANSFER_MODE_UNRELIABLE, "transfer_mode accepted")
	check_eq(h.server.transfer_channel, 3, "transfer_channel accepted")
	h.server.set_target_peer(b[1])
	check_eq(h.server.put_packet(PackedByteArray([10])), OK, "to b")
	h.server.set_target_peer(0)
	check_eq(h.server.put_packet(PackedByteArray([20])), OK, "to everyone")
	h.server.set_target_peer(-a[1])
	check_eq(h.server.put_packet(PackedByteArray([30])), OK, "to everyone but a")
	ok = await pump([h, a[0], b[0]], func() -> bool:
		return a[0].get_available_packet_count() == 1 and b[0].get_available_packet_count() == 3)
	check(ok, "routed: a gets 1, b gets 3")
	check_eq(a[0].get_packet(), PackedByteArray([20]), "a got the broadcast only")
	check_eq([b[0].get_packet(), b[0].get_packet(), b[0].get_packet()], [PackedByteArray([10]), PackedByteArray([20]), PackedByteArray([30])], "b got all three, in order")


func test_put_packet_outside_poll_is_written_by_the_end_of_the_frame() -> void:
	# With inline I/O too: one deferred write at the end of the frame, no second poll() needed.
	var h := start_server(PackedStringArray(), Callable(), true)
	var a := await _mp_client(h)
	await pump([h], func() -> bool: return h.count("peer_connected") == 1)
	h.server.set_target_peer(a[1])
	check_eq(h.server.put_packet(PackedByteArray([5])), OK, "put_packet outside poll()")
	var ok: bool = await pump([a[0]], func() -> bool: return a[0].get_available_packet_count() == 1)
	check(ok, "the client gets it while the server does not poll")
	check_eq(a[0].get_packet(), PackedByteArray([5]), "payload")


func test_close_request_and_peer_disconnected() -> void:
	var h := start_server(PackedStringArray(), Callable(), true)
	var a := await _mp_client(h)
	a[0].close(4000, "bye")
	var ok: bool = await pump([h, a[0]], func() -> bool: return h.count("peer_disconnected") == 1)
	check(ok, "peer_disconnected")
	check_eq(h.events, [["peer_connected", a[1]], ["close_request", a[1], 4000, "bye"], ["peer_disconnected", a[1]]], "client_close_request still fires; no client_* connect/disconnect")


func test_refuse_new_connections() -> void:
	var h := start_server(PackedStringArray(), Callable(), true)
	var a := await _mp_client(h)
	h.server.refuse_new_connections = true
	check(h.server.refuse_new_connections, "refusing")
	var refused := client(h)
	var ok: bool = await pump([h, a[0], refused], func() -> bool: return refused.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "a new client is refused")
	check_eq(a[0].get_ready_state(), WebSocketPeer.STATE_OPEN, "the others stay")
	h.server.refuse_new_connections = false
	var b := await _mp_client(h)
	check(b[1] >= 2, "accepting again")


func test_forced_disconnect_and_close() -> void:
	var h := start_server(PackedStringArray(), Callable(), true)
	var a := await _mp_client(h)
	var b := await _mp_client(h)
	await pump([h], func() -> bool: return h.count("peer_connected") == 2)
	var mp: MultiplayerPeer = h.server
	mp.disconnect_peer(a[1], true)
	var ok: bool = await pump([h, a[0]], func() -> bool: return a[0].get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "forced: the client is dropped")
	check_eq(h.count("peer_disconnected"), 0, "forced: no peer_disconnected")
	mp.close()
	check_eq(mp.get_connection_status(), MultiplayerPeer.CONNECTION_DISCONNECTED, "closed")
	check(not h.server.is_listening(), "not listening")
	ok = await pump([h, b[0]], func() -> bool: return b[0].get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "close() drops everyone")
	check_eq(h.count("peer_disconnected"), 0, "close(): no signals")
