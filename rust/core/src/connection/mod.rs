//! One connection's protocol state, from TCP accept to gone, without any I/O.
//!
//! A `Connection` takes the bytes that arrived (`handle_input`, `handle_eof`) and the time (in
//! `Context`), the game's commands (`send`, `close`, `decide`, ...) and its deadline (`on_timeout`),
//! and hands back the bytes to write (`pending_output`, then `transmitted`), its events (pushed
//! into `Context::events`), its next deadline (`deadline`), whether it wants more input
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

mod deflating;
mod frames;
mod serving;
mod settings;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::protocol::WebSocketContext;

pub use settings::Settings;

use crate::event::{Event, Packet, PeerId, PeerState};
use crate::handshake::{answer, Upgrade};
use crate::ids::IdAllocator;
use crate::inbox::{Inbox, Wire};
use crate::outq::OutQueue;
use crate::peer::PeerShared;
use crate::progress::MessageProgress;
use crate::request::Request;
use crate::stats::bump;
use frames::Reply;
use serving::Streamed;
use upgrade::read_early;

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

/// What an input needs besides its own arguments: the time, and where events go.
pub struct Context<'a> {
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

/// An input that cannot end the connection (queueing a message) leaves it alive.
impl From<()> for Status {
    fn from((): ()) -> Status {
        Status::Alive
    }
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

enum Phase {
    /// Reading the HTTP upgrade. `scanned`: how much of `buf` was already searched for the blank
    /// line that ends the request (so a trickled request is not parsed again on every read).
    Handshake {
        buf: Vec<u8>,
        scanned: usize,
    },
    /// A valid request waits for the game's decision (`Settings::authorize`), or a plain HTTP
    /// request for its answer (`upgrade` is `None`: `ServerConfig::answer_requests`). `early`:
    /// bytes the client sent after its request (frames it sent without waiting for our answer).
    Deciding {
        upgrade: Option<Box<Upgrade>>,
        request: Arc<Request>,
        id: PeerId,
        early: Vec<u8>,
    },
    /// A plain request is answered from a mounted directory (`serving`): `left` bytes of `body`
    /// are still to be queued; then the connection ends, or with `keep_alive` reads its next
    /// request, which starts with `next` (what the client sent after this one).
    Serving {
        body: Option<std::fs::File>,
        left: u64,
        keep_alive: bool,
        next: Vec<u8>,
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
    /// Plain requests this connection has made (keep-alive, see `serving`).
    served: u32,
    /// Bytes of a file this service of the socket may still queue (`begin_service`).
    stream_budget: usize,
    /// The server shuts down: a file being served is the connection's last answer.
    shutting_down: bool,
    /// permessage-deflate was agreed (`deflating`).
    deflate: Option<Box<deflating::Deflating>>,
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
            deadline: Some(now + settings.config.handshake_timeout),
            inbox: Inbox::default(),
            out: OutQueue::default(),
            paused: false,
            out_paused: false,
            half_closed: false,
            progress: MessageProgress::new(max_frame(settings.config.limits.inbound_buffer_size)),
            stall_deadline: None,
            released: false,
            ping_due: None,
            ping_out: None,
            pings_sent: 0,
            over_capacity: false,
            served: 0,
            stream_budget: 0,
            shutting_down: false,
            deflate: None,
        }
    }

    /// A connection the server has no room for: its request is read (so that the answer is not
    /// lost to a reset), then answered `503 Service Unavailable`. It has at most
    /// `OVER_CAPACITY_WAIT` to send it.
    pub fn over_capacity(addr: SocketAddr, now: Instant, settings: &Settings) -> Connection {
        Connection {
            over_capacity: true,
            deadline: Some(now + settings.config.handshake_timeout.min(OVER_CAPACITY_WAIT)),
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
            Phase::Handshake { .. } | Phase::Deciding { .. } | Phase::Serving { .. } | Phase::Gone => None,
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
            // (A client downloading a file may send its next request: it waits in the socket.)
            Phase::FailPending { .. } | Phase::Serving { .. } | Phase::Gone => false,
        }
    }

    /// Bytes from the client (after TLS and any PROXY header). Taken as far as the protocol goes;
    /// the rest waits in the inbox until reading resumes.
    pub fn handle_input(&mut self, bytes: &[u8], cx: &mut Context) -> Status {
        self.inbox.extend(bytes);
        self.drive(cx, true)
    }

    /// The client's end of stream (after whatever `handle_input` gave before it).
    pub fn handle_eof(&mut self, cx: &mut Context) -> Status {
        self.inbox.set_eof();
        self.drive(cx, true)
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
    pub fn transmitted(&mut self, n: usize, cx: &mut Context) -> Status {
        let (bytes, count) = self.out.advance(n);
        self.released |= self.out.take_shrunk();
        if n > 0 && matches!(self.phase, Phase::Serving { .. }) {
            self.deadline = Some(cx.now + crate::files::DOWNLOAD_STALL_TIMEOUT);
        }
        if count > 0 {
            if let Some(peer) = self.peer() {
                peer.sub_outbound(bytes, count);
                peer.sent(bytes, count);
            }
        }
        self.drive(cx, false)
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
    pub fn write_closed(&mut self, cx: &mut Context) -> Status {
        let clean = matches!(self.phase, Phase::Ending { clean: true, .. });
        self.finish(clean, cx)
    }

    /// The socket failed (a reset, or a read or write error): the client is gone, whatever was
    /// paused.
    pub fn on_reset(&mut self, cx: &mut Context) -> Status {
        self.finish(false, cx)
    }

    /// The game read enough of this peer's queue: take input again.
    pub fn resume(&mut self, cx: &mut Context) -> Status {
        self.paused = false;
        self.drive(cx, true)
    }

    /// Whether a buffer grown by a long frame was let go since the last call (the I/O thread then
    /// hands freed memory back to the system once idle).
    pub fn take_released(&mut self) -> bool {
        std::mem::take(&mut self.released)
    }

    /// Whether this connection has bytes to write (or a file to stream, see `begin_service`).
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || matches!(self.phase, Phase::Serving { left, .. } if left > 0)
    }

    /// Queues one message (`pending_output`). A message for a connection that can no
    /// longer send (closing, failed) is discarded and its reservation returned.
    pub fn send(&mut self, packet: Packet) {
        let len = packet.data.len();
        match &mut self.phase {
            Phase::Open { ws, peer, .. } | Phase::FailPending { ws, peer, .. } if ws.can_write() => {
                let op = OpCode::Data(if packet.text { OpData::Text } else { OpData::Binary });
                let (data, compressed) = match &mut self.deflate {
                    Some(d) => d.outgoing(packet.data, packet.compress),
                    None => (packet.data, false),
                };
                let mut frame = Frame::message(data, op, true);
                frame.header_mut().rsv1 = compressed;
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
    pub fn close(&mut self, code: u16, reason: &str, cx: &mut Context) -> Status {
        match &mut self.phase {
            Phase::Open {
                ws,
                peer,
                closing_by_us,
            } if ws.can_write() => {
                peer.advance(PeerState::Closing);
                *closing_by_us = true;
                self.deadline = Some(cx.now + cx.settings.config.close_timeout);
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let _ = ws.close(&mut Wire::new(&mut self.inbox, &mut self.out), Some(frame));
                self.drive(cx, false)
            }
            // The game closes a peer whose violation it has not seen yet: the failure's Close.
            Phase::FailPending { .. } => self.fail_now(cx),
            _ => Status::Alive,
        }
    }

    /// The server shuts down (`Endpoint::shut_down`): an open connection gets our Close with this
    /// code and reason after what is queued for it (as `close`); a request still waiting for the
    /// game is answered `503` (the game is told with `RequestEnded`); a request not yet complete is
    /// dropped unanswered; a violation's Close goes out now. Connections already closing go on.
    pub fn shut_down(&mut self, code: u16, reason: &str, cx: &mut Context) -> Status {
        self.shutting_down = true;
        if let Phase::Serving { keep_alive, .. } = &mut self.phase {
            *keep_alive = false;
            return self.drive(cx, false);
        }
        match &self.phase {
            Phase::Open {
                closing_by_us: false, ..
            } => self.close(code, reason, cx),
            Phase::FailPending { .. } => self.fail_now(cx),
            Phase::Handshake { .. } => self.finish(false, cx),
            Phase::Deciding { .. } => {
                self.unavailable("the server is shutting down", "the server is shutting down", cx)
            }
            _ => Status::Alive,
        }
    }

    /// The shutdown's time is up (`Endpoint::handle_timeout`): the connection is dropped now,
    /// unclean unless its close handshake was complete and only its output was still draining.
    pub fn drop_now(&mut self, cx: &mut Context) -> Status {
        let clean = matches!(self.phase, Phase::Ending { clean: true, .. });
        if let Phase::Deciding { id, .. } = self.phase {
            // (`finish` would say "the client left".)
            cx.events.push(Event::RequestEnded {
                id,
                why: "the server is shutting down",
            });
            self.phase = Phase::Gone;
        }
        self.finish(clean, cx)
    }

    /// The game has taken everything the client sent before its protocol violation (and queued
    /// its answers): send our Close for the violation.
    pub fn fail_now(&mut self, cx: &mut Context) -> Status {
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
        self.deadline = Some(cx.now + cx.settings.config.close_timeout);
        // Input that waited while the game caught up (the client's Close reply, say) is read now.
        self.drive(cx, true)
    }

    /// Called at or after `deadline()`.
    pub fn on_timeout(&mut self, cx: &mut Context) -> Status {
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
        // (A keep-alive connection that sends no further request is not a handshake timing out.)
        let idle = matches!(&self.phase, Phase::Handshake { buf, .. } if buf.is_empty() && self.served > 0);
        if self.is_handshaking() && !self.over_capacity && !idle {
            bump(&cx.settings.totals.timed_out, 1);
        }
        if matches!(self.phase, Phase::Deciding { .. }) {
            // The game has not decided within handshake_timeout: the server is not able to
            // answer, so 503.
            return self.unavailable(
                "no decision within handshake_timeout",
                "the server did not decide on this request in time",
                cx,
            );
        }
        self.finish(false, cx)
    }

    /// A request waiting for the game will not get its decision (or answer): `503` with `body`
    /// (none for `HEAD`), and the game is told with `RequestEnded { why }`.
    fn unavailable(&mut self, why: &'static str, body: &str, cx: &mut Context) -> Status {
        let Phase::Deciding { id, request, .. } = &self.phase else {
            return Status::Alive;
        };
        cx.events.push(Event::RequestEnded { id: *id, why });
        let response = answer(503, "", body.as_bytes(), request.method == "HEAD");
        self.refuse(response);
        self.deadline = Some(cx.now + cx.settings.config.close_timeout);
        self.drive(cx, false)
    }

    /// Takes what the inbox (and tungstenite's own buffer) holds as far as the protocol goes, if
    /// `read` (an input that brought or released input), and again whenever the output draining
    /// below its limit lets reading resume. Inputs that only queue output do not read: nothing new
    /// can have arrived.
    fn drive(&mut self, cx: &mut Context, mut read: bool) -> Status {
        loop {
            if read {
                match self.read_input(cx) {
                    Input::More => {}
                    Input::Closed => self.end(true),
                    Input::Lost => return self.finish(false, cx),
                }
            }
            match self.stream(cx) {
                Streamed::Going => {}
                Streamed::Next => {
                    read = true;
                    continue;
                }
                Streamed::Failed => return self.finish(false, cx),
            }
            if self.out_paused && self.out.len() <= cx.settings.config.limits.outbound_buffer_size {
                self.out_paused = false;
                read = true;
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
            Phase::Handshake { .. } | Phase::Deciding { .. } | Phase::Serving { .. } | Phase::Gone => None,
        };
        self.phase = Phase::Ending { peer, clean };
    }

    fn read_input(&mut self, cx: &mut Context) -> Input {
        if matches!(self.phase, Phase::Handshake { .. }) {
            if let Some(input) = self.read_handshake(cx) {
                return input;
            }
        }
        match &mut self.phase {
            Phase::Deciding { early, .. } => {
                read_early(&mut self.inbox, early, cx.settings.config.limits.inbound_buffer_size)
            }
            Phase::Open { .. } if self.paused || self.out_paused => Input::More,
            Phase::Open { .. } => self.read_frames(cx),
            Phase::Failing { .. } => self.read_close_reply(cx),
            // Whatever arrives after the close handshake is dropped; an EOF changes nothing (the
            // output may still drain into a half-closed socket).
            Phase::Ending { .. } => {
                self.inbox.clear();
                Input::More
            }
            Phase::Handshake { .. } | Phase::FailPending { .. } | Phase::Serving { .. } | Phase::Gone => Input::More,
        }
    }

    /// The connection is over: tell the game if it knew of it, and return the reservations of
    /// messages that never reached the socket.
    fn finish(&mut self, clean: bool, cx: &mut Context) -> Status {
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
