//! The device's trust store: the public keys whose manifests it accepts.
//!
//! Keys come only from files the device owner placed (`--trusted-key FILE` or the default
//! directory), never from the library being installed.

use crate::error::{Error, Result};
use ed25519_dalek::{Signature, VerifyingKey};
use romlib_format::keyfile::{self, KeyKind};
use std::path::{Path, PathBuf};

/// The default trust store directory on a device.
pub const DEFAULT_TRUST_DIR: &str = "/etc/romlib/trusted-keys";

/// A set of trusted Ed25519 public keys.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: Vec<[u8; 32]>,
    source: PathBuf,
}

impl TrustStore {
    /// A store of `keys` (`source` names it in messages); it may be empty.
    pub fn of_keys(keys: &[[u8; 32]], source: &Path) -> Self {
        let mut store = TrustStore {
            keys: Vec::new(),
            source: source.to_path_buf(),
        };
        for k in keys {
            if !store.keys.contains(k) {
                store.keys.push(*k);
            }
        }
        store
    }

    /// The keys it holds.
    pub fn keys(&self) -> &[[u8; 32]] {
        &self.keys
    }

    /// Loads each key file named; at least one is required.
    pub fn from_files(files: &[PathBuf]) -> Result<Self> {
        let mut store = TrustStore {
            keys: Vec::new(),
            source: PathBuf::from("--trusted-key"),
        };
        for f in files {
            store.add_file(f)?;
        }
        if store.keys.is_empty() {
            return Err(Error::NoTrustedKeys { path: store.source });
        }
        Ok(store)
    }

    /// Loads every `*.pub` file of `dir`; at least one is required.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let mut store = TrustStore {
            keys: Vec::new(),
            source: dir.to_path_buf(),
        };
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoTrustedKeys {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(Error::io(dir, "read directory", e)),
        };
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(dir, "read directory", e))?;
            let p = entry.path();
            if p.extension().is_some_and(|x| x == "pub") {
                files.push(p);
            }
        }
        files.sort();
        for f in &files {
            store.add_file(f)?;
        }
        if store.keys.is_empty() {
            return Err(Error::NoTrustedKeys {
                path: dir.to_path_buf(),
            });
        }
        Ok(store)
    }

    /// Loads the store from `files`, or from `default_dir` when none is given.
    pub fn load(files: &[PathBuf], default_dir: &Path) -> Result<Self> {
        if files.is_empty() {
            Self::from_dir(default_dir)
        } else {
            Self::from_files(files)
        }
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        let key = read_public_key(path)?;
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
        Ok(())
    }

    /// Whether `key` is trusted.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.keys.contains(key)
    }

    /// Verifies `signature` over `message` by `key`, which must be trusted.
    pub(crate) fn verify(
        &self,
        key: &[u8; 32],
        message: &[u8],
        signature: &[u8; 64],
    ) -> std::result::Result<(), String> {
        if !self.contains(key) {
            let id = romlib_format::manifest::key_id(key);
            return Err(format!(
                "signed by key {} which is not in the trust store",
                String::from_utf8_lossy(&id)
            ));
        }
        let vk = VerifyingKey::from_bytes(key).map_err(|_| "invalid public key".to_string())?;
        vk.verify_strict(message, &Signature::from_bytes(signature))
            .map_err(|_| "the signature does not match the manifest (tampered or forged)".into())
    }
}

/// Reads a public key file.
pub fn read_public_key(path: &Path) -> Result<[u8; 32]> {
    let bytes = read_small(path, "key file")?;
    let key = keyfile::decode(KeyKind::Public, &bytes).map_err(|e| Error::format(path, e))?;
    VerifyingKey::from_bytes(&key).map_err(|_| {
        Error::format(
            path,
            romlib_format::FormatError::InvalidField {
                what: "key file",
                field: "point",
                found: 0,
            },
        )
    })?;
    Ok(key)
}

/// Reads a file of at most 4 KiB (key files), naming it in errors.
pub fn read_small(path: &Path, what: &'static str) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = crate::fsio::open_existing(path, what)?;
    let mut buf = Vec::new();
    f.take(4097)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, "read", e))?;
    if buf.len() > 4096 {
        return Err(Error::format(
            path,
            romlib_format::FormatError::LimitExceeded {
                limit: "key file size",
                found: 4097,
                max: 4096,
            },
        ));
    }
    Ok(buf)
}
