//! The DAT-hash threads: CRC-32 with MD5, and SHA-1 with SHA-256, of every file, computed
//! beside the reader and the pool from the batches the reader already read; for a file
//! that starts with a header a detector recognises (`dat::headers`), the same hashes of
//! the part after the header too, in the same pass.

use super::batch::{Batch, Piece};
use super::scan::GameInput;
use crate::dat::digests::{DatHashes, HashHalf};
use crate::dat::headers::{HeaderRules, MAX_PROBE};
use crate::error::{Error, Result};
use romlib_proto::Headerless;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// A recognised header: the detector's name and the header's size.
pub(super) type Detected = (String, u64);

/// One half's result for one file: the whole file's, and the headerless part's.
type HalfOut<H> = (
    <H as HashHalf>::Out,
    Option<(Detected, <H as HashHalf>::Out)>,
);

/// The per-file DAT hash results, one per file in input order, from two threads.
pub(super) struct DatResults {
    pub(super) legacy: Receiver<HalfOut<crate::dat::digests::LegacyHalf>>,
    pub(super) sha: Receiver<HalfOut<crate::dat::digests::ShaHalf>>,
}

/// A file's DAT hashes, and its headerless part's when it has a header.
pub(super) struct FileDatHashes {
    pub(super) whole: DatHashes,
    pub(super) headerless: Option<Headerless>,
}

impl DatResults {
    /// The next file's hashes; `size` is the file's size.
    pub(super) fn next(&self, size: u64) -> Result<FileDatHashes> {
        // Not a usage error: the threads only stop early if they panicked.
        let lost = || {
            Error::input(
                Path::new("<build>"),
                "internal error: a DAT hash thread stopped",
            )
        };
        let (l, lh) = self.legacy.recv().map_err(|_| lost())?;
        let (s, sh) = self.sha.recv().map_err(|_| lost())?;
        let headerless = match (lh, sh) {
            (Some(((detector, header_size), l)), Some((_, s))) => {
                let h = DatHashes::join(l, s);
                Some(Headerless {
                    detector,
                    header_size,
                    size: size - header_size,
                    crc32: h.crc32,
                    md5: h.md5.to_vec(),
                    sha1: h.sha1.to_vec(),
                    sha256: h.sha256.to_vec(),
                })
            }
            _ => None,
        };
        Ok(FileDatHashes {
            whole: DatHashes::join(l, s),
            headerless,
        })
    }
}

/// One file's hashing in one half: the first bytes are held until a detector can decide
/// (at most [`MAX_PROBE`], fewer for a shorter file), then every byte feeds the whole-file
/// hasher and, past the header, the headerless one.
struct FileHash<H> {
    whole: H,
    probe: Vec<u8>,
    decided: bool,
    headerless: Option<(Detected, u64, H)>,
}

impl<H: HashHalf> FileHash<H> {
    fn new() -> Self {
        Self {
            whole: H::default(),
            probe: Vec::new(),
            decided: false,
            headerless: None,
        }
    }

    fn update(&mut self, data: &[u8], rules: &HeaderRules, size: u64, name: &str) {
        if self.decided {
            self.feed(data);
            return;
        }
        self.probe.extend_from_slice(data);
        if self.probe.len() >= MAX_PROBE {
            self.decide(rules, size, name);
        }
    }

    fn decide(&mut self, rules: &HeaderRules, size: u64, name: &str) {
        self.decided = true;
        let probe = std::mem::take(&mut self.probe);
        let limit = probe.len().min(MAX_PROBE);
        if let Some(h) = rules.detect(&probe[..limit], size, name) {
            let detected = (h.detector.to_owned(), h.size);
            self.headerless = Some((detected, h.size, H::default()));
        }
        self.feed(&probe);
    }

    fn feed(&mut self, data: &[u8]) {
        self.whole.update(data);
        if let Some((_, to_skip, h)) = &mut self.headerless {
            let skip = (*to_skip).min(data.len() as u64) as usize;
            *to_skip -= skip as u64;
            h.update(&data[skip..]);
        }
    }

    fn finish(mut self, rules: &HeaderRules, size: u64, name: &str) -> HalfOut<H> {
        if !self.decided {
            self.decide(rules, size, name);
        }
        let headerless = self.headerless.map(|(d, _, h)| (d, h.finish()));
        (self.whole.finish(), headerless)
    }
}

/// A thread feeding every batch to one half of the DAT hashes. MD5, SHA-1 and SHA-256 cost
/// more CPU than cutting and BLAKE3 together, so they run beside the reader and the pool,
/// on data the reader has already read (one read of the input).
pub(super) fn spawn_half<H: HashHalf + 'static>(
    batches: Receiver<Batch>,
    games: Arc<Vec<GameInput>>,
    rules: Arc<HeaderRules>,
) -> Receiver<HalfOut<H>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut h = FileHash::<H>::new();
        for batch in batches {
            for it in batch.iter() {
                // (A game end names no file: an empty game has none.)
                let file = || &games[it.game].files[it.file];
                match &it.piece {
                    Piece::Chunk(d) => h.update(d, &rules, file().size, &file().rel),
                    Piece::FileEnd { .. } => {
                        let file = file();
                        let done = std::mem::replace(&mut h, FileHash::new());
                        if tx.send(done.finish(&rules, file.size, &file.rel)).is_err() {
                            return;
                        }
                    }
                    Piece::GameEnd => {}
                }
            }
        }
    });
    rx
}
