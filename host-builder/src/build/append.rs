//! The consuming side of a build: hashes each batch's chunks on the thread pool,
//! deduplicates them against the index, compresses the new ones on the pool
//! (order-preserving), appends them to packs in input order, indexes them, and seals packs
//! as they fill.

use super::batch::{Batch, Item, Piece};
use super::compress::Compressor;
use super::dat_hashes::DatResults;
use super::delta::{choose, worth_it, Bases};
use super::manifest::{GameState, Manifests};
use super::options::{BuildOptions, BuildProgress, BuildSummary};
use super::scan::GameInput;
use crate::error::{Error, Result};
use crate::library::index::PACKS;
use crate::library::locator::locator_entry;
use crate::library::runs::ChunkIndex;
use crate::library::sketch::{sketch, SUPER_FEATURES};
use crate::library::writer::{db_err, unix_now, LibraryWriter, PackFile};
use rayon::prelude::*;
use redb::WriteTransaction;
use romlib_format::index::{ChunkEntry, SKETCH_PREFIX_LEN};
use romlib_format::manifest::ChunkRef;
use romlib_format::pack::{Method, RecordHeader, FOOTER_LEN, RECORD_HEADER_LEN};
use romlib_format::portable::LocatorEntry;
use romlib_proto::FileEntry;
use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

pub(super) struct Run<'a> {
    pub(super) store: &'a mut LibraryWriter,
    pub(super) opts: &'a BuildOptions,
    pub(super) compressor: Compressor,
    pub(super) games: &'a [GameInput],
    pub(super) txn: Option<WriteTransaction>,
    pub(super) pack: Option<PackFile>,
    pub(super) current: Option<GameState>,
    pub(super) pending: Vec<GameState>,
    pub(super) summary: &'a mut BuildSummary,
    pub(super) progress: &'a dyn BuildProgress,
    /// DAT hashes of the files, in order, from their threads.
    pub(super) dat: Option<DatResults>,
    /// What the manifests of the run share.
    pub(super) manifests: Manifests<'a>,
    /// Bytes of base chunks for deltas.
    pub(super) bases: Bases,
    /// Packs found damaged (`--repair`): a chunk stored there, or a delta whose base is
    /// stored there, is stored again from the input, and no new delta takes a base there.
    pub(super) damaged: std::collections::BTreeSet<u32>,
}

/// A batch's chunk hashes, fates, and compressed new chunks.
pub(super) struct Prepared {
    hashes: Vec<Option<[u8; 32]>>,
    fates: Vec<Option<Fate>>,
    /// Per new chunk: its stored form.
    compressed: Vec<Option<Stored>>,
}

/// How a new chunk is stored.
pub(super) struct Stored {
    method: Method,
    payload: Vec<u8>,
    /// A delta's base chunk.
    base: Option<[u8; 32]>,
    /// A whole chunk's super-features, which make it a base candidate for later chunks.
    sketch: Option<[u64; SUPER_FEATURES]>,
}

/// A new chunk's chosen base: its hash, and where its bytes are (a chunk earlier in the
/// batch, by batch position, or stored where the index entry says).
type BaseChoice = ([u8; 32], Result<usize, ChunkEntry>);

/// Where a chunk is stored, a delta's base and a super-feature's chunk: the chunk index
/// (with what this run added), behind one seam so the batch logic reads as one.
pub(super) trait Lookup {
    fn find(&self, hash: &[u8; 32]) -> Result<Option<ChunkEntry>>;
    /// The first chunk whose hash starts with a sketch's prefix.
    fn by_prefix(&self, prefix: &[u8; SKETCH_PREFIX_LEN])
        -> Result<Option<([u8; 32], ChunkEntry)>>;
    /// The hash prefix of the chunk that has super-feature `sf`.
    fn sketch(&self, sf: u64) -> Result<Option<[u8; SKETCH_PREFIX_LEN]>>;
    /// The base of delta chunk `hash`.
    fn delta_base(&self, hash: &[u8; 32]) -> Result<Option<[u8; 32]>>;
}

impl Lookup for ChunkIndex {
    fn find(&self, hash: &[u8; 32]) -> Result<Option<ChunkEntry>> {
        self.get(hash)
    }

    fn by_prefix(
        &self,
        prefix: &[u8; SKETCH_PREFIX_LEN],
    ) -> Result<Option<([u8; 32], ChunkEntry)>> {
        ChunkIndex::by_prefix(self, prefix)
    }

    fn sketch(&self, sf: u64) -> Result<Option<[u8; SKETCH_PREFIX_LEN]>> {
        ChunkIndex::sketch(self, sf)
    }

    fn delta_base(&self, hash: &[u8; 32]) -> Result<Option<[u8; 32]>> {
        ChunkIndex::delta_base(self, hash)
    }
}

/// Where a base's bytes are while a batch is compressed.
enum BaseBytes {
    /// Chunk `i` of the batch.
    Batch(usize),
    /// Read from the library.
    Stored(Arc<Vec<u8>>),
}

/// The sketch of new chunk `k`, if it has none of a base (so it is stored whole).
fn sketch_of(choices: &[Option<BaseChoice>], k: usize, d: &[u8]) -> Option<[u64; SUPER_FEATURES]> {
    match choices.get(k) {
        Some(Some(_)) => None,
        _ => sketch(d),
    }
}

/// What becomes of a chunk of a batch.
pub(super) enum Fate {
    /// Already stored: its index entry.
    Known(ChunkEntry),
    /// New: index into the batch's compressed payloads.
    New(usize),
    /// Same as an earlier new chunk of this batch.
    Again,
}

impl Run<'_> {
    pub(super) fn txn(&mut self) -> Result<&mut WriteTransaction> {
        if self.txn.is_none() {
            self.txn = Some(self.store.begin()?);
        }
        Ok(self.txn.as_mut().expect("just set"))
    }

    pub(super) fn consume(&mut self, rx: Receiver<Result<Batch>>) -> Result<()> {
        for batch in rx {
            self.process(&batch?)?;
        }
        Ok(())
    }

    /// Handles one batch: hashes and compresses its chunks on the pool, then appends.
    fn process(&mut self, batch: &[Item]) -> Result<()> {
        let prepared = self.prepare(batch)?;
        self.append_batch(batch, prepared)
    }

    /// Hashes the batch's chunks, decides which are new, and compresses those.
    fn prepare(&mut self, batch: &[Item]) -> Result<Prepared> {
        let hashes: Vec<Option<[u8; 32]>> = batch
            .par_iter()
            .map(|it| match &it.piece {
                Piece::Chunk(d) => Some(*blake3::hash(d).as_bytes()),
                _ => None,
            })
            .collect();
        // Decide, in input order, which chunks are new.
        let index_path = self.store.library().index_path();
        let mut fates = Vec::with_capacity(batch.len());
        let mut new_items = Vec::new();
        let mut seen: HashMap<[u8; 32], ()> = HashMap::new();
        let data = |i: usize| match &batch[i].piece {
            Piece::Chunk(d) => d.as_slice(),
            _ => unreachable!("only chunks are new"),
        };
        let mut choices: Vec<Option<BaseChoice>> = Vec::new();
        {
            let store_chunks = self.opts.store_chunks;
            let games = self.games;
            let deltas_on = self.opts.delta_gain.is_some();
            let damaged = &self.damaged;
            let mut repaired = 0u64;
            // Whether stored chunk `e` of `h` reads back only through a damaged pack.
            let broken = |table: &dyn Lookup, h: &[u8; 32], e: &ChunkEntry| -> Result<bool> {
                if damaged.contains(&e.pack_id) {
                    return Ok(true);
                }
                if e.method != Method::ZstdDelta || damaged.is_empty() {
                    return Ok(false);
                }
                let base = table.delta_base(h)?;
                Ok(match base {
                    Some(b) => table
                        .find(&b)?
                        .is_none_or(|be| damaged.contains(&be.pack_id)),
                    None => true,
                })
            };
            let mut decide = |table: &dyn Lookup| -> Result<()> {
                for (i, h) in hashes.iter().enumerate() {
                    let Some(h) = h else {
                        fates.push(None);
                        continue;
                    };
                    if seen.contains_key(h) {
                        fates.push(Some(Fate::Again));
                        continue;
                    }
                    let known = match table.find(h)? {
                        Some(e) if store_chunks && broken(table, h, &e)? => {
                            repaired += 1;
                            None
                        }
                        k => k,
                    };
                    if let Some(e) = known {
                        fates.push(Some(Fate::Known(e)));
                    } else if store_chunks {
                        seen.insert(*h, ());
                        fates.push(Some(Fate::New(new_items.len())));
                        new_items.push(i);
                    } else {
                        let it = &batch[i];
                        let f = &games[it.game].files[it.file];
                        return Err(Error::library(
                            &index_path,
                            format!(
                                "chunk of {} is not in the library; run build-packs first",
                                f.abs.display()
                            ),
                        ));
                    }
                }
                if !deltas_on {
                    return Ok(());
                }
                // Bases, in input order, among what precedes each new chunk.
                let found: Vec<Option<[u64; SUPER_FEATURES]>> =
                    new_items.par_iter().map(|&i| sketch(data(i))).collect();
                let mut in_batch: HashMap<u64, usize> = HashMap::new();
                for (k, sk) in found.iter().enumerate() {
                    let Some(sk) = sk else {
                        choices.push(None);
                        continue;
                    };
                    let mut candidates: Vec<BaseChoice> = Vec::new();
                    for sf in sk {
                        if let Some(&j) = in_batch.get(sf) {
                            candidates.push((hashes[new_items[j]].expect("a chunk"), Ok(j)));
                            continue;
                        }
                        let Some(prefix) = table.sketch(*sf)? else {
                            continue;
                        };
                        // A delta is never a base (one link deep); a prefix that finds one
                        // (or nothing) is no hint.
                        if let Some((h, e)) = table.by_prefix(&prefix)? {
                            if e.method != Method::ZstdDelta && !damaged.contains(&e.pack_id) {
                                candidates.push((h, Err(e)));
                            }
                        }
                    }
                    let hashes_only: Vec<[u8; 32]> = candidates.iter().map(|c| c.0).collect();
                    let Some(best) = choose(&hashes_only) else {
                        // No base: it is stored whole, so later chunks may use it.
                        for sf in sk {
                            in_batch.entry(*sf).or_insert(k);
                        }
                        choices.push(None);
                        continue;
                    };
                    let choice = match candidates.iter().find(|c| c.0 == best).expect("chosen").1 {
                        Ok(j) => Ok(new_items[j]),
                        Err(e) => Err(e),
                    };
                    choices.push(Some((best, choice)));
                }
                Ok(())
            };
            // The chunk index holds this run's additions too.
            decide(self.store.chunks()?)?;
            self.summary.repaired_chunks += repaired;
        }
        // The bytes of bases outside the batch (from memory, or decoded from the packs).
        let lib = self.store.library().clone();
        let mut base_bytes: Vec<Option<([u8; 32], BaseBytes)>> = Vec::with_capacity(choices.len());
        for c in &choices {
            base_bytes.push(match c {
                None => None,
                Some((h, Ok(i))) => Some((*h, BaseBytes::Batch(*i))),
                Some((h, Err(e))) => {
                    let d = self.bases.get(&lib, h, e, self.pack.as_mut())?;
                    Some((*h, BaseBytes::Stored(d)))
                }
            });
        }
        let compressor = self.compressor.clone();
        let gain = self.opts.delta_gain.unwrap_or(0);
        let compressed: Vec<Option<Stored>> = new_items
            .par_iter()
            .enumerate()
            .map(|(k, &i)| {
                let d = data(i);
                let (method, payload) = compressor.compress(d);
                let plain = Stored {
                    method,
                    payload,
                    base: None,
                    sketch: None,
                };
                let Some(Some((base, bytes))) = base_bytes.get(k) else {
                    return Some(Stored {
                        sketch: sketch_of(&choices, k, d),
                        ..plain
                    });
                };
                let base_data = match bytes {
                    BaseBytes::Batch(j) => data(*j),
                    BaseBytes::Stored(v) => v.as_slice(),
                };
                match compressor.compress_delta(d, base, base_data) {
                    Some(p)
                        if p.len() < d.len() && worth_it(p.len(), plain.payload.len(), gain) =>
                    {
                        Some(Stored {
                            method: Method::ZstdDelta,
                            payload: p,
                            base: Some(*base),
                            sketch: None,
                        })
                    }
                    // Not worth it: stored whole, yet not a base (it has one, and the
                    // choice was made assuming it would be a delta).
                    _ => Some(plain),
                }
            })
            .collect();
        Ok(Prepared {
            hashes,
            fates,
            compressed,
        })
    }

    /// Appends a prepared batch in input order and records its chunks and files.
    fn append_batch(&mut self, batch: &[Item], prepared: Prepared) -> Result<()> {
        let Prepared {
            hashes,
            mut fates,
            mut compressed,
        } = prepared;
        let mut placed: HashMap<[u8; 32], ChunkEntry> = HashMap::new();
        let index_path = self.store.library().index_path();
        for (i, item) in batch.iter().enumerate() {
            match &item.piece {
                Piece::Chunk(data) => {
                    let hash = hashes[i].expect("chunks have hashes");
                    let entry = match fates[i].take().expect("chunks have fates") {
                        Fate::Known(e) => e,
                        Fate::Again => placed[&hash],
                        Fate::New(k) => {
                            let st = compressed[k].take().expect("used once");
                            let e = self.append(hash, data.len() as u32, st.method, &st.payload)?;
                            self.index_new(&hash, data, &st)?;
                            placed.insert(hash, e);
                            e
                        }
                    };
                    let located = locator_entry(&entry, &index_path)?;
                    if entry.method == Method::ZstdDelta {
                        let (base, base_entry) = self.base_of(&hash)?;
                        let g = self.game_state(item.game);
                        g.locator.bases.insert(base, base_entry);
                        g.packs.insert(base_entry.pack_id);
                    }
                    self.summary.chunks += 1;
                    self.progress.advance(data.len() as u64);
                    let g = self.game_state(item.game);
                    let rec = ChunkRef {
                        hash,
                        len: data.len() as u32,
                    }
                    .encode();
                    g.table.extend_from_slice(&rec);
                    g.file_chunks += 1;
                    g.packs.insert(entry.pack_id);
                    g.locator.entries.push(located);
                }
                Piece::FileEnd { blake3 } => {
                    let f = &self.games[item.game].files[item.file];
                    let (rel, size, mode) = (f.rel.clone(), f.size, f.mode);
                    let dat = self.dat.as_ref().map(|d| d.next(size)).transpose()?;
                    let g = self.game_state(item.game);
                    let mut entry = FileEntry {
                        path: rel,
                        size,
                        mode,
                        blake3: blake3.to_vec(),
                        chunk_count: std::mem::take(&mut g.file_chunks),
                        ..Default::default()
                    };
                    if let Some(d) = dat {
                        d.whole.fill(&mut entry);
                        entry.headerless = d.headerless;
                    }
                    g.files.push(entry);
                }
                Piece::GameEnd => {
                    let g = self.game_state(item.game);
                    let done = std::mem::replace(g, GameState::new(usize::MAX));
                    self.current = None;
                    self.pending.push(done);
                    if self.pack.is_none() {
                        // Nothing unsealed holds its chunks: write it now.
                        self.flush_pending()?;
                    }
                }
            }
        }
        Ok(())
    }

    fn game_state(&mut self, game: usize) -> &mut GameState {
        if self.current.as_ref().is_none_or(|g| g.game != game) {
            self.current = Some(GameState::new(game));
        }
        self.current.as_mut().expect("just set")
    }

    /// Appends a new chunk to the open pack (rolling over when full) and indexes it;
    /// returns the index entry written.
    fn append(
        &mut self,
        hash: [u8; 32],
        ulen: u32,
        method: romlib_format::pack::Method,
        payload: &[u8],
    ) -> Result<ChunkEntry> {
        let rec_len = (RECORD_HEADER_LEN + payload.len()) as u64;
        // A pack is also sealed once the chunk index holds this many of its chunks in
        // memory (they are written as a run when the pack's commit names it), so the
        // builder's memory is bounded at any chunk size.
        let full = (self.pack.as_ref())
            .is_some_and(|p| p.must_roll_over(rec_len, self.opts.pack_size))
            || self.store.chunks()?.pending_chunks() >= crate::library::runs::MAX_PENDING_CHUNKS;
        if full {
            self.seal()?;
        }
        if self.pack.is_none() {
            self.pack = Some(self.store.new_pack(self.compressor.dict_id())?);
        }
        let pack = self.pack.as_mut().expect("just opened");
        let rec = RecordHeader {
            hash,
            ulen,
            clen: payload.len() as u32,
            method,
        };
        let offset = pack.append(&rec, payload)?;
        let pack_id = pack.id();
        let entry = ChunkEntry {
            pack_id,
            offset,
            clen: rec.clen,
            ulen,
            method,
            stored_at: unix_now(),
        };
        self.store.chunks_mut()?.insert_chunk(hash, entry);
        self.summary.new_chunks += 1;
        self.summary.new_bytes += ulen as u64;
        self.summary.stored_bytes += rec_len;
        Ok(entry)
    }

    /// Records in the index what a new chunk adds: a delta's base, or a whole chunk's
    /// super-features (the first chunk with a super-feature keeps it); and keeps a whole
    /// chunk's bytes at hand as a possible base.
    fn index_new(&mut self, hash: &[u8; 32], data: &[u8], st: &Stored) -> Result<()> {
        if let Some(base) = &st.base {
            self.summary.delta_chunks += 1;
            self.summary.delta_bytes += data.len() as u64;
            self.store.chunks_mut()?.insert_delta(*hash, *base);
            return Ok(());
        }
        let Some(sk) = &st.sketch else {
            return Ok(());
        };
        let chunks = self.store.chunks_mut()?;
        for sf in sk {
            chunks.insert_sketch(*sf, hash)?;
        }
        self.bases.remember(*hash, data);
        Ok(())
    }

    /// The base of delta chunk `hash` and where it is stored, from the chunk index.
    fn base_of(&mut self, hash: &[u8; 32]) -> Result<([u8; 32], LocatorEntry)> {
        let index_path = self.store.library().index_path();
        let chunks = self.store.chunks()?;
        let base = crate::library::locator::base_of(chunks, hash, &index_path)?;
        let e = chunks.get(&base)?.ok_or_else(|| {
            Error::library(
                &index_path,
                "the base of a delta chunk is missing from the index",
            )
        })?;
        Ok((base, locator_entry(&e, &index_path)?))
    }

    /// Seals the open pack, commits the index, then writes the games that waited for it.
    fn seal(&mut self) -> Result<()> {
        if let Some(pack) = self.pack.take() {
            let id = pack.id();
            let info = pack.seal()?;
            self.summary.stored_bytes += (romlib_format::pack::HEADER_LEN + FOOTER_LEN) as u64;
            self.summary.packs_written += 1;
            let index_path = self.store.library().index_path();
            let txn = self.txn()?;
            {
                let mut t = txn.open_table(PACKS).map_err(|e| db_err(&index_path, e))?;
                t.insert(id, info.encode().as_slice())
                    .map_err(|e| db_err(&index_path, e))?;
            }
            let txn = self.txn.take().expect("open");
            self.store.commit(txn)?;
        }
        self.flush_pending()
    }

    /// Writes the manifests of finished games whose chunks are all committed.
    fn flush_pending(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        (self.manifests).publish(self.store, &mut self.txn, pending, self.summary)
    }

    pub(super) fn finish(&mut self) -> Result<()> {
        self.seal()?;
        if let Some(txn) = self.txn.take() {
            // Only lookups happened in it.
            txn.abort()
                .map_err(|e| db_err(&self.store.library().index_path(), e))?;
        }
        Ok(())
    }
}
