//! What every connection of one server shares: the configuration and what is made from it once.

use std::sync::Arc;

use tungstenite::protocol::WebSocketConfig;

use super::{max_frame, READ_CHUNK};
use crate::config::ServerConfig;
use crate::handshake::Offer;
use crate::stats::Totals;

/// What every connection of one server shares: its configuration (the one shape it has), and
/// what is made from it once.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: ServerConfig,
    /// What the upgrade answers with (the game may change `extra_headers` while listening).
    pub offer: Offer,
    /// The server's statistics.
    pub totals: Arc<Totals>,
    pub(crate) ws: WebSocketConfig,
}

impl Settings {
    pub fn new(config: &ServerConfig) -> Settings {
        let limit = config.limits.inbound_buffer_size;
        let ws = WebSocketConfig::default()
            .read_buffer_size(READ_CHUNK)
            // Every frame goes straight to the connection's `OutQueue` (see `Wire`).
            .write_buffer_size(0)
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(limit))
            // Control frames (a Close with its reason) may be 125 bytes whatever the limit;
            // messages are still held to it by max_message_size.
            .max_frame_size(Some(max_frame(limit)));
        Settings {
            offer: Offer {
                protocols: config.protocols.clone(),
                extra_headers: config.extra_headers.clone(),
                allowed_origins: config.allowed_origins.clone(),
                compression: config.compression,
                plain_requests: config.answer_requests || config.files.as_ref().is_some_and(|f| !f.is_empty()),
            },
            config: config.clone(),
            totals: Arc::default(),
            ws,
        }
    }
}
