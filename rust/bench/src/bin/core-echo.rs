//! The core without Godot: the same echo and broadcast logic as godot-project/bench/bench_server.gd,
//! on `wss_core::Server` directly, as the ceiling the addon is measured against. Prints `STAT`
//! lines like the Godot bench server.
//!
//! Usage: core-echo --port N [--mode echo|broadcast|idle] [--frame-usec N] [--cert PEM --key PEM]
//!                  [--limit BYTES] (inbound and outbound buffer sizes; default Godot's 65535)
//!                  [--inline] (`IoMode::Inline`: the socket work in `poll()`, no I/O thread)
//! Each "frame" polls the server and handles what arrived; between frames it sleeps `frame-usec`
//! (default 0: an unpaced loop that yields briefly when idle; with `--inline` it spins, as it
//! must poll to make any progress). Broadcast sends to every peer with one `Server::broadcast`.

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
        io: if std::env::args().any(|a| a == "--inline") {
            IoMode::Inline
        } else {
            IoMode::Thread
        },
        ..ServerConfig::default()
    };
    let mut server = Server::listen(&config).expect("listen");
    println!("LISTENING {}", server.local_addr().port());
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
                Signal::CloseRequest { .. } | Signal::UpgradeRequested { .. } | Signal::UpgradeCancelled { .. } => {}
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
