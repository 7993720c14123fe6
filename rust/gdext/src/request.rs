use std::sync::Arc;

use godot::prelude::*;
use wss_core::{PeerId, Request};

/// The HTTP upgrade request a client of a [WebSocketServer] came with: headers, path, offered
/// subprotocols, TLS server name and addresses. Read-only.
///
/// Passed to [signal WebSocketServer.upgrade_requested] (when [member
/// WebSocketServer.authorize_upgrades] is on), and available for every connected client from
/// [signal WebSocketServer.client_connected] (or [signal MultiplayerPeer.peer_connected]) on,
/// through [method WebSocketServer.get_peer_request] or [method WebSocketServerPeer.get_request].
/// [codeblock]
/// func _on_client_connected(id, _protocol, _resource):
///     var request = server.get_peer_request(id)
///     print(request.get_header("User-Agent"), " from ", request.get_client_address())
/// [/codeblock]
#[derive(GodotClass)]
#[class(no_init, base = RefCounted)]
pub struct WebSocketServerRequest {
    id: PeerId,
    request: Arc<Request>,
    base: Base<RefCounted>,
}

impl WebSocketServerRequest {
    pub fn create(id: PeerId, request: Arc<Request>) -> Gd<Self> {
        Gd::from_init_fn(|base| WebSocketServerRequest { id, request, base })
    }
}

#[godot_api]
impl WebSocketServerRequest {
    /// The id this client has (or will have, once accepted) on its server.
    #[func]
    fn get_id(&self) -> i64 {
        self.id as i64
    }

    /// [code]"GET"[/code] (every WebSocket upgrade), or [code]"HEAD"[/code] for a plain HTTP
    /// request ([signal WebSocketServer.http_request]).
    #[func]
    fn get_method(&self) -> GString {
        GString::from(&self.request.method)
    }

    /// [code]true[/code] for a WebSocket upgrade request; [code]false[/code] for a plain HTTP
    /// request ([signal WebSocketServer.http_request]).
    #[func]
    fn is_upgrade(&self) -> bool {
        self.request.upgrade
    }

    /// The request target: path and query string, e.g. [code]"/chat?room=5"[/code] (the
    /// [code]resource_name[/code] of [signal WebSocketServer.client_connected]).
    #[func]
    fn get_resource_name(&self) -> GString {
        GString::from(&self.request.resource)
    }

    /// The path without the query string, e.g. [code]"/chat"[/code].
    #[func]
    fn get_path(&self) -> GString {
        GString::from(self.request.path())
    }

    /// The query string without the [code]?[/code], e.g. [code]"room=5"[/code]; [code]""[/code]
    /// if there is none. [method String.uri_decode] decodes its values.
    #[func]
    fn get_query(&self) -> GString {
        GString::from(self.request.query())
    }

    /// Every header line as the client sent it ([code]"Name: value"[/code]), in order, like
    /// [method HTTPClient.get_response_headers].
    #[func]
    fn get_headers(&self) -> PackedStringArray {
        self.request
            .headers
            .iter()
            .map(|(n, v)| GString::from(&format!("{n}: {v}")))
            .collect()
    }

    /// The headers as a [Dictionary], like [method HTTPClient.get_response_headers_as_dictionary]
    /// but with [b]lower-case[/b] names (so [code]headers["user-agent"][/code] works whatever case
    /// the client used). A header sent more than once has its values joined with
    /// [code]", "[/code] ([code]"; "[/code] for [code]cookie[/code]).
    #[func]
    fn get_headers_as_dictionary(&self) -> VarDictionary {
        let mut dict = VarDictionary::new();
        for (name, _) in &self.request.headers {
            let key = name.to_ascii_lowercase();
            if !dict.contains_key(key.as_str()) {
                let value = self.request.header(name).unwrap_or_default();
                dict.set(key.as_str(), value.as_str());
            }
        }
        dict
    }

    /// The value of header [param name], found in any case ([code]"origin"[/code] finds
    /// [code]Origin[/code]); [param default] if the client did not send it. Values of a header sent
    /// more than once are joined as in [method get_headers_as_dictionary].
    #[func]
    fn get_header(&self, name: GString, #[opt(default = "")] default: GString) -> GString {
        self.request
            .header(&name.to_string())
            .map_or(default, |v| GString::from(&v))
    }

    /// [code]true[/code] if the client sent header [param name] (any case).
    #[func]
    fn has_header(&self, name: GString) -> bool {
        self.request.values(&name.to_string()).next().is_some()
    }

    /// The subprotocols the client offered ([code]Sec-WebSocket-Protocol[/code]), in its order of
    /// preference.
    #[func]
    fn get_requested_protocols(&self) -> PackedStringArray {
        self.request.protocols.iter().map(GString::from).collect()
    }

    /// [code]wss://[/code] only: the host name the client asked for in its TLS handshake (SNI);
    /// [code]""[/code] over [code]ws://[/code], or if the client sent none (e.g. it connected to an
    /// IP address).
    #[func]
    fn get_tls_server_name(&self) -> GString {
        GString::from(self.request.server_name.as_deref().unwrap_or(""))
    }

    /// The client's IP address: the TCP peer's, unless that peer is one of
    /// [member WebSocketServer.trusted_proxies] (or [member WebSocketServer.proxy_protocol] is on),
    /// in which case the address the proxy reports. This is what
    /// [method WebSocketServer.get_peer_address] returns.
    #[func]
    fn get_client_address(&self) -> GString {
        GString::from(&self.request.client_addr.ip().to_string())
    }

    /// The client's port, as [method get_client_address]; [code]0[/code] if a proxy reported only
    /// the address (as [code]X-Forwarded-For[/code] does).
    #[func]
    fn get_client_port(&self) -> i64 {
        self.request.client_addr.port() as i64
    }

    /// The address of the TCP peer itself: the proxy, for a client that came through one.
    #[func]
    fn get_socket_address(&self) -> GString {
        GString::from(&self.request.socket_addr.ip().to_string())
    }

    /// The port of the TCP peer itself.
    #[func]
    fn get_socket_port(&self) -> i64 {
        self.request.socket_addr.port() as i64
    }
}
