//! The redb index: table definitions (shared with the builder) and read-only lookups.
//!
//! The index is an untrusted locator: whatever it says, every chunk is checked against the
//! signed manifest's hash after decoding.

use crate::error::{Error, Result};
use redb::{ReadOnlyDatabase, ReadableDatabase, TableDefinition};
use romlib_format::index::{
    ChunkEntry, IndexSum, CHUNKS_TABLE, DELTAS_TABLE, GAMES_TABLE, META_TABLE, PACKS_TABLE,
    SKETCHES_TABLE,
};
use romlib_format::index::{INDEX_SUM_LINE_LEN, MAX_INDEX_SUMS};
use romlib_format::layout::INDEX_SUM_FILE;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Chunk hash -> [`ChunkEntry`] bytes.
pub const CHUNKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new(CHUNKS_TABLE);
/// Pack id -> `PackInfo` bytes.
pub const PACKS: TableDefinition<u32, &[u8]> = TableDefinition::new(PACKS_TABLE);
/// Title id -> BLAKE3 of the chunk table counted in the refcounts.
pub const GAMES: TableDefinition<&str, &[u8; 32]> = TableDefinition::new(GAMES_TABLE);
/// Delta chunk hash -> its base chunk's hash.
pub const DELTAS: TableDefinition<&[u8; 32], &[u8; 32]> = TableDefinition::new(DELTAS_TABLE);
/// Super-feature -> the first stored non-delta chunk that had it.
pub const SKETCHES: TableDefinition<u64, &[u8; 32]> = TableDefinition::new(SKETCHES_TABLE);
/// Library facts.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new(META_TABLE);

/// redb page cache of the device: small and fixed (redb's default is 1 GiB).
pub const DEVICE_CACHE_BYTES: usize = 256 * 1024;

/// A read-only view of `index.db`.
pub struct IndexReader {
    path: PathBuf,
    /// `None` when the library has no chunks table yet (an empty library).
    table: Option<redb::ReadOnlyTable<&'static [u8; 32], &'static [u8]>>,
}

impl std::fmt::Debug for IndexReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexReader")
            .field("path", &self.path)
            .finish()
    }
}

fn index_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Index {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

/// What an index that redb cannot open read-only means to a user.
pub fn open_err(path: &Path, e: redb::DatabaseError) -> Error {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            index_err(path, "in use by a running build; wait for it to finish")
        }
        redb::DatabaseError::RepairAborted => index_err(
            path,
            "left unfinished by an interrupted build of an older romlib; \
             `romlib build` or `romlib rebuild-index` on the library repairs it",
        ),
        other => index_err(path, other),
    }
}

/// Why an index is not the one its builder published (see [`check_sum`]).
pub const DAMAGED: &str = "damaged: its BLAKE3 matches no checksum in index.sum \
    (`romlib rebuild-index` rebuilds it from the packs and manifests)";

/// Checks `index.db` at `path` against the checksums its builder wrote to `index.sum`
/// beside it (SPEC section 5.1): a damaged index is an error here, before redb reads a page
/// of it (redb may panic on a corrupt page). Reads the file once, in 64 KiB blocks. A
/// library written before `index.sum` existed has none and is not checked.
pub fn check_sum(path: &Path) -> Result<()> {
    let sum_path = path.with_file_name(INDEX_SUM_FILE);
    // A build that publishes a new index between reading the sums and hashing the file
    // makes the first try miss; the second reads the new sums.
    let mut last = None;
    for _ in 0..2 {
        let Some(sums) = read_sums(&sum_path)? else {
            return Ok(());
        };
        let found = file_sum(path)?;
        if sums.contains(&found) {
            return Ok(());
        }
        last = Some(found);
    }
    match last {
        Some(_) => Err(index_err(path, DAMAGED)),
        None => Ok(()),
    }
}

/// The sums listed in `index.sum`, or `None` when there is no such file.
fn read_sums(path: &Path) -> Result<Option<Vec<IndexSum>>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, "open", e)),
    };
    let mut b = Vec::new();
    (&mut f)
        .take((MAX_INDEX_SUMS * INDEX_SUM_LINE_LEN + 1) as u64)
        .read_to_end(&mut b)
        .map_err(|e| Error::io(path, "read", e))?;
    let (sums, n) = IndexSum::decode_all(&b).map_err(|e| Error::format(path, e))?;
    Ok(Some(sums[..n].to_vec()))
}

/// The BLAKE3 and length of the file at `path`.
pub fn file_sum(path: &Path) -> Result<IndexSum> {
    let mut f = crate::fsio::open_existing(path, "index database")?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut len = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, "read", e)),
        };
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok(IndexSum {
        blake3: *h.finalize().as_bytes(),
        len,
    })
}

impl IndexReader {
    /// Opens the index read-only (the library may be on a read-only mount).
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
                what: "index database",
            });
        }
        check_sum(path)?;
        let db: ReadOnlyDatabase = redb::Builder::new()
            .set_cache_size(DEVICE_CACHE_BYTES)
            .open_read_only(path)
            .map_err(|e| open_err(path, e))?;
        let txn = db.begin_read().map_err(|e| index_err(path, e))?;
        let table = match txn.open_table(CHUNKS) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(index_err(path, e)),
        };
        Ok(Self {
            path: path.to_path_buf(),
            table,
        })
    }

    /// Looks a chunk up; `Ok(None)` when the index does not know it.
    pub fn lookup(&self, hash: &[u8; 32]) -> Result<Option<ChunkEntry>> {
        let Some(table) = &self.table else {
            return Ok(None);
        };
        let Some(v) = table.get(hash).map_err(|e| index_err(&self.path, e))? else {
            return Ok(None);
        };
        ChunkEntry::decode(v.value())
            .map(Some)
            .map_err(|e| Error::format(&self.path, e))
    }
}
