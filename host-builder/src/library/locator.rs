//! Per-game locators in a library (`games/<title>.locator`, SPEC section 11): where each
//! chunk-table record's chunk lies, so a reader over plain HTTP, or any reader without
//! redb, finds every chunk with one small file instead of the index. Unsigned: every chunk
//! is still checked against the signed manifest.
//!
//! The builder writes a game's locator after publishing its manifest, and rewrites one that
//! is missing or stale on any later run, so a crash between the two heals itself. It also
//! keeps `catalog.txt`, the list of title ids a reader over HTTP cannot get from a folder
//! listing.

use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::library::writer::{db_err, LibraryWriter};
use romlib_device::index::CHUNKS;
use romlib_format::index::ChunkEntry;
use romlib_format::manifest::{ChunkRef, CHUNK_RECORD_LEN};
use romlib_format::portable::{LocatorEntry, LocatorHeader};

/// Writes (atomically) the locator of `title`, whose raw chunk table is `table`, from the
/// committed index.
pub fn write(store: &LibraryWriter, title: &str, table: &[u8]) -> Result<()> {
    let bytes = encode(store, title, table)?;
    write_atomic(&store.library().locator_path(title), &bytes, 0o644)
}

/// The locator of `title` as the committed index gives it.
fn encode(store: &LibraryWriter, title: &str, table: &[u8]) -> Result<Vec<u8>> {
    let lib = store.library();
    let index_path = lib.index_path();
    let path = lib.locator_path(title);
    let count = table.len() / CHUNK_RECORD_LEN;
    let mut out = Vec::with_capacity(LocatorHeader::locator_len(count as u64) as usize);
    out.extend_from_slice(
        &LocatorHeader {
            count: u32::try_from(count)
                .map_err(|_| Error::library(&path, "too many chunks for a locator"))?,
            table_blake3: *blake3::hash(table).as_bytes(),
        }
        .encode(),
    );
    let rtx = store.begin_read()?;
    let chunks = rtx.open_table(CHUNKS).map_err(|e| db_err(&index_path, e))?;
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
        let offset = u32::try_from(e.offset)
            .map_err(|_| Error::library(&index_path, "record offset beyond 4 GiB"))?;
        out.extend_from_slice(
            &LocatorEntry {
                pack_id: e.pack_id,
                offset,
                clen: e.clen,
                method: e.method,
            }
            .encode(),
        );
    }
    Ok(out)
}

/// Writes the locator of `title` unless the file holds exactly what the index gives for
/// chunk table `table` (so a damaged or stale one is replaced, and an intact one is not
/// touched). Returns whether it wrote.
pub fn refresh(store: &LibraryWriter, title: &str, table: &[u8]) -> Result<bool> {
    let bytes = encode(store, title, table)?;
    let path = store.library().locator_path(title);
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    write_atomic(&path, &bytes, 0o644)?;
    Ok(true)
}

/// Rewrites `catalog.txt` (every title id with a manifest, sorted, one per line) unless it
/// already says exactly that. Returns whether it wrote.
pub fn write_catalog(lib: &romlib_device::Library) -> Result<bool> {
    let mut text = String::new();
    for t in lib.titles()? {
        text.push_str(&t);
        text.push('\n');
    }
    let path = lib.root().join(romlib_device::remote::CATALOG_FILE);
    if std::fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    write_atomic(&path, text.as_bytes(), 0o644)?;
    Ok(true)
}
