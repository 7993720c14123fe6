## The upgrade request as the game sees it, and the game's say over it: headers, path, offered
## subprotocols and addresses from client_connected on (both modes); authorization before the
## upgrade (accept, reject, a late decision, none in time); allowed origins; trusted proxies;
## max_connections. Clients are Godot's own WebSocketPeer (and SceneMultiplayer for the
## multiplayer client's view). Statuses, bodies and PROXY headers on the wire are checked from
## Python in tests/attacks/test_internet_facing.py.
extends TestSuite


func _authorizing(s: WebSocketServer) -> void:
	s.authorize_upgrades = true
	s.handshake_timeout = 2.0


func test_the_request_is_readable_from_client_connected_on() -> void:
	var h := start_server(PackedStringArray(["v2"]))
	var seen := {}
	h.server.client_connected.connect(func(id: int, _p: String, _r: String) -> void:
		var r := h.server.get_peer_request(id)
		seen["token"] = r.get_header("x-token")
		seen["dict"] = r.get_headers_as_dictionary()
		seen["lines"] = r.get_headers()
		seen["peer_request_path"] = h.server.get_peer(id).get_request().get_path()
		seen["r"] = r)
	var c := WebSocketPeer.new()
	c.supported_protocols = PackedStringArray(["chat", "v2"])
	c.handshake_headers = PackedStringArray(["X-Token: abc", "Cookie: a=1", "Cookie: b=2"])
	_owned.append(c)
	c.connect_to_url(h.url("/lobby?room=5"))
	var ok: bool = await pump([h, c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_OPEN and not seen.is_empty())
	check(ok, "connected")
	var r: WebSocketServerRequest = seen["r"]
	var id: int = h.ids("connected")[0]
	check_eq(seen["token"], "abc", "a header by name, any case, inside client_connected")
	check_eq(r.get_header("X-TOKEN"), "abc", "upper case")
	check_eq(r.get_header("x-missing", "none"), "none", "default for an absent header")
	check(r.has_header("host") and not r.has_header("x-missing"), "has_header")
	check_eq(r.get_header("cookie"), "a=1; b=2", "repeated cookies joined with '; '")
	var dict: Dictionary = seen["dict"]
	check_eq(dict.get("x-token"), "abc", "dictionary keys are lower case")
	check_eq(dict.get("upgrade"), "websocket", "every header is there")
	check(Array(seen["lines"]).has("X-Token: abc"), "lines as sent: %s" % [seen["lines"]])
	check_eq(r.get_resource_name(), "/lobby?room=5", "resource")
	check_eq(r.get_path(), "/lobby", "path")
	check_eq(seen["peer_request_path"], "/lobby", "the same request from the peer object")
	check_eq(r.get_query(), "room=5", "query")
	check_eq(r.get_requested_protocols(), PackedStringArray(["chat", "v2"]), "offered subprotocols")
	check_eq(c.get_selected_protocol(), "v2", "the server's choice")
	check_eq(r.get_tls_server_name(), "", "no SNI over ws://")
	check_eq(r.get_client_address(), "127.0.0.1", "client address")
	check_eq(r.get_socket_address(), "127.0.0.1", "socket address")
	check_eq(r.get_client_port(), h.server.get_peer_port(id), "client port is get_peer_port")
	check_eq(r.get_socket_port(), r.get_client_port(), "no proxy: the same")
	check_eq(r.get_id(), id, "id")


func test_multiplayer_mode_reads_the_request_in_peer_connected() -> void:
	var h := start_server(PackedStringArray(), Callable(), true)
	var seen := []
	h.server.peer_connected.connect(func(id: int) -> void:
		seen.append(h.server.get_peer_request(id).get_header("x-player")))
	var c := WebSocketPeer.new()
	c.handshake_headers = PackedStringArray(["X-Player: ann"])
	_owned.append(c)
	c.connect_to_url(h.url())
	var ok: bool = await pump([h, c], func() -> bool: return seen.size() == 1)
	check(ok, "peer_connected")
	check_eq(seen, ["ann"], "read inside peer_connected")


func test_accept_at_once_later_and_with_a_chosen_protocol() -> void:
	var h := start_server(PackedStringArray(["a", "b"]), _authorizing)
	h.decide = func(id: int, r: WebSocketServerRequest) -> void:
		if r.get_header("x-when") == "now":
			check_eq(h.server.accept_upgrade(id), OK, "accept inside the handler")
	var now := WebSocketPeer.new()
	now.supported_protocols = PackedStringArray(["a", "b"])
	now.handshake_headers = PackedStringArray(["X-When: now"])
	var later := WebSocketPeer.new()
	later.supported_protocols = PackedStringArray(["a", "b"])
	later.handshake_headers = PackedStringArray(["X-When: later"])
	_owned.append_array([now, later])
	now.connect_to_url(h.url())
	later.connect_to_url(h.url())
	var ok: bool = await pump([h, now, later], func() -> bool:
		return now.get_ready_state() == WebSocketPeer.STATE_OPEN and h.count("requested") == 2)
	check(ok, "accepted at once")
	check_eq(now.get_selected_protocol(), "a", "the server's own choice")
	await pump_for([h, now, later], 0.3)
	check_eq(later.get_ready_state(), WebSocketPeer.STATE_CONNECTING, "still waiting for the game")
	var later_id: int = h.ids("requested").filter(func(i: int) -> bool: return not h.ids("connected").has(i))[0]
	check_eq(h.server.get_peer_request(later_id).get_header("x-when"), "later", "a pending request is readable")
	check_eq(h.server.accept_upgrade(later_id, "b"), OK, "accept in a later frame")
	ok = await pump([h, now, later], func() -> bool:
		return later.get_ready_state() == WebSocketPeer.STATE_OPEN and h.count("connected") == 2)
	check(ok, "accepted later")
	check_eq(later.get_selected_protocol(), "b", "the game's choice")
	check_eq(h.ids("connected"), h.ids("requested"), "ids kept from request to peer")
	check_eq(h.count("cancelled"), 0, "nothing cancelled")


func test_rejected_clients_are_never_connected() -> void:
	# What Godot's client prints for each refusal.
	for status in [400, 401, 403, 429, 503]:
		expect_error("Invalid status code. Got: '%d', expected '101'." % status)
	expect_error("Invalid response headers")
	var h := start_server(PackedStringArray(), _authorizing)
	h.decide = func(id: int, r: WebSocketServerRequest) -> void:
		check_eq(h.server.reject_upgrade(id, int(r.get_header("x-status")), "no"), OK, "reject")
	var clients := []
	for status in [400, 401, 403, 429, 503]:
		var c := WebSocketPeer.new()
		c.handshake_headers = PackedStringArray(["X-Status: %d" % status])
		_owned.append(c)
		c.connect_to_url(h.url())
		clients.append(c)
	var ok: bool = await pump([h] + clients, func() -> bool:
		return clients.all(func(c: WebSocketPeer) -> bool: return c.get_ready_state() == WebSocketPeer.STATE_CLOSED))
	check(ok, "every refused client ends")
	await pump_for([h], 0.2)
	check_eq(h.count("requested"), 5, "all asked about")
	check_eq(h.count("connected") + h.count("disconnected") + h.count("cancelled"), 0, "no other signal")
	check_eq(h.server.get_peer_ids(), PackedInt32Array(), "no peers")


func test_no_decision_in_time_is_cancelled_and_the_id_dies() -> void:
	expect_error("Invalid status code. Got: '503', expected '101'.")
	expect_error("Invalid response headers")
	expect_error("WebSocketServer.accept_upgrade: no request with id")
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void:
		s.authorize_upgrades = true
		s.handshake_timeout = 0.4)
	var c := client(h)
	var ok: bool = await pump([h, c], func() -> bool: return h.count("cancelled") == 1, 3.0)
	check(ok, "cancelled")
	var e: Array = h.events.back()
	check(String(e[2]).contains("handshake_timeout"), "reason: %s" % e[2])
	check_eq(h.ids("cancelled"), h.ids("requested"), "the request's id")
	ok = await pump([h, c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "the client is refused")
	check_eq(h.server.accept_upgrade(e[1]), ERR_DOES_NOT_EXIST, "too late to accept")
	check_eq(h.count("connected"), 0, "never connected")


func test_a_client_leaving_before_the_decision_is_cancelled() -> void:
	var h := start_server(PackedStringArray(), _authorizing)
	var c := client(h)
	var ok: bool = await pump([h, c], func() -> bool: return h.count("requested") == 1)
	check(ok, "requested")
	c.close()
	c.poll()
	_owned.erase(c)
	c = null
	ok = await pump([h], func() -> bool: return h.count("cancelled") == 1)
	check(ok, "cancelled")
	check_eq(h.events.back()[2], "the client left", "reason")


func test_bad_decisions_are_refused_with_a_message() -> void:
	expect_error("WebSocketServer.accept_upgrade: no request with id 12345")
	expect_error("subprotocol \"zzz\" was not offered by the client")
	expect_error("WebSocketServer.reject_upgrade: status must be 400-599, not 200")
	expect_error("Content-Length is written by the server itself")
	expect_error("has an invalid value")
	expect_error("has already been decided")
	expect_error("WebSocketServer.accept_upgrade: not listening")
	var h := start_server(PackedStringArray(["a"]), _authorizing)
	var c := client(h, "/", PackedStringArray(["a"]))
	var ok: bool = await pump([h, c], func() -> bool: return h.count("requested") == 1)
	check(ok, "requested")
	var id: int = h.ids("requested")[0]
	check_eq(h.server.accept_upgrade(12345), ERR_DOES_NOT_EXIST, "unknown id")
	check_eq(h.server.accept_upgrade(id, "zzz"), ERR_INVALID_PARAMETER, "protocol not offered")
	check_eq(h.server.reject_upgrade(id, 200), ERR_INVALID_PARAMETER, "not an error status")
	check_eq(h.server.reject_upgrade(id, 403, "", PackedStringArray(["Content-Length: 3"])), ERR_INVALID_PARAMETER, "our header")
	check_eq(h.server.accept_upgrade(id, "", PackedStringArray(["X-A: 1\nX-B: 2"])), ERR_INVALID_PARAMETER, "line break")
	check_eq(h.server.accept_upgrade(id), OK, "a good decision still works")
	check_eq(h.server.reject_upgrade(id), ERR_DOES_NOT_EXIST, "only the first decision counts")
	ok = await pump([h, c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_OPEN)
	check(ok, "accepted")
	var idle := new_server()
	check_eq(idle.accept_upgrade(2), ERR_UNCONFIGURED, "not listening")


func test_origins_outside_the_list_are_refused_before_the_game_hears() -> void:
	expect_error("allowed_origins: \"game.example\" is not an origin")
	expect_error("Invalid status code. Got: '403', expected '101'.")
	expect_error("Invalid response headers")
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void:
		s.allowed_origins = PackedStringArray(["https://game.example"])
		s.allowed_origins = PackedStringArray(["game.example"])
		s.authorize_upgrades = true)
	check_eq(h.server.allowed_origins, PackedStringArray(["https://game.example"]), "a bad list is refused")
	h.decide = func(id: int, _r: WebSocketServerRequest) -> void: h.server.accept_upgrade(id)
	var evil := WebSocketPeer.new()
	evil.handshake_headers = PackedStringArray(["Origin: https://evil.example"])
	var good := WebSocketPeer.new()
	good.handshake_headers = PackedStringArray(["Origin: https://game.example"])
	var native := WebSocketPeer.new()
	_owned.append_array([evil, good, native])
	for c: WebSocketPeer in [evil, good, native]:
		c.connect_to_url(h.url())
	var ok: bool = await pump([h, evil, good, native], func() -> bool:
		return evil.get_ready_state() == WebSocketPeer.STATE_CLOSED and h.count("connected") == 2)
	check(ok, "evil refused, the others connected")
	check_eq(h.count("requested"), 2, "the game never heard of the refused origin")


func test_forwarded_addresses_count_only_from_trusted_proxies() -> void:
	var headers := PackedStringArray(["X-Forwarded-For: 6.6.6.6, 203.0.113.7"])
	for trusted in [PackedStringArray(), PackedStringArray(["127.0.0.1"])]:
		var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.trusted_proxies = trusted)
		var c := WebSocketPeer.new()
		c.handshake_headers = headers
		_owned.append(c)
		c.connect_to_url(h.url())
		var ok: bool = await pump([h, c], func() -> bool: return h.count("connected") == 1)
		check(ok, "connected")
		var id: int = h.ids("connected")[0]
		var r := h.server.get_peer_request(id)
		if trusted.is_empty():
			check_eq(h.server.get_peer_address(id), "127.0.0.1", "untrusted: the header is ignored")
			check(h.server.get_peer_port(id) > 0, "the socket's port")
		else:
			check_eq(h.server.get_peer_address(id), "203.0.113.7", "trusted: the right-most untrusted hop")
			check_eq(h.server.get_peer(id).get_connected_host(), "203.0.113.7", "on the peer too")
			check_eq(h.server.get_peer_port(id), 0, "X-Forwarded-For carries no port")
		check_eq(r.get_socket_address(), "127.0.0.1", "the proxy stays readable")


func test_a_refused_multiplayer_client_sees_connection_failed() -> void:
	expect_error("Invalid status code. Got: '403', expected '101'.")
	expect_error("Invalid response headers")
	var h := start_server(PackedStringArray(), _authorizing, true)
	h.decide = func(id: int, r: WebSocketServerRequest) -> void:
		if r.get_path() == "/welcome":
			h.server.accept_upgrade(id)
		else:
			h.server.reject_upgrade(id, 403, "go away")
	var results := {}
	var mps := []
	for path in ["/welcome", "/unwelcome"]:
		var peer := WebSocketMultiplayerPeer.new()
		check_eq(peer.create_client(h.url(path)), OK, "create_client")
		var mp := SceneMultiplayer.new()
		mp.multiplayer_peer = peer
		mp.connected_to_server.connect(func() -> void: results[path] = "connected")
		mp.connection_failed.connect(func() -> void: results[path] = "failed")
		mps.append(mp)
	# (The id message reaches the client before the server's game loop emits peer_connected.)
	var ok: bool = await pump([h] + mps, func() -> bool: return results.size() == 2 and h.count("peer_connected") == 1)
	check(ok, "both clients learn their fate")
	check_eq(results, {"/welcome": "connected", "/unwelcome": "failed"}, "accepted and refused")
	check_eq(h.count("peer_connected"), 1, "only the accepted client is a peer")
	for mp: SceneMultiplayer in mps:
		mp.multiplayer_peer.close()


func test_max_connections_refuses_beyond_the_cap() -> void:
	expect_error("WebSocketServer: max_connections must be between 1 and 1073741824, not -1 (or 0 for no limit)")
	expect_error("Invalid status code. Got: '503', expected '101'.")
	expect_error("Invalid response headers")
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void:
		s.max_connections = -1
		s.max_connections = 2)
	check_eq(h.server.max_connections, 2, "set")
	var a := await connected_client(h)
	var b := await connected_client(h)
	var c := client(h)
	var ok: bool = await pump([h, c], func() -> bool: return c.get_ready_state() == WebSocketPeer.STATE_CLOSED)
	check(ok, "the third is refused")
	check_eq(h.server.get_refused_connection_count(), 1, "counted")
	check_eq(h.count("connected"), 2, "two connected")
	a[0].close()
	ok = await pump([h, a[0]], func() -> bool: return h.count("disconnected") == 1)
	check(ok, "one leaves")
	var d := await connected_client(h)
	check_eq(d[0].get_ready_state(), WebSocketPeer.STATE_OPEN, "room again")
	check_eq(h.server.max_handshakes_per_address, 64, "the per-address default")
	check_eq(h.server.get_accept_error_count(), 0, "no accept errors")
