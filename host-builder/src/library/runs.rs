//! The chunk index as immutable sorted runs (SPEC section 5.3): what used to be the
//! `chunks`, `sketches` and `deltas` tables of `index.db`.
//!
//! A run is a file written once, in one pass, and never changed: its chunk, sketch and
//! delta rows, each section sorted by key, then one 8-byte fence per block of rows, then
//! the row counts and a BLAKE3 of everything before. What a build adds is kept in memory
//! ([`ChunkIndex`]'s memtable) until its next commit, which writes it as a new run and
//! names the runs in `index.db`'s `meta` table in the same durable redb commit (so the
//! runs and the packs the index lists never disagree). Runs are merged geometrically: the
//! new rows are written merged with the newest runs while the one before is less than
//! [`MERGE_FACTOR`] times what is merged, so a library of N rows has at most about
//! log3(N) runs and each row is rewritten about as often, by sequential writes; the merges
//! of large runs run on a thread of their own during a build
//! ([`ChunkIndex::start_background_merge`]), so no commit waits for one. A lookup
//! reads one block per run, found through the fences held in memory (12 bytes per 64
//! chunks: the block's first key and its CRC-32, checked on every read); the rows of the
//! small runs are held in memory too ([`RESIDENT_RUN_LEN`]).
//!
//! A run that is not named in `meta` (written by a run that was killed before its
//! commit, or merged away and not yet deleted) is deleted by the next writer. Only names
//! of the canonical form are ever deleted, and a link is never followed.

use super::filter::{self, RunFilter, FILTERED};
use crate::error::{Error, Result};
use romlib_device::fsio::read_exact_at as read_at;
use romlib_format::index::{
    ChunkEntry, RunLayout, RunSection, ENTRY_LEN, RUN_CHUNKS, RUN_FENCE_LEN, RUN_HEADER_LEN,
    RUN_SECTIONS, RUN_TRAILER_LEN, SKETCH_PREFIX_LEN,
};
use romlib_format::layout::{FILTER_EXT, RUN_EXT};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A run joins a merge of the runs after it while it holds fewer than this many times
/// their rows.
pub const MERGE_FACTOR: u64 = 3;

/// A run whose rows take at most this many bytes is held in memory while open (the
/// newest, small runs, which every lookup visits too): with the geometric merge, the runs
/// held take at most about 1.5 times this. Unit tests use 64 KiB, and
/// `ROMLIB_RUN_IN_MEMORY` sets it for the tests of the binary, so that small libraries
/// have runs read from disk and merged in the background too.
const RESIDENT_RUN_LEN: u64 = if cfg!(test) { 64 << 10 } else { 16 << 20 };

/// [`RESIDENT_RUN_LEN`], or the bytes `ROMLIB_RUN_IN_MEMORY` says.
fn resident_run_len() -> u64 {
    static LEN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LEN.get_or_init(|| {
        std::env::var("ROMLIB_RUN_IN_MEMORY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(RESIDENT_RUN_LEN)
    })
}

/// The largest block of any section (a lookup reads one into a buffer on the stack).
const MAX_BLOCK_LEN: usize = 4096;
const _: () = {
    let mut i = 0;
    while i < RUN_SECTIONS.len() {
        assert!(RUN_SECTIONS[i].block_rows * RUN_SECTIONS[i].row_len <= MAX_BLOCK_LEN);
        i += 1;
    }
};

/// How many bytes a run writer hashes and writes at a time.
const RUN_WRITE_BUF: usize = 1 << 16;

/// Runs too large to be held in memory a build lets pile up while their merges run in the
/// background ([`ChunkIndex::start_background_merge`]) before it merges them itself.
const MAX_LARGE_RUNS: usize = 12;

/// A build seals its pack (and so writes a run) once this many new chunks wait in memory:
/// about 20 MiB of chunk rows and 25 MiB of sketches at most.
pub const MAX_PENDING_CHUNKS: usize = 1 << 18;

/// Section numbers.
const CHUNKS: usize = 0;
const SKETCHES: usize = 1;
const DELTAS: usize = 2;

/// The file name of run `id`.
pub fn run_file_name(id: u64) -> String {
    format!("{id:016x}.{RUN_EXT}")
}

/// The file name of run `id`'s filter.
pub fn filter_file_name(id: u64) -> String {
    format!("{id:016x}.{FILTER_EXT}")
}

/// The id of a run file's canonical name.
pub fn parse_run_file_name(name: &str) -> Option<u64> {
    parse_id(name, RUN_EXT)
}

/// The id in `name` when it is `<16 lower-case hex digits>.<ext>`.
fn parse_id(name: &str, ext: &str) -> Option<u64> {
    let hex = name.strip_suffix(ext)?.strip_suffix('.')?;
    if hex.len() != 16 || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Encodes a run list (`meta` value).
pub fn encode_list(ids: &[u64]) -> Vec<u8> {
    ids.iter().flat_map(|i| i.to_le_bytes()).collect()
}

/// Decodes a run list.
pub fn decode_list(b: &[u8]) -> Option<Vec<u64>> {
    if !b.len().is_multiple_of(8) {
        return None;
    }
    Some(
        b.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    )
}

/// The first 8 key bytes of a row, as a number that sorts as the bytes do.
fn fence_of(row: &[u8]) -> u64 {
    u64::from_be_bytes(row[..8].try_into().expect("keys are at least 8 bytes"))
}

/// One open run.
#[derive(Debug)]
pub struct Run {
    id: u64,
    path: PathBuf,
    file: File,
    layout: RunLayout,
    checksum: [u8; 32],
    fences: [Vec<u64>; 3],
    /// Each block's CRC-32, checked whenever the block is read.
    crcs: [Vec<u32>; 3],
    /// The rows of a small run (at most [`RESIDENT_RUN_LEN`] bytes), read once: a lookup
    /// there costs no system call. Blocks are checked on every read all the same.
    resident: Option<Vec<u8>>,
    /// The filter of its chunk and sketch keys, when its writer holds one (module
    /// [`filter`]).
    filter: Option<RunFilter>,
}

impl Run {
    /// Opens run file `path` (never through a link): its header, trailer and length are
    /// checked against each other and its fences read (not its rows: see
    /// [`Run::check`]).
    pub fn open(path: &Path, id: u64) -> Result<Self> {
        let damaged = |what: String| {
            Error::library(
                path,
                format!("index run damaged ({what}); {}", super::index::REBUILD),
            )
        };
        let file = open_nofollow(path)?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(path, "read", e))?
            .len();
        if len < (RUN_HEADER_LEN + RUN_TRAILER_LEN) as u64 {
            return Err(damaged(format!("{len} bytes")));
        }
        let mut head = [0u8; RUN_HEADER_LEN];
        read_at(&file, &mut head, 0).map_err(|e| Error::io(path, "read", e))?;
        RunLayout::check_header(&head).map_err(|e| damaged(e.to_string()))?;
        let mut tail = [0u8; RUN_TRAILER_LEN];
        read_at(&file, &mut tail, len - RUN_TRAILER_LEN as u64)
            .map_err(|e| Error::io(path, "read", e))?;
        let (counts, checksum) =
            RunLayout::decode_trailer(&tail).map_err(|e| damaged(e.to_string()))?;
        let layout = RunLayout::new(len, counts).map_err(|e| damaged(e.to_string()))?;
        let mut fences: [Vec<u64>; 3] = Default::default();
        let mut crcs: [Vec<u32>; 3] = Default::default();
        for s in 0..3 {
            let mut b = vec![0u8; layout.blocks[s] as usize * RUN_FENCE_LEN];
            read_at(&file, &mut b, layout.fences[s]).map_err(|e| Error::io(path, "read", e))?;
            for c in b.chunks_exact(RUN_FENCE_LEN) {
                fences[s].push(u64::from_be_bytes(c[..8].try_into().expect("8 bytes")));
                crcs[s].push(u32::from_le_bytes(c[8..].try_into().expect("4 bytes")));
            }
            if fences[s].windows(2).any(|w| w[0] > w[1]) {
                return Err(damaged("fences out of order".into()));
            }
        }
        let rows_len = layout.fences[0] - layout.starts[0];
        let resident = match rows_len <= resident_run_len() {
            true => {
                let mut b = vec![0u8; rows_len as usize];
                read_at(&file, &mut b, layout.starts[0]).map_err(|e| Error::io(path, "read", e))?;
                Some(b)
            }
            false => None,
        };
        Ok(Self {
            id,
            path: path.to_path_buf(),
            file,
            layout,
            checksum,
            fences,
            crcs,
            resident,
            filter: None,
        })
    }

    /// The run's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The run's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of its rows, all sections.
    fn rows_len(&self) -> u64 {
        self.layout.fences[0] - self.layout.starts[0]
    }

    /// Rows in all sections.
    pub fn rows(&self) -> u64 {
        self.layout.counts.iter().sum()
    }

    /// Chunk rows.
    pub fn chunk_count(&self) -> u64 {
        self.layout.counts[CHUNKS]
    }

    /// Reads the whole file and checks its checksum and that every section's keys rise
    /// and match their fences: what `romlib verify` does, and a build does not.
    pub fn check(&self) -> std::result::Result<(), String> {
        let len = self.file.metadata().map_err(|e| e.to_string())?.len();
        let body = len - RUN_TRAILER_LEN as u64 + 24;
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut at = 0;
        while at < body {
            let n = (body - at).min(buf.len() as u64) as usize;
            read_at(&self.file, &mut buf[..n], at).map_err(|e| format!("cannot read: {e}"))?;
            h.update(&buf[..n]);
            at += n as u64;
        }
        if h.finalize().as_bytes() != &self.checksum {
            return Err("checksum does not match: the file is damaged".into());
        }
        for (s, sec) in RUN_SECTIONS.iter().enumerate() {
            let mut prev: Option<Vec<u8>> = None;
            let mut rows = self.cursor(s);
            let mut i = 0u64;
            while let Some(r) = rows.next_row().map_err(|e| e.to_string())? {
                if i.is_multiple_of(sec.block_rows as u64)
                    && self.fences[s][(i / sec.block_rows as u64) as usize] != fence_of(r)
                {
                    return Err("a fence does not match its block".into());
                }
                if prev.as_deref().is_some_and(|p| p >= &r[..sec.key_len]) {
                    return Err("rows out of order".into());
                }
                prev = Some(r[..sec.key_len].to_vec());
                i += 1;
            }
        }
        Ok(())
    }

    /// Block `b` of section `s`, its rows checked to rise and to start at its fence.
    /// (Read into `scratch` unless the run is held in memory.)
    fn block<'a>(
        &'a self,
        s: usize,
        b: usize,
        scratch: &'a mut [u8; MAX_BLOCK_LEN],
    ) -> Result<&'a [u8]> {
        let sec = RUN_SECTIONS[s];
        let first = b as u64 * sec.block_rows as u64;
        let n = (self.layout.counts[s] - first).min(sec.block_rows as u64) as usize;
        let at = self.layout.starts[s] + first * sec.row_len as u64;
        let len = n * sec.row_len;
        let buf: &[u8] = match &self.resident {
            Some(rows) => {
                let from = (at - self.layout.starts[0]) as usize;
                &rows[from..from + len]
            }
            None => {
                let buf = &mut scratch[..len];
                read_at(&self.file, buf, at).map_err(|e| Error::io(&self.path, "read", e))?;
                buf
            }
        };
        if buf.is_empty()
            || crc32fast::hash(buf) != self.crcs[s][b]
            || fence_of(buf) != self.fences[s][b]
        {
            return Err(Error::library(
                &self.path,
                format!(
                    "index run damaged (block {b} of section {s} fails its check); {}",
                    super::index::REBUILD
                ),
            ));
        }
        Ok(buf)
    }

    /// The row of section `s` whose key is `key`.
    fn find(&self, s: usize, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let sec = RUN_SECTIONS[s];
        let f = fence_of(key);
        if !self.may_hold(s, f) {
            return Ok(None);
        }
        let fences = &self.fences[s];
        let mut b = fences.partition_point(|&x| x <= f);
        let mut scratch = [0u8; MAX_BLOCK_LEN];
        while b > 0 {
            b -= 1;
            let block = self.block(s, b, &mut scratch)?;
            let row = |i: usize| &block[i * sec.row_len..(i + 1) * sec.row_len];
            let (mut lo, mut hi) = (0, block.len() / sec.row_len);
            while lo < hi {
                let mid = (lo + hi) / 2;
                match row(mid)[..sec.key_len].cmp(key) {
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                    std::cmp::Ordering::Equal => return Ok(Some(row(mid).to_vec())),
                }
            }
            // Rows sharing the fence's 8 bytes may continue from the block before.
            if fences[b] != f {
                break;
            }
        }
        Ok(None)
    }

    /// The first chunk row whose hash starts with `prefix`.
    fn chunk_by_prefix(&self, prefix: &[u8; SKETCH_PREFIX_LEN]) -> Result<Option<Vec<u8>>> {
        let sec = RUN_CHUNKS;
        let f = u64::from_be_bytes(*prefix);
        if !self.may_hold(CHUNKS, f) {
            return Ok(None);
        }
        let fences = &self.fences[CHUNKS];
        let mut b = fences.partition_point(|&x| x < f).saturating_sub(1);
        let mut scratch = [0u8; MAX_BLOCK_LEN];
        while b < fences.len() && fences[b] <= f {
            let block = self.block(CHUNKS, b, &mut scratch)?;
            if let Some(r) = block
                .chunks_exact(sec.row_len)
                .find(|r| r[..SKETCH_PREFIX_LEN] == prefix[..])
            {
                return Ok(Some(r.to_vec()));
            }
            b += 1;
        }
        Ok(None)
    }

    /// False when the run's filter says no key of section `s` starts with the 8 bytes
    /// `prefix`.
    fn may_hold(&self, s: usize, prefix: u64) -> bool {
        match &self.filter {
            Some(f) if s < FILTERED => f[s].may_contain(prefix),
            _ => true,
        }
    }

    /// The path of the run's filter.
    fn filter_path(&self) -> PathBuf {
        self.path.with_file_name(filter_file_name(self.id))
    }

    /// Makes the run's filter from its keys, read in one pass (from memory for a run held
    /// there), and writes it beside the run unless the run is held in memory.
    fn make_filter(&self) -> Result<RunFilter> {
        let mut f: RunFilter =
            std::array::from_fn(|s| filter::SectionFilter::with_keys(self.layout.counts[s]));
        for (s, sf) in f.iter_mut().enumerate() {
            match &self.resident {
                Some(rows) => {
                    let from = (self.layout.starts[s] - self.layout.starts[0]) as usize;
                    let len = self.layout.counts[s] as usize * RUN_SECTIONS[s].row_len;
                    for row in rows[from..from + len].chunks_exact(RUN_SECTIONS[s].row_len) {
                        sf.insert(fence_of(row));
                    }
                }
                None => {
                    let mut c = self.cursor(s);
                    while let Some(row) = c.next_row()? {
                        sf.insert(fence_of(row));
                    }
                }
            }
        }
        if self.resident.is_none() {
            write_filter(&self.filter_path(), &self.checksum, &f)?;
        }
        Ok(f)
    }

    /// A sequential reader of section `s`.
    fn cursor(&self, s: usize) -> Cursor<'_> {
        Cursor {
            run: Some(self),
            sec: RUN_SECTIONS[s],
            at: self.layout.starts[s],
            left: self.layout.counts[s],
            buf: Vec::new(),
            pos: 0,
        }
    }
}

/// Reads a section's rows in order: from a run, 64 KiB at a time, or from rows in memory.
struct Cursor<'a> {
    run: Option<&'a Run>,
    sec: RunSection,
    at: u64,
    left: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over `rows`, a whole sorted section held in memory.
    fn mem(sec: RunSection, rows: Vec<u8>) -> Self {
        Self {
            run: None,
            sec,
            at: 0,
            left: 0,
            buf: rows,
            pos: 0,
        }
    }

    /// Makes the next row available; false at the end.
    fn fill(&mut self) -> Result<bool> {
        if self.pos < self.buf.len() {
            return Ok(true);
        }
        let Some(run) = self.run else {
            return Ok(false);
        };
        if self.left == 0 {
            return Ok(false);
        }
        let n = self.left.min((1 << 16) / self.sec.row_len as u64);
        self.buf.resize(n as usize * self.sec.row_len, 0);
        read_at(&run.file, &mut self.buf, self.at).map_err(|e| Error::io(&run.path, "read", e))?;
        self.at += self.buf.len() as u64;
        self.left -= n;
        self.pos = 0;
        Ok(true)
    }

    /// The row [`Cursor::fill`] made available.
    fn head(&self) -> &[u8] {
        &self.buf[self.pos..self.pos + self.sec.row_len]
    }

    fn advance(&mut self) {
        self.pos += self.sec.row_len;
    }

    fn next_row(&mut self) -> Result<Option<&[u8]>> {
        if !self.fill()? {
            return Ok(None);
        }
        let at = self.pos;
        self.advance();
        Ok(Some(&self.buf[at..at + self.sec.row_len]))
    }
}

/// Rows of one section from several sorted sources, merged in key order; of rows with
/// the same key, the newest source's (chunks, deltas: a later run may move a chunk) or
/// the oldest's (sketches: the first chunk with a super-feature keeps it) is kept.
pub struct Merged<'a> {
    sources: Vec<Cursor<'a>>,
    key_len: usize,
    newest_wins: bool,
    row: Vec<u8>,
}

impl<'a> Merged<'a> {
    fn new(s: usize, sources: Vec<Cursor<'a>>) -> Self {
        Self {
            sources,
            key_len: RUN_SECTIONS[s].key_len,
            newest_wins: s != SKETCHES,
            row: Vec::with_capacity(RUN_SECTIONS[s].row_len),
        }
    }

    /// The next row.
    pub fn next_row(&mut self) -> Result<Option<&[u8]>> {
        let k = self.key_len;
        let mut live = [false; 64];
        for (i, c) in self.sources.iter_mut().enumerate() {
            live[i] = c.fill()?;
        }
        let mut best: Option<usize> = None;
        for (i, c) in self.sources.iter().enumerate() {
            if !live[i] {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => match c.head()[..k].cmp(&self.sources[b].head()[..k]) {
                    std::cmp::Ordering::Less => Some(i),
                    std::cmp::Ordering::Equal if self.newest_wins => Some(i),
                    _ => Some(b),
                },
            };
        }
        let Some(b) = best else { return Ok(None) };
        self.row.clear();
        self.row.extend_from_slice(self.sources[b].head());
        // Every other source's row with this key is superseded.
        for (i, c) in self.sources.iter_mut().enumerate() {
            if live[i] && (i == b || c.head()[..k] == self.row[..k]) {
                c.advance();
            }
        }
        Ok(Some(&self.row))
    }
}

/// What a build added and has not committed yet.
#[derive(Debug, Default)]
struct Mem {
    chunks: BTreeMap<[u8; 32], ChunkEntry>,
    sketches: BTreeMap<u64, [u8; SKETCH_PREFIX_LEN]>,
    deltas: BTreeMap<[u8; 32], [u8; 32]>,
}

impl Mem {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.sketches.is_empty() && self.deltas.is_empty()
    }

    /// Rows of section `s`.
    fn count(&self, s: usize) -> u64 {
        (match s {
            CHUNKS => self.chunks.len(),
            SKETCHES => self.sketches.len(),
            _ => self.deltas.len(),
        }) as u64
    }

    /// Rows of every section.
    fn row_count(&self) -> u64 {
        (self.chunks.len() + self.sketches.len() + self.deltas.len()) as u64
    }

    /// Section `s`'s rows, sorted, one after the other.
    fn rows(&self, s: usize) -> Vec<u8> {
        let mut out = Vec::new();
        match s {
            CHUNKS => {
                out.reserve(self.chunks.len() * RUN_CHUNKS.row_len);
                for (h, e) in &self.chunks {
                    out.extend_from_slice(h);
                    out.extend_from_slice(&e.encode());
                }
            }
            SKETCHES => {
                for (sf, p) in &self.sketches {
                    out.extend_from_slice(&sf.to_be_bytes());
                    out.extend_from_slice(p);
                }
            }
            _ => {
                for (h, b) in &self.deltas {
                    out.extend_from_slice(h);
                    out.extend_from_slice(b);
                }
            }
        }
        out
    }
}

fn chunk_row(hash: &[u8; 32], e: &ChunkEntry) -> Vec<u8> {
    [&hash[..], &e.encode()[..]].concat()
}

fn decode_chunk(row: &[u8], path: &Path) -> Result<([u8; 32], ChunkEntry)> {
    let hash: [u8; 32] = row[..32].try_into().expect("32 bytes");
    let e = ChunkEntry::decode(&row[32..32 + ENTRY_LEN])
        .map_err(|e| Error::library(path, format!("index run damaged ({e})")))?;
    Ok((hash, e))
}

/// The chunk index: the runs `index.db` names, oldest first, and what this run added.
#[derive(Debug)]
pub struct ChunkIndex {
    dir: PathBuf,
    runs: Vec<Run>,
    mem: Mem,
    next_id: u64,
    /// Runs merged away since the last commit, and their filters (deleted once it is
    /// durable).
    merged_away: Vec<PathBuf>,
    /// Whether lookups go through filters (a writer's index; module [`filter`]).
    filters: bool,
    /// The merge running on a thread of its own, if any.
    background: Option<Background>,
}

/// A merge of large runs on a thread of its own ([`ChunkIndex::start_background_merge`]).
#[derive(Debug)]
struct Background {
    /// The runs it merges, consecutive in the list, oldest first.
    ids: Vec<u64>,
    /// The run it writes.
    path: PathBuf,
    cancel: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<Option<Run>>>,
}

impl Drop for ChunkIndex {
    /// A background merge not taken into the list is stopped and its files deleted.
    fn drop(&mut self) {
        self.cancel_background();
    }
}

impl ChunkIndex {
    /// Opens runs `ids` of folder `dir` (oldest first). With `tidy` (a writer holding the
    /// exclusive lock), the folder is created when missing, every run file and filter it
    /// holds that the list does not name is deleted, and lookups go through filters (read,
    /// or made and written where missing or unusable). New runs get ids above every run
    /// file there.
    pub fn open(dir: &Path, ids: &[u64], tidy: bool) -> Result<Self> {
        let mut next_id = ids.iter().max().map_or(1, |m| m.saturating_add(1));
        let exists = match dir.symlink_metadata() {
            Ok(m) if m.is_dir() => true,
            Ok(_) => {
                return Err(Error::library(
                    dir,
                    "is not a folder (the index's runs live there); remove it",
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && ids.is_empty() => false,
            Err(e) => return Err(Error::io(dir, "open folder", e)),
        };
        if !exists && tidy {
            crate::fsio::create_dir(dir)?;
        }
        if exists {
            let mut stale = Vec::new();
            for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, "read folder", e))? {
                let e = e.map_err(|e| Error::io(dir, "read folder", e))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(id) = parse_run_file_name(&name) {
                    next_id = next_id.max(id.saturating_add(1));
                    if !ids.contains(&id) {
                        stale.push(e.path());
                    }
                } else if parse_id(&name, FILTER_EXT).is_some_and(|id| !ids.contains(&id)) {
                    stale.push(e.path());
                }
            }
            if tidy {
                for p in stale {
                    std::fs::remove_file(&p).map_err(|e| Error::io(&p, "remove", e))?;
                }
            }
        }
        let mut runs = Vec::with_capacity(ids.len());
        for &id in ids {
            runs.push(Run::open(&dir.join(run_file_name(id)), id)?);
        }
        let mut ix = Self {
            dir: dir.to_path_buf(),
            runs,
            mem: Mem::default(),
            next_id,
            merged_away: Vec::new(),
            filters: tidy,
            background: None,
        };
        ix.attach_filters()?;
        Ok(ix)
    }

    /// Gives the runs their filters, newest first, while they fit in
    /// [`filter::FILTER_BUDGET`]: a run's own is kept, read from its file, or made from
    /// its rows. Nothing without [`ChunkIndex::filters`].
    fn attach_filters(&mut self) -> Result<()> {
        if !self.filters {
            return Ok(());
        }
        let mut used = 0u64;
        for r in self.runs.iter_mut().rev() {
            used += filter::bytes_for(&r.layout.counts);
            if used > filter::FILTER_BUDGET {
                r.filter = None;
                continue;
            }
            if r.filter.is_some() {
                continue;
            }
            r.filter = match r.resident {
                Some(_) => None,
                None => read_filter(&r.filter_path(), &r.checksum, &r.layout.counts)?,
            };
            if r.filter.is_none() {
                r.filter = Some(r.make_filter()?);
            }
        }
        Ok(())
    }

    /// The runs, oldest first.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// The ids of the runs, oldest first.
    pub fn ids(&self) -> Vec<u64> {
        self.runs.iter().map(Run::id).collect()
    }

    /// Chunks added and not yet written.
    pub fn pending_chunks(&self) -> usize {
        self.mem.chunks.len()
    }

    /// Forgets what this run added and has not written.
    pub fn discard(&mut self) {
        self.mem = Mem::default();
    }

    /// Where chunk `hash` is stored.
    pub fn get(&self, hash: &[u8; 32]) -> Result<Option<ChunkEntry>> {
        if let Some(e) = self.mem.chunks.get(hash) {
            return Ok(Some(*e));
        }
        for r in self.runs.iter().rev() {
            if let Some(row) = r.find(CHUNKS, hash)? {
                return Ok(Some(decode_chunk(&row, &r.path)?.1));
            }
        }
        Ok(None)
    }

    /// The base of delta chunk `hash`.
    pub fn delta_base(&self, hash: &[u8; 32]) -> Result<Option<[u8; 32]>> {
        if let Some(b) = self.mem.deltas.get(hash) {
            return Ok(Some(*b));
        }
        for r in self.runs.iter().rev() {
            if let Some(row) = r.find(DELTAS, hash)? {
                return Ok(Some(row[32..64].try_into().expect("32 bytes")));
            }
        }
        Ok(None)
    }

    /// The hash prefix super-feature `sf` names: the first chunk stored with it, so the
    /// oldest run is asked first and what this run added last.
    pub fn sketch(&self, sf: u64) -> Result<Option<[u8; SKETCH_PREFIX_LEN]>> {
        for r in &self.runs {
            if let Some(row) = r.find(SKETCHES, &sf.to_be_bytes())? {
                return Ok(Some(row[8..].try_into().expect("prefix")));
            }
        }
        Ok(self.mem.sketches.get(&sf).copied())
    }

    /// The chunk with the lowest hash that starts with `prefix`.
    pub fn by_prefix(
        &self,
        prefix: &[u8; SKETCH_PREFIX_LEN],
    ) -> Result<Option<([u8; 32], ChunkEntry)>> {
        let mut low = [0u8; 32];
        low[..SKETCH_PREFIX_LEN].copy_from_slice(prefix);
        let mut best = self
            .mem
            .chunks
            .range(low..)
            .next()
            .filter(|(h, _)| h[..SKETCH_PREFIX_LEN] == prefix[..])
            .map(|(h, e)| (*h, *e));
        for r in &self.runs {
            if let Some(row) = r.chunk_by_prefix(prefix)? {
                let (h, e) = decode_chunk(&row, &r.path)?;
                if best.is_none_or(|(b, _)| h < b) {
                    best = Some((h, e));
                }
            }
        }
        Ok(best)
    }

    /// Records where chunk `hash` is stored.
    pub fn insert_chunk(&mut self, hash: [u8; 32], e: ChunkEntry) {
        self.mem.chunks.insert(hash, e);
    }

    /// Records the base of delta chunk `hash`.
    pub fn insert_delta(&mut self, hash: [u8; 32], base: [u8; 32]) {
        self.mem.deltas.insert(hash, base);
    }

    /// Records super-feature `sf` of whole chunk `hash`, unless a chunk this run added has
    /// it already. An older run may have it too: lookups ask the oldest run first, and a
    /// merge keeps the older row, so the first chunk stored with a super-feature keeps it
    /// without a lookup here.
    pub fn insert_sketch(&mut self, sf: u64, hash: &[u8; 32]) -> Result<()> {
        self.mem
            .sketches
            .entry(sf)
            .or_insert_with(|| super::index::sketch_value(hash));
        Ok(())
    }

    /// Every chunk, in hash order, merged across the runs and what this run added.
    pub fn chunks(&self) -> Result<Merged<'_>> {
        self.merged(CHUNKS, &self.runs, true)
    }

    /// Every chunk row of every run, decoded.
    pub fn decode_chunk(&self, row: &[u8]) -> Result<([u8; 32], ChunkEntry)> {
        decode_chunk(row, &self.dir)
    }

    fn merged<'a>(&'a self, s: usize, runs: &'a [Run], mem: bool) -> Result<Merged<'a>> {
        merged_of(&self.dir, s, runs, mem.then_some(&self.mem))
    }

    /// Starts merging the newest large runs (those not held in memory) that the geometric
    /// rule joins, on a thread of its own, while the build goes on: a commit then never
    /// has to rewrite them itself ([`ChunkIndex::write`] joins only small runs while large
    /// ones are few). The merged run replaces them at the first commit after it is done; a
    /// build that ends before that throws it away (the next one starts again), so it is
    /// not started for a build of `input` bytes that is likely to end first (less than
    /// half the rows' bytes: a build reads about half as fast as a merge writes). For a
    /// writer's index only, and one merge at a time.
    pub fn start_background_merge(&mut self, input: u64) {
        if !self.filters || self.background.is_some() {
            return;
        }
        let Some(last) = self.runs.iter().rposition(|r| r.resident.is_none()) else {
            return;
        };
        let mut from = last;
        let mut joined = self.runs[last].rows();
        while from > 0
            && self.runs[from - 1].resident.is_none()
            && self.runs[from - 1].rows() < MERGE_FACTOR * joined
        {
            from -= 1;
            joined += self.runs[from].rows();
        }
        let bytes: u64 = self.runs[from..=last].iter().map(Run::rows_len).sum();
        if from == last || input < bytes / 2 {
            return;
        }
        let ids: Vec<u64> = self.runs[from..=last].iter().map(Run::id).collect();
        let keys: [u64; FILTERED] = std::array::from_fn(|s| {
            self.runs[from..=last]
                .iter()
                .map(|r| r.layout.counts[s])
                .sum::<u64>()
        });
        let id = self.take_id();
        let path = self.dir.join(run_file_name(id));
        let cancel = Arc::new(AtomicBool::new(false));
        let (dir, to, stop, sources) =
            (self.dir.clone(), path.clone(), cancel.clone(), ids.clone());
        let thread = std::thread::Builder::new()
            .name("romlib-merge".into())
            .spawn(move || -> Result<Option<Run>> {
                // Its own handles on the runs: they are never changed, and none is deleted
                // before this thread has been joined.
                let runs = sources
                    .iter()
                    .map(|&i| Run::open(&dir.join(run_file_name(i)), i))
                    .collect::<Result<Vec<_>>>()?;
                let out = write_merged(&dir, &to, id, &runs, None, Some(keys), Some(&stop));
                if !matches!(out, Ok(Some(_))) {
                    remove_run_files(&to);
                }
                out
            });
        if let Ok(thread) = thread {
            self.background = Some(Background {
                ids,
                path,
                cancel,
                thread,
            });
        }
    }

    /// Takes the background merge's run into the list in place of the runs it merged, if
    /// it has finished (or, with `wait`, once it has).
    fn adopt_background(&mut self, wait: bool) -> Result<()> {
        if self
            .background
            .as_ref()
            .is_none_or(|b| !wait && !b.thread.is_finished())
        {
            return Ok(());
        }
        let bg = self.background.take().expect("just checked");
        let run = bg.thread.join().unwrap_or_else(|_| {
            Err(Error::library(
                &bg.path,
                "the background merge of the index failed",
            ))
        })?;
        let Some(run) = run else { return Ok(()) };
        let from = self.runs.iter().position(|r| r.id == bg.ids[0]);
        let Some(from) = from.filter(|&f| {
            self.runs[f..]
                .iter()
                .map(Run::id)
                .take(bg.ids.len())
                .eq(bg.ids.iter().copied())
        }) else {
            // Its runs were merged some other way meanwhile.
            drop(run);
            remove_run_files(&bg.path);
            return Ok(());
        };
        for r in self.runs.splice(from..from + bg.ids.len(), [run]) {
            self.merged_away.push(r.filter_path());
            self.merged_away.push(r.path);
        }
        crate::fsio::sync_dir(&self.dir)?;
        self.attach_filters()
    }

    /// Stops a background merge, if one runs, and deletes what it wrote.
    fn cancel_background(&mut self) {
        if let Some(bg) = self.background.take() {
            bg.cancel.store(true, Ordering::Relaxed);
            if let Ok(Ok(Some(run))) = bg.thread.join() {
                drop(run);
                remove_run_files(&bg.path);
            }
        }
    }

    /// Writes what this run added as a new run, merged in the same pass with the newest
    /// runs that the geometric rule joins to it: going back from the newest, a run joins
    /// while it is less than [`MERGE_FACTOR`] times what joins so far. Deciding that first
    /// writes every row once per call: merging pair by pair would write the new rows, then
    /// them and the run before, then all that and the one before again. Returns the ids of
    /// the runs that the caller's commit must name, oldest first; the runs merged away are
    /// deleted by [`ChunkIndex::drop_merged`] once that commit is durable. Nothing changes
    /// in the list until then, so a failure leaves only unnamed files, which the next
    /// writer deletes.
    pub fn write(&mut self) -> Result<Option<Vec<u64>>> {
        if self.mem.is_empty() {
            return Ok(None);
        }
        // A background merge that has finished replaces its runs now; while one runs, or
        // could, this one joins only runs held in memory, unless large ones have piled up.
        self.adopt_background(false)?;
        let large = self.runs.iter().filter(|r| r.resident.is_none()).count();
        let small_only = self.filters && large <= MAX_LARGE_RUNS;
        if !small_only {
            self.adopt_background(true)?;
        }
        let mut joined = self.mem.row_count();
        let mut from = self.runs.len();
        while from > 0
            && self.runs[from - 1].rows() < MERGE_FACTOR * joined
            && (!small_only || self.runs[from - 1].resident.is_some())
        {
            from -= 1;
            joined += self.runs[from].rows();
        }
        let id = self.take_id();
        let path = self.dir.join(run_file_name(id));
        // The filter is made as the rows pass, sized for every row of the sources (keys
        // they share collapse, so it may be a little larger than the rows need).
        let keys: [u64; FILTERED] = std::array::from_fn(|s| {
            self.runs[from..]
                .iter()
                .map(|r| r.layout.counts[s])
                .sum::<u64>()
                + self.mem.count(s)
        });
        let new = write_merged(
            &self.dir,
            &path,
            id,
            &self.runs[from..],
            Some(&self.mem),
            self.filters.then_some(keys),
            None,
        )?
        .expect("not cancelled");
        self.mem = Mem::default();
        for r in self.runs.drain(from..) {
            self.merged_away.push(r.filter_path());
            self.merged_away.push(r.path);
        }
        self.runs.push(new);
        crate::fsio::sync_dir(&self.dir)?;
        self.attach_filters()?;
        Ok(Some(self.ids()))
    }

    /// Deletes the runs merged away, once the commit naming what replaced them is made.
    pub fn drop_merged(&mut self) -> Result<()> {
        for p in std::mem::take(&mut self.merged_away) {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p, "remove", e)),
            }
        }
        Ok(())
    }

    /// Deletes every run file of the folder that [`ChunkIndex::ids`] does not name (the
    /// runs of an index `rebuild-index` replaced).
    pub fn drop_superseded(&self) -> Result<()> {
        let ids = self.ids();
        for e in std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, "read folder", e))? {
            let e = e.map_err(|e| Error::io(&self.dir, "read folder", e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = parse_run_file_name(&name).or_else(|| parse_id(&name, FILTER_EXT)) {
                if !ids.contains(&id) {
                    let p = e.path();
                    std::fs::remove_file(&p).map_err(|e| Error::io(&p, "remove", e))?;
                }
            }
        }
        Ok(())
    }

    /// Rewrites the whole index as one run that keeps only what lies in packs `keep`
    /// accepts (what `romlib prune` does once it has moved the live chunks out of the
    /// packs it deletes): chunk rows in those packs, the delta rows of chunks kept that
    /// are still stored as deltas, and
    /// the sketch rows whose hash prefix names a whole chunk kept. Sketches are joined with
    /// the chunks through two external sorts, so memory stays bounded. Nothing may be
    /// pending. Returns the ids the caller's commit must name; the old runs are deleted
    /// by [`ChunkIndex::drop_merged`] after it.
    pub fn compact(&mut self, keep: &dyn Fn(u32) -> bool) -> Result<Vec<u64>> {
        assert!(self.mem.is_empty(), "compact with nothing pending");
        self.cancel_background();
        let kept_chunk = |row: &[u8], dir: &Path| -> Result<Option<ChunkEntry>> {
            let (_, e) = decode_chunk(row, dir)?;
            Ok(keep(e.pack_id).then_some(e))
        };
        let id = self.take_id();
        let path = self.dir.join(run_file_name(id));
        {
            let mut w = RunWriter::create(&path, None)?;
            // Chunks.
            let mut m = self.merged(CHUNKS, &self.runs, false)?;
            while let Some(row) = m.next_row()? {
                if kept_chunk(row, &self.dir)?.is_some() {
                    w.push(CHUNKS, row)?;
                }
            }
            // Sketches: every row of every run (a super-feature whose first chunk is no
            // longer whole, e.g. turned into a delta by a prune, keeps the next whole one),
            // by hash prefix, joined with the whole chunks kept, then by super-feature and
            // age again: of one super-feature's rows kept, the oldest run's.
            let mut by_prefix = crate::spill::Sorter::<24>::new();
            for (age, run) in self.runs.iter().enumerate() {
                let mut c = run.cursor(SKETCHES);
                while let Some(row) = c.next_row()? {
                    let mut r = [0u8; 24];
                    r[..8].copy_from_slice(&row[8..16]);
                    r[8..16].copy_from_slice(&row[..8]);
                    r[16..].copy_from_slice(&(age as u64).to_be_bytes());
                    by_prefix.push(r)?;
                }
            }
            let mut by_sf = crate::spill::Sorter::<24>::new();
            let mut chunks = self.merged(CHUNKS, &self.runs, false)?;
            let mut head: Option<([u8; 8], bool)> = None;
            for r in by_prefix.finish()? {
                let r = r?;
                let prefix: [u8; 8] = r[..8].try_into().expect("8 bytes");
                // Advance the chunks to the first whose prefix is at least this one.
                while head.is_none_or(|(h, _)| h < prefix) {
                    match chunks.next_row()? {
                        Some(c) => {
                            let whole = kept_chunk(c, &self.dir)?.is_some_and(|e| {
                                e.method != romlib_format::pack::Method::ZstdDelta
                            });
                            let h: [u8; 8] = c[..8].try_into().expect("8 bytes");
                            // Of several chunks with one prefix, any whole one kept will do.
                            if head.is_some_and(|(p, w)| p == h && w) {
                                continue;
                            }
                            head = Some((h, whole));
                        }
                        None => {
                            head = Some(([0xff; 8], false));
                            break;
                        }
                    }
                }
                if head.is_some_and(|(h, whole)| h == prefix && whole) {
                    let mut o = [0u8; 24];
                    o[..8].copy_from_slice(&r[8..16]);
                    o[8..16].copy_from_slice(&r[16..]);
                    o[16..].copy_from_slice(&prefix);
                    by_sf.push(o)?;
                }
            }
            let mut last_sf: Option<[u8; 8]> = None;
            for r in by_sf.finish()? {
                let r = r?;
                let sf: [u8; 8] = r[..8].try_into().expect("8 bytes");
                if last_sf == Some(sf) {
                    continue;
                }
                last_sf = Some(sf);
                let mut row = [0u8; 16];
                row[..8].copy_from_slice(&sf);
                row[8..].copy_from_slice(&r[16..]);
                w.push(SKETCHES, &row)?;
            }
            // Deltas of the chunks kept: both sections are in hash order.
            let mut chunks = self.merged(CHUNKS, &self.runs, false)?;
            let mut deltas = self.merged(DELTAS, &self.runs, false)?;
            let mut head: Option<([u8; 32], bool)> = None;
            while let Some(d) = deltas.next_row()? {
                let h: [u8; 32] = d[..32].try_into().expect("32 bytes");
                while head.is_none_or(|(c, _)| c < h) {
                    match chunks.next_row()? {
                        Some(c) => {
                            // Kept, and still a delta (a prune may have stored it whole).
                            let delta = kept_chunk(c, &self.dir)?.is_some_and(|e| {
                                e.method == romlib_format::pack::Method::ZstdDelta
                            });
                            head = Some((c[..32].try_into().expect("32 bytes"), delta))
                        }
                        None => {
                            head = Some(([0xff; 32], false));
                            break;
                        }
                    }
                }
                if head.is_some_and(|(c, kept)| c == h && kept) {
                    w.push(DELTAS, d)?;
                }
            }
            w.finish()?;
        }
        crate::fsio::sync_dir(&self.dir)?;
        let run = Run::open(&path, id)?;
        for r in self.runs.drain(..) {
            self.merged_away.push(r.filter_path());
            self.merged_away.push(r.path);
        }
        self.runs.push(run);
        self.attach_filters()?;
        Ok(self.ids())
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Writes one run holding `chunks`, `sketches` and `deltas` (each already sorted by
    /// key), e.g. an upgraded version 3 index's tables; returns its id. Nothing names it
    /// until the caller commits [`ChunkIndex::ids`].
    pub fn write_sorted(&mut self, rows: &mut SectionRows<'_>) -> Result<u64> {
        self.cancel_background();
        let id = self.take_id();
        let path = self.dir.join(run_file_name(id));
        {
            let mut w = RunWriter::create(&path, None)?;
            for s in 0..3 {
                rows(s, &mut |row| w.push(s, row))?;
            }
            w.finish()?;
        }
        crate::fsio::sync_dir(&self.dir)?;
        self.runs.push(Run::open(&path, id)?);
        self.attach_filters()?;
        Ok(id)
    }

    /// A chunk row: the hash, then the entry.
    pub fn encode_chunk_row(hash: &[u8; 32], e: &ChunkEntry) -> Vec<u8> {
        chunk_row(hash, e)
    }
}

/// The chunk index of the library folder `root` as its `index.db` names it, opened
/// read-only (nothing is deleted or written): for tools and tests.
pub fn open_library(root: &Path) -> Result<ChunkIndex> {
    use redb::ReadableDatabase;
    let index = root.join(romlib_format::layout::INDEX_FILE);
    let db = redb::Builder::new()
        .open_read_only(&index)
        .map_err(|e| super::index::open_err(&index, e))?;
    let txn = db
        .begin_read()
        .map_err(|e| super::index::db_err(&index, e))?;
    let meta = txn
        .open_table(super::index::META)
        .map_err(|e| super::index::db_err(&index, e))?;
    let ids = meta
        .get(romlib_format::index::META_RUNS)
        .map_err(|e| super::index::db_err(&index, e))?
        .and_then(|v| decode_list(v.value()))
        .ok_or_else(|| Error::library(&index, "index: no list of runs"))?;
    ChunkIndex::open(&root.join(romlib_format::layout::RUNS_DIR), &ids, false)
}

impl ChunkIndex {
    /// Every chunk and its entry, in hash order.
    pub fn all_chunks(&self) -> Result<Vec<([u8; 32], ChunkEntry)>> {
        let mut out = Vec::new();
        let mut m = self.chunks()?;
        while let Some(row) = m.next_row()? {
            out.push(decode_chunk(row, &self.dir)?);
        }
        Ok(out)
    }

    /// Every delta chunk and its base, in hash order.
    pub fn all_deltas(&self) -> Result<Vec<([u8; 32], [u8; 32])>> {
        let mut out = Vec::new();
        let mut m = self.merged(DELTAS, &self.runs, true)?;
        while let Some(row) = m.next_row()? {
            out.push((
                row[..32].try_into().expect("32 bytes"),
                row[32..].try_into().expect("32 bytes"),
            ));
        }
        Ok(out)
    }
}

/// What [`ChunkIndex::write_sorted`] asks for: section `s`'s rows, in order, each handed to
/// the sink it is given.
pub type SectionRows<'a> = dyn FnMut(usize, &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> + 'a;

/// Section numbers for [`ChunkIndex::write_sorted`].
pub const SECTION_CHUNKS: usize = CHUNKS;
/// See [`SECTION_CHUNKS`].
pub const SECTION_SKETCHES: usize = SKETCHES;
/// See [`SECTION_CHUNKS`].
pub const SECTION_DELTAS: usize = DELTAS;

/// Section `s` of `runs` (oldest first) and of `mem`'s rows, merged in key order.
fn merged_of<'a>(dir: &Path, s: usize, runs: &'a [Run], mem: Option<&Mem>) -> Result<Merged<'a>> {
    let mut sources: Vec<Cursor<'a>> = runs.iter().map(|r| r.cursor(s)).collect();
    if let Some(mem) = mem {
        sources.push(Cursor::mem(RUN_SECTIONS[s], mem.rows(s)));
    }
    if sources.len() > 64 {
        return Err(Error::library(
            dir,
            format!(
                "index: {} runs, more than merging ever leaves; {}",
                sources.len(),
                super::index::REBUILD
            ),
        ));
    }
    Ok(Merged::new(s, sources))
}

/// Writes `runs` (oldest first) and `mem`'s rows merged as run `id` at `path`, with a
/// filter made as the rows pass when `keys` sizes one (beside the run when it is not held
/// in memory); opens and returns it. `None` when `cancel` was set on the way (the file is
/// the caller's to delete).
fn write_merged(
    dir: &Path,
    path: &Path,
    id: u64,
    runs: &[Run],
    mem: Option<&Mem>,
    keys: Option<[u64; FILTERED]>,
    cancel: Option<&AtomicBool>,
) -> Result<Option<Run>> {
    // A filter larger than a builder holds is not made (the budget then decides).
    let keys = keys.filter(|k| filter::bytes_for(k) <= filter::FILTER_BUDGET);
    let mut w = RunWriter::create(path, keys)?;
    for s in 0..RUN_SECTIONS.len() {
        let mut m = merged_of(dir, s, runs, mem)?;
        let mut n = 0u32;
        while let Some(row) = m.next_row()? {
            w.push(s, row)?;
            n = n.wrapping_add(1);
            if n.is_multiple_of(4096) && cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Ok(None);
            }
        }
    }
    let f = w.finish()?;
    let mut run = Run::open(path, id)?;
    if let (Some((sum, f)), Some(keys)) = (f, keys) {
        if (0..FILTERED).all(|s| filter::fits(keys[s], run.layout.counts[s])) {
            if run.resident.is_none() {
                write_filter(&run.filter_path(), &sum, &f)?;
            }
            run.filter = Some(f);
        }
    }
    Ok(Some(run))
}

/// Deletes run file `path` and its filter, if they exist (what an unfinished merge left).
fn remove_run_files(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Some(id) = path
        .file_name()
        .and_then(|n| parse_run_file_name(&n.to_string_lossy()))
    {
        let _ = std::fs::remove_file(path.with_file_name(filter_file_name(id)));
    }
}

/// Hashes and writes a run's bytes on a thread of its own, so that merging the rows and
/// writing them overlap: BLAKE3 and the copy into the page cache were half of a large
/// merge's time.
struct Sink {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<(File, blake3::Hasher)>>>,
}

impl Sink {
    fn new(mut file: File) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::spawn(move || {
            let mut hash = blake3::Hasher::new();
            for piece in rx {
                hash.update(&piece);
                file.write_all(&piece)?;
            }
            Ok((file, hash))
        });
        Self {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Hands `piece` to the thread; the thread's error once it has stopped on one.
    fn send(&mut self, piece: Vec<u8>) -> std::io::Result<()> {
        let tx = self.tx.as_ref().expect("a sink is sent to until it ends");
        if tx.send(piece).is_ok() {
            return Ok(());
        }
        self.end().map(|_| ())
    }

    /// The file and the hash of all that was sent, once written.
    fn end(&mut self) -> std::io::Result<(File, blake3::Hasher)> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the run writer's thread failed"))),
            None => Err(std::io::Error::other("the run writer's thread has stopped")),
        }
    }
}

/// Writes a run in one pass.
struct RunWriter {
    path: PathBuf,
    out: Sink,
    /// Bytes not yet sent to be hashed and written, which leave in pieces of
    /// [`RUN_WRITE_BUF`] bytes (whole BLAKE3 chunks, which it hashes several at a time).
    buf: Vec<u8>,
    counts: [u64; 3],
    fences: [Vec<u8>; 3],
    section: usize,
    last: Vec<u8>,
    /// The rows of the block being written: checksummed, hashed and written whole, so
    /// that BLAKE3 and CRC-32 run over kilobytes at a time, not a row.
    block: Vec<u8>,
    /// The filter of the keys written, when asked for.
    filter: Option<RunFilter>,
}

impl RunWriter {
    /// A writer of a new run at `path`, making a filter sized for `filter_keys` keys per
    /// section as the rows pass when asked.
    fn create(path: &Path, filter_keys: Option<[u64; FILTERED]>) -> Result<Self> {
        let file = create_new(path)?;
        let mut w = Self {
            path: path.to_path_buf(),
            out: Sink::new(file),
            buf: Vec::with_capacity(RUN_WRITE_BUF + 4096),
            counts: [0; 3],
            fences: Default::default(),
            section: 0,
            last: Vec::new(),
            block: Vec::with_capacity(4096),
            filter: filter_keys
                .map(|k| std::array::from_fn(|s| filter::SectionFilter::with_keys(k[s]))),
        };
        w.put(&RunLayout::header())?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= RUN_WRITE_BUF {
            self.drain(RUN_WRITE_BUF)?;
        }
        Ok(())
    }

    /// Sends the buffered bytes to be hashed and written, all of them when `piece` is 1,
    /// else a whole number of `piece`s (the rest stays buffered).
    fn drain(&mut self, piece: usize) -> Result<()> {
        let n = self.buf.len() / piece * piece;
        let mut rest = Vec::with_capacity(RUN_WRITE_BUF + 4096);
        rest.extend_from_slice(&self.buf[n..]);
        let mut full = std::mem::replace(&mut self.buf, rest);
        full.truncate(n);
        self.out
            .send(full)
            .map_err(|e| Error::io(&self.path, "write", e))
    }

    fn push(&mut self, s: usize, row: &[u8]) -> Result<()> {
        let sec = RUN_SECTIONS[s];
        assert!(
            s >= self.section && row.len() == sec.row_len,
            "run rows in order"
        );
        if s != self.section {
            self.end_block()?;
            self.section = s;
            self.last.clear();
        }
        assert!(
            self.last.is_empty() || self.last[..] < row[..sec.key_len],
            "run keys rise"
        );
        self.last.clear();
        self.last.extend_from_slice(&row[..sec.key_len]);
        if self.counts[s].is_multiple_of(sec.block_rows as u64) {
            self.end_block()?;
            self.fences[s].extend_from_slice(&fence_of(row).to_be_bytes());
        }
        self.counts[s] += 1;
        self.block.extend_from_slice(row);
        if let Some(f) = self.filter.as_mut().and_then(|f| f.get_mut(s)) {
            f.insert(fence_of(row));
        }
        Ok(())
    }

    /// Writes the block of the current section written so far, if any, and appends its
    /// CRC-32 to its fence.
    fn end_block(&mut self) -> Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let crc = crc32fast::hash(&self.block);
        self.fences[self.section].extend_from_slice(&crc.to_le_bytes());
        let block = std::mem::take(&mut self.block);
        self.put(&block)?;
        self.block = block;
        self.block.clear();
        Ok(())
    }

    /// Ends the run and makes it durable; returns its checksum and filter when one was
    /// asked for.
    fn finish(mut self) -> Result<Option<([u8; 32], RunFilter)>> {
        self.end_block()?;
        for s in 0..3 {
            let f = std::mem::take(&mut self.fences[s]);
            self.put(&f)?;
        }
        let counts = RunLayout::encode_counts(self.counts);
        self.put(&counts)?;
        self.drain(1)?;
        let (mut out, hash) = self
            .out
            .end()
            .map_err(|e| Error::io(&self.path, "write", e))?;
        let sum = *hash.finalize().as_bytes();
        let mut end = sum.to_vec();
        end.extend_from_slice(romlib_format::index::RUN_END);
        out.write_all(&end)
            .map_err(|e| Error::io(&self.path, "write", e))?;
        out.sync_all()
            .map_err(|e| Error::io(&self.path, "fsync", e))?;
        Ok(self.filter.map(|f| (sum, f)))
    }
}

/// Writes `f`, the filter of the run whose checksum is `run_sum`, to `path` (a leftover of
/// that name is replaced, never written through). Not fsynced: a torn filter fails its
/// checksum and is made again.
fn write_filter(path: &Path, run_sum: &[u8; 32], f: &RunFilter) -> Result<()> {
    create_new(path)?
        .write_all(&filter::encode(run_sum, f))
        .map_err(|e| Error::io(path, "write", e))
}

/// The filter at `path` of the run whose checksum is `run_sum` and whose sections hold
/// `counts` rows: `None` when there is none, or it is unusable ([`filter::decode`]); a
/// link is never followed, and a file longer than such a filter can be is not read.
fn read_filter(path: &Path, run_sum: &[u8; 32], counts: &[u64]) -> Result<Option<RunFilter>> {
    let Ok(file) = open_nofollow(path) else {
        return Ok(None);
    };
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "read", e))?
        .len();
    if len > filter::max_len(counts) {
        return Ok(None);
    }
    let mut b = vec![0u8; len as usize];
    read_at(&file, &mut b, 0).map_err(|e| Error::io(path, "read", e))?;
    Ok(filter::decode(&b, run_sum, counts))
}

/// Creates `path`, which must not exist (a leftover of the same name is removed first,
/// never written through).
fn create_new(path: &Path) -> Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, "remove", e)),
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(path, "create", e))
}

/// Opens `path` for reading, refusing a symbolic link.
fn open_nofollow(path: &Path) -> Result<File> {
    match path.symlink_metadata() {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(Error::library(
                path,
                "is a symbolic link; an index run is never read through one",
            ))
        }
        _ => {}
    }
    File::open(path).map_err(|e| Error::io(path, "open", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use romlib_format::pack::Method;

    fn entry(n: u32) -> ChunkEntry {
        ChunkEntry {
            pack_id: n,
            offset: u64::from(n) * 10,
            clen: n,
            ulen: n + 1,
            method: Method::Zstd,
            stored_at: 0,
        }
    }

    fn hash(n: u32) -> [u8; 32] {
        *blake3::hash(&n.to_le_bytes()).as_bytes()
    }

    #[test]
    fn runs_write_merge_and_find() {
        let dir = std::env::temp_dir().join(format!("romlib-runs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut ix = ChunkIndex::open(&dir, &[], true).unwrap();
        let mut all = Vec::new();
        // Batches of growing size; a hash prefix shared by many chunks, too.
        for batch in 0..6u32 {
            for i in 0..(200 * (batch + 1)) {
                let n = batch * 10_000 + i;
                let mut h = hash(n);
                if i % 50 == 0 {
                    h[..8].copy_from_slice(&[7; 8]);
                }
                ix.insert_chunk(h, entry(n));
                ix.insert_sketch(u64::from(n) * 3, &h).unwrap();
                if i % 3 == 0 {
                    ix.insert_delta(h, hash(n + 1));
                }
                all.push((h, n));
            }
            let ids = ix.write().unwrap().unwrap();
            ix.drop_superseded().unwrap();
            assert!(ids.len() <= 4, "{ids:?}");
        }
        // A chunk moved by a later run: the later entry wins.
        ix.insert_chunk(all[0].0, entry(999_999));
        ix.write().unwrap();
        let ids = ix.ids();
        let ix = ChunkIndex::open(&dir, &ids, true).unwrap();
        for r in ix.runs() {
            r.check().unwrap();
        }
        for (i, (h, n)) in all.iter().enumerate() {
            let want = if i == 0 { 999_999 } else { *n };
            assert_eq!(ix.get(h).unwrap(), Some(entry(want)));
            assert_eq!(ix.delta_base(h).unwrap().is_some(), n % 10_000 % 3 == 0);
            assert!(ix.sketch(u64::from(*n) * 3).unwrap().is_some());
        }
        assert_eq!(ix.get(&hash(5_000_000)).unwrap(), None);
        assert_eq!(ix.by_prefix(&[7; 8]).unwrap().unwrap().0[..8], [7; 8]);
        let mut m = ix.chunks().unwrap();
        let mut n = 0;
        let mut prev = None;
        while let Some(row) = m.next_row().unwrap() {
            assert!(prev.as_ref().is_none_or(|p: &Vec<u8>| p[..32] < row[..32]));
            prev = Some(row.to_vec());
            n += 1;
        }
        assert_eq!(n, all.len());
        // Damage is found by check, and a stray run is deleted by the next writer.
        let p = ix.runs()[0].path().to_path_buf();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&p, bytes).unwrap();
        assert!(Run::open(&p, 0).unwrap().check().is_err());
        std::fs::write(dir.join(run_file_name(99)), b"stray").unwrap();
        ChunkIndex::open(&dir, &ids, true).unwrap();
        assert!(!dir.join(run_file_name(99)).exists());
        assert_eq!(parse_run_file_name("00000000000000ff.run"), Some(255));
        assert_eq!(parse_run_file_name("00000000000000FF.run"), None);
        assert_eq!(parse_run_file_name("ff.run"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Writes `batches` runs of `per` chunks (each with a sketch) into a new index in
    /// `dir`; returns the index and every hash.
    fn filled(dir: &Path, batches: u32, per: u32, base: u32) -> (ChunkIndex, Vec<[u8; 32]>) {
        let mut ix = ChunkIndex::open(dir, &[], true).unwrap();
        let mut all = Vec::new();
        for b in 0..batches {
            for i in 0..per {
                let n = base + b * 1_000_000 + i;
                ix.insert_chunk(hash(n), entry(n));
                ix.insert_sketch(u64::from(n) * 7 + 1, &hash(n)).unwrap();
                all.push(hash(n));
            }
            ix.write().unwrap();
            ix.drop_merged().unwrap();
        }
        (ix, all)
    }

    fn finds_all(ix: &ChunkIndex, all: &[[u8; 32]]) {
        for (i, h) in all.iter().enumerate() {
            assert!(ix.get(h).unwrap().is_some(), "chunk {i} lost");
            assert!(ix.by_prefix(&h[..8].try_into().unwrap()).unwrap().is_some());
        }
    }

    #[test]
    fn a_run_read_from_disk_has_a_filter_file_that_is_made_again_when_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("runs");
        // 3000 chunks: about 210 KB of rows, above the test build's 64 KiB in memory.
        let (ix, all) = filled(&dir, 1, 3000, 0);
        let ids = ix.ids();
        assert_eq!(ids.len(), 1);
        let run = &ix.runs()[0];
        assert!(run.resident.is_none() && run.filter.is_some());
        let bloom = run.filter_path();
        let made = std::fs::read(&bloom).unwrap();
        finds_all(&ix, &all);
        // Keys it does not hold are answered by the filter: at 8 bits per key, about 2%
        // of them get past it.
        let past = (5_000_000..5_010_000u32)
            .filter(|&n| run.may_hold(CHUNKS, fence_of(&hash(n))))
            .count();
        assert!(past < 400, "{past} of 10000 absent keys passed the filter");
        drop(ix);

        // Damaged: made again, the same bytes.
        let mut bad = made.clone();
        bad[200] ^= 0x10;
        std::fs::write(&bloom, &bad).unwrap();
        let ix = ChunkIndex::open(&dir, &ids, true).unwrap();
        finds_all(&ix, &all);
        assert!(std::fs::read(&bloom).unwrap() == made);
        drop(ix);

        // Another run's filter under this name (an id used again): refused, made again.
        let other_dir = dir.with_file_name("other");
        let (other, _) = filled(&other_dir, 1, 3000, 500);
        let other_bloom = other.runs()[0].filter_path();
        drop(other);
        std::fs::copy(&other_bloom, &bloom).unwrap();
        assert!(std::fs::read(&bloom).unwrap() != made);
        let ix = ChunkIndex::open(&dir, &ids, true).unwrap();
        finds_all(&ix, &all);
        assert!(std::fs::read(&bloom).unwrap() == made);
        drop(ix);

        // A link planted under the name is replaced, and what it points to left alone.
        #[cfg(unix)]
        {
            let outside = dir.with_file_name("outside");
            std::fs::write(&outside, b"not ours").unwrap();
            std::fs::remove_file(&bloom).unwrap();
            std::os::unix::fs::symlink(&outside, &bloom).unwrap();
            let ix = ChunkIndex::open(&dir, &ids, true).unwrap();
            finds_all(&ix, &all);
            assert!(!bloom.symlink_metadata().unwrap().file_type().is_symlink());
            assert_eq!(std::fs::read(&outside).unwrap(), b"not ours");
        }

        // A filter no listed run owns is deleted by a writer, kept by a reader.
        let stray = dir.join(filter_file_name(ids[0] + 40));
        std::fs::write(&stray, b"stray").unwrap();
        ChunkIndex::open(&dir, &ids, false).unwrap();
        assert!(stray.exists());
        ChunkIndex::open(&dir, &ids, true).unwrap();
        assert!(!stray.exists() && bloom.exists());
    }

    /// Every chunk row of `ix`, in order.
    fn chunk_rows(ix: &ChunkIndex) -> Vec<Vec<u8>> {
        let mut m = ix.chunks().unwrap();
        let mut out = Vec::new();
        while let Some(r) = m.next_row().unwrap() {
            out.push(r.to_vec());
        }
        out
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn large_runs_merge_in_the_background_and_a_commit_takes_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("runs");
        let (mut ix, mut all) = filled(&dir, 3, 1000, 0);
        assert_eq!(
            ix.runs().len(),
            3,
            "a commit leaves large runs to the background"
        );
        let mut want = chunk_rows(&ix);
        let old: Vec<PathBuf> = ix.runs().iter().map(|r| r.filter_path()).collect();
        ix.start_background_merge(u64::MAX);
        while !ix.background.as_ref().unwrap().thread.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // The next commit takes the merged run, and writes its own rows beside it.
        for i in 0..800 {
            let n = 10_000_000 + i;
            ix.insert_chunk(hash(n), entry(n));
            want.push(ChunkIndex::encode_chunk_row(&hash(n), &entry(n)));
            all.push(hash(n));
        }
        want.sort();
        let ids = ix.write().unwrap().unwrap();
        assert_eq!(ids.len(), 2, "{ids:?}");
        ix.drop_merged().unwrap();
        assert!(old.iter().all(|f| !f.exists()), "filters merged away stay");
        assert_eq!(chunk_rows(&ix), want);
        finds_all(&ix, &all);
        drop(ix);
        let ix = ChunkIndex::open(&dir, &ids, true).unwrap();
        finds_all(&ix, &all);
        for r in ix.runs() {
            r.check().unwrap();
            assert!(r.filter.is_some());
            assert_eq!(r.filter_path().exists(), r.resident.is_none());
        }
        let mut listed: Vec<String> = ids.iter().map(|&i| run_file_name(i)).collect();
        listed.push(filter_file_name(ids[0]));
        listed.sort();
        assert_eq!(names(&dir), listed);
    }

    #[test]
    fn a_background_merge_not_taken_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("runs");
        let (mut ix, all) = filled(&dir, 3, 1000, 0);
        let ids = ix.ids();
        let before = names(&dir);
        assert_eq!(before.len(), 6, "{before:?}");
        ix.start_background_merge(u64::MAX);
        assert!(ix.background.is_some());
        // A build that ends first (or fails) drops the index: the merge stops, its files go.
        drop(ix);
        assert_eq!(names(&dir), before);
        let ix = ChunkIndex::open(&dir, &ids, true).unwrap();
        finds_all(&ix, &all);
        // A merge that finished but was never committed goes the same way.
        let mut ix = ix;
        ix.start_background_merge(u64::MAX);
        while !ix.background.as_ref().unwrap().thread.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        drop(ix);
        assert_eq!(names(&dir), before);
    }
}
