//! Read errors (EIO), injected by `faultfs` (this crate's fault-injecting FUSE file system,
//! `src/bin/faultfs.rs`), as on an SD card with a bad sector or a failing disk: a build's
//! source file or sidecar; a library's pack (inside a needed record, or a delta's base),
//! manifest, locator, index or dictionary, read by install, cat, verify, mount (a nested
//! FUSE mount over faultfs), export and `romlib serve`; a portable file read by import and
//! install; and the earlier pack and the index an incremental build reads back.
//!
//! Each case asserts a clear one-line error naming the file that failed (exit 1), an end
//! within bounded time, nothing half-visible (no game folder, no staging outside romlib's
//! hidden dot-folders, the library as it was), and that the next run without the fault
//! succeeds. A fault in the index costs an install nothing (no reader opens it). Each test
//! also checks that its fault was met (or, for the index, that no reader met it), so none
//! passes without testing anything.
//!
//! These mount FUSE file systems (CI runs as root); ROMLIB_NO_MOUNT=1 skips them.

use romlib_device::{Library, ManifestFile};
use romlib_format::index::ChunkEntry;
use romlib_format::pack::{Method, RECORD_HEADER_LEN};
use romlib_format::portable::{LOCATOR_ENTRY_LEN, LOCATOR_HEADER_V2_LEN};
use romlib_tests::*;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The longest any one command may take with a fault injected: a hang is a failure.
const LIMIT: Duration = Duration::from_secs(30);

/// Runs `cmd` to its end, killing it and failing the test if it takes longer than
/// [`LIMIT`].
fn run(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not end within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `romlib-device ARGS`, bounded in time.
fn dev(args: &[&str]) -> Output {
    let mut c = device_cmd();
    c.args(args);
    run(c)
}

/// `romlib ARGS`, bounded in time.
fn host(args: &[&str]) -> Output {
    let mut c = linux_host_cmd();
    c.args(args);
    run(c)
}

/// The names in `dir` that are not hidden (romlib keeps its staging in dot-folders, which
/// the next run cleans up).
fn visible(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every file below `root` outside hidden folders, with its bytes: what readers of a
/// library see.
fn visible_snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    snapshot(root)
        .into_iter()
        .filter(|(p, _)| !p.split('/').any(|c| c.starts_with('.')))
        .collect()
}

const GAME: &str = "alpha";
const OTHER: &str = "beta";

/// A library built in two runs: `in1` (alpha version 1, beta) into `lib`, alpha version 1
/// installed into `inst`, then `in2` (alpha version 2, whose new chunks go to a new pack,
/// and beta unchanged) built into `lib` unless the test wants to build it itself.
struct Fixture {
    w: Workspace,
}

impl Fixture {
    /// Everything up to the second build, which is left to [`Fixture::build2`].
    fn new(extra: &[&str]) -> Self {
        let w = Workspace::new();
        let mut r = Rng::new(15);
        let v1 = r.bytes(600_000);
        let v2 = r.bytes(700_000);
        let readme = r.text(60_000);
        let other = r.bytes(200_000);
        for (input, game_bin) in [("in1", &v1), ("in2", &v2)] {
            write(&w.p(input), "alpha/game.bin", game_bin);
            write(&w.p(input), "alpha/docs/readme.txt", &readme);
            write(&w.p(input), "beta/beta.rom", &other);
        }
        let mut args = vec!["--avg-chunk", "8192", "-q"];
        args.extend_from_slice(extra);
        ok(w.build("in1", "lib", &args));
        let f = Fixture { w };
        ok(f.install(&f.w.s("lib"), "inst", GAME));
        f
    }

    /// [`Fixture::new`] and the second build.
    fn built(extra: &[&str]) -> Self {
        let f = Self::new(extra);
        f.build2(&f.w.s("in2"), extra);
        f
    }

    /// The second build, from `input`.
    fn build2(&self, input: &str, extra: &[&str]) -> Output {
        let (lib, key) = (self.w.s("lib"), self.w.s("k.sec"));
        let mut args = vec![
            "build",
            "-i",
            input,
            "-o",
            &lib,
            "--signing-key",
            &key,
            "--avg-chunk",
            "8192",
            "-q",
        ];
        args.extend_from_slice(extra);
        host(&args)
    }

    /// `romlib-device install -g TITLE -r LIB --install-dir <dir>`, trusting the workspace
    /// key.
    fn install(&self, lib: &str, dir: &str, title: &str) -> Output {
        dev(&[
            "install",
            "-g",
            title,
            "-r",
            lib,
            "--install-dir",
            &self.w.s(dir),
            "--trusted-key",
            &self.w.s("k.pub"),
        ])
    }

    /// faultfs over the library, with `faults` (relative to the library).
    fn faulty_lib(&self, faults: &[&str]) -> Option<FaultFs> {
        FaultFs::mount(&self.w.p("lib"), &self.w.p("flib"), faults)
    }

    /// Where in the library each chunk of `title`'s file `path` is stored: (offset in the
    /// file, length, record), through the index.
    fn records(&self, title: &str, path: &str) -> Vec<(u64, u64, ChunkEntry)> {
        let m = ManifestFile::open(&self.w.p(&format!("lib/games/{title}.manifest"))).unwrap();
        let mut table = m.unverified_chunks().unwrap();
        let ix = romlib_host::library::runs::open_library(&self.w.p("lib")).unwrap();
        let mut out = Vec::new();
        for f in &m.unverified_body().files {
            let mut offset = 0;
            for _ in 0..f.chunk_count {
                let c = table.next_chunk().unwrap().unwrap();
                if f.path == path {
                    out.push((offset, c.len as u64, ix.get(&c.hash).unwrap().unwrap()));
                }
                offset += c.len as u64;
            }
        }
        out
    }

    /// The pack holding `e`, relative to the library (a faultfs pattern) and in full.
    fn pack(&self, e: &ChunkEntry) -> (String, String) {
        let full = Library::new(self.w.p("lib")).pack_path(e.pack_id);
        let rel = full.strip_prefix(self.w.p("lib")).unwrap();
        (
            rel.to_string_lossy().into_owned(),
            full.file_name().unwrap().to_string_lossy().into_owned(),
        )
    }

    /// A fault of one byte in the middle of the payload of `e`'s record.
    fn bad_byte(&self, e: &ChunkEntry) -> String {
        let at = e.offset + RECORD_HEADER_LEN as u64 + e.clen as u64 / 2;
        format!("{}@{at}..{}", self.pack(e).0, at + 1)
    }

    /// The middle chunk of alpha version 2's `game.bin`: (offset in the file, length,
    /// record), and a fault on its record.
    fn middle_chunk(&self) -> ((u64, u64, ChunkEntry), String) {
        let recs = self.records(GAME, "game.bin");
        let mid = recs[recs.len() / 2];
        // The new version's chunks are all new: they went to the second build's pack.
        assert!(recs.iter().all(|r| r.2.pack_id == mid.2.pack_id));
        let fault = self.bad_byte(&mid.2);
        (mid, fault)
    }
}

#[test]
fn build_with_a_source_file_failing_part_way_names_it_and_leaves_the_library_as_it_was() {
    let f = Fixture::new(&[]);
    // A third, new game, built after alpha's new version and beta are complete.
    write(&f.w.p("in2"), "gamma/disc.bin", &Rng::new(4).bytes(400_000));
    let before = visible_snapshot(&f.w.p("lib"));
    // The first file of the build, a metadata sidecar, and the last game's file.
    write(&f.w.p("in2"), "beta/romlib.toml", b"name = \"Beta\"\n");
    for fault in [
        "alpha/game.bin@300000",
        "beta/romlib.toml",
        "gamma/disc.bin@200000",
    ] {
        let Some(fs) = FaultFs::mount(&f.w.p("in2"), &f.w.p("fin"), &[fault]) else {
            return;
        };
        let file = fs.s(fault.split('@').next().unwrap());
        let err = fails(f.build2(&fs.s(""), &[]), 1, &[&file, "(os error 5)"]);
        assert!(fs.hits() > 0, "{fault}: the fault was never met");
        fs.unmount();

        // Readers see the library exactly as it was published: every file outside the
        // builder's hidden folders, byte for byte; it verifies and its games install.
        assert!(
            visible_snapshot(&f.w.p("lib")) == before,
            "{fault}: library changed ({err})"
        );
    }
    ok(host(&["verify", "-r", &f.w.s("lib")]));
    ok(f.install(&f.w.s("lib"), "inst2", OTHER));
    assert_same_tree(&f.w.p("in1/beta"), &f.w.p("inst2/beta"));

    // The next run, without the fault, completes, and the new versions install.
    ok(f.build2(&f.w.s("in2"), &[]));
    ok(host(&["verify", "-r", &f.w.s("lib")]));
    for g in [GAME, "gamma"] {
        ok(f.install(&f.w.s("lib"), "inst", g));
        assert_same_tree(&f.w.p(&format!("in2/{g}")), &f.w.p(&format!("inst/{g}")));
    }
}

#[test]
fn device_install_with_a_pack_failing_inside_a_needed_record_keeps_the_old_version() {
    let f = Fixture::built(&[]);
    let (_, fault) = f.middle_chunk();
    let pack_name = fault.split('@').next().unwrap().rsplit('/').next().unwrap();
    let Some(fs) = f.faulty_lib(&[&fault]) else {
        return;
    };
    // An upgrade over the installed version 1, and a fresh install.
    let err = fails(f.install(&fs.s(""), "inst", GAME), 1, &[pack_name]);
    assert!(err.contains("(os error 5)"), "{err}");
    assert_same_tree(&f.w.p("in1/alpha"), &f.w.p("inst/alpha"));
    assert_eq!(visible(&f.w.p("inst")), [GAME]);
    fails(f.install(&fs.s(""), "fresh", GAME), 1, &[pack_name]);
    let key = f.w.s("k.pub");
    let verify = ["verify", "-g", GAME, "-r", &fs.s(""), "--trusted-key", &key];
    fails(dev(&verify), 1, &[pack_name, "(os error 5)"]);
    assert_eq!(visible(&f.w.p("fresh")), Vec::<String>::new());
    // A game whose chunks lie elsewhere installs from the faulty library all the same.
    ok(f.install(&fs.s(""), "fresh", OTHER));
    assert_same_tree(&f.w.p("in2/beta"), &f.w.p("fresh/beta"));
    assert!(fs.hits() > 0, "the fault was never met");
    fs.unmount();

    // From the real library both complete, byte-identical.
    ok(f.install(&f.w.s("lib"), "inst", GAME));
    assert_same_tree(&f.w.p("in2/alpha"), &f.w.p("inst/alpha"));
    ok(f.install(&f.w.s("lib"), "fresh", GAME));
    assert_same_tree(&f.w.p("in2/alpha"), &f.w.p("fresh/alpha"));
    assert_eq!(visible(&f.w.p("fresh")), [GAME, OTHER]);
}

#[test]
fn cat_with_a_failing_pack_exits_1_naming_it_after_only_right_bytes() {
    let f = Fixture::built(&[]);
    let ((off, _, _), fault) = f.middle_chunk();
    let pack_name = fault.split('@').next().unwrap().rsplit('/').next().unwrap();
    let data = std::fs::read(f.w.p("in2/alpha/game.bin")).unwrap();
    let Some(fs) = f.faulty_lib(&[&fault]) else {
        return;
    };
    let lib = fs.s("");
    let key = f.w.s("k.pub");
    let outs = [
        dev(&[
            "cat",
            "-g",
            GAME,
            "-r",
            &lib,
            "--trusted-key",
            &key,
            "game.bin",
        ]),
        host(&["cat", "-g", GAME, "-r", &lib, "game.bin"]),
    ];
    for out in outs {
        // Whatever reached stdout before the failure is the start of the file, never a
        // byte of the bad chunk or beyond; the exit code says it is incomplete.
        let got = out.stdout.clone();
        assert!(got.len() as u64 <= off, "{} bytes written", got.len());
        assert!(got == data[..got.len()], "wrong bytes on stdout");
        let err = fails(out, 1, &[pack_name]);
        assert!(err.contains("(os error 5)"), "{err}");
    }
    // A range that does not touch the bad chunk reads fine.
    let out = dev(&[
        "cat",
        "-g",
        GAME,
        "-r",
        &lib,
        "--trusted-key",
        &key,
        "game.bin",
        "--length",
        "4096",
    ]);
    assert!(out.status.success());
    assert!(out.stdout == data[..4096]);
    assert!(fs.hits() > 0, "the fault was never met");
    fs.unmount();

    let c = device_cmd()
        .args([
            "cat",
            "-g",
            GAME,
            "-r",
            &f.w.s("lib"),
            "--trusted-key",
            &key,
        ])
        .arg("game.bin")
        .output()
        .unwrap();
    assert!(c.status.success());
    assert!(c.stdout == data, "cat from the real library differs");
}

/// A running `romlib-device mount`; ended (and unmounted) on drop if the test fails.
struct DeviceMount {
    child: Option<Child>,
    dir: std::path::PathBuf,
}

impl DeviceMount {
    fn spawn(lib: &str, dir: &Path, key: &str) -> Self {
        let child = device_cmd()
            .args(["mount", "-r", lib])
            .arg(dir)
            .args(["--trusted-key", key])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut m = DeviceMount {
            child: Some(child),
            dir: dir.to_path_buf(),
        };
        let start = Instant::now();
        while !is_mounted(dir) {
            if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("romlib-device mount exited with {st} before mounting");
            }
            assert!(start.elapsed() < LIMIT, "not mounted after {LIMIT:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    /// SIGTERM; asserts exit 0 within [`LIMIT`], unmounted; returns stderr.
    fn stop(mut self) -> String {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        let start = Instant::now();
        let st = loop {
            if let Some(st) = c.try_wait().unwrap() {
                break st;
            }
            assert!(start.elapsed() < LIMIT, "mount still running after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert_eq!(st.code(), Some(0), "mount exit status; stderr: {err}");
        assert!(!is_mounted(&self.dir), "still mounted after exit");
        err
    }
}

impl Drop for DeviceMount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.dir)
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn mount_of_a_faulty_library_fails_only_the_reads_of_the_bad_chunk() {
    let f = Fixture::built(&[]);
    let ((off, len, _), fault) = f.middle_chunk();
    let data = std::fs::read(f.w.p("in2/alpha/game.bin")).unwrap();
    let Some(fs) = f.faulty_lib(&[&fault]) else {
        return;
    };
    // Nested FUSE: the device's mount reads its library through faultfs's.
    let mnt = f.w.p("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let m = DeviceMount::spawn(&fs.s(""), &mnt, &f.w.s("k.pub"));
    let file = mnt.join(GAME).join("game.bin");

    let e = std::fs::read(&file).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(5), "EIO expected: {e}");
    let h = std::fs::File::open(&file).unwrap();
    let read_at = |at: u64, n: usize| {
        let mut b = vec![0u8; n];
        std::os::unix::fs::FileExt::read_exact_at(&h, &mut b, at).map(|()| b)
    };
    let e = read_at(off + len / 2, 10).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(5), "EIO expected: {e}");
    // Before and after the bad chunk, and the other files, read right.
    assert!(read_at(0, 4096).unwrap() == data[..4096]);
    // The mount reads through the page cache, in pages (or larger folios, naturally
    // aligned): a read after the chunk, in a 64 KiB block of its own.
    let after = (off + len).next_multiple_of(65536) as usize;
    assert!(after + 4096 <= data.len());
    assert!(read_at(after as u64, 4096).unwrap() == data[after..after + 4096]);
    drop(h);
    for (g, p) in [(GAME, "docs/readme.txt"), (OTHER, "beta.rom")] {
        let want = std::fs::read(f.w.p(&format!("in2/{g}/{p}"))).unwrap();
        assert!(
            std::fs::read(mnt.join(g).join(p)).unwrap() == want,
            "{g}/{p}"
        );
    }
    // The mount is still serving, and ends cleanly.
    assert!(is_mounted(&mnt));
    let err = m.stop();
    assert!(err.contains("(os error 5)"), "{err}");
    assert!(fs.hits() > 0, "the fault was never met");
    fs.unmount();
}

#[test]
fn a_failing_manifest_fails_its_game_only() {
    let f = Fixture::built(&[]);
    let Some(fs) = f.faulty_lib(&["games/alpha.manifest"]) else {
        return;
    };
    fails(f.install(&fs.s(""), "fresh", GAME), 1, &["alpha.manifest"]);
    assert_eq!(visible(&f.w.p("fresh")), Vec::<String>::new());
    fails(f.install(&fs.s(""), "inst", GAME), 1, &["alpha.manifest"]);
    assert_same_tree(&f.w.p("in1/alpha"), &f.w.p("inst/alpha"));
    let key = f.w.s("k.pub");
    fails(
        dev(&[
            "cat",
            "-g",
            GAME,
            "-r",
            &fs.s(""),
            "--trusted-key",
            &key,
            "game.bin",
        ]),
        1,
        &["alpha.manifest"],
    );
    // The other game is untouched by it; a mount leaves the failing game out, with a
    // warning naming its manifest, and shows the other.
    ok(f.install(&fs.s(""), "fresh", OTHER));
    let mnt = f.w.p("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let m = DeviceMount::spawn(&fs.s(""), &mnt, &key);
    assert_eq!(visible(&mnt), [OTHER]);
    let want = std::fs::read(f.w.p("in2/beta/beta.rom")).unwrap();
    assert!(std::fs::read(mnt.join(OTHER).join("beta.rom")).unwrap() == want);
    let err = m.stop();
    assert!(
        err.contains("not mounting game alpha") && err.contains("alpha.manifest"),
        "{err}"
    );
    assert!(fs.hits() > 0, "the fault was never met");
    fs.unmount();
    ok(f.install(&f.w.s("lib"), "fresh", GAME));
    assert_same_tree(&f.w.p("in2/alpha"), &f.w.p("fresh/alpha"));
}

#[test]
fn a_failing_index_costs_an_install_nothing_and_a_failing_locator_is_named() {
    let f = Fixture::built(&[]);
    let n = f.records(GAME, "game.bin").len() as u64;
    let data = std::fs::read(f.w.p("in2/alpha/game.bin")).unwrap();
    let key = f.w.s("k.pub");
    // The index unreadable: no reader opens it, so it is never even met.
    let Some(fs) = f.faulty_lib(&["index.db"]) else {
        return;
    };
    ok(f.install(&fs.s(""), "i0", GAME));
    assert_same_tree(&f.w.p("in2/alpha"), &f.w.p("i0/alpha"));
    let out = dev(&[
        "cat",
        "-g",
        GAME,
        "-r",
        &fs.s(""),
        "--trusted-key",
        &key,
        "game.bin",
    ]);
    assert!(out.status.success(), "cat failed");
    assert!(out.stdout == data, "cat gave other bytes");
    assert_eq!(fs.hits(), 0, "a reader read the index: {}", fs.log());
    fs.unmount();

    // The locator unreadable from its start, and from an entry in the middle on: one line
    // naming it, nothing visible.
    let mid = LOCATOR_HEADER_V2_LEN as u64 + n / 2 * LOCATOR_ENTRY_LEN as u64;
    let mid = format!("games/alpha.locator@{mid}");
    for (k, fault) in ["games/alpha.locator", mid.as_str()]
        .into_iter()
        .enumerate()
    {
        let Some(fs) = f.faulty_lib(&[fault]) else {
            return;
        };
        let dir = format!("l{k}");
        fails(
            f.install(&fs.s(""), &dir, GAME),
            1,
            &["alpha.locator", "(os error 5)"],
        );
        assert_eq!(visible(&f.w.p(&dir)), Vec::<String>::new(), "{fault}");
        assert!(fs.hits() > 0, "{fault}: the fault was never met");
        fs.unmount();
    }
}

/// `romlib verify -r LIB`'s PROBLEM lines (it reports on stdout, one line per problem),
/// asserting exit 1.
fn verify_problems(lib: &str) -> Vec<String> {
    let out = host(&["verify", "-r", lib]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{report}");
    report
        .lines()
        .filter(|l| l.starts_with("PROBLEM"))
        .map(str::to_string)
        .collect()
}

#[test]
fn verify_names_each_failing_file_once() {
    let f = Fixture::built(&[]);
    let (_, fault) = f.middle_chunk();
    let pack = fault.split('@').next().unwrap().to_string();
    let index_fault = "index.db@4096";
    for faults in [vec![index_fault], vec![&fault], vec![&fault, index_fault]] {
        let Some(fs) = f.faulty_lib(&faults) else {
            return;
        };
        // Each unreadable file is one problem, named; what could not be read in a pack is
        // not blamed on the index or the locators that point into it.
        let problems = verify_problems(&fs.s(""));
        assert_eq!(problems.len(), faults.len(), "{faults:?}: {problems:#?}");
        for fault in &faults {
            let file = fs.s(fault.split('@').next().unwrap());
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains(&file) && p.contains("(os error 5)")),
                "{faults:?}: {problems:#?}"
            );
        }
        assert!(fs.hits() > 0, "the fault was never met");
        fs.unmount();
    }
    assert!(pack.starts_with("packs/"));
    ok(host(&["verify", "-r", &f.w.s("lib")]));
}

#[test]
fn a_failing_dictionary_is_named() {
    let f = Fixture::new(&["-c", "3"]);
    ok(romlib(&[
        "train-dict",
        "-r",
        &f.w.s("lib"),
        "-o",
        &f.w.s("d.zdict"),
        "--size",
        "16384",
    ]));
    // Version 2's text compresses with the dictionary.
    write(
        &f.w.p("in2"),
        "gamma/script.txt",
        &Rng::new(3).text(300_000),
    );
    ok(f.build2(&f.w.s("in2"), &["-c", "3", "-d", &f.w.s("d.zdict")]));
    let dicts = snapshot(&f.w.p("lib/dicts"));
    assert_eq!(dicts.len(), 1);
    let dict = &dicts[0].0;
    let Some(fs) = f.faulty_lib(&[&format!("dicts/{dict}")]) else {
        return;
    };
    let err = fails(f.install(&fs.s(""), "fresh", "gamma"), 1, &[dict]);
    assert!(err.contains("(os error 5)"), "{err}");
    assert_eq!(visible(&f.w.p("fresh")), Vec::<String>::new());
    assert!(fs.hits() > 0, "the fault was never met");
    fs.unmount();
    ok(f.install(&f.w.s("lib"), "fresh", "gamma"));
    assert_same_tree(&f.w.p("in2/gamma"), &f.w.p("fresh/gamma"));
}

#[test]
fn export_and_import_with_read_errors_leave_nothing_behind() {
    let f = Fixture::built(&[]);
    let (_, fault) = f.middle_chunk();
    let pack = fault.split('@').next().unwrap().to_string();
    let out = f.w.s("alpha.romlib");

    // Export from a library whose pack fails: no file, not even a partial one.
    let Some(fs) = f.faulty_lib(&[&fault]) else {
        return;
    };
    fails(
        host(&["export", "-g", GAME, "-r", &fs.s(""), "-o", &out, "-q"]),
        1,
        &[&fs.s(&pack), "(os error 5)"],
    );
    assert!(fs.hits() > 0, "the fault was never met");
    fs.unmount();
    let names: Vec<String> = std::fs::read_dir(f.w.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("alpha.romlib")),
        "export left {names:?}"
    );

    // A portable file that fails part-way: import into a new library creates nothing, into
    // an existing one changes nothing; the device's install and cat from it fail.
    std::fs::create_dir(f.w.p("pf")).unwrap();
    let out = f.w.s("pf/alpha.romlib");
    ok(host(&[
        "export",
        "-g",
        GAME,
        "-r",
        &f.w.s("lib"),
        "-o",
        &out,
        "-q",
    ]));
    let len = std::fs::metadata(&out).unwrap().len();
    write(&f.w.p("in3"), "delta/d.bin", &Rng::new(8).bytes(100_000));
    ok(f.w.build("in3", "lib3", &["-q"]));
    let before = snapshot(&f.w.p("lib3"));
    let Some(fs) = FaultFs::mount(
        &f.w.p("pf"),
        &f.w.p("fpf"),
        &[&format!("alpha.romlib@{}", len / 2)],
    ) else {
        return;
    };
    let file = fs.s("alpha.romlib");
    let key = f.w.s("k.pub");
    for lib in ["new", "lib3"] {
        let lib = f.w.s(lib);
        fails(
            host(&[
                "import",
                &file,
                "-o",
                &lib,
                "--trusted-key",
                &key,
                "--signing-key",
                &f.w.s("k.sec"),
            ]),
            1,
            &[&file, "(os error 5)"],
        );
    }
    assert!(!f.w.p("new").exists(), "a new library was left behind");
    assert!(snapshot(&f.w.p("lib3")) == before, "the library changed");
    fails(f.install(&file, "fresh", GAME), 1, &[&file, "(os error 5)"]);
    assert_eq!(visible(&f.w.p("fresh")), Vec::<String>::new());
    assert!(fs.hits() > 0, "the fault was never met");
    fs.unmount();

    // Without the fault both succeed.
    ok(host(&[
        "import",
        &out,
        "-o",
        &f.w.s("lib3"),
        "--trusted-key",
        &key,
        "--signing-key",
        &f.w.s("k.sec"),
    ]));
    ok(f.install(&f.w.s("lib3"), "fresh", GAME));
    assert_same_tree(&f.w.p("in2/alpha"), &f.w.p("fresh/alpha"));
}

#[test]
fn install_over_http_from_a_server_whose_library_fails() {
    let f = Fixture::built(&[]);
    let (_, fault) = f.middle_chunk();
    let Some(fs) = f.faulty_lib(&[&fault]) else {
        return;
    };
    // `romlib serve` reads the pack from the failing disk: the device gets a body cut
    // short, retries, then stops with one line; nothing visible is left.
    let serve_err = f.w.p("serve.err");
    let (mut serve, port, _log) =
        start_serve_to(&fs.s(""), std::fs::File::create(&serve_err).unwrap());
    let url = format!("http://127.0.0.1:{port}/");
    let key = f.w.s("k.pub");
    let inst = f.w.s("inst");
    let args = [
        "install",
        "--from",
        &url,
        "-g",
        GAME,
        "--install-dir",
        &inst,
        "--trusted-key",
        &key,
    ];
    fails(dev(&args), 1, &[&url, "pack-"]);
    assert_same_tree(&f.w.p("in1/alpha"), &f.w.p("inst/alpha"));
    assert_eq!(visible(&f.w.p("inst")), [GAME]);
    assert!(fs.hits() > 0, "the fault was never met");
    let _ = serve.kill();
    let _ = serve.wait();
    fs.unmount();
    // The server says which file failed, once per request it broke off.
    let err = std::fs::read_to_string(&serve_err).unwrap();
    assert!(
        !err.is_empty(),
        "romlib serve said nothing of the read errors"
    );
    for line in err.lines() {
        assert!(
            line.contains("pack-") && line.contains("(os error 5)"),
            "{err}"
        );
    }

    // The same server on the sound library: the install completes.
    let (mut serve, port, _log) = start_serve(&f.w.s("lib"));
    let url = format!("http://127.0.0.1:{port}/");
    let mut args = args;
    args[2] = &url;
    ok(dev(&args));
    assert_same_tree(&f.w.p("in2/alpha"), &f.w.p("inst/alpha"));
    let _ = serve.kill();
    let _ = serve.wait();
}

#[test]
fn a_failing_base_of_a_delta_chunk_fails_the_install_naming_its_pack() {
    // A revision stored as deltas against the chunks of its parent, built earlier.
    let w = Workspace::new();
    let mut r = Rng::new(21);
    let mut base = Vec::new();
    while base.len() < 256 * 1024 {
        base.extend_from_slice(&r.text(16 * 1024));
        base.extend_from_slice(&r.bytes(16 * 1024));
    }
    let rev = r.variant(&base, 20, 512);
    write(&w.p("in1"), "base/rom.bin", &base);
    write(&w.p("in2"), "rev/rom.bin", &rev);
    ok(w.build("in1", "lib", &["--avg-chunk", "8192", "-q"]));
    ok(w.build("in2", "lib", &["--avg-chunk", "8192", "-q"]));

    // The base of one of the revision's delta chunks, through the index.
    let m = ManifestFile::open(&w.p("lib/games/rev.manifest")).unwrap();
    let mut table = m.unverified_chunks().unwrap();
    let ix = romlib_host::library::runs::open_library(&w.p("lib")).unwrap();
    let entry = |h: &[u8; 32]| ix.get(h).unwrap().unwrap();
    let mut base_entry = None;
    while let Some(c) = table.next_chunk().unwrap() {
        if entry(&c.hash).method == Method::ZstdDelta {
            let b = ix.delta_base(&c.hash).unwrap().unwrap();
            base_entry = Some(entry(&b));
            break;
        }
    }
    drop(ix);
    let e = base_entry.expect("the revision has no delta chunk");
    let at = e.offset + RECORD_HEADER_LEN as u64 + e.clen as u64 / 2;
    let full = Library::new(w.p("lib")).pack_path(e.pack_id);
    let rel = full.strip_prefix(w.p("lib")).unwrap().to_string_lossy();
    let fault = format!("{rel}@{at}..{}", at + 1);

    let Some(fs) = FaultFs::mount(&w.p("lib"), &w.p("flib"), &[&fault]) else {
        return;
    };
    let (lib, key) = (fs.s(""), w.s("k.pub"));
    let install = |lib: &str| {
        dev(&[
            "install",
            "-g",
            "rev",
            "-r",
            lib,
            "--install-dir",
            &w.s("inst"),
            "--trusted-key",
            &key,
        ])
    };
    fails(install(&lib), 1, &[&fs.s(&rel), "(os error 5)"]);
    assert_eq!(visible(&w.p("inst")), Vec::<String>::new());
    let out = dev(&[
        "cat",
        "-g",
        "rev",
        "-r",
        &lib,
        "--trusted-key",
        &key,
        "rom.bin",
    ]);
    assert!(
        out.stdout == rev[..out.stdout.len()],
        "wrong bytes on stdout"
    );
    fails(out, 1, &[&fs.s(&rel), "(os error 5)"]);
    assert!(fs.hits() > 0, "the fault was never met");
    fs.unmount();
    ok(install(&w.s("lib")));
    assert_same_tree(&w.p("in2/rev"), &w.p("inst/rev"));
}

#[test]
fn an_incremental_build_reading_a_failing_pack_changes_nothing() {
    // A revision whose chunks are stored as deltas against the parent's, which the build
    // reads back from the earlier pack. The pack is replaced by a symbolic link into
    // faultfs (the library itself must stay writable), then put back. (The index, written
    // in place, is never opened through a link: tests/tests/hostile_card.rs.)
    let w = Workspace::new();
    let mut r = Rng::new(22);
    let mut base = Vec::new();
    while base.len() < 256 * 1024 {
        base.extend_from_slice(&r.text(16 * 1024));
        base.extend_from_slice(&r.bytes(16 * 1024));
    }
    write(&w.p("in1"), "base/rom.bin", &base);
    write(&w.p("in2"), "base/rom.bin", &base);
    write(&w.p("in2"), "rev/rom.bin", &r.variant(&base, 20, 512));
    ok(w.build("in1", "lib", &["--avg-chunk", "8192", "-q"]));
    let before = visible_snapshot(&w.p("lib"));
    std::fs::create_dir(w.p("real")).unwrap();
    let pack_len = std::fs::metadata(w.p("lib/packs/pack-0001.pkg"))
        .unwrap()
        .len();
    let (rel, range) = (
        "packs/pack-0001.pkg",
        format!("@{}..{}", pack_len / 4, pack_len * 3 / 4),
    );
    let name = rel.rsplit('/').next().unwrap();
    let (file, real) = (w.p(&format!("lib/{rel}")), w.p(&format!("real/{name}")));
    std::fs::rename(&file, &real).unwrap();
    let Some(fs) = FaultFs::mount(&w.p("real"), &w.p("freal"), &[&format!("{name}{range}")]) else {
        std::fs::rename(&real, &file).unwrap();
        return;
    };
    std::os::unix::fs::symlink(fs.p(name), &file).unwrap();
    let out = w.build("in2", "lib", &["--avg-chunk", "8192", "-q"]);
    let hits = fs.hits();
    fs.unmount();
    std::fs::remove_file(&file).unwrap();
    std::fs::rename(&real, &file).unwrap();
    fails(out, 1, &[&w.s(&format!("lib/{rel}")), "(os error 5)"]);
    assert!(hits > 0, "{rel}: the fault was never met");
    assert!(
        visible_snapshot(&w.p("lib")) == before,
        "{rel}: library changed"
    );

    ok(host(&["verify", "-r", &w.s("lib")]));
    ok(w.build("in2", "lib", &["--avg-chunk", "8192", "-q"]));
    ok(host(&["verify", "-r", &w.s("lib")]));
    ok(dev(&[
        "install",
        "-g",
        "rev",
        "-r",
        &w.s("lib"),
        "--install-dir",
        &w.s("inst"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert_same_tree(&w.p("in2/rev"), &w.p("inst/rev"));
}
