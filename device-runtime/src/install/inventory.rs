//! What an install folder holds: the games romlib installed, folders of user files left by
//! an uninstall, and what interrupted operations left behind (staging, cut-off downloads),
//! with the space each takes; and the cleanup that removes the leftovers.

use super::{exchanged, is_ours, recover, remove_tree, KEPT_MARKER, RESUME_DIR, STAGING_DIR};
use crate::chunks::reuse::tree_bytes;
use crate::error::{Error, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// A game folder in an install folder.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Its title id (the folder's name).
    pub title: String,
    /// The folder.
    pub path: PathBuf,
    /// Bytes of every file in it (the user's included).
    pub bytes: u64,
    /// `"installed"`, or `"kept"` for the user's files an uninstall left.
    pub state: &'static str,
}

/// Something an interrupted operation left in an install folder, hidden from the user.
#[derive(Debug, Clone)]
pub struct Leftover {
    /// The file or folder.
    pub path: PathBuf,
    /// Bytes it takes.
    pub bytes: u64,
    /// What it is, for people.
    pub what: String,
}

/// The games of `install_dir` (sorted by title; an install folder that does not exist yet
/// holds none).
pub fn installed_games(install_dir: &Path) -> Result<Vec<Installed>> {
    let rd = match fs::read_dir(install_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(install_dir, "read directory", e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(install_dir, "read directory", e))?;
        let title = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if title.starts_with('.') || !path.is_dir() {
            continue;
        }
        let state = if is_ours(&path) {
            "installed"
        } else if path.join(KEPT_MARKER).is_file() {
            "kept"
        } else {
            continue;
        };
        out.push(Installed {
            bytes: tree_bytes(&path),
            title,
            path,
            state,
        });
    }
    out.sort_by(|a, b| a.title.cmp(&b.title));
    Ok(out)
}

/// What interrupted installs, reinstalls and uninstalls left in `install_dir`.
pub fn leftovers(install_dir: &Path) -> Result<Vec<Leftover>> {
    let mut out = Vec::new();
    for (dir, kind) in [(STAGING_DIR, Kind::Staging), (RESUME_DIR, Kind::Resume)] {
        let dir = install_dir.join(dir);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&dir, "read directory", e)),
        };
        let mut names: Vec<String> = Vec::new();
        for e in rd {
            let e = e.map_err(|e| Error::io(&dir, "read directory", e))?;
            names.push(e.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let bytes = if path.is_dir() {
                tree_bytes(&path)
            } else {
                fs::metadata(&path).map_or(0, |m| m.len())
            };
            // A `.new` that a one-step swap may just have filled with the replaced copy is
            // not an unfinished install.
            let swapped = name
                .strip_suffix(".new")
                .is_some_and(|t| exchanged(&path, &install_dir.join(t)));
            out.push(Leftover {
                what: kind.describe(&name, swapped),
                path,
                bytes,
            });
        }
    }
    Ok(out)
}

/// Finishes or rolls back interrupted operations in `install_dir` (as every install does
/// first), then removes every cut-off download kept for reuse. Returns what was done, and
/// the leftovers found before, with the bytes they took.
pub fn cleanup(install_dir: &Path) -> Result<(Vec<String>, Vec<Leftover>)> {
    if !install_dir.is_dir() {
        return Err(Error::NotFound {
            path: install_dir.to_path_buf(),
            what: "install folder",
        });
    }
    let found = leftovers(install_dir)?;
    let mut done = recover(install_dir)?;
    let resume = install_dir.join(RESUME_DIR);
    if resume.exists() {
        remove_tree(&resume)?;
        done.push(format!(
            "removed the cut-off downloads kept in {}",
            resume.display()
        ));
    }
    let staging = install_dir.join(STAGING_DIR);
    let _ = fs::remove_dir(&staging);
    Ok((done, found))
}

/// Which hidden folder a leftover is in.
#[derive(Clone, Copy)]
enum Kind {
    Staging,
    Resume,
}

impl Kind {
    /// `swapped`: `name` is a `.new` that [`exchanged`] takes for a reinstall's replaced
    /// copy.
    fn describe(self, name: &str, swapped: bool) -> String {
        match self {
            Kind::Staging => {
                if let Some(t) = name.strip_suffix(".new").filter(|_| swapped) {
                    // The replaced copy of a one-step swap, or a complete install cut off
                    // just before its swap: both are finished the same way.
                    format!("a complete copy of {t} from an interrupted reinstall (the next install or `cleanup` carries any files of yours into {t} and removes it)")
                } else if let Some(t) = name.strip_suffix(".old") {
                    format!("the previous version of {t} from an interrupted reinstall (finished by the next install or `cleanup`)")
                } else if let Some(t) = name.strip_suffix(".new") {
                    format!(
                        "an unfinished install of {t} (removed by the next install or `cleanup`)"
                    )
                } else if let Some(t) = name.strip_suffix(".repair") {
                    format!("an unfinished repair of {t}, the game untouched (removed by the next install or `cleanup`)")
                } else if let Some(t) = name.strip_suffix(".del") {
                    format!("an interrupted uninstall of {t} (finished by the next install or `cleanup`)")
                } else {
                    format!("stale staging {name} (removed by the next install or `cleanup`)")
                }
            }
            Kind::Resume => {
                let t = name.strip_suffix(".manifest").unwrap_or(name);
                format!(
                    "a cut-off download of {t}, reused by its next install (`cleanup` removes it)"
                )
            }
        }
    }
}

/// The one line `list-games --install-dir` and a finished install print about leftovers.
pub fn leftovers_note(found: &[Leftover]) -> Option<String> {
    if found.is_empty() {
        return None;
    }
    let bytes: u64 = found.iter().map(|l| l.bytes).sum();
    Some(format!(
        "{} left by interrupted operations take {bytes} bytes; `romlib-device cleanup --install-dir DIR` removes them",
        count(found.len(), "hidden item", "hidden items"),
    ))
}

/// `n` and the noun, in singular or plural.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
