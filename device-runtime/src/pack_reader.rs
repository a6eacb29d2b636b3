//! Reading single chunk records from packs, with a few pack files kept open.

use crate::decoder::ChunkDecoder;
use crate::error::{Error, Result};
use crate::library::Library;
use romlib_format::index::ChunkEntry;
use romlib_format::limits::MAX_CHUNK_LEN;
use romlib_format::pack::{PackHeader, RecordHeader, FOOTER_LEN, HEADER_LEN, RECORD_HEADER_LEN};
use std::fs::File;
use std::path::PathBuf;

/// Pack files kept open at once.
pub const OPEN_PACKS: usize = 4;

struct OpenPack {
    id: u32,
    path: PathBuf,
    /// `None` for a pack on an HTTP server.
    file: Option<File>,
    /// Where the pack starts in `file` (0, or its place in a portable file).
    base: u64,
    len: u64,
    dict_id: u32,
}

/// Reads and checks chunk records; every returned chunk matched its expected hash.
pub struct PackReader {
    lib: Library,
    open: heapless::Vec<OpenPack, OPEN_PACKS>,
    record: Vec<u8>,
    /// For a remote library: a run of adjacent records fetched with one range request
    /// (pack id, offset of its first byte, bytes).
    span: (u32, u64, Vec<u8>),
}

/// Most bytes fetched with one range request (a run of adjacent records).
pub const SPAN_BYTES: u64 = 1 << 20;

impl std::fmt::Debug for PackReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackReader")
            .field("lib", &self.lib)
            .finish()
    }
}

/// Reads exactly `buf.len()` bytes at offset `at` without moving the file's cursor.
#[cfg(unix)]
pub fn read_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

/// Reads exactly `buf.len()` bytes at offset `at`.
#[cfg(not(unix))]
pub fn read_at(mut file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(buf)
}

impl PackReader {
    /// A reader over `lib`'s packs. Allocates its one record buffer up front.
    pub fn new(lib: &Library) -> Self {
        Self {
            lib: lib.clone(),
            open: heapless::Vec::new(),
            record: Vec::with_capacity(RECORD_HEADER_LEN + MAX_CHUNK_LEN as usize),
            span: (0, 0, Vec::new()),
        }
    }

    /// For a library on an HTTP server: makes sure the record of chunk-table record `i`
    /// (`first`, as the locator gave it) is at hand, fetching it together with the records that follow it in the same pack (per
    /// the locator), up to [`SPAN_BYTES`], in one range request. A no-op for local files.
    pub fn plan(
        &mut self,
        loc: &crate::locate::ChunkLocator,
        i: u64,
        first: &ChunkEntry,
    ) -> Result<()> {
        if self.lib.remote_source().is_none() {
            return Ok(());
        }
        let first_len = RECORD_HEADER_LEN as u64 + first.clen as u64;
        let (start, mut end) = (first.offset, first.offset + first_len);
        if self.span.0 == first.pack_id
            && self.span.1 <= start
            && end <= self.span.1 + self.span.2.len() as u64
        {
            return Ok(());
        }
        let p = self.pack(first.pack_id)?;
        let limit = self.open[p].len - FOOTER_LEN as u64;
        let mut k = i + 1;
        while end - start < SPAN_BYTES {
            match loc.entry(k)? {
                Some(e) if e.pack_id == first.pack_id && e.offset as u64 == end => {
                    let len = RECORD_HEADER_LEN as u64 + e.clen as u64;
                    if end + len - start > SPAN_BYTES {
                        break;
                    }
                    end += len;
                    k += 1;
                }
                _ => break,
            }
        }
        if start < HEADER_LEN as u64 || end > limit {
            // Leave it to read_record, which reports it with the chunk's hash.
            return Ok(());
        }
        self.span.0 = 0;
        self.span.2.resize((end - start) as usize, 0);
        let lib = self.lib.clone();
        let remote = lib.remote_source().expect("checked above");
        remote.read_range(&lib.pack_rel(first.pack_id), start, &mut self.span.2)?;
        self.span = (first.pack_id, start, std::mem::take(&mut self.span.2));
        Ok(())
    }

    fn pack(&mut self, id: u32) -> Result<usize> {
        if let Some(i) = self.open.iter().position(|p| p.id == id) {
            return Ok(i);
        }
        let path = self.lib.pack_path(id);
        let mut hb = [0u8; HEADER_LEN];
        let (file, base, len) = if let Some(r) = self.lib.remote_source() {
            let total = r.read_range(&self.lib.pack_rel(id), 0, &mut hb)?;
            let len = total.ok_or_else(|| {
                Error::manifest(&path, "the server did not say how long the pack is")
            })?;
            (None, 0, len)
        } else if let Some(p) = self.lib.portable() {
            let s = p
                .pack(id)
                .ok_or_else(|| Error::manifest(&path, format!("pack {id} is not in the file")))?;
            let file = p
                .file()
                .try_clone()
                .map_err(|e| Error::io(&path, "open", e))?;
            read_at(&file, &mut hb, s.offset).map_err(|e| Error::io(&path, "read", e))?;
            (Some(file), s.offset, s.len)
        } else {
            let file = File::open(&path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::NotFound {
                        path: path.clone(),
                        what: "pack",
                    }
                } else {
                    Error::io(&path, "open", e)
                }
            })?;
            let len = file
                .metadata()
                .map_err(|e| Error::io(&path, "stat", e))?
                .len();
            if len >= (HEADER_LEN + FOOTER_LEN) as u64 {
                read_at(&file, &mut hb, 0).map_err(|e| Error::io(&path, "read", e))?;
            }
            (Some(file), 0, len)
        };
        if len < (HEADER_LEN + FOOTER_LEN) as u64 {
            return Err(Error::format(
                &path,
                romlib_format::FormatError::Truncated {
                    what: "pack",
                    need: HEADER_LEN + FOOTER_LEN,
                    got: len as usize,
                },
            ));
        }
        let header = PackHeader::decode(&hb).map_err(|e| Error::format(&path, e))?;
        if header.pack_id != id {
            return Err(Error::manifest(
                &path,
                format!("pack header names pack {}", header.pack_id),
            ));
        }
        if self.open.is_full() {
            self.open.remove(0);
        }
        let p = OpenPack {
            id,
            path,
            file,
            base,
            len,
            dict_id: header.dict_id,
        };
        self.open.push(p).map_err(|_| ()).expect("made room");
        Ok(self.open.len() - 1)
    }

    /// The dictionary id in pack `id`'s header (0: none), from the checked header.
    pub fn dict_id(&mut self, id: u32) -> Result<u32> {
        let i = self.pack(id)?;
        Ok(self.open[i].dict_id)
    }

    /// Reads the chunk `entry` points at, checks that its record names `hash` and `ulen`,
    /// decodes it into `out` (resized to `ulen`) and checks its BLAKE3.
    pub fn read_chunk(
        &mut self,
        hash: &[u8; 32],
        ulen: u32,
        entry: &ChunkEntry,
        decoder: &mut dyn ChunkDecoder,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        out.resize(ulen as usize, 0);
        let path = self.read_unverified(hash, entry, decoder, out)?;
        check_chunk(&path, hash, entry.offset, out)
    }

    /// Like [`PackReader::read_chunk`] but leaves the BLAKE3 check of `out` to the caller
    /// (who must call [`check_chunk`] before using a byte of it); returns the pack's path.
    pub fn read_unverified(
        &mut self,
        hash: &[u8; 32],
        entry: &ChunkEntry,
        decoder: &mut dyn ChunkDecoder,
        out: &mut [u8],
    ) -> Result<PathBuf> {
        let mut buf = std::mem::take(&mut self.record);
        buf.clear();
        let res = self
            .read_record(hash, entry, out.len() as u32, &mut buf)
            .and_then(|rec| {
                decode_record(
                    &self.lib,
                    &rec,
                    hash,
                    &buf[rec.payload.clone()],
                    decoder,
                    out,
                )?;
                Ok(self.lib.pack_path(rec.pack_id))
            });
        self.record = buf;
        res
    }

    /// Reads the record `entry` points at, checks that it holds the chunk `hash` of `ulen`
    /// bytes, and appends the record (header, then the still compressed, unverified
    /// payload) to `buf`. The payload is decoded later, perhaps on another thread, by
    /// [`decode_record`].
    pub fn read_record(
        &mut self,
        hash: &[u8; 32],
        entry: &ChunkEntry,
        ulen: u32,
        buf: &mut Vec<u8>,
    ) -> Result<RecordRef> {
        let payload = buf;
        let i = self.pack(entry.pack_id)?;
        let p = &self.open[i];
        let path = &p.path;
        if entry.clen > MAX_CHUNK_LEN || entry.ulen != ulen {
            return Err(Error::chunk(
                path,
                hash,
                "index entry disagrees with the manifest",
            ));
        }
        let end = entry
            .offset
            .checked_add((RECORD_HEADER_LEN + entry.clen as usize) as u64);
        if end.is_none_or(|e| e > p.len - FOOTER_LEN as u64) || entry.offset < HEADER_LEN as u64 {
            return Err(Error::chunk(
                path,
                hash,
                format!(
                    "record at offset {} lies beyond the end of the pack (truncated pack?)",
                    entry.offset
                ),
            ));
        }
        let start = payload.len();
        payload.resize(start + RECORD_HEADER_LEN + entry.clen as usize, 0);
        let want = start..payload.len();
        let (sp, ss, sb) = (&self.span.0, self.span.1, &self.span.2);
        let in_span = *sp == entry.pack_id
            && ss <= entry.offset
            && entry.offset + want.len() as u64 <= ss + sb.len() as u64;
        match &p.file {
            _ if in_span => {
                let at = (entry.offset - ss) as usize;
                payload[want.clone()].copy_from_slice(&sb[at..at + want.len()]);
            }
            Some(f) => read_at(f, &mut payload[want], p.base + entry.offset)
                .map_err(|e| Error::io(path, "read", e))?,
            None => {
                let r = self.lib.remote_source().expect("remote pack");
                r.read_range(
                    &self.lib.pack_rel(entry.pack_id),
                    entry.offset,
                    &mut payload[want],
                )?;
            }
        }
        let rec =
            RecordHeader::decode(&payload[start..start + RECORD_HEADER_LEN]).map_err(|e| {
                Error::chunk(
                    path,
                    hash,
                    format!("bad record at offset {}: {e}", entry.offset),
                )
            })?;
        if &rec.hash != hash
            || rec.ulen != ulen
            || rec.clen != entry.clen
            || rec.method != entry.method
        {
            return Err(Error::chunk(
                path,
                hash,
                format!(
                    "record at offset {} is another chunk (stale or wrong index)",
                    entry.offset
                ),
            ));
        }
        Ok(RecordRef {
            payload: start + RECORD_HEADER_LEN..payload.len(),
            pack_id: entry.pack_id,
            offset: entry.offset,
            dict_id: p.dict_id,
            method: rec.method,
        })
    }
}

/// Where a record read by [`PackReader::read_record`] came from and how it is stored.
#[derive(Debug, Clone)]
pub struct RecordRef {
    /// Where its payload lies in the buffer it was appended to.
    pub payload: std::ops::Range<usize>,
    /// The pack holding it.
    pub pack_id: u32,
    /// The record's offset in the pack.
    pub offset: u64,
    /// The pack's dictionary id (used by dictionary-compressed records).
    pub dict_id: u32,
    /// How the payload is stored.
    pub method: romlib_format::pack::Method,
}

/// Decodes a payload read by [`PackReader::read_record`] into all of `out`, loading the
/// pack's dictionary into `decoder` first when the record needs it. Does not check the
/// chunk's hash (the caller must, with [`check_chunk`]).
pub fn decode_record(
    lib: &Library,
    rec: &RecordRef,
    hash: &[u8; 32],
    payload: &[u8],
    decoder: &mut dyn ChunkDecoder,
    out: &mut [u8],
) -> Result<()> {
    if rec.method == romlib_format::pack::Method::ZstdDict && !decoder.has_dict(rec.dict_id) {
        let dpath = lib.dict_path(rec.dict_id);
        let bytes = lib.read_dict(rec.dict_id)?;
        decoder
            .load_dict(rec.dict_id, &bytes)
            .map_err(|e| Error::manifest(&dpath, e))?;
    }
    decoder.decode(rec.method, payload, out).map_err(|e| {
        Error::chunk(
            lib.pack_path(rec.pack_id),
            hash,
            format!("at offset {}: {e}", rec.offset),
        )
    })
}

/// Checks a decoded chunk against the hash the signed manifest gives.
pub fn check_chunk(
    pack: &std::path::Path,
    hash: &[u8; 32],
    offset: u64,
    data: &[u8],
) -> Result<()> {
    if blake3::hash(data).as_bytes() != hash {
        return Err(Error::chunk(
            pack,
            hash,
            format!(
                "decoded data at offset {offset} does not match the signed hash (corrupt pack)"
            ),
        ));
    }
    Ok(())
}
