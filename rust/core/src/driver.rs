//! The mio shell: one poll owning the listener and every connection's socket, run either on an
//! I/O thread of its own (`IoMode::Thread`: each turn waits for readiness, a wake from the game
//! thread, or the nearest deadline) or by the game thread's `poll()` one turn at a time without
//! waiting (`IoMode::Inline`). It only moves things: sockets accepted go to the `Endpoint` (which
//! decides whether to take them), readiness and the game's commands go to the endpoint, and the
//! endpoint's events go to the game at the end of each turn, all at once. The turn is the same
//! code in both modes: apply the game's commands; accept every pending connection; let each ready
//! connection read and write; apply the commands that came meanwhile; fire expired deadlines;
//! write out what the turn queued; publish the turn's events.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use crate::channel::Channel;
use crate::connection::Settings;
use crate::endpoint::{Admission, Endpoint};
use crate::event::{Command, Event};
use crate::os::{accept_error_text, defer_to_other_threads, trim_memory};
use crate::socket::Socket;
use crate::stats::bump;

pub(crate) const WAKER: Token = Token(0);
pub(crate) const LISTENER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;
/// After `accept` fails for lack of resources (EMFILE and the like), try again after this long,
/// doubling up to `ACCEPT_RETRY_MAX` while it keeps failing (and at once when a connection of
/// ours closes and frees a descriptor).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
const ACCEPT_RETRY_MAX: Duration = Duration::from_secs(1);
/// After connections closed or let go of a large buffer, once the I/O thread has had nothing to do
/// for this long, freed memory is handed back to the system (see `trim_memory`; with inline I/O on
/// a short-lived thread of its own, so that the game's frame does not wait for it).
const TRIM_AFTER_IDLE: Duration = Duration::from_secs(1);

pub(crate) struct Driver {
    poll: Poll,
    /// `None` once the server is stopping (closed first, so the port is free at once).
    listener: Option<TcpListener>,
    channel: Arc<Channel>,
    endpoint: Endpoint<Socket>,
    accept_retry: Option<Instant>,
    /// Accepting stopped because the game has not taken its events (`Channel::backlog_full`).
    accept_paused: bool,
    /// `accept` is failing for lack of resources (the game was told once), and the current
    /// wait before the next try.
    accept_failing: bool,
    accept_backoff: Duration,
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
    events: Vec<Event>,
    commands: Vec<Command>,
}

impl Driver {
    pub(crate) fn new(poll: Poll, listener: TcpListener, channel: Arc<Channel>, settings: Settings) -> Driver {
        let tls = settings.config.tls.clone();
        let busy_poll = settings.config.busy_poll;
        Driver {
            poll,
            listener: Some(listener),
            channel,
            endpoint: Endpoint::new(settings, tls),
            accept_retry: None,
            accept_paused: false,
            accept_failing: false,
            accept_backoff: ACCEPT_RETRY,
            freed_since_trim: false,
            last_busy: Instant::now(),
            busy_poll,
            handed_over: None,
            accepted: 0,
            events: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// Runs until the game thread stops the server. A panic is caught and reported to the game
    /// thread (its next `poll` stops the server with an error) instead of taking the process down.
    pub(crate) fn run_guarded(self) {
        defer_to_other_threads();
        let channel = self.channel.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || self.run()));
        // The driver (and with it the listener) is gone, whatever happened.
        channel.io.listener_closed();
        if let Err(failure) = failure_of("the I/O thread", result) {
            channel.io.set_failure(failure);
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
            self.endpoint.flush(now);
            self.hand_over(now);
            Ok(())
        }));
        failure_of("the server's I/O", result)
    }

    /// One turn of the event loop: wait at most `timeout` for readiness (or a wake); apply the
    /// game's commands; accept every pending connection; let each ready connection read and write;
    /// apply the commands that came meanwhile;
    /// fire expired deadlines; write out what the turn queued; publish the turn's events at once.
    /// Returns `false` once the game has asked the server to stop, or a graceful shutdown is over.
    fn turn(&mut self, readiness: &mut Events, timeout: Option<Duration>) -> std::io::Result<bool> {
        if self.channel.io.is_stopping() {
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
        if self.channel.io.is_stopping() {
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
                    let Some(sock) = self.endpoint.socket_mut(key) else {
                        continue;
                    };
                    sock.ready(event.is_read_closed() || event.is_error());
                    // A reset: the client is gone even if reading is paused (a full queue)
                    // and nothing would read the socket to find out.
                    if event.is_error() && !matches!(sock.tcp.take_error(), Ok(None)) {
                        self.endpoint.reset(key, now);
                        continue;
                    }
                    let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                    self.endpoint.ready(key, readable, event.is_writable(), now);
                }
            }
        }
        if self.accept_retry.is_some_and(|t| t <= now) {
            self.accept_retry = None;
            self.accept(now);
        }
        if self.accept_paused && !self.channel.backlog_full(self.endpoint.events().len()) {
            self.accept_paused = false;
            self.accept(now);
        }
        self.apply_commands(now)?;
        self.endpoint.handle_timeout(now);
        self.endpoint.flush(now);
        self.hand_over(now);
        // A graceful shutdown is over: the I/O thread ends (the game stops the server).
        Ok(!self.endpoint.is_drained())
    }

    /// Publishes the turn's events, and lets go of the sockets of connections that are gone.
    fn hand_over(&mut self, now: Instant) {
        let mut closed = 0;
        for mut sock in self.endpoint.take_closed() {
            let _ = self.poll.registry().deregister(&mut sock.tcp);
            closed += 1;
        }
        if closed > 0 && self.accept_failing {
            // Descriptors are free again.
            self.accept_retry = Some(now);
        }
        self.freed_since_trim |= self.endpoint.take_freed();
        self.endpoint.take_events(&mut self.events);
        if !self.events.is_empty() {
            self.handed_over = Some(now);
        }
        self.channel.publish(&mut self.events);
        if self.endpoint.is_drained() {
            // After the last events are published (the game reads this first, then takes them).
            self.channel.io.set_drained();
        }
    }

    /// A graceful shutdown (`Server::shut_down`): the listener closes first (the port is free for
    /// a new process at once; clients still in the kernel's queue are reset, so a proxy tries its
    /// next upstream), then every connection is closed as `Endpoint::shut_down` says.
    pub(crate) fn shut_down_gracefully(&mut self, code: u16, reason: &str, timeout: Duration, now: Instant) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.accept_retry = None;
        self.accept_paused = false;
        self.channel.io.listener_closed();
        self.endpoint.shut_down(code, reason, timeout, now);
    }

    /// Inline I/O: the shutdown begins here and now, and the Close frames are written at once
    /// (errors as in `turn_now`).
    pub(crate) fn shut_down_now(&mut self, code: u16, reason: &str, timeout: Duration) -> Result<(), String> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let now = Instant::now();
            self.apply_commands(now)?;
            self.shut_down_gracefully(code, reason, timeout, now);
            self.endpoint.flush(now);
            self.hand_over(now);
            Ok(())
        }));
        failure_of("the server's I/O", result)
    }

    /// The game thread's `stop()` waits only for the listener to close (so `listen` on the same
    /// port works at once); every connection is closed after that, on this thread.
    fn shut_down(mut self) {
        drop(self.listener.take());
        self.channel.io.listener_closed();
        drop(self);
    }

    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if self.endpoint.has_flush_due() {
            return Some(Duration::ZERO);
        }
        let timer = self.endpoint.next_deadline();
        let next = match (timer, self.accept_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map(|t| t.saturating_duration_since(now))
    }

    fn accept(&mut self, now: Instant) {
        loop {
            // The game is not polling: leave new clients in the kernel's queue.
            if self.channel.backlog_full(self.endpoint.events().len()) {
                self.accept_paused = true;
                return;
            }
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                // Refused connections are accepted and closed at once, as Godot's server does.
                Ok(_) if self.channel.io.is_refusing() => bump(&self.endpoint.settings().totals.refused, 1),
                Ok((mut stream, addr)) => {
                    let Admission::Take(ticket) = self.endpoint.admit(addr) else {
                        continue; // closed without an answer
                    };
                    let token = Token(self.endpoint.next_key() + FIRST_CONNECTION);
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
                    match self.endpoint.open(ticket, Socket::new(stream), now) {
                        Some(key) => debug_assert_eq!(Token(key + FIRST_CONNECTION), token),
                        None => continue,
                    }
                    self.accepted += 1;
                    // Registration reports data that is already waiting, so no read is due here.
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // Every waiting client has been taken: a shortage is over (not merely eased
                    // by one descriptor coming free).
                    if self.accept_failing {
                        self.accept_failing = false;
                        self.accept_backoff = ACCEPT_RETRY;
                        self.channel.io.notice(false, "accepting connections again".into());
                    }
                    return;
                }
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::ConnectionAborted) => {}
                Err(e) => {
                    // Out of file descriptors or memory: the listener's readiness will not be
                    // reported again while connections wait, so come back on a timer (or as soon
                    // as one of ours closes). The game is told once per episode.
                    self.channel.io.count_accept_error();
                    if !self.accept_failing {
                        self.accept_failing = true;
                        self.channel.io.notice(true, accept_error_text(&e));
                    }
                    self.accept_retry = Some(now + self.accept_backoff);
                    self.accept_backoff = (self.accept_backoff * 2).min(ACCEPT_RETRY_MAX);
                    return;
                }
            }
        }
    }

    fn apply_commands(&mut self, now: Instant) -> std::io::Result<()> {
        let mut commands = std::mem::take(&mut self.commands);
        self.channel.take_commands(&mut commands);
        if !commands.is_empty() {
            // The game has answered (or acted): busy polling waits for nothing more.
            self.handed_over = None;
        }
        for command in commands.drain(..) {
            match command {
                Command::Released => {
                    self.freed_since_trim = true;
                    self.last_busy = now;
                }
                Command::ShutDown { code, reason, timeout } => self.shut_down_gracefully(code, &reason, timeout, now),
                Command::InjectFailure { panic: true } => panic!("failure injected by a test"),
                Command::InjectFailure { panic: false } => {
                    return Err(std::io::Error::other("failure injected by a test"))
                }
                command => self.endpoint.command(command, now),
            }
        }
        self.commands = commands;
        Ok(())
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
