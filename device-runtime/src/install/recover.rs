//! After a crash: what each entry of an install folder's staging and resume folders is, and
//! finishing or rolling back the operation that left it.
//!
//! One function, [`survey`], decides what each entry is from its parsed name
//! ([`super::names`]), its kind and the state of the game folder it belongs to; both
//! [`recover_in`] (which acts) and the listing of leftovers (which only tells) use it, so
//! what `list-games --install-dir` announces is what the next command does. An entry whose
//! name romlib never writes, a link, or a state no romlib operation leaves (a `.old` whose
//! game folder is the user's own, a `.del` beside a folder that is not a kept one) is
//! [`Plan::LeaveAlone`]: reported, never touched.

use super::carry::{kept_note, retire_copy, Carry};
use super::names::{resume_name, staging_name, Resumed, Role, Staged, StagingName};
use super::{is_kept, is_ours, sync_dirs, RESUME_DIR, STAGING_DIR};
use crate::error::Result;
use crate::folder::{shown, unexpected, Entry, Folder, Kind};
use std::path::PathBuf;

/// What will be done with one staging or resume entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// A reinstall's replaced copy (`.old`, or `.new` just after a one-step swap) beside
    /// the new game: carry the user's files into the game, remove what the copy owns.
    FinishSwap(String),
    /// A reinstall cut off between its two renames (no game folder): rename the copy back.
    RollBack(String),
    /// An interrupted uninstall: carry the user's files into a kept folder, remove the
    /// rest of what the game owns.
    FinishUninstall(String),
    /// A complete install never swapped in: remove what it owns.
    DropComplete(String),
    /// An unfinished install or repair: remove it (it lies in romlib's own staging
    /// folder, holds only what romlib wrote, and is removed without following a link).
    Remove(String),
    /// An empty staging folder (a removal cut off after the markers went): remove it.
    RemoveEmpty(String),
    /// A cut-off download kept for reuse (only `cleanup` removes it).
    Resume(String),
    /// A complete install of a game placed without a folder, cut off while its files were
    /// put in place (or before): finish putting them in place.
    FinishFlat(String),
    /// An interrupted uninstall of a game placed without a folder: remove what its record
    /// names.
    FinishFlatUninstall(String),
    /// Not romlib's, or not in a state romlib leaves: reported and left alone.
    LeaveAlone(String),
}

/// An entry of the staging or resume folder and its plan.
#[derive(Debug, Clone)]
pub struct Found {
    /// The entry.
    pub path: PathBuf,
    /// Bytes below it.
    pub bytes: u64,
    /// What will be done.
    pub plan: Plan,
    /// The parsed name (staging entries of games only).
    staged: Option<Staged>,
    /// In the resume folder.
    resume: bool,
}

impl Found {
    /// For people: what it is and what the next command does with it.
    pub fn describe(&self) -> String {
        match &self.plan {
            Plan::FinishSwap(t) if self.staged.as_ref().is_some_and(|s| s.role == Role::New) => {
                format!("a complete copy of {t} from an interrupted reinstall (the next install or `cleanup` carries any files of yours into {t} and removes it)")
            }
            Plan::FinishSwap(t) | Plan::RollBack(t) => format!(
                "the previous version of {t} from an interrupted reinstall (finished by the next install or `cleanup`)"
            ),
            Plan::FinishUninstall(t) => format!(
                "an interrupted uninstall of {t} (finished by the next install or `cleanup`)"
            ),
            Plan::DropComplete(t) => format!(
                "a complete install of {t} that was never put in place (removed by the next install or `cleanup`)"
            ),
            Plan::Remove(t) => match self.staged.as_ref().map(|s| s.role) {
                Some(Role::Repair) => format!("an unfinished repair of {t}, the game untouched (removed by the next install or `cleanup`)"),
                Some(_) => format!("an unfinished install of {t} (removed by the next install or `cleanup`)"),
                None => "a scratch download file (removed by the next install or `cleanup`)".to_string(),
            },
            Plan::RemoveEmpty(t) => format!(
                "an empty staging folder of {t} left by an interrupted operation (removed by the next install or `cleanup`)"
            ),
            Plan::Resume(t) => format!(
                "a cut-off download of {t}, reused by its next install (`cleanup` removes it)"
            ),
            Plan::FinishFlat(t) => format!(
                "a complete install of {t} being put in place (finished by the next install or `cleanup`)"
            ),
            Plan::FinishFlatUninstall(t) => format!(
                "an interrupted uninstall of {t} (finished by the next install or `cleanup`)"
            ),
            Plan::LeaveAlone(why) => format!("left alone: {why}"),
        }
    }

    /// Whether romlib leaves it alone.
    pub fn left_alone(&self) -> bool {
        matches!(self.plan, Plan::LeaveAlone(_))
    }
}

/// The kind of an entry of `inst`, and the folder if it is one.
fn game_dir(inst: &Folder, title: &str) -> Result<(Kind, Option<Folder>)> {
    let kind = inst.kind(title)?;
    let dir = if kind == Kind::Dir {
        inst.sub(title)?
    } else {
        None
    };
    Ok((kind, dir))
}

/// Why the game folder `title` (of kind `kind`, opened as `dir`) stops romlib.
fn not_romlibs(title: &str, kind: Kind, dir: Option<&Folder>) -> String {
    match (kind, dir) {
        (Kind::Dir, Some(d)) if !is_ours(d) => {
            format!("{title} beside it is not a game romlib installed")
        }
        (Kind::Dir, _) => format!("{title} beside it is a game romlib installed"),
        (k, _) => format!("{title} beside it is {}", k.describe()),
    }
}

/// What a staging entry is and what to do with it.
fn plan_staging(inst: &Folder, staging: &Folder, e: &Entry) -> Result<(Plan, Option<Staged>)> {
    let shown = shown(std::path::Path::new(&e.name));
    let s = match staging_name(&e.name, e.kind) {
        Some(StagingName::Game(s)) => s,
        Some(StagingName::Download) => return Ok((Plan::Remove(String::new()), None)),
        None => {
            let why = if e.kind == Kind::Symlink {
                format!("{shown} is a symbolic link, which romlib never makes")
            } else {
                format!("{shown} is not a name romlib writes")
            };
            return Ok((Plan::LeaveAlone(why), None));
        }
    };
    let name = s.name();
    let entry = staging.sub_dir(&name)?;
    let (ours, kept) = (is_ours(&entry), is_kept(&entry));
    let empty = entry.entries()?.is_empty();
    let (kind, live) = game_dir(inst, &s.title)?;
    let live_ours = live.as_ref().is_some_and(is_ours);
    let live_kept = live.as_ref().is_some_and(|d| !is_ours(d) && is_kept(d));
    // Listed only where it decides (an uninstall's kept folder, created before its note).
    let live_empty = || {
        live.as_ref()
            .is_some_and(|d| d.entries().is_ok_and(|e| e.is_empty()))
    };
    let t = s.title.clone();
    // A game placed without a folder: its staged copy is the journal (see `flat`).
    if ours && super::flat::is_flat(&entry) {
        let plan = match s.role {
            Role::New => Plan::FinishFlat(t),
            Role::Del => Plan::FinishFlatUninstall(t),
            _ => Plan::LeaveAlone(format!(
                "{shown} holds the record of a game placed without a folder, which no romlib \
                 operation leaves there"
            )),
        };
        return Ok((plan, Some(s)));
    }
    let plan = match s.role {
        _ if empty => Plan::RemoveEmpty(t),
        Role::Repair => Plan::Remove(t),
        Role::Old | Role::New if (ours || kept) && live_ours => Plan::FinishSwap(t),
        Role::Old if (ours || kept) && kind == Kind::Missing => Plan::RollBack(t),
        Role::New if ours => Plan::DropComplete(t),
        Role::New if !kept => Plan::Remove(t),
        // The kept folder is created, then its note written: a kill in between leaves it
        // empty.
        Role::Del if ours && (kind == Kind::Missing || live_kept || live_empty()) => {
            Plan::FinishUninstall(t)
        }
        _ if !(ours || kept) => Plan::LeaveAlone(format!(
            "{shown} holds no completion marker, so it is not a copy romlib made"
        )),
        _ => Plan::LeaveAlone(format!(
            "{shown} holds a game's files, but {}",
            not_romlibs(&s.title, kind, live.as_ref())
        )),
    };
    Ok((plan, Some(s)))
}

/// Everything in the staging and resume folders of install folder `inst`, with its plan;
/// a staging or resume folder that is not a folder is one entry left alone.
pub fn survey(inst: &Folder) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for (dir, resume) in [(STAGING_DIR, false), (RESUME_DIR, true)] {
        let kind = inst.kind(dir)?;
        if kind == Kind::Missing {
            continue;
        }
        if kind != Kind::Dir {
            out.push(Found {
                path: inst.at(dir),
                bytes: 0,
                plan: Plan::LeaveAlone(format!(
                    "{dir} is {}, not a folder romlib made; romlib will not use it",
                    kind.describe()
                )),
                staged: None,
                resume,
            });
            continue;
        }
        let folder = inst.sub_dir(dir)?;
        for e in folder.entries()? {
            let bytes = folder.tree_bytes(&e.name);
            let (plan, staged) = if resume {
                match resume_name(&e.name, e.kind) {
                    Some(r) => (Plan::Resume(r.title().to_string()), None),
                    None => (
                        Plan::LeaveAlone(format!(
                            "{} is not a name romlib writes",
                            shown(std::path::Path::new(&e.name))
                        )),
                        None,
                    ),
                }
            } else {
                plan_staging(inst, &folder, &e)?
            };
            out.push(Found {
                path: folder.at(&e.name),
                bytes,
                plan,
                staged,
                resume,
            });
        }
    }
    Ok(out)
}

/// What [`recover_in`] did, and everything it found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// What was finished, rolled back or removed, for people.
    pub done: Vec<String>,
    /// Every entry surveyed before acting, with its bytes then; an entry that could not be
    /// finished has a [`Plan::LeaveAlone`] saying why.
    pub found: Vec<Found>,
}

impl Recovered {
    /// The entries left alone.
    pub fn left_alone(&self) -> impl Iterator<Item = &Found> {
        self.found.iter().filter(|f| f.left_alone())
    }

    /// One line for each entry left alone: its path and why.
    pub fn lines(&self) -> Vec<String> {
        self.left_alone()
            .map(|f| format!("{}: {}", shown(&f.path), f.describe()))
            .collect()
    }
}

/// Finishes or rolls back what interrupted installs, reinstalls, uninstalls and repairs
/// left in install folder `inst`, as [`survey`] plans; with `resume`, removes the cut-off
/// downloads too. Entries left alone are not touched; an entry that cannot be finished
/// (an error part-way) stays, and is reported as left alone with its error.
pub fn recover_in(inst: &Folder, resume: bool) -> Result<Recovered> {
    let mut r = Recovered {
        found: survey(inst)?,
        ..Recovered::default()
    };
    if r.found.is_empty() {
        return Ok(r);
    }
    for f in &mut r.found {
        if f.left_alone() {
            continue;
        }
        match act(inst, f, resume) {
            Ok(Some(done)) => r.done.push(done),
            Ok(None) => {}
            Err(e) => f.plan = Plan::LeaveAlone(format!("could not be finished: {e}")),
        }
    }
    for dir in [STAGING_DIR, RESUME_DIR] {
        let _ = inst.remove_empty_dir(std::ffi::OsStr::new(dir));
    }
    inst.sync()?;
    Ok(r)
}

/// Carries out `f`'s plan; what was done, for people.
fn act(inst: &Folder, f: &Found, resume: bool) -> Result<Option<String>> {
    let name = f
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if f.resume {
        if !resume || !matches!(f.plan, Plan::Resume(_)) {
            return Ok(None);
        }
        let folder = inst.sub_dir(RESUME_DIR)?;
        match resume_name(std::ffi::OsStr::new(&name), folder.kind(&name)?) {
            Some(Resumed::Files(_)) => folder.remove_tree(std::ffi::OsStr::new(&name))?,
            Some(Resumed::Manifest(_)) => {
                folder.remove_file(&name)?;
            }
            None => {}
        }
        return Ok(None);
    }
    let Some(staging) = inst.sub(STAGING_DIR)? else {
        return Ok(None);
    };
    match &f.plan {
        Plan::LeaveAlone(_) | Plan::Resume(_) => Ok(None),
        Plan::RemoveEmpty(t) => {
            staging.remove_empty_dir(std::ffi::OsStr::new(&name))?;
            Ok(Some(format!(
                "removed the empty staging folder {name} of {t}"
            )))
        }
        Plan::Remove(t) => {
            if f.staged.is_none() {
                staging.remove_file(&name)?;
                return Ok(None);
            }
            staging.remove_tree(std::ffi::OsStr::new(&name))?;
            Ok(Some(format!(
                "removed {name} ({} bytes) left by an interrupted {} of {t}",
                f.bytes,
                if f.staged.as_ref().is_some_and(|s| s.role == Role::Repair) {
                    "repair"
                } else {
                    "install"
                }
            )))
        }
        Plan::FinishSwap(t) => {
            let kept = retire(&staging, &name, inst, t, Carry::IntoGame)?;
            Ok(Some(format!(
                "removed the replaced copy of {t}{}",
                kept_note(", carrying", &kept)
            )))
        }
        Plan::RollBack(t) => {
            staging.rename_noreplace(&name, inst, t)?;
            sync_dirs(&inst.sub_dir(t)?)?;
            Ok(Some(format!("rolled back an interrupted reinstall of {t}")))
        }
        Plan::FinishUninstall(t) => {
            let kept = retire(&staging, &name, inst, t, Carry::IntoKeptFolder)?;
            Ok(Some(format!(
                "finished uninstalling {t}{}",
                kept_note(", leaving", &kept)
            )))
        }
        Plan::FinishFlat(t) => {
            super::flat::commit(inst, &staging, &name, t)?;
            let mut alone = Vec::new();
            if inst.sub(t)?.is_some_and(|d| is_ours(&d)) {
                super::uninstall::retire_folder_game(inst, &staging, t, &mut alone)?;
            }
            Ok(Some(format!("finished installing {t}")))
        }
        Plan::FinishFlatUninstall(t) => {
            super::flat::finish_uninstall(inst, &staging, &name, t)?;
            Ok(Some(format!("finished uninstalling {t}")))
        }
        Plan::DropComplete(t) => {
            retire(&staging, &name, inst, t, Carry::No)?;
            Ok(Some(format!(
                "removed a complete install of {t} that was never put in place"
            )))
        }
    }
}

/// [`retire_copy`], then an error if anything the game does not own is still in the
/// entry (it stays, and is reported with the error).
fn retire(
    staging: &Folder,
    name: &str,
    inst: &Folder,
    title: &str,
    carry: Carry,
) -> Result<Vec<String>> {
    let (kept, gone) = retire_copy(staging, name, inst, title, carry)?;
    if gone {
        return Ok(kept);
    }
    Err(unexpected(
        staging.at(name),
        Kind::Dir,
        "only a game's own files here (what else it holds was left)",
    ))
}
