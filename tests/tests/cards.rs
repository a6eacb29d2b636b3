//! Installing onto the file systems handheld SD cards use: real FAT32 and exFAT images
//! (Debian's mkfs.vfat and mkfs.exfat), mounted through FUSE (fusefat; exfat-fuse on a
//! loop device), because the kernels these tests run on lack the vfat and exfat drivers.
//! `romlib-device install` learns what the card can hold before writing: names FAT and
//! exFAT cannot store and too little room are refused in one line, nothing written; games
//! install byte-identical, reinstall and uninstall (on exFAT only: fusefat, the one FAT
//! driver for FUSE, loses a renamed folder's contents, so a complete install on FAT32
//! cannot be checked through it). The FAT32 4 GiB limit has a unit test
//! (`install::target_fs`), since building a 4 GiB game here would take most of a minute.

use romlib_tests::*;
use std::path::Path;

fn install(w: &Workspace, lib: &str, game: &str, dir: &Path) -> std::process::Output {
    device(&[
        "install",
        "-g",
        game,
        "-r",
        &w.s(lib),
        "--install-dir",
        &dir.to_string_lossy(),
        "--trusted-key",
        &w.s("k.pub"),
    ])
}

/// Names left in `dir` (none may be left by a refused install).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn games_install_onto_fat32_and_exfat_cards_and_what_cannot_fit_is_refused_first() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 41);
    // A game whose names a card cannot store (built with --allow-non-fat-names).
    write(&w.p("odd"), "odd/what?.txt", b"question");
    write(&w.p("odd"), "odd/fine.txt", b"fine");
    ok(w.build("in", "lib", &[]));
    ok(w.build("odd", "lib", &["--allow-non-fat-names"]));
    // On an ordinary Linux file system the odd names install.
    ok(install(&w, "lib", "odd", &w.p("linux")));
    for kind in ["fat32", "exfat"] {
        let Some(c) = card(&w, kind, 40, kind) else {
            return;
        };
        let dir = c.dir.join("Roms");
        std::fs::create_dir_all(&dir).unwrap();
        // Names the card cannot store: refused before writing, listing them.
        let err = fails(
            install(&w, "lib", "odd", &dir),
            1,
            &[
                "file system cannot hold the game",
                "what?.txt",
                "cannot be stored here",
            ],
        );
        assert!(!err.contains("fine.txt"), "{err}");
        assert!(names(&dir).is_empty(), "{kind}: nothing written");
        if kind == "fat32" {
            continue;
        }
        // A game installs byte-identical, reinstalls and uninstalls.
        ok(install(&w, "lib", "alpha", &dir));
        assert_same_tree(&w.p("in/alpha"), &dir.join("alpha"));
        ok(install(&w, "lib", "alpha", &dir));
        assert_same_tree(&w.p("in/alpha"), &dir.join("alpha"));
        ok(device(&[
            "uninstall",
            "-t",
            "alpha",
            "--install-dir",
            &dir.to_string_lossy(),
        ]));
        // Too little room: the card filled to within 500 KiB, then a 1.2 MB game.
        let free = nix::sys::statvfs::statvfs(&c.dir).unwrap();
        let room = free.blocks_available() as u64 * free.fragment_size() as u64;
        std::fs::write(
            c.dir.join("filler.bin"),
            vec![7u8; (room - 500 * 1024) as usize],
        )
        .unwrap();
        fails(
            install(&w, "lib", "alpha", &dir),
            1,
            &[
                "Roms: the game needs 1.1 MiB",
                "KiB free; nothing was written",
            ],
        );
        assert!(names(&dir).is_empty(), "{kind}: nothing written");
        // With room again it installs.
        std::fs::remove_file(c.dir.join("filler.bin")).unwrap();
        ok(install(&w, "lib", "beta", &dir));
        assert_same_tree(&w.p("in/beta"), &dir.join("beta"));
    }
}
