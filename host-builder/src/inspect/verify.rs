//! `romlib verify`: a full integrity check of a library.
//!
//! Every pack is read once: its footer checksum is recomputed and every record is
//! decompressed and hashed (in parallel batches). Every manifest's signature is checked
//! against the trusted keys and its chunk table is read. The index must agree with all of
//! it: every chunk entry points at a record holding that chunk, every pack entry describes
//! the pack on disk, every chunk a manifest needs is indexed, and every refcount equals the
//! number of references from the manifests the index counted.
//!
//! Nothing is written; a problem is recorded and the check goes on, so one run reports all.

use crate::error::{Error, Result};
use crate::fsio::TEMP_SUFFIX;
use crate::library::pack_scan::scan_pack_with;
use crate::zstd_decoder::ZstdDecoder;
use rayon::prelude::*;
use redb::{ReadableDatabase, ReadableTable};
use romlib_device::chunks::decoder::ChunkDecoder;
use romlib_device::chunks::index::{CHUNKS, GAMES, PACKS};
use romlib_device::chunks::locator::ChunkLocator;
use romlib_device::chunks::packs::PackReader;
use romlib_device::chunks::{decode_verified, BaseChunk};
use romlib_device::error::short_hex;
use romlib_device::install::count;
use romlib_device::{Library, ManifestFile, TrustStore};
use romlib_format::index::{ChunkEntry, PackInfo};
use romlib_format::layout::{parse_dict_file_name, parse_pack_file_name, MANIFEST_EXT};
use romlib_format::pack::{Method, RecordHeader};
use romlib_format::portable::LocatorEntry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes of compressed records decoded per parallel batch.
const BATCH_BYTES: usize = 8 << 20;

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

/// A record as the pack holds it.
#[derive(Clone, Copy)]
struct Record {
    hash: [u8; 32],
    ulen: u32,
    clen: u32,
    method: Method,
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
    // A damaged index is one finding; the packs, manifests and locators are still checked
    // without it (redb is never given a page that fails the checksum).
    let damaged = match romlib_device::chunks::index::check_sum(&index_path) {
        Ok(()) => false,
        Err(e) => {
            rep.problem(&index_path, strip_path(&e.to_string(), &index_path));
            true
        }
    };
    let db = match (!damaged).then(|| redb::Builder::new().open_read_only(&index_path)) {
        None => None,
        Some(Ok(db)) => Some(db),
        Some(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
            return Err(Error::Locked { path: index_path });
        }
        Some(Err(e)) => {
            let e = romlib_device::chunks::index::open_err(&index_path, e);
            rep.problem(&index_path, strip_path(&e.to_string(), &index_path));
            None
        }
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
    let (records, deltas, unreadable) =
        check_packs(lib, indexed, &index_packs, &dicts, &mut rep, progress)?;
    let broken = check_deltas(lib, &records, &deltas, &mut rep, progress);

    // Manifests first: they say what each refcount must be.
    let chunks_table = rtx.as_ref().and_then(|t| t.open_table(CHUNKS).ok());
    let games_table = rtx.as_ref().and_then(|t| t.open_table(GAMES).ok());
    let mut expected: HashMap<[u8; 32], u64> = HashMap::new();
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
    for title in &titles {
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
                    path: tmp.clone(),
                    counted,
                    staged: true,
                }
            }
            None => Game {
                title,
                path: lib.manifest_path(title),
                counted,
                staged: false,
            },
        };
        check_manifest(
            lib,
            game,
            trust,
            Known {
                chunks: chunks_table.as_ref(),
                records: &records,
                unreadable: &unreadable,
            },
            &mut expected,
            &mut rep,
        );
    }
    report_broken_games(lib, &titles, &broken, &mut rep);
    check_keys(lib, &mut rep);
    if let Some(games) = &games_table {
        if let Ok(iter) = games.iter() {
            for row in iter.flatten() {
                let t = row.0.value().to_string();
                if !titles.contains(&t) {
                    rep.problem(
                        &index_path,
                        format!("the index counts references of game {t:?}, which has no manifest"),
                    );
                }
            }
        }
    }

    // Then every chunk entry against the packs and the manifests.
    if let Some(chunks) = &chunks_table {
        match chunks.iter() {
            Ok(iter) => {
                for row in iter {
                    let Ok((k, v)) = row else {
                        rep.problem(&index_path, "chunk table unreadable");
                        break;
                    };
                    rep.index_chunks += 1;
                    check_entry(
                        &index_path,
                        k.value(),
                        v.value(),
                        &records,
                        &unreadable,
                        &expected,
                        &mut rep,
                    );
                }
            }
            Err(e) => rep.problem(&index_path, format!("chunk table unreadable: {e}")),
        }
    } else if db.is_some() && !titles.is_empty() {
        rep.problem(&index_path, "the index has no chunk table");
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

/// Reads, decodes and hashes every pack; returns each record by (pack, offset).
/// Every record of the library's packs, by pack id and offset.
type Records = HashMap<(u32, u64), Record>;

/// A delta record found while scanning: checked once every pack is known, since its base
/// may lie in any pack.
struct DeltaRecord {
    pack: u32,
    pos: u64,
    header: RecordHeader,
    base: [u8; 32],
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

/// Scans every pack; returns every record by place, the delta records to check after, and
/// the packs that could not be scanned (each reported once here: what points into them is
/// not blamed for it). `indexed`: the index could be read (else a pack it does not list is
/// no news).
fn check_packs(
    lib: &Library,
    indexed: bool,
    index_packs: &BTreeMap<u32, PackInfo>,
    dicts: &Arc<Vec<(u32, Vec<u8>)>>,
    rep: &mut VerifyReport,
    progress: &dyn Fn(u64),
) -> Result<(Records, Vec<DeltaRecord>, BTreeSet<u32>)> {
    let dir = lib.packs_dir();
    let mut on_disk = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            match parse_pack_file_name(&name) {
                Some(id) => {
                    on_disk.insert(id, e.path());
                }
                None if name.ends_with(".partial") => rep.notice(
                    e.path(),
                    "unfinished pack from an interrupted build (the next build deletes it)",
                ),
                None => rep.notice(e.path(), "not a pack file; ignored"),
            }
        }
    } else if !index_packs.is_empty() {
        rep.problem(&dir, "packs folder is missing or unreadable");
    }
    let mut records = HashMap::new();
    let mut deltas = Vec::new();
    let mut unreadable = BTreeSet::new();
    for (&id, path) in &on_disk {
        rep.packs += 1;
        let mut batch: Vec<(u64, RecordHeader, Vec<u8>)> = Vec::new();
        let mut batch_bytes = 0;
        let mut bad: Vec<String> = Vec::new();
        let scanned = scan_pack_with(path, id, |pos, rec, payload| {
            if rec.method == Method::ZstdDelta {
                match romlib_format::pack::split_delta(&rec.hash, payload) {
                    Ok((base, _)) => deltas.push(DeltaRecord {
                        pack: id,
                        pos,
                        header: *rec,
                        base,
                    }),
                    Err(e) => bad.push(format!("record at offset {pos}: {e}")),
                }
                return Ok(());
            }
            batch.push((pos, *rec, payload.to_vec()));
            batch_bytes += payload.len();
            if batch_bytes >= BATCH_BYTES {
                bad.extend(decode_batch(&std::mem::take(&mut batch), dicts));
                progress(batch_bytes as u64);
                batch_bytes = 0;
            }
            Ok(())
        });
        bad.extend(decode_batch(&batch, dicts));
        progress(batch_bytes as u64);
        for b in bad {
            rep.problem(path, b);
        }
        match scanned {
            Ok((info, recs)) => {
                rep.pack_bytes += info.file_len;
                for (pos, r) in recs {
                    rep.records += 1;
                    rep.chunk_bytes += r.ulen as u64;
                    records.insert(
                        (id, pos),
                        Record {
                            hash: r.hash,
                            ulen: r.ulen,
                            clen: r.clen,
                            method: r.method,
                        },
                    );
                }
                match index_packs.get(&id) {
                    Some(known) if *known == info => {}
                    Some(_) => rep.problem(
                        path,
                        "pack differs from what the index recorded when it was sealed",
                    ),
                    None if indexed => rep.notice(
                        path,
                        "sealed pack the index does not list (an interrupted build; the next \
                         build adopts it)",
                    ),
                    None => {}
                }
            }
            Err(e) => {
                rep.problem(path, strip_path(&e.to_string(), path));
                unreadable.insert(id);
            }
        }
    }
    for &id in index_packs.keys() {
        if !on_disk.contains_key(&id) {
            rep.problem(lib.pack_path(id), "pack listed in the index is missing");
        }
    }
    Ok((records, deltas, unreadable))
}

/// Decodes every delta record against its base (found in any pack, and checked first);
/// returns the chunks that cannot be decoded, with why.
fn check_deltas(
    lib: &Library,
    records: &HashMap<(u32, u64), Record>,
    deltas: &[DeltaRecord],
    rep: &mut VerifyReport,
    progress: &dyn Fn(u64),
) -> HashMap<[u8; 32], String> {
    let mut broken = HashMap::new();
    if deltas.is_empty() {
        return broken;
    }
    // Where each whole chunk is stored (a base is never a delta).
    let mut wholes: HashMap<[u8; 32], ChunkEntry> = HashMap::new();
    for (&(pack, pos), r) in records {
        if r.method != Method::ZstdDelta {
            wholes.entry(r.hash).or_insert(ChunkEntry {
                pack_id: pack,
                offset: pos,
                clen: r.clen,
                ulen: r.ulen,
                method: r.method,
                stored_at: 0,
                refcount: 0,
            });
        }
    }
    let mut packs = PackReader::new(lib);
    let mut dec = ZstdDecoder::default();
    let mut base = BaseChunk::default();
    let (mut rec_buf, mut out) = (Vec::new(), Vec::new());
    let mut sorted: Vec<&DeltaRecord> = deltas.iter().collect();
    // Deltas on one base together, so each base is decoded once.
    sorted.sort_by_key(|d| (d.base, d.pack, d.pos));
    for d in sorted {
        let path = lib.pack_path(d.pack);
        let h = &d.header;
        let why = (|| -> std::result::Result<(), String> {
            if base.hash != Some(d.base) {
                base.hash = None;
                let e = wholes.get(&d.base).ok_or_else(|| {
                    format!("its base chunk {} is in no intact pack", short_hex(&d.base))
                })?;
                packs
                    .read_chunk(&d.base, e.ulen, e, &mut dec, &mut base.data)
                    .map_err(|e| {
                        format!("its base chunk {} is damaged: {e}", short_hex(&d.base))
                    })?;
                base.hash = Some(d.base);
            }
            let entry = ChunkEntry {
                pack_id: d.pack,
                offset: d.pos,
                clen: h.clen,
                ulen: h.ulen,
                method: h.method,
                stored_at: 0,
                refcount: 0,
            };
            rec_buf.clear();
            let r = packs
                .read_record(&h.hash, &entry, h.ulen, &mut rec_buf)
                .map_err(|e| e.to_string())?;
            out.resize(h.ulen as usize, 0);
            let payload = &rec_buf[r.payload.clone()];
            decode_verified(lib, &r, payload, Some(&base), &mut dec, &mut out)
                .map_err(|e| strip_path(&e.to_string(), &path))
        })();
        progress(h.clen as u64);
        if let Err(why) = why {
            rep.problem(
                &path,
                format!(
                    "record at offset {} (delta chunk {}) does not decode: {why}",
                    d.pos,
                    short_hex(&h.hash)
                ),
            );
            broken.insert(h.hash, why);
        }
    }
    broken
}

/// Names every game whose chunk table holds a chunk that cannot be decoded.
fn report_broken_games(
    lib: &Library,
    titles: &[String],
    broken: &HashMap<[u8; 32], String>,
    rep: &mut VerifyReport,
) {
    if broken.is_empty() {
        return;
    }
    for title in titles {
        let path = lib.manifest_path(title);
        let Ok(m) = ManifestFile::open(&path) else {
            continue; // already reported
        };
        let Ok(mut table) = m.unverified_chunks() else {
            continue;
        };
        let mut hit: Vec<[u8; 32]> = Vec::new();
        while let Ok(Some(c)) = table.next_chunk() {
            if broken.contains_key(&c.hash) && !hit.contains(&c.hash) {
                hit.push(c.hash);
            }
        }
        if let Some(first) = hit.first() {
            rep.problem(
                &path,
                format!(
                    "game {title} cannot be installed: {} of its chunks cannot be decoded \
                     (chunk {}: {})",
                    hit.len(),
                    short_hex(first),
                    broken[first]
                ),
            );
        }
    }
}

/// Error messages start with their path; findings carry the path separately.
fn strip_path(msg: &str, path: &Path) -> String {
    let p = format!("{}: ", path.display());
    msg.strip_prefix(&p).unwrap_or(msg).to_string()
}

/// Decodes and hashes a batch of records in parallel; returns what failed.
fn decode_batch(
    batch: &[(u64, RecordHeader, Vec<u8>)],
    dicts: &Arc<Vec<(u32, Vec<u8>)>>,
) -> Vec<String> {
    batch
        .par_iter()
        .map_init(
            || (ZstdDecoder::default(), Vec::new()),
            |(dec, buf), (pos, rec, payload)| {
                if rec.method == Method::ZstdDict {
                    let id = zstd_safe::get_dict_id_from_frame(payload).map_or(0, |i| i.get());
                    if !dec.has_dict(id) {
                        let Some((_, bytes)) = dicts.iter().find(|(d, _)| *d == id) else {
                            return Some(format!(
                                "record at offset {pos} needs dictionary {id:08x}, which is not in dicts/"
                            ));
                        };
                        if let Err(e) = dec.load_dict(id, bytes) {
                            return Some(format!("dictionary {id:08x}: {e}"));
                        }
                    }
                }
                buf.resize(rec.ulen as usize, 0);
                if let Err(e) = dec.decode(rec.method, payload, buf) {
                    return Some(format!("record at offset {pos} does not decode: {e}"));
                }
                if blake3::hash(buf).as_bytes() != &rec.hash {
                    return Some(format!(
                        "record at offset {pos}: decoded bytes do not match the chunk hash {}",
                        crate::dat::digests::hex(&rec.hash[..8])
                    ));
                }
                None
            },
        )
        .flatten()
        .collect()
}

/// What a manifest is checked against: the index's chunk table (when it could be read)
/// and the records found in the packs.
struct Known<'a> {
    chunks: Option<&'a redb::ReadOnlyTable<&'static [u8; 32], &'static [u8]>>,
    records: &'a HashMap<(u32, u64), Record>,
    /// Packs that could not be scanned (reported already).
    unreadable: &'a BTreeSet<u32>,
}

/// The staged manifests `games/.<title>.manifest.tmp` that the index counts (`counted`
/// gives the chunk-table hash it records for a title), by title.
fn staged_manifests(
    lib: &Library,
    counted: &dyn Fn(&str) -> Option<[u8; 32]>,
) -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir(lib.games_dir()) else {
        return out;
    };
    let suffix = format!(".{MANIFEST_EXT}{TEMP_SUFFIX}");
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(title) = name.strip_prefix('.').and_then(|n| n.strip_suffix(&suffix)) else {
            continue;
        };
        let Some(c) = counted(title) else { continue };
        let is_counted = ManifestFile::open(&e.path()).is_ok_and(|m| {
            m.unverified_body().title_id == title
                && m.unverified_body().chunk_table_blake3.as_slice() == c.as_slice()
        });
        if is_counted {
            out.insert(title.to_string(), e.path());
        }
    }
    out
}

/// The manifest of a game to check.
struct Game<'a> {
    title: &'a str,
    /// Its manifest, or its staged manifest (`staged`).
    path: PathBuf,
    /// The chunk-table hash the index counts for the title.
    counted: Option<[u8; 32]>,
    /// Whether `path` is a staged manifest an interrupted build left counted.
    staged: bool,
}

fn check_manifest(
    lib: &Library,
    game: Game<'_>,
    trust: &TrustStore,
    known: Known<'_>,
    expected: &mut HashMap<[u8; 32], u64>,
    rep: &mut VerifyReport,
) {
    let Known {
        chunks,
        records,
        unreadable: unreadable_packs,
    } = known;
    let Game {
        title,
        path,
        counted,
        staged,
    } = game;
    rep.games += 1;
    let m = match ManifestFile::open(&path) {
        Ok(m) => m,
        Err(e) => return rep.problem(&path, strip_path(&e.to_string(), &path)),
    };
    let body = m.unverified_body();
    if body.title_id != title {
        rep.problem(&path, format!("manifest is for title {:?}", body.title_id));
    }
    let counts = counted.is_some_and(|c| c.as_slice() == body.chunk_table_blake3.as_slice());
    // Without a readable index (reported once already), the game is checked through its
    // locator against the records found in the packs: what a device would read.
    if !counts && chunks.is_some() {
        rep.problem(
            &path,
            "the index does not count this manifest's chunk references (refcounts are stale)",
        );
    }
    // A staged manifest's locator is written after it is renamed.
    let locator = if staged {
        open_locator(lib, title, body, &mut VerifyReport::default())
    } else {
        open_locator(lib, title, body, rep)
    };
    let table = m.unverified_chunks();
    let verified = m.verify(trust);
    let mut table = match (verified, table) {
        (Ok(_), Ok(t)) => {
            rep.games_signed += 1;
            t
        }
        (Err(e), Ok(t)) => {
            rep.problem(&path, strip_path(&e.to_string(), &path));
            t
        }
        (_, Err(e)) => return rep.problem(&path, strip_path(&e.to_string(), &path)),
    };
    let mut missing = 0u64;
    let mut wrong_len = 0u64;
    let mut wrong_locations = 0u64;
    let mut unreachable = 0u64;
    let mut i = 0u64;
    loop {
        match table.next_chunk() {
            Ok(Some(r)) => {
                i += 1;
                if counts {
                    *expected.entry(r.hash).or_default() += 1;
                }
                let entry = chunks
                    .and_then(|t| t.get(&r.hash).ok().flatten())
                    .and_then(|v| ChunkEntry::decode(v.value()).ok());
                if let (Some(l), None) = (locator.as_ref(), chunks) {
                    let le = l.entry(i - 1).ok().flatten();
                    if le.is_some_and(|le| unreadable_packs.contains(&le.pack_id)) {
                        continue;
                    }
                    let found = le.and_then(|le| records.get(&(le.pack_id, u64::from(le.offset))));
                    if !found.is_some_and(|rec| rec.hash == r.hash && rec.ulen == r.len) {
                        unreachable += 1;
                    }
                    continue;
                }
                if let (Some(l), Some(e)) = (locator.as_ref(), entry.as_ref()) {
                    let same = l
                        .entry(i - 1)
                        .is_ok_and(|le| le.is_some() && le == LocatorEntry::from_index(e));
                    if !same {
                        wrong_locations += 1;
                    }
                }
                match entry {
                    None => missing += 1,
                    Some(e) if e.ulen != r.len => wrong_len += 1,
                    Some(_) => {}
                }
            }
            Ok(None) => break,
            Err(e) => return rep.problem(&path, strip_path(&e.to_string(), &path)),
        }
    }
    if let Err(e) = table.finish() {
        rep.problem(&path, strip_path(&e.to_string(), &path));
    }
    if unreachable > 0 {
        rep.problem(
            lib.locator_path(title),
            format!(
                "{} of this game {} not where its locator says",
                count(unreachable as usize, "chunk", "chunks"),
                are(unreachable)
            ),
        );
    }
    if missing > 0 {
        rep.problem(
            &path,
            format!(
                "{} of this game {} not in the index",
                count(missing as usize, "chunk", "chunks"),
                are(missing)
            ),
        );
    }
    if wrong_len > 0 {
        rep.problem(
            &path,
            format!(
                "{} a different length in the index",
                count(wrong_len as usize, "chunk has", "chunks have")
            ),
        );
    }
    if wrong_locations > 0 {
        rep.problem(
            lib.locator_path(title),
            format!(
                "{} with the index (`romlib build` rewrites it)",
                count(
                    wrong_locations as usize,
                    "entry disagrees",
                    "entries disagree"
                )
            ),
        );
    }
}

/// Opens a game's locator if it exists and was written for this manifest; otherwise
/// records why not and returns `None`.
fn open_locator(
    lib: &Library,
    title: &str,
    body: &romlib_proto::Manifest,
    rep: &mut VerifyReport,
) -> Option<ChunkLocator> {
    let path = lib.locator_path(title);
    match ChunkLocator::open_file(&path, body) {
        Ok(l) => Some(l),
        Err(romlib_device::Error::NotFound { .. }) => {
            rep.notice(
                &path,
                "missing: installs over HTTP need it (any `romlib build` run writes it)",
            );
            None
        }
        Err(e) => {
            rep.problem(&path, strip_path(&e.to_string(), &path));
            None
        }
    }
}

fn check_entry(
    index_path: &Path,
    hash: &[u8; 32],
    value: &[u8],
    records: &HashMap<(u32, u64), Record>,
    unreadable: &BTreeSet<u32>,
    expected: &HashMap<[u8; 32], u64>,
    rep: &mut VerifyReport,
) {
    let short = crate::dat::digests::hex(&hash[..8]);
    let e = match ChunkEntry::decode(value) {
        Ok(e) => e,
        Err(err) => return rep.problem(index_path, format!("chunk {short}: {err}")),
    };
    match records.get(&(e.pack_id, e.offset)) {
        Some(r)
            if r.hash == *hash && r.ulen == e.ulen && r.clen == e.clen && r.method == e.method => {}
        Some(_) => rep.problem(
            index_path,
            format!(
                "chunk {short}: pack {} offset {} holds a different record",
                e.pack_id, e.offset
            ),
        ),
        // Its pack could not be scanned: that is reported, and says nothing of the entry.
        None if unreadable.contains(&e.pack_id) => {}
        None => rep.problem(
            index_path,
            format!(
                "chunk {short}: no record at pack {} offset {}",
                e.pack_id, e.offset
            ),
        ),
    }
    let want = expected.get(hash).copied().unwrap_or(0);
    if e.refcount != want {
        rep.problem(
            index_path,
            format!(
                "chunk {short}: refcount {} but the manifests reference it {}",
                e.refcount,
                count(want as usize, "time", "times")
            ),
        );
    }
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
