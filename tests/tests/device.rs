//! End-to-end tests of `romlib-device`: trust, verification, atomic install and refusal of
//! every kind of bad input. Each refusal checks the message, exit code 1, that no partial
//! game is visible and that a previously installed version is intact.

use romlib_format::index::ChunkEntry;
use romlib_format::manifest::{ChunkRef, CHUNK_RECORD_LEN};
use romlib_proto::Manifest;
use romlib_tests::*;
use std::fs;
use std::path::Path;

struct Fixture {
    w: Workspace,
    /// Every manifest as built, so tests can re-sign edits of the original.
    originals: Vec<(String, Vec<u8>)>,
}

impl Fixture {
    /// A library of the sample games, with `alpha` installed.
    fn new(seed: u64) -> Self {
        let w = Workspace::new();
        sample_input(&w.p("in"), seed);
        ok(w.build("in", "lib", &[]));
        let originals = snapshot(&w.p("lib/games"));
        let f = Fixture { w, originals };
        ok(f.install("alpha"));
        assert_same_tree(&f.w.p("in/alpha"), &f.w.p("inst/alpha"));
        f
    }

    fn install(&self, game: &str) -> std::process::Output {
        let w = &self.w;
        device(&[
            "install",
            "-g",
            game,
            "-r",
            &w.s("lib"),
            "--install-dir",
            &w.s("inst"),
            "--trusted-key",
            &w.s("k.pub"),
        ])
    }

    /// The refusal checks shared by every bad-input case.
    fn refused(&self, game: &str, needles: &[&str]) {
        fails(self.install(game), 1, needles);
        let visible: Vec<String> = fs::read_dir(self.w.p("inst"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            visible,
            vec!["alpha".to_string()],
            "only the earlier game may be visible"
        );
        assert_same_tree(&self.w.p("in/alpha"), &self.w.p("inst/alpha"));
    }

    fn entries(&self) -> Vec<([u8; 32], ChunkEntry)> {
        romlib_host::library::runs::open_library(&self.w.p("lib"))
            .unwrap()
            .all_chunks()
            .unwrap()
    }

    /// Points every locator's entries for chunk `hash` at `e` (a tampered locator).
    fn set_entry(&self, hash: &[u8; 32], e: &ChunkEntry) {
        let located = romlib_format::portable::LocatorEntry::from_index(e).unwrap();
        for g in ["alpha", "beta"] {
            edit_locator(&self.w.p("lib"), g, |l| {
                for (h, x) in l.entries.iter_mut() {
                    if h == hash {
                        *x = located;
                    }
                }
                if let Some(x) = l.bases.get_mut(hash) {
                    *x = located;
                }
            });
        }
    }

    /// The chunk table of a game's manifest.
    fn table(&self, game: &str) -> Vec<ChunkRef> {
        let m = romlib_device::ManifestFile::open(&self.w.p(&format!("lib/games/{game}.manifest")))
            .unwrap();
        let mut t = m.unverified_chunks().unwrap();
        let mut v = Vec::new();
        while let Some(c) = t.next_chunk().unwrap() {
            v.push(c);
        }
        v
    }

    /// Re-signs `game`'s manifest after `edit` changed its body and table.
    fn resign(&self, game: &str, key: &str, edit: impl FnOnce(&mut Manifest, &mut Vec<u8>)) {
        let path = self.w.p(&format!("lib/games/{game}.manifest"));
        let name = format!("{game}.manifest");
        let orig = &self.originals.iter().find(|(n, _)| *n == name).unwrap().1;
        fs::write(&path, orig).unwrap();
        let m = romlib_device::ManifestFile::open(&path).unwrap();
        let mut body = m.unverified_body().clone();
        let mut table: Vec<u8> = self.table(game).iter().flat_map(|c| c.encode()).collect();
        edit(&mut body, &mut table);
        let sk = romlib_host::keys::load_signing_key(&self.w.p(key)).unwrap();
        fs::write(
            &path,
            romlib_host::library::manifest_writer::encode_signed(body, &table, &sk),
        )
        .unwrap();
        // The locator follows, as a publisher's build would write it: written for the new
        // table (same entries).
        let loc_name = format!("{game}.locator");
        let loc = &self
            .originals
            .iter()
            .find(|(n, _)| *n == loc_name)
            .unwrap()
            .1;
        let mut h = romlib_format::portable::LocatorHeader::decode(loc).unwrap();
        h.table_blake3 = *blake3::hash(&table).as_bytes();
        let mut out = loc.clone();
        let mut hb = [0; romlib_format::portable::LOCATOR_HEADER_V2_LEN];
        let enc = h.encode(&mut hb);
        out[..enc.len()].copy_from_slice(enc);
        fs::write(self.w.p(&format!("lib/games/{loc_name}")), out).unwrap();
    }
}

#[test]
fn install_verify_reinstall_uninstall() {
    let f = Fixture::new(21);
    let w = &f.w;
    let out = ok(device(&[
        "verify",
        "-g",
        "beta",
        "-r",
        &w.s("lib"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert!(out.contains("beta: OK, 2 files"), "{out}");
    ok(f.install("beta"));
    assert_same_tree(&w.p("in/beta"), &w.p("inst/beta"));
    // By manifest path, and again over itself.
    ok(f.install(&w.s("lib/games/beta.manifest")));
    assert_same_tree(&w.p("in/beta"), &w.p("inst/beta"));
    let list = ok(device(&[
        "list-games",
        "-r",
        &w.s("lib"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert!(list.contains("beta\tbeta\t450000 bytes\ttrusted"), "{list}");
    ok(device(&[
        "uninstall",
        "-t",
        "beta",
        "--install-dir",
        &w.s("inst"),
    ]));
    assert!(!w.p("inst/beta").exists());
    assert!(!w.p("inst/.romlib-staging").exists());
    fails(
        device(&["uninstall", "-t", "beta", "--install-dir", &w.s("inst")]),
        1,
        &["no such installed game"],
    );
    // A folder romlib did not install is never removed or replaced.
    write(&w.p("inst"), "mine/save.dat", b"precious");
    fails(
        device(&["uninstall", "-t", "mine", "--install-dir", &w.s("inst")]),
        1,
        &["not installed by romlib"],
    );
    fails(
        device(&["uninstall", "-t", "../in", "--install-dir", &w.s("inst")]),
        1,
        &["unsafe"],
    );
    assert_eq!(fs::read(w.p("inst/mine/save.dat")).unwrap(), b"precious");
    fs::rename(w.p("inst/mine"), w.p("inst/beta")).unwrap();
    fails(f.install("beta"), 1, &["not installed by romlib"]);
    assert_eq!(fs::read(w.p("inst/beta/save.dat")).unwrap(), b"precious");
}

#[test]
fn upgrade_replaces_the_old_version() {
    let f = Fixture::new(22);
    let w = &f.w;
    let mut r = Rng::new(77);
    write(&w.p("in"), "alpha/game.bin", &r.bytes(500_000));
    fs::remove_file(w.p("in/alpha/shared.dat")).unwrap();
    ok(w.build("in", "lib", &[]));
    ok(f.install("alpha"));
    assert_same_tree(&w.p("in/alpha"), &w.p("inst/alpha"));
}

#[test]
fn the_users_files_survive_an_upgrade_and_an_uninstall() {
    // alpha is installed (Fixture); the player adds saves, a screenshot folder and a file
    // named like one the next version ships.
    let f = Fixture::new(26);
    let w = &f.w;
    write(&w.p("inst"), "alpha/saves/slot1.srm", b"slot 1");
    write(&w.p("inst"), "alpha/data/my-notes.txt", b"notes");
    write(&w.p("inst"), "alpha/shots/1.png", b"png");
    write(&w.p("inst"), "alpha/manual.pdf", b"my own manual");
    // The next version drops shared.dat and ships a manual and a saves folder of its own.
    let mut r = Rng::new(78);
    fs::remove_file(w.p("in/alpha/shared.dat")).unwrap();
    write(&w.p("in"), "alpha/manual.pdf", &r.bytes(20_000));
    write(&w.p("in"), "alpha/saves/README.txt", b"saves go here");
    ok(w.build("in", "lib", &[]));
    let out = ok(f.install("alpha"));
    assert!(out.contains("kept 4 items the game does not own"), "{out}");
    let user = [
        ("data/my-notes.txt", &b"notes"[..]),
        ("saves/slot1.srm", b"slot 1"),
        ("shots/1.png", b"png"),
        ("manual.pdf.kept", b"my own manual"),
    ];
    let game: Vec<_> = snapshot(&w.p("inst/alpha"))
        .into_iter()
        .filter(|(n, _)| n != ".romlib-installed" && !user.iter().any(|(u, _)| u == n))
        .collect();
    assert_eq!(game, snapshot(&w.p("in/alpha")), "the new version, whole");
    for (rel, bytes) in user {
        assert_eq!(
            fs::read(w.p("inst/alpha").join(rel)).unwrap(),
            bytes,
            "{rel}"
        );
    }
    assert!(
        !w.p("inst/alpha/shared.dat").exists(),
        "the old version's file stays"
    );
    // Uninstall leaves exactly the player's files, with the note; an install takes the
    // folder back.
    let out = ok(device(&[
        "uninstall",
        "-t",
        "alpha",
        "--install-dir",
        &w.s("inst"),
    ]));
    assert!(out.contains("left in"), "{out}");
    let left: Vec<String> = snapshot(&w.p("inst/alpha"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        left,
        [
            ".romlib-kept",
            "data/my-notes.txt",
            "manual.pdf.kept",
            "saves/slot1.srm",
            "shots/1.png"
        ]
    );
    ok(f.install("alpha"));
    assert_eq!(
        fs::read(w.p("inst/alpha/saves/slot1.srm")).unwrap(),
        b"slot 1"
    );
    assert!(!w.p("inst/alpha/.romlib-kept").exists());
    assert!(w.p("inst/alpha/.romlib-installed").exists());
}

#[test]
fn untrusted_unsigned_and_missing() {
    let f = Fixture::new(23);
    let w = &f.w;
    ok(romlib(&[
        "keygen",
        "--secret-key",
        &w.s("other.sec"),
        "--public-key",
        &w.s("other.pub"),
    ]));
    f.resign("beta", "other.sec", |_, _| {});
    f.refused("beta", &["beta.manifest", "not in the trust store"]);
    // No trust store at all.
    fails(
        device(&[
            "install",
            "-g",
            "beta",
            "-r",
            &w.s("lib"),
            "--install-dir",
            &w.s("inst"),
            "--trusted-key",
            &w.s("none.pub"),
        ]),
        1,
        &["none.pub"],
    );
    // An unsigned manifest: zeroed signature block.
    let path = w.p("lib/games/alpha-v2.manifest");
    let mut b = fs::read(&path).unwrap();
    let m = romlib_device::ManifestFile::open(&path).unwrap();
    let sig_at = 16 + m.unverified_body().clone().encode_len();
    b[sig_at..sig_at + 96].fill(0);
    fs::write(&path, b).unwrap();
    f.refused("alpha-v2", &["alpha-v2.manifest", "signature check failed"]);
    f.refused("nosuch", &["no such game"]);
    // Listing shows every game, marks the damaged one, and fails overall.
    let b = fs::read(&path).unwrap();
    fs::write(&path, &b[..b.len() / 2]).unwrap();
    let out = device(&[
        "list-games",
        "-r",
        &w.s("lib"),
        "--trusted-key",
        &w.s("k.pub"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("alpha-v2\t-\tDAMAGED")
            && text.contains("alpha\talpha\t1200000 bytes\ttrusted"),
        "{text}"
    );
    fails(device(&["install", "-g", "x", "-r", &w.s("lib")]), 2, &[]);
}

trait EncodeLen {
    fn encode_len(&self) -> usize;
}

impl EncodeLen for Manifest {
    fn encode_len(&self) -> usize {
        prost::Message::encoded_len(self)
    }
}

#[test]
fn every_flipped_manifest_byte_is_caught() {
    let f = Fixture::new(24);
    let w = &f.w;
    let path = w.p("lib/games/beta.manifest");
    let good = fs::read(&path).unwrap();
    let trust = romlib_device::TrustStore::from_files(&[w.p("k.pub")]).unwrap();
    let scratch = w.p("flip.manifest");
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x01;
        fs::write(&scratch, &b).unwrap();
        let caught =
            match romlib_device::ManifestFile::open(&scratch).and_then(|m| m.verify(&trust)) {
                Err(_) => true,
                Ok(v) => {
                    let mut t = v.chunks().unwrap();
                    loop {
                        match t.next_chunk() {
                            Ok(Some(_)) => continue,
                            Ok(None) => break t.finish().is_err(),
                            Err(_) => break true,
                        }
                    }
                }
            };
        assert!(caught, "flipping byte {i} of the manifest went unnoticed");
    }
    // And through the binary, in the header and the body.
    for at in [3usize, 40] {
        let mut b = good.clone();
        b[at] ^= 0x01;
        fs::write(&path, &b).unwrap();
        f.refused("beta", &["beta.manifest"]);
    }
    // A flipped chunk hash in the table: the locator leads to the signed chunk's record,
    // which is not the one the altered table names.
    for at in [good.len() - 150, good.len() - 5] {
        let mut b = good.clone();
        b[at] ^= 0x01;
        fs::write(&path, &b).unwrap();
        f.refused("beta", &["another chunk", "altered chunk table"]);
    }
}

#[test]
fn hostile_paths_are_refused_even_when_signed() {
    let f = Fixture::new(25);
    let cases: &[(&str, &str)] = &[
        ("../escape.bin", "'..'"),
        ("/etc/evil", "absolute"),
        ("a//b", "empty component"),
        ("./a", "'.' component"),
        ("a\\b", "backslash"),
        ("a\0b", "NUL"),
    ];
    for (bad, needle) in cases {
        f.resign("beta", "k.sec", |m, _| m.files[0].path = bad.to_string());
        f.refused("beta", &["beta.manifest", needle]);
    }
    // Duplicates and case-insensitive collisions.
    f.resign("beta", "k.sec", |m, _| {
        m.files[1].path = m.files[0].path.clone()
    });
    f.refused("beta", &["collide"]);
    f.resign("beta", "k.sec", |m, _| {
        m.files[1].path = m.files[0].path.to_uppercase()
    });
    f.refused("beta", &["collide"]);
    f.resign("beta", "k.sec", |m, _| {
        m.files[1].path = format!("{}/x", m.files[0].path)
    });
    f.refused("beta", &["both a file and a directory"]);
    f.resign("beta", "k.sec", |m, _| m.title_id = "../beta".into());
    f.refused("beta", &["beta.manifest"]);
    assert!(!f.w.p("escape.bin").exists());
}

#[test]
fn table_lengths_beyond_the_limits() {
    let f = Fixture::new(26);
    f.resign("beta", "k.sec", |_, t| {
        let at = CHUNK_RECORD_LEN + 32;
        t[at..at + 4].copy_from_slice(&(romlib_format::limits::MAX_CHUNK_LEN + 1).to_le_bytes());
    });
    f.refused("beta", &["MAX_CHUNK_LEN"]);
    // A body claiming more chunks than the format allows (signed as is).
    let path = f.w.p("lib/games/beta.manifest");
    f.resign("beta", "k.sec", |_, _| {});
    let m = romlib_device::ManifestFile::open(&path).unwrap();
    let mut body = m.unverified_body().clone();
    body.chunk_count = romlib_format::limits::MAX_GAME_CHUNKS + 1;
    let table: Vec<u8> = f.table("beta").iter().flat_map(|c| c.encode()).collect();
    let sk = romlib_host::keys::load_signing_key(&f.w.p("k.sec")).unwrap();
    fs::write(
        &path,
        romlib_host::library::manifest_writer::sign_as_is(&body, &table, &sk),
    )
    .unwrap();
    f.refused("beta", &["MAX_GAME_CHUNKS"]);
}

/// The pack record of beta's first chunk.
fn first_record(f: &Fixture, game: &str) -> ([u8; 32], ChunkEntry) {
    let c = f.table(game)[0];
    let e = f
        .entries()
        .into_iter()
        .find(|(h, _)| *h == c.hash)
        .unwrap()
        .1;
    (c.hash, e)
}

#[test]
fn corrupt_truncated_and_missing_packs() {
    let f = Fixture::new(27);
    let pack = f.w.p("lib/packs/pack-0001.pkg");
    let good = fs::read(&pack).unwrap();
    // A flipped byte in a payload.
    let (_, e) = first_record(&f, "beta");
    flip(&pack, e.offset + 42 + e.clen as u64 / 2);
    f.refused("beta", &["pack-0001.pkg", "chunk"]);
    // A record length beyond the limits.
    fs::write(&pack, &good).unwrap();
    let mut b = good.clone();
    let at = e.offset as usize + 32;
    b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&pack, &b).unwrap();
    f.refused("beta", &["pack-0001.pkg", "MAX_CHUNK_LEN"]);
    // Truncated.
    fs::write(&pack, &good[..good.len() / 3]).unwrap();
    f.refused("beta", &["pack-0001.pkg"]);
    // Missing.
    fs::remove_file(&pack).unwrap();
    f.refused("beta", &["pack-0001.pkg", "no such pack"]);
    fs::write(&pack, &good).unwrap();
    ok(f.install("beta"));
}

#[test]
fn stale_locator_entry_is_caught() {
    let f = Fixture::new(28);
    let (h, e) = first_record(&f, "beta");
    f.set_entry(
        &h,
        &ChunkEntry {
            offset: e.offset + 1,
            ..e
        },
    );
    f.refused("beta", &["pack-0001.pkg"]);
    // Pointing at another real record.
    let other = f
        .entries()
        .into_iter()
        .find(|(x, o)| *x != h && o.offset != e.offset)
        .unwrap()
        .1;
    f.set_entry(
        &h,
        &ChunkEntry {
            offset: other.offset,
            ..e
        },
    );
    f.refused("beta", &["pack-0001.pkg"]);
    f.set_entry(&h, &ChunkEntry { pack_id: 9, ..e });
    f.refused("beta", &["pack-0009.pkg", "no such pack"]);
}

#[test]
fn zstd_frame_longer_than_declared() {
    let f = Fixture::new(29);
    let (h, e) = first_record(&f, "beta");
    let c = f.table("beta")[0];
    // A frame that decodes to 100 bytes more than the chunk, in a pack of its own.
    let plain = vec![b'a'; c.len as usize + 100];
    let mut frame = vec![0u8; zstd_safe::compress_bound(plain.len())];
    let n = zstd_safe::compress(&mut frame[..], &plain, 3).unwrap();
    frame.truncate(n);
    let rec = romlib_format::pack::RecordHeader {
        hash: h,
        ulen: c.len,
        clen: n as u32,
        method: romlib_format::pack::Method::Zstd,
    };
    let mut pack = romlib_format::pack::PackHeader {
        pack_id: 9,
        dict_id: 0,
    }
    .encode()
    .to_vec();
    pack.extend_from_slice(&rec.encode());
    pack.extend_from_slice(&frame);
    let body_len = pack.len() as u64 - 32;
    let footer = romlib_format::pack::PackFooter {
        record_count: 1,
        records_len: body_len,
        checksum: *blake3::hash(&pack).as_bytes(),
    };
    pack.extend_from_slice(&footer.encode());
    fs::write(f.w.p("lib/packs/pack-0009.pkg"), &pack).unwrap();
    f.set_entry(
        &h,
        &ChunkEntry {
            pack_id: 9,
            offset: 32,
            clen: n as u32,
            method: romlib_format::pack::Method::Zstd,
            ..e
        },
    );
    f.refused("beta", &["pack-0009.pkg", "zstd"]);
}

#[test]
fn unwritable_or_full_install_dir() {
    let f = Fixture::new(30);
    let w = &f.w;
    fs::write(w.p("afile"), b"x").unwrap();
    let out = device(&[
        "install",
        "-g",
        "beta",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("afile/inst"),
        "--trusted-key",
        &w.s("k.pub"),
    ]);
    fails(out, 1, &["afile/inst"]);
    if let Some(_ro) = mount_tmpfs(&w.p("ro"), "1m", true) {
        let out = device(&[
            "install",
            "-g",
            "beta",
            "-r",
            &w.s("lib"),
            "--install-dir",
            &w.s("ro"),
            "--trusted-key",
            &w.s("k.pub"),
        ]);
        fails(out, 1, &["Read-only file system"]);
    }
    if let Some(_full) = mount_tmpfs(&w.p("full"), "600k", false) {
        let inst = w.s("full");
        ok(device(&[
            "install",
            "-g",
            "beta",
            "-r",
            &w.s("lib"),
            "--install-dir",
            &inst,
            "--trusted-key",
            &w.s("k.pub"),
        ]));
        let out = device(&[
            "install",
            "-g",
            "alpha",
            "-r",
            &w.s("lib"),
            "--install-dir",
            &inst,
            "--trusted-key",
            &w.s("k.pub"),
        ]);
        // Refused before a byte is written, with what it needs.
        fails(
            out,
            1,
            &["the game needs 1.1 MiB", "KiB free", "nothing was written"],
        );
        let names: Vec<String> = fs::read_dir(w.p("full"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["beta".to_string()],
            "no partial game or staging may remain"
        );
        assert_same_tree(&w.p("in/beta"), &w.p("full/beta"));
    }
}

#[test]
fn library_on_a_read_only_mount() {
    let f = Fixture::new(31);
    let w = &f.w;
    fs::create_dir_all(w.p("rolib")).unwrap();
    if std::env::var_os("ROMLIB_NO_MOUNT").is_some() {
        return;
    }
    let st = std::process::Command::new("mount")
        .args(["--bind", "-o", "ro"])
        .arg(w.p("lib"))
        .arg(w.p("rolib"))
        .status()
        .unwrap();
    assert!(st.success());
    let _u = Unmount::new(&w.p("rolib"));
    let out = device(&[
        "install",
        "-g",
        "beta",
        "-r",
        &w.s("rolib"),
        "--install-dir",
        &w.s("inst"),
        "--trusted-key",
        &w.s("k.pub"),
    ]);
    ok(out);
    assert_same_tree(&w.p("in/beta"), &w.p("inst/beta"));
}

fn assert_absent_or(dir: &Path, expect: &[&Path]) {
    if !dir.exists() {
        return;
    }
    let got: Vec<_> = snapshot(dir)
        .into_iter()
        .filter(|(n, _)| n != ".romlib-installed")
        .collect();
    assert!(
        expect.iter().any(|e| snapshot(e) == got),
        "after a crash the installed game is neither version"
    );
}

#[test]
fn kill_during_install_leaves_old_or_new() {
    let w = Workspace::new();
    let mut r = Rng::new(40);
    // v1 and v2 of a 16 MiB game that share most chunks.
    let mut disc = r.text(12 << 20);
    disc.extend_from_slice(&r.bytes(4 << 20));
    write(&w.p("v1"), "big/disc.iso", &disc);
    disc[1 << 20..(1 << 20) + 4096].copy_from_slice(&r.bytes(4096));
    write(&w.p("v2"), "big/disc.iso", &disc);
    write(&w.p("v2"), "big/extra.bin", &r.bytes(300_000));
    ok(w.build("v1", "lib1", &[]));
    ok(w.build("v2", "lib2", &[]));
    let install = |lib: &str| {
        std::process::Command::new(bin("romlib-device"))
            .args([
                "install",
                "-g",
                "big",
                "-r",
                &w.s(lib),
                "--install-dir",
                &w.s("inst"),
                "--trusted-key",
                &w.s("k.pub"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let t0 = std::time::Instant::now();
    assert!(install("lib1").wait().unwrap().success());
    let full = t0.elapsed();
    let versions = [w.p("v1/big"), w.p("v2/big")];
    let mut killed = 0;
    let mut i = 0u64;
    while killed < 20 {
        i += 1;
        assert!(
            i < 100,
            "only {killed} installs could be killed mid-way in 100 tries"
        );
        let lib = if i.is_multiple_of(2) { "lib2" } else { "lib1" };
        let mut child = install(lib);
        let wait = full.mul_f64((Rng::new(i).next_u64() % 800) as f64 / 1000.0);
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        assert_absent_or(&w.p("inst/big"), &[&versions[0], &versions[1]]);
        // The next install completes and leaves no staging behind.
        assert!(install(lib).wait().unwrap().success());
        assert_same_tree(
            if lib == "lib2" {
                &versions[1]
            } else {
                &versions[0]
            },
            &w.p("inst/big"),
        );
        assert!(!w.p("inst/.romlib-staging").exists());
    }
}

/// Installs `game` with the process's address space capped at `mib` MiB (`ulimit -v`), so
/// an allocation sized by a hostile field fails the process (abort, not exit 1).
fn install_capped(f: &Fixture, game: &str, mib: u64) -> std::process::Output {
    let w = &f.w;
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {} && exec \"$0\" \"$@\"", mib * 1024))
        .arg(bin("romlib-device"))
        .args([
            "install",
            "-g",
            game,
            "-r",
            &w.s("lib"),
            "--install-dir",
            &w.s("inst"),
            "--trusted-key",
            &w.s("k.pub"),
        ])
        .output()
        .unwrap()
}

#[test]
fn hostile_sizes_are_refused_before_allocating() {
    // 256 MiB of address space: far below what any of these fields claims, and enough
    // for a real install of the game (checked first).
    const CAP_MIB: u64 = 256;
    let f = Fixture::new(31);
    ok(install_capped(&f, "beta", CAP_MIB));
    let one_line = |out: std::process::Output, needles: &[&str]| {
        let err = fails(out, 1, needles);
        assert!(
            !err.contains("panicked") && !err.contains("memory"),
            "{err}"
        );
    };
    // A signed manifest that claims 2^32 chunks (its table holds 13).
    {
        let path = f.w.p("lib/games/beta.manifest");
        let mut body = romlib_device::ManifestFile::open(&path)
            .unwrap()
            .unverified_body()
            .clone();
        body.chunk_count = 1 << 32;
        let table: Vec<u8> = f.table("beta").iter().flat_map(|c| c.encode()).collect();
        let sk = romlib_host::keys::load_signing_key(&f.w.p("k.sec")).unwrap();
        let bytes = romlib_host::library::manifest_writer::sign_as_is(&body, &table, &sk);
        fs::write(&path, bytes).unwrap();
    }
    one_line(install_capped(&f, "beta", CAP_MIB), &["beta.manifest"]);
    // A signed manifest whose first file claims 1 TiB.
    f.resign("beta", "k.sec", |m, _| m.files[0].size = 1 << 40);
    one_line(install_capped(&f, "beta", CAP_MIB), &["beta.manifest"]);
    f.resign("beta", "k.sec", |_, _| {});
    ok(install_capped(&f, "beta", CAP_MIB));
    // A zstd frame that declares a 2 GiB window (window descriptor 0xA8: 2^31), in a pack
    // of its own: refused from its header, before a block is decoded.
    let (h, e) = first_record(&f, "beta");
    let c = f.table("beta")[0];
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8];
    let block = 1u32 | (1 << 1) | (c.len << 3); // last block, RLE: c.len times one byte
    frame.extend_from_slice(&block.to_le_bytes()[..3]);
    frame.push(b'a');
    let rec = romlib_format::pack::RecordHeader {
        hash: h,
        ulen: c.len,
        clen: frame.len() as u32,
        method: romlib_format::pack::Method::Zstd,
    };
    let mut pack = romlib_format::pack::PackHeader {
        pack_id: 9,
        dict_id: 0,
    }
    .encode()
    .to_vec();
    pack.extend_from_slice(&rec.encode());
    pack.extend_from_slice(&frame);
    let footer = romlib_format::pack::PackFooter {
        record_count: 1,
        records_len: pack.len() as u64 - 32,
        checksum: *blake3::hash(&pack).as_bytes(),
    };
    pack.extend_from_slice(&footer.encode());
    fs::write(f.w.p("lib/packs/pack-0009.pkg"), &pack).unwrap();
    f.set_entry(
        &h,
        &ChunkEntry {
            pack_id: 9,
            offset: 32,
            clen: frame.len() as u32,
            method: romlib_format::pack::Method::Zstd,
            ..e
        },
    );
    one_line(
        install_capped(&f, "beta", CAP_MIB),
        &["pack-0009.pkg", "window"],
    );
}
