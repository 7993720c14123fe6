//! The listening socket: bound to one address or dual-stack to all, with a deep accept queue, and
//! the bind failures told apart (port in use, address not here, anything else).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use mio::net::TcpListener;

use crate::config::BindIp;
use crate::error::ListenError;

pub(crate) fn cant_create(e: io::Error) -> ListenError {
    ListenError::CantCreate(format!("cannot create the server: {e}"))
}

pub(crate) fn bind(ip: BindIp, port: u16) -> Result<TcpListener, ListenError> {
    let classify = |addr: SocketAddr, e: io::Error| match e.kind() {
        io::ErrorKind::AddrInUse => ListenError::InUse(format!("cannot listen on {addr}: the port is already in use")),
        io::ErrorKind::AddrNotAvailable => {
            ListenError::BadAddress(format!("cannot listen on {addr}: no interface has this address"))
        }
        _ => ListenError::CantCreate(format!("cannot listen on {addr}: {e}")),
    };
    match ip {
        BindIp::Ip(ip) => {
            let addr = SocketAddr::new(ip, port);
            listener(addr).map_err(|e| classify(addr, e))
        }
        // "*": one dual-stack IPv6 socket serves IPv4 too; without IPv6, plain IPv4.
        BindIp::Any => {
            let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
            match listener(v6) {
                Ok(l) => Ok(l),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(classify(v6, e)),
                Err(_) => {
                    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
                    listener(v4).map_err(|e| classify(v4, e))
                }
            }
        }
    }
}

/// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`). std and mio use
/// 128, which drops SYNs when a crowd connects at once; each dropped SYN costs that client a
/// one-second retransmit.
pub const LISTEN_BACKLOG: i32 = 4096;

fn listener(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // So that a restarted server can bind while old connections sit in TIME_WAIT. Not on
    // Windows, where SO_REUSEADDR lets another process take over a port in use.
    #[cfg(not(windows))]
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}
