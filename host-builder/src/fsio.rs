//! File I/O every module may use: bounded whole-file reads and durable writes (temp file,
//! fsync, rename, fsync of the directory).

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The end of a temp file's name: `.<name>.tmp`.
pub const TEMP_SUFFIX: &str = ".tmp";

/// The temp name used while `path` is written: `.<name>.tmp` beside it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TEMP_SUFFIX}"))
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = temp_path(path);
    write_synced(&tmp, bytes, mode)?;
    rename_synced(&tmp, path)
}

/// Writes and fsyncs a new file (replacing any old one of that name). Whatever was under
/// that name is removed first, never written through: a library folder can be written by
/// someone else, and a symbolic link planted under a temp name must not redirect the write.
pub fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, "remove", e)),
    }
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let res = (|| {
        let mut f = opts.open(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    res.map_err(|e| {
        let _ = fs::remove_file(path);
        Error::io(path, "write", e)
    })
}

/// Renames `from` to `to` and fsyncs the directory so the rename is durable.
///
/// On Windows a rename over a file that another program holds open without sharing
/// deletion (an older reader, a virus scanner, an editor) fails with "access denied" or a
/// sharing violation until that program lets go; such a rename is retried for up to
/// [`RENAME_PATIENCE`] before the build gives up, leaving the library as it was published
/// (the new file stays beside it under its temp name and the next run redoes it). Readers
/// opened by romlib itself share deletion (Rust's default), so they never block a rename.
pub fn rename_synced(from: &Path, to: &Path) -> Result<()> {
    rename_patiently(from, to).map_err(|e| Error::io(to, "rename", e))?;
    sync_dir(parent_dir(to))
}

/// How long a rename held up by another program's open handle is retried (Windows).
pub const RENAME_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// `fs::rename`, retried while the target is held open by another program (Windows).
fn rename_patiently(from: &Path, to: &Path) -> std::io::Result<()> {
    patiently(|| fs::rename(from, to))
}

/// `op`, retried for up to [`RENAME_PATIENCE`] while it fails because another program
/// holds its file open (Windows); the error then says so.
pub fn patiently<T>(mut op: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(10);
    loop {
        match op() {
            Err(e) if is_held_open(&e) && start.elapsed() < RENAME_PATIENCE => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(500));
            }
            Err(e) if is_held_open(&e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{e} (another program keeps it open; close it and run again)"),
                ))
            }
            other => return other,
        }
    }
}

/// Whether a failed rename or open means another program holds the file open: Windows'
/// ERROR_ACCESS_DENIED (5) or ERROR_SHARING_VIOLATION (32). Never on Unix, where a rename
/// over an open file always succeeds.
fn is_held_open(e: &std::io::Error) -> bool {
    cfg!(windows) && matches!(e.raw_os_error(), Some(5 | 32))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fsyncs a directory (the device runtime's, shared).
pub fn sync_dir(dir: &Path) -> Result<()> {
    romlib_device::fsio::sync_dir(dir).map_err(Error::from)
}

/// Creates a directory and its parents.
pub fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))
}

/// Reads a whole file of at most `max` bytes.
pub fn read_limited(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, "read", e))?;
    if buf.len() as u64 > max {
        return Err(Error::input(
            path,
            format!("{what} is larger than {max} bytes"),
        ));
    }
    Ok(buf)
}
