//! Publishing into a library what a build or an import produced: signed manifests, with
//! the refcounts of their chunks moved in the index, and the signers' public keys.
//!
//! A manifest is written as `games/.<title>.manifest.tmp` and its locator as
//! `games/.<title>.locator.tmp` (both fsynced), then the index transaction that moves the
//! refcounts from the old chunk table to the new one and records the new table's hash under
//! the title in `games` commits durably, then the manifest is renamed into place and its
//! locator after it (the roll-forward rule; [`super::recovery`] finishes or undoes what a
//! crash left between them). Between the two renames a reader finds the new manifest's
//! locator under its staged name.

use super::writer::{db_err, LibraryWriter};
use crate::error::{Error, Result};
use crate::fsio::{rename_synced, temp_path, write_atomic, write_synced};
use crate::library::index::{CHUNKS, GAMES};
use redb::{ReadableTable, WriteTransaction};
use romlib_device::ManifestFile;
use romlib_format::index::{ChunkEntry, ENTRY_LEN};
use romlib_format::manifest::{ChunkRef, CHUNK_RECORD_LEN};
use std::path::{Path, PathBuf};

/// A signed manifest written to its temporary name, waiting to be published.
pub(crate) struct StagedManifest {
    /// The game's title id.
    title: String,
    /// Where the manifest goes.
    path: PathBuf,
    /// Where it is written meanwhile.
    tmp: PathBuf,
    /// The game's locator, and where it is staged meanwhile.
    locator: (PathBuf, PathBuf),
    /// Its raw chunk table.
    table: Vec<u8>,
    /// The table's BLAKE3, recorded under the title in the index.
    table_hash: [u8; 32],
}

/// Writes manifest file `bytes` of `title`, whose raw chunk table is `table`, under its
/// temporary name beside `path`, and its locator file `locator` under the locator's
/// temporary name (both fsynced), unless `path` holds exactly these bytes already; then
/// it returns `None`.
pub(crate) fn stage_manifest(
    lib: &romlib_device::Library,
    title: &str,
    bytes: &[u8],
    table: &[u8],
    locator: &[u8],
) -> Result<Option<StagedManifest>> {
    let path = lib.manifest_path(title);
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(None);
    }
    let loc = lib.locator_path(title);
    let loc_tmp = temp_path(&loc);
    write_synced(&loc_tmp, locator, 0o644)?;
    let tmp = temp_path(&path);
    write_synced(&tmp, bytes, 0o644)?;
    Ok(Some(StagedManifest {
        title: title.to_owned(),
        path,
        tmp,
        locator: (loc_tmp, loc),
        table: table.to_vec(),
        table_hash: *blake3::hash(table).as_bytes(),
    }))
}

/// Publishes staged manifests: moves the refcounts from each title's old chunk table to
/// the new one and records the new table, in one durable index transaction (`txn`, or a
/// new one), then renames each manifest into place and its locator after it. A crash
/// between them is repaired by recovery (SPEC section 6). Returns how many were published.
pub(crate) fn publish_manifests(
    store: &mut LibraryWriter,
    txn: Option<WriteTransaction>,
    changed: Vec<StagedManifest>,
) -> Result<u64> {
    let index_path = store.library().index_path();
    let txn = match txn {
        Some(t) => t,
        None => store.begin()?,
    };
    {
        let mut chunks = txn.open_table(CHUNKS).map_err(|e| db_err(&index_path, e))?;
        let mut games = txn.open_table(GAMES).map_err(|e| db_err(&index_path, e))?;
        for StagedManifest {
            title,
            path,
            table,
            table_hash,
            ..
        } in &changed
        {
            let counted = games
                .get(title.as_str())
                .map_err(|e| db_err(&index_path, e))?
                .map(|v| *v.value());
            if let Some(counted) = counted {
                adjust_old(&mut chunks, path, &counted, &index_path)?;
            }
            for rec in table.chunks_exact(CHUNK_RECORD_LEN) {
                let r = ChunkRef::decode(rec).map_err(|e| Error::library(path, e.to_string()))?;
                bump(&mut chunks, &r.hash, 1, &index_path)?;
            }
            games
                .insert(title.as_str(), table_hash)
                .map_err(|e| db_err(&index_path, e))?;
        }
    }
    store.commit_durable(txn)?;
    let n = changed.len() as u64;
    for s in changed {
        store.touch(&s.title);
        rename_synced(&s.tmp, &s.path)?;
        rename_synced(&s.locator.0, &s.locator.1)?;
    }
    Ok(n)
}

/// Decrements the refcounts of the chunk table currently counted for a title, if the
/// manifest on disk is the one that was counted.
fn adjust_old(
    chunks: &mut redb::Table<&[u8; 32], [u8; ENTRY_LEN]>,
    manifest: &Path,
    counted: &[u8; 32],
    index_path: &Path,
) -> Result<()> {
    let Ok(old) = ManifestFile::open(manifest) else {
        return Ok(());
    };
    if old.unverified_body().chunk_table_blake3.as_slice() != counted {
        return Ok(());
    }
    let mut table = old.unverified_chunks()?;
    while let Some(r) = table.next_chunk()? {
        bump(chunks, &r.hash, -1, index_path)?;
    }
    table.finish()?;
    Ok(())
}

fn bump(
    chunks: &mut redb::Table<&[u8; 32], [u8; ENTRY_LEN]>,
    hash: &[u8; 32],
    by: i64,
    index_path: &Path,
) -> Result<()> {
    let cur = chunks
        .get(hash)
        .map_err(|e| db_err(index_path, e))?
        .map(|v| v.value());
    let Some(cur) = cur else {
        return Err(Error::library(
            index_path,
            "a manifest names a chunk the index lacks",
        ));
    };
    let mut e = ChunkEntry::decode(&cur).map_err(|e| Error::library(index_path, e.to_string()))?;
    e.add_refs(by);
    chunks
        .insert(hash, e.encode())
        .map_err(|e| db_err(index_path, e))?;
    Ok(())
}

/// Writes public key `pk` into the library's `keys/` folder unless it is there already.
pub(crate) fn publish_public_key(lib: &romlib_device::Library, pk: &[u8; 32]) -> Result<()> {
    let pk = *pk;
    let id = romlib_format::manifest::key_id(&pk);
    let path = lib
        .keys_dir()
        .join(format!("{}.pub", String::from_utf8_lossy(&id)));
    let bytes = romlib_format::keyfile::encode(romlib_format::keyfile::KeyKind::Public, &pk);
    if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
        write_atomic(&path, &bytes, 0o644)?;
    }
    Ok(())
}
