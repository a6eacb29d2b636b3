//! Connections to a server: plain TCP, or TLS over TCP (rustls with the pure-Rust
//! RustCrypto provider) checked against the system's certificate authorities or
//! `--ca-file`.

use super::resolve::resolve;
use super::response::{fail, Failure, TooSlow};
use super::url::{Scheme, Url};
use super::CONN_BUF;
use crate::error::Result;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where certificate authorities are looked for when `SSL_CERT_FILE` is not set: the
/// bundles of Debian/Ubuntu (and most handheld firmwares built on Buildroot), Fedora/RHEL,
/// openSUSE, Alpine and OpenWrt-style systems. The first one that exists is used.
pub const CA_FILES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/share/ca-certificates/ca-certificates.crt",
];

/// A connection to a server: plain TCP or TLS over TCP, with the meter of how fast the
/// server sends (see [`Connector::min_rate`]).
pub struct Stream {
    link: Link,
    meter: Meter,
}

/// The transport of a [`Stream`].
enum Link {
    /// Plain HTTP.
    Plain(TcpStream),
    /// HTTPS.
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

/// How fast a server sends, over the time spent waiting for it since the request was sent
/// (time the reader spends elsewhere, decoding, is not counted).
#[derive(Debug, Clone, Copy)]
struct Meter {
    /// Bytes per second below which the server is given up (0: never).
    min_rate: u64,
    waited: Duration,
    bytes: u64,
}

/// Waiting time during which a request is not judged by its rate (a slow start, a busy
/// server's first byte).
const RATE_GRACE: Duration = Duration::from_secs(20);

impl Stream {
    fn new(link: Link, min_rate: u64) -> Self {
        Stream {
            link,
            meter: Meter {
                min_rate,
                waited: Duration::ZERO,
                bytes: 0,
            },
        }
    }

    /// Starts measuring anew: a request is about to be sent.
    pub fn restart_meter(&mut self) {
        self.meter.waited = Duration::ZERO;
        self.meter.bytes = 0;
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.link {
            Link::Plain(_) => "Stream::Plain",
            #[cfg(feature = "tls")]
            Link::Tls(_) => "Stream::Tls",
        })
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = std::time::Instant::now();
        let got = match &mut self.link {
            Link::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Link::Tls(s) => match s.read(buf) {
                // A server that closes without close_notify (common, and harmless here:
                // every body's length is known and checked) reads as the end of the stream.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }?;
        let m = &mut self.meter;
        m.waited += start.elapsed();
        m.bytes += got as u64;
        if m.min_rate > 0 && m.waited > RATE_GRACE {
            let secs = m.waited.as_secs_f64();
            if (m.bytes as f64) < m.min_rate as f64 * secs {
                return Err(std::io::Error::other(TooSlow {
                    rate: (m.bytes as f64 / secs) as u64,
                    min_rate: m.min_rate,
                }));
            }
        }
        Ok(got)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.link {
            Link::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Link::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.link {
            Link::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Link::Tls(s) => s.flush(),
        }
    }
}

/// How connections are made: timeouts and, for `https://`, the certificate authorities.
#[derive(Debug, Clone)]
pub struct Connector {
    timeout: Duration,
    /// Bytes per second below which a server that keeps sending is given up (0: never).
    min_rate: u64,
    /// Read only by the TLS set-up (an http-only build keeps it for a uniform API).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    ca_file: Option<PathBuf>,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Connector {
    /// Connects, reads and writes each give up after `timeout`; `https://` servers must show
    /// a certificate from an authority in the system bundle or in `ca_file` (PEM).
    pub fn new(timeout: Duration, ca_file: Option<&Path>) -> Self {
        Connector {
            timeout,
            min_rate: 0,
            ca_file: ca_file.map(Path::to_path_buf),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Gives up a response whose server sends fewer than `bytes_per_second` (measured over
    /// the time spent waiting for it, after 20 s of waiting): a server dripping bytes,
    /// each in time for the stall timeout, fails too. 0 turns it off.
    pub fn min_rate(mut self, bytes_per_second: u64) -> Self {
        self.min_rate = bytes_per_second;
        self
    }

    /// Opens a connection to `url`'s server (for `https://`, with a completed handshake).
    pub fn connect(&mut self, url: &Url) -> Result<BufReader<Stream>> {
        self.open(url).map_err(|f| f.into_error(url))
    }

    pub(super) fn open(&mut self, url: &Url) -> std::result::Result<BufReader<Stream>, Failure> {
        let addrs = resolve(&url.host, url.port, self.timeout)
            .map_err(|e| fail(e.to_string(), e.kind() != std::io::ErrorKind::NotFound))?;
        let mut last = String::new();
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    s.set_read_timeout(Some(self.timeout))
                        .and_then(|()| s.set_write_timeout(Some(self.timeout)))
                        .map_err(|e| fail(e.to_string(), true))?;
                    let link = match url.scheme {
                        Scheme::Http => Link::Plain(s),
                        Scheme::Https => self.handshake(url, s)?,
                    };
                    let stream = Stream::new(link, self.min_rate);
                    return Ok(BufReader::with_capacity(CONN_BUF, stream));
                }
                Err(e) => last = format!("cannot connect to {a}: {e}"),
            }
        }
        Err(fail(last, true))
    }

    #[cfg(not(feature = "tls"))]
    fn handshake(&mut self, url: &Url, _: TcpStream) -> std::result::Result<Link, Failure> {
        Err(Failure {
            tls: true,
            ..fail(
                format!(
                    "{}: this build has no TLS (built without the tls feature)",
                    url.host
                ),
                false,
            )
        })
    }

    #[cfg(feature = "tls")]
    fn handshake(&mut self, url: &Url, mut s: TcpStream) -> std::result::Result<Link, Failure> {
        let tls_fail = |problem: String| Failure {
            tls: true,
            ..fail(problem, false)
        };
        if self.tls.is_none() {
            self.tls = Some(tls_config(self.ca_file.as_deref()).map_err(tls_fail)?);
        }
        let config = Arc::clone(self.tls.as_ref().expect("just made"));
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| tls_fail(format!("{:?} is not a usable server name: {e}", url.host)))?;
        let mut conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| tls_fail(format!("{}: {e}", url.host)))?;
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut s) {
                let refused = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .map(|r| r.to_string());
                return Err(match refused {
                    Some(why) => tls_fail(format!(
                        "the certificate or handshake of {} was refused: {why} (nothing was \
                         downloaded; check the device's clock, or give --ca-file for a private \
                         authority)",
                        url.host
                    )),
                    None if e.kind() == std::io::ErrorKind::UnexpectedEof => fail(
                        format!(
                            "{} closed the connection during the TLS handshake",
                            url.host
                        ),
                        true,
                    ),
                    None => fail(format!("TLS handshake with {}: {e}", url.host), true),
                });
            }
        }
        Ok(Link::Tls(Box::new(rustls::StreamOwned::new(conn, s))))
    }
}

/// The certificates of the PEM file `path` (at most 16 MiB).
#[cfg(feature = "tls")]
fn pem_certificates(
    path: &Path,
) -> std::result::Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(16 << 20).read_to_end(&mut text))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    rustls::pki_types::CertificateDer::pem_slice_iter(&text)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))
}

/// The TLS settings: the system's certificate authorities (`SSL_CERT_FILE`, else the first
/// of [`CA_FILES`] that exists) and those of `ca_file`; TLS 1.2 and 1.3.
#[cfg(feature = "tls")]
fn tls_config(ca_file: Option<&Path>) -> std::result::Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(f) = ca_file {
        let certs = pem_certificates(f)?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!(
                "--ca-file {}: no usable certificate in it",
                f.display()
            ));
        }
    }
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .or_else(|| CA_FILES.iter().map(PathBuf::from).find(|p| p.is_file()));
    if let Some(bundle) = system {
        // A broken system bundle is not fatal when --ca-file gave what is needed.
        match pem_certificates(&bundle) {
            Ok(certs) => {
                roots.add_parsable_certificates(certs);
            }
            Err(e) if roots.is_empty() => return Err(e),
            Err(_) => {}
        }
    }
    if roots.is_empty() {
        return Err(format!(
            "no certificate authorities: none in SSL_CERT_FILE or {}; give --ca-file FILE",
            CA_FILES.join(", ")
        ));
    }
    let provider = Arc::new(rustls_rustcrypto::provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
