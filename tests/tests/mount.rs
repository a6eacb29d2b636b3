//! End-to-end tests of `mount` on both binaries: the library as a read-only FUSE file
//! system, run as a child process and unmounted by `fusermount -u` or a signal.
//!
//! These need /dev/fuse and the right to mount (CI runs as root): without them they fail,
//! unless ROMLIB_NO_MOUNT=1 is set, which skips the parts that mount.

use romlib_device::ManifestFile;
use romlib_format::index::ChunkEntry;
use romlib_format::pack::RECORD_HEADER_LEN;
use romlib_tests::*;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TITLE: &str = "game";
const OTHER: &str = "other";

struct Fixture {
    w: Workspace,
    /// (game, path, bytes)
    files: Vec<(&'static str, &'static str, Vec<u8>)>,
}

impl Fixture {
    fn new() -> Self {
        let w = Workspace::new();
        let mut r = Rng::new(11);
        let files = vec![
            (TITLE, "disc.iso", r.bytes(3 << 20)),
            (TITLE, "data/deep/level.txt", r.text(300_000)),
            (TITLE, "data/empty.cfg", Vec::new()),
            (TITLE, "tiny.bin", r.bytes(100)),
            (OTHER, "other.rom", r.bytes(200_000)),
        ];
        for (g, p, d) in &files {
            write(&w.p(&format!("in/{g}")), p, d);
        }
        ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
        std::fs::create_dir(w.p("mnt")).unwrap();
        Fixture { w, files }
    }

    fn data(&self, game: &str, path: &str) -> &[u8] {
        &self
            .files
            .iter()
            .find(|(g, p, _)| *g == game && *p == path)
            .unwrap()
            .2
    }

    /// `romlib-device mount` trusting the workspace key, as a child process.
    fn device_mount(&self) -> Mount {
        let (lib, key, mnt) = (self.w.s("lib"), self.w.s("k.pub"), self.w.s("mnt"));
        Mount::spawn(
            "romlib-device",
            &["mount", "-r", &lib, &mnt, "--trusted-key", &key],
            &self.w.p("mnt"),
        )
    }

    /// `romlib mount`, trusting the library's own keys.
    fn host_mount(&self) -> Mount {
        let (lib, mnt) = (self.w.s("lib"), self.w.s("mnt"));
        Mount::spawn("romlib", &["mount", "-r", &lib, &mnt], &self.w.p("mnt"))
    }

    /// Offset in the file, length and pack place of every chunk of `game`'s `path`.
    fn chunks(&self, game: &str, path: &str) -> Vec<(u64, u64, ChunkEntry)> {
        let m = ManifestFile::open(&self.w.p(&format!("lib/games/{game}.manifest"))).unwrap();
        let mut table = m.unverified_chunks().unwrap();
        let ix = romlib_host::library::runs::open_library(&self.w.p("lib")).unwrap();
        let mut out = Vec::new();
        for f in &m.unverified_body().files {
            let mut offset = 0;
            for _ in 0..f.chunk_count {
                let c = table.next_chunk().unwrap().unwrap();
                if f.path == path {
                    out.push((offset, c.len as u64, ix.get(&c.hash).unwrap().unwrap()));
                }
                offset += c.len as u64;
            }
        }
        out
    }
}

/// Whether mounting is to be skipped (ROMLIB_NO_MOUNT=1); otherwise FUSE must be there.
fn no_mount() -> bool {
    if std::env::var_os("ROMLIB_NO_MOUNT").is_some() {
        eprintln!("skipped: ROMLIB_NO_MOUNT is set");
        return true;
    }
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: FUSE mount tests cannot run (set ROMLIB_NO_MOUNT=1 to skip)"
    );
    false
}

/// `fusermount3` where Debian's fuse3 is installed, else `fusermount`.
fn fusermount() -> &'static str {
    let has = |t: &str| {
        Command::new(t)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if has("fusermount3") {
        "fusermount3"
    } else {
        "fusermount"
    }
}

/// Whether `dir` is a mount point now, by /proc/mounts.
fn is_mounted(dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let want = dir.to_string_lossy();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(want.as_ref()))
}

/// A running `mount` child; on drop (a failed test) it is unmounted and killed.
struct Mount {
    child: Option<Child>,
    dir: PathBuf,
}

impl Mount {
    /// Starts binary `bin` with `args` and waits until `dir` is mounted.
    fn spawn(bin_name: &str, args: &[&str], dir: &Path) -> Self {
        let child = Command::new(bin(bin_name))
            .env("ROMLIB_CONFIG_DIR", config_dir())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut m = Mount {
            child: Some(child),
            dir: dir.to_path_buf(),
        };
        let start = Instant::now();
        while !is_mounted(dir) {
            if let Some(st) = m.child_mut().try_wait().unwrap() {
                let (_, err) = m.output();
                panic!("{bin_name} mount exited with {st} before mounting: {err}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{bin_name} mount: not mounted after 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().unwrap()
    }

    fn pid(&self) -> String {
        self.child.as_ref().unwrap().id().to_string()
    }

    /// Standard output and error of an exited child.
    fn output(&mut self) -> (String, String) {
        let c = self.child_mut();
        let (mut out, mut err) = (String::new(), String::new());
        if let Some(s) = c.stdout.as_mut() {
            s.read_to_string(&mut out).unwrap();
        }
        if let Some(s) = c.stderr.as_mut() {
            s.read_to_string(&mut err).unwrap();
        }
        (out, err)
    }

    /// Waits (at most 30 s) for the child to exit; asserts exit 0 and nothing left mounted,
    /// and returns its stderr.
    fn wait_exit_0(mut self) -> String {
        let start = Instant::now();
        let st = loop {
            if let Some(st) = self.child_mut().try_wait().unwrap() {
                break st;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "mount did not exit 30 s after the unmount"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let (_, err) = self.output();
        assert_eq!(st.code(), Some(0), "mount exit status; stderr: {err}");
        assert!(!is_mounted(&self.dir), "still mounted after exit");
        self.child = None;
        err
    }

    /// `fusermount -u` from outside.
    fn fusermount_u(&self) {
        let st = Command::new(fusermount())
            .arg("-u")
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(st.success(), "{} -u failed", fusermount());
    }

    /// Sends signal `sig` (`INT`, `TERM`) with kill(1).
    fn kill(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new(fusermount())
                .arg("-u")
                .arg("-z")
                .arg(&self.dir)
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
        if is_mounted(&self.dir) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Every file below `root` (relative path, size, permission bits), sorted.
fn listing(root: &Path) -> Vec<(String, u64, u32)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, u64, u32)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::metadata(&p).unwrap();
            let perm = md.permissions().mode() & 0o7777;
            if md.is_dir() {
                assert_eq!(perm & 0o222, 0, "{} is writable", p.display());
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.push((rel, md.len(), perm));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn device_mount_shows_every_game_byte_identical_and_fusermount_unmounts() {
    if no_mount() {
        return;
    }
    let f = Fixture::new();
    let m = f.device_mount();
    let mnt = f.w.p("mnt");

    let mut games: Vec<String> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    games.sort();
    assert_eq!(games, [TITLE, OTHER]);

    // Names, sizes, read-only modes.
    let got = listing(&mnt);
    let mut want: Vec<(String, u64)> = f
        .files
        .iter()
        .map(|(g, p, d)| (format!("{g}/{p}"), d.len() as u64))
        .collect();
    want.sort();
    assert_eq!(
        got.iter()
            .map(|(p, s, _)| (p.clone(), *s))
            .collect::<Vec<_>>(),
        want
    );
    for (p, _, perm) in &got {
        assert_eq!(perm & 0o222, 0, "{p} is writable: {perm:o}");
        assert_ne!(perm & 0o444, 0, "{p} is unreadable: {perm:o}");
    }
    assert!(mnt.join(TITLE).join("data/deep").is_dir());

    // Whole files.
    for (g, p, d) in &f.files {
        let bytes = std::fs::read(mnt.join(g).join(p)).unwrap();
        assert!(&bytes == d, "{g}/{p} differs");
    }

    // Random reads with seek, across chunk boundaries and to the end.
    let data = f.data(TITLE, "disc.iso");
    let mut file = std::fs::File::open(mnt.join(TITLE).join("disc.iso")).unwrap();
    let mut r = Rng::new(5);
    for i in 0..200 {
        let off = r.next_u64() % data.len() as u64;
        let len = [1, 512, 2048, 4096, 70_000][i % 5];
        let end = (off as usize + len).min(data.len());
        let mut buf = vec![0u8; end - off as usize];
        file.seek(SeekFrom::Start(off)).unwrap();
        file.read_exact(&mut buf).unwrap();
        assert!(buf == data[off as usize..end], "read at {off}+{len}");
    }
    // At and past the end: nothing.
    file.seek(SeekFrom::Start(data.len() as u64 + 10)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(file.read(&mut buf).unwrap(), 0);
    drop(file);

    // Read-only: no writing, no creating.
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(mnt.join(TITLE).join("tiny.bin"))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(30), "EROFS expected: {e}");
    assert!(std::fs::write(mnt.join(TITLE).join("new.bin"), b"x").is_err());
    assert!(std::fs::File::open(mnt.join(TITLE).join("nope")).is_err());

    m.fusermount_u();
    m.wait_exit_0();
}

#[test]
fn host_mount_reads_the_same_and_sigint_unmounts() {
    if no_mount() {
        return;
    }
    let f = Fixture::new();
    let m = f.host_mount();
    let mnt = f.w.p("mnt");
    for (g, p, d) in &f.files {
        assert!(&std::fs::read(mnt.join(g).join(p)).unwrap() == d, "{g}/{p}");
    }
    // A file held open does not stop the unmount.
    let held = std::fs::File::open(mnt.join(TITLE).join("tiny.bin")).unwrap();
    m.kill("INT");
    let err = m.wait_exit_0();
    assert!(err.contains("mounted 2 games"), "{err}");
    drop(held);
    assert!(!is_mounted(&mnt));
}

#[test]
fn a_corrupted_chunk_fails_its_reads_with_eio_and_sigterm_unmounts() {
    if no_mount() {
        return;
    }
    let f = Fixture::new();
    let chunks = f.chunks(TITLE, "disc.iso");
    let (off, len, e) = chunks[chunks.len() / 2];
    let pack = romlib_device::Library::new(f.w.p("lib")).pack_path(e.pack_id);
    flip(&pack, e.offset + RECORD_HEADER_LEN as u64 + len / 2);

    let m = f.device_mount();
    let mnt = f.w.p("mnt");
    let err = std::fs::read(mnt.join(TITLE).join("disc.iso")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "EIO expected: {err}");
    // A read of the bad chunk alone fails too, however it is reached.
    let mut file = std::fs::File::open(mnt.join(TITLE).join("disc.iso")).unwrap();
    file.seek(SeekFrom::Start(off + 1)).unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(file.read(&mut buf).unwrap_err().raw_os_error(), Some(5));
    // The start of the same file and the other files still read right.
    let data = f.data(TITLE, "disc.iso");
    let mut head = vec![0u8; 8192];
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_exact(&mut head).unwrap();
    assert!(head == data[..8192]);
    drop(file);
    for (g, p, d) in &f.files[1..] {
        assert!(&std::fs::read(mnt.join(g).join(p)).unwrap() == d, "{g}/{p}");
    }
    m.kill("TERM");
    let err = m.wait_exit_0();
    assert!(err.contains("does not match the signed hash"), "{err}");
}

#[test]
fn games_signed_by_an_untrusted_key_are_left_out() {
    if no_mount() {
        return;
    }
    let f = Fixture::new();
    ok(romlib(&[
        "keygen",
        "--secret-key",
        &f.w.s("k2.sec"),
        "--public-key",
        &f.w.s("k2.pub"),
    ]));
    let (lib, key, mnt) = (f.w.s("lib"), f.w.s("k2.pub"), f.w.s("mnt"));
    let m = Mount::spawn(
        "romlib-device",
        &["mount", "-r", &lib, &mnt, "--trusted-key", &key],
        &f.w.p("mnt"),
    );
    assert_eq!(std::fs::read_dir(f.w.p("mnt")).unwrap().count(), 0);
    m.fusermount_u();
    let err = m.wait_exit_0();
    assert!(err.contains("not mounting game game:"), "{err}");
    assert!(err.contains("not mounting game other:"), "{err}");
    assert!(err.contains("mounted 0 games"), "{err}");
}

#[test]
fn a_missing_non_directory_or_non_empty_mount_point_is_refused() {
    let f = Fixture::new();
    let lib = f.w.s("lib");
    write(&f.w.p("full"), "x.txt", b"x");
    write(&f.w.p(""), "plain", b"x");
    let cases = [
        (f.w.s("missing"), "no such mount point"),
        (f.w.s("plain"), "mount point is not a directory"),
        (f.w.s("full"), "mount point is not empty"),
    ];
    let key = f.w.s("k.pub");
    for (mp, msg) in &cases {
        fails(
            device(&["mount", "-r", &lib, mp, "--trusted-key", &key]),
            1,
            &[msg, mp],
        );
        fails(romlib(&["mount", "-r", &lib, mp]), 1, &[msg, mp]);
        assert!(!is_mounted(Path::new(mp)));
    }
    // Usage: no mount point.
    fails(device(&["mount", "-r", &lib]), 2, &[]);
}

#[test]
fn a_portable_file_mounts_like_its_library_on_both_binaries() {
    if no_mount() {
        return;
    }
    let f = Fixture::new();
    let (lib, file, key) = (f.w.s("lib"), f.w.s("all.romlib"), f.w.s("k.pub"));
    ok(romlib(&["export", "-r", &lib, "--all", "-o", &file, "-q"]));
    let mnt = f.w.p("mnt");
    for bin_name in ["romlib-device", "romlib"] {
        let m = Mount::spawn(
            bin_name,
            &["mount", "-r", &file, &f.w.s("mnt"), "--trusted-key", &key],
            &mnt,
        );
        let got: Vec<(String, u64)> = listing(&mnt).into_iter().map(|(p, s, _)| (p, s)).collect();
        let mut want: Vec<(String, u64)> = f
            .files
            .iter()
            .map(|(g, p, d)| (format!("{g}/{p}"), d.len() as u64))
            .collect();
        want.sort();
        assert_eq!(got, want, "{bin_name}");
        for (g, p, d) in &f.files {
            let bytes = std::fs::read(mnt.join(g).join(p)).unwrap();
            assert!(&bytes == d, "{bin_name}: {g}/{p} differs");
        }
        m.kill("INT");
        m.wait_exit_0();
    }
}
