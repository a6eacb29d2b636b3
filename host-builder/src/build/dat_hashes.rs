//! The DAT-hash threads: CRC-32 with MD5, and SHA-1 with SHA-256, of every file, computed
//! beside the reader and the pool from the batches the reader already read.

use super::batch::{Batch, Piece};
use crate::dat::digests::{DatHashes, HashHalf};
use crate::error::{Error, Result};
use std::path::Path;
use std::sync::mpsc::Receiver;

/// The per-file DAT hash results, one per file in input order, from two threads.
pub(super) struct DatResults {
    pub(super) legacy: Receiver<(u32, [u8; 16])>,
    pub(super) sha: Receiver<([u8; 20], [u8; 32])>,
}

impl DatResults {
    pub(super) fn next(&self) -> Result<DatHashes> {
        // Not a usage error: the threads only stop early if they panicked.
        let lost = || {
            Error::input(
                Path::new("<build>"),
                "internal error: a DAT hash thread stopped",
            )
        };
        let l = self.legacy.recv().map_err(|_| lost())?;
        let s = self.sha.recv().map_err(|_| lost())?;
        Ok(DatHashes::join(l, s))
    }
}

/// A thread feeding every batch to one half of the DAT hashes. MD5, SHA-1 and SHA-256 cost
/// more CPU than cutting and BLAKE3 together, so they run beside the reader and the pool,
/// on data the reader has already read (one read of the input).
pub(super) fn spawn_half<H: HashHalf + 'static>(batches: Receiver<Batch>) -> Receiver<H::Out> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut h = H::default();
        for batch in batches {
            for it in batch.iter() {
                match &it.piece {
                    Piece::Chunk(d) => h.update(d),
                    Piece::FileEnd { .. } => {
                        if tx.send(std::mem::take(&mut h).finish()).is_err() {
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
