//! Portable files (one file holding whole games) and chunk locators.
//!
//! A portable file is a small library in one file: a header, sections (dictionaries, packs,
//! and per game its manifest and locator, each byte-identical to the standalone formats), a
//! directory of fixed-size entries, and a footer. `SPEC.md` section "Portable files" gives
//! the same tables and a test checks the two agree.
//!
//! A locator lists, for each record of a manifest's chunk table in order, where that chunk's
//! pack record lies. It is not signed and needs no trust: every chunk it points at is still
//! checked against the signed manifest.

use crate::error::{limit, need, FormatError};
use crate::index::ChunkEntry;
use crate::le::{array_at, put, u16_at, u32_at, u64_at};
use crate::limits::{MAX_CHUNK_LEN, MAX_GAME_CHUNKS, MAX_PORTABLE_ENTRIES, MAX_TITLE_ID_LEN};
use crate::pack::Method;

/// Magic at offset 0 of a portable file.
pub const MAGIC: [u8; 8] = *b"ROMLPORT";
/// Magic of a portable file's footer.
pub const FOOTER_MAGIC: [u8; 8] = *b"ROMLPEND";
/// Current portable format version.
pub const VERSION: u16 = 1;

/// Header field offsets: magic.
pub const H_MAGIC: usize = 0;
/// Offset of the version (u16).
pub const H_VERSION: usize = H_MAGIC + 8;
/// Offset of the flags (u16, zero).
pub const H_FLAGS: usize = H_VERSION + 2;
/// Offset of the reserved bytes (zero).
pub const H_RESERVED: usize = H_FLAGS + 2;
/// Header length; the first section starts here.
pub const HEADER_LEN: usize = H_RESERVED + 4;

/// Directory entry field offsets: kind (u8).
pub const E_KIND: usize = 0;
/// Offset of the name length (u8).
pub const E_NAME_LEN: usize = E_KIND + 1;
/// Offset of the reserved bytes (zero).
pub const E_RESERVED: usize = E_NAME_LEN + 1;
/// Offset of the id (u32): dictionary or pack id, 0 for a game.
pub const E_ID: usize = E_RESERVED + 2;
/// Offset of the section's offset in the file (u64): the dictionary, pack or manifest.
pub const E_OFFSET: usize = E_ID + 4;
/// Offset of the section's length (u64).
pub const E_LEN: usize = E_OFFSET + 8;
/// Offset of the locator's offset (u64; games only, else 0).
pub const E_LOCATOR_OFFSET: usize = E_LEN + 8;
/// Offset of the locator's length (u64; games only, else 0).
pub const E_LOCATOR_LEN: usize = E_LOCATOR_OFFSET + 8;
/// Offset of the name: the title id, zero-padded (games only, else all zero).
pub const E_NAME: usize = E_LOCATOR_LEN + 8;
/// Directory entry length.
pub const ENTRY_LEN: usize = E_NAME + MAX_TITLE_ID_LEN;

/// Footer field offsets: magic.
pub const F_MAGIC: usize = 0;
/// Offset of the number of directory entries (u32).
pub const F_ENTRY_COUNT: usize = F_MAGIC + 8;
/// Offset of the footer flags (u32, zero).
pub const F_FLAGS: usize = F_ENTRY_COUNT + 4;
/// Offset of the directory's offset in the file (u64).
pub const F_DIRECTORY_OFFSET: usize = F_FLAGS + 4;
/// Offset of the reserved bytes (zero).
pub const F_RESERVED: usize = F_DIRECTORY_OFFSET + 8;
/// Offset of the BLAKE3 of every byte of the file before the footer.
pub const F_CHECKSUM: usize = F_RESERVED + 8;
/// Footer length.
pub const FOOTER_LEN: usize = F_CHECKSUM + 32;

/// Encodes the portable file header.
pub fn encode_header() -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    put(&mut b, H_MAGIC, &MAGIC);
    put(&mut b, H_VERSION, &VERSION.to_le_bytes());
    b
}

/// Checks a portable file header.
pub fn decode_header(b: &[u8]) -> Result<(), FormatError> {
    need("portable file header", b, HEADER_LEN)?;
    if b[H_MAGIC..H_MAGIC + 8] != MAGIC {
        return Err(FormatError::BadMagic {
            what: "portable file header",
        });
    }
    let version = u16_at(b, H_VERSION);
    if version != VERSION {
        return Err(FormatError::UnsupportedVersion {
            what: "portable file",
            found: version as u32,
        });
    }
    zero(
        "portable file header",
        "flags/reserved",
        &b[H_FLAGS..HEADER_LEN],
    )
}

fn zero(what: &'static str, field: &'static str, b: &[u8]) -> Result<(), FormatError> {
    match b.iter().find(|&&x| x != 0) {
        None => Ok(()),
        Some(&x) => Err(FormatError::InvalidField {
            what,
            field,
            found: x as u64,
        }),
    }
}

/// The footer of a portable file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Number of directory entries.
    pub entry_count: u32,
    /// Where the directory starts; it ends where the footer starts.
    pub directory_offset: u64,
    /// BLAKE3 of every byte of the file before the footer.
    pub checksum: [u8; 32],
}

impl Footer {
    /// Encodes the footer.
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        put(&mut b, F_MAGIC, &FOOTER_MAGIC);
        put(&mut b, F_ENTRY_COUNT, &self.entry_count.to_le_bytes());
        put(
            &mut b,
            F_DIRECTORY_OFFSET,
            &self.directory_offset.to_le_bytes(),
        );
        put(&mut b, F_CHECKSUM, &self.checksum);
        b
    }

    /// Decodes the footer of a file of `file_len` bytes and checks that the directory it
    /// announces lies between the header and the footer.
    pub fn decode(b: &[u8], file_len: u64) -> Result<Self, FormatError> {
        need("portable file footer", b, FOOTER_LEN)?;
        if b[F_MAGIC..F_MAGIC + 8] != FOOTER_MAGIC {
            return Err(FormatError::BadMagic {
                what: "portable file footer (truncated file?)",
            });
        }
        zero("portable file footer", "flags", &b[F_FLAGS..F_FLAGS + 4])?;
        zero(
            "portable file footer",
            "reserved",
            &b[F_RESERVED..F_RESERVED + 8],
        )?;
        let f = Self {
            entry_count: u32_at(b, F_ENTRY_COUNT),
            directory_offset: u64_at(b, F_DIRECTORY_OFFSET),
            checksum: array_at(b, F_CHECKSUM),
        };
        limit(
            "MAX_PORTABLE_ENTRIES",
            f.entry_count as u64,
            MAX_PORTABLE_ENTRIES as u64,
        )?;
        let dir_len = f.entry_count as u64 * ENTRY_LEN as u64;
        if f.directory_offset < HEADER_LEN as u64
            || f.directory_offset.checked_add(dir_len + FOOTER_LEN as u64) != Some(file_len)
        {
            return Err(FormatError::InvalidField {
                what: "portable file footer",
                field: "directory_offset",
                found: f.directory_offset,
            });
        }
        Ok(f)
    }
}

/// What a directory entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    /// A zstd dictionary (the bytes of a `.zdict` file); `id` is its dictionary id.
    Dict,
    /// A whole pack file; `id` is its pack id.
    Pack,
    /// A game: its manifest file and its locator.
    Game,
}

impl EntryKind {
    fn to_byte(self) -> u8 {
        match self {
            EntryKind::Dict => 1,
            EntryKind::Pack => 2,
            EntryKind::Game => 3,
        }
    }

    fn from_byte(b: u8) -> Result<Self, FormatError> {
        match b {
            1 => Ok(EntryKind::Dict),
            2 => Ok(EntryKind::Pack),
            3 => Ok(EntryKind::Game),
            other => Err(FormatError::InvalidField {
                what: "portable directory entry",
                field: "kind",
                found: other as u64,
            }),
        }
    }
}

/// One directory entry. Sections lie in `[HEADER_LEN, directory_offset)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What it is.
    pub kind: EntryKind,
    /// Dictionary or pack id; 0 for a game.
    pub id: u32,
    /// Offset of the dictionary, pack or manifest.
    pub offset: u64,
    /// Its length.
    pub len: u64,
    /// Offset of the game's locator (0 otherwise).
    pub locator_offset: u64,
    /// Length of the game's locator (0 otherwise).
    pub locator_len: u64,
    /// Name bytes: the title id for a game, empty otherwise.
    pub name: [u8; MAX_TITLE_ID_LEN],
    /// How many bytes of `name` are used.
    pub name_len: u8,
}

impl Entry {
    /// The name as bytes (a title id for a game; UTF-8 is checked by the caller).
    pub fn name(&self) -> &[u8] {
        &self.name[..self.name_len as usize]
    }

    /// Encodes the entry.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[E_KIND] = self.kind.to_byte();
        b[E_NAME_LEN] = self.name_len;
        put(&mut b, E_ID, &self.id.to_le_bytes());
        put(&mut b, E_OFFSET, &self.offset.to_le_bytes());
        put(&mut b, E_LEN, &self.len.to_le_bytes());
        put(&mut b, E_LOCATOR_OFFSET, &self.locator_offset.to_le_bytes());
        put(&mut b, E_LOCATOR_LEN, &self.locator_len.to_le_bytes());
        put(&mut b, E_NAME, self.name());
        b
    }

    /// Decodes an entry and checks that its sections lie within `[HEADER_LEN, end)`, that
    /// only a game has a name and a locator, and that unused bytes are zero.
    pub fn decode(b: &[u8], end: u64) -> Result<Self, FormatError> {
        need("portable directory entry", b, ENTRY_LEN)?;
        let kind = EntryKind::from_byte(b[E_KIND])?;
        let name_len = b[E_NAME_LEN];
        limit("MAX_TITLE_ID_LEN", name_len as u64, MAX_TITLE_ID_LEN as u64)?;
        zero("portable directory entry", "reserved", &b[E_RESERVED..E_ID])?;
        zero(
            "portable directory entry",
            "name padding",
            &b[E_NAME + name_len as usize..ENTRY_LEN],
        )?;
        let e = Self {
            kind,
            id: u32_at(b, E_ID),
            offset: u64_at(b, E_OFFSET),
            len: u64_at(b, E_LEN),
            locator_offset: u64_at(b, E_LOCATOR_OFFSET),
            locator_len: u64_at(b, E_LOCATOR_LEN),
            name: array_at(b, E_NAME),
            name_len,
        };
        let bad = |field, found| FormatError::InvalidField {
            what: "portable directory entry",
            field,
            found,
        };
        let inside = |off: u64, len: u64| {
            off >= HEADER_LEN as u64 && off.checked_add(len).is_some_and(|x| x <= end)
        };
        if !inside(e.offset, e.len) || e.len == 0 {
            return Err(bad("offset", e.offset));
        }
        match kind {
            EntryKind::Game => {
                if name_len == 0 {
                    return Err(bad("name length", 0));
                }
                if e.id != 0 {
                    return Err(bad("id", e.id as u64));
                }
                if !inside(e.locator_offset, e.locator_len) {
                    return Err(bad("locator offset", e.locator_offset));
                }
            }
            EntryKind::Dict | EntryKind::Pack => {
                if name_len != 0 {
                    return Err(bad("name length", name_len as u64));
                }
                if e.id == 0 {
                    return Err(bad("id", 0));
                }
                if e.locator_offset != 0 || e.locator_len != 0 {
                    return Err(bad("locator offset", e.locator_offset));
                }
            }
        }
        Ok(e)
    }
}

/// Magic at offset 0 of a locator.
pub const LOCATOR_MAGIC: [u8; 8] = *b"ROMLLOCR";
/// Version of a locator without a base table (a game with no delta chunks).
pub const LOCATOR_VERSION: u16 = 1;
/// Version of a locator with a base table: a game with delta chunks (format version 2).
pub const LOCATOR_VERSION_BASES: u16 = 2;

/// Locator header field offsets: magic.
pub const L_MAGIC: usize = 0;
/// Offset of the version (u16).
pub const L_VERSION: usize = L_MAGIC + 8;
/// Offset of the flags (u16, zero).
pub const L_FLAGS: usize = L_VERSION + 2;
/// Offset of the number of entries (u32): the manifest's `chunk_count`.
pub const L_COUNT: usize = L_FLAGS + 2;
/// Offset of the manifest's `chunk_table_blake3` this locator was written for.
pub const L_TABLE_BLAKE3: usize = L_COUNT + 4;
/// Length of a version 1 locator header; entries follow.
pub const LOCATOR_HEADER_LEN: usize = L_TABLE_BLAKE3 + 32;
/// Offset of the number of base entries (u32), in a version 2 header only.
pub const L_BASE_COUNT: usize = LOCATOR_HEADER_LEN;
/// Offset of the reserved bytes (zero), in a version 2 header only.
pub const L_BASES_RESERVED: usize = L_BASE_COUNT + 4;
/// Length of a version 2 locator header.
pub const LOCATOR_HEADER_V2_LEN: usize = L_BASES_RESERVED + 4;

/// Base entry field offsets: the base chunk's BLAKE3.
pub const B_HASH: usize = 0;
/// Offset of where the base chunk's record lies (a locator entry).
pub const B_ENTRY: usize = B_HASH + 32;
/// Base entry length.
pub const BASE_ENTRY_LEN: usize = B_ENTRY + LOCATOR_ENTRY_LEN;

/// Locator entry field offsets: pack id (u32).
pub const LE_PACK_ID: usize = 0;
/// Offset of the record's offset in the pack (u32: packs are smaller than 4 GiB).
pub const LE_OFFSET: usize = LE_PACK_ID + 4;
/// Offset of the record's payload length (u32).
pub const LE_CLEN: usize = LE_OFFSET + 4;
/// Offset of the record's method (u8).
pub const LE_METHOD: usize = LE_CLEN + 4;
/// Offset of the reserved bytes (zero).
pub const LE_RESERVED: usize = LE_METHOD + 1;
/// Locator entry length.
pub const LOCATOR_ENTRY_LEN: usize = LE_RESERVED + 3;

/// A locator's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocatorHeader {
    /// Number of entries: the chunk count of the manifest it was written for.
    pub count: u32,
    /// That manifest's `chunk_table_blake3`.
    pub table_blake3: [u8; 32],
    /// Number of base entries: the distinct base chunks the game's delta chunks name
    /// (0: a version 1 locator, which has no base table).
    pub bases: u32,
}

impl LocatorHeader {
    /// Length of this header: version 1 without bases, version 2 with.
    pub fn header_len(&self) -> usize {
        if self.bases == 0 {
            LOCATOR_HEADER_LEN
        } else {
            LOCATOR_HEADER_V2_LEN
        }
    }

    /// Length of the whole locator this header starts.
    pub fn locator_len(&self) -> u64 {
        self.bases_offset() + self.bases as u64 * BASE_ENTRY_LEN as u64
    }

    /// Offset of the base table from the start of the locator.
    pub fn bases_offset(&self) -> u64 {
        self.header_len() as u64 + self.count as u64 * LOCATOR_ENTRY_LEN as u64
    }

    /// Length of the largest locator a game may have.
    pub fn max_locator_len() -> u64 {
        LOCATOR_HEADER_V2_LEN as u64
            + MAX_GAME_CHUNKS * (LOCATOR_ENTRY_LEN as u64 + BASE_ENTRY_LEN as u64)
    }

    /// Encodes the header into `out`; returns the [`LocatorHeader::header_len`] bytes used.
    pub fn encode<'a>(&self, out: &'a mut [u8; LOCATOR_HEADER_V2_LEN]) -> &'a [u8] {
        *out = [0u8; LOCATOR_HEADER_V2_LEN];
        let version = if self.bases == 0 {
            LOCATOR_VERSION
        } else {
            LOCATOR_VERSION_BASES
        };
        put(out, L_MAGIC, &LOCATOR_MAGIC);
        put(out, L_VERSION, &version.to_le_bytes());
        put(out, L_COUNT, &self.count.to_le_bytes());
        put(out, L_TABLE_BLAKE3, &self.table_blake3);
        put(out, L_BASE_COUNT, &self.bases.to_le_bytes());
        &out[..self.header_len()]
    }

    /// Decodes and checks a header from the start of `b` (at least
    /// [`LOCATOR_HEADER_LEN`] bytes; [`LOCATOR_HEADER_V2_LEN`] for version 2).
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        need("locator header", b, LOCATOR_HEADER_LEN)?;
        if b[L_MAGIC..L_MAGIC + 8] != LOCATOR_MAGIC {
            return Err(FormatError::BadMagic {
                what: "locator header",
            });
        }
        let version = u16_at(b, L_VERSION);
        if version != LOCATOR_VERSION && version != LOCATOR_VERSION_BASES {
            return Err(FormatError::UnsupportedVersion {
                what: "locator",
                found: version as u32,
            });
        }
        zero("locator header", "flags", &b[L_FLAGS..L_COUNT])?;
        let count = u32_at(b, L_COUNT);
        limit("MAX_GAME_CHUNKS", count as u64, MAX_GAME_CHUNKS)?;
        let mut bases = 0;
        if version == LOCATOR_VERSION_BASES {
            need("locator header", b, LOCATOR_HEADER_V2_LEN)?;
            zero(
                "locator header",
                "reserved",
                &b[L_BASES_RESERVED..LOCATOR_HEADER_V2_LEN],
            )?;
            bases = u32_at(b, L_BASE_COUNT);
            // Each base serves at least one delta chunk of the game.
            limit("chunk count", bases as u64, count as u64)?;
            if bases == 0 {
                return Err(FormatError::InvalidField {
                    what: "locator header",
                    field: "base_count",
                    found: 0,
                });
            }
        }
        Ok(Self {
            count,
            table_blake3: array_at(b, L_TABLE_BLAKE3),
            bases,
        })
    }
}

/// Where a base chunk's record lies: an entry of a version 2 locator's base table, which
/// is sorted by hash, each hash once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseEntry {
    /// The base chunk's BLAKE3.
    pub hash: [u8; 32],
    /// Where its record lies.
    pub entry: LocatorEntry,
}

impl BaseEntry {
    /// Encodes the entry.
    pub fn encode(&self) -> [u8; BASE_ENTRY_LEN] {
        let mut b = [0u8; BASE_ENTRY_LEN];
        put(&mut b, B_HASH, &self.hash);
        put(&mut b, B_ENTRY, &self.entry.encode());
        b
    }

    /// Decodes and checks an entry; a base is never stored as a delta itself.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        need("base entry", b, BASE_ENTRY_LEN)?;
        let entry = LocatorEntry::decode(&b[B_ENTRY..BASE_ENTRY_LEN])?;
        if entry.method == Method::ZstdDelta {
            return Err(FormatError::InvalidField {
                what: "base entry",
                field: "method",
                found: entry.method.to_byte() as u64,
            });
        }
        Ok(Self {
            hash: array_at(b, B_HASH),
            entry,
        })
    }
}

/// Where one chunk's record lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocatorEntry {
    /// The pack holding the record.
    pub pack_id: u32,
    /// Offset of the record header in the pack.
    pub offset: u32,
    /// Payload length.
    pub clen: u32,
    /// How the payload is stored.
    pub method: Method,
}

impl LocatorEntry {
    /// Where the index entry `e` says a chunk's record lies; `None` when its offset does
    /// not fit a locator's 32 bits (packs stay below 4 GiB, so only a bad entry does not).
    pub fn from_index(e: &ChunkEntry) -> Option<Self> {
        Some(Self {
            pack_id: e.pack_id,
            offset: u32::try_from(e.offset).ok()?,
            clen: e.clen,
            method: e.method,
        })
    }

    /// The index entry this locator entry stands for, for a chunk of `ulen` bytes (a
    /// locator keeps no time: it is 0).
    pub fn to_index(&self, ulen: u32) -> ChunkEntry {
        ChunkEntry {
            pack_id: self.pack_id,
            offset: self.offset as u64,
            clen: self.clen,
            ulen,
            method: self.method,
            stored_at: 0,
        }
    }

    /// Encodes the entry.
    pub fn encode(&self) -> [u8; LOCATOR_ENTRY_LEN] {
        let mut b = [0u8; LOCATOR_ENTRY_LEN];
        put(&mut b, LE_PACK_ID, &self.pack_id.to_le_bytes());
        put(&mut b, LE_OFFSET, &self.offset.to_le_bytes());
        put(&mut b, LE_CLEN, &self.clen.to_le_bytes());
        b[LE_METHOD] = self.method.to_byte();
        b
    }

    /// Decodes and checks an entry.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        need("locator entry", b, LOCATOR_ENTRY_LEN)?;
        zero(
            "locator entry",
            "reserved",
            &b[LE_RESERVED..LOCATOR_ENTRY_LEN],
        )?;
        let e = Self {
            pack_id: u32_at(b, LE_PACK_ID),
            offset: u32_at(b, LE_OFFSET),
            clen: u32_at(b, LE_CLEN),
            method: Method::from_byte(b[LE_METHOD])?,
        };
        limit("MAX_CHUNK_LEN", e.clen as u64, MAX_CHUNK_LEN as u64)?;
        if e.pack_id == 0 {
            return Err(FormatError::InvalidField {
                what: "locator entry",
                field: "pack_id",
                found: 0,
            });
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_spec_table() {
        assert_eq!(HEADER_LEN, 16);
        assert_eq!(
            (E_ID, E_OFFSET, E_LEN, E_LOCATOR_OFFSET, E_NAME, ENTRY_LEN),
            (4, 8, 16, 24, 40, 168)
        );
        assert_eq!((F_DIRECTORY_OFFSET, F_CHECKSUM, FOOTER_LEN), (16, 32, 64));
        assert_eq!((L_COUNT, L_TABLE_BLAKE3, LOCATOR_HEADER_LEN), (12, 16, 48));
        assert_eq!((LE_CLEN, LE_METHOD, LOCATOR_ENTRY_LEN), (8, 12, 16));
        assert_eq!((L_BASE_COUNT, LOCATOR_HEADER_V2_LEN), (48, 56));
        assert_eq!((B_ENTRY, BASE_ENTRY_LEN), (32, 48));
    }

    #[test]
    fn round_trips_and_rejects() {
        decode_header(&encode_header()).unwrap();
        let mut h = encode_header();
        h[H_FLAGS] = 1;
        assert!(decode_header(&h).is_err());

        let f = Footer {
            entry_count: 2,
            directory_offset: 100,
            checksum: [7; 32],
        };
        let len = 100 + 2 * ENTRY_LEN as u64 + FOOTER_LEN as u64;
        assert_eq!(Footer::decode(&f.encode(), len).unwrap(), f);
        assert!(Footer::decode(&f.encode(), len + 1).is_err());
        assert!(Footer::decode(&f.encode()[..FOOTER_LEN - 1], len).is_err());

        let mut name = [0u8; MAX_TITLE_ID_LEN];
        name[..4].copy_from_slice(b"game");
        let g = Entry {
            kind: EntryKind::Game,
            id: 0,
            offset: 16,
            len: 10,
            locator_offset: 26,
            locator_len: 48,
            name,
            name_len: 4,
        };
        assert_eq!(Entry::decode(&g.encode(), 100).unwrap(), g);
        assert!(
            Entry::decode(&g.encode(), 60).is_err(),
            "locator past the end"
        );
        let mut b = g.encode();
        b[E_NAME + 10] = 1;
        assert!(Entry::decode(&b, 100).is_err(), "name padding");
        let p = Entry {
            kind: EntryKind::Pack,
            id: 1,
            locator_offset: 0,
            locator_len: 0,
            name: [0; MAX_TITLE_ID_LEN],
            name_len: 0,
            ..g.clone()
        };
        assert_eq!(Entry::decode(&p.encode(), 100).unwrap(), p);
        assert!(Entry::decode(&Entry { id: 0, ..p }.encode(), 100).is_err());

        let lh = LocatorHeader {
            count: 3,
            table_blake3: [9; 32],
            bases: 0,
        };
        let mut hb = [0u8; LOCATOR_HEADER_V2_LEN];
        assert_eq!(lh.encode(&mut hb).len(), LOCATOR_HEADER_LEN);
        assert_eq!(
            LocatorHeader::decode(&hb[..LOCATOR_HEADER_LEN]).unwrap(),
            lh
        );
        assert_eq!(lh.locator_len(), 48 + 3 * 16);
        let le = LocatorEntry {
            pack_id: 2,
            offset: 32,
            clen: 100,
            method: Method::Zstd,
        };
        assert_eq!(LocatorEntry::decode(&le.encode()).unwrap(), le);
        let mut b = le.encode();
        b[LE_METHOD] = 9;
        assert!(LocatorEntry::decode(&b).is_err());
    }

    #[test]
    fn locator_entries_convert_to_and_from_index_entries() {
        let e = ChunkEntry {
            pack_id: 3,
            offset: 4096,
            clen: 77,
            ulen: 100,
            method: Method::Zstd,
            stored_at: 9,
        };
        let l = LocatorEntry::from_index(&e).unwrap();
        assert_eq!(
            (l.pack_id, l.offset, l.clen, l.method),
            (3, 4096, 77, Method::Zstd)
        );
        let back = l.to_index(100);
        assert_eq!(back.stored_at, 0);
        assert_eq!(LocatorEntry::from_index(&back), Some(l));
        let far = ChunkEntry {
            offset: 1 << 32,
            ..e
        };
        assert_eq!(LocatorEntry::from_index(&far), None);
    }

    #[test]
    fn version_2_locators_carry_a_base_table() {
        let lh = LocatorHeader {
            count: 3,
            table_blake3: [9; 32],
            bases: 2,
        };
        let mut hb = [0u8; LOCATOR_HEADER_V2_LEN];
        assert_eq!(lh.encode(&mut hb).len(), LOCATOR_HEADER_V2_LEN);
        assert_eq!(u16_at(&hb, L_VERSION), LOCATOR_VERSION_BASES);
        assert_eq!(LocatorHeader::decode(&hb).unwrap(), lh);
        assert_eq!(lh.bases_offset(), 56 + 3 * 16);
        assert_eq!(lh.locator_len(), 56 + 3 * 16 + 2 * 48);
        // Truncated before the base count, more bases than chunks, or none at all.
        assert!(LocatorHeader::decode(&hb[..LOCATOR_HEADER_LEN]).is_err());
        let mut many = hb;
        put(&mut many, L_BASE_COUNT, &4u32.to_le_bytes());
        assert!(LocatorHeader::decode(&many).is_err());
        let mut none = hb;
        put(&mut none, L_BASE_COUNT, &0u32.to_le_bytes());
        assert!(LocatorHeader::decode(&none).is_err());

        let be = BaseEntry {
            hash: [5; 32],
            entry: LocatorEntry {
                pack_id: 1,
                offset: 32,
                clen: 10,
                method: Method::Zstd,
            },
        };
        assert_eq!(BaseEntry::decode(&be.encode()).unwrap(), be);
        let delta_base = BaseEntry {
            entry: LocatorEntry {
                method: Method::ZstdDelta,
                ..be.entry
            },
            ..be
        };
        assert!(
            BaseEntry::decode(&delta_base.encode()).is_err(),
            "chains are one link deep"
        );
    }
}
