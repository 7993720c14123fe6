//! Memory that returns: after a large message has passed through a connection both ways, the
//! connection holds no more than before it (tungstenite's read buffer grew to a frame's size and
//! kept that size, shared with the frame's payload, for the rest of the connection; its write
//! buffer kept the size of the longest message sent). Live heap bytes are
//! counted by this binary's allocator; its only test runs alone, in both I/O modes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use wss_core::{IoMode, Limits, Server, ServerConfig, Signal};

mod common;
use common::listen;

mod counting;
use counting::LIVE;

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const MIB: usize = 1 << 20;

/// A masked binary frame.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x82, 0x80 | 127];
    f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]); // a zero mask: the payload goes as it is
    f.extend_from_slice(payload);
    f
}

/// Polls until one message arrived, reads it, sends it back if `echo`, and lets it go; returns
/// its size.
fn take_one(server: &mut Server, echo: bool) -> usize {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        server.poll().unwrap();
        while let Some(signal) = server.next_signal() {
            if let Signal::DataReceived { id } = signal {
                let peer = server.peer(id).unwrap();
                let packet = peer.pop().unwrap();
                if echo {
                    peer.send(packet.data.to_vec(), false).unwrap();
                }
                return packet.data.len();
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no message in 10 s");
}

/// Live heap bytes once they stop changing (the I/O thread may still be finishing its turn).
fn settled() -> isize {
    let mut last = LIVE.load(Relaxed);
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = LIVE.load(Relaxed);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[test]
fn a_large_message_leaves_nothing_behind() {
    for io in [IoMode::Thread, IoMode::Inline] {
        let mut server = listen(ServerConfig {
            io,
            limits: Limits {
                inbound_buffer_size: 2 * MIB,
                outbound_buffer_size: 2 * MIB,
                ..Limits::default()
            },
            heartbeat_interval: None,
            ..ServerConfig::default()
        });
        let mut client = TcpStream::connect(("127.0.0.1", server.local_addr().port())).unwrap();
        client.write_all(UPGRADE).unwrap();
        client.write_all(&frame(b"small")).unwrap();
        assert_eq!(take_one(&mut server, false), 5);
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            client.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let before = settled();

        let big = vec![7u8; MIB];
        let writer = {
            let mut c = client.try_clone().unwrap();
            std::thread::spawn(move || c.write_all(&frame(&big)).unwrap())
        };
        let reader = {
            let mut c = client.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut echo = vec![0u8; 10 + MIB];
                c.read_exact(&mut echo).unwrap();
                echo[10..].iter().all(|&b| b == 7)
            })
        };
        assert_eq!(take_one(&mut server, true), MIB);
        writer.join().unwrap();
        // The game polls on, as its next frames would, until the echo is out.
        while !reader.is_finished() {
            server.poll().unwrap();
            while server.next_signal().is_some() {}
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(reader.join().unwrap(), "the echo came back whole");
        server.poll().unwrap();
        while server.next_signal().is_some() {}
        let after = settled();
        let kept = after - before;
        assert!(
            kept < 64 * 1024,
            "{io:?}: the connection kept {kept} bytes more after a 1 MiB message each way"
        );
        drop(client);
        server.stop();
    }
}
