//! The device runtime's one error type.

use romlib_format::path::PathError;
use romlib_format::FormatError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Everything that can make a device operation fail. Each variant names the file it is
/// about; `Display` gives one line that starts with that subject.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a file failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("open", "read", "write", "rename", ...).
        op: &'static str,
        /// The system's error.
        source: io::Error,
    },
    /// A fixed binary structure is malformed.
    Format {
        /// The file it was read from.
        path: PathBuf,
        /// What is wrong.
        source: FormatError,
    },
    /// A manifest's content is invalid (after its envelope decoded).
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A manifest path that must not be written to disk.
    UnsafePath {
        /// The manifest file.
        path: PathBuf,
        /// The offending entry.
        entry: String,
        /// Which rule it breaks.
        problem: PathError,
    },
    /// The signature is missing, forged, or by a key the trust store does not hold.
    Untrusted {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A chunk could not be found or does not match the signed manifest.
    Chunk {
        /// The pack (or index) involved.
        path: PathBuf,
        /// The chunk's BLAKE3.
        hash: [u8; 32],
        /// What is wrong.
        problem: String,
    },
    /// The index database could not be used.
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A game, key or directory that does not exist.
    NotFound {
        /// What was looked for.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// A title the library does not hold; `closest` are its titles nearest to it (another
    /// case, a typo), for the hint.
    NoSuchGame {
        /// Where its manifest would be.
        path: PathBuf,
        /// The closest titles, closest first (perhaps none).
        closest: Vec<String>,
    },
    /// The trust store holds no key.
    NoTrustedKeys {
        /// Where keys were looked for.
        path: PathBuf,
    },
    /// The install directory holds something romlib did not install under that name.
    NotOurs {
        /// The directory.
        path: PathBuf,
    },
    /// An HTTP transfer failed (after any retries).
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// An https:// server's certificate was refused (expired, for another host, or from an
    /// unknown authority), or no certificate authorities could be loaded. Nothing was
    /// downloaded from it, and plain http:// is never tried instead.
    Tls {
        /// The URL.
        url: String,
        /// What went wrong, naming the host.
        problem: String,
    },
    /// The install folder's file system cannot hold the game as it is.
    Unfit {
        /// The install folder.
        path: PathBuf,
        /// The file system's name.
        fs: String,
        /// Each problem, for people.
        problems: Vec<String>,
    },
    /// The install folder's file system has too little room for the game.
    NoRoom {
        /// The install folder.
        path: PathBuf,
        /// Bytes the game needs there.
        need: u64,
        /// Bytes free.
        free: u64,
    },
    /// A read asked for bytes beyond the end of a file.
    BeyondEnd {
        /// The file, as `<title>/<path in the game>`.
        path: PathBuf,
        /// The offset asked for.
        offset: u64,
        /// The file's size.
        size: u64,
    },
    /// `--layout` cannot place a game: an unknown layout, a game without a known system,
    /// or a system the layout has no folder for. The message lists what exists.
    Layout {
        /// What it is about: the layout name or the game's title id.
        subject: String,
        /// What is wrong, and what exists.
        problem: String,
    },
    /// The operation was asked to stop (SIGINT or SIGTERM) and stopped cleanly; a network
    /// install kept what it had downloaded for the next attempt.
    Cancelled {
        /// What was being worked on.
        path: PathBuf,
        /// The signal (2 for SIGINT, 15 for SIGTERM); the exit status is 128 plus it.
        signal: i32,
    },
    /// Another romlib operation holds the install folder (`--no-wait`).
    Locked {
        /// The install folder.
        path: PathBuf,
    },
    /// A game would be replaced by a lower revision of it (a rollback to an older, validly
    /// signed manifest); nothing was changed. `--allow-downgrade` does it on purpose.
    Downgrade {
        /// The installed game, or the library's manifest of it.
        path: PathBuf,
        /// Its title id.
        title: String,
        /// The revision there.
        have: u64,
        /// The lower revision offered.
        offered: u64,
    },
    /// A library's signed snapshot (SPEC section 15) is past its expiry time, read over a
    /// network (a stale or frozen server, or a wrong clock). `--allow-expired` reads it.
    Expired {
        /// The snapshot.
        path: PathBuf,
        /// When it expired (Unix seconds).
        expired: u64,
        /// The device's clock (Unix seconds).
        now: u64,
    },
    /// A manifest or locator is not the one the library's signed snapshot names (a mirror
    /// mixing files of different publications, or one being published right now).
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        problem: String,
    },
    /// In an install folder, an entry that is not what romlib expects there (a symbolic
    /// link where a folder or file should be, a file where a folder should be); nothing
    /// was changed.
    Unexpected {
        /// The entry.
        path: PathBuf,
        /// What it is ("a symbolic link").
        found: &'static str,
        /// What romlib expected ("a folder").
        want: &'static str,
    },
}

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, op: &'static str, source: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            op,
            source,
        }
    }

    pub(crate) fn format(path: impl AsRef<Path>, source: FormatError) -> Self {
        Error::Format {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub(crate) fn manifest(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Manifest {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }

    pub(crate) fn chunk(
        path: impl AsRef<Path>,
        hash: &[u8; 32],
        problem: impl Into<String>,
    ) -> Self {
        Error::Chunk {
            path: path.as_ref().to_path_buf(),
            hash: *hash,
            problem: problem.into(),
        }
    }
}

impl Error {
    /// The stable code of this error in JSON output (docs/handhelds.md, "Exit codes and error
    /// codes"): what a front end branches on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { source, .. } if is_no_space(source) => "no_space",
            Error::Io { .. } => "io",
            Error::Format { .. }
            | Error::Manifest { .. }
            | Error::Chunk { .. }
            | Error::Index { .. } => "damaged",
            Error::UnsafePath { .. } => "unsafe_path",
            Error::Untrusted { .. } => "untrusted",
            Error::NotFound { .. } | Error::NoSuchGame { .. } => "not_found",
            Error::NoTrustedKeys { .. } => "no_trusted_keys",
            Error::NotOurs { .. } => "not_ours",
            Error::Http { .. } => "network",
            Error::Tls { .. } => "tls",
            Error::BeyondEnd { .. } => "out_of_range",
            Error::Layout { .. } => "no_layout_folder",
            Error::Unfit { .. } => "file_system",
            Error::NoRoom { .. } => "no_space",
            Error::Unexpected { .. } => "unexpected_entry",
            Error::Cancelled { .. } => "cancelled",
            Error::Locked { .. } => "locked",
            Error::Downgrade { .. } => "downgrade",
            Error::Expired { .. } => "expired",
            Error::Mismatch { .. } => "mismatch",
        }
    }

    /// The exit status of a command that failed with this error: 128 plus the signal for
    /// a cancel (as a shell reports a process its signal ended), 1 otherwise.
    pub fn exit_status(&self) -> u8 {
        match self {
            Error::Cancelled { signal, .. } => (128 + signal.clamp(&1, &127)) as u8,
            _ => 1,
        }
    }

    /// The file, folder or URL the error is about.
    pub fn subject(&self) -> String {
        match self {
            Error::Io { path, .. }
            | Error::Format { path, .. }
            | Error::Manifest { path, .. }
            | Error::UnsafePath { path, .. }
            | Error::Untrusted { path, .. }
            | Error::Chunk { path, .. }
            | Error::Index { path, .. }
            | Error::NotFound { path, .. }
            | Error::NoSuchGame { path, .. }
            | Error::NoTrustedKeys { path }
            | Error::NotOurs { path }
            | Error::Unfit { path, .. }
            | Error::NoRoom { path, .. }
            | Error::BeyondEnd { path, .. }
            | Error::Cancelled { path, .. }
            | Error::Locked { path }
            | Error::Downgrade { path, .. }
            | Error::Expired { path, .. }
            | Error::Mismatch { path, .. }
            | Error::Unexpected { path, .. } => path.to_string_lossy().into_owned(),
            Error::Http { url, .. } | Error::Tls { url, .. } => url.clone(),
            Error::Layout { subject, .. } => subject.clone(),
        }
    }
}

/// A Unix time in seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub struct Utc(pub u64);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, rem) = (self.0 / 86400, self.0 % 86400);
        let (y, m, d) = romlib_format::manifest::civil_date(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

/// Whether an I/O error says the disk is full.
pub fn is_no_space(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

/// `path` for a one-line message: control characters (a newline in a planted name) are
/// escaped, so a name cannot break a message into lines or fake one.
pub fn shown(path: &Path) -> String {
    path.to_string_lossy()
        .chars()
        .flat_map(|c| {
            let esc: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect()
}

/// Lower-case hex of a hash's first 8 bytes, for messages.
pub fn short_hex(hash: &[u8]) -> String {
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, op, source } => {
                write!(f, "{}: {op} failed: {source}", path.display())
            }
            Error::Format { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Manifest { path, problem } => {
                write!(f, "{}: invalid manifest: {problem}", path.display())
            }
            Error::UnsafePath {
                path,
                entry,
                problem,
            } => {
                write!(
                    f,
                    "{}: refused unsafe file path {entry:?}: it {problem}",
                    path.display()
                )
            }
            Error::Untrusted { path, problem } => {
                write!(f, "{}: signature check failed: {problem}", path.display())
            }
            Error::Chunk {
                path,
                hash,
                problem,
            } => {
                write!(
                    f,
                    "{}: chunk {}: {problem}",
                    path.display(),
                    short_hex(hash)
                )
            }
            Error::Index { path, problem } => write!(f, "{}: index: {problem}", path.display()),
            Error::NotFound { path, what } => write!(f, "{}: no such {what}", path.display()),
            Error::NoSuchGame { path, closest } => {
                write!(f, "{}: no such game in this library", path.display())?;
                if !closest.is_empty() {
                    write!(f, " (closest: {})", closest.join(", "))?;
                }
                Ok(())
            }
            Error::NoTrustedKeys { path } => write!(
                f,
                "{}: no trusted keys: pass --trusted-key FILE or put *.pub keys there",
                path.display()
            ),
            Error::NotOurs { path } => write!(
                f,
                "{}: not installed by romlib (no completion marker); left untouched",
                path.display()
            ),
            Error::Http { url, problem } => write!(f, "{url}: {problem}"),
            Error::Tls { url, problem } => write!(f, "{url}: TLS: {problem}"),
            Error::Unfit { path, fs, problems } => write!(
                f,
                "{}: this {fs} file system cannot hold the game: {}",
                path.display(),
                problems.join("; ")
            ),
            Error::NoRoom { path, need, free } => {
                // What is needed rounds up, what is free rounds down.
                let mib = |n: &u64| {
                    if *n < 1 << 20 {
                        return format!("{} KiB", n / 1024);
                    }
                    let tenths = u128::from(*n) * 10 / (1024 * 1024);
                    format!("{}.{} MiB", tenths / 10, tenths % 10)
                };
                write!(
                    f,
                    "{}: the game needs {}, {} free; nothing was written",
                    path.display(),
                    mib(&need.next_multiple_of(1024)),
                    mib(free)
                )
            }
            Error::BeyondEnd { path, offset, size } => write!(
                f,
                "{}: offset {offset} is beyond the end of the file ({size} bytes)",
                path.display()
            ),
            Error::Layout { subject, problem } => write!(f, "{subject}: {problem}"),
            Error::Unexpected { path, found, want } => {
                let why = if *found == "a symbolic link" {
                    " (romlib follows no links in an install folder)"
                } else {
                    ""
                };
                write!(
                    f,
                    "{}: {found} where romlib expects {want}; nothing was changed{why}",
                    shown(path)
                )
            }
            Error::Cancelled { path, signal } => {
                let name = match signal {
                    2 => "SIGINT",
                    15 => "SIGTERM",
                    _ => "a signal",
                };
                write!(
                    f,
                    "{}: cancelled by {name}: nothing was installed; what an install over the \
                     network had downloaded is kept, and the same command resumes it",
                    path.display()
                )
            }
            Error::Locked { path } => write!(
                f,
                "{}: another romlib operation is working in this folder (without --no-wait, \
                 romlib waits for it)",
                path.display()
            ),
            Error::Downgrade {
                path,
                title,
                have,
                offered,
            } => write!(
                f,
                "{}: {title} is at revision {} there, and this manifest is the older revision \
                 {}: refused as a rollback (--allow-downgrade takes the older one on purpose)",
                path.display(),
                romlib_format::manifest::Revision(*have),
                romlib_format::manifest::Revision(*offered),
            ),
            Error::Expired { path, expired, now } => write!(
                f,
                "{}: the library's signed snapshot expired at {} and this device's clock says \
                 {}: if the clock is right, the server is stale or held back (its publisher \
                 runs `romlib refresh`); if not, set the clock (--allow-expired reads it anyway)",
                path.display(),
                Utc(*expired),
                Utc(*now),
            ),
            Error::Mismatch { path, problem } => write!(f, "{}: {problem}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// For `Read` and `Seek` implementations: the kind says what class of failure it is (an
/// unverifiable chunk is `InvalidData`, never a short read), the message is the whole
/// one-line error, and the error itself stays reachable through `get_ref`.
impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Io { source, .. } => source.kind(),
            Error::NotFound { .. } => io::ErrorKind::NotFound,
            Error::BeyondEnd { .. } => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
