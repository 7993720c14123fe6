//! The Godot-free core of the `WebSocketServer` addon.
//!
//! - [`handshake`] and [`connection`]: one connection's protocol state (HTTP upgrade, frames via
//!   tungstenite's `WebSocketContext`, limits, close handshake, timeouts), without I/O: it takes
//!   bytes and the time and hands back bytes, events and its next deadline.
//! - [`transport`]: the shell's side of a connection: moves bytes between a socket and the
//!   connection through the PROXY header and TLS; [`sim`]: in-memory sockets for tests.
//! - [`driver`] (private): the mio event loop that owns every socket, run on an I/O thread of its
//!   own or one turn at a time inside the game's `poll()` (`IoMode`).
//! - [`server`]: the game thread's side: `Server::listen`, `poll`/`next_signal` in Godot's
//!   order, and `PeerHandle` for sending, reading and closing.
//! - [`shared`]: the events, commands and per-peer counters that cross between the threads.
//! - [`request`]: the upgrade request as the game sees it, and the client's address behind
//!   trusted proxies; [`proxy`]: the PROXY protocol header.
//! - [`tls`]: the rustls configuration from PEM text, and the non-blocking TLS stream.

pub mod config;
pub mod connection;
mod driver;
pub mod handshake;
pub mod ids;
mod inbox;
mod outq;
mod progress;
pub mod proxy;
pub mod request;
pub mod server;
pub mod shared;
pub mod sim;
mod sync;
pub mod tls;
pub mod transport;

pub use config::{BindIp, ConfigError, IoMode, Limits, ServerConfig};
pub use connection::Verdict;
pub use request::Request;
pub use server::{
    is_recipient, join_stopped_io_threads, BroadcastError, CloseError, DecideError, ListenError, PeerHandle, SendError,
    Server, Signal, TargetError,
};
pub use shared::{Packet, PeerId, PeerState, MAX_EVENT_BACKLOG};
