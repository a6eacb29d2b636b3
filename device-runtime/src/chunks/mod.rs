//! Chunks, verified: where a game's chunks lie ([`locator`]), reading their records from
//! packs ([`packs`]), decoding them ([`decoder`]), and chunks already on the device
//! ([`reuse`]).
//!
//! [`ChunkSource`] is the one way from a chunk-table record to verified bytes, whatever
//! holds the library; [`decode_verified`] is the one place a record's payload becomes
//! bytes, and it returns only bytes whose BLAKE3 is the one the signed manifest gives.
//! Every reader (install, verify, in-place reads, the mount, export) goes through them.

pub mod decoder;
pub mod locator;
pub mod packs;
pub mod reuse;

use crate::error::short_hex;
use crate::error::{Error, Result};
use crate::library::Library;
use crate::trusted::VerifiedManifest;
use decoder::ChunkDecoder;
use locator::ChunkLocator;
use packs::PackReader;
use romlib_format::index::ChunkEntry;
use romlib_format::manifest::ChunkRef;
use romlib_format::pack::{split_delta, Method};
use std::path::PathBuf;

/// A chunk record that was read but not yet decoded: which chunk it holds, where it came
/// from and how it is stored.
#[derive(Debug, Clone)]
pub struct RecordRef {
    /// The chunk's BLAKE3 (from the signed manifest; the record header named the same).
    pub hash: [u8; 32],
    /// The chunk's length, as the record header gives it.
    pub ulen: u32,
    /// Where its payload lies in the buffer it was appended to.
    pub payload: std::ops::Range<usize>,
    /// The pack holding it (0: a chunk found on the device, stored as is).
    pub pack_id: u32,
    /// The record's offset in the pack.
    pub offset: u64,
    /// The pack's dictionary id (used by dictionary-compressed records).
    pub dict_id: u32,
    /// How the payload is stored.
    pub method: Method,
}

/// A verified base chunk: its BLAKE3 and its bytes, which hashed to it.
#[derive(Debug, Default)]
pub struct BaseChunk {
    /// The chunk's BLAKE3, or `None` while `data` holds nothing verified.
    pub hash: Option<[u8; 32]>,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// An error reading or checking base chunk `base` of delta chunk `of`, told as an error
/// of the delta chunk (the one a reader asked for).
pub fn base_failed(of: &[u8; 32], base: &[u8; 32], e: Error) -> Error {
    match e {
        Error::Chunk { path, problem, .. } => Error::Chunk {
            path,
            hash: *of,
            problem: format!("its base chunk {}: {problem}", short_hex(base)),
        },
        other => other,
    }
}

/// The base chunk a delta record's payload names.
pub fn delta_base(rec: &RecordRef, payload: &[u8], lib: &Library) -> Result<[u8; 32]> {
    let (base, _) = split_delta(&rec.hash, payload)
        .map_err(|e| Error::chunk(lib.pack_path(rec.pack_id), &rec.hash, e.to_string()))?;
    Ok(base)
}

/// Decodes the `payload` of record `rec` into all of `out`, loading the pack's dictionary
/// into `decoder` first when the record needs it, and checks the result against the
/// chunk's signed BLAKE3. A delta needs `base`, the verified base chunk its payload names.
/// On success `out` holds verified bytes; on failure nothing in it may be used.
pub fn decode_verified(
    lib: &Library,
    rec: &RecordRef,
    payload: &[u8],
    base: Option<&BaseChunk>,
    decoder: &mut dyn ChunkDecoder,
    out: &mut [u8],
) -> Result<()> {
    let fail = |e: String| {
        Error::chunk(
            lib.pack_path(rec.pack_id),
            &rec.hash,
            format!("at offset {}: {e}", rec.offset),
        )
    };
    if rec.method == Method::ZstdDict && !decoder.has_dict(rec.dict_id) {
        let bytes = lib.read_dict(rec.dict_id)?;
        decoder
            .load_dict(rec.dict_id, &bytes)
            .map_err(|e| Error::manifest(lib.dict_path(rec.dict_id), e))?;
    }
    if rec.method == Method::ZstdDelta {
        let (want, frame) = split_delta(&rec.hash, payload).map_err(|e| fail(e.to_string()))?;
        let base = base.filter(|b| b.hash == Some(want)).ok_or_else(|| {
            fail(format!(
                "its base chunk {} is not at hand",
                short_hex(&want)
            ))
        })?;
        decoder.decode_delta(&base.data, frame, out).map_err(fail)?;
    } else {
        decoder.decode(rec.method, payload, out).map_err(fail)?;
    }
    // The pack's path is built only for the error message, off the hot path.
    if blake3::hash(out).as_bytes() != &rec.hash {
        return Err(Error::chunk(
            lib.pack_path(rec.pack_id),
            &rec.hash,
            format!(
                "decoded data at offset {} does not match the signed hash (corrupt pack)",
                rec.offset
            ),
        ));
    }
    Ok(())
}

/// Most packs a scratch copy of a game's records spans ([`ChunkSource::spool_without_ranges`]).
const MAX_SPOOL_PACKS: usize = 1024;

/// What errors say of a chunk that the locator does not place.
const NOT_IN_LIBRARY: &str =
    "not in the library (incomplete library, or an altered chunk table or locator)";

/// The chunks of one game of a library: from a chunk-table record to its stored record
/// and on to verified bytes, whether the library is a folder, a portable file or on an
/// HTTP server.
pub struct ChunkSource {
    /// What errors about a chunk name: the game's manifest (or the library).
    manifest: PathBuf,
    locator: ChunkLocator,
    packs: PackReader,
    /// The last base chunk read, kept for the next delta on the same base.
    base: BaseChunk,
    /// A delta's record while its base is read.
    record: Vec<u8>,
    /// Over HTTP: which chunk-table records a range request may fetch beyond the one asked
    /// for (all when `None`): a repair fetches only the damaged chunks.
    wanted: Option<Wanted>,
}

/// Whether chunk-table record `k` is wanted.
pub type Wanted = Box<dyn Fn(u64) -> bool + Send + Sync>;

impl std::fmt::Debug for ChunkSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSource")
            .field("manifest", &self.manifest)
            .field("locator", &self.locator)
            .finish()
    }
}

impl ChunkSource {
    /// The chunks of the game of manifest `m` in `lib`.
    pub fn open(lib: &Library, m: &VerifiedManifest) -> Result<Self> {
        Ok(Self {
            manifest: m.path().to_path_buf(),
            locator: ChunkLocator::open(lib, m.body())?,
            packs: PackReader::new(lib),
            base: BaseChunk::default(),
            record: Vec::new(),
            wanted: None,
        })
    }

    /// Over HTTP, lets a range request fetch, beyond the record asked for, only records
    /// `wanted` says will be read too (by default it fetches every record that follows, up
    /// to [`packs::SPAN_BYTES`], as streaming a whole game wants).
    pub fn fetch_only(&mut self, wanted: Wanted) {
        self.wanted = Some(wanted);
    }

    /// The chunks of library `lib` by hash: those `table` places (sorted by hash, as
    /// gathered from the library's locators; no game needed).
    pub fn by_hash(lib: &Library, table: Vec<([u8; 32], ChunkEntry)>) -> Self {
        Self {
            manifest: lib.root().to_path_buf(),
            locator: ChunkLocator::Table(table),
            packs: PackReader::new(lib),
            base: BaseChunk::default(),
            record: Vec::new(),
            wanted: None,
        }
    }

    /// Where chunk-table record `i` (chunk `c`) is stored. Only a hint: the record found
    /// there must name the chunk, and its decoded bytes must hash to it.
    pub fn locate(&self, i: u64, c: &ChunkRef) -> Result<ChunkEntry> {
        let found = self.locator.lookup(i, &c.hash, c.len)?;
        found.ok_or_else(|| Error::chunk(&self.manifest, &c.hash, NOT_IN_LIBRARY))
    }

    /// Appends the record of chunk-table record `i` (chunk `c`) to `buf`, still encoded,
    /// for [`decode_verified`] (perhaps on another thread). Over HTTP, the records that
    /// follow it in the same pack are fetched with it, in one range request.
    pub fn read_record(&mut self, i: u64, c: &ChunkRef, buf: &mut Vec<u8>) -> Result<RecordRef> {
        self.read_record_held(i, c, buf, &|_| false)
    }

    /// [`ChunkSource::read_record`] for an install that takes some chunks from the device:
    /// `held(k)` says whether record `k`'s chunk is there, and a range request stops before
    /// such a chunk's record.
    pub fn read_record_held(
        &mut self,
        i: u64,
        c: &ChunkRef,
        buf: &mut Vec<u8>,
        held: &dyn Fn(u64) -> bool,
    ) -> Result<RecordRef> {
        let entry = self.locate(i, c)?;
        self.packs.plan(&self.locator, i, &entry, held)?;
        self.packs.read_record(&c.hash, &entry, c.len, buf)
    }

    /// Reads chunk-table record `i` (chunk `c`), decodes it into `out` (resized to the
    /// chunk's length) and checks it: `out` then holds verified bytes. A delta's base is
    /// read and verified first.
    pub fn read_chunk(
        &mut self,
        i: u64,
        c: &ChunkRef,
        decoder: &mut dyn ChunkDecoder,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let entry = self.locate(i, c)?;
        let wanted = &self.wanted;
        let held = |k: u64| wanted.as_ref().is_some_and(|w| !w(k));
        self.packs.plan(&self.locator, i, &entry, &held)?;
        self.read_entry(&c.hash, c.len, &entry, decoder, out)
    }

    /// Reads chunk `hash` (of `ulen` bytes, when known) wherever the table says it is,
    /// verified, into `out`; returns its length, or `None` when the table does not hold it
    /// ([`ChunkSource::by_hash`]).
    pub fn read_by_hash(
        &mut self,
        hash: &[u8; 32],
        ulen: Option<u32>,
        decoder: &mut dyn ChunkDecoder,
        out: &mut Vec<u8>,
    ) -> Result<Option<u32>> {
        let Some(entry) = self.locator.base(hash)? else {
            return Ok(None);
        };
        // A base entry of a locator leaves the length to the record header.
        let ulen = match ulen.or((entry.ulen != 0).then_some(entry.ulen)) {
            Some(u) => u,
            None => {
                let mut rec = std::mem::take(&mut self.record);
                rec.clear();
                let got = self.packs.read_base_record(hash, &entry, &mut rec);
                self.record = rec;
                got?.ulen
            }
        };
        self.read_entry(hash, ulen, &entry, decoder, out)?;
        Ok(Some(ulen))
    }

    fn read_entry(
        &mut self,
        hash: &[u8; 32],
        ulen: u32,
        entry: &ChunkEntry,
        decoder: &mut dyn ChunkDecoder,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if entry.method != Method::ZstdDelta {
            return self.packs.read_chunk(hash, ulen, entry, decoder, out);
        }
        let mut buf = std::mem::take(&mut self.record);
        buf.clear();
        let res = (|| {
            let rec = self.packs.read_record(hash, entry, ulen, &mut buf)?;
            let lib = self.packs.library().clone();
            let base = delta_base(&rec, &buf[rec.payload.clone()], &lib)?;
            self.load_base(hash, &base, decoder)?;
            out.resize(ulen as usize, 0);
            decode_verified(
                &lib,
                &rec,
                &buf[rec.payload.clone()],
                Some(&self.base),
                decoder,
                out,
            )
        })();
        self.record = buf;
        res
    }

    /// Where base chunk `base` of delta chunk `of` is stored.
    pub fn locate_base(&self, of: &[u8; 32], base: &[u8; 32]) -> Result<ChunkEntry> {
        let found = self.locator.base(base)?;
        let entry = found.ok_or_else(|| {
            Error::chunk(
                &self.manifest,
                of,
                format!(
                    "its base chunk {} is not in the library (incomplete library or locator)",
                    short_hex(base)
                ),
            )
        })?;
        if entry.method == Method::ZstdDelta {
            return Err(Error::chunk(
                &self.manifest,
                of,
                format!(
                    "its base chunk {} is itself a delta (chain deeper than MAX_DELTA_DEPTH: tampered locator)",
                    short_hex(base)
                ),
            ));
        }
        Ok(entry)
    }

    /// Reads, decodes and verifies base chunk `base` of delta chunk `of` into the kept
    /// base, unless it is already there.
    fn load_base(
        &mut self,
        of: &[u8; 32],
        base: &[u8; 32],
        decoder: &mut dyn ChunkDecoder,
    ) -> Result<()> {
        if self.base.hash == Some(*base) {
            return Ok(());
        }
        self.base.hash = None;
        let entry = self.locate_base(of, base)?;
        let mut buf = std::mem::take(&mut self.base.data);
        buf.clear();
        let res = (|| {
            let mut rec_buf = Vec::new();
            let rec = self.packs.read_base_record(base, &entry, &mut rec_buf)?;
            buf.resize(rec.ulen as usize, 0);
            let lib = self.packs.library().clone();
            decode_verified(
                &lib,
                &rec,
                &rec_buf[rec.payload.clone()],
                None,
                decoder,
                &mut buf,
            )
        })();
        self.base.data = buf;
        res.map_err(|e| base_failed(of, base, e))?;
        self.base.hash = Some(*base);
        Ok(())
    }

    /// Appends the record of the base chunk that the delta record `delta` (whose payload
    /// lies in `buf`) names to `buf`, still encoded, for [`decode_verified`].
    pub fn read_base_record(&mut self, delta: &RecordRef, buf: &mut Vec<u8>) -> Result<RecordRef> {
        let lib = self.packs.library().clone();
        let base = delta_base(delta, &buf[delta.payload.clone()], &lib)?;
        let entry = self.locate_base(&delta.hash, &base)?;
        self.packs
            .read_base_record(&base, &entry, buf)
            .map_err(|e| base_failed(&delta.hash, &base, e))
    }

    /// For a game on a server that ignores byte ranges (known after the first request,
    /// which this makes): reads the span of each pack that holds the records the device
    /// needs (the game's chunks but those `held` says the device has by their table index,
    /// and their bases but those `base_held` says it has by hash) in one forward pass, in
    /// pack order, into scratch file `name` in `folder`, which is removed at once (or, where
    /// an open file cannot be removed, when the copy is no longer needed); records are
    /// then read from it (a record the device turns out not to have after all is read as
    /// before). Without it each record behind the streams already open costs
    /// another pass over its pack from the start. Nothing is copied when the server honours
    /// ranges, when the spans are more than twice the records needed and 64 MiB more
    /// (other games' records between them: the card would take more than it saves), or
    /// when they are more than `room` bytes (what the card can spare beside the game).
    /// Returns the bytes copied.
    pub fn spool_without_ranges(
        &mut self,
        folder: &crate::folder::Folder,
        name: &str,
        room: Option<u64>,
        held: &mut dyn FnMut(u64) -> bool,
        base_held: &mut dyn FnMut(&[u8; 32]) -> bool,
    ) -> Result<u64> {
        let lib = self.packs.library().clone();
        let Some(remote) = lib.remote_source() else {
            return Ok(0);
        };
        // Opening the first record's pack asks for its header as a range: a server that
        // ignores ranges answers with the whole pack, kept as a stream from its start, so
        // the pass below goes on from there. (A server that honours the header's range and
        // no other is read as streams instead, as before: it shows only later.)
        let Some(first) = self.locator.entry(0)? else {
            return Ok(0);
        };
        // Nothing to read (all of it on the device): nothing asked of the server either.
        let mut lacks = false;
        for k in 0.. {
            match self.locator.entry(k)? {
                Some(_) if held(k) => {}
                Some(_) => {
                    lacks = true;
                    break;
                }
                None => break,
            }
        }
        if !lacks {
            return Ok(0);
        }
        self.packs.dict_id(first.pack_id)?;
        if remote.ranges_ignored().is_none() {
            return Ok(0);
        }
        // The locator is the server's word: an entry no record can match is left to the
        // usual reads (which name it), and a locator naming more packs than a game needs
        // gets no copy. A record named twice counts twice in `needed` (what is said to be
        // read beyond the records needed is then a little low).
        let mut spans: std::collections::BTreeMap<u32, (u64, u64)> = Default::default();
        let mut needed = 0u64;
        let mut add = |e: ChunkEntry| -> bool {
            if e.clen > romlib_format::limits::MAX_CHUNK_LEN {
                return true;
            }
            let end = e.offset + (romlib_format::pack::RECORD_HEADER_LEN as u64) + e.clen as u64;
            needed += end - e.offset;
            if spans.len() == MAX_SPOOL_PACKS && !spans.contains_key(&e.pack_id) {
                return false;
            }
            let s = spans.entry(e.pack_id).or_insert((e.offset, end));
            s.0 = s.0.min(e.offset);
            s.1 = s.1.max(end);
            true
        };
        for k in 0.. {
            match self.locator.entry(k)? {
                Some(_) if held(k) => {}
                Some(e) if add(e.to_index(0)) => {}
                Some(_) => return Ok(0),
                None => break,
            }
        }
        for k in 0..self.locator.base_count() {
            match self.locator.base_with_hash_at(k)? {
                Some((h, _)) if base_held(&h) => {}
                Some((_, e)) if !add(e) => return Ok(0),
                _ => {}
            }
        }
        if spans.is_empty() {
            return Ok(0);
        }
        let total: u64 = spans.values().map(|(a, b)| b - a).sum();
        if total > 2 * needed + (64 << 20) || room.is_some_and(|r| total > r) {
            return Ok(0);
        }
        // A name left by an attempt that could not remove it goes first.
        folder.remove_file(name)?;
        let file = folder.create_scratch(name)?;
        let path = folder.at(name);
        let removed = folder.remove_file(name).is_ok();
        let list: Vec<(u32, u64, u64)> = spans.into_iter().map(|(id, (a, b))| (id, a, b)).collect();
        let copied = self.packs.spool(&list, file, path);
        if !removed {
            self.packs.remove_spool_after(folder.try_clone()?, name);
        }
        let copied = copied?;
        remote.count_extra(copied.saturating_sub(needed));
        Ok(copied)
    }

    /// The hashes of the base chunks the game's locator lists (none for a table).
    pub fn base_hashes(&self) -> Result<Vec<[u8; 32]>> {
        self.locator.base_hashes()
    }

    /// The hashes of the first `n` base chunks the game's locator lists.
    pub fn first_base_hashes(&self, n: u64) -> Result<Vec<[u8; 32]>> {
        self.locator.first_base_hashes(n)
    }

    /// Whether the game has delta chunks (its locator lists bases).
    pub fn has_deltas(&self) -> bool {
        self.locator.base_count() > 0
    }

    /// The pack reader, for records found by hash rather than by table position.
    pub fn packs(&mut self) -> &mut PackReader {
        &mut self.packs
    }
}
