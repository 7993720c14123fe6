//! Whole-server scenarios in the deterministic simulator (`wss_core::sim::Sim`): the real
//! endpoint with many in-memory clients and virtual time. Hours pass in microseconds, every run
//! is the same, and nothing sleeps. What needs real sockets, threads or the game-thread side of
//! the server is in `loopback.rs`, `hostile.rs` and `inline.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use wss_core::event::{Command, Event, PeerId};
use wss_core::sim::Sim;
use wss_core::stats::{gauge, read};
use wss_core::{Limits, ServerConfig};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn addr(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], port))
}

/// A masked client frame (FIN set) with a payload under 126 bytes.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [9u8, 8, 7, 6];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// The ids of the `Connected` events, in order.
fn connected(events: &[Event]) -> Vec<PeerId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Connected { peer, .. } => Some(peer.id),
            _ => None,
        })
        .collect()
}

fn disconnected(events: &[Event]) -> Vec<(PeerId, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Disconnected { id, clean } => Some((*id, *clean)),
            _ => None,
        })
        .collect()
}

#[test]
fn slowloris_clients_are_dropped_at_the_deadline_while_others_are_served() {
    let mut sim = Sim::new(&ServerConfig {
        handshake_timeout: Duration::from_secs(3),
        max_handshakes_per_address: 0,
        heartbeat_interval: None,
        ..ServerConfig::default()
    });
    // 50 clients that trickle their request a byte a second, and one that sends it whole.
    let slow: Vec<u64> = (0..50).map(|i| sim.connect(addr(1, 1000 + i)).unwrap()).collect();
    for second in 0..10 {
        for &c in &slow {
            sim.send(c, &REQUEST[second..second + 1]);
        }
        if second == 2 {
            let good = sim.connect(addr(2, 1)).unwrap();
            sim.send(good, REQUEST);
            let head = String::from_utf8(sim.received(good)).unwrap();
            assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        }
        sim.advance(Duration::from_secs(1));
    }
    assert!(slow.iter().all(|&c| !sim.is_held(c)), "every slow client is gone");
    assert_eq!(read(&sim.totals().timed_out), 50);
    assert_eq!(connected(&sim.take_events()).len(), 1);
    assert_eq!(gauge(&sim.totals().handshaking), 0);
}

#[test]
fn the_heartbeat_drops_a_frozen_client_and_keeps_one_that_answers() {
    let mut sim = Sim::new(&ServerConfig {
        heartbeat_interval: Some(Duration::from_secs(10)),
        ..ServerConfig::default()
    });
    let frozen = sim.connect(addr(1, 1)).unwrap();
    let alive = sim.connect(addr(1, 2)).unwrap();
    for c in [frozen, alive] {
        sim.send(c, REQUEST);
        sim.received(c);
    }
    let ids = connected(&sim.take_events());
    for _ in 0..30 {
        sim.advance(Duration::from_secs(1));
        // The live client answers each ping (opcode 9, 8-byte payload) with its payload.
        let out = sim.received(alive);
        if out.len() >= 10 && out[0] == 0x89 {
            sim.send(alive, &frame(0xA, &out[2..10]));
        }
    }
    assert!(!sim.is_held(frozen), "no pong for a whole interval: dropped");
    assert!(sim.is_held(alive));
    assert_eq!(disconnected(&sim.take_events()), vec![(ids[0], false)]);
    assert_eq!(read(&sim.totals().heartbeat_dropped), 1);
}

#[test]
fn over_max_connections_requests_are_answered_503_then_closed_silently() {
    let mut sim = Sim::new(&ServerConfig {
        max_connections: 2,
        max_handshakes_per_address: 0,
        ..ServerConfig::default()
    });
    let ok: Vec<u64> = (0..2).map(|i| sim.connect(addr(1, i)).unwrap()).collect();
    for &c in &ok {
        sim.send(c, REQUEST);
    }
    // Up to MAX_REFUSING more are read and answered 503; beyond that, closed without a word.
    let mut answered = 0;
    let mut silent = 0;
    for i in 0..(wss_core::endpoint::MAX_REFUSING + 10) as u16 {
        match sim.connect(addr(2, i)) {
            Some(c) => {
                sim.send(c, REQUEST);
                let head = String::from_utf8(sim.received(c)).unwrap();
                assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
                assert!(!sim.is_held(c), "closed once answered");
                answered += 1;
            }
            None => silent += 1,
        }
    }
    assert_eq!((answered, silent), (wss_core::endpoint::MAX_REFUSING + 10, 0));
    assert_eq!(gauge(&sim.totals().open), 2);
    // Refused connections that are still being read do count: fill the refusal slots.
    let waiting: Vec<u64> = (0..wss_core::endpoint::MAX_REFUSING as u16)
        .map(|i| sim.connect(addr(3, i)).unwrap())
        .collect();
    assert!(sim.connect(addr(4, 1)).is_none(), "no room to answer: closed at once");
    for c in waiting {
        sim.close(c);
    }
    assert!(sim.connect(addr(4, 2)).is_some(), "room again");
}

#[test]
fn one_address_cannot_hold_more_unfinished_handshakes_than_its_cap() {
    let mut sim = Sim::new(&ServerConfig {
        max_handshakes_per_address: 3,
        ..ServerConfig::default()
    });
    let held: Vec<u64> = (0..3).map(|i| sim.connect(addr(1, i)).unwrap()).collect();
    assert!(
        sim.connect(addr(1, 9)).is_none(),
        "a fourth from the same host is refused"
    );
    assert!(sim.connect(addr(2, 1)).is_some(), "another host is not");
    // Once one upgrade is done, that host may start another.
    sim.send(held[0], REQUEST);
    assert!(sim.connect(addr(1, 10)).is_some());
}

#[test]
fn a_full_queue_pauses_reading_until_the_game_reads_and_nothing_is_lost() {
    let limits = Limits {
        max_queued_packets: 4,
        ..Limits::default()
    };
    let mut sim = Sim::new(&ServerConfig {
        limits,
        ..ServerConfig::default()
    });
    let c = sim.connect(addr(1, 1)).unwrap();
    sim.send(c, REQUEST);
    let events = sim.take_events();
    let Some(Event::Connected { peer, .. }) = events.first() else {
        panic!("{events:?}")
    };
    let peer = peer.clone();
    // 20 messages in one burst: reading stops once 4 wait for the game.
    let burst: Vec<u8> = (0..20u8).flat_map(|i| frame(0x2, &[i])).collect();
    sim.send(c, &burst);
    let mut got = Vec::new();
    for _ in 0..20 {
        let events = sim.take_events();
        assert!(events.len() <= 5, "{} messages past a queue of 4", events.len());
        for e in events {
            if let Event::Message { packet, .. } = e {
                got.push(packet.data[0]);
                // The game reads it; a drained queue resumes reading.
                if peer.sub_inbound(packet.data.len()) {
                    sim.command(Command::Resume { id: peer.id });
                }
            }
        }
        sim.turn();
    }
    assert_eq!(got, (0..20).collect::<Vec<u8>>(), "every message, in order");
}
