//! The messages a new user meets first: each says what is wrong and what to do, in one
//! line naming the file (the small things of issue 31 seen in its first hour).

use romlib_tests::*;
use std::fs;

/// `romlib-device install -g GAME -r LIB --install-dir DIR --trusted-key KEY`.
fn install(lib: &str, game: &str, dir: &str, key: &str) -> std::process::Output {
    device(&[
        "install",
        "-g",
        game,
        "-r",
        lib,
        "--install-dir",
        dir,
        "--trusted-key",
        key,
    ])
}

fn err(out: std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn first_hour_mistakes_get_plain_answers() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 3);
    ok(w.build("in", "lib", &["-q"]));
    let (lib, k) = (w.s("lib"), w.s("k.pub"));
    // Plural rules in the host's list.
    write(&w.p("in2"), "one/only.bin", b"a single file");
    ok(w.build("in2", "lib2", &["-q"]));
    let listed = ok(romlib(&["list-games", "-r", &w.s("lib2")]));
    assert!(listed.contains("\t1 file\t"), "{listed}");
    // A wrong-case title: the closest ones, from a folder and over HTTP (the catalog).
    let install_from = |from: &[&str], game: &str| {
        let mut a = vec!["install", "-g", game, "--install-dir"];
        let dir = w.s("dev");
        a.push(&dir);
        a.extend_from_slice(&["--trusted-key", &k]);
        a.extend_from_slice(from);
        device(&a)
    };
    let e = err(install_from(&["-r", &lib], "BETA"));
    assert!(
        e.contains("no such game in this library (closest: beta)"),
        "{e}"
    );
    let (mut server, port, _log) = start_serve(&lib);
    let url = format!("http://127.0.0.1:{port}/");
    let e = err(install_from(&["--from", &url], "Alpha-V2"));
    let _ = server.kill();
    let _ = server.wait();
    assert!(e.contains("(closest: alpha-v2"), "{e}");
    // A secret key where a public one is needed, and the other way round.
    let e = err(install(&lib, "beta", &w.s("dev"), &w.s("k.sec")));
    assert!(
        e.contains("k.sec: is a secret key file; a public key file (.pub) is needed"),
        "{e}"
    );
    let e = err(romlib(&[
        "build",
        "-i",
        &w.s("in"),
        "-o",
        &lib,
        "--signing-key",
        &k,
    ]));
    assert!(e.contains("is a public key"), "{e}");
    // An install folder that is a file.
    fs::write(w.p("afile"), b"x").unwrap();
    let e = err(install(&lib, "beta", &w.s("afile"), &k));
    assert!(
        e.contains("afile: a file where romlib expects a folder"),
        "{e}"
    );
    assert_eq!(fs::read(w.p("afile")).unwrap(), b"x");
    // Importing a file that is not there names the file, not the keys.
    let e = err(romlib(&[
        "import",
        &w.s("nosuch.romlib"),
        "-o",
        &w.s("lib3"),
    ]));
    assert!(e.contains("nosuch.romlib: no such portable file"), "{e}");
    assert!(!w.p("lib3").exists());
}

#[test]
fn one_spelling_everywhere_and_dash_h_is_help() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 4);
    ok(w.build("in", "lib", &["-q"]));
    let (lib, k) = (w.s("lib"), w.s("k.pub"));
    // -h asks for help on both binaries, at the top and for a command.
    for out in [
        romlib(&["-h"]),
        device(&["-h"]),
        romlib(&["list-games", "-h"]),
        device(&["install", "-h"]),
    ] {
        let text = ok(out);
        assert!(text.starts_with("Usage: "), "{text}");
    }
    // A usage error points at the command's own help.
    let out = romlib(&["install", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("Run romlib install --help for usage."), "{e}");
    // A game is -g for uninstall as for install; -t and --title-id still work.
    for (n, spelling) in ["-g", "-t", "--title-id", "--game"].iter().enumerate() {
        let dir = w.s(&format!("dev{n}"));
        ok(install(&lib, "beta", &dir, &k));
        let out = ok(device(&[
            "uninstall",
            spelling,
            "beta",
            "--install-dir",
            &dir,
        ]));
        assert!(out.contains("uninstalled beta"), "{spelling}: {out}");
        assert!(!w.p(&format!("dev{n}/beta")).exists(), "{spelling}");
        ok(romlib(&[
            "install",
            "-g",
            "beta",
            "-r",
            &lib,
            "--install-dir",
            &dir,
        ]));
        ok(romlib(&[
            "uninstall",
            spelling,
            "beta",
            "--install-dir",
            &dir,
        ]));
        assert!(!w.p(&format!("dev{n}/beta")).exists(), "{spelling}");
    }
}

#[test]
fn the_device_lists_with_the_hosts_fields_and_filters() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 9);
    write(
        &w.p("in"),
        "beta/romlib.toml",
        b"system = \"gb\"\nregion = \"USA\"\ntags = [\"homebrew\"]\n",
    );
    ok(w.build("in", "lib", &["-q"]));
    let (lib, k) = (w.s("lib"), w.s("k.pub"));
    let json = ok(device(&[
        "list-games",
        "-r",
        &lib,
        "--trusted-key",
        &k,
        "--json",
    ]));
    for field in [
        "\"title_id\":\"beta\"",
        "\"display_name\":",
        "\"system\":\"gb\"",
        "\"region\":\"USA\"",
        "\"tags\":[\"homebrew\"]",
        "\"languages\":[]",
    ] {
        assert!(json.contains(field), "{field}: {json}");
    }
    let gb = ok(device(&[
        "list-games",
        "-r",
        &lib,
        "--trusted-key",
        &k,
        "--system",
        "GB",
    ]));
    assert!(gb.starts_with("beta\t") && gb.ends_with("1 game\n"), "{gb}");
    let found = ok(device(&[
        "list-games",
        "-r",
        &lib,
        "--trusted-key",
        &k,
        "--search",
        "HOMEBREW usa",
    ]));
    assert!(
        found.starts_with("beta\t") && found.contains("\ttrusted"),
        "{found}"
    );
    let none = ok(device(&[
        "list-games",
        "-r",
        &lib,
        "--trusted-key",
        &k,
        "--search",
        "zzz",
    ]));
    assert_eq!(none, "0 games\n");
}
