//! Starting and stopping: `listen` (the settings become the core's configuration), `stop`, and
//! whether and where the server listens.

use super::*;

#[godot_api(secondary)]
impl WebSocketServer {
    /// Starts listening on [param port] (0 picks a free one, see [method get_local_port]).
    ///
    /// [param protocols] lists the subprotocols the server accepts; the first one in the
    /// client's list that is also here is chosen. If the list is empty, clients offering any
    /// subprotocol are refused; if it is not, clients offering none are refused.
    ///
    /// Returns [constant @GlobalScope.ERR_ALREADY_IN_USE] if already listening or the port is
    /// taken, [constant @GlobalScope.ERR_INVALID_PARAMETER] for a bad port, protocol or address,
    /// [constant @GlobalScope.ERR_CANT_CREATE] if the socket or thread cannot be made.
    #[func]
    fn listen(
        &mut self,
        port: i64,
        #[opt(default = &PackedStringArray::new())] protocols: PackedStringArray,
        #[opt(default = false)] gd_mp_api: bool,
    ) -> Error {
        if let Some(server) = &self.server {
            if server.is_shutting_down() {
                godot_error!(
                    "WebSocketServer is still shutting down; wait for shutdown_finished, or call stop() first"
                );
            } else {
                godot_error!("WebSocketServer is already listening; call stop() first");
            }
            return Error::ERR_ALREADY_IN_USE;
        }
        let tls = match self.tls_config() {
            Ok(tls) => tls,
            Err(e) => {
                godot_error!("WebSocketServer: {e}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        let Ok(port) = u16::try_from(port) else {
            godot_error!("WebSocketServer: port must be between 0 and 65535, not {port}");
            return Error::ERR_INVALID_PARAMETER;
        };
        let protocols: Vec<String> = protocols.as_slice().iter().map(|p| p.to_string()).collect();
        if let Some(bad) = protocols.iter().find(|p| !is_token(p)) {
            godot_error!("WebSocketServer: {bad:?} is not a valid subprotocol name");
            return Error::ERR_INVALID_PARAMETER;
        }
        let config = self.server_config(port, protocols, gd_mp_api, tls);
        match Server::listen(&config) {
            Ok(server) => {
                server.set_refusing(self.refuse_new_connections);
                let inline = server.io_mode() == Some(IoMode::Inline);
                self.link.set_inline_server(inline.then(|| self.base().instance_id()));
                self.server = Some(server);
                self.multiplayer = gd_mp_api;
                self.shutdown_grace = false;
                if self.shutdown_on_sigterm {
                    self.arm_termination(true);
                }
                Error::OK
            }
            Err(e) => {
                godot_error!("WebSocketServer: {e}");
                match e {
                    ListenError::InUse(_) => Error::ERR_ALREADY_IN_USE,
                    ListenError::BadAddress(_) => Error::ERR_INVALID_PARAMETER,
                    ListenError::CantCreate(_) => Error::ERR_CANT_CREATE,
                }
            }
        }
    }

    /// Closes the listener and every connection at once and clears all state. No signals are
    /// emitted; peer objects still held report [constant WebSocketServerPeer.STATE_CLOSED].
    /// Clients see their connection drop without a Close frame: to let them finish and tell them
    /// why, use [method shutdown].
    #[func]
    pub(super) fn stop(&mut self) {
        self.server = None; // dropping it stops the I/O thread and closes every socket
        self.arm_termination(false);
        self.link.set_inline_server(None);
        self.peer_objects.clear();
        self.multiplayer = false;
        self.last_packet = None;
    }

    /// [code]true[/code] while the server is listening ([code]false[/code] from the start of a
    /// [method shutdown], though clients are still being closed).
    #[func]
    fn is_listening(&self) -> bool {
        self.server.as_ref().is_some_and(Server::is_listening)
    }

    /// The port the server listens on (useful after [code]listen(0)[/code]); 0 when not listening.
    #[func]
    fn get_local_port(&self) -> i64 {
        self.server
            .as_ref()
            .filter(|s| s.is_listening())
            .map_or(0, |s| s.local_addr().port() as i64)
    }

    /// [member compression]: permessage-deflate is declined (the default).
    #[constant]
    pub const COMPRESSION_OFF: i64 = 0;
    /// [member compression]: permessage-deflate with every client that offers it, each message
    /// compressed on its own.
    #[constant]
    pub const COMPRESSION_SHARED: i64 = 1;
    /// [member compression]: permessage-deflate with context takeover within
    /// [member compression_window_bits], a window of history kept per connection.
    #[constant]
    pub const COMPRESSION_DEDICATED: i64 = 2;
    /// [member io_mode]: the server's own I/O thread does the socket work (the default).
    #[constant]
    pub const IO_MODE_THREAD: i64 = 0;

    /// [member io_mode]: [code]poll()[/code] does the socket work on the calling thread.
    #[constant]
    pub const IO_MODE_INLINE: i64 = 1;
}
