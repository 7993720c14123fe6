## The target of the attack suite and the soak (tests/attacks/, scripts/soak.sh): this addon's
## WebSocketServer in raw mode, echoing every message back as it came (text or binary), in a plain
## headless game loop. Keeps books on what the game was told: every id must be connected once and
## disconnected once; a second report, or a report for an unknown id, prints "BOOKS ERROR".
## Prints "LISTENING <port>" once, then a STATS line every 0.2 s:
##   connected, open, disconnected, clean (disconnects), messages (received), bytes (received),
##   refused (sends that failed). (Memory, descriptors and threads are read from /proc by the
##   test, which knows the pid.)
## Options after `--`: --port N (0: any), --tls (wss:// with the ECDSA test certificate),
## --handshake-timeout S, --partial-timeout S, --heartbeat S, --limit BYTES (inbound and outbound buffer sizes), --no-read (never
## read messages: every client's inbound queue fills), --no-reply (read every message, answer none),
## --mp (multiplayer mode: echo to the sender), --inline (io_mode IO_MODE_INLINE: the socket work
## happens in poll()), --graceful (shutdown_on_sigterm: SIGTERM shuts down with 1001, then
## "SHUTDOWN FINISHED ..." is printed and the game quits; --shutdown-timeout S), --http
## (answer_http_requests: GET /healthz answers {"open", "connected", "listening"} as JSON, other
## paths 404; STATS counts them as http), --mount DIR (serves the files of DIR, an OS path, at /), --compression (permessage-deflate,
## COMPRESSION_SHARED), --dedicated BITS (COMPRESSION_DEDICATED with that window). A text message starting with "plain:" is
## echoed with compress = false.
## Internet-facing options: --max-connections N, --max-handshakes-per-address N (default: the
## property's), --trusted-proxies A,B, --proxy-protocol, --allowed-origins A,B, --authorize MODE
## (token: accept a request with "Authorization: Bearer good", or "token=good" in its query (what a
## browser can send), adding a Set-Cookie header; refuse others with 401; late: the same, decided 0.5 s later; never: no decision). A text message
## "whoami?" is answered with a JSON description of the client's request as the server sees it.
## --batch: the batch API instead of data_received (queue_messages; take_messages, then
## send_buffer), as a busy game would.
## STATS also has: requested, cancelled (upgrade_cancelled), accept_errors, refused_conns.
extends Node

var server := WebSocketServer.new()
var open := {}
var connected := 0
var disconnected := 0
var clean := 0
var messages := 0
var bytes := 0
var refused := 0
var no_read := false
var no_reply := false
var mp := false
var batch := false
var authorize := ""
var requested := 0
var cancelled := 0
var http_requests := 0
## [due msec, id, accept] for --authorize late.
var _decisions: Array = []
var _next_stats := 0


func _opt(name: String, default := "") -> String:
	var args := OS.get_cmdline_user_args()
	var i := args.find(name)
	return args[i + 1] if i >= 0 and i + 1 < args.size() else default


func _ready() -> void:
	OS.low_processor_usage_mode_sleep_usec = 1000
	var args := OS.get_cmdline_user_args()
	no_read = args.has("--no-read")
	no_reply = args.has("--no-reply")
	mp = args.has("--mp")
	server.bind_ip = "127.0.0.1"
	server.handshake_timeout = float(_opt("--handshake-timeout", "3.0"))
	# (Checked, so that the suite can also be pointed at builds from before the property.)
	if server.has_method("set_partial_message_timeout"):
		server.partial_message_timeout = float(_opt("--partial-timeout", "30.0"))
	if server.has_method("set_heartbeat_interval"):
		server.heartbeat_interval = float(_opt("--heartbeat", "20.0"))
	var limit := int(_opt("--limit", "0"))
	if limit > 0:
		server.inbound_buffer_size = limit
		server.outbound_buffer_size = limit
	if args.has("--inline"):
		server.io_mode = WebSocketServer.IO_MODE_INLINE
	if args.has("--max-connections"):
		server.max_connections = int(_opt("--max-connections"))
	if args.has("--max-handshakes-per-address"):
		server.max_handshakes_per_address = int(_opt("--max-handshakes-per-address"))
	if args.has("--trusted-proxies"):
		server.trusted_proxies = PackedStringArray(_opt("--trusted-proxies").split(","))
	if args.has("--allowed-origins"):
		server.allowed_origins = PackedStringArray(_opt("--allowed-origins").split(","))
	server.proxy_protocol = args.has("--proxy-protocol")
	authorize = _opt("--authorize")
	if authorize != "":
		server.authorize_upgrades = true
		server.upgrade_requested.connect(_on_upgrade_requested)
		server.upgrade_cancelled.connect(func(_id: int, _reason: String) -> void: cancelled += 1)
	if args.has("--tls"):
		server.private_key = load("res://tests/data/ecdsa.key")
		server.ssl_certificate = load("res://tests/data/ecdsa.crt")
	server.client_connected.connect(_on_connected)
	server.client_disconnected.connect(_on_disconnected)
	batch = args.has("--batch")
	if batch:
		server.queue_messages = true
	else:
		server.data_received.connect(_on_data)
	server.peer_connected.connect(func(id: int) -> void: _on_connected(id, "", ""))
	server.peer_disconnected.connect(func(id: int) -> void: _on_disconnected(id, false))
	if args.has("--http"):
		# A health check on the WebSocket port: GET /healthz answers the books as JSON.
		server.answer_http_requests = true
		server.http_request.connect(func(id: int, request: WebSocketServerRequest) -> void:
			http_requests += 1
			if request.get_path() == "/healthz":
				var status := {"open": open.size(), "connected": connected, "listening": server.is_listening()}
				server.respond(id, 200, JSON.stringify(status), PackedStringArray(["Content-Type: application/json", "Cache-Control: no-store"]))
			else:
				server.respond(id, 404, "no such page"))
	if args.has("--compression"):
		server.compression = WebSocketServer.COMPRESSION_SHARED
	if args.has("--dedicated"):
		server.compression = WebSocketServer.COMPRESSION_DEDICATED
		server.compression_window_bits = int(_opt("--dedicated", "12"))
	if args.has("--mount"):
		if server.mount("/", _opt("--mount")) != OK:
			get_tree().quit(1)
			return
	if args.has("--graceful"):
		# What a dedicated server does to stop cleanly on SIGTERM (docker stop, systemd).
		server.shutdown_on_sigterm = true
		server.shutdown_timeout = float(_opt("--shutdown-timeout", "5.0"))
		server.shutdown_finished.connect(func() -> void:
			print("SHUTDOWN FINISHED connected=%d disconnected=%d clean=%d" % [connected, disconnected, clean])
			get_tree().quit())
	var err := server.listen(int(_opt("--port", "0")), PackedStringArray(), mp)
	if err != OK:
		printerr("listen failed: ", error_string(err))
		get_tree().quit(1)
		return
	print("LISTENING %d" % server.get_local_port())


func _on_upgrade_requested(id: int, request: WebSocketServerRequest) -> void:
	requested += 1
	var good := request.get_header("authorization") == "Bearer good" or request.get_query().split("&").has("token=good")
	match authorize:
		"token":
			_decide(id, good)
		"late":
			_decisions.append([Time.get_ticks_msec() + 500, id, good])


func _decide(id: int, good: bool) -> void:
	if good:
		server.accept_upgrade(id, "", PackedStringArray(["Set-Cookie: session=%d; HttpOnly" % id]))
	else:
		server.reject_upgrade(id, 401, "a valid token is required", PackedStringArray(["WWW-Authenticate: Bearer"]))


func _whoami(id: int) -> String:
	var r := server.get_peer_request(id)
	return JSON.stringify({
		"address": server.get_peer_address(id), "port": server.get_peer_port(id),
		"client_address": r.get_client_address(), "client_port": r.get_client_port(),
		"socket_address": r.get_socket_address(), "socket_port": r.get_socket_port(),
		"headers": r.get_headers_as_dictionary(), "lines": r.get_headers(),
		"path": r.get_path(), "query": r.get_query(), "resource": r.get_resource_name(),
		"protocols": r.get_requested_protocols(), "sni": r.get_tls_server_name(),
		"cookie": r.get_header("COOKIE"), "has_origin": r.has_header("origin"),
	})


func _process(_delta: float) -> void:
	server.poll()
	while not _decisions.is_empty() and _decisions[0][0] <= Time.get_ticks_msec():
		var d: Array = _decisions.pop_front()
		_decide(d[1], d[2])
	if batch:
		_echo_batch()
	if mp:
		while server.get_available_packet_count() > 0:
			var from := server.get_packet_peer()
			var data := server.get_packet()
			messages += 1
			bytes += data.size()
			server.set_target_peer(from)
			if server.put_packet(data) != OK:
				refused += 1
	var now := Time.get_ticks_msec()
	if now >= _next_stats:
		_next_stats = now + 200
		_print_stats()


func _echo_batch() -> void:
	var taken := server.take_messages()
	if taken.is_empty():
		return
	messages += taken.size()
	bytes += taken.data.size()
	var failed := server.send_buffer(taken.ids, taken.data, taken.offsets, WebSocketServerPeer.WRITE_MODE_BINARY, taken.text)
	refused += failed.size()


func _on_connected(id: int, _protocol: String, _resource: String) -> void:
	if open.has(id):
		print("BOOKS ERROR: %d connected twice" % id)
	open[id] = true
	connected += 1


func _on_disconnected(id: int, was_clean: bool) -> void:
	if not open.erase(id):
		print("BOOKS ERROR: disconnect of %d, which is not connected" % id)
	disconnected += 1
	if was_clean:
		clean += 1


func _on_data(id: int) -> void:
	if no_read:
		return
	var peer := server.get_peer(id)
	var data := peer.get_packet()
	messages += 1
	bytes += data.size()
	if no_reply or peer.get_ready_state() != WebSocketServerPeer.STATE_OPEN:
		return
	var mode := WebSocketServerPeer.WRITE_MODE_TEXT if peer.was_string_packet() else WebSocketServerPeer.WRITE_MODE_BINARY
	if peer.was_string_packet() and data.get_string_from_utf8() == "whoami?":
		data = _whoami(id).to_utf8_buffer()
	var compress := not (peer.was_string_packet() and data.slice(0, 6).get_string_from_ascii() == "plain:")
	if peer.send(data, mode, compress) != OK:
		refused += 1


func _print_stats() -> void:
	var extra := ""
	if server.has_method("get_accept_error_count"):
		extra = " requested=%d cancelled=%d accept_errors=%d refused_conns=%d http=%d" % [requested, cancelled,
			server.get_accept_error_count(), server.get_refused_connection_count(), http_requests]
	print("STATS connected=%d open=%d disconnected=%d clean=%d messages=%d bytes=%d refused=%d%s" % [
		connected, open.size(), disconnected, clean, messages, bytes, refused, extra])
