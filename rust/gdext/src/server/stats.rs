//! The statistics: `get_stats`, `get_stat` and the Performance monitors.

use super::*;

#[godot_api(secondary)]
impl WebSocketServer {
    /// The server's statistics since [method listen], counted on the I/O thread (reading them costs
    /// a few atomic loads; [method MultiplayerPeer.poll] does no extra work for them). Keys:
    /// [code]connections_open[/code], [code]connections_handshaking[/code] (now);
    /// [code]accepted_total[/code], [code]refused_total[/code] ([member max_connections],
    /// [member max_handshakes_per_address], [member MultiplayerPeer.refuse_new_connections]),
    /// [code]timed_out_total[/code] ([member handshake_timeout]),
    /// [code]heartbeat_dropped_total[/code]; [code]messages_in_total[/code],
    /// [code]bytes_in_total[/code], [code]messages_out_total[/code], [code]bytes_out_total[/code]
    /// (payload bytes of whole messages; out: written to the socket); [code]messages_queued_in[/code],
    /// [code]bytes_queued_in[/code] (received, not yet read by the game),
    /// [code]messages_queued_out[/code], [code]bytes_queued_out[/code] (sent by the game, not yet
    /// written). All 0 when not listening. [i]Not in Godot.[/i]
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let mut dict = VarDictionary::new();
        for (key, value) in self.stats().named() {
            dict.set(key, value as i64);
        }
        dict
    }

    /// One value of [method get_stats] by its key (what the Performance monitors of
    /// [method register_monitors] call); 0 (with an error) for an unknown key.
    #[func]
    fn get_stat(&self, key: GString) -> i64 {
        let key = key.to_string();
        match self.stats().named().into_iter().find(|(k, _)| *k == key) {
            Some((_, v)) => v as i64,
            None => {
                godot_error!("WebSocketServer.get_stat: no statistic {key:?} (see get_stats())");
                0
            }
        }
    }

    /// Adds every statistic of [method get_stats] to Godot's [Performance] custom monitors, so that
    /// they graph live in the editor's Debugger > Monitors tab while the game runs, under
    /// [code]WebSocketServer <name>/<key>[/code]. [param name] defaults to this object's instance id,
    /// so several servers get distinct monitors. Removed by [method unregister_monitors] and when the
    /// server is freed. Returns [constant @GlobalScope.ERR_ALREADY_EXISTS] if monitors of that name
    /// exist. [i]Not in Godot.[/i]
    #[func]
    fn register_monitors(&mut self, #[opt(default = "")] name: GString) -> Error {
        let name = match name.to_string() {
            n if n.is_empty() => self.base().instance_id().to_string(),
            n => n,
        };
        let mut performance = godot::classes::Performance::singleton();
        let ids: Vec<StringName> = Stats::NAMES
            .iter()
            .map(|key| StringName::from(&format!("WebSocketServer {name}/{key}")))
            .collect();
        if let Some(taken) = ids.iter().find(|id| performance.has_custom_monitor(*id)) {
            godot_error!("WebSocketServer.register_monitors: the monitor {taken} exists already; pick another name");
            return Error::ERR_ALREADY_EXISTS;
        }
        self.unregister_monitors();
        let callable = Callable::from_object_method(&self.to_gd(), "get_stat");
        for (id, key) in ids.iter().zip(Stats::NAMES) {
            performance
                .add_custom_monitor_ex(id, &callable)
                .arguments(&varray![&key.to_variant()])
                .done();
        }
        self.monitors = ids;
        Error::OK
    }

    /// Removes the monitors of [method register_monitors].
    #[func]
    pub(super) fn unregister_monitors(&mut self) {
        let mut performance = godot::classes::Performance::singleton();
        for id in self.monitors.drain(..) {
            if performance.has_custom_monitor(&id) {
                performance.remove_custom_monitor(&id);
            }
        }
    }

    /// How many times accepting a connection failed for lack of resources (the process ran out of
    /// file descriptors, [code]EMFILE[/code]) since [method listen]. The first failure of a run of
    /// them is reported with an error; the server retries with a growing delay (at most 1 s, and
    /// at once when a connection closes) and accepts again by itself. [i]Not in Godot.[/i]
    #[func]
    fn get_accept_error_count(&self) -> i64 {
        self.server.as_ref().map_or(0, |s| s.accept_errors() as i64)
    }

    /// How many clients were refused since [method listen] by [member max_connections] or
    /// [member max_handshakes_per_address]. [i]Not in Godot.[/i]
    #[func]
    fn get_refused_connection_count(&self) -> i64 {
        self.server.as_ref().map_or(0, |s| s.refused_connections() as i64)
    }
}

impl WebSocketServer {
    /// The statistics of `get_stats` (all 0 when not listening).
    pub(super) fn stats(&self) -> Stats {
        self.server
            .as_ref()
            .map_or_else(Stats::default, |s| s.totals().snapshot())
    }
}
