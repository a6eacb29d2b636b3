//! Bad input to the builder: each case gives a one-line error naming the file, exit 1, and
//! leaves the library as usable as before.

use romlib_tests::*;
use std::fs;
use std::os::unix::ffi::OsStrExt;

/// Builds a good library first, then checks that a failing build left it intact.
fn assert_library_intact(w: &Workspace) {
    ok(device(&[
        "verify",
        "-g",
        "alpha",
        "-r",
        &w.s("lib"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    let names: Vec<String> = snapshot(&w.p("lib")).into_iter().map(|(n, _)| n).collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains(".partial") || n.ends_with(".tmp")),
        "{names:?}"
    );
}

fn good_library() -> Workspace {
    let w = Workspace::new();
    sample_input(&w.p("in"), 11);
    ok(w.build("in", "lib", &[]));
    w
}

#[test]
fn missing_or_unusable_input_folder() {
    let w = good_library();
    fails(
        w.build("nope", "lib", &[]),
        1,
        &["nope", "input folder does not exist"],
    );
    fs::write(w.p("afile"), b"x").unwrap();
    fails(w.build("afile", "lib", &[]), 1, &["afile", "not a folder"]);
    assert_library_intact(&w);
}

#[test]
fn unreadable_file_in_a_game() {
    let w = good_library();
    write(&w.p("bad"), "alpha/game.bin", b"data");
    // A FIFO is not a regular file (and reading one would block forever): skipped with a
    // warning, or refused with --strict.
    let fifo = w.p("bad/alpha/pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    fails(
        w.build("bad", "lib", &["--strict"]),
        1,
        &["pipe", "not a regular file", "--strict"],
    );
    assert_library_intact(&w);
    let out = w.build("bad", "lib", &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(
        err.contains("warning: skipped")
            && err.contains("pipe")
            && err.contains("not a regular file"),
        "{err}"
    );
    let list = ok(romlib(&["list-games", "-r", &w.s("lib"), "--json"]));
    assert!(list.contains("\"alpha\""), "{list}");
}

#[test]
fn non_utf8_file_name() {
    let w = good_library();
    write(&w.p("bad"), "alpha/ok.bin", b"data");
    let name = std::ffi::OsStr::from_bytes(b"bad\xff.bin");
    fs::write(w.p("bad/alpha").join(name), b"x").unwrap();
    fails(w.build("bad", "lib", &[]), 1, &["not valid UTF-8"]);
    assert_library_intact(&w);
}

#[test]
fn names_fat_cannot_hold_are_refused_unless_allowed() {
    for name in [
        "a:b.bin",
        "what?.bin",
        "star*.bin",
        "q\"uote.bin",
        "lt<.bin",
        "gt>.bin",
        "pi|pe.bin",
        "ctl\x01.bin",
        "dot.",
        "space ",
    ] {
        let w = good_library();
        write(&w.p("bad"), &format!("alpha/{name}"), b"data");
        fails(
            w.build("bad", "lib", &[]),
            1,
            &["FAT32/exFAT", "--allow-non-fat-names"],
        );
        assert_library_intact(&w);
        ok(w.build("bad", "lib2", &["--allow-non-fat-names"]));
    }
}

/// A game may not carry a file or folder named like romlib's own entries in an install
/// folder (it would pass for a completion marker or a staging folder there), in any case
/// and at any depth, with or without `--allow-non-fat-names`.
#[test]
fn names_romlib_keeps_for_install_folders_are_refused() {
    for rel in [
        "alpha/.romlib-installed",
        "alpha/saves/.ROMLIB-KEPT",
        "alpha/.Romlib-Staging/x.bin",
        "alpha/deep/er/.romlib-resume/x.bin",
    ] {
        let w = good_library();
        write(&w.p("bad"), "alpha/ok.bin", b"data");
        write(&w.p("bad"), rel, b"x");
        for extra in [&[][..], &["--allow-non-fat-names"][..]] {
            fails(
                w.build("bad", "lib", extra),
                1,
                &["a name romlib keeps for itself", ".romlib-installed"],
            );
            assert_library_intact(&w);
        }
    }
    // A name that only starts like one is an ordinary file.
    let w = good_library();
    write(&w.p("bad"), "alpha/.romlib-installed.txt", b"x");
    ok(w.build("bad", "lib2", &[]));
}

#[test]
fn game_without_files_and_bad_title_ids() {
    let w = good_library();
    fs::create_dir_all(w.p("bad/empty/sub")).unwrap();
    fails(w.build("bad", "lib", &[]), 1, &["empty", "holds no files"]);
    fs::remove_dir_all(w.p("bad")).unwrap();
    for title in ["bad:title", "trailing.", ".hidden"] {
        let _ = fs::remove_dir_all(w.p("bad"));
        write(&w.p("bad"), &format!("{title}/x.bin"), b"x");
        fails(w.build("bad", "lib", &[]), 1, &["not a usable title id"]);
    }
    let _ = fs::remove_dir_all(w.p("bad"));
    write(&w.p("bad"), "Game/x.bin", b"x");
    write(&w.p("bad"), "GAME/x.bin", b"y");
    fails(w.build("bad", "lib", &[]), 1, &["only by case"]);
    let _ = fs::remove_dir_all(w.p("bad"));
    write(&w.p("bad"), "g/File.bin", b"x");
    write(&w.p("bad"), "g/file.BIN", b"y");
    fails(w.build("bad", "lib", &[]), 1, &["differ only by case"]);
    assert_library_intact(&w);
}

#[test]
fn missing_corrupt_or_wrong_type_keys() {
    let w = good_library();
    let (i, o) = (w.s("in"), w.s("lib"));
    let build = |key: &str| romlib(&["build", "-i", &i, "-o", &o, "--signing-key", key]);
    fails(
        build(&w.s("none.sec")),
        1,
        &["none.sec", "no such secret key file"],
    );
    fails(build(&w.s("k.pub")), 1, &["k.pub", "is a public key"]);
    fs::write(w.p("junk.sec"), b"not a key at all").unwrap();
    fails(
        build(&w.s("junk.sec")),
        1,
        &["junk.sec", "not a romlib secret key file"],
    );
    let mut half = fs::read(w.p("k.sec")).unwrap();
    half.truncate(50);
    fs::write(w.p("half.sec"), half).unwrap();
    fails(build(&w.s("half.sec")), 1, &["half.sec"]);
    // keygen refuses to overwrite.
    fails(
        romlib(&[
            "keygen",
            "--secret-key",
            &w.s("k.sec"),
            "--public-key",
            &w.s("x.pub"),
        ]),
        1,
        &["already exists"],
    );
    assert_library_intact(&w);
}

#[test]
fn second_builder_is_refused() {
    let w = good_library();
    // Hold the library the way a running build does.
    let _held = romlib_host::library::writer::LibraryWriter::open(&w.p("lib")).unwrap();
    fails(
        w.build("in", "lib", &[]),
        1,
        &["in use by another romlib process"],
    );
}

#[test]
fn file_vanishing_or_changing_during_build_is_reported() {
    use romlib_host::build::test_support::read_file_once;
    let w = Workspace::new();
    write(&w.p("in"), "g/a.bin", &Rng::new(5).bytes(100_000));
    let (games, _) = romlib_host::build::scan::scan(&w.p("in"), None, Default::default()).unwrap();
    let mut f = games[0].files[0].clone();
    f.size += 1;
    let e = read_file_once(&f).unwrap_err().to_string();
    assert!(
        e.contains("a.bin") && e.contains("changed during the build"),
        "{e}"
    );
    fs::remove_file(&games[0].files[0].abs).unwrap();
    let e = read_file_once(&games[0].files[0]).unwrap_err().to_string();
    assert!(e.contains("a.bin") && e.contains("vanished"), "{e}");
}

#[test]
fn full_disk_fails_cleanly_and_library_stays_usable() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 12);
    let Some(_m) = mount_tmpfs(&w.p("small"), "1200k", false) else {
        return;
    };
    // The first build fits.
    let mut r = Rng::new(3);
    write(&w.p("in1"), "small/a.bin", &r.bytes(200_000));
    ok(romlib(&[
        "build",
        "-i",
        &w.s("in1"),
        "-o",
        &w.s("small/lib"),
        "--signing-key",
        &w.s("k.sec"),
    ]));
    // The next does not.
    write(&w.p("in1"), "big/b.bin", &r.bytes(3_000_000));
    let out = romlib(&[
        "build",
        "-i",
        &w.s("in1"),
        "-o",
        &w.s("small/lib"),
        "--signing-key",
        &w.s("k.sec"),
    ]);
    fails(out, 1, &["No space left on device"]);
    let names: Vec<String> = snapshot(&w.p("small/lib"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains(".partial") || n.ends_with(".tmp")),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("big")), "{names:?}");
    ok(device(&[
        "verify",
        "-g",
        "small",
        "-r",
        &w.s("small/lib"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
}

#[test]
fn an_index_that_is_a_symbolic_link_is_never_written_through() {
    // Someone else wrote the library folder: index.db links to a file outside it. The
    // builder writes the index in place, so it refuses the link (one line, naming it) and
    // the file it points at stays as it was.
    let w = good_library();
    fs::rename(w.p("lib/index.db"), w.p("elsewhere.db")).unwrap();
    let before = fs::read(w.p("elsewhere.db")).unwrap();
    std::os::unix::fs::symlink(w.p("elsewhere.db"), w.p("lib/index.db")).unwrap();
    write(&w.p("in"), "newgame/new.bin", &Rng::new(12).bytes(100_000));
    fails(w.build("in", "lib", &[]), 1, &["index.db", "symbolic link"]);
    assert!(fs::read(w.p("elsewhere.db")).unwrap() == before);
    assert!(fs::symlink_metadata(w.p("lib/index.db"))
        .unwrap()
        .file_type()
        .is_symlink());
    // Put back, the library builds.
    fs::remove_file(w.p("lib/index.db")).unwrap();
    fs::rename(w.p("elsewhere.db"), w.p("lib/index.db")).unwrap();
    ok(w.build("in", "lib", &[]));
    assert_library_intact(&w);
}
