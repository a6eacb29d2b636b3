//! Where things are in a library directory (DESIGN section 4, SPEC "Library layout").

use std::path::{Path, PathBuf};

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

/// A library directory; only computes paths.
#[derive(Debug, Clone)]
pub struct Library {
    root: PathBuf,
}

impl Library {
    /// A library rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The library's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `packs/`.
    pub fn packs_dir(&self) -> PathBuf {
        self.root.join(PACKS_DIR)
    }

    /// `packs/pack-NNNN.pkg`.
    pub fn pack_path(&self, id: u32) -> PathBuf {
        let mut buf = [0u8; 20];
        self.packs_dir()
            .join(romlib_format::pack::file_name(id, &mut buf))
    }

    /// `games/`.
    pub fn games_dir(&self) -> PathBuf {
        self.root.join(GAMES_DIR)
    }

    /// `games/<title>.manifest`.
    pub fn manifest_path(&self, title: &str) -> PathBuf {
        self.games_dir().join(format!("{title}.{MANIFEST_EXT}"))
    }

    /// `dicts/`.
    pub fn dicts_dir(&self) -> PathBuf {
        self.root.join(DICTS_DIR)
    }

    /// `dicts/<id as 8 hex digits>.zdict`.
    pub fn dict_path(&self, id: u32) -> PathBuf {
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

    /// Title ids of every manifest in `games/`, sorted.
    pub fn titles(&self) -> crate::Result<Vec<String>> {
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
