//! The whole endpoint in the simulator: many clients' bytes, the game's commands and time steps
//! interleaved arbitrarily, with the caps on. After every step: events are well-formed per id
//! (requested at most once, connected at most once, nothing after its end, ended at most once),
//! every connection's output stays within its bound, the gauges agree with what is held, the caps
//! hold. At the end every client leaves and time runs out: every connected peer has been reported
//! gone exactly once, every request that never connected ended, every id is released, nothing is
//! held.
#![no_main]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::{frame, Input, LIMITS, OUT_BOUND};

use wss_core::endpoint::MAX_REFUSING;
use wss_core::event::Verdict;
use wss_core::event::{Command, Event, Packet, PeerId};
use wss_core::peer::PeerShared;
use wss_core::sim::Sim;
use wss_core::stats::gauge;
use wss_core::ServerConfig;

const MAX_CONNECTIONS: usize = 6;
const PER_ADDRESS: usize = 3;

const REQUEST: &[u8] = b"GET /fuzz HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// What the game knows of one id.
#[derive(Default)]
struct Known {
    requested: bool,
    peer: Option<Arc<PeerShared>>,
    ended: bool,
    /// Lengths of messages told and not read.
    unread: VecDeque<usize>,
}

#[derive(Default)]
struct Game {
    ids: HashMap<PeerId, Known>,
    /// Commands the game gives in answer to events (releases), given at the next step.
    releases: Vec<PeerId>,
}

impl Game {
    fn take(&mut self, events: Vec<Event>) {
        for e in events {
            let id = e.id();
            let k = self.ids.entry(id).or_default();
            assert!(!k.ended, "an event after the end of {id}: {e:?}");
            match e {
                Event::Requested { .. } => {
                    assert!(!k.requested && k.peer.is_none(), "requested twice or late: {id}");
                    k.requested = true;
                }
                Event::RequestEnded { .. } => {
                    assert!(k.requested && k.peer.is_none(), "a request's end without it: {id}");
                    k.ended = true;
                    self.releases.push(id);
                }
                Event::Connected { peer, .. } => {
                    assert!(k.peer.is_none(), "connected twice: {id}");
                    assert!((2..=i32::MAX).contains(&id));
                    k.peer = Some(peer);
                }
                Event::Message { packet, .. } => {
                    assert!(k.peer.is_some(), "a message before Connected: {id}");
                    assert!(packet.data.len() <= LIMITS.inbound_buffer_size);
                    if packet.text {
                        assert!(std::str::from_utf8(&packet.data).is_ok());
                    }
                    k.unread.push_back(packet.data.len());
                    assert!(k.unread.len() <= LIMITS.max_queued_packets, "queue past its limit");
                }
                Event::CloseRequest { .. } | Event::ProtocolError { .. } => {
                    assert!(k.peer.is_some(), "{e:?} before Connected");
                }
                Event::Disconnected { .. } => {
                    assert!(k.peer.is_some(), "Disconnected for a peer never connected: {id}");
                    k.ended = true;
                    self.releases.push(id);
                }
            }
        }
    }

    fn live_peers(&self) -> Vec<Arc<PeerShared>> {
        let mut peers: Vec<_> = self
            .ids
            .values()
            .filter(|k| !k.ended)
            .filter_map(|k| k.peer.clone())
            .collect();
        peers.sort_by_key(|p| p.id);
        peers
    }

    fn waiting_requests(&self) -> Vec<PeerId> {
        let mut ids: Vec<_> = self
            .ids
            .iter()
            .filter(|(_, k)| k.requested && k.peer.is_none() && !k.ended)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

fn check(sim: &mut Sim) {
    for (_, out, capacity) in sim.endpoint.buffers() {
        assert!(out <= OUT_BOUND, "{out} bytes wait for a socket");
        assert!(capacity <= 4 * OUT_BOUND, "{capacity} bytes of output memory");
    }
    let totals = sim.totals();
    let (open, handshaking) = (gauge(&totals.open), gauge(&totals.handshaking));
    assert!(
        open + handshaking <= sim.endpoint.len() as u64,
        "gauges past what is held"
    );
    assert!(sim.endpoint.len() <= MAX_CONNECTIONS + MAX_REFUSING, "over the caps");
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(flags) = input.byte() else { return };
    let mut sim = Sim::new(&ServerConfig {
        limits: LIMITS,
        multiplayer: flags & 1 != 0,
        authorize: flags & 2 != 0,
        max_connections: MAX_CONNECTIONS,
        max_handshakes_per_address: PER_ADDRESS,
        heartbeat_interval: (flags & 4 != 0).then_some(Duration::from_secs(5)),
        ..ServerConfig::default()
    });
    let mut game = Game::default();
    let mut clients: Vec<u64> = Vec::new();
    let mut port = 1u16;
    for _ in 0..256 {
        let Some(op) = input.byte() else { break };
        let arg = input.byte().unwrap_or(0);
        let client = (!clients.is_empty()).then(|| clients[arg as usize % clients.len()]);
        for id in game.releases.drain(..) {
            sim.command(Command::Release { id });
        }
        match op % 14 {
            0 => {
                if clients.len() < 24 {
                    port += 1;
                    let host = arg % 4;
                    if let Some(c) = sim.connect(SocketAddr::from(([10, 0, 0, host], port))) {
                        clients.push(c);
                    }
                }
            }
            1 => {
                if let Some(c) = client {
                    sim.send(c, REQUEST);
                }
            }
            2 => {
                if let Some(c) = client {
                    let n = input.byte().unwrap_or(0) as usize;
                    let bytes = input.take(n).to_vec();
                    sim.send(c, &bytes);
                }
            }
            3 => {
                if let Some(c) = client {
                    let len = input.byte().unwrap_or(0) as usize * (1 + (arg as usize >> 7) * 8);
                    let first = input.byte().unwrap_or(0x82);
                    let payload = input.take(len).to_vec();
                    sim.send(c, &frame(first, &payload));
                }
            }
            4 => {
                if let Some(c) = client {
                    sim.close(c);
                }
            }
            5 => {
                if let Some(c) = client {
                    sim.reset(c);
                }
            }
            6 => {
                if let Some(c) = client {
                    sim.set_room(c, if arg & 1 == 0 { None } else { Some(arg as usize * 8) });
                }
            }
            // The game sends to one peer, or to several.
            7 => {
                let peers = game.live_peers();
                let len = arg as usize * 4;
                let chosen: Vec<_> = peers
                    .iter()
                    .filter(|p| p.id as u8 & arg & 3 != 0 || arg & 4 != 0)
                    .collect();
                let ids: Vec<PeerId> = chosen
                    .iter()
                    .filter(|p| p.reserve_outbound(len).is_ok())
                    .map(|p| p.id)
                    .collect();
                let packet = Packet {
                    data: vec![b'a'; len].into(),
                    text: arg & 1 != 0,
                    compress: (arg & 2 != 0),
                };
                match ids.as_slice() {
                    [] => {}
                    [id] => sim.command(Command::Send { id: *id, packet }),
                    _ => sim.command(Command::SendMany { ids, packet }),
                }
            }
            // The game closes, fails, or aborts a peer.
            8 => {
                if let Some(p) = game.live_peers().get(arg as usize % 8) {
                    let id = p.id;
                    match arg % 3 {
                        0 => sim.command(Command::Close {
                            id,
                            code: 4000,
                            reason: "bye".into(),
                        }),
                        1 => sim.command(Command::Fail { id }),
                        _ => {
                            // As `Server::abort`: the game forgets it at once.
                            sim.command(Command::Abort { id });
                            let k = game.ids.get_mut(&id).unwrap();
                            k.ended = true;
                        }
                    }
                }
            }
            // The game reads a peer's messages; a drained queue resumes reading.
            9 => {
                for p in game.live_peers() {
                    let k = game.ids.get_mut(&p.id).unwrap();
                    for _ in 0..(arg % 4 + 1) {
                        let Some(len) = k.unread.pop_front() else { break };
                        if p.sub_inbound(len) {
                            sim.command(Command::Resume { id: p.id });
                        }
                    }
                }
            }
            // The game decides on a waiting request.
            10 => {
                if let Some(&id) = game.waiting_requests().get(arg as usize % 4) {
                    let verdict = if arg & 8 == 0 {
                        Verdict::Accept {
                            protocol: None,
                            headers: vec![],
                        }
                    } else {
                        Verdict::Reject {
                            status: 403,
                            headers: String::new(),
                            body: "no".into(),
                        }
                    };
                    sim.command(Command::Decide { id, verdict });
                }
            }
            11 => sim.advance(Duration::from_millis(arg as u64 * 100)),
            12 => {
                sim.advance_to_next_deadline();
            }
            _ => sim.turn(),
        }
        let events = sim.take_events();
        game.take(events);
        check(&mut sim);
    }
    // Everyone leaves (their kernels take whatever was still sent to them), or (flag 8) the game
    // shuts the server down gracefully and the clients stay silent; the game reads what it was
    // told; requests still waiting are left to their deadline; time runs out.
    let shut_down = flags & 8 != 0;
    if shut_down {
        sim.command(Command::ShutDown {
            code: 1001,
            reason: "bye".into(),
            timeout: Duration::from_secs(5),
        });
    }
    for c in sim.held() {
        sim.set_room(c, None);
        if !shut_down {
            sim.close(c);
        }
    }
    for _ in 0..64 {
        for id in game.releases.drain(..) {
            sim.command(Command::Release { id });
        }
        for p in game.live_peers() {
            let k = game.ids.get_mut(&p.id).unwrap();
            while let Some(len) = k.unread.pop_front() {
                if p.sub_inbound(len) {
                    sim.command(Command::Resume { id: p.id });
                }
            }
        }
        if !sim.advance_to_next_deadline() {
            sim.turn();
        }
        let events = sim.take_events();
        game.take(events);
        check(&mut sim);
        if sim.endpoint.is_empty() {
            break;
        }
    }
    assert!(sim.endpoint.is_empty(), "connections held after every client left");
    assert_eq!(
        sim.endpoint.is_drained(),
        shut_down,
        "a shutdown is over once nothing is held"
    );
    for (id, k) in &game.ids {
        if k.peer.is_some() || k.requested {
            assert!(k.ended, "{id} was never reported gone");
        }
    }
    let totals = sim.totals();
    assert_eq!(
        (gauge(&totals.open), gauge(&totals.handshaking)),
        (0, 0),
        "gauges back at 0"
    );
});
