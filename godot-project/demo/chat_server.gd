## Chat rooms: every message a client sends goes to every other client in its room, named by the
## `room` query parameter (`ws://host:9080/?room=blue`; no parameter: "lobby"). Clients that
## connect with `events=json` (the browser page, demo/web/chat.html) get everything as JSON
## instead: `welcome` (their id and who is in the room), `join`, `leave`, `message` (with the
## sender's id and `name`, from the `name` query parameter) and `binary` (its size); other clients
## get the messages themselves, as sent (text or binary, empty ones too). The text message
## "/where" is answered (to the sender only) with where the server sees it: this process's
## --name, the room and the client's address. Prints each connect, message and disconnect. Run it
## with scripts/demo.sh (or `godot --headless --path godot-project`), then connect with any
## WebSocket client, e.g. `python -m websockets ws://127.0.0.1:9080/`.
##
## Command-line options (after `--`): --port N (default 9080; 0 picks a free port),
## --bind IP (default "*"), --name NAME (default "chat"; tells processes behind one nginx apart),
## --trusted-proxies LIST (comma-separated addresses or CIDR ranges of proxies, e.g. 127.0.0.1
## for nginx on the same machine, whose X-Forwarded-For names the client), --proxy-protocol
## (connections come through a PROXY-protocol proxy such as nginx `stream`), and for wss://:
## --tls-cert FILE --tls-key FILE [--tls-ca-chain FILE] (PEM files, res:// or absolute paths,
## e.g. Let's Encrypt's fullchain.pem and privkey.pem). See deploy/nginx/. --inline: the socket work
## happens in poll() (io_mode IO_MODE_INLINE) instead of on the server's I/O thread.
## --web DIR: the directory served on the same port (default res://demo/web, the chat page: open
## http://127.0.0.1:9080/ in a browser: / leads to /chat.html); --web "" serves none. GET /healthz is answered with the
## number of clients as JSON (for a load balancer's health check). --allowed-origins LIST: the
## origins whose pages may connect (comma-separated, e.g. https://game.example.com: the page's own).
## --bus URL (redis://host:6379): rooms and the global channel ("/all <text>") are topics shared by
## every process on that Valkey/Redis server, so players on different processes chat together
## (see deploy/ and scripts/demo.sh --cluster). --compression: permessage-deflate with the clients
## that offer it (browsers do; Godot's WebSocketPeer does not), each message on its own
## (COMPRESSION_SHARED); --compression dedicated: with context takeover (COMPRESSION_DEDICATED,
## chat lines shrink about twice as much, 4 KiB per connection).
extends Node

var server := WebSocketServer.new()
## Each client's room, name, and whether it wants JSON events.
var rooms := {}
var names := {}
var json_clients := {}
var instance := "chat"


func _ready() -> void:
	var port := int(_option("--port", "9080"))
	server.bind_ip = _option("--bind", "*")
	instance = _option("--name", "chat")
	if _option("--trusted-proxies") != "":
		server.trusted_proxies = PackedStringArray(_option("--trusted-proxies").split(","))
	server.proxy_protocol = OS.get_cmdline_user_args().has("--proxy-protocol")
	if OS.get_cmdline_user_args().has("--compression"):
		server.compression = WebSocketServer.COMPRESSION_SHARED
		if _option("--compression") == "dedicated":
			server.compression = WebSocketServer.COMPRESSION_DEDICATED
	if _option("--bus") != "":
		server.bus_url = _option("--bus")
		server.bus_connected.connect(func() -> void: print("bus connected"))
		server.bus_disconnected.connect(func(reason: String) -> void: print("bus disconnected: ", reason))
		server.bus_publish_failed.connect(func(n: int) -> void: print("bus: %d publishes failed" % n))
	if _option("--allowed-origins") != "":
		server.allowed_origins = PackedStringArray(_option("--allowed-origins").split(","))
	if OS.get_cmdline_user_args().has("--inline"):
		server.io_mode = WebSocketServer.IO_MODE_INLINE
	if _option("--tls-cert") != "":
		var cert := X509Certificate.new()
		var key := CryptoKey.new()
		if cert.load(_option("--tls-cert")) != OK or key.load(_option("--tls-key")) != OK:
			printerr("cannot load --tls-cert or --tls-key")
			get_tree().quit(1)
			return
		server.ssl_certificate = cert
		server.private_key = key
		if _option("--tls-ca-chain") != "":
			var chain := X509Certificate.new()
			chain.load(_option("--tls-ca-chain"))
			server.ca_chain = chain
	# The chat page on the same port as its WebSocket (same origin: allowed_origins can be the
	# page's own), and a health check.
	var web := _option("--web", "res://demo/web")
	if web != "" and server.mount("/", web) != OK:
		get_tree().quit(1)
		return
	server.answer_http_requests = true
	server.http_request.connect(_on_http_request)
	server.client_connected.connect(_on_client_connected)
	server.client_disconnected.connect(_on_client_disconnected)
	server.client_close_request.connect(_on_client_close_request)
	server.data_received.connect(_on_data_received)
	var err := server.listen(port)
	if err != OK:
		printerr("cannot listen on port %d: %s" % [port, error_string(err)])
		get_tree().quit(1)
		return
	var scheme := "wss" if server.ssl_certificate != null else "ws"
	print("chat server listening on port %d (%s://, Ctrl-C to stop)" % [server.get_local_port(), scheme])
	if web != "":
		print("the chat page: %s://127.0.0.1:%d/" % ["https" if scheme == "wss" else "http", server.get_local_port()])


func _option(name: String, default := "") -> String:
	var args := OS.get_cmdline_user_args()
	var i := args.find(name)
	return args[i + 1] if i >= 0 and i + 1 < args.size() else default


func _on_http_request(id: int, request: WebSocketServerRequest) -> void:
	if request.get_path() == "/healthz":
		var status := {"clients": rooms.size(), "name": instance}
		server.respond(id, 200, JSON.stringify(status), PackedStringArray(["Content-Type: application/json", "Cache-Control: no-store"]))
	elif request.get_path() == "/":
		var query := request.get_query()
		server.respond(id, 302, "", PackedStringArray(["Location: /chat.html" + ("?" + query if query != "" else "")]))
	else:
		server.respond(id, 404, "not found")


func _process(_delta: float) -> void:
	server.poll()


func _on_client_connected(id: int, protocol: String, resource_name: String) -> void:
	var query := {"room": "lobby", "name": "#%d" % id, "events": ""}
	for pair in server.get_peer_request(id).get_query().split("&", false):
		var kv := pair.split("=", true, 1)
		if kv.size() == 2 and query.has(kv[0]):
			query[kv[0]] = kv[1].uri_decode()
	var room: String = query["room"]
	rooms[id] = room
	names[id] = query["name"]
	var kind := "raw"
	if query["events"] == "json":
		kind = "json"
		json_clients[id] = true
		var present := []
		for other: int in _room_mates(id):
			present.append({"id": other, "name": names[other]})
		_send_json(id, {"type": "welcome", "id": id, "name": names[id], "room": room, "peers": present})
	# The room and the global channel are topics: with --bus, they span every process.
	server.subscribe(id, _topic(room, kind))
	server.subscribe(id, _topic("", kind))
	_publish_json(room, {"type": "join", "id": id, "name": names[id]}, id)
	print("connect %d from %s:%d resource=%s protocol=%s room=%s" % [
		id, server.get_peer_address(id), server.get_peer_port(id), resource_name, protocol, room])


## The topic of `room` ("": the global channel) for clients that get JSON events or raw messages.
func _topic(room: String, kind: String) -> String:
	return ("room/%s/%s" % [room, kind]) if room != "" else "all/" + kind


## The other clients of this process in `id`'s room.
func _room_mates(id: int) -> Array[int]:
	var mates: Array[int] = []
	for kind: String in ["json", "raw"]:
		for other: int in server.get_subscribers(_topic(rooms[id], kind)):
			if other != id:
				mates.append(other)
	return mates


## Sends an event to a client that asked for JSON (others get nothing).
func _send_json(id: int, event: Dictionary) -> void:
	if json_clients.has(id):
		server.get_peer(id).send_text(JSON.stringify(event))


## Publishes a JSON event to the JSON clients of `room` ("": everyone), but `except`.
func _publish_json(room: String, event: Dictionary, except: int) -> void:
	_publish(_topic(room, "json"), JSON.stringify(event).to_utf8_buffer(), WebSocketPeer.WRITE_MODE_TEXT, except)


## Publishes unless the topic has nobody (here, and there is no bus to other processes).
func _publish(topic: String, bytes: PackedByteArray, mode: int, except: int) -> void:
	if server.bus_url != "" or server.get_subscribers(topic).size() > 0:
		server.publish(topic, bytes, mode, PackedInt32Array([except]))


func _on_data_received(id: int) -> void:
	var peer := server.get_peer(id)
	var packet := peer.get_packet()
	var is_text := peer.was_string_packet()
	if is_text:
		print("message %d: %s" % [id, packet.get_string_from_utf8().left(200)])
	else:
		print("message %d: %d bytes" % [id, packet.size()])
	var text := packet.get_string_from_utf8() if is_text else ""
	if text == "/where":
		peer.send_text("server=%s room=%s address=%s port=%d" % [
			instance, rooms[id], server.get_peer_address(id), server.get_peer_port(id)])
		return
	# "/all <text>": to every client of every room (and process, with --bus).
	var room: String = rooms[id]
	if text.begins_with("/all "):
		room = ""
		text = text.substr(5)
		packet = text.to_utf8_buffer()
	var event := {"type": "message", "from": id, "name": names[id], "text": text}
	if not is_text:
		event = {"type": "binary", "from": id, "name": names[id], "size": packet.size()}
	_publish_json(room, event, id)
	# send semantics: empty messages go out too (Godot's put_packet would skip them).
	_publish(_topic(room, "raw"), packet, WebSocketPeer.WRITE_MODE_TEXT if is_text else WebSocketPeer.WRITE_MODE_BINARY, id)


func _on_client_close_request(id: int, code: int, reason: String) -> void:
	print("close request %d: code=%d reason=%s" % [id, code, reason])


func _on_client_disconnected(id: int, was_clean_close: bool) -> void:
	# (Its subscriptions ended with it: the room's others get the event.)
	_publish_json(rooms[id], {"type": "leave", "id": id, "name": names[id], "clean": was_clean_close}, id)
	rooms.erase(id)
	names.erase(id)
	json_clients.erase(id)
	print("disconnect %d clean=%s" % [id, was_clean_close])


func _exit_tree() -> void:
	server.stop()
