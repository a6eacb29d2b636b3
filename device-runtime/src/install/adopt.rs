//! Adopt: bringing games already on a card under romlib without moving a byte.
//!
//! A game is adopted when every file its signed manifest names lies where an install would
//! have put it (its folder `<title>/`, or with a layout the flat placement of
//! [`super::flat`]) and is byte for byte what the manifest signs (size and BLAKE3; an
//! archive compared whole with the one an install makes). Adopting writes the game's
//! completion marker (its record, for a game without a folder), by rename, and nothing
//! else: nothing is moved, changed or deleted. Candidates are found by name only (a
//! folder, or a file's name without its extension, that is a title of the library), so
//! only those games' manifests are read, however large the library.

use super::flat::{self, Placement, RECORDS_DIR};
use super::{is_kept, is_ours, layout, lock, open_install_dir, recover_in, write_marker, MARKER};
use crate::error::Result;
use crate::folder::{Folder, Kind};
use crate::library::Library;
use crate::progress::NoProgress;
use crate::trusted::{TrustStore, VerifiedManifest};
use romlib_format::systems::Layout;
use romlib_proto::FileEntry;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What adopt found in one install folder.
#[derive(Debug, Default)]
pub struct Adopted {
    /// Games adopted: title and where the game lies.
    pub matched: Vec<(String, PathBuf)>,
    /// Games of the library found there that are not what the manifest signs: title, where
    /// and what differs (one line).
    pub differed: Vec<(String, PathBuf, String)>,
    /// Entries that are no game of the library (nor one romlib already installed).
    pub unknown: Vec<PathBuf>,
}

/// `Some(problem)` when file `rel` of `dir` is not `f` (missing, another size, other
/// bytes). Reads it once, through no link.
fn differs(dir: &Folder, rel: &str, f: &FileEntry) -> Result<Option<String>> {
    let Some(mut file) = dir.open_file_path(rel)? else {
        return Ok(Some(format!("{rel} is missing")));
    };
    let path = dir.at(rel);
    let len = crate::fsio::file_len(&file, &path)?;
    if len != f.size {
        return Ok(Some(format!("{rel} has {len} bytes, {} signed", f.size)));
    }
    let mut hash = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| crate::Error::io(&path, "read", e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(
        (hash.finalize().as_bytes().as_slice() != f.blake3.as_slice())
            .then(|| format!("{rel} holds other bytes than signed")),
    )
}

/// Whether game `m`, placed as `placement` in `dir` (its files at `paths`), is there byte
/// for byte; `Some(problem)` when not.
fn compare(
    dir: &Folder,
    m: &VerifiedManifest,
    placement: Placement,
    paths: &[String],
) -> Result<Option<String>> {
    if placement == Placement::Zip {
        let Some(file) = dir.open_file(&paths[0])? else {
            return Ok(Some(format!("{} is missing", paths[0])));
        };
        let found = super::zip::check(file, &dir.at(&paths[0]), m.body())?;
        return Ok(
            (found.bad_structure || !found.bad_members.is_empty()).then(|| {
                format!(
                    "{} is not the archive romlib makes of the signed members (members differ: {})",
                    paths[0],
                    if found.bad_members.is_empty() {
                        "none; its headers or order do".to_string()
                    } else {
                        found.bad_members.join(", ")
                    }
                )
            }),
        );
    }
    for (f, rel) in m.body().files.iter().zip(paths) {
        if let Some(problem) = differs(dir, rel, f)? {
            return Ok(Some(problem));
        }
    }
    Ok(None)
}

/// Adopts, in install folder `dir`, the games of `lib` (`titles`: its titles) found there.
/// With `layout_name` (`dir` is then one of its system folders), games are looked for
/// where that layout places them, and a game of another system is not taken; without, in
/// folders named after them.
pub fn adopt(
    dir: &Path,
    layout_name: Option<&str>,
    lib: &Library,
    trust: &TrustStore,
    titles: &HashSet<String>,
) -> Result<Adopted> {
    let layout_of: Option<(usize, &Layout, String)> = match layout_name {
        Some(l) => {
            let (col, l) = layout::find_layout(l)?;
            let folder = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Some((col, l, folder))
        }
        None => None,
    };
    let inst = open_install_dir(dir, false)?;
    let _lock = lock(&inst, true, &NoProgress)?;
    recover_in(&inst, false)?;
    let mut out = Adopted::default();
    // What romlib already installed here is claimed.
    let mut claimed: HashSet<String> = HashSet::new();
    for r in flat::records(&inst)? {
        claimed.extend(r.paths);
    }
    let entries = inst.entries()?;
    let mut tried: HashSet<String> = HashSet::new();
    for e in &entries {
        let Some(name) = e.name_str() else { continue };
        if name.starts_with('.') || claimed.contains(name) {
            continue;
        }
        // The title a file or folder would have: its name (a file's without the
        // extension), or with the system's tag a title takes when the library holds the
        // same name for several systems (`Tetris (World) [gb]`).
        let base = match e.kind {
            Kind::Dir => name,
            Kind::File if layout_of.is_some() => flat::stem_of(name),
            _ => continue,
        };
        let tagged: Vec<String> = match &layout_of {
            Some((col, _, folder)) => romlib_format::systems::SYSTEMS
                .iter()
                .filter(|s| s.folders[*col] == Some(folder.as_str()))
                .map(|s| format!("{base} [{}]", s.id))
                .collect(),
            None => Vec::new(),
        };
        if e.kind == Kind::Dir {
            let d = inst.sub_dir(name)?;
            if is_ours(&d) || is_kept(&d) {
                claimed.insert(name.to_string());
                continue;
            }
        }
        let Some(candidate) = std::iter::once(base)
            .chain(tagged.iter().map(String::as_str))
            .find(|t| titles.contains(*t))
        else {
            continue;
        };
        if !tried.insert(candidate.to_string()) {
            continue;
        }
        let m = match lib.open_game(candidate, trust) {
            Ok(m) => m,
            Err(e) => {
                out.differed
                    .push((candidate.to_string(), inst.at(name), e.to_string()));
                continue;
            }
        };
        let body = m.body();
        let placement = match &layout_of {
            None => Placement::Folder,
            Some((col, l, folder)) => {
                let system = match layout::game_system(body) {
                    Ok(s) => s,
                    Err(e) => {
                        out.differed
                            .push((candidate.to_string(), inst.at(name), e.to_string()));
                        continue;
                    }
                };
                let col = *col;
                if system.folders[col] != Some(folder.as_str()) {
                    out.differed.push((
                        candidate.to_string(),
                        inst.at(name),
                        format!(
                            "the library's {candidate} is a {} game, whose folder is {}",
                            system.id,
                            system.folders[col].unwrap_or("none")
                        ),
                    ));
                    continue;
                }
                flat::choose(l, system, body)
            }
        };
        let (root, paths) = match placement {
            // Installed as a folder, a game lies in one named after its title.
            Placement::Folder if e.kind != Kind::Dir || name != candidate => {
                tried.remove(candidate);
                continue;
            }
            Placement::Folder => (
                inst.sub_dir(name)?,
                body.files
                    .iter()
                    .map(|f| f.path.clone())
                    .collect::<Vec<_>>(),
            ),
            p => match flat::placed(body, p) {
                // Only a file of the game finds it (not a save called after it).
                Some(paths) if paths.iter().any(|x| x == name) => (inst.try_clone()?, paths),
                _ => {
                    tried.remove(candidate);
                    continue;
                }
            },
        };
        let at = match placement {
            Placement::Folder => inst.at(name),
            _ => inst.at(flat::listed(&paths)),
        };
        if placement != Placement::Folder {
            claimed.extend(paths.iter().cloned());
        } else {
            claimed.insert(name.to_string());
        }
        match compare(&root, &m, placement, &paths)? {
            Some(problem) => out.differed.push((candidate.to_string(), at, problem)),
            None => {
                mark(&inst, &root, &m, placement)?;
                out.matched.push((candidate.to_string(), at));
            }
        }
    }
    for e in &entries {
        let Some(name) = e.name_str() else { continue };
        if !name.starts_with('.') && !claimed.contains(name) {
            out.unknown.push(inst.at(name));
        }
    }
    Ok(out)
}

/// Writes the completion marker of adopted game `m`: into its folder `root`, or as its
/// record in `inst`'s `.romlib-games/` (never seen half-written: [`write_marker`]).
fn mark(inst: &Folder, root: &Folder, m: &VerifiedManifest, placement: Placement) -> Result<()> {
    let (dir, name) = match placement {
        Placement::Folder => (root.try_clone()?, MARKER.to_string()),
        _ => (inst.ensure_sub(RECORDS_DIR)?, m.body().title_id.clone()),
    };
    write_marker(&dir, &name, m, placement)?;
    dir.sync()
}
