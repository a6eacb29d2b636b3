//! Power loss: what must be durable is fsynced, in the order SPEC section 6 gives. A build
//! (fresh and incremental) and an upgrade install run under `strace`, and the order of their
//! fsyncs and renames is checked: a temporary file is fsynced before it is renamed into
//! place, every rename is followed by an fsync of its folder, and a library's files are
//! published in the order packs, staged manifests and locators, a durable commit of the
//! index (an fsync of `index.db`), each manifest then its locator, and the catalog.

use romlib_tests::*;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// One completed system call: `fsync` of a path, or `rename` of a path to another.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Fsync(String),
    Rename(String, String),
}

/// Runs `cmd` under strace and returns its fsyncs and renames in the order they finished
/// (paths absolute, as the fd's path or made so against `cwd`).
fn trace(cmd: &mut Command, cwd: &Path) -> Vec<Call> {
    let strace = Command::new("strace").arg("-V").output();
    assert!(
        strace.is_ok_and(|o| o.status.success()),
        "strace is missing: apt-get install strace (tests/run-all.sh installs it)"
    );
    let log = cwd.join("strace.log");
    let mut full = Command::new("strace");
    full.args(["-f", "-y", "-qq", "-s", "4096", "-o"])
        .arg(&log)
        .args([
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2",
            "--",
        ])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .current_dir(cwd);
    ok(full.output().unwrap());
    let text = std::fs::read_to_string(&log).unwrap();
    let mut pending: HashMap<String, String> = HashMap::new();
    let mut calls = Vec::new();
    for line in text.lines() {
        let (pid, rest) = line.trim().split_once(' ').unwrap_or(("", line));
        let rest = rest.trim_start();
        // A call another thread interrupted finishes on its "resumed" line.
        let whole = if let Some(start) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(pid.to_string(), start.to_string());
            continue;
        } else if rest.starts_with("<...") {
            let Some(start) = pending.remove(pid) else {
                continue;
            };
            let tail = rest.split_once("resumed>").map_or("", |x| x.1);
            format!("{start}{tail}")
        } else {
            rest.to_string()
        };
        if !whole.trim_end().ends_with("= 0") {
            continue;
        }
        let abs = |p: &str| {
            if p.starts_with('/') {
                p.to_string()
            } else {
                cwd.join(p).to_string_lossy().into_owned()
            }
        };
        if whole.starts_with("fsync(") || whole.starts_with("fdatasync(") {
            // fsync(5</abs/path>)
            if let Some(p) = whole.split_once('<').and_then(|(_, r)| r.split_once('>')) {
                calls.push(Call::Fsync(p.0.to_string()));
            }
        } else if whole.starts_with("rename") {
            // rename("a", "b"), renameat(AT_FDCWD, "a", AT_FDCWD, "b"), or
            // renameat2(5</dir/a>, "x", 4</dir/b>, "y", FLAGS): a name is relative to the
            // folder handle before it (strace -y prints its path), else to `cwd`.
            let names = at_paths(&whole);
            if let [from, to] = names.as_slice() {
                let resolve = |(dir, name): &(Option<String>, String)| match dir {
                    Some(d) if !name.starts_with('/') => format!("{d}/{name}"),
                    _ => abs(name),
                };
                calls.push(Call::Rename(resolve(from), resolve(to)));
            }
        }
    }
    calls
}

/// The quoted names of a traced call, each with the path of the folder handle given just
/// before it (`5</abs/dir>, "name"`), if any.
fn at_paths(call: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let mut rest = call;
    while let Some(q) = rest.find('"') {
        let (before, after) = (&rest[..q], &rest[q + 1..]);
        let Some(end) = after.find('"') else { break };
        let dir = before
            .trim_end()
            .strip_suffix(">,")
            .and_then(|b| b.rsplit_once('<'))
            .map(|(_, d)| d.to_string())
            .filter(|d| d.starts_with('/'));
        out.push((dir, after[..end].to_string()));
        rest = &after[end + 1..];
    }
    out
}

fn parent(p: &str) -> String {
    Path::new(p)
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The rules every writer follows: a temporary (`.tmp`, `.partial`, `.new`) is fsynced
/// before it is renamed, and every rename is followed by an fsync of its folder.
fn check_rules(calls: &[Call], what: &str) {
    assert!(
        calls.iter().any(|c| matches!(c, Call::Rename(..))),
        "{what}: no rename traced: {calls:?}"
    );
    for (i, c) in calls.iter().enumerate() {
        let Call::Rename(from, to) = c else { continue };
        let temp = [".tmp", ".partial", ".new"]
            .iter()
            .any(|s| from.ends_with(s));
        if temp {
            assert!(
                calls[..i].contains(&Call::Fsync(from.clone())),
                "{what}: {from} renamed before it was fsynced"
            );
        }
        assert!(
            calls[i + 1..].contains(&Call::Fsync(parent(to))),
            "{what}: the folder of {to} is not fsynced after the rename"
        );
    }
}

/// Where the first rename whose target ends with `suffix` is in `calls`.
fn renamed(calls: &[Call], pred: impl Fn(&str) -> bool) -> Vec<usize> {
    calls
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c {
            Call::Rename(_, to) if pred(to) => Some(i),
            _ => None,
        })
        .collect()
}

/// The publication order of a library (SPEC section 6).
fn check_library_order(calls: &[Call], lib: &Path, what: &str) {
    let lib = lib.to_string_lossy().into_owned();
    let packs = renamed(calls, |t| t.starts_with(&format!("{lib}/packs/pack-")));
    let manifests = renamed(calls, |t| t.ends_with(".manifest"));
    let locators = renamed(calls, |t| t.ends_with(".locator"));
    let catalog = renamed(calls, |t| t.ends_with("/catalog.txt"));
    let index = Call::Fsync(format!("{lib}/index.db"));
    assert!(!manifests.is_empty(), "{what}: {calls:?}");
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Rename(_, to) if to.ends_with("index.db"))),
        "{what}: the index is written in place, never renamed: {calls:?}"
    );
    for &m in &manifests {
        let Call::Rename(tmp, to) = &calls[m] else {
            unreachable!()
        };
        // Every pack sealed before a manifest; the manifest and its locator staged (both
        // fsynced), then the index made durable, then the renames.
        assert!(
            packs.iter().all(|&p| p < m),
            "{what}: a pack renamed after a manifest"
        );
        let loc_to = to.replace(".manifest", ".locator");
        let loc_tmp = tmp.replace(".manifest.tmp", ".locator.tmp");
        let staged = calls[..m]
            .iter()
            .rposition(|c| *c == Call::Fsync(loc_tmp.clone()))
            .unwrap_or_else(|| panic!("{what}: {loc_tmp} not fsynced before {to}"));
        assert!(
            calls[staged..m].contains(&index),
            "{what}: no durable index commit between staging and renaming {to}"
        );
        let l = locators
            .iter()
            .copied()
            .find(|&l| l > m && matches!(&calls[l], Call::Rename(_, t) if *t == loc_to))
            .unwrap_or_else(|| panic!("{what}: {loc_to} not renamed after {to}"));
        assert!(
            !manifests.iter().any(|&o| m < o && o < l),
            "{what}: {loc_to} renamed after another manifest"
        );
    }
    for &c in &catalog {
        assert!(
            *manifests.last().unwrap() < c,
            "{what}: the catalog before a manifest"
        );
    }
}

#[test]
fn builds_and_installs_fsync_in_the_documented_order() {
    let w = Workspace::new();
    let mut r = Rng::new(600);
    let b = r.text(600_000);
    write(&w.p("in"), "a/a.bin", &r.bytes(300_000));
    write(&w.p("in"), "b/b.iso", &b);
    let build = |what: &str| {
        let mut cmd = linux_host_cmd();
        cmd.args([
            "build",
            "-i",
            &w.s("in"),
            "-o",
            &w.s("lib"),
            "--signing-key",
            &w.s("k.sec"),
            "--pack-size",
            "1048576",
            "-q",
        ]);
        let calls = trace(&mut cmd, w.dir.path());
        check_rules(&calls, what);
        check_library_order(&calls, &w.p("lib"), what);
    };
    build("fresh build");
    // An incremental build: a revision of b and a new game c.
    write(&w.p("in"), "b/b.iso", &r.variant(&b, 10, 50));
    write(&w.p("in"), "c/c.bin", &r.bytes(700_000));
    build("incremental build");

    // An upgrade install beside a save file.
    let install = |lib: &str| {
        let mut cmd = device_cmd();
        cmd.args([
            "install",
            "-r",
            &w.s(lib),
            "-g",
            "b",
            "--install-dir",
            &w.s("inst"),
            "--trusted-key",
            &w.s("k.pub"),
        ]);
        cmd
    };
    ok(install("lib").output().unwrap());
    write(&w.p("inst"), "b/b.srm", b"save");
    write(&w.p("in"), "b/b.iso", &r.variant(&b, 10, 50));
    ok(w.build("in", "lib", &["-q"]));
    let calls = trace(&mut install("lib"), w.dir.path());
    check_rules(&calls, "upgrade install");
    let inst = w.p("inst").to_string_lossy().into_owned();
    let staged = format!("{inst}/.romlib-staging/b.new");
    let swap = renamed(&calls, |t| t == format!("{inst}/b"));
    let swap = swap
        .iter()
        .copied()
        .find(|&i| matches!(&calls[i], Call::Rename(f, _) if *f == staged))
        .expect("the staged game renamed into place");
    // Before the swap: the game's file, the marker (written as .part, fsynced, renamed)
    // and the staged folder, all fsynced.
    let marker = format!("{staged}/.romlib-installed");
    let part = format!("{marker}.part");
    let renamed_at = calls
        .iter()
        .position(|c| *c == Call::Rename(part.clone(), marker.clone()))
        .expect("the marker renamed from .part");
    assert!(
        calls[..renamed_at].contains(&Call::Fsync(part.clone())),
        "{part} not fsynced before its rename: {calls:?}"
    );
    for p in [format!("{staged}/b.iso"), staged.clone()] {
        assert!(
            calls[..swap].contains(&Call::Fsync(p.clone())),
            "{p} not fsynced before the swap: {calls:?}"
        );
    }
    // The save is carried only after the swap is durable.
    let carried = renamed(&calls, |t| t.ends_with("/b/b.srm"));
    assert_eq!(carried.len(), 1, "{calls:?}");
    assert!(calls[swap..carried[0]].contains(&Call::Fsync(inst.clone())));
}
