//! A peer: one message (`Packet`), its state, and one open connection's state as both threads
//! see it: its queues' counters (and the pausing of
//! reading when the game's queue is full), its limits, its totals, and the messages the game was
//! told about and has not read yet.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::*};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::Limits;
use tungstenite::Bytes;

use crate::ids::PeerId;
use crate::request::Request;
use crate::stats::{bump, shift, Totals};

/// One whole WebSocket message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub data: Bytes,
    pub text: bool,
    /// A message to a client: it may be compressed (permessage-deflate, where agreed). `false`:
    /// the game asked for it to go as it is (a secret beside text an attacker chose, RFC 7692 §8).
    pub compress: bool,
}

/// How the game sends a message: text or binary, and whether it may be compressed. A `bool` is
/// text (`true`) or binary, compressed where agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub text: bool,
    pub compress: bool,
}

impl From<bool> for Kind {
    fn from(text: bool) -> Kind {
        Kind { text, compress: true }
    }
}

impl Packet {
    /// A message of that kind.
    pub fn new(data: Bytes, kind: impl Into<Kind>) -> Packet {
        let Kind { text, compress } = kind.into();
        Packet { data, text, compress }
    }

    /// A message the game gives: a text message must be UTF-8 (RFC 6455 §5.6). `None` if not.
    pub fn checked(data: Bytes, kind: impl Into<Kind>) -> Option<Packet> {
        let packet = Packet::new(data, kind);
        Packet::is_valid(&packet.data, packet.text).then_some(packet)
    }

    /// Whether `data` may be sent as it is: binary, or text in UTF-8.
    pub fn is_valid(data: &[u8], text: bool) -> bool {
        !text || std::str::from_utf8(data).is_ok()
    }
}

/// A peer's state as both threads see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PeerState {
    Open = 0,
    /// A Close frame was sent or received; no more messages may be sent.
    Closing = 1,
    Closed = 2,
}

#[derive(Debug, Default)]
struct Inbound {
    bytes: usize,
    packets: usize,
    /// The I/O thread stopped reading because the queue was full.
    paused: bool,
}

impl Inbound {
    fn full(&self, limits: &Limits) -> bool {
        self.packets >= limits.max_queued_packets || self.bytes >= limits.inbound_buffer_size
    }
}

/// One open connection's counters, shared by the threads.
#[derive(Debug)]
pub struct PeerShared {
    pub id: PeerId,
    /// The client's address (behind trusted proxies, the one they report).
    pub addr: SocketAddr,
    /// The upgrade request it came with.
    pub request: Arc<Request>,
    pub limits: Limits,
    state: AtomicU8,
    /// Inbound counters and the paused flag change together under one lock, so the hand-over
    /// between "the I/O thread pauses" and "the game drains" cannot lose a resume on any CPU.
    inbound: crate::sync::Mutex<Inbound>,
    out_bytes: AtomicUsize,
    out_packets: AtomicUsize,
    /// The last round trip measured by the heartbeat, in microseconds (`u64::MAX`: none yet).
    round_trip_us: std::sync::atomic::AtomicU64,
    /// The messages the game has been told about (`data_received`) and not yet read. Only the game
    /// thread touches it; it lives here so that a peer object outlives the server's table.
    pub inbox: Mutex<std::collections::VecDeque<Packet>>,
    /// This peer's totals since it connected (messages and payload bytes each way).
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// When the upgrade finished.
    pub connected_at: std::time::Instant,
    /// The server's statistics, which this peer's counts also go into.
    totals: Arc<Totals>,
}

impl PeerShared {
    pub fn new(id: PeerId, request: Arc<Request>, limits: Limits) -> PeerShared {
        PeerShared {
            id,
            addr: request.client_addr,
            request,
            limits,
            state: AtomicU8::new(PeerState::Open as u8),
            inbound: crate::sync::Mutex::new(Inbound::default()),
            out_bytes: AtomicUsize::new(0),
            out_packets: AtomicUsize::new(0),
            round_trip_us: std::sync::atomic::AtomicU64::new(u64::MAX),
            inbox: Mutex::new(Default::default()),
            messages_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            connected_at: std::time::Instant::now(),
            totals: Default::default(),
        }
    }

    /// Counts this peer into the server's statistics.
    pub fn with_totals(mut self, totals: Arc<Totals>) -> PeerShared {
        self.totals = totals;
        self
    }

    /// Messages and bytes received and not yet read by the game.
    pub fn inbound_queued(&self) -> (usize, usize) {
        let i = self.inbound.lock();
        (i.packets, i.bytes)
    }

    /// Messages and bytes sent by the game and not yet written to the socket.
    pub fn outbound_queued(&self) -> (usize, usize) {
        (self.out_packets.load(Acquire), self.out_bytes.load(Acquire))
    }

    /// I/O thread: messages totalling `len` payload bytes were written to the socket.
    pub fn sent(&self, len: usize, packets: usize) {
        bump(&self.messages_out, packets);
        bump(&self.bytes_out, len);
        bump(&self.totals.messages_out, packets);
        bump(&self.totals.bytes_out, len);
    }

    pub fn state(&self) -> PeerState {
        match self.state.load(Acquire) {
            0 => PeerState::Open,
            1 => PeerState::Closing,
            _ => PeerState::Closed,
        }
    }

    /// Moves the state forward only (Open → Closing → Closed).
    pub fn advance(&self, to: PeerState) {
        self.state.fetch_max(to as u8, AcqRel);
    }

    // ---- inbound: counted from the moment the I/O thread reads a message until the game reads it.

    pub fn inbound_full(&self) -> bool {
        self.inbound.lock().full(&self.limits)
    }

    /// I/O thread: a message was read.
    pub fn add_inbound(&self, len: usize) {
        let mut i = self.inbound.lock();
        i.bytes += len;
        i.packets += 1;
        drop(i);
        bump(&self.messages_in, 1);
        bump(&self.bytes_in, len);
        bump(&self.totals.messages_in, 1);
        bump(&self.totals.bytes_in, len);
        shift(&self.totals.queued_in_messages, 1);
        shift(&self.totals.queued_in_bytes, len as i64);
    }

    /// I/O thread: the queue is full. Returns true if reading must stop (a `Resume` will come);
    /// false if the game drained the queue meanwhile (reading goes on).
    pub fn pause(&self) -> bool {
        let mut i = self.inbound.lock();
        i.paused = i.full(&self.limits);
        i.paused
    }

    /// Game thread: a message was read. Returns true if the I/O thread must be told to resume.
    pub fn sub_inbound(&self, len: usize) -> bool {
        shift(&self.totals.queued_in_messages, -1);
        shift(&self.totals.queued_in_bytes, -(len as i64));
        let mut i = self.inbound.lock();
        i.bytes -= len;
        i.packets -= 1;
        let resume = i.paused && !i.full(&self.limits);
        if resume {
            i.paused = false;
        }
        resume
    }

    // ---- outbound: counted from `put_packet` until the bytes are written to the socket.

    /// Game thread: reserve room for one message of `len` bytes, or say which limit it breaks.
    pub fn reserve_outbound(&self, len: usize) -> Result<(), &'static str> {
        if self.out_packets.load(Acquire) + 1 > self.limits.max_queued_packets {
            return Err("max_queued_packets");
        }
        if self.out_bytes.load(Acquire) + len > self.limits.outbound_buffer_size {
            return Err("outbound_buffer_size");
        }
        self.out_bytes.fetch_add(len, AcqRel);
        self.out_packets.fetch_add(1, AcqRel);
        shift(&self.totals.queued_out_messages, 1);
        shift(&self.totals.queued_out_bytes, len as i64);
        Ok(())
    }

    /// I/O thread: messages totalling `len` bytes reached the socket (or were discarded because
    /// the connection closed).
    pub fn sub_outbound(&self, len: usize, packets: usize) {
        self.out_bytes.fetch_sub(len, AcqRel);
        self.out_packets.fetch_sub(packets, AcqRel);
        shift(&self.totals.queued_out_messages, -(packets as i64));
        shift(&self.totals.queued_out_bytes, -(len as i64));
    }

    /// I/O thread: the heartbeat measured a round trip.
    pub fn set_round_trip(&self, rtt: std::time::Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX - 1);
        self.round_trip_us.store(us, Relaxed);
    }

    /// The last round trip the heartbeat measured, if any.
    pub fn round_trip(&self) -> Option<std::time::Duration> {
        match self.round_trip_us.load(Relaxed) {
            u64::MAX => None,
            us => Some(std::time::Duration::from_micros(us)),
        }
    }

    pub fn outbound_bytes(&self) -> usize {
        self.out_bytes.load(Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(limits: Limits) -> PeerShared {
        PeerShared::new(2, Default::default(), limits)
    }

    #[test]
    fn outbound_limits_refuse_and_release() {
        let p = peer(Limits {
            inbound_buffer_size: 10,
            outbound_buffer_size: 10,
            max_queued_packets: 2,
        });
        assert_eq!(p.reserve_outbound(11), Err("outbound_buffer_size"));
        assert_eq!(p.reserve_outbound(6), Ok(()));
        assert_eq!(p.reserve_outbound(5), Err("outbound_buffer_size"));
        assert_eq!(p.reserve_outbound(4), Ok(()));
        assert_eq!(p.reserve_outbound(0), Err("max_queued_packets"));
        assert_eq!(p.outbound_bytes(), 10);
        p.sub_outbound(10, 2);
        assert_eq!(p.reserve_outbound(10), Ok(()));
    }

    #[test]
    fn pause_and_resume_hand_over_exactly_once() {
        let p = peer(Limits {
            inbound_buffer_size: 100,
            outbound_buffer_size: 10,
            max_queued_packets: 2,
        });
        p.add_inbound(1);
        assert!(!p.inbound_full());
        p.add_inbound(1);
        assert!(p.inbound_full());
        assert!(p.pause(), "full: reading stops");
        assert!(p.sub_inbound(1), "drained below the limit: resume once");
        assert!(!p.sub_inbound(1), "already resumed");

        // The game drains between the I/O thread's check and its pause: no Resume is owed.
        p.add_inbound(1);
        p.add_inbound(1);
        assert!(p.inbound_full());
        p.sub_inbound(1); // not paused yet, so no resume
        assert!(!p.pause(), "no longer full: keep reading");
        assert!(!p.sub_inbound(1));
    }

    #[test]
    fn state_only_moves_forward() {
        let p = peer(Limits::default());
        p.advance(PeerState::Closing);
        p.advance(PeerState::Open);
        assert_eq!(p.state(), PeerState::Closing);
        p.advance(PeerState::Closed);
        assert_eq!(p.state(), PeerState::Closed);
    }
}
