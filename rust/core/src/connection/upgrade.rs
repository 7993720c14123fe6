//! The upgrade, as the connection takes it: the HTTP request read from the inbox (bounded by
//! `MAX_REQUEST_SIZE`), the game's decision when it is asked (`authorize`), and the switch to
//! WebSocket (the `101` response, the multiplayer id, bytes that came after the request).

use std::sync::Arc;

use tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::{Role, WebSocketContext};
use tungstenite::{Bytes, Message};

use super::{Connection, Context, Input, Phase, Status};
use crate::connection::READ_CHUNK;
use crate::event::{Event, PeerId, Verdict};
use crate::handshake::{answer, refusal, Decision, MAX_REQUEST_SIZE};
use crate::inbox::{Inbox, Wire};
use crate::peer::PeerShared;
use crate::request::Request;

impl Connection {
    /// The game's decision on this connection's request. Ignored unless it is waiting for one
    /// (the client may have left, or the decision came too late).
    pub fn decide(&mut self, verdict: Verdict, cx: &mut Context) -> Status {
        if !matches!(self.phase, Phase::Deciding { .. }) {
            return Status::Alive;
        }
        let Phase::Deciding {
            upgrade,
            request,
            id,
            early,
        } = std::mem::replace(&mut self.phase, Phase::Gone)
        else {
            unreachable!()
        };
        match (verdict, upgrade) {
            (Verdict::Accept { protocol, headers }, Some(upgrade)) => {
                let protocol = protocol.unwrap_or_else(|| upgrade.protocol.clone());
                let response = upgrade.accept(&protocol, &cx.settings.offer, &headers);
                self.open(response, protocol, request, id, early, upgrade.deflate, cx);
                self.drive(cx, true)
            }
            (Verdict::Reject { status, headers, body }, _) => {
                cx.events.push(Event::RequestEnded { id, why: "refused" });
                self.refuse(refusal(status, &headers, &body));
                self.drive(cx, false)
            }
            (Verdict::Answer { status, headers, body }, _) => {
                cx.events.push(Event::RequestEnded { id, why: "answered" });
                self.refuse(answer(status, &headers, &body, request.method == "HEAD"));
                self.drive(cx, false)
            }
            // (`Server::decide` refuses to accept a plain request; should one come, it is an error.)
            (Verdict::Accept { .. }, None) => {
                cx.events.push(Event::RequestEnded { id, why: "refused" });
                self.refuse(refusal(500, "", "not a WebSocket request"));
                self.drive(cx, false)
            }
        }
    }

    /// Reads the HTTP upgrade. `None` once upgraded (the caller goes on reading frames).
    pub(super) fn read_handshake(&mut self, cx: &mut Context) -> Option<Input> {
        let Phase::Handshake { buf, scanned } = &mut self.phase else {
            return None;
        };
        loop {
            let chunk = self.inbox.peek(READ_CHUNK);
            // (`buf` may hold a keep-alive connection's next request, not searched yet.)
            if chunk.is_empty() && *scanned == buf.len() {
                return Some(if self.inbox.eof() { Input::Lost } else { Input::More });
            }
            buf.extend_from_slice(chunk);
            let n = chunk.len();
            self.inbox.consume(n);
            // Only the new bytes (and the three before them) can hold the blank line.
            let from = scanned.saturating_sub(3);
            let ended = contains(&buf[from..], b"\n\r\n") || contains(&buf[from..], b"\n\n");
            *scanned = buf.len();
            if !ended && buf.len() < MAX_REQUEST_SIZE {
                continue;
            }
            if self.over_capacity {
                self.refuse(refusal(503, "Retry-After: 5\r\n", "the server is full"));
                return Some(Input::More);
            }
            match cx.settings.offer.decide(buf) {
                Decision::Incomplete => continue,
                Decision::Reject { response, .. } => {
                    self.refuse(response);
                    return Some(Input::More);
                }
                Decision::Plain {
                    mut request,
                    consumed,
                    keep_alive,
                } => {
                    request.socket_addr = self.addr;
                    request.server_name = self.server_name.clone();
                    request.client_addr = cx.settings.config.trusted_proxies.client(self.origin, &request.headers);
                    let next = buf.split_off(consumed);
                    self.take_plain(request, next, keep_alive, cx);
                    return Some(Input::More);
                }
                Decision::Upgrade(mut upgrade) => {
                    let early = buf.split_off(upgrade.consumed);
                    let mut request = std::mem::take(&mut upgrade.request);
                    request.socket_addr = self.addr;
                    request.server_name = self.server_name.clone();
                    request.client_addr = cx.settings.config.trusted_proxies.client(self.origin, &request.headers);
                    let request = Arc::new(request);
                    let id = cx.ids.allocate();
                    if cx.settings.config.authorize {
                        cx.events.push(Event::Requested {
                            id,
                            request: request.clone(),
                        });
                        self.phase = Phase::Deciding {
                            upgrade: Some(Box::new(upgrade)),
                            request,
                            id,
                            early,
                        };
                    } else {
                        let protocol = upgrade.protocol.clone();
                        let response = upgrade.accept(&protocol, &cx.settings.offer, &[]);
                        self.open(response, protocol, request, id, early, upgrade.deflate, cx);
                    }
                    return None;
                }
            }
        }
    }

    /// The upgrade is accepted: queue the `101` response and speak WebSocket. `early` holds the
    /// bytes that came after the request.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn open(
        &mut self,
        response: Vec<u8>,
        protocol: String,
        request: Arc<Request>,
        id: PeerId,
        early: Vec<u8>,
        deflate: Option<crate::deflate::negotiate::Agreed>,
        cx: &mut Context,
    ) {
        self.deflate = deflate.map(|agreed| Box::new(super::deflating::Deflating::new(agreed, cx)));
        let early = self.early_input(early);
        self.progress.feed(&early);
        let mut ws = WebSocketContext::from_partially_read(early, Role::Server, Some(cx.settings.ws));
        let resource = request.resource.clone();
        let peer =
            Arc::new(PeerShared::new(id, request, cx.settings.config.limits).with_totals(cx.settings.totals.clone()));
        cx.events.push(Event::Connected {
            peer: peer.clone(),
            protocol,
            resource,
        });
        self.out.push(&response);
        if cx.settings.config.multiplayer {
            // Godot's multiplayer clients stay "connecting" until this arrives.
            let id = Bytes::copy_from_slice(&peer.id.to_le_bytes());
            let frame = Frame::message(id, OpCode::Data(OpData::Binary), true);
            let _ = ws.write(&mut Wire::new(&mut self.inbox, &mut self.out), Message::Frame(frame));
        }
        self.deadline = None;
        self.ping_due = cx.settings.config.heartbeat_interval.map(|i| cx.now + i);
        self.phase = Phase::Open {
            ws: Box::new(ws),
            peer,
            closing_by_us: false,
        };
    }

    /// The upgrade is refused: `response` goes out, then the connection closes.
    pub(super) fn refuse(&mut self, response: Vec<u8>) {
        self.out.push(&response);
        self.phase = Phase::Ending {
            peer: None,
            clean: false,
        };
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// While the game decides: keeps what the client sends (frames it did not wait to send), so that
/// its leaving is seen. More than `limit` bytes before an answer is not a client to wait for.
pub(super) fn read_early(inbox: &mut Inbox, early: &mut Vec<u8>, limit: usize) -> Input {
    early.extend_from_slice(inbox.peek(usize::MAX));
    inbox.clear();
    if early.len() > limit.max(READ_CHUNK) || inbox.eof() {
        return Input::Lost;
    }
    Input::More
}
