//! One connection once open: pings and the heartbeat, the queues' limits and backpressure both
//! ways, and the partial-message deadline; through the real transport and an in-memory socket.

mod harness;
use harness::*;

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
                text: false,
                compress: true
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
