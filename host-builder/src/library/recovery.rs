//! Finishing or undoing what a killed writer left half done: staged manifests and
//! locators, and removals.

use crate::error::{Error, Result};
use crate::fsio::{rename_synced, TEMP_SUFFIX};
use crate::library::index::GAMES;
use crate::library::writer::{db_err, LibraryWriter};
use romlib_device::ManifestFile;
use romlib_format::layout::{LOCATOR_EXT, MANIFEST_EXT};
use std::fs;

/// Opens the library at `root` for a command that publishes or removes games
/// ([`LibraryWriter::open`]) and finishes first what a killed writer left: staged
/// manifests and locators (the roll-forward rule) and removals cut off half way. Every such
/// command must: a manifest staged after the commit that counted it, and not renamed, would
/// otherwise make the next publication of that title count its chunk table twice.
pub fn open_and_recover(root: &std::path::Path) -> Result<LibraryWriter> {
    let mut w = LibraryWriter::open(root)?;
    let fixed = recover_manifests(&w)?;
    w.recovered.extend(fixed);
    let removing = super::remove::interrupted(w.library())?;
    if !removing.is_empty() {
        super::remove::finish_removal(&mut w, &removing)?;
        w.recovered.push(format!(
            "finished removing {} that an interrupted run left half removed",
            removing.join(", ")
        ));
    }
    Ok(w)
}

/// Applies the roll-forward rule to every `games/.<title>.manifest.tmp`: rename it into
/// place when the index already counts its chunk table, delete it otherwise. Then every
/// `games/.<title>.locator.tmp` that was written for the game's manifest now in place is
/// renamed over its locator; any other is deleted.
pub fn recover_manifests(store: &LibraryWriter) -> Result<Vec<String>> {
    let lib = store.library();
    let mut done = Vec::new();
    let mut locators = Vec::new();
    let index_path = lib.index_path();
    let txn = store.begin_read()?;
    let games = txn.open_table(GAMES).map_err(|e| db_err(&index_path, e))?;
    // The temp names `.<title>.locator.tmp` and `.<title>.manifest.tmp` end so.
    let locator_tmp = format!(".{LOCATOR_EXT}{TEMP_SUFFIX}");
    let manifest_tmp = format!(".{MANIFEST_EXT}{TEMP_SUFFIX}");
    let mut staged = Vec::new();
    for dir in lib.game_dirs()? {
        for e in fs::read_dir(&dir).map_err(|e| Error::io(&dir, "read folder", e))? {
            let e = e.map_err(|e| Error::io(&dir, "read folder", e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                staged.push((name, e.path()));
            }
        }
    }
    for (name, path) in staged {
        if let Some(title) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(&locator_tmp))
        {
            locators.push((title.to_owned(), path));
            continue;
        }
        let Some(title) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(&manifest_tmp))
        else {
            continue;
        };
        let tmp = path;
        let counted = games
            .get(title)
            .map_err(|e| db_err(&index_path, e))?
            .map(|v| *v.value());
        let complete = ManifestFile::open(&tmp).ok().is_some_and(|m| {
            m.unverified_body().title_id == title
                && Some(m.unverified_body().chunk_table_blake3.as_slice())
                    == counted.as_ref().map(|c| c.as_slice())
        });
        if complete {
            super::games_layout::ensure_game_dir(lib, title)?;
            rename_synced(&tmp, &lib.manifest_path(title))?;
            done.push(format!("finished writing the manifest of {title}"));
        } else {
            fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, "remove", e))?;
            done.push(format!("removed an unfinished manifest of {title}"));
        }
    }
    for (title, tmp) in locators {
        // The name was listed: only a valid title id names the file renamed over.
        if romlib_format::path::check_title_id(&title).is_err() {
            continue;
        }
        let fits = ManifestFile::open(&lib.manifest_path(&title))
            .ok()
            .is_some_and(|m| {
                m.unverified_body().title_id == title
                    && romlib_device::chunks::locator::ChunkLocator::open_file(
                        &tmp,
                        m.unverified_body(),
                    )
                    .is_ok()
            });
        if fits {
            super::games_layout::ensure_game_dir(lib, &title)?;
            rename_synced(&tmp, &lib.locator_path(&title))?;
            done.push(format!("finished writing the locator of {title}"));
        } else {
            fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, "remove", e))?;
        }
    }
    Ok(done)
}
