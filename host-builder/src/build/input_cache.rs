//! The input cache: which games of the input have not changed since they were built, so that
//! a rebuild reads only what is new or changed (a collection of terabytes is otherwise read
//! and hashed whole by every build, a no-op one included).
//!
//! `.romlib-inputs` in the library folder (SPEC section 1) holds, per game, a digest of its
//! input as the scan saw it (every file's path, size, mode, mtime and, on Unix, status-change
//! time, inode and device) and of the build's settings that shape a manifest, with the
//! BLAKE3 of the manifest and locator the build published for it. A game is skipped only
//! when all of that still matches: the same settings, the same files with the same stamps,
//! and the library's manifest and locator still the very files that build wrote. A file
//! whose mtime or status-change time falls within [`RACY_NS`] of the time the cache was
//! recorded is not trusted (it may have changed again within the file system's timestamp
//! granularity, FAT's 2 s included), so that game is read again.
//!
//! The cache is only ever a shortcut: a missing, damaged, foreign or stale cache makes the
//! build read the games again, never fail, and `--reread` ignores it. It is written (whole,
//! by atomic rename) only by a build that wrote something else, changed an entry, or read
//! games again only because they were too recent to trust (so that a freshly copied
//! collection is not read by every build), so a run with nothing new still writes nothing.

use super::options::BuildOptions;
use super::scan::GameInput;
use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use romlib_device::Library;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

/// The cache's file name in the library folder.
pub const INPUT_CACHE_FILE: &str = ".romlib-inputs";
/// The first line of the file.
const MAGIC: &str = "romlib input cache 1";
/// Largest cache file read (about 200 bytes per game: a million games).
const MAX_CACHE_LEN: u64 = 256 << 20;
/// Files changed this close to the recording time (or after it) are not trusted.
pub const RACY_NS: i128 = 2_000_000_000;

/// What the cache says of one game.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Digest of the settings and the input files' metadata.
    input: [u8; 32],
    /// BLAKE3 of the published manifest file.
    manifest: [u8; 32],
    /// BLAKE3 of the published locator file.
    locator: [u8; 32],
    /// The title the game was published under when it is not its input's (`--rename`).
    published: Option<String>,
}

/// The cache as read at the start of a build.
#[derive(Debug, Default)]
pub struct InputCache {
    /// When the games in it were last read (Unix nanoseconds).
    recorded: i128,
    entries: BTreeMap<String, Entry>,
}

/// Now, in Unix nanoseconds.
pub fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

fn ns(t: Option<SystemTime>) -> i128 {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_nanos() as i128)
}

/// Digest of what shapes a game's manifest besides its files: the romlib and format
/// versions, chunking, DAT hashing, the DAT and header-skipper files' contents, the default
/// system, the signer, and the scan rules.
pub fn settings_digest(opts: &BuildOptions) -> Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(&romlib_format::manifest::VERSION.to_le_bytes());
    h.update(&opts.avg_chunk.to_le_bytes());
    h.update(&[
        u8::from(opts.dat_hashes),
        u8::from(opts.scan.include_junk),
        u8::from(opts.scan.allow_non_fat_names),
    ]);
    // Only when set, so that caches written before the option existed stay valid.
    if opts.rename {
        h.update(b"rename");
    }
    for (kind, files) in [(b'd', &opts.dats), (b'h', &opts.header_skippers)] {
        for path in files {
            h.update(&[kind]);
            let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
            h.update_reader(&mut f)
                .map_err(|e| Error::io(path, "read", e))?;
        }
    }
    match &opts.system {
        Some(s) => h.update(&[1]).update(s.as_bytes()),
        None => h.update(&[0]),
    };
    if let Some(key) = &opts.signing_key {
        h.update(&key.verifying_key().to_bytes());
    }
    Ok(*h.finalize().as_bytes())
}

/// Digest of `game`'s input under `settings`.
pub fn game_digest(settings: &[u8; 32], game: &GameInput) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(settings);
    h.update(game.title.as_bytes());
    // The metadata the manifest records (a romlib.toml edit, a system folder's system).
    h.update(format!("{:?} {:?}", game.sidecar, game.folder_system).as_bytes());
    for f in &game.files {
        h.update(&(f.rel.len() as u64).to_le_bytes());
        h.update(f.rel.as_bytes());
        h.update(&f.size.to_le_bytes());
        h.update(&f.mode.to_le_bytes());
        h.update(&ns(f.mtime).to_le_bytes());
        for v in f.stamp {
            h.update(&v.to_le_bytes());
        }
    }
    *h.finalize().as_bytes()
}

/// BLAKE3 of the file at `path`, or `None` when it cannot be read.
fn file_hash(path: &Path) -> Option<[u8; 32]> {
    let f = std::fs::File::open(path).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut h = blake3::Hasher::new();
    h.update_reader(f).ok()?;
    Some(*h.finalize().as_bytes())
}

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl InputCache {
    /// The cache of `lib` if it was written under `settings`; empty otherwise (missing,
    /// unreadable, damaged, too large or written under other settings).
    pub fn load(lib: &Library, settings: &[u8; 32]) -> Self {
        Self::parse(&lib.root().join(INPUT_CACHE_FILE), settings).unwrap_or_default()
    }

    fn parse(path: &Path, settings: &[u8; 32]) -> Option<Self> {
        let f = std::fs::File::open(path).ok()?;
        if !f.metadata().ok()?.is_file() {
            return None;
        }
        let mut text = String::new();
        f.take(MAX_CACHE_LEN + 1).read_to_string(&mut text).ok()?;
        if text.len() as u64 > MAX_CACHE_LEN {
            return None;
        }
        let mut lines = text.lines();
        (lines.next()? == MAGIC).then_some(())?;
        let recorded: i128 = lines.next()?.strip_prefix("recorded ")?.parse().ok()?;
        (unhex(lines.next()?.strip_prefix("settings ")?)? == *settings).then_some(())?;
        let mut entries = BTreeMap::new();
        for line in lines {
            let mut parts = line.splitn(4, ' ');
            let input = unhex(parts.next()?)?;
            let manifest = unhex(parts.next()?)?;
            let locator = unhex(parts.next()?)?;
            // `<input title>` or `<input title>/<published title>`: a title has no `/`.
            let rest = parts.next()?;
            let (title, published) = match rest.split_once('/') {
                Some((t, p)) => (t.to_string(), Some(p.to_string())),
                None => (rest.to_string(), None),
            };
            entries.insert(
                title,
                Entry {
                    input,
                    manifest,
                    locator,
                    published,
                },
            );
        }
        Some(InputCache { recorded, entries })
    }

    /// Whether `game` (whose input digest is `digest`) is exactly what was built into
    /// `lib`: the same input, no file changed too close to the recording to tell, and the
    /// library's manifest and locator still the files that build published.
    pub fn unchanged(&self, lib: &Library, game: &GameInput, digest: &[u8; 32]) -> bool {
        let Some(e) = self.entries.get(&game.title) else {
            return false;
        };
        if e.input != *digest {
            return false;
        }
        let limit = self.recorded - RACY_NS;
        if game
            .files
            .iter()
            .any(|f| ns(f.mtime) >= limit || f.stamp[0] >= limit)
        {
            return false;
        }
        let title = e.published.as_deref().unwrap_or(&game.title);
        file_hash(&lib.manifest_path(title)) == Some(e.manifest)
            && file_hash(&lib.locator_path(title)) == Some(e.locator)
    }

    /// Whether `game` (input digest `digest`) is recorded with that digest but some file of
    /// it changed too close to the recording to be trusted.
    pub fn racy(&self, game: &GameInput, digest: &[u8; 32]) -> bool {
        let limit = self.recorded - RACY_NS;
        self.entries
            .get(&game.title)
            .is_some_and(|e| e.input == *digest)
            && (game.files.iter()).any(|f| ns(f.mtime) >= limit || f.stamp[0] >= limit)
    }

    /// The title the game of input title `title` was published under, as recorded.
    pub fn published<'a>(&'a self, title: &'a str) -> &'a str {
        (self.entries.get(title))
            .and_then(|e| e.published.as_deref())
            .unwrap_or(title)
    }
}

/// Whether every file of `game` is old enough for a cache recorded at `at` (Unix
/// nanoseconds) to vouch for it.
pub fn settled(game: &GameInput, at: i128) -> bool {
    let limit = at - RACY_NS;
    (game.files.iter()).all(|f| ns(f.mtime) < limit && f.stamp[0] < limit)
}

/// Writes the cache for a build that started at `started` (Unix nanoseconds) under
/// `settings`: the games in `skipped` keep their entries from `old`, the games in `built`
/// (title, input digest) get entries for the manifest and locator now published; games no
/// longer in the input are dropped. A build that `wrote` nothing (the caller counts a build
/// that read games again only for being too recent as writing) writes the cache only if an
/// entry changed, so that a run with nothing new writes nothing.
pub fn save(
    lib: &Library,
    settings: &[u8; 32],
    started: i128,
    old: &InputCache,
    skipped: &[String],
    built: &[(String, [u8; 32], String)],
    wrote: bool,
) -> Result<()> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for title in skipped {
        if let Some(e) = old.entries.get(title) {
            entries.insert(title.clone(), e.clone());
        }
    }
    for (title, input, published) in built {
        let (Some(manifest), Some(locator)) = (
            file_hash(&lib.manifest_path(published)),
            file_hash(&lib.locator_path(published)),
        ) else {
            continue;
        };
        entries.insert(
            title.clone(),
            Entry {
                input: *input,
                manifest,
                locator,
                published: (published != title).then(|| published.clone()),
            },
        );
    }
    let path = lib.root().join(INPUT_CACHE_FILE);
    if !wrote && entries == old.entries && path.is_file() {
        return Ok(());
    }
    let mut text = format!("{MAGIC}\nrecorded {started}\nsettings {}\n", hex(settings));
    for (title, e) in &entries {
        let published = e
            .published
            .as_deref()
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "{} {} {} {title}{published}\n",
            hex(&e.input),
            hex(&e.manifest),
            hex(&e.locator)
        ));
    }
    write_atomic(&path, text.as_bytes(), 0o644)
}
