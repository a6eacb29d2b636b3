//! End-to-end tests of similar-chunk deltas (SPEC section 2.2, method 3): near-copies are
//! stored as small deltas against a base chunk, and every reader gets the exact bytes back
//! (device and host install, a portable file, HTTP, `cat`, verify); damaged or missing
//! bases, chains and hostile frames are refused with one line, nothing visible, and the
//! installed version intact.

use romlib_format::index::ChunkEntry;
use romlib_format::pack::{Method, RECORD_HEADER_LEN};
use romlib_tests::*;
use std::fs;
use std::path::Path;

/// A base ROM-like file and three revisions of it (scattered edits, one insertion), one
/// game each: `in/base`, `in/rev-1` ...
fn variant_input(root: &Path) -> Vec<Vec<u8>> {
    let mut r = Rng::new(77);
    let mut base = Vec::new();
    while base.len() < 256 * 1024 {
        base.extend_from_slice(&r.text(16 * 1024));
        base.extend_from_slice(&r.bytes(16 * 1024));
    }
    write(root, "base/rom.bin", &base);
    let mut all = vec![base.clone()];
    for n in 1..=3 {
        let v = r.variant(&base, 20, 512);
        write(root, &format!("rev-{n}/rom.bin"), &v);
        all.push(v);
    }
    all
}

fn packs_bytes(lib: &Path) -> u64 {
    fs::read_dir(lib.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn fixture(extra: &[&str]) -> Workspace {
    let w = Workspace::new();
    variant_input(&w.p("in"));
    let mut args = vec!["--avg-chunk", "8192", "-q"];
    args.extend_from_slice(extra);
    ok(w.build("in", "lib", &args));
    w
}

fn dev_install(w: &Workspace, lib: &str, game: &str, dir: &str) -> std::process::Output {
    device(&[
        "install",
        "-g",
        game,
        "-r",
        &w.s(lib),
        "--install-dir",
        &w.s(dir),
        "--trusted-key",
        &w.s("k.pub"),
    ])
}

#[test]
fn revisions_are_stored_as_deltas_and_every_reader_gets_their_bytes() {
    let w = fixture(&[]);
    let whole = Workspace::new();
    variant_input(&whole.p("in"));
    ok(whole.build("in", "lib", &["--avg-chunk", "8192", "-q", "--no-deltas"]));
    let only_base = Workspace::new();
    variant_input(&only_base.p("in"));
    for n in 1..=3 {
        fs::remove_dir_all(only_base.p(&format!("in/rev-{n}"))).unwrap();
    }
    ok(only_base.build("in", "lib", &["--avg-chunk", "8192", "-q"]));
    let (with, without, base) = (
        packs_bytes(&w.p("lib")),
        packs_bytes(&whole.p("lib")),
        packs_bytes(&only_base.p("lib")),
    );
    // Three revisions cost a fraction of a copy each; without deltas, nearly a copy each.
    assert!(
        with * 10 < base * 15,
        "{with} bytes with deltas, base alone {base}"
    );
    assert!(
        without > with * 2,
        "{without} bytes without deltas, {with} with"
    );
    let shown = ok(romlib(&["show", "-g", "rev-2", "-r", &w.s("lib")]));
    assert!(shown.contains("are stored as deltas"), "{shown}");
    assert!(!shown.contains("deltas         0 of"), "{shown}");

    for g in ["base", "rev-1", "rev-2", "rev-3"] {
        ok(dev_install(&w, "lib", g, "dev"));
        assert_same_tree(&w.p(&format!("in/{g}")), &w.p(&format!("dev/{g}")));
        ok(romlib(&[
            "install",
            "-g",
            g,
            "-r",
            &w.s("lib"),
            "--install-dir",
            &w.s("host"),
        ]));
        assert_same_tree(&w.p(&format!("in/{g}")), &w.p(&format!("host/{g}")));
        let cat = device(&[
            "cat",
            "-g",
            g,
            "-r",
            &w.s("lib"),
            "--trusted-key",
            &w.s("k.pub"),
            "rom.bin",
        ]);
        assert!(cat.status.success());
        assert!(cat.stdout == fs::read(w.p(&format!("in/{g}/rom.bin"))).unwrap());
    }
    ok(romlib(&["verify", "-r", &w.s("lib")]));

    // A portable file of one revision carries the bases it needs, and nothing more is
    // needed to install it; importing it elsewhere gives a library that verifies.
    ok(romlib(&[
        "export",
        "-r",
        &w.s("lib"),
        "-g",
        "rev-3",
        "-o",
        &w.s("rev3.romlib"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    ok(romlib(&[
        "verify",
        "-r",
        &w.s("rev3.romlib"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    ok(dev_install(&w, "rev3.romlib", "rev-3", "portable"));
    assert_same_tree(&w.p("in/rev-3"), &w.p("portable/rev-3"));
    ok(romlib(&[
        "import",
        &w.s("rev3.romlib"),
        "-o",
        &w.s("imported"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    ok(romlib(&["verify", "-r", &w.s("imported")]));
    ok(dev_install(&w, "imported", "rev-3", "from-import"));
    assert_same_tree(&w.p("in/rev-3"), &w.p("from-import/rev-3"));
}

/// A package of near-copies of one file: nearly every chunk is a delta, and many deltas
/// share a base, which each decoder thread keeps decoded in its base cache (the reader
/// sends a base's record only when it knows the thread lacks it). Whatever the thread count
/// and the memory (so the cache's size), the files come out byte-identical, on one core
/// and on all.
#[test]
fn shared_bases_decode_once_per_thread_at_any_thread_count() {
    let w = Workspace::new();
    let mut r = Rng::new(32);
    let base = r.text(300_000);
    for i in 0..12 {
        let mut v = base.clone();
        for _ in 0..20 {
            let at = (r.next_u64() % (v.len() as u64 - 8)) as usize;
            v[at..at + 8].copy_from_slice(&r.bytes(8));
        }
        write(&w.p("in"), &format!("pkg/f{i:02}.dat"), &v);
    }
    ok(w.build("in", "lib", &["--avg-chunk", "4096"]));
    let shown = ok(romlib(&["show", "-g", "pkg", "-r", &w.s("lib")]));
    let deltas: u64 = shown
        .lines()
        .find_map(|l| l.strip_prefix("deltas"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(deltas > 150, "{shown}");
    for (threads, memory) in [("1", "8"), ("2", "8"), ("3", "4"), ("2", "64"), ("", "1")] {
        let dir = format!("inst-{threads}-{memory}");
        let mut c = device_cmd();
        if !threads.is_empty() {
            c.env("ROMLIB_DECODERS", threads);
        }
        c.args([
            "install",
            "-g",
            "pkg",
            "-r",
            &w.s("lib"),
            "--install-dir",
            &w.s(&dir),
        ]);
        c.args(["--trusted-key", &w.s("k.pub"), "--max-memory", memory]);
        ok(c.output().unwrap());
        assert_same_tree(&w.p("in/pkg"), &w.p(&format!("{dir}/pkg")));
    }
}

#[test]
fn deltas_are_deterministic_and_found_across_incremental_builds() {
    let w = fixture(&["--threads", "1"]);
    let again = Workspace::new();
    variant_input(&again.p("in"));
    // Other thread count, and the revisions added by a second run after the base.
    fs::create_dir_all(again.p("first")).unwrap();
    fs::rename(again.p("in/base"), again.p("first/base")).unwrap();
    ok(again.build(
        "first",
        "lib",
        &["--avg-chunk", "8192", "-q", "--threads", "2"],
    ));
    fs::rename(again.p("first/base"), again.p("in/base")).unwrap();
    ok(again.build(
        "in",
        "lib",
        &["--avg-chunk", "8192", "-q", "--threads", "2"],
    ));
    let one = fixture(&["--threads", "2"]);
    assert_eq!(
        snapshot(&w.p("lib/packs")),
        snapshot(&one.p("lib/packs")),
        "packs differ between thread counts"
    );
    // The incremental library found its bases in the first run's packs.
    let (full, incremental) = (packs_bytes(&w.p("lib")), packs_bytes(&again.p("lib")));
    assert!(incremental < full + full / 10, "{incremental} vs {full}");
    ok(romlib(&["verify", "-r", &again.s("lib")]));
    ok(dev_install(&again, "lib", "rev-1", "i"));
    assert_same_tree(&again.p("in/rev-1"), &again.p("i/rev-1"));
}

#[test]
fn an_upgrade_over_http_downloads_only_the_delta_bytes() {
    let w = fixture(&[]);
    let (mut child, port, _out) = start_serve(&w.s("lib"));
    let url = format!("http://127.0.0.1:{port}/");
    let k = w.s("k.pub");
    let d = w.s("dev");
    let install = |g: &str| {
        ok(device(&[
            "install",
            "--from",
            &url,
            "-g",
            g,
            "--install-dir",
            &d,
            "--trusted-key",
            &k,
        ]))
    };
    install("base");
    let out = install("rev-2");
    let _ = child.kill();
    let _ = child.wait();
    assert_same_tree(&w.p("in/rev-2"), &w.p("dev/rev-2"));
    let downloaded: u64 = out
        .split("downloaded ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no download figure in {out:?}"));
    let size = fs::metadata(w.p("in/rev-2/rom.bin")).unwrap().len();
    // The bases come from the installed base game: only deltas and small files travel.
    assert!(
        downloaded * 100 < size * 3,
        "{downloaded} of {size} bytes downloaded"
    );
}

/// Every chunk's index entry, by hash.
type Entries = Vec<([u8; 32], ChunkEntry)>;
/// Every delta chunk's hash with its base's.
type Bases = Vec<([u8; 32], [u8; 32])>;

/// Every index entry of `lib`, and the base of every delta.
fn index(lib: &Path) -> (Entries, Bases) {
    let ix = romlib_host::library::runs::open_library(lib).unwrap();
    (ix.all_chunks().unwrap(), ix.all_deltas().unwrap())
}

#[test]
fn broken_bases_chains_and_frames_are_refused_and_the_installed_version_stays() {
    let w = fixture(&[]);
    let (entries, bases) = index(&w.p("lib"));
    assert!(!bases.is_empty());
    let entry = |h: &[u8; 32]| entries.iter().find(|(k, _)| k == h).unwrap().1;
    let base = bases[0].1;
    // The first revision whose table holds a delta on that base, and that delta.
    let (game, delta) = ["rev-1", "rev-2", "rev-3"]
        .into_iter()
        .find_map(|g| {
            let m = romlib_device::ManifestFile::open(&w.p(&format!("lib/games/{g}.manifest")))
                .unwrap();
            let mut t = m.unverified_chunks().unwrap();
            while let Some(c) = t.next_chunk().unwrap() {
                if bases.iter().any(|(d, b)| *d == c.hash && *b == base) {
                    return Some((g, c.hash));
                }
            }
            None
        })
        .unwrap();
    ok(dev_install(&w, "lib", game, "dev"));
    let installed = snapshot(&w.p(&format!("dev/{game}")));
    let reinstall_fails = |lib: &str, needles: &[&str]| {
        let err = fails(dev_install(&w, lib, game, "dev"), 1, needles);
        assert_eq!(snapshot(&w.p(&format!("dev/{game}"))), installed, "{err}");
        let staging: Vec<_> = fs::read_dir(w.p("dev"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.') && n != ".romlib-resume")
            .collect();
        assert!(staging.is_empty(), "left behind: {staging:?}");
        err
    };
    let copy = |name: &str| {
        let dst = w.p(name);
        fs::create_dir_all(&dst).unwrap();
        for sub in ["packs", "games", "keys"] {
            fs::create_dir_all(dst.join(sub)).unwrap();
            for e in fs::read_dir(w.p("lib").join(sub)).unwrap() {
                let e = e.unwrap();
                fs::copy(e.path(), dst.join(sub).join(e.file_name())).unwrap();
            }
        }
        fs::copy(w.p("lib/index.db"), dst.join("index.db")).unwrap();
        dst
    };

    // The base's bytes do not hash: one payload byte flipped.
    let lib = copy("bad-bytes");
    let b = entry(&base);
    flip(
        &lib.join(format!("packs/pack-{:04}.pkg", b.pack_id)),
        b.offset + RECORD_HEADER_LEN as u64 + b.clen as u64 / 2,
    );
    reinstall_fails("bad-bytes", &["base chunk"]);
    let verify = romlib(&["verify", "-r", &w.s("bad-bytes")]);
    let report = String::from_utf8_lossy(&verify.stdout).into_owned()
        + &String::from_utf8_lossy(&verify.stderr);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        report.contains(&format!("game {game} cannot be installed")),
        "{report}"
    );

    // The base is missing from the library (its locator entry removed).
    copy("no-base");
    edit_locator(&w.p("no-base"), game, |l| {
        l.bases.remove(&base);
    });
    reinstall_fails("no-base", &["base chunk", "is not in the library"]);

    // A tampered locator makes the base a delta itself (a chain, or a cycle back to the
    // delta): refused before any of it is decoded (a locator's base entry may not be a
    // delta at all).
    copy("chain");
    edit_locator(&w.p("chain"), game, |l| {
        l.bases.get_mut(&base).unwrap().method = Method::ZstdDelta;
    });
    reinstall_fails("chain", &[".locator", "base entry has invalid method"]);

    // A delta frame that claims a window far beyond MAX_WINDOW_SIZE.
    let lib = copy("huge-window");
    let d = entry(&delta);
    let frame_at = d.offset + RECORD_HEADER_LEN as u64 + 32;
    let pack = lib.join(format!("packs/pack-{:04}.pkg", d.pack_id));
    let mut bytes = fs::read(&pack).unwrap();
    // Frame descriptor without the single-segment flag, then a window of 2 GiB.
    bytes[frame_at as usize + 4] = 0x00;
    bytes[frame_at as usize + 5] = 0xa8;
    fs::write(&pack, bytes).unwrap();
    reinstall_fails("huge-window", &["zstd"]);
}
