//! The byte source both DAT readers read from: buffered, counting lines so that an error
//! names its line, and errors located by file and line.

use crate::error::Error;
use std::fmt::Display;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// Size of the read buffers: large enough that reading costs few system calls.
pub(super) const READ_BUF: usize = 64 << 10;

/// The longest run of a DAT without a line break or, in XML, a `<` or `>`: a tag, an
/// attribute, a text or a clrmamepro string longer than this is refused before it is
/// held in memory (real DATs stay far below: their longest lines are descriptions).
pub const MAX_DAT_FIELD_LEN: usize = 1 << 20;

/// Where a problem is: the file and the 1-based line.
#[derive(Clone, Copy)]
pub(super) struct At<'a> {
    pub(super) path: &'a Path,
    pub(super) line: u64,
}

impl<'a> At<'a> {
    pub(super) fn new(path: &'a Path, line: u64) -> Self {
        At { path, line }
    }

    pub(super) fn err(self, problem: impl Display) -> Error {
        // Problems quote names from the file and the XML library's own messages: keep the
        // error on one line whatever they contain.
        let problem = problem.to_string().replace(['\n', '\r'], " ");
        Error::input(self.path, format!("line {}: {problem}", self.line))
    }

    /// The file ended before `what`, opened on line `open`, was closed.
    pub(super) fn cut_short(self, what: &str, open: u64) -> Error {
        self.err(format!(
            "the file ends inside {what} opened on line {open}: it is cut short or unbalanced"
        ))
    }
}

/// A buffered source that counts the newlines consumed from it, so that an error can name
/// its line without re-reading the file.
pub(super) struct LineCounter<R> {
    inner: BufReader<R>,
    newlines: u64,
    /// Bytes consumed since the last `<`, `>` or newline.
    run: usize,
}

impl<R: Read> LineCounter<R> {
    pub(super) fn new(inner: BufReader<R>) -> Self {
        LineCounter {
            inner,
            newlines: 0,
            run: 0,
        }
    }

    /// The line of the next unconsumed byte.
    pub(super) fn line(&self) -> u64 {
        self.newlines + 1
    }

    pub(super) fn into_parts(self) -> (BufReader<R>, u64) {
        let line = self.line();
        (self.inner, line)
    }

    /// Skips a UTF-8 byte-order mark and blank space. Returns the next byte, left unread, or
    /// `None` at the end of the file.
    pub(super) fn skip_blank(&mut self) -> io::Result<Option<u8>> {
        // Byte by byte: a source may deliver the mark in pieces.
        for mark in *b"\xEF\xBB\xBF" {
            if self.fill_buf()?.first() != Some(&mark) {
                break;
            }
            self.consume(1);
        }
        loop {
            let buf = self.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    let first = buf[i];
                    self.consume(i);
                    return Ok(Some(first));
                }
                None => {
                    let n = buf.len();
                    self.consume(n);
                }
            }
        }
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for LineCounter<R> {
    /// Fails (`InvalidData`) when the run of bytes without a `<`, `>` or newline would
    /// pass [`MAX_DAT_FIELD_LEN`]: the XML reader holds a whole tag or text, so this bounds
    /// what it holds.
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let run = self.run;
        let buf = self.inner.fill_buf()?;
        let ahead = buf.iter().position(|&b| is_break(b)).unwrap_or(buf.len());
        if run + ahead > MAX_DAT_FIELD_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a tag, attribute or text longer than {MAX_DAT_FIELD_LEN} bytes \
                     (MAX_DAT_FIELD_LEN)"
                ),
            ));
        }
        Ok(buf)
    }

    fn consume(&mut self, amt: usize) {
        let buffered = self.inner.buffer();
        let done = &buffered[..amt.min(buffered.len())];
        self.newlines += done.iter().filter(|&&b| b == b'\n').count() as u64;
        self.run = match done.iter().rposition(|&b| is_break(b)) {
            Some(i) => done.len() - i - 1,
            None => self.run + done.len(),
        };
        self.inner.consume(amt);
    }
}

/// Whether `b` ends a run for [`MAX_DAT_FIELD_LEN`].
fn is_break(b: u8) -> bool {
    matches!(b, b'<' | b'>' | b'\n')
}
