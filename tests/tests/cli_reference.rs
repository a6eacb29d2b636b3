//! docs/cli.md is the `--help` of both binaries and of each of their commands, exactly as
//! they print it: this test rebuilds the page from the binaries and fails when the committed
//! page differs, so the reference cannot drift from the code. After changing a command's
//! help, regenerate the page with
//! `ROMLIB_BLESS=1 cargo test -p romlib-tests --test cli_reference`.

use romlib_tests::*;
use std::process::Command;

/// What `args` prints on standard output; it must succeed.
fn help(bin_name: &str, args: &[&str]) -> String {
    let out = Command::new(bin(bin_name)).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{bin_name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The command names of a top-level `--help`: the first word of each line of its
/// "Commands:" list that starts two spaces in (descriptions are indented further).
fn commands(top: &str) -> Vec<String> {
    let Some(list) = top.split("\nCommands:\n").nth(1) else {
        return Vec::new();
    };
    list.lines()
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn page() -> String {
    let mut md = String::from(
        "# Command-line reference\n\n\
         Both binaries and every command, as their `--help` prints them (this page is \
         generated from the binaries,\nand a test fails when it drifts: after changing a \
         help text, run\n`ROMLIB_BLESS=1 cargo test -p romlib-tests --test cli_reference`). \
         Exit codes: 0 success, 1 failure,\n2 usage; the error codes of `--json` output are in \
         [handhelds.md](handhelds.md#exit-codes-and-error-codes).\n",
    );
    for (name, what) in [
        ("romlib", "the builder, on a computer"),
        ("romlib-device", "the device runtime, on a handheld"),
    ] {
        let top = help(name, &["--help"]);
        let cmds = commands(&top);
        assert!(cmds.len() >= 6, "{name}: commands not found in\n{top}");
        md.push_str(&format!("\n## `{name}`: {what}\n\n"));
        md.push_str(
            &cmds
                .iter()
                .map(|c| format!("[{c}](#{name}-{c})"))
                .collect::<Vec<_>>()
                .join(" · "),
        );
        md.push_str(&format!("\n\n```text\n{}\n```\n", top.trim_end()));
        for c in &cmds {
            let text = help(name, &[c, "--help"]);
            md.push_str(&format!(
                "\n### {name} {c}\n\n```text\n{}\n```\n",
                text.trim_end()
            ));
        }
    }
    md
}

#[test]
fn docs_cli_md_is_the_help_of_both_binaries() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md");
    let want = page();
    if std::env::var_os("ROMLIB_BLESS").is_some() {
        std::fs::write(path, &want).unwrap();
        return;
    }
    let got = std::fs::read_to_string(path).unwrap_or_default();
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "docs/cli.md differs from the binaries' --help from line {}:\n  page:   {:?}\n  binary: {:?}\n\
             regenerate it: ROMLIB_BLESS=1 cargo test -p romlib-tests --test cli_reference",
            line + 1,
            got.lines().nth(line).unwrap_or("(end)"),
            want.lines().nth(line).unwrap_or("(end)")
        );
    }
}
