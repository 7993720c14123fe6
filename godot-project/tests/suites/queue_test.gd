## queue_messages: no data_received; every client's messages in one queue, in arrival order,
## taken in one call (take_messages) or one at a time (get_packet / get_packet_peer); many clients
## answered in one call (send_messages); the limits and backpressure unchanged.
extends TestSuite


func _queued(s: WebSocketServer) -> void:
	s.queue_messages = true


## Takes messages from `h` until `n` have come (or 5 s pass); returns [ids, texts, text flags].
func _take(h: ServerHarness, clients: Array, n: int) -> Array:
	var ids: Array = []
	var texts: Array = []
	var flags: Array = []
	await pump([h] + clients, func() -> bool:
		var batch := h.server.take_messages()
		for i in batch.size():
			ids.append(batch.ids[i])
			texts.append(batch.packets[i].get_string_from_utf8())
			flags.append(batch.text[i])
		return ids.size() >= n)
	return [ids, texts, flags]


func test_messages_of_all_clients_in_arrival_order_without_signals() -> void:
	var h := start_server(PackedStringArray(), _queued)
	var a := await connected_client(h)
	var b := await connected_client(h)
	a[0].send_text("a1")
	await pump_for([h, a[0], b[0]], 0.1)
	b[0].put_packet("b1".to_utf8_buffer())
	await pump_for([h, a[0], b[0]], 0.1)
	a[0].send_text("a2")
	var got := await _take(h, [a[0], b[0]], 3)
	check_eq(got[0], [a[1], b[1], a[1]], "senders in arrival order")
	check_eq(got[1], ["a1", "b1", "a2"], "the messages")
	check_eq(got[2], [1, 0, 1], "text and binary told apart")
	check_eq(h.count("data"), 0, "no data_received")
	check_eq(h.server.get_peer(a[1]).get_available_packet_count(), 0, "nothing waits in the peer object")
	var empty := h.server.take_messages()
	check(empty.is_empty() and empty.size() == 0 and empty.packets.is_empty(), "then nothing is left")


## Most frames have no message: the empty result is one shared object, so it must stay empty.
func test_the_empty_result_cannot_be_filled() -> void:
	expect_error("read-only")
	var h := start_server(PackedStringArray(), _queued)
	var empty := h.server.take_messages()
	empty.packets.append(PackedByteArray([1]))
	check(h.server.take_messages().packets.is_empty(), "the next empty result is still empty")



func test_the_batch_as_one_buffer_with_offsets() -> void:
	# data + offsets hold the same messages as packets, whichever is read first: empty ones,
	# text and binary, a large one.
	var h := start_server(PackedStringArray(), _queued)
	var a := await connected_client(h)
	var big := PackedByteArray()
	big.resize(60000)  # (under the Godot client's 64 KiB outbound buffer)
	for i in big.size():
		big[i] = i % 251
	var sent: Array[PackedByteArray] = [PackedByteArray([1, 2, 3]), PackedByteArray(), "héllo".to_utf8_buffer(), big,
		PackedByteArray([9])]
	a[0].put_packet(sent[0])
	a[0].send(sent[1])
	a[0].send_text("héllo")
	a[0].put_packet(sent[3])
	a[0].put_packet(sent[4])
	var ok: bool = await pump([h, a[0]], func() -> bool: return h.server.get_available_packet_count() == 5)
	check(ok, "5 wait")
	var batch := h.server.take_messages()
	var data := batch.data
	var offsets := batch.offsets
	check_eq(offsets.size(), 6, "one offset per message and one for the end")
	check_eq(offsets[0], 0, "the first starts at 0")
	check_eq(offsets[5], data.size(), "the last ends at the end of data")
	for i in 5:
		check_eq(data.slice(offsets[i], offsets[i + 1]), sent[i], "message %d from data" % i)
		check_eq(batch.packets[i], sent[i], "message %d from packets" % i)
	check_eq(batch.text, PackedByteArray([0, 0, 1, 0, 0]), "text flags")
	check_eq(data.decode_u16(offsets[4] - 2), big[59998] | (big[59999] << 8), "decode at an offset")
	# packets read first, then data: the same.
	a[0].put_packet(PackedByteArray([7, 7]))
	a[0].send_text("x")
	ok = await pump([h, a[0]], func() -> bool: return h.server.get_available_packet_count() == 2)
	check(ok, "2 wait")
	batch = h.server.take_messages()
	check_eq(batch.packets, [PackedByteArray([7, 7]), "x".to_utf8_buffer()], "packets first")
	check_eq(batch.data, PackedByteArray([7, 7, 120]), "then data")
	check_eq(batch.offsets, PackedInt32Array([0, 2, 3]), "and offsets")
	var empty := h.server.take_messages()
	check_eq(empty.data, PackedByteArray(), "empty: no data")
	check_eq(empty.offsets, PackedInt32Array([0]), "empty: one offset")

func test_max_messages_leaves_the_rest_for_the_next_call() -> void:
	var h := start_server(PackedStringArray(), _queued)
	var a := await connected_client(h)
	for i in 5:
		a[0].send_text(str(i))
	var ok: bool = await pump([h, a[0]], func() -> bool: return h.server.get_available_packet_count() == 5)
	check(ok, "5 wait")
	var first := h.server.take_messages(2)
	check_eq(Array(first.packets).map(func(p: PackedByteArray) -> String: return p.get_string_from_utf8()), ["0", "1"],
		"the two oldest")
	check_eq(h.server.get_available_packet_count(), 3, "3 left")
	# One at a time through the PacketPeer API reads the same queue.
	check_eq(h.server.get_packet_peer(), a[1], "get_packet_peer: the next one's sender")
	check_eq(h.server.get_packet().get_string_from_utf8(), "2", "get_packet: the next one")
	var rest := h.server.take_messages()
	check_eq(rest.size(), 2, "the rest")
	check_eq(rest.packets[1].get_string_from_utf8(), "4", "in order")


func test_send_messages_answers_many_clients_in_one_call() -> void:
	var h := start_server(PackedStringArray(), _queued)
	var a := await connected_client(h)
	var b := await connected_client(h)
	a[0].send_text("ping a")
	b[0].send_text("ping b")
	var got := await _take(h, [a[0], b[0]], 2)
	# Echo the batch back, as a game server answers its clients' inputs.
	var replies: Array[PackedByteArray] = []
	for t: String in got[1]:
		replies.append(("re: " + t).to_utf8_buffer())
	check_eq(h.server.send_messages(PackedInt32Array(got[0]), replies, WebSocketServerPeer.WRITE_MODE_TEXT), {},
		"all queued")
	var two: Array[PackedByteArray] = [PackedByteArray([1]), PackedByteArray([2])]
	check_eq(h.server.send_messages(PackedInt32Array([a[1], a[1]]), two), {}, "one client twice")
	var ok: bool = await pump([h, a[0], b[0]], func() -> bool:
		return a[0].get_available_packet_count() == 3 and b[0].get_available_packet_count() == 1)
	check(ok, "a gets 3, b 1")
	check_eq(a[0].get_packet().get_string_from_utf8(), "re: ping a", "a's answer")
	check(a[0].was_string_packet(), "as text")
	check_eq([a[0].get_packet(), a[0].get_packet()], [PackedByteArray([1]), PackedByteArray([2])], "then its two, in order")
	check(not a[0].was_string_packet(), "binary by default")
	check_eq(b[0].get_packet().get_string_from_utf8(), "re: ping b", "b's answer")


func test_send_messages_returns_what_was_not_queued() -> void:
	expect_error("WebSocketServer.send_messages: not queued for")
	expect_error("WebSocketServer.send_messages: 2 ids but 1 messages")
	expect_error("WebSocketServer.send_messages: message 1 is not UTF-8")
	expect_error("WebSocketServer.send_messages: write_mode must be")
	expect_error("WebSocketServer.send_messages: raw mode only")
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void:
		s.queue_messages = true
		s.outbound_buffer_size = 100)
	var a := await connected_client(h)
	var b := await connected_client(h)
	var big := PackedByteArray()
	big.resize(150)
	h.server.get_peer(b[1]).close()
	var msgs: Array[PackedByteArray] = [PackedByteArray([1]), PackedByteArray([2]), big, PackedByteArray([3])]
	check_eq(h.server.send_messages(PackedInt32Array([a[1], 12345, a[1], b[1]]), msgs),
		{1: ERR_DOES_NOT_EXIST, 2: ERR_OUT_OF_MEMORY, 3: FAILED}, "by position: unknown, too big, closing")
	var one: Array[PackedByteArray] = [PackedByteArray([9])]
	check_eq(h.server.send_messages(PackedInt32Array([a[1], a[1]]), one), {}, "sizes differ: nothing sent")
	var bad_utf8: Array[PackedByteArray] = ["ok".to_utf8_buffer(), PackedByteArray([0xff])]
	check_eq(h.server.send_messages(PackedInt32Array([a[1], a[1]]), bad_utf8, WebSocketServerPeer.WRITE_MODE_TEXT), {},
		"text that is not UTF-8: nothing sent")
	check_eq(h.server.send_messages(PackedInt32Array([a[1]]), one, 7), {}, "a bad write mode: nothing sent")
	var ok: bool = await pump([h, a[0]], func() -> bool: return a[0].get_available_packet_count() >= 1)
	await pump_for([h, a[0]], 0.1)
	check(ok, "a got what was queued")
	check_eq(a[0].get_available_packet_count(), 1, "only the one message that was queued")
	check_eq(a[0].get_packet(), PackedByteArray([1]), "which is the first")
	var mp := start_server(PackedStringArray(), Callable(), true)
	check_eq(mp.server.send_messages(PackedInt32Array([2]), one), {}, "multiplayer mode: refused with an error")


func test_full_queue_stops_reading_that_client_until_taken_and_drops_nothing() -> void:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void:
		s.queue_messages = true
		s.max_queued_packets = 4)
	var a := await connected_client(h)
	var b := await connected_client(h)
	for i in 60:
		a[0].put_var(i)
	var full: bool = await pump([h, a[0], b[0]], func() -> bool: return h.server.get_available_packet_count() >= 4)
	check(full, "the queue fills")
	await pump_for([h, a[0], b[0]], 0.2)
	check_eq(h.server.get_available_packet_count(), 4, "a's max_queued_packets messages wait, no more")
	b[0].send_text("b is still read")
	var b_seen: bool = await pump([h, a[0], b[0]], func() -> bool: return h.server.get_available_packet_count() == 5)
	check(b_seen, "another client is not held back")
	var got: Array = []
	var ok: bool = await pump([h, a[0], b[0]], func() -> bool:
		var batch := h.server.take_messages()
		for i in batch.size():
			if batch.ids[i] == a[1]:
				got.append(bytes_to_var(batch.packets[i]))
		return got.size() == 60, 10.0)
	check(ok, "all 60 of a's arrive (got %d)" % got.size())
	check_eq(got, range(60), "in order")
	check(a[0].get_ready_state() == WebSocketPeer.STATE_OPEN, "a stayed connected")


func test_last_messages_are_still_taken_after_the_disconnect() -> void:
	var h := start_server(PackedStringArray(), _queued)
	var a := await connected_client(h)
	a[0].send_text("last words")
	a[0].close()
	var gone: bool = await pump([h, a[0]], func() -> bool: return h.count("disconnected", a[1]) == 1)
	check(gone, "client_disconnected emitted")
	var batch := h.server.take_messages()
	check_eq(batch.size(), 1, "its message still waits")
	check_eq(batch.ids[0], a[1], "with its sender's id")
	check_eq(batch.packets[0].get_string_from_utf8(), "last words", "the message")
	check(not h.server.has_peer(a[1]), "the sender is gone")


func test_misuse_is_an_error_not_a_crash() -> void:
	expect_error("WebSocketServer.take_messages: not listening")
	expect_error("WebSocketServer.take_messages: set queue_messages = true before listen()")
	expect_error("queue_messages cannot change while listening")
	expect_error("in raw mode you cannot read packets from the server itself unless queue_messages is on")
	var s := new_server()
	check(s.take_messages().is_empty(), "not listening: empty")
	var h := start_server()
	check(h.server.take_messages().is_empty(), "not queued: empty")
	h.server.queue_messages = true
	check(not h.server.queue_messages, "cannot change while listening")
	check_eq(h.server.get_packet(), PackedByteArray(), "get_packet in raw mode without the queue: empty")


## Multiplayer mode always queues: a game driving the MultiplayerPeer API itself (no
## SceneMultiplayer) may take the queue in one call too.
func test_multiplayer_mode_queue_can_be_taken_in_one_call() -> void:
	var h := start_server(PackedStringArray(), Callable(), true)
	var c := client(h)
	var ok: bool = await pump([h, c], func() -> bool:
		return c.get_ready_state() == WebSocketPeer.STATE_OPEN and h.count("peer_connected") == 1)
	check(ok, "connected")
	c.put_packet(PackedByteArray([7, 8]))
	var got: Array = []
	ok = await pump([h, c], func() -> bool:
		var batch := h.server.take_messages()
		for i in batch.size():
			got.append([batch.ids[i], batch.packets[i]])
		return got.size() == 1)
	check(ok, "the message comes")
	check_eq(got, [[h.ids("peer_connected")[0], PackedByteArray([7, 8])]], "with its sender")


## An echo or relay passes a batch on as it came: send_messages with the batch's text flags keeps
## each message text or binary.
func test_send_messages_keeps_each_messages_kind_with_the_text_flags() -> void:
	expect_error("WebSocketServer.send_messages: 1 ids but 2 text flags")
	var h := start_server(PackedStringArray(), _queued)
	var a := await connected_client(h)
	a[0].send_text("text")
	a[0].put_packet(PackedByteArray([1, 2]))
	a[0].send_text("more text")
	var ok: bool = await pump([h, a[0]], func() -> bool: return h.server.get_available_packet_count() == 3)
	check(ok, "3 messages")
	var batch := h.server.take_messages()
	check_eq(h.server.send_messages(batch.ids, batch.packets, WebSocketServerPeer.WRITE_MODE_BINARY, batch.text), {},
		"echoed as they came")
	var one: Array[PackedByteArray] = [PackedByteArray([9])]
	check_eq(h.server.send_messages(PackedInt32Array([a[1]]), one, WebSocketServerPeer.WRITE_MODE_BINARY,
		PackedByteArray([0, 1])), {}, "text flags of another size: nothing sent")
	ok = await pump([h, a[0]], func() -> bool: return a[0].get_available_packet_count() == 3)
	check(ok, "3 come back")
	var kinds := []
	for i in 3:
		var data: PackedByteArray = a[0].get_packet()
		kinds.append([data, a[0].was_string_packet()])
	check_eq(kinds, [["text".to_utf8_buffer(), true], [PackedByteArray([1, 2]), false], ["more text".to_utf8_buffer(), true]],
		"each as it was sent")



func test_send_buffer_sends_each_slice_of_one_buffer() -> void:
	var h := start_server(PackedStringArray(), _queued)
	var a := await connected_client(h)
	var b := await connected_client(h)
	a[0].send_text("ping")
	a[0].put_packet(PackedByteArray([5, 6]))
	var ok: bool = await pump([h, a[0]], func() -> bool: return h.server.get_available_packet_count() == 2)
	check(ok, "2 wait")
	# A batch passed on as it came, kinds kept.
	var batch := h.server.take_messages()
	check_eq(h.server.send_buffer(batch.ids, batch.data, batch.offsets, WebSocketServerPeer.WRITE_MODE_BINARY, batch.text),
		{}, "echoed from the batch's buffer")
	# One buffer built with append_array: an empty message, text to both, an id twice.
	var data := PackedByteArray()
	var offsets := PackedInt32Array([0])
	for part: PackedByteArray in [PackedByteArray(), "to b".to_utf8_buffer(), "to a".to_utf8_buffer()]:
		data.append_array(part)
		offsets.append(data.size())
	check_eq(h.server.send_buffer(PackedInt32Array([a[1], b[1], a[1]]), data, offsets, WebSocketServerPeer.WRITE_MODE_TEXT),
		{}, "three slices queued")
	ok = await pump([h, a[0], b[0]], func() -> bool:
		return a[0].get_available_packet_count() == 4 and b[0].get_available_packet_count() == 1)
	check(ok, "a gets 4, b 1")
	var got := []
	for i in 4:
		got.append([a[0].get_packet(), a[0].was_string_packet()])
	check_eq(got, [["ping".to_utf8_buffer(), true], [PackedByteArray([5, 6]), false], [PackedByteArray(), true],
		["to a".to_utf8_buffer(), true]], "a's, in order and kind")
	check_eq(b[0].get_packet().get_string_from_utf8(), "to b", "b's")


func test_send_buffer_refuses_bad_offsets() -> void:
	expect_error("WebSocketServer.send_buffer: 2 ids need 3 offsets (where each message starts, and where the last ends), not 2; nothing was sent")
	expect_error("WebSocketServer.send_buffer: offsets[2] = 1 is below offsets[1] = 3; nothing was sent")
	expect_error("WebSocketServer.send_buffer: offsets[0] = -1 is negative; nothing was sent")
	expect_error("WebSocketServer.send_buffer: offsets[2] = 5 is past the end of data (4 bytes); nothing was sent")
	expect_error("WebSocketServer.send_buffer: 2 ids but 1 text flags; nothing was sent")
	expect_error("WebSocketServer.send_buffer: message 1 is not UTF-8; nothing was sent")
	expect_error("WebSocketServer.send_buffer: not queued for 1 message(s)")
	var h := start_server(PackedStringArray(), _queued)
	var a := await connected_client(h)
	var ids := PackedInt32Array([a[1], a[1]])
	var data := PackedByteArray([104, 105, 0xff, 33])
	check_eq(h.server.send_buffer(ids, data, PackedInt32Array([0, 2])), {}, "too few offsets")
	check_eq(h.server.send_buffer(ids, data, PackedInt32Array([0, 3, 1])), {}, "decreasing")
	check_eq(h.server.send_buffer(ids, data, PackedInt32Array([-1, 0, 2])), {}, "negative")
	check_eq(h.server.send_buffer(ids, data, PackedInt32Array([0, 2, 5])), {}, "past the end")
	check_eq(h.server.send_buffer(ids, data, PackedInt32Array([0, 2, 4]), WebSocketServerPeer.WRITE_MODE_BINARY,
		PackedByteArray([1])), {}, "text flags of another size")
	check_eq(h.server.send_buffer(ids, data, PackedInt32Array([0, 2, 4]), WebSocketServerPeer.WRITE_MODE_TEXT), {},
		"the second is not UTF-8")
	check_eq(h.server.send_buffer(PackedInt32Array([a[1], 12345]), data, PackedInt32Array([0, 2, 4])),
		{1: ERR_DOES_NOT_EXIST}, "an unknown id, by position")
	var ok: bool = await pump([h, a[0]], func() -> bool: return a[0].get_available_packet_count() >= 1)
	await pump_for([h, a[0]], 0.1)
	check(ok, "a got what was queued")
	check_eq(a[0].get_available_packet_count(), 1, "only the last call's first message")
	check_eq(a[0].get_packet(), PackedByteArray([104, 105]), "which is data[0 .. 2]")

## A client that breaks the protocol right after a message still gets the game's reply to that
## message, and then the Close (1002): with one queue, its Close waits until the game has taken
## its messages and had the chance to answer them (as with signals, where the handlers answer
## before the Close goes out).
func test_a_reply_to_the_message_before_a_violation_comes_before_the_close() -> void:
	var h := start_server(PackedStringArray(), _queued)
	var t := await raw_tcp(h)
	var head := await raw_upgrade(h, t)
	check(head.begins_with("HTTP/1.1 101"), "upgraded")
	# A masked text frame "hi", then a frame with a reserved bit set (RSV1, no extension agreed).
	t.put_data(PackedByteArray([0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2, 0xC1, 0x80, 1, 2, 3, 4]))
	var ok: bool = await pump([h, t], func() -> bool: return h.server.get_available_packet_count() == 1)
	check(ok, "the message before the violation arrives")
	await pump_for([h, t], 0.1)  # the violation is seen meanwhile
	var batch := h.server.take_messages()
	var reply: Array[PackedByteArray] = ["re: hi".to_utf8_buffer()]
	check_eq(h.server.send_messages(batch.ids, reply, WebSocketServerPeer.WRITE_MODE_TEXT), {}, "the reply is queued")
	var got := PackedByteArray()
	await pump([h, t], func() -> bool:
		var n := t.get_available_bytes()
		if n > 0:
			got.append_array(t.get_data(n)[1])
		return got.size() >= 8 + 4 or t.get_status() != StreamPeerTCP.STATUS_CONNECTED)
	check(got.size() >= 12, "the reply and a Close came (got %d bytes)" % got.size())
	check_eq(got.slice(0, 8), PackedByteArray([0x81, 6]) + "re: hi".to_utf8_buffer(), "first the reply")
	check_eq(got.slice(8, 12), PackedByteArray([0x88, got[9], 0x03, 0xEA]) if got.size() >= 12 else PackedByteArray(),
		"then the Close, 1002")
