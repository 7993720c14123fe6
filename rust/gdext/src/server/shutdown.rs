//! The graceful shutdown (`shutdown()`, `shutdown_finished`) and the termination signals that can
//! start it (`shutdown_on_sigterm`).

use std::time::Duration;

use wss_core::ShutdownError;

use super::*;

#[godot_api(secondary)]
impl WebSocketServer {
    /// Shuts the server down gracefully, for a restart or a deploy: the listener closes before
    /// this returns (the port is free for a new process at once; [method is_listening] is
    /// [code]false[/code]), every client gets a Close frame with [param code] and [param reason]
    /// after whatever is already queued for it, upgrade requests still waiting for
    /// [method accept_upgrade] are answered [code]503[/code] ([signal upgrade_cancelled]), and
    /// requests not yet complete are dropped. Keep calling [method MultiplayerPeer.poll]: it emits
    /// [signal client_disconnected] (multiplayer: [signal MultiplayerPeer.peer_disconnected]) as
    /// each close handshake finishes, and clients still connected after [param timeout] seconds
    /// (default [member shutdown_timeout]) are dropped ([code]was_clean_close == false[/code]).
    /// When the last one is gone, the server stops as [method stop] would and
    /// [signal shutdown_finished] is emitted.
    /// [codeblock]
    /// server.shutdown_finished.connect(get_tree().quit)
    /// server.shutdown()  # 1001 "going away": browsers and clients reconnect elsewhere
    /// [/codeblock]
    /// [param code] 1001 ("going away") tells clients the server is leaving, not that they did
    /// anything wrong; any code [method disconnect_peer] accepts may be given. Messages sent after
    /// this call are refused, as to any closing peer. In [code]queue_messages[/code] mode the last
    /// clients' messages stay readable until the [code]poll()[/code] after their
    /// [signal client_disconnected]. [method stop] still ends everything at once (and then
    /// [signal shutdown_finished] is not emitted).
    ///
    /// Returns [constant @GlobalScope.ERR_UNCONFIGURED] if not listening,
    /// [constant @GlobalScope.ERR_BUSY] if already shutting down,
    /// [constant @GlobalScope.ERR_INVALID_PARAMETER] for a code that may not be sent or a bad
    /// timeout. [i]Not in Godot.[/i]
    #[func]
    fn shutdown(
        &mut self,
        #[opt(default = 1001)] code: i64,
        #[opt(default = "")] reason: GString,
        #[opt(default = -1.0)] timeout: f64,
    ) -> Error {
        let timeout = if timeout < 0.0 { self.shutdown_timeout } else { timeout };
        let timeout = match seconds("shutdown timeout", timeout) {
            Ok(t) => t,
            Err(e) => {
                godot_error!("WebSocketServer: {e}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        let Ok(code) = u16::try_from(code) else {
            godot_error!("WebSocketServer: close code {code} may not be sent (1000-1003, 1007-1014, 3000-4999)");
            return Error::ERR_INVALID_PARAMETER;
        };
        self.begin_shutdown(code, &reason.to_string(), timeout)
    }

    /// [code]true[/code] from [method shutdown] until [signal shutdown_finished]. [i]Not in
    /// Godot.[/i]
    #[func]
    fn is_shutting_down(&self) -> bool {
        self.server.as_ref().is_some_and(Server::is_shutting_down)
    }
}

impl WebSocketServer {
    pub(super) fn change_shutdown_timeout(&mut self, value: f64) {
        match seconds("shutdown_timeout", value) {
            Ok(_) => self.shutdown_timeout = value,
            Err(e) => godot_error!("WebSocketServer: {e}"),
        }
    }

    pub(super) fn change_shutdown_on_sigterm(&mut self, value: bool) {
        if value == self.shutdown_on_sigterm {
            return;
        }
        if value && !termination::SUPPORTED {
            godot_warn!("WebSocketServer: shutdown_on_sigterm has no effect on this platform (no SIGTERM)");
        }
        self.shutdown_on_sigterm = value;
        if self.server.is_some() {
            self.arm_termination(value);
        }
    }

    pub(super) fn begin_shutdown(&mut self, code: u16, reason: &str, timeout: Duration) -> Error {
        let Some(server) = self.server.as_mut() else {
            godot_error!("WebSocketServer: shutdown(): not listening");
            return Error::ERR_UNCONFIGURED;
        };
        match server.shut_down(code, reason, timeout) {
            Ok(cut) => {
                if cut {
                    godot_warn!("WebSocketServer: close reason cut to 123 bytes (the most a Close frame carries)");
                }
                Error::OK
            }
            Err(e) => {
                godot_error!("WebSocketServer: shutdown(): {e}");
                match e {
                    ShutdownError::NotListening => Error::ERR_UNCONFIGURED,
                    ShutdownError::AlreadyShuttingDown => Error::ERR_BUSY,
                    ShutdownError::BadCode(_) => Error::ERR_INVALID_PARAMETER,
                    ShutdownError::Stuck => {
                        self.stop();
                        Error::ERR_TIMEOUT
                    }
                }
            }
        }
    }

    /// `poll()`, first: a termination signal starts the shutdown (`shutdown_on_sigterm`).
    pub(super) fn check_termination(&mut self) {
        if self.termination_armed && termination::requested() && self.server.as_ref().is_some_and(Server::is_listening)
        {
            godot_print!(
                "WebSocketServer: termination signal received: shutting down (a second one ends the process at once)"
            );
            let timeout = Duration::from_secs_f64(self.shutdown_timeout);
            self.begin_shutdown(1001, "server shutting down", timeout);
        }
    }

    /// `poll()`, last: whether a shutdown is over (or its I/O thread died) and the server should
    /// stop now with `shutdown_finished`. In queue mode, messages still queued get one more
    /// frame to be taken.
    pub(super) fn shutdown_over(&mut self) -> bool {
        let Some(server) = self.server.as_ref() else {
            return false;
        };
        if !server.is_shutting_down() || !(server.is_shut_down() || server.is_dead()) {
            return false;
        }
        if server.queued_packets() > 0 && !self.shutdown_grace {
            self.shutdown_grace = true;
            return false;
        }
        true
    }

    /// Takes part in (or leaves) the process's handling of SIGTERM and SIGINT.
    pub(super) fn arm_termination(&mut self, arm: bool) {
        if arm == self.termination_armed {
            return;
        }
        if arm && godot::classes::Engine::singleton().is_editor_hint() {
            // The editor may reload this library (`reloadable`), and a signal handler must never
            // outlive its code; a server run from the editor (F5) is a process of its own.
            godot_warn!("WebSocketServer: shutdown_on_sigterm is not applied inside the editor");
            return;
        }
        if arm {
            if let Err(e) = termination::arm() {
                godot_error!("WebSocketServer: cannot handle termination signals: {e}");
                return;
            }
        } else {
            termination::disarm();
        }
        self.termination_armed = arm;
    }
}

/// SIGTERM (a container stop, systemd, `kill`) and SIGINT (Ctrl+C) for `shutdown_on_sigterm`.
/// Godot installs no handler for them, so by default either ends the process at once. While at
/// least one server that asked for it is listening, the first one only sets a flag that those
/// servers' `poll()` reads; a second one, or one that comes while no such server listens, has the
/// default effect. The handlers (signal-hook) stay installed for the life of the process.
#[cfg(unix)]
mod termination {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    pub const SUPPORTED: bool = true;

    struct Flags {
        /// A signal came while armed.
        requested: Arc<AtomicBool>,
        /// No server is armed: the default action.
        unarmed: Arc<AtomicBool>,
    }

    static FLAGS: OnceLock<Result<Flags, String>> = OnceLock::new();
    static ARMED: Mutex<usize> = Mutex::new(0);

    fn flags() -> Result<&'static Flags, String> {
        FLAGS
            .get_or_init(|| {
                let f = Flags {
                    requested: Arc::new(AtomicBool::new(false)),
                    unarmed: Arc::new(AtomicBool::new(true)),
                };
                for sig in [SIGTERM, SIGINT] {
                    // In this order: a second signal, or one nobody handles, acts as if there were
                    // no handler; otherwise the flag is set.
                    flag::register_conditional_default(sig, f.requested.clone()).map_err(|e| e.to_string())?;
                    flag::register_conditional_default(sig, f.unarmed.clone()).map_err(|e| e.to_string())?;
                    flag::register(sig, f.requested.clone()).map_err(|e| e.to_string())?;
                }
                Ok(f)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn arm() -> Result<(), String> {
        let f = flags()?;
        let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
        *armed += 1;
        f.unarmed.store(false, Ordering::SeqCst);
        Ok(())
    }

    pub fn disarm() {
        let Ok(f) = flags() else { return };
        let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
        *armed = armed.saturating_sub(1);
        if *armed == 0 {
            f.unarmed.store(true, Ordering::SeqCst);
        }
    }

    pub fn requested() -> bool {
        FLAGS
            .get()
            .and_then(|f| f.as_ref().ok())
            .is_some_and(|f| f.requested.load(Ordering::Relaxed))
    }
}

#[cfg(not(unix))]
mod termination {
    pub const SUPPORTED: bool = false;

    pub fn arm() -> Result<(), String> {
        Ok(())
    }

    pub fn disarm() {}

    pub fn requested() -> bool {
        false
    }
}
