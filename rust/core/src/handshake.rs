//! The server side of the RFC 6455 opening handshake, without I/O: bytes of an HTTP request go in,
//! a decision and the bytes of the response come out. httparse parses; tungstenite derives the
//! accept key; this module only applies the rules of RFC 6455 §4.2 and Godot's subprotocol choice.

use tungstenite::handshake::derive_accept_key;

/// The most bytes an upgrade request may take (request line and headers). Browsers send a few
/// hundred; cookies can make it a few KiB. Larger requests get `431` and are dropped.
pub const MAX_REQUEST_SIZE: usize = 16 * 1024;
/// The most header lines a request may have.
pub const MAX_HEADERS: usize = 64;

/// What the server answers to a complete request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not a whole request yet: read more.
    Incomplete,
    /// Upgrade accepted: send `response`, then speak WebSocket. `consumed` is the request's
    /// length; bytes after it are already WebSocket frames.
    Accept {
        response: Vec<u8>,
        protocol: String,
        resource: String,
        consumed: usize,
    },
    /// Refused: send `response` and close. `why` is for logs and tests.
    Reject { response: Vec<u8>, why: &'static str },
}

/// What the server offers: its subprotocols and the header lines for every `101` response.
#[derive(Clone, Debug, Default)]
pub struct Offer {
    pub protocols: Vec<String>,
    pub extra_headers: Vec<String>,
}

impl Offer {
    /// Decides on the request at the start of `buf`.
    pub fn decide(&self, buf: &[u8]) -> Decision {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let consumed = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST_SIZE => {
                return reject(431, "Request Header Fields Too Large", "request too large", "")
            }
            Ok(httparse::Status::Partial) => return Decision::Incomplete,
            Err(httparse::Error::TooManyHeaders) => {
                return reject(431, "Request Header Fields Too Large", "too many headers", "")
            }
            Err(_) => return reject(400, "Bad Request", "malformed HTTP request", ""),
        };
        if consumed > MAX_REQUEST_SIZE {
            return reject(431, "Request Header Fields Too Large", "request too large", "");
        }
        if req.method != Some("GET") {
            return reject(405, "Method Not Allowed", "method is not GET", "Allow: GET\r\n");
        }
        if req.version != Some(1) {
            return reject(400, "Bad Request", "HTTP version is not 1.1", "");
        }
        let headers: &[httparse::Header] = req.headers;
        let header = |name: &'static str| headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name));
        let tokens = |name: &'static str| {
            header(name)
                .filter_map(|h| std::str::from_utf8(h.value).ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        };
        if !tokens("Upgrade").iter().any(|t| t.eq_ignore_ascii_case("websocket")) {
            return reject(400, "Bad Request", "no Upgrade: websocket", "");
        }
        if !tokens("Connection").iter().any(|t| t.eq_ignore_ascii_case("upgrade")) {
            return reject(400, "Bad Request", "no Connection: Upgrade", "");
        }
        if tokens("Sec-WebSocket-Version") != ["13"] {
            return reject(
                426,
                "Upgrade Required",
                "unsupported version",
                "Sec-WebSocket-Version: 13\r\n",
            );
        }
        let mut keys = header("Sec-WebSocket-Key");
        let key = match (keys.next(), keys.next()) {
            (Some(k), None) if is_valid_key(k.value) => k.value,
            _ => return reject(400, "Bad Request", "missing or invalid Sec-WebSocket-Key", ""),
        };
        let offered = tokens("Sec-WebSocket-Protocol");
        let protocol = match (offered.is_empty(), self.protocols.is_empty()) {
            (true, true) => String::new(),
            (true, false) => return reject(400, "Bad Request", "client offers no subprotocol", ""),
            (false, _) => match offered.iter().find(|p| self.protocols.iter().any(|s| s == *p)) {
                Some(p) => p.to_string(),
                None => return reject(400, "Bad Request", "no common subprotocol", ""),
            },
        };
        let resource = match req.path {
            Some(p) if p.starts_with('/') => p.to_string(),
            _ => "/".to_string(),
        };

        let mut response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
            derive_accept_key(key)
        );
        if !protocol.is_empty() {
            response.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
        }
        for line in &self.extra_headers {
            response.push_str(line);
            response.push_str("\r\n");
        }
        response.push_str("\r\n");
        Decision::Accept {
            response: response.into_bytes(),
            protocol,
            resource,
            consumed,
        }
    }
}

/// RFC 6455 §4.2.1: the key is 16 random bytes in base64, which is always 24 characters ending in `==`.
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn reject(status: u16, text: &str, why: &'static str, extra: &str) -> Decision {
    let response =
        format!("HTTP/1.1 {status} {text}\r\n{extra}Connection: close\r\nContent-Length: 0\r\n\r\n").into_bytes();
    Decision::Reject { response, why }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request(extra: &str) -> String {
        format!(
            "GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    fn offer(protocols: &[&str]) -> Offer {
        Offer {
            protocols: protocols.iter().map(|s| s.to_string()).collect(),
            extra_headers: vec![],
        }
    }

    fn accepted(d: Decision) -> (String, String, String, usize) {
        match d {
            Decision::Accept {
                response,
                protocol,
                resource,
                consumed,
            } => (String::from_utf8(response).unwrap(), protocol, resource, consumed),
            other => panic!("expected Accept, got {other:?}"),
        }
    }

    fn rejected(d: Decision) -> (String, &'static str) {
        match d {
            Decision::Reject { response, why } => (String::from_utf8(response).unwrap(), why),
            other => panic!("expected Reject, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_rfc_example_with_its_accept_key() {
        let req = request("");
        let (resp, protocol, resource, consumed) = accepted(offer(&[]).decide(req.as_bytes()));
        assert!(resp.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(resp.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(resp.contains("\r\nConnection: Upgrade\r\n"));
        assert!(resp.contains("\r\nUpgrade: websocket\r\n"));
        assert!(!resp.contains("Sec-WebSocket-Protocol"));
        assert!(resp.ends_with("\r\n\r\n"));
        assert_eq!(protocol, "");
        assert_eq!(resource, "/chat?room=1");
        assert_eq!(consumed, req.len());
    }

    #[test]
    fn incomplete_until_the_blank_line() {
        let req = request("");
        for cut in [0, 1, 10, req.len() - 1] {
            assert_eq!(
                offer(&[]).decide(&req.as_bytes()[..cut]),
                Decision::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn bytes_after_the_request_are_not_consumed() {
        let mut bytes = request("").into_bytes();
        let len = bytes.len();
        bytes.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        let (_, _, _, consumed) = accepted(offer(&[]).decide(&bytes));
        assert_eq!(consumed, len);
    }

    #[test]
    fn subprotocol_follows_the_clients_order() {
        let o = offer(&["b", "c"]);
        let (resp, p, _, _) =
            accepted(o.decide(request("Sec-WebSocket-Protocol: a, c\r\nSec-WebSocket-Protocol: b\r\n").as_bytes()));
        assert_eq!(p, "c");
        assert!(resp.contains("\r\nSec-WebSocket-Protocol: c\r\n"));
        let (_, why) = rejected(o.decide(request("Sec-WebSocket-Protocol: x, y\r\n").as_bytes()));
        assert_eq!(why, "no common subprotocol");
        let (_, why) = rejected(o.decide(request("").as_bytes()));
        assert_eq!(why, "client offers no subprotocol");
        // Server offers none, client asks for one: no common subprotocol.
        let (_, why) = rejected(offer(&[]).decide(request("Sec-WebSocket-Protocol: a\r\n").as_bytes()));
        assert_eq!(why, "no common subprotocol");
    }

    #[test]
    fn extra_headers_are_appended() {
        let o = Offer {
            protocols: vec![],
            extra_headers: vec!["X-A: 1".into(), "X-B: two".into()],
        };
        let (resp, _, _, _) = accepted(o.decide(request("").as_bytes()));
        assert!(resp.ends_with("X-A: 1\r\nX-B: two\r\n\r\n"), "{resp}");
    }

    #[test]
    fn refuses_what_is_not_an_upgrade() {
        let cases: [(&str, &str, u16); 7] = [
            ("POST / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", "method is not GET", 405),
            ("GET / HTTP/1.0\r\nUpgrade: websocket\r\n\r\n", "HTTP version is not 1.1", 400),
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "no Upgrade: websocket", 400),
            ("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", "no Connection: Upgrade", 400),
            (
                "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n",
                "unsupported version",
                426,
            ),
            (
                "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
                "missing or invalid Sec-WebSocket-Key",
                400,
            ),
            ("\x01\x02garbage\r\n\r\n", "malformed HTTP request", 400),
        ];
        for (req, want, status) in cases {
            let (resp, why) = rejected(offer(&[]).decide(req.as_bytes()));
            assert_eq!(why, want, "{req:?}");
            assert!(resp.starts_with(&format!("HTTP/1.1 {status} ")), "{resp}");
        }
    }

    #[test]
    fn oversized_requests_are_refused() {
        let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n", "a".repeat(MAX_REQUEST_SIZE));
        let (resp, why) = rejected(offer(&[]).decide(big.as_bytes()));
        assert_eq!(why, "request too large");
        assert!(resp.starts_with("HTTP/1.1 431 "));
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: v\r\n")).collect();
        let (_, why) = rejected(offer(&[]).decide(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()));
        assert_eq!(why, "too many headers");
    }
}
