## Bad input from GDScript: every call gets an Error or a neutral value (and prints what was
## wrong: scripts/test.sh checks the messages listed in tests/expected_errors.txt).
extends TestSuite


func test_bind_ip_restricts_the_listening_address() -> void:
	var h := start_server()  # bind_ip = "127.0.0.1"
	var other := await raw_tcp(h, "127.0.0.2")
	check(other.get_status() != StreamPeerTCP.STATUS_CONNECTED, "127.0.0.2 is refused")
	var own := await raw_tcp(h, "127.0.0.1")
	check_eq(own.get_status(), StreamPeerTCP.STATUS_CONNECTED, "127.0.0.1 is accepted")


func test_bind_star_listens_everywhere() -> void:
	var s := new_server()
	check_eq(s.bind_ip, "*", "default")
	check_eq(s.listen(0), OK, "listen on *")
	var h := ServerHarness.new()
	h.port = s.get_local_port()
	var t := await raw_tcp(h, "127.0.0.2")
	check_eq(t.get_status(), StreamPeerTCP.STATUS_CONNECTED, "127.0.0.2 reaches a * server")
	s.stop()


func test_listen_errors() -> void:
	expect_error("WebSocketServer is already listening; call stop() first")
	expect_error("the port is already in use")
	expect_error("WebSocketServer: port must be between 0 and 65535, not -1")
	expect_error("WebSocketServer: port must be between 0 and 65535, not 65536")
	expect_error("WebSocketServer: \"bad protocol\" is not a valid subprotocol name")
	expect_error("no interface has this address")
	var h := start_server()
	check_eq(h.server.listen(0), ERR_ALREADY_IN_USE, "listen twice")
	var s := new_server()
	s.bind_ip = "127.0.0.1"
	check_eq(s.listen(h.port), ERR_ALREADY_IN_USE, "port taken")
	check(not s.is_listening(), "not listening after a failure")
	check_eq(s.listen(-1), ERR_INVALID_PARAMETER, "negative port")
	check_eq(s.listen(65536), ERR_INVALID_PARAMETER, "port too large")
	check_eq(s.listen(0, PackedStringArray(["bad protocol"])), ERR_INVALID_PARAMETER, "invalid subprotocol name")
	s.bind_ip = "203.0.113.7"
	check_eq(s.listen(0), ERR_INVALID_PARAMETER, "an address this machine does not have")
	check(not s.is_listening(), "still not listening")


func test_setters_refuse_invalid_values() -> void:
	expect_error("WebSocketServer: bind_ip must be \"*\" or an IP address, not \"not an ip\"")
	expect_error("WebSocketServer: handshake_timeout must be a number of seconds in (0, 86400], not -1")
	expect_error("WebSocketServer: close_timeout must be a number of seconds in (0, 86400], not 0")
	expect_error("WebSocketServer: partial_message_timeout must be a number of seconds in (0, 86400], not -3")
	expect_error("WebSocketServer: inbound_buffer_size must be between 1 and 1073741824, not 0")
	expect_error("WebSocketServer: outbound_buffer_size must be between 1 and 1073741824, not -5")
	expect_error("WebSocketServer: max_queued_packets must be between 1 and 1073741824, not 0")
	expect_error("WebSocketServer: busy_poll_usec must be between 0 (off) and 1000000 microseconds, not -1")
	expect_error("WebSocketServer: busy_poll_usec must be between 0 (off) and 1000000 microseconds, not 1000001")
	expect_error("WebSocketServer: extra header \"no colon here\" is not of the form \"Name: value\"")
	expect_error("WebSocketServer: compression must be COMPRESSION_OFF (0), COMPRESSION_SHARED (1) or COMPRESSION_DEDICATED (2), not 3")
	expect_error("WebSocketServer: compression_window_bits must be 9 to 15, not 8")
	expect_error("WebSocketServer: compression_window_bits must be 9 to 15, not 16")
	var s := new_server()
	s.bind_ip = "not an ip"
	check_eq(s.bind_ip, "*", "bind_ip unchanged")
	s.bind_ip = "::1"
	check_eq(s.bind_ip, "::1", "IPv6 accepted")
	s.handshake_timeout = -1.0
	check_eq(s.handshake_timeout, 3.0, "handshake_timeout unchanged")
	s.close_timeout = 0.0
	check_eq(s.close_timeout, 3.0, "close_timeout unchanged")
	s.partial_message_timeout = -3.0
	check_eq(s.partial_message_timeout, 30.0, "partial_message_timeout unchanged")
	s.partial_message_timeout = 5.5
	check_eq(s.partial_message_timeout, 5.5, "partial_message_timeout accepted")
	s.inbound_buffer_size = 0
	check_eq(s.inbound_buffer_size, 65535, "inbound_buffer_size unchanged")
	s.outbound_buffer_size = -5
	check_eq(s.outbound_buffer_size, 65535, "outbound_buffer_size unchanged")
	s.max_queued_packets = 0
	check_eq(s.max_queued_packets, 4096, "max_queued_packets unchanged")
	check_eq(s.busy_poll_usec, 0, "busy_poll_usec is off by default")
	s.busy_poll_usec = -1
	s.busy_poll_usec = 1000001
	check_eq(s.busy_poll_usec, 0, "busy_poll_usec unchanged")
	s.busy_poll_usec = 1000000
	check_eq(s.busy_poll_usec, 1000000, "busy_poll_usec accepted up to a second")
	s.set_extra_headers(PackedStringArray(["X-Ok: 1", "no colon here"]))
	check_eq(s.compression, WebSocketServer.COMPRESSION_OFF, "compression is off by default")
	s.compression = 3
	check_eq(s.compression, WebSocketServer.COMPRESSION_OFF, "compression unchanged")
	s.compression = WebSocketServer.COMPRESSION_DEDICATED
	check_eq(s.compression, 2, "compression accepted")
	check_eq(s.compression_window_bits, 11, "compression_window_bits defaults to 11 (2 KiB)")
	s.compression_window_bits = 8
	s.compression_window_bits = 16
	check_eq(s.compression_window_bits, 11, "compression_window_bits unchanged")
	s.compression_window_bits = 9
	check_eq(s.compression_window_bits, 9, "compression_window_bits accepted")


func test_setters_refuse_while_listening() -> void:
	expect_error("WebSocketServer: bind_ip cannot change while listening; call stop() first")
	expect_error("WebSocketServer: handshake_timeout cannot change while listening")
	expect_error("WebSocketServer: inbound_buffer_size cannot change while listening")
	expect_error("WebSocketServer: private_key cannot change while listening")
	expect_error("WebSocketServer: busy_poll_usec cannot change while listening")
	var h := start_server()
	h.server.bind_ip = "0.0.0.0"
	check_eq(h.server.bind_ip, "127.0.0.1", "bind_ip unchanged while listening")
	h.server.handshake_timeout = 10.0
	check_eq(h.server.handshake_timeout, 3.0, "handshake_timeout unchanged while listening")
	h.server.inbound_buffer_size = 10
	check_eq(h.server.inbound_buffer_size, 65535, "inbound_buffer_size unchanged while listening")
	h.server.private_key = CryptoKey.new()
	check(h.server.private_key == null, "private_key unchanged while listening")
	h.server.busy_poll_usec = 50
	check_eq(h.server.busy_poll_usec, 0, "busy_poll_usec unchanged while listening")


func test_unknown_ids() -> void:
	expect_error("WebSocketServer: no peer with id 12345")
	expect_error("WebSocketServer: no peer with id -7")
	expect_error("WebSocketServer: no peer with id 999")
	expect_error("WebSocketServer: no peer with id 2")
	var h := start_server()
	check(h.server.get_peer(12345) == null, "get_peer")
	check_eq(h.server.get_peer_address(12345), "", "get_peer_address")
	check_eq(h.server.get_peer_port(-7), 0, "get_peer_port")
	check(not h.server.has_peer(1 << 40), "has_peer with an id beyond int32")
	h.server.disconnect_peer(999)
	var mp: MultiplayerPeer = h.server
	mp.disconnect_peer(999, true)
	var idle := new_server()
	check(idle.get_peer(2) == null, "get_peer on a server that is not listening")
	check_eq(idle.get_local_port(), 0, "get_local_port when not listening")
	idle.stop()
	idle.poll()


func test_bad_peer_calls() -> void:
	expect_error("no packet available")
	expect_error("write_mode must be WRITE_MODE_TEXT (0) or WRITE_MODE_BINARY (1), not 7")
	expect_error("a text message must be UTF-8")
	expect_error("close code 1005 may not be sent (use 1000-1003, 1007-1014 or 3000-4999)")
	expect_error("close code 99999 is not a valid WebSocket close code")
	expect_error("close reason cut to 123 bytes (the most a Close frame carries)")
	expect_error("is already closing or closed")
	var h := start_server()
	var r := await connected_client(h)
	var peer := h.server.get_peer(r[1])
	check_eq(peer.get_packet(), PackedByteArray(), "get_packet with nothing queued")
	check_eq(peer.get_packet_error(), ERR_UNAVAILABLE, "and its error")
	peer.write_mode = 7
	check_eq(peer.write_mode, WebSocketServerPeer.WRITE_MODE_BINARY, "write_mode unchanged")
	peer.write_mode = WebSocketServerPeer.WRITE_MODE_TEXT
	check_eq(peer.put_packet(PackedByteArray([0xff, 0xfe])), ERR_INVALID_PARAMETER, "non-UTF-8 in text mode")
	peer.close(1005)
	peer.close(99999)
	check_eq(peer.get_ready_state(), WebSocketServerPeer.STATE_OPEN, "bad close codes change nothing")
	peer.close(1000, "x".repeat(200))
	check_eq(peer.get_ready_state(), WebSocketServerPeer.STATE_CLOSING, "long reason cut, close sent")
	peer.close()
	var c: WebSocketPeer = r[0]
	await pump([h, c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check_eq(c.get_close_reason().length(), 123, "reason cut to 123 bytes")


func test_calls_that_belong_to_the_other_mode() -> void:
	expect_error("WebSocketServer: in raw mode you cannot send packets through the server itself")
	expect_error("get_peer() is for raw mode; in multiplayer mode SceneMultiplayer owns the peers' messages")
	expect_error("WebSocketServer: target peer 4242 is not connected")
	var h := start_server()
	var mp: MultiplayerPeer = h.server
	check_eq(mp.put_packet(PackedByteArray([1])), ERR_UNAVAILABLE, "raw mode: put_packet on the server")
	check_eq(mp.get_available_packet_count(), 0, "raw mode: no packets on the server itself")
	var hm := start_server(PackedStringArray(), Callable(), true)
	var c := client(hm)
	var ok: bool = await pump([hm, c], func() -> bool: return hm.count("peer_connected") > 0)
	check(ok, "a client of the multiplayer server connects")
	var id: int = hm.ids("peer_connected")[0] if ok else -1
	check(hm.server.get_peer(id) == null, "multiplayer mode: get_peer refused for its own client")
	hm.server.set_target_peer(4242)
	check_eq(hm.server.put_packet(PackedByteArray([1])), ERR_INVALID_PARAMETER, "multiplayer mode: unknown target")
