//! Removing games from a library (`romlib remove`, `romlib build --remove-missing`).
//!
//! A game leaves in three steps, so that a crash at any moment leaves it either still
//! there or on its way out, and the next command that opens the library finishes the job
//! (the roll-forward rule, as for publishing, SPEC section 6):
//!
//! 1. its manifest is renamed to `games/.<title>.manifest.removed` (readers list and open
//!    only `<title>.manifest`, so from here on no reader sees the game);
//! 2. one durable index transaction drops its row of `games`;
//! 3. its locator (and a staged one), its manifest's parity file and the removed manifest
//!    are deleted, and `catalog.txt` is rewritten.
//!
//! The chunks stay in their packs: removing a game frees no space by itself. Chunks no
//! manifest references any more (counted from the manifests, as a prune counts them) are
//! what a prune reclaims.

use super::index::GAMES;
use super::writer::{db_err, LibraryWriter};
use crate::error::{Error, Result};
use crate::fsio::{rename_synced, sync_dir, temp_path};
use romlib_device::{Library, ManifestFile};
use romlib_format::layout::MANIFEST_EXT;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The end of a removed manifest's name: `.<title>.manifest.removed`.
pub const REMOVED_SUFFIX: &str = ".removed";

/// What removing games did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RemoveSummary {
    /// The games removed, sorted.
    pub removed: Vec<String>,
    /// Chunks no manifest references any more.
    pub unreferenced_chunks: u64,
    /// Their stored bytes (what a prune could reclaim).
    pub unreferenced_bytes: u64,
}

/// The name a removed manifest of `title` has until its removal is finished.
pub fn removed_path(lib: &Library, title: &str) -> PathBuf {
    lib.game_dir(title)
        .join(format!(".{title}.{MANIFEST_EXT}{REMOVED_SUFFIX}"))
}

/// Removes games `titles` from the library `store` holds (each must have a manifest; an
/// unknown title is an error naming it and the closest titles, and nothing is removed).
pub fn remove_games(store: &mut LibraryWriter, titles: &[String]) -> Result<RemoveSummary> {
    let lib = store.library().clone();
    let mut wanted: Vec<String> = titles.to_vec();
    wanted.sort();
    wanted.dedup();
    let have = lib.titles()?;
    for t in &wanted {
        // A name that is no title id names no file romlib acts on (it may come from a
        // listing of a folder someone else can write).
        if let Err(e) = romlib_format::path::check_title_id(t) {
            return Err(Error::library(
                lib.games_dir(),
                format!("{t:?} is not a title id ({e}); nothing was removed"),
            ));
        }
        if have.binary_search(t).is_err() {
            let close = romlib_device::library::closest_titles(&have, t, 3);
            let hint = match close.as_slice() {
                [] => String::new(),
                c => format!(" (closest: {})", c.join(", ")),
            };
            return Err(Error::library(
                lib.games_dir(),
                format!("no game {t:?} in this library{hint}"),
            ));
        }
    }
    for t in &wanted {
        rename_synced(&lib.manifest_path(t), &removed_path(&lib, t))?;
    }
    finish_removal(store, &wanted)
}

/// Steps 2 and 3 for games whose manifests are already renamed to their removed names:
/// what [`remove_games`] does after step 1, and what recovery does for a removal a crash
/// interrupted.
pub fn finish_removal(store: &mut LibraryWriter, titles: &[String]) -> Result<RemoveSummary> {
    let lib = store.library().clone();
    let index_path = lib.index_path();
    let mut summary = RemoveSummary {
        removed: titles.to_vec(),
        ..Default::default()
    };
    let txn = store.begin()?;
    {
        let mut games = txn.open_table(GAMES).map_err(|e| db_err(&index_path, e))?;
        for t in titles {
            games
                .remove(t.as_str())
                .map_err(|e| db_err(&index_path, e))?;
        }
    }
    store.commit_durable(txn)?;
    (summary.unreferenced_chunks, summary.unreferenced_bytes) = unreferenced(store, titles)?;
    for t in titles {
        store.touch(t);
        let locator = lib.locator_path(t);
        for p in [
            locator.clone(),
            temp_path(&locator),
            super::games_layout::manifest_parity_path(&lib, t),
            removed_path(&lib, t),
            lib.games_dir()
                .join(format!(".{t}.{MANIFEST_EXT}{REMOVED_SUFFIX}")),
        ] {
            remove_if_there(&p)?;
        }
    }
    let dirs: BTreeSet<_> = titles.iter().map(|t| lib.game_dir(t)).collect();
    for d in dirs {
        sync_dir(&d)?;
    }
    super::locator::write_catalog(&lib)?;
    Ok(summary)
}

/// The chunks of the removed manifests of `titles` that no manifest in place references,
/// and their stored bytes: the removed games' chunks are held in memory, every other
/// game's chunk table is read once.
fn unreferenced(store: &LibraryWriter, titles: &[String]) -> Result<(u64, u64)> {
    let lib = store.library();
    let mut gone = std::collections::HashSet::new();
    for t in titles {
        let path = removed_path(lib, t);
        let Ok(m) = ManifestFile::open(&path) else {
            continue;
        };
        let mut table = m
            .unverified_chunks()
            .map_err(|e| Error::library(&path, e.to_string()))?;
        while let Some(r) = table
            .next_chunk()
            .map_err(|e| Error::library(&path, e.to_string()))?
        {
            gone.insert(r.hash);
        }
    }
    if gone.is_empty() {
        return Ok((0, 0));
    }
    for t in lib.titles()? {
        let path = lib.manifest_path(&t);
        let Ok(m) = ManifestFile::open(&path) else {
            continue;
        };
        let Ok(mut table) = m.unverified_chunks() else {
            continue;
        };
        while let Ok(Some(r)) = table.next_chunk() {
            gone.remove(&r.hash);
        }
    }
    let chunks = store.chunks()?;
    let mut bytes = 0;
    for h in &gone {
        if let Some(e) = chunks.get(h)? {
            bytes += u64::from(e.clen);
        }
    }
    Ok((gone.len() as u64, bytes))
}

/// Deletes `path` (never what a symbolic link there points to) unless it is absent.
fn remove_if_there(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, "remove", e)),
    }
}

/// The titles of removals a crash interrupted: every `games/.<title>.manifest.removed`
/// whose name holds a valid title id.
pub fn interrupted(lib: &Library) -> Result<Vec<String>> {
    let suffix = format!(".{MANIFEST_EXT}{REMOVED_SUFFIX}");
    let mut out = Vec::new();
    for dir in lib.game_dirs()? {
        for e in fs::read_dir(&dir).map_err(|e| Error::io(&dir, "read folder", e))? {
            let e = e.map_err(|e| Error::io(&dir, "read folder", e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(title) = name.strip_prefix('.').and_then(|n| n.strip_suffix(&suffix)) else {
                continue;
            };
            // The name was listed: only a valid title id, in the folder of the title's
            // files, names the files deleted for it.
            // (or in games/ itself, where a removal before a change of layout left it).
            let placed = lib.game_dir(title) == dir || lib.games_dir() == dir;
            if romlib_format::path::check_title_id(title).is_ok() && placed {
                out.push(title.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
