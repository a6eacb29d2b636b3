//! Values of the redb index tables (keys are described in SPEC.md "Index").

use crate::error::{need, FormatError};
use crate::le::{array_at, put, u32_at, u64_at};
use crate::pack::Method;

/// Layout version stored first in every `packs` value.
pub const VALUE_VERSION: u8 = 1;

/// `chunks` value offsets (format version 3; fixed width, so redb stores no lengths): the
/// pack id (u32).
pub const E_PACK_ID: usize = 0;
/// Offset of the record's offset in the pack (u48).
pub const E_OFFSET: usize = E_PACK_ID + 4;
/// Offset of the stored payload length (u32).
pub const E_CLEN: usize = E_OFFSET + 6;
/// Offset of the uncompressed length (u32).
pub const E_ULEN: usize = E_CLEN + 4;
/// Offset of the method (u8).
pub const E_METHOD: usize = E_ULEN + 4;
/// Offset of the time the chunk was first stored (u32, Unix seconds).
pub const E_STORED_AT: usize = E_METHOD + 1;
/// Offset of the reference count (u32, saturating).
pub const E_REFCOUNT: usize = E_STORED_AT + 4;
/// `chunks` value length.
pub const ENTRY_LEN: usize = E_REFCOUNT + 4;
/// The largest offset of a record in a pack an entry holds (2^48 - 1).
pub const MAX_ENTRY_OFFSET: u64 = (1 << 48) - 1;

/// Where a chunk lives: the value of the `chunks` table, keyed by the chunk's BLAKE3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEntry {
    /// The pack holding the chunk.
    pub pack_id: u32,
    /// Offset of the chunk's record header in the pack (at most [`MAX_ENTRY_OFFSET`]).
    pub offset: u64,
    /// Stored payload length.
    pub clen: u32,
    /// Uncompressed length.
    pub ulen: u32,
    /// How the payload is stored.
    pub method: Method,
    /// When the chunk was first stored (Unix seconds, saturating at `u32::MAX`, 2106).
    pub stored_at: u32,
    /// Number of chunk-table entries, across all current manifests, naming this chunk.
    /// Saturating: a chunk counted `u32::MAX` times stays so (never unreferenced).
    pub refcount: u32,
}

impl ChunkEntry {
    /// Encodes the value. An offset past [`MAX_ENTRY_OFFSET`] is the caller's bug (packs
    /// are bounded far below it) and is refused by [`ChunkEntry::checked`].
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        put(&mut b, E_PACK_ID, &self.pack_id.to_le_bytes());
        put(&mut b, E_OFFSET, &self.offset.to_le_bytes()[..6]);
        put(&mut b, E_CLEN, &self.clen.to_le_bytes());
        put(&mut b, E_ULEN, &self.ulen.to_le_bytes());
        b[E_METHOD] = self.method.to_byte();
        put(&mut b, E_STORED_AT, &self.stored_at.to_le_bytes());
        put(&mut b, E_REFCOUNT, &self.refcount.to_le_bytes());
        b
    }

    /// Adds `by` (negative: removes) to the reference count, saturating at both ends. A
    /// count that reached `u32::MAX` no longer counts and never drops: such a chunk is
    /// never taken for unreferenced.
    pub fn add_refs(&mut self, by: i64) {
        if self.refcount != u32::MAX {
            self.refcount = (self.refcount as i64)
                .saturating_add(by)
                .clamp(0, u32::MAX as i64) as u32;
        }
    }

    /// The entry, or an error when its offset does not fit the encoding.
    pub fn checked(self) -> Result<Self, FormatError> {
        if self.offset > MAX_ENTRY_OFFSET {
            return Err(FormatError::InvalidField {
                what: "index entry",
                field: "offset (at most 2^48 - 1)",
                found: self.offset,
            });
        }
        Ok(self)
    }

    /// Decodes the value.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        need("index entry", b, ENTRY_LEN)?;
        let mut off = [0u8; 8];
        off[..6].copy_from_slice(&b[E_OFFSET..E_OFFSET + 6]);
        Ok(Self {
            pack_id: u32_at(b, E_PACK_ID),
            offset: u64::from_le_bytes(off),
            clen: u32_at(b, E_CLEN),
            ulen: u32_at(b, E_ULEN),
            method: Method::from_byte(b[E_METHOD])?,
            stored_at: u32_at(b, E_STORED_AT),
            refcount: u32_at(b, E_REFCOUNT),
        })
    }

    /// Decodes a format version 2 value (38 bytes: version, pack id, u64 offset, clen,
    /// ulen, method, u64 stored_at, u64 refcount), what an upgrade to version 3 reads.
    pub fn decode_v2(b: &[u8]) -> Result<Self, FormatError> {
        need("index entry", b, V2_ENTRY_LEN)?;
        if b[0] != 1 {
            return Err(FormatError::UnsupportedVersion {
                what: "index entry",
                found: b[0] as u32,
            });
        }
        Self {
            pack_id: u32_at(b, 1),
            offset: u64_at(b, 5),
            clen: u32_at(b, 13),
            ulen: u32_at(b, 17),
            method: Method::from_byte(b[21])?,
            stored_at: u64_at(b, 22).min(u32::MAX as u64) as u32,
            refcount: u64_at(b, 30).min(u32::MAX as u64) as u32,
        }
        .checked()
    }
}

/// Length of a format version 2 `chunks` value.
pub const V2_ENTRY_LEN: usize = 38;

/// Bytes of a chunk's BLAKE3 a `sketches` value keeps (format version 3): enough to find
/// the chunk among the `chunks` keys by a range lookup; a prefix two chunks share finds
/// one of them, which is only a worse hint.
pub const SKETCH_PREFIX_LEN: usize = 8;

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
/// Name of the redb table of resemblance sketches (`u64` -> `[u8; SKETCH_PREFIX_LEN]`):
/// each super-feature of a stored, non-delta chunk to the hash prefix of the first such
/// chunk that had it; where a builder looks for a base for a new chunk (format version 2;
/// the value was the whole hash before version 3).
pub const SKETCHES_TABLE: &str = "sketches";
/// Name of the redb table of library facts (`&str` -> `&[u8]`), such as [`META_FORMAT`].
pub const META_TABLE: &str = "meta";
/// `meta` key: the library format version, as a little-endian u32.
pub const META_FORMAT: &str = "format_version";
/// Library format version stored under [`META_FORMAT`].
pub const LIBRARY_FORMAT_VERSION: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_round_trip() {
        assert_eq!(
            (
                E_OFFSET,
                E_CLEN,
                E_ULEN,
                E_METHOD,
                E_STORED_AT,
                E_REFCOUNT,
                ENTRY_LEN
            ),
            (4, 10, 14, 18, 19, 23, 27)
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
        let far = ChunkEntry {
            offset: MAX_ENTRY_OFFSET,
            ..e
        };
        assert_eq!(ChunkEntry::decode(&far.encode()), Ok(far));
        assert!(ChunkEntry {
            offset: MAX_ENTRY_OFFSET + 1,
            ..e
        }
        .checked()
        .is_err());
        // A version 2 value: counts past u32 saturate.
        let mut v2 = [0u8; V2_ENTRY_LEN];
        v2[0] = 1;
        v2[1..5].copy_from_slice(&3u32.to_le_bytes());
        v2[5..13].copy_from_slice(&(1u64 << 33).to_le_bytes());
        v2[13..17].copy_from_slice(&10u32.to_le_bytes());
        v2[17..21].copy_from_slice(&20u32.to_le_bytes());
        v2[21] = Method::ZstdDict.to_byte();
        v2[22..30].copy_from_slice(&1_700_000_000u64.to_le_bytes());
        v2[30..38].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert_eq!(
            ChunkEntry::decode_v2(&v2),
            Ok(ChunkEntry {
                refcount: u32::MAX,
                ..e
            })
        );
        v2[0] = 2;
        assert!(ChunkEntry::decode_v2(&v2).is_err());
        // Reference counts saturate, and a saturated one stays.
        let mut r = ChunkEntry { refcount: 1, ..e };
        r.add_refs(-5);
        assert_eq!(r.refcount, 0);
        r.add_refs(i64::MAX);
        assert_eq!(r.refcount, u32::MAX);
        r.add_refs(-1);
        assert_eq!(r.refcount, u32::MAX);
        let p = PackInfo {
            file_len: 99,
            record_count: 1,
            dict_id: 0,
            checksum: [7; 32],
        };
        assert_eq!(PackInfo::decode(&p.encode()), Ok(p));
    }
}
