## Static files on the WebSocket's port (mount, set_file_headers): Godot's own HTTPClient loads
## files from the server while a WebSocketPeer chats on the same port; byte-exact bodies, HEAD,
## 304 on revalidation, keep-alive, a file of a few MiB, traversal refused, and the API's errors.
extends TestSuite

const SITE := "user://files_test_site"


## A small site under user://: a page, a wasm file, a 3 MiB file, a subdirectory.
func _make_site() -> Dictionary:
	DirAccess.make_dir_recursive_absolute(SITE + "/sub")
	var files := {
		"index.html": "<!doctype html><p>hello</p>".to_utf8_buffer(),
		"game.wasm": PackedByteArray([0, 97, 115, 109, 1, 0, 0, 0]),
		"sub/index.html": "sub".to_utf8_buffer(),
	}
	var big := PackedByteArray()
	big.resize(3 * 1024 * 1024)
	for i in range(0, big.size(), 4096):
		big.encode_u32(i, i * 2654435761)
	files["big.pck"] = big
	for name: String in files:
		var f := FileAccess.open(SITE + "/" + name, FileAccess.WRITE)
		f.store_buffer(files[name])
		f.close()
	return files


func _site_server(configure := Callable()) -> ServerHarness:
	_make_site()
	return start_server(PackedStringArray(), func(s: WebSocketServer) -> void:
		check_eq(s.mount("/", SITE), OK, "mount")
		check_eq(s.set_file_headers(PackedStringArray(["Cross-Origin-Opener-Policy: same-origin", "Cross-Origin-Embedder-Policy: require-corp"])), OK, "set_file_headers")
		if configure.is_valid():
			configure.call(s))


## One request on `http` (connected); returns [code, headers dictionary, body].
func _fetch(h: ServerHarness, http: HTTPClient, path: String, headers := PackedStringArray(), method := HTTPClient.METHOD_GET) -> Array:
	if http.get_status() != HTTPClient.STATUS_CONNECTED:
		check_eq(http.connect_to_host("127.0.0.1", h.port), OK, "connect_to_host")
		await pump([h, http], func() -> bool: return http.get_status() == HTTPClient.STATUS_CONNECTED)
	check_eq(http.request(method, path, headers), OK, "request " + path)
	var body: Array[PackedByteArray] = [PackedByteArray()]
	var ok: bool = await pump([h, http], func() -> bool:
		if http.get_status() == HTTPClient.STATUS_BODY:
			body[0].append_array(http.read_response_body_chunk())
		return http.has_response() and http.get_status() != HTTPClient.STATUS_BODY and http.get_status() != HTTPClient.STATUS_REQUESTING, 10.0)
	check(ok, "a response to " + path)
	return [http.get_response_code(), http.get_response_headers_as_dictionary(), body[0]]


func test_files_come_back_byte_exact_beside_a_websocket_client() -> void:
	var files := _make_site()
	var h := _site_server()
	var pair := await connected_client(h)
	var ws: WebSocketPeer = pair[0]
	var http := HTTPClient.new()
	var page := await _fetch(h, http, "/")
	check_eq(page[0], 200, "status of /")
	check_eq(page[2], files["index.html"], "index.html byte-exact")
	check_eq(page[1].get("Content-Type", ""), "text/html; charset=utf-8", "html type")
	check_eq(page[1].get("Cross-Origin-Embedder-Policy", ""), "require-corp", "the file headers")
	var wasm := await _fetch(h, http, "/game.wasm")
	check_eq(wasm[1].get("Content-Type", ""), "application/wasm", "wasm type")
	check_eq(wasm[2], files["game.wasm"], "wasm byte-exact")
	var big := await _fetch(h, http, "/big.pck")
	check_eq(big[0], 200, "status of the big file")
	check_eq(big[2].size(), files["big.pck"].size(), "big file's size")
	check(big[2] == files["big.pck"], "big file byte-exact")
	check_eq(h.count("connected"), 1, "the requests never became clients")
	# The WebSocket client on the same port is served all along.
	ws.send_text("still here")
	var got := await pump([h, ws], func() -> bool: return h.server.get_peer(pair[1]).get_available_packet_count() > 0)
	check(got, "the WebSocket client's message arrived")
	http.close()


func test_head_revalidation_and_keep_alive() -> void:
	var h := _site_server()
	var http := HTTPClient.new()
	var first := await _fetch(h, http, "/index.html")
	var etag: String = first[1].get("ETag", "")
	check(etag.begins_with("\"") and etag.ends_with("\""), "an ETag: " + etag)
	check_eq(first[1].get("Connection", ""), "keep-alive", "keep-alive")
	var again := await _fetch(h, http, "/index.html", PackedStringArray(["If-None-Match: " + etag]))
	check_eq(again[0], 304, "revalidation: 304")
	check_eq(again[2].size(), 0, "no body with 304")
	var head := await _fetch(h, http, "/index.html", PackedStringArray(), HTTPClient.METHOD_HEAD)
	check_eq(head[0], 200, "HEAD status")
	check_eq(head[2].size(), 0, "HEAD: no body")
	check_eq(h.server.get_stats()["accepted_total"], 1, "three requests over one connection")
	http.close()


func test_paths_outside_the_directory_and_missing_files_are_refused() -> void:
	var h := _site_server()
	for path: String in ["/../project.godot", "/%2e%2e/project.godot", "/sub/../../x", "/..%5cx", "/.godot", "/c:/x"]:
		var http := HTTPClient.new()
		var r := await _fetch(h, http, path)
		check(r[0] == 403 or r[0] == 404 or r[0] == 400, "%s refused: %d" % [path, r[0]])
		http.close()
	var http := HTTPClient.new()
	check_eq((await _fetch(h, http, "/nothing.js"))[0], 404, "missing file")
	http.close()
	http = HTTPClient.new()
	check_eq((await _fetch(h, http, "/sub"))[0], 301, "a directory without its slash is redirected")
	http.close()


func test_the_api_says_what_is_wrong() -> void:
	_make_site()
	var s := new_server()
	expect_error("must start with /")
	check_eq(s.mount("game", SITE), ERR_INVALID_PARAMETER, "a prefix without /")
	expect_error("is not a directory")
	check_eq(s.mount("/", "user://no_such_directory"), ERR_FILE_NOT_FOUND, "a missing directory")
	expect_error("written by the server")
	check_eq(s.set_file_headers(PackedStringArray(["Content-Type: text/plain"])), ERR_INVALID_PARAMETER, "a header the server writes")
	check_eq(s.mount("/game", SITE), OK, "mount")
	check_eq(s.get_mounts().keys(), ["/game/"], "get_mounts")
	check_eq(s.listen(0), OK, "listen")
	expect_error("cannot change while listening")
	check_eq(s.mount("/x", SITE), ERR_ALREADY_IN_USE, "mount while listening")
	s.stop()
	check_eq(s.unmount("/game/"), OK, "unmount")
	expect_error("nothing is mounted")
	check_eq(s.unmount("/game/"), ERR_DOES_NOT_EXIST, "unmount again")
