//! The server's peers as the game reaches them: ids, the peer objects of `get_peer`, addresses,
//! disconnecting one, and the header lines sent to every new one.

use super::*;

#[godot_api(secondary)]
impl WebSocketServer {
    /// [code]true[/code] if a client with this id is connected.
    #[func]
    fn has_peer(&self, id: i64) -> bool {
        self.find(id).is_some()
    }

    /// The ids of every connected client, in no particular order.
    #[func]
    fn get_peer_ids(&self) -> PackedInt32Array {
        self.server
            .as_ref()
            .map_or_else(PackedInt32Array::new, |s| s.peer_ids().collect())
    }

    /// The [WebSocketServerPeer] for [param id], or [code]null[/code] (with an error) if there is
    /// none. The same object is returned for an id until it disconnects.
    #[func]
    fn get_peer(&mut self, id: i64) -> Option<Gd<WebSocketServerPeer>> {
        if self.multiplayer {
            godot_error!("WebSocketServer: get_peer() is for raw mode; in multiplayer mode SceneMultiplayer owns the peers' messages");
            return None;
        }
        // The seed's pattern calls this once per message: an object made earlier is returned
        // without a lookup in the core's table (it is dropped there and here at the same signal).
        if let Some(peer) = i32::try_from(id).ok().and_then(|id| self.peer_objects.get(&id)) {
            return Some(peer.clone());
        }
        let handle = self.require(id)?.clone();
        let peer = self
            .peer_objects
            .entry(handle.id())
            .or_insert_with(|| WebSocketServerPeer::create(handle, self.link.clone()));
        Some(peer.clone())
    }

    /// The IP address of the client [param id], or [code]""[/code] (with an error). Behind one of
    /// [member trusted_proxies] (or with [member proxy_protocol]), the address the proxy reports.
    #[func]
    fn get_peer_address(&self, id: i64) -> GString {
        self.require(id)
            .map_or(GString::new(), |p| p.addr().ip().to_string().as_str().into())
    }

    /// The remote port of the client [param id], or 0 (with an error). Behind a proxy, the port it
    /// reports (0 if it reports only the address, as [code]X-Forwarded-For[/code] does).
    #[func]
    fn get_peer_port(&self, id: i64) -> i64 {
        self.require(id).map_or(0, |p| p.addr().port() as i64)
    }

    /// Starts the close handshake with client [param id], sending [param code] and [param reason]
    /// (see [method WebSocketServerPeer.close]). [signal client_disconnected] follows once the
    /// client answers, or after [member close_timeout].
    ///
    /// [MultiplayerPeer]'s own [code]disconnect_peer(id, force)[/code] is this same method:
    /// called with [code]true[/code] (which arrives as code 1) the peer is dropped at once, with
    /// no close handshake and no further signal; with [code]false[/code] (code 0) it is closed
    /// with 1000. Neither 0 nor 1 is a valid close code, so nothing is ambiguous.
    #[func(rename = disconnect_peer)]
    pub(super) fn disconnect_peer_with_code(
        &mut self,
        id: i64,
        #[opt(default = 1000)] code: i64,
        #[opt(default = "")] reason: GString,
    ) {
        match code {
            1 => {
                match i32::try_from(id) {
                    Ok(id) => self.abort_peer(id),
                    Err(_) => godot_error!("WebSocketServer: no peer with id {id}"),
                }
                return;
            }
            0 => return self.disconnect_peer_with_code(id, 1000, reason),
            _ => {}
        }
        if let Some(peer) = self.require(id) {
            close_peer(peer, code, &reason.to_string());
        }
    }

    /// Header lines ([code]"Name: value"[/code]) added to every handshake response from now on.
    /// An invalid line is refused (with an error) and the previous headers are kept.
    #[func]
    fn set_extra_headers(&mut self, #[opt(default = &PackedStringArray::new())] headers: PackedStringArray) {
        let headers: Vec<String> = headers.as_slice().iter().map(|h| h.to_string()).collect();
        if let Some(e) = headers.iter().find_map(|h| validate_header_line(h).err()) {
            godot_error!("WebSocketServer: {e}");
            return;
        }
        if let Some(server) = &self.server {
            server.set_extra_headers(headers.clone());
        }
        self.extra_headers = headers;
    }
}

impl WebSocketServer {
    /// Drops a peer at once, without a close handshake or any further signal.
    pub(super) fn abort_peer(&mut self, peer: i32) {
        if !self.server.as_mut().is_some_and(|s| s.abort(peer)) {
            godot_error!("WebSocketServer: no peer with id {peer}");
        }
        self.peer_objects.remove(&peer);
    }

    pub(super) fn find(&self, id: i64) -> Option<&wss_core::PeerHandle> {
        let id = i32::try_from(id).ok()?;
        self.server.as_ref()?.peer(id)
    }

    /// Like `find`, with an error for the caller when there is no such peer.
    pub(super) fn require(&self, id: i64) -> Option<&wss_core::PeerHandle> {
        let found = self.find(id);
        if found.is_none() {
            godot_error!("WebSocketServer: no peer with id {id}");
        }
        found
    }
}
