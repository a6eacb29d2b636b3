//! Damage as SD cards and old disks produce it, in every file of a library: zeroed 4 KiB
//! sectors, flipped bits, truncation, garbage appended. No command may die of it (no panic,
//! no abort); a damaged file is a one-line error naming it, or a finding of `verify`; an
//! install that fails leaves nothing visible; and a damaged index costs a device nothing,
//! since no reader opens it (a game is read through its locator).

use romlib_tests::*;
use std::fs;
use std::path::Path;
use std::process::Output;

/// A small library of three games (one a near-copy of another, so it holds a delta).
fn library(w: &Workspace) {
    let mut r = Rng::new(91);
    let base = r.bytes(300_000);
    let variant = r.variant(&base, 6, 40);
    write(&w.p("in"), "alpha/game.bin", &base);
    write(&w.p("in"), "alpha/readme.txt", &r.text(20_000));
    write(&w.p("in"), "beta/game.bin", &variant);
    write(&w.p("in"), "gamma/disc.iso", &r.text(400_000));
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
}

/// Asserts that `out` is no crash: no panic message, and an exit code of 0, 1 or 2.
fn no_crash(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "{what}: exit {:?}\n{err}",
        out.status.code()
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
}

fn install(w: &Workspace, lib: &str, game: &str, dir: &str) -> Output {
    device(&[
        "install",
        "-r",
        &w.s(lib),
        "-g",
        game,
        "--install-dir",
        &w.s(dir),
        "--trusted-key",
        &w.s("k.pub"),
    ])
}

fn host_verify(w: &Workspace, lib: &str) -> Output {
    romlib(&[
        "verify",
        "-q",
        "-r",
        &w.s(lib),
        "--trusted-key",
        &w.s("k.pub"),
    ])
}

fn zero_sector(path: &Path, sector: u64) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&[0u8; 4096], sector * 4096).unwrap();
}

#[test]
fn every_zeroed_index_sector_is_reported_and_costs_a_device_nothing() {
    let w = Workspace::new();
    library(&w);
    let pristine = fs::read(w.p("lib/index.db")).unwrap();
    let sectors = pristine.len() as u64 / 4096;
    assert!(sectors >= 8, "index of {} bytes", pristine.len());
    let index_rows_of = |bytes: &[u8]| {
        let _ = fs::remove_dir_all(w.p("pristine"));
        fs::create_dir_all(w.p("pristine")).unwrap();
        fs::write(w.p("pristine/index.db"), bytes).unwrap();
        copy_tree(&w.p("lib/runs"), &w.p("pristine/runs"));
        index_rows(&w.p("pristine"))
    };
    let (mut reported, mut harmless) = (0, 0);
    for s in 0..sectors {
        let _ = fs::remove_dir_all(w.p("inst"));
        fs::write(w.p("lib/index.db"), &pristine).unwrap();
        zero_sector(&w.p("lib/index.db"), s);
        if fs::read(w.p("lib/index.db")).unwrap() == pristine {
            continue; // The sector held zeros already.
        }
        // The device installs, verifies and reads through the locators.
        ok(install(&w, "lib", "beta", "inst"));
        assert_same_tree(&w.p("in/beta"), &w.p("inst/beta"));
        ok(device(&[
            "verify",
            "-g",
            "alpha",
            "-r",
            &w.s("lib"),
            "--trusted-key",
            &w.s("k.pub"),
        ]));
        let cat = romlib(&[
            "cat",
            "-g",
            "alpha",
            "-r",
            &w.s("lib"),
            "--trusted-key",
            &w.s("k.pub"),
            "readme.txt",
        ]);
        no_crash(&cat, "cat");
        assert_eq!(cat.stdout, fs::read(w.p("in/alpha/readme.txt")).unwrap());
        // The host reports the index as damaged, and still checks the games through
        // their locators: the index is the only problem. A sector that no commit reaches
        // (redb's free space) is harmless: the index reads exactly as before.
        let v = host_verify(&w, "lib");
        no_crash(&v, &format!("verify, sector {s}"));
        let out = String::from_utf8_lossy(&v.stdout);
        if v.status.success() {
            assert_eq!(
                index_rows(&w.p("lib")),
                index_rows_of(&pristine),
                "sector {s}: {out}"
            );
            harmless += 1;
            continue;
        }
        assert_eq!(v.status.code(), Some(1), "sector {s}: {out}");
        assert!(
            out.contains("index.db: index: damaged"),
            "sector {s}: {out}"
        );
        assert!(out.contains("1 problem"), "sector {s}: {out}");
        reported += 1;
        // A build on a damaged index either meets no damaged page or stops in one line
        // naming the index and what repairs it.
        let b = w.build("in", "lib", &["--avg-chunk", "4096", "-q"]);
        no_crash(&b, &format!("build, sector {s}"));
        if !b.status.success() {
            fails(b, 1, &["index.db", "damaged", "rebuild-index"]);
        }
    }
    assert!(reported > 0, "no zeroed sector was reported");
    eprintln!("{reported} damaged sectors reported, {harmless} harmless");
    // rebuild-index restores an index that verifies, equal in content to the original.
    let out = ok(romlib(&["rebuild-index", "-r", &w.s("lib")]));
    assert!(out.contains("3 games counted"), "{out}");
    let v = ok(host_verify(&w, "lib"));
    assert!(v.contains("library OK"), "{v}");
    // It works with no index at all, too, and the next build finds nothing to do.
    fs::remove_file(w.p("lib/index.db")).unwrap();
    ok(romlib(&["rebuild-index", "-r", &w.s("lib")]));
    let b = ok(w.build("in", "lib", &["--avg-chunk", "4096"]));
    assert!(b.contains("0 new chunks") || b.contains(" 0 new"), "{b}");
    ok(host_verify(&w, "lib"));
}

/// A kind of damage, named, and what applies it to a file.
type Damage = (String, Box<dyn Fn(&Path)>);

/// Each kind of damage to a file of `len` bytes.
fn damages(len: u64) -> Vec<Damage> {
    let mut v: Vec<Damage> = Vec::new();
    for frac in [0u64, 1, 2, 3] {
        let off = len * frac / 4;
        v.push((
            format!("bit flipped at {off}"),
            Box::new(move |p: &Path| flip(p, off)),
        ));
    }
    if len > 4096 {
        let s = (len / 4096) / 2;
        v.push((
            format!("sector {s} zeroed"),
            Box::new(move |p: &Path| zero_sector(p, s)),
        ));
    }
    v.push((
        "truncated to half".into(),
        Box::new(move |p: &Path| {
            let f = fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(len / 2).unwrap();
        }),
    ));
    v.push((
        "garbage appended".into(),
        Box::new(|p: &Path| {
            let mut b = fs::read(p).unwrap();
            b.extend_from_slice(&Rng::new(5).bytes(5000));
            fs::write(p, b).unwrap();
        }),
    ));
    v.push((
        "emptied".into(),
        Box::new(|p: &Path| fs::write(p, b"").unwrap()),
    ));
    v
}

#[test]
fn damage_to_any_library_file_is_a_clear_error_naming_it() {
    let w = Workspace::new();
    library(&w);
    let files: Vec<String> = snapshot(&w.p("lib"))
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !n.ends_with(".romlib.lock") && !n.is_empty())
        .collect();
    assert!(files.iter().any(|f| f.starts_with("packs/")), "{files:?}");
    let mut cases = 0;
    for rel in &files {
        let len = fs::metadata(w.p("lib").join(rel)).unwrap().len();
        if len == 0 {
            continue;
        }
        for (what, damage) in damages(len) {
            let _ = fs::remove_dir_all(w.p("bad"));
            let _ = fs::remove_dir_all(w.p("inst"));
            copy_tree(&w.p("lib"), &w.p("bad"));
            let target = w.p("bad").join(rel);
            let before = fs::read(&target).unwrap();
            damage(&target);
            if fs::read(&target).unwrap() == before {
                continue;
            }
            cases += 1;
            let name = Path::new(rel)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let ctx = format!("{rel}: {what}");
            // Every game: an install succeeds with exactly the game's files, or fails
            // with one line naming a file, leaving nothing behind.
            for game in ["alpha", "beta", "gamma"] {
                let out = install(&w, "bad", game, "inst");
                no_crash(&out, &format!("{ctx}: install {game}"));
                // No reader opens the index, and the catalog is a listing: damage to
                // either costs an install nothing.
                let redundant = ["index.db", "catalog.txt"].contains(&rel.as_str());
                if redundant {
                    ok(out);
                    assert_same_tree(&w.p("in").join(game), &w.p("inst").join(game));
                    continue;
                }
                if out.status.success() {
                    assert_same_tree(&w.p("in").join(game), &w.p("inst").join(game));
                } else {
                    let err = String::from_utf8_lossy(&out.stderr);
                    let lines: Vec<&str> = err.lines().collect();
                    assert_eq!(lines.len(), 1, "{ctx}: install {game}: {err}");
                    assert!(err.contains("bad/"), "{ctx}: install {game}: {err}");
                    assert!(
                        !w.p("inst").join(game).exists(),
                        "{ctx}: {game} half-visible"
                    );
                }
            }
            assert!(!w.p("inst/.romlib-staging").exists(), "{ctx}: staging left");
            // The host's check finds it and names the file.
            let v = host_verify(&w, "bad");
            no_crash(&v, &format!("{ctx}: verify"));
            let out = String::from_utf8_lossy(&v.stdout);
            let err = String::from_utf8_lossy(&v.stderr);
            if name == "catalog.txt" {
                continue; // A listing only; nothing reads it for content.
            }
            if name == "index.db" && v.status.success() {
                // Damage to a page no commit reaches (redb's free space) is harmless: the
                // index reads exactly as before.
                assert_eq!(
                    index_rows(&w.p("bad")),
                    index_rows(&w.p("lib")),
                    "{ctx}: verify passed a damaged index:\n{out}{err}"
                );
                continue;
            }
            if name == ".romlib-inputs" {
                // The builder's cache: damage makes the next build read the games again
                // (tests/tests/input_cache.rs); no reader uses it.
                continue;
            }
            assert_eq!(
                v.status.code(),
                Some(1),
                "{ctx}: verify passed:\n{out}{err}"
            );
            assert!(
                out.contains(&name) || err.contains(&name),
                "{ctx}: verify does not name {name}:\n{out}{err}"
            );
        }
    }
    assert!(cases > 40, "only {cases} damage cases ran");

    // Listing a library with a damaged manifest lists the rest, marks that game and exits 1
    // (both binaries).
    let _ = fs::remove_dir_all(w.p("bad"));
    copy_tree(&w.p("lib"), &w.p("bad"));
    fs::write(w.p("bad/games/alpha.manifest"), b"").unwrap();
    for out in [
        romlib(&["list-games", "-r", &w.s("bad")]),
        device(&[
            "list-games",
            "-r",
            &w.s("bad"),
            "--trusted-key",
            &w.s("k.pub"),
        ]),
    ] {
        no_crash(&out, "list-games");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("alpha\t-\tDAMAGED"), "{text}");
        for game in ["beta\t", "gamma\t"] {
            assert!(text.lines().any(|l| l.starts_with(game)), "{text}");
        }
        assert!(String::from_utf8_lossy(&out.stderr).contains("alpha.manifest"));
    }
}

/// `romlib verify`'s findings, one line each, without the line of timings.
fn verify_lines(lib: &str, memory: Option<&str>) -> (Option<i32>, Vec<String>) {
    let mut cmd = host_cmd();
    cmd.args(["verify", "-r", lib]);
    if let Some(m) = memory {
        cmd.env("ROMLIB_VERIFY_MEMORY", m);
    }
    let out = cmd.output().unwrap();
    no_crash(&out, "verify");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.contains("decompressed and hashed in"))
        .map(str::to_string)
        .collect();
    lines.sort();
    (out.status.code(), lines)
}

#[test]
fn verify_in_bounded_memory_finds_what_it_finds_in_memory() {
    // verify joins what the packs, the manifests and the index say through sorted runs
    // on disk once they outgrow its memory. With 64 bytes per sort (a run or two per row)
    // every join goes through files; the findings must be the same, line for line.
    let w = Workspace::new();
    library(&w);
    let lib = w.s("lib");
    let (code, clean) = verify_lines(&lib, None);
    assert_eq!(code, Some(0), "{clean:?}");
    assert_eq!(verify_lines(&lib, Some("64")), (code, clean));
    // Damage of every kind the joins see: a locator entry pointing at another record,
    // and, last, a record's bytes (its chunk, and the deltas on it if it is a base; the
    // pack's checksum then fails, so nothing else in it is trusted).
    edit_locator(&w.p("lib"), "gamma", |l| {
        let other = l.entries[1].1;
        l.entries[0].1 = other;
    });
    let (code, found) = verify_lines(&lib, None);
    assert_eq!(code, Some(1), "{found:?}");
    assert!(
        found.iter().any(|l| l.contains("disagree")),
        "disagree: {found:?}"
    );
    assert_eq!(verify_lines(&lib, Some("64")), (code, found));
    // Without an index, games are checked through their locators against the packs.
    copy_tree(&w.p("lib"), &w.p("bare"));
    fs::remove_file(w.p("bare/index.db")).unwrap();
    let (code, found) = verify_lines(&w.s("bare"), None);
    assert_eq!(code, Some(1), "{found:?}");
    assert!(
        found.iter().any(
            |l| l.contains("gamma.locator: 1 chunk of this game is not where its locator says")
        ),
        "{found:?}"
    );
    assert_eq!(verify_lines(&w.s("bare"), Some("64")), (code, found));
    let pack = w.p("lib/packs/pack-0001.pkg");
    flip(&pack, fs::metadata(&pack).unwrap().len() / 3);
    let (code, found) = verify_lines(&lib, None);
    assert!(
        found.iter().any(|l| l.contains("cannot be installed")),
        "{found:?}"
    );
    assert_eq!(verify_lines(&lib, Some("64")), (code, found));
}

#[test]
fn one_damaged_base_is_one_problem_then_the_games_that_need_it() {
    // A flipped byte in a chunk that deltas are stored against: verify names the damaged
    // record once, says the pack's checksum fails, and then names each game that cannot
    // be installed because of it, with what fixes it; not every delta on that base, and
    // not the intact records of the pack.
    let w = Workspace::new();
    library(&w);
    let (base, entry) = {
        let ix = romlib_host::library::runs::open_library(&w.p("lib")).unwrap();
        let (_, base) = ix.all_deltas().unwrap()[0];
        (base, ix.get(&base).unwrap().unwrap())
    };
    let pack = w.p(&format!("lib/packs/pack-{:04}.pkg", entry.pack_id));
    flip(
        &pack,
        entry.offset + romlib_format::pack::RECORD_HEADER_LEN as u64 + u64::from(entry.clen) / 2,
    );
    let (code, found) = verify_lines(&w.s("lib"), None);
    assert_eq!(code, Some(1));
    let problems: Vec<&String> = found.iter().filter(|l| l.starts_with("PROBLEM")).collect();
    let at = format!("record at offset {}", entry.offset);
    assert_eq!(
        problems.iter().filter(|l| l.contains(&at)).count(),
        1,
        "{problems:?}"
    );
    assert!(
        !problems.iter().any(|l| l.contains("delta chunk")),
        "{problems:?}"
    );
    let cannot: Vec<&&String> = problems
        .iter()
        .filter(|l| l.contains("cannot be installed"))
        .collect();
    assert!(
        cannot.iter().any(|l| l.contains("game beta ")),
        "{problems:?}"
    );
    assert!(
        cannot.iter().all(|l| l.contains("romlib repair")),
        "{cannot:?}"
    );
    // The record, the pack's checksum, and one line per game that needs the chunk.
    assert_eq!(problems.len(), 2 + cannot.len(), "{problems:?}");
    let short: String = base[..8].iter().map(|b| format!("{b:02x}")).collect();
    assert!(problems.iter().any(|l| l.contains(&short)), "{problems:?}");
    // What verify says installs, installs; what it says cannot, does not.
    for g in ["alpha", "beta", "gamma"] {
        let out = install(&w, "lib", g, "dev");
        no_crash(&out, g);
        let named = cannot.iter().any(|l| l.contains(&format!("game {g} ")));
        assert_eq!(out.status.success(), !named, "{g}: {problems:?}");
    }
}

/// Runs `cmd` to its end, or fails the test if it has not ended within 30 s (a reader
/// waiting on a FIFO would never end).
fn within_30s(mut cmd: std::process::Command) -> Output {
    use std::time::{Duration, Instant};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} still runs after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A FIFO planted under a library file's name (a manifest, a pack, a locator) is refused
/// with one line naming it, never opened for reading and waited on forever.
#[cfg(unix)]
#[test]
fn a_fifo_in_place_of_a_library_file_is_refused_not_waited_on() {
    for victim in [
        "games/alpha.manifest",
        "games/alpha.locator",
        "packs/pack-0001.pkg",
    ] {
        let w = Workspace::new();
        library(&w);
        let path = w.p("lib").join(victim);
        fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        let mut install = device_cmd();
        install.args([
            "install",
            "-r",
            &w.s("lib"),
            "-g",
            "alpha",
            "--install-dir",
            &w.s("inst"),
            "--trusted-key",
            &w.s("k.pub"),
        ]);
        let out = within_30s(install);
        no_crash(&out, victim);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{victim}: {err}");
        assert!(
            err.contains(victim.rsplit('/').next().unwrap()),
            "{victim}: {err}"
        );
        assert!(!w.p("inst/alpha").exists());
        // Listing the library does not wait on it either.
        let mut list = device_cmd();
        list.args([
            "list-games",
            "-r",
            &w.s("lib"),
            "--trusted-key",
            &w.s("k.pub"),
        ]);
        no_crash(&within_30s(list), victim);
    }
}
