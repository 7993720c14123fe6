//! The client's compressed messages, inflated as their frames arrive (RFC 7692 §6.2), before
//! tungstenite reads them: tungstenite's message layer refuses every frame with RSV1 set, so on a
//! connection that negotiated permessage-deflate its input goes through `Inflating` first.
//!
//! Frames pass through unchanged (control frames too, wherever they come), except those of a
//! compressed message (RSV1 on its first frame): their payload is unmasked and inflated as it
//! arrives, and what comes out is written as uncompressed fragments of the same message (masked
//! with a zero key, so the bytes are as they are): tungstenite then assembles, checks the size
//! and validates UTF-8 as for any message. The inflater exists only while a compressed message
//! arrives: with `client_no_context_takeover` each message is inflated on its own; with context
//! takeover (the dedicated setting) the connection keeps the window of what it inflated
//! (`super::window`), given to each message's inflater as its dictionary. It stops as soon
//! as the message passes the inbound limit: a few KiB that would inflate to gigabytes cost no more
//! than the limit. Anything this layer does not understand (a malformed header) is passed on for
//! tungstenite to refuse.

use std::io::Cursor;

use flate2::{Decompress, FlushDecompress, Status};

use super::window::Window;
use tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Inflated bytes written per fragment at most (and the inflater's output step).
const STEP: usize = 16 * 1024;
/// Compressed bytes unmasked at a time.
const UNMASK: usize = 4096;
/// The tail RFC 7692 §7.2.2 removes from each compressed message, given back before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Why a compressed message could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// It inflates past the inbound limit (1009).
    TooBig,
    /// It is not valid deflate data (1007).
    Corrupt,
}

enum Part {
    /// Expecting a frame header.
    Header,
    /// `left` bytes of a frame to pass through unchanged.
    Pass { left: u64 },
    /// `left` bytes of a compressed message's frame; `fin`: its last frame.
    Inflate {
        left: u64,
        mask: [u8; 4],
        offset: usize,
        fin: bool,
    },
    /// The stream could not be parsed: everything passes through (tungstenite refuses it).
    Opaque,
}

/// One connection's input layer for permessage-deflate (see the module's text).
pub struct Inflating {
    part: Part,
    /// The compressed message in progress: its inflater, and its opcode until the first fragment
    /// is written (later fragments are continuations).
    message: Option<(Box<Decompress>, Option<OpData>)>,
    /// Inflated bytes of the message in progress.
    produced: usize,
    limit: usize,
    window_bits: u8,
    /// With context takeover: what the messages before inflated to (the client's window).
    history: Option<Window>,
    /// The other side is a server (a client's own use, as in the load generator): its frames
    /// are not masked, nor are the ones written for the parser.
    from_server: bool,
}

impl Inflating {
    /// `limit`: the inbound limit (largest message); `window_bits`: the client's (8-15, inflated
    /// with at least 9); `context_takeover`: the client's messages may refer to the ones before.
    pub fn new(limit: usize, window_bits: u8, context_takeover: bool) -> Inflating {
        let window_bits = window_bits.clamp(9, 15);
        Inflating {
            part: Part::Header,
            message: None,
            produced: 0,
            limit,
            window_bits,
            history: context_takeover.then(|| Window::new(window_bits)),
            from_server: false,
        }
    }

    /// The same layer on a client, for a server's compressed messages (unmasked frames).
    pub fn client(limit: usize, window_bits: u8, context_takeover: bool) -> Inflating {
        Inflating {
            from_server: true,
            ..Inflating::new(limit, window_bits, context_takeover)
        }
    }

    /// Memory held now beyond this struct (an inflater while a compressed message arrives).
    pub fn holds_inflater(&self) -> bool {
        self.message.is_some()
    }

    /// The bytes of history kept for context takeover (0 without it, or before the first
    /// compressed message).
    pub fn history_held(&self) -> usize {
        self.history.as_ref().map_or(0, Window::held)
    }

    /// Takes what it can of `raw` (consumed from the front: returns how many bytes) and appends
    /// the frames for tungstenite to `out`, stopping at a frame boundary once `out` holds `cap`
    /// bytes (so `out` stays within `cap` plus one message's inbound limit, whatever the ratio).
    pub fn decode(&mut self, raw: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<usize, Refused> {
        let mut used = 0;
        loop {
            let rest = &raw[used..];
            if matches!(self.part, Part::Header) && out.len() >= cap {
                return Ok(used);
            }
            match &mut self.part {
                Part::Opaque => {
                    out.extend_from_slice(rest);
                    return Ok(raw.len());
                }
                Part::Header => {
                    let mut cursor = Cursor::new(rest);
                    let (header, len) = match FrameHeader::parse(&mut cursor) {
                        Ok(Some(h)) => h,
                        Ok(None) => return Ok(used),
                        Err(_) => {
                            self.part = Part::Opaque;
                            continue;
                        }
                    };
                    let n = cursor.position() as usize;
                    let starts = matches!(header.opcode, OpCode::Data(OpData::Text | OpData::Binary));
                    let continues = header.opcode == OpCode::Data(OpData::Continue);
                    let compressed = match (&self.message, header.rsv1) {
                        // The first frame of a compressed message.
                        (None, true) if starts && !header.rsv2 && !header.rsv3 => true,
                        // A continuation of one (RSV1 must be clear on it: else tungstenite
                        // refuses the frame passed through).
                        (Some(_), false) if continues && !header.rsv2 && !header.rsv3 => true,
                        _ => false,
                    };
                    used += n;
                    if !compressed {
                        out.extend_from_slice(&rest[..n]);
                        self.part = Part::Pass { left: len };
                        continue;
                    }
                    let mask = match header.mask {
                        Some(mask) if !self.from_server => mask,
                        None if self.from_server => [0; 4],
                        // An unmasked frame from a client (or a masked one from a server):
                        // tungstenite refuses it.
                        _ => {
                            out.extend_from_slice(&rest[..n]);
                            self.part = Part::Opaque;
                            continue;
                        }
                    };
                    if self.message.is_none() {
                        let OpCode::Data(op) = header.opcode else {
                            unreachable!()
                        };
                        let mut inflater = Box::new(Decompress::new_with_window_bits(false, self.window_bits));
                        if let Some(history) = self.history.as_ref().filter(|h| !h.bytes().is_empty()) {
                            inflater.set_dictionary(history.bytes()).map_err(|_| Refused::Corrupt)?;
                        }
                        self.message = Some((inflater, Some(op)));
                        self.produced = 0;
                    }
                    self.part = Part::Inflate {
                        left: len,
                        mask,
                        offset: 0,
                        fin: header.is_final,
                    };
                }
                Part::Pass { left } => {
                    let n = rest.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&rest[..n]);
                    used += n;
                    *left -= n as u64;
                    if *left > 0 {
                        return Ok(used);
                    }
                    self.part = Part::Header;
                }
                Part::Inflate {
                    left,
                    mask,
                    offset,
                    fin,
                } => {
                    let n = rest.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let (mask, start) = (*mask, *offset);
                    *offset += n;
                    *left -= n as u64;
                    used += n;
                    let (done, last) = (*left == 0, *fin);
                    // Unmasked a piece at a time on the stack (no allocation per read).
                    let mut chunk = [0u8; UNMASK];
                    for (k, piece) in rest[..n].chunks(UNMASK).enumerate() {
                        let at = start + k * UNMASK;
                        for (i, (b, m)) in chunk.iter_mut().zip(piece).enumerate() {
                            *b = m ^ mask[(at + i) % 4];
                        }
                        self.inflate(&chunk[..piece.len()], out)?;
                    }
                    if !done {
                        return Ok(used);
                    }
                    if last {
                        self.inflate(&TAIL, out)?;
                        self.fragment(&[], true, out);
                        self.message = None;
                    }
                    self.part = Part::Header;
                }
            }
        }
    }

    /// Inflates `input` into fragments of the message in progress.
    fn inflate(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Refused> {
        let mut buf = [0u8; STEP];
        loop {
            let Some((inflater, _)) = self.message.as_mut() else {
                return Ok(());
            };
            let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
            let status = inflater
                .decompress(input, &mut buf, FlushDecompress::Sync)
                .map_err(|_| Refused::Corrupt)?;
            let took = (inflater.total_in() - before_in) as usize;
            let made = (inflater.total_out() - before_out) as usize;
            input = &input[took..];
            self.produced += made;
            if self.produced > self.limit {
                self.message = None;
                self.part = Part::Opaque;
                return Err(Refused::TooBig);
            }
            if made > 0 {
                if let Some(history) = &mut self.history {
                    history.push(&buf[..made]);
                }
                self.fragment(&buf[..made], false, out);
            }
            // More output may wait inside the inflater while the buffer came back full.
            if (input.is_empty() && made < STEP) || status == Status::StreamEnd || (took == 0 && made == 0) {
                return Ok(());
            }
        }
    }

    /// One uncompressed fragment of the message in progress for tungstenite.
    fn fragment(&mut self, payload: &[u8], fin: bool, out: &mut Vec<u8>) {
        let Some((_, opcode)) = self.message.as_mut() else {
            return;
        };
        let op = opcode.take().unwrap_or(OpData::Continue);
        let header = FrameHeader {
            is_final: fin,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode: OpCode::Data(op),
            mask: (!self.from_server).then_some([0; 4]),
        };
        let _ = header.format(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};
    use tungstenite::protocol::{Role, WebSocketContext};
    use tungstenite::Message;

    /// A message compressed as a client does it: raw deflate, sync flush, tail removed.
    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new_with_window_bits(Compression::default(), false, 15);
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        while out.capacity() - out.len() < 64 {
            out.reserve(64);
        }
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - 4);
        out
    }

    /// A masked client frame.
    fn frame(fin: bool, rsv1: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
        let mask = [7, 1, 9, 3];
        let header = FrameHeader {
            is_final: fin,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode: op,
            mask: Some(mask),
        };
        let mut out = Vec::new();
        header.format(payload.len() as u64, &mut out).unwrap();
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    /// What tungstenite makes of `bytes` after the layer, fed `step` bytes at a time.
    fn read_all(bytes: &[u8], step: usize, limit: usize) -> (Vec<Message>, Option<Refused>) {
        let mut layer = Inflating::new(limit, 15, false);
        let mut pending = Vec::new();
        let mut decoded = Vec::new();
        for piece in bytes.chunks(step) {
            pending.extend_from_slice(piece);
            match layer.decode(&pending, &mut decoded, usize::MAX) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) => return (Vec::new(), Some(e)),
            }
        }
        let mut ws = WebSocketContext::new(Role::Server, None);
        let mut stream = std::io::Cursor::new(decoded);
        let mut msgs = Vec::new();
        struct Rw<'a>(&'a mut std::io::Cursor<Vec<u8>>);
        impl std::io::Read for Rw<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = std::io::Read::read(self.0, buf)?;
                if n == 0 && !buf.is_empty() {
                    return Err(std::io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            }
        }
        impl std::io::Write for Rw<'_> {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        while let Ok(m) = ws.read(&mut Rw(&mut stream)) {
            msgs.push(m);
        }
        (msgs, None)
    }

    #[test]
    fn compressed_messages_fragmented_with_control_frames_between_come_out_whole() {
        let text = "hello hello hello permessage-deflate ".repeat(200);
        let z = deflate(text.as_bytes());
        let (a, b) = z.split_at(z.len() / 2);
        let mut wire = frame(true, false, OpCode::Data(OpData::Binary), b"plain");
        wire.extend(frame(false, true, OpCode::Data(OpData::Text), a));
        wire.extend(frame(
            true,
            false,
            OpCode::Control(tungstenite::protocol::frame::coding::Control::Ping),
            b"p",
        ));
        wire.extend(frame(true, false, OpCode::Data(OpData::Continue), b));
        let z2 = deflate(&[1, 2, 3]);
        wire.extend(frame(true, true, OpCode::Data(OpData::Binary), &z2));
        for step in [1, 3, 7, 64, wire.len()] {
            let (msgs, err) = read_all(&wire, step, 1 << 20);
            assert_eq!(err, None);
            let data: Vec<_> = msgs.into_iter().filter(|m| !m.is_ping()).collect();
            assert_eq!(
                data,
                [
                    Message::binary(&b"plain"[..]),
                    Message::text(text.clone()),
                    Message::binary(vec![1u8, 2, 3])
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn a_bomb_is_refused_at_the_limit_and_garbage_as_corrupt() {
        let big = vec![0u8; 50 << 20];
        let z = deflate(&big);
        assert!(z.len() < 100 << 10, "{} bytes inflate to 50 MiB", z.len());
        let mut layer = Inflating::new(65_535, 15, false);
        let mut out = Vec::new();
        let wire = frame(true, true, OpCode::Data(OpData::Binary), &z);
        assert_eq!(layer.decode(&wire, &mut out, usize::MAX), Err(Refused::TooBig));
        assert!(
            out.len() < 65_535 + STEP + 64,
            "no more than the limit came out: {}",
            out.len()
        );
        let mut layer = Inflating::new(65_535, 15, false);
        let wire = frame(true, true, OpCode::Data(OpData::Binary), &[0xff; 40]);
        assert_eq!(layer.decode(&wire, &mut Vec::new(), usize::MAX), Err(Refused::Corrupt));
    }

    #[test]
    fn with_context_takeover_messages_that_refer_to_the_ones_before_are_inflated() {
        // A client keeping its compressor across messages (no context takeover asked of it).
        let mut c = Compress::new_with_window_bits(Compression::default(), false, 12);
        let texts: Vec<String> = (0..10)
            .map(|i| format!("{{\"type\": \"input\", \"seq\": {i}, \"keys\": [\"left\", \"jump\"]}}"))
            .collect();
        let mut wire = Vec::new();
        for t in &texts {
            let mut out = Vec::with_capacity(t.len() + 64);
            c.compress_vec(t.as_bytes(), &mut out, FlushCompress::Sync).unwrap();
            out.truncate(out.len() - 4);
            wire.extend(frame(true, true, OpCode::Data(OpData::Text), &out));
        }
        let decode = |takeover: bool, step: usize| {
            let mut layer = Inflating::new(1 << 20, 12, takeover);
            let mut decoded = Vec::new();
            let mut pending = Vec::new();
            for piece in wire.chunks(step) {
                pending.extend_from_slice(piece);
                let n = layer.decode(&pending, &mut decoded, usize::MAX)?;
                pending.drain(..n);
            }
            assert_eq!(layer.history_held(), if takeover { 4096 } else { 0 });
            Ok::<_, Refused>(decoded)
        };
        for step in [1, 5, wire.len()] {
            let decoded = decode(true, step).unwrap();
            // The layer's output is plain frames: read_all's own layer passes them through.
            let (msgs, _) = read_all(&decoded, decoded.len().max(1), 1 << 20);
            let want: Vec<Message> = texts.iter().map(|t| Message::text(t.clone())).collect();
            assert_eq!(msgs, want, "step {step}");
        }
        // Without the window the second message refers to bytes the inflater never saw.
        assert_eq!(decode(false, wire.len()).unwrap_err(), Refused::Corrupt);
    }
}
