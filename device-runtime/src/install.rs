//! Verify, install and uninstall: the one implementation both binaries use.
//!
//! Install (DESIGN section 9): every file is written under
//! `<install-dir>/.romlib-staging/<title>.new/`, fsynced, and every chunk, file and the
//! chunk table are verified; then a completion marker is written last and the staged
//! folder is renamed to `<install-dir>/<title>`. Replacing an installed game first moves it
//! to `.romlib-staging/<title>.old`; [`recover`] (run before every operation) rolls such a
//! swap back or forward after a crash, so the visible game is always the old or the new.

use crate::decoder::ChunkDecoder;
use crate::error::{Error, Result};
use crate::index::IndexReader;
use crate::library::Library;
use crate::manifest::{ManifestFile, VerifiedManifest};
use crate::pack_reader::{check_chunk, PackReader};
use crate::trust::TrustStore;
use romlib_format::limits::MAX_CHUNK_LEN;
use romlib_format::path::check_title_id;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The staging folder inside an install directory.
pub const STAGING_DIR: &str = ".romlib-staging";
/// The completion marker written last into an installed game's folder.
pub const MARKER: &str = ".romlib-installed";

/// Figures of a verified or installed game.
#[derive(Debug, Clone, Copy, Default)]
pub struct GameReport {
    /// Files written or checked.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
    /// Chunks decoded and verified.
    pub chunks: u64,
}

/// Resolves `-g TITLE|MANIFEST` to a manifest file, opens it and verifies its signature.
pub fn open_game(lib: &Library, game: &str, trust: &TrustStore) -> Result<VerifiedManifest> {
    let as_path = Path::new(game);
    let by_path = game.ends_with(".manifest") && as_path.is_file();
    let path = if by_path {
        as_path.to_path_buf()
    } else {
        lib.manifest_path(game)
    };
    if !by_path {
        check_title_id(game).map_err(|problem| Error::UnsafePath {
            path: lib.games_dir(),
            entry: game.to_string(),
            problem,
        })?;
        if !path.is_file() {
            return Err(Error::NotFound {
                path,
                what: "game in this library",
            });
        }
    }
    let m = ManifestFile::open(&path)?.verify(trust)?;
    if !by_path && m.body().title_id != game {
        return Err(Error::manifest(
            &path,
            format!("manifest is for title {:?}", m.body().title_id),
        ));
    }
    Ok(m)
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

struct DirSink {
    root: PathBuf,
    current: Option<(PathBuf, BufWriter<File>)>,
}

impl Sink for DirSink {
    fn begin_file(&mut self, rel: &str, mode: u32) -> Result<()> {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create directory", e))?;
        }
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Owner can always write (for later replacement); other bits as in the manifest.
            opts.mode((mode & 0o777) | 0o200);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let f = opts
            .open(&path)
            .map_err(|e| Error::io(&path, "create", e))?;
        self.current = Some((path, BufWriter::with_capacity(256 * 1024, f)));
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

/// Work for the verifying writer thread, in order.
enum Job {
    Begin {
        rel: String,
        mode: u32,
    },
    /// Decoded chunks packed one after another into `data[..used]`, each not yet
    /// verified.
    Chunks {
        data: Vec<u8>,
        used: usize,
        chunks: Vec<Pending>,
    },
    End {
        path: String,
        size: u64,
        blake3: Vec<u8>,
    },
}

/// A decoded chunk awaiting its BLAKE3 check.
struct Pending {
    hash: [u8; 32],
    len: u32,
    pack_id: u32,
    offset: u64,
}

/// Batch buffers in flight: one being filled by the decoder, one being checked and
/// written.
const BUFFERS: usize = 2;
/// A batch is handed over once it holds this many bytes (or its file ends): handing over
/// every chunk alone would cost a thread wake-up per chunk.
const BATCH_BYTES: usize = 256 * 1024;
/// Capacity of a batch buffer: a batch below `BATCH_BYTES` plus one largest chunk.
const BATCH_CAPACITY: usize = BATCH_BYTES + MAX_CHUNK_LEN as usize;

/// Decodes and verifies every chunk of `m`, feeding the data to `sink`.
///
/// Two threads share the work so that hashing and writing overlap decoding: this thread
/// looks chunks up, reads and decodes them into a batch buffer; the other checks each
/// chunk's BLAKE3 before any of its bytes reach `sink`, then hashes whole files and
/// writes. Two fixed-capacity batch buffers circulate between them, so memory stays fixed.
fn stream_game(
    lib: &Library,
    m: &VerifiedManifest,
    decoder: &mut dyn ChunkDecoder,
    sink: &mut (dyn Sink + Send),
) -> Result<GameReport> {
    let index = IndexReader::open(&lib.index_path())?;
    let mut packs = PackReader::new(lib);
    let mut table = m.chunks()?;
    let mpath = m.path().to_path_buf();
    let (job_tx, job_rx) = std::sync::mpsc::sync_channel::<Job>(BUFFERS + 2);
    let (buf_tx, buf_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, Vec<Pending>)>(BUFFERS);
    for _ in 0..BUFFERS {
        buf_tx
            // Full length from the start: zeroed once here, never again per chunk.
            .send((vec![0; BATCH_CAPACITY], Vec::with_capacity(64)))
            .expect("room for the buffers");
    }
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| write_jobs(lib, &mpath, job_rx, buf_tx, sink));
        let produced = (|| -> Result<u64> {
            let mut chunks = 0;
            for f in &m.body().files {
                job_tx
                    .send(Job::Begin {
                        rel: f.path.clone(),
                        mode: f.mode,
                    })
                    .map_err(|_| stopped())?;
                let mut batch: Option<(Vec<u8>, Vec<Pending>)> = None;
                let mut used = 0;
                for _ in 0..f.chunk_count {
                    let c = table
                        .next_chunk()?
                        .ok_or_else(|| Error::manifest(&mpath, "chunk table ended early"))?;
                    let entry = index.lookup(&c.hash)?.ok_or_else(|| {
                        Error::chunk(
                            &mpath,
                            &c.hash,
                            "not in the library's index (incomplete library, or an altered chunk table)",
                        )
                    })?;
                    let (data, list) = match batch.as_mut() {
                        Some(b) => b,
                        None => batch.insert(buf_rx.recv().map_err(|_| stopped())?),
                    };
                    let end = used + c.len as usize;
                    let out = data.get_mut(used..end).ok_or_else(|| {
                        Error::manifest(&mpath, "a chunk is longer than the format allows")
                    })?;
                    packs.read_unverified(&c.hash, &entry, decoder, out)?;
                    used = end;
                    list.push(Pending {
                        hash: c.hash,
                        len: c.len,
                        pack_id: entry.pack_id,
                        offset: entry.offset,
                    });
                    chunks += 1;
                    if used >= BATCH_BYTES {
                        let (data, chunks) = batch.take().expect("just filled");
                        job_tx
                            .send(Job::Chunks { data, used, chunks })
                            .map_err(|_| stopped())?;
                        used = 0;
                    }
                }
                if let Some((data, chunks)) = batch.take() {
                    job_tx
                        .send(Job::Chunks { data, used, chunks })
                        .map_err(|_| stopped())?;
                }
                job_tx
                    .send(Job::End {
                        path: f.path.clone(),
                        size: f.size,
                        blake3: f.blake3.clone(),
                    })
                    .map_err(|_| stopped())?;
            }
            Ok(chunks)
        })();
        drop(job_tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(Error::manifest(&mpath, "writer thread panicked")));
        // The writer's error explains a stopped producer; otherwise report the producer's.
        let (files, bytes) = written?;
        let chunks = produced?;
        table.finish()?;
        Ok(GameReport {
            files,
            bytes,
            chunks,
        })
    })
}

/// A placeholder error for a producer whose writer stopped; the writer's own error is the
/// one reported.
fn stopped() -> Error {
    Error::Io {
        path: PathBuf::new(),
        op: "hand over a chunk",
        source: std::io::Error::other("the writer stopped"),
    }
}

/// The writer thread: verifies each chunk, then each file, and feeds `sink`.
fn write_jobs(
    lib: &Library,
    mpath: &Path,
    jobs: std::sync::mpsc::Receiver<Job>,
    free: std::sync::mpsc::SyncSender<(Vec<u8>, Vec<Pending>)>,
    sink: &mut (dyn Sink + Send),
) -> Result<(u64, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut size: u64 = 0;
    let (mut files, mut bytes) = (0u64, 0u64);
    for job in jobs {
        match job {
            Job::Begin { rel, mode } => {
                sink.begin_file(&rel, mode)?;
                hasher.reset();
                size = 0;
            }
            Job::Chunks {
                data: buf,
                used,
                mut chunks,
            } => {
                let data = &buf[..used];
                let mut at = 0;
                for c in &chunks {
                    let piece = &data[at..at + c.len as usize];
                    // The pack's path is only needed for the error message.
                    if blake3::hash(piece).as_bytes() != &c.hash {
                        check_chunk(&lib.pack_path(c.pack_id), &c.hash, c.offset, piece)?;
                    }
                    at += c.len as usize;
                }
                hasher.update(data);
                size += data.len() as u64;
                sink.write(data)?;
                chunks.clear();
                // The producer may already have finished; then the buffers are dropped.
                let _ = free.send((buf, chunks));
            }
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

/// Checks every chunk and file of a game; writes nothing.
pub fn verify_game(
    lib: &Library,
    m: &VerifiedManifest,
    decoder: &mut dyn ChunkDecoder,
) -> Result<GameReport> {
    stream_game(lib, m, decoder, &mut NullSink)
}

fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, "remove", e)),
    }
}

/// Fsyncs a directory so renames and creations in it are durable (a no-op where
/// directories cannot be opened).
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| Error::io(dir, "open directory", e))?;
        d.sync_all()
            .map_err(|e| Error::io(dir, "fsync directory", e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io(to, "rename", e))
}

/// Whether `dir` is a game folder romlib completed.
pub fn is_ours(dir: &Path) -> bool {
    dir.join(MARKER).is_file()
}

/// Cleans up after an interrupted install, reinstall or uninstall in `install_dir`:
/// unfinished staging is removed, an interrupted swap is rolled back (old game restored)
/// when the new one is not complete, and finished swaps drop the old copy.
pub fn recover(install_dir: &Path) -> Result<Vec<String>> {
    let staging = install_dir.join(STAGING_DIR);
    let mut done = Vec::new();
    let rd = match fs::read_dir(&staging) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(Error::io(&staging, "read directory", e)),
    };
    let mut names: Vec<String> = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(&staging, "read directory", e))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    for name in names {
        let p = staging.join(&name);
        if let Some(title) = name.strip_suffix(".old") {
            let live = install_dir.join(title);
            if live.is_dir() && is_ours(&live) {
                remove_tree(&p)?;
                done.push(format!("removed the replaced copy of {title}"));
            } else {
                if live.exists() {
                    remove_tree(&live)?;
                }
                rename(&p, &live)?;
                done.push(format!("rolled back an interrupted reinstall of {title}"));
            }
        } else {
            remove_tree(&p)?;
            done.push(format!("removed stale staging {name}"));
        }
    }
    sync_dir(install_dir)?;
    Ok(done)
}

/// Installs a verified game into `install_dir/<title>`, atomically.
pub fn install_game(
    lib: &Library,
    m: &VerifiedManifest,
    install_dir: &Path,
    decoder: &mut dyn ChunkDecoder,
) -> Result<GameReport> {
    let title = m.body().title_id.clone();
    fs::create_dir_all(install_dir).map_err(|e| Error::io(install_dir, "create directory", e))?;
    recover(install_dir)?;
    let live = install_dir.join(&title);
    if live.exists() && !is_ours(&live) {
        return Err(Error::NotOurs { path: live });
    }
    let staging = install_dir.join(STAGING_DIR);
    fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, "create directory", e))?;
    let new = staging.join(format!("{title}.new"));
    if let Err(e) = fs::create_dir(&new) {
        let _ = fs::remove_dir(&staging);
        return Err(Error::io(&new, "create directory", e));
    }
    let mut sink = DirSink {
        root: new.clone(),
        current: None,
    };
    let report = match stream_game(lib, m, decoder, &mut sink) {
        Ok(r) => r,
        Err(e) => {
            drop(sink);
            let _ = remove_tree(&new);
            let _ = fs::remove_dir(&staging);
            return Err(e);
        }
    };
    let finish = || -> Result<()> {
        let marker = new.join(MARKER);
        let table_hex: String = m
            .body()
            .chunk_table_blake3
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let text = format!(
            "title {}\nchunk-table-blake3 {table_hex}\nsigner {}\n",
            title,
            String::from_utf8_lossy(&romlib_format::manifest::key_id(m.signer()))
        );
        let mut f = File::create(&marker).map_err(|e| Error::io(&marker, "create", e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(&marker, "write", e))?;
        f.sync_all().map_err(|e| Error::io(&marker, "fsync", e))?;
        sync_dirs(&new)?;
        let old = staging.join(format!("{title}.old"));
        if live.exists() {
            rename(&live, &old)?;
        }
        rename(&new, &live)?;
        sync_dir(install_dir)?;
        remove_tree(&old)?;
        Ok(())
    };
    if let Err(e) = finish() {
        let _ = recover(install_dir);
        return Err(e);
    }
    let _ = fs::remove_dir(&staging);
    Ok(report)
}

fn sync_dirs(root: &Path) -> Result<()> {
    for e in fs::read_dir(root).map_err(|e| Error::io(root, "read directory", e))? {
        let e = e.map_err(|e| Error::io(root, "read directory", e))?;
        if e.file_type()
            .map_err(|err| Error::io(e.path(), "stat", err))?
            .is_dir()
        {
            sync_dirs(&e.path())?;
        }
    }
    sync_dir(root)
}

/// Removes an installed game; only a folder romlib completed, never anything else.
pub fn uninstall(install_dir: &Path, title: &str) -> Result<()> {
    check_title_id(title).map_err(|problem| Error::UnsafePath {
        path: install_dir.to_path_buf(),
        entry: title.to_string(),
        problem,
    })?;
    recover(install_dir)?;
    let live = install_dir.join(title);
    if !live.is_dir() {
        return Err(Error::NotFound {
            path: live,
            what: "installed game",
        });
    }
    if !is_ours(&live) {
        return Err(Error::NotOurs { path: live });
    }
    let staging = install_dir.join(STAGING_DIR);
    fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, "create directory", e))?;
    let doomed = staging.join(format!("{title}.del"));
    rename(&live, &doomed)?;
    sync_dir(install_dir)?;
    remove_tree(&doomed)?;
    let _ = fs::remove_dir(&staging);
    Ok(())
}
