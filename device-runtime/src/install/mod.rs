//! Verify, install and uninstall: the one implementation both binaries use.
//!
//! Install (SPEC section 7): every file is written under
//! `<install-dir>/.romlib-staging/<title>.new/`, fsynced, and every chunk, file and the
//! chunk table are verified; then a completion marker is written last and the staged
//! folder is renamed to `<install-dir>/<title>`. Replacing an installed game swaps the two
//! folders in one step where the file system can ([`exchange`]), then names the replaced
//! copy `.romlib-staging/<title>.old`; elsewhere it first moves the game there, and for a
//! moment no game is visible. [`recover`] (run before every operation) rolls such a swap
//! back or forward after a crash, so the game is always the old or the new.
//!
//! The files in a game's folder that its manifest does not own (an emulator's saves,
//! configs, screenshots) are the user's: a reinstall or upgrade carries them into the new
//! version, and uninstall leaves them in the folder with a `.romlib-kept` note, which lets
//! a later install of the game take the folder back. They are moved by rename only, and
//! only after the new version is in place, so a crash at any point loses none of them:
//! [`recover`] finishes carrying them.

use crate::chunks::decoder::ChunkDecoder;
use crate::chunks::reuse::LocalChunks;
use crate::chunks::{base_failed, decode_verified, delta_base, BaseChunk, ChunkSource, RecordRef};
use crate::error::{Error, Result};
use crate::folder::{unexpected, Folder, Kind};
use crate::fsio;
use crate::library::Library;
use crate::progress::{NoProgress, Progress};
use crate::trusted::{ManifestFile, VerifiedManifest};
use romlib_format::limits::MAX_CHUNK_LEN;
use romlib_format::manifest::{ChunkRef, CHUNK_RECORD_LEN};
use romlib_format::pack::{Method, RecordHeader, RECORD_HEADER_LEN};
use romlib_format::path::check_title_id;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

mod carry;
mod installed;
mod inventory;
pub mod layout;
pub mod names;
mod recover;
pub mod target_fs;
use carry::{kept_note, retire_copy, Carry};
pub use carry::{uninstalled_message, KEPT_MARKER};
pub use installed::{
    check_installed, installed_manifest, installed_titles, repair_installed, BadRange, FileDamage,
    InstalledCheck, RepairReport,
};
pub use inventory::{cleanup, count, installed_games, leftovers, leftovers_note, Installed};
use names::{staging_entry, Role};
pub use recover::{recover_in, survey, Found, Plan, Recovered};

/// The staging folder inside an install directory.
pub const STAGING_DIR: &str = ".romlib-staging";
/// Beside the games: what an install over the network that was cut off had written (a
/// folder per title, and the manifest it was written from), reused by the next attempt.
pub const RESUME_DIR: &str = ".romlib-resume";
/// The completion marker written last into an installed game's folder: a few text lines
/// (title, chunk-table hash, signer, `manifest-bytes N`), a blank line, then the N bytes
/// of the manifest it was installed from, so a later install over the network can reuse
/// the chunks its files hold.
pub const MARKER: &str = ".romlib-installed";

/// Figures of a verified or installed game.
#[derive(Debug, Clone, Default)]
pub struct GameReport {
    /// Files written or checked.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
    /// Chunks decoded and verified.
    pub chunks: u64,
    /// Of those, chunks taken from files already on the device (network installs).
    pub reused_chunks: u64,
    /// Their bytes.
    pub reused_bytes: u64,
    /// Files of the folder that the game does not own, carried into the new version
    /// (relative paths; a name the new version took got `.kept` added).
    pub kept: Vec<String>,
    /// What an interrupted earlier operation had left, finished or removed first.
    pub recovered: Vec<String>,
    /// What was found in the staging and resume folders that romlib did not write or
    /// cannot account for, left alone: one line each.
    pub left_alone: Vec<String>,
}

impl GameReport {
    /// The result object both binaries print with `--json` once game `title` is installed
    /// into `install_dir`, `downloaded` bytes in `requests` HTTP requests, of which
    /// `extra_without_ranges` only because the server ignores byte ranges.
    pub fn installed_json(
        &self,
        title: &str,
        install_dir: &Path,
        downloaded: u64,
        requests: u64,
        extra_without_ranges: u64,
    ) -> crate::cli::json::Obj {
        crate::cli::json::Obj::new()
            .field("game", title)
            .field("path", install_dir.join(title).as_path())
            .field("files", self.files)
            .field("bytes", self.bytes)
            .field("chunks", self.chunks)
            .field("reused_chunks", self.reused_chunks)
            .field("reused_bytes", self.reused_bytes)
            .field("bytes_downloaded", downloaded)
            .field("requests", requests)
            .field("bytes_extra_without_ranges", extra_without_ranges)
            .field("kept", self.kept.clone())
            .field("recovered", self.recovered.clone())
            .field("left_alone", self.left_alone.clone())
    }

    /// What both binaries print once game `title` is installed into `install_dir`.
    pub fn installed_message(&self, title: &str, install_dir: &Path) -> String {
        format!(
            "installed {title} into {}: {}, {} bytes, {} verified{}",
            install_dir.join(title).display(),
            count(self.files as usize, "file", "files"),
            self.bytes,
            count(self.chunks as usize, "chunk", "chunks"),
            kept_note("; kept", &self.kept)
        )
    }
}

/// Where decoded file data goes.
trait Sink {
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
struct DirSink {
    root: Folder,
    /// The folder of the last file begun (most files share one), and its path.
    folder: Option<(String, Folder)>,
    current: Option<(PathBuf, BufWriter<File>)>,
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
    /// This record, in the same batch buffer.
    Record(RecordRef),
    /// The same base as the previous delta of the batch (still decoded).
    Previous,
}

/// Decoder threads. Decoding is most of an install's work (ruzstd runs at a fraction of
/// C zstd's speed), so it runs on two threads, each with its own decoder, taking batches
/// in turn; the writer takes their results in the same turn, so order is kept.
const DECODERS: usize = 2;
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

/// Decodes and verifies every chunk of `m`, feeding the data to `sink`.
///
/// This thread looks chunks up and reads their records into raw batches; [`DECODERS`]
/// threads take the batches in turn, decode each chunk and check its BLAKE3 against the
/// signed table before any of its bytes go further; the writer takes the decoded batches
/// in the same turn, hashes whole files and writes. Every buffer is allocated once and
/// circulates, so memory stays fixed whatever the game's size.
fn stream_game(
    lib: &Library,
    m: &VerifiedManifest,
    mut source: ChunkSource,
    decoder: &mut (dyn ChunkDecoder + Send),
    sink: &mut (dyn Sink + Send),
    mut local: Option<&mut LocalChunks>,
    progress: &dyn Progress,
) -> Result<GameReport> {
    let mut table = m.chunks()?;
    let mpath = m.path().to_path_buf();
    let mut others: Vec<Box<dyn ChunkDecoder + Send>> =
        (1..DECODERS).map(|_| decoder.another()).collect();
    let mut decoders: Vec<&mut (dyn ChunkDecoder + Send)> = vec![decoder];
    decoders.extend(others.iter_mut().map(|d| &mut **d));
    // Raw batch buffers go reader -> decoder -> writer -> reader; decoded ones stay with
    // their decoder thread (decoder -> writer -> decoder).
    let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel(DECODERS * BUFFERS);
    for _ in 0..DECODERS * BUFFERS {
        raw_tx
            .send((Vec::with_capacity(RAW_CAPACITY), Vec::new()))
            .expect("room for the buffers");
    }
    let mut to_decoders = Vec::new();
    let mut from_decoders = Vec::new();
    let mut decoder_ends = Vec::new();
    for _ in 0..DECODERS {
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
                scope.spawn(move || decode_jobs(lib, jobs, out, free, dec))
            })
            .collect();
        let writer = scope.spawn(|| write_jobs(&mpath, from_decoders, raw_tx, sink, progress));
        let produced = (|| -> Result<u64> {
            let mut turn = 0;
            let mut send = |job: Job| -> Result<()> {
                to_decoders[turn % DECODERS]
                    .send(job)
                    .map_err(|_| stopped())?;
                turn += 1;
                Ok(())
            };
            let mut chunks = 0;
            for f in &m.body().files {
                send(Job::Begin {
                    rel: f.path.clone(),
                    mode: f.mode,
                })?;
                let mut batch: Option<(Vec<u8>, Vec<RawChunk>)> = None;
                let mut bytes = 0;
                // The base of the last delta in this batch: the decoder thread still holds
                // it decoded, so the next delta on it needs no second copy.
                let mut last_base = None;
                for _ in 0..f.chunk_count {
                    let c = table
                        .next_chunk()?
                        .ok_or_else(|| Error::manifest(&mpath, "chunk table ended early"))?;
                    let (buf, list) = match batch.as_mut() {
                        Some(b) => b,
                        None => batch.insert(raw_rx.recv().map_err(|_| stopped())?),
                    };
                    let rec = match local.as_deref_mut().and_then(|l| take_local(l, &c, buf)) {
                        Some(rec) => rec,
                        None => {
                            // A range request stops before chunks the device holds.
                            let held = |k: u64| {
                                local.as_deref().is_some_and(|l| {
                                    table_hash(m, k).is_some_and(|h| l.may_hold(&h))
                                })
                            };
                            source.read_record_held(chunks, &c, buf, &held)?
                        }
                    };
                    let base = if rec.method != Method::ZstdDelta {
                        Base::None
                    } else {
                        let want = delta_base(&rec, &buf[rec.payload.clone()], lib)?;
                        if last_base == Some(want) {
                            Base::Previous
                        } else {
                            last_base = Some(want);
                            // An installed version of the game may hold the base.
                            let found = local
                                .as_deref_mut()
                                .and_then(|l| take_local_base(l, &want, buf));
                            match found {
                                Some(b) => Base::Record(b),
                                None => Base::Record(source.read_base_record(&rec, buf)?),
                            }
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
                        let (buf, chunks) = batch.take().expect("just filled");
                        send(Job::Raw { buf, chunks })?;
                        bytes = 0;
                        last_base = None;
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
fn table_hash(m: &VerifiedManifest, k: u64) -> Option<[u8; 32]> {
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
) -> Result<()> {
    // The base of the last delta decoded here.
    let mut base = BaseChunk::default();
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
                        Base::Previous => Some(&base),
                        Base::Record(b) => {
                            base.hash = None;
                            base.data.resize(b.ulen as usize, 0);
                            let payload = &buf[b.payload.clone()];
                            decode_verified(lib, b, payload, None, decoder, &mut base.data)
                                .map_err(|e| base_failed(&c.rec.hash, &b.hash, e))?;
                            base.hash = Some(b.hash);
                            Some(&base)
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
/// of chunks checked.
pub fn verify_game(
    lib: &Library,
    m: &VerifiedManifest,
    decoder: &mut (dyn ChunkDecoder + Send),
    progress: &dyn Progress,
) -> Result<GameReport> {
    stream_game(
        lib,
        m,
        ChunkSource::open(lib, m)?,
        decoder,
        &mut NullSink,
        None,
        progress,
    )
}

/// Whether `dir` is a game folder romlib completed: its completion marker is a file.
pub(crate) fn is_ours(dir: &Folder) -> bool {
    dir.kind(MARKER).is_ok_and(|k| k == Kind::File)
}

/// Whether `dir` holds an uninstall's note of the user's files left in it.
pub(crate) fn is_kept(dir: &Folder) -> bool {
    dir.kind(KEPT_MARKER).is_ok_and(|k| k == Kind::File)
}

/// Opens install folder `path`, creating it first with `create`. The user named it, so
/// it may lead through links; nothing below it is followed.
fn open_install_dir(path: &Path, create: bool) -> Result<Folder> {
    if create {
        fs::create_dir_all(path).map_err(|e| Error::io(path, "create directory", e))?;
    }
    Folder::open(path).map_err(|e| match e {
        Error::NotFound { path, .. } => Error::NotFound {
            path,
            what: "install folder",
        },
        e => e,
    })
}

/// Cleans up after interrupted installs, reinstalls, uninstalls and repairs in
/// `install_dir` (see [`recover_in`]); cut-off downloads stay for reuse. An install folder
/// that does not exist has nothing to recover.
pub fn recover(install_dir: &Path) -> Result<Recovered> {
    match Folder::open(install_dir) {
        Ok(inst) => recover_in(&inst, false),
        Err(Error::NotFound { .. }) => Ok(Recovered::default()),
        Err(e) => Err(e),
    }
}

/// Game `title`'s folder in `inst`: `None` if there is none; the folder if romlib may
/// install over it (a game romlib completed, or the user's files an uninstall kept);
/// otherwise an error, nothing changed.
fn live_game(inst: &Folder, title: &str) -> Result<Option<Folder>> {
    match inst.kind(title)? {
        Kind::Missing => Ok(None),
        Kind::Dir => {
            let live = inst.sub_dir(title)?;
            if is_ours(&live) || is_kept(&live) {
                Ok(Some(live))
            } else {
                Err(Error::NotOurs {
                    path: inst.at(title),
                })
            }
        }
        k => Err(unexpected(inst.at(title), k, "a game's folder")),
    }
}

/// Refuses when a staging entry of game `title` is still there after [`recover_in`] (it
/// was left alone, so romlib will not work over it).
fn staging_clear(staging: &Folder, title: &str) -> Result<()> {
    for role in [Role::New, Role::Old, Role::Del, Role::Repair] {
        let name = staging_entry(title, role);
        match staging.kind(&name)? {
            Kind::Missing => {}
            k => {
                return Err(unexpected(
                    staging.at(&name),
                    k,
                    "none: it is not in a state romlib leaves, so romlib will not work over it \
                     (`list-games --install-dir` says why; move it away)",
                ))
            }
        }
    }
    Ok(())
}

/// The resume folder of `inst`, if it is there and is a folder (a link or file there is
/// left alone, and nothing is resumed or kept).
fn resume_folder(inst: &Folder) -> Option<Folder> {
    inst.sub(RESUME_DIR).ok().flatten()
}

/// Installs a verified game into `install_dir/<title>`, atomically.
pub fn install_game(
    lib: &Library,
    m: &VerifiedManifest,
    install_dir: &Path,
    decoder: &mut (dyn ChunkDecoder + Send),
) -> Result<GameReport> {
    install_game_with(lib, m, install_dir, decoder, &InstallOptions::default())
}

/// How an install goes beyond the defaults of [`install_game`].
pub struct InstallOptions<'a> {
    /// A library folder on the device to take chunks from instead of downloading them
    /// (installs from a remote library).
    pub reuse: Option<&'a Library>,
    /// Told of every batch of chunks written.
    pub progress: &'a dyn Progress,
    /// Refuse a game the file system has no room for, before writing (on by default; off
    /// where the file system's free space says little, e.g. a compressing one: a full disk
    /// then fails the install as it writes, which leaves nothing either).
    pub check_room: bool,
}

impl Default for InstallOptions<'_> {
    fn default() -> Self {
        Self {
            reuse: None,
            progress: &NoProgress,
            check_room: true,
        }
    }
}

/// [`install_game`] with [`InstallOptions`].
pub fn install_game_with(
    lib: &Library,
    m: &VerifiedManifest,
    install_dir: &Path,
    decoder: &mut (dyn ChunkDecoder + Send),
    opts: &InstallOptions,
) -> Result<GameReport> {
    let (reuse, progress) = (opts.reuse, opts.progress);
    let title = m.body().title_id.clone();
    let inst = open_install_dir(install_dir, true)?;
    let recovered = recover_in(&inst, false)?;
    let live = live_game(&inst, &title)?;
    let staging = inst.ensure_sub(STAGING_DIR)?;
    let drop_staging = || {
        let _ = inst.remove_empty_dir(OsStr::new(STAGING_DIR));
    };
    staging_clear(&staging, &title).inspect_err(|_| drop_staging())?;
    let new_name = staging_entry(&title, Role::New);
    let new = staging
        .create_dir(&new_name)
        .inspect_err(|_| drop_staging())?;
    // Only this process's own staging entry is ever removed whole here.
    let drop_new = || {
        let _ = staging.remove_tree(OsStr::new(&new_name));
        drop_staging();
    };
    // What the card can hold, before a byte of the game is written.
    let fits = target_fs::probe(new.path()).and_then(|mut t| {
        if !opts.check_room {
            t.free = None;
        }
        target_fs::check_fits(&t, install_dir, &m.body().files)
    });
    if let Err(e) = fits {
        drop_new();
        return Err(e);
    }
    let mut sink = DirSink {
        root: new.try_clone()?,
        folder: None,
        current: None,
    };
    // Over the network, reuse what the device holds: a cut-off earlier attempt, and the
    // files of installed games.
    let remote = lib.remote_source().is_some();
    let mut local = None;
    let streamed = (|| {
        let source = ChunkSource::open(lib, m)?;
        if !remote {
            return stream_game(lib, m, source, decoder, &mut sink, None, progress);
        }
        let mut sources = Vec::new();
        if let Some(res) = resume_folder(&inst) {
            let manifest = format!("{title}.manifest");
            if let (Ok(Some(_)), Ok(Some(file))) = (res.sub(&title), res.open_file(&manifest)) {
                let path = res.at(&manifest);
                let len = fsio::file_len(&file, &path)?;
                if let Ok(mf) = ManifestFile::open_in(&path, file, 0, len) {
                    sources.push((format!("{RESUME_DIR}/{title}"), mf));
                }
            }
        }
        for e in inst.entries()? {
            let Some(name) = names::game_folder(&e.name, e.kind) else {
                continue;
            };
            if let Ok(Some(dir)) = inst.sub(name) {
                if is_ours(&dir) {
                    if let Some(mf) = marker_manifest(&dir) {
                        sources.push((name.to_string(), mf));
                    }
                }
            }
        }
        // The bases of the game's delta chunks too: an installed older version holds them.
        let found = LocalChunks::build(m, &source.base_hashes()?, &inst, sources)?;
        let found = local.insert(match reuse {
            Some(r) => found.with_library(r)?,
            None => found,
        });
        stream_game(lib, m, source, decoder, &mut sink, Some(found), progress)
    })();
    let mut report = match streamed {
        Ok(r) => r,
        Err(e) => {
            drop(sink);
            if remote {
                // Keep what was written for the next attempt (the larger of the two).
                let _ = keep_partial(&inst, &staging, &new_name, m);
            }
            drop_new();
            return Err(e);
        }
    };
    if let Some(l) = &local {
        report.reused_chunks = l.reused;
        report.reused_bytes = l.reused_bytes;
    }
    let mut leftover = None;
    let mut finish = || -> Result<Vec<String>> {
        let table_hex: String = m
            .body()
            .chunk_table_blake3
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let text = format!(
            "title {}\nchunk-table-blake3 {table_hex}\nsigner {}\nmanifest-bytes {}\n\n",
            title,
            String::from_utf8_lossy(&romlib_format::manifest::key_id(m.signer())),
            m.file_len()
        );
        let marker = new.at(MARKER);
        let mut f = new.create_file(MARKER, 0o644)?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(&marker, "write", e))?;
        let mut w = BufWriter::new(&mut f);
        m.write_to(&mut w)
            .and_then(|()| w.flush())
            .map_err(|e| Error::io(&marker, "write", e))?;
        drop(w);
        f.sync_all().map_err(|e| Error::io(&marker, "fsync", e))?;
        sync_dirs(&new)?;
        let old_name = staging_entry(&title, Role::Old);
        if live.is_some() {
            if staging.exchange(&new_name, &inst, &title)? {
                // One step: the new game is live and `new` holds the old copy, which
                // takes its `.old` name (a crash in between is finished by [`recover`]).
                inst.sync()?;
                staging.sync()?;
                staging.rename_noreplace(&new_name, &staging, &old_name)?;
            } else {
                // Two steps: for a moment no game is there (until [`recover`] rolls the
                // swap back or forward, a crash right here shows none).
                inst.rename_noreplace(&title, &staging, &old_name)?;
                staging.rename_noreplace(&new_name, &inst, &title)?;
            }
        } else {
            staging.rename_noreplace(&new_name, &inst, &title)?;
        }
        inst.sync()?;
        if staging.kind(&old_name)? == Kind::Missing {
            return Ok(Vec::new());
        }
        // Both folders changed: the old copy (and the user's files in it) must not be lost
        // to a power cut before they are carried.
        staging.sync()?;
        let (kept, gone) = retire_copy(&staging, &old_name, &inst, &title, Carry::IntoGame)?;
        if !gone {
            leftover = Some(staging.at(&old_name));
        }
        Ok(kept)
    };
    let finished = finish();
    report.recovered = recovered.done.clone();
    report.left_alone = recovered.lines();
    match finished {
        Ok(kept) => report.kept = kept,
        Err(e) => {
            let _ = recover_in(&inst, false);
            return Err(e);
        }
    }
    if let Some(p) = leftover {
        report.left_alone.push(format!(
            "{}: holds files the game's previous version did not own and romlib could not carry; left alone",
            p.display()
        ));
    }
    drop_staging();
    // Done: forget the cut-off attempt, remember the manifest for later reuse. Neither
    // matters to the installed game, so failing here only costs reuse later.
    if let Some(res) = resume_folder(&inst) {
        let _ = res.remove_tree(OsStr::new(&title));
        let _ = res.remove_file(&format!("{title}.manifest"));
        let _ = inst.remove_empty_dir(OsStr::new(RESUME_DIR));
    }
    Ok(report)
}

/// The manifest an installed game's completion marker holds (unverified: only used to
/// find reusable chunks, which are hashed before use, and the files the game owns).
fn marker_manifest(dir: &Folder) -> Option<ManifestFile> {
    let file = dir.open_file(MARKER).ok()??;
    let mut head = [0u8; 1024];
    let n = std::io::Read::read(&mut (&file), &mut head).ok()?;
    let text = &head[..n];
    let end = text.windows(2).position(|w| w == b"\n\n")? + 2;
    let len: u64 = std::str::from_utf8(&text[..end])
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("manifest-bytes "))?
        .parse()
        .ok()?;
    ManifestFile::open_in(&dir.at(MARKER), file, end as u64, len).ok()
}

/// After a failed network install: keeps the staged files (staging entry `new_name`) as
/// the resume folder of the game (with a copy of the manifest) unless the one already
/// there holds more.
fn keep_partial(
    inst: &Folder,
    staging: &Folder,
    new_name: &str,
    m: &VerifiedManifest,
) -> Result<()> {
    let title = &m.body().title_id;
    let res = inst.ensure_sub(RESUME_DIR)?;
    let manifest = format!("{title}.manifest");
    let same_game = match res.open_file(&manifest) {
        Ok(Some(file)) => {
            let path = res.at(&manifest);
            let len = fsio::file_len(&file, &path)?;
            ManifestFile::open_in(&path, file, 0, len).is_ok_and(|old| {
                old.unverified_body().chunk_table_blake3 == m.body().chunk_table_blake3
            })
        }
        _ => false,
    };
    if same_game && res.tree_bytes(OsStr::new(title)) >= staging.tree_bytes(OsStr::new(new_name)) {
        return Ok(());
    }
    // The resume entries of a valid title (the signed manifest's).
    res.remove_tree(OsStr::new(title))?;
    res.remove_file(&manifest)?;
    staging.rename_noreplace(new_name, &res, title)?;
    let mut f = res.create_file(&manifest, 0o644)?;
    m.write_to(&mut f)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(res.at(&manifest), "write", e))
}

/// Fsyncs `root` and every folder below it.
fn sync_dirs(root: &Folder) -> Result<()> {
    for e in root.entries()? {
        if e.kind == Kind::Dir {
            if let Some(sub) = e.name_str().and_then(|n| root.sub(n).ok().flatten()) {
                sync_dirs(&sub)?;
            }
        }
    }
    root.sync()
}

/// What an uninstall did.
#[derive(Debug, Default)]
pub struct Uninstalled {
    /// The files the game did not own, left in its folder (relative paths).
    pub kept: Vec<String>,
    /// What interrupted operations had left, finished or removed first.
    pub recovered: Vec<String>,
    /// What was left alone, one line each.
    pub left_alone: Vec<String>,
}

/// Removes an installed game; only a folder romlib completed, and in it only what the
/// game owns. Files in it that the game does not own stay, in the game's folder with a
/// [`KEPT_MARKER`].
pub fn uninstall(install_dir: &Path, title: &str) -> Result<Uninstalled> {
    check_title_id(title).map_err(|problem| Error::UnsafePath {
        path: install_dir.to_path_buf(),
        entry: title.to_string(),
        problem,
    })?;
    let inst = open_install_dir(install_dir, false)?;
    let recovered = recover_in(&inst, false)?;
    let live = match live_game(&inst, title)? {
        Some(live) if is_ours(&live) => live,
        Some(_) => {
            return Err(Error::NotOurs {
                path: inst.at(title),
            })
        }
        None => {
            return Err(Error::NotFound {
                path: inst.at(title),
                what: "installed game",
            })
        }
    };
    drop(live);
    let staging = inst.ensure_sub(STAGING_DIR)?;
    staging_clear(&staging, title).inspect_err(|_| {
        let _ = inst.remove_empty_dir(OsStr::new(STAGING_DIR));
    })?;
    let del = staging_entry(title, Role::Del);
    inst.rename_noreplace(title, &staging, &del)?;
    inst.sync()?;
    staging.sync()?;
    let (kept, gone) = retire_copy(&staging, &del, &inst, title, Carry::IntoKeptFolder)?;
    let mut left_alone = recovered.lines();
    if !gone {
        left_alone.push(format!(
            "{}: holds files romlib could not account for; left alone",
            staging.at(&del).display()
        ));
    }
    let _ = inst.remove_empty_dir(OsStr::new(STAGING_DIR));
    inst.sync()?;
    Ok(Uninstalled {
        kept,
        recovered: recovered.done,
        left_alone,
    })
}
