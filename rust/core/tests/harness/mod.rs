//! What the connection tests share: the per-connection state machine fed bytes through an in-memory socket (`sim::Pipe`, moved by
//! the shell's own `Transport`), with a made-up clock. The client side of each exchange is tungstenite's own `WebSocketContext` in the client role,
//! so frames are masked and parsed exactly as a real client would.

// Each test crate uses a part of this module.
#![allow(dead_code, unused_imports)]

pub use std::collections::VecDeque;
pub use std::io::{self, Read, Write};
pub use std::time::{Duration, Instant};

pub use tungstenite::protocol::frame::coding::CloseCode;
pub use tungstenite::protocol::frame::CloseFrame;
pub use tungstenite::protocol::{Role, WebSocketContext};
pub use tungstenite::Message;
pub use wss_core::connection::{Connection, Context, Settings, Status};
pub use wss_core::event::Verdict;
pub use wss_core::event::{Event, PeerState};
pub use wss_core::ids::IdAllocator;
pub use wss_core::request::TrustedProxies;
pub use wss_core::sim::Pipe;
pub use wss_core::transport::Transport;
pub use wss_core::{Limits, ServerConfig};

/// Collects what a tungstenite client writes, so it can be handed to the server.
#[derive(Default)]
pub struct Sink(Vec<u8>);
impl Read for Sink {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub const REQUEST: &str = "GET /lobby?name=ann HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

pub struct Harness {
    pub settings: Settings,
    pub ids: IdAllocator,
    pub events: Vec<Event>,
    pub conn: Connection,
    pub transport: Transport,
    pub pipe: Pipe,
    pub now: Instant,
    pub client: WebSocketContext,
    /// Server output not yet parsed by the client.
    pub from_server: VecDeque<u8>,
}

impl Harness {
    pub fn new(config: ServerConfig) -> Harness {
        let settings = Settings::new(&config);
        let now = Instant::now();
        let conn = Connection::new("127.0.0.1:4000".parse().unwrap(), now, &settings);
        Harness {
            settings,
            ids: IdAllocator::new(),
            events: Vec::new(),
            conn,
            transport: Transport::new(None, config.proxy_protocol).unwrap(),
            pipe: Pipe::default(),
            now,
            client: WebSocketContext::new(Role::Client, None),
            from_server: VecDeque::new(),
        }
    }

    /// A harness whose upgrade is done and whose `Connected` event has been taken.
    pub fn open(config: ServerConfig) -> Harness {
        let mut h = Harness::new(config);
        h.pipe.input.extend(REQUEST.as_bytes());
        assert_eq!(h.readable(), Status::Alive);
        let out = String::from_utf8(std::mem::take(&mut h.pipe.output)).unwrap();
        assert!(out.starts_with("HTTP/1.1 101 "), "{out}");
        assert!(matches!(h.take().as_slice(), [Event::Connected { .. }]));
        h
    }

    /// One input to the connection (a command, a deadline), then the shell moves what it can, as
    /// the driver does at the end of a turn.
    pub fn input(&mut self, f: impl FnOnce(&mut Connection, &mut Context) -> Status) -> Status {
        let mut cx = Context {
            now: self.now,
            settings: &self.settings,
            ids: &mut self.ids,
            events: &mut self.events,
        };
        match f(&mut self.conn, &mut cx) {
            Status::Gone => Status::Gone,
            Status::Alive => self.transport.service(&mut self.pipe, &mut self.conn, &mut cx),
        }
    }

    /// The socket reports input: the shell reads and writes what it can.
    pub fn readable(&mut self) -> Status {
        self.transport.readable();
        self.input(|_, _| Status::Alive)
    }

    /// The socket reports room to write.
    pub fn writable(&mut self) -> Status {
        self.transport.writable();
        self.input(|_, _| Status::Alive)
    }

    pub fn flush(&mut self) -> Status {
        self.input(|_, _| Status::Alive)
    }

    pub fn send(&mut self, packet: wss_core::Packet) -> Status {
        self.input(|c, _| {
            c.send(packet);
            Status::Alive
        })
    }

    pub fn decide(&mut self, verdict: Verdict) -> Status {
        self.input(|c, cx| c.decide(verdict, cx))
    }

    pub fn output(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.pipe.output)).into_owned()
    }

    pub fn timeout(&mut self) -> Status {
        self.input(|c, cx| c.on_timeout(cx))
    }

    pub fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The client sends one message (masked, as a client must).
    pub fn client_sends(&mut self, msg: Message) {
        let mut sink = Sink::default();
        match self.client.write(&mut sink, msg) {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed) => {}
            Err(e) => panic!("{e}"),
        }
        let _ = self.client.flush(&mut sink);
        self.pipe.input.extend(sink.0);
    }

    /// Raw bytes from the client (for frames tungstenite would refuse to make).
    pub fn client_sends_raw(&mut self, bytes: &[u8]) {
        self.pipe.input.extend(bytes);
    }

    /// Everything the server wrote, parsed as messages by the client.
    pub fn client_receives(&mut self) -> Vec<Message> {
        self.from_server.extend(self.pipe.output.drain(..));
        let mut got = Vec::new();
        let mut answers = Vec::new();
        let mut src = ReadFrom(&mut self.from_server, &mut answers);
        while let Ok(m) = self.client.read(&mut src) {
            got.push(m);
        }
        // Whatever the client wrote meanwhile (pong, close reply) goes to the server.
        self.pipe.input.extend(answers);
        got
    }
}

pub struct ReadFrom<'a>(&'a mut VecDeque<u8>, &'a mut Vec<u8>);
impl Read for ReadFrom<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.0.len());
        for (i, b) in self.0.drain(..n).enumerate() {
            buf[i] = b;
        }
        Ok(n)
    }
}
impl Write for ReadFrom<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The defaults, without the heartbeat (its own tests below turn it on), so that deadline tests
/// see only the deadline they are about.
pub fn config() -> ServerConfig {
    ServerConfig {
        heartbeat_interval: None,
        ..ServerConfig::default()
    }
}

pub fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// A violation is first reported to the game (`ProtocolError`, after the messages before it);
/// our Close with its code goes out when the game answers (`fail_now`). The client's
/// Close reply then ends it cleanly (after a frame that was too long, the rest of that frame is
/// skipped first), except after a bad opcode, which leaves the stream unparseable: then input is
/// discarded until the client's EOF, an unclean end. Returns the events before the
/// `ProtocolError`.
pub fn assert_fails_with(h: &mut Harness, code: u16) -> Vec<Event> {
    assert_fails_with_reply(h, code, true)
}

/// `reply_seen`: whether the stream can still be parsed after the violation.
pub fn assert_fails_with_reply(h: &mut Harness, code: u16, reply_seen: bool) -> Vec<Event> {
    assert_eq!(h.readable(), Status::Alive);
    let mut ev = h.take();
    assert!(
        matches!(ev.last(), Some(Event::ProtocolError { code: c, .. }) if *c == code),
        "{ev:?}"
    );
    ev.pop();
    assert!(
        h.client_receives().is_empty(),
        "nothing is sent before the game has caught up"
    );
    assert_eq!(h.input(|c, cx| c.fail_now(cx)), Status::Alive);
    let got = h.client_receives();
    assert!(
        matches!(&got[..], [Message::Close(Some(f))] if u16::from(f.code) == code),
        "{got:?}"
    );
    assert!(
        h.pipe.fin,
        "a FIN follows our Close (the connection lives on for the reply)"
    );
    assert_eq!(h.conn.peer().unwrap().state(), PeerState::Closing);
    // The tungstenite client has answered our Close; its reply is in the pipe.
    if !reply_seen {
        h.client_sends_raw(&[0x82, 0x85, 1, 2, 3, 4]); // more garbage is ignored too
        assert_eq!(h.readable(), Status::Alive);
        assert!(h.take().is_empty());
        h.pipe.eof = true;
        assert_eq!(h.readable(), Status::Gone);
        assert!(matches!(
            h.take().as_slice(),
            [Event::Disconnected { clean: false, .. }]
        ));
    } else {
        assert_eq!(h.readable(), Status::Gone);
        assert!(matches!(h.take().as_slice(), [Event::Disconnected { clean: true, .. }]));
        assert!(h.pipe.fin, "the server closes first once the handshake is complete");
    }
    ev
}
