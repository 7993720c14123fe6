//! The core without Godot: the same echo and broadcast logic as godot-project/bench/bench_server.gd,
//! on `wss_core::Server` directly, as the ceiling the addon is measured against. Prints `STAT`
//! lines like the Godot bench server.
//!
//! Usage: core-echo --port N [--mode echo|broadcast|idle|tick] [--frame-usec N] [--cert PEM --key PEM]
//!                  [--limit BYTES] (inbound and outbound buffer sizes; default Godot's 65535)
//!                  [--inline] (`IoMode::Inline`: the socket work in `poll()`, no I/O thread)
//! Each "frame" polls the server and handles what arrived; between frames it sleeps `frame-usec`
//! (default 0: an unpaced loop that yields briefly when idle; with `--inline` it spins, as it
//! must poll to make any progress). Broadcast sends to every peer with one `Server::broadcast`.
//! Tick (the floor of `bench/tick.py`'s server, tick_server.gd, without Godot): 60 frames a second;
//! each takes every input and keeps each peer's newest sequence number, and every third sends each
//! peer a 128-byte state carrying it, all in one `Server::send_each`; prints `TICK` lines as
//! tick_server.gd does.

use std::time::{Duration, Instant};

use wss_bench::Stats;
use wss_core::tls::{server_config, TlsPem};
use wss_core::{BindIp, IoMode, Limits, Server, ServerConfig, Signal};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// The addon's allocator, so that the floor allocates as the addon does.
#[global_allocator]
static ALLOCATOR: wss_core::alloc::Allocator = wss_core::alloc::Allocator;

fn main() {
    let port: u16 = arg("--port", "0").parse().expect("--port");
    let mode = arg("--mode", "echo");
    let frame = Duration::from_micros(arg("--frame-usec", "0").parse().expect("--frame-usec"));
    let tls = (!arg("--cert", "").is_empty()).then(|| {
        let read = |name| std::fs::read_to_string(arg(name, "")).expect(name);
        let pem = TlsPem {
            certificate: read("--cert"),
            private_key: read("--key"),
            ca_chain: String::new(),
        };
        server_config(&pem).expect("TLS configuration")
    });
    let limit: usize = arg("--limit", "65535").parse().expect("--limit");
    let limits = Limits {
        inbound_buffer_size: limit,
        outbound_buffer_size: limit,
        ..Limits::default()
    };
    let config = ServerConfig {
        bind_ip: BindIp::parse("127.0.0.1").unwrap(),
        port,
        tls,
        limits,
        // One load generator opens every connection: no per-address handshake cap (as the
        // bench's Godot server).
        max_handshakes_per_address: 0,
        // The tick loop takes every input from one queue, as tick_server.gd's take_messages().
        queue_messages: mode == "tick",
        io: if std::env::args().any(|a| a == "--inline") {
            IoMode::Inline
        } else {
            IoMode::Thread
        },
        ..ServerConfig::default()
    };
    let mut server = Server::listen(&config).expect("listen");
    println!("LISTENING {}", server.local_addr().port());
    if mode == "tick" {
        tick(server);
    }
    let inline = config.io == IoMode::Inline;
    let broadcast = tungstenite::Bytes::from(vec![7u8; 64]);
    let mut stats = Stats::default();
    let mut peers: Vec<i32> = Vec::new();
    let mut next_stat = Instant::now();
    loop {
        let start = Instant::now();
        server.poll().expect("I/O thread");
        let mut events = 0;
        while let Some(signal) = server.next_signal() {
            events += 1;
            match signal {
                Signal::Connected { id, .. } => peers.push(id),
                Signal::Disconnected { id, .. } => peers.retain(|p| *p != id),
                Signal::DataReceived { id } => {
                    if let Some(peer) = server.peer(id) {
                        if let Some(packet) = peer.pop() {
                            if peer.send(packet.data, packet.text).is_ok() {
                                stats.msgs += 1;
                            }
                        }
                    }
                }
                Signal::CloseRequest { .. }
                | Signal::UpgradeRequested { .. }
                | Signal::HttpRequest { .. }
                | Signal::UpgradeCancelled { .. }
                | Signal::BusConnected
                | Signal::BusDisconnected { .. }
                | Signal::BusPublishFailed { .. } => {}
            }
        }
        stats.poll_usec += start.elapsed().as_micros() as u64;
        if mode == "broadcast" {
            // A client whose queue is full is skipped (as bench_server.gd does).
            let failed = server.broadcast(broadcast.clone(), false, None, &[]);
            stats.msgs += (peers.len() - failed.len()) as u64;
        }
        stats.work_usec += start.elapsed().as_micros() as u64;
        stats.frames += 1;
        stats.peers = peers.len() as u64;
        if Instant::now() >= next_stat {
            println!("{}", stats.line());
            next_stat += Duration::from_millis(250);
        }
        if !frame.is_zero() {
            std::thread::sleep(frame);
        } else if events == 0 && !inline {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

/// `--mode tick`: tick_server.gd's batch loop on the core (see the module's comment).
fn tick(mut server: Server) -> ! {
    const PERIOD: Duration = Duration::from_nanos(1_000_000_000 / 60);
    const STATE_EVERY: u64 = 3;
    let mut seq: std::collections::HashMap<i32, u32> = std::collections::HashMap::new();
    let (mut ticks, mut inputs, mut states, mut refused) = (0u64, 0u64, 0u64, 0u64);
    let mut used: Vec<u64> = Vec::new();
    let mut state = [3u8; 128];
    let mut next = Instant::now();
    let mut next_stat = Instant::now() + Duration::from_secs(1);
    loop {
        let start = Instant::now();
        ticks += 1;
        server.poll().expect("I/O thread");
        while let Some(signal) = server.next_signal() {
            match signal {
                Signal::Connected { id, .. } => {
                    seq.insert(id, 0);
                }
                Signal::Disconnected { id, .. } => {
                    seq.remove(&id);
                }
                _ => {}
            }
        }
        while let Some((id, packet)) = server.pop_packet() {
            if let Some(head) = packet.data.get(..4) {
                seq.insert(id, u32::from_le_bytes(head.try_into().unwrap()));
            }
            inputs += 1;
        }
        if ticks % STATE_EVERY == 0 {
            let batch: Vec<_> = seq
                .iter()
                .map(|(&id, &s)| {
                    state[..4].copy_from_slice(&s.to_le_bytes());
                    (id, server.copy_payload(&state), false)
                })
                .collect();
            let n = batch.len() as u64;
            let failed = server.send_each(batch).len() as u64;
            states += n - failed;
            refused += failed;
        }
        used.push(start.elapsed().as_micros() as u64);
        if Instant::now() >= next_stat {
            used.sort_unstable();
            let at = |q: f64| {
                used.get(((used.len() as f64 * q) as usize).min(used.len().saturating_sub(1)))
                    .copied()
            };
            let pid = std::process::id();
            println!(
                "TICK {:.6} {} {} {} {} 0 {inputs} {states} {refused} {} {} {}",
                wss_bench::unix_time(),
                used.len(),
                at(0.5).unwrap_or(0),
                at(0.99).unwrap_or(0),
                used.last().copied().unwrap_or(0),
                seq.len(),
                wss_bench::cpu_ticks(&format!("/proc/{pid}/stat")),
                wss_bench::rss_kib()
            );
            used.clear();
            next_stat += Duration::from_secs(1);
        }
        next += PERIOD;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}
