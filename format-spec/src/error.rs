//! The one error type of the format codecs.

use core::fmt;

/// Why a byte sequence is not a valid romlib structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// Fewer bytes than the structure needs.
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes required.
        need: usize,
        /// Bytes available.
        got: usize,
    },
    /// The magic bytes are not the expected ones.
    BadMagic {
        /// What was being decoded.
        what: &'static str,
    },
    /// A version this implementation does not understand.
    UnsupportedVersion {
        /// What was being decoded.
        what: &'static str,
        /// The version found.
        found: u32,
    },
    /// A chunk record's storage method this implementation does not know (a newer format).
    UnknownMethod {
        /// The method byte found.
        found: u8,
    },
    /// A length or count exceeds its named limit.
    LimitExceeded {
        /// The limit's name, as in SPEC.md.
        limit: &'static str,
        /// The value found.
        found: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// A field holds a value that the format does not allow.
    InvalidField {
        /// What was being decoded.
        what: &'static str,
        /// Which field.
        field: &'static str,
        /// The value found.
        found: u64,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FormatError::Truncated { what, need, got } => {
                write!(f, "{what} is truncated: need {need} bytes, found {got}")
            }
            FormatError::BadMagic { what } => write!(f, "{what} has wrong magic bytes"),
            FormatError::UnsupportedVersion { what, found } => write!(
                f,
                "{what} has unsupported version {found} (made by a newer romlib: it needs a \
                 newer romlib-device and romlib)"
            ),
            FormatError::UnknownMethod { found } => write!(
                f,
                "chunk record has storage method {found}, unknown to this version (made by a \
                 newer romlib: it needs a newer romlib-device and romlib)"
            ),
            FormatError::LimitExceeded { limit, found, max } => {
                write!(f, "{limit} exceeded: found {found}, at most {max} allowed")
            }
            // A key file of the other kind (keyfile::decode): found is 1 for a public key
            // where the secret one was wanted, 0 for the other way round.
            FormatError::InvalidField {
                what: "key file",
                field: "key type",
                found,
            } => f.write_str(if found == 1 {
                "is a public key file; the secret key file is needed here"
            } else {
                "is a secret key file; a public key file (.pub) is needed here (keep the \
                 secret key off devices and servers)"
            }),
            FormatError::InvalidField { what, field, found } => {
                write!(f, "{what} has invalid {field}: {found}")
            }
        }
    }
}

pub(crate) fn need(what: &'static str, b: &[u8], n: usize) -> Result<(), FormatError> {
    if b.len() < n {
        Err(FormatError::Truncated {
            what,
            need: n,
            got: b.len(),
        })
    } else {
        Ok(())
    }
}

pub(crate) fn limit(limit: &'static str, found: u64, max: u64) -> Result<(), FormatError> {
    if found > max {
        Err(FormatError::LimitExceeded { limit, found, max })
    } else {
        Ok(())
    }
}
