//! File-system primitives every other module may use: positional reads, opening with an
//! error that names what was missing, directory fsync. Nothing here knows the format.

use crate::error::{Error, Result};
use std::fs::File;
use std::path::Path;

/// Reads exactly `buf.len()` bytes at offset `at` without moving the file's cursor.
#[cfg(unix)]
pub fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

/// Reads exactly `buf.len()` bytes at offset `at`.
#[cfg(not(unix))]
pub fn read_exact_at(mut file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(buf)
}

/// A reader of `file` from an offset of its own: every read names its position, so readers
/// of clones of one file (which share the file's offset) never disturb each other.
#[derive(Debug)]
pub struct AtReader {
    file: File,
    pos: u64,
}

impl AtReader {
    /// Reads `file` from offset `pos` on.
    pub fn new(file: File, pos: u64) -> Self {
        AtReader { file, pos }
    }
}

impl std::io::Read for AtReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(&self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Opens regular file `path` for reading; a missing file is [`Error::NotFound`] naming it
/// as `what`. A library folder can be written by someone else: a FIFO, socket or device
/// planted under a library file's name is refused, never read (opening a FIFO would wait
/// for a writer forever), and a folder there is an error too.
pub fn open_existing(path: &Path, what: &'static str) -> Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound {
                path: path.to_path_buf(),
                what,
            }
        } else {
            Error::io(path, "open", e)
        }
    })?;
    let meta = file.metadata().map_err(|e| Error::io(path, "stat", e))?;
    if !meta.is_file() {
        return Err(Error::io(
            path,
            "open",
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not a regular file: a library's {what} is never read from anything else"),
            ),
        ));
    }
    // Back to blocking reads (no effect on a regular file, but be plain).
    #[cfg(unix)]
    rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::empty())
        .map_err(|e| Error::io(path, "open", e.into()))?;
    Ok(file)
}

/// The length of the open file `file` (`path` names it in errors).
pub fn file_len(file: &File, path: &Path) -> Result<u64> {
    Ok(file
        .metadata()
        .map_err(|e| Error::io(path, "stat", e))?
        .len())
}

/// Fsyncs a directory so renames and creations in it are durable (a no-op where
/// directories cannot be opened).
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| Error::io(dir, "open directory", e))?;
        d.sync_all()
            .map_err(|e| Error::io(dir, "fsync directory", e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
