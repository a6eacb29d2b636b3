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
}
