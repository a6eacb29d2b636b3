//! Reading manifest files: envelope, signature, body validation and the streamed chunk table.
//!
//! [`ManifestFile::open`] reads only the header, body and signature block (at most
//! [`MAX_MANIFEST_BODY_LEN`] + 112 bytes). [`ManifestFile::verify`] is the only way to get a
//! [`VerifiedManifest`], which is the only thing the installer accepts. The chunk table is
//! never held whole: [`ChunkTable`] streams it, hashing as it goes, and its
//! [`ChunkTable::finish`] compares the hash with the signed one.

use crate::error::{Error, Result};
use crate::fsio::{file_len, open_existing};
use crate::trusted::trust::TrustStore;
use prost::Message;
use romlib_format::chunker::{ChunkerParams, ALGORITHM_FASTCDC_V2020, NORMALIZATION_LEVEL};
use romlib_format::limits::{
    MAX_FILES, MAX_FILE_SIZE, MAX_GAME_CHUNKS, MAX_MANIFEST_BODY_LEN, MAX_PACKS_PER_GAME, MAX_TAGS,
    MAX_TEXT_LEN,
};
use romlib_format::manifest::{
    self as fmt, ChunkRef, ManifestHeader, SignatureBlock, CHUNK_RECORD_LEN, SIGNED_PREFIX_LEN,
};
use romlib_format::path::{check_path, check_title_id, fold_cmp};
use romlib_proto::Manifest;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A manifest whose envelope and body decoded and passed the structural checks, but whose
/// signature has not been checked.
#[derive(Debug)]
pub struct ManifestFile {
    path: PathBuf,
    file: File,
    /// Where the manifest starts in `file` (0, or its place in a portable file).
    base: u64,
    header: ManifestHeader,
    signed: Vec<u8>,
    sig: SignatureBlock,
    body: Manifest,
}

/// A manifest whose signature was verified against a trust store.
#[derive(Debug)]
pub struct VerifiedManifest {
    inner: ManifestFile,
}

/// Reads `buf.len()` bytes from `file`'s cursor; running out is a truncated `what`.
fn read_field(file: &mut File, path: &Path, buf: &mut [u8], what: &'static str) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(Error::format(
                    path,
                    romlib_format::FormatError::Truncated {
                        what,
                        need: buf.len(),
                        got,
                    },
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, "read", e)),
        }
    }
    Ok(())
}

impl ManifestFile {
    /// Opens and checks a manifest file (not its signature).
    pub fn open(path: &Path) -> Result<Self> {
        let file = open_existing(path, "manifest")?;
        let file_len = file_len(&file, path)?;
        Self::open_in(path, file, 0, file_len)
    }

    /// Opens and checks the manifest held in bytes `base..base + file_len` of `file`
    /// (a portable file); `path` names it in errors.
    pub fn open_in(path: &Path, mut file: File, base: u64, file_len: u64) -> Result<Self> {
        file.seek(SeekFrom::Start(base))
            .map_err(|e| Error::io(path, "seek", e))?;
        let mut hbuf = [0u8; fmt::HEADER_LEN];
        read_field(&mut file, path, &mut hbuf, "manifest header")?;
        let header = ManifestHeader::decode(&hbuf).map_err(|e| Error::format(path, e))?;
        debug_assert!(header.body_len <= MAX_MANIFEST_BODY_LEN);
        if file_len < header.chunk_table_offset() {
            return Err(Error::format(
                path,
                romlib_format::FormatError::Truncated {
                    what: "manifest",
                    need: header.chunk_table_offset() as usize,
                    got: file_len as usize,
                },
            ));
        }
        let prefix = SIGNED_PREFIX_LEN;
        let mut signed = vec![0u8; prefix + header.body_len as usize];
        signed[..prefix].copy_from_slice(&header.signed_prefix());
        read_field(&mut file, path, &mut signed[prefix..], "manifest body")?;
        let mut sbuf = [0u8; fmt::SIGNATURE_BLOCK_LEN];
        read_field(&mut file, path, &mut sbuf, "signature block")?;
        let sig = SignatureBlock::decode(&sbuf).map_err(|e| Error::format(path, e))?;
        let body = Manifest::decode(&signed[prefix..])
            .map_err(|e| Error::manifest(path, format!("body does not decode: {e}")))?;
        validate_body(path, &body)?;
        let expect = fmt::expected_file_len(&header, body.chunk_count);
        if file_len != expect {
            return Err(Error::manifest(
                path,
                format!(
                    "file is {file_len} bytes, expected {expect} for {} chunks",
                    body.chunk_count
                ),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            base,
            header,
            signed,
            sig,
            body,
        })
    }

    /// The decoded body. Nothing in it is trusted until [`ManifestFile::verify`] succeeds.
    pub fn unverified_body(&self) -> &Manifest {
        &self.body
    }

    /// The signer's public key as written in the file (not yet checked).
    pub fn claimed_key(&self) -> &[u8; 32] {
        &self.sig.public_key
    }

    /// The manifest file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the signature against the trust store.
    pub fn verify(self, trust: &TrustStore) -> Result<VerifiedManifest> {
        trust
            .verify(&self.sig.public_key, &self.signed, &self.sig.signature)
            .map_err(|problem| Error::Untrusted {
                path: self.path.clone(),
                problem,
            })?;
        Ok(VerifiedManifest { inner: self })
    }

    /// Streams the chunk table of a manifest that was not verified (for tools that read
    /// their own library, such as the builder's reference counting). The table's hash is
    /// still checked against the body by [`ChunkTable::finish`].
    pub fn unverified_chunks(&self) -> Result<ChunkTable> {
        ChunkTable::open(
            &self.path,
            &self.file,
            self.base + self.header.chunk_table_offset(),
            self.body.chunk_count,
            &self.body.chunk_table_blake3,
        )
    }

    /// The chunk table for a scan that never vouches for it (what the device already
    /// holds: every chunk found is hashed before use): not hashed as it is read, so
    /// [`ChunkTable::finish`] refuses it; read in 256 KiB blocks.
    pub fn scan_chunks(&self) -> Result<ChunkTable> {
        let mut t = self.unverified_chunks()?;
        t.hashed = false;
        let inner = t.reader.into_inner();
        t.reader = BufReader::with_capacity(256 * 1024, inner);
        Ok(t)
    }
}

/// Checks the first bytes of a manifest as they arrive (a download), before its chunk
/// table: once the header, body and signature block are in, the signature is verified
/// against `trust` and the file's whole length is known from the signed body; every byte
/// past that length is refused. So an answer of a forged or tampered manifest ends after at
/// most [`MAX_MANIFEST_BODY_LEN`] + 112 bytes, and one longer than its signed length at
/// that length, whatever it claims.
pub struct PrefixCheck<'a> {
    path: PathBuf,
    trust: &'a TrustStore,
    head: Vec<u8>,
    /// The signed length, once verified.
    total: Option<u64>,
    written: u64,
}

impl<'a> PrefixCheck<'a> {
    /// A check of the manifest downloaded from `path` (a URL, for messages).
    pub fn new(path: &Path, trust: &'a TrustStore) -> Self {
        PrefixCheck {
            path: path.to_path_buf(),
            trust,
            head: Vec::new(),
            total: None,
            written: 0,
        }
    }

    /// Forgets what came so far (the download restarts).
    pub fn restart(&mut self) {
        self.head.clear();
        self.total = None;
        self.written = 0;
    }

    /// Takes the next `bytes` of the download; an error ends it.
    pub fn take(&mut self, bytes: &[u8]) -> Result<()> {
        self.written += bytes.len() as u64;
        if let Some(total) = self.total {
            if self.written > total {
                return Err(Error::manifest(
                    &self.path,
                    format!("the answer is longer than the manifest's signed {total} bytes"),
                ));
            }
            return Ok(());
        }
        self.head.extend_from_slice(bytes);
        if self.head.len() < fmt::HEADER_LEN {
            return Ok(());
        }
        let header = ManifestHeader::decode(&self.head[..fmt::HEADER_LEN])
            .map_err(|e| Error::format(&self.path, e))?;
        let prefix_len = header.chunk_table_offset() as usize;
        if self.head.len() < prefix_len {
            return Ok(());
        }
        let body_end = fmt::HEADER_LEN + header.body_len as usize;
        let mut signed = header.signed_prefix().to_vec();
        signed.extend_from_slice(&self.head[fmt::HEADER_LEN..body_end]);
        let sig = SignatureBlock::decode(&self.head[body_end..prefix_len])
            .map_err(|e| Error::format(&self.path, e))?;
        self.trust
            .verify(&sig.public_key, &signed, &sig.signature)
            .map_err(|problem| Error::Untrusted {
                path: self.path.clone(),
                problem,
            })?;
        let body = Manifest::decode(&self.head[fmt::HEADER_LEN..body_end])
            .map_err(|e| Error::manifest(&self.path, format!("body does not decode: {e}")))?;
        validate_body(&self.path, &body)?;
        let total = fmt::expected_file_len(&header, body.chunk_count);
        self.head = Vec::new();
        self.total = Some(total);
        if self.written > total {
            return Err(Error::manifest(
                &self.path,
                format!("the answer is longer than the manifest's signed {total} bytes"),
            ));
        }
        Ok(())
    }
}

impl VerifiedManifest {
    /// The signed body.
    pub fn body(&self) -> &Manifest {
        &self.inner.body
    }

    /// The key that signed it.
    pub fn signer(&self) -> &[u8; 32] {
        &self.inner.sig.public_key
    }

    /// The manifest file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Streams the chunk table; call [`ChunkTable::finish`] before trusting what was read.
    pub fn chunks(&self) -> Result<ChunkTable> {
        self.inner.unverified_chunks()
    }

    /// Offset of the chunk table in the file [`VerifiedManifest::file`] reads.
    pub fn chunk_table_offset(&self) -> u64 {
        self.inner.base + self.inner.header.chunk_table_offset()
    }

    /// Length of the manifest file (header, body, signature block and chunk table).
    pub fn file_len(&self) -> u64 {
        fmt::expected_file_len(&self.inner.header, self.inner.body.chunk_count)
    }

    /// Writes the manifest's bytes (as signed, with its chunk table) to `out`.
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let len = self.file_len();
        let mut buf = vec![0u8; 64 * 1024];
        let mut at = 0u64;
        while at < len {
            let n = (len - at).min(buf.len() as u64) as usize;
            crate::fsio::read_exact_at(&self.inner.file, &mut buf[..n], self.inner.base + at)?;
            out.write_all(&buf[..n])?;
            at += n as u64;
        }
        Ok(())
    }

    /// Writes the manifest's bytes to a new file `dest`, fsynced.
    pub fn write_copy(&self, dest: &Path) -> std::io::Result<()> {
        let mut out = File::create(dest)?;
        self.write_to(&mut out)?;
        out.sync_all()
    }

    /// The open manifest file, for positional re-reads of chunk-table records (which the
    /// caller must check against hashes taken from a verified pass over the table).
    pub(crate) fn file(&self) -> &File {
        &self.inner.file
    }
}

/// A streaming reader of a manifest's chunk table.
#[derive(Debug)]
pub struct ChunkTable {
    path: PathBuf,
    reader: BufReader<crate::fsio::AtReader>,
    remaining: u64,
    count: u64,
    hasher: blake3::Hasher,
    expected: [u8; 32],
    /// Whether records are hashed as they are read ([`ManifestFile::scan_chunks`]: not).
    hashed: bool,
}

impl ChunkTable {
    fn open(path: &Path, file: &File, offset: u64, count: u64, expected: &[u8]) -> Result<Self> {
        // Its own offset: two tables of one manifest (an install's, and the index of what
        // the device holds) are read at once, through clones that share the file's offset.
        let f = file.try_clone().map_err(|e| Error::io(path, "open", e))?;
        let f = crate::fsio::AtReader::new(f, offset);
        let mut exp = [0u8; 32];
        exp.copy_from_slice(expected);
        Ok(Self {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(32 * 1024, f),
            remaining: count,
            count,
            hasher: blake3::Hasher::new(),
            expected: exp,
            hashed: true,
        })
    }

    /// Number of records in the table.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the table has no records.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The next record, or `None` after the last.
    pub fn next_chunk(&mut self) -> Result<Option<ChunkRef>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let mut rec = [0u8; CHUNK_RECORD_LEN];
        let path = self.path.clone();
        let mut got = 0;
        while got < rec.len() {
            match self.reader.read(&mut rec[got..]) {
                Ok(0) => {
                    return Err(Error::format(
                        &path,
                        romlib_format::FormatError::Truncated {
                            what: "chunk table",
                            need: CHUNK_RECORD_LEN,
                            got,
                        },
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&path, "read", e)),
            }
        }
        if self.hashed {
            self.hasher.update(&rec);
        }
        self.remaining -= 1;
        ChunkRef::decode(&rec)
            .map(Some)
            .map_err(|e| Error::format(&path, e))
    }

    /// Checks that every record was read and that the table's BLAKE3 is the signed one.
    pub fn finish(self) -> Result<()> {
        if self.remaining != 0 {
            return Err(Error::manifest(
                &self.path,
                "chunk table was not read to the end",
            ));
        }
        if !self.hashed || self.hasher.finalize().as_bytes() != &self.expected {
            return Err(Error::manifest(
                &self.path,
                "chunk table does not match its signed BLAKE3 (tampered table)",
            ));
        }
        Ok(())
    }
}

fn text(path: &Path, field: &str, s: &str) -> Result<()> {
    if s.len() > MAX_TEXT_LEN {
        return Err(Error::manifest(
            path,
            format!("{field} is longer than MAX_TEXT_LEN"),
        ));
    }
    Ok(())
}

/// Structural checks of a body: every count within its limit, sums that agree, and every
/// file path safe to create (SPEC section 7), including case-insensitive collisions.
pub fn validate_body(path: &Path, m: &Manifest) -> Result<()> {
    let bad = |msg: String| Err(Error::manifest(path, msg));
    if m.format_version != fmt::VERSION as u32 {
        return bad(format!(
            "body format version {} is not {}",
            m.format_version,
            fmt::VERSION
        ));
    }
    check_title_id(&m.title_id).map_err(|problem| Error::UnsafePath {
        path: path.to_path_buf(),
        entry: m.title_id.clone(),
        problem,
    })?;
    text(path, "version", &m.version)?;
    text(path, "display name", &m.display_name)?;
    text(path, "system", &m.system)?;
    text(path, "region", &m.region)?;
    text(path, "description", &m.description)?;
    for (what, list) in [("tags", &m.tags), ("languages", &m.languages)] {
        if list.len() > MAX_TAGS {
            return bad(format!(
                "{} {what} exceed MAX_TAGS ({MAX_TAGS})",
                list.len()
            ));
        }
        for t in list {
            text(path, what, t)?;
        }
    }
    if let Some(d) = &m.dat {
        for (what, s) in [
            ("DAT source", &d.source),
            ("DAT name", &d.name),
            ("DAT description", &d.description),
            ("DAT region", &d.region),
        ] {
            text(path, what, s)?;
        }
    }
    let Some(ch) = &m.chunker else {
        return bad("chunker parameters missing".into());
    };
    if ch.algorithm != ALGORITHM_FASTCDC_V2020 || ch.normalization != NORMALIZATION_LEVEL {
        return bad(format!(
            "unknown chunker {:?} level {}",
            ch.algorithm, ch.normalization
        ));
    }
    ChunkerParams {
        min: ch.min_size,
        avg: ch.avg_size,
        max: ch.max_size,
    }
    .check()
    .map_err(|e| Error::format(path, e))?;
    if m.files.len() as u64 > MAX_FILES as u64 {
        return bad(format!(
            "{} files exceed MAX_FILES ({MAX_FILES})",
            m.files.len()
        ));
    }
    if m.pack_ids.len() as u64 > MAX_PACKS_PER_GAME as u64 {
        return bad("pack list exceeds MAX_PACKS_PER_GAME".into());
    }
    if m.chunk_count > MAX_GAME_CHUNKS {
        return bad(format!(
            "chunk count {} exceeds MAX_GAME_CHUNKS",
            m.chunk_count
        ));
    }
    if m.chunk_table_blake3.len() != 32 {
        return bad("chunk table hash is not 32 bytes".into());
    }
    let mut chunks: u64 = 0;
    let mut total: u64 = 0;
    for f in &m.files {
        check_path(&f.path, false).map_err(|problem| Error::UnsafePath {
            path: path.to_path_buf(),
            entry: f.path.clone(),
            problem,
        })?;
        if f.size > MAX_FILE_SIZE || f.blake3.len() != 32 || f.mode & !0o7777 != 0 {
            return bad(format!(
                "file {:?} has an invalid size, hash or mode",
                f.path
            ));
        }
        let all = f.crc32.is_some() && f.md5.len() == 16 && f.sha1.len() == 20;
        let none = f.crc32.is_none() && f.md5.is_empty() && f.sha1.is_empty();
        if !(all && f.sha256.len() == 32 || none && f.sha256.is_empty()) {
            return bad(format!(
                "file {:?} has an incomplete or malformed set of DAT hashes",
                f.path
            ));
        }
        // The headerless part of a headered file: only beside the whole file's DAT hashes,
        // a header and a non-empty rest that add up to the file, hashes of their lengths.
        if let Some(h) = &f.headerless {
            let fits = all
                && h.header_size > 0
                && h.size > 0
                && h.header_size.checked_add(h.size) == Some(f.size)
                && h.md5.len() == 16
                && h.sha1.len() == 20
                && h.sha256.len() == 32
                && h.detector.len() <= MAX_TEXT_LEN;
            if !fits {
                return bad(format!(
                    "file {:?} has a malformed headerless part (header {} + {} bytes)",
                    f.path, h.header_size, h.size
                ));
            }
        }
        // Every chunk holds at least one byte, and no chunk exceeds the chunker maximum.
        let min_chunks = f.size.div_ceil(ch.max_size as u64);
        if f.chunk_count > f.size || f.chunk_count < min_chunks {
            return bad(format!(
                "file {:?} has {} chunks for {} bytes",
                f.path, f.chunk_count, f.size
            ));
        }
        chunks = chunks.saturating_add(f.chunk_count);
        total = total.saturating_add(f.size);
    }
    if chunks != m.chunk_count || total != m.total_size {
        return bad("file chunk counts or sizes do not add up to the totals".into());
    }
    let mut names: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    names.sort_by(|a, b| fold_cmp(a, b));
    for pair in names.windows(2) {
        if fold_cmp(pair[0], pair[1]).is_eq() {
            return bad(format!(
                "paths {:?} and {:?} collide on a case-insensitive file system",
                pair[0], pair[1]
            ));
        }
    }
    // A file and a directory of the same name (case-insensitively) would collide too.
    for f in &m.files {
        let mut prefix_end = 0;
        while let Some(i) = f.path[prefix_end..].find('/') {
            let dir = &f.path[..prefix_end + i];
            if names.binary_search_by(|n| fold_cmp(n, dir)).is_ok() {
                return bad(format!("{dir:?} is both a file and a directory"));
            }
            prefix_end += i + 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use romlib_proto::{Chunker, FileEntry, Headerless};

    fn body(headerless: Option<Headerless>) -> Manifest {
        Manifest {
            format_version: fmt::VERSION as u32,
            title_id: "g".into(),
            chunker: Some(Chunker {
                algorithm: ALGORITHM_FASTCDC_V2020.into(),
                min_size: 8192,
                avg_size: 32768,
                max_size: 131072,
                normalization: NORMALIZATION_LEVEL,
            }),
            files: vec![FileEntry {
                path: "g.nes".into(),
                size: 40976,
                mode: 0o644,
                blake3: vec![0; 32],
                chunk_count: 1,
                crc32: Some(1),
                md5: vec![0; 16],
                sha1: vec![0; 20],
                sha256: vec![0; 32],
                headerless,
            }],
            chunk_count: 1,
            chunk_table_blake3: vec![0; 32],
            total_size: 40976,
            ..Default::default()
        }
    }

    fn part(header_size: u64, size: u64) -> Headerless {
        Headerless {
            detector: "ines".into(),
            header_size,
            size,
            crc32: 2,
            md5: vec![1; 16],
            sha1: vec![1; 20],
            sha256: vec![1; 32],
        }
    }

    /// A signed headerless part must still add up: a forged one is refused like any other
    /// inconsistent field.
    #[test]
    fn headerless_parts_are_checked() {
        let p = Path::new("g.manifest");
        assert!(validate_body(p, &body(None)).is_ok());
        assert!(validate_body(p, &body(Some(part(16, 40960)))).is_ok());
        let short_md5 = Headerless {
            md5: vec![1; 15],
            ..part(16, 40960)
        };
        for bad in [
            part(16, 40961),
            part(0, 40976),
            part(40976, 0),
            part(u64::MAX, 17),
            short_md5,
        ] {
            let e = validate_body(p, &body(Some(bad))).unwrap_err().to_string();
            assert!(e.contains("malformed headerless part"), "{e}");
        }
        // Not without the whole file's DAT hashes.
        let mut m = body(Some(part(16, 40960)));
        let f = &mut m.files[0];
        (f.crc32, f.md5, f.sha1, f.sha256) = (None, vec![], vec![], vec![]);
        assert!(validate_body(p, &m).is_err());
    }
}
