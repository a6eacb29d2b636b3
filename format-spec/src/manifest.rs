//! Manifest files: a fixed header, the signed protobuf body, the signature block, then the
//! chunk table as fixed-size records.
//!
//! ```text
//! [header 16][body: body_len bytes][signature block 96][chunk table: chunk_count x 36]
//! ```
//! The signature covers [`SIGNATURE_DOMAIN`] followed by the header and the body; the body
//! holds the chunk count and the BLAKE3 of the chunk table, so the table is covered too
//! while a reader can stream it instead of holding it.

use crate::error::{limit, need, FormatError};
use crate::le::{array_at, put, u16_at, u32_at};
use crate::limits::{MAX_CHUNK_LEN, MAX_MANIFEST_BODY_LEN};

/// Magic at offset 0 of every manifest.
pub const MAGIC: [u8; 8] = *b"ROMLMANI";
/// Current manifest format version.
pub const VERSION: u16 = 1;

/// Header field offsets: magic.
pub const H_MAGIC: usize = 0;
/// Offset of the version (u16).
pub const H_VERSION: usize = H_MAGIC + 8;
/// Offset of the flags (u16, zero).
pub const H_FLAGS: usize = H_VERSION + 2;
/// Offset of the body length (u32).
pub const H_BODY_LEN: usize = H_FLAGS + 2;
/// Header length.
pub const HEADER_LEN: usize = H_BODY_LEN + 4;

/// Signature block field offsets: the signer's Ed25519 public key.
pub const S_PUBLIC_KEY: usize = 0;
/// Offset of the Ed25519 signature.
pub const S_SIGNATURE: usize = S_PUBLIC_KEY + 32;
/// Signature block length.
pub const SIGNATURE_BLOCK_LEN: usize = S_SIGNATURE + 64;

/// Chunk table record offsets: the chunk's BLAKE3.
pub const C_HASH: usize = 0;
/// Offset of the chunk's uncompressed length (u32).
pub const C_LEN: usize = C_HASH + 32;
/// Chunk table record length.
pub const CHUNK_RECORD_LEN: usize = C_LEN + 4;

/// The bytes that precede the header and body in the signed message.
pub const SIGNATURE_DOMAIN: &[u8] = b"romlib manifest signature v1\0";

/// Length of the signed message's prefix: [`SIGNATURE_DOMAIN`] and the header.
pub const SIGNED_PREFIX_LEN: usize = SIGNATURE_DOMAIN.len() + HEADER_LEN;

/// A manifest's fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestHeader {
    /// Length of the protobuf body that follows.
    pub body_len: u32,
}

impl ManifestHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        put(&mut b, H_MAGIC, &MAGIC);
        put(&mut b, H_VERSION, &VERSION.to_le_bytes());
        put(&mut b, H_BODY_LEN, &self.body_len.to_le_bytes());
        b
    }

    /// Decodes the header and checks the body length against [`MAX_MANIFEST_BODY_LEN`].
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        need("manifest header", b, HEADER_LEN)?;
        if b[H_MAGIC..H_MAGIC + 8] != MAGIC {
            return Err(FormatError::BadMagic {
                what: "manifest header",
            });
        }
        let version = u16_at(b, H_VERSION);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: "manifest",
                found: version as u32,
            });
        }
        let flags = u16_at(b, H_FLAGS);
        if flags != 0 {
            return Err(FormatError::InvalidField {
                what: "manifest header",
                field: "flags",
                found: flags as u64,
            });
        }
        let body_len = u32_at(b, H_BODY_LEN);
        limit(
            "MAX_MANIFEST_BODY_LEN",
            body_len as u64,
            MAX_MANIFEST_BODY_LEN as u64,
        )?;
        Ok(Self { body_len })
    }

    /// The signed message's prefix: [`SIGNATURE_DOMAIN`] then this header. The body's
    /// bytes follow it to make the whole signed message.
    pub fn signed_prefix(&self) -> [u8; SIGNED_PREFIX_LEN] {
        let mut b = [0u8; SIGNED_PREFIX_LEN];
        put(&mut b, 0, SIGNATURE_DOMAIN);
        put(&mut b, SIGNATURE_DOMAIN.len(), &self.encode());
        b
    }

    /// Offset of the signature block in the file.
    pub fn signature_offset(&self) -> u64 {
        HEADER_LEN as u64 + self.body_len as u64
    }

    /// Offset of the chunk table in the file.
    pub fn chunk_table_offset(&self) -> u64 {
        self.signature_offset() + SIGNATURE_BLOCK_LEN as u64
    }
}

/// The signer's key and signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureBlock {
    /// Ed25519 public key of the signer.
    pub public_key: [u8; 32],
    /// Ed25519 signature over the signed message.
    pub signature: [u8; 64],
}

impl SignatureBlock {
    /// Encodes the block.
    pub fn encode(&self) -> [u8; SIGNATURE_BLOCK_LEN] {
        let mut b = [0u8; SIGNATURE_BLOCK_LEN];
        put(&mut b, S_PUBLIC_KEY, &self.public_key);
        put(&mut b, S_SIGNATURE, &self.signature);
        b
    }

    /// Decodes the block.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        need("signature block", b, SIGNATURE_BLOCK_LEN)?;
        Ok(Self {
            public_key: array_at(b, S_PUBLIC_KEY),
            signature: array_at(b, S_SIGNATURE),
        })
    }
}

/// One chunk of a game, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    /// BLAKE3 of the uncompressed chunk.
    pub hash: [u8; 32],
    /// Uncompressed length.
    pub len: u32,
}

impl ChunkRef {
    /// Encodes the record.
    pub fn encode(&self) -> [u8; CHUNK_RECORD_LEN] {
        let mut b = [0u8; CHUNK_RECORD_LEN];
        put(&mut b, C_HASH, &self.hash);
        put(&mut b, C_LEN, &self.len.to_le_bytes());
        b
    }

    /// Decodes the record and checks the length: 1 to [`MAX_CHUNK_LEN`].
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        need("chunk table record", b, CHUNK_RECORD_LEN)?;
        let r = Self {
            hash: array_at(b, C_HASH),
            len: u32_at(b, C_LEN),
        };
        limit("MAX_CHUNK_LEN", r.len as u64, MAX_CHUNK_LEN as u64)?;
        if r.len == 0 {
            return Err(FormatError::InvalidField {
                what: "chunk table record",
                field: "length",
                found: 0,
            });
        }
        Ok(r)
    }
}

/// The length a manifest file must have, given its header and the body's chunk count.
pub fn expected_file_len(header: &ManifestHeader, chunk_count: u64) -> u64 {
    header.chunk_table_offset() + chunk_count * CHUNK_RECORD_LEN as u64
}

/// A short, printable id of a public key: its first 8 bytes in lower-case hex.
pub fn key_id(public_key: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    crate::keyfile::hex_encode(&public_key[..8], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_spec_table() {
        assert_eq!(
            (H_VERSION, H_FLAGS, H_BODY_LEN, HEADER_LEN),
            (8, 10, 12, 16)
        );
        assert_eq!((S_SIGNATURE, SIGNATURE_BLOCK_LEN), (32, 96));
        assert_eq!((C_LEN, CHUNK_RECORD_LEN), (32, 36));
    }

    #[test]
    fn header_rejects() {
        let h = ManifestHeader { body_len: 300 };
        let b = h.encode();
        assert_eq!(ManifestHeader::decode(&b), Ok(h));
        for cut in 0..HEADER_LEN {
            assert!(ManifestHeader::decode(&b[..cut]).is_err());
        }
        let huge = ManifestHeader {
            body_len: MAX_MANIFEST_BODY_LEN + 1,
        };
        assert!(matches!(
            ManifestHeader::decode(&huge.encode()),
            Err(FormatError::LimitExceeded { .. })
        ));
        let mut bad = b;
        bad[H_FLAGS] = 1;
        assert!(ManifestHeader::decode(&bad).is_err());
        assert_eq!(h.chunk_table_offset(), 16 + 300 + 96);
        assert_eq!(expected_file_len(&h, 2), 16 + 300 + 96 + 72);
    }

    #[test]
    fn chunk_ref_limits() {
        let c = ChunkRef {
            hash: [1; 32],
            len: 5,
        };
        assert_eq!(ChunkRef::decode(&c.encode()), Ok(c));
        assert!(ChunkRef::decode(&ChunkRef { len: 0, ..c }.encode()).is_err());
        assert!(ChunkRef::decode(
            &ChunkRef {
                len: MAX_CHUNK_LEN + 1,
                ..c
            }
            .encode()
        )
        .is_err());
    }

    #[test]
    fn signed_prefix_is_domain_then_header() {
        let h = ManifestHeader { body_len: 7 };
        let p = h.signed_prefix();
        assert_eq!(&p[..SIGNATURE_DOMAIN.len()], SIGNATURE_DOMAIN);
        assert_eq!(&p[SIGNATURE_DOMAIN.len()..], &h.encode());
    }
}

/// The civil (proleptic Gregorian) date `(year, month, day)` of day `days` since
/// 1970-01-01 (Howard Hinnant's algorithm), for the UTC times romlib prints and signs.
pub fn civil_date(days: u64) -> (i64, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        yoe + era * 400 + i64::from(month <= 2),
        month as u32,
        day as u32,
    )
}

/// A manifest's revision (field 19) for people: the UTC time it stands for, to the
/// millisecond, and the number (`2026-12-06 07:30:01.123 UTC (1796542201123)`); 0, a
/// manifest from before revisions, says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision(pub u64);

impl core::fmt::Display for Revision {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let r = self.0;
        if r == 0 {
            return write!(f, "0 (written before revisions)");
        }
        let (secs, ms) = (r / 1000, r % 1000);
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_date(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{ms:03} UTC ({r})",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

#[cfg(test)]
mod revision_tests {
    extern crate std;
    use super::Revision;
    use std::string::ToString;

    #[test]
    fn revisions_read_as_utc_times() {
        assert_eq!(Revision(0).to_string(), "0 (written before revisions)");
        assert_eq!(Revision(1).to_string(), "1970-01-01 00:00:00.001 UTC (1)");
        // 2000-02-29 (a leap day of a century year) 23:59:59.999.
        assert_eq!(
            Revision(951_868_799_999).to_string(),
            "2000-02-29 23:59:59.999 UTC (951868799999)"
        );
        assert_eq!(
            Revision(1_796_542_201_123).to_string(),
            "2026-12-06 07:30:01.123 UTC (1796542201123)"
        );
    }
}
