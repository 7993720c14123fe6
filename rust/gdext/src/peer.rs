use std::cell::{Cell, RefCell};
use std::rc::Rc;

use godot::classes::{IPacketPeerExtension, PacketPeerExtension};
use godot::global::Error;
use godot::prelude::*;
use godot_core::meta::RawPtr;
use wss_core::{CloseError, Kind, Packet, PeerHandle, PeerState, SendError};

/// One client of a [WebSocketServer], returned by [method WebSocketServer.get_peer].
///
/// Read with [method PacketPeer.get_packet] or [method PacketPeer.get_var] once per
/// [signal WebSocketServer.data_received] (with [member WebSocketServer.queue_messages] on,
/// messages are taken from the server instead: [method WebSocketServer.take_messages]); send
/// with [method PacketPeer.put_packet], [method PacketPeer.put_var] or [method send_text].
/// Sending never blocks: a message is queued for the server's I/O thread, and a send that would
/// exceed the peer's limits fails with [constant @GlobalScope.ERR_OUT_OF_MEMORY] instead of being
/// dropped later.
///
/// A peer object kept after its client left stays safe to use: messages already received can
/// still be read, sends fail with [constant @GlobalScope.FAILED].
#[derive(GodotClass)]
#[class(tool, no_init, base = PacketPeerExtension)]
pub struct WebSocketServerPeer {
    handle: PeerHandle,
    /// Whether [method PacketPeer.put_packet] sends text ([constant WRITE_MODE_TEXT]) or binary
    /// ([constant WRITE_MODE_BINARY], the default) messages.
    #[var(set = set_write_mode)]
    write_mode: i64,
    /// The message the last `get_packet` returned; Godot copies it out of this buffer. Let go at
    /// the server's next `poll()` (`PeerLink::held`), so that a large message does not stay in memory.
    last: LastPacket,
    link: Link,
    base: Base<PacketPeerExtension>,
}

/// What a server shares with its peer objects, by instance id (the server must not keep a peer
/// object alive, nor a peer the server).
#[derive(Default)]
pub struct PeerLink {
    /// The peer objects' `last` slots that hold a message, emptied by the server's next `poll()`
    /// (shared slots, not the objects: letting go costs no call into Godot per message).
    held: RefCell<Vec<LastPacket>>,
    /// Inline I/O: the server, which writes what is sent outside `poll()` at the end of the frame.
    inline_server: Cell<Option<InstanceId>>,
    /// A deferred `_flush_sends` is queued for this frame.
    flush_due: Cell<bool>,
}

pub type Link = Rc<PeerLink>;

/// A peer's last packet, shared with the server's `PeerLink::held` list.
type LastPacket = Rc<RefCell<Option<Packet>>>;

impl PeerLink {
    /// Inline I/O's server (from `listen`), or none (the I/O thread, or stopped).
    pub fn set_inline_server(&self, server: Option<InstanceId>) {
        self.inline_server.set(server);
        self.flush_due.set(false);
    }

    /// A message was queued. With inline I/O, nothing else would write it before the next
    /// `poll()`, a frame later (the seed's per-peer echo answered every other frame): the server
    /// writes it at the end of this frame instead, with one deferred call for all the frame's
    /// sends (Godot flushes deferred calls after the process and physics steps).
    pub fn sent(&self) {
        let Some(id) = self.inline_server.get() else {
            return;
        };
        if self.flush_due.replace(true) {
            return;
        }
        match Gd::<Object>::try_from_instance_id(id) {
            Ok(mut server) => {
                server.call_deferred("_flush_sends", &[]);
            }
            Err(_) => self.flush_due.set(false),
        }
    }

    /// The deferred flush ran.
    pub fn flushed(&self) {
        self.flush_due.set(false);
    }

    /// `poll()`: every peer lets go of the packet Godot copied out long ago.
    pub fn let_go(&self) {
        // (Dropping a packet runs no code that could reach this list: drained in place, the
        // list keeps its capacity.)
        for slot in self.held.borrow_mut().drain(..) {
            slot.borrow_mut().take();
        }
    }
}

impl WebSocketServerPeer {
    pub fn create(handle: PeerHandle, link: Link) -> Gd<Self> {
        Gd::from_init_fn(|base| WebSocketServerPeer {
            handle,
            write_mode: Self::WRITE_MODE_BINARY,
            last: LastPacket::default(),
            link,
            base,
        })
    }

    /// Sends bytes the caller got from GDScript: text must be checked for UTF-8.
    fn send_checked(&self, data: &[u8], kind: impl Into<Kind>) -> Error {
        let kind = kind.into();
        if !Packet::is_valid(data, kind.text) {
            godot_error!("WebSocketServerPeer {}: a text message must be UTF-8", self.handle.id());
            return Error::ERR_INVALID_PARAMETER;
        }
        self.outcome(self.handle.send_copy(data, kind))
    }

    /// Queues a message whose text, if any, is known to be UTF-8.
    fn queue(&self, data: impl Into<wss_core::event::Bytes>, kind: Kind) -> Error {
        self.outcome(self.handle.send(data, kind))
    }

    /// A send's result as Godot's `Error`, with a rate-limited warning when it failed.
    fn outcome(&self, sent: Result<(), SendError>) -> Error {
        match sent {
            Ok(()) => {
                self.link.sent();
                Error::OK
            }
            // A game loop may hit these thousands of times a second: warn, rate-limited.
            Err(SendError::NotOpen) => {
                crate::ratelimit::warn(
                    "send-not-open",
                    Some(self.handle.id() as i64),
                    format!(
                        "WebSocketServerPeer {}: cannot send, the connection is {}",
                        self.handle.id(),
                        self.state_name()
                    ),
                );
                Error::FAILED
            }
            Err(SendError::Full(limit)) => {
                crate::ratelimit::warn(
                    "send-full",
                    Some(self.handle.id() as i64),
                    format!(
                        "WebSocketServerPeer {}: cannot send, {limit} would be exceeded (the client is not reading fast enough)",
                        self.handle.id()
                    ),
                );
                Error::ERR_OUT_OF_MEMORY
            }
        }
    }

    fn state_name(&self) -> &'static str {
        match self.handle.state() {
            PeerState::Open => "open",
            PeerState::Closing => "closing",
            PeerState::Closed => "closed",
        }
    }
}

#[godot_api]
impl WebSocketServerPeer {
    /// [method PacketPeer.put_packet] sends text messages (the bytes must be UTF-8).
    #[constant]
    pub const WRITE_MODE_TEXT: i64 = 0;
    /// [method PacketPeer.put_packet] sends binary messages.
    #[constant]
    pub const WRITE_MODE_BINARY: i64 = 1;
    /// The connection is open ([method get_ready_state]).
    #[constant]
    pub const STATE_OPEN: i64 = 1;
    /// A Close frame was sent or received.
    #[constant]
    pub const STATE_CLOSING: i64 = 2;
    /// The connection is gone.
    #[constant]
    pub const STATE_CLOSED: i64 = 3;

    #[func]
    fn set_write_mode(&mut self, mode: i64) {
        if mode == Self::WRITE_MODE_TEXT || mode == Self::WRITE_MODE_BINARY {
            self.write_mode = mode;
        } else {
            godot_error!("write_mode must be WRITE_MODE_TEXT (0) or WRITE_MODE_BINARY (1), not {mode}");
        }
    }

    /// Sends [param message] as one message, binary or text by [param write_mode] (as
    /// [method WebSocketPeer.send]). Unlike [method PacketPeer.put_packet], which Godot skips for
    /// an empty array, this also sends empty messages. [param compress] [code]false[/code]: sent
    /// uncompressed even where [member WebSocketServer.compression] was agreed with this client
    /// (a secret, such as a session token, beside text an attacker chose; RFC 7692 §8).
    #[func]
    fn send(
        &mut self,
        message: PackedByteArray,
        #[opt(default = 1)] write_mode: i64,
        #[opt(default = true)] compress: bool,
    ) -> Error {
        let text = match write_mode {
            Self::WRITE_MODE_TEXT => true,
            Self::WRITE_MODE_BINARY => false,
            other => {
                godot_error!("write_mode must be WRITE_MODE_TEXT (0) or WRITE_MODE_BINARY (1), not {other}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        self.send_checked(message.as_slice(), Kind { text, compress })
    }

    /// Sends [param text] as one text message ([param compress] as in [method send]).
    #[func]
    fn send_text(&mut self, text: GString, #[opt(default = true)] compress: bool) -> Error {
        // A GString converts to valid UTF-8: no check needed.
        self.queue(text.to_string().into_bytes(), Kind { text: true, compress })
    }

    /// Returns [code]true[/code] if the message the last [method PacketPeer.get_packet] returned
    /// was a text message.
    #[func]
    fn was_string_packet(&self) -> bool {
        self.last.borrow().as_ref().is_some_and(|p| p.text)
    }

    /// Starts the close handshake with [param code] (1000-1003, 1007-1014 or 3000-4999) and
    /// [param reason] (at most 123 bytes of UTF-8; longer ones are cut). The server emits
    /// [signal WebSocketServer.client_disconnected] once the client answers, or after
    /// [member WebSocketServer.close_timeout].
    #[func]
    fn close(&mut self, #[opt(default = 1000)] code: i64, #[opt(default = "")] reason: GString) {
        close_peer(&self.handle, code, &reason.to_string());
    }

    /// The client's IP address (behind [member WebSocketServer.trusted_proxies], the one they
    /// report).
    #[func]
    fn get_connected_host(&self) -> GString {
        self.handle.addr().ip().to_string().as_str().into()
    }

    /// The client's port.
    #[func]
    fn get_connected_port(&self) -> i64 {
        self.handle.addr().port() as i64
    }

    /// The upgrade request this client came with (headers, path, subprotocols, addresses).
    /// [i]Not in Godot.[/i]
    #[func]
    fn get_request(&self) -> Gd<crate::request::WebSocketServerRequest> {
        crate::request::WebSocketServerRequest::create(self.handle.id(), self.handle.request().clone())
    }

    /// The peer's id on its server.
    #[func]
    fn get_id(&self) -> i64 {
        self.handle.id() as i64
    }

    /// [code]true[/code] until the connection is gone (also while closing).
    #[func]
    fn is_connected_to_host(&self) -> bool {
        self.handle.state() != PeerState::Closed
    }

    /// [constant STATE_OPEN], [constant STATE_CLOSING] or [constant STATE_CLOSED], as in
    /// [WebSocketPeer].
    #[func]
    fn get_ready_state(&self) -> i64 {
        match self.handle.state() {
            PeerState::Open => Self::STATE_OPEN,
            PeerState::Closing => Self::STATE_CLOSING,
            PeerState::Closed => Self::STATE_CLOSED,
        }
    }

    /// Disables Nagle's algorithm on the socket when [code]true[/code] (the default).
    #[func]
    fn set_no_delay(&mut self, enabled: bool) {
        self.handle.set_no_delay(enabled);
    }

    /// The round-trip time, in seconds, of the last ping of the heartbeat
    /// ([member WebSocketServer.heartbeat_interval]) that this client answered; [code]-1.0[/code]
    /// before its first answer (or with the heartbeat off). [i]Not in Godot.[/i]
    #[func]
    fn get_round_trip_time(&self) -> f64 {
        self.handle.round_trip().map_or(-1.0, |rtt| rtt.as_secs_f64())
    }

    /// This client's statistics: [code]messages_in[/code], [code]bytes_in[/code],
    /// [code]messages_out[/code], [code]bytes_out[/code] (whole messages and their payload bytes
    /// since it connected; out: written to its socket), [code]messages_queued_in[/code],
    /// [code]bytes_queued_in[/code] (received, not yet read), [code]messages_queued_out[/code],
    /// [code]bytes_queued_out[/code] (sent, not yet written), [code]round_trip_time[/code] (seconds,
    /// as [method get_round_trip_time]), [code]connected_time[/code] (seconds since the upgrade).
    /// Counted on the server's I/O thread. [i]Not in Godot.[/i]
    #[func]
    fn get_stats(&self) -> VarDictionary {
        use std::sync::atomic::Ordering::Relaxed;
        let p = self.handle.shared();
        let (in_msgs, in_bytes) = p.inbound_queued();
        let (out_msgs, out_bytes) = p.outbound_queued();
        let mut d = VarDictionary::new();
        d.set("messages_in", p.messages_in.load(Relaxed) as i64);
        d.set("bytes_in", p.bytes_in.load(Relaxed) as i64);
        d.set("messages_out", p.messages_out.load(Relaxed) as i64);
        d.set("bytes_out", p.bytes_out.load(Relaxed) as i64);
        d.set("messages_queued_in", in_msgs as i64);
        d.set("bytes_queued_in", in_bytes as i64);
        d.set("messages_queued_out", out_msgs as i64);
        d.set("bytes_queued_out", out_bytes as i64);
        d.set("round_trip_time", self.get_round_trip_time());
        d.set("connected_time", p.connected_at.elapsed().as_secs_f64());
        d
    }

    /// Bytes queued for this peer and not yet written to its socket.
    #[func]
    fn get_current_outbound_buffered_amount(&self) -> i64 {
        self.handle.outbound_buffered() as i64
    }
}

/// The packet in the buffer Godot passes to `_put_packet` (copied by the send that takes it).
///
/// # Safety
/// `buffer` must point to `size` readable bytes (or `size` may be 0), alive for `'a`.
pub unsafe fn packet_bytes<'a>(buffer: RawPtr<*const u8>, size: i32) -> &'a [u8] {
    match usize::try_from(size) {
        Ok(len) if len > 0 => unsafe { std::slice::from_raw_parts(buffer.ptr(), len) },
        _ => &[],
    }
}

/// `get_packet_rawptr` of the peer and of the server: keeps `packet` in `slot` (until the next
/// call, by which time Godot has copied it) and points Godot's out-parameters at its bytes.
///
/// # Safety
/// `r_buffer` and `r_buffer_size` must be valid out-pointers.
pub unsafe fn lend_packet(
    slot: &mut Option<Packet>,
    packet: Packet,
    r_buffer: RawPtr<*mut RawPtr<*const u8>>,
    r_buffer_size: RawPtr<*mut i32>,
) -> Error {
    let data = &slot.insert(packet).data;
    unsafe {
        *r_buffer.ptr() = RawPtr::new(data.as_ptr());
        *r_buffer_size.ptr() = data.len() as i32;
    }
    Error::OK
}

/// Validates and forwards a close request; shared by the peer and the server.
pub fn close_peer(handle: &PeerHandle, code: i64, reason: &str) {
    let Ok(code16) = u16::try_from(code) else {
        godot_error!("close code {code} is not a valid WebSocket close code (1000-1003, 1007-1014, 3000-4999)");
        return;
    };
    match handle.close(code16, reason) {
        Ok(false) => {}
        Ok(true) => godot_warn!("close reason cut to 123 bytes (the most a Close frame carries)"),
        Err(CloseError::BadCode(c)) => {
            godot_error!("close code {c} may not be sent (use 1000-1003, 1007-1014 or 3000-4999)")
        }
        Err(CloseError::NotOpen) => {
            godot_error!("peer {} is already closing or closed", handle.id())
        }
    }
}

#[godot_api]
impl IPacketPeerExtension for WebSocketServerPeer {
    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        let Some(packet) = self.handle.pop() else {
            crate::ratelimit::error(
                "no-packet",
                Some(self.handle.id() as i64),
                format!("WebSocketServerPeer {}: no packet available", self.handle.id()),
            );
            return Error::ERR_UNAVAILABLE;
        };
        let mut slot = self.last.borrow_mut();
        if slot.is_none() {
            self.link.held.borrow_mut().push(self.last.clone());
        }
        // SAFETY: Godot passes valid out-pointers. (The bytes stay where they are, in the slot,
        // after this borrow ends.)
        unsafe { lend_packet(&mut slot, packet, r_buffer, r_buffer_size) }
    }

    unsafe fn put_packet_rawptr(&mut self, p_buffer: RawPtr<*const u8>, p_buffer_size: i32) -> Error {
        // SAFETY: Godot passes a buffer of `p_buffer_size` bytes.
        let data = unsafe { packet_bytes(p_buffer, p_buffer_size) };
        self.send_checked(data, self.write_mode == Self::WRITE_MODE_TEXT)
    }

    fn get_available_packet_count(&self) -> i32 {
        self.handle.available() as i32
    }

    fn get_max_packet_size(&self) -> i32 {
        self.handle.max_packet_size() as i32
    }
}
