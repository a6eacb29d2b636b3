//! Parity for a library (SPEC section 13): Reed-Solomon recovery data for every pack and
//! every manifest, in `parity/packs/<pack>.par` and `parity/games/<title>.manifest.par`.
//!
//! The index, the locators and `catalog.txt` have none: `romlib rebuild-index` rebuilds
//! all three from the packs and the manifests, which parity protects.
//!
//! - [`update`] (`romlib parity`, `romlib build --parity`) writes what is missing or stale
//!   and never writes parity for a file that fails its own check (a damaged file would
//!   then look intact forever);
//! - [`check`] (`romlib verify`) tells, for every protected file, whether it is intact,
//!   damaged and repairable, or beyond its parity, and whether the parity itself is sound;
//! - [`repair`] (`romlib repair`) restores damaged files byte-identically and atomically.
//!
//! A file "passes its own check" when a pack's footer checksum and records are sound, or a
//! manifest opens, its chunk table hashes as its body says and (when the library's `keys/`
//! holds keys) its signature verifies. A file that passes its own check but differs from
//! what its parity protects is a newer version (or another library's file): its parity is
//! stale, and nothing is "repaired" back.

pub mod file;

use crate::error::{Error, Result};
use crate::library::writer::LibraryWriter;
use file::{RepairError, Scan};
use romlib_device::{Library, ManifestFile, TrustStore};
use romlib_format::layout::{
    parse_pack_file_name, GAMES_DIR, MANIFEST_EXT, PACKS_DIR, PARITY_DIR, PARITY_EXT,
};
use romlib_format::parity::ParityHeader;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Redundancy of `romlib parity` without `--percent`.
pub const DEFAULT_PERCENT: u32 = 5;

/// What kind of file a parity file protects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Pack `id`.
    Pack(u32),
    /// The manifest of a game.
    Manifest(String),
}

/// A file that parity protects (or should).
#[derive(Debug, Clone)]
pub struct Protected {
    /// Its path relative to the library (`packs/pack-0001.pkg`, `games/x.manifest`).
    pub rel: String,
    /// Its path.
    pub path: PathBuf,
    /// Its parity file's path.
    pub par: PathBuf,
    /// What it is.
    pub kind: Kind,
}

/// What a check of one protected file against its parity found.
#[derive(Debug, Clone)]
pub enum Status {
    /// No parity file.
    NoParity,
    /// The parity file cannot be used: damaged, or written for another file (the reason).
    BadParity(String),
    /// The file is the one protected (for a pack in a quick check: has its length);
    /// `bad_parity` recovery blocks are damaged.
    Intact {
        /// Damaged recovery blocks.
        bad_parity: Option<u64>,
        /// The redundancy the parity was written with.
        percent: u32,
    },
    /// The file is damaged or missing.
    Damaged(Scan, u32),
    /// The file passes its own check but is not the one protected: the parity is stale
    /// (an older version of the file, or another library's).
    Stale,
    /// Parity for a game that is no longer in the library (its manifest is gone and the
    /// index does not count it).
    Orphan,
}

/// The parity file of library-relative path `rel`.
pub fn parity_path(lib: &Library, rel: &str) -> PathBuf {
    lib.root()
        .join(PARITY_DIR)
        .join(format!("{rel}.{PARITY_EXT}"))
}

fn pack(lib: &Library, id: u32) -> Protected {
    let mut b = [0u8; 20];
    let rel = format!(
        "{PACKS_DIR}/{}",
        romlib_format::layout::pack_file_name(id, &mut b)
    );
    Protected {
        par: parity_path(lib, &rel),
        path: lib.pack_path(id),
        rel,
        kind: Kind::Pack(id),
    }
}

fn manifest(lib: &Library, title: &str) -> Protected {
    // The name the parity is written for is the flat one in either layout, so that a
    // change of layout moves parity files without writing them again.
    let rel = format!("{GAMES_DIR}/{title}.{MANIFEST_EXT}");
    Protected {
        par: crate::library::games_layout::manifest_parity_path(lib, title),
        path: lib.manifest_path(title),
        rel,
        kind: Kind::Manifest(title.to_string()),
    }
}

fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, "read directory", e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, "read directory", e))?;
        if let Some(n) = e.file_name().to_str() {
            if !n.starts_with('.') {
                out.push(n.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every file parity protects: the sealed packs and the manifests, and the files that
/// have a parity file but are missing.
pub fn protected_files(lib: &Library) -> Result<Vec<Protected>> {
    let mut packs: BTreeSet<u32> = list_dir(&lib.packs_dir())?
        .iter()
        .filter_map(|n| parse_pack_file_name(n))
        .collect();
    let mut titles: BTreeSet<String> = lib.titles()?.into_iter().collect();
    let par_dir = lib.root().join(PARITY_DIR);
    let ext = format!(".{PARITY_EXT}");
    for n in list_dir(&par_dir.join(PACKS_DIR))? {
        if let Some(id) = n.strip_suffix(&ext).and_then(parse_pack_file_name) {
            packs.insert(id);
        }
    }
    let suffix = format!(".{MANIFEST_EXT}{ext}");
    let mut names = Vec::new();
    for dir in romlib_device::library::shard_dirs(&par_dir.join(GAMES_DIR))? {
        names.extend(list_dir(&dir)?);
    }
    for n in names {
        if let Some(t) = n.strip_suffix(&suffix) {
            if romlib_format::path::check_title_id(t).is_ok() {
                titles.insert(t.to_string());
            }
        }
    }
    let mut out: Vec<Protected> = packs.into_iter().map(|id| pack(lib, id)).collect();
    out.extend(titles.iter().map(|t| manifest(lib, t)));
    Ok(out)
}

/// What the checks need of the library: the trusted keys in its `keys/` and the titles its
/// index counts (when it can be read).
pub struct Context {
    trust: Option<TrustStore>,
    indexed: Option<BTreeSet<String>>,
}

impl Context {
    /// Reads the library's keys and the titles of its index.
    pub fn new(lib: &Library) -> Self {
        let trust = TrustStore::from_dir(&lib.keys_dir()).ok();
        Self {
            trust,
            indexed: indexed_titles(lib),
        }
    }
}

/// The titles the index counts, or `None` when the index is missing or damaged (every page
/// is checked before a table is read).
fn indexed_titles(lib: &Library) -> Option<BTreeSet<String>> {
    use redb::{ReadableDatabase, ReadableTable};
    let index = lib.index_path();
    let db = crate::library::index::open_checked(&index).ok()?;
    let txn = db.begin_read().ok()?;
    let games = txn.open_table(crate::library::index::GAMES).ok()?;
    let mut out = BTreeSet::new();
    for row in games.iter().ok()? {
        out.insert(row.ok()?.0.value().to_string());
    }
    Some(out)
}

/// Whether a file passes its own check (see the module's documentation).
pub fn passes_own_check(p: &Protected, cx: &Context) -> bool {
    match &p.kind {
        Kind::Pack(id) => crate::library::pack_scan::scan_pack(&p.path, *id).is_ok(),
        Kind::Manifest(title) => (|| -> romlib_device::Result<bool> {
            let m = ManifestFile::open(&p.path)?;
            if m.unverified_body().title_id != *title {
                return Ok(false);
            }
            let mut table = match &cx.trust {
                Some(t) => m.verify(t)?.chunks()?,
                None => m.unverified_chunks()?,
            };
            while table.next_chunk()?.is_some() {}
            table.finish()?;
            Ok(true)
        })()
        .unwrap_or(false),
    }
}

/// Checks one protected file against its parity. `quick` checks a pack by its length only
/// (packs never change once sealed: `romlib verify` reads them in full), but its parity
/// file in full; manifests are always read.
pub fn status(p: &Protected, cx: &Context, quick: bool) -> Result<Status> {
    if !p.par.exists() {
        return Ok(Status::NoParity);
    }
    let (pf, h) = match file::open(&p.par, &p.rel) {
        Ok(x) => x,
        Err(why) => return Ok(Status::BadParity(why)),
    };
    let present = p.path.exists();
    if quick && present && matches!(p.kind, Kind::Pack(_)) {
        let len = std::fs::metadata(&p.path)
            .map_err(|e| Error::io(&p.path, "stat", e))?
            .len();
        if len == h.geometry.file_len {
            return Ok(Status::Intact {
                bad_parity: Some(file::bad_recovery_blocks(&pf, &p.par, &h)?),
                percent: h.percent,
            });
        }
    }
    let scan = file::scan(&p.path, &pf, &p.par, &h)?;
    if scan.file_intact(&h) {
        return Ok(Status::Intact {
            bad_parity: Some(scan.bad_parity),
            percent: h.percent,
        });
    }
    if !present {
        if let (Kind::Manifest(t), Some(idx)) = (&p.kind, &cx.indexed) {
            if !idx.contains(t) {
                return Ok(Status::Orphan);
            }
        }
        return Ok(Status::Damaged(scan, h.geometry.parity_shards));
    }
    if passes_own_check(p, cx) {
        return Ok(Status::Stale);
    }
    Ok(Status::Damaged(scan, h.geometry.parity_shards))
}

/// One line about a damaged file: repairable or not, and how much is damaged.
pub fn damage_text(scan: &Scan, parity_shards: u32) -> String {
    let what = match scan.len {
        None => "missing".to_string(),
        Some(_) => format!(
            "damaged ({} damaged block{})",
            scan.bad_data,
            if scan.bad_data == 1 { "" } else { "s" }
        ),
    };
    if scan.repairable() {
        format!("{what}; repairable with parity: run romlib repair -r LIBRARY")
    } else {
        format!(
            "{what}; beyond what its parity can restore ({} window{} with more than {} \
             damaged blocks, at worst {})",
            scan.lost_windows,
            if scan.lost_windows == 1 { "" } else { "s" },
            parity_shards,
            scan.worst_window
        )
    }
}

/// What [`update`] did.
#[derive(Debug, Default)]
pub struct UpdateReport {
    /// Parity files written (library-relative paths of the protected files).
    pub written: Vec<String>,
    /// Parity files already current.
    pub current: u64,
    /// Parity files of games no longer in the library, removed.
    pub removed: Vec<String>,
    /// Files whose parity could not be written (damaged: repair them first), with why.
    pub problems: Vec<(String, String)>,
    /// Bytes of the files protected by the parity written.
    pub protected_bytes: u64,
    /// Bytes of the parity files written.
    pub parity_bytes: u64,
}

/// The redundancy of a library's existing parity (that of its first parity file), if any.
pub fn library_percent(lib: &Library) -> Option<u32> {
    if !lib.root().join(PARITY_DIR).is_dir() {
        return None;
    }
    protected_files(lib).ok()?.iter().find_map(|p| {
        file::open(&p.par, &p.rel)
            .ok()
            .map(|(_, h): (_, ParityHeader)| h.percent)
    })
}

/// Writes parity at `percent` for every pack and manifest whose parity is missing, damaged,
/// stale or of another percentage; removes parity of games no longer in the library.
/// Takes the library's lock. `each` is told every file's path as it is done.
pub fn update(root: &Path, percent: u32, each: &dyn Fn(&str)) -> Result<UpdateReport> {
    check_percent(percent)?;
    let _lock = lock(root)?;
    update_locked(&Library::new(root), percent, each)
}

/// [`update`] by a caller that holds the library's lock.
pub fn update_locked(lib: &Library, percent: u32, each: &dyn Fn(&str)) -> Result<UpdateReport> {
    check_percent(percent)?;
    let cx = Context::new(lib);
    let mut rep = UpdateReport::default();
    for p in protected_files(lib)? {
        each(&p.rel);
        let st = match status(&p, &cx, true) {
            Ok(st) => st,
            Err(e) => {
                rep.problems.push((p.rel.clone(), e.to_string()));
                continue;
            }
        };
        let write = match st {
            Status::Intact {
                bad_parity,
                percent: had,
            } => had != percent || bad_parity.unwrap_or(0) > 0,
            Status::Orphan => {
                std::fs::remove_file(&p.par).map_err(|e| Error::io(&p.par, "remove", e))?;
                rep.removed.push(p.rel.clone());
                continue;
            }
            Status::Damaged(scan, m) => {
                rep.problems.push((p.rel.clone(), damage_text(&scan, m)));
                continue;
            }
            Status::NoParity | Status::BadParity(_) | Status::Stale => true,
        };
        if !write {
            rep.current += 1;
            continue;
        }
        if !passes_own_check(&p, &cx) {
            rep.problems.push((
                p.rel.clone(),
                "fails its own check and its parity cannot restore it: no parity written for \
                 a damaged file"
                    .into(),
            ));
            continue;
        }
        let h = match file::write(&p.path, &p.rel, &p.par, percent) {
            Ok(h) => h,
            // Out of room or unreadable: said once, for the whole run.
            Err(e @ Error::Io { .. }) => return Err(e),
            Err(e) => {
                rep.problems.push((p.rel.clone(), e.to_string()));
                continue;
            }
        };
        rep.protected_bytes += h.geometry.file_len;
        rep.parity_bytes += h.geometry.parity_file_len();
        rep.written.push(p.rel);
    }
    Ok(rep)
}

/// Refuses a redundancy outside 1 to `MAX_PARITY_PERCENT` (a usage error).
pub fn check_percent(percent: u32) -> Result<()> {
    if percent == 0 || percent > romlib_format::limits::MAX_PARITY_PERCENT {
        return Err(Error::Usage(format!(
            "the parity percentage must be 1 to {}, not {percent}",
            romlib_format::limits::MAX_PARITY_PERCENT
        )));
    }
    Ok(())
}

/// What [`repair`] did.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// Files restored, with the number of blocks restored.
    pub repaired: Vec<(String, u64)>,
    /// Damaged files that stay damaged, with why.
    pub unrepaired: Vec<(String, String)>,
    /// Parity files that need rewriting (`romlib parity`), with why.
    pub parity_problems: Vec<(String, String)>,
    /// Files checked and found intact.
    pub intact: u64,
    /// Files without parity (not checked).
    pub unprotected: u64,
    /// Bytes of the files restored.
    pub repaired_bytes: u64,
}

/// Restores every damaged pack and manifest that its parity can restore. Takes the library's
/// lock; each file is replaced atomically only once it hashes as its parity recorded.
pub fn repair(root: &Path, each: &dyn Fn(&str)) -> Result<RepairReport> {
    let _lock = lock(root)?;
    let lib = Library::new(root);
    let cx = Context::new(&lib);
    let mut rep = RepairReport::default();
    for p in protected_files(&lib)? {
        each(&p.rel);
        let st = match status(&p, &cx, false) {
            Ok(st) => st,
            Err(e) => {
                rep.unrepaired
                    .push((p.rel.clone(), format!("not checked: {e}")));
                continue;
            }
        };
        match st {
            Status::NoParity => rep.unprotected += 1,
            Status::Intact { bad_parity, .. } => {
                rep.intact += 1;
                if let Some(n @ 1..) = bad_parity {
                    rep.parity_problems.push((
                        p.rel.clone(),
                        format!(
                            "{n} damaged recovery blocks: romlib parity -r LIBRARY rewrites it"
                        ),
                    ));
                }
            }
            Status::BadParity(why) => {
                rep.parity_problems
                    .push((p.rel.clone(), format!("its parity file {why}")));
                if p.path.exists() && !passes_own_check(&p, &cx) {
                    rep.unrepaired.push((
                        p.rel.clone(),
                        "damaged, and its parity cannot be used".into(),
                    ));
                }
            }
            Status::Stale => rep.parity_problems.push((
                p.rel.clone(),
                "its parity is stale (written for another version of the file): romlib \
                 parity -r LIBRARY rewrites it"
                    .into(),
            )),
            Status::Orphan => rep.parity_problems.push((
                p.rel.clone(),
                "parity of a game no longer in the library: romlib parity -r LIBRARY removes it"
                    .into(),
            )),
            Status::Damaged(scan, m) => {
                let (pf, h) = file::open(&p.par, &p.rel)
                    .map_err(|why| Error::library(&p.par, format!("parity file {why}")))?;
                match file::repair(&p.path, &pf, &p.par, &h, Some(&scan)) {
                    Ok(n) => {
                        rep.repaired_bytes += h.geometry.file_len;
                        rep.repaired.push((p.rel.clone(), n));
                    }
                    Err(RepairError::Insufficient { .. }) => {
                        rep.unrepaired.push((p.rel.clone(), damage_text(&scan, m)))
                    }
                    Err(RepairError::Failed(e)) => rep
                        .unrepaired
                        .push((p.rel.clone(), format!("not repaired: {e}"))),
                }
            }
        }
    }
    Ok(rep)
}

/// Checks every protected file against its parity for `romlib verify`: `problem` and
/// `notice` receive (path, one line).
pub fn check(
    lib: &Library,
    problem: &mut dyn FnMut(PathBuf, String),
    notice: &mut dyn FnMut(PathBuf, String),
) -> Result<()> {
    let has_parity = lib.root().join(PARITY_DIR).is_dir();
    if !has_parity {
        return Ok(());
    }
    let cx = Context::new(lib);
    for p in protected_files(lib)? {
        let st = match status(&p, &cx, false) {
            Ok(st) => st,
            Err(e) => {
                problem(
                    p.path.clone(),
                    format!("not checked against its parity: {e}"),
                );
                continue;
            }
        };
        match st {
            Status::NoParity => notice(
                p.path.clone(),
                "has no parity: romlib parity -r LIBRARY writes it".into(),
            ),
            Status::Intact { bad_parity, .. } => {
                if let Some(n @ 1..) = bad_parity {
                    problem(
                        p.par.clone(),
                        format!(
                            "parity of {} has {n} damaged recovery blocks (the file is intact): \
                             romlib parity -r LIBRARY rewrites it",
                            p.rel
                        ),
                    );
                }
            }
            Status::BadParity(why) => problem(
                p.par.clone(),
                format!(
                    "parity of {} {why}; romlib parity -r LIBRARY rewrites it",
                    p.rel
                ),
            ),
            Status::Stale => problem(
                p.par.clone(),
                format!(
                    "parity of {} is stale or from another library (the file passes its own \
                     check but is not the file this parity protects): romlib parity -r \
                     LIBRARY rewrites it",
                    p.rel
                ),
            ),
            Status::Orphan => notice(
                p.par.clone(),
                "parity of a game no longer in the library: romlib parity -r LIBRARY removes it"
                    .into(),
            ),
            Status::Damaged(scan, m) => problem(p.path.clone(), damage_text(&scan, m)),
        }
    }
    Ok(())
}

/// Takes the library's lock, as a build does, for `romlib parity` and `romlib repair`.
fn lock(root: &Path) -> Result<LibraryWriter> {
    let lib = Library::new(root);
    if !lib.packs_dir().is_dir() || !lib.games_dir().is_dir() {
        return Err(Error::library(
            root,
            "not a library folder (it needs packs/ and games/)",
        ));
    }
    LibraryWriter::lock_only(root)
}
