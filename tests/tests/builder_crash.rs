//! `kill -9` of the builder at random moments: the index must never point at bytes that
//! are not in a sealed pack, and the next run must complete the library.

use redb::ReadableDatabase;
use romlib_format::index::META_RUNS;
use romlib_format::pack::{RecordHeader, RECORD_HEADER_LEN};
use romlib_host::library::index::{META, PACKS};
use romlib_tests::*;
use std::io::{Read, Seek, SeekFrom};
use std::process::Stdio;

/// Checks every index entry against the pack bytes it points at.
fn check_index(lib: &std::path::Path) -> usize {
    // As the next builder will find it (after redb's repair of a killed build's index, to
    // its last durable commit), with every page's checksum checked, and without a write.
    let before = std::fs::read(lib.join("index.db")).unwrap();
    let db = romlib_host::library::index::open_checked(&lib.join("index.db")).unwrap();
    assert!(
        before == std::fs::read(lib.join("index.db")).unwrap(),
        "the check wrote"
    );
    let txn = db.begin_read().unwrap();
    let ix = chunk_index_of(lib, &db);
    // A first build killed before its first durable commit leaves an index without tables
    // (and so without a list of runs).
    let Ok(packs) = txn.open_table(PACKS) else {
        assert!(
            ix.ok().is_none_or(|ix| ix.all_chunks().unwrap().is_empty()),
            "chunks without packs"
        );
        return 0;
    };
    let mut n = 0;
    for (k, e) in ix.unwrap().all_chunks().unwrap() {
        assert!(
            packs.get(e.pack_id).unwrap().is_some(),
            "entry names an unlisted pack {}",
            e.pack_id
        );
        let path = lib.join("packs").join(format!("pack-{:04}.pkg", e.pack_id));
        let mut f =
            std::fs::File::open(&path).unwrap_or_else(|_| panic!("{} missing", path.display()));
        let mut rb = [0u8; RECORD_HEADER_LEN];
        f.seek(SeekFrom::Start(e.offset)).unwrap();
        f.read_exact(&mut rb).unwrap();
        let rec = RecordHeader::decode(&rb).unwrap();
        assert_eq!(rec.hash, k, "index points at another record");
        let mut payload = vec![0u8; rec.clen as usize];
        f.read_exact(&mut payload).unwrap();
        n += 1;
    }
    n
}

#[test]
fn kill_during_build_never_corrupts_the_index() {
    let w = Workspace::new();
    let mut r = Rng::new(50);
    for g in 0..6 {
        write(&w.p("in"), &format!("g{g}/disc.bin"), &r.text(3 << 20));
        write(&w.p("in"), &format!("g{g}/raw.bin"), &r.bytes(1 << 20));
    }
    let args = |lib: &str| -> Vec<String> {
        [
            "build",
            "-i",
            &w.s("in"),
            "-o",
            &w.s(lib),
            "--signing-key",
            &w.s("k.sec"),
            "--pack-size",
            "1048576",
            "-q",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let t0 = std::time::Instant::now();
    ok(linux_host_cmd().args(args("ref")).output().unwrap());
    let full = t0.elapsed();
    let mut killed = 0;
    let mut i = 0u64;
    while killed < 10 {
        i += 1;
        assert!(i < 60, "only {killed} builds could be killed mid-way");
        // Every third run starts over, so kills also land early in a build; the others
        // continue from what the killed run left.
        if i.is_multiple_of(3) {
            let _ = std::fs::remove_dir_all(w.p("lib"));
        }
        let mut child = linux_host_cmd()
            .args(args("lib"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64((Rng::new(i).next_u64() % 900) as f64 / 1000.0));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        if w.p("lib/index.db").exists() {
            check_index(&w.p("lib"));
        }
    }
    // The next run completes the library, which then equals an uninterrupted build.
    ok(linux_host_cmd().args(args("lib")).output().unwrap());
    let n = check_index(&w.p("lib"));
    assert_eq!(n, check_index(&w.p("ref")));
    for g in 0..6 {
        let title = format!("g{g}");
        ok(device(&[
            "verify",
            "-g",
            &title,
            "-r",
            &w.s("lib"),
            "--trusted-key",
            &w.s("k.pub"),
        ]));
    }
    let names: Vec<String> = snapshot(&w.p("lib")).into_iter().map(|(n, _)| n).collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains(".partial") || n.ends_with(".tmp")),
        "{names:?}"
    );
}

#[test]
fn recovery_adopts_orphan_packs_and_cleans_partials() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 51);
    ok(w.build("in", "lib", &[]));
    let before = snapshot(&w.p("lib/games"));
    // As if the build died after renaming its pack but before the index commit, with an
    // unfinished pack and an unfinished manifest beside it.
    {
        let db = redb::Database::open(w.p("lib/index.db")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(PACKS).unwrap().remove(1).unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_RUNS, [].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    write(
        &w.p("lib"),
        "packs/.pack-0002.pkg.partial",
        b"PKGSTR half written",
    );
    write(&w.p("lib"), "games/.zeta.manifest.tmp", b"ROMLMANI torn");
    let out = w.build("in", "lib", &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(
        err.contains("indexed pack 1 left by an interrupted build"),
        "{err}"
    );
    assert!(err.contains("removed unfinished pack"), "{err}");
    assert!(
        err.contains("removed an unfinished manifest of zeta"),
        "{err}"
    );
    assert_eq!(snapshot(&w.p("lib/games")), before);
    assert!(
        !w.p("lib/packs/pack-0002.pkg").exists(),
        "adopted chunks must not be stored again"
    );
    check_index(&w.p("lib"));
    ok(device(&[
        "verify",
        "-g",
        "alpha",
        "-r",
        &w.s("lib"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    // A pack the index lists but the disk lacks is reported, not papered over.
    std::fs::remove_file(w.p("lib/packs/pack-0001.pkg")).unwrap();
    fails(w.build("in", "lib", &[]), 1, &["pack-0001.pkg", "missing"]);
}

#[test]
fn kill_during_a_background_merge_never_corrupts_the_index() {
    // Runs above 64 KiB of rows are read from disk and merged in the background: the third
    // build merges the first two's while it reads its game, and the fourth merges that
    // run with the third's.
    let w = Workspace::new();
    let mut r = Rng::new(51);
    let env = ("ROMLIB_RUN_IN_MEMORY", "65536");
    let build = |input: &str, lib: &str| -> std::process::Command {
        let mut c = linux_host_cmd();
        c.args([
            "build",
            "-i",
            &w.s(input),
            "-o",
            &w.s(lib),
            "--signing-key",
            &w.s("k.sec"),
            "--avg-chunk",
            "1024",
            "-q",
        ])
        .env(env.0, env.1);
        c
    };
    for g in 0..3 {
        write(&w.p("in"), &format!("g{g}/rom.bin"), &r.bytes(1 << 20));
        ok(build("in", "base").output().unwrap());
    }
    let runs_of = |lib: &str| {
        let db = romlib_host::library::index::open_checked(&w.p(lib).join("index.db")).unwrap();
        chunk_index_of(&w.p(lib), &db).unwrap().ids()
    };
    assert_eq!(
        runs_of("base").len(),
        2,
        "the first two runs merged during the third build"
    );
    write(&w.p("in"), "g3/rom.bin", &r.bytes(3 << 20));
    copy_tree(&w.p("base"), &w.p("ref"));
    let t0 = std::time::Instant::now();
    ok(build("in", "ref").output().unwrap());
    let full = t0.elapsed();
    let want = check_index(&w.p("ref"));
    assert_eq!(
        runs_of("ref").len(),
        2,
        "merged during the fourth build, and its own run"
    );
    let mut killed = 0;
    for i in 0..20u64 {
        let _ = std::fs::remove_dir_all(w.p("lib"));
        copy_tree(&w.p("base"), &w.p("lib"));
        let mut child = build("in", "lib")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64((Rng::new(5100 + i).next_u64() % 900) as f64 / 1000.0));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        check_index(&w.p("lib"));
        // The next build finishes: the same chunks as an uncut one, every game readable,
        // and nothing in runs/ but the runs the index names and their filters.
        ok(build("in", "lib").output().unwrap());
        assert_eq!(check_index(&w.p("lib")), want, "after kill {i}");
        for g in 0..4 {
            ok(device(&[
                "verify",
                "-g",
                &format!("g{g}"),
                "-r",
                &w.s("lib"),
                "--trusted-key",
                &w.s("k.pub"),
            ]));
        }
        let ids = runs_of("lib");
        assert!(ids.len() <= 4, "after kill {i}: {ids:?}");
        for e in std::fs::read_dir(w.p("lib/runs")).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let id = name
                .split('.')
                .next()
                .and_then(|h| u64::from_str_radix(h, 16).ok());
            assert!(
                id.is_some_and(|id| ids.contains(&id)),
                "after kill {i}: {name} in runs/, the index names {ids:?}"
            );
        }
    }
    assert!(killed >= 10, "only {killed} builds were killed mid-way");
}
