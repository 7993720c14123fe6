//! The bytes a client sent that its connection has not taken yet, and whether its end of stream
//! has come.
//!
//! The shell hands a connection bytes only while it wants them (`Connection::wants_input`), and the
//! connection takes all it is given unless reading pauses (the game's queue for the peer is full,
//! or the output is over its limit) in the middle of them: so this holds at most one read's worth.
//!
//! tungstenite pulls its input through `std::io::Read`; `Wire` is that adapter (reading from the
//! inbox, writing into the connection's `OutQueue`), and the only place where "no more input yet"
//! is spelled `WouldBlock`.

use std::io::{self, ErrorKind, Read, Write};

use crate::outq::OutQueue;
use crate::progress::MessageProgress;

/// Capacity kept once everything is taken (enough for a small message); a larger buffer is let
/// go, so that a connection that once read a long chunk does not keep it for good.
const KEEP_CAPACITY: usize = 256;

#[derive(Debug, Default)]
pub(crate) struct Inbox {
    buf: Vec<u8>,
    /// `buf[..head]` has been taken.
    head: usize,
    /// The client's end of stream came after the bytes in `buf`.
    eof: bool,
}

impl Inbox {
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.head > 0 && self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        } else if self.head > 0 && self.head * 2 >= self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Puts `bytes` before the ones not yet taken (they came first).
    pub(crate) fn prepend(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let rest = self.buf.split_off(self.head);
        self.buf.clear();
        self.head = 0;
        self.buf.extend_from_slice(bytes);
        self.buf.extend_from_slice(&rest);
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `max` of the bytes not yet taken (taking them is `consume`).
    pub(crate) fn peek(&self, max: usize) -> &[u8] {
        let end = self.buf.len().min(self.head + max);
        &self.buf[self.head..end]
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.buf.len());
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::new();
            }
        }
    }

    /// Drops every byte not yet taken.
    pub(crate) fn clear(&mut self) {
        self.consume(self.len());
    }

    pub(crate) fn set_eof(&mut self) {
        self.eof = true;
    }

    /// The end of stream has come (there may still be bytes before it).
    pub(crate) fn eof(&self) -> bool {
        self.eof
    }
}

/// What tungstenite reads from and writes to: the inbox and the output queue. Writes always
/// succeed, so tungstenite never holds bytes of its own and every byte is counted in `out`; a read
/// with nothing left is `WouldBlock` (more may come), or 0 at the client's end of stream.
pub(crate) struct Wire<'a> {
    pub(crate) inbox: &'a mut Inbox,
    pub(crate) out: &'a mut OutQueue,
    /// Follows message boundaries through every byte read (while the connection is open).
    pub(crate) progress: Option<&'a mut MessageProgress>,
    /// Some bytes were read through this wire.
    pub(crate) got: bool,
}

impl<'a> Wire<'a> {
    pub(crate) fn new(inbox: &'a mut Inbox, out: &'a mut OutQueue) -> Wire<'a> {
        Wire {
            inbox,
            out,
            progress: None,
            got: false,
        }
    }
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbox.is_empty() {
            return if self.inbox.eof {
                Ok(0)
            } else {
                Err(ErrorKind::WouldBlock.into())
            };
        }
        let bytes = self.inbox.peek(buf.len());
        let n = bytes.len();
        buf[..n].copy_from_slice(bytes);
        if let Some(progress) = &mut self.progress {
            progress.feed(&buf[..n]);
        }
        self.got |= n > 0;
        self.inbox.consume(n);
        Ok(n)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_came_then_would_block_then_ends() {
        let mut inbox = Inbox::default();
        let mut out = OutQueue::default();
        inbox.extend(b"abc");
        let mut buf = [0u8; 2];
        let mut wire = Wire::new(&mut inbox, &mut out);
        assert_eq!(wire.read(&mut buf).unwrap(), 2);
        assert_eq!(wire.read(&mut buf).unwrap(), 1);
        assert_eq!(wire.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        inbox.set_eof();
        let mut wire = Wire::new(&mut inbox, &mut out);
        assert_eq!(wire.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn taken_bytes_are_not_kept() {
        let mut inbox = Inbox::default();
        inbox.extend(&[1; 100]);
        inbox.consume(60);
        inbox.extend(&[2; 10]);
        assert_eq!(inbox.len(), 50);
        assert_eq!(inbox.peek(1000)[40..], [2; 10]);
        inbox.clear();
        assert!(inbox.is_empty());
    }
}
