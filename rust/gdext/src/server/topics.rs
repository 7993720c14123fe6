//! Topics (raw mode): subscribe clients to names, publish to a name's subscribers in one call, and
//! the bus that carries topics across processes (`bus_url`).

use wss_core::topics::TopicError;

use super::batch::report_failures;
use super::*;

#[godot_api(secondary)]
impl WebSocketServer {
    /// Subscribes client [param id] to [param topic] (1 to 256 bytes of UTF-8; a client may have
    /// up to 64 topics). Subscribing again changes nothing. A client's subscriptions end when it
    /// disconnects. With [member bus_url], the process starts hearing the topic from the other
    /// processes when its first local subscriber comes. Raw mode only.
    ///
    /// Returns [constant @GlobalScope.ERR_DOES_NOT_EXIST] for an id that is not connected,
    /// [constant @GlobalScope.ERR_INVALID_PARAMETER] for a bad name,
    /// [constant @GlobalScope.ERR_OUT_OF_MEMORY] past 64 topics, [constant @GlobalScope.ERR_UNCONFIGURED]
    /// when not listening (or in multiplayer mode). [i]Not in Godot.[/i]
    #[func]
    fn subscribe(&mut self, id: i64, topic: GString) -> Error {
        let Some(server) = self.topic_server("subscribe") else {
            return Error::ERR_UNCONFIGURED;
        };
        topic_result("subscribe", server.subscribe(id as i32, &topic.to_string()))
    }

    /// Ends client [param id]'s subscription to [param topic]. Returns
    /// [constant @GlobalScope.ERR_DOES_NOT_EXIST] if it is not subscribed (or not connected).
    /// [i]Not in Godot.[/i]
    #[func]
    fn unsubscribe(&mut self, id: i64, topic: GString) -> Error {
        let Some(server) = self.topic_server("unsubscribe") else {
            return Error::ERR_UNCONFIGURED;
        };
        topic_result("unsubscribe", server.unsubscribe(id as i32, &topic.to_string()))
    }

    /// Sends [param message] to every client subscribed to [param topic] except those in
    /// [param exclude], in one call, as [method broadcast] does (one shared copy of the bytes; the
    /// frames are made on the I/O thread), and returns the local subscribers that did not get it
    /// as [method broadcast] does ([code]{id: error}[/code]; [code]{}[/code] when all have it
    /// queued). [param write_mode] is [constant WebSocketServerPeer.WRITE_MODE_BINARY] (default)
    /// or [constant WebSocketServerPeer.WRITE_MODE_TEXT] (UTF-8); [param compress] as in
    /// [method broadcast].
    ///
    /// With [member bus_url], the message also goes to the topic's subscribers connected to every
    /// other process on the same bus: exactly once each while the bus is up, in the order
    /// published (per publisher and topic), never back to this process (its subscribers got it
    /// here). While the bus is down, nothing crosses: the publish is counted as failed, reported
    /// by [signal bus_publish_failed] and [method get_bus_stats] (at most once across processes,
    /// as Redis pub/sub itself). Without a bus, a publish to a topic nobody here is subscribed to
    /// is an error (told once a second): it reached nobody. Raw mode only. [i]Not in Godot.[/i]
    #[func]
    fn publish(
        &mut self,
        topic: GString,
        message: PackedByteArray,
        #[opt(default = 1)] write_mode: i64,
        #[opt(default = &PackedInt32Array::new())] exclude: PackedInt32Array,
        #[opt(default = true)] compress: bool,
    ) -> VarDictionary {
        let mut failures = VarDictionary::new();
        let Some((server, text)) = self.raw_sender("publish", write_mode) else {
            return failures;
        };
        let Some(packet) = Packet::checked(server.copy_payload(message.as_slice()), text) else {
            godot_error!("WebSocketServer.publish: a text message must be UTF-8");
            return failures;
        };
        let topic = topic.to_string();
        match server.publish(&topic, packet.data, Kind { text, compress }, exclude.as_slice()) {
            Ok(published) => {
                if published.bus.is_none() && published.subscribers == 0 {
                    crate::ratelimit::error(
                        "publish to nobody",
                        Some(self.base().instance_id().to_i64()),
                        format!("WebSocketServer.publish: nobody is subscribed to {topic:?} (and there is no bus_url): the message reached no one"),
                    );
                }
                report_failures(
                    "publish",
                    "client",
                    self.base().instance_id(),
                    &published.failed,
                    &mut failures,
                );
            }
            Err(e) => godot_error!("WebSocketServer.publish: {e}"),
        }
        self.flush_inline();
        failures
    }

    /// The clients of this process subscribed to [param topic]. [i]Not in Godot.[/i]
    #[func]
    fn get_subscribers(&self, topic: GString) -> PackedInt32Array {
        self.server
            .as_ref()
            .map(|s| s.subscribers(&topic.to_string()).into_iter().collect())
            .unwrap_or_default()
    }

    /// The topics client [param id] is subscribed to. [i]Not in Godot.[/i]
    #[func]
    fn get_topics(&self, id: i64) -> PackedStringArray {
        self.server
            .as_ref()
            .map(|s| {
                s.topics_of(id as i32)
                    .iter()
                    .map(|t| GString::from(t.as_str()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the bus ([member bus_url]) is connected now. [i]Not in Godot.[/i]
    #[func]
    fn is_bus_connected(&self) -> bool {
        self.server.as_ref().is_some_and(Server::is_bus_up)
    }

    /// The bus's counters since [method listen]: [code]published[/code] (messages the bus took),
    /// [code]failed[/code] (publishes that did not reach it), [code]received[/code] (messages of
    /// other processes), [code]dropped[/code] (received but not deliverable: the game did not poll
    /// while 65,536 messages or 64 MiB waited, or not in this server's format),
    /// [code]undelivered[/code] (local subscribers whose queue was full when a message of another
    /// process came). All [code]0[/code] without a bus. [i]Not in Godot.[/i]
    #[func]
    fn get_bus_stats(&self) -> Dictionary<GString, i64> {
        let (stats, undelivered) = self.server.as_ref().map(Server::bus_stats).unwrap_or_default();
        let mut d = Dictionary::new();
        for (k, v) in [
            ("published", stats.published),
            ("failed", stats.failed),
            ("received", stats.received),
            ("dropped", stats.dropped),
            ("undelivered", undelivered),
        ] {
            d.set(k, v as i64);
        }
        d
    }
}

impl WebSocketServer {
    /// The running server for a topic call, in raw mode; `None` after an error naming `what`.
    fn topic_server(&mut self, what: &str) -> Option<&mut Server> {
        if self.multiplayer {
            godot_error!("WebSocketServer.{what}: topics are for raw mode (gd_mp_api = false)");
            return None;
        }
        if self.server.is_none() {
            godot_error!("WebSocketServer.{what}: not listening");
        }
        self.server.as_mut()
    }
}

fn topic_result(what: &str, result: Result<(), TopicError>) -> Error {
    let Err(e) = result else {
        return Error::OK;
    };
    godot_error!("WebSocketServer.{what}: {e}");
    match e {
        TopicError::BadName(_) => Error::ERR_INVALID_PARAMETER,
        TopicError::TooMany(_) => Error::ERR_OUT_OF_MEMORY,
        TopicError::UnknownPeer(_) | TopicError::NotSubscribed(..) => Error::ERR_DOES_NOT_EXIST,
    }
}
