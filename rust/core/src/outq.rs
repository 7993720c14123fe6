//! The bytes one connection has waiting for its socket, and which of the game's messages they hold.
//!
//! tungstenite formats every frame (the game's messages, and the pongs and Close replies it makes
//! by itself) straight into this queue, so every byte that is not yet on the socket is counted
//! here, whatever produced it. The connection pauses reading while the queue is over the peer's
//! outbound limit, which is what bounds the answers to a client that sends pings and never reads.
//!
//! Written bytes are skipped by moving `head`, never by shifting the rest to the front on every
//! write: a slow reader with a large backlog costs in proportion to what is written, not to what
//! is left. The buffer is compacted only when the written part is at least half of it (so each
//! byte moves at most once on average), and its memory is given back once it has drained.

use std::collections::VecDeque;
use std::io::{self, Write};

/// Capacity kept when the queue empties; anything larger is freed (a 1 MiB message must not leave
/// 1 MiB behind on every connection it passed through).
const KEEP_CAPACITY: usize = 8 * 1024;

#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    buf: Vec<u8>,
    /// `buf[..head]` is already on the socket.
    head: usize,
    /// Bytes ever appended and ever written; message ends are positions in this count.
    appended: u64,
    written: u64,
    /// (end position, payload length) of each game message not yet completely written.
    marks: VecDeque<(u64, usize)>,
    /// A large buffer was given back since `take_shrunk`.
    shrunk: bool,
}

impl OutQueue {
    /// Bytes waiting for the socket.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Memory held, for the limit checks of tests and fuzzing.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.head > 0 && self.head * 2 >= self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(bytes);
        self.appended += bytes.len() as u64;
    }

    /// Appends at most `max` bytes read from `source` (a file being served); returns how many (0:
    /// the source has ended). The written part is dropped first, so the queue's memory stays
    /// within what it holds plus `max`.
    pub(crate) fn read_from(&mut self, source: &mut impl io::Read, max: usize) -> io::Result<usize> {
        if self.head > 0 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        let start = self.buf.len();
        self.buf.reserve_exact(max);
        self.buf.resize(start + max, 0);
        let read = loop {
            match source.read(&mut self.buf[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = *read.as_ref().unwrap_or(&0);
        self.buf.truncate(start + n);
        self.appended += n as u64;
        read
    }

    /// The bytes pushed since the last mark end a game message of `payload` bytes.
    pub(crate) fn mark_message(&mut self, payload: usize) {
        self.marks.push_back((self.appended, payload));
    }

    /// The bytes waiting for the socket, oldest first.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// `n` bytes of `pending()` are on the socket. Returns the (bytes, count) of game messages
    /// that are now completely written.
    pub(crate) fn advance(&mut self, n: usize) -> (usize, usize) {
        let n = n.min(self.len());
        self.head += n;
        self.written += n as u64;
        if self.head == self.buf.len() {
            self.head = 0;
            self.buf.clear();
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::with_capacity(KEEP_CAPACITY.min(1024));
                self.shrunk = true;
            }
        }
        self.release()
    }

    /// Whether a large buffer was given back since the last call.
    pub(crate) fn take_shrunk(&mut self) -> bool {
        std::mem::take(&mut self.shrunk)
    }

    /// Drops everything not yet written (the connection is gone). Returns the (bytes, count) of
    /// game messages that never made it.
    pub(crate) fn discard(&mut self) -> (usize, usize) {
        self.written = self.appended;
        self.buf = Vec::new();
        self.head = 0;
        self.release()
    }

    fn release(&mut self) -> (usize, usize) {
        let mut done = (0, 0);
        while let Some(&(end, len)) = self.marks.front() {
            if end > self.written {
                break;
            }
            self.marks.pop_front();
            done.0 += len;
            done.1 += 1;
        }
        done
    }
}

/// tungstenite formats frames straight into the queue: writing always succeeds.
impl Write for OutQueue {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_released_when_their_last_byte_is_written() {
        let mut q = OutQueue::default();
        q.push(b"\x82\x03abc");
        q.mark_message(3);
        q.push(b"\x8a\x00"); // a pong: counted in len, not a game message
        q.push(b"\x82\x02de");
        q.mark_message(2);
        assert_eq!(q.len(), 11);
        let mut got = q.pending()[..4].to_vec();
        assert_eq!(q.advance(4), (0, 0), "first message not complete yet");
        got.extend_from_slice(&q.pending()[..3]);
        assert_eq!(q.advance(3), (3, 1));
        got.extend_from_slice(q.pending());
        assert_eq!(q.advance(100), (2, 1), "more than is queued is all of it");
        assert!(q.is_empty());
        assert_eq!(got, b"\x82\x03abc\x8a\x00\x82\x02de");
    }

    #[test]
    fn memory_is_given_back_once_drained() {
        let mut q = OutQueue::default();
        q.push(&vec![0u8; 1 << 20]);
        let _ = q.advance(1 << 20);
        assert!(q.capacity() <= KEEP_CAPACITY);
        assert!(q.take_shrunk());
    }

    #[test]
    fn reading_from_a_source_appends_at_most_max() {
        let mut q = OutQueue::default();
        q.push(b"head");
        let _ = q.advance(2);
        let mut src: &[u8] = b"0123456789";
        assert_eq!(q.read_from(&mut src, 4).unwrap(), 4);
        assert_eq!(q.pending(), b"ad0123");
        assert_eq!(q.read_from(&mut src, 100).unwrap(), 6);
        assert_eq!(q.read_from(&mut src, 100).unwrap(), 0);
        assert_eq!(q.pending(), b"ad0123456789");
        assert_eq!(q.len(), 12);
    }

    #[test]
    fn discard_releases_every_message() {
        let mut q = OutQueue::default();
        q.push(b"12345");
        q.mark_message(5);
        q.push(b"678");
        q.mark_message(3);
        assert_eq!(q.discard(), (8, 2));
        assert!(q.is_empty());
    }
}
