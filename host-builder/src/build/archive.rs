//! Archives in the input: a `.zip` or `.7z` in a system folder is a game whose files are its
//! members, read decompressed, so identical members of parent and clone sets (and zipped
//! and unzipped copies) deduplicate. Members are listed before the build (names, sizes,
//! what cannot be read) and read in the archive's order, each checked against its declared
//! size and the archive's own CRC.
//!
//! Hostile archives: encrypted ones and unknown compression methods are skipped with a
//! reason; a member path that leaves the archive (`../`, `/etc`) or a link member too. A
//! zip bomb is bounded twice: the members' declared sizes together may be at most
//! [`MAX_RATIO`] times the archive's size, and reading stops at each declared size.
//! Archives inside an archive are stored as they are (opaque).

use crate::error::{Error, Result};
use romlib_format::path::{check_path, PathError};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Most bytes of members per byte of archive. Deflate cannot exceed 1032:1; LZMA reaches
/// a few thousand to one only on long runs (padding), so a real ROM set stays far below.
pub const MAX_RATIO: u64 = 8192;

/// 7z decoders' memory limit (dictionary, headers), in KiB: 7-Zip's ultra preset uses a
/// 64 MiB dictionary; an archive asking for more than 1 GiB is refused (what a hostile
/// archive can make the builder allocate).
const SEVENZ_MEMORY_KB: usize = 1 << 20;

/// An archive format romlib reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// PKWARE zip (stored and deflate members).
    Zip,
    /// 7-Zip (LZMA, LZMA2, copy, filters).
    SevenZ,
}

impl ArchiveKind {
    /// The format of a file named `name`, by extension.
    pub fn of(name: &str) -> Option<Self> {
        let (_, ext) = name.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "zip" => Some(ArchiveKind::Zip),
            "7z" => Some(ArchiveKind::SevenZ),
            _ => None,
        }
    }

    /// As the manifest records it.
    pub fn name(self) -> &'static str {
        match self {
            ArchiveKind::Zip => "zip",
            ArchiveKind::SevenZ => "7z",
        }
    }
}

/// One member to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its index in the archive's own list.
    pub index: u32,
    /// Its path, `/`-separated.
    pub name: String,
    /// Its declared (uncompressed) size.
    pub size: u64,
}

/// Why an archive is not read (skipped, or refused with `--strict`).
pub type Problem = String;

/// The members of the archive at `path`, in the order they are read; `Err(problem)` when
/// the archive cannot be stored as its members. Directories are left out.
pub fn list(path: &Path, kind: ArchiveKind) -> Result<std::result::Result<Vec<Member>, Problem>> {
    let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "stat", e))?
        .len();
    let members = match kind {
        ArchiveKind::Zip => list_zip(file),
        ArchiveKind::SevenZ => list_7z(file),
    };
    let members = match members {
        Ok(m) => m,
        Err(p) => return Ok(Err(p)),
    };
    for m in &members {
        match check_path(&m.name, false) {
            Ok(()) => {}
            Err(PathError::Absolute | PathError::DotDotComponent) => {
                return Ok(Err(format!(
                    "member {:?} would land outside the game's folder",
                    m.name
                )))
            }
            Err(e) => {
                return Ok(Err(format!(
                    "member {:?} is not a usable path: it {e}",
                    m.name
                )))
            }
        }
    }
    let total: u64 = members.iter().map(|m| m.size).fold(0, u64::saturating_add);
    if total > len.saturating_mul(MAX_RATIO).max(1 << 20) {
        return Ok(Err(format!(
            "its members claim {total} bytes from {len} bytes of archive, over the {MAX_RATIO}:1 \
             a real archive stays under (an archive bomb?)"
        )));
    }
    Ok(Ok(members))
}

fn list_zip(file: File) -> std::result::Result<Vec<Member>, Problem> {
    use zip::CompressionMethod;
    let mut z =
        zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip archive: {e}"))?;
    let mut out = Vec::new();
    for i in 0..z.len() {
        let f = z
            .by_index_raw(i)
            .map_err(|e| format!("not a readable zip archive: {e}"))?;
        if f.is_dir() {
            continue;
        }
        let name = f
            .name()
            .map_err(|e| format!("member {i} has an unreadable name: {e}"))?
            .replace('\\', "/");
        if f.encrypted() {
            return Err("encrypted (password-protected) archives are not read".into());
        }
        if f.is_symlink() {
            return Err(format!("member {name:?} is a symbolic link"));
        }
        match f.compression() {
            CompressionMethod::Stored if f.size() != f.compressed_size() => {
                return Err(format!("member {name:?} is stored but its sizes differ"))
            }
            CompressionMethod::Stored | CompressionMethod::Deflated => {}
            other => {
                return Err(format!(
                    "member {name:?} uses compression method {other}, which romlib does not read"
                ))
            }
        }
        out.push(Member {
            index: i as u32,
            name,
            size: f.size(),
        });
    }
    Ok(out)
}

/// The 7z method id of AES-256 encryption.
const SEVENZ_AES: [u8; 4] = [0x06, 0xF1, 0x07, 0x01];

fn open_7z(file: File) -> std::result::Result<sevenz_rust2::ArchiveReader<File>, Problem> {
    let mut r = sevenz_rust2::ArchiveReader::new_with_memory_limit(
        file,
        sevenz_rust2::Password::from_raw(&[]),
        SEVENZ_MEMORY_KB,
    )
    .map_err(|e| match e {
        sevenz_rust2::Error::PasswordRequired | sevenz_rust2::Error::MaybeBadPassword(_) => {
            "encrypted (password-protected) archives are not read".to_string()
        }
        e => format!("not a readable 7z archive: {e}"),
    })?;
    r.set_thread_count(1);
    Ok(r)
}

fn list_7z(file: File) -> std::result::Result<Vec<Member>, Problem> {
    let r = open_7z(file)?;
    let a = r.archive();
    if a.blocks
        .iter()
        .any(|b| b.coders.iter().any(|c| c.encoder_method_id() == SEVENZ_AES))
    {
        return Err("encrypted (password-protected) archives are not read".into());
    }
    // The order a reader decodes them in: files with data, block by block (blocks hold
    // files in index order), then the empty ones.
    let mut with_data = Vec::new();
    let mut empty = Vec::new();
    for (i, e) in a.files.iter().enumerate() {
        if e.is_directory || e.is_anti_item {
            continue;
        }
        let m = Member {
            index: i as u32,
            name: e.name.replace('\\', "/"),
            size: e.size,
        };
        match e.size {
            0 => empty.push(m),
            _ => with_data.push(m),
        }
    }
    with_data.extend(empty);
    Ok(with_data)
}

/// Reads the members of the archive at `path` in `members` order (as [`list`] gave them),
/// handing each one's decompressed bytes to `each(position, reader)`; `each` returns
/// `false` to stop. A member whose bytes differ from its declared size, or whose CRC does
/// not match, is an error naming the archive.
pub fn read(
    path: &Path,
    kind: ArchiveKind,
    members: &[Member],
    each: &mut dyn FnMut(usize, &mut dyn Read) -> Result<bool>,
) -> Result<()> {
    let file = File::open(path)
        .map_err(|e| Error::io_or_missing(path, "open", e, super::reader::VANISHED))?;
    let changed = || Error::input(path, "archive changed during the build; run it again");
    match kind {
        ArchiveKind::Zip => {
            let mut z = zip::ZipArchive::new(file).map_err(|_| changed())?;
            for (pos, m) in members.iter().enumerate() {
                let mut f = z
                    .by_index(m.index as usize)
                    .map_err(|e| Error::input(path, format!("member {:?}: {e}", m.name)))?;
                if f.size() != m.size {
                    return Err(changed());
                }
                if !each(pos, &mut f)? {
                    return Ok(());
                }
            }
            Ok(())
        }
        ArchiveKind::SevenZ => {
            use sevenz_rust2::EntryDecision;
            let mut r = open_7z(file).map_err(|_| changed())?;
            // Members with data come in decode order; empty ones (listed last) are
            // handed on after them, whenever the decoder visits them.
            let with_data = members.iter().take_while(|m| m.size > 0).count();
            let mut pos = 0usize;
            let mut failure: Option<Error> = None;
            let mut stopped = false;
            let res = r.for_each_entries_with_decision(|entry, rd| {
                if entry.is_directory || entry.is_anti_item || entry.size == 0 {
                    return Ok(EntryDecision::Continue);
                }
                let m = members[..with_data].get(pos);
                if m.is_none_or(|m| m.name != entry.name.replace('\\', "/") || m.size != entry.size)
                {
                    failure = Some(changed());
                    return Ok(EntryDecision::Stop);
                }
                pos += 1;
                match each(pos - 1, rd) {
                    Ok(true) => Ok(EntryDecision::Continue),
                    Ok(false) => {
                        stopped = true;
                        Ok(EntryDecision::Stop)
                    }
                    Err(e) => {
                        failure = Some(e);
                        Ok(EntryDecision::Stop)
                    }
                }
            });
            if let Some(e) = failure {
                return Err(e);
            }
            if stopped {
                return Ok(());
            }
            res.map_err(|e| Error::input(path, format!("7z archive cannot be read: {e}")))?;
            if pos != with_data {
                return Err(changed());
            }
            for p in with_data..members.len() {
                if !each(p, &mut std::io::empty())? {
                    return Ok(());
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_extension() {
        assert_eq!(ArchiveKind::of("pacman.zip"), Some(ArchiveKind::Zip));
        assert_eq!(ArchiveKind::of("Game (USA).7Z"), Some(ArchiveKind::SevenZ));
        assert_eq!(ArchiveKind::of("game.gb"), None);
        assert_eq!(ArchiveKind::of("zip"), None);
    }
}
