//! The zip archive an arcade game installs as (SPEC section 7, "Placement"): its members
//! are the game's signed files, stored (not compressed), in TorrentZip's order (by name,
//! ignoring ASCII case) with TorrentZip's fixed time stamp, so the archive's bytes are a
//! function of the signed manifest alone: two installs of a game give identical archives,
//! and a check of an installed archive compares every byte of it with what the manifest
//! says it must be.
//!
//! Stored members need no compressor on the device, and MAME and FinalBurn Neo read them
//! as they read deflated ones. Archives past the classic format's limits (a member or the
//! archive of 4 GiB or more, 65,535 members) are not made: such a game installs as a
//! folder instead.

use crate::error::{Error, Result};
use crate::folder::{Folder, Kind};
use romlib_proto::{FileEntry, Manifest};
use std::fs::File;
use std::io::{BufWriter, Read, Write};

/// TorrentZip's time stamp for every member, 1996-12-24 23:32:00, in MS-DOS form.
const DOS_TIME: u16 = 0xBC00;
const DOS_DATE: u16 = 0x2198;
const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const END_SIG: u32 = 0x0605_4b50;
/// Bit 11: the member's name is UTF-8 (set only for names that are not ASCII).
const UTF8_FLAG: u16 = 0x0800;

/// The CRC-32 (IEEE) table, computed at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// A running CRC-32 (what zip, DATs and the manifest's `crc32` use).
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Crc32(!0)
    }
}

impl Crc32 {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    /// The CRC of everything added.
    pub fn value(self) -> u32 {
        !self.0
    }
}

/// The indices of `body`'s files in the archive's order: by name, ASCII case ignored, then
/// by bytes (TorrentZip's order).
pub fn order(body: &Manifest) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..body.files.len()).collect();
    idx.sort_by(|&a, &b| {
        let (a, b) = (&body.files[a].path, &body.files[b].path);
        a.to_ascii_lowercase()
            .cmp(&b.to_ascii_lowercase())
            .then_with(|| a.cmp(b))
    });
    idx
}

/// Whether `body`'s files fit the classic zip format and every one has its signed CRC-32
/// (the archive's headers carry it before the data).
pub fn fits(body: &Manifest) -> bool {
    let mut total = 22u64;
    for f in &body.files {
        if f.crc32.is_none() || f.size >= u32::MAX as u64 || f.path.len() > 1024 {
            return false;
        }
        total += 30 + 46 + 2 * f.path.len() as u64 + f.size;
    }
    !body.files.is_empty() && body.files.len() < u16::MAX as usize && total < u32::MAX as u64
}

fn flags(name: &str) -> u16 {
    if name.is_ascii() {
        0
    } else {
        UTF8_FLAG
    }
}

/// The local header of member `f`.
fn local_header(f: &FileEntry) -> Vec<u8> {
    let mut h = Vec::with_capacity(30 + f.path.len());
    h.extend_from_slice(&LOCAL_SIG.to_le_bytes());
    h.extend_from_slice(&10u16.to_le_bytes()); // version needed: 1.0, stored
    h.extend_from_slice(&flags(&f.path).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // stored
    h.extend_from_slice(&DOS_TIME.to_le_bytes());
    h.extend_from_slice(&DOS_DATE.to_le_bytes());
    h.extend_from_slice(&f.crc32.unwrap_or(0).to_le_bytes());
    h.extend_from_slice(&(f.size as u32).to_le_bytes());
    h.extend_from_slice(&(f.size as u32).to_le_bytes());
    h.extend_from_slice(&(f.path.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // no extra field
    h.extend_from_slice(f.path.as_bytes());
    h
}

/// The central directory and its end record, for members `(file, local header offset)`
/// in the archive's order, the directory starting at `at`.
fn central_directory(members: &[(&FileEntry, u64)], at: u64) -> Vec<u8> {
    let mut d = Vec::new();
    for (f, offset) in members {
        d.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes()); // made by: MS-DOS, as TorrentZip
        d.extend_from_slice(&10u16.to_le_bytes());
        d.extend_from_slice(&flags(&f.path).to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes());
        d.extend_from_slice(&DOS_TIME.to_le_bytes());
        d.extend_from_slice(&DOS_DATE.to_le_bytes());
        d.extend_from_slice(&f.crc32.unwrap_or(0).to_le_bytes());
        d.extend_from_slice(&(f.size as u32).to_le_bytes());
        d.extend_from_slice(&(f.size as u32).to_le_bytes());
        d.extend_from_slice(&(f.path.len() as u16).to_le_bytes());
        d.extend_from_slice(&[0u8; 12]); // extra, comment, disk, internal, external (4)
        d.extend_from_slice(&(*offset as u32).to_le_bytes());
        d.extend_from_slice(f.path.as_bytes());
    }
    let size = d.len() as u32;
    d.extend_from_slice(&END_SIG.to_le_bytes());
    d.extend_from_slice(&[0u8; 4]); // this disk, the directory's disk
    d.extend_from_slice(&(members.len() as u16).to_le_bytes());
    d.extend_from_slice(&(members.len() as u16).to_le_bytes());
    d.extend_from_slice(&size.to_le_bytes());
    d.extend_from_slice(&(at as u32).to_le_bytes());
    d.extend_from_slice(&0u16.to_le_bytes()); // no comment
    d
}

/// Writes the archive of `body` into `out` (created as `out_path`), reading each member
/// from its staged file in `staged` (whose size and BLAKE3 the install has just verified);
/// checks every member's size and CRC-32 against the signed ones as it copies (so the
/// headers, written first, say what follows), and fsyncs the archive.
pub fn write(
    staged: &Folder,
    body: &Manifest,
    out: File,
    out_path: &std::path::Path,
) -> Result<()> {
    let mut w = BufWriter::with_capacity(256 * 1024, out);
    let mut members = Vec::with_capacity(body.files.len());
    let mut at = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    for i in order(body) {
        let f = &body.files[i];
        let header = local_header(f);
        w.write_all(&header)
            .map_err(|e| Error::io(out_path, "write", e))?;
        members.push((f, at));
        at += header.len() as u64;
        let mut file = staged
            .open_file_path(&f.path)?
            .ok_or_else(|| Error::NotFound {
                path: staged.at(&f.path),
                what: "staged file",
            })?;
        let (mut crc, mut n) = (Crc32::default(), 0u64);
        loop {
            let got = file
                .read(&mut buf)
                .map_err(|e| Error::io(staged.at(&f.path), "read", e))?;
            if got == 0 {
                break;
            }
            crc.update(&buf[..got]);
            n += got as u64;
            w.write_all(&buf[..got])
                .map_err(|e| Error::io(out_path, "write", e))?;
        }
        if n != f.size || Some(crc.value()) != f.crc32 {
            return Err(Error::manifest(
                staged.at(&f.path),
                format!(
                    "member {:?} does not match its signed size and CRC-32",
                    f.path
                ),
            ));
        }
        at += n;
    }
    w.write_all(&central_directory(&members, at))
        .map_err(|e| Error::io(out_path, "write", e))?;
    let file = w
        .into_inner()
        .map_err(|e| Error::io(out_path, "write", e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(out_path, "fsync", e))
}

/// What a check of an installed archive found wrong: the members whose bytes differ from
/// the signed ones (by path), and whether the archive's own structure (headers, directory,
/// length) differs.
#[derive(Debug, Default)]
pub struct ZipCheck {
    /// Members whose data is not what the manifest signs.
    pub bad_members: Vec<String>,
    /// Headers or the directory differ, or the archive is shorter or longer.
    pub bad_structure: bool,
}

/// Compares installed archive `file` (at `path`) with the archive `body` makes, byte for
/// byte: every header and the directory directly, every member's data by its signed size
/// and BLAKE3.
pub fn check(mut file: File, path: &std::path::Path, body: &Manifest) -> Result<ZipCheck> {
    let mut out = ZipCheck::default();
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "stat", e))?
        .len();
    let mut r = std::io::BufReader::with_capacity(256 * 1024, &mut file);
    let mut members = Vec::new();
    let mut at = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let read_exact = |r: &mut dyn Read, want: &mut [u8]| -> Result<bool> {
        match r.read_exact(want) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(Error::io(path, "read", e)),
        }
    };
    for i in order(body) {
        let f = &body.files[i];
        let want = local_header(f);
        let mut got = vec![0u8; want.len()];
        if !read_exact(&mut r, &mut got)? {
            out.bad_structure = true;
            out.bad_members.push(f.path.clone());
            return Ok(finish(out, body, &members));
        }
        out.bad_structure |= got != want;
        members.push((f, at));
        at += want.len() as u64;
        let mut hash = blake3::Hasher::new();
        let mut left = f.size;
        let mut whole = true;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            if !read_exact(&mut r, &mut buf[..n])? {
                whole = false;
                break;
            }
            hash.update(&buf[..n]);
            left -= n as u64;
        }
        if !whole || hash.finalize().as_bytes().as_slice() != f.blake3.as_slice() {
            out.bad_members.push(f.path.clone());
        }
        if !whole {
            out.bad_structure = true;
            return Ok(finish(out, body, &members));
        }
        at += f.size;
    }
    let want = central_directory(&members, at);
    let mut got = vec![0u8; want.len()];
    if !read_exact(&mut r, &mut got)? || got != want || len != at + want.len() as u64 {
        out.bad_structure = true;
    }
    Ok(out)
}

fn finish(mut out: ZipCheck, body: &Manifest, seen: &[(&FileEntry, u64)]) -> ZipCheck {
    // The members after a cut-off archive are missing.
    for f in &body.files {
        if !seen.iter().any(|(s, _)| s.path == f.path) && !out.bad_members.contains(&f.path) {
            out.bad_members.push(f.path.clone());
        }
    }
    out
}

/// Removes the staged member files of `body` from `staged` (and the folders they leave
/// empty), once the archive holds them.
pub fn drop_members(staged: &Folder, body: &Manifest) -> Result<()> {
    for f in &body.files {
        match f.path.rsplit_once('/') {
            None => {
                staged.remove_file(&f.path)?;
            }
            Some((dir, name)) => {
                if let Some(d) = staged.sub_path(dir)? {
                    d.remove_file(name)?;
                }
            }
        }
    }
    // Folders, deepest first.
    let mut dirs: Vec<&str> = body
        .files
        .iter()
        .flat_map(|f| f.path.match_indices('/').map(move |(i, _)| &f.path[..i]))
        .collect();
    dirs.sort_unstable_by_key(|d| std::cmp::Reverse(d.len()));
    dirs.dedup();
    for d in dirs {
        let (parent, name) = match d.rsplit_once('/') {
            Some((p, n)) => (staged.sub_path(p)?, n),
            None => (Some(staged.try_clone()?), d),
        };
        if let Some(p) = parent {
            if p.kind(name)? == Kind::Dir {
                p.remove_empty_dir(std::ffi::OsStr::new(name))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        let mut c = Crc32::default();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xCBF4_3926);
    }

    #[test]
    fn order_ignores_case_then_bytes() {
        let body = Manifest {
            files: ["b.bin", "A.bin", "a.bin", "C/x"]
                .iter()
                .map(|p| FileEntry {
                    path: p.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let names: Vec<&str> = order(&body)
            .into_iter()
            .map(|i| body.files[i].path.as_str())
            .collect();
        assert_eq!(names, ["A.bin", "a.bin", "b.bin", "C/x"]);
    }
}
