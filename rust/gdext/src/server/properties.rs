//! What the properties' setters share: checking a value (an error names what was wrong) and
//! whether it may change while listening, TLS resources to a rustls configuration, string lists.

use super::*;

impl WebSocketServer {
    /// The TLS configuration from the three resources: `None` for plain `ws://`.
    pub(super) fn tls_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, ConfigError> {
        let (key, cert) = match (&self.private_key, &self.ssl_certificate) {
            (None, None) if self.ca_chain.is_some() => {
                return Err(ConfigError(
                    "ca_chain is set, but private_key and ssl_certificate are not".into(),
                ))
            }
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(ConfigError(
                    "private_key is set but ssl_certificate is not; wss:// needs both".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError(
                    "ssl_certificate is set but private_key is not; wss:// needs both".into(),
                ))
            }
            (Some(key), Some(cert)) => (key.clone(), cert.clone()),
        };
        if key.is_public_only() {
            return Err(ConfigError(
                "private_key holds no private key (it is empty or public only)".into(),
            ));
        }
        let pem = TlsPem {
            certificate: certificate_pem(cert)?,
            private_key: key.clone().save_to_string().to_string(),
            ca_chain: self
                .ca_chain
                .clone()
                .map(certificate_pem)
                .transpose()?
                .unwrap_or_default(),
        };
        server_config(&pem).map(Some)
    }

    /// A setter's common part: refuse while listening, refuse invalid values, keep the old value.
    pub(super) fn set_checked(
        &mut self,
        name: &str,
        check: impl FnOnce() -> Result<(), ConfigError>,
        set: impl FnOnce(&mut Self),
    ) {
        if self.server.is_some() {
            godot_error!("WebSocketServer: {name} cannot change while listening; call stop() first");
            return;
        }
        match check() {
            Ok(()) => set(self),
            Err(e) => godot_error!("WebSocketServer: {e}"),
        }
    }
}

/// The PEM text of a certificate resource. `X509Certificate.save_to_string()` would do, but
/// Godot includes the C string's terminating NUL in it and prints a Unicode warning on every
/// call; `save()` writes the same PEM to a file without that, so go through a temporary file, in
/// a directory of our own with a random name that only this user can enter (a predictable path in
/// a shared temporary directory could be planted by another user).
pub(super) fn certificate_pem(mut cert: Gd<X509Certificate>) -> Result<String, ConfigError> {
    let dir = tempfile::Builder::new()
        .prefix("websocket_server-")
        .tempdir()
        .map_err(|e| {
            ConfigError(format!(
                "cannot make a temporary directory to read the certificate: {e}"
            ))
        })?;
    let path = dir.path().join("certificate.crt");
    let err = cert.save(path.to_string_lossy().as_ref());
    let text = std::fs::read(&path);
    drop(dir);
    match (err, text) {
        (Error::OK, Ok(bytes)) => Ok(String::from_utf8_lossy(&bytes).replace('\0', "")),
        (err, _) => Err(ConfigError(format!(
            "a certificate resource cannot be read ({err:?}); is it empty?"
        ))),
    }
}

/// A count where 0 means "no limit".
pub(super) fn limit_or_zero(name: &str, value: i64) -> Result<(), ConfigError> {
    match value {
        0 => Ok(()),
        v => size_limit(name, v)
            .map(|_| ())
            .map_err(|e| ConfigError(format!("{e} (or 0 for no limit)"))),
    }
}

pub(super) fn strings(array: &PackedStringArray) -> Vec<String> {
    array.as_slice().iter().map(|s| s.to_string()).collect()
}

impl WebSocketServer {
    /// A new server object: every property at `ServerConfig::default()`'s value (the one place the
    /// defaults are written).
    pub(super) fn with_defaults(base: Base<MultiplayerPeerExtension>) -> Self {
        let d = ServerConfig::default();
        WebSocketServer {
            bind_ip: "*".into(),
            handshake_timeout: d.handshake_timeout.as_secs_f64(),
            close_timeout: d.close_timeout.as_secs_f64(),
            partial_message_timeout: d.partial_message_timeout.as_secs_f64(),
            heartbeat_interval: d.heartbeat_interval.map_or(0.0, |i| i.as_secs_f64()),
            private_key: None,
            ssl_certificate: None,
            ca_chain: None,
            inbound_buffer_size: d.limits.inbound_buffer_size as i64,
            outbound_buffer_size: d.limits.outbound_buffer_size as i64,
            max_queued_packets: d.limits.max_queued_packets as i64,
            authorize_upgrades: d.authorize,
            answer_http_requests: d.answer_requests,
            allowed_origins: PackedStringArray::new(),
            trusted_proxies: PackedStringArray::new(),
            proxy_protocol: d.proxy_protocol,
            max_connections: d.max_connections as i64,
            max_handshakes_per_address: d.max_handshakes_per_address as i64,
            io_mode: match d.io {
                IoMode::Thread => Self::IO_MODE_THREAD,
                IoMode::Inline => Self::IO_MODE_INLINE,
            },
            busy_poll_usec: d.busy_poll.as_micros() as i64,
            queue_messages: d.queue_messages,
            shutdown_timeout: 5.0,
            shutdown_on_sigterm: false,
            compression: Self::COMPRESSION_OFF,
            compression_window_bits: 11,
            compression_threshold: d.compression_threshold as i64,
            bus_url: GString::new(),
            bus_channel_prefix: "wss:".into(),
            termination_armed: false,
            shutdown_grace: false,
            extra_headers: d.extra_headers,
            files: Default::default(),
            server: None,
            peer_objects: HashMap::new(),
            multiplayer: false,
            refuse_new_connections: false,
            target_peer: 0,
            monitors: Vec::new(),
            transfer_mode: TransferMode::RELIABLE,
            transfer_channel: 0,
            last_packet: None,
            link: Link::default(),
            no_messages: None,
            base,
        }
    }

    /// The configuration `listen` starts with: the properties (each already checked by its
    /// setter), and `listen`'s own arguments.
    pub(super) fn server_config(
        &self,
        port: u16,
        protocols: Vec<String>,
        gd_mp_api: bool,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> ServerConfig {
        ServerConfig {
            bind_ip: BindIp::parse(&self.bind_ip.to_string()).unwrap_or(BindIp::Any),
            port,
            protocols,
            extra_headers: self.extra_headers.clone(),
            handshake_timeout: std::time::Duration::from_secs_f64(self.handshake_timeout),
            close_timeout: std::time::Duration::from_secs_f64(self.close_timeout),
            partial_message_timeout: std::time::Duration::from_secs_f64(self.partial_message_timeout),
            heartbeat_interval: (self.heartbeat_interval > 0.0)
                .then(|| std::time::Duration::from_secs_f64(self.heartbeat_interval)),
            limits: Limits {
                inbound_buffer_size: self.inbound_buffer_size as usize,
                outbound_buffer_size: self.outbound_buffer_size as usize,
                max_queued_packets: self.max_queued_packets as usize,
            },
            multiplayer: gd_mp_api,
            queue_messages: self.queue_messages,
            tls,
            allowed_origins: self.allowed_origins.as_slice().iter().map(|o| o.to_string()).collect(),
            authorize: self.authorize_upgrades,
            answer_requests: self.answer_http_requests,
            files: (!self.files.is_empty()).then(|| Arc::new(self.files.clone())),
            compression: match self.compression {
                Self::COMPRESSION_SHARED => Compression::Shared,
                Self::COMPRESSION_DEDICATED => Compression::Dedicated {
                    window_bits: self.compression_window_bits as u8,
                },
                _ => Compression::Off,
            },
            compression_threshold: self.compression_threshold as usize,
            bus: (!self.bus_url.is_empty()).then(|| wss_core::bus::BusConfig {
                url: self.bus_url.to_string(),
                prefix: self.bus_channel_prefix.to_string(),
            }),
            trusted_proxies: TrustedProxies::parse(&strings(&self.trusted_proxies)).unwrap_or_default(),
            proxy_protocol: self.proxy_protocol,
            max_connections: self.max_connections as usize,
            max_handshakes_per_address: self.max_handshakes_per_address as usize,
            io: if self.io_mode == Self::IO_MODE_INLINE {
                IoMode::Inline
            } else {
                IoMode::Thread
            },
            busy_poll: std::time::Duration::from_micros(self.busy_poll_usec as u64),
            ..ServerConfig::default()
        }
    }
}
