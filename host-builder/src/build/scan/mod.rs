//! Finding the games and files of an input folder, in a deterministic order.
//!
//! Two layouts (SPEC section 1): game folders (each sub-folder of the input is a game) and
//! system folders (each sub-folder is a system's folder, in which each file is a game, each
//! sub-folder is a game, and the files of a multi-file disc are one game: [`discs`]). The
//! listing itself ([`walk`]) skips what cannot be game data instead of failing the build.

mod discs;
mod walk;

use super::archive::{ArchiveKind, Member};
use super::sidecar::{Sidecar, SIDECAR_NAME};
use crate::error::{Error, Result};
use romlib_format::limits::MAX_FILES;
use romlib_format::path::{check_path, check_title_id, fold_cmp, windows_reserved, PathError};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use walk::{is_junk_dir, Entry, Kind, Walker};

/// How an input folder holds its games (`--input-layout`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InputLayout {
    /// Detect: system folders when the input's folders are named after systems.
    #[default]
    Auto,
    /// One sub-folder per game.
    GameFolders,
    /// One sub-folder per system, holding the games as files, discs and folders.
    SystemFolders,
}

impl InputLayout {
    /// The name `--input-layout` takes.
    pub fn name(self) -> &'static str {
        match self {
            InputLayout::Auto => "auto",
            InputLayout::GameFolders => "game-folders",
            InputLayout::SystemFolders => "system-folders",
        }
    }
}

impl std::str::FromStr for InputLayout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [
            InputLayout::Auto,
            InputLayout::GameFolders,
            InputLayout::SystemFolders,
        ]
        .into_iter()
        .find(|l| l.name() == s)
        .ok_or_else(|| format!("{s:?}: expected auto, game-folders or system-folders"))
    }
}

/// What the scan keeps and refuses.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// Keep file-manager junk (`.DS_Store`, `Thumbs.db`, `desktop.ini`, `._*`).
    pub include_junk: bool,
    /// Accept names FAT32/exFAT cannot store.
    pub allow_non_fat_names: bool,
    /// Accept an input with no game folder (refused by default: it is almost always the
    /// wrong folder).
    pub allow_empty: bool,
    /// How the input holds its games.
    pub layout: InputLayout,
    /// Refuse the build instead of skipping what cannot be read (dangling links, sockets,
    /// unreadable files, broken disc sheets).
    pub strict: bool,
    /// Follow symbolic links that lead outside the input.
    pub follow_symlinks: bool,
}

/// One file of a game.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Path relative to the game folder, `/`-separated.
    pub rel: String,
    /// Where it is on disk.
    pub abs: PathBuf,
    /// Size when scanned.
    pub size: u64,
    /// Unix permission bits.
    pub mode: u32,
    /// Modification time when scanned (to notice a file that changes during the build).
    pub mtime: Option<SystemTime>,
    /// What else the file system says changes with the file: on Unix its status-change
    /// time in nanoseconds (no tool can set it), inode and device; the creation time
    /// elsewhere. With the size and mtime, the input cache's evidence that a file is the
    /// one built before ([`super::input_cache`]).
    pub stamp: [i128; 3],
}

/// The [`InputFile::stamp`] of `meta`.
pub fn stamp_of(meta: &fs::Metadata) -> [i128; 3] {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        [
            i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            i128::from(meta.ino()),
            i128::from(meta.dev()),
        ]
    }
    #[cfg(not(unix))]
    {
        let created = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(-1, |d| d.as_nanos() as i128);
        [created, 0, 0]
    }
}

/// One game folder.
#[derive(Debug, Clone)]
pub struct GameInput {
    /// The folder's name.
    pub title: String,
    /// The folder.
    pub dir: PathBuf,
    /// Its files, sorted by path.
    pub files: Vec<InputFile>,
    /// Its `romlib.toml`, or the default when it has none; in a system folder its system
    /// defaults to the folder's.
    pub sidecar: Sidecar,
    /// The name of its system folder when the system table does not know it: recorded as
    /// its system when neither the sidecar nor `--system` names one.
    pub folder_system: Option<String>,
    /// Set when the game is one archive: its files are the members, in its order.
    pub archive: Option<SourceArchive>,
}

/// The archive a game is read from.
#[derive(Debug, Clone)]
pub struct SourceArchive {
    /// Its format.
    pub kind: ArchiveKind,
    /// The archive.
    pub path: PathBuf,
    /// Its size when scanned.
    pub len: u64,
    /// Its members, one per file of the game, in the same order.
    pub members: Vec<Member>,
}

impl GameInput {
    /// Its system as far as the input says: its sidecar's, else its system folder's.
    pub fn system(&self) -> Option<&str> {
        self.sidecar
            .system
            .as_deref()
            .or(self.folder_system.as_deref())
    }

    /// Where it comes from, for messages: its folder, or its file in a system folder.
    fn origin(&self) -> String {
        match self.files.first() {
            Some(f) if f.abs.parent() == Some(self.dir.as_path()) => f.abs.display().to_string(),
            _ => self.dir.display().to_string(),
        }
    }

    /// Sum of the file sizes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// What the scan found and skipped.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// The layout it went by.
    pub layout: InputLayout,
    /// With system folders: each folder's system, in order.
    pub systems: Vec<String>,
    /// Junk files skipped.
    pub junk_files: u64,
    /// Their bytes.
    pub junk_bytes: u64,
    /// Files directly in the input folder (not in a game folder), skipped.
    pub loose_files: u64,
    /// Emulator saves and states in system folders, skipped.
    pub save_files: u64,
    /// Front-end lists in system folders (`gamelist.xml`), skipped.
    pub front_end_files: u64,
    /// What could not be read as game data, and why, skipped.
    pub skipped: Vec<(PathBuf, String)>,
    /// Libraries inside the input (the one being built among them), left out.
    pub libraries_skipped: Vec<PathBuf>,
    /// Games titled with their system because the title is in several system folders.
    pub qualified: u64,
}

/// Whether a name is file-manager junk rather than game data.
pub fn is_junk(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with("._")
        || matches!(
            lower.as_str(),
            ".ds_store" | "thumbs.db" | "desktop.ini" | "ehthumbs.db" | ".directory"
        )
}

/// Extensions of files an emulator writes beside a game (saves, states, real-time clock):
/// the player's, not game data, so a system folder copied back from a card does not turn
/// them into games.
fn is_save(name: &str) -> bool {
    let Some((_, ext)) = name.rsplit_once('.') else {
        return false;
    };
    let ext = ext.to_ascii_lowercase();
    matches!(
        ext.as_str(),
        "sav" | "srm" | "rtc" | "eep" | "sra" | "fla" | "mpk" | "state" | "auto"
    ) || ext
        .strip_prefix("state")
        .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        || ext
            .strip_prefix("st")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// What front ends keep in a system folder beside the games: lists, art, videos.
fn is_front_end(name: &str, is_dir: bool) -> bool {
    let lower = name.to_ascii_lowercase();
    if is_dir {
        matches!(
            lower.as_str(),
            "images"
                | "videos"
                | "media"
                | "manuals"
                | "downloaded_images"
                | "downloaded_videos"
                | "imgs"
                | ".res"
                | "boxart"
                | "snap"
                | "snaps"
                | "titles"
        )
    } else {
        matches!(
            lower.as_str(),
            "gamelist.xml" | "gamelist.xml.old" | "miyoogamelist.xml"
        )
    }
}

/// The sidecar of a game in a system folder: `<title>.romlib.toml` beside it.
const SIDE_SIDECAR_EXT: &str = ".romlib.toml";

/// Scans `input` for games, laid out as `opts.layout` says (or as detected). `output`, the
/// library being built, is left out wherever it lies inside the input.
pub fn scan(
    input: &Path,
    output: Option<&Path>,
    opts: ScanOptions,
) -> Result<(Vec<GameInput>, ScanReport)> {
    let meta = fs::metadata(input).map_err(|e| {
        Error::io_or_missing(input, "read input folder", e, "input folder does not exist")
    })?;
    if !meta.is_dir() {
        return Err(Error::input(input, "input is not a folder"));
    }
    let root = fs::canonicalize(input).map_err(|e| Error::io(input, "read input folder", e))?;
    let output = output.and_then(canonical_output);
    let mut w = Walker::new(root.clone(), output, opts);
    let top = w.entries(input, &root)?;
    let mut games = Vec::new();
    match choose_layout(input, &root, &top, opts.layout)? {
        Chosen::GameFolders => {
            w.report.layout = InputLayout::GameFolders;
            for e in top {
                match e.kind {
                    Kind::Dir(canon) => {
                        if is_junk_dir(&e.name) && !opts.include_junk {
                            continue;
                        }
                        if let Some(g) = game_folder(&mut w, &e.name, &e.path, &canon, None, None)?
                        {
                            games.push(g);
                        }
                    }
                    Kind::Reserved { is_dir: true } => {
                        check_title(&e.path, &e.name, "game folder name")?;
                    }
                    _ if e.name == SIDECAR_NAME => {
                        return Err(Error::input(
                            input,
                            format!(
                                "this looks like one game's folder (it holds {SIDECAR_NAME}): \
                                 point -i at the folder that holds the game folders"
                            ),
                        ))
                    }
                    _ => loose(&mut w, &e),
                }
            }
        }
        Chosen::SystemFolders { single } => {
            w.report.layout = InputLayout::SystemFolders;
            if let Some(system) = single {
                w.report.systems.push(system.name.clone());
                system_folder(&mut w, input, &system, top, &mut games)?;
            } else {
                for e in top {
                    match e.kind {
                        Kind::Dir(canon) => {
                            if is_junk_dir(&e.name) && !opts.include_junk {
                                continue;
                            }
                            let system = system_of(&e.name);
                            w.report.systems.push(system.name.clone());
                            let entries = w.entries(&e.path, &canon)?;
                            system_folder(&mut w, &e.path, &system, entries, &mut games)?;
                        }
                        _ => loose(&mut w, &e),
                    }
                }
            }
            qualify_across_systems(&mut games, &mut w.report);
        }
    }
    let report = w.report;
    // Title ids become folder names on case-insensitive cards too.
    let mut titles: Vec<&GameInput> = games.iter().collect();
    titles.sort_by(|a, b| fold_cmp(&a.title, &b.title));
    for p in titles.windows(2) {
        if fold_cmp(&p[0].title, &p[1].title).is_eq() {
            let same = p[0].title == p[1].title;
            return Err(Error::input(
                &p[1].dir,
                match same {
                    true => format!(
                        "two games would be titled {:?}: {} and {}; rename one",
                        p[1].title,
                        p[0].origin(),
                        p[1].origin()
                    ),
                    false => format!(
                        "title {:?} differs from {:?} only by case",
                        p[1].title, p[0].title
                    ),
                },
            ));
        }
    }
    games.sort_by(|a, b| a.title.cmp(&b.title));
    if games.is_empty() && !opts.allow_empty {
        return Err(Error::input(input, nothing_to_build(&report)));
    }
    Ok((games, report))
}

/// Why an input gave no game, and what to do.
fn nothing_to_build(report: &ScanReport) -> String {
    let loose = match report.loose_files {
        0 => String::new(),
        1 => " (1 file lies directly in it, outside any game folder)".into(),
        n => format!(" ({n} files lie directly in it, outside any game folder)"),
    };
    match (report.layout, report.loose_files) {
        (InputLayout::SystemFolders, _) => {
            format!("no games to build in its system folders{loose}; --allow-empty builds anyway")
        }
        (_, 0) => "no game folders to build: the input needs one sub-folder per game, named by \
                   its title id, or system folders (--input-layout system-folders); \
                   --allow-empty builds anyway"
            .into(),
        _ => format!(
            "no game folders to build{loose}: if it is one game's folder, point -i at the \
             folder that holds it; if each file is a game, pass --input-layout system-folders \
             (and --system NAME); --allow-empty builds anyway"
        ),
    }
}

/// The library's canonical path when it exists (or its parent does).
fn canonical_output(output: &Path) -> Option<PathBuf> {
    if let Ok(p) = fs::canonicalize(output) {
        return Some(p);
    }
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(fs::canonicalize(parent).ok()?.join(output.file_name()?))
}

/// A file directly in the input, outside any game: counted, not built.
fn loose(w: &mut Walker, e: &Entry) {
    match is_junk(&e.name) {
        true => w.report.junk_files += 1,
        false => w.report.loose_files += 1,
    }
}

/// The layout a scan goes by.
enum Chosen {
    GameFolders,
    /// Each sub-folder of the input is a system folder; or, with `single`, the input is
    /// the one system folder, of that system.
    SystemFolders {
        single: Option<FolderSystem>,
    },
}

/// The system recorded for games of folder `name`: the table's id when it knows the name,
/// else the name as written.
fn system_of(name: &str) -> FolderSystem {
    match romlib_format::systems::system(name) {
        Some(s) => FolderSystem {
            name: s.id.to_string(),
            known: true,
        },
        None => FolderSystem {
            name: name.to_string(),
            known: false,
        },
    }
}

/// The system a system folder stands for.
struct FolderSystem {
    /// The table's id, or the folder's name.
    name: String,
    /// Whether the table knows it: a known system is recorded before `--system`, an
    /// unknown folder name after it.
    known: bool,
}

/// Picks the layout: as asked, or (auto) system folders when every sub-folder is named
/// after a known system, or when the input itself (canonical: `root`) is a system's folder
/// holding files.
fn choose_layout(input: &Path, root: &Path, top: &[Entry], asked: InputLayout) -> Result<Chosen> {
    let dirs: Vec<&Entry> = top
        .iter()
        .filter(|e| matches!(e.kind, Kind::Dir(_)) && !is_junk_dir(&e.name))
        .collect();
    let systems: Vec<&&Entry> = dirs
        .iter()
        .filter(|e| romlib_format::systems::system(&e.name).is_some())
        .collect();
    let has_files = top
        .iter()
        .any(|e| !matches!(e.kind, Kind::Dir(_)) && !is_junk(&e.name));
    // The input's own name, as the file system has it (`-i .` names its folder too).
    let own_name = (root.file_name())
        .and_then(|n| n.to_str())
        .map(str::to_string);
    let own_system = own_name
        .as_deref()
        .and_then(romlib_format::systems::system)
        .map(|s| s.id.to_string());
    match asked {
        InputLayout::GameFolders => Ok(Chosen::GameFolders),
        InputLayout::SystemFolders => Ok(match (systems.is_empty(), has_files) {
            // `-i roms/gb`: the input is the system folder.
            (true, true) => Chosen::SystemFolders {
                single: Some(system_of(&own_name.unwrap_or_default())),
            },
            _ => Chosen::SystemFolders { single: None },
        }),
        InputLayout::Auto => {
            if !systems.is_empty() && systems.len() == dirs.len() {
                return Ok(Chosen::SystemFolders { single: None });
            }
            // A few game folders named like systems ("Doom", "Cave Story") among many
            // others: game folders, said so.
            if systems.len() * 2 < dirs.len() {
                return Ok(Chosen::GameFolders);
            }
            if let Some(s) = systems.first() {
                let other = dirs
                    .iter()
                    .find(|d| romlib_format::systems::system(&d.name).is_none())
                    .map_or("", |d| d.name.as_str());
                return Err(Error::input(
                    input,
                    format!(
                        "holds folders named after systems ({:?}) and others ({other:?}): pass \
                         --input-layout system-folders or --input-layout game-folders",
                        s.name
                    ),
                ));
            }
            match (own_system, has_files) {
                (Some(_), true) => Ok(Chosen::SystemFolders {
                    single: own_name.as_deref().map(system_of),
                }),
                _ => Ok(Chosen::GameFolders),
            }
        }
    }
}

/// The game of folder `dir` (canonical `canon`): all its files, its `romlib.toml` (or
/// `beside`, a sidecar next to it), the files of `claimed` left out. `None` when claiming
/// left nothing.
fn game_folder(
    w: &mut Walker,
    title: &str,
    dir: &Path,
    canon: &Path,
    beside: Option<&Path>,
    claimed: Option<&std::collections::HashSet<String>>,
) -> Result<Option<GameInput>> {
    check_title(dir, title, "game folder name")?;
    let mut files = Vec::new();
    w.files(dir, canon, "", 0, &mut files)?;
    if let Some(claimed) = claimed {
        files.retain(|f| !claimed.contains(&f.rel));
        if files.is_empty() {
            return Ok(None);
        }
    }
    // The metadata sidecar describes the game; it is not one of its files.
    let inside = files.iter().position(|f| f.rel == SIDECAR_NAME);
    let sidecar = match (inside, beside) {
        (Some(_), Some(b)) => {
            return Err(Error::input(
                b,
                format!("the game has its own {SIDECAR_NAME} too: keep one of them"),
            ))
        }
        (Some(i), None) => Sidecar::load(&files.remove(i).abs)?,
        (None, Some(b)) => Sidecar::load(b)?,
        (None, None) => Sidecar::default(),
    };
    if files.is_empty() {
        return Err(Error::input(dir, "game folder holds no files"));
    }
    finish_game(title, dir, files, sidecar).map(Some)
}

/// The game of archive `f` (a file of system folder `dir`): its members as files, in the
/// archive's order. `None` when it is skipped (encrypted, a bomb, unreadable...).
fn archive_game(
    w: &mut Walker,
    title: &str,
    dir: &Path,
    f: InputFile,
    kind: ArchiveKind,
    sidecar: Sidecar,
) -> Result<Option<GameInput>> {
    let members = match super::archive::list(&f.abs, kind)? {
        Ok(m) => m,
        Err(problem) => {
            w.skip(&f.abs, format!("archive not read: {problem}"))?;
            return Ok(None);
        }
    };
    let mut kept = Vec::with_capacity(members.len());
    let mut files = Vec::with_capacity(members.len());
    for m in members {
        let name = m.name.rsplit('/').next().unwrap_or(&m.name);
        let junk = is_junk(name) || m.name.split('/').any(is_junk_dir);
        if junk && !w.opts.include_junk {
            w.report.junk_files += 1;
            w.report.junk_bytes += m.size;
            continue;
        }
        let bad = check_path(&m.name, !w.opts.allow_non_fat_names)
            .err()
            .or_else(|| {
                (windows_reserved(&m.name).is_some() && !w.opts.allow_non_fat_names)
                    .then_some(PathError::WindowsReserved)
            });
        if let Some(p) = bad {
            let hint = match p {
                PathError::NotFatSafe | PathError::WindowsReserved => {
                    "; --allow-non-fat-names accepts it"
                }
                _ => "",
            };
            w.skip(
                &f.abs,
                format!("archive not read: member {:?}: it {p}{hint}", m.name),
            )?;
            return Ok(None);
        }
        files.push(InputFile {
            rel: m.name.clone(),
            abs: f.abs.clone(),
            size: m.size,
            mode: 0o644,
            mtime: f.mtime,
            stamp: f.stamp,
        });
        kept.push(m);
    }
    if files.is_empty() {
        w.skip(&f.abs, "archive not read: it holds no file")?;
        return Ok(None);
    }
    if files.len() > MAX_FILES as usize {
        w.skip(
            &f.abs,
            format!(
                "archive not read: {} members exceed the limit of {MAX_FILES} per game",
                files.len()
            ),
        )?;
        return Ok(None);
    }
    check_collisions(&f.abs, &files)?;
    Ok(Some(GameInput {
        title: title.to_string(),
        dir: dir.to_path_buf(),
        files,
        sidecar,
        folder_system: None,
        archive: Some(SourceArchive {
            kind,
            path: f.abs,
            len: f.size,
            members: kept,
        }),
    }))
}

/// A game from its files, checked.
fn finish_game(
    title: &str,
    dir: &Path,
    mut files: Vec<InputFile>,
    sidecar: Sidecar,
) -> Result<GameInput> {
    if files.len() > MAX_FILES as usize {
        return Err(Error::input(
            dir,
            format!(
                "{} files exceed the limit of {MAX_FILES} per game",
                files.len()
            ),
        ));
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    check_collisions(dir, &files)?;
    Ok(GameInput {
        title: title.to_string(),
        dir: dir.to_path_buf(),
        files,
        sidecar,
        folder_system: None,
        archive: None,
    })
}

/// A title id must name files in the library and on cards: one Windows cannot create is
/// refused on every system.
fn check_title(path: &Path, title: &str, what: &str) -> Result<()> {
    let reserved = windows_reserved(title).map(|_| PathError::WindowsReserved);
    reserved
        .map_or_else(|| check_title_id(title), Err)
        .map_err(|p| {
            Error::input(
                path,
                format!("{what} is not a usable title id: it {p}; rename it"),
            )
        })
}

/// The games of one system folder `dir` (listed as `entries`): each file
/// a game, each sub-folder a game, the files of a multi-file disc one game.
fn system_folder(
    w: &mut Walker,
    dir: &Path,
    system: &FolderSystem,
    entries: Vec<Entry>,
    games: &mut Vec<GameInput>,
) -> Result<()> {
    let include_junk = w.opts.include_junk;
    // Every file of the folder, sub-folders' too, relative to it: sheets may name files
    // in a sub-folder (a playlist's discs in `.hidden/`).
    let mut top_files: Vec<InputFile> = Vec::new();
    let mut sidecars = std::collections::BTreeMap::new();
    let mut subdirs = Vec::new();
    for e in entries {
        match e.kind {
            Kind::Dir(c) => {
                if (is_junk_dir(&e.name) && !include_junk) || is_front_end(&e.name, true) {
                    continue;
                }
                subdirs.push((e.name, e.path, c));
            }
            Kind::Reserved { is_dir: true } => {
                check_title(&e.path, &e.name, "game folder name")?;
            }
            Kind::Reserved { .. } if !w.opts.allow_non_fat_names => {
                return Err(walk::reserved_error(&e.path, &e.name))
            }
            Kind::Reserved { .. } => {}
            Kind::File(meta) => {
                if let Some(t) = e.name.strip_suffix(SIDE_SIDECAR_EXT) {
                    sidecars.insert(t.to_string(), e.path);
                } else if e.name == SIDECAR_NAME {
                    return Err(Error::input(
                        &e.path,
                        format!(
                            "{SIDECAR_NAME} in a system folder describes no game: name it \
                             <title>{SIDE_SIDECAR_EXT} beside its game"
                        ),
                    ));
                } else if is_save(&e.name) {
                    w.report.save_files += 1;
                } else if is_front_end(&e.name, false) {
                    w.report.front_end_files += 1;
                } else if let Some(f) = w.file(e.name.clone(), &e.path, &e.name, meta)? {
                    top_files.push(f);
                }
            }
        }
    }
    // Sheets may reach into sub-folders, so their files are listed too.
    let mut sub_files: Vec<(usize, Vec<InputFile>)> = Vec::new();
    let mut rels: Vec<String> = top_files.iter().map(|f| f.rel.clone()).collect();
    for (i, (name, path, c)) in subdirs.iter().enumerate() {
        let mut files = Vec::new();
        w.files(path, c, name, 1, &mut files)?;
        rels.extend(files.iter().map(|f| f.rel.clone()));
        sub_files.push((i, files));
    }
    rels.sort();
    let groups = discs::groups(dir, &rels)?;
    let claimed: std::collections::HashSet<String> = groups
        .iter()
        .flat_map(|g| g.members.iter().cloned())
        .collect();
    let mut all: std::collections::HashMap<String, InputFile> = top_files
        .into_iter()
        .chain(sub_files.iter().flat_map(|(_, f)| f.iter().cloned()))
        .map(|f| (f.rel.clone(), f))
        .collect();
    let mut found: Vec<GameInput> = Vec::new();
    let mut sidecar_for = |title: &str| -> Result<Sidecar> {
        let mut sc = match sidecars.remove(title) {
            Some(p) => Sidecar::load(&p)?,
            None => Sidecar::default(),
        };
        if system.known {
            sc.system.get_or_insert_with(|| system.name.clone());
        }
        Ok(sc)
    };
    for g in groups {
        if let Some((sheet, problem)) = &g.problem {
            w.skip(&dir.join(sheet), format!("disc not built: {problem}"))?;
            continue;
        }
        check_title(&dir.join(&g.members[0]), &g.title, "disc sheet name")?;
        let files = g.members.iter().filter_map(|m| all.remove(m)).collect();
        let sc = sidecar_for(&g.title)?;
        found.push(finish_game(&g.title, dir, files, sc)?);
    }
    // One-file games.
    let mut singles: Vec<InputFile> = all
        .into_values()
        .filter(|f| !f.rel.contains('/') && !claimed.contains(&f.rel))
        .collect();
    singles.sort_by(|a, b| a.rel.cmp(&b.rel));
    for f in singles {
        let title = discs::stem(&f.rel).to_string();
        let title = if title.is_empty() {
            f.rel.clone()
        } else {
            title
        };
        check_title(&f.abs, &title, "file name (without its extension)")?;
        let sc = sidecar_for(&title)?;
        match ArchiveKind::of(&f.rel) {
            Some(kind) => {
                if let Some(g) = archive_game(w, &title, dir, f, kind, sc)? {
                    found.push(g);
                }
            }
            None => found.push(finish_game(&title, dir, vec![f], sc)?),
        }
    }
    // Folder games, less what sheets claimed. A hidden folder is never a game of its own:
    // it holds a playlist's discs.
    let mut claimed_in: std::collections::HashMap<&str, std::collections::HashSet<String>> =
        Default::default();
    for r in &claimed {
        if let Some((top, rest)) = r.split_once('/') {
            claimed_in.entry(top).or_default().insert(rest.to_string());
        }
    }
    for (i, (name, path, c)) in subdirs.iter().enumerate() {
        let mine = claimed_in.remove(name.as_str()).unwrap_or_default();
        if name.starts_with('.') {
            let left = sub_files[i].1.len() - mine.len().min(sub_files[i].1.len());
            if left > 0 {
                w.skip(
                    path,
                    format!(
                        "hidden folder: {} that no playlist names",
                        plural(left, "file", "files")
                    ),
                )?;
            }
            continue;
        }
        let beside = sidecars.remove(name.as_str());
        if let Some(mut g) = game_folder(w, name, path, c, beside.as_deref(), Some(&mine))? {
            if system.known {
                g.sidecar.system.get_or_insert_with(|| system.name.clone());
            }
            found.push(g);
        }
    }
    for (title, path) in sidecars {
        w.skip(
            &path,
            format!("metadata for {title:?}, which is no game here"),
        )?;
    }
    // Within one folder, two games of one title are the user's to rename.
    found.sort_by(|a, b| fold_cmp(&a.title, &b.title));
    for p in found.windows(2) {
        if p[0].title == p[1].title {
            return Err(Error::input(
                dir,
                format!(
                    "two games would be titled {:?}: {} and {}; rename one",
                    p[0].title,
                    p[0].origin(),
                    p[1].origin()
                ),
            ));
        }
    }
    if !system.known {
        for g in &mut found {
            g.folder_system = Some(system.name.clone());
        }
    }
    games.extend(found);
    Ok(())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// A title found in several system folders (`Tetris (USA)` for the NES and the Game Boy)
/// becomes `Tetris (USA) [nes]` and `Tetris (USA) [gb]`: title ids are unique in a library.
fn qualify_across_systems(games: &mut [GameInput], report: &mut ScanReport) {
    let mut by_title: std::collections::HashMap<String, Vec<usize>> = Default::default();
    for (i, g) in games.iter().enumerate() {
        by_title.entry(g.title.to_lowercase()).or_default().push(i);
    }
    for idx in by_title.into_values().filter(|v| v.len() > 1) {
        let systems: std::collections::HashSet<&str> =
            idx.iter().filter_map(|&i| games[i].system()).collect();
        if systems.len() < idx.len() {
            continue; // two in one system: refused by the caller, naming both
        }
        for i in idx {
            let g = &mut games[i];
            let system = g.system().unwrap_or_default().to_string();
            g.title = format!("{} [{system}]", g.title);
            report.qualified += 1;
        }
    }
}
fn check_collisions(game: &Path, files: &[InputFile]) -> Result<()> {
    let mut names: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
    names.sort_by(|a, b| fold_cmp(a, b));
    for w in names.windows(2) {
        if fold_cmp(w[0], w[1]).is_eq() {
            return Err(Error::input(
                game,
                format!(
                    "{:?} and {:?} differ only by case and would collide on FAT32/exFAT cards",
                    w[0], w[1]
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_names() {
        for j in [
            ".DS_Store",
            "Thumbs.db",
            "THUMBS.DB",
            "desktop.ini",
            "._game.iso",
        ] {
            assert!(is_junk(j), "{j}");
        }
        for g in ["game.iso", "thumbs.db.bak", "_x", ".hidden"] {
            assert!(!is_junk(g), "{g}");
        }
    }
}
