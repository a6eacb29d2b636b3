//! Archives in the input (issue 30): zip and 7z games stored as their members, parent and
//! clone sets deduplicated, DATs matched on members, hostile archives skipped.

use romlib_host::dat::digests::{hex, DatHashes};
use romlib_tests::*;
use std::fs;

/// (title, files) of each game of `lib`.
fn games(w: &Workspace, lib: &str) -> Vec<(String, u64)> {
    (listed_games(w, lib).iter())
        .map(|g| {
            (
                g["title_id"].as_str().unwrap().to_string(),
                g["files"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A clrmamepro DAT line for a rom.
fn rom(name: &str, data: &[u8]) -> String {
    let h = DatHashes::of(data);
    format!(
        "\trom ( name \"{name}\" size {} crc {:08x} sha1 {} )\n",
        data.len(),
        h.crc32,
        hex(&h.sha1)
    )
}

#[test]
fn zip_and_7z_games_are_their_members_and_clones_deduplicate() {
    let w = Workspace::new();
    let mut r = Rng::new(300);
    let (cpu, gfx, snd) = (r.bytes(200_000), r.bytes(150_000), r.bytes(20_000));
    let clone_cpu = r.bytes(200_000);
    let i = w.p("roms");
    // A parent set and its clone, sharing two of three roms, one deflated, one stored.
    write_zip(
        &i.join("arcade/pacman.zip"),
        &[
            ("pacman.6e", &cpu),
            ("pacman.5e", &gfx),
            ("82s123.7f", &snd),
        ],
        true,
    );
    write_zip(
        &i.join("arcade/puckman.zip"),
        &[
            ("puckman.6e", &clone_cpu),
            ("pacman.5e", &gfx),
            ("82s123.7f", &snd),
        ],
        false,
    );
    // A solid 7z of a game with a folder inside, and an empty member.
    let (a, b) = (r.text(120_000), r.bytes(64_000));
    write_7z(
        &i.join("gb/Pocket Set (World).7z"),
        &[("b.gb", &b), ("docs/readme.txt", &a), ("empty.cfg", b"")],
    );
    // The same rom unzipped in another system folder: nothing new to store.
    write(&i, "nes/Loose.nes", &gfx);

    // Older than the input cache's racy margin, so the second build below can skip them.
    std::thread::sleep(std::time::Duration::from_millis(2_300));
    let s = json_of(w.build("roms", "lib", &["--json", "--no-deltas"]));
    assert_eq!(s["games"], 4, "{s}");
    assert_eq!(s["files"], 10, "{s}");
    // Stored: cpu, gfx, snd, the clone's cpu, and the 7z's two files, once each.
    let unique = cpu.len() + gfx.len() + snd.len() + clone_cpu.len() + a.len() + b.len();
    let new = s["new_bytes"].as_u64().unwrap();
    assert!(
        new <= unique as u64 + 4096,
        "members deduplicate: {new} new bytes for {unique} unique"
    );
    assert_eq!(
        games(&w, "lib"),
        [
            ("Loose".to_string(), 1),
            ("Pocket Set (World)".to_string(), 3),
            ("pacman".to_string(), 3),
            ("puckman".to_string(), 3),
        ]
    );
    // The archive's order is kept, and the manifest says where the game came from.
    let show = ok(romlib(&[
        "show",
        "-r",
        &w.s("lib"),
        "-g",
        "Pocket Set (World)",
    ]));
    let (pb, pd) = (
        show.find("b.gb").unwrap(),
        show.find("docs/readme.txt").unwrap(),
    );
    assert!(pb < pd, "archive order: {show}");
    assert!(show.contains("7z archive Pocket Set (World).7z"), "{show}");
    verify_ok(&w, "lib");

    // Installs give the members' bytes.
    ok(romlib(&[
        "install",
        "-g",
        "puckman",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("card"),
    ]));
    assert_eq!(fs::read(w.p("card/puckman/puckman.6e")).unwrap(), clone_cpu);
    assert_eq!(fs::read(w.p("card/puckman/pacman.5e")).unwrap(), gfx);
    ok(romlib(&[
        "install",
        "-g",
        "Pocket Set (World)",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("card"),
    ]));
    assert_eq!(
        fs::read(w.p("card/Pocket Set (World)/docs/readme.txt")).unwrap(),
        a
    );
    assert_eq!(
        fs::read(w.p("card/Pocket Set (World)/empty.cfg")).unwrap(),
        b""
    );

    // A DAT matches the members, as igir does.
    let dat = format!(
        "clrmamepro (\n\tname \"Arcade\"\n)\n\ngame (\n\tname \"pacman\"\n{}{}{})\n\n\
         game (\n\tname \"puckman\"\n\tcloneof \"pacman\"\n{}{}{})\n",
        rom("pacman.6e", &cpu),
        rom("pacman.5e", &gfx),
        rom("82s123.7f", &snd),
        rom("puckman.6e", &clone_cpu),
        rom("pacman.5e", &gfx),
        rom("82s123.7f", &snd),
    );
    fs::write(w.p("arcade.dat"), dat).unwrap();
    let out = ok(romlib(&[
        "verify",
        "-r",
        &w.s("lib"),
        "--dat",
        &w.s("arcade.dat"),
    ]));
    for n in [
        "complete   pacman -> pacman",
        "complete   puckman -> puckman",
    ] {
        assert!(out.contains(n), "{n:?} not in {out}");
    }

    // A second build reads nothing new; touching an archive reads it again, same result.
    let s = json_of(w.build("roms", "lib", &["--json", "--no-deltas"]));
    assert_eq!(s["skipped_games"], 4, "{s}");
    let s = json_of(w.build("roms", "lib", &["--json", "--no-deltas", "--reread"]));
    assert_eq!(s["new_chunks"], 0, "{s}");
    assert_eq!(s["manifests_written"], 0, "{s}");
}

/// Offsets of every `sig` (a little-endian zip record signature) in `bytes`.
fn records(bytes: &[u8], sig: u32) -> Vec<usize> {
    let sig = sig.to_le_bytes();
    (0..bytes.len().saturating_sub(4))
        .filter(|&i| bytes[i..i + 4] == sig)
        .collect()
}

#[test]
fn hostile_archives_are_skipped_with_a_reason_or_refused_with_strict() {
    let w = Workspace::new();
    let mut r = Rng::new(301);
    let i = w.p("roms");
    write(&i, "arcade/good.bin", &r.bytes(1000));
    // Encrypted: the general-purpose flag's bit 0, in the local and central headers.
    write_zip(
        &i.join("arcade/locked.zip"),
        &[("a.rom", &r.bytes(500))],
        false,
    );
    let mut z = fs::read(i.join("arcade/locked.zip")).unwrap();
    for at in records(&z, 0x0403_4b50) {
        z[at + 6] |= 1;
    }
    for at in records(&z, 0x0201_4b50) {
        z[at + 8] |= 1;
    }
    fs::write(i.join("arcade/locked.zip"), z).unwrap();
    // A bomb: the central directory claims 4 GB from a few hundred bytes.
    write_zip(&i.join("arcade/bomb.zip"), &[("a.rom", &[0u8; 300])], true);
    let mut z = fs::read(i.join("arcade/bomb.zip")).unwrap();
    for at in records(&z, 0x0201_4b50) {
        z[at + 24..at + 28].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    }
    fs::write(i.join("arcade/bomb.zip"), z).unwrap();
    // A member escaping the game's folder, and a file that is no archive.
    write_zip(
        &i.join("arcade/escape.zip"),
        &[("../../evil.rom", b"x")],
        false,
    );
    write(&i, "arcade/notzip.zip", b"this is not a zip archive at all");
    // A 7z that is cut short.
    write_7z(&i.join("arcade/cut.7z"), &[("a.rom", &r.bytes(5000))]);
    let cut = fs::read(i.join("arcade/cut.7z")).unwrap();
    fs::write(i.join("arcade/cut.7z"), &cut[..cut.len() - 20]).unwrap();

    let s = json_of(w.build("roms", "lib", &["--json"]));
    assert_eq!(games(&w, "lib"), [("good".to_string(), 1)]);
    let skipped = s["skipped_inputs"].as_array().unwrap();
    let reason = |name: &str| {
        skipped
            .iter()
            .find(|e| e["path"].as_str().unwrap().ends_with(name))
            .map(|e| e["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} not skipped: {s}"))
    };
    assert!(reason("locked.zip").contains("encrypted"));
    assert!(reason("bomb.zip").contains("archive bomb"));
    assert!(reason("escape.zip").contains("outside the game's folder"));
    assert!(reason("notzip.zip").contains("not a readable zip archive"));
    assert!(reason("cut.7z").contains("not a readable 7z archive"));
    assert!(!w.p("evil.rom").exists() && !w.p("roms/evil.rom").exists());
    fails(
        w.build("roms", "lib2", &["--strict"]),
        1,
        &["bomb.zip", "--strict"],
    );

    // A member whose bytes do not match its CRC: the build stops naming the archive and
    // the member, and publishes nothing of it.
    let w2 = Workspace::new();
    let data = r.bytes(3000);
    write_zip(&w2.p("roms/arcade/rot.zip"), &[("a.rom", &data)], false);
    let mut z = fs::read(w2.p("roms/arcade/rot.zip")).unwrap();
    let at = z.windows(16).position(|win| win == &data[..16]).unwrap();
    z[at + 100] ^= 0xFF;
    fs::write(w2.p("roms/arcade/rot.zip"), z).unwrap();
    fails(w2.build("roms", "lib", &[]), 1, &["rot.zip", "a.rom"]);
    assert!(!w2.p("lib/games/rot.manifest").exists());
}

#[test]
fn arcade_sets_install_as_identical_zips_whose_members_match_the_dat() {
    let w = Workspace::new();
    let mut r = Rng::new(301);
    let (cpu, gfx, snd) = (r.bytes(90_000), r.bytes(60_000), r.bytes(4_000));
    let i = w.p("roms");
    write_zip(
        &i.join("mame/pacman.zip"),
        &[
            ("pacman.6e", &cpu),
            ("Pacman.5E", &gfx),
            ("82s123.7f", &snd),
        ],
        true,
    );
    write_7z(&i.join("mame/galaga.7z"), &[("gg1-1.3p", &r.bytes(4_096))]);
    write_7z(
        &i.join("gb/Pocket Set (World).7z"),
        &[("b.gb", &r.bytes(9_000)), ("docs/readme.txt", b"hi")],
    );
    ok(w.build("roms", "lib", &[]));
    let key = w.s("k.pub");
    let install = |bin: &dyn Fn(&[&str]) -> std::process::Output, game: &str, card: &str| {
        ok(bin(&[
            "install",
            "-g",
            game,
            "-r",
            &w.s("lib"),
            "--install-dir",
            &w.s(card),
            "--layout",
            "knulli",
            "--trusted-key",
            &key,
        ]))
    };
    let out = install(&device, "pacman", "a");
    assert!(out.contains("a/mame/pacman.zip"), "{out}");
    install(&romlib, "pacman", "b");
    install(&device, "galaga", "a");
    // Two installs, the device's and the host's: the same bytes.
    let zip_a = fs::read(w.p("a/mame/pacman.zip")).unwrap();
    assert_eq!(zip_a, fs::read(w.p("b/mame/pacman.zip")).unwrap());
    assert!(
        w.p("a/mame/galaga.zip").is_file(),
        "a 7z set installs as a zip"
    );
    assert!(!w.p("a/mame/pacman").exists());
    // A zip reader finds the members, TorrentZip's order (case ignored), stored, with the
    // CRC-32 a DAT gives for each.
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(&zip_a)).unwrap();
    let mut names = Vec::new();
    for k in 0..z.len() {
        let mut m = z.by_index(k).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut m, &mut data).unwrap();
        assert_eq!(m.compression(), zip::CompressionMethod::Stored);
        let name = m.name().unwrap().to_string();
        assert_eq!(m.crc32(), DatHashes::of(&data).crc32, "{name}");
        names.push((name, data));
    }
    assert_eq!(
        names,
        [
            ("82s123.7f".to_string(), snd.clone()),
            ("Pacman.5E".to_string(), gfx.clone()),
            ("pacman.6e".to_string(), cpu.clone())
        ]
    );
    let dat = format!(
        "game (\n\tname \"pacman\"\n{}{}{})\n",
        rom("pacman.6e", &cpu),
        rom("Pacman.5E", &gfx),
        rom("82s123.7f", &snd)
    );
    fs::write(w.p("arcade.dat"), dat).unwrap();
    ok(romlib(&[
        "verify",
        "-r",
        &w.s("lib"),
        "--dat",
        &w.s("arcade.dat"),
    ]));
    // A game of several files with a folder inside is not an arcade set: a folder.
    install(&device, "Pocket Set (World)", "a");
    assert!(w.p("a/gb/Pocket Set (World)/docs/readme.txt").is_file());

    // The installed archive is checked byte for byte against what the manifest makes.
    let card = w.s("a");
    let installed = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--install-dir", &card, "--layout", "knulli"]);
        if matches!(args[0], "verify" | "repair") {
            a.extend(["--trusted-key", &key]);
        }
        device(&a)
    };
    ok(installed(&["verify", "--installed", "--all"]));
    let mut bad = zip_a.clone();
    let at = bad.len() / 2;
    bad[at] ^= 1;
    fs::write(w.p("a/mame/pacman.zip"), &bad).unwrap();
    let out = installed(&["verify", "--installed", "-g", "pacman"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("1 damaged"), "{said}");
    fails(
        installed(&["repair", "-g", "pacman", "-r", &w.s("lib")]),
        1,
        &["installed as an archive", "install it again"],
    );
    install(&device, "pacman", "a");
    assert_eq!(fs::read(w.p("a/mame/pacman.zip")).unwrap(), zip_a);
    let list = ok(installed(&["list-games"]));
    assert!(list.contains("pacman") && list.contains("galaga"), "{list}");
    ok(installed(&["uninstall", "-g", "pacman"]));
    assert!(!w.p("a/mame/pacman.zip").exists());
    assert!(w.p("a/mame/galaga.zip").is_file());
}
