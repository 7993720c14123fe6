## Per-connection limits: 1009 for big messages, ERR_OUT_OF_MEMORY for full outbound queues,
## and backpressure (never a dropped message) for full inbound queues.
extends TestSuite


func test_message_over_inbound_buffer_size_closes_with_1009() -> void:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.inbound_buffer_size = 1000)
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	var id: int = r[1]
	var data := PackedByteArray()
	data.resize(1000)
	c.put_packet(data)
	var ok: bool = await pump([h, c], func() -> bool: return h.count("data", id) == 1)
	check(ok, "exactly inbound_buffer_size is accepted")
	h.server.get_peer(id).get_packet()
	data.resize(1001)
	c.put_packet(data)
	ok = await pump([h, c], func() -> bool:
		return c.get_ready_state() == WebSocketPeer.STATE_CLOSED and h.count("disconnected", id) == 1)
	check(ok, "closed")
	check_eq(c.get_close_code(), 1009, "the client sees 1009")
	# The rest of the oversized frame is skipped, so the client's answer to our Close is read: the
	# close handshake completes (issue 8: it used to be unclean, always).
	check_eq(h.of(id).back(), ["disconnected", id, true], "a clean close handshake")
	check_eq(h.count("data", id), 1, "the big message was not delivered")


func test_put_packet_past_outbound_limits_fails() -> void:
	expect_error("cannot send, outbound_buffer_size would be exceeded (the client is not reading fast enough)")
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.outbound_buffer_size = 100)
	var r := await connected_client(h)
	var peer := h.server.get_peer(r[1])
	var data := PackedByteArray()
	data.resize(101)
	check_eq(peer.put_packet(data), ERR_OUT_OF_MEMORY, "larger than outbound_buffer_size")
	data.resize(100)
	check_eq(peer.put_packet(data), OK, "exactly the limit")
	var c: WebSocketPeer = r[0]
	var ok: bool = await pump([h, c], func() -> bool: return c.get_available_packet_count() == 1)
	check(ok, "the accepted one arrives")
	check_eq(c.get_packet().size(), 100, "whole")
	check_eq(peer.get_current_outbound_buffered_amount(), 0, "buffer drained")


func test_full_inbound_queue_applies_backpressure_and_drops_nothing() -> void:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.max_queued_packets = 4)
	var r := await connected_client(h)
	var c: WebSocketPeer = r[0]
	var id: int = r[1]
	var peer := h.server.get_peer(id)
	for i in 60:
		c.put_var(i)
	# The game does not read for a while: the server must stop reading, not drop. Wait for the
	# queue to fill, then a little longer to see that it stays at its limit.
	var full: bool = await pump([h, c], func() -> bool: return peer.get_available_packet_count() >= 4)
	check(full, "the queue fills")
	await pump_for([h, c], 0.2)
	check_eq(peer.get_available_packet_count(), 4, "max_queued_packets messages wait")
	check_eq(h.count("data", id), 4, "one data_received each")
	var got: Array = []
	var ok: bool = await pump([h, c], func() -> bool:
		if peer.get_available_packet_count() > 0:
			got.append(peer.get_var())
		return got.size() == 60, 10.0)
	check(ok, "all 60 arrive (got %d)" % got.size())
	check_eq(got, range(60), "in order")
	check_eq(h.count("data", id), 60, "60 data_received")
	check(c.get_ready_state() == WebSocketPeer.STATE_OPEN, "the client stayed connected")


## A send loop into a full queue gets its error code every time, but the warning is printed once
## for the peer, then at most once a second with a count: 200 refusals, at most 2 lines.
func test_refused_sends_are_rate_limited() -> void:
	expect_error("cannot send, outbound_buffer_size would be exceeded")
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.outbound_buffer_size = 10)
	var r := await connected_client(h)
	var peer := h.server.get_peer(r[1])
	var codes := {}
	for i in 200:
		var err := peer.put_packet(PackedByteArray([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))
		codes[err] = codes.get(err, 0) + 1
	check_eq(codes, {ERR_OUT_OF_MEMORY: 200}, "every refused send returns the error")
	var lines := logger.count("outbound_buffer_size would be exceeded")
	check(lines >= 1 and lines <= 2, "printed %d times for 200 refusals" % lines)
