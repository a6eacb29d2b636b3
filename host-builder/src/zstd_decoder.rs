//! C zstd behind the device runtime's decoder seam, so `romlib install` on a build server
//! decodes at C speed through the same install code the device runs.

use romlib_device::chunks::decoder::ChunkDecoder;
use romlib_format::pack::Method;
use std::collections::HashMap;
use zstd_safe::{DCtx, DDict};

/// The first bytes of a formatted zstd dictionary: a base never begins with them.
pub const ZSTD_DICT_MAGIC: [u8; 4] = [0x37, 0xa4, 0x30, 0xec];

/// Decodes chunks with C zstd.
pub struct ZstdDecoder {
    dctx: DCtx<'static>,
    dicts: HashMap<u32, DDict<'static>>,
}

impl Default for ZstdDecoder {
    fn default() -> Self {
        Self {
            dctx: DCtx::create(),
            dicts: HashMap::new(),
        }
    }
}

impl ChunkDecoder for ZstdDecoder {
    fn load_dict(&mut self, id: u32, bytes: &[u8]) -> Result<(), String> {
        let found = zstd_safe::get_dict_id(bytes).map(|i| i.get()).unwrap_or(0);
        if found != id {
            return Err(format!(
                "dictionary file holds id {found:08x}, expected {id:08x}"
            ));
        }
        self.dicts.insert(id, DDict::create(bytes));
        Ok(())
    }

    fn has_dict(&self, id: u32) -> bool {
        self.dicts.contains_key(&id)
    }

    fn another(&self) -> Box<dyn ChunkDecoder + Send> {
        Box::new(ZstdDecoder::default())
    }

    fn decode_delta(&mut self, base: &[u8], frame: &[u8], dst: &mut [u8]) -> Result<(), String> {
        check_content_size(frame, dst.len())?;
        if base.starts_with(&ZSTD_DICT_MAGIC) {
            // C zstd would take it for a formatted dictionary (SPEC section 2.2).
            return Err("base chunk begins with the zstd dictionary magic".into());
        }
        let zerr = |c| format!("zstd: {}", zstd_safe::get_error_name(c));
        // A copy of the base as a raw-content dictionary, for this frame only.
        self.dctx.load_dictionary(base).map_err(zerr)?;
        let res = self.dctx.decompress(dst, frame);
        self.dctx.disable_dictionary().map_err(zerr)?;
        decoded_len(res, dst.len())
    }

    fn decode(&mut self, method: Method, src: &[u8], dst: &mut [u8]) -> Result<(), String> {
        if method == Method::ZstdDelta {
            return Err("a delta chunk needs its base chunk to decode".into());
        }
        if method == Method::Stored {
            if src.len() != dst.len() {
                return Err("stored payload length differs from the chunk length".into());
            }
            dst.copy_from_slice(src);
            return Ok(());
        }
        check_content_size(src, dst.len())?;
        let res = match method {
            Method::ZstdDict => {
                let id = zstd_safe::get_dict_id_from_frame(src)
                    .map(|i| i.get())
                    .unwrap_or(0);
                let d = self
                    .dicts
                    .get(&id)
                    .ok_or_else(|| format!("dictionary {id:08x} not loaded"))?;
                self.dctx.decompress_using_ddict(dst, src, d)
            }
            _ => self.dctx.decompress(dst, src),
        };
        decoded_len(res, dst.len())
    }
}

/// The frame must declare its size, and exactly the chunk's size.
fn check_content_size(frame: &[u8], want: usize) -> Result<(), String> {
    match zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n == want as u64 => Ok(()),
        Ok(Some(n)) => Err(format!("zstd frame declares {n} bytes, expected {want}")),
        _ => Err("zstd frame does not declare its content size".into()),
    }
}

fn decoded_len(res: zstd_safe::SafeResult, want: usize) -> Result<(), String> {
    match res {
        Ok(n) if n == want => Ok(()),
        Ok(n) => Err(format!("zstd frame decoded to {n} bytes, expected {want}")),
        Err(c) => Err(format!("zstd: {}", zstd_safe::get_error_name(c))),
    }
}
