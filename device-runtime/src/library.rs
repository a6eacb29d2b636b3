//! A library: a directory (DESIGN section 4, SPEC "Library layout") or a portable file
//! (SPEC "Portable files"), which readers use the same way.

use crate::error::{Error, Result};
use crate::manifest::ManifestFile;
use crate::portable::Portable;
use crate::remote::Remote;
use romlib_format::limits::MAX_DICT_LEN;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the pack directory.
pub const PACKS_DIR: &str = "packs";
/// Name of the manifest directory.
pub const GAMES_DIR: &str = "games";
/// Name of the dictionary directory.
pub const DICTS_DIR: &str = "dicts";
/// Name of the public key directory.
pub const KEYS_DIR: &str = "keys";
/// Name of the index database.
pub const INDEX_FILE: &str = "index.db";
/// Extension of manifest files.
pub const MANIFEST_EXT: &str = "manifest";
/// Extension of locator files (SPEC section 11), beside the manifests.
pub const LOCATOR_EXT: &str = "locator";

/// A library directory, or a portable file opened as one.
#[derive(Debug, Clone)]
pub struct Library {
    root: PathBuf,
    portable: Option<Arc<Portable>>,
    remote: Option<Arc<Remote>>,
}

impl Library {
    /// The library directory rooted at `root` (nothing is read: it may not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            portable: None,
            remote: None,
        }
    }

    /// The library served at `url` (any static HTTP server), downloading manifests and
    /// locators into `scratch` (they are unlinked as soon as they are open).
    pub fn remote(url: &str, scratch: &Path, timeout: std::time::Duration) -> Result<Self> {
        let r = Remote::new(url, scratch, timeout)?;
        Ok(Self {
            root: PathBuf::from(r.url().to_string()),
            portable: None,
            remote: Some(Arc::new(r)),
        })
    }

    /// The server this library is on, if it is remote.
    pub fn remote_source(&self) -> Option<&Remote> {
        self.remote.as_deref()
    }

    /// Opens what a reader was given with `-r`: a portable file when `path` is a file,
    /// else a library directory.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_file() {
            Ok(Self {
                root: path.to_path_buf(),
                portable: Some(Arc::new(Portable::open(path)?)),
                remote: None,
            })
        } else {
            Ok(Self::new(path))
        }
    }

    /// The portable file this library is, if it is one.
    pub fn portable(&self) -> Option<&Portable> {
        self.portable.as_deref()
    }

    /// The library's root directory, or the portable file's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `packs/`.
    pub fn packs_dir(&self) -> PathBuf {
        self.root.join(PACKS_DIR)
    }

    /// `packs/pack-NNNN.pkg`; for a portable file, the file (what error messages name).
    pub fn pack_path(&self, id: u32) -> PathBuf {
        if self.portable.is_some() {
            return self.root.clone();
        }
        if let Some(r) = &self.remote {
            return r.display_path(&self.pack_rel(id));
        }
        let mut buf = [0u8; 20];
        self.packs_dir()
            .join(romlib_format::layout::pack_file_name(id, &mut buf))
    }

    /// `packs/pack-NNNN.pkg` as a relative path (with `/`).
    pub fn pack_rel(&self, id: u32) -> String {
        let mut buf = [0u8; 20];
        format!(
            "{PACKS_DIR}/{}",
            romlib_format::layout::pack_file_name(id, &mut buf)
        )
    }

    /// `games/`.
    /// For a portable file, the file.
    pub fn games_dir(&self) -> PathBuf {
        if self.portable.is_some() {
            return self.root.clone();
        }
        self.root.join(GAMES_DIR)
    }

    /// `games/<title>.manifest`.
    /// For a portable file, `<file>/<title>` (what error messages name).
    pub fn manifest_path(&self, title: &str) -> PathBuf {
        if self.portable.is_some() {
            return self.root.join(title);
        }
        if let Some(r) = &self.remote {
            return r.display_path(&format!("{GAMES_DIR}/{title}.{MANIFEST_EXT}"));
        }
        self.games_dir().join(format!("{title}.{MANIFEST_EXT}"))
    }

    /// `games/<title>.locator`.
    pub fn locator_path(&self, title: &str) -> PathBuf {
        self.games_dir().join(format!("{title}.{LOCATOR_EXT}"))
    }

    /// `dicts/`.
    pub fn dicts_dir(&self) -> PathBuf {
        self.root.join(DICTS_DIR)
    }

    /// `dicts/<id as 8 hex digits>.zdict`.
    /// For a portable file, the file (what error messages name).
    pub fn dict_path(&self, id: u32) -> PathBuf {
        if self.portable.is_some() {
            return self.root.clone();
        }
        if let Some(r) = &self.remote {
            return r.display_path(&format!("{DICTS_DIR}/{id:08x}.zdict"));
        }
        self.dicts_dir().join(format!("{id:08x}.zdict"))
    }

    /// `keys/`.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join(KEYS_DIR)
    }

    /// `index.db`.
    pub fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    /// Opens the manifest of game `title` (not its signature): `games/<title>.manifest`,
    /// or the portable file's copy.
    pub fn open_manifest(&self, title: &str) -> Result<ManifestFile> {
        if let Some(r) = &self.remote {
            let rel = format!("{GAMES_DIR}/{title}.{MANIFEST_EXT}");
            let file = r.download(&rel, Remote::max_manifest_len())?;
            let len = file
                .metadata()
                .map_err(|e| Error::io(r.display_path(&rel), "stat", e))?
                .len();
            return ManifestFile::open_in(&r.display_path(&rel), file, 0, len);
        }
        let Some(p) = self.portable() else {
            return ManifestFile::open(&self.manifest_path(title));
        };
        let g = p.game(title).ok_or_else(|| Error::NotFound {
            path: self.root.join(title),
            what: "game in this portable file",
        })?;
        // A file of its own, not a clone: the manifest reads through its cursor, which
        // clones would share with every other game's reader.
        let file = std::fs::File::open(p.path()).map_err(|e| Error::io(p.path(), "open", e))?;
        let m = ManifestFile::open_in(p.path(), file, g.manifest_offset, g.manifest_len)?;
        if m.unverified_body().title_id != title {
            return Err(Error::manifest(
                p.path(),
                format!(
                    "directory entry {title:?} holds the manifest of {:?}",
                    m.unverified_body().title_id
                ),
            ));
        }
        Ok(m)
    }

    /// Whether the library holds game `title` (its manifest exists; not yet checked).
    pub fn has_game(&self, title: &str) -> bool {
        if self.remote.is_some() {
            return true; // the download says
        }
        match self.portable() {
            Some(p) => p.game(title).is_some(),
            None => self.manifest_path(title).is_file(),
        }
    }

    /// The bytes of zstd dictionary `id` (at most `MAX_DICT_LEN`).
    pub fn read_dict(&self, id: u32) -> Result<Vec<u8>> {
        use std::io::Read;
        if let Some(r) = &self.remote {
            return r.read_dict(&format!("{DICTS_DIR}/{id:08x}.zdict"));
        }
        if let Some(p) = self.portable() {
            let s = p.dict(id).ok_or_else(|| {
                Error::manifest(p.path(), format!("dictionary {id:08x} is not in the file"))
            })?;
            if s.len > MAX_DICT_LEN {
                return Err(Error::manifest(p.path(), "dictionary exceeds MAX_DICT_LEN"));
            }
            let mut buf = vec![0u8; s.len as usize];
            crate::pack_reader::read_at(p.file(), &mut buf, s.offset)
                .map_err(|e| Error::io(p.path(), "read", e))?;
            return Ok(buf);
        }
        let path = self.dict_path(id);
        let f = std::fs::File::open(&path).map_err(|e| Error::io(&path, "open dictionary", e))?;
        let mut buf = Vec::new();
        f.take(MAX_DICT_LEN + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(&path, "read", e))?;
        if buf.len() as u64 > MAX_DICT_LEN {
            return Err(Error::manifest(&path, "dictionary exceeds MAX_DICT_LEN"));
        }
        Ok(buf)
    }

    /// Title ids of every game, sorted: the manifests in `games/`, or the portable file's.
    pub fn titles(&self) -> crate::Result<Vec<String>> {
        if let Some(p) = self.portable() {
            return Ok(p.games().iter().map(|g| g.title.clone()).collect());
        }
        if let Some(r) = &self.remote {
            return r.titles();
        }
        let dir = self.games_dir();
        let rd = std::fs::read_dir(&dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                crate::Error::NotFound {
                    path: dir.clone(),
                    what: "library games directory",
                }
            } else {
                crate::Error::io(&dir, "read directory", e)
            }
        })?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| crate::Error::io(&dir, "read directory", e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            if let Some(title) = name.strip_suffix(".manifest") {
                out.push(title.to_string());
            }
        }
        out.sort();
        Ok(out)
    }
}
