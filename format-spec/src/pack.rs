//! Pack files: a header, chunk records, a footer.
//!
//! Offsets are chained constants; `SPEC.md` section "Pack files" gives the same table and a
//! test checks the two agree.

use crate::error::{limit, need, FormatError};
use crate::le::{array_at, put, u16_at, u32_at, u64_at};
use crate::limits::{MAX_CHUNK_LEN, MAX_PACK_SIZE};

/// Magic at offset 0 of every pack.
pub const MAGIC: [u8; 6] = *b"PKGSTR";
/// Current pack format version.
pub const VERSION: u16 = 1;

/// Header field offsets.
pub const H_MAGIC: usize = 0;
/// Offset of the version (u16).
pub const H_VERSION: usize = H_MAGIC + 6;
/// Offset of the flags (u32).
pub const H_FLAGS: usize = H_VERSION + 2;
/// Offset of the pack id (u32).
pub const H_PACK_ID: usize = H_FLAGS + 4;
/// Offset of the dictionary id (u32, 0 = none).
pub const H_DICT_ID: usize = H_PACK_ID + 4;
/// Offset of the reserved bytes (zero).
pub const H_RESERVED: usize = H_DICT_ID + 4;
/// Header length.
pub const HEADER_LEN: usize = H_RESERVED + 12;

/// Record field offsets: the chunk's BLAKE3 hash.
pub const R_HASH: usize = 0;
/// Offset of the uncompressed length (u32).
pub const R_ULEN: usize = R_HASH + 32;
/// Offset of the stored payload length (u32).
pub const R_CLEN: usize = R_ULEN + 4;
/// Offset of the method (u8).
pub const R_METHOD: usize = R_CLEN + 4;
/// Offset of the record flags (u8, zero).
pub const R_FLAGS: usize = R_METHOD + 1;
/// Length of a record header; the payload follows.
pub const RECORD_HEADER_LEN: usize = R_FLAGS + 1;

/// Footer magic.
pub const FOOTER_MAGIC: [u8; 8] = *b"PKGSTEND";
/// Footer field offsets: magic.
pub const F_MAGIC: usize = 0;
/// Offset of the record count (u64).
pub const F_RECORD_COUNT: usize = F_MAGIC + 8;
/// Offset of the length of the record area (u64).
pub const F_RECORDS_LEN: usize = F_RECORD_COUNT + 8;
/// Offset of the BLAKE3 of every byte before the footer.
pub const F_CHECKSUM: usize = F_RECORDS_LEN + 8;
/// Offset of the footer flags (u32, zero: no signature block).
pub const F_FLAGS: usize = F_CHECKSUM + 32;
/// Offset of the reserved bytes (zero).
pub const F_RESERVED: usize = F_FLAGS + 4;
/// Footer length.
pub const FOOTER_LEN: usize = F_RESERVED + 4;

/// How a chunk's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// The payload is the chunk itself.
    Stored,
    /// One zstd frame.
    Zstd,
    /// One zstd frame compressed with the pack's dictionary.
    ZstdDict,
    /// A delta: the BLAKE3 of a *base* chunk, then one zstd frame compressed with the
    /// base chunk's bytes as a raw-content dictionary. The base is itself stored by one of
    /// the other methods (a chain is one link deep:
    /// [`MAX_DELTA_DEPTH`](crate::limits::MAX_DELTA_DEPTH)).
    ZstdDelta,
}

impl Method {
    /// The byte stored in a record.
    pub fn to_byte(self) -> u8 {
        match self {
            Method::Stored => 0,
            Method::Zstd => 1,
            Method::ZstdDict => 2,
            Method::ZstdDelta => 3,
        }
    }

    /// Decodes the record byte.
    pub fn from_byte(b: u8) -> Result<Self, FormatError> {
        match b {
            0 => Ok(Method::Stored),
            1 => Ok(Method::Zstd),
            2 => Ok(Method::ZstdDict),
            3 => Ok(Method::ZstdDelta),
            other => Err(FormatError::UnknownMethod { found: other }),
        }
    }
}

/// Bytes of the base chunk's hash at the start of a [`Method::ZstdDelta`] payload.
pub const DELTA_BASE_LEN: usize = 32;

/// Splits a [`Method::ZstdDelta`] payload into the base chunk's BLAKE3 and the zstd frame.
/// A payload whose base is the chunk itself (`hash`) is refused: it could never decode.
pub fn split_delta<'a>(
    hash: &[u8; 32],
    payload: &'a [u8],
) -> Result<([u8; 32], &'a [u8]), FormatError> {
    need("delta payload", payload, DELTA_BASE_LEN + 1)?;
    let base: [u8; 32] = array_at(payload, 0);
    if &base == hash {
        return Err(FormatError::InvalidField {
            what: "delta payload",
            field: "base",
            found: 0,
        });
    }
    Ok((base, &payload[DELTA_BASE_LEN..]))
}

/// A pack's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackHeader {
    /// The pack's number; the file is `packs/pack-NNNN.pkg` with at least four digits.
    pub pack_id: u32,
    /// The zstd dictionary id that [`Method::ZstdDict`] records use, or 0.
    pub dict_id: u32,
}

impl PackHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        put(&mut b, H_MAGIC, &MAGIC);
        put(&mut b, H_VERSION, &VERSION.to_le_bytes());
        let flags: u32 = if self.dict_id != 0 { 1 } else { 0 };
        put(&mut b, H_FLAGS, &flags.to_le_bytes());
        put(&mut b, H_PACK_ID, &self.pack_id.to_le_bytes());
        put(&mut b, H_DICT_ID, &self.dict_id.to_le_bytes());
        b
    }

    /// Decodes and checks a header.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        need("pack header", b, HEADER_LEN)?;
        if b[H_MAGIC..H_MAGIC + 6] != MAGIC {
            return Err(FormatError::BadMagic {
                what: "pack header",
            });
        }
        let version = u16_at(b, H_VERSION);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: "pack",
                found: version as u32,
            });
        }
        let flags = u32_at(b, H_FLAGS);
        let dict_id = u32_at(b, H_DICT_ID);
        if flags & !1 != 0 || (flags & 1 == 1) != (dict_id != 0) {
            return Err(FormatError::InvalidField {
                what: "pack header",
                field: "flags",
                found: flags as u64,
            });
        }
        if b[H_RESERVED..HEADER_LEN].iter().any(|&x| x != 0) {
            return Err(FormatError::InvalidField {
                what: "pack header",
                field: "reserved",
                found: 1,
            });
        }
        Ok(Self {
            pack_id: u32_at(b, H_PACK_ID),
            dict_id,
        })
    }
}

/// The fixed part of a chunk record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// BLAKE3 of the uncompressed chunk.
    pub hash: [u8; 32],
    /// Uncompressed length.
    pub ulen: u32,
    /// Length of the payload that follows.
    pub clen: u32,
    /// How the payload is stored.
    pub method: Method,
}

impl RecordHeader {
    /// Encodes the record header.
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0u8; RECORD_HEADER_LEN];
        put(&mut b, R_HASH, &self.hash);
        put(&mut b, R_ULEN, &self.ulen.to_le_bytes());
        put(&mut b, R_CLEN, &self.clen.to_le_bytes());
        b[R_METHOD] = self.method.to_byte();
        b
    }

    /// Decodes a record header and checks its lengths against the limits.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        need("chunk record", b, RECORD_HEADER_LEN)?;
        let r = Self {
            hash: array_at(b, R_HASH),
            ulen: u32_at(b, R_ULEN),
            clen: u32_at(b, R_CLEN),
            method: Method::from_byte(b[R_METHOD])?,
        };
        if b[R_FLAGS] != 0 {
            return Err(FormatError::InvalidField {
                what: "chunk record",
                field: "flags",
                found: b[R_FLAGS] as u64,
            });
        }
        r.check()?;
        Ok(r)
    }

    /// Checks the lengths: both within [`MAX_CHUNK_LEN`], a stored payload exactly as long
    /// as the chunk, a compressed one strictly shorter (else it would have been stored).
    pub fn check(&self) -> Result<(), FormatError> {
        limit("MAX_CHUNK_LEN", self.ulen as u64, MAX_CHUNK_LEN as u64)?;
        limit("MAX_CHUNK_LEN", self.clen as u64, MAX_CHUNK_LEN as u64)?;
        let ok = match self.method {
            Method::Stored => self.clen == self.ulen,
            Method::Zstd | Method::ZstdDict => self.clen < self.ulen && self.clen > 0,
            Method::ZstdDelta => self.clen < self.ulen && self.clen as usize > DELTA_BASE_LEN,
        };
        if !ok || self.ulen == 0 {
            return Err(FormatError::InvalidField {
                what: "chunk record",
                field: "compressed length",
                found: self.clen as u64,
            });
        }
        Ok(())
    }
}

/// A pack's footer, the last [`FOOTER_LEN`] bytes of a sealed pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackFooter {
    /// Number of chunk records.
    pub record_count: u64,
    /// Bytes between the header and the footer.
    pub records_len: u64,
    /// BLAKE3 of every byte of the file before the footer.
    pub checksum: [u8; 32],
}

impl PackFooter {
    /// Encodes the footer.
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        put(&mut b, F_MAGIC, &FOOTER_MAGIC);
        put(&mut b, F_RECORD_COUNT, &self.record_count.to_le_bytes());
        put(&mut b, F_RECORDS_LEN, &self.records_len.to_le_bytes());
        put(&mut b, F_CHECKSUM, &self.checksum);
        b
    }

    /// Decodes a footer; `file_len` is the whole pack's length, which must agree.
    pub fn decode(b: &[u8], file_len: u64) -> Result<Self, FormatError> {
        need("pack footer", b, FOOTER_LEN)?;
        if b[F_MAGIC..F_MAGIC + 8] != FOOTER_MAGIC {
            return Err(FormatError::BadMagic {
                what: "pack footer",
            });
        }
        let f = Self {
            record_count: u64_at(b, F_RECORD_COUNT),
            records_len: u64_at(b, F_RECORDS_LEN),
            checksum: array_at(b, F_CHECKSUM),
        };
        let flags = u32_at(b, F_FLAGS);
        if flags != 0 || u32_at(b, F_RESERVED) != 0 {
            return Err(FormatError::InvalidField {
                what: "pack footer",
                field: "flags",
                found: flags as u64,
            });
        }
        limit("MAX_PACK_SIZE", file_len, MAX_PACK_SIZE - 1)?;
        // records_len is untrusted: near u64::MAX the sum would overflow.
        let expect = f.records_len.checked_add((HEADER_LEN + FOOTER_LEN) as u64);
        if expect != Some(file_len) {
            return Err(FormatError::InvalidField {
                what: "pack footer",
                field: "records length",
                found: f.records_len,
            });
        }
        if f.record_count.saturating_mul(RECORD_HEADER_LEN as u64) > f.records_len {
            return Err(FormatError::InvalidField {
                what: "pack footer",
                field: "record count",
                found: f.record_count,
            });
        }
        Ok(f)
    }
}

/// Whether a pack that already holds `records` records in `bytes_written` bytes must be
/// sealed before a record of `rec_len` bytes is appended, for packs of at most `pack_size`
/// bytes (SPEC section 2): a pack always takes its first record, however large.
pub fn must_roll_over(records: u64, bytes_written: u64, rec_len: u64, pack_size: u64) -> bool {
    records > 0 && bytes_written + rec_len + FOOTER_LEN as u64 > pack_size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_spec_table() {
        assert_eq!(
            (H_VERSION, H_FLAGS, H_PACK_ID, H_DICT_ID, HEADER_LEN),
            (6, 8, 12, 16, 32)
        );
        assert_eq!(
            (R_ULEN, R_CLEN, R_METHOD, R_FLAGS, RECORD_HEADER_LEN),
            (32, 36, 40, 41, 42)
        );
        assert_eq!(
            (
                F_RECORD_COUNT,
                F_RECORDS_LEN,
                F_CHECKSUM,
                F_FLAGS,
                FOOTER_LEN
            ),
            (8, 16, 24, 56, 64)
        );
    }

    #[test]
    fn header_round_trip_and_rejects() {
        let h = PackHeader {
            pack_id: 7,
            dict_id: 0xABCD,
        };
        let b = h.encode();
        assert_eq!(PackHeader::decode(&b), Ok(h));
        for cut in 0..HEADER_LEN {
            assert!(matches!(
                PackHeader::decode(&b[..cut]),
                Err(FormatError::Truncated { .. })
            ));
        }
        let mut bad = b;
        bad[0] ^= 1;
        assert_eq!(
            PackHeader::decode(&bad),
            Err(FormatError::BadMagic {
                what: "pack header"
            })
        );
        let mut bad = b;
        bad[H_VERSION] = 9;
        assert!(matches!(
            PackHeader::decode(&bad),
            Err(FormatError::UnsupportedVersion { .. })
        ));
        let mut bad = b;
        bad[H_FLAGS] = 0;
        assert!(PackHeader::decode(&bad).is_err());
        let mut bad = b;
        bad[31] = 1;
        assert!(PackHeader::decode(&bad).is_err());
    }

    #[test]
    fn record_limits() {
        let r = RecordHeader {
            hash: [3; 32],
            ulen: 100,
            clen: 60,
            method: Method::Zstd,
        };
        assert_eq!(RecordHeader::decode(&r.encode()), Ok(r));
        let big = RecordHeader {
            ulen: MAX_CHUNK_LEN + 1,
            ..r
        };
        assert!(matches!(
            RecordHeader::decode(&big.encode()),
            Err(FormatError::LimitExceeded {
                limit: "MAX_CHUNK_LEN",
                ..
            })
        ));
        let grown = RecordHeader { clen: 100, ..r };
        assert!(RecordHeader::decode(&grown.encode()).is_err());
        let stored_mismatch = RecordHeader {
            method: Method::Stored,
            ..r
        };
        assert!(RecordHeader::decode(&stored_mismatch.encode()).is_err());
        let mut b = r.encode();
        b[R_METHOD] = 4; // 3 is a delta (format version 2); 4 is unknown
        assert!(RecordHeader::decode(&b).is_err());
    }

    #[test]
    fn footer_checks_length() {
        let f = PackFooter {
            record_count: 2,
            records_len: 200,
            checksum: [9; 32],
        };
        let b = f.encode();
        let len = (HEADER_LEN + FOOTER_LEN) as u64 + 200;
        assert_eq!(PackFooter::decode(&b, len), Ok(f));
        assert!(PackFooter::decode(&b, len + 1).is_err());
        let many = PackFooter {
            record_count: 100,
            ..f
        };
        assert!(PackFooter::decode(&many.encode(), len).is_err());
        // Found by fuzzing (fuzz/regressions/pack/footer-records-len-overflow): a records
        // length near u64::MAX overflowed the expected file length, a panic in checked
        // builds, instead of being refused.
        let huge = PackFooter {
            records_len: u64::MAX - 10,
            ..f
        };
        assert!(PackFooter::decode(&huge.encode(), len).is_err());
    }

    #[test]
    fn roll_over() {
        assert!(
            !must_roll_over(0, 32, 1 << 30, 1 << 20),
            "first record always fits"
        );
        assert!(!must_roll_over(1, 100, 100, 100 + 100 + FOOTER_LEN as u64));
        assert!(must_roll_over(1, 101, 100, 100 + 100 + FOOTER_LEN as u64));
    }

    #[test]
    fn delta_records_name_a_base_before_their_frame() {
        let r = RecordHeader {
            hash: [1; 32],
            ulen: 1000,
            clen: 40,
            method: Method::ZstdDelta,
        };
        assert_eq!(RecordHeader::decode(&r.encode()), Ok(r));
        // The payload must hold the base hash and a frame, and be shorter than the chunk.
        for clen in [32, 1000] {
            let bad = RecordHeader { clen, ..r };
            assert!(RecordHeader::decode(&bad.encode()).is_err(), "clen {clen}");
        }
        let mut payload = [7u8; 40];
        let (base, frame) = split_delta(&[1; 32], &payload).unwrap();
        assert_eq!((base, frame.len()), ([7; 32], 8));
        payload[..32].copy_from_slice(&[1; 32]);
        assert!(
            split_delta(&[1; 32], &payload).is_err(),
            "a chunk is not its own base"
        );
        assert!(split_delta(&[1; 32], &[7; 32]).is_err(), "no frame");
    }
}
