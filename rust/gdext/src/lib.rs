//! The gdext binding of the WebSocketServer addon: it translates Godot calls, properties and
//! signals to and from `wss_core`, and does nothing else.

use godot::prelude::*;

mod messages;
mod peer;
mod ratelimit;
mod request;
mod server;

struct WebSocketServerExtension;

#[gdextension]
unsafe impl ExtensionLibrary for WebSocketServerExtension {
    fn on_stage_deinit(stage: InitStage) {
        // The I/O threads of stopped servers finish closing their sockets in the background;
        // none may still run this library's code once Godot unloads it.
        if stage == InitStage::Scene {
            wss_core::join_stopped_io_threads();
        }
    }
}

/// Large buffers get pages of their own, handed back the moment they are freed (see
/// `wss_core::alloc`); only this library's allocations, not the game's.
#[global_allocator]
static ALLOCATOR: wss_core::alloc::Allocator = wss_core::alloc::Allocator;
