//! What crosses between the game thread and the I/O thread: the events the I/O side reports, the
//! commands the game gives, and the words both use for a peer (its id, a message, its state, the
//! game's verdict on a request).

use std::sync::Arc;

pub use tungstenite::Bytes;

pub use crate::ids::PeerId;
pub use crate::peer::{Kind, Packet, PeerState};

use crate::peer::PeerShared;
use crate::request::Request;

/// What the I/O thread reports, in the order it happened.
#[derive(Debug)]
pub enum Event {
    /// A valid upgrade request waits for the game's decision (`Command::Decide`). Followed by
    /// `Connected` (accepted) or `RequestEnded`.
    Requested {
        id: PeerId,
        request: Arc<Request>,
    },
    /// A request the game was asked about will not become a peer: refused by the game, no
    /// decision in time, or the client left. Always the last event of such an id.
    RequestEnded {
        id: PeerId,
        why: &'static str,
    },
    Connected {
        peer: Arc<PeerShared>,
        protocol: String,
        resource: String,
    },
    Message {
        id: PeerId,
        packet: Packet,
    },
    /// The client sent a Close frame first (our reply is on its way).
    CloseRequest {
        id: PeerId,
        code: u16,
        reason: String,
    },
    /// The client broke the protocol after the messages before this event. The game answers with
    /// `Command::Fail` once it has handled them, so our Close goes out after its replies.
    ProtocolError {
        id: PeerId,
        code: u16,
    },
    /// The connection is gone; always the last event of an id.
    Disconnected {
        id: PeerId,
        clean: bool,
    },
}

impl Event {
    pub fn id(&self) -> PeerId {
        match self {
            Event::Connected { peer, .. } => peer.id,
            Event::Requested { id, .. } | Event::RequestEnded { id, .. } => *id,
            Event::Message { id, .. }
            | Event::CloseRequest { id, .. }
            | Event::ProtocolError { id, .. }
            | Event::Disconnected { id, .. } => *id,
        }
    }
}

/// What the game thread asks of the I/O thread.
#[derive(Debug)]
pub enum Command {
    Send {
        id: PeerId,
        packet: Packet,
    },
    /// The same message to several peers (the bytes are shared, not copied per recipient).
    SendMany {
        ids: Vec<PeerId>,
        packet: Packet,
    },
    /// Start the close handshake with this code and reason.
    Close {
        id: PeerId,
        code: u16,
        reason: String,
    },
    /// The game drained a paused peer's queue: read its socket again.
    Resume {
        id: PeerId,
    },
    /// The game has seen this id's `Disconnected`: the id may be given out again.
    Release {
        id: PeerId,
    },
    SetNoDelay {
        id: PeerId,
        enabled: bool,
    },
    /// Drop the connection now, without a close handshake or any event; the id is free after.
    Abort {
        id: PeerId,
    },
    /// The game has handled everything before this peer's `ProtocolError`: send the Close.
    Fail {
        id: PeerId,
    },
    /// The game's decision on a request (`Event::Requested`).
    Decide {
        id: PeerId,
        verdict: Verdict,
    },
    /// Header lines for the `101` responses of upgrades that finish from now on.
    SetExtraHeaders(Vec<String>),
    /// A graceful shutdown: close the listener now, then every connection with this Close (see
    /// `Endpoint::shut_down`), dropping those still there after `timeout`.
    ShutDown {
        code: u16,
        reason: String,
        timeout: std::time::Duration,
    },
    /// The game let go of a large message: memory to hand back once the I/O is idle
    /// (`driver::trim_memory`; it may be freed after the I/O thread last trimmed).
    Released,
    /// Tests only: make the I/O thread die (by a panic, or by returning an error), to check that
    /// the game is told.
    #[doc(hidden)]
    InjectFailure {
        panic: bool,
    },
}

/// What the game decided about a request it was asked about (`Event::Requested`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Upgrade, with this subprotocol (`None`: the server's own choice) and these extra response
    /// header lines.
    Accept {
        protocol: Option<String>,
        headers: Vec<String>,
    },
    /// Refuse with this HTTP status, header lines (each ending in CRLF) and plain-text body.
    Reject { status: u16, headers: String, body: String },
    /// A plain HTTP request's answer (`Request::upgrade == false`): this status, header lines
    /// (each ending in CRLF) and body (left out for `HEAD`); the connection closes after it.
    Answer {
        status: u16,
        headers: String,
        body: Vec<u8>,
    },
}
