//! The game thread's side of a running server: start and stop the I/O thread, take its events in
//! Godot's order, and the table of peers the game knows.
//!
//! `poll()` costs O(events since the last poll): idle connections cost nothing here.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Waker};
use tungstenite::Bytes;

use crate::config::{BindIp, IoMode, ServerConfig};
use crate::connection::{Settings, Verdict};
use crate::driver::{Driver, LISTENER, WAKER};
use crate::request::Request;
use crate::shared::{Command, Event, Link, Packet, PeerId, PeerShared, PeerState, Totals};

/// Why `listen` failed; each maps to one Godot `Error`.
#[derive(Debug)]
pub enum ListenError {
    /// The port is taken (`ERR_ALREADY_IN_USE`).
    InUse(String),
    /// The address cannot be bound here (`ERR_INVALID_PARAMETER`).
    BadAddress(String),
    /// Sockets, the poller or the thread could not be made (`ERR_CANT_CREATE`).
    CantCreate(String),
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenError::InUse(s) | ListenError::BadAddress(s) | ListenError::CantCreate(s) => f.write_str(s),
        }
    }
}

/// What the game should be told, one at a time, from `Server::next_signal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A request waits for `Server::decide` (`ServerConfig::authorize`); `Server::request` has it.
    UpgradeRequested {
        id: PeerId,
    },
    /// A request the game had not refused will not become a peer (no decision in time, or the
    /// client left). The id is not valid any more.
    UpgradeCancelled {
        id: PeerId,
        why: &'static str,
    },
    Connected {
        id: PeerId,
        protocol: String,
        resource: String,
    },
    /// One message is now in the peer's queue.
    DataReceived {
        id: PeerId,
    },
    CloseRequest {
        id: PeerId,
        code: u16,
        reason: String,
    },
    Disconnected {
        id: PeerId,
        clean: bool,
    },
}

pub struct Server {
    link: Arc<Link>,
    /// Statistics (see `Totals`).
    totals: Arc<Totals>,
    /// The event loop's home; `None` once stopped.
    io: Option<Io>,
    local_addr: SocketAddr,
    peers: HashMap<PeerId, PeerHandle>,
    /// Requests the game was asked to decide on, until they become peers or end.
    requests: HashMap<PeerId, PendingRequest>,
    /// Events taken from the I/O thread and not yet turned into signals, in emission order.
    pending: VecDeque<Event>,
    incoming: Vec<Event>,
    later: Vec<Event>,
    /// Multiplayer mode and `queue_messages`: every peer's messages, in arrival order, with their
    /// sender.
    queue: Option<VecDeque<(PeerHandle, Packet)>>,
    /// With `queue`: peers that broke the protocol, and how many of their messages from before it
    /// are still queued (their Close waits until the game has taken them).
    failing: HashMap<PeerId, usize>,
    /// Peers whose last message before a violation was taken: failed at the next `poll`.
    fail_next: Vec<PeerId>,
    /// Without `queue`: peers that broke the protocol while messages from before it wait in their
    /// own queue (`PeerHandle::pop`, the stock Godot pattern of `get_packet` after `poll`): failed
    /// at the first `poll` that finds that queue empty, so the Close follows the replies the game
    /// sent when it read them.
    failing_unread: Vec<PeerId>,
    /// The I/O thread died: the pending signals end with every peer's `Disconnected`, and the
    /// server is stopped once they have been taken.
    dead: bool,
}

impl Server {
    /// Binds the port on the calling thread (so errors come back at once) and starts the I/O thread
    /// (or, with `IoMode::Inline`, keeps the event loop for `poll` to run).
    pub fn listen(config: &ServerConfig) -> Result<Server, ListenError> {
        let mut listener = bind(config.bind_ip, config.port)?;
        let local_addr = listener.local_addr().map_err(cant_create)?;
        let poll = Poll::new().map_err(cant_create)?;
        let waker = match config.io {
            IoMode::Thread => Some(Waker::new(poll.registry(), WAKER).map_err(cant_create)?),
            IoMode::Inline => None,
        };
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(cant_create)?;
        let link = Arc::new(Link::new(waker, config.max_event_backlog.max(1)));
        let caps = (config.max_connections, config.max_handshakes_per_address);
        let settings = Settings::new(config);
        let totals = settings.totals.clone();
        let driver = Driver::new(poll, listener, link.clone(), settings, config.tls.clone(), caps)
            .with_busy_poll(config.busy_poll);
        let io = match config.io {
            IoMode::Thread => Io::Thread(
                std::thread::Builder::new()
                    .name("websocket-server-io".into())
                    .spawn(move || driver.run_guarded())
                    .map_err(cant_create)?,
            ),
            IoMode::Inline => Io::Inline {
                driver: Some(Box::new(driver)),
                readiness: Events::with_capacity(1024),
            },
        };
        Ok(Server {
            link,
            totals,
            io: Some(io),
            local_addr,
            peers: HashMap::new(),
            requests: HashMap::new(),
            pending: VecDeque::new(),
            incoming: Vec::new(),
            later: Vec::new(),
            queue: (config.multiplayer || config.queue_messages).then(VecDeque::new),
            failing: HashMap::new(),
            fail_next: Vec::new(),
            failing_unread: Vec::new(),
            dead: false,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Takes what the I/O thread reported since the last call, ordered as Godot orders a poll:
    /// first everything about peers the game already knows, then the new connections (each
    /// followed by whatever else that peer did).
    ///
    /// If the I/O thread died, returns why (once): what it reported before dying is still
    /// delivered, followed by a `Disconnected` (unclean) for every peer, after which
    /// `is_dead()` is true and the server should be stopped.
    pub fn poll(&mut self) -> Result<(), String> {
        if self.dead || self.io.is_none() {
            return Ok(());
        }
        for id in std::mem::take(&mut self.fail_next) {
            self.fail(id);
        }
        if !self.failing_unread.is_empty() {
            let mut failing = std::mem::take(&mut self.failing_unread);
            failing.retain(|&id| match self.peers.get(&id) {
                Some(p) if p.available() > 0 => true,
                Some(_) => {
                    self.fail(id);
                    false
                }
                None => false,
            });
            self.failing_unread = failing;
        }
        if let Some(Io::Inline { driver, readiness }) = &mut self.io {
            run_inline(driver, &self.link, |d| d.turn_now(readiness));
            if driver.as_mut().is_some_and(|d| d.trim_due(readiness)) {
                // It takes milliseconds after a large release: not on the game thread. Joined
                // with the stopped I/O threads (`join_stopped_io_threads`).
                if let Ok(t) = std::thread::Builder::new()
                    .name("websocket-server-trim".into())
                    .spawn(crate::driver::trim_memory)
                {
                    let mut stopped = STOPPED_THREADS.lock();
                    stopped.retain(|t| !t.is_finished());
                    stopped.push(t);
                }
            }
        }
        // (The flag first: no lock in the frames where nothing failed, i.e. all of them.)
        let failure = if self.link.has_failed() {
            self.link.take_failure()
        } else {
            None
        };
        // If the last batch was not drained to the end, its sends still wait for a wake.
        self.link.release_wakes();
        self.link.take_events(&mut self.incoming);
        if !self.incoming.is_empty() {
            self.link.hold_wakes();
        }
        for event in self.incoming.drain(..) {
            if self.peers.contains_key(&event.id()) || self.requests.contains_key(&event.id()) {
                self.pending.push_back(event);
            } else {
                self.later.push(event);
            }
        }
        self.pending.extend(self.later.drain(..));
        let Some(failure) = failure else {
            return Ok(());
        };
        self.dead = true;
        let mut ids: Vec<PeerId> = self.peers.keys().copied().collect();
        let mut asked: Vec<PeerId> = self.requests.keys().copied().collect();
        for e in &self.pending {
            match e {
                Event::Connected { peer, .. } => ids.push(peer.id),
                Event::Requested { id, .. } => asked.push(*id),
                _ => {}
            }
        }
        let gone: std::collections::HashSet<PeerId> = self
            .pending
            .iter()
            .filter_map(|e| match e {
                Event::Disconnected { id, .. } | Event::RequestEnded { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        // A request that was accepted but not yet connected ends as a request.
        ids.retain(|id| !asked.contains(id));
        for id in ids.into_iter().filter(|id| !gone.contains(id)) {
            self.pending.push_back(Event::Disconnected { id, clean: false });
        }
        for id in asked.into_iter().filter(|id| !gone.contains(id)) {
            self.pending.push_back(Event::RequestEnded {
                id,
                why: "the server stopped",
            });
        }
        Err(failure)
    }

    /// Whether `next_signal` has anything to go through (most frames it has not).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The I/O thread died and every signal about it has been queued (see `poll`).
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Tests only: makes the I/O thread die, by a panic or by an error, as a bug or a failing
    /// system call would.
    #[doc(hidden)]
    pub fn inject_io_failure(&self, panic: bool) {
        self.link.command(Command::InjectFailure { panic });
    }

    /// The next signal to emit, with the peer table already updated for it: a `DataReceived`
    /// message is in the peer's queue, a `Disconnected` peer is out of the table.
    ///
    /// From `poll()` until this returns `None`, sends made by the game (typically from the signal
    /// handlers) wake the I/O thread once, at the end, rather than once each.
    pub fn next_signal(&mut self) -> Option<Signal> {
        loop {
            let Some(event) = self.pending.pop_front() else {
                self.link.release_wakes();
                if let Some(Io::Inline { driver, .. }) = &mut self.io {
                    // The handlers' replies go out now, not at the next poll.
                    run_inline(driver, &self.link, |d| d.write_now());
                }
                return None;
            };
            let signal = match event {
                Event::Requested { id, request } => {
                    self.requests.insert(id, PendingRequest { request, decided: None });
                    Signal::UpgradeRequested { id }
                }
                Event::RequestEnded { id, why } => {
                    let Some(ended) = self.requests.remove(&id) else {
                        continue;
                    };
                    self.link.command(Command::Release { id });
                    if ended.decided == Some(false) {
                        continue; // the game refused it itself
                    }
                    Signal::UpgradeCancelled { id, why }
                }
                Event::Connected {
                    peer,
                    protocol,
                    resource,
                } => {
                    let id = peer.id;
                    self.requests.remove(&id);
                    self.peers.insert(
                        id,
                        PeerHandle {
                            shared: peer,
                            link: self.link.clone(),
                        },
                    );
                    Signal::Connected { id, protocol, resource }
                }
                Event::Message { id, packet } => match (self.peers.get(&id), &mut self.queue) {
                    (Some(p), Some(queue)) => {
                        queue.push_back((p.clone(), packet));
                        continue;
                    }
                    (Some(p), None) => {
                        p.shared.inbox.lock().push_back(packet);
                        Signal::DataReceived { id }
                    }
                    (None, _) => continue,
                },
                // Events of a peer the game removed with `abort` are dropped: it was told nothing
                // more would come, and the I/O thread frees the id itself.
                Event::CloseRequest { id, .. } | Event::ProtocolError { id, .. } | Event::Disconnected { id, .. }
                    if !self.peers.contains_key(&id) =>
                {
                    continue
                }
                // Everything this peer sent before its violation has been signalled, and the
                // handlers' replies are queued: now the Close may follow them.
                Event::ProtocolError { id, .. } => {
                    // Its messages may still wait to be read: the Close follows the replies the game
                    // sends once it has taken them (`pop_packet` or `PeerHandle::pop`, then `poll`).
                    let peer = self.peers.get(&id);
                    if self.queue.is_some() {
                        let waiting = peer.map_or(0, |p| p.shared.inbound_queued().0);
                        if waiting > 0 {
                            self.failing.insert(id, waiting);
                            continue;
                        }
                    } else if peer.is_some_and(|p| p.available() > 0) {
                        self.failing_unread.push(id);
                        continue;
                    }
                    self.fail(id);
                    continue;
                }
                Event::CloseRequest { id, code, reason } => Signal::CloseRequest { id, code, reason },
                Event::Disconnected { id, clean } => {
                    self.failing.remove(&id);
                    self.fail_next.retain(|f| *f != id);
                    self.failing_unread.retain(|f| *f != id);
                    self.peers.remove(&id);
                    self.link.command(Command::Release { id });
                    Signal::Disconnected { id, clean }
                }
            };
            return Some(signal);
        }
    }

    pub fn peer(&self, id: PeerId) -> Option<&PeerHandle> {
        self.peers.get(&id)
    }

    /// The upgrade request of a connected peer, or of a request waiting for a decision.
    pub fn request(&self, id: PeerId) -> Option<&Arc<Request>> {
        self.peers
            .get(&id)
            .map(|p| &p.shared.request)
            .or_else(|| self.requests.get(&id).map(|r| &r.request))
    }

    /// The game's decision on request `id` (`Signal::UpgradeRequested`). Only the first decision
    /// counts. A chosen subprotocol must be one the client offered. Header lines and status are
    /// the caller's to check (`config::validate_response_headers`).
    pub fn decide(&mut self, id: PeerId, verdict: Verdict) -> Result<(), DecideError> {
        let pending = self.requests.get_mut(&id).ok_or(DecideError::NoRequest(id))?;
        if pending.decided.is_some() {
            return Err(DecideError::AlreadyDecided(id));
        }
        if let Verdict::Accept {
            protocol: Some(protocol),
            ..
        } = &verdict
        {
            if !pending.request.protocols.contains(protocol) {
                return Err(DecideError::NotOffered(
                    protocol.clone(),
                    pending.request.protocols.clone(),
                ));
            }
        }
        pending.decided = Some(matches!(verdict, Verdict::Accept { .. }));
        self.link.command(Command::Decide { id, verdict });
        Ok(())
    }

    /// Log lines from the I/O thread since the last call (`true`: an error).
    pub fn take_notices(&self) -> Vec<(bool, String)> {
        self.link.take_notices()
    }

    /// How often `accept` failed for lack of resources (file descriptors).
    pub fn accept_errors(&self) -> u64 {
        self.link.accept_errors()
    }

    /// Clients refused by `max_connections`, `max_handshakes_per_address` or
    /// `refuse_new_connections`.
    pub fn refused_connections(&self) -> u64 {
        crate::shared::read(&self.totals.refused)
    }

    /// The server's statistics.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    pub fn peer_ids(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// Multiplayer mode and `queue_messages`: the sender of the next packet.
    pub fn packet_sender(&self) -> Option<PeerId> {
        self.queue.as_ref()?.front().map(|(p, _)| p.id())
    }

    /// Multiplayer mode and `queue_messages`: messages from all peers waiting to be read.
    pub fn queued_packets(&self) -> usize {
        self.queue.as_ref().map_or(0, VecDeque::len)
    }

    /// Multiplayer mode and `queue_messages`: takes the next packet from any peer, with its sender.
    pub fn pop_packet(&mut self) -> Option<(PeerId, Packet)> {
        let (peer, packet) = self.queue.as_mut()?.pop_front()?;
        peer.taken(&packet);
        let id = peer.id();
        // (An empty map answers without hashing: nothing is paid per message while no peer fails.)
        if let Some(left) = self.failing.get_mut(&id) {
            *left -= 1;
            if *left == 0 {
                // Its last message before the violation is taken; the game's replies to it are
                // sent after this call, so the Close goes at the next poll.
                self.failing.remove(&id);
                self.fail_next.push(id);
            }
        }
        Some((id, packet))
    }

    /// Starts failing peer `id` (its protocol violation): no more sends, and the I/O side sends
    /// the Close after what is already queued.
    fn fail(&self, id: PeerId) {
        if let Some(p) = self.peers.get(&id) {
            p.shared.advance(PeerState::Closing);
        }
        self.link.command(Command::Fail { id });
    }

    /// Multiplayer mode's `put_packet`: `target > 0` one peer, `0` every peer, `< 0` every peer
    /// but `-target`. A broadcast shares one copy of the bytes among all recipients. Peers that
    /// are closing are skipped; peers whose queue is full are reported (the others still get it).
    pub fn send_to(&self, target: PeerId, data: Bytes, text: bool) -> Result<(), TargetError> {
        let packet = Packet { data, text };
        if target > 0 {
            let peer = self.peers.get(&target).ok_or(TargetError::UnknownPeer(target))?;
            return peer
                .send(packet.data, text)
                .map_err(|e| TargetError::Refused(vec![(target, e)]));
        }
        let mut ids = Vec::with_capacity(self.peers.len());
        let mut refused = Vec::new();
        for (&id, peer) in &self.peers {
            if !is_recipient(target, id) || peer.state() != PeerState::Open {
                continue;
            }
            match peer.shared.reserve_outbound(packet.data.len()) {
                Ok(()) => ids.push(id),
                Err(limit) => refused.push((id, SendError::Full(limit))),
            }
        }
        if !ids.is_empty() {
            self.link.command(Command::SendMany { ids, packet });
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(TargetError::Refused(refused))
        }
    }

    /// Raw mode's one-call broadcast: `data` to every open peer (`to == None`) or to the peers in
    /// `to`, except those in `exclude`, with one copy of the bytes shared by all recipients until
    /// each frame is written. Returns the peers that did not get it and why (an id in `to` that is
    /// not connected, a peer that is closing, a full queue); everyone else has it queued.
    pub fn broadcast(
        &self,
        data: Bytes,
        text: bool,
        to: Option<&[PeerId]>,
        exclude: &[PeerId],
    ) -> Vec<(PeerId, BroadcastError)> {
        let mut ids = Vec::with_capacity(to.map_or(self.peers.len(), <[PeerId]>::len));
        let mut failed = Vec::new();
        let mut consider = |id: PeerId, peer: Option<&PeerHandle>| {
            if exclude.contains(&id) {
                return;
            }
            match reserve(peer, data.len()) {
                Ok(()) => ids.push(id),
                Err(why) => failed.push((id, why)),
            }
        };
        match to {
            Some(list) => {
                let mut seen = std::collections::HashSet::with_capacity(list.len());
                for &id in list.iter().filter(|id| seen.insert(**id)) {
                    consider(id, self.peers.get(&id));
                }
            }
            None => {
                for (&id, peer) in &self.peers {
                    consider(id, Some(peer));
                }
            }
        }
        if !ids.is_empty() {
            self.link.command(Command::SendMany {
                ids,
                packet: Packet { data, text },
            });
        }
        failed
    }

    /// Sends each message to its own peer, in order, with one wake of the I/O thread for all of
    /// them (a game server's per-client states; `queue_messages`' echo). Each item is a peer, the
    /// bytes, and whether it is a text message; each is checked as `PeerHandle::send` checks it.
    /// Returns the position in `messages` and the reason of each one that was not queued; every
    /// other one is.
    pub fn send_each(&self, messages: impl IntoIterator<Item = (PeerId, Bytes, bool)>) -> Vec<(usize, BroadcastError)> {
        let mut failed = Vec::new();
        let mut cmds = Vec::new();
        for (i, (id, data, text)) in messages.into_iter().enumerate() {
            match reserve(self.peers.get(&id), data.len()) {
                Ok(()) => cmds.push(Command::Send {
                    id,
                    packet: Packet { data, text },
                }),
                Err(why) => failed.push((i, why)),
            }
        }
        self.link.commands(&mut cmds);
        failed
    }

    /// Inline I/O: writes what the game has queued now, rather than in the next `poll` (used
    /// after a multi-send: one pass for the whole batch). A failure is reported by the next
    /// `poll`, as any failure of the inline loop. With the I/O thread, nothing to do: it was woken.
    pub fn flush(&mut self) {
        if let Some(Io::Inline { driver, .. }) = &mut self.io {
            if !self.dead {
                run_inline(driver, &self.link, |d| d.write_now());
            }
        }
    }

    /// New TCP connections are closed at once while this is on.
    pub fn set_refusing(&self, refuse: bool) {
        self.link.set_refusing(refuse);
    }

    /// Drops a peer at once: no close handshake, and no further signal for it.
    pub fn abort(&mut self, id: PeerId) -> bool {
        let Some(peer) = self.peers.remove(&id) else {
            return false;
        };
        peer.shared.advance(PeerState::Closed);
        self.link.command(Command::Abort { id });
        true
    }

    /// Header lines for the `101` responses of upgrades that finish from now on.
    pub fn set_extra_headers(&self, headers: Vec<String>) {
        self.link.command(Command::SetExtraHeaders(headers));
    }

    pub fn is_running(&self) -> bool {
        self.io.is_some()
    }

    /// Where this server does its socket work.
    pub fn io_mode(&self) -> Option<IoMode> {
        match self.io {
            Some(Io::Thread(_)) => Some(IoMode::Thread),
            Some(Io::Inline { .. }) => Some(IoMode::Inline),
            None => None,
        }
    }

    /// Closes the listener and every connection (no close handshake, no signals). Returns once
    /// the port is free; the I/O thread closes the connections and ends on its own, and is joined
    /// later (`join_stopped_io_threads`). Peer objects kept by the game report `Closed`.
    pub fn stop(&mut self) {
        let Some(io) = self.io.take() else {
            return;
        };
        self.link.stop();
        match io {
            Io::Thread(thread) => {
                if !self.link.wait_listener_closed(std::time::Duration::from_secs(5)) {
                    // Never seen; joining is the last resort that still frees the port.
                    let _ = thread.join();
                } else {
                    let mut stopped = STOPPED_THREADS.lock();
                    stopped.retain(|t| !t.is_finished());
                    stopped.push(thread);
                }
            }
            // Closes the listener and every socket here and now.
            Io::Inline { driver, .. } => drop(driver),
        }
        for peer in self.peers.values() {
            peer.shared.advance(PeerState::Closed);
        }
        self.peers.clear();
        self.requests.clear();
        self.pending.clear();
        self.failing.clear();
        self.fail_next.clear();
        self.failing_unread.clear();
    }
}

/// A multi-send's check of one recipient: connected, open, and room for `len` more bytes (which
/// are then reserved).
fn reserve(peer: Option<&PeerHandle>, len: usize) -> Result<(), BroadcastError> {
    let peer = peer.ok_or(BroadcastError::UnknownPeer)?;
    if peer.state() != PeerState::Open {
        return Err(BroadcastError::Send(SendError::NotOpen));
    }
    peer.shared
        .reserve_outbound(len)
        .map_err(|limit| BroadcastError::Send(SendError::Full(limit)))
}

/// Where the event loop runs (`IoMode`).
enum Io {
    Thread(JoinHandle<()>),
    /// The loop itself, run by `poll`; `None` after it failed (the game is told, and stops the
    /// server after the last signals).
    Inline {
        driver: Option<Box<Driver>>,
        readiness: Events,
    },
}

/// Inline I/O: runs `step` on the event loop unless it already failed. A failure (a panic or an
/// I/O error) is reported the way a dead I/O thread is: the listener and every socket close now,
/// and the next `poll` tells the game and ends every peer.
fn run_inline(driver: &mut Option<Box<Driver>>, link: &Link, step: impl FnOnce(&mut Driver) -> Result<(), String>) {
    let Some(d) = driver.as_deref_mut() else {
        return;
    };
    if let Err(failure) = step(d) {
        // The loop may be half-way through a change; nothing of it is used again.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(driver.take())));
        link.set_failure(failure);
    }
}

/// A request the game was asked about. `decided`: `None` while it waits, then whether it was
/// accepted.
struct PendingRequest {
    request: Arc<Request>,
    decided: Option<bool>,
}

/// Why `Server::decide` refused a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecideError {
    /// No request with this id waits (it was never asked about, became a peer, or ended).
    NoRequest(PeerId),
    AlreadyDecided(PeerId),
    /// The chosen subprotocol is not among those the client offered (listed).
    NotOffered(String, Vec<String>),
}

impl std::fmt::Display for DecideError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecideError::NoRequest(id) => write!(f, "no request with id {id} is waiting for a decision"),
            DecideError::AlreadyDecided(id) => write!(f, "request {id} has already been decided"),
            DecideError::NotOffered(p, offered) => write!(
                f,
                "subprotocol {p:?} was not offered by the client (it offered {offered:?})"
            ),
        }
    }
}

/// I/O threads of stopped servers that may still be closing their connections (and inline
/// servers' memory-trimming threads).
static STOPPED_THREADS: parking_lot::Mutex<Vec<JoinHandle<()>>> = parking_lot::Mutex::new(Vec::new());

/// Waits for the I/O threads of stopped servers to end. Call before the code of this library may
/// go away (the extension's deinitialisation), so that no thread runs it any more.
pub fn join_stopped_io_threads() {
    let threads = std::mem::take(&mut *STOPPED_THREADS.lock());
    for t in threads {
        let _ = t.join();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn cant_create(e: io::Error) -> ListenError {
    ListenError::CantCreate(format!("cannot create the server: {e}"))
}

fn bind(ip: BindIp, port: u16) -> Result<TcpListener, ListenError> {
    let classify = |addr: SocketAddr, e: io::Error| match e.kind() {
        io::ErrorKind::AddrInUse => ListenError::InUse(format!("cannot listen on {addr}: the port is already in use")),
        io::ErrorKind::AddrNotAvailable => {
            ListenError::BadAddress(format!("cannot listen on {addr}: no interface has this address"))
        }
        _ => ListenError::CantCreate(format!("cannot listen on {addr}: {e}")),
    };
    match ip {
        BindIp::Ip(ip) => {
            let addr = SocketAddr::new(ip, port);
            listener(addr).map_err(|e| classify(addr, e))
        }
        // "*": one dual-stack IPv6 socket serves IPv4 too; without IPv6, plain IPv4.
        BindIp::Any => {
            let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
            match listener(v6) {
                Ok(l) => Ok(l),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(classify(v6, e)),
                Err(_) => {
                    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
                    listener(v4).map_err(|e| classify(v4, e))
                }
            }
        }
    }
}

/// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`). std and mio use
/// 128, which drops SYNs when a crowd connects at once; each dropped SYN costs that client a
/// one-second retransmit.
pub const LISTEN_BACKLOG: i32 = 4096;

fn listener(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // So that a restarted server can bind while old connections sit in TIME_WAIT. Not on
    // Windows, where SO_REUSEADDR lets another process take over a port in use.
    #[cfg(not(windows))]
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Whether peer `id` receives a multiplayer packet sent to `target` (`MultiplayerPeer`'s
/// convention: `> 0` that peer, `0` everyone, `< 0` everyone but `-target`). `-i32::MIN` is not an
/// id, so that target excludes no one.
pub fn is_recipient(target: PeerId, id: PeerId) -> bool {
    match target {
        0 => true,
        t if t > 0 => id == t,
        t => Some(id) != t.checked_neg(),
    }
}

/// Messages longer than this, once read by the game, make the I/O side trim freed memory when
/// idle (`Command::Released`).
const LARGE_MESSAGE: usize = 64 * 1024;

/// Why a send or close was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The connection is closing or closed.
    NotOpen,
    /// The peer's queue is full; the named limit would be exceeded.
    Full(&'static str),
}

/// Why a recipient of `Server::broadcast` did not get the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BroadcastError {
    /// Named in `to`, but no such peer is connected.
    UnknownPeer,
    Send(SendError),
}

/// Why a multiplayer `put_packet` failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetError {
    UnknownPeer(PeerId),
    /// These recipients did not get the message.
    Refused(Vec<(PeerId, SendError)>),
}

/// Why a close was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseError {
    NotOpen,
    /// RFC 6455 §7.4: only 1000-1003, 1007-1014 and 3000-4999 may be sent.
    BadCode(u16),
}

/// The longest close reason (a Close frame's payload is at most 125 bytes, 2 of them the code).
pub const MAX_CLOSE_REASON: usize = 123;

/// The game's handle on one peer. Cheap to clone; stays valid (and harmless) after the peer or
/// the whole server is gone: sends then fail with `NotOpen`, queued messages can still be read.
#[derive(Clone, Debug)]
pub struct PeerHandle {
    shared: Arc<PeerShared>,
    link: Arc<Link>,
}

impl PeerHandle {
    pub fn id(&self) -> PeerId {
        self.shared.id
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The upgrade request this peer came with.
    pub fn request(&self) -> &Arc<Request> {
        &self.shared.request
    }

    /// `Closed` as soon as the I/O thread has died, even before the game has polled.
    pub fn state(&self) -> PeerState {
        if self.link.has_failed() {
            return PeerState::Closed;
        }
        self.shared.state()
    }

    /// Queues one message. Fails if the connection is closing or the peer's outbound limits
    /// would be exceeded; never drops it later.
    pub fn send(&self, data: impl Into<Bytes>, text: bool) -> Result<(), SendError> {
        if self.state() != PeerState::Open {
            return Err(SendError::NotOpen);
        }
        let data = data.into();
        self.shared.reserve_outbound(data.len()).map_err(SendError::Full)?;
        self.link.command(Command::Send {
            id: self.shared.id,
            packet: Packet { data, text },
        });
        Ok(())
    }

    /// Starts the close handshake. A reason over 123 bytes is cut at a character boundary;
    /// returns whether it was.
    pub fn close(&self, code: u16, reason: &str) -> Result<bool, CloseError> {
        if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
            return Err(CloseError::BadCode(code));
        }
        if self.state() != PeerState::Open {
            return Err(CloseError::NotOpen);
        }
        let mut end = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        self.shared.advance(PeerState::Closing);
        self.link.command(Command::Close {
            id: self.shared.id,
            code,
            reason: reason[..end].to_owned(),
        });
        Ok(end < reason.len())
    }

    /// Takes the oldest message the game was told about.
    pub fn pop(&self) -> Option<Packet> {
        let packet = self.shared.inbox.lock().pop_front()?;
        self.taken(&packet);
        Some(packet)
    }

    /// The game has read `packet`: it no longer counts against the inbound limits. A large one
    /// will be freed soon (the game copies it out at once): the I/O side hands that memory back to
    /// the system once it is idle.
    fn taken(&self, packet: &Packet) {
        if self.shared.sub_inbound(packet.data.len()) && self.shared.state() != PeerState::Closed {
            self.link.command(Command::Resume { id: self.shared.id });
        }
        if packet.data.len() > LARGE_MESSAGE {
            self.link.command(Command::Released);
        }
    }

    pub fn available(&self) -> usize {
        self.shared.inbox.lock().len()
    }

    /// This peer's counters (totals, queues, connected time).
    pub fn shared(&self) -> &PeerShared {
        &self.shared
    }

    /// The last round trip the heartbeat measured (`None` before the first pong).
    pub fn round_trip(&self) -> Option<std::time::Duration> {
        self.shared.round_trip()
    }

    pub fn outbound_buffered(&self) -> usize {
        self.shared.outbound_bytes()
    }

    pub fn set_no_delay(&self, enabled: bool) {
        if self.shared.state() != PeerState::Closed {
            self.link.command(Command::SetNoDelay {
                id: self.shared.id,
                enabled,
            });
        }
    }

    pub fn max_packet_size(&self) -> usize {
        self.shared.limits.outbound_buffer_size
    }
}
