## Plain HTTP requests the game answers (answer_http_requests, http_request, respond): a health
## check on the WebSocket port, with Godot's own HTTPClient and with raw sockets.
extends TestSuite


## A server answering /healthz with the number of clients as JSON (in the handler, at once).
func _healthz_server() -> ServerHarness:
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void: s.answer_http_requests = true)
	h.server.http_request.connect(func(id: int, request: WebSocketServerRequest) -> void:
		h.events.append(["http", id, request.get_method(), request.get_resource_name(), request.is_upgrade()])
		if request.get_path() == "/healthz":
			h.server.respond(id, 200, JSON.stringify({"players": h.server.get_peer_ids().size()}), PackedStringArray(["Content-Type: application/json"]))
		else:
			h.server.respond(id, 404, "no such page"))
	return h


## Sends `request` on a raw socket and reads until the server closes; returns what came.
func _raw_http(h: ServerHarness, request: String) -> String:
	var t := await raw_tcp(h)
	t.put_data(request.to_utf8_buffer())
	var acc: Array = [""]
	await pump([h, t], func() -> bool:
		if t.get_status() == StreamPeerTCP.STATUS_CONNECTED and t.get_available_bytes() > 0:
			acc[0] += t.get_utf8_string(t.get_available_bytes())
		return t.get_status() != StreamPeerTCP.STATUS_CONNECTED, 3.0)
	return acc[0]


func test_a_health_check_with_godots_http_client_gets_the_games_answer() -> void:
	var h := _healthz_server()
	await connected_client(h)  # one WebSocket client, upgraded as always
	var http := HTTPClient.new()
	check_eq(http.connect_to_host("127.0.0.1", h.port), OK, "connect_to_host")
	var ok: bool = await pump([h, http], func() -> bool: return http.get_status() == HTTPClient.STATUS_CONNECTED)
	check(ok, "HTTPClient connected")
	check_eq(http.request(HTTPClient.METHOD_GET, "/healthz?from=lb", PackedStringArray()), OK, "request")
	var body: Array[PackedByteArray] = [PackedByteArray()]
	ok = await pump([h, http], func() -> bool:
		if http.get_status() == HTTPClient.STATUS_BODY:
			body[0].append_array(http.read_response_body_chunk())
		return http.has_response() and http.get_status() != HTTPClient.STATUS_BODY and http.get_status() != HTTPClient.STATUS_REQUESTING)
	check(ok, "a response came")
	check_eq(http.get_response_code(), 200, "status")
	check_eq(http.get_response_headers_as_dictionary().get("Content-Type", ""), "application/json", "content type")
	check_eq(body[0].get_string_from_utf8(), "{\"players\":1}", "body: the game's JSON")
	var http_events := h.events.filter(func(e: Array) -> bool: return e[0] == "http")
	check_eq(http_events.size(), 1, "one http_request")
	check_eq(http_events[0].slice(2), ["GET", "/healthz?from=lb", false], "method, resource, not an upgrade")
	check_eq(h.count("connected"), 1, "the request never became a client")
	http.close()


func test_head_other_paths_and_other_methods() -> void:
	var h := _healthz_server()
	var head := await _raw_http(h, "HEAD /healthz HTTP/1.0\r\n\r\n")
	check(head.begins_with("HTTP/1.1 200 OK\r\n"), head)
	check(head.contains("\r\nContent-Length: 13\r\n") and head.ends_with("\r\n\r\n"), "HEAD: the length, no body: " + head)
	var missing := await _raw_http(h, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
	check(missing.begins_with("HTTP/1.1 404 Not Found\r\n") and missing.ends_with("no such page"), missing)
	var post := await _raw_http(h, "POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
	check(post.begins_with("HTTP/1.1 405 ") and post.contains("Allow: GET, HEAD"), post)
	check_eq(h.events.filter(func(e: Array) -> bool: return e[0] == "http").size(), 2, "POST never reached the game")


func test_an_answer_may_come_in_a_later_frame_and_none_at_all_is_503() -> void:
	expect_error("no request with id")
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void:
		s.answer_http_requests = true
		s.handshake_timeout = 0.5)
	var waiting: Array[int] = []
	h.server.http_request.connect(func(id: int, _r: WebSocketServerRequest) -> void: waiting.append(id))
	var t := await raw_tcp(h)
	t.put_data("GET /later HTTP/1.1\r\n\r\n".to_utf8_buffer())
	await pump([h, t], func() -> bool: return waiting.size() == 1)
	await pump_for([h, t], 0.1)
	check_eq(h.server.respond(waiting[0], 200, PackedByteArray([1, 2, 3]), PackedStringArray(["Content-Type: application/octet-stream"])), OK, "answered frames later")
	var got := await read_head(h, t)
	check(got.begins_with("HTTP/1.1 200 OK\r\n") and got.contains("Content-Length: 3"), got)
	# Nobody answers this one: 503 at handshake_timeout, and a late answer is refused.
	var started := Time.get_ticks_msec()
	var late := await _raw_http(h, "GET /never HTTP/1.1\r\n\r\n")
	check(late.begins_with("HTTP/1.1 503 "), late)
	check(Time.get_ticks_msec() - started >= 400, "answered at the timeout")
	check_eq(h.server.respond(waiting[1], 200, ""), ERR_DOES_NOT_EXIST, "too late")


func test_bad_answers_are_refused_with_an_error() -> void:
	expect_error("status must be 200-599")
	expect_error("body must be a String or a PackedByteArray")
	expect_error("Content-Length is written by the server itself")
	expect_error("is not a WebSocket upgrade")
	expect_error("at most outbound_buffer_size")
	var h := start_server(PackedStringArray(), func(s: WebSocketServer) -> void:
		s.answer_http_requests = true
		s.outbound_buffer_size = 1000)
	var waiting: Array[int] = []
	h.server.http_request.connect(func(id: int, _r: WebSocketServerRequest) -> void: waiting.append(id))
	var t := await raw_tcp(h)
	t.put_data("GET / HTTP/1.1\r\n\r\n".to_utf8_buffer())
	await pump([h, t], func() -> bool: return waiting.size() == 1)
	var id := waiting[0]
	check_eq(h.server.respond(id, 101, ""), ERR_INVALID_PARAMETER, "status 101")
	check_eq(h.server.respond(id, 200, 42), ERR_INVALID_PARAMETER, "an int body")
	check_eq(h.server.respond(id, 200, "x", PackedStringArray(["Content-Length: 5"])), ERR_INVALID_PARAMETER, "our header")
	check_eq(h.server.respond(id, 200, "x".repeat(1001)), ERR_INVALID_PARAMETER, "a body over outbound_buffer_size")
	check_eq(h.server.accept_upgrade(id), ERR_INVALID_PARAMETER, "a plain request cannot be upgraded")
	check_eq(h.server.respond(id, 204, ""), OK, "a good answer still works after the refused ones")
	var got := await read_head(h, t)
	check(got.begins_with("HTTP/1.1 204 No Content\r\n"), got)


func test_off_by_default_a_plain_request_is_refused_before_the_game_hears_of_it() -> void:
	var h := start_server()
	var got := await _raw_http(h, "GET /healthz HTTP/1.1\r\n\r\n")
	check(got.begins_with("HTTP/1.1 400 "), got)
	check_eq(h.events, [], "no signal")
