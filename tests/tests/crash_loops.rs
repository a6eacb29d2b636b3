//! `kill -9` at random moments, many times over, of an incremental build, an import, an
//! install (an upgrade, with a save file beside the game) and an uninstall. After every
//! kill: what was published before is readable by every command without any write (the
//! index is byte-for-byte untouched by the readers), every installed game is the old
//! complete version or the new complete one, no file of the user's is lost, and a rerun
//! completes. `ROMLIB_CRASH_ITERS` sets the iterations of each loop (default 50).

use romlib_tests::*;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn iterations() -> u64 {
    std::env::var("ROMLIB_CRASH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

/// The command for `bin_name` (`romlib-device` perhaps an ARM build under QEMU).
fn command(bin_name: &str) -> Command {
    match bin_name {
        "romlib-device" => device_cmd(),
        _ => Command::new(bin(bin_name)),
    }
}

fn spawn(bin_name: &str, args: &[String]) -> Child {
    command(bin_name)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// How long `bin_name args` takes to finish (run once, to completion).
fn time_of(bin_name: &str, args: &[String]) -> Duration {
    let t = Instant::now();
    let st = spawn(bin_name, args).wait().unwrap();
    assert!(st.success(), "{bin_name} {args:?} failed");
    t.elapsed()
}

/// Kills `child` after a random share (seeded by `i`) of `full`; true when it was
/// still running then. A child that finishes first (the machine got faster) sets `full`
/// to the time it took, so the next kills land inside a run again.
fn kill_after(mut child: Child, full: &mut Duration, i: u64) -> bool {
    let share = (Rng::new(1000 + i).next_u64() % 1000) as f64 / 1000.0;
    let (start, at) = (Instant::now(), full.mul_f64(share));
    while start.elapsed() < at {
        if child.try_wait().unwrap().is_some() {
            *full = start.elapsed();
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let running = child.try_wait().unwrap().is_none();
    if running {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    running
}

/// Runs `bin_name args` to completion.
fn run(bin_name: &str, args: &[String]) -> std::process::Output {
    command(bin_name).args(args).output().unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The readers' side after a kill: games `published` install from `lib` exactly as their
/// input in `input`, `verify` finds no problem, and none of this writes to the index.
fn readable_without_writing(w: &Workspace, lib: &str, input: &str, published: &[&str]) {
    let before = fs::read(w.p(lib).join("index.db")).unwrap();
    assert_published(w, &w.p(lib), input, published, "after a kill");
    let after = fs::read(w.p(lib).join("index.db")).unwrap();
    assert!(before == after, "a reader changed the index");
}

/// Input `in`: games a and b. Input `in2`: the same with b revised and c, d added.
fn inputs(w: &Workspace) {
    let mut r = Rng::new(400);
    let a = r.bytes(600_000);
    let b = r.text(2 << 20);
    let b2 = r.variant(&b, 30, 200);
    for (dir, bb) in [("in", &b), ("in2", &b2)] {
        write(&w.p(dir), "a/a.bin", &a);
        write(&w.p(dir), "b/b.iso", bb);
    }
    write(&w.p("in2"), "c/c.bin", &r.bytes(1 << 20));
    write(&w.p("in2"), "d/d.bin", &r.text(3 << 20));
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
}

#[test]
fn killed_incremental_builds_leave_the_published_library_readable() {
    let w = Workspace::new();
    inputs(&w);
    let args = strings(&[
        "build",
        "-i",
        &w.s("in2"),
        "-o",
        &w.s("L"),
        "--signing-key",
        &w.s("k.sec"),
        "--avg-chunk",
        "4096",
        "--pack-size",
        "1048576",
        "-q",
    ]);
    copy_tree(&w.p("lib"), &w.p("L"));
    let mut full = time_of("romlib", &args);
    let mut killed = 0;
    for i in 0..iterations() {
        let _ = fs::remove_dir_all(w.p("L"));
        copy_tree(&w.p("lib"), &w.p("L"));
        killed += u64::from(kill_after(spawn("romlib", &args), &mut full, i));
        // a was published before the build and is unchanged by it; b is the old or the
        // new version, whichever the manifest says (both install verified).
        readable_without_writing(&w, "L", "in", &["a"]);
        // Every tenth time, the next run completes the library.
        if i % 10 == 9 {
            ok(run("romlib", &args));
            verify_ok(&w, "L");
            readable_without_writing(&w, "L", "in2", &["a", "b", "c", "d"]);
        }
    }
    assert!(
        killed * 2 >= iterations(),
        "only {killed} builds were killed mid-way"
    );
    eprintln!(
        "kill -9: {killed} of {} builds killed mid-way",
        iterations()
    );
}

#[test]
fn killed_imports_leave_the_published_library_readable() {
    let w = Workspace::new();
    inputs(&w);
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
    let args = strings(&[
        "import",
        "-o",
        &w.s("L"),
        "--trusted-key",
        &w.s("k.pub"),
        "--signing-key",
        &w.s("k.sec"),
        "-q",
        &w.s("all.romlib"),
    ]);
    copy_tree(&w.p("lib"), &w.p("L"));
    let mut full = time_of("romlib", &args);
    let mut killed = 0;
    for i in 0..iterations() {
        let _ = fs::remove_dir_all(w.p("L"));
        copy_tree(&w.p("lib"), &w.p("L"));
        killed += u64::from(kill_after(spawn("romlib", &args), &mut full, i));
        readable_without_writing(&w, "L", "in", &["a"]);
        if i % 10 == 9 {
            ok(run("romlib", &args));
            readable_without_writing(&w, "L", "in2", &["a", "b", "c", "d"]);
        }
    }
    assert!(
        killed * 2 >= iterations(),
        "only {killed} imports were killed mid-way"
    );
    eprintln!(
        "kill -9: {killed} of {} imports killed mid-way",
        iterations()
    );
}

#[test]
fn killed_index_rebuilds_leave_the_library_readable_and_buildable() {
    // `rebuild-index` builds a new index beside the published one and renames it over it
    // last (SPEC section 5.1): a kill at any moment leaves the old index, or the new one,
    // never a half-written one, and locators rewritten whole or not at all.
    let w = Workspace::new();
    inputs(&w);
    ok(w.build(
        "in2",
        "lib",
        &["--avg-chunk", "4096", "--pack-size", "1048576", "-q"],
    ));
    let args = strings(&["rebuild-index", "-r", &w.s("L")]);
    let build = strings(&[
        "build",
        "-i",
        &w.s("in2"),
        "-o",
        &w.s("L"),
        "--signing-key",
        &w.s("k.sec"),
        "--avg-chunk",
        "4096",
        "-q",
        "--json",
    ]);
    copy_tree(&w.p("lib"), &w.p("L"));
    let mut full = time_of("romlib", &args);
    let mut killed = 0;
    for i in 0..iterations() {
        let _ = fs::remove_dir_all(w.p("L"));
        copy_tree(&w.p("lib"), &w.p("L"));
        killed += u64::from(kill_after(spawn("romlib", &args), &mut full, i));
        readable_without_writing(&w, "L", "in2", &["a", "b", "c", "d"]);
        // The next build finds everything stored (and the index it left whole).
        if i % 5 == 4 {
            let out = ok(run("romlib", &build));
            assert!(out.contains("\"new_chunks\":0,"), "{out}");
        }
        if i % 10 == 9 {
            ok(run("romlib", &args));
            verify_ok(&w, "L");
        }
    }
    assert!(
        killed * 2 >= iterations(),
        "only {killed} rebuilds were killed mid-way"
    );
    eprintln!(
        "kill -9: {killed} of {} index rebuilds killed mid-way",
        iterations()
    );
}

/// `romlib-device install` of game `b` from library `lib` into install folder `dir`.
fn install_b(w: &Workspace, lib: &str, dir: &str) -> Vec<String> {
    strings(&[
        "install",
        "-r",
        &w.s(lib),
        "-g",
        "b",
        "--install-dir",
        &w.s(dir),
        "--trusted-key",
        &w.s("k.pub"),
    ])
}

/// Whether the file system of `dir` swaps two folders in one step (renameat2 with
/// RENAME_EXCHANGE), as romlib-device's reinstall does where it can.
fn swaps_atomically(dir: &Path) -> bool {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    let (a, b) = (dir.join(".swap-probe-a"), dir.join(".swap-probe-b"));
    fs::create_dir_all(a.join("x")).unwrap();
    fs::create_dir_all(&b).unwrap();
    let ok = renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE).is_ok();
    assert_eq!(
        ok,
        b.join("x").is_dir(),
        "the probe's exchange did not swap"
    );
    fs::remove_dir_all(&a).unwrap();
    fs::remove_dir_all(&b).unwrap();
    eprintln!("{}: atomic folder swap: {ok}", dir.display());
    ok
}

/// The game files of an installed game folder (markers and the user's files aside).
fn game_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    snapshot(dir)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".bin") || n.ends_with(".iso"))
        .collect()
}

#[test]
fn killed_installs_and_uninstalls_show_the_old_or_the_new_game_and_lose_no_save() {
    let w = Workspace::new();
    inputs(&w);
    ok(w.build("in2", "lib2", &["--avg-chunk", "4096", "-q"]));
    let install = |lib: &str| install_b(&w, lib, "inst");
    let (v1, v2) = (snapshot(&w.p("in/b")), snapshot(&w.p("in2/b")));
    ok(run("romlib-device", &install("lib")));
    let save = b"slot 1: 99 lives".to_vec();
    write(&w.p("inst"), "b/saves/b.srm", &save);
    let mut full = time_of("romlib-device", &install("lib2"));
    // Where the save may be: wherever the install code says a user's file can be while an
    // operation runs or after one was killed (the game's folder, or a staging entry whose
    // files the next command carries back), taken from its one description of them.
    let homes = romlib_device::install::names::user_file_homes("b");
    assert!(homes.len() >= 4, "{homes:?}");
    let save_kept = || {
        homes.iter().any(|home| {
            fs::read(w.p("inst").join(home).join("saves/b.srm")).is_ok_and(|b| b == save)
        })
    };
    let atomic = swaps_atomically(&w.p("inst"));
    let mut killed = 0;
    for i in 0..iterations() {
        // Upgrade and downgrade in turn.
        let lib = if i % 2 == 0 { "lib" } else { "lib2" };
        killed += u64::from(kill_after(
            spawn("romlib-device", &install(lib)),
            &mut full,
            i,
        ));
        let shown = game_files(&w.p("inst/b"));
        // Where folders cannot be swapped in one step, a kill between the two renames
        // leaves no game until the next command rolls the swap back or forward.
        assert!(
            shown == v1 || shown == v2 || (!atomic && shown.is_empty()),
            "iteration {i}: {}",
            if shown.is_empty() {
                "no game at all"
            } else {
                "a mix of versions"
            }
        );
        assert!(save_kept(), "iteration {i}: the save is gone");
        // The next command (any install) finishes the job: the save is back in place.
        ok(run("romlib-device", &install(lib)));
        assert_eq!(fs::read(w.p("inst/b/saves/b.srm")).unwrap(), save);
        assert!(!w.p("inst/.romlib-staging").exists());
    }
    assert!(
        killed * 2 >= iterations(),
        "only {killed} installs were killed mid-way"
    );
    eprintln!(
        "kill -9: {killed} of {} installs killed mid-way",
        iterations()
    );

    // Uninstall: the game is complete or gone, the save stays either way.
    let uninstall = strings(&["uninstall", "-t", "b", "--install-dir", &w.s("inst")]);
    let mut quick = time_of("romlib-device", &uninstall);
    for i in 0..iterations() {
        ok(run("romlib-device", &install("lib2")));
        assert_eq!(fs::read(w.p("inst/b/saves/b.srm")).unwrap(), save);
        kill_after(spawn("romlib-device", &uninstall), &mut quick, i);
        let shown = game_files(&w.p("inst/b"));
        assert!(
            shown.is_empty() || shown == v2,
            "iteration {i}: half uninstalled"
        );
        assert!(save_kept(), "iteration {i}: the save is gone");
    }
    ok(run("romlib-device", &install("lib2")));
    let out = ok(run("romlib-device", &uninstall));
    assert!(out.contains("left in") && out.contains("saves"), "{out}");
    assert_eq!(fs::read(w.p("inst/b/saves/b.srm")).unwrap(), save);
    assert!(game_files(&w.p("inst/b")).is_empty());
}

/// A crash right after the one-step swap of a reinstall, before the replaced copy took
/// its `.old` name, leaves `.romlib-staging/<title>.new` holding the old version (with
/// the user's save) or an uninstalled game's kept folder. The next command finishes the
/// swap: the new version stays and the save is carried into it. A completed install that
/// was never swapped in is only dropped, the live game and its save untouched.
#[test]
fn a_crash_just_after_the_swap_is_finished_by_the_next_command() {
    let w = Workspace::new();
    inputs(&w);
    ok(w.build("in2", "lib2", &["--avg-chunk", "4096", "-q"]));
    let install = |lib: &str, dir: &str| ok(run("romlib-device", &install_b(&w, lib, dir)));
    let cleanup = || {
        ok(run(
            "romlib-device",
            &strings(&["cleanup", "--install-dir", &w.s("inst")]),
        ))
    };
    let v2 = snapshot(&w.p("in2/b"));
    let staged = w.p("inst/.romlib-staging/b.new");
    install("lib2", "inst");
    for (case, uninstall) in [("old version", false), ("kept folder", true)] {
        install("lib", "old");
        let save = format!("{case}: 3 lives").into_bytes();
        write(&w.p("old"), "b/saves/b.srm", &save);
        if uninstall {
            ok(run(
                "romlib-device",
                &strings(&["uninstall", "-t", "b", "--install-dir", &w.s("old")]),
            ));
            assert!(w.p("old/b/.romlib-kept").is_file(), "{case}");
        }
        let _ = fs::remove_file(w.p("inst/b/saves/b.srm"));
        fs::create_dir_all(w.p("inst/.romlib-staging")).unwrap();
        fs::rename(w.p("old/b"), &staged).unwrap();
        let listed = ok(run(
            "romlib-device",
            &strings(&["list-games", "--install-dir", &w.s("inst")]),
        ));
        assert!(
            listed.contains("a complete copy of b from an interrupted reinstall"),
            "{case}: {listed}"
        );
        let out = cleanup();
        assert!(
            out.contains("removed the replaced copy of b"),
            "{case}: {out}"
        );
        assert_eq!(game_files(&w.p("inst/b")), v2, "{case}");
        assert_eq!(fs::read(w.p("inst/b/saves/b.srm")).unwrap(), save, "{case}");
        assert!(!w.p("inst/.romlib-staging").exists(), "{case}");
    }
    // Completed but never swapped in: dropped, nothing carried.
    install("lib", "old");
    fs::create_dir_all(w.p("inst/.romlib-staging")).unwrap();
    fs::rename(w.p("old/b"), &staged).unwrap();
    let before = snapshot(&w.p("inst/b"));
    cleanup();
    assert_eq!(snapshot(&w.p("inst/b")), before);
    assert!(!w.p("inst/.romlib-staging").exists());
}

/// A disc of three files installed flat into a system folder (`--layout muos`), upgraded
/// and downgraded with `kill -9` at random moments, then uninstalled the same way. After a
/// kill every file of the disc there is one version's whole file (each is renamed into
/// place, never written there) and the save beside it is untouched; the next command
/// finishes the job: the disc is then one version throughout, or gone, and no staging is
/// left.
#[test]
fn killed_flat_installs_and_uninstalls_are_finished_by_the_next_command() {
    let w = Workspace::new();
    let mut r = Rng::new(410);
    let (t1, t2) = (r.bytes(1 << 20), r.text(2 << 20));
    let (u1, u2) = (r.variant(&t1, 30, 200), r.variant(&t2, 30, 200));
    let cue = b"FILE \"Disc (Track 1).bin\" BINARY\n  TRACK 01 MODE2/2352\n\
                FILE \"Disc (Track 2).bin\" BINARY\n  TRACK 02 AUDIO\n";
    for (dir, a, b) in [("in", &t1, &t2), ("in2", &u1, &u2)] {
        write(&w.p(dir), "psx/Disc.cue", cue);
        write(&w.p(dir), "psx/Disc (Track 1).bin", a);
        write(&w.p(dir), "psx/Disc (Track 2).bin", b);
    }
    for (input, lib) in [("in", "lib"), ("in2", "lib2")] {
        ok(w.build(input, lib, &["--avg-chunk", "4096", "-q"]));
    }
    let install = |lib: &str| {
        strings(&[
            "install",
            "-r",
            &w.s(lib),
            "-g",
            "Disc",
            "--install-dir",
            &w.s("card"),
            "--layout",
            "muos",
            "--trusted-key",
            &w.s("k.pub"),
        ])
    };
    let version = |input: &str| snapshot(&w.p(input).join("psx"));
    let (v1, v2) = (version("in"), version("in2"));
    let disc = || -> Vec<(String, Vec<u8>)> {
        snapshot(&w.p("card/psx"))
            .into_iter()
            .filter(|(n, _)| !n.contains('/') && !n.ends_with(".srm"))
            .collect()
    };
    ok(run("romlib-device", &install("lib")));
    let save = b"memory card 1".to_vec();
    write(&w.p("card"), "psx/Disc.srm", &save);
    let mut full = time_of("romlib-device", &install("lib2"));
    let mut killed = 0;
    for i in 0..iterations() {
        let (lib, want) = if i % 2 == 0 {
            ("lib", &v1)
        } else {
            ("lib2", &v2)
        };
        killed += u64::from(kill_after(
            spawn("romlib-device", &install(lib)),
            &mut full,
            i,
        ));
        for (name, bytes) in disc() {
            let whole = |v: &[(String, Vec<u8>)]| v.iter().any(|(n, b)| *n == name && *b == bytes);
            assert!(
                whole(&v1) || whole(&v2),
                "iteration {i}: {name} is no version's"
            );
        }
        assert_eq!(
            fs::read(w.p("card/psx/Disc.srm")).unwrap(),
            save,
            "iteration {i}"
        );
        ok(run("romlib-device", &install(lib)));
        assert_eq!(
            &disc(),
            want,
            "iteration {i}: not one version after the rerun"
        );
        assert!(!w.p("card/psx/.romlib-staging").exists(), "iteration {i}");
    }
    assert!(
        killed * 2 >= iterations(),
        "only {killed} installs were killed mid-way"
    );
    let uninstall = strings(&[
        "uninstall",
        "-g",
        "Disc",
        "--install-dir",
        &w.s("card"),
        "--layout",
        "muos",
    ]);
    let cleanup = strings(&["cleanup", "--install-dir", &w.s("card/psx")]);
    let mut quick = time_of("romlib-device", &uninstall);
    for i in 0..iterations() {
        ok(run("romlib-device", &install("lib2")));
        kill_after(spawn("romlib-device", &uninstall), &mut quick, i);
        ok(run("romlib-device", &cleanup));
        let shown = disc();
        assert!(
            shown.is_empty() || shown == v2,
            "iteration {i}: half uninstalled after cleanup"
        );
        assert_eq!(
            shown.is_empty(),
            !w.p("card/psx/.romlib-games/Disc").exists(),
            "iteration {i}: the record disagrees with the files"
        );
        assert_eq!(
            fs::read(w.p("card/psx/Disc.srm")).unwrap(),
            save,
            "iteration {i}"
        );
    }
}
