use std::collections::HashMap;
use std::sync::Arc;

use godot::classes::multiplayer_peer::{ConnectionStatus, TransferMode};
use godot::classes::{CryptoKey, IMultiplayerPeerExtension, MultiplayerPeerExtension, X509Certificate};
use godot::global::Error;
use godot::prelude::*;
use godot_core::meta::RawPtr;
use wss_core::config::{
    busy_poll_usec, is_token, seconds, size_limit, validate_header_line, validate_origin, validate_response_headers,
};
use wss_core::request::TrustedProxies;
use wss_core::stats::Stats;
use wss_core::tls::{server_config, TlsPem};
use wss_core::{
    BindIp, BroadcastError, Compression, ConfigError, DecideError, IoMode, Kind, Limits, ListenError, Packet,
    SendError, Server, ServerConfig, Signal, TargetError, Verdict,
};

use crate::messages::WebSocketServerMessages;
use crate::peer::{close_peer, lend_packet, packet_bytes, Link, WebSocketServerPeer};
use crate::request::WebSocketServerRequest;

mod batch;
mod files;
mod multiplayer;
mod peers;
mod properties;
mod running;
mod shutdown;
mod stats;
mod topics;
mod upgrades;

use properties::{limit_or_zero, strings};

/// A WebSocket server: Godot 4.0-alpha's [code]WebSocketServer[/code], re-created.
///
/// Start it with [method listen], then call [method MultiplayerPeer.poll] regularly (e.g. in
/// [method Node._process]); every signal is emitted from inside [code]poll()[/code]. Read and send
/// through [method get_peer].
///
/// By default all sockets live on one I/O thread of the server's own, which accepts connections,
/// performs the HTTP upgrade, frames, validates UTF-8, answers pings and closes.
/// [code]poll()[/code] only takes what already happened, so its cost grows with the number of
/// events, not of connections. With [member io_mode] [constant IO_MODE_INLINE], [code]poll()[/code]
/// does that socket work itself instead, on the calling thread.
/// Nothing is dropped silently: a full queue stops reading that client until the game reads it,
/// and a send past the limits fails with [constant @GlobalScope.ERR_OUT_OF_MEMORY].
#[derive(GodotClass)]
#[class(tool, base = MultiplayerPeerExtension)]
pub struct WebSocketServer {
    /// [code]"*"[/code] (the default) listens on every interface, IPv4 and IPv6; an IP address
    /// (e.g. [code]"127.0.0.1"[/code]) listens on that one only. Cannot change while listening.
    #[var(set = set_bind_ip)]
    bind_ip: GString,
    /// Seconds a client has, from TCP accept, to finish the HTTP upgrade before it is dropped
    /// (silently: it was never connected). Default 3.0.
    #[var(set = set_handshake_timeout)]
    handshake_timeout: f64,
    /// Seconds a client has to answer our Close frame ([method disconnect_peer], a protocol error)
    /// before it is dropped with [code]was_clean_close == false[/code]. Default 3.0. (Godot waits
    /// forever.)
    #[var(set = set_close_timeout)]
    close_timeout: f64,
    /// Seconds a client may leave a message unfinished without sending any more of it; then it is
    /// closed with 1008. (A slow upload that keeps sending is not affected; time while the server
    /// is not reading the client, because the game has not read its earlier messages, does not
    /// count.) Without it, a client could hold up to [member inbound_buffer_size] bytes forever
    /// with one message it never finishes. Default 30.0. [i]Not in Godot.[/i]
    #[var(set = set_partial_message_timeout)]
    partial_message_timeout: f64,
    /// Seconds between the pings the server sends every connected client (as
    /// [member WebSocketPeer.heartbeat_interval] in Godot 4.4+). A client that has not answered a
    /// ping by the time the next one is due is dropped ([signal client_disconnected] with
    /// [code]was_clean_close == false[/code]; [signal MultiplayerPeer.peer_disconnected] in
    /// multiplayer mode), so a client that vanished without closing (lost signal, frozen) is
    /// noticed within about two intervals. The pings also keep idle connections open through
    /// proxies (nginx closes a connection silent for 60 s by default). Pings and pongs cost the game
    /// thread nothing. [method WebSocketServerPeer.get_round_trip_time] reports the last round
    /// trip. [code]0[/code] turns it off. Default 20.0, as Python's [code]websockets[/code].
    #[var(set = set_heartbeat_interval)]
    heartbeat_interval: f64,
    /// With [member ssl_certificate], makes the server require TLS ([code]wss://[/code]).
    #[var(set = set_private_key)]
    private_key: Option<Gd<CryptoKey>>,
    /// With [member private_key], makes the server require TLS ([code]wss://[/code]).
    #[var(set = set_ssl_certificate)]
    ssl_certificate: Option<Gd<X509Certificate>>,
    /// Extra CA certificates sent after [member ssl_certificate] during the TLS handshake.
    #[var(set = set_ca_chain)]
    ca_chain: Option<Gd<X509Certificate>>,
    /// Largest message a client may send, in bytes (a larger one closes it with 1009), and the
    /// bytes a client may have waiting for [method PacketPeer.get_packet] before the server stops
    /// reading it. Default 65535.
    #[var(set = set_inbound_buffer_size)]
    inbound_buffer_size: i64,
    /// Bytes a client may have queued for sending; [method PacketPeer.put_packet] past it returns
    /// [constant @GlobalScope.ERR_OUT_OF_MEMORY]. Default 65535.
    #[var(set = set_outbound_buffer_size)]
    outbound_buffer_size: i64,
    /// Messages a client may have queued in each direction. Default 4096.
    #[var(set = set_max_queued_packets)]
    max_queued_packets: i64,
    /// When [code]true[/code], every valid upgrade request waits for the game: the server emits
    /// [signal upgrade_requested] and answers only once the game calls [method accept_upgrade] or
    /// [method reject_upgrade], in the same frame or a later one (e.g. after an [HTTPRequest]
    /// checked a token). A request with no decision within [member handshake_timeout] (counted
    /// from the TCP connection) is refused with [code]503 Service Unavailable[/code] and
    /// [signal upgrade_cancelled] is emitted. A refused client never produces
    /// [signal client_connected] or [signal MultiplayerPeer.peer_connected]. Works in both modes.
    /// Default [code]false[/code]: every valid request is accepted at once, as in Godot.
    /// [i]Not in Godot.[/i]
    #[var(set = set_authorize_upgrades)]
    authorize_upgrades: bool,
    /// When [code]true[/code], a plain HTTP request on the server's port ([code]GET[/code] or
    /// [code]HEAD[/code] without [code]Upgrade: websocket[/code]: a load balancer's health check,
    /// a status page) is handed to the game with [signal http_request], to be answered with
    /// [method respond]; other methods get [code]405[/code]. Each answer closes its connection.
    /// WebSocket upgrades are not affected. Default [code]false[/code]: such requests are refused
    /// with [code]400[/code] before the game hears of them, as in Godot. [i]Not in Godot.[/i]
    #[var(set = set_answer_http_requests)]
    answer_http_requests: bool,
    /// The origins (scheme, host and port, as browsers send them: [code]"https://mygame.example"[/code])
    /// whose web pages may connect. A request from a browser page of any other origin is refused
    /// with [code]403 Forbidden[/code] before the game hears of it: the defence against cross-site
    /// WebSocket hijacking (another site's page opening a socket with your players' cookies).
    /// Requests without an [code]Origin[/code] header (native clients such as Godot's
    /// [WebSocketPeer]; browsers always send one) are not affected. Empty (the default): any origin.
    /// [i]Not in Godot.[/i]
    #[var(set = set_allowed_origins)]
    allowed_origins: PackedStringArray,
    /// Addresses and CIDR ranges ([code]"127.0.0.1"[/code], [code]"10.0.0.0/8"[/code],
    /// [code]"fd00::/8"[/code]) of reverse proxies (nginx, a load balancer) whose word on the client's
    /// address is taken. When a connection comes from one, [method get_peer_address] and
    /// [method get_peer_port] report the client named by its [code]Forwarded[/code],
    /// [code]X-Forwarded-For[/code] (the right-most address that is not itself a trusted proxy) or
    /// [code]X-Real-IP[/code] header, in that order of preference; from anyone else these headers
    /// are ignored, so a client cannot forge its address. The proxy's own address stays readable
    /// ([method WebSocketServerRequest.get_socket_address]). Trusted proxies are also exempt from
    /// [member max_handshakes_per_address]. Empty by default. [i]Not in Godot.[/i]
    #[var(set = set_trusted_proxies)]
    trusted_proxies: PackedStringArray,
    /// When [code]true[/code], every connection must begin with a PROXY protocol header (version 1
    /// or 2, as sent by HAProxy's [code]send-proxy[/code], nginx's [code]proxy_protocol on[/code] in a
    /// [code]stream[/code] block, and cloud load balancers), which names the client; a connection
    /// without a valid one is dropped. Only turn it on if every client comes through such a proxy
    /// (anyone who can reach the port directly could claim any address), or also set
    /// [member trusted_proxies]: then only connections from those addresses are taken, and any
    /// other is closed at once. Default [code]false[/code]. [i]Not in Godot.[/i]
    #[var(set = set_proxy_protocol)]
    proxy_protocol: bool,
    /// The most connections (handshaking and connected) the server holds; beyond it, new clients
    /// are refused at once: over [code]ws://[/code] with [code]503 Service Unavailable[/code] (up
    /// to 64 at a time; more are closed unanswered), over [code]wss://[/code] closed unanswered.
    /// Set it below the process's file-descriptor limit ([code]ulimit -n[/code]) so that the game's
    /// own files and sockets never run out. [code]0[/code] (the default): no limit but the system's.
    /// [i]Not in Godot.[/i]
    #[var(set = set_max_connections)]
    max_connections: i64,
    /// The most unfinished handshakes one IP address may have at once; more are closed at once.
    /// Keeps one host from holding every descriptor with connections that never finish their
    /// request (slowloris). [member trusted_proxies] are exempt (behind a proxy, every client has
    /// its address). Default 64; [code]0[/code]: no limit. [i]Not in Godot.[/i]
    #[var(set = set_max_handshakes_per_address)]
    max_handshakes_per_address: i64,
    /// Where the server does its socket work. Cannot change while listening. [i]Not in Godot.[/i]
    ///
    /// [constant IO_MODE_THREAD] (the default): an I/O thread of the server's own accepts, reads,
    /// writes, answers pings and applies the timeouts, whether or not the game is polling (a long
    /// frame or a loading screen does not stall the connections); [code]poll()[/code] only takes
    /// what happened. The least work on the game thread per message, and the best choice whenever
    /// the game paces its frames or the machine has cores to spare.
    ///
    /// [constant IO_MODE_INLINE]: no thread; each [code]poll()[/code] does one non-blocking turn of
    /// the same event loop (accept, read, write, timers), emits the signals, and writes the replies
    /// the handlers queued before it returns. Messages sent outside [code]poll()[/code] are
    /// written at the end of the frame (one deferred call for all of them: no second
    /// [code]poll()[/code] is needed), and those of [method broadcast], [method send_to_peers] and
    /// [method send_messages] before the call returns (one pass for the whole batch). Nothing
    /// else is read, written, pinged or timed out
    /// between polls, so poll every frame. Faster for a dedicated server running unpaced
    /// ([code]--fixed-fps 0[/code], a spinning loop) on one or two cores, where every reply would
    /// otherwise wait for the other thread to get a core.
    #[var(set = set_io_mode)]
    io_mode: i64,
    /// [constant IO_MODE_THREAD] only: after handing the game something (a message, a connection),
    /// the I/O thread keeps looking for the game's answer without sleeping, for up to this many
    /// microseconds; once the game has acted through the server (a send, usually), or the window
    /// has passed, it sleeps as usual.
    /// Cannot change while listening. Default [code]0[/code]: it sleeps at once. Up to
    /// [code]1000000[/code]. [i]Not in Godot.[/i]
    ///
    /// The game's reply is then written the moment it is sent instead of after a wake-up through
    /// the operating system's scheduler (tens of microseconds on a cloud machine). For a dedicated
    /// server whose main loop runs unpaced ([code]--fixed-fps 0[/code]) and answers within
    /// microseconds, with a core to spare: it cuts the round trip of a lone client's message (see
    /// the README's benchmarks). The price is CPU: the I/O thread spins for as long as the game
    /// takes to answer, up to the window, after every message. A paced game (60 frames a second)
    /// answers milliseconds later and gains nothing; with many clients on shared cores it can cost
    /// throughput. Leave at [code]0[/code] unless measured. With [constant IO_MODE_INLINE] it has
    /// no effect: [method poll] never waits there.
    #[var(set = set_busy_poll_usec)]
    busy_poll_usec: i64,
    /// How raw mode hands the game its messages. Cannot change while listening. [i]Not in Godot.[/i]
    ///
    /// [code]false[/code] (the default): as in Godot, [signal data_received] is emitted for each
    /// message, which is then read from its peer ([method get_peer]).
    ///
    /// [code]true[/code]: no [signal data_received]; the messages of all clients wait in one queue,
    /// in arrival order, and [method take_messages] takes them all (or up to a number) in one call;
    /// [method send_messages] answers many clients in one call. For a game server that handles its
    /// clients' inputs once per tick: one call per frame instead of a signal and several calls per
    /// message, a fraction of the game thread's time per message (see the README's benchmarks).
    /// [method PacketPeer.get_packet], [method MultiplayerPeer.get_packet_peer] and
    /// [method PacketPeer.get_available_packet_count] on the server read the same queue one
    /// message at a time. The limits are unchanged: a client's messages count against
    /// [member inbound_buffer_size] and [member max_queued_packets] until taken, and a client
    /// with a full queue is not read further until the game takes them. Connection, close and
    /// disconnect signals are emitted as always; a client's last messages may be taken after its
    /// [signal client_disconnected]. Multiplayer mode always queues this way.
    #[var(set = set_queue_messages)]
    queue_messages: bool,
    /// permessage-deflate (RFC 7692), which every browser and Python's [code]websockets[/code]
    /// offer (Godot's [WebSocketPeer] offers nothing and is not affected; a Web export's client is
    /// the browser's WebSocket, which does).
    /// [constant COMPRESSION_OFF] (the default): declined, as in Godot.
    /// [constant COMPRESSION_SHARED]: every message is compressed on its own both ways (no context
    /// takeover), so no compression state is kept per connection (about 150 bytes of
    /// bookkeeping): one compressor per I/O thread serves them all, and a message to many clients
    /// ([method broadcast], [method publish]) is compressed once. Large or repetitive messages
    /// shrink several times over; small ones (a 200-byte JSON state) by about a fifth.
    /// [constant COMPRESSION_DEDICATED]: context takeover within [member compression_window_bits]
    /// each way: a message may refer back to the ones before it, so small similar messages (game
    /// state, chat) shrink several times over. Each connection keeps that window of history each
    /// way (2 × 2 KiB at the default 11 bits), and a message to many is compressed per recipient
    /// (the I/O thread's work: about 7 µs per message at 11 bits); the compressor itself stays
    /// shared.
    /// In every setting a client's compressed message is inflated with state held only while it
    /// arrives, and the client is closed with 1009 as soon as it passes
    /// [member inbound_buffer_size]. Messages shorter than [member compression_threshold] go
    /// uncompressed, as do those sent with [code]compress = false[/code] (see
    /// [method WebSocketServerPeer.send]). In multiplayer mode this setting applies to every
    /// packet. Do not send secrets together with text an attacker chooses in one compressed
    /// connection over [code]wss://[/code] (CRIME, RFC 7692 §8): send them with
    /// [code]compress = false[/code]. Cannot change while listening. [i]Not in Godot.[/i]
    #[var(set = set_compression)]
    compression: i64,
    /// With [constant COMPRESSION_DEDICATED]: the history each connection keeps each way, as a
    /// power of two: 9 (512 bytes) to 15 (32 KiB); default 11 (2 KiB). A larger window finds more
    /// to refer to, and costs more: each message's compression first reads the window (measured:
    /// chat lines of ~80 bytes shrink to 55, 42, 39, 38 bytes with 9, 10, 11, 12 bits, at 5, 6,
    /// 7, 9.5 µs a message, and 40 µs at 15 bits for nothing more). A client that cannot be
    /// limited to it (it does not offer [code]client_max_window_bits[/code]) is asked to compress
    /// each message on its own instead. [i]Not in Godot.[/i]
    #[var(set = set_compression_window_bits)]
    compression_window_bits: i64,
    /// With [member compression]: messages to clients shorter than this many bytes are sent
    /// uncompressed (compressing a few bytes on their own gains nothing). Default 128.
    /// [i]Not in Godot.[/i]
    #[var(set = set_compression_threshold)]
    compression_threshold: i64,
    /// Seconds [method shutdown] waits for clients to finish their close handshake (and for
    /// what was queued for them to be written) before dropping them, unless it is given another
    /// timeout. Default 5.0, within the 10 s that [code]docker stop[/code] waits before killing
    /// the process. [i]Not in Godot.[/i]
    #[var(set = set_shutdown_timeout)]
    shutdown_timeout: f64,
    /// Linux and macOS: while this server listens, the first SIGTERM (what [code]docker stop[/code],
    /// Kubernetes and systemd send to stop a service) or SIGINT (Ctrl+C) starts
    /// [method shutdown] (code 1001, [member shutdown_timeout]) at the next [code]poll()[/code]
    /// instead of ending the process on the spot; connect [signal shutdown_finished] to
    /// [method SceneTree.quit] so that the process ends once every client is gone. A second signal
    /// ends the process at once, as does a signal while no server with this setting listens.
    /// Without it (the default) Godot does not handle these signals: the process ends at once and
    /// clients see the connection drop without a Close frame. No effect on Windows, nor inside
    /// the editor (tool scripts; a game run from the editor is a process of its own and is
    /// covered). [i]Not in Godot.[/i]
    #[var(set = set_shutdown_on_sigterm)]
    shutdown_on_sigterm: bool,
    /// A Valkey or Redis server ([code]"redis://host:6379"[/code], with
    /// [code]"redis://:password@host:6379/0"[/code] for a password and a database) through which
    /// [method publish] also reaches the subscribers of the topic connected to every other process
    /// using the same bus: rooms that span processes and machines. Empty (the default): topics
    /// are local. Cannot change while listening. See [method publish] for what is promised, and
    /// [signal bus_connected], [signal bus_disconnected], [method get_bus_stats].
    /// [i]Not in Godot.[/i]
    #[var(set = set_bus_url)]
    bus_url: GString,
    /// Put before every topic to make its channel on the bus ([member bus_url]), so that several
    /// games (or test and production) can share one server. Default [code]"wss:"[/code].
    /// [i]Not in Godot.[/i]
    #[var(set = set_bus_channel_prefix)]
    bus_channel_prefix: GString,
    /// This server takes part in the handling of SIGTERM and SIGINT (`shutdown_on_sigterm`).
    termination_armed: bool,
    /// A shutdown's last poll left messages in the queue: they get one more frame.
    shutdown_grace: bool,
    extra_headers: Vec<String>,
    /// The directories served on the port (`mount`) and their header lines.
    files: wss_core::files::StaticFiles,
    server: Option<Server>,
    /// The peer objects handed out by `get_peer`, so each id keeps one object.
    peer_objects: HashMap<i32, Gd<WebSocketServerPeer>>,
    /// Whether the running server is in the multiplayer mode (`listen(..., gd_mp_api = true)`).
    multiplayer: bool,
    refuse_new_connections: bool,
    target_peer: i32,
    /// The Performance monitors registered by `register_monitors`, to remove on `unregister_monitors`
    /// and when the server is freed.
    monitors: Vec<StringName>,
    transfer_mode: TransferMode,
    transfer_channel: i32,
    /// The packet the last multiplayer `get_packet` returned; Godot copies it out of this buffer.
    /// Let go at the next `poll()`.
    last_packet: Option<Packet>,
    /// Shared with the peer objects: those holding the last message they returned (let go at the
    /// next `poll()`), and inline I/O's end-of-frame flush of what they send.
    link: Link,
    /// What `take_messages` returns when nothing waits (most frames), made once: its arrays are
    /// empty and read-only, so sharing it is safe.
    no_messages: Option<Gd<WebSocketServerMessages>>,
    base: Base<MultiplayerPeerExtension>,
}

#[godot_api]
impl IMultiplayerPeerExtension for WebSocketServer {
    fn init(base: Base<MultiplayerPeerExtension>) -> Self {
        Self::with_defaults(base)
    }

    fn on_notification(&mut self, what: godot::classes::notify::ObjectNotification) {
        if what == godot::classes::notify::ObjectNotification::PREDELETE {
            // The monitors call into this object; they must not outlive it.
            self.unregister_monitors();
        }
    }

    /// Emits the signals for everything that happened since the last call.
    fn poll(&mut self) {
        self.pump_signals();
    }

    fn close(&mut self) {
        self.stop();
    }

    fn disconnect_peer(&mut self, peer: i32, force: bool) {
        if force {
            self.abort_peer(peer);
        } else {
            self.disconnect_peer_with_code(peer as i64, 1000, GString::new());
        }
    }

    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        // SAFETY: as this function's own contract (Godot passes valid out-pointers).
        unsafe { self.take_packet_for_godot(r_buffer, r_buffer_size) }
    }

    unsafe fn put_packet_rawptr(&mut self, p_buffer: RawPtr<*const u8>, p_buffer_size: i32) -> Error {
        // SAFETY: as this function's own contract (Godot passes a buffer of that many bytes).
        unsafe { self.send_packet_from_godot(p_buffer, p_buffer_size) }
    }

    fn get_available_packet_count(&self) -> i32 {
        self.server.as_ref().map_or(0, |s| s.queued_packets() as i32)
    }

    fn get_max_packet_size(&self) -> i32 {
        self.outbound_buffer_size as i32
    }

    // WebSocket is reliable and ordered: like Godot's own peer, every packet reports channel 0 and
    // TRANSFER_MODE_RELIABLE, whatever mode and channel it was sent with.
    fn get_packet_channel(&self) -> i32 {
        0
    }

    fn get_packet_mode(&self) -> TransferMode {
        TransferMode::RELIABLE
    }

    fn set_transfer_channel(&mut self, channel: i32) {
        self.transfer_channel = channel;
    }

    fn get_transfer_channel(&self) -> i32 {
        self.transfer_channel
    }

    fn set_transfer_mode(&mut self, mode: TransferMode) {
        self.transfer_mode = mode;
    }

    fn get_transfer_mode(&self) -> TransferMode {
        self.transfer_mode
    }

    fn set_target_peer(&mut self, peer: i32) {
        self.target_peer = peer;
    }

    fn get_packet_peer(&self) -> i32 {
        self.server.as_ref().and_then(Server::packet_sender).unwrap_or(0)
    }

    fn is_server(&self) -> bool {
        true
    }

    fn get_unique_id(&self) -> i32 {
        1
    }

    fn is_server_relay_supported(&self) -> bool {
        true
    }

    fn set_refuse_new_connections(&mut self, enable: bool) {
        self.refuse_new_connections = enable;
        if let Some(server) = &self.server {
            server.set_refusing(enable);
        }
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.refuse_new_connections
    }

    fn get_connection_status(&self) -> ConnectionStatus {
        if self.server.is_some() {
            ConnectionStatus::CONNECTED
        } else {
            ConnectionStatus::DISCONNECTED
        }
    }
}

#[godot_api]
impl WebSocketServer {
    /// Emitted when a client finished the WebSocket upgrade. [param protocol] is the agreed
    /// subprotocol ([code]""[/code] if none); [param resource_name] is the request path with its
    /// query string, at least [code]"/"[/code]. Always the first signal of an id.
    #[signal]
    fn client_connected(id: i64, protocol: GString, resource_name: GString);

    /// Emitted when a client is gone; always the last signal of an id. [param was_clean_close] is
    /// [code]true[/code] if the close handshake completed.
    #[signal]
    fn client_disconnected(id: i64, was_clean_close: bool);

    /// Emitted when a client sends a Close frame. The reply is sent for you;
    /// [signal client_disconnected] follows. [param code] is 1005 if the frame had none.
    #[signal]
    fn client_close_request(id: i64, code: i64, reason: GString);

    /// Emitted once per complete message; read it with [code]get_peer(id).get_packet()[/code].
    /// Not emitted when [member queue_messages] is on (nor in multiplayer mode).
    #[signal]
    fn data_received(id: i64);

    /// With [member authorize_upgrades] on: a client's upgrade request arrived and is valid (and its
    /// origin allowed). Decide with [method accept_upgrade] or [method reject_upgrade], now or in a
    /// later frame, within [member handshake_timeout] of the connection. [param id] is the id the
    /// client gets if accepted. [i]Not in Godot.[/i]
    /// [codeblock]
    /// func _on_upgrade_requested(id: int, request: WebSocketServerRequest):
    ///     if request.get_header("Authorization") == "Bearer " + token:
    ///         server.accept_upgrade(id)
    ///     else:
    ///         server.reject_upgrade(id, 401, "bad token")
    /// [/codeblock]
    #[signal]
    fn upgrade_requested(id: i64, request: Gd<WebSocketServerRequest>);

    /// With [member authorize_upgrades] on: a request the game did not refuse will not become a
    /// client, because no decision came within [member handshake_timeout] (it was answered
    /// [code]503[/code]) or the client left first. [param id] is no longer valid. [i]Not in
    /// Godot.[/i]
    #[signal]
    fn upgrade_cancelled(id: i64, reason: GString);

    /// With [member answer_http_requests] on: a plain HTTP request ([code]GET[/code] or
    /// [code]HEAD[/code], not a WebSocket upgrade) waits for [method respond], now or in a later
    /// frame, within [member handshake_timeout] of the connection (then it is answered
    /// [code]503[/code], with no signal). [param id] names the request only; it never becomes a
    /// client. [i]Not in Godot.[/i]
    #[signal]
    fn http_request(id: i64, request: Gd<WebSocketServerRequest>);

    /// A [method shutdown] is over: every client is gone, the server has stopped (as after
    /// [method stop]) and may listen again. Emitted from [code]poll()[/code], after the last
    /// client's [signal client_disconnected]. [i]Not in Godot.[/i]
    #[signal]
    fn shutdown_finished();

    /// The bus ([member bus_url]) is connected: from now on [method publish] reaches the other
    /// processes, and their messages reach this one's subscribers. Emitted from
    /// [code]poll()[/code]. [i]Not in Godot.[/i]
    #[signal]
    fn bus_connected();

    /// The bus could not be reached at [method listen], or was lost (closed, killed, or silent for
    /// 3 s): topics reach this process's subscribers only, publishes to the others fail (see
    /// [signal bus_publish_failed]) and their messages are missed, until [signal bus_connected].
    /// The server reconnects by itself (100 ms, doubling to 5 s). [i]Not in Godot.[/i]
    #[signal]
    fn bus_disconnected(reason: GString);

    /// [param count] publishes (since the last such signal) did not reach the bus: it was down,
    /// or more than 4096 waited for it. Their local subscribers got them. [i]Not in Godot.[/i]
    #[signal]
    fn bus_publish_failed(count: i64);

    #[func]
    fn set_bind_ip(&mut self, value: GString) {
        self.set_checked(
            "bind_ip",
            || BindIp::parse(&value.to_string()).map(|_| ()),
            |s| s.bind_ip = value.clone(),
        );
    }

    #[func]
    fn set_handshake_timeout(&mut self, value: f64) {
        self.set_checked(
            "handshake_timeout",
            || seconds("handshake_timeout", value).map(|_| ()),
            |s| s.handshake_timeout = value,
        );
    }

    #[func]
    fn set_close_timeout(&mut self, value: f64) {
        self.set_checked(
            "close_timeout",
            || seconds("close_timeout", value).map(|_| ()),
            |s| s.close_timeout = value,
        );
    }

    #[func]
    fn set_partial_message_timeout(&mut self, value: f64) {
        self.set_checked(
            "partial_message_timeout",
            || seconds("partial_message_timeout", value).map(|_| ()),
            |s| s.partial_message_timeout = value,
        );
    }

    #[func]
    fn set_heartbeat_interval(&mut self, value: f64) {
        self.set_checked(
            "heartbeat_interval",
            || match value {
                0.0 => Ok(()),
                v => seconds("heartbeat_interval", v)
                    .map(|_| ())
                    .map_err(|e| ConfigError(format!("{e} (or 0 to turn the heartbeat off)"))),
            },
            |s| s.heartbeat_interval = value,
        );
    }

    #[func]
    fn set_authorize_upgrades(&mut self, value: bool) {
        self.set_checked("authorize_upgrades", || Ok(()), |s| s.authorize_upgrades = value);
    }

    #[func]
    fn set_answer_http_requests(&mut self, value: bool) {
        self.set_checked("answer_http_requests", || Ok(()), |s| s.answer_http_requests = value);
    }

    #[func]
    fn set_allowed_origins(&mut self, value: PackedStringArray) {
        self.set_checked(
            "allowed_origins",
            || strings(&value).iter().try_for_each(|o| validate_origin(o)),
            |s| s.allowed_origins = value.clone(),
        );
    }

    #[func]
    fn set_trusted_proxies(&mut self, value: PackedStringArray) {
        self.set_checked(
            "trusted_proxies",
            || TrustedProxies::parse(&strings(&value)).map(|_| ()),
            |s| s.trusted_proxies = value.clone(),
        );
    }

    #[func]
    fn set_proxy_protocol(&mut self, value: bool) {
        self.set_checked("proxy_protocol", || Ok(()), |s| s.proxy_protocol = value);
    }

    #[func]
    fn set_io_mode(&mut self, value: i64) {
        let check = || match value {
            Self::IO_MODE_THREAD | Self::IO_MODE_INLINE => Ok(()),
            v => Err(ConfigError(format!(
                "io_mode must be IO_MODE_THREAD (0) or IO_MODE_INLINE (1), not {v}"
            ))),
        };
        self.set_checked("io_mode", check, |s| s.io_mode = value);
    }

    #[func]
    fn set_busy_poll_usec(&mut self, value: i64) {
        let check = || busy_poll_usec("busy_poll_usec", value).map(|_| ());
        self.set_checked("busy_poll_usec", check, |s| s.busy_poll_usec = value);
    }

    #[func]
    fn set_compression(&mut self, value: i64) {
        let check = || match value {
            Self::COMPRESSION_OFF | Self::COMPRESSION_SHARED | Self::COMPRESSION_DEDICATED => Ok(()),
            v => Err(ConfigError(format!(
                "compression must be COMPRESSION_OFF (0), COMPRESSION_SHARED (1) or COMPRESSION_DEDICATED (2), not {v}"
            ))),
        };
        self.set_checked("compression", check, |s| s.compression = value);
    }

    #[func]
    fn set_compression_window_bits(&mut self, value: i64) {
        let check = || match value {
            9..=15 => Ok(()),
            v => Err(ConfigError(format!("compression_window_bits must be 9 to 15, not {v}"))),
        };
        self.set_checked("compression_window_bits", check, |s| s.compression_window_bits = value);
    }

    #[func]
    fn set_compression_threshold(&mut self, value: i64) {
        let check = || match value {
            0..=1_073_741_824 => Ok(()),
            v => Err(ConfigError(format!(
                "compression_threshold must be 0 to 1073741824 bytes, not {v}"
            ))),
        };
        self.set_checked("compression_threshold", check, |s| s.compression_threshold = value);
    }

    #[func]
    fn set_queue_messages(&mut self, value: bool) {
        self.set_checked("queue_messages", || Ok(()), |s| s.queue_messages = value);
    }

    #[func]
    fn set_bus_url(&mut self, value: GString) {
        let url = value.to_string();
        let check = || match url.as_str() {
            "" => Ok(()),
            url => wss_core::bus::check_url(url),
        };
        self.set_checked("bus_url", check, |s| s.bus_url = value.clone());
    }

    #[func]
    fn set_bus_channel_prefix(&mut self, value: GString) {
        self.set_checked(
            "bus_channel_prefix",
            || Ok(()),
            |s| s.bus_channel_prefix = value.clone(),
        );
    }

    #[func]
    fn set_shutdown_timeout(&mut self, value: f64) {
        self.change_shutdown_timeout(value);
    }

    #[func]
    fn set_shutdown_on_sigterm(&mut self, value: bool) {
        self.change_shutdown_on_sigterm(value);
    }

    #[func]
    fn set_max_connections(&mut self, value: i64) {
        let check = || limit_or_zero("max_connections", value);
        self.set_checked("max_connections", check, |s| s.max_connections = value);
    }

    #[func]
    fn set_max_handshakes_per_address(&mut self, value: i64) {
        let check = || limit_or_zero("max_handshakes_per_address", value);
        self.set_checked("max_handshakes_per_address", check, |s| {
            s.max_handshakes_per_address = value
        });
    }

    #[func]
    fn set_private_key(&mut self, value: Option<Gd<CryptoKey>>) {
        self.set_checked("private_key", || Ok(()), |s| s.private_key = value.clone());
    }

    #[func]
    fn set_ssl_certificate(&mut self, value: Option<Gd<X509Certificate>>) {
        self.set_checked("ssl_certificate", || Ok(()), |s| s.ssl_certificate = value.clone());
    }

    #[func]
    fn set_ca_chain(&mut self, value: Option<Gd<X509Certificate>>) {
        self.set_checked("ca_chain", || Ok(()), |s| s.ca_chain = value.clone());
    }

    #[func]
    fn set_inbound_buffer_size(&mut self, value: i64) {
        let check = || size_limit("inbound_buffer_size", value).map(|_| ());
        self.set_checked("inbound_buffer_size", check, |s| s.inbound_buffer_size = value);
    }

    #[func]
    fn set_outbound_buffer_size(&mut self, value: i64) {
        let check = || size_limit("outbound_buffer_size", value).map(|_| ());
        self.set_checked("outbound_buffer_size", check, |s| s.outbound_buffer_size = value);
    }

    #[func]
    fn set_max_queued_packets(&mut self, value: i64) {
        let check = || size_limit("max_queued_packets", value).map(|_| ());
        self.set_checked("max_queued_packets", check, |s| s.max_queued_packets = value);
    }
}
