//! The event loop: one mio poll owning the listener and every connection's socket, run either on
//! an I/O thread of its own (`IoMode::Thread`: each turn waits for readiness, a wake from the game
//! thread, or the nearest deadline) or by the game thread's `poll()` one turn at a time without
//! waiting (`IoMode::Inline`). The turn is the same code in both: accept every pending connection;
//! let each ready connection read and write; apply the game's commands; fire expired deadlines;
//! write out what the turn queued; publish the turn's events at once. Readiness is
//! edge-triggered, so every read goes on until the kernel has nothing more (`Socket`) and every
//! write until it would block.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::connection::{Connection, Cx, Settings, Status};
use crate::ids::IdAllocator;
use crate::shared::{bump, Command, Event, Link, PeerId};
use crate::transport::Transport;

pub(crate) const WAKER: Token = Token(0);
pub(crate) const LISTENER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;
/// After `accept` fails for lack of resources (EMFILE and the like), try again after this long,
/// doubling up to `ACCEPT_RETRY_MAX` while it keeps failing (and at once when a connection of
/// ours closes and frees a descriptor).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
const ACCEPT_RETRY_MAX: Duration = Duration::from_secs(1);
/// Clients over `max_connections` that are still answered `503` (plain `ws://` only: their
/// request is read first, so the answer is not lost to a reset); beyond this many at once they
/// are closed without an answer.
const MAX_REFUSING: usize = 64;
/// After connections closed or let go of a large buffer, once the I/O thread has had nothing to do
/// for this long, freed memory is handed back to the system (see `trim_memory`; with inline I/O on
/// a short-lived thread of its own, so that the game's frame does not wait for it).
const TRIM_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Whether a read that got less than it asked for shows the kernel had nothing more (epoll(7),
/// Q9; kqueue's `EV_CLEAR` the same): where readiness is edge-triggered by every arrival. mio's
/// Windows backend is not such a selector, so there every read goes on until `WouldBlock`.
const SHORT_READ_DRAINS: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd"
));

/// A connection's TCP socket. Readiness is edge-triggered, so reading goes on until the kernel has
/// nothing more. A read that got less than it asked for already says so: the read after it is
/// answered `WouldBlock` without a system call (one `recv` per message instead of two), and any
/// byte that arrives later brings a new readiness event, which ends that. Not after an event that
/// also reported the end of the stream or an error: data followed by the client's FIN can arrive
/// as one edge, and only a read that returns 0 sees the end.
struct Socket {
    tcp: TcpStream,
    /// A read since the last readiness event got less than it asked for.
    drained: bool,
    /// The last readiness event reported neither the end of the stream nor an error.
    short_read_drains: bool,
}

impl Socket {
    fn new(tcp: TcpStream) -> Socket {
        Socket {
            tcp,
            drained: false,
            short_read_drains: false,
        }
    }

    /// A readiness event for this socket; `closed_or_failed`: it reported the end of the stream
    /// or an error.
    fn ready(&mut self, closed_or_failed: bool) {
        self.drained = false;
        self.short_read_drains = SHORT_READ_DRAINS && !closed_or_failed;
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.drained {
            return Err(ErrorKind::WouldBlock.into());
        }
        let n = self.tcp.read(buf)?;
        self.drained = self.short_read_drains && n > 0 && n < buf.len();
        Ok(n)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

impl crate::transport::Socket for Socket {
    fn shutdown_write(&mut self) {
        let _ = self.tcp.shutdown(Shutdown::Write);
    }
}

struct Slot {
    sock: Socket,
    /// The PROXY header and TLS between `sock` and `conn`.
    transport: Transport,
    conn: Connection,
    /// Already in `Driver::dirty`.
    queued: bool,
    /// The earliest entry of this connection in `Driver::timers`. A deadline that moves later
    /// (a slow message making progress) adds no entry: when this one fires, the connection's
    /// current deadline is pushed then. So the heap holds about one entry per connection.
    timer_at: Option<Instant>,
    /// Counted in `Driver::handshakes` under this address until the upgrade is done.
    handshaking: Option<std::net::IpAddr>,
    /// Over `max_connections`: only answered 503 (counted in `Driver::refusing`).
    refusing: bool,
    /// What this connection counts as in the statistics' gauges: (handshaking, open), 0 or 1.
    counted_as: (i64, i64),
}

/// What a connection counts as in the statistics' gauges (see `Slot::counted_as`).
fn gauges(conn: &Connection, refusing: bool) -> (i64, i64) {
    match (refusing, conn.is_handshaking(), conn.peer().is_some()) {
        (true, _, _) => (0, 0),
        (false, true, _) => (1, 0),
        (false, false, open) => (0, i64::from(open)),
    }
}

pub(crate) struct Driver {
    poll: Poll,
    /// `None` once the server is stopping (closed first, so the port is free at once).
    listener: Option<TcpListener>,
    link: Arc<Link>,
    settings: Settings,
    tls: Option<Arc<rustls::ServerConfig>>,
    ids: IdAllocator,
    conns: Slab<Slot>,
    by_id: HashMap<PeerId, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    accept_retry: Option<Instant>,
    /// Accepting stopped because the game has not taken its events (`Link::backlog_full`).
    accept_paused: bool,
    /// `accept` is failing for lack of resources (the game was told once), and the current
    /// wait before the next try.
    accept_failing: bool,
    accept_backoff: Duration,
    /// Handshaking connections per TCP peer address (`max_handshakes_per_address`).
    handshakes: HashMap<std::net::IpAddr, usize>,
    /// Connections being answered 503 (`MAX_REFUSING`).
    refusing: usize,
    max_connections: usize,
    max_handshakes_per_address: usize,
    /// Connections have closed, or let go of a large buffer, since memory was last handed back
    /// (`trim_memory`).
    freed_since_trim: bool,
    /// When the last readiness event or command was handled.
    last_busy: Instant,
    /// The I/O thread's turns do not sleep until this long after `handed_over`
    /// (`ServerConfig::busy_poll`).
    busy_poll: Duration,
    /// When events were last handed to the game, unless a command has come from it since.
    handed_over: Option<Instant>,
    /// Connections accepted so far (`turn_now` looks again when it grew).
    accepted: u64,
    /// Connections with writes queued this turn.
    dirty: Vec<usize>,
    events: Vec<Event>,
    commands: Vec<Command>,
}

impl Driver {
    pub(crate) fn new(
        poll: Poll,
        listener: TcpListener,
        link: Arc<Link>,
        settings: Settings,
        tls: Option<Arc<rustls::ServerConfig>>,
        caps: (usize, usize),
    ) -> Driver {
        Driver {
            poll,
            listener: Some(listener),
            link,
            settings,
            tls,
            ids: IdAllocator::new(),
            conns: Slab::new(),
            by_id: HashMap::new(),
            timers: BinaryHeap::new(),
            accept_retry: None,
            accept_paused: false,
            accept_failing: false,
            accept_backoff: ACCEPT_RETRY,
            handshakes: HashMap::new(),
            refusing: 0,
            max_connections: caps.0,
            max_handshakes_per_address: caps.1,
            freed_since_trim: false,
            last_busy: Instant::now(),
            busy_poll: Duration::ZERO,
            handed_over: None,
            accepted: 0,
            dirty: Vec::new(),
            events: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// The I/O thread busy-polls for up to `window` after handing the game events, until the game
    /// sends a command (`ServerConfig::busy_poll`; `run` only, so no effect on inline I/O).
    pub(crate) fn with_busy_poll(mut self, window: Duration) -> Driver {
        self.busy_poll = window;
        self
    }

    /// Runs until the game thread stops the server. A panic is caught and reported to the game
    /// thread (its next `poll` stops the server with an error) instead of taking the process down.
    pub(crate) fn run_guarded(self) {
        defer_to_other_threads();
        let link = self.link.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || self.run()));
        // The driver (and with it the listener) is gone, whatever happened.
        link.listener_closed();
        if let Err(failure) = failure_of("the I/O thread", result) {
            link.set_failure(failure);
        }
    }

    /// The I/O thread: turn after turn, each waiting for readiness, a wake or the nearest deadline
    /// (not waiting at all for up to `busy_poll` after events went to the game, until it answers).
    fn run(mut self) -> std::io::Result<()> {
        let mut readiness = Events::with_capacity(1024);
        loop {
            let before = Instant::now();
            let mut timeout = self.next_timeout(before);
            if self
                .handed_over
                .is_some_and(|at| before.saturating_duration_since(at) < self.busy_poll)
            {
                timeout = Some(Duration::ZERO);
            }
            if self.freed_since_trim {
                let trim_in = (self.last_busy + TRIM_AFTER_IDLE).saturating_duration_since(before);
                timeout = Some(timeout.map_or(trim_in, |t| t.min(trim_in)));
            }
            if !self.turn(&mut readiness, timeout)? {
                self.shut_down();
                return Ok(());
            }
            if self.trim_due(&readiness) {
                trim_memory();
            }
        }
    }

    /// Whether freed memory should be handed back now (`trim_memory`): connections closed or let go
    /// of large buffers, and the loop has had nothing to do for `TRIM_AFTER_IDLE`. Once per episode.
    pub(crate) fn trim_due(&mut self, readiness: &Events) -> bool {
        let due = readiness.is_empty() && self.freed_since_trim && self.last_busy.elapsed() >= TRIM_AFTER_IDLE;
        if due {
            self.freed_since_trim = false;
        }
        due
    }

    /// Inline I/O (`IoMode::Inline`): one turn that does not wait, run by the game thread's
    /// `poll()`. A panic or an I/O error is caught and returned as the text the game is told;
    /// the driver must not be used after that.
    pub(crate) fn turn_now(&mut self, readiness: &mut Events) -> Result<(), String> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let accepted = self.accepted;
            self.turn(readiness, Some(Duration::ZERO))?;
            if self.accepted != accepted {
                // A new connection's request is usually there already; its readiness is reported
                // by the next look at the poller, and the game should not wait a frame for it.
                self.turn(readiness, Some(Duration::ZERO))?;
            }
            Ok(())
        }));
        failure_of("the server's I/O", result)
    }

    /// Inline I/O: after the game has handled its signals, write the replies its handlers queued
    /// (the commands of a turn, without waiting for readiness). Errors as in `turn_now`.
    pub(crate) fn write_now(&mut self) -> Result<(), String> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let now = Instant::now();
            self.apply_commands(now)?;
            self.flush_dirty(now);
            self.link.publish(&mut self.events);
            Ok(())
        }));
        failure_of("the server's I/O", result)
    }

    /// One turn of the event loop: wait at most `timeout` for readiness (or a wake); apply the
    /// game's commands; accept every pending connection; let each ready connection read and write;
    /// apply the commands that came meanwhile;
    /// fire expired deadlines; write out what the turn queued; publish the turn's events at once.
    /// Returns `false` once the game has asked the server to stop.
    fn turn(&mut self, readiness: &mut Events, timeout: Option<Duration>) -> std::io::Result<bool> {
        if self.link.is_stopping() {
            return Ok(false);
        }
        if let Err(e) = self.poll.poll(readiness, timeout) {
            if e.kind() == ErrorKind::Interrupted {
                readiness.clear();
                return Ok(true);
            }
            return Err(e);
        }
        if !readiness.is_empty() {
            self.last_busy = Instant::now();
        }
        if self.link.is_stopping() {
            return Ok(false);
        }
        let now = Instant::now();
        // The game's commands first: a message it queued before a client's Close is read must go
        // out before the Close reply (which ends what may be sent). Commands that come while this
        // turn reads are applied at its end.
        self.apply_commands(now)?;
        for event in readiness.iter() {
            match event.token() {
                WAKER => {}
                LISTENER => self.accept(now),
                Token(t) => {
                    let key = t - FIRST_CONNECTION;
                    if let Some(slot) = self.conns.get_mut(key) {
                        slot.sock.ready(event.is_read_closed() || event.is_error());
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            slot.transport.readable();
                        }
                        if event.is_writable() {
                            slot.transport.writable();
                        }
                    }
                    // A reset: the client is gone even if reading is paused (a full queue)
                    // and nothing would read the socket to find out.
                    if event.is_error() {
                        let reset = self
                            .conns
                            .get_mut(key)
                            .is_some_and(|slot| !matches!(slot.sock.tcp.take_error(), Ok(None)));
                        if reset {
                            self.with_conn(key, now, |c, cx| c.on_reset(cx));
                            continue;
                        }
                    }
                    self.service(key, now);
                }
            }
        }
        if self.accept_retry.is_some_and(|t| t <= now) {
            self.accept_retry = None;
            self.accept(now);
        }
        if self.accept_paused && !self.link.backlog_full(self.events.len()) {
            self.accept_paused = false;
            self.accept(now);
        }
        self.apply_commands(now)?;
        self.fire_timers(now);
        self.flush_dirty(now);
        if !self.events.is_empty() {
            self.handed_over = Some(now);
        }
        self.link.publish(&mut self.events);
        Ok(true)
    }

    /// The game thread's `stop()` waits only for the listener to close (so `listen` on the same
    /// port works at once); every connection is closed after that, on this thread.
    fn shut_down(mut self) {
        drop(self.listener.take());
        self.link.listener_closed();
        drop(self);
    }

    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.dirty.is_empty() {
            return Some(Duration::ZERO);
        }
        let timer = self.timers.peek().map(|Reverse((t, _))| *t);
        let next = match (timer, self.accept_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map(|t| t.saturating_duration_since(now))
    }

    fn accept(&mut self, now: Instant) {
        loop {
            // The game is not polling: leave new clients in the kernel's queue.
            if self.link.backlog_full(self.events.len()) {
                self.accept_paused = true;
                return;
            }
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                // Refused connections are accepted and closed at once, as Godot's server does.
                Ok(_) if self.link.is_refusing() => bump(&self.settings.totals.refused, 1),
                Ok((mut stream, addr)) => {
                    let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
                    let open = self.conns.len() - self.refusing;
                    let refusing = self.max_connections > 0 && open >= self.max_connections;
                    if refusing && (self.tls.is_some() || self.refusing >= MAX_REFUSING) {
                        bump(&self.settings.totals.refused, 1);
                        continue; // closed without an answer
                    }
                    let proxies = &self.settings.trusted_proxies;
                    if self.settings.proxy_protocol && !proxies.is_empty() && !proxies.contains(addr.ip()) {
                        // Not the proxy: its PROXY header would be a claim nobody vouches for.
                        bump(&self.settings.totals.refused, 1);
                        continue;
                    }
                    let per_address = self.handshakes.get(&addr.ip()).copied().unwrap_or(0);
                    let counted = !refusing
                        && self.max_handshakes_per_address > 0
                        && !self.settings.trusted_proxies.contains(addr.ip());
                    if counted && per_address >= self.max_handshakes_per_address {
                        // One host with this many unfinished handshakes is not owed an answer.
                        bump(&self.settings.totals.refused, 1);
                        continue;
                    }
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    let token = Token(key + FIRST_CONNECTION);
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                        .is_err()
                    {
                        continue; // dropping the stream closes it
                    }
                    // Godot's WebSocketPeer disables Nagle by default; so do we.
                    let _ = stream.set_nodelay(true);
                    let Ok(transport) = Transport::new(self.tls.as_ref(), self.settings.proxy_protocol) else {
                        continue;
                    };
                    let conn = if refusing {
                        bump(&self.settings.totals.refused, 1);
                        self.refusing += 1;
                        Connection::over_capacity(addr, now, &self.settings)
                    } else {
                        bump(&self.settings.totals.accepted, 1);
                        Connection::new(addr, now, &self.settings)
                    };
                    self.accepted += 1;
                    let counted_as = gauges(&conn, refusing);
                    self.settings.totals.connections(counted_as.0, counted_as.1);
                    if counted {
                        *self.handshakes.entry(addr.ip()).or_insert(0) += 1;
                    }
                    let timer_at = conn.deadline();
                    if let Some(deadline) = timer_at {
                        self.timers.push(Reverse((deadline, key)));
                    }
                    entry.insert(Slot {
                        sock: Socket::new(stream),
                        transport,
                        conn,
                        queued: false,
                        timer_at,
                        handshaking: counted.then_some(addr.ip()),
                        refusing,
                        counted_as,
                    });
                    // Registration reports data that is already waiting, so no read is due here.
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Every waiting client has been taken: a shortage is over (not merely eased
                    // by one descriptor coming free).
                    if self.accept_failing {
                        self.accept_failing = false;
                        self.accept_backoff = ACCEPT_RETRY;
                        self.link.notice(false, "accepting connections again".into());
                    }
                    return;
                }
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::ConnectionAborted) => {}
                Err(e) => {
                    // Out of file descriptors or memory: the listener's readiness will not be
                    // reported again while connections wait, so come back on a timer (or as soon
                    // as one of ours closes). The game is told once per episode.
                    self.link.count_accept_error();
                    if !self.accept_failing {
                        self.accept_failing = true;
                        self.link.notice(true, accept_error_text(&e));
                    }
                    self.accept_retry = Some(now + self.accept_backoff);
                    self.accept_backoff = (self.accept_backoff * 2).min(ACCEPT_RETRY_MAX);
                    return;
                }
            }
        }
    }

    /// Runs one input on a connection (the game's command, a deadline) and does the bookkeeping;
    /// the bytes it queued, or the input it may now take, move at the end of the turn
    /// (`flush_dirty`), all of the turn's at once.
    fn with_conn(&mut self, key: usize, now: Instant, input: impl FnOnce(&mut Connection, &mut Cx) -> Status) {
        self.with_slot(key, now, |slot, cx| input(&mut slot.conn, cx));
    }

    /// Moves every byte that can move between a connection and its socket now.
    fn service(&mut self, key: usize, now: Instant) {
        self.with_slot(key, now, |slot, cx| {
            slot.transport.service(&mut slot.sock, &mut slot.conn, cx)
        });
    }

    /// Runs one input on a connection's slot and does the bookkeeping: deadlines, the id table,
    /// the flush list, and removal when it is gone.
    fn with_slot(&mut self, key: usize, now: Instant, input: impl FnOnce(&mut Slot, &mut Cx) -> Status) {
        let Some(slot) = self.conns.get_mut(key) else {
            return;
        };
        let had_id = slot.conn.id().is_some();
        let mut cx = Cx {
            now,
            settings: &self.settings,
            ids: &mut self.ids,
            events: &mut self.events,
        };
        let status = input(slot, &mut cx);
        if !had_id {
            if let Some(id) = slot.conn.id() {
                self.by_id.insert(id, key);
            }
        }
        if slot.conn.take_released() {
            self.freed_since_trim = true;
        }
        if slot.handshaking.is_some() && !slot.conn.is_handshaking() {
            uncount(&mut self.handshakes, slot.handshaking.take());
        }
        if status == Status::Alive {
            let now_as = gauges(&slot.conn, slot.refusing);
            if now_as != slot.counted_as {
                let (h, o) = (now_as.0 - slot.counted_as.0, now_as.1 - slot.counted_as.1);
                self.settings.totals.connections(h, o);
                slot.counted_as = now_as;
            }
        }
        match status {
            Status::Gone => self.remove(key),
            Status::Alive => {
                if let Some(d) = slot.conn.deadline() {
                    if slot.timer_at.is_none_or(|t| d < t) {
                        slot.timer_at = Some(d);
                        self.timers.push(Reverse((d, key)));
                    }
                }
                let due = slot.transport.wants_write(&slot.conn) || slot.transport.can_deliver(&slot.conn);
                if due && !slot.queued {
                    slot.queued = true;
                    self.dirty.push(key);
                }
            }
        }
    }

    fn remove(&mut self, key: usize) {
        self.freed_since_trim = true;
        let mut slot = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut slot.sock.tcp);
        if let Some(id) = slot.conn.id() {
            self.by_id.remove(&id);
            // The id stays taken until the game has seen `Disconnected` or `RequestEnded`
            // (Command::Release).
        }
        uncount(&mut self.handshakes, slot.handshaking);
        self.settings.totals.connections(-slot.counted_as.0, -slot.counted_as.1);
        if slot.refusing {
            self.refusing -= 1;
        }
        if self.accept_failing {
            // A descriptor is free again.
            self.accept_retry = Some(Instant::now());
        }
    }

    fn apply_commands(&mut self, now: Instant) -> std::io::Result<()> {
        let mut commands = std::mem::take(&mut self.commands);
        self.link.take_commands(&mut commands);
        if !commands.is_empty() {
            // The game has answered (or acted): busy polling waits for nothing more.
            self.handed_over = None;
        }
        for command in commands.drain(..) {
            let key = |by_id: &HashMap<PeerId, usize>, id| by_id.get(&id).copied();
            match command {
                Command::Send { id, packet } => {
                    if let Some(k) = key(&self.by_id, id) {
                        self.with_conn(k, now, |c, _| {
                            c.send(packet);
                            Status::Alive
                        });
                    }
                }
                Command::SendMany { ids, packet } => {
                    for id in ids {
                        if let Some(k) = key(&self.by_id, id) {
                            let packet = packet.clone();
                            self.with_conn(k, now, |c, _| {
                                c.send(packet);
                                Status::Alive
                            });
                        }
                    }
                }
                Command::Close { id, code, reason } => {
                    if let Some(k) = key(&self.by_id, id) {
                        self.with_conn(k, now, |c, cx| c.close(code, &reason, cx));
                    }
                }
                Command::Resume { id } => {
                    if let Some(k) = key(&self.by_id, id) {
                        self.with_conn(k, now, |c, cx| c.resume(cx));
                    }
                }
                Command::SetNoDelay { id, enabled } => {
                    if let Some(slot) = key(&self.by_id, id).and_then(|k| self.conns.get_mut(k)) {
                        let _ = slot.sock.tcp.set_nodelay(enabled);
                    }
                }
                Command::Release { id } => self.ids.release(id),
                Command::Abort { id } => {
                    if let Some(k) = key(&self.by_id, id) {
                        self.remove(k);
                    }
                    self.ids.release(id);
                }
                Command::Fail { id } => {
                    if let Some(k) = key(&self.by_id, id) {
                        self.with_conn(k, now, |c, cx| c.fail_now(cx));
                    }
                }
                Command::Decide { id, verdict } => {
                    if let Some(k) = key(&self.by_id, id) {
                        self.with_conn(k, now, |c, cx| c.decide(verdict, cx));
                    }
                }
                Command::SetExtraHeaders(headers) => self.settings.offer.extra_headers = headers,
                Command::Released => {
                    self.freed_since_trim = true;
                    self.last_busy = now;
                }
                Command::InjectFailure { panic: true } => panic!("failure injected by a test"),
                Command::InjectFailure { panic: false } => {
                    return Err(std::io::Error::other("failure injected by a test"))
                }
            }
        }
        self.commands = commands;
        Ok(())
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((deadline, key))) = self.timers.peek() {
            if deadline > now {
                return;
            }
            self.timers.pop();
            if let Some(slot) = self.conns.get_mut(key) {
                if slot.timer_at == Some(deadline) {
                    slot.timer_at = None;
                }
            }
            // An entry may be stale (the deadline moved, or the key was reused); `on_timeout`
            // only acts on the connection's own, expired deadline, and a later deadline is
            // pushed again by `with_conn`.
            self.with_conn(key, now, |c, cx| c.on_timeout(cx));
        }
    }

    fn flush_dirty(&mut self, now: Instant) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for key in dirty.drain(..) {
            if let Some(slot) = self.conns.get_mut(key) {
                slot.queued = false;
                self.service(key, now);
            }
        }
        // A connection whose socket is full (and that wants no input, or whose socket has none)
        // is not in the list again: its readiness brings it back, so a blocked client costs
        // nothing per turn.
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }
}

/// What a caught panic or an error of the event loop is reported as (`who` did it).
fn failure_of(who: &str, result: std::thread::Result<std::io::Result<()>>) -> Result<(), String> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{who} stopped: {e}")),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("{who} panicked: {what}"))
        }
    }
}

fn uncount(handshakes: &mut HashMap<std::net::IpAddr, usize>, ip: Option<std::net::IpAddr>) {
    if let Some(ip) = ip {
        if let std::collections::hash_map::Entry::Occupied(mut e) = handshakes.entry(ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

/// What the game is told when `accept` starts failing.
fn accept_error_text(e: &std::io::Error) -> String {
    let limit = open_file_limit().map_or(String::new(), |n| {
        format!(" (this process may have {n} open files: ulimit -n)")
    });
    match e.raw_os_error() {
        #[cfg(unix)]
        Some(code) if code == libc_emfile() => format!(
            "cannot accept new connections: out of file descriptors{limit}. New clients wait in the kernel's queue until connections close; set max_connections below the limit, or raise it"
        ),
        _ => format!("cannot accept new connections: {e}{limit}. Retrying with backoff"),
    }
}

#[cfg(unix)]
fn libc_emfile() -> i32 {
    24 // EMFILE on Linux, macOS and the BSDs
}

fn open_file_limit() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            return Some(limit.rlim_cur);
        }
    }
    None
}

/// Linux: puts the calling thread (the I/O thread) under `SCHED_BATCH`. It still gets its fair
/// share of the CPU, at once whenever a core is free; but when every core is busy, waking it
/// (a reply queued, a packet arrived) no longer preempts the thread running there, typically the
/// game's main thread, which would otherwise lose the rest of its frame to the I/O thread's
/// writes on a machine with one or two cores (measured: the game thread's time to send 100
/// replies fell 3-5× on 2 cores under load). Elsewhere, nothing.
fn defer_to_other_threads() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain system call on the calling thread (pid 0) with a valid parameter; a
        // failure (a sandbox forbidding it) leaves the thread as it was.
        unsafe {
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
        }
    }
}

/// Hands memory that is free but still held by the C allocator back to the system. glibc keeps
/// freed memory in its arenas (one per thread that allocated), so after a crowd of clients with
/// large messages has gone, the process would otherwise stay at its peak size for good. Called
/// only when the I/O thread has been idle for a second after connections closed; it takes a few
/// milliseconds, and only on this thread.
pub(crate) fn trim_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair: (our side as a `Socket`, the client's std stream).
    fn pair() -> (Socket, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Socket::new(TcpStream::from_std(ours)), client)
    }

    /// Reads until `want` bytes came (they may take a moment on loopback).
    fn read_some(sock: &mut Socket, buf: &mut [u8], want: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match sock.read(buf) {
                Ok(n) if n >= want => return n,
                Ok(n) => panic!("{n} bytes, expected {want}"),
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn a_short_read_ends_reading_until_the_next_readiness_event() {
        let (mut sock, mut client) = pair();
        let mut buf = [0u8; 64];
        sock.ready(false);
        client.write_all(b"hello").unwrap();
        assert_eq!(read_some(&mut sock, &mut buf, 5), 5);
        // More arrives: it brings a readiness event of its own, so until that event this socket
        // answers without asking the kernel. Where readiness is not edge-triggered by every
        // arrival (Windows), the rule is off and the next read asks the kernel at once.
        client.write_all(b"world").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        if SHORT_READ_DRAINS {
            assert_eq!(sock.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
            sock.ready(false);
        }
        assert_eq!(sock.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"world");
    }

    #[test]
    fn a_full_read_and_an_event_with_the_end_of_stream_keep_asking_the_kernel() {
        let (mut sock, mut client) = pair();
        // A read that filled its buffer says nothing about what is left.
        let mut small = [0u8; 4];
        sock.ready(false);
        client.write_all(b"abcdefgh").unwrap();
        assert_eq!(read_some(&mut sock, &mut small, 4), 4);
        assert_eq!(sock.read(&mut small).unwrap(), 4);
        // Data followed by the FIN as one edge: the short read is not the end, the 0 after it is.
        let mut buf = [0u8; 64];
        client.write_all(b"bye").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        sock.ready(true);
        assert_eq!(sock.read(&mut buf).unwrap(), 3);
        assert_eq!(sock.read(&mut buf).unwrap(), 0, "the end of the stream is seen");
    }

    #[test]
    fn before_any_readiness_event_every_read_asks_the_kernel() {
        let (mut sock, mut client) = pair();
        let mut buf = [0u8; 64];
        client.write_all(b"one").unwrap();
        assert_eq!(read_some(&mut sock, &mut buf, 3), 3);
        client.write_all(b"two").unwrap();
        assert_eq!(read_some(&mut sock, &mut buf, 3), 3);
    }
}
