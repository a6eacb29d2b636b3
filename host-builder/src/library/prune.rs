//! `romlib prune`: giving back the space of chunks no game needs (restic's and borg's
//! model, mark and sweep).
//!
//! 1. **Mark.** Every chunk every published manifest names is live. A live delta whose
//!    base a manifest names keeps it; one whose base no game needs any more is stored
//!    whole first (decoded, checked, compressed: what a build from scratch would store, and
//!    what a fresh install of the newest revision then reads), and the base goes. The
//!    references are sorted on disk ([`crate::spill`]), so memory stays
//!    bounded whatever the library's size. A manifest that cannot be read, or that names a
//!    chunk the index lacks, stops the prune before anything changes: what it references
//!    cannot be counted, and a chunk counted dead is deleted.
//!
//!    With `newest_whole` (`romlib prune --newest-whole`), a live delta whose base is
//!    live, older than it (stored earlier) and the base of no other live delta is turned
//!    around: the delta is stored whole and its base as a delta against it (or whole, when
//!    that saves less than a build asks of a delta). So the newest revision of a game
//!    decodes no delta on a fresh install, and older revisions pay instead, git's choice
//!    for its packs. An upgrade from the older revision then reads the new chunks whole.
//! 2. **Sweep.** Each pack's live bytes (its live records, as the index places them)
//!    against its size: a pack with nothing live is deleted, a pack whose unused share is
//!    above `--max-unused` is rewritten (its live records copied, as they are, into new
//!    packs), the rest are kept.
//! 3. **Publish, then delete** (SPEC section 6, rule 8): the new packs are sealed and
//!    committed as a build's are; then the index is rewritten as one run without the
//!    packs that go, and one durable commit unlists them; then every locator that changed
//!    is rewritten, and the snapshot and catalog after them; only then are the old packs
//!    (and their parity) deleted. A kill at any moment leaves a library every reader can
//!    use: until the locators are rewritten they point into the old packs, which are
//!    still there. A pack left behind by a kill is adopted by the next writer and deleted
//!    by the next prune.

use super::writer::{db_err, LibraryWriter};
use crate::error::{Error, Result};
use crate::library::index::PACKS;
use crate::spill::{from_place_key, place_key, Sorter};
use redb::ReadableTable;
use romlib_device::ManifestFile;
use romlib_format::index::{ChunkEntry, PackInfo};
use romlib_format::pack::{Method, RecordHeader, FOOTER_LEN, HEADER_LEN, RECORD_HEADER_LEN};
use std::collections::BTreeMap;

/// The default `--max-unused`: a pack with more than this share of unused bytes is
/// rewritten.
pub const DEFAULT_MAX_UNUSED_PERCENT: u32 = 10;

/// What a prune found, and did (or, with `dry_run`, would do).
#[derive(Debug, Default, Clone)]
pub struct PruneSummary {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Games whose references were counted.
    pub games: u64,
    /// Distinct live chunks (referenced, or the base of a referenced delta).
    pub live_chunks: u64,
    /// Packs before.
    pub packs_before: u64,
    /// Bytes of packs before.
    pub pack_bytes_before: u64,
    /// Bytes of live records (headers and payloads) in them.
    pub live_bytes: u64,
    /// Packs deleted: nothing in them was live.
    pub packs_deleted: Vec<u32>,
    /// Packs rewritten: more than `max_unused` percent of them was unused.
    pub packs_rewritten: Vec<u32>,
    /// New packs written.
    pub packs_written: Vec<u32>,
    /// Live bytes copied into the new packs.
    pub bytes_copied: u64,
    /// Live deltas stored whole because no game needs their base any more (which then
    /// goes).
    pub deltas_stored_whole: u64,
    /// Live deltas stored whole with their base stored as a delta against them
    /// (`newest_whole`).
    pub deltas_turned: u64,
    /// Of those bases, how many stay whole (their delta would save too little).
    pub bases_kept_whole: u64,
    /// Bytes of packs after (what they would be, for a dry run).
    pub pack_bytes_after: u64,
    /// Locators rewritten.
    pub locators_rewritten: u64,
    /// Seconds spent.
    pub seconds: f64,
}

impl PruneSummary {
    /// Bytes given back.
    pub fn reclaimed(&self) -> u64 {
        self.pack_bytes_before.saturating_sub(self.pack_bytes_after)
    }
}

/// Prunes the library `store` holds (opened with recovery). `max_unused` is a percentage
/// (0 to 100); `progress` is told bytes as packs are rewritten.
pub fn prune(
    store: &mut LibraryWriter,
    max_unused: u32,
    dry_run: bool,
    newest_whole: bool,
    progress: &dyn Fn(u64),
) -> Result<PruneSummary> {
    let t0 = std::time::Instant::now();
    let lib = store.library().clone();
    let index_path = lib.index_path();
    let mut sum = PruneSummary {
        dry_run,
        ..Default::default()
    };

    // 1. Mark: every reference of every published manifest.
    let mut refs = Sorter::<32>::new();
    let titles = lib.titles()?;
    for t in &titles {
        let path = lib.manifest_path(t);
        let cannot = |e: &dyn std::fmt::Display| {
            Error::library(
                &path,
                format!(
                    "cannot count the chunks this game needs ({e}); nothing was pruned: \
                     repair the manifest (`romlib repair`) or remove the game first"
                ),
            )
        };
        let m = ManifestFile::open(&path).map_err(|e| cannot(&e))?;
        let mut table = m.unverified_chunks().map_err(|e| cannot(&e))?;
        while let Some(r) = table.next_chunk().map_err(|e| cannot(&e))? {
            refs.push(r.hash)?;
        }
        table.finish().map_err(|e| cannot(&e))?;
        sum.games += 1;
    }
    // Each live whole chunk's place (and stored length, for the accounting), and each
    // live delta by its base, joined with the index in hash order; the live references
    // again, sorted, for the join with the bases.
    let mut places = Sorter::<16>::new();
    let mut bases = Sorter::<80>::new();
    let mut live_refs = Sorter::<32>::new();
    let mut reencode: Vec<[u8; 32]> = Vec::new();
    // Deltas to turn around (delta, then base), and the places of their records, which
    // are no longer live as they are: sorted on disk too, so memory stays bounded.
    let mut turn = Sorter::<64>::new();
    let mut turned_places = Sorter::<12>::new();
    let mut missing = 0u64;
    {
        let chunks = store.chunks()?;
        let mut rows = chunks.chunks()?;
        let mut last: Option<[u8; 32]> = None;
        let mut head: Option<([u8; 32], ChunkEntry)> = None;
        for h in refs.finish()? {
            let h = h?;
            if last == Some(h) {
                continue;
            }
            last = Some(h);
            while head.is_none_or(|(k, _)| k < h) {
                match rows.next_row()? {
                    Some(r) => head = Some(chunks.decode_chunk(r)?),
                    None => {
                        head = None;
                        break;
                    }
                }
            }
            match head {
                Some((k, e)) if k == h => {
                    live_refs.push(h)?;
                    if e.method == Method::ZstdDelta {
                        let base = crate::library::locator::base_of(chunks, &h, &index_path)?;
                        let mut row = [0u8; 80];
                        row[..32].copy_from_slice(&base);
                        row[32..64].copy_from_slice(&h);
                        row[64..].copy_from_slice(&place_row(&e));
                        bases.push(row)?;
                    } else {
                        places.push(place_row(&e))?;
                    }
                    sum.live_chunks += 1;
                }
                _ => missing += 1,
            }
        }
        if missing > 0 {
            return Err(Error::library(
                &index_path,
                format!(
                    "the manifests name {} the index lacks; nothing was pruned \
                     (`romlib rebuild-index` first)",
                    romlib_device::install::count(missing as usize, "chunk", "chunks")
                ),
            ));
        }
        // A base a game references stays, and its deltas with it. A base only deltas
        // need goes: each of its deltas is stored whole first (step 3a), which a build
        // from scratch would have done, and which is what a fresh install of that game
        // then reads.
        let mut refs = live_refs.finish()?.peekable();
        let mut last: Option<[u8; 32]> = None;
        let mut base_live = false;
        // With `newest_whole`: the first delta of the base's group, placed only once the
        // group shows it is the base's only one (and then perhaps turned around).
        let mut alone: Option<[u8; 80]> = None;
        let mut in_group = 0u64;
        let mut settle = |alone: Option<[u8; 80]>, places: &mut Sorter<16>| -> Result<()> {
            let Some(row) = alone else { return Ok(()) };
            let d: [u8; 32] = row[32..64].try_into().expect("32 bytes");
            let b: [u8; 32] = row[..32].try_into().expect("32 bytes");
            let (de, be) = (chunks.get(&d)?, chunks.get(&b)?);
            match (de, be) {
                (Some(de), Some(be))
                    if be.method != Method::ZstdDelta && be.stored_at < de.stored_at =>
                {
                    let mut pair = [0u8; 64];
                    pair[..32].copy_from_slice(&d);
                    pair[32..].copy_from_slice(&b);
                    turn.push(pair)?;
                    turned_places.push(place_key(de.pack_id, de.offset))?;
                    turned_places.push(place_key(be.pack_id, be.offset))?;
                    sum.deltas_turned += 1;
                }
                _ => places.push(row[64..].try_into().expect("16 bytes"))?,
            }
            Ok(())
        };
        for row in bases.finish()? {
            let row = row?;
            let b: [u8; 32] = row[..32].try_into().expect("32 bytes");
            if last != Some(b) {
                settle(alone.take(), &mut places)?;
                in_group = 0;
                last = Some(b);
                while refs.next_if(|r| r.as_ref().is_ok_and(|r| *r < b)).is_some() {}
                base_live = match refs.peek() {
                    Some(Ok(r)) => *r == b,
                    Some(Err(_)) => return Err(refs.next().expect("peeked").expect_err("err")),
                    None => false,
                };
                if base_live {
                    chunks.get(&b)?.ok_or_else(|| {
                        Error::library(
                            &index_path,
                            "the base of a live delta is missing from the index; nothing was \
                             pruned (`romlib rebuild-index` first)",
                        )
                    })?;
                }
            }
            in_group += 1;
            if !base_live {
                reencode.push(row[32..64].try_into().expect("32 bytes"));
            } else if newest_whole && in_group == 1 {
                alone = Some(row);
            } else {
                if let Some(first) = alone.take() {
                    places.push(first[64..].try_into().expect("16 bytes"))?;
                }
                places.push(row[64..].try_into().expect("16 bytes"))?;
            }
        }
        settle(alone.take(), &mut places)?;
    }
    sum.deltas_stored_whole = reencode.len() as u64;

    // 2. Sweep: live bytes per pack, and the live records of the packs to rewrite.
    let packs: BTreeMap<u32, PackInfo> = {
        let txn = store.begin_read()?;
        let t = txn.open_table(PACKS).map_err(|e| db_err(&index_path, e))?;
        let mut m = BTreeMap::new();
        for row in t.iter().map_err(|e| db_err(&index_path, e))? {
            let (k, v) = row.map_err(|e| db_err(&index_path, e))?;
            let info = PackInfo::decode(v.value())
                .map_err(|e| Error::library(&index_path, e.to_string()))?;
            m.insert(k.value(), info);
        }
        m
    };
    sum.packs_before = packs.len() as u64;
    sum.pack_bytes_before = packs.values().map(|p| p.file_len).sum();
    let mut live: BTreeMap<u32, u64> = BTreeMap::new();
    let mut copy = Sorter::<12>::new();
    let mut current: Option<u32> = None;
    let mut offsets: Vec<u64> = Vec::new();
    let mut last: Option<[u8; 12]> = None;
    let decide = |pack: u32, live_bytes: u64| -> bool {
        let len = packs.get(&pack).map_or(0, |p| p.file_len).max(1);
        let unused = len.saturating_sub(live_bytes);
        // Rewritten when more than `max_unused` percent is unused.
        unused * 100 > len * u64::from(max_unused)
    };
    let mut flush = |pack: u32, offsets: &mut Vec<u64>, live_bytes: u64| -> Result<()> {
        if decide(pack, live_bytes) {
            for o in offsets.iter() {
                copy.push(place_key(pack, *o))?;
            }
        }
        offsets.clear();
        Ok(())
    };
    let mut turned_places = turned_places.finish()?.peekable();
    for row in places.finish()? {
        let row = row?;
        let key: [u8; 12] = row[..12].try_into().expect("12 bytes");
        // A record turned around is stored anew (step 3a), not copied.
        while turned_places
            .next_if(|t| t.as_ref().is_ok_and(|t| *t < key))
            .is_some()
        {}
        let turned = match turned_places.peek() {
            Some(Ok(t)) => *t == key,
            Some(Err(_)) => return Err(turned_places.next().expect("peeked").expect_err("err")),
            None => false,
        };
        if last == Some(key) || turned {
            continue;
        }
        last = Some(key);
        let (pack, offset) = from_place_key(&key);
        let clen = u32::from_be_bytes(row[12..16].try_into().expect("4 bytes"));
        if current != Some(pack) {
            if let Some(p) = current {
                flush(p, &mut offsets, live[&p])?;
            }
            current = Some(pack);
        }
        offsets.push(offset);
        *live.entry(pack).or_default() += RECORD_HEADER_LEN as u64 + u64::from(clen);
    }
    if let Some(p) = current {
        flush(p, &mut offsets, live[&p])?;
    }
    sum.live_bytes = live.values().sum();
    for (&id, info) in &packs {
        match live.get(&id) {
            None => sum.packs_deleted.push(id),
            Some(&l) if decide(id, l) => sum.packs_rewritten.push(id),
            Some(_) => sum.pack_bytes_after += info.file_len,
        }
    }
    let rewritten_live: u64 = sum
        .packs_rewritten
        .iter()
        .map(|id| live.get(id).copied().unwrap_or(0))
        .sum();
    if dry_run {
        // A delta stored whole takes about what its base took.
        for d in &reencode {
            let chunks = store.chunks()?;
            let base = crate::library::locator::base_of(chunks, d, &index_path)?;
            if let Some(e) = chunks.get(&base)? {
                sum.pack_bytes_after += RECORD_HEADER_LEN as u64 + u64::from(e.clen);
            }
        }
        // Turned around: about what the delta and its base took, the other way round.
        for pair in turn.finish()? {
            let pair = pair?;
            let chunks = store.chunks()?;
            for h in [&pair[..32], &pair[32..]] {
                if let Some(e) = chunks.get(h.try_into().expect("32 bytes"))? {
                    sum.pack_bytes_after += RECORD_HEADER_LEN as u64 + u64::from(e.clen);
                }
            }
        }
        // The copies would go to packs of the default size, each with a header and footer.
        let new_packs = rewritten_live.div_ceil(romlib_format::limits::DEFAULT_PACK_SIZE);
        sum.pack_bytes_after += rewritten_live + new_packs * (HEADER_LEN + FOOTER_LEN) as u64;
        sum.bytes_copied = rewritten_live;
        sum.seconds = t0.elapsed().as_secs_f64();
        return Ok(sum);
    }
    if sum.packs_deleted.is_empty()
        && sum.packs_rewritten.is_empty()
        && reencode.is_empty()
        && sum.deltas_turned == 0
    {
        sum.seconds = t0.elapsed().as_secs_f64();
        return Ok(sum);
    }

    // 3a. The deltas whose base no game needs, stored whole in new packs (committed as a
    // build commits its packs), before anything holding their bases can go.
    if !reencode.is_empty() {
        store_whole(store, &reencode, &mut sum, progress)?;
    }
    // The deltas turned around, likewise, before the packs holding them can go.
    if sum.deltas_turned > 0 {
        turn_around(store, turn, &mut sum, progress)?;
    }

    // 3b. Copy the live records of the packs rewritten into new packs, committed as a
    // build commits its packs (the index then places those chunks in the new packs).
    let mut copies = copy.finish()?.peekable();
    for &id in &sum.packs_rewritten.clone() {
        let path = lib.pack_path(id);
        let mut out = NewPack::new(packs[&id].dict_id);
        let mut want = Vec::new();
        while let Some(Ok(k)) = copies.peek() {
            let (p, o) = from_place_key(k);
            if p != id {
                break;
            }
            want.push(o);
            copies.next();
        }
        if let Some(Err(_)) = copies.peek() {
            copies.next().expect("peeked")?;
        }
        let mut next = 0;
        let scanned = crate::library::pack_scan::scan_pack_with(&path, id, |pos, rec, payload| {
            if want.get(next) != Some(&pos) {
                return Ok(());
            }
            next += 1;
            let rec_len = (RECORD_HEADER_LEN + payload.len()) as u64;
            let (pack_id, offset) = out.append(store, &mut sum.packs_written, rec, payload)?;
            let old = store.chunks()?.get(&rec.hash)?;
            store.chunks_mut()?.insert_chunk(
                rec.hash,
                ChunkEntry {
                    pack_id,
                    offset,
                    clen: rec.clen,
                    ulen: rec.ulen,
                    method: rec.method,
                    stored_at: old.map_or_else(super::writer::unix_now, |e| e.stored_at),
                },
            );
            sum.bytes_copied += rec_len;
            progress(rec_len);
            Ok(())
        });
        let done = scanned.and_then(|_| {
            if next != want.len() {
                return Err(Error::library(
                    &path,
                    "a record the index places here is not in the pack; nothing more was \
                     pruned (`romlib verify`, then `romlib rebuild-index`)",
                ));
            }
            out.seal(store, &mut sum.packs_written)
        });
        if let Err(e) = done {
            out.discard();
            let e = if e
                .to_string()
                .ends_with(crate::library::pack_scan::CHECKSUM_MISMATCH)
            {
                Error::library(
                    &path,
                    "damaged (its checksum does not match), and it holds live records; nothing \
                     more was pruned: `romlib repair` (parity) or `romlib build --repair` (the \
                     input) first",
                )
            } else {
                e
            };
            store.chunks_mut()?.discard();
            // Sealed packs not committed are adopted by the next writer (and deleted by
            // the next prune); what was committed stands.
            return Err(e);
        }
    }

    // 3c. The index without the packs that go, in one durable commit.
    let gone: std::collections::BTreeSet<u32> = sum
        .packs_deleted
        .iter()
        .chain(&sum.packs_rewritten)
        .copied()
        .collect();
    store.unlist_packs(&gone)?;

    // 3d. Locators (the old packs are deleted by the caller, after the snapshot).
    for t in &titles {
        let path = lib.manifest_path(t);
        let m = ManifestFile::open(&path)?;
        let mut table = m.unverified_chunks()?;
        let mut raw = Vec::with_capacity(
            m.unverified_body().chunk_count as usize * romlib_format::manifest::CHUNK_RECORD_LEN,
        );
        while let Some(r) = table.next_chunk()? {
            raw.extend_from_slice(&r.encode());
        }
        let loc = crate::library::locator::from_index(store, t, &raw)?;
        if crate::library::locator::refresh(&lib, t, &raw, &loc)? {
            sum.locators_rewritten += 1;
            store.touch(t);
        }
    }
    let info_after: u64 = {
        let txn = store.begin_read()?;
        let t = txn.open_table(PACKS).map_err(|e| db_err(&index_path, e))?;
        let mut n = 0;
        for row in t.iter().map_err(|e| db_err(&index_path, e))? {
            let (_, v) = row.map_err(|e| db_err(&index_path, e))?;
            n += PackInfo::decode(v.value())
                .map_err(|e| Error::library(&index_path, e.to_string()))?
                .file_len;
        }
        n
    };
    sum.pack_bytes_after = info_after;
    sum.seconds = t0.elapsed().as_secs_f64();
    Ok(sum)
}

/// What storing chunks anew takes ([`store_whole`], [`turn_around`]): a reader of the
/// library's packs and a decoder, the compressor, buffers, and the new pack the records go
/// to.
struct Restorer {
    lib: romlib_device::Library,
    packs: romlib_device::chunks::packs::PackReader,
    dec: crate::zstd_decoder::ZstdDecoder,
    /// The base of the last delta read, decoded and checked.
    base: romlib_device::chunks::BaseChunk,
    compressor: crate::build::compress::Compressor,
    rec: Vec<u8>,
    /// The last chunk read.
    data: Vec<u8>,
    out: NewPack,
}

impl Restorer {
    fn new(store: &LibraryWriter) -> Self {
        let lib = store.library().clone();
        Self {
            packs: romlib_device::chunks::packs::PackReader::new(&lib),
            lib,
            dec: Default::default(),
            base: Default::default(),
            compressor: crate::build::compress::Compressor::new(crate::build::DEFAULT_LEVEL, None),
            rec: Vec::new(),
            data: Vec::new(),
            out: NewPack::new(0),
        }
    }

    /// Reads delta chunk `d` (stored at `de`) decoded against its base `b` (at `be`), and
    /// checks both: the chunk into `data`, the base into `base`.
    fn read_delta(
        &mut self,
        d: &[u8; 32],
        de: ChunkEntry,
        b: &[u8; 32],
        be: ChunkEntry,
    ) -> Result<()> {
        let planned = crate::transfer::Planned {
            hash: *d,
            ulen: de.ulen,
            entry: de,
            dict: 0,
            base: Some((*b, be)),
        };
        crate::transfer::read_checked(
            &self.lib,
            &mut self.packs,
            &mut self.dec,
            &planned,
            &mut self.base,
            &mut self.rec,
            &mut self.data,
        )?;
        Ok(())
    }

    /// Appends the record `header`, `payload` to the new pack, and places its chunk there
    /// in the index (first stored at `stored_at`).
    fn append(
        &mut self,
        store: &mut LibraryWriter,
        sum: &mut PruneSummary,
        progress: &dyn Fn(u64),
        header: &RecordHeader,
        payload: &[u8],
        stored_at: u32,
    ) -> Result<()> {
        let rec_len = (RECORD_HEADER_LEN + payload.len()) as u64;
        let (pack_id, offset) = self
            .out
            .append(store, &mut sum.packs_written, header, payload)?;
        let entry = ChunkEntry {
            pack_id,
            offset,
            clen: header.clen,
            ulen: header.ulen,
            method: header.method,
            stored_at,
        };
        store.chunks_mut()?.insert_chunk(header.hash, entry);
        sum.bytes_copied += rec_len;
        progress(rec_len);
        Ok(())
    }

    /// Seals and commits the new pack after `done` succeeded; otherwise deletes it and
    /// forgets what the index gained since the last commit.
    fn end(
        mut self,
        store: &mut LibraryWriter,
        sum: &mut PruneSummary,
        done: Result<()>,
    ) -> Result<()> {
        let done = done.and_then(|()| self.out.seal(store, &mut sum.packs_written));
        if done.is_err() {
            self.out.discard();
            store.chunks_mut()?.discard();
        }
        done
    }
}

/// Stores each of `deltas` (live delta chunks whose base no game references) whole, in new
/// packs: decoded against its base and checked, compressed at the default level, committed
/// with the packs as a build commits (the index then places each as a whole chunk).
fn store_whole(
    store: &mut LibraryWriter,
    deltas: &[[u8; 32]],
    sum: &mut PruneSummary,
    progress: &dyn Fn(u64),
) -> Result<()> {
    let index_path = store.library().index_path();
    let mut r = Restorer::new(store);
    let done = (|| -> Result<()> {
        for d in deltas {
            let chunks = store.chunks()?;
            let e = chunks
                .get(d)?
                .ok_or_else(|| Error::library(&index_path, "a live delta left the index"))?;
            let b = crate::library::locator::base_of(chunks, d, &index_path)?;
            let be = chunks.get(&b)?.ok_or_else(|| {
                Error::library(
                    &index_path,
                    "the base of a live delta is missing from the index",
                )
            })?;
            r.read_delta(d, e, &b, be)?;
            let (method, payload) = r.compressor.compress(&r.data);
            let header = RecordHeader {
                hash: *d,
                ulen: e.ulen,
                clen: payload.len() as u32,
                method,
            };
            r.append(store, sum, progress, &header, &payload, e.stored_at)?;
        }
        Ok(())
    })();
    r.end(store, sum, done)
}

/// Turns each of `pairs` (a live delta, and its base, which has no other live delta)
/// around, in new packs: the delta, decoded against its base and checked, is stored whole;
/// the base as a delta against it when that saves what a build asks of a delta, else
/// whole. Committed with the packs as a build commits. The delta's super-features are
/// recorded, as a build records a whole chunk's, so later builds find it as a base.
fn turn_around(
    store: &mut LibraryWriter,
    pairs: Sorter<64>,
    sum: &mut PruneSummary,
    progress: &dyn Fn(u64),
) -> Result<()> {
    let index_path = store.library().index_path();
    let gone = || Error::library(&index_path, "a chunk to turn around left the index");
    let mut r = Restorer::new(store);
    let done = (|| -> Result<()> {
        for pair in pairs.finish()? {
            let pair = pair?;
            let d: &[u8; 32] = pair[..32].try_into().expect("32 bytes");
            let b: &[u8; 32] = pair[32..].try_into().expect("32 bytes");
            let chunks = store.chunks()?;
            let de = chunks.get(d)?.ok_or_else(gone)?;
            let be = chunks.get(b)?.ok_or_else(gone)?;
            r.read_delta(d, de, b, be)?;
            let (method, payload) = r.compressor.compress(&r.data);
            let whole = RecordHeader {
                hash: *d,
                ulen: de.ulen,
                clen: payload.len() as u32,
                method,
            };
            r.append(store, sum, progress, &whole, &payload, de.stored_at)?;
            let (plain_method, plain) = r.compressor.compress(&r.base.data);
            let as_delta = r
                .compressor
                .compress_delta(&r.base.data, d, &r.data)
                .filter(|p| {
                    p.len() < r.base.data.len()
                        && crate::build::delta::worth_it(
                            p.len(),
                            plain.len(),
                            crate::build::delta::DEFAULT_DELTA_GAIN,
                        )
                });
            let (method, payload) = match as_delta {
                Some(p) => (Method::ZstdDelta, p),
                None => {
                    sum.bases_kept_whole += 1;
                    (plain_method, plain)
                }
            };
            let turned = RecordHeader {
                hash: *b,
                ulen: be.ulen,
                clen: payload.len() as u32,
                method,
            };
            r.append(store, sum, progress, &turned, &payload, be.stored_at)?;
            let chunks = store.chunks_mut()?;
            if method == Method::ZstdDelta {
                chunks.insert_delta(*b, *d);
            }
            if let Some(sfs) = crate::library::sketch::sketch(&r.data) {
                for sf in sfs {
                    chunks.insert_sketch(sf, d)?;
                }
            }
        }
        Ok(())
    })();
    r.end(store, sum, done)
}

/// Deletes the packs a prune unlisted (after everything that named them was published),
/// with their parity files.
pub fn delete_packs(lib: &romlib_device::Library, summary: &PruneSummary) -> Result<()> {
    for &id in summary.packs_deleted.iter().chain(&summary.packs_rewritten) {
        let path = lib.pack_path(id);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for p in [
            path.clone(),
            crate::parity::parity_path(lib, &format!("packs/{name}")),
        ] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p, "remove", e)),
            }
        }
    }
    crate::fsio::sync_dir(&lib.packs_dir())
}

/// A place row: (pack, offset) key and the stored length.
fn place_row(e: &ChunkEntry) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[..12].copy_from_slice(&place_key(e.pack_id, e.offset));
    r[12..].copy_from_slice(&e.clen.to_be_bytes());
    r
}

/// The new pack a prune appends records to (all with dictionary `dict`). When it is full,
/// or the chunk index holds as many pending chunks as a build lets it, it is sealed and
/// listed in the index in one durable commit, which also writes what the chunk index
/// gained as a run: the commit of a build's pack (SPEC section 6, rule 2).
struct NewPack {
    open: Option<super::writer::PackFile>,
    dict: u32,
}

impl NewPack {
    fn new(dict: u32) -> Self {
        Self { open: None, dict }
    }

    /// Appends a record; returns the pack it went to and its offset there. Packs sealed on
    /// the way are added to `written`.
    fn append(
        &mut self,
        store: &mut LibraryWriter,
        written: &mut Vec<u32>,
        rec: &RecordHeader,
        payload: &[u8],
    ) -> Result<(u32, u64)> {
        let rec_len = (RECORD_HEADER_LEN + payload.len()) as u64;
        let full =
            self.open.as_ref().is_some_and(|p| {
                p.must_roll_over(rec_len, romlib_format::limits::DEFAULT_PACK_SIZE)
            }) || store.chunks()?.pending_chunks() >= super::runs::MAX_PENDING_CHUNKS;
        if full {
            self.seal(store, written)?;
        }
        let p = match &mut self.open {
            Some(p) => p,
            None => self.open.insert(store.new_pack(self.dict)?),
        };
        Ok((p.id(), p.append(rec, payload)?))
    }

    /// Seals the open pack, if any, and commits it with what the chunk index gained.
    fn seal(&mut self, store: &mut LibraryWriter, written: &mut Vec<u32>) -> Result<()> {
        let Some(p) = self.open.take() else {
            return Ok(());
        };
        let id = p.id();
        let info = p.seal()?;
        let index_path = store.library().index_path();
        let txn = store.begin()?;
        txn.open_table(PACKS)
            .map_err(|e| db_err(&index_path, e))?
            .insert(id, info.encode().as_slice())
            .map_err(|e| db_err(&index_path, e))?;
        written.push(id);
        store.commit_durable(txn)
    }

    /// Deletes the unfinished pack, if any.
    fn discard(&mut self) {
        if let Some(p) = self.open.take() {
            p.discard();
        }
    }
}
