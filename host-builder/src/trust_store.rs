//! The user's trust store on the host: the public keys whose manifests the host's reading
//! commands (`install`, `cat`, `mount`, `show`, `verify`, `export`, `import`, `list-games`)
//! accept when no `--trusted-key` is given. It lives outside every library, in the user's
//! configuration folder, so whoever can write a library cannot make the host trust a key
//! by adding it to the library's `keys/` folder.
//!
//! The folder: `$ROMLIB_CONFIG_DIR/trusted-keys/`; else, on Windows,
//! `%APPDATA%\romlib\trusted-keys\`; elsewhere `$XDG_CONFIG_HOME/romlib/trusted-keys/`, or
//! `~/.config/romlib/trusted-keys/`. One public key file per key, named by its key id.
//! `romlib keygen` adds the key it makes; `romlib trust add|list|remove` manage the rest.

use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use romlib_format::keyfile::{self, KeyKind};
use std::path::{Path, PathBuf};

/// The folder of the user's trusted keys, or `None` when the environment names no home.
pub fn dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("ROMLIB_CONFIG_DIR") {
        return Some(d.join("trusted-keys"));
    }
    let config = if cfg!(windows) {
        var("APPDATA")
    } else {
        var("XDG_CONFIG_HOME").or_else(|| var("HOME").map(|h| h.join(".config")))
    };
    config.map(|c| c.join("romlib").join("trusted-keys"))
}

/// The folder, or an error saying how to name one.
fn need_dir() -> Result<PathBuf> {
    dir().ok_or_else(|| {
        Error::Usage(
            "no configuration folder for the trust store: set ROMLIB_CONFIG_DIR (or HOME), \
             or pass --trusted-key"
                .into(),
        )
    })
}

/// A trusted key: its id and its file in the store.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// The key id (16 hex digits).
    pub id: String,
    /// Its file.
    pub path: PathBuf,
}

fn id_of(key: &[u8; 32]) -> String {
    String::from_utf8_lossy(&romlib_format::manifest::key_id(key)).into_owned()
}

/// Adds the public key of file `file` to the store (a secret key file is refused). Returns
/// the key and whether it was new.
pub fn add(file: &Path) -> Result<(Trusted, bool)> {
    let key = crate::keys::load_public_key(file)?;
    add_key(&key)
}

/// Adds public key `key` to the store.
pub fn add_key(key: &[u8; 32]) -> Result<(Trusted, bool)> {
    let dir = need_dir()?;
    let id = id_of(key);
    let path = dir.join(format!("{id}.pub"));
    if list()?.iter().any(|t| t.id == id) {
        return Ok((Trusted { id, path }, false));
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, "create directory", e))?;
    write_atomic(&path, &keyfile::encode(KeyKind::Public, key), 0o644)?;
    Ok((Trusted { id, path }, true))
}

/// The keys in the store, by id; a file that is not a public key file is skipped.
pub fn list() -> Result<Vec<Trusted>> {
    let Some(dir) = dir() else {
        return Ok(Vec::new());
    };
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, "read directory", e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|err| Error::io(&dir, "read directory", err))?;
        let path = e.path();
        if path.extension().is_none_or(|x| x != "pub") {
            continue;
        }
        if let Ok(key) = romlib_device::trusted::trust::read_public_key(&path) {
            out.push(Trusted {
                id: id_of(&key),
                path,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Removes the key with id `id` (or the key of public key file `id`) from the store.
pub fn remove(id: &str) -> Result<Trusted> {
    let want = match Path::new(id).is_file() {
        true => id_of(&crate::keys::load_public_key(Path::new(id))?),
        false => id.to_ascii_lowercase(),
    };
    let found = list()?.into_iter().find(|t| t.id == want);
    let Some(t) = found else {
        return Err(Error::Usage(format!(
            "no key {want} in the trust store ({}); `romlib trust list` lists them",
            need_dir()?.display()
        )));
    };
    std::fs::remove_file(&t.path).map_err(|e| Error::io(&t.path, "remove", e))?;
    Ok(t)
}

/// The trust store the host's reading commands use: `keys` when given, else the user's
/// store; an empty or missing store is an error that says how to fill it.
pub fn load(
    keys: &[PathBuf],
) -> std::result::Result<romlib_device::TrustStore, romlib_device::Error> {
    if !keys.is_empty() {
        return romlib_device::TrustStore::from_files(keys);
    }
    match dir() {
        Some(d) => romlib_device::TrustStore::from_dir(&d),
        None => Err(romlib_device::Error::NoTrustedKeys {
            path: PathBuf::from("$HOME/.config/romlib/trusted-keys"),
        }),
    }
}
