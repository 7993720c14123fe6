//! What the game thread and the I/O thread share: the event and command queues with the waker
//! (`Link`), and one `PeerShared` per open connection holding its counters and state.
//!
//! Both queues are bounded without dropping anything: the I/O thread stops reading a peer once that
//! peer's undrained messages reach its inbound limits, the game thread refuses a send past a peer's
//! outbound limits, and while more than `MAX_EVENT_BACKLOG` events wait for the game (it is not
//! calling `poll()`: a paused tree, a long load) no new connection is accepted, so connection
//! churn cannot grow the event queue either.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering::*};

/// Log lines from the I/O thread (`Link::notice`) kept for the game's next `poll()`.
pub const MAX_NOTICES: usize = 64;

/// Events that may wait for the game's `poll()` before the I/O thread stops accepting new
/// connections (they wait in the kernel's accept queue meanwhile). Messages are bounded per peer by
/// the inbound limits; this bounds the connection events of clients that come and go.
pub const MAX_EVENT_BACKLOG: usize = 16 * 1024;

use parking_lot::Mutex;
use tungstenite::Bytes;

use crate::config::Limits;

/// A peer's id as Godot sees it: 2 ..= 2^31-1 (1 is the server, 0 "everyone").
pub type PeerId = i32;

/// One whole WebSocket message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub data: Bytes,
    pub text: bool,
}

/// What the I/O thread reports, in the order it happened.
#[derive(Debug)]
pub enum Event {
    /// A valid upgrade request waits for the game's decision (`Command::Decide`). Followed by
    /// `Connected` (accepted) or `RequestEnded`.
    Requested {
        id: PeerId,
        request: std::sync::Arc<crate::request::Request>,
    },
    /// A request the game was asked about will not become a peer: refused by the game, no
    /// decision in time, or the client left. Always the last event of such an id.
    RequestEnded {
        id: PeerId,
        why: &'static str,
    },
    Connected {
        peer: std::sync::Arc<PeerShared>,
        protocol: String,
        resource: String,
    },
    Message {
        id: PeerId,
        packet: Packet,
    },
    /// The client sent a Close frame first (our reply is on its way).
    CloseRequest {
        id: PeerId,
        code: u16,
        reason: String,
    },
    /// The client broke the protocol after the messages before this event. The game answers with
    /// `Command::Fail` once it has handled them, so our Close goes out after its replies.
    ProtocolError {
        id: PeerId,
        code: u16,
    },
    /// The connection is gone; always the last event of an id.
    Disconnected {
        id: PeerId,
        clean: bool,
    },
}

impl Event {
    pub fn id(&self) -> PeerId {
        match self {
            Event::Connected { peer, .. } => peer.id,
            Event::Requested { id, .. } | Event::RequestEnded { id, .. } => *id,
            Event::Message { id, .. }
            | Event::CloseRequest { id, .. }
            | Event::ProtocolError { id, .. }
            | Event::Disconnected { id, .. } => *id,
        }
    }
}

/// What the game thread asks of the I/O thread.
#[derive(Debug)]
pub enum Command {
    Send {
        id: PeerId,
        packet: Packet,
    },
    /// The same message to several peers (the bytes are shared, not copied per recipient).
    SendMany {
        ids: Vec<PeerId>,
        packet: Packet,
    },
    /// Start the close handshake with this code and reason.
    Close {
        id: PeerId,
        code: u16,
        reason: String,
    },
    /// The game drained a paused peer's queue: read its socket again.
    Resume {
        id: PeerId,
    },
    /// The game has seen this id's `Disconnected`: the id may be given out again.
    Release {
        id: PeerId,
    },
    SetNoDelay {
        id: PeerId,
        enabled: bool,
    },
    /// Drop the connection now, without a close handshake or any event; the id is free after.
    Abort {
        id: PeerId,
    },
    /// The game has handled everything before this peer's `ProtocolError`: send the Close.
    Fail {
        id: PeerId,
    },
    /// The game's decision on a request (`Event::Requested`).
    Decide {
        id: PeerId,
        verdict: crate::connection::Verdict,
    },
    /// Header lines for the `101` responses of upgrades that finish from now on.
    SetExtraHeaders(Vec<String>),
    /// The game let go of a large message: memory to hand back once the I/O is idle
    /// (`driver::trim_memory`; it may be freed after the I/O thread last trimmed).
    Released,
    /// Tests only: make the I/O thread die (by a panic, or by returning an error), to check that
    /// the game is told.
    #[doc(hidden)]
    InjectFailure {
        panic: bool,
    },
}

/// The two queues between the threads and the means to wake the I/O thread.
#[derive(Debug)]
pub struct Link {
    events: Mutex<Vec<Event>>,
    commands: Mutex<Vec<Command>>,
    /// `None` with inline I/O (`IoMode::Inline`): the game thread runs the event loop itself
    /// and takes the commands in its own `poll()`, so there is nobody to wake.
    waker: Option<mio::Waker>,
    wake_pending: AtomicBool,
    /// Game thread inside `poll()`: defer wakes (see `hold_wakes`).
    holding: AtomicBool,
    wake_owed: AtomicBool,
    stopping: AtomicBool,
    /// New TCP connections are closed at once (`refuse_new_connections`).
    refusing: AtomicBool,
    /// Set by the I/O thread if it ended on its own (a panic); read by the game thread's poll.
    failure: Mutex<Option<String>>,
    /// Set with `failure`: sends fail from then on, before the game has polled.
    failed: AtomicBool,
    gate: AcceptGate,
    /// Messages for the game's log (`true`: an error): accept failing, and recovering.
    notices: Mutex<Vec<(bool, String)>>,
    /// `accept` calls that failed for lack of resources.
    accept_errors: std::sync::atomic::AtomicU64,
    /// Set by the I/O thread once its listener is closed (see `Server::stop`).
    listener_closed: std::sync::Mutex<bool>,
    listener_closed_cv: std::sync::Condvar,
}

/// Whether the I/O thread may accept: not while `max` events wait for the game. When it stops,
/// the game's next take must wake it; the two sides use sequentially consistent operations so
/// that one of them always sees the other (checked with loom in `tests/loom.rs`).
#[derive(Debug)]
pub struct AcceptGate {
    /// Events published and not yet taken by the game.
    backlog: crate::sync::AtomicUsize,
    max: usize,
    /// The I/O thread stopped accepting: the game's next take must wake it.
    waiting: crate::sync::AtomicBool,
}

impl AcceptGate {
    pub fn new(max: usize) -> AcceptGate {
        AcceptGate {
            backlog: crate::sync::AtomicUsize::new(0),
            max,
            waiting: crate::sync::AtomicBool::new(false),
        }
    }

    /// I/O thread: `n` more events wait for the game.
    pub fn published(&self, n: usize) {
        self.backlog.fetch_add(n, SeqCst);
    }

    /// I/O thread: whether too many events wait to accept more connections, counting
    /// `unpublished` ones the current turn has made. If so, the game's next `taken` returns true
    /// (wake the I/O thread).
    pub fn full(&self, unpublished: usize) -> bool {
        if self.backlog.load(SeqCst) + unpublished < self.max {
            return false;
        }
        self.waiting.store(true, SeqCst);
        // The game may have taken the events between the two lines above.
        if self.backlog.load(SeqCst) + unpublished < self.max {
            self.waiting.store(false, SeqCst);
            return false;
        }
        true
    }

    /// Game thread: every event was taken. Returns true if the I/O thread waits to be woken.
    pub fn taken(&self) -> bool {
        self.backlog.store(0, SeqCst);
        self.waiting.swap(false, SeqCst)
    }
}

impl Link {
    pub fn new(waker: Option<mio::Waker>, max_backlog: usize) -> Link {
        Link {
            events: Mutex::new(Vec::new()),
            commands: Mutex::new(Vec::new()),
            waker,
            wake_pending: AtomicBool::new(false),
            holding: AtomicBool::new(false),
            wake_owed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
            gate: AcceptGate::new(max_backlog),
            notices: Mutex::new(Vec::new()),
            accept_errors: Default::default(),
            listener_closed: std::sync::Mutex::new(false),
            listener_closed_cv: std::sync::Condvar::new(),
        }
    }

    /// Game thread: queue a command, waking the I/O thread only if it has not been woken since it
    /// last took the queue (one wake per batch, not per message).
    pub fn command(&self, cmd: Command) {
        self.commands.lock().push(cmd);
        self.wake_or_owe();
    }

    /// Game thread: queue several commands under one lock, with at most one wake for all of them.
    pub fn commands(&self, cmds: &mut Vec<Command>) {
        if cmds.is_empty() {
            return;
        }
        self.commands.lock().append(cmds);
        self.wake_or_owe();
    }

    /// After queueing: wake the I/O thread now, or once the signals' handlers are done.
    fn wake_or_owe(&self) {
        if self.holding.load(Acquire) {
            self.wake_owed.store(true, Release);
        } else {
            self.wake();
        }
    }

    /// Game thread: while a `poll()` emits its signals, the handlers' sends are queued without
    /// waking the I/O thread; `release_wakes` then wakes it once for all of them.
    pub fn hold_wakes(&self) {
        self.holding.store(true, Release);
    }

    pub fn release_wakes(&self) {
        self.holding.store(false, Release);
        if self.wake_owed.swap(false, AcqRel) {
            self.wake();
        }
    }

    fn wake(&self) {
        let Some(waker) = &self.waker else {
            return;
        };
        if !self.wake_pending.swap(true, AcqRel) {
            // Waking only fails if the poll instance is gone, i.e. the I/O thread has ended.
            let _ = waker.wake();
        }
    }

    /// I/O thread: take every queued command.
    pub fn take_commands(&self, into: &mut Vec<Command>) {
        self.wake_pending.store(false, Release);
        std::mem::swap(&mut *self.commands.lock(), into);
    }

    /// I/O thread: publish events.
    pub fn publish(&self, events: &mut Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut q = self.events.lock();
        self.gate.published(events.len());
        if q.is_empty() {
            std::mem::swap(&mut *q, events);
        } else {
            q.append(events);
        }
    }

    /// Game thread: take every published event.
    pub fn take_events(&self, into: &mut Vec<Event>) {
        let wake = {
            let mut q = self.events.lock();
            std::mem::swap(&mut *q, into);
            self.gate.taken()
        };
        if wake {
            self.wake();
        }
    }

    /// I/O thread: whether too many events wait for the game to accept more connections (see
    /// `AcceptGate::full`).
    pub fn backlog_full(&self, unpublished: usize) -> bool {
        self.gate.full(unpublished)
    }

    /// I/O thread: the listener is closed (or the thread is ending).
    pub fn listener_closed(&self) {
        *self.listener_closed.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.listener_closed_cv.notify_all();
    }

    /// Game thread: waits (at most `limit`) until the I/O thread has closed its listener.
    pub fn wait_listener_closed(&self, limit: std::time::Duration) -> bool {
        let closed = self.listener_closed.lock().unwrap_or_else(|e| e.into_inner());
        let (closed, _) = self
            .listener_closed_cv
            .wait_timeout_while(closed, limit, |closed| !*closed)
            .unwrap_or_else(|e| e.into_inner());
        *closed
    }

    pub fn stop(&self) {
        self.stopping.store(true, Release);
        if let Some(waker) = &self.waker {
            let _ = waker.wake();
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Acquire)
    }

    /// I/O thread: a line for the game's log.
    pub fn notice(&self, error: bool, text: String) {
        let mut notices = self.notices.lock();
        // A game that never polls must not let them pile up: past this many, later ones are
        // dropped (the counters still count).
        if notices.len() < MAX_NOTICES {
            notices.push((error, text));
        }
    }

    /// Game thread: the lines for the log since the last call.
    pub fn take_notices(&self) -> Vec<(bool, String)> {
        std::mem::take(&mut *self.notices.lock())
    }

    pub fn count_accept_error(&self) {
        self.accept_errors.fetch_add(1, Relaxed);
    }

    pub fn accept_errors(&self) -> u64 {
        self.accept_errors.load(Relaxed)
    }

    pub fn set_refusing(&self, refuse: bool) {
        self.refusing.store(refuse, Release);
    }

    pub fn is_refusing(&self) -> bool {
        self.refusing.load(Acquire)
    }

    pub fn set_failure(&self, why: String) {
        *self.failure.lock() = Some(why);
        self.failed.store(true, Release);
    }

    /// Whether the I/O thread died on its own.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Acquire)
    }

    pub fn take_failure(&self) -> Option<String> {
        self.failure.lock().take()
    }
}

/// A peer's state as both threads see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PeerState {
    Open = 0,
    /// A Close frame was sent or received; no more messages may be sent.
    Closing = 1,
    Closed = 2,
}

/// Server-wide statistics, counted on the I/O thread (and by the game thread's sends and reads as
/// they happen), read by the game at any time without a lock. Totals count since `listen`; the
/// `queued_*` and connection figures are the present state.
#[derive(Debug, Default)]
pub struct Totals {
    /// TCP connections taken on (not refused).
    pub accepted: AtomicU64,
    /// Connections refused by `max_connections`, `max_handshakes_per_address` or
    /// `refuse_new_connections`.
    pub refused: AtomicU64,
    /// Connections that did not finish the upgrade within `handshake_timeout` (including requests
    /// the game did not decide on in time).
    pub timed_out: AtomicU64,
    /// Peers dropped because they did not answer the heartbeat.
    pub heartbeat_dropped: AtomicU64,
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Messages and their bytes written to the sockets (payload, without framing).
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Received messages the game has not read yet.
    pub queued_in_messages: AtomicI64,
    pub queued_in_bytes: AtomicI64,
    /// Messages sent by the game and not yet written to the sockets.
    pub queued_out_messages: AtomicI64,
    pub queued_out_bytes: AtomicI64,
    /// Connections upgraded and not yet gone.
    pub open: AtomicI64,
    /// Connections still in their handshake (PROXY header, request, the game's decision).
    pub handshaking: AtomicI64,
}

/// Adds to a statistic.
pub fn bump(counter: &AtomicU64, by: usize) {
    counter.fetch_add(by as u64, Relaxed);
}

fn shift(gauge: &AtomicI64, by: i64) {
    gauge.fetch_add(by, Relaxed);
}

/// Reads a statistic.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Relaxed)
}

/// Reads a gauge (never below 0 to the reader).
pub fn gauge(g: &AtomicI64) -> u64 {
    g.load(Relaxed).max(0) as u64
}

impl Totals {
    /// The game thread's or I/O thread's note that a connection moved between handshaking (`h`)
    /// and open (`o`).
    pub fn connections(&self, h: i64, o: i64) {
        shift(&self.handshaking, h);
        shift(&self.open, o);
    }
}

#[derive(Debug, Default)]
struct Inbound {
    bytes: usize,
    packets: usize,
    /// The I/O thread stopped reading because the queue was full.
    paused: bool,
}

impl Inbound {
    fn full(&self, limits: &Limits) -> bool {
        self.packets >= limits.max_queued_packets || self.bytes >= limits.inbound_buffer_size
    }
}

/// One open connection's counters, shared by the threads.
#[derive(Debug)]
pub struct PeerShared {
    pub id: PeerId,
    /// The client's address (behind trusted proxies, the one they report).
    pub addr: SocketAddr,
    /// The upgrade request it came with.
    pub request: std::sync::Arc<crate::request::Request>,
    pub limits: Limits,
    state: AtomicU8,
    /// Inbound counters and the paused flag change together under one lock, so the hand-over
    /// between "the I/O thread pauses" and "the game drains" cannot lose a resume on any CPU.
    inbound: crate::sync::Mutex<Inbound>,
    out_bytes: AtomicUsize,
    out_packets: AtomicUsize,
    /// The last round trip measured by the heartbeat, in microseconds (`u64::MAX`: none yet).
    round_trip_us: std::sync::atomic::AtomicU64,
    /// The messages the game has been told about (`data_received`) and not yet read. Only the game
    /// thread touches it; it lives here so that a peer object outlives the server's table.
    pub inbox: Mutex<std::collections::VecDeque<Packet>>,
    /// This peer's totals since it connected (messages and payload bytes each way).
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// When the upgrade finished.
    pub connected_at: std::time::Instant,
    /// The server's statistics, which this peer's counts also go into.
    totals: std::sync::Arc<Totals>,
}

impl PeerShared {
    pub fn new(id: PeerId, request: std::sync::Arc<crate::request::Request>, limits: Limits) -> PeerShared {
        PeerShared {
            id,
            addr: request.client_addr,
            request,
            limits,
            state: AtomicU8::new(PeerState::Open as u8),
            inbound: crate::sync::Mutex::new(Inbound::default()),
            out_bytes: AtomicUsize::new(0),
            out_packets: AtomicUsize::new(0),
            round_trip_us: std::sync::atomic::AtomicU64::new(u64::MAX),
            inbox: Mutex::new(Default::default()),
            messages_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            connected_at: std::time::Instant::now(),
            totals: Default::default(),
        }
    }

    /// Counts this peer into the server's statistics.
    pub fn with_totals(mut self, totals: std::sync::Arc<Totals>) -> PeerShared {
        self.totals = totals;
        self
    }

    /// Messages and bytes received and not yet read by the game.
    pub fn inbound_queued(&self) -> (usize, usize) {
        let i = self.inbound.lock();
        (i.packets, i.bytes)
    }

    /// Messages and bytes sent by the game and not yet written to the socket.
    pub fn outbound_queued(&self) -> (usize, usize) {
        (self.out_packets.load(Acquire), self.out_bytes.load(Acquire))
    }

    /// I/O thread: messages totalling `len` payload bytes were written to the socket.
    pub fn sent(&self, len: usize, packets: usize) {
        bump(&self.messages_out, packets);
        bump(&self.bytes_out, len);
        bump(&self.totals.messages_out, packets);
        bump(&self.totals.bytes_out, len);
    }

    pub fn state(&self) -> PeerState {
        match self.state.load(Acquire) {
            0 => PeerState::Open,
            1 => PeerState::Closing,
            _ => PeerState::Closed,
        }
    }

    /// Moves the state forward only (Open → Closing → Closed).
    pub fn advance(&self, to: PeerState) {
        self.state.fetch_max(to as u8, AcqRel);
    }

    // ---- inbound: counted from the moment the I/O thread reads a message until the game reads it.

    pub fn inbound_full(&self) -> bool {
        self.inbound.lock().full(&self.limits)
    }

    /// I/O thread: a message was read.
    pub fn add_inbound(&self, len: usize) {
        let mut i = self.inbound.lock();
        i.bytes += len;
        i.packets += 1;
        drop(i);
        bump(&self.messages_in, 1);
        bump(&self.bytes_in, len);
        bump(&self.totals.messages_in, 1);
        bump(&self.totals.bytes_in, len);
        shift(&self.totals.queued_in_messages, 1);
        shift(&self.totals.queued_in_bytes, len as i64);
    }

    /// I/O thread: the queue is full. Returns true if reading must stop (a `Resume` will come);
    /// false if the game drained the queue meanwhile (reading goes on).
    pub fn pause(&self) -> bool {
        let mut i = self.inbound.lock();
        i.paused = i.full(&self.limits);
        i.paused
    }

    /// Game thread: a message was read. Returns true if the I/O thread must be told to resume.
    pub fn sub_inbound(&self, len: usize) -> bool {
        shift(&self.totals.queued_in_messages, -1);
        shift(&self.totals.queued_in_bytes, -(len as i64));
        let mut i = self.inbound.lock();
        i.bytes -= len;
        i.packets -= 1;
        let resume = i.paused && !i.full(&self.limits);
        if resume {
            i.paused = false;
        }
        resume
    }

    // ---- outbound: counted from `put_packet` until the bytes are written to the socket.

    /// Game thread: reserve room for one message of `len` bytes, or say which limit it breaks.
    pub fn reserve_outbound(&self, len: usize) -> Result<(), &'static str> {
        if self.out_packets.load(Acquire) + 1 > self.limits.max_queued_packets {
            return Err("max_queued_packets");
        }
        if self.out_bytes.load(Acquire) + len > self.limits.outbound_buffer_size {
            return Err("outbound_buffer_size");
        }
        self.out_bytes.fetch_add(len, AcqRel);
        self.out_packets.fetch_add(1, AcqRel);
        shift(&self.totals.queued_out_messages, 1);
        shift(&self.totals.queued_out_bytes, len as i64);
        Ok(())
    }

    /// I/O thread: messages totalling `len` bytes reached the socket (or were discarded because
    /// the connection closed).
    pub fn sub_outbound(&self, len: usize, packets: usize) {
        self.out_bytes.fetch_sub(len, AcqRel);
        self.out_packets.fetch_sub(packets, AcqRel);
        shift(&self.totals.queued_out_messages, -(packets as i64));
        shift(&self.totals.queued_out_bytes, -(len as i64));
    }

    /// I/O thread: the heartbeat measured a round trip.
    pub fn set_round_trip(&self, rtt: std::time::Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX - 1);
        self.round_trip_us.store(us, Relaxed);
    }

    /// The last round trip the heartbeat measured, if any.
    pub fn round_trip(&self) -> Option<std::time::Duration> {
        match self.round_trip_us.load(Relaxed) {
            u64::MAX => None,
            us => Some(std::time::Duration::from_micros(us)),
        }
    }

    pub fn outbound_bytes(&self) -> usize {
        self.out_bytes.load(Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_for_a_game_that_never_polls_are_bounded() {
        let poll = mio::Poll::new().unwrap();
        let link = Link::new(Some(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap()), 16);
        for i in 0..1000 {
            link.notice(i % 2 == 0, format!("notice {i}"));
        }
        let kept = link.take_notices();
        assert_eq!(kept.len(), MAX_NOTICES);
        assert_eq!(kept[0].1, "notice 0");
        assert!(link.take_notices().is_empty());
    }

    fn peer(limits: Limits) -> PeerShared {
        PeerShared::new(2, Default::default(), limits)
    }

    #[test]
    fn outbound_limits_refuse_and_release() {
        let p = peer(Limits {
            inbound_buffer_size: 10,
            outbound_buffer_size: 10,
            max_queued_packets: 2,
        });
        assert_eq!(p.reserve_outbound(11), Err("outbound_buffer_size"));
        assert_eq!(p.reserve_outbound(6), Ok(()));
        assert_eq!(p.reserve_outbound(5), Err("outbound_buffer_size"));
        assert_eq!(p.reserve_outbound(4), Ok(()));
        assert_eq!(p.reserve_outbound(0), Err("max_queued_packets"));
        assert_eq!(p.outbound_bytes(), 10);
        p.sub_outbound(10, 2);
        assert_eq!(p.reserve_outbound(10), Ok(()));
    }

    #[test]
    fn pause_and_resume_hand_over_exactly_once() {
        let p = peer(Limits {
            inbound_buffer_size: 100,
            outbound_buffer_size: 10,
            max_queued_packets: 2,
        });
        p.add_inbound(1);
        assert!(!p.inbound_full());
        p.add_inbound(1);
        assert!(p.inbound_full());
        assert!(p.pause(), "full: reading stops");
        assert!(p.sub_inbound(1), "drained below the limit: resume once");
        assert!(!p.sub_inbound(1), "already resumed");

        // The game drains between the I/O thread's check and its pause: no Resume is owed.
        p.add_inbound(1);
        p.add_inbound(1);
        assert!(p.inbound_full());
        p.sub_inbound(1); // not paused yet, so no resume
        assert!(!p.pause(), "no longer full: keep reading");
        assert!(!p.sub_inbound(1));
    }

    #[test]
    fn state_only_moves_forward() {
        let p = peer(Limits::default());
        p.advance(PeerState::Closing);
        p.advance(PeerState::Open);
        assert_eq!(p.state(), PeerState::Closing);
        p.advance(PeerState::Closed);
        assert_eq!(p.state(), PeerState::Closed);
    }
}
