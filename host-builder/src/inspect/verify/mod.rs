//! `romlib verify`: a full integrity check of a library.
//!
//! Every pack is read once: its footer checksum is recomputed and every record is
//! decompressed and hashed (in parallel batches). Every manifest's signature is checked
//! against the trusted keys and its chunk table is read. The index must agree with all of
//! it: every run of the chunk index is whole (its checksum) and sorted, every chunk entry
//! points at a record holding that chunk, every pack entry describes the pack on disk,
//! every chunk a manifest needs is indexed, and the index holds every manifest as
//! published.
//!
//! Nothing is written; a problem is recorded and the check goes on, so one run reports all.
//!
//! [`packs`] checks the packs, [`games`] the manifests and their locators; this file runs
//! both and checks the index against what they found.

mod games;
mod packs;

use crate::error::{Error, Result};
use crate::library::index::{GAMES, PACKS};
use crate::library::runs::ChunkIndex;
use crate::zstd_decoder::ZstdDecoder;
use redb::{ReadableDatabase, ReadableTable};
use romlib_device::{Library, TrustStore};
use romlib_format::index::{
    PackInfo, LIBRARY_FORMAT_FLAT, LIBRARY_FORMAT_VERSION, META_FORMAT, META_RUNS,
};
use romlib_format::layout::parse_dict_file_name;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::spill::{self, Sorted, Sorter};
use games::{
    check_manifest, report_broken_games, staged_manifests, Collect, Game, Known, LOCATED_LEN,
};
use packs::{check_deltas, check_packs, parse_placed, placed_row, record_at, Record, PLACED_LEN};

/// Most problems kept in a report (the count goes on).
pub const MAX_REPORTED: usize = 10_000;

/// One finding, about one file of the library.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The file.
    pub path: PathBuf,
    /// What is wrong (or worth knowing).
    pub what: String,
}

/// What `verify_library` checked and found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Whether a portable file was checked (no index; chunks counted per game).
    pub portable: bool,
    /// Packs read.
    pub packs: u64,
    /// Records decompressed and hashed.
    pub records: u64,
    /// Their uncompressed bytes.
    pub chunk_bytes: u64,
    /// Bytes of pack files read.
    pub pack_bytes: u64,
    /// Chunk entries in the index.
    pub index_chunks: u64,
    /// Manifests read.
    pub games: u64,
    /// Manifests whose signature verified against a trusted key.
    pub games_signed: u64,
    /// Problems (the library is damaged or inconsistent), at most [`MAX_REPORTED`].
    pub problems: Vec<Finding>,
    /// All problems, including those not kept.
    pub problem_count: u64,
    /// Harmless findings, such as a pack an interrupted build left for the next to adopt.
    pub notices: Vec<Finding>,
}

impl VerifyReport {
    /// Whether the library passed.
    pub fn ok(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, path: impl AsRef<Path>, what: impl Into<String>) {
        self.problem_count += 1;
        if self.problems.len() < MAX_REPORTED {
            self.problems.push(Finding {
                path: path.as_ref().to_path_buf(),
                what: what.into(),
            });
        }
    }

    fn notice(&mut self, path: impl AsRef<Path>, what: impl Into<String>) {
        self.notices.push(Finding {
            path: path.as_ref().to_path_buf(),
            what: what.into(),
        });
    }
}

/// The index's format version (`meta`), when it says one.
fn index_format(rtx: &redb::ReadTransaction) -> Option<u32> {
    let meta = rtx.open_table(crate::library::index::META).ok()?;
    let v = meta.get(META_FORMAT).ok()??;
    Some(u32::from_le_bytes(<[u8; 4]>::try_from(v.value()).ok()?))
}

/// Checks the whole library. Fails only when there is no library to check; everything
/// else is a finding in the report.
pub fn verify_library(
    lib: &Library,
    trust: &TrustStore,
    progress: &dyn Fn(u64),
) -> Result<VerifyReport> {
    if !lib.root().is_dir() {
        return Err(Error::library(lib.root(), "library folder does not exist"));
    }
    let mut rep = VerifyReport::default();
    let index_path = lib.index_path();
    // No build may write while the index is read: the builder's lock, taken shared.
    let _lock = crate::library::writer::lock_shared(lib)?;
    // A damaged index is one finding; the packs, manifests and locators are still checked
    // without it (every page is checked before a table is read).
    let db = if index_path.exists() {
        match crate::library::index::open_checked(&index_path) {
            Ok(db) => Some(db),
            Err(problem) => {
                rep.problem(&index_path, problem);
                None
            }
        }
    } else {
        rep.problem(
            &index_path,
            format!("index: missing; {}", crate::library::index::REBUILD),
        );
        None
    };
    let rtx = match db.as_ref().map(|d| d.begin_read()).transpose() {
        Ok(t) => t,
        Err(e) => {
            rep.problem(&index_path, format!("cannot read the index: {e}"));
            None
        }
    };
    let index_packs = read_pack_table(rtx.as_ref(), &index_path, &mut rep);
    let dicts = load_dicts(lib, &mut rep);
    let indexed = rtx.is_some();
    let mut scanned = check_packs(lib, indexed, &index_packs, &dicts, &mut rep, progress)?;
    let broken = check_deltas(lib, &mut scanned, &mut rep, progress)?;
    let unreadable = std::mem::take(&mut scanned.unreadable);

    // An index an older romlib wrote (format version 1 to 3) keeps its chunks in tables of
    // another form: the next build upgrades it, and until then its entries are not
    // checked.
    let format = rtx.as_ref().and_then(index_format);
    let chunks_table = match format {
        Some(v) if v < LIBRARY_FORMAT_FLAT => {
            rep.notice(
                &index_path,
                format!(
                    "index: format version {v}, written by an older romlib; the next \
                     `romlib build` upgrades it to {LIBRARY_FORMAT_FLAT} (its chunk \
                     entries are not checked until then)"
                ),
            );
            None
        }
        Some(v) if v > LIBRARY_FORMAT_VERSION => {
            rep.problem(
                &index_path,
                format!(
                    "index: format version {v} is newer than this romlib supports \
                     ({LIBRARY_FORMAT_VERSION}): update romlib"
                ),
            );
            None
        }
        _ => rtx
            .as_ref()
            .and_then(|t| open_runs(lib, t, &index_path, &mut rep)),
    };
    let games_table = rtx.as_ref().and_then(|t| t.open_table(GAMES).ok());
    // Where each game's locator says its chunks are (checked when there is no index).
    let mut located = Sorter::<LOCATED_LEN>::new();
    let mut titles = lib.titles()?;
    let counted_of = |title: &str| {
        games_table
            .as_ref()
            .and_then(|t| t.get(title).ok().flatten().map(|v| *v.value()))
    };
    // A build killed between publishing the index and renaming its staged manifests into
    // place (SPEC section 6, rule 3) leaves them counted by the index: the next build
    // renames them. Until then they are the games' manifests as far as the index goes.
    let staged = staged_manifests(lib, &counted_of);
    for t in staged.keys() {
        if !titles.contains(t) {
            titles.push(t.clone());
        }
    }
    titles.sort();
    let mut unplaced = vec![0u64; titles.len()];
    for (game_no, title) in titles.iter().enumerate() {
        let counted = counted_of(title);
        let game = match staged.get(title) {
            Some(tmp) => {
                rep.notice(
                    tmp,
                    "a build was interrupted while publishing this manifest (the next build \
                     finishes it; devices see the previous version until then)",
                );
                Game {
                    title,
                    game_no: game_no as u32,
                    path: tmp.clone(),
                    counted,
                }
            }
            None => Game {
                title,
                game_no: game_no as u32,
                path: lib.manifest_path(title),
                counted,
            },
        };
        check_manifest(
            lib,
            game,
            trust,
            Known {
                chunks: chunks_table.as_ref(),
                unreadable: &unreadable,
            },
            Collect {
                located: &mut located,
                unplaced: &mut unplaced,
            },
            &mut rep,
        )?;
    }
    if chunks_table.is_none() {
        let records = scanned.records.take_rows();
        games::check_located(lib, &titles, located.finish()?, records, unplaced, &mut rep)?;
    }
    report_broken_games(lib, &titles, &broken, &mut rep);
    check_keys(lib, &mut rep);
    check_games_layout(lib, &mut rep)?;
    check_snapshot(lib, trust, &mut rep)?;
    if let Some(games) = &games_table {
        if let Ok(iter) = games.iter() {
            for row in iter.flatten() {
                let t = row.0.value().to_string();
                if titles.binary_search(&t).is_err() {
                    rep.problem(
                        &index_path,
                        format!("the index holds game {t:?} as published, but it has no manifest"),
                    );
                }
            }
        }
    }

    // Then every chunk entry against the packs (in place order).
    if let Some(chunks) = &chunks_table {
        let mut entries = Sorter::<PLACED_LEN>::new();
        let mut all = chunks.chunks()?;
        loop {
            let row = match all.next_row() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    rep.problem(&index_path, format!("chunk index unreadable: {e}"));
                    break;
                }
            };
            rep.index_chunks += 1;
            match chunks.decode_chunk(row) {
                Ok((hash, e)) => {
                    let r = Record {
                        hash,
                        ulen: e.ulen,
                        clen: e.clen,
                        method: e.method,
                    };
                    entries.push(placed_row(e.pack_id, e.offset, &r))?;
                }
                Err(e) => rep.problem(&index_path, e.to_string()),
            }
        }
        check_entry_places(
            &index_path,
            entries.finish()?,
            scanned.records.take_rows(),
            &unreadable,
            &mut rep,
        )?;
    } else if db.is_some() && !titles.is_empty() && format.is_none_or(|v| v >= LIBRARY_FORMAT_FLAT)
    {
        rep.problem(&index_path, "the index names no chunk runs");
    }

    // Last, every pack and manifest against its parity (when the library has parity):
    // whether each damaged file is repairable, and whether the parity itself is sound.
    let mut problems = Vec::new();
    let mut notices = Vec::new();
    crate::parity::check(lib, &mut |p, w| problems.push((p, w)), &mut |p, w| {
        notices.push((p, w))
    })?;
    for (p, w) in problems {
        rep.problem(p, w);
    }
    for (p, w) in notices {
        rep.notice(p, w);
    }
    Ok(rep)
}

/// The chunk index the checked index names, each run checked whole (its checksum, its
/// order); a run that fails is a problem, and the index's entries are then not used.
fn open_runs(
    lib: &Library,
    rtx: &redb::ReadTransaction,
    index_path: &Path,
    rep: &mut VerifyReport,
) -> Option<ChunkIndex> {
    let meta = rtx.open_table(crate::library::index::META).ok()?;
    let ids = match meta.get(META_RUNS) {
        Ok(Some(v)) => crate::library::runs::decode_list(v.value()),
        _ => None,
    };
    let Some(ids) = ids else {
        rep.problem(index_path, "index: its list of runs is missing or damaged");
        return None;
    };
    let dir = lib.root().join(romlib_format::layout::RUNS_DIR);
    let ix = match ChunkIndex::open(&dir, &ids, false) {
        Ok(ix) => ix,
        Err(e) => {
            rep.problem(&dir, e.to_string());
            return None;
        }
    };
    let mut whole = true;
    for r in ix.runs() {
        if let Err(e) = r.check() {
            rep.problem(
                r.path(),
                format!("index run: {e}; {}", crate::library::index::REBUILD),
            );
            whole = false;
        }
    }
    whole.then_some(ix)
}

/// Joins the index's entries (as place-keyed rows) with the records the packs hold, both
/// in (pack, offset) order: each entry must find its record there.
fn check_entry_places(
    index_path: &Path,
    entries: Sorted<PLACED_LEN>,
    records: Sorted<PLACED_LEN>,
    unreadable: &std::collections::BTreeSet<u32>,
    rep: &mut VerifyReport,
) -> Result<()> {
    let mut records = records.peekable();
    for row in entries {
        let ((pack, offset), want) = parse_placed(&row?)?;
        let found = record_at(&mut records, &spill::place_key(pack, offset))?;
        let short = crate::dat::digests::hex(&want.hash[..8]);
        match found {
            Some(r) if r == want => {}
            Some(_) => rep.problem(
                index_path,
                format!("chunk {short}: pack {pack} offset {offset} holds a different record"),
            ),
            // Its pack could not be scanned: that is reported, and says nothing of the entry.
            None if unreadable.contains(&pack) => {}
            None => rep.problem(
                index_path,
                format!("chunk {short}: no record at pack {pack} offset {offset}"),
            ),
        }
    }
    Ok(())
}

fn read_pack_table(
    rtx: Option<&redb::ReadTransaction>,
    index_path: &Path,
    rep: &mut VerifyReport,
) -> BTreeMap<u32, PackInfo> {
    let mut out = BTreeMap::new();
    let Some(Ok(t)) = rtx.map(|t| t.open_table(PACKS)) else {
        return out;
    };
    let Ok(iter) = t.iter() else {
        rep.problem(index_path, "pack table unreadable");
        return out;
    };
    for row in iter {
        match row {
            Ok((k, v)) => match PackInfo::decode(v.value()) {
                Ok(info) => {
                    out.insert(k.value(), info);
                }
                Err(e) => rep.problem(index_path, format!("pack {} entry: {e}", k.value())),
            },
            Err(e) => rep.problem(index_path, format!("pack table unreadable: {e}")),
        }
    }
    out
}

fn load_dicts(lib: &Library, rep: &mut VerifyReport) -> Arc<Vec<(u32, Vec<u8>)>> {
    let mut out = Vec::new();
    let dir = lib.dicts_dir();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Arc::new(out);
    };
    for e in rd.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = parse_dict_file_name(&name) else {
            continue;
        };
        match crate::fsio::read_limited(&path, romlib_format::limits::MAX_DICT_LEN, "dictionary") {
            Ok(b) => out.push((id, b)),
            Err(e) => rep.problem(&path, e.to_string()),
        }
    }
    Arc::new(out)
}

/// Checks the library's signed snapshot, when it has one (SPEC section 15): its signature,
/// and that it names exactly the games' current manifests and locators (streamed).
fn check_snapshot(lib: &Library, trust: &TrustStore, rep: &mut VerifyReport) -> Result<()> {
    crate::library::snapshot::check(lib, trust, &mut |problem, f, w| {
        let w = strip_path(&w, f);
        match problem {
            true => rep.problem(f, w),
            false => rep.notice(f, w),
        }
    })
}

/// Checks where `games/` holds the games (SPEC section 1): a manifest or locator in a shard
/// folder that is not its title's is never found by a reader; games in both layouts are a
/// change of layout the next build finishes.
fn check_games_layout(lib: &Library, rep: &mut VerifyReport) -> Result<()> {
    use romlib_format::layout::{LOCATOR_EXT, MANIFEST_EXT};
    let dirs = lib.game_dirs()?;
    let (mut flat, mut sharded) = (0u64, 0u64);
    for (i, dir) in dirs.iter().enumerate() {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let shard = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let title = [MANIFEST_EXT, LOCATOR_EXT]
                .iter()
                .find_map(|x| name.strip_suffix(*x).and_then(|n| n.strip_suffix('.')));
            let Some(title) = title.filter(|_| !name.starts_with('.')) else {
                continue;
            };
            let is_manifest = name.ends_with(MANIFEST_EXT);
            if i == 0 {
                flat += u64::from(is_manifest);
            } else if romlib_device::library::shard_of(title) != shard {
                rep.problem(
                    e.path(),
                    format!(
                        "not in the shard folder of {title:?} (games/{}/): no reader finds                          it there; remove it",
                        romlib_device::library::shard_of(title)
                    ),
                );
            } else {
                sharded += u64::from(is_manifest);
            }
        }
    }
    if flat > 0 && sharded > 0 {
        rep.notice(
            lib.games_dir(),
            format!(
                "holds {flat} games in one folder and {sharded} in shard folders: a change of                  layout was interrupted (readers find both; the next `romlib build` finishes                  it)"
            ),
        );
    }
    Ok(())
}

/// Checks that every key file in the library's `keys/` folder is a public key file named
/// by its key id (SPEC section 4): devices that trust a library's own keys read them all.
fn check_keys(lib: &Library, rep: &mut VerifyReport) {
    let dir = lib.keys_dir();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    files.sort();
    for path in files {
        if path.extension().is_none_or(|x| x != "pub") {
            continue;
        }
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                romlib_format::keyfile::decode(romlib_format::keyfile::KeyKind::Public, &b)
                    .map_err(|e| e.to_string())
            });
        match parsed {
            Err(e) => rep.problem(&path, format!("not a public key file: {e}")),
            Ok(pk) => {
                let id = romlib_format::manifest::key_id(&pk);
                let want = format!("{}.pub", String::from_utf8_lossy(&id));
                if path.file_name().is_none_or(|n| n.to_string_lossy() != want) {
                    rep.problem(&path, format!("holds the key whose file name is {want}"));
                }
            }
        }
    }
}

/// Error messages start with their path; findings carry the path separately.
fn strip_path(msg: &str, path: &Path) -> String {
    let p = format!("{}: ", path.display());
    msg.strip_prefix(&p).unwrap_or(msg).to_string()
}

/// Checks a portable file: its whole-file checksum, then every game as an install would
/// (signature, every chunk decoded and hashed, every file's size and BLAKE3, the chunk
/// table's hash), without writing anything.
pub fn verify_portable(
    lib: &Library,
    trust: &TrustStore,
    progress: &dyn Fn(u64),
) -> Result<VerifyReport> {
    let p = lib
        .portable()
        .ok_or_else(|| Error::library(lib.root(), "not a portable file"))?;
    let mut rep = VerifyReport {
        portable: true,
        packs: p.packs().len() as u64,
        pack_bytes: p.len(),
        ..Default::default()
    };
    if !p.check_checksum(progress)? {
        rep.problem(
            p.path(),
            "file checksum does not match its footer (damaged or altered file)",
        );
    }
    let mut dec = ZstdDecoder::default();
    for g in p.games() {
        rep.games += 1;
        let checked = lib.open_game(&g.title, trust).and_then(|m| {
            rep.games_signed += 1;
            romlib_device::install::verify_game(
                lib,
                &m,
                &mut dec,
                &romlib_device::progress::NoProgress,
                // The host's C zstd decoder and memory: the most threads the cores allow.
                u64::MAX,
            )
        });
        match checked {
            Ok(r) => {
                rep.records += r.chunks;
                rep.chunk_bytes += r.bytes;
            }
            Err(e) => rep.problem(p.path(), format!("game {}: {e}", g.title)),
        }
    }
    Ok(rep)
}

/// "is" or "are", for `n` things.
fn are(n: impl Into<u64>) -> &'static str {
    if n.into() == 1 {
        "is"
    } else {
        "are"
    }
}
