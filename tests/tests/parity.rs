//! Parity for libraries (SPEC section 13) with the real binaries on real files: damage as
//! disks and SD cards produce it (zeroed 64 KiB ranges and 4 KiB sectors, flipped bytes,
//! truncated and deleted files) is found by `romlib verify`, said to be repairable, and
//! undone byte for byte by `romlib repair`; damaged or foreign parity is never trusted;
//! damage beyond the parity and a full disk change nothing.

use romlib_tests::*;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Output};

/// Input `in`: a game with many small chunks (a manifest over 64 KiB), and two small ones.
fn input(w: &Workspace, dir: &str, seed: u64) {
    let mut r = Rng::new(seed);
    write(&w.p(dir), "big/disc.bin", &r.bytes(4 << 20));
    write(&w.p(dir), "small/game.bin", &r.text(200_000));
    write(&w.p(dir), "tiny/a.txt", &r.text(3000));
}

/// A library `lib` with parity at `percent`.
fn library(w: &Workspace, lib: &str, percent: &str) {
    input(w, "in", 7);
    ok(w.build(
        "in",
        lib,
        &["--avg-chunk", "1024", "-q", "--parity", percent],
    ));
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = romlib(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    (out.status.code(), text)
}

fn verify(w: &Workspace, lib: &str) -> (Option<i32>, String) {
    run(&[
        "verify",
        "-q",
        "-r",
        &w.s(lib),
        "--trusted-key",
        &w.s("k.pub"),
    ])
}

fn repair(w: &Workspace, lib: &str) -> (Option<i32>, String) {
    run(&["repair", "-r", &w.s(lib)])
}

fn zero(path: &Path, at: u64, len: usize) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&vec![0u8; len], at).unwrap();
}

fn install(w: &Workspace, lib: &str, game: &str) -> Output {
    let _ = fs::remove_dir_all(w.p("inst"));
    device(&[
        "install",
        "-r",
        &w.s(lib),
        "-g",
        game,
        "--install-dir",
        &w.s("inst"),
        "--trusted-key",
        &w.s("k.pub"),
    ])
}

/// Repairs `lib` and checks it is byte-identical to `pristine` and verifies clean.
fn repaired(w: &Workspace, lib: &str, pristine: &[(String, Vec<u8>)], ctx: &str) {
    let (code, text) = repair(w, lib);
    assert_eq!(code, Some(0), "{ctx}: {text}");
    assert!(text.contains("repaired "), "{ctx}: {text}");
    assert_eq!(
        &snapshot(&w.p(lib))[..],
        pristine,
        "{ctx}: not byte-identical"
    );
    let (code, text) = verify(w, lib);
    assert_eq!(code, Some(0), "{ctx}: verify after repair: {text}");
}

#[test]
fn a_zeroed_64k_range_in_a_pack_and_in_a_manifest_is_repaired_at_5_percent() {
    let w = Workspace::new();
    library(&w, "lib", "5");
    let (code, text) = verify(&w, "lib");
    assert_eq!(code, Some(0), "{text}");
    let pristine = snapshot(&w.p("lib"));
    let pack = w.p("lib/packs/pack-0001.pkg");
    let manifest = w.p("lib/games/big.manifest");
    assert!(fs::metadata(&manifest).unwrap().len() > 100 << 10);
    assert!(w.p("lib/parity/packs/pack-0001.pkg.par").is_file());
    assert!(w.p("lib/parity/games/big.manifest.par").is_file());

    zero(&pack, 1_000_000, 64 << 10);
    zero(&manifest, 20_000, 64 << 10);
    let (code, text) = verify(&w, "lib");
    assert_eq!(code, Some(1), "{text}");
    for f in ["pack-0001.pkg: damaged", "big.manifest: damaged"] {
        assert!(text.contains(f), "{f}: {text}");
    }
    assert_eq!(
        text.matches("repairable with parity: run romlib repair")
            .count(),
        2,
        "{text}"
    );
    repaired(&w, "lib", &pristine, "64 KiB ranges");
    ok(install(&w, "lib", "big"));
    assert_same_tree(&w.p("in/big"), &w.p("inst/big"));
    // Readers that know nothing of parity/ ignore it: listing on both binaries, export.
    let list = ok(device(&["list-games", "-r", &w.s("lib")]));
    assert!(list.contains("big") && !list.contains("par"), "{list}");
    let list = ok(romlib(&["list-games", "-r", &w.s("lib")]));
    assert!(list.contains("3 games"), "{list}");
    ok(romlib(&[
        "export",
        "-g",
        "big",
        "-r",
        &w.s("lib"),
        "-o",
        &w.s("big.romlib"),
    ]));
}

#[test]
fn sectors_flips_truncation_and_deletion_are_repaired() {
    let w = Workspace::new();
    library(&w, "lib", "5");
    let pristine = snapshot(&w.p("lib"));
    let pack = w.p("lib/packs/pack-0001.pkg");
    let len = fs::metadata(&pack).unwrap().len();

    // Zeroed 4 KiB sectors scattered through the pack, as an SD card loses them.
    for s in [0, 7, 100, 333, (len / 4096) - 1] {
        zero(&pack, s * 4096, 4096);
    }
    flip(&w.p("lib/games/small.manifest"), 50);
    let (code, text) = verify(&w, "lib");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("repairable with parity"), "{text}");
    repaired(&w, "lib", &pristine, "sectors and a flip");

    // A truncated pack and a deleted manifest (a small file's parity holds all of it).
    let f = fs::OpenOptions::new().write(true).open(&pack).unwrap();
    f.set_len(len - 20_000).unwrap();
    drop(f);
    fs::remove_file(w.p("lib/games/tiny.manifest")).unwrap();
    let (code, text) = verify(&w, "lib");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("tiny.manifest: missing; repairable"),
        "{text}"
    );
    repaired(&w, "lib", &pristine, "truncation and deletion");
    ok(install(&w, "lib", "tiny"));
}

#[test]
fn damaged_parity_is_reported_and_rewritten_never_trusted() {
    let w = Workspace::new();
    library(&w, "lib", "5");
    let par = w.p("lib/parity/packs/pack-0001.pkg.par");
    let good = fs::read(&par).unwrap();
    for at in [10u64, 60, 200, good.len() as u64 - 5] {
        fs::write(&par, &good).unwrap();
        flip(&par, at);
        let (code, text) = verify(&w, "lib");
        assert_eq!(code, Some(1), "flip at {at}: {text}");
        assert!(
            text.contains("parity of packs/pack-0001.pkg"),
            "{at}: {text}"
        );
        // The pack is intact: nothing to repair, and repair writes nothing.
        let before = snapshot(&w.p("lib"));
        let (code, text) = repair(&w, "lib");
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("parity: packs/pack-0001.pkg"), "{text}");
        assert_eq!(snapshot(&w.p("lib")), before);
        // `romlib parity` rewrites the damaged parity file, and only it.
        let out = ok(romlib(&["parity", "-r", &w.s("lib"), "--json"]));
        assert!(
            out.contains(r#""written":["packs/pack-0001.pkg"]"#),
            "{out}"
        );
        assert_eq!(fs::read(&par).unwrap(), good);
    }
    // A damaged pack whose parity is damaged too stays as it is, and says so.
    flip(&par, 60);
    let pack = w.p("lib/packs/pack-0001.pkg");
    zero(&pack, 8192, 4096);
    let before = snapshot(&w.p("lib"));
    let (code, text) = repair(&w, "lib");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("NOT REPAIRED: packs/pack-0001.pkg: damaged, and its parity cannot be used"),
        "{text}"
    );
    assert_eq!(snapshot(&w.p("lib")), before);
    // And `romlib parity` refuses to protect a damaged file.
    let (code, text) = run(&["parity", "-r", &w.s("lib")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("no parity written for a damaged file"),
        "{text}"
    );
}

#[test]
fn parity_from_another_library_is_reported_and_never_used() {
    let w = Workspace::new();
    library(&w, "lib", "5");
    input(&w, "other", 8);
    ok(w.build(
        "other",
        "lib2",
        &["--avg-chunk", "1024", "-q", "--parity", "5"],
    ));
    for rel in [
        "parity/packs/pack-0001.pkg.par",
        "parity/games/big.manifest.par",
    ] {
        fs::copy(w.p(&format!("lib2/{rel}")), w.p(&format!("lib/{rel}"))).unwrap();
    }
    let (code, text) = verify(&w, "lib");
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        text.matches("is stale or from another library").count(),
        2,
        "{text}"
    );
    // With the pack damaged, the foreign parity restores nothing and changes nothing.
    zero(&w.p("lib/packs/pack-0001.pkg"), 4096, 4096);
    let before = snapshot(&w.p("lib"));
    let (code, text) = repair(&w, "lib");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("NOT REPAIRED: packs/pack-0001.pkg"), "{text}");
    assert!(
        text.contains("beyond what its parity can restore"),
        "{text}"
    );
    assert_eq!(snapshot(&w.p("lib")), before);
    // A parity file renamed to protect another file is refused by its recorded name.
    fs::copy(
        w.p("lib2/parity/games/small.manifest.par"),
        w.p("lib/parity/games/tiny.manifest.par"),
    )
    .unwrap();
    let (_, text) = verify(&w, "lib");
    assert!(text.contains("was written for another file"), "{text}");
}

#[test]
fn damage_beyond_parity_is_a_clear_error_and_changes_nothing() {
    let w = Workspace::new();
    library(&w, "lib", "5");
    let pack = w.p("lib/packs/pack-0001.pkg");
    let len = fs::metadata(&pack).unwrap().len();
    // 20% of the pack in one burst: more than 5% parity can restore.
    zero(&pack, 4096, (len / 5) as usize);
    let before = snapshot(&w.p("lib"));
    let (code, text) = verify(&w, "lib");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("beyond what its parity can restore"),
        "{text}"
    );
    let (code, text) = repair(&w, "lib");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("NOT REPAIRED: packs/pack-0001.pkg"), "{text}");
    assert_eq!(snapshot(&w.p("lib")), before);
    // At 30% the same burst is repairable.
    let w = Workspace::new();
    library(&w, "lib", "30");
    let pristine = snapshot(&w.p("lib"));
    zero(&w.p("lib/packs/pack-0001.pkg"), 4096, (len / 5) as usize);
    repaired(&w, "lib", &pristine, "20% burst at 30% parity");
}

#[test]
fn incremental_builds_and_reruns_write_only_what_is_missing_or_stale() {
    let w = Workspace::new();
    library(&w, "lib", "5");
    let out = ok(romlib(&["parity", "-r", &w.s("lib"), "--json"]));
    assert!(out.contains(r#""written":[]"#), "{out}");
    // A percentage out of range is a usage error, before anything is read or built.
    fails(
        romlib(&["parity", "-r", &w.s("lib"), "--percent", "0"]),
        2,
        &["1 to 100"],
    );
    fails(w.build("in", "lib", &["--parity", "101"]), 2, &["1 to 100"]);
    let before = snapshot(&w.p("lib/parity"));
    // A new game and a changed one: a new pack, two manifests; no --parity needed.
    let mut r = Rng::new(99);
    write(&w.p("in"), "new/n.bin", &r.bytes(100_000));
    write(&w.p("in"), "tiny/b.txt", &r.text(500));
    let out = ok(w.build("in", "lib", &["--avg-chunk", "1024", "-q", "--json"]));
    for f in [
        "packs/pack-0002.pkg",
        "games/new.manifest",
        "games/tiny.manifest",
    ] {
        assert!(out.contains(&format!("\"{f}\"")), "{f}: {out}");
    }
    assert!(!out.contains("packs/pack-0001.pkg"), "{out}");
    assert!(!out.contains("games/big.manifest"), "{out}");
    let after = snapshot(&w.p("lib/parity"));
    for (name, bytes) in &before {
        if !name.contains("tiny") {
            assert!(
                after.contains(&(name.clone(), bytes.clone())),
                "{name} rewritten"
            );
        }
    }
    let (code, text) = verify(&w, "lib");
    assert_eq!(code, Some(0), "{text}");
    // A manifest rewritten by a build without parity (an older romlib) makes its parity
    // stale: verify says so, and `romlib parity` rewrites it, not the manifest.
    let old = fs::read(w.p("lib/parity/games/tiny.manifest.par")).unwrap();
    fs::remove_dir_all(w.p("lib/parity")).unwrap();
    fs::create_dir_all(w.p("lib/parity/games")).unwrap();
    write(&w.p("in"), "tiny/c.txt", &r.text(500));
    ok(w.build("in", "lib", &["--avg-chunk", "1024", "-q"]));
    fs::write(w.p("lib/parity/games/tiny.manifest.par"), &old).unwrap();
    let (code, text) = verify(&w, "lib");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("is stale or from another library"), "{text}");
    assert!(text.contains("has no parity"), "{text}");
    let manifest = fs::read(w.p("lib/games/tiny.manifest")).unwrap();
    ok(romlib(&["parity", "-r", &w.s("lib"), "--percent", "10"]));
    assert_eq!(fs::read(w.p("lib/games/tiny.manifest")).unwrap(), manifest);
    let (code, text) = verify(&w, "lib");
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn a_full_disk_during_repair_leaves_everything_as_it_was() {
    let w = Workspace::new();
    library(&w, "src", "5");
    let t = w.p("t");
    let Some(_m) = mount_tmpfs(&t, "64m", false) else {
        return;
    };
    copy_tree(&w.p("src"), &t.join("lib"));
    let pristine = snapshot(&t.join("lib"));
    zero(&t.join("lib/packs/pack-0001.pkg"), 500_000, 64 << 10);
    let before = snapshot(&t.join("lib"));
    let used: u64 = before
        .iter()
        .map(|(_, b)| (b.len() as u64).div_ceil(4096) * 4096)
        .sum();
    // Room for a third of the restored pack.
    let room = used
        + fs::metadata(t.join("lib/packs/pack-0001.pkg"))
            .unwrap()
            .len()
            / 3;
    let st = Command::new("mount")
        .args([
            "-o",
            &format!("remount,size={}", room.div_ceil(4096) * 4096 + 65536),
        ])
        .arg(&t)
        .status()
        .unwrap();
    assert!(st.success());
    let (code, text) = run(&["repair", "-r", &t.join("lib").to_string_lossy()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("NOT REPAIRED: packs/pack-0001.pkg"), "{text}");
    assert!(text.contains("No space left"), "{text}");
    assert_eq!(
        snapshot(&t.join("lib")),
        before,
        "a full disk changed the library"
    );
    let st = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&t)
        .status()
        .unwrap();
    assert!(st.success());
    let (code, text) = run(&["repair", "-r", &t.join("lib").to_string_lossy()]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(snapshot(&t.join("lib")), pristine);
}

#[test]
fn a_repair_killed_at_any_moment_leaves_the_file_damaged_or_restored_and_reruns() {
    let w = Workspace::new();
    library(&w, "lib", "5");
    let pristine = snapshot(&w.p("lib"));
    let pack = w.p("lib/packs/pack-0001.pkg");
    let restored = fs::read(&pack).unwrap();
    let damaged = {
        zero(&pack, 300_000, 64 << 10);
        fs::read(&pack).unwrap()
    };
    for delay_ms in [0u64, 5, 20, 60] {
        fs::write(&pack, &damaged).unwrap();
        let mut child = linux_host_cmd()
            .args(["repair", "-r", &w.s("lib")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Never a mix: the pack is the damaged one or the restored one.
        let now = fs::read(&pack).unwrap();
        assert!(now == damaged || now == restored, "{delay_ms} ms");
        let (code, text) = repair(&w, "lib");
        assert_eq!(code, Some(0), "{delay_ms} ms: {text}");
        assert_eq!(snapshot(&w.p("lib")), pristine, "{delay_ms} ms");
    }
}

#[test]
fn a_full_disk_while_writing_parity_is_one_line_and_leaves_no_partial_parity() {
    let w = Workspace::new();
    input(&w, "in", 7);
    ok(w.build("in", "src", &["--avg-chunk", "1024", "-q"]));
    let t = w.p("t");
    let Some(_m) = mount_tmpfs(&t, "64m", false) else {
        return;
    };
    copy_tree(&w.p("src"), &t.join("lib"));
    let before = snapshot(&t.join("lib"));
    let used: u64 = before
        .iter()
        .map(|(_, b)| (b.len() as u64).div_ceil(4096) * 4096)
        .sum();
    let st = Command::new("mount")
        .args(["-o", &format!("remount,size={}", used + 64 * 1024)])
        .arg(&t)
        .status()
        .unwrap();
    assert!(st.success());
    let lib = t.join("lib").to_string_lossy().into_owned();
    let out = romlib(&["parity", "-r", &lib]);
    let err = fails(out, 1, &["No space left"]);
    assert!(err.contains(".par.tmp") || err.contains(".par"), "{err}");
    assert_eq!(
        snapshot(&t.join("lib")),
        before,
        "a full disk left parity behind"
    );
    let st = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&t)
        .status()
        .unwrap();
    assert!(st.success());
    ok(romlib(&["parity", "-r", &lib]));
    let (code, text) = run(&["verify", "-q", "-r", &lib]);
    assert_eq!(code, Some(0), "{text}");
}
