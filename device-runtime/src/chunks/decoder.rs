//! The chunk decoder seam: the device decodes with pure-Rust ruzstd; the host's `romlib
//! install` plugs in C zstd for speed. Both must fill `dst` exactly.

use romlib_format::limits::MAX_WINDOW_SIZE;
use romlib_format::pack::Method;
use ruzstd::decoding::{Dictionary, FrameDecoder};

/// Decodes one chunk payload into a buffer of exactly the chunk's length.
pub trait ChunkDecoder {
    /// Makes the dictionary with id `id` available (called before any chunk that needs it).
    fn load_dict(&mut self, id: u32, bytes: &[u8]) -> Result<(), String>;
    /// Whether dictionary `id` is loaded.
    fn has_dict(&self, id: u32) -> bool;
    /// Decodes `src` into all of `dst`; fails if the frame decodes to any other length.
    fn decode(&mut self, method: Method, src: &[u8], dst: &mut [u8]) -> Result<(), String>;
    /// A fresh decoder of the same kind, for another thread (dictionaries are loaded into
    /// it again when needed).
    fn another(&self) -> Box<dyn ChunkDecoder + Send>;
}

/// Most dictionaries one install keeps loaded.
pub const MAX_LOADED_DICTS: usize = 4;

/// Pure-Rust zstd decoding (no C), with one reused frame decoder.
pub struct RuzstdDecoder {
    fd: FrameDecoder,
    dicts: heapless::Vec<u32, MAX_LOADED_DICTS>,
}

impl Default for RuzstdDecoder {
    fn default() -> Self {
        let mut fd = FrameDecoder::new();
        fd.set_max_window_size(MAX_WINDOW_SIZE);
        Self {
            fd,
            dicts: heapless::Vec::new(),
        }
    }
}

impl std::fmt::Debug for RuzstdDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuzstdDecoder")
            .field("dicts", &self.dicts)
            .finish()
    }
}

impl ChunkDecoder for RuzstdDecoder {
    fn load_dict(&mut self, id: u32, bytes: &[u8]) -> Result<(), String> {
        if self.has_dict(id) {
            return Ok(());
        }
        let d = Dictionary::decode_dict(bytes).map_err(|e| format!("bad dictionary: {e}"))?;
        if d.id != id {
            return Err(format!(
                "dictionary file holds id {:08x}, expected {id:08x}",
                d.id
            ));
        }
        self.dicts
            .push(id)
            .map_err(|_| "too many dictionaries in one game".to_string())?;
        self.fd
            .add_dict(d)
            .map_err(|e| format!("bad dictionary: {e}"))
    }

    fn has_dict(&self, id: u32) -> bool {
        self.dicts.contains(&id)
    }

    fn another(&self) -> Box<dyn ChunkDecoder + Send> {
        Box::new(RuzstdDecoder::default())
    }

    fn decode(&mut self, method: Method, src: &[u8], dst: &mut [u8]) -> Result<(), String> {
        match method {
            Method::Stored => {
                if src.len() != dst.len() {
                    return Err("stored payload length differs from the chunk length".into());
                }
                dst.copy_from_slice(src);
                Ok(())
            }
            Method::Zstd | Method::ZstdDict => {
                let n = self
                    .fd
                    .decode_all(src, dst)
                    .map_err(|e| format!("zstd: {e}"))?;
                if n != dst.len() {
                    return Err(format!(
                        "zstd frame decoded to {n} bytes, expected {}",
                        dst.len()
                    ));
                }
                Ok(())
            }
        }
    }
}
