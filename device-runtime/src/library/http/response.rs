//! Reading one response: its head (bounded), then exactly the body the request asked for,
//! checked against it (a range as `206` with that `Content-Range`, a whole file as `200`
//! within the caller's limit); what went wrong and whether a retry may help.

use super::url::{redirect, Url};
use super::{Download, MAX_HEAD};
use crate::error::Error;
use std::io::{BufRead, Read, Write};

/// Why one attempt failed, and whether another may succeed.
pub(super) struct Failure {
    pub(super) problem: String,
    pub(super) retry: bool,
    /// The server says the file does not exist (404, 410): what to call it.
    pub(super) missing: Option<&'static str>,
    /// A TLS certificate or handshake was refused.
    pub(super) tls: bool,
    /// The server answered a range request with the whole file (the body is unread).
    pub(super) whole: bool,
}

impl Failure {
    pub(super) fn into_error(self, url: &Url) -> Error {
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

pub(super) fn fail(problem: impl Into<String>, retry: bool) -> Failure {
    Failure {
        problem: problem.into(),
        retry,
        missing: None,
        tls: false,
        whole: false,
    }
}

/// What a response head said.
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) len: Option<u64>,
    pub(super) range: Option<String>,
    pub(super) location: Option<String>,
    pub(super) close: bool,
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
pub(super) struct Received<T> {
    /// What `take` returned, or `Err(location)` for a redirect.
    pub(super) outcome: std::result::Result<T, String>,
    /// Whether the server closes the connection after it.
    pub(super) close: bool,
    /// Body bytes read through `take`.
    pub(super) body_bytes: u64,
}

/// Reads one response from `conn`: its head, then for a redirect its Location (skipping
/// the body), for an error status a failure, and otherwise hands the body to `take`.
pub(super) fn receive<T>(
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

/// What the error of an answer longer than allowed says.
pub const TOO_LARGE: &str = "is larger than the";

/// Takes the body of a whole-file GET: `200` with a `Content-Length` of at most `max`
/// bytes, copied into `out` (restarted first); returns its length.
pub(super) fn take_whole(
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
            format!("response of {len} bytes {TOO_LARGE} {max} allowed"),
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
pub(super) fn take_range(
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
pub(super) fn take_stream_start(
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

/// The error a read returns when the server sends below the minimum rate.
#[derive(Debug)]
pub struct TooSlow {
    /// Bytes per second it sent.
    pub rate: u64,
    /// The minimum.
    pub min_rate: u64,
}

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server sends {} bytes/s, under the minimum of {} (--min-rate; 0 turns the \
             check off)",
            self.rate, self.min_rate
        )
    }
}

impl std::error::Error for TooSlow {}

pub(super) fn body_error(e: &std::io::Error) -> Failure {
    if let Some(slow) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<TooSlow>())
    {
        // Not retried: the next attempt would drip as slowly.
        return fail(slow.to_string(), false);
    }
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            fail("the server stalled (timed out)", true)
        }
        std::io::ErrorKind::UnexpectedEof => fail("the response body was cut short", true),
        _ => fail(format!("receiving failed: {e}"), true),
    }
}

pub(super) fn copy_exact(
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
}
