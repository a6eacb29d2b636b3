//! The chunk index's sorted runs (SPEC section 5.3) on hostile and damaged ground: a
//! damaged run is found by verify and replaced by `rebuild-index`, a build that needs it
//! stops in one line; stray files and links under run names are removed, never followed;
//! `runs/` that is not a folder is refused; and many builds merge into few runs that
//! still find every chunk.

use romlib_tests::*;
use std::fs;
use std::path::{Path, PathBuf};

fn runs(lib: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(lib.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn library(w: &Workspace) {
    let mut r = Rng::new(7);
    let base = r.bytes(200_000);
    write(&w.p("in"), "alpha/game.bin", &base);
    write(&w.p("in"), "beta/game.bin", &r.variant(&base, 5, 30));
    write(&w.p("in"), "gamma/disc.iso", &r.text(150_000));
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
}

#[test]
fn a_damaged_run_is_named_by_verify_refused_by_a_build_and_replaced_by_rebuild_index() {
    let w = Workspace::new();
    library(&w);
    let run = runs(&w.p("lib")).pop().unwrap();
    let len = fs::metadata(&run).unwrap().len();
    // A flipped bit among the chunk rows.
    flip(&run, 16 + (len - 16) / 4);
    let v = romlib(&[
        "verify",
        "-q",
        "-r",
        &w.s("lib"),
        "--trusted-key",
        &w.s("k.pub"),
    ]);
    let out = String::from_utf8_lossy(&v.stdout).into_owned();
    assert_eq!(v.status.code(), Some(1), "{out}");
    let name = run.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        out.lines()
            .any(|l| l.contains(&name) && l.contains("rebuild-index")),
        "{out}"
    );
    // Every game still installs: no reader opens the index.
    for g in ["alpha", "beta", "gamma"] {
        ok(device(&[
            "install",
            "-r",
            &w.s("lib"),
            "-g",
            g,
            "--install-dir",
            &w.s("inst"),
            "--trusted-key",
            &w.s("k.pub"),
        ]));
    }
    // A build that looks chunks up in the damaged block stops in one line naming the run
    // (or, if its lookups miss that block, succeeds); never a panic.
    let out = w.build("in", "lib", &["--avg-chunk", "4096", "-q", "--reread"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    if !out.status.success() {
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&name) && err.contains("rebuild-index"),
            "{err}"
        );
    }
    ok(romlib(&["rebuild-index", "-r", &w.s("lib")]));
    assert!(!run.exists(), "the damaged run is gone with the old index");
    verify_ok(&w, "lib");
    // And the next build stores nothing.
    let out = ok(w.build("in", "lib", &["--avg-chunk", "4096", "--reread"]));
    assert!(out.contains(" 0 new (0.0 MiB)"), "{out}");
}

#[test]
fn stray_files_and_links_under_run_names_are_removed_never_followed() {
    let w = Workspace::new();
    library(&w);
    let before = runs(&w.p("lib"));
    // Planted: junk under a run's name, a link under a run's name to a file outside, and
    // a file whose name is no run's (left alone).
    let outside = w.p("outside.txt");
    fs::write(&outside, b"precious").unwrap();
    fs::write(w.p("lib/runs/00000000000000ff.run"), b"junk").unwrap();
    std::os::unix::fs::symlink(&outside, w.p("lib/runs/00000000000000fe.run")).unwrap();
    fs::write(w.p("lib/runs/notes.txt"), b"mine").unwrap();
    let mut r = Rng::new(8);
    write(&w.p("in"), "delta/game.bin", &r.bytes(100_000));
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
    assert_eq!(fs::read(&outside).unwrap(), b"precious");
    assert!(!w.p("lib/runs/00000000000000ff.run").exists());
    assert!(fs::symlink_metadata(w.p("lib/runs/00000000000000fe.run")).is_err());
    assert!(w.p("lib/runs/notes.txt").exists());
    // New runs are numbered after every run name seen, planted ones too.
    let new: Vec<u64> = runs(&w.p("lib"))
        .iter()
        .filter(|p| !before.contains(p))
        .filter_map(|p| {
            romlib_host::library::runs::parse_run_file_name(&p.file_name()?.to_string_lossy())
        })
        .collect();
    assert!(
        !new.is_empty() && new.iter().all(|&id| id > 0xff),
        "{new:?}"
    );
    verify_ok(&w, "lib");
    // A run named by the index that is a link is refused in one line, its target unread.
    let named = runs(&w.p("lib"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "run"))
        .unwrap();
    let moved = w.p("moved.run");
    fs::rename(&named, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &named).unwrap();
    write(&w.p("in"), "epsilon/game.bin", &r.bytes(50_000));
    fails(
        w.build("in", "lib", &["--avg-chunk", "4096", "-q"]),
        1,
        &["symbolic link", ".run"],
    );
}

#[test]
fn a_runs_path_that_is_no_folder_is_refused() {
    let w = Workspace::new();
    library(&w);
    fs::remove_dir_all(w.p("lib/runs")).unwrap();
    fs::create_dir(w.p("elsewhere")).unwrap();
    std::os::unix::fs::symlink(w.p("elsewhere"), w.p("lib/runs")).unwrap();
    fails(
        w.build("in", "lib", &["--avg-chunk", "4096", "-q"]),
        1,
        &["runs", "not a folder"],
    );
    assert_eq!(fs::read_dir(w.p("elsewhere")).unwrap().count(), 0);
}

#[test]
fn many_builds_merge_into_few_runs_that_find_every_chunk() {
    let w = Workspace::new();
    let mut r = Rng::new(9);
    // Each build adds a game whose chunks are new, so each adds a run; merges keep the
    // count logarithmic.
    for i in 0..12 {
        write(&w.p("in"), &format!("g{i:02}/game.bin"), &r.bytes(40_000));
        ok(w.build("in", "lib", &["--avg-chunk", "1024", "-q"]));
        let n = runs(&w.p("lib")).len();
        assert!(n <= 4, "{n} runs after {} builds", i + 1);
    }
    let ix = romlib_host::library::runs::open_library(&w.p("lib")).unwrap();
    for r in ix.runs() {
        r.check().unwrap();
    }
    // Every chunk every manifest names is found, by lookup and in the merged order.
    let all = ix.all_chunks().unwrap();
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    for i in 0..12 {
        let m = romlib_device::ManifestFile::open(&w.p(&format!("lib/games/g{i:02}.manifest")))
            .unwrap();
        let mut t = m.unverified_chunks().unwrap();
        while let Some(c) = t.next_chunk().unwrap() {
            assert!(ix.get(&c.hash).unwrap().is_some());
            assert!(all.binary_search_by(|e| e.0.cmp(&c.hash)).is_ok());
        }
    }
    verify_ok(&w, "lib");
}
