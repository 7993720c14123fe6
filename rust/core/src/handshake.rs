//! The server side of the RFC 6455 opening handshake, without I/O: bytes of an HTTP request go in,
//! a decision and the bytes of the response come out. httparse parses; tungstenite derives the
//! accept key; this module only applies the rules of RFC 6455 §4.2 and Godot's subprotocol choice.

use tungstenite::handshake::derive_accept_key;

use crate::request::Request;

/// The most bytes an upgrade request may take (request line and headers). Browsers send a few
/// hundred; cookies can make it a few KiB. Larger requests get `431` and are dropped.
pub const MAX_REQUEST_SIZE: usize = 16 * 1024;
/// The most header lines a request may have.
pub const MAX_HEADERS: usize = 64;

/// What the server makes of the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not a whole request yet: read more.
    Incomplete,
    /// A valid upgrade request. The server answers it with `Upgrade::accept` (now, or once the
    /// game has decided) or refuses it with `refusal`. `consumed` is the request's length; bytes
    /// after it are already WebSocket frames.
    Upgrade(Upgrade),
    /// Refused: send `response` and close. `why` is for logs and tests.
    Reject { response: Vec<u8>, why: &'static str },
    /// A plain HTTP request (`GET` or `HEAD`, no upgrade) for the static files or the game to answer
    /// (`Offer::plain_requests`). `consumed` is its length (a client may send its next request
    /// after it); `keep_alive`: HTTP/1.1 without `Connection: close`.
    Plain {
        request: Request,
        consumed: usize,
        keep_alive: bool,
    },
}

/// A valid upgrade request, not yet answered.
#[derive(Debug, PartialEq, Eq)]
pub struct Upgrade {
    /// What the client asked for (addresses and TLS server name are filled in by the connection).
    pub request: Request,
    /// The subprotocol the server picks unless the game picks another: the first of the client's
    /// that the server offers (`""` if neither side has any).
    pub protocol: String,
    pub consumed: usize,
    /// permessage-deflate, if the client offered it and the server takes it.
    pub deflate: Option<crate::deflate::negotiate::Agreed>,
    /// `Sec-WebSocket-Accept`.
    accept_key: String,
}

impl Upgrade {
    /// The `101 Switching Protocols` response: `protocol` (if not empty), then the server's header
    /// lines, then `more` (this client's, e.g. `Set-Cookie`).
    pub fn accept(&self, protocol: &str, offer: &Offer, more: &[String]) -> Vec<u8> {
        let mut response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
            self.accept_key
        );
        if !protocol.is_empty() {
            response.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
        }
        if let Some(agreed) = &self.deflate {
            response.push_str(&agreed.response_line());
            response.push_str("\r\n");
        }
        for line in offer.extra_headers.iter().chain(more) {
            response.push_str(line);
            response.push_str("\r\n");
        }
        response.push_str("\r\n");
        response.into_bytes()
    }
}

/// What the server offers: its subprotocols, the header lines for every `101` response, and the
/// origins it accepts.
#[derive(Clone, Debug, Default)]
pub struct Offer {
    pub protocols: Vec<String>,
    pub extra_headers: Vec<String>,
    /// Origins (`https://example.com`) whose pages may connect; empty: any. A request without an
    /// `Origin` header (not from a browser) is not affected.
    pub allowed_origins: Vec<String>,
    /// Whether and how permessage-deflate is taken when a client offers it.
    pub compression: crate::config::Compression,
    /// Plain `GET`/`HEAD` requests are taken (`Decision::Plain`: static files are mounted, or the
    /// game answers them) instead of being refused.
    pub plain_requests: bool,
}

impl Offer {
    /// Decides on the request at the start of `buf`.
    pub fn decide(&self, buf: &[u8]) -> Decision {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let consumed = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST_SIZE => {
                return reject(431, "request too large", "")
            }
            Ok(httparse::Status::Partial) => return Decision::Incomplete,
            Err(httparse::Error::TooManyHeaders) => return reject(431, "too many headers", ""),
            Err(_) => return reject(400, "malformed HTTP request", ""),
        };
        if consumed > MAX_REQUEST_SIZE {
            return reject(431, "request too large", "");
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
        let resource = match req.path {
            Some(p) if p.starts_with('/') => p.to_string(),
            _ => "/".to_string(),
        };
        let all_headers = || {
            headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                .collect()
        };
        let upgrade = tokens("Upgrade").iter().any(|t| t.eq_ignore_ascii_case("websocket"));
        if !upgrade && self.plain_requests {
            // HTTP/1.0 too: health checkers (HAProxy's httpchk) still send it.
            let keep_alive =
                req.version == Some(1) && !tokens("Connection").iter().any(|t| t.eq_ignore_ascii_case("close"));
            return match req.method {
                Some(method @ ("GET" | "HEAD")) => Decision::Plain {
                    request: Request {
                        method: method.into(),
                        upgrade: false,
                        resource,
                        headers: all_headers(),
                        ..Request::default()
                    },
                    consumed,
                    keep_alive,
                },
                _ => reject(405, "only GET and HEAD are answered", "Allow: GET, HEAD\r\n"),
            };
        }
        if req.method != Some("GET") {
            return reject(405, "method is not GET", "Allow: GET\r\n");
        }
        if req.version != Some(1) {
            return reject(400, "HTTP version is not 1.1", "");
        }
        if !upgrade {
            return reject(400, "no Upgrade: websocket", "");
        }
        if !tokens("Connection").iter().any(|t| t.eq_ignore_ascii_case("upgrade")) {
            return reject(400, "no Connection: Upgrade", "");
        }
        if tokens("Sec-WebSocket-Version") != ["13"] {
            return reject(426, "unsupported version", "Sec-WebSocket-Version: 13\r\n");
        }
        let mut keys = header("Sec-WebSocket-Key");
        let key = match (keys.next(), keys.next()) {
            (Some(k), None) if is_valid_key(k.value) => k.value,
            _ => return reject(400, "missing or invalid Sec-WebSocket-Key", ""),
        };
        let offered = tokens("Sec-WebSocket-Protocol");
        let protocol = match (offered.is_empty(), self.protocols.is_empty()) {
            (true, true) => String::new(),
            (true, false) => return reject(400, "client offers no subprotocol", ""),
            (false, _) => match offered.iter().find(|p| self.protocols.iter().any(|s| s == *p)) {
                Some(p) => p.to_string(),
                None => return reject(400, "no common subprotocol", ""),
            },
        };
        if !self.allowed_origins.is_empty() {
            let mut origins = header("Origin");
            if let Some(origin) = origins.next() {
                let allowed = origins.next().is_none()
                    && self
                        .allowed_origins
                        .iter()
                        .any(|a| a.as_bytes().eq_ignore_ascii_case(origin.value));
                if !allowed {
                    return reject(403, "origin not allowed", "");
                }
            }
        }
        let request = Request {
            resource,
            headers: all_headers(),
            protocols: offered.iter().map(|p| p.to_string()).collect(),
            ..Request::default()
        };
        let deflate = crate::deflate::negotiate::choose(
            header("Sec-WebSocket-Extensions").filter_map(|h| std::str::from_utf8(h.value).ok()),
            self.compression,
        );
        Decision::Upgrade(Upgrade {
            request,
            protocol,
            consumed,
            deflate,
            accept_key: derive_accept_key(key),
        })
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

/// A refusal whose body says why, so that whoever looks at the response (a browser's network
/// tab, curl) learns what was wrong.
fn reject(status: u16, why: &'static str, extra: &str) -> Decision {
    Decision::Reject {
        response: refusal(status, extra, why),
        why,
    }
}

/// An HTTP response refusing the upgrade: `status` with its standard reason phrase, the header
/// lines in `headers` (each ending in CRLF), and `body` as plain text. The connection closes after.
pub fn refusal(status: u16, headers: &str, body: &str) -> Vec<u8> {
    response(status, "Refused", headers, body.as_bytes(), false)
}

/// The game's answer to a plain HTTP request: as `refusal`, with any status and body bytes (left
/// out for `HEAD`, whose `Content-Length` still tells their size).
pub fn answer(status: u16, headers: &str, body: &[u8], head: bool) -> Vec<u8> {
    response(status, "Unknown", headers, body, head)
}

/// `status` with its standard reason phrase (`fallback` for a status without one), the header
/// lines in `headers` (each ending in CRLF), a `Content-Type` of plain text for a body unless they
/// name one, `Connection: close`, `Content-Length`, then `body` unless `head`.
fn response(status: u16, fallback: &str, headers: &str, body: &[u8], head: bool) -> Vec<u8> {
    let text = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or(fallback);
    let typed = headers.split("\r\n").any(|l| {
        l.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("content-type"))
    });
    let content_type = if typed || body.is_empty() {
        ""
    } else {
        "Content-Type: text/plain; charset=utf-8\r\n"
    };
    let mut out = format!(
        "HTTP/1.1 {status} {text}\r\n{headers}{content_type}Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body);
    }
    out
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
            ..Offer::default()
        }
    }

    /// (response as the server would send it at once, protocol, resource, consumed)
    fn accepted_by(o: &Offer, d: Decision) -> (String, String, String, usize) {
        match d {
            Decision::Upgrade(u) => (
                String::from_utf8(u.accept(&u.protocol, o, &[])).unwrap(),
                u.protocol.clone(),
                u.request.resource.clone(),
                u.consumed,
            ),
            other => panic!("expected Upgrade, got {other:?}"),
        }
    }

    fn accepted(d: Decision) -> (String, String, String, usize) {
        accepted_by(&offer(&[]), d)
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
        let (resp, p, _, _) = accepted_by(
            &o,
            o.decide(request("Sec-WebSocket-Protocol: a, c\r\nSec-WebSocket-Protocol: b\r\n").as_bytes()),
        );
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
            extra_headers: vec!["X-A: 1".into(), "X-B: two".into()],
            ..Offer::default()
        };
        let (resp, _, _, _) = accepted_by(&o, o.decide(request("").as_bytes()));
        assert!(resp.ends_with("X-A: 1\r\nX-B: two\r\n\r\n"), "{resp}");
        // The game's lines for one client come after the server's.
        let Decision::Upgrade(u) = o.decide(request("").as_bytes()) else {
            panic!()
        };
        let resp = String::from_utf8(u.accept("", &o, &["Set-Cookie: s=1".into()])).unwrap();
        assert!(resp.ends_with("X-B: two\r\nSet-Cookie: s=1\r\n\r\n"), "{resp}");
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

    #[test]
    fn the_request_is_kept_for_the_game() {
        let req = request("Origin: https://game.example\r\nCookie: a=1\r\nSec-WebSocket-Protocol: x, y\r\n");
        let Decision::Upgrade(u) = offer(&["y"]).decide(req.as_bytes()) else {
            panic!()
        };
        assert_eq!(u.request.resource, "/chat?room=1");
        assert_eq!(u.request.protocols, ["x", "y"]);
        assert_eq!(u.protocol, "y");
        assert_eq!(u.request.header("origin").as_deref(), Some("https://game.example"));
        assert_eq!(u.request.headers[0], ("Host".to_string(), "example.com".to_string()));
        assert_eq!(u.request.headers.len(), 8);
    }

    #[test]
    fn origins_outside_the_list_get_403() {
        let o = Offer {
            allowed_origins: vec!["https://game.example".into()],
            ..Offer::default()
        };
        let (resp, why) = rejected(o.decide(request("Origin: https://evil.example\r\n").as_bytes()));
        assert_eq!(why, "origin not allowed");
        assert!(resp.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{resp}");
        // Two Origin headers: refused too.
        let two = request("Origin: https://game.example\r\nOrigin: https://evil.example\r\n");
        assert_eq!(rejected(o.decide(two.as_bytes())).1, "origin not allowed");
        // Listed (any case), or no Origin at all (not a browser): accepted.
        accepted_by(&o, o.decide(request("Origin: HTTPS://Game.Example\r\n").as_bytes()));
        accepted_by(&o, o.decide(request("").as_bytes()));
        // No list: any origin.
        accepted(offer(&[]).decide(request("Origin: https://evil.example\r\n").as_bytes()));
    }

    #[test]
    fn refusals_carry_status_headers_and_body() {
        let r = String::from_utf8(refusal(401, "WWW-Authenticate: Bearer\r\n", "no token")).unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 8\r\n\r\nno token"
        );
        let r = String::from_utf8(refusal(599, "", "")).unwrap();
        assert!(r.starts_with("HTTP/1.1 599 Refused\r\n"), "{r}");
    }
}
