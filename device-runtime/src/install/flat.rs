//! Placement (SPEC section 7, "Placement"): where a game's files lie in a system folder of a
//! layout, and the install, uninstall and recovery of games whose files lie directly in the
//! system folder rather than in a folder of their own.
//!
//! With `--layout`, a game of one file lies in the system folder as `<title>.<ext>`, a
//! multi-file disc (a `.cue`, `.gdi`, `.ccd`, `.mds` or `.m3u` with its tracks or discs) as
//! its own files there (MinUI and NextUI want those in a folder: there they keep one), and
//! an arcade game that came as an archive as one deterministic zip ([`super::zip`]). Such a
//! game has no folder to hold its completion marker: its record, the same marker, lies in
//! the system folder's `.romlib-games/<title>`. Every other game keeps its folder.
//!
//! A file of the system folder that no record names is the user's (saves beside the ROM,
//! screenshots, a theme's files, another front end's): romlib never replaces or removes
//! one. An install refuses, before anything changes, when a file it would place is there
//! and is not the installed version's.
//!
//! Putting several files in place cannot be one rename. The staged install
//! (`.romlib-staging/<title>.new/`, its marker written last) is the journal: once its
//! marker is there, the install only goes forward. The installed version's record moves
//! into the staged folder first (as `.romlib-replaces`), each new file is renamed into
//! place (over the old version's file of the same name: never a moment without one), the
//! old version's other files are removed, and the new record is renamed into
//! `.romlib-games/` last. A crash anywhere is finished by the next operation's recovery,
//! which repeats the steps not yet done. An uninstall moves the record into
//! `.romlib-staging/<title>.del/` first, then removes the files it names.

use super::names::{staging_entry, Role};
use super::{marker_manifest_at, sync_dirs, zip, MARKER};
use crate::error::{Error, Result};
use crate::folder::{unexpected, Folder, Kind};
use crate::trusted::ManifestFile;
use romlib_format::path::{check_path, check_title_id};
use romlib_format::systems::{self, Layout, System};
use romlib_proto::Manifest;
use std::collections::HashSet;
use std::ffi::OsStr;

/// In a system folder: the records of its games installed without a folder of their own.
pub const RECORDS_DIR: &str = ".romlib-games";
/// In a staged install: the record of the version it replaces, moved there first.
const REPLACES: &str = ".romlib-replaces";

/// Where a game's files lie in its install folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In `<install-dir>/<title>/` (every install without `--layout`).
    Folder,
    /// Directly in the install folder: one file as `<title>.<ext>`, a disc's files by
    /// their own names.
    Files,
    /// As one archive `<set>.zip` in the install folder.
    Zip,
}

impl Placement {
    /// The word the completion marker's `placement` line holds.
    pub fn word(self) -> &'static str {
        match self {
            Placement::Folder => "folder",
            Placement::Files => "files",
            Placement::Zip => "zip",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [Placement::Folder, Placement::Files, Placement::Zip]
            .into_iter()
            .find(|p| p.word() == word)
    }
}

/// Extensions of the files that make a disc of several files.
const SHEETS: &[&str] = &["cue", "gdi", "ccd", "mds", "m3u"];

/// Whether `path` is a disc's sheet or playlist at the top of a game.
fn is_sheet(path: &str) -> bool {
    !path.contains('/')
        && extension(path).is_some_and(|e| SHEETS.iter().any(|s| s.eq_ignore_ascii_case(e)))
}

fn extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then_some(ext)
}

/// Whether `path` may lie in a system folder: one name, or a name in a dot folder (`.hidden/`
/// of muOS and Knulli multi-disc sets), never one of romlib's own names.
fn placeable(path: &str) -> bool {
    check_path(path, true).is_ok()
        && !path.starts_with(".romlib")
        && match path.split_once('/') {
            None => !path.starts_with('.'),
            Some((dir, rest)) => dir.starts_with('.') && !rest.contains('/'),
        }
}

/// The name a game of one file takes in the system folder: the file's own name when the
/// game is titled after it (a game read from a system folder; the ` [gb]` a title takes
/// when it is found in several system folders aside), else its title with the file's
/// extension (`Pocket Demo (PD).gb` for `Pocket Demo (PD)/pocketdemo.gb`).
fn one_file_name(body: &Manifest) -> Option<String> {
    let f = body.files.first()?;
    let title = body.title_id.as_str();
    let untagged = title
        .strip_suffix(']')
        .and_then(|t| t.rsplit_once(" ["))
        .filter(|(_, id)| systems::SYSTEMS.iter().any(|s| s.id == *id))
        .map_or(title, |(t, _)| t);
    let name = match extension(&f.path) {
        _ if stem_of(&f.path) == untagged => f.path.clone(),
        Some(ext)
            if !title
                .to_ascii_lowercase()
                .ends_with(&format!(".{}", ext.to_ascii_lowercase())) =>
        {
            format!("{title}.{ext}")
        }
        _ => title.to_string(),
    };
    (check_title_id(&name).is_ok() && placeable(&name)).then_some(name)
}

/// A file name without its extension.
pub(super) fn stem_of(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s,
        _ => name,
    }
}

/// The archive an arcade game installs as: the name of the archive it came as, with
/// `.zip` (`pacman.7z` gives `pacman.zip`: emulators find a set by this name).
fn zip_name(body: &Manifest) -> Option<String> {
    let a = body.archive.as_ref()?;
    let stem = a.name.rsplit_once('.').map_or(a.name.as_str(), |(s, _)| s);
    let name = format!("{stem}.zip");
    (check_title_id(&name).is_ok() && placeable(&name)).then_some(name)
}

/// How `layout` places game `body` of `system` (SPEC section 7, "Placement").
pub fn choose(layout: &Layout, system: &System, body: &Manifest) -> Placement {
    if systems::wants_archive(system.id) && zip::fits(body) && zip_name(body).is_some() {
        return Placement::Zip;
    }
    let files = &body.files;
    if files.len() == 1 && !files[0].path.contains('/') && one_file_name(body).is_some() {
        return Placement::Files;
    }
    let disc = files.iter().any(|f| is_sheet(&f.path));
    let mut seen = HashSet::new();
    if !layout.discs_in_folder
        && files.len() > 1
        && disc
        && files
            .iter()
            .all(|f| placeable(&f.path) && seen.insert(f.path.to_ascii_lowercase()))
    {
        return Placement::Files;
    }
    Placement::Folder
}

/// The paths, in the install folder, of what a game placed as `placement` owns: for
/// [`Placement::Files`] one per manifest file, in the manifest's order; for
/// [`Placement::Zip`] the archive. An error when the (unverified) manifest cannot be placed
/// that way.
pub fn placed(body: &Manifest, placement: Placement) -> Option<Vec<String>> {
    match placement {
        Placement::Folder => None,
        Placement::Zip => zip_name(body).map(|n| vec![n]),
        Placement::Files if body.files.len() == 1 && !body.files[0].path.contains('/') => {
            one_file_name(body).map(|n| vec![n])
        }
        Placement::Files => body
            .files
            .iter()
            .map(|f| placeable(&f.path).then(|| f.path.clone()))
            .collect(),
    }
}

/// The `placement` line of the marker `name` in `dir` ([`Placement::Folder`] when it has
/// none, as markers written before placement existed).
pub fn marker_placement(dir: &Folder, name: &str) -> Placement {
    let Ok(Some(file)) = dir.open_file(name) else {
        return Placement::Folder;
    };
    let mut head = [0u8; 1024];
    let n = std::io::Read::read(&mut (&file), &mut head).unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]);
    text.split("\n\n")
        .next()
        .unwrap_or("")
        .lines()
        .find_map(|l| l.strip_prefix("placement "))
        .and_then(Placement::parse)
        .unwrap_or(Placement::Folder)
}

/// A game installed without a folder of its own: its record and what it owns.
pub struct Record {
    /// Title id.
    pub title: String,
    /// The manifest the record holds (unverified).
    pub manifest: ManifestFile,
    /// How it is placed.
    pub placement: Placement,
    /// What it owns in the install folder ([`placed`]).
    pub paths: Vec<String>,
}

/// Reads record `name` of folder `dir` (a record, or a staged marker).
fn read_record(dir: &Folder, name: &str, title: &str) -> Option<Record> {
    let placement = marker_placement(dir, name);
    if placement == Placement::Folder {
        return None;
    }
    let manifest = marker_manifest_at(dir, name)?;
    if manifest.unverified_body().title_id != title {
        return None;
    }
    let paths = placed(manifest.unverified_body(), placement)?;
    Some(Record {
        title: title.to_string(),
        manifest,
        placement,
        paths,
    })
}

/// The record of game `title` in install folder `inst`, if there is a readable one.
pub fn record(inst: &Folder, title: &str) -> Result<Option<Record>> {
    let Some(records) = inst.sub(RECORDS_DIR)? else {
        return Ok(None);
    };
    if records.kind(title)? != Kind::File {
        return Ok(None);
    }
    Ok(read_record(&records, title, title))
}

/// Every readable record of install folder `inst` (names that are not valid title ids, and
/// anything but regular files, are not records).
pub fn records(inst: &Folder) -> Result<Vec<Record>> {
    let Some(records) = inst.sub(RECORDS_DIR)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in records.entries()? {
        let Some(title) = e.name_str() else { continue };
        if e.kind != Kind::File || check_title_id(title).is_err() {
            continue;
        }
        if let Some(r) = read_record(&records, title, title) {
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.title.cmp(&b.title));
    Ok(out)
}

/// The folder of `inst` that holds `path`'s last component, created on the way when
/// `create`; `None` if it does not exist.
fn parent(inst: &Folder, path: &str, create: bool) -> Result<Option<(Folder, String)>> {
    match path.rsplit_once('/') {
        None => Ok(Some((inst.try_clone()?, path.to_string()))),
        Some((dir, name)) => {
            let d = if create {
                Some(inst.ensure_path(dir)?)
            } else {
                inst.sub_path(dir)?
            };
            Ok(d.map(|d| (d, name.to_string())))
        }
    }
}

/// Refuses, naming it, a file where the new version would place one unless the installed
/// version (`old`) owns it.
fn check_free(inst: &Folder, new: &Folder, paths: &[String], old: &[String]) -> Result<()> {
    for p in paths {
        if new.open_file_path(p)?.is_none() {
            continue; // already in place
        }
        let Some((dir, name)) = parent(inst, p, false)? else {
            continue;
        };
        match dir.kind(&name)? {
            Kind::Missing => {}
            Kind::File if old.contains(p) => {}
            Kind::File => {
                return Err(Error::NotOurs {
                    path: dir.at(&name),
                })
            }
            k => {
                return Err(unexpected(
                    dir.at(&name),
                    k,
                    "a file of the game, or nothing",
                ))
            }
        }
    }
    Ok(())
}

/// Removes the regular file `path` of `inst` if it is there (never a link or folder), and
/// a dot folder it leaves empty.
fn remove_placed(inst: &Folder, path: &str) -> Result<()> {
    let Some((dir, name)) = parent(inst, path, false)? else {
        return Ok(());
    };
    if dir.kind(&name)? == Kind::File {
        dir.remove_file(&name)?;
    }
    if let Some((d, _)) = path.split_once('/') {
        inst.remove_empty_dir(OsStr::new(d))?;
    }
    Ok(())
}

/// Checks, before an install changes anything, that the files of `body` placed as
/// `placement` (staged in `new`) may go in place in `inst`.
pub(super) fn precheck(
    inst: &Folder,
    new: &Folder,
    body: &Manifest,
    placement: Placement,
) -> Result<()> {
    let paths = placed(body, placement).ok_or_else(|| {
        Error::manifest(
            new.path(),
            "the game's files cannot be placed in the system folder",
        )
    })?;
    let old = record(inst, &body.title_id)?
        .map(|r| r.paths)
        .unwrap_or_default();
    check_free(inst, new, &paths, &old)
}

/// Renames the files of `body`, streamed into `new` by their manifest paths, to what they
/// are called in place ([`placed`]): a game of one file takes its title's name, an archive
/// is written from the members (then removed). Returns the file a front end lists.
pub(super) fn stage(new: &Folder, body: &Manifest, placement: Placement) -> Result<String> {
    let paths = placed(body, placement).ok_or_else(|| {
        Error::manifest(
            new.path(),
            "the game's files cannot be placed in the system folder",
        )
    })?;
    match placement {
        Placement::Folder => {}
        Placement::Zip => {
            const SCRATCH: &str = ".romlib-zip";
            let out = new.create_file(SCRATCH, 0o644)?;
            zip::write(new, body, out, &new.at(SCRATCH))?;
            zip::drop_members(new, body)?;
            new.rename_noreplace(SCRATCH, new, &paths[0])?;
        }
        Placement::Files => {
            if body.files.len() == 1 && body.files[0].path != paths[0] {
                new.rename_noreplace(&body.files[0].path, new, &paths[0])?;
            }
        }
    }
    Ok(listed(&paths).to_string())
}

/// Of the paths a game placed without a folder owns, the one a front end lists: the
/// `.m3u` of a multi-disc set, else the sheet of a disc, else the only file.
pub fn listed(paths: &[String]) -> &str {
    let sheet = |p: &&String| is_sheet(p);
    paths
        .iter()
        .filter(sheet)
        .find(|p| p.to_ascii_lowercase().ends_with(".m3u"))
        .or_else(|| paths.iter().find(sheet))
        .or(paths.first())
        .map_or("", String::as_str)
}

/// Puts the complete staged install `new_name` of game `title` in place in `inst` (see the
/// module's documentation); repeats only the steps not yet done, so recovery calls it too.
pub(super) fn commit(inst: &Folder, staging: &Folder, new_name: &str, title: &str) -> Result<()> {
    let new = staging.sub_dir(new_name)?;
    // The paths only: no file of the staged copy stays open while it is moved and removed.
    let rec_paths = read_record(&new, MARKER, title)
        .ok_or_else(|| Error::manifest(new.at(MARKER), "a staged install without its placement"))?
        .paths;
    let records = inst.ensure_sub(RECORDS_DIR)?;
    let old = match record(inst, title)? {
        Some(old) if new.kind(REPLACES)? == Kind::Missing => {
            check_free(inst, &new, &rec_paths, &old.paths)?;
            records.rename(title, &new, REPLACES)?;
            records.sync()?;
            new.sync()?;
            old.paths
        }
        _ => {
            let old = read_record(&new, REPLACES, title)
                .map(|r| r.paths)
                .unwrap_or_default();
            check_free(inst, &new, &rec_paths, &old)?;
            old
        }
    };
    for p in &rec_paths {
        let Some((from, name)) = parent(&new, p, false)? else {
            continue;
        };
        if from.kind(&name)? != Kind::File {
            continue; // moved before a crash
        }
        let (to, _) = parent(inst, p, true)?.expect("created");
        from.rename(&name, &to, &name)?;
        to.sync()?;
    }
    inst.sync()?;
    for p in old.iter().filter(|p| !rec_paths.contains(p)) {
        remove_placed(inst, p)?;
    }
    new.rename(MARKER, &records, title)?;
    records.sync()?;
    staging.remove_tree(OsStr::new(new_name))?;
    staging.sync()
}

/// Uninstalls game `title`, placed without a folder in `inst`: its record moves into the
/// staging entry `<title>.del` first, then [`finish_uninstall`].
pub(super) fn uninstall(inst: &Folder, staging: &Folder, title: &str) -> Result<()> {
    let records = inst.sub_dir(RECORDS_DIR)?;
    let del_name = staging_entry(title, Role::Del);
    let del = staging.create_dir(&del_name)?;
    records.rename(title, &del, MARKER)?;
    records.sync()?;
    sync_dirs(&del)?;
    finish_uninstall(inst, staging, &del_name, title)?;
    let _ = inst.remove_empty_dir(OsStr::new(RECORDS_DIR));
    Ok(())
}

/// Removes what the record in staging entry `del_name` names, then the entry.
pub(super) fn finish_uninstall(
    inst: &Folder,
    staging: &Folder,
    del_name: &str,
    title: &str,
) -> Result<()> {
    let del = staging.sub_dir(del_name)?;
    // The paths only: the record's file is closed before the entry is removed (Windows
    // cannot remove a folder while a file in it is open).
    let paths = read_record(&del, MARKER, title)
        .ok_or_else(|| Error::manifest(del.at(MARKER), "an uninstall's record does not read"))?
        .paths;
    for p in &paths {
        remove_placed(inst, p)?;
    }
    inst.sync()?;
    staging.remove_tree(OsStr::new(del_name))?;
    staging.sync()
}

/// The bytes of what `paths` name in `inst` (regular files only).
pub fn placed_bytes(inst: &Folder, paths: &[String]) -> u64 {
    paths
        .iter()
        .filter_map(|p| parent(inst, p, false).ok().flatten())
        .map(|(d, n)| d.tree_bytes(OsStr::new(&n)))
        .sum()
}

/// Whether staging entry `dir` holds a marker of a game placed without a folder.
pub(super) fn is_flat(dir: &Folder) -> bool {
    marker_placement(dir, MARKER) != Placement::Folder
}

#[cfg(test)]
mod tests {
    use super::*;
    use romlib_proto::{FileEntry, SourceArchive};

    fn game(title: &str, paths: &[&str]) -> Manifest {
        Manifest {
            title_id: title.into(),
            files: paths
                .iter()
                .map(|p| FileEntry {
                    path: p.to_string(),
                    crc32: Some(1),
                    size: 10,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn placements() {
        let (muos, minui) = (&systems::LAYOUTS[0], &systems::LAYOUTS[2]);
        let gb = systems::system("gb").unwrap();
        let psx = systems::system("psx").unwrap();
        let arcade = systems::system("arcade").unwrap();
        let one = game("Tetris (World)", &["tetris.gb"]);
        assert_eq!(choose(muos, gb, &one), Placement::Files);
        assert_eq!(
            placed(&one, Placement::Files).unwrap(),
            ["Tetris (World).gb"]
        );
        let disc = game(
            "Game (USA)",
            &["Game (USA).cue", "Game (USA) (Track 1).bin"],
        );
        assert_eq!(choose(muos, psx, &disc), Placement::Files);
        assert_eq!(choose(minui, psx, &disc), Placement::Folder);
        assert_eq!(
            placed(&disc, Placement::Files).unwrap(),
            ["Game (USA).cue", "Game (USA) (Track 1).bin"]
        );
        let m3u = game(
            "G",
            &["G.m3u", ".hidden/G (Disc 1).chd", ".hidden/G (Disc 2).chd"],
        );
        assert_eq!(choose(muos, psx, &m3u), Placement::Files);
        // Several files and no sheet, or a folder inside: a folder of its own.
        assert_eq!(
            choose(muos, gb, &game("D", &["a.gb", "b.gb"])),
            Placement::Folder
        );
        assert_eq!(
            choose(muos, psx, &game("D", &["D.cue", "sub/t.bin"])),
            Placement::Folder
        );
        assert_eq!(
            choose(muos, psx, &game("D", &["D.cue", ".romlib-games"])),
            Placement::Folder
        );
        let mut set = game("Pac-Man (Midway)", &["pacman.6e", "pacman.6f"]);
        assert_eq!(choose(muos, arcade, &set), Placement::Folder);
        set.archive = Some(SourceArchive {
            format: "7z".into(),
            name: "pacman.7z".into(),
        });
        assert_eq!(choose(muos, arcade, &set), Placement::Zip);
        assert_eq!(placed(&set, Placement::Zip).unwrap(), ["pacman.zip"]);
        // Without a member's CRC the archive cannot be written: a folder.
        set.files[0].crc32 = None;
        assert_eq!(choose(muos, arcade, &set), Placement::Folder);
        // A game read from system folders keeps its file's name, the system tag aside.
        assert_eq!(
            placed(
                &game("Tetris (World) [gb]", &["Tetris (World).gb"]),
                Placement::Files
            )
            .unwrap(),
            ["Tetris (World).gb"]
        );
        // A title that already ends with the extension keeps it once.
        assert_eq!(
            placed(&game("x.gb", &["y.gb"]), Placement::Files).unwrap(),
            ["x.gb"]
        );
    }
}
