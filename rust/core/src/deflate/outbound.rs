//! Messages to clients, compressed (RFC 7692 §7.2.1) without context takeover: each message on its
//! own, so one compressor per window size serves every connection of a thread (the I/O thread, or
//! the game's with inline I/O), kept in a thread-local. The last message compressed is remembered
//! with its result, so a broadcast (the same shared bytes to many recipients) is compressed once.
//! With context takeover (the dedicated setting) the same compressor is given the connection's
//! window of history as its dictionary before each message (`compress_after`).

use std::cell::RefCell;

use flate2::{Compress, Compression, FlushCompress};
use tungstenite::Bytes;

/// The tail removed from every compressed message (RFC 7692 §7.2.1 step 4).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

#[derive(Default)]
struct Compressors {
    /// Index: window bits - 9.
    by_bits: [Option<Box<Compress>>; 7],
    /// (window bits, the message (held, so its memory cannot be another's), its compressed form).
    last: Option<(u8, Bytes, Bytes)>,
}

thread_local! {
    static COMPRESSORS: RefCell<Compressors> = RefCell::new(Compressors::default());
}

/// `data` compressed with a window of `window_bits` (9-15), the trailing `00 00 ff ff` removed:
/// on its own (no context takeover).
pub fn compress(data: &Bytes, window_bits: u8) -> Bytes {
    COMPRESSORS.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((bits, original, compressed)) = &c.last {
            if *bits == window_bits && original.as_ptr() == data.as_ptr() && original.len() == data.len() {
                return compressed.clone();
            }
        }
        let compressed = Bytes::from(c.deflate(data, window_bits, &[]));
        c.last = Some((window_bits, data.clone(), compressed.clone()));
        compressed
    })
}

/// `data` compressed as the next message of a connection that keeps context takeover: `history`
/// (the connection's `super::window::Window`, at most `2^window_bits` bytes) is what the client's
/// inflater holds from the messages before, and the compressed message may refer back into it.
pub fn compress_after(data: &[u8], window_bits: u8, history: &[u8]) -> Bytes {
    COMPRESSORS.with(|c| Bytes::from(c.borrow_mut().deflate(data, window_bits, history)))
}

impl Compressors {
    fn deflate(&mut self, data: &[u8], window_bits: u8, dictionary: &[u8]) -> Vec<u8> {
        let bits = window_bits.clamp(9, 15);
        let slot = &mut self.by_bits[usize::from(bits - 9)];
        let compressor =
            slot.get_or_insert_with(|| Box::new(Compress::new_with_window_bits(Compression::fast(), false, bits)));
        compressor.reset();
        if !dictionary.is_empty() {
            compressor
                .set_dictionary(dictionary)
                .expect("a raw deflate stream takes a dictionary after a reset");
        }
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let before = compressor.total_in() as usize;
            compressor
                .compress_vec(&data[before..], &mut out, FlushCompress::Sync)
                .expect("deflate into a growing buffer");
            let done = compressor.total_in() as usize == data.len();
            if done && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn inflate(data: &[u8], bits: u8) -> Vec<u8> {
        let mut d = Decompress::new_with_window_bits(false, bits);
        let mut input = data.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(1 << 20);
        d.decompress_vec(&input, &mut out, FlushDecompress::Sync).unwrap();
        out
    }

    #[test]
    fn messages_come_back_as_they_were_and_a_broadcast_is_compressed_once() {
        let msg = Bytes::from("{\"x\": 1, \"y\": 2, \"name\": \"player\"} ".repeat(100));
        for bits in 9..=15 {
            let z = compress(&msg, bits);
            assert!(z.len() < msg.len() / 4, "{} -> {}", msg.len(), z.len());
            assert_eq!(inflate(&z, bits), msg.as_ref());
        }
        let a = compress(&msg, 15);
        let b = compress(&msg.clone(), 15);
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same message: the same compressed bytes");
        let other = Bytes::from(msg.to_vec());
        assert_ne!(
            compress(&other, 15).as_ptr(),
            a.as_ptr(),
            "other bytes: compressed again"
        );
        // Tiny and empty messages too.
        for m in [Bytes::new(), Bytes::from_static(b"a"), Bytes::from(vec![7u8; 100_000])] {
            assert_eq!(inflate(&compress(&m, 12), 12), m.as_ref());
        }
    }

    #[test]
    fn with_context_takeover_a_message_refers_back_to_the_ones_before() {
        // The client's side: one inflater for the whole connection.
        let mut client = Decompress::new_with_window_bits(false, 12);
        let mut window = crate::deflate::window::Window::new(12);
        let mut sizes = Vec::new();
        for i in 0..20 {
            let msg = format!("{{\"tick\": {i}, \"players\": [{{\"id\": 1, \"x\": 10.5, \"y\": 3.25, \"hp\": 100}}]}}");
            let z = compress_after(msg.as_bytes(), 12, window.bytes());
            window.push(msg.as_bytes());
            let mut input = z.to_vec();
            input.extend_from_slice(&TAIL);
            let mut out = Vec::with_capacity(4096);
            client.decompress_vec(&input, &mut out, FlushDecompress::Sync).unwrap();
            assert_eq!(out, msg.as_bytes(), "message {i}");
            sizes.push(z.len());
        }
        assert!(
            sizes[19] * 3 < sizes[0],
            "later messages shrink several times over: {sizes:?}"
        );
    }
}
