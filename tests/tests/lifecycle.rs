//! A library that changes: games leave it (`romlib remove`, `romlib build
//! --remove-missing`) with their index references, a removal cut off half way is finished
//! by the next command, and what stays installs and verifies as before.

use romlib_tests::*;
use std::fs;

fn games(lib: &str) -> Vec<String> {
    ok(romlib(&["list-games", "-r", lib, "--json"]))
        .split("\"title_id\": \"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

fn catalog(w: &Workspace) -> String {
    fs::read_to_string(w.p("lib/catalog.txt")).unwrap()
}

#[test]
fn remove_takes_games_out_with_their_references_and_keeps_the_rest_whole() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 5);
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
    let (lib, sk) = (w.s("lib"), w.s("k.sec"));
    assert_eq!(games(&lib), ["alpha", "alpha-v2", "beta"]);
    // An unknown title (here, the wrong case) is an error naming it and the closest
    // titles, and nothing is removed.
    let out = romlib(&[
        "remove",
        "-r",
        &lib,
        "-g",
        "beta",
        "-g",
        "ALPHA",
        "--signing-key",
        &sk,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no game \"ALPHA\""), "{err}");
    assert!(err.contains("closest: alpha"), "{err}");
    assert_eq!(games(&lib), ["alpha", "alpha-v2", "beta"]);
    // alpha shares most of its chunks with alpha-v2 and one file with beta: removing it
    // leaves only its own chunks unreferenced.
    let out = ok(romlib(&[
        "remove",
        "-r",
        &lib,
        "-g",
        "alpha",
        "--json",
        "--signing-key",
        &sk,
    ]));
    assert!(out.contains("\"op\":\"remove\""), "{out}");
    assert!(out.contains("\"removed\":[\"alpha\"]"), "{out}");
    let unref: u64 = out
        .split("\"unreferenced_chunks\":")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(unref > 0, "{out}");
    assert_eq!(games(&lib), ["alpha-v2", "beta"]);
    assert_eq!(catalog(&w), "alpha-v2\nbeta\n");
    assert!(!w.p("lib/games/alpha.locator").exists());
    assert!(fs::read_dir(w.p("lib/games")).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("alpha.")));
    // The index holds exactly the published games (verify checks each), and what stays
    // installs.
    verify_ok(&w, "lib");
    assert_published(&w, &w.p("lib"), "in", &["alpha-v2", "beta"], "after remove");
    let out = device(&[
        "install",
        "-r",
        &lib,
        "-g",
        "alpha",
        "--install-dir",
        &w.s("dev"),
        "--trusted-key",
        &w.s("k.pub"),
    ]);
    assert_ne!(out.status.code(), Some(0));
    // A build of the same input brings it back, from the chunks still stored.
    let out = ok(w.build("in", "lib", &["--avg-chunk", "4096", "--json"]));
    assert!(out.contains("\"new_chunks\":0,"), "{out}");
    assert_eq!(games(&lib), ["alpha", "alpha-v2", "beta"]);
    verify_ok(&w, "lib");
}

#[test]
fn a_removal_cut_off_after_its_first_step_is_finished_by_the_next_command() {
    // The state a kill leaves after the manifest was renamed aside and before the index
    // commit: no reader sees the game; the next command that opens the library finishes
    // the removal (references dropped, locator deleted) and says so.
    let w = Workspace::new();
    sample_input(&w.p("in"), 6);
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
    fs::rename(
        w.p("lib/games/beta.manifest"),
        w.p("lib/games/.beta.manifest.removed"),
    )
    .unwrap();
    assert_eq!(games(&w.s("lib")), ["alpha", "alpha-v2"]);
    let out = romlib(&[
        "remove",
        "-r",
        &w.s("lib"),
        "-g",
        "alpha",
        "--signing-key",
        &w.s("k.sec"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(err.contains("finished removing beta"), "{err}");
    assert!(!w.p("lib/games/beta.locator").exists());
    assert!(!w.p("lib/games/.beta.manifest.removed").exists());
    assert_eq!(catalog(&w), "alpha-v2\n");
    verify_ok(&w, "lib");
    // A name that is no title id is never acted on.
    fs::write(w.p("lib/games/.x.manifest.removed"), b"?").unwrap();
    fs::write(w.p("lib/games/..manifest.removed"), b"?").unwrap();
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
    assert!(w.p("lib/games/..manifest.removed").exists());
    verify_ok(&w, "lib");
}

#[test]
fn a_build_names_the_games_whose_input_is_gone_and_removes_them_when_asked() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 7);
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
    fs::remove_dir_all(w.p("in/beta")).unwrap();
    // Without --remove-missing: kept, and named.
    let out = ok(w.build("in", "lib", &["--avg-chunk", "4096"]));
    assert!(
        out.contains("1 game of the library no longer in the input (kept; --remove-missing removes them): beta"),
        "{out}"
    );
    let out = ok(w.build("in", "lib", &["--avg-chunk", "4096", "--json"]));
    assert!(out.contains("\"no_input\":[\"beta\"]"), "{out}");
    assert_eq!(games(&w.s("lib")), ["alpha", "alpha-v2", "beta"]);
    // With it: the library mirrors the input.
    let out = ok(w.build("in", "lib", &["--avg-chunk", "4096", "--remove-missing"]));
    assert!(
        out.contains("removed 1 game whose input is gone: beta"),
        "{out}"
    );
    assert_eq!(games(&w.s("lib")), ["alpha", "alpha-v2"]);
    verify_ok(&w, "lib");
    assert_published(&w, &w.p("lib"), "in", &["alpha", "alpha-v2"], "mirrored");
    // A manifest name in games/ that is no title id (someone else wrote it) is never
    // acted on: not removed by the mirror, refused by remove.
    fs::write(w.p("lib/games/bad:name.manifest"), b"?").unwrap();
    ok(w.build(
        "in",
        "lib",
        &["--avg-chunk", "4096", "-q", "--remove-missing"],
    ));
    assert!(w.p("lib/games/bad:name.manifest").exists());
    let out = romlib(&[
        "remove",
        "-r",
        &w.s("lib"),
        "-g",
        "bad:name",
        "--signing-key",
        &w.s("k.sec"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("is not a title id"), "{e}");
    assert!(w.p("lib/games/bad:name.manifest").exists());
    fs::remove_file(w.p("lib/games/bad:name.manifest")).unwrap();
    // The folder back: the game is built again (the input cache does not skip it).
    sample_input(&w.p("in"), 7);
    ok(w.build(
        "in",
        "lib",
        &["--avg-chunk", "4096", "-q", "--remove-missing"],
    ));
    assert_eq!(games(&w.s("lib")), ["alpha", "alpha-v2", "beta"]);
    assert_published(&w, &w.p("lib"), "in", &["beta"], "back");
}

#[test]
fn an_import_cut_off_between_its_commit_and_its_renames_is_finished_exactly() {
    // What kill -9 leaves between the durable commit that records a new manifest and its
    // rename into place: the index records the new chunk table, the old manifest is still
    // in place, the new one staged. The next command that opens the library (here, the
    // import run again) must finish the publication before it publishes anything (with
    // format 3's reference counts, this state once counted the new table twice).
    let w = Workspace::new();
    sample_input(&w.p("in"), 8);
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
    // beta, revised, in a portable file.
    copy_tree(&w.p("in"), &w.p("in2"));
    let mut b = fs::read(w.p("in2/beta/beta.rom")).unwrap();
    b[1000..1100].copy_from_slice(&[7u8; 100]);
    write(&w.p("in2"), "beta/beta.rom", &b);
    write(&w.p("in2"), "beta/new.bin", &Rng::new(81).bytes(40_000));
    ok(w.build("in2", "lib2", &["--avg-chunk", "4096", "-q"]));
    let k = w.s("k.pub");
    let all = w.s("b.romlib");
    ok(romlib(&[
        "export",
        "-r",
        &w.s("lib2"),
        "-g",
        "beta",
        "-o",
        &all,
    ]));
    let old = fs::read(w.p("lib/games/beta.manifest")).unwrap();
    ok(romlib(&[
        "import",
        &all,
        "-o",
        &w.s("lib"),
        "--trusted-key",
        &k,
        "--signing-key",
        &w.s("k.sec"),
        "-q",
    ]));
    // Back to the state of the kill.
    fs::rename(
        w.p("lib/games/beta.manifest"),
        w.p("lib/games/.beta.manifest.tmp"),
    )
    .unwrap();
    fs::write(w.p("lib/games/beta.manifest"), &old).unwrap();
    ok(romlib(&[
        "import",
        &all,
        "-o",
        &w.s("lib"),
        "--trusted-key",
        &k,
        "--signing-key",
        &w.s("k.sec"),
        "-q",
    ]));
    verify_ok(&w, "lib");
    assert_published(
        &w,
        &w.p("lib"),
        "in2",
        &["alpha", "beta"],
        "after the rerun",
    );
}
