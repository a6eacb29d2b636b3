//! Both binaries as a front end drives them: `--progress json` and `--json` only, every
//! object checked against the tables of docs/handhelds.md's JSON reference (parsed from
//! that page itself, so the documentation cannot drift from the binaries); the example
//! front end `examples/frontend.py` against `romlib serve`; and the first-hour errors a new
//! user meets, each with its message.

use romlib_tests::schema::*;
use romlib_tests::*;
use serde_json::Value;
use std::process::Command;

fn progress_of(stream: &[Value]) -> Vec<&Value> {
    stream.iter().filter(|v| v["type"] == "progress").collect()
}

#[test]
fn device_commands_speak_the_documented_json() {
    let s = schema();
    let w = Workspace::new();
    sample_input(&w.p("in"), 11);
    ok(w.build("in", "lib", &[]));
    let (lib, key, inst) = (w.s("lib"), w.s("k.pub"), w.s("inst"));
    let keys = ["--trusted-key", key.as_str()];

    // list-games
    let out = device(&[&["list-games", "-r", &lib, "--json"][..], &keys].concat());
    let list = stdout_obj(&s, &out);
    assert!(out.status.success());
    let titles: Vec<&str> = list["games"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["alpha", "alpha-v2", "beta"]);
    assert!(list["games"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["trusted"] == true));

    // install, through the progress stream
    let mut cmd = device_cmd();
    cmd.args(["install", "-g", "alpha", "-r", &lib, "--install-dir", &inst])
        .args(keys);
    let (out, result, stream) = run_both(&s, cmd);
    assert!(out.status.success());
    assert_same_tree(&w.p("in/alpha"), &w.p("inst/alpha"));
    let size: u64 = 700_000 + 200_000 + 300_000;
    assert_eq!(result["bytes"], size);
    let p = progress_of(&stream);
    assert!(p.len() >= 2, "a first and a last progress line: {stream:?}");
    assert_eq!(p[0]["bytes_done"], 0);
    let last = p.last().unwrap();
    assert_eq!(
        (&last["bytes_done"], &last["bytes_total"]),
        (&size.into(), &size.into())
    );
    assert_eq!(last["chunks_done"], last["chunks_total"]);
    assert_eq!(last["chunks_done"], result["chunks"]);
    assert!(p
        .iter()
        .all(|v| v["game"] == "alpha" && v["op"] == "install"));
    let done: Vec<u64> = p
        .iter()
        .map(|v| v["bytes_done"].as_u64().unwrap())
        .collect();
    assert!(
        done.windows(2).all(|w| w[0] <= w[1]),
        "progress goes forward: {done:?}"
    );

    // verify
    let mut cmd = device_cmd();
    cmd.args(["verify", "-g", "beta", "-r", &lib]).args(keys);
    let (out, result, stream) = run_both(&s, cmd);
    assert!(out.status.success());
    assert_eq!(result["files"], 2);
    assert!(progress_of(&stream).last().unwrap()["bytes_done"] == result["bytes"]);

    // a killed install's leftover: listed, reported and removed by the next install
    write(
        &w.p("inst"),
        ".romlib-staging/beta.new/beta.rom",
        &[7u8; 5000],
    );
    let out = device(&["list-games", "--install-dir", &inst, "--json"]);
    let listed = stdout_obj(&s, &out);
    assert_eq!(listed["games"][0]["title"], "alpha");
    assert_eq!(listed["games"][0]["state"], "installed");
    assert_eq!(listed["leftovers"][0]["bytes"], 5000);
    assert!(listed["leftovers"][0]["what"]
        .as_str()
        .unwrap()
        .contains("unfinished install of beta"));
    let text = ok(device(&["list-games", "--install-dir", &inst]));
    assert!(
        text.contains("1 game\n") && text.contains("take 5000 bytes"),
        "{text}"
    );
    let mut cmd = device_cmd();
    cmd.args(["install", "-g", "beta", "-r", &lib, "--install-dir", &inst])
        .args(keys);
    let (out, result, stream) = run_both(&s, cmd);
    assert!(out.status.success());
    let recovered = result["recovered"].as_array().unwrap();
    assert_eq!(recovered.len(), 1, "{result}");
    assert!(recovered[0]
        .as_str()
        .unwrap()
        .contains("beta.new (5000 bytes)"));
    assert!(stream.iter().any(|v| v["type"] == "warning"), "{stream:?}");
    assert!(!w.p("inst/.romlib-staging").exists());

    // cleanup removes what is left, and says how much
    write(
        &w.p("inst"),
        ".romlib-staging/alpha-v2.new/game.bin",
        &[1u8; 3000],
    );
    write(
        &w.p("inst"),
        ".romlib-resume/alpha-v2/game.bin",
        &[2u8; 4000],
    );
    let out = device(&["cleanup", "--install-dir", &inst, "--json"]);
    let cleaned = stdout_obj(&s, &out);
    assert_eq!(cleaned["bytes_freed"], 7000);
    assert!(!w.p("inst/.romlib-staging").exists() && !w.p("inst/.romlib-resume").exists());
    let listed = stdout_obj(
        &s,
        &device(&["list-games", "--install-dir", &inst, "--json"]),
    );
    assert_eq!(listed["leftovers"], Value::Array(vec![]));

    // uninstall
    let out = device(&["uninstall", "-t", "beta", "--install-dir", &inst, "--json"]);
    assert_eq!(stdout_obj(&s, &out)["game"], "beta");

    // errors, by code, on stdout with --json and last on stderr with --progress json
    let out = device(
        &[
            &[
                "install",
                "-g",
                "nope",
                "-r",
                &lib,
                "--install-dir",
                &inst,
                "--json",
            ][..],
            &keys,
        ]
        .concat(),
    );
    let e = stdout_obj(&s, &out);
    assert_eq!(
        (out.status.code(), e["code"].as_str(), e["exit"].as_u64()),
        (Some(1), Some("not_found"), Some(1))
    );
    let mut cmd = device_cmd();
    cmd.args(["install", "-g", "nope", "-r", &lib, "--install-dir", &inst])
        .args(keys);
    let (out, e, _) = run_both(&s, cmd);
    assert_eq!(
        (out.status.code(), e["code"].as_str()),
        (Some(1), Some("not_found"))
    );
    ok(romlib(&[
        "keygen",
        "--secret-key",
        &w.s("o.sec"),
        "--public-key",
        &w.s("o.pub"),
    ]));
    let out = device(&[
        "verify",
        "-g",
        "alpha",
        "-r",
        &lib,
        "--trusted-key",
        &w.s("o.pub"),
        "--json",
    ]);
    assert_eq!(stdout_obj(&s, &out)["code"], "untrusted");
    let out = device(&["install", "--bogus", "--json"]);
    let e = stdout_obj(&s, &out);
    assert_eq!(
        (out.status.code(), e["code"].as_str()),
        (Some(2), Some("usage"))
    );
    let out = device(&["install", "-g", "alpha", "--install-dir", &inst, "--json"]);
    assert_eq!(
        (out.status.code(), stdout_obj(&s, &out)["code"].as_str()),
        (Some(2), Some("usage"))
    );
    // cat: standard output is the file, so the error goes to stderr
    let out = device(
        &[
            &["cat", "-g", "alpha", "-r", &lib, "--json", "no/such/file"][..],
            &keys,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let e = lines(&s, &out.stderr);
    assert_eq!(e.last().unwrap()["code"], "not_found", "{e:?}");
    // a damaged manifest: the list is the result, the damaged game marked, exit 1
    flip(&w.p("lib/games/beta.manifest"), 40);
    let out = device(&[&["list-games", "-r", &lib, "--json"][..], &keys].concat());
    assert_eq!(out.status.code(), Some(1));
    let list = stdout_obj(&s, &out);
    assert!(list["games"][2]["damaged"].is_string(), "{list}");
}

#[test]
fn host_commands_speak_the_documented_json() {
    let s = schema();
    let w = Workspace::new();
    sample_input(&w.p("in"), 12);
    let (i, o, k) = (w.s("in"), w.s("lib"), w.s("k.sec"));
    let mut cmd = linux_host_cmd();
    cmd.args(["build", "-i", &i, "-o", &o, "--signing-key", &k]);
    let (out, r, stream) = run_both(&s, cmd);
    assert!(out.status.success());
    assert_eq!(
        (r["games"].as_u64(), r["manifests_written"].as_u64()),
        (Some(3), Some(3))
    );
    let last = progress_of(&stream).last().unwrap()["bytes_done"].clone();
    assert_eq!(last, r["input_bytes"]);
    let mut cmd = linux_host_cmd();
    cmd.args([
        "install",
        "-g",
        "alpha",
        "-r",
        &o,
        "--install-dir",
        &w.s("inst"),
    ]);
    let (out, r, _) = run_both(&s, cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["files"], 4);
    let mut cmd = linux_host_cmd();
    cmd.args(["export", "-r", &o, "--all", "-o", &w.s("all.romlib")]);
    let (_, r, _) = run_both(&s, cmd);
    assert_eq!(r["games"], 3);
    let mut cmd = linux_host_cmd();
    cmd.args([
        "import",
        &w.s("all.romlib"),
        "-o",
        &w.s("lib2"),
        "--trusted-key",
        &w.s("k.pub"),
    ]);
    let (_, r, _) = run_both(&s, cmd);
    assert_eq!(r["games_written"], 3);
    let mut cmd = linux_host_cmd();
    cmd.args(["remove", "-r", &w.s("lib2"), "-g", "beta"]);
    let (_, r, _) = run_both(&s, cmd);
    assert_eq!(r["removed"], serde_json::json!(["beta"]));
    let mut cmd = linux_host_cmd();
    cmd.args(["verify", "-r", &o, "--progress", "json", "-q"]);
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let stream = lines(&s, &out.stderr);
    let r = stream.last().unwrap();
    assert_eq!(
        (r["type"].as_str(), r["ok"].as_bool(), r["games"].as_u64()),
        (Some("result"), Some(true), Some(3))
    );
    assert!(progress_of(&stream)
        .iter()
        .all(|p| p["op"] == "verify-library"));
    let out = romlib(&[
        "uninstall",
        "-t",
        "alpha",
        "--install-dir",
        &w.s("inst"),
        "--json",
    ]);
    assert_eq!(stdout_obj(&s, &out)["game"], "alpha");
    // errors
    let out = romlib(&[
        "build",
        "-i",
        &w.s("nothing"),
        "-o",
        &o,
        "--signing-key",
        &k,
        "--json",
    ]);
    let e = stdout_obj(&s, &out);
    assert_eq!(
        (out.status.code(), e["code"].as_str()),
        (Some(1), Some("bad_input"))
    );
    let out = romlib(&["install", "-g", "alpha", "-r", &w.s("missing"), "--json"]);
    assert_eq!(stdout_obj(&s, &out)["code"], "not_found");
    // --version on both
    for out in [romlib(&["--version"]), device(&["--version"])] {
        let text = ok(out);
        assert!(
            text.contains("0.1")
                && text.contains("library 5 (reads 1 to 5)")
                && text.contains("JSON output 1"),
            "{text}"
        );
    }
}

/// The device command as one shell-quoted line (runner and binary under QEMU).
fn device_command_line() -> String {
    let c = device_cmd();
    std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_example_front_end_installs_over_http() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: no python3");
        return;
    }
    let w = Workspace::new();
    sample_input(&w.p("in"), 13);
    ok(w.build("in", "lib", &[]));
    let (mut server, port, _log) = start_serve(&w.s("lib"));
    let url = format!("http://127.0.0.1:{port}/");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/frontend.py");
    let front = |extra: &[&str], stdin: &str| {
        use std::io::Write;
        let mut c = Command::new("python3")
            .arg(script)
            .args([
                "--from",
                &url,
                "--install-dir",
                &w.s("inst"),
                "--trusted-key",
                &w.s("k.pub"),
            ])
            .args(extra)
            .env("ROMLIB_DEVICE", device_command_line())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    };
    // Picked by number from the list (2 = alpha-v2, sorted by title).
    let out = front(&[], "2\n");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("  1. alpha [?] (") && text.contains("installed alpha-v2 in"),
        "{text}"
    );
    assert!(text.contains("100.0%"), "the bar reached its end: {text}");
    assert_same_tree(&w.p("in/alpha-v2"), &w.p("inst/alpha-v2"));
    // By title.
    let out = front(&["--game", "beta"], "");
    assert_eq!(out.status.code(), Some(0));
    assert_same_tree(&w.p("in/beta"), &w.p("inst/beta"));
    // The system filter: these games record none.
    let out = front(&["--system", "gb"], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("no trusted game in this library"), "{text}");
    // A failure, explained by its code.
    let out = front(&["--game", "gone"], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("install failed [not_found]") && text.contains("refresh the list"),
        "{text}"
    );
    server.kill().unwrap();
    let _ = server.wait();
}

#[test]
fn first_hour_errors_are_clear() {
    let w = Workspace::new();
    let lib = w.s("lib");
    // An empty input folder, and one with only loose files.
    std::fs::create_dir_all(w.p("empty")).unwrap();
    fails(
        w.build("empty", "lib", &[]),
        1,
        &["no game folders to build", "--allow-empty"],
    );
    assert!(!w.p("lib").exists(), "nothing written for a refused build");
    write(&w.p("loose"), "game.bin", b"x");
    fails(
        w.build("loose", "lib", &[]),
        1,
        &["1 file lies directly in it"],
    );
    let out = ok(w.build("empty", "lib", &["--allow-empty"]));
    assert!(out.contains("0 games, 0 files"), "{out}");
    // Singular counts.
    write(&w.p("one"), "solo/solo.bin", &Rng::new(5).bytes(50_000));
    let out = ok(w.build("one", "lib", &[]));
    assert!(
        out.contains("1 game, 1 file,") && out.contains("in 1 new pack;"),
        "{out}"
    );
    // -o names a file.
    std::fs::write(w.p("afile"), b"x").unwrap();
    fails(
        w.build("one", "afile", &[]),
        1,
        &["afile", "is not a folder"],
    );
    // A library that does not exist, on both binaries.
    let missing = w.s("no-such-lib");
    fails(
        device(&["list-games", "-r", &missing, "--trusted-key", &w.s("k.pub")]),
        1,
        &["no such library folder or portable file"],
    );
    fails(
        romlib(&["verify", "-r", &missing]),
        1,
        &["no such library folder or portable file"],
    );
    fails(
        romlib(&["install", "-g", "solo", "-r", &missing]),
        1,
        &["no such library folder"],
    );
    std::fs::create_dir_all(w.p("not-a-lib")).unwrap();
    fails(
        device(&[
            "install",
            "-g",
            "solo",
            "-r",
            &w.s("not-a-lib"),
            "--install-dir",
            &w.s("i"),
            "--trusted-key",
            &w.s("k.pub"),
        ]),
        1,
        &["no such romlib library"],
    );
    // A DAT that is neither XML nor clrmamepro.
    std::fs::write(w.p("notes.dat"), b"this is not a dat file\n").unwrap();
    fails(
        romlib(&["verify", "-r", &lib, "--dat", &w.s("notes.dat")]),
        1,
        &["notes.dat", "not a DAT file", "Logiqx XML", "clrmamepro"],
    );
}

#[test]
fn progress_counts_downloads_and_the_bar_draws() {
    let s = schema();
    let w = Workspace::new();
    sample_input(&w.p("in"), 14);
    ok(w.build("in", "lib", &[]));
    let (mut server, port, _log) = start_serve(&w.s("lib"));
    let url = format!("http://127.0.0.1:{port}/");
    let mut cmd = device_cmd();
    cmd.args([
        "install",
        "--from",
        &url,
        "-g",
        "alpha",
        "--install-dir",
        &w.s("inst"),
    ])
    .args(["--trusted-key", &w.s("k.pub")]);
    let (out, result, stream) = run_both(&s, cmd);
    server.kill().unwrap();
    let _ = server.wait();
    assert!(out.status.success());
    let got = result["bytes_downloaded"].as_u64().unwrap();
    assert!(
        got > 0 && result["requests"].as_u64().unwrap() > 0,
        "{result}"
    );
    let last = progress_of(&stream).last().unwrap()["bytes_downloaded"]
        .as_u64()
        .unwrap();
    assert_eq!(
        last, got,
        "the last progress line counts every byte downloaded"
    );
    // The human bar, forced on although stderr is a pipe: redrawn in place, then cleared.
    let out = device(&[
        "verify",
        "-g",
        "alpha",
        "-r",
        &w.s("lib"),
        "--trusted-key",
        &w.s("k.pub"),
        "--progress",
        "bar",
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.starts_with("\rverify alpha ["), "{err:?}");
    assert!(err.contains("[####################] 100%"), "{err:?}");
    assert!(err.ends_with("\r\x1b[K"), "{err:?}");
    assert!(!err.contains('\n'), "one line, redrawn: {err:?}");
}

#[test]
fn parity_and_repair_speak_the_documented_json() {
    let s = schema();
    let w = Workspace::new();
    sample_input(&w.p("in"), 13);
    let (i, o, k) = (w.s("in"), w.s("lib"), w.s("k.sec"));
    let mut cmd = linux_host_cmd();
    cmd.args([
        "build",
        "-i",
        &i,
        "-o",
        &o,
        "--signing-key",
        &k,
        "--parity",
        "5",
    ]);
    let (out, r, _) = run_both(&s, cmd);
    assert!(out.status.success());
    assert_eq!(r["parity_percent"], 5);
    assert_eq!(r["parity_written"].as_array().unwrap().len(), 4, "{r}");
    let v = stdout_obj(&s, &romlib(&["parity", "-r", &o, "--json"]));
    assert_eq!(
        (v["ok"].as_bool(), v["current"].as_u64()),
        (Some(true), Some(4))
    );
    let pack = w.p("lib/packs/pack-0001.pkg");
    let mut b = std::fs::read(&pack).unwrap();
    b[1000..1000 + 4096].fill(0);
    std::fs::write(&pack, &b).unwrap();
    let out = romlib(&["repair", "-r", &o, "--json"]);
    assert!(out.status.success());
    let v = stdout_obj(&s, &out);
    assert_eq!(v["repaired"][0]["path"], "packs/pack-0001.pkg", "{v}");
    // Beyond the parity: exit 1, the result lists the file.
    let len = b.len();
    b.fill(0);
    std::fs::write(&pack, &b[..len]).unwrap();
    let out = romlib(&["repair", "-r", &o, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = stdout_obj(&s, &out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["unrepaired"][0]["path"], "packs/pack-0001.pkg", "{v}");
}
