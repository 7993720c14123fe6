//! What the fuzz targets share: reading the input a byte at a time, the client frames they make,
//! and the limits they run with and the output bound those imply.

use wss_core::Limits;

pub const LIMITS: Limits = Limits {
    inbound_buffer_size: 1000,
    outbound_buffer_size: 1000,
    max_queued_packets: 8,
};

/// Bytes that may wait for the socket: the game's messages (at most the outbound limit, plus 14
/// bytes of framing each), the HTTP response and id message, and one pong and one Close made by the
/// server after reading stopped.
pub const OUT_BOUND: usize = 1000 + 14 * 8 + 1024 + 2 * 131;

/// The fuzzer's input, taken from the front.
pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    pub fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

/// A masked client frame with the given first byte (FIN, RSV, opcode) and payload.
pub fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    let mask = [0x11, 0x22, 0x33, 0x44];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}
