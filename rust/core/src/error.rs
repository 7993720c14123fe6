//! Every error the core reports, each variant with the words the game is told.

use thiserror::Error;

use crate::ids::PeerId;

/// A configuration value that was refused, with the reason in words for `push_error`.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Why `listen` failed; each maps to one Godot `Error`. The text names the address and the cause.
#[derive(Debug, Error)]
pub enum ListenError {
    /// The port is taken (`ERR_ALREADY_IN_USE`).
    #[error("{0}")]
    InUse(String),
    /// The address cannot be bound here (`ERR_INVALID_PARAMETER`).
    #[error("{0}")]
    BadAddress(String),
    /// Sockets, the poller or the thread could not be made (`ERR_CANT_CREATE`).
    #[error("{0}")]
    CantCreate(String),
}

/// Why `Server::decide` refused a decision.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DecideError {
    /// No request with this id waits (it was never asked about, became a peer, or ended).
    #[error("no request with id {0} is waiting for a decision")]
    NoRequest(PeerId),
    #[error("request {0} has already been decided")]
    AlreadyDecided(PeerId),
    /// A plain HTTP request (`Signal::HttpRequest`) cannot be upgraded.
    #[error("request {0} is not a WebSocket upgrade; answer it instead")]
    NotUpgrade(PeerId),
    /// The chosen subprotocol is not among those the client offered (listed).
    #[error("subprotocol {0:?} was not offered by the client (it offered {1:?})")]
    NotOffered(String, Vec<String>),
}

/// Why a send was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SendError {
    /// The connection is closing or closed.
    #[error("the peer is not open")]
    NotOpen,
    /// The peer's queue is full; the named limit would be exceeded.
    #[error("the peer's queue is full ({0})")]
    Full(&'static str),
}

/// Why a recipient of `Server::broadcast` did not get the message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum BroadcastError {
    /// Named in `to`, but no such peer is connected.
    #[error("no such peer is connected")]
    UnknownPeer,
    #[error(transparent)]
    Send(SendError),
}

/// Why a multiplayer `put_packet` failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("target peer {0} is not connected")]
    UnknownPeer(PeerId),
    /// These recipients did not get the message.
    #[error("{} recipients did not get the message", .0.len())]
    Refused(Vec<(PeerId, SendError)>),
}

/// Why a close was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CloseError {
    #[error("the peer is not open")]
    NotOpen,
    /// RFC 6455 §7.4: only 1000-1003, 1007-1014 and 3000-4999 may be sent.
    #[error("close code {0} may not be sent (1000-1003, 1007-1014, 3000-4999)")]
    BadCode(u16),
}

/// Why `Server::shut_down` refused to begin a graceful shutdown.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ShutdownError {
    #[error("the server is not listening")]
    NotListening,
    #[error("the server is already shutting down")]
    AlreadyShuttingDown,
    /// RFC 6455 §7.4: only 1000-1003, 1007-1014 and 3000-4999 may be sent.
    #[error("close code {0} may not be sent (1000-1003, 1007-1014, 3000-4999)")]
    BadCode(u16),
    /// The I/O thread did not close the listener in time; the server was stopped at once instead.
    #[error("the I/O thread did not answer; the server was stopped without a close handshake")]
    Stuck,
}
