//! What an install folder holds: the games romlib installed, folders of user files left by
//! an uninstall, and what interrupted operations left behind (staging, cut-off downloads),
//! with the space each takes; and the cleanup that removes the leftovers.

use super::names::game_folder;
use super::recover::{recover_in, survey, Found};
use super::{is_kept, is_ours, open_install_dir};
use crate::error::Result;
use crate::folder::Folder;
use std::path::{Path, PathBuf};

/// A game folder in an install folder.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Its title id (the folder's name).
    pub title: String,
    /// The folder, or for a game placed without one the file a front end lists.
    pub path: PathBuf,
    /// Bytes of every file in it (the user's included).
    pub bytes: u64,
    /// `"installed"`, or `"kept"` for the user's files an uninstall left.
    pub state: &'static str,
}

/// The games of `install_dir` (sorted by title; an install folder that does not exist yet
/// holds none). Only real folders with a valid title count; a link is never followed.
pub fn installed_games(install_dir: &Path) -> Result<Vec<Installed>> {
    let inst = match Folder::open(install_dir) {
        Ok(f) => f,
        Err(crate::error::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in inst.entries()? {
        let Some(title) = game_folder(&e.name, e.kind) else {
            continue;
        };
        let Ok(Some(dir)) = inst.sub(title) else {
            continue;
        };
        let state = if is_ours(&dir) {
            "installed"
        } else if is_kept(&dir) {
            "kept"
        } else {
            continue;
        };
        out.push(Installed {
            bytes: inst.tree_bytes(&e.name),
            title: title.to_string(),
            path: inst.at(title),
            state,
        });
    }
    // Games placed without a folder of their own, by their records.
    for r in super::flat::records(&inst)? {
        if out.iter().any(|g| g.title == r.title) {
            continue;
        }
        out.push(Installed {
            bytes: super::flat::placed_bytes(&inst, &r.paths),
            path: inst.at(super::flat::listed(&r.paths)),
            title: r.title,
            state: "installed",
        });
    }
    out.sort_by(|a, b| a.title.cmp(&b.title));
    Ok(out)
}

/// What interrupted installs, reinstalls, uninstalls and repairs left in `install_dir`,
/// and what else is in its staging and resume folders (left alone; see
/// [`Found::left_alone`]).
pub fn leftovers(install_dir: &Path) -> Result<Vec<Found>> {
    match Folder::open(install_dir) {
        Ok(inst) => survey(&inst),
        Err(crate::error::Error::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Finishes or rolls back interrupted operations in `install_dir` (as every install does
/// first), then removes every cut-off download kept for reuse. Returns what was done, and
/// what was found before (with the bytes each took); entries left alone are among the
/// found, and untouched.
pub fn cleanup(install_dir: &Path) -> Result<(Vec<String>, Vec<Found>)> {
    let inst = open_install_dir(install_dir, false)?;
    let _lock = super::lock(&inst, true, &crate::progress::NoProgress)?;
    let r = recover_in(&inst, true)?;
    Ok((r.done, r.found))
}

/// The one line `list-games --install-dir` and a finished install print about leftovers.
pub fn leftovers_note(found: &[Found]) -> Option<String> {
    let ours: Vec<&Found> = found.iter().filter(|f| !f.left_alone()).collect();
    let alone = found.len() - ours.len();
    let mut lines = Vec::new();
    if !ours.is_empty() {
        let bytes: u64 = ours.iter().map(|l| l.bytes).sum();
        lines.push(format!(
            "{} left by interrupted operations take {bytes} bytes; `romlib-device cleanup --install-dir DIR` removes them",
            count(ours.len(), "hidden item", "hidden items"),
        ));
    }
    if alone > 0 {
        lines.push(format!(
            "{} in the staging or resume folders romlib did not write or cannot account for; left alone",
            count(alone, "item", "items"),
        ));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// `n` and the noun, in singular or plural.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
