//! Topics across processes: a Valkey or Redis server's pub/sub, reached through the `redis`
//! crate's synchronous client on two threads of the bus's own (never the game's or the I/O
//! thread): one holds the subscription connection (it subscribes to the channels of the topics
//! this process has subscribers for, reads what other processes publish, and pings to notice a
//! hung server), the other publishes.
//!
//! On the bus a topic is the channel `prefix + topic`, and a message is one byte for its kind
//! (1 text, 0 binary), the 16 random bytes that name the publishing server, then its bytes: a
//! process skips its own messages (its subscribers got them locally). Redis delivers each message
//! once to every connection subscribed to its channel, in the order of publication: at most once
//! across processes, in order per publisher and topic. While the bus is down nothing crosses:
//! publishes fail (counted and reported to the game), messages of other processes are missed;
//! local delivery goes on. Both threads reconnect with backoff (100 ms doubling to 5 s) and the
//! subscriber subscribes again to every topic wanted.
//!
//! Bounded: publishes waiting for the publisher (`MAX_PENDING_PUBLISHES`; more fail at once) and
//! received messages waiting for the game's `poll` (`MAX_INBOX_MESSAGES`, `MAX_INBOX_BYTES`; more
//! are dropped and counted).

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::ConfigError;

/// Publishes the publisher thread may have waiting (a hung server blocks it for `IO_TIMEOUT`).
pub const MAX_PENDING_PUBLISHES: usize = 4096;
/// Received messages (and their bytes) that may wait for the game's `poll`.
pub const MAX_INBOX_MESSAGES: usize = 65_536;
pub const MAX_INBOX_BYTES: usize = 64 * 1024 * 1024;
/// How long a connect, a write or a publish's answer may take before the bus counts as down.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The subscriber pings this often, and counts the bus as down after `DEAD_AFTER` without an
/// answer or a message (a hung or stopped server: its socket stays open).
pub const PING_EVERY: Duration = Duration::from_secs(1);
pub const DEAD_AFTER: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_millis(100);
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Kind byte + origin.
const HEADER: usize = 17;

/// Where the bus is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusConfig {
    /// `redis://[:password@]host[:port][/db]` (or `valkey://`; no TLS).
    pub url: String,
    /// Put before every topic to make its channel name (several games can share one server).
    pub prefix: String,
}

/// Checks a bus URL without connecting.
pub fn check_url(url: &str) -> Result<(), ConfigError> {
    if url.starts_with("rediss://") || url.starts_with("valkeys://") {
        return Err(ConfigError(format!(
            "bus_url {url:?}: TLS to the bus is not supported (run it on a private network or tunnel it)"
        )));
    }
    redis::Client::open(url)
        .map(|_| ())
        .map_err(|e| ConfigError(format!("bus_url {url:?} is not a redis:// URL: {e}")))
}

/// A message another process published to a topic this one has subscribers for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusMessage {
    pub topic: String,
    pub text: bool,
    pub data: Bytes,
}

/// The bus came up, or went down (with why).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusChange {
    Up,
    Down(String),
}

/// Counters since the bus started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Messages published on the bus (the server took them).
    pub published: u64,
    /// Publishes that did not reach the bus (down, or too many waiting).
    pub failed: u64,
    /// Messages of other processes received.
    pub received: u64,
    /// Received messages dropped: the game did not poll (the inbox was full), or they were not
    /// ours to read (a foreign format, text that is not UTF-8).
    pub dropped: u64,
}

#[derive(Default)]
struct Inbox {
    messages: VecDeque<BusMessage>,
    bytes: usize,
}

#[derive(Default)]
struct State {
    up: bool,
    /// The last change reported was a `Down` (so a failing reconnect is reported once).
    told_down: bool,
    changes: VecDeque<BusChange>,
}

struct Shared {
    /// Counts the subscriber's connections: the publisher's connection from before the latest one
    /// may be stale (the server restarted while nothing was published) and is made again.
    epoch: AtomicU64,
    origin: [u8; 16],
    prefix: String,
    stop: AtomicBool,
    inbox: Mutex<Inbox>,
    state: Mutex<State>,
    published: AtomicU64,
    failed: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
}

/// Changes of state that may wait for the game's `poll` (a bus that flaps while the game does not
/// poll keeps only the latest).
const MAX_CHANGES: usize = 64;

impl State {
    fn push(&mut self, change: BusChange) {
        if self.changes.len() >= MAX_CHANGES {
            self.changes.pop_front();
        }
        self.changes.push_back(change);
    }
}

impl Shared {
    fn set_up(&self) {
        let mut s = self.state.lock();
        if !s.up {
            s.up = true;
            s.told_down = false;
            s.push(BusChange::Up);
        }
    }

    fn set_down(&self, why: String) {
        let mut s = self.state.lock();
        let was_up = std::mem::replace(&mut s.up, false);
        if was_up || !s.told_down {
            s.told_down = true;
            s.push(BusChange::Down(why));
        }
    }

    fn is_up(&self) -> bool {
        self.state.lock().up
    }

    fn channel(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }
}

enum Subscription {
    Add(String),
    Remove(String),
}

/// One server's link to the bus (see the module's text). Dropping it stops its threads (they
/// notice within `TICK`, or when a connection attempt in progress ends).
pub struct Bus {
    shared: Arc<Shared>,
    subscriptions: mpsc::Sender<Subscription>,
    publishes: SyncSender<(String, Vec<u8>)>,
}

impl Bus {
    /// Starts the threads; the first connection is made by them (a bus that is down at start is
    /// reported as `BusChange::Down` and tried again with backoff).
    pub fn start(config: &BusConfig) -> Result<Bus, ConfigError> {
        check_url(&config.url)?;
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| ConfigError(format!("bus_url {:?}: {e}", config.url)))?;
        let shared = Arc::new(Shared {
            origin: {
                use rand::{RngCore, SeedableRng};
                let mut origin = [0u8; 16];
                rand::rngs::StdRng::from_os_rng().fill_bytes(&mut origin);
                origin
            },
            prefix: config.prefix.clone(),
            epoch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            inbox: Mutex::default(),
            state: Mutex::default(),
            published: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let (sub_tx, sub_rx) = mpsc::channel();
        let (pub_tx, pub_rx) = mpsc::sync_channel(MAX_PENDING_PUBLISHES);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| ConfigError(format!("cannot start the bus thread: {e}")))
        };
        let (s, c) = (shared.clone(), client.clone());
        spawn(
            "websocket-server-bus-sub",
            Box::new(move || subscriber(&s, &c, &sub_rx)),
        )?;
        let s = shared.clone();
        spawn(
            "websocket-server-bus-pub",
            Box::new(move || publisher(&s, &client, &pub_rx)),
        )?;
        Ok(Bus {
            shared,
            subscriptions: sub_tx,
            publishes: pub_tx,
        })
    }

    /// A topic got its first local subscriber: hear it from the other processes.
    pub fn subscribe(&self, topic: &str) {
        let _ = self.subscriptions.send(Subscription::Add(self.shared.channel(topic)));
    }

    /// A topic lost its last local subscriber.
    pub fn unsubscribe(&self, topic: &str) {
        let _ = self
            .subscriptions
            .send(Subscription::Remove(self.shared.channel(topic)));
    }

    /// Hands a message to the publisher. `false` (and counted as failed) if the bus is down or
    /// too many publishes wait.
    pub fn publish(&self, topic: &str, text: bool, data: &[u8]) -> bool {
        if !self.shared.is_up() {
            self.shared.failed.fetch_add(1, Relaxed);
            return false;
        }
        let mut payload = Vec::with_capacity(HEADER + data.len());
        payload.push(u8::from(text));
        payload.extend_from_slice(&self.shared.origin);
        payload.extend_from_slice(data);
        match self.publishes.try_send((self.shared.channel(topic), payload)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.failed.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// Moves the messages received since the last call into `into`, oldest first.
    pub fn take_messages(&self, into: &mut Vec<BusMessage>) {
        let mut inbox = self.shared.inbox.lock();
        into.extend(inbox.messages.drain(..));
        inbox.bytes = 0;
    }

    /// The changes of state since the last call, oldest first.
    pub fn take_changes(&self) -> Vec<BusChange> {
        self.shared.state.lock().changes.drain(..).collect()
    }

    pub fn is_up(&self) -> bool {
        self.shared.is_up()
    }

    pub fn stats(&self) -> BusStats {
        BusStats {
            published: self.shared.published.load(Relaxed),
            failed: self.shared.failed.load(Relaxed),
            received: self.shared.received.load(Relaxed),
            dropped: self.shared.dropped.load(Relaxed),
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
    }
}

/// Sleeps `d` in ticks, returning early once the bus is stopped.
fn pause(shared: &Shared, d: Duration) {
    let until = Instant::now() + d;
    while !shared.stop.load(Relaxed) && Instant::now() < until {
        std::thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
    }
}

fn connect(client: &redis::Client, read_timeout: Duration) -> redis::RedisResult<redis::Connection> {
    let conn = client.get_connection_with_timeout(IO_TIMEOUT)?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    conn.set_read_timeout(Some(read_timeout))?;
    Ok(conn)
}

/// The subscription thread: connect, subscribe to every channel wanted, read and ping until the
/// connection fails or the bus stops; again after a backoff.
fn subscriber(shared: &Shared, client: &redis::Client, changes: &Receiver<Subscription>) {
    let mut wanted: HashSet<String> = HashSet::new();
    let apply = |wanted: &mut HashSet<String>, change: Subscription| match change {
        Subscription::Add(c) => wanted.insert(c),
        Subscription::Remove(c) => wanted.remove(&c),
    };
    let mut backoff = BACKOFF_START;
    while !shared.stop.load(Relaxed) {
        while let Ok(change) = changes.try_recv() {
            apply(&mut wanted, change);
        }
        let mut conn = match connect(client, TICK) {
            Ok(c) => c,
            Err(e) => {
                shared.set_down(format!("cannot reach the bus: {e}"));
                pause(shared, backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let mut ps = conn.as_pubsub();
        if !wanted.is_empty() {
            if let Err(e) = ps.subscribe(wanted.iter().collect::<Vec<_>>()) {
                shared.set_down(format!("the bus refused the subscription: {e}"));
                pause(shared, backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        }
        shared.epoch.fetch_add(1, Relaxed);
        shared.set_up();
        backoff = BACKOFF_START;
        let mut alive = Instant::now();
        let mut pinged = Instant::now();
        let why = loop {
            if shared.stop.load(Relaxed) {
                return;
            }
            let mut failed = None;
            while let Ok(change) = changes.try_recv() {
                let result = match &change {
                    Subscription::Add(c) if !wanted.contains(c) => ps.subscribe(c),
                    Subscription::Remove(c) if wanted.contains(c) => ps.unsubscribe(c),
                    _ => Ok(()),
                };
                apply(&mut wanted, change);
                if let Err(e) = result.or_else(|e| if e.is_timeout() { Ok(()) } else { Err(e) }) {
                    failed = Some(format!("the bus connection failed: {e}"));
                    break;
                }
            }
            if let Some(why) = failed {
                break why;
            }
            match ps.get_message() {
                Ok(msg) => {
                    alive = Instant::now();
                    deliver(shared, &msg);
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => break format!("the bus connection failed: {e}"),
            }
            if pinged.elapsed() >= PING_EVERY {
                pinged = Instant::now();
                match ps.ping::<redis::Value>() {
                    Ok(_) => alive = Instant::now(),
                    Err(e) if e.is_timeout() => {}
                    Err(e) => break format!("the bus connection failed: {e}"),
                }
            }
            if alive.elapsed() >= DEAD_AFTER {
                break format!("the bus did not answer for {} s", DEAD_AFTER.as_secs());
            }
        };
        shared.set_down(why);
    }
}

/// A message from the subscription: ours to deliver unless this process published it.
fn deliver(shared: &Shared, msg: &redis::Msg) {
    let Some(topic) = msg.get_channel_name().strip_prefix(shared.prefix.as_str()) else {
        return;
    };
    let payload = msg.get_payload_bytes();
    if payload.len() < HEADER || payload[0] > 1 {
        shared.dropped.fetch_add(1, Relaxed);
        return;
    }
    if payload[1..HEADER] == shared.origin {
        return;
    }
    let text = payload[0] == 1;
    if text && std::str::from_utf8(&payload[HEADER..]).is_err() {
        shared.dropped.fetch_add(1, Relaxed);
        return;
    }
    let data = Bytes::copy_from_slice(&payload[HEADER..]);
    let mut inbox = shared.inbox.lock();
    if inbox.messages.len() >= MAX_INBOX_MESSAGES || inbox.bytes + data.len() > MAX_INBOX_BYTES {
        shared.dropped.fetch_add(1, Relaxed);
        return;
    }
    inbox.bytes += data.len();
    inbox.messages.push_back(BusMessage {
        topic: topic.to_string(),
        text,
        data,
    });
    shared.received.fetch_add(1, Relaxed);
}

/// The publishing thread: one connection, made when needed (and again after a failure, no sooner
/// than the backoff allows); a publish while it cannot connect fails.
fn publisher(shared: &Shared, client: &redis::Client, publishes: &Receiver<(String, Vec<u8>)>) {
    let mut conn: Option<redis::Connection> = None;
    let mut epoch = 0;
    let mut next_try = Instant::now();
    let mut backoff = BACKOFF_START;
    loop {
        let (channel, payload) = match publishes.recv_timeout(TICK) {
            Ok(p) => p,
            Err(RecvTimeoutError::Timeout) if !shared.stop.load(Relaxed) => continue,
            Err(_) => return,
        };
        if epoch != shared.epoch.load(Relaxed) {
            // The bus came back since this connection was made: it may be a dead one.
            conn = None;
            next_try = Instant::now();
        }
        if conn.is_none() && Instant::now() >= next_try {
            epoch = shared.epoch.load(Relaxed);
            match connect(client, IO_TIMEOUT) {
                Ok(c) => {
                    conn = Some(c);
                    backoff = BACKOFF_START;
                }
                Err(_) => {
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            shared.failed.fetch_add(1, Relaxed);
            continue;
        };
        match redis::cmd("PUBLISH").arg(&channel).arg(&payload).query::<i64>(c) {
            Ok(_) => {
                shared.published.fetch_add(1, Relaxed);
            }
            Err(_) => {
                shared.failed.fetch_add(1, Relaxed);
                conn = None;
            }
        }
    }
}
