//! One connection's protocol state, from TCP accept to gone, driven by the I/O thread.
//!
//! A `Connection` never owns its socket: every input (`on_readable`, `on_writable`, `send`,
//! `close`, `on_timeout`) is given the stream and the current time, and reports what happened
//! as `Event`s. Tests drive it with an in-memory stream and a made-up clock.
//!
//! Lifecycle: `Handshake` (reading the HTTP upgrade; `handshake_timeout` runs from accept) →
//! `Open` (tungstenite frames; reading pauses while the game's queue for this peer is full) →
//! gone. A refused upgrade goes through `Rejecting` (the HTTP error is written, then the socket
//! closed). A protocol violation goes through `Failing`: our Close frame (1002, 1007 or 1009) is
//! written, further input is discarded, and the socket is closed once the client closes its end
//! or `close_timeout` passes.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Bytes, Message};

use crate::config::{Limits, ServerConfig};
use crate::handshake::{Decision, Offer};
use crate::ids::IdAllocator;
use crate::shared::{Event, Packet, PeerShared, PeerState};

/// The close code reported when a Close frame carries none (RFC 6455 §7.1.5).
pub const NO_STATUS_RECEIVED: u16 = 1005;

/// Bytes read from the socket per `read` call during the handshake, and the size of tungstenite's
/// read buffer afterwards (its default of 128 KiB per connection is far too much for thousands of
/// mostly idle game clients; larger messages grow the buffer as needed).
pub const READ_CHUNK: usize = 4096;
/// Messages are collected up to this many bytes before tungstenite writes them to the socket;
/// everything is written at the end of each I/O-thread turn anyway.
const WRITE_BATCH: usize = 64 * 1024;

/// What every connection of one server shares.
#[derive(Clone, Debug)]
pub struct Settings {
    pub offer: Offer,
    pub limits: Limits,
    pub handshake_timeout: Duration,
    pub close_timeout: Duration,
    /// Send each client its id first (Godot's multiplayer protocol).
    pub send_id: bool,
    ws: WebSocketConfig,
}

impl Settings {
    pub fn new(config: &ServerConfig) -> Settings {
        let limit = config.limits.inbound_buffer_size;
        let ws = WebSocketConfig::default()
            .read_buffer_size(READ_CHUNK)
            .write_buffer_size(WRITE_BATCH)
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit));
        Settings {
            offer: Offer {
                protocols: config.protocols.clone(),
                extra_headers: config.extra_headers.clone(),
            },
            limits: config.limits,
            handshake_timeout: config.handshake_timeout,
            close_timeout: config.close_timeout,
            send_id: config.multiplayer,
            ws,
        }
    }
}

/// What an input needs besides the stream.
pub struct Cx<'a> {
    pub now: Instant,
    pub settings: &'a Settings,
    pub ids: &'a mut IdAllocator,
    pub events: &'a mut Vec<Event>,
}

/// Whether the connection lives on after an input. `Gone` means: drop the socket; any event the
/// game must see (`Disconnected`) has been pushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Status {
    Alive,
    Gone,
}

enum Phase {
    Handshake {
        buf: Vec<u8>,
    },
    Rejecting,
    Open {
        ws: Box<WebSocketContext>,
        peer: Arc<PeerShared>,
        closing_by_us: bool,
    },
    Failing {
        ws: Box<WebSocketContext>,
        peer: Arc<PeerShared>,
    },
    Gone,
}

pub struct Connection {
    addr: SocketAddr,
    phase: Phase,
    deadline: Option<Instant>,
    /// Bytes that must reach the socket before anything tungstenite writes (the HTTP response).
    pre: Vec<u8>,
    /// Messages handed to tungstenite since its buffer was last fully written: (bytes, count).
    unflushed: (usize, usize),
    /// Reading stopped because the game's queue for this peer is full.
    paused: bool,
}

impl Connection {
    pub fn new(addr: SocketAddr, now: Instant, settings: &Settings) -> Connection {
        Connection {
            addr,
            phase: Phase::Handshake { buf: Vec::new() },
            deadline: Some(now + settings.handshake_timeout),
            pre: Vec::new(),
            unflushed: (0, 0),
            paused: false,
        }
    }

    /// When `on_timeout` wants to be called, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The peer, once the upgrade is done.
    pub fn peer(&self) -> Option<&Arc<PeerShared>> {
        match &self.phase {
            Phase::Open { peer, .. } | Phase::Failing { peer, .. } => Some(peer),
            _ => None,
        }
    }

    /// The socket has data (or EOF). Reads until it would block, the game's queue is full, or
    /// the connection ends; then writes whatever is due.
    pub fn on_readable<S: Read + Write>(&mut self, io: &mut S, cx: &mut Cx) -> Status {
        if let Some(status) = self.read_handshake(io, cx) {
            return status;
        }
        let ended = match &self.phase {
            Phase::Open { .. } if self.paused => None,
            Phase::Open { .. } => self.read_frames(io, cx),
            Phase::Failing { .. } => discard_input(io).then_some(false),
            Phase::Handshake { .. } | Phase::Rejecting | Phase::Gone => None,
        };
        match ended {
            Some(clean) => self.finish(clean, cx),
            None => self.flush(io, cx),
        }
    }

    /// The socket can take more bytes.
    pub fn on_writable<S: Read + Write>(&mut self, io: &mut S, cx: &mut Cx) -> Status {
        self.flush(io, cx)
    }

    /// The game read enough of this peer's queue: read the socket again.
    pub fn resume<S: Read + Write>(&mut self, io: &mut S, cx: &mut Cx) -> Status {
        self.paused = false;
        self.on_readable(io, cx)
    }

    /// Queues one message; it is written by the next `flush`. A message for a connection that can
    /// no longer send (closing, failed) is discarded and its reservation returned.
    pub fn send<S: Read + Write>(&mut self, io: &mut S, packet: Packet, cx: &mut Cx) -> Status {
        let Phase::Open { ws, peer, .. } = &mut self.phase else {
            if let Some(peer) = self.peer() {
                peer.sub_outbound(packet.data.len(), 1);
            }
            return Status::Alive;
        };
        let len = packet.data.len();
        let op = OpCode::Data(if packet.text { OpData::Text } else { OpData::Binary });
        let frame = Frame::message(packet.data, op, true);
        match ws.write(&mut Prefixed { pre: &mut self.pre, io }, Message::Frame(frame)) {
            // On WouldBlock the frame is in tungstenite's buffer all the same.
            Ok(()) => {}
            Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(WsError::Io(_)) => {
                peer.sub_outbound(len, 1);
                return self.finish(false, cx);
            }
            Err(_) => {
                peer.sub_outbound(len, 1);
                return Status::Alive;
            }
        }
        self.unflushed.0 += len;
        self.unflushed.1 += 1;
        Status::Alive
    }

    /// Starts the close handshake: our Close frame goes out after any queued messages, and the
    /// client has `close_timeout` to answer before it is dropped (`clean == false`).
    pub fn close<S: Read + Write>(&mut self, io: &mut S, code: u16, reason: &str, cx: &mut Cx) -> Status {
        let Phase::Open {
            ws,
            peer,
            closing_by_us,
        } = &mut self.phase
        else {
            return Status::Alive;
        };
        if !ws.can_write() {
            return Status::Alive; // already closing
        }
        peer.advance(PeerState::Closing);
        *closing_by_us = true;
        self.deadline = Some(cx.now + cx.settings.close_timeout);
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        // `close` queues the frame and flushes; our flush handles the outcome.
        let _ = ws.close(&mut Prefixed { pre: &mut self.pre, io }, Some(frame));
        self.flush(io, cx)
    }

    /// Called at or after `deadline()`.
    pub fn on_timeout(&mut self, cx: &mut Cx) -> Status {
        match self.deadline {
            Some(d) if d <= cx.now => self.finish(false, cx),
            _ => Status::Alive,
        }
    }

    /// Writes everything queued.
    pub fn flush<S: Read + Write>(&mut self, io: &mut S, cx: &mut Cx) -> Status {
        let mut out = Prefixed { pre: &mut self.pre, io };
        let result = match &mut self.phase {
            Phase::Rejecting => match out.drain_pre() {
                Ok(()) => return self.finish(false, cx),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Status::Alive,
                Err(_) => return self.finish(false, cx),
            },
            Phase::Open { ws, .. } | Phase::Failing { ws, .. } => ws.flush(&mut out),
            // A TLS stream may have handshake bytes to send.
            Phase::Handshake { .. } => match out.io.flush() {
                Err(e) if e.kind() != ErrorKind::WouldBlock => return self.finish(false, cx),
                _ => return Status::Alive,
            },
            Phase::Gone => return Status::Alive,
        };
        match result {
            Ok(()) => {
                self.written();
                Status::Alive
            }
            Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => Status::Alive,
            // The close handshake is complete (tungstenite has written our last frame).
            Err(WsError::ConnectionClosed) | Err(WsError::AlreadyClosed) => {
                self.written();
                let clean = matches!(self.phase, Phase::Open { .. });
                self.finish(clean, cx)
            }
            Err(_) => self.finish(false, cx),
        }
    }

    /// Whether this connection has anything waiting to be written.
    pub fn wants_flush(&self) -> bool {
        !self.pre.is_empty() || self.unflushed.1 > 0 || matches!(self.phase, Phase::Rejecting)
    }

    fn written(&mut self) {
        if let Some(peer) = self.peer() {
            peer.sub_outbound(self.unflushed.0, self.unflushed.1);
        }
        self.unflushed = (0, 0);
    }

    /// Reads the HTTP upgrade. `None` once upgraded, or if it was already (the caller goes on
    /// reading frames).
    fn read_handshake<S: Read + Write>(&mut self, io: &mut S, cx: &mut Cx) -> Option<Status> {
        let Phase::Handshake { buf } = &mut self.phase else {
            return None;
        };
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let n = match io.read(&mut chunk) {
                Ok(0) => return Some(self.finish(false, cx)),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Some(Status::Alive),
                Err(_) => return Some(self.finish(false, cx)),
            };
            buf.extend_from_slice(&chunk[..n]);
            match cx.settings.offer.decide(buf) {
                Decision::Incomplete => continue,
                Decision::Reject { response, .. } => {
                    self.pre = response;
                    self.phase = Phase::Rejecting;
                    return Some(self.flush(io, cx));
                }
                Decision::Accept {
                    response,
                    protocol,
                    resource,
                    consumed,
                } => {
                    let leftover = buf.split_off(consumed);
                    let mut ws = WebSocketContext::from_partially_read(leftover, Role::Server, Some(cx.settings.ws));
                    let peer = Arc::new(PeerShared::new(cx.ids.allocate(), self.addr, cx.settings.limits));
                    cx.events.push(Event::Connected {
                        peer: peer.clone(),
                        protocol,
                        resource,
                    });
                    self.pre = response;
                    if cx.settings.send_id {
                        // Godot's multiplayer clients stay "connecting" until this arrives.
                        let id = Bytes::copy_from_slice(&peer.id.to_le_bytes());
                        let frame = Frame::message(id, OpCode::Data(OpData::Binary), true);
                        // Buffered behind the response; written by the flush that follows.
                        let _ = ws.write(&mut Prefixed { pre: &mut self.pre, io }, Message::Frame(frame));
                    }
                    self.deadline = None;
                    self.phase = Phase::Open {
                        ws: Box::new(ws),
                        peer,
                        closing_by_us: false,
                    };
                    return None;
                }
            }
        }
    }

    /// Reads frames until the socket would block or the game's queue is full. `Some(clean)` when
    /// the connection has ended.
    fn read_frames<S: Read + Write>(&mut self, io: &mut S, cx: &mut Cx) -> Option<bool> {
        let Phase::Open {
            ws,
            peer,
            closing_by_us,
        } = &mut self.phase
        else {
            return None;
        };
        let mut out = Prefixed { pre: &mut self.pre, io };
        let fail_code = loop {
            if peer.inbound_full() && peer.pause() {
                self.paused = true;
                return None;
            }
            match ws.read(&mut out) {
                Ok(Message::Text(text)) => {
                    let data = Bytes::from(text);
                    peer.add_inbound(data.len());
                    cx.events.push(Event::Message {
                        id: peer.id,
                        packet: Packet { data, text: true },
                    });
                }
                Ok(Message::Binary(data)) => {
                    peer.add_inbound(data.len());
                    cx.events.push(Event::Message {
                        id: peer.id,
                        packet: Packet { data, text: false },
                    });
                }
                Ok(Message::Close(frame)) => {
                    if !*closing_by_us {
                        peer.advance(PeerState::Closing);
                        let (code, reason) = match frame {
                            Some(f) => (u16::from(f.code), f.reason.as_str().to_owned()),
                            None => (NO_STATUS_RECEIVED, String::new()),
                        };
                        cx.events.push(Event::CloseRequest {
                            id: peer.id,
                            code,
                            reason,
                        });
                        // tungstenite writes our reply on the next read or flush, then reports
                        // ConnectionClosed; this bounds how long that may take.
                        self.deadline = Some(cx.now + cx.settings.close_timeout);
                    }
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(WsError::Io(e)) if e.kind() == ErrorKind::Interrupted => {}
                // The close handshake is complete.
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return Some(true),
                Err(WsError::Capacity(CapacityError::MessageTooLong { .. })) => break CloseCode::Size,
                Err(WsError::Utf8(_)) => break CloseCode::Invalid,
                Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => return Some(false),
                Err(WsError::Protocol(_)) => break CloseCode::Protocol,
                Err(_) => return Some(false),
            }
        };
        self.fail(io, fail_code, cx);
        None
    }

    /// Fails the connection (RFC 6455 §7.1.7): sends our Close frame and stops reading frames.
    fn fail<S: Read + Write>(&mut self, io: &mut S, code: CloseCode, cx: &mut Cx) {
        let Phase::Open { ws, peer, .. } = std::mem::replace(&mut self.phase, Phase::Gone) else {
            return;
        };
        peer.advance(PeerState::Closing);
        let mut ws = ws;
        let reason = match code {
            CloseCode::Size => "message too big",
            CloseCode::Invalid => "invalid UTF-8",
            _ => "protocol error",
        };
        let _ = ws.close(
            &mut Prefixed { pre: &mut self.pre, io },
            Some(CloseFrame {
                code,
                reason: reason.into(),
            }),
        );
        self.phase = Phase::Failing { ws, peer };
        self.deadline = Some(cx.now + cx.settings.close_timeout);
    }

    /// The connection is over: tell the game if it knew of it.
    fn finish(&mut self, clean: bool, cx: &mut Cx) -> Status {
        if let Some(peer) = self.peer() {
            peer.advance(PeerState::Closed);
            cx.events.push(Event::Disconnected { id: peer.id, clean });
        }
        self.phase = Phase::Gone;
        self.deadline = None;
        Status::Gone
    }
}

/// After a failure: read and drop whatever the client still sends. True once it has closed.
fn discard_input<S: Read>(io: &mut S) -> bool {
    let mut sink = [0u8; READ_CHUNK];
    loop {
        match io.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// A stream that writes `pre` (the handshake response) before anything else.
struct Prefixed<'a, S> {
    pre: &'a mut Vec<u8>,
    io: &'a mut S,
}

impl<S: Write> Prefixed<'_, S> {
    fn drain_pre(&mut self) -> io::Result<()> {
        while !self.pre.is_empty() {
            match self.io.write(self.pre)? {
                0 => return Err(ErrorKind::WriteZero.into()),
                n => drop(self.pre.drain(..n)),
            }
        }
        Ok(())
    }
}

impl<S: Read> Read for Prefixed<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(buf)
    }
}

impl<S: Write> Write for Prefixed<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.drain_pre()?;
        self.io.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain_pre()?;
        self.io.flush()
    }
}
