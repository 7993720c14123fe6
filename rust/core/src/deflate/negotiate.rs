//! permessage-deflate's negotiation (RFC 7692 §5, §7): the client's offers in
//! `Sec-WebSocket-Extensions`, the server's choice, and the header line that answers it.
//!
//! The server keeps no compression state between messages unless a dedicated setting asks for it:
//! it always answers `server_no_context_takeover` in the shared setting (each message it sends is
//! compressed on its own, so one compressor per window size serves every connection) and
//! `client_no_context_takeover` (each message a client sends can be inflated with a fresh state,
//! held only while that message arrives). An offer the server cannot honour is declined and the
//! next one considered; none acceptable: no extension, the connection goes on uncompressed.

/// What the server agreed to for one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreed {
    /// Window bits of the server's compression (9-15).
    pub server_window_bits: u8,
    /// Window bits the client compresses with (9-15; 15 unless it offered a limit).
    pub client_window_bits: u8,
    /// The server compresses each message on its own (always, in the shared setting).
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own.
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
/// first `permessage-deflate` offer it can honour, if any.
pub fn choose<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Agreed> {
    headers
        .into_iter()
        .flat_map(split_outside_quotes)
        .filter_map(parse_offer)
        .find_map(accept)
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

/// The server's answer to one offer, or `None` to decline it.
fn accept(offer: Offer) -> Option<Agreed> {
    // zlib cannot compress with a 256-byte window (it uses 512): an offer that asks the server
    // for 8 window bits is declined.
    let server_window_bits = match offer.server_max_window_bits {
        Some(8) => return None,
        Some(bits) => bits,
        None => 15,
    };
    // The client may only be limited if it said it can be; inflating with a 32 KiB window reads
    // any smaller one too, so the server never asks for less.
    let client_window_bits = match offer.client_max_window_bits {
        Some(Some(bits)) => bits.max(9),
        _ => 15,
    };
    Some(Agreed {
        server_window_bits,
        client_window_bits,
        server_no_context_takeover: true,
        client_no_context_takeover: true,
    })
}

/// Splits a header value at the commas outside quoted strings.
fn split_outside_quotes(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(choose(["permessage-deflate; client_max_window_bits"]), agreed(15, 15));
        // Python websockets (default):
        assert_eq!(
            choose(["permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"]),
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
        assert_eq!(choose([]), None);
        assert_eq!(choose(["x-webkit-deflate-frame"]), None);
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
            assert_eq!(choose([bad]), None, "{bad}");
            // A later acceptable offer is taken instead.
            let both = format!("{bad}, permessage-deflate");
            assert_eq!(choose([both.as_str()]), agreed(15, 15), "{bad}");
        }
        assert_eq!(
            choose(["foo, permessage-deflate; server_max_window_bits=\"10\""]),
            agreed(10, 15)
        );
        // Over several header lines, the first acceptable offer wins.
        assert_eq!(
            choose([
                "permessage-deflate; server_max_window_bits=8",
                "permessage-deflate; server_max_window_bits=9"
            ]),
            agreed(9, 15)
        );
    }
}
