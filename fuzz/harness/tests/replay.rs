//! Replays every seed (`fuzz/seeds/<target>/`) and every kept crash
//! (`fuzz/regressions/<target>/`) through its target on each `cargo test`, so a crash the
//! fuzzer once found cannot come back unnoticed, even where nobody runs the fuzzer.
//!
//! A folder must be named after a target (a typo would otherwise silently replay nothing),
//! and each input must return normally and quickly: a panic or a run longer than
//! [`SLOW`] (a hang the fuzzer stopped at its `-timeout`) fails the test, naming the file.

use romlib_fuzz_harness::{target, TARGETS};
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest a kept input may take in a debug build (the fuzzer's limit is 10 s in release).
const SLOW: Duration = Duration::from_secs(30);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Finds a target's function by name.
type Lookup = dyn Fn(&str) -> Option<fn(&[u8])>;

/// Runs every file under `dir/<target>/` through the function `lookup` gives for
/// `<target>`; returns how many ran and what failed.
fn replay(dir: &Path, lookup: &Lookup) -> (usize, Vec<String>) {
    let mut ran = 0;
    let mut failed = Vec::new();
    let Ok(targets) = fs::read_dir(dir) else {
        return (0, failed);
    };
    let mut targets: Vec<_> = targets.flatten().map(|e| e.path()).collect();
    targets.sort();
    for t in targets.into_iter().filter(|p| p.is_dir()) {
        let name = t
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some(run) = lookup(&name) else {
            failed.push(format!(
                "{}: no fuzz target is called {name:?}",
                t.display()
            ));
            continue;
        };
        let mut files: Vec<_> = fs::read_dir(&t)
            .unwrap_or_else(|e| panic!("{}: {e}", t.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            let data = fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let started = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| run(&data)));
            let took = started.elapsed();
            ran += 1;
            if outcome.is_err() {
                failed.push(format!("{}: the {name} target panicked", f.display()));
            } else if took > SLOW {
                failed.push(format!(
                    "{}: the {name} target took {took:?} (a hang?)",
                    f.display()
                ));
            }
        }
    }
    (ran, failed)
}

#[test]
fn every_kept_crash_and_seed_passes_its_target() {
    let mut all_failed = Vec::new();
    let mut total = 0;
    for sub in ["regressions", "seeds"] {
        let (ran, failed) = replay(&fuzz_dir().join(sub), &target);
        total += ran;
        all_failed.extend(failed);
    }
    assert!(
        all_failed.is_empty(),
        "{} of {total} fuzz inputs failed:\n{}",
        all_failed.len(),
        all_failed.join("\n")
    );
}

#[test]
fn every_target_has_seeds_and_a_fuzz_target_file() {
    for (name, _) in TARGETS {
        let seeds = fuzz_dir().join("seeds").join(name);
        let count = fs::read_dir(&seeds).map_or(0, |d| d.count());
        assert!(
            count > 0,
            "{}: no seeds for target {name} (run make-seeds)",
            seeds.display()
        );
        let file = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = fs::read_to_string(&file).unwrap_or_default();
        assert!(
            text.contains(&format!("romlib_fuzz_harness::{name}(data)")),
            "{}: missing or not calling the {name} harness function",
            file.display()
        );
    }
}

/// The replay itself must notice a panicking target and an unknown folder, or passing it
/// would prove nothing.
#[test]
fn the_replay_reports_panics_and_unknown_targets() {
    fn picky(data: &[u8]) {
        assert!(!data.starts_with(b"boom"), "the test target panics");
    }
    let lookup = |name: &str| (name == "picky").then_some(picky as fn(&[u8]));
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("picky");
    fs::create_dir(&inputs).unwrap();
    fs::write(inputs.join("fine"), b"fine").unwrap();
    assert_eq!(replay(dir.path(), &lookup), (1, vec![]));

    fs::write(inputs.join("crash"), b"boom").unwrap();
    let (ran, failed) = replay(dir.path(), &lookup);
    assert_eq!(ran, 2);
    assert!(
        failed.len() == 1 && failed[0].contains("crash"),
        "{failed:?}"
    );

    fs::remove_file(inputs.join("crash")).unwrap();
    fs::create_dir(dir.path().join("no-such-target")).unwrap();
    let (_, failed) = replay(dir.path(), &lookup);
    assert!(
        failed.len() == 1 && failed[0].contains("no-such-target"),
        "{failed:?}"
    );
}
