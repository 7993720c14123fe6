//! wsload: a WebSocket load generator (non-blocking clients on mio, spread over threads).
//!
//!   wsload echo      --url ws://127.0.0.1:P/ --clients N --size BYTES --secs S   closed-loop echo
//!   wsload broadcast --url ... --clients N --secs S                              count what arrives
//!   wsload idle      --url ... --clients N --hold S                              connect, then sit
//!                    [--burst-at S --size BYTES]   at S s after READY, every client sends one
//!                    message of BYTES and reads its echo; prints `BURST <secs>` once every echo is in
//!   wsload connect   --url ... --clients N                                       all at once: handshake time
//!   wsload game      --url ... --clients N --size 32 --secs S                    a game's clients: each
//!                    sends an input of BYTES (its sequence number first, u32 LE) 20 times a second,
//!                    open loop; the server's state messages carry the newest sequence it has, and
//!                    input-to-state latency is measured from them. After the window, inputs stop and
//!                    states are still read for 0.5 s; RESULT adds inputs (sent) and states (received).
//!
//! --deflate: offer permessage-deflate (client_max_window_bits, as browsers do) and inflate what
//! the server compresses (wss_core's inbound layer in its client form; the clients' own messages go
//! uncompressed); RESULT adds `deflate`, the clients that agreed.
//! URLs may be wss:// with --ca PEM (the certificate to trust; the name checked is "localhost").
//! Common options: --threads T (default 4), --connect-concurrency C (default 64; `connect` uses N),
//! --setup-timeout S (default 60), --warmup S (default 0.5), --skip-first (ignore each client's first
//! message: the id a multiplayer-mode server sends).
//! Prints `READY <connected>` once set up, and at the end one line `RESULT {json}`.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls_pki_types::ServerName;
use tungstenite::protocol::{Role, WebSocketContext};
use tungstenite::{Bytes, Message};
use wss_core::deflate::inbound::Inflating;
use wss_core::tls::TlsStream;

const SETUP: u8 = 0;
const WARMUP: u8 = 1;
const MEASURE: u8 = 2;
const STOP: u8 = 3;
/// Game mode: no more inputs; what is on its way is still read.
const DRAIN: u8 = 4;
/// Game mode: inputs per second per client.
const INPUT_PERIOD: Duration = Duration::from_millis(50);

#[derive(Clone)]
struct Config {
    mode: String,
    addr: SocketAddr,
    host: String,
    path: String,
    clients: usize,
    size: usize,
    threads: usize,
    concurrency: usize,
    skip_first: bool,
    deflate: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A client socket, with TLS in front of it for wss://.
/// Bytes each read asks the socket for.
const READ_BUFFER: usize = 4096;

enum Transport {
    /// The socket, and whether a read since its last readiness event came back short: the socket
    /// was drained, and edge-triggered readiness reports any later byte, so a second `recvfrom`
    /// that would only say `EAGAIN` is skipped (as the server's own sockets do).
    Plain(TcpStream, bool),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    fn socket(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s, _) => s,
            Transport::Tls(t) => t.get_mut(),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(_, true) => Err(ErrorKind::WouldBlock.into()),
            Transport::Plain(s, drained) => {
                let n = s.read(buf)?;
                *drained = n > 0 && n < buf.len();
                Ok(n)
            }
            Transport::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s, _) => s.write(buf),
            Transport::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(s, _) => s.flush(),
            Transport::Tls(t) => t.flush(),
        }
    }
}

struct Shared {
    phase: AtomicU8,
    connected: AtomicUsize,
    failed: AtomicUsize,
    /// Idle mode with --burst-at: every client sends one message now.
    burst: std::sync::atomic::AtomicBool,
    /// Echoes of the burst received.
    echoed: AtomicUsize,
    /// Clients with which permessage-deflate was agreed (--deflate).
    deflated: AtomicUsize,
}

#[derive(Default)]
struct Outcome {
    msgs: u64,
    /// Game mode: inputs sent, states received (all phases).
    inputs: u64,
    states: u64,
    latencies_us: Vec<u32>,
}

enum State {
    Connecting,
    Handshake(Vec<u8>),
    Open(Box<WebSocketContext>),
    Dead,
}

struct Client {
    sock: Transport,
    state: State,
    sent_at: Option<Instant>,
    skip: bool,
    /// Game mode: when the next input is due, its sequence number, and the inputs not yet
    /// acknowledged by a state message (sequence, sent at).
    seq: u32,
    unacked: std::collections::VecDeque<(u32, Instant)>,
    /// permessage-deflate, when the server agreed to it.
    inflate: Option<Box<Inflate>>,
}

/// A client's compressed input: the socket's bytes (`raw`) through the inflating layer into
/// `decoded`, which tungstenite reads from `pos` on.
struct Inflate {
    layer: Inflating,
    raw: Vec<u8>,
    decoded: Vec<u8>,
    pos: usize,
}

impl Inflate {
    /// The layer the `101` response's `Sec-WebSocket-Extensions` asks for, if it took the offer.
    fn agreed(head: &str) -> Option<Box<Inflate>> {
        let line = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("sec-websocket-extensions:"))?
            .to_ascii_lowercase();
        if !line.contains("permessage-deflate") {
            return None;
        }
        let bits = line
            .split(';')
            .find_map(|p| {
                p.trim()
                    .strip_prefix("server_max_window_bits=")?
                    .trim()
                    .parse::<u8>()
                    .ok()
            })
            .unwrap_or(15);
        let takeover = !line.contains("server_no_context_takeover");
        Some(Box::new(Inflate {
            layer: Inflating::client(1 << 24, bits, takeover),
            raw: Vec::new(),
            decoded: Vec::new(),
            pos: 0,
        }))
    }
}

/// The socket as tungstenite reads it through `Inflate`.
struct Inflated<'a> {
    sock: &'a mut Transport,
    z: &'a mut Inflate,
}

impl Read for Inflated<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let z = &mut *self.z;
            if z.pos < z.decoded.len() {
                let n = buf.len().min(z.decoded.len() - z.pos);
                buf[..n].copy_from_slice(&z.decoded[z.pos..z.pos + n]);
                z.pos += n;
                return Ok(n);
            }
            z.decoded.clear();
            z.pos = 0;
            if z.raw.is_empty() {
                let mut chunk = [0u8; READ_BUFFER];
                let n = self.sock.read(&mut chunk)?;
                if n == 0 {
                    return Ok(0);
                }
                z.raw.extend_from_slice(&chunk[..n]);
            }
            let used = z
                .layer
                .decode(&z.raw, &mut z.decoded, usize::MAX)
                .map_err(|e| std::io::Error::other(format!("inflate: {e:?}")))?;
            z.raw.drain(..used);
            if z.decoded.is_empty() && used == 0 {
                // A frame cut short: more bytes needed.
                let mut chunk = [0u8; READ_BUFFER];
                let n = self.sock.read(&mut chunk)?;
                if n == 0 {
                    return Ok(0);
                }
                z.raw.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

impl Write for Inflated<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sock.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.sock.flush()
    }
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).cloned().unwrap_or_default();
    if !["echo", "broadcast", "idle", "connect", "game"].contains(&mode.as_str()) {
        eprintln!("usage: wsload echo|broadcast|idle|connect|game --url ws://HOST:PORT/PATH --clients N ...");
        std::process::exit(2);
    }
    let url = arg(&args, "--url", "ws://127.0.0.1:9080/");
    let secure = url.starts_with("wss://");
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .expect("a ws:// or wss:// URL");
    let tls = secure.then(|| {
        let pem = std::fs::read(arg(&args, "--ca", "")).expect("wss:// needs --ca PEM");
        wss_core::tls::client_config(&pem).expect("--ca")
    });
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let addr: SocketAddr = authority.parse().expect("--url needs an IP:port authority");
    let host = if secure {
        format!("localhost:{}", addr.port())
    } else {
        authority.to_string()
    };
    let clients: usize = arg(&args, "--clients", "1").parse().unwrap();
    let concurrency = if mode == "connect" {
        clients
    } else {
        arg(&args, "--connect-concurrency", "64").parse().unwrap()
    };
    let config = Config {
        mode: mode.clone(),
        addr,
        host,
        path,
        clients,
        size: arg(&args, "--size", "64").parse().unwrap(),
        threads: arg(&args, "--threads", "4")
            .parse::<usize>()
            .unwrap()
            .clamp(1, clients.max(1)),
        concurrency: concurrency.max(1),
        skip_first: args.iter().any(|a| a == "--skip-first"),
        deflate: args.iter().any(|a| a == "--deflate"),
        tls,
    };
    let secs: f64 = arg(&args, "--secs", "3").parse().unwrap();
    let hold: f64 = arg(&args, "--hold", "5").parse().unwrap();
    let warmup: f64 = arg(&args, "--warmup", "0.5").parse().unwrap();
    let setup_timeout: f64 = arg(&args, "--setup-timeout", "60").parse().unwrap();

    let shared = Arc::new(Shared {
        phase: AtomicU8::new(SETUP),
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        burst: Default::default(),
        echoed: AtomicUsize::new(0),
        deflated: AtomicUsize::new(0),
    });
    let started = Instant::now();
    let workers: Vec<_> = (0..config.threads)
        .map(|t| {
            let n = config.clients / config.threads + usize::from(t < config.clients % config.threads);
            let (config, shared) = (config.clone(), shared.clone());
            std::thread::spawn(move || worker(&config, n, &shared))
        })
        .collect();

    // Setup: wait for every client (or the timeout, or for every client to have either connected
    // or failed).
    let deadline = started + Duration::from_secs_f64(setup_timeout);
    while shared.connected.load(Acquire) + shared.failed.load(Acquire) < clients && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let setup_secs = started.elapsed().as_secs_f64();
    let connected = shared.connected.load(Acquire);
    println!("READY {connected}");
    let (mut t0, mut t1) = (wss_bench::unix_time(), wss_bench::unix_time());
    match mode.as_str() {
        "echo" | "broadcast" | "game" => {
            shared.phase.store(WARMUP, Release);
            std::thread::sleep(Duration::from_secs_f64(warmup));
            t0 = wss_bench::unix_time();
            shared.phase.store(MEASURE, Release);
            std::thread::sleep(Duration::from_secs_f64(secs));
            t1 = wss_bench::unix_time();
            if mode == "game" {
                shared.phase.store(DRAIN, Release);
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        "idle" => {
            let burst_at: f64 = arg(&args, "--burst-at", "-1").parse().unwrap();
            let idle_from = Instant::now();
            if burst_at >= 0.0 {
                std::thread::sleep(Duration::from_secs_f64(burst_at));
                let sent = Instant::now();
                shared.burst.store(true, Release);
                let limit = sent + Duration::from_secs_f64(setup_timeout);
                while shared.echoed.load(Acquire) < connected && Instant::now() < limit {
                    std::thread::sleep(Duration::from_millis(1));
                }
                println!(
                    "BURST {:.3} {}",
                    sent.elapsed().as_secs_f64(),
                    shared.echoed.load(Acquire)
                );
            }
            let left = Duration::from_secs_f64(hold).saturating_sub(idle_from.elapsed());
            std::thread::sleep(left);
        }
        _ => {}
    }
    shared.phase.store(STOP, Release);
    let mut all = Outcome::default();
    for w in workers {
        let o = w.join().expect("worker");
        all.msgs += o.msgs;
        all.inputs += o.inputs;
        all.states += o.states;
        all.latencies_us.extend(o.latencies_us);
    }
    all.latencies_us.sort_unstable();
    let pct = |p: f64| -> u32 {
        if all.latencies_us.is_empty() {
            return 0;
        }
        all.latencies_us[((all.latencies_us.len() - 1) as f64 * p).round() as usize]
    };
    let window = (t1 - t0).max(1e-9);
    println!(
        "RESULT {{\"mode\":\"{mode}\",\"clients\":{clients},\"connected\":{connected},\"failed\":{},\"setup_secs\":{setup_secs:.4},\"msgs\":{},\"inputs\":{},\"states\":{},\"rate\":{:.1},\"p50_us\":{},\"p99_us\":{},\"deflate\":{},\"t0\":{t0:.6},\"t1\":{t1:.6}}}",
        shared.failed.load(Acquire),
        all.msgs,
        all.inputs,
        all.states,
        all.msgs as f64 / window,
        pct(0.5),
        pct(0.99),
        shared.deflated.load(Acquire)
    );
}

fn worker(config: &Config, n: usize, shared: &Shared) -> Outcome {
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(1024);
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    let mut outcome = Outcome::default();
    let payload = Bytes::from((0..config.size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
        config.path,
        config.host,
        if config.deflate {
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        } else {
            ""
        }
    );
    let per_thread = (config.concurrency / config.threads).max(1);
    let (mut started, mut pending) = (0usize, 0usize);
    let mut burst_sent = false;
    // Game mode: when each open client's next input is due, soonest first (made when inputs
    // start; every client goes to the back with its next time, so the order holds).
    let mut schedule: Option<std::collections::VecDeque<(Instant, usize)>> = None;
    loop {
        if shared.phase.load(Acquire) == STOP {
            return outcome;
        }
        if !burst_sent && shared.burst.load(Acquire) {
            burst_sent = true;
            for c in &mut clients {
                send(c, &payload);
            }
        }
        while started < n && pending < per_thread {
            started += 1;
            match TcpStream::connect(config.addr) {
                Ok(mut sock) => {
                    let token = Token(clients.len());
                    poll.registry()
                        .register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)
                        .expect("register");
                    let sock = match &config.tls {
                        None => Transport::Plain(sock, false),
                        Some(tls) => Transport::Tls(Box::new(
                            TlsStream::client(tls.clone(), ServerName::try_from("localhost").unwrap(), sock)
                                .expect("TLS"),
                        )),
                    };
                    clients.push(Client {
                        sock,
                        state: State::Connecting,
                        sent_at: None,
                        skip: config.skip_first,
                        seq: 0,
                        unacked: Default::default(),
                        inflate: None,
                    });
                    pending += 1;
                }
                Err(_) => {
                    shared.failed.fetch_add(1, AcqRel);
                }
            }
        }
        if config.mode == "game" {
            let phase = shared.phase.load(Acquire);
            if phase == WARMUP || phase == MEASURE {
                let due = schedule.get_or_insert_with(|| first_inputs(&clients));
                send_inputs(&mut clients, due, &payload, &mut outcome);
            }
        }
        let wait = Duration::from_millis(if config.mode == "game" { 1 } else { 5 });
        if poll.poll(&mut events, Some(wait)).is_err() {
            continue;
        }
        for event in events.iter() {
            let c = &mut clients[event.token().0];
            if let Transport::Plain(_, drained) = &mut c.sock {
                // New bytes may wait; after end of stream or an error, reading must find out.
                *drained = false;
            }
            let was_pending = matches!(c.state, State::Connecting | State::Handshake(_));
            step(c, config, shared, &request, &payload, &mut outcome, event.is_writable());
            if was_pending && !matches!(c.state, State::Connecting | State::Handshake(_)) {
                pending -= 1;
                if let (Some(due), State::Open(_)) = (&mut schedule, &c.state) {
                    due.push_back((Instant::now(), event.token().0));
                }
            }
        }
    }
}

/// Game mode: the first input of every open client, at a phase spread by the client's index over
/// one period (so that inputs are not sent in bursts), soonest first.
fn first_inputs(clients: &[Client]) -> std::collections::VecDeque<(Instant, usize)> {
    let now = Instant::now();
    let mut due: Vec<(Instant, usize)> = (0..clients.len())
        .filter(|&i| matches!(clients[i].state, State::Open(_)))
        .map(|i| (now + INPUT_PERIOD.mul_f64((i * 7919 % 1000) as f64 / 1000.0), i))
        .collect();
    due.sort_unstable();
    due.into()
}

/// Game mode: every open client whose input is due sends it, and is scheduled one period later
/// (only the clients due are looked at, not all of them every loop).
fn send_inputs(
    clients: &mut [Client],
    schedule: &mut std::collections::VecDeque<(Instant, usize)>,
    payload: &Bytes,
    outcome: &mut Outcome,
) {
    let now = Instant::now();
    while let Some(&(due, i)) = schedule.front() {
        if due > now {
            break;
        }
        schedule.pop_front();
        let c = &mut clients[i];
        let State::Open(ws) = &mut c.state else { continue };
        c.seq += 1;
        let mut input = payload.to_vec();
        input[..4].copy_from_slice(&c.seq.to_le_bytes());
        let _ = ws.write(&mut c.sock, Message::Binary(input.into()));
        let _ = ws.flush(&mut c.sock);
        c.unacked.push_back((c.seq, now));
        outcome.inputs += 1;
        // A client that fell behind (a stalled load generator) does not send a burst to catch up.
        schedule.push_back(((due + INPUT_PERIOD).max(now), i));
    }
}

fn fail(c: &mut Client, shared: &Shared) {
    if !matches!(c.state, State::Dead) {
        if matches!(c.state, State::Open(_)) {
            shared.connected.fetch_sub(1, AcqRel);
        }
        shared.failed.fetch_add(1, AcqRel);
        c.state = State::Dead;
    }
}

fn send(c: &mut Client, payload: &Bytes) {
    if let State::Open(ws) = &mut c.state {
        c.sent_at = Some(Instant::now());
        let _ = ws.write(&mut c.sock, Message::Binary(payload.clone()));
        let _ = ws.flush(&mut c.sock);
    }
}

fn step(
    c: &mut Client,
    config: &Config,
    shared: &Shared,
    request: &str,
    payload: &Bytes,
    outcome: &mut Outcome,
    writable: bool,
) {
    if let State::Connecting = c.state {
        if !writable {
            return;
        }
        let sock = c.sock.socket();
        if sock.take_error().ok().flatten().is_some() || sock.peer_addr().is_err() {
            return fail(c, shared);
        }
        // A request this small fits in an empty socket buffer (over TLS, rustls holds it until
        // its handshake is done).
        match c.sock.write(request.as_bytes()) {
            Ok(n) if n == request.len() => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock && matches!(c.sock, Transport::Tls(_)) => {}
            _ => return fail(c, shared),
        }
        c.state = State::Handshake(Vec::new());
    }
    if let State::Handshake(buf) = &mut c.state {
        match c.sock.flush() {
            Err(e) if e.kind() != ErrorKind::WouldBlock => return fail(c, shared),
            _ => {}
        }
        let mut chunk = [0u8; 4096];
        loop {
            match c.sock.read(&mut chunk) {
                Ok(0) => return fail(c, shared),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return fail(c, shared),
            }
        }
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return;
        };
        if !buf.starts_with(b"HTTP/1.1 101") {
            return fail(c, shared);
        }
        let mut rest = buf.split_off(end + 4);
        if config.deflate {
            c.inflate = Inflate::agreed(&String::from_utf8_lossy(buf));
            if let Some(z) = &mut c.inflate {
                // Frames that came with the response go through the layer too.
                z.raw = std::mem::take(&mut rest);
                shared.deflated.fetch_add(1, AcqRel);
            }
        }
        // tungstenite zeroes `read_buffer_size` bytes (128 KiB by default) before every read: most
        // of this process's time went to that memset. 4 KiB holds any message the benchmarks
        // send in one piece but the largest, which takes a few reads.
        let ws_config = tungstenite::protocol::WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        c.state = State::Open(Box::new(WebSocketContext::from_partially_read(
            rest,
            Role::Client,
            Some(ws_config),
        )));
        shared.connected.fetch_add(1, AcqRel);
        if config.mode == "echo" {
            send(c, payload);
        }
    }
    if let State::Open(ws) = &mut c.state {
        let _ = ws.flush(&mut c.sock);
    }
    read_messages(c, config, shared, payload, outcome);
}

/// Reads every message waiting (readiness is edge-triggered: read until WouldBlock); in echo
/// mode each one is answered with the next.
fn read_messages(c: &mut Client, config: &Config, shared: &Shared, payload: &Bytes, outcome: &mut Outcome) {
    loop {
        let State::Open(ws) = &mut c.state else { return };
        let read = match &mut c.inflate {
            Some(z) => ws.read(&mut Inflated { sock: &mut c.sock, z }),
            None => ws.read(&mut c.sock),
        };
        match read {
            Ok(Message::Binary(data)) if config.mode == "game" => {
                if c.skip {
                    c.skip = false;
                    continue;
                }
                outcome.states += 1;
                let Some(ack) = data.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])) else {
                    continue;
                };
                let measuring = shared.phase.load(Relaxed) == MEASURE;
                let now = Instant::now();
                while let Some(&(seq, at)) = c.unacked.front() {
                    if seq > ack {
                        break;
                    }
                    c.unacked.pop_front();
                    if measuring {
                        outcome
                            .latencies_us
                            .push(now.duration_since(at).as_micros().min(u32::MAX as u128) as u32);
                    }
                }
            }
            Ok(Message::Binary(_) | Message::Text(_)) => {
                if c.skip {
                    c.skip = false;
                    continue;
                }
                let phase = shared.phase.load(Relaxed);
                if phase == MEASURE {
                    outcome.msgs += 1;
                    if let Some(sent) = c.sent_at {
                        outcome
                            .latencies_us
                            .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                }
                if config.mode == "echo" && phase != STOP {
                    send(c, payload);
                }
                if config.mode == "idle" {
                    shared.echoed.fetch_add(1, AcqRel);
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => return,
            Err(_) => return fail(c, shared),
        }
    }
}
