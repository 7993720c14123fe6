//! permessage-deflate's negotiation (RFC 7692 §5, §7): the client's offers in
//! `Sec-WebSocket-Extensions`, the server's choice, and the header line that answers it.
//!
//! The server keeps no compression state between messages unless the dedicated setting asks for
//! it: in the shared setting it always answers `server_no_context_takeover` (each message it sends
//! is compressed on its own, so one compressor per window size serves every connection) and
//! `client_no_context_takeover` (each message a client sends can be inflated with a fresh state,
//! held only while that message arrives). In the dedicated setting (`window_bits` W) it takes
//! context takeover within a window of at most W bits each way, which costs the connection that
//! window's bytes of history per direction (`super::window`): it answers
//! `server_max_window_bits=W` (when W < 15 or the client asked for less), and limits the client to
//! W with `client_max_window_bits` if the client offered that parameter; a client that did not
//! (it may use a 32 KiB window) is asked for `client_no_context_takeover`. A context takeover the
//! client itself turns down (`*_no_context_takeover` in its offer) is honoured. An offer the
//! server cannot honour is declined and the next one considered; none acceptable: no extension,
//! the connection goes on uncompressed.

use crate::config::Compression;

/// What the server agreed to for one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreed {
    /// Window bits of the server's compression (9-15).
    pub server_window_bits: u8,
    /// Window bits the client compresses with (8-15; 15 unless it offered a limit). The server
    /// inflates with at least 9 (zlib's least), which reads a smaller window's data too.
    pub client_window_bits: u8,
    /// The server compresses each message on its own (always, in the shared setting); else it
    /// keeps the last `2^server_window_bits` bytes it sent compressed.
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own; else the server keeps the last
    /// `2^client_window_bits` bytes it inflated.
    pub client_no_context_takeover: bool,
}

impl Agreed {
    /// The `Sec-WebSocket-Extensions` line of the `101` response.
    pub fn response_line(&self) -> String {
        let mut line = String::from("Sec-WebSocket-Extensions: permessage-deflate");
        if self.server_no_context_takeover {
            line.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            line.push_str("; client_no_context_takeover");
        }
        if self.server_window_bits < 15 {
            line.push_str(&format!("; server_max_window_bits={}", self.server_window_bits));
        }
        if self.client_window_bits < 15 {
            line.push_str(&format!("; client_max_window_bits={}", self.client_window_bits));
        }
        line
    }
}

/// One offer's parameters, as the client sent them.
#[derive(Debug, Default, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// `server_max_window_bits=N`.
    server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` with (`Some(Some(n))`) or without (`Some(None)`) a value.
    client_max_window_bits: Option<Option<u8>>,
}

/// The server's choice among the offers in the `Sec-WebSocket-Extensions` values `headers`: the
/// first `permessage-deflate` offer it can honour in the `setting`, if any.
pub fn choose<'a>(headers: impl IntoIterator<Item = &'a str>, setting: Compression) -> Option<Agreed> {
    let dedicated = match setting {
        Compression::Off => return None,
        Compression::Shared => None,
        Compression::Dedicated { window_bits } => Some(window_bits.clamp(9, 15)),
    };
    headers
        .into_iter()
        .flat_map(crate::request::split_list)
        .filter_map(parse_offer)
        .find_map(|offer| accept(offer, dedicated))
}

/// A permessage-deflate offer's parameters; `None` for another extension or a malformed offer
/// (unknown or repeated parameter, bad value: RFC 7692 §7 says to decline it).
fn parse_offer(ext: &str) -> Option<Offer> {
    let mut parts = ext.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut offer = Offer::default();
    let mut seen = Vec::new();
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (part, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return None;
        }
        let bits = |v: Option<&str>| -> Option<u8> {
            let v = v?;
            if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            v.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
        };
        match (name.as_str(), value) {
            ("server_no_context_takeover", None) => offer.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => offer.client_no_context_takeover = true,
            ("server_max_window_bits", v) => offer.server_max_window_bits = Some(bits(v)?),
            ("client_max_window_bits", None) => offer.client_max_window_bits = Some(None),
            ("client_max_window_bits", v) => offer.client_max_window_bits = Some(Some(bits(v)?)),
            _ => return None,
        }
        seen.push(name);
    }
    Some(offer)
}

/// The server's answer to one offer, or `None` to decline it. `dedicated`: the dedicated
/// setting's window bits (context takeover), `None` in the shared setting.
fn accept(offer: Offer, dedicated: Option<u8>) -> Option<Agreed> {
    // zlib cannot compress with a 256-byte window (it uses 512): an offer that asks the server
    // for 8 window bits is declined.
    let asked = match offer.server_max_window_bits {
        Some(8) => return None,
        Some(bits) => bits,
        None => 15,
    };
    match dedicated {
        None => Some(Agreed {
            server_window_bits: asked,
            // The client may only be limited if it said it can be; inflating with a 32 KiB
            // window reads any smaller one too, so the server never asks for less.
            // (An offer of 8 is answered 8: the server inflates with 9, which reads it too.)
            client_window_bits: match offer.client_max_window_bits {
                Some(Some(bits)) => bits,
                _ => 15,
            },
            server_no_context_takeover: true,
            client_no_context_takeover: true,
        }),
        Some(window) => {
            // The client's messages refer back at most to its window: limited to the setting's
            // if it accepts a limit, else it compresses each message on its own.
            let (client_window_bits, client_no_context_takeover) = match offer.client_max_window_bits {
                Some(limit) => (limit.unwrap_or(15).min(window), offer.client_no_context_takeover),
                None => (15, true),
            };
            Some(Agreed {
                server_window_bits: asked.min(window),
                client_window_bits,
                server_no_context_takeover: offer.server_no_context_takeover,
                client_no_context_takeover,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose_shared<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Agreed> {
        choose(headers, Compression::Shared)
    }

    fn agreed(server_window_bits: u8, client_window_bits: u8) -> Option<Agreed> {
        Some(Agreed {
            server_window_bits,
            client_window_bits,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
        })
    }

    #[test]
    fn what_browsers_and_python_websockets_offer_is_accepted() {
        // Chromium, Firefox:
        assert_eq!(
            choose_shared(["permessage-deflate; client_max_window_bits"]),
            agreed(15, 15)
        );
        // Python websockets (default):
        assert_eq!(
            choose_shared(["permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"]),
            agreed(12, 12)
        );
        let line = agreed(12, 12).unwrap().response_line();
        assert_eq!(
            line,
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12"
        );
        assert_eq!(
            agreed(15, 15).unwrap().response_line(),
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn nothing_without_an_offer_and_bad_offers_are_declined_for_the_next() {
        assert_eq!(choose_shared([]), None);
        assert_eq!(choose_shared(["x-webkit-deflate-frame"]), None);
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=08x",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_max_window_bits=8",
        ] {
            assert_eq!(choose_shared([bad]), None, "{bad}");
            // A later acceptable offer is taken instead.
            let both = format!("{bad}, permessage-deflate");
            assert_eq!(choose_shared([both.as_str()]), agreed(15, 15), "{bad}");
        }
        assert_eq!(
            choose_shared(["foo, permessage-deflate; server_max_window_bits=\"10\""]),
            agreed(10, 15)
        );
        // Over several header lines, the first acceptable offer wins.
        assert_eq!(
            choose_shared([
                "permessage-deflate; server_max_window_bits=8",
                "permessage-deflate; server_max_window_bits=9"
            ]),
            agreed(9, 15)
        );
    }

    #[test]
    fn nothing_is_taken_when_compression_is_off() {
        assert_eq!(choose(["permessage-deflate"], Compression::Off), None);
    }

    #[test]
    fn the_dedicated_setting_takes_context_takeover_within_its_window() {
        let dedicated = |offer: &str| choose([offer], Compression::Dedicated { window_bits: 12 }).unwrap();
        // Chromium: client context takeover limited to 12 bits, ours within 12.
        let a = dedicated("permessage-deflate; client_max_window_bits");
        assert_eq!(
            (
                a.server_window_bits,
                a.client_window_bits,
                a.server_no_context_takeover,
                a.client_no_context_takeover
            ),
            (12, 12, false, false)
        );
        assert_eq!(
            a.response_line(),
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
        );
        // A client that cannot be limited compresses each message on its own.
        let b = dedicated("permessage-deflate");
        assert_eq!((b.client_window_bits, b.client_no_context_takeover), (15, true));
        assert_eq!(
            b.response_line(),
            "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_max_window_bits=12"
        );
        // Smaller windows and no context takeover asked by the client are honoured.
        let c = dedicated(
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9; \
             server_no_context_takeover; client_no_context_takeover",
        );
        assert_eq!(
            (
                c.server_window_bits,
                c.client_window_bits,
                c.server_no_context_takeover,
                c.client_no_context_takeover
            ),
            (10, 9, true, true)
        );
        // An offer of 8 for the client is answered 8, never more than offered.
        let d = dedicated("permessage-deflate; client_max_window_bits=8");
        assert_eq!(d.client_window_bits, 8);
        assert!(d.response_line().ends_with("client_max_window_bits=8"));
        assert_eq!(
            choose_shared(["permessage-deflate; client_max_window_bits=8"]),
            agreed(15, 8)
        );
        // 8 for the server stays declined.
        assert_eq!(
            choose(
                ["permessage-deflate; server_max_window_bits=8"],
                Compression::Dedicated { window_bits: 12 }
            ),
            None
        );
    }
}
