//! The input cache (`.romlib-inputs`, SPEC section 1): a rebuild does not read the games
//! whose files have not changed since they were built, and never trusts the cache further
//! than the evidence goes: a file rewritten with the same size and mtime, a file changed
//! within the timestamp granularity, a replaced manifest, a damaged or foreign cache and
//! `--reread` all make the game be read again, and the library is always what a build
//! without the cache would have made.

use romlib_tests::*;
use serde_json::Value;
use std::fs;
use std::time::Duration;

/// `romlib build --json` of `in` into `lib` with `extra`; its result object.
fn build(w: &Workspace, extra: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = ok(w.build("in", "lib", &args));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn n(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
}

/// Waits until files written now are older than the cache's racy margin (2 s).
fn age_past_racy_margin() {
    std::thread::sleep(Duration::from_millis(2_300));
}

#[test]
fn unchanged_games_are_not_read_and_every_doubt_reads_them_again() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 7);
    let first = build(&w, &[]);
    assert_eq!(n(&first, "skipped_games"), 0, "{first}");
    assert_eq!(n(&first, "manifests_written"), 3, "{first}");
    assert!(w.p("lib/.romlib-inputs").is_file());

    // Built just after the files were written: all of them are within the racy margin, so
    // the next build reads them again (built just as quickly, it cannot vouch for them
    // either).
    let racy = build(&w, &[]);
    assert_eq!(n(&racy, "skipped_games"), 0, "{racy}");
    age_past_racy_margin();
    write(&w.p("in"), "gamma/gamma.bin", &Rng::new(3).bytes(50_000));
    let added = build(&w, &[]);
    assert_eq!(n(&added, "skipped_games"), 0, "{added}");
    assert_eq!(n(&added, "manifests_written"), 1, "{added}");
    // Now everything but gamma (written just before that build) is skipped; gamma is read
    // again for being too recent, and the cache this build records vouches for it.
    age_past_racy_margin();
    let noop = build(&w, &[]);
    assert_eq!(n(&noop, "skipped_games"), 3, "{noop}");
    assert_eq!(
        n(&noop, "skipped_bytes") + 50_000,
        n(&noop, "input_bytes"),
        "{noop}"
    );
    assert_eq!(n(&noop, "manifests_unchanged"), 4, "{noop}");
    let before = snapshot(&w.p("lib"));
    let noop = build(&w, &[]);
    assert_eq!(n(&noop, "skipped_games"), 4, "{noop}");
    assert_eq!(
        snapshot(&w.p("lib")),
        before,
        "a build with nothing new writes nothing, the cache included"
    );
    // The text report says so.
    let text = ok(w.build("in", "lib", &[]));
    assert!(
        text.contains("4 games") && text.contains("not read again"),
        "{text}"
    );

    // A file rewritten in place with the same size and the same mtime (as `touch -r` or a
    // careless copy leaves it): its status-change time moved, so the game is read again
    // and its new content is what gets installed.
    let path = w.p("in/beta/beta.rom");
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let mut data = fs::read(&path).unwrap();
    data[1000] ^= 0xFF;
    fs::write(&path, &data).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    age_past_racy_margin();
    let changed = build(&w, &[]);
    // alpha, alpha-v2 and gamma; beta changed.
    assert_eq!(n(&changed, "skipped_games"), 3, "{changed}");
    assert_eq!(n(&changed, "manifests_written"), 1, "{changed}");
    ok(romlib(&[
        "install",
        "-g",
        "beta",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("inst"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert_same_tree(&w.p("in/beta"), &w.p("inst/beta"));
    ok(romlib(&["verify", "-r", &w.s("lib")]));

    // A manifest in the library that is not the one the cache recorded (replaced by
    // someone): that game is read and its manifest written again.
    let alpha = w.p("lib/games/alpha.manifest");
    let good = fs::read(&alpha).unwrap();
    fs::copy(w.p("lib/games/alpha-v2.manifest"), &alpha).unwrap();
    let repaired = build(&w, &[]);
    assert_eq!(n(&repaired, "skipped_games"), 3, "{repaired}");
    assert_eq!(n(&repaired, "manifests_written"), 1, "{repaired}");
    assert_eq!(fs::read(&alpha).unwrap(), good);
    // (The index still records the replaced manifest's chunk table as published, so
    // verify reports it until `rebuild-index`, below.)

    // --reread ignores the cache.
    let reread = build(&w, &["--reread"]);
    assert_eq!(n(&reread, "skipped_games"), 0, "{reread}");
    assert_eq!(n(&reread, "manifests_written"), 0, "{reread}");

    // Other settings (another chunk size here) make a cache written under the old ones
    // worthless: everything is read.
    age_past_racy_margin();
    build(&w, &[]);
    let other = build(&w, &["--avg-chunk", "16384"]);
    assert_eq!(n(&other, "skipped_games"), 0, "{other}");

    // A damaged or foreign cache is ignored, never an error, and replaced.
    for junk in [
        &b"garbage\n"[..],
        b"romlib input cache 1\nrecorded x\n",
        &[0xFF; 300],
    ] {
        fs::write(w.p("lib/.romlib-inputs"), junk).unwrap();
        let v = build(&w, &["--avg-chunk", "16384"]);
        assert_eq!(n(&v, "skipped_games"), 0, "{v}");
        let text = fs::read_to_string(w.p("lib/.romlib-inputs")).unwrap();
        assert!(text.starts_with("romlib input cache 1\n"), "{text}");
    }
    ok(romlib(&["rebuild-index", "-r", &w.s("lib")]));
    ok(romlib(&["verify", "-r", &w.s("lib")]));
}

/// A collection copied just before its first build is too recent for that build's cache
/// to vouch for; the next build reads it again and records a cache that can, so the one
/// after reads nothing (it used to read those games on every build until one wrote).
#[test]
fn games_too_recent_for_the_first_build_are_trusted_after_the_next() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 8);
    let first = build(&w, &[]);
    assert_eq!(n(&first, "manifests_written"), 3, "{first}");
    age_past_racy_margin();
    let second = build(&w, &[]);
    assert_eq!(n(&second, "skipped_games"), 0, "{second}");
    assert_eq!(n(&second, "manifests_written"), 0, "{second}");
    let recorded = std::fs::metadata(w.p("lib/.romlib-inputs"))
        .unwrap()
        .modified()
        .unwrap();
    let third = build(&w, &[]);
    assert_eq!(n(&third, "skipped_games"), 3, "{third}");
    // Nothing new: the cache is not written again.
    let after = std::fs::metadata(w.p("lib/.romlib-inputs"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(recorded, after);
}
