//! The install folder is hostile ground: a card holds whatever its owner, another tool or
//! a broken file system put there, also inside romlib's own hidden folders. Whatever is
//! planted there, every operation of `romlib-device` (install, reinstall, uninstall,
//! cleanup, repair, verify, list) and of `romlib` (install, uninstall) either does what was
//! asked or refuses in one line, and never changes, removes or writes through anything
//! that is not romlib's: the files beside and above the install folder, the library on the
//! card, the user's own folder among the games, a folder outside the card that a symbolic
//! link points to, and the planted items themselves.
//!
//! Each case starts from a fresh copy of one pristine card: `card/sentinel.txt`,
//! `card/BIOS/bios.bin`, the library `card/lib`, the install folder `card/Roms` with game
//! `title-a` installed (and a save, `a.srm`, in it) and the user's folder `MyStuff`; beside
//! the card, `outside`, the target of every planted link. A snapshot that does not follow
//! symbolic links (it records them as links) is taken before and after each operation and
//! must be identical outside the game folders the operation may legitimately change.
//!
//! `ROMLIB_HOSTILE_ITERS` sets the trees of the randomised test (default 150).

use romlib_tests::*;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The user's save in the installed game.
const SAVE: &[u8] = b"slot 1: 99 lives";
/// The completion marker of an installed game.
const MARKER: &str = ".romlib-installed";
/// The note an uninstall leaves with the user's files.
const KEPT: &str = ".romlib-kept";
/// The game folders an operation may change, skipped by the snapshot of the rest.
const GAMES: [&str; 2] = ["card/Roms/title-a", "card/Roms/title-b"];

// ---------------------------------------------------------------------------------------
// Snapshots that do not follow symbolic links.

/// What a path holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

/// Every path below a root (relative), with what it holds.
type Tree = BTreeMap<PathBuf, Node>;

/// Everything below `root`, not following symbolic links, without the subtrees `skip`
/// (relative paths). A root that is gone gives an empty tree.
fn tree(root: &Path, skip: &[&str]) -> Tree {
    fn walk(root: &Path, rel: &Path, skip: &[&str], out: &mut Tree) {
        let Ok(rd) = fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in rd {
            let r = rel.join(e.unwrap().file_name());
            if skip.iter().any(|s| Path::new(s) == r) {
                continue;
            }
            let p = root.join(&r);
            let ty = fs::symlink_metadata(&p).unwrap().file_type();
            if ty.is_symlink() {
                out.insert(r, Node::Link(fs::read_link(&p).unwrap()));
            } else if ty.is_dir() {
                out.insert(r.clone(), Node::Dir);
                walk(root, &r, skip, out);
            } else {
                out.insert(r, Node::File(fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Tree::new();
    walk(root, Path::new(""), skip, &mut out);
    out
}

/// The differences between two trees, for a message (the first few).
fn diff(before: &Tree, after: &Tree) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => d.push(format!("removed {k:?}")),
            Some(w) if w != v => d.push(format!("changed {k:?}")),
            _ => {}
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        d.push(format!("added {k:?}"));
    }
    d
}

/// Asserts that `after` equals `before`, naming what differs.
fn same(before: &Tree, after: &Tree, what: &str) {
    let d = diff(before, after);
    assert!(
        d.is_empty(),
        "{what}: {} paths differ: {}",
        d.len(),
        d.iter().take(8).cloned().collect::<Vec<_>>().join(", ")
    );
}

/// Asserts that a snapshot holds what every card holds (so that comparing two can fail).
fn sane(t: &Tree) {
    for (rel, want) in [
        ("card/sentinel.txt", true),
        ("card/BIOS/bios.bin", true),
        ("card/lib/index.db", true),
        ("card/Roms/MyStuff/notes.txt", true),
        ("card/lib/games", false),
    ] {
        let got = t.get(Path::new(rel));
        assert!(
            if want {
                matches!(got, Some(Node::File(b)) if !b.is_empty())
            } else {
                got == Some(&Node::Dir)
            },
            "the snapshot lacks {rel} ({} entries)",
            t.len()
        );
    }
    assert!(
        t.keys().any(|k| k.starts_with("outside")),
        "the snapshot lacks outside"
    );
}

// ---------------------------------------------------------------------------------------
// Collecting failures: every case runs, then the test fails listing all that failed.

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
static HOOK: std::sync::Once = std::sync::Once::new();

/// Runs check `f`; its panic message, prefixed with `label`, if it failed. The panics
/// caught here are not printed (the test prints them all at its end).
fn attempt(label: &str, f: impl FnOnce()) -> Option<String> {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                default(info)
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    let e = r.err()?;
    let msg = e
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into());
    let mut msg = msg.trim().replace('\n', " | ");
    if msg.len() > 700 {
        let mut cut = 700;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
        msg.push_str(" ...");
    }
    Some(format!("{label}: {msg}"))
}

/// Runs `check` on every item, a few at a time; the failures, in the items' order.
fn run_all<T: Sync>(items: &[T], check: impl Fn(&T) -> Option<String> + Sync) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                if let Some(e) = check(item) {
                    failed.lock().unwrap().push((i, e));
                }
            });
        }
    });
    let mut failed = failed.into_inner().unwrap();
    failed.sort();
    failed.into_iter().map(|(_, e)| e).collect()
}

/// Fails the test if any of `total` checks failed, listing them.
fn verdict(what: &str, total: usize, failures: &[String]) {
    assert!(total > 0, "{what}: no check ran");
    eprintln!(
        "{what}: {} of {total} checks passed",
        total - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{what}: {} of {total} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Outcomes.

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The lines of stderr that are not the host's note about the keys it trusts.
fn error_lines(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("romlib: trusting"))
        .map(str::to_string)
        .collect()
}

/// Asserts exit 0 with nothing on stderr but warnings that something was left alone.
fn succeeded(out: &Output) {
    succeeded_noting(out, &[]);
}

/// [`succeeded`], stderr lines naming one of `also` allowed too.
fn succeeded_noting(out: &Output, also: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "expected success, got {:?}; stdout: {}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        stderr(out).trim()
    );
    for l in error_lines(out) {
        assert!(
            l.contains("left alone") || also.iter().any(|a| l.contains(a)),
            "succeeded, but stderr holds more than a 'left alone' warning: {l:?}"
        );
    }
}

/// Asserts a refusal: exit `code` (any but 0 and a panic's 101 when `None`), no signal,
/// one line on stderr containing each of `needles`.
fn refused(out: &Output, code: Option<i32>, needles: &[&str]) {
    let err = stderr(out);
    match out.status.code() {
        None => panic!("killed by a signal ({:?}); stderr: {err}", out.status),
        Some(0) => panic!(
            "expected a refusal, got exit 0; stdout: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        Some(101) => panic!("panicked: {err}"),
        Some(c) => {
            if let Some(want) = code {
                assert_eq!(c, want, "exit code; stderr: {err}");
            }
        }
    }
    let lines = error_lines(out);
    assert_eq!(lines.len(), 1, "the error should be one line: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

/// Asserts exit 0 or a one-line failure with exit 1 of command `what`: no signal, no
/// panic.
fn no_crash(out: &Output, what: &str) {
    match out.status.code() {
        Some(0) => {}
        Some(1) => {
            let lines = error_lines(out);
            assert_eq!(
                lines.len(),
                1,
                "{what}: the error should be one line: {}",
                stderr(out)
            );
        }
        Some(c) => panic!("{what}: exit {c}; stderr: {}", stderr(out)),
        None => panic!(
            "{what}: killed by a signal ({:?}); stderr: {}",
            out.status,
            stderr(out)
        ),
    }
}

// ---------------------------------------------------------------------------------------
// The card, and the operations on it.

/// The operations run against a hostile install folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// `romlib-device install -g title-b`.
    Install,
    /// `romlib-device install -g title-a` (installed already).
    Reinstall,
    /// `romlib-device uninstall -t title-a`.
    Uninstall,
    /// `romlib-device cleanup`.
    Cleanup,
    /// `romlib-device repair -g title-a`, one byte of `title-a/a.bin` damaged first.
    Repair,
    /// `romlib-device verify --installed -g title-a`.
    Verify,
    /// `romlib-device list-games --install-dir`.
    List,
    /// `romlib install -g title-b`.
    HostInstall,
    /// `romlib install -g title-a`.
    HostReinstall,
    /// `romlib uninstall -t title-a`.
    HostUninstall,
}

impl Op {
    /// The game the operation installs, removes or repairs.
    fn game(self) -> Option<&'static str> {
        match self {
            Op::Install | Op::HostInstall => Some("title-b"),
            Op::Reinstall | Op::Uninstall | Op::Repair | Op::HostReinstall | Op::HostUninstall => {
                Some("title-a")
            }
            Op::Cleanup | Op::Verify | Op::List => None,
        }
    }
}

/// Every operation of the planted-names contract.
const ALL_OPS: [Op; 9] = [
    Op::Install,
    Op::Reinstall,
    Op::Uninstall,
    Op::Cleanup,
    Op::Repair,
    Op::Verify,
    Op::List,
    Op::HostInstall,
    Op::HostUninstall,
];

/// The library (`card/lib`, built once) and the pristine card every case copies.
struct Fx {
    w: Workspace,
    cases: AtomicUsize,
}

impl Fx {
    /// Builds the library of `title-a` (with a subfolder) and `title-b` from seed `seed`,
    /// installs `title-a` and adds the user's files.
    fn new(seed: u64) -> Fx {
        let w = Workspace::new();
        let mut r = Rng::new(seed);
        write(&w.p("in"), "title-a/a.bin", &r.bytes(40_000));
        write(&w.p("in"), "title-a/data/a.bin", &r.text(30_000));
        write(&w.p("in"), "title-b/b.bin", &r.bytes(20_000));
        let t = w.p("pristine");
        write(&t, "card/sentinel.txt", b"beside the install folder");
        write(&t, "card/BIOS/bios.bin", &r.bytes(4096));
        write(&t, "outside/secret.txt", b"outside the card");
        write(&t, "outside/sub/deep.bin", &r.bytes(1000));
        ok(w.build("in", "pristine/card/lib", &["-q"]));
        let fx = Fx {
            w,
            cases: AtomicUsize::new(0),
        };
        let c = Case {
            root: t.clone(),
            fx: &fx,
            keep: true,
        };
        ok(c.run(Op::Reinstall));
        write(&t, "card/Roms/title-a/a.srm", SAVE);
        write(
            &t,
            "card/Roms/MyStuff/notes.txt",
            b"my own notes, no romlib here",
        );
        c.game_intact("title-a");
        drop(c);
        sane(&tree(&t, &[]));
        fx
    }

    /// A fresh copy of the pristine card (and `outside`) below `base`.
    fn case_in(&self, base: &Path) -> Case<'_> {
        let n = self.cases.fetch_add(1, Ordering::Relaxed);
        let root = base.join(format!("case{n}"));
        copy_plain(&self.w.p("pristine"), &root);
        Case {
            root,
            fx: self,
            keep: false,
        }
    }

    /// A fresh copy of the pristine card in the workspace.
    fn case(&self) -> Case<'_> {
        self.case_in(&self.w.p("cases"))
    }
}

/// Copies the folder tree `from` to `to` by reading and writing every file (fusefat
/// cannot set a file's mode, which `fs::copy` does).
fn copy_plain(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_plain(&e.path(), &dst);
        } else {
            fs::write(dst, fs::read(e.path()).unwrap()).unwrap();
        }
    }
}

/// One copy of the card: `root/card`, `root/outside`. Removed when dropped.
struct Case<'a> {
    root: PathBuf,
    fx: &'a Fx,
    keep: bool,
}

impl Drop for Case<'_> {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

impl Case<'_> {
    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.p(rel).to_string_lossy().into_owned()
    }

    /// The install folder.
    fn roms(&self) -> PathBuf {
        self.p("card/Roms")
    }

    /// The staging folder.
    fn staging(&self) -> PathBuf {
        self.p("card/Roms/.romlib-staging")
    }

    /// Prepares `op`: a repair needs damage.
    fn prep(&self, op: Op) {
        if op == Op::Repair {
            flip(&self.p("card/Roms/title-a/a.bin"), 1000);
        }
    }

    /// Runs `op`.
    fn run(&self, op: Op) -> Output {
        let (roms, lib, key) = (
            self.s("card/Roms"),
            self.s("card/lib"),
            self.fx.w.s("k.pub"),
        );
        let install = |g: &str| {
            vec![
                "install".to_string(),
                "-g".into(),
                g.into(),
                "-r".into(),
                lib.clone(),
                "--install-dir".into(),
                roms.clone(),
                "--trusted-key".into(),
                key.clone(),
            ]
        };
        let uninstall = || -> Vec<String> {
            vec![
                "uninstall".into(),
                "-t".into(),
                "title-a".into(),
                "--install-dir".into(),
                roms.clone(),
            ]
        };
        let to_vec = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (host, args) = match op {
            Op::Install => (false, install("title-b")),
            Op::Reinstall => (false, install("title-a")),
            Op::Uninstall => (false, uninstall()),
            Op::Cleanup => (false, to_vec(&["cleanup", "--install-dir", &roms])),
            Op::Repair => (
                false,
                to_vec(&[
                    "repair",
                    "-g",
                    "title-a",
                    "-r",
                    &lib,
                    "--install-dir",
                    &roms,
                    "--trusted-key",
                    &key,
                ]),
            ),
            Op::Verify => (
                false,
                to_vec(&[
                    "verify",
                    "--installed",
                    "-g",
                    "title-a",
                    "--install-dir",
                    &roms,
                    "--trusted-key",
                    &key,
                ]),
            ),
            Op::List => (false, to_vec(&["list-games", "--install-dir", &roms])),
            Op::HostInstall => (true, install("title-b")),
            Op::HostReinstall => (true, install("title-a")),
            Op::HostUninstall => (true, uninstall()),
        };
        let mut cmd = if host { host_cmd() } else { device_cmd() };
        cmd.args(&args).stdin(Stdio::null()).output().unwrap()
    }

    /// `list-games --install-dir card/Roms --json`: asserts exit 0 and returns the games
    /// listed as (title, state).
    fn listed(&self) -> Vec<(String, String)> {
        let out = device(&[
            "list-games",
            "--install-dir",
            &self.s("card/Roms"),
            "--json",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "list-games --json afterwards: stderr: {}",
            stderr(&out).trim()
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "list-games --json afterwards printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        v["games"]
            .as_array()
            .unwrap_or_else(|| panic!("list-games --json: no games array: {v}"))
            .iter()
            .map(|g| {
                (
                    g["title"].as_str().unwrap_or("").to_string(),
                    g["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// The files of game folder `title` (not following links), markers and the save aside.
    fn game_files(&self, title: &str) -> Vec<(PathBuf, Vec<u8>)> {
        tree(&self.roms().join(title), &[MARKER, KEPT, "a.srm"])
            .into_iter()
            .filter_map(|(k, v)| match v {
                Node::File(b) => Some((k, b)),
                _ => None,
            })
            .collect()
    }

    /// Asserts that game `title` is installed, every file as built (user items that are
    /// not files aside), and, for `title-a`, with the save.
    fn game_intact(&self, title: &str) {
        let dir = self.roms().join(title);
        let want: Vec<(PathBuf, Vec<u8>)> = tree(&self.fx.w.p("in").join(title), &[])
            .into_iter()
            .filter_map(|(k, v)| match v {
                Node::File(b) => Some((k, b)),
                _ => None,
            })
            .collect();
        assert!(!want.is_empty());
        assert!(
            fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()),
            "{title} is no folder"
        );
        assert!(dir.join(MARKER).is_file(), "{title}: no completion marker");
        let got = self.game_files(title);
        let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&want), "{title}: files");
        assert!(got == want, "{title}: the files differ from the game's");
        if title == "title-a" {
            self.save_at("card/Roms/title-a/a.srm");
        }
    }

    /// Asserts that title-a is uninstalled: its folder holds the save and the note only.
    fn uninstalled(&self) {
        assert!(
            !self.p("card/Roms/title-a").join(MARKER).exists(),
            "title-a: still marked installed"
        );
        assert!(
            self.p("card/Roms/title-a").join(KEPT).is_file(),
            "title-a: no {KEPT} note"
        );
        assert!(
            self.game_files("title-a").is_empty(),
            "title-a: game files left"
        );
        self.save_at("card/Roms/title-a/a.srm");
    }

    fn save_at(&self, rel: &str) {
        assert_eq!(
            fs::read(self.p(rel)).ok().as_deref(),
            Some(SAVE),
            "the save {rel}"
        );
    }

    /// Asserts what a successful `op` leaves in the game folders, and that the folder
    /// still lists.
    fn after_success(&self, op: Op) {
        match op {
            Op::Install | Op::HostInstall => {
                self.game_intact("title-b");
                self.game_intact("title-a");
            }
            Op::Uninstall | Op::HostUninstall => self.uninstalled(),
            _ => self.game_intact("title-a"),
        }
        let games = self.listed();
        let want = match op {
            Op::Uninstall | Op::HostUninstall => "kept",
            _ => "installed",
        };
        assert!(
            games.iter().any(|(t, s)| t == "title-a" && s == want),
            "list-games --json does not list title-a as {want}: {games:?}"
        );
    }
}

/// What is planted in the staging folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    EmptyDir,
    DirWithFile,
    File,
}

const KINDS: [Kind; 3] = [Kind::EmptyDir, Kind::DirWithFile, Kind::File];

/// Plants `name` as `kind` in `dir`.
fn plant(dir: &Path, name: &OsStr, kind: Kind) -> std::io::Result<()> {
    let p = dir.join(name);
    match kind {
        Kind::EmptyDir => fs::create_dir(&p),
        Kind::DirWithFile => {
            fs::create_dir(&p)?;
            fs::write(p.join("inside.txt"), b"the user's, in a folder")
        }
        Kind::File => fs::write(&p, b"the user's file"),
    }
}

/// The staging names no romlib operation writes (`MyStuff.new` aside: see
/// [`may_be_removed`]).
fn planted_names() -> Vec<OsString> {
    let mut v: Vec<OsString> = [
        "...old",
        "..old",
        ".old",
        ".new",
        "..new",
        "...del",
        "..del",
        ".repair",
        "..repair",
        "MyStuff.old",
        "MyStuff.del",
        "title-a.old",
        "a:b.old",
        "Title.OLD",
        "foo",
        "foo.bak",
        "new\nline.old",
        "MyStuff.new",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    v.push(format!("{}.old", "x".repeat(246)).into());
    v.push(OsStr::from_bytes(b"\xff.old").to_os_string());
    assert_eq!(v[v.len() - 2].len(), 250);
    v
}

/// The planted names that are valid staging names by SPEC section 7.1 (a valid title id,
/// a known suffix): `<title>.old`, `.del`, `.new`. Every other planted name is one no
/// romlib operation writes.
const VALID_STAGING: [&str; 4] = ["MyStuff.old", "MyStuff.del", "title-a.old", "MyStuff.new"];

/// What an operation may remove of the planted `name` (as `kind`): an empty folder with a
/// valid staging name (what a removal cut off after its markers went leaves), and
/// `MyStuff.new` holding files (an unfinished install in romlib's own staging folder); never
/// `MyStuff` itself, nor anything with a name romlib never writes, nor a non-empty `.old`
/// or `.del` without a completion marker.
fn may_be_removed(name: &OsStr, kind: Kind) -> bool {
    let valid = VALID_STAGING.iter().any(|v| name == *v);
    (valid && matches!(kind, Kind::EmptyDir)) || (name == "MyStuff.new" && kind != Kind::File)
}

/// Whether the planted `name` (as `kind`) is a staging entry of the game `op` works on
/// that romlib cannot account for (not empty, no marker): the operation then refuses in
/// one line naming it, changing nothing, rather than work over it.
fn blocks(name: &OsStr, kind: Kind, op: Op) -> bool {
    kind != Kind::EmptyDir
        && op.game().is_some_and(|g| {
            [".new", ".old", ".del", ".repair"]
                .iter()
                .any(|s| name.to_str() == Some(&format!("{g}{s}")))
        })
}

/// Whether a FAT or exFAT card can store `name`.
fn fat_ok(name: &OsStr) -> bool {
    name.to_str().is_some_and(|s| {
        !s.chars()
            .any(|c| c.is_control() || "\"*/:<>?\\|".contains(c))
            && !s.ends_with('.')
            && !s.ends_with(' ')
    })
}

/// A short label of a name.
fn label(name: &OsStr) -> String {
    let s = format!("{name:?}");
    if s.len() > 40 {
        format!(
            "{}...{} ({} bytes)",
            &s[..12],
            &s[s.len() - 8..],
            name.len()
        )
    } else {
        s
    }
}

/// Case 1: `name` planted as `kind` in the staging folder of a fresh card (below `base`,
/// or the workspace), then `op`, which must succeed, leave the games as asked and leave
/// alone everything beside the game folders. `fusefat`: on fusefat, whose renamed folders
/// lose their contents, the games are not checked, and a reinstall or uninstall (which
/// then finds the files it moved gone) may fail in one line.
fn planted_case(fx: &Fx, base: Option<&Path>, name: &OsStr, kind: Kind, op: Op, fusefat: bool) {
    let c = match base {
        Some(b) => fx.case_in(b),
        None => fx.case(),
    };
    fs::create_dir(c.staging()).unwrap();
    plant(&c.staging(), name, kind).unwrap_or_else(|e| panic!("cannot plant it: {e}"));
    c.prep(op);
    let planted = Path::new("card/Roms/.romlib-staging").join(name);
    let mut before = tree(&c.root, &GAMES);
    sane(&before);
    assert!(before.contains_key(&planted), "not planted");
    let out = c.run(op);
    if fusefat && matches!(op, Op::Reinstall | Op::Uninstall) {
        no_crash(&out, &format!("{op:?}"));
    } else if blocks(name, kind, op) {
        refused(&out, Some(1), &[&name.to_string_lossy()]);
    } else if may_be_removed(name, kind) {
        succeeded_noting(&out, &[&name.to_string_lossy()]);
    } else {
        succeeded(&out);
    }
    let mut after = tree(&c.root, &GAMES);
    if fusefat {
        // What a reinstall or uninstall that fusefat failed left of the game's own staging.
        let staging = Path::new("card/Roms/.romlib-staging");
        after.retain(|k, _| {
            before.contains_key(k)
                || !k.strip_prefix(staging).is_ok_and(|r| {
                    r.iter().next().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.starts_with("title-a.") || n.starts_with("title-b.")
                    })
                })
        });
    }
    if may_be_removed(name, kind) && !after.contains_key(&planted) {
        // And the staging folder it was alone in may go with it.
        let staging = Path::new("card/Roms/.romlib-staging");
        let gone = !after.contains_key(staging);
        before.retain(|k, _| !(k.starts_with(&planted) || (gone && k == staging)));
    }
    same(&before, &after, "beside the game folders");
    if !fusefat && !blocks(name, kind, op) {
        c.after_success(op);
    }
}

#[test]
fn planted_staging_names_are_left_alone_by_every_operation() {
    let fx = Fx::new(1);
    let mut items = Vec::new();
    for name in planted_names() {
        for kind in KINDS {
            for op in ALL_OPS {
                items.push((name.clone(), kind, op));
            }
        }
    }
    let failures = run_all(&items, |(name, kind, op)| {
        attempt(&format!("{op:?} with {} as {kind:?}", label(name)), || {
            planted_case(&fx, None, name, *kind, *op, false)
        })
    });
    verdict("planted staging names", items.len(), &failures);
}

// ---------------------------------------------------------------------------------------
// 2. Symbolic links (on the host's file system only: FAT and exFAT have none).

/// 2a: `.romlib-staging` is a link to `outside`.
#[test]
fn a_staging_folder_that_is_a_symlink_is_refused_or_left_alone() {
    let fx = Fx::new(2);
    let ops = [
        Op::Install,
        Op::Reinstall,
        Op::Uninstall,
        Op::Repair,
        Op::HostInstall,
        Op::HostUninstall,
        Op::Cleanup,
        Op::List,
        Op::Verify,
    ];
    let failures = run_all(&ops, |op| {
        attempt(&format!("{op:?} with .romlib-staging -> outside"), || {
            let c = fx.case();
            symlink(c.p("outside"), c.staging()).unwrap();
            c.prep(*op);
            let before = tree(&c.root, &[]);
            sane(&before);
            let out = c.run(*op);
            match op {
                Op::Cleanup | Op::List | Op::Verify => succeeded(&out),
                _ => refused(&out, None, &["symbolic link", ".romlib-staging"]),
            }
            same(&before, &tree(&c.root, &[]), "the card and outside");
        })
    });
    verdict("staging folder a symlink", ops.len(), &failures);
}

/// 2b: entries of `.romlib-staging` that are links to `outside`.
#[test]
fn staging_entries_that_are_symlinks_are_never_followed() {
    let fx = Fx::new(3);
    let links = ["title-a.old", "title-b.new", "title-a.del", "x.repair"];
    let mut items = Vec::new();
    for l in links {
        for op in ALL_OPS {
            items.push((l, op));
        }
    }
    let failures = run_all(&items, |&(link, op)| {
        attempt(
            &format!("{op:?} with .romlib-staging/{link} -> outside"),
            || {
                let c = fx.case();
                fs::create_dir(c.staging()).unwrap();
                symlink(c.p("outside"), c.staging().join(link)).unwrap();
                c.prep(op);
                let whole = tree(&c.root, &[]);
                let before = tree(&c.root, &GAMES);
                sane(&before);
                let out = c.run(op);
                // An operation on a game may refuse, naming it, a link named like one of
                // that game's staging entries; everything else must succeed.
                let collides = op
                    .game()
                    .is_some_and(|g| link.starts_with(&format!("{g}.")));
                let done = out.status.success();
                if done || !collides {
                    succeeded(&out);
                } else {
                    refused(&out, Some(1), &[link]);
                }
                same(&before, &tree(&c.root, &GAMES), "beside the game folders");
                if done {
                    c.after_success(op);
                } else {
                    same(&whole, &tree(&c.root, &[]), "after the refusal");
                }
            },
        )
    });
    verdict("staging entries symlinks", items.len(), &failures);
}

/// 2c: a folder of an installed game is a link to `outside`.
#[test]
fn a_game_subfolder_that_is_a_symlink_is_never_followed() {
    let fx = Fx::new(4);
    let ops = [
        Op::Verify,
        Op::Repair,
        Op::Reinstall,
        Op::Uninstall,
        Op::Cleanup,
        Op::List,
    ];
    let failures = run_all(&ops, |&op| {
        attempt(&format!("{op:?} with title-a/data -> outside"), || {
            let c = fx.case();
            fs::rename(c.p("card/Roms/title-a/data"), c.p("moved-data")).unwrap();
            symlink(c.p("outside"), c.p("card/Roms/title-a/data")).unwrap();
            c.prep(op);
            let whole = tree(&c.root, &[]);
            sane(&whole);
            let before = tree(&c.root, &GAMES);
            let out = c.run(op);
            match op {
                Op::Verify => refused(&out, Some(1), &["symbolic link"]),
                Op::Repair => refused(&out, Some(1), &[]),
                _ => succeeded(&out),
            }
            same(&before, &tree(&c.root, &GAMES), "beside the game folders");
            match op {
                Op::Reinstall => c.game_intact("title-a"),
                Op::Uninstall => c.save_at("card/Roms/title-a/a.srm"),
                _ => same(&whole, &tree(&c.root, &[]), "the game"),
            }
        })
    });
    verdict("game subfolder a symlink", ops.len(), &failures);
}

/// 2d: the game's folder is a link to `outside`, which holds a copy of the game, marker
/// included.
#[test]
fn a_game_folder_that_is_a_symlink_is_never_taken_for_a_game() {
    let fx = Fx::new(5);
    let ops = [
        Op::Reinstall,
        Op::Uninstall,
        Op::Verify,
        Op::Repair,
        Op::HostReinstall,
        Op::HostUninstall,
        Op::List,
        Op::Install,
        Op::Cleanup,
    ];
    let failures = run_all(&ops, |&op| {
        attempt(&format!("{op:?} with title-a -> outside"), || {
            let c = fx.case();
            copy_plain(&c.p("card/Roms/title-a"), &c.p("outside"));
            fs::remove_dir_all(c.p("card/Roms/title-a")).unwrap();
            symlink(c.p("outside"), c.p("card/Roms/title-a")).unwrap();
            c.prep(op);
            let whole = tree(&c.root, &[]);
            sane(&whole);
            assert!(whole.contains_key(Path::new("outside").join(MARKER).as_path()));
            let out = c.run(op);
            match op {
                Op::List | Op::Cleanup => {
                    succeeded(&out);
                    same(&whole, &tree(&c.root, &[]), "the card and outside");
                }
                Op::Install => {
                    succeeded(&out);
                    same(&whole, &tree(&c.root, &GAMES[1..]), "beside title-b");
                    c.game_intact("title-b");
                }
                _ => {
                    refused(&out, Some(1), &["symbolic link"]);
                    same(&whole, &tree(&c.root, &[]), "the card and outside");
                }
            }
            let games = c.listed();
            assert!(
                !games
                    .iter()
                    .any(|(t, s)| t == "title-a" && s == "installed"),
                "list-games --json lists title-a as installed: {games:?}"
            );
        })
    });
    verdict("game folder a symlink", ops.len(), &failures);
}

/// 2f: with `--layout`, the system folder is inside the install folder: one that is a link
/// (`Roms/gb -> outside`) is never followed. Both binaries' installs refuse in one line
/// naming it; uninstall, verify and repair find no game there; `outside` is untouched.
#[test]
fn a_system_folder_that_is_a_symlink_is_never_followed() {
    let w = Workspace::new();
    write(&w.p("in"), "pocket/pocket.gb", &Rng::new(5).bytes(30_000));
    write(&w.p("in"), "pocket/romlib.toml", b"system = \"Game Boy\"\n");
    ok(w.build("in", "lib", &["-q"]));
    write(&w.p("outside"), "secret.txt", b"outside the card");
    fs::create_dir_all(w.p("card/Roms")).unwrap();
    symlink(w.p("outside"), w.p("card/Roms/gb")).unwrap();
    let before = tree(&w.p("outside"), &[]);
    assert!(!before.is_empty());
    let (lib, roms, key) = (w.s("lib"), w.s("card/Roms"), w.s("k.pub"));
    let install = [
        "install",
        "-g",
        "pocket",
        "-r",
        &lib,
        "--install-dir",
        &roms,
        "--layout",
        "muos",
    ];
    refused(
        &device(&[&install[..], &["--trusted-key", &key]].concat()),
        Some(1),
        &["symbolic link", "gb"],
    );
    refused(
        &romlib(&[&install[..], &["--trusted-key", &key]].concat()),
        Some(1),
        &["symbolic link", "gb"],
    );
    let uninstall = [
        "uninstall",
        "-t",
        "pocket",
        "--install-dir",
        &roms,
        "--layout",
        "muos",
    ];
    refused(&device(&uninstall), Some(1), &["no such installed game"]);
    for args in [
        &[
            "verify",
            "--installed",
            "-g",
            "pocket",
            "--install-dir",
            &roms,
            "--layout",
            "muos",
        ][..],
        &[
            "verify",
            "--installed",
            "--all",
            "--install-dir",
            &roms,
            "--layout",
            "muos",
        ],
        &[
            "repair",
            "-g",
            "pocket",
            "-r",
            &lib,
            "--install-dir",
            &roms,
            "--layout",
            "muos",
        ],
    ] {
        let out = device(&[args, &["--trusted-key", &key][..]].concat());
        no_crash(&out, &args.join(" "));
    }
    same(&before, &tree(&w.p("outside"), &[]), "the link's target");
    assert!(fs::symlink_metadata(w.p("card/Roms/gb"))
        .unwrap()
        .file_type()
        .is_symlink());
}

/// A user's files whose names are not UTF-8 (a save written under another code page, a
/// folder of them) are carried across a reinstall and left by an uninstall like any other,
/// not stranded in the staging folder.
#[test]
fn files_with_names_that_are_not_utf8_are_carried_too() {
    let fx = Fx::new(3);
    let c = fx.case();
    let game = c.p("card/Roms/title-a");
    let odd = OsStr::from_bytes(b"save\xff.srm");
    fs::write(game.join(odd), SAVE).unwrap();
    fs::create_dir(game.join(OsStr::from_bytes(b"shots\xfe"))).unwrap();
    fs::write(
        game.join(OsStr::from_bytes(b"shots\xfe")).join("1.png"),
        b"png",
    )
    .unwrap();
    fs::write(game.join("data").join(odd), b"in a game folder").unwrap();
    for op in [Op::Reinstall, Op::Uninstall] {
        succeeded(&c.run(op));
        assert_eq!(fs::read(game.join(odd)).unwrap(), SAVE, "{op:?}");
        assert_eq!(
            fs::read(game.join(OsStr::from_bytes(b"shots\xfe")).join("1.png")).unwrap(),
            b"png",
            "{op:?}"
        );
        assert_eq!(
            fs::read(game.join("data").join(odd)).unwrap(),
            b"in a game folder",
            "{op:?}"
        );
        c.save_at("card/Roms/title-a/a.srm");
        assert!(!c.staging().exists(), "{op:?}: staging left");
    }
}

/// 2e: `.romlib-resume` is a link to `outside`: cleanup and list leave it alone.
#[test]
fn a_resume_folder_that_is_a_symlink_is_left_alone() {
    let fx = Fx::new(6);
    let ops = [Op::Cleanup, Op::List];
    let failures = run_all(&ops, |&op| {
        attempt(&format!("{op:?} with .romlib-resume -> outside"), || {
            let c = fx.case();
            symlink(c.p("outside"), c.p("card/Roms/.romlib-resume")).unwrap();
            let before = tree(&c.root, &[]);
            sane(&before);
            succeeded(&c.run(op));
            same(&before, &tree(&c.root, &[]), "the card and outside");
        })
    });
    verdict("resume folder a symlink", ops.len(), &failures);
}

/// Beyond 2e: an install of `title-b` with `.romlib-resume` a link to `outside`, which
/// holds what a cut-off download of `title-b` would (a folder and a manifest), must not
/// clear them through the link.
#[test]
fn an_install_never_clears_a_resume_folder_that_is_a_symlink() {
    let fx = Fx::new(7);
    let ops = [Op::Install, Op::HostInstall];
    let failures = run_all(&ops, |&op| {
        attempt(&format!("{op:?} with .romlib-resume -> outside"), || {
            let c = fx.case();
            write(&c.p("outside"), "title-b/b.bin", b"not a download");
            fs::copy(
                c.p("card/lib/games/title-b.manifest"),
                c.p("outside/title-b.manifest"),
            )
            .unwrap();
            symlink(c.p("outside"), c.p("card/Roms/.romlib-resume")).unwrap();
            let before = tree(&c.root, &GAMES);
            sane(&before);
            let out = c.run(op);
            if out.status.success() {
                succeeded(&out);
                c.game_intact("title-b");
            } else {
                refused(&out, Some(1), &[".romlib-resume"]);
            }
            same(&before, &tree(&c.root, &GAMES), "beside the game folders");
        })
    });
    verdict("install with resume folder a symlink", ops.len(), &failures);
}

// ---------------------------------------------------------------------------------------
// 3. FAT32 and exFAT card images.

/// Case 1's names a card can store, against install, reinstall, uninstall and cleanup, on
/// FAT32 and exFAT. On FAT32 the games are not checked afterwards: fusefat, the one FAT
/// driver for FUSE, loses a renamed folder's contents (see cards.rs), so no install there
/// completes, and a reinstall or uninstall may fail in one line; every operation must
/// still leave alone all that is not romlib's, and an install of another game and a
/// cleanup must succeed.
#[test]
fn planted_staging_names_are_left_alone_on_fat32_and_exfat_cards() {
    let fx = Fx::new(8);
    let names: Vec<OsString> = planted_names().into_iter().filter(|n| fat_ok(n)).collect();
    let skipped: Vec<String> = planted_names()
        .iter()
        .filter(|n| !fat_ok(n))
        .map(|n| label(n))
        .collect();
    eprintln!("not on FAT (cannot be stored): {}", skipped.join(", "));
    let ops = [Op::Install, Op::Reinstall, Op::Uninstall, Op::Cleanup];
    let (mut total, mut failed) = (0, Vec::new());
    for kind in ["fat32", "exfat"] {
        let Some(c) = card(&fx.w, kind, 64, kind) else {
            return;
        };
        let mut items = Vec::new();
        for name in &names {
            for k in KINDS {
                for op in ops {
                    items.push((name.clone(), k, op));
                }
            }
        }
        let fusefat = kind == "fat32";
        let failures = run_all(&items, |(name, k, op)| {
            attempt(
                &format!("{kind}: {op:?} with {} as {k:?}", label(name)),
                || planted_case(&fx, Some(&c.dir), name, *k, *op, fusefat),
            )
        });
        eprintln!(
            "planted names on {kind}: {} of {} checks passed",
            items.len() - failures.len(),
            items.len()
        );
        total += items.len();
        failed.extend(failures);
    }
    verdict("planted names on FAT32 and exFAT", total, &failed);
}

// ---------------------------------------------------------------------------------------
// 4. Random staging and resume trees.

fn iterations() -> u64 {
    std::env::var("ROMLIB_HOSTILE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

const FRAGMENTS: [&str; 12] = [
    "",
    ".",
    "..",
    "old",
    "new",
    "del",
    "repair",
    "title-a",
    "MyStuff",
    "x",
    ".manifest",
    ".download.1.2",
];

/// What a random entry is.
#[derive(Clone, Copy, Debug)]
enum Entry {
    EmptyDir,
    DirWithFile,
    File,
    Link,
    /// A folder holding a copy of title-a's completion marker (and perhaps a file).
    Marked(bool),
}

/// A random name from [`FRAGMENTS`], or none when it names no entry.
fn random_name(r: &mut Rng) -> Option<String> {
    let mut s = String::new();
    for i in 0..1 + r.next_u64() % 3 {
        if i > 0 && r.next_u64().is_multiple_of(2) {
            s.push('.');
        }
        s.push_str(FRAGMENTS[(r.next_u64() % FRAGMENTS.len() as u64) as usize]);
    }
    (!matches!(s.as_str(), "" | "." | "..")).then_some(s)
}

/// Fills `dir` (`.romlib-staging` or `.romlib-resume` of card `c`) at random; what it
/// planted, for a message.
fn random_dir(r: &mut Rng, c: &Case, dir: &Path, marker: &[u8]) -> String {
    let what = dir.file_name().unwrap().to_string_lossy().into_owned();
    match r.next_u64() % 8 {
        0 => {
            symlink(c.p("outside"), dir).unwrap();
            return format!("{what} -> outside");
        }
        1 => return format!("no {what}"),
        _ => {}
    }
    fs::create_dir(dir).unwrap();
    let mut planted = Vec::new();
    for _ in 0..1 + r.next_u64() % 6 {
        let Some(name) = random_name(r) else { continue };
        let p = dir.join(&name);
        if fs::symlink_metadata(&p).is_ok() {
            continue;
        }
        let e = match r.next_u64() % 5 {
            0 => Entry::EmptyDir,
            1 => Entry::DirWithFile,
            2 => Entry::File,
            3 => Entry::Link,
            _ => Entry::Marked(r.next_u64().is_multiple_of(2)),
        };
        match e {
            Entry::EmptyDir => fs::create_dir(&p).unwrap(),
            Entry::DirWithFile => write(&p, "f.txt", b"a file in a folder"),
            Entry::File => fs::write(&p, b"a file").unwrap(),
            Entry::Link => symlink(c.p("outside"), &p).unwrap(),
            Entry::Marked(with_file) => {
                write(&p, MARKER, marker);
                if with_file {
                    write(&p, "user.sav", b"a save in a marked folder");
                }
            }
        }
        planted.push(format!("{name:?}: {e:?}"));
    }
    format!("{what} [{}]", planted.join(", "))
}

/// Whether an operation may change `rel` (as the snapshot `before` had it): an entry of
/// the staging or resume folder whose name and kind are ones romlib writes there (SPEC
/// section 7.1, modelled here independently of the code), the staging or resume folder
/// itself unless it is a planted link, or a game folder (a valid title; not the user's
/// MyStuff). Every other entry of those folders must stay exactly as planted.
fn may_change(rel: &Path, before: &Tree) -> bool {
    let Ok(rest) = rel.strip_prefix("card/Roms") else {
        return false;
    };
    let mut parts = rest.iter();
    let Some(first) = parts.next() else {
        return false;
    };
    let first = first.to_string_lossy();
    if first == ".romlib-staging" || first == ".romlib-resume" {
        let folder = Path::new("card/Roms").join(&*first);
        let Some(second) = parts.next() else {
            return !matches!(before.get(&folder), Some(Node::Link(_)));
        };
        let node = before.get(&folder.join(second));
        return romlibs_entry(&first, &second.to_string_lossy(), node);
    }
    first != "MyStuff" && romlib_format::path::check_title_id(&first).is_ok()
}

/// Whether `name` (as `node`; `None`: it was not there before) in folder `dir` is an entry
/// romlib writes: in `.romlib-staging`, a folder `<title>.new|.old|.del|.repair` or a file
/// `.download.<digits>.<digits>`; in `.romlib-resume`, a folder `<title>` or a file
/// `<title>.manifest`; `<title>` a valid title id.
fn romlibs_entry(dir: &str, name: &str, node: Option<&Node>) -> bool {
    let title = |t: &str| romlib_format::path::check_title_id(t).is_ok();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let is_dir = matches!(node, None | Some(Node::Dir));
    let is_file = matches!(node, None | Some(Node::File(_)));
    if dir == ".romlib-staging" {
        (is_dir
            && [".new", ".old", ".del", ".repair"]
                .iter()
                .any(|s| name.strip_suffix(s).is_some_and(title)))
            || (is_file
                && name
                    .strip_prefix(".download.")
                    .and_then(|r| r.split_once('.'))
                    .is_some_and(|(a, b)| digits(a) && digits(b)))
    } else {
        (is_dir && title(name)) || (is_file && name.strip_suffix(".manifest").is_some_and(title))
    }
}

#[test]
fn random_staging_and_resume_trees_never_hurt_what_is_not_romlibs() {
    let fx = Fx::new(9);
    let marker = fs::read(fx.w.p("pristine/card/Roms/title-a").join(MARKER)).unwrap();
    let seeds: Vec<u64> = (0..iterations()).map(|i| 9000 + i).collect();
    let failures = run_all(&seeds, |&seed| {
        let mut r = Rng::new(seed);
        let c = fx.case();
        let planted = format!(
            "{}; {}",
            random_dir(&mut r, &c, &c.staging(), &marker),
            random_dir(&mut r, &c, &c.p("card/Roms/.romlib-resume"), &marker)
        );
        attempt(&format!("seed {seed}: {planted}"), || {
            let whole = tree(&c.root, &[]);
            sane(&whole);
            let keep = |t: Tree| -> Tree {
                t.into_iter()
                    .filter(|(k, _)| !may_change(k, &whole))
                    .collect()
            };
            let before = keep(whole.clone());
            for op in [Op::Cleanup, Op::List] {
                no_crash(&c.run(op), &format!("{op:?}"));
            }
            same(
                &before,
                &keep(tree(&c.root, &[])),
                "outside romlib's own staging and resume entries and the game folders",
            );
            c.save_at("card/Roms/title-a/a.srm");
        })
    });
    verdict("random staging and resume trees", seeds.len(), &failures);
}
