use godot::prelude::*;

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
/// Copy the arrays into local variables before a loop, as above: each access to a property is a
/// call into the extension.
#[derive(GodotClass)]
#[class(no_init, base = RefCounted)]
pub struct WebSocketServerMessages {
    /// The sender of each message. A sender may have disconnected since (its
    /// [signal WebSocketServer.client_disconnected] was emitted by the same or an earlier
    /// [code]poll()[/code]): its messages still come, in order, before it is forgotten.
    #[var(no_set)]
    ids: PackedInt32Array,
    /// The messages' bytes (a text message as its UTF-8 bytes:
    /// [method PackedByteArray.get_string_from_utf8] reads it).
    #[var(no_set)]
    packets: Array<PackedByteArray>,
    /// [code]1[/code] where the message was a text message, [code]0[/code] where it was binary.
    #[var(no_set)]
    text: PackedByteArray,
    base: Base<RefCounted>,
}

impl WebSocketServerMessages {
    pub fn create(ids: PackedInt32Array, packets: Array<PackedByteArray>, text: PackedByteArray) -> Gd<Self> {
        Gd::from_init_fn(|base| WebSocketServerMessages {
            ids,
            packets,
            text,
            base,
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
}
