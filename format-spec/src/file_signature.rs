//! Detached signatures of release files (`romlib sign-file`, `romlib verify-file`; SPEC.md
//! section 14): one line of ASCII, a tag, the signer's public key and the Ed25519 signature
//! of [`message`], each in lower-case hex.
//!
//! ```text
//! romlib-ed25519-file-signature-v1 <32-byte public key in hex> <64-byte signature in hex>
//! ```

use crate::error::FormatError;
use crate::keyfile::hex_encode;

/// Tag of a file signature.
pub const TAG: &str = "romlib-ed25519-file-signature-v1";
/// Domain separation: what is signed starts with this, so a file signature can never be
/// taken for a manifest's (whose signed bytes start with the manifest magic).
pub const CONTEXT: &[u8; 25] = b"romlib file signature v1\0";
/// Length of the signed message: context, BLAKE3 of the file, its length (u64 LE).
pub const MESSAGE_LEN: usize = CONTEXT.len() + 32 + 8;
/// Length of an encoded signature line, final newline included.
pub const ENCODED_LEN: usize = TAG.len() + 1 + 64 + 1 + 128 + 1;

/// The bytes signed for a file whose BLAKE3 is `hash` and length `len`.
pub fn message(hash: &[u8; 32], len: u64) -> [u8; MESSAGE_LEN] {
    let mut m = [0u8; MESSAGE_LEN];
    m[..CONTEXT.len()].copy_from_slice(CONTEXT);
    m[CONTEXT.len()..CONTEXT.len() + 32].copy_from_slice(hash);
    m[CONTEXT.len() + 32..].copy_from_slice(&len.to_le_bytes());
    m
}

/// Encodes a signature line.
pub fn encode(public: &[u8; 32], signature: &[u8; 64]) -> [u8; ENCODED_LEN] {
    let mut out = [0u8; ENCODED_LEN];
    let t = TAG.len();
    out[..t].copy_from_slice(TAG.as_bytes());
    out[t] = b' ';
    hex_encode(public, &mut out[t + 1..t + 65]);
    out[t + 65] = b' ';
    hex_encode(signature, &mut out[t + 66..t + 194]);
    out[ENCODED_LEN - 1] = b'\n';
    out
}

/// Decodes a signature line (trailing white space allowed): the public key and signature.
pub fn decode(file: &[u8]) -> Result<([u8; 32], [u8; 64]), FormatError> {
    let mut end = file.len();
    while end > 0 && file[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    let text = &file[..end];
    let mut parts = text.split(|&c| c == b' ');
    if parts.next() != Some(TAG.as_bytes()) {
        return Err(FormatError::BadMagic {
            what: "file signature",
        });
    }
    let mut public = [0u8; 32];
    let mut signature = [0u8; 64];
    let what = "file signature";
    hex_decode(parts.next().unwrap_or(b""), &mut public, what, "public key")?;
    hex_decode(
        parts.next().unwrap_or(b""),
        &mut signature,
        what,
        "signature",
    )?;
    if let Some(extra) = parts.next() {
        return Err(FormatError::InvalidField {
            what: "file signature",
            field: "trailing field length",
            found: extra.len() as u64,
        });
    }
    Ok((public, signature))
}

/// Decodes `hex` (exactly `2 * out.len()` hex digits, either case) into `out`.
pub(crate) fn hex_decode(
    hex: &[u8],
    out: &mut [u8],
    what: &'static str,
    field: &'static str,
) -> Result<(), FormatError> {
    if hex.len() != out.len() * 2 {
        return Err(FormatError::InvalidField {
            what,
            field,
            found: hex.len() as u64,
        });
    }
    for (i, pair) in hex.chunks(2).enumerate() {
        let v = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        match (v(pair[0]), v(pair[1])) {
            (Some(h), Some(l)) => out[i] = h << 4 | l,
            _ => {
                return Err(FormatError::InvalidField {
                    what,
                    field: "hex digit",
                    found: i as u64 * 2,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let (pk, sig) = ([7u8; 32], [9u8; 64]);
        let line = encode(&pk, &sig);
        assert_eq!(decode(&line), Ok((pk, sig)));
        assert_eq!(decode(&line[..ENCODED_LEN - 1]), Ok((pk, sig)));
        // Truncated at every length, and every byte replaced by one no field holds: an error,
        // never a panic.
        for n in 0..ENCODED_LEN - 1 {
            assert!(decode(&line[..n]).is_err(), "truncated to {n}");
        }
        for i in 0..ENCODED_LEN - 1 {
            let mut bad = line;
            bad[i] = b'#';
            assert!(decode(&bad).is_err(), "byte {i}");
        }
        let mut extra = line.to_vec();
        extra.splice(ENCODED_LEN - 1.., *b" x\n");
        assert!(decode(&extra).is_err());
    }

    #[test]
    fn the_message_binds_hash_and_length() {
        let m = message(&[1; 32], 5);
        assert_eq!(&m[..CONTEXT.len()], CONTEXT);
        assert_ne!(m, message(&[1; 32], 6));
        assert_ne!(m, message(&[2; 32], 5));
    }
}
