//! C zstd behind the device runtime's decoder seam, so `romlib install` on a build server
//! decodes at C speed through the same install code the device runs.

use romlib_device::chunks::decoder::ChunkDecoder;
use romlib_format::pack::Method;
use std::collections::HashMap;
use zstd_safe::{DCtx, DDict};

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

    fn decode(&mut self, method: Method, src: &[u8], dst: &mut [u8]) -> Result<(), String> {
        if method == Method::Stored {
            if src.len() != dst.len() {
                return Err("stored payload length differs from the chunk length".into());
            }
            dst.copy_from_slice(src);
            return Ok(());
        }
        // The frame must declare its size, and exactly the chunk's size.
        match zstd_safe::get_frame_content_size(src) {
            Ok(Some(n)) if n == dst.len() as u64 => {}
            Ok(Some(n)) => {
                return Err(format!(
                    "zstd frame declares {n} bytes, expected {}",
                    dst.len()
                ))
            }
            _ => return Err("zstd frame does not declare its content size".into()),
        }
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
        match res {
            Ok(n) if n == dst.len() => Ok(()),
            Ok(n) => Err(format!(
                "zstd frame decoded to {n} bytes, expected {}",
                dst.len()
            )),
            Err(c) => Err(format!("zstd: {}", zstd_safe::get_error_name(c))),
        }
    }
}
