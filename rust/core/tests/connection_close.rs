//! One connection's end: the close handshake both ways, timeouts, EOF, and failing on a violation
//! (1002, 1007, 1009) after the game has seen what came before; through the real transport and
//! an in-memory socket.

mod harness;
use harness::*;

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
fn sends_after_close_are_discarded_and_released() {
    let mut h = Harness::open(config());
    let peer = h.conn.peer().unwrap().clone();
    assert_eq!(h.input(|c, cx| c.close(1000, "", cx)), Status::Alive);
    peer.reserve_outbound(10).unwrap();
    assert_eq!(
        h.send(wss_core::Packet {
            data: vec![0u8; 10].into(),
            text: false,
            compress: true
        },),
        Status::Alive
    );
    assert_eq!(peer.outbound_bytes(), 0);
}
