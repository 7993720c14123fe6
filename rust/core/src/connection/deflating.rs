//! permessage-deflate on one connection (`crate::deflate`): the client's input inflated before
//! tungstenite reads it, and the game's messages compressed as they are queued.

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Bytes;

use super::frames::Reply;
use super::{Connection, Context};
use crate::deflate::inbound::{Inflating, Refused};
use crate::deflate::negotiate::Agreed;
use crate::deflate::outbound::{compress, compress_after};
use crate::deflate::window::Window;
use crate::inbox::Inbox;

/// A connection's permessage-deflate state: no compressor of its own, an inflater only while a
/// compressed message arrives, and with context takeover (the dedicated setting) the window of
/// what it sent compressed (here) and of what it inflated (in `inflating`).
pub(super) struct Deflating {
    pub(super) agreed: Agreed,
    pub(super) inflating: Inflating,
    /// With server context takeover: the last bytes of the messages sent compressed.
    sent: Option<Window>,
    /// The input as tungstenite reads it (what `inflating` made of the client's bytes).
    pub(super) decoded: Inbox,
    /// Messages shorter than this go uncompressed.
    threshold: usize,
}

impl Deflating {
    pub(super) fn new(agreed: Agreed, cx: &Context) -> Deflating {
        Deflating {
            agreed,
            inflating: Inflating::new(
                cx.settings.config.limits.inbound_buffer_size,
                agreed.client_window_bits,
                !agreed.client_no_context_takeover,
            ),
            sent: (!agreed.server_no_context_takeover).then(|| Window::new(agreed.server_window_bits)),
            decoded: Inbox::default(),
            threshold: cx.settings.config.compression_threshold,
        }
    }

    /// The payload to send for `data`, and whether it is compressed (RSV1). `allowed`: the game
    /// did not ask for this message to go uncompressed.
    pub(super) fn outgoing(&mut self, data: Bytes, allowed: bool) -> (Bytes, bool) {
        if !allowed || data.len() < self.threshold {
            return (data, false);
        }
        let bits = self.agreed.server_window_bits;
        match &mut self.sent {
            // Without context takeover: a message that does not shrink (already compressed,
            // random, a short line) is sent as it is.
            None => {
                let compressed = compress(&data, bits);
                if compressed.len() >= data.len() {
                    return (data, false);
                }
                (compressed, true)
            }
            // With it, always compressed: only what the client inflates enters its window, and a
            // short line that does not shrink on its own (a few bytes more, once) is what the
            // next similar line refers to.
            Some(window) => {
                let compressed = compress_after(&data, bits, window.bytes());
                window.push(&data);
                (compressed, true)
            }
        }
    }
}

/// Moves what it can of the client's bytes (`raw`) through the inflater into `decoded`, up to
/// about `cap` bytes waiting there. `Ok(true)` if it took any.
pub(super) fn inflate_input(
    inflating: &mut Inflating,
    raw: &mut Inbox,
    decoded: &mut Inbox,
    cap: usize,
) -> Result<bool, Refused> {
    if raw.is_empty() {
        if raw.eof() {
            decoded.set_eof();
        }
        return Ok(false);
    }
    let mut out = Vec::new();
    let n = inflating.decode(raw.peek(usize::MAX), &mut out, cap.saturating_sub(decoded.len()))?;
    raw.consume(n);
    decoded.extend(&out);
    // After the client's end of stream, what the inflater could not take is a frame cut short:
    // the parser sees the end where the stream ends.
    if raw.eof() && (raw.is_empty() || n == 0) {
        decoded.set_eof();
    }
    Ok(n > 0)
}

/// The close code and reply reading for a compressed message that could not be taken.
pub(super) fn refused(why: Refused) -> (CloseCode, Reply) {
    match why {
        Refused::TooBig => (CloseCode::Size, Reply::Discard),
        Refused::Corrupt => (CloseCode::Invalid, Reply::Discard),
    }
}

impl Connection {
    /// The bytes the client sent after its request, when permessage-deflate was agreed: the whole
    /// frames among them are inflated for the parser; a frame cut short goes back to the inbox.
    pub(super) fn early_input(&mut self, early: Vec<u8>) -> Vec<u8> {
        let Some(d) = self.deflate.as_deref_mut() else {
            return early;
        };
        let mut out = Vec::new();
        match d.inflating.decode(&early, &mut out, usize::MAX) {
            Ok(n) => self.inbox.prepend(&early[n..]),
            // The parser will not get that far: the violation is found again on the next read.
            Err(_) => {
                self.inbox.prepend(&early);
                out.clear();
            }
        }
        out
    }
}
