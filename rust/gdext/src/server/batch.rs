//! Sending to many clients and taking many messages in one call: `broadcast`, `send_to_peers`,
//! `take_messages`, `send_messages` (raw mode).

use super::*;

#[godot_api(secondary)]
impl WebSocketServer {
    /// Inline I/O: the end of a frame in which messages were sent outside `poll()` (see
    /// `PeerLink::sent`); writes them. Not for scripts (hidden from the class reference).
    #[func]
    fn _flush_sends(&mut self) {
        self.link.flushed();
        self.flush_inline();
    }

    /// Sends [param message] to every connected client except those in [param exclude], in one
    /// call: the bytes are copied once and shared by every recipient until each frame is written
    /// on the I/O thread. [param write_mode] is [constant WebSocketServerPeer.WRITE_MODE_BINARY]
    /// (default) or [constant WebSocketServerPeer.WRITE_MODE_TEXT] (the bytes must be UTF-8). Empty
    /// messages are sent too. Returns the clients that did not get it, as
    /// [code]{id: error}[/code]: [constant @GlobalScope.FAILED] (closing),
    /// [constant @GlobalScope.ERR_OUT_OF_MEMORY] (its queue is full; see
    /// [member outbound_buffer_size]); an empty [Dictionary] when everyone has it queued. With
    /// [member compression], [param compress] [code]false[/code] sends it uncompressed (see
    /// [method WebSocketServerPeer.send]); else it is compressed once for every recipient in the
    /// shared setting. Raw mode only (in multiplayer mode use
    /// [method MultiplayerPeer.set_target_peer] and [method PacketPeer.put_packet]).
    /// [i]Not in Godot.[/i]
    #[func]
    fn broadcast(
        &mut self,
        message: PackedByteArray,
        #[opt(default = 1)] write_mode: i64,
        #[opt(default = &PackedInt32Array::new())] exclude: PackedInt32Array,
        #[opt(default = true)] compress: bool,
    ) -> VarDictionary {
        self.send_many("broadcast", message, (write_mode, compress), None, exclude.as_slice())
    }

    /// Sends [param message] to the clients in [param ids], in one call, as [method broadcast]
    /// does (one shared copy; an id listed twice gets it once). Ids that are not connected are
    /// returned with [constant @GlobalScope.ERR_DOES_NOT_EXIST]. [i]Not in Godot.[/i]
    #[func]
    fn send_to_peers(
        &mut self,
        ids: PackedInt32Array,
        message: PackedByteArray,
        #[opt(default = 1)] write_mode: i64,
        #[opt(default = true)] compress: bool,
    ) -> VarDictionary {
        self.send_many(
            "send_to_peers",
            message,
            (write_mode, compress),
            Some(ids.as_slice()),
            &[],
        )
    }

    /// Takes the waiting messages of all clients, oldest first: all of them, or at most
    /// [param max_messages] if it is above [code]0[/code] (the rest stay for the next call). Needs
    /// [member queue_messages], or multiplayer mode when no [SceneMultiplayer] reads this server
    /// (it would miss the messages taken). Each message taken no longer counts against
    /// its client's limits, so a client the server had stopped reading is read again.
    /// [i]Not in Godot.[/i]
    /// [codeblock]
    /// func _physics_process(_delta):
    ///     server.poll()
    ///     var batch := server.take_messages()
    ///     var ids := batch.ids
    ///     var packets := batch.packets
    ///     for i in batch.size():
    ///         inputs[ids[i]] = packets[i]
    /// [/codeblock]
    #[func]
    fn take_messages(&mut self, #[opt(default = 0)] max_messages: i64) -> Gd<WebSocketServerMessages> {
        // Called every frame: told once per server, then at most once a second.
        let me = Some(self.base().instance_id().to_i64());
        let queued = self.queued();
        let waiting = match &self.server {
            None => {
                crate::ratelimit::error(
                    "take-not-listening",
                    me,
                    "WebSocketServer.take_messages: not listening".into(),
                );
                0
            }
            Some(_) if !queued => {
                crate::ratelimit::error(
                    "take-not-queued",
                    me,
                    "WebSocketServer.take_messages: set queue_messages = true before listen() (messages are being delivered through data_received)".into(),
                );
                0
            }
            Some(server) => server.queued_packets(),
        };
        let n = if max_messages > 0 {
            waiting.min(max_messages as usize)
        } else {
            waiting
        };
        let Some(server) = self.server.as_mut().filter(|_| n > 0) else {
            // Most frames: one shared empty result, nothing made.
            return self
                .no_messages
                .get_or_insert_with(|| WebSocketServerMessages::create(PackedInt32Array::new(), Vec::new()))
                .clone();
        };
        let mut ids = PackedInt32Array::new();
        ids.resize(n);
        let mut taken = Vec::with_capacity(n);
        for id_slot in ids.as_mut_slice() {
            // `n` are waiting: every pop succeeds.
            let Some((id, packet)) = server.pop_packet() else {
                break;
            };
            *id_slot = id;
            taken.push(packet);
        }
        // The bytes are copied into Godot's arrays only when the game reads `packets` or `data`.
        WebSocketServerMessages::create(ids, taken)
    }

    /// Sends [code]messages[i][/code] to client [code]ids[i][/code], for every [code]i[/code], in
    /// one call: a game server's per-client state, or the answers to a [method take_messages]
    /// batch. The arrays must be the same size; an id may appear more than once (its messages keep
    /// their order). [param write_mode] as in [method broadcast], for every message; or, if
    /// [param text] is given (the same size as [param ids]), per message: [code]1[/code] text,
    /// [code]0[/code] binary, as [member WebSocketServerMessages.text] reports them, so that a
    /// relay or an echo can pass a batch on as it came. Returns the messages that were not queued,
    /// as [code]{index: error}[/code]: [constant @GlobalScope.ERR_DOES_NOT_EXIST] (no such
    /// client), [constant @GlobalScope.FAILED] (closing), [constant @GlobalScope.ERR_OUT_OF_MEMORY]
    /// (its queue is full; see [member outbound_buffer_size]); an empty [Dictionary] when all are
    /// queued. Arrays of different sizes, a bad write mode or a text message that is not UTF-8:
    /// nothing is sent, and an error says why. Raw mode only. [i]Not in Godot.[/i]
    #[func]
    fn send_messages(
        &mut self,
        ids: PackedInt32Array,
        messages: Array<PackedByteArray>,
        #[opt(default = 1)] write_mode: i64,
        #[opt(default = &PackedByteArray::new())] text: PackedByteArray,
        #[opt(default = true)] compress: bool,
    ) -> VarDictionary {
        let what = "send_messages";
        if ids.len() != messages.len() {
            godot_error!(
                "WebSocketServer.{what}: {} ids but {} messages; nothing was sent",
                ids.len(),
                messages.len()
            );
            return VarDictionary::new();
        }
        let each = messages.iter_shared();
        self.send_each(
            what,
            ids.as_slice(),
            each,
            |m| m.as_slice(),
            (write_mode, text, compress),
        )
    }

    /// Sends message [code]i[/code], the bytes [code]data[offsets[i] .. offsets[i + 1]][/code],
    /// to client [code]ids[i][/code], for every [code]i[/code], in one call: [method send_messages]
    /// with every message in one buffer, as [member WebSocketServerMessages.data] and
    /// [member WebSocketServerMessages.offsets] hold a batch ([code]send_buffer(batch.ids,
    /// batch.data, batch.offsets, WebSocketServerPeer.WRITE_MODE_BINARY, batch.text)[/code] passes
    /// one on as it came). Building one buffer ([method PackedByteArray.append_array] per message)
    /// makes no array per message. [param offsets] has one more entry than [param ids]: where each
    /// message starts, and where the last one ends; they may not decrease, nor point outside
    /// [param data]. [param write_mode], [param text], [param compress] and the result as in
    /// [method send_messages]; bad offsets: nothing is sent, and an error says why. Raw mode only.
    /// [i]Not in Godot.[/i]
    /// [codeblock]
    /// var data := PackedByteArray()
    /// var offsets := PackedInt32Array([0])
    /// for id in ids:
    ///     data.append_array(state_for(id))
    ///     offsets.append(data.size())
    /// server.send_buffer(ids, data, offsets)
    /// [/codeblock]
    #[func]
    fn send_buffer(
        &mut self,
        ids: PackedInt32Array,
        data: PackedByteArray,
        offsets: PackedInt32Array,
        #[opt(default = 1)] write_mode: i64,
        #[opt(default = &PackedByteArray::new())] text: PackedByteArray,
        #[opt(default = true)] compress: bool,
    ) -> VarDictionary {
        let what = "send_buffer";
        let (bytes, starts) = (data.as_slice(), offsets.as_slice());
        if let Err(why) = check_offsets(starts, ids.len(), bytes.len()) {
            godot_error!("WebSocketServer.{what}: {why}; nothing was sent");
            return VarDictionary::new();
        }
        let each = starts.windows(2).map(|w| &bytes[w[0] as usize..w[1] as usize]);
        self.send_each(what, ids.as_slice(), each, |m| m, (write_mode, text, compress))
    }
}

/// Whether `offsets` cut `len` bytes into `n` messages: `n + 1` offsets, from 0 or more, never
/// decreasing, the last within the bytes.
fn check_offsets(offsets: &[i32], n: usize, len: usize) -> Result<(), String> {
    if offsets.len() != n + 1 {
        return Err(format!(
            "{n} ids need {} offsets (where each message starts, and where the last ends), not {}",
            n + 1,
            offsets.len()
        ));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(format!(
            "offsets[{}] = {} is below offsets[{i}] = {}",
            i + 1,
            offsets[i + 1],
            offsets[i]
        ));
    }
    match (offsets.first(), offsets.last()) {
        (Some(&first), _) if first < 0 => Err(format!("offsets[0] = {first} is negative")),
        (_, Some(&last)) if last as usize > len => {
            Err(format!("offsets[{n}] = {last} is past the end of data ({len} bytes)"))
        }
        _ => Ok(()),
    }
}

impl WebSocketServer {
    /// `broadcast` and `send_to_peers`: checks, one copy, failures as `{id: Error}`. `how`: the
    /// write mode, and whether it may be compressed.
    pub(super) fn send_many(
        &mut self,
        what: &str,
        message: PackedByteArray,
        (write_mode, compress): (i64, bool),
        to: Option<&[i32]>,
        exclude: &[i32],
    ) -> VarDictionary {
        let mut failures = VarDictionary::new();
        let Some((server, text)) = self.raw_sender(what, write_mode) else {
            return failures;
        };
        let Some(packet) = Packet::checked(server.copy_payload(message.as_slice()), Kind { text, compress }) else {
            godot_error!("WebSocketServer.{what}: a text message must be UTF-8");
            return failures;
        };
        let failed = server.broadcast(packet.data, Kind { text, compress }, to, exclude);
        report_failures(what, "client", self.base().instance_id(), &failed, &mut failures);
        self.flush_inline();
        failures
    }

    /// `send_messages` and `send_buffer`: message `i` (`bytes_of(item i)`) to `ids[i]`, each
    /// checked (UTF-8 for text) before any is queued; failures as `{index: Error}`.
    fn send_each<T>(
        &mut self,
        what: &str,
        ids: &[i32],
        messages: impl Iterator<Item = T>,
        bytes_of: impl Fn(&T) -> &[u8],
        (write_mode, text, compress): (i64, PackedByteArray, bool),
    ) -> VarDictionary {
        let mut failures = VarDictionary::new();
        let Some((server, all_text)) = self.raw_sender(what, write_mode) else {
            return failures;
        };
        if !text.is_empty() && text.len() != ids.len() {
            godot_error!(
                "WebSocketServer.{what}: {} ids but {} text flags; nothing was sent",
                ids.len(),
                text.len()
            );
            return failures;
        }
        let flags = text.as_slice();
        let mut batch = Vec::with_capacity(ids.len());
        for (&id, message) in ids.iter().zip(messages) {
            let is_text = flags.get(batch.len()).map_or(all_text, |&f| f != 0);
            let Some(packet) = Packet::checked(server.copy_payload(bytes_of(&message)), is_text) else {
                godot_error!(
                    "WebSocketServer.{what}: message {} is not UTF-8; nothing was sent",
                    batch.len()
                );
                return failures;
            };
            let kind = Kind {
                text: packet.text,
                compress,
            };
            batch.push((id, packet.data, kind));
        }
        let failed: Vec<(i64, BroadcastError)> = server
            .send_each(batch)
            .into_iter()
            .map(|(i, why)| (i as i64, why))
            .collect();
        report_failures(what, "message", self.base().instance_id(), &failed, &mut failures);
        self.flush_inline();
        failures
    }

    /// Inline I/O: a multi-send's messages are written before it returns, in one pass (any other
    /// send waits for the next `poll()`).
    pub(super) fn flush_inline(&mut self) {
        if let Some(server) = self.server.as_mut() {
            server.flush();
        }
    }

    /// The checks every raw-mode multi-send makes: raw mode, listening, a valid write mode (whether
    /// it is text). `None` after an error naming `what`.
    pub(super) fn raw_sender(&self, what: &str, write_mode: i64) -> Option<(&Server, bool)> {
        if self.multiplayer {
            godot_error!(
                "WebSocketServer.{what}: raw mode only; in multiplayer mode use set_target_peer() and put_packet()"
            );
            return None;
        }
        let Some(server) = &self.server else {
            godot_error!("WebSocketServer.{what}: not listening");
            return None;
        };
        match write_mode {
            0 => Some((server, true)),
            1 => Some((server, false)),
            m => {
                godot_error!(
                    "WebSocketServer.{what}: write_mode must be WRITE_MODE_TEXT (0) or WRITE_MODE_BINARY (1), not {m}"
                );
                None
            }
        }
    }
}

/// Failures of a multi-send (`(key, why)`: an id, or a position in the batch) as `{key: Error}`,
/// with one rate-limited warning.
pub(super) fn report_failures(
    what: &str,
    noun: &str,
    server: InstanceId,
    failed: &[(impl Copy + Into<i64> + std::fmt::Display, BroadcastError)],
    into: &mut VarDictionary,
) {
    for (key, why) in failed {
        let code = match why {
            BroadcastError::UnknownPeer => Error::ERR_DOES_NOT_EXIST,
            BroadcastError::Send(SendError::NotOpen) => Error::FAILED,
            BroadcastError::Send(SendError::Full(_)) => Error::ERR_OUT_OF_MEMORY,
        };
        into.set((*key).into(), code);
    }
    if let Some((key, why)) = failed.first() {
        // A send loop can repeat it: told once per server, then at most once a second.
        crate::ratelimit::warn(
            "broadcast",
            Some(server.to_i64()),
            format!(
                "WebSocketServer.{what}: not queued for {} {noun}(s), e.g. {key} ({why:?}); see the returned Dictionary",
                failed.len()
            ),
        );
    }
}
