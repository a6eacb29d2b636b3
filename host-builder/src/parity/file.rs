//! One parity file (SPEC section 13): writing it for a protected file, checking the
//! protected file against it block by block, and restoring the protected file from it.
//!
//! Memory is bounded by one window of every shard (`(k + m) * window`, at most 512 x 64 KiB
//! and 8.5 MiB with the default window), whatever the size of the file.

use crate::error::{Error, Result};
use crate::fsio::{rename_synced, temp_path};
use rayon::prelude::*;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use romlib_format::parity::{Geometry, ParityHeader, BLOCK_HASH_LEN, HEADER_LEN, P_META_BLAKE3};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::Path;

/// Positional reads and writes that threads may share one file for: `pread`/`pwrite` on
/// Unix, `seek_read`/`seek_write` (each call names its offset) on Windows.
trait PosIo {
    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<usize>;
    fn write_at(&self, buf: &[u8], at: u64) -> std::io::Result<usize>;

    fn read_exact_at(&self, mut buf: &mut [u8], mut at: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, at) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    at += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn write_all_at(&self, mut buf: &[u8], mut at: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(buf, at) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    at += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(unix)]
impl PosIo for std::fs::File {
    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, at)
    }
    fn write_at(&self, buf: &[u8], at: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::write_at(self, buf, at)
    }
}

#[cfg(windows)]
impl PosIo for std::fs::File {
    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(self, buf, at)
    }
    fn write_at(&self, buf: &[u8], at: u64) -> std::io::Result<usize> {
        std::os::windows::fs::FileExt::seek_write(self, buf, at)
    }
}

/// BLAKE3 prefix of a protected file's library-relative path (`packs/pack-0001.pkg`).
pub fn name_hash(rel: &str) -> [u8; 16] {
    let mut h = [0u8; 16];
    h.copy_from_slice(&blake3::hash(rel.as_bytes()).as_bytes()[..16]);
    h
}

fn block_hash(b: &[u8]) -> [u8; BLOCK_HASH_LEN] {
    let mut h = [0u8; BLOCK_HASH_LEN];
    h.copy_from_slice(&blake3::hash(b).as_bytes()[..BLOCK_HASH_LEN]);
    h
}

fn rs_err(path: &Path, e: reed_solomon_simd::Error) -> Error {
    Error::library(path, format!("Reed-Solomon coding failed: {e}"))
}

/// Reads up to `buf.len()` bytes at `offset`; what lies past the end of the file is zero.
fn read_padded(f: &File, buf: &mut [u8], offset: u64, path: &Path) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, "read", e)),
        }
    }
    buf[got..].fill(0);
    Ok(())
}

/// The BLAKE3 of a whole file and its length.
pub fn hash_file(path: &Path) -> Result<([u8; 32], u64)> {
    let mut f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, "read", e)),
        };
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((*h.finalize().as_bytes(), len))
}

/// Writes the parity file `par` of protected file `path` (library-relative name `rel`) at
/// `percent` redundancy: to a temp file beside it, fsynced, renamed, folder fsynced.
pub fn write(path: &Path, rel: &str, par: &Path, percent: u32) -> Result<ParityHeader> {
    let (file_blake3, file_len) = hash_file(path)?;
    let geometry =
        Geometry::for_file(file_len, percent).map_err(|e| Error::library(path, e.to_string()))?;
    let src = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let mut header = ParityHeader {
        geometry,
        percent,
        file_blake3,
        name_hash: name_hash(rel),
        meta_blake3: [0; 32],
    };
    if let Some(dir) = par.parent() {
        crate::fsio::create_dir(dir)?;
    }
    let tmp = temp_path(par);
    let res = (|| {
        let out = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, "create", e))?;
        let g = &geometry;
        let (k, m) = (g.data_shards as usize, g.parity_shards as usize);
        // Windows are independent: each thread codes its own, with its own encoder and
        // buffers, and writes its recovery blocks and block hashes where they belong.
        (0..g.windows()).into_par_iter().try_for_each_init(
            || {
                (
                    ReedSolomonEncoder::new(k, m, g.window as usize),
                    vec![0u8; g.window as usize],
                    vec![0u8; (k + m) * BLOCK_HASH_LEN],
                )
            },
            |(enc, buf, hashes), j| -> Result<()> {
                let enc = enc.as_mut().map_err(|e| rs_err(path, *e))?;
                let len = g.window_len(j);
                enc.reset(k, m, len).map_err(|e| rs_err(path, e))?;
                for s in 0..k {
                    let b = &mut buf[..len];
                    read_padded(&src, b, g.data_offset(s as u32, j), path)?;
                    hashes[s * BLOCK_HASH_LEN..][..BLOCK_HASH_LEN].copy_from_slice(&block_hash(b));
                    enc.add_original_shard(&*b).map_err(|e| rs_err(path, e))?;
                }
                let rec = enc.encode().map_err(|e| rs_err(path, e))?;
                for (r, shard) in rec.recovery_iter().enumerate() {
                    hashes[(k + r) * BLOCK_HASH_LEN..][..BLOCK_HASH_LEN]
                        .copy_from_slice(&block_hash(shard));
                    out.write_all_at(shard, g.parity_offset(r as u32, j))
                        .map_err(|e| Error::io(&tmp, "write", e))?;
                }
                out.write_all_at(hashes, g.table_offset(j))
                    .map_err(|e| Error::io(&tmp, "write", e))
            },
        )?;
        // The checksum of the header and the block table, read back in order.
        let mut meta = blake3::Hasher::new();
        meta.update(&header.encode()[..P_META_BLAKE3]);
        let mut buf = vec![0u8; 1 << 20];
        let (mut at, end) = (HEADER_LEN as u64, HEADER_LEN as u64 + g.table_len());
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            out.read_exact_at(&mut buf[..n], at)
                .map_err(|e| Error::io(&tmp, "read", e))?;
            meta.update(&buf[..n]);
            at += n as u64;
        }
        header.meta_blake3 = *meta.finalize().as_bytes();
        out.write_all_at(&header.encode(), 0)
            .map_err(|e| Error::io(&tmp, "write", e))?;
        out.sync_all().map_err(|e| Error::io(&tmp, "fsync", e))?;
        rename_synced(&tmp, par)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map(|()| header)
}

/// Opens a parity file and checks everything that does not need the protected file: its
/// header, its length, the checksum of its header and block table, and that it was written
/// for a file of this library-relative name. `Err` is a one-line reason.
pub fn open(par: &Path, rel: &str) -> std::result::Result<(File, ParityHeader), String> {
    let f = File::open(par).map_err(|e| format!("cannot be opened: {e}"))?;
    let len = f
        .metadata()
        .map_err(|e| format!("cannot be read: {e}"))?
        .len();
    let mut hb = [0u8; HEADER_LEN];
    let n = HEADER_LEN.min(len as usize);
    f.read_exact_at(&mut hb[..n], 0)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let h = ParityHeader::decode(&hb[..n]).map_err(|e| format!("damaged ({e})"))?;
    let g = &h.geometry;
    if len != g.parity_file_len() {
        return Err(format!(
            "damaged (it is {len} bytes, its header says {})",
            g.parity_file_len()
        ));
    }
    let mut meta = blake3::Hasher::new();
    meta.update(&hb[..P_META_BLAKE3]);
    let mut buf = vec![0u8; 1 << 20];
    let mut at = HEADER_LEN as u64;
    let end = at + g.table_len();
    while at < end {
        let n = (end - at).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..n], at)
            .map_err(|e| format!("cannot be read: {e}"))?;
        meta.update(&buf[..n]);
        at += n as u64;
    }
    if meta.finalize().as_bytes() != &h.meta_blake3 {
        return Err("damaged (its header or block table does not match its checksum)".into());
    }
    if h.name_hash != name_hash(rel) {
        return Err(format!(
            "was written for another file than {rel} (renamed or copied parity)"
        ));
    }
    Ok((f, h))
}

/// What a block-by-block check of a protected file against its parity found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    /// Length of the protected file as found (`None`: missing).
    pub len: Option<u64>,
    /// Data blocks that do not match their hash.
    pub bad_data: u64,
    /// Recovery blocks that do not match their hash.
    pub bad_parity: u64,
    /// Windows with more damaged blocks than recovery shards.
    pub lost_windows: u64,
    /// The most damaged blocks in one window.
    pub worst_window: u32,
}

impl Scan {
    /// Whether the protected file is exactly the one the parity was written for.
    pub fn file_intact(&self, h: &ParityHeader) -> bool {
        self.bad_data == 0 && self.len == Some(h.geometry.file_len)
    }

    /// Whether the damage found can be repaired with this parity.
    pub fn repairable(&self) -> bool {
        self.lost_windows == 0
    }
}

/// Reads window `j` of every shard: data blocks from `src` (zero where missing) and
/// recovery blocks from `par`, with the block table's hashes; returns the indexes of the
/// blocks that do not match.
struct Window {
    blocks: Vec<u8>,
    table: Vec<u8>,
    bad: Vec<usize>,
}

impl Window {
    fn new(g: &Geometry) -> Self {
        Self {
            blocks: vec![0u8; g.total_shards() as usize * g.window as usize],
            table: vec![0u8; g.total_shards() as usize * BLOCK_HASH_LEN],
            bad: Vec::new(),
        }
    }

    fn block(&self, g: &Geometry, i: usize, len: usize) -> &[u8] {
        &self.blocks[i * g.window as usize..][..len]
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &mut self,
        g: &Geometry,
        j: u64,
        src: Option<&File>,
        path: &Path,
        par: &File,
        par_path: &Path,
    ) -> Result<usize> {
        let len = g.window_len(j);
        let w = g.window as usize;
        let (k, total) = (g.data_shards as usize, g.total_shards() as usize);
        par.read_exact_at(&mut self.table, g.table_offset(j))
            .map_err(|e| Error::io(par_path, "read", e))?;
        self.bad.clear();
        for i in 0..total {
            let b = &mut self.blocks[i * w..][..len];
            if i < k {
                match src {
                    Some(f) => read_padded(f, b, g.data_offset(i as u32, j), path)?,
                    None => b.fill(0),
                }
            } else {
                par.read_exact_at(b, g.parity_offset((i - k) as u32, j))
                    .map_err(|e| Error::io(par_path, "read", e))?;
            }
            if block_hash(b) != self.table[i * BLOCK_HASH_LEN..][..BLOCK_HASH_LEN] {
                self.bad.push(i);
            }
        }
        Ok(len)
    }
}

/// Counts the recovery blocks of a parity file (opened and checked by [`open`]) that do not
/// match their hashes, without reading the protected file.
pub fn bad_recovery_blocks(par: &File, par_path: &Path, h: &ParityHeader) -> Result<u64> {
    let g = &h.geometry;
    let (k, m) = (g.data_shards as usize, g.parity_shards as usize);
    let mut table = vec![0u8; (k + m) * BLOCK_HASH_LEN];
    let mut buf = vec![0u8; g.window as usize];
    let mut bad = 0;
    for j in 0..g.windows() {
        let len = g.window_len(j);
        par.read_exact_at(&mut table, g.table_offset(j))
            .map_err(|e| Error::io(par_path, "read", e))?;
        for r in 0..m {
            let b = &mut buf[..len];
            par.read_exact_at(b, g.parity_offset(r as u32, j))
                .map_err(|e| Error::io(par_path, "read", e))?;
            if block_hash(b) != table[(k + r) * BLOCK_HASH_LEN..][..BLOCK_HASH_LEN] {
                bad += 1;
            }
        }
    }
    Ok(bad)
}

fn open_src(path: &Path) -> Result<Option<(File, u64)>> {
    match File::open(path) {
        Ok(f) => {
            let len = f.metadata().map_err(|e| Error::io(path, "stat", e))?.len();
            Ok(Some((f, len)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, "open", e)),
    }
}

/// Checks protected file `path` block by block against parity file `par` (opened and
/// checked by [`open`]).
pub fn scan(path: &Path, par: &File, par_path: &Path, h: &ParityHeader) -> Result<Scan> {
    let g = &h.geometry;
    let src = open_src(path)?;
    let mut s = Scan {
        len: src.as_ref().map(|(_, l)| *l),
        ..Scan::default()
    };
    let k = g.data_shards as usize;
    let m = g.parity_shards as usize;
    let file = src.as_ref().map(|(f, _)| f);
    let (bad_data, bad_parity, lost, worst) = (0..g.windows())
        .into_par_iter()
        .map_init(
            || Window::new(g),
            |win, j| -> Result<(u64, u64, u64, u32)> {
                win.read(g, j, file, path, par, par_path)?;
                let data = win.bad.iter().filter(|&&i| i < k).count();
                Ok((
                    data as u64,
                    (win.bad.len() - data) as u64,
                    u64::from(win.bad.len() > m),
                    win.bad.len() as u32,
                ))
            },
        )
        .try_reduce(
            || (0, 0, 0, 0),
            |a, b| Ok((a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3.max(b.3))),
        )?;
    s.bad_data = bad_data;
    s.bad_parity = bad_parity;
    s.lost_windows = lost;
    s.worst_window = worst;
    Ok(s)
}

/// Where a restored file is written before it replaces `path`: `.<name>.repair` beside it
/// (not `.<name>.tmp`, which a builder's recovery takes for a staged manifest).
pub fn repair_temp_path(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.repair"))
}

/// Why a repair did not happen.
#[derive(Debug)]
pub enum RepairError {
    /// More blocks are damaged in some window than the parity can restore.
    Insufficient {
        /// Windows that cannot be restored.
        lost_windows: u64,
        /// The most damaged blocks in one window.
        worst: u32,
        /// Recovery shards per window.
        parity_shards: u32,
    },
    /// Anything else (I/O, a restored file that does not hash as recorded).
    Failed(Error),
}

impl From<Error> for RepairError {
    fn from(e: Error) -> Self {
        RepairError::Failed(e)
    }
}

/// Restores protected file `path` from parity file `par`: writes the restored file to a temp
/// file beside it, fsyncs it, checks its BLAKE3 against the parity's record, renames it over
/// `path` and fsyncs the folder. On any failure the temp file is removed and `path` is as it
/// was. Returns the number of data blocks restored.
/// `scanned` is what [`scan`] found just before, if the caller ran it.
pub fn repair(
    path: &Path,
    par: &File,
    par_path: &Path,
    h: &ParityHeader,
    scanned: Option<&Scan>,
) -> std::result::Result<u64, RepairError> {
    let g = &h.geometry;
    // A first pass decides, before anything is written, whether every window can be
    // restored (a failure then costs no write at all).
    let s = match scanned {
        Some(s) => *s,
        None => scan(path, par, par_path, h)?,
    };
    if !s.repairable() {
        return Err(RepairError::Insufficient {
            lost_windows: s.lost_windows,
            worst: s.worst_window,
            parity_shards: g.parity_shards,
        });
    }
    let src = open_src(path)?;
    if let Some(dir) = path.parent() {
        crate::fsio::create_dir(dir)?;
    }
    let tmp = repair_temp_path(path);
    let res = (|| -> std::result::Result<u64, RepairError> {
        let out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, "create", e))?;
        let (k, m) = (g.data_shards as usize, g.parity_shards as usize);
        let mut win = Window::new(g);
        let mut dec =
            ReedSolomonDecoder::new(k, m, g.window as usize).map_err(|e| rs_err(par_path, e))?;
        let mut restored = 0u64;
        let mut fixed: Vec<(usize, Vec<u8>)> = Vec::new();
        for j in 0..g.windows() {
            let len = win.read(g, j, src.as_ref().map(|(f, _)| f), path, par, par_path)?;
            if win.bad.len() > m {
                return Err(RepairError::Insufficient {
                    lost_windows: 1,
                    worst: win.bad.len() as u32,
                    parity_shards: g.parity_shards,
                });
            }
            fixed.clear();
            if win.bad.iter().any(|&i| i < k) {
                dec.reset(k, m, len).map_err(|e| rs_err(par_path, e))?;
                for i in 0..k + m {
                    if win.bad.contains(&i) {
                        continue;
                    }
                    let b = win.block(g, i, len);
                    if i < k {
                        dec.add_original_shard(i, b)
                    } else {
                        dec.add_recovery_shard(i - k, b)
                    }
                    .map_err(|e| rs_err(par_path, e))?;
                }
                let r = dec.decode().map_err(|e| rs_err(par_path, e))?;
                for &i in win.bad.iter().filter(|&&i| i < k) {
                    let b = r.restored_original(i).ok_or_else(|| {
                        Error::library(par_path, format!("block {i} of window {j} not restored"))
                    })?;
                    if block_hash(b) != win.table[i * BLOCK_HASH_LEN..][..BLOCK_HASH_LEN] {
                        return Err(Error::library(
                            par_path,
                            format!("restored block {i} of window {j} does not match its hash"),
                        )
                        .into());
                    }
                    fixed.push((i, b.to_vec()));
                    restored += 1;
                }
            }
            for i in 0..k {
                let at = g.data_offset(i as u32, j);
                if at >= g.file_len {
                    break;
                }
                let n = ((g.file_len - at) as usize).min(len);
                let b = match fixed.iter().find(|(f, _)| *f == i) {
                    Some((_, b)) => &b[..n],
                    None => &win.block(g, i, len)[..n],
                };
                out.write_all_at(b, at)
                    .map_err(|e| Error::io(&tmp, "write", e))?;
            }
        }
        out.set_len(g.file_len)
            .map_err(|e| Error::io(&tmp, "write", e))?;
        out.sync_all().map_err(|e| Error::io(&tmp, "fsync", e))?;
        drop(out);
        let (hash, len) = hash_file(&tmp)?;
        if hash != h.file_blake3 || len != g.file_len {
            return Err(Error::library(
                path,
                "the restored file does not match the BLAKE3 its parity recorded; left as it was",
            )
            .into());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644));
        }
        rename_synced(&tmp, path)?;
        Ok(restored)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn setup(
        len: usize,
        percent: u32,
    ) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pack-0001.pkg");
        fs::write(&f, sample(len, 42)).unwrap();
        let p = d.path().join("par/pack-0001.pkg.par");
        write(&f, "packs/pack-0001.pkg", &p, percent).unwrap();
        (d, f, p)
    }

    #[test]
    fn a_zeroed_burst_is_restored_byte_identically() {
        let (_d, f, p) = setup(3 << 20, 5);
        let orig = fs::read(&f).unwrap();
        let mut bad = orig.clone();
        bad[100_000..100_000 + (64 << 10)].fill(0);
        fs::write(&f, &bad).unwrap();
        let (pf, h) = open(&p, "packs/pack-0001.pkg").unwrap();
        let s = scan(&f, &pf, &p, &h).unwrap();
        assert!(!s.file_intact(&h) && s.repairable(), "{s:?}");
        assert!(repair(&f, &pf, &p, &h, None).unwrap() > 0);
        assert_eq!(fs::read(&f).unwrap(), orig);
        assert!(scan(&f, &pf, &p, &h).unwrap().file_intact(&h));
    }

    /// The bytes of a parity file are pinned: they depend on the Reed-Solomon construction
    /// of `reed-solomon-simd` 3.x (SPEC section 13). A parity file written by one version
    /// must restore files with the next; a change here is a format change.
    #[test]
    fn parity_bytes_are_pinned() {
        // 9 MiB: shards of 36 KiB, two windows (32 KiB and 4 KiB).
        let (_d, _f, p) = setup(9 << 20, 5);
        let got = blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string();
        assert_eq!(
            got,
            "ed67443fb56b7f386278592ceb13a4f8150cab162f0613bd21931516a12cccd6"
        );
    }

    #[test]
    fn damage_beyond_parity_changes_nothing() {
        let (_d, f, p) = setup(1 << 20, 5);
        let mut bad = fs::read(&f).unwrap();
        bad[..200 << 10].fill(0);
        fs::write(&f, &bad).unwrap();
        let (pf, h) = open(&p, "packs/pack-0001.pkg").unwrap();
        assert!(!scan(&f, &pf, &p, &h).unwrap().repairable());
        assert!(matches!(
            repair(&f, &pf, &p, &h, None),
            Err(RepairError::Insufficient { .. })
        ));
        assert_eq!(fs::read(&f).unwrap(), bad);
        assert!(!repair_temp_path(&f).exists());
    }

    #[test]
    fn truncated_and_deleted_small_files_come_back() {
        let (_d, f, p) = setup(5000, 5);
        let orig = fs::read(&f).unwrap();
        let (pf, h) = open(&p, "packs/pack-0001.pkg").unwrap();
        fs::write(&f, &orig[..1234]).unwrap();
        repair(&f, &pf, &p, &h, None).unwrap();
        assert_eq!(fs::read(&f).unwrap(), orig);
        fs::remove_file(&f).unwrap();
        repair(&f, &pf, &p, &h, None).unwrap();
        assert_eq!(fs::read(&f).unwrap(), orig);
    }

    #[test]
    fn damaged_or_foreign_parity_is_refused() {
        let (_d, _f, p) = setup(200_000, 10);
        assert!(open(&p, "packs/pack-0002.pkg")
            .unwrap_err()
            .contains("another file"));
        let orig = fs::read(&p).unwrap();
        // Every field of the header and a byte of the block table: refused, never a panic.
        for at in (0..HEADER_LEN + 64).step_by(3) {
            let mut bad = orig.clone();
            bad[at] ^= 0x10;
            fs::write(&p, &bad).unwrap();
            assert!(open(&p, "packs/pack-0001.pkg").is_err(), "flip at {at}");
        }
        for cut in [0, 5, HEADER_LEN - 1, HEADER_LEN, orig.len() - 1] {
            fs::write(&p, &orig[..cut]).unwrap();
            assert!(open(&p, "packs/pack-0001.pkg").is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn damaged_recovery_blocks_are_found_not_used() {
        let (_d, f, p) = setup(1 << 20, 10);
        let orig = fs::read(&p).unwrap();
        let mut bad = orig.clone();
        let n = bad.len();
        bad[n - 10] ^= 1;
        fs::write(&p, &bad).unwrap();
        let (pf, h) = open(&p, "packs/pack-0001.pkg").unwrap();
        let s = scan(&f, &pf, &p, &h).unwrap();
        assert!(s.file_intact(&h));
        assert_eq!(s.bad_parity, 1);
    }
}
