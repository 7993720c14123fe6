## A Godot WebSocketPeer in the chat room, for tests/browser/test_chat_page.py: prints what it
## gets ("GODOT GOT <bytes> <text>"), answers "hello everyone" with a non-ASCII line, and ends on
## "bye godot". Usage: godot --headless --path godot-project -s res://tests/browser/chat_client.gd -- URL
extends SceneTree

var ws := WebSocketPeer.new()
var was_open := false


func _initialize() -> void:
	ws.connect_to_url(OS.get_cmdline_user_args()[0])


func _process(_delta: float) -> bool:
	ws.poll()
	var state := ws.get_ready_state()
	if state == WebSocketPeer.STATE_OPEN and not was_open:
		was_open = true
		print("GODOT OPEN")
	while ws.get_available_packet_count() > 0:
		var data := ws.get_packet()
		var text := data.get_string_from_utf8()
		print("GODOT GOT %d %s" % [data.size(), text.left(80)])
		if text == "hello everyone":
			ws.send_text("héllo from Godot ✓")
		elif text == "bye godot":
			ws.close()
	if state == WebSocketPeer.STATE_CLOSED:
		print("GODOT CLOSED %d" % ws.get_close_code())
		quit(0)
	return false
