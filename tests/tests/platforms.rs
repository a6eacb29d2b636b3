//! What differs between the systems a builder runs on, tested against whichever host
//! binary is under test: the workspace build, or the Windows build under Wine
//! (windows/test.sh sets `ROMLIB_HOST_BIN` and `ROMLIB_HOST_RUNNER`). Windows device names
//! refused at build, paths longer than 260 characters given with a drive letter and
//! backslashes, renames over files another process holds open, and the same library
//! whichever system built it.

use redb::{ReadableDatabase, ReadableTable};
use romlib_format::index::META_RUNS;
use romlib_format::layout::RUNS_DIR;
use romlib_host::library::index::{GAMES, META, PACKS};
use romlib_tests::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `p` as the host binary under test is best given it: unchanged for a Unix build; for the
/// Windows build a drive-letter path with backslashes (Wine maps `Z:` to `/`), so every
/// command here goes through Windows path parsing.
fn host_path(p: &Path) -> String {
    let s = p.to_string_lossy();
    if host_is_windows() {
        format!("Z:{}", s.replace('/', "\\"))
    } else {
        s.into_owned()
    }
}

#[test]
fn windows_device_names_are_refused_at_build_naming_the_file() {
    let w = Workspace::new();
    let k = host_path(&w.p("k.sec"));
    for (rel, needle) in [
        ("game/CON", "\"CON\""),
        ("game/sub/nul.txt", "\"nul.txt\""),
        ("game/com1/x.bin", "\"com1\""),
        ("game/LPT9.tar.gz", "\"LPT9.tar.gz\""),
    ] {
        let input = w.p(&format!("in-{}", rel.len()));
        write(&input, "ok/ok.bin", b"fine");
        write(&input, rel, b"device name");
        let lib = w.p(&format!("lib-{}", rel.len()));
        let out = romlib(&[
            "build",
            "-i",
            &host_path(&input),
            "-o",
            &host_path(&lib),
            "--signing-key",
            &k,
        ]);
        fails(out, 1, &["Windows", needle, "--allow-non-fat-names"]);
        assert!(
            !lib.join("games").exists()
                || std::fs::read_dir(lib.join("games")).unwrap().count() == 0,
            "{rel}: a refused build published a game"
        );
    }
    // A game folder named after a device: refused whatever the options (the title names
    // files in the library and on the device).
    write(&w.p("in-title"), "AUX/x.bin", b"x");
    let out = romlib(&[
        "build",
        "-i",
        &host_path(&w.p("in-title")),
        "-o",
        &host_path(&w.p("lib-title")),
        "--signing-key",
        &k,
        "--allow-non-fat-names",
    ]);
    fails(out, 1, &["AUX", "Windows reserves"]);
    // Trailing dots and spaces are what Windows strips: refused as before.
    if !host_is_windows() {
        // (Wine shows such names under other names, so this part needs a Unix host.)
        write(&w.p("in-dot"), "game/name./x.bin", b"x");
        let out = w.build("in-dot", "lib-dot", &[]);
        fails(out, 1, &["name.", "ending in a dot or space"]);
    }
}

#[test]
fn long_paths_with_drive_letters_and_backslashes_build_and_install() {
    let w = Workspace::new();
    // Nested well past Windows' 260-character MAX_PATH, inside and outside the library.
    let deep = (0..12)
        .map(|i| format!("folder-{i:02}-{}", "x".repeat(20)))
        .collect::<Vec<_>>()
        .join("/");
    let input = w.p("in");
    write(
        &input,
        &format!("Long Game/{deep}/data.bin"),
        &Rng::new(7).bytes(200_000),
    );
    write(&input, "Long Game/top.bin", b"top");
    let lib = w.p(&format!("{}/lib", "l".repeat(120)));
    let install = w.p(&format!("{}/{}/install", "i".repeat(120), "j".repeat(100)));
    assert!(host_path(&install).len() + deep.len() > 300);
    ok(romlib(&[
        "build",
        "-i",
        &host_path(&input),
        "-o",
        &host_path(&lib),
        "--signing-key",
        &host_path(&w.p("k.sec")),
    ]));
    ok(romlib(&["verify", "-r", &host_path(&lib)]));
    ok(romlib(&[
        "install",
        "-g",
        "Long Game",
        "-r",
        &host_path(&lib),
        "--install-dir",
        &host_path(&install),
    ]));
    assert_same_tree(&input.join("Long Game"), &install.join("Long Game"));
    let cat = ok(romlib(&[
        "cat",
        "-g",
        "Long Game",
        "-r",
        &host_path(&lib),
        "top.bin",
    ]));
    assert_eq!(cat, "top");
    if host_is_windows() {
        // The verbatim form, which turns off Windows' path parsing altogether.
        let verbatim = format!("\\\\?\\{}", host_path(&lib));
        let listed = ok(romlib(&["list-games", "-r", &verbatim]));
        assert!(listed.contains("Long Game"), "{listed}");
    }
}

/// A program that holds `path` open without sharing deletion for `millis`, as an older
/// reader or a virus scanner may: the Windows `hold.exe` windows/test.sh builds
/// (`ROMLIB_HOLD_EXE`), run by the host runner. Returns once the file is held.
fn hold(path: &Path, millis: u64) -> std::process::Child {
    let exe = std::env::var_os("ROMLIB_HOLD_EXE").expect("ROMLIB_HOLD_EXE");
    let runner = std::env::var_os("ROMLIB_HOST_RUNNER").expect("ROMLIB_HOST_RUNNER");
    let mut child = Command::new(runner)
        .arg(exe)
        .arg(host_path(path))
        .arg(millis.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(
        line.trim(),
        "held",
        "hold.exe did not hold {}",
        path.display()
    );
    child
}

#[test]
fn a_build_waits_for_a_reader_that_holds_the_index_open() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 5);
    ok(w.build("in", "lib", &[]));
    write(&w.p("in"), "gamma/gamma.bin", &Rng::new(9).bytes(100_000));
    let index = w.p("lib/index.db");
    if !host_is_windows() {
        // On Unix another program's open handle never stops a write: the build must not
        // wait for it.
        let held = std::fs::File::open(&index).unwrap();
        ok(w.build("in", "lib", &[]));
        drop(held);
        ok(romlib(&["verify", "-r", &w.s("lib")]));
        return;
    }
    // Held for 3 s without sharing writes: the build retries opening the index for writing
    // until it is let go.
    let start = Instant::now();
    let mut holder = hold(&index, 3000);
    let out = romlib(&[
        "build",
        "-i",
        &host_path(&w.p("in")),
        "-o",
        &host_path(&w.p("lib")),
        "--signing-key",
        &host_path(&w.p("k.sec")),
    ]);
    assert!(holder.wait().unwrap().success());
    ok(out);
    assert!(start.elapsed() >= Duration::from_secs(3));
    ok(romlib(&["verify", "-r", &host_path(&w.p("lib"))]));
    assert!(ok(romlib(&["list-games", "-r", &host_path(&w.p("lib"))])).contains("gamma"));
    // Held for longer than the builder waits: one line saying so, and the library as it
    // was published before (verify passes, the new game is not listed).
    write(&w.p("in"), "delta/delta.bin", &Rng::new(11).bytes(100_000));
    let mut holder = hold(&index, 25_000);
    let out = romlib(&[
        "build",
        "-i",
        &host_path(&w.p("in")),
        "-o",
        &host_path(&w.p("lib")),
        "--signing-key",
        &host_path(&w.p("k.sec")),
    ]);
    fails(out, 1, &["index.db", "another program keeps it open"]);
    assert!(holder.wait().unwrap().success());
    ok(romlib(&["verify", "-r", &host_path(&w.p("lib"))]));
    assert!(!ok(romlib(&["list-games", "-r", &host_path(&w.p("lib"))])).contains("delta"));
    // Let go, the next run finishes the job.
    ok(romlib(&[
        "build",
        "-i",
        &host_path(&w.p("in")),
        "-o",
        &host_path(&w.p("lib")),
        "--signing-key",
        &host_path(&w.p("k.sec")),
    ]));
    assert!(ok(romlib(&["list-games", "-r", &host_path(&w.p("lib"))])).contains("delta"));
}

/// Every entry of every index table and every chunk and delta row of the index's runs,
/// with the chunks' store times (the only clock in the index) set to zero. The list of
/// runs (their ids) is left out: the runs' rows are compared instead.
fn index_entries(lib: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let ix = romlib_host::library::runs::open_library(lib).unwrap();
    for (k, mut e) in ix.all_chunks().unwrap() {
        e.stored_at = 0;
        out.push(("chunks".into(), k.to_vec(), e.encode().to_vec()));
    }
    for (k, base) in ix.all_deltas().unwrap() {
        out.push(("deltas".into(), k.to_vec(), base.to_vec()));
    }
    let db = redb::Builder::new()
        .open_read_only(lib.join("index.db"))
        .unwrap();
    let txn = db.begin_read().unwrap();
    // Every other table as it is, its key as bytes.
    macro_rules! dump {
        ($table:expr, $name:literal, |$k:ident| $key:expr) => {
            for r in txn.open_table($table).unwrap().iter().unwrap() {
                let (k, v) = r.unwrap();
                let $k = k.value();
                out.push(($name.into(), $key, v.value().to_vec()));
            }
        };
    }
    dump!(PACKS, "packs", |k| k.to_le_bytes().to_vec());
    dump!(GAMES, "games", |k| k.as_bytes().to_vec());
    dump!(META, "meta", |k| k.as_bytes().to_vec());
    out.retain(|(t, k, _)| !(t == "meta" && k == META_RUNS.as_bytes()));
    out
}

/// Packs, manifests, locators, keys and the catalogue: every library file but the index
/// and its runs (compared by entries) and its checksum (which covers the index's bytes).
fn library_files(lib: &Path) -> Vec<(String, Vec<u8>)> {
    snapshot(lib)
        .into_iter()
        .filter(|(rel, _)| {
            !rel.starts_with("index.")
                && !rel.starts_with('.')
                && !Path::new(rel).starts_with(RUNS_DIR)
        })
        .collect()
}

#[test]
fn the_same_input_gives_the_same_library_on_linux_and_windows() {
    if !host_is_windows() {
        eprintln!("skipped: needs ROMLIB_HOST_BIN naming the Windows build (windows/test.sh)");
        return;
    }
    let w = Workspace::new();
    sample_input(&w.p("in"), 21);
    let r = Rng::new(3).bytes(300_000);
    write(&w.p("in"), "variant/a.bin", &r);
    write(
        &w.p("in"),
        "variant/b.bin",
        &Rng::new(3).variant(&r, 20, 10),
    );
    write(
        &w.p("in"),
        "meta/romlib.toml",
        b"name = \"Meta\"\ntags = [\"x\"]\n",
    );
    write(&w.p("in"), "meta/m.bin", b"meta");
    let opts = [
        "--threads",
        "2",
        "--avg-chunk",
        "8192",
        "--pack-size",
        "1048576",
    ];
    // The Linux build of the same source.
    let linux = linux_host_cmd()
        .args([
            "build",
            "-i",
            &w.s("in"),
            "-o",
            &w.s("linux"),
            "--signing-key",
            &w.s("k.sec"),
        ])
        .args(opts)
        .output()
        .unwrap();
    ok(linux);
    let mut args = vec![
        "build".to_string(),
        "-i".into(),
        host_path(&w.p("in")),
        "-o".into(),
        host_path(&w.p("windows")),
        "--signing-key".into(),
        host_path(&w.p("k.sec")),
    ];
    args.extend(opts.iter().map(|s| s.to_string()));
    ok(host_cmd().args(&args).output().unwrap());
    let (l, win) = (library_files(&w.p("linux")), library_files(&w.p("windows")));
    assert_eq!(
        l.iter().map(|f| &f.0).collect::<Vec<_>>(),
        win.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "the two libraries hold different files"
    );
    for (a, b) in l.iter().zip(&win) {
        assert!(
            a.1 == b.1,
            "{} differs between the Linux and the Windows build",
            a.0
        );
    }
    assert!(
        l.iter().any(|f| f.0.starts_with("packs/")) && l.iter().any(|f| f.0.ends_with(".manifest"))
    );
    assert_eq!(index_entries(&w.p("linux")), index_entries(&w.p("windows")));
    // And each binary reads the other's library.
    ok(linux_host_cmd()
        .args(["verify", "-r", &w.s("windows")])
        .output()
        .unwrap());
    ok(romlib(&["verify", "-r", &host_path(&w.p("linux"))]));
}

#[test]
fn a_linux_device_installs_from_the_host_serve_which_ctrl_c_stops() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 13);
    ok(romlib(&[
        "build",
        "-i",
        &host_path(&w.p("in")),
        "-o",
        &host_path(&w.p("lib")),
        "--signing-key",
        &host_path(&w.p("k.sec")),
    ]));
    let (mut child, port, mut log) = start_serve(&host_path(&w.p("lib")));
    let from = format!("http://127.0.0.1:{port}/");
    let listed = ok(device(&[
        "list-games",
        "--from",
        &from,
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert!(
        listed.contains("alpha") && listed.contains("beta"),
        "{listed}"
    );
    ok(device(&[
        "install",
        "--from",
        &from,
        "-g",
        "alpha",
        "--install-dir",
        &w.s("inst"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert_same_tree(&w.p("in/alpha"), &w.p("inst/alpha"));
    // Ctrl-C: SIGINT on Unix; Wine turns it into the console's CTRL_C_EVENT.
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("serve did not stop on Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
}
