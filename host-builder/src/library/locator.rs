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
use crate::library::writer::{db_err, LibraryWriter};
use romlib_device::chunks::index::CHUNKS;
use romlib_device::Library;
use romlib_format::index::ChunkEntry;
use romlib_format::layout::CATALOG_FILE;
use romlib_format::manifest::{ChunkRef, CHUNK_RECORD_LEN};
use romlib_format::portable::{LocatorEntry, LocatorHeader};
use std::path::Path;

/// Writes (atomically) the locator of `title`, whose raw chunk table is `table` and whose
/// chunks lie where `entries` say (one per table record).
pub fn write(lib: &Library, title: &str, table: &[u8], entries: &[LocatorEntry]) -> Result<()> {
    let path = lib.locator_path(title);
    write_atomic(&path, &encode(&path, table, entries)?, 0o644)
}

/// Writes the locator of `title` unless the file holds exactly that already (so a damaged
/// or stale one is replaced, and an intact one is not touched). Returns whether it wrote.
pub fn refresh(lib: &Library, title: &str, table: &[u8], entries: &[LocatorEntry]) -> Result<bool> {
    let path = lib.locator_path(title);
    let bytes = encode(&path, table, entries)?;
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    write_atomic(&path, &bytes, 0o644)?;
    Ok(true)
}

/// The locator file (at `path`) of chunk table `table` whose chunks lie at `entries`.
fn encode(path: &Path, table: &[u8], entries: &[LocatorEntry]) -> Result<Vec<u8>> {
    let count = table.len() / CHUNK_RECORD_LEN;
    debug_assert_eq!(count, entries.len());
    let mut out = Vec::with_capacity(LocatorHeader::locator_len(count as u64) as usize);
    out.extend_from_slice(
        &LocatorHeader {
            count: u32::try_from(count)
                .map_err(|_| Error::library(path, "too many chunks for a locator"))?,
            table_blake3: *blake3::hash(table).as_bytes(),
        }
        .encode(),
    );
    for e in entries {
        out.extend_from_slice(&e.encode());
    }
    Ok(out)
}

/// The locator entry of a chunk the index holds at `e`.
pub fn locator_entry(e: &ChunkEntry, index_path: &Path) -> Result<LocatorEntry> {
    LocatorEntry::from_index(e)
        .ok_or_else(|| Error::library(index_path, "record offset beyond 4 GiB"))
}

/// The locator entries of `title`'s chunk table `table`, as the committed index gives them
/// (for an import, which does not look every chunk up as it goes).
pub fn entries_from_index(
    store: &LibraryWriter,
    title: &str,
    table: &[u8],
) -> Result<Vec<LocatorEntry>> {
    let lib = store.library();
    let index_path = lib.index_path();
    let path = lib.locator_path(title);
    let rtx = store.begin_read()?;
    let chunks = rtx.open_table(CHUNKS).map_err(|e| db_err(&index_path, e))?;
    let mut entries = Vec::with_capacity(table.len() / CHUNK_RECORD_LEN);
    for rec in table.chunks_exact(CHUNK_RECORD_LEN) {
        let c = ChunkRef::decode(rec).map_err(|e| Error::library(&path, e.to_string()))?;
        let v = chunks
            .get(&c.hash)
            .map_err(|e| db_err(&index_path, e))?
            .ok_or_else(|| {
                Error::library(
                    &index_path,
                    format!("{title}: a chunk is missing from the index"),
                )
            })?;
        let e = ChunkEntry::decode(v.value())
            .map_err(|e| Error::library(&index_path, e.to_string()))?;
        entries.push(locator_entry(&e, &index_path)?);
    }
    Ok(entries)
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
