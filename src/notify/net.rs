//! The connection under both the HTTP and the SMTP client: TCP with one
//! deadline for the whole exchange, optionally inside TLS (rustls with the
//! ring provider), trusting Mozilla's roots plus an optional CA file.
//!
//! Bounds: every read and write gets the time left before the deadline;
//! a CA file is read up to [`crate::limits::NOTIFY_MAX_CA_FILE`] bytes.

use super::SendError;
use crate::limits::NOTIFY_MAX_CA_FILE;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The certificates of `ca_file` (PEM).
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, SendError> {
    let name = path.display();
    let f = std::fs::File::open(path).map_err(|e| SendError::Config(format!("ca_file {name}: {e}")))?;
    let mut pem = Vec::new();
    f.take(NOTIFY_MAX_CA_FILE + 1).read_to_end(&mut pem).map_err(|e| SendError::Config(format!("ca_file {name}: {e}")))?;
    if pem.len() as u64 > NOTIFY_MAX_CA_FILE {
        return Err(SendError::Config(format!("ca_file {name}: larger than 1 MiB")));
    }
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| SendError::Config(format!("ca_file {name}: not a PEM file of certificates ({e})")))?;
    if certs.is_empty() {
        return Err(SendError::Config(format!("ca_file {name}: holds no certificate")));
    }
    Ok(certs)
}

/// A TLS client configuration trusting Mozilla's roots and those of `ca_file`.
pub(crate) fn tls_client(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, SendError> {
    let mut store = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(p) = ca_file {
        let (added, _) = store.add_parsable_certificates(read_ca_file(p)?);
        if added == 0 {
            return Err(SendError::Config(format!("ca_file {}: no usable certificate", p.display())));
        }
    }
    let c = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| SendError::Config(e.to_string()))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(c))
}

/// A connection, plain or inside TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    /// Sets the time left before `deadline` as the socket's read and write
    /// timeout; an error once it has passed.
    pub(crate) fn arm(&self, deadline: Instant) -> std::io::Result<()> {
        arm(self.tcp(), deadline)
    }

    /// `[192.0.2.1]` or `[IPv6:2001:db8::1]`: our end's address literal.
    pub(crate) fn local_literal(&self) -> String {
        match self.tcp().local_addr().map(|a| a.ip()) {
            Ok(std::net::IpAddr::V4(ip)) => format!("[{ip}]"),
            Ok(std::net::IpAddr::V6(ip)) => format!("[IPv6:{ip}]"),
            Err(_) => "[127.0.0.1]".into(),
        }
    }

    /// Starts TLS on a plain connection and completes the handshake (so a
    /// certificate problem is reported as such), before `deadline`.
    pub(crate) fn into_tls(self, host: &str, tls: &Arc<rustls::ClientConfig>, deadline: Instant) -> Result<Stream, std::io::Error> {
        let tcp = match self {
            Stream::Plain(t) => t,
            Stream::Tls(_) => return Err(std::io::Error::other("TLS started twice")),
        };
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host} is not a name TLS can check")))?;
        let conn = rustls::ClientConnection::new(Arc::clone(tls), name).map_err(std::io::Error::other)?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        arm(&s.sock, deadline)?;
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(Stream::Tls(Box::new(s)))
    }
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(b),
            Stream::Tls(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(b),
            Stream::Tls(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

fn arm(tcp: &TcpStream, deadline: Instant) -> std::io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"));
    }
    tcp.set_read_timeout(Some(left))?;
    tcp.set_write_timeout(Some(left))
}

/// Connects to the first address of `host` that answers before `deadline`.
/// (Name resolution itself cannot be given a deadline.)
pub(crate) fn connect(host: &str, port: u16, deadline: Instant) -> std::io::Result<Stream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for a in (host, port).to_socket_addrs()? {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"));
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(t) => {
                let _ = t.set_nodelay(true);
                return Ok(Stream::Plain(t));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_problems_are_configuration_errors() {
        let d = std::env::temp_dir().join(format!("postlens-notify-ca-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let junk = d.join("junk.pem");
        std::fs::write(&junk, "not pem\n").unwrap();
        assert!(matches!(tls_client(Some(&junk)), Err(SendError::Config(e)) if e.contains("holds no certificate")));
        assert!(matches!(tls_client(Some(&d.join("missing.pem"))), Err(SendError::Config(e)) if e.contains("missing.pem")));
        assert!(tls_client(None).is_ok());
        let _ = std::fs::remove_dir_all(&d);
    }
}
