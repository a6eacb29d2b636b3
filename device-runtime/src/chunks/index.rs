//! The redb index: table definitions (shared with the builder) and read-only lookups.
//!
//! The index is an untrusted locator: whatever it says, every chunk is checked against the
//! signed manifest's hash after decoding.

use crate::error::{Error, Result};
use redb::{ReadOnlyDatabase, ReadableDatabase, TableDefinition};
use romlib_format::index::{
    ChunkEntry, CHUNKS_TABLE, DELTAS_TABLE, GAMES_TABLE, META_TABLE, PACKS_TABLE, SKETCHES_TABLE,
};
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

impl IndexReader {
    /// Opens the index read-only (the library may be on a read-only mount).
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
                what: "index database",
            });
        }
        let db: ReadOnlyDatabase = redb::Builder::new()
            .set_cache_size(DEVICE_CACHE_BYTES)
            .open_read_only(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    index_err(path, "in use by a running build; wait for it to finish")
                }
                other => index_err(path, other),
            })?;
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
