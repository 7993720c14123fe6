//! The upgrade request a client came with, as the game sees it (headers, path, offered
//! subprotocols, TLS server name, addresses), and who the client really is when it came through
//! trusted proxies.
//!
//! The client's address: the TCP peer's, unless that peer is a trusted proxy; then the address the
//! proxies report. `Forwarded` (RFC 7239) is used if present, else `X-Forwarded-For`, else
//! `X-Real-IP`. The hops are walked from the right (the one our proxy added) leftwards while they
//! are themselves trusted proxies: the first untrusted hop is the client. Anything to the left of
//! it was written by the client and is ignored, so a forged header gains nothing. A hop that
//! cannot be parsed (`unknown`, an obfuscated name, garbage) stops the walk at the last trusted
//! address seen.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

use crate::error::ConfigError;

/// One client's upgrade request. Immutable once parsed; shared by the game's objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, or `HEAD` for a plain HTTP request (`upgrade == false`).
    pub method: String,
    /// A WebSocket upgrade; `false`: a plain HTTP request for the game to answer
    /// (`ServerConfig::answer_requests`).
    pub upgrade: bool,
    /// The request target: path and query string, e.g. `/chat?room=1` (at least `/`).
    pub resource: String,
    /// Every header line as received, in order, name case kept. Values that are not UTF-8 are
    /// decoded lossily.
    pub headers: Vec<(String, String)>,
    /// The subprotocols the client offered, in its order of preference.
    pub protocols: Vec<String>,
    /// `wss://` only: the host name the client asked for in its TLS handshake (SNI), if any.
    pub server_name: Option<String>,
    /// The TCP peer (a proxy, if the client came through one).
    pub socket_addr: SocketAddr,
    /// The client: `socket_addr` unless that is a trusted proxy (see the module's notes). The
    /// port is 0 when the proxies did not report it.
    pub client_addr: SocketAddr,
}

impl Default for Request {
    fn default() -> Self {
        let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
        Request {
            method: "GET".into(),
            upgrade: true,
            resource: "/".into(),
            headers: Vec::new(),
            protocols: Vec::new(),
            server_name: None,
            socket_addr: nowhere,
            client_addr: nowhere,
        }
    }
}

impl Request {
    /// Every value of header `name` (any case), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Header `name` (any case): its value, or all of its values joined as HTTP joins repeated
    /// fields (`", "`; `"; "` for `Cookie`, RFC 6265 §5.4). `None` if absent.
    pub fn header(&self, name: &str) -> Option<String> {
        let separator = if name.eq_ignore_ascii_case("cookie") {
            "; "
        } else {
            ", "
        };
        let mut values = self.values(name).peekable();
        values.peek()?;
        Some(values.collect::<Vec<_>>().join(separator))
    }

    /// The request path without the query string.
    pub fn path(&self) -> &str {
        self.resource.split_once('?').map_or(&self.resource, |(p, _)| p)
    }

    /// The query string without the `?` (empty if none).
    pub fn query(&self) -> &str {
        self.resource.split_once('?').map_or("", |(_, q)| q)
    }
}

/// The proxies whose word on the client's address is taken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses (`10.0.0.1`, `::1`) and ranges (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, ConfigError> {
        entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                IpNet::from_str(e)
                    .map(|n| n.trunc())
                    .or_else(|_| IpAddr::from_str(e).map(IpNet::from))
                    .map_err(|_| {
                        ConfigError(format!(
                            "trusted_proxies: {e:?} is neither an IP address nor a CIDR range such as 10.0.0.0/8"
                        ))
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `socket` (see the module's notes).
    pub fn client(&self, socket: SocketAddr, headers: &[(String, String)]) -> SocketAddr {
        if !self.contains(socket.ip()) {
            return socket;
        }
        fn values<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
            headers
                .iter()
                .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
        let named = |name: &'static str| values(headers, name);
        let hops: Vec<Option<SocketAddr>> = if named("forwarded").next().is_some() {
            named("forwarded").flat_map(split_list).map(forwarded_for).collect()
        } else if named("x-forwarded-for").next().is_some() {
            named("x-forwarded-for").flat_map(split_list).map(parse_node).collect()
        } else {
            named("x-real-ip")
                .last()
                .map(|v| parse_node(v.trim()))
                .into_iter()
                .collect()
        };
        let mut client = socket;
        for hop in hops.into_iter().rev() {
            let Some(addr) = hop else {
                break;
            };
            client = addr;
            if !self.contains(addr.ip()) {
                break;
            }
        }
        client
    }
}

/// Splits a comma-separated header value, keeping commas inside quoted strings.
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// The `for=` of one `Forwarded` element (`for=192.0.2.60;proto=https`); `None` if it has none or
/// it is not an address.
fn forwarded_for(element: &str) -> Option<SocketAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(value.trim().trim_matches('"')))?
    })
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn parse_node(text: &str) -> Option<SocketAddr> {
    let addr = if let Ok(ip) = IpAddr::from_str(text) {
        SocketAddr::new(ip, 0)
    } else if let Ok(sa) = SocketAddr::from_str(text) {
        sa
    } else {
        let inner = text.strip_prefix('[')?.strip_suffix(']')?;
        SocketAddr::new(IpAddr::from_str(inner).ok()?, 0)
    };
    Some(SocketAddr::new(addr.ip().to_canonical(), addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    #[test]
    fn untrusted_peers_are_taken_at_their_word_only_for_their_own_address() {
        let h = headers(&[("X-Forwarded-For", "1.2.3.4"), ("X-Real-IP", "1.2.3.4")]);
        assert_eq!(trusted(&[]).client(sa("9.9.9.9:5000"), &h), sa("9.9.9.9:5000"));
        assert_eq!(
            trusted(&["10.0.0.0/8"]).client(sa("9.9.9.9:5000"), &h),
            sa("9.9.9.9:5000")
        );
    }

    #[test]
    fn x_forwarded_for_is_walked_from_the_right() {
        let t = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        // The client forged "6.6.6.6"; our nginx appended the real address after it.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]);
        assert_eq!(t.client(sa("127.0.0.1:40000"), &h), sa("203.0.113.7:0"));
        // Two trusted hops, then the client.
        let h = headers(&[("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.1.2.3")]);
        assert_eq!(t.client(sa("127.0.0.1:40000"), &h), sa("203.0.113.7:0"));
        // Repeated headers form one list.
        let h = headers(&[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-For", "203.0.113.7, 10.1.2.3"),
        ]);
        assert_eq!(t.client(sa("127.0.0.1:40000"), &h), sa("203.0.113.7:0"));
        // Everything trusted: the left-most.
        let h = headers(&[("X-Forwarded-For", "10.0.0.1, 10.0.0.2")]);
        assert_eq!(t.client(sa("127.0.0.1:1"), &h), sa("10.0.0.1:0"));
        // Garbage stops the walk at the last trusted hop.
        let h = headers(&[("X-Forwarded-For", "203.0.113.7, nonsense, 10.0.0.2")]);
        assert_eq!(t.client(sa("127.0.0.1:1"), &h), sa("10.0.0.2:0"));
        // IPv6, with and without brackets and port.
        let h = headers(&[("X-Forwarded-For", "2001:db8::7")]);
        assert_eq!(t.client(sa("127.0.0.1:1"), &h), sa("[2001:db8::7]:0"));
        let h = headers(&[("X-Forwarded-For", "[2001:db8::7]:4711")]);
        assert_eq!(t.client(sa("127.0.0.1:1"), &h), sa("[2001:db8::7]:4711"));
    }

    #[test]
    fn forwarded_comes_first_and_keeps_ports() {
        let t = trusted(&["127.0.0.1"]);
        let h = headers(&[
            ("X-Forwarded-For", "6.6.6.6"),
            (
                "Forwarded",
                "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=127.0.0.1",
            ),
        ]);
        assert_eq!(t.client(sa("127.0.0.1:1"), &h), sa("[2001:db8:cafe::17]:4711"));
        let h = headers(&[("forwarded", "For=\"192.0.2.60:8080\"")]);
        assert_eq!(t.client(sa("127.0.0.1:1"), &h), sa("192.0.2.60:8080"));
        // "unknown" and obfuscated identifiers stop the walk.
        let h = headers(&[("Forwarded", "for=unknown")]);
        assert_eq!(t.client(sa("127.0.0.1:1"), &h), sa("127.0.0.1:1"));
        let h = headers(&[("Forwarded", "for=_hidden, for=127.0.0.1")]);
        assert_eq!(t.client(sa("127.0.0.1:9"), &h), sa("127.0.0.1:0"));
    }

    #[test]
    fn x_real_ip_is_the_last_resort() {
        let t = trusted(&["::1"]);
        let h = headers(&[("X-Real-IP", " 198.51.100.4 ")]);
        assert_eq!(t.client(sa("[::1]:1"), &h), sa("198.51.100.4:0"));
        assert_eq!(t.client(sa("[::1]:7"), &[]), sa("[::1]:7"));
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_ranges() {
        let t = trusted(&["127.0.0.0/8"]);
        assert!(t.contains("::ffff:127.0.0.1".parse().unwrap()));
        let h = headers(&[("X-Forwarded-For", "::ffff:203.0.113.9")]);
        assert_eq!(t.client(sa("127.0.0.1:1"), &h), sa("203.0.113.9:0"));
    }

    #[test]
    fn entries_are_checked() {
        assert!(TrustedProxies::parse(&["10.0.0.0/8", "::1", " 192.168.1.1 ", "fd00::/8"]).is_ok());
        // A range written with host bits set means its network.
        assert!(trusted(&["10.1.2.3/8"]).contains("10.200.0.1".parse().unwrap()));
        for bad in ["localhost", "10.0.0.0/33", "", "1.2.3"] {
            let e = TrustedProxies::parse(&[bad]).unwrap_err();
            assert!(e.0.contains("trusted_proxies"), "{e}");
        }
    }

    #[test]
    fn headers_are_found_in_any_case_and_joined() {
        let r = Request {
            resource: "/chat?room=1&x=2".into(),
            headers: headers(&[("Cookie", "a=1"), ("X-Tag", "one"), ("cookie", "b=2"), ("x-tag", "two")]),
            ..Request::default()
        };
        assert_eq!(r.header("COOKIE").as_deref(), Some("a=1; b=2"));
        assert_eq!(r.header("x-TAG").as_deref(), Some("one, two"));
        assert_eq!(r.header("missing"), None);
        assert_eq!(r.path(), "/chat");
        assert_eq!(r.query(), "room=1&x=2");
    }
}
