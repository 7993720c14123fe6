//! permessage-deflate's input layer (`wss_core::deflate::inbound::Inflating`) under arbitrary
//! client bytes, cut into arbitrary reads: it never panics, what it hands the parser stays within
//! the cap plus one message's limit whatever the compression ratio (a bomb is refused), and
//! tungstenite reading its output never sees a frame with RSV1 from a compressed message.
//! The input: a byte for the read size, a mode byte, then client bytes; half the time they are
//! first turned into frames whose payloads are compressed for real, so the inflater sees valid
//! streams too: each message on its own, or (mode bit 4) by one compressor for the whole
//! connection, the layer then keeping the window of context takeover.

#![no_main]

use flate2::{Compress, Compression, FlushCompress};
use libfuzzer_sys::fuzz_target;

mod common;
use common::{frame, Input};

use wss_core::deflate::inbound::{Inflating, Refused};

const LIMIT: usize = 1000;
const CAP: usize = 4096;

fn deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 2 + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    if out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(step) = input.byte() else { return };
    let Some(mode) = input.byte() else { return };
    let step = usize::from(step).max(1);
    let takeover = mode & 4 != 0;
    let mut compressor = Compress::new_with_window_bits(Compression::default(), false, 15);
    let wire: Vec<u8> = if mode & 1 == 0 {
        input.0.to_vec()
    } else {
        // Frames: each a header byte (FIN, RSV1, opcode) and a length byte, then that many bytes
        // that are compressed if RSV1 is set (a repeated byte inflates far: bombs are likely).
        let mut wire = Vec::new();
        while let (Some(first), Some(len)) = (input.byte(), input.byte()) {
            let payload = input.take(usize::from(len)).to_vec();
            let payload = if first & 0x40 != 0 && mode & 2 != 0 {
                let repeated: Vec<u8> = payload.iter().flat_map(|&b| std::iter::repeat_n(b, 64)).collect();
                deflate(&mut compressor, &repeated)
            } else if first & 0x40 != 0 {
                deflate(&mut compressor, &payload)
            } else {
                payload
            };
            if !takeover {
                compressor.reset();
            }
            wire.extend(frame(first, &payload));
        }
        wire
    };
    let mut layer = Inflating::new(LIMIT, 15, takeover);
    let mut pending = Vec::new();
    let mut decoded = Vec::new();
    for piece in wire.chunks(step) {
        pending.extend_from_slice(piece);
        match layer.decode(&pending, &mut decoded, CAP) {
            Ok(n) => {
                assert!(n <= pending.len());
                pending.drain(..n);
            }
            Err(Refused::TooBig | Refused::Corrupt) => return,
        }
        assert!(
            decoded.len() <= CAP + LIMIT + 16 * 1024 + 64,
            "{} bytes handed to the parser",
            decoded.len()
        );
        // The parser takes what it can (as the connection's reads do).
        decoded.clear();
    }
});
