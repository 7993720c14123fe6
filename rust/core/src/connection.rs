//! One connection's protocol state, from TCP accept to gone, without any I/O.
//!
//! A `Connection` takes the bytes that arrived (`handle_input`, `handle_eof`) and the time (in
//! `Cx`), the game's commands (`send`, `close`, `decide`, ...) and its deadline (`on_timeout`),
//! and hands back the bytes to write (`pending_output`, then `transmitted`), its events (pushed
//! into `Cx::events`), its next deadline (`deadline`), whether it wants more input
//! (`wants_input`) and when our direction of the stream should end (`shutdown_due`). The shell
//! (`transport` and the driver) moves the bytes: it alone knows sockets, TLS and the PROXY header.
//! Tests and the simulator drive it with in-memory pipes and a made-up clock.
//!
//! Lifecycle: `Handshake` (reading the HTTP upgrade; `handshake_timeout` runs from accept) →
//! `Open` (tungstenite frames; reading pauses while the game's queue for this peer is full, or
//! while the bytes waiting for the socket exceed the outbound limit; the heartbeat pings, and a
//! message left unfinished has `partial_message_timeout`) → `Ending` (the close handshake is
//! complete or the upgrade was refused: the output drains, then `close_notify` and FIN) → gone.
//! A protocol violation goes through `FailPending` (the game first takes the messages that came
//! before it) and `Failing`: our Close frame (1002, 1007, 1008 or 1009) is written, followed by a
//! FIN on plain TCP (`Shutdown::Fin`; RFC 6455 §7.1.7: fail, then close), and the connection
//! ends with the client's Close reply (see `Reply`: after a frame over the limit, the rest of it
//! is skipped first), its EOF, or `close_timeout`. Only a bad opcode leaves the stream
//! unparseable: then only the EOF ends it.
//!
//! Every byte for the socket goes through one `OutQueue` (tungstenite writes into it and never
//! buffers on its own), so what a connection holds for a slow client is counted and bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Bytes, Message};

use crate::config::{Limits, ServerConfig};
use crate::handshake::{refusal, Decision, Offer, Upgrade, MAX_REQUEST_SIZE};
use crate::ids::IdAllocator;
use crate::inbox::{Inbox, Wire};
use crate::outq::OutQueue;
use crate::progress::MessageProgress;
use crate::request::{Request, TrustedProxies};
use crate::shared::{bump, Event, Packet, PeerId, PeerShared, PeerState, Totals};

/// The close code reported when a Close frame carries none (RFC 6455 §7.1.5).
pub const NO_STATUS_RECEIVED: u16 = 1005;

/// Bytes the shell reads from a socket at a time, and the size of tungstenite's read buffer (its default of 128 KiB per connection is far too much for thousands of
/// mostly idle game clients; larger messages grow the buffer as needed).
pub const READ_CHUNK: usize = 4096;

/// How long a client over `max_connections` may take to send its request before it is closed
/// without the `503`.
pub const OVER_CAPACITY_WAIT: Duration = Duration::from_secs(1);

/// The largest frame accepted with an inbound limit of `limit` bytes: at least 125, the most a
/// control frame may carry.
fn max_frame(limit: usize) -> usize {
    limit.max(125)
}

/// What every connection of one server shares.
#[derive(Clone, Debug)]
pub struct Settings {
    pub offer: Offer,
    pub limits: Limits,
    pub handshake_timeout: Duration,
    pub close_timeout: Duration,
    /// A client that leaves a message unfinished and sends nothing more of it for this long is
    /// closed with 1008.
    pub partial_message_timeout: Duration,
    /// Ping every open peer this often; a peer whose last ping is unanswered when the next is
    /// due is dropped. `None`: no heartbeat.
    pub heartbeat_interval: Option<Duration>,
    /// Send each client its id first (Godot's multiplayer protocol).
    pub send_id: bool,
    /// Valid requests wait for the game's decision (`decide`).
    pub authorize: bool,
    pub trusted_proxies: TrustedProxies,
    /// A PROXY protocol header comes before anything else (taken off by the shell).
    pub proxy_protocol: bool,
    /// The server's statistics.
    pub totals: Arc<Totals>,
    ws: WebSocketConfig,
}

impl Settings {
    pub fn new(config: &ServerConfig) -> Settings {
        let limit = config.limits.inbound_buffer_size;
        let ws = WebSocketConfig::default()
            .read_buffer_size(READ_CHUNK)
            // Every frame goes straight to the connection's `OutQueue` (see `Wire`).
            .write_buffer_size(0)
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(limit))
            // Control frames (a Close with its reason) may be 125 bytes whatever the limit;
            // messages are still held to it by max_message_size.
            .max_frame_size(Some(max_frame(limit)));
        Settings {
            offer: Offer {
                protocols: config.protocols.clone(),
                extra_headers: config.extra_headers.clone(),
                allowed_origins: config.allowed_origins.clone(),
            },
            limits: config.limits,
            handshake_timeout: config.handshake_timeout,
            close_timeout: config.close_timeout,
            partial_message_timeout: config.partial_message_timeout,
            heartbeat_interval: config.heartbeat_interval,
            send_id: config.multiplayer,
            authorize: config.authorize,
            trusted_proxies: config.trusted_proxies.clone(),
            proxy_protocol: config.proxy_protocol,
            totals: Arc::default(),
            ws,
        }
    }
}

/// What an input needs besides its own arguments: the time, and where events go.
pub struct Cx<'a> {
    pub now: Instant,
    pub settings: &'a Settings,
    pub ids: &'a mut IdAllocator,
    pub events: &'a mut Vec<Event>,
}

/// Whether the connection lives on after an input. `Gone` means: drop the socket; any event the
/// game must see (`Disconnected`) has been pushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Status {
    Alive,
    Gone,
}

/// How our direction of the stream ends (`Connection::shutdown_due`), once every byte before it
/// is on the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// After our Close for a violation: a TCP FIN, so the client need not wait for us to close
    /// (plain TCP only: Godot's TLS client drops a Close frame that any end of stream follows at
    /// once). Then `fin_sent`.
    Fin,
    /// The connection is over: TLS's `close_notify`, then a FIN; then `write_closed`.
    Close,
}

/// What the game decided about a request it was asked about (`Event::Requested`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Upgrade, with this subprotocol (`None`: the server's own choice) and these extra response
    /// header lines.
    Accept {
        protocol: Option<String>,
        headers: Vec<String>,
    },
    /// Refuse with this HTTP status, header lines (each ending in CRLF) and plain-text body.
    Reject { status: u16, headers: String, body: String },
}

enum Phase {
    /// Reading the HTTP upgrade. `scanned`: how much of `buf` was already searched for the blank
    /// line that ends the request (so a trickled request is not parsed again on every read).
    Handshake {
        buf: Vec<u8>,
        scanned: usize,
    },
    /// A valid request waits for the game's decision (`Settings::authorize`). `early`: bytes the
    /// client sent after its request (frames it sent without waiting for our answer).
    Deciding {
        upgrade: Box<Upgrade>,
        request: Arc<Request>,
        id: PeerId,
        early: Vec<u8>,
    },
    Open {
        ws: Box<WebSocketContext>,
        peer: Arc<PeerShared>,
        closing_by_us: bool,
    },
    /// The client broke the protocol. Reading has stopped; the game was sent
    /// `Event::ProtocolError` after the messages that came before the violation, and our Close
    /// goes out when the game answers it (`fail_now`), i.e. after whatever the game sent in reply
    /// to those messages (or at the deadline, if the game does not poll).
    FailPending {
        ws: Box<WebSocketContext>,
        peer: Arc<PeerShared>,
        code: CloseCode,
        /// How the client's answer to our Close will be read.
        reply: Reply,
    },
    /// Our Close for a violation is out; the client's Close reply is awaited (see `Reply`).
    Failing {
        ws: Box<WebSocketContext>,
        peer: Arc<PeerShared>,
        reply: Reply,
    },
    /// Nothing more is read or sent: the output drains, then our end is closed and the connection
    /// is gone. `peer` is `None` for a refused upgrade (the game never knew of it).
    Ending {
        peer: Option<Arc<PeerShared>>,
        clean: bool,
    },
    Gone,
}

/// How the client's answer to our Close for a violation is read.
enum Reply {
    /// The violation was found after its frame was read whole: tungstenite reads on.
    Frames,
    /// A frame over the limit was refused after its header: skip the rest of it (this many bytes
    /// still to come from the socket), then read with a fresh parser.
    Skip(u64),
    /// That fresh parser, at a frame boundary; the first Close it returns is the reply.
    Fresh(Box<WebSocketContext>),
    /// The stream cannot be parsed (a bad opcode is refused before its header is consumed):
    /// input is dropped until the client's EOF.
    Discard,
}

/// What a round of reading found.
enum Input {
    /// Nothing that ends the connection (it may have paused or would block).
    More,
    /// The close handshake is complete: drain the output, then close.
    Closed,
    /// The client is gone (EOF or error) without a complete close handshake.
    Lost,
}

pub struct Connection {
    /// The TCP peer.
    addr: SocketAddr,
    /// Where the connection comes from: `addr`, or the client a PROXY header named.
    origin: SocketAddr,
    /// `wss://`: the host name the client sent in its TLS handshake (SNI).
    server_name: Option<String>,
    phase: Phase,
    deadline: Option<Instant>,
    /// What the client sent that is not taken yet (see `Inbox`).
    inbox: Inbox,
    /// Everything not yet on the socket: the HTTP response, frames, pongs, Close frames.
    out: OutQueue,
    /// Reading stopped because the game's queue for this peer is full (until `resume`).
    paused: bool,
    /// Reading stopped because `out` is over the peer's outbound limit (until it drains).
    out_paused: bool,
    /// Our FIN after a violation is done (`Shutdown::Fin`).
    half_closed: bool,
    /// Where the client is in its current message, and when it must have sent more of it.
    progress: MessageProgress,
    stall_deadline: Option<Instant>,
    /// A buffer grown by a long frame (the parser's, see `read_frames`, or the output queue's) was
    /// let go since `take_released`.
    released: bool,
    /// Heartbeat: when the next ping is due, and the one awaiting its pong (payload, sent at).
    ping_due: Option<Instant>,
    ping_out: Option<(u64, Instant)>,
    pings_sent: u64,
    /// Over `max_connections`: whatever the request, the answer is 503.
    over_capacity: bool,
}

impl Connection {
    pub fn new(addr: SocketAddr, now: Instant, settings: &Settings) -> Connection {
        Connection {
            addr,
            origin: addr,
            server_name: None,
            phase: Phase::Handshake {
                buf: Vec::new(),
                scanned: 0,
            },
            deadline: Some(now + settings.handshake_timeout),
            inbox: Inbox::default(),
            out: OutQueue::default(),
            paused: false,
            out_paused: false,
            half_closed: false,
            progress: MessageProgress::new(max_frame(settings.limits.inbound_buffer_size)),
            stall_deadline: None,
            released: false,
            ping_due: None,
            ping_out: None,
            pings_sent: 0,
            over_capacity: false,
        }
    }

    /// A connection the server has no room for: its request is read (so that the answer is not
    /// lost to a reset), then answered `503 Service Unavailable`. It has at most
    /// `OVER_CAPACITY_WAIT` to send it.
    pub fn over_capacity(addr: SocketAddr, now: Instant, settings: &Settings) -> Connection {
        Connection {
            over_capacity: true,
            deadline: Some(now + settings.handshake_timeout.min(OVER_CAPACITY_WAIT)),
            ..Connection::new(addr, now, settings)
        }
    }

    /// When `on_timeout` wants to be called, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        [self.deadline, self.stall_deadline, self.ping_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// The peer, once the upgrade is done.
    pub fn peer(&self) -> Option<&Arc<PeerShared>> {
        match &self.phase {
            Phase::Open { peer, .. } | Phase::FailPending { peer, .. } | Phase::Failing { peer, .. } => Some(peer),
            Phase::Ending { peer, .. } => peer.as_ref(),
            Phase::Handshake { .. } | Phase::Deciding { .. } | Phase::Gone => None,
        }
    }

    /// The id the game knows this connection by: its peer's, or its request's while the game
    /// decides on it.
    pub fn id(&self) -> Option<PeerId> {
        match &self.phase {
            Phase::Deciding { id, .. } => Some(*id),
            _ => self.peer().map(|p| p.id),
        }
    }

    /// Not upgraded yet (the shell reading the PROXY header or TLS's handshake, reading the
    /// request, or waiting for the game).
    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshake { .. } | Phase::Deciding { .. })
    }

    /// The client a PROXY header named (the shell read it before any other byte).
    pub fn set_origin(&mut self, origin: SocketAddr) {
        self.origin = origin;
    }

    /// `wss://`: the host name of the client's TLS handshake (the shell knows it before the first
    /// byte of the request).
    pub fn set_server_name(&mut self, name: Option<String>) {
        self.server_name = name;
    }

    /// Whether the shell should hand over more of what the client sends: not while reading is
    /// paused (the game's queue for this peer is full, or the output is over its limit), while a
    /// violation waits for the game, or after the client's end of stream.
    pub fn wants_input(&self) -> bool {
        if self.inbox.eof() {
            return false;
        }
        match self.phase {
            Phase::Open { .. } => !self.paused && !self.out_paused,
            Phase::Handshake { .. } | Phase::Deciding { .. } | Phase::Failing { .. } | Phase::Ending { .. } => true,
            Phase::FailPending { .. } | Phase::Gone => false,
        }
    }

    /// Bytes from the client (after TLS and any PROXY header). Taken as far as the protocol goes;
    /// the rest waits in the inbox until reading resumes.
    pub fn handle_input(&mut self, bytes: &[u8], cx: &mut Cx) -> Status {
        self.inbox.extend(bytes);
        self.drive(cx)
    }

    /// The client's end of stream (after whatever `handle_input` gave before it).
    pub fn handle_eof(&mut self, cx: &mut Cx) -> Status {
        self.inbox.set_eof();
        self.drive(cx)
    }

    /// The game's decision on this connection's request. Ignored unless it is waiting for one
    /// (the client may have left, or the decision came too late).
    pub fn decide(&mut self, verdict: Verdict, cx: &mut Cx) -> Status {
        if !matches!(self.phase, Phase::Deciding { .. }) {
            return Status::Alive;
        }
        let Phase::Deciding {
            upgrade,
            request,
            id,
            early,
        } = std::mem::replace(&mut self.phase, Phase::Gone)
        else {
            unreachable!()
        };
        match verdict {
            Verdict::Accept { protocol, headers } => {
                let protocol = protocol.unwrap_or_else(|| upgrade.protocol.clone());
                let response = upgrade.accept(&protocol, &cx.settings.offer, &headers);
                self.open(response, protocol, request, id, early, cx);
                self.drive(cx)
            }
            Verdict::Reject { status, headers, body } => {
                cx.events.push(Event::RequestEnded { id, why: "refused" });
                self.refuse(refusal(status, &headers, &body));
                self.drive(cx)
            }
        }
    }

    /// Bytes waiting for the socket (every kind of frame, and the HTTP response).
    pub fn buffered_out(&self) -> usize {
        self.out.len()
    }

    /// Memory held for output, whether or not it holds bytes now.
    pub fn out_capacity(&self) -> usize {
        self.out.capacity()
    }

    /// The bytes to write, oldest first: the shell writes what the socket takes, then calls
    /// `transmitted`.
    pub fn pending_output(&self) -> &[u8] {
        self.out.pending()
    }

    /// `n` bytes of `pending_output` are on the socket: the game's messages among them no longer
    /// count against the peer's limit, and reading resumes if the output was over its limit.
    pub fn transmitted(&mut self, n: usize, cx: &mut Cx) -> Status {
        let (bytes, count) = self.out.advance(n);
        self.released |= self.out.take_shrunk();
        if count > 0 {
            if let Some(peer) = self.peer() {
                peer.sub_outbound(bytes, count);
                peer.sent(bytes, count);
            }
        }
        self.drive(cx)
    }

    /// How our direction of the stream should end now that every byte is written, if it should.
    pub fn shutdown_due(&self) -> Option<Shutdown> {
        if !self.out.is_empty() {
            return None;
        }
        match self.phase {
            // A failed connection: once our Close is out, close our direction (RFC 6455 §7.1.7:
            // fail the connection, then close it); a client whose Close frame was the violation
            // will not answer ours. The client's reply, if it sends one, is still read.
            Phase::Failing { .. } if !self.half_closed => Some(Shutdown::Fin),
            // The close is complete and everything is written: end our direction (with TLS's
            // close_notify) and let go. The server closes first, as RFC 6455 §7.1.1 asks.
            Phase::Ending { .. } => Some(Shutdown::Close),
            _ => None,
        }
    }

    /// The shell has done `Shutdown::Fin` (or decided against it, over TLS).
    pub fn fin_sent(&mut self) {
        self.half_closed = true;
    }

    /// The shell has done `Shutdown::Close`: the connection is over.
    pub fn write_closed(&mut self, cx: &mut Cx) -> Status {
        let clean = matches!(self.phase, Phase::Ending { clean: true, .. });
        self.finish(clean, cx)
    }

    /// The socket failed (a reset, or a read or write error): the client is gone, whatever was
    /// paused.
    pub fn on_reset(&mut self, cx: &mut Cx) -> Status {
        self.finish(false, cx)
    }

    /// The game read enough of this peer's queue: take input again.
    pub fn resume(&mut self, cx: &mut Cx) -> Status {
        self.paused = false;
        self.drive(cx)
    }

    /// Whether a buffer grown by a long frame was let go since the last call (the I/O thread then
    /// hands freed memory back to the system once idle).
    pub fn take_released(&mut self) -> bool {
        std::mem::take(&mut self.released)
    }

    /// Whether this connection has bytes to write.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Queues one message (`pending_output`). A message for a connection that can no
    /// longer send (closing, failed) is discarded and its reservation returned.
    pub fn send(&mut self, packet: Packet) {
        let len = packet.data.len();
        match &mut self.phase {
            Phase::Open { ws, peer, .. } | Phase::FailPending { ws, peer, .. } if ws.can_write() => {
                let op = OpCode::Data(if packet.text { OpData::Text } else { OpData::Binary });
                let frame = Frame::message(packet.data, op, true);
                // Formatted straight into `out` by tungstenite's frame formatter: its parser's own
                // write buffer would keep the size of the longest message ever sent for the rest
                // of the connection, and cost one more copy. (Pongs and Close frames, which the
                // parser writes itself, go through it: they are at most 127 bytes.)
                match frame.format(&mut self.out) {
                    Ok(()) => self.out.mark_message(len),
                    Err(_) => peer.sub_outbound(len, 1),
                }
            }
            _ => {
                if let Some(peer) = self.peer() {
                    peer.sub_outbound(len, 1);
                }
            }
        }
    }

    /// Starts the close handshake: our Close frame goes out after any queued messages, and the
    /// client has `close_timeout` to answer before it is dropped (`clean == false`).
    pub fn close(&mut self, code: u16, reason: &str, cx: &mut Cx) -> Status {
        match &mut self.phase {
            Phase::Open {
                ws,
                peer,
                closing_by_us,
            } if ws.can_write() => {
                peer.advance(PeerState::Closing);
                *closing_by_us = true;
                self.deadline = Some(cx.now + cx.settings.close_timeout);
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let _ = ws.close(&mut Wire::new(&mut self.inbox, &mut self.out), Some(frame));
                self.drive(cx)
            }
            // The game closes a peer whose violation it has not seen yet: the failure's Close.
            Phase::FailPending { .. } => self.fail_now(cx),
            _ => Status::Alive,
        }
    }

    /// The game has taken everything the client sent before its protocol violation (and queued
    /// its answers): send our Close for the violation.
    pub fn fail_now(&mut self, cx: &mut Cx) -> Status {
        if !matches!(self.phase, Phase::FailPending { .. }) {
            return Status::Alive;
        }
        let Phase::FailPending {
            mut ws,
            peer,
            code,
            reply,
        } = std::mem::replace(&mut self.phase, Phase::Gone)
        else {
            unreachable!()
        };
        peer.advance(PeerState::Closing);
        let reason = match code {
            CloseCode::Size => "message too big",
            CloseCode::Invalid => "invalid UTF-8",
            CloseCode::Policy => "message not finished in time",
            _ => "protocol error",
        };
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = ws.close(&mut Wire::new(&mut self.inbox, &mut self.out), Some(frame));
        self.phase = Phase::Failing { ws, peer, reply };
        self.deadline = Some(cx.now + cx.settings.close_timeout);
        // Input that waited while the game caught up (the client's Close reply, say) is read now.
        self.drive(cx)
    }

    /// Called at or after `deadline()`.
    pub fn on_timeout(&mut self, cx: &mut Cx) -> Status {
        if self.ping_due.is_some_and(|d| d <= cx.now) {
            if let Some(status) = self.heartbeat(cx) {
                return status;
            }
        }
        if self.stall_deadline.is_some_and(|d| d <= cx.now) {
            self.stall_deadline = None;
            if matches!(self.phase, Phase::Open { .. }) {
                // The client is inside a frame: what follows cannot be parsed.
                self.start_failing(CloseCode::Policy, Reply::Discard, cx);
                return Status::Alive;
            }
        }
        match self.deadline {
            Some(d) if d <= cx.now => {}
            _ => return Status::Alive,
        }
        if matches!(self.phase, Phase::FailPending { .. }) {
            // The game did not poll in time: the Close goes out without waiting any longer.
            return self.fail_now(cx);
        }
        if self.is_handshaking() && !self.over_capacity {
            bump(&cx.settings.totals.timed_out, 1);
        }
        if let Phase::Deciding { id, .. } = self.phase {
            // The game has not decided within handshake_timeout: the server is not able to
            // answer, so 503. The game is told with `RequestEnded`.
            cx.events.push(Event::RequestEnded {
                id,
                why: "no decision within handshake_timeout",
            });
            self.refuse(refusal(503, "", "the server did not decide on this request in time"));
            self.deadline = Some(cx.now + cx.settings.close_timeout);
            return self.drive(cx);
        }
        self.finish(false, cx)
    }

    /// The heartbeat is due: drop a peer that has not answered the last ping, else ping it.
    /// `Some` if the connection ended.
    fn heartbeat(&mut self, cx: &mut Cx) -> Option<Status> {
        let Some(interval) = cx.settings.heartbeat_interval else {
            self.ping_due = None;
            return None;
        };
        let Phase::Open {
            ws,
            closing_by_us: false,
            ..
        } = &mut self.phase
        else {
            // Closing or failing: the close timeouts apply instead.
            self.ping_due = None;
            return None;
        };
        self.ping_due = Some(cx.now + interval);
        if self.paused {
            // The server is not reading this peer (the game has not read its messages): its
            // pong may be waiting unread. Not the peer's fault; ask again next time.
            return None;
        }
        if self.ping_out.is_some() {
            // No pong for a whole interval: the peer is gone (frozen, or its network is).
            bump(&cx.settings.totals.heartbeat_dropped, 1);
            return Some(self.finish(false, cx));
        }
        self.pings_sent += 1;
        let payload = self.pings_sent;
        let ping = Message::Ping(Bytes::copy_from_slice(&payload.to_be_bytes()));
        if ws.write(&mut Wire::new(&mut self.inbox, &mut self.out), ping).is_ok() {
            self.ping_out = Some((payload, cx.now));
        }
        Some(self.drive(cx))
    }

    /// Takes what the inbox holds as far as the protocol goes, and again whenever doing so lets
    /// reading resume.
    fn drive(&mut self, cx: &mut Cx) -> Status {
        loop {
            match self.read_input(cx) {
                Input::More => {}
                Input::Closed => self.end(true),
                Input::Lost => return self.finish(false, cx),
            }
            if self.out_paused && self.out.len() <= cx.settings.limits.outbound_buffer_size {
                self.out_paused = false;
                continue;
            }
            return Status::Alive;
        }
    }

    /// The close handshake is complete: nothing more is read or sent.
    fn end(&mut self, clean: bool) {
        let peer = match std::mem::replace(&mut self.phase, Phase::Gone) {
            Phase::Open { peer, .. } | Phase::FailPending { peer, .. } | Phase::Failing { peer, .. } => Some(peer),
            Phase::Ending { peer, .. } => peer,
            Phase::Handshake { .. } | Phase::Deciding { .. } | Phase::Gone => None,
        };
        self.phase = Phase::Ending { peer, clean };
    }

    fn read_input(&mut self, cx: &mut Cx) -> Input {
        if matches!(self.phase, Phase::Handshake { .. }) {
            if let Some(input) = self.read_handshake(cx) {
                return input;
            }
        }
        match &mut self.phase {
            Phase::Deciding { early, .. } => read_early(&mut self.inbox, early, cx.settings.limits.inbound_buffer_size),
            Phase::Open { .. } if self.paused || self.out_paused => Input::More,
            Phase::Open { .. } => self.read_frames(cx),
            Phase::Failing { .. } => self.read_close_reply(cx),
            // Whatever arrives after the close handshake is dropped; an EOF changes nothing (the
            // output may still drain into a half-closed socket).
            Phase::Ending { .. } => {
                self.inbox.clear();
                Input::More
            }
            Phase::Handshake { .. } | Phase::FailPending { .. } | Phase::Gone => Input::More,
        }
    }

    /// Reads the HTTP upgrade. `None` once upgraded (the caller goes on reading frames).
    fn read_handshake(&mut self, cx: &mut Cx) -> Option<Input> {
        let Phase::Handshake { buf, scanned } = &mut self.phase else {
            return None;
        };
        loop {
            let chunk = self.inbox.peek(READ_CHUNK);
            if chunk.is_empty() {
                return Some(if self.inbox.eof() { Input::Lost } else { Input::More });
            }
            buf.extend_from_slice(chunk);
            let n = chunk.len();
            self.inbox.consume(n);
            // Only the new bytes (and the three before them) can hold the blank line.
            let from = scanned.saturating_sub(3);
            let ended = contains(&buf[from..], b"\n\r\n") || contains(&buf[from..], b"\n\n");
            *scanned = buf.len();
            if !ended && buf.len() < MAX_REQUEST_SIZE {
                continue;
            }
            if self.over_capacity {
                self.refuse(refusal(503, "Retry-After: 5\r\n", "the server is full"));
                return Some(Input::More);
            }
            match cx.settings.offer.decide(buf) {
                Decision::Incomplete => continue,
                Decision::Reject { response, .. } => {
                    self.refuse(response);
                    return Some(Input::More);
                }
                Decision::Upgrade(mut upgrade) => {
                    let early = buf.split_off(upgrade.consumed);
                    let mut request = std::mem::take(&mut upgrade.request);
                    request.socket_addr = self.addr;
                    request.server_name = self.server_name.clone();
                    request.client_addr = cx.settings.trusted_proxies.client(self.origin, &request.headers);
                    let request = Arc::new(request);
                    let id = cx.ids.allocate();
                    if cx.settings.authorize {
                        cx.events.push(Event::Requested {
                            id,
                            request: request.clone(),
                        });
                        self.phase = Phase::Deciding {
                            upgrade: Box::new(upgrade),
                            request,
                            id,
                            early,
                        };
                    } else {
                        let protocol = upgrade.protocol.clone();
                        let response = upgrade.accept(&protocol, &cx.settings.offer, &[]);
                        self.open(response, protocol, request, id, early, cx);
                    }
                    return None;
                }
            }
        }
    }

    /// The upgrade is accepted: queue the `101` response and speak WebSocket. `early` holds the
    /// bytes that came after the request.
    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        response: Vec<u8>,
        protocol: String,
        request: Arc<Request>,
        id: PeerId,
        early: Vec<u8>,
        cx: &mut Cx,
    ) {
        self.progress.feed(&early);
        let mut ws = WebSocketContext::from_partially_read(early, Role::Server, Some(cx.settings.ws));
        let resource = request.resource.clone();
        let peer = Arc::new(PeerShared::new(id, request, cx.settings.limits).with_totals(cx.settings.totals.clone()));
        cx.events.push(Event::Connected {
            peer: peer.clone(),
            protocol,
            resource,
        });
        self.out.push(&response);
        if cx.settings.send_id {
            // Godot's multiplayer clients stay "connecting" until this arrives.
            let id = Bytes::copy_from_slice(&peer.id.to_le_bytes());
            let frame = Frame::message(id, OpCode::Data(OpData::Binary), true);
            let _ = ws.write(&mut Wire::new(&mut self.inbox, &mut self.out), Message::Frame(frame));
        }
        self.deadline = None;
        self.ping_due = cx.settings.heartbeat_interval.map(|i| cx.now + i);
        self.phase = Phase::Open {
            ws: Box::new(ws),
            peer,
            closing_by_us: false,
        };
    }

    /// The upgrade is refused: `response` goes out, then the connection closes.
    fn refuse(&mut self, response: Vec<u8>) {
        self.out.push(&response);
        self.phase = Phase::Ending {
            peer: None,
            clean: false,
        };
    }

    /// Reads frames until the inbox is empty, a queue is full, or the connection ends.
    fn read_frames(&mut self, cx: &mut Cx) -> Input {
        let Phase::Open {
            ws,
            peer,
            closing_by_us,
        } = &mut self.phase
        else {
            return Input::More;
        };
        let out_limit = cx.settings.limits.outbound_buffer_size;
        let mut tx = Wire {
            progress: Some(&mut self.progress),
            ..Wire::new(&mut self.inbox, &mut self.out)
        };
        // (code, how the client's reply will be read): after a frame that was too long
        // tungstenite is inside its payload, and a bad opcode is refused before its header is
        // consumed; every other violation is found after the whole frame was read.
        let (code, reply) = loop {
            // Pongs and Close replies are written by tungstenite as it reads: stop reading while
            // the client is not taking what it is sent (a ping flood from a client that never
            // reads is bounded here).
            if tx.out.len() > out_limit {
                self.out_paused = true;
                self.stall_deadline = None;
                return Input::More;
            }
            if peer.inbound_full() && peer.pause() {
                self.paused = true;
                self.stall_deadline = None;
                return Input::More;
            }
            match ws.read(&mut tx) {
                Ok(Message::Text(text)) => {
                    let data = Bytes::from(text);
                    peer.add_inbound(data.len());
                    cx.events.push(Event::Message {
                        id: peer.id,
                        packet: Packet { data, text: true },
                    });
                }
                Ok(Message::Binary(data)) => {
                    peer.add_inbound(data.len());
                    cx.events.push(Event::Message {
                        id: peer.id,
                        packet: Packet { data, text: false },
                    });
                }
                Ok(Message::Close(frame)) => {
                    if !*closing_by_us {
                        peer.advance(PeerState::Closing);
                        let (code, reason) = match frame {
                            Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                            None => (NO_STATUS_RECEIVED, String::new()),
                        };
                        cx.events.push(Event::CloseRequest {
                            id: peer.id,
                            code,
                            reason,
                        });
                        // tungstenite queues our reply on the next read, then reports
                        // ConnectionClosed; this bounds how long the reply may take to drain.
                        self.deadline = Some(cx.now + cx.settings.close_timeout);
                    }
                }
                Ok(Message::Pong(payload)) => {
                    // The answer to our last ping: the peer is alive, and this is its round trip.
                    if let Some((sent, at)) = self.ping_out {
                        if payload[..] == sent.to_be_bytes() {
                            self.ping_out = None;
                            peer.set_round_trip(cx.now.saturating_duration_since(at));
                        }
                    }
                }
                Ok(Message::Ping(_) | Message::Frame(_)) => {}
                // Everything in the inbox has been read.
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // tungstenite's read buffer keeps the size a long frame made it grow to (and
                    // shares it with that frame's payload) for the rest of the connection. When
                    // everything read belongs to finished messages, that buffer is empty and its
                    // parser holds nothing else (pongs and Close replies are written as it reads,
                    // straight into `out`): a fresh one is the same parser, and the memory goes
                    // back once the game has read the message.
                    let progress = tx.progress.as_deref_mut().expect("tracked");
                    if progress.largest_frame() > READ_CHUNK as u64
                        && progress.at_message_boundary()
                        && ws.can_read()
                        && ws.can_write()
                    {
                        **ws = WebSocketContext::new(Role::Server, Some(cx.settings.ws));
                        progress.forget_largest();
                        self.released = true;
                    }
                    // All that was sent is read: a message left unfinished must make progress
                    // within partial_message_timeout (counted from its last byte).
                    self.stall_deadline = match (progress.partial(), tx.got) {
                        (false, _) => None,
                        (true, true) => Some(cx.now + cx.settings.partial_message_timeout),
                        (true, false) => self
                            .stall_deadline
                            .or(Some(cx.now + cx.settings.partial_message_timeout)),
                    };
                    return Input::More;
                }
                // The close handshake is complete.
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return Input::Closed,
                Err(WsError::Capacity(CapacityError::MessageTooLong { .. })) => {
                    // A frame over the limit (its end is known from its header), or a message
                    // whose fragments add up to too much (found after a whole frame).
                    let progress = tx.progress.as_deref_mut().expect("tracked");
                    let reply = match progress.rest_of_oversize_frame() {
                        Some(rest) => Reply::Skip(rest),
                        None if progress.saw_oversize_frame() => Reply::Discard,
                        None => Reply::Frames,
                    };
                    break (CloseCode::Size, reply);
                }
                Err(WsError::Utf8(_)) => break (CloseCode::Invalid, Reply::Frames),
                Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => return Input::Lost,
                Err(WsError::Protocol(ProtocolError::InvalidOpcode(_))) => break (CloseCode::Protocol, Reply::Discard),
                Err(WsError::Protocol(_)) => break (CloseCode::Protocol, Reply::Frames),
                Err(_) => return Input::Lost,
            }
        };
        self.start_failing(code, reply, cx);
        Input::More
    }

    /// Fails the connection (RFC 6455 §7.1.7) once the game has seen what came before: reading
    /// stops, the game is told (`Event::ProtocolError`), and `fail_now` sends the Close.
    fn start_failing(&mut self, code: CloseCode, reply: Reply, cx: &mut Cx) {
        let Phase::Open { ws, peer, .. } = std::mem::replace(&mut self.phase, Phase::Gone) else {
            unreachable!("only an open connection fails")
        };
        cx.events.push(Event::ProtocolError {
            id: peer.id,
            code: code.into(),
        });
        self.phase = Phase::FailPending { ws, peer, code, reply };
        self.stall_deadline = None;
        self.deadline = Some(cx.now + cx.settings.close_timeout);
    }

    /// After our Close for a violation: frames are read (and dropped) until the client's Close
    /// reply completes the handshake. Further violations are ignored as long as the frame was
    /// consumed; one that leaves the stream unparseable leaves only discarding.
    fn read_close_reply(&mut self, cx: &mut Cx) -> Input {
        let Phase::Failing { ws, reply, .. } = &mut self.phase else {
            return Input::More;
        };
        loop {
            let result = match reply {
                Reply::Frames => ws.read(&mut Wire::new(&mut self.inbox, &mut self.out)),
                // Whatever this parser would answer (a pong, a Close) is dropped: our Close is
                // already out, and nothing may follow it.
                Reply::Fresh(fresh) => fresh.read(&mut Wire::new(&mut self.inbox, &mut OutQueue::default())),
                Reply::Skip(0) => {
                    let fresh = WebSocketContext::new(Role::Server, Some(cx.settings.ws));
                    *reply = Reply::Fresh(Box::new(fresh));
                    continue;
                }
                Reply::Skip(rest) => {
                    let n = self.inbox.len().min(usize::try_from(*rest).unwrap_or(usize::MAX));
                    if n == 0 {
                        return if self.inbox.eof() { Input::Lost } else { Input::More };
                    }
                    self.inbox.consume(n);
                    *rest -= n as u64;
                    continue;
                }
                Reply::Discard => {
                    self.inbox.clear();
                    return if self.inbox.eof() { Input::Lost } else { Input::More };
                }
            };
            match result {
                Ok(Message::Close(_)) if matches!(reply, Reply::Fresh(_)) => return Input::Closed,
                Ok(_) => {}
                // Everything in the inbox has been read.
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => return Input::More,
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return Input::Closed,
                Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) | Err(WsError::Io(_)) => {
                    return Input::Lost
                }
                // The frame was read whole: go on with the next one.
                Err(WsError::Utf8(_)) => {}
                Err(WsError::Protocol(p)) if !matches!(p, ProtocolError::InvalidOpcode(_)) => {}
                Err(_) => *reply = Reply::Discard,
            }
        }
    }

    /// The connection is over: tell the game if it knew of it, and return the reservations of
    /// messages that never reached the socket.
    fn finish(&mut self, clean: bool, cx: &mut Cx) -> Status {
        let (bytes, count) = self.out.discard();
        if let Phase::Deciding { id, .. } = self.phase {
            cx.events.push(Event::RequestEnded {
                id,
                why: "the client left",
            });
        }
        if let Some(peer) = self.peer() {
            if count > 0 {
                peer.sub_outbound(bytes, count);
            }
            peer.advance(PeerState::Closed);
            cx.events.push(Event::Disconnected { id: peer.id, clean });
        }
        self.phase = Phase::Gone;
        self.deadline = None;
        self.stall_deadline = None;
        self.ping_due = None;
        Status::Gone
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// While the game decides: keeps what the client sends (frames it did not wait to send), so that
/// its leaving is seen. More than `limit` bytes before an answer is not a client to wait for.
fn read_early(inbox: &mut Inbox, early: &mut Vec<u8>, limit: usize) -> Input {
    early.extend_from_slice(inbox.peek(usize::MAX));
    inbox.clear();
    if early.len() > limit.max(READ_CHUNK) || inbox.eof() {
        return Input::Lost;
    }
    Input::More
}
