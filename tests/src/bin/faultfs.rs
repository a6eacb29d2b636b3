//! A read-only passthrough FUSE file system that injects read errors, for the fault tests
//! (`tests/tests/faults.rs`): what an SD card with a bad sector or a failing disk gives a
//! reader, on demand and at a chosen place.
//!
//! `faultfs SRC MNT [--eio PATTERN[@OFFSET]]...` shows the folder SRC at MNT, read-only
//! (lookup, getattr, readdir, readlink, open, read). A read of a file whose path relative to
//! SRC contains PATTERN fails with EIO when it reaches byte OFFSET (default 0) or beyond;
//! `PATTERN@START..END` makes only bytes START to END (exclusive) unreadable, as a bad
//! sector does.
//! Every file is opened with direct I/O, so the kernel neither caches pages nor reads ahead
//! and each `read` reaches this process as asked: a read that starts before OFFSET and runs
//! past it returns the bytes before OFFSET (a short read), the next one fails, as with a bad
//! sector. Each injected error is logged on stderr as one line
//! `faultfs: EIO <path> at <offset>+<len>`, so a test can check that its fault was met.
//!
//! It runs until SIGINT, SIGTERM or SIGHUP (then it unmounts itself, lazily if a file is
//! still open) or until it is unmounted from outside (`fusermount3 -u MNT`), and exits 0.
//! Exit 2 on bad arguments, 1 when it cannot mount.

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, Request,
};
use nix::sys::signal::{SigSet, Signal};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

/// How long the kernel may cache names and attributes. The tests do not change SRC while
/// it is mounted; a short time keeps a surprise short anyway.
const TTL: Duration = Duration::from_secs(1);

/// One `--eio PATTERN[@START[..END]]`: bytes `START..END` of the files whose relative path
/// contains PATTERN are unreadable.
struct Fault {
    pattern: String,
    start: u64,
    end: u64,
}

impl Fault {
    fn parse(s: &str) -> Option<Fault> {
        let (pattern, start, end) = match s.rsplit_once('@') {
            Some((p, range)) => match range.split_once("..") {
                Some((a, b)) => (p, a.parse().ok()?, b.parse().ok()?),
                None => (p, range.parse().ok()?, u64::MAX),
            },
            None => (s, 0, u64::MAX),
        };
        (!pattern.is_empty() && start < end).then(|| Fault {
            pattern: pattern.to_string(),
            start,
            end,
        })
    }
}

/// Inode numbers handed out so far: inode `n` is `paths[n - 1]` (relative to SRC; the root
/// is the empty path). Numbers are never reused while mounted.
#[derive(Default)]
struct Inodes {
    paths: Vec<PathBuf>,
    by_path: HashMap<PathBuf, u64>,
}

impl Inodes {
    fn get(&mut self, rel: &Path) -> u64 {
        if let Some(&ino) = self.by_path.get(rel) {
            return ino;
        }
        self.paths.push(rel.to_path_buf());
        let ino = self.paths.len() as u64;
        self.by_path.insert(rel.to_path_buf(), ino);
        ino
    }
}

/// Why the main thread's wait ended.
enum Ended {
    Signal,
    Unmounted,
}

struct FaultFs {
    src: PathBuf,
    faults: Vec<Fault>,
    inodes: Mutex<Inodes>,
    /// Open files by handle, with their path relative to SRC.
    files: Mutex<HashMap<u64, (PathBuf, File)>>,
    next_fh: AtomicU64,
    ended: Sender<Ended>,
}

impl FaultFs {
    /// The path relative to SRC of inode `ino`.
    fn rel(&self, ino: INodeNo) -> Option<PathBuf> {
        let inodes = self.inodes.lock().unwrap_or_else(|p| p.into_inner());
        let i = usize::try_from(ino.0).ok()?.checked_sub(1)?;
        inodes.paths.get(i).cloned()
    }

    fn attr(ino: u64, md: &Metadata) -> FileAttr {
        let kind = if md.is_dir() {
            FileType::Directory
        } else if md.file_type().is_symlink() {
            FileType::Symlink
        } else {
            FileType::RegularFile
        };
        let time = |secs: i64, nsecs: i64| {
            let d = Duration::new(secs.max(0) as u64, nsecs.clamp(0, 999_999_999) as u32);
            UNIX_EPOCH + d
        };
        FileAttr {
            ino: INodeNo(ino),
            size: md.len(),
            blocks: md.blocks(),
            atime: time(md.atime(), md.atime_nsec()),
            mtime: time(md.mtime(), md.mtime_nsec()),
            ctime: time(md.ctime(), md.ctime_nsec()),
            crtime: time(md.mtime(), md.mtime_nsec()),
            kind,
            perm: (md.mode() & 0o7777) as u16,
            nlink: md.nlink() as u32,
            uid: md.uid(),
            gid: md.gid(),
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// Inode number and attributes of `rel`, as SRC has it now.
    fn stat(&self, rel: &Path) -> Result<(u64, FileAttr), Errno> {
        let md = std::fs::symlink_metadata(self.src.join(rel)).map_err(Errno::from)?;
        let ino = self
            .inodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(rel);
        Ok((ino, Self::attr(ino, &md)))
    }

    /// Where a read of `len` bytes at `offset` of `rel` must stop: `None` for the whole
    /// read, `Some(n)` when only the first `n` bytes may be given (the fault is there).
    fn fault_at(&self, rel: &Path, offset: u64, len: u64) -> Option<u64> {
        let rel = rel.to_string_lossy();
        self.faults
            .iter()
            .filter(|f| rel.contains(&f.pattern) && offset + len > f.start && offset < f.end)
            .map(|f| f.start.saturating_sub(offset))
            .min()
    }
}

impl Filesystem for FaultFs {
    fn destroy(&mut self) {
        let _ = self.ended.send(Ended::Unmounted);
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(dir) = self.rel(parent) else {
            return reply.error(Errno::ENOENT);
        };
        match self.stat(&dir.join(name)) {
            Ok((_, attr)) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let Some(rel) = self.rel(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match self.stat(&rel) {
            Ok((_, attr)) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let Some(rel) = self.rel(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match std::fs::read_link(self.src.join(rel)) {
            Ok(target) => reply.data(target.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(e.into()),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let Some(rel) = self.rel(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match File::open(self.src.join(&rel)) {
            Ok(file) => {
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                self.files
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(fh, (rel, file));
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO)
            }
            Err(e) => reply.error(e.into()),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let (rel, file) = {
            let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            let Some((rel, file)) = files.get(&fh.0) else {
                return reply.error(Errno::EBADF);
            };
            match file.try_clone() {
                Ok(f) => (rel.clone(), f),
                Err(e) => return reply.error(e.into()),
            }
        };
        let mut want = u64::from(size);
        if let Some(n) = self.fault_at(&rel, offset, want) {
            if n == 0 {
                eprintln!("faultfs: EIO {} at {offset}+{size}", rel.display());
                return reply.error(Errno::EIO);
            }
            want = n;
        }
        let mut buf = vec![0u8; want as usize];
        let mut got = 0;
        while got < buf.len() {
            match file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return reply.error(e.into()),
            }
        }
        reply.data(&buf[..got]);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh.0);
        reply.ok();
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(rel) = self.rel(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let mut names: Vec<_> = match std::fs::read_dir(self.src.join(&rel)) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect(),
            Err(e) => return reply.error(e.into()),
        };
        names.sort();
        // Entry k (0 = ".", 1 = "..", then the children) is answered with offset k + 1,
        // the offset the kernel passes back to continue after it.
        let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut entries = vec![
            (ino.0, FileType::Directory, OsStr::new(".").to_os_string()),
            (
                self.stat(&parent).map(|(i, _)| i).unwrap_or(1),
                FileType::Directory,
                OsStr::new("..").to_os_string(),
            ),
        ];
        for name in names {
            if let Ok((i, attr)) = self.stat(&rel.join(&name)) {
                entries.push((i, attr.kind, name));
            }
        }
        for (k, (i, kind, name)) in entries.into_iter().enumerate() {
            if (k as u64) < offset {
                continue;
            }
            if reply.add(INodeNo(i), k as u64 + 1, kind, &name) {
                break;
            }
        }
        reply.ok();
    }
}

fn usage() -> ! {
    eprintln!("usage: faultfs SRC MNT [--eio PATTERN[@START[..END]]]...");
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(src), Some(mnt)) = (args.next(), args.next()) else {
        usage()
    };
    let mut faults = Vec::new();
    while let Some(a) = args.next() {
        let spec = args.next().and_then(|s| s.into_string().ok());
        match (a.to_str(), spec.as_deref().and_then(Fault::parse)) {
            (Some("--eio"), Some(f)) => faults.push(f),
            _ => usage(),
        }
    }
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("faultfs: {what}: {e}");
        std::process::exit(1);
    };
    let src = PathBuf::from(src)
        .canonicalize()
        .unwrap_or_else(|e| fail("SRC", &e));
    let mnt = PathBuf::from(mnt)
        .canonicalize()
        .unwrap_or_else(|e| fail("MNT", &e));

    // The termination signals are blocked here, before any thread starts, so every thread
    // inherits that and only the waiting thread below receives them (with sigwait).
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .unwrap_or_else(|e| fail("block signals", &e));
    let (tx, rx) = channel();
    let sig_tx = tx.clone();
    std::thread::spawn(move || {
        if signals.wait().is_ok() {
            let _ = sig_tx.send(Ended::Signal);
        }
    });

    let mut inodes = Inodes::default();
    inodes.get(Path::new(""));
    let fs = FaultFs {
        src,
        faults,
        inodes: Mutex::new(inodes),
        files: Mutex::new(HashMap::new()),
        next_fh: AtomicU64::new(1),
        ended: tx,
    };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("faultfs".into()),
        MountOption::Subtype("faultfs".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    // Several threads, so that a nested FUSE mount (romlib-device mount reading its library
    // from here) and the test reading both make progress.
    config.n_threads = Some(4);
    let session = fuser::spawn_mount(fs, &mnt, &config).unwrap_or_else(|e| fail("mount", &e));
    match rx.recv() {
        Ok(Ended::Signal) => {
            if session.umount_and_join().is_err() {
                // Busy (a file is still open): detach lazily so that nothing stays mounted.
                let _ = std::process::Command::new("fusermount3")
                    .args([OsStr::new("-u"), OsStr::new("-z"), mnt.as_os_str()])
                    .status();
            }
        }
        Ok(Ended::Unmounted) | Err(_) => {
            let _ = session.join();
        }
    }
}
