//! Publishing into a library what a build or an import produced: signed manifests, and
//! the signers' public keys.
//!
//! A manifest is written as `games/.<title>.manifest.tmp` and its locator as
//! `games/.<title>.locator.tmp` (both fsynced), then the index transaction that records
//! the new chunk table's hash under the title in `games` commits durably (with the runs
//! holding every chunk the table names), then the manifest is renamed into place and its
//! locator after it (the roll-forward rule; [`super::recovery`] finishes or undoes what a
//! crash left between them). Between the two renames a reader finds the new manifest's
//! locator under its staged name.

use super::writer::{db_err, LibraryWriter};
use crate::error::Result;
use crate::fsio::{rename_synced, temp_path, write_atomic, write_synced};
use crate::library::index::GAMES;
use redb::WriteTransaction;
use std::path::PathBuf;

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
    super::games_layout::ensure_game_dir(lib, title)?;
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
        table_hash: *blake3::hash(table).as_bytes(),
    }))
}

/// Publishes staged manifests: records each title's new chunk table in one durable index
/// transaction (`txn`, or a
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
        let mut games = txn.open_table(GAMES).map_err(|e| db_err(&index_path, e))?;
        for s in &changed {
            games
                .insert(s.title.as_str(), &s.table_hash)
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
