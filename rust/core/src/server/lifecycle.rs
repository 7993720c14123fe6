//! The server's life: whether it runs, the graceful shutdown, and the plain stop.

use std::thread::JoinHandle;
use std::time::Duration;

use super::{run_inline, Io, Server};
use crate::config::IoMode;
use crate::error::ShutdownError;
use crate::event::{Command, PeerState};
use crate::peer_handle::MAX_CLOSE_REASON;

impl Server {
    pub fn is_running(&self) -> bool {
        self.io.is_some()
    }

    /// Running and not shutting down.
    pub fn is_listening(&self) -> bool {
        self.io.is_some() && !self.shutting_down
    }

    /// Begins a graceful shutdown: the listener is closed before this returns (the port is free),
    /// then every client gets a Close with `code` and `reason` after what is already queued for
    /// it, requests waiting for a decision are answered `503`, and clients still connected after
    /// `timeout` are dropped. `poll` goes on reporting the disconnects as the close handshakes
    /// finish; once the last one has been taken, `is_shut_down` is true and the server should be
    /// stopped. Returns the reason cut to the 123 bytes a Close frame carries (`true` if it was).
    pub fn shut_down(&mut self, code: u16, reason: &str, timeout: Duration) -> Result<bool, ShutdownError> {
        if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
            return Err(ShutdownError::BadCode(code));
        }
        if self.shutting_down {
            return Err(ShutdownError::AlreadyShuttingDown);
        }
        let Some(io) = &mut self.io else {
            return Err(ShutdownError::NotListening);
        };
        let mut end = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let cut = end < reason.len();
        let reason = &reason[..end];
        self.shutting_down = true;
        for peer in self.peers.values() {
            if peer.state() == PeerState::Open {
                peer.shared.advance(PeerState::Closing);
            }
        }
        match io {
            Io::Thread(_) => {
                self.channel.command(Command::ShutDown {
                    code,
                    reason: reason.to_owned(),
                    timeout,
                });
                // Now, not after the game's frame: the port must be free when this returns.
                self.channel.release_wakes();
                if !self.channel.io.wait_listener_closed(Duration::from_secs(5)) {
                    // Never seen (the I/O thread is stuck): a plain stop frees the port.
                    self.stop();
                    return Err(ShutdownError::Stuck);
                }
            }
            Io::Inline { driver, .. } => {
                run_inline(driver, &self.channel, |d| d.shut_down_now(code, reason, timeout));
            }
        }
        Ok(cut)
    }

    /// A graceful shutdown has begun and is not over.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down && self.io.is_some()
    }

    /// A graceful shutdown is over: no connection is left and every signal about them has been
    /// taken. Stop the server now.
    pub fn is_shut_down(&self) -> bool {
        self.drained && self.to_signal.is_empty()
    }

    /// Where this server does its socket work.
    pub fn io_mode(&self) -> Option<IoMode> {
        match self.io {
            Some(Io::Thread(_)) => Some(IoMode::Thread),
            Some(Io::Inline { .. }) => Some(IoMode::Inline),
            None => None,
        }
    }

    /// Closes the listener and every connection (no close handshake, no signals). Returns once
    /// the port is free; the I/O thread closes the connections and ends on its own, and is joined
    /// later (`join_stopped_io_threads`). Peer objects kept by the game report `Closed`.
    pub fn stop(&mut self) {
        let Some(io) = self.io.take() else {
            return;
        };
        self.channel.stop();
        match io {
            Io::Thread(thread) => {
                if !self.channel.io.wait_listener_closed(std::time::Duration::from_secs(5)) {
                    // Never seen; joining is the last resort that still frees the port.
                    let _ = thread.join();
                } else {
                    join_later(thread);
                }
            }
            // Closes the listener and every socket here and now.
            Io::Inline { driver, .. } => drop(driver),
        }
        for peer in self.peers.values() {
            peer.shared.advance(PeerState::Closed);
        }
        self.peers.clear();
        self.requests.clear();
        self.to_signal.clear();
        self.failing.clear();
        self.fail_next.clear();
        self.failing_unread.clear();
        self.shutting_down = false;
        self.drained = false;
    }
}

/// I/O threads of stopped servers that may still be closing their connections (and inline
/// servers' memory-trimming threads).
static STOPPED_THREADS: parking_lot::Mutex<Vec<JoinHandle<()>>> = parking_lot::Mutex::new(Vec::new());

/// Keeps `thread` to be joined by `join_stopped_io_threads` (forgetting those already ended).
pub(super) fn join_later(thread: JoinHandle<()>) {
    let mut stopped = STOPPED_THREADS.lock();
    stopped.retain(|t| !t.is_finished());
    stopped.push(thread);
}

/// Waits for the I/O threads of stopped servers to end. Call before the code of this library may
/// go away (the extension's deinitialisation), so that no thread runs it any more.
pub fn join_stopped_io_threads() {
    let threads = std::mem::take(&mut *STOPPED_THREADS.lock());
    for t in threads {
        let _ = t.join();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
