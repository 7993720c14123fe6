//! The channel between the game thread and the I/O thread: the event and command queues, the
//! waker (one wake per batch of commands, held while `poll()` emits its signals), and the gate
//! that stops accepting while the game does not take its events.
//!
//! Both queues are bounded without dropping anything: the I/O thread stops reading a peer once
//! that peer's undrained messages reach its inbound limits, the game thread refuses a send past a
//! peer's outbound limits, and while more than `max_event_backlog` events wait for the game (it is
//! not calling `poll()`: a paused tree, a long load) no new connection is accepted, so connection
//! churn cannot grow the event queue either.

use std::sync::atomic::{AtomicBool, Ordering::*};

use parking_lot::Mutex;

use crate::event::{Bytes, Command, Event};
use crate::io_state::IoState;
use crate::payload::Payloads;

/// The two queues between the threads and the means to wake the I/O thread.
#[derive(Debug)]
pub struct Channel {
    events: Mutex<Vec<Event>>,
    commands: Mutex<Vec<Command>>,
    /// `None` with inline I/O (`IoMode::Inline`): the game thread runs the event loop itself
    /// and takes the commands in its own `poll()`, so there is nobody to wake.
    waker: Option<mio::Waker>,
    wake_pending: AtomicBool,
    /// Game thread inside `poll()`: defer wakes (see `hold_wakes`).
    holding: AtomicBool,
    wake_owed: AtomicBool,
    gate: AcceptGate,
    /// Game thread: the chunk its outgoing messages are copied into (see `payload`).
    payloads: Mutex<Payloads>,
    /// The I/O side's state as the game sees it (stopping, refusing, failure, notices).
    pub io: IoState,
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

impl Channel {
    pub fn new(waker: Option<mio::Waker>, max_backlog: usize) -> Channel {
        Channel {
            events: Mutex::new(Vec::new()),
            commands: Mutex::new(Vec::new()),
            waker,
            wake_pending: AtomicBool::new(false),
            holding: AtomicBool::new(false),
            wake_owed: AtomicBool::new(false),
            gate: AcceptGate::new(max_backlog),
            payloads: Mutex::new(Payloads::default()),
            io: IoState::default(),
        }
    }

    /// Game thread: a copy of an outgoing message's bytes, to put in a command (see `payload`).
    pub fn copy_payload(&self, data: &[u8]) -> Bytes {
        self.payloads.lock().copy(data)
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

    /// Game thread: the server stops; the I/O thread is woken to see it.
    pub fn stop(&self) {
        self.io.stop();
        if let Some(waker) = &self.waker {
            let _ = waker.wake();
        }
    }
}
