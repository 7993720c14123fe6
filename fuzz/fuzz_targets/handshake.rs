//! The upgrade parser on arbitrary bytes: never panics, and every answer is a well-formed HTTP
//! response that says what it should (101 with the accept key, or an error status). The same
//! bytes go through the PROXY header parser and, for a valid request, the client-address walk
//! over its forwarding headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wss_core::handshake::{Decision, Offer, MAX_REQUEST_SIZE};
use wss_core::proxy::{self, ProxyHeader, MAX_PROXY_HEADER};
use wss_core::request::TrustedProxies;
use wss_core::Compression;

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
        allowed_origins: if selector & 4 != 0 {
            vec!["https://a.example".into()]
        } else {
            vec![]
        },
        plain_requests: selector & 8 != 0,
        compression: match selector & 48 {
            0 => Compression::Off,
            16 => Compression::Shared,
            _ => Compression::Dedicated {
                window_bits: 9 + (selector >> 6) % 7,
            },
        },
    };
    if let ProxyHeader::Done { len, .. } = proxy::parse(request) {
        assert!(len <= request.len() && len <= MAX_PROXY_HEADER);
    }
    match offer.decide(request) {
        Decision::Incomplete => {
            assert!(request.len() < MAX_REQUEST_SIZE, "an oversized request must be refused");
        }
        Decision::Upgrade(upgrade) => {
            let (protocol, resource, consumed) = (
                upgrade.protocol.clone(),
                upgrade.request.resource.clone(),
                upgrade.consumed,
            );
            let response = upgrade.accept(&protocol, &offer, &[]);
            let proxies = TrustedProxies::parse(&["0.0.0.0/0", "::/0"]).unwrap();
            let socket = "127.0.0.1:1".parse().unwrap();
            let _ = proxies.client(socket, &upgrade.request.headers);
            assert!(consumed <= request.len() && consumed <= MAX_REQUEST_SIZE);
            let text = std::str::from_utf8(&response).expect("the response is ASCII");
            assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
            assert!(text.ends_with("X-Test: 1\r\n\r\n"));
            assert!(text.contains("\r\nSec-WebSocket-Accept: "));
            assert!(protocol.is_empty() || protocols.contains(&protocol));
            assert!(resource.starts_with('/'));
            assert!(!resource.contains(['\r', '\n']));
        }
        Decision::Plain {
            request: plain,
            consumed,
            ..
        } => {
            assert!(offer.plain_requests, "a plain request only when they are taken");
            assert!(consumed <= request.len() && consumed <= MAX_REQUEST_SIZE);
            assert!(!plain.upgrade && (plain.method == "GET" || plain.method == "HEAD"));
            assert!(plain.resource.starts_with('/') && !plain.resource.contains(['\r', '\n']));
        }
        Decision::Reject { response, why } => {
            let text = std::str::from_utf8(&response).expect("the response is ASCII");
            let status: u16 = text[9..12].parse().expect("a status code");
            assert!(text.starts_with("HTTP/1.1 ") && (400..500).contains(&status), "{text}");
            // The head, then the reason as the body, exactly as long as Content-Length says.
            let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
            assert_eq!(body, why);
            assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())), "{text}");
        }
    }
});
