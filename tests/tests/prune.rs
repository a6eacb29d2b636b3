//! `romlib prune` (issue 29): the space of chunks no game needs comes back, what is left
//! installs byte for byte from a folder, a portable file and HTTP, a dry run changes
//! nothing, and a prune killed at any moment (or out of room) leaves a library every
//! reader can use, which the next prune finishes. `ROMLIB_CRASH_ITERS` sets the kill
//! loop's iterations (default 50).

use romlib_tests::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Six games in `in`: alpha, its revision alpha-v2 (stored as deltas against it), and
/// four unrelated ones, in packs of 1 MiB so that some hold only removed games and some
/// a mix.
fn inputs(w: &Workspace) {
    let mut r = Rng::new(29);
    let base = r.bytes(900_000);
    write(&w.p("in"), "alpha/game.bin", &base);
    write(&w.p("in"), "alpha-v2/game.bin", &r.variant(&base, 8, 60));
    write(&w.p("in"), "beta/rom.bin", &r.bytes(700_000));
    write(&w.p("in"), "gamma/disc.iso", &r.text(1_200_000));
    write(&w.p("in"), "delta/d.bin", &r.bytes(800_000));
    write(&w.p("in"), "eps/e.txt", &r.text(600_000));
    ok(w.build("in", "lib", &build_args()));
}

fn build_args() -> Vec<&'static str> {
    vec!["--avg-chunk", "4096", "--pack-size", "1048576", "-q"]
}

/// Bytes of the library's packs.
fn pack_bytes(lib: &Path) -> u64 {
    fs::read_dir(lib.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn prune(w: &Workspace, lib: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["prune", "-r", lib, "--signing-key", "K", "--json"];
    let k = w.s("k.sec");
    args[4] = &k;
    args.extend_from_slice(extra);
    romlib(&args)
}

fn field(json: &str, name: &str) -> u64 {
    json.split(&format!("\"{name}\":"))
        .nth(1)
        .unwrap_or_else(|| panic!("{name} in {json}"))
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn remove(w: &Workspace, lib: &str, games: &[&str]) {
    let k = w.s("k.sec");
    let mut args = vec!["remove", "-r", lib, "--signing-key", &k, "-q"];
    for g in games {
        args.extend_from_slice(&["-g", g]);
    }
    ok(romlib(&args));
}

const LEFT: [&str; 4] = ["alpha-v2", "eps", "gamma", "beta"];

/// Every game left installs from folder `lib` exactly as its input: what a reader needs
/// after a prune was cut off (verify may still call the locators stale until the next
/// prune rewrites them).
fn installs(w: &Workspace, lib: &Path, ctx: &str) {
    for g in LEFT {
        assert_installs(
            w,
            &["-r", &lib.to_string_lossy()],
            g,
            "readers",
            &w.p("in"),
            ctx,
        );
    }
}

#[test]
fn prune_gives_back_what_no_game_needs_and_every_game_left_installs_everywhere() {
    let w = Workspace::new();
    inputs(&w);
    let lib = w.s("lib");
    let before = pack_bytes(&w.p("lib"));
    // alpha goes, but alpha-v2's deltas need its chunks: they stay as bases.
    remove(&w, &lib, &["alpha", "delta"]);
    // Nothing to do on a usage error; a dry run says what would go and changes nothing.
    fails(
        romlib(&["prune", "-r", &lib, "--max-unused", "101"]),
        2,
        &["--max-unused 101"],
    );
    let files = snapshot(&w.p("lib"));
    let out = romlib(&["prune", "-r", &lib, "--dry-run", "--json"]);
    romlib_tests::schema::stdout_obj(&romlib_tests::schema::schema(), &out);
    let dry = ok(out);
    assert!(dry.contains("\"dry_run\":true"), "{dry}");
    assert!(field(&dry, "reclaimed_bytes") > 0, "{dry}");
    assert!(
        snapshot(&w.p("lib")) == files,
        "a dry run changed the library"
    );
    // The prune itself.
    let out = prune(&w, &lib, &[]);
    romlib_tests::schema::stdout_obj(&romlib_tests::schema::schema(), &out);
    let out = ok(out);
    let reclaimed = field(&out, "reclaimed_bytes");
    assert!(reclaimed > 500_000, "{out}");
    assert_eq!(pack_bytes(&w.p("lib")), before - reclaimed, "{out}");
    // alpha-v2's deltas lost their base's game: they are stored whole, and alpha's chunks
    // go (what a build from scratch would have stored, and what a fresh install reads).
    assert!(field(&out, "deltas_stored_whole") > 0, "{out}");
    let ix = romlib_host::library::runs::open_library(&w.p("lib")).unwrap();
    let m = romlib_device::ManifestFile::open(&w.p("lib/games/alpha-v2.manifest")).unwrap();
    let mut t = m.unverified_chunks().unwrap();
    while let Some(c) = t.next_chunk().unwrap() {
        let e = ix.get(&c.hash).unwrap().unwrap();
        assert_ne!(e.method, romlib_format::pack::Method::ZstdDelta);
    }
    assert!(ix.all_deltas().unwrap().is_empty());
    drop(ix);
    // Packs were rewritten, so the locators of the games in them were too.
    assert!(!out.contains("\"packs_rewritten\":[]"), "{out}");
    assert!(field(&out, "locators_rewritten") > 0, "{out}");
    verify_ok(&w, "lib");
    assert_published(&w, &w.p("lib"), "in", &LEFT, "after prune");
    // Within 5% of a library built from scratch from the games left.
    for g in LEFT {
        copy_tree(&w.p("in").join(g), &w.p("rest").join(g));
    }
    ok(w.build("rest", "scratch", &build_args()));
    let (pruned, scratch) = (pack_bytes(&w.p("lib")), pack_bytes(&w.p("scratch")));
    assert!(
        pruned * 100 <= scratch * 105,
        "pruned {pruned} bytes against {scratch} from scratch"
    );
    // A portable file of the pruned library, and HTTP, give the same games.
    ok(romlib(&[
        "export",
        "-r",
        &lib,
        "--all",
        "-o",
        &w.s("all.romlib"),
        "--trusted-key",
        &w.s("k.pub"),
        "-q",
    ]));
    let (mut server, port, _out) = start_serve(&lib);
    for g in LEFT {
        for (from, dir) in [
            (w.s("all.romlib"), "via-file"),
            (format!("http://127.0.0.1:{port}/"), "via-http"),
        ] {
            let src = if from.starts_with("http") {
                "--from"
            } else {
                "-r"
            };
            ok(device(&[
                "install",
                src,
                &from,
                "-g",
                g,
                "--install-dir",
                &w.s(dir),
                "--trusted-key",
                &w.s("k.pub"),
            ]));
            assert_same_tree(&w.p("in").join(g), &w.p(dir).join(g));
        }
    }
    server.kill().unwrap();
    server.wait().unwrap();
    // A second prune finds nothing to do, and a build after it stores nothing new.
    let again = ok(prune(&w, &lib, &[]));
    assert_eq!(field(&again, "reclaimed_bytes"), 0, "{again}");
    let out = ok(w.build(
        "rest",
        "lib",
        &["--avg-chunk", "4096", "--pack-size", "1048576"],
    ));
    assert!(out.contains(" 0 new (0.0 MiB)"), "{out}");
}

const ALL: [&str; 6] = ["alpha", "alpha-v2", "beta", "gamma", "delta", "eps"];

/// [`inputs`], with alpha-v2 built a build (and a second) after the rest: deltas stored in
/// the same second as their base keep their direction (which one is newer cannot be told).
fn later_revision(w: &Workspace) {
    inputs(w);
    fs::rename(w.p("in/alpha-v2"), w.p("v2-later")).unwrap();
    fs::remove_dir_all(w.p("lib")).unwrap();
    ok(w.build("in", "lib", &build_args()));
    std::thread::sleep(Duration::from_millis(1100));
    fs::rename(w.p("v2-later"), w.p("in/alpha-v2")).unwrap();
    ok(w.build("in", "lib", &build_args()));
}

/// The chunks of one-file game `game` in library `lib`, in order, and whether the index
/// holds each as a delta.
fn chunks_of(lib: &Path, game: &str) -> Vec<(romlib_format::manifest::ChunkRef, bool)> {
    let ix = romlib_host::library::runs::open_library(lib).unwrap();
    let m = romlib_device::ManifestFile::open(&lib.join(format!("games/{game}.manifest"))).unwrap();
    let mut t = m.unverified_chunks().unwrap();
    let mut out = Vec::new();
    while let Some(c) = t.next_chunk().unwrap() {
        let e = ix.get(&c.hash).unwrap().unwrap();
        out.push((c, e.method == romlib_format::pack::Method::ZstdDelta));
    }
    out
}

fn deltas_of(lib: &Path, game: &str) -> usize {
    chunks_of(lib, game).iter().filter(|c| c.1).count()
}

#[test]
fn newest_whole_turns_revisions_around_and_every_game_still_installs() {
    let w = Workspace::new();
    later_revision(&w);
    let lib = w.s("lib");
    let all = ALL;
    let v2_before = chunks_of(&w.p("lib"), "alpha-v2");
    let v2_deltas = v2_before.iter().filter(|c| c.1).count();
    assert!(v2_deltas >= 3, "{v2_deltas} deltas");
    assert_eq!(deltas_of(&w.p("lib"), "alpha"), 0);
    let before = pack_bytes(&w.p("lib"));
    // A dry run says so, and changes nothing.
    let files = snapshot(&w.p("lib"));
    let dry = ok(prune(&w, &lib, &["--newest-whole", "--dry-run"]));
    assert_eq!(field(&dry, "deltas_turned") as usize, v2_deltas, "{dry}");
    assert!(
        snapshot(&w.p("lib")) == files,
        "a dry run changed the library"
    );
    // Without the flag nothing is turned around, and there is nothing to prune.
    let plain = ok(prune(&w, &lib, &[]));
    assert_eq!(field(&plain, "deltas_turned"), 0, "{plain}");
    assert!(
        snapshot(&w.p("lib")) == files,
        "an idle prune changed the library"
    );

    let out = prune(&w, &lib, &["--newest-whole"]);
    romlib_tests::schema::stdout_obj(&romlib_tests::schema::schema(), &out);
    let out = ok(out);
    assert_eq!(field(&out, "deltas_turned") as usize, v2_deltas, "{out}");
    // The newest revision is whole; the old one pays with deltas against it.
    assert_eq!(deltas_of(&w.p("lib"), "alpha-v2"), 0);
    let alpha_deltas = deltas_of(&w.p("lib"), "alpha");
    assert_eq!(
        alpha_deltas as u64,
        field(&out, "deltas_turned") - field(&out, "bases_kept_whole"),
        "{out}"
    );
    assert!(alpha_deltas > 0, "{out}");
    let after = pack_bytes(&w.p("lib"));
    assert!(
        after * 100 <= before * 105,
        "{before} bytes before, {after} after"
    );
    verify_ok(&w, "lib");
    assert_published(&w, &w.p("lib"), "in", &all, "after turning around");
    // Stable: a second prune turns nothing back, and a build stores nothing new.
    let again = ok(prune(&w, &lib, &["--newest-whole"]));
    assert_eq!(field(&again, "deltas_turned"), 0, "{again}");
    assert_eq!(field(&again, "reclaimed_bytes"), 0, "{again}");
    let built = ok(w.build("in", "lib", &build_args()));
    assert!(built.contains(" 0 new") || built.is_empty(), "{built}");
    // Later builds find the turned chunks as bases: every super-feature of each names a
    // whole chunk (its own rows were recorded, and the prune's compaction kept them over
    // the rows of its base, now a delta).
    let v2 = fs::read(w.p("in/alpha-v2/game.bin")).unwrap();
    let ix = romlib_host::library::runs::open_library(&w.p("lib")).unwrap();
    let mut at = 0;
    for (c, was_delta) in &v2_before {
        let bytes = &v2[at..at + c.len as usize];
        at += c.len as usize;
        let Some(sfs) = (*was_delta)
            .then(|| romlib_host::library::sketch::sketch(bytes))
            .flatten()
        else {
            continue;
        };
        for sf in sfs {
            let prefix = ix
                .sketch(sf)
                .unwrap()
                .expect("a super-feature of a turned chunk");
            let (_, e) = ix.by_prefix(&prefix).unwrap().unwrap();
            assert_ne!(e.method, romlib_format::pack::Method::ZstdDelta);
        }
    }
    drop(ix);
    // And a third revision is stored as deltas.
    let mut r = Rng::new(31);
    write(&w.p("in"), "alpha-v3/game.bin", &r.variant(&v2, 4, 40));
    ok(w.build("in", "lib", &build_args()));
    assert!(deltas_of(&w.p("lib"), "alpha-v3") > 0);
    assert_published(
        &w,
        &w.p("lib"),
        "in",
        &["alpha", "alpha-v2", "alpha-v3"],
        "a revision after turning around",
    );
}

#[test]
fn prune_refuses_what_it_cannot_count_and_changes_nothing() {
    let w = Workspace::new();
    inputs(&w);
    let lib = w.s("lib");
    remove(&w, &lib, &["beta"]);
    // A manifest that does not read: its chunks cannot be counted, so none may go.
    let m = w.p("lib/games/gamma.manifest");
    let good = fs::read(&m).unwrap();
    fs::write(&m, &good[..good.len() / 2]).unwrap();
    let files = snapshot(&w.p("lib"));
    fails(
        prune(&w, &lib, &[]),
        1,
        &["gamma.manifest", "nothing was pruned"],
    );
    let now = snapshot(&w.p("lib"));
    let changed: Vec<&String> = now
        .iter()
        .filter(|f| !files.contains(f))
        .map(|(n, _)| n)
        .collect();
    assert!(changed.is_empty(), "{changed:?}");
    fs::write(&m, &good).unwrap();
    let files = snapshot(&w.p("lib"));
    // Without the signing key, a library with a snapshot is refused before anything.
    fails(romlib(&["prune", "-r", &lib]), 1, &["--signing-key"]);
    assert!(snapshot(&w.p("lib")) == files);
    ok(prune(&w, &lib, &[]));
    verify_ok(&w, "lib");
}

fn iterations() -> u64 {
    std::env::var("ROMLIB_CRASH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

#[test]
fn killed_prunes_leave_every_game_readable_and_the_next_prune_finishes() {
    let w = Workspace::new();
    inputs(&w);
    remove(&w, &w.s("lib"), &["alpha", "delta"]);
    kill_loop(&w, &["--max-unused", "0"], &LEFT, iterations());
}

/// Kills `romlib prune` (with `extra`) on a copy of `lib` at random moments: after each
/// kill every game of `games` installs exactly; every tenth time the next prune finishes,
/// verify passes, and the packs hold what an uncut prune's hold.
fn kill_loop(w: &Workspace, extra: &[&str], games: &[&str], iterations: u64) {
    let mut args = vec![
        "prune".to_string(),
        "-r".into(),
        w.s("L"),
        "--signing-key".into(),
        w.s("k.sec"),
        "-q".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let spawn = || {
        Command::new(bin("romlib"))
            .args(&args)
            .env("ROMLIB_CONFIG_DIR", w.p("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let _ = fs::remove_dir_all(w.p("L"));
    copy_tree(&w.p("lib"), &w.p("L"));
    let t = Instant::now();
    assert!(spawn().wait().unwrap().success());
    let mut full = t.elapsed();
    let scratch_after = pack_bytes(&w.p("L"));
    let mut killed = 0;
    for i in 0..iterations {
        let _ = fs::remove_dir_all(w.p("L"));
        copy_tree(&w.p("lib"), &w.p("L"));
        let mut child = spawn();
        let share = (Rng::new(2900 + i).next_u64() % 1000) as f64 / 1000.0;
        let (start, at) = (Instant::now(), full.mul_f64(share));
        let mut finished = false;
        while start.elapsed() < at {
            if child.try_wait().unwrap().is_some() {
                full = start.elapsed();
                finished = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if !finished && child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        // Every game installs, exactly.
        for g in games {
            let l = w.s("L");
            assert_installs(
                w,
                &["-r", &l],
                g,
                "readers",
                &w.p("in"),
                &format!("kill {i}"),
            );
        }
        // Every tenth time, the next prune finishes the job.
        if i % 10 == 9 {
            assert!(spawn().wait().unwrap().success());
            verify_ok(w, "L");
            assert_published(w, &w.p("L"), "in", games, &format!("after kill {i}"));
            // The same live records as an uncut prune's, give or take a pack's header and
            // footer for a new pack sealed early.
            let now = pack_bytes(&w.p("L"));
            assert!(
                now <= scratch_after + 4096,
                "kill {i}: {now} against {scratch_after}"
            );
        }
    }
    assert!(
        killed * 2 >= iterations,
        "only {killed} prunes were killed mid-way"
    );
    eprintln!("kill -9: {killed} of {iterations} prunes killed mid-way");
}

#[test]
fn killed_prunes_turning_revisions_around_leave_every_game_readable() {
    let w = Workspace::new();
    later_revision(&w);
    kill_loop(
        &w,
        &["--newest-whole", "--max-unused", "0"],
        &ALL,
        iterations().div_ceil(2),
    );
    // The last one killed, finished.
    ok(prune(&w, &w.s("L"), &["--newest-whole"]));
    assert_eq!(deltas_of(&w.p("L"), "alpha-v2"), 0);
    assert!(deltas_of(&w.p("L"), "alpha") > 0);
}

#[test]
fn a_full_disk_during_a_prune_leaves_the_library_as_it_was() {
    let w = Workspace::new();
    inputs(&w);
    remove(&w, &w.s("lib"), &["alpha", "delta"]);
    let used = |dir: &Path| -> u64 {
        snapshot(dir)
            .iter()
            .map(|(_, b)| (b.len() as u64).div_ceil(4096) * 4096)
            .sum()
    };
    let base = used(&w.p("lib"));
    let mut failed = 0;
    const STEPS: u64 = 8;
    for k in 0..STEPS {
        let t = w.p("t");
        let Some(_m) = mount_tmpfs(&t, &format!("{}", base + (1 << 20)), false) else {
            return;
        };
        copy_tree(&w.p("lib"), &t.join("L"));
        // Room for the copy plus a share of what rewriting the mixed packs needs.
        let room = used(&t) + (3 << 20) * k / STEPS;
        let st = Command::new("mount")
            .args([
                "-o",
                &format!("remount,size={}", room.div_ceil(4096) * 4096),
                "tmpfs",
            ])
            .arg(&t)
            .status()
            .unwrap();
        assert!(st.success());
        let lib = t.join("L").to_string_lossy().into_owned();
        let out = prune(&w, &lib, &["--max-unused", "0"]);
        let ctx = format!("prune, {k}/{STEPS} of the room");
        if !out.status.success() {
            failed += 1;
            let err = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(err.contains("No space left"), "{ctx}: {err}");
            installs(&w, &t.join("L"), &ctx);
            // With room again, the next prune completes.
            let st = Command::new("mount")
                .args(["-o", "remount,size=64m", "tmpfs"])
                .arg(&t)
                .status()
                .unwrap();
            assert!(st.success());
            ok(prune(&w, &lib, &[]));
            verify_ok(&w, &t.join("L").to_string_lossy());
            assert_published(&w, &t.join("L"), "in", &LEFT, &ctx);
        }
    }
    assert!(failed >= 2, "only {failed} prunes met a full disk");
}

#[test]
fn a_pack_id_is_never_used_twice() {
    // The newest pack holds only a removed game: the prune deletes it, and the next build
    // does not give its id to another pack (a bucket or a device may still know it).
    let w = Workspace::new();
    let mut r = Rng::new(31);
    write(&w.p("in"), "a/a.bin", &r.bytes(200_000));
    ok(w.build("in", "lib", &build_args()));
    write(&w.p("in"), "b/b.bin", &r.bytes(200_000));
    ok(w.build("in", "lib", &build_args()));
    assert!(w.p("lib/packs/pack-0002.pkg").exists());
    remove(&w, &w.s("lib"), &["b"]);
    fs::remove_dir_all(w.p("in/b")).unwrap();
    let out = ok(prune(&w, &w.s("lib"), &[]));
    assert!(out.contains("\"packs_deleted\":[2]"), "{out}");
    assert!(!w.p("lib/packs/pack-0002.pkg").exists());
    write(&w.p("in"), "c/c.bin", &r.bytes(200_000));
    ok(w.build("in", "lib", &build_args()));
    assert!(!w.p("lib/packs/pack-0002.pkg").exists());
    assert!(w.p("lib/packs/pack-0003.pkg").exists());
    verify_ok(&w, "lib");
}

#[test]
fn a_damaged_pack_is_stored_again_from_the_input_then_pruned() {
    // One flipped byte in a pack that parity cannot help with (the library has none): a
    // build with --repair stores again every chunk that pack holds, from the input; the
    // prune after it deletes the pack; verify then says OK, and every game installs.
    let w = Workspace::new();
    inputs(&w);
    let lib = w.s("lib");
    let pack = w.p("lib/packs/pack-0002.pkg");
    flip(&pack, fs::metadata(&pack).unwrap().len() / 2);
    let v = romlib(&["verify", "-q", "-r", &lib, "--trusted-key", &w.s("k.pub")]);
    assert_eq!(v.status.code(), Some(1));
    // A prune would have to copy that pack's live records: it refuses, naming it.
    remove(&w, &lib, &["delta"]);
    let out = prune(&w, &lib, &["--max-unused", "0"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("pack-0002.pkg") && text.contains("--repair"),
        "{text}"
    );
    let mut args = build_args();
    args.extend(["--repair", "--json"]);
    args.retain(|a| *a != "-q");
    fs::remove_dir_all(w.p("in/delta")).unwrap();
    let out = ok(w.build("in", "lib", &args));
    assert!(out.contains("\"damaged_packs\":[2]"), "{out}");
    assert!(field(&out, "repaired_chunks") > 0, "{out}");
    ok(prune(&w, &lib, &[]));
    assert!(!pack.exists(), "the damaged pack is gone");
    verify_ok(&w, "lib");
    for g in ["alpha", "alpha-v2", "beta", "gamma", "eps"] {
        assert_installs(&w, &["-r", &lib], g, "readers", &w.p("in"), "repaired");
    }
}

#[test]
fn a_library_with_parity_keeps_it_current_through_a_prune() {
    // New packs get parity, the deleted packs' parity goes, and verify (which checks every
    // pack against its parity) says OK.
    let w = Workspace::new();
    let mut r = Rng::new(33);
    let base = r.bytes(700_000);
    write(&w.p("in"), "alpha/game.bin", &base);
    write(&w.p("in"), "beta/rom.bin", &r.bytes(900_000));
    write(&w.p("in"), "gamma/disc.iso", &r.text(800_000));
    let mut args = build_args();
    args.extend(["--parity", "5"]);
    ok(w.build("in", "lib", &args));
    remove(&w, &w.s("lib"), &["beta"]);
    let out = ok(prune(&w, &w.s("lib"), &["--max-unused", "0"]));
    assert!(!out.contains("\"packs_written\":[]"), "{out}");
    let packs: Vec<String> = fs::read_dir(w.p("lib/packs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut parity: Vec<String> = fs::read_dir(w.p("lib/parity/packs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    parity.sort();
    let mut want: Vec<String> = packs.iter().map(|p| format!("{p}.par")).collect();
    want.sort();
    assert_eq!(parity, want);
    verify_ok(&w, "lib");
}
