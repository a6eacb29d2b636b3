//! Chunks, verified: where a game's chunks lie ([`locator`]), reading their records from
//! packs ([`packs`]), decoding them ([`decoder`]), and chunks already on the device
//! ([`reuse`]).
//!
//! [`ChunkSource`] is the one way from a chunk-table record to verified bytes, whatever
//! holds the library; [`decode_verified`] is the one place a record's payload becomes
//! bytes, and it returns only bytes whose BLAKE3 is the one the signed manifest gives.
//! Every reader (install, verify, in-place reads, the mount, export) goes through them.

pub mod decoder;
pub mod index;
pub mod locator;
pub mod packs;
pub mod reuse;

use crate::error::{Error, Result};
use crate::library::Library;
use crate::trusted::VerifiedManifest;
use decoder::ChunkDecoder;
use locator::ChunkLocator;
use packs::PackReader;
use romlib_format::index::ChunkEntry;
use romlib_format::manifest::ChunkRef;
use romlib_format::pack::Method;
use std::path::PathBuf;

/// A chunk record that was read but not yet decoded: which chunk it holds, where it came
/// from and how it is stored.
#[derive(Debug, Clone)]
pub struct RecordRef {
    /// The chunk's BLAKE3 (from the signed manifest; the record header named the same).
    pub hash: [u8; 32],
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

/// Decodes the `payload` of record `rec` into all of `out`, loading the pack's dictionary
/// into `decoder` first when the record needs it, and checks the result against the
/// chunk's signed BLAKE3. On success `out` holds verified bytes; on failure nothing in it
/// may be used.
pub fn decode_verified(
    lib: &Library,
    rec: &RecordRef,
    payload: &[u8],
    decoder: &mut dyn ChunkDecoder,
    out: &mut [u8],
) -> Result<()> {
    if rec.method == Method::ZstdDict && !decoder.has_dict(rec.dict_id) {
        let bytes = lib.read_dict(rec.dict_id)?;
        decoder
            .load_dict(rec.dict_id, &bytes)
            .map_err(|e| Error::manifest(lib.dict_path(rec.dict_id), e))?;
    }
    decoder.decode(rec.method, payload, out).map_err(|e| {
        Error::chunk(
            lib.pack_path(rec.pack_id),
            &rec.hash,
            format!("at offset {}: {e}", rec.offset),
        )
    })?;
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

/// The chunks of one game of a library: from a chunk-table record to its stored record
/// and on to verified bytes, whether the library is a folder, a portable file or on an
/// HTTP server.
pub struct ChunkSource {
    manifest: PathBuf,
    locator: ChunkLocator,
    packs: PackReader,
}

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
        })
    }

    /// Where chunk-table record `i` (chunk `c`) is stored. Only a hint: the record found
    /// there must name the chunk, and its decoded bytes must hash to it.
    pub fn locate(&self, i: u64, c: &ChunkRef) -> Result<ChunkEntry> {
        self.locator.lookup(i, &c.hash, c.len)?.ok_or_else(|| {
            Error::chunk(
                &self.manifest,
                &c.hash,
                "not in the library's index (incomplete library, or an altered chunk table)",
            )
        })
    }

    /// Appends the record of chunk-table record `i` (chunk `c`) to `buf`, still encoded,
    /// for [`decode_verified`] (perhaps on another thread). Over HTTP, the records that
    /// follow it in the same pack are fetched with it, in one range request.
    pub fn read_record(&mut self, i: u64, c: &ChunkRef, buf: &mut Vec<u8>) -> Result<RecordRef> {
        let entry = self.locate(i, c)?;
        self.packs.plan(&self.locator, i, &entry)?;
        self.packs.read_record(&c.hash, &entry, c.len, buf)
    }

    /// Reads chunk-table record `i` (chunk `c`), decodes it into `out` (resized to the
    /// chunk's length) and checks it: `out` then holds verified bytes.
    pub fn read_chunk(
        &mut self,
        i: u64,
        c: &ChunkRef,
        decoder: &mut dyn ChunkDecoder,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let entry = self.locate(i, c)?;
        self.packs.plan(&self.locator, i, &entry)?;
        self.packs.read_chunk(&c.hash, c.len, &entry, decoder, out)
    }

    /// The pack reader, for records found by hash rather than by table position.
    pub fn packs(&mut self) -> &mut PackReader {
        &mut self.packs
    }
}
