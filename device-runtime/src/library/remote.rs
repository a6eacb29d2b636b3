//! A library on an HTTP server (`--from http[s]://HOST:PORT/PATH/`): any static file server
//! holding a library folder works, because a device needs only plain files from it: the
//! game's manifest, its locator (SPEC section 11: where each chunk's record lies, so no
//! index is read over the network), a pack's 32-byte header, the records themselves as byte
//! ranges, and a dictionary if a record needs one.
//!
//! Manifests and locators are downloaded into a scratch folder (the install's staging
//! folder), opened, and unlinked at once, so nothing is left behind whatever happens next.
//! When the server redirects a file to the same path under another folder (`http://` to
//! `https://`, a mirror, a CDN), the library's base URL follows, so the next files are asked
//! for there at once; a redirect elsewhere (a signed URL) is remembered per file by the
//! client.
//!
//! Nothing downloaded is trusted: the manifest's signature is checked before anything else
//! is fetched, and every record before any of its bytes are used.

use crate::error::{Error, Result};
use crate::library::http::{Client, Connector, Download, Url};
use crate::trusted::manifest::PrefixCheck;
use crate::trusted::snapshot::{self, Snapshot};
use crate::trusted::TrustStore;
use romlib_format::layout::{GamesLayout, CATALOG_FILE, LOCATOR_EXT, MANIFEST_EXT, SNAPSHOT_FILE};
use romlib_format::limits::{MAX_DICT_LEN, MAX_GAME_CHUNKS, MAX_MANIFEST_BODY_LEN};
use romlib_format::manifest::CHUNK_RECORD_LEN;
use romlib_format::portable::LocatorHeader;
use std::fs::File;
use std::io::Seek;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest catalog read.
const MAX_CATALOG_LEN: u64 = 16 << 20;

/// Default timeout of each connect, read and write.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A library served over HTTP.
#[derive(Debug)]
pub struct Remote {
    /// The URL the library was given as.
    url: Url,
    /// Where its files are asked for: `url`, or where redirects showed it moved.
    base: Mutex<Url>,
    client: Mutex<Client>,
    /// The client's count of bytes received, read without waiting for a request.
    received: Arc<AtomicU64>,
    scratch: PathBuf,
    /// Whether an expired snapshot is read anyway (`--allow-expired`).
    allow_expired: bool,
    /// The server's signed snapshot once read: `Some(None)` when it has none (a library
    /// written before snapshots).
    snapshot: Mutex<Option<Option<Arc<Snapshot>>>>,
    /// The length and BLAKE3 the snapshot gives a file (by path in the library), for the
    /// files of the games asked for so far.
    expected: Mutex<std::collections::HashMap<String, (u64, [u8; 32])>>,
    /// Where the last game file asked for without a snapshot was found: the layout asked
    /// first next time, so listing a sharded library costs one 404, not one per game.
    found_in: Mutex<GamesLayout>,
}

impl Remote {
    /// A library at `url` (a folder URL), downloading small files into `scratch`;
    /// `https://` servers must show a certificate from the system's authorities or
    /// `ca_file`'s; a server sending under `min_rate` bytes per second is given up
    /// ([`Connector::min_rate`]); an expired snapshot is refused unless `allow_expired`.
    pub fn new(
        url: &str,
        scratch: &Path,
        timeout: Duration,
        min_rate: u64,
        ca_file: Option<&Path>,
        allow_expired: bool,
    ) -> Result<Self> {
        let mut url = Url::parse(url)?;
        if !url.path.ends_with('/') {
            url.path.push('/');
        }
        let client = Client::with_connector(Connector::new(timeout, ca_file).min_rate(min_rate));
        Ok(Remote {
            base: Mutex::new(url.clone()),
            url,
            received: client.received_counter(),
            client: Mutex::new(client),
            scratch: scratch.to_path_buf(),
            allow_expired,
            snapshot: Mutex::new(None),
            expected: Mutex::new(Default::default()),
            found_in: Mutex::new(GamesLayout::Flat),
        })
    }

    /// The server's signed snapshot, read and checked once (signature against `trust`,
    /// expiry against the clock); `None` when the server has none (a library written
    /// before snapshots: then only each manifest's own signature and revision protect).
    pub fn snapshot(&self, trust: &TrustStore) -> Result<Option<Arc<Snapshot>>> {
        let mut cached = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = &*cached {
            return Ok(s.clone());
        }
        let got = match self.download(SNAPSHOT_FILE, romlib_format::snapshot::MAX_SNAPSHOT_LEN) {
            Ok(file) => {
                let s = Snapshot::open(&self.display_path(SNAPSHOT_FILE), file, trust)?;
                if !self.allow_expired {
                    s.check_expiry(snapshot::now())?;
                }
                Some(Arc::new(s))
            }
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        *cached = Some(got.clone());
        Ok(got)
    }

    /// [`Error::Mismatch`] for file `rel`, which is not the one the snapshot names.
    fn mismatch(&self, rel: &str, problem: String) -> Error {
        let shown = self.display_path(rel);
        let what = if rel.ends_with(".locator") {
            "locator"
        } else {
            "manifest"
        };
        let snap = self
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match snap.flatten() {
            Some(s) => s.mismatch(&shown, what, problem),
            None => Error::Mismatch {
                path: shown,
                problem,
            },
        }
    }

    /// Forgets the snapshot read so far (a file did not match it: a publication may have
    /// replaced it since).
    pub fn forget_snapshot(&self) {
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Looks game `title` up in the snapshot (when the server has one), so that its
    /// manifest and locator are downloaded only up to the lengths it gives and refused
    /// unless their BLAKE3 is the one it gives. A title it does not list is an error.
    pub fn expect_game(&self, title: &str, trust: &TrustStore) -> Result<()> {
        let Some(snap) = self.snapshot(trust)? else {
            return Ok(());
        };
        let layout = snap.header().games;
        let Some(e) = snap.expected(title, trust)? else {
            let rel = crate::library::manifest_rel(title, layout);
            return Err(Error::Mismatch {
                path: self.display_path(&rel),
                problem: format!(
                    "the library's signed snapshot (sequence {}) does not list {title:?}: a \
                     game published after it (retry later), or not the publisher's",
                    snap.header().sequence
                ),
            });
        };
        let mut map = self.expected.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(crate::library::manifest_rel(title, layout), e.manifest);
        map.insert(crate::library::locator_rel(title, layout), e.locator);
        Ok(())
    }

    /// The layouts of `games/` to ask in, in order: the one the snapshot (once read) says;
    /// without one, where the last file was found (flat at first), then the other.
    fn layouts(&self) -> Vec<GamesLayout> {
        let snap = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        match &*snap {
            Some(Some(s)) => vec![s.header().games],
            _ => {
                let first = *self.found_in.lock().unwrap_or_else(|p| p.into_inner());
                vec![first, first.other()]
            }
        }
    }

    /// The layout of `games/` files are asked for in first.
    pub fn games_layout(&self) -> GamesLayout {
        self.layouts()[0]
    }

    /// Downloads game `title`'s manifest (`locator` false; checked as it arrives against
    /// `trust` when given) or its locator, from where the snapshot's layout puts it (without
    /// a snapshot: where the last one was found, flat at first, then the other on a 404). Returns its path in the library with it.
    pub fn download_game_file(
        &self,
        title: &str,
        locator: bool,
        trust: Option<&TrustStore>,
    ) -> Result<(String, File)> {
        let layouts = self.layouts();
        let mut tried = None;
        for layout in layouts {
            if let Some(e) = tried.take() {
                // Only a 404 of the first layout asks in the other.
                if !matches!(e, Error::NotFound { .. }) {
                    return Err(e);
                }
            }
            let rel = match locator {
                false => crate::library::manifest_rel(title, layout),
                true => crate::library::locator_rel(title, layout),
            };
            let got = match (locator, trust) {
                (true, _) => self.download(&rel, Self::max_locator_len()),
                (false, Some(t)) => self.download_manifest(&rel, t),
                (false, None) => self.download(&rel, Self::max_manifest_len()),
            };
            match got {
                Ok(f) => {
                    *self.found_in.lock().unwrap_or_else(|p| p.into_inner()) = layout;
                    return Ok((rel, f));
                }
                Err(e) => tried = Some(e),
            }
        }
        Err(tried.unwrap_or_else(|| Error::NotFound {
            path: self.display_path(&format!(
                "{}.{}",
                title,
                if locator { LOCATOR_EXT } else { MANIFEST_EXT }
            )),
            what: "game file",
        }))
    }

    /// The library's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL of `rel` (a path inside the library) as a path, for error messages.
    pub fn display_path(&self, rel: &str) -> PathBuf {
        PathBuf::from(self.url.join(rel).to_string())
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The URL of `rel` where the library is now known to be.
    fn at(&self, rel: &str) -> Url {
        self.base
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join(rel)
    }

    /// After a request for `rel` at `asked`: when `client` ended up at the same path under
    /// another folder, the library's base moves there.
    fn follow(&self, client: &Client, rel: &str, asked: &Url) {
        let Some(got) = client.last_url() else { return };
        if got == asked {
            return;
        }
        let mut base = self.base.lock().unwrap_or_else(|p| p.into_inner());
        let suffix = &asked.path[base.path.len().min(asked.path.len())..];
        if let Some(folder) = got.path.strip_suffix(suffix) {
            if folder.ends_with('/') && base.join(rel) == *asked {
                *base = Url {
                    path: folder.to_string(),
                    ..got.clone()
                };
            }
        }
    }

    /// Whether the server ignored byte ranges, and the bytes it sent beyond those needed
    /// because of it (read only to skip to the records asked for).
    pub fn ranges_ignored(&self) -> Option<u64> {
        let c = self.client();
        c.ranges_ignored().then(|| c.stream_extra())
    }

    /// Counts `n` more bytes downloaded beyond the records needed because the server
    /// ignores byte ranges (bytes a spool copied along with them).
    pub fn count_extra(&self, n: u64) {
        self.client().count_extra(n);
    }

    /// Bytes of response bodies received so far, and requests sent.
    pub fn transferred(&self) -> (u64, u64) {
        let c = self.client();
        (c.received(), c.requests)
    }

    /// Bytes of response bodies received so far; callable while a request runs (for
    /// progress reports).
    pub fn downloaded(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Downloads `rel` (at most `max` bytes) into an unlinked scratch file, returned open
    /// and rewound.
    pub fn download(&self, rel: &str, max: u64) -> Result<File> {
        self.download_with(rel, max, None)
    }

    /// [`Remote::download`]; with `trust`, of a manifest checked as it arrives
    /// ([`PrefixCheck`]).
    fn download_with(&self, rel: &str, max: u64, trust: Option<&TrustStore>) -> Result<File> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        // The scratch folder (an install folder's staging folder) is opened through its
        // parent without following a link, and the file is created new, never through one.
        let parent = match self.scratch.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create", e))?;
        let leaf = self
            .scratch
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(".romlib-staging");
        let folder = crate::folder::Folder::open(parent)?.ensure_sub(leaf)?;
        let name = crate::install::names::download_entry(
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
        );
        let path = folder.at(&name);
        let mut file = folder.create_scratch(&name)?;
        // Unlinked at once: the open file is all that is used, and nothing can be left over.
        let _ = folder.remove_file(&name);
        let url = self.at(rel);
        let expected = (self.expected.lock().unwrap_or_else(|p| p.into_inner()))
            .get(rel)
            .copied();
        // A file the snapshot lists is read up to its signed length, not a byte more.
        let max = expected.map_or(max, |(len, _)| len.min(max));
        let mut c = self.client();
        let got = match trust {
            None => c.get(&url, max, &mut file).map(drop),
            Some(t) => {
                let shown = self.display_path(rel);
                let mut failed = None;
                let mut checked = Checked {
                    file: &mut file,
                    check: PrefixCheck::new(&shown, t),
                    failed: &mut failed,
                };
                let got = c.get(&url, max, &mut checked);
                drop(checked);
                match (got, failed) {
                    (Err(_), Some(e)) => Err(e),
                    (got, _) => got.map(drop),
                }
            }
        };
        match (got, expected) {
            (Err(Error::Http { problem, .. }), Some(_))
                if problem.contains(crate::library::http::TOO_LARGE) =>
            {
                return Err(self.mismatch(rel, problem));
            }
            (got, _) => got?,
        }
        self.follow(&c, rel, &url);
        drop(c);
        if let Some(want) = expected {
            let shown = self.display_path(rel);
            if let Some(problem) = snapshot::differs(&file, &shown, want)? {
                return Err(self.mismatch(rel, problem));
            }
        }
        file.rewind().map_err(|e| Error::io(&path, "seek", e))?;
        Ok(file)
    }

    /// Downloads manifest `rel` like [`Remote::download`], checking its signature against
    /// `trust` as soon as its header, body and signature block are in (see
    /// [`crate::trusted::manifest::PrefixCheck`]): a forged answer ends there, and no answer
    /// is read past the manifest's signed length.
    pub fn download_manifest(&self, rel: &str, trust: &TrustStore) -> Result<File> {
        self.download_with(rel, Self::max_manifest_len(), Some(trust))
    }

    /// Largest manifest a game may have.
    pub fn max_manifest_len() -> u64 {
        16 + MAX_MANIFEST_BODY_LEN as u64 + 96 + MAX_GAME_CHUNKS * CHUNK_RECORD_LEN as u64
    }

    /// Largest locator a game may have.
    pub fn max_locator_len() -> u64 {
        LocatorHeader::max_locator_len()
    }

    /// Bytes `start .. start + buf.len()` of `rel`; returns the file's whole length when
    /// the server gave it.
    pub fn read_range(&self, rel: &str, start: u64, buf: &mut [u8]) -> Result<Option<u64>> {
        let url = self.at(rel);
        let mut c = self.client();
        let got = c.get_range(&url, start, buf)?;
        self.follow(&c, rel, &url);
        Ok(got)
    }

    /// The title ids `catalog.txt` lists (SPEC section 1), sorted.
    pub fn titles(&self) -> Result<Vec<String>> {
        let url = self.at(CATALOG_FILE);
        let mut buf = Vec::new();
        let mut c = self.client();
        c.get(&url, MAX_CATALOG_LEN, &mut buf)?;
        self.follow(&c, CATALOG_FILE, &url);
        drop(c);
        let text = String::from_utf8(buf).map_err(|_| Error::Http {
            url: url.to_string(),
            problem: "catalog is not UTF-8".into(),
        })?;
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            romlib_format::path::check_title_id(line).map_err(|p| Error::Http {
                url: url.to_string(),
                problem: format!("catalog lists {line:?}, which {p}"),
            })?;
            out.push(line.to_string());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Dictionary `id`.
    pub fn read_dict(&self, rel: &str) -> Result<Vec<u8>> {
        let url = self.at(rel);
        let mut buf = Vec::new();
        let mut c = self.client();
        c.get(&url, MAX_DICT_LEN, &mut buf)?;
        self.follow(&c, rel, &url);
        Ok(buf)
    }
}

/// A download into a file whose bytes a [`PrefixCheck`] sees first; its error, if it ends
/// the download, is kept in `failed`.
struct Checked<'a, 'b, 'c> {
    file: &'a mut File,
    check: PrefixCheck<'b>,
    failed: &'c mut Option<Error>,
}

impl std::io::Write for Checked<'_, '_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Err(e) = self.check.take(buf) {
            let msg = e.to_string();
            *self.failed = Some(e);
            return Err(std::io::Error::other(msg));
        }
        std::io::Write::write_all(self.file, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Download for Checked<'_, '_, '_> {
    fn restart(&mut self) -> std::io::Result<()> {
        self.check.restart();
        *self.failed = None;
        Download::restart(self.file)
    }
}
