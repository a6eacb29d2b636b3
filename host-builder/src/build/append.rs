//! The consuming side of a build: hashes each batch's chunks on the thread pool,
//! deduplicates them against the index, compresses the new ones on the pool
//! (order-preserving), appends them to packs in input order, indexes them, and seals packs
//! as they fill.

use super::batch::{Batch, Item, Piece};
use super::compress::Compressor;
use super::dat_hashes::DatResults;
use super::manifest::{GameState, Manifests};
use super::options::{BuildOptions, BuildProgress, BuildSummary};
use super::scan::GameInput;
use crate::error::{Error, Result};
use crate::library::locator::locator_entry;
use crate::library::writer::{db_err, unix_now, LibraryWriter, PackFile};
use rayon::prelude::*;
use redb::{ReadableTable, WriteTransaction};
use romlib_device::chunks::index::{CHUNKS, PACKS};
use romlib_format::index::ChunkEntry;
use romlib_format::manifest::ChunkRef;
use romlib_format::pack::{Method, RecordHeader, FOOTER_LEN, RECORD_HEADER_LEN};
use romlib_proto::FileEntry;
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::Receiver;

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
}

/// A batch's chunk hashes, fates, and compressed new chunks.
pub(super) type Prepared = (
    Vec<Option<[u8; 32]>>,
    Vec<Option<Fate>>,
    Vec<Option<(Method, Vec<u8>)>>,
);

/// A chunk lookup over either kind of redb table.
pub(super) trait Lookup {
    fn find(&self, hash: &[u8; 32], index_path: &Path) -> Result<Option<ChunkEntry>>;
}

impl<T: ReadableTable<&'static [u8; 32], &'static [u8]>> Lookup for T {
    fn find(&self, hash: &[u8; 32], index_path: &Path) -> Result<Option<ChunkEntry>> {
        match self.get(hash).map_err(|e| db_err(index_path, e))? {
            None => Ok(None),
            Some(v) => ChunkEntry::decode(v.value())
                .map(Some)
                .map_err(|e| Error::library(index_path, e.to_string())),
        }
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
        let (hashes, fates, compressed) = self.prepare(batch)?;
        self.append_batch(batch, hashes, fates, compressed)
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
        {
            let store_chunks = self.opts.store_chunks;
            let games = self.games;
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
                Ok(())
            };
            // Look up through the open write transaction (it sees this pack's chunks), or a
            // read transaction while nothing has been written.
            match &self.txn {
                Some(txn) => decide(&txn.open_table(CHUNKS).map_err(|e| db_err(&index_path, e))?)?,
                None => {
                    let rtx = self.store.begin_read()?;
                    decide(&rtx.open_table(CHUNKS).map_err(|e| db_err(&index_path, e))?)?
                }
            }
        }
        let compressor = self.compressor.clone();
        let compressed: Vec<(Method, Vec<u8>)> = new_items
            .par_iter()
            .map(|&i| match &batch[i].piece {
                Piece::Chunk(d) => compressor.compress(d),
                _ => unreachable!("only chunks are new"),
            })
            .collect();
        let compressed: Vec<Option<_>> = compressed.into_iter().map(Some).collect();
        Ok((hashes, fates, compressed))
    }

    /// Appends a prepared batch in input order and records its chunks and files.
    fn append_batch(
        &mut self,
        batch: &[Item],
        hashes: Vec<Option<[u8; 32]>>,
        mut fates: Vec<Option<Fate>>,
        mut compressed: Vec<Option<(Method, Vec<u8>)>>,
    ) -> Result<()> {
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
                            let (method, payload) = compressed[k].take().expect("used once");
                            let e = self.append(hash, data.len() as u32, method, &payload)?;
                            placed.insert(hash, e);
                            e
                        }
                    };
                    let located = locator_entry(&entry, &index_path)?;
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
                    let dat = self.dat.as_ref().map(DatResults::next).transpose()?;
                    let f = &self.games[item.game].files[item.file];
                    let (rel, size, mode) = (f.rel.clone(), f.size, f.mode);
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
                        d.fill(&mut entry);
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
            t.insert(&hash, entry.encode().as_slice())
                .map_err(|e| db_err(&index_path, e))?;
        }
        self.summary.new_chunks += 1;
        self.summary.new_bytes += ulen as u64;
        self.summary.stored_bytes += rec_len;
        Ok(entry)
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
