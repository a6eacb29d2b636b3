//! The per-file hashes ROM DAT files name files by: CRC-32, MD5, SHA-1 and SHA-256.
//!
//! A build computes them in the same read of the input as chunking (its DAT-hash threads,
//! `build::dat_hashes`, are fed every chunk the reader thread cuts), so it reads each file
//! once however many hashes it records.

use md5::Digest;

/// The DAT hashes of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatHashes {
    /// CRC-32 (IEEE), as DATs give it.
    pub crc32: u32,
    /// MD5.
    pub md5: [u8; 16],
    /// SHA-1.
    pub sha1: [u8; 20],
    /// SHA-256.
    pub sha256: [u8; 32],
}

impl DatHashes {
    /// Hashes a whole buffer (tests and small files).
    pub fn of(data: &[u8]) -> Self {
        let mut h = FileHasher::new();
        h.update(data);
        h.finish()
    }

    /// Stores the hashes in a manifest file entry.
    pub fn fill(&self, e: &mut romlib_proto::FileEntry) {
        e.crc32 = Some(self.crc32);
        e.md5 = self.md5.to_vec();
        e.sha1 = self.sha1.to_vec();
        e.sha256 = self.sha256.to_vec();
    }

    /// The hashes of a file's headerless part, when it has a well-formed one.
    pub fn from_headerless(h: &romlib_proto::Headerless) -> Option<Self> {
        Some(Self {
            crc32: h.crc32,
            md5: h.md5.as_slice().try_into().ok()?,
            sha1: h.sha1.as_slice().try_into().ok()?,
            sha256: h.sha256.as_slice().try_into().ok()?,
        })
    }

    /// Every (size, hashes) a file answers to in a DAT: the whole file's, then its
    /// headerless part's when it has a header. Empty without DAT hashes.
    pub fn views(e: &romlib_proto::FileEntry) -> Vec<(u64, Self)> {
        let mut v = Vec::with_capacity(2);
        if let Some(h) = Self::from_entry(e) {
            v.push((e.size, h));
            let part = e.headerless.as_ref();
            if let Some((p, h)) = part.and_then(|p| Some((p, Self::from_headerless(p)?))) {
                v.push((p.size, h));
            }
        }
        v
    }

    /// Reads the hashes back from a manifest file entry, when it has them.
    pub fn from_entry(e: &romlib_proto::FileEntry) -> Option<Self> {
        Some(Self {
            crc32: e.crc32?,
            md5: e.md5.as_slice().try_into().ok()?,
            sha1: e.sha1.as_slice().try_into().ok()?,
            sha256: e.sha256.as_slice().try_into().ok()?,
        })
    }
}

/// Incremental hashing of one file.
///
/// It is two independent halves (CRC-32 with MD5, and SHA-1 with SHA-256) of about equal
/// cost, so the builder can feed them on two threads at once.
#[derive(Default)]
pub struct FileHasher {
    /// CRC-32 and MD5.
    pub legacy: LegacyHalf,
    /// SHA-1 and SHA-256.
    pub sha: ShaHalf,
}

/// The CRC-32 and MD5 half of a [`FileHasher`].
#[derive(Default)]
pub struct LegacyHalf {
    crc32: crc32fast::Hasher,
    md5: md5::Md5,
}

/// The SHA-1 and SHA-256 half of a [`FileHasher`].
#[derive(Default)]
pub struct ShaHalf {
    sha1: sha1::Sha1,
    sha256: sha2::Sha256,
}

/// One half of a [`FileHasher`].
pub trait HashHalf: Default + Send {
    /// What it produces.
    type Out: Send;
    /// Feeds the next bytes of the file.
    fn update(&mut self, data: &[u8]);
    /// The result for everything fed.
    fn finish(self) -> Self::Out;
}

impl HashHalf for LegacyHalf {
    type Out = (u32, [u8; 16]);

    fn update(&mut self, data: &[u8]) {
        self.crc32.update(data);
        self.md5.update(data);
    }

    fn finish(self) -> Self::Out {
        (self.crc32.finalize(), self.md5.finalize().into())
    }
}

impl HashHalf for ShaHalf {
    type Out = ([u8; 20], [u8; 32]);

    fn update(&mut self, data: &[u8]) {
        self.sha1.update(data);
        self.sha256.update(data);
    }

    fn finish(self) -> Self::Out {
        (self.sha1.finalize().into(), self.sha256.finalize().into())
    }
}

impl FileHasher {
    /// A hasher at the start of a file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) {
        self.legacy.update(data);
        self.sha.update(data);
    }

    /// The hashes of everything fed.
    pub fn finish(self) -> DatHashes {
        DatHashes::join(self.legacy.finish(), self.sha.finish())
    }
}

impl DatHashes {
    /// Puts the two halves' results together.
    pub fn join((crc32, md5): (u32, [u8; 16]), (sha1, sha256): ([u8; 20], [u8; 32])) -> Self {
        Self {
            crc32,
            md5,
            sha1,
            sha256,
        }
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // The standard check values of each algorithm for "abc" and the empty input.
        let abc = DatHashes::of(b"abc");
        assert_eq!(abc.crc32, 0x3524_41c2);
        assert_eq!(hex(&abc.md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(hex(&abc.sha1), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex(&abc.sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let empty = DatHashes::of(b"");
        assert_eq!(empty.crc32, 0);
        assert_eq!(hex(&empty.md5), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn incremental_equals_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut h = FileHasher::new();
        for part in data.chunks(4093) {
            h.update(part);
        }
        assert_eq!(h.finish(), DatHashes::of(&data));
    }

    #[test]
    fn entry_round_trip() {
        let h = DatHashes::of(b"rom");
        let mut e = romlib_proto::FileEntry::default();
        assert_eq!(DatHashes::from_entry(&e), None);
        h.fill(&mut e);
        assert_eq!(DatHashes::from_entry(&e), Some(h));
    }
}
