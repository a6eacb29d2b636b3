//! Key generation and key files (format: `format-spec/SPEC.md` section 4).

use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use ed25519_dalek::SigningKey;
use romlib_format::keyfile::{self, KeyKind};
use romlib_format::FormatError;
use std::path::Path;

/// Generates a key pair and writes both files; refuses to overwrite either.
pub fn keygen(secret: &Path, public: &Path) -> Result<[u8; 32]> {
    for p in [secret, public] {
        if p.exists() {
            return Err(Error::Key {
                path: p.to_path_buf(),
                problem: "already exists; refusing to overwrite a key".into(),
            });
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Key {
        path: secret.to_path_buf(),
        problem: format!("no randomness from the operating system: {e}"),
    })?;
    let sk = SigningKey::from_bytes(&seed);
    let pk = sk.verifying_key().to_bytes();
    write_atomic(secret, &keyfile::encode(KeyKind::Secret, &seed), 0o600)?;
    write_atomic(public, &keyfile::encode(KeyKind::Public, &pk), 0o644)?;
    Ok(pk)
}

/// Loads a secret key file.
pub fn load_signing_key(path: &Path) -> Result<SigningKey> {
    let bytes = romlib_device::trusted::trust::read_small(path, "secret key file")?;
    let seed = keyfile::decode(KeyKind::Secret, &bytes).map_err(|e| Error::Key {
        path: path.to_path_buf(),
        problem: match e {
            FormatError::InvalidField {
                field: "key type", ..
            } => "is a public key; --signing-key needs the secret key file".into(),
            other => format!("not a romlib secret key file: {other}"),
        },
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Loads a public key file.
pub fn load_public_key(path: &Path) -> Result<[u8; 32]> {
    romlib_device::trusted::trust::read_public_key(path).map_err(|e| match e {
        romlib_device::Error::Format {
            source: FormatError::InvalidField {
                field: "key type", ..
            },
            ..
        } => Error::Key {
            path: path.to_path_buf(),
            problem: "is a secret key; a public key file is needed here".into(),
        },
        other => other.into(),
    })
}
