## The game-server tick benchmark's server (bench/tick.py): what a dedicated server does. A fixed
## 60 ticks/s loop (_physics_process); every client sends a 32-byte input 20 times a second; every
## third tick (20 Hz) the server sends each client a 128-byte state message that carries the
## sequence number of the newest input it has from that client (the client measures input-to-state
## latency from it). Two variants on three servers, all in this one script:
##   --impl ours      this addon's WebSocketServer, raw mode with queue_messages: the tick takes
##                    every input in one take_messages() call (reading them from its one buffer,
##                    data and offsets) and sends the states in one send_buffer() call (one buffer)
##                    (--signals: data_received, get_peer, put_packet)
##   --impl ours_mp   this addon in multiplayer mode, through the MultiplayerPeer API only
##                    (poll, get_packet_peer, get_packet, set_target_peer, put_packet)
##   --impl stock     raw: Godot's TCPServer + one WebSocketPeer per client
##   --impl stock_mp  Godot's WebSocketMultiplayerPeer through the same MultiplayerPeer API
## Options after `--`: --impl, --port N, --signals, --inline (our io_mode IO_MODE_INLINE; the tick
## then polls a second time after sending the states one by one, so that writing them is inside
## the measured tick; send_messages writes them itself), --compression (ours: COMPRESSION_SHARED;
## with --dedicated BITS, COMPRESSION_DEDICATED in that window; the clients must offer it).
## Prints "LISTENING <port>", then a TICK line every second:
##   unix time, ticks, networking µs per tick p50, p99, max, ticks over budget (networking work
##   over 16.6 ms, or a tick that started more than one period late), inputs received (total),
##   states sent (total), state sends refused (total), peers, process CPU ticks, RSS KiB.
extends Node

const TICK_RATE := 60
const STATE_EVERY := 3  # ticks: 20 Hz
const STATE_SIZE := 128
const BUDGET_USEC := 16667

var impl := "ours"
var inline := false
var signals := false
var ours: WebSocketServer
var mp: MultiplayerPeer
var tcp: TCPServer
var stock_peers: Array[WebSocketPeer] = []
## Raw stock: the newest input sequence per WebSocketPeer (by instance id).
var stock_seq := {}
## The newest input sequence per peer id (ours, and both multiplayer variants).
var last_seq := {}
var tick := 0
var tick_usec: PackedInt64Array = []
var over_budget := 0
var last_tick_start := 0
var inputs := 0
var states := 0
var refused := 0
var state := PackedByteArray()


func _ready() -> void:
	impl = ProcStats.opt("--impl", "ours")
	var port := int(ProcStats.opt("--port", "9090"))
	Engine.physics_ticks_per_second = TICK_RATE
	state.resize(STATE_SIZE)
	state.fill(3)
	var err: Error
	match impl:
		"ours", "ours_mp":
			ours = WebSocketServer.new()
			ours.bind_ip = "127.0.0.1"
			# One load generator host opens every connection.
			ours.max_handshakes_per_address = 0
			inline = OS.get_cmdline_user_args().has("--inline")
			if inline:
				ours.io_mode = WebSocketServer.IO_MODE_INLINE
			if OS.get_cmdline_user_args().has("--compression"):
				ours.compression = WebSocketServer.COMPRESSION_SHARED
				if ProcStats.opt("--dedicated") != "":
					ours.compression = WebSocketServer.COMPRESSION_DEDICATED
					ours.compression_window_bits = int(ProcStats.opt("--dedicated"))
			signals = OS.get_cmdline_user_args().has("--signals")
			if impl == "ours" and signals:
				ours.data_received.connect(_on_data)
			elif impl == "ours":
				ours.queue_messages = true
			if impl == "ours":
				ours.client_disconnected.connect(func(id: int, _clean: bool) -> void: last_seq.erase(id))
			else:
				mp = ours
			err = ours.listen(port, PackedStringArray(), impl == "ours_mp")
		"stock_mp":
			var stock := WebSocketMultiplayerPeer.new()
			err = stock.create_server(port, "127.0.0.1")
			mp = stock
		_:
			tcp = TCPServer.new()
			err = tcp.listen(port, "127.0.0.1")
	if mp != null:
		mp.peer_connected.connect(func(id: int) -> void: last_seq[id] = 0)
		mp.peer_disconnected.connect(func(id: int) -> void: last_seq.erase(id))
	ProcStats.started(self, err, port, 1.0, _print_stat)


func _physics_process(_delta: float) -> void:
	var start := Time.get_ticks_usec()
	if last_tick_start > 0 and start - last_tick_start > 2 * BUDGET_USEC:
		over_budget += 1  # this tick started more than a period late: the loop fell behind
	last_tick_start = start
	tick += 1
	var send_states := tick % STATE_EVERY == 0
	match impl:
		"ours" when not signals:
			_batch_tick(send_states)
		"ours":
			ours.poll()  # inputs arrive in _on_data
			if send_states:
				for id in ours.get_peer_ids():
					_stamp(last_seq.get(id, 0))
					if ours.get_peer(id).put_packet(state) == OK:
						states += 1
					else:
						refused += 1
		"stock":
			_stock_tick(send_states)
		_:
			_mp_tick(send_states)
	if inline and send_states and (signals or impl != "ours"):
		# With inline I/O, the states sent one by one would be written by the server's deferred
		# flush after this tick, outside the measured time: poll again, so that it is inside.
		ours.poll()
	var used := Time.get_ticks_usec() - start
	tick_usec.append(used)
	if used > BUDGET_USEC:
		over_budget += 1


func _batch_tick(send_states: bool) -> void:
	ours.poll()
	var batch := ours.take_messages()
	var ids := batch.ids
	# Every input in one buffer: no array per message (batch.packets would make one each).
	var data := batch.data
	var offsets := batch.offsets
	for i in batch.size():
		last_seq[ids[i]] = data.decode_u32(offsets[i])
	inputs += batch.size()
	if send_states:
		var to := ours.get_peer_ids()
		# Every state into one buffer (no array per message), sent in one call.
		var out := PackedByteArray()
		var starts := PackedInt32Array()
		starts.resize(to.size() + 1)
		for i in to.size():
			_stamp(last_seq.get(to[i], 0))
			starts[i] = out.size()
			out.append_array(state)
		starts[to.size()] = out.size()
		var failed := ours.send_buffer(to, out, starts)
		states += to.size() - failed.size()
		refused += failed.size()


func _on_data(id: int) -> void:
	var packet := ours.get_peer(id).get_packet()
	last_seq[id] = packet.decode_u32(0)
	inputs += 1


func _mp_tick(send_states: bool) -> void:
	mp.poll()
	while mp.get_available_packet_count() > 0:
		var sender := mp.get_packet_peer()
		var packet := mp.get_packet()
		last_seq[sender] = packet.decode_u32(0)
		inputs += 1
	if send_states:
		for id: int in last_seq:
			_stamp(last_seq[id])
			mp.set_target_peer(id)
			if mp.put_packet(state) == OK:
				states += 1
			else:
				refused += 1


func _stock_tick(send_states: bool) -> void:
	while tcp.is_connection_available():
		var ws := WebSocketPeer.new()
		if ws.accept_stream(tcp.take_connection()) == OK:
			stock_peers.append(ws)
	var i := 0
	while i < stock_peers.size():
		var ws := stock_peers[i]
		ws.poll()
		if ws.get_ready_state() == WebSocketPeer.STATE_CLOSED:
			stock_seq.erase(ws.get_instance_id())
			stock_peers.remove_at(i)
			continue
		while ws.get_available_packet_count() > 0:
			stock_seq[ws.get_instance_id()] = ws.get_packet().decode_u32(0)
			inputs += 1
		if send_states and ws.get_ready_state() == WebSocketPeer.STATE_OPEN:
			_stamp(stock_seq.get(ws.get_instance_id(), 0))
			if ws.send(state) == OK:
				states += 1
			else:
				refused += 1
		i += 1


## The state message's first 4 bytes: the newest input sequence the server has from its client.
func _stamp(seq: int) -> void:
	state.encode_u32(0, seq)


func _print_stat() -> void:
	var sorted := tick_usec.duplicate()
	sorted.sort()
	var n := sorted.size()
	var p50 := sorted[n / 2] if n > 0 else 0
	var p99 := sorted[mini(n - 1, int(n * 0.99))] if n > 0 else 0
	var worst := sorted[n - 1] if n > 0 else 0
	var peers := stock_peers.size() if impl == "stock" else (ours.get_peer_ids().size() if impl == "ours" else last_seq.size())
	print("TICK %.6f %d %d %d %d %d %d %d %d %d %d %d" % [Time.get_unix_time_from_system(), n, p50, p99, worst, over_budget,
		inputs, states, refused, peers, ProcStats.cpu_ticks(), ProcStats.rss_kib()])
	tick_usec.clear()
	over_budget = 0


func _exit_tree() -> void:
	if ours != null:
		ours.stop()
