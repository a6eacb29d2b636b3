//! Chunks a device already has, so an install over the network fetches only the rest:
//! the files of installed games (an older version of the game, or another game sharing
//! data), of an install that was cut off part-way (resume), and a library on the device
//! (`--reuse LIB`: found through its games' locators, decoded and checked like any chunk).
//!
//! A source is a folder of files plus the manifest they were written from. Only the chunks
//! the new game needs are indexed (by a 64-bit prefix of their hash, with where they lie),
//! and only for a window of [`WINDOW`] chunks of its table at a time: the install reads the
//! table in order, and when it passes the window's end the sources are scanned again for
//! the next one. So memory is bounded whatever the game's chunk count (8 bytes per chunk of
//! the window and at most 48 for what the sources hold of it, about 7 MiB; more only with
//! `--reuse LIB`), and a
//! game within one window (4 GiB at the default chunk size) scans its sources once, as
//! before. Nothing local is trusted either: bytes found are hashed and used only if they
//! match the signed hash; a mismatch (a file edited since, a write cut short) just means
//! the chunk is fetched.

use crate::chunks::decoder::RuzstdDecoder;
use crate::chunks::locator::ChunkLocator;
use crate::chunks::ChunkSource;
use crate::error::Result;
use crate::folder::Folder;
use crate::fsio::read_exact_at;
use crate::library::Library;
use crate::trusted::{ChunkTable, ManifestFile, VerifiedManifest};
use romlib_format::index::ChunkEntry;
use romlib_format::pack::Method;
use std::fs::File;

/// Chunks of the new game's table indexed at a time (`ROMLIB_REUSE_WINDOW` overrides it, so
/// tests can make small games span many windows).
pub const WINDOW: u64 = 1 << 17;

/// Spots kept per window at most, per chunk of the window (what the sources hold of the
/// window's chunks: one source holding all of them, and half of another; more are left out
/// and their chunks downloaded): 6 MiB at the default window.
const SPOTS_PER_CHUNK: u64 = 2;

/// The window's length: [`WINDOW`] chunks, or `ROMLIB_REUSE_WINDOW`'s.
pub fn window_len() -> u64 {
    std::env::var("ROMLIB_REUSE_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(WINDOW)
}

/// What a window is built from: the new game's table (read on, window after window), the
/// prefixes of its delta bases (in every window), the sources and a local library.
#[derive(Debug)]
struct Plan {
    table: ChunkTable,
    bases: Vec<u64>,
    sources: Vec<(String, ManifestFile, Option<Vec<String>>)>,
    reuse: Option<Library>,
    /// Chunks of the table read so far (the current window's end).
    end: u64,
    total: u64,
    window: u64,
}

/// A library folder on the device to take chunks from.
#[derive(Debug)]
struct LocalLibrary {
    chunks: ChunkSource,
    decoder: RuzstdDecoder,
    chunk: Vec<u8>,
}

/// Where one reusable chunk lies.
#[derive(Debug, Clone, Copy)]
struct Spot {
    prefix: u64,
    file: u32,
    offset: u64,
    len: u32,
}

/// An index of reusable local chunks.
#[derive(Debug, Default)]
pub struct LocalChunks {
    plan: Option<Plan>,
    /// The first chunk of the table in the current window.
    start: u64,
    spots: Vec<Spot>,
    /// The install folder the files are in, and their paths in it (opened through the
    /// folder's handle, never through a link).
    base: Option<Folder>,
    files: Vec<String>,
    open: Option<(u32, File)>,
    library: Option<LocalLibrary>,
    /// The 64-bit hash prefixes of the chunks the new game needs, sorted.
    need: Need,
    /// Chunks taken from local files so far.
    pub reused: u64,
    /// Their bytes.
    pub reused_bytes: u64,
}

/// The sorted prefixes of the chunks a window needs, with a bitmap of their top bits in
/// front: most chunks of a source are not needed, and the bitmap turns them away without a
/// search.
#[derive(Debug, Default)]
struct Need {
    sorted: Vec<u64>,
    bits: Vec<u64>,
}

/// Bits of the bitmap: 2^21 (256 KiB), about 6% of them set by a full window.
const NEED_BITS: u32 = 21;

impl Need {
    fn new(sorted: Vec<u64>) -> Self {
        let mut bits = vec![0u64; 1 << (NEED_BITS - 6)];
        for p in &sorted {
            let b = p >> (64 - NEED_BITS);
            bits[(b >> 6) as usize] |= 1 << (b & 63);
        }
        Need { sorted, bits }
    }

    fn contains(&self, p: u64) -> bool {
        let b = p >> (64 - NEED_BITS);
        self.bits
            .get((b >> 6) as usize)
            .is_some_and(|w| w & (1 << (b & 63)) != 0)
            && self.sorted.binary_search(&p).is_ok()
    }
}

fn prefix(hash: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(b)
}

impl LocalChunks {
    /// Indexes, in `sources` (a folder's path in install folder `base`, the manifest it
    /// was written from, and where the files lie in `base` when not at that folder's
    /// manifest paths: a game placed without a folder), the chunks of `m`'s first window
    /// and the base chunks `bases` of its deltas.
    pub fn build(
        m: &VerifiedManifest,
        bases: &[[u8; 32]],
        base: &Folder,
        sources: Vec<(String, ManifestFile, Option<Vec<String>>)>,
    ) -> Result<Self> {
        let window = window_len();
        let mut bases: Vec<u64> = bases.iter().map(prefix).collect();
        bases.sort_unstable();
        bases.dedup();
        // Bases beyond a window's worth are not looked for (they are downloaded); the
        // caller gives at most that many.
        bases.truncate(window as usize);
        let mut out = LocalChunks {
            base: Some(base.try_clone()?),
            plan: Some(Plan {
                table: m.chunks()?,
                bases,
                sources,
                reuse: None,
                end: 0,
                total: m.body().chunk_count,
                window,
            }),
            ..LocalChunks::default()
        };
        out.next_window()?;
        Ok(out)
    }

    /// Also takes chunks from the library folder `lib`: the chunks of each window are
    /// looked up in its games' chunk tables, and placed by their locators (reads every
    /// manifest and locator of `lib` once per window). A game of `lib` whose manifest or
    /// locator does not read is skipped.
    pub fn with_library(mut self, lib: &Library) -> Result<Self> {
        if let Some(p) = &mut self.plan {
            p.reuse = Some(lib.clone());
        }
        self.index_library()?;
        Ok(self)
    }

    /// Makes the window hold chunk `k` of the table, which the install reads in order:
    /// past the window's end, the next window is built.
    pub fn advance_to(&mut self, k: u64) -> Result<()> {
        while self
            .plan
            .as_ref()
            .is_some_and(|p| k >= p.end && p.end < p.total)
        {
            self.next_window()?;
            self.index_library()?;
        }
        Ok(())
    }

    /// Whether chunk `k` of the table is in the current window.
    fn in_window(&self, k: u64) -> bool {
        k >= self.start && self.plan.as_ref().is_none_or(|p| k < p.end)
    }

    /// Reads the next window of the table and indexes what the sources hold of it.
    fn next_window(&mut self) -> Result<()> {
        let Some(plan) = self.plan.as_mut() else {
            return Ok(());
        };
        self.start = plan.end;
        let mut need = Vec::with_capacity(plan.window.min(plan.total - plan.end) as usize);
        while need.len() < plan.window as usize {
            let Some(c) = plan.table.next_chunk()? else {
                break;
            };
            need.push(prefix(&c.hash));
            plan.end += 1;
        }
        need.extend_from_slice(&plan.bases);
        need.sort_unstable();
        need.dedup();
        let need = Need::new(need);
        self.spots.clear();
        self.files.clear();
        self.open = None;
        'sources: for (root, src, placed) in &plan.sources {
            let Ok(mut t) = src.scan_chunks() else {
                continue;
            };
            for (i, f) in src.unverified_body().files.iter().enumerate() {
                let path = match placed {
                    Some(p) => p.get(i).cloned().unwrap_or_default(),
                    None => format!("{root}/{}", f.path),
                };
                // The manifest is unverified: a path that is not a safe relative one is
                // never opened (its chunks are just not reused).
                let checked = if placed.is_some() { &path } else { &f.path };
                let safe = romlib_format::path::check_path(checked, false).is_ok();
                let mut offset = 0u64;
                let mut file_idx = None;
                for _ in 0..f.chunk_count {
                    let Ok(Some(c)) = t.next_chunk() else { break };
                    let p = prefix(&c.hash);
                    if safe && need.contains(p) {
                        if self.spots.len() as u64 >= plan.window * SPOTS_PER_CHUNK {
                            break 'sources;
                        }
                        let idx = *file_idx.get_or_insert_with(|| {
                            self.files.push(path.clone());
                            (self.files.len() - 1) as u32
                        });
                        self.spots.push(Spot {
                            prefix: p,
                            file: idx,
                            offset,
                            len: c.len,
                        });
                    }
                    offset += c.len as u64;
                }
            }
        }
        self.spots.sort_unstable_by_key(|s| s.prefix);
        self.need = need;
        Ok(())
    }

    /// Looks the window's chunks up in the local library, if there is one.
    fn index_library(&mut self) -> Result<()> {
        let Some(lib) = self.plan.as_ref().and_then(|p| p.reuse.clone()) else {
            return Ok(());
        };
        let mut table: Vec<([u8; 32], ChunkEntry)> = Vec::new();
        for title in lib.titles()? {
            let Ok(mf) = ManifestFile::open(&lib.manifest_path(&title)) else {
                continue;
            };
            let body = mf.unverified_body();
            let Ok(loc) = ChunkLocator::open(&lib, body) else {
                continue;
            };
            let Ok(mut t) = mf.scan_chunks() else {
                continue;
            };
            let mut deltas = false;
            let mut i = 0u64;
            while let Ok(Some(c)) = t.next_chunk() {
                if self.need.contains(prefix(&c.hash)) {
                    if let Ok(Some(e)) = loc.lookup(i, &c.hash, c.len) {
                        deltas |= e.method == Method::ZstdDelta;
                        table.push((c.hash, e));
                    }
                }
                i += 1;
            }
            // A needed chunk stored as a delta needs its base, which this locator places.
            if deltas {
                for h in loc.base_hashes().unwrap_or_default() {
                    if let Ok(Some(e)) = loc.base(&h) {
                        table.push((h, e));
                    }
                }
            }
        }
        table.sort_unstable_by_key(|e| e.0);
        table.dedup_by(|a, b| a.0 == b.0);
        self.library = Some(LocalLibrary {
            chunks: ChunkSource::by_hash(&lib, table),
            decoder: RuzstdDecoder::default(),
            chunk: Vec::new(),
        });
        Ok(())
    }

    /// Whether nothing local can be reused.
    pub fn is_empty(&self) -> bool {
        self.spots.is_empty()
            && self.library.is_none()
            && self.plan.as_ref().is_none_or(|p| p.sources.is_empty())
    }

    /// Whether a local file may hold chunk `hash`, chunk `k` of the table (by its prefix;
    /// nothing is read); false beyond the current window.
    pub fn may_hold(&self, k: u64, hash: &[u8; 32]) -> bool {
        if !self.in_window(k) {
            return false;
        }
        let p = prefix(hash);
        let first = self.spots.partition_point(|s| s.prefix < p);
        self.spots.get(first).is_some_and(|s| s.prefix == p)
    }

    /// Whether [`LocalChunks::may_hold`] and [`LocalChunks::may_hold_any`] answer for the
    /// whole game now: its table fits in the current window, and no library on the device
    /// (`--reuse`, which they do not ask) may hold more.
    pub fn covers_game(&self) -> bool {
        self.library.is_none()
            && self.start == 0
            && self.plan.as_ref().is_none_or(|p| p.end >= p.total)
    }

    /// Whether a local file may hold chunk `hash` of any length, such as a delta's base (by
    /// its prefix, in the current window's sources; nothing is read).
    pub fn may_hold_any(&self, hash: &[u8; 32]) -> bool {
        let p = prefix(hash);
        let first = self.spots.partition_point(|s| s.prefix < p);
        self.spots.get(first).is_some_and(|s| s.prefix == p)
    }

    /// Appends chunk `hash` (`len` bytes) to `out` if a local file holds it (checked).
    pub fn find(&mut self, hash: &[u8; 32], len: u32, out: &mut Vec<u8>) -> bool {
        self.find_len(hash, Some(len), out).is_some()
    }

    /// Appends chunk `hash`, of whatever length, to `out` if a local file holds it
    /// (checked); returns its length. For a delta's base, whose length only its record
    /// gives.
    pub fn find_any_len(&mut self, hash: &[u8; 32], out: &mut Vec<u8>) -> Option<u32> {
        self.find_len(hash, None, out)
    }

    fn find_len(&mut self, hash: &[u8; 32], want: Option<u32>, out: &mut Vec<u8>) -> Option<u32> {
        let p = prefix(hash);
        let first = self.spots.partition_point(|s| s.prefix < p);
        for k in first..self.spots.len() {
            let s = self.spots[k];
            if s.prefix != p {
                break;
            }
            if want.is_some_and(|w| s.len != w) {
                continue;
            }
            let len = s.len;
            if self.open.as_ref().is_none_or(|(f, _)| *f != s.file) {
                let opened = self.base.as_ref().and_then(|b| {
                    b.open_file_path(&self.files[s.file as usize])
                        .ok()
                        .flatten()
                });
                match opened {
                    Some(f) => self.open = Some((s.file, f)),
                    None => continue,
                }
            }
            let (_, f) = self.open.as_ref().expect("just opened");
            let start = out.len();
            out.resize(start + len as usize, 0);
            if read_exact_at(f, &mut out[start..], s.offset).is_ok()
                && blake3::hash(&out[start..]).as_bytes() == hash
            {
                self.reused += 1;
                self.reused_bytes += len as u64;
                return Some(len);
            }
            out.truncate(start);
        }
        if let Some(l) = &mut self.library {
            // The record and the decoded bytes are checked against `hash` (a delta's base
            // too); a damaged or incomplete local library just means a download.
            if let Ok(Some(len)) = l
                .chunks
                .read_by_hash(hash, want, &mut l.decoder, &mut l.chunk)
            {
                out.extend_from_slice(&l.chunk);
                self.reused += 1;
                self.reused_bytes += len as u64;
                return Some(len);
            }
        }
        None
    }
}
