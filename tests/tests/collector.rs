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
            .env("ROMLIB_CONFIG_DIR", config_dir())
            .env("ROMLIB_CONFIG_DIR", config_dir())
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

/// A MAME software list entry's `<rom>` with a hex size.
fn softlist_rom(name: &str, data: &[u8], offset: usize) -> String {
    let h = DatHashes::of(data);
    format!(
        "<rom name=\"{name}\" size=\"0x{:x}\" crc=\"{:08x}\" sha1=\"{}\" offset=\"0x{offset:x}\"/>",
        data.len(),
        h.crc32,
        hex(&h.sha1)
    )
}

#[test]
fn a_software_list_with_hex_sizes_reports_complete_and_missing() {
    let w = Workspace::new();
    let mut r = Rng::new(16);
    let (prg, chr) = (r.bytes(32768), r.bytes(8192));
    write(&w.p("in"), "smb/smb.prg", &prg);
    write(&w.p("in"), "smb/smb.chr", &chr);
    write(&w.p("in"), "other/other.bin", &r.bytes(1000));
    // As MAME's hash/nes.xml spells it: parts, data areas, a loadflag continuation without
    // a name, a nodump rom, a disk area; one software absent from the library, and one
    // rom entry with a malformed size (skipped, with a warning, not the whole list).
    let list = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE softwarelist SYSTEM \"softwarelist.dtd\">\n\
         <softwarelist name=\"nes\" description=\"Nintendo Entertainment System cartridges\">\n\
         \t<software name=\"smb\">\n\t\t<description>Super Game (World)</description>\n\
         \t\t<year>1985</year>\n\t\t<publisher>Someone</publisher>\n\
         \t\t<part name=\"cart\" interface=\"nes_cart\">\n\t\t\t<feature name=\"slot\" value=\"nrom\"/>\n\
         \t\t\t<dataarea name=\"prg\" size=\"0x8000\">\n\t\t\t\t{}\n\t\t\t</dataarea>\n\
         \t\t\t<dataarea name=\"chr\" size=\"0x2000\">\n\t\t\t\t{}\n\
         \t\t\t\t<rom size=\"0x1000\" offset=\"0x1000\" loadflag=\"continue\"/>\n\
         \t\t\t\t<rom name=\"smb.pal\" size=\"32\" status=\"nodump\"/>\n\t\t\t</dataarea>\n\
         \t\t</part>\n\t</software>\n\
         \t<software name=\"lost\">\n\t\t<description>Lost Game</description>\n\
         \t\t<part name=\"cart\" interface=\"nes_cart\"><dataarea name=\"prg\" size=\"0x10\">\n\
         \t\t\t<rom name=\"lost.prg\" size=\"0x10\" crc=\"0badf00d\" offset=\"0\"/>\n\
         \t\t\t<rom name=\"bad.prg\" size=\"0x1g\" crc=\"00000001\" offset=\"0\"/>\n\
         \t\t</dataarea></part>\n\t</software>\n</softwarelist>\n",
        softlist_rom("smb.prg", &prg, 0),
        softlist_rom("smb.chr", &chr, 0),
    );
    fs::write(w.p("nes.xml"), list).unwrap();
    let out = romlib(&["verify", "-r", &w.s("lib"), "--dat", &w.s("nes.xml")]);
    assert_eq!(out.status.code(), Some(1), "no library yet");
    // The build names games from the list and says which entry it skipped, on stderr.
    let built = w.build("in", "lib", &["--dat", &w.s("nes.xml"), "-q"]);
    let err = String::from_utf8_lossy(&built.stderr).into_owned();
    ok(built);
    assert!(
        err.contains("romlib: warning: ") && err.contains("rom \"bad.prg\": bad size \"0x1g\""),
        "{err}"
    );

    let out = romlib(&["verify", "-r", &w.s("lib"), "--dat", &w.s("nes.xml")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for needle in [
        "DAT nes (",
        "complete   smb -> smb",
        "missing    lost",
        "warning: ",
        "nes.xml: line 24: rom \"bad.prg\": bad size \"0x1g\"; entry skipped",
        "2 games: 1 complete, 0 incomplete, 0 wrong hash, 1 missing, 1 rom entry skipped",
        "library games no DAT knows: 1\n  other",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    let v = json(&ok_or_1(romlib(&[
        "verify",
        "-r",
        &w.s("lib"),
        "--dat",
        &w.s("nes.xml"),
        "--json",
    ])));
    let d = &v["dats"][0];
    assert_eq!(d["totals"]["complete"], 1);
    assert_eq!(d["totals"]["skipped_roms"], 1);
    assert_eq!(d["warnings"].as_array().unwrap().len(), 1);
    let smb = &d["games"][0];
    assert_eq!(smb["roms"][2]["state"], "nodump");
    assert_eq!(
        smb["roms"].as_array().unwrap().len(),
        3,
        "the continuation is no rom"
    );
    // The build named the game after the software, from the list.
    let show = json(&ok(romlib(&[
        "show",
        "-g",
        "smb",
        "-r",
        &w.s("lib"),
        "--json",
    ])));
    assert_eq!(show["display_name"], "smb");
    assert_eq!(show["dat"]["description"], "Super Game (World)");
    assert_eq!(show["dat"]["source"], "nes");
}

/// `romlib verify` output that may be exit 1 (a DAT game missing), never a crash.
fn ok_or_1(out: std::process::Output) -> String {
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An iNES file: the 16-byte header, then PRG and CHR data.
fn ines(r: &mut Rng, body: usize) -> Vec<u8> {
    let mut v = b"NES\x1a\x02\x01\x01\x00".to_vec();
    v.resize(16, 0);
    v.extend_from_slice(&r.bytes(body));
    v
}

#[test]
fn a_headered_nes_rom_matches_headerless_and_headered_entries() {
    let w = Workspace::new();
    let mut r = Rng::new(17);
    let nes = ines(&mut r, 40960);
    let lynx = {
        let mut v = b"LYNX".to_vec();
        v.resize(64, 7);
        v.extend_from_slice(&r.bytes(4096));
        v
    };
    // A header only a detector file knows: "RLHD" and 32 bytes.
    let custom = {
        let mut v = b"RLHD".to_vec();
        v.resize(32, 1);
        v.extend_from_slice(&r.bytes(3000));
        v
    };
    let plain = r.bytes(5000);
    write(&w.p("in"), "nesgame/Game (USA).nes", &nes);
    write(&w.p("in"), "lynxgame/Game (Europe).lnx", &lynx);
    write(&w.p("in"), "custom/game.bin", &custom);
    write(&w.p("in"), "plain/game.bin", &plain);
    fs::write(
        w.p("rlhd.xml"),
        "<?xml version=\"1.0\"?>\n<detector>\n\t<name>RomLib Test Header</name>\n\
         \t<rule start_offset=\"20\" end_offset=\"EOF\" operation=\"none\">\n\
         \t\t<data offset=\"0\" value=\"524C4844\" result=\"true\"/>\n\t</rule>\n</detector>\n",
    )
    .unwrap();
    ok(w.build("in", "lib", &["--header-skipper", &w.s("rlhd.xml")]));

    let show = |game: &str| {
        let v = json(&ok(romlib(&[
            "show",
            "-g",
            game,
            "-r",
            &w.s("lib"),
            "--json",
        ])));
        v["files"][0].clone()
    };
    let f = show("nesgame");
    let part = DatHashes::of(&nes[16..]);
    assert_eq!(f["headerless"]["detector"], "ines");
    assert_eq!(f["headerless"]["header_size"], 16);
    assert_eq!(f["headerless"]["size"], 40960);
    assert_eq!(f["headerless"]["sha1"], hex(&part.sha1));
    assert_eq!(
        f["sha1"],
        hex(&DatHashes::of(&nes).sha1),
        "the whole file's stay"
    );
    assert_eq!(show("lynxgame")["headerless"]["detector"], "lynx");
    assert_eq!(
        show("custom")["headerless"]["detector"],
        "RomLib Test Header"
    );
    assert_eq!(show("custom")["headerless"]["header_size"], 32);
    assert!(show("plain")["headerless"].is_null());

    // No-Intro style (headerless hashes, the header skipper named in the header) and a
    // headered DAT both find the same file complete.
    let dat = |name: &str, skipper: &str, roms: &[(&str, &str, &[u8])]| {
        let mut s = format!(
            "<?xml version=\"1.0\"?>\n<datafile>\n\t<header>\n\t\t<name>{name}</name>\n\
             \t\t<version>1</version>\n{skipper}\t</header>\n"
        );
        for (game, rom, data) in roms {
            s += &format!(
                "\t<game name=\"{game}\">\n\t\t<description>{game}</description>\n\t\t{}\n\t</game>\n",
                xml_rom(rom, data, "cm1")
            );
        }
        s + "</datafile>\n"
    };
    fs::write(
        w.p("headerless.dat"),
        dat(
            "Nintendo - Nintendo Entertainment System",
            "\t\t<clrmamepro header=\"No-Intro_NES.xml\"/>\n",
            &[
                ("Game (USA)", "Game (USA).nes", &nes[16..]),
                ("Lynx Game (Europe)", "Game (Europe).lnx", &lynx[64..]),
                ("Custom", "game.bin", &custom[32..]),
            ],
        ),
    )
    .unwrap();
    fs::write(
        w.p("headered.dat"),
        dat(
            "Nintendo - Nintendo Entertainment System (Headered)",
            "",
            &[("Game (USA)", "Game (USA).nes", &nes)],
        ),
    )
    .unwrap();
    let out = romlib(&[
        "verify",
        "-r",
        &w.s("lib"),
        "--dat",
        &w.s("headerless.dat"),
        "--dat",
        &w.s("headered.dat"),
        "--json",
    ]);
    let v = json(&ok_or_1(out));
    for d in v["dats"].as_array().unwrap() {
        for g in d["games"].as_array().unwrap() {
            assert_eq!(g["state"], "complete", "{g}");
        }
    }
    assert_eq!(v["dats"][0]["header_skipper"], "No-Intro_NES.xml");
    assert_eq!(v["dats"][0]["totals"]["complete"], 3);
    assert_eq!(v["dats"][1]["totals"]["complete"], 1);
    // Built with --dat, the headered file is named after the headerless DAT entry.
    ok(w.build("in", "lib2", &["--dat", &w.s("headerless.dat")]));
    let v = json(&ok(romlib(&[
        "show",
        "-g",
        "nesgame",
        "-r",
        &w.s("lib2"),
        "--json",
    ])));
    assert_eq!(v["display_name"], "Game (USA)");

    // A bad detector file stops the build with its line, before the library changes.
    fs::write(
        w.p("bad.xml"),
        "<detector>\n<rule start_offset=\"10\" operation=\"byteswap\"/>\n</detector>",
    )
    .unwrap();
    let before = snapshot(&w.p("lib"));
    fails(
        w.build("in", "lib", &["--header-skipper", &w.s("bad.xml")]),
        1,
        &["bad.xml", "line 2", "byteswap"],
    );
    assert!(before == snapshot(&w.p("lib")));
}

#[test]
fn a_fixdat_lists_exactly_what_is_missing_and_round_trips() {
    let (w, i) = lib_setup(false);
    let check = |dats: &[&str], extra: &[&str]| {
        let mut a = vec![
            "verify".to_string(),
            "-r".into(),
            w.s("lib"),
            "--json".into(),
        ];
        for d in dats {
            a.push("--dat".into());
            a.push(w.s(d));
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        json(&ok_or_1(romlib(&a)))
    };
    // The non-ok (game, rom) pairs of a report.
    let wanted = |v: &serde_json::Value| {
        let mut set = std::collections::BTreeSet::new();
        for d in v["dats"].as_array().unwrap() {
            for g in d["games"].as_array().unwrap() {
                for r in g["roms"].as_array().unwrap() {
                    if r["state"] == "missing" || r["state"] == "wrong-hash" {
                        set.insert((g["name"].to_string(), r["name"].to_string()));
                    }
                }
            }
        }
        set
    };
    let fix = w.s("fix.xml");
    let v = check(&["test.dat", "other.dat"], &["--fixdat", &fix]);
    let before = wanted(&v);
    // test.dat: one missing game; other.dat: one rom missing, one wrong.
    assert_eq!(before.len(), 3, "{before:?}");
    assert_eq!(v["fixdat"]["games"], 3);
    assert_eq!(v["fixdat"]["roms"], 3);
    // --json carries the same list, with the DAT's hashes.
    let listed: Vec<_> = v["dats"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["games"].as_array().unwrap().iter())
        .flat_map(|g| g["fixdat"].as_array().unwrap().iter())
        .collect();
    assert_eq!(listed.len(), 3);
    assert!(listed
        .iter()
        .any(|r| r["name"] == "missing.bin" && r["sha1"].is_string()));

    let text = fs::read_to_string(&fix).unwrap();
    assert!(
        text.contains("<name>Test - Handheld + Test - Other (fixdat)</name>"),
        "{text}"
    );
    assert!(text.contains("<version>20261122 + 7</version>"), "{text}");
    assert!(!text.contains("Tetris"), "complete games stay out: {text}");
    assert!(!text.contains("d.bin"), "nodump roms stay out: {text}");
    // Nothing but the fixdat itself is left beside it.
    let names: Vec<String> = fs::read_dir(w.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("fix"))
        .collect();
    assert_eq!(names, ["fix.xml"]);

    // Checking against the fixdat lists exactly the same set, and nothing is complete.
    let again = check(&["fix.xml"], &[]);
    assert_eq!(wanted(&again), before);
    assert_eq!(again["dats"][0]["totals"]["complete"], 0);
    assert_eq!(again["ok"], false);

    // Once the library has everything, the fixdat is empty and the check passes.
    let complete = w.s("complete.dat");
    fs::write(&complete, logiqx(&i, false)).unwrap();
    let v = check(&["complete.dat"], &["--fixdat", &fix]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["fixdat"]["games"], 0);
    let text = fs::read_to_string(&fix).unwrap();
    assert!(!text.contains("<game"), "{text}");

    // A fixdat that cannot be written: one line, exit 1, nothing left behind.
    let out = romlib(&[
        "verify",
        "-r",
        &w.s("lib"),
        "--dat",
        &w.s("test.dat"),
        "--fixdat",
        &w.s("no-such-dir/fix.xml"),
    ]);
    fails(out, 1, &["no-such-dir"]);
    fails(
        romlib(&["verify", "-r", &w.s("lib"), "--fixdat", &fix]),
        2,
        &["--fixdat needs"],
    );
}

#[test]
fn layouts_place_games_where_each_handheld_os_looks() {
    let w = Workspace::new();
    let mut r = Rng::new(18);
    let nes = ines(&mut r, 8192);
    let gb = r.bytes(32768);
    write(&w.p("in"), "Game (USA)/Game (USA).nes", &nes);
    write(&w.p("in"), "pocket/pocket.gb", &gb);
    write(&w.p("in"), "pocket/romlib.toml", b"system = \"Game Boy\"\n");
    write(&w.p("in"), "astro/disk.bin", &r.bytes(1000));
    write(
        &w.p("in"),
        "astro/romlib.toml",
        b"system = \"Bally Astrocade\"\n",
    );
    // --system for the games whose romlib.toml names none.
    ok(w.build("in", "lib", &["--system", "nes"]));
    let key = w.s("k.pub");
    let device_install = |game: &str, dir: &str, layout: &str| {
        device(&[
            "install",
            "-g",
            game,
            "-r",
            &w.s("lib"),
            "--install-dir",
            &w.s(dir),
            "--layout",
            layout,
            "--trusted-key",
            &key,
        ])
    };
    let host_install = |game: &str, dir: &str, layout: &str| {
        romlib(&[
            "install",
            "-g",
            game,
            "-r",
            &w.s("lib"),
            "--install-dir",
            &w.s(dir),
            "--layout",
            layout,
        ])
    };
    for (layout, nes_dir, gb_dir) in [
        ("muos", "nes", "gb"),
        ("knulli", "nes", "gb"),
        ("batocera", "nes", "gb"),
        (
            "minui",
            "Nintendo Entertainment System (FC)",
            "Game Boy (GB)",
        ),
        ("onion", "FC", "GB"),
        ("arkos", "nes", "gb"),
    ] {
        for (who, install) in [
            (
                "device",
                &device_install as &dyn Fn(&str, &str, &str) -> std::process::Output,
            ),
            ("host", &host_install),
        ] {
            let root = format!("{who}-{layout}");
            ok(install("Game (USA)", &root, layout));
            ok(install("pocket", &root, layout));
            // A game of one file lies in the system folder, named after its title, with
            // its record beside the other records; no folder of its own.
            assert_eq!(
                fs::read(w.p(&root).join(nes_dir).join("Game (USA).nes")).unwrap(),
                nes,
                "{who} {layout}"
            );
            assert_eq!(
                fs::read(w.p(&root).join(gb_dir).join("pocket.gb")).unwrap(),
                gb,
                "{who} {layout}"
            );
            assert!(w
                .p(&root)
                .join(gb_dir)
                .join(".romlib-games/pocket")
                .is_file());
            assert!(!w.p(&root).join(gb_dir).join("pocket").exists());
            assert!(!w.p(&root).join(gb_dir).join(".romlib-staging").exists());
        }
    }

    // The user's files beside a flat ROM (a save, a state) stay through a reinstall and an
    // uninstall; uninstall --layout finds the game in its system folder.
    let root = w.p("device-muos");
    write(&root, "gb/pocket.sav", b"save");
    write(&root, "gb/pocket.state1", b"state");
    ok(device_install("pocket", "device-muos", "muos"));
    assert_eq!(fs::read(root.join("gb/pocket.sav")).unwrap(), b"save");
    assert_eq!(fs::read(root.join("gb/pocket.gb")).unwrap(), gb);
    ok(device(&[
        "uninstall",
        "-t",
        "Game (USA)",
        "--install-dir",
        &w.s("device-muos"),
        "--layout",
        "muos",
    ]));
    assert!(!root.join("nes/Game (USA).nes").exists());
    assert!(!root.join("nes/.romlib-games").exists());
    ok(device(&[
        "uninstall",
        "-g",
        "pocket",
        "--install-dir",
        &w.s("device-muos"),
        "--layout",
        "muos",
    ]));
    assert!(!root.join("gb/pocket.gb").exists());
    assert_eq!(fs::read(root.join("gb/pocket.sav")).unwrap(), b"save");
    assert_eq!(fs::read(root.join("gb/pocket.state1")).unwrap(), b"state");
    ok(romlib(&[
        "uninstall",
        "-t",
        "pocket",
        "--install-dir",
        &w.s("host-onion"),
        "--layout",
        "onion",
    ]));
    assert!(!w.p("host-onion/GB/pocket.gb").exists());
    fails(
        device(&[
            "uninstall",
            "-t",
            "pocket",
            "--install-dir",
            &w.s("host-onion"),
            "--layout",
            "onion",
        ]),
        1,
        &["pocket", "no such installed game"],
    );

    // A file of the user's where a flat game would go is never replaced: the install
    // refuses before anything changes.
    write(&w.p("mine"), "gb/pocket.gb", b"my own dump");
    fails(
        device_install("pocket", "mine", "muos"),
        1,
        &["mine/gb/pocket.gb", "not installed by romlib"],
    );
    assert_eq!(fs::read(w.p("mine/gb/pocket.gb")).unwrap(), b"my own dump");
    assert!(!w.p("mine/gb/.romlib-games").exists());
    assert!(!w.p("mine/gb/.romlib-staging").exists());

    // A card set up before flat placement (each game in a folder of its own): the next
    // install with --layout puts the game flat and retires its old folder, the user's
    // files in it kept with a note.
    ok(device(&[
        "install",
        "-g",
        "pocket",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("old/gb"),
        "--trusted-key",
        &key,
    ]));
    write(&w.p("old"), "gb/pocket/pocket.srm", b"old save");
    ok(device_install("pocket", "old", "muos"));
    assert_eq!(fs::read(w.p("old/gb/pocket.gb")).unwrap(), gb);
    assert!(!w.p("old/gb/pocket/pocket.gb").exists());
    assert_eq!(
        fs::read(w.p("old/gb/pocket/pocket.srm")).unwrap(),
        b"old save"
    );
    assert!(w.p("old/gb/pocket/.romlib-kept").is_file());

    // An unknown layout is a usage error listing the layouts; a system the table lacks
    // lists the systems; nothing is installed either way.
    for out in [
        device_install("pocket", "bad", "garlic"),
        host_install("pocket", "bad", "garlic"),
    ] {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("layout \"garlic\": unknown; layouts: muos, knulli (batocera), minui"),
            "{err}"
        );
    }
    fails(
        device_install("astro", "bad", "muos"),
        1,
        &[
            "game \"astro\"",
            "\"Bally Astrocade\"",
            "known systems: nes, fds",
        ],
    );
    fails(
        host_install("astro", "bad", "minui"),
        1,
        &["game \"astro\"", "known systems"],
    );
    assert!(!w.p("bad").join("nes").exists() && !w.p("bad").join("astro").exists());
}

#[test]
fn a_mame_listxml_of_real_size_is_checked_in_bounded_memory() {
    // MAME's -listxml is about 250 MiB; ROMLIB_LISTXML_MIB=250 runs the real size (the DAT
    // benchmark, host-builder/bench/dat.sh, does and reports time and peak RSS). The
    // check runs with 256 MiB of address space: holding the file would kill it.
    let mib: u64 = std::env::var("ROMLIB_LISTXML_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let (w, i) = lib_setup(false);
    let gen = std::process::Command::new(env!("CARGO_BIN_EXE_gen-dat"))
        .args(["--listxml", &mib.to_string(), &w.s("listxml.xml")])
        .output()
        .unwrap();
    assert!(gen.status.success());
    let said = String::from_utf8_lossy(&gen.stderr);
    let machines: u64 = said
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(machines > mib * 150, "{said}");
    // One machine the library holds, at the end of the file, as -listxml writes it.
    let mut text = fs::read(w.p("listxml.xml")).unwrap();
    let end = text.len() - "</mame>\n".len();
    assert_eq!(&text[end..], b"</mame>\n");
    text.truncate(end);
    text.extend_from_slice(
        format!(
            "\t<machine name=\"tetris\" sourcefile=\"nintendo/gb.cpp\">\n\t\t<description>Tetris\
             </description>\n\t\t{}\n\t\t<chip type=\"cpu\" tag=\"maincpu\" name=\"LR35902\"/>\n\
             \t</machine>\n</mame>\n",
            xml_rom("tetris.bin", &i.tetris, "c1").replace(
                "status=\"good\" mia=\"no\"",
                "region=\"maincpu\" offset=\"0\""
            )
        )
        .as_bytes(),
    );
    fs::write(w.p("listxml.xml"), text).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 262144 && exec \"$0\" \"$@\"")
        .env("ROMLIB_CONFIG_DIR", config_dir())
        .arg(bin("romlib"))
        .args(["verify", "-r", &w.s("lib"), "--dat", &w.s("listxml.xml")])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // gen-dat's machines all have roms (some nodump or bad dumps): every one is reported.
    let totals = format!(
        "{} games: 1 complete, 0 incomplete, 0 wrong hash, {} missing",
        machines + 1,
        machines
    );
    assert!(
        report.contains(&totals),
        "{totals:?} not in the report's end: {}",
        &report[report.len().saturating_sub(600)..]
    );
    assert!(report.contains("complete   tetris -> tetris"));
}

#[test]
fn a_layout_install_over_http_reuses_what_the_system_folder_holds() {
    // An upgrade over the network with --layout: the installed version sits in the same
    // system folder, and its chunks are taken from there instead of downloaded.
    let w = Workspace::new();
    let mut r = Rng::new(19);
    let v1 = ines(&mut r, 600_000);
    let mut v2 = v1.clone();
    for i in (1000..v2.len()).step_by(150_000) {
        v2[i] ^= 0x5a;
    }
    write(&w.p("in"), "alpha/alpha.nes", &v1);
    write(&w.p("in"), "alpha-v2/alpha.nes", &v2);
    ok(w.build("in", "lib", &["--system", "nes", "--avg-chunk", "8192"]));
    let (mut server, port, _log) = start_serve(&w.s("lib"));
    let url = format!("http://127.0.0.1:{port}/");
    let install = |game: &str| {
        ok(device(&[
            "install",
            "--from",
            &url,
            "-g",
            game,
            "--install-dir",
            &w.s("sd"),
            "--layout",
            "onion",
            "--trusted-key",
            &w.s("k.pub"),
        ]))
    };
    let first = install("alpha");
    assert!(first.contains(" 0 chunks (0 bytes) reused"), "{first}");
    let upgrade = install("alpha-v2");
    // Both lie flat in the system folder: the upgrade read the old one's chunks there.
    assert_eq!(fs::read(w.p("sd/FC/alpha-v2.nes")).unwrap(), v2);
    assert_eq!(fs::read(w.p("sd/FC/alpha.nes")).unwrap(), v1);
    assert!(
        upgrade.contains("reused from this device") && !upgrade.contains(" 0 chunks (0 bytes)"),
        "{upgrade}"
    );
    let bytes = |out: &str| -> u64 {
        let at = out.find("downloaded ").unwrap() + "downloaded ".len();
        out[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        bytes(&upgrade) * 4 < v2.len() as u64,
        "the upgrade downloaded too much: {upgrade}"
    );
    // The same game copied onto another card by hand is adopted from the server: only the
    // manifest of the title found there is fetched, and its bytes are compared.
    write(&w.p("sd2"), "FC/alpha.nes", &v1);
    write(&w.p("sd2"), "FC/unknown.nes", b"?");
    let adopted = ok(device(&[
        "adopt",
        "--from",
        &url,
        "--install-dir",
        &w.s("sd2"),
        "--layout",
        "onion",
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert!(
        adopted.contains("adopted alpha:")
            && adopted.contains("1 game adopted, 0 differ from the library, 1 not in"),
        "{adopted}"
    );
    assert!(w.p("sd2/FC/.romlib-games/alpha").is_file());
    let _ = server.kill();
    let _ = server.wait();
}
