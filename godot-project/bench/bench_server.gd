## The benchmark's game: the same logic (echo every message back; or broadcast 64 bytes to every
## client each frame) on two servers in the same Godot binary:
##   --impl ours      this addon's WebSocketServer (raw mode; broadcast with one broadcast() call)
##   --impl ours_mp   this addon in multiplayer mode (broadcast with put_packet to target 0)
##   --impl stock     Godot's TCPServer + one WebSocketPeer per client, as Godot 4 games do today
## Options after `--`: --impl, --mode echo|broadcast|publish|relay|idle, --port N, --unpaced (no sleep
## between frames), --sleep-usec USEC (that sleep between frames instead of Godot's ~6.9 ms), --tls (wss:// with
## the ECDSA test certificate in tests/data, for both servers), --limit BYTES (our inbound and
## outbound buffer sizes, for the stock server's peers too; tests/python/test_autobahn.py raises
## them for Autobahn's 16 MiB cases),
## --inline (our io_mode IO_MODE_INLINE: poll() does the socket work, no I/O thread),
## --busy-poll USEC (our busy_poll_usec: the I/O thread's busy-poll window; default 0),
## --signals (ours, raw echo: data_received per message, read and answered through get_peer, as
## in Godot 4.0-alpha; without it the echo takes every message in one take_messages() call and
## answers them in one send_buffer() call from the batch's one buffer, with queue_messages on),
## --per-peer (ours, raw echo in the stock Godot pattern: after poll(), each peer's packets read
## with get_packet() and answered with send(), one peer at a time).
## Topics (ours, raw): --mode publish subscribes every client to one topic and publishes the 64
## bytes to it each frame (as broadcast mode, through publish()); --mode relay subscribes every
## client and publishes each message a client sends to the topic, the sender excluded; --bus URL
## (bus_url: the topic spans every process on that Redis); --no-publish (publish mode: subscribe,
## but let other processes publish). --compression: permessage-deflate (COMPRESSION_SHARED; with --dedicated BITS,
## COMPRESSION_DEDICATED in that window).
## --mode json: 20 times a second, a ~200-byte JSON game state (positions that change) to every
## client as text, one broadcast(); --mode chat: 20 times a second, a line of chat text (a name and
## 6-24 words drawn from a few sentences', 40-160 bytes, never a whole line again) to every client.
## Prints a STAT line every 0.25 s: unix time, messages sent, µs spent in the networking part of the
## frame (work) and in poll() alone, frames, main-thread CPU ticks, process CPU ticks, RSS KiB, peers.
extends Node

## The stock server's broadcast skips a client with more than this many bytes still queued (half
## the default buffer); ours skips those whose queue is full (broadcast() reports them).
const BACKLOG_LIMIT := 32768

var impl := "ours"
var mode := "echo"
var ours: WebSocketServer
var tcp: TCPServer
var stock_peers: Array[WebSocketPeer] = []
var msgs := 0
var work_usec := 0
var poll_usec := 0
var frames := 0
var main_stat := ""
var tls_options: TLSOptions
const CHAT := [
	"hey everyone, anyone up for a match in the north arena?",
	"gg! that last round was close, the blue team almost had it",
	"does anyone know how to unlock the second map? I have been stuck on level 4 for ages now",
	"brb, dinner",
	"the server feels smooth today, no lag at all even with a full lobby",
	"who wants to trade: I have two rare swords and need a shield, message me",
]
var _next_state := 0
## Chat lines sent so far, and the generator of their words (seeded: every run sends the same lines).
var _chat_lines := 0
var _chat_rng := RandomNumberGenerator.new()
var _chat_words := PackedStringArray()


## A chat line: 6 to 24 words drawn from the CHAT lines' words, after a player's name (lines share
## words, as a chat's do, but a line is never repeated whole).
func _chat_line() -> String:
	if _chat_words.is_empty():
		_chat_rng.seed = 7
		for line in CHAT:
			_chat_words.append_array(line.split(" "))
	var words := PackedStringArray(["player%d:" % _chat_rng.randi_range(1, 40)])
	for i in _chat_rng.randi_range(6, 24):
		words.append(_chat_words[_chat_rng.randi_range(0, _chat_words.size() - 1)])
	_chat_lines += 1
	return " ".join(words)


## A game state as a browser game sends it: entities with positions that change every tick.
func _state_json() -> String:
	var t := Time.get_ticks_msec()
	var entities := []
	for i in 3:
		entities.append({"id": i + 1, "x": snappedf(100.0 + 50.0 * sin(t / 700.0 + i), 0.01),
			"y": snappedf(80.0 + 40.0 * cos(t / 900.0 + i), 0.01), "hp": 100 - i * 7})
	return JSON.stringify({"tick": frames, "time": t, "entities": entities})


## The 64 bytes the broadcast mode sends to every client each frame.
var broadcast := PackedByteArray()
## Ours, raw echo: one data_received signal and four calls per message (--signals), or one
## take_messages() and one send_buffer() per frame.
var signals := false
## Ours, raw echo: get_packet() and send() per peer after poll() (--per-peer).
var per_peer := false


func _ready() -> void:
	impl = ProcStats.opt("--impl", "ours")
	mode = ProcStats.opt("--mode", "echo")
	var port := int(ProcStats.opt("--port", "9090"))
	if OS.get_cmdline_user_args().has("--unpaced"):
		OS.low_processor_usage_mode_sleep_usec = 0
	elif ProcStats.opt("--sleep-usec") != "":
		OS.low_processor_usage_mode_sleep_usec = int(ProcStats.opt("--sleep-usec"))
	main_stat = "/proc/self/task/%d/stat" % OS.get_process_id()
	broadcast.resize(64)
	broadcast.fill(7)
	var key: CryptoKey = load("res://tests/data/ecdsa.key")
	var cert: X509Certificate = load("res://tests/data/ecdsa.crt")
	var tls := OS.get_cmdline_user_args().has("--tls")
	var err: Error
	if impl == "stock":
		if tls:
			tls_options = TLSOptions.server(key, cert)
		tcp = TCPServer.new()
		err = tcp.listen(port, "127.0.0.1")
	else:
		ours = WebSocketServer.new()
		ours.bind_ip = "127.0.0.1"
		# The load generator is one host opening up to thousands of connections at once: the
		# per-address handshake cap (a defence for the open internet) would refuse most of them.
		ours.max_handshakes_per_address = 0
		if OS.get_cmdline_user_args().has("--inline"):
			ours.io_mode = WebSocketServer.IO_MODE_INLINE
		ours.busy_poll_usec = int(ProcStats.opt("--busy-poll", "0"))
		if tls:
			ours.private_key = key
			ours.ssl_certificate = cert
		if ProcStats.opt("--heartbeat") != "":
			ours.heartbeat_interval = float(ProcStats.opt("--heartbeat"))
		if ProcStats.opt("--limit") != "":
			ours.inbound_buffer_size = int(ProcStats.opt("--limit"))
			ours.outbound_buffer_size = int(ProcStats.opt("--limit"))
		signals = OS.get_cmdline_user_args().has("--signals")
		per_peer = OS.get_cmdline_user_args().has("--per-peer")
		if OS.get_cmdline_user_args().has("--compression"):
			ours.compression = WebSocketServer.COMPRESSION_SHARED
			if ProcStats.opt("--dedicated") != "":
				ours.compression = WebSocketServer.COMPRESSION_DEDICATED
				ours.compression_window_bits = int(ProcStats.opt("--dedicated"))
			if ProcStats.opt("--compression-threshold") != "":
				ours.compression_threshold = int(ProcStats.opt("--compression-threshold"))
		if ProcStats.opt("--bus") != "":
			ours.bus_url = ProcStats.opt("--bus")
			ours.bus_channel_prefix = "bench:"
		if mode == "publish" or mode == "relay":
			ours.client_connected.connect(func(id: int, _p: String, _r: String) -> void: ours.subscribe(id, "all"))
		if signals:
			ours.data_received.connect(_on_data)
		elif not per_peer:
			ours.queue_messages = true
		err = ours.listen(port, PackedStringArray(), impl == "ours_mp")
	ProcStats.started(self, err, port, 0.25, _print_stat)


func _process(_delta: float) -> void:
	var start := Time.get_ticks_usec()
	if impl == "stock":
		_stock_frame()
	else:
		ours.poll()  # with --signals the echo happens in _on_data, inside poll()
		poll_usec += Time.get_ticks_usec() - start
		if mode == "relay":
			_relay()
		elif per_peer and impl == "ours":
			_echo_per_peer()
		elif not signals and impl == "ours":
			_echo_batch()
		if mode == "publish" and not OS.get_cmdline_user_args().has("--no-publish"):
			# (Counted as broadcast mode counts: every client is subscribed.)
			var clients := ours.get_peer_ids().size()
			if clients > 0 or ours.bus_url != "":
				var failed := ours.publish("all", broadcast)
				msgs += clients - failed.size()
		if (mode == "json" or mode == "chat") and Time.get_ticks_msec() >= _next_state:
			_next_state = Time.get_ticks_msec() + 50
			var text: String = _state_json()
			if mode == "chat":
				text = _chat_line()
			var failed := ours.broadcast(text.to_utf8_buffer(), WebSocketServerPeer.WRITE_MODE_TEXT)
			msgs += ours.get_peer_ids().size() - failed.size()
		if mode == "broadcast":
			if impl == "ours_mp":
				ours.set_target_peer(0)
				if ours.put_packet(broadcast) == OK:
					msgs += ours.get_peer_ids().size()
			else:
				# One call; a client whose queue is full is reported in the returned Dictionary and
				# skipped this frame (backpressure).
				var failed := ours.broadcast(broadcast)
				msgs += ours.get_peer_ids().size() - failed.size()
	work_usec += Time.get_ticks_usec() - start
	frames += 1


func _echo_batch() -> void:
	var batch := ours.take_messages()
	if batch.is_empty():
		return
	# Each message goes back as it came, text or binary.
	var failed := ours.send_buffer(batch.ids, batch.data, batch.offsets, WebSocketServerPeer.WRITE_MODE_BINARY, batch.text)
	msgs += batch.size() - failed.size()  # with inline I/O, written before send_buffer returns


## Relay: each message to every other subscriber of the topic (and, with --bus, every process's).
func _relay() -> void:
	var batch := ours.take_messages()
	for i in batch.size():
		var failed := ours.publish("all", batch.packets[i], WebSocketServerPeer.WRITE_MODE_BINARY, PackedInt32Array([batch.ids[i]]))
		msgs += 1 if failed.is_empty() else 0


func _echo_per_peer() -> void:
	for id in ours.get_peer_ids():
		var peer := ours.get_peer(id)
		while peer.get_available_packet_count() > 0:
			var packet := peer.get_packet()
			var write_mode := WebSocketServerPeer.WRITE_MODE_TEXT if peer.was_string_packet() else WebSocketServerPeer.WRITE_MODE_BINARY
			if peer.send(packet, write_mode) == OK:
				msgs += 1


func _on_data(id: int) -> void:
	var peer := ours.get_peer(id)
	var packet := peer.get_packet()
	var write_mode := WebSocketServerPeer.WRITE_MODE_TEXT if peer.was_string_packet() else WebSocketServerPeer.WRITE_MODE_BINARY
	if peer.send(packet, write_mode) == OK:
		msgs += 1


func _stock_frame() -> void:
	var start := Time.get_ticks_usec()
	while tcp.is_connection_available():
		var ws := WebSocketPeer.new()
		if ProcStats.opt("--limit") != "":
			ws.inbound_buffer_size = int(ProcStats.opt("--limit"))
			ws.outbound_buffer_size = int(ProcStats.opt("--limit"))
		var stream: StreamPeer = tcp.take_connection()
		if tls_options != null:
			var tls := StreamPeerTLS.new()
			tls.accept_stream(stream, tls_options)
			stream = tls
		if ws.accept_stream(stream) == OK:
			stock_peers.append(ws)
	var i := 0
	while i < stock_peers.size():
		var ws := stock_peers[i]
		ws.poll()
		var state := ws.get_ready_state()
		if state == WebSocketPeer.STATE_CLOSED:
			stock_peers.remove_at(i)
			continue
		while ws.get_available_packet_count() > 0:
			var packet := ws.get_packet()
			var write_mode := WebSocketPeer.WRITE_MODE_TEXT if ws.was_string_packet() else WebSocketPeer.WRITE_MODE_BINARY
			if ws.send(packet, write_mode) == OK:
				msgs += 1
		i += 1
	poll_usec += Time.get_ticks_usec() - start
	if mode == "broadcast":
		for ws in stock_peers:
			if ws.get_ready_state() == WebSocketPeer.STATE_OPEN and ws.get_current_outbound_buffered_amount() < BACKLOG_LIMIT \
					and ws.send(broadcast) == OK:
				msgs += 1


func _print_stat() -> void:
	var peers := stock_peers.size() if impl == "stock" else ours.get_peer_ids().size()
	print("STAT %.6f %d %d %d %d %d %d %d %d" % [Time.get_unix_time_from_system(), msgs, work_usec, poll_usec,
		frames, ProcStats.cpu_ticks(main_stat), ProcStats.cpu_ticks(), ProcStats.rss_kib(), peers])


func _exit_tree() -> void:
	if ours != null:
		ours.stop()
