//! The shell's side of one connection: moves bytes between its socket and its `Connection`.
//!
//! In: bytes read from the socket go first through admission's PROXY header reader
//! (`ServerConfig::proxy_protocol`: the header comes before anything else, beneath TLS), then
//! through rustls for `wss://` (ciphertext in, plaintext out), then to the connection, only while
//! it wants them. Out: the connection's pending bytes go through rustls (one record's worth at a
//! time, and only once the ciphertext before them is on the socket) or straight to the socket;
//! then the end of our direction the connection asks for (`Shutdown`).
//!
//! Nothing here decides anything about the protocol; every byte held here is bounded: one read
//! (`READ_CHUNK`) of ciphertext, rustls's own buffers (16 KiB of received plaintext, one record of
//! ciphertext to send), and the PROXY header (`MAX_PROXY_HEADER`). The socket is anything that
//! reads and writes without blocking (`Socket`): mio's in the driver, `sim::Pipe` in tests.

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;

use rustls::ServerConnection;

use crate::connection::{Connection, Context, Shutdown, Status, READ_CHUNK};
use crate::proxy::{self, ProxyHeader};

/// Plaintext handed to rustls at a time: one TLS record's worth.
pub const MAX_PLAINTEXT_PER_WRITE: usize = 16 * 1024;

/// A connection's socket as the shell needs it: non-blocking reads and writes (`WouldBlock` when
/// there is nothing to read or no room), and the end of our direction.
pub trait Socket: Read + Write {
    /// Sends our FIN: nothing more will be written.
    fn shutdown_write(&mut self);

    /// Nagle's algorithm off (`true`) or on, where the socket has it.
    fn set_nodelay(&mut self, _enabled: bool) {}
}

/// The layers between one socket and its connection.
pub struct Transport {
    /// Waiting for the PROXY header: the bytes of it so far.
    proxy: Option<Vec<u8>>,
    tls: Option<Box<ServerConnection>>,
    /// Ciphertext read from the socket that rustls has not taken yet.
    raw: Vec<u8>,
    /// The socket's end of stream was read.
    eof: bool,
    /// ... and handed on (to rustls, or to the connection).
    eof_passed: bool,
    /// The TLS handshake's host name was handed to the connection.
    sni_passed: bool,
    close_notify_sent: bool,
    /// The socket refused bytes: nothing is written until it reports writable (`writable`).
    write_blocked: bool,
    /// The socket (or these layers) may hold input the connection has not seen: set by
    /// `readable`, cleared once a read finds nothing. No read is tried while it is clear.
    input_waiting: bool,
}

/// Why a round of reading stopped.
#[derive(PartialEq, Eq)]
enum Stop {
    /// The socket has nothing more now (or the stream ended).
    Drained,
    /// The connection does not want input now; the socket may hold more.
    NotWanted,
}

impl Transport {
    /// `tls`: the server's rustls configuration for `wss://`. `proxy_protocol`: a PROXY header
    /// comes first.
    pub fn new(tls: Option<&Arc<rustls::ServerConfig>>, proxy_protocol: bool) -> std::io::Result<Transport> {
        let tls = match tls {
            Some(config) => {
                let mut conn = ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
                // The connection's own queue bounds what waits; rustls takes one record at a time.
                conn.set_buffer_limit(None);
                Some(Box::new(conn))
            }
            None => None,
        };
        Ok(Transport {
            proxy: proxy_protocol.then(Vec::new),
            tls,
            raw: Vec::new(),
            eof: false,
            eof_passed: false,
            sni_passed: false,
            close_notify_sent: false,
            write_blocked: false,
            input_waiting: true,
        })
    }

    /// The socket can take bytes again.
    pub fn writable(&mut self) {
        self.write_blocked = false;
    }

    /// The socket has input (or its end of stream, or an error) again.
    pub fn readable(&mut self) {
        self.input_waiting = true;
    }

    /// Whether a `service` could hand the connection input now: it wants some, and the socket or
    /// these layers may hold some.
    pub fn can_deliver(&self, conn: &Connection) -> bool {
        conn.wants_input() && self.input_waiting
    }

    /// Whether there are bytes to write and a socket that may take them.
    pub fn wants_write(&self, conn: &Connection) -> bool {
        !self.write_blocked
            && (conn.has_output()
                || conn.shutdown_due().is_some()
                || self.tls.as_ref().is_some_and(|t| t.wants_write()))
    }

    /// Moves every byte that can move now, both ways: reads while the connection wants input and
    /// the socket has some, writes while the socket takes bytes, ends our direction when the
    /// connection asks; again while writing lets reading resume.
    pub fn service<S: Socket>(&mut self, sock: &mut S, conn: &mut Connection, cx: &mut Context) -> Status {
        if conn.begin_service(cx) == Status::Gone {
            return Status::Gone;
        }
        loop {
            // Most services only write (the game's messages): no read, no read buffer.
            let may_read = self.input_waiting || !self.raw.is_empty() || (self.eof && !self.eof_passed);
            let stop = match may_read {
                false => Stop::Drained,
                true => match self.pull(sock, conn, cx) {
                    Ok(stop) => stop,
                    Err(()) => return Status::Gone,
                },
            };
            if self.push(sock, conn, cx) == Status::Gone {
                return Status::Gone;
            }
            if !(stop == Stop::NotWanted && conn.wants_input()) {
                return Status::Alive;
            }
        }
    }

    /// Reads until the socket has nothing more or the connection wants nothing more.
    fn pull<S: Socket>(&mut self, sock: &mut S, conn: &mut Connection, cx: &mut Context) -> Result<Stop, ()> {
        let mut buf = [0u8; READ_CHUNK];
        loop {
            if self.deliver(sock, conn, cx, &[]) == Status::Gone {
                return Err(());
            }
            if !conn.wants_input() {
                return Ok(Stop::NotWanted);
            }
            if self.eof || !self.raw.is_empty() || !self.input_waiting {
                self.input_waiting = !self.raw.is_empty();
                return Ok(Stop::Drained);
            }
            let n = match sock.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.input_waiting = false;
                    return Ok(Stop::Drained);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    let _ = conn.on_reset(cx);
                    return Err(());
                }
            };
            if n == 0 {
                self.eof = true;
                continue;
            }
            let mut bytes = &buf[..n];
            let held;
            if let Some(header) = &mut self.proxy {
                header.extend_from_slice(bytes);
                match proxy::parse(header) {
                    ProxyHeader::Incomplete => continue,
                    // Not from the proxy: dropped without an answer (it may not even speak HTTP).
                    ProxyHeader::Invalid => {
                        let _ = conn.on_reset(cx);
                        return Err(());
                    }
                    ProxyHeader::Done { len, source } => {
                        if let Some(source) = source {
                            conn.set_origin(source);
                        }
                        held = self.proxy.take().expect("reading the header");
                        bytes = &held[len..];
                    }
                }
            }
            let status = if self.tls.is_some() {
                self.deliver(sock, conn, cx, bytes)
            } else if !bytes.is_empty() {
                conn.handle_input(bytes, cx)
            } else {
                Status::Alive
            };
            if status == Status::Gone {
                return Err(());
            }
        }
    }

    /// Hands the connection what the layers hold: TLS plaintext (decrypting held ciphertext, then
    /// `fresh` ciphertext just read, as it goes), and the end of stream once everything before it
    /// is taken. Ciphertext is kept (`raw`) only when the connection stops taking input.
    fn deliver<S: Socket>(&mut self, sock: &mut S, conn: &mut Connection, cx: &mut Context, fresh: &[u8]) -> Status {
        let Some(tls) = &mut self.tls else {
            if self.eof && !self.eof_passed {
                if self.proxy.is_some() {
                    // The stream ended inside the PROXY header.
                    return conn.on_reset(cx);
                }
                self.eof_passed = true;
                return conn.handle_eof(cx);
            }
            return Status::Alive;
        };
        let mut fresh = fresh;
        if !self.raw.is_empty() && !fresh.is_empty() {
            self.raw.extend_from_slice(fresh);
            fresh = &[];
        }
        let mut plain = [0u8; READ_CHUNK];
        loop {
            while conn.wants_input() {
                match tls.reader().read(&mut plain) {
                    // close_notify: the client's end of stream.
                    Ok(0) => return conn.handle_eof(cx),
                    Ok(n) => {
                        if conn.handle_input(&plain[..n], cx) == Status::Gone {
                            return Status::Gone;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // The socket closed without close_notify: an end of stream all the same.
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return conn.handle_eof(cx),
                    Err(_) => return conn.on_reset(cx),
                }
            }
            if !conn.wants_input() {
                // The rest waits in rustls (at most its received-plaintext limit) and in `raw`.
                self.raw.extend_from_slice(fresh);
                return Status::Alive;
            }
            let from_raw = !self.raw.is_empty();
            let mut source: &[u8] = if from_raw { &self.raw } else { fresh };
            if source.is_empty() {
                if !self.eof || self.eof_passed {
                    return Status::Alive;
                }
                self.eof_passed = true;
                // An empty read: rustls sees the end of the stream.
                let _ = tls.read_tls(&mut &[][..]);
                continue;
            }
            match tls.read_tls(&mut source) {
                Ok(n) if n > 0 && from_raw => {
                    self.raw.drain(..n);
                    if self.raw.is_empty() {
                        self.raw = Vec::new();
                    }
                }
                Ok(n) if n > 0 => fresh = &fresh[n..],
                // rustls takes nothing more although its plaintext was taken: not a TLS client.
                _ => return conn.on_reset(cx),
            }
            if tls.process_new_packets().is_err() {
                // Send the alert rustls queued, then drop the client.
                while tls.wants_write() {
                    match tls.write_tls(sock) {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    }
                }
                return conn.on_reset(cx);
            }
            if !self.sni_passed && !tls.is_handshaking() {
                self.sni_passed = true;
                conn.set_server_name(tls.server_name().map(str::to_owned));
            }
        }
    }

    /// Writes while the socket takes bytes: TLS's ciphertext first, then the connection's bytes
    /// (through rustls, one record at a time); then the shutdown the connection asks for.
    fn push<S: Socket>(&mut self, sock: &mut S, conn: &mut Connection, cx: &mut Context) -> Status {
        loop {
            if self.write_blocked {
                return Status::Alive;
            }
            if let Some(tls) = &mut self.tls {
                if tls.wants_write() {
                    match tls.write_tls(sock) {
                        Ok(0) => return conn.on_reset(cx),
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => self.write_blocked = true,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => return conn.on_reset(cx),
                    }
                    continue;
                }
            }
            let out = conn.pending_output();
            if !out.is_empty() {
                let written = match &mut self.tls {
                    Some(tls) => tls.writer().write(&out[..out.len().min(MAX_PLAINTEXT_PER_WRITE)]),
                    None => sock.write(out),
                };
                let n = match written {
                    Ok(0) => return conn.on_reset(cx),
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        self.write_blocked = true;
                        return Status::Alive;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return conn.on_reset(cx),
                };
                if conn.transmitted(n, cx) == Status::Gone {
                    return Status::Gone;
                }
                continue;
            }
            match conn.shutdown_due() {
                None => return Status::Alive,
                Some(Shutdown::Fin) => {
                    // Not over TLS: Godot's TLS client reports close code -1 instead of the Close
                    // frame it got when any end of stream (close_notify or a bare FIN) follows the
                    // frame at once. TLS clients answer our Close and close; close_timeout bounds
                    // those that do not.
                    if self.tls.is_none() {
                        sock.shutdown_write();
                    }
                    conn.fin_sent();
                }
                Some(Shutdown::Close) => {
                    if let Some(tls) = &mut self.tls {
                        if !self.close_notify_sent {
                            self.close_notify_sent = true;
                            tls.send_close_notify();
                            continue;
                        }
                    }
                    // The client may have gone already; there is nothing to do about a failure.
                    sock.shutdown_write();
                    return conn.write_closed(cx);
                }
            }
        }
    }
}
