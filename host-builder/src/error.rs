//! The host library's error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a host operation failed. `Display` gives one line starting with the subject.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a file failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The system's error.
        source: io::Error,
    },
    /// Something in the input folder cannot be built.
    Input {
        /// The input file or directory.
        path: PathBuf,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// The library directory is damaged or inconsistent.
    Library {
        /// The file in the library.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Another process holds the library.
    Locked {
        /// The index file.
        path: PathBuf,
    },
    /// A key file is missing, corrupt or of the wrong type.
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A bad combination of options.
    Usage(String),
    /// An error from the shared install/verify code.
    Device(romlib_device::Error),
}

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, op: &'static str, source: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            op,
            source,
        }
    }

    /// An I/O error, except that a missing file or folder is an input problem: `missing`
    /// says what is wrong and what to do. The one place `NotFound` is told apart.
    pub(crate) fn io_or_missing(
        path: impl AsRef<Path>,
        op: &'static str,
        source: io::Error,
        missing: &str,
    ) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            Error::input(path, missing)
        } else {
            Error::io(path, op, source)
        }
    }

    pub(crate) fn input(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Input {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }

    pub(crate) fn library(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Library {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }

    /// Whether this is a usage error (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }
}

impl From<romlib_device::Error> for Error {
    fn from(e: romlib_device::Error) -> Self {
        Error::Device(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, op, source } => {
                write!(f, "{}: {op} failed: {source}", path.display())
            }
            Error::Input { path, problem } => write!(f, "{}: {problem}", path.display()),
            Error::Library { path, problem } => write!(f, "{}: {problem}", path.display()),
            Error::Locked { path } => write!(
                f,
                "{}: the library is in use by another romlib process; wait for it to finish",
                path.display()
            ),
            Error::Key { path, problem } => write!(f, "{}: {problem}", path.display()),
            Error::Usage(msg) => f.write_str(msg),
            Error::Device(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Device(e) => Some(e),
            _ => None,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
