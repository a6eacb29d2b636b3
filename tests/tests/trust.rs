//! Keys come from outside the library (issue 27): the host's reading commands trust
//! `--trusted-key`, else the user's trust store, never the library's own `keys/`. Whoever
//! can write a library can add a key and re-sign a game; the host then calls that game
//! untrusted instead of "library OK".

use romlib_tests::schema::{schema, stdout_obj};
use romlib_tests::*;
use std::fs;

fn key_ids(v: &serde_json::Value) -> Vec<String> {
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_key_planted_in_the_library_is_not_trusted_by_the_host() {
    let w = Workspace::new();
    let mut r = Rng::new(270);
    write(&w.p("in"), "game/game.bin", &r.bytes(40_000));
    ok(w.build("in", "lib", &[]));
    // keygen put the workspace key in the trust store.
    let listed = stdout_obj(&schema(), &romlib(&["trust", "list", "--json"]));
    let ours = key_ids(&listed);
    assert_eq!(ours.len(), 1, "{listed}");
    assert!(listed["store"]
        .as_str()
        .unwrap()
        .starts_with(&*config_dir().to_string_lossy()));
    ok(romlib(&["verify", "-r", &w.s("lib")]));

    // Someone who can write the library: their own key, kept out of their trust store
    // here, a game re-signed with it, and the key dropped into the library's keys/.
    ok(romlib(&[
        "keygen",
        "--secret-key",
        &w.s("evil.sec"),
        "--public-key",
        &w.s("evil.pub"),
        "--no-trust",
    ]));
    fs::write(w.p("in/game/game.bin"), r.bytes(40_000)).unwrap();
    ok(romlib(&[
        "build",
        "-i",
        &w.s("in"),
        "-o",
        &w.s("lib"),
        "--signing-key",
        &w.s("evil.sec"),
    ]));
    let keys: Vec<String> = fs::read_dir(w.p("lib/keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(keys.len(), 2, "the library carries both keys: {keys:?}");

    // The host does not take the library's word for it.
    let out = romlib(&["verify", "-r", &w.s("lib")]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("game.manifest") && report.contains("not in the trust store"),
        "{report}"
    );
    let out = romlib(&[
        "install",
        "-r",
        &w.s("lib"),
        "-g",
        "game",
        "--install-dir",
        &w.s("inst"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "untrusted", "{v}");
    assert!(!w.p("inst/game").exists());
    fails(
        romlib(&["cat", "-r", &w.s("lib"), "-g", "game", "game.bin"]),
        1,
        &["game"],
    );

    // Trusting the key is the user's decision, made with `romlib trust`.
    let added = stdout_obj(
        &schema(),
        &romlib(&["trust", "add", &w.s("evil.pub"), "--json"]),
    );
    let evil = key_ids(&added);
    ok(romlib(&[
        "install",
        "-r",
        &w.s("lib"),
        "-g",
        "game",
        "--install-dir",
        &w.s("inst"),
    ]));
    assert_eq!(
        key_ids(&json_of(romlib(&["trust", "list", "--json"]))).len(),
        2
    );
    ok(romlib(&["trust", "remove", &evil[0]]));
    let shown = ok(romlib(&["show", "-r", &w.s("lib"), "-g", "game"]));
    assert!(shown.contains("NOT VERIFIED"), "{shown}");
    fails(
        romlib(&["cat", "-r", &w.s("lib"), "-g", "game", "game.bin"]),
        1,
        &["game"],
    );
    // A secret key is refused where a public key is expected, and an unknown id named.
    fails(
        romlib(&["trust", "add", &w.s("k.sec")]),
        1,
        &["k.sec", "secret key"],
    );
    fails(
        romlib(&["trust", "remove", "0123456789abcdef"]),
        2,
        &["0123456789abcdef", "romlib trust list"],
    );
    // An explicit --trusted-key still decides alone.
    ok(romlib(&[
        "verify",
        "-r",
        &w.s("lib"),
        "--trusted-key",
        &w.s("evil.pub"),
    ]));
}
