//! The built-in sample: generates a small deterministic game library input, then runs the
//! whole flow with the real binaries: keygen, build (packs + signed manifests), list,
//! verify and install on the device runtime, a full library check, a check against a DAT
//! file from the signed manifests alone, metadata from `romlib.toml`, and a no-op rebuild.
//!
//! `cargo run --release -p romlib-tests --bin sample [DIR]` (default `./sample`).
//!
//! Every command is printed as it can be run again from the same folder (the binary's path,
//! arguments quoted for a POSIX shell); the last lines say how to put the binaries on PATH
//! and which three commands to try next on one's own games. tests/tests/sample.rs runs
//! what it prints.

use romlib_tests::{bin, sample_input, write, Rng};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `arg` as a POSIX shell reads it back: bare when it holds only safe characters, else in
/// single quotes (a quote inside becomes `'\''`).
fn quote(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// `path` relative to the current folder when it lies inside it (how a user types it).
fn shown(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let rel = cwd.and_then(|c| path.strip_prefix(c).ok().map(Path::to_path_buf));
    rel.unwrap_or_else(|| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn run(name: &str, args: &[&str]) {
    let exe = bin(name);
    let line: Vec<String> = args.iter().map(|a| quote(a)).collect();
    println!("$ {} {}", quote(&shown(&exe)), line.join(" "));
    let mut cmd = Command::new(exe);
    // The sample's own trust store (its keygen trusts the sample key there), not yours.
    if let Some(config) = SAMPLE_CONFIG.get() {
        if std::env::var_os("ROMLIB_CONFIG_DIR").is_none() {
            cmd.env("ROMLIB_CONFIG_DIR", config);
        }
    }
    let st = cmd.args(args).status().expect("start");
    if !st.success() {
        eprintln!("sample: `{name}` failed");
        std::process::exit(1);
    }
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A Logiqx DAT describing the sample's `beta` game as a collector's DAT would.
fn write_dat(input: &Path, out: &Path) {
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n<datafile>\n<header><name>romlib sample</name>\
         <version>1</version></header>\n<game name=\"Beta (World)\">\
         <description>Beta (World)</description>\n",
    );
    for name in ["beta.rom", "shared.dat"] {
        let data = std::fs::read(input.join("beta").join(name)).expect("read sample file");
        let h = romlib_host::dat::digests::DatHashes::of(&data);
        xml += &format!(
            "<rom name=\"{name}\" size=\"{}\" crc=\"{:08x}\" sha1=\"{}\"/>\n",
            data.len(),
            h.crc32,
            romlib_host::dat::digests::hex(&h.sha1)
        );
    }
    xml += "</game>\n</datafile>\n";
    std::fs::write(out, xml).expect("write sample DAT");
}

/// The sample's configuration folder (its trust store): `<root>/config`.
static SAMPLE_CONFIG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "sample".into()));
    let _ = SAMPLE_CONFIG.set(root.join("config"));
    let input = root.join("input");
    let lib = root.join("library");
    let inst = root.join("install");
    let keys = root.join("keys");
    // Deterministic input: three small games sharing content, plus a disc-image revision
    // pair and a folder with file-manager junk.
    sample_input(&input, 2026);
    let mut r = Rng::new(9);
    let mut disc = r.text(6 << 20);
    disc.extend_from_slice(&r.bytes(2 << 20));
    write(&input, "disc-game-v1/disc.iso", &disc);
    disc[3 << 20..(3 << 20) + 2048].copy_from_slice(&r.bytes(2048));
    write(&input, "disc-game-v2/disc.iso", &disc);
    write(&input, "disc-game-v2/.DS_Store", b"junk");
    write(
        &input,
        "alpha/romlib.toml",
        b"name = \"Alpha Quest\"\nsystem = \"Sample Handheld\"\ntags = [\"demo\"]\n",
    );
    let dat = root.join("sample.dat");
    write_dat(&input, &dat);
    std::fs::create_dir_all(&keys).expect("create keys folder");
    if !keys.join("publisher.sec").exists() {
        run(
            "romlib",
            &[
                "keygen",
                "--secret-key",
                &s(&keys.join("publisher.sec")),
                "--public-key",
                &s(&keys.join("publisher.pub")),
            ],
        );
    }
    let build = || {
        run(
            "romlib",
            &[
                "build",
                "-i",
                &s(&input),
                "-o",
                &s(&lib),
                "--signing-key",
                &s(&keys.join("publisher.sec")),
            ],
        )
    };
    build();
    run("romlib", &["list-games", "-r", &s(&lib)]);
    run("romlib", &["show", "-g", "alpha", "-r", &s(&lib)]);
    run("romlib", &["verify", "-r", &s(&lib)]);
    run("romlib", &["verify", "-r", &s(&lib), "--dat", &s(&dat)]);
    let trusted = s(&keys.join("publisher.pub"));
    run(
        "romlib-device",
        &["list-games", "-r", &s(&lib), "--trusted-key", &trusted],
    );
    run(
        "romlib-device",
        &[
            "verify",
            "-g",
            "disc-game-v2",
            "-r",
            &s(&lib),
            "--trusted-key",
            &trusted,
        ],
    );
    for g in ["alpha", "beta", "disc-game-v2"] {
        run(
            "romlib-device",
            &[
                "install",
                "-g",
                g,
                "-r",
                &s(&lib),
                "--install-dir",
                &s(&inst),
                "--trusted-key",
                &trusted,
            ],
        );
    }
    run(
        "romlib-device",
        &["uninstall", "-t", "beta", "--install-dir", &s(&inst)],
    );
    println!("# a second build finds nothing new and writes nothing:");
    build();
    let bin_dir = bin("romlib");
    let bin_dir = bin_dir.parent().expect("binary folder");
    let bin_dir = std::fs::canonicalize(bin_dir).unwrap_or_else(|_| bin_dir.to_path_buf());
    println!(
        "sample: library in {}, installed games in {}",
        lib.display(),
        inst.display()
    );
    println!();
    println!("Next: put romlib and romlib-device on your PATH, for this shell:");
    println!(
        "  export PATH={}:\"$PATH\"",
        quote(&bin_dir.to_string_lossy())
    );
    println!("or for good (into ~/.cargo/bin):");
    println!("  cargo install --locked --path host-builder && cargo install --locked --path device-runtime");
    println!(
        "Then try your own games (GAMES: a folder with one folder per game, named by its title):"
    );
    println!("  romlib keygen --secret-key my.sec --public-key my.pub");
    println!("  romlib build -i GAMES -o my-library --signing-key my.sec");
    println!("  romlib-device install -g TITLE -r my-library --install-dir my-games --trusted-key my.pub");
    println!("(TITLE: one of the names `romlib list-games -r my-library` shows; docs/collectors.md and docs/handhelds.md say more.)");
}
