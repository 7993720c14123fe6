//! The game thread's side of a running server: start the I/O thread, take its events in Godot's
//! order, and the table of peers the game knows (stopping and the graceful shutdown: `lifecycle`;
//! sends to many: `send`; topics and the bus: `topics`).
//!
//! `poll()` costs O(events since the last poll): idle connections cost nothing here.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::{Events, Interest, Poll, Waker};

use crate::channel::Channel;
use crate::config::{IoMode, ServerConfig};
use crate::connection::Settings;
use crate::driver::{Driver, LISTENER, WAKER};
use crate::error::{DecideError, ListenError};
use crate::event::{Command, Event, Packet, PeerId, PeerState, Verdict};
use crate::listen::{bind, cant_create};
use crate::peer::PeerShared;
use crate::peer_handle::PeerHandle;
use crate::request::Request;
use crate::stats::Totals;

mod lifecycle;
mod send;
mod topics;
pub use lifecycle::join_stopped_io_threads;
pub use send::is_recipient;
pub use topics::Published;

/// What the game should be told, one at a time, from `Server::next_signal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A request waits for `Server::decide` (`ServerConfig::authorize`); `Server::request` has it.
    UpgradeRequested {
        id: PeerId,
    },
    /// A plain HTTP request waits for the game's answer (`ServerConfig::answer_requests`;
    /// `Server::decide` with `Verdict::Answer`). Its end is not signalled: a late answer gets
    /// `DecideError::NoRequest`.
    HttpRequest {
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
    /// The bus to the other processes (`ServerConfig::bus`) is connected (again).
    BusConnected,
    /// The bus is down (or could not be reached): topics reach local subscribers only.
    BusDisconnected {
        reason: String,
    },
    /// This many publishes since the last such signal did not reach the bus.
    BusPublishFailed {
        count: u64,
    },
}

pub struct Server {
    channel: Arc<Channel>,
    /// Statistics (see `Totals`).
    totals: Arc<Totals>,
    /// The event loop's home; `None` once stopped.
    io: Option<Io>,
    local_addr: SocketAddr,
    peers: HashMap<PeerId, PeerHandle>,
    /// Requests the game was asked to decide on, until they become peers or end.
    requests: HashMap<PeerId, PendingRequest>,
    /// Events taken from the I/O thread and not yet turned into signals, in emission order.
    /// Events whose signals `next_signal` has yet to emit, in Godot's order.
    to_signal: VecDeque<Event>,
    /// The events `poll` just took from the channel (kept to reuse its allocation).
    taken: Vec<Event>,
    /// Of those, the events of peers the game does not know yet: signalled after the others.
    of_new_peers: Vec<Event>,
    /// Multiplayer mode and `queue_messages`: every peer's messages, in arrival order, with their
    /// sender.
    queue: Option<VecDeque<(Arc<PeerShared>, Packet)>>,
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
    /// A graceful shutdown has begun (`shut_down`): not listening, but polled until it is over.
    shutting_down: bool,
    /// The shutdown has no connection left and `poll` has taken every event about them.
    drained: bool,
    /// Who is subscribed to what (`topics`).
    topics: crate::topics::Topics,
    /// The link to the other processes, if configured.
    bus: Option<crate::bus::Bus>,
    /// The bus's signals, emitted before the peers' (they concern none of them).
    bus_signals: VecDeque<Signal>,
    /// Failed publishes already signalled.
    bus_failed_told: u64,
    /// Local deliveries of bus messages refused by a full queue.
    bus_undelivered: u64,
    /// (Kept to reuse its allocation.)
    bus_received: Vec<crate::bus::BusMessage>,
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
        let channel = Arc::new(Channel::new(waker, config.max_event_backlog.max(1)));
        let settings = Settings::new(config);
        let totals = settings.totals.clone();
        let driver = Driver::new(poll, listener, channel.clone(), settings);
        let bus = match &config.bus {
            Some(b) => Some(crate::bus::Bus::start(b).map_err(|e| ListenError::CantCreate(e.0))?),
            None => None,
        };
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
            channel,
            totals,
            io: Some(io),
            local_addr,
            peers: HashMap::new(),
            requests: HashMap::new(),
            to_signal: VecDeque::new(),
            taken: Vec::new(),
            of_new_peers: Vec::new(),
            queue: (config.multiplayer || config.queue_messages).then(VecDeque::new),
            failing: HashMap::new(),
            fail_next: Vec::new(),
            failing_unread: Vec::new(),
            dead: false,
            shutting_down: false,
            drained: false,
            topics: Default::default(),
            bus,
            bus_signals: VecDeque::new(),
            bus_failed_told: 0,
            bus_undelivered: 0,
            bus_received: Vec::new(),
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
        self.poll_bus();
        if let Some(Io::Inline { driver, readiness }) = &mut self.io {
            run_inline(driver, &self.channel, |d| d.turn_now(readiness));
            if driver.as_mut().is_some_and(|d| d.trim_due(readiness)) {
                // It takes milliseconds after a large release: not on the game thread. Joined
                // with the stopped I/O threads (`join_stopped_io_threads`).
                if let Ok(t) = std::thread::Builder::new()
                    .name("websocket-server-trim".into())
                    .spawn(crate::os::trim_memory)
                {
                    lifecycle::join_later(t);
                }
            }
        }
        // (The flag first: no lock in the frames where nothing failed, i.e. all of them.)
        let failure = if self.channel.io.has_failed() {
            self.channel.io.take_failure()
        } else {
            None
        };
        // (Read before taking the events: the I/O side sets it after publishing the last ones.)
        let drained = self.shutting_down && self.channel.io.is_drained();
        // If the last batch was not drained to the end, its sends still wait for a wake.
        self.channel.release_wakes();
        self.channel.take_events(&mut self.taken);
        if !self.taken.is_empty() {
            self.channel.hold_wakes();
        }
        for event in self.taken.drain(..) {
            if self.peers.contains_key(&event.id()) || self.requests.contains_key(&event.id()) {
                self.to_signal.push_back(event);
            } else {
                self.of_new_peers.push(event);
            }
        }
        self.to_signal.extend(self.of_new_peers.drain(..));
        self.drained |= drained;
        let Some(failure) = failure else {
            return Ok(());
        };
        self.dead = true;
        let mut ids: Vec<PeerId> = self.peers.keys().copied().collect();
        let mut asked: Vec<PeerId> = self.requests.keys().copied().collect();
        for e in &self.to_signal {
            match e {
                Event::Connected { peer, .. } => ids.push(peer.id),
                Event::Requested { id, .. } => asked.push(*id),
                _ => {}
            }
        }
        let gone: std::collections::HashSet<PeerId> = self
            .to_signal
            .iter()
            .filter_map(|e| match e {
                Event::Disconnected { id, .. } | Event::RequestEnded { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        // A request that was accepted but not yet connected ends as a request.
        ids.retain(|id| !asked.contains(id));
        for id in ids.into_iter().filter(|id| !gone.contains(id)) {
            self.to_signal.push_back(Event::Disconnected { id, clean: false });
        }
        for id in asked.into_iter().filter(|id| !gone.contains(id)) {
            self.to_signal.push_back(Event::RequestEnded {
                id,
                why: "the server stopped",
            });
        }
        Err(failure)
    }

    /// Whether `next_signal` has anything to go through (most frames it has not).
    pub fn has_pending(&self) -> bool {
        !self.to_signal.is_empty() || !self.bus_signals.is_empty()
    }

    /// The I/O thread died and every signal about it has been queued (see `poll`).
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Tests only: makes the I/O thread die, by a panic or by an error, as a bug or a failing
    /// system call would.
    #[doc(hidden)]
    pub fn inject_io_failure(&self, panic: bool) {
        self.channel.command(Command::InjectFailure { panic });
    }

    /// The next signal to emit, with the peer table already updated for it: a `DataReceived`
    /// message is in the peer's queue, a `Disconnected` peer is out of the table.
    ///
    /// From `poll()` until this returns `None`, sends made by the game (typically from the signal
    /// handlers) wake the I/O thread once, at the end, rather than once each.
    pub fn next_signal(&mut self) -> Option<Signal> {
        if let Some(signal) = self.bus_signals.pop_front() {
            return Some(signal);
        }
        loop {
            let Some(event) = self.to_signal.pop_front() else {
                self.channel.release_wakes();
                if let Some(Io::Inline { driver, .. }) = &mut self.io {
                    // The handlers' replies go out now, not at the next poll.
                    run_inline(driver, &self.channel, |d| d.write_now());
                }
                return None;
            };
            let signal = match event {
                Event::Requested { id, request } => {
                    let upgrade = request.upgrade;
                    self.requests.insert(id, PendingRequest { request, decided: None });
                    if upgrade {
                        Signal::UpgradeRequested { id }
                    } else {
                        Signal::HttpRequest { id }
                    }
                }
                Event::RequestEnded { id, why } => {
                    let Some(ended) = self.requests.remove(&id) else {
                        continue;
                    };
                    self.channel.command(Command::Release { id });
                    if ended.decided == Some(false) || !ended.request.upgrade {
                        continue; // the game refused (or answered) it itself, or it was plain HTTP
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
                            channel: self.channel.clone(),
                        },
                    );
                    Signal::Connected { id, protocol, resource }
                }
                Event::Message { id, packet } => match (self.peers.get(&id), &mut self.queue) {
                    (Some(p), Some(queue)) => {
                        queue.push_back((p.shared.clone(), packet));
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
                    self.forget_topics(id);
                    self.channel.command(Command::Release { id });
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
        if !pending.request.upgrade && matches!(verdict, Verdict::Accept { .. }) {
            return Err(DecideError::NotUpgrade(id));
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
        self.channel.command(Command::Decide { id, verdict });
        Ok(())
    }

    /// Log lines from the I/O thread since the last call (`true`: an error).
    pub fn take_notices(&self) -> Vec<(bool, String)> {
        self.channel.io.take_notices()
    }

    /// How often `accept` failed for lack of resources (file descriptors).
    pub fn accept_errors(&self) -> u64 {
        self.channel.io.accept_errors()
    }

    /// Clients refused by `max_connections`, `max_handshakes_per_address` or
    /// `refuse_new_connections`.
    pub fn refused_connections(&self) -> u64 {
        crate::stats::read(&self.totals.refused)
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
        self.queue.as_ref()?.front().map(|(p, _)| p.id)
    }

    /// Multiplayer mode and `queue_messages`: messages from all peers waiting to be read.
    pub fn queued_packets(&self) -> usize {
        self.queue.as_ref().map_or(0, VecDeque::len)
    }

    /// Multiplayer mode and `queue_messages`: takes the next packet from any peer, with its sender.
    pub fn pop_packet(&mut self) -> Option<(PeerId, Packet)> {
        let (peer, packet) = self.queue.as_mut()?.pop_front()?;
        crate::peer_handle::taken(&peer, &self.channel, &packet);
        let id = peer.id;
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
        self.channel.command(Command::Fail { id });
    }

    /// Inline I/O: writes what the game has queued now, rather than in the next `poll` (used
    /// after a multi-send: one pass for the whole batch). A failure is reported by the next
    /// `poll`, as any failure of the inline loop. With the I/O thread, nothing to do: it was woken.
    pub fn flush(&mut self) {
        if let Some(Io::Inline { driver, .. }) = &mut self.io {
            if !self.dead {
                run_inline(driver, &self.channel, |d| d.write_now());
            }
        }
    }

    /// New TCP connections are closed at once while this is on.
    pub fn set_refusing(&self, refuse: bool) {
        self.channel.io.set_refusing(refuse);
    }

    /// Drops a peer at once: no close handshake, and no further signal for it.
    pub fn abort(&mut self, id: PeerId) -> bool {
        let Some(peer) = self.peers.remove(&id) else {
            return false;
        };
        peer.shared.advance(PeerState::Closed);
        self.channel.command(Command::Abort { id });
        true
    }

    /// Header lines for the `101` responses of upgrades that finish from now on.
    pub fn set_extra_headers(&self, headers: Vec<String>) {
        self.channel.command(Command::SetExtraHeaders(headers));
    }
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
fn run_inline(
    driver: &mut Option<Box<Driver>>,
    channel: &Channel,
    step: impl FnOnce(&mut Driver) -> Result<(), String>,
) {
    let Some(d) = driver.as_deref_mut() else {
        return;
    };
    if let Err(failure) = step(d) {
        // The loop may be half-way through a change; nothing of it is used again.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(driver.take())));
        channel.io.set_failure(failure);
    }
}

/// A request the game was asked about. `decided`: `None` while it waits, then whether it was
/// accepted.
struct PendingRequest {
    request: Arc<Request>,
    decided: Option<bool>,
}
