//! The build pipeline: scan, chunk, hash, deduplicate, compress, append to packs, index,
//! and write signed manifests.
//!
//! A reader thread walks the input in sorted order and cuts chunks with FastCDC; the
//! calling thread takes batches of chunks, hashes and compresses them on the thread pool
//! (order-preserving), and appends them sequentially. Output is therefore the same for any
//! thread count and any directory listing order.

use crate::compress::Compressor;
use crate::dat::matching::DatCatalog;
use crate::error::{Error, Result};
use crate::fsio::{read_limited, temp_path, write_synced};
use crate::dat::digests::{DatHashes, HashHalf, LegacyHalf, ShaHalf};
use crate::scan::{scan, GameInput, ScanOptions};
use crate::library::dicts::add_dict;
use crate::library::publish::{publish_manifests, publish_public_key};
use crate::library::writer::{db_err, unix_now, LibraryWriter, PackFile};
use ed25519_dalek::SigningKey;
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message;
use rayon::prelude::*;
use redb::{ReadableTable, WriteTransaction};
use romlib_device::index::{CHUNKS, PACKS};
use romlib_format::chunker::{ChunkerParams, ALGORITHM_FASTCDC_V2020, NORMALIZATION_LEVEL};
use romlib_format::index::ChunkEntry;
use romlib_format::limits::{MAX_DICT_LEN, MAX_MANIFEST_BODY_LEN, MAX_PACK_SIZE, MIN_PACK_SIZE};
use romlib_format::manifest::ChunkRef;
use romlib_format::pack::{Method, RecordHeader, FOOTER_LEN, RECORD_HEADER_LEN};
use romlib_proto::{Chunker, FileEntry, Manifest};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default zstd level. Level 4 builds about twice as fast as 9 and stores about 2% more
/// (measured on real game data, BENCHMARKS.md); devices decode all levels at the same
/// speed. `-c 19` is there for the smallest library.
pub const DEFAULT_LEVEL: i32 = 4;

/// Bytes of chunk data per batch handed to the thread pool.
const BATCH_BYTES: usize = 8 << 20;

/// What a build does and with which parameters.
#[derive(Clone)]
pub struct BuildOptions {
    /// FastCDC average chunk size.
    pub avg_chunk: u32,
    /// zstd level, 1 to 22.
    pub level: i32,
    /// A zstd dictionary file to compress new chunks with.
    pub dict: Option<PathBuf>,
    /// Pack roll-over size.
    pub pack_size: u64,
    /// Worker threads.
    pub threads: usize,
    /// Store new chunks (build-packs, build); otherwise every chunk must already be stored.
    pub store_chunks: bool,
    /// Sign and write manifests with this key (generate-manifests, build).
    pub signing_key: Option<SigningKey>,
    /// Input scanning rules.
    pub scan: ScanOptions,
    /// Show a progress bar.
    pub progress: bool,
    /// Record CRC-32, MD5, SHA-1 and SHA-256 of every file in its manifest.
    pub dat_hashes: bool,
    /// DAT files to name games by (their matched game is recorded in the manifest).
    pub dats: Vec<PathBuf>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            avg_chunk: romlib_format::chunker::DEFAULT_AVG_CHUNK,
            level: DEFAULT_LEVEL,
            dict: None,
            pack_size: romlib_format::limits::DEFAULT_PACK_SIZE,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            store_chunks: true,
            signing_key: None,
            scan: ScanOptions::default(),
            progress: false,
            dat_hashes: true,
            dats: Vec::new(),
        }
    }
}

/// Figures of a finished build.
#[derive(Debug, Default, Clone)]
pub struct BuildSummary {
    /// Games in the input.
    pub games: u64,
    /// Files in them.
    pub files: u64,
    /// Bytes of those files.
    pub input_bytes: u64,
    /// Junk files skipped, and their bytes.
    pub junk_files: u64,
    /// Bytes of skipped junk.
    pub junk_bytes: u64,
    /// Files directly in the input folder, skipped.
    pub loose_files: u64,
    /// Chunks cut.
    pub chunks: u64,
    /// Chunks that were new to the library.
    pub new_chunks: u64,
    /// Uncompressed bytes of the new chunks.
    pub new_bytes: u64,
    /// Bytes appended to packs (records, headers and footers).
    pub stored_bytes: u64,
    /// Packs written.
    pub packs_written: u64,
    /// Manifests written or replaced.
    pub manifests_written: u64,
    /// Manifests already up to date.
    pub manifests_unchanged: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Repairs made to what an interrupted run left.
    pub recovered: Vec<String>,
}

enum Piece {
    Chunk(Vec<u8>),
    FileEnd { blake3: [u8; 32] },
    GameEnd,
}

struct Item {
    game: usize,
    file: usize,
    piece: Piece,
}

/// Runs a build of `input` into the library at `output`.
pub fn build(input: &Path, output: &Path, opts: &BuildOptions) -> Result<BuildSummary> {
    let started = Instant::now();
    let params = ChunkerParams::from_avg(opts.avg_chunk)
        .map_err(|e| Error::Usage(format!("--avg-chunk: {e}")))?;
    if !(1..=22).contains(&opts.level) {
        return Err(Error::Usage(format!(
            "-c {}: the level must be 1 to 22",
            opts.level
        )));
    }
    if opts.pack_size < MIN_PACK_SIZE || opts.pack_size >= MAX_PACK_SIZE {
        return Err(Error::Usage(format!(
            "--pack-size {}: must be at least {MIN_PACK_SIZE} and below 4 GiB ({MAX_PACK_SIZE})",
            opts.pack_size
        )));
    }
    let (games, report) = scan(input, opts.scan)?;
    let catalog = if opts.dats.is_empty() {
        None
    } else if !opts.dat_hashes {
        return Err(Error::Usage(
            "--dat matches games by their DAT hashes; it cannot go with --no-dat-hashes".into(),
        ));
    } else {
        Some(DatCatalog::load(&opts.dats)?)
    };
    let mut store = LibraryWriter::open(output)?;
    if let Some(key) = &opts.signing_key {
        publish_key(store.library(), key)?;
    }
    let fixed = crate::library::recovery::recover_manifests(&store)?;
    store.recovered.extend(fixed);
    let compressor = load_dictionary(&store, opts)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .build()
        .map_err(|e| Error::Usage(format!("--threads: {e}")))?;
    let total: u64 = games.iter().map(GameInput::size).sum();
    let bar = if opts.progress {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut summary = BuildSummary {
        games: games.len() as u64,
        files: games.iter().map(|g| g.files.len() as u64).sum(),
        input_bytes: total,
        junk_files: report.junk_files,
        junk_bytes: report.junk_bytes,
        loose_files: report.loose_files,
        recovered: std::mem::take(&mut store.recovered),
        ..Default::default()
    };
    let games = Arc::new(games);
    let (rx, dat) = spawn_reader(games.clone(), params, opts.dat_hashes);
    let mut run = Run {
        store: &mut store,
        opts,
        params,
        compressor,
        games: &games,
        txn: None,
        pack: None,
        current: None,
        pending: Vec::new(),
        summary: &mut summary,
        bar: &bar,
        catalog: catalog.as_ref(),
        dat,
    };
    let result = pool.install(|| run.consume(rx));
    let result = result.and_then(|()| run.finish());
    if result.is_err() {
        if let Some(p) = run.pack.take() {
            p.discard();
        }
    }
    bar.finish_and_clear();
    result?;
    crate::library::locator::write_catalog(store.library())?;
    store.compact()?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn load_dictionary(store: &LibraryWriter, opts: &BuildOptions) -> Result<Compressor> {
    let Some(path) = &opts.dict else {
        return Ok(Compressor::new(opts.level, None));
    };
    let bytes = read_limited(path, MAX_DICT_LEN, "dictionary")?;
    let id = zstd_safe::get_dict_id(&bytes)
        .map(|id| id.get())
        .unwrap_or(0);
    if id == 0 {
        return Err(Error::input(
            path,
            "not a zstd dictionary with an id (train one with `romlib train-dict`)",
        ));
    }
    add_dict(store.library(), id, &bytes)?;
    Ok(Compressor::new(opts.level, Some((Arc::new(bytes), id))))
}

/// Copies the signer's public key into the library's `keys/` folder (informational for
/// devices; the host's own `romlib install` trusts it by default). Written only if absent
/// or different.
fn publish_key(lib: &romlib_device::Library, key: &SigningKey) -> Result<()> {
    publish_public_key(lib, &key.verifying_key().to_bytes())
}

/// A batch of chunks and file and game ends, in input order, shared by the consumer and
/// the DAT hash threads.
type Batch = Arc<Vec<Item>>;

/// The per-file DAT hash results, one per file in input order, from two threads.
struct DatResults {
    legacy: Receiver<(u32, [u8; 16])>,
    sha: Receiver<([u8; 20], [u8; 32])>,
}

impl DatResults {
    fn next(&self) -> Result<DatHashes> {
        // Not a usage error: the threads only stop early if they panicked.
        let lost = || {
            Error::input(
                Path::new("<build>"),
                "internal error: a DAT hash thread stopped",
            )
        };
        let l = self.legacy.recv().map_err(|_| lost())?;
        let s = self.sha.recv().map_err(|_| lost())?;
        Ok(DatHashes::join(l, s))
    }
}

/// A thread feeding every batch to one half of the DAT hashes. MD5, SHA-1 and SHA-256 cost
/// more CPU than cutting and BLAKE3 together, so they run beside the reader and the pool,
/// on data the reader has already read (one read of the input).
fn spawn_half<H: HashHalf + 'static>(batches: Receiver<Batch>) -> Receiver<H::Out> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut h = H::default();
        for batch in batches {
            for it in batch.iter() {
                match &it.piece {
                    Piece::Chunk(d) => h.update(d),
                    Piece::FileEnd { .. } => {
                        if tx.send(std::mem::take(&mut h).finish()).is_err() {
                            return;
                        }
                    }
                    Piece::GameEnd => {}
                }
            }
        }
    });
    rx
}

fn spawn_reader(
    games: Arc<Vec<GameInput>>,
    params: ChunkerParams,
    dat_hashes: bool,
) -> (Receiver<Result<Batch>>, Option<DatResults>) {
    let (tx, rx) = sync_channel::<Result<Batch>>(2);
    let mut half_txs = Vec::new();
    let dat = dat_hashes.then(|| {
        let (ltx, lrx) = sync_channel::<Batch>(2);
        let (stx, srx) = sync_channel::<Batch>(2);
        half_txs = vec![ltx, stx];
        DatResults {
            legacy: spawn_half::<LegacyHalf>(lrx),
            sha: spawn_half::<ShaHalf>(srx),
        }
    });
    let err_tx = tx.clone();
    // The hash threads get each batch before the consumer, which waits for their results.
    let send = move |batch: Vec<Item>| -> bool {
        let batch = Arc::new(batch);
        half_txs.iter().all(|t| t.send(batch.clone()).is_ok()) && tx.send(Ok(batch)).is_ok()
    };
    std::thread::spawn(move || {
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        for (gi, game) in games.iter().enumerate() {
            for (fi, file) in game.files.iter().enumerate() {
                let res = read_file(file, params, |data| {
                    bytes += data.len();
                    batch.push(Item {
                        game: gi,
                        file: fi,
                        piece: Piece::Chunk(data),
                    });
                    if bytes >= BATCH_BYTES {
                        bytes = 0;
                        send(std::mem::take(&mut batch))
                    } else {
                        true
                    }
                });
                match res {
                    Ok(Some(blake3)) => batch.push(Item {
                        game: gi,
                        file: fi,
                        piece: Piece::FileEnd { blake3 },
                    }),
                    Ok(None) => return,
                    Err(e) => {
                        let _ = err_tx.send(Err(e));
                        return;
                    }
                }
            }
            batch.push(Item {
                game: gi,
                file: 0,
                piece: Piece::GameEnd,
            });
        }
        send(batch);
    });
    (rx, dat)
}

/// What a file that disappears between the scan and its read is.
const VANISHED: &str = "file vanished during the build; run it again";

/// Chunks one file, calling `emit` per chunk; returns the file's BLAKE3, or `None` when
/// `emit` asked to stop.
fn read_file(
    file: &crate::scan::InputFile,
    params: ChunkerParams,
    mut emit: impl FnMut(Vec<u8>) -> bool,
) -> Result<Option<[u8; 32]>> {
    let path = &file.abs;
    let f = File::open(path).map_err(|e| Error::io_or_missing(path, "open", e, VANISHED))?;
    let mut hasher = blake3::Hasher::new();
    let mut read: u64 = 0;
    let cdc = fastcdc::v2020::StreamCDC::with_level(
        f,
        params.min as usize,
        params.avg as usize,
        params.max as usize,
        fastcdc::v2020::Normalization::Level1,
    );
    for chunk in cdc {
        let chunk = chunk.map_err(|e| match e {
            fastcdc::v2020::Error::IoError(io) => Error::io(path, "read", io),
            other => Error::io(path, "read", std::io::Error::other(other.to_string())),
        })?;
        hasher.update(&chunk.data);
        read += chunk.data.len() as u64;
        if read > file.size {
            break;
        }
        if !emit(chunk.data) {
            return Ok(None);
        }
    }
    let after =
        std::fs::metadata(path).map_err(|e| Error::io_or_missing(path, "stat", e, VANISHED))?;
    if read != file.size || after.len() != file.size || after.modified().ok() != file.mtime {
        return Err(Error::input(
            path,
            "file changed during the build; run it again",
        ));
    }
    Ok(Some(*hasher.finalize().as_bytes()))
}

/// A game whose chunks are all appended, waiting for its packs to be committed.
struct GameState {
    game: usize,
    files: Vec<FileEntry>,
    file_chunks: u64,
    table: Vec<u8>,
    packs: BTreeSet<u32>,
}

struct Run<'a> {
    store: &'a mut LibraryWriter,
    opts: &'a BuildOptions,
    params: ChunkerParams,
    compressor: Compressor,
    games: &'a [GameInput],
    txn: Option<WriteTransaction>,
    pack: Option<PackFile>,
    current: Option<GameState>,
    pending: Vec<GameState>,
    summary: &'a mut BuildSummary,
    bar: &'a ProgressBar,
    catalog: Option<&'a DatCatalog>,
    /// DAT hashes of the files, in order, from their threads.
    dat: Option<DatResults>,
}

/// A batch's chunk hashes, fates, and compressed new chunks.
type Prepared = (
    Vec<Option<[u8; 32]>>,
    Vec<Option<Fate>>,
    Vec<Option<(Method, Vec<u8>)>>,
);

/// A chunk lookup over either kind of redb table.
trait Lookup {
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

enum Fate {
    /// Already stored: its pack id.
    Known(u32),
    /// New: index into the batch's compressed payloads.
    New(usize),
    /// Same as an earlier new chunk of this batch.
    Again,
}

impl Run<'_> {
    fn txn(&mut self) -> Result<&mut WriteTransaction> {
        if self.txn.is_none() {
            self.txn = Some(self.store.begin()?);
        }
        Ok(self.txn.as_mut().expect("just set"))
    }

    fn consume(&mut self, rx: Receiver<Result<Batch>>) -> Result<()> {
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
                        fates.push(Some(Fate::Known(e.pack_id)));
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
        let mut placed: HashMap<[u8; 32], u32> = HashMap::new();
        for (i, item) in batch.iter().enumerate() {
            match &item.piece {
                Piece::Chunk(data) => {
                    let hash = hashes[i].expect("chunks have hashes");
                    let pack_id = match fates[i].take().expect("chunks have fates") {
                        Fate::Known(p) => p,
                        Fate::Again => placed[&hash],
                        Fate::New(k) => {
                            let (method, payload) = compressed[k].take().expect("used once");
                            let p = self.append(hash, data.len() as u32, method, &payload)?;
                            placed.insert(hash, p);
                            p
                        }
                    };
                    self.summary.chunks += 1;
                    self.bar.inc(data.len() as u64);
                    let g = self.game_state(item.game);
                    let rec = ChunkRef {
                        hash,
                        len: data.len() as u32,
                    }
                    .encode();
                    g.table.extend_from_slice(&rec);
                    g.file_chunks += 1;
                    g.packs.insert(pack_id);
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

    /// Appends a new chunk to the open pack (rolling over when full) and indexes it.
    fn append(
        &mut self,
        hash: [u8; 32],
        ulen: u32,
        method: romlib_format::pack::Method,
        payload: &[u8],
    ) -> Result<u32> {
        let rec_len = (RECORD_HEADER_LEN + payload.len()) as u64;
        let full = (self.pack.as_ref()).is_some_and(|p| p.must_roll_over(rec_len, self.opts.pack_size));
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
        Ok(pack_id)
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

    fn finish(&mut self) -> Result<()> {
        self.seal()?;
        if let Some(txn) = self.txn.take() {
            // Only lookups happened in it.
            txn.abort()
                .map_err(|e| db_err(&self.store.library().index_path(), e))?;
        }
        Ok(())
    }

    /// Writes the manifests of finished games whose chunks are all committed.
    fn flush_pending(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let Some(key) = &self.opts.signing_key else {
            return Ok(());
        };
        let lib = self.store.library().clone();
        let mut changed = Vec::new();
        for g in pending {
            let input = &self.games[g.game];
            let sc = &input.sidecar;
            let dat = self
                .catalog
                .and_then(|c| c.best_match(&input.title, &g.files));
            let display_name = (sc.name.clone())
                .or_else(|| dat.as_ref().map(|d| d.name.clone()))
                .unwrap_or_else(|| input.title.clone());
            let region = (sc.region.clone())
                .or_else(|| dat.as_ref().map(|d| d.region.clone()))
                .unwrap_or_default();
            let body = Manifest {
                format_version: romlib_format::manifest::VERSION as u32,
                title_id: input.title.clone(),
                version: sc.version.clone().unwrap_or_default(),
                display_name,
                system: sc.system.clone().unwrap_or_default(),
                region,
                languages: sc.languages.clone(),
                tags: sc.tags.clone(),
                description: sc.description.clone().unwrap_or_default(),
                dat,
                chunker: Some(Chunker {
                    algorithm: ALGORITHM_FASTCDC_V2020.into(),
                    min_size: self.params.min,
                    avg_size: self.params.avg,
                    max_size: self.params.max,
                    normalization: NORMALIZATION_LEVEL,
                }),
                files: g.files,
                pack_ids: g.packs.into_iter().collect(),
                total_size: input.size(),
                ..Default::default()
            };
            let body_len = body.encoded_len() + 64;
            if body_len > MAX_MANIFEST_BODY_LEN as usize {
                return Err(Error::input(
                    &input.dir,
                    format!(
                        "the game's manifest would be about {body_len} bytes, over the format's \
                         limit of {MAX_MANIFEST_BODY_LEN}; it has too many files or too long names"
                    ),
                ));
            }
            let bytes = crate::library::manifest_writer::encode_signed(body, &g.table, key);
            let path = lib.manifest_path(&input.title);
            if std::fs::read(&path).is_ok_and(|old| old == bytes) {
                self.summary.manifests_unchanged += 1;
                // Heals a locator that a crash or an older romlib left missing or stale.
                crate::library::locator::refresh(self.store, &input.title, &g.table)?;
                continue;
            }
            let tmp = temp_path(&path);
            write_synced(&tmp, &bytes, 0o644)?;
            let table_hash = *blake3::hash(&g.table).as_bytes();
            changed.push((input.title.clone(), path, tmp, g.table, table_hash));
        }
        if changed.is_empty() {
            return Ok(());
        }
        let locators: Vec<(String, Vec<u8>)> = changed
            .iter()
            .map(|(title, _, _, table, _)| (title.clone(), table.clone()))
            .collect();
        let txn = self.txn.take();
        self.summary.manifests_written += publish_manifests(self.store, txn, changed)?;
        for (title, table) in &locators {
            crate::library::locator::write(self.store, title, table)?;
        }
        Ok(())
    }
}

impl GameState {
    fn new(game: usize) -> Self {
        Self {
            game,
            files: Vec::new(),
            file_chunks: 0,
            table: Vec::new(),
            packs: BTreeSet::new(),
        }
    }
}

/// Hooks for tests that drive one step of the pipeline directly.
pub mod test_support {
    use super::*;

    /// Chunks one file with the default chunker, as the reader thread does, and returns its
    /// BLAKE3 (or the error the build would report).
    pub fn read_file_once(file: &crate::scan::InputFile) -> Result<[u8; 32]> {
        let params = ChunkerParams::from_avg(romlib_format::chunker::DEFAULT_AVG_CHUNK)
            .map_err(|e| Error::Usage(e.to_string()))?;
        read_file(file, params, |_| true).map(|h| h.expect("never asked to stop"))
    }

    /// The lengths of the chunks the builder cuts from `file` with average `avg`.
    pub fn chunk_lengths(file: &crate::scan::InputFile, avg: u32) -> Result<Vec<usize>> {
        let params = ChunkerParams::from_avg(avg).map_err(|e| Error::Usage(e.to_string()))?;
        let mut lens = Vec::new();
        read_file(file, params, |d| {
            lens.push(d.len());
            true
        })?;
        Ok(lens)
    }
}
