//! Key files: one line of text, a type tag, a space and 64 lower-case hex digits.
//!
//! ```text
//! romlib-ed25519-secret-key-v1 <32-byte seed in hex>
//! romlib-ed25519-public-key-v1 <32-byte public key in hex>
//! ```

use crate::error::FormatError;

/// Tag of a secret (signing) key file.
pub const SECRET_TAG: &str = "romlib-ed25519-secret-key-v1";
/// Tag of a public (verifying) key file.
pub const PUBLIC_TAG: &str = "romlib-ed25519-public-key-v1";
/// Length of an encoded key file, final newline included.
pub const ENCODED_LEN: usize = SECRET_TAG.len() + 1 + 64 + 1;

/// Which kind of key a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A secret signing key (Ed25519 seed).
    Secret,
    /// A public verifying key.
    Public,
}

impl KeyKind {
    fn tag(self) -> &'static str {
        match self {
            KeyKind::Secret => SECRET_TAG,
            KeyKind::Public => PUBLIC_TAG,
        }
    }
}

/// Encodes a key file.
pub fn encode(kind: KeyKind, key: &[u8; 32]) -> [u8; ENCODED_LEN] {
    let mut out = [0u8; ENCODED_LEN];
    let tag = kind.tag().as_bytes();
    out[..tag.len()].copy_from_slice(tag);
    out[tag.len()] = b' ';
    hex_encode(key, &mut out[tag.len() + 1..tag.len() + 65]);
    out[ENCODED_LEN - 1] = b'\n';
    out
}

/// Decodes a key file of the expected kind. Trailing white space is allowed.
///
/// A file of the other kind gives [`FormatError::InvalidField`] with field `key type`,
/// so callers can say "this is a public key, a secret key is needed".
pub fn decode(expected: KeyKind, file: &[u8]) -> Result<[u8; 32], FormatError> {
    let mut end = file.len();
    while end > 0 && file[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    let text = &file[..end];
    let other = match expected {
        KeyKind::Secret => KeyKind::Public,
        KeyKind::Public => KeyKind::Secret,
    };
    let split = text.iter().position(|&c| c == b' ');
    let (tag, hex) = match split {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => return Err(FormatError::BadMagic { what: "key file" }),
    };
    if tag == other.tag().as_bytes() {
        return Err(FormatError::InvalidField {
            what: "key file",
            field: "key type",
            found: matches!(other, KeyKind::Public) as u64,
        });
    }
    if tag != expected.tag().as_bytes() {
        return Err(FormatError::BadMagic { what: "key file" });
    }
    if hex.len() != 64 {
        return Err(FormatError::InvalidField {
            what: "key file",
            field: "hex length",
            found: hex.len() as u64,
        });
    }
    let mut key = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let hi = hex_val(pair[0]);
        let lo = hex_val(pair[1]);
        match (hi, lo) {
            (Some(h), Some(l)) => key[i] = h << 4 | l,
            _ => {
                return Err(FormatError::InvalidField {
                    what: "key file",
                    field: "hex digit",
                    found: i as u64 * 2,
                })
            }
        }
    }
    Ok(key)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Writes `bytes` as lower-case hex into `out`, which must be twice as long.
pub fn hex_encode(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[(b >> 4) as usize];
        out[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_kind() {
        let key = [0xA5u8; 32];
        let f = encode(KeyKind::Public, &key);
        assert_eq!(decode(KeyKind::Public, &f), Ok(key));
        assert!(matches!(
            decode(KeyKind::Secret, &f),
            Err(FormatError::InvalidField {
                field: "key type",
                ..
            })
        ));
        assert!(decode(KeyKind::Public, &f[..40]).is_err());
        assert!(decode(KeyKind::Public, b"garbage").is_err());
        let mut bad = f;
        bad[40] = b'z';
        assert!(decode(KeyKind::Public, &bad).is_err());
    }
}
