## A WebSocketServer with every signal recorded in order, as [kind, id, ...args].
class_name ServerHarness
extends RefCounted

var server := WebSocketServer.new()
var events: Array = []
var port := 0
## The requests of upgrade_requested, by id.
var requests := {}
## Called as decide.call(id, request) from upgrade_requested, if set.
var decide := Callable()


func _init() -> void:
	server.client_connected.connect(_on_connected)
	server.client_disconnected.connect(_on_disconnected)
	server.client_close_request.connect(_on_close_request)
	server.data_received.connect(_on_data)
	server.peer_connected.connect(_on_peer_connected)
	server.peer_disconnected.connect(_on_peer_disconnected)
	server.upgrade_requested.connect(_on_upgrade_requested)
	server.upgrade_cancelled.connect(_on_upgrade_cancelled)


func poll() -> void:
	server.poll()


func url(path := "/") -> String:
	return "ws://127.0.0.1:%d%s" % [port, path]


func count(kind: String, id := -1) -> int:
	return events.filter(func(e: Array) -> bool: return e[0] == kind and (id == -1 or e[1] == id)).size()


func ids(kind: String) -> Array:
	return events.filter(func(e: Array) -> bool: return e[0] == kind).map(func(e: Array) -> int: return e[1])


## The recorded events of one peer.
func of(id: int) -> Array:
	return events.filter(func(e: Array) -> bool: return e[1] == id)


func _on_connected(id: int, protocol: String, resource_name: String) -> void:
	events.append(["connected", id, protocol, resource_name])


func _on_disconnected(id: int, was_clean_close: bool) -> void:
	events.append(["disconnected", id, was_clean_close])


func _on_close_request(id: int, code: int, reason: String) -> void:
	events.append(["close_request", id, code, reason])


func _on_data(id: int) -> void:
	events.append(["data", id])


func _on_peer_connected(id: int) -> void:
	events.append(["peer_connected", id])


func _on_peer_disconnected(id: int) -> void:
	events.append(["peer_disconnected", id])


func _on_upgrade_requested(id: int, request: WebSocketServerRequest) -> void:
	events.append(["requested", id])
	requests[id] = request
	if decide.is_valid():
		decide.call(id, request)


func _on_upgrade_cancelled(id: int, reason: String) -> void:
	events.append(["cancelled", id, reason])
