//! The user's files in a game's folder: what the game owns, carrying the rest across a
//! reinstall or an uninstall (by rename only), removing only what the game owns, and the
//! messages that say so.
//!
//! Every step works through [`Folder`] handles: a link found in a game's folder is a file
//! of the user's like any other (carried as the link itself, never followed), and a link
//! where a folder is needed stops the step with an error naming it.

use super::{marker_manifest, sync_dirs, MARKER};
use crate::error::Result;
use crate::folder::{Folder, Kind};
use romlib_format::path::check_path;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

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
/// `kept` (see [`super::uninstall`]).
pub fn uninstalled_message(title: &str, install_dir: &Path, kept: &[String]) -> String {
    let lead = format!("; left in {}", install_dir.join(title).display());
    format!("uninstalled {title}{}", kept_note(&lead, kept))
}

/// The paths a game folder's completion marker says the game owns (each a safe relative
/// path; the marker is unverified here, so anything else in it is ignored). Empty for a
/// folder with no readable marker (a `.romlib-kept` folder; a damaged marker): then every
/// file in it is treated as the user's, which loses nothing.
pub(super) fn owned_files(dir: &Folder) -> HashSet<String> {
    marker_manifest(dir)
        .map(|m| {
            m.unverified_body()
                .files
                .iter()
                .filter(|f| check_path(&f.path, false).is_ok())
                .map(|f| f.path.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Moves every file, link and folder under `from` that is not in `owned` (and is not a
/// romlib marker) to the same place under folder `to_name` of `to_parent`, by rename (both
/// are in the install folder: no copy, and nothing can be lost half-way). A place already
/// taken gets the name with `.kept` (or `.kept2`, ...) added. With `note` (uninstall), the
/// folder is created if needed and a [`KEPT_MARKER`] listing what was moved is written into
/// it first. Names need not be UTF-8 (they are moved as they are, and shown lossily).
/// Returns the relative paths moved, in order.
fn carry_user_files(
    from: &Folder,
    to_parent: &Folder,
    to_name: &str,
    owned: &HashSet<String>,
    note: bool,
) -> Result<Vec<String>> {
    let mut moves = Vec::new();
    plan_carry(from, Path::new(""), owned, &mut moves)?;
    if moves.is_empty() {
        return Ok(Vec::new());
    }
    let to = if note {
        let to = to_parent.ensure_sub(to_name)?;
        let mut text = format!("{to_name}\n");
        for rel in &moves {
            text.push_str(&rel.to_string_lossy());
            text.push('\n');
        }
        to.write_file(KEPT_MARKER, text.as_bytes())?;
        to
    } else {
        to_parent.sub_dir(to_name)?
    };
    let mut kept = Vec::new();
    for rel in moves {
        place(from, &to, &rel, &mut kept)?;
    }
    sync_dirs(&to)?;
    Ok(kept
        .iter()
        .map(|k| k.to_string_lossy().into_owned())
        .collect())
}

/// `("a/b", "c")` for `"a/b/c"`; `("", "c")` for `"c"`.
fn split_last(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Folder `rel` of `root` (`root` itself for `""`).
fn folder_at(root: &Folder, rel: &str, create: bool) -> Result<Option<Folder>> {
    if rel.is_empty() {
        return root.try_clone().map(Some);
    }
    if create {
        root.ensure_path(rel).map(Some)
    } else {
        root.sub_path(rel)
    }
}

/// Folder `rel` (a relative path of plain components) of `root`, each opened without
/// following a link; created where missing with `create`.
fn walk(root: &Folder, rel: &Path, create: bool) -> Result<Option<Folder>> {
    let mut here = root.try_clone()?;
    for c in rel.components() {
        let std::path::Component::Normal(name) = c else {
            return Ok(None);
        };
        here = match (here.sub_os(name)?, create) {
            (Some(next), _) => next,
            (None, true) => here.ensure_sub_os(name)?,
            (None, false) => return Ok(None),
        };
    }
    Ok(Some(here))
}

/// Moves `from/rel` to `to/rel` by rename. A folder whose place holds a folder is merged
/// into it entry by entry (a save folder the new version also ships keeps its saves);
/// anything else whose place is taken gets `.kept` (or `.kept2`, ...) added. Appends the
/// relative paths moved to `kept`.
fn place(from: &Folder, to: &Folder, rel: &Path, kept: &mut Vec<PathBuf>) -> Result<()> {
    let (Some(dir), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Ok(());
    };
    let Some(src_dir) = walk(from, dir, false)? else {
        return Ok(());
    };
    let dst_dir = walk(to, dir, true)?
        .ok_or_else(|| crate::folder::unexpected(to.at(dir), Kind::Missing, "a folder"))?;
    let src_kind = src_dir.kind_os(name)?;
    if src_kind == Kind::Missing {
        return Ok(());
    }
    if src_kind == Kind::Dir && dst_dir.kind_os(name)? == Kind::Dir {
        let src = src_dir.sub_dir(name)?;
        for e in src.entries()? {
            place(from, to, &rel.join(&e.name), kept)?;
        }
        // Emptied by the merge: the folder itself goes (only if empty).
        src_dir.remove_empty_dir(name)?;
        return Ok(());
    }
    let mut target = name.to_os_string();
    let mut n = 1;
    while dst_dir.kind_os(&target)? != Kind::Missing {
        target = name.to_os_string();
        target.push(if n == 1 {
            ".kept".to_string()
        } else {
            format!(".kept{n}")
        });
        n += 1;
    }
    src_dir.rename_os_to(name, &dst_dir, &target)?;
    kept.push(dir.join(target));
    Ok(())
}

/// The relative paths under `dir` (`rel` from the game folder) to carry: files and links
/// not in `owned`, and whole folders holding no owned file.
fn plan_carry(
    dir: &Folder,
    rel: &Path,
    owned: &HashSet<String>,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    for e in dir.entries()? {
        let path = rel.join(&e.name);
        if rel.as_os_str().is_empty() && (e.name == MARKER || e.name == KEPT_MARKER) {
            continue;
        }
        // An owned path is UTF-8 (a manifest's); a name that is not cannot be owned.
        let as_str = path.to_str();
        if e.kind != Kind::Dir {
            if !as_str.is_some_and(|p| owned.contains(p)) {
                out.push(path);
            }
            continue;
        }
        let holds_owned = as_str.is_some_and(|p| {
            let prefix = format!("{p}/");
            owned.iter().any(|o| o.starts_with(&prefix))
        });
        if holds_owned {
            let sub = dir.sub_dir(&e.name)?;
            plan_carry(&sub, &path, owned, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// What [`retire_copy`] does with the user's files in a copy on its way out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Carry {
    /// Nothing to carry: a complete install never put in place owns all its files.
    No,
    /// Into the game's folder (a reinstall's replaced copy).
    IntoGame,
    /// Into a kept folder with a [`KEPT_MARKER`], made if needed (an uninstall).
    IntoKeptFolder,
}

/// Retires staging entry `name`, a copy of game `title` on its way out: carries the
/// user's files from it into `title`'s folder in `inst` as `carry` says, then removes what
/// the copy owns ([`remove_owned`]). Returns the paths carried, and whether the entry is
/// gone (`false`: something the game did not own is still in it, and stays). An entry
/// that is not there has nothing to retire.
pub(super) fn retire_copy(
    staging: &Folder,
    name: &str,
    inst: &Folder,
    title: &str,
    carry: Carry,
) -> Result<(Vec<String>, bool)> {
    let Some(copy) = staging.sub(name)? else {
        return Ok((Vec::new(), true));
    };
    let owned = owned_files(&copy);
    let kept = match carry {
        Carry::No => Vec::new(),
        Carry::IntoGame => carry_user_files(&copy, inst, title, &owned, false)?,
        Carry::IntoKeptFolder => carry_user_files(&copy, inst, title, &owned, true)?,
    };
    drop(copy);
    Ok((kept, remove_owned(staging, name, &owned)?))
}

/// Removes from folder `name` of `parent` what the game owns and nothing else: the files
/// `owned` names (a link at such a path is removed as a link), then the folders their
/// paths make if they are empty, then the markers, then the folder itself if it is empty.
/// Returns `true` when the folder is gone; `false` when something else is left in it
/// (reported by the caller, never removed).
fn remove_owned(parent: &Folder, name: &str, owned: &HashSet<String>) -> Result<bool> {
    let Some(dir) = parent.sub(name)? else {
        return Ok(true);
    };
    let mut folders: Vec<&str> = Vec::new();
    let mut files: Vec<&String> = owned.iter().collect();
    files.sort();
    // Sorted, so a folder's files come together: its handle is opened once for them.
    let mut here: Option<(&str, Option<Folder>)> = None;
    for path in files {
        let (d, file) = split_last(path);
        if here.as_ref().is_none_or(|(at, _)| *at != d) {
            here = Some((d, folder_at(&dir, d, false).ok().flatten()));
        }
        if let Some((_, Some(f))) = &here {
            if matches!(f.kind(file)?, Kind::File | Kind::Symlink | Kind::Other) {
                f.remove_file(file)?;
            }
        }
        let mut at = d;
        while !at.is_empty() {
            folders.push(at);
            at = split_last(at).0;
        }
    }
    // Deepest first.
    folders.sort_by_key(|f| std::cmp::Reverse((f.matches('/').count(), *f)));
    folders.dedup();
    for f in folders {
        let (d, last) = split_last(f);
        if let Some(p) = folder_at(&dir, d, false).ok().flatten() {
            p.remove_empty_dir(OsStr::new(last))?;
        }
    }
    // The markers last: until they go, a crash leaves a folder the next run recognises.
    dir.remove_file(KEPT_MARKER)?;
    dir.remove_file(MARKER)?;
    parent.remove_empty_dir(OsStr::new(name))
}
