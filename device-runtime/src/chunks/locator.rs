//! Finding a game's chunk records: through the game's locator (a library folder's
//! `games/<title>.locator`, a server's, or the one inside a portable file), or, for chunks
//! looked up by hash, a table gathered from a library's locators. Either is only a hint:
//! the record found must name the chunk the signed manifest expects, and its decoded bytes
//! must hash to it. Nothing here reads the builder's index (`index.db`).

use crate::error::{Error, Result};
use crate::fsio::{file_len, open_existing, read_exact_at};
use crate::library::{staged_locator, Kind, Library};
use romlib_format::index::ChunkEntry;
use romlib_format::portable::{
    BaseEntry, LocatorEntry, LocatorHeader, BASE_ENTRY_LEN, LOCATOR_ENTRY_LEN, LOCATOR_HEADER_LEN,
    LOCATOR_HEADER_V2_LEN,
};
use romlib_proto::Manifest;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Where a game's chunks are.
#[derive(Debug)]
pub enum ChunkLocator {
    /// Chunks by hash, sorted by hash (a library's chunks gathered from its locators).
    Table(Vec<([u8; 32], ChunkEntry)>),
    /// A locator: entry `i` is chunk-table record `i`'s record.
    Locator {
        /// The file holding it (named in errors).
        path: PathBuf,
        /// That file.
        file: File,
        /// Where its entries start.
        entries: u64,
        /// Number of entries.
        count: u64,
        /// Where its base table starts (version 2), sorted by hash.
        bases: u64,
        /// Number of base entries (0 for version 1).
        base_count: u64,
    },
}

impl ChunkLocator {
    /// The locator for the game of manifest `body` in `lib`. A portable file's locator must
    /// have been written for exactly this manifest (same chunk count and chunk-table hash).
    pub fn open(lib: &Library, body: &Manifest) -> Result<Self> {
        match lib.kind() {
            // A build writes a game's new locator beside it as `.<title>.locator.tmp`
            // before it renames the new manifest into place, and renames the locator right
            // after: between the two renames (or after a build killed there, until the
            // next build finishes the job) the staged one is the manifest's.
            Kind::Folder => match Self::open_or_staged(&lib.locator_path(&body.title_id), body) {
                Ok((l, _)) => Ok(l),
                Err(Error::NotFound { path, .. }) => Err(Error::manifest(
                    path,
                    format!(
                        "no locator for {}: `romlib build` or `romlib rebuild-index` on the \
                         library writes it",
                        body.title_id
                    ),
                )),
                Err(e) => Err(e),
            },
            Kind::Remote(r) => {
                let (rel, file) = r.download_game_file(&body.title_id, true, None)?;
                let path = r.display_path(&rel);
                let len = file_len(&file, &path)?;
                Self::from_region(path, file, 0, len, body)
            }
            Kind::Portable(p) => {
                let path = p.path().to_path_buf();
                let g = p.game(&body.title_id).ok_or_else(|| Error::NotFound {
                    path: path.join(&body.title_id),
                    what: "game in this portable file",
                })?;
                let file = p
                    .file()
                    .try_clone()
                    .map_err(|e| Error::io(&path, "open", e))?;
                Self::from_region(path, file, g.locator_offset, g.locator_len, body)
            }
        }
    }

    /// The locator file `path` (a library's `games/<title>.locator`) or, when it was not
    /// written for the manifest `body`, the one a build staged beside it
    /// ([`staged_locator`]; its path is returned with it). The error is the first file's.
    pub fn open_or_staged(path: &Path, body: &Manifest) -> Result<(Self, Option<PathBuf>)> {
        let first = match Self::open_file(path, body) {
            Ok(l) => return Ok((l, None)),
            Err(e) => e,
        };
        let staged = staged_locator(path);
        match Self::open_file(&staged, body) {
            Ok(l) => Ok((l, Some(staged))),
            Err(_) => Err(first),
        }
    }

    /// The locator file `path` (a library's `games/<title>.locator`), checked against the
    /// manifest `body` it must have been written for.
    pub fn open_file(path: &Path, body: &Manifest) -> Result<Self> {
        let file = open_existing(path, "locator")?;
        let len = file_len(&file, path)?;
        Self::from_region(path.to_path_buf(), file, 0, len, body)
    }

    /// The locator in bytes `offset .. offset + len` of `file`, checked against `body`.
    fn from_region(
        path: PathBuf,
        file: File,
        offset: u64,
        len: u64,
        body: &Manifest,
    ) -> Result<Self> {
        let mut hb = [0u8; LOCATOR_HEADER_V2_LEN];
        if len < LOCATOR_HEADER_LEN as u64 {
            return Err(Error::manifest(
                &path,
                format!("locator of {} is truncated", body.title_id),
            ));
        }
        let hb = &mut hb[..len.min(LOCATOR_HEADER_V2_LEN as u64) as usize];
        read_exact_at(&file, hb, offset).map_err(|e| Error::io(&path, "read", e))?;
        let h = LocatorHeader::decode(hb).map_err(|e| Error::format(&path, e))?;
        if h.count as u64 != body.chunk_count
            || h.table_blake3.as_slice() != body.chunk_table_blake3.as_slice()
            || h.locator_len() != len
        {
            return Err(Error::manifest(
                &path,
                format!(
                    "locator of {} was not written for its manifest (stale or altered file)",
                    body.title_id
                ),
            ));
        }
        Ok(Self::Locator {
            path,
            file,
            entries: offset + h.header_len() as u64,
            count: h.count as u64,
            bases: offset + h.bases_offset(),
            base_count: h.bases as u64,
        })
    }

    /// Entry `i` of a locator (`None` past the end, or for a table, which is keyed by hash).
    pub fn entry(&self, i: u64) -> Result<Option<LocatorEntry>> {
        match self {
            Self::Table(_) => Ok(None),
            Self::Locator {
                path,
                file,
                entries,
                count,
                ..
            } => {
                if i >= *count {
                    return Ok(None);
                }
                let mut b = [0u8; LOCATOR_ENTRY_LEN];
                read_exact_at(file, &mut b, entries + i * LOCATOR_ENTRY_LEN as u64)
                    .map_err(|e| Error::io(path, "read", e))?;
                LocatorEntry::decode(&b)
                    .map(Some)
                    .map_err(|e| Error::format(path, e))
            }
        }
    }

    /// Where chunk-table record `i` (chunk `hash` of `ulen` bytes) is stored; `Ok(None)`
    /// when a table does not hold the chunk.
    pub fn lookup(&self, i: u64, hash: &[u8; 32], ulen: u32) -> Result<Option<ChunkEntry>> {
        match self {
            Self::Table(t) => Ok(table_lookup(t, hash)),
            Self::Locator { .. } => Ok(self.entry(i)?.map(|e| e.to_index(ulen))),
        }
    }

    /// Where base chunk `hash` is stored: from the table, or by a binary search of the
    /// locator's base table. `Ok(None)` when neither knows it. The length in a base entry
    /// found in a locator is 0: the record header says it.
    pub fn base(&self, hash: &[u8; 32]) -> Result<Option<ChunkEntry>> {
        if let Self::Table(t) = self {
            return Ok(table_lookup(t, hash));
        }
        let (mut lo, mut hi) = (0, self.base_count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let Some(b) = self.base_entry_at(mid)? else {
                break;
            };
            match b.hash.cmp(hash) {
                std::cmp::Ordering::Equal => return Ok(Some(b.entry.to_index(0))),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// The hashes of every base chunk a locator lists (none for a table).
    pub fn base_hashes(&self) -> Result<Vec<[u8; 32]>> {
        self.first_base_hashes(u64::MAX)
    }

    /// The hashes of the first `n` base chunks a locator lists (none for a table).
    pub fn first_base_hashes(&self, n: u64) -> Result<Vec<[u8; 32]>> {
        (0..self.base_count().min(n))
            .filter_map(|k| self.base_entry_at(k).transpose())
            .map(|b| Ok(b?.hash))
            .collect()
    }

    /// Where base chunk `k` of the locator's base table is stored (`None` past its end, or
    /// for a table); its length is the record header's to say.
    pub fn base_at(&self, k: u64) -> Result<Option<ChunkEntry>> {
        Ok(self.base_entry_at(k)?.map(|b| b.entry.to_index(0)))
    }

    /// Base chunk `k` of the locator's base table, its hash with where it is stored.
    pub fn base_with_hash_at(&self, k: u64) -> Result<Option<([u8; 32], ChunkEntry)>> {
        Ok(self
            .base_entry_at(k)?
            .map(|b| (b.hash, b.entry.to_index(0))))
    }

    /// Entry `k` of a locator's base table (`None` past its end, or for a table).
    fn base_entry_at(&self, k: u64) -> Result<Option<BaseEntry>> {
        match self {
            Self::Locator {
                path,
                file,
                bases,
                base_count,
                ..
            } if k < *base_count => base_entry(path, file, *bases, k).map(Some),
            _ => Ok(None),
        }
    }

    /// How many base chunks the locator lists.
    pub fn base_count(&self) -> u64 {
        match self {
            Self::Table(_) => 0,
            Self::Locator { base_count, .. } => *base_count,
        }
    }
}

fn table_lookup(t: &[([u8; 32], ChunkEntry)], hash: &[u8; 32]) -> Option<ChunkEntry> {
    t.binary_search_by(|(h, _)| h.cmp(hash))
        .ok()
        .map(|k| t[k].1)
}

/// Entry `k` of the base table at `bases` in `file`.
fn base_entry(path: &Path, file: &File, bases: u64, k: u64) -> Result<BaseEntry> {
    let mut b = [0u8; BASE_ENTRY_LEN];
    read_exact_at(file, &mut b, bases + k * BASE_ENTRY_LEN as u64)
        .map_err(|e| Error::io(path, "read", e))?;
    BaseEntry::decode(&b).map_err(|e| Error::format(path, e))
}
