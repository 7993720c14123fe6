//! The Godot-free core of the `WebSocketServer` addon. Where things are:
//!
//! Protocol, without I/O (bytes and time in; bytes, events and deadlines out):
//! - [`connection`]: one connection from accept to gone (`upgrade`: the HTTP request and the
//!   game's decision; `frames`: messages, violations, the heartbeat); [`handshake`]: parsing and
//!   answering the upgrade request; [`request`]: the request as the game sees it and the client's
//!   address behind trusted proxies; `inbox`/`outq`/`progress`: its input, output and message
//!   boundaries.
//! - [`endpoint`]: every connection of a server: admission and caps, ids, routing the game's
//!   commands, the timer table, the gauges.
//!
//! The shell, which alone knows sockets:
//! - [`transport`]: moves bytes between one socket and its connection (the PROXY header
//!   ([`proxy`]), then rustls ([`tls`])); `driver`, `socket`, `listen`, `os` (private): the mio
//!   event loop, on an I/O thread of its own or one turn at a time inside the game's `poll()`;
//!   [`sim`]: the simulator, in-memory sockets and virtual time.
//!
//! Between the threads: [`event`] (events, commands, the words for a peer), [`channel`] (the
//! queues and wakes), [`io_state`] (stopping, failure, notices), [`peer`] (one peer's counters
//! and pausing), [`stats`] (the server's statistics).
//!
//! The process: [`alloc`] (the global allocator the addon installs: large buffers mapped on
//! their own, so that freed memory goes back to the system).
//!
//! The game thread's side: [`server`] (`Server::listen`, `poll`/`next_signal` in Godot's order),
//! [`peer_handle`] (send, read, close one peer), [`config`], [`error`].

pub mod alloc;
pub mod bus;
pub mod channel;
pub mod config;
pub mod connection;
pub mod deflate;
mod driver;
pub mod endpoint;
pub mod error;
pub mod event;
pub mod files;
pub mod handshake;
pub mod ids;
mod inbox;
pub mod io_state;
mod listen;
mod os;
mod outq;
pub mod payload;
pub mod peer;
pub mod peer_handle;
mod progress;
pub mod proxy;
pub mod request;
pub mod server;
pub mod sim;
mod socket;
pub mod stats;
mod sync;
pub mod tls;
pub mod topics;
pub mod transport;

pub use config::MAX_EVENT_BACKLOG;
pub use config::{BindIp, Compression, ConfigError, IoMode, Limits, ServerConfig};
pub use error::{BroadcastError, CloseError, DecideError, ListenError, SendError, ShutdownError, TargetError};
pub use event::{Kind, Packet, PeerId, PeerState, Verdict};
pub use peer_handle::PeerHandle;
pub use request::Request;
pub use server::{is_recipient, join_stopped_io_threads, Server, Signal};
