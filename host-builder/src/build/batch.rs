//! What the reader thread hands on: batches of chunks with file and game ends, in input
//! order, shared by the consumer and the DAT-hash threads.

use std::sync::Arc;

/// Bytes of chunk data per batch handed to the thread pool.
pub(super) const BATCH_BYTES: usize = 8 << 20;

/// One piece of the input stream.
pub(super) enum Piece {
    /// The next chunk of the current file.
    Chunk(Vec<u8>),
    /// The current file ended; its BLAKE3.
    FileEnd { blake3: [u8; 32] },
    /// The current game ended.
    GameEnd,
}

/// A piece, with the game and file (indices into the scanned input) it belongs to.
pub(super) struct Item {
    pub(super) game: usize,
    pub(super) file: usize,
    pub(super) piece: Piece,
}

/// A batch of chunks and file and game ends, in input order, shared by the consumer and
/// the DAT hash threads.
pub(super) type Batch = Arc<Vec<Item>>;
