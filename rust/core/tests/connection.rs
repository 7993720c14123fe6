//! The per-connection state machine fed bytes through an in-memory socket (`sim::Pipe`, moved by
//! the shell's own `Transport`), with a made-up clock. The client side of each exchange is tungstenite's own `WebSocketContext` in the client role,
//! so frames are masked and parsed exactly as a real client would.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role, WebSocketContext};
use tungstenite::Message;
use wss_core::connection::{Connection, Context, Settings, Status};
use wss_core::event::Verdict;
use wss_core::event::{Event, PeerState};
use wss_core::ids::IdAllocator;
use wss_core::request::TrustedProxies;
use wss_core::sim::Pipe;
use wss_core::transport::Transport;
use wss_core::{Limits, ServerConfig};

/// Collects what a tungstenite client writes, so it can be handed to the server.
#[derive(Default)]
struct Sink(Vec<u8>);
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

const REQUEST: &str = "GET /lobby?name=ann HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

struct Harness {
    settings: Settings,
    ids: IdAllocator,
    events: Vec<Event>,
    conn: Connection,
    transport: Transport,
    pipe: Pipe,
    now: Instant,
    client: WebSocketContext,
    /// Server output not yet parsed by the client.
    from_server: VecDeque<u8>,
}

impl Harness {
    fn new(config: ServerConfig) -> Harness {
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
    fn open(config: ServerConfig) -> Harness {
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
    fn input(&mut self, f: impl FnOnce(&mut Connection, &mut Context) -> Status) -> Status {
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
    fn readable(&mut self) -> Status {
        self.transport.readable();
        self.input(|_, _| Status::Alive)
    }

    /// The socket reports room to write.
    fn writable(&mut self) -> Status {
        self.transport.writable();
        self.input(|_, _| Status::Alive)
    }

    fn flush(&mut self) -> Status {
        self.input(|_, _| Status::Alive)
    }

    fn send(&mut self, packet: wss_core::Packet) -> Status {
        self.input(|c, _| {
            c.send(packet);
            Status::Alive
        })
    }

    fn decide(&mut self, verdict: Verdict) -> Status {
        self.input(|c, cx| c.decide(verdict, cx))
    }

    fn output(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.pipe.output)).into_owned()
    }

    fn timeout(&mut self) -> Status {
        self.input(|c, cx| c.on_timeout(cx))
    }

    fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The client sends one message (masked, as a client must).
    fn client_sends(&mut self, msg: Message) {
        let mut sink = Sink::default();
        match self.client.write(&mut sink, msg) {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed) => {}
            Err(e) => panic!("{e}"),
        }
        let _ = self.client.flush(&mut sink);
        self.pipe.input.extend(sink.0);
    }

    /// Raw bytes from the client (for frames tungstenite would refuse to make).
    fn client_sends_raw(&mut self, bytes: &[u8]) {
        self.pipe.input.extend(bytes);
    }

    /// Everything the server wrote, parsed as messages by the client.
    fn client_receives(&mut self) -> Vec<Message> {
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

struct ReadFrom<'a>(&'a mut VecDeque<u8>, &'a mut Vec<u8>);
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
fn config() -> ServerConfig {
    ServerConfig {
        heartbeat_interval: None,
        ..ServerConfig::default()
    }
}

fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[test]
fn upgrade_then_messages_both_ways() {
    let mut h = Harness::new(ServerConfig {
        protocols: vec!["chat".into()],
        ..config()
    });
    h.pipe.input.extend(
        REQUEST
            .replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: other, chat\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(h.readable(), Status::Alive);
    let id = match h.take().as_slice() {
        [Event::Connected {
            peer,
            protocol,
            resource,
        }] => {
            assert_eq!(protocol, "chat");
            assert_eq!(resource, "/lobby?name=ann");
            assert!(peer.id >= 2);
            peer.id
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(h.conn.deadline(), None, "no handshake deadline once open");
    let response = String::from_utf8(std::mem::take(&mut h.pipe.output)).unwrap();
    assert!(response.contains("Sec-WebSocket-Protocol: chat\r\n"));

    h.client_sends(Message::text("héllo"));
    h.client_sends(Message::binary(vec![0u8, 1, 2]));
    assert_eq!(h.readable(), Status::Alive);
    let ev = h.take();
    assert!(
        matches!(&ev[0], Event::Message { id: i, packet } if *i == id && packet.text && &packet.data[..] == "héllo".as_bytes())
    );
    assert!(matches!(&ev[1], Event::Message { packet, .. } if !packet.text && packet.data[..] == [0, 1, 2]));

    let peer = h.conn.peer().unwrap().clone();
    peer.reserve_outbound(3).unwrap();
    assert_eq!(
        h.send(wss_core::Packet {
            data: "abc".into(),
            text: true
        },),
        Status::Alive
    );
    assert_eq!(h.flush(), Status::Alive);
    assert_eq!(h.client_receives(), vec![Message::text("abc")]);
    assert_eq!(
        peer.outbound_bytes(),
        0,
        "written bytes no longer count against the limit"
    );
}

#[test]
fn frames_sent_right_after_the_request_are_not_lost() {
    let mut h = Harness::new(config());
    h.pipe.input.extend(REQUEST.as_bytes());
    h.client_sends(Message::text("early"));
    assert_eq!(h.readable(), Status::Alive);
    let ev = h.take();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(matches!(&ev[1], Event::Message { packet, .. } if &packet.data[..] == b"early"));
}

#[test]
fn handshake_arriving_byte_by_byte() {
    let mut h = Harness::new(config());
    for b in REQUEST.bytes() {
        h.pipe.input.push_back(b);
        assert_eq!(h.readable(), Status::Alive);
    }
    assert!(matches!(h.take().as_slice(), [Event::Connected { .. }]));
}

#[test]
fn handshake_timeout_drops_silently() {
    let mut h = Harness::new(config());
    h.pipe.input.extend(&REQUEST.as_bytes()[..20]);
    assert_eq!(h.readable(), Status::Alive);
    let start = h.now;
    h.now = start + Duration::from_millis(2999);
    assert_eq!(h.timeout(), Status::Alive);
    h.now = start + Duration::from_secs(3);
    assert_eq!(h.timeout(), Status::Gone);
    assert!(h.take().is_empty(), "a peer that never connected is never reported");
}

/// The handshake deadline runs from accept and is never extended: a client trickling its request
/// (slowloris) is dropped at `handshake_timeout` however often it sends a byte.
#[test]
fn handshake_deadline_is_not_extended_by_trickled_bytes() {
    let mut h = Harness::new(config());
    let start = h.now;
    for (i, b) in REQUEST.bytes().take(30).enumerate() {
        h.now = start + Duration::from_millis(100 * i as u64);
        h.pipe.input.push_back(b);
        assert_eq!(h.readable(), Status::Alive);
    }
    assert_eq!(h.conn.deadline(), Some(start + Duration::from_secs(3)));
    h.now = start + Duration::from_secs(3);
    assert_eq!(h.timeout(), Status::Gone);
    assert!(h.take().is_empty());
}

#[test]
fn refused_upgrade_gets_an_http_error_and_is_closed() {
    let mut h = Harness::new(ServerConfig {
        protocols: vec!["chat".into()],
        ..config()
    });
    h.pipe.input.extend(REQUEST.as_bytes()); // offers no subprotocol
    assert_eq!(h.readable(), Status::Gone);
    assert!(String::from_utf8_lossy(&h.pipe.output).starts_with("HTTP/1.1 400 Bad Request\r\n"));
    assert!(h.take().is_empty());
}

#[test]
fn refusal_waits_for_a_full_socket() {
    let mut h = Harness::new(config());
    h.pipe.room = Some(5);
    h.pipe.input.extend(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(h.readable(), Status::Alive, "response not written yet");
    h.pipe.room = None;
    assert_eq!(h.writable(), Status::Gone);
    assert!(String::from_utf8_lossy(&h.pipe.output).starts_with("HTTP/1.1 400 "));
}

#[test]
fn client_initiated_close() {
    let mut h = Harness::open(config());
    let peer = h.conn.peer().unwrap().clone();
    h.client_sends(Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    })));
    assert_eq!(
        h.readable(),
        Status::Gone,
        "server closes TCP once its reply is written"
    );
    let ev = h.take();
    assert!(
        matches!(&ev[0], Event::CloseRequest { code: 1001, reason, .. } if reason == "bye"),
        "{ev:?}"
    );
    assert!(matches!(&ev[1], Event::Disconnected { clean: true, .. }), "{ev:?}");
    assert_eq!(peer.state(), PeerState::Closed);
    let reply = h.client_receives();
    assert!(
        matches!(&reply[..], [Message::Close(Some(f))] if f.code == CloseCode::Away),
        "{reply:?}"
    );
}

#[test]
fn close_without_a_code_reports_1005() {
    let mut h = Harness::open(config());
    h.client_sends_raw(&masked(0x8, b""));
    assert_eq!(h.readable(), Status::Gone);
    assert!(matches!(&h.take()[0], Event::CloseRequest { code: 1005, .. }));
}

#[test]
fn server_initiated_close_and_the_clients_answer() {
    let mut h = Harness::open(config());
    assert_eq!(h.input(|c, cx| c.close(4000, "kicked", cx)), Status::Alive);
    let got = h.client_receives();
    assert!(
        matches!(&got[..], [Message::Close(Some(f))] if u16::from(f.code) == 4000 && f.reason == "kicked"),
        "{got:?}"
    );
    assert!(h.conn.deadline().is_some(), "the answer is awaited for close_timeout");
    assert!(h.take().is_empty(), "no close_request for our own close");
    // The client's answer to our Close is in the pipe now.
    assert_eq!(h.readable(), Status::Gone);
    assert!(matches!(h.take().as_slice(), [Event::Disconnected { clean: true, .. }]));
}

#[test]
fn unanswered_close_is_dropped_after_close_timeout() {
    let mut h = Harness::open(ServerConfig {
        close_timeout: Duration::from_secs(2),
        ..config()
    });
    let start = h.now;
    assert_eq!(h.input(|c, cx| c.close(1000, "", cx)), Status::Alive);
    h.now = start + Duration::from_millis(1999);
    assert_eq!(h.timeout(), Status::Alive);
    h.now = start + Duration::from_secs(2);
    assert_eq!(h.timeout(), Status::Gone);
    assert!(matches!(
        h.take().as_slice(),
        [Event::Disconnected { clean: false, .. }]
    ));
}

#[test]
fn abrupt_eof_is_an_unclean_disconnect() {
    let mut h = Harness::open(config());
    h.pipe.eof = true;
    assert_eq!(h.readable(), Status::Gone);
    assert!(matches!(
        h.take().as_slice(),
        [Event::Disconnected { clean: false, .. }]
    ));
}

/// A violation is first reported to the game (`ProtocolError`, after the messages before it);
/// our Close with its code goes out when the game answers (`fail_now`). The client's
/// Close reply then ends it cleanly (after a frame that was too long, the rest of that frame is
/// skipped first), except after a bad opcode, which leaves the stream unparseable: then input is
/// discarded until the client's EOF, an unclean end. Returns the events before the
/// `ProtocolError`.
fn assert_fails_with(h: &mut Harness, code: u16) -> Vec<Event> {
    assert_fails_with_reply(h, code, true)
}

/// `reply_seen`: whether the stream can still be parsed after the violation.
fn assert_fails_with_reply(h: &mut Harness, code: u16, reply_seen: bool) -> Vec<Event> {
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

/// Found by fuzzing: a `Fail` for a connection that is not waiting for one (the game closed it
/// first, so the failure's Close already went out) must change nothing; it used to drop the
/// connection's state without a `Disconnected`.
#[test]
fn a_late_fail_command_changes_nothing() {
    let mut h = Harness::open(config());
    assert_eq!(h.input(|c, cx| c.fail_now(cx)), Status::Alive);
    h.client_sends(Message::text("still here"));
    assert_eq!(h.readable(), Status::Alive);
    assert_eq!(h.take().len(), 1, "still open");
    h.pipe.eof = true;
    assert_eq!(h.readable(), Status::Gone);
    assert!(matches!(
        h.take().as_slice(),
        [Event::Disconnected { clean: false, .. }]
    ));
}

#[test]
fn message_over_the_inbound_limit_closes_with_1009() {
    let limits = Limits {
        inbound_buffer_size: 100,
        ..Limits::default()
    };
    let mut h = Harness::open(ServerConfig { limits, ..config() });
    h.client_sends(Message::binary(vec![7u8; 100]));
    assert_eq!(h.readable(), Status::Alive);
    assert_eq!(h.take().len(), 1, "exactly the limit is fine");
    assert!(h.conn.peer().unwrap().sub_inbound(100), "a full queue paused reading");
    assert_eq!(h.input(|c, cx| c.resume(cx)), Status::Alive);
    h.client_sends(Message::binary(vec![7u8; 101]));
    assert_fails_with(&mut h, 1009);
}

/// With a limit under 125 bytes, a Close with a reason (up to 125 bytes, as any control frame) is
/// still accepted; messages are held to the limit.
#[test]
fn a_small_limit_still_takes_a_close_with_its_reason() {
    let mut h = Harness::open(ServerConfig {
        limits: Limits {
            inbound_buffer_size: 10,
            ..Limits::default()
        },
        ..config()
    });
    h.client_sends(Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "a reason longer than ten bytes".into(),
    })));
    assert_eq!(h.readable(), Status::Gone);
    let ev = h.take();
    assert!(matches!(&ev[0], Event::CloseRequest { code: 1001, .. }), "{ev:?}");
    assert!(matches!(&ev[1], Event::Disconnected { clean: true, .. }), "{ev:?}");
}

#[test]
fn fragmented_message_over_the_limit_closes_with_1009() {
    let limits = Limits {
        inbound_buffer_size: 10,
        ..Limits::default()
    };
    let mut h = Harness::open(ServerConfig { limits, ..config() });
    let mut first = masked(0x2, b"123456");
    first[0] &= 0x7f; // not FIN
    h.client_sends_raw(&first);
    h.client_sends_raw(&masked(0x0, b"789012"));
    assert_fails_with(&mut h, 1009);
}

#[test]
fn invalid_utf8_text_closes_with_1007() {
    let mut h = Harness::open(config());
    h.client_sends_raw(&masked(0x1, &[0xff, 0xfe]));
    assert_fails_with(&mut h, 1007);
}

#[test]
fn unmasked_frame_closes_with_1002() {
    let mut h = Harness::open(config());
    h.client_sends_raw(&[0x82, 0x01, 0x00]);
    assert_fails_with(&mut h, 1002);
}

#[test]
fn reserved_opcode_closes_with_1002() {
    let mut h = Harness::open(config());
    h.client_sends_raw(&masked(0x3, b""));
    assert_fails_with_reply(&mut h, 1002, false);
}

#[test]
fn ping_is_answered() {
    let mut h = Harness::open(config());
    h.client_sends(Message::Ping("p".into()));
    assert_eq!(h.readable(), Status::Alive);
    assert_eq!(h.client_receives(), vec![Message::Pong("p".into())]);
    assert!(h.take().is_empty());
}

#[test]
fn full_inbound_queue_pauses_reading_until_the_game_drains() {
    let limits = Limits {
        max_queued_packets: 2,
        ..Limits::default()
    };
    let mut h = Harness::open(ServerConfig { limits, ..config() });
    for i in 0..5u8 {
        h.client_sends(Message::binary(vec![i]));
    }
    assert_eq!(h.readable(), Status::Alive);
    assert_eq!(h.take().len(), 2, "reading stops at max_queued_packets");
    assert_eq!(h.readable(), Status::Alive);
    assert!(h.take().is_empty(), "still paused: nothing is read, nothing dropped");
    let peer = h.conn.peer().unwrap().clone();
    assert!(peer.sub_inbound(1), "the game read one: resume");
    assert_eq!(h.input(|c, cx| c.resume(cx)), Status::Alive);
    let ev = h.take();
    assert!(
        matches!(ev.as_slice(), [Event::Message { packet, .. }] if packet.data[..] == [2]),
        "{ev:?}"
    );
    assert!(peer.sub_inbound(1));
    assert!(!peer.sub_inbound(1), "one resume is enough");
    assert_eq!(h.input(|c, cx| c.resume(cx)), Status::Alive);
    let data: Vec<u8> = h
        .take()
        .iter()
        .map(|e| match e {
            Event::Message { packet, .. } => packet.data[0],
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(data, vec![3, 4], "every message arrives, in order");
}

#[test]
fn outbound_bytes_count_until_written() {
    let mut h = Harness::open(config());
    let peer = h.conn.peer().unwrap().clone();
    h.pipe.room = Some(0);
    for _ in 0..3 {
        peer.reserve_outbound(1000).unwrap();
        assert_eq!(
            h.send(wss_core::Packet {
                data: vec![1u8; 1000].into(),
                text: false
            },),
            Status::Alive
        );
    }
    assert_eq!(h.flush(), Status::Alive);
    assert_eq!(peer.outbound_bytes(), 3000, "socket full: still buffered");
    assert!(
        !h.transport.wants_write(&h.conn),
        "a blocked socket is not tried again every turn, only when it reports writable"
    );
    h.pipe.room = None;
    assert_eq!(h.writable(), Status::Alive);
    assert_eq!(peer.outbound_bytes(), 0);
    assert_eq!(h.client_receives().len(), 3);
}

#[test]
fn sends_after_close_are_discarded_and_released() {
    let mut h = Harness::open(config());
    let peer = h.conn.peer().unwrap().clone();
    assert_eq!(h.input(|c, cx| c.close(1000, "", cx)), Status::Alive);
    peer.reserve_outbound(10).unwrap();
    assert_eq!(
        h.send(wss_core::Packet {
            data: vec![0u8; 10].into(),
            text: false
        },),
        Status::Alive
    );
    assert_eq!(peer.outbound_bytes(), 0);
}

#[test]
fn multiplayer_mode_sends_the_id_right_after_the_response() {
    let mut h = Harness::new(ServerConfig {
        multiplayer: true,
        ..config()
    });
    h.pipe.input.extend(REQUEST.as_bytes());
    assert_eq!(h.readable(), Status::Alive);
    let id = match h.take().as_slice() {
        [Event::Connected { peer, .. }] => peer.id,
        other => panic!("{other:?}"),
    };
    let out = std::mem::take(&mut h.pipe.output);
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(out.starts_with(b"HTTP/1.1 101 "));
    h.pipe.output = out[head_end..].to_vec();
    assert_eq!(h.client_receives(), vec![Message::binary(id.to_le_bytes().to_vec())]);
}

/// Regression (issue 8.7): a message left unfinished (here the first half of a frame) with
/// nothing more sent was held forever. After `partial_message_timeout` without progress the client
/// is failed with 1008; progress restarts the clock; a finished message stops it.
#[test]
fn a_stalled_partial_message_closes_with_1008() {
    let mut h = Harness::open(ServerConfig {
        partial_message_timeout: Duration::from_secs(30),
        ..config()
    });
    let start = h.now;
    let whole = masked(0x2, &[7u8; 100]);
    h.client_sends_raw(&whole[..50]);
    assert_eq!(h.readable(), Status::Alive);
    assert_eq!(h.conn.deadline(), Some(start + Duration::from_secs(30)));
    // More of it at 20 s: the clock restarts.
    h.now = start + Duration::from_secs(20);
    h.client_sends_raw(&whole[50..80]);
    assert_eq!(h.readable(), Status::Alive);
    h.now = start + Duration::from_secs(45);
    assert_eq!(
        h.timeout(),
        Status::Alive,
        "progress at 20 s moved the deadline to 50 s"
    );
    h.now = start + Duration::from_secs(50);
    assert_eq!(h.timeout(), Status::Alive);
    assert!(
        matches!(h.take().as_slice(), [Event::ProtocolError { code: 1008, .. }]),
        "the game is told first"
    );
    assert_eq!(h.input(|c, cx| c.fail_now(cx)), Status::Alive);
    let got = h.client_receives();
    assert!(
        matches!(&got[..], [Message::Close(Some(f))] if u16::from(f.code) == 1008),
        "{got:?}"
    );
}

#[test]
fn a_finished_message_or_an_idle_client_has_no_deadline() {
    let mut h = Harness::open(config());
    let whole = masked(0x1, b"complete");
    h.client_sends_raw(&whole[..4]);
    assert_eq!(h.readable(), Status::Alive);
    assert!(h.conn.deadline().is_some());
    h.client_sends_raw(&whole[4..]);
    assert_eq!(h.readable(), Status::Alive);
    assert_eq!(h.take().len(), 1);
    assert_eq!(
        h.conn.deadline(),
        None,
        "nothing unfinished: an idle client is never timed out here"
    );
}

/// Time while the server itself is not reading (the game's queue is full) is not the client's
/// stall.
#[test]
fn a_paused_client_is_not_timed_out_for_its_unfinished_message() {
    let mut h = Harness::open(ServerConfig {
        limits: Limits {
            max_queued_packets: 1,
            ..Limits::default()
        },
        ..config()
    });
    let start = h.now;
    h.client_sends(Message::binary(vec![1u8]));
    h.client_sends_raw(&masked(0x2, b"second")[..5]);
    assert_eq!(h.readable(), Status::Alive);
    assert_eq!(h.take().len(), 1);
    assert_eq!(h.conn.deadline(), None, "paused: no stall deadline");
    h.now = start + Duration::from_secs(100);
    assert!(h.conn.peer().unwrap().sub_inbound(1));
    assert_eq!(h.input(|c, cx| c.resume(cx)), Status::Alive);
    assert_eq!(
        h.conn.deadline(),
        Some(start + Duration::from_secs(130)),
        "the clock starts when reading resumes"
    );
}

fn with_heartbeat(seconds: u64) -> ServerConfig {
    ServerConfig {
        heartbeat_interval: Some(Duration::from_secs(seconds)),
        ..ServerConfig::default()
    }
}

/// The heartbeat pings at its interval; the client's pong (tungstenite answers pings) keeps the
/// peer and gives its round-trip time.
#[test]
fn heartbeat_pings_and_measures_the_round_trip() {
    let mut h = Harness::open(with_heartbeat(20));
    let start = h.now;
    let peer = h.conn.peer().unwrap().clone();
    assert_eq!(h.conn.deadline(), Some(start + Duration::from_secs(20)));
    assert_eq!(peer.round_trip(), None);
    for round in 1..=3u64 {
        h.now = start + Duration::from_secs(20 * round);
        assert_eq!(h.timeout(), Status::Alive);
        let got = h.client_receives(); // the client answers with a pong
        assert!(
            matches!(&got[..], [Message::Ping(p)] if p[..] == round.to_be_bytes()),
            "{got:?}"
        );
        h.now += Duration::from_millis(35);
        assert_eq!(h.readable(), Status::Alive);
        assert_eq!(peer.round_trip(), Some(Duration::from_millis(35)));
    }
    assert!(h.take().is_empty(), "pings and pongs cost the game nothing: no events");
}

/// A peer that has not answered by the time the next ping is due is dropped, unclean.
#[test]
fn heartbeat_drops_a_peer_that_does_not_answer() {
    let mut h = Harness::open(with_heartbeat(20));
    let start = h.now;
    h.now = start + Duration::from_secs(20);
    assert_eq!(h.timeout(), Status::Alive);
    h.pipe.output.clear(); // the ping never reaches a frozen client
    h.now = start + Duration::from_millis(39_999);
    assert_eq!(h.timeout(), Status::Alive);
    h.now = start + Duration::from_secs(40);
    assert_eq!(h.timeout(), Status::Gone);
    assert!(matches!(
        h.take().as_slice(),
        [Event::Disconnected { clean: false, .. }]
    ));
}

/// While the server is not reading a peer (the game has not read its messages), an unanswered
/// ping is not held against it: its pong may be waiting unread.
#[test]
fn heartbeat_spares_a_peer_the_server_is_not_reading() {
    let mut h = Harness::open(ServerConfig {
        limits: Limits {
            max_queued_packets: 1,
            ..Limits::default()
        },
        ..with_heartbeat(20)
    });
    let start = h.now;
    h.client_sends(Message::binary(vec![1u8]));
    assert_eq!(h.readable(), Status::Alive);
    h.now = start + Duration::from_secs(20);
    assert_eq!(h.timeout(), Status::Alive);
    assert!(
        h.client_receives().is_empty(),
        "no ping while the server is not reading"
    );
    h.client_sends(Message::binary(vec![2u8]));
    assert_eq!(h.readable(), Status::Alive);
    for t in [40, 60, 80] {
        h.now = start + Duration::from_secs(t);
        assert_eq!(h.timeout(), Status::Alive, "spared at {t} s");
    }
    // The game reads both messages; reading resumes, and the next ping is answered.
    let peer = h.conn.peer().unwrap().clone();
    for _ in 0..2 {
        if peer.sub_inbound(1) {
            assert_eq!(h.input(|c, cx| c.resume(cx)), Status::Alive);
        }
    }
    h.now = start + Duration::from_secs(100);
    assert_eq!(h.timeout(), Status::Alive);
    assert!(matches!(&h.client_receives()[..], [Message::Ping(_)]));
    assert_eq!(h.readable(), Status::Alive);
    assert!(peer.round_trip().is_some(), "answered");
}

// ---- authorization before the upgrade

fn authorizing() -> ServerConfig {
    ServerConfig {
        authorize: true,
        protocols: vec!["a".into(), "b".into()],
        ..config()
    }
}

const OFFERING_A_B: &str = "GET /room?id=7 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, b\r\nAuthorization: Bearer t0k3n\r\n\r\n";

/// A harness whose request arrived and waits for the game; returns its id.
fn requested(h: &mut Harness) -> i32 {
    h.pipe.input.extend(OFFERING_A_B.as_bytes());
    assert_eq!(h.readable(), Status::Alive);
    assert_eq!(h.output(), "", "nothing is answered before the game decides");
    match h.take().as_slice() {
        [Event::Requested { id, request }] => {
            assert_eq!(request.resource, "/room?id=7");
            assert_eq!(request.header("authorization").as_deref(), Some("Bearer t0k3n"));
            assert_eq!(request.protocols, ["a", "b"]);
            assert_eq!(request.client_addr, "127.0.0.1:4000".parse().unwrap());
            *id
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_accepted_request_becomes_a_peer_with_the_chosen_protocol_and_headers() {
    let mut h = Harness::new(authorizing());
    let id = requested(&mut h);
    // A frame the client sent without waiting for the answer is kept for after the upgrade.
    h.client_sends(Message::text("early"));
    assert_eq!(h.readable(), Status::Alive);
    assert!(h.take().is_empty());
    let verdict = Verdict::Accept {
        protocol: Some("b".into()),
        headers: vec!["Set-Cookie: s=1".into()],
    };
    assert_eq!(h.decide(verdict.clone()), Status::Alive);
    let out = h.output();
    assert!(out.starts_with("HTTP/1.1 101 "), "{out}");
    assert!(out.contains("\r\nSec-WebSocket-Protocol: b\r\n"), "{out}");
    assert!(out.contains("\r\nSet-Cookie: s=1\r\n"), "{out}");
    match h.take().as_slice() {
        [Event::Connected {
            peer,
            protocol,
            resource,
        }, Event::Message { id: mid, packet }] => {
            assert_eq!((peer.id, protocol.as_str(), resource.as_str()), (id, "b", "/room?id=7"));
            assert_eq!(peer.request.header("AUTHORIZATION").as_deref(), Some("Bearer t0k3n"));
            assert_eq!((*mid, &packet.data[..]), (id, &b"early"[..]));
        }
        other => panic!("{other:?}"),
    }
    // A second decision changes nothing.
    assert_eq!(h.decide(verdict), Status::Alive);
    assert_eq!(h.output(), "");
}

#[test]
fn a_rejected_request_gets_its_status_and_ends() {
    let mut h = Harness::new(authorizing());
    let id = requested(&mut h);
    let verdict = Verdict::Reject {
        status: 401,
        headers: "WWW-Authenticate: Bearer\r\n".into(),
        body: "bad token".into(),
    };
    // Written, then our end closes: the connection is gone.
    assert_eq!(h.decide(verdict), Status::Gone);
    let out = h.output();
    assert!(
        out.starts_with("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\n"),
        "{out}"
    );
    assert!(out.ends_with("\r\n\r\nbad token"), "{out}");
    assert!(h.pipe.fin);
    match h.take().as_slice() {
        [Event::RequestEnded { id: ended, why }] => assert_eq!((*ended, *why), (id, "refused")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_decision_by_the_handshake_timeout_is_503() {
    let mut h = Harness::new(authorizing());
    let id = requested(&mut h);
    h.now += Duration::from_millis(2900);
    assert_eq!(h.timeout(), Status::Alive);
    assert_eq!(h.output(), "");
    h.now += Duration::from_millis(200);
    assert_eq!(h.timeout(), Status::Gone);
    assert!(h.output().starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
    match h.take().as_slice() {
        [Event::RequestEnded { id: ended, why }] => {
            assert_eq!(*ended, id);
            assert!(why.contains("handshake_timeout"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // A decision after that is ignored.
    let accept = Verdict::Accept {
        protocol: None,
        headers: vec![],
    };
    assert_eq!(h.decide(accept), Status::Alive);
    assert!(h.take().is_empty());
}

#[test]
fn a_client_that_leaves_before_the_decision_ends_its_request() {
    let mut h = Harness::new(authorizing());
    let id = requested(&mut h);
    h.pipe.eof = true;
    assert_eq!(h.readable(), Status::Gone);
    match h.take().as_slice() {
        [Event::RequestEnded { id: ended, why }] => assert_eq!((*ended, *why), (id, "the client left")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_client_that_floods_before_the_decision_is_dropped() {
    let mut h = Harness::new(ServerConfig {
        limits: Limits {
            inbound_buffer_size: 1000,
            ..Limits::default()
        },
        ..authorizing()
    });
    requested(&mut h);
    h.pipe.input.extend(vec![0u8; 5000]);
    assert_eq!(h.readable(), Status::Gone);
    assert!(matches!(h.take().as_slice(), [Event::RequestEnded { .. }]));
}

// ---- who the client is

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    let request = REQUEST.replace("\r\n\r\n", "\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n\r\n");
    for (trusted, want) in [(vec![], "127.0.0.1:4000"), (vec!["127.0.0.0/8"], "203.0.113.7:0")] {
        let mut h = Harness::new(ServerConfig {
            trusted_proxies: TrustedProxies::parse(&trusted).unwrap(),
            ..config()
        });
        h.pipe.input.extend(request.as_bytes());
        assert_eq!(h.readable(), Status::Alive);
        match h.take().as_slice() {
            [Event::Connected { peer, .. }] => {
                assert_eq!(peer.addr, want.parse().unwrap(), "trusted {trusted:?}");
                assert_eq!(peer.request.socket_addr, "127.0.0.1:4000".parse().unwrap());
            }
            other => panic!("{other:?}"),
        }
    }
}

fn proxied() -> ServerConfig {
    ServerConfig {
        proxy_protocol: true,
        ..config()
    }
}

#[test]
fn a_proxy_protocol_header_names_the_client() {
    let mut h = Harness::new(proxied());
    // The header may arrive in pieces; nothing happens until it is whole.
    let header = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n";
    h.pipe.input.extend(&header[..10]);
    assert_eq!(h.readable(), Status::Alive);
    h.pipe.input.extend(&header[10..]);
    h.pipe.input.extend(REQUEST.as_bytes());
    assert_eq!(h.readable(), Status::Alive);
    assert!(h.output().starts_with("HTTP/1.1 101 "));
    match h.take().as_slice() {
        [Event::Connected { peer, .. }] => {
            assert_eq!(peer.addr, "203.0.113.7:51234".parse().unwrap());
            assert_eq!(peer.request.socket_addr, "127.0.0.1:4000".parse().unwrap());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_or_broken_proxy_header_drops_the_connection_unanswered() {
    for input in [
        REQUEST.as_bytes(),
        b"PROXY TCP4 1.2.3.4\r\n".as_slice(),
        b"PROXY GARBAGE\r\n",
    ] {
        let mut h = Harness::new(proxied());
        h.pipe.input.extend(input);
        assert_eq!(h.readable(), Status::Gone, "{:?}", String::from_utf8_lossy(input));
        assert_eq!(h.output(), "");
        assert!(h.take().is_empty());
    }
}

#[test]
fn over_capacity_reads_the_request_then_answers_503() {
    let settings = Settings::new(&config());
    let mut h = Harness::new(config());
    h.conn = Connection::over_capacity("127.0.0.1:4000".parse().unwrap(), h.now, &settings);
    h.pipe.input.extend(&REQUEST.as_bytes()[..20]);
    assert_eq!(h.readable(), Status::Alive);
    assert_eq!(h.output(), "");
    h.pipe.input.extend(&REQUEST.as_bytes()[20..]);
    assert_eq!(h.readable(), Status::Gone);
    assert!(h
        .output()
        .starts_with("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n"));
    assert!(h.take().is_empty());
}
