//! `--layout NAME`: installing a game where a handheld OS looks for its system's games,
//! `<install-dir>/<folder>/<title-id>/`, the folder coming from the table in
//! `romlib_format::systems` and the system from the signed manifest.
//!
//! Everything else about an install is unchanged: the system folder is the install
//! directory of that game (its staging, resume and reuse of installed chunks live there),
//! so a reinstall or upgrade with the same layout finds the installed version, and
//! `uninstall --layout` finds the game in whichever of the layout's folders holds it.

use super::flat::{Placement, RECORDS_DIR};
use crate::error::{Error, Result};
use crate::folder::{unexpected, Kind};
use romlib_format::systems::{self, Layout, System, LAYOUTS, SYSTEMS};
use romlib_proto::Manifest;
use std::path::{Path, PathBuf};

/// The layout called `name` and its column in the table, or an error listing the layouts.
pub fn find_layout(name: &str) -> Result<(usize, &'static Layout)> {
    systems::layout(name).ok_or_else(|| Error::Layout {
        subject: format!("layout {name:?}"),
        problem: format!("unknown; layouts: {}", layout_names()),
    })
}

/// "muos, knulli (batocera), ...": every layout, for messages and help.
pub fn layout_names() -> String {
    let names: Vec<String> = LAYOUTS
        .iter()
        .map(|l| {
            if l.aliases.is_empty() {
                l.name.to_string()
            } else {
                format!("{} ({})", l.name, l.aliases.join(", "))
            }
        })
        .collect();
    names.join(", ")
}

/// The system a game is for: its manifest's `system` (from `romlib.toml` or `--system`),
/// else the name of the DAT it was matched to at build time (e.g. "Nintendo - Game Boy"),
/// both signed.
pub fn game_system(body: &Manifest) -> Result<&'static System> {
    let dat = body.dat.as_ref().map(|d| d.source.as_str()).unwrap_or("");
    if let Some(s) = [body.system.as_str(), dat]
        .into_iter()
        .find_map(systems::system)
    {
        return Ok(s);
    }
    let ids: Vec<&str> = SYSTEMS.iter().map(|s| s.id).collect();
    let problem = if body.system.is_empty() && dat.is_empty() {
        "the manifest records no system; rebuild the game with `system = \"...\"` in its \
         romlib.toml, or with --system"
            .to_string()
    } else {
        let named = if body.system.is_empty() {
            dat
        } else {
            &body.system
        };
        format!("system {named:?} is not one --layout knows")
    };
    Err(Error::Layout {
        subject: format!("game {:?}", body.title_id),
        problem: format!("{problem}; known systems: {}", ids.join(", ")),
    })
}

/// The folder `layout` installs game `body` into, `<install_dir>/<system folder>`, and how
/// the game's files lie in it ([`super::flat::choose`]).
pub fn layout_dir(
    install_dir: &Path,
    layout: &str,
    body: &Manifest,
) -> Result<(PathBuf, Placement)> {
    let (col, l) = find_layout(layout)?;
    let system = game_system(body)?;
    match system.folders[col] {
        Some(folder) => {
            let dir = install_dir.join(folder);
            let placement = super::flat::choose(l, system, body);
            // The system folder is inside the install folder: never through a link.
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    Err(unexpected(&dir, Kind::Symlink, "a system folder"))
                }
                Ok(m) if !m.is_dir() => Err(unexpected(&dir, Kind::File, "a system folder")),
                _ => Ok((dir, placement)),
            }
        }
        None => {
            let with: Vec<&str> = (SYSTEMS.iter())
                .filter(|s| s.folders[col].is_some())
                .map(|s| s.id)
                .collect();
            Err(Error::Layout {
                subject: format!("game {:?}", body.title_id),
                problem: format!(
                    "{} has no folder for system {}; it has: {}",
                    l.description,
                    system.id,
                    with.join(", ")
                ),
            })
        }
    }
}

/// Whether `p` is a folder, not a link to one.
fn real_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// Whether system folder `dir` holds the record of `title` placed without a folder.
fn record_file(dir: &Path, title: &str) -> bool {
    real_dir(&dir.join(RECORDS_DIR))
        && std::fs::symlink_metadata(dir.join(RECORDS_DIR).join(title)).is_ok_and(|m| m.is_file())
}

/// When `install_dir` holds folders named as some layout names system folders (`gb`,
/// `Game Boy (GB)`, `FC`), the error that says so: a command that looks only at the
/// folder itself would otherwise report nothing there, as if it held no game.
pub fn needs_layout(install_dir: &Path) -> Option<Error> {
    let mut names: Vec<String> = std::fs::read_dir(install_dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            systems::system(n)
                .is_some_and(|s| s.folders.iter().flatten().any(|f| systems::same_name(f, n)))
        })
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort();
    let more = names.len().saturating_sub(5);
    names.truncate(5);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(Error::Layout {
        subject: install_dir.display().to_string(),
        problem: format!(
            "holds the system folders of a layout ({}{more}); pass --layout NAME to look in \
             them ({})",
            names.join(", "),
            layout_names()
        ),
    })
}

/// The system folders of `layout` that exist under `install_dir`, sorted.
pub fn layout_folders(install_dir: &Path, layout: &str) -> Result<Vec<PathBuf>> {
    let (col, _) = find_layout(layout)?;
    let mut folders: Vec<&str> = SYSTEMS.iter().filter_map(|s| s.folders[col]).collect();
    folders.sort_unstable();
    folders.dedup();
    Ok(folders
        .iter()
        .map(|f| install_dir.join(f))
        .filter(|d| real_dir(d))
        .collect())
}

/// The install directory under `install_dir` holding game `title` in `layout`: the one of
/// the layout's system folders where romlib completed that game. An error names every
/// candidate when none or several hold it.
pub fn installed_dir(install_dir: &Path, layout: &str, title: &str) -> Result<PathBuf> {
    let (col, _) = find_layout(layout)?;
    let mut folders: Vec<&str> = SYSTEMS.iter().filter_map(|s| s.folders[col]).collect();
    folders.sort_unstable();
    folders.dedup();
    let found: Vec<PathBuf> = folders
        .iter()
        .map(|f| install_dir.join(f))
        .filter(|d| real_dir(d) && (real_dir(&d.join(title)) || record_file(d, title)))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::NotFound {
            path: install_dir
                .join(format!("<{layout} system folder>"))
                .join(title),
            what: "installed game",
        }),
        several => {
            let list: Vec<String> = several.iter().map(|d| d.display().to_string()).collect();
            Err(Error::Layout {
                subject: format!("game {title:?}"),
                problem: format!(
                    "installed in several system folders ({}); uninstall with --install-dir \
                     naming one of them and no --layout",
                    list.join(", ")
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game(system: &str, dat: Option<&str>) -> Manifest {
        Manifest {
            title_id: "g".into(),
            system: system.into(),
            dat: dat.map(|d| romlib_proto::DatMatch {
                source: d.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn folders_per_layout() {
        let root = Path::new("/sd");
        let nes = game("nes", None);
        for (layout, folder) in [
            ("muos", "nes"),
            ("knulli", "nes"),
            ("batocera", "nes"),
            ("minui", "Nintendo Entertainment System (FC)"),
            ("onion", "FC"),
            ("arkos", "nes"),
        ] {
            assert_eq!(layout_dir(root, layout, &nes).unwrap().0, root.join(folder));
        }
        let gb = game("", Some("Nintendo - Game Boy (20240101-000000)"));
        assert_eq!(
            layout_dir(root, "minui", &gb).unwrap().0,
            root.join("Game Boy (GB)")
        );
        // The manifest's system wins over the DAT's name.
        let md = game("Sega Genesis", Some("Nintendo - Game Boy"));
        assert_eq!(
            layout_dir(root, "knulli", &md).unwrap().0,
            root.join("megadrive")
        );
    }

    #[test]
    fn errors_list_what_exists() {
        let root = Path::new("/sd");
        let e = layout_dir(root, "garlic", &game("nes", None))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("layout \"garlic\": unknown; layouts: muos, knulli (batocera)"),
            "{e}"
        );
        let e = layout_dir(root, "muos", &game("Bally Astrocade", None))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("game \"g\": system \"Bally Astrocade\" is not one"),
            "{e}"
        );
        assert!(e.contains("known systems: nes, fds, snes"), "{e}");
        let e = layout_dir(root, "muos", &game("", None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("records no system") && e.contains("--system"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }
}
