//! The built-in sample (`cargo run --release -p romlib-tests --bin sample`, README's first
//! command) as a newcomer meets it: it succeeds; every command it prints runs as shown in a
//! POSIX shell from the same folder and gives the same library and installs; the PATH line
//! it prints finds both binaries; and the three commands it suggests for one's own games
//! work on a folder of games once GAMES and TITLE are filled in.

use romlib_tests::*;
use std::path::Path;
use std::process::Command;

/// Runs `line` with `sh -c` in `dir`; panics with its output unless it succeeds.
fn sh(dir: &Path, line: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .output()
        .expect("start sh");
    assert!(
        out.status.success(),
        "`{line}` failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sample_prints_commands_that_run_as_shown_and_says_what_next() {
    // The binaries the sample runs, built before it starts (it finds them beside itself).
    bin("romlib");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sample"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sample failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sample = dir.path().join("sample");
    let commands: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("$ "))
        .collect();
    assert!(commands.len() >= 12, "{stdout}");
    assert!(commands[0].contains("romlib keygen"), "{stdout}");

    // Every printed command, run again as printed from scratch, rebuilds the same library
    // and the same installs.
    let packs_before = snapshot(&sample.join("library/packs"));
    let installed_before = snapshot(&sample.join("install"));
    for gone in ["library", "install", "keys"] {
        std::fs::remove_dir_all(sample.join(gone)).unwrap();
    }
    std::fs::create_dir(sample.join("keys")).unwrap();
    for line in &commands {
        sh(dir.path(), line);
    }
    assert_eq!(snapshot(&sample.join("library/packs")), packs_before);
    let names = |s: &[(String, Vec<u8>)]| s.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    let installed_after = snapshot(&sample.join("install"));
    assert_eq!(names(&installed_after), names(&installed_before));
    assert!(
        !sample.join("install/beta").exists(),
        "uninstalled by the sample"
    );
    assert_eq!(
        std::fs::read(sample.join("install/disc-game-v2/disc.iso")).unwrap(),
        std::fs::read(sample.join("input/disc-game-v2/disc.iso")).unwrap()
    );

    // What next: the PATH line finds both binaries.
    let tail = &stdout[stdout.find("Next:").expect("a 'Next:' section")..];
    let export = tail
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("export PATH="))
        .unwrap_or_else(|| panic!("no PATH line: {tail}"));
    let found = sh(
        dir.path(),
        &format!("{export} && command -v romlib && command -v romlib-device"),
    );
    assert_eq!(found.lines().count(), 2, "{found}");
    assert!(
        tail.contains("cargo install --locked --path host-builder"),
        "{tail}"
    );
    assert!(
        tail.contains("cargo install --locked --path device-runtime"),
        "{tail}"
    );

    // The three commands to try next, on a folder of games: the sample's own input.
    let next: Vec<&str> = tail
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("romlib ") || l.starts_with("romlib-device "))
        .collect();
    assert_eq!(next.len(), 3, "{tail}");
    for line in next {
        let line = line
            .replace("GAMES", "sample/input")
            .replace("TITLE", "beta");
        sh(dir.path(), &format!("{export} && {line}"));
    }
    assert_same_tree(
        &sample.join("input/beta"),
        &dir.path().join("my-games/beta"),
    );
}
