//! The pack half of `romlib verify`: every pack read once, its footer checksum recomputed,
//! every record decompressed and hashed in parallel batches, and every delta checked
//! against its base.

use super::{strip_path, VerifyReport};
use crate::error::{Error, Result};
use crate::library::pack_scan::{scan_pack_with, CHECKSUM_MISMATCH};
use crate::spill::{from_place_key, place_key, Sorted, Sorter};
use crate::zstd_decoder::ZstdDecoder;
use rayon::prelude::*;
use romlib_device::chunks::decoder::ChunkDecoder;
use romlib_device::chunks::packs::PackReader;
use romlib_device::chunks::{decode_verified, BaseChunk};
use romlib_device::error::short_hex;
use romlib_device::Library;
use romlib_format::index::{ChunkEntry, PackInfo};
use romlib_format::layout::parse_pack_file_name;
use romlib_format::pack::{Method, RecordHeader};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

/// Bytes of compressed records decoded per parallel batch.
const BATCH_BYTES: usize = 8 << 20;

/// A record as the pack holds it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) hash: [u8; 32],
    pub(super) ulen: u32,
    pub(super) clen: u32,
    pub(super) method: Method,
}

/// Bytes of a [`Record`] in a row.
const RECORD_LEN: usize = 41;

impl Record {
    fn of(h: &RecordHeader) -> Self {
        Self {
            hash: h.hash,
            ulen: h.ulen,
            clen: h.clen,
            method: h.method,
        }
    }

    fn bytes(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[..32].copy_from_slice(&self.hash);
        b[32..36].copy_from_slice(&self.ulen.to_le_bytes());
        b[36..40].copy_from_slice(&self.clen.to_le_bytes());
        b[40] = self.method.to_byte();
        b
    }

    fn parse(b: &[u8]) -> Result<Self> {
        let mut u = [0u8; 4];
        let mut c = [0u8; 4];
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[..32]);
        u.copy_from_slice(&b[32..36]);
        c.copy_from_slice(&b[36..40]);
        Ok(Self {
            hash,
            ulen: u32::from_le_bytes(u),
            clen: u32::from_le_bytes(c),
            method: Method::from_byte(b[40])
                .map_err(|e| Error::library(std::env::temp_dir(), e.to_string()))?,
        })
    }
}

/// Row length of a record by place: (pack, offset) key, then the record.
pub(super) const PLACED_LEN: usize = 12 + RECORD_LEN;
/// Row length of a whole chunk by hash: hash, (pack, offset) key, the record.
const WHOLE_LEN: usize = 32 + 12 + RECORD_LEN;
/// Row length of a delta record by base: base hash, (pack, offset) key, the record.
const DELTA_LEN: usize = 32 + 12 + RECORD_LEN;

/// A row of a record at (pack, offset): what a place-ordered join reads.
pub(super) fn placed_row(pack: u32, offset: u64, r: &Record) -> [u8; PLACED_LEN] {
    let mut row = [0u8; PLACED_LEN];
    row[..12].copy_from_slice(&place_key(pack, offset));
    row[12..].copy_from_slice(&r.bytes());
    row
}

/// The (pack, offset) and record of a [`placed_row`].
pub(super) fn parse_placed(row: &[u8]) -> Result<((u32, u64), Record)> {
    Ok((from_place_key(&row[..12]), Record::parse(&row[12..])?))
}

/// The record at `key` (a [`place_key`]) among place-ordered `records`: those before it
/// are skipped, and it is kept for the next caller with the same key.
pub(super) fn record_at(
    records: &mut std::iter::Peekable<Sorted<PLACED_LEN>>,
    key: &[u8],
) -> Result<Option<Record>> {
    while let Some(r) = records.next_if(|r| r.as_ref().map_or(true, |r| r[..12] < key[..12])) {
        r?;
    }
    match records.peek() {
        Some(Ok(r)) if r[..12] == key[..12] => Ok(Some(parse_placed(r)?.1)),
        _ => Ok(None),
    }
}

fn keyed_row(key: &[u8; 32], pack: u32, offset: u64, r: &Record) -> [u8; WHOLE_LEN] {
    let mut row = [0u8; WHOLE_LEN];
    row[..32].copy_from_slice(key);
    row[32..].copy_from_slice(&placed_row(pack, offset, r));
    row
}

fn parse_keyed(row: &[u8]) -> Result<([u8; 32], (u32, u64), Record)> {
    let mut key = [0u8; 32];
    key.copy_from_slice(&row[..32]);
    let (place, r) = parse_placed(&row[32..])?;
    Ok((key, place, r))
}

/// What scanning the packs found, each kind sorted for a later join.
pub(super) struct Scanned {
    /// Every record, by (pack, offset).
    pub(super) records: Sorted<PLACED_LEN>,
    /// Every whole (non-delta) record, by chunk hash: where a delta's base is.
    wholes: Sorted<WHOLE_LEN>,
    /// Every delta record, by its base's hash: checked once every pack is known, since its
    /// base may lie in any pack.
    deltas: Sorted<DELTA_LEN>,
    /// Packs that could not be scanned (to their end).
    pub(super) unreadable: BTreeSet<u32>,
    /// Whole records that do not decode to their hash, by chunk hash, with why.
    damaged: HashMap<[u8; 32], String>,
}

/// Scans every pack; returns every record by place, the whole and delta records for the
/// delta check, and the packs that could not be scanned (each reported once here: what
/// points into them is not blamed for it). `indexed`: the index could be read (else a
/// pack it does not list is no news). Memory is bounded: the rows are sorted through
/// [`Sorter`]s.
pub(super) fn check_packs(
    lib: &Library,
    indexed: bool,
    index_packs: &BTreeMap<u32, PackInfo>,
    dicts: &Arc<Vec<(u32, Vec<u8>)>>,
    rep: &mut VerifyReport,
    progress: &dyn Fn(u64),
) -> Result<Scanned> {
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
    let mut records = Sorter::<PLACED_LEN>::new();
    let mut wholes = Sorter::<WHOLE_LEN>::new();
    let mut deltas = Sorter::<DELTA_LEN>::new();
    let mut unreadable = BTreeSet::new();
    let mut damaged = HashMap::new();
    for (&id, path) in &on_disk {
        rep.packs += 1;
        let mut batch: Vec<(u64, RecordHeader, Vec<u8>)> = Vec::new();
        let mut batch_bytes = 0;
        let mut bad: Vec<(Option<[u8; 32]>, String)> = Vec::new();
        let mut found_deltas: Vec<([u8; 32], u64, Record)> = Vec::new();
        // Every record whose header reads, even in a pack that fails later: what a
        // reader can still take from it.
        let mut seen: Vec<(u64, Record)> = Vec::new();
        let scanned = scan_pack_with(path, id, |pos, rec, payload| {
            seen.push((pos, Record::of(rec)));
            if rec.method == Method::ZstdDelta {
                match romlib_format::pack::split_delta(&rec.hash, payload) {
                    Ok((base, _)) => found_deltas.push((base, pos, Record::of(rec))),
                    Err(e) => bad.push((Some(rec.hash), format!("record at offset {pos}: {e}"))),
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
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (hash, why) in bad {
            if let Some(h) = hash {
                damaged
                    .entry(h)
                    .or_insert_with(|| format!("damaged in {file}"));
            }
            rep.problem(path, why);
        }
        for (base, pos, r) in found_deltas {
            deltas.push(keyed_row(&base, id, pos, &r))?;
        }
        for (pos, r) in &seen {
            rep.records += 1;
            rep.chunk_bytes += r.ulen as u64;
            records.push(placed_row(id, *pos, r))?;
            if r.method != Method::ZstdDelta {
                wholes.push(keyed_row(&r.hash, id, *pos, r))?;
            }
        }
        match scanned {
            Ok((info, _)) => {
                rep.pack_bytes += info.file_len;
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
            // Every record was read: each was checked on its own above, and only those
            // reported are damaged.
            Err(e) if e.to_string().ends_with(CHECKSUM_MISMATCH) => {
                rep.pack_bytes += std::fs::metadata(path).map_or(0, |m| m.len());
                rep.problem(
                    path,
                    "damaged pack: its checksum does not match (the damaged records are \
                     listed; the others are intact)",
                );
            }
            // The records past the damage cannot be found: what points there is not
            // blamed for it.
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
    Ok(Scanned {
        damaged,
        records: records.finish()?,
        wholes: wholes.finish()?,
        deltas: deltas.finish()?,
        unreadable,
    })
}

/// Decodes every delta record against its base (found in any pack, and checked first);
/// returns the chunks that cannot be decoded, with why. Deltas come sorted by base, and
/// are joined with the whole records sorted by hash, so each base is decoded once.
pub(super) fn check_deltas(
    lib: &Library,
    scanned: &mut Scanned,
    rep: &mut VerifyReport,
    progress: &dyn Fn(u64),
) -> Result<HashMap<[u8; 32], String>> {
    // A damaged whole chunk breaks every game that needs it, and every delta on it.
    let mut broken = scanned.damaged.clone();
    let mut missing_bases: BTreeSet<[u8; 32]> = BTreeSet::new();
    let deltas = scanned.deltas.take_rows();
    let wholes = scanned.wholes.take_rows();
    let mut wholes = wholes.peekable();
    let mut packs = PackReader::new(lib);
    let mut dec = ZstdDecoder::default();
    let mut base = BaseChunk::default();
    let (mut rec_buf, mut out) = (Vec::new(), Vec::new());
    for row in deltas {
        let (base_hash, (pack, pos), h) = parse_keyed(&row?)?;
        // The first whole record of the base, if any (a base is never a delta).
        let mut at: Option<ChunkEntry> = None;
        while let Some(w) = wholes.peek() {
            let w = match w {
                Ok(w) => *w,
                Err(_) => return Err(wholes.next().expect("peeked").expect_err("an error")),
            };
            let (hash, (wp, wo), r) = parse_keyed(&w)?;
            if hash < base_hash {
                wholes.next();
                continue;
            }
            if hash == base_hash {
                at = Some(ChunkEntry {
                    pack_id: wp,
                    offset: wo,
                    clen: r.clen,
                    ulen: r.ulen,
                    method: r.method,
                    stored_at: 0,
                });
            }
            break;
        }
        let path = lib.pack_path(pack);
        progress(h.clen as u64);
        // A delta on a damaged base is not damaged itself: its games are named, once,
        // with the base's damage (reported with its record).
        if let Some(why) = scanned.damaged.get(&base_hash) {
            broken.insert(
                h.hash,
                format!("its base chunk {} is {why}", short_hex(&base_hash)),
            );
            continue;
        }
        // A base in no pack is said once, for the first delta on it.
        if at.is_none() && !missing_bases.insert(base_hash) {
            let why = format!(
                "its base chunk {} is in no intact pack",
                short_hex(&base_hash)
            );
            broken.insert(h.hash, why);
            continue;
        }
        let why = check_delta(
            lib,
            (&base_hash, at.as_ref()),
            (pack, pos, &h),
            &path,
            (&mut packs, &mut dec, &mut base),
            (&mut rec_buf, &mut out),
        );
        if let Err(why) = why {
            rep.problem(
                &path,
                format!(
                    "record at offset {pos} (delta chunk {}) does not decode: {why}",
                    short_hex(&h.hash)
                ),
            );
            broken.insert(h.hash, why);
        }
    }
    Ok(broken)
}

/// Decodes delta record `h` at (`pack`, `pos`) against its base `base_hash`, stored at
/// `at` (decoded into `base` unless it holds it already).
fn check_delta(
    lib: &Library,
    (base_hash, at): (&[u8; 32], Option<&ChunkEntry>),
    (pack, pos, h): (u32, u64, &Record),
    path: &Path,
    (packs, dec, base): (&mut PackReader, &mut ZstdDecoder, &mut BaseChunk),
    (rec_buf, out): (&mut Vec<u8>, &mut Vec<u8>),
) -> std::result::Result<(), String> {
    if base.hash != Some(*base_hash) {
        base.hash = None;
        let e = at.ok_or_else(|| {
            format!(
                "its base chunk {} is in no intact pack",
                short_hex(base_hash)
            )
        })?;
        packs
            .read_chunk(base_hash, e.ulen, e, dec, &mut base.data)
            .map_err(|e| format!("its base chunk {} is damaged: {e}", short_hex(base_hash)))?;
        base.hash = Some(*base_hash);
    }
    let entry = ChunkEntry {
        pack_id: pack,
        offset: pos,
        clen: h.clen,
        ulen: h.ulen,
        method: h.method,
        stored_at: 0,
    };
    rec_buf.clear();
    let r = packs
        .read_record(&h.hash, &entry, h.ulen, rec_buf)
        .map_err(|e| e.to_string())?;
    out.resize(h.ulen as usize, 0);
    let payload = &rec_buf[r.payload.clone()];
    decode_verified(lib, &r, payload, Some(base), dec, out)
        .map_err(|e| strip_path(&e.to_string(), path))
}

/// Decodes and hashes a batch of records in parallel; returns what failed.
fn decode_batch(
    batch: &[(u64, RecordHeader, Vec<u8>)],
    dicts: &Arc<Vec<(u32, Vec<u8>)>>,
) -> Vec<(Option<[u8; 32]>, String)> {
    batch
        .par_iter()
        .map_init(
            || (ZstdDecoder::default(), Vec::new()),
            |(dec, buf), (pos, rec, payload)| {
                if rec.method == Method::ZstdDict {
                    let id = zstd_safe::get_dict_id_from_frame(payload).map_or(0, |i| i.get());
                    if !dec.has_dict(id) {
                        let Some((_, bytes)) = dicts.iter().find(|(d, _)| *d == id) else {
                            return Some((
                                Some(rec.hash),
                                format!(
                                    "record at offset {pos} needs dictionary {id:08x}, which is not in dicts/"
                                ),
                            ));
                        };
                        if let Err(e) = dec.load_dict(id, bytes) {
                            return Some((Some(rec.hash), format!("dictionary {id:08x}: {e}")));
                        }
                    }
                }
                buf.resize(rec.ulen as usize, 0);
                if let Err(e) = dec.decode(rec.method, payload, buf) {
                    return Some((
                        Some(rec.hash),
                        format!("record at offset {pos} does not decode: {e}"),
                    ));
                }
                if blake3::hash(buf).as_bytes() != &rec.hash {
                    return Some((
                        Some(rec.hash),
                        format!(
                            "record at offset {pos}: decoded bytes do not match the chunk hash {}",
                            crate::dat::digests::hex(&rec.hash[..8])
                        ),
                    ));
                }
                None
            },
        )
        .flatten()
        .collect()
}
