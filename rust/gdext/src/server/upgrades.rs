//! Deciding on upgrade requests (`authorize_upgrades`): accept, reject, and the request of a peer;
//! answering plain HTTP requests (`answer_http_requests`).

use super::*;

#[godot_api(secondary)]
impl WebSocketServer {
    /// Accepts the upgrade request [param id] ([signal upgrade_requested]): the client gets
    /// [code]101 Switching Protocols[/code] and [signal client_connected] (or
    /// [signal MultiplayerPeer.peer_connected]) follows. [param protocol] picks the subprotocol
    /// (one the client offered, see [method WebSocketServerRequest.get_requested_protocols]);
    /// [code]""[/code] keeps the server's own choice. [param headers] are extra response lines for
    /// this client only ([code]"Set-Cookie: session=..."[/code]), after
    /// [method set_extra_headers]'s.
    ///
    /// Returns [constant @GlobalScope.ERR_DOES_NOT_EXIST] if no request with this id waits (it was
    /// decided already, ended, or never was), [constant @GlobalScope.ERR_INVALID_PARAMETER] for a
    /// protocol the client did not offer or a bad header line.
    #[func]
    fn accept_upgrade(
        &mut self,
        id: i64,
        #[opt(default = "")] protocol: GString,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Error {
        let Some(headers) = checked_headers(&headers, "accept_upgrade") else {
            return Error::ERR_INVALID_PARAMETER;
        };
        let protocol = Some(protocol.to_string()).filter(|p| !p.is_empty());
        self.decide(id, Verdict::Accept { protocol, headers }, "accept_upgrade")
    }

    /// Refuses the upgrade request [param id] ([signal upgrade_requested]) with HTTP [param status]
    /// (400-599, e.g. 401, 403 or 429), [param reason] as a plain-text body, and [param headers]
    /// (e.g. [code]"Retry-After: 30"[/code]); then the connection closes. No other signal follows
    /// for this id. A browser's [code]WebSocket[/code] sees a failed connection (close code 1006),
    /// Godot's [WebSocketPeer] [constant WebSocketPeer.STATE_CLOSED] (and
    /// [signal MultiplayerPeer.connection_failed] on a multiplayer client).
    ///
    /// Returns [constant @GlobalScope.ERR_DOES_NOT_EXIST] if no request with this id waits,
    /// [constant @GlobalScope.ERR_INVALID_PARAMETER] for a bad status or header line.
    #[func]
    fn reject_upgrade(
        &mut self,
        id: i64,
        #[opt(default = 403)] status: i64,
        #[opt(default = "")] reason: GString,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Error {
        if !(400..=599).contains(&status) {
            godot_error!("WebSocketServer.reject_upgrade: status must be 400-599, not {status}");
            return Error::ERR_INVALID_PARAMETER;
        }
        let Some(headers) = checked_headers(&headers, "reject_upgrade") else {
            return Error::ERR_INVALID_PARAMETER;
        };
        let body = reason.to_string();
        if body.len() > MAX_REJECT_BODY {
            godot_error!(
                "WebSocketServer.reject_upgrade: reason is {} bytes; at most {MAX_REJECT_BODY}",
                body.len()
            );
            return Error::ERR_INVALID_PARAMETER;
        }
        let verdict = Verdict::Reject {
            status: status as u16,
            headers: header_block(&headers),
            body,
        };
        self.decide(id, verdict, "reject_upgrade")
    }

    /// Answers the plain HTTP request [param id] ([signal http_request]) with [param status]
    /// (200-599), [param body] (a [String], sent as UTF-8, or a [PackedByteArray]; left out for a
    /// [code]HEAD[/code] request, whose [code]Content-Length[/code] still tells its size) and
    /// [param headers] ([code]"Content-Type: application/json"[/code]; without one, a non-empty
    /// body is [code]text/plain; charset=utf-8[/code]). The server adds
    /// [code]Content-Length[/code] and [code]Connection: close[/code], writes it from the I/O
    /// thread, and closes the connection. The body may be up to [member outbound_buffer_size]
    /// bytes. [i]Not in Godot.[/i]
    /// [codeblock]
    /// func _on_http_request(id: int, request: WebSocketServerRequest):
    ///     if request.get_path() == "/healthz":
    ///         server.respond(id, 200, JSON.stringify({"players": server.get_peer_ids().size()}),
    ///                 ["Content-Type: application/json"])
    ///     else:
    ///         server.respond(id, 404, "not found")
    /// [/codeblock]
    /// Returns [constant @GlobalScope.ERR_DOES_NOT_EXIST] if no request with this id waits (it was
    /// answered, the client left, or [member handshake_timeout] passed and it was answered
    /// [code]503[/code]), [constant @GlobalScope.ERR_INVALID_PARAMETER] for a bad status, body or
    /// header line.
    #[func]
    fn respond(
        &mut self,
        id: i64,
        status: i64,
        body: Variant,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Error {
        if !(200..=599).contains(&status) {
            godot_error!("WebSocketServer.respond: status must be 200-599, not {status}");
            return Error::ERR_INVALID_PARAMETER;
        }
        let body: Vec<u8> = match body.get_type() {
            VariantType::STRING => body.to::<GString>().to_string().into_bytes(),
            VariantType::PACKED_BYTE_ARRAY => body.to::<PackedByteArray>().to_vec(),
            other => {
                godot_error!("WebSocketServer.respond: body must be a String or a PackedByteArray, not {other:?}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        if body.len() as i64 > self.outbound_buffer_size {
            godot_error!(
                "WebSocketServer.respond: body is {} bytes; at most outbound_buffer_size ({})",
                body.len(),
                self.outbound_buffer_size
            );
            return Error::ERR_INVALID_PARAMETER;
        }
        let Some(headers) = checked_headers(&headers, "respond") else {
            return Error::ERR_INVALID_PARAMETER;
        };
        let verdict = Verdict::Answer {
            status: status as u16,
            headers: header_block(&headers),
            body,
        };
        self.decide(id, verdict, "respond")
    }

    /// The upgrade request of client [param id] (connected, or waiting for
    /// [method accept_upgrade]), in either mode; [code]null[/code] (with an error) if there is none.
    #[func]
    fn get_peer_request(&self, id: i64) -> Option<Gd<WebSocketServerRequest>> {
        let found = i32::try_from(id)
            .ok()
            .and_then(|i| Some((i, self.server.as_ref()?.request(i)?.clone())));
        match found {
            Some((i, request)) => Some(WebSocketServerRequest::create(i, request)),
            None => {
                godot_error!("WebSocketServer: no peer or pending request with id {id}");
                None
            }
        }
    }
}

impl WebSocketServer {
    /// Forwards a decision on a request, with an error naming `what` if it is refused.
    pub(super) fn decide(&mut self, id: i64, verdict: Verdict, what: &str) -> Error {
        let Some(server) = self.server.as_mut() else {
            godot_error!("WebSocketServer.{what}: not listening");
            return Error::ERR_UNCONFIGURED;
        };
        let Ok(id32) = i32::try_from(id) else {
            godot_error!("WebSocketServer.{what}: no request with id {id} is waiting for a decision");
            return Error::ERR_DOES_NOT_EXIST;
        };
        match server.decide(id32, verdict) {
            Ok(()) => Error::OK,
            Err(e @ (DecideError::NotOffered(..) | DecideError::NotUpgrade(_))) => {
                godot_error!("WebSocketServer.{what}: {e}");
                Error::ERR_INVALID_PARAMETER
            }
            Err(e) => {
                godot_error!("WebSocketServer.{what}: {e}");
                Error::ERR_DOES_NOT_EXIST
            }
        }
    }
}

/// The longest body `reject_upgrade` sends.
pub(super) const MAX_REJECT_BODY: usize = 4096;

/// The game's response header lines, checked (`validate_response_headers`); `None` after an error
/// naming `what`.
fn checked_headers(headers: &PackedStringArray, what: &str) -> Option<Vec<String>> {
    let headers: Vec<String> = headers.as_slice().iter().map(|h| h.to_string()).collect();
    match validate_response_headers(&headers) {
        Ok(()) => Some(headers),
        Err(e) => {
            godot_error!("WebSocketServer.{what}: {e}");
            None
        }
    }
}

/// Header lines as they go on the wire, each ending in CRLF.
fn header_block(lines: &[String]) -> String {
    lines.iter().map(|h| format!("{h}\r\n")).collect()
}
