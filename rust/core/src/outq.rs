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
use std::io::{self, ErrorKind, Write};

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

    /// The bytes pushed since the last mark end a game message of `payload` bytes.
    pub(crate) fn mark_message(&mut self, payload: usize) {
        self.marks.push_back((self.appended, payload));
    }

    /// Writes as much as `io` takes. Returns the (bytes, count) of game messages that are now
    /// completely written, also when the write stopped with an error.
    pub(crate) fn write_to<W: Write>(&mut self, io: &mut W) -> (io::Result<()>, (usize, usize)) {
        let mut result = Ok(());
        while self.head < self.buf.len() {
            match io.write(&self.buf[self.head..]) {
                Ok(0) => {
                    result = Err(ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => {
                    self.head += n;
                    self.written += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if self.head == self.buf.len() {
            self.head = 0;
            self.buf.clear();
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::with_capacity(KEEP_CAPACITY.min(1024));
                self.shrunk = true;
            }
        }
        (result, self.release())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `room` bytes per call, then blocks.
    struct Slow {
        got: Vec<u8>,
        room: usize,
    }
    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn messages_are_released_when_their_last_byte_is_written() {
        let mut q = OutQueue::default();
        q.push(b"\x82\x03abc");
        q.mark_message(3);
        q.push(b"\x8a\x00"); // a pong: counted in len, not a game message
        q.push(b"\x82\x02de");
        q.mark_message(2);
        assert_eq!(q.len(), 11);
        let mut io = Slow { got: vec![], room: 4 };
        let (r, done) = q.write_to(&mut io);
        assert_eq!(r.unwrap_err().kind(), ErrorKind::WouldBlock);
        assert_eq!(done, (0, 0), "first message not complete yet");
        io.room = 3;
        let (_, done) = q.write_to(&mut io);
        assert_eq!(done, (3, 1));
        io.room = 100;
        let (r, done) = q.write_to(&mut io);
        assert!(r.is_ok());
        assert_eq!(done, (2, 1));
        assert!(q.is_empty());
        assert_eq!(io.got, b"\x82\x03abc\x8a\x00\x82\x02de");
    }

    #[test]
    fn memory_is_given_back_once_drained() {
        let mut q = OutQueue::default();
        q.push(&vec![0u8; 1 << 20]);
        let mut io = Slow {
            got: vec![],
            room: usize::MAX,
        };
        let _ = q.write_to(&mut io);
        assert!(q.capacity() <= KEEP_CAPACITY);
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
