//! What is particular to inline I/O (`IoMode::Inline`): the socket work happens inside `poll()`
//! and nowhere else, and the replies the handlers queue leave before the poll returns. Everything
//! the two modes share is tested in both by `hostile.rs` and by the Godot and Python suites.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use wss_core::{IoMode, Server, ServerConfig, Signal};

mod common;
use common::listen;

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Reads the HTTP response head (up to the blank line).
fn read_head(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

fn inline_server() -> Server {
    let server = listen(ServerConfig {
        io: IoMode::Inline,
        ..ServerConfig::default()
    });
    assert_eq!(server.io_mode(), Some(IoMode::Inline));
    server
}

fn nothing_arrives(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    let quiet = s.read(&mut byte).is_err();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    quiet
}

#[test]
fn nothing_happens_between_polls() {
    let mut server = inline_server();
    let mut s = TcpStream::connect(("127.0.0.1", server.local_addr().port())).unwrap();
    s.write_all(UPGRADE).unwrap();
    assert!(
        nothing_arrives(&mut s, Duration::from_millis(300)),
        "answered without a poll"
    );
    // One poll accepts, reads the request and writes the response.
    server.poll().unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(matches!(server.next_signal(), Some(Signal::Connected { .. })));
    assert_eq!(server.next_signal(), None);
}

#[test]
fn replies_leave_before_the_poll_returns() {
    let mut server = inline_server();
    let mut s = TcpStream::connect(("127.0.0.1", server.local_addr().port())).unwrap();
    s.write_all(UPGRADE).unwrap();
    // The message right behind the request: a masked text frame "hi".
    s.write_all(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]).unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    let mut echoed = false;
    while !echoed && Instant::now() < end {
        server.poll().unwrap();
        while let Some(signal) = server.next_signal() {
            if let Signal::DataReceived { id } = signal {
                let peer = server.peer(id).unwrap();
                let packet = peer.pop().unwrap();
                peer.send(packet.data, true).unwrap();
                echoed = true;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(echoed);
    // No poll after the one whose handler answered: the echo is already on the wire.
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    let mut got = [0u8; 4];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"\x81\x02hi");
    // A send outside poll goes out with the next poll, not before.
    let id = server.peer_ids().next().unwrap();
    server.peer(id).unwrap().send(b"later".to_vec(), true).unwrap();
    assert!(
        nothing_arrives(&mut s, Duration::from_millis(200)),
        "written without a poll"
    );
    server.poll().unwrap();
    let mut later = [0u8; 7];
    s.read_exact(&mut later).unwrap();
    assert_eq!(&later, b"\x81\x05later");
    // A multi-send is written by `flush`, without a poll.
    assert!(server.send_each([(id, b"now".to_vec().into(), true)]).is_empty());
    assert!(
        nothing_arrives(&mut s, Duration::from_millis(100)),
        "written before the flush"
    );
    server.flush();
    let mut now = [0u8; 5];
    s.read_exact(&mut now).unwrap();
    assert_eq!(&now, b"\x81\x03now");
}

#[test]
fn stop_closes_every_socket_at_once() {
    let mut server = inline_server();
    let port = server.local_addr().port();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(UPGRADE).unwrap();
    server.poll().unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    server.stop();
    assert!(!server.is_running());
    let mut byte = [0u8; 1];
    assert!(matches!(s.read(&mut byte), Ok(0) | Err(_)), "the connection is closed");
    // The port is free at once.
    let again = Server::listen(&ServerConfig {
        bind_ip: wss_core::BindIp::parse("127.0.0.1").unwrap(),
        port,
        io: IoMode::Inline,
        ..ServerConfig::default()
    })
    .unwrap();
    assert_eq!(again.local_addr().port(), port);
}

/// A message the game queued before the client's Close reached the server goes out before the
/// Close reply. A turn used to read the sockets before taking the game's commands, so when both
/// waited for the same turn (a slow or loaded machine, or inline I/O polled once a frame), the
/// reply went first and the message was dropped without a word: seen as
/// `loopback tls::wss_close_delivers_everything_queued_and_close_notify` failing under qemu.
#[test]
fn a_message_queued_before_the_clients_close_arrives_goes_out_before_the_close_reply() {
    let mut server = inline_server();
    let mut s = TcpStream::connect(("127.0.0.1", server.local_addr().port())).unwrap();
    s.write_all(UPGRADE).unwrap();
    server.poll().unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
    let Some(Signal::Connected { id, .. }) = server.next_signal() else {
        panic!("not connected")
    };
    // The game queues a message; before its next poll, the client's Close (1000) arrives.
    server.peer(id).unwrap().send(b"bye".to_vec(), true).unwrap();
    s.write_all(&[0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    server.poll().unwrap();
    let mut got = [0u8; 9];
    s.read_exact(&mut got).unwrap();
    assert_eq!(
        &got, b"\x81\x03bye\x88\x02\x03\xe8",
        "the message, then the Close reply"
    );
}

/// The stock Godot pattern: `poll()`, then each peer's packets read with `get_packet()` (`pop`)
/// and answered, in the same frame. A client that sends a message and then breaks the protocol
/// must get the answer to that message before the Close for the violation. The Close used to be
/// ordered as soon as `poll()` reported the violation, before the game had read the message, so
/// the answer came after the Close and was dropped (Autobahn 3.2, 4.1.3 ... NON-STRICT).
#[test]
fn the_close_for_a_violation_follows_the_answers_to_the_messages_read_after_poll() {
    let mut server = inline_server();
    let mut s = TcpStream::connect(("127.0.0.1", server.local_addr().port())).unwrap();
    s.write_all(UPGRADE).unwrap();
    // "hi", then a frame with a reserved bit set (a violation: 1002).
    s.write_all(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]).unwrap();
    s.write_all(&[0xc1, 0x80, 1, 2, 3, 4]).unwrap();
    // The game's frames: poll, then read every peer's packets and answer each; until the client
    // has the response head, the answer and the Close (or 5 s have passed).
    s.set_nonblocking(true).unwrap();
    let mut answered = 0;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.windows(2).all(|w| w != [0x88, 0x10]) && Instant::now() < deadline {
        server.poll().unwrap();
        while server.next_signal().is_some() {}
        for id in server.peer_ids().collect::<Vec<_>>() {
            let peer = server.peer(id).unwrap();
            while let Some(packet) = peer.pop() {
                if peer.send(packet.data, true).is_ok() {
                    answered += 1;
                }
            }
        }
        let mut buf = [0u8; 512];
        if let Ok(n) = s.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(answered, 1, "the game answered the message");
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").expect("a response") + 4;
    assert!(got.starts_with(b"HTTP/1.1 101 "));
    let frames = &got[head_end..];
    assert!(frames.len() >= 8, "{frames:?}");
    assert_eq!(&frames[..4], b"\x81\x02hi", "the answer first");
    let close = &frames[4..8];
    assert_eq!(&close, b"\x88\x10\x03\xea", "then the Close, 1002 with its reason");
}
