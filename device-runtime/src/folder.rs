//! Work inside a folder that someone else can write to (an install folder on a shared card,
//! its staging and resume folders, a game's folder), through a handle to it.
//!
//! Every operation names one entry of an open [`Folder`], or walks down from it one
//! component at a time; no component is ever a symbolic link that gets followed, so
//! neither a link planted where a folder was, nor a folder swapped for a link between two
//! steps, can redirect a read, a write, a rename or a delete out of the folder. The only
//! path that is followed is the one the user gave ([`Folder::open`]). On Unix this is done
//! with `openat`-style calls on directory handles (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`);
//! elsewhere (the Windows host) each step checks the entry without following it first,
//! which leaves a race that a handle would close (said in SPEC section 7).
//!
//! Recursive removal exists only as [`Folder::remove_tree`], which stays on one file
//! system, never follows a link (it unlinks the link itself), and is crate-private: the
//! install code calls it only for entries of its own staging and resume folders whose
//! names it parsed (`install::names`).

pub use crate::error::shown;
use crate::error::{Error, Result};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};

/// What an entry of a folder is, seen without following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing by that name.
    Missing,
    /// A folder.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (never followed).
    Symlink,
    /// A device, FIFO or socket.
    Other,
}

impl Kind {
    /// "a symbolic link", "a file", ... for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Missing => "nothing",
            Kind::Dir => "a folder",
            Kind::File => "a file",
            Kind::Symlink => "a symbolic link",
            Kind::Other => "a device, pipe or socket",
        }
    }
}

/// An entry of a folder, as listed.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its name, exactly as the file system gave it (perhaps not UTF-8).
    pub name: OsString,
    /// What it is.
    pub kind: Kind,
    /// Its length in bytes (a file's size; the file system's figure for anything else).
    pub len: u64,
}

impl Entry {
    /// The name, if it is UTF-8.
    pub fn name_str(&self) -> Option<&str> {
        self.name.to_str()
    }
}

/// The deepest folder tree [`Folder::remove_tree`] and [`Folder::tree_bytes`] descend.
const MAX_DEPTH: usize = 128;

/// An open folder.
#[derive(Debug)]
pub struct Folder {
    path: PathBuf,
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

/// An exclusive lock on a folder ([`Folder::lock`]), released when dropped.
pub struct DirLock {
    /// The locked handle (closing it releases the lock), or nothing.
    #[cfg(unix)]
    _held: Option<std::os::fd::OwnedFd>,
    #[cfg(not(unix))]
    _held: Option<()>,
}

/// The error for entry `path` being `found` where romlib expects `want`: nothing changed.
pub fn unexpected(path: impl Into<PathBuf>, found: Kind, want: &'static str) -> Error {
    Error::Unexpected {
        path: path.into(),
        found: found.describe(),
        want,
    }
}

/// Each component of relative path `rel` (already checked by the caller, or checked here:
/// an empty, `.` or `..` component is refused).
fn components<'a>(rel: &'a str, at: &Path) -> Result<Vec<&'a str>> {
    let parts: Vec<&str> = rel.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(Error::UnsafePath {
            path: at.to_path_buf(),
            entry: rel.to_string(),
            problem: romlib_format::path::PathError::DotDotComponent,
        });
    }
    Ok(parts)
}

impl Folder {
    /// The folder's path, for messages and for the user.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path/name`, for messages.
    pub fn at(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// The entries under `rel` (a relative path) that must be folders, opened one by one,
    /// and the last component; `None` when a folder on the way does not exist.
    fn parent_of<'a>(&self, rel: &'a str) -> Result<Option<(Folder, &'a str)>> {
        let parts = components(rel, &self.path)?;
        let (last, dirs) = parts.split_last().expect("split gives one part at least");
        let mut here = self.try_clone()?;
        for d in dirs {
            match here.sub(d)? {
                Some(next) => here = next,
                None => return Ok(None),
            }
        }
        Ok(Some((here, last)))
    }

    /// Folder `name`, which must be there (another process may have removed it since it
    /// was listed: that is an error, not a surprise).
    pub fn sub_dir(&self, name: impl AsRef<OsStr>) -> Result<Folder> {
        let name = name.as_ref();
        self.sub_os(name)?
            .ok_or_else(|| unexpected(self.at(name), Kind::Missing, "a folder"))
    }

    /// Folder `rel` (a relative path of folders), each component opened without following
    /// a link; `None` when one does not exist.
    pub fn sub_path(&self, rel: &str) -> Result<Option<Folder>> {
        match self.parent_of(rel)? {
            Some((parent, last)) => parent.sub(last),
            None => Ok(None),
        }
    }

    /// Folder `rel` below this one, creating the folders on the way that are missing (a
    /// link or file on the way is an error).
    pub fn ensure_path(&self, rel: &str) -> Result<Folder> {
        let mut here = self.try_clone()?;
        for d in components(rel, &self.path)? {
            here = here.ensure_sub(d)?;
        }
        Ok(here)
    }

    /// Opens file `rel` (a relative path) for reading, each component without following a
    /// link; `None` when it or a folder on the way does not exist. A link or anything but
    /// a regular file there is an error.
    pub fn open_file_path(&self, rel: &str) -> Result<Option<File>> {
        match self.parent_of(rel)? {
            Some((parent, last)) => parent.open_file(last),
            None => Ok(None),
        }
    }

    /// Folder `name`, creating it if missing (a link or file there is an error).
    pub fn ensure_sub(&self, name: &str) -> Result<Folder> {
        self.ensure_sub_os(OsStr::new(name))
    }

    /// [`Folder::ensure_sub`] for a name that need not be UTF-8.
    pub fn ensure_sub_os(&self, name: &OsStr) -> Result<Folder> {
        if let Some(f) = self.sub_os(name)? {
            return Ok(f);
        }
        match self.mkdir(name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(self.at(name), "create directory", e)),
        }
        self.sub_dir(name)
    }

    /// Creates folder `name`, which must not exist, and opens it.
    pub fn create_dir(&self, name: &str) -> Result<Folder> {
        self.mkdir(name).map_err(|e| match self.kind(name) {
            Ok(k @ (Kind::Symlink | Kind::File | Kind::Other)) => {
                unexpected(self.at(name), k, "no entry")
            }
            _ => Error::io(self.at(name), "create directory", e),
        })?;
        self.sub_dir(name)
    }

    /// The total size of the files below entry `name` (a file's own size; 0 for a link or
    /// for nothing); stays on this side of links.
    pub fn tree_bytes(&self, name: &OsStr) -> u64 {
        match self.stat_os(name) {
            Ok(Some((Kind::File, len))) => len,
            Ok(Some((Kind::Dir, _))) => self
                .sub_os(name)
                .ok()
                .flatten()
                .map_or(0, |sub| sub.dir_bytes(1)),
            _ => 0,
        }
    }

    /// The total size of the files below this folder, `depth` folders down.
    fn dir_bytes(&self, depth: usize) -> u64 {
        if depth >= MAX_DEPTH {
            return 0;
        }
        self.entries()
            .unwrap_or_default()
            .iter()
            .map(|e| match e.kind {
                Kind::File => e.len,
                Kind::Dir => self
                    .sub_os(&e.name)
                    .ok()
                    .flatten()
                    .map_or(0, |sub| sub.dir_bytes(depth + 1)),
                _ => 0,
            })
            .sum()
    }

    /// What entry `name` is, without following a link.
    pub fn kind_os(&self, name: &OsStr) -> Result<Kind> {
        Ok(self.stat_os(name)?.map_or(Kind::Missing, |(k, _)| k))
    }

    /// Removes entry `name` and, if it is a folder, everything in it: links are unlinked,
    /// never followed; another file system mounted inside is an error (nothing under it is
    /// touched). Missing is fine. For the install code's own staging and resume entries
    /// only (see the module's documentation).
    pub(crate) fn remove_tree(&self, name: &OsStr) -> Result<()> {
        self.remove_tree_at(name, 0)
    }

    fn remove_tree_at(&self, name: &OsStr, depth: usize) -> Result<()> {
        match self.kind_os(name)? {
            Kind::Missing => Ok(()),
            Kind::Dir => {
                if depth >= MAX_DEPTH {
                    return Err(Error::io(
                        self.at(name),
                        "remove",
                        std::io::Error::other("folders nested too deep"),
                    ));
                }
                let sub = self.sub_dir(name)?;
                if !self.same_device(&sub)? {
                    return Err(Error::io(
                        sub.path(),
                        "remove",
                        std::io::Error::other("another file system is mounted there"),
                    ));
                }
                for e in sub.entries()? {
                    sub.remove_tree_at(&e.name, depth + 1)?;
                }
                self.rmdir_os(name)
                    .map_err(|e| Error::io(self.at(name), "remove", e))
            }
            _ => self
                .unlink_os(name)
                .map_err(|e| Error::io(self.at(name), "remove", e)),
        }
    }

    /// Removes file (or link) `name`; `false` if there was none. A folder is an error.
    pub fn remove_file(&self, name: &str) -> Result<bool> {
        match self.kind(name)? {
            Kind::Missing => Ok(false),
            Kind::Dir => Err(unexpected(self.at(name), Kind::Dir, "a file")),
            _ => {
                self.unlink_os(OsStr::new(name))
                    .map_err(|e| Error::io(self.at(name), "remove", e))?;
                Ok(true)
            }
        }
    }

    /// Removes folder `name` if it is empty; `false` if it holds something or is missing.
    pub fn remove_empty_dir(&self, name: &OsStr) -> Result<bool> {
        if self.kind_os(name)? != Kind::Dir {
            return Ok(false);
        }
        match self.rmdir_os(name) {
            Ok(()) => Ok(true),
            Err(e)
                if e.kind() == std::io::ErrorKind::DirectoryNotEmpty
                    || e.raw_os_error() == Some(39)
                    || e.raw_os_error() == Some(66)
                    || e.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::io(self.at(name), "remove", e)),
        }
    }

    /// What entry `name` is, without following a link.
    pub fn kind(&self, name: &str) -> Result<Kind> {
        self.kind_os(OsStr::new(name))
    }

    /// [`Folder::rename`] for names that need not be UTF-8.
    pub fn rename_os_to(&self, name: &OsStr, to: &Folder, to_name: &OsStr) -> Result<()> {
        self.rename_os(name, to, to_name)
            .map_err(|e| Error::io(to.at(to_name), "rename", e))
    }

    /// Renames entry `name` to `to/to_name`; the entry itself moves (a link is moved as a
    /// link). An existing empty folder or a file at the target is replaced, as rename does:
    /// use [`Folder::rename_noreplace`] where that matters.
    pub fn rename(&self, name: &str, to: &Folder, to_name: &str) -> Result<()> {
        self.rename_os(OsStr::new(name), to, OsStr::new(to_name))
            .map_err(|e| Error::io(to.at(to_name), "rename", e))
    }
}

#[cfg(unix)]
mod imp {
    use super::*;
    use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
    use std::os::fd::{AsFd, OwnedFd};

    fn io(e: rustix::io::Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(e.raw_os_error())
    }

    fn kind_of(st: &rfs::Stat) -> Kind {
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Kind::Dir,
            FileType::RegularFile => Kind::File,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }

    const DIR_FLAGS: OFlags = OFlags::RDONLY
        .union(OFlags::DIRECTORY)
        .union(OFlags::NOFOLLOW)
        .union(OFlags::CLOEXEC);

    impl Folder {
        /// Opens folder `path`, which the user named (the one path that may lead through
        /// links).
        pub fn open(path: &Path) -> Result<Folder> {
            let fd = rfs::open(
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| {
                if e == rustix::io::Errno::NOENT {
                    Error::NotFound {
                        path: path.to_path_buf(),
                        what: "folder",
                    }
                } else {
                    Error::io(path, "open directory", io(e))
                }
            })?;
            Ok(Folder {
                path: path.to_path_buf(),
                fd,
            })
        }

        /// Another handle to the same folder.
        pub fn try_clone(&self) -> Result<Folder> {
            let fd = self
                .fd
                .try_clone()
                .map_err(|e| Error::io(&self.path, "open directory", e))?;
            Ok(Folder {
                path: self.path.clone(),
                fd,
            })
        }

        /// Folder `name` (one component), opened without following a link; `None` if
        /// missing; a link or a file there is an error.
        pub fn sub(&self, name: &str) -> Result<Option<Folder>> {
            self.sub_os(OsStr::new(name))
        }

        /// [`Folder::sub`] for a name that need not be UTF-8.
        pub fn sub_os(&self, name: &OsStr) -> Result<Option<Folder>> {
            match rfs::openat(&self.fd, name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => Ok(Some(Folder {
                    path: self.path.join(name),
                    fd,
                })),
                Err(rustix::io::Errno::NOENT) => Ok(None),
                Err(e) => match self.kind_os(name)? {
                    k @ (Kind::Symlink | Kind::File | Kind::Other) => {
                        Err(unexpected(self.at(name), k, "a folder"))
                    }
                    _ => Err(Error::io(self.at(name), "open directory", io(e))),
                },
            }
        }

        /// What entry `name` is and its length, without following a link; `None` if
        /// missing.
        pub(super) fn stat_os(&self, name: &OsStr) -> Result<Option<(Kind, u64)>> {
            match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => Ok(Some((kind_of(&st), st.st_size as u64))),
                Err(rustix::io::Errno::NOENT) => Ok(None),
                Err(e) => Err(Error::io(self.at(name), "stat", io(e))),
            }
        }

        pub(super) fn same_device(&self, other: &Folder) -> Result<bool> {
            let a = rfs::fstat(&self.fd).map_err(|e| Error::io(&self.path, "stat", io(e)))?;
            let b = rfs::fstat(&other.fd).map_err(|e| Error::io(&other.path, "stat", io(e)))?;
            Ok(a.st_dev == b.st_dev)
        }

        pub(super) fn mkdir(&self, name: impl AsRef<OsStr>) -> std::io::Result<()> {
            let name = name.as_ref();
            rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o777)).map_err(io)
        }

        pub(super) fn unlink_os(&self, name: &OsStr) -> std::io::Result<()> {
            rfs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(io)
        }

        pub(super) fn rmdir_os(&self, name: &OsStr) -> std::io::Result<()> {
            rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).map_err(io)
        }

        pub(super) fn rename_os(
            &self,
            name: &OsStr,
            to: &Folder,
            to_name: &OsStr,
        ) -> std::io::Result<()> {
            rfs::renameat(&self.fd, name, &to.fd, to_name).map_err(io)
        }

        /// Opens regular file `name` for reading without following a link; `None` if
        /// missing. A link, folder, device or FIFO there is an error (a FIFO is never
        /// waited on).
        pub fn open_file(&self, name: &str) -> Result<Option<File>> {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
            let fd: OwnedFd = match rfs::openat(&self.fd, name, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => return Ok(None),
                Err(e) => {
                    return match self.kind(name)? {
                        k @ (Kind::Symlink | Kind::Dir | Kind::Other) => {
                            Err(unexpected(self.at(name), k, "a file"))
                        }
                        _ => Err(Error::io(self.at(name), "open", io(e))),
                    }
                }
            };
            let st = rfs::fstat(&fd).map_err(|e| Error::io(self.at(name), "stat", io(e)))?;
            match kind_of(&st) {
                Kind::File => {
                    // Back to blocking reads (no effect on regular files, but be plain).
                    let _ = rfs::fcntl_setfl(&fd, OFlags::empty());
                    Ok(Some(File::from(fd)))
                }
                k => Err(unexpected(self.at(name), k, "a file")),
            }
        }

        /// Takes an exclusive advisory lock on this folder itself (`flock` on a new handle
        /// of it, so no file is created for it), held until the result is dropped. `None`
        /// when another holder has it and `wait` is false; a lock that the file system
        /// cannot take is no lock ([`DirLock`] holds nothing).
        pub fn lock(&self, wait: bool) -> Result<Option<DirLock>> {
            use rustix::fs::FlockOperation as Op;
            let fd = rfs::openat(&self.fd, ".", DIR_FLAGS, Mode::empty())
                .map_err(|e| Error::io(&self.path, "open", io(e)))?;
            let op = if wait {
                Op::LockExclusive
            } else {
                Op::NonBlockingLockExclusive
            };
            loop {
                return match rfs::flock(&fd, op) {
                    Ok(()) => Ok(Some(DirLock { _held: Some(fd) })),
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
                    Err(
                        rustix::io::Errno::NOLCK
                        | rustix::io::Errno::OPNOTSUPP
                        | rustix::io::Errno::INVAL
                        | rustix::io::Errno::NOSYS,
                    ) => Ok(Some(DirLock { _held: None })),
                    Err(e) => Err(Error::io(&self.path, "lock", io(e))),
                };
            }
        }

        /// Creates file `name`, which must not exist (nor be a link), with permission bits
        /// `mode`, for writing.
        pub fn create_file(&self, name: &str, mode: u32) -> Result<File> {
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            rfs::openat(&self.fd, name, flags, Mode::from_raw_mode(mode as _))
                .map(File::from)
                .map_err(|e| match self.kind(name) {
                    Ok(k @ (Kind::Symlink | Kind::Dir | Kind::Other)) => {
                        unexpected(self.at(name), k, "no entry")
                    }
                    _ => Error::io(self.at(name), "create", io(e)),
                })
        }

        /// Creates file `name`, which must not exist (nor be a link), for reading and
        /// writing, readable by the owner only.
        pub fn create_scratch(&self, name: &str) -> Result<File> {
            let flags =
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            rfs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600))
                .map(File::from)
                .map_err(|e| Error::io(self.at(name), "create", io(e)))
        }

        /// Writes `bytes` as the whole content of file `name` (created if missing, never
        /// through a link) and fsyncs it.
        pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd =
                rfs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o644)).map_err(|e| {
                    match self.kind(name) {
                        Ok(k @ (Kind::Symlink | Kind::Dir | Kind::Other)) => {
                            unexpected(self.at(name), k, "a file")
                        }
                        _ => Error::io(self.at(name), "create", io(e)),
                    }
                })?;
            let st = rfs::fstat(&fd).map_err(|e| Error::io(self.at(name), "stat", io(e)))?;
            if kind_of(&st) != Kind::File {
                return Err(unexpected(self.at(name), kind_of(&st), "a file"));
            }
            let mut f = File::from(fd);
            use std::io::Write;
            f.set_len(0)
                .and_then(|()| f.write_all(bytes))
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io(self.at(name), "write", e))
        }

        /// Every entry (`.` and `..` aside), sorted by name; kinds seen without following.
        pub fn entries(&self) -> Result<Vec<Entry>> {
            let dir = rfs::Dir::read_from(&self.fd)
                .map_err(|e| Error::io(&self.path, "read directory", io(e)))?;
            let mut out = Vec::new();
            for e in dir {
                let e = e.map_err(|e| Error::io(&self.path, "read directory", io(e)))?;
                let name = e.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let name: OsString =
                    <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name).to_owned();
                if let Some((kind, len)) = self.stat_os(&name)? {
                    out.push(Entry { name, kind, len });
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        }

        /// Renames `name` to `to/to_name` only if nothing is there (where the system
        /// cannot say so atomically, checked just before).
        pub fn rename_noreplace(&self, name: &str, to: &Folder, to_name: &str) -> Result<()> {
            #[cfg(target_os = "linux")]
            {
                use rustix::fs::{renameat_with, RenameFlags};
                match renameat_with(&self.fd, name, &to.fd, to_name, RenameFlags::NOREPLACE) {
                    Ok(()) => return Ok(()),
                    Err(rustix::io::Errno::EXIST) => {
                        return Err(unexpected(to.at(to_name), to.kind(to_name)?, "no entry"))
                    }
                    // EINVAL/ENOSYS: the file system cannot; check, then rename.
                    Err(_) => {}
                }
            }
            match to.kind(to_name)? {
                Kind::Missing => self.rename(name, to, to_name),
                k => Err(unexpected(to.at(to_name), k, "no entry")),
            }
        }

        /// Swaps folders `name` and `to/to_name` in one atomic step (Linux `renameat2`
        /// with `RENAME_EXCHANGE`), so a crash shows one or the other at each name, never
        /// neither. `Ok(false)` when the system or the file system cannot (not Linux; FAT
        /// before Linux 6.0, exFAT, most FUSE file systems): the caller renames in two
        /// steps.
        pub fn exchange(&self, name: &str, to: &Folder, to_name: &str) -> Result<bool> {
            #[cfg(target_os = "linux")]
            {
                use rustix::fs::{renameat_with, RenameFlags};
                match renameat_with(&self.fd, name, &to.fd, to_name, RenameFlags::EXCHANGE) {
                    Ok(()) => Ok(true),
                    // EINVAL, ENOSYS or EOPNOTSUPP as a rule; a FUSE file system may
                    // answer anything (one that ignores the flag fails as a plain rename
                    // onto a non-empty folder): with both folders still in place, the
                    // two-step rename is safe.
                    Err(_) if self.kind(name)? == Kind::Dir && to.kind(to_name)? == Kind::Dir => {
                        Ok(false)
                    }
                    Err(e) => Err(Error::io(to.at(to_name), "exchange", io(e))),
                }
            }
            #[cfg(not(target_os = "linux"))]
            {
                let _ = (name, to, to_name);
                Ok(false)
            }
        }

        /// Fsyncs the folder, so creations, renames and removals in it are durable.
        pub fn sync(&self) -> Result<()> {
            rfs::fsync(&self.fd).map_err(|e| Error::io(&self.path, "fsync directory", io(e)))
        }

        /// A handle to the folder for `fstatfs`-style queries.
        pub fn handle(&self) -> std::os::fd::BorrowedFd<'_> {
            self.fd.as_fd()
        }
    }
}

#[cfg(not(unix))]
mod imp {
    //! Without directory handles: every step checks the entry without following it, then
    //! acts on its path. A writer racing between the two can still win; said in SPEC.
    use super::*;
    use std::fs;

    fn kind_of(m: &fs::Metadata) -> Kind {
        let t = m.file_type();
        if t.is_symlink() {
            Kind::Symlink
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else {
            Kind::Other
        }
    }

    impl Folder {
        /// Opens folder `path`, which the user named (the one path that may lead through
        /// links).
        pub fn open(path: &Path) -> Result<Folder> {
            match fs::metadata(path) {
                Ok(m) if m.is_dir() => Ok(Folder {
                    path: path.to_path_buf(),
                }),
                Ok(_) => Err(unexpected(path, Kind::File, "a folder")),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                    path: path.to_path_buf(),
                    what: "folder",
                }),
                Err(e) => Err(Error::io(path, "open directory", e)),
            }
        }

        /// Another handle to the same folder.
        pub fn try_clone(&self) -> Result<Folder> {
            Ok(Folder {
                path: self.path.clone(),
            })
        }

        /// Folder `name` (one component), not through a link; `None` if missing; a link or
        /// a file there is an error.
        pub fn sub(&self, name: &str) -> Result<Option<Folder>> {
            self.sub_os(OsStr::new(name))
        }

        /// [`Folder::sub`] for a name that need not be UTF-8.
        pub fn sub_os(&self, name: &OsStr) -> Result<Option<Folder>> {
            match self.kind_os(name)? {
                Kind::Missing => Ok(None),
                Kind::Dir => Ok(Some(Folder {
                    path: self.path.join(name),
                })),
                k => Err(unexpected(self.at(name), k, "a folder")),
            }
        }

        /// What entry `name` is and its length, without following a link; `None` if
        /// missing.
        pub(super) fn stat_os(&self, name: &OsStr) -> Result<Option<(Kind, u64)>> {
            match fs::symlink_metadata(self.path.join(name)) {
                Ok(m) => Ok(Some((kind_of(&m), m.len()))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(self.at(name), "stat", e)),
            }
        }

        pub(super) fn same_device(&self, _other: &Folder) -> Result<bool> {
            Ok(true)
        }

        pub(super) fn mkdir(&self, name: impl AsRef<OsStr>) -> std::io::Result<()> {
            fs::create_dir(self.path.join(name.as_ref()))
        }

        pub(super) fn unlink_os(&self, name: &OsStr) -> std::io::Result<()> {
            let p = self.path.join(name);
            // A link to a folder is removed as a folder on Windows.
            fs::remove_file(&p).or_else(|e| {
                if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                    fs::remove_dir(&p)
                } else {
                    Err(e)
                }
            })
        }

        pub(super) fn rmdir_os(&self, name: &OsStr) -> std::io::Result<()> {
            fs::remove_dir(self.path.join(name))
        }

        pub(super) fn rename_os(
            &self,
            name: &OsStr,
            to: &Folder,
            to_name: &OsStr,
        ) -> std::io::Result<()> {
            fs::rename(self.path.join(name), to.path.join(to_name))
        }

        /// Opens regular file `name` for reading, not through a link; `None` if missing.
        pub fn open_file(&self, name: &str) -> Result<Option<File>> {
            match self.kind(name)? {
                Kind::Missing => Ok(None),
                Kind::File => File::open(self.at(name))
                    .map(Some)
                    .map_err(|e| Error::io(self.at(name), "open", e)),
                k => Err(unexpected(self.at(name), k, "a file")),
            }
        }

        /// Without directory handles there is no lock to take: every call holds nothing
        /// (on Windows only the host's `romlib install` runs, one at a time by hand).
        pub fn lock(&self, wait: bool) -> Result<Option<DirLock>> {
            let _ = wait;
            Ok(Some(DirLock { _held: None }))
        }

        /// Creates file `name`, which must not exist, for writing (`mode` is Unix only).
        pub fn create_file(&self, name: &str, mode: u32) -> Result<File> {
            let _ = mode;
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.at(name))
                .map_err(|e| match self.kind(name) {
                    Ok(k @ (Kind::Symlink | Kind::Dir | Kind::Other)) => {
                        unexpected(self.at(name), k, "no entry")
                    }
                    _ => Error::io(self.at(name), "create", e),
                })
        }

        /// Creates file `name`, which must not exist, for reading and writing.
        pub fn create_scratch(&self, name: &str) -> Result<File> {
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(self.at(name))
                .map_err(|e| Error::io(self.at(name), "create", e))
        }

        /// Writes `bytes` as the whole content of file `name` (created if missing, not
        /// through a link) and syncs it.
        pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
            match self.kind(name)? {
                Kind::Missing | Kind::File => {}
                k => return Err(unexpected(self.at(name), k, "a file")),
            }
            use std::io::Write;
            let mut f =
                File::create(self.at(name)).map_err(|e| Error::io(self.at(name), "create", e))?;
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io(self.at(name), "write", e))
        }

        /// Every entry, sorted by name; kinds seen without following.
        pub fn entries(&self) -> Result<Vec<Entry>> {
            let mut out = Vec::new();
            for e in
                fs::read_dir(&self.path).map_err(|e| Error::io(&self.path, "read directory", e))?
            {
                let e = e.map_err(|e| Error::io(&self.path, "read directory", e))?;
                let name = e.file_name();
                if let Some((kind, len)) = self.stat_os(&name)? {
                    out.push(Entry { name, kind, len });
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        }

        /// Renames `name` to `to/to_name` only if nothing is there (checked just before).
        pub fn rename_noreplace(&self, name: &str, to: &Folder, to_name: &str) -> Result<()> {
            match to.kind(to_name)? {
                Kind::Missing => self.rename(name, to, to_name),
                k => Err(unexpected(to.at(to_name), k, "no entry")),
            }
        }

        /// No atomic swap here: always `Ok(false)`.
        pub fn exchange(&self, _name: &str, _to: &Folder, _to_name: &str) -> Result<bool> {
            Ok(false)
        }

        /// Folders cannot be fsynced here: a no-op.
        pub fn sync(&self) -> Result<()> {
            Ok(())
        }
    }
}
