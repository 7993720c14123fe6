use std::cell::OnceCell;

use godot::prelude::*;
use wss_core::Packet;

/// The messages one [method WebSocketServer.take_messages] call took, in arrival order: message
/// [code]i[/code] is [code]packets[i][/code], from client [code]ids[i][/code], and was a text
/// message if [code]text[i][/code] is [code]1[/code]. Read-only. [i]Not in Godot.[/i]
/// [codeblock]
/// var batch := server.take_messages()
/// var ids := batch.ids
/// var packets := batch.packets
/// for i in batch.size():
///     handle_input(ids[i], packets[i])
/// [/codeblock]
/// The same messages also come as one buffer, [member data], with [member offsets]: reading them
/// from there makes no array per message, the cheapest way to read many small inputs:
/// [codeblock]
/// var data := batch.data
/// var offsets := batch.offsets
/// for i in batch.size():
///     var seq := data.decode_u32(offsets[i])  # message i is data[offsets[i] .. offsets[i + 1]]
/// [/codeblock]
/// Copy the arrays into local variables before a loop, as above: each access to a property is a
/// call into the extension. [member packets] and [member data] are each made on first access.
#[derive(GodotClass)]
#[class(no_init, base = RefCounted)]
// `packets`, `data` and `offsets` only give their properties a type: their getters make them
// from `taken` on first access (a getter cannot fill the field itself; it takes `&self`).
#[allow(dead_code)]
pub struct WebSocketServerMessages {
    /// The sender of each message. A sender may have disconnected since (its
    /// [signal WebSocketServer.client_disconnected] was emitted by the same or an earlier
    /// [code]poll()[/code]): its messages still come, in order, before it is forgotten.
    #[var(no_set)]
    ids: PackedInt32Array,
    /// The messages' bytes, one array each (a text message as its UTF-8 bytes:
    /// [method PackedByteArray.get_string_from_utf8] reads it).
    #[var(get = get_packets, no_set)]
    packets: Array<PackedByteArray>,
    /// Every message's bytes one after another, in the order of [member ids]: message
    /// [code]i[/code] is [code]data.slice(offsets[i], offsets[i + 1])[/code]. At most 2 GiB
    /// (the offsets are 32-bit): a larger batch reports an error and leaves [member data] empty,
    /// [member packets] still holds it.
    #[var(get = get_data, no_set)]
    data: PackedByteArray,
    /// Where each message starts in [member data], and where the last one ends: one more entry
    /// than there are messages.
    #[var(get = get_offsets, no_set)]
    offsets: PackedInt32Array,
    /// [code]1[/code] where the message was a text message, [code]0[/code] where it was binary.
    #[var(no_set)]
    text: PackedByteArray,
    /// The messages as taken (shared bytes, no copy), for the batch's whole life: `packets` and
    /// `data` are made from them on first access (getters take `&self`, so they cannot let go
    /// after), and the game drops the batch, usually by the end of its tick.
    taken: Vec<Packet>,
    made_packets: OnceCell<Array<PackedByteArray>>,
    made_data: OnceCell<(PackedByteArray, PackedInt32Array)>,
    base: Base<RefCounted>,
}

impl WebSocketServerMessages {
    /// A batch of `taken[i]` from `ids[i]`.
    pub fn create(ids: PackedInt32Array, taken: Vec<Packet>) -> Gd<Self> {
        let text: PackedByteArray = taken.iter().map(|p| p.text as u8).collect();
        Gd::from_init_fn(|base| WebSocketServerMessages {
            ids,
            packets: Array::new(),
            data: PackedByteArray::new(),
            offsets: PackedInt32Array::new(),
            text,
            taken,
            made_packets: OnceCell::new(),
            made_data: OnceCell::new(),
            base,
        })
    }

    fn flat(&self) -> &(PackedByteArray, PackedInt32Array) {
        self.made_data.get_or_init(|| {
            let total: usize = self.taken.iter().map(|p| p.data.len()).sum();
            if total > i32::MAX as usize {
                // Offsets are 32-bit (a PackedInt32Array): a batch of many clients' large
                // messages may not fit. The same messages are still in `packets`.
                godot_error!(
                    "WebSocketServerMessages.data: this batch holds {total} bytes, more than one buffer with 32-bit offsets can (2 GiB); read packets instead, or take fewer with take_messages(max_messages)"
                );
                return (PackedByteArray::new(), PackedInt32Array::from(&[0][..]));
            }
            let mut data = PackedByteArray::new();
            data.resize(total);
            let mut offsets = PackedInt32Array::new();
            offsets.resize(self.taken.len() + 1);
            let (bytes, starts) = (data.as_mut_slice(), offsets.as_mut_slice());
            let mut at = 0;
            for (packet, start) in self.taken.iter().zip(starts.iter_mut()) {
                *start = at as i32;
                bytes[at..at + packet.data.len()].copy_from_slice(&packet.data);
                at += packet.data.len();
            }
            starts[self.taken.len()] = at as i32;
            (data, offsets)
        })
    }
}

#[godot_api]
impl WebSocketServerMessages {
    /// How many messages there are.
    #[func]
    fn size(&self) -> i64 {
        self.ids.len() as i64
    }

    /// Whether there are none.
    #[func]
    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// [member packets] (made on the first call).
    #[func]
    fn get_packets(&self) -> Array<PackedByteArray> {
        self.made_packets
            .get_or_init(|| {
                let mut packets = Array::new();
                for packet in &self.taken {
                    packets.push(&PackedByteArray::from(&packet.data[..]));
                }
                // The one shared empty batch (`take_messages` on a quiet frame) must stay empty.
                if self.taken.is_empty() {
                    packets.into_read_only()
                } else {
                    packets
                }
            })
            .clone()
    }

    /// [member data] (made on the first call, with [member offsets]).
    #[func]
    fn get_data(&self) -> PackedByteArray {
        self.flat().0.clone()
    }

    /// [member offsets] (made on the first call, with [member data]).
    #[func]
    fn get_offsets(&self) -> PackedInt32Array {
        self.flat().1.clone()
    }
}
