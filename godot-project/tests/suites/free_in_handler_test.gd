## The server dropped (its last reference) or stopped from inside its own signal handlers, in raw
## and multiplayer mode. Regression for issue 8.3: Godot used to abort ("Destroyed an object ...
## while a bind() or bind_mut() call was active"), so a failure here ends the whole run.
extends TestSuite

## The only references to the servers under test: a typed and an untyped member, as scripts hold
## them (a member is called in place, without a temporary reference).
var s: WebSocketServer
var u
var fired := ""


func _listen(mp := false) -> WebSocketServer:
	var server := new_server()
	server.bind_ip = "127.0.0.1"
	check_eq(server.listen(0, PackedStringArray(), mp), OK, "listen")
	return server


## A client that, once open, sends one message, and closes after `close_after` seconds (or never).
func _client(port: int) -> WebSocketPeer:
	var c := WebSocketPeer.new()
	check_eq(c.connect_to_url("ws://127.0.0.1:%d/" % port), OK, "connect_to_url")
	_owned.append(c)
	return c


## Polls the server held in `s` (or `u`) in place until a handler has dropped it.
func _drive(c: WebSocketPeer, typed: bool, close_client := false) -> void:
	var deadline := Time.get_ticks_msec() + 5000
	var sent := false
	while Time.get_ticks_msec() < deadline:
		if typed:
			if s == null:
				break
			s.poll()
		else:
			if u == null:
				break
			u.poll()
		c.poll()
		if c.get_ready_state() == WebSocketPeer.STATE_OPEN and not sent:
			c.send_text("hi")
			sent = true
			if close_client:
				c.close(4001, "leaving")
		await get_tree().process_frame


func _dropped_in(sig: String, typed: bool, close_client := false) -> void:
	fired = ""
	var server := _listen()
	var port := server.get_local_port()
	if typed:
		s = server
		s.connect(sig, func(_a = null, _b = null, _c = null) -> void:
			fired = sig
			s = null)
	else:
		u = server
		u.connect(sig, func(_a = null, _b = null, _c = null) -> void:
			fired = sig
			u = null)
	server = null
	var c := _client(port)
	await _drive(c, typed, close_client)
	check_eq(fired, sig, "the handler ran")
	check(s == null and u == null, "the server is gone")
	# The dropped server stopped: its client is disconnected.
	var ok: bool = await pump([c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "the client sees the connection end")
	if close_client:
		check_eq(c.get_close_code(), 4001, "the client's own close completed")


func test_dropped_in_client_connected() -> void:
	await _dropped_in("client_connected", true)


func test_dropped_in_data_received() -> void:
	await _dropped_in("data_received", true)


func test_dropped_in_data_received_untyped() -> void:
	await _dropped_in("data_received", false)


func test_dropped_in_client_close_request() -> void:
	await _dropped_in("client_close_request", true, true)


func test_dropped_in_client_disconnected() -> void:
	await _dropped_in("client_disconnected", false, true)


func test_stopped_in_every_handler() -> void:
	for sig: String in ["client_connected", "data_received", "client_close_request", "client_disconnected"]:
		fired = ""
		s = _listen()
		var after: Array = []
		s.connect(sig, func(_a = null, _b = null, _c = null) -> void:
			fired = sig
			s.stop())
		for other: String in ["client_connected", "data_received", "client_close_request", "client_disconnected"]:
			if other != sig:
				s.connect(other, func(_a = null, _b = null, _c = null) -> void:
					if fired != "":
						after.append(other))
		var c := _client(s.get_local_port())
		var deadline := Time.get_ticks_msec() + 5000
		var sent := false
		while fired == "" and Time.get_ticks_msec() < deadline:
			s.poll()
			c.poll()
			if c.get_ready_state() == WebSocketPeer.STATE_OPEN and not sent:
				c.send_text("hi")
				c.close(4001, "leaving")
				sent = true
			await get_tree().process_frame
		check_eq(fired, sig, "the handler ran")
		check(not s.is_listening(), "stopped from %s" % sig)
		check_eq(after, [], "no signal after stop() in %s" % sig)
		check_eq(s.listen(0), OK, "listens again after stop() in %s" % sig)
		s.stop()
		s = null


## A multiplayer-mode server whose only reference is `mp`'s; returns its port.
func _listen_owned_by(mp: SceneMultiplayer) -> int:
	var server := _listen(true)
	mp.multiplayer_peer = server
	return server.get_local_port()


## A handler that drops `mp`'s server (sets multiplayer_peer to null) and notes it in `dropped`.
func _dropper(mp: SceneMultiplayer, dropped: Array) -> Callable:
	return func(_id: int) -> void:
		mp.multiplayer_peer = null
		dropped[0] = true


## Multiplayer mode: SceneMultiplayer holds the only reference, and a peer_connected handler sets
## multiplayer_peer to null (the pattern that aborted Godot).
func test_multiplayer_peer_dropped_in_peer_connected() -> void:
	var mp := SceneMultiplayer.new()
	var port := _listen_owned_by(mp)
	var dropped := [false]
	var handler := _dropper(mp, dropped)
	mp.peer_connected.connect(handler)
	var c := _client(port)
	var ok: bool = await pump([mp, c], func() -> bool: return dropped[0])
	check(ok, "peer_connected ran and dropped the server")
	ok = await pump([mp, c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "the dropped server's client is disconnected")
	# The handler captures `mp`: break the cycle.
	mp.peer_connected.disconnect(handler)


## The same in peer_disconnected: the last peer leaves and the handler drops the server.
func test_multiplayer_peer_dropped_in_peer_disconnected() -> void:
	var mp := SceneMultiplayer.new()
	var port := _listen_owned_by(mp)
	var dropped := [false]
	var handler := _dropper(mp, dropped)
	mp.peer_disconnected.connect(handler)
	var c := _client(port)
	var ok: bool = await pump([mp, c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_OPEN and c.get_available_packet_count() > 0)
	check(ok, "the client joined")
	c.close(1000, "bye")
	ok = await pump([mp, c], func() -> bool: return dropped[0])
	check(ok, "peer_disconnected ran and dropped the server")
	mp.peer_disconnected.disconnect(handler)
