//! The library's signed snapshot (issue 27, SPEC section 15), end to end with real builds,
//! a real `romlib serve` and real devices: expiry against a frozen mirror and `romlib
//! refresh`, files of another publication refused over HTTP and from a folder, a snapshot
//! tampered or signed by a stranger refused, the writers (build, import, remove) keeping it
//! exact, and `romlib verify` checking it.

use romlib_tests::schema::{schema, stdout_obj};
use romlib_tests::*;
use std::fs;

/// The snapshot's `sequence` line.
fn sequence(w: &Workspace, lib: &str) -> u64 {
    let text = fs::read_to_string(w.p(lib).join("snapshot.txt")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("sequence "))
        .unwrap()
        .parse()
        .unwrap()
}

/// The titles the snapshot lists.
fn listed(w: &Workspace, lib: &str) -> Vec<String> {
    let text = fs::read_to_string(w.p(lib).join("snapshot.txt")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("game "))
        .map(|l| l.splitn(6, ' ').nth(5).unwrap().to_string())
        .collect()
}

/// `romlib-device install --json` of `game` from `source` into `dir`.
fn dev_install(
    w: &Workspace,
    source: &[&str],
    game: &str,
    dir: &str,
    extra: &[&str],
) -> std::process::Output {
    let (key, dir) = (w.s("k.pub"), w.s(dir));
    let mut a = vec![
        "install",
        "-g",
        game,
        "--install-dir",
        &dir,
        "--trusted-key",
        &key,
    ];
    a.extend_from_slice(source);
    a.extend_from_slice(extra);
    device(&a)
}

/// A new key pair `evil.sec` / `evil.pub`, not in the trust store.
fn evil_key(w: &Workspace) {
    ok(romlib(&[
        "keygen",
        "--secret-key",
        &w.s("evil.sec"),
        "--public-key",
        &w.s("evil.pub"),
        "--no-trust",
    ]));
}

/// The error object of a failed `--json` command, checked against the documented schema.
fn error_of(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    stdout_obj(&schema(), out)
}

#[test]
fn an_expired_snapshot_is_refused_over_http_until_refreshed() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 27);
    let built = ok(w.build("in", "lib", &["--avg-chunk", "4096", "--valid-for", "3s"]));
    assert!(built.contains("signed snapshot: sequence"), "{built}");
    assert_eq!(listed(&w, "lib"), ["alpha", "alpha-v2", "beta"]);
    let (mut server, port, _log) = start_serve(&w.s("lib"));
    let url = format!("http://127.0.0.1:{port}/");
    ok(dev_install(&w, &["--from", &url], "alpha", "a", &[]));
    assert_same_tree(&w.p("in/alpha"), &w.p("a/alpha"));
    std::thread::sleep(std::time::Duration::from_millis(3200));
    // The mirror still serves the same, now stale, library.
    let out = dev_install(&w, &["--from", &url], "beta", "b", &["--json"]);
    let v = error_of(&out);
    assert_eq!(v["code"], "expired", "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("snapshot.txt")
            && msg.contains("expired at")
            && msg.contains("clock says")
            && msg.contains("romlib refresh")
            && msg.contains("--allow-expired"),
        "{msg}"
    );
    assert!(!w.p("b/beta").exists());
    // A library folder (a card, offline) keeps working: expiry is for network readers.
    ok(dev_install(&w, &["-r", &w.s("lib")], "beta", "local", &[]));
    // On purpose.
    ok(dev_install(
        &w,
        &["--from", &url],
        "beta",
        "b",
        &["--allow-expired"],
    ));
    assert_same_tree(&w.p("in/beta"), &w.p("b/beta"));
    // The publisher's cron job: a new snapshot, valid for an hour, nothing else changes.
    let before = sequence(&w, "lib");
    let packs = snapshot(&w.p("lib/packs"));
    let out = ok(romlib(&[
        "refresh",
        "-r",
        &w.s("lib"),
        "--signing-key",
        &w.s("k.sec"),
        "--valid-for",
        "1h",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["games"], 3, "{v}");
    assert!(v["snapshot_sequence"].as_u64().unwrap() > before, "{v}");
    let expires = v["snapshot_expires"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expires > now + 3500 && expires <= now + 3600,
        "{expires} vs {now}"
    );
    assert!(snapshot(&w.p("lib/packs")) == packs);
    ok(dev_install(&w, &["--from", &url], "alpha-v2", "c", &[]));
    assert_same_tree(&w.p("in/alpha-v2"), &w.p("c/alpha-v2"));
    // A later build without --valid-for keeps the validity the library has.
    write(&w.p("in"), "gamma/g.bin", &Rng::new(5).bytes(30_000));
    let out = ok(w.build("in", "lib", &["--avg-chunk", "4096"]));
    assert!(out.contains("expires"), "{out}");
    assert!(!out.contains("never expires"), "{out}");
    verify_ok(&w, "lib");
    let _ = server.kill();
}

#[test]
fn files_of_another_publication_are_refused() {
    let w = Workspace::new();
    let mut r = Rng::new(9);
    let (v1, v2) = (r.bytes(60_000), r.bytes(60_000));
    write(&w.p("in"), "fix/game.bin", &v1);
    write(&w.p("in"), "other/o.bin", &r.bytes(20_000));
    ok(w.build("in", "lib", &[]));
    let old_manifest = fs::read(w.p("lib/games/fix.manifest")).unwrap();
    let old_locator = fs::read(w.p("lib/games/fix.locator")).unwrap();
    write(&w.p("in"), "fix/game.bin", &v2);
    ok(w.build("in", "lib", &[]));
    let (mut server, port, _log) = start_serve(&w.s("lib"));
    let url = format!("http://127.0.0.1:{port}/");
    let net_err = |game: &str| {
        error_of(&dev_install(
            &w,
            &["--from", &url],
            game,
            "net",
            &["--json"],
        ))
    };

    // A mirror serving the old manifest (validly signed) among the new files: refused over
    // HTTP before the manifest is parsed, and from the folder (an older revision than the
    // snapshot names); nothing is installed.
    fs::write(w.p("lib/games/fix.manifest"), &old_manifest).unwrap();
    fs::write(w.p("lib/games/fix.locator"), &old_locator).unwrap();
    for (source, dir) in [
        (["--from", url.as_str()], "net"),
        (["-r", &w.s("lib")], "dir"),
    ] {
        let out = dev_install(&w, &source, "fix", dir, &["--json"]);
        let v = error_of(&out);
        assert_eq!(v["code"], "mismatch", "{source:?}: {v}");
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.contains("fix.manifest") && msg.contains("signed snapshot"),
            "{msg}"
        );
        assert!(!w.p(dir).join("fix").exists(), "{source:?}");
    }
    // `romlib verify` names it.
    let out = romlib(&["verify", "-r", &w.s("lib")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fix.manifest: not the file the signed snapshot"),
        "{text}"
    );

    // The current manifest with a locator that is not the published one: refused over HTTP.
    ok(w.build("in", "lib", &["--reread"]));
    let mut loc = fs::read(w.p("lib/games/fix.locator")).unwrap();
    loc.extend_from_slice(&[0; 64]);
    fs::write(w.p("lib/games/fix.locator"), &loc).unwrap();
    let v = net_err("fix");
    assert_eq!(v["code"], "mismatch", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("fix.locator"),
        "{v}"
    );
    let out = romlib(&["verify", "-r", &w.s("lib")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fix.locator: not the file the signed snapshot"),
        "{text}"
    );
    loc.truncate(loc.len() - 64);
    fs::write(w.p("lib/games/fix.locator"), &loc).unwrap();
    ok(dev_install(&w, &["--from", &url], "fix", "net", &[]));
    assert_eq!(fs::read(w.p("net/fix/game.bin")).unwrap(), v2);

    // A validly signed manifest the snapshot does not list (copied in from another library
    // of the same publisher): refused over HTTP, named by verify.
    write(&w.p("in2"), "stray/s.bin", &r.bytes(10_000));
    ok(w.build("in2", "lib2", &[]));
    for ext in ["manifest", "locator"] {
        fs::copy(
            w.p(&format!("lib2/games/stray.{ext}")),
            w.p(&format!("lib/games/stray.{ext}")),
        )
        .unwrap();
    }
    // Not in the catalog either: not there at all.
    let stray = |w: &Workspace| {
        error_of(&dev_install(
            w,
            &["--from", &url],
            "stray",
            "net",
            &["--json"],
        ))
    };
    assert_eq!(stray(&w)["code"], "not_found");
    // Listed by a doctored catalog (unsigned): still refused.
    let mut catalog = fs::read_to_string(w.p("lib/catalog.txt")).unwrap();
    catalog.push_str("stray\n");
    fs::write(w.p("lib/catalog.txt"), catalog).unwrap();
    let v = stray(&w);
    assert_eq!(v["code"], "mismatch", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("does not list"),
        "{v}"
    );
    // A title neither the snapshot nor the catalog lists is simply not there.
    let v = net_err("fixx");
    assert_eq!(v["code"], "not_found", "{v}");

    // A snapshot tampered with, or signed by a key the device does not trust: refused.
    let good = fs::read(w.p("lib/snapshot.txt")).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let bad = text.replacen("game ", "game 9", 1);
    fs::write(w.p("lib/snapshot.txt"), bad).unwrap();
    let v = net_err("other");
    assert_eq!(v["code"], "untrusted", "{v}");
    fs::write(w.p("lib/snapshot.txt"), &good).unwrap();
    evil_key(&w);
    ok(romlib(&[
        "refresh",
        "-r",
        &w.s("lib"),
        "--signing-key",
        &w.s("evil.sec"),
    ]));
    let v = net_err("other");
    assert_eq!(v["code"], "untrusted", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("snapshot.txt"),
        "{v}"
    );
    let out = romlib(&["verify", "-r", &w.s("lib")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not in the trust store"));
    let _ = server.kill();
}

#[test]
fn every_writer_keeps_the_snapshot_exact() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 3);
    ok(w.build("in", "lib", &["--avg-chunk", "4096"]));
    let first = sequence(&w, "lib");
    assert_eq!(first, TEST_EPOCH * 1000);
    // A run that changes nothing writes nothing, the snapshot included.
    let bytes = fs::read(w.p("lib/snapshot.txt")).unwrap();
    ok(w.build("in", "lib", &["--avg-chunk", "4096"]));
    assert_eq!(fs::read(w.p("lib/snapshot.txt")).unwrap(), bytes);
    // A link someone planted under the snapshot's temp name is replaced, never written
    // through.
    #[cfg(unix)]
    {
        fs::write(w.p("outside"), b"theirs").unwrap();
        std::os::unix::fs::symlink(w.p("outside"), w.p("lib/.snapshot.txt.tmp")).unwrap();
        ok(romlib(&[
            "refresh",
            "-r",
            &w.s("lib"),
            "--signing-key",
            &w.s("k.sec"),
        ]));
        assert_eq!(fs::read(w.p("outside")).unwrap(), b"theirs");
        assert!(fs::symlink_metadata(w.p("lib/.snapshot.txt.tmp")).is_err());
        verify_ok(&w, "lib");
    }
    // A library with a snapshot is not changed by a remove or an import without the key.
    let all = w.s("all.romlib");
    ok(romlib(&["export", "-r", &w.s("lib"), "--all", "-o", &all]));
    let before = snapshot(&w.p("lib"));
    fails(
        romlib(&["remove", "-r", &w.s("lib"), "-g", "beta"]),
        1,
        &["snapshot.txt", "--signing-key", "nothing was changed"],
    );
    assert!(snapshot(&w.p("lib")) == before);
    // With it, the game leaves the snapshot, whose sequence grows.
    let out = ok(romlib(&[
        "remove",
        "-r",
        &w.s("lib"),
        "-g",
        "beta",
        "--signing-key",
        &w.s("k.sec"),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let second = v["snapshot_sequence"].as_u64().unwrap();
    assert!(second > first, "{v}");
    assert_eq!(listed(&w, "lib"), ["alpha", "alpha-v2"]);
    fails(
        romlib(&["import", &all, "-o", &w.s("lib")]),
        1,
        &["snapshot.txt", "--signing-key"],
    );
    let out = ok(romlib(&[
        "import",
        &all,
        "-o",
        &w.s("lib"),
        "--signing-key",
        &w.s("k.sec"),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["snapshot_sequence"].as_u64().unwrap() > second, "{v}");
    assert_eq!(listed(&w, "lib"), ["alpha", "alpha-v2", "beta"]);
    verify_ok(&w, "lib");
    // A manifest someone else put in games/, signed by a key the publisher does not trust,
    // is never signed into the snapshot: the build leaves it out and says so.
    evil_key(&w);
    write(&w.p("evil-in"), "planted/p.bin", &Rng::new(1).bytes(5000));
    ok(romlib(&[
        "build",
        "-i",
        &w.s("evil-in"),
        "-o",
        &w.s("evil-lib"),
        "--signing-key",
        &w.s("evil.sec"),
        "-q",
    ]));
    for ext in ["manifest", "locator"] {
        fs::copy(
            w.p(&format!("evil-lib/games/planted.{ext}")),
            w.p(&format!("lib/games/planted.{ext}")),
        )
        .unwrap();
    }
    write(&w.p("in"), "delta/d.bin", &Rng::new(2).bytes(5000));
    let out = w.build("in", "lib", &["--avg-chunk", "4096"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(
        err.contains("left out of the signed snapshot") && err.contains("planted.manifest"),
        "{err}"
    );
    assert_eq!(listed(&w, "lib"), ["alpha", "alpha-v2", "beta", "delta"]);
    // rebuild-index (no key) says when the snapshot no longer names the locators.
    fs::remove_file(w.p("lib/games/planted.manifest")).unwrap();
    fs::remove_file(w.p("lib/games/planted.locator")).unwrap();
    fs::write(w.p("lib/games/alpha.locator"), b"").unwrap();
    let out = ok(romlib(&["rebuild-index", "-r", &w.s("lib")]));
    assert!(out.contains("romlib refresh"), "{out}");
    ok(romlib(&[
        "refresh",
        "-r",
        &w.s("lib"),
        "--signing-key",
        &w.s("k.sec"),
    ]));
    verify_ok(&w, "lib");
}
