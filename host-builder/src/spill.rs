//! External sorting of fixed-size rows: what lets `romlib verify` join what it finds in the
//! packs, the manifests and the index, and `romlib prune` count what the manifests
//! reference, in bounded memory, whatever the library's size.
//!
//! Rows are byte arrays compared as such, so a row starts with its sort key in big-endian
//! order. Up to [`MEMORY_BYTES`] of rows are held and sorted in memory; past that, each
//! full buffer is sorted and written to an anonymous temporary file (in the system's
//! temporary folder, `TMPDIR` on Unix), and the runs are merged as they are read back. A
//! library whose rows fit in memory writes no temporary file.

use crate::error::{Error, Result};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};

/// Bytes of rows one sorter holds in memory before it writes a run.
pub(crate) const MEMORY_BYTES: usize = 32 << 20;
/// Runs on disk at most: past it, they are merged into one (so a merge reads at most this
/// many files at once, whatever the library's size).
const MAX_RUNS: usize = 64;

/// Collects rows of `N` bytes, then gives them back in sorted order.
pub(crate) struct Sorter<const N: usize> {
    buf: Vec<[u8; N]>,
    max_rows: usize,
    runs: Vec<File>,
}

impl<const N: usize> Sorter<N> {
    /// A sorter holding at most [`MEMORY_BYTES`] of rows in memory, or the bytes
    /// `ROMLIB_VERIFY_MEMORY` says (the tests set it tiny, so that every join of a small
    /// library goes through runs on disk).
    pub(crate) fn new() -> Self {
        let bytes = std::env::var("ROMLIB_VERIFY_MEMORY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MEMORY_BYTES);
        Self::with_memory(bytes)
    }

    /// A sorter holding at most `bytes` of rows in memory (at least one row).
    pub(crate) fn with_memory(bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_rows: (bytes / N).max(1),
            runs: Vec::new(),
        }
    }

    /// Adds a row.
    pub(crate) fn push(&mut self, row: [u8; N]) -> Result<()> {
        self.buf.push(row);
        if self.buf.len() >= self.max_rows {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorts the rows in memory and writes them as a run.
    fn spill(&mut self) -> Result<()> {
        self.buf.sort_unstable();
        let tmp = std::env::temp_dir();
        let err = |e| Error::io(&tmp, "write a temporary file", e);
        let mut file = tempfile::tempfile_in(&tmp).map_err(err)?;
        {
            let mut w = BufWriter::with_capacity(1 << 16, &mut file);
            for row in &self.buf {
                w.write_all(row).map_err(err)?;
            }
            w.flush().map_err(err)?;
        }
        file.rewind().map_err(err)?;
        self.runs.push(file);
        self.buf.clear();
        if self.runs.len() >= MAX_RUNS {
            self.merge_runs()?;
        }
        Ok(())
    }

    /// Merges every run on disk into one.
    fn merge_runs(&mut self) -> Result<()> {
        let tmp = std::env::temp_dir();
        let err = |e| Error::io(&tmp, "write a temporary file", e);
        let mut file = tempfile::tempfile_in(&tmp).map_err(err)?;
        {
            let mut w = BufWriter::with_capacity(1 << 16, &mut file);
            for row in merge::<N>(std::mem::take(&mut self.runs))? {
                w.write_all(&row?).map_err(err)?;
            }
            w.flush().map_err(err)?;
        }
        file.rewind().map_err(err)?;
        self.runs.push(file);
        Ok(())
    }

    /// Every row pushed, in sorted order.
    pub(crate) fn finish(mut self) -> Result<Sorted<N>> {
        if self.runs.is_empty() {
            self.buf.sort_unstable();
            return Ok(Sorted::Memory(self.buf.into_iter()));
        }
        if !self.buf.is_empty() {
            self.spill()?;
        }
        self.buf = Vec::new();
        merge(self.runs)
    }
}

/// The rows of sorted `runs`, merged.
fn merge<const N: usize>(runs: Vec<File>) -> Result<Sorted<N>> {
    let mut readers: Vec<BufReader<File>> = runs
        .into_iter()
        .map(|f| BufReader::with_capacity(1 << 16, f))
        .collect();
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some(row) = read_row(r)? {
            heap.push(Reverse((row, i)));
        }
    }
    Ok(Sorted::Merge { readers, heap })
}

fn read_row<const N: usize>(r: &mut BufReader<File>) -> Result<Option<[u8; N]>> {
    let mut row = [0u8; N];
    match r.read_exact(&mut row) {
        Ok(()) => Ok(Some(row)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(Error::io(std::env::temp_dir(), "read a temporary file", e)),
    }
}

/// Sorted rows: from memory, or merged from runs on disk.
pub(crate) enum Sorted<const N: usize> {
    /// Every row fitted in memory.
    Memory(std::vec::IntoIter<[u8; N]>),
    /// A k-way merge of sorted runs.
    Merge {
        readers: Vec<BufReader<File>>,
        heap: BinaryHeap<Reverse<([u8; N], usize)>>,
    },
}

impl<const N: usize> Sorted<N> {
    /// These rows, leaving none in their place (for a join that consumes them).
    pub(crate) fn take_rows(&mut self) -> Self {
        std::mem::replace(self, Sorted::Memory(Vec::new().into_iter()))
    }
}

impl<const N: usize> Iterator for Sorted<N> {
    type Item = Result<[u8; N]>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Sorted::Memory(it) => it.next().map(Ok),
            Sorted::Merge { readers, heap } => {
                let Reverse((row, i)) = heap.pop()?;
                match read_row(&mut readers[i]) {
                    Ok(Some(next)) => heap.push(Reverse((next, i))),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
                Some(Ok(row))
            }
        }
    }
}

/// Big-endian `u32` then `u64`: a (pack, offset) key that sorts as the pair does.
pub(crate) fn place_key(pack: u32, offset: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&pack.to_be_bytes());
    k[4..].copy_from_slice(&offset.to_be_bytes());
    k
}

/// The (pack, offset) of a [`place_key`].
pub(crate) fn from_place_key(k: &[u8]) -> (u32, u64) {
    let mut p = [0u8; 4];
    let mut o = [0u8; 8];
    p.copy_from_slice(&k[..4]);
    o.copy_from_slice(&k[4..12]);
    (u32::from_be_bytes(p), u64::from_be_bytes(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: u64) -> Vec<[u8; 12]> {
        // A fixed permutation with repeats: sorted output must keep every row.
        (0..n)
            .map(|i| place_key((i * 7919 % 13) as u32, i * 104_729 % 1000))
            .collect()
    }

    #[test]
    fn sorts_in_memory_and_through_runs_alike() {
        let input = rows(5000);
        let mut want = input.clone();
        want.sort_unstable();
        // All in memory; then spilled every 100 rows (50 runs), and every row (5000 runs,
        // merged into one every 64).
        for bytes in [MEMORY_BYTES, 100 * 12, 1] {
            let mut s = Sorter::<12>::with_memory(bytes);
            for r in &input {
                s.push(*r).unwrap();
            }
            let got: Vec<[u8; 12]> = s.finish().unwrap().map(|r| r.unwrap()).collect();
            assert_eq!(got, want, "memory {bytes}");
        }
        let empty = Sorter::<12>::with_memory(1).finish().unwrap();
        assert_eq!(empty.count(), 0);
        assert_eq!(from_place_key(&place_key(7, 1 << 40)), (7, 1 << 40));
        assert!(place_key(1, u64::MAX) < place_key(2, 0));
    }
}
