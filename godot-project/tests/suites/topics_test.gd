## Topics (subscribe, unsubscribe, publish, get_subscribers, get_topics) with Godot's own
## WebSocketPeer clients, and the bus's signals when the bus (bus_url) cannot be reached. The bus
## itself, with a real Redis and several processes, is tested in tests/bus/.
extends TestSuite


## Reads every text message `c` has now.
func _texts(c: WebSocketPeer) -> Array:
	var got := []
	c.poll()
	while c.get_available_packet_count() > 0:
		got.append(c.get_packet().get_string_from_utf8())
	return got


func test_publish_reaches_the_subscribers_but_the_excluded() -> void:
	var h := start_server()
	var clients := []
	for i in 3:
		clients.append(await connected_client(h))
	var ids: Array = clients.map(func(p: Array) -> int: return p[1])
	check_eq(h.server.subscribe(ids[0], "blue"), OK, "subscribe")
	check_eq(h.server.subscribe(ids[1], "blue"), OK, "subscribe")
	check_eq(h.server.subscribe(ids[1], "blue"), OK, "subscribing again changes nothing")
	check_eq(h.server.subscribe(ids[2], "red"), OK, "subscribe")
	var subs := Array(h.server.get_subscribers("blue"))
	subs.sort()
	var want := [ids[0], ids[1]]
	want.sort()
	check_eq(subs, want, "get_subscribers")
	check_eq(h.server.get_topics(ids[1]), PackedStringArray(["blue"]), "get_topics")
	check_eq(h.server.publish("blue", "to blue".to_utf8_buffer(), WebSocketPeer.WRITE_MODE_TEXT), {}, "publish: everyone has it")
	check_eq(h.server.publish("blue", "not to 0".to_utf8_buffer(), WebSocketPeer.WRITE_MODE_TEXT, PackedInt32Array([ids[0]])), {}, "publish with exclude")
	var got := [[], [], []]
	await pump([h] + clients.map(func(p: Array) -> WebSocketPeer: return p[0]), func() -> bool:
		for i in 3:
			got[i].append_array(_texts(clients[i][0]))
		return got[1].size() == 2, 3.0)
	await pump_for([h], 0.1)
	for i in 3:
		got[i].append_array(_texts(clients[i][0]))
	check_eq(got[0], ["to blue"], "client 0: once, not the excluded one")
	check_eq(got[1], ["to blue", "not to 0"], "client 1: both, in order")
	check_eq(got[2], [], "client 2 is on another topic")
	check_eq(h.server.unsubscribe(ids[1], "blue"), OK, "unsubscribe")
	check_eq(Array(h.server.get_subscribers("blue")), [ids[0]], "one left")
	# A client's subscriptions end with it.
	clients[0][0].close()
	await pump([h, clients[0][0]], func() -> bool: return h.count("disconnected", ids[0]) == 1)
	check_eq(h.server.get_subscribers("blue").size(), 0, "gone with the client")
	check_eq(h.server.get_topics(ids[0]).size(), 0, "no topics for a gone client")


func test_bad_input_gets_a_clear_error() -> void:
	var h := start_server()
	var pair := await connected_client(h)
	var id: int = pair[1]
	expect_error("a topic name must be 1 to 256 bytes")
	check_eq(h.server.subscribe(id, ""), ERR_INVALID_PARAMETER, "empty name")
	expect_error("a topic name must be 1 to 256 bytes")
	check_eq(h.server.subscribe(id, "x".repeat(257)), ERR_INVALID_PARAMETER, "too long")
	check_eq(h.server.subscribe(id, "é".repeat(128)), OK, "256 bytes of UTF-8")
	for i in 63:
		h.server.subscribe(id, "t%d" % i)
	expect_error("already subscribed to 64 topics")
	check_eq(h.server.subscribe(id, "one more"), ERR_OUT_OF_MEMORY, "too many topics")
	expect_error("no client with id 4242")
	check_eq(h.server.subscribe(4242, "t"), ERR_DOES_NOT_EXIST, "unknown client")
	expect_error("is not subscribed to")
	check_eq(h.server.unsubscribe(id, "never"), ERR_DOES_NOT_EXIST, "not subscribed")
	expect_error("nobody is subscribed to \"empty room\"")
	check_eq(h.server.publish("empty room", "x".to_utf8_buffer()), {}, "a publish to nobody")
	expect_error("a text message must be UTF-8")
	h.server.publish("t1", PackedByteArray([0xff]), WebSocketPeer.WRITE_MODE_TEXT)
	var mp := start_server(PackedStringArray(), Callable(), true)
	expect_error("topics are for raw mode")
	check_eq(mp.server.subscribe(1, "t"), ERR_UNCONFIGURED, "multiplayer mode")
	var idle := new_server()
	expect_error("not listening")
	check_eq(idle.subscribe(1, "t"), ERR_UNCONFIGURED, "not listening")


func test_a_bus_that_cannot_be_reached_is_reported_and_topics_stay_local() -> void:
	expect_error("TLS to the bus is not supported")
	var s := new_server()
	s.bus_url = "rediss://127.0.0.1:6379"
	check_eq(s.bus_url, "", "refused")
	expect_error("is not a redis:// URL")
	s.bus_url = "http://nowhere"
	# A port nobody listens on.
	var probe := TCPServer.new()
	probe.listen(0, "127.0.0.1")
	var port := probe.get_local_port()
	probe.stop()
	var down := []
	var failed := [0]
	var h := start_server(PackedStringArray(), func(srv: WebSocketServer) -> void:
		srv.bus_url = "redis://127.0.0.1:%d" % port
		srv.bus_channel_prefix = "suite:"
		srv.bus_disconnected.connect(func(reason: String) -> void: down.append(reason))
		srv.bus_publish_failed.connect(func(n: int) -> void: failed[0] += n))
	var pair := await connected_client(h)
	await pump([h], func() -> bool: return down.size() > 0, 5.0)
	check_eq(down.size(), 1, "bus_disconnected, once")
	check(down[0].contains("cannot reach the bus"), "says why: %s" % [down])
	check(not h.server.is_bus_connected(), "is_bus_connected")
	h.server.subscribe(pair[1], "t")
	check_eq(h.server.publish("t", "local".to_utf8_buffer(), WebSocketPeer.WRITE_MODE_TEXT), {}, "local delivery goes on")
	var got := []
	await pump([h, pair[0]], func() -> bool:
		got.append_array(_texts(pair[0]))
		return got.size() == 1 and failed[0] == 1, 3.0)
	check_eq(got, ["local"], "the local subscriber got it")
	check_eq(failed[0], 1, "bus_publish_failed(1)")
	var stats: Dictionary = h.server.get_bus_stats()
	check_eq([stats["published"], stats["failed"]], [0, 1], "get_bus_stats")
	await pump_for([h], 0.5)
	check_eq(down.size(), 1, "told once, not at every retry")
