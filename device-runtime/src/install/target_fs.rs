//! What the file system an install writes to can hold, learned before anything is written:
//! free space (the game's size, in the file system's blocks, must fit beside what is
//! there), the 4 GiB file limit of FAT32, and names FAT and exFAT cannot store. (Names that
//! differ only in case need no check here: a manifest holding two is refused on every file
//! system, see `trusted::manifest`, so a game installs alike on ext4 and on a card.)
//!
//! The forbidden characters are learned by trying, in the install's own staging folder (so
//! a FUSE-mounted card, whose kind `statfs` cannot tell, is judged as correctly as a
//! kernel-mounted one); FAT32 is recognised by its `statfs` magic or, for a FUSE driver, by
//! `/proc/self/mountinfo`.

use crate::error::{Error, Result};
use romlib_proto::FileEntry;
use std::fs;
use std::path::Path;

/// `statfs` magic of FAT (vfat, msdos).
const MSDOS_SUPER_MAGIC: i64 = 0x4d44;
/// `statfs` magic of the kernel's exFAT driver.
const EXFAT_SUPER_MAGIC: i64 = 0x2011_bab0;
/// The largest file FAT32 stores.
pub const FAT32_MAX_FILE: u64 = u32::MAX as u64;
/// Most problems listed in one error.
const MAX_LISTED: usize = 8;

/// What an install folder's file system can hold.
#[derive(Debug, Clone)]
pub struct TargetFs {
    /// Its name, for messages (`vfat`, `exfat`, `ext4`, `fuseblk`, ...).
    pub name: String,
    /// FAT32 (no file of 4 GiB or more).
    pub fat32: bool,
    /// Refuses the characters FAT and exFAT refuse (`"*:<>?|`).
    pub fat_names: bool,
    /// Bytes free for this process; `None` when the file system does not say (some FUSE
    /// drivers report no blocks at all): then a full card fails the install as it writes,
    /// which leaves nothing either.
    pub free: Option<u64>,
    /// The allocation unit: every file takes a whole number of them.
    pub block: u64,
}

/// Learns what the file system of `dir` (an empty folder of the install's staging, on
/// the same file system as the games) can hold. Leaves `dir` empty.
pub fn probe(dir: &Path) -> Result<TargetFs> {
    let (free, block, magic) = space(dir)?;
    let fstype = mount_type(dir).unwrap_or_default();
    let name = match magic {
        MSDOS_SUPER_MAGIC => "vfat".to_string(),
        EXFAT_SUPER_MAGIC => "exfat".to_string(),
        _ if !fstype.is_empty() => fstype.clone(),
        _ => format!("file system {magic:#x}"),
    };
    let fat32 = magic == MSDOS_SUPER_MAGIC
        || matches!(
            fstype.as_str(),
            "vfat" | "msdos" | "fuse.fusefat" | "fuse.fatfs"
        );
    let fat_names = {
        let odd = dir.join("romlib?probe");
        match fs::File::create(&odd) {
            Ok(_) => {
                fs::remove_file(&odd).map_err(|e| Error::io(&odd, "remove", e))?;
                false
            }
            Err(_) => true,
        }
    };
    Ok(TargetFs {
        name,
        fat32,
        fat_names,
        free,
        block: block.max(1),
    })
}

/// Bytes available, the block size and the `statfs` magic of `dir`'s file system.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn space(dir: &Path) -> Result<(Option<u64>, u64, i64)> {
    let v = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| Error::io(dir, "statvfs", std::io::Error::from(e)))?;
    let s = nix::sys::statfs::statfs(dir)
        .map_err(|e| Error::io(dir, "statfs", std::io::Error::from(e)))?;
    let block = v.fragment_size() as u64;
    #[allow(clippy::unnecessary_cast)] // the field's type differs between targets
    let magic = s.filesystem_type().0 as i64;
    let free = (v.blocks() > 0).then(|| v.blocks_available() as u64 * block);
    Ok((free, block, magic))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn space(dir: &Path) -> Result<(Option<u64>, u64, i64)> {
    let v = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| Error::io(dir, "statvfs", std::io::Error::from(e)))?;
    let block = v.fragment_size() as u64;
    let free = (v.blocks() > 0).then(|| v.blocks_available() as u64 * block);
    Ok((free, block, 0))
}

/// The type `/proc/self/mountinfo` gives the mount holding `dir` (`fuse.fusefat`, ...).
fn mount_type(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        // id parent major:minor root mount-point options [optional...] - type source ...
        let mut fields = line.split(' ');
        let point = fields.nth(4)?;
        let (_, after) = line.split_once(" - ")?;
        let fstype = after.split(' ').next()?;
        let point = point.replace("\\040", " ");
        if dir.starts_with(&point) && best.as_ref().is_none_or(|(n, _)| point.len() >= *n) {
            best = Some((point.len(), fstype.to_string()));
        }
    }
    best.map(|(_, t)| t)
}

/// Checks that the files of a game fit `fs`, the file system of `install_dir`: every
/// problem is listed in one error, before anything is written.
pub fn check_fits(fs: &TargetFs, install_dir: &Path, files: &[FileEntry]) -> Result<()> {
    let mut problems = Vec::new();
    if fs.fat32 {
        for f in files.iter().filter(|f| f.size > FAT32_MAX_FILE) {
            problems.push(format!(
                "{} is {} bytes, and FAT32 holds no file of 4 GiB or more (format the card as exFAT)",
                f.path, f.size
            ));
        }
    }
    if fs.fat_names {
        for f in files {
            if let Some(bad) = f
                .path
                .split('/')
                .find(|c| !romlib_format::path::is_fat_safe(c))
            {
                problems.push(format!(
                    "{}: the name {bad:?} cannot be stored here",
                    f.path
                ));
            }
        }
    }
    if !problems.is_empty() {
        let more = problems.len().saturating_sub(MAX_LISTED);
        problems.truncate(MAX_LISTED);
        if more > 0 {
            problems.push(format!("and {more} more"));
        }
        return Err(Error::Unfit {
            path: install_dir.to_path_buf(),
            fs: fs.name.clone(),
            problems,
        });
    }
    let need: u64 = files
        .iter()
        .map(|f| f.size.div_ceil(fs.block).max(1) * fs.block)
        .sum::<u64>()
        + fs.block; // the completion marker
    match fs.free {
        Some(free) if need > free => Err(Error::NoRoom {
            path: install_dir.to_path_buf(),
            need,
            free,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64) -> FileEntry {
        FileEntry {
            path: path.into(),
            size,
            ..Default::default()
        }
    }

    fn fat32(free: u64) -> TargetFs {
        TargetFs {
            name: "vfat".into(),
            fat32: true,
            fat_names: true,
            free: Some(free),
            block: 4096,
        }
    }

    #[test]
    fn fat32_refuses_4_gib_files_and_fat_names_listing_each() {
        let dir = Path::new("/card/Roms");
        let files = [
            file("disc.iso", FAT32_MAX_FILE + 1),
            file("track?.bin", 10),
            file("ok.bin", FAT32_MAX_FILE),
        ];
        let e = check_fits(&fat32(u64::MAX), dir, &files).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("/card/Roms: this vfat file system cannot hold the game: disc.iso is 4294967296 bytes"), "{text}");
        assert!(
            text.contains("track?.bin: the name \"track?.bin\" cannot be stored here"),
            "{text}"
        );
        assert!(!text.contains("ok.bin"), "{text}");
        assert_eq!(e.code(), "file_system");
        // exFAT takes the large file.
        let exfat = TargetFs {
            name: "exfat".into(),
            fat32: false,
            ..fat32(u64::MAX)
        };
        check_fits(&exfat, dir, &files[..1]).unwrap();
    }

    #[test]
    fn space_counts_whole_blocks() {
        let dir = Path::new("/card");
        // 3 files of 1 byte take 3 blocks, and the marker one more.
        let files = [file("a", 1), file("b", 1), file("c", 0)];
        check_fits(&fat32(4 * 4096), dir, &files).unwrap();
        let e = check_fits(&fat32(4 * 4096 - 1), dir, &files).unwrap_err();
        assert_eq!(e.code(), "no_space");
        assert_eq!(
            e.to_string(),
            "/card: the game needs 16 KiB, 15 KiB free; nothing was written"
        );
        let big = [file("x", 3 << 20)];
        let e = check_fits(&fat32(1 << 20), dir, &big).unwrap_err();
        assert!(e.to_string().contains("needs 3.0 MiB, 1.0 MiB free"), "{e}");
    }
}
