//! The sharded layout of `games/` (issue 28): a library of many games spreads its manifests
//! and locators over 256 folders, so that FAT32 holds them and exFAT finds them quickly.
//! Every reader (device and host, folder, HTTP, portable file) reads either layout; a build
//! converts a library both ways, and one killed at any moment leaves every game readable
//! and is finished by the next build; a link or a stray file in `games/` is never followed
//! or taken for a game.

use romlib_device::library::shard_of;
use romlib_tests::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GAMES: [&str; 5] = ["alpha", "beta", "Gamma Quest (USA, Europe)", "delta", "eps"];

fn inputs(w: &Workspace) {
    let mut r = Rng::new(2828);
    for g in GAMES {
        let n = 40_000 + (r.next_u64() % 60_000) as usize;
        write(&w.p("in"), &format!("{g}/rom.bin"), &r.bytes(n));
    }
}

/// The names of the files directly in `dir` (folders marked with a trailing `/`), sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let n = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                format!("{n}/")
            } else {
                n
            }
        })
        .collect();
    v.sort();
    v
}

/// Asserts that every game of `games` has its manifest and locator where `layout` puts
/// them, and nowhere else.
fn assert_layout(lib: &Path, games: &[&str], sharded: bool) {
    for g in games {
        for ext in ["manifest", "locator"] {
            let flat = lib.join("games").join(format!("{g}.{ext}"));
            let shard = lib
                .join("games")
                .join(shard_of(g))
                .join(format!("{g}.{ext}"));
            assert_eq!(flat.is_file(), !sharded, "{}", flat.display());
            assert_eq!(shard.is_file(), sharded, "{}", shard.display());
        }
    }
    let snap = fs::read_to_string(lib.join("snapshot.txt")).unwrap();
    let lines: Vec<&str> = snap.lines().collect();
    // Builders that predate the sharded layout refuse its format version, and open a
    // flat library as before.
    assert_eq!(format_version(lib), if sharded { 5 } else { 4 });
    match sharded {
        true => {
            assert_eq!(lines[0], "romlib snapshot 2");
            assert_eq!(lines[5], "games sharded");
            assert!(names(&lib.join("games")).iter().all(|n| n.ends_with('/')));
        }
        false => {
            assert_eq!(lines[0], "romlib snapshot 1");
            assert!(lines[5].starts_with("game "), "{snap}");
            assert!(names(&lib.join("games")).iter().all(|n| !n.ends_with('/')));
        }
    }
}

fn json_field<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v.get(name).unwrap_or_else(|| panic!("{name} in {v}"))
}

fn titles_listed(w: &Workspace, args: &[&str]) -> Vec<String> {
    let k = w.s("k.pub");
    let mut a = vec!["list-games", "--json", "--trusted-key", &k];
    a.extend_from_slice(args);
    let v = json_of(device(&a));
    let mut t: Vec<String> = json_field(&v, "games")
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            assert_eq!(g["trusted"], true, "{g}");
            g["title_id"].as_str().unwrap().to_string()
        })
        .collect();
    t.sort();
    t
}

/// A server stopped when dropped, a failed assertion included.
struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sorted(games: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = games.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn a_sharded_library_reads_everywhere_and_converts_both_ways() {
    let w = Workspace::new();
    inputs(&w);
    let lib = w.s("lib");
    let out = w.build("in", "lib", &["--games-layout", "sharded", "--json", "-q"]);
    romlib_tests::schema::stdout_obj(&romlib_tests::schema::schema(), &out);
    let v = json_of(out);
    assert_eq!(v["games_layout"], "sharded", "{v}");
    assert_layout(&w.p("lib"), &GAMES, true);
    // Device and host readers of the folder.
    assert_published(&w, &w.p("lib"), "in", &GAMES, "sharded");
    verify_ok(&w, "lib");
    assert_eq!(titles_listed(&w, &["-r", &lib]), sorted(&GAMES));
    let cat = romlib(&[
        "cat",
        "-r",
        &lib,
        "-g",
        "delta",
        "rom.bin",
        "--trusted-key",
        &w.s("k.pub"),
    ]);
    assert_eq!(cat.stdout, fs::read(w.p("in/delta/rom.bin")).unwrap());
    // Over HTTP: the snapshot says where the files are.
    let (server, port, _) = start_serve(&lib);
    let server = Stop(server);
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(titles_listed(&w, &["--from", &url]), sorted(&GAMES));
    let g = "Gamma Quest (USA, Europe)";
    assert_installs(&w, &["--from", &url], g, "http", &w.p("in"), "HTTP");
    // A portable file of it.
    ok(romlib(&[
        "export",
        "-r",
        &lib,
        "--all",
        "-o",
        &w.s("all.romlib"),
        "-q",
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    let port = w.s("all.romlib");
    assert_installs(&w, &["-r", &port], "beta", "port", &w.p("in"), "portable");
    // A build that changes nothing moves nothing and keeps the layout.
    let v = json_of(w.build("in", "lib", &["--json", "-q"]));
    assert_eq!(
        (&v["games_layout"], &v["games_files_moved"]),
        (&"sharded".into(), &0.into())
    );
    // Remove, prune and parity work in the shard folders.
    let k = w.s("k.sec");
    ok(romlib(&["parity", "-r", &lib]));
    ok(romlib(&[
        "remove",
        "-r",
        &lib,
        "-g",
        "eps",
        "--signing-key",
        &k,
        "-q",
    ]));
    ok(romlib(&["prune", "-r", &lib, "--signing-key", &k, "-q"]));
    let left = ["alpha", "beta", "Gamma Quest (USA, Europe)", "delta"];
    assert_layout(&w.p("lib"), &left, true);
    let eps = w.p("lib/games").join(shard_of("eps"));
    assert!(!eps.join("eps.manifest").exists() && !eps.join("eps.locator").exists());
    assert!(fs::read_dir(w.p("lib/parity/games"))
        .unwrap()
        .all(|e| e.unwrap().path().is_dir()));
    verify_ok(&w, "lib");
    // Served while it was pruned: the server reads the files as they are now.
    assert_eq!(titles_listed(&w, &["--from", &url]), sorted(&left));
    drop(server);
    // To flat and back: every file moves, parity included, and every reader follows.
    let v = json_of(w.build("in", "lib", &["--games-layout", "flat", "--json", "-q"]));
    assert_eq!(v["games_layout"], "flat");
    // Five games (eps is back) with their locators; four had parity files.
    assert_eq!(v["games_files_moved"], 4 * 2 + 4, "{v}");
    assert_layout(&w.p("lib"), &GAMES, false);
    assert!(names(&w.p("lib/parity/games"))
        .iter()
        .all(|n| !n.ends_with('/')));
    assert_published(&w, &w.p("lib"), "in", &GAMES, "flat again");
    verify_ok(&w, "lib");
    let v = json_of(w.build("in", "lib", &["--games-layout", "sharded", "--json", "-q"]));
    // The build that brought eps back wrote its parity too.
    assert_eq!(v["games_files_moved"], 5 * 2 + 5, "{v}");
    assert_layout(&w.p("lib"), &GAMES, true);
    // rebuild-index keeps the layout the files are in.
    ok(romlib(&["rebuild-index", "-r", &lib]));
    ok(romlib(&["refresh", "-r", &lib, "--signing-key", &k, "-q"]));
    assert_layout(&w.p("lib"), &GAMES, true);
    let v = json_of(w.build("in", "lib", &["--json", "-q"]));
    assert_eq!(
        (&v["games_layout"], &v["games_files_moved"]),
        (&"sharded".into(), &0.into())
    );
    assert_published(&w, &w.p("lib"), "in", &GAMES, "after rebuild-index");
    fails(
        w.build("in", "lib", &["--games-layout", "nested"]),
        2,
        &["--games-layout", "flat or sharded"],
    );
}

/// A copy of a library of many games, converted by builds killed at random moments: every
/// game stays listed and trusted after each kill, and the next build finishes the job.
#[test]
fn killed_conversions_leave_every_game_readable_and_the_next_build_finishes() {
    let w = Workspace::new();
    let mut r = Rng::new(280);
    let titles: Vec<String> = (0..400).map(|i| format!("Game {i:03} (World)")).collect();
    for t in &titles {
        write(&w.p("in"), &format!("{t}/g.bin"), &r.bytes(600));
    }
    ok(w.build("in", "lib", &["-q"]));
    let all: Vec<&str> = titles.iter().map(String::as_str).collect();
    assert_layout(&w.p("lib"), &all, false);
    let convert = |to: &str| {
        Command::new(bin("romlib"))
            .args([
                "build",
                "-i",
                &w.s("in"),
                "-o",
                &w.s("L"),
                "--signing-key",
                &w.s("k.sec"),
            ])
            .args(["--games-layout", to, "-q"])
            .env("ROMLIB_CONFIG_DIR", w.p("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    copy_tree(&w.p("lib"), &w.p("L"));
    let t = Instant::now();
    assert!(convert("sharded").wait().unwrap().success());
    let mut full = t.elapsed();
    let iters = std::env::var("ROMLIB_CRASH_ITERS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(12, |n| n.min(30));
    let mut mixed = 0;
    for i in 0..iters {
        let _ = fs::remove_dir_all(w.p("L"));
        copy_tree(&w.p("lib"), &w.p("L"));
        let mut child = convert("sharded");
        let share = (Rng::new(2810 + i).next_u64() % 1000) as f64 / 1000.0;
        let (start, at) = (Instant::now(), full.mul_f64(share));
        while start.elapsed() < at {
            if child.try_wait().unwrap().is_some() {
                full = start.elapsed();
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = child.kill();
        child.wait().unwrap();
        let top = names(&w.p("L/games"));
        if top.iter().any(|n| n.ends_with('/')) && top.iter().any(|n| n.ends_with(".manifest")) {
            mixed += 1;
        }
        // Every game is listed, once, and trusted, whatever was cut off.
        assert_eq!(titles_listed(&w, &["-r", &w.s("L")]), titles, "kill {i}");
        let g = &titles[(i as usize * 37) % titles.len()];
        let lib = w.s("L");
        assert_installs(
            &w,
            &["-r", &lib],
            g,
            "readers",
            &w.p("in"),
            &format!("kill {i}"),
        );
        // The next build, told nothing, finishes what the index records; told again, it
        // converts.
        let v = json_of(w.build("in", "L", &["--json", "-q"]));
        if v["games_layout"] == "flat" {
            assert_layout(&w.p("L"), &all, false);
            assert!(convert("sharded").wait().unwrap().success());
        }
        assert_layout(&w.p("L"), &all, true);
        if i % 4 == 3 {
            verify_ok(&w, "L");
        }
    }
    eprintln!("kill -9: {mixed} of {iters} conversions cut off half-way");
    assert!(mixed > 0, "no conversion was cut off half-way");
}

#[test]
fn links_and_strays_in_games_are_never_followed_or_taken_for_games() {
    let w = Workspace::new();
    inputs(&w);
    ok(w.build("in", "lib", &["--games-layout", "sharded", "-q"]));
    let lib = w.s("lib");
    // A manifest in a shard folder that is not its title's: no reader lists it, verify
    // names it.
    let alpha = w.p("lib/games").join(shard_of("alpha"));
    let wrong = (0..=255u8)
        .map(|b| format!("{b:02x}"))
        .find(|s| *s != shard_of("alpha") && *s != shard_of("stray"))
        .unwrap();
    fs::create_dir_all(w.p("lib/games").join(&wrong)).unwrap();
    fs::copy(
        alpha.join("alpha.manifest"),
        w.p("lib/games").join(&wrong).join("stray.manifest"),
    )
    .unwrap();
    assert_eq!(titles_listed(&w, &["-r", &lib]), sorted(&GAMES));
    let v = romlib(&["verify", "-r", &lib, "--trusted-key", &w.s("k.pub")]);
    let out = String::from_utf8_lossy(&v.stdout).into_owned();
    assert!(
        out.contains("stray.manifest: not in the shard folder of \"stray\""),
        "{out}"
    );
    fs::remove_dir_all(w.p("lib/games").join(&wrong)).unwrap();
    // A link where a new game's shard folder belongs is refused, never written through.
    let t = "zeta";
    write(&w.p("in"), &format!("{t}/z.bin"), b"zeta's bytes");
    let shard = w.p("lib/games").join(shard_of(t));
    if shard.exists() {
        fs::rename(&shard, w.p("moved-shard")).unwrap();
    }
    fs::create_dir_all(w.p("elsewhere")).unwrap();
    std::os::unix::fs::symlink(w.p("elsewhere"), &shard).unwrap();
    fails(
        w.build("in", "lib", &["-q"]),
        1,
        &[&shard.to_string_lossy(), "is not a folder"],
    );
    assert!(names(&w.p("elsewhere")).is_empty());
    fs::remove_file(&shard).unwrap();
    if w.p("moved-shard").exists() {
        fs::rename(w.p("moved-shard"), &shard).unwrap();
    }
    ok(w.build("in", "lib", &["-q"]));
    let mut all = GAMES.to_vec();
    all.push(t);
    assert_layout(&w.p("lib"), &all, true);
    verify_ok(&w, "lib");
    // A flat copy of a game left beside its shard folder's (a conversion cut off between a
    // move and the fsync of the folder it left): the next build deletes it when it is the
    // same, and leaves it (for verify to name) when it is not.
    let a = alpha.join("alpha.locator");
    fs::copy(&a, w.p("lib/games/alpha.locator")).unwrap();
    fs::write(w.p("lib/games/beta.locator"), b"not beta's").unwrap();
    let v = json_of(w.build("in", "lib", &["--json", "-q"]));
    assert_eq!(v["games_files_moved"], 0, "{v}");
    assert!(!w.p("lib/games/alpha.locator").exists());
    assert_eq!(
        fs::read(w.p("lib/games/beta.locator")).unwrap(),
        b"not beta's"
    );
    assert_published(&w, &w.p("lib"), "in", &["alpha", "beta"], "strays");
    // An older manifest of alpha put back flat beside the current one in its shard folder:
    // readers look first where the snapshot's layout puts games, and install the current.
    let old = fs::read(alpha.join("alpha.manifest")).unwrap();
    write(&w.p("in"), "alpha/rom.bin", b"alpha, revised");
    ok(w.build("in", "lib", &["-q"]));
    fs::write(w.p("lib/games/alpha.manifest"), &old).unwrap();
    fs::remove_file(w.p("lib/games/beta.locator")).unwrap();
    assert_published(&w, &w.p("lib"), "in", &["alpha"], "an old flat manifest");
}

/// Above 4,000 games a flat `games/` draws a warning naming the fix; a sharded one none.
#[test]
fn a_flat_library_of_thousands_of_games_is_warned_about() {
    let w = Workspace::new();
    for i in 0..4_001u32 {
        write(&w.p("in"), &format!("gb/Game {i:04}.gb"), &i.to_le_bytes());
    }
    let args = ["--input-layout", "system-folders", "-q"];
    let out = w.build("in", "lib", &args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(
        err.contains("games/ holds 4001 games in one folder")
            && err.contains("--games-layout sharded"),
        "{err}"
    );
    let out = w.build(
        "in",
        "lib",
        &[
            "--input-layout",
            "system-folders",
            "-q",
            "--games-layout",
            "sharded",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(!err.contains("one folder"), "{err}");
}
