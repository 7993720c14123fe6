//! What permessage-deflate costs a connection, counted by this binary's allocator (live heap
//! bytes), with clients that compress their messages and inflate the server's (context takeover
//! on their side wherever the server agreed to it): the shared setting keeps no compression state
//! per connection (a few hundred bytes of bookkeeping), the dedicated setting keeps its two
//! windows of `2^window_bits` bytes and nothing more. The compressors themselves are per thread:
//! allocated before the count starts (a first client), not per connection. Inline I/O, so the
//! game's poll does all the work and the count settles when it returns.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression as Level, Decompress, FlushCompress, FlushDecompress};
use wss_core::{Compression, IoMode, Server, ServerConfig, Signal};

mod common;
use common::listen;

mod counting;
use counting::LIVE;

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// A client that offers permessage-deflate and keeps its compressor and inflater for the whole
/// connection (as browsers do), unless the server's answer asked it not to.
struct Client {
    tcp: TcpStream,
    compressor: Compress,
    inflater: Decompress,
    /// The server's answer allowed the client context takeover.
    takeover: bool,
    agreed: bool,
}

impl Client {
    fn connect(port: u16) -> Client {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        )
        .unwrap();
        let mut client = Client {
            tcp,
            compressor: Compress::new_with_window_bits(Level::default(), false, 12),
            inflater: Decompress::new_with_window_bits(false, 15),
            takeover: true,
            agreed: false,
        };
        // The client's own state allocated now (before the count starts), not while it talks.
        let mut z = Vec::with_capacity(64);
        client
            .compressor
            .compress_vec(b"warm up", &mut z, FlushCompress::Sync)
            .unwrap();
        client
            .inflater
            .decompress_vec(&z, &mut Vec::with_capacity(64), FlushDecompress::Sync)
            .unwrap();
        client.compressor.reset();
        client.inflater.reset(false);
        client
    }

    /// Reads the `101` answer (the game's poll runs meanwhile).
    fn read_answer(&mut self, server: &mut Server) {
        self.tcp.set_nonblocking(true).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        let end = Instant::now() + Duration::from_secs(10);
        while !head.ends_with(b"\r\n\r\n") {
            assert!(Instant::now() < end, "no answer");
            match self.tcp.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => pump(server),
            }
        }
        self.tcp.set_nonblocking(false).unwrap();
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        self.agreed = head.contains("permessage-deflate");
        self.takeover = !head.contains("client_no_context_takeover");
    }

    /// Sends `text` as one masked text frame, compressed if agreed.
    fn send(&mut self, text: &str) {
        let mut payload = text.as_bytes().to_vec();
        let mut first = 0x81u8;
        if self.agreed {
            if !self.takeover {
                self.compressor.reset();
            }
            let mut out = Vec::with_capacity(text.len() + 64);
            self.compressor
                .compress_vec(text.as_bytes(), &mut out, FlushCompress::Sync)
                .unwrap();
            assert!(out.ends_with(&TAIL));
            out.truncate(out.len() - 4);
            payload = out;
            first |= 0x40;
        }
        assert!(payload.len() < 65_536);
        let mut frame = vec![first, 0x80 | 126];
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(&payload);
        self.tcp.write_all(&frame).unwrap();
    }

    /// Reads one frame from the server (the game's poll runs meanwhile); its text, inflated.
    fn receive(&mut self, server: &mut Server) -> String {
        let mut frame = Vec::new();
        self.tcp.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        let (rsv1, payload) = loop {
            assert!(Instant::now() < end, "no message");
            // (Short frames: a 7-bit or 16-bit length.)
            let (start, len) = match frame.get(1) {
                Some(&n) if n < 126 => (2, usize::from(n)),
                Some(_) if frame.len() >= 4 => (4, usize::from(u16::from_be_bytes([frame[2], frame[3]]))),
                _ => (usize::MAX, 0),
            };
            if start != usize::MAX && frame.len() >= start + len {
                break (frame[0] & 0x40 != 0, frame[start..].to_vec());
            }
            match self.tcp.read(&mut buf) {
                Ok(n) if n > 0 => frame.extend_from_slice(&buf[..n]),
                _ => pump(server),
            }
        };
        self.tcp.set_nonblocking(false).unwrap();
        if !rsv1 {
            return String::from_utf8(payload).unwrap();
        }
        let mut input = payload;
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(4096);
        self.inflater
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap();
        String::from_utf8(out).unwrap()
    }
}

/// One poll of the game: every message received is sent back.
fn pump(server: &mut Server) {
    server.poll().unwrap();
    while let Some(signal) = server.next_signal() {
        if let Signal::DataReceived { id } = signal {
            let peer = server.peer(id).unwrap();
            while let Some(packet) = peer.pop() {
                peer.send(packet.data, true).unwrap();
            }
        }
    }
    std::thread::sleep(Duration::from_micros(200));
}

/// `n` clients, connected (the server has not seen them yet).
fn connect(server: &Server, n: usize) -> Vec<Client> {
    let port = server.local_addr().port();
    (0..n).map(|_| Client::connect(port)).collect()
}

/// Each client reads its answer and echoes `rounds` JSON states with the server.
fn chat(server: &mut Server, clients: &mut [Client], rounds: usize) {
    for c in clients.iter_mut() {
        c.read_answer(server);
    }
    for round in 0..rounds {
        for (i, c) in clients.iter_mut().enumerate() {
            let state = format!(
                "{{\"tick\": {round}, \"player\": {i}, \"x\": {}.25, \"y\": 17.5, \"hp\": 100, \"name\": \
                 \"player number {i}\", \"inventory\": [\"sword\", \"shield\", \"potion\"]}}",
                round * 3
            );
            c.send(&state);
            assert_eq!(c.receive(server), state);
        }
    }
}

/// Live heap bytes each connection holds in `setting`, once its clients exchanged messages.
fn per_connection(setting: Compression) -> (isize, bool) {
    let mut server = listen(ServerConfig {
        io: IoMode::Inline,
        heartbeat_interval: None,
        compression: setting,
        compression_threshold: 0,
        ..ServerConfig::default()
    });
    // A first client: the thread's compressors are allocated now, not counted below.
    let mut first = connect(&server, 1);
    chat(&mut server, &mut first, 3);
    let agreed = first[0].agreed;
    pump(&mut server);
    const N: isize = 40;
    let mut clients = connect(&server, N as usize);
    let before = LIVE.load(Relaxed);
    chat(&mut server, &mut clients, 5);
    pump(&mut server);
    let after = LIVE.load(Relaxed);
    drop(clients);
    drop(first);
    server.stop();
    ((after - before) / N, agreed)
}

#[test]
fn each_setting_costs_a_connection_what_it_says() {
    let (off, agreed) = per_connection(Compression::Off);
    assert!(!agreed);
    let (shared, agreed) = per_connection(Compression::Shared);
    assert!(agreed);
    let (dedicated, agreed) = per_connection(Compression::Dedicated { window_bits: 12 });
    assert!(agreed);
    let (small, _) = per_connection(Compression::Dedicated { window_bits: 9 });
    eprintln!(
        "live heap per connection: off {off} B, shared {shared} B, dedicated 12 bits {dedicated} B, 9 bits {small} B"
    );
    assert!(off < 16 * 1024, "an open connection: {off} B");
    assert!(
        shared - off <= 512,
        "shared: {shared} B against {off} B uncompressed: no compression state per connection"
    );
    // Dedicated: both windows (4 KiB each at 12 bits) and the same bookkeeping, nothing more.
    let windows = dedicated - shared;
    assert!(
        (2 * 4096 - 64..=2 * 4096 + 256).contains(&windows),
        "dedicated 12 bits: {windows} B more than shared (two 4 KiB windows)"
    );
    let windows = small - shared;
    assert!(
        (2 * 512 - 64..=2 * 512 + 256).contains(&windows),
        "dedicated 9 bits: {windows} B more than shared (two 512 B windows)"
    );
}
