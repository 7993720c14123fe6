## One scenario of Godot's high-level multiplayer, played by one server process and several client
## processes (tests/python/test_multiplayer.py starts them). The server is either our
## WebSocketServer (--impl ours) or Godot's WebSocketMultiplayerPeer (--impl stock); clients are
## always the stock WebSocketMultiplayerPeer. Every process prints what it observes as "OBS ..."
## lines, with peer ids replaced by client numbers, so the two runs can be compared line by line.
##
## Options after `--`: --role server|client, --impl ours|stock, --port N, --clients N and
## --refused-done FILE (server), --idx N (client number; the client numbered 9 expects to be
## refused), --inline (our server's io_mode IO_MODE_INLINE).
extends Node

const PLAYER := preload("res://tests/multiplayer/player.tscn")

var role := ""
var idx := -1
var clients := 0
## Peer id -> client number, learned from `announce`.
var number_of := {}
var got := {}
var acks := {}
var disconnected: Array = []
var joined_while_refusing := 0
var refusing := false
var server_peer: MultiplayerPeer


func obs(text: String) -> void:
	print("OBS " + text)


func opt(name: String, default := "") -> String:
	var args := OS.get_cmdline_user_args()
	var i := args.find(name)
	return args[i + 1] if i >= 0 and i + 1 < args.size() else default


func _ready() -> void:
	role = opt("--role")
	idx = int(opt("--idx", "-1"))
	clients = int(opt("--clients", "0"))
	var port := int(opt("--port"))
	multiplayer.peer_connected.connect(_on_peer_connected)
	multiplayer.peer_disconnected.connect(_on_peer_disconnected)
	multiplayer.connected_to_server.connect(_on_connected_to_server)
	multiplayer.connection_failed.connect(_on_connection_failed)
	multiplayer.server_disconnected.connect(_on_server_disconnected)
	get_tree().create_timer(60.0).timeout.connect(_on_timeout)
	if role == "server":
		var err: Error
		if opt("--impl") == "ours":
			var ours := WebSocketServer.new()
			ours.bind_ip = "127.0.0.1"
			if OS.get_cmdline_user_args().has("--inline"):
				ours.io_mode = WebSocketServer.IO_MODE_INLINE
			err = ours.listen(port, PackedStringArray(), true)
			server_peer = ours
		else:
			var stock := WebSocketMultiplayerPeer.new()
			err = stock.create_server(port, "127.0.0.1")
			server_peer = stock
		if err != OK:
			print("LISTEN FAILED %s" % error_string(err))
			get_tree().quit(2)
			return
		multiplayer.multiplayer_peer = server_peer
		print("LISTENING %d" % port)
		_run_server()
	else:
		var c := WebSocketMultiplayerPeer.new()
		c.create_client("ws://127.0.0.1:%d/" % port)
		multiplayer.multiplayer_peer = c


func _on_timeout() -> void:
	obs("%s: timed out" % _me())
	_quit(3)


func _me() -> String:
	return "server" if role == "server" else "client %d" % idx


func _name(id: int) -> String:
	return "server" if id == 1 else ("client %d" % number_of[id] if number_of.has(id) else "unknown")


func _id_of(number: int) -> int:
	for id: int in number_of:
		if number_of[id] == number:
			return id
	return -1


func _wait(condition: Callable, timeout := 15.0) -> bool:
	var deadline := Time.get_ticks_msec() + int(timeout * 1000.0)
	while not condition.call():
		if Time.get_ticks_msec() > deadline:
			return false
		await get_tree().process_frame
	return true


func _pause(seconds: float) -> void:
	await get_tree().create_timer(seconds).timeout


# ---- the server's script

func _run_server() -> void:
	var ok: bool = await _wait(func() -> bool: return number_of.size() == clients)
	obs("server: %d clients announced: %s" % [clients, ok])
	set_numbers.rpc(number_of)
	obs("server: is_server %s, unique id %d, relay %s" % [
		multiplayer.is_server(), multiplayer.get_unique_id(), server_peer.is_server_relay_supported()])
	hello_all.rpc()
	for id: int in number_of:
		hello_you.rpc_id(id, number_of[id])
	local_too.rpc()
	unreliable_ping.rpc()
	for n in clients:
		var p := PLAYER.instantiate()
		p.name = "P%d" % n
		$World.add_child(p, true)
		p.score = 40 + n
	do_relay.rpc_id(_id_of(0), _id_of(1))
	ok = await _wait(func() -> bool: return acks.size() == clients)
	obs("server: every client saw the RPCs, spawns and sync: %s" % ok)

	refusing = true
	server_peer.refuse_new_connections = true
	print("REFUSING")  # the test now starts client 9, and creates --refused-done once it has ended
	ok = await _wait(func() -> bool: return FileAccess.file_exists(opt("--refused-done")), 30.0)
	obs("server: client 9 has tried: %s" % ok)
	obs("server: peers that joined while refusing: %d" % joined_while_refusing)
	obs("server: peers still connected: %d" % multiplayer.get_peers().size())

	please_quit.rpc_id(_id_of(2))
	server_peer.disconnect_peer(_id_of(1))  # MultiplayerPeer: a normal close
	multiplayer.disconnect_peer(_id_of(3))  # SceneMultiplayer: forced, and it tells the others
	ok = await _wait(func() -> bool: return disconnected.has(1) and disconnected.has(2))
	await _pause(1.0)
	disconnected.sort()
	obs("server: peer_disconnected for %s (%s)" % [disconnected, ok])
	ok = await _wait(func() -> bool: return acks.get(0, "") == "alone")
	obs("server: client 0 saw everyone leave: %s" % ok)
	server_peer.close()
	obs("server: after close(): status %d" % server_peer.get_connection_status())
	await _pause(0.5)
	_quit()


func _quit(code := 0) -> void:
	multiplayer.multiplayer_peer = null
	get_tree().quit(code)


# ---- signals

func _on_peer_connected(id: int) -> void:
	if role == "server" and refusing:
		joined_while_refusing += 1


func _on_peer_disconnected(id: int) -> void:
	if role == "server":
		disconnected.append(number_of.get(id, -1))
	elif number_of.has(id):
		obs("client %d: peer_disconnected %s" % [idx, _name(id)])


func _on_connected_to_server() -> void:
	obs("client %d: connected, id valid %s" % [idx, multiplayer.get_unique_id() >= 2])
	announce.rpc(idx)


func _on_connection_failed() -> void:
	obs("client %d: connection failed" % idx)
	_quit()


func _on_server_disconnected() -> void:
	if role == "client":
		obs("client %d: server disconnected" % idx)
		_quit()


# ---- the client's checks

func _process(_delta: float) -> void:
	if role != "client" or got.has("acked") or number_of.size() < 4:
		return
	var players := $World.get_children()
	var synced := players.size() == 4 and players.all(func(p: Node) -> bool:
		return p.score == 40 + int(String(p.name).substr(1)))
	var need := ["hello_all", "hello_you", "local_too", "unreliable_ping"]
	if idx == 1:
		need.append("relay")
	if synced and need.all(func(k: String) -> bool: return got.has(k)):
		got["acked"] = true
		obs("client %d: players %s synced" % [idx, players.map(func(p: Node) -> String: return String(p.name))])
		var peers := Array(multiplayer.get_peers()).map(func(id: int) -> String: return _name(id))
		peers.sort()
		obs("client %d: peers %s" % [idx, peers])
		ack.rpc_id(1, idx, "rpcs")
	if got.has("acked") and idx == 0:
		set_process(false)
		_wait_alone()


func _wait_alone() -> void:
	await _wait(func() -> bool: return Array(multiplayer.get_peers()) == [1], 30.0)
	obs("client 0: peers left: %s" % [Array(multiplayer.get_peers()).map(func(id: int) -> String: return _name(id))])
	ack.rpc_id(1, 0, "alone")


# ---- RPCs

@rpc("any_peer", "call_remote", "reliable")
func announce(number: int) -> void:
	number_of[multiplayer.get_remote_sender_id()] = number


@rpc("authority", "call_remote", "reliable")
func set_numbers(numbers: Dictionary) -> void:
	number_of = numbers


@rpc("authority", "call_remote", "reliable")
func hello_all() -> void:
	got["hello_all"] = true
	obs("client %d: hello_all from %s" % [idx, _name(multiplayer.get_remote_sender_id())])


@rpc("authority", "call_remote", "reliable")
func hello_you(number: int) -> void:
	got["hello_you"] = true
	obs("client %d: hello_you addressed to me: %s" % [idx, number == idx])


@rpc("authority", "call_local", "reliable")
func local_too() -> void:
	got["local_too"] = true
	obs("%s: local_too" % _me())


@rpc("authority", "call_remote", "unreliable")
func unreliable_ping() -> void:
	got["unreliable_ping"] = true
	obs("client %d: unreliable_ping" % idx)


@rpc("authority", "call_remote", "reliable")
func do_relay(target: int) -> void:
	relay_msg.rpc_id(target, idx)


@rpc("any_peer", "call_remote", "reliable")
func relay_msg(from_number: int) -> void:
	got["relay"] = true
	obs("client %d: relayed message from client %d, sender id matches: %s" % [
		idx, from_number, number_of.get(multiplayer.get_remote_sender_id(), -1) == from_number])


@rpc("any_peer", "call_remote", "reliable")
func ack(number: int, what: String) -> void:
	acks[number] = what


@rpc("authority", "call_remote", "reliable")
func please_quit() -> void:
	obs("client %d: asked to quit" % idx)
	_quit()
