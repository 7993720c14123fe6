//! Every connection of one server, without I/O of its own: admission (caps, the PROXY protocol's
//! trusted sources), ids, the routing of the game's commands to connections, the timer table for
//! every deadline, the statistics' gauges, and the list of connections with bytes to move at the
//! end of a turn.
//!
//! The shell (`driver.rs` with mio, `sim.rs` in memory) owns the listener and the poller, accepts
//! sockets and reports readiness; the endpoint owns each accepted socket (anything that is a
//! `transport::Socket`) with its `Transport` and `Connection`, and hands back events
//! (`take_events`), its next deadline (`next_deadline`) and the sockets it let go of
//! (`take_closed`, for the shell to deregister).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::connection::{Connection, Context, Settings, Status};
use crate::event::{Command, Event, PeerId};
use crate::ids::IdAllocator;
use crate::stats::bump;
use crate::transport::{Socket, Transport};

/// Clients over `max_connections` that are still answered `503` (plain `ws://` only: their
/// request is read first, so the answer is not lost to a reset); beyond this many at once they
/// are closed without an answer.
pub const MAX_REFUSING: usize = 64;

/// What a connection counts as in the statistics' gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Gauges {
    handshaking: i64,
    open: i64,
}

impl Gauges {
    fn of(conn: &Connection, refusing: bool) -> Gauges {
        match (refusing, conn.is_handshaking(), conn.peer().is_some()) {
            (true, _, _) => Gauges::default(),
            (false, true, _) => Gauges {
                handshaking: 1,
                open: 0,
            },
            (false, false, open) => Gauges {
                handshaking: 0,
                open: i64::from(open),
            },
        }
    }
}

/// One accepted socket and what runs over it.
struct Entry<S> {
    sock: S,
    transport: Transport,
    conn: Connection,
    /// Already in `Endpoint::to_flush`.
    in_flush_list: bool,
    /// The earliest entry of this connection in `Endpoint::timers`. A deadline that moves later
    /// (a slow message making progress) adds no entry: when this one fires, the connection's
    /// current deadline is pushed then. So the heap holds about one entry per connection.
    timer_at: Option<Instant>,
    /// Counted in `Endpoint::handshakes` under this address until the upgrade is done.
    handshaking_from: Option<IpAddr>,
    /// Over `max_connections`: only answered 503 (counted in `Endpoint::refusing`).
    refusing: bool,
    counted_as: Gauges,
}

/// The endpoint's answer to a new TCP connection (`Endpoint::admit`).
#[derive(Debug)]
pub enum Admission {
    /// Close it without a word (counted as refused).
    Refuse,
    /// Take it (`Endpoint::open`).
    Take(Ticket),
}

/// A connection the endpoint agreed to take.
#[derive(Debug)]
pub struct Ticket {
    addr: SocketAddr,
    refusing: bool,
    counted: bool,
}

pub struct Endpoint<S> {
    settings: Settings,
    tls: Option<Arc<rustls::ServerConfig>>,
    ids: IdAllocator,
    entries: Slab<Entry<S>>,
    by_id: HashMap<PeerId, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Handshaking connections per TCP peer address (`max_handshakes_per_address`).
    handshakes: HashMap<IpAddr, usize>,
    /// Connections being answered 503 (`MAX_REFUSING`).
    refusing: usize,
    /// Connections with bytes to move (or input they may take) at the end of the turn.
    to_flush: Vec<usize>,
    events: Vec<Event>,
    closed: Vec<S>,
    /// Connections have closed, or let go of a large buffer, since `take_freed`.
    freed: bool,
    /// A graceful shutdown has begun (`shut_down`).
    shutting_down: bool,
    /// When the connections still here at the end of a shutdown are dropped.
    shutdown_deadline: Option<Instant>,
}

impl<S: Socket> Endpoint<S> {
    pub fn new(settings: Settings, tls: Option<Arc<rustls::ServerConfig>>) -> Endpoint<S> {
        Endpoint {
            settings,
            tls,
            ids: IdAllocator::new(),
            entries: Slab::new(),
            by_id: HashMap::new(),
            timers: BinaryHeap::new(),
            handshakes: HashMap::new(),
            refusing: 0,
            to_flush: Vec::new(),
            events: Vec::new(),
            closed: Vec::new(),
            freed: false,
            shutting_down: false,
            shutdown_deadline: None,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Connections held (open, handshaking, or being refused).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a new TCP connection from `addr` (the socket's peer) is taken. Refusals are
    /// counted in the statistics.
    pub fn admit(&mut self, addr: SocketAddr) -> Admission {
        let totals = &self.settings.totals;
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let config = &self.settings.config;
        let open = self.entries.len() - self.refusing;
        let refusing = config.max_connections > 0 && open >= config.max_connections;
        // (A shell closes its listener when the shutdown begins; this is for one that has not.)
        if self.shutting_down || refusing && (self.tls.is_some() || self.refusing >= MAX_REFUSING) {
            bump(&totals.refused, 1);
            return Admission::Refuse;
        }
        let proxies = &config.trusted_proxies;
        if config.proxy_protocol && !proxies.is_empty() && !proxies.contains(addr.ip()) {
            // Not the proxy: its PROXY header would be a claim nobody vouches for.
            bump(&totals.refused, 1);
            return Admission::Refuse;
        }
        let per_address = self.handshakes.get(&addr.ip()).copied().unwrap_or(0);
        let counted = !refusing && config.max_handshakes_per_address > 0 && !proxies.contains(addr.ip());
        if counted && per_address >= config.max_handshakes_per_address {
            // One host with this many unfinished handshakes is not owed an answer.
            bump(&totals.refused, 1);
            return Admission::Refuse;
        }
        Admission::Take(Ticket {
            addr,
            refusing,
            counted,
        })
    }

    /// The key the next `open` will give (the shell registers the socket under it first).
    pub fn next_key(&self) -> usize {
        self.entries.vacant_key()
    }

    /// Takes an admitted socket. Returns its key; `None` if its TLS state could not be made (the
    /// socket is dropped).
    pub fn open(&mut self, ticket: Ticket, sock: S, now: Instant) -> Option<usize> {
        let transport = Transport::new(self.tls.as_ref(), self.settings.config.proxy_protocol).ok()?;
        let Ticket {
            addr,
            refusing,
            counted,
        } = ticket;
        let conn = if refusing {
            bump(&self.settings.totals.refused, 1);
            self.refusing += 1;
            Connection::over_capacity(addr, now, &self.settings)
        } else {
            bump(&self.settings.totals.accepted, 1);
            Connection::new(addr, now, &self.settings)
        };
        let counted_as = Gauges::of(&conn, refusing);
        self.settings
            .totals
            .connections(counted_as.handshaking, counted_as.open);
        if counted {
            *self.handshakes.entry(addr.ip()).or_insert(0) += 1;
        }
        let timer_at = conn.deadline();
        let key = self.entries.insert(Entry {
            sock,
            transport,
            conn,
            in_flush_list: false,
            timer_at,
            handshaking_from: counted.then_some(addr.ip()),
            refusing,
            counted_as,
        });
        if let Some(deadline) = timer_at {
            self.timers.push(Reverse((deadline, key)));
        }
        Some(key)
    }

    /// The socket of connection `key` (the shell's readiness bookkeeping, socket options).
    pub fn socket_mut(&mut self, key: usize) -> Option<&mut S> {
        self.entries.get_mut(key).map(|e| &mut e.sock)
    }

    /// The socket of `key` reported readiness: move every byte that can move.
    pub fn ready(&mut self, key: usize, readable: bool, writable: bool, now: Instant) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        if readable {
            entry.transport.readable();
        }
        if writable {
            entry.transport.writable();
        }
        self.with_entry(key, now, |e, cx| e.transport.service(&mut e.sock, &mut e.conn, cx));
    }

    /// The socket of `key` failed (a reset): the client is gone even if reading is paused (a full
    /// queue) and nothing would read the socket to find out.
    pub fn reset(&mut self, key: usize, now: Instant) {
        self.with_entry(key, now, |e, cx| e.conn.on_reset(cx));
    }

    /// One of the game's commands for a connection (the shell handles the others). A command for
    /// an id that is gone does nothing: the game learns of the end from the events.
    pub fn command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Send { id, packet } => self.on_id(id, now, |c, _| c.send(packet)),
            Command::SendMany { ids, packet } => {
                for id in ids {
                    self.on_id(id, now, |c, _| c.send(packet.clone()));
                }
            }
            Command::Close { id, code, reason } => self.on_id(id, now, |c, cx| c.close(code, &reason, cx)),
            Command::Resume { id } => self.on_id(id, now, |c, cx| c.resume(cx)),
            Command::Fail { id } => self.on_id(id, now, |c, cx| c.fail_now(cx)),
            Command::Decide { id, verdict } => self.on_id(id, now, |c, cx| c.decide(verdict, cx)),
            Command::SetNoDelay { id, enabled } => {
                if let Some(entry) = self.by_id.get(&id).and_then(|&k| self.entries.get_mut(k)) {
                    entry.sock.set_nodelay(enabled);
                }
            }
            Command::Release { id } => self.ids.release(id),
            Command::Abort { id } => {
                if let Some(&k) = self.by_id.get(&id) {
                    self.remove(k);
                }
                self.ids.release(id);
            }
            Command::SetExtraHeaders(headers) => self.settings.offer.extra_headers = headers,
            Command::ShutDown { code, reason, timeout } => self.shut_down(code, &reason, timeout, now),
            Command::Released | Command::InjectFailure { .. } => {}
        }
    }

    /// A graceful shutdown (the shell has closed the listener): every open connection gets a
    /// Close with `code` and `reason` after what is queued for it, requests waiting for the game
    /// are answered `503`, unfinished requests are dropped (see `Connection::shut_down`); whatever
    /// is still here after `timeout` is dropped. Once none is left, `is_drained` is true.
    pub fn shut_down(&mut self, code: u16, reason: &str, timeout: Duration, now: Instant) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.shutdown_deadline = Some(now + timeout);
        let keys: Vec<usize> = self.entries.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.with_conn(key, now, |c, cx| c.shut_down(code, reason, cx));
        }
    }

    /// A shutdown has begun and every connection is gone.
    pub fn is_drained(&self) -> bool {
        self.shutting_down && self.entries.is_empty()
    }

    /// The earliest deadline of any connection (or of the shutdown).
    pub fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((t, _))| *t);
        match (timer, self.shutdown_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether connections have bytes to move that the end of the turn (`flush`) has not moved.
    pub fn has_flush_due(&self) -> bool {
        !self.to_flush.is_empty()
    }

    /// Fires every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.shutdown_deadline.is_some_and(|d| d <= now) {
            self.shutdown_deadline = None;
            let keys: Vec<usize> = self.entries.iter().map(|(k, _)| k).collect();
            for key in keys {
                self.with_conn(key, now, |c, cx| c.drop_now(cx));
            }
        }
        while let Some(&Reverse((deadline, key))) = self.timers.peek() {
            if deadline > now {
                return;
            }
            self.timers.pop();
            if let Some(entry) = self.entries.get_mut(key) {
                if entry.timer_at == Some(deadline) {
                    entry.timer_at = None;
                }
            }
            // An entry may be stale (the deadline moved, or the key was reused); `on_timeout`
            // only acts on the connection's own, expired deadline, and a later deadline is
            // pushed again by `with_entry`.
            self.with_conn(key, now, |c, cx| c.on_timeout(cx));
        }
    }

    /// The end of a turn: moves the bytes of every connection that an input of this turn gave
    /// some to move, all of the turn's at once.
    pub fn flush(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.to_flush);
        for key in due.drain(..) {
            if let Some(entry) = self.entries.get_mut(key) {
                entry.in_flush_list = false;
                self.with_entry(key, now, |e, cx| e.transport.service(&mut e.sock, &mut e.conn, cx));
            }
        }
        // A connection whose socket is full (and that wants no input, or whose socket has none)
        // is not in the list again: its readiness brings it back, so a blocked client costs
        // nothing per turn.
        if self.to_flush.is_empty() {
            self.to_flush = due;
        }
    }

    /// The events of the inputs so far, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Moves the events of the inputs so far into `into` (which the shell then publishes).
    pub fn take_events(&mut self, into: &mut Vec<Event>) {
        if into.is_empty() {
            std::mem::swap(into, &mut self.events);
        } else {
            into.append(&mut self.events);
        }
    }

    /// The sockets of connections that are gone, for the shell to deregister and drop.
    pub fn take_closed(&mut self) -> std::vec::Drain<'_, S> {
        self.closed.drain(..)
    }

    /// Whether connections closed, or let go of a large buffer, since the last call.
    pub fn take_freed(&mut self) -> bool {
        std::mem::take(&mut self.freed)
    }

    /// For tests and fuzzing: every connection's (id, bytes waiting for its socket, memory held
    /// for output).
    pub fn buffers(&self) -> impl Iterator<Item = (Option<PeerId>, usize, usize)> + '_ {
        self.entries
            .iter()
            .map(|(_, e)| (e.conn.id(), e.conn.buffered_out(), e.conn.out_capacity()))
    }

    fn with_conn(&mut self, key: usize, now: Instant, input: impl FnOnce(&mut Connection, &mut Context) -> Status) {
        self.with_entry(key, now, |e, cx| input(&mut e.conn, cx));
    }

    /// Runs one input on the connection the game knows as `id`, if it is still here.
    fn on_id<R: Into<Status>>(
        &mut self,
        id: PeerId,
        now: Instant,
        input: impl FnOnce(&mut Connection, &mut Context) -> R,
    ) {
        if let Some(&key) = self.by_id.get(&id) {
            self.with_conn(key, now, |c, cx| input(c, cx).into());
        }
    }

    /// Runs one input on a connection and does the bookkeeping: deadlines, the id table, the
    /// flush list, the gauges, and removal when it is gone.
    fn with_entry(&mut self, key: usize, now: Instant, input: impl FnOnce(&mut Entry<S>, &mut Context) -> Status) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        let had_id = entry.conn.id().is_some();
        let mut cx = Context {
            now,
            settings: &self.settings,
            ids: &mut self.ids,
            events: &mut self.events,
        };
        let status = input(entry, &mut cx);
        if !had_id {
            if let Some(id) = entry.conn.id() {
                self.by_id.insert(id, key);
            }
        }
        if entry.conn.take_released() {
            self.freed = true;
        }
        if entry.handshaking_from.is_some() && !entry.conn.is_handshaking() {
            uncount(&mut self.handshakes, entry.handshaking_from.take());
        }
        if status == Status::Gone {
            self.remove(key);
            return;
        }
        let now_as = Gauges::of(&entry.conn, entry.refusing);
        if now_as != entry.counted_as {
            self.settings.totals.connections(
                now_as.handshaking - entry.counted_as.handshaking,
                now_as.open - entry.counted_as.open,
            );
            entry.counted_as = now_as;
        }
        if let Some(d) = entry.conn.deadline() {
            if entry.timer_at.is_none_or(|t| d < t) {
                entry.timer_at = Some(d);
                self.timers.push(Reverse((d, key)));
            }
        }
        let due = entry.transport.wants_write(&entry.conn) || entry.transport.can_deliver(&entry.conn);
        if due && !entry.in_flush_list {
            entry.in_flush_list = true;
            self.to_flush.push(key);
        }
    }

    fn remove(&mut self, key: usize) {
        self.freed = true;
        let entry = self.entries.remove(key);
        if let Some(id) = entry.conn.id() {
            self.by_id.remove(&id);
            // The id stays taken until the game has seen `Disconnected` or `RequestEnded`
            // (Command::Release).
        }
        uncount(&mut self.handshakes, entry.handshaking_from);
        self.settings
            .totals
            .connections(-entry.counted_as.handshaking, -entry.counted_as.open);
        if entry.refusing {
            self.refusing -= 1;
        }
        self.closed.push(entry.sock);
    }
}

fn uncount(handshakes: &mut HashMap<IpAddr, usize>, ip: Option<IpAddr>) {
    if let Some(ip) = ip {
        if let std::collections::hash_map::Entry::Occupied(mut e) = handshakes.entry(ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}
