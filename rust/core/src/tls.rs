//! `wss://`: a rustls server configuration built from PEM text, and a non-blocking stream that
//! runs rustls over a socket so the connection state machine sees plain bytes.
//!
//! The crypto provider is ring (see the workspace `Cargo.toml`). Only TLS 1.2 and 1.3 exist in
//! rustls; its default cipher suites are used.

use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::ServerName;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ConfigError;

/// The PEM text of what `listen` was given.
#[derive(Clone, Debug, Default)]
pub struct TlsPem {
    /// The server's certificate, possibly followed by its chain (as in a `fullchain.pem`).
    pub certificate: String,
    pub private_key: String,
    /// More chain certificates, sent after `certificate`'s.
    pub ca_chain: String,
}

fn certs(what: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    // An empty certificate resource saves as a PEM block with nothing in it: skip such blocks.
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter(|c| !c.as_ref().is_ok_and(|c| c.is_empty()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError(format!("{what} is not valid PEM: {e}")))
}

/// Builds the rustls configuration. Errors name the problem in words for `push_error`.
pub fn server_config(pem: &TlsPem) -> Result<Arc<ServerConfig>, ConfigError> {
    let mut chain = certs("ssl_certificate", &pem.certificate)?;
    if chain.is_empty() {
        return Err(ConfigError("ssl_certificate holds no certificate".into()));
    }
    chain.extend(certs("ca_chain", &pem.ca_chain)?);
    if pem.private_key.trim().is_empty() {
        return Err(ConfigError("private_key holds no key".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(pem.private_key.as_bytes())
        .map_err(|e| ConfigError(format!("private_key is not a PEM private key: {e}")))?;
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConfigError(format!("TLS configuration: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => ConfigError("private_key does not match ssl_certificate".into()),
            rustls::Error::General(_) => ConfigError(format!(
                "private_key is not a supported key (RSA of 2048 bits or more, ECDSA P-256/P-384, Ed25519): {e}"
            )),
            e => ConfigError(format!("private_key or ssl_certificate cannot be used: {e}")),
        })?;
    Ok(Arc::new(config))
}

/// A client configuration trusting the certificates in `ca_pem` (for tests and the benchmark's
/// load generator).
pub fn client_config(ca_pem: &[u8]) -> Result<Arc<ClientConfig>, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| ConfigError(format!("CA file is not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| ConfigError(format!("CA certificate cannot be used: {e}")))?;
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A socket with rustls in front of it, for non-blocking use (the server's side; the benchmark's
/// load generator uses the client's).
///
/// Reading decrypts what the socket has; writing encrypts into rustls and pushes ciphertext to the
/// socket. rustls holds at most one write's worth of ciphertext (`MAX_PLAINTEXT_PER_WRITE` bytes
/// of plaintext): while any is left unsent, `write` and `flush` report `WouldBlock`, so the rest
/// waits (and is counted) in the connection's own queue, and a flush only succeeds once everything
/// is on the socket. `close_notify` sends TLS's own end-of-stream alert.
pub struct TlsStream<S> {
    conn: Connection,
    sock: S,
    eof: bool,
    close_notify_sent: bool,
}

/// Plaintext taken per `write` call: one TLS record's worth.
pub const MAX_PLAINTEXT_PER_WRITE: usize = 16 * 1024;

impl<S: Read + Write> TlsStream<S> {
    pub fn new(config: Arc<ServerConfig>, sock: S) -> io::Result<TlsStream<S>> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream::with(conn.into(), sock))
    }

    pub fn client(config: Arc<ClientConfig>, name: ServerName<'static>, sock: S) -> io::Result<TlsStream<S>> {
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(TlsStream::with(conn.into(), sock))
    }

    fn with(mut conn: Connection, sock: S) -> TlsStream<S> {
        conn.set_buffer_limit(None);
        TlsStream {
            conn,
            sock,
            eof: false,
            close_notify_sent: false,
        }
    }

    /// Queues TLS's `close_notify` alert (once) and pushes every pending byte to the socket;
    /// `WouldBlock` if some is left.
    pub fn close_notify(&mut self) -> io::Result<()> {
        if !self.close_notify_sent {
            self.close_notify_sent = true;
            self.conn.send_close_notify();
        }
        self.push_tls()
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.sock
    }

    /// The host name the client sent (SNI), once its hello has been read.
    pub fn server_name(&self) -> Option<String> {
        match &self.conn {
            Connection::Server(s) => s.server_name().map(str::to_owned),
            Connection::Client(_) => None,
        }
    }

    /// Writes pending ciphertext; `WouldBlock` if some is left.
    fn push_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Pushes ciphertext if the socket takes it; a full socket is not an error here.
    fn push_tls_if_possible(&mut self) -> io::Result<()> {
        match self.push_tls() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The peer closed the socket without close_notify: an EOF to the caller.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(0);
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // Send the alert rustls queued, then fail.
                let _ = self.push_tls();
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
            // Handshake messages (or a key update) may be due.
            self.push_tls_if_possible()?;
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push_tls()?;
        let n = self
            .conn
            .writer()
            .write(&buf[..buf.len().min(MAX_PLAINTEXT_PER_WRITE)])?;
        self.push_tls_if_possible()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.writer().flush()?;
        self.push_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../../godot-project/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn pem(cert: &str, key: &str, chain: &str) -> TlsPem {
        TlsPem {
            certificate: cert.into(),
            private_key: key.into(),
            ca_chain: chain.into(),
        }
    }

    fn error(p: &TlsPem) -> String {
        server_config(p).expect_err("expected an error").0
    }

    #[test]
    fn rsa_with_chain_and_ecdsa_are_accepted() {
        assert!(server_config(&pem(
            &fixture("leaf.crt"),
            &fixture("leaf.key"),
            &fixture("intermediate.crt")
        ))
        .is_ok());
        assert!(server_config(&pem(&fixture("ecdsa.crt"), &fixture("ecdsa.key"), "")).is_ok());
    }

    #[test]
    fn bad_material_is_named() {
        let (crt, key) = (fixture("leaf.crt"), fixture("leaf.key"));
        assert_eq!(
            error(&pem(&crt, &fixture("ecdsa.key"), "")),
            "private_key does not match ssl_certificate"
        );
        assert_eq!(error(&pem("", &key, "")), "ssl_certificate holds no certificate");
        assert_eq!(error(&pem(&crt, "", "")), "private_key holds no key");
        assert!(error(&pem(
            &crt,
            "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
            ""
        ))
        .starts_with("private_key is not a PEM private key"));
        assert!(error(&pem(&crt, &crt, "")).starts_with("private_key is not a PEM private key"));
    }
}
