//! The game's handle on one peer: send, close, read what the game was told about, and its
//! counters. Cheap to clone; valid (and harmless) after the peer or the server is gone.

use std::net::SocketAddr;
use std::sync::Arc;

use tungstenite::Bytes;

use crate::channel::Channel;
use crate::error::{CloseError, SendError};
use crate::event::{Command, Kind, Packet, PeerId, PeerState};
use crate::peer::PeerShared;
use crate::request::Request;

/// Messages longer than this, once read by the game, make the I/O side trim freed memory when
/// idle (`Command::Released`).
const LARGE_MESSAGE: usize = 64 * 1024;

/// The longest close reason (a Close frame's payload is at most 125 bytes, 2 of them the code).
pub const MAX_CLOSE_REASON: usize = 123;

/// The game's handle on one peer. Cheap to clone; stays valid (and harmless) after the peer or
/// the whole server is gone: sends then fail with `NotOpen`, queued messages can still be read.
#[derive(Clone, Debug)]
pub struct PeerHandle {
    pub(crate) shared: Arc<PeerShared>,
    pub(crate) channel: Arc<Channel>,
}

impl PeerHandle {
    pub fn id(&self) -> PeerId {
        self.shared.id
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The upgrade request this peer came with.
    pub fn request(&self) -> &Arc<Request> {
        &self.shared.request
    }

    /// `Closed` as soon as the I/O thread has died, even before the game has polled.
    pub fn state(&self) -> PeerState {
        if self.channel.io.has_failed() {
            return PeerState::Closed;
        }
        self.shared.state()
    }

    /// Queues one message. Fails if the connection is closing or the peer's outbound limits
    /// would be exceeded; never drops it later.
    pub fn send(&self, data: impl Into<Bytes>, text: impl Into<Kind>) -> Result<(), SendError> {
        let data = data.into();
        self.admit(data.len())?;
        self.queue(data, text);
        Ok(())
    }

    /// `send` of bytes the caller keeps (a Godot array): copied only once the send is accepted,
    /// into the chunk that the server's small messages share (see `payload`).
    pub fn send_copy(&self, data: &[u8], text: impl Into<Kind>) -> Result<(), SendError> {
        self.admit(data.len())?;
        self.queue(self.channel.copy_payload(data), text);
        Ok(())
    }

    /// A send's checks: open, and room for `len` more bytes (which are then reserved).
    fn admit(&self, len: usize) -> Result<(), SendError> {
        if self.state() != PeerState::Open {
            return Err(SendError::NotOpen);
        }
        self.shared.reserve_outbound(len).map_err(SendError::Full)
    }

    fn queue(&self, data: Bytes, kind: impl Into<Kind>) {
        self.channel.command(Command::Send {
            id: self.shared.id,
            packet: Packet::new(data, kind),
        });
    }

    /// Starts the close handshake. A reason over 123 bytes is cut at a character boundary;
    /// returns whether it was.
    pub fn close(&self, code: u16, reason: &str) -> Result<bool, CloseError> {
        if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
            return Err(CloseError::BadCode(code));
        }
        if self.state() != PeerState::Open {
            return Err(CloseError::NotOpen);
        }
        let mut end = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        self.shared.advance(PeerState::Closing);
        self.channel.command(Command::Close {
            id: self.shared.id,
            code,
            reason: reason[..end].to_owned(),
        });
        Ok(end < reason.len())
    }

    /// Takes the oldest message the game was told about.
    pub fn pop(&self) -> Option<Packet> {
        let packet = self.shared.inbox.lock().pop_front()?;
        self.taken(&packet);
        Some(packet)
    }

    /// The game has read `packet`: it no longer counts against the inbound limits. A large one
    /// will be freed soon (the game copies it out at once): the I/O side hands that memory back to
    /// the system once it is idle.
    pub(crate) fn taken(&self, packet: &Packet) {
        taken(&self.shared, &self.channel, packet);
    }

    pub fn available(&self) -> usize {
        self.shared.inbox.lock().len()
    }

    /// This peer's counters (totals, queues, connected time).
    pub fn shared(&self) -> &PeerShared {
        &self.shared
    }

    /// The last round trip the heartbeat measured (`None` before the first pong).
    pub fn round_trip(&self) -> Option<std::time::Duration> {
        self.shared.round_trip()
    }

    pub fn outbound_buffered(&self) -> usize {
        self.shared.outbound_bytes()
    }

    pub fn set_no_delay(&self, enabled: bool) {
        if self.shared.state() != PeerState::Closed {
            self.channel.command(Command::SetNoDelay {
                id: self.shared.id,
                enabled,
            });
        }
    }

    pub fn max_packet_size(&self) -> usize {
        self.shared.limits.outbound_buffer_size
    }
}

/// [`PeerHandle::taken`] for a peer known by its shared state alone (the server's message queue
/// holds no handle per message: two reference counts fewer to move per message).
pub(crate) fn taken(shared: &PeerShared, channel: &Channel, packet: &Packet) {
    if shared.sub_inbound(packet.data.len()) && shared.state() != PeerState::Closed {
        channel.command(Command::Resume { id: shared.id });
    }
    if packet.data.len() > LARGE_MESSAGE {
        channel.command(Command::Released);
    }
}
