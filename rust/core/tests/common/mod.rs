//! Helpers shared by the loopback test files.

use wss_core::{BindIp, Server, ServerConfig};

/// A server on a free loopback port.
pub fn listen(config: ServerConfig) -> Server {
    Server::listen(&ServerConfig {
        bind_ip: BindIp::parse("127.0.0.1").unwrap(),
        port: 0,
        ..config
    })
    .unwrap()
}
