//! Whether a client is in the middle of a message, seen from the bytes read: frame boundaries
//! found with tungstenite's own header parser, payloads skipped. Used to close a client that
//! leaves a message unfinished and sends no more of it (`partial_message_timeout`), which would
//! otherwise hold up to `inbound_buffer_size` bytes of memory forever.

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// The longest frame header: 2 bytes, 8 of length, 4 of mask.
const MAX_HEADER: usize = 14;

#[derive(Debug)]
pub(crate) struct MessageProgress {
    /// Frames longer than this are refused (1009); where the first one ends is kept.
    max_frame: u64,
    /// Bytes fed so far.
    fed: u64,
    /// Stream position just past the payload of the first frame longer than `max_frame`.
    oversize_end: Option<u64>,
    /// The start of a frame header not yet complete.
    head: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    /// A data message's first frame has come and its final frame has not.
    fragmented: bool,
    /// A header did not parse: the connection is being failed anyway; stop tracking.
    broken: bool,
    /// The longest frame since `forget_largest`.
    largest: u64,
}

impl MessageProgress {
    pub(crate) fn new(max_frame: usize) -> MessageProgress {
        MessageProgress {
            max_frame: max_frame as u64,
            fed: 0,
            oversize_end: None,
            head: Vec::new(),
            remaining: 0,
            fragmented: false,
            broken: false,
            largest: 0,
        }
    }

    /// Takes the bytes read from the client, in order.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.broken {
            if self.remaining > 0 {
                let n = bytes.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                self.remaining -= n as u64;
                self.fed += n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let before = self.head.len();
            let take = bytes.len().min(MAX_HEADER - before);
            self.head.extend_from_slice(&bytes[..take]);
            let mut cursor = Cursor::new(&self.head[..]);
            match FrameHeader::parse(&mut cursor) {
                Ok(Some((header, len))) => {
                    let used = cursor.position() as usize - before;
                    bytes = &bytes[used..];
                    self.fed += used as u64;
                    self.head.clear();
                    self.remaining = len;
                    self.largest = self.largest.max(len);
                    if len > self.max_frame && self.oversize_end.is_none() {
                        self.oversize_end = Some(self.fed.saturating_add(len));
                    }
                    match header.opcode {
                        OpCode::Data(Data::Continue) => self.fragmented &= !header.is_final,
                        OpCode::Data(_) => self.fragmented = !header.is_final,
                        OpCode::Control(_) => {}
                    }
                }
                Ok(None) => {
                    self.fed += take as u64;
                    bytes = &bytes[take..];
                }
                Err(_) => self.broken = true,
            }
        }
    }

    /// After a frame longer than `max_frame` was refused: how many of its bytes are still to come
    /// from the socket (skip them, and the stream is at a frame boundary again). `None` if no
    /// such frame was seen, or if bytes after it were already read (and are inside the parser).
    pub(crate) fn rest_of_oversize_frame(&self) -> Option<u64> {
        self.oversize_end.and_then(|end| end.checked_sub(self.fed))
    }

    /// Whether a frame longer than `max_frame` was seen.
    pub(crate) fn saw_oversize_frame(&self) -> bool {
        self.oversize_end.is_some()
    }

    /// Whether every byte read so far belongs to a finished message: not inside a frame, not
    /// between the frames of a fragmented message.
    pub(crate) fn at_message_boundary(&self) -> bool {
        !self.broken && self.head.is_empty() && self.remaining == 0 && !self.fragmented
    }

    /// The longest frame payload since the last `forget_largest`.
    pub(crate) fn largest_frame(&self) -> u64 {
        self.largest
    }

    pub(crate) fn forget_largest(&mut self) {
        self.largest = 0;
    }

    /// Whether a message (or a control frame) has begun and not ended.
    pub(crate) fn partial(&self) -> bool {
        !self.broken && (!self.head.is_empty() || self.remaining > 0 || self.fragmented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first, 0x80 | payload.len() as u8, 1, 2, 3, 4];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn follows_frames_fed_in_any_pieces() {
        let mut bytes = frame(0x81, b"hello");
        bytes.extend(frame(0x02, b"frag")); // binary, not final
        bytes.extend(frame(0x89, b"p")); // a ping in between
        bytes.extend(frame(0x80, b"end")); // final continuation
                                           // Partial after every prefix that does not end at a message boundary.
        let ends = [11, bytes.len()];
        for cut in 0..=bytes.len() {
            for split in [1, 3, 7] {
                let mut p = MessageProgress::new(1000);
                for chunk in bytes[..cut].chunks(split) {
                    p.feed(chunk);
                }
                let at_boundary = cut == 0 || ends.contains(&cut);
                assert_eq!(p.partial(), !at_boundary, "cut {cut}, pieces of {split}");
            }
        }
    }

    #[test]
    fn message_boundaries_and_the_largest_frame() {
        let mut p = MessageProgress::new(100_000);
        assert!(p.at_message_boundary());
        let mut big = vec![0x82, 0x80 | 126, 0x27, 0x10, 1, 2, 3, 4]; // 10,000 bytes
        big.extend(vec![0u8; 10_000]);
        p.feed(&big[..5000]);
        assert!(!p.at_message_boundary(), "inside the frame");
        p.feed(&big[5000..]);
        assert!(p.at_message_boundary());
        assert_eq!(p.largest_frame(), 10_000);
        p.feed(&frame(0x02, b"frag"));
        assert!(!p.at_message_boundary(), "between the frames of a message");
        p.feed(&frame(0x80, b"end"));
        assert!(p.at_message_boundary());
        p.forget_largest();
        assert_eq!(p.largest_frame(), 0);
        p.feed(&[0x81]);
        assert!(!p.at_message_boundary(), "inside a header");
    }

    #[test]
    fn long_lengths_are_followed() {
        let mut p = MessageProgress::new(100);
        let mut f = vec![0x82, 0x80 | 126, 0x01, 0x00, 9, 9, 9, 9]; // 256 bytes, over the 100
        f.extend(vec![0u8; 55]);
        p.feed(&f);
        assert!(p.partial());
        assert_eq!(
            p.rest_of_oversize_frame(),
            Some(201),
            "the frame ends 256 bytes after its header"
        );
        p.feed(&[0u8; 201]);
        assert!(!p.partial());
        assert_eq!(p.rest_of_oversize_frame(), Some(0));
        p.feed(&[0x81]);
        assert_eq!(p.rest_of_oversize_frame(), None, "bytes past it were read");
        assert!(p.saw_oversize_frame());
    }
}
