//! End-to-end tests of portable files: `romlib export` and `romlib import`, and every
//! reading command of both binaries given a portable file instead of a library folder.

use romlib_device::library::portable::Portable;
use romlib_format::portable::{LOCATOR_ENTRY_LEN, LOCATOR_HEADER_LEN};
use romlib_tests::*;
use std::path::Path;

/// A library of the sample games (alpha, alpha-v2 and beta share chunks).
fn fixture() -> Workspace {
    let w = Workspace::new();
    sample_input(&w.p("in"), 7);
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
    w
}

fn export(w: &Workspace, out: &str, games: &[&str]) -> String {
    let (lib, o) = (w.s("lib"), w.s(out));
    let mut args = vec!["export", "-r", &lib, "-o", &o];
    for g in games {
        args.extend(["-g", g]);
    }
    ok(romlib(&args))
}

/// The number nearest before `word` in `text` ("12 new chunks" -> 12 for "new",
/// "12 chunks already" -> 12 for "already").
fn count_before(text: &str, word: &str) -> u64 {
    let words: Vec<&str> = text.split_whitespace().collect();
    let i = words
        .iter()
        .position(|x| x.trim_end_matches([',', ':', ')', ';']) == word)
        .unwrap_or_else(|| panic!("no {word:?} in {text}"));
    words[..i]
        .iter()
        .rev()
        .find_map(|x| x.trim_start_matches('(').parse().ok())
        .unwrap_or_else(|| panic!("no number before {word:?} in {text}"))
}

/// Distinct chunks of `games` per their manifests.
fn distinct_chunks(lib: &Path, games: &[&str]) -> u64 {
    let mut seen = std::collections::HashSet::new();
    for g in games {
        let m =
            romlib_device::ManifestFile::open(&lib.join(format!("games/{g}.manifest"))).unwrap();
        let mut t = m.unverified_chunks().unwrap();
        while let Some(c) = t.next_chunk().unwrap() {
            seen.insert(c.hash);
        }
    }
    seen.len() as u64
}

#[test]
fn export_is_deterministic_and_holds_exactly_the_chunks_needed() {
    let w = fixture();
    let said = export(&w, "a.romlib", &["beta", "alpha"]);
    export(&w, "b.romlib", &["alpha", "beta", "alpha"]);
    let a = std::fs::read(w.p("a.romlib")).unwrap();
    assert_eq!(
        a,
        std::fs::read(w.p("b.romlib")).unwrap(),
        "export is not deterministic"
    );
    // A second library built from the same input in another run exports the same bytes.
    ok(w.build(
        "in",
        "lib2",
        &["--avg-chunk", "4096", "-q", "--threads", "1"],
    ));
    let (lib2, c) = (w.s("lib2"), w.s("c.romlib"));
    ok(romlib(&[
        "export", "-r", &lib2, "-g", "alpha", "-g", "beta", "-o", &c, "-q",
    ]));
    assert_eq!(
        a,
        std::fs::read(w.p("c.romlib")).unwrap(),
        "export depends on the library"
    );

    let want = distinct_chunks(&w.p("lib"), &["alpha", "beta"]);
    assert_eq!(count_before(&said, "chunks"), want, "{said}");
    let p = Portable::open(&w.p("a.romlib")).unwrap();
    let titles: Vec<&str> = p.games().iter().map(|g| g.title.as_str()).collect();
    assert_eq!(titles, ["alpha", "beta"]);
    // Its packs hold exactly those records: count them from the pack footers' record counts.
    let mut records = 0;
    for s in p.packs() {
        let mut f = [0u8; romlib_format::pack::FOOTER_LEN];
        let at = s.offset + s.len - f.len() as u64;
        romlib_device::fsio::read_exact_at(p.file(), &mut f, at).unwrap();
        records += u64::from_le_bytes(f[8..16].try_into().unwrap());
    }
    assert_eq!(records, want);
    // One small game alone is a small file: well under the library's packs.
    export(&w, "beta.romlib", &["beta"]);
    let packs: u64 = std::fs::read_dir(w.p("lib/packs"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let beta = std::fs::metadata(w.p("beta.romlib")).unwrap().len();
    assert!(beta < packs / 2, "{beta} vs {packs}");
}

#[test]
fn every_reader_accepts_a_portable_file_on_both_binaries() {
    let w = fixture();
    export(&w, "a.romlib", &["alpha", "beta"]);
    let (file, key) = (w.s("a.romlib"), w.s("k.pub"));

    let out = ok(romlib(&["list-games", "-r", &file, "--trusted-key", &key]));
    assert!(out.contains("alpha\t") && out.contains("beta\t") && out.contains("2 games"));
    assert!(out.contains("(signed)"), "{out}");
    assert!(!out.contains("alpha-v2"));
    let out = ok(device(&["list-games", "-r", &file, "--trusted-key", &key]));
    assert!(out.contains("alpha\t") && out.contains("trusted") && out.contains("2 games"));
    let out = ok(romlib(&["verify", "-r", &file, "--trusted-key", &key]));
    assert!(out.contains("OK"), "{out}");
    let out = ok(romlib(&[
        "show",
        "-r",
        &file,
        "-g",
        "beta",
        "--trusted-key",
        &key,
        "--json",
    ]));
    assert!(out.contains("\"verified\": true"), "{out}");

    for (name, dir) in [("romlib", "inst-host"), ("romlib-device", "inst-dev")] {
        let d = w.s(dir);
        let run = |args: &[&str]| {
            std::process::Command::new(bin(name))
                .args(args)
                .output()
                .unwrap()
        };
        for g in ["alpha", "beta"] {
            ok(run(&[
                "install",
                "-r",
                &file,
                "-g",
                g,
                "--install-dir",
                &d,
                "--trusted-key",
                &key,
            ]));
            assert_same_tree(&w.p(&format!("in/{g}")), &w.p(&format!("{dir}/{g}")));
        }
        let out = run(&[
            "cat",
            "-r",
            &file,
            "-g",
            "alpha",
            "--trusted-key",
            &key,
            "data/level1.txt",
        ]);
        let want = std::fs::read(w.p("in/alpha/data/level1.txt")).unwrap();
        assert!(out.status.success() && out.stdout == want, "{name} cat");
        let out = run(&[
            "cat",
            "-r",
            &file,
            "-g",
            "alpha",
            "--trusted-key",
            &key,
            "--offset",
            "1000",
            "--length",
            "5000",
            "game.bin",
        ]);
        let want = std::fs::read(w.p("in/alpha/game.bin")).unwrap();
        assert!(
            out.status.success() && out.stdout == want[1000..6000],
            "{name} cat range"
        );
        // A game the file does not hold.
        let out = run(&[
            "install",
            "-r",
            &file,
            "-g",
            "alpha-v2",
            "--install-dir",
            &d,
            "--trusted-key",
            &key,
        ]);
        fails(out, 1, &["alpha-v2", "no such game"]);
    }
    ok(device(&[
        "verify",
        "-r",
        &file,
        "-g",
        "alpha",
        "--trusted-key",
        &key,
    ]));
    // The read API opens it like a folder.
    let lib = romlib_device::Library::open(&w.p("a.romlib")).unwrap();
    let trust = romlib_device::TrustStore::from_files(&[w.p("k.pub")]).unwrap();
    let g = romlib_device::play::read::Game::open(
        &lib,
        "beta",
        &trust,
        romlib_device::chunks::decoder::RuzstdDecoder::default(),
    )
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let id = g.find("beta.rom").unwrap();
    let n = g.read_at(id, 10_000, &mut buf).unwrap();
    assert_eq!(
        buf[..n],
        std::fs::read(w.p("in/beta/beta.rom")).unwrap()[10_000..10_000 + n]
    );
    // Without --trusted-key the host trusts the user's trust store (where keygen put the
    // key); with an empty store it refuses rather than trusting nothing in particular.
    let install = |config: &std::path::Path, dir: &str| {
        host_cmd()
            .env("ROMLIB_CONFIG_DIR", config)
            .args([
                "install",
                "-r",
                &file,
                "-g",
                "beta",
                "--install-dir",
                &w.s(dir),
            ])
            .output()
            .unwrap()
    };
    ok(install(&config_dir(), "x"));
    fails(
        install(&w.p("empty-config"), "y"),
        1,
        &["--trusted-key", "no trusted keys"],
    );
    assert!(!w.p("y/beta").exists());
}

#[test]
fn import_stores_only_the_chunks_the_library_lacks() {
    let w = fixture();
    export(&w, "a.romlib", &["alpha", "alpha-v2", "beta"]);
    // A library holding only beta (which shares shared.dat with the alphas).
    std::fs::create_dir_all(w.p("only-beta")).unwrap();
    std::fs::rename(w.p("in/beta"), w.p("only-beta/beta")).unwrap();
    ok(w.build("only-beta", "small", &["--avg-chunk", "4096", "-q"]));
    let before = distinct_chunks(&w.p("small"), &["beta"]);
    let (file, small) = (w.s("a.romlib"), w.s("small"));
    let sk = w.s("k.sec");
    let out = ok(romlib(&[
        "import",
        &file,
        "-o",
        &small,
        "--signing-key",
        &sk,
    ]));
    let all = distinct_chunks(&w.p("lib"), &["alpha", "alpha-v2", "beta"]);
    assert_eq!(count_before(&out, "new"), all - before, "{out}");
    assert_eq!(count_before(&out, "already"), before, "{out}");
    let out = ok(romlib(&["verify", "-r", &small]));
    assert!(out.contains("library OK"), "{out}");
    ok(romlib(&[
        "install",
        "-r",
        &small,
        "-g",
        "alpha-v2",
        "--install-dir",
        &w.s("inst"),
    ]));
    assert_same_tree(&w.p("in/alpha-v2"), &w.p("inst/alpha-v2"));
    // Again: nothing new, nothing rewritten.
    let snap = snapshot(&w.p("small"));
    let sk = w.s("k.sec");
    let out = ok(romlib(&[
        "import",
        &file,
        "-o",
        &small,
        "--signing-key",
        &sk,
    ]));
    assert_eq!(count_before(&out, "new"), 0, "{out}");
    assert!(
        snap == snapshot(&w.p("small")),
        "a second import changed the library"
    );
    // Into a new library, with an explicit key: the whole file's content.
    let (fresh, key) = (w.s("fresh"), w.s("k.pub"));
    let out = ok(romlib(&[
        "import",
        &file,
        "-o",
        &fresh,
        "--trusted-key",
        &key,
        "-g",
        "beta",
    ]));
    assert_eq!(count_before(&out, "new"), before, "{out}");
    let out = ok(romlib(&["list-games", "-r", &fresh]));
    assert!(out.contains("beta\t") && out.contains("1 game"), "{out}");
}

#[test]
fn a_truncated_or_altered_file_is_refused_with_nothing_installed() {
    let w = fixture();
    export(&w, "a.romlib", &["alpha", "beta"]);
    let bytes = std::fs::read(w.p("a.romlib")).unwrap();
    let key = w.s("k.pub");
    let p = Portable::open(&w.p("a.romlib")).unwrap();
    let pack = p.packs()[0];
    let beta = p.game("beta").unwrap().clone();
    drop(p);

    let install = |file: &str| {
        let out = device(&[
            "install",
            "-r",
            &w.s(file),
            "-g",
            "beta",
            "--install-dir",
            &w.s("inst"),
            "--trusted-key",
            &key,
        ]);
        assert!(!w.p("inst/beta").exists(), "a partial game is visible");
        out
    };
    // Truncations anywhere: the footer no longer checks out.
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 65, bytes.len() - 1] {
        std::fs::write(w.p("t.romlib"), &bytes[..cut]).unwrap();
        let file = w.s("t.romlib");
        let err = fails(install("t.romlib"), 1, &["t.romlib"]);
        assert!(!err.contains("panicked"), "{err}");
        fails(
            romlib(&["list-games", "-r", &file, "--trusted-key", &key]),
            1,
            &["t.romlib"],
        );
        fails(
            romlib(&["verify", "-r", &file, "--trusted-key", &key]),
            1,
            &["t.romlib"],
        );
    }
    // A flipped byte in a chunk record's payload: verify names it, install and cat refuse.
    let mut bad = bytes.clone();
    let at = (pack.offset + pack.len / 2) as usize;
    bad[at] ^= 0x40;
    std::fs::write(w.p("c.romlib"), &bad).unwrap();
    let file = w.s("c.romlib");
    let out = romlib(&["verify", "-r", &file, "--trusted-key", &key]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("checksum does not match"), "{text}");
    // Which game holds that record: one of the two fails to install, and reads of it fail.
    let mut failed = 0;
    for g in ["alpha", "beta"] {
        let out = device(&[
            "install",
            "-r",
            &file,
            "-g",
            g,
            "--install-dir",
            &w.s("inst2"),
            "--trusted-key",
            &key,
        ]);
        if !out.status.success() {
            failed += 1;
            fails(out, 1, &["c.romlib"]);
            assert!(!w.p(&format!("inst2/{g}")).exists());
        }
    }
    assert!(failed >= 1, "a corrupted record went unnoticed");
    // A flipped byte in beta's manifest body: its signature no longer verifies.
    let mut bad = bytes.clone();
    bad[beta.manifest_offset as usize + 20] ^= 0x01;
    std::fs::write(w.p("m.romlib"), &bad).unwrap();
    fails(install("m.romlib"), 1, &["m.romlib"]);
    // A locator entry pointing elsewhere: the record found is another chunk.
    let mut bad = bytes.clone();
    let e = beta.locator_offset as usize + LOCATOR_HEADER_LEN + LOCATOR_ENTRY_LEN + 4;
    bad[e] ^= 0x08;
    std::fs::write(w.p("l.romlib"), &bad).unwrap();
    fails(install("l.romlib"), 1, &["l.romlib"]);
    // The directory: a game's name changed.
    let mut bad = bytes.clone();
    let dir_off = u64::from_le_bytes(bad[bad.len() - 48..bad.len() - 40].try_into().unwrap());
    let last =
        dir_off as usize + 2 * romlib_format::portable::ENTRY_LEN + romlib_format::portable::E_NAME;
    assert_eq!(&bad[last..last + 4], b"beta", "directory layout");
    bad[last] = b'z';
    std::fs::write(w.p("d.romlib"), &bad).unwrap();
    fails(install("d.romlib"), 1, &["d.romlib"]);
}

#[test]
fn an_untrusted_signer_is_refused_and_import_changes_nothing() {
    let w = fixture();
    export(&w, "a.romlib", &["beta"]);
    ok(romlib(&[
        "keygen",
        "--secret-key",
        &w.s("o.sec"),
        "--public-key",
        &w.s("o.pub"),
    ]));
    let (file, other) = (w.s("a.romlib"), w.s("o.pub"));
    fails(
        device(&[
            "install",
            "-r",
            &file,
            "-g",
            "beta",
            "--install-dir",
            &w.s("inst"),
            "--trusted-key",
            &other,
        ]),
        1,
        &["a.romlib"],
    );
    assert!(!w.p("inst/beta").exists());
    fails(
        device(&[
            "cat",
            "-r",
            &file,
            "-g",
            "beta",
            "--trusted-key",
            &other,
            "beta.rom",
        ]),
        1,
        &["a.romlib"],
    );
    let out = ok(romlib(&[
        "list-games",
        "-r",
        &file,
        "--trusted-key",
        &other,
    ]));
    assert!(out.contains("SIGNATURE NOT TRUSTED"), "{out}");
    // Import into an existing library trusting only the other key: refused, untouched.
    ok(w.build("in", "lib2", &["--avg-chunk", "4096", "-q"]));
    let snap = snapshot(&w.p("lib2"));
    fails(
        romlib(&[
            "import",
            &file,
            "-o",
            &w.s("lib2"),
            "--trusted-key",
            &other,
            "--signing-key",
            &w.s("k.sec"),
        ]),
        1,
        &["a.romlib"],
    );
    assert!(
        snap == snapshot(&w.p("lib2")),
        "a refused import changed the library"
    );
    // Exporting from a damaged library fails and leaves no file.
    let pack = std::fs::read_dir(w.p("lib/packs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let len = std::fs::metadata(&pack).unwrap().len();
    flip(&pack, len / 2);
    let out = romlib(&["export", "-r", &w.s("lib"), "--all", "-o", &w.s("x.romlib")]);
    fails(out, 1, &["pack-"]);
    assert!(!w.p("x.romlib").exists());
    assert!(
        std::fs::read_dir(w.dir.path()).unwrap().all(|e| {
            !e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".x.romlib")
        }),
        "a temporary export file was left behind"
    );
}

#[test]
fn the_builder_keeps_a_locator_per_game_that_verify_checks() {
    let w = fixture();
    let lib = romlib_device::Library::new(w.p("lib"));
    for g in ["alpha", "alpha-v2", "beta"] {
        let m = romlib_device::ManifestFile::open(&lib.manifest_path(g)).unwrap();
        let b = std::fs::read(lib.locator_path(g)).unwrap();
        let h = romlib_format::portable::LocatorHeader::decode(&b).unwrap();
        assert_eq!(h.count as u64, m.unverified_body().chunk_count);
        assert_eq!(
            h.table_blake3.as_slice(),
            m.unverified_body().chunk_table_blake3.as_slice()
        );
    }
    let verify = || romlib(&["verify", "-r", &w.s("lib")]);
    let out = ok(verify());
    assert!(!out.contains("locator"), "{out}");
    // A wrong entry is a problem; a rebuild with nothing new rewrites it.
    let path = lib.locator_path("beta");
    flip(&path, (LOCATOR_HEADER_LEN + 4) as u64);
    let out = verify();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("beta.locator") && text.contains("disagree"),
        "{text}"
    );
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
    ok(verify());
    // A missing one is a problem (no reader finds the game's chunks without it), and
    // comes back the same way.
    let good = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let out = verify();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PROBLEM") && text.contains("beta.locator") && text.contains("missing"),
        "{text}"
    );
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
    assert_eq!(std::fs::read(&path).unwrap(), good);
    // A rebuild with nothing new leaves them untouched (no write at all).
    let before = snapshot(&w.p("lib"));
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
    assert!(before == snapshot(&w.p("lib")));
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
}
