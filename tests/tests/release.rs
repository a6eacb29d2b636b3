//! Release files: `romlib sign-file` / `verify-file` (the signature a release's SHA256SUMS
//! carries) and the argument handling of release/build.sh (the full build is run by hand:
//! docs/platforms.md, "Release artefacts").

use romlib_tests::*;
use std::process::Command;

#[test]
fn a_signed_file_verifies_and_any_change_or_other_key_is_refused() {
    let w = Workspace::new();
    ok(romlib(&[
        "keygen",
        "--secret-key",
        &w.s("o.sec"),
        "--public-key",
        &w.s("o.pub"),
    ]));
    // `romlib verify-file SHA256SUMS --trusted-key KEY EXTRA...`
    let verify = |key: &str, extra: &[&str]| {
        let mut args = vec![
            "verify-file".to_string(),
            w.s("SHA256SUMS"),
            "--trusted-key".into(),
            w.s(key),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        romlib(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let sums = w.p("SHA256SUMS");
    std::fs::write(&sums, b"abc  romlib\n").unwrap();
    let out = ok(romlib(&[
        "sign-file",
        &w.s("SHA256SUMS"),
        "--signing-key",
        &w.s("k.sec"),
    ]));
    assert!(out.contains("SHA256SUMS.sig"), "{out}");
    ok(verify("k.pub", &[]));
    // Signing again gives the same line (Ed25519 is deterministic).
    let sig = std::fs::read(w.p("SHA256SUMS.sig")).unwrap();
    ok(romlib(&[
        "sign-file",
        &w.s("SHA256SUMS"),
        "--signing-key",
        &w.s("k.sec"),
        "-o",
        &w.s("again.sig"),
    ]));
    assert_eq!(sig, std::fs::read(w.p("again.sig")).unwrap());
    // Another key.
    fails(
        verify("o.pub", &[]),
        1,
        &["SHA256SUMS.sig", "not by the trusted key"],
    );
    // One byte more, one byte changed.
    std::fs::write(&sums, b"abc  romlib\n\n").unwrap();
    fails(
        verify("k.pub", &[]),
        1,
        &["SHA256SUMS", "does not match its signature"],
    );
    std::fs::write(&sums, b"abd  romlib\n").unwrap();
    fails(verify("k.pub", &[]), 1, &["does not match its signature"]);
    std::fs::write(&sums, b"abc  romlib\n").unwrap();
    // A damaged signature: truncated, a flipped digit in the signature, not a signature.
    for (name, bytes) in [
        ("short.sig", sig[..sig.len() / 2].to_vec()),
        ("flipped.sig", {
            let mut b = sig.clone();
            let i = b.len() - 5;
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            b
        }),
        ("junk.sig", b"hello\n".to_vec()),
        ("empty.sig", Vec::new()),
    ] {
        std::fs::write(w.p(name), &bytes).unwrap();
        fails(
            verify("k.pub", &["--signature", &w.s(name)]),
            1,
            &[if name == "flipped.sig" {
                "does not match"
            } else {
                name
            }],
        );
    }
    // Keys of the wrong kind, missing files.
    fails(
        romlib(&[
            "sign-file",
            &w.s("SHA256SUMS"),
            "--signing-key",
            &w.s("k.pub"),
        ]),
        1,
        &["k.pub", "public key"],
    );
    fails(verify("k.sec", &[]), 1, &["k.sec", "secret key"]);
    fails(
        romlib(&["sign-file", &w.s("missing"), "--signing-key", &w.s("k.sec")]),
        1,
        &["missing"],
    );
    assert!(!w.p("missing.sig").exists());
}

#[test]
fn the_release_script_checks_its_arguments() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../release/build.sh");
    let help = Command::new("bash")
        .args([script, "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--key"));
    for args in [
        vec!["--bogus"],
        vec!["--key"],
        vec!["--key", "/nonexistent/release.sec"],
    ] {
        let out = Command::new("bash")
            .arg(script)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
}
