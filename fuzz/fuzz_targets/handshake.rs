//! The upgrade parser on arbitrary bytes: never panics, and every answer is a well-formed HTTP
//! response that says what it should (101 with the accept key, or an error status).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wss_core::handshake::{Decision, Offer, MAX_REQUEST_SIZE};

fuzz_target!(|data: &[u8]| {
    let (&selector, request) = match data.split_first() {
        Some(x) => x,
        None => return,
    };
    let protocols = match selector % 3 {
        0 => vec![],
        1 => vec!["chat".to_string()],
        _ => vec!["a".to_string(), "b".to_string()],
    };
    let offer = Offer {
        protocols: protocols.clone(),
        extra_headers: vec!["X-Test: 1".into()],
    };
    match offer.decide(request) {
        Decision::Incomplete => {
            assert!(request.len() < MAX_REQUEST_SIZE, "an oversized request must be refused");
        }
        Decision::Accept {
            response,
            protocol,
            resource,
            consumed,
        } => {
            assert!(consumed <= request.len() && consumed <= MAX_REQUEST_SIZE);
            let text = std::str::from_utf8(&response).expect("the response is ASCII");
            assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
            assert!(text.ends_with("X-Test: 1\r\n\r\n"));
            assert!(text.contains("\r\nSec-WebSocket-Accept: "));
            assert!(protocol.is_empty() || protocols.contains(&protocol));
            assert!(resource.starts_with('/'));
            assert!(!resource.contains(['\r', '\n']));
        }
        Decision::Reject { response, .. } => {
            let text = std::str::from_utf8(&response).expect("the response is ASCII");
            let status: u16 = text[9..12].parse().expect("a status code");
            assert!(text.starts_with("HTTP/1.1 ") && (400..500).contains(&status), "{text}");
            assert!(text.ends_with("\r\n\r\n"));
        }
    }
});
