//! One connection's upgrade: the request (whole, trickled, early frames), refusals, the
//! handshake deadline, authorization before the upgrade, forwarded addresses and the PROXY header,
//! over capacity, the multiplayer id; through the real transport and an in-memory socket.

mod harness;
use harness::*;

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
            text: true,
            compress: true
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

fn proxied() -> ServerConfig {
    ServerConfig {
        proxy_protocol: true,
        ..config()
    }
}

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

fn answering() -> ServerConfig {
    ServerConfig {
        answer_requests: true,
        ..config()
    }
}

/// A plain request that arrived and waits for the game's answer; returns its id.
fn plain_requested(h: &mut Harness, request: &str) -> i32 {
    h.pipe.input.extend(request.as_bytes());
    assert_eq!(h.readable(), Status::Alive);
    assert_eq!(h.output(), "", "nothing is answered before the game does");
    match h.take().as_slice() {
        [Event::Requested { id, request }] => {
            assert!(!request.upgrade);
            assert_eq!(request.path(), "/healthz");
            assert_eq!(request.client_addr, "127.0.0.1:4000".parse().unwrap());
            *id
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_plain_get_is_handed_to_the_game_and_its_answer_closes_the_connection() {
    let mut h = Harness::new(answering());
    let id = plain_requested(&mut h, "GET /healthz?full=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    let verdict = Verdict::Answer {
        status: 200,
        headers: "Content-Type: application/json\r\n".into(),
        body: br#"{"players":3}"#.to_vec(),
    };
    assert_eq!(h.decide(verdict), Status::Gone);
    assert_eq!(
        h.output(),
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 13\r\n\r\n{\"players\":3}"
    );
    assert!(h.pipe.fin, "closed after the answer");
    assert!(matches!(h.take().as_slice(), [Event::RequestEnded { id: i, why: "answered" }] if *i == id));
}

#[test]
fn head_gets_the_length_without_the_body_and_http_1_0_is_answered() {
    let mut h = Harness::new(answering());
    plain_requested(&mut h, "HEAD /healthz HTTP/1.0\r\n\r\n");
    let verdict = Verdict::Answer {
        status: 503,
        headers: String::new(),
        body: b"draining".to_vec(),
    };
    let _ = h.decide(verdict);
    assert_eq!(
        h.output(),
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 8\r\n\r\n"
    );
}

#[test]
fn other_methods_get_405_and_unanswered_requests_503_at_the_handshake_timeout() {
    let mut h = Harness::new(answering());
    h.pipe
        .input
        .extend(b"POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    let _ = h.readable();
    let out = h.output();
    assert!(
        out.starts_with("HTTP/1.1 405 ") && out.contains("\r\nAllow: GET, HEAD\r\n"),
        "{out}"
    );
    assert!(h.take().is_empty(), "the game never hears of it");

    let mut h = Harness::new(answering());
    let id = plain_requested(&mut h, "GET /healthz HTTP/1.1\r\n\r\n");
    h.now += Duration::from_secs(5);
    let _ = h.timeout();
    assert!(h.output().starts_with("HTTP/1.1 503 "));
    assert!(matches!(h.take().as_slice(), [Event::RequestEnded { id: i, .. }] if *i == id));
}

#[test]
fn without_answer_requests_a_plain_get_is_refused_as_before_and_upgrades_are_unchanged() {
    let mut h = Harness::new(config());
    h.pipe.input.extend(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let _ = h.readable();
    assert!(h.output().starts_with("HTTP/1.1 400 "));
    assert!(h.take().is_empty());
    // With it on, an upgrade still upgrades at once.
    let mut h = Harness::new(answering());
    h.pipe.input.extend(harness::REQUEST.as_bytes());
    let _ = h.readable();
    assert!(h.output().starts_with("HTTP/1.1 101 "));
    assert!(matches!(h.take().as_slice(), [Event::Connected { peer, .. }] if peer.request.upgrade));
}

#[test]
fn an_unanswered_head_gets_503_without_a_body() {
    let mut h = Harness::new(answering());
    plain_requested(&mut h, "HEAD /healthz HTTP/1.1\r\n\r\n");
    h.now += Duration::from_secs(5);
    let _ = h.timeout();
    let out = h.output();
    assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
    assert!(
        out.ends_with("\r\n\r\n") && out.contains("Content-Length: 49\r\n"),
        "{out}"
    );
}
