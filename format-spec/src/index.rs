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
/// A chunk entry's length (format version 4: the value of a chunk row of a sorted run,
/// SPEC section 5.3).
pub const ENTRY_LEN: usize = E_STORED_AT + 4;
/// A format version 3 `chunks` value's length: an entry followed by a u32 reference count
/// (read only by the upgrade to version 4, which drops it).
pub const V3_ENTRY_LEN: usize = ENTRY_LEN + 4;
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
        b
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

    /// Decodes the value (a version 3 value too: its trailing reference count is not
    /// read).
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
        })
    }

    /// Decodes a format version 2 value (38 bytes: version, pack id, u64 offset, clen,
    /// ulen, method, u64 stored_at, u64 refcount), what an upgrade from version 2 reads
    /// (the reference count is dropped).
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

/// Name of the redb table that mapped a chunk's BLAKE3 (`[u8; 32]`) to a [`ChunkEntry`]
/// and its reference count, up to format version 3 (its rows are in sorted runs since
/// version 4).
pub const CHUNKS_TABLE: &str = "chunks";
/// Name of the redb table mapping a pack id (`u32`) to a [`PackInfo`].
pub const PACKS_TABLE: &str = "packs";
/// Name of the redb table mapping a title id (`&str`) to the BLAKE3 of the chunk table of
/// the manifest the index holds published (what recovery's roll-forward rule compares).
pub const GAMES_TABLE: &str = "games";
/// Name of the redb table of delta chunks (`[u8; 32]` -> `[u8; 32]`): each delta chunk's
/// hash to its base chunk's hash (format versions 2 and 3; in sorted runs since 4).
pub const DELTAS_TABLE: &str = "deltas";
/// Name of the redb table of resemblance sketches (`u64` -> `[u8; SKETCH_PREFIX_LEN]`):
/// each super-feature of a stored, non-delta chunk to the hash prefix of the first such
/// chunk that had it; where a builder looks for a base for a new chunk (format version 2;
/// the value was the whole hash before version 3; in sorted runs since 4).
pub const SKETCHES_TABLE: &str = "sketches";
/// Name of the redb table of library facts (`&str` -> `&[u8]`), such as [`META_FORMAT`].
pub const META_TABLE: &str = "meta";
/// `meta` key: the library format version, as a little-endian u32.
pub const META_FORMAT: &str = "format_version";
/// The newest library format version stored under [`META_FORMAT`]: a library whose
/// `games/` is sharded (SPEC section 1).
pub const LIBRARY_FORMAT_VERSION: u32 = 5;
/// The version of a library whose `games/` is flat. Version 5 differs from 4 only by the
/// sharded layout, so a flat library keeps 4, and builders that predate 5 still open it
/// (and refuse a sharded one, in which they would write flat files).
pub const LIBRARY_FORMAT_FLAT: u32 = 4;
/// `meta` key: the sorted runs of the chunk index, oldest first, as little-endian u64 ids
/// (format version 4; SPEC section 5.3).
pub const META_RUNS: &str = "runs";

/// A sorted run file (SPEC section 5.3) starts with this magic and [`RUN_VERSION`].
pub const RUN_MAGIC: &[u8; 8] = b"ROMLRUN\0";
/// Version of the run layout, a little-endian u32 after the magic.
pub const RUN_VERSION: u32 = 1;
/// Header length: magic, version, 4 reserved zero bytes.
pub const RUN_HEADER_LEN: usize = 16;
/// The last bytes of a run: its three row counts (u64 each), the BLAKE3 of every byte
/// before the checksum, and [`RUN_END`].
pub const RUN_TRAILER_LEN: usize = 24 + 32 + 8;
/// Bytes per block in a run's fences: the block's first 8 key bytes and its rows' CRC-32.
pub const RUN_FENCE_LEN: usize = 12;
/// A run's last 8 bytes.
pub const RUN_END: &[u8; 8] = b"ROMLRUNE";

/// One of a run's three sections: its rows' length, the length of their sort key (the
/// row's first bytes, compared as bytes), and the rows per block (one fence per block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSection {
    /// Bytes per row.
    pub row_len: usize,
    /// Bytes of the key at the start of each row.
    pub key_len: usize,
    /// Rows per block.
    pub block_rows: usize,
}

/// Chunks: hash (32) then a [`ChunkEntry`] (23).
pub const RUN_CHUNKS: RunSection = RunSection {
    row_len: 32 + ENTRY_LEN,
    key_len: 32,
    block_rows: 64,
};
/// Sketches: a super-feature (u64, big-endian so that bytes sort as numbers) then the
/// hash prefix of the first stored whole chunk that had it.
pub const RUN_SKETCHES: RunSection = RunSection {
    row_len: 8 + SKETCH_PREFIX_LEN,
    key_len: 8,
    block_rows: 256,
};
/// Deltas: a delta chunk's hash (32) then its base's hash (32).
pub const RUN_DELTAS: RunSection = RunSection {
    row_len: 64,
    key_len: 32,
    block_rows: 64,
};
/// The sections in the order they lie in a run.
pub const RUN_SECTIONS: [RunSection; 3] = [RUN_CHUNKS, RUN_SKETCHES, RUN_DELTAS];

/// Where a run's parts lie, from its file length and the counts in its trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLayout {
    /// Rows per section.
    pub counts: [u64; 3],
    /// Offset of each section's first row.
    pub starts: [u64; 3],
    /// Offset of each section's fences ([`RUN_FENCE_LEN`] bytes per block: the first 8 key
    /// bytes of the block's first row, big-endian, then the CRC-32 of the block's rows,
    /// little-endian).
    pub fences: [u64; 3],
    /// Blocks per section.
    pub blocks: [u64; 3],
}

impl RunLayout {
    /// The layout of a run of `file_len` bytes whose trailer says `counts`, or why it
    /// cannot be one (every size checked before it is used).
    pub fn new(file_len: u64, counts: [u64; 3]) -> Result<Self, FormatError> {
        let bad = |field: &'static str, found: u64| FormatError::InvalidField {
            what: "index run",
            field,
            found,
        };
        let mut at = RUN_HEADER_LEN as u64;
        let mut starts = [0u64; 3];
        let mut blocks = [0u64; 3];
        for (i, s) in RUN_SECTIONS.iter().enumerate() {
            if counts[i] > file_len / s.row_len as u64 {
                return Err(bad("row count (larger than the file)", counts[i]));
            }
            starts[i] = at;
            at += counts[i] * s.row_len as u64;
            blocks[i] = counts[i].div_ceil(s.block_rows as u64);
        }
        let mut fences = [0u64; 3];
        for i in 0..3 {
            fences[i] = at;
            at += blocks[i] * RUN_FENCE_LEN as u64;
        }
        if at.checked_add(RUN_TRAILER_LEN as u64) != Some(file_len) {
            return Err(bad("length (not what its row counts make)", file_len));
        }
        Ok(Self {
            counts,
            starts,
            fences,
            blocks,
        })
    }

    /// Encodes a trailer's counts (the checksum and end magic follow).
    pub fn encode_counts(counts: [u64; 3]) -> [u8; 24] {
        let mut b = [0u8; 24];
        for (i, c) in counts.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&c.to_le_bytes());
        }
        b
    }

    /// The counts, checksum and end magic of trailer `b`.
    pub fn decode_trailer(b: &[u8]) -> Result<([u64; 3], [u8; 32]), FormatError> {
        need("index run trailer", b, RUN_TRAILER_LEN)?;
        if &b[56..64] != RUN_END {
            return Err(FormatError::BadMagic {
                what: "index run end",
            });
        }
        Ok(([u64_at(b, 0), u64_at(b, 8), u64_at(b, 16)], array_at(b, 24)))
    }

    /// Checks header `b`.
    pub fn check_header(b: &[u8]) -> Result<(), FormatError> {
        need("index run header", b, RUN_HEADER_LEN)?;
        if &b[..8] != RUN_MAGIC {
            return Err(FormatError::BadMagic { what: "index run" });
        }
        let v = u32_at(b, 8);
        if v != RUN_VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: "index run",
                found: v,
            });
        }
        Ok(())
    }

    /// A run's header.
    pub fn header() -> [u8; RUN_HEADER_LEN] {
        let mut b = [0u8; RUN_HEADER_LEN];
        b[..8].copy_from_slice(RUN_MAGIC);
        b[8..12].copy_from_slice(&RUN_VERSION.to_le_bytes());
        b
    }
}

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
                ENTRY_LEN,
                V3_ENTRY_LEN
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
        assert_eq!(ChunkEntry::decode_v2(&v2), Ok(e));
        v2[0] = 2;
        assert!(ChunkEntry::decode_v2(&v2).is_err());
        // A version 3 value: its reference count is not read.
        let mut v3 = [0u8; V3_ENTRY_LEN];
        v3[..ENTRY_LEN].copy_from_slice(&e.encode());
        v3[ENTRY_LEN..].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(ChunkEntry::decode(&v3), Ok(e));
        let p = PackInfo {
            file_len: 99,
            record_count: 1,
            dict_id: 0,
            checksum: [7; 32],
        };
        assert_eq!(PackInfo::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn run_layout_checks_every_size() {
        // 65 chunks (2 blocks), no sketch, 1 delta (1 block).
        let rows = 65 * 55 + 64;
        let len = (RUN_HEADER_LEN + rows + 3 * RUN_FENCE_LEN + RUN_TRAILER_LEN) as u64;
        let l = RunLayout::new(len, [65, 0, 1]).unwrap();
        assert_eq!(l.blocks, [2, 0, 1]);
        assert_eq!(l.starts, [16, 16 + 65 * 55, 16 + 65 * 55]);
        assert_eq!(l.fences[0], 16 + rows as u64);
        assert!(RunLayout::new(len + 1, [65, 0, 1]).is_err());
        assert!(RunLayout::new(len, [u64::MAX, 0, 1]).is_err());
        assert!(RunLayout::new(len, [1 << 60, 1 << 60, 1 << 60]).is_err());
        let mut t = [0u8; RUN_TRAILER_LEN];
        t[..24].copy_from_slice(&RunLayout::encode_counts([1, 2, 3]));
        t[56..].copy_from_slice(RUN_END);
        assert_eq!(RunLayout::decode_trailer(&t).unwrap().0, [1, 2, 3]);
        t[63] ^= 1;
        assert!(RunLayout::decode_trailer(&t).is_err());
        assert!(RunLayout::check_header(&RunLayout::header()).is_ok());
        let mut h = RunLayout::header();
        h[8] = 2;
        assert!(RunLayout::check_header(&h).is_err());
    }
}
