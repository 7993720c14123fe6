//! The whole server (I/O thread, queues, game-side ordering) over loopback, with tungstenite's
//! blocking client on other threads.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::{Message, WebSocket};
use wss_core::{BindIp, Limits, PeerState, Server, ServerConfig, Signal};

mod common;
use common::listen;

fn connect(server: &Server, path: &str) -> WebSocket<TcpStream> {
    let port = server.local_addr().port();
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream).unwrap();
    ws
}

/// Polls like a game loop until `n` signals arrived (or 5 s passed).
fn signals(server: &mut Server, n: usize) -> Vec<Signal> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        server.poll().unwrap();
        while let Some(s) = server.next_signal() {
            got.push(s);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    got
}

fn connected_id(s: &Signal) -> i32 {
    match s {
        Signal::Connected { id, .. } => *id,
        other => panic!("expected Connected, got {other:?}"),
    }
}

#[test]
fn echo_with_several_clients() {
    let mut server = listen(ServerConfig::default());
    let mut clients: Vec<_> = (0..5).map(|i| connect(&server, &format!("/c{i}?x=1"))).collect();
    let got = signals(&mut server, 5);
    assert_eq!(got.len(), 5);
    let mut ids: Vec<i32> = got.iter().map(connected_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "ids are unique");
    assert!(got
        .iter()
        .all(|s| matches!(s, Signal::Connected { resource, .. } if resource.ends_with("?x=1"))));

    for (i, c) in clients.iter_mut().enumerate() {
        c.send(Message::text(format!("hello {i}"))).unwrap();
    }
    let got = signals(&mut server, 5);
    for s in &got {
        let Signal::DataReceived { id } = s else {
            panic!("{s:?}")
        };
        let peer = server.peer(*id).unwrap();
        let packet = peer.pop().unwrap();
        assert!(packet.text);
        peer.send(packet.data, true).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.read().unwrap(), Message::text(format!("hello {i}")));
    }
}

#[test]
fn close_both_ways() {
    let mut server = listen(ServerConfig::default());
    let mut a = connect(&server, "/");
    let mut b = connect(&server, "/");
    let got = signals(&mut server, 2);
    let ids: Vec<i32> = got.iter().map(connected_id).collect();

    a.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "leaving".into(),
    }))
    .unwrap();
    let got = signals(&mut server, 2);
    assert!(
        matches!(&got[0], Signal::CloseRequest { code: 1001, reason, .. } if reason == "leaving"),
        "{got:?}"
    );
    assert!(matches!(&got[1], Signal::Disconnected { clean: true, .. }), "{got:?}");
    let gone = match &got[1] {
        Signal::Disconnected { id, .. } => *id,
        _ => unreachable!(),
    };
    let other = *ids.iter().find(|i| **i != gone).unwrap();
    assert!(server.peer(gone).is_none());

    let peer = server.peer(other).unwrap().clone();
    peer.close(4001, "bye").unwrap();
    assert_eq!(peer.send(vec![1u8], false), Err(wss_core::SendError::NotOpen));
    match b.read() {
        Ok(Message::Close(Some(f))) => {
            assert_eq!(u16::from(f.code), 4001);
            assert_eq!(f.reason, "bye");
        }
        other => panic!("{other:?}"),
    }
    let _ = b.flush(); // the client's answer
    let got = signals(&mut server, 1);
    assert_eq!(got, vec![Signal::Disconnected { id: other, clean: true }]);
    assert_eq!(peer.state(), PeerState::Closed);
}

#[test]
fn abrupt_disconnect_is_unclean() {
    let mut server = listen(ServerConfig::default());
    let c = connect(&server, "/");
    let id = connected_id(&signals(&mut server, 1)[0]);
    drop(c);
    assert_eq!(signals(&mut server, 1), vec![Signal::Disconnected { id, clean: false }]);
}

#[test]
fn backpressure_delivers_everything_in_order() {
    let limits = Limits {
        max_queued_packets: 4,
        ..Limits::default()
    };
    let mut server = listen(ServerConfig {
        limits,
        ..ServerConfig::default()
    });
    let mut c = connect(&server, "/");
    let id = connected_id(&signals(&mut server, 1)[0]);
    let sender = std::thread::spawn(move || {
        for i in 0..200u32 {
            c.send(Message::binary(i.to_le_bytes().to_vec())).unwrap();
        }
        c
    });
    // The game reads slowly; the I/O thread must stop reading rather than drop anything.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 200 && Instant::now() < deadline {
        server.poll().unwrap();
        while server.next_signal().is_some() {}
        let peer = server.peer(id).unwrap();
        assert!(peer.available() <= 4, "never more than max_queued_packets waiting");
        if let Some(p) = peer.pop() {
            seen.push(u32::from_le_bytes(p.data[..].try_into().unwrap()));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(seen, (0..200).collect::<Vec<_>>());
    drop(sender.join());
}

#[test]
fn outbound_limit_refuses_instead_of_dropping() {
    let limits = Limits {
        outbound_buffer_size: 1000,
        ..Limits::default()
    };
    let mut server = listen(ServerConfig {
        limits,
        ..ServerConfig::default()
    });
    let _c = connect(&server, "/");
    let id = connected_id(&signals(&mut server, 1)[0]);
    let peer = server.peer(id).unwrap();
    assert_eq!(
        peer.send(vec![0u8; 1001], false),
        Err(wss_core::SendError::Full("outbound_buffer_size"))
    );
    assert_eq!(peer.send(vec![0u8; 1000], false), Ok(()));
}

#[test]
fn port_in_use_and_bad_address() {
    let server = listen(ServerConfig::default());
    let port = server.local_addr().port();
    let again = Server::listen(&ServerConfig {
        bind_ip: BindIp::parse("127.0.0.1").unwrap(),
        port,
        ..Default::default()
    });
    assert!(matches!(again, Err(wss_core::ListenError::InUse(_))));
    let foreign = Server::listen(&ServerConfig {
        bind_ip: BindIp::parse("203.0.113.7").unwrap(),
        port: 0,
        ..Default::default()
    });
    assert!(matches!(foreign, Err(wss_core::ListenError::BadAddress(_))));
}

#[test]
fn stop_drops_everyone_without_signals() {
    let mut server = listen(ServerConfig::default());
    let mut c = connect(&server, "/");
    let id = connected_id(&signals(&mut server, 1)[0]);
    let peer = server.peer(id).unwrap().clone();
    server.stop();
    assert!(!server.is_running());
    assert_eq!(peer.state(), PeerState::Closed);
    assert!(peer.send(vec![1u8], false).is_err());
    assert!(c.read().is_err(), "the client's socket was closed");
    server.poll().unwrap();
    assert_eq!(server.next_signal(), None);
}

#[test]
fn abort_drops_at_once_and_silently() {
    let mut server = listen(ServerConfig::default());
    let mut c = connect(&server, "/");
    let id = connected_id(&signals(&mut server, 1)[0]);
    c.send(Message::text("in flight")).unwrap();
    assert!(server.abort(id));
    assert!(server.peer(id).is_none());
    assert!(!server.abort(id), "already gone");
    assert!(c.read().is_err(), "the socket was closed without a close frame");
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        server.poll().unwrap();
        assert_eq!(server.next_signal(), None, "no signal for an aborted peer");
    }
}

#[test]
fn extra_headers_can_change_while_listening() {
    let server = listen(ServerConfig {
        extra_headers: vec!["X-One: 1".into()],
        ..ServerConfig::default()
    });
    let port = server.local_addr().port();
    let get = || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_, resp) = tungstenite::client(format!("ws://127.0.0.1:{port}/"), s).unwrap();
        resp
    };
    assert_eq!(get().headers()["x-one"], "1");
    server.set_extra_headers(vec!["X-Two: 2".into()]);
    // The I/O thread takes the change with its next turn; no client sees a mix of the two.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = get();
        let (one, two) = (resp.headers().get("x-one"), resp.headers().get("x-two"));
        assert!(
            one.is_none() != two.is_none(),
            "one set or the other: {:?}",
            resp.headers()
        );
        if two.is_some_and(|v| v == "2") {
            break;
        }
        assert!(Instant::now() < deadline, "the new headers never came");
    }
}

mod tls {
    use super::*;
    use std::sync::Arc;
    use wss_core::tls::{server_config, TlsPem};

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../../godot-project/tests/data/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn client_config() -> Arc<rustls::ClientConfig> {
        wss_core::tls::client_config(fixture("root.crt").as_bytes()).unwrap()
    }

    /// A `wss://` server with the test chain (leaf, then the intermediate in `ca_chain`).
    fn tls_server(config: ServerConfig) -> Server {
        let pem = TlsPem {
            certificate: fixture("leaf.crt"),
            private_key: fixture("leaf.key"),
            ca_chain: fixture("intermediate.crt"),
        };
        listen(ServerConfig {
            tls: Some(server_config(&pem).unwrap()),
            ..config
        })
    }

    #[test]
    fn wss_echo_with_an_intermediate_in_ca_chain() {
        let mut server = tls_server(ServerConfig::default());
        let port = server.local_addr().port();

        // A plain client on the TLS port is dropped; the TLS client is unaffected.
        let plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
        plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(tungstenite::client(format!("ws://127.0.0.1:{port}/"), plain).is_err());

        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let conn = rustls::ClientConnection::new(client_config(), "localhost".try_into().unwrap()).unwrap();
        let tls = rustls::StreamOwned::new(conn, tcp);
        let (mut ws, _) = tungstenite::client(format!("wss://localhost:{port}/secure"), tls).unwrap();
        let got = signals(&mut server, 1);
        assert!(
            matches!(&got[..], [Signal::Connected { resource, .. }] if resource == "/secure"),
            "{got:?}"
        );
        let id = connected_id(&got[0]);
        let big = vec![7u8; 60_000];
        ws.send(Message::binary(big.clone())).unwrap();
        assert_eq!(signals(&mut server, 1), vec![Signal::DataReceived { id }]);
        let peer = server.peer(id).unwrap();
        peer.send(peer.pop().unwrap().data, false).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(big));
        peer.close(4000, "tls bye").unwrap();
        match ws.read() {
            Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 4000),
            other => panic!("{other:?}"),
        }
        let _ = ws.flush();
        assert_eq!(signals(&mut server, 1), vec![Signal::Disconnected { id, clean: true }]);
    }

    /// Regression (issue 8.4): two large messages queued for a slow TLS reader, then the client
    /// closes. Both messages, the Close reply and TLS's close_notify must reach the client before
    /// the server calls the close clean and drops the socket.
    #[test]
    fn wss_close_delivers_everything_queued_and_close_notify() {
        let mut server = tls_server(ServerConfig {
            limits: Limits {
                outbound_buffer_size: 32 << 20,
                ..Limits::default()
            },
            ..ServerConfig::default()
        });
        let port = server.local_addr().port();
        // A small receive window, so the server's socket fills while the client is not reading.
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
            .unwrap();
        let tcp: TcpStream = sock.into();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let conn = rustls::ClientConnection::new(client_config(), "localhost".try_into().unwrap()).unwrap();
        let tls = rustls::StreamOwned::new(conn, tcp);
        let (mut ws, _) = tungstenite::client(format!("wss://localhost:{port}/"), tls).unwrap();
        let id = connected_id(&signals(&mut server, 1)[0]);
        let peer = server.peer(id).unwrap().clone();
        // More than the kernel's largest send buffer (tcp_wmem's maximum is 4 MiB).
        const SIZE: usize = 6 << 20;
        peer.send(vec![1u8; SIZE], false).unwrap();
        peer.send(vec![2u8; SIZE], false).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            peer.outbound_buffered() > 0,
            "the test needs a full socket to mean anything"
        );
        ws.close(None).unwrap();
        // The server sees the Close (and answers it) while its output is still queued.
        let got = signals(&mut server, 1);
        assert!(matches!(got[..], [Signal::CloseRequest { code: 1005, .. }]), "{got:?}");
        let mut received = Vec::new();
        loop {
            match ws.read() {
                Ok(Message::Binary(d)) => received.push(d.len()),
                Ok(Message::Close(_)) => received.push(0),
                Ok(other) => panic!("{other:?}"),
                Err(tungstenite::Error::ConnectionClosed) => break,
                Err(e) => panic!("after {received:?}: {e}"),
            }
        }
        assert_eq!(received, vec![SIZE, SIZE, 0], "both messages, then the Close reply");
        let tls = ws.get_mut();
        let mut rest = Vec::new();
        let end = tls.read_to_end(&mut rest);
        assert!(
            end.is_ok(),
            "the stream ended with close_notify, not a bare FIN: {end:?}"
        );
        assert_eq!(signals(&mut server, 1), vec![Signal::Disconnected { id, clean: true }]);
    }
}

#[test]
fn multiplayer_mode_sends_ids_and_routes_by_target() {
    let mut server = listen(ServerConfig {
        multiplayer: true,
        ..ServerConfig::default()
    });
    let mut a = connect(&server, "/");
    let mut b = connect(&server, "/");
    let got = signals(&mut server, 2);
    let ids: Vec<i32> = got.iter().map(connected_id).collect();
    let first_message = |c: &mut WebSocket<TcpStream>| match c.read().unwrap() {
        Message::Binary(d) => i32::from_le_bytes(d[..].try_into().unwrap()),
        other => panic!("{other:?}"),
    };
    let (ida, idb) = (first_message(&mut a), first_message(&mut b));
    let mut sorted = vec![ida, idb];
    sorted.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(sorted, expected, "each client's first message is its id");

    a.send(Message::binary(vec![1u8])).unwrap();
    b.send(Message::binary(vec![2u8])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.queued_packets() < 2 && Instant::now() < deadline {
        server.poll().unwrap();
        assert_eq!(server.next_signal(), None, "no data_received in multiplayer mode");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut from = Vec::new();
    while let Some(sender) = server.packet_sender() {
        let (id, packet) = server.pop_packet().unwrap();
        assert_eq!(id, sender);
        from.push((id, packet.data[0]));
    }
    from.sort_by_key(|(_, byte)| *byte);
    assert_eq!(from, vec![(ida, 1), (idb, 2)]);

    server.send_to(0, vec![9u8].into(), false).unwrap();
    assert_eq!(a.read().unwrap(), Message::binary(vec![9u8]));
    assert_eq!(b.read().unwrap(), Message::binary(vec![9u8]));
    server.send_to(-ida, vec![8u8].into(), false).unwrap();
    server.send_to(ida, vec![7u8].into(), false).unwrap();
    assert_eq!(b.read().unwrap(), Message::binary(vec![8u8]), "everyone but a");
    assert_eq!(a.read().unwrap(), Message::binary(vec![7u8]), "a got only its own");
    assert_eq!(
        server.send_to(12345, vec![1u8].into(), false),
        Err(wss_core::TargetError::UnknownPeer(12345))
    );

    // A flag the I/O thread reads when it accepts: in force at once.
    server.set_refusing(true);
    let port = server.local_addr().port();
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(
        tungstenite::client(format!("ws://127.0.0.1:{port}/"), s).is_err(),
        "refused"
    );
    a.send(Message::binary(vec![3u8])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.queued_packets() < 1 && Instant::now() < deadline {
        server.poll().unwrap();
        while server.next_signal().is_some() {}
    }
    assert_eq!(
        server.pop_packet().map(|(id, p)| (id, p.data[0])),
        Some((ida, 3)),
        "existing peers unaffected"
    );
}

/// `set_no_delay` changes the server's own socket: found among this process's descriptors (the
/// I/O thread is in-process) by its peer address, and TCP_NODELAY read back.
#[cfg(target_os = "linux")]
#[test]
fn set_no_delay_changes_the_servers_socket() {
    use std::os::fd::BorrowedFd;
    let mut server = listen(ServerConfig::default());
    let client = connect(&server, "/");
    let client_addr = client.get_ref().local_addr().unwrap();
    let id = connected_id(&signals(&mut server, 1)[0]);
    let server_side_nodelay = || -> Option<bool> {
        for entry in std::fs::read_dir("/proc/self/fd").ok()? {
            let Some(fd) = entry.ok().and_then(|e| e.file_name().to_str()?.parse::<i32>().ok()) else {
                continue;
            };
            // SAFETY: only read while this function runs; the descriptor is open (listed) and a
            // descriptor that closes meanwhile only makes getsockopt fail.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let sock = socket2::SockRef::from(&fd);
            if sock.peer_addr().ok().and_then(|a| a.as_socket()) == Some(client_addr) {
                return sock.tcp_nodelay().ok();
            }
        }
        None
    };
    let wait_for = |want: bool| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while server_side_nodelay() != Some(want) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        server_side_nodelay()
    };
    assert_eq!(
        server_side_nodelay(),
        Some(true),
        "Nagle is off by default, as in Godot"
    );
    let peer = server.peer(id).unwrap();
    peer.set_no_delay(false);
    assert_eq!(wait_for(false), Some(false));
    peer.set_no_delay(true);
    assert_eq!(wait_for(true), Some(true));
}

/// `stop()` returns once the port is free (the I/O thread closes the connections after that, on
/// its own): listening again on the same port at once works, with many clients connected.
#[test]
fn stop_frees_the_port_at_once() {
    let mut server = listen(ServerConfig::default());
    let port = server.local_addr().port();
    let clients: Vec<_> = (0..300).map(|_| connect(&server, "/")).collect();
    assert_eq!(signals(&mut server, 300).len(), 300);
    server.stop();
    let again = Server::listen(&ServerConfig {
        bind_ip: BindIp::parse("127.0.0.1").unwrap(),
        port,
        ..ServerConfig::default()
    });
    assert!(again.is_ok(), "the port is free when stop() returns: {:?}", again.err());
    drop(clients);
    wss_core::join_stopped_io_threads();
}

/// `queue_messages`: no `DataReceived`; every peer's messages in one queue in arrival order, with
/// their senders; `send_each` answers each its own, in order, text or binary per message, and
/// reports what it could not queue.
#[test]
fn queued_messages_and_send_each() {
    let mut server = listen(ServerConfig {
        queue_messages: true,
        limits: Limits {
            outbound_buffer_size: 100,
            ..Limits::default()
        },
        ..ServerConfig::default()
    });
    let mut a = connect(&server, "/");
    let mut b = connect(&server, "/");
    let connected = signals(&mut server, 2);
    let (ida, idb) = (connected_id(&connected[0]), connected_id(&connected[1]));
    a.send(Message::text("a1")).unwrap();
    a.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.queued_packets() < 1 && Instant::now() < deadline {
        server.poll().unwrap();
        assert_eq!(server.next_signal(), None, "no DataReceived");
    }
    b.send(Message::binary(b"b1".to_vec())).unwrap();
    b.flush().unwrap();
    while server.queued_packets() < 2 && Instant::now() < deadline {
        server.poll().unwrap();
        assert_eq!(server.next_signal(), None, "no DataReceived");
    }
    let (first, p1) = server.pop_packet().unwrap();
    let (second, p2) = server.pop_packet().unwrap();
    assert_eq!((first, &p1.data[..], p1.text), (ida, &b"a1"[..], true));
    assert_eq!((second, &p2.data[..], p2.text), (idb, &b"b1"[..], false));
    assert_eq!(server.pop_packet(), None);
    let failed = server.send_each([
        (ida, b"x".to_vec().into(), false),
        (999, b"y".to_vec().into(), false),
        (ida, vec![0u8; 150].into(), false),
        (ida, b"z".to_vec().into(), true),
    ]);
    assert_eq!(
        failed,
        vec![
            (1, wss_core::BroadcastError::UnknownPeer),
            (
                2,
                wss_core::BroadcastError::Send(wss_core::SendError::Full("outbound_buffer_size"))
            ),
        ]
    );
    let got: Vec<Message> = (0..2).map(|_| a.read().unwrap()).collect();
    assert_eq!(got, vec![Message::binary(b"x".to_vec()), Message::text("z")]);
}

/// The I/O thread runs under `SCHED_BATCH`, so waking it never preempts the game's thread.
/// (A thread sets its policy as it starts; the I/O threads of other tests running beside this one
/// may have just been spawned, so the policies are read again until every one is set, up to 5 s.)
#[cfg(target_os = "linux")]
#[test]
fn io_thread_does_not_preempt_the_game() {
    let _server = listen(ServerConfig::default());
    let policies = || {
        let mut policies = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == "websocket-serve" {
                // Field 41 of /proc/<pid>/task/<tid>/stat is the policy (3: SCHED_BATCH); fields
                // are counted after the command name, which is in parentheses.
                let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                    continue; // a thread that ended meanwhile
                };
                let after = &stat[stat.rfind(')').unwrap() + 2..];
                policies.push(after.split(' ').nth(41 - 3).unwrap().to_owned());
            }
        }
        policies
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = policies();
    while !seen.iter().all(|p| p == "3") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        seen = policies();
    }
    assert!(!seen.is_empty(), "no I/O thread found");
    assert!(seen.iter().all(|p| p == "3"), "policies: {seen:?}");
}
