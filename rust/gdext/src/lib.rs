//! The gdext binding of the WebSocketServer addon: it translates Godot calls, properties and
//! signals to and from `wss_core`, and does nothing else.

use godot::prelude::*;

mod peer;
mod ratelimit;
mod server;

struct WebSocketServerExtension;

#[gdextension]
unsafe impl ExtensionLibrary for WebSocketServerExtension {}
