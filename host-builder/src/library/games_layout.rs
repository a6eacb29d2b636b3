//! The layout of `games/` (SPEC section 1): flat, or sharded into 256 folders named by the
//! first byte of the BLAKE3 of the title id. A library's layout is the builder's choice,
//! recorded in its index (`meta` `games_layout`); [`place_games`] moves every game's files
//! (and their parity) to where the layout puts them, one rename at a time, so a library
//! being converted stays readable throughout: readers find a game's files in either layout.

use crate::error::{Error, Result};
use crate::fsio::{rename_synced, sync_dir};
use romlib_device::library::{game_dir_rel, shard_dirs, shard_of};
use romlib_device::Library;
use romlib_format::layout::{
    GamesLayout, GAMES_DIR, LOCATOR_EXT, MANIFEST_EXT, PARITY_DIR, PARITY_EXT,
};
use std::fs;
use std::path::{Path, PathBuf};

/// Creates the folder of `title`'s files (its shard folder, in a sharded library) unless it
/// is there; a link or a file under that name is refused, never written through.
pub fn ensure_game_dir(lib: &Library, title: &str) -> Result<PathBuf> {
    let dir = lib.game_dir(title);
    ensure_real_dir(&dir)?;
    Ok(dir)
}

/// `dir` as a real folder: created (one level, its parent fsynced) when absent.
fn ensure_real_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::library(
            dir,
            "is not a folder (a link or a file where a folder of games belongs): remove it",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match fs::create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(dir, "create directory", e)),
            }
            sync_dir(crate::fsio::parent_dir(dir))
        }
        Err(e) => Err(Error::io(dir, "stat", e)),
    }
}

/// The parity file of `title`'s manifest: `parity/games/[<shard>/]<title>.manifest.par`.
pub fn manifest_parity_path(lib: &Library, title: &str) -> PathBuf {
    manifest_parity_at(lib, title, lib.games_layout())
}

fn manifest_parity_at(lib: &Library, title: &str, layout: GamesLayout) -> PathBuf {
    lib.root()
        .join(PARITY_DIR)
        .join(game_dir_rel(title, layout))
        .join(format!("{title}.{MANIFEST_EXT}.{PARITY_EXT}"))
}

/// The layout the files of the library folder `lib` are in, for a builder that has no
/// record of it (`romlib rebuild-index`): sharded when `games/` holds shard folders and no
/// manifest of its own, else flat.
pub fn detect(lib: &Library) -> Result<GamesLayout> {
    let dirs = lib.game_dirs()?;
    if dirs.len() == 1 {
        return Ok(GamesLayout::Flat);
    }
    let games = &dirs[0];
    let suffix = format!(".{MANIFEST_EXT}");
    for e in fs::read_dir(games).map_err(|e| Error::io(games, "read folder", e))? {
        let e = e.map_err(|e| Error::io(games, "read folder", e))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') && name.ends_with(&suffix) {
            return Ok(GamesLayout::Flat);
        }
    }
    Ok(GamesLayout::Sharded)
}

/// What [`place_games`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Files moved (manifests, locators, parity files).
    pub moved: u64,
    /// Files left where they were because another file holds their place (named by
    /// `romlib verify`).
    pub left: u64,
}

/// Moves every game's manifest, locator and manifest parity file of `lib` (a writer's
/// library, whose layout is known) to where its layout puts them, and deletes the shard
/// folders a flat library left empty. Only files whose names hold a valid title id, in a
/// folder where a reader would find them, are moved, never through a link, and never over
/// another file (an identical copy left behind by a crash is deleted instead).
pub fn place_games(lib: &Library) -> Result<Placed> {
    let mut placed = Placed::default();
    let layout = lib.games_layout();
    let par_games = lib.root().join(PARITY_DIR).join(GAMES_DIR);
    for (dirs, parity) in [
        (shard_dirs(&lib.games_dir())?, false),
        (shard_dirs(&par_games)?, true),
    ] {
        // Only the other layout's folders can hold files to move: `games/` itself for a
        // sharded library (a listing of at most 256 folders and what a conversion left),
        // the shard folders for a flat one (none, unless a conversion left them).
        let todo = match layout {
            GamesLayout::Sharded => &dirs[..1],
            GamesLayout::Flat => &dirs[1..],
        };
        for dir in todo {
            let shard = (dir != &dirs[0])
                .then(|| dir.file_name().and_then(|n| n.to_str()).map(str::to_string))
                .flatten();
            place_in(lib, dir, shard.as_deref(), parity, layout, &mut placed)?;
        }
        if layout == GamesLayout::Flat {
            for dir in &dirs[1..] {
                // Only an empty folder goes (a planted file keeps it, and verify names it).
                let _ = fs::remove_dir(dir);
            }
            if dirs.len() > 1 {
                sync_dir(&dirs[0])?;
            }
        }
    }
    Ok(placed)
}

/// [`place_games`] for the files of one folder: `games/` or `parity/games/` (`shard`
/// `None`), or one of their shard folders.
fn place_in(
    lib: &Library,
    dir: &Path,
    shard: Option<&str>,
    parity: bool,
    layout: GamesLayout,
    placed: &mut Placed,
) -> Result<()> {
    let exts: Vec<String> = match parity {
        false => vec![format!(".{MANIFEST_EXT}"), format!(".{LOCATOR_EXT}")],
        true => vec![format!(".{MANIFEST_EXT}.{PARITY_EXT}")],
    };
    let mut moves = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, "read folder", e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, "read folder", e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(title) = exts.iter().find_map(|x| name.strip_suffix(x.as_str())) else {
            continue;
        };
        // The name was listed: only a valid title id, in the folder a reader looks in,
        // names a file that is moved.
        if name.starts_with('.') || romlib_format::path::check_title_id(title).is_err() {
            continue;
        }
        if shard.is_some_and(|s| s != shard_of(title)) {
            continue;
        }
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let to_dir = match parity {
            false => lib.root().join(game_dir_rel(title, layout)).to_path_buf(),
            true => manifest_parity_at(lib, title, layout)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        };
        if to_dir == dir {
            continue;
        }
        moves.push((e.path(), to_dir.join(name)));
    }
    moves.sort();
    for (from, to) in moves {
        ensure_real_dir(crate::fsio::parent_dir(&to))?;
        match fs::symlink_metadata(&to) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                rename_synced(&from, &to)?;
                sync_dir(crate::fsio::parent_dir(&from))?;
                placed.moved += 1;
            }
            // A crash between a move and its source folder's fsync can leave both names.
            Ok(m) if m.is_file() && same_bytes(&from, &to) => {
                fs::remove_file(&from).map_err(|e| Error::io(&from, "remove", e))?;
                sync_dir(crate::fsio::parent_dir(&from))?;
            }
            _ => placed.left += 1,
        }
    }
    Ok(())
}

/// Whether files `a` and `b` hold the same bytes (a game file is at most a few MiB).
fn same_bytes(a: &Path, b: &Path) -> bool {
    match (fs::read(a), fs::read(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
