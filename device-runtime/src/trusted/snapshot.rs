//! A library's signed snapshot (`snapshot.txt`, SPEC section 15): which manifest and locator
//! of each game the publisher published last, and until when. A snapshot is trusted only as
//! a whole: every lookup reads the file through once, hashing it, and returns its answer only
//! after the signature at its end verified against the trust store. So memory stays a line
//! whatever the library's size, and the file may be one anybody can write (a library folder)
//! without a check once and a read later ever disagreeing.

use crate::error::{Error, Result};
use crate::fsio::read_exact_at;
use crate::trusted::TrustStore;
use romlib_format::snapshot::{message, Header, Line, Parser, MAX_LINE_LEN, MAX_SNAPSHOT_LEN};
use std::fs::File;
use std::path::{Path, PathBuf};

/// What the snapshot says of one game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The manifest's revision.
    pub revision: u64,
    /// The manifest's length and BLAKE3.
    pub manifest: (u64, [u8; 32]),
    /// The locator's length and BLAKE3.
    pub locator: (u64, [u8; 32]),
}

/// A snapshot file whose signature verified when it was opened.
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    file: File,
    header: Header,
}

/// What one pass over a snapshot found.
struct Pass {
    header: Header,
    found: Option<Expected>,
}

impl Snapshot {
    /// Checks the snapshot in `file` (`path` names it in messages): its format, and its
    /// signature by a key of `trust`.
    pub fn open(path: &Path, file: File, trust: &TrustStore) -> Result<Self> {
        let pass = read(path, &file, trust, None)?;
        Ok(Snapshot {
            path: path.to_path_buf(),
            file,
            header: pass.header,
        })
    }

    /// Checks the snapshot in `file` like [`Snapshot::open`] and looks `title` up in the
    /// same pass (a reader that needs one game reads the file once).
    pub fn open_for(
        path: &Path,
        file: File,
        trust: &TrustStore,
        title: &str,
    ) -> Result<(Self, Option<Expected>)> {
        let pass = read(path, &file, trust, Some(title))?;
        let snap = Snapshot {
            path: path.to_path_buf(),
            file,
            header: pass.header,
        };
        Ok((snap, pass.found))
    }

    /// The header (sequence, creation and expiry times).
    pub fn header(&self) -> Header {
        self.header
    }

    /// Where it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses a snapshot past its expiry at time `now` (Unix seconds) with
    /// [`Error::Expired`].
    pub fn check_expiry(&self, now: u64) -> Result<()> {
        match self.header.expires {
            Some(expired) if now >= expired => Err(Error::Expired {
                path: self.path.clone(),
                expired,
                now,
            }),
            _ => Ok(()),
        }
    }

    /// What the snapshot says of game `title`, checked again against the signature (the
    /// file is read once more, whole); `None` when it does not list the title.
    pub fn expected(&self, title: &str, trust: &TrustStore) -> Result<Option<Expected>> {
        let pass = read(&self.path, &self.file, trust, Some(title))?;
        if pass.header != self.header {
            return Err(Error::Mismatch {
                path: self.path.clone(),
                problem: "the snapshot changed while it was read".into(),
            });
        }
        Ok(pass.found)
    }

    /// [`Error::Mismatch`] for a file of `title` whose bytes are not the ones listed.
    pub fn mismatch(&self, file: &Path, what: &str, problem: impl std::fmt::Display) -> Error {
        Error::Mismatch {
            path: file.to_path_buf(),
            problem: format!(
                "not the {what} the library's signed snapshot (sequence {}) names: {problem} \
                 (a mirror holding files of different publications, or a publication in \
                 progress: retry later)",
                self.header.sequence
            ),
        }
    }
}

/// The time now, in Unix seconds (0 when the clock is before 1970).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads the whole snapshot once: checks every line, hashes every byte before the signature
/// line, verifies the signature, and keeps what it says of `want`.
fn read(path: &Path, file: &File, trust: &TrustStore, want: Option<&str>) -> Result<Pass> {
    let mut found = None;
    let header = visit(path, file, trust, &mut |e| {
        if want == Some(e.title) {
            found = Some(Expected {
                revision: e.revision,
                manifest: (e.manifest_len, e.manifest_blake3),
                locator: (e.locator_len, e.locator_blake3),
            });
        }
        Ok(())
    })?;
    Ok(Pass { header, found })
}

/// Reads the snapshot in `file` once, streamed, holding one line: checks every line, hands
/// each game's entry to `on_game` as it comes (before the signature is checked: the caller
/// trusts nothing it learnt until this returns `Ok`), hashes every byte before the
/// signature line, and verifies the signature against `trust`. Returns the header.
pub fn visit(
    path: &Path,
    file: &File,
    trust: &TrustStore,
    on_game: &mut dyn FnMut(&romlib_format::snapshot::Entry<'_>) -> Result<()>,
) -> Result<Header> {
    let fmt_err = |e| Error::format(path, e);
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "stat", e))?
        .len();
    if len > MAX_SNAPSHOT_LEN {
        return Err(fmt_err(romlib_format::FormatError::LimitExceeded {
            limit: "MAX_SNAPSHOT_LEN",
            found: len,
            max: MAX_SNAPSHOT_LEN,
        }));
    }
    let mut parser = Parser::new();
    let mut hasher = blake3::Hasher::new();
    let mut signed_len = 0u64;
    let mut signature = None;
    let mut buf = vec![0u8; 64 << 10];
    let mut line: Vec<u8> = Vec::with_capacity(MAX_LINE_LEN + 1);
    let mut pos = 0u64;
    while pos < len {
        let n = buf.len().min((len - pos) as usize);
        read_exact_at(file, &mut buf[..n], pos).map_err(|e| Error::io(path, "read", e))?;
        pos += n as u64;
        for part in buf[..n].split_inclusive(|&c| c == b'\n') {
            line.extend_from_slice(part);
            if line.len() > MAX_LINE_LEN + 1 {
                return Err(fmt_err(romlib_format::FormatError::LimitExceeded {
                    limit: "snapshot line length",
                    found: line.len() as u64,
                    max: MAX_LINE_LEN as u64,
                }));
            }
            if line.last() != Some(&b'\n') {
                continue;
            }
            match parser.line(&line[..line.len() - 1]).map_err(fmt_err)? {
                Line::Signature {
                    public_key,
                    signature: s,
                } => signature = Some((public_key, s)),
                l => {
                    if let Line::Game(e) = &l {
                        on_game(e)?;
                    }
                    hasher.update(&line);
                    signed_len += line.len() as u64;
                }
            }
            line.clear();
        }
    }
    let (Some(header), Some((key, sig)), true) = (parser.header(), signature, line.is_empty())
    else {
        return Err(Error::manifest(
            path,
            "snapshot is truncated: it does not end with its signature line",
        ));
    };
    let msg = message(hasher.finalize().as_bytes(), signed_len);
    trust
        .verify(&key, &msg, &sig)
        .map_err(|problem| Error::Untrusted {
            path: path.to_path_buf(),
            problem: problem.replace("the manifest", "the snapshot"),
        })?;
    Ok(header)
}

/// Hashes `len` bytes of `file` from its start; `Some(problem)` when they are not `want`'s
/// length and BLAKE3.
pub fn differs(file: &File, path: &Path, want: (u64, [u8; 32])) -> Result<Option<String>> {
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "stat", e))?
        .len();
    if len != want.0 {
        return Ok(Some(format!("{len} bytes, where it names {}", want.0)));
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = 0u64;
    while pos < len {
        let n = buf.len().min((len - pos) as usize);
        read_exact_at(file, &mut buf[..n], pos).map_err(|e| Error::io(path, "read", e))?;
        hasher.update(&buf[..n]);
        pos += n as u64;
    }
    let got = *hasher.finalize().as_bytes();
    Ok((got != want.1).then(|| {
        format!(
            "BLAKE3 {}, where it names {}",
            romlib_format::snapshot::Hex(&got[..8]),
            romlib_format::snapshot::Hex(&want.1[..8])
        )
    }))
}
