//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a load balancer or nginx
//! `stream` proxy puts before the client's bytes to say who the client is. The `ppp` crate
//! parses; this module only decides what a header means for the connection.

use std::net::SocketAddr;

use ppp::{v1, v2, HeaderResult, PartialResult};

/// The longest PROXY header accepted. Version 1 is at most 107 bytes; version 2 is 16 bytes and
/// its addresses plus any TLVs (cloud load balancers add a few dozen bytes).
pub const MAX_PROXY_HEADER: usize = 4096;

/// The longest version 1 header, from the specification.
const V1_MAX: usize = 107;

#[derive(Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// Read more.
    Incomplete,
    /// Not a PROXY header, or a broken one: drop the connection.
    Invalid,
    /// A header of `len` bytes; `source` is the client, or `None` when the proxy speaks for itself
    /// (v2 `LOCAL`, e.g. a health check; v1 `UNKNOWN`) and the socket's address stands.
    Done { len: usize, source: Option<SocketAddr> },
}

/// Parses the PROXY header at the start of `buf`.
pub fn parse(buf: &[u8]) -> ProxyHeader {
    if buf.is_empty() {
        return ProxyHeader::Incomplete;
    }
    let result = HeaderResult::parse(buf);
    if result.is_incomplete() {
        // Version 1 is one line of at most 107 bytes: once it has ended (or cannot end in time),
        // more bytes will not complete it.
        let v1_over = buf.starts_with(b"PROXY") && (buf.len() >= V1_MAX || buf.windows(2).any(|w| w == b"\r\n"));
        return if v1_over || buf.len() >= MAX_PROXY_HEADER {
            ProxyHeader::Invalid
        } else {
            ProxyHeader::Incomplete
        };
    }
    let (len, source) = match result {
        HeaderResult::V1(Ok(h)) => (
            h.header.len(),
            match h.addresses {
                v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Unknown => None,
            },
        ),
        HeaderResult::V2(Ok(h)) => (
            h.len(),
            match (h.command, h.addresses) {
                (v2::Command::Local, _) => None,
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (v2::Command::Proxy, v2::Addresses::Unspecified | v2::Addresses::Unix(_)) => None,
            },
        ),
        HeaderResult::V1(Err(_)) | HeaderResult::V2(Err(_)) => return ProxyHeader::Invalid,
    };
    if len > MAX_PROXY_HEADER {
        return ProxyHeader::Invalid;
    }
    ProxyHeader::Done {
        len,
        source: source.map(|s| SocketAddr::new(s.ip().to_canonical(), s.port())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2_SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

    fn v2(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut h = V2_SIG.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
        h.extend_from_slice(addresses);
        h
    }

    #[test]
    fn version_1() {
        let h = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse(h),
            ProxyHeader::Done {
                len: 43,
                source: Some("203.0.113.7:51234".parse().unwrap())
            }
        );
        let h = b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n";
        assert_eq!(
            parse(h),
            ProxyHeader::Done {
                len: h.len(),
                source: Some("[2001:db8::7]:4711".parse().unwrap())
            }
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), ProxyHeader::Done { len: 15, source: None });
        for cut in [1, 5, 20, 41] {
            assert_eq!(parse(&h[..cut]), ProxyHeader::Incomplete, "{cut}");
        }
    }

    #[test]
    fn version_2() {
        // PROXY, TCP over IPv4: 203.0.113.7:51234 -> 10.0.0.1:443, then one NOOP TLV.
        let mut addresses = vec![203, 0, 113, 7, 10, 0, 0, 1];
        addresses.extend_from_slice(&51234u16.to_be_bytes());
        addresses.extend_from_slice(&443u16.to_be_bytes());
        addresses.extend_from_slice(&[0x04, 0, 1, 42]);
        let mut h = v2(1, 0x11, &addresses);
        let len = h.len();
        h.extend_from_slice(b"\x16\x03\x01"); // a TLS ClientHello follows
        assert_eq!(
            parse(&h),
            ProxyHeader::Done {
                len,
                source: Some("203.0.113.7:51234".parse().unwrap())
            }
        );
        for cut in [1, 12, 15, 16, len - 1] {
            assert_eq!(parse(&h[..cut]), ProxyHeader::Incomplete, "{cut}");
        }
        // LOCAL (a health check): the socket's address stands.
        let local = v2(0, 0x00, &[]);
        assert_eq!(parse(&local), ProxyHeader::Done { len: 16, source: None });
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), ProxyHeader::Invalid);
        assert_eq!(parse(b"PROXY TCP4 nonsense\r\n"), ProxyHeader::Invalid);
        assert_eq!(parse(b"\x16\x03\x01\x02\x00"), ProxyHeader::Invalid);
        // A v1 line that never ends.
        assert_eq!(
            parse(format!("PROXY TCP4 {}", "1".repeat(200)).as_bytes()),
            ProxyHeader::Invalid
        );
        // A v2 header longer than we accept.
        let mut big = V2_SIG.to_vec();
        big.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        big.resize(MAX_PROXY_HEADER, 0);
        assert_eq!(parse(&big), ProxyHeader::Invalid);
    }
}
