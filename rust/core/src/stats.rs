//! The server's statistics: counters and gauges both threads update without a lock, read by the
//! game at any time.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Server-wide statistics, counted on the I/O thread (and by the game thread's sends and reads as
/// they happen), read by the game at any time without a lock. Totals count since `listen`; the
/// `queued_*` and connection figures are the present state.
#[derive(Debug, Default)]
pub struct Totals {
    /// TCP connections taken on (not refused).
    pub accepted: AtomicU64,
    /// Connections refused by `max_connections`, `max_handshakes_per_address` or
    /// `refuse_new_connections`.
    pub refused: AtomicU64,
    /// Connections that did not finish the upgrade within `handshake_timeout` (including requests
    /// the game did not decide on in time).
    pub timed_out: AtomicU64,
    /// Peers dropped because they did not answer the heartbeat.
    pub heartbeat_dropped: AtomicU64,
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Messages and their bytes written to the sockets (payload, without framing).
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Received messages the game has not read yet.
    pub queued_in_messages: AtomicI64,
    pub queued_in_bytes: AtomicI64,
    /// Messages sent by the game and not yet written to the sockets.
    pub queued_out_messages: AtomicI64,
    pub queued_out_bytes: AtomicI64,
    /// Connections upgraded and not yet gone.
    pub open: AtomicI64,
    /// Connections still in their handshake (PROXY header, request, the game's decision).
    pub handshaking: AtomicI64,
}

/// Adds to a statistic.
pub fn bump(counter: &AtomicU64, by: usize) {
    counter.fetch_add(by as u64, Relaxed);
}

pub(crate) fn shift(gauge: &AtomicI64, by: i64) {
    gauge.fetch_add(by, Relaxed);
}

/// Reads a statistic.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Relaxed)
}

/// Reads a gauge (never below 0 to the reader).
pub fn gauge(g: &AtomicI64) -> u64 {
    g.load(Relaxed).max(0) as u64
}

impl Totals {
    /// The game thread's or I/O thread's note that a connection moved between handshaking (`h`)
    /// and open (`o`).
    pub fn connections(&self, h: i64, o: i64) {
        shift(&self.handshaking, h);
        shift(&self.open, o);
    }
}

/// The server's statistics at one moment, each under the name the game knows it by (the keys of
/// `get_stats` and the Performance monitors).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections_open: u64,
    pub connections_handshaking: u64,
    pub accepted_total: u64,
    pub refused_total: u64,
    pub timed_out_total: u64,
    pub heartbeat_dropped_total: u64,
    pub messages_in_total: u64,
    pub bytes_in_total: u64,
    pub messages_out_total: u64,
    pub bytes_out_total: u64,
    pub messages_queued_in: u64,
    pub bytes_queued_in: u64,
    pub messages_queued_out: u64,
    pub bytes_queued_out: u64,
}

impl Stats {
    /// Every statistic's name, in the order `named` lists them.
    pub const NAMES: [&'static str; 14] = [
        "connections_open",
        "connections_handshaking",
        "accepted_total",
        "refused_total",
        "timed_out_total",
        "heartbeat_dropped_total",
        "messages_in_total",
        "bytes_in_total",
        "messages_out_total",
        "bytes_out_total",
        "messages_queued_in",
        "bytes_queued_in",
        "messages_queued_out",
        "bytes_queued_out",
    ];

    /// Every statistic with its name.
    pub fn named(&self) -> [(&'static str, u64); 14] {
        let values = [
            self.connections_open,
            self.connections_handshaking,
            self.accepted_total,
            self.refused_total,
            self.timed_out_total,
            self.heartbeat_dropped_total,
            self.messages_in_total,
            self.bytes_in_total,
            self.messages_out_total,
            self.bytes_out_total,
            self.messages_queued_in,
            self.bytes_queued_in,
            self.messages_queued_out,
            self.bytes_queued_out,
        ];
        let mut named = [("", 0); 14];
        for (slot, (name, value)) in named.iter_mut().zip(Stats::NAMES.into_iter().zip(values)) {
            *slot = (name, value);
        }
        named
    }
}

impl Totals {
    /// The statistics now.
    pub fn snapshot(&self) -> Stats {
        Stats {
            connections_open: gauge(&self.open),
            connections_handshaking: gauge(&self.handshaking),
            accepted_total: read(&self.accepted),
            refused_total: read(&self.refused),
            timed_out_total: read(&self.timed_out),
            heartbeat_dropped_total: read(&self.heartbeat_dropped),
            messages_in_total: read(&self.messages_in),
            bytes_in_total: read(&self.bytes_in),
            messages_out_total: read(&self.messages_out),
            bytes_out_total: read(&self.bytes_out),
            messages_queued_in: gauge(&self.queued_in_messages),
            bytes_queued_in: gauge(&self.queued_in_bytes),
            messages_queued_out: gauge(&self.queued_out_messages),
            bytes_queued_out: gauge(&self.queued_out_bytes),
        }
    }
}
