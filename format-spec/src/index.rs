//! Values of the redb index tables (keys are described in SPEC.md "Index").

use crate::error::{need, FormatError};
use crate::le::{array_at, put, u32_at, u64_at};
use crate::pack::Method;

/// Layout version stored first in every index value.
pub const VALUE_VERSION: u8 = 1;

/// `chunks` value offsets: version (u8).
pub const E_VERSION: usize = 0;
/// Offset of the pack id (u32).
pub const E_PACK_ID: usize = E_VERSION + 1;
/// Offset of the record's offset in the pack (u64).
pub const E_OFFSET: usize = E_PACK_ID + 4;
/// Offset of the stored payload length (u32).
pub const E_CLEN: usize = E_OFFSET + 8;
/// Offset of the uncompressed length (u32).
pub const E_ULEN: usize = E_CLEN + 4;
/// Offset of the method (u8).
pub const E_METHOD: usize = E_ULEN + 4;
/// Offset of the time the chunk was first stored (u64, Unix seconds).
pub const E_STORED_AT: usize = E_METHOD + 1;
/// Offset of the reference count (u64).
pub const E_REFCOUNT: usize = E_STORED_AT + 8;
/// `chunks` value length.
pub const ENTRY_LEN: usize = E_REFCOUNT + 8;

/// Where a chunk lives: the value of the `chunks` table, keyed by the chunk's BLAKE3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEntry {
    /// The pack holding the chunk.
    pub pack_id: u32,
    /// Offset of the chunk's record header in the pack.
    pub offset: u64,
    /// Stored payload length.
    pub clen: u32,
    /// Uncompressed length.
    pub ulen: u32,
    /// How the payload is stored.
    pub method: Method,
    /// When the chunk was first stored (Unix seconds): the index's only clock.
    pub stored_at: u64,
    /// Number of chunk-table entries, across all current manifests, naming this chunk.
    pub refcount: u64,
}

impl ChunkEntry {
    /// Encodes the value.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[E_VERSION] = VALUE_VERSION;
        put(&mut b, E_PACK_ID, &self.pack_id.to_le_bytes());
        put(&mut b, E_OFFSET, &self.offset.to_le_bytes());
        put(&mut b, E_CLEN, &self.clen.to_le_bytes());
        put(&mut b, E_ULEN, &self.ulen.to_le_bytes());
        b[E_METHOD] = self.method.to_byte();
        put(&mut b, E_STORED_AT, &self.stored_at.to_le_bytes());
        put(&mut b, E_REFCOUNT, &self.refcount.to_le_bytes());
        b
    }

    /// Decodes the value.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        need("index entry", b, ENTRY_LEN)?;
        if b[E_VERSION] != VALUE_VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: "index entry",
                found: b[E_VERSION] as u32,
            });
        }
        Ok(Self {
            pack_id: u32_at(b, E_PACK_ID),
            offset: u64_at(b, E_OFFSET),
            clen: u32_at(b, E_CLEN),
            ulen: u32_at(b, E_ULEN),
            method: Method::from_byte(b[E_METHOD])?,
            stored_at: u64_at(b, E_STORED_AT),
            refcount: u64_at(b, E_REFCOUNT),
        })
    }
}

/// `packs` value offsets: version (u8).
pub const P_VERSION: usize = 0;
/// Offset of the pack's file length (u64).
pub const P_FILE_LEN: usize = P_VERSION + 1;
/// Offset of the record count (u64).
pub const P_RECORD_COUNT: usize = P_FILE_LEN + 8;
/// Offset of the dictionary id (u32).
pub const P_DICT_ID: usize = P_RECORD_COUNT + 8;
/// Offset of the footer checksum (32 bytes).
pub const P_CHECKSUM: usize = P_DICT_ID + 4;
/// `packs` value length.
pub const PACK_INFO_LEN: usize = P_CHECKSUM + 32;

/// A sealed pack: the value of the `packs` table, keyed by pack id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackInfo {
    /// The sealed file's length.
    pub file_len: u64,
    /// Number of records.
    pub record_count: u64,
    /// Dictionary id from the header, or 0.
    pub dict_id: u32,
    /// The footer's checksum.
    pub checksum: [u8; 32],
}

impl PackInfo {
    /// Encodes the value.
    pub fn encode(&self) -> [u8; PACK_INFO_LEN] {
        let mut b = [0u8; PACK_INFO_LEN];
        b[P_VERSION] = VALUE_VERSION;
        put(&mut b, P_FILE_LEN, &self.file_len.to_le_bytes());
        put(&mut b, P_RECORD_COUNT, &self.record_count.to_le_bytes());
        put(&mut b, P_DICT_ID, &self.dict_id.to_le_bytes());
        put(&mut b, P_CHECKSUM, &self.checksum);
        b
    }

    /// Decodes the value.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        need("pack info", b, PACK_INFO_LEN)?;
        if b[P_VERSION] != VALUE_VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: "pack info",
                found: b[P_VERSION] as u32,
            });
        }
        Ok(Self {
            file_len: u64_at(b, P_FILE_LEN),
            record_count: u64_at(b, P_RECORD_COUNT),
            dict_id: u32_at(b, P_DICT_ID),
            checksum: array_at(b, P_CHECKSUM),
        })
    }
}

/// Name of the redb table mapping a chunk's BLAKE3 (`[u8; 32]`) to a [`ChunkEntry`].
pub const CHUNKS_TABLE: &str = "chunks";
/// Name of the redb table mapping a pack id (`u32`) to a [`PackInfo`].
pub const PACKS_TABLE: &str = "packs";
/// Name of the redb table mapping a title id (`&str`) to the BLAKE3 of the chunk table
/// whose references are counted in the refcounts.
pub const GAMES_TABLE: &str = "games";
/// Name of the redb table of delta chunks (`[u8; 32]` -> `[u8; 32]`): each delta chunk's
/// hash to its base chunk's hash (format version 2).
pub const DELTAS_TABLE: &str = "deltas";
/// Name of the redb table of resemblance sketches (`u64` -> `[u8; 32]`): each
/// super-feature of a stored, non-delta chunk to the first such chunk that had it; where
/// a builder looks for a base for a new chunk (format version 2).
pub const SKETCHES_TABLE: &str = "sketches";
/// Name of the redb table of library facts (`&str` -> `&[u8]`), such as [`META_FORMAT`].
pub const META_TABLE: &str = "meta";
/// `meta` key: the library format version, as a little-endian u32.
pub const META_FORMAT: &str = "format_version";
/// Library format version stored under [`META_FORMAT`].
pub const LIBRARY_FORMAT_VERSION: u32 = 2;

/// One line of `index.sum`: the BLAKE3 and length of a published `index.db` (SPEC
/// section 5.1). The line is `blake3 <64 hex digits> <16 hex digits of the length>\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSum {
    /// BLAKE3 of the whole file.
    pub blake3: [u8; 32],
    /// The file's length in bytes.
    pub len: u64,
}

/// Length of one `index.sum` line.
pub const INDEX_SUM_LINE_LEN: usize = 7 + 64 + 1 + 16 + 1;
/// Most lines an `index.sum` holds: the new index and the one it replaced.
pub const MAX_INDEX_SUMS: usize = 2;
const SUM_PREFIX: &[u8] = b"blake3 ";
const HEX: &[u8; 16] = b"0123456789abcdef";

impl IndexSum {
    /// The line for this sum.
    pub fn encode(&self) -> [u8; INDEX_SUM_LINE_LEN] {
        let mut out = [0u8; INDEX_SUM_LINE_LEN];
        out[..7].copy_from_slice(SUM_PREFIX);
        for (i, b) in self.blake3.iter().enumerate() {
            out[7 + 2 * i] = HEX[(b >> 4) as usize];
            out[8 + 2 * i] = HEX[(b & 15) as usize];
        }
        out[71] = b' ';
        for i in 0..16 {
            out[72 + i] = HEX[((self.len >> (60 - 4 * i)) & 15) as usize];
        }
        out[88] = b'\n';
        out
    }

    /// Decodes every line of an `index.sum` file (at most [`MAX_INDEX_SUMS`]); returns
    /// the sums and how many there are.
    pub fn decode_all(b: &[u8]) -> Result<([IndexSum; MAX_INDEX_SUMS], usize), FormatError> {
        let bad = FormatError::InvalidField {
            what: "index.sum",
            field: "line length",
            found: b.len() as u64,
        };
        if b.is_empty() || !b.len().is_multiple_of(INDEX_SUM_LINE_LEN) {
            return Err(bad);
        }
        let n = b.len() / INDEX_SUM_LINE_LEN;
        if n > MAX_INDEX_SUMS {
            return Err(FormatError::LimitExceeded {
                limit: "MAX_INDEX_SUMS",
                found: n as u64,
                max: MAX_INDEX_SUMS as u64,
            });
        }
        let mut out = [IndexSum {
            blake3: [0; 32],
            len: 0,
        }; MAX_INDEX_SUMS];
        for (k, line) in b.chunks_exact(INDEX_SUM_LINE_LEN).enumerate() {
            if &line[..7] != SUM_PREFIX || line[71] != b' ' || line[88] != b'\n' {
                return Err(FormatError::InvalidField {
                    what: "index.sum",
                    field: "line",
                    found: k as u64 + 1,
                });
            }
            let nib = |c: u8| -> Result<u8, FormatError> {
                match c {
                    b'0'..=b'9' => Ok(c - b'0'),
                    b'a'..=b'f' => Ok(c - b'a' + 10),
                    _ => Err(FormatError::InvalidField {
                        what: "index.sum",
                        field: "hex digit",
                        found: u64::from(c),
                    }),
                }
            };
            for i in 0..32 {
                out[k].blake3[i] = nib(line[7 + 2 * i])? << 4 | nib(line[8 + 2 * i])?;
            }
            let mut len = 0u64;
            for &c in &line[72..88] {
                len = len << 4 | u64::from(nib(c)?);
            }
            out[k].len = len;
        }
        Ok((out, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_round_trip() {
        assert_eq!(
            (
                E_PACK_ID,
                E_OFFSET,
                E_CLEN,
                E_ULEN,
                E_METHOD,
                E_STORED_AT,
                E_REFCOUNT,
                ENTRY_LEN
            ),
            (1, 5, 13, 17, 21, 22, 30, 38)
        );
        assert_eq!(
            (
                P_FILE_LEN,
                P_RECORD_COUNT,
                P_DICT_ID,
                P_CHECKSUM,
                PACK_INFO_LEN
            ),
            (1, 9, 17, 21, 53)
        );
        let e = ChunkEntry {
            pack_id: 3,
            offset: 1 << 33,
            clen: 10,
            ulen: 20,
            method: Method::ZstdDict,
            stored_at: 1_700_000_000,
            refcount: 2,
        };
        assert_eq!(ChunkEntry::decode(&e.encode()), Ok(e));
        assert!(ChunkEntry::decode(&e.encode()[..ENTRY_LEN - 1]).is_err());
        let p = PackInfo {
            file_len: 99,
            record_count: 1,
            dict_id: 0,
            checksum: [7; 32],
        };
        assert_eq!(PackInfo::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn index_sum_lines_round_trip() {
        let a = IndexSum {
            blake3: [0xa5; 32],
            len: 0x0123_4567_89ab,
        };
        let b = IndexSum {
            blake3: [7; 32],
            len: 4096,
        };
        let mut file = [0u8; 2 * INDEX_SUM_LINE_LEN];
        file[..INDEX_SUM_LINE_LEN].copy_from_slice(&a.encode());
        file[INDEX_SUM_LINE_LEN..].copy_from_slice(&b.encode());
        let (sums, n) = IndexSum::decode_all(&file).unwrap();
        assert_eq!((n, sums[0], sums[1]), (2, a, b));
        assert!(a.encode().starts_with(b"blake3 a5a5"));
        assert!(a.encode().ends_with(b" 00000123456789ab\n"));
        // A flipped digit, a short file and a third line are refused.
        let mut bad = file;
        bad[10] = b'G';
        assert!(IndexSum::decode_all(&bad).is_err());
        assert!(IndexSum::decode_all(&file[..50]).is_err());
        assert!(IndexSum::decode_all(&[]).is_err());
        let mut three = [0u8; 3 * INDEX_SUM_LINE_LEN];
        for k in 0..3 {
            three[k * INDEX_SUM_LINE_LEN..(k + 1) * INDEX_SUM_LINE_LEN]
                .copy_from_slice(&a.encode());
        }
        assert!(IndexSum::decode_all(&three).is_err());
    }
}
