//! The library on disk as the builder sees it: the lock, the index, new pack files, and
//! recovery of the packs a killed build left behind (crash-safety rules 1 and 2 of
//! [`super`]).
//!
//! `index.db` is the builder's own database, updated in place (rule 4): nothing is copied,
//! compacted or hashed when a build publishes, so a build costs what it adds. Its commits
//! are durable (one per sealed pack and one per batch of manifests, see
//! [`LibraryWriter::commit`]), and redb's copy-on-write commits make a build killed at any
//! moment roll back to the last durable one. Every commit names only sealed packs, so even
//! a rolled-back commit leaves nothing dangling: the packs it named are adopted by the next
//! run. Readers never open the index: they find a game's chunks through its locator.

use super::pack_writer::PackWriter;
use crate::error::{Error, Result};
use crate::fsio::{create_dir, rename_synced, sync_dir};
use crate::library::index::{
    open_err, sketch_value, CHUNKS, CHUNKS_BEFORE_V3, CHUNKS_V2, DELTAS, GAMES, META, PACKS,
    SKETCHES, SKETCHES_BEFORE_V3, SKETCHES_V2,
};
use crate::library::runs::{self, ChunkIndex};
use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, WriteTransaction};
use romlib_device::Library;
use romlib_format::index::{
    ChunkEntry, PackInfo, ENTRY_LEN, LIBRARY_FORMAT_FLAT, LIBRARY_FORMAT_VERSION, META_FORMAT,
    META_RUNS, V3_ENTRY_LEN,
};
use romlib_format::layout::{GamesLayout, INDEX_NEW_FILE, INDEX_SUM_FILE, LOCK_FILE, RUNS_DIR};
use romlib_format::pack::{Method, RecordHeader};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// `meta` key: the highest pack id a prune saw before it deleted packs (u32), so that no id
/// is used again.
const META_LAST_PACK: &str = "last_pack";

/// `meta` key: the layout of `games/` (`flat` or `sharded`; absent: flat).
const META_GAMES_LAYOUT: &str = "games_layout";

/// The end of the name of a pack being written: `.pack-NNNN.pkg.partial`.
const PARTIAL_SUFFIX: &str = ".partial";

/// redb cache of the builder: the bound on what the index costs in memory, whatever the
/// library's size.
const BUILDER_CACHE_BYTES: usize = 64 << 20;

pub(crate) use super::index::db_err;

/// The index, opened read-only until the first write is needed, so that a run with
/// nothing new leaves `index.db` byte-for-byte untouched.
enum Db {
    ReadOnly(ReadOnlyDatabase),
    Writable(Database),
}

/// An open, locked library.
pub struct LibraryWriter {
    lib: Library,
    _lock: File,
    db: Option<Db>,
    /// The chunk index's runs and what this run added to them (loaded with the index).
    chunks: Option<ChunkIndex>,
    /// `romlib rebuild-index`: the index is built whole in `.index.db.new` and replaces
    /// `index.db` by a rename when published.
    fresh: bool,
    next_pack_id: u32,
    /// What recovery found and repaired when the library was opened.
    pub recovered: Vec<String>,
    /// Titles whose manifest or locator this run published or removed (the signed
    /// snapshot hashes their files anew).
    touched: std::collections::BTreeSet<String>,
}

impl LibraryWriter {
    /// Opens (creating if needed) the library at `root`, takes its lock and recovers the
    /// packs and the index of an interrupted earlier run. A command that publishes opens
    /// the library through [`super::recovery::open_and_recover`], which also finishes the
    /// manifests and removals such a run left.
    pub fn open(root: &Path) -> Result<Self> {
        let mut w = Self::lock(root)?;
        let index = w.index_path();
        if index.symlink_metadata().is_ok() {
            let file = open_nofollow(&index, false)?;
            let backend =
                redb::backends::FileBackend::new(file).map_err(|e| open_err(&index, e))?;
            match redb::Builder::new()
                .set_cache_size(BUILDER_CACHE_BYTES)
                .open_read_only_with_backend(backend)
            {
                Ok(db) => w.db = Some(Db::ReadOnly(db)),
                // An index a build left open when it was killed needs redb's repair (its
                // last durable commit is kept), which needs writing.
                Err(redb::DatabaseError::RepairAborted) => {
                    w.writable()?;
                    w.recovered
                        .push("repaired an index left open by an interrupted build".into());
                }
                Err(e) => return Err(open_err(&index, e)),
            }
        } else {
            w.writable()?;
        }
        w.check_meta()?;
        let ids = w.run_list()?;
        w.chunks = Some(ChunkIndex::open(&w.runs_dir(), &ids, true)?);
        w.recover_packs()?;
        let layout = w.recorded_games_layout()?;
        w.lib = w.lib.clone().with_games_layout(layout);
        // A conversion a crash interrupted is finished.
        let placed = super::games_layout::place_games(&w.lib)?;
        if placed.moved > 0 {
            w.recovered.push(format!(
                "moved {} game files to the {} layout of games/",
                placed.moved,
                layout.name()
            ));
        }
        Ok(w)
    }

    /// Opens the existing library at `root` to rebuild its index: takes the lock and starts
    /// an empty index, which replaces the published one (damaged or not) only when
    /// [`LibraryWriter::publish`]ed.
    pub fn open_empty(root: &Path) -> Result<Self> {
        let lib = Library::new(root);
        if !lib.packs_dir().is_dir() || !lib.games_dir().is_dir() {
            return Err(Error::library(
                root,
                "not a library folder (it needs packs/ and games/)",
            ));
        }
        let mut w = Self::lock(root)?;
        let layout = super::games_layout::detect(&w.lib)?;
        w.lib = w.lib.clone().with_games_layout(layout);
        w.fresh = true;
        w.db = Some(Db::Writable(open_writable(&w.new_index_path())?));
        // The published index's runs stay until the new index replaces it; new runs are
        // numbered after them.
        w.chunks = Some(ChunkIndex::open(&w.runs_dir(), &[], false)?);
        Ok(w)
    }

    /// Takes the lock of the existing library at `root` for a command that changes no index
    /// (`romlib parity`, `romlib repair`): nothing else is opened or recovered.
    pub(crate) fn lock_only(root: &Path) -> Result<Self> {
        Self::lock(root)
    }

    /// Creates the library's folders where missing, takes its lock and discards the
    /// unpublished index an interrupted `rebuild-index` (or an older romlib's build) left.
    fn lock(root: &Path) -> Result<Self> {
        if root.exists() && !root.is_dir() {
            return Err(Error::library(
                root,
                "is not a folder: a library is a folder (created if absent)",
            ));
        }
        let lib = Library::new(root);
        for d in [
            lib.root().to_path_buf(),
            lib.packs_dir(),
            lib.games_dir(),
            lib.keys_dir(),
        ] {
            if !d.is_dir() {
                create_dir(&d)?;
            }
        }
        // An exclusive lock on it is held for the whole run, so a second builder is refused.
        let lock_path = lib.root().join(LOCK_FILE);
        let lock = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, "open lock file", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: lock_path }),
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, "lock", e)),
        }
        let mut w = Self {
            lib,
            _lock: lock,
            db: None,
            chunks: None,
            fresh: false,
            next_pack_id: 1,
            recovered: Vec::new(),
            touched: Default::default(),
        };
        let new = w.new_index_path();
        if new.exists() {
            fs::remove_file(&new).map_err(|e| Error::io(&new, "remove", e))?;
            w.recovered
                .push("discarded the unpublished index of an interrupted run".into());
        }
        Ok(w)
    }

    /// The layout of `games/` the index records (flat when it records none).
    fn recorded_games_layout(&self) -> Result<GamesLayout> {
        let path = self.index_path();
        let txn = self.begin_read()?;
        let meta = txn.open_table(META).map_err(|e| db_err(&path, e))?;
        let v = meta.get(META_GAMES_LAYOUT).map_err(|e| db_err(&path, e))?;
        match v {
            None => Ok(GamesLayout::Flat),
            Some(v) => std::str::from_utf8(v.value())
                .ok()
                .and_then(GamesLayout::parse)
                .ok_or_else(|| Error::library(&path, "unknown layout of games/ recorded")),
        }
    }

    /// Records `layout` as the layout of `games/` (durably; in a new index, with it), then
    /// moves every game's files there. Returns how many files moved.
    pub fn set_games_layout(&mut self, layout: GamesLayout) -> Result<u64> {
        let path = self.index_path();
        if self.lib.games_layout() != layout || self.fresh {
            let txn = self.begin()?;
            {
                let mut meta = txn.open_table(META).map_err(|e| db_err(&path, e))?;
                meta.insert(META_GAMES_LAYOUT, layout.name().as_bytes())
                    .map_err(|e| db_err(&path, e))?;
                // Builders that predate the sharded layout refuse its format version.
                let version = match layout {
                    GamesLayout::Flat => LIBRARY_FORMAT_FLAT,
                    GamesLayout::Sharded => LIBRARY_FORMAT_VERSION,
                };
                meta.insert(META_FORMAT, version.to_le_bytes().as_slice())
                    .map_err(|e| db_err(&path, e))?;
            }
            if self.fresh {
                self.commit(txn)?;
            } else {
                self.commit_durable(txn)?;
            }
            self.lib = self.lib.clone().with_games_layout(layout);
        }
        Ok(super::games_layout::place_games(&self.lib)?.moved)
    }

    /// The library's paths.
    pub fn library(&self) -> &Library {
        &self.lib
    }

    /// Notes that this run published or removed `title`'s manifest or locator.
    pub(crate) fn touch(&mut self, title: &str) {
        self.touched.insert(title.to_string());
    }

    /// The titles [`LibraryWriter::touch`] noted.
    pub fn touched(&self) -> &std::collections::BTreeSet<String> {
        &self.touched
    }

    /// A read transaction on the index.
    pub(crate) fn begin_read(&self) -> Result<redb::ReadTransaction> {
        let r = match self.db.as_ref() {
            Some(Db::ReadOnly(d)) => d.begin_read(),
            Some(Db::Writable(d)) => d.begin_read(),
            None => {
                return Err(Error::library(
                    self.index_path(),
                    "the index was closed by a failed publish",
                ))
            }
        };
        r.map_err(|e| db_err(&self.index_path(), e))
    }

    /// The chunk index.
    pub(crate) fn chunks(&self) -> Result<&ChunkIndex> {
        self.chunks
            .as_ref()
            .ok_or_else(|| Error::library(self.index_path(), "the index is not open"))
    }

    /// The chunk index, to add to (what is added is written by the next commit).
    pub(crate) fn chunks_mut(&mut self) -> Result<&mut ChunkIndex> {
        let path = self.index_path();
        self.chunks
            .as_mut()
            .ok_or_else(|| Error::library(path, "the index is not open"))
    }

    /// The folder of the chunk index's runs.
    fn runs_dir(&self) -> PathBuf {
        self.lib.root().join(RUNS_DIR)
    }

    /// The runs the index names, oldest first.
    fn run_list(&self) -> Result<Vec<u64>> {
        let path = self.index_path();
        let txn = self.begin_read()?;
        let meta = txn.open_table(META).map_err(|e| db_err(&path, e))?;
        let v = meta.get(META_RUNS).map_err(|e| db_err(&path, e))?;
        match v {
            None => Ok(Vec::new()),
            Some(v) => runs::decode_list(v.value())
                .ok_or_else(|| Error::library(&path, "index: its list of runs is damaged")),
        }
    }

    /// The index opened for writing, in place, on the first call (see the module doc).
    fn writable(&mut self) -> Result<&Database> {
        if !matches!(self.db, Some(Db::Writable(_))) {
            self.db = None;
            // index.sum (SPEC section 5.1) held checksums of an index published by rename;
            // an index written in place has none, and a stale one would make a reader of
            // an older romlib call the index damaged.
            let sums = self.lib.root().join(INDEX_SUM_FILE);
            if sums.exists() {
                fs::remove_file(&sums).map_err(|e| Error::io(&sums, "remove", e))?;
                sync_dir(self.lib.root())?;
            }
            self.db = Some(Db::Writable(open_writable(&self.index_path())?));
        }
        match self.db.as_ref() {
            Some(Db::Writable(d)) => Ok(d),
            _ => unreachable!("opened writable above"),
        }
    }

    fn index_path(&self) -> PathBuf {
        self.lib.index_path()
    }

    fn new_index_path(&self) -> PathBuf {
        self.lib.root().join(INDEX_NEW_FILE)
    }

    /// Makes what the run committed so far durable: one durable commit, which persists
    /// every commit before it. A no-op when the run wrote nothing: that run changes no
    /// file. No transaction may be open. For `rebuild-index`, the new index is compacted,
    /// closed, fsynced and renamed over `index.db`.
    pub(crate) fn publish(&mut self) -> Result<()> {
        if !matches!(self.db, Some(Db::Writable(_))) {
            return Ok(());
        }
        if !self.fresh {
            let txn = self.begin()?;
            return self.commit_durable(txn);
        }
        let index = self.index_path();
        let new = self.new_index_path();
        let Some(Db::Writable(mut d)) = self.db.take() else {
            unreachable!("checked above");
        };
        // Each pass moves pages down; a few passes reach the minimum.
        for _ in 0..4 {
            if !d.compact().map_err(|e| db_err(&index, e))? {
                break;
            }
        }
        d.close().map_err(|e| db_err(&index, e))?;
        // Opened for writing: Windows flushes a file only through a handle that may write
        // (FlushFileBuffers on a read-only handle is "access denied").
        std::fs::OpenOptions::new()
            .write(true)
            .open(&new)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&new, "fsync", e))?;
        let sums = self.lib.root().join(INDEX_SUM_FILE);
        if sums.exists() {
            fs::remove_file(&sums).map_err(|e| Error::io(&sums, "remove", e))?;
        }
        rename_synced(&new, &index)?;
        self.fresh = false;
        self.db = Some(Db::Writable(open_writable(&index)?));
        // The runs of the index just replaced.
        self.chunks()?.drop_superseded()?;
        Ok(())
    }

    fn check_meta(&mut self) -> Result<()> {
        let path = self.index_path();
        let found = {
            let txn = self.begin_read()?;
            match txn.open_table(META) {
                Ok(meta) => meta
                    .get(META_FORMAT)
                    .map_err(|e| db_err(&path, e))?
                    .map(|v| v.value().to_vec()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(db_err(&path, e)),
            }
        };
        let version = found.as_deref().map(|v| match <[u8; 4]>::try_from(v) {
            Ok(b) => u32::from_le_bytes(b),
            Err(_) => u32::MAX,
        });
        match version {
            Some(LIBRARY_FORMAT_FLAT | LIBRARY_FORMAT_VERSION) => Ok(()),
            // A new index: the small tables and an empty list of runs.
            None => {
                let txn = self.begin()?;
                {
                    let mut meta = txn.open_table(META).map_err(|e| db_err(&path, e))?;
                    meta.insert(META_FORMAT, LIBRARY_FORMAT_FLAT.to_le_bytes().as_slice())
                        .map_err(|e| db_err(&path, e))?;
                    meta.insert(META_RUNS, [].as_slice())
                        .map_err(|e| db_err(&path, e))?;
                    txn.open_table(PACKS).map_err(|e| db_err(&path, e))?;
                    txn.open_table(GAMES).map_err(|e| db_err(&path, e))?;
                }
                self.commit_tables(txn)
            }
            // An index from before version 3 is first brought to version 3's tables in one
            // transaction (a crash leaves it as it was, and the next run starts again): its
            // chunk entries are rewritten at their fixed width, and its sketches keep a
            // hash prefix. Version 1 is version 2 without deltas: the two tables are
            // added, and every stored chunk is sketched so that new chunks find bases
            // among the old ones. Then version 3's tables become one sorted run.
            Some(v @ 1..=3) => {
                if v < 3 {
                    let txn = self.begin()?;
                    upgrade_v2_tables(&txn, &path, v == 2)?;
                    {
                        let packs = txn.open_table(PACKS).map_err(|e| db_err(&path, e))?;
                        txn.open_table(GAMES).map_err(|e| db_err(&path, e))?;
                        txn.open_table(DELTAS).map_err(|e| db_err(&path, e))?;
                        let mut sketches =
                            txn.open_table(SKETCHES).map_err(|e| db_err(&path, e))?;
                        if v == 1 {
                            let mut ids = Vec::new();
                            for row in packs.iter().map_err(|e| db_err(&path, e))? {
                                ids.push(row.map_err(|e| db_err(&path, e))?.0.value());
                            }
                            sketch_packs(&self.lib, &ids, &mut sketches)?;
                        }
                    }
                    self.commit_tables(txn)?;
                }
                self.upgrade_v3_to_runs()?;
                self.recovered.push(format!(
                    "upgraded the index from format version {v} to {LIBRARY_FORMAT_FLAT}"
                ));
                Ok(())
            }
            Some(v) => Err(Error::library(
                &path,
                format!(
                    "library format version {v} is newer than this romlib supports \
                     ({LIBRARY_FORMAT_VERSION}): update romlib"
                ),
            )),
        }
    }

    /// Moves version 3's `chunks`, `sketches` and `deltas` tables (each read in key
    /// order) into one sorted run, and deletes them, in one durable commit: a crash
    /// before it leaves version 3 as it was (the run, named nowhere, is deleted next
    /// time). Reference counts are dropped: liveness is counted from the manifests.
    fn upgrade_v3_to_runs(&mut self) -> Result<()> {
        let path = self.index_path();
        let mut ix = ChunkIndex::open(&self.runs_dir(), &[], true)?;
        let txn = self.begin()?;
        {
            let err = |e: redb::TableError| db_err(&path, e);
            let serr = |e: redb::StorageError| db_err(&path, e);
            let chunks = txn.open_table(CHUNKS).map_err(err)?;
            let sketches = txn.open_table(SKETCHES).map_err(err)?;
            let deltas = txn.open_table(DELTAS).map_err(err)?;
            ix.write_sorted(&mut |s, push| {
                match s {
                    runs::SECTION_CHUNKS => {
                        for row in chunks.iter().map_err(serr)? {
                            let (k, v) = row.map_err(serr)?;
                            let e = ChunkEntry::decode(&v.value()).map_err(|e| {
                                Error::library(&path, format!("upgrading the index: {e}"))
                            })?;
                            push(&ChunkIndex::encode_chunk_row(k.value(), &e))?;
                        }
                    }
                    runs::SECTION_SKETCHES => {
                        for row in sketches.iter().map_err(serr)? {
                            let (k, v) = row.map_err(serr)?;
                            push(&[&k.value().to_be_bytes()[..], &v.value()[..]].concat())?;
                        }
                    }
                    _ => {
                        for row in deltas.iter().map_err(serr)? {
                            let (k, v) = row.map_err(serr)?;
                            push(&[&k.value()[..], &v.value()[..]].concat())?;
                        }
                    }
                }
                Ok(())
            })?;
        }
        txn.delete_table(CHUNKS).map_err(|e| db_err(&path, e))?;
        txn.delete_table(SKETCHES).map_err(|e| db_err(&path, e))?;
        txn.delete_table(DELTAS).map_err(|e| db_err(&path, e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| db_err(&path, e))?;
            meta.insert(META_FORMAT, LIBRARY_FORMAT_FLAT.to_le_bytes().as_slice())
                .map_err(|e| db_err(&path, e))?;
            meta.insert(META_RUNS, runs::encode_list(&ix.ids()).as_slice())
                .map_err(|e| db_err(&path, e))?;
        }
        self.commit_tables(txn)
    }

    /// Deletes `.partial` packs, adopts sealed packs the index does not list, and checks
    /// that every listed pack exists.
    fn recover_packs(&mut self) -> Result<()> {
        let dir = self.lib.packs_dir();
        let mut on_disk = BTreeSet::new();
        for e in fs::read_dir(&dir).map_err(|e| Error::io(&dir, "read folder", e))? {
            let e = e.map_err(|e| Error::io(&dir, "read folder", e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".pack-") && name.ends_with(PARTIAL_SUFFIX) {
                fs::remove_file(e.path()).map_err(|err| Error::io(e.path(), "remove", err))?;
                self.recovered
                    .push(format!("removed unfinished pack {name}"));
            } else if let Some(id) = romlib_format::layout::parse_pack_file_name(&name) {
                on_disk.insert(id);
            }
        }
        let path = self.index_path();
        let listed: BTreeSet<u32> = {
            let txn = self.begin_read()?;
            let t = txn.open_table(PACKS).map_err(|e| db_err(&path, e))?;
            let mut s = BTreeSet::new();
            for r in t.iter().map_err(|e| db_err(&path, e))? {
                let (k, _) = r.map_err(|e| db_err(&path, e))?;
                s.insert(k.value());
            }
            s
        };
        if let Some(missing) = listed.difference(&on_disk).next() {
            return Err(Error::library(
                self.lib.pack_path(*missing),
                "pack listed in the index is missing; restore it from a copy of the library",
            ));
        }
        for id in on_disk.difference(&listed).copied().collect::<Vec<_>>() {
            self.adopt_pack(id)?;
            self.recovered
                .push(format!("indexed pack {id} left by an interrupted build"));
        }
        // A pack id is never used twice, not even after a prune deleted the highest pack
        // (a copy of the library, a bucket or a device's cache may still know it).
        let deleted = {
            let txn = self.begin_read()?;
            let meta = txn.open_table(META).map_err(|e| db_err(&path, e))?;
            let v = meta.get(META_LAST_PACK).map_err(|e| db_err(&path, e))?;
            v.and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
                .map_or(0, u32::from_le_bytes)
        };
        self.next_pack_id = on_disk
            .iter()
            .chain(listed.iter())
            .chain(std::iter::once(&deleted))
            .max()
            .map_or(1, |m| m.saturating_add(1));
        Ok(())
    }

    /// Verifies a sealed pack the index does not know and indexes its records.
    fn adopt_pack(&mut self, id: u32) -> Result<()> {
        let lib = self.lib.clone();
        let txn = self.begin()?;
        let chunks = self.chunks_mut()?;
        index_pack(&lib, &txn, chunks, id, unix_now(), &mut Default::default())?;
        self.commit(txn)
    }

    /// Begins an index write transaction, to be ended by [`LibraryWriter::commit`] (or
    /// [`LibraryWriter::commit_durable`]).
    pub(crate) fn begin(&mut self) -> Result<WriteTransaction> {
        let path = self.index_path();
        let mut txn = self
            .writable()?
            .begin_write()
            .map_err(|e| db_err(&path, e))?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| db_err(&path, e))?;
        Ok(txn)
    }

    /// Commits an index write transaction: durably when the index is written in place.
    /// redb reuses the pages a commit frees only once a durable commit follows, so a build
    /// that committed each sealed pack without durability grew the file by a copy of every
    /// page it touched per pack (with random keys, most of the index): durable commits
    /// cost two fsyncs per pack and keep the file 15% smaller (SPEC section 5.2). The
    /// fresh index of `rebuild-index` is compacted and fsynced whole when published.
    pub(crate) fn commit(&mut self, txn: WriteTransaction) -> Result<()> {
        if !self.fresh {
            return self.commit_durable(txn);
        }
        self.name_runs(&txn)?;
        txn.commit().map_err(|e| db_err(&self.index_path(), e))?;
        self.chunks_mut()?.drop_merged()
    }

    /// Commits an index write transaction durably, with every commit before it (two
    /// fsyncs): what must hold before a file that depends on it is renamed into place.
    /// What this run added to the chunk index is written as a run first, and the commit
    /// names it.
    pub(crate) fn commit_durable(&mut self, txn: WriteTransaction) -> Result<()> {
        self.name_runs(&txn)?;
        self.commit_tables(txn)?;
        self.chunks_mut()?.drop_merged()
    }

    /// Commits `txn` durably as it is.
    fn commit_tables(&self, mut txn: WriteTransaction) -> Result<()> {
        let path = self.index_path();
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| db_err(&path, e))?;
        txn.commit().map_err(|e| db_err(&path, e))
    }

    /// Writes what this run added to the chunk index as a run (merging as due), and
    /// names the runs in `txn`.
    fn name_runs(&mut self, txn: &WriteTransaction) -> Result<()> {
        let path = self.index_path();
        let Some(ids) = self.chunks_mut()?.write()? else {
            return Ok(());
        };
        let mut meta = txn.open_table(META).map_err(|e| db_err(&path, e))?;
        meta.insert(META_RUNS, runs::encode_list(&ids).as_slice())
            .map_err(|e| db_err(&path, e))?;
        Ok(())
    }

    /// Unlists packs `gone` in one durable commit, with the chunk index rewritten as one
    /// run that keeps nothing in them (`romlib prune`, once everything live in them has a
    /// copy elsewhere). The files stay until the caller deletes them.
    pub(crate) fn unlist_packs(&mut self, gone: &BTreeSet<u32>) -> Result<()> {
        let path = self.index_path();
        let txn = self.begin()?;
        let ids = self.chunks_mut()?.compact(&|p| !gone.contains(&p))?;
        {
            let mut packs = txn.open_table(PACKS).map_err(|e| db_err(&path, e))?;
            for id in gone {
                packs.remove(id).map_err(|e| db_err(&path, e))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| db_err(&path, e))?;
            meta.insert(META_RUNS, runs::encode_list(&ids).as_slice())
                .map_err(|e| db_err(&path, e))?;
            let last = self.next_pack_id.saturating_sub(1);
            meta.insert(META_LAST_PACK, last.to_le_bytes().as_slice())
                .map_err(|e| db_err(&path, e))?;
        }
        self.commit_tables(txn)?;
        self.chunks_mut()?.drop_merged()
    }

    /// Starts the next pack file.
    pub(crate) fn new_pack(&mut self, dict_id: u32) -> Result<PackFile> {
        let id = self.next_pack_id;
        self.next_pack_id = id
            .checked_add(1)
            .ok_or_else(|| Error::library(self.lib.packs_dir(), "pack ids exhausted"))?;
        PackFile::create(self.lib.pack_path(id), id, dict_id)
    }
}

impl Drop for LibraryWriter {
    /// A `rebuild-index` that fails leaves nothing of its unpublished index behind (the
    /// next open would delete it anyway). An index written in place is closed by redb:
    /// what was committed stays, and names only sealed packs.
    fn drop(&mut self) {
        if let Some(Db::Writable(d)) = self.db.take() {
            drop(d);
            if self.fresh {
                let _ = fs::remove_file(self.new_index_path());
            }
        }
    }
}

/// Opens the library's index file `path` (created if `write`), never through a symbolic
/// link: the library folder may be written by someone else, and the builder writes the
/// index in place.
fn open_nofollow(path: &Path, write: bool) -> Result<File> {
    let mut o = fs::OpenOptions::new();
    o.read(true);
    if write {
        o.write(true).create(true).truncate(false);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut o, nix::libc::O_NOFOLLOW);
    #[cfg(windows)]
    if path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(Error::library(
            path,
            "is a symbolic link; the index must be a file",
        ));
    }
    // On Windows another program (a scanner, a backup tool) may hold the index open
    // without sharing writes for a while: the open is retried as a rename is.
    crate::fsio::patiently(|| o.open(path)).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(nix::libc::ELOOP) {
            return Error::library(path, "is a symbolic link; the index must be a file");
        }
        Error::io(path, "open", e)
    })
}

fn open_writable(index: &Path) -> Result<Database> {
    let file = open_nofollow(index, true)?;
    let backend = redb::backends::FileBackend::new(file).map_err(|e| open_err(index, e))?;
    redb::Builder::new()
        .set_cache_size(BUILDER_CACHE_BYTES)
        .create_with_backend(backend)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Locked {
                path: index.to_path_buf(),
            },
            other => open_err(index, other),
        })
}

/// Takes the library's lock shared, for a reader of the index (`romlib verify`): no build
/// runs while it is held. A library without a lock file (never built here, or on a
/// read-only mount) has no builder to exclude.
pub(crate) fn lock_shared(lib: &Library) -> Result<Option<File>> {
    let path = lib.root().join(LOCK_FILE);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, "open lock file", e)),
    };
    match f.try_lock_shared() {
        Ok(()) => Ok(Some(f)),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Locked { path }),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(&path, "lock", e)),
    }
}

/// Seconds since the Unix epoch (the index's only clock).
pub fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(u32::MAX as u64) as u32)
}

/// A pack being written into the library's `packs/` folder, as
/// `packs/.pack-NNNN.pkg.partial` until it is sealed.
pub struct PackFile {
    final_path: PathBuf,
    partial: PathBuf,
    pack: PackWriter<BufWriter<File>>,
}

impl PackFile {
    fn create(final_path: PathBuf, id: u32, dict_id: u32) -> Result<Self> {
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partial = final_path.with_file_name(format!(".{name}{PARTIAL_SUFFIX}"));
        let file = File::create(&partial).map_err(|e| Error::io(&partial, "create", e))?;
        let pack = PackWriter::new(BufWriter::with_capacity(1 << 20, file), id, dict_id)
            .map_err(|e| Error::io(&partial, "write", e))?;
        Ok(Self {
            final_path,
            partial,
            pack,
        })
    }

    /// The pack's id.
    pub fn id(&self) -> u32 {
        self.pack.id()
    }

    /// Whether a record of `rec_len` bytes must go to a new pack instead (see
    /// [`PackWriter::must_roll_over`]).
    pub fn must_roll_over(&self, rec_len: u64, pack_size: u64) -> bool {
        self.pack.must_roll_over(rec_len, pack_size)
    }

    /// Appends one record; returns its offset.
    pub fn append(&mut self, rec: &RecordHeader, payload: &[u8]) -> Result<u64> {
        self.pack
            .append(rec, payload)
            .map_err(|e| Error::io(&self.partial, "write", e))
    }

    /// The dictionary id its records use (0: none).
    pub fn dict_id(&self) -> u32 {
        self.pack.dict_id()
    }

    /// Reads back `buf.len()` bytes written at `offset` (a record of this unsealed pack).
    pub fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        use std::io::Write;
        self.pack
            .output_mut()
            .flush()
            .map_err(|e| Error::io(&self.partial, "write", e))?;
        let f = File::open(&self.partial).map_err(|e| Error::io(&self.partial, "open", e))?;
        romlib_device::fsio::read_exact_at(&f, buf, offset)
            .map_err(|e| Error::io(&self.partial, "read", e))
    }

    /// Writes the footer, fsyncs and renames the pack to its final name.
    pub fn seal(self) -> Result<PackInfo> {
        let (out, info) = self
            .pack
            .finish()
            .map_err(|e| Error::io(&self.partial, "write", e))?;
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&self.partial, "write", e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io(&self.partial, "fsync", e))?;
        drop(file);
        rename_synced(&self.partial, &self.final_path)?;
        Ok(info)
    }

    /// Deletes the unfinished file.
    pub fn discard(self) {
        let partial = self.partial.clone();
        drop(self.pack);
        let _ = fs::remove_file(&partial);
        if let Some(dir) = partial.parent() {
            let _ = sync_dir(dir);
        }
    }
}

/// Indexes sealed pack `id` in `txn` (SPEC section 5): the pack's info, an entry for every
/// record whose chunk the index does not know yet (stored at `stored_at`, counted by no
/// manifest), the base of every delta, and the sketches of its whole chunks. Nothing is
/// written unless the whole pack checks out (footer checksum, every record header, every
/// delta's base field, every whole chunk decodes); returns its record count.
pub(crate) fn index_pack(
    lib: &Library,
    txn: &WriteTransaction,
    chunks: &mut ChunkIndex,
    id: u32,
    stored_at: u32,
    dec: &mut crate::zstd_decoder::ZstdDecoder,
) -> Result<u64> {
    let index_path = lib.index_path();
    let path = lib.pack_path(id);
    let mut new: Vec<([u8; 32], ChunkEntry, Option<[u8; 32]>)> = Vec::new();
    let mut sketched: Vec<(u64, [u8; 32])> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let (info, _) = crate::library::pack_scan::scan_pack_with(&path, id, |pos, rec, payload| {
        let known = chunks.get(&rec.hash)?.is_some();
        if known || !seen.insert(rec.hash) {
            return Ok(());
        }
        let base = if rec.method == Method::ZstdDelta {
            let (base, _) = romlib_format::pack::split_delta(&rec.hash, payload)
                .map_err(|e| Error::library(&path, format!("record at offset {pos}: {e}")))?;
            Some(base)
        } else {
            sketch_record(lib, dec, &path, pos, rec, payload, &mut out, &mut |sf| {
                sketched.push((sf, rec.hash));
                Ok(())
            })?;
            None
        };
        let entry = ChunkEntry {
            pack_id: id,
            offset: pos,
            clen: rec.clen,
            ulen: rec.ulen,
            method: rec.method,
            stored_at,
        };
        new.push((rec.hash, entry, base));
        Ok(())
    })?;
    for (hash, entry, base) in new {
        chunks.insert_chunk(hash, entry);
        if let Some(base) = base {
            chunks.insert_delta(hash, base);
        }
    }
    for (sf, hash) in &sketched {
        chunks.insert_sketch(*sf, hash)?;
    }
    let mut packs = txn.open_table(PACKS).map_err(|e| db_err(&index_path, e))?;
    packs
        .insert(id, info.encode().as_slice())
        .map_err(|e| db_err(&index_path, e))?;
    Ok(info.record_count)
}

/// Decodes whole record `rec` (at `pos` of pack `path`) into `out` and hands each of its
/// super-features to `each`.
#[allow(clippy::too_many_arguments)]
fn sketch_record(
    lib: &Library,
    dec: &mut crate::zstd_decoder::ZstdDecoder,
    path: &Path,
    pos: u64,
    rec: &RecordHeader,
    payload: &[u8],
    out: &mut Vec<u8>,
    each: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<()> {
    use romlib_device::chunks::decoder::ChunkDecoder;
    if rec.method == Method::ZstdDict {
        let d = zstd_safe::get_dict_id_from_frame(payload).map_or(0, |i| i.get());
        if !dec.has_dict(d) {
            let bytes = lib.read_dict(d)?;
            dec.load_dict(d, &bytes)
                .map_err(|e| Error::library(lib.dict_path(d), e))?;
        }
    }
    out.resize(rec.ulen as usize, 0);
    dec.decode(rec.method, payload, out)
        .map_err(|e| Error::library(path, format!("record at offset {pos}: {e}")))?;
    for sf in crate::library::sketch::sketch(out).iter().flatten() {
        each(*sf)?;
    }
    Ok(())
}

/// Rewrites a version 1 or 2 index's `chunks` (and, with `sketches`, version 2's
/// `sketches`) in version 3's fixed-width form, in `txn`: each old table is renamed aside,
/// copied entry by entry into the new one, and deleted.
fn upgrade_v2_tables(txn: &WriteTransaction, path: &Path, sketches: bool) -> Result<()> {
    let err = |e: redb::TableError| db_err(path, e);
    let serr = |e: redb::StorageError| db_err(path, e);
    txn.rename_table(CHUNKS_BEFORE_V3, CHUNKS_V2).map_err(err)?;
    {
        let old = txn.open_table(CHUNKS_V2).map_err(err)?;
        let mut new = txn.open_table(CHUNKS).map_err(err)?;
        for row in old.iter().map_err(serr)? {
            let (k, v) = row.map_err(serr)?;
            let e = ChunkEntry::decode_v2(v.value())
                .map_err(|e| Error::library(path, format!("upgrading the index: {e}")))?;
            // Version 3's value: the entry and a reference count, which the move to runs
            // right after drops.
            let mut v3 = [0u8; V3_ENTRY_LEN];
            v3[..ENTRY_LEN].copy_from_slice(&e.encode());
            new.insert(k.value(), v3).map_err(serr)?;
        }
    }
    txn.delete_table(CHUNKS_V2).map_err(err)?;
    if sketches {
        txn.rename_table(SKETCHES_BEFORE_V3, SKETCHES_V2)
            .map_err(err)?;
        {
            let old = txn.open_table(SKETCHES_V2).map_err(err)?;
            let mut new = txn.open_table(SKETCHES).map_err(err)?;
            for row in old.iter().map_err(serr)? {
                let (k, v) = row.map_err(serr)?;
                new.insert(k.value(), sketch_value(v.value()))
                    .map_err(serr)?;
            }
        }
        txn.delete_table(SKETCHES_V2).map_err(err)?;
    }
    Ok(())
}

/// Sketches every whole chunk of packs `ids` (in that order, each pack's records in order:
/// the first chunk with a super-feature keeps it, as in a build) into `sketches`.
fn sketch_packs(
    lib: &Library,
    ids: &[u32],
    sketches: &mut redb::Table<u64, [u8; romlib_format::index::SKETCH_PREFIX_LEN]>,
) -> Result<()> {
    let index_path = lib.index_path();
    let mut dec = crate::zstd_decoder::ZstdDecoder::default();
    let mut out = Vec::new();
    for &id in ids {
        let path = lib.pack_path(id);
        crate::library::pack_scan::scan_pack_with(&path, id, |pos, rec, payload| {
            if rec.method == Method::ZstdDelta {
                return Ok(());
            }
            sketch_record(
                lib,
                &mut dec,
                &path,
                pos,
                rec,
                payload,
                &mut out,
                &mut |sf| {
                    if sketches
                        .get(sf)
                        .map_err(|e| db_err(&index_path, e))?
                        .is_none()
                    {
                        sketches
                            .insert(sf, sketch_value(&rec.hash))
                            .map_err(|e| db_err(&index_path, e))?;
                    }
                    Ok(())
                },
            )
        })?;
    }
    Ok(())
}
