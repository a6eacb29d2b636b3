//! The reader thread: walks the input in sorted order, cuts each file into chunks with
//! FastCDC and hands them on in batches, with file and game ends, in input order.

use super::batch::{Batch, Item, Piece, BATCH_BYTES};
use super::dat_hashes::{spawn_half, DatResults};
use super::scan::{GameInput, InputFile};
use crate::dat::digests::{LegacyHalf, ShaHalf};
use crate::dat::headers::HeaderRules;
use crate::error::{Error, Result};
use romlib_format::chunker::ChunkerParams;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

pub(super) fn spawn_reader(
    games: Arc<Vec<GameInput>>,
    params: ChunkerParams,
    dat_hashes: Option<Arc<HeaderRules>>,
) -> (Receiver<Result<Batch>>, Option<DatResults>) {
    let (tx, rx) = sync_channel::<Result<Batch>>(2);
    let mut half_txs = Vec::new();
    let dat = dat_hashes.map(|rules| {
        let (ltx, lrx) = sync_channel::<Batch>(2);
        let (stx, srx) = sync_channel::<Batch>(2);
        half_txs = vec![ltx, stx];
        DatResults {
            legacy: spawn_half::<LegacyHalf>(lrx, games.clone(), rules.clone()),
            sha: spawn_half::<ShaHalf>(srx, games.clone(), rules),
        }
    });
    let err_tx = tx.clone();
    // The hash threads get each batch before the consumer, which waits for their results.
    let send = move |batch: Vec<Item>| -> bool {
        let batch = Arc::new(batch);
        half_txs.iter().all(|t| t.send(batch.clone()).is_ok()) && tx.send(Ok(batch)).is_ok()
    };
    std::thread::spawn(move || {
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        for (gi, game) in games.iter().enumerate() {
            let file_end =
                |fi: usize, res: Result<Option<[u8; 32]>>, batch: &mut Vec<Item>| match res {
                    Ok(Some(blake3)) => {
                        batch.push(Item {
                            game: gi,
                            file: fi,
                            piece: Piece::FileEnd { blake3 },
                        });
                        true
                    }
                    Ok(None) => false,
                    Err(e) => {
                        let _ = err_tx.send(Err(e));
                        false
                    }
                };
            let mut emit = |fi: usize, data: Vec<u8>, batch: &mut Vec<Item>| {
                bytes += data.len();
                batch.push(Item {
                    game: gi,
                    file: fi,
                    piece: Piece::Chunk(data),
                });
                if bytes >= BATCH_BYTES {
                    bytes = 0;
                    send(std::mem::take(batch))
                } else {
                    true
                }
            };
            if let Some(a) = &game.archive {
                // An archive's members, in its order, from one pass over it.
                let mut each = |fi: usize, rd: &mut dyn Read| -> Result<bool> {
                    let file = &game.files[fi];
                    // Messages name the member as a path inside its archive.
                    let shown = file.abs.join(&file.rel);
                    let res = chunk(rd, &shown, file.size, params, |d| emit(fi, d, &mut batch));
                    // An error goes to the consumer, and reading stops.
                    Ok(file_end(fi, res, &mut batch))
                };
                let res = super::archive::read(&a.path, a.kind, &a.members, &mut each)
                    .and_then(|()| unchanged(&a.path, a.len, game.files[0].mtime));
                if let Err(e) = res {
                    let _ = err_tx.send(Err(e));
                    return;
                }
            } else {
                for (fi, file) in game.files.iter().enumerate() {
                    let res = read_file(file, params, |d| emit(fi, d, &mut batch));
                    if !file_end(fi, res, &mut batch) {
                        return;
                    }
                }
            }
            batch.push(Item {
                game: gi,
                file: 0,
                piece: Piece::GameEnd,
            });
        }
        send(batch);
    });
    (rx, dat)
}

/// What a file that disappears between the scan and its read is.
pub(super) const VANISHED: &str = "file vanished during the build; run it again";

/// Chunks one file, calling `emit` per chunk; returns the file's BLAKE3, or `None` when
/// `emit` asked to stop.
pub(super) fn read_file(
    file: &InputFile,
    params: ChunkerParams,
    emit: impl FnMut(Vec<u8>) -> bool,
) -> Result<Option<[u8; 32]>> {
    let path = &file.abs;
    let f = File::open(path).map_err(|e| Error::io_or_missing(path, "open", e, VANISHED))?;
    let hash = chunk(f, path, file.size, params, emit)?;
    if hash.is_some() {
        unchanged(path, file.size, file.mtime)?;
    }
    Ok(hash)
}

/// Chunks the `size` bytes `rd` gives (of `path`, for messages), calling `emit` per chunk;
/// returns their BLAKE3, or `None` when `emit` asked to stop. Fewer or more bytes than
/// `size` mean the file changed since the scan.
fn chunk(
    rd: impl Read,
    path: &Path,
    size: u64,
    params: ChunkerParams,
    mut emit: impl FnMut(Vec<u8>) -> bool,
) -> Result<Option<[u8; 32]>> {
    let mut hasher = blake3::Hasher::new();
    let mut read: u64 = 0;
    // One byte past the size is enough to see that it grew.
    let cdc = fastcdc::v2020::StreamCDC::with_level(
        rd.take(size.saturating_add(1)),
        params.min as usize,
        params.avg as usize,
        params.max as usize,
        fastcdc::v2020::Normalization::Level1,
    );
    for chunk in cdc {
        let chunk = chunk.map_err(|e| match e {
            fastcdc::v2020::Error::IoError(io) => Error::io(path, "read", io),
            other => Error::io(path, "read", std::io::Error::other(other.to_string())),
        })?;
        hasher.update(&chunk.data);
        read += chunk.data.len() as u64;
        if read > size {
            break;
        }
        if !emit(chunk.data) {
            return Ok(None);
        }
    }
    if read != size {
        return Err(Error::input(
            path,
            "file changed during the build; run it again",
        ));
    }
    Ok(Some(*hasher.finalize().as_bytes()))
}

/// Checks that the file at `path` (an input file, or an archive) still has the size and
/// modification time the scan saw.
fn unchanged(path: &Path, len: u64, mtime: Option<std::time::SystemTime>) -> Result<()> {
    let after =
        std::fs::metadata(path).map_err(|e| Error::io_or_missing(path, "stat", e, VANISHED))?;
    if after.len() != len || after.modified().ok() != mtime {
        return Err(Error::input(
            path,
            "file changed during the build; run it again",
        ));
    }
    Ok(())
}
