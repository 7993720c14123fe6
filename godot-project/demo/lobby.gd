## A multiplayer lobby with chat over Godot's high-level multiplayer (RPCs). The server is our
## WebSocketServer in multiplayer mode; the clients are Godot's stock WebSocketMultiplayerPeer.
## Run one server and N clients with scripts/lobby-demo.sh N, or by hand:
##   godot --headless --path godot-project res://demo/lobby.tscn -- --server [--port 9081]
##   godot --headless --path godot-project res://demo/lobby.tscn -- --name ann [--url ws://127.0.0.1:9081]
## A client says hello, chats a little and leaves after --stay seconds (default 3).
extends Node

## Player names by peer id, kept by the server and sent to everyone.
var players := {}
var my_name := ""


func _ready() -> void:
	multiplayer.peer_connected.connect(func(id: int) -> void: _log("peer %d connected" % id))
	multiplayer.peer_disconnected.connect(_on_peer_disconnected)
	multiplayer.connected_to_server.connect(_on_connected_to_server)
	multiplayer.connection_failed.connect(func() -> void: _log("could not connect"); _leave())
	multiplayer.server_disconnected.connect(func() -> void: _log("the server closed"); _leave())
	if OS.get_cmdline_user_args().has("--server"):
		var server := WebSocketServer.new()
		var err := server.listen(int(_option("--port", "9081")), PackedStringArray(), true)
		if err != OK:
			_log("cannot listen: %s" % error_string(err))
			get_tree().quit(1)
			return
		multiplayer.multiplayer_peer = server
		_log("lobby open on port %d" % server.get_local_port())
	else:
		my_name = _option("--name", "player")
		var client := WebSocketMultiplayerPeer.new()
		client.create_client(_option("--url", "ws://127.0.0.1:9081"))
		multiplayer.multiplayer_peer = client


func _option(name: String, default := "") -> String:
	var args := OS.get_cmdline_user_args()
	var i := args.find(name)
	return args[i + 1] if i >= 0 and i + 1 < args.size() else default


func _log(text: String) -> void:
	var who := "server" if multiplayer.is_server() else my_name
	print("[%s] %s" % [who, text])


func _on_connected_to_server() -> void:
	_log("joined as peer %d" % multiplayer.get_unique_id())
	join.rpc_id(1, my_name)
	for line in ["hello everyone!", "anyone up for a match?", "gg, see you"]:
		await get_tree().create_timer(0.5).timeout
		say.rpc_id(1, line)
	await get_tree().create_timer(float(_option("--stay", "3"))).timeout
	_leave()


func _leave() -> void:
	multiplayer.multiplayer_peer = null
	get_tree().quit()


func _on_peer_disconnected(id: int) -> void:
	if multiplayer.is_server() and players.has(id):
		var who: String = players[id]
		players.erase(id)
		show_line.rpc("*", "%s left" % who)
		update_players.rpc(players.values())


# Client -> server: a player introduces itself.
@rpc("any_peer", "call_remote", "reliable")
func join(player_name: String) -> void:
	players[multiplayer.get_remote_sender_id()] = player_name
	show_line.rpc("*", "%s joined" % player_name)
	update_players.rpc(players.values())


# Client -> server: a chat line, which the server passes to everyone.
@rpc("any_peer", "call_remote", "reliable")
func say(text: String) -> void:
	var who: String = players.get(multiplayer.get_remote_sender_id(), "?")
	show_line.rpc(who, text)


# Server -> everyone (the server too).
@rpc("authority", "call_local", "reliable")
func show_line(who: String, text: String) -> void:
	_log("%s: %s" % [who, text])


@rpc("authority", "call_local", "reliable")
func update_players(names: Array) -> void:
	_log("in the lobby: %s" % ", ".join(PackedStringArray(names)))
