//! A game's chunks to its files: read from the packs (or taken from copies already on the
//! card), decoded on worker threads, each chunk checked against the signed manifest, then
//! written in order to a sink (the staging folder, or nothing for `verify`), each file's
//! size and hash checked at its end, and the chunk table's hash last.

use crate::chunks::decoder::ChunkDecoder;
use crate::chunks::reuse::LocalChunks;
use crate::chunks::{base_failed, decode_verified, delta_base, BaseChunk, ChunkSource, RecordRef};
use crate::error::{Error, Result};
use crate::folder::Folder;
use crate::library::Library;
use crate::progress::Progress;
use crate::trusted::VerifiedManifest;
use romlib_format::limits::MAX_CHUNK_LEN;
use romlib_format::manifest::{ChunkRef, CHUNK_RECORD_LEN};
use romlib_format::pack::{Method, RecordHeader, RECORD_HEADER_LEN};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::GameReport;

/// Where decoded file data goes.
pub(super) trait Sink {
    fn begin_file(&mut self, rel: &str, mode: u32) -> Result<()>;
    fn write(&mut self, data: &[u8]) -> Result<()>;
    fn end_file(&mut self) -> Result<()>;
}

struct NullSink;

impl Sink for NullSink {
    fn begin_file(&mut self, _: &str, _: u32) -> Result<()> {
        Ok(())
    }
    fn write(&mut self, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn end_file(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Writes a game's files under a staging folder this process created, through handles:
/// every folder on a file's path is opened without following a link.
pub(super) struct DirSink {
    root: Folder,
    /// The folder of the last file begun (most files share one), and its path.
    folder: Option<(String, Folder)>,
    current: Option<(PathBuf, BufWriter<File>)>,
}

impl DirSink {
    /// Files go below `root`.
    pub(super) fn new(root: Folder) -> Self {
        DirSink {
            root,
            folder: None,
            current: None,
        }
    }
}

impl Sink for DirSink {
    fn begin_file(&mut self, rel: &str, mode: u32) -> Result<()> {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        if self.folder.as_ref().is_none_or(|(d, _)| d != dir) {
            let f = if dir.is_empty() {
                self.root.try_clone()?
            } else {
                self.root.ensure_path(dir)?
            };
            self.folder = Some((dir.to_string(), f));
        }
        let (_, folder) = self.folder.as_ref().expect("just set");
        // Owner can always write (for later replacement); other bits as in the manifest.
        let f = folder.create_file(name, (mode & 0o777) | 0o200)?;
        self.current = Some((folder.at(name), BufWriter::with_capacity(256 * 1024, f)));
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        let (path, w) = self.current.as_mut().expect("begin_file first");
        w.write_all(data)
            .map_err(|e| Error::io(path.as_path(), "write", e))
    }

    fn end_file(&mut self) -> Result<()> {
        let (path, w) = self.current.take().expect("begin_file first");
        let f = w
            .into_inner()
            .map_err(|e| Error::io(&path, "write", e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&path, "fsync", e))
    }
}

/// Work flowing from the reader through a decoder thread to the writer, in order.
enum Job {
    Begin {
        rel: String,
        mode: u32,
    },
    /// Records read from packs, one after another in `buf`, not yet decoded.
    Raw {
        buf: Vec<u8>,
        chunks: Vec<RawChunk>,
    },
    /// Decoded chunks packed one after another into `data[..used]`, each verified.
    Decoded {
        data: Vec<u8>,
        used: usize,
        /// The raw batch's buffers, going back to the reader.
        raw: (Vec<u8>, Vec<RawChunk>),
    },
    End {
        path: String,
        size: u64,
        blake3: Vec<u8>,
    },
}

/// A chunk whose record was read but not decoded.
struct RawChunk {
    /// The chunk's length.
    len: u32,
    rec: RecordRef,
    /// A delta's base chunk.
    base: Base,
}

/// Where a delta's base chunk comes from.
enum Base {
    /// Not a delta.
    None,
    /// This record, in the same batch buffer: the decoder thread decodes it and keeps it in
    /// its [`BaseCache`].
    Record(RecordRef),
    /// This base, which the decoder thread holds decoded in its [`BaseCache`] (the reader
    /// keeps a mirror of each thread's cache, so it knows without asking).
    Cached([u8; 32]),
}

/// Bytes of decoded base chunks each decoder thread keeps at most, most recently used
/// first: a base that many deltas share (the builder picks the first stored chunk with a
/// feature, so popular chunks are the bases of many) is read and decoded once per thread,
/// not once per batch. Less when the memory budget is short ([`decoder_threads`]).
const BASE_CACHE_BYTES: u64 = 1 << 20;

/// A small cache of base chunks by hash, most recently used first, evicting the least
/// recently used beyond its capacity (the newest stays, whatever its size). The
/// decoder thread keeps the decoded bytes (`T` = [`BaseChunk`]); the reader keeps a mirror
/// of it (`T` = `()`) that sees the same insertions and uses in the same order, so the two
/// always agree on what the thread holds.
struct BaseCache<T> {
    entries: Vec<([u8; 32], usize, T)>,
    bytes: usize,
    capacity: usize,
}

impl<T> BaseCache<T> {
    fn new(capacity: usize) -> Self {
        BaseCache {
            entries: Vec::new(),
            bytes: 0,
            capacity,
        }
    }

    /// The entry for `hash`, made the most recently used.
    fn get(&mut self, hash: &[u8; 32]) -> Option<&mut T> {
        let i = self.entries.iter().position(|e| &e.0 == hash)?;
        let e = self.entries.remove(i);
        self.entries.insert(0, e);
        Some(&mut self.entries[0].2)
    }

    /// Adds `value` (`len` bytes) for `hash` as the most recently used; returns what it
    /// evicted.
    fn insert(&mut self, hash: [u8; 32], len: usize, value: T) -> Vec<T> {
        self.entries.insert(0, (hash, len, value));
        self.bytes += len;
        let mut evicted = Vec::new();
        while self.bytes > self.capacity && self.entries.len() > 1 {
            let (_, l, v) = self.entries.pop().expect("more than one entry");
            self.bytes -= l;
            evicted.push(v);
        }
        evicted
    }
}

/// Decoding is most of an install's work (ruzstd runs at a fraction of C zstd's speed), so
/// it runs on decoder threads, each with its own decoder, taking batches in turn; the
/// writer takes their results in the same turn, so order is kept. [`decoder_threads`]
/// says how many.
///
/// Most decoder threads an install runs.
const MAX_DECODERS: usize = 8;

/// The default of `--max-memory`: 8 MiB, what an install may take of a 128 MiB handheld
/// such as the Miyoo Mini while a front end runs.
pub const DEFAULT_MAX_MEMORY: u64 = 8 << 20;

/// What an install takes besides its decoder threads: the binary's pages, the reader's and
/// writer's buffers, the locator's reads (measured on x86_64 musl: 3.3 MiB with one decoder
/// thread's 1.4 MiB taken off).
const FIXED_MEMORY: u64 = 7 << 19;

/// Decoder threads for a game whose chunks are at most `max_chunk` bytes (with delta
/// chunks: `deltas`), within `max_memory` bytes, and the bytes of each one's base cache: one
/// thread per core this process may use (the standard library reads its CPU affinity and
/// cgroup quota), at most [`MAX_DECODERS`], at least one, and no more than the memory
/// allows with at least half a full base cache each (`ROMLIB_DECODERS` overrides the count,
/// for measurements).
pub fn decoder_threads(max_memory: u64, max_chunk: u64, deltas: bool) -> (usize, usize) {
    // What one decoder thread touches at most besides its base cache: its decoded batches,
    // the raw batches it holds, the decoder's window; with deltas, ruzstd's own copy of the
    // last base (the dictionary it is given is dropped after each delta).
    let per_thread = (BUFFERS as u64) * (BATCH_BYTES as u64 + max_chunk)
        + (BUFFERS as u64) * (BATCH_BYTES as u64 + 2 * max_chunk)
        + max_chunk
        + if deltas { max_chunk } else { 0 };
    let want = if deltas { BASE_CACHE_BYTES } else { 0 };
    let avail = max_memory.saturating_sub(FIXED_MEMORY);
    let forced = std::env::var("ROMLIB_DECODERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    plan_threads(
        forced.unwrap_or(cores),
        forced.is_some(),
        avail,
        per_thread,
        want,
    )
}

/// [`decoder_threads`] for `cores` cores (`forced`: exactly that many threads), `avail`
/// bytes beyond the fixed part, `per_thread` bytes per thread besides the base cache, and
/// `want` bytes of base cache per thread.
fn plan_threads(
    cores: usize,
    forced: bool,
    avail: u64,
    per_thread: u64,
    want: u64,
) -> (usize, usize) {
    let threads = if forced {
        cores.clamp(1, MAX_DECODERS)
    } else {
        let fits = avail / (per_thread + want / 2).max(1);
        cores.min(MAX_DECODERS).min(fits as usize).max(1)
    };
    let left = avail.saturating_sub(threads as u64 * per_thread) / threads as u64;
    (threads, want.min(left) as usize)
}

/// Buffers of evicted bases a decoder thread keeps for the next ones.
const SPARE_BASES: usize = 1;

/// Batches in flight per decoder thread (one being decoded, one queued or being written).
const BUFFERS: usize = 2;
/// A batch is handed over once it holds this many bytes (or its file ends): handing over
/// every chunk alone would cost a thread wake-up per chunk.
const BATCH_BYTES: usize = 128 * 1024;
/// Capacity of a batch buffer: a batch below `BATCH_BYTES` plus one largest chunk.
const BATCH_CAPACITY: usize = BATCH_BYTES + MAX_CHUNK_LEN as usize;
/// Capacity of a raw batch buffer: records below `BATCH_BYTES`, then one more chunk's
/// record and, for a delta, its base's record.
const RAW_CAPACITY: usize = BATCH_BYTES + 2 * (RECORD_HEADER_LEN + MAX_CHUNK_LEN as usize);

type Sender<T> = std::sync::mpsc::SyncSender<T>;
type Receiver<T> = std::sync::mpsc::Receiver<T>;

/// What else a game's streaming takes: what the device already holds (over the network),
/// who hears of progress, and the memory its decoder threads may take.
pub(super) struct Streaming<'a> {
    pub(super) local: Option<&'a mut LocalChunks>,
    pub(super) progress: &'a dyn Progress,
    pub(super) max_memory: u64,
}

/// Decodes and verifies every chunk of `m`, feeding the data to `sink`.
///
/// This thread looks chunks up and reads their records into raw batches;
/// [`decoder_threads`] threads take the batches in turn, decode each chunk and check its BLAKE3 against the
/// signed table before any of its bytes go further; the writer takes the decoded batches
/// in the same turn, hashes whole files and writes. Every buffer is allocated once and
/// circulates, so memory stays fixed whatever the game's size.
pub(super) fn stream_game(
    lib: &Library,
    m: &VerifiedManifest,
    mut source: ChunkSource,
    decoder: &mut (dyn ChunkDecoder + Send),
    sink: &mut (dyn Sink + Send),
    how: Streaming,
) -> Result<GameReport> {
    let Streaming {
        mut local,
        progress,
        max_memory,
    } = how;
    let max_chunk = u64::from(m.body().chunker.as_ref().map_or(0, |c| c.avg_size))
        .saturating_mul(4)
        .clamp(1, u64::from(MAX_CHUNK_LEN));
    let (decoders_n, cache_bytes) = decoder_threads(max_memory, max_chunk, source.has_deltas());
    let mut table = m.chunks()?;
    let mpath = m.path().to_path_buf();
    let remote = lib.remote_source().is_some();
    let mut others: Vec<Box<dyn ChunkDecoder + Send>> =
        (1..decoders_n).map(|_| decoder.another()).collect();
    let mut decoders: Vec<&mut (dyn ChunkDecoder + Send)> = vec![decoder];
    decoders.extend(others.iter_mut().map(|d| &mut **d));
    // Raw batch buffers go reader -> decoder -> writer -> reader; decoded ones stay with
    // their decoder thread (decoder -> writer -> decoder).
    let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel(decoders_n * BUFFERS);
    for _ in 0..decoders_n * BUFFERS {
        raw_tx
            .send((Vec::with_capacity(RAW_CAPACITY), Vec::new()))
            .expect("room for the buffers");
    }
    let mut to_decoders = Vec::new();
    let mut from_decoders = Vec::new();
    let mut decoder_ends = Vec::new();
    for _ in 0..decoders_n {
        let (in_tx, in_rx) = std::sync::mpsc::sync_channel::<Job>(BUFFERS);
        let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<Job>(BUFFERS);
        let (free_tx, free_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(BUFFERS);
        for _ in 0..BUFFERS {
            // Full length from the start: zeroed once here, never again per chunk.
            free_tx
                .send(vec![0; BATCH_CAPACITY])
                .expect("room for the buffers");
        }
        to_decoders.push(in_tx);
        from_decoders.push((out_rx, free_tx));
        decoder_ends.push((in_rx, out_tx, free_rx));
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = decoder_ends
            .into_iter()
            .zip(decoders)
            .map(|((jobs, out, free), dec)| {
                scope.spawn(move || decode_jobs(lib, jobs, out, free, dec, cache_bytes))
            })
            .collect();
        let writer = scope.spawn(|| write_jobs(&mpath, from_decoders, raw_tx, sink, progress));
        let produced = (|| -> Result<u64> {
            let turn = std::cell::Cell::new(0usize);
            let send = |job: Job| -> Result<()> {
                to_decoders[turn.get() % decoders_n]
                    .send(job)
                    .map_err(|_| stopped())?;
                turn.set(turn.get() + 1);
                Ok(())
            };
            // What each decoder thread holds in its base cache.
            let mut mirrors: Vec<BaseCache<()>> = (0..decoders_n)
                .map(|_| BaseCache::new(cache_bytes))
                .collect();
            let mut chunks = 0;
            for f in &m.body().files {
                send(Job::Begin {
                    rel: f.path.clone(),
                    mode: f.mode,
                })?;
                let mut batch: Option<(Vec<u8>, Vec<RawChunk>)> = None;
                let mut bytes = 0;
                for _ in 0..f.chunk_count {
                    let c = table
                        .next_chunk()?
                        .ok_or_else(|| Error::manifest(&mpath, "chunk table ended early"))?;
                    let (buf, list) = match batch.as_mut() {
                        Some(b) => b,
                        None => batch.insert(raw_rx.recv().map_err(|_| stopped())?),
                    };
                    if let Some(l) = local.as_deref_mut() {
                        l.advance_to(chunks)?;
                    }
                    let rec = match local.as_deref_mut().and_then(|l| take_local(l, &c, buf)) {
                        Some(rec) => rec,
                        None => {
                            // A range request stops before chunks the device holds.
                            let held = |k: u64| {
                                local.as_deref().is_some_and(|l| {
                                    table_hash(m, k).is_some_and(|h| l.may_hold(k, &h))
                                })
                            };
                            source.read_record_held(chunks, &c, buf, &held)?
                        }
                    };
                    let base = if rec.method != Method::ZstdDelta {
                        Base::None
                    } else {
                        let want = delta_base(&rec, &buf[rec.payload.clone()], lib)?;
                        // The thread this batch goes to: the next job sent.
                        let mirror = &mut mirrors[turn.get() % decoders_n];
                        if mirror.get(&want).is_some() {
                            Base::Cached(want)
                        } else {
                            // An installed version of the game may hold the base.
                            let found = local
                                .as_deref_mut()
                                .and_then(|l| take_local_base(l, &want, buf));
                            let b = match found {
                                Some(b) => b,
                                None => source.read_base_record(&rec, buf)?,
                            };
                            mirror.insert(want, b.ulen as usize, ());
                            Base::Record(b)
                        }
                    };
                    list.push(RawChunk {
                        len: c.len,
                        rec,
                        base,
                    });
                    chunks += 1;
                    bytes += c.len as usize;
                    if bytes >= BATCH_BYTES || buf.len() >= BATCH_BYTES {
                        // Between batches: a cancel stops here, as an error would (over
                        // HTTP, before the next request instead, so that nothing fetched is
                        // thrown away: [`crate::chunks::packs`]).
                        if !remote {
                            crate::cancel::check(&mpath)?;
                        }
                        let (buf, chunks) = batch.take().expect("just filled");
                        send(Job::Raw { buf, chunks })?;
                        bytes = 0;
                    }
                }
                if let Some((buf, chunks)) = batch.take() {
                    send(Job::Raw { buf, chunks })?;
                }
                send(Job::End {
                    path: f.path.clone(),
                    size: f.size,
                    blake3: f.blake3.clone(),
                })?;
            }
            Ok(chunks)
        })();
        drop(to_decoders);
        let mut decoded = Ok(());
        for w in workers {
            let r = w
                .join()
                .unwrap_or_else(|_| Err(Error::manifest(&mpath, "decoder thread panicked")));
            if decoded.is_ok() {
                decoded = r;
            }
        }
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(Error::manifest(&mpath, "writer thread panicked")));
        // A decoder's or the writer's error explains a stopped reader; otherwise report
        // the reader's.
        decoded?;
        let (files, bytes) = written?;
        let chunks = produced?;
        table.finish()?;
        Ok(GameReport {
            files,
            bytes,
            chunks,
            ..Default::default()
        })
    })
}

/// Appends chunk `c` as a stored record to `buf` when the device already holds it
/// (checked by [`LocalChunks::find`]); leaves `buf` as it was otherwise.
fn take_local(local: &mut LocalChunks, c: &ChunkRef, buf: &mut Vec<u8>) -> Option<RecordRef> {
    let start = buf.len();
    let header = RecordHeader {
        hash: c.hash,
        ulen: c.len,
        clen: c.len,
        method: Method::Stored,
    };
    buf.extend_from_slice(&header.encode());
    if !local.find(&c.hash, c.len, buf) {
        buf.truncate(start);
        return None;
    }
    Some(RecordRef {
        hash: c.hash,
        ulen: c.len,
        payload: start + RECORD_HEADER_LEN..buf.len(),
        pack_id: 0,
        offset: 0,
        dict_id: 0,
        method: Method::Stored,
    })
}

/// The hash chunk-table record `k` of `m` names, read again from the manifest file: only a
/// hint for planning downloads (every chunk is checked against the verified table).
pub(super) fn table_hash(m: &VerifiedManifest, k: u64) -> Option<[u8; 32]> {
    if k >= m.body().chunk_count {
        return None;
    }
    let mut b = [0u8; CHUNK_RECORD_LEN];
    let at = m.chunk_table_offset() + k * CHUNK_RECORD_LEN as u64;
    crate::fsio::read_exact_at(m.file(), &mut b, at).ok()?;
    ChunkRef::decode(&b).ok().map(|c| c.hash)
}

/// Appends base chunk `hash` as a stored record to `buf` when the device already holds it
/// (checked); leaves `buf` as it was otherwise.
fn take_local_base(
    local: &mut LocalChunks,
    hash: &[u8; 32],
    buf: &mut Vec<u8>,
) -> Option<RecordRef> {
    let start = buf.len();
    buf.resize(start + RECORD_HEADER_LEN, 0);
    let Some(len) = local.find_any_len(hash, buf) else {
        buf.truncate(start);
        return None;
    };
    let header = RecordHeader {
        hash: *hash,
        ulen: len,
        clen: len,
        method: Method::Stored,
    };
    buf[start..start + RECORD_HEADER_LEN].copy_from_slice(&header.encode());
    Some(RecordRef {
        hash: *hash,
        ulen: len,
        payload: start + RECORD_HEADER_LEN..buf.len(),
        pack_id: 0,
        offset: 0,
        dict_id: 0,
        method: Method::Stored,
    })
}

/// A placeholder error for a thread whose neighbour stopped; the neighbour's own error is
/// the one reported.
fn stopped() -> Error {
    Error::Io {
        path: PathBuf::new(),
        op: "hand over a chunk",
        source: std::io::Error::other("another install thread stopped"),
    }
}

/// A decoder thread: decodes each raw batch into one of its own buffers and checks every
/// chunk's BLAKE3 against the signed hash; passes file begin and end through.
fn decode_jobs(
    lib: &Library,
    jobs: Receiver<Job>,
    out: Sender<Job>,
    free: Receiver<Vec<u8>>,
    decoder: &mut (dyn ChunkDecoder + Send),
    cache_bytes: usize,
) -> Result<()> {
    // The bases decoded here lately (the reader's mirror of it decides what it sends).
    let mut cache: BaseCache<BaseChunk> = BaseCache::new(cache_bytes);
    // Buffers of evicted bases, for the next ones: an allocation of a chunk's size freed and
    // made again per base cost more than the decoding (musl's allocator hands such blocks
    // back to the kernel at once, and each unmapping stops the other cores).
    let mut spare: Vec<Vec<u8>> = Vec::new();
    for job in jobs {
        let job = match job {
            Job::Raw { buf, chunks } => {
                let mut data = free.recv().map_err(|_| stopped())?;
                let mut used = 0;
                for c in &chunks {
                    let end = used + c.len as usize;
                    let piece = data.get_mut(used..end).ok_or_else(|| {
                        Error::chunk(lib.pack_path(c.rec.pack_id), &c.rec.hash, "chunk too long")
                    })?;
                    let base = match &c.base {
                        Base::None => None,
                        Base::Cached(h) => Some(&*cache.get(h).ok_or_else(|| {
                            Error::chunk(
                                lib.pack_path(c.rec.pack_id),
                                &c.rec.hash,
                                "base chunk missing from the decoder's cache (internal error)",
                            )
                        })?),
                        Base::Record(b) => {
                            // Its length (the cache counts these bytes), in the buffer of
                            // a base evicted earlier when that is not much larger. Its old
                            // bytes are left in place, not zeroed: decoding overwrites
                            // every one, or fails and the buffer is not used.
                            let len = b.ulen as usize;
                            let mut data = spare
                                .pop()
                                .filter(|v| v.capacity() <= len + len / 4)
                                .unwrap_or_default();
                            data.truncate(len);
                            data.resize(len, 0);
                            let mut base = BaseChunk { hash: None, data };
                            let payload = &buf[b.payload.clone()];
                            decode_verified(lib, b, payload, None, decoder, &mut base.data)
                                .map_err(|e| base_failed(&c.rec.hash, &b.hash, e))?;
                            base.hash = Some(b.hash);
                            for old in cache.insert(b.hash, b.ulen as usize, base) {
                                if spare.len() < SPARE_BASES {
                                    spare.push(old.data);
                                }
                            }
                            Some(&*cache.get(&b.hash).expect("just inserted"))
                        }
                    };
                    let payload = &buf[c.rec.payload.clone()];
                    decode_verified(lib, &c.rec, payload, base, decoder, piece)?;
                    used = end;
                }
                Job::Decoded {
                    data,
                    used,
                    raw: (buf, chunks),
                }
            }
            other => other,
        };
        if out.send(job).is_err() {
            // The writer stopped; its error is the one reported.
            return Ok(());
        }
    }
    Ok(())
}

/// The writer thread: takes the decoders' results in turn, checks each file against its
/// signed size and hash, and feeds `sink`.
fn write_jobs(
    mpath: &Path,
    decoders: Vec<(Receiver<Job>, Sender<Vec<u8>>)>,
    raw_free: Sender<(Vec<u8>, Vec<RawChunk>)>,
    sink: &mut (dyn Sink + Send),
    progress: &dyn Progress,
) -> Result<(u64, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut size: u64 = 0;
    let (mut files, mut bytes) = (0u64, 0u64);
    for turn in 0.. {
        let (jobs, free) = &decoders[turn % decoders.len()];
        // A closed channel means the reader is done (or stopped, which it reports).
        let Ok(job) = jobs.recv() else {
            break;
        };
        match job {
            Job::Begin { rel, mode } => {
                sink.begin_file(&rel, mode)?;
                hasher.reset();
                size = 0;
            }
            Job::Decoded { data, used, raw } => {
                let piece = &data[..used];
                hasher.update(piece);
                size += used as u64;
                sink.write(piece)?;
                let (mut buf, mut chunks) = raw;
                progress.advance(used as u64, chunks.len() as u64);
                buf.clear();
                chunks.clear();
                // The reader may already have finished; then the buffers are dropped.
                let _ = raw_free.send((buf, chunks));
                let _ = free.send(data);
            }
            Job::Raw { .. } => unreachable!("decoder threads decode every raw batch"),
            Job::End {
                path,
                size: want,
                blake3,
            } => {
                if size != want || hasher.finalize().as_bytes().as_slice() != blake3.as_slice() {
                    return Err(Error::manifest(
                        mpath,
                        format!("file {path:?} does not match its signed size and hash"),
                    ));
                }
                sink.end_file()?;
                files += 1;
                bytes += size;
            }
        }
    }
    Ok((files, bytes))
}

/// Checks every chunk and file of a game; writes nothing. Tells `progress` of every batch
/// of chunks checked; takes at most `max_memory` ([`decoder_threads`]).
pub fn verify_game(
    lib: &Library,
    m: &VerifiedManifest,
    decoder: &mut (dyn ChunkDecoder + Send),
    progress: &dyn Progress,
    max_memory: u64,
) -> Result<GameReport> {
    stream_game(
        lib,
        m,
        ChunkSource::open(lib, m)?,
        decoder,
        &mut NullSink,
        Streaming {
            local: None,
            progress,
            max_memory,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_follow_cores_within_the_memory() {
        // At the default chunk size (128 KiB chunks at most): 1.375 MiB per thread.
        let mc = 128 << 10;
        let per = 2 * (BATCH_BYTES as u64 + mc) + 2 * (BATCH_BYTES as u64 + 2 * mc) + mc;
        assert_eq!(per, 1408 << 10);
        let avail = |mib: u64| (mib << 20) - FIXED_MEMORY;
        // A 4-core handheld at the default 8 MiB: 3 threads, 2 with a base cache each.
        assert_eq!(plan_threads(4, false, avail(8), per, 0), (3, 0));
        let (n, cache) = plan_threads(4, false, avail(8), per, BASE_CACHE_BYTES);
        assert_eq!(n, 2);
        assert!((768 << 10..1 << 20).contains(&cache), "{cache}");
        // With deltas, each thread also holds ruzstd's copy of a base: still 2 threads,
        // with 768 KiB of base cache each.
        let per_d = per + mc;
        assert_eq!(
            plan_threads(4, false, avail(8), per_d, BASE_CACHE_BYTES),
            (2, 768 << 10)
        );
        // 12 MiB: all four.
        assert_eq!(plan_threads(4, false, avail(12), per, 0).0, 4);
        assert_eq!(
            plan_threads(4, false, avail(12), per, BASE_CACHE_BYTES).0,
            4
        );
        // One core, or too little memory: one thread, and no cache it cannot afford.
        assert_eq!(
            plan_threads(1, false, avail(64), per, BASE_CACHE_BYTES),
            (1, 1 << 20)
        );
        assert_eq!(plan_threads(8, false, 0, per, BASE_CACHE_BYTES), (1, 0));
        // Forced (measurements): exactly that many, within 1..=MAX_DECODERS.
        assert_eq!(plan_threads(3, true, 0, per, 0).0, 3);
        assert_eq!(plan_threads(99, true, 0, per, 0).0, MAX_DECODERS);
    }
}
