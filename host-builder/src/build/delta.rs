//! Similar-chunk deltas in a build: choosing a base for a new chunk by its resemblance
//! sketch ([`crate::library::sketch`]), and getting the base's bytes to compress against.
//!
//! A base is always a chunk stored whole (never a delta: chains are one link deep), found
//! through the index's `sketches` table (chunks of earlier runs and of earlier batches of
//! this one) or among the chunks earlier in the same batch. Choices are made in input
//! order, from what precedes each chunk, so the same input gives the same library
//! whatever the thread count.

use crate::error::{Error, Result};
use crate::library::writer::PackFile;
use crate::zstd_decoder::ZstdDecoder;
use romlib_device::chunks::packs::PackReader;
use romlib_device::chunks::{decode_verified, RecordRef};
use romlib_device::Library;
use romlib_format::index::ChunkEntry;
use romlib_format::pack::{RecordHeader, RECORD_HEADER_LEN};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Default share of a chunk's ordinary compressed size that its delta must save to be
/// stored instead, in percent.
pub const DEFAULT_DELTA_GAIN: u32 = 50;

/// Bytes of recently stored chunks kept for use as bases: most near-copies sit close to
/// their parent in the input, so most bases are found here rather than decoded again.
const CACHE_BYTES: usize = 256 << 20;

/// The candidate with the most matching super-features; ties go to the first seen.
pub(super) fn choose<T: PartialEq + Copy>(candidates: &[T]) -> Option<T> {
    let mut best: Option<(T, usize)> = None;
    for (i, c) in candidates.iter().enumerate() {
        if candidates[..i].contains(c) {
            continue;
        }
        let votes = candidates.iter().filter(|d| *d == c).count();
        if best.is_none_or(|(_, v)| votes > v) {
            best = Some((*c, votes));
        }
    }
    best.map(|(c, _)| c)
}

/// Whether a delta payload of `delta` bytes is worth storing instead of `plain` bytes.
pub(crate) fn worth_it(delta: usize, plain: usize, gain: u32) -> bool {
    (delta as u64) * 100 <= (plain as u64) * (100 - gain.min(100)) as u64
}

/// The bytes of base chunks: recently stored ones from memory, others decoded from the
/// library's packs (or read back from the pack being written) and checked.
pub(super) struct Bases {
    cache: HashMap<[u8; 32], Arc<Vec<u8>>>,
    order: VecDeque<[u8; 32]>,
    bytes: usize,
    packs: Option<PackReader>,
    decoder: ZstdDecoder,
}

impl Bases {
    pub(super) fn new() -> Self {
        Self {
            cache: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            packs: None,
            decoder: ZstdDecoder::default(),
        }
    }

    /// Keeps the bytes of stored chunk `hash` for later deltas (oldest dropped first).
    pub(super) fn remember(&mut self, hash: [u8; 32], data: &[u8]) {
        if self.cache.contains_key(&hash) || data.len() > CACHE_BYTES {
            return;
        }
        while self.bytes + data.len() > CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(d) = self.cache.remove(&old) {
                self.bytes -= d.len();
            }
        }
        self.bytes += data.len();
        self.cache.insert(hash, Arc::new(data.to_vec()));
        self.order.push_back(hash);
    }

    /// The verified bytes of base chunk `hash`, stored where `entry` says; `open` is the
    /// pack being written (whose records are read back from its unsealed file).
    pub(super) fn get(
        &mut self,
        lib: &Library,
        hash: &[u8; 32],
        entry: &ChunkEntry,
        open: Option<&mut PackFile>,
    ) -> Result<Arc<Vec<u8>>> {
        if let Some(d) = self.cache.get(hash) {
            return Ok(d.clone());
        }
        let mut out = vec![0u8; entry.ulen as usize];
        match open.filter(|p| p.id() == entry.pack_id) {
            Some(p) => {
                let mut rec = vec![0u8; RECORD_HEADER_LEN + entry.clen as usize];
                p.read_back(entry.offset, &mut rec)?;
                let header = RecordHeader::decode(&rec[..RECORD_HEADER_LEN])
                    .map_err(|e| Error::library(lib.index_path(), e.to_string()))?;
                let r = RecordRef {
                    hash: header.hash,
                    ulen: header.ulen,
                    payload: RECORD_HEADER_LEN..rec.len(),
                    pack_id: entry.pack_id,
                    offset: entry.offset,
                    dict_id: p.dict_id(),
                    method: header.method,
                };
                if &header.hash != hash || header.ulen != entry.ulen {
                    return Err(Error::library(
                        lib.index_path(),
                        "the pack being written holds another chunk where the index says",
                    ));
                }
                decode_verified(
                    lib,
                    &r,
                    &rec[r.payload.clone()],
                    None,
                    &mut self.decoder,
                    &mut out,
                )?;
            }
            None => {
                let packs = self.packs.get_or_insert_with(|| PackReader::new(lib));
                packs.read_chunk(hash, entry.ulen, entry, &mut self.decoder, &mut out)?;
            }
        }
        let d = Arc::new(out);
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_voted_candidate_wins_and_ties_go_to_the_first() {
        assert_eq!(choose::<u8>(&[]), None);
        assert_eq!(choose(&[3, 1, 1, 2]), Some(1));
        assert_eq!(choose(&[3, 1, 2, 3, 1]), Some(3));
        assert!(worth_it(50, 100, 50));
        assert!(!worth_it(51, 100, 50));
        assert!(worth_it(100, 100, 0));
    }
}
