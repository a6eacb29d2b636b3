//! Publishing the library's signed snapshot, `snapshot.txt` (SPEC section 15): after every
//! operation that changes which manifests are current (build, import, remove) and on
//! `romlib refresh`, the publisher signs the list of every game's manifest and locator
//! (length, BLAKE3, revision), a sequence number that only grows, and an optional expiry.
//!
//! The snapshot vouches only for what the publisher itself wrote: a game's entry is carried
//! over from the previous snapshot (checked against the signing key) unless this operation
//! wrote that game's files or their lengths changed; a file hashed anew must be a manifest
//! signed by the signing key or a key of the user's trust store. So a manifest planted in
//! `games/` by whoever else can write the library is never signed into a snapshot.

use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use romlib_device::{Library, ManifestFile, TrustStore};
use romlib_format::layout::SNAPSHOT_FILE;
use romlib_format::snapshot::{
    message, Entry, Header, Line, Parser, SignatureLine, MAX_SNAPSHOT_LEN,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

/// How long a new snapshot stays valid (`--valid-for`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidFor {
    /// As the previous snapshot said (never, for a library without one).
    #[default]
    Keep,
    /// Never expires.
    Never,
    /// This many seconds from its publication.
    Seconds(u64),
}

impl std::str::FromStr for ValidFor {
    type Err = String;

    /// `never`, or a whole number with a unit: `s`, `m`, `h`, `d` or `w` (`30d`, `12h`,
    /// `2s`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "never" {
            return Ok(ValidFor::Never);
        }
        let err = || format!("{s:?}: give a duration such as 30d, 12h, 90m or 2s, or never");
        let unit = s.chars().last().ok_or_else(err)?;
        let per = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(err()),
        };
        let n: u64 = s[..s.len() - 1].parse().map_err(|_| err())?;
        match n.checked_mul(per) {
            Some(0) | None => Err(err()),
            Some(secs) => Ok(ValidFor::Seconds(secs)),
        }
    }
}

/// The key with which `op`, a command that changes the games of the library at `root`,
/// signs its next snapshot: `key` loaded, else none; an error, before anything changed,
/// when the library has a snapshot and no key was given (it would be left naming games
/// that changed).
pub fn key_for(root: &Path, key: Option<&Path>, op: &str) -> Result<Option<SigningKey>> {
    if let Some(k) = key {
        return crate::keys::load_signing_key(k).map(Some);
    }
    let path = root.join(SNAPSHOT_FILE);
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(Error::library(
            &path,
            format!(
                "this library has a signed snapshot: give --signing-key (the key that signs \
                 the library) so that `romlib {op}` signs the next one; nothing was changed"
            ),
        ));
    }
    Ok(None)
}

impl std::fmt::Display for Published {
    /// `signed snapshot: sequence N, G games, expires ...` for a command's summary.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "signed snapshot: sequence {}, {} game(s), ",
            self.header.sequence, self.games
        )?;
        match self.header.expires {
            Some(t) => write!(f, "expires {}", romlib_device::error::Utc(t)),
            None => f.write_str("never expires"),
        }
    }
}

/// Warnings about what the publication left out.
pub fn warnings(p: Option<&Published>) -> &[String] {
    p.map_or(&[], |p| &p.left_out)
}

/// A command's JSON result with the snapshot it published: `snapshot_sequence` and
/// `snapshot_expires` (Unix seconds), each null when none was published or it never
/// expires.
pub fn json(
    obj: romlib_device::cli::json::Obj,
    p: Option<&Published>,
) -> romlib_device::cli::json::Obj {
    obj.field("snapshot_sequence", p.map(|p| p.header.sequence))
        .field("snapshot_expires", p.and_then(|p| p.header.expires))
}

/// What a publication wrote.
#[derive(Debug, Clone)]
pub struct Published {
    /// The new snapshot's header.
    pub header: Header,
    /// Games it lists.
    pub games: u64,
    /// Manifests in `games/` it leaves out, each with why (unreadable, damaged, or signed
    /// by a key neither the publisher's nor trusted): readers over HTTP refuse them.
    pub left_out: Vec<String>,
}

/// One game's entry, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    revision: u64,
    manifest: (u64, [u8; 32]),
    locator: (u64, [u8; 32]),
}

/// The previous snapshot as this publisher signed it.
struct Previous {
    header: Header,
    rows: BTreeMap<String, Row>,
    /// Whether its signature is the signing key's (only then are its rows carried over).
    ours: bool,
}

/// Publishes a new snapshot of `lib` signed by `key` when anything it would say changed:
/// `touched` are the titles whose manifest or locator this operation wrote or removed,
/// `force` publishes even when nothing changed (`romlib refresh`). Returns what it wrote,
/// or `None` when it wrote nothing.
pub fn publish(
    lib: &Library,
    key: &SigningKey,
    valid_for: ValidFor,
    touched: &BTreeSet<String>,
    force: bool,
) -> Result<Option<Published>> {
    let path = lib.root().join(SNAPSHOT_FILE);
    let public = key.verifying_key();
    let prev = read_previous(&path, &public)?;
    let trusted = trusted_keys(&public);
    let mut rows = BTreeMap::new();
    let mut left_out = Vec::new();
    for title in lib.titles()? {
        let manifest = lib.manifest_path(&title);
        let locator = lib.locator_path(&title);
        let len = |p: &Path| std::fs::symlink_metadata(p).ok().map(|m| m.len());
        let carried = prev
            .as_ref()
            .filter(|p| p.ours && !touched.contains(&title))
            .and_then(|p| p.rows.get(&title))
            .filter(|r| len(&manifest) == Some(r.manifest.0) && len(&locator) == Some(r.locator.0));
        let row = match carried {
            Some(r) => r.clone(),
            None => match hash_game(&manifest, &locator, &trusted) {
                Ok(r) => r,
                Err(e) => {
                    left_out.push(format!("left out of the signed snapshot: {e}"));
                    continue;
                }
            },
        };
        rows.insert(title, row);
    }
    let valid = match valid_for {
        ValidFor::Keep => prev.as_ref().and_then(|p| p.header.valid_for),
        ValidFor::Never => None,
        ValidFor::Seconds(s) => Some(s),
    };
    if let Some(p) = &prev {
        if !force
            && p.ours
            && p.rows == rows
            && p.header.valid_for == valid
            && p.header.games == lib.games_layout()
        {
            return Ok(None);
        }
    }
    let now_ms = crate::build::now_ms();
    let sequence = now_ms.max(
        prev.as_ref()
            .map_or(0, |p| p.header.sequence.saturating_add(1)),
    );
    let real_now = romlib_device::trusted::snapshot::now();
    let header = Header {
        sequence,
        created: now_ms / 1000,
        // The expiry counts from the clock, whatever SOURCE_DATE_EPOCH says (it makes builds
        // reproducible; an expiry in the past would make the library unreadable).
        expires: valid.map(|v| real_now.saturating_add(v)),
        valid_for: valid,
        games: lib.games_layout(),
    };
    let mut text = header.to_string();
    for (title, r) in &rows {
        text += &Entry {
            title,
            revision: r.revision,
            manifest_len: r.manifest.0,
            manifest_blake3: r.manifest.1,
            locator_len: r.locator.0,
            locator_blake3: r.locator.1,
        }
        .to_string();
    }
    if text.len() as u64 > MAX_SNAPSHOT_LEN - 256 {
        return Err(Error::library(
            &path,
            format!(
                "{} games make a snapshot larger than a reader accepts ({} MiB)",
                rows.len(),
                MAX_SNAPSHOT_LEN >> 20
            ),
        ));
    }
    let msg = message(blake3::hash(text.as_bytes()).as_bytes(), text.len() as u64);
    text += &SignatureLine {
        public_key: public.to_bytes(),
        signature: key.sign(&msg).to_bytes(),
    }
    .to_string();
    write_atomic(&path, text.as_bytes(), 0o644)?;
    Ok(Some(Published {
        header,
        games: rows.len() as u64,
        left_out,
    }))
}

/// The keys whose manifests may enter a snapshot: the signing key's own and the user's
/// trust store's (an import brings games another publisher signed).
fn trusted_keys(public: &VerifyingKey) -> TrustStore {
    let mut keys = vec![public.to_bytes()];
    if let Ok(store) = crate::trust_store::load(&[]) {
        keys.extend_from_slice(store.keys());
    }
    TrustStore::of_keys(&keys, Path::new("the signing key and your trust store"))
}

/// A game's row from its files: the manifest must verify against `trusted`.
fn hash_game(manifest: &Path, locator: &Path, trusted: &TrustStore) -> Result<Row> {
    let m = ManifestFile::open(manifest)?;
    let m = m.verify(trusted).map_err(|e| {
        Error::library(
            manifest,
            format!(
                "{e} (neither this key nor your trust store signed it: remove it, or `romlib \
                 trust add` its key)"
            ),
        )
    })?;
    let revision = m.body().revision;
    let manifest = hash_file(manifest, m.file_len())?;
    let locator = hash_file(
        locator,
        romlib_format::portable::LocatorHeader::max_locator_len(),
    )
    .map_err(|e| match e {
        Error::Io { path, source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Error::library(
                &path,
                "missing: `romlib rebuild-index` writes it again, then publish",
            )
        }
        e => e,
    })?;
    Ok(Row {
        revision,
        manifest,
        locator,
    })
}

/// Length and BLAKE3 of the regular file at `path`, refused beyond `max` bytes.
fn hash_file(path: &Path, max: u64) -> Result<(u64, [u8; 32])> {
    let f = romlib_device::fsio::open_existing(path, "file").map_err(|e| match e {
        romlib_device::Error::NotFound { .. } => Error::io(
            path,
            "open",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ),
        e => Error::Device(e),
    })?;
    let mut hasher = blake3::Hasher::new();
    let n =
        std::io::copy(&mut f.take(max + 1), &mut hasher).map_err(|e| Error::io(path, "read", e))?;
    if n > max {
        return Err(Error::library(path, format!("longer than {max} bytes")));
    }
    Ok((n, *hasher.finalize().as_bytes()))
}

/// A snapshot file read whole.
pub struct Parsed {
    /// Its header.
    pub header: Header,
    rows: BTreeMap<String, Row>,
    /// The signer's key and signature, and the signed message.
    signature: ([u8; 32], [u8; 64]),
    message: [u8; romlib_format::snapshot::MESSAGE_LEN],
}

impl Parsed {
    /// Parses a snapshot's bytes (`Err`: what is wrong with them).
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let mut parser = Parser::new();
        let mut rows = BTreeMap::new();
        let mut signed_len = 0;
        let mut sig = None;
        for line in bytes.split_inclusive(|&c| c == b'\n') {
            let Some(text) = line.strip_suffix(b"\n") else {
                return Err("truncated: the last line has no end".into());
            };
            match parser.line(text).map_err(|e| e.to_string())? {
                Line::Game(e) => {
                    rows.insert(
                        e.title.to_string(),
                        Row {
                            revision: e.revision,
                            manifest: (e.manifest_len, e.manifest_blake3),
                            locator: (e.locator_len, e.locator_blake3),
                        },
                    );
                    signed_len += line.len();
                }
                Line::Header => signed_len += line.len(),
                Line::Signature {
                    public_key,
                    signature,
                } => sig = Some((public_key, signature)),
            }
        }
        let (Some(header), Some(signature)) = (parser.header(), sig) else {
            return Err("truncated: it does not end with its signature line".into());
        };
        let hash = blake3::hash(&bytes[..signed_len]);
        Ok(Parsed {
            header,
            rows,
            signature,
            message: message(hash.as_bytes(), signed_len as u64),
        })
    }

    /// Whether `key` made its signature.
    fn signed_by(&self, key: &VerifyingKey) -> bool {
        self.signature.0 == key.to_bytes()
            && key
                .verify_strict(
                    &self.message,
                    &ed25519_dalek::Signature::from_bytes(&self.signature.1),
                )
                .is_ok()
    }
}

/// Checks the library's signed snapshot, if it has one, streamed (one line in memory,
/// whatever the number of games), reporting through `report(problem, file, what)`: its
/// format and its signature by a key of `trust` (checked at its end), and every game's
/// manifest and locator against their lengths and BLAKE3s. A game whose manifest differs
/// from the listed one but is of the same or a later revision, or that the snapshot does
/// not list, was published after it; a listed game without a manifest was removed after it
/// (a run cut off before it signed the next one): notices, not problems.
pub fn check(
    lib: &Library,
    trust: &TrustStore,
    report: &mut dyn FnMut(bool, &Path, String),
) -> Result<()> {
    let path = lib.root().join(SNAPSHOT_FILE);
    let file = match romlib_device::fsio::open_existing(&path, "snapshot") {
        Ok(f) => f,
        Err(romlib_device::Error::NotFound { .. }) => return Ok(()),
        Err(e) => {
            report(true, &path, e.to_string());
            return Ok(());
        }
    };
    let titles = lib.titles()?;
    let mut next = 0;
    let later = "published after the signed snapshot: a run cut off before it signed the next \
                 one (the next build or `romlib refresh` signs it; readers over HTTP refuse the \
                 game until then)";
    let stale = "not the file the signed snapshot names: readers over HTTP refuse it (`romlib \
                 refresh` if you changed it on purpose)";
    let visited = romlib_device::trusted::snapshot::visit(&path, &file, trust, &mut |e| {
        while titles.get(next).is_some_and(|t| t.as_str() < e.title) {
            report(false, &lib.manifest_path(&titles[next]), later.into());
            next += 1;
        }
        let manifest = lib.manifest_path(e.title);
        if titles.get(next).is_some_and(|t| t == e.title) {
            next += 1;
        } else {
            report(
                false,
                &manifest,
                "named by the signed snapshot, but no longer in the library: removed by a run \
                 cut off before it signed the next snapshot (the next build or `romlib \
                 refresh` signs it)"
                    .into(),
            );
            return Ok(());
        }
        let max = romlib_format::snapshot::max_manifest_len();
        match hash_file(&manifest, max) {
            Ok(got) if got == (e.manifest_len, e.manifest_blake3) => {}
            Ok(_) => {
                // Another manifest of the same or a later revision was published after the
                // snapshot; an older one was put back.
                let revision = ManifestFile::open(&manifest).map(|m| m.unverified_body().revision);
                match revision {
                    Ok(r) if r >= e.revision => report(false, &manifest, later.into()),
                    _ => report(true, &manifest, stale.into()),
                }
                return Ok(());
            }
            Err(err) => {
                report(
                    true,
                    &manifest,
                    format!("named by the signed snapshot, but {err}"),
                );
                return Ok(());
            }
        }
        let locator = lib.locator_path(e.title);
        let max = romlib_format::portable::LocatorHeader::max_locator_len();
        match hash_file(&locator, max) {
            Ok(got) if got == (e.locator_len, e.locator_blake3) => {}
            Ok(_) => report(true, &locator, stale.into()),
            Err(err) => report(
                true,
                &locator,
                format!("named by the signed snapshot, but {err}"),
            ),
        }
        Ok(())
    });
    for t in &titles[next.min(titles.len())..] {
        report(false, &lib.manifest_path(t), later.into());
    }
    if let Err(e) = visited {
        report(
            true,
            &path,
            format!("{e} (`romlib refresh` signs a new one)"),
        );
    }
    Ok(())
}

/// The snapshot at `path`, if there is one that parses; `ours` when `public` signed it.
fn read_previous(path: &Path, public: &VerifyingKey) -> Result<Option<Previous>> {
    let bytes = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() <= MAX_SNAPSHOT_LEN => {
            std::fs::read(path).map_err(|e| Error::io(path, "read", e))?
        }
        _ => return Ok(None),
    };
    let Ok(p) = Parsed::parse(&bytes) else {
        return Ok(None);
    };
    let ours = p.signed_by(public);
    Ok(Some(Previous {
        header: p.header,
        rows: p.rows,
        ours,
    }))
}

#[cfg(test)]
mod tests {
    use super::ValidFor;

    #[test]
    fn durations() {
        assert_eq!("30d".parse(), Ok(ValidFor::Seconds(30 * 86_400)));
        assert_eq!("12h".parse(), Ok(ValidFor::Seconds(12 * 3600)));
        assert_eq!("2s".parse(), Ok(ValidFor::Seconds(2)));
        assert_eq!("1w".parse(), Ok(ValidFor::Seconds(7 * 86_400)));
        assert_eq!("never".parse(), Ok(ValidFor::Never));
        for bad in [
            "",
            "d",
            "0s",
            "30",
            "-1d",
            "1.5h",
            "30 d",
            "99999999999999999999w",
        ] {
            assert!(bad.parse::<ValidFor>().is_err(), "{bad}");
        }
    }
}
