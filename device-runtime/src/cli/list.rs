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
    #[argh(option, default = "30")]
    /// seconds before a stalled connection is given up (with --from; default 30)
    pub timeout: u64,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys)
    pub trusted_key: Vec<PathBuf>,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub json: bool,
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
            return Ok(list_installed(dir, &out)?);
        }
        if c.romlib.is_none() && c.from.is_none() {
            return Err(Failure::Usage(
                "give -r LIBRARY, --from URL or --install-dir DIR".into(),
            ));
        }
        let lib = library(
            &c.romlib,
            &c.from,
            &std::env::temp_dir(),
            c.timeout,
            &c.ca_file,
        )?;
        let store = match trust(&c.trusted_key) {
            Ok(s) => Some(s),
            Err(e) => {
                out.warn(&format!("{e}; every game is shown as UNTRUSTED"));
                None
            }
        };
        let titles = lib.titles()?;
        let mut damaged = None;
        // Each game is printed as it is read: memory stays flat however many there are.
        let items = titles.iter().map(|t| match lib.open_manifest(t) {
            Err(e) => {
                let line = format!("{t}\t-\tDAMAGED: {e}");
                let obj = Obj::new()
                    .field("title", t.as_str())
                    .field("name", None::<String>)
                    .field("size", None::<u64>)
                    .field("trusted", false)
                    .field("damaged", e.to_string());
                damaged = Some(e);
                (obj, line)
            }
            Ok(m) => {
                let (name, size) = (
                    m.unverified_body().display_name.clone(),
                    m.unverified_body().total_size,
                );
                let ok = store.as_ref().is_some_and(|s| m.verify(s).is_ok());
                let line = format!(
                    "{t}\t{name}\t{size} bytes\t{}",
                    if ok { "trusted" } else { "UNTRUSTED" }
                );
                let obj = Obj::new()
                    .field("title", t.as_str())
                    .field("name", name)
                    .field("size", size)
                    .field("trusted", ok)
                    .field("damaged", None::<String>);
                (obj, line)
            }
        });
        // The list is the report, damaged games marked; a damaged one fails the command.
        out.result_list(
            Obj::new().field("library", lib.root()),
            "games",
            items,
            || count(titles.len(), "game", "games"),
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
pub fn list_installed(dir: &Path, out: &Output) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error::NotFound {
            path: dir.to_path_buf(),
            what: "install folder",
        });
    }
    let games = installed_games(dir)?;
    let found = leftovers(dir)?;
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
