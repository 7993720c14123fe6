//! One connection's state machine driven by arbitrary client bytes interleaved with arbitrary game
//! commands (send, close, read and resume, fail) and socket conditions (room to write, EOF) as time
//! advances. Never panics, and never holds more than its limits allow: bytes waiting for the
//! socket, messages and bytes waiting for the game, memory kept for output. Events are
//! well-formed: `Connected` first, nothing after `Disconnected`. With authorization on, a request
//! is `Requested` once and then either `Connected` (accepted) or `RequestEnded`; with the PROXY
//! protocol on, the header comes first.
#![no_main]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::{frame, Input, LIMITS, OUT_BOUND};

use wss_core::connection::{Connection, Context, Settings, Status};
use wss_core::event::Event;
use wss_core::event::Verdict;
use wss_core::ids::IdAllocator;
use wss_core::peer::PeerShared;
use wss_core::sim::Pipe;
use wss_core::transport::Transport;
use wss_core::{Packet, ServerConfig};

const REQUEST: &[u8] = b"GET /fuzz?x=1 HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

struct Game {
    peer: Option<std::sync::Arc<PeerShared>>,
    /// Authorization: the id asked about, and whether its request ended.
    requested: Option<i32>,
    request_ended: bool,
    /// Lengths of the messages the game was told about and has not read.
    unread: VecDeque<usize>,
    connected: bool,
    disconnected: bool,
    protocol_errors: usize,
    close_requests: usize,
    /// The request the game was asked about is plain HTTP (never a peer).
    plain: bool,
}

impl Game {
    fn take(&mut self, events: &mut Vec<Event>) {
        for e in events.drain(..) {
            assert!(!self.disconnected, "an event after Disconnected: {e:?}");
            assert!(!self.request_ended, "an event after RequestEnded: {e:?}");
            match e {
                Event::Requested { id, request } => {
                    assert!(self.requested.is_none() && !self.connected, "requested twice or late");
                    self.requested = Some(id);
                    self.plain = !request.upgrade;
                }
                Event::RequestEnded { id, .. } => {
                    assert_eq!(self.requested, Some(id), "the end of a request never made");
                    assert!(!self.connected, "a request ended after it was accepted");
                    self.request_ended = true;
                }
                Event::Connected { peer, .. } => {
                    assert!(!self.connected, "connected twice");
                    assert!(!self.plain, "a plain HTTP request became a peer");
                    if let Some(id) = self.requested {
                        assert_eq!(id, peer.id, "the request's id");
                    }
                    assert!((2..=i32::MAX).contains(&peer.id));
                    self.connected = true;
                    self.peer = Some(peer);
                }
                Event::Message { packet, .. } => {
                    assert!(self.connected);
                    assert!(packet.data.len() <= LIMITS.inbound_buffer_size);
                    if packet.text {
                        assert!(std::str::from_utf8(&packet.data).is_ok(), "text is UTF-8");
                    }
                    self.unread.push_back(packet.data.len());
                }
                Event::CloseRequest { .. } => {
                    self.close_requests += 1;
                    assert!(self.close_requests == 1);
                }
                Event::ProtocolError { .. } => {
                    self.protocol_errors += 1;
                    assert!(self.protocol_errors == 1);
                }
                Event::Disconnected { .. } => {
                    assert!(self.connected, "Disconnected for a peer never connected");
                    self.disconnected = true;
                }
            }
        }
        // What waits for the game stays within the inbound limits (one message may cross them).
        assert!(self.unread.len() <= LIMITS.max_queued_packets);
        assert!(self.unread.iter().sum::<usize>() < 2 * LIMITS.inbound_buffer_size);
    }
}

/// A small directory served on the port (`flags & 32`): a page, a file of several chunks, a
/// precompressed file, a subdirectory.
fn site() -> std::sync::Arc<wss_core::files::StaticFiles> {
    static SITE: std::sync::OnceLock<std::sync::Arc<wss_core::files::StaticFiles>> = std::sync::OnceLock::new();
    SITE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wss-fuzz-site-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(dir.join("big.bin"), vec![7u8; 100_000]).unwrap();
        std::fs::write(dir.join("a.js"), "x").unwrap();
        std::fs::write(dir.join("a.js.gz"), "gz").unwrap();
        std::fs::write(dir.join("sub/index.html"), "sub").unwrap();
        let mut files = wss_core::files::StaticFiles::default();
        files.mount("/", &dir).unwrap();
        std::sync::Arc::new(files)
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(flags) = input.byte() else { return };
    let settings = Settings::new(&ServerConfig {
        limits: LIMITS,
        multiplayer: flags & 1 != 0,
        protocols: if flags & 2 != 0 { vec!["chat".into()] } else { vec![] },
        authorize: flags & 4 != 0,
        proxy_protocol: flags & 8 != 0,
        answer_requests: flags & 16 != 0,
        files: (flags & 32 != 0).then(site),
        ..ServerConfig::default()
    });
    let authorize = flags & 4 != 0;
    let answer_requests = flags & 16 != 0;
    let mut proxy_header_due = flags & 8 != 0;
    let mut ids = IdAllocator::new();
    let mut events = Vec::new();
    let mut now = Instant::now();
    let mut pipe = Pipe {
        discard_output: true,
        ..Pipe::default()
    };
    let mut transport = Transport::new(None, flags & 8 != 0).unwrap();
    let mut conn = Connection::new("127.0.0.1:1".parse().unwrap(), now, &settings);
    let mut game = Game {
        peer: None,
        requested: None,
        request_ended: false,
        unread: VecDeque::new(),
        connected: false,
        disconnected: false,
        protocol_errors: 0,
        close_requests: 0,
        plain: false,
    };
    let mut status = Status::Alive;
    while status == Status::Alive {
        let Some(op) = input.byte() else { break };
        let arg = input.byte().unwrap_or(0);
        let mut cx = Context {
            now,
            settings: &settings,
            ids: &mut ids,
            events: &mut events,
        };
        // Every input but a reset is followed by the shell moving what it can, as the driver does.
        let input = match op % 13 {
            // Raw client bytes.
            0 => {
                let n = arg as usize;
                pipe.input.extend(input.take(n).iter().copied());
                {
                    transport.readable();
                    Status::Alive
                }
            }
            // A valid upgrade request (optionally offering "chat"), after a PROXY header if due.
            1 => {
                if std::mem::take(&mut proxy_header_due) {
                    if arg & 2 != 0 {
                        pipe.input.extend(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n");
                    } else {
                        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
                        v2.extend_from_slice(&[203, 0, 113, 7, 10, 0, 0, 1, 0xc8, 0x22, 1, 187]);
                        pipe.input.extend(v2);
                    }
                }
                if arg & 1 != 0 {
                    let req = String::from_utf8_lossy(REQUEST)
                        .replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
                    pipe.input.extend(req.as_bytes());
                } else {
                    pipe.input.extend(REQUEST);
                }
                {
                    transport.readable();
                    Status::Alive
                }
            }
            // A well-formed client frame of any opcode and flags.
            2 => {
                let len = input.byte().unwrap_or(0) as usize * (1 + (arg as usize >> 7) * 8);
                let payload = input.take(len).to_vec();
                pipe.input.extend(frame(arg, &payload));
                {
                    transport.readable();
                    Status::Alive
                }
            }
            // The game sends a message (if the peer's limits allow, as PeerHandle::send does).
            3 => match &game.peer {
                Some(peer) if peer.reserve_outbound(arg as usize * 5).is_ok() => {
                    let packet = Packet {
                        data: vec![b'a'; arg as usize * 5].into(),
                        text: arg & 1 != 0,
                        compress: (arg & 2 != 0),
                    };
                    {
                        conn.send(packet);
                        Status::Alive
                    }
                }
                _ => Status::Alive,
            },
            // The game closes.
            4 => {
                let code = [1000, 1001, 3000, 4999, 1011][arg as usize % 5];
                conn.close(code, "bye", &mut cx)
            }
            // The game reads messages; a drained queue resumes reading.
            5 => {
                let mut st = Status::Alive;
                for _ in 0..(arg % 4 + 1) {
                    let (Some(len), Some(peer)) = (game.unread.pop_front(), &game.peer) else {
                        break;
                    };
                    if peer.sub_inbound(len) {
                        st = conn.resume(&mut cx);
                        if st == Status::Gone {
                            break;
                        }
                    }
                }
                st
            }
            // Time passes.
            6 => {
                now += Duration::from_millis(arg as u64 * 50);
                cx.now = now;
                match conn.deadline() {
                    Some(d) if d <= now => conn.on_timeout(&mut cx),
                    _ => Status::Alive,
                }
            }
            // The socket's room to write changes; more room is a writable event.
            7 => {
                pipe.room = if arg == 255 { None } else { Some(arg as usize * 16) };
                transport.writable();
                Status::Alive
            }
            // The client closes its end.
            8 => {
                pipe.eof = true;
                {
                    transport.readable();
                    Status::Alive
                }
            }
            // The game has caught up with a violation.
            9 => conn.fail_now(&mut cx),
            // The end of a driver turn.
            10 => Status::Alive,
            // The game decides on the request (ignored unless one waits).
            11 => {
                let verdict = match arg % 5 {
                    0 => Verdict::Accept {
                        protocol: None,
                        headers: vec![],
                    },
                    1 => Verdict::Accept {
                        protocol: Some("chat".into()),
                        headers: vec!["Set-Cookie: a=1".into()],
                    },
                    4 => Verdict::Answer {
                        status: 200,
                        headers: "Content-Type: application/json\r\n".into(),
                        body: b"{}".to_vec(),
                    },
                    2 => Verdict::Reject {
                        status: 401,
                        headers: "X: y\r\n".into(),
                        body: "no".into(),
                    },
                    _ => Verdict::Reject {
                        status: 599,
                        headers: String::new(),
                        body: String::new(),
                    },
                };
                conn.decide(verdict, &mut cx)
            }
            // A reset.
            _ => {
                if arg == 0 {
                    status = conn.on_reset(&mut cx);
                    game.take(&mut events);
                    continue;
                }
                Status::Alive
            }
        };
        status = match input {
            Status::Alive => transport.service(&mut pipe, &mut conn, &mut cx),
            Status::Gone => Status::Gone,
        };
        game.take(&mut events);
        // A download holds up to MIN_DOWNLOAD_BUFFER whatever the (small) outbound limit.
        let out_bound = OUT_BOUND.max(wss_core::files::MIN_DOWNLOAD_BUFFER);
        assert!(
            conn.buffered_out() <= out_bound,
            "{} bytes wait for the socket",
            conn.buffered_out()
        );
        assert!(
            conn.out_capacity() <= 4 * out_bound,
            "{} bytes of output memory",
            conn.out_capacity()
        );
        if let Some(peer) = &game.peer {
            if flags & 8 != 0 {
                assert_eq!(peer.addr.ip().to_string(), "203.0.113.7", "the PROXY header's client");
            }
        }
        assert!(
            authorize || answer_requests || game.requested.is_none(),
            "asked without authorization"
        );
        if status == Status::Gone {
            assert_eq!(
                game.disconnected, game.connected,
                "a connected peer that ends is reported"
            );
            assert_eq!(
                game.requested.is_some() && !game.connected,
                game.request_ended,
                "a request that ends unconnected is reported"
            );
            if let Some(peer) = &game.peer {
                assert_eq!(peer.outbound_bytes(), 0, "every reservation is returned");
            }
        }
    }
});
