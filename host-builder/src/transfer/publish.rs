//! `romlib publish`: copies a library to an S3-compatible bucket, from which devices
//! install with `--from` (the bucket's HTTP endpoint, or a CDN in front of it).
//!
//! Order: dictionaries and packs first, then each game's locator and then its manifest,
//! then `keys/`, then `catalog.txt`, then the signed `snapshot.txt` last. A device finds a
//! game through its manifest, and the manifest is uploaded only after every pack and
//! dictionary (so after every record its
//! locator points at); a pack already in the bucket is only ever replaced by a longer copy
//! of itself (packs are append-only), so records that published manifests point at stay
//! where they were. `index.db` is not published: a reader over HTTP never reads it.
//!
//! Incremental and resumable: each object is first asked for with `HEAD`; one of the same
//! length whose ETag is the file's MD5 (what S3 gives an object uploaded with one PUT) is
//! left alone. A publish that was cut off is simply run again: it uploads what is missing
//! or different, in the same order.
//!
//! Deletions are mirrored last, once the new state is published (snapshot included): the
//! objects under the prefix that are of a kind romlib publishes (packs, dictionaries,
//! manifests, locators, keys) and that the library no longer holds (a removed game, the
//! packs a prune deleted) are deleted, manifests first and packs after. Anything else in
//! the bucket is never touched.

use crate::error::{Error, Result};
use crate::transfer::s3::{hex, Bucket};
use md5::Md5;
use romlib_format::layout::{
    CATALOG_FILE, DICTS_DIR, GAMES_DIR, KEYS_DIR, PACKS_DIR, SNAPSHOT_FILE,
};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a publish did.
#[derive(Debug, Default, Clone)]
pub struct Published {
    /// Objects uploaded.
    pub uploaded: u64,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Objects already in the bucket, unchanged.
    pub unchanged: u64,
    /// Objects deleted from the bucket: the library no longer holds them.
    pub deleted: u64,
    /// Requests sent to the server.
    pub requests: u64,
}

/// The files to publish, relative to the library root with `/`, in upload order.
pub fn plan(lib: &Path) -> Result<Vec<String>> {
    let list = |dir: &str, keep: &dyn Fn(&str) -> bool| -> Result<Vec<String>> {
        let path = lib.join(dir);
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(&path, "read directory", e)),
        };
        for e in rd {
            let e = e.map_err(|e| Error::io(&path, "read directory", e))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with('.') && keep(name) && e.path().is_file() {
                out.push(format!("{dir}/{name}"));
            }
        }
        out.sort();
        Ok(out)
    };
    if !lib.join(CATALOG_FILE).is_file() {
        return Err(Error::Library {
            path: lib.join(CATALOG_FILE),
            problem: "no catalog.txt: not a library folder, or one built before catalogs (run \
                      `romlib rebuild-index -r LIB` to write it)"
                .into(),
        });
    }
    let mut files = list(DICTS_DIR, &|n| n.ends_with(".zdict"))?;
    files.extend(list(PACKS_DIR, &|n| n.ends_with(".pkg"))?);
    // Games in either layout of games/ (SPEC section 1), each where readers look for it.
    let mut manifests = list(GAMES_DIR, &|n| n.ends_with(".manifest"))?;
    for dir in romlib_device::library::shard_dirs(&lib.join(GAMES_DIR))?
        .iter()
        .skip(1)
    {
        let Some(shard) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let rel = format!("{GAMES_DIR}/{shard}");
        manifests.extend(list(&rel, &|n| {
            n.strip_suffix(".manifest")
                .is_some_and(|t| romlib_device::library::shard_of(t) == shard)
        })?);
    }
    for m in &manifests {
        let locator = format!("{}.locator", m.trim_end_matches(".manifest"));
        if lib.join(&locator).is_file() {
            files.push(locator);
        }
        files.push(m.clone());
    }
    files.extend(list(KEYS_DIR, &|n| n.ends_with(".pub"))?);
    files.push(CATALOG_FILE.to_string());
    // The signed snapshot last: once a reader sees it, every file it names is there.
    if lib.join(SNAPSHOT_FILE).is_file() {
        files.push(SNAPSHOT_FILE.to_string());
    }
    Ok(files)
}

/// Length, SHA-256 and MD5 of a file, read once.
fn digest(path: &Path) -> Result<(std::fs::File, u64, [u8; 32], [u8; 16])> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let (mut sha, mut md5) = (Sha256::new(), Md5::new());
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, "read", e))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
        len += n as u64;
    }
    Ok((f, len, sha.finalize().into(), md5.finalize().into()))
}

/// Publishes library `lib` to `bucket` under `prefix` (empty, or ending in `/`), calling
/// `progress(key, uploaded)` after each object.
pub fn publish(
    lib: &Path,
    bucket: &mut Bucket,
    prefix: &str,
    delete: bool,
    progress: &mut dyn FnMut(&str, Done, u64),
) -> Result<Published> {
    let files = plan(lib)?;
    let mut done = Published::default();
    for rel in &files {
        let path: PathBuf = lib.join(rel);
        let key = format!("{prefix}{rel}");
        let (mut file, len, sha, md5) = digest(&path)?;
        let same = bucket
            .head(&key)?
            .is_some_and(|o| o.len == len && o.etag.eq_ignore_ascii_case(&hex(&md5)));
        if same {
            done.unchanged += 1;
        } else {
            bucket.put_file(&key, &mut file, len, sha, md5)?;
            done.uploaded += 1;
            done.uploaded_bytes += len;
        }
        progress(
            &key,
            if same {
                Done::Unchanged
            } else {
                Done::Uploaded
            },
            len,
        );
    }
    if delete {
        let ours: std::collections::HashSet<&str> = files.iter().map(String::as_str).collect();
        let mut gone: Vec<(u8, String, u64)> = bucket
            .list(prefix)?
            .into_iter()
            .filter_map(|(key, len)| {
                let rel = key.strip_prefix(prefix)?;
                let rank = published_kind(rel)?;
                (!ours.contains(rel)).then_some((rank, key, len))
            })
            .collect();
        gone.sort();
        for (_, key, len) in gone {
            bucket.delete(&key)?;
            done.deleted += 1;
            progress(&key, Done::Deleted, len);
        }
    }
    done.requests = bucket.requests;
    Ok(done)
}

/// What became of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Uploaded.
    Uploaded,
    /// Already there, the same.
    Unchanged,
    /// Deleted: the library no longer holds it.
    Deleted,
}

/// The order in which an object of a kind `romlib publish` writes is deleted when the
/// library no longer holds it (manifests first, then locators, packs, dictionaries,
/// keys), or `None` for any other object, which is never deleted.
fn published_kind(rel: &str) -> Option<u8> {
    let (dir, mut name) = rel.split_once('/')?;
    if dir == GAMES_DIR {
        // A game's files in a shard folder: the folder its title's shard names.
        if let Some((shard, file)) = name.split_once('/') {
            let title = file
                .strip_suffix(".manifest")
                .or_else(|| file.strip_suffix(".locator"))?;
            if romlib_device::library::shard_of(title) != shard {
                return None;
            }
            name = file;
        }
    }
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    match dir {
        GAMES_DIR if name.ends_with(".manifest") => Some(0),
        GAMES_DIR if name.ends_with(".locator") => Some(1),
        PACKS_DIR if romlib_format::layout::parse_pack_file_name(name).is_some() => Some(2),
        DICTS_DIR if romlib_format::layout::parse_dict_file_name(name).is_some() => Some(3),
        KEYS_DIR if name.ends_with(".pub") => Some(4),
        _ => None,
    }
}

/// Splits `s3://BUCKET/PREFIX` into the bucket and the prefix (empty, or ending in `/`).
pub fn parse_target(target: &str) -> Result<(String, String)> {
    let rest = target.strip_prefix("s3://").ok_or_else(|| {
        Error::Usage(format!(
            "{target:?}: the target must be s3://BUCKET[/PREFIX]"
        ))
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|s| s == ".." || s == ".") {
        return Err(Error::Usage(format!(
            "{target:?}: no . or .. in the prefix"
        )));
    }
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Ok((bucket.to_string(), prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_published_kinds_are_ever_deleted() {
        assert_eq!(published_kind("games/a b.manifest"), Some(0));
        assert_eq!(published_kind("games/a.locator"), Some(1));
        let a = romlib_device::library::shard_of("a");
        assert_eq!(published_kind(&format!("games/{a}/a.manifest")), Some(0));
        assert_eq!(published_kind(&format!("games/{a}/a.locator")), Some(1));
        assert_eq!(published_kind(&format!("games/{a}/.a.manifest.tmp")), None);
        assert_eq!(published_kind("packs/pack-0001.pkg"), Some(2));
        assert_eq!(published_kind("dicts/0000abcd.zdict"), Some(3));
        assert_eq!(published_kind("keys/k.pub"), Some(4));
        for other in [
            "index.html",
            "catalog.txt",
            "snapshot.txt",
            "packs/notes.txt",
            "packs/pack-1.pkg",
            "games/.a.manifest.tmp",
            "games/sub/a.manifest",
            "games/00/a.manifest",
            "games/ca/a/b.manifest",
            "runs/0000000000000001.run",
            "other/pack-0001.pkg",
        ] {
            assert_eq!(published_kind(other), None, "{other}");
        }
    }

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("s3://b/x/y/").unwrap(),
            ("b".into(), "x/y/".into())
        );
        assert_eq!(parse_target("s3://b").unwrap(), ("b".into(), "".into()));
        assert!(parse_target("http://b/x").is_err());
        assert!(parse_target("s3://b/../x").is_err());
    }

    #[test]
    fn manifests_come_after_every_pack_and_the_snapshot_last() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "packs/pack-0002.pkg",
            "packs/pack-0001.pkg",
            "games/b.manifest",
            "games/b.locator",
            "games/a.manifest",
            "games/a.locator",
            "dicts/00000001.zdict",
            "keys/k.pub",
            "catalog.txt",
            "snapshot.txt",
            "index.db",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(
            plan(d.path()).unwrap(),
            [
                "dicts/00000001.zdict",
                "packs/pack-0001.pkg",
                "packs/pack-0002.pkg",
                "games/a.locator",
                "games/a.manifest",
                "games/b.locator",
                "games/b.manifest",
                "keys/k.pub",
                "catalog.txt",
                "snapshot.txt"
            ]
        );
    }
}
