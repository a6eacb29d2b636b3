//! The chunk decoder seam: the device decodes with pure-Rust ruzstd; the host's `romlib
//! install` plugs in C zstd for speed. Both must fill `dst` exactly.
//!
//! A delta chunk (method 3) is one zstd frame compressed against the raw bytes of its base
//! chunk: zstd's raw-content dictionary (the mechanism of `zstd --patch-from`), whose
//! repeat offsets start at 1, 4 and 8 as for any frame.

use romlib_format::limits::MAX_WINDOW_SIZE;
use romlib_format::pack::Method;
use ruzstd::decoding::{BlockDecodingStrategy, Dictionary, FrameDecoder};

/// Decodes one chunk payload into a buffer of exactly the chunk's length.
pub trait ChunkDecoder {
    /// Makes the dictionary with id `id` available (called before any chunk that needs it).
    fn load_dict(&mut self, id: u32, bytes: &[u8]) -> Result<(), String>;
    /// Whether dictionary `id` is loaded.
    fn has_dict(&self, id: u32) -> bool;
    /// Decodes `src` into all of `dst`; fails if the frame decodes to any other length.
    /// A delta ([`Method::ZstdDelta`]) needs its base: see [`ChunkDecoder::decode_delta`].
    fn decode(&mut self, method: Method, src: &[u8], dst: &mut [u8]) -> Result<(), String>;
    /// Decodes the zstd `frame` of a delta chunk against the raw bytes of its (verified)
    /// base chunk into all of `dst`.
    fn decode_delta(&mut self, base: &[u8], frame: &[u8], dst: &mut [u8]) -> Result<(), String>;
    /// A fresh decoder of the same kind, for another thread (dictionaries are loaded into
    /// it again when needed).
    fn another(&self) -> Box<dyn ChunkDecoder + Send>;
}

/// Most dictionaries one install keeps loaded.
pub const MAX_LOADED_DICTS: usize = 4;

/// Dictionary id under which [`RuzstdDecoder`] holds a delta's base (a raw-content
/// dictionary has no id of its own; delta frames name none, and trained dictionaries never
/// use this one, which zstd reserves).
const BASE_DICT_ID: u32 = 0;

/// A delta's base as ruzstd's raw-content dictionary: the base's bytes as the "past" of the
/// frame, repeat offsets 1, 4 and 8 as for any frame, and no entropy tables. A delta frame is
/// compressed with no tables to repeat, so its first block carries its own; a frame that asks
/// to repeat a table anyway is refused by ruzstd as for any frame without a dictionary ("table
/// is uninitialized"). Built from the fields, not parsed from a formatted dictionary: parsing
/// one built entropy tables that were never used, twice per delta (measured: 11% of a
/// delta-heavy install's CPU). The golden vector in `tests/tests/golden.rs` proves the pairing
/// with C zstd's `ref_prefix`.
fn raw_content(content: Vec<u8>) -> Dictionary {
    Dictionary {
        id: BASE_DICT_ID,
        fse: Default::default(),
        huf: Default::default(),
        dict_content: content,
        offset_hist: [1, 4, 8],
    }
}

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
                check_len(n, dst.len())
            }
            Method::ZstdDelta => Err("a delta chunk needs its base chunk to decode".into()),
        }
    }

    fn decode_delta(&mut self, base: &[u8], frame: &[u8], dst: &mut [u8]) -> Result<(), String> {
        use std::io::Read;
        self.fd
            .add_dict(raw_content(base.to_vec()))
            .map_err(|e| format!("raw-content dictionary: {e}"))?;
        let mut src = frame;
        let fd = &mut self.fd;
        let res = (|| -> Result<usize, String> {
            // The frame header is checked against MAX_WINDOW_SIZE here, before any block.
            fd.init(&mut src).map_err(|e| format!("zstd: {e}"))?;
            if fd.content_size() != dst.len() as u64 {
                return Err(format!(
                    "delta frame declares {} bytes, expected {}",
                    fd.content_size(),
                    dst.len()
                ));
            }
            fd.force_dict(BASE_DICT_ID)
                .map_err(|e| format!("zstd: {e}"))?;
            let mut n = 0;
            loop {
                fd.decode_blocks(&mut src, BlockDecodingStrategy::UptoBytes(1 << 20))
                    .map_err(|e| format!("zstd: {e}"))?;
                let got = fd.read(&mut dst[n..]).map_err(|e| format!("zstd: {e}"))?;
                n += got;
                if fd.can_collect() != 0 && n == dst.len() {
                    return Err(format!(
                        "delta frame decodes to more than {} bytes",
                        dst.len()
                    ));
                }
                if fd.is_finished() && fd.can_collect() == 0 {
                    break;
                }
                if got == 0 && src.is_empty() && !fd.is_finished() {
                    return Err("delta frame is truncated".into());
                }
            }
            if !src.is_empty() {
                return Err("bytes after the delta frame".into());
            }
            Ok(n)
        })();
        // Drop the base's copy: the next delta has another base.
        self.fd.add_dict(raw_content(Vec::new())).ok();
        check_len(res?, dst.len())
    }
}

fn check_len(n: usize, want: usize) -> Result<(), String> {
    if n != want {
        return Err(format!("zstd frame decoded to {n} bytes, expected {want}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_delta_frames_are_errors_not_panics() {
        let mut d = RuzstdDecoder::default();
        let base = vec![7u8; 4096];
        let mut out = vec![0u8; 4096];
        for frame in [&b""[..], b"\x28\xb5\x2f\xfd", &[0xffu8; 64][..]] {
            assert!(d.decode_delta(&base, frame, &mut out).is_err());
        }
        assert!(d.decode(Method::ZstdDelta, &[0; 40], &mut out).is_err());
    }
}
