//! The graceful shutdown (`Server::shut_down`, `Endpoint::shut_down`): in the simulator with
//! virtual time (every kind of connection at once, the timeout), and over loopback in both I/O
//! modes (the port is free when the call returns, the Close follows what was queued, the server
//! reports the end once the last client is gone).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};
use wss_core::event::{Command, Event};
use wss_core::sim::Sim;
use wss_core::{IoMode, Server, ServerConfig, ShutdownError, Signal};

mod common;
use common::listen;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn addr(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], port))
}

/// A masked client frame (FIN set) with a payload under 126 bytes.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// The (opcode, payload) of the unmasked server frames in `bytes` after the HTTP head.
fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        bytes = &bytes[end + 4..];
    }
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let len = (bytes[1] & 0x7f) as usize;
        assert!(len < 126, "short frames only");
        out.push((bytes[0] & 0x0f, bytes[2..2 + len].to_vec()));
        bytes = &bytes[2 + len..];
    }
    out
}

#[test]
fn a_shutdown_closes_every_kind_of_connection_and_drops_the_rest_at_the_timeout() {
    let mut sim = Sim::new(&ServerConfig {
        authorize: true,
        heartbeat_interval: None,
        close_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    });
    // Two open clients (accepted by the game), one waiting for a decision, one whose request is
    // not complete.
    let open: Vec<u64> = (1..=2).map(|i| sim.connect(addr(i, 1)).unwrap()).collect();
    for &c in &open {
        sim.send(c, REQUEST);
    }
    let asked: Vec<_> = sim
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::Requested { id, .. } => id,
            other => panic!("{other:?}"),
        })
        .collect();
    for &id in &asked {
        sim.command(Command::Decide {
            id,
            verdict: wss_core::Verdict::Accept {
                protocol: None,
                headers: vec![],
            },
        });
    }
    sim.turn();
    let ids: Vec<_> = sim
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::Connected { peer, .. } => peer.id,
            other => panic!("{other:?}"),
        })
        .collect();
    let deciding = sim.connect(addr(3, 1)).unwrap();
    sim.send(deciding, REQUEST);
    let Some(Event::Requested { id: deciding_id, .. }) = sim.take_events().pop() else {
        panic!("no request")
    };
    let partial = sim.connect(addr(4, 1)).unwrap();
    sim.send(partial, &REQUEST[..20]);
    for &c in &open {
        sim.received(c);
    }

    // The game queued a message for the first client just before shutting down.
    sim.command(Command::Send {
        id: ids[0],
        packet: wss_core::Packet {
            data: bytes::Bytes::from_static(b"last words"),
            text: true,
            compress: true,
        },
    });
    sim.command(Command::ShutDown {
        code: 1001,
        reason: "restarting".into(),
        timeout: Duration::from_secs(5),
    });
    sim.turn();
    assert!(sim.connect(addr(5, 1)).is_none(), "nobody new is taken");
    // The queued message, then the Close.
    let mut close = vec![0x03, 0xe9];
    close.extend_from_slice(b"restarting");
    assert_eq!(
        frames(&sim.received(open[0])),
        vec![(1, b"last words".to_vec()), (8, close.clone())]
    );
    assert_eq!(frames(&sim.received(open[1])), vec![(8, close)]);
    let answer = String::from_utf8(sim.received(deciding)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(!sim.is_held(partial), "an unfinished request is dropped");
    let events = sim.take_events();
    assert!(
        matches!(&events[..], [Event::RequestEnded { id, why: "the server is shutting down" }] if *id == deciding_id),
        "{events:?}"
    );

    // The first client answers its Close; the second never does.
    sim.send(open[0], &frame(8, &[0x03, 0xe9]));
    let events = sim.take_events();
    assert!(
        matches!(&events[..], [Event::Disconnected { id, clean: true }] if *id == ids[0]),
        "{events:?}"
    );
    assert!(!sim.endpoint.is_drained());
    sim.advance(Duration::from_secs(4));
    assert!(sim.take_events().is_empty(), "nothing before the timeout");
    sim.advance(Duration::from_secs(1));
    let events = sim.take_events();
    assert!(
        matches!(&events[..], [Event::Disconnected { id, clean: false }] if *id == ids[1]),
        "{events:?}"
    );
    assert!(sim.endpoint.is_drained());
    assert!(sim.held().is_empty());
}

fn connect(port: u16, path: &str) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
        .unwrap()
        .0
}

/// Polls like a game loop until `done` (or 10 s), collecting signals.
fn poll_until(server: &mut Server, got: &mut Vec<Signal>, mut done: impl FnMut(&Server, &[Signal]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(server, got) {
        assert!(Instant::now() < deadline, "timed out; signals so far: {got:?}");
        server.poll().unwrap();
        while let Some(s) = server.next_signal() {
            got.push(s);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn shutdown_over_loopback(io: IoMode) {
    let mut server = listen(ServerConfig {
        io,
        close_timeout: Duration::from_secs(30),
        ..ServerConfig::default()
    });
    let port = server.local_addr().port();
    // (In threads: with inline I/O, nothing answers them unless the test polls.)
    let clients: Vec<_> = ["/polite", "/silent"]
        .map(|path| std::thread::spawn(move || connect(port, path)))
        .into_iter()
        .collect();
    let mut got = Vec::new();
    poll_until(&mut server, &mut got, |_, g| g.len() == 2);
    let mut clients = clients.into_iter().map(|c| c.join().unwrap());
    let (mut polite, mut silent) = (clients.next().unwrap(), clients.next().unwrap());
    let id_of = |path: &str| {
        got.iter()
            .find_map(|s| match s {
                Signal::Connected { id, resource, .. } if resource == path => Some(*id),
                _ => None,
            })
            .unwrap()
    };
    let ids = [id_of("/polite"), id_of("/silent")];
    for &id in &ids {
        server.peer(id).unwrap().send(&b"before"[..], true).unwrap();
    }

    server
        .shut_down(1001, "going away now", Duration::from_secs(2))
        .unwrap();
    assert!(!server.is_listening() && server.is_shutting_down());
    // The port is free the moment the call returns.
    let taken = TcpListener::bind(("127.0.0.1", port));
    assert!(taken.is_ok(), "port still bound: {taken:?}");
    drop(taken);
    assert_eq!(
        server.shut_down(1001, "", Duration::from_secs(1)),
        Err(ShutdownError::AlreadyShuttingDown)
    );
    assert!(
        server.peer(ids[0]).unwrap().send(&b"after"[..], true).is_err(),
        "sends after the shutdown are refused"
    );

    // The polite client reads what was queued, then the Close, and answers it.
    let inline_polls = |server: &mut Server| {
        if io == IoMode::Inline {
            server.poll().unwrap();
        }
    };
    assert_eq!(polite.read().unwrap(), Message::text("before"));
    inline_polls(&mut server);
    match polite.read().unwrap() {
        Message::Close(Some(f)) => {
            assert_eq!(f.code, CloseCode::Away);
            assert_eq!(f.reason, "going away now");
        }
        other => panic!("{other:?}"),
    }
    polite.flush().unwrap(); // tungstenite queued the reply
    got.clear();
    poll_until(&mut server, &mut got, |_, g| !g.is_empty());
    assert_eq!(
        got,
        vec![Signal::Disconnected {
            id: ids[0],
            clean: true
        }]
    );
    assert!(!server.is_shut_down(), "one client is still there");

    // The silent one never answers: dropped at the timeout, and the shutdown is over.
    let started = Instant::now();
    got.clear();
    poll_until(&mut server, &mut got, |s, _| s.is_shut_down());
    assert_eq!(
        got,
        vec![Signal::Disconnected {
            id: ids[1],
            clean: false
        }]
    );
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "dropped after {waited:?}");
    // It got the message and the Close before being dropped, then the end of the stream.
    assert_eq!(silent.read().unwrap(), Message::text("before"));
    assert!(matches!(silent.read().unwrap(), Message::Close(Some(_))));
    let mut rest = Vec::new();
    let _ = silent.get_mut().read_to_end(&mut rest);
    server.stop();
    assert!(!server.is_running());
}

#[test]
fn a_shutdown_over_loopback_with_the_io_thread() {
    shutdown_over_loopback(IoMode::Thread);
}

#[test]
fn a_shutdown_over_loopback_with_inline_io() {
    shutdown_over_loopback(IoMode::Inline);
}

#[test]
fn a_shutdown_without_clients_is_over_at_the_next_poll_and_bad_calls_are_refused() {
    let mut server = listen(ServerConfig::default());
    assert_eq!(
        server.shut_down(1005, "", Duration::from_secs(1)),
        Err(ShutdownError::BadCode(1005))
    );
    assert!(server.is_listening());
    let long = "é".repeat(100);
    assert_eq!(
        server.shut_down(1001, &long, Duration::from_secs(1)),
        Ok(true),
        "reason cut"
    );
    let mut got = Vec::new();
    poll_until(&mut server, &mut got, |s, _| s.is_shut_down());
    assert!(got.is_empty());
    server.stop();
    assert_eq!(
        server.shut_down(1001, "", Duration::from_secs(1)),
        Err(ShutdownError::NotListening)
    );
}
