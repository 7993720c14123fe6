//! The `MultiplayerPeer` work: `poll()`'s signal pump, in Godot's order (and the reference that
//! keeps the server alive through its handlers), and the packets of multiplayer mode (taken from
//! the one queue and lent to Godot; sent to a target peer or all), with the checks of which mode
//! has the one queue.

use super::*;

impl WebSocketServer {
    /// `poll()`: takes what the I/O side reported and emits the signals, in Godot's order.
    pub(super) fn pump_signals(&mut self) {
        // Godot copied each message out of the buffer `get_packet` lent it long ago: a large one
        // must not stay in memory until the same peer's next message.
        self.last_packet = None;
        self.link.let_go();
        self.check_termination();
        let Some(server) = self.server.as_mut() else {
            return;
        };
        if let Err(failure) = server.poll() {
            // Every peer's disconnect is among the signals below; the server stops after them.
            godot_error!("WebSocketServer stopped: {failure}");
        }
        for (error, text) in server.take_notices() {
            if error {
                godot_error!("WebSocketServer: {text}");
            } else {
                godot_print!("WebSocketServer: {text}");
            }
        }
        if !server.has_pending() && !server.is_dead() && !server.is_shutting_down() {
            // Nothing to emit (most frames): no handler can run, so none can free this object.
            return;
        }
        // A handler may drop the last reference to this server (`server = null`, or
        // `multiplayer.multiplayer_peer = null`). Godot would then destroy it while this method
        // runs; holding a reference of our own keeps it alive until we are done.
        let keep = self.to_gd();
        // Whether `data_received` has a handler, asked once per poll (not per message) and again
        // after any other signal's handler ran (it may have connected one). Without a handler the
        // message just stays queued for `get_packet` (the per-peer pattern): emitting it anyway
        // cost about half of that pattern's game-thread time (bench/profile-process.md).
        let mut data_handled: Option<bool> = None;
        // A handler may call back into this object (even stop() or listen()), so nothing is
        // borrowed across an emit: take one signal, emit it, repeat.
        while let Some(signal) = self.server.as_mut().and_then(Server::next_signal) {
            if matches!(signal, Signal::DataReceived { .. }) {
                if !*data_handled.get_or_insert_with(|| self.has_handlers("data_received")) {
                    continue;
                }
            } else {
                data_handled = None;
            }
            if is_last_reference(&keep) {
                // Nobody can reach this server any more: stop it, and emit nothing else.
                self.stop();
                break;
            }
            match signal {
                Signal::UpgradeRequested { id } => {
                    let Some(request) = self.server.as_ref().and_then(|s| s.request(id)).cloned() else {
                        continue;
                    };
                    let request = WebSocketServerRequest::create(id, request);
                    self.signals().upgrade_requested().emit(id as i64, &request);
                }
                Signal::HttpRequest { id } => {
                    let Some(request) = self.server.as_ref().and_then(|s| s.request(id)).cloned() else {
                        continue;
                    };
                    let request = WebSocketServerRequest::create(id, request);
                    self.signals().http_request().emit(id as i64, &request);
                }
                Signal::UpgradeCancelled { id, why } => {
                    self.signals().upgrade_cancelled().emit(id as i64, &GString::from(why))
                }
                Signal::Connected { id, .. } if self.multiplayer => {
                    self.base_mut()
                        .emit_signal("peer_connected", &[(id as i64).to_variant()]);
                }
                Signal::Connected { id, protocol, resource } => self.signals().client_connected().emit(
                    id as i64,
                    &GString::from(&protocol),
                    &GString::from(&resource),
                ),
                Signal::DataReceived { id } => self.signals().data_received().emit(id as i64),
                Signal::CloseRequest { id, code, reason } => {
                    self.signals()
                        .client_close_request()
                        .emit(id as i64, code as i64, &GString::from(&reason))
                }
                Signal::Disconnected { id, .. } if self.multiplayer => {
                    self.base_mut()
                        .emit_signal("peer_disconnected", &[(id as i64).to_variant()]);
                }
                Signal::Disconnected { id, clean } => {
                    self.peer_objects.remove(&id);
                    self.signals().client_disconnected().emit(id as i64, clean)
                }
                Signal::BusConnected => self.signals().bus_connected().emit(),
                Signal::BusDisconnected { reason } => self.signals().bus_disconnected().emit(&GString::from(&reason)),
                Signal::BusPublishFailed { count } => self.signals().bus_publish_failed().emit(count as i64),
            }
        }
        if self.shutdown_over() {
            self.stop();
            self.signals().shutdown_finished().emit();
        }
        if self.server.as_ref().is_some_and(Server::is_dead) {
            self.stop();
        }
        if is_last_reference(&keep) {
            // Dropping `keep` here would destroy the object inside its own method: release it
            // once this call has returned.
            self.stop();
            release_later(keep);
        }
    }

    /// Whether anything is connected to this object's [param signal].
    fn has_handlers(&self, signal: &str) -> bool {
        !self.base().get_signal_connection_list(signal).is_empty()
    }

    /// `get_packet_rawptr`: the next packet of the one queue, lent to Godot until the next call.
    ///
    /// # Safety
    /// Godot passes valid out-pointers.
    pub(super) unsafe fn take_packet_for_godot(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        let Some(server) = self.queued_server("read packets from the server itself") else {
            return Error::ERR_UNAVAILABLE;
        };
        let Some((_, packet)) = server.pop_packet() else {
            crate::ratelimit::error("mp-no-packet", None, "WebSocketServer: no packet available".into());
            return Error::ERR_UNAVAILABLE;
        };
        // SAFETY: Godot passes valid out-pointers.
        unsafe { lend_packet(&mut self.last_packet, packet, r_buffer, r_buffer_size) }
    }

    /// `put_packet_rawptr`: one copy of Godot's buffer to the target peer(s).
    ///
    /// # Safety
    /// Godot passes a buffer of `p_buffer_size` bytes.
    pub(super) unsafe fn send_packet_from_godot(&mut self, p_buffer: RawPtr<*const u8>, p_buffer_size: i32) -> Error {
        let target = self.target_peer;
        let Some(server) = self.multiplayer_server("send packets through the server itself") else {
            return Error::ERR_UNAVAILABLE;
        };
        // One copy out of Godot's buffer, shared by every recipient of a broadcast.
        // SAFETY: Godot passes a buffer of `p_buffer_size` bytes.
        let data = server.copy_payload(unsafe { packet_bytes(p_buffer, p_buffer_size) });
        match server.send_to(target, data, false) {
            Ok(()) => {
                self.link.sent();
                Error::OK
            }
            Err(TargetError::UnknownPeer(id)) => {
                godot_error!("WebSocketServer: target peer {id} is not connected");
                Error::ERR_INVALID_PARAMETER
            }
            Err(TargetError::Refused(refused)) => {
                let full = refused.iter().any(|(_, e)| matches!(e, SendError::Full(_)));
                let who: Vec<String> = refused
                    .iter()
                    .map(|(id, e)| match e {
                        SendError::Full(limit) => format!("{id} ({limit} would be exceeded)"),
                        SendError::NotOpen => format!("{id} (closing)"),
                    })
                    .collect();
                crate::ratelimit::warn(
                    "put_packet",
                    refused.first().map(|(id, _)| *id as i64),
                    format!("WebSocketServer: packet not sent to peer {}", who.join(", ")),
                );
                if full {
                    Error::ERR_OUT_OF_MEMORY
                } else {
                    Error::FAILED
                }
            }
        }
    }
}

impl WebSocketServer {
    /// Whether messages wait in one queue (multiplayer mode, or `queue_messages`) rather than in
    /// each peer's own.
    pub(super) fn queued(&self) -> bool {
        self.multiplayer || self.queue_messages
    }

    /// The running server if its messages wait in one queue (multiplayer mode or
    /// `queue_messages`); otherwise an error saying that `what` needs it.
    pub(super) fn queued_server(&mut self, what: &str) -> Option<&mut Server> {
        let queued = self.queued();
        match &mut self.server {
            Some(server) if queued => Some(server),
            Some(_) => {
                godot_error!(
                    "WebSocketServer: in raw mode you cannot {what} unless queue_messages is on; use get_peer(id)"
                );
                None
            }
            None => {
                godot_error!("WebSocketServer: not listening");
                None
            }
        }
    }

    /// The running server if it is in multiplayer mode; otherwise an error saying that `what`
    /// needs it.
    pub(super) fn multiplayer_server(&mut self, what: &str) -> Option<&mut Server> {
        match &mut self.server {
            Some(server) if self.multiplayer => Some(server),
            Some(_) => {
                godot_error!("WebSocketServer: in raw mode you cannot {what}; use get_peer(id) (or listen with gd_mp_api = true)");
                None
            }
            None => {
                godot_error!("WebSocketServer: not listening");
                None
            }
        }
    }
}

/// Whether `gd` holds the only reference left to its object.
fn is_last_reference(gd: &Gd<WebSocketServer>) -> bool {
    gd.upcast_ref::<godot::classes::RefCounted>().get_reference_count() <= 1
}

/// Drops the last reference to a server after the current call has returned (a deferred call),
/// so that Godot never destroys the object while one of its methods runs.
fn release_later(mut gd: Gd<WebSocketServer>) {
    let main = godot::classes::Os::singleton().get_main_thread_id();
    if godot::classes::Os::singleton().get_thread_caller_id() == main {
        gd.run_deferred_gd(drop);
    } else {
        // Off the main thread there is no deferred call to ride on; keeping the (stopped) object
        // is a small leak, destroying it here would abort the engine.
        std::mem::forget(gd);
    }
}
