//! The two hand-overs between the game thread and the I/O thread, under loom's model checker,
//! which runs every interleaving (and every weak-memory outcome loom models). Built only with
//! `RUSTFLAGS="--cfg loom"` (scripts/test.sh runs it):
//!
//! - pause/resume: the I/O thread stops reading a peer whose queue is full exactly when the game,
//!   draining that queue, will tell it to resume; never one without the other (a lost resume
//!   would stall the peer forever; a spurious one would read past the limit).
//! - the accept gate: when the I/O thread stops accepting because the game has not taken its
//!   events, the game's next take wakes it (a lost wake would stop accepting for good).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use wss_core::channel::AcceptGate;
use wss_core::peer::PeerShared;
use wss_core::Limits;

fn full_peer(max_queued_packets: usize, queued: usize) -> Arc<PeerShared> {
    let p = PeerShared::new(
        2,
        Default::default(),
        Limits {
            inbound_buffer_size: 1 << 20,
            outbound_buffer_size: 1 << 20,
            max_queued_packets,
        },
    );
    for _ in 0..queued {
        p.add_inbound(1);
    }
    Arc::new(p)
}

#[test]
fn a_pause_is_resumed_exactly_when_the_game_drains() {
    loom::model(|| {
        let p = full_peer(1, 1);
        let io = {
            let p = p.clone();
            thread::spawn(move || p.inbound_full() && p.pause())
        };
        let resumed = p.sub_inbound(1);
        let paused = io.join().unwrap();
        assert_eq!(paused, resumed, "paused {paused}, resumed {resumed}");
    });
}

#[test]
fn two_drains_resume_once() {
    loom::model(|| {
        let p = full_peer(2, 2);
        let io = {
            let p = p.clone();
            thread::spawn(move || p.inbound_full() && p.pause())
        };
        let first = p.sub_inbound(1);
        let second = p.sub_inbound(1);
        let paused = io.join().unwrap();
        assert!(!(first && second), "resumed twice");
        assert_eq!(paused, first || second);
    });
}

#[test]
fn a_closed_gate_is_always_woken() {
    loom::model(|| {
        let gate = Arc::new(AcceptGate::new(1));
        gate.published(1);
        let io = {
            let gate = gate.clone();
            thread::spawn(move || gate.full(0))
        };
        let wake = gate.taken();
        let waits = io.join().unwrap();
        assert!(!waits || wake, "the I/O thread waits for a wake that never comes");
    });
}
