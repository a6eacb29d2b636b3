//! Moving games between libraries and devices: one-file copies of games (SPEC section 11;
//! [`export`] and [`import`]), a library served over HTTP ([`serve`]) and one published to
//! an S3-compatible bucket ([`publish`], through [`s3`]).
//!
//! Export and import share the reading side here: the chunk records a game needs, each
//! decoded and checked against its signed hash before it is copied.

pub mod export;
pub mod import;
pub mod publish;
pub mod s3;
pub mod serve;

use crate::error::{Error, Result};
use crate::zstd_decoder::ZstdDecoder;
use romlib_device::chunks::packs::PackReader;
use romlib_device::chunks::{base_failed, decode_verified, delta_base, BaseChunk, ChunkSource};
use romlib_device::fsio::read_exact_at;
use romlib_device::{Library, VerifiedManifest};
use romlib_format::index::ChunkEntry;
use romlib_format::manifest::ChunkRef;
use romlib_format::pack::Method;
use std::collections::HashMap;

/// One distinct chunk of an export, in order of first use (or a delta a prune stores
/// whole).
pub(crate) struct Planned {
    pub(crate) hash: [u8; 32],
    pub(crate) ulen: u32,
    pub(crate) entry: ChunkEntry,
    /// Dictionary its record needs (0: none).
    pub(crate) dict: u32,
    /// A delta's base chunk in the source, and where it is stored there (with its length).
    pub(crate) base: Option<([u8; 32], ChunkEntry)>,
}

impl Planned {
    /// Chunk `hash` of `ulen` bytes, whose record `entry` locates, with the dictionary its
    /// record needs (asked of `packs`, cached in `dicts`).
    pub(super) fn new(
        packs: &mut PackReader,
        dicts: &mut HashMap<u32, u32>,
        hash: [u8; 32],
        ulen: u32,
        entry: ChunkEntry,
    ) -> Result<Self> {
        let dict = if entry.method == Method::ZstdDict {
            pack_dict(packs, entry.pack_id, dicts)?
        } else {
            0
        };
        Ok(Self {
            hash,
            ulen,
            entry,
            dict,
            base: None,
        })
    }
}

/// The base of chunk-table record `i` (chunk `c`, stored at `entry`) if it is a delta: the
/// base's hash, and where `source` holds it (with the length its record gives).
pub(super) fn base_of(
    source: &mut ChunkSource,
    i: u64,
    c: &ChunkRef,
    entry: &ChunkEntry,
    scratch: &mut Vec<u8>,
) -> Result<Option<([u8; 32], ChunkEntry)>> {
    if entry.method != Method::ZstdDelta {
        return Ok(None);
    }
    scratch.clear();
    let rec = source.read_record(i, c, scratch)?;
    let lib = source.packs().library().clone();
    let base = delta_base(&rec, &scratch[rec.payload.clone()], &lib)?;
    let mut at = source.locate_base(&c.hash, &base)?;
    scratch.clear();
    let r = source
        .packs()
        .read_base_record(&base, &at, scratch)
        .map_err(|e| base_failed(&c.hash, &base, e))?;
    at.ulen = r.ulen;
    Ok(Some((base, at)))
}

/// The bytes of a game's manifest file, as the library holds them.
pub(super) fn manifest_bytes(lib: &Library, m: &VerifiedManifest) -> Result<Vec<u8>> {
    if let Some(p) = lib.portable() {
        let title = &m.body().title_id;
        let g = p
            .game(title)
            .ok_or_else(|| Error::library(p.path(), format!("{title} vanished")))?;
        let mut buf = vec![0u8; g.manifest_len as usize];
        read_exact_at(p.file(), &mut buf, g.manifest_offset)
            .map_err(|e| Error::io(p.path(), "read", e))?;
        return Ok(buf);
    }
    std::fs::read(m.path()).map_err(|e| Error::io(m.path(), "read", e))
}

/// The dictionary id of pack `id` (cached: the reader keeps only a few packs open).
fn pack_dict(packs: &mut PackReader, id: u32, cache: &mut HashMap<u32, u32>) -> Result<u32> {
    if let Some(d) = cache.get(&id) {
        return Ok(*d);
    }
    let d = packs.dict_id(id)?;
    cache.insert(id, d);
    Ok(d)
}

/// Reads the record of `c` from `lib`, decodes it (a delta against its base, read and
/// checked first into `base` unless it is there already) and checks it against its signed
/// hash; leaves the whole record (header and payload, verbatim) in `rec`, the chunk in
/// `out`, and returns the dictionary id its pack uses.
pub(crate) fn read_checked(
    lib: &Library,
    packs: &mut PackReader,
    dec: &mut ZstdDecoder,
    c: &Planned,
    base: &mut BaseChunk,
    rec: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<u32> {
    let base = match &c.base {
        None => None,
        Some((h, e)) => {
            if base.hash != Some(*h) {
                base.hash = None;
                packs
                    .read_chunk(h, e.ulen, e, dec, &mut base.data)
                    .map_err(|err| base_failed(&c.hash, h, err))?;
                base.hash = Some(*h);
            }
            Some(&*base)
        }
    };
    rec.clear();
    let r = packs.read_record(&c.hash, &c.entry, c.ulen, rec)?;
    out.resize(c.ulen as usize, 0);
    decode_verified(lib, &r, &rec[r.payload.clone()], base, dec, out)?;
    Ok(r.dict_id)
}
