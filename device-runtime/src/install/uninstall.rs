//! Uninstall: only a folder romlib completed, and in it only what the game's signed manifest
//! owns; the user's files stay in the folder with a kept note.

use crate::error::{Error, Result};
use crate::folder::Folder;
use romlib_format::path::check_title_id;
use std::ffi::OsStr;
use std::path::Path;

use super::carry::{retire_copy, Carry};
use super::names::{staging_entry, Role};
use super::{is_ours, live_game, open_install_dir, recover_in, staging_clear, STAGING_DIR};

/// What an uninstall did.
#[derive(Debug, Default)]
pub struct Uninstalled {
    /// The files the game did not own, left in its folder (relative paths).
    pub kept: Vec<String>,
    /// What interrupted operations had left, finished or removed first.
    pub recovered: Vec<String>,
    /// What was left alone, one line each.
    pub left_alone: Vec<String>,
}

/// Takes game folder `title` (romlib's) out of `inst` through staging entry `<title>.del`:
/// what the game owns is removed, the user's files stay in the folder with a kept note
/// (returned). What could not be accounted for is said in `left_alone`.
pub(super) fn retire_folder_game(
    inst: &Folder,
    staging: &Folder,
    title: &str,
    left_alone: &mut Vec<String>,
) -> Result<Vec<String>> {
    let del = staging_entry(title, Role::Del);
    inst.rename_noreplace(title, staging, &del)?;
    inst.sync()?;
    staging.sync()?;
    let (kept, gone) = retire_copy(staging, &del, inst, title, Carry::IntoKeptFolder)?;
    if !gone {
        left_alone.push(format!(
            "{}: holds files romlib could not account for; left alone",
            staging.at(&del).display()
        ));
    }
    Ok(kept)
}

/// Removes an installed game; only a folder romlib completed, and in it only what the
/// game owns. Files in it that the game does not own stay, in the game's folder with a
/// [`KEPT_MARKER`].
pub fn uninstall(install_dir: &Path, title: &str) -> Result<Uninstalled> {
    check_title_id(title).map_err(|problem| Error::UnsafePath {
        path: install_dir.to_path_buf(),
        entry: title.to_string(),
        problem,
    })?;
    let inst = open_install_dir(install_dir, false)?;
    let _lock = super::lock(&inst, true, &crate::progress::NoProgress)?;
    let recovered = recover_in(&inst, false)?;
    // A game placed without a folder of its own: its record says what it owns.
    let folder_game = matches!(inst.kind(title)?, crate::folder::Kind::Dir);
    if !folder_game && super::flat::record(&inst, title)?.is_some() {
        let staging = inst.ensure_sub(STAGING_DIR)?;
        staging_clear(&staging, title).inspect_err(|_| {
            let _ = inst.remove_empty_dir(OsStr::new(STAGING_DIR));
        })?;
        super::flat::uninstall(&inst, &staging, title)?;
        let _ = inst.remove_empty_dir(OsStr::new(STAGING_DIR));
        inst.sync()?;
        return Ok(Uninstalled {
            kept: Vec::new(),
            left_alone: recovered.lines(),
            recovered: recovered.done,
        });
    }
    let live = match live_game(&inst, title)? {
        Some(live) if is_ours(&live) => live,
        Some(_) => {
            return Err(Error::NotOurs {
                path: inst.at(title),
            })
        }
        None => {
            return Err(Error::NotFound {
                path: inst.at(title),
                what: "installed game",
            })
        }
    };
    drop(live);
    let staging = inst.ensure_sub(STAGING_DIR)?;
    staging_clear(&staging, title).inspect_err(|_| {
        let _ = inst.remove_empty_dir(OsStr::new(STAGING_DIR));
    })?;
    let mut left_alone = recovered.lines();
    let kept = retire_folder_game(&inst, &staging, title, &mut left_alone)?;
    let _ = inst.remove_empty_dir(OsStr::new(STAGING_DIR));
    inst.sync()?;
    Ok(Uninstalled {
        kept,
        recovered: recovered.done,
        left_alone,
    })
}
