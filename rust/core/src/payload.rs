//! The game's outgoing messages, copied out of Godot's buffers into shared chunks.
//!
//! Every message the game sends is copied once (Godot's array belongs to the script) and freed
//! after the I/O thread has formatted it into the connection's output queue. With one allocation
//! per message, each was made on the game thread and freed on the I/O thread, and glibc returns a
//! chunk to the arena it came from under that arena's lock: the two threads contended on it about
//! once every 16 messages (issue 23's profile, `bench/profile-process.md`). Small messages are
//! therefore copied into a chunk of [`CHUNK`] bytes that many messages share, each a slice of it;
//! a chunk is freed once its last message has been formatted, one cross-thread free per chunk
//! instead of one per message, and the game thread allocates once per chunk.
//!
//! Memory: the chunk being filled, plus the chunks still referenced by commands the I/O thread
//! has not taken (the output queues hold copies, never these slices). A message larger than
//! [`OWN_ALLOCATION`] gets an allocation of its own, so a large message never pins a chunk and
//! a chunk is never wasted on one.

use bytes::{Bytes, BytesMut};

/// Bytes per shared chunk (under glibc's mmap threshold, so chunks come from the heap).
pub const CHUNK: usize = 64 * 1024;

/// Messages larger than this are copied into their own allocation.
pub const OWN_ALLOCATION: usize = 4 * 1024;

/// The chunk being filled; one per server, used from the game's thread.
#[derive(Debug, Default)]
pub struct Payloads {
    chunk: BytesMut,
}

impl Payloads {
    /// A copy of `data` that the I/O thread may free: a slice of the current chunk, or its own
    /// allocation if large.
    pub fn copy(&mut self, data: &[u8]) -> Bytes {
        if data.is_empty() {
            return Bytes::new();
        }
        if data.len() > OWN_ALLOCATION {
            return Bytes::copy_from_slice(data);
        }
        if self.chunk.capacity() - self.chunk.len() < data.len() {
            // The full chunk stays alive only through its messages' slices.
            self.chunk = BytesMut::with_capacity(CHUNK);
        }
        self.chunk.extend_from_slice(data);
        self.chunk.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_messages_share_a_chunk_and_keep_their_bytes() {
        let mut p = Payloads::default();
        let a = p.copy(b"hello");
        let b = p.copy(b"world!");
        assert_eq!((&a[..], &b[..]), (&b"hello"[..], &b"world!"[..]));
        // Adjacent slices of one allocation.
        assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr());
    }

    #[test]
    fn a_full_chunk_is_replaced_and_its_messages_survive() {
        let mut p = Payloads::default();
        let msg = [7u8; OWN_ALLOCATION];
        let per_chunk = CHUNK / OWN_ALLOCATION;
        let kept: Vec<Bytes> = (0..per_chunk + 2).map(|_| p.copy(&msg)).collect();
        assert!(kept.iter().all(|b| b[..] == msg[..]));
        let follows = |i: usize| kept[i - 1].as_ptr().wrapping_add(OWN_ALLOCATION) == kept[i].as_ptr();
        assert!(
            (1..per_chunk).all(follows),
            "the first chunk holds {per_chunk} messages"
        );
        assert!(!follows(per_chunk), "the next message starts a new chunk");
        assert!(follows(per_chunk + 1));
    }

    #[test]
    fn large_and_empty_messages_do_not_touch_the_chunk() {
        let mut p = Payloads::default();
        let big = vec![1u8; OWN_ALLOCATION + 1];
        assert_eq!(p.copy(&big)[..], big[..]);
        assert!(p.copy(&[]).is_empty());
        assert_eq!(p.chunk.capacity(), 0);
    }
}
