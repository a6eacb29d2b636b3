//! Collections as they are: system folders of one-file games, multi-file discs and
//! playlists, the library inside its own input, links and unreadable entries (issue 30).

use romlib_tests::schema::{schema, stdout_obj};
use romlib_tests::*;
use std::fs;

/// (title, system, files) of each game of `lib`.
fn games(w: &Workspace, lib: &str) -> Vec<(String, String, u64)> {
    (listed_games(w, lib).iter())
        .map(|g| {
            let s = |k: &str| g[k].as_str().unwrap().to_string();
            (s("title_id"), s("system"), g["files"].as_u64().unwrap())
        })
        .collect()
}

/// A collection in system folders: one-file games, a cue/bin disc whose sheet differs from
/// its files in case, a playlist of two discs kept in `.hidden/`, a game folder, a sidecar
/// beside a game, saves and a front end's list, and one title in two systems.
fn collection(w: &Workspace) {
    let mut r = Rng::new(30);
    let i = w.p("roms");
    write(&i, "gb/Alpha (World).gb", &r.bytes(20_000));
    write(&i, "gb/Alpha (World).sav", b"save");
    write(&i, "gb/gamelist.xml", b"<gameList/>");
    write(&i, "gb/Tetris (World).gb", &r.bytes(30_000));
    write(
        &i,
        "Nintendo - Nintendo Entertainment System/Tetris (World).nes",
        &r.bytes(25_000),
    );
    write(&i, "psx/Disc (Track 1).bin", &r.bytes(60_000));
    write(&i, "psx/Disc (Track 2).bin", &r.bytes(10_000));
    write(
        &i,
        "psx/Disc.cue",
        b"FILE \"disc (track 1).bin\" BINARY\r\n  TRACK 01 MODE2/2352\r\n\
          FILE \"Disc (Track 2).bin\" BINARY\r\n  TRACK 02 AUDIO\r\n",
    );
    for d in 1..=2 {
        write(
            &i,
            &format!("psx/.hidden/Saga (Disc {d}).bin"),
            &r.bytes(15_000),
        );
        write(
            &i,
            &format!("psx/.hidden/Saga (Disc {d}).cue"),
            format!("FILE \"Saga (Disc {d}).bin\" BINARY\n").as_bytes(),
        );
    }
    write(
        &i,
        "psx/Saga.m3u",
        b"#EXTM3U\n.hidden/Saga (Disc 1).cue\n.hidden\\Saga (Disc 2).cue\n",
    );
    // A GD-ROM table, a CloneCD image and an Alcohol image.
    write(
        &i,
        "psx/Dream.gdi",
        b"3\r\n1 0 4 2352 track01.bin 0\r\n2 756 0 2352 \"track 02.raw\" 0\r\n\
          3 45000 4 2352 track03.bin 0\r\n",
    );
    for t in ["track01.bin", "track 02.raw", "track03.bin"] {
        write(&i, &format!("psx/{t}"), &r.bytes(3_000));
    }
    for ext in ["ccd", "img", "sub"] {
        write(&i, &format!("psx/Clone.{ext}"), &r.bytes(2_000));
    }
    for ext in ["mds", "mdf"] {
        write(&i, &format!("psx/Alc.{ext}"), &r.bytes(2_000));
    }
    write(&i, "megadrive/Folder Game/data/a.bin", &r.bytes(5_000));
    write(&i, "megadrive/Folder Game/game.md", &r.bytes(5_000));
    write(&i, "megadrive/Sonic.md", &r.bytes(8_000));
    write(
        &i,
        "megadrive/Sonic.romlib.toml",
        b"name = \"Sonic Demo\"\ntags = [\"demo\"]\n",
    );
}

#[test]
fn system_folders_are_detected_and_each_file_disc_or_folder_is_a_game() {
    let w = Workspace::new();
    collection(&w);
    let s = json_of(w.build("roms", "lib", &["--json"]));
    assert_eq!(s["input_layout"], "system-folders");
    assert_eq!(s["save_files"], 1);
    assert_eq!(s["front_end_files"], 1);
    let want = [
        ("Alc", "psx", 2),
        ("Alpha (World)", "gb", 1),
        ("Clone", "psx", 3),
        ("Disc", "psx", 3),
        ("Dream", "psx", 4),
        ("Folder Game", "megadrive", 2),
        ("Saga", "psx", 5),
        ("Sonic", "megadrive", 1),
        ("Tetris (World) [gb]", "gb", 1),
        ("Tetris (World) [nes]", "nes", 1),
    ];
    let got = games(&w, "lib");
    let got: Vec<(&str, &str, u64)> = got
        .iter()
        .map(|(t, s, n)| (t.as_str(), s.as_str(), *n))
        .collect();
    assert_eq!(got, want);
    // The files keep their names relative to the system folder, so the playlist still
    // finds its discs after an install.
    let show = ok(romlib(&["show", "-r", &w.s("lib"), "-g", "Saga"]));
    assert!(
        show.contains(".hidden/Saga (Disc 2).cue") && show.contains("Saga.m3u"),
        "{show}"
    );
    let show = ok(romlib(&["show", "-r", &w.s("lib"), "-g", "Sonic"]));
    assert!(
        show.contains("Sonic Demo") && show.contains("demo"),
        "{show}"
    );
    verify_ok(&w, "lib");

    // Installed by the system recorded from the folder, byte for byte.
    let install_muos = |game: &str| {
        ok(device(&[
            "install",
            "-g",
            game,
            "-r",
            &w.s("lib"),
            "--install-dir",
            &w.s("card"),
            "--layout",
            "muos",
            "--trusted-key",
            &w.s("k.pub"),
        ]))
    };
    // A multi-disc set lies in the system folder as muOS and Knulli keep one: the
    // playlist at the top, the discs in `.hidden/`; a cue sheet and its tracks lie flat.
    install_muos("Saga");
    install_muos("Disc");
    let same = |card: &str, input: &str| {
        assert_eq!(
            fs::read(w.p(card)).unwrap(),
            fs::read(w.p("roms/psx").join(input)).unwrap(),
            "{card}"
        );
    };
    same("card/psx/Saga.m3u", "Saga.m3u");
    for d in 1..=2 {
        for ext in ["bin", "cue"] {
            let name = format!(".hidden/Saga (Disc {d}).{ext}");
            same(&format!("card/psx/{name}"), &name);
        }
    }
    for t in ["Disc.cue", "Disc (Track 1).bin", "Disc (Track 2).bin"] {
        same(&format!("card/psx/{t}"), t);
    }
    assert!(!w.p("card/psx/Saga").exists() && !w.p("card/psx/Disc").exists());
    // MinUI and NextUI want such a game in a folder named after it, the playlist inside.
    ok(device(&[
        "install",
        "-g",
        "Saga",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("minui"),
        "--layout",
        "minui",
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert!(w.p("minui/Sony PlayStation (PS)/Saga/Saga.m3u").is_file());
    // Uninstalling the disc set removes its files, the user's save beside it stays.
    write(&w.p("card"), "psx/Disc.srm", b"save");
    ok(device(&[
        "uninstall",
        "-g",
        "Disc",
        "--install-dir",
        &w.s("card"),
        "--layout",
        "muos",
    ]));
    assert!(!w.p("card/psx/Disc.cue").exists() && !w.p("card/psx/Disc (Track 1).bin").exists());
    assert_eq!(fs::read(w.p("card/psx/Disc.srm")).unwrap(), b"save");

    // The installed side under a layout: listed, verified and cleaned up in its system
    // folders; without --layout the folder of system folders is explained, not "0 games".
    install_muos("Sonic");
    let card = w.s("card");
    let key = w.s("k.pub");
    for args in [
        vec!["list-games", "--install-dir", &card],
        vec![
            "verify",
            "--installed",
            "--all",
            "--install-dir",
            &card,
            "--trusted-key",
            &key,
        ],
        vec!["cleanup", "--install-dir", &card],
    ] {
        fails(
            device(&args),
            1,
            &["system folders", "genesis, psx", "--layout"],
        );
        let mut with = args.clone();
        with.extend(["--layout", "muos"]);
        let out = ok(device(&with));
        if args[0] != "cleanup" {
            assert!(out.contains("Saga") && out.contains("Sonic"), "{out}");
        }
    }

    // A second build adds nothing and writes no manifest.
    let s = json_of(w.build("roms", "lib", &["--json"]));
    assert_eq!(s["new_chunks"], 0);
    assert_eq!(s["manifests_written"], 0);
    // Game folders, asked for, make each system one game (today's behaviour, on purpose).
    let s = json_of(w.build(
        "roms",
        "lib2",
        &["--json", "--input-layout", "game-folders"],
    ));
    assert_eq!(s["input_layout"], "game-folders");
    assert_eq!(s["games"], 4);
}

#[test]
fn one_system_folder_as_input_and_its_system() {
    let w = Workspace::new();
    collection(&w);
    // `-i roms/gb`: the input is a system's folder.
    let s = json_of(w.build("roms/gb", "lib", &["--json"]));
    assert_eq!(s["input_layout"], "system-folders");
    let got = games(&w, "lib");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|(_, s, _)| s == "gb"), "{got:?}");
    assert_eq!(got[1].0, "Tetris (World)");

    // A folder of files not named after a system: explained, not built as nothing.
    write(&w.p("stuff"), "a.rom", b"1");
    write(&w.p("stuff"), "b.rom", b"2");
    fails(
        w.build("stuff", "lib3", &[]),
        1,
        &[
            "2 files lie directly in it",
            "--input-layout system-folders",
        ],
    );
    // Asked for, each file is a game, of the system --system names (recorded as written,
    // as for game folders).
    ok(w.build(
        "stuff",
        "lib3",
        &["--input-layout", "system-folders", "--system", "Game Boy"],
    ));
    let got = games(&w, "lib3");
    assert_eq!(
        got,
        [
            ("a".into(), "Game Boy".into(), 1),
            ("b".into(), "Game Boy".into(), 1)
        ]
    );

    // One game's folder given as the input.
    write(&w.p("one"), "game.gb", b"x");
    write(&w.p("one"), "romlib.toml", b"name = \"One\"\n");
    fails(
        w.build("one", "lib4", &[]),
        1,
        &["looks like one game's folder", "point -i"],
    );
}

#[test]
fn mixed_folders_and_claimed_files_are_explained() {
    let w = Workspace::new();
    write(&w.p("in"), "gb/a.gb", b"a");
    write(&w.p("in"), "My Game/a.bin", b"b");
    fails(
        w.build("in", "lib", &[]),
        1,
        &["named after systems", "--input-layout"],
    );
    // Two sheets naming one file.
    write(&w.p("cd"), "psx/track.bin", b"t");
    write(&w.p("cd"), "psx/One.cue", b"FILE \"track.bin\" BINARY\n");
    write(&w.p("cd"), "psx/Two.cue", b"FILE \"track.bin\" BINARY\n");
    fails(
        w.build("cd", "lib", &[]),
        1,
        &["track.bin", "named by two games", "One", "Two"],
    );
    // A sheet naming a missing track: the disc is skipped with a warning (its other files
    // are not taken for games), or refused with --strict.
    write(
        &w.p("cd2"),
        "psx/Broken.cue",
        b"FILE \"gone.bin\" BINARY\nFILE \"here.bin\" BINARY\n",
    );
    write(&w.p("cd2"), "psx/here.bin", b"h");
    write(&w.p("cd2"), "psx/Fine.iso", b"f");
    let out = w.build("cd2", "lib2", &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(
        err.contains("Broken.cue") && err.contains("\"gone.bin\", which is missing"),
        "{err}"
    );
    let got = games(&w, "lib2");
    assert_eq!(got, [("Fine".into(), "psx".into(), 1)]);
    fails(
        w.build("cd2", "lib3", &["--strict"]),
        1,
        &["Broken.cue", "missing", "--strict"],
    );
    // Two files of one stem in one system folder.
    write(&w.p("dup"), "gb/Same.gb", b"1");
    write(&w.p("dup"), "gb/Same.bin", b"2");
    fails(
        w.build("dup", "lib4", &[]),
        1,
        &["two games would be titled \"Same\"", "Same.gb", "Same.bin"],
    );
}

#[cfg(unix)]
#[test]
fn the_library_inside_its_input_and_links_are_left_out() {
    use std::os::unix::fs::symlink;
    let w = Workspace::new();
    let mut r = Rng::new(31);
    write(&w.p("in"), "alpha/a.bin", &r.bytes(50_000));
    write(&w.p("outside"), "secret.key", b"not game data");
    symlink(w.p("outside/secret.key"), w.p("in/alpha/key.bin")).unwrap();
    symlink(w.p("nowhere"), w.p("in/alpha/dangling.bin")).unwrap();
    symlink(w.p("in/alpha/a.bin"), w.p("in/alpha/inside.bin")).unwrap();
    symlink(w.p("in"), w.p("in/alpha/loop")).unwrap();
    // The library inside the input, and a link to it elsewhere in the input.
    let s = json_of(w.build("in", "in/lib", &["--json"]));
    assert_eq!(s["files"], 2, "{s}"); // a.bin and the link inside the input
    let skipped = s["skipped_inputs"].to_string();
    for n in [
        "key.bin",
        "outside the input",
        "dangling.bin",
        "dangling",
        "loop",
    ] {
        assert!(skipped.contains(n), "{n}: {skipped}");
    }
    symlink(w.p("in/lib"), w.p("in/beta")).unwrap();
    let size = |p: &str| {
        snapshot(&w.p(p))
            .iter()
            .map(|(_, b)| b.len() as u64)
            .sum::<u64>()
    };
    let before = size("in/lib/packs");
    for _ in 0..2 {
        let s = json_of(w.build("in", "in/lib", &["--json"]));
        assert_eq!(s["games"], 1, "{s}");
        assert_eq!(s["new_chunks"], 0, "{s}");
        assert!(s["libraries_skipped"].to_string().contains("lib"), "{s}");
    }
    assert_eq!(size("in/lib/packs"), before);
    // Asked to, the outward link is followed; --strict refuses the dangling one.
    fails(
        w.build("in", "in/lib", &["--strict"]),
        1,
        &["dangling.bin", "--strict"],
    );
    fs::remove_file(w.p("in/alpha/dangling.bin")).unwrap();
    fs::remove_file(w.p("in/alpha/loop")).unwrap();
    let s = json_of(w.build("in", "in/lib", &["--json", "--follow-symlinks"]));
    assert_eq!(s["files"], 3, "{s}");
    verify_ok(&w, "in/lib");
}

/// A DAT game: its name and its roms' names and bytes.
type DatGame<'a> = (&'a str, &'a [(&'a str, &'a [u8])]);

/// A clrmamepro DAT of `games`.
fn dat(games: &[DatGame]) -> String {
    use romlib_host::dat::digests::{hex, DatHashes};
    let mut s = String::from("clrmamepro (\n\tname \"Nintendo - Game Boy\"\n)\n\n");
    for (name, roms) in games {
        s += &format!("game (\n\tname \"{name}\"\n");
        for (rom, data) in *roms {
            let h = DatHashes::of(data);
            s += &format!(
                "\trom ( name \"{rom}\" size {} crc {:08x} sha1 {} )\n",
                data.len(),
                h.crc32,
                hex(&h.sha1)
            );
        }
        s += ")\n\n";
    }
    s
}

#[test]
fn rename_titles_games_after_the_dat_and_follows_a_newer_dat() {
    let w = Workspace::new();
    let mut r = Rng::new(32);
    let (alpha, beta, bad) = (r.bytes(40_000), r.bytes(30_000), r.bytes(30_000));
    write(&w.p("in"), "gb/alpha.gb", &alpha);
    // A bad dump under its DAT name in a folder named otherwise.
    write(&w.p("in"), "gb/betafolder/Beta (World).gb", &bad);
    fs::write(
        w.p("v1.dat"),
        dat(&[
            ("Alpha (World)", &[("Alpha (World).gb", &alpha)]),
            ("Beta (World)", &[("Beta (World).gb", &beta)]),
        ]),
    )
    .unwrap();
    fs::write(
        w.p("v2.dat"),
        dat(&[
            (
                "Alpha (World) (Rev 1)",
                &[("Alpha (World) (Rev 1).gb", &alpha)],
            ),
            ("Beta (World)", &[("Beta (World).gb", &beta)]),
        ]),
    )
    .unwrap();
    fails(
        w.build("in", "lib", &["--rename"]),
        2,
        &["--rename", "--dat"],
    );

    ok(w.build("in", "lib", &["--dat", &w.s("v1.dat"), "--rename"]));
    let titles =
        |w: &Workspace| -> Vec<String> { games(w, "lib").into_iter().map(|g| g.0).collect() };
    assert_eq!(titles(&w), ["Alpha (World)", "betafolder"]);
    let show = ok(romlib(&["show", "-r", &w.s("lib"), "-g", "Alpha (World)"]));
    assert!(show.contains("Alpha (World).gb"), "{show}");

    // A newer DAT renames again: the old title goes, no second copy.
    let s = json_of(w.build(
        "in",
        "lib",
        &["--json", "--dat", &w.s("v2.dat"), "--rename"],
    ));
    assert_eq!(s["new_chunks"], 0, "{s}");
    assert_eq!(s["renamed"][0]["from"], "Alpha (World)", "{s}");
    assert_eq!(s["renamed"][0]["to"], "Alpha (World) (Rev 1)", "{s}");
    assert_eq!(titles(&w), ["Alpha (World) (Rev 1)", "betafolder"]);
    verify_ok(&w, "lib");
    ok(device(&[
        "install",
        "-g",
        "Alpha (World) (Rev 1)",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("card"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert_eq!(
        fs::read(w.p("card/Alpha (World) (Rev 1)/Alpha (World) (Rev 1).gb")).unwrap(),
        alpha
    );
    // Nothing changes on a rerun; the bad dump is a wrong hash, found by its file's name.
    let s = json_of(w.build(
        "in",
        "lib",
        &["--json", "--dat", &w.s("v2.dat"), "--rename"],
    ));
    assert_eq!(s["manifests_written"], 0, "{s}");
    assert_eq!(s["renamed"].as_array().unwrap().len(), 0, "{s}");
    let out = romlib(&["verify", "-r", &w.s("lib"), "--dat", &w.s("v2.dat")]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("complete   Alpha (World) (Rev 1)"), "{text}");
    assert!(
        text.contains("wrong-hash Beta (World) -> betafolder"),
        "{text}"
    );
}

/// A card filled by hand (or by another tool) from the same collection: `adopt` writes the
/// markers of the games that are byte for byte the library's, reports the rest, and moves
/// nothing; the adopted games are then romlib's to list, verify and uninstall.
#[test]
fn adopt_takes_games_already_on_the_card_and_moves_nothing() {
    let w = Workspace::new();
    collection(&w);
    ok(w.build("roms", "lib", &[]));
    // The card, as muOS wants it: the collection copied over, one game changed, one the
    // library lacks, a save, and a folder game.
    let roms = w.p("roms");
    let card = w.p("card");
    for (from, to) in [
        ("gb/Alpha (World).gb", "gb/Alpha (World).gb"),
        ("gb/Alpha (World).sav", "gb/Alpha (World).sav"),
        ("psx/Disc.cue", "psx/Disc.cue"),
        ("psx/Disc (Track 1).bin", "psx/Disc (Track 1).bin"),
        ("psx/Disc (Track 2).bin", "psx/Disc (Track 2).bin"),
        ("psx/Saga.m3u", "psx/Saga.m3u"),
        (
            "megadrive/Folder Game/game.md",
            "genesis/Folder Game/game.md",
        ),
        (
            "megadrive/Folder Game/data/a.bin",
            "genesis/Folder Game/data/a.bin",
        ),
    ] {
        write(&card, to, &fs::read(roms.join(from)).unwrap());
    }
    for d in 1..=2 {
        for ext in ["bin", "cue"] {
            let name = format!("psx/.hidden/Saga (Disc {d}).{ext}");
            write(&card, &name, &fs::read(roms.join(&name)).unwrap());
        }
    }
    let mut tetris = fs::read(roms.join("gb/Tetris (World).gb")).unwrap();
    tetris[100] ^= 1;
    write(&card, "gb/Tetris (World).gb", &tetris);
    write(&card, "gb/Homebrew.gb", b"not in the library");
    let before = snapshot(&card);

    let adopt = |extra: &[&str]| {
        let mut a = vec!["adopt", "--install-dir", card.to_str().unwrap(), "-r"];
        let lib = w.s("lib");
        let key = w.s("k.pub");
        a.extend([lib.as_str(), "--trusted-key", key.as_str()]);
        a.extend(extra);
        device(&a)
    };
    let out = adopt(&["--layout", "muos", "--json"]);
    let v = stdout_obj(&schema(), &out);
    assert!(out.status.success(), "{v}");
    let titles = |k: &str| -> Vec<String> {
        let mut t: Vec<String> = (v[k].as_array().unwrap().iter())
            .map(|g| g["title"].as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    };
    assert_eq!(
        titles("matched"),
        ["Alpha (World)", "Disc", "Folder Game", "Saga"],
        "{v}"
    );
    assert_eq!(titles("differed"), ["Tetris (World) [gb]"]);
    let problem = v["differed"][0]["problem"].as_str().unwrap();
    assert!(problem.contains("other bytes than signed"), "{problem}");
    let unknown: Vec<&str> = (v["unknown"].as_array().unwrap().iter())
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        unknown.iter().any(|p| p.ends_with("gb/Homebrew.gb"))
            && unknown.iter().any(|p| p.ends_with("gb/Alpha (World).sav")),
        "{unknown:?}"
    );
    // Nothing moved or changed: only markers and records were added.
    let after: Vec<(String, Vec<u8>)> = snapshot(&card)
        .into_iter()
        .filter(|(n, _)| !n.contains(".romlib-"))
        .collect();
    assert_eq!(after, before);
    // The adopted games are romlib's now: listed, verified, uninstalled.
    let key = w.s("k.pub");
    let layout = ["--install-dir", card.to_str().unwrap(), "--layout", "muos"];
    let listed = ok(device(&[&["list-games"][..], &layout].concat()));
    for t in ["Alpha (World)", "Disc", "Folder Game", "Saga"] {
        assert!(listed.contains(t), "{listed}");
    }
    ok(device(
        &[
            &["verify", "--installed", "--all", "--trusted-key", &key][..],
            &layout,
        ]
        .concat(),
    ));
    ok(device(
        &[&["uninstall", "-g", "Alpha (World)"][..], &layout].concat(),
    ));
    assert!(!card.join("gb/Alpha (World).gb").exists());
    assert_eq!(
        fs::read(card.join("gb/Alpha (World).sav")).unwrap(),
        b"save"
    );
    // A second run adopts nothing new and still reports what differs.
    let again = ok(adopt(&["--layout", "muos"]));
    assert!(again.contains("0 games adopted, 1 differ"), "{again}");
}
