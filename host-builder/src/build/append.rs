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
use crate::library::index::{chunk_by_prefix, sketch_value, CHUNKS, DELTAS, PACKS, SKETCHES};
use crate::library::locator::locator_entry;
use crate::library::sketch::{sketch, SUPER_FEATURES};
use crate::library::writer::{db_err, unix_now, LibraryWriter, PackFile};
use rayon::prelude::*;
use redb::{ReadableTable, WriteTransaction};
use romlib_format::index::{ChunkEntry, ENTRY_LEN, SKETCH_PREFIX_LEN};
use romlib_format::manifest::ChunkRef;
use romlib_format::pack::{Method, RecordHeader, FOOTER_LEN, RECORD_HEADER_LEN};
use romlib_format::portable::LocatorEntry;
use romlib_proto::FileEntry;
use std::collections::HashMap;
use std::path::Path;
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

/// A chunk lookup over either kind of redb table.
pub(super) trait Lookup {
    fn find(&self, hash: &[u8; 32], index_path: &Path) -> Result<Option<ChunkEntry>>;
    /// The first chunk whose hash starts with a `sketches` value.
    fn by_prefix(
        &self,
        prefix: &[u8; SKETCH_PREFIX_LEN],
        index_path: &Path,
    ) -> Result<Option<([u8; 32], ChunkEntry)>>;
}

impl<T: ReadableTable<&'static [u8; 32], [u8; ENTRY_LEN]>> Lookup for T {
    fn find(&self, hash: &[u8; 32], index_path: &Path) -> Result<Option<ChunkEntry>> {
        match self.get(hash).map_err(|e| db_err(index_path, e))? {
            None => Ok(None),
            Some(v) => ChunkEntry::decode(&v.value())
                .map(Some)
                .map_err(|e| Error::library(index_path, e.to_string())),
        }
    }

    fn by_prefix(
        &self,
        prefix: &[u8; SKETCH_PREFIX_LEN],
        index_path: &Path,
    ) -> Result<Option<([u8; 32], ChunkEntry)>> {
        chunk_by_prefix(self, prefix, index_path)
    }
}

/// A delta's base, looked up over either kind of redb table.
pub(super) trait DeltaLookup {
    fn base(&self, hash: &[u8; 32], index_path: &Path) -> Result<[u8; 32]>;
}

impl<T: ReadableTable<&'static [u8; 32], &'static [u8; 32]>> DeltaLookup for T {
    fn base(&self, hash: &[u8; 32], index_path: &Path) -> Result<[u8; 32]> {
        crate::library::locator::base_of(Some(self), hash, index_path)
    }
}

/// A super-feature lookup over either kind of redb table.
pub(super) trait SketchLookup {
    fn find(&self, sf: u64, index_path: &Path) -> Result<Option<[u8; SKETCH_PREFIX_LEN]>>;
}

impl<T: ReadableTable<u64, [u8; SKETCH_PREFIX_LEN]>> SketchLookup for T {
    fn find(&self, sf: u64, index_path: &Path) -> Result<Option<[u8; SKETCH_PREFIX_LEN]>> {
        Ok(self
            .get(sf)
            .map_err(|e| db_err(index_path, e))?
            .map(|v| v.value()))
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
            let mut decide = |table: &dyn Lookup,
                              sketches: Option<&dyn SketchLookup>|
             -> Result<()> {
                for (i, h) in hashes.iter().enumerate() {
                    let Some(h) = h else {
                        fates.push(None);
                        continue;
                    };
                    if seen.contains_key(h) {
                        fates.push(Some(Fate::Again));
                        continue;
                    }
                    if let Some(e) = table.find(h, &index_path)? {
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
                        let Some(prefix) = sketches
                            .map(|t| t.find(*sf, &index_path))
                            .transpose()?
                            .flatten()
                        else {
                            continue;
                        };
                        // A delta is never a base (one link deep); a prefix that finds one
                        // (or nothing) is no hint.
                        if let Some((h, e)) = table.by_prefix(&prefix, &index_path)? {
                            if e.method != Method::ZstdDelta {
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
            // Look up through the open write transaction (it sees this pack's chunks), or a
            // read transaction while nothing has been written.
            match &self.txn {
                Some(txn) => {
                    let chunks = txn.open_table(CHUNKS).map_err(|e| db_err(&index_path, e))?;
                    let sketches = txn
                        .open_table(SKETCHES)
                        .map_err(|e| db_err(&index_path, e))?;
                    decide(&chunks, Some(&sketches))?
                }
                None => {
                    let rtx = self.store.begin_read()?;
                    let chunks = rtx.open_table(CHUNKS).map_err(|e| db_err(&index_path, e))?;
                    match rtx.open_table(SKETCHES) {
                        Ok(t) => decide(&chunks, Some(&t))?,
                        Err(redb::TableError::TableDoesNotExist(_)) => decide(&chunks, None)?,
                        Err(e) => return Err(db_err(&index_path, e)),
                    }
                }
            }
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
        let full =
            (self.pack.as_ref()).is_some_and(|p| p.must_roll_over(rec_len, self.opts.pack_size));
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
            refcount: 0,
        };
        let index_path = self.store.library().index_path();
        {
            let txn = self.txn()?;
            let mut t = txn.open_table(CHUNKS).map_err(|e| db_err(&index_path, e))?;
            t.insert(&hash, entry.encode())
                .map_err(|e| db_err(&index_path, e))?;
        }
        self.summary.new_chunks += 1;
        self.summary.new_bytes += ulen as u64;
        self.summary.stored_bytes += rec_len;
        Ok(entry)
    }

    /// Records in the index what a new chunk adds: a delta's base, or a whole chunk's
    /// super-features (the first chunk with a super-feature keeps it); and keeps a whole
    /// chunk's bytes at hand as a possible base.
    fn index_new(&mut self, hash: &[u8; 32], data: &[u8], st: &Stored) -> Result<()> {
        let index_path = self.store.library().index_path();
        if let Some(base) = &st.base {
            self.summary.delta_chunks += 1;
            self.summary.delta_bytes += data.len() as u64;
            let txn = self.txn()?;
            let mut t = txn.open_table(DELTAS).map_err(|e| db_err(&index_path, e))?;
            t.insert(hash, base).map_err(|e| db_err(&index_path, e))?;
            return Ok(());
        }
        let Some(sk) = &st.sketch else {
            return Ok(());
        };
        {
            let txn = self.txn()?;
            let mut t = txn
                .open_table(SKETCHES)
                .map_err(|e| db_err(&index_path, e))?;
            for sf in sk {
                if t.get(sf).map_err(|e| db_err(&index_path, e))?.is_none() {
                    t.insert(sf, sketch_value(hash))
                        .map_err(|e| db_err(&index_path, e))?;
                }
            }
        }
        self.bases.remember(*hash, data);
        Ok(())
    }

    /// The base of delta chunk `hash` and where it is stored, from the index (through the
    /// open write transaction, or a read transaction: a lookup must not start a write).
    fn base_of(&mut self, hash: &[u8; 32]) -> Result<([u8; 32], LocatorEntry)> {
        let index_path = self.store.library().index_path();
        let err = |e| db_err(&index_path, e);
        let find = |deltas: &dyn DeltaLookup, chunks: &dyn Lookup| {
            let base = deltas.base(hash, &index_path)?;
            let e = chunks.find(&base, &index_path)?.ok_or_else(|| {
                Error::library(
                    &index_path,
                    "the base of a delta chunk is missing from the index",
                )
            })?;
            Ok((base, locator_entry(&e, &index_path)?))
        };
        match &self.txn {
            Some(txn) => find(
                &txn.open_table(DELTAS).map_err(err)?,
                &txn.open_table(CHUNKS).map_err(err)?,
            ),
            None => {
                let rtx = self.store.begin_read()?;
                find(
                    &rtx.open_table(DELTAS).map_err(err)?,
                    &rtx.open_table(CHUNKS).map_err(err)?,
                )
            }
        }
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
