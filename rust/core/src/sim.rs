//! The deterministic simulator: the real `Endpoint` (admission, caps, connections, TLS-free
//! transport, timers) driven by a shell of in-memory sockets (`Pipe`) and virtual time, so that
//! any scenario of many clients, the game's commands and time steps, in any order of readiness,
//! runs the same every time, without threads or sleeps. The model is quinn-proto's test `Pair`.
//!
//! Every input is one shell action: a client connects, sends bytes, closes its end, resets, finds
//! room to read again; the game gives a command; time passes; a turn ends (`turn`: what the inputs
//! queued is written, as the driver does at the end of each turn).

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::ServerConfig;
use crate::connection::Settings;
use crate::endpoint::{Admission, Endpoint};
use crate::event::{Command, Event};
use crate::stats::Totals;
use crate::transport::Socket;

/// A socket as the server sees it: `input` is what the client sent, `output` what we wrote.
#[derive(Debug, Default)]
pub struct Pipe {
    pub input: VecDeque<u8>,
    pub output: Vec<u8>,
    /// Count what is written, but do not keep it (long fuzzing runs).
    pub discard_output: bool,
    /// Bytes ever written.
    pub written: usize,
    /// The client's end of stream comes after `input`.
    pub eof: bool,
    /// Bytes the "kernel" still takes before writes would block; `None`: no limit.
    pub room: Option<usize>,
    /// Our FIN went out (`Socket::shutdown_write`).
    pub fin: bool,
    /// Reads served (each a system call on a real socket).
    pub reads: usize,
    /// Which simulated client this is (`Sim`).
    pub tag: u64,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.input.len());
        for (slot, b) in buf.iter_mut().zip(self.input.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.room {
            Some(0) => return Err(ErrorKind::WouldBlock.into()),
            Some(room) => {
                let n = buf.len().min(*room);
                *room -= n;
                n
            }
            None => buf.len(),
        };
        if !self.discard_output {
            self.output.extend_from_slice(&buf[..n]);
        }
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for Pipe {
    fn shutdown_write(&mut self) {
        self.fin = true;
    }
}

/// A server's endpoint with in-memory clients and a virtual clock (see the module's text).
pub struct Sim {
    pub endpoint: Endpoint<Pipe>,
    pub now: Instant,
    /// Client → the endpoint's key for its socket, while the endpoint holds it.
    keys: HashMap<u64, usize>,
    /// The sockets of clients the endpoint let go of (with what was written to them).
    gone: HashMap<u64, Pipe>,
    next_tag: u64,
    events: Vec<Event>,
}

impl Sim {
    /// `config`'s TLS is not simulated (plain `ws://` only).
    pub fn new(config: &ServerConfig) -> Sim {
        Sim {
            endpoint: Endpoint::new(Settings::new(config), None),
            now: Instant::now(),
            keys: HashMap::new(),
            gone: HashMap::new(),
            next_tag: 1,
            events: Vec::new(),
        }
    }

    pub fn totals(&self) -> &Totals {
        &self.endpoint.settings().totals
    }

    /// A client connects from `addr`. Returns its tag, or `None` if the endpoint refused it (the
    /// socket was closed without a word).
    pub fn connect(&mut self, addr: SocketAddr) -> Option<u64> {
        let Admission::Take(ticket) = self.endpoint.admit(addr) else {
            return None;
        };
        let tag = self.next_tag;
        self.next_tag += 1;
        let pipe = Pipe { tag, ..Pipe::default() };
        let key = self.endpoint.open(ticket, pipe, self.now)?;
        self.keys.insert(tag, key);
        Some(tag)
    }

    /// Client `tag` sends `bytes`; its socket reports them.
    pub fn send(&mut self, tag: u64, bytes: &[u8]) {
        if let Some(pipe) = self.pipe_mut(tag) {
            pipe.input.extend(bytes);
            self.ready(tag, true, false);
        }
    }

    /// Client `tag` closes its end (after what it sent).
    pub fn close(&mut self, tag: u64) {
        if let Some(pipe) = self.pipe_mut(tag) {
            pipe.eof = true;
            self.ready(tag, true, false);
        }
    }

    /// Client `tag`'s connection is reset.
    pub fn reset(&mut self, tag: u64) {
        if let Some(&key) = self.keys.get(&tag) {
            self.endpoint.reset(key, self.now);
            self.collect();
        }
    }

    /// How much client `tag`'s socket takes before writes would block (`None`: no limit); more
    /// room is reported as writable.
    pub fn set_room(&mut self, tag: u64, room: Option<usize>) {
        if let Some(pipe) = self.pipe_mut(tag) {
            pipe.room = room;
            self.ready(tag, false, true);
        }
    }

    /// One of the game's commands.
    pub fn command(&mut self, command: Command) {
        self.endpoint.command(command, self.now);
        self.collect();
    }

    /// The end of a turn: what this turn's inputs queued is written.
    pub fn turn(&mut self) {
        self.endpoint.flush(self.now);
        self.collect();
    }

    /// Time passes: every deadline up to then fires, and the turn ends.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.endpoint.handle_timeout(self.now);
        self.turn();
    }

    /// Runs the clock to the next deadline, if any (and ends the turn).
    pub fn advance_to_next_deadline(&mut self) -> bool {
        match self.endpoint.next_deadline() {
            Some(at) => {
                let by = at.saturating_duration_since(self.now);
                self.advance(by);
                true
            }
            None => false,
        }
    }

    /// The events so far, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.endpoint.take_events(&mut self.events);
        std::mem::take(&mut self.events)
    }

    /// What the server wrote to client `tag` since the last call.
    pub fn received(&mut self, tag: u64) -> Vec<u8> {
        match self.pipe_mut(tag) {
            Some(pipe) => std::mem::take(&mut pipe.output),
            None => self
                .gone
                .get_mut(&tag)
                .map(|p| std::mem::take(&mut p.output))
                .unwrap_or_default(),
        }
    }

    /// Whether the endpoint still holds client `tag`'s socket.
    pub fn is_held(&self, tag: u64) -> bool {
        self.keys.contains_key(&tag)
    }

    /// Client `tag`'s socket, held or let go of.
    pub fn pipe(&mut self, tag: u64) -> Option<&Pipe> {
        match self.keys.get(&tag) {
            Some(&key) => self.endpoint.socket_mut(key).map(|p| &*p),
            None => self.gone.get(&tag),
        }
    }

    /// The clients whose sockets the endpoint still holds.
    pub fn held(&self) -> Vec<u64> {
        let mut tags: Vec<u64> = self.keys.keys().copied().collect();
        tags.sort_unstable();
        tags
    }

    fn pipe_mut(&mut self, tag: u64) -> Option<&mut Pipe> {
        let key = *self.keys.get(&tag)?;
        self.endpoint.socket_mut(key)
    }

    fn ready(&mut self, tag: u64, readable: bool, writable: bool) {
        if let Some(&key) = self.keys.get(&tag) {
            self.endpoint.ready(key, readable, writable, self.now);
            self.collect();
        }
    }

    /// Moves the sockets the endpoint let go of out of the table.
    fn collect(&mut self) {
        for pipe in self.endpoint.take_closed() {
            self.keys.remove(&pipe.tag);
            self.gone.insert(pipe.tag, pipe);
        }
    }
}

impl Sim {
    /// Lets a long time pass in steps of `step` until no connection is held or `limit` has
    /// passed. Returns whether none is held.
    pub fn run_until_empty(&mut self, step: Duration, limit: Duration) -> bool {
        let end = self.now + limit;
        while !self.endpoint.is_empty() && self.now < end {
            self.advance(step);
        }
        self.endpoint.is_empty()
    }
}
