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
use wss_core::tls::{server_config, TlsPem};
use wss_core::{
    BindIp, BroadcastError, ConfigError, DecideError, IoMode, Limits, ListenError, Packet, SendError, Server,
    ServerConfig, Signal, TargetError, Verdict,
};

use crate::messages::WebSocketServerMessages;
use crate::peer::{close_peer, copy_packet, Held, WebSocketServerPeer};
use crate::request::WebSocketServerRequest;

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
    /// the handlers queued before it returns. Messages sent outside [code]poll()[/code] go out at
    /// the next one, as with Godot's [WebSocketPeer], except those of [method broadcast],
    /// [method send_to_peers] and [method send_messages], which are written before the call
    /// returns (one pass for the whole batch). Nothing is read, written, pinged or timed out
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
    extra_headers: Vec<String>,
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
    /// Peer objects holding the last message they returned, let go at the next `poll()`.
    held: Held,
    /// What `take_messages` returns when nothing waits (most frames), made once: its arrays are
    /// empty and read-only, so sharing it is safe.
    no_messages: Option<Gd<WebSocketServerMessages>>,
    base: Base<MultiplayerPeerExtension>,
}

#[godot_api]
impl IMultiplayerPeerExtension for WebSocketServer {
    fn init(base: Base<MultiplayerPeerExtension>) -> Self {
        let defaults = Limits::default();
        WebSocketServer {
            bind_ip: "*".into(),
            handshake_timeout: 3.0,
            close_timeout: 3.0,
            partial_message_timeout: 30.0,
            heartbeat_interval: wss_core::config::DEFAULT_HEARTBEAT.as_secs_f64(),
            private_key: None,
            ssl_certificate: None,
            ca_chain: None,
            inbound_buffer_size: defaults.inbound_buffer_size as i64,
            outbound_buffer_size: defaults.outbound_buffer_size as i64,
            max_queued_packets: defaults.max_queued_packets as i64,
            authorize_upgrades: false,
            allowed_origins: PackedStringArray::new(),
            trusted_proxies: PackedStringArray::new(),
            proxy_protocol: false,
            max_connections: 0,
            max_handshakes_per_address: wss_core::config::DEFAULT_MAX_HANDSHAKES_PER_ADDRESS as i64,
            io_mode: Self::IO_MODE_THREAD,
            busy_poll_usec: 0,
            queue_messages: false,
            extra_headers: Vec::new(),
            server: None,
            peer_objects: HashMap::new(),
            multiplayer: false,
            refuse_new_connections: false,
            target_peer: 0,
            monitors: Vec::new(),
            transfer_mode: TransferMode::RELIABLE,
            transfer_channel: 0,
            last_packet: None,
            held: Held::default(),
            no_messages: None,
            base,
        }
    }

    fn on_notification(&mut self, what: godot::classes::notify::ObjectNotification) {
        if what == godot::classes::notify::ObjectNotification::PREDELETE {
            // The monitors call into this object; they must not outlive it.
            self.unregister_monitors();
        }
    }

    /// Emits the signals for everything that happened since the last call.
    fn poll(&mut self) {
        // Godot copied each message out of the buffer `get_packet` lent it long ago: a large one
        // must not stay in memory until the same peer's next message.
        self.last_packet = None;
        // (`let_go` does not touch the list, so it stays borrowed; drained in place, no allocation.)
        for id in self.held.borrow_mut().drain(..) {
            if let Ok(mut peer) = Gd::<WebSocketServerPeer>::try_from_instance_id(id) {
                peer.bind_mut().let_go();
            }
        }
        let Some(server) = self.server.as_mut() else {
            return;
        };
        if let Err(failure) = server.poll() {
            // Every peer's disconnect is among the signals below; the server stops after them.
            godot_error!("WebSocketServer stopped: {failure}");
        }
        for (error, text) in server.take_notices() {
            if error {
                godot_error!("WebSocketServer: {text}");
            } else {
                godot_print!("WebSocketServer: {text}");
            }
        }
        if !server.has_pending() && !server.is_dead() {
            // Nothing to emit (most frames): no handler can run, so none can free this object.
            return;
        }
        // A handler may drop the last reference to this server (`server = null`, or
        // `multiplayer.multiplayer_peer = null`). Godot would then destroy it while this method
        // runs; holding a reference of our own keeps it alive until we are done.
        let keep = self.to_gd();
        // A handler may call back into this object (even stop() or listen()), so nothing is
        // borrowed across an emit: take one signal, emit it, repeat.
        while let Some(signal) = self.server.as_mut().and_then(Server::next_signal) {
            if is_last_reference(&keep) {
                // Nobody can reach this server any more: stop it, and emit nothing else.
                self.stop();
                break;
            }
            match signal {
                Signal::UpgradeRequested { id } => {
                    let Some(request) = self.server.as_ref().and_then(|s| s.request(id)).cloned() else {
                        continue;
                    };
                    let request = WebSocketServerRequest::create(id, request);
                    self.signals().upgrade_requested().emit(id as i64, &request);
                }
                Signal::UpgradeCancelled { id, why } => {
                    self.signals().upgrade_cancelled().emit(id as i64, &GString::from(why))
                }
                Signal::Connected { id, .. } if self.multiplayer => {
                    self.base_mut()
                        .emit_signal("peer_connected", &[(id as i64).to_variant()]);
                }
                Signal::Connected { id, protocol, resource } => self.signals().client_connected().emit(
                    id as i64,
                    &GString::from(&protocol),
                    &GString::from(&resource),
                ),
                Signal::DataReceived { id } => self.signals().data_received().emit(id as i64),
                Signal::CloseRequest { id, code, reason } => {
                    self.signals()
                        .client_close_request()
                        .emit(id as i64, code as i64, &GString::from(&reason))
                }
                Signal::Disconnected { id, .. } if self.multiplayer => {
                    self.base_mut()
                        .emit_signal("peer_disconnected", &[(id as i64).to_variant()]);
                }
                Signal::Disconnected { id, clean } => {
                    self.peer_objects.remove(&id);
                    self.signals().client_disconnected().emit(id as i64, clean)
                }
            }
        }
        if self.server.as_ref().is_some_and(Server::is_dead) {
            self.stop();
        }
        if is_last_reference(&keep) {
            // Dropping `keep` here would destroy the object inside its own method: release it
            // once this call has returned.
            self.stop();
            release_later(keep);
        }
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
        let Some(server) = self.queued_server("read packets from the server itself") else {
            return Error::ERR_UNAVAILABLE;
        };
        let Some((_, packet)) = server.pop_packet() else {
            crate::ratelimit::error("mp-no-packet", None, "WebSocketServer: no packet available".into());
            return Error::ERR_UNAVAILABLE;
        };
        let data = &self.last_packet.insert(packet).data;
        // SAFETY: Godot passes valid out-pointers; the buffer lives in `self.last_packet` until
        // the next call, by which time Godot has copied it.
        unsafe {
            *r_buffer.ptr() = RawPtr::new(data.as_ptr());
            *r_buffer_size.ptr() = data.len() as i32;
        }
        Error::OK
    }

    unsafe fn put_packet_rawptr(&mut self, p_buffer: RawPtr<*const u8>, p_buffer_size: i32) -> Error {
        let target = self.target_peer;
        let Some(server) = self.multiplayer_server("send packets through the server itself") else {
            return Error::ERR_UNAVAILABLE;
        };
        // One copy out of Godot's buffer, shared by every recipient of a broadcast.
        // SAFETY: Godot passes a buffer of `p_buffer_size` bytes.
        let data = unsafe { copy_packet(p_buffer, p_buffer_size) };
        match server.send_to(target, data.into(), false) {
            Ok(()) => Error::OK,
            Err(TargetError::UnknownPeer(id)) => {
                godot_error!("WebSocketServer: target peer {id} is not connected");
                Error::ERR_INVALID_PARAMETER
            }
            Err(TargetError::Refused(refused)) => {
                let full = refused.iter().any(|(_, e)| matches!(e, SendError::Full(_)));
                let who: Vec<String> = refused
                    .iter()
                    .map(|(id, e)| match e {
                        SendError::Full(limit) => format!("{id} ({limit} would be exceeded)"),
                        SendError::NotOpen => format!("{id} (closing)"),
                    })
                    .collect();
                crate::ratelimit::warn(
                    "put_packet",
                    refused.first().map(|(id, _)| *id as i64),
                    format!("WebSocketServer: packet not sent to peer {}", who.join(", ")),
                );
                if full {
                    Error::ERR_OUT_OF_MEMORY
                } else {
                    Error::FAILED
                }
            }
        }
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

    /// Accepts the upgrade request [param id] ([signal upgrade_requested]): the client gets
    /// [code]101 Switching Protocols[/code] and [signal client_connected] (or
    /// [signal MultiplayerPeer.peer_connected]) follows. [param protocol] picks the subprotocol
    /// (one the client offered, see [method WebSocketServerRequest.get_requested_protocols]);
    /// [code]""[/code] keeps the server's own choice. [param headers] are extra response lines for
    /// this client only ([code]"Set-Cookie: session=..."[/code]), after
    /// [method set_extra_headers]'s.
    ///
    /// Returns [constant @GlobalScope.ERR_DOES_NOT_EXIST] if no request with this id waits (it was
    /// decided already, ended, or never was), [constant @GlobalScope.ERR_INVALID_PARAMETER] for a
    /// protocol the client did not offer or a bad header line.
    #[func]
    fn accept_upgrade(
        &mut self,
        id: i64,
        #[opt(default = "")] protocol: GString,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Error {
        let headers: Vec<String> = headers.as_slice().iter().map(|h| h.to_string()).collect();
        if let Err(e) = validate_response_headers(&headers) {
            godot_error!("WebSocketServer.accept_upgrade: {e}");
            return Error::ERR_INVALID_PARAMETER;
        }
        let protocol = Some(protocol.to_string()).filter(|p| !p.is_empty());
        self.decide(id, Verdict::Accept { protocol, headers }, "accept_upgrade")
    }

    /// Refuses the upgrade request [param id] ([signal upgrade_requested]) with HTTP [param status]
    /// (400-599, e.g. 401, 403 or 429), [param reason] as a plain-text body, and [param headers]
    /// (e.g. [code]"Retry-After: 30"[/code]); then the connection closes. No other signal follows
    /// for this id. A browser's [code]WebSocket[/code] sees a failed connection (close code 1006),
    /// Godot's [WebSocketPeer] [constant WebSocketPeer.STATE_CLOSED] (and
    /// [signal MultiplayerPeer.connection_failed] on a multiplayer client).
    ///
    /// Returns [constant @GlobalScope.ERR_DOES_NOT_EXIST] if no request with this id waits,
    /// [constant @GlobalScope.ERR_INVALID_PARAMETER] for a bad status or header line.
    #[func]
    fn reject_upgrade(
        &mut self,
        id: i64,
        #[opt(default = 403)] status: i64,
        #[opt(default = "")] reason: GString,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Error {
        if !(400..=599).contains(&status) {
            godot_error!("WebSocketServer.reject_upgrade: status must be 400-599, not {status}");
            return Error::ERR_INVALID_PARAMETER;
        }
        let headers: Vec<String> = headers.as_slice().iter().map(|h| h.to_string()).collect();
        if let Err(e) = validate_response_headers(&headers) {
            godot_error!("WebSocketServer.reject_upgrade: {e}");
            return Error::ERR_INVALID_PARAMETER;
        }
        let body = reason.to_string();
        if body.len() > MAX_REJECT_BODY {
            godot_error!(
                "WebSocketServer.reject_upgrade: reason is {} bytes; at most {MAX_REJECT_BODY}",
                body.len()
            );
            return Error::ERR_INVALID_PARAMETER;
        }
        let headers: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
        let verdict = Verdict::Reject {
            status: status as u16,
            headers,
            body,
        };
        self.decide(id, verdict, "reject_upgrade")
    }

    /// Sends [param message] to every connected client except those in [param exclude], in one
    /// call: the bytes are copied once and shared by every recipient until each frame is written
    /// on the I/O thread. [param write_mode] is [constant WebSocketServerPeer.WRITE_MODE_BINARY]
    /// (default) or [constant WebSocketServerPeer.WRITE_MODE_TEXT] (the bytes must be UTF-8). Empty
    /// messages are sent too. Returns the clients that did not get it, as
    /// [code]{id: error}[/code]: [constant @GlobalScope.FAILED] (closing),
    /// [constant @GlobalScope.ERR_OUT_OF_MEMORY] (its queue is full; see
    /// [member outbound_buffer_size]); an empty [Dictionary] when everyone has it queued. Raw mode
    /// only (in multiplayer mode use [method MultiplayerPeer.set_target_peer] and
    /// [method PacketPeer.put_packet]). [i]Not in Godot.[/i]
    #[func]
    fn broadcast(
        &mut self,
        message: PackedByteArray,
        #[opt(default = 1)] write_mode: i64,
        #[opt(default = &PackedInt32Array::new())] exclude: PackedInt32Array,
    ) -> VarDictionary {
        self.send_many("broadcast", message, write_mode, None, exclude.as_slice())
    }

    /// Sends [param message] to the clients in [param ids], in one call, as [method broadcast]
    /// does (one shared copy; an id listed twice gets it once). Ids that are not connected are
    /// returned with [constant @GlobalScope.ERR_DOES_NOT_EXIST]. [i]Not in Godot.[/i]
    #[func]
    fn send_to_peers(
        &mut self,
        ids: PackedInt32Array,
        message: PackedByteArray,
        #[opt(default = 1)] write_mode: i64,
    ) -> VarDictionary {
        self.send_many("send_to_peers", message, write_mode, Some(ids.as_slice()), &[])
    }

    /// The upgrade request of client [param id] (connected, or waiting for
    /// [method accept_upgrade]), in either mode; [code]null[/code] (with an error) if there is none.
    #[func]
    fn get_peer_request(&self, id: i64) -> Option<Gd<WebSocketServerRequest>> {
        let found = i32::try_from(id)
            .ok()
            .and_then(|i| Some((i, self.server.as_ref()?.request(i)?.clone())));
        match found {
            Some((i, request)) => Some(WebSocketServerRequest::create(i, request)),
            None => {
                godot_error!("WebSocketServer: no peer or pending request with id {id}");
                None
            }
        }
    }

    /// The server's statistics since [method listen], counted on the I/O thread (reading them costs
    /// a few atomic loads; [method MultiplayerPeer.poll] does no extra work for them). Keys:
    /// [code]connections_open[/code], [code]connections_handshaking[/code] (now);
    /// [code]accepted_total[/code], [code]refused_total[/code] ([member max_connections],
    /// [member max_handshakes_per_address], [member MultiplayerPeer.refuse_new_connections]),
    /// [code]timed_out_total[/code] ([member handshake_timeout]),
    /// [code]heartbeat_dropped_total[/code]; [code]messages_in_total[/code],
    /// [code]bytes_in_total[/code], [code]messages_out_total[/code], [code]bytes_out_total[/code]
    /// (payload bytes of whole messages; out: written to the socket); [code]messages_queued_in[/code],
    /// [code]bytes_queued_in[/code] (received, not yet read by the game),
    /// [code]messages_queued_out[/code], [code]bytes_queued_out[/code] (sent by the game, not yet
    /// written). All 0 when not listening. [i]Not in Godot.[/i]
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let mut dict = VarDictionary::new();
        for (key, value) in self.stats() {
            dict.set(key, value as i64);
        }
        dict
    }

    /// One value of [method get_stats] by its key (what the Performance monitors of
    /// [method register_monitors] call); 0 (with an error) for an unknown key.
    #[func]
    fn get_stat(&self, key: GString) -> i64 {
        let key = key.to_string();
        match self.stats().into_iter().find(|(k, _)| *k == key) {
            Some((_, v)) => v as i64,
            None => {
                godot_error!("WebSocketServer.get_stat: no statistic {key:?} (see get_stats())");
                0
            }
        }
    }

    /// Adds every statistic of [method get_stats] to Godot's [Performance] custom monitors, so that
    /// they graph live in the editor's Debugger > Monitors tab while the game runs, under
    /// [code]WebSocketServer <name>/<key>[/code]. [param name] defaults to this object's instance id,
    /// so several servers get distinct monitors. Removed by [method unregister_monitors] and when the
    /// server is freed. Returns [constant @GlobalScope.ERR_ALREADY_EXISTS] if monitors of that name
    /// exist. [i]Not in Godot.[/i]
    #[func]
    fn register_monitors(&mut self, #[opt(default = "")] name: GString) -> Error {
        let name = match name.to_string() {
            n if n.is_empty() => self.base().instance_id().to_string(),
            n => n,
        };
        let mut performance = godot::classes::Performance::singleton();
        let ids: Vec<StringName> = STAT_KEYS
            .iter()
            .map(|key| StringName::from(&format!("WebSocketServer {name}/{key}")))
            .collect();
        if let Some(taken) = ids.iter().find(|id| performance.has_custom_monitor(*id)) {
            godot_error!("WebSocketServer.register_monitors: the monitor {taken} exists already; pick another name");
            return Error::ERR_ALREADY_EXISTS;
        }
        self.unregister_monitors();
        let callable = Callable::from_object_method(&self.to_gd(), "get_stat");
        for (id, key) in ids.iter().zip(STAT_KEYS) {
            performance
                .add_custom_monitor_ex(id, &callable)
                .arguments(&varray![&key.to_variant()])
                .done();
        }
        self.monitors = ids;
        Error::OK
    }

    /// Removes the monitors of [method register_monitors].
    #[func]
    fn unregister_monitors(&mut self) {
        let mut performance = godot::classes::Performance::singleton();
        for id in self.monitors.drain(..) {
            if performance.has_custom_monitor(&id) {
                performance.remove_custom_monitor(&id);
            }
        }
    }

    /// How many times accepting a connection failed for lack of resources (the process ran out of
    /// file descriptors, [code]EMFILE[/code]) since [method listen]. The first failure of a run of
    /// them is reported with an error; the server retries with a growing delay (at most 1 s, and
    /// at once when a connection closes) and accepts again by itself. [i]Not in Godot.[/i]
    #[func]
    fn get_accept_error_count(&self) -> i64 {
        self.server.as_ref().map_or(0, |s| s.accept_errors() as i64)
    }

    /// How many clients were refused since [method listen] by [member max_connections] or
    /// [member max_handshakes_per_address]. [i]Not in Godot.[/i]
    #[func]
    fn get_refused_connection_count(&self) -> i64 {
        self.server.as_ref().map_or(0, |s| s.refused_connections() as i64)
    }

    /// Starts listening on [param port] (0 picks a free one, see [method get_local_port]).
    ///
    /// [param protocols] lists the subprotocols the server accepts; the first one in the
    /// client's list that is also here is chosen. If the list is empty, clients offering any
    /// subprotocol are refused; if it is not, clients offering none are refused.
    ///
    /// Returns [constant @GlobalScope.ERR_ALREADY_IN_USE] if already listening or the port is
    /// taken, [constant @GlobalScope.ERR_INVALID_PARAMETER] for a bad port, protocol or address,
    /// [constant @GlobalScope.ERR_CANT_CREATE] if the socket or thread cannot be made.
    #[func]
    fn listen(
        &mut self,
        port: i64,
        #[opt(default = &PackedStringArray::new())] protocols: PackedStringArray,
        #[opt(default = false)] gd_mp_api: bool,
    ) -> Error {
        if self.server.is_some() {
            godot_error!("WebSocketServer is already listening; call stop() first");
            return Error::ERR_ALREADY_IN_USE;
        }
        let tls = match self.tls_config() {
            Ok(tls) => tls,
            Err(e) => {
                godot_error!("WebSocketServer: {e}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        let Ok(port) = u16::try_from(port) else {
            godot_error!("WebSocketServer: port must be between 0 and 65535, not {port}");
            return Error::ERR_INVALID_PARAMETER;
        };
        let protocols: Vec<String> = protocols.as_slice().iter().map(|p| p.to_string()).collect();
        if let Some(bad) = protocols.iter().find(|p| !is_token(p)) {
            godot_error!("WebSocketServer: {bad:?} is not a valid subprotocol name");
            return Error::ERR_INVALID_PARAMETER;
        }
        let config = ServerConfig {
            bind_ip: BindIp::parse(&self.bind_ip.to_string()).unwrap_or(BindIp::Any),
            port,
            protocols,
            extra_headers: self.extra_headers.clone(),
            handshake_timeout: std::time::Duration::from_secs_f64(self.handshake_timeout),
            close_timeout: std::time::Duration::from_secs_f64(self.close_timeout),
            partial_message_timeout: std::time::Duration::from_secs_f64(self.partial_message_timeout),
            heartbeat_interval: (self.heartbeat_interval > 0.0)
                .then(|| std::time::Duration::from_secs_f64(self.heartbeat_interval)),
            limits: Limits {
                inbound_buffer_size: self.inbound_buffer_size as usize,
                outbound_buffer_size: self.outbound_buffer_size as usize,
                max_queued_packets: self.max_queued_packets as usize,
            },
            multiplayer: gd_mp_api,
            queue_messages: self.queue_messages,
            tls,
            allowed_origins: self.allowed_origins.as_slice().iter().map(|o| o.to_string()).collect(),
            authorize: self.authorize_upgrades,
            trusted_proxies: TrustedProxies::parse(&strings(&self.trusted_proxies)).unwrap_or_default(),
            proxy_protocol: self.proxy_protocol,
            max_connections: self.max_connections as usize,
            max_handshakes_per_address: self.max_handshakes_per_address as usize,
            io: if self.io_mode == Self::IO_MODE_INLINE {
                IoMode::Inline
            } else {
                IoMode::Thread
            },
            busy_poll: std::time::Duration::from_micros(self.busy_poll_usec as u64),
            ..ServerConfig::default()
        };
        match Server::listen(&config) {
            Ok(server) => {
                server.set_refusing(self.refuse_new_connections);
                self.server = Some(server);
                self.multiplayer = gd_mp_api;
                Error::OK
            }
            Err(e) => {
                godot_error!("WebSocketServer: {e}");
                match e {
                    ListenError::InUse(_) => Error::ERR_ALREADY_IN_USE,
                    ListenError::BadAddress(_) => Error::ERR_INVALID_PARAMETER,
                    ListenError::CantCreate(_) => Error::ERR_CANT_CREATE,
                }
            }
        }
    }

    /// Closes the listener and every connection at once and clears all state. No signals are
    /// emitted; peer objects still held report [constant WebSocketServerPeer.STATE_CLOSED].
    #[func]
    fn stop(&mut self) {
        self.server = None; // dropping it stops the I/O thread and closes every socket
        self.peer_objects.clear();
        self.multiplayer = false;
        self.last_packet = None;
    }

    /// [code]true[/code] while the server is listening.
    #[func]
    fn is_listening(&self) -> bool {
        self.server.is_some()
    }

    /// The port the server listens on (useful after [code]listen(0)[/code]); 0 when not listening.
    #[func]
    fn get_local_port(&self) -> i64 {
        self.server.as_ref().map_or(0, |s| s.local_addr().port() as i64)
    }

    /// [code]true[/code] if a client with this id is connected.
    #[func]
    fn has_peer(&self, id: i64) -> bool {
        self.find(id).is_some()
    }

    /// The ids of every connected client, in no particular order.
    #[func]
    fn get_peer_ids(&self) -> PackedInt32Array {
        self.server
            .as_ref()
            .map_or_else(PackedInt32Array::new, |s| s.peer_ids().collect())
    }

    /// The [WebSocketServerPeer] for [param id], or [code]null[/code] (with an error) if there is
    /// none. The same object is returned for an id until it disconnects.
    #[func]
    fn get_peer(&mut self, id: i64) -> Option<Gd<WebSocketServerPeer>> {
        if self.multiplayer {
            godot_error!("WebSocketServer: get_peer() is for raw mode; in multiplayer mode SceneMultiplayer owns the peers' messages");
            return None;
        }
        let handle = self.require(id)?.clone();
        let peer = self
            .peer_objects
            .entry(handle.id())
            .or_insert_with(|| WebSocketServerPeer::create(handle, self.held.clone()));
        Some(peer.clone())
    }

    /// The IP address of the client [param id], or [code]""[/code] (with an error). Behind one of
    /// [member trusted_proxies] (or with [member proxy_protocol]), the address the proxy reports.
    #[func]
    fn get_peer_address(&self, id: i64) -> GString {
        self.require(id)
            .map_or(GString::new(), |p| p.addr().ip().to_string().as_str().into())
    }

    /// The remote port of the client [param id], or 0 (with an error). Behind a proxy, the port it
    /// reports (0 if it reports only the address, as [code]X-Forwarded-For[/code] does).
    #[func]
    fn get_peer_port(&self, id: i64) -> i64 {
        self.require(id).map_or(0, |p| p.addr().port() as i64)
    }

    /// Starts the close handshake with client [param id], sending [param code] and [param reason]
    /// (see [method WebSocketServerPeer.close]). [signal client_disconnected] follows once the
    /// client answers, or after [member close_timeout].
    ///
    /// [MultiplayerPeer]'s own [code]disconnect_peer(id, force)[/code] is this same method:
    /// called with [code]true[/code] (which arrives as code 1) the peer is dropped at once, with
    /// no close handshake and no further signal; with [code]false[/code] (code 0) it is closed
    /// with 1000. Neither 0 nor 1 is a valid close code, so nothing is ambiguous.
    #[func(rename = disconnect_peer)]
    fn disconnect_peer_with_code(
        &mut self,
        id: i64,
        #[opt(default = 1000)] code: i64,
        #[opt(default = "")] reason: GString,
    ) {
        match code {
            1 => {
                match i32::try_from(id) {
                    Ok(id) => self.abort_peer(id),
                    Err(_) => godot_error!("WebSocketServer: no peer with id {id}"),
                }
                return;
            }
            0 => return self.disconnect_peer_with_code(id, 1000, reason),
            _ => {}
        }
        if let Some(peer) = self.require(id) {
            close_peer(peer, code, &reason.to_string());
        }
    }

    /// Header lines ([code]"Name: value"[/code]) added to every handshake response from now on.
    /// An invalid line is refused (with an error) and the previous headers are kept.
    #[func]
    fn set_extra_headers(&mut self, #[opt(default = &PackedStringArray::new())] headers: PackedStringArray) {
        let headers: Vec<String> = headers.as_slice().iter().map(|h| h.to_string()).collect();
        if let Some(e) = headers.iter().find_map(|h| validate_header_line(h).err()) {
            godot_error!("WebSocketServer: {e}");
            return;
        }
        if let Some(server) = &self.server {
            server.set_extra_headers(headers.clone());
        }
        self.extra_headers = headers;
    }

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

    /// [member io_mode]: the server's own I/O thread does the socket work (the default).
    #[constant]
    pub const IO_MODE_THREAD: i64 = 0;

    /// [member io_mode]: [code]poll()[/code] does the socket work on the calling thread.
    #[constant]
    pub const IO_MODE_INLINE: i64 = 1;

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
    fn set_queue_messages(&mut self, value: bool) {
        self.set_checked("queue_messages", || Ok(()), |s| s.queue_messages = value);
    }

    /// Takes the waiting messages of all clients, oldest first: all of them, or at most
    /// [param max_messages] if it is above [code]0[/code] (the rest stay for the next call). Needs
    /// [member queue_messages], or multiplayer mode when no [SceneMultiplayer] reads this server
    /// (it would miss the messages taken). Each message taken no longer counts against
    /// its client's limits, so a client the server had stopped reading is read again.
    /// [i]Not in Godot.[/i]
    /// [codeblock]
    /// func _physics_process(_delta):
    ///     server.poll()
    ///     var batch := server.take_messages()
    ///     var ids := batch.ids
    ///     var packets := batch.packets
    ///     for i in batch.size():
    ///         inputs[ids[i]] = packets[i]
    /// [/codeblock]
    #[func]
    fn take_messages(&mut self, #[opt(default = 0)] max_messages: i64) -> Gd<WebSocketServerMessages> {
        // Called every frame: told once per server, then at most once a second.
        let me = Some(self.base().instance_id().to_i64());
        let queued = self.queued();
        let waiting = match &self.server {
            None => {
                crate::ratelimit::error(
                    "take-not-listening",
                    me,
                    "WebSocketServer.take_messages: not listening".into(),
                );
                0
            }
            Some(_) if !queued => {
                crate::ratelimit::error(
                    "take-not-queued",
                    me,
                    "WebSocketServer.take_messages: set queue_messages = true before listen() (messages are being delivered through data_received)".into(),
                );
                0
            }
            Some(server) => server.queued_packets(),
        };
        let n = if max_messages > 0 {
            waiting.min(max_messages as usize)
        } else {
            waiting
        };
        let Some(server) = self.server.as_mut().filter(|_| n > 0) else {
            // Most frames: one shared empty result (its array is read-only), nothing made.
            return self
                .no_messages
                .get_or_insert_with(|| {
                    let none = Array::new().into_read_only();
                    WebSocketServerMessages::create(PackedInt32Array::new(), none, PackedByteArray::new())
                })
                .clone();
        };
        let mut ids = PackedInt32Array::new();
        let mut text = PackedByteArray::new();
        let mut packets = Array::<PackedByteArray>::new();
        ids.resize(n);
        text.resize(n);
        for (id_slot, text_slot) in ids.as_mut_slice().iter_mut().zip(text.as_mut_slice()) {
            // `n` are waiting: every pop succeeds.
            let Some((id, packet)) = server.pop_packet() else {
                break;
            };
            *id_slot = id;
            *text_slot = packet.text as u8;
            packets.push(&PackedByteArray::from(&packet.data[..]));
        }
        WebSocketServerMessages::create(ids, packets, text)
    }

    /// Sends [code]messages[i][/code] to client [code]ids[i][/code], for every [code]i[/code], in
    /// one call: a game server's per-client state, or the answers to a [method take_messages]
    /// batch. The arrays must be the same size; an id may appear more than once (its messages keep
    /// their order). [param write_mode] as in [method broadcast], for every message; or, if
    /// [param text] is given (the same size as [param ids]), per message: [code]1[/code] text,
    /// [code]0[/code] binary, as [member WebSocketServerMessages.text] reports them, so that a
    /// relay or an echo can pass a batch on as it came. Returns the messages that were not queued,
    /// as [code]{index: error}[/code]: [constant @GlobalScope.ERR_DOES_NOT_EXIST] (no such
    /// client), [constant @GlobalScope.FAILED] (closing), [constant @GlobalScope.ERR_OUT_OF_MEMORY]
    /// (its queue is full; see [member outbound_buffer_size]); an empty [Dictionary] when all are
    /// queued. Arrays of different sizes, a bad write mode or a text message that is not UTF-8:
    /// nothing is sent, and an error says why. Raw mode only. [i]Not in Godot.[/i]
    #[func]
    fn send_messages(
        &mut self,
        ids: PackedInt32Array,
        messages: Array<PackedByteArray>,
        #[opt(default = 1)] write_mode: i64,
        #[opt(default = &PackedByteArray::new())] text: PackedByteArray,
    ) -> VarDictionary {
        let mut failures = VarDictionary::new();
        let what = "send_messages";
        let Some((server, all_text)) = self.raw_sender(what, write_mode) else {
            return failures;
        };
        if ids.len() != messages.len() || (!text.is_empty() && text.len() != ids.len()) {
            godot_error!(
                "WebSocketServer.{what}: {} ids but {} messages{}; nothing was sent",
                ids.len(),
                messages.len(),
                if text.is_empty() {
                    String::new()
                } else {
                    format!(" and {} text flags", text.len())
                }
            );
            return failures;
        }
        let flags = text.as_slice();
        let mut batch = Vec::with_capacity(ids.len());
        for (&id, message) in ids.as_slice().iter().zip(messages.iter_shared()) {
            let data = message.to_vec();
            let is_text = flags.get(batch.len()).map_or(all_text, |&f| f != 0);
            if is_text && std::str::from_utf8(&data).is_err() {
                godot_error!(
                    "WebSocketServer.{what}: message {} is not UTF-8; nothing was sent",
                    batch.len()
                );
                return failures;
            }
            batch.push((id, data.into(), is_text));
        }
        let failed: Vec<(i64, BroadcastError)> = server
            .send_each(batch)
            .into_iter()
            .map(|(i, why)| (i as i64, why))
            .collect();
        report_failures(what, "message", self.base().instance_id(), &failed, &mut failures);
        self.flush_inline();
        failures
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

impl WebSocketServer {
    /// `broadcast` and `send_to_peers`: checks, one copy, failures as `{id: Error}`.
    fn send_many(
        &mut self,
        what: &str,
        message: PackedByteArray,
        write_mode: i64,
        to: Option<&[i32]>,
        exclude: &[i32],
    ) -> VarDictionary {
        let mut failures = VarDictionary::new();
        let Some((server, text)) = self.raw_sender(what, write_mode) else {
            return failures;
        };
        let data = message.to_vec();
        if text && std::str::from_utf8(&data).is_err() {
            godot_error!("WebSocketServer.{what}: a text message must be UTF-8");
            return failures;
        }
        let failed = server.broadcast(data.into(), text, to, exclude);
        report_failures(what, "client", self.base().instance_id(), &failed, &mut failures);
        self.flush_inline();
        failures
    }

    /// Inline I/O: a multi-send's messages are written before it returns, in one pass (any other
    /// send waits for the next `poll()`).
    fn flush_inline(&mut self) {
        if let Some(server) = self.server.as_mut() {
            server.flush();
        }
    }

    /// The checks every raw-mode multi-send makes: raw mode, listening, a valid write mode (whether
    /// it is text). `None` after an error naming `what`.
    fn raw_sender(&self, what: &str, write_mode: i64) -> Option<(&Server, bool)> {
        if self.multiplayer {
            godot_error!(
                "WebSocketServer.{what}: raw mode only; in multiplayer mode use set_target_peer() and put_packet()"
            );
            return None;
        }
        let Some(server) = &self.server else {
            godot_error!("WebSocketServer.{what}: not listening");
            return None;
        };
        match write_mode {
            0 => Some((server, true)),
            1 => Some((server, false)),
            m => {
                godot_error!(
                    "WebSocketServer.{what}: write_mode must be WRITE_MODE_TEXT (0) or WRITE_MODE_BINARY (1), not {m}"
                );
                None
            }
        }
    }

    /// The statistics of `get_stats`, in `STAT_KEYS` order.
    fn stats(&self) -> Vec<(&'static str, u64)> {
        use wss_core::shared::{gauge, read};
        let Some(server) = &self.server else {
            return STAT_KEYS.iter().map(|k| (*k, 0)).collect();
        };
        let t = server.totals();
        let values = [
            gauge(&t.open),
            gauge(&t.handshaking),
            read(&t.accepted),
            read(&t.refused),
            read(&t.timed_out),
            read(&t.heartbeat_dropped),
            read(&t.messages_in),
            read(&t.bytes_in),
            read(&t.messages_out),
            read(&t.bytes_out),
            gauge(&t.queued_in_messages),
            gauge(&t.queued_in_bytes),
            gauge(&t.queued_out_messages),
            gauge(&t.queued_out_bytes),
        ];
        STAT_KEYS.iter().copied().zip(values).collect()
    }

    /// Forwards a decision on a request, with an error naming `what` if it is refused.
    fn decide(&mut self, id: i64, verdict: Verdict, what: &str) -> Error {
        let Some(server) = self.server.as_mut() else {
            godot_error!("WebSocketServer.{what}: not listening");
            return Error::ERR_UNCONFIGURED;
        };
        let Ok(id32) = i32::try_from(id) else {
            godot_error!("WebSocketServer.{what}: no request with id {id} is waiting for a decision");
            return Error::ERR_DOES_NOT_EXIST;
        };
        match server.decide(id32, verdict) {
            Ok(()) => Error::OK,
            Err(e @ DecideError::NotOffered(..)) => {
                godot_error!("WebSocketServer.{what}: {e}");
                Error::ERR_INVALID_PARAMETER
            }
            Err(e) => {
                godot_error!("WebSocketServer.{what}: {e}");
                Error::ERR_DOES_NOT_EXIST
            }
        }
    }

    /// Drops a peer at once, without a close handshake or any further signal.
    fn abort_peer(&mut self, peer: i32) {
        if !self.server.as_mut().is_some_and(|s| s.abort(peer)) {
            godot_error!("WebSocketServer: no peer with id {peer}");
        }
        self.peer_objects.remove(&peer);
    }

    /// Whether messages wait in one queue (multiplayer mode, or `queue_messages`) rather than in
    /// each peer's own.
    fn queued(&self) -> bool {
        self.multiplayer || self.queue_messages
    }

    /// The running server if its messages wait in one queue (multiplayer mode or
    /// `queue_messages`); otherwise an error saying that `what` needs it.
    fn queued_server(&mut self, what: &str) -> Option<&mut Server> {
        let queued = self.queued();
        match &mut self.server {
            Some(server) if queued => Some(server),
            Some(_) => {
                godot_error!(
                    "WebSocketServer: in raw mode you cannot {what} unless queue_messages is on; use get_peer(id)"
                );
                None
            }
            None => {
                godot_error!("WebSocketServer: not listening");
                None
            }
        }
    }

    /// The running server if it is in multiplayer mode; otherwise an error saying that `what`
    /// needs it.
    fn multiplayer_server(&mut self, what: &str) -> Option<&mut Server> {
        match &mut self.server {
            Some(server) if self.multiplayer => Some(server),
            Some(_) => {
                godot_error!("WebSocketServer: in raw mode you cannot {what}; use get_peer(id) (or listen with gd_mp_api = true)");
                None
            }
            None => {
                godot_error!("WebSocketServer: not listening");
                None
            }
        }
    }

    /// The TLS configuration from the three resources: `None` for plain `ws://`.
    fn tls_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, ConfigError> {
        let (key, cert) = match (&self.private_key, &self.ssl_certificate) {
            (None, None) if self.ca_chain.is_some() => {
                return Err(ConfigError(
                    "ca_chain is set, but private_key and ssl_certificate are not".into(),
                ))
            }
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(ConfigError(
                    "private_key is set but ssl_certificate is not; wss:// needs both".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError(
                    "ssl_certificate is set but private_key is not; wss:// needs both".into(),
                ))
            }
            (Some(key), Some(cert)) => (key.clone(), cert.clone()),
        };
        if key.is_public_only() {
            return Err(ConfigError(
                "private_key holds no private key (it is empty or public only)".into(),
            ));
        }
        let pem = TlsPem {
            certificate: certificate_pem(cert)?,
            private_key: key.clone().save_to_string().to_string(),
            ca_chain: self
                .ca_chain
                .clone()
                .map(certificate_pem)
                .transpose()?
                .unwrap_or_default(),
        };
        server_config(&pem).map(Some)
    }

    /// A setter's common part: refuse while listening, refuse invalid values, keep the old value.
    fn set_checked(
        &mut self,
        name: &str,
        check: impl FnOnce() -> Result<(), ConfigError>,
        set: impl FnOnce(&mut Self),
    ) {
        if self.server.is_some() {
            godot_error!("WebSocketServer: {name} cannot change while listening; call stop() first");
            return;
        }
        match check() {
            Ok(()) => set(self),
            Err(e) => godot_error!("WebSocketServer: {e}"),
        }
    }

    fn find(&self, id: i64) -> Option<&wss_core::PeerHandle> {
        let id = i32::try_from(id).ok()?;
        self.server.as_ref()?.peer(id)
    }

    /// Like `find`, with an error for the caller when there is no such peer.
    fn require(&self, id: i64) -> Option<&wss_core::PeerHandle> {
        let found = self.find(id);
        if found.is_none() {
            godot_error!("WebSocketServer: no peer with id {id}");
        }
        found
    }
}

/// The PEM text of a certificate resource. `X509Certificate.save_to_string()` would do, but
/// Godot includes the C string's terminating NUL in it and prints a Unicode warning on every
/// call; `save()` writes the same PEM to a file without that, so go through a temporary file, in
/// a directory of our own with a random name that only this user can enter (a predictable path in
/// a shared temporary directory could be planted by another user).
fn certificate_pem(mut cert: Gd<X509Certificate>) -> Result<String, ConfigError> {
    let dir = tempfile::Builder::new()
        .prefix("websocket_server-")
        .tempdir()
        .map_err(|e| {
            ConfigError(format!(
                "cannot make a temporary directory to read the certificate: {e}"
            ))
        })?;
    let path = dir.path().join("certificate.crt");
    let err = cert.save(path.to_string_lossy().as_ref());
    let text = std::fs::read(&path);
    drop(dir);
    match (err, text) {
        (Error::OK, Ok(bytes)) => Ok(String::from_utf8_lossy(&bytes).replace('\0', "")),
        (err, _) => Err(ConfigError(format!(
            "a certificate resource cannot be read ({err:?}); is it empty?"
        ))),
    }
}

/// The keys of `get_stats`, which are also the Performance monitors' names.
const STAT_KEYS: [&str; 14] = [
    "connections_open",
    "connections_handshaking",
    "accepted_total",
    "refused_total",
    "timed_out_total",
    "heartbeat_dropped_total",
    "messages_in_total",
    "bytes_in_total",
    "messages_out_total",
    "bytes_out_total",
    "messages_queued_in",
    "bytes_queued_in",
    "messages_queued_out",
    "bytes_queued_out",
];

/// A count where 0 means "no limit".
fn limit_or_zero(name: &str, value: i64) -> Result<(), ConfigError> {
    match value {
        0 => Ok(()),
        v => size_limit(name, v)
            .map(|_| ())
            .map_err(|e| ConfigError(format!("{e} (or 0 for no limit)"))),
    }
}

fn strings(array: &PackedStringArray) -> Vec<String> {
    array.as_slice().iter().map(|s| s.to_string()).collect()
}

/// The longest body `reject_upgrade` sends.
const MAX_REJECT_BODY: usize = 4096;

/// Whether `gd` holds the only reference left to its object.
fn is_last_reference(gd: &Gd<WebSocketServer>) -> bool {
    gd.upcast_ref::<godot::classes::RefCounted>().get_reference_count() <= 1
}

/// Drops the last reference to a server after the current call has returned (a deferred call),
/// so that Godot never destroys the object while one of its methods runs.
fn release_later(mut gd: Gd<WebSocketServer>) {
    let main = godot::classes::Os::singleton().get_main_thread_id();
    if godot::classes::Os::singleton().get_thread_caller_id() == main {
        gd.run_deferred_gd(drop);
    } else {
        // Off the main thread there is no deferred call to ride on; keeping the (stopped) object
        // is a small leak, destroying it here would abort the engine.
        std::mem::forget(gd);
    }
}

/// Failures of a multi-send (`(key, why)`: an id, or a position in the batch) as `{key: Error}`,
/// with one rate-limited warning.
fn report_failures(
    what: &str,
    noun: &str,
    server: InstanceId,
    failed: &[(impl Copy + Into<i64> + std::fmt::Display, BroadcastError)],
    into: &mut VarDictionary,
) {
    for (key, why) in failed {
        let code = match why {
            BroadcastError::UnknownPeer => Error::ERR_DOES_NOT_EXIST,
            BroadcastError::Send(SendError::NotOpen) => Error::FAILED,
            BroadcastError::Send(SendError::Full(_)) => Error::ERR_OUT_OF_MEMORY,
        };
        into.set((*key).into(), code);
    }
    if let Some((key, why)) = failed.first() {
        // A send loop can repeat it: told once per server, then at most once a second.
        crate::ratelimit::warn(
            "broadcast",
            Some(server.to_i64()),
            format!(
                "WebSocketServer.{what}: not queued for {} {noun}(s), e.g. {key} ({why:?}); see the returned Dictionary",
                failed.len()
            ),
        );
    }
}
