//! Verified in-place reads: a game's files as `Read + Seek`, straight from the packs,
//! without installing.
//!
//! [`Game::open`] verifies the manifest's signature first (through
//! [`Library::open_game`]), then streams the chunk table once and
//! checks it against its signed BLAKE3. It keeps only a sparse seek index: for every
//! [`GROUP`] records, where the group's first chunk starts in the game's files laid end to
//! end, and the BLAKE3 of the group's raw records. A read re-reads the one group it needs
//! from the manifest file and compares it with that hash, so a table altered after the
//! signature check can never feed it unsigned chunk hashes; then it decodes the chunk and
//! checks its BLAKE3 against the record before copying out a single byte. Decoded chunks
//! stay in a cache of [`CACHE_SLOTS`] reused buffers.
//!
//! Memory is therefore [`MARK_BYTES`] per [`GROUP`] chunks (0.625 bytes per chunk), 16 bytes
//! per file, the signed body, one group of records, and at most [`CACHE_SLOTS`] + 1 chunk
//! buffers, whatever the game's size.
//!
//! A [`Game`] is `Send + Sync`: its mutable state (index, open packs, decoder, caches) sits
//! behind one mutex, taken once per chunk, so readers on several threads interleave chunk
//! by chunk.

use crate::chunks::decoder::{ChunkDecoder, RuzstdDecoder};
use crate::chunks::ChunkSource;
use crate::error::{Error, Result};
use crate::fsio::read_exact_at;
use crate::library::Library;
use crate::trusted::{TrustStore, VerifiedManifest};
use romlib_format::manifest::{ChunkRef, CHUNK_RECORD_LEN};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Chunk-table records per entry of the sparse seek index.
pub const GROUP: usize = 64;
/// Decoded chunks kept in memory per game (least recently used is replaced): enough for a
/// couple of readers streaming side by side plus a few random accesses.
pub const CACHE_SLOTS: usize = 4;
/// Bytes of one sparse-index entry: a `u64` offset and a 32-byte BLAKE3.
pub const MARK_BYTES: usize = std::mem::size_of::<Mark>();
/// Bytes of one group of raw chunk-table records.
const GROUP_BYTES: usize = GROUP * CHUNK_RECORD_LEN;

/// One entry of the sparse seek index, for chunks `g * GROUP ..`.
struct Mark {
    /// Offset of the group's first chunk in the game's files laid end to end.
    start: u64,
    /// BLAKE3 of the group's raw chunk-table records, taken during the verified pass.
    hash: [u8; 32],
}

/// Where a file's bytes sit in the game's chunk stream.
#[derive(Clone, Copy)]
struct Span {
    /// Offset of the file's first byte in the game's files laid end to end.
    start: u64,
    /// Index of the file's first chunk.
    first_chunk: u64,
}

/// Identifies a file of one [`Game`] (an index into its signed file list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(u32);

impl FileId {
    /// The file's position in the manifest's file list.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A file of a game, as its signed manifest describes it.
#[derive(Debug, Clone, Copy)]
pub struct FileInfo<'a> {
    /// Handle for [`Game::read_at`] and [`FileReader::new`].
    pub id: FileId,
    /// Relative `/`-separated path inside the game.
    pub path: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// Unix mode bits (at most `0o7777`).
    pub mode: u32,
}

/// One decoded, verified chunk starting at stream offset `start`; `start` is `None` while
/// the buffer holds anything else.
#[derive(Default)]
struct Slot {
    start: Option<u64>,
    data: Vec<u8>,
    used: u64,
}

impl Slot {
    fn holds(&self, at: u64) -> bool {
        self.start
            .is_some_and(|s| s <= at && at - s < self.data.len() as u64)
    }
}

struct State<D> {
    chunks: ChunkSource,
    decoder: D,
    /// The group whose records `records` holds (checked against its mark).
    group: Option<usize>,
    records: [u8; GROUP_BYTES],
    slots: [Slot; CACHE_SLOTS],
    tick: u64,
}

/// An open game whose files can be read in place. Every byte it returns was decoded from a
/// chunk whose BLAKE3 matched the signed manifest.
pub struct Game<D = RuzstdDecoder> {
    manifest: VerifiedManifest,
    spans: Vec<Span>,
    /// File indices sorted by path, for [`Game::find`].
    by_path: Vec<u32>,
    marks: Vec<Mark>,
    state: Mutex<State<D>>,
}

impl<D> std::fmt::Debug for Game<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Game")
            .field("title", &self.manifest.body().title_id)
            .field("files", &self.spans.len())
            .field("chunks", &self.manifest.body().chunk_count)
            .finish()
    }
}

impl<D: ChunkDecoder> Game<D> {
    /// Opens game `game` (a title id, or the path of a `.manifest` file) of `lib`: checks
    /// the signature against `trust` before anything else, then the chunk table.
    pub fn open(lib: &Library, game: &str, trust: &TrustStore, decoder: D) -> Result<Self> {
        let m = lib.open_game(game, trust)?;
        Self::from_manifest(lib, m, decoder)
    }

    /// Opens an already verified manifest: streams its chunk table once, checking it
    /// against the signed hash and the files' sizes, and builds the sparse seek index.
    pub fn from_manifest(lib: &Library, manifest: VerifiedManifest, decoder: D) -> Result<Self> {
        let body = manifest.body();
        let mpath = manifest.path();
        let count = body.chunk_count;
        let mut table = manifest.chunks()?;
        let mut spans = Vec::with_capacity(body.files.len());
        // The manifest file was checked to hold exactly `count` records, so this is bounded
        // by the file's own size (1 mark per 2304 bytes of table).
        let mut marks = Vec::with_capacity(count.div_ceil(GROUP as u64) as usize);
        let mut group = blake3::Hasher::new();
        let (mut at, mut chunk, mut group_start) = (0u64, 0u64, 0u64);
        let mut mismatch = None;
        for f in &body.files {
            spans.push(Span {
                start: at,
                first_chunk: chunk,
            });
            let mut bytes = 0u64;
            for _ in 0..f.chunk_count {
                let c = table
                    .next_chunk()?
                    .ok_or_else(|| Error::manifest(mpath, "chunk table ended early"))?;
                if chunk % GROUP as u64 == 0 {
                    group.reset();
                    group_start = at;
                }
                group.update(&c.encode());
                chunk += 1;
                at += c.len as u64;
                bytes += c.len as u64;
                if chunk % GROUP as u64 == 0 || chunk == count {
                    marks.push(Mark {
                        start: group_start,
                        hash: *group.finalize().as_bytes(),
                    });
                }
            }
            // Reads find chunks by offset, so each file's chunks must add up to its size
            // exactly (install gets the same guarantee from the whole-file hash).
            if bytes != f.size && mismatch.is_none() {
                mismatch = Some(format!(
                    "file {:?}: its chunks hold {bytes} bytes, the manifest says {}",
                    f.path, f.size
                ));
            }
        }
        // An altered table is the likelier cause of a mismatch: report that first.
        table.finish()?;
        if let Some(problem) = mismatch {
            return Err(Error::manifest(mpath, problem));
        }
        let mut by_path: Vec<u32> = (0..body.files.len() as u32).collect();
        by_path.sort_by(|&a, &b| {
            body.files[a as usize]
                .path
                .cmp(&body.files[b as usize].path)
        });
        let state = State {
            chunks: ChunkSource::open(lib, &manifest)?,
            decoder,
            group: None,
            records: [0; GROUP_BYTES],
            slots: Default::default(),
            tick: 0,
        };
        Ok(Self {
            manifest,
            spans,
            by_path,
            marks,
            state: Mutex::new(state),
        })
    }

    /// Over HTTP, fetches beyond each chunk read only the chunks `wanted` (by chunk-table
    /// record) says will be read too (see [`ChunkSource::fetch_only`]).
    pub fn fetch_only(&self, wanted: crate::chunks::Wanted) {
        self.lock().chunks.fetch_only(wanted);
    }

    /// The game's title id.
    pub fn title(&self) -> &str {
        &self.manifest.body().title_id
    }

    /// The verified manifest (metadata, signer, per-file hashes).
    pub fn manifest(&self) -> &VerifiedManifest {
        &self.manifest
    }

    /// The game's files, in manifest order.
    pub fn files(&self) -> impl ExactSizeIterator<Item = FileInfo<'_>> + '_ {
        self.manifest
            .body()
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| FileInfo {
                id: FileId(i as u32),
                path: &f.path,
                size: f.size,
                mode: f.mode,
            })
    }

    /// The file `id` names, if it is a file of this game.
    pub fn file(&self, id: FileId) -> Option<FileInfo<'_>> {
        let f = self.manifest.body().files.get(id.index())?;
        Some(FileInfo {
            id,
            path: &f.path,
            size: f.size,
            mode: f.mode,
        })
    }

    /// The file at `path` (exact, case-sensitive match of the manifest's path).
    pub fn find(&self, path: &str) -> Result<FileId> {
        let files = &self.manifest.body().files;
        self.by_path
            .binary_search_by(|&i| files[i as usize].path.as_str().cmp(path))
            .map(|pos| FileId(self.by_path[pos]))
            .map_err(|_| Error::NotFound {
                path: self.named(path),
                what: "file in this game",
            })
    }

    /// `<title>/<path>` for messages (not `join`, which an absolute `path` would replace).
    fn named(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("{}/{path}", self.title()))
    }

    /// Opens the file at `path` for reading.
    pub fn open_file(&self, path: &str) -> Result<FileReader<&Self>> {
        let id = self.find(path)?;
        FileReader::new(self, id)
    }

    fn span(&self, id: FileId) -> Result<(Span, u64, u64)> {
        match (
            self.spans.get(id.index()),
            self.manifest.body().files.get(id.index()),
        ) {
            (Some(s), Some(f)) => Ok((*s, f.size, f.chunk_count)),
            _ => Err(Error::NotFound {
                path: self.named(&format!("#{}", id.0)),
                what: "file id in this game",
            }),
        }
    }

    /// Reads from file `id` at `offset` into `buf`: fills it entirely, or up to the end of
    /// the file, and returns the count (0 at or beyond the end). On error, `buf` may hold
    /// some verified bytes of the range but never anything unverified.
    pub fn read_at(&self, id: FileId, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let (span, size, chunks) = self.span(id)?;
        if offset >= size {
            return Ok(0);
        }
        let want = (size - offset).min(buf.len() as u64) as usize;
        let mut done = 0;
        while done < want {
            let at = span.start + offset + done as u64;
            done += self.with_chunk(span, chunks, at, |bytes| {
                let n = bytes.len().min(want - done);
                buf[done..done + n].copy_from_slice(&bytes[..n]);
                n
            })?;
        }
        Ok(want)
    }

    /// Writes `length` bytes (default: to the end) of file `id` from `offset` to `out`,
    /// each chunk once it is verified; returns the bytes written. An offset beyond the end
    /// is an error; a length past the end stops at the end. `out_name` names `out` in
    /// write errors. The game's lock is held while each chunk is written.
    pub fn copy_range(
        &self,
        id: FileId,
        offset: u64,
        length: Option<u64>,
        out: &mut dyn Write,
        out_name: &Path,
    ) -> Result<u64> {
        let (span, size, chunks) = self.span(id)?;
        if offset > size {
            let path = self
                .file(id)
                .map_or_else(PathBuf::new, |f| self.named(f.path));
            return Err(Error::BeyondEnd { path, offset, size });
        }
        let end = offset.saturating_add(length.unwrap_or(u64::MAX)).min(size);
        let mut pos = offset;
        while pos < end {
            let at = span.start + pos;
            pos += self.with_chunk(span, chunks, at, |bytes| -> Result<u64> {
                let n = bytes.len().min((end - pos).min(usize::MAX as u64) as usize);
                out.write_all(&bytes[..n])
                    .map_err(|e| Error::io(out_name, "write", e))?;
                Ok(n as u64)
            })??;
        }
        Ok(end - offset)
    }

    fn lock(&self) -> MutexGuard<'_, State<D>> {
        // A panic while the lock was held cannot leave a slot claiming unverified bytes (a
        // slot is invalidated before it is refilled and marked valid only after its check),
        // so a poisoned state is still sound to use.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Calls `f` with the verified bytes from stream offset `at` to the end of its chunk,
    /// which belongs to the file `span`/`chunks`; `at` must lie inside that file.
    fn with_chunk<T>(
        &self,
        span: Span,
        chunks: u64,
        at: u64,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<T> {
        let mut guard = self.lock();
        let st = &mut *guard;
        st.tick += 1;
        let i = match st.slots.iter().position(|s| s.holds(at)) {
            Some(i) => i,
            None => self.load(st, span, chunks, at)?,
        };
        let slot = &mut st.slots[i];
        slot.used = st.tick;
        let start = slot.start.unwrap_or(at);
        let from = (at - start) as usize;
        Ok(f(&slot.data[from..]))
    }

    /// Decodes and verifies the chunk holding stream offset `at` into the least recently
    /// used slot; returns the slot.
    fn load(&self, st: &mut State<D>, span: Span, chunks: u64, at: u64) -> Result<usize> {
        let (start, i, c) = self.locate(st, span, chunks, at)?;
        let State {
            chunks: source,
            decoder,
            slots,
            ..
        } = st;
        let victim = slots
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| (s.start.is_some(), s.used))
            .map_or(0, |(i, _)| i);
        let slot = &mut slots[victim];
        slot.start = None;
        source.read_chunk(i, &c, decoder, &mut slot.data)?;
        slot.start = Some(start);
        Ok(victim)
    }

    /// Finds the chunk holding stream offset `at` of the file `span`/`chunks`: a binary
    /// search over the file's groups, then a walk of at most [`GROUP`] checked records.
    /// Returns the chunk's stream offset, its number in the table, and its record.
    fn locate(
        &self,
        st: &mut State<D>,
        span: Span,
        chunks: u64,
        at: u64,
    ) -> Result<(u64, u64, ChunkRef)> {
        let mpath = self.manifest.path();
        let inconsistent = || Error::manifest(mpath, format!("no chunk holds offset {at}"));
        let lo = (span.first_chunk / GROUP as u64) as usize;
        let hi =
            ((span.first_chunk + chunks).div_ceil(GROUP as u64) as usize).min(self.marks.len());
        let marks = self.marks.get(lo..hi).ok_or_else(inconsistent)?;
        let g = lo
            + marks
                .partition_point(|m| m.start <= at)
                .checked_sub(1)
                .ok_or_else(inconsistent)?;
        let len = self.group_records(st, g)?;
        let mut start = self.marks[g].start;
        for (j, rec) in st.records[..len].chunks_exact(CHUNK_RECORD_LEN).enumerate() {
            let c = ChunkRef::decode(rec).map_err(|e| Error::format(mpath, e))?;
            let end = start + c.len as u64;
            if at < end {
                let chunk = (g * GROUP + j) as u64;
                if chunk < span.first_chunk || chunk >= span.first_chunk + chunks {
                    return Err(inconsistent());
                }
                return Ok((start, chunk, c));
            }
            start = end;
        }
        Err(inconsistent())
    }

    /// Loads group `g`'s raw records into `st.records` (unless already there), checked
    /// against the hash taken when the table was verified; returns their length in bytes.
    fn group_records(&self, st: &mut State<D>, g: usize) -> Result<usize> {
        let count = self.manifest.body().chunk_count;
        let first = (g * GROUP) as u64;
        let len = (count.saturating_sub(first).min(GROUP as u64) as usize) * CHUNK_RECORD_LEN;
        if st.group == Some(g) {
            return Ok(len);
        }
        st.group = None;
        let mpath = self.manifest.path();
        let at = self.manifest.chunk_table_offset() + first * CHUNK_RECORD_LEN as u64;
        read_exact_at(self.manifest.file(), &mut st.records[..len], at)
            .map_err(|e| Error::io(mpath, "read", e))?;
        if blake3::hash(&st.records[..len]).as_bytes() != &self.marks[g].hash {
            return Err(Error::manifest(
                mpath,
                format!(
                    "chunk table records {first} to {} changed since the manifest was verified; \
                     open the game again",
                    first + (len / CHUNK_RECORD_LEN) as u64 - 1
                ),
            ));
        }
        st.group = Some(g);
        Ok(len)
    }
}

/// One file of a [`Game`] as `Read + Seek`, with its own position. `G` is how the reader
/// holds the game: `&Game` (see [`Game::open_file`]) or an `Arc<Game>` to move between
/// threads. Seeking beyond the end is allowed, and reads there return 0 bytes.
#[derive(Debug)]
pub struct FileReader<G> {
    game: G,
    id: FileId,
    size: u64,
    pos: u64,
}

impl<G, D> FileReader<G>
where
    G: Deref<Target = Game<D>>,
    D: ChunkDecoder,
{
    /// A reader of file `id` of `game`, at offset 0.
    pub fn new(game: G, id: FileId) -> Result<Self> {
        let (_, size, _) = game.span(id)?;
        Ok(Self {
            game,
            id,
            size,
            pos: 0,
        })
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The file being read.
    pub fn id(&self) -> FileId {
        self.id
    }

    /// Reads at `offset` without moving the position (see [`Game::read_at`]).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.game.read_at(self.id, offset, buf)?)
    }
}

impl<G, D> Read for FileReader<G>
where
    G: Deref<Target = Game<D>>,
    D: ChunkDecoder,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.game.read_at(self.id, self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<G, D> Seek for FileReader<G>
where
    G: Deref<Target = Game<D>>,
    D: ChunkDecoder,
{
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match to {
            SeekFrom::Start(n) => {
                self.pos = n;
                return Ok(n);
            }
            SeekFrom::End(d) => (self.size, d),
            SeekFrom::Current(d) => (self.pos, d),
        };
        match base.checked_add_signed(delta) {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use prost::Message;
    use romlib_format::index::ChunkEntry;
    use romlib_format::manifest::{ManifestHeader, SignatureBlock, SIGNATURE_DOMAIN};
    use romlib_format::pack::{Method, PackFooter, PackHeader, RecordHeader, RECORD_HEADER_LEN};
    use romlib_proto::{Chunker, FileEntry, Manifest};
    use std::fs;
    use std::sync::Arc;

    #[test]
    fn game_and_readers_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Game<RuzstdDecoder>>();
        check::<FileReader<&Game>>();
        check::<FileReader<Arc<Game>>>();
    }

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// A library built by hand (stored chunks of uneven lengths, so groups and chunk
    /// boundaries fall at odd offsets), with one game `t` holding `files`.
    struct Lib {
        dir: tempfile::TempDir,
        files: Vec<(String, Vec<u8>)>,
    }

    const SEED: [u8; 32] = [9; 32];

    impl Lib {
        fn new(files: Vec<(String, Vec<u8>)>, max_chunk: u64) -> Self {
            Self::edited(files, max_chunk, |_| {})
        }

        /// Like `new`, with `edit` applied to the body before it is signed.
        fn edited(
            files: Vec<(String, Vec<u8>)>,
            max_chunk: u64,
            edit: impl FnOnce(&mut Manifest),
        ) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            fs::create_dir_all(root.join("packs")).unwrap();
            fs::create_dir_all(root.join("games")).unwrap();
            let mut pack = PackHeader {
                pack_id: 1,
                dict_id: 0,
            }
            .encode()
            .to_vec();
            let mut table = Vec::new();
            let mut entries = Vec::new();
            let mut entry_files = Vec::new();
            let mut seed = 0x1234_5678u64;
            for (path, data) in &files {
                let mut n = 0;
                let mut pos = 0;
                while pos < data.len() {
                    let len = (1 + rng(&mut seed) % max_chunk).min((data.len() - pos) as u64);
                    let piece = &data[pos..pos + len as usize];
                    let hash = *blake3::hash(piece).as_bytes();
                    let rec = RecordHeader {
                        hash,
                        ulen: len as u32,
                        clen: len as u32,
                        method: Method::Stored,
                    };
                    entries.push((
                        hash,
                        ChunkEntry {
                            pack_id: 1,
                            offset: pack.len() as u64,
                            clen: len as u32,
                            ulen: len as u32,
                            method: Method::Stored,
                            stored_at: 0,
                        },
                    ));
                    pack.extend_from_slice(&rec.encode());
                    pack.extend_from_slice(piece);
                    table.extend_from_slice(
                        &ChunkRef {
                            hash,
                            len: len as u32,
                        }
                        .encode(),
                    );
                    pos += len as usize;
                    n += 1;
                }
                entry_files.push(FileEntry {
                    path: path.clone(),
                    size: data.len() as u64,
                    mode: 0o644,
                    blake3: blake3::hash(data).as_bytes().to_vec(),
                    chunk_count: n,
                    ..Default::default()
                });
            }
            let records_len = (pack.len() - 32) as u64;
            let footer = PackFooter {
                record_count: entries.len() as u64,
                records_len,
                checksum: *blake3::hash(&pack).as_bytes(),
            };
            pack.extend_from_slice(&footer.encode());
            fs::write(root.join("packs/pack-0001.pkg"), &pack).unwrap();
            // The game's locator: where each chunk-table record's record lies.
            let header = romlib_format::portable::LocatorHeader {
                count: entries.len() as u32,
                table_blake3: *blake3::hash(&table).as_bytes(),
                bases: 0,
            };
            let mut loc = header
                .encode(&mut [0; romlib_format::portable::LOCATOR_HEADER_V2_LEN])
                .to_vec();
            for (_, e) in &entries {
                let e = romlib_format::portable::LocatorEntry::from_index(e).unwrap();
                loc.extend_from_slice(&e.encode());
            }
            fs::write(root.join("games/t.locator"), loc).unwrap();
            let mut body = Manifest {
                format_version: 1,
                title_id: "t".into(),
                chunker: Some(Chunker {
                    algorithm: "fastcdc-v2020".into(),
                    min_size: 256,
                    avg_size: 1024,
                    max_size: 4096,
                    normalization: 1,
                }),
                total_size: entry_files.iter().map(|f| f.size).sum(),
                files: entry_files,
                pack_ids: vec![1],
                chunk_count: (table.len() / CHUNK_RECORD_LEN) as u64,
                chunk_table_blake3: blake3::hash(&table).as_bytes().to_vec(),
                ..Default::default()
            };
            edit(&mut body);
            let body = body.encode_to_vec();
            let header = ManifestHeader {
                body_len: body.len() as u32,
            }
            .encode();
            let sk = SigningKey::from_bytes(&SEED);
            let mut msg = SIGNATURE_DOMAIN.to_vec();
            msg.extend_from_slice(&header);
            msg.extend_from_slice(&body);
            let sig = SignatureBlock {
                public_key: sk.verifying_key().to_bytes(),
                signature: sk.sign(&msg).to_bytes(),
            };
            let mut m = header.to_vec();
            m.extend_from_slice(&body);
            m.extend_from_slice(&sig.encode());
            m.extend_from_slice(&table);
            fs::write(root.join("games/t.manifest"), m).unwrap();
            let key = romlib_format::keyfile::encode(
                romlib_format::keyfile::KeyKind::Public,
                &sk.verifying_key().to_bytes(),
            );
            fs::write(root.join("k.pub"), key).unwrap();
            Lib { dir, files }
        }

        fn game(&self) -> Result<Game> {
            let lib = Library::new(self.dir.path());
            let trust = TrustStore::from_files(&[self.dir.path().join("k.pub")]).unwrap();
            Game::open(&lib, "t", &trust, RuzstdDecoder::default())
        }
    }

    fn sample() -> Lib {
        let mut seed = 77u64;
        let big: Vec<u8> = (0..40_000).map(|_| rng(&mut seed) as u8).collect();
        Lib::new(
            vec![
                ("a/big.bin".into(), big),
                ("empty".into(), Vec::new()),
                ("small.txt".into(), b"hello".to_vec()),
                ("z.bin".into(), (0..3000u32).map(|i| i as u8).collect()),
            ],
            300,
        )
    }

    #[test]
    fn lists_and_reads_every_file_at_every_boundary() {
        let l = sample();
        let g = l.game().unwrap();
        assert!(g.manifest().body().chunk_count > 3 * GROUP as u64);
        let listed: Vec<(String, u64, u32)> = g
            .files()
            .map(|f| (f.path.to_string(), f.size, f.mode))
            .collect();
        assert_eq!(listed.len(), 4);
        assert_eq!(listed[1], ("empty".to_string(), 0, 0o644));
        for (path, data) in &l.files {
            let mut r = g.open_file(path).unwrap();
            assert_eq!(r.len(), data.len() as u64);
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            assert!(all == *data, "{path}");
            // Every offset near a chunk or group edge, and odd lengths across them.
            let mut seed = 5u64;
            for _ in 0..300 {
                let off = rng(&mut seed) % (data.len() as u64 + 10);
                let len = (rng(&mut seed) % 700) as usize;
                let mut buf = vec![0u8; len];
                let n = r.read_at(off, &mut buf).unwrap();
                let lo = (off as usize).min(data.len());
                let hi = (lo + len).min(data.len());
                assert_eq!(&buf[..n], &data[lo..hi], "{path} at {off}+{len}");
            }
        }
    }

    #[test]
    fn seek_semantics() {
        let l = sample();
        let g = l.game().unwrap();
        let mut r = g.open_file("small.txt").unwrap();
        let mut b = [0u8; 3];
        assert_eq!(r.seek(SeekFrom::End(-2)).unwrap(), 3);
        assert_eq!(r.read(&mut b).unwrap(), 2);
        assert_eq!(&b[..2], b"lo");
        assert_eq!(r.read(&mut b).unwrap(), 0);
        assert_eq!(r.seek(SeekFrom::Current(100)).unwrap(), 105);
        assert_eq!(r.read(&mut b).unwrap(), 0);
        let e = r.seek(SeekFrom::Current(-106)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            r.stream_position().unwrap(),
            105,
            "a failed seek moves nothing"
        );
        assert_eq!(r.seek(SeekFrom::Start(1)).unwrap(), 1);
        assert_eq!(r.read(&mut b).unwrap(), 3);
        assert_eq!(&b, b"ell");
        let mut e = g.open_file("empty").unwrap();
        assert_eq!(e.read(&mut b).unwrap(), 0);
        assert!(matches!(
            g.open_file("nope").unwrap_err(),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            g.open_file("A/BIG.BIN"),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn copy_range_clamps_length_and_refuses_offsets_past_the_end() {
        let l = sample();
        let g = l.game().unwrap();
        let id = g.find("z.bin").unwrap();
        let mut out = Vec::new();
        let n = g
            .copy_range(id, 2990, Some(100), &mut out, Path::new("-"))
            .unwrap();
        assert_eq!((n, out.as_slice()), (10, &l.files[3].1[2990..]));
        out.clear();
        assert_eq!(
            g.copy_range(id, 3000, None, &mut out, Path::new("-"))
                .unwrap(),
            0
        );
        let e = g
            .copy_range(id, 3001, None, &mut out, Path::new("-"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t/z.bin: offset 3001 is beyond the end of the file (3000 bytes)"
        );
    }

    #[test]
    fn a_table_changed_after_open_is_refused_while_cached_chunks_stay_readable() {
        let l = sample();
        let g = l.game().unwrap();
        let mut first = [0u8; 10];
        g.read_at(g.find("a/big.bin").unwrap(), 0, &mut first)
            .unwrap();
        // Point record 200 at the bytes of record 0 (a real chunk, in the index).
        let mpath = l.dir.path().join("games/t.manifest");
        let mut m = fs::read(&mpath).unwrap();
        let off = ManifestHeader::decode(&m).unwrap().chunk_table_offset() as usize;
        let rec0: Vec<u8> = m[off..off + CHUNK_RECORD_LEN].to_vec();
        let at = off + 200 * CHUNK_RECORD_LEN;
        m[at..at + CHUNK_RECORD_LEN].copy_from_slice(&rec0);
        {
            // In place, as an attacker with write access to the card would.
            use std::io::Write as _;
            let mut f = fs::OpenOptions::new().write(true).open(&mpath).unwrap();
            f.write_all(&m).unwrap();
        }
        let id = g.find("a/big.bin").unwrap();
        let mut buf = vec![0u8; 40_000];
        let e = g.read_at(id, 0, &mut buf).unwrap_err();
        assert!(e.to_string().contains("changed since the manifest"), "{e}");
        // Groups the change did not touch still read.
        let mut again = [0u8; 10];
        g.read_at(id, 0, &mut again).unwrap();
        assert_eq!(again, first);
        // A fresh open refuses the table outright.
        let e = l.game().unwrap_err();
        assert!(e.to_string().contains("tampered"), "{e}");
    }

    #[test]
    fn signed_sizes_that_disagree_with_the_table_are_refused_at_open() {
        let l = Lib::edited(sample().files, 300, |m| {
            m.files[0].size -= 1;
            m.files[3].size += 1;
        });
        let e = l.game().unwrap_err();
        assert!(
            e.to_string()
                .contains("\"a/big.bin\": its chunks hold 40000 bytes, the manifest says 39999"),
            "{e}"
        );
    }

    #[test]
    fn a_corrupt_chunk_fails_its_reads_only() {
        let l = sample();
        let ppath = l.dir.path().join("packs/pack-0001.pkg");
        let mut p = fs::read(&ppath).unwrap();
        // The payload of the first record: the first bytes of a/big.bin.
        p[32 + RECORD_HEADER_LEN] ^= 1;
        fs::write(&ppath, &p).unwrap();
        let g = l.game().unwrap();
        let mut r = g.open_file("a/big.bin").unwrap();
        let mut b = [0u8; 4];
        let e = r.read(&mut b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("pack-0001.pkg"), "{e}");
        assert!(
            e.to_string().contains("does not match the signed hash"),
            "{e}"
        );
        assert_eq!(r.stream_position().unwrap(), 0);
        r.seek(SeekFrom::Start(20_000)).unwrap();
        r.read_exact(&mut b).unwrap();
        assert_eq!(b, l.files[0].1[20_000..20_004]);
        assert!(r.seek(SeekFrom::Start(0)).is_ok());
        assert!(
            r.read(&mut b).is_err(),
            "the bad chunk never enters the cache"
        );
    }

    #[test]
    fn threads_share_one_game() {
        let l = sample();
        let g = Arc::new(l.game().unwrap());
        let data = Arc::new(l.files[0].1.clone());
        let workers: Vec<_> = (0..4u64)
            .map(|t| {
                let (g, data) = (Arc::clone(&g), Arc::clone(&data));
                std::thread::spawn(move || {
                    let id = g.find("a/big.bin").unwrap();
                    let mut r = FileReader::new(Arc::clone(&g), id).unwrap();
                    let mut seed = 99 + t;
                    for _ in 0..200 {
                        let off = rng(&mut seed) % data.len() as u64;
                        let mut buf = vec![0u8; (rng(&mut seed) % 2000) as usize];
                        r.seek(SeekFrom::Start(off)).unwrap();
                        let n = r.read(&mut buf).unwrap();
                        let end = (off as usize + n).min(data.len());
                        assert_eq!(&buf[..n], &data[off as usize..end]);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    }
}
