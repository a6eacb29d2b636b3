//! The redb index (SPEC section 5): the builder's own database, updated in place by
//! [`super::writer`]; since format version 4 it holds the packs, the games and the list
//! of the chunk index's sorted runs ([`super::runs`]), which hold the chunks, sketches and
//! deltas. Readers never open it: a game's chunks are found through its locator.
//! `romlib verify`, `romlib rebuild-index` and the builder are its only users.

use crate::error::Error;
use redb::TableDefinition;
use romlib_format::index::{
    CHUNKS_TABLE, DELTAS_TABLE, GAMES_TABLE, META_TABLE, PACKS_TABLE, SKETCHES_TABLE,
    SKETCH_PREFIX_LEN, V3_ENTRY_LEN,
};
use std::path::Path;

/// Format version 3's chunk hash -> `ChunkEntry` bytes and a reference count (read only by
/// the upgrade to version 4, which moves it into a sorted run: [`super::runs`]).
pub const CHUNKS: TableDefinition<&[u8; 32], [u8; V3_ENTRY_LEN]> =
    TableDefinition::new(CHUNKS_TABLE);
/// Pack id -> [`romlib_format::index::PackInfo`] bytes.
pub const PACKS: TableDefinition<u32, &[u8]> = TableDefinition::new(PACKS_TABLE);
/// Title id -> BLAKE3 of the chunk table of the manifest published under it.
pub const GAMES: TableDefinition<&str, &[u8; 32]> = TableDefinition::new(GAMES_TABLE);
/// Format version 2 and 3's delta chunk hash -> its base chunk's hash (upgrade only).
pub const DELTAS: TableDefinition<&[u8; 32], &[u8; 32]> = TableDefinition::new(DELTAS_TABLE);
/// Format version 3's super-feature -> the hash prefix of the first stored non-delta chunk
/// that had it (upgrade only).
pub const SKETCHES: TableDefinition<u64, [u8; SKETCH_PREFIX_LEN]> =
    TableDefinition::new(SKETCHES_TABLE);
/// Library facts.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new(META_TABLE);

/// `chunks` as format versions 1 and 2 typed it (variable-width values).
pub(crate) const CHUNKS_BEFORE_V3: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new(CHUNKS_TABLE);
/// `sketches` as format version 2 typed it (whole hashes).
pub(crate) const SKETCHES_BEFORE_V3: TableDefinition<u64, &[u8; 32]> =
    TableDefinition::new(SKETCHES_TABLE);
/// Format version 2's `chunks`, renamed aside for its upgrade.
pub(crate) const CHUNKS_V2: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("chunks.v2");
/// Format version 2's `sketches`, renamed aside for its upgrade.
pub(crate) const SKETCHES_V2: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("sketches.v2");

/// The prefix of `hash` a `sketches` value keeps.
pub fn sketch_value(hash: &[u8; 32]) -> [u8; SKETCH_PREFIX_LEN] {
    let mut v = [0u8; SKETCH_PREFIX_LEN];
    v.copy_from_slice(&hash[..SKETCH_PREFIX_LEN]);
    v
}

/// An error of the index database at `path`.
pub(crate) fn db_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::library(path, format!("index database: {e}"))
}

/// What an index that redb cannot open means to a user.
pub fn open_err(path: &Path, e: redb::DatabaseError) -> Error {
    let problem = match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            "index: in use by a running build; wait for it to finish".to_string()
        }
        redb::DatabaseError::RepairAborted => "index: left unfinished by an interrupted build; \
             `romlib build` or `romlib rebuild-index` on the library repairs it"
            .to_string(),
        other => format!("index: damaged or not an index ({other}); {REBUILD}"),
    };
    Error::library(path, problem)
}

/// Opens `index.db` for reading without writing a byte of it, with every page checked:
/// redb's repair of an index a killed build left open, and its check of every page's
/// checksum (what a damaged index fails), run against [`Overlay`], which keeps redb's
/// writes in memory. A reader that must not trust the index blindly (`romlib verify`,
/// parity) opens it so; the caller holds the library's lock (shared or exclusive), so no
/// build writes meanwhile. Reads the whole file once; memory is the pages redb writes (a
/// few) and its cache.
pub fn open_checked(path: &Path) -> Result<redb::Database, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let overlay = Overlay::new(file).map_err(|e| format!("cannot read: {e}"))?;
    // redb may still panic on a page it meets before its checksum is checked (the file's
    // header): that, too, is damage.
    let opened = std::panic::catch_unwind(move || {
        redb::Builder::new()
            .set_cache_size(8 << 20)
            .set_check_integrity_on_open(true)
            .create_with_backend(overlay)
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(format!("index: damaged ({e}); {REBUILD}")),
        Err(_) => Err(format!("index: damaged; {REBUILD}")),
    }
}

/// What repairs a damaged index.
pub const REBUILD: &str = "`romlib rebuild-index` rebuilds it from the packs and manifests";

/// Size of the blocks [`Overlay`] keeps.
const BLOCK: u64 = 4096;

/// A redb storage backend over a file opened read-only: reads come from the file, writes
/// stay in memory (whole blocks), so redb may repair and check a file it must not change.
#[derive(Debug)]
pub struct Overlay {
    file: std::fs::File,
    state: std::sync::Mutex<OverlayState>,
}

#[derive(Debug)]
struct OverlayState {
    /// The storage's length as redb set it.
    len: u64,
    /// File bytes from here on read as zeros (the storage was shrunk below them).
    zero_from: u64,
    /// Blocks written, by block number.
    blocks: std::collections::HashMap<u64, Box<[u8]>>,
}

impl Overlay {
    /// An overlay of `file`.
    pub fn new(file: std::fs::File) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self {
            file,
            state: std::sync::Mutex::new(OverlayState {
                len,
                zero_from: len,
                blocks: Default::default(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OverlayState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Block `n` as the file gives it (zeros past its end or `zero_from`).
    fn file_block(&self, n: u64, zero_from: u64, out: &mut [u8]) -> std::io::Result<()> {
        out.fill(0);
        let start = n * BLOCK;
        if start < zero_from {
            let take = (zero_from - start).min(BLOCK) as usize;
            read_at(&self.file, &mut out[..take], start)?;
        }
        Ok(())
    }
}

/// Reads as much of `buf` as the file holds at `offset` (the rest stays as it was).
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(file, &mut buf[done..], offset + done as u64)?;
        #[cfg(windows)]
        let n =
            std::os::windows::fs::FileExt::seek_read(file, &mut buf[done..], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(())
}

impl redb::StorageBackend for Overlay {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.lock().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let st = self.lock();
        if offset + out.len() as u64 > st.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the index",
            ));
        }
        let mut block = vec![0u8; BLOCK as usize];
        let mut pos = offset;
        let mut done = 0;
        while done < out.len() {
            let n = pos / BLOCK;
            let within = (pos % BLOCK) as usize;
            let take = (BLOCK as usize - within).min(out.len() - done);
            match st.blocks.get(&n) {
                Some(b) => out[done..done + take].copy_from_slice(&b[within..within + take]),
                None if within == 0 && take == BLOCK as usize && pos + BLOCK <= st.zero_from => {
                    read_at(&self.file, &mut out[done..done + take], pos)?;
                }
                None => {
                    self.file_block(n, st.zero_from, &mut block)?;
                    out[done..done + take].copy_from_slice(&block[within..within + take]);
                }
            }
            done += take;
            pos += take as u64;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let mut st = self.lock();
        if len < st.len {
            st.zero_from = st.zero_from.min(len);
            st.blocks.retain(|n, _| n * BLOCK < len);
            if let Some(b) = st.blocks.get_mut(&(len / BLOCK)) {
                b[(len % BLOCK) as usize..].fill(0);
            }
        }
        st.len = len;
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut st = self.lock();
        let mut pos = offset;
        let mut done = 0;
        while done < data.len() {
            let n = pos / BLOCK;
            let within = (pos % BLOCK) as usize;
            let take = (BLOCK as usize - within).min(data.len() - done);
            if !st.blocks.contains_key(&n) {
                let mut b = vec![0u8; BLOCK as usize].into_boxed_slice();
                self.file_block(n, st.zero_from, &mut b)?;
                st.blocks.insert(n, b);
            }
            let b = st.blocks.get_mut(&n).expect("just inserted");
            b[within..within + take].copy_from_slice(&data[done..done + take]);
            done += take;
            pos += take as u64;
        }
        st.len = st.len.max(offset + data.len() as u64);
        Ok(())
    }
}
