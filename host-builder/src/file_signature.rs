//! Detached signatures of release files (`romlib sign-file`, `romlib verify-file`), made
//! with a publisher key from `romlib keygen`: the Ed25519 signature of the file's BLAKE3
//! and length (`romlib_format::file_signature`, SPEC.md section 14). A release's
//! `SHA256SUMS` is signed so; a user checks it with `romlib verify-file` and then the
//! binaries with `sha256sum -c`.

use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::keys::{load_public_key, load_signing_key};
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use romlib_format::file_signature as fsig;
use std::fs::File;
use std::path::Path;

/// BLAKE3 and length of the file at `path`, read once.
fn hash_file(path: &Path) -> Result<([u8; 32], u64)> {
    let f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let mut h = blake3::Hasher::new();
    let len = std::io::copy(&mut std::io::BufReader::new(f), &mut h)
        .map_err(|e| Error::io(path, "read", e))?;
    Ok((*h.finalize().as_bytes(), len))
}

/// Signs `file` with the secret key in `key`, writing the signature line to `signature`
/// (atomically: an interrupted run leaves no half-written signature). Returns the public
/// key.
pub fn sign_file(file: &Path, key: &Path, signature: &Path) -> Result<[u8; 32]> {
    let sk = load_signing_key(key)?;
    let (hash, len) = hash_file(file)?;
    let sig = sk.sign(&fsig::message(&hash, len)).to_bytes();
    let pk = sk.verifying_key().to_bytes();
    write_atomic(signature, &fsig::encode(&pk, &sig), 0o644)?;
    Ok(pk)
}

/// Checks that `signature` is a signature of `file` by the public key in `trusted`.
pub fn verify_file(file: &Path, signature: &Path, trusted: &Path) -> Result<()> {
    let want = load_public_key(trusted)?;
    let line = crate::fsio::read_limited(signature, 4096, "a file signature")?;
    let (pk, sig) = fsig::decode(&line).map_err(|e| Error::Input {
        path: signature.to_path_buf(),
        problem: format!("not a romlib file signature: {e}"),
    })?;
    if pk != want {
        return Err(Error::Input {
            path: signature.to_path_buf(),
            problem: format!(
                "signed by key {}, not by the trusted key {} ({})",
                String::from_utf8_lossy(&romlib_format::manifest::key_id(&pk)),
                String::from_utf8_lossy(&romlib_format::manifest::key_id(&want)),
                trusted.display()
            ),
        });
    }
    let (hash, len) = hash_file(file)?;
    let vk = VerifyingKey::from_bytes(&pk).map_err(|_| Error::Input {
        path: signature.to_path_buf(),
        problem: "holds an invalid public key".into(),
    })?;
    vk.verify_strict(&fsig::message(&hash, len), &Signature::from_bytes(&sig))
        .map_err(|_| Error::Input {
            path: file.to_path_buf(),
            problem: format!(
                "does not match its signature {}: the file was altered or is another one",
                signature.display()
            ),
        })
}
