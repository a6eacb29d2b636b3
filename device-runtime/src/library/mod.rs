//! A library, whatever holds it: a folder (SPEC section 1), a portable file (SPEC section
//! 11) or a folder on an HTTP server. Readers use all three the same way; only this module
//! and the chunk reader ([`crate::chunks`]) look at which one it is.

pub mod http;
pub mod portable;
pub mod remote;

use crate::error::{Error, Result};
use crate::fsio::{file_len, read_exact_at};
use crate::trusted::snapshot::Snapshot;
use crate::trusted::{ManifestFile, TrustStore, VerifiedManifest};
use portable::Portable;
use remote::Remote;
use romlib_format::layout::{
    dict_file_name, pack_file_name, parse_shard_dir_name, shard_dir_name, GamesLayout, DICTS_DIR,
    DICT_FILE_NAME_LEN, GAMES_DIR, INDEX_FILE, KEYS_DIR, LOCATOR_EXT, MANIFEST_EXT, PACKS_DIR,
    SNAPSHOT_FILE,
};
use romlib_format::limits::MAX_DICT_LEN;
use romlib_format::path::check_title_id;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What holds a library's files.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A library folder.
    Folder,
    /// A portable file: manifests, locators, packs and dictionaries in one file.
    Portable(Arc<Portable>),
    /// A library folder on an HTTP server.
    Remote(Arc<Remote>),
}

/// A library folder, a portable file, or a library on an HTTP server.
#[derive(Debug, Clone)]
pub struct Library {
    /// The folder, the portable file, or the URL (as a path, for messages).
    root: PathBuf,
    kind: Kind,
    /// The layout of `games/` a writer writes (and a reader tries first).
    games: GamesLayout,
    /// Whether `games` is the layout (a writer, which put every file where it belongs), or
    /// only the first guess (a reader, which finds a file in the other layout too).
    games_known: bool,
}

/// `packs/pack-NNNN.pkg` as a relative path (with `/`).
pub fn pack_rel(id: u32) -> String {
    let mut buf = [0u8; 20];
    format!("{PACKS_DIR}/{}", pack_file_name(id, &mut buf))
}

/// The folder of `games/` that holds game `title`'s files in `layout`, as a relative path:
/// `games`, or `games/<shard>`.
pub fn game_dir_rel(title: &str, layout: GamesLayout) -> String {
    match layout {
        GamesLayout::Flat => GAMES_DIR.to_string(),
        GamesLayout::Sharded => format!("{GAMES_DIR}/{}", shard_of(title)),
    }
}

/// The shard folder's name of game `title` (SPEC section 1): the first byte of the BLAKE3 of
/// its id, as two lower-case hex digits.
pub fn shard_of(title: &str) -> String {
    let n = shard_dir_name(blake3::hash(title.as_bytes()).as_bytes()[0]);
    String::from_utf8_lossy(&n).into_owned()
}

/// `games/[<shard>/]<title>.manifest` as a relative path.
pub fn manifest_rel(title: &str, layout: GamesLayout) -> String {
    format!("{}/{title}.{MANIFEST_EXT}", game_dir_rel(title, layout))
}

/// `games/[<shard>/]<title>.locator` as a relative path.
pub fn locator_rel(title: &str, layout: GamesLayout) -> String {
    format!("{}/{title}.{LOCATOR_EXT}", game_dir_rel(title, layout))
}

/// `dir` (`games/`, or `parity/games/`), then the shard folders in it, sorted: real folders
/// named by two lower-case hex digits, never links. Just `dir` when it is absent.
pub fn shard_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, "read directory", e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, "read directory", e))?;
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let name = e.file_name();
        if is_dir && name.to_str().and_then(parse_shard_dir_name).is_some() {
            out.push(e.path());
        }
    }
    out[1..].sort();
    Ok(out)
}

/// The layout of `games/` that the snapshot of the library folder `root` names in its
/// header (read unverified, as a hint of where to look first: a reader checks what it
/// finds, and looks in the other layout too); flat without one.
fn games_hint(root: &Path) -> GamesLayout {
    use std::io::Read;
    let mut head = [0u8; 256];
    let Ok(f) = crate::fsio::open_existing(&root.join(SNAPSHOT_FILE), "snapshot") else {
        return GamesLayout::Flat;
    };
    let n = f.take(head.len() as u64).read(&mut head).unwrap_or(0);
    let head = &head[..n];
    let sharded = head.starts_with(romlib_format::snapshot::MAGIC_LINE_2.as_bytes())
        && head.windows(15).any(|w| w == b"\ngames sharded\n");
    match sharded {
        true => GamesLayout::Sharded,
        false => GamesLayout::Flat,
    }
}

/// Where a builder stages the new locator that replaces the one at `path`:
/// `.<name>.tmp` beside it.
pub fn staged_locator(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// `dicts/<id as 8 hex digits>.zdict` as a relative path.
pub fn dict_rel(id: u32) -> String {
    let mut buf = [0u8; DICT_FILE_NAME_LEN];
    format!("{DICTS_DIR}/{}", dict_file_name(id, &mut buf))
}

impl Library {
    /// The library folder rooted at `root` (nothing is read: it may not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            kind: Kind::Folder,
            games: GamesLayout::Flat,
            games_known: false,
        }
    }

    /// This library with its `games/` in `layout`, known (a writer's, which put every
    /// file where `layout` says): paths are `layout`'s, never the other's.
    pub fn with_games_layout(mut self, layout: GamesLayout) -> Self {
        self.games = layout;
        self.games_known = true;
        self
    }

    /// The layout of `games/` paths are made in (for a reader: the one tried first).
    pub fn games_layout(&self) -> GamesLayout {
        self.games
    }

    /// The library served at `url` (any static HTTP or HTTPS server), downloading
    /// manifests and locators into `scratch` (they are unlinked as soon as they are open);
    /// `ca_file` adds certificate authorities for `https://`; a server sending under
    /// `min_rate` bytes per second (0: any) is given up; an expired snapshot is refused
    /// unless `allow_expired`.
    pub fn remote(
        url: &str,
        scratch: &Path,
        timeout: std::time::Duration,
        min_rate: u64,
        ca_file: Option<&Path>,
        allow_expired: bool,
    ) -> Result<Self> {
        let r = Remote::new(url, scratch, timeout, min_rate, ca_file, allow_expired)?;
        Ok(Self {
            root: PathBuf::from(r.url().to_string()),
            kind: Kind::Remote(Arc::new(r)),
            games: GamesLayout::Flat,
            games_known: false,
        })
    }

    /// Opens what a reader was given with `-r`: a portable file when `path` is a file,
    /// else a library folder (one that holds `games/`, `packs/` or `index.db`).
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
                what: "library folder or portable file",
            });
        }
        let looks_like_library = [GAMES_DIR, PACKS_DIR, INDEX_FILE]
            .iter()
            .any(|p| path.join(p).exists());
        if path.is_dir() && !looks_like_library {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
                what: "romlib library (no games/, packs/ or index.db in it)",
            });
        }
        if path.is_file() {
            Ok(Self {
                root: path.to_path_buf(),
                kind: Kind::Portable(Arc::new(Portable::open(path)?)),
                games: GamesLayout::Flat,
                games_known: false,
            })
        } else {
            let mut lib = Self::new(path);
            lib.games = games_hint(path);
            Ok(lib)
        }
    }

    /// What holds the library.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// The server this library is on, if it is remote.
    pub fn remote_source(&self) -> Option<&Remote> {
        match &self.kind {
            Kind::Remote(r) => Some(r),
            _ => None,
        }
    }

    /// The portable file this library is, if it is one.
    pub fn portable(&self) -> Option<&Portable> {
        match &self.kind {
            Kind::Portable(p) => Some(p),
            _ => None,
        }
    }

    /// The library's root folder, the portable file's path, or the server's URL.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What names the library file `rel` in messages: its path in the folder, its URL,
    /// or (inside a portable file) the file itself.
    fn display(&self, rel: &str) -> PathBuf {
        match &self.kind {
            Kind::Folder => self.root.join(rel),
            Kind::Portable(_) => self.root.clone(),
            Kind::Remote(r) => r.display_path(rel),
        }
    }

    /// `packs/`.
    pub fn packs_dir(&self) -> PathBuf {
        self.root.join(PACKS_DIR)
    }

    /// `packs/pack-NNNN.pkg`; for a portable file, the file (what error messages name).
    pub fn pack_path(&self, id: u32) -> PathBuf {
        self.display(&pack_rel(id))
    }

    /// `games/`; for a portable file, the file.
    pub fn games_dir(&self) -> PathBuf {
        match self.kind {
            Kind::Portable(_) => self.root.clone(),
            _ => self.root.join(GAMES_DIR),
        }
    }

    /// The folder that holds game `title`'s files (`games/`, or its shard folder), in the
    /// layout paths are made in.
    pub fn game_dir(&self, title: &str) -> PathBuf {
        self.root.join(game_dir_rel(title, self.games))
    }

    /// `games/` and every shard folder in it (real folders with a shard's name, never
    /// links): where a game's files, and a builder's temporary files, may be. For a writer
    /// of a flat library, which moved every file out of shard folders when it opened,
    /// `games/` alone, unlisted.
    pub fn game_dirs(&self) -> Result<Vec<PathBuf>> {
        let games = self.games_dir();
        let flat_writer = self.games_known && self.games == GamesLayout::Flat;
        if !matches!(self.kind, Kind::Folder) || flat_writer {
            return Ok(vec![games]);
        }
        shard_dirs(&games)
    }

    /// The layout in which a library folder holds game `title`: the known one (a writer's);
    /// for a reader, the first guess's when its manifest is there, else the other's when
    /// it is there, else the first guess's.
    fn layout_of(&self, title: &str) -> GamesLayout {
        if self.games_known
            || std::fs::symlink_metadata(self.file_at(title, MANIFEST_EXT, self.games)).is_ok()
        {
            return self.games;
        }
        let other = self.games.other();
        if std::fs::symlink_metadata(self.file_at(title, MANIFEST_EXT, other)).is_ok() {
            other
        } else {
            self.games
        }
    }

    /// Game `title`'s file with extension `ext` in `layout`, in a library folder.
    fn file_at(&self, title: &str, ext: &str, layout: GamesLayout) -> PathBuf {
        self.root
            .join(game_dir_rel(title, layout))
            .join(format!("{title}.{ext}"))
    }

    /// `games/[<shard>/]<title>.manifest`; for a portable file, `<file>/<title>` (what
    /// error messages name).
    pub fn manifest_path(&self, title: &str) -> PathBuf {
        match &self.kind {
            Kind::Portable(_) => self.root.join(title),
            Kind::Folder => self.file_at(title, MANIFEST_EXT, self.layout_of(title)),
            Kind::Remote(r) => self.display(&manifest_rel(title, r.games_layout())),
        }
    }

    /// `games/[<shard>/]<title>.locator`.
    pub fn locator_path(&self, title: &str) -> PathBuf {
        match &self.kind {
            Kind::Portable(_) => self.games_dir().join(format!("{title}.{LOCATOR_EXT}")),
            Kind::Folder => {
                // Beside the manifest (a staged locator is there too); for a reader, in the
                // other layout when only that one has it (a library being converted).
                let layout = self.layout_of(title);
                let path = self.file_at(title, LOCATOR_EXT, layout);
                if self.games_known || std::fs::symlink_metadata(&path).is_ok() {
                    return path;
                }
                let other = self.file_at(title, LOCATOR_EXT, layout.other());
                let staged = staged_locator(&path);
                if std::fs::symlink_metadata(&staged).is_err()
                    && std::fs::symlink_metadata(&other).is_ok()
                {
                    other
                } else {
                    path
                }
            }
            Kind::Remote(r) => self.display(&locator_rel(title, r.games_layout())),
        }
    }

    /// `dicts/`.
    pub fn dicts_dir(&self) -> PathBuf {
        self.root.join(DICTS_DIR)
    }

    /// `dicts/<id as 8 hex digits>.zdict`; for a portable file, the file (what error
    /// messages name).
    pub fn dict_path(&self, id: u32) -> PathBuf {
        self.display(&dict_rel(id))
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
    /// the portable file's copy, or a download of the server's.
    pub fn open_manifest(&self, title: &str) -> Result<ManifestFile> {
        self.open_manifest_checked(title, None)
    }

    /// [`Library::open_manifest`]; over HTTP with `trust`, the download checks the
    /// signature before the chunk table and reads no byte past the signed length.
    fn open_manifest_checked(
        &self,
        title: &str,
        trust: Option<&TrustStore>,
    ) -> Result<ManifestFile> {
        match &self.kind {
            Kind::Folder => ManifestFile::open(&self.manifest_path(title)),
            Kind::Remote(r) => {
                if let Some(t) = trust {
                    r.expect_game(title, t)?;
                }
                let (rel, file) = match (r.download_game_file(title, false, trust), trust) {
                    // The snapshot may have been replaced by a publication since it was
                    // read: once more with the current one.
                    (Err(Error::Mismatch { .. }), Some(t)) => {
                        r.forget_snapshot();
                        r.expect_game(title, t)?;
                        r.download_game_file(title, false, trust)?
                    }
                    (got, _) => got?,
                };
                let path = r.display_path(&rel);
                let len = file_len(&file, &path)?;
                ManifestFile::open_in(&path, file, 0, len)
            }
            Kind::Portable(p) => {
                let g = p.game(title).ok_or_else(|| Error::NotFound {
                    path: self.root.join(title),
                    what: "game in this portable file",
                })?;
                // A file of its own, not a clone: the manifest reads through its cursor,
                // which clones would share with every other game's reader.
                let file =
                    std::fs::File::open(p.path()).map_err(|e| Error::io(p.path(), "open", e))?;
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
        }
    }

    /// Whether the library holds game `title` (its manifest exists; not yet checked).
    pub fn has_game(&self, title: &str) -> bool {
        match &self.kind {
            Kind::Folder => self.manifest_path(title).is_file(),
            Kind::Portable(p) => p.game(title).is_some(),
            Kind::Remote(_) => true, // the download says
        }
    }

    /// Resolves `-g TITLE|MANIFEST` to a manifest file, opens it and verifies its
    /// signature against `trust`: the only way readers get a game's manifest.
    pub fn open_game(&self, game: &str, trust: &TrustStore) -> Result<VerifiedManifest> {
        let as_path = Path::new(game);
        let by_path = self.portable().is_none()
            && game.ends_with(&format!(".{MANIFEST_EXT}"))
            && as_path.is_file();
        let m = if by_path {
            ManifestFile::open(as_path)?
        } else {
            check_title_id(game).map_err(|problem| Error::UnsafePath {
                path: self.games_dir(),
                entry: game.to_string(),
                problem,
            })?;
            if !self.has_game(game) {
                // Over HTTP the titles come from the catalog: one more request, on the
                // error path only.
                let closest = self
                    .titles()
                    .map(|t| closest_titles(&t, game, 3))
                    .unwrap_or_default();
                return Err(Error::NoSuchGame {
                    path: self.manifest_path(game),
                    closest,
                });
            }
            match self.open_manifest_checked(game, Some(trust)) {
                Ok(m) => m,
                // A server without the manifest (404): when its catalog does not list
                // the title either, the title is what is wrong.
                Err(e @ (Error::NotFound { .. } | Error::Mismatch { .. }))
                    if matches!(self.kind, Kind::Remote(_)) =>
                {
                    match self.titles() {
                        Ok(t) if t.binary_search_by(|x| x.as_str().cmp(game)).is_err() => {
                            return Err(Error::NoSuchGame {
                                path: self.manifest_path(game),
                                closest: closest_titles(&t, game, 3),
                            });
                        }
                        _ => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        };
        let m = m.verify(trust)?;
        if !by_path && matches!(self.kind, Kind::Folder) {
            self.check_snapshot(&m, trust)?;
        }
        if !by_path && m.body().title_id != game {
            return Err(Error::manifest(
                m.path(),
                format!("manifest is for title {:?}", m.body().title_id),
            ));
        }
        Ok(m)
    }

    /// In a library folder with a signed snapshot (SPEC section 15): refuses manifest `m`
    /// when the snapshot names a later revision of its title (an older manifest put back
    /// in place of the one published). A manifest of a later revision, or of a title the
    /// snapshot does not list yet, is one a build published after the snapshot, and is
    /// read; one of the same revision is the published one or a damaged copy of it, which
    /// the checks of every byte find.
    fn check_snapshot(&self, m: &VerifiedManifest, trust: &TrustStore) -> Result<()> {
        let path = self.root.join(SNAPSHOT_FILE);
        let file = match crate::fsio::open_existing(&path, "snapshot") {
            Ok(f) => f,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let body = m.body();
        let (snap, expected) = Snapshot::open_for(&path, file, trust, &body.title_id)?;
        match expected {
            Some(e) if body.revision < e.revision => Err(snap.mismatch(
                m.path(),
                "manifest",
                format!(
                    "revision {}, where it names the later revision {}",
                    romlib_format::manifest::Revision(body.revision),
                    romlib_format::manifest::Revision(e.revision)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The bytes of zstd dictionary `id` (at most `MAX_DICT_LEN`).
    pub fn read_dict(&self, id: u32) -> Result<Vec<u8>> {
        use std::io::Read;
        match &self.kind {
            Kind::Remote(r) => r.read_dict(&dict_rel(id)),
            Kind::Portable(p) => {
                let s = p.dict(id).ok_or_else(|| {
                    Error::manifest(p.path(), format!("dictionary {id:08x} is not in the file"))
                })?;
                if s.len > MAX_DICT_LEN {
                    return Err(Error::manifest(p.path(), "dictionary exceeds MAX_DICT_LEN"));
                }
                let mut buf = vec![0u8; s.len as usize];
                read_exact_at(p.file(), &mut buf, s.offset)
                    .map_err(|e| Error::io(p.path(), "read", e))?;
                Ok(buf)
            }
            Kind::Folder => {
                let path = self.dict_path(id);
                let f = std::fs::File::open(&path)
                    .map_err(|e| Error::io(&path, "open dictionary", e))?;
                let mut buf = Vec::new();
                f.take(MAX_DICT_LEN + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::io(&path, "read", e))?;
                if buf.len() as u64 > MAX_DICT_LEN {
                    return Err(Error::manifest(&path, "dictionary exceeds MAX_DICT_LEN"));
                }
                Ok(buf)
            }
        }
    }

    /// Title ids of every game, sorted: the manifests in `games/`, the portable file's, or
    /// the server's `catalog.txt`.
    pub fn titles(&self) -> Result<Vec<String>> {
        let dir = match &self.kind {
            Kind::Portable(p) => return Ok(p.games().iter().map(|g| g.title.clone()).collect()),
            Kind::Remote(r) => return r.titles(),
            Kind::Folder => self.games_dir(),
        };
        if !dir.is_dir() {
            return Err(Error::NotFound {
                path: dir,
                what: "library games directory",
            });
        }
        let suffix = format!(".{MANIFEST_EXT}");
        let mut out = Vec::new();
        // `games/` is read once: its manifests, and its shard folders (real folders, never
        // links), read after it.
        let mut folders: Vec<(PathBuf, Option<String>)> = vec![(dir, None)];
        let mut next = 0;
        while next < folders.len() {
            let (folder, shard) = folders[next].clone();
            next += 1;
            let rd =
                std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, "read directory", e))?;
            for entry in rd {
                let entry = entry.map_err(|e| Error::io(&folder, "read directory", e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with('.') {
                    continue;
                }
                let Some(title) = name.strip_suffix(suffix.as_str()) else {
                    if shard.is_none()
                        && parse_shard_dir_name(name).is_some()
                        && entry.file_type().is_ok_and(|t| t.is_dir())
                    {
                        folders.push((entry.path(), Some(name.to_string())));
                    }
                    continue;
                };
                // A shard folder's games are those whose shard it is: a manifest anywhere
                // else is not where a reader looks for it (`romlib verify` names it).
                if shard.as_ref().is_none_or(|s| *s == shard_of(title)) {
                    out.push(title.to_string());
                }
            }
        }
        out.sort();
        // A game being moved to the other layout is listed once.
        out.dedup();
        Ok(out)
    }
}

/// Up to `n` of `titles` closest to `wanted`, closest first: the same title in another
/// case first, then by edit distance (case-insensitive), at most a third of the longer
/// name apart; for the hint of an error naming an unknown title.
pub fn closest_titles(titles: &[String], wanted: &str, n: usize) -> Vec<String> {
    let w: Vec<char> = wanted.to_lowercase().chars().collect();
    let mut scored: Vec<(usize, &String)> = titles
        .iter()
        .filter_map(|t| {
            let c: Vec<char> = t.to_lowercase().chars().collect();
            let d = edit_distance(&w, &c);
            let limit = w.len().max(c.len()) / 3;
            (d <= limit).then_some((d, t))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, t)| t.clone()).collect()
}

/// Levenshtein distance of `a` and `b` (one row of the table at a time).
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod closest_tests {
    use super::closest_titles;

    #[test]
    fn the_closest_titles_come_first_and_strangers_not_at_all() {
        let t: Vec<String> = ["pocket-demo", "Pocket-Demo-2", "tetris", "zelda"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            closest_titles(&t, "POCKET-DEMO", 2),
            ["pocket-demo", "Pocket-Demo-2"]
        );
        assert_eq!(closest_titles(&t, "tetirs", 3), ["tetris"]);
        assert!(closest_titles(&t, "metroid", 3).is_empty());
    }
}
