extends SceneTree
# Listen, connect a client, echo one message, stop.
var server := WebSocketServer.new()
var client := WebSocketPeer.new()
var sent := false
var frames := 0

func _initialize() -> void:
    server.bind_ip = "127.0.0.1"
    server.data_received.connect(func(id: int) -> void:
        var peer := server.get_peer(id)
        peer.send_text(peer.get_packet().get_string_from_utf8()))
    if server.listen(0) != OK:
        print("SMOKE FAIL listen")
        quit(1)
        return
    client.connect_to_url("ws://127.0.0.1:%d/" % server.get_local_port())

func _process(_delta: float) -> bool:
    server.poll()
    client.poll()
    frames += 1
    if client.get_ready_state() == WebSocketPeer.STATE_OPEN and not sent:
        client.send_text("héllo from the package")
        sent = true
    if client.get_available_packet_count() > 0:
        var text := client.get_packet().get_string_from_utf8()
        print("SMOKE ECHO " + text)
        client.close()
        server.stop()
        print("SMOKE OK" if text == "héllo from the package" and not server.is_listening() else "SMOKE FAIL echo")
        quit(0)
    elif frames > 2000:
        print("SMOKE FAIL timeout")
        quit(1)
    return false
