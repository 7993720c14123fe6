//! A connection's TCP socket as the mio shell reads it: readiness is edge-triggered, so reading
//! goes on until the kernel has nothing more, and a short read already says so where that holds.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;

/// Whether a read that got less than it asked for shows the kernel had nothing more (epoll(7),
/// Q9; kqueue's `EV_CLEAR` the same): where readiness is edge-triggered by every arrival. mio's
/// Windows backend is not such a selector, so there every read goes on until `WouldBlock`.
const SHORT_READ_DRAINS: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd"
));

/// A connection's TCP socket. Readiness is edge-triggered, so reading goes on until the kernel has
/// nothing more. A read that got less than it asked for already says so: the read after it is
/// answered `WouldBlock` without a system call (one `recv` per message instead of two), and any
/// byte that arrives later brings a new readiness event, which ends that. Not after an event that
/// also reported the end of the stream or an error: data followed by the client's FIN can arrive
/// as one edge, and only a read that returns 0 sees the end.
pub(crate) struct Socket {
    pub(crate) tcp: TcpStream,
    /// A read since the last readiness event got less than it asked for.
    drained: bool,
    /// The last readiness event reported neither the end of the stream nor an error.
    short_read_drains: bool,
}

impl Socket {
    pub(crate) fn new(tcp: TcpStream) -> Socket {
        Socket {
            tcp,
            drained: false,
            short_read_drains: false,
        }
    }

    /// A readiness event for this socket; `closed_or_failed`: it reported the end of the stream
    /// or an error.
    pub(crate) fn ready(&mut self, closed_or_failed: bool) {
        self.drained = false;
        self.short_read_drains = SHORT_READ_DRAINS && !closed_or_failed;
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.drained {
            return Err(ErrorKind::WouldBlock.into());
        }
        let n = self.tcp.read(buf)?;
        self.drained = self.short_read_drains && n > 0 && n < buf.len();
        Ok(n)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

impl crate::transport::Socket for Socket {
    fn shutdown_write(&mut self) {
        let _ = self.tcp.shutdown(Shutdown::Write);
    }

    fn set_nodelay(&mut self, enabled: bool) {
        let _ = self.tcp.set_nodelay(enabled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A connected pair: (our side as a `Socket`, the client's std stream).
    fn pair() -> (Socket, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Socket::new(TcpStream::from_std(ours)), client)
    }

    /// Reads until `want` bytes came (they may take a moment on loopback).
    fn read_some(sock: &mut Socket, buf: &mut [u8], want: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match sock.read(buf) {
                Ok(n) if n >= want => return n,
                Ok(n) => panic!("{n} bytes, expected {want}"),
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn a_short_read_ends_reading_until_the_next_readiness_event() {
        let (mut sock, mut client) = pair();
        let mut buf = [0u8; 64];
        sock.ready(false);
        client.write_all(b"hello").unwrap();
        assert_eq!(read_some(&mut sock, &mut buf, 5), 5);
        // More arrives: it brings a readiness event of its own, so until that event this socket
        // answers without asking the kernel. Where readiness is not edge-triggered by every
        // arrival (Windows), the rule is off and the next read asks the kernel at once.
        client.write_all(b"world").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        if SHORT_READ_DRAINS {
            assert_eq!(sock.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
            sock.ready(false);
        }
        assert_eq!(sock.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"world");
    }

    #[test]
    fn a_full_read_and_an_event_with_the_end_of_stream_keep_asking_the_kernel() {
        let (mut sock, mut client) = pair();
        // A read that filled its buffer says nothing about what is left.
        let mut small = [0u8; 4];
        sock.ready(false);
        client.write_all(b"abcdefgh").unwrap();
        assert_eq!(read_some(&mut sock, &mut small, 4), 4);
        assert_eq!(sock.read(&mut small).unwrap(), 4);
        // Data followed by the FIN as one edge: the short read is not the end, the 0 after it is.
        let mut buf = [0u8; 64];
        client.write_all(b"bye").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        sock.ready(true);
        assert_eq!(sock.read(&mut buf).unwrap(), 3);
        assert_eq!(sock.read(&mut buf).unwrap(), 0, "the end of the stream is seen");
    }

    #[test]
    fn before_any_readiness_event_every_read_asks_the_kernel() {
        let (mut sock, mut client) = pair();
        let mut buf = [0u8; 64];
        client.write_all(b"one").unwrap();
        assert_eq!(read_some(&mut sock, &mut buf, 3), 3);
        client.write_all(b"two").unwrap();
        assert_eq!(read_some(&mut sock, &mut buf, 3), 3);
    }
}
