//! Moving games between libraries and devices: one-file copies of games (SPEC section 11;
//! [`export`] and [`import`]) and a library served over HTTP ([`serve`]).
//!
//! Export and import share the reading side here: the chunk records a game needs, each
//! decoded and checked against its signed hash before it is copied.

pub mod export;
pub mod import;
pub mod serve;

use crate::error::{Error, Result};
use crate::zstd_decoder::ZstdDecoder;
use romlib_device::chunks::decode_verified;
use romlib_device::chunks::packs::PackReader;
use romlib_device::fsio::read_exact_at;
use romlib_device::{Library, VerifiedManifest};
use romlib_format::index::ChunkEntry;
use romlib_format::pack::Method;
use std::collections::HashMap;

/// One distinct chunk of an export, in order of first use.
pub(super) struct Planned {
    pub(super) hash: [u8; 32],
    pub(super) ulen: u32,
    pub(super) entry: ChunkEntry,
    /// Dictionary its record needs (0: none).
    pub(super) dict: u32,
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
        })
    }
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

/// Reads the record of `c` from `lib`, decodes it and checks it against its signed hash;
/// leaves the whole record (header and payload, verbatim) in `rec` and returns the
/// dictionary id its pack uses.
pub(super) fn read_checked(
    lib: &Library,
    packs: &mut PackReader,
    dec: &mut ZstdDecoder,
    c: &Planned,
    rec: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<u32> {
    rec.clear();
    let r = packs.read_record(&c.hash, &c.entry, c.ulen, rec)?;
    out.resize(c.ulen as usize, 0);
    decode_verified(lib, &r, &rec[r.payload.clone()], None, dec, out)?;
    Ok(r.dict_id)
}
