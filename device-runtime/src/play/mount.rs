//! A library as a read-only FUSE file system: one folder per game (its title id), holding
//! the game's files with their signed sizes and modes (write bits removed), straight from
//! the packs through [`Game::read_at`], so every byte a reader gets was verified.
//!
//! Mounting uses the pure-Rust `fuser` crate (no libfuse): as root it mounts directly, else
//! through the setuid `fusermount3` / `fusermount` helper.
//!
//! What is kept in memory:
//! - at mount time every manifest is opened and its signature checked; a game that fails
//!   (untrusted key, bad signature, damaged manifest, clashing paths) is left out with a
//!   one-line warning on stderr. The tree of folders and files of the games that pass
//!   stays in memory: a few dozen bytes plus the path per file, like `list-games`.
//! - games are opened for reading lazily, on the first read of one of their files, and at
//!   most [`OPEN_GAMES`] stay open (least recently used is closed), so memory stays bounded
//!   by that many [`Game`]s (sparse seek index plus a small chunk cache each) whatever the
//!   number and size of the games.
//!
//! A read whose chunk fails verification (or whose game cannot be reopened) answers EIO and
//! prints the error on stderr; wrong bytes are never returned (a short answer would make
//! the kernel pad with zeros, so a partly verified range is an error too).
//!
//! [`serve`] returns once the file system is unmounted: on SIGINT, SIGTERM or SIGHUP it
//! unmounts itself; `fusermount3 -u` (or `umount`) from outside ends it too.

use crate::chunks::decoder::ChunkDecoder;
use crate::error::{Error, Result};
use crate::library::Library;
use crate::play::read::Game;
use crate::trusted::TrustStore;
use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEntry, ReplyOpen, Request,
};
use nix::sys::signal::{SigSet, Signal};
use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, SystemTime};

/// Games kept open for reading at once (least recently used is closed first).
pub const OPEN_GAMES: usize = 4;

/// How long the kernel may cache names and attributes: the library does not change while
/// it is mounted (a rebuild only adds packs and replaces manifests atomically).
const TTL: Duration = Duration::from_secs(60);

/// Checks that `mountpoint` exists, is a directory and is empty (mounting over files would
/// hide them, and a typo would otherwise mount over a real folder).
pub fn check_mountpoint(mountpoint: &Path) -> Result<()> {
    let refuse = |problem: &str| Error::Io {
        path: mountpoint.to_path_buf(),
        op: "mount",
        source: io::Error::other(problem.to_string()),
    };
    let meta = match std::fs::metadata(mountpoint) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotFound {
                path: mountpoint.to_path_buf(),
                what: "mount point (create the folder first)",
            })
        }
        Err(e) => return Err(Error::io(mountpoint, "mount", e)),
    };
    if !meta.is_dir() {
        return Err(refuse("mount point is not a directory"));
    }
    let mut entries =
        std::fs::read_dir(mountpoint).map_err(|e| Error::io(mountpoint, "mount", e))?;
    if entries.next().is_some() {
        return Err(refuse("mount point is not empty"));
    }
    Ok(())
}

/// What a node of the mounted tree is.
enum Kind {
    /// Child inode numbers, sorted by name.
    Dir(Vec<u64>),
    /// A file of game `game` (index into [`Tree::games`]) at manifest path `path`.
    File {
        game: usize,
        path: String,
        size: u64,
        mode: u32,
    },
}

struct Node {
    parent: u64,
    name: String,
    kind: Kind,
    mtime: SystemTime,
}

/// The folders and files of every trusted game; inode `n` is `nodes[n - 1]`.
struct Tree {
    nodes: Vec<Node>,
    /// Title id of each game.
    games: Vec<String>,
}

impl Tree {
    fn node(&self, ino: INodeNo) -> Option<&Node> {
        let i = usize::try_from(ino.0).ok()?.checked_sub(1)?;
        self.nodes.get(i)
    }

    fn children(&self, ino: u64) -> &[u64] {
        match self.node(INodeNo(ino)).map(|n| &n.kind) {
            Some(Kind::Dir(c)) => c,
            _ => &[],
        }
    }

    fn child(&self, parent: u64, name: &str) -> Option<u64> {
        let c = self.children(parent);
        c.binary_search_by(|&i| self.nodes[(i - 1) as usize].name.as_str().cmp(name))
            .ok()
            .map(|p| c[p])
    }

    /// Inode numbers `c` sorted by name (names within a folder are unique). One sort
    /// instance for every caller: each instance costs the device binary a few KiB.
    fn sorted(&self, mut c: Vec<u64>) -> Vec<u64> {
        c.sort_unstable_by(|&a, &b| {
            self.nodes[(a - 1) as usize]
                .name
                .cmp(&self.nodes[(b - 1) as usize].name)
        });
        c
    }

    fn push(&mut self, parent: u64, name: &str, kind: Kind, mtime: SystemTime) -> u64 {
        self.nodes.push(Node {
            parent,
            name: name.to_string(),
            kind,
            mtime,
        });
        let ino = self.nodes.len() as u64;
        if let Kind::Dir(c) = &mut self.nodes[(parent - 1) as usize].kind {
            c.push(ino);
        }
        ino
    }

    /// Adds a game folder and its files; on a path clash (a file where a folder is needed,
    /// or the same path twice) nothing of the game is kept.
    fn add_game(&mut self, title: &str, files: &[(String, u64, u32)], mtime: SystemTime) -> bool {
        let (keep_nodes, keep_root) = (self.nodes.len(), self.children(1).len());
        let game = self.games.len();
        let top = self.push(1, title, Kind::Dir(Vec::new()), mtime);
        for (path, size, mode) in files {
            let mut dir = top;
            let mut parts = path.split('/').peekable();
            let mut ok = true;
            while let Some(part) = parts.next() {
                // Children are sorted only once the game is complete: look up linearly.
                let existing = self
                    .children(dir)
                    .iter()
                    .copied()
                    .find(|&i| self.nodes[(i - 1) as usize].name == part);
                if parts.peek().is_none() {
                    if existing.is_some() {
                        ok = false;
                        break;
                    }
                    let kind = Kind::File {
                        game,
                        path: path.clone(),
                        size: *size,
                        mode: *mode,
                    };
                    self.push(dir, part, kind, mtime);
                } else {
                    dir = match existing {
                        Some(i) if matches!(self.nodes[(i - 1) as usize].kind, Kind::Dir(_)) => i,
                        Some(_) => {
                            ok = false;
                            break;
                        }
                        None => self.push(dir, part, Kind::Dir(Vec::new()), mtime),
                    };
                }
            }
            if !ok {
                self.nodes.truncate(keep_nodes);
                if let Kind::Dir(c) = &mut self.nodes[0].kind {
                    c.truncate(keep_root);
                }
                return false;
            }
        }
        self.games.push(title.to_string());
        // Sort this game's folders for lookups by binary search.
        let mut order = Vec::new();
        for i in keep_nodes..self.nodes.len() {
            if let Kind::Dir(c) = &self.nodes[i].kind {
                order.push((i, self.sorted(c.clone())));
            }
        }
        for (i, c) in order {
            self.nodes[i].kind = Kind::Dir(c);
        }
        true
    }
}

/// Builds the tree of every game of `lib` whose manifest verifies against `trust`; warns
/// (`prog: title: error`) about the others.
fn build_tree(lib: &Library, trust: &TrustStore, prog: &str) -> Result<Tree> {
    let now = SystemTime::now();
    let mut tree = Tree {
        nodes: vec![Node {
            parent: 1,
            name: String::new(),
            kind: Kind::Dir(Vec::new()),
            mtime: now,
        }],
        games: Vec::new(),
    };
    for title in lib.titles()? {
        let m = match lib.open_game(&title, trust) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{prog}: not mounting game {title}: {e}");
                continue;
            }
        };
        let mtime = std::fs::metadata(m.path())
            .and_then(|md| md.modified())
            .unwrap_or(now);
        let files: Vec<(String, u64, u32)> = m
            .body()
            .files
            .iter()
            .map(|f| (f.path.clone(), f.size, f.mode))
            .collect();
        if !tree.add_game(&title, &files, mtime) {
            eprintln!(
                "{prog}: not mounting game {title}: two of its paths clash (a file where a folder should be)"
            );
        }
    }
    if let Kind::Dir(c) = &tree.nodes[0].kind {
        tree.nodes[0].kind = Kind::Dir(tree.sorted(c.clone()));
    }
    Ok(tree)
}

/// Wakes [`serve`]'s waiting thread with why its wait ended (a `park`/`unpark` pair: std's
/// channels cost the 32-bit ARM binary noticeably more, and it is near its size budget).
#[derive(Clone)]
struct Waker {
    event: Arc<AtomicU8>,
    thread: Thread,
}

/// [`Waker::event`] values.
const WAITING: u8 = 0;
const SIGNAL: u8 = 1;
const UNMOUNTED: u8 = 2;

impl Waker {
    /// Records `event` unless an earlier one is recorded, and wakes the waiting thread.
    fn wake(&self, event: u8) {
        let _ = self
            .event
            .compare_exchange(WAITING, event, Ordering::SeqCst, Ordering::SeqCst);
        self.thread.unpark();
    }

    /// Waits (in the thread that made the waker) until an event is recorded.
    fn wait(&self) -> u8 {
        loop {
            match self.event.load(Ordering::SeqCst) {
                // `park` may also return spuriously: check again.
                WAITING => std::thread::park(),
                e => return e,
            }
        }
    }
}

/// The FUSE file system over one library.
struct LibraryFs<D, F> {
    lib: Library,
    trust: TrustStore,
    new_decoder: F,
    tree: Tree,
    /// Open games, most recently used last, at most [`OPEN_GAMES`].
    open: Mutex<Vec<(usize, Arc<Game<D>>)>>,
    uid: u32,
    gid: u32,
    prog: &'static str,
    ended: Waker,
}

impl<D: ChunkDecoder + Send + 'static, F: Fn() -> D + Send + Sync + 'static> LibraryFs<D, F> {
    fn attr(&self, ino: u64, node: &Node) -> FileAttr {
        let (kind, size, perm, nlink) = match &node.kind {
            Kind::Dir(_) => (FileType::Directory, 0, 0o555, 2),
            // Read-only: whatever the signed mode says, no write bits (and no set-id bits,
            // which the mount ignores anyway).
            Kind::File { size, mode, .. } => {
                let perm = if *mode == 0 { 0o444 } else { mode & 0o1555 };
                (FileType::RegularFile, *size, perm as u16, 1)
            }
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: node.mtime,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// Game `game`, opened (and its signature checked again) if it is not open yet.
    fn game(&self, game: usize) -> Result<Arc<Game<D>>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pos) = open.iter().position(|(g, _)| *g == game) {
            let entry = open.remove(pos);
            let g = entry.1.clone();
            open.push(entry);
            return Ok(g);
        }
        let title = &self.tree.games[game];
        let g = Arc::new(Game::open(
            &self.lib,
            title,
            &self.trust,
            (self.new_decoder)(),
        )?);
        if open.len() >= OPEN_GAMES {
            open.remove(0);
        }
        open.push((game, g.clone()));
        Ok(g)
    }

    fn read_file(
        &self,
        game: usize,
        path: &str,
        size: u64,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>> {
        let g = self.game(game)?;
        let id = g.find(path)?;
        // The manifest may have been replaced since mount time: the size the kernel was
        // told must still be the file's size, or the reader would see a torn file.
        if g.file(id).map(|f| f.size) != Some(size) {
            return Err(Error::manifest(
                g.manifest().path(),
                format!("file {path:?} changed since the library was mounted"),
            ));
        }
        let want = size.saturating_sub(offset).min(u64::from(len)) as usize;
        let mut buf = vec![0; want];
        let n = g.read_at(id, offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

impl<D: ChunkDecoder + Send + 'static, F: Fn() -> D + Send + Sync + 'static> Filesystem
    for LibraryFs<D, F>
{
    fn destroy(&mut self) {
        // The session loop has ended (unmounted from outside, or by us): wake `serve`.
        self.ended.wake(UNMOUNTED);
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = name.to_str().and_then(|n| self.tree.child(parent.0, n));
        match found.and_then(|ino| Some((ino, self.tree.node(INodeNo(ino))?))) {
            Some((ino, node)) => reply.entry(&TTL, &self.attr(ino, node), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.tree.node(ino) {
            Some(node) => reply.attr(&TTL, &self.attr(ino.0, node)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.tree.node(ino).map(|n| &n.kind) {
            Some(Kind::File { .. }) if flags.acc_mode() == OpenAccMode::O_RDONLY => {
                // The library does not change under the mount: pages read once stay good.
                reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE)
            }
            Some(Kind::File { .. }) => reply.error(Errno::EROFS),
            Some(Kind::Dir(_)) => reply.error(Errno::EISDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(Kind::File {
            game,
            path,
            size: file_size,
            ..
        }) = self.tree.node(ino).map(|n| &n.kind)
        else {
            reply.error(Errno::ENOENT);
            return;
        };
        match self.read_file(*game, path, *file_size, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => {
                eprintln!("{}: read failed: {e}", self.prog);
                reply.error(Errno::EIO)
            }
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(node) = self.tree.node(ino) else {
            reply.error(Errno::ENOENT);
            return;
        };
        let Kind::Dir(children) = &node.kind else {
            reply.error(Errno::ENOTDIR);
            return;
        };
        // Entry k (0 = ".", 1 = "..", then the children) is answered with offset k + 1,
        // the offset the kernel passes back to continue after it.
        let dots = [
            (ino.0, FileType::Directory, "."),
            (node.parent, FileType::Directory, ".."),
        ];
        let rest = children.iter().filter_map(|&c| {
            let n = self.tree.node(INodeNo(c))?;
            let kind = match n.kind {
                Kind::Dir(_) => FileType::Directory,
                Kind::File { .. } => FileType::RegularFile,
            };
            Some((c, kind, n.name.as_str()))
        });
        for (k, (i, kind, name)) in dots.into_iter().chain(rest).enumerate() {
            if (k as u64) < offset {
                continue;
            }
            if reply.add(INodeNo(i), k as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

/// What [`serve`] mounted.
#[derive(Debug, Clone, Copy)]
pub struct Mounted {
    /// Games shown (their signature verified).
    pub games: usize,
    /// Games left out (a warning was printed for each).
    pub skipped: usize,
}

/// Mounts `lib` read-only at `mountpoint` and serves it until it is unmounted: by SIGINT,
/// SIGTERM or SIGHUP (then it unmounts itself) or from outside (`fusermount3 -u`,
/// `umount`). `new_decoder` makes one zstd decoder per open game; `prog` prefixes the
/// warnings printed on stderr; `on_mounted` is called once the file system is up.
///
/// Must be called before the process starts any other thread: it blocks the termination
/// signals in the calling thread so that every thread started afterwards inherits that,
/// and one dedicated thread receives them with `sigwait` (no signal handler runs).
pub fn serve<D, F>(
    lib: &Library,
    mountpoint: &Path,
    trust: TrustStore,
    new_decoder: F,
    prog: &'static str,
    on_mounted: impl FnOnce(Mounted),
) -> Result<()>
where
    D: ChunkDecoder + Send + 'static,
    F: Fn() -> D + Send + Sync + 'static,
{
    check_mountpoint(mountpoint)?;
    let tree = build_tree(lib, &trust, prog)?;
    let titles = lib.titles()?.len();
    let shown = Mounted {
        games: tree.games.len(),
        skipped: titles.saturating_sub(tree.games.len()),
    };
    // fusermount canonicalises the path; use the same one for our own lazy unmount.
    let mp = mountpoint
        .canonicalize()
        .map_err(|e| Error::io(mountpoint, "mount", e))?;

    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| Error::io(&mp, "block signals", e.into()))?;
    let waker = Waker {
        event: Arc::new(AtomicU8::new(WAITING)),
        thread: std::thread::current(),
    };
    let sig_waker = waker.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            // Only the signals blocked above are waited for; each is then consumed here.
            if signals.wait().is_ok() {
                sig_waker.wake(SIGNAL);
            }
        })
        .map_err(|e| Error::io(&mp, "start signal thread", e))?;

    let fs = LibraryFs {
        lib: lib.clone(),
        trust,
        new_decoder,
        tree,
        open: Mutex::new(Vec::new()),
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        prog,
        ended: waker.clone(),
    };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("romlib".into()),
        MountOption::Subtype("romlib".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
        // The kernel then enforces the (read-only) modes itself.
        MountOption::DefaultPermissions,
    ];
    let session = fuser::spawn_mount(fs, &mp, &config).map_err(|e| Error::io(&mp, "mount", e))?;
    on_mounted(shown);
    match waker.wait() {
        SIGNAL => match session.umount_and_join() {
            Ok(()) => Ok(()),
            // Busy (a file is open): detach it lazily so that nothing stays mounted; the
            // kernel ends the connection when this process exits.
            Err(_) => lazy_unmount(&mp),
        },
        // Unmounted from outside: the session thread has finished.
        _ => session.join().map_err(|e| Error::io(&mp, "serve", e)),
    }
}

/// `fusermount3 -u -z` (or `fusermount`), which works for root and for the user who
/// mounted alike.
fn lazy_unmount(mp: &Path) -> Result<()> {
    let mut last = io::Error::other("no fusermount3 or fusermount found");
    for tool in ["fusermount3", "fusermount"] {
        match std::process::Command::new(tool)
            .args([OsStr::new("-u"), OsStr::new("-z"), mp.as_os_str()])
            .status()
        {
            Ok(s) if s.success() => return Ok(()),
            Ok(s) => last = io::Error::other(format!("{tool} -u -z exited with {s}")),
            Err(e) => last = e,
        }
    }
    Err(Error::io(mp, "unmount", last))
}
