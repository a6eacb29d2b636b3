//! `romlib serve`: a library over HTTP/1.1, read-only, for devices on a LAN.
//!
//! A plain static file server is all a device needs (packs, manifests and locators are
//! immutable files once published), so this is one: GET and HEAD of the library's files,
//! single byte ranges (`Range: bytes=a-b`, `a-`, `-n`; a multi-range request is answered
//! with the whole file, as RFC 9110 allows), persistent connections, one thread per
//! connection up to [`MAX_CONNECTIONS`], an access log line per request on stdout.
//!
//! Only regular files below the library folder are served, and not its lock, its index
//! (the device never needs it, and a build may be rewriting it) or any hidden file (a
//! builder's temporary files): the path is checked component by component, then the file
//! is opened and its canonical path must still lie below the library's.

use crate::error::{Error, Result};
use romlib_format::layout::{GAMES_DIR, INDEX_FILE, RUNS_DIR};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections served at once; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// A client idle this long between requests, or this slow to send one, is dropped.
const IDLE: Duration = Duration::from_secs(30);

/// A running server: its address, and a handle to stop it.
#[derive(Clone)]
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Asks the accept loop to stop (it wakes it with a connection to itself).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Binds `listen` and serves the library at `root` until [`Server::stop`] is called, which
/// `on_ready` receives; returns after the open connections finished (at most [`IDLE`]).
pub fn serve(root: &Path, listen: &str, on_ready: impl FnOnce(&Server)) -> Result<()> {
    let root = root
        .canonicalize()
        .map_err(|e| Error::io(root, "open library folder", e))?;
    if !root.join(GAMES_DIR).is_dir() {
        return Err(Error::library(
            &root,
            "not a romlib library (no games/ folder)",
        ));
    }
    let listener = TcpListener::bind(listen)
        .map_err(|e| Error::Usage(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Usage(format!("cannot listen on {listen}: {e}")))?;
    let server = Server {
        addr,
        stop: Arc::new(AtomicBool::new(false)),
    };
    on_ready(&server);
    let active = Arc::new(AtomicUsize::new(0));
    let root = Arc::new(root);
    let mut workers = Vec::new();
    for conn in listener.incoming() {
        if server.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = conn else { continue };
        workers.retain(|w: &std::thread::JoinHandle<()>| !w.is_finished());
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n",
            );
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (root, done, stop) = (root.clone(), active.clone(), server.stop.clone());
        let spawned = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                let _ = connection(&root, stream, &stop);
                done.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(h) => workers.push(h),
            Err(_) => {
                active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// A parsed request head.
struct Request {
    method: String,
    target: String,
    version: String,
    range: Option<String>,
    close: bool,
}

/// Reads one request head; `Ok(None)` at a clean end of the connection.
fn read_head(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = r
            .by_ref()
            .take((MAX_HEAD - total + 1) as u64)
            .read_line(&mut line)?;
        if n == 0 {
            if lines.is_empty() {
                return Ok(None);
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "head cut short",
            ));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "head too long",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if lines.is_empty() {
                continue; // tolerated blank lines before a request
            }
            break;
        }
        lines.push(line);
    }
    let mut first = lines[0].split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (first.next(), first.next(), first.next(), first.next())
    else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        range: None,
        close: version == "HTTP/1.0",
    };
    for h in &lines[1..] {
        let Some((name, value)) = h.split_once(':') else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "bad header",
            ));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("range") {
            req.range = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            req.close = v.contains("close") || (req.close && !v.contains("keep-alive"));
        } else if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            // A body on a GET or HEAD is not supported: answer and close.
            req.close = true;
        }
    }
    Ok(Some(req))
}

fn connection(root: &Path, stream: TcpStream, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(IDLE))?;
    // The head and the body go out in separate writes: without this, Nagle's algorithm
    // holds the body's first segment back for the client's delayed ACK (~40 ms a request).
    stream.set_nodelay(true)?;
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "-".to_string(), |a| a.to_string());
    let mut out = stream.try_clone()?;
    let mut r = BufReader::with_capacity(8 * 1024, stream);
    loop {
        let req = match read_head(&mut r) {
            Ok(Some(req)) => req,
            Ok(None) => break,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let _ = respond_empty(&mut out, 400, "Bad Request", true, &[]);
                log(&peer, "-", 400, 0, Instant::now());
                break;
            }
            Err(_) => break,
        };
        let started = Instant::now();
        let close = req.close || stop.load(Ordering::SeqCst);
        let (status, sent) = match answer(root, &req, &mut out, close) {
            Ok(answered) => answered,
            Err(e) => {
                // A client that hangs up or stalls is its own business; anything else (a
                // read error of the library's disk) broke the response off, which the
                // client sees only as a body cut short: the operator must hear of it.
                use std::io::ErrorKind::*;
                if !matches!(
                    e.kind(),
                    BrokenPipe | ConnectionReset | ConnectionAborted | WouldBlock | TimedOut
                ) {
                    let path = resolve(root, &req.target).unwrap_or_else(|| root.to_path_buf());
                    eprintln!(
                        "romlib: {}: response to {} {} broken off: {e}",
                        path.display(),
                        req.method,
                        req.target
                    );
                }
                return Err(e);
            }
        };
        log(
            &peer,
            &format!("{} {} {}", req.method, req.target, req.version),
            status,
            sent,
            started,
        );
        if close {
            break;
        }
    }
    let _ = out.shutdown(Shutdown::Both);
    Ok(())
}

fn log(peer: &str, line: &str, status: u16, bytes: u64, started: Instant) {
    println!(
        "{peer} \"{line}\" {status} {bytes} {:.1}ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
}

fn respond_empty(
    out: &mut TcpStream,
    status: u16,
    reason: &str,
    close: bool,
    extra: &[String],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n");
    for e in extra {
        head.push_str(e);
        head.push_str("\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

/// The file a request target names, if it may be served.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let path = path.strip_prefix('/')?;
    let mut out = root.to_path_buf();
    let mut parts = 0;
    for seg in path.split('/') {
        let seg = percent_decode(seg)?;
        if seg.is_empty() || seg.starts_with('.') || seg.contains(['/', '\\', '\0']) {
            return None;
        }
        out.push(seg);
        parts += 1;
    }
    // The builder's own index (index.db and its runs) is no reader's business.
    if parts == 1 && out.file_name().is_some_and(|n| n == INDEX_FILE)
        || out
            .components()
            .next()
            .is_some_and(|c| c.as_os_str() == RUNS_DIR)
    {
        return None;
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses a single-range `Range` value against a file of `len` bytes: `Ok(None)` means
/// "send it all" (no range, or several), `Err(())` "not satisfiable".
#[allow(clippy::result_unit_err)]
pub fn parse_range(value: &str, len: u64) -> std::result::Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            len
        } else {
            let last: u64 = b.parse().map_err(|_| ())?;
            if last < start {
                return Err(());
            }
            last.saturating_add(1).min(len)
        };
        (start, end)
    };
    if start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Answers one request; returns the status and the body bytes sent.
fn answer(
    root: &Path,
    req: &Request,
    out: &mut TcpStream,
    close: bool,
) -> std::io::Result<(u16, u64)> {
    if req.method != "GET" && req.method != "HEAD" {
        respond_empty(
            out,
            405,
            "Method Not Allowed",
            close,
            &["Allow: GET, HEAD".into()],
        )?;
        return Ok((405, 0));
    }
    if !req.version.starts_with("HTTP/1.") {
        respond_empty(out, 505, "HTTP Version Not Supported", true, &[])?;
        return Ok((505, 0));
    }
    let not_found = |out: &mut TcpStream| -> std::io::Result<(u16, u64)> {
        respond_empty(out, 404, "Not Found", close, &[])?;
        Ok((404, 0))
    };
    let Some(path) = resolve(root, &req.target) else {
        return not_found(out);
    };
    let Ok(file) = File::open(&path) else {
        return not_found(out);
    };
    let meta = file.metadata()?;
    // Symbolic links must not lead outside the library.
    let inside = path.canonicalize().is_ok_and(|c| c.starts_with(root));
    if !meta.is_file() || !inside {
        return not_found(out);
    }
    let len = meta.len();
    let (status, start, end) = match req.range.as_deref().map(|v| parse_range(v, len)) {
        None | Some(Ok(None)) => (200, 0, len),
        Some(Ok(Some((s, e)))) => (206, s, e),
        Some(Err(())) => {
            respond_empty(
                out,
                416,
                "Range Not Satisfiable",
                close,
                &[format!("Content-Range: bytes */{len}")],
            )?;
            return Ok((416, 0));
        }
    };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\n",
        if status == 206 { "Partial Content" } else { "OK" },
        end - start
    );
    if status == 206 {
        head.push_str(&format!(
            "Content-Range: bytes {start}-{}/{len}\r\n",
            end - 1
        ));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if req.method == "HEAD" {
        return Ok((status, 0));
    }
    // File to socket directly: std copies that with sendfile(2) on Linux, no user buffer.
    let mut file = file;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))?;
    let sent = std::io::copy(&mut file.take(end - start), out)?;
    if sent != end - start {
        // The file shrank under us: the length promised cannot be kept.
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "file shrank",
        ));
    }
    Ok((status, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 100))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 100))));
        assert_eq!(parse_range("bytes=-1000", 100), Ok(Some((0, 100))));
        assert_eq!(parse_range("bytes=95-200", 100), Ok(Some((95, 100))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=5-4", 100), Err(()));
        assert_eq!(parse_range("bytes=-0", 100), Err(()));
        assert_eq!(parse_range("bytes=x-1", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
    }

    #[test]
    fn paths_stay_inside() {
        let root = Path::new("/lib");
        assert_eq!(
            resolve(root, "/packs/pack-0001.pkg"),
            Some(root.join("packs/pack-0001.pkg"))
        );
        assert_eq!(
            resolve(root, "/games/a%20b.manifest?x=1"),
            Some(root.join("games/a b.manifest"))
        );
        for bad in [
            "/../etc/passwd",
            "/games/../../x",
            "/games/%2e%2e/x",
            "/.romlib.lock",
            "/games/.a.manifest.tmp",
            "/index.db",
            "/games//a",
            "/",
            "games/a",
            "/a%2fb",
            "/a%zz",
        ] {
            assert_eq!(resolve(root, bad), None, "{bad}");
        }
    }
}
