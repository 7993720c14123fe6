//! The I/O side's state as the game thread sees it: stopping, refusing new connections, the
//! listener closed, a failure (the I/O thread died), and the lines it has for the game's log.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};

use parking_lot::Mutex;

/// Log lines from the I/O thread (`Channel::notice`) kept for the game's next `poll()`.
pub const MAX_NOTICES: usize = 64;

#[derive(Debug, Default)]
pub struct IoState {
    stopping: AtomicBool,
    /// New TCP connections are closed at once (`refuse_new_connections`).
    refusing: AtomicBool,
    /// Set by the I/O thread if it ended on its own (a panic); read by the game thread's poll.
    failure: Mutex<Option<String>>,
    /// Set with `failure`: sends fail from then on, before the game has polled.
    failed: AtomicBool,
    /// Messages for the game's log (`true`: an error): accept failing, and recovering.
    notices: Mutex<Vec<(bool, String)>>,
    /// `accept` calls that failed for lack of resources.
    accept_errors: AtomicU64,
    /// Set by the I/O thread once its listener is closed (see `Server::stop`).
    listener_closed: std::sync::Mutex<bool>,
    listener_closed_cv: std::sync::Condvar,
    /// Set by the I/O side once a graceful shutdown has no connection left, after publishing the
    /// events of the last ones (so a game that reads it before taking events has them all).
    drained: AtomicBool,
}

impl IoState {
    /// I/O thread: the listener is closed (or the thread is ending).
    pub fn listener_closed(&self) {
        *self.listener_closed.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.listener_closed_cv.notify_all();
    }

    /// Game thread: waits (at most `limit`) until the I/O thread has closed its listener.
    pub fn wait_listener_closed(&self, limit: std::time::Duration) -> bool {
        let closed = self.listener_closed.lock().unwrap_or_else(|e| e.into_inner());
        let (closed, _) = self
            .listener_closed_cv
            .wait_timeout_while(closed, limit, |closed| !*closed)
            .unwrap_or_else(|e| e.into_inner());
        *closed
    }

    /// I/O side: a graceful shutdown has no connection left (see `drained`).
    pub fn set_drained(&self) {
        self.drained.store(true, Release);
    }

    pub fn is_drained(&self) -> bool {
        self.drained.load(Acquire)
    }

    /// Game thread: the server stops (see `Channel::stop`, which also wakes the I/O thread).
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Release);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Acquire)
    }

    /// I/O thread: a line for the game's log.
    pub fn notice(&self, error: bool, text: String) {
        let mut notices = self.notices.lock();
        // A game that never polls must not let them pile up: past this many, later ones are
        // dropped (the counters still count).
        if notices.len() < MAX_NOTICES {
            notices.push((error, text));
        }
    }

    /// Game thread: the lines for the log since the last call.
    pub fn take_notices(&self) -> Vec<(bool, String)> {
        std::mem::take(&mut *self.notices.lock())
    }

    pub fn count_accept_error(&self) {
        self.accept_errors.fetch_add(1, Relaxed);
    }

    pub fn accept_errors(&self) -> u64 {
        self.accept_errors.load(Relaxed)
    }

    pub fn set_refusing(&self, refuse: bool) {
        self.refusing.store(refuse, Release);
    }

    pub fn is_refusing(&self) -> bool {
        self.refusing.load(Acquire)
    }

    pub fn set_failure(&self, why: String) {
        *self.failure.lock() = Some(why);
        self.failed.store(true, Release);
    }

    /// Whether the I/O thread died on its own.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Acquire)
    }

    pub fn take_failure(&self) -> Option<String> {
        self.failure.lock().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_for_a_game_that_never_polls_are_bounded() {
        let io = IoState::default();
        for i in 0..1000 {
            io.notice(i % 2 == 0, format!("notice {i}"));
        }
        let kept = io.take_notices();
        assert_eq!(kept.len(), MAX_NOTICES);
        assert_eq!(kept[0].1, "notice 0");
        assert!(io.take_notices().is_empty());
    }
}
