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
//!
//! The rooms: [`url`] (parsing, printing, and following a redirect's `Location`),
//! [`resolve`] (host names without the C library), [`connect`] (TCP and TLS connections),
//! [`response`] (a response's head and body, checked against the request), and [`client`]
//! (one kept connection, retries, redirects remembered, and whole-file streams for servers
//! without byte ranges).

mod client;
mod connect;
mod resolve;
mod response;
mod url;

pub use client::Client;
pub use connect::{Connector, Stream, CA_FILES};
pub use resolve::resolve;
pub use response::{read_response, Response, TOO_LARGE};
pub use url::{Scheme, Url};

use std::io::Write;

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
