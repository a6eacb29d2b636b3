//! What a command prints when it ends: its result, warnings and its error, as text for a
//! person or, with `--json` and `--progress json`, as JSON for a front end (docs/handhelds.md,
//! "Machine-readable output").
//!
//! - `--json`: standard output holds exactly one JSON object, the result or the error
//!   (for `cat`, whose standard output is the file, the error goes to standard error).
//! - `--progress json`: every line on standard error is a JSON object; the last one is
//!   the result or the error.

use super::json::{envelope, Obj};
use super::reporter::ProgressMode;
use std::io::Write;

/// How command `op` of binary `prog` reports its end.
#[derive(Debug, Clone)]
pub struct Output {
    prog: &'static str,
    op: &'static str,
    json: bool,
    progress_json: bool,
    stdout_is_data: bool,
}

impl Output {
    /// Output of command `op`; `json` is `--json`.
    pub fn new(prog: &'static str, op: &'static str, json: bool, progress: ProgressMode) -> Self {
        Self {
            prog,
            op,
            json,
            progress_json: progress.is_json(),
            stdout_is_data: false,
        }
    }

    /// The same, for a command whose standard output is data (`cat`).
    pub fn data_on_stdout(mut self) -> Self {
        self.stdout_is_data = true;
        self
    }

    /// Whether the result goes out as JSON on standard output.
    pub fn json(&self) -> bool {
        self.json
    }

    /// The fields every object starts with.
    fn head(&self, kind: &'static str) -> Obj {
        envelope(kind, self.op)
    }

    /// Reports the command's result: `fields` as JSON where asked, else `human` (lines for
    /// standard output, printed as given).
    pub fn result(&self, fields: Obj, human: &str) {
        let obj = self.head("result").extend(fields);
        if self.progress_json {
            eprintln!("{}", obj.to_line());
        }
        if self.json {
            println!("{}", obj.to_line());
        } else if !human.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(human.as_bytes());
            if !human.ends_with('\n') {
                let _ = out.write_all(b"\n");
            }
        }
    }

    /// Reports a result whose last field, `name`, is a list as long as the library: each
    /// item is written as it comes (`items` gives its JSON and its line of text), so
    /// memory does not grow with the list. `footer` ends the text.
    pub fn result_list(
        &self,
        fields: Obj,
        name: &'static str,
        items: impl Iterator<Item = (Obj, String)>,
        footer: impl FnOnce() -> String,
    ) {
        let head = self.head("result").extend(fields).to_line();
        // The object without its closing brace, then the list.
        let open = format!("{},\"{name}\":[", &head[..head.len() - 1]);
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut err = self.progress_json.then(|| std::io::stderr().lock());
        if self.json {
            let _ = out.write_all(open.as_bytes());
        }
        if let Some(e) = err.as_mut() {
            let _ = e.write_all(open.as_bytes());
        }
        for (i, (obj, line)) in items.enumerate() {
            let sep = if i > 0 { "," } else { "" };
            if self.json || err.is_some() {
                let json = obj.to_line();
                if self.json {
                    let _ = write!(out, "{sep}{json}");
                }
                if let Some(e) = err.as_mut() {
                    let _ = write!(e, "{sep}{json}");
                }
            }
            if !self.json {
                let _ = writeln!(out, "{line}");
            }
        }
        if self.json {
            let _ = out.write_all(b"]}\n");
        } else {
            let _ = writeln!(out, "{}", footer());
        }
        if let Some(e) = err.as_mut() {
            let _ = e.write_all(b"]}\n");
        }
        let _ = out.flush();
    }

    /// Reports a warning: one line on standard error (a JSON object with `--progress
    /// json`).
    pub fn warn(&self, message: &str) {
        if self.progress_json {
            eprintln!(
                "{}",
                self.head("warning").field("message", message).to_line()
            );
        } else {
            eprintln!("{}: {message}", self.prog);
        }
    }

    /// Reports that the command failed with `message` (code `code`, about `path`) and
    /// will exit with `exit`.
    pub fn error(&self, code: &str, message: &str, path: Option<&str>, exit: u8) {
        let obj = self
            .head("error")
            .field("code", code)
            .field("message", message)
            .field("path", path)
            .field("exit", u64::from(exit));
        if self.progress_json || (self.json && self.stdout_is_data) {
            eprintln!("{}", obj.to_line());
        } else {
            eprintln!("{}: {message}", self.prog);
        }
        if self.json && !self.stdout_is_data {
            println!("{}", obj.to_line());
        }
    }

    /// Reports a device error (its code and subject come with it).
    pub fn device_error(&self, e: &crate::Error) {
        self.error(
            e.code(),
            &e.to_string(),
            Some(&e.subject()),
            e.exit_status(),
        );
    }
}

/// Reports a command line that could not be parsed, before any command's [`Output`]
/// exists: JSON when the arguments ask for it, else argh's text and a hint.
pub fn usage_error(prog: &'static str, args: &[String], message: &str) {
    let json = args.iter().any(|a| a == "--json");
    let progress_json = args
        .windows(2)
        .any(|w| w[0] == "--progress" && w[1] == "json");
    if json || progress_json {
        let mode = if progress_json {
            ProgressMode::Json
        } else {
            ProgressMode::None
        };
        let op = args.get(1).map_or("", |s| s.as_str());
        let out = Output::new(prog, op_name(op), json, mode);
        out.error("usage", message.trim_end(), None, 2);
    } else {
        eprintln!("{}", message.trim_end());
        // Point at the command's own help when the command was recognised.
        match op_name(args.get(1).map_or("", |s| s.as_str())) {
            "" => eprintln!("Run {prog} --help for usage."),
            op => eprintln!("Run {prog} {op} --help for usage."),
        }
    }
}

/// `op` as a `'static` name when it is one of the commands, else `""`.
fn op_name(op: &str) -> &'static str {
    const OPS: &[&str] = &[
        "list-games",
        "install",
        "uninstall",
        "verify",
        "cat",
        "mount",
        "cleanup",
        "build",
        "build-packs",
        "generate-manifests",
        "export",
        "import",
        "keygen",
        "show",
        "serve",
        "rebuild-index",
        "train-dict",
        "sign-file",
        "verify-file",
        "remove",
        "parity",
        "repair",
        "publish",
    ];
    OPS.iter().find(|o| **o == op).copied().unwrap_or("")
}
