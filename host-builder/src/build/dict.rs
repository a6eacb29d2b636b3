//! Training a zstd dictionary from a library's own chunks.

use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::library::pack_scan::scan_pack;
use romlib_device::Library;
use romlib_format::pack::{Method, RECORD_HEADER_LEN};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// What `train_dict` did.
#[derive(Debug, Clone, Copy)]
pub struct TrainReport {
    /// Chunks used as samples.
    pub samples: usize,
    /// Their total bytes.
    pub sample_bytes: usize,
    /// Size of the dictionary written.
    pub dict_bytes: usize,
    /// Its zstd dictionary id.
    pub dict_id: u32,
}

/// Trains a dictionary of at most `dict_size` bytes from up to `max_sample_bytes` of the
/// library's chunks, taken at an even stride across all packs (deterministic).
pub fn train_dict(
    lib: &Library,
    out: &Path,
    dict_size: usize,
    max_sample_bytes: usize,
) -> Result<TrainReport> {
    let dir = lib.packs_dir();
    let mut ids: Vec<u32> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, "read folder", e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            romlib_format::layout::parse_pack_file_name(&e.file_name().to_string_lossy())
        })
        .collect();
    ids.sort();
    let mut all = Vec::new();
    let mut total: u64 = 0;
    for id in &ids {
        let (_, recs) = scan_pack(&lib.pack_path(*id), *id)?;
        for (off, r) in recs {
            // Dictionary-compressed records would train on themselves; a delta is a near
            // copy of its base, which is sampled already.
            if r.method != Method::ZstdDict && r.method != Method::ZstdDelta {
                total += r.ulen as u64;
                all.push((*id, off, r));
            }
        }
    }
    if all.is_empty() {
        return Err(Error::library(
            &dir,
            "no chunks to train from; build the library first",
        ));
    }
    let stride = (total / max_sample_bytes.max(1) as u64).max(1) as usize;
    let mut samples = Vec::new();
    let mut sizes = Vec::new();
    let mut payload = Vec::new();
    let mut dctx = zstd_safe::DCtx::create();
    for (n, (id, off, r)) in all.iter().enumerate() {
        if n % stride != 0 || samples.len() + r.ulen as usize > max_sample_bytes {
            continue;
        }
        let path = lib.pack_path(*id);
        let mut f = File::open(&path).map_err(|e| Error::io(&path, "open", e))?;
        f.seek(SeekFrom::Start(off + RECORD_HEADER_LEN as u64))
            .map_err(|e| Error::io(&path, "seek", e))?;
        payload.resize(r.clen as usize, 0);
        f.read_exact(&mut payload)
            .map_err(|e| Error::io(&path, "read", e))?;
        let start = samples.len();
        match r.method {
            Method::Stored => samples.extend_from_slice(&payload),
            _ => {
                samples.resize(start + r.ulen as usize, 0);
                let got = dctx
                    .decompress(&mut samples[start..], &payload)
                    .map_err(|c| {
                        Error::library(
                            &path,
                            format!("chunk at {off}: {}", zstd_safe::get_error_name(c)),
                        )
                    })?;
                samples.truncate(start + got);
            }
        }
        sizes.push(samples.len() - start);
    }
    let mut dict: Vec<u8> = Vec::with_capacity(dict_size);
    let n = zstd_safe::train_from_buffer(&mut dict, &samples, &sizes).map_err(|c| {
        Error::library(
            &dir,
            format!(
                "dictionary training failed: {}",
                zstd_safe::get_error_name(c)
            ),
        )
    })?;
    dict.truncate(n);
    let dict_id = zstd_safe::get_dict_id(&dict).map(|i| i.get()).unwrap_or(0);
    write_atomic(out, &dict, 0o644)?;
    Ok(TrainReport {
        samples: sizes.len(),
        sample_bytes: samples.len(),
        dict_bytes: dict.len(),
        dict_id,
    })
}
