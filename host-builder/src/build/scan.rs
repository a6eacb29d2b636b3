//! Finding the games and files of an input folder, in a deterministic order.

use super::sidecar::{Sidecar, SIDECAR_NAME};
use crate::error::{Error, Result};
use romlib_format::limits::{MAX_FILES, MAX_FILE_SIZE, MAX_PATH_DEPTH};
use romlib_format::path::{check_path, check_title_id, fold_cmp, windows_reserved, PathError};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
    /// Its `romlib.toml`, or the default when it has none.
    pub sidecar: Sidecar,
}

impl GameInput {
    /// Sum of the file sizes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// What the scan skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanReport {
    /// Junk files skipped.
    pub junk_files: u64,
    /// Their bytes.
    pub junk_bytes: u64,
    /// Files directly in the input folder (not in a game folder), skipped.
    pub loose_files: u64,
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

/// Whether a directory name is file-manager junk (skipped whole).
fn is_junk_dir(name: &str) -> bool {
    matches!(
        name,
        "__MACOSX" | ".Spotlight-V100" | ".Trashes" | ".fseventsd" | ".TemporaryItems"
    )
}

fn utf8_name(path: &Path, name: &std::ffi::OsStr) -> Result<String> {
    name.to_str().map(str::to_string).ok_or_else(|| {
        Error::input(
            path,
            "file name is not valid UTF-8; rename it (manifests store UTF-8 paths)",
        )
    })
}

/// Scans `input`: each sub-directory is a game.
pub fn scan(input: &Path, opts: ScanOptions) -> Result<(Vec<GameInput>, ScanReport)> {
    let meta = fs::metadata(input).map_err(|e| {
        Error::io_or_missing(input, "read input folder", e, "input folder does not exist")
    })?;
    if !meta.is_dir() {
        return Err(Error::input(input, "input is not a folder"));
    }
    let mut report = ScanReport::default();
    let mut games = Vec::new();
    for (name, path, ft) in sorted_entries(input)? {
        if ft.is_dir() {
            let title = utf8_name(&path, std::ffi::OsStr::new(&name))?;
            if is_junk_dir(&title) && !opts.include_junk {
                continue;
            }
            // A title names files in the library (`games/<title>.manifest`) and the
            // install folder, so one Windows cannot create is refused on every system.
            let reserved = windows_reserved(&title).map(|_| PathError::WindowsReserved);
            reserved
                .map_or_else(|| check_title_id(&title), Err)
                .map_err(|p| {
                    Error::input(
                        &path,
                        format!(
                            "game folder name is not a usable title id: it {p}; rename the folder"
                        ),
                    )
                })?;
            let mut files = Vec::new();
            walk(&path, "", 0, opts, &mut files, &mut report)?;
            // The metadata sidecar describes the game; it is not one of its files.
            let sidecar = match files.iter().position(|f| f.rel == SIDECAR_NAME) {
                Some(i) => Sidecar::load(&files.remove(i).abs)?,
                None => Sidecar::default(),
            };
            if files.is_empty() {
                return Err(Error::input(&path, "game folder holds no files"));
            }
            if files.len() > MAX_FILES as usize {
                return Err(Error::input(
                    &path,
                    format!(
                        "{} files exceed the limit of {MAX_FILES} per game",
                        files.len()
                    ),
                ));
            }
            files.sort_by(|a, b| a.rel.cmp(&b.rel));
            check_collisions(&path, &files)?;
            games.push(GameInput {
                title,
                dir: path,
                files,
                sidecar,
            });
        } else {
            let n = name.to_string_lossy();
            if is_junk(&n) {
                report.junk_files += 1;
            } else {
                report.loose_files += 1;
            }
        }
    }
    // Title ids become folder names on case-insensitive cards too.
    let mut titles: Vec<&GameInput> = games.iter().collect();
    titles.sort_by(|a, b| fold_cmp(&a.title, &b.title));
    for w in titles.windows(2) {
        if fold_cmp(&w[0].title, &w[1].title).is_eq() {
            return Err(Error::input(
                &w[1].dir,
                format!(
                    "title {:?} differs from {:?} only by case",
                    w[1].title, w[0].title
                ),
            ));
        }
    }
    games.sort_by(|a, b| a.title.cmp(&b.title));
    if games.is_empty() && !opts.allow_empty {
        let loose = match report.loose_files {
            0 => String::new(),
            1 => " (1 file lies directly in it, outside any game folder)".into(),
            n => format!(" ({n} files lie directly in it, outside any game folder)"),
        };
        return Err(Error::input(
            input,
            format!(
                "no game folders to build{loose}: the input needs one sub-folder per game, \
                 named by its title id; --allow-empty builds anyway"
            ),
        ));
    }
    Ok((games, report))
}

type Entry = (std::ffi::OsString, PathBuf, fs::FileType);

fn sorted_entries(dir: &Path) -> Result<Vec<Entry>> {
    let rd = fs::read_dir(dir).map_err(|e| Error::io(dir, "read folder", e))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, "read folder", e))?;
        let path = e.path();
        // Follow symbolic links: the device has none, so their targets are stored. A
        // Windows device name is not followed (on Windows that would open the device): the
        // walk refuses it by name.
        let reserved = e
            .file_name()
            .to_str()
            .is_some_and(|n| windows_reserved(n).is_some());
        let ft = if reserved {
            e.file_type()
        } else {
            fs::metadata(&path).map(|m| m.file_type())
        }
        .map_err(|err| Error::io(&path, "stat", err))?;
        out.push((e.file_name(), path, ft));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    opts: ScanOptions,
    out: &mut Vec<InputFile>,
    report: &mut ScanReport,
) -> Result<()> {
    if depth >= MAX_PATH_DEPTH {
        return Err(Error::input(
            dir,
            "folders nested deeper than the format allows",
        ));
    }
    for (name, path, ft) in sorted_entries(dir)? {
        let name = utf8_name(&path, &name)?;
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        // Before anything opens it: on Windows opening `CON` or `nul.txt` opens the device.
        if let Some(bad) = windows_reserved(&name).filter(|_| !opts.allow_non_fat_names) {
            return Err(Error::input(
                &path,
                format!(
                    "name cannot be used on Windows: {bad:?} {}; rename it or pass \
                     --allow-non-fat-names",
                    PathError::WindowsReserved
                ),
            ));
        }
        if ft.is_dir() {
            if is_junk_dir(&name) && !opts.include_junk {
                continue;
            }
            walk(&path, &rel, depth + 1, opts, out, report)?;
            continue;
        }
        if !ft.is_file() {
            return Err(Error::input(
                &path,
                "not a regular file (device, socket or pipe)",
            ));
        }
        let meta = fs::metadata(&path).map_err(|e| Error::io(&path, "stat", e))?;
        if is_junk(&name) && !opts.include_junk {
            report.junk_files += 1;
            report.junk_bytes += meta.len();
            continue;
        }
        check_path(&rel, !opts.allow_non_fat_names).map_err(|p| match p {
            PathError::NotFatSafe => Error::input(
                &path,
                format!(
                    "name cannot be stored on FAT32/exFAT cards: it {p}; rename it or pass \
                     --allow-non-fat-names"
                ),
            ),
            other => Error::input(&path, format!("unusable path: it {other}")),
        })?;
        if meta.len() > MAX_FILE_SIZE {
            return Err(Error::input(
                &path,
                "file is larger than the format's 1 TiB limit",
            ));
        }
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            meta.permissions().mode() & 0o777
        };
        #[cfg(not(unix))]
        let mode = if meta.permissions().readonly() {
            0o444
        } else {
            0o644
        };
        out.push(InputFile {
            rel,
            abs: path,
            size: meta.len(),
            mode,
            mtime: meta.modified().ok(),
            stamp: stamp_of(&meta),
        });
    }
    Ok(())
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
