//! Shared helpers of the end-to-end tests: locating the binaries, generating deterministic
//! sample games, running commands and checking their outcome.

pub mod schema;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

/// Deterministic pseudo-random bytes (xorshift64*), the same on every machine.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `n` incompressible bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }

    /// A revision of `base`: `edits` scattered runs of 1 to 16 changed bytes, then
    /// `insert` new bytes at one place (how a regional variant or a bug-fix revision of a
    /// ROM differs from its parent).
    pub fn variant(&mut self, base: &[u8], edits: usize, insert: usize) -> Vec<u8> {
        let mut v = base.to_vec();
        for _ in 0..edits {
            let len = 1 + (self.next_u64() % 16) as usize;
            let at = (self.next_u64() as usize) % v.len().saturating_sub(len).max(1);
            for b in v.iter_mut().skip(at).take(len) {
                *b ^= 1 + (self.next_u64() % 255) as u8;
            }
        }
        if insert > 0 {
            let at = (self.next_u64() as usize) % v.len().max(1);
            let new = self.bytes(insert);
            v.splice(at..at, new);
        }
        v
    }

    /// `n` compressible bytes: words from a small vocabulary.
    pub fn text(&mut self, n: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "sprite", "level", "tile", "palette", "music", "boss", "map", "rom", "bank", "0x1f",
        ];
        let mut v = Vec::with_capacity(n + 16);
        while v.len() < n {
            let w = WORDS[(self.next_u64() % WORDS.len() as u64) as usize];
            v.extend_from_slice(w.as_bytes());
            v.push(if self.next_u64().is_multiple_of(8) {
                b'\n'
            } else {
                b' '
            });
        }
        v.truncate(n);
        v
    }
}

/// Writes `data` to `root/rel`, creating folders.
pub fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// A small input folder of three games with shared content, compressible and
/// incompressible files and a nested folder.
pub fn sample_input(root: &Path, seed: u64) {
    let mut r = Rng::new(seed);
    let shared = r.bytes(300_000);
    let disc = r.bytes(700_000);
    write(root, "alpha/game.bin", &disc);
    write(root, "alpha/data/level1.txt", &r.text(200_000));
    write(root, "alpha/data/empty.cfg", b"");
    write(root, "alpha/shared.dat", &shared);
    let mut rev = disc.clone();
    rev[350_000..350_100].copy_from_slice(&r.bytes(100));
    write(root, "alpha-v2/game.bin", &rev);
    write(root, "alpha-v2/shared.dat", &shared);
    write(root, "beta/beta.rom", &r.text(150_000));
    write(root, "beta/shared.dat", &shared);
}

/// Writes a zip of `members` (name, bytes) at `path`, deflated or stored, with fixed
/// timestamps (the same bytes every run).
pub fn write_zip(path: &Path, members: &[(&str, &[u8])], deflate: bool) {
    use std::io::Write;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let method = match deflate {
        true => zip::CompressionMethod::Deflated,
        false => zip::CompressionMethod::Stored,
    };
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .last_modified_time(zip::DateTime::default());
    for (name, data) in members {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

/// Writes a solid 7z (LZMA2) of `members` at `path`.
pub fn write_7z(path: &Path, members: &[(&str, &[u8])]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = sevenz_rust2::ArchiveWriter::create(path).unwrap();
    let entries = members
        .iter()
        .map(|(n, _)| sevenz_rust2::ArchiveEntry::new_file(n))
        .collect();
    let readers = members
        .iter()
        .map(|(_, d)| sevenz_rust2::SourceReader::new(*d))
        .collect();
    w.push_archive_entries(entries, readers).unwrap();
    w.finish().unwrap();
}

static BUILD: Once = Once::new();

/// The path of a workspace binary (`romlib` or `romlib-device`), built if missing.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // Test executables live in target/<profile>/deps, binaries in target/<profile>.
    let mut dir = exe.parent().unwrap().to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let p = dir.join(name);
    // Cargo builds only the binaries of the package under test, so make sure the other
    // package's binaries are fresh (a no-op when they are).
    BUILD.call_once(|| {
        let profile = if dir.ends_with("release") {
            vec!["--release"]
        } else {
            vec![]
        };
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "-p",
                "romlib-host",
                "-p",
                "romlib-device",
                "--bins",
            ])
            .args(profile)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .unwrap();
        assert!(status.success(), "building the binaries failed");
    });
    assert!(p.exists(), "{} missing", p.display());
    p
}

/// A command that runs `romlib`: the workspace build, or, with `ROMLIB_HOST_BIN` set, that
/// binary (the Windows build), run by `ROMLIB_HOST_RUNNER` when set (`wine64`):
/// windows/test.sh runs the host's end-to-end suites so. Builds get a fixed
/// `SOURCE_DATE_EPOCH` (unless the caller's environment sets one), so two builds of the same
/// input give the same bytes, as reproducible builds do: a manifest's revision is its
/// build's time.
pub fn host_cmd() -> Command {
    let mut c = match std::env::var_os("ROMLIB_HOST_BIN") {
        None => Command::new(bin("romlib")),
        Some(path) => match std::env::var_os("ROMLIB_HOST_RUNNER") {
            Some(runner) => {
                let mut c = Command::new(runner);
                c.arg(path);
                c
            }
            None => Command::new(path),
        },
    };
    if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
        c.env("SOURCE_DATE_EPOCH", TEST_EPOCH.to_string());
    }
    // Always the test's own: never the caller's (cross/test.sh exports one of its own).
    c.env("ROMLIB_CONFIG_DIR", config_dir());
    c
}

/// A command that runs the workspace's own (Linux) `romlib`, whatever `ROMLIB_HOST_BIN`
/// says, in this test's configuration ([`config_dir`], [`TEST_EPOCH`]).
pub fn linux_host_cmd() -> Command {
    let mut c = Command::new(bin("romlib"));
    c.env("ROMLIB_CONFIG_DIR", config_dir());
    if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
        c.env("SOURCE_DATE_EPOCH", TEST_EPOCH.to_string());
    }
    c
}

thread_local! {
    /// The configuration folder (trust store) of the host commands a test thread runs.
    static CONFIG: tempfile::TempDir = tempfile::tempdir().unwrap();
}

/// The `ROMLIB_CONFIG_DIR` of the host commands run by this thread: one per test (each
/// test runs on a thread of its own), so the keys a test's `romlib keygen` trusts are
/// trusted in that test only, and no test touches the user's own trust store.
pub fn config_dir() -> PathBuf {
    CONFIG.with(|d| d.path().to_path_buf())
}

/// The `SOURCE_DATE_EPOCH` of the tests' builds: 2026-01-01 00:00:00 UTC.
pub const TEST_EPOCH: u64 = 1_767_225_600;

/// Whether the host binary under test is the Windows build (`ROMLIB_HOST_BIN` names an
/// `.exe`): tests of Unix-only behaviour (file modes, signals, FUSE) skip their part then.
pub fn host_is_windows() -> bool {
    std::env::var_os("ROMLIB_HOST_BIN")
        .is_some_and(|p| p.to_string_lossy().to_ascii_lowercase().ends_with(".exe"))
}

/// `rel` (a `/`-separated path inside a test folder) as the host binary under test prints
/// the end of a path it was given: with `\\` on Windows, which joins with backslashes.
pub fn host_sep(rel: &str) -> String {
    if host_is_windows() {
        rel.replace('/', "\\")
    } else {
        rel.to_string()
    }
}

/// Runs `romlib` (see [`host_cmd`]) with `args`.
pub fn romlib(args: &[&str]) -> Output {
    host_cmd().args(args).output().unwrap()
}

/// A command that runs `romlib-device`: the host build, or, with `ROMLIB_DEVICE_BIN` set,
/// that binary (an ARM build), run by `ROMLIB_DEVICE_RUNNER` when set (`qemu-aarch64`):
/// cross/test.sh runs the device's fault and crash tests so.
pub fn device_cmd() -> Command {
    let Some(path) = std::env::var_os("ROMLIB_DEVICE_BIN") else {
        return Command::new(bin("romlib-device"));
    };
    match std::env::var_os("ROMLIB_DEVICE_RUNNER") {
        Some(runner) => {
            let mut c = Command::new(runner);
            c.arg(path);
            c
        }
        None => Command::new(path),
    }
}

/// Runs `romlib-device` (see [`device_cmd`]) with `args`.
pub fn device(args: &[&str]) -> Output {
    device_cmd().args(args).output().unwrap()
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "expected success, got {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The JSON object a successful `--json` command printed on stdout.
pub fn json_of(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// The games `romlib list-games -r <lib> --json` lists, as JSON objects.
pub fn listed_games(w: &Workspace, lib: &str) -> Vec<serde_json::Value> {
    let v = json_of(romlib(&["list-games", "-r", &w.s(lib), "--json"]));
    v["games"].as_array().unwrap().clone()
}

/// Asserts exit code `code`, one line of error on stderr containing each of `needles`,
/// and returns stderr.
pub fn fails(out: Output, code: i32, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}\nstdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    if code == 1 {
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("romlib: trusting"))
            .collect();
        assert_eq!(lines.len(), 1, "error should be one line: {err}");
    }
    err
}

/// The library format version `index.db` of library `lib` records (`meta` `format_version`).
pub fn format_version(lib: &Path) -> u32 {
    use redb::ReadableDatabase;
    let db = redb::Builder::new()
        .open_read_only(lib.join("index.db"))
        .unwrap();
    let rtx = db.begin_read().unwrap();
    let meta = rtx.open_table(romlib_host::library::index::META).unwrap();
    let v = meta
        .get(romlib_format::index::META_FORMAT)
        .unwrap()
        .unwrap();
    u32::from_le_bytes(v.value().try_into().unwrap())
}

/// A temp folder with a key pair `k.sec` / `k.pub`.
pub struct Workspace {
    /// The temp folder (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// Creates the folder and the key pair.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let w = Workspace { dir };
        ok(romlib(&[
            "keygen",
            "--secret-key",
            &w.s("k.sec"),
            "--public-key",
            &w.s("k.pub"),
        ]));
        w
    }

    /// A path inside the folder.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A path inside the folder, as a string.
    pub fn s(&self, rel: &str) -> String {
        self.p(rel).to_string_lossy().into_owned()
    }

    /// `romlib build -i <input> -o <lib>` with the workspace key and extra args.
    pub fn build(&self, input: &str, lib: &str, extra: &[&str]) -> Output {
        let (i, o, k) = (self.s(input), self.s(lib), self.s("k.sec"));
        let mut args = vec!["build", "-i", &i, "-o", &o, "--signing-key", &k];
        args.extend_from_slice(extra);
        romlib(&args)
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

/// Every file below `root` with its bytes, sorted by relative path.
pub fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    if root.exists() {
        walk(root, root, &mut out);
    }
    out.sort();
    out
}

/// Asserts that the installed game `dir` equals the input game `input` (the completion
/// marker aside).
pub fn assert_same_tree(input: &Path, installed: &Path) {
    let a = snapshot(input);
    let b: Vec<_> = snapshot(installed)
        .into_iter()
        .filter(|(n, _)| n != ".romlib-installed")
        .collect();
    let names_a: Vec<&String> = a.iter().map(|x| &x.0).collect();
    let names_b: Vec<&String> = b.iter().map(|x| &x.0).collect();
    assert_eq!(names_a, names_b);
    assert!(a == b, "installed bytes differ from the input");
}

/// Installs `game` with `romlib-device install` from `source` (`-r PATH` or `--from URL`),
/// trusting the workspace's key, into the workspace folder `into` (emptied first), and
/// asserts that it is exactly `<input>/<game>`; `ctx` names the case in a failure.
pub fn assert_installs(
    w: &Workspace,
    source: &[&str],
    game: &str,
    into: &str,
    input: &Path,
    ctx: &str,
) {
    let _ = std::fs::remove_dir_all(w.p(into));
    let (dir, key) = (w.s(into), w.s("k.pub"));
    let mut args = vec!["install"];
    args.extend_from_slice(source);
    args.extend_from_slice(&["-g", game, "--install-dir", &dir, "--trusted-key", &key]);
    let out = device(&args);
    assert!(
        out.status.success(),
        "{ctx}: {game}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_tree(&input.join(game), &w.p(into).join(game));
}

/// Asserts that each of `games` published in library `lib` installs with `romlib-device`
/// exactly as its input `input/<game>` (into the workspace's `readers/` folder), and that
/// `romlib verify` finds no problem (a run stopped between a manifest and its locator
/// leaves the new locator staged beside the old one, and readers take it).
pub fn assert_published(w: &Workspace, lib: &Path, input: &str, games: &[&str], ctx: &str) {
    let lib_s = lib.to_string_lossy().into_owned();
    for game in games {
        assert_installs(w, &["-r", &lib_s], game, "readers", &w.p(input), ctx);
    }
    let v = romlib(&["verify", "-q", "-r", &lib_s, "--trusted-key", &w.s("k.pub")]);
    let out = String::from_utf8_lossy(&v.stdout).into_owned();
    let err = String::from_utf8_lossy(&v.stderr).into_owned();
    assert!(matches!(v.status.code(), Some(0 | 1)), "{ctx}: {out}{err}");
    assert!(
        !out.lines().any(|l| l.starts_with("PROBLEM")),
        "{ctx}: {out}{err}"
    );
}

/// Asserts that `romlib verify` calls library `lib` (a workspace path) OK, trusting the
/// workspace's key.
pub fn verify_ok(w: &Workspace, lib: &str) {
    let v = ok(romlib(&[
        "verify",
        "-q",
        "-r",
        &w.s(lib),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert!(v.contains("library OK"), "{v}");
}

/// Copies the folder tree `from` to `to` (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// The chunk index of library `lib` as the runs list of its index `db` names them, opened
/// without a write (`open_library` refuses an index redb must repair; this reads the list
/// from an index opened by `open_checked`, as the next builder would).
pub fn chunk_index_of(
    lib: &Path,
    db: &redb::Database,
) -> Result<romlib_host::library::runs::ChunkIndex, String> {
    use redb::ReadableDatabase;
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let meta = txn
        .open_table(romlib_host::library::index::META)
        .map_err(|e| e.to_string())?;
    let ids = meta
        .get(romlib_format::index::META_RUNS)
        .map_err(|e| e.to_string())?
        .ok_or("index: no list of runs")?;
    let ids = romlib_host::library::runs::decode_list(ids.value())
        .ok_or("index: its list of runs is damaged")?;
    romlib_host::library::runs::ChunkIndex::open(
        &lib.join(romlib_format::layout::RUNS_DIR),
        &ids,
        false,
    )
    .map_err(|e| e.to_string())
}

/// Every row of every table of a library's index, and every chunk and delta row of its
/// runs (each run's checksum checked), as bytes, as the next builder would read them
/// (checked, without a write), or why the index does not open: for tests of damage that
/// must be reported or else be harmless.
pub fn index_rows(lib: &Path) -> Result<Vec<Vec<u8>>, String> {
    use redb::{ReadableDatabase, ReadableTable};
    use romlib_host::library::index::*;
    let db = open_checked(&lib.join("index.db"))?;
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    macro_rules! dump {
        ($t:expr, $k:expr, $v:expr) => {
            match txn.open_table($t) {
                Ok(t) => {
                    for r in t.iter().map_err(|e| e.to_string())? {
                        let (k, v) = r.map_err(|e| e.to_string())?;
                        let (k, v) = (k.value(), v.value());
                        let mut row = $k(k);
                        row.extend_from_slice(&$v(v));
                        rows.push(row);
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        };
    }
    dump!(PACKS, |k: u32| k.to_le_bytes().to_vec(), |v: &[u8]| v
        .to_vec());
    dump!(GAMES, |k: &str| k.as_bytes().to_vec(), |v: &[u8; 32]| v
        .to_vec());
    dump!(META, |k: &str| k.as_bytes().to_vec(), |v: &[u8]| v.to_vec());
    let ix = chunk_index_of(lib, &db)?;
    for run in ix.runs() {
        run.check()
            .map_err(|e| format!("{}: {e}", run.path().display()))?;
    }
    for (hash, e) in ix.all_chunks().map_err(|e| e.to_string())? {
        rows.push([hash.as_slice(), &e.encode()].concat());
    }
    for (hash, base) in ix.all_deltas().map_err(|e| e.to_string())? {
        rows.push([hash, base].concat());
    }
    Ok(rows)
}

/// A game's locator, decoded: each chunk-table record's chunk hash with where its record
/// lies, and the base table.
pub struct EditableLocator {
    /// Entry `i`: chunk-table record `i`'s hash and location.
    pub entries: Vec<([u8; 32], romlib_format::portable::LocatorEntry)>,
    /// The base chunks of the game's deltas, by hash.
    pub bases: std::collections::BTreeMap<[u8; 32], romlib_format::portable::LocatorEntry>,
}

/// Rewrites `game`'s locator in library `lib` after `edit` changed it: for tests that
/// stand for a tampered or damaged locator (the manifest stays as it is).
pub fn edit_locator(lib: &Path, game: &str, edit: impl FnOnce(&mut EditableLocator)) {
    use romlib_format::portable::*;
    let path = lib.join(format!("games/{game}.locator"));
    let b = std::fs::read(&path).unwrap();
    let h = LocatorHeader::decode(&b).unwrap();
    let m = romlib_device::ManifestFile::open(&lib.join(format!("games/{game}.manifest"))).unwrap();
    let mut table = m.unverified_chunks().unwrap();
    let mut loc = EditableLocator {
        entries: Vec::new(),
        bases: Default::default(),
    };
    let mut at = h.header_len();
    while let Some(c) = table.next_chunk().unwrap() {
        let e = LocatorEntry::decode(&b[at..at + LOCATOR_ENTRY_LEN]).unwrap();
        loc.entries.push((c.hash, e));
        at += LOCATOR_ENTRY_LEN;
    }
    for _ in 0..h.bases {
        let e = BaseEntry::decode(&b[at..at + BASE_ENTRY_LEN]).unwrap();
        loc.bases.insert(e.hash, e.entry);
        at += BASE_ENTRY_LEN;
    }
    edit(&mut loc);
    let header = LocatorHeader {
        count: loc.entries.len() as u32,
        table_blake3: h.table_blake3,
        bases: loc.bases.len() as u32,
    };
    let mut out = header.encode(&mut [0; LOCATOR_HEADER_V2_LEN]).to_vec();
    for (_, e) in &loc.entries {
        out.extend_from_slice(&e.encode());
    }
    for (hash, entry) in &loc.bases {
        let e = BaseEntry {
            hash: *hash,
            entry: *entry,
        };
        out.extend_from_slice(&e.encode());
    }
    std::fs::write(&path, out).unwrap();
}

/// Flips one bit of a file at `offset`.
pub fn flip(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[offset as usize] ^= 0x40;
    std::fs::write(path, b).unwrap();
}

/// Mounts a small tmpfs at `dir` (the machines this runs on are root; set
/// ROMLIB_NO_MOUNT=1 to skip where mounting is not allowed). `ro` mounts it read-only.
pub fn mount_tmpfs(dir: &Path, size: &str, ro: bool) -> Option<Unmount> {
    if std::env::var_os("ROMLIB_NO_MOUNT").is_some() {
        eprintln!("skipped: ROMLIB_NO_MOUNT is set");
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    let opts = format!("size={size}{}", if ro { ",ro" } else { "" });
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(
        st.success(),
        "cannot mount a tmpfs (set ROMLIB_NO_MOUNT=1 where that is not allowed)"
    );
    Some(Unmount(dir.to_path_buf()))
}

/// Unmounts on drop.
pub struct Unmount(PathBuf);

impl Unmount {
    /// Unmounts `dir` when dropped.
    pub fn new(dir: &Path) -> Self {
        Unmount(dir.to_path_buf())
    }
}

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Starts `romlib serve -r LIB --listen 127.0.0.1:0` and waits for its first line: returns
/// the child (its stderr discarded), the port it listens on, and its standard output (the
/// access log from here on).
pub fn start_serve(
    lib: &str,
) -> (
    std::process::Child,
    u16,
    std::io::BufReader<std::process::ChildStdout>,
) {
    start_serve_to(lib, std::process::Stdio::null())
}

/// [`start_serve`] with the server's stderr sent to `stderr`.
pub fn start_serve_to(
    lib: &str,
    stderr: impl Into<std::process::Stdio>,
) -> (
    std::process::Child,
    u16,
    std::io::BufReader<std::process::ChildStdout>,
) {
    use std::io::BufRead;
    let mut child = host_cmd()
        .args(["serve", "-r", lib, "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("romlib serve printed no address: {line:?}"));
    (child, port, out)
}

/// Whether `dir` is a mount point now, by /proc/mounts.
pub fn is_mounted(dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let want = dir.to_string_lossy();
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(want.as_ref()))
}

/// A running `faultfs` (this crate's fault-injecting FUSE file system, `src/bin/faultfs.rs`):
/// a folder shown read-only at a mount point, with reads failing with EIO where asked. On
/// drop it is unmounted and its process ended, whatever state the test left, so no stale
/// mount survives a failing test.
pub struct FaultFs {
    child: Option<std::process::Child>,
    mnt: PathBuf,
    log: PathBuf,
}

impl FaultFs {
    /// Shows `src` at `mnt` (created if missing; must be empty) and waits until the mount is
    /// live. Each fault is `PATTERN[@OFFSET]`: a read of a file whose path relative to `src`
    /// contains PATTERN fails with EIO from byte OFFSET (default 0) on; `PATTERN@START..END`
    /// fails only bytes START to END (exclusive), as a bad sector does. `None`, with a note
    /// on stderr, when ROMLIB_NO_MOUNT is set (no right to mount); otherwise FUSE must be
    /// there.
    pub fn mount(src: &Path, mnt: &Path, faults: &[&str]) -> Option<FaultFs> {
        if std::env::var_os("ROMLIB_NO_MOUNT").is_some() {
            eprintln!("skipped: ROMLIB_NO_MOUNT is set (the fault tests need a FUSE mount)");
            return None;
        }
        assert!(
            Path::new("/dev/fuse").exists(),
            "/dev/fuse is missing: the fault tests cannot mount faultfs (set ROMLIB_NO_MOUNT=1 to skip)"
        );
        std::fs::create_dir_all(mnt).unwrap();
        let log = mnt.with_extension("faultfs.log");
        let mut cmd = Command::new(bin("faultfs"));
        cmd.arg(src).arg(mnt);
        for f in faults {
            cmd.args(["--eio", f]);
        }
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut fs = FaultFs {
            child: Some(child),
            mnt: mnt.to_path_buf(),
            log,
        };
        let start = std::time::Instant::now();
        while !is_mounted(mnt) {
            if let Some(st) = fs.child.as_mut().unwrap().try_wait().unwrap() {
                fs.child = None;
                panic!("faultfs exited with {st} before mounting: {}", fs.log());
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "faultfs: not mounted after 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(fs)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mnt
    }

    /// A path below the mount point.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// A path below the mount point, as a string.
    pub fn s(&self, rel: &str) -> String {
        self.p(rel).to_string_lossy().into_owned()
    }

    /// What faultfs wrote on stderr so far: one line per injected error.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many reads failed with an injected EIO so far (a test checks that its fault was
    /// met, or it would pass without testing anything).
    pub fn hits(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.starts_with("faultfs: EIO "))
            .count()
    }

    /// Stops faultfs with SIGTERM and asserts that it exits 0 within 10 s, unmounted.
    pub fn unmount(mut self) {
        let mut child = self.child.take().unwrap();
        let st = stop(&mut child, "TERM", std::time::Duration::from_secs(10));
        assert_eq!(st, Some(0), "faultfs exit status; log: {}", self.log());
        assert!(
            !is_mounted(&self.mnt),
            "faultfs left {:?} mounted",
            self.mnt
        );
    }
}

/// Sends `sig` to `child` and waits at most `limit` for it to exit; its exit code, or
/// `None` if it did not exit in time (or died of a signal).
fn stop(child: &mut std::process::Child, sig: &str, limit: std::time::Duration) -> Option<i32> {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status();
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if stop(&mut child, "TERM", std::time::Duration::from_secs(10)).is_none() {
                let _ = Command::new("fusermount3")
                    .args(["-u", "-z"])
                    .arg(&self.mnt)
                    .status();
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if is_mounted(&self.mnt) {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

/// nginx (Debian's package) serving a folder on a free loopback port, with its own prefix
/// folder for configuration and logs; stopped on drop.
pub struct Nginx {
    child: std::process::Child,
    /// The port it listens on.
    pub port: u16,
    prefix: PathBuf,
}

impl Nginx {
    /// Starts nginx serving `root` read-only, its files under `prefix`; waits until it
    /// accepts connections.
    pub fn start(root: &Path, prefix: &Path) -> Nginx {
        use std::net::{TcpListener, TcpStream};
        use std::time::{Duration, Instant};
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let conf = format!(
            "worker_processes 1;\nerror_log {p}/logs/error.log;\npid {p}/nginx.pid;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log {p}/logs/access.log;\n  client_body_temp_path {p}/tmp;\n  proxy_temp_path {p}/tmp;\n  fastcgi_temp_path {p}/tmp;\n  uwsgi_temp_path {p}/tmp;\n  scgi_temp_path {p}/tmp;\n  server {{\n    listen 127.0.0.1:{port};\n    root {root};\n  }}\n}}\n",
            p = prefix.display(),
            root = root.display()
        );
        std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
        let nginx = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|n| {
                Command::new(n)
                    .arg("-v")
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok()
            })
            .expect("nginx is not installed (tests/run-all.sh installs Debian's nginx)");
        let child = Command::new(nginx)
            .args([
                "-p",
                &prefix.to_string_lossy(),
                "-c",
                &prefix.join("nginx.conf").to_string_lossy(),
            ])
            .args(["-g", "daemon off; master_process off;"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let n = Nginx {
            child,
            port,
            prefix: prefix.to_path_buf(),
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "nginx did not start: {}",
                std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        n
    }

    /// Its access log so far.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("logs/access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A FUSE-mounted card image, unmounted (and its loop device freed) on drop.
pub struct Card {
    /// Where it is mounted.
    pub dir: std::path::PathBuf,
    child: Option<std::process::Child>,
    loop_dev: Option<String>,
}

impl Drop for Card {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(l) = &self.loop_dev {
            let _ = std::process::Command::new("losetup")
                .args(["-d", l])
                .status();
        }
    }
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes a `mib` MiB image of `kind` ("fat32" or "exfat") and mounts it at `dir`
/// through FUSE (fusefat; exfat-fuse on a loop device), as the kernels these tests run on
/// lack the vfat and exfat drivers. `None` (said on stderr) when `ROMLIB_NO_MOUNT` is set.
pub fn card(w: &Workspace, kind: &str, mib: u64, dir: &str) -> Option<Card> {
    if std::env::var_os("ROMLIB_NO_MOUNT").is_some() {
        eprintln!("skipped: ROMLIB_NO_MOUNT is set");
        return None;
    }
    for t in [
        "mkfs.vfat",
        "mkfs.exfat",
        "fusefat",
        "mount.exfat-fuse",
        "losetup",
    ] {
        assert!(
            have(t),
            "{t} is missing (tests/run-all.sh installs dosfstools, exfatprogs, fusefat, exfat-fuse)"
        );
    }
    let img = w.p(&format!("{dir}.img"));
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(mib << 20).unwrap();
    drop(f);
    let mnt = w.p(dir);
    std::fs::create_dir_all(&mnt).unwrap();
    let ok_status = |c: &mut std::process::Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let card = if kind == "fat32" {
        ok_status(
            std::process::Command::new("mkfs.vfat")
                .args(["-F", "32"])
                .arg(&img),
        );
        let child = std::process::Command::new("fusefat")
            .args(["-f", "-o", "rw+"])
            .arg(&img)
            .arg(&mnt)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Card {
            dir: mnt.clone(),
            child: Some(child),
            loop_dev: None,
        }
    } else {
        ok_status(std::process::Command::new("mkfs.exfat").arg(&img));
        let dev = ok_status(
            std::process::Command::new("losetup")
                .args(["-f", "--show"])
                .arg(&img),
        );
        ok_status(
            std::process::Command::new("mount.exfat-fuse")
                .arg(&dev)
                .arg(&mnt),
        );
        Card {
            dir: mnt.clone(),
            child: None,
            loop_dev: Some(dev),
        }
    };
    let start = std::time::Instant::now();
    while !is_mounted(&mnt) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{kind} image did not mount"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Some(card)
}
