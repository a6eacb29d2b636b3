//! End-to-end tests of the host builder (`romlib`): real files, real redb, real signatures.

use romlib_tests::*;
use std::fs;

#[test]
fn build_list_install_round_trip() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 1);
    write(&w.p("in"), "beta/.DS_Store", b"junk");
    write(&w.p("in"), "beta/._beta.rom", b"appledouble");
    let out = ok(w.build("in", "lib", &[]));
    assert!(out.contains("3 games, 8 files"), "{out}");
    assert!(out.contains("skipped 2 junk files"), "{out}");
    let list = ok(romlib(&["list-games", "-r", &w.s("lib")]));
    assert!(
        list.contains("alpha\talpha\t-\t4 files\t1200000 bytes"),
        "{list}"
    );
    assert!(list.contains("3 games"));
    let json = ok(romlib(&["list-games", "-r", &w.s("lib"), "--json"]));
    assert!(
        json.contains("\"title_id\": \"alpha-v2\"") && json.contains("\"signature_ok\": true"),
        "{json}"
    );
    for g in ["alpha", "alpha-v2", "beta"] {
        ok(romlib(&[
            "install",
            "-g",
            g,
            "-r",
            &w.s("lib"),
            "--install-dir",
            &w.s("inst"),
        ]));
        let mut want = snapshot(&w.p("in").join(g));
        want.retain(|(n, _)| !n.contains("DS_Store") && !n.contains("._"));
        let got: Vec<_> = snapshot(&w.p("inst").join(g))
            .into_iter()
            .filter(|(n, _)| n != ".romlib-installed")
            .collect();
        assert!(want == got, "{g} differs");
    }
    // Junk kept on request.
    ok(w.build("in", "lib-junk", &["--include-junk"]));
    let list = ok(romlib(&["list-games", "-r", &w.s("lib-junk")]));
    assert!(list.contains("beta\tbeta\t-\t4 files"), "{list}");
}

#[test]
fn deduplicates_within_and_across_games() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 2);
    let out = ok(w.build("in", "lib", &[]));
    // 2.35 MB of input, of which the 700 kB revision and two 300 kB copies are shared.
    let total: u64 = snapshot(&w.p("in"))
        .iter()
        .map(|(_, b)| b.len() as u64)
        .sum();
    let packs: u64 = snapshot(&w.p("lib/packs"))
        .iter()
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert!(
        packs < total * 6 / 10,
        "packs {packs} vs input {total}: {out}"
    );
}

fn lib_state(w: &Workspace, lib: &str) -> Vec<(String, Vec<u8>)> {
    snapshot(&w.p(lib))
}

#[test]
fn deterministic_across_threads_and_listing_order() {
    let w = Workspace::new();
    sample_input(&w.p("in1"), 3);
    // The same games written in another order, so directory listings differ.
    let mut games: Vec<_> = snapshot(&w.p("in1"));
    games.reverse();
    for (rel, data) in &games {
        write(&w.p("in2"), rel, data);
    }
    ok(w.build("in1", "lib1", &["--threads", "1", "--pack-size", "1048576"]));
    ok(w.build("in2", "lib2", &["--threads", "2", "--pack-size", "1048576"]));
    let strip = |v: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
        v.into_iter()
            .filter(|(n, _)| n.starts_with("packs/") || n.starts_with("games/"))
            .collect()
    };
    let a = strip(lib_state(&w, "lib1"));
    let b = strip(lib_state(&w, "lib2"));
    assert!(
        a.iter().filter(|(n, _)| n.starts_with("packs/")).count() >= 2,
        "expected roll-over"
    );
    assert_eq!(a.len(), b.len());
    for ((na, ba), (nb, bb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(
            ba == bb,
            "{na} differs between thread counts / listing orders"
        );
    }
}

#[test]
fn incremental_builds_append_and_no_op_writes_nothing() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 4);
    ok(w.build("in", "lib", &[]));
    let before = lib_state(&w, "lib");
    let mtimes: Vec<_> = before
        .iter()
        .map(|(n, _)| {
            fs::metadata(w.p("lib").join(n))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    // Nothing new: nothing written, not even the index.
    let out = ok(w.build("in", "lib", &[]));
    assert!(
        out.contains("0 new") && out.contains("0 written, 3 unchanged"),
        "{out}"
    );
    let after = lib_state(&w, "lib");
    assert!(before == after, "a no-op run changed the library");
    for ((n, _), t) in before.iter().zip(&mtimes) {
        assert_eq!(
            fs::metadata(w.p("lib").join(n))
                .unwrap()
                .modified()
                .unwrap(),
            *t,
            "{n} touched"
        );
    }
    // A new game: a new pack, old packs untouched, old manifests unchanged.
    let mut r = Rng::new(99);
    write(&w.p("in"), "gamma/g.bin", &r.bytes(100_000));
    let out = ok(w.build("in", "lib", &[]));
    assert!(
        out.contains("1 new pack; manifests: 1 written, 3 unchanged"),
        "{out}"
    );
    let after = lib_state(&w, "lib");
    for (n, b) in &before {
        if n.starts_with("packs/") || n.starts_with("games/") {
            let now = after.iter().find(|(m, _)| m == n).expect("kept");
            assert!(&now.1 == b, "{n} was rewritten");
        }
    }
    assert!(after.iter().any(|(n, _)| n == "packs/pack-0002.pkg"));
    ok(romlib(&[
        "install",
        "-g",
        "gamma",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("inst"),
    ]));
    assert_same_tree(&w.p("in/gamma"), &w.p("inst/gamma"));
}

#[test]
fn split_build_packs_then_generate_manifests() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 5);
    ok(romlib(&[
        "build-packs",
        "-i",
        &w.s("in"),
        "-o",
        &w.s("lib"),
        "--avg-chunk",
        "16384",
    ]));
    assert!(!w.p("lib/games/alpha.manifest").exists());
    // Manifests need the same chunker: with another average the chunks are not stored.
    fails(
        romlib(&[
            "generate-manifests",
            "-i",
            &w.s("in"),
            "-o",
            &w.s("lib"),
            "--signing-key",
            &w.s("k.sec"),
        ]),
        1,
        &["not in the library; run build-packs first"],
    );
    ok(romlib(&[
        "generate-manifests",
        "-i",
        &w.s("in"),
        "-o",
        &w.s("lib"),
        "--signing-key",
        &w.s("k.sec"),
        "--avg-chunk",
        "16384",
    ]));
    ok(romlib(&[
        "install",
        "-g",
        "beta",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("inst"),
    ]));
    assert_same_tree(&w.p("in/beta"), &w.p("inst/beta"));
    // The one-step build of the same input gives the same manifests.
    ok(w.build("in", "lib2", &["--avg-chunk", "16384"]));
    assert_eq!(
        fs::read(w.p("lib/games/beta.manifest")).unwrap(),
        fs::read(w.p("lib2/games/beta.manifest")).unwrap()
    );
}

#[test]
fn dictionary_training_and_use() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 6);
    ok(w.build("in", "lib", &["-c", "3"]));
    let out = ok(romlib(&[
        "train-dict",
        "-r",
        &w.s("lib"),
        "-o",
        &w.s("d.zdict"),
        "--size",
        "16384",
    ]));
    assert!(out.contains("dictionary"), "{out}");
    ok(w.build("in", "libd", &["-c", "3", "-d", &w.s("d.zdict")]));
    assert_eq!(snapshot(&w.p("libd/dicts")).len(), 1);
    for g in ["alpha", "beta"] {
        ok(device(&[
            "install",
            "-g",
            g,
            "-r",
            &w.s("libd"),
            "--install-dir",
            &w.s("inst"),
            "--trusted-key",
            &w.s("k.pub"),
        ]));
        assert_same_tree(&w.p("in").join(g), &w.p("inst").join(g));
    }
    fails(
        w.build("in", "libx", &["-d", &w.s("k.pub")]),
        1,
        &["not a zstd dictionary"],
    );
}

#[test]
fn the_index_holds_every_chunk_the_manifests_name() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 7);
    ok(w.build("in", "lib", &[]));
    let indexed = |w: &Workspace| -> std::collections::BTreeSet<[u8; 32]> {
        romlib_host::library::runs::open_library(&w.p("lib"))
            .unwrap()
            .all_chunks()
            .unwrap()
            .into_iter()
            .map(|(h, _)| h)
            .collect()
    };
    let referenced = |w: &Workspace| -> std::collections::BTreeSet<[u8; 32]> {
        let mut out = std::collections::BTreeSet::new();
        for g in ["alpha", "alpha-v2", "beta"] {
            let m = romlib_device::ManifestFile::open(&w.p(&format!("lib/games/{g}.manifest")))
                .unwrap();
            let mut t = m.unverified_chunks().unwrap();
            while let Some(c) = t.next_chunk().unwrap() {
                out.insert(c.hash);
            }
        }
        out
    };
    assert_eq!(indexed(&w), referenced(&w));
    // Replacing beta's content adds its new chunks; the old ones stay indexed (and
    // stored) until a prune, unreferenced.
    let before = indexed(&w);
    let mut r = Rng::new(1234);
    write(&w.p("in"), "beta/beta.rom", &r.bytes(50_000));
    ok(w.build("in", "lib", &[]));
    let (now, refs) = (indexed(&w), referenced(&w));
    assert!(refs.is_subset(&now));
    assert!(before.is_subset(&now));
    assert!(
        now.difference(&refs).count() > 0,
        "beta's old chunks are unreferenced"
    );
}

#[test]
fn pack_size_limits_and_usage_errors() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 8);
    fails(
        w.build("in", "lib", &["--pack-size", "4294967296"]),
        2,
        &["below 4 GiB"],
    );
    fails(
        w.build("in", "lib", &["--avg-chunk", "3000"]),
        2,
        &["--avg-chunk"],
    );
    fails(w.build("in", "lib", &["-c", "23"]), 2, &["level"]);
    fails(romlib(&["build", "--bogus"]), 2, &[]);
    assert!(
        !w.p("lib").exists(),
        "usage errors must not create the library"
    );
}
