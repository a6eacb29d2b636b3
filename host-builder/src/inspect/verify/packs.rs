//! The pack half of `romlib verify`: every pack read once, its footer checksum recomputed,
//! every record decompressed and hashed in parallel batches, and every delta checked
//! against its base.

use super::{strip_path, VerifyReport};
use crate::error::Result;
use crate::library::pack_scan::scan_pack_with;
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
use std::sync::Arc;

/// Bytes of compressed records decoded per parallel batch.
const BATCH_BYTES: usize = 8 << 20;

/// A record as the pack holds it.
#[derive(Clone, Copy)]
pub(super) struct Record {
    pub(super) hash: [u8; 32],
    pub(super) ulen: u32,
    pub(super) clen: u32,
    pub(super) method: Method,
}

/// Reads, decodes and hashes every pack; returns each record by (pack, offset).
/// Every record of the library's packs, by pack id and offset.
type Records = HashMap<(u32, u64), Record>;

/// A delta record found while scanning: checked once every pack is known, since its base
/// may lie in any pack.
pub(super) struct DeltaRecord {
    pub(super) pack: u32,
    pub(super) pos: u64,
    pub(super) header: RecordHeader,
    pub(super) base: [u8; 32],
}

/// Scans every pack; returns every record by place, the delta records to check after, and
/// the packs that could not be scanned (each reported once here: what points into them is
/// not blamed for it). `indexed`: the index could be read (else a pack it does not list is
/// no news).
pub(super) fn check_packs(
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
pub(super) fn check_deltas(
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
