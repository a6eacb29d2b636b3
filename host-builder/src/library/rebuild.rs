//! Rebuilding a library's index from what it is derived from: the packs (every record
//! names its chunk, and a delta its base) and the manifests (each game's published chunk
//! table). `romlib rebuild-index` runs it when `index.db` is damaged or lost (SPEC
//! section 5.1); the rebuilt index replaces the old one only once complete, as a build's
//! does.

use super::locator;
use super::writer::{db_err, index_pack, LibraryWriter};
use crate::error::{Error, Result};
use crate::library::index::{GAMES, META, PACKS};
use romlib_device::ManifestFile;
use romlib_format::index::{LIBRARY_FORMAT_FLAT, META_FORMAT, META_RUNS};
use romlib_format::manifest::{ChunkRef, CHUNK_RECORD_LEN};
use std::path::{Path, PathBuf};

/// What a rebuild found.
#[derive(Debug, Default)]
pub struct RebuildReport {
    /// Packs indexed.
    pub packs: u64,
    /// Chunk entries written.
    pub chunks: u64,
    /// Games recorded as published.
    pub games: u64,
    /// What could not be indexed, each with the file it concerns: a damaged pack (its
    /// chunks are left out), an unreadable manifest, a game whose chunks are in no pack.
    pub problems: Vec<(PathBuf, String)>,
    /// Locators written anew (stale or missing): a signed snapshot names the old ones
    /// until `romlib refresh` (rebuild-index holds no signing key).
    pub locators_rewritten: u64,
}

/// Rebuilds the index of the library folder `root` from its packs and manifests, and
/// rewrites every game's locator from it.
pub fn rebuild_index(root: &Path) -> Result<RebuildReport> {
    let mut store = LibraryWriter::open_empty(root)?;
    let lib = store.library().clone();
    let index_path = lib.index_path();
    let mut rep = RebuildReport::default();
    let mut ids: Vec<u32> = std::fs::read_dir(lib.packs_dir())
        .map_err(|e| Error::io(lib.packs_dir(), "read folder", e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            romlib_format::layout::parse_pack_file_name(&e.file_name().to_string_lossy())
        })
        .collect();
    ids.sort_unstable();
    let txn = store.begin()?;
    {
        let mut meta = txn.open_table(META).map_err(|e| db_err(&index_path, e))?;
        meta.insert(META_FORMAT, LIBRARY_FORMAT_FLAT.to_le_bytes().as_slice())
            .map_err(|e| db_err(&index_path, e))?;
        meta.insert(META_RUNS, [].as_slice())
            .map_err(|e| db_err(&index_path, e))?;
        txn.open_table(PACKS).map_err(|e| db_err(&index_path, e))?;
        txn.open_table(GAMES).map_err(|e| db_err(&index_path, e))?;
    }
    store.commit(txn)?;
    // The layout of games/ is what the files show.
    store.set_games_layout(lib.games_layout())?;
    let mut dec = Default::default();
    for id in ids {
        let path = lib.pack_path(id);
        // A chunk keeps the time its pack was sealed as the time it was stored.
        let stored_at = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs().min(u32::MAX as u64) as u32);
        // One commit per pack: what a pack adds becomes a run (merged as they grow), so
        // memory stays bounded by a pack's chunks whatever the library's size.
        let txn = store.begin()?;
        match index_pack(&lib, &txn, store.chunks_mut()?, id, stored_at, &mut dec) {
            Ok(_) => {
                rep.packs += 1;
                store.commit(txn)?;
            }
            Err(e) => {
                store.chunks_mut()?.discard();
                txn.abort().map_err(|e| db_err(&index_path, e))?;
                rep.problems.push((
                    path.clone(),
                    format!("{}; its chunks are left out of the index", strip(&e, &path)),
                ))
            }
        }
    }
    let txn = store.begin()?;
    let mut tables = Vec::new();
    {
        let chunks = store.chunks()?;
        let mut games = txn.open_table(GAMES).map_err(|e| db_err(&index_path, e))?;
        for title in lib.titles()? {
            let path = lib.manifest_path(&title);
            let table = match chunk_table(&path) {
                Ok(t) => t,
                Err(e) => {
                    rep.problems.push((path.clone(), strip(&e, &path)));
                    continue;
                }
            };
            let refs: Vec<ChunkRef> = table
                .chunks_exact(CHUNK_RECORD_LEN)
                .filter_map(|r| ChunkRef::decode(r).ok())
                .collect();
            let mut missing = 0u64;
            for r in &refs {
                if chunks.get(&r.hash)?.is_none() {
                    missing += 1;
                }
            }
            if missing > 0 {
                // Not counted: the index then says, truthfully, that the game is incomplete.
                rep.problems.push((
                    path,
                    format!(
                        "{missing} of its {} are in no pack; the game cannot be \
                         installed until it is built again from its files",
                        romlib_device::install::count(refs.len(), "chunk", "chunks")
                    ),
                ));
                continue;
            }
            games
                .insert(title.as_str(), blake3::hash(&table).as_bytes())
                .map_err(|e| db_err(&index_path, e))?;
            rep.games += 1;
            tables.push((title, table));
        }
        rep.chunks = chunks.runs().iter().map(|r| r.chunk_count()).sum();
    }
    store.commit(txn)?;
    store.publish()?;
    for (title, table) in &tables {
        let entries = locator::from_index(&store, title, table)?;
        if locator::refresh(&lib, title, table, &entries)? {
            rep.locators_rewritten += 1;
        }
    }
    locator::write_catalog(&lib)?;
    Ok(rep)
}

/// The raw chunk table of the manifest at `path` (its header and body checked on open,
/// the table read through the same checks as an install's).
fn chunk_table(path: &Path) -> Result<Vec<u8>> {
    let m = ManifestFile::open(path)?;
    let mut table = m.unverified_chunks()?;
    let mut out = Vec::with_capacity(m.unverified_body().chunk_count as usize * CHUNK_RECORD_LEN);
    while let Some(r) = table.next_chunk()? {
        out.extend_from_slice(&r.encode());
    }
    table.finish()?;
    Ok(out)
}

fn strip(e: &Error, path: &Path) -> String {
    let msg = e.to_string();
    let p = format!("{}: ", path.display());
    msg.strip_prefix(&p).map_or(msg.clone(), str::to_string)
}
