//! Per-chunk zstd compression with C zstd, one context per worker thread.

use romlib_format::pack::Method;
use std::cell::RefCell;
use std::sync::Arc;
use zstd_safe::{CCtx, CParameter, ResetDirective};

/// How chunks are compressed in this run.
#[derive(Clone)]
pub struct Compressor {
    level: i32,
    dict: Option<Arc<Vec<u8>>>,
    dict_id: u32,
}

thread_local! {
    static CTX: RefCell<Option<(u32, i32, CCtx<'static>)>> = const { RefCell::new(None) };
    /// A second context for deltas: each loads its base as the dictionary, which must not
    /// disturb the run's trained dictionary in `CTX`.
    static DELTA_CTX: RefCell<Option<(i32, CCtx<'static>)>> = const { RefCell::new(None) };
}

impl Compressor {
    /// Level 1 to 22; `dict` is a zstd dictionary and its id.
    pub fn new(level: i32, dict: Option<(Arc<Vec<u8>>, u32)>) -> Self {
        let (dict, dict_id) = match dict {
            Some((d, id)) => (Some(d), id),
            None => (None, 0),
        };
        Self {
            level,
            dict,
            dict_id,
        }
    }

    /// The dictionary id packs of this run carry (0 for none).
    pub fn dict_id(&self) -> u32 {
        self.dict_id
    }

    /// The payload of `src` as a delta against the raw bytes of `base` (whose BLAKE3 is
    /// `base_hash`): the base's hash, then one zstd frame (SPEC section 2.2, method 3).
    /// `None` when zstd fails or the base begins with the zstd dictionary magic, which C
    /// zstd would read as a formatted dictionary.
    pub fn compress_delta(&self, src: &[u8], base_hash: &[u8; 32], base: &[u8]) -> Option<Vec<u8>> {
        if base.starts_with(&crate::zstd_decoder::ZSTD_DICT_MAGIC) {
            return None;
        }
        let mut frame: Vec<u8> = Vec::with_capacity(src.len());
        let ok = DELTA_CTX.with(|cell| {
            let mut slot = cell.borrow_mut();
            if !matches!(&*slot, Some((lvl, _)) if *lvl == self.level) {
                let mut cctx = CCtx::create();
                let setup = (|| {
                    cctx.set_parameter(CParameter::CompressionLevel(self.level))?;
                    cctx.set_parameter(CParameter::ContentSizeFlag(true))?;
                    cctx.set_parameter(CParameter::ChecksumFlag(false))?;
                    cctx.set_parameter(CParameter::DictIdFlag(false))?;
                    Ok::<(), usize>(())
                })();
                if setup.is_err() {
                    return false;
                }
                *slot = Some((self.level, cctx));
            }
            let Some((_, cctx)) = slot.as_mut() else {
                return false;
            };
            cctx.load_dictionary(base).is_ok() && cctx.compress2(&mut frame, src).is_ok()
        });
        if !ok || frame.is_empty() {
            return None;
        }
        let mut payload = Vec::with_capacity(base_hash.len() + frame.len());
        payload.extend_from_slice(base_hash);
        payload.extend_from_slice(&frame);
        Some(payload)
    }

    /// Compresses one chunk. Returns the method and payload; a chunk that does not shrink
    /// is stored as it is.
    pub fn compress(&self, src: &[u8]) -> (Method, Vec<u8>) {
        let mut out: Vec<u8> = Vec::with_capacity(src.len().saturating_sub(1));
        let ok = CTX.with(|cell| {
            let mut slot = cell.borrow_mut();
            let fresh =
                !matches!(&*slot, Some((id, lvl, _)) if *id == self.dict_id && *lvl == self.level);
            if fresh {
                let mut cctx = CCtx::create();
                let setup = (|| {
                    cctx.reset(ResetDirective::SessionAndParameters)?;
                    cctx.set_parameter(CParameter::CompressionLevel(self.level))?;
                    cctx.set_parameter(CParameter::ContentSizeFlag(true))?;
                    cctx.set_parameter(CParameter::ChecksumFlag(false))?;
                    cctx.set_parameter(CParameter::DictIdFlag(true))?;
                    if let Some(d) = &self.dict {
                        cctx.load_dictionary(d)?;
                    }
                    Ok::<(), usize>(())
                })();
                if setup.is_err() {
                    return false;
                }
                *slot = Some((self.dict_id, self.level, cctx));
            }
            let Some((_, _, cctx)) = slot.as_mut() else {
                return false;
            };
            cctx.compress2(&mut out, src).is_ok()
        });
        if ok && !out.is_empty() && out.len() < src.len() {
            let m = if self.dict.is_some() {
                Method::ZstdDict
            } else {
                Method::Zstd
            };
            (m, out)
        } else {
            (Method::Stored, src.to_vec())
        }
    }
}
