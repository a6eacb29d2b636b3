//! The HTTP client a remote library uses: one kept-alive connection, bounded retries,
//! redirects followed and remembered per file, and whole-file streams read forward for a
//! server that ignores byte ranges.

use super::connect::{Connector, Stream};
use super::response::{
    body_error, copy_exact, fail, receive, take_range, take_stream_start, take_whole, Failure, Head,
};
use super::url::{redirect, Url};
use super::{Download, ATTEMPTS, MAX_MOVED, MAX_REDIRECTS, MAX_STREAMS, STREAM_JUMP};
use crate::error::{Error, Result};
use std::io::{BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

    /// Counts `n` more bytes read beyond those needed (see [`Client::stream_extra`]).
    pub fn count_extra(&mut self, n: u64) {
        self.stream_extra += n;
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
        conn.io.get_mut().restart_meter();
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
