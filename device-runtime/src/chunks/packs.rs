//! Reading chunk records from a library's packs, with a few pack files kept open: from a
//! folder, from a portable file, or as byte ranges from an HTTP server.

use crate::chunks::decoder::ChunkDecoder;
use crate::chunks::locator::ChunkLocator;
use crate::chunks::{decode_verified, RecordRef};
use crate::error::{Error, Result};
use crate::folder::Folder;
use crate::fsio::{file_len, open_existing, read_exact_at};
use crate::library::remote::Remote;
use crate::library::{pack_rel, Kind, Library};
use romlib_format::index::ChunkEntry;
use romlib_format::limits::MAX_CHUNK_LEN;
use romlib_format::pack::{
    Method, PackHeader, RecordHeader, FOOTER_LEN, HEADER_LEN, RECORD_HEADER_LEN,
};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// Pack files kept open at once.
pub const OPEN_PACKS: usize = 4;

/// How an open pack's bytes are read.
enum PackBytes {
    /// From a file: a pack file, or a portable file in which the pack starts at `base`.
    File { file: File, base: u64 },
    /// As byte ranges of the pack file on an HTTP server.
    Remote(Arc<Remote>),
}

struct OpenPack {
    id: u32,
    path: PathBuf,
    bytes: PackBytes,
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
    /// For a server that ignores byte ranges: spans of packs copied to a scratch file.
    spool: Option<Spool>,
}

/// Spans of packs copied, one forward pass over each, into a scratch file on the device
/// ([`PackReader::spool`]): records they hold are read from there. What it holds is no
/// more trusted than the server's answer: every record is checked as any other is.
struct Spool {
    /// The scratch file (`None` only while it is dropped).
    file: Option<File>,
    path: PathBuf,
    /// (pack id, first byte, end) of each span, and where it starts in the file.
    spans: Vec<(u32, u64, u64, u64)>,
    /// Where the file still has a name (a system that cannot remove an open file): its
    /// folder and name, removed once the file is closed.
    named: Option<(Folder, String)>,
}

impl Drop for Spool {
    fn drop(&mut self) {
        drop(self.file.take());
        if let Some((folder, name)) = self.named.take() {
            let _ = folder.remove_file(&name);
        }
    }
}

impl Spool {
    /// Where bytes `offset .. offset + len` of pack `id` lie in the file, if copied.
    fn find(&self, id: u32, offset: u64, len: u64) -> Option<u64> {
        self.spans
            .iter()
            .find(|&&(p, a, b, _)| p == id && a <= offset && offset + len <= b)
            .map(|&(_, a, _, at)| at + (offset - a))
    }
}

/// Bytes a spool copies from a pack per read (one range of the forward pass).
const SPOOL_PIECE: usize = 256 << 10;

/// Most bytes fetched with one range request (a run of adjacent records).
pub const SPAN_BYTES: u64 = 1 << 20;

impl std::fmt::Debug for PackReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackReader")
            .field("lib", &self.lib)
            .finish()
    }
}

impl PackReader {
    /// A reader over `lib`'s packs. Allocates its one record buffer up front.
    pub fn new(lib: &Library) -> Self {
        Self {
            lib: lib.clone(),
            open: heapless::Vec::new(),
            record: Vec::with_capacity(RECORD_HEADER_LEN + MAX_CHUNK_LEN as usize),
            span: (0, 0, Vec::new()),
            spool: None,
        }
    }

    /// For a library on a server that ignores byte ranges: copies `spans` (pack id, first
    /// byte, end of each) into `file` (a scratch file on the device, at `path` for errors),
    /// reading each pack forward once, in pack order; the records they hold are then read
    /// from `file`. A span that does not lie within its pack's records is left out (its
    /// records are read the usual way, which names the fault). Returns the bytes copied.
    pub fn spool(
        &mut self,
        spans: &[(u32, u64, u64)],
        mut file: File,
        path: PathBuf,
    ) -> Result<u64> {
        use std::io::Write;
        let Kind::Remote(remote) = self.lib.kind() else {
            return Ok(0);
        };
        let remote = remote.clone();
        let mut copied = Vec::new();
        let mut at = 0u64;
        let mut piece = vec![0u8; SPOOL_PIECE];
        let mut sorted = spans.to_vec();
        sorted.sort_unstable();
        for (id, start, end) in sorted {
            let p = self.pack(id)?;
            if start < HEADER_LEN as u64
                || start >= end
                || end > self.open[p].len - FOOTER_LEN as u64
            {
                continue;
            }
            let rel = pack_rel(id);
            let mut pos = start;
            while pos < end {
                // A cancel stops before a request, never within one.
                crate::cancel::check(&remote.display_path(&rel))?;
                let n = (end - pos).min(SPOOL_PIECE as u64) as usize;
                remote.read_range(&rel, pos, &mut piece[..n])?;
                file.write_all(&piece[..n])
                    .map_err(|e| Error::io(&path, "write", e))?;
                pos += n as u64;
            }
            copied.push((id, start, end, at));
            at += end - start;
        }
        self.spool = Some(Spool {
            file: Some(file),
            path,
            spans: copied,
            named: None,
        });
        Ok(at)
    }

    /// Removes the spool's file, still named `name` in `folder`, once it is closed.
    pub fn remove_spool_after(&mut self, folder: Folder, name: &str) {
        if let Some(s) = &mut self.spool {
            s.named = Some((folder, name.to_string()));
        } else {
            let _ = folder.remove_file(name);
        }
    }

    /// For a library on an HTTP server: makes sure the record of chunk-table record `i`
    /// (`first`, as the locator gave it) is at hand, fetching it together with the records that follow it in the same pack (per
    /// the locator), up to [`SPAN_BYTES`], in one range request. A no-op for local files.
    /// `held(k)` says whether chunk-table record `k`'s chunk is already on the device: the
    /// span stops before it, so what an install takes from the device is not downloaded.
    pub fn plan(
        &mut self,
        loc: &ChunkLocator,
        i: u64,
        first: &ChunkEntry,
        held: &dyn Fn(u64) -> bool,
    ) -> Result<()> {
        let Kind::Remote(remote) = self.lib.kind() else {
            return Ok(());
        };
        let remote = remote.clone();
        let first_len = RECORD_HEADER_LEN as u64 + first.clen as u64;
        if let Some(s) = &self.spool {
            if s.find(first.pack_id, first.offset, first_len).is_some() {
                return Ok(());
            }
        }
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
        while end - start < SPAN_BYTES && !held(k) {
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
        // A cancel stops before a request, never within one: what was fetched is used.
        crate::cancel::check(&remote.display_path(&pack_rel(first.pack_id)))?;
        self.span.0 = 0;
        self.span.2.resize((end - start) as usize, 0);
        remote.read_range(&pack_rel(first.pack_id), start, &mut self.span.2)?;
        self.span = (first.pack_id, start, std::mem::take(&mut self.span.2));
        Ok(())
    }

    fn pack(&mut self, id: u32) -> Result<usize> {
        if let Some(i) = self.open.iter().position(|p| p.id == id) {
            return Ok(i);
        }
        let path = self.lib.pack_path(id);
        let mut hb = [0u8; HEADER_LEN];
        let (bytes, len) = match self.lib.kind() {
            Kind::Remote(r) => {
                let total = r.read_range(&pack_rel(id), 0, &mut hb)?;
                let len = total.ok_or_else(|| {
                    Error::manifest(&path, "the server did not say how long the pack is")
                })?;
                (PackBytes::Remote(r.clone()), len)
            }
            Kind::Portable(p) => {
                let s = p.pack(id).ok_or_else(|| {
                    Error::manifest(&path, format!("pack {id} is not in the file"))
                })?;
                let file = p
                    .file()
                    .try_clone()
                    .map_err(|e| Error::io(&path, "open", e))?;
                read_exact_at(&file, &mut hb, s.offset).map_err(|e| Error::io(&path, "read", e))?;
                (
                    PackBytes::File {
                        file,
                        base: s.offset,
                    },
                    s.len,
                )
            }
            Kind::Folder => {
                let file = open_existing(&path, "pack")?;
                let len = file_len(&file, &path)?;
                if len >= (HEADER_LEN + FOOTER_LEN) as u64 {
                    read_exact_at(&file, &mut hb, 0).map_err(|e| Error::io(&path, "read", e))?;
                }
                (PackBytes::File { file, base: 0 }, len)
            }
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
            bytes,
            len,
            dict_id: header.dict_id,
        };
        self.open.push(p).map_err(|_| ()).expect("made room");
        Ok(self.open.len() - 1)
    }

    /// The library this reader reads.
    pub fn library(&self) -> &Library {
        &self.lib
    }

    /// The dictionary id in pack `id`'s header (0: none), from the checked header.
    pub fn dict_id(&mut self, id: u32) -> Result<u32> {
        let i = self.pack(id)?;
        Ok(self.open[i].dict_id)
    }

    /// Reads the chunk `entry` points at, checks that its record names `hash` and `ulen`,
    /// decodes it into `out` (resized to `ulen`) and checks its BLAKE3: `out` then holds
    /// verified bytes. A delta chunk fails here: its base is found through
    /// [`ChunkSource`](crate::chunks::ChunkSource).
    pub fn read_chunk(
        &mut self,
        hash: &[u8; 32],
        ulen: u32,
        entry: &ChunkEntry,
        decoder: &mut dyn ChunkDecoder,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        out.resize(ulen as usize, 0);
        let mut buf = std::mem::take(&mut self.record);
        buf.clear();
        let res = self
            .read_record(hash, entry, ulen, &mut buf)
            .and_then(|rec| {
                decode_verified(
                    &self.lib,
                    &rec,
                    &buf[rec.payload.clone()],
                    None,
                    decoder,
                    out,
                )
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
        self.read_any_record(hash, entry, Some(ulen), buf)
    }

    /// Like [`PackReader::read_record`] for a delta's base chunk, whose length the record
    /// header gives (a locator's base entry does not), and which must not be a delta itself.
    pub fn read_base_record(
        &mut self,
        hash: &[u8; 32],
        entry: &ChunkEntry,
        buf: &mut Vec<u8>,
    ) -> Result<RecordRef> {
        if entry.method == Method::ZstdDelta {
            return Err(Error::chunk(
                self.lib.pack_path(entry.pack_id),
                hash,
                "a base chunk is itself a delta (chain deeper than MAX_DELTA_DEPTH: tampered index or locator)",
            ));
        }
        let known = (entry.ulen != 0).then_some(entry.ulen);
        self.read_any_record(hash, entry, known, buf)
    }

    fn read_any_record(
        &mut self,
        hash: &[u8; 32],
        entry: &ChunkEntry,
        ulen: Option<u32>,
        buf: &mut Vec<u8>,
    ) -> Result<RecordRef> {
        let payload = buf;
        let i = self.pack(entry.pack_id)?;
        let p = &self.open[i];
        let path = &p.path;
        if entry.clen > MAX_CHUNK_LEN || ulen.is_some_and(|u| entry.ulen != u) {
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
        let spooled = self.spool.as_ref().and_then(|s| {
            s.find(entry.pack_id, entry.offset, want.len() as u64)
                .map(|at| (s, at))
        });
        match &p.bytes {
            _ if spooled.is_some() => {
                let (s, at) = spooled.expect("just checked");
                let file = s.file.as_ref().expect("open until dropped");
                read_exact_at(file, &mut payload[want], at)
                    .map_err(|e| Error::io(&s.path, "read", e))?
            }
            _ if in_span => {
                let at = (entry.offset - ss) as usize;
                payload[want.clone()].copy_from_slice(&sb[at..at + want.len()]);
            }
            PackBytes::File { file, base } => {
                read_exact_at(file, &mut payload[want], base + entry.offset)
                    .map_err(|e| Error::io(path, "read", e))?
            }
            PackBytes::Remote(r) => {
                r.read_range(&pack_rel(entry.pack_id), entry.offset, &mut payload[want])?;
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
            || ulen.is_some_and(|u| rec.ulen != u)
            || rec.clen != entry.clen
            || rec.method != entry.method
        {
            return Err(Error::chunk(
                path,
                hash,
                format!(
                    "record at offset {} is another chunk (an altered locator, or an altered \
                     chunk table in the game's manifest)",
                    entry.offset
                ),
            ));
        }
        Ok(RecordRef {
            hash: *hash,
            ulen: rec.ulen,
            payload: start + RECORD_HEADER_LEN..payload.len(),
            pack_id: entry.pack_id,
            offset: entry.offset,
            dict_id: p.dict_id,
            method: rec.method,
        })
    }
}
