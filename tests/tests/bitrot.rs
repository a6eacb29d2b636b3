//! Bit rot in installed games: `romlib-device verify --installed` finds what differs from
//! the signed manifest (flipped bytes, zeroed 4 KiB sectors as SD cards lose them,
//! truncated and deleted files), and `romlib-device repair` restores the game from a
//! library folder, a portable file, `romlib serve` and nginx, fetching only the damaged
//! chunks; bad sources and a full disk leave the game exactly as it was.

use romlib_tests::schema::*;
use romlib_tests::*;
use serde_json::Value;
use std::path::Path;

/// A workspace with the sample library built and game `alpha` installed in `inst`, with a
/// save file of the user's beside it.
fn installed() -> Workspace {
    let w = Workspace::new();
    sample_input(&w.p("in"), 21);
    ok(w.build("in", "lib", &[]));
    ok(device(&[
        "install",
        "-g",
        "alpha",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("inst"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    write(
        &w.p("inst/alpha"),
        "saves/slot1.sav",
        b"the user's progress",
    );
    w
}

/// Zeroes `len` bytes of `path` at `offset`.
fn zero(path: &Path, offset: u64, len: usize) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&vec![0u8; len]).unwrap();
}

/// `verify --installed --json` of `game` (or `--all`): exit code and the checked result.
fn check(w: &Workspace, dir: &str, game: Option<&str>) -> (Option<i32>, Value) {
    let (d, k) = (w.s(dir), w.s("k.pub"));
    let mut args = vec![
        "verify",
        "--installed",
        "--install-dir",
        &d,
        "--trusted-key",
        &k,
    ];
    match game {
        Some(g) => args.extend(["-g", g]),
        None => args.push("--all"),
    }
    args.push("--json");
    let out = device(&args);
    (out.status.code(), stdout_obj(&schema(), &out))
}

/// `repair -g alpha` from `source` (`-r PATH` or `--from URL`) with `--json`.
fn repair(w: &Workspace, dir: &str, source: &[&str]) -> (std::process::Output, Value) {
    let (d, k) = (w.s(dir), w.s("k.pub"));
    let mut args = vec![
        "repair",
        "-g",
        "alpha",
        "--install-dir",
        &d,
        "--trusted-key",
        &k,
    ];
    args.extend_from_slice(source);
    args.push("--json");
    let out = device(&args);
    let v = stdout_obj(&schema(), &out);
    (out, v)
}

/// Damage of four kinds to the installed alpha: a flipped byte, a zeroed 4 KiB sector, a
/// truncated file and a deleted one.
fn damage(w: &Workspace, dir: &str) {
    let g = w.p(dir).join("alpha");
    flip(&g.join("game.bin"), 100_000);
    zero(&g.join("shared.dat"), 8192, 4096);
    let level = g.join("data/level1.txt");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&level)
        .unwrap();
    f.set_len(150_000).unwrap();
    std::fs::remove_file(g.join("data/empty.cfg")).unwrap();
}

/// The installed alpha without the user's save, as the input holds it.
fn assert_repaired(w: &Workspace, dir: &str) {
    let g = w.p(dir).join("alpha");
    assert_eq!(
        std::fs::read(g.join("saves/slot1.sav")).unwrap(),
        b"the user's progress"
    );
    let copy = w.p(&format!("{dir}-check"));
    copy_tree(&g, &copy);
    std::fs::remove_dir_all(copy.join("saves")).unwrap();
    assert_same_tree(&w.p("in/alpha"), &copy);
    std::fs::remove_dir_all(&copy).unwrap();
    let (code, v) = check(w, dir, Some("alpha"));
    assert_eq!(
        (code, &v["games"][0]["ok"]),
        (Some(0), &Value::Bool(true)),
        "{v}"
    );
}

#[test]
fn damage_is_found_range_by_range_and_repaired_from_a_folder_and_a_portable_file() {
    let w = installed();
    let (code, v) = check(&w, "inst", Some("alpha"));
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        v["games"][0]["extra"],
        serde_json::json!(["saves/slot1.sav"])
    );
    damage(&w, "inst");
    copy_tree(&w.p("inst"), &w.p("inst2"));

    let (code, v) = check(&w, "inst", Some("alpha"));
    assert_eq!(code, Some(1), "{v}");
    let g = &v["games"][0];
    assert_eq!(g["ok"], false);
    let mut damaged: Vec<(&str, &str)> = g["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["path"].as_str().unwrap(), d["state"].as_str().unwrap()))
        .collect();
    damaged.sort();
    assert_eq!(
        damaged,
        [
            ("data/empty.cfg", "missing"),
            ("data/level1.txt", "size"),
            ("game.bin", "damaged"),
            ("shared.dat", "damaged"),
        ],
        "{v}"
    );
    // Each range covers the damage and is no longer than a few chunks (at most 128 KiB
    // each at the default 32 KiB average), never the whole file.
    for d in g["damaged"].as_array().unwrap() {
        let ranges = d["ranges"].as_array().unwrap();
        let path = d["path"].as_str().unwrap();
        let (hit, size) = match path {
            "game.bin" => (Some(100_000), 700_000),
            "shared.dat" => (Some(8192 + 2048), 300_000),
            "data/level1.txt" => (Some(150_000), 200_000),
            _ => (None, 0),
        };
        if let Some(hit) = hit {
            assert!(
                ranges.iter().any(|r| {
                    let (o, l) = (r["offset"].as_u64().unwrap(), r["len"].as_u64().unwrap());
                    o <= hit && hit < o + l
                }),
                "{path}: {d}"
            );
            assert!(d["bad_bytes"].as_u64().unwrap() < size / 2, "{path}: {d}");
        } else {
            assert!(ranges.is_empty() && d["bad_bytes"] == 0, "{d}");
        }
    }
    // The text report names the files and the ranges too.
    let out = device(&[
        "verify",
        "--installed",
        "-g",
        "alpha",
        "--install-dir",
        &w.s("inst"),
        "--trusted-key",
        &w.s("k.pub"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("alpha: DAMAGED: 4 files") && text.contains("  game.bin: damaged; bytes "),
        "{text}"
    );
    assert!(
        text.contains("saves/slot1.sav: not part of the game"),
        "{text}"
    );

    let bad = g["bad_bytes"].as_u64().unwrap();
    let (out, r) = repair(&w, "inst", &["-r", &w.s("lib")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["files"], 4);
    assert_eq!(r["bytes_replaced"].as_u64().unwrap(), bad);
    assert_repaired(&w, "inst");
    assert!(!w.p("inst/.romlib-staging").exists());
    // Nothing left to do: a second repair reads nothing.
    let (out, r) = repair(&w, "inst", &["-r", &w.s("lib")]);
    assert!(out.status.success());
    assert_eq!(r["files"], 0);

    // The same damage, repaired from a portable file.
    ok(romlib(&[
        "export",
        "-r",
        &w.s("lib"),
        "-g",
        "alpha",
        "-o",
        &w.s("alpha.romlib"),
    ]));
    let (out, _) = repair(&w, "inst2", &["-r", &w.s("alpha.romlib")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_repaired(&w, "inst2");
}

#[test]
fn repair_over_http_downloads_about_the_damaged_chunks() {
    let w = installed();
    copy_tree(&w.p("inst"), &w.p("inst2"));
    let game = w.p("inst/alpha/game.bin");
    zero(&game, 300 * 1024, 4096);
    zero(&w.p("inst2/alpha/game.bin"), 300 * 1024, 4096);
    let overhead = std::fs::metadata(w.p("lib/games/alpha.manifest"))
        .unwrap()
        .len()
        + std::fs::metadata(w.p("lib/games/alpha.locator"))
            .unwrap()
            .len();
    let (code, v) = check(&w, "inst", Some("alpha"));
    assert_eq!(code, Some(1));
    let bad = v["games"][0]["bad_bytes"].as_u64().unwrap();
    assert!(bad > 0 && bad <= 4 * 32 * 1024 * 2, "{v}");

    // From romlib serve.
    let (mut server, port, _log) = start_serve(&w.s("lib"));
    let url = format!("http://127.0.0.1:{port}/");
    let (out, r) = repair(&w, "inst", &["--from", &url]);
    server.kill().unwrap();
    let _ = server.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = r["bytes_downloaded"].as_u64().unwrap();
    // The damaged chunks (stored about as large as they are: random data), their record
    // headers, the manifest and the locator: nothing like the 1.2 MB game.
    assert!(
        got <= bad + overhead + 4096,
        "downloaded {got}, damaged {bad}, manifest+locator {overhead}"
    );
    assert!(got < 1_200_000 / 4, "downloaded {got}");
    assert_repaired(&w, "inst");

    // From nginx, a static server with no romlib code.
    let nginx = Nginx::start(&w.p("lib"), &w.p("nginx"));
    let url = format!("http://127.0.0.1:{}/", nginx.port);
    let (out, r) = repair(&w, "inst2", &["--from", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        r["bytes_downloaded"].as_u64().unwrap() <= bad + overhead + 4096,
        "{r}"
    );
    assert_repaired(&w, "inst2");
    assert!(nginx.access_log().contains(" 206 "), "ranged requests only");
}

#[test]
fn bad_sources_and_a_full_disk_leave_the_game_as_it_was() {
    let w = installed();
    let game = w.p("inst/alpha/game.bin");
    zero(&game, 65536, 4096);
    let damaged = std::fs::read(&game).unwrap();
    let unchanged = |what: &str| {
        assert!(
            std::fs::read(&game).unwrap() == damaged,
            "{what}: the game changed"
        );
        assert!(
            !w.p("inst/.romlib-staging").exists(),
            "{what}: staging left"
        );
    };

    // Another version of the game (its chunk table differs).
    copy_tree(&w.p("in"), &w.p("in2"));
    flip(&w.p("in2/alpha/game.bin"), 500_000);
    ok(w.build("in2", "lib2", &[]));
    let (out, e) = repair(&w, "inst", &["-r", &w.s("lib2")]);
    assert_eq!(
        (out.status.code(), e["code"].as_str()),
        (Some(1), Some("damaged"))
    );
    assert!(
        e["message"].as_str().unwrap().contains("another version"),
        "{e}"
    );
    unchanged("another version");

    // A source signed by a key the device does not trust.
    ok(romlib(&[
        "keygen",
        "--secret-key",
        &w.s("o.sec"),
        "--public-key",
        &w.s("o.pub"),
    ]));
    ok(romlib(&[
        "build",
        "-i",
        &w.s("in"),
        "-o",
        &w.s("lib3"),
        "--signing-key",
        &w.s("o.sec"),
    ]));
    let (out, e) = repair(&w, "inst", &["-r", &w.s("lib3")]);
    assert_eq!(
        (out.status.code(), e["code"].as_str()),
        (Some(1), Some("untrusted"))
    );
    unchanged("untrusted source");

    // A server that sends wrong bytes: every record of its pack is damaged.
    copy_tree(&w.p("lib"), &w.p("libbad"));
    let pack = w.p("libbad/packs/pack-0001.pkg");
    let len = std::fs::metadata(&pack).unwrap().len();
    for at in (4096..len - 4096).step_by(997) {
        flip(&pack, at);
    }
    let (mut server, port, _log) = start_serve(&w.s("libbad"));
    let url = format!("http://127.0.0.1:{port}/");
    let (out, e) = repair(&w, "inst", &["--from", &url]);
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(
        (out.status.code(), e["code"].as_str()),
        (Some(1), Some("damaged")),
        "{e}"
    );
    unchanged("wrong bytes");

    // A damaged completion marker: the signed manifest in it no longer verifies.
    copy_tree(&w.p("inst"), &w.p("inst3"));
    let marker = w.p("inst3/alpha/.romlib-installed");
    let n = std::fs::metadata(&marker).unwrap().len();
    flip(&marker, n - 10);
    let (code, v) = check(&w, "inst3", Some("alpha"));
    assert_eq!(code, Some(1));
    assert!(
        ["untrusted", "damaged"].contains(&v["code"].as_str().unwrap()),
        "{v}"
    );
    // With --all it is one line of the report, and the other games are still checked.
    let (code, v) = check(&w, "inst3", None);
    assert_eq!(code, Some(1));
    assert!(v["games"][0]["error"].is_string(), "{v}");

    // A full disk: the repaired file cannot be staged; the game stays as it was.
    let Some(_m) = mount_tmpfs(&w.p("small"), "2m", false) else {
        return;
    };
    ok(device(&[
        "install",
        "-g",
        "alpha",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("small"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    write(
        &w.p("small/alpha"),
        "saves/slot1.sav",
        b"the user's progress",
    );
    let g = w.p("small/alpha/game.bin");
    zero(&g, 65536, 4096);
    let before = std::fs::read(&g).unwrap();
    // Leave less room than game.bin needs.
    let free = nix::sys::statvfs::statvfs(&w.p("small")).unwrap();
    let room = free.blocks_available() * free.fragment_size();
    std::fs::write(w.p("small/filler"), vec![1u8; (room - 100_000) as usize]).unwrap();
    let (out, e) = repair(&w, "small", &["-r", &w.s("lib")]);
    assert_eq!(
        (out.status.code(), e["code"].as_str()),
        (Some(1), Some("no_space")),
        "{e}"
    );
    assert!(std::fs::read(&g).unwrap() == before, "the game changed");
    assert!(!w.p("small/.romlib-staging").exists());
    // With room again, the same repair succeeds.
    std::fs::remove_file(w.p("small/filler")).unwrap();
    let (out, _) = repair(&w, "small", &["-r", &w.s("lib")]);
    assert!(out.status.success());
    assert_repaired(&w, "small");
}

#[test]
fn verify_all_checks_every_installed_game() {
    let w = installed();
    ok(device(&[
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
    let (code, v) = check(&w, "inst", None);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["games"].as_array().unwrap().len(), 2);
    std::fs::remove_file(w.p("inst/beta/beta.rom")).unwrap();
    let (code, v) = check(&w, "inst", None);
    assert_eq!(code, Some(1));
    assert_eq!(
        (&v["games"][0]["ok"], &v["games"][1]["ok"]),
        (&Value::Bool(true), &Value::Bool(false))
    );
    assert_eq!(v["games"][1]["damaged"][0]["state"], "missing");
    // Usage errors.
    let out = device(&[
        "verify",
        "--installed",
        "-g",
        "beta",
        "--trusted-key",
        &w.s("k.pub"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = device(&["verify", "-g", "beta", "--all", "-r", &w.s("lib")]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn games_installed_with_a_layout_are_checked_and_repaired_in_their_system_folder() {
    let w = Workspace::new();
    let mut r = Rng::new(23);
    write(&w.p("in"), "pocket/pocket.gb", &r.bytes(200_000));
    write(&w.p("in"), "pocket/romlib.toml", b"system = \"Game Boy\"\n");
    ok(w.build("in", "lib", &[]));
    let (inst, key) = (w.s("roms"), w.s("k.pub"));
    let with = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend([
            "--install-dir",
            &inst,
            "--trusted-key",
            &key,
            "--layout",
            "onion",
        ]);
        device(&a)
    };
    ok(with(&["install", "-g", "pocket", "-r", &w.s("lib")]));
    let rom = w.p("roms/GB/pocket.gb");
    zero(&rom, 4096, 4096);
    let out = with(&["verify", "--installed", "-g", "pocket", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = stdout_obj(&schema(), &out);
    assert_eq!(v["games"][0]["path"], w.s("roms/GB/pocket.gb"));
    let out = with(&["verify", "--installed", "--all", "--json"]);
    let v = stdout_obj(&schema(), &out);
    assert_eq!(v["games"].as_array().unwrap().len(), 1, "{v}");
    ok(with(&["repair", "-g", "pocket", "-r", &w.s("lib")]));
    ok(with(&["verify", "--installed", "--all"]));
    assert!(std::fs::read(&rom).unwrap() == std::fs::read(w.p("in/pocket/pocket.gb")).unwrap());
}
