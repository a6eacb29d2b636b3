//! Collector features end to end: DAT hashes in manifests, `verify` (whole library and
//! against Logiqx and clrmamepro DATs), naming from a DAT, `romlib.toml` metadata,
//! `list-games` filters and `show`.

use romlib_host::dat::digests::{hex, DatHashes};
use romlib_tests::*;
use std::fs;
use std::path::Path;

/// The input: four games, two with sidecars, one with a non-ASCII name.
struct Input {
    tetris: Vec<u8>,
    red: Vec<u8>,
    multi: [Vec<u8>; 3],
    hb: Vec<u8>,
}

fn input(root: &Path) -> Input {
    let mut r = Rng::new(55);
    let i = Input {
        tetris: r.bytes(65_536),
        red: r.text(300_000),
        multi: [r.bytes(40_000), r.text(70_000), r.bytes(1000)],
        hb: r.text(4096),
    };
    write(root, "tetris/Tetris (World).gb", &i.tetris);
    write(
        root,
        "tetris/romlib.toml",
        b"system = \"Game Boy\"\ntags = [\"puzzle\", \"classic\"]\nlanguages = [\"en\"]\n",
    );
    write(root, "red/ポケットモンスター 赤 (Japan).gb", &i.red);
    write(root, "red/romlib.toml", b"system = \"Game Boy\"\n");
    write(root, "multi/a.bin", &i.multi[0]);
    write(root, "multi/sub/b.bin", &i.multi[1]);
    write(root, "multi/c.bin", &i.multi[2]);
    write(root, "homebrew/hb.bin", &i.hb);
    write(
        root,
        "homebrew/romlib.toml",
        "name = \"Homebrew Hero\"\nsystem = \"Atari 2600\"\nregion = \"Europe\"\nversion = \"1.2\"\n\
         tags = [\"homebrew\"]\ndescription = \"A small game.\"\n"
            .as_bytes(),
    );
    i
}

/// `<rom .../>` with the hashes named in `which` (c crc32, m md5, 1 sha1, 2 sha256).
fn xml_rom(name: &str, data: &[u8], which: &str) -> String {
    let h = DatHashes::of(data);
    let mut s = format!("<rom name=\"{name}\" size=\"{}\"", data.len());
    if which.contains('c') {
        s += &format!(" crc=\"{:08X}\"", h.crc32);
    }
    if which.contains('m') {
        s += &format!(" md5=\"{}\"", hex(&h.md5));
    }
    if which.contains('1') {
        s += &format!(" sha1=\"{}\"", hex(&h.sha1));
    }
    if which.contains('2') {
        s += &format!(" sha256=\"{}\"", hex(&h.sha256));
    }
    s + " status=\"good\" mia=\"no\"/>"
}

fn logiqx(i: &Input, with_missing: bool) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE datafile PUBLIC \"-//Logiqx//DTD ROM Management Datafile//EN\" \
         \"http://www.logiqx.com/Dats/datafile.dtd\">\n<datafile>\n\t<header>\n\t\t<name>Test - Handheld</name>\n\
         \t\t<description>Test DAT</description>\n\t\t<version>20261122</version>\n\t\t<author>romlib</author>\n\
         \t\t<clrmamepro forcenodump=\"required\"/>\n\t</header>\n",
    );
    s += &format!(
        "\t<game name=\"Tetris (World)\">\n\t\t<description>Tetris (World)</description>\n\t\t<release name=\"Tetris\" region=\"World\"/>\n\t\t{}\n\t</game>\n",
        xml_rom("Tetris (World).gb", &i.tetris, "cm1")
    );
    s += &format!(
        "\t<game name=\"ポケットモンスター 赤 (Japan)\">\n\t\t<description>Pocket Monsters &amp; Red</description>\n\t\t{}\n\t</game>\n",
        xml_rom("ポケットモンスター 赤 (Japan).gb", &i.red, "1")
    );
    s += &format!(
        "\t<game name=\"Multi Game (USA, Europe)\">\n\t\t<description>Multi Game</description>\n\t\t<unknownthing a=\"1\"><nested/></unknownthing>\n\t\t{}\n\t\t{}\n\t\t{}\n\t\t<rom name=\"d.bin\" size=\"512\" status=\"nodump\"/>\n\t</game>\n",
        xml_rom("a.bin", &i.multi[0], "c"),
        xml_rom("b.bin", &i.multi[1], "2"),
        xml_rom("c.bin", &i.multi[2], "cm12"),
    );
    if with_missing {
        s += &format!(
            "\t<game name=\"Missing Game (Europe)\">\n\t\t<description>Missing</description>\n\t\t{}\n\t</game>\n",
            xml_rom("missing.bin", b"not in the library", "c1")
        );
    }
    s + "</datafile>\n"
}

fn cmp_rom(name: &str, data: &[u8], which: &str) -> String {
    let h = DatHashes::of(data);
    let mut s = format!("\trom ( name \"{name}\" size {}", data.len());
    if which.contains('c') {
        s += &format!(" crc {:08x}", h.crc32);
    }
    if which.contains('1') {
        s += &format!(" sha1 {}", hex(&h.sha1).to_uppercase());
    }
    s + " )\n"
}

fn clrmamepro(i: &Input) -> String {
    let mut s = String::from(
        "clrmamepro (\n\tname \"Test - Other\"\n\tdescription \"Other\"\n\tversion 7\n)\n\n",
    );
    s += &format!(
        "game (\n\tname \"Multi Game (USA, Europe)\"\n\tdescription \"Multi Game\"\n{}{}\trom ( name e.bin size 10 crc 01020304 )\n)\n\n",
        cmp_rom("a.bin", &i.multi[0], "c1"),
        cmp_rom("b.bin", &i.multi[1], "c"),
    );
    s += &format!(
        "game (\n\tname \"homebrew\"\n\tyear 2026\n{})\n",
        cmp_rom("hb.bin", b"other bytes", "c")
    );
    s
}

fn lib_setup(dat: bool) -> (Workspace, Input) {
    let w = Workspace::new();
    let i = input(&w.p("in"));
    fs::write(w.p("test.dat"), logiqx(&i, true)).unwrap();
    fs::write(w.p("other.dat"), clrmamepro(&i)).unwrap();
    let extra: Vec<String> = if dat {
        vec!["--dat".into(), w.s("test.dat")]
    } else {
        vec![]
    };
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    ok(w.build("in", "lib", &extra));
    (w, i)
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

#[test]
fn manifests_carry_dat_hashes_and_show_prints_them() {
    let (w, i) = lib_setup(false);
    let h = DatHashes::of(&i.multi[1]);
    let text = ok(romlib(&["show", "-g", "multi", "-r", &w.s("lib")]));
    for needle in [
        "sub/b.bin".to_string(),
        format!("crc32 {:08x}", h.crc32),
        hex(&h.md5),
        hex(&h.sha1),
        hex(&h.sha256),
        "verified against a trusted key".into(),
        "packs needed   1".into(),
    ] {
        assert!(text.contains(&needle), "{needle} not in {text}");
    }
    let v = json(&ok(romlib(&[
        "show",
        "-g",
        "homebrew",
        "-r",
        &w.s("lib"),
        "--json",
    ])));
    assert_eq!(v["display_name"], "Homebrew Hero");
    assert_eq!(v["system"], "Atari 2600");
    assert_eq!(v["version"], "1.2");
    assert_eq!(v["description"], "A small game.");
    assert_eq!(
        v["files"].as_array().unwrap().len(),
        1,
        "the sidecar is not a game file"
    );
    assert_eq!(v["signature"]["verified"], true);
    assert_eq!(v["files"][0]["sha1"], hex(&DatHashes::of(&i.hb).sha1));
    // Another key: the signature is reported as not trusted, not hidden.
    ok(romlib(&[
        "keygen",
        "--secret-key",
        &w.s("o.sec"),
        "--public-key",
        &w.s("o.pub"),
    ]));
    let v = json(&ok(romlib(&[
        "show",
        "-g",
        "homebrew",
        "-r",
        &w.s("lib"),
        "--json",
        "--trusted-key",
        &w.s("o.pub"),
    ])));
    assert_eq!(v["signature"]["verified"], false);
    fails(
        romlib(&["show", "-g", "nope", "-r", &w.s("lib")]),
        1,
        &["nope"],
    );

    // Without hashes: none recorded, and DAT checks say why the game is unknown.
    ok(w.build("in", "lib-nohash", &["--no-dat-hashes"]));
    let v = json(&ok(romlib(&[
        "show",
        "-g",
        "multi",
        "-r",
        &w.s("lib-nohash"),
        "--json",
    ])));
    assert!(v["files"][0]["crc32"].is_null());
    let out = romlib(&[
        "verify",
        "-r",
        &w.s("lib-nohash"),
        "--dat",
        &w.s("test.dat"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("built without DAT hashes"), "{text}");
}

#[test]
fn build_names_games_from_a_dat_and_lists_filter_by_metadata() {
    let (w, _) = lib_setup(true);
    let list = ok(romlib(&["list-games", "-r", &w.s("lib")]));
    assert!(
        list.contains("tetris\tTetris (World)\tGame Boy, World, puzzle, classic"),
        "{list}"
    );
    assert!(
        list.contains("red\tポケットモンスター 赤 (Japan)\tGame Boy, Japan"),
        "{list}"
    );
    assert!(
        list.contains("multi\tMulti Game (USA, Europe)\tUSA, Europe"),
        "{list}"
    );
    // The sidecar's name wins over the DAT; a game no DAT knows keeps its own.
    assert!(
        list.contains("homebrew\tHomebrew Hero\tAtari 2600, Europe, 1.2, homebrew"),
        "{list}"
    );
    let v = json(&ok(romlib(&["list-games", "-r", &w.s("lib"), "--json"])));
    let games = v["games"].as_array().unwrap();
    let red = games.iter().find(|g| g["title_id"] == "red").unwrap();
    assert_eq!(red["dat"]["source"], "Test - Handheld (20261122)");
    assert_eq!(red["region"], "Japan");
    let titles = |args: &[&str]| -> Vec<String> {
        let mut a = vec![
            "list-games",
            "-r",
            w.p("lib").to_str().unwrap().to_owned().leak(),
        ];
        a.extend_from_slice(args);
        a.push("--json");
        let v = json(&ok(romlib(&a)));
        v["games"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["title_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(titles(&["--system", "game boy"]), ["red", "tetris"]);
    assert_eq!(titles(&["--tag", "PUZZLE"]), ["tetris"]);
    assert_eq!(titles(&["--region", "europe"]), ["homebrew", "multi"]);
    assert_eq!(titles(&["--region", "Japan"]), ["red"]);
    assert_eq!(titles(&["--search", "small game"]), ["homebrew"]);
    assert_eq!(titles(&["--search", "ポケット"]), ["red"]);
    assert_eq!(
        titles(&["--system", "Game Boy", "--search", "tetris"]),
        ["tetris"]
    );
    assert!(titles(&["--tag", "none"]).is_empty());
    let text = ok(romlib(&[
        "list-games",
        "-r",
        &w.s("lib"),
        "--system",
        "atari 2600",
    ]));
    assert!(
        text.contains("homebrew") && text.contains("1 game"),
        "{text}"
    );
}

#[test]
fn verify_against_dats_reads_no_pack() {
    let (w, i) = lib_setup(false);
    let check = |dats: &[&str], as_json: bool| {
        let mut a = vec!["verify".to_string(), "-r".into(), w.s("lib")];
        for d in dats {
            a.push("--dat".into());
            a.push(w.s(d));
        }
        if as_json {
            a.push("--json".into());
        }
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        romlib(&a)
    };
    let out = check(&["test.dat"], false);
    assert_eq!(out.status.code(), Some(1), "a DAT game is missing");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for needle in [
        "DAT Test - Handheld (20261122)",
        "complete   Tetris (World) -> tetris",
        "complete   ポケットモンスター 赤 (Japan) -> red",
        "complete   Multi Game (USA, Europe) -> multi",
        "missing    Missing Game (Europe)",
        "4 games: 3 complete, 0 incomplete, 0 wrong hash, 1 missing",
        "library games no DAT knows: 1\n  homebrew",
        "NOT OK",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }

    // The packs and the index are not needed: the same answers without them.
    fs::rename(w.p("lib/packs"), w.p("packs-away")).unwrap();
    fs::rename(w.p("lib/index.db"), w.p("index-away")).unwrap();
    let again = check(&["test.dat"], false);
    assert_eq!(String::from_utf8_lossy(&again.stdout), text);

    // JSON, and both formats at once: clrmamepro finds an incomplete and a wrong game.
    let out = check(&["test.dat", "other.dat"], true);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(v["ok"], false);
    assert_eq!(v["dats"][0]["totals"]["complete"], 3);
    assert_eq!(v["dats"][0]["totals"]["missing"], 1);
    let multi = &v["dats"][0]["games"][2];
    assert_eq!(multi["roms"][1]["path"], "sub/b.bin");
    assert_eq!(multi["roms"][3]["state"], "nodump");
    let other = &v["dats"][1];
    assert_eq!(other["source"], "Test - Other (7)");
    assert_eq!(other["games"][0]["state"], "incomplete");
    assert_eq!(other["games"][0]["roms"][2]["state"], "missing");
    assert_eq!(other["games"][1]["state"], "wrong-hash");
    let detail = other["games"][1]["roms"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("crc32 {:08x}", DatHashes::of(&i.hb).crc32)),
        "{detail}"
    );
    assert_eq!(v["unknown_games"].as_array().unwrap().len(), 0);

    // A DAT whose every game is complete: exit 0.
    fs::write(w.p("complete.dat"), logiqx(&i, false)).unwrap();
    let out = check(&["complete.dat"], false);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A manifest signed by an untrusted key is a problem, not a match.
    ok(romlib(&[
        "keygen",
        "--secret-key",
        &w.s("o.sec"),
        "--public-key",
        &w.s("o.pub"),
    ]));
    let out = romlib(&[
        "verify",
        "-r",
        &w.s("lib"),
        "--dat",
        &w.s("complete.dat"),
        "--trusted-key",
        &w.s("o.pub"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("problem:") && text.contains("missing    Tetris"),
        "{text}"
    );
}

#[test]
fn bad_dats_and_sidecars_name_the_file_line_and_field() {
    let w = Workspace::new();
    let i = input(&w.p("in"));
    ok(w.build("in", "lib", &[]));
    let bad_xml =
        logiqx(&i, false).replace("</game>\n\t<game name=\"ポケ", "\n\t<game name=\"ポケ");
    fs::write(w.p("bad.dat"), bad_xml).unwrap();
    let err = fails(
        romlib(&["verify", "-r", &w.s("lib"), "--dat", &w.s("bad.dat")]),
        1,
        &["bad.dat", "line "],
    );
    assert!(!err.contains("panic"), "{err}");
    fs::write(
        w.p("bad2.dat"),
        "clrmamepro (\n name \"x\"\n)\ngame (\n name \"unterminated\n",
    )
    .unwrap();
    fails(
        romlib(&["verify", "-r", &w.s("lib"), "--dat", &w.s("bad2.dat")]),
        1,
        &["bad2.dat", "line "],
    );
    fails(
        romlib(&["verify", "-r", &w.s("lib"), "--dat", &w.s("absent.dat")]),
        1,
        &["absent.dat"],
    );
    // A bad DAT at build time stops the build before the library changes.
    let before = snapshot(&w.p("lib"));
    fails(
        w.build("in", "lib", &["--dat", &w.s("bad.dat")]),
        1,
        &["bad.dat", "line "],
    );
    // A bad sidecar field is named, with its line; nothing is written.
    write(
        &w.p("in"),
        "tetris/romlib.toml",
        b"system = \"Game Boy\"\nregoin = \"USA\"\n",
    );
    fails(
        w.build("in", "lib", &[]),
        1,
        &["romlib.toml", "line 2", "regoin"],
    );
    write(&w.p("in"), "tetris/romlib.toml", b"tags = \"puzzle\"\n");
    fails(
        w.build("in", "lib", &[]),
        1,
        &[&host_sep("tetris/romlib.toml"), "line 1"],
    );
    assert!(
        before == snapshot(&w.p("lib")),
        "a failed build changed the library"
    );
}

#[test]
fn verify_checks_the_whole_library() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 9);
    ok(w.build("in", "lib", &[]));
    let text = ok(romlib(&["verify", "-r", &w.s("lib")]));
    assert!(
        text.contains("library OK") && text.contains("3 games, 3 with a trusted signature"),
        "{text}"
    );
    let v = json(&ok(romlib(&["verify", "-r", &w.s("lib"), "--json"])));
    assert_eq!(v["ok"], true);
    assert!(v["records"].as_u64().unwrap() > 10);
    assert_eq!(v["records"], v["index_chunks"]);

    // A flipped byte deep inside a record: found by the footer checksum and the chunk hash.
    let pack = w.p("lib/packs/pack-0001.pkg");
    let len = fs::metadata(&pack).unwrap().len();
    let copy = w.p("pack-copy");
    fs::copy(&pack, &copy).unwrap();
    flip(&pack, len / 2);
    let out = romlib(&["verify", "-r", &w.s("lib"), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(v["ok"], false);
    let problems = v["problems"].to_string();
    assert!(
        problems.contains("pack-0001.pkg") && problems.contains("checksum"),
        "{problems}"
    );
    fs::copy(&copy, &pack).unwrap();

    // A tampered manifest and a missing pack.
    flip(&w.p("lib/games/beta.manifest"), 40);
    let out = romlib(&["verify", "-r", &w.s("lib")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PROBLEM: ") && text.contains("beta.manifest"),
        "{text}"
    );
    fs::remove_file(&pack).unwrap();
    let text = String::from_utf8_lossy(&romlib(&["verify", "-r", &w.s("lib")]).stdout).into_owned();
    assert!(
        text.contains("pack listed in the index is missing"),
        "{text}"
    );
    assert!(text.contains("no record at pack 1"), "{text}");
    fails(romlib(&["verify", "-r", &w.s("nothing")]), 1, &["nothing"]);
}

#[test]
fn dat_hashes_are_exact_across_batches_and_threads() {
    // Files larger than the builder's 8 MiB batches, an empty file between them, and both
    // thread counts: every recorded hash must equal a one-shot hash of the file.
    let w = Workspace::new();
    let mut r = Rng::new(77);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("big/a.bin", r.bytes(9 << 20)),
        ("big/b.empty", Vec::new()),
        ("big/c.bin", r.text(17 << 20)),
        ("small/x.bin", r.bytes(10)),
    ];
    for (p, d) in &files {
        write(&w.p("in"), p, d);
    }
    for threads in ["1", "2"] {
        let lib = format!("lib{threads}");
        ok(w.build("in", &lib, &["--threads", threads]));
        for (p, d) in &files {
            let (game, path) = p.split_once('/').unwrap();
            let v = json(&ok(romlib(&[
                "show",
                "-g",
                game,
                "-r",
                &w.s(&lib),
                "--json",
            ])));
            let f = v["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["path"] == path)
                .unwrap();
            let h = DatHashes::of(d);
            assert_eq!(f["crc32"], format!("{:08x}", h.crc32), "{p}");
            assert_eq!(f["md5"], hex(&h.md5), "{p}");
            assert_eq!(f["sha1"], hex(&h.sha1), "{p}");
            assert_eq!(f["sha256"], hex(&h.sha256), "{p}");
        }
    }
    for d in ["packs", "games"] {
        let (a, b) = (w.p("lib1").join(d), w.p("lib2").join(d));
        assert!(
            snapshot(&a) == snapshot(&b),
            "{d} differ between thread counts"
        );
    }
}

#[test]
fn an_endless_dat_field_is_refused_in_bounded_memory() {
    // A DAT through a pipe that never ends its field: a 2 GiB attribute (Logiqx) or quoted
    // string (clrmamepro). `romlib verify --dat` runs with 256 MiB of address space, so
    // holding the field would kill it; it must stop at MAX_DAT_FIELD_LEN with one line.
    let (w, _) = lib_setup(false);
    for (name, head) in [
        (
            "endless.xml",
            "<?xml version=\"1.0\"?>\n<datafile><game name=\"",
        ),
        ("endless.dat", "clrmamepro (\n\tname \""),
    ] {
        let fifo = w.p(name);
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        let writer = {
            let (fifo, head) = (fifo.clone(), head.to_string());
            std::thread::spawn(move || {
                use std::io::Write;
                let mut f = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
                let block = vec![b'a'; 1 << 20];
                if f.write_all(head.as_bytes()).is_err() {
                    return 0;
                }
                let mut sent = 0u64;
                // Until the reader hangs up (EPIPE), or 2 GiB.
                while sent < 2 << 30 && f.write_all(&block).is_ok() {
                    sent += block.len() as u64;
                }
                sent
            })
        };
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 262144 && exec \"$0\" \"$@\"")
            .arg(bin("romlib"))
            .args([
                "verify",
                "-r",
                &w.s("lib"),
                "--dat",
                &fifo.to_string_lossy(),
            ])
            .output()
            .unwrap();
        // Should romlib have failed before opening the pipe, the writer still waits to
        // open it: a reader that comes and goes at once releases it (EPIPE).
        {
            use std::os::unix::fs::OpenOptionsExt;
            let _ = fs::OpenOptions::new()
                .read(true)
                .custom_flags(0o4000) // O_NONBLOCK
                .open(&fifo);
        }
        let err = fails(out, 1, &[name, "MAX_DAT_FIELD_LEN"]);
        assert!(
            !err.contains("panicked") && !err.contains("memory"),
            "{err}"
        );
        let sent = writer.join().unwrap();
        assert!(
            sent < 64 << 20,
            "{name}: the reader took {sent} bytes before refusing"
        );
    }
}
