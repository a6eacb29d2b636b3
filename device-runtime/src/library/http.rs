//! A small HTTP/1.1 client for installing from a server: `http://` and (with the `tls`
//! feature, on by default) `https://`, GET of whole files and of single byte ranges, one
//! kept-alive connection, timeouts, bounded retries and redirects. No async runtime. TLS is
//! rustls with the pure-Rust RustCrypto provider (no C or assembly, so the device still
//! cross-compiles with nothing but a linker); certificate authorities come from the system
//! bundle ([`CA_FILES`]) and `--ca-file`. A signed manifest and per-chunk hashes make the
//! transport untrusted anyway: TLS is for reaching HTTPS-only hosting and for privacy.
//!
//! Host names are resolved without the C library: IP literals, `localhost`, `/etc/hosts`,
//! then a DNS query over UDP to the servers in `/etc/resolv.conf`. The 32-bit ARM build
//! links glibc statically, and static glibc cannot load the NSS modules its resolver needs.
//!
//! Every response is checked against what was asked: a range must come back as `206` with
//! exactly that `Content-Range` and length, a whole file as `200` with a `Content-Length`
//! within the caller's limit. A server that answers a range request with the whole file
//! (`python3 -m http.server`, some CDNs) is read as a stream instead ([`Client::get_range`]
//! keeps a few such streams open and skips forward in them; [`Client::stream_extra`] counts
//! the bytes read beyond those asked for). A body cut short, a stall longer than the
//! timeout, a 5xx and a refused connection are retried a bounded number of times; a 4xx,
//! a refused certificate, a redirect loop and a wrong-sized answer are not.
//!
//! Redirects (301, 302, 303, 307, 308) are followed up to [`MAX_REDIRECTS`] times, to
//! relative or absolute `http://` and `https://` locations, never from `https://` down to
//! `http://`; where a file ended up is remembered, so the following range requests of the
//! same file go straight there.

use crate::error::{Error, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Attempts per request (the first and the retries).
pub const ATTEMPTS: u32 = 3;
/// Redirects followed per request.
pub const MAX_REDIRECTS: u32 = 5;
/// Longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Files remembered as redirected elsewhere (the final URL is reused for their next reads).
const MAX_MOVED: usize = 16;
/// Whole-file streams kept open for a server that ignores byte ranges (one per pack).
pub const MAX_STREAMS: usize = 4;
/// Forward skip in a whole-file stream beyond which another stream of the file is opened.
const STREAM_JUMP: u64 = 4 << 20;
/// Buffer of each connection and stream.
const CONN_BUF: usize = 64 * 1024;

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

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTP over TLS (default port 443).
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Scheme::Http => "http://",
            Scheme::Https => "https://",
        }
    }
}

/// A parsed `http://host[:port]/path` or `https://...` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port (80 or 443 when not given).
    pub port: u16,
    /// Path, starting with `/` (with the query, if any).
    pub path: String,
}

impl Url {
    /// Parses an `http://` or `https://` URL.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |problem: &str| Error::Http {
            url: s.to_string(),
            problem: problem.to_string(),
        };
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        let (scheme, rest) = if lower.starts_with("http://") {
            (Scheme::Http, &s[7..])
        } else if lower.starts_with("https://") {
            if !cfg!(feature = "tls") {
                return Err(bad(
                    "https:// needs a romlib-device built with the tls feature (this one is http-only)",
                ));
            }
            (Scheme::Https, &s[8..])
        } else {
            return Err(bad("not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(bad("user names in URLs are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("bad IPv6 address"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None => scheme.default_port(),
        };
        if host.is_empty() || port == 0 {
            return Err(bad("no host"));
        }
        Ok(Url {
            scheme,
            host: host.to_string(),
            port,
            path: path.split('#').next().unwrap_or("/").to_string(),
        })
    }

    /// `rel` (a relative path without a leading `/`) resolved against this URL as a folder.
    pub fn join(&self, rel: &str) -> Url {
        let mut path = self.path.clone();
        if !path.ends_with('/') {
            path.push('/');
        }
        for seg in rel.split('/') {
            path.push_str(&percent_encode(seg));
            path.push('/');
        }
        path.pop();
        Url {
            path,
            ..self.clone()
        }
    }

    /// `host[:port]` as a `Host` header gives it (the port only when not the default).
    pub fn authority(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }

    /// What a kept connection is for: scheme, host and port.
    fn origin(&self) -> String {
        format!("{}{}", self.scheme.prefix(), self.authority())
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.scheme.prefix(),
            self.authority(),
            self.path
        )
    }
}

fn percent_encode(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The addresses of `host`, without the C library's resolver.
pub fn resolve(host: &str, port: u16, timeout: Duration) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lower = host.to_ascii_lowercase();
    let mut ips = hosts_file(&lower);
    if ips.is_empty() && (lower == "localhost" || lower.ends_with(".localhost")) {
        ips = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
    }
    if ips.is_empty() {
        ips = dns_query(&lower, timeout)?;
    }
    if ips.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("cannot resolve host {host:?}"),
        ));
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// Addresses `/etc/hosts` gives `host` (lower-case), in file order.
fn hosts_file(host: &str) -> Vec<IpAddr> {
    let Ok(text) = std::fs::read_to_string("/etc/hosts") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        if words.any(|w| w.eq_ignore_ascii_case(host)) {
            out.push(ip);
        }
    }
    out
}

/// IPv4 addresses of `host` from the first name server in `/etc/resolv.conf` that answers.
fn dns_query(host: &str, timeout: Duration) -> std::io::Result<Vec<IpAddr>> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let servers: Vec<IpAddr> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    if host.len() > 253 || host.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad host name {host:?}"),
        ));
    }
    // Query: a fixed id, recursion desired, one question for an A record.
    let id = (std::process::id() as u16) ^ 0x5a5a;
    let mut q = Vec::with_capacity(512);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in host.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("cannot resolve host {host:?}: no name server in /etc/resolv.conf"),
    );
    for server in servers {
        let bind: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let attempt = (|| -> std::io::Result<Vec<IpAddr>> {
            let sock = UdpSocket::bind(bind)?;
            sock.set_read_timeout(Some(timeout))?;
            sock.connect((server, 53))?;
            sock.send(&q)?;
            let mut buf = [0u8; 1500];
            loop {
                let n = sock.recv(&mut buf)?;
                if n >= 12 && buf[..2] == id.to_be_bytes() {
                    return Ok(parse_dns_answer(&buf[..n]));
                }
            }
        })();
        match attempt {
            Ok(ips) if !ips.is_empty() => return Ok(ips),
            Ok(_) => {
                last = std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("cannot resolve host {host:?}: no address from {server}"),
                )
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The A records of a DNS response (CNAME chains are followed by the recursive server).
fn parse_dns_answer(b: &[u8]) -> Vec<IpAddr> {
    let rd16 = |i: usize| -> Option<usize> {
        Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize)
    };
    let skip_name = |mut i: usize| -> Option<usize> {
        loop {
            let len = *b.get(i)? as usize;
            if len == 0 {
                return Some(i + 1);
            }
            if len & 0xC0 == 0xC0 {
                return Some(i + 2);
            }
            i += 1 + len;
        }
    };
    let mut out = Vec::new();
    let (Some(qd), Some(an)) = (rd16(4), rd16(6)) else {
        return out;
    };
    if b.get(3).is_none_or(|f| f & 0x0F != 0) {
        return out; // an error rcode
    }
    let mut i = 12;
    for _ in 0..qd {
        match skip_name(i) {
            Some(j) => i = j + 4,
            None => return out,
        }
    }
    for _ in 0..an {
        let Some(j) = skip_name(i) else { return out };
        let (Some(typ), Some(class), Some(rdlen)) = (rd16(j), rd16(j + 2), rd16(j + 8)) else {
            return out;
        };
        let data = j + 10;
        if typ == 1 && class == 1 && rdlen == 4 {
            if let Some(a) = b.get(data..data + 4) {
                out.push(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])));
            }
        }
        i = data + rdlen;
    }
    out
}

/// Where a whole-file GET goes; restarted before each attempt.
pub trait Download: Write {
    /// Forgets what an earlier attempt wrote.
    fn restart(&mut self) -> std::io::Result<()>;
}

impl Download for Vec<u8> {
    fn restart(&mut self) -> std::io::Result<()> {
        self.clear();
        Ok(())
    }
}

impl Download for std::fs::File {
    fn restart(&mut self) -> std::io::Result<()> {
        self.set_len(0)?;
        std::io::Seek::rewind(self)
    }
}

/// A connection to a server: plain TCP or TLS over TCP.
pub enum Stream {
    /// Plain HTTP.
    Plain(TcpStream),
    /// HTTPS.
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Stream::Plain",
            #[cfg(feature = "tls")]
            Stream::Tls(_) => "Stream::Tls",
        })
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => match s.read(buf) {
                // A server that closes without close_notify (common, and harmless here:
                // every body's length is known and checked) reads as the end of the stream.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// How connections are made: timeouts and, for `https://`, the certificate authorities.
#[derive(Debug, Clone)]
pub struct Connector {
    timeout: Duration,
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
            ca_file: ca_file.map(Path::to_path_buf),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Opens a connection to `url`'s server (for `https://`, with a completed handshake).
    pub fn connect(&mut self, url: &Url) -> Result<BufReader<Stream>> {
        self.open(url).map_err(|f| f.into_error(url))
    }

    fn open(&mut self, url: &Url) -> std::result::Result<BufReader<Stream>, Failure> {
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
                    let stream = match url.scheme {
                        Scheme::Http => Stream::Plain(s),
                        Scheme::Https => self.handshake(url, s)?,
                    };
                    return Ok(BufReader::with_capacity(CONN_BUF, stream));
                }
                Err(e) => last = format!("cannot connect to {a}: {e}"),
            }
        }
        Err(fail(last, true))
    }

    #[cfg(not(feature = "tls"))]
    fn handshake(&mut self, url: &Url, _: TcpStream) -> std::result::Result<Stream, Failure> {
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
    fn handshake(&mut self, url: &Url, mut s: TcpStream) -> std::result::Result<Stream, Failure> {
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
        Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, s))))
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

/// A kept connection.
#[derive(Debug)]
struct Conn {
    /// Scheme, host and port it is connected to.
    origin: String,
    io: BufReader<Stream>,
    /// The server said it closes the connection after the last response.
    closing: bool,
}

/// A whole-file response of a server that ignores byte ranges, read forward as needed.
#[derive(Debug)]
struct FileStream {
    url: Url,
    /// Offset in the file of the next byte of `io`.
    pos: u64,
    /// The file's length.
    total: u64,
    io: BufReader<Stream>,
}

/// A client for one server (it follows redirects elsewhere), keeping one connection open.
#[derive(Debug)]
pub struct Client {
    connector: Connector,
    conn: Option<Conn>,
    /// Files that were redirected: where they ended up (at most [`MAX_MOVED`]).
    moved: Vec<(Url, Url)>,
    /// Where the last successful request ended up, after redirects.
    last_url: Option<Url>,
    /// The server answered a range request with the whole file: ranges are read from
    /// [`FileStream`]s from then on.
    ranges_ignored: bool,
    streams: Vec<FileStream>,
    /// Bytes of whole-file streams read only to skip to the bytes asked for.
    stream_extra: u64,
    /// Bytes of response bodies received (for reports, progress and benchmarks), readable
    /// from other threads while a request runs ([`Client::received_counter`]).
    received: Arc<AtomicU64>,
    /// Requests sent, retries and redirects included.
    pub requests: u64,
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    problem: String,
    retry: bool,
    /// The server says the file does not exist (404, 410): what to call it.
    missing: Option<&'static str>,
    /// A TLS certificate or handshake was refused.
    tls: bool,
    /// The server answered a range request with the whole file (the body is unread).
    whole: bool,
}

impl Failure {
    fn into_error(self, url: &Url) -> Error {
        if self.tls {
            Error::Tls {
                url: url.to_string(),
                problem: self.problem,
            }
        } else {
            Error::Http {
                url: url.to_string(),
                problem: self.problem,
            }
        }
    }
}

fn fail(problem: impl Into<String>, retry: bool) -> Failure {
    Failure {
        problem: problem.into(),
        retry,
        missing: None,
        tls: false,
        whole: false,
    }
}

/// What a response head said.
struct Head {
    status: u16,
    len: Option<u64>,
    range: Option<String>,
    location: Option<String>,
    close: bool,
}

impl Client {
    /// A client whose connects, reads and writes each give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self::with_connector(Connector::new(timeout, None))
    }

    /// A client that connects through `connector`.
    pub fn with_connector(connector: Connector) -> Self {
        Client {
            connector,
            conn: None,
            moved: Vec::new(),
            last_url: None,
            ranges_ignored: false,
            streams: Vec::new(),
            stream_extra: 0,
            received: Arc::default(),
            requests: 0,
        }
    }

    /// Bytes of response bodies received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// The counter behind [`Client::received`], to read without holding the client.
    pub fn received_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.received)
    }

    /// Whether the server ignored a byte range (ranges are then read from whole-file streams).
    pub fn ranges_ignored(&self) -> bool {
        self.ranges_ignored
    }

    /// Bytes received from whole-file streams only to skip to the bytes asked for.
    pub fn stream_extra(&self) -> u64 {
        self.stream_extra
    }

    /// Where the last successful request ended up after redirects.
    pub fn last_url(&self) -> Option<&Url> {
        self.last_url.as_ref()
    }

    /// GETs the whole of `url` into `out`, refusing a body longer than `max` bytes;
    /// returns its length. Each attempt restarts `out` first.
    pub fn get(&mut self, url: &Url, max: u64, out: &mut dyn Download) -> Result<u64> {
        self.request(url, None, &mut |head, body| {
            take_whole(head, body, max, out)
        })
    }

    /// GETs bytes `start .. start + buf.len()` of `url` into `buf`; returns the file's
    /// whole length when the server gave it. From a server that ignores byte ranges, the
    /// bytes come from a whole-file stream of `url` (opened, or read forward to `start`).
    pub fn get_range(&mut self, url: &Url, start: u64, buf: &mut [u8]) -> Result<Option<u64>> {
        if buf.is_empty() {
            return Ok(None);
        }
        if !self.ranges_ignored {
            let end = start + buf.len() as u64 - 1;
            let got = self.request(url, Some((start, end)), &mut |head, body| {
                take_range(head, body, start, buf)
            });
            if !self.ranges_ignored {
                return got;
            }
        }
        self.stream_range(url, start, buf).map(Some)
    }

    /// Bytes `start ..` of `url` into `buf` from a whole-file stream; returns the file's
    /// length. A stream behind `start` is reopened (the bytes before `start` are read again).
    fn stream_range(&mut self, url: &Url, start: u64, buf: &mut [u8]) -> Result<u64> {
        let len = buf.len() as u64;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The stream of this file nearest before `start`. A jump of more than
            // STREAM_JUMP bytes opens another stream of the file instead (while there is
            // room), so a run of records further on (a revision's new chunks, appended to
            // the pack) does not cost re-reading the file for the records before it.
            let best = (0..self.streams.len())
                .filter(|&i| self.streams[i].url == *url && self.streams[i].pos <= start)
                .max_by_key(|&i| self.streams[i].pos);
            let of_url = self.streams.iter().filter(|s| s.url == *url).count();
            let best = best
                .filter(|&i| start - self.streams[i].pos <= STREAM_JUMP || of_url >= MAX_STREAMS);
            if let Some(i) = best {
                let mut s = self.streams.remove(i);
                if start + len > s.total {
                    return Err(Error::Http {
                        url: url.to_string(),
                        problem: format!(
                            "asked for bytes {start}-{} of a file of {} bytes",
                            start + len - 1,
                            s.total
                        ),
                    });
                }
                let skip = start - s.pos;
                let read = copy_exact(&mut s.io, &mut std::io::sink(), skip)
                    .and_then(|()| s.io.read_exact(buf).map_err(|e| body_error(&e)));
                match read {
                    Ok(()) => {
                        s.pos = start + len;
                        let total = s.total;
                        self.stream_extra += skip;
                        self.received.fetch_add(skip + len, Ordering::Relaxed);
                        // Most recently used last: the first is the one to give up.
                        self.streams.push(s);
                        return Ok(total);
                    }
                    Err(f) => {
                        if attempt >= ATTEMPTS {
                            return Err(Error::Http {
                                url: url.to_string(),
                                problem: format!("{} (after {attempt} attempts)", f.problem),
                            });
                        }
                        continue;
                    }
                }
            }
            if self.streams.len() >= MAX_STREAMS {
                self.streams.remove(0);
            }
            let total = self.request(url, None, &mut |head, body| {
                take_stream_start(head, body, start, buf)
            })?;
            let conn = self
                .conn
                .take()
                .expect("a request that succeeded keeps its connection");
            self.stream_extra += start;
            self.streams.push(FileStream {
                url: url.clone(),
                pos: start + len,
                total,
                io: conn.io,
            });
            return Ok(total);
        }
    }

    /// Sends a GET (with a range), follows redirects, retries what may succeed, and hands
    /// the response to `take`, which must read exactly the body it accepts.
    fn request<T>(
        &mut self,
        url: &Url,
        range: Option<(u64, u64)>,
        take: &mut dyn FnMut(&Head, &mut dyn Read) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        // A file that was redirected before is asked for where it ended up; if that fails
        // for good (a signed URL that expired, say), once more from the start.
        let remembered = self
            .moved
            .iter()
            .find(|(from, _)| from == url)
            .map(|(_, to)| to.clone());
        if let Some(to) = remembered {
            match self.request_from(url, to, range, take) {
                Ok(v) => return Ok(v),
                Err(Error::Http { .. } | Error::NotFound { .. }) if !self.ranges_ignored => {
                    self.moved.retain(|(from, _)| from != url);
                }
                Err(e) => return Err(e),
            }
        }
        self.request_from(url, url.clone(), range, take)
    }

    fn request_from<T>(
        &mut self,
        url: &Url,
        mut target: Url,
        range: Option<(u64, u64)>,
        take: &mut dyn FnMut(&Head, &mut dyn Read) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let mut redirects = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests += 1;
            let outcome = self.once(&target, range, take);
            match outcome {
                Ok(Ok(v)) => {
                    if target != *url && !self.moved.iter().any(|(f, t)| f == url && *t == target) {
                        self.moved.retain(|(f, _)| f != url);
                        if self.moved.len() >= MAX_MOVED {
                            self.moved.remove(0);
                        }
                        self.moved.push((url.clone(), target.clone()));
                    }
                    self.last_url = Some(target);
                    return Ok(v);
                }
                Ok(Err(location)) => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(Error::Http {
                            url: url.to_string(),
                            problem: format!(
                                "more than {MAX_REDIRECTS} redirects (a redirect loop?)"
                            ),
                        });
                    }
                    target = redirect(&target, &location).map_err(|problem| Error::Http {
                        url: target.to_string(),
                        problem,
                    })?;
                    attempt -= 1;
                }
                Err(Failure { whole: true, .. }) => {
                    // The body is unread: this connection cannot be used again.
                    self.conn = None;
                    self.ranges_ignored = true;
                    return Err(Error::Http {
                        url: target.to_string(),
                        problem: "server ignored the byte range and sent the whole file".into(),
                    });
                }
                Err(Failure {
                    missing: Some(what),
                    ..
                }) => {
                    self.conn = None;
                    return Err(Error::NotFound {
                        path: std::path::PathBuf::from(target.to_string()),
                        what,
                    });
                }
                Err(f) => {
                    self.conn = None;
                    if !f.retry || attempt >= ATTEMPTS {
                        let tries = if f.retry {
                            format!(" (after {attempt} attempts)")
                        } else {
                            String::new()
                        };
                        return Err(Failure {
                            problem: format!("{}{tries}", f.problem),
                            ..f
                        }
                        .into_error(&target));
                    }
                    std::thread::sleep(Duration::from_millis(250 << attempt));
                }
            }
        }
    }

    /// One request on the kept connection (or a new one). `Ok(Err(location))` is a redirect.
    #[allow(clippy::type_complexity)]
    fn once<T>(
        &mut self,
        url: &Url,
        range: Option<(u64, u64)>,
        take: &mut dyn FnMut(&Head, &mut dyn Read) -> std::result::Result<T, Failure>,
    ) -> std::result::Result<std::result::Result<T, String>, Failure> {
        let origin = url.origin();
        if self
            .conn
            .as_ref()
            .is_none_or(|c| c.closing || c.origin != origin)
        {
            self.conn = None;
            let io = self.connector.open(url)?;
            self.conn = Some(Conn {
                origin,
                io,
                closing: false,
            });
        }
        let conn = self.conn.as_mut().expect("just connected");
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: romlib-device\r\nAccept-Encoding: identity\r\n",
            url.path,
            url.authority()
        );
        if let Some((a, b)) = range {
            req.push_str(&format!("Range: bytes={a}-{b}\r\n"));
        }
        req.push_str("\r\n");
        let sent = conn
            .io
            .get_mut()
            .write_all(req.as_bytes())
            .and_then(|()| conn.io.get_mut().flush());
        if let Err(e) = sent {
            return Err(fail(format!("sending the request failed: {e}"), true));
        }
        let got = receive(&mut conn.io, take)?;
        self.received.fetch_add(got.body_bytes, Ordering::Relaxed);
        // Kept even when the server closes it: a whole-file stream reads on from it.
        conn.closing = got.close;
        Ok(got.outcome)
    }
}

/// A reader that counts the bytes read through it.
struct Counted<'a, R: ?Sized> {
    inner: &'a mut R,
    n: u64,
}

impl<R: Read + ?Sized> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// What [`receive`] made of one response.
struct Received<T> {
    /// What `take` returned, or `Err(location)` for a redirect.
    outcome: std::result::Result<T, String>,
    /// Whether the server closes the connection after it.
    close: bool,
    /// Body bytes read through `take`.
    body_bytes: u64,
}

/// Reads one response from `conn`: its head, then for a redirect its Location (skipping
/// the body), for an error status a failure, and otherwise hands the body to `take`.
fn receive<T>(
    conn: &mut dyn BufRead,
    take: &mut dyn FnMut(&Head, &mut dyn Read) -> std::result::Result<T, Failure>,
) -> std::result::Result<Received<T>, Failure> {
    let head = read_head(conn)?;
    if (300..400).contains(&head.status) && head.status != 304 {
        let loc = head
            .location
            .clone()
            .ok_or_else(|| fail(format!("HTTP {} without a Location", head.status), false))?;
        skip_body(conn, &head)?;
        return Ok(Received {
            outcome: Err(loc),
            close: head.close,
            body_bytes: 0,
        });
    }
    if head.status >= 500 {
        return Err(fail(format!("HTTP {}", head.status), true));
    }
    if head.status >= 400 {
        let missing = match head.status {
            404 => Some("file on this server (HTTP 404 Not Found)"),
            410 => Some("file on this server (HTTP 410 Gone)"),
            _ => None,
        };
        return Err(Failure {
            missing,
            ..fail(
                format!(
                    "HTTP {}{}",
                    head.status,
                    if head.status == 404 { " Not Found" } else { "" }
                ),
                false,
            )
        });
    }
    let mut counted = Counted { inner: conn, n: 0 };
    let v = take(&head, &mut counted)?;
    Ok(Received {
        outcome: Ok(v),
        close: head.close,
        body_bytes: counted.n,
    })
}

/// Takes the body of a whole-file GET: `200` with a `Content-Length` of at most `max`
/// bytes, copied into `out` (restarted first); returns its length.
fn take_whole(
    head: &Head,
    body: &mut dyn Read,
    max: u64,
    out: &mut dyn Download,
) -> std::result::Result<u64, Failure> {
    if head.status != 200 {
        return Err(fail(format!("HTTP {}", head.status), false));
    }
    let len = head
        .len
        .ok_or_else(|| fail("no Content-Length in the response", false))?;
    if len > max {
        return Err(fail(
            format!("response of {len} bytes is larger than the {max} allowed"),
            false,
        ));
    }
    out.restart()
        .map_err(|e| fail(format!("cannot write the download: {e}"), false))?;
    copy_exact(body, out, len)?;
    Ok(len)
}

/// Takes the body of a range GET of bytes `start .. start + buf.len()`: `206` with exactly
/// that `Content-Range` and length, read into `buf`; returns the file's whole length when
/// the server gave it.
fn take_range(
    head: &Head,
    body: &mut dyn Read,
    start: u64,
    buf: &mut [u8],
) -> std::result::Result<Option<u64>, Failure> {
    let end = start + buf.len() as u64 - 1;
    let want = format!("bytes {start}-{end}/");
    if head.status == 200 {
        return Err(Failure {
            whole: true,
            ..fail(
                "server ignored the byte range and sent the whole file",
                false,
            )
        });
    }
    if head.status != 206 {
        return Err(fail(format!("HTTP {}", head.status), false));
    }
    if !head.range.as_deref().is_some_and(|r| r.starts_with(&want)) {
        return Err(fail(
            format!(
                "asked for bytes {start}-{end}, got Content-Range {:?}",
                head.range.as_deref().unwrap_or("")
            ),
            false,
        ));
    }
    if head.len != Some(buf.len() as u64) {
        return Err(fail(
            format!(
                "asked for {} bytes, the response holds {:?}",
                buf.len(),
                head.len
            ),
            false,
        ));
    }
    body.read_exact(buf).map_err(|e| body_error(&e))?;
    let total = head
        .range
        .as_deref()
        .and_then(|r| r.rsplit_once('/'))
        .and_then(|(_, t)| t.parse().ok());
    Ok(total)
}

/// Takes the start of a whole-file response (`200` with a `Content-Length`) to a GET
/// without a range: skips `start` bytes, reads `buf`, and leaves the rest unread for a
/// [`FileStream`]; returns the file's length.
fn take_stream_start(
    head: &Head,
    body: &mut dyn Read,
    start: u64,
    buf: &mut [u8],
) -> std::result::Result<u64, Failure> {
    if head.status != 200 {
        return Err(fail(format!("HTTP {}", head.status), false));
    }
    let total = head
        .len
        .ok_or_else(|| fail("no Content-Length in the response", false))?;
    let end = start + buf.len() as u64;
    if end > total {
        return Err(fail(
            format!(
                "asked for bytes {start}-{} of a file of {total} bytes",
                end - 1
            ),
            false,
        ));
    }
    copy_exact(body, &mut std::io::sink(), start)?;
    body.read_exact(buf).map_err(|e| body_error(&e))?;
    Ok(total)
}

/// What a response read by [`read_response`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A redirect to this URL.
    Redirect(Url),
    /// A whole file of this many bytes.
    Whole(u64),
    /// The range asked for, and the file's whole length when the server gave it.
    Range(Option<u64>),
}

/// Reads one response from `input` exactly as [`Client`] reads one from a server, without
/// a socket: for a GET of `url` (a redirect is resolved against it), as a whole file of at
/// most `max` bytes into `out` when `range` is `None`, else as bytes `start ..
/// start + buf.len()` into `buf` (`buf` must not be empty). The error is the problem the
/// client would report. For tests and fuzzing of the response parser.
pub fn read_response(
    input: &mut dyn BufRead,
    url: &Url,
    range: Option<(u64, &mut [u8])>,
    max: u64,
    out: &mut dyn Download,
) -> std::result::Result<Response, String> {
    let got = match range {
        None => receive(input, &mut |head, body| {
            take_whole(head, body, max, out).map(Response::Whole)
        }),
        Some((start, buf)) => receive(input, &mut |head, body| {
            take_range(head, body, start, buf).map(Response::Range)
        }),
    }
    .map_err(|f| f.problem)?;
    match got.outcome {
        Ok(r) => Ok(r),
        Err(location) => redirect(url, &location).map(Response::Redirect),
    }
}

fn body_error(e: &std::io::Error) -> Failure {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            fail("the server stalled (timed out)", true)
        }
        std::io::ErrorKind::UnexpectedEof => fail("the response body was cut short", true),
        _ => fail(format!("receiving failed: {e}"), true),
    }
}

fn copy_exact(
    body: &mut dyn Read,
    out: &mut dyn Write,
    len: u64,
) -> std::result::Result<(), Failure> {
    let mut buf = [0u8; 16 * 1024];
    let mut left = len;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        body.read_exact(&mut buf[..n]).map_err(|e| body_error(&e))?;
        out.write_all(&buf[..n])
            .map_err(|e| fail(format!("cannot write the download: {e}"), false))?;
        left -= n as u64;
    }
    Ok(())
}

fn skip_body(conn: &mut dyn Read, head: &Head) -> std::result::Result<(), Failure> {
    match head.len {
        Some(n) if n <= 64 * 1024 => copy_exact(conn, &mut std::io::sink(), n),
        // A redirect with a large or unsized body: do not read it, drop the connection.
        _ => Err(fail("redirect with an unusable body", true)),
    }
}

fn read_head<R: BufRead + ?Sized>(conn: &mut R) -> std::result::Result<Head, Failure> {
    let mut total = 0;
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = Read::take(&mut *conn, (MAX_HEAD - total + 1) as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| body_error(&e))?;
        if n == 0 {
            return Err(fail(
                "the server closed the connection without answering",
                true,
            ));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(fail("response head too long", false));
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_string();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line);
    }
    let mut status_line = lines[0].splitn(3, ' ');
    let version = status_line.next().unwrap_or("");
    let status: u16 = status_line
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| fail(format!("not an HTTP/1.x response: {:?}", lines[0]), false))?;
    let mut head = Head {
        status,
        len: None,
        range: None,
        location: None,
        close: version == "HTTP/1.0",
    };
    for h in &lines[1..] {
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                head.len = Some(
                    value
                        .parse()
                        .map_err(|_| fail("bad Content-Length", false))?,
                )
            }
            "content-range" => head.range = Some(value.to_string()),
            "location" => head.location = Some(value.to_string()),
            "connection" => head.close = value.eq_ignore_ascii_case("close"),
            "transfer-encoding" if !value.eq_ignore_ascii_case("identity") => {
                return Err(fail(
                    format!("unsupported Transfer-Encoding {value:?}"),
                    false,
                ))
            }
            "content-encoding" if !value.eq_ignore_ascii_case("identity") => {
                return Err(fail(
                    format!("unsupported Content-Encoding {value:?}"),
                    false,
                ))
            }
            _ => {}
        }
    }
    Ok(head)
}

/// Where a redirect from `from` to `location` goes: an absolute `http://` or `https://`
/// URL (never from `https://` down to `http://`), a scheme-relative `//host/path`, an
/// absolute path or a path relative to `from`'s folder.
fn redirect(from: &Url, location: &str) -> std::result::Result<Url, String> {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    let to = if lower.starts_with("http://") || lower.starts_with("https://") {
        Url::parse(location).map_err(|e| match e {
            Error::Http { problem, .. } => format!("redirect to {location:?}: {problem}"),
            e => e.to_string(),
        })?
    } else if let Some(rest) = location.strip_prefix("//") {
        return redirect(from, &format!("{}{rest}", from.scheme.prefix()));
    } else if location
        .split(['/', '?'])
        .next()
        .is_some_and(|first| first.contains(':'))
    {
        return Err(format!(
            "redirect to {location:?}, which is not an http:// or https:// URL"
        ));
    } else {
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let dir = &from.path[..from.path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Url {
            path,
            ..from.clone()
        }
    };
    if from.scheme == Scheme::Https && to.scheme == Scheme::Http {
        return Err(format!(
            "redirect from https:// down to {to} refused (the connection would lose its encryption)"
        ));
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_read_from_any_reader() {
        let url = Url::parse("http://h/lib/a").unwrap();
        let mut buf = [0u8; 4];
        let r = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 4\r\nContent-Range: bytes 2-5/10\r\n\r\nabcd";
        let got = read_response(&mut &r[..], &url, Some((2, &mut buf)), 0, &mut Vec::new());
        assert_eq!(got, Ok(Response::Range(Some(10))));
        assert_eq!(&buf, b"abcd");
        let r = b"HTTP/1.1 302 Found\r\nLocation: b\r\nContent-Length: 0\r\n\r\n";
        let got = read_response(&mut &r[..], &url, None, 10, &mut Vec::new());
        assert_eq!(
            got,
            Ok(Response::Redirect(Url::parse("http://h/lib/b").unwrap()))
        );
        let mut out = Vec::new();
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyz";
        let got = read_response(&mut &r[..], &url, None, 10, &mut out);
        assert_eq!((got, out.as_slice()), (Ok(Response::Whole(3)), &b"xyz"[..]));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n";
        let got = read_response(&mut &r[..], &url, None, 10, &mut Vec::new());
        assert!(got.unwrap_err().contains("Transfer-Encoding"));
    }

    #[test]
    fn urls() {
        let u = Url::parse("http://localhost:8080/lib").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("localhost", 8080, "/lib")
        );
        assert_eq!(
            u.join("games/a b.manifest").to_string(),
            "http://localhost:8080/lib/games/a%20b.manifest"
        );
        let u = Url::parse("http://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        assert_eq!(u.join("x").to_string(), "http://[::1]/x");
        assert_eq!(Url::parse("http://h").unwrap().path, "/");
        for bad in [
            "ftp://h",
            "http://",
            "http://h:x/",
            "http://u@h/",
            "http://h:0/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        let from = Url::parse("http://h:1/a/b/c").unwrap();
        assert_eq!(redirect(&from, "/x").unwrap().to_string(), "http://h:1/x");
        assert_eq!(
            redirect(&from, "d").unwrap().to_string(),
            "http://h:1/a/b/d"
        );
        assert_eq!(
            redirect(&from, "http://o/p").unwrap().to_string(),
            "http://o/p"
        );
        assert_eq!(
            redirect(&from, "//o:8/p").unwrap().to_string(),
            "http://o:8/p"
        );
        for bad in [
            "ftp://o/p",
            "file:///etc/passwd",
            "javascript:x",
            "mailto:a@b",
        ] {
            assert!(
                redirect(&from, bad).unwrap_err().contains("not an http"),
                "{bad}"
            );
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn https_urls_and_redirects() {
        let u = Url::parse("https://h/x").unwrap();
        assert_eq!((u.port, u.to_string().as_str()), (443, "https://h/x"));
        assert_eq!(
            Url::parse("HTTPS://h:8443/").unwrap().to_string(),
            "https://h:8443/"
        );
        let from = Url::parse("http://h:1/a/b/c").unwrap();
        assert_eq!(
            redirect(&from, "https://o/p").unwrap().to_string(),
            "https://o/p"
        );
        let secure = Url::parse("https://h/a").unwrap();
        assert!(redirect(&secure, "http://h/a")
            .unwrap_err()
            .contains("refused"));
        assert!(redirect(&secure, "//o/a")
            .unwrap()
            .to_string()
            .starts_with("https://"));
        assert_eq!(redirect(&secure, "/b").unwrap().to_string(), "https://h/b");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn https_needs_the_tls_feature() {
        let e = Url::parse("https://h/x").unwrap_err().to_string();
        assert!(e.contains("tls feature"), "{e}");
    }

    #[test]
    fn resolves_without_libc() {
        let t = Duration::from_secs(1);
        assert_eq!(
            resolve("127.0.0.1", 5, t).unwrap(),
            vec![SocketAddr::from(([127, 0, 0, 1], 5))]
        );
        let l = resolve("localhost", 5, t).unwrap();
        assert!(l.iter().any(|a| a.ip().is_loopback()), "{l:?}");
    }

    #[test]
    fn dns_answers() {
        // id 1, response, 1 question (a.b A IN), 2 answers: a CNAME then an A record.
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(&[1, b'a', 1, b'b', 0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 12]);
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 7]);
        assert_eq!(
            parse_dns_answer(&m),
            vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))]
        );
        for cut in 0..m.len() {
            let _ = parse_dns_answer(&m[..cut]);
        }
        m[3] = 0x83; // NXDOMAIN
        assert!(parse_dns_answer(&m).is_empty());
    }
}
