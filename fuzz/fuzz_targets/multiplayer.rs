//! Multiplayer ids and routing: several connections in multiplayer mode share one id allocator,
//! as on the I/O thread. Ids are in 2..=2^31-1 and unique among peers the game still knows (an id
//! is free again only after the game saw its `Disconnected`); each client's first bytes after the
//! `101` are its id, as a 4-byte binary message; and `is_recipient` routes every target (including
//! `i32::MIN`) by MultiplayerPeer's rules.
#![no_main]

use std::collections::HashMap;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;

use rand::SeedableRng;
use wss_core::connection::{Connection, Context, Settings, Status};
use wss_core::event::Event;
use wss_core::ids::IdAllocator;
use wss_core::sim::Pipe;
use wss_core::transport::Transport;
use wss_core::{is_recipient, ServerConfig};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (seed, ops) = data.split_at(8);
    let seed = u64::from_le_bytes(seed.try_into().unwrap());
    // A tiny id space is not possible (ids are 2..=2^31-1), but a seeded generator makes runs
    // repeatable.
    let mut ids = IdAllocator::with_rng(Box::new(rand::rngs::SmallRng::seed_from_u64(seed)));
    let settings = Settings::new(&ServerConfig {
        multiplayer: true,
        ..ServerConfig::default()
    });
    let now = Instant::now();
    let mut conns: Vec<Option<(Connection, Transport, Pipe)>> = Vec::new();
    // Ids the game knows (connected, Disconnected not yet seen), and which connection has them.
    let mut known: HashMap<i32, usize> = HashMap::new();
    // Disconnected events the game has not processed yet (their ids are still taken).
    let mut unreleased: Vec<i32> = Vec::new();
    let mut events = Vec::new();
    for chunk in ops.chunks(2).take(128) {
        let (op, arg) = (chunk[0], *chunk.get(1).unwrap_or(&0));
        match op % 5 {
            // A new client upgrades.
            0 if known.len() < 16 => {
                let mut conn = Connection::new("127.0.0.1:1".parse().unwrap(), now, &settings);
                let mut transport = Transport::new(None, false).unwrap();
                let mut pipe = Pipe::default();
                pipe.input.extend(REQUEST);
                let mut cx = Context {
                    now,
                    settings: &settings,
                    ids: &mut ids,
                    events: &mut events,
                };
                assert_eq!(transport.service(&mut pipe, &mut conn, &mut cx), Status::Alive);
                let Some(Event::Connected { peer, .. }) = events.pop() else {
                    panic!("not connected")
                };
                assert!(events.is_empty());
                assert!((2..=i32::MAX).contains(&peer.id), "id {}", peer.id);
                assert!(!known.contains_key(&peer.id), "id {} given twice", peer.id);
                assert!(
                    !unreleased.contains(&peer.id),
                    "id {} reused before the game saw it go",
                    peer.id
                );
                // The id message follows the response at once.
                let end = pipe.output.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                let mut expected = vec![0x82, 4];
                expected.extend_from_slice(&peer.id.to_le_bytes());
                assert_eq!(&pipe.output[end..], &expected[..]);
                known.insert(peer.id, conns.len());
                conns.push(Some((conn, transport, pipe)));
            }
            // A client leaves (EOF).
            1 if !conns.is_empty() => {
                let i = arg as usize % conns.len();
                if let Some((mut conn, mut transport, mut pipe)) = conns[i].take() {
                    pipe.eof = true;
                    let mut cx = Context {
                        now,
                        settings: &settings,
                        ids: &mut ids,
                        events: &mut events,
                    };
                    transport.readable();
                    assert_eq!(transport.service(&mut pipe, &mut conn, &mut cx), Status::Gone);
                    match events.pop() {
                        Some(Event::Disconnected { id, .. }) => {
                            assert_eq!(known.remove(&id), Some(i));
                            unreleased.push(id);
                        }
                        other => panic!("{other:?}"),
                    }
                }
            }
            // The game processes one Disconnected: its id is released.
            2 if !unreleased.is_empty() => {
                let id = unreleased.remove(arg as usize % unreleased.len());
                ids.release(id);
            }
            // Routing: every target against every known peer.
            3 => {
                let targets = [0, i32::MIN, i32::MAX, -i32::MAX, arg as i32, -(arg as i32)];
                let some = known.keys().next().copied();
                for target in targets.into_iter().chain(some).chain(some.map(|id| -id)) {
                    for &id in known.keys() {
                        let r = is_recipient(target, id);
                        let expected = match target {
                            0 => true,
                            t if t > 0 => id == t,
                            t => i64::from(id) != -i64::from(t),
                        };
                        assert_eq!(r, expected, "target {target}, id {id}");
                    }
                }
            }
            _ => {}
        }
    }
});
