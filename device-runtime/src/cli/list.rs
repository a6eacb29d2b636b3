//! `romlib-device list-games`: a library's games and whether each is signed by a trusted
//! key, or, with `--install-dir`, the games installed in a folder and what interrupted
//! operations left there.

use super::json::Obj;
use super::output::Output;
use super::reporter::ProgressMode;
use super::{library, trust, Failure, PROG};
use crate::install::{count, installed_games, leftovers, leftovers_note};
use crate::{Error, Result};
use argh::FromArgs;
use std::path::{Path, PathBuf};

#[derive(FromArgs)]
/// List the games of a library and whether each is signed by a trusted key; or, with
/// --install-dir alone, the games installed there and anything interrupted operations left.
#[argh(subcommand, name = "list-games")]
pub struct ListCmd {
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    pub romlib: Option<PathBuf>,
    #[argh(option)]
    /// library on a web server instead (http[s]://HOST[:PORT]/PATH/; lists its catalog.txt)
    pub from: Option<String>,
    #[argh(option)]
    /// with an https:// --from: a PEM file of certificate authorities to trust besides the
    /// system's (for a server with a private CA)
    pub ca_file: Option<PathBuf>,
    #[argh(option)]
    /// list the games installed in this folder instead of a library
    pub install_dir: Option<PathBuf>,
    #[argh(option)]
    /// with --install-dir: the layout the games were installed with (they are looked for
    /// in its system folders)
    pub layout: Option<String>,
    #[argh(option, default = "30")]
    /// seconds before a stalled connection is given up (with --from; default 30)
    pub timeout: u64,
    #[argh(option, default = "super::DEFAULT_MIN_RATE")]
    /// with --from: bytes per second below which a server that keeps sending is given up
    /// after 20 s of waiting on it (error code network; default 4096, 0 turns it off)
    pub min_rate: u64,
    #[argh(switch)]
    /// with --from: read the library even though its signed snapshot expired (a server
    /// left stale, or this device's clock wrong; error code expired without it)
    pub allow_expired: bool,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys)
    pub trusted_key: Vec<PathBuf>,
    #[argh(option)]
    /// only games of this system (case-insensitive: gb, snes, ...)
    pub system: Option<String>,
    #[argh(option)]
    /// only games where every word occurs in the title, name, description, system,
    /// region or tags (case-insensitive)
    pub search: Option<String>,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub json: bool,
}

/// Whether manifest body `b` passes `--system` and `--search` (the host's rules).
fn wanted(b: &romlib_proto::Manifest, system: Option<&str>, search: Option<&str>) -> bool {
    if system.is_some_and(|s| !b.system.trim().eq_ignore_ascii_case(s.trim())) {
        return false;
    }
    let Some(q) = search else { return true };
    let mut hay = [
        &b.title_id,
        &b.display_name,
        &b.description,
        &b.system,
        &b.region,
    ]
    .map(|s| s.to_lowercase())
    .join("\n");
    for t in &b.tags {
        hay.push('\n');
        hay.push_str(&t.to_lowercase());
    }
    q.split_whitespace()
        .all(|w| hay.contains(&w.to_lowercase()))
}

impl ListCmd {
    /// Lists the library (or the install folder) and reports it.
    pub fn run(self, out: &Output) -> Result<(), Failure> {
        let c = self;
        if let Some(dir) = &c.install_dir {
            if c.romlib.is_some() || c.from.is_some() {
                return Err(Failure::Usage(
                    "give -r LIBRARY, --from URL or --install-dir DIR, not several".into(),
                ));
            }
            let out = Output::new(PROG, "list-installed", c.json, ProgressMode::None);
            super::usage_layout(&c.layout)?;
            return Ok(list_installed(dir, c.layout.as_deref(), &out)?);
        }
        if c.romlib.is_none() && c.from.is_none() {
            return Err(Failure::Usage(
                "give -r LIBRARY, --from URL or --install-dir DIR".into(),
            ));
        }
        if c.layout.is_some() {
            return Err(Failure::Usage(
                "--layout goes with --install-dir (a library lists every system)".into(),
            ));
        }
        let lib = library(&c.romlib, &c.from, &std::env::temp_dir(), &c.net())?;
        let store = match trust(&c.trusted_key) {
            Ok(s) => Some(s),
            Err(e) => {
                out.warn(&format!("{e}; every game is shown as UNTRUSTED"));
                None
            }
        };
        let titles = lib.titles()?;
        let mut damaged = None;
        let shown = std::cell::Cell::new(0usize);
        let (system, search) = (c.system.as_deref(), c.search.as_deref());
        // Each game is printed as it is read: memory stays flat however many there are.
        let items = titles.iter().filter_map(|t| match lib.open_manifest(t) {
            Err(e) => {
                let line = format!("{t}\t-\tDAMAGED: {e}");
                let obj = Obj::new()
                    .field("title", t.as_str())
                    .field("title_id", t.as_str())
                    .field("name", None::<String>)
                    .field("display_name", None::<String>)
                    .field("system", None::<String>)
                    .field("region", None::<String>)
                    .field("languages", Vec::<String>::new())
                    .field("tags", Vec::<String>::new())
                    .field("size", None::<u64>)
                    .field("trusted", false)
                    .field("damaged", e.to_string());
                damaged = Some(e);
                shown.set(shown.get() + 1);
                Some((obj, line))
            }
            Ok(m) => {
                let b = m.unverified_body();
                if !wanted(b, system, search) {
                    return None;
                }
                let line = format!("{t}\t{}\t{} bytes", b.display_name, b.total_size);
                let obj = Obj::new()
                    .field("title", t.as_str())
                    .field("title_id", t.as_str())
                    .field("name", b.display_name.clone())
                    .field("display_name", b.display_name.clone())
                    .field("system", b.system.clone())
                    .field("region", b.region.clone())
                    .field("languages", b.languages.clone())
                    .field("tags", b.tags.clone())
                    .field("size", b.total_size);
                let ok = store.as_ref().is_some_and(|s| m.verify(s).is_ok());
                let line = format!("{line}\t{}", if ok { "trusted" } else { "UNTRUSTED" });
                let obj = obj.field("trusted", ok).field("damaged", None::<String>);
                shown.set(shown.get() + 1);
                Some((obj, line))
            }
        });
        // The list is the report, damaged games marked; a damaged one fails the command.
        out.result_list(
            Obj::new().field("library", lib.root()),
            "games",
            items,
            || count(shown.get(), "game", "games"),
        );
        match damaged {
            Some(e) if !out.json() => {
                eprintln!("{PROG}: {e}");
                Err(Failure::Reported)
            }
            Some(_) => Err(Failure::Reported),
            None => Ok(()),
        }
    }
}

/// `list-games --install-dir DIR`: the games installed in `dir` and the leftovers of
/// interrupted operations.
pub fn list_installed(dir: &Path, layout: Option<&str>, out: &Output) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error::NotFound {
            path: dir.to_path_buf(),
            what: "install folder",
        });
    }
    let folders = match layout {
        Some(l) => crate::install::layout::layout_folders(dir, l)?,
        None => vec![dir.to_path_buf()],
    };
    let (mut games, mut found) = (Vec::new(), Vec::new());
    for f in &folders {
        games.extend(installed_games(f)?);
        found.extend(leftovers(f)?);
    }
    if layout.is_none() && games.is_empty() && found.is_empty() {
        if let Some(e) = crate::install::layout::needs_layout(dir) {
            return Err(e);
        }
    }
    let mut human = String::new();
    for g in &games {
        human.push_str(&format!("{}\t{}\t{} bytes\n", g.title, g.state, g.bytes));
    }
    human.push_str(&count(games.len(), "game", "games"));
    for l in &found {
        human.push_str(&format!(
            "\n{}\t{} bytes\t{}",
            crate::folder::shown(&l.path),
            l.bytes,
            l.describe()
        ));
    }
    if let Some(note) = leftovers_note(&found) {
        human.push_str(&format!("\n{note}"));
    }
    out.result(
        Obj::new()
            .field("install_dir", dir)
            .field(
                "games",
                games
                    .iter()
                    .map(|g| {
                        Obj::new()
                            .field("title", g.title.as_str())
                            .field("path", g.path.as_path())
                            .field("bytes", g.bytes)
                            .field("state", g.state)
                    })
                    .collect::<Vec<_>>(),
            )
            .field(
                "leftovers",
                found
                    .iter()
                    .map(|l| {
                        Obj::new()
                            .field("path", l.path.as_path())
                            .field("bytes", l.bytes)
                            .field("what", l.describe())
                            .field("left_alone", l.left_alone())
                    })
                    .collect::<Vec<_>>(),
            ),
        &human,
    );
    Ok(())
}
