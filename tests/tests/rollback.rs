//! Revisions that only go up (issue 27): every manifest carries a signed revision, a
//! rebuild that changes a game raises it and one that does not keeps it, and every install
//! path (folder, portable file, HTTP; device and host, folder and flat placement) and
//! `romlib import` refuse to take a game back to a lower revision unless told to.

use romlib_tests::schema::{schema, stdout_obj};
use romlib_tests::*;
use std::fs;

fn revision(w: &Workspace, lib: &str, title: &str) -> u64 {
    let path = w.p(lib).join("games").join(format!("{title}.manifest"));
    romlib_device::ManifestFile::open(&path)
        .unwrap()
        .unverified_body()
        .revision
}

#[test]
fn older_revisions_are_refused_everywhere_unless_allowed() {
    let w = Workspace::new();
    let mut r = Rng::new(27);
    let (v1, v2) = (r.bytes(50_000), r.bytes(50_000));
    write(&w.p("in"), "gb/Fix (World).gb", &v1);
    // The revision is the build's time: the clock's, or SOURCE_DATE_EPOCH's (the tests'
    // builds have one, for reproducible bytes).
    let clock = host_cmd()
        .env_remove("SOURCE_DATE_EPOCH")
        .args([
            "build",
            "-i",
            &w.s("in"),
            "-o",
            &w.s("clock"),
            "--signing-key",
        ])
        .arg(w.p("k.sec"))
        .output()
        .unwrap();
    ok(clock);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let by_clock = revision(&w, "clock", "Fix (World)");
    assert!(
        by_clock <= now && by_clock + 600_000 > now,
        "{by_clock} vs {now}"
    );
    ok(w.build("in", "lib", &[]));
    let first = revision(&w, "lib", "Fix (World)");
    assert_eq!(first, TEST_EPOCH * 1000);
    // A rebuild that changes nothing keeps the revision (and writes no manifest).
    ok(w.build("in", "lib", &[]));
    assert_eq!(revision(&w, "lib", "Fix (World)"), first);
    // The old release, kept as a copy and as an export, then the fix.
    copy_tree(&w.p("lib"), &w.p("lib-old"));
    ok(romlib(&[
        "export",
        "-r",
        &w.s("lib-old"),
        "--all",
        "-o",
        &w.s("old.romlib"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    write(&w.p("in"), "gb/Fix (World).gb", &v2);
    ok(w.build("in", "lib", &[]));
    // The same build time: one more than the revision it replaces.
    let fixed = revision(&w, "lib", "Fix (World)");
    assert_eq!(fixed, first + 1);

    let key = w.s("k.pub");
    let (mut server, port, _log) = start_serve(&w.s("lib-old"));
    let url = format!("http://127.0.0.1:{port}/");
    let card = w.s("card");
    let device_install = |source: &[&str], extra: &[&str]| {
        let mut a = vec!["install", "-g", "Fix (World)", "--install-dir", &card];
        a.extend(["--layout", "muos", "--trusted-key", &key]);
        a.extend(source);
        a.extend(extra);
        device(&a)
    };
    let installed = || fs::read(w.p("card/gb/Fix (World).gb")).unwrap();
    ok(device_install(&["-r", &w.s("lib")], &[]));
    assert_eq!(installed(), v2);
    // The older release, from a folder, a portable file and a server: refused, with both
    // revisions named, and the installed fix untouched.
    let old_folder = w.s("lib-old");
    let old_file = w.s("old.romlib");
    for source in [
        ["-r", old_folder.as_str()],
        ["-r", old_file.as_str()],
        ["--from", url.as_str()],
    ] {
        let out = device_install(&source, &["--json"]);
        assert_eq!(out.status.code(), Some(1), "{source:?}");
        let v = stdout_obj(&schema(), &out);
        assert_eq!(v["code"], "downgrade", "{v}");
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("({fixed})"))
                && msg.contains(&format!("({first})"))
                && msg.contains("--allow-downgrade"),
            "{msg}"
        );
        assert_eq!(installed(), v2, "{source:?}");
        assert!(!w.p("card/gb/.romlib-staging").exists());
    }
    // The host's install refuses the same way.
    fails(
        romlib(&[
            "install",
            "-g",
            "Fix (World)",
            "-r",
            &w.s("lib-old"),
            "--install-dir",
            &card,
            "--layout",
            "muos",
        ]),
        1,
        &["older revision", "--allow-downgrade"],
    );
    // On purpose, it goes back.
    ok(device_install(&["--from", &url], &["--allow-downgrade"]));
    assert_eq!(installed(), v1);
    ok(device_install(&["-r", &w.s("lib")], &[]));
    assert_eq!(installed(), v2);
    // A game installed in a folder of its own is protected the same way.
    let folder = w.s("folder");
    let plain = |lib: &str| {
        device(&[
            "install",
            "-g",
            "Fix (World)",
            "-r",
            lib,
            "--install-dir",
            &folder,
            "--trusted-key",
            &key,
        ])
    };
    ok(plain(&w.s("lib")));
    fails(plain(&old_folder), 1, &["older revision"]);

    // Importing the old export into the fixed library would roll it back: refused, the
    // library unchanged; allowed on purpose.
    let before = fs::read(w.p("lib/games/Fix (World).manifest")).unwrap();
    fails(
        romlib(&[
            "import",
            &old_file,
            "-o",
            &w.s("lib"),
            "--trusted-key",
            &key,
            "--signing-key",
            &w.s("k.sec"),
        ]),
        1,
        &["Fix (World)", "older revision", "--allow-downgrade"],
    );
    assert_eq!(
        fs::read(w.p("lib/games/Fix (World).manifest")).unwrap(),
        before
    );
    ok(romlib(&[
        "import",
        &old_file,
        "-o",
        &w.s("lib"),
        "--trusted-key",
        &key,
        "--signing-key",
        &w.s("k.sec"),
        "--allow-downgrade",
    ]));
    assert_eq!(revision(&w, "lib", "Fix (World)"), first);
    let _ = server.kill();
    let _ = server.wait();
}
