//! Reading a whole pack back and checking it: footer checksum and every record header.
//! Crash recovery adopts packs with it, dictionary training samples from it and `romlib
//! verify` checks every pack with it.

use crate::error::{Error, Result};
use romlib_format::index::PackInfo;
use romlib_format::pack::{
    PackFooter, PackHeader, RecordHeader, FOOTER_LEN, HEADER_LEN, RECORD_HEADER_LEN,
};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// How [`scan_pack_with`] says that every record was read but the footer checksum does
/// not match: some byte changed, and the records' own checks (decoding, hashing) say which.
pub const CHECKSUM_MISMATCH: &str = "footer checksum does not match the contents";

/// Reads a whole pack, checks its footer checksum and every record header, and returns its
/// info and the record headers with their offsets.
pub fn scan_pack(path: &Path, id: u32) -> Result<(PackInfo, Vec<(u64, RecordHeader)>)> {
    scan_pack_with(path, id, |_, _, _| Ok(()))
}

/// [`scan_pack`], also handing every record's offset, header and payload to `each` in order
/// (the pack's header comes first, so its dictionary id is known before any record).
pub fn scan_pack_with(
    path: &Path,
    id: u32,
    mut each: impl FnMut(u64, &RecordHeader, &[u8]) -> Result<()>,
) -> Result<(PackInfo, Vec<(u64, RecordHeader)>)> {
    let bad = |p: String| Error::library(path, format!("damaged pack: {p}"));
    let mut f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let len = f.metadata().map_err(|e| Error::io(path, "stat", e))?.len();
    if len < (HEADER_LEN + FOOTER_LEN) as u64 {
        return Err(bad(format!("only {len} bytes")));
    }
    let mut fb = [0u8; FOOTER_LEN];
    f.seek(SeekFrom::Start(len - FOOTER_LEN as u64))
        .map_err(|e| Error::io(path, "seek", e))?;
    f.read_exact(&mut fb)
        .map_err(|e| Error::io(path, "read", e))?;
    let footer = PackFooter::decode(&fb, len).map_err(|e| bad(e.to_string()))?;
    f.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(path, "seek", e))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut hasher = blake3::Hasher::new();
    let mut hb = [0u8; HEADER_LEN];
    r.read_exact(&mut hb)
        .map_err(|e| Error::io(path, "read", e))?;
    hasher.update(&hb);
    let header = PackHeader::decode(&hb).map_err(|e| bad(e.to_string()))?;
    if header.pack_id != id {
        return Err(bad(format!(
            "header says pack {} but the file name says {id}",
            header.pack_id
        )));
    }
    let end = len - FOOTER_LEN as u64;
    let mut pos = HEADER_LEN as u64;
    let mut records = Vec::new();
    let mut payload = Vec::new();
    while pos < end {
        let mut rb = [0u8; RECORD_HEADER_LEN];
        r.read_exact(&mut rb)
            .map_err(|e| Error::io(path, "read", e))?;
        hasher.update(&rb);
        let rec = RecordHeader::decode(&rb).map_err(|e| bad(format!("record at {pos}: {e}")))?;
        payload.resize(rec.clen as usize, 0);
        r.read_exact(&mut payload)
            .map_err(|e| Error::io(path, "read", e))?;
        hasher.update(&payload);
        each(pos, &rec, &payload)?;
        records.push((pos, rec));
        pos += (RECORD_HEADER_LEN + rec.clen as usize) as u64;
    }
    if pos != end || records.len() as u64 != footer.record_count {
        return Err(bad("records do not fill the space the footer gives".into()));
    }
    if hasher.finalize().as_bytes() != &footer.checksum {
        return Err(bad(CHECKSUM_MISMATCH.into()));
    }
    let info = PackInfo {
        file_len: len,
        record_count: footer.record_count,
        dict_id: header.dict_id,
        checksum: footer.checksum,
    };
    Ok((info, records))
}
