//! What a server is told when it starts listening: address, subprotocols, headers, timeouts and
//! per-connection limits. Validated once, on the game thread, before any socket exists.

use std::net::IpAddr;
use std::time::Duration;

pub use crate::error::ConfigError;

/// Events that may wait for the game's `poll()` before the I/O thread stops accepting new
/// connections (they wait in the kernel's accept queue meanwhile). Messages are bounded per peer by
/// the inbound limits; this bounds the connection events of clients that come and go.
pub const MAX_EVENT_BACKLOG: usize = 16 * 1024;

/// Per-connection limits. The defaults are Godot 4's `WebSocketPeer` defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest incoming message, in bytes; a larger one closes the connection with 1009. It is
    /// also the number of received bytes a peer may have waiting for the game before the server
    /// stops reading that socket.
    pub inbound_buffer_size: usize,
    /// Bytes a peer may have queued for sending (handed to `put_packet` but not yet written to the
    /// socket). A `put_packet` past it fails with `ERR_OUT_OF_MEMORY`.
    pub outbound_buffer_size: usize,
    /// Messages a peer may have waiting in each direction.
    pub max_queued_packets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            inbound_buffer_size: 65535,
            outbound_buffer_size: 65535,
            max_queued_packets: 4096,
        }
    }
}

/// Where to listen: every interface (Godot's `"*"`) or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindIp {
    Any,
    Ip(IpAddr),
}

impl BindIp {
    /// Parses Godot's `bind_ip` syntax: `"*"` or a literal IPv4/IPv6 address.
    pub fn parse(text: &str) -> Result<BindIp, ConfigError> {
        if text == "*" {
            return Ok(BindIp::Any);
        }
        text.parse::<IpAddr>()
            .map(BindIp::Ip)
            .map_err(|_| ConfigError(format!("bind_ip must be \"*\" or an IP address, not {text:?}")))
    }
}

/// The default of `ServerConfig::compression_threshold`.
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 128;

/// permessage-deflate (RFC 7692, `crate::deflate`): whether the server takes a client's offer,
/// and what it keeps per connection to do it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Declined (as Godot's own server does).
    #[default]
    Off,
    /// Each message compressed on its own both ways (no context takeover): no compression state
    /// per connection, a message to many compressed once.
    Shared,
    /// Context takeover within a window of `2^window_bits` bytes (9-15) each way: each message may
    /// refer to the ones before it, so small similar messages shrink several times over. A
    /// connection keeps the last `2^window_bits` bytes it sent compressed and, when the client
    /// offered `client_max_window_bits`, the last it received (a client that did not is asked for
    /// no context takeover); the compressors themselves stay shared.
    Dedicated { window_bits: u8 },
}

/// The default heartbeat: Python `websockets`' 20 s. Well inside nginx's default 60 s
/// `proxy_read_timeout`, so idle clients behind it stay connected, and a frozen client is dropped
/// within about 40 s.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(20);

/// Everything `Server::listen` needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub bind_ip: BindIp,
    pub port: u16,
    /// Subprotocols the server accepts, in no particular order (the client's order decides).
    pub protocols: Vec<String>,
    /// Header lines (`Name: value`) added to every `101 Switching Protocols` response.
    pub extra_headers: Vec<String>,
    /// From TCP accept to a complete upgrade; a connection that takes longer is dropped silently.
    pub handshake_timeout: Duration,
    /// How long we wait for the client's answer to our Close frame before dropping it.
    pub close_timeout: Duration,
    /// How long a client may leave a message unfinished without sending more of it (then it is
    /// closed with 1008). Time while the server is not reading it (its queue is full) does not
    /// count.
    pub partial_message_timeout: Duration,
    /// Ping every open peer this often; one that has not answered by the next ping is dropped
    /// (`None`: no heartbeat).
    pub heartbeat_interval: Option<Duration>,
    pub limits: Limits,
    /// Godot's high-level multiplayer protocol (`gd_mp_api = true`): each client is first sent its
    /// id as one 4-byte little-endian binary message, and messages from all peers go into one
    /// queue (`Server::pop_packet`) instead of each peer's own.
    pub multiplayer: bool,
    /// Raw mode: messages from all peers go into one queue in arrival order (`Server::pop_packet`),
    /// with no `Signal::DataReceived`, instead of each peer's own queue. (Multiplayer mode always
    /// queues this way.)
    pub queue_messages: bool,
    /// Serve `wss://` only, with this configuration (see `tls::server_config`).
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Events that may wait for the game's `poll()` before new connections wait in the kernel's
    /// queue instead of being accepted (`MAX_EVENT_BACKLOG` unless a test sets it).
    pub max_event_backlog: usize,
    /// Origins (`https://example.com`) whose web pages may connect; empty: any. Others get 403.
    pub allowed_origins: Vec<String>,
    /// Each valid upgrade request waits for the game's decision (`Event::Requested`) instead of
    /// being accepted at once.
    pub authorize: bool,
    /// A `GET` or `HEAD` request without `Upgrade: websocket` is handed to the game
    /// (`Event::Requested` with `Request::upgrade == false`) to answer (`Verdict::Answer`),
    /// instead of being refused with `400`.
    pub answer_requests: bool,
    /// permessage-deflate (RFC 7692) with the clients that offer it (`crate::deflate`).
    pub compression: Compression,
    /// Messages to clients shorter than this many bytes go uncompressed.
    pub compression_threshold: usize,
    /// Topics also cross to the other processes on this Valkey/Redis server (`crate::bus`).
    pub bus: Option<crate::bus::BusConfig>,
    /// Directories served on the port (`GET`/`HEAD` of their files, answered by the I/O side).
    pub files: Option<std::sync::Arc<crate::files::StaticFiles>>,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` / `X-Real-IP` name the client.
    pub trusted_proxies: crate::request::TrustedProxies,
    /// Every connection starts with a PROXY protocol header (v1 or v2); with `trusted_proxies`
    /// set, only connections from them are taken.
    pub proxy_protocol: bool,
    /// Connections (handshaking and open) beyond which new clients are refused; 0: no limit.
    pub max_connections: usize,
    /// Handshaking connections one address may have at once (trusted proxies are exempt);
    /// 0: no limit.
    pub max_handshakes_per_address: usize,
    /// Where the sockets are served: on an I/O thread of the server's own, or inside `poll()`.
    pub io: IoMode,
    /// `IoMode::Thread` only: after a turn that handed the game events, the I/O thread's turns do
    /// not sleep (they look again at once) until a command comes from the game or this long has
    /// passed; then it sleeps until the next readiness event, wake or deadline as usual. The
    /// game's reply is then written the moment it is queued, without a wake-up through the
    /// scheduler (on a virtual machine, an inter-processor interrupt and a halted core's return:
    /// tens of microseconds). Costs the CPU time the game takes to answer, up to the window, after
    /// every hand-over. Zero (the default): sleep at once. Linux's `SO_BUSY_POLL` does the like
    /// for a network card's queue.
    pub busy_poll: Duration,
}

/// Where a server does its socket work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoMode {
    /// An I/O thread of the server's own accepts, reads, writes, answers pings and fires the
    /// timeouts, whether or not the game polls; `Server::poll` only takes what it reported. Costs
    /// the game thread least per message and keeps connections served through long frames, but
    /// every reply crosses threads (a wake, and a core of its own to run on).
    #[default]
    Thread,
    /// `Server::poll` does the socket work itself: one non-blocking turn of the same event loop
    /// (accept, read, write, timers), then the signals, then the replies the handlers queued are
    /// written before it returns. No second thread and no wakes, so on one or two cores an
    /// unpaced loop runs faster; but nothing is read, written, pinged or timed out between polls.
    Inline,
}

/// The default of `ServerConfig::max_handshakes_per_address`: far above what a household or
/// a school behind one address needs at once (a handshake takes a round trip or two), far below
/// the descriptors one host could otherwise hold with unfinished requests.
pub const DEFAULT_MAX_HANDSHAKES_PER_ADDRESS: usize = 64;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind_ip: BindIp::Any,
            port: 0,
            protocols: Vec::new(),
            extra_headers: Vec::new(),
            handshake_timeout: Duration::from_secs(3),
            close_timeout: Duration::from_secs(3),
            partial_message_timeout: Duration::from_secs(30),
            heartbeat_interval: Some(DEFAULT_HEARTBEAT),
            limits: Limits::default(),
            multiplayer: false,
            queue_messages: false,
            tls: None,
            max_event_backlog: MAX_EVENT_BACKLOG,
            allowed_origins: Vec::new(),
            authorize: false,
            answer_requests: false,
            files: None,
            bus: None,
            compression: Compression::Off,
            compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
            trusted_proxies: Default::default(),
            proxy_protocol: false,
            max_connections: 0,
            max_handshakes_per_address: DEFAULT_MAX_HANDSHAKES_PER_ADDRESS,
            io: IoMode::Thread,
            busy_poll: Duration::ZERO,
        }
    }
}

/// Checks one header line for a response: `Name: value`, a valid field name and value (as the
/// `http` crate defines them: no line breaks, no control characters).
pub fn validate_header_line(line: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| Err(ConfigError(format!("extra header {line:?} {why}")));
    let Some((name, value)) = line.split_once(':') else {
        return bad("is not of the form \"Name: value\"");
    };
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return bad("has an invalid header name");
    }
    if http::HeaderValue::from_str(value.trim()).is_err() {
        return bad("has an invalid value (line breaks and control characters are not allowed)");
    }
    Ok(())
}

/// Checks header lines the game adds to one response: valid, and not one the server writes itself.
pub fn validate_response_headers(lines: &[String]) -> Result<(), ConfigError> {
    const OURS: [&str; 7] = [
        "connection",
        "upgrade",
        "content-length",
        "transfer-encoding",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    ];
    for line in lines {
        validate_header_line(line)?;
        let name = line.split_once(':').map_or("", |(n, _)| n.trim());
        if OURS.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            return Err(ConfigError(format!(
                "extra header {line:?}: {name} is written by the server itself"
            )));
        }
    }
    Ok(())
}

/// Whether `s` is an HTTP token (RFC 9110 §5.6.2), as a subprotocol name must be.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && http::HeaderName::from_bytes(s.as_bytes()).is_ok()
}

/// Checks an origin for `allowed_origins`: `scheme://host[:port]` (what browsers send), or
/// `null`.
pub fn validate_origin(origin: &str) -> Result<(), ConfigError> {
    let ok = origin == "null"
        || origin.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && !rest.contains(['/', '?', '#', ' ', ','])
        });
    if ok {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "allowed_origins: {origin:?} is not an origin such as \"https://example.com\" (scheme and host, no path)"
        )))
    }
}

/// Checks a timeout given in seconds by GDScript: finite, positive, at most a day.
pub fn seconds(name: &str, value: f64) -> Result<Duration, ConfigError> {
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(ConfigError(format!(
            "{name} must be a number of seconds in (0, 86400], not {value}"
        )))
    }
}

/// The longest `ServerConfig::busy_poll` a game may ask for: far past any game's frame, so a
/// longer window would only keep the I/O thread spinning for a game that is not answering.
pub const MAX_BUSY_POLL: Duration = Duration::from_secs(1);

/// Checks a busy-poll window given by GDScript in microseconds: 0 (off) up to `MAX_BUSY_POLL`.
pub fn busy_poll_usec(name: &str, value: i64) -> Result<Duration, ConfigError> {
    let max = MAX_BUSY_POLL.as_micros() as i64;
    if (0..=max).contains(&value) {
        Ok(Duration::from_micros(value as u64))
    } else {
        Err(ConfigError(format!(
            "{name} must be between 0 (off) and {max} microseconds, not {value}"
        )))
    }
}

/// Checks a size limit given by GDScript: at least 1, at most 1 GiB.
pub fn size_limit(name: &str, value: i64) -> Result<usize, ConfigError> {
    if (1..=1 << 30).contains(&value) {
        Ok(value as usize)
    } else {
        Err(ConfigError(format!(
            "{name} must be between 1 and 1073741824, not {value}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_poll_is_off_or_up_to_a_second() {
        assert_eq!(busy_poll_usec("b", 0), Ok(Duration::ZERO));
        assert_eq!(busy_poll_usec("b", 50), Ok(Duration::from_micros(50)));
        assert_eq!(busy_poll_usec("b", 1_000_000), Ok(MAX_BUSY_POLL));
        let e = busy_poll_usec("b", -1).unwrap_err().0;
        assert_eq!(e, "b must be between 0 (off) and 1000000 microseconds, not -1");
        assert!(busy_poll_usec("b", 1_000_001).is_err());
    }

    #[test]
    fn bind_ip_accepts_star_and_addresses_only() {
        assert_eq!(BindIp::parse("*"), Ok(BindIp::Any));
        assert!(matches!(BindIp::parse("127.0.0.1"), Ok(BindIp::Ip(_))));
        assert!(matches!(BindIp::parse("::1"), Ok(BindIp::Ip(_))));
        assert!(BindIp::parse("localhost").is_err());
        assert!(BindIp::parse("300.1.1.1").is_err());
        assert!(BindIp::parse("").is_err());
    }

    #[test]
    fn header_lines_are_checked() {
        assert!(validate_header_line("X-Server: godot").is_ok());
        assert!(validate_header_line("X-Empty:").is_ok());
        assert!(validate_header_line("no colon").is_err());
        assert!(validate_header_line(": value").is_err());
        assert!(validate_header_line("Bad Name: v").is_err());
        assert!(validate_header_line("X: a\r\nInjected: yes").is_err());
        assert!(validate_response_headers(&["Set-Cookie: a=1".into()]).is_ok());
        assert!(validate_response_headers(&["content-length: 5".into()]).is_err());
        assert!(validate_response_headers(&["Sec-WebSocket-Accept: x".into()]).is_err());
    }

    #[test]
    fn tokens_and_origins_are_checked() {
        assert!(is_token("chat.v2"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a,b"));
        assert!(validate_origin("https://game.example").is_ok());
        assert!(validate_origin("http://localhost:8080").is_ok());
        assert!(validate_origin("null").is_ok());
        assert!(validate_origin("game.example").is_err());
        assert!(validate_origin("https://game.example/").is_err());
        assert!(validate_origin("").is_err());
    }

    #[test]
    fn numbers_are_checked() {
        assert!(seconds("t", 0.5).is_ok());
        assert!(seconds("t", 0.0).is_err());
        assert!(seconds("t", -1.0).is_err());
        assert!(seconds("t", f64::NAN).is_err());
        assert!(seconds("t", f64::INFINITY).is_err());
        assert_eq!(size_limit("s", 1), Ok(1));
        assert!(size_limit("s", 0).is_err());
        assert!(size_limit("s", -5).is_err());
        assert!(size_limit("s", 1 << 31).is_err());
    }
}
