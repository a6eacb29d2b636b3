//! The user's files in a game's folder: what the game owns, carrying the rest across a
//! reinstall or an uninstall (by rename only), and the messages that say so.

use super::{marker_manifest, rename, sync_dirs, MARKER};
use crate::error::{Error, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// The note uninstall leaves in a game's folder when files that were not the game's stay
/// there: the title, then one kept path per line. A folder holding it may be installed
/// into again (its files are carried into the game, as on a reinstall).
pub const KEPT_MARKER: &str = ".romlib-kept";

/// `"{lead} N items the game does not own: a, b, c"`, or nothing when `kept` is empty.
pub(super) fn kept_note(lead: &str, kept: &[String]) -> String {
    if kept.is_empty() {
        return String::new();
    }
    let mut shown: Vec<&str> = kept.iter().take(5).map(String::as_str).collect();
    if kept.len() > 5 {
        shown.push("...");
    }
    format!(
        "{lead} {} the game does not own: {}",
        super::count(kept.len(), "item", "items"),
        shown.join(", ")
    )
}

/// What both binaries print once game `title` is uninstalled from `install_dir`, leaving
/// `kept` (see [`uninstall`]).
pub fn uninstalled_message(title: &str, install_dir: &Path, kept: &[String]) -> String {
    let lead = format!("; left in {}", install_dir.join(title).display());
    format!("uninstalled {title}{}", kept_note(&lead, kept))
}

/// The paths a game folder's completion marker says the game owns. Empty for a folder
/// with no readable marker (a `.romlib-kept` folder; a damaged marker): then every file
/// in it is treated as the user's, which loses nothing.
pub(super) fn owned_files(dir: &Path) -> std::collections::HashSet<String> {
    marker_manifest(dir)
        .map(|m| {
            m.unverified_body()
                .files
                .iter()
                .map(|f| f.path.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Moves every file and folder under `from` that is not in `owned` (and is not a romlib
/// marker) to the same place under `to`, by rename (both are in the install folder: no
/// copy, and nothing can be lost half-way). A place already taken in `to` gets the name
/// with `.kept` (or `.kept2`, ...) added. With `note` (uninstall), `to` is created if
/// needed and a [`KEPT_MARKER`] listing what was moved is written into it first. Returns
/// the relative paths moved, in order.
pub(super) fn carry_user_files(
    from: &Path,
    to: &Path,
    owned: &std::collections::HashSet<String>,
    note: bool,
) -> Result<Vec<String>> {
    let mut moves = Vec::new();
    plan_carry(from, "", owned, &mut moves)?;
    if moves.is_empty() {
        return Ok(Vec::new());
    }
    if note {
        fs::create_dir_all(to).map_err(|e| Error::io(to, "create directory", e))?;
        let title = to
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let mut text = format!("{title}\n");
        for rel in &moves {
            text.push_str(rel);
            text.push('\n');
        }
        let marker = to.join(KEPT_MARKER);
        let mut f = File::create(&marker).map_err(|e| Error::io(&marker, "create", e))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&marker, "write", e))?;
    }
    let mut kept = Vec::new();
    for rel in moves {
        place(from, to, &rel, &mut kept)?;
    }
    sync_dirs(to)?;
    Ok(kept)
}

/// Moves `from/rel` to `to/rel` by rename. A folder whose place holds a folder is merged
/// into it entry by entry (a save folder the new version also ships keeps its saves);
/// anything else whose place is taken gets `.kept` (or `.kept2`, ...) added. Appends the
/// relative paths moved to `kept`.
fn place(from: &Path, to: &Path, rel: &str, kept: &mut Vec<String>) -> Result<()> {
    let (src, dst) = (from.join(rel), to.join(rel));
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create directory", e))?;
    }
    let is_dir = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    if is_dir(&src) && is_dir(&dst) {
        let mut names = Vec::new();
        for e in fs::read_dir(&src).map_err(|e| Error::io(&src, "read directory", e))? {
            let e = e.map_err(|e| Error::io(&src, "read directory", e))?;
            names.push(e.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        for n in names {
            place(from, to, &format!("{rel}/{n}"), kept)?;
        }
        return Ok(());
    }
    let mut name = rel.to_string();
    let mut n = 1;
    while fs::symlink_metadata(to.join(&name)).is_ok() {
        name = if n == 1 {
            format!("{rel}.kept")
        } else {
            format!("{rel}.kept{n}")
        };
        n += 1;
    }
    rename(&src, &to.join(&name))?;
    kept.push(name);
    Ok(())
}

/// The relative paths under `dir` (`rel` from the game folder) to carry: files not in
/// `owned`, and whole folders holding no owned file.
fn plan_carry(
    dir: &Path,
    rel: &str,
    owned: &std::collections::HashSet<String>,
    out: &mut Vec<String>,
) -> Result<()> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::io(dir, "read directory", e))? {
        let e = e.map_err(|e| Error::io(dir, "read directory", e))?;
        let is_dir = e
            .file_type()
            .map_err(|err| Error::io(e.path(), "stat", err))?
            .is_dir();
        names.push((e.file_name().to_string_lossy().into_owned(), is_dir));
    }
    names.sort();
    for (name, is_dir) in names {
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if rel.is_empty() && (name == MARKER || name == KEPT_MARKER) {
            continue;
        }
        if !is_dir {
            if !owned.contains(&path) {
                out.push(path);
            }
            continue;
        }
        let prefix = format!("{path}/");
        if owned.iter().any(|o| o.starts_with(&prefix)) {
            plan_carry(&dir.join(&name), &path, owned, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
