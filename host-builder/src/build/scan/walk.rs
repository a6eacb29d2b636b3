//! Listing input folders on hostile ground: what a folder holds, with what cannot be read
//! as game data skipped (and reported) instead of stopping the build, the library itself
//! left out, and symbolic links followed only inside the input unless asked.

use super::{is_junk, stamp_of, InputFile, ScanOptions, ScanReport};
use crate::error::{Error, Result};
use romlib_format::limits::{MAX_FILE_SIZE, MAX_PATH_DEPTH};
use romlib_format::path::{check_path, windows_reserved, PathError};
use std::fs;
use std::path::{Path, PathBuf};

/// What an entry of a folder is.
pub(super) enum Kind {
    /// A folder, with its canonical path (where a symbolic link leads).
    Dir(PathBuf),
    /// A readable regular file.
    File(fs::Metadata),
    /// A name Windows reserves for a device: not opened, refused by name by the caller;
    /// whether it is a folder (not following links).
    Reserved { is_dir: bool },
}

/// One usable entry of a folder.
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) path: PathBuf,
    pub(super) kind: Kind,
}

/// Whether a folder name is file-manager junk (skipped whole).
pub(super) fn is_junk_dir(name: &str) -> bool {
    matches!(
        name,
        "__MACOSX" | ".Spotlight-V100" | ".Trashes" | ".fseventsd" | ".TemporaryItems"
    )
}

/// The name as UTF-8, or the error a manifest path needs.
pub(super) fn utf8_name(path: &Path, name: &std::ffi::OsStr) -> Result<String> {
    name.to_str().map(str::to_string).ok_or_else(|| {
        Error::input(
            path,
            "file name is not valid UTF-8; rename it (manifests store UTF-8 paths)",
        )
    })
}

/// Lists folders of one input.
pub(super) struct Walker {
    pub(super) opts: ScanOptions,
    /// The input folder, canonical: a link leading outside it is not followed.
    root: PathBuf,
    /// The library being built, canonical, when it lies inside the input.
    output: Option<PathBuf>,
    pub(super) report: ScanReport,
}

impl Walker {
    pub(super) fn new(root: PathBuf, output: Option<PathBuf>, opts: ScanOptions) -> Self {
        Walker {
            opts,
            root,
            output,
            report: ScanReport::default(),
        }
    }

    /// Leaves `path` out of the build with `reason`; with `--strict`, refuses the build.
    pub(super) fn skip(&mut self, path: &Path, reason: impl Into<String>) -> Result<()> {
        let reason = reason.into();
        if self.opts.strict {
            return Err(Error::input(path, format!("{reason} (--strict)")));
        }
        self.report.skipped.push((path.to_path_buf(), reason));
        Ok(())
    }

    /// The entries of folder `dir` (canonical path `canon`), sorted by name. Dangling or
    /// outward symbolic links, sockets, pipes, devices and what cannot be read are skipped
    /// one by one; the library being built and any other romlib library are left out.
    pub(super) fn entries(&mut self, dir: &Path, canon: &Path) -> Result<Vec<Entry>> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            // The input itself must be readable; a folder inside it is one entry.
            Err(e) if canon != self.root => {
                self.skip(dir, format!("folder cannot be read: {e}"))?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(Error::io(dir, "read folder", e)),
        };
        let mut listed = Vec::new();
        for e in rd {
            let e = e.map_err(|e| Error::io(dir, "read folder", e))?;
            // The listing's own type, not a lookup by path: on Windows a path ending in
            // `AUX` names the device.
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            listed.push((e.file_name(), e.path(), is_dir));
        }
        listed.sort();
        let mut out = Vec::with_capacity(listed.len());
        for (name, path, is_dir) in listed {
            let name = utf8_name(&path, &name)?;
            // Before anything opens it: on Windows opening `CON` or `nul.txt` opens the
            // device.
            if windows_reserved(&name).is_some() {
                out.push(Entry {
                    name,
                    path,
                    kind: Kind::Reserved { is_dir },
                });
                continue;
            }
            if let Some(kind) = self.classify(&path, &canon.join(&name))? {
                out.push(Entry { name, path, kind });
            }
        }
        Ok(out)
    }

    /// What `path` is, or `None` when it is skipped.
    fn classify(&mut self, path: &Path, listed_canon: &Path) -> Result<Option<Kind>> {
        let lmeta = fs::symlink_metadata(path).map_err(|e| Error::io(path, "stat", e))?;
        let (meta, canon) = if lmeta.file_type().is_symlink() {
            let target = match fs::canonicalize(path) {
                Ok(t) => t,
                Err(e) => {
                    let why = match e.kind() {
                        std::io::ErrorKind::NotFound => "dangling symbolic link".to_string(),
                        _ => format!("symbolic link that cannot be followed: {e}"),
                    };
                    self.skip(path, why)?;
                    return Ok(None);
                }
            };
            if !self.opts.follow_symlinks && !target.starts_with(&self.root) {
                self.skip(
                    path,
                    format!(
                        "symbolic link to {} outside the input (--follow-symlinks follows it)",
                        target.display()
                    ),
                )?;
                return Ok(None);
            }
            // A link back to a folder that encloses it would be walked forever.
            if listed_canon.starts_with(&target) {
                self.skip(path, "symbolic link to a folder that encloses it (a loop)")?;
                return Ok(None);
            }
            match fs::metadata(path) {
                Ok(m) => (m, target),
                Err(e) => {
                    self.skip(path, format!("symbolic link that cannot be followed: {e}"))?;
                    return Ok(None);
                }
            }
        } else {
            (lmeta, listed_canon.to_path_buf())
        };
        if meta.is_dir() {
            if self.output.as_deref() == Some(canon.as_path()) {
                self.report.libraries_skipped.push(path.to_path_buf());
                return Ok(None);
            }
            if is_library(path) {
                self.report.libraries_skipped.push(path.to_path_buf());
                return Ok(None);
            }
            return Ok(Some(Kind::Dir(canon)));
        }
        if !meta.is_file() {
            self.skip(path, "not a regular file (socket, pipe or device)")?;
            return Ok(None);
        }
        // Found unreadable now, not halfway through the build.
        if let Err(e) = fs::File::open(path) {
            self.skip(path, format!("file cannot be read: {e}"))?;
            return Ok(None);
        }
        Ok(Some(Kind::File(meta)))
    }

    /// Every file under folder `dir` (canonical `canon`), its path relative to the game
    /// prefixed by `prefix`, appended to `out`.
    pub(super) fn files(
        &mut self,
        dir: &Path,
        canon: &Path,
        prefix: &str,
        depth: usize,
        out: &mut Vec<InputFile>,
    ) -> Result<()> {
        if depth >= MAX_PATH_DEPTH {
            return Err(Error::input(
                dir,
                "folders nested deeper than the format allows",
            ));
        }
        for Entry { name, path, kind } in self.entries(dir, canon)? {
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            match kind {
                Kind::Dir(sub) => {
                    if is_junk_dir(&name) && !self.opts.include_junk {
                        continue;
                    }
                    self.files(&path, &sub, &rel, depth + 1, out)?;
                }
                Kind::Reserved { .. } => {
                    if !self.opts.allow_non_fat_names {
                        return Err(reserved_error(&path, &name));
                    }
                    let meta =
                        fs::symlink_metadata(&path).map_err(|e| Error::io(&path, "stat", e))?;
                    if let Some(f) = self.file(rel, &path, &name, meta)? {
                        out.push(f);
                    }
                }
                Kind::File(meta) => {
                    if let Some(f) = self.file(rel, &path, &name, meta)? {
                        out.push(f);
                    }
                }
            }
        }
        Ok(())
    }

    /// The game file at `path`, or `None` when it is junk.
    pub(super) fn file(
        &mut self,
        rel: String,
        path: &Path,
        name: &str,
        meta: fs::Metadata,
    ) -> Result<Option<InputFile>> {
        if is_junk(name) && !self.opts.include_junk {
            self.report.junk_files += 1;
            self.report.junk_bytes += meta.len();
            return Ok(None);
        }
        check_path(&rel, !self.opts.allow_non_fat_names).map_err(|p| match p {
            PathError::NotFatSafe => Error::input(
                path,
                format!(
                    "name cannot be stored on FAT32/exFAT cards: it {p}; rename it or pass \
                     --allow-non-fat-names"
                ),
            ),
            other => Error::input(path, format!("unusable path: it {other}")),
        })?;
        if meta.len() > MAX_FILE_SIZE {
            return Err(Error::input(
                path,
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
        Ok(Some(InputFile {
            rel,
            abs: path.to_path_buf(),
            size: meta.len(),
            mode,
            mtime: meta.modified().ok(),
            stamp: stamp_of(&meta),
        }))
    }
}

/// The error for a name Windows reserves.
pub(super) fn reserved_error(path: &Path, name: &str) -> Error {
    let bad = windows_reserved(name).unwrap_or_default();
    Error::input(
        path,
        format!(
            "name cannot be used on Windows: {bad:?} {}; rename it or pass \
             --allow-non-fat-names",
            PathError::WindowsReserved
        ),
    )
}

/// Whether folder `dir` is a romlib library (its packs and its games or index): never
/// game data, and a library inside its own input would otherwise swallow itself.
fn is_library(dir: &Path) -> bool {
    let is_dir = |n: &str| fs::symlink_metadata(dir.join(n)).is_ok_and(|m| m.is_dir());
    is_dir("packs") && (is_dir("games") || dir.join("index.db").is_file())
}
