//! Reading frames once open (tungstenite through the inbox, message by message, pausing when a
//! queue is full), failing the connection on a violation, reading the client's answer to our
//! Close for it, and the heartbeat.

use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Role, WebSocketContext};
use tungstenite::{Bytes, Message};

use super::{Connection, Context, Input, Phase, Status, NO_STATUS_RECEIVED, READ_CHUNK};
use crate::event::{Event, Packet, PeerState};
use crate::inbox::Wire;
use crate::outq::OutQueue;
use crate::stats::bump;

/// How the client's answer to our Close for a violation is read.
pub(super) enum Reply {
    /// The violation was found after its frame was read whole: tungstenite reads on.
    Frames,
    /// A frame over the limit was refused after its header: skip the rest of it (this many bytes
    /// still to come from the socket), then read with a fresh parser.
    Skip(u64),
    /// That fresh parser, at a frame boundary; the first Close it returns is the reply.
    Fresh(Box<WebSocketContext>),
    /// The stream cannot be parsed (a bad opcode is refused before its header is consumed):
    /// input is dropped until the client's EOF.
    Discard,
}

impl Connection {
    /// Reads frames until the inbox is empty, a queue is full, or the connection ends.
    pub(super) fn read_frames(&mut self, cx: &mut Context) -> Input {
        let Phase::Open {
            ws,
            peer,
            closing_by_us,
        } = &mut self.phase
        else {
            return Input::More;
        };
        let out_limit = cx.settings.config.limits.outbound_buffer_size;
        let in_limit = cx.settings.config.limits.inbound_buffer_size;
        // With permessage-deflate the parser reads the inflated input; the client's bytes go
        // through the inflater as the parser needs them.
        let (mut inflating, source, mut raw) = match self.deflate.as_deref_mut() {
            Some(super::deflating::Deflating { inflating, decoded, .. }) => {
                (Some(inflating), decoded, Some(&mut self.inbox))
            }
            None => (None, &mut self.inbox, None),
        };
        let mut tx = Wire {
            progress: Some(&mut self.progress),
            ..Wire::new(source, &mut self.out)
        };
        // (code, how the client's reply will be read): after a frame that was too long
        // tungstenite is inside its payload, and a bad opcode is refused before its header is
        // consumed; every other violation is found after the whole frame was read.
        let (code, reply) = loop {
            // Pongs and Close replies are written by tungstenite as it reads: stop reading while
            // the client is not taking what it is sent (a ping flood from a client that never
            // reads is bounded here).
            if tx.out.len() > out_limit {
                self.out_paused = true;
                self.stall_deadline = None;
                return Input::More;
            }
            if peer.inbound_full() && peer.pause() {
                self.paused = true;
                self.stall_deadline = None;
                return Input::More;
            }
            if let (Some(inflating), Some(raw)) = (inflating.as_deref_mut(), raw.as_deref_mut()) {
                if tx.inbox.len() < READ_CHUNK {
                    if let Err(why) =
                        super::deflating::inflate_input(inflating, raw, tx.inbox, in_limit.max(READ_CHUNK))
                    {
                        break super::deflating::refused(why);
                    }
                }
            }
            match ws.read(&mut tx) {
                Ok(Message::Text(text)) => {
                    let data = Bytes::from(text);
                    peer.add_inbound(data.len());
                    cx.events.push(Event::Message {
                        id: peer.id,
                        packet: Packet::new(data, true),
                    });
                }
                Ok(Message::Binary(data)) => {
                    peer.add_inbound(data.len());
                    cx.events.push(Event::Message {
                        id: peer.id,
                        packet: Packet::new(data, false),
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
                        // tungstenite queues our reply on the next read, then reports
                        // ConnectionClosed; this bounds how long the reply may take to drain.
                        self.deadline = Some(cx.now + cx.settings.config.close_timeout);
                    }
                }
                Ok(Message::Pong(payload)) => {
                    // The answer to our last ping: the peer is alive, and this is its round trip.
                    if let Some((sent, at)) = self.ping_out {
                        if payload[..] == sent.to_be_bytes() {
                            self.ping_out = None;
                            peer.set_round_trip(cx.now.saturating_duration_since(at));
                        }
                    }
                }
                Ok(Message::Ping(_) | Message::Frame(_)) => {}
                // Everything in the inbox has been read.
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // (With permessage-deflate: more of the client's bytes may wait to be inflated.)
                    if let (Some(inflating), Some(raw)) = (inflating.as_deref_mut(), raw.as_deref_mut()) {
                        match super::deflating::inflate_input(inflating, raw, tx.inbox, in_limit.max(READ_CHUNK)) {
                            Ok(true) => continue,
                            Ok(false) if !tx.inbox.is_empty() || tx.inbox.eof() => continue,
                            Ok(false) => {}
                            Err(why) => break super::deflating::refused(why),
                        }
                    }
                    // tungstenite's read buffer keeps the size a long frame made it grow to (and
                    // shares it with that frame's payload) for the rest of the connection. When
                    // everything read belongs to finished messages, that buffer is empty and its
                    // parser holds nothing else (pongs and Close replies are written as it reads,
                    // straight into `out`): a fresh one is the same parser, and the memory goes
                    // back once the game has read the message.
                    let progress = tx.progress.as_deref_mut().expect("tracked");
                    if progress.largest_frame() > READ_CHUNK as u64
                        && progress.at_message_boundary()
                        && ws.can_read()
                        && ws.can_write()
                    {
                        **ws = WebSocketContext::new(Role::Server, Some(cx.settings.ws));
                        progress.forget_largest();
                        self.released = true;
                    }
                    // All that was sent is read: a message left unfinished must make progress
                    // within partial_message_timeout (counted from its last byte).
                    self.stall_deadline = match (progress.partial(), tx.got) {
                        (false, _) => None,
                        (true, true) => Some(cx.now + cx.settings.config.partial_message_timeout),
                        (true, false) => self
                            .stall_deadline
                            .or(Some(cx.now + cx.settings.config.partial_message_timeout)),
                    };
                    return Input::More;
                }
                // The close handshake is complete.
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return Input::Closed,
                Err(WsError::Capacity(CapacityError::MessageTooLong { .. })) => {
                    // A frame over the limit (its end is known from its header), or a message
                    // whose fragments add up to too much (found after a whole frame).
                    let progress = tx.progress.as_deref_mut().expect("tracked");
                    let reply = match progress.rest_of_oversize_frame() {
                        Some(rest) => Reply::Skip(rest),
                        None if progress.saw_oversize_frame() => Reply::Discard,
                        None => Reply::Frames,
                    };
                    break (CloseCode::Size, reply);
                }
                Err(WsError::Utf8(_)) => break (CloseCode::Invalid, Reply::Frames),
                Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => return Input::Lost,
                Err(WsError::Protocol(ProtocolError::InvalidOpcode(_))) => break (CloseCode::Protocol, Reply::Discard),
                Err(WsError::Protocol(_)) => break (CloseCode::Protocol, Reply::Frames),
                Err(_) => return Input::Lost,
            }
        };
        self.start_failing(code, reply, cx);
        Input::More
    }

    /// Fails the connection (RFC 6455 §7.1.7) once the game has seen what came before: reading
    /// stops, the game is told (`Event::ProtocolError`), and `fail_now` sends the Close.
    pub(super) fn start_failing(&mut self, code: CloseCode, reply: Reply, cx: &mut Context) {
        let Phase::Open { ws, peer, .. } = std::mem::replace(&mut self.phase, Phase::Gone) else {
            unreachable!("only an open connection fails")
        };
        cx.events.push(Event::ProtocolError {
            id: peer.id,
            code: code.into(),
        });
        self.phase = Phase::FailPending { ws, peer, code, reply };
        self.stall_deadline = None;
        self.deadline = Some(cx.now + cx.settings.config.close_timeout);
    }

    /// After our Close for a violation: frames are read (and dropped) until the client's Close
    /// reply completes the handshake. Further violations are ignored as long as the frame was
    /// consumed; one that leaves the stream unparseable leaves only discarding.
    pub(super) fn read_close_reply(&mut self, cx: &mut Context) -> Input {
        let Phase::Failing { ws, reply, .. } = &mut self.phase else {
            return Input::More;
        };
        loop {
            let result = match reply {
                Reply::Frames => ws.read(&mut Wire::new(&mut self.inbox, &mut self.out)),
                // Whatever this parser would answer (a pong, a Close) is dropped: our Close is
                // already out, and nothing may follow it.
                Reply::Fresh(fresh) => fresh.read(&mut Wire::new(&mut self.inbox, &mut OutQueue::default())),
                Reply::Skip(0) => {
                    let fresh = WebSocketContext::new(Role::Server, Some(cx.settings.ws));
                    *reply = Reply::Fresh(Box::new(fresh));
                    continue;
                }
                Reply::Skip(rest) => {
                    let n = self.inbox.len().min(usize::try_from(*rest).unwrap_or(usize::MAX));
                    if n == 0 {
                        return if self.inbox.eof() { Input::Lost } else { Input::More };
                    }
                    self.inbox.consume(n);
                    *rest -= n as u64;
                    continue;
                }
                Reply::Discard => {
                    self.inbox.clear();
                    return if self.inbox.eof() { Input::Lost } else { Input::More };
                }
            };
            match result {
                Ok(Message::Close(_)) if matches!(reply, Reply::Fresh(_)) => return Input::Closed,
                Ok(_) => {}
                // Everything in the inbox has been read.
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => return Input::More,
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return Input::Closed,
                Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) | Err(WsError::Io(_)) => {
                    return Input::Lost
                }
                // The frame was read whole: go on with the next one.
                Err(WsError::Utf8(_)) => {}
                Err(WsError::Protocol(p)) if !matches!(p, ProtocolError::InvalidOpcode(_)) => {}
                Err(_) => *reply = Reply::Discard,
            }
        }
    }

    /// The heartbeat is due: drop a peer that has not answered the last ping, else ping it.
    /// `Some` if the connection ended.
    pub(super) fn heartbeat(&mut self, cx: &mut Context) -> Option<Status> {
        let Some(interval) = cx.settings.config.heartbeat_interval else {
            self.ping_due = None;
            return None;
        };
        let Phase::Open {
            ws,
            closing_by_us: false,
            ..
        } = &mut self.phase
        else {
            // Closing or failing: the close timeouts apply instead.
            self.ping_due = None;
            return None;
        };
        self.ping_due = Some(cx.now + interval);
        if self.paused {
            // The server is not reading this peer (the game has not read its messages): its
            // pong may be waiting unread. Not the peer's fault; ask again next time.
            return None;
        }
        if self.ping_out.is_some() {
            // No pong for a whole interval: the peer is gone (frozen, or its network is).
            bump(&cx.settings.totals.heartbeat_dropped, 1);
            return Some(self.finish(false, cx));
        }
        self.pings_sent += 1;
        let payload = self.pings_sent;
        let ping = Message::Ping(Bytes::copy_from_slice(&payload.to_be_bytes()));
        if ws.write(&mut Wire::new(&mut self.inbox, &mut self.out), ping).is_ok() {
            self.ping_out = Some((payload, cx.now));
        }
        Some(self.drive(cx, false))
    }
}
