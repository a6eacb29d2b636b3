//! A full disk at every write phase: the library (of a build or an import) or the install
//! folder sits on a tmpfs whose size is swept from what it already holds to what the run
//! needs, so ENOSPC strikes while packs, the index, manifests, locators,
//! the catalog, staged game files or the completion marker are written. Each failing run
//! must say so in one line, leave what was published (or installed) readable and intact,
//! and the next run with room must complete.

use romlib_tests::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Steps of each sweep.
const STEPS: u64 = 12;

fn remount(dir: &Path, bytes: u64) {
    let st = Command::new("mount")
        .args(["-o", &format!("remount,size={bytes}"), "tmpfs"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "remount {} to {bytes}", dir.display());
}

/// Bytes the files under `dir` take, in whole 4 KiB pages (as tmpfs counts them).
fn used(dir: &Path) -> u64 {
    snapshot(dir)
        .iter()
        .map(|(_, b)| (b.len() as u64).div_ceil(4096) * 4096)
        .sum()
}

/// Input `in`: games a and b; `in2`: b revised, c and d added. Library `lib` from `in`.
fn inputs(w: &Workspace) {
    let mut r = Rng::new(500);
    let a = r.bytes(300_000);
    let b = r.text(1 << 20);
    let b2 = r.variant(&b, 20, 100);
    for (dir, bb) in [("in", &b), ("in2", &b2)] {
        write(&w.p(dir), "a/a.bin", &a);
        write(&w.p(dir), "b/b.iso", bb);
    }
    write(&w.p("in2"), "c/c.bin", &r.bytes(400_000));
    write(&w.p("in2"), "d/d.bin", &r.text(1 << 20));
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
}

/// The one-line error of a run that ran out of room.
fn out_of_room(out: std::process::Output, ctx: &str) {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{ctx}: {err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("romlib: trusting"))
        .collect();
    assert_eq!(lines.len(), 1, "{ctx}: one line expected: {err}");
    assert!(err.contains("No space left"), "{ctx}: {err}");
}

/// Sweeps the room left for `run` (a build or an import into `t/L`) from nothing to all
/// it needs.
fn sweep(w: &Workspace, what: &str, run: &dyn Fn(&Path) -> std::process::Output) {
    // What the run needs, measured on an ordinary disk.
    copy_tree(&w.p("lib"), &w.p("measure"));
    ok(run(&w.p("measure")));
    let (base, need) = (used(&w.p("lib")), used(&w.p("measure")));
    assert!(need > base, "{what}: the run adds nothing");
    let mut failed = 0;
    for k in 0..STEPS {
        let t = w.p("t");
        let Some(_m) = mount_tmpfs(&t, &format!("{}", base + 16 * 4096), false) else {
            return;
        };
        copy_tree(&w.p("lib"), &t.join("L"));
        // Room for the copy plus a share of what the run adds (and the copy of the index it
        // makes), in whole pages.
        let room = used(&t) + (need - base + 64 * 1024) * k / STEPS;
        remount(&t, room.div_ceil(4096) * 4096);
        let out = run(&t.join("L"));
        let ctx = format!("{what}, {k}/{STEPS} of the room");
        if !out.status.success() {
            failed += 1;
            out_of_room(out, &ctx);
            assert_published(w, &t.join("L"), "in", &["a", "b"], &ctx);
            // With room again, the next run completes.
            remount(&t, 2 * need + (1 << 20));
            ok(run(&t.join("L")));
            assert_published(w, &t.join("L"), "in2", &["a", "b", "c", "d"], &ctx);
        }
    }
    assert!(
        failed >= STEPS / 2,
        "{what}: only {failed} runs met a full disk"
    );
}

#[test]
fn a_full_disk_during_a_build_or_an_import_leaves_the_library_as_published() {
    let w = Workspace::new();
    inputs(&w);
    sweep(&w, "build", &|lib| {
        romlib(&[
            "build",
            "-i",
            &w.s("in2"),
            "-o",
            &lib.to_string_lossy(),
            "--signing-key",
            &w.s("k.sec"),
            "--avg-chunk",
            "4096",
            "-q",
        ])
    });
    ok(w.build("in2", "lib2", &["--avg-chunk", "4096", "-q"]));
    ok(romlib(&[
        "export",
        "-r",
        &w.s("lib2"),
        "--all",
        "-o",
        &w.s("all.romlib"),
        "--trusted-key",
        &w.s("k.pub"),
        "-q",
    ]));
    let _ = fs::remove_dir_all(w.p("measure"));
    sweep(&w, "import", &|lib| {
        romlib(&[
            "import",
            "-o",
            &lib.to_string_lossy(),
            "--trusted-key",
            &w.s("k.pub"),
            "--signing-key",
            &w.s("k.sec"),
            "-q",
            &w.s("all.romlib"),
        ])
    });
}

#[test]
fn a_full_card_during_an_upgrade_keeps_the_old_version_and_the_saves() {
    let w = Workspace::new();
    inputs(&w);
    ok(w.build("in2", "lib2", &["--avg-chunk", "4096", "-q"]));
    let install = |lib: &str| {
        device(&[
            "install",
            "-r",
            &w.s(lib),
            "-g",
            "b",
            "--install-dir",
            &w.s("card"),
            "--trusted-key",
            &w.s("k.pub"),
            // The sweep is of the writes: past the check that refuses a game the card has
            // no room for before writing (tests/tests/device.rs and cards.rs test that).
            "--no-room-check",
        ])
    };
    let save = b"hall of fame".to_vec();
    let mut failed = 0;
    for k in 0..STEPS {
        let card = w.p("card");
        let Some(_m) = mount_tmpfs(&card, "8m", false) else {
            return;
        };
        ok(install("lib"));
        write(&card, "b/b.srm", &save);
        // Room for a share of the new version's staged copy.
        let room = used(&card) + (1 << 20) * k / STEPS + 8192;
        remount(&card, room.div_ceil(4096) * 4096);
        let out = install("lib2");
        let ctx = format!("upgrade, {k}/{STEPS} of the room");
        if !out.status.success() {
            failed += 1;
            out_of_room(out, &ctx);
            // The old version, whole, with the save; nothing else visible.
            let shown: Vec<_> = snapshot(&card.join("b"))
                .into_iter()
                .filter(|(n, _)| n != ".romlib-installed" && n != "b.srm")
                .collect();
            assert_eq!(shown, snapshot(&w.p("in/b")), "{ctx}");
            assert_eq!(fs::read(card.join("b/b.srm")).unwrap(), save, "{ctx}");
            let visible: Vec<String> = fs::read_dir(&card)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect();
            assert_eq!(visible, ["b"], "{ctx}");
            remount(&card, 8 << 20);
        }
        let out = ok(install("lib2"));
        assert!(out.contains("b.srm"), "{ctx}: {out}");
        assert_eq!(fs::read(card.join("b/b.srm")).unwrap(), save, "{ctx}");
        assert!(!card.join(".romlib-staging").exists(), "{ctx}");
    }
    assert!(
        failed >= STEPS / 2,
        "only {failed} upgrades met a full card"
    );
}
