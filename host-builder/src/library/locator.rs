//! Per-game locators in a library (`games/<title>.locator`, SPEC section 11): where each
//! chunk-table record's chunk lies, so a reader over plain HTTP, or any reader without
//! redb, finds every chunk with one small file instead of the index. Unsigned: every chunk
//! is still checked against the signed manifest.
//!
//! The builder writes a game's locator after publishing its manifest, from the index
//! entries it wrote or found while it built the game, and rewrites one that is missing or
//! stale on any later run, so a crash between the two heals itself. It also
//! keeps `catalog.txt`, the list of title ids a reader over HTTP cannot get from a folder
//! listing.

use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::library::runs::ChunkIndex;
use crate::library::writer::LibraryWriter;
use romlib_device::Library;
use romlib_format::index::ChunkEntry;
use romlib_format::layout::CATALOG_FILE;
use romlib_format::manifest::{ChunkRef, CHUNK_RECORD_LEN};
use romlib_format::pack::Method;
use romlib_format::portable::{BaseEntry, LocatorEntry, LocatorHeader, LOCATOR_HEADER_V2_LEN};
use std::collections::BTreeMap;
use std::path::Path;

/// Where a game's chunks lie: one entry per chunk-table record, and where each base chunk
/// its delta chunks name lies.
#[derive(Debug, Default, Clone)]
pub struct GameLocator {
    /// Entry `i` locates chunk-table record `i`.
    pub entries: Vec<LocatorEntry>,
    /// The base chunks of the game's deltas, by hash (sorted, as the file wants them).
    pub bases: BTreeMap<[u8; 32], LocatorEntry>,
}

/// Writes (atomically) the locator of `title`, whose raw chunk table is `table` and whose
/// chunks lie where `loc` says.
pub fn write(lib: &Library, title: &str, table: &[u8], loc: &GameLocator) -> Result<()> {
    super::games_layout::ensure_game_dir(lib, title)?;
    let path = lib.locator_path(title);
    write_atomic(&path, &encode(&path, table, loc)?, 0o644)
}

/// Writes the locator of `title` unless the file holds exactly that already (so a damaged
/// or stale one is replaced, and an intact one is not touched). Returns whether it wrote.
pub fn refresh(lib: &Library, title: &str, table: &[u8], loc: &GameLocator) -> Result<bool> {
    let path = lib.locator_path(title);
    let bytes = encode(&path, table, loc)?;
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    super::games_layout::ensure_game_dir(lib, title)?;
    write_atomic(&path, &bytes, 0o644)?;
    Ok(true)
}

/// The locator file (at `path`) of chunk table `table` whose chunks lie where `loc` says.
pub fn encode(path: &Path, table: &[u8], loc: &GameLocator) -> Result<Vec<u8>> {
    let count = table.len() / CHUNK_RECORD_LEN;
    debug_assert_eq!(count, loc.entries.len());
    let too_many = || Error::library(path, "too many chunks for a locator");
    let header = LocatorHeader {
        count: u32::try_from(count).map_err(|_| too_many())?,
        table_blake3: *blake3::hash(table).as_bytes(),
        bases: u32::try_from(loc.bases.len()).map_err(|_| too_many())?,
    };
    let mut out = Vec::with_capacity(header.locator_len() as usize);
    out.extend_from_slice(header.encode(&mut [0; LOCATOR_HEADER_V2_LEN]));
    for e in &loc.entries {
        out.extend_from_slice(&e.encode());
    }
    for (hash, entry) in &loc.bases {
        let b = BaseEntry {
            hash: *hash,
            entry: *entry,
        };
        out.extend_from_slice(&b.encode());
    }
    Ok(out)
}

/// The locator entry of a chunk the index holds at `e`.
pub fn locator_entry(e: &ChunkEntry, index_path: &Path) -> Result<LocatorEntry> {
    LocatorEntry::from_index(e)
        .ok_or_else(|| Error::library(index_path, "record offset beyond 4 GiB"))
}

/// The locator of `title`'s chunk table `table`, as the chunk index gives it (for an
/// import, which does not look every chunk up as it goes).
pub fn from_index(store: &LibraryWriter, title: &str, table: &[u8]) -> Result<GameLocator> {
    let lib = store.library();
    let index_path = lib.index_path();
    let path = lib.locator_path(title);
    let chunks = store.chunks()?;
    let entry = |hash: &[u8; 32]| -> Result<ChunkEntry> {
        chunks.get(hash)?.ok_or_else(|| {
            Error::library(
                &index_path,
                format!("{title}: a chunk is missing from the index"),
            )
        })
    };
    let mut loc = GameLocator::default();
    loc.entries.reserve(table.len() / CHUNK_RECORD_LEN);
    for rec in table.chunks_exact(CHUNK_RECORD_LEN) {
        let c = ChunkRef::decode(rec).map_err(|e| Error::library(&path, e.to_string()))?;
        let e = entry(&c.hash)?;
        loc.entries.push(locator_entry(&e, &index_path)?);
        if e.method == Method::ZstdDelta {
            let base = base_of(chunks, &c.hash, &index_path)?;
            if let std::collections::btree_map::Entry::Vacant(v) = loc.bases.entry(base) {
                v.insert(locator_entry(&entry(&base)?, &index_path)?);
            }
        }
    }
    Ok(loc)
}

/// The base chunk of delta chunk `hash`, from the chunk index.
pub fn base_of(chunks: &ChunkIndex, hash: &[u8; 32], index_path: &Path) -> Result<[u8; 32]> {
    let found = chunks.delta_base(hash)?;
    found.ok_or_else(|| {
        Error::library(
            index_path,
            format!(
                "delta chunk {} has no base in the index",
                romlib_device::error::short_hex(hash)
            ),
        )
    })
}

/// Rewrites `catalog.txt` (every title id with a manifest, sorted, one per line) unless it
/// already says exactly that. Returns whether it wrote.
pub fn write_catalog(lib: &Library) -> Result<bool> {
    let mut text = String::new();
    for t in lib.titles()? {
        text.push_str(&t);
        text.push('\n');
    }
    let path = lib.root().join(CATALOG_FILE);
    if std::fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    write_atomic(&path, text.as_bytes(), 0o644)?;
    Ok(true)
}
