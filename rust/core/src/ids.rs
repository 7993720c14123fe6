//! Peer ids: random in 2 ..= 2^31-1, as Godot's are, and unlike Godot's, unique among live peers.
//! An id stays taken until the game thread has seen its `Disconnected` (see `Command::Release`),
//! so a new peer can never be confused with one the game still knows.

use std::collections::HashSet;

use rand::{Rng, RngCore, SeedableRng};

/// A peer's id as Godot sees it: 2 ..= 2^31-1 (1 is the server, 0 "everyone").
pub type PeerId = i32;

pub struct IdAllocator {
    rng: Box<dyn RngCore + Send>,
    live: HashSet<PeerId>,
}

impl IdAllocator {
    /// Seeded from the OS.
    pub fn new() -> IdAllocator {
        IdAllocator::with_rng(Box::new(rand::rngs::SmallRng::from_os_rng()))
    }

    pub fn with_rng(rng: Box<dyn RngCore + Send>) -> IdAllocator {
        IdAllocator {
            rng,
            live: HashSet::new(),
        }
    }

    pub fn allocate(&mut self) -> PeerId {
        loop {
            let id = self.rng.random_range(2..=i32::MAX);
            if self.live.insert(id) {
                return id;
            }
        }
    }

    pub fn release(&mut self, id: PeerId) {
        self.live.remove(&id);
    }

    pub fn live(&self) -> usize {
        self.live.len()
    }
}

impl Default for IdAllocator {
    fn default() -> Self {
        IdAllocator::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RNG that repeats a cycle of three draws, so that ids collide often.
    struct Cycle(usize);
    impl RngCore for Cycle {
        fn next_u32(&mut self) -> u32 {
            self.0 += 1;
            [0, 1 << 31, 3 << 30][self.0 % 3]
        }
        fn next_u64(&mut self) -> u64 {
            self.next_u32() as u64
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            rand::rand_core::impls::fill_bytes_via_next(self, dest)
        }
    }

    #[test]
    fn ids_are_in_range_and_unique_among_live_peers() {
        let mut ids = IdAllocator::new();
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = ids.allocate();
            assert!(id >= 2, "{id}");
            assert!(seen.insert(id), "duplicate live id {id}");
        }
    }

    #[test]
    fn colliding_draws_are_retried_and_released_ids_reused() {
        let mut ids = IdAllocator::with_rng(Box::new(Cycle(0)));
        let a = ids.allocate();
        let b = ids.allocate();
        let c = ids.allocate();
        assert_eq!(HashSet::from([a, b, c]).len(), 3, "three live peers, three ids");
        ids.release(b);
        assert_eq!(ids.allocate(), b, "the only free id in the cycle");
        assert_eq!(ids.live(), 3);
    }
}
