//! `romlib-device verify` (a game in a library, or with `--installed` the games on the
//! card) and `repair` (an installed game's damaged files, from a library).

use super::json::Obj;
use super::output::Output;
use super::reporter::{ProgressMode, Reporter};
use super::{library, trust, usage_layout, Failure};
use crate::chunks::decoder::RuzstdDecoder;
use crate::install::{
    check_installed, count, installed_manifest, installed_titles, layout, repair_installed,
    verify_game, InstalledCheck,
};
use crate::play::read::Game;
use crate::{Error, Library, Result};
use argh::FromArgs;
use std::path::{Path, PathBuf};

#[derive(FromArgs)]
/// Check every chunk and file of a game in a library against its signed manifest; or,
/// with --installed, an installed game's files (bit rot on the card). Writes nothing;
/// exit 1 on any damage.
#[argh(subcommand, name = "verify")]
pub struct VerifyCmd {
    #[argh(option, short = 'g')]
    /// title id (or, in a library, the path of a .manifest file)
    pub game: Option<String>,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    pub romlib: Option<PathBuf>,
    #[argh(switch)]
    /// check the installed copy in --install-dir instead, against the signed manifest kept
    /// with it, naming the byte ranges that differ
    pub installed: bool,
    #[argh(option)]
    /// where games are installed (with --installed)
    pub install_dir: Option<PathBuf>,
    #[argh(switch)]
    /// with --installed: every game installed there
    pub all: bool,
    #[argh(option)]
    /// with --installed: the layout the games were installed with (looked for in its
    /// system folders under --install-dir)
    pub layout: Option<String>,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys)
    pub trusted_key: Vec<PathBuf>,
    #[argh(option, default = "8")]
    /// memory it may take, in MiB (default 8, for a 128 MiB handheld): chunks are decoded
    /// on every core this process may use, on as many threads as fit in it
    pub max_memory: u64,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub progress: ProgressMode,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub json: bool,
}

#[derive(FromArgs)]
/// Repair an installed game that `verify --installed` finds damaged: only the chunks that
/// differ are read from the library (or downloaded), the repaired files are checked and
/// swapped in; on any failure the game stays as it was.
#[argh(subcommand, name = "repair")]
pub struct RepairCmd {
    #[argh(option, short = 'g')]
    /// title id of the installed game
    pub game: String,
    #[argh(option)]
    /// where games are installed
    pub install_dir: PathBuf,
    #[argh(option)]
    /// the layout the game was installed with: it is looked for in that layout's system
    /// folders under --install-dir
    pub layout: Option<String>,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`, holding the same version
    pub romlib: Option<PathBuf>,
    #[argh(option)]
    /// a library on a web server instead (http[s]://HOST[:PORT]/PATH/)
    pub from: Option<String>,
    #[argh(option)]
    /// with an https:// --from: a PEM file of certificate authorities to trust besides the
    /// system's
    pub ca_file: Option<PathBuf>,
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
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub progress: ProgressMode,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub json: bool,
}

impl VerifyCmd {
    /// Checks the game (or the installed games) and reports it.
    pub fn run(self, out: &Output) -> Result<(), Failure> {
        let c = self;
        if c.installed {
            return verify_installed(c, out);
        }
        let (Some(romlib), Some(game)) = (&c.romlib, &c.game) else {
            return Err(Failure::Usage(
                "give -g GAME and -r LIBRARY (or --installed --install-dir DIR)".into(),
            ));
        };
        if c.install_dir.is_some() || c.all {
            return Err(Failure::Usage(
                "--install-dir and --all go with --installed".into(),
            ));
        }
        let lib = Library::open(romlib)?;
        let m = lib.open_game(game, &trust(&c.trusted_key)?)?;
        let title = m.body().title_id.clone();
        let progress = Reporter::new(c.progress, "verify", false);
        progress.phase(
            "verify",
            Some(&title),
            Some(m.body().total_size),
            Some(m.body().chunk_count),
        );
        let r = verify_game(
            &lib,
            &m,
            &mut RuzstdDecoder::default(),
            &progress,
            c.max_memory.saturating_mul(1 << 20),
        );
        progress.finish();
        let r = r?;
        out.result(
            Obj::new()
                .field("game", title.as_str())
                .field("files", r.files)
                .field("bytes", r.bytes)
                .field("chunks", r.chunks),
            &format!(
                "{title}: OK, {}, {} bytes, {} verified",
                count(r.files as usize, "file", "files"),
                r.bytes,
                count(r.chunks as usize, "chunk", "chunks"),
            ),
        );
        Ok(())
    }
}

impl RepairCmd {
    /// Repairs the installed game and reports it.
    pub fn run(self, out: &Output) -> Result<(), Failure> {
        repair(self, out)
    }
}

/// `verify --installed`: checks installed games against the signed manifests kept with
/// them; the report names every damaged or missing file and the byte ranges that differ.
fn verify_installed(c: VerifyCmd, out: &Output) -> Result<(), Failure> {
    let Some(dir) = &c.install_dir else {
        return Err(Failure::Usage("--installed needs --install-dir DIR".into()));
    };
    if c.romlib.is_some() {
        return Err(Failure::Usage(
            "--installed checks the installed copy and reads no library (`repair -r` does)".into(),
        ));
    }
    usage_layout(&c.layout)?;
    // (folder the game is in, title): with a layout, the game's system folder.
    let games: Vec<(PathBuf, String)> = match (&c.game, c.all) {
        (Some(g), false) => {
            let at = match &c.layout {
                Some(l) => layout::installed_dir(dir, l, g)?,
                None => dir.clone(),
            };
            vec![(at, g.clone())]
        }
        (None, true) => {
            if !dir.is_dir() {
                return Err(Error::NotFound {
                    path: dir.clone(),
                    what: "install folder",
                }
                .into());
            }
            let folders = match &c.layout {
                Some(l) => layout::layout_folders(dir, l)?,
                None => vec![dir.clone()],
            };
            let mut games = Vec::new();
            for f in folders {
                for t in installed_titles(&f)? {
                    games.push((f.clone(), t));
                }
            }
            if games.is_empty() && c.layout.is_none() {
                if let Some(e) = layout::needs_layout(dir) {
                    return Err(e.into());
                }
            }
            games
        }
        _ => {
            return Err(Failure::Usage(
                "give -g GAME or --all with --installed".into(),
            ))
        }
    };
    let store = trust(&c.trusted_key)?;
    let progress = Reporter::new(c.progress, "verify-installed", false);
    let (mut results, mut human, mut bad) = (Vec::new(), String::new(), 0usize);
    for (dir, t) in &games {
        let checked = installed_manifest(dir, t, &store).and_then(|m| {
            progress.phase(
                "verify-installed",
                Some(t),
                Some(m.body().total_size),
                Some(m.body().chunk_count),
            );
            let r = check_installed(dir, &m, &progress);
            progress.finish();
            r
        });
        let r = match checked {
            Ok(r) => r,
            // One game: its error is the command's. Several: it is one line of the report.
            Err(e) if c.all => {
                bad += 1;
                human.push_str(&format!("{t}: CANNOT CHECK: {e}\n"));
                results.push(installed_json(dir, t, None, Some(e.to_string())));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if r.ok() {
            human.push_str(&format!(
                "{t}: OK, {}, {} bytes, {} verified\n",
                count(r.files as usize, "file", "files"),
                r.bytes,
                count(r.chunks as usize, "chunk", "chunks"),
            ));
        } else {
            bad += 1;
            human.push_str(&format!(
                "{t}: DAMAGED: {}, {} bytes differ (`romlib-device repair` fetches only those)\n",
                count(r.damaged.len(), "file", "files"),
                r.bad_bytes()
            ));
            for d in &r.damaged {
                let ranges: Vec<String> = d
                    .ranges
                    .iter()
                    .map(|b| format!("{}+{}", b.offset, b.len))
                    .collect();
                let what = match d.state {
                    "missing" => "missing".to_string(),
                    "size" => format!("not {} bytes long", d.size),
                    _ => "damaged".to_string(),
                };
                human.push_str(&format!(
                    "  {}: {what}; bytes {}\n",
                    d.path,
                    if ranges.is_empty() {
                        "past the end".to_string()
                    } else {
                        ranges.join(", ")
                    }
                ));
            }
        }
        for x in &r.extra {
            human.push_str(&format!(
                "  {x}: not part of the game (yours; left alone)\n"
            ));
        }
        results.push(installed_json(dir, t, Some(&r), None));
    }
    human.push_str(&format!(
        "{} checked, {} damaged",
        count(games.len(), "game", "games"),
        bad
    ));
    out.result(
        Obj::new()
            .field("install_dir", dir.as_path())
            .field("games", results),
        &human,
    );
    if bad > 0 {
        Err(Failure::Reported)
    } else {
        Ok(())
    }
}

/// One game of `verify --installed`'s JSON.
fn installed_json(
    dir: &Path,
    title: &str,
    r: Option<&InstalledCheck>,
    error: Option<String>,
) -> Obj {
    let damaged: Vec<Obj> = r
        .map(|r| {
            r.damaged
                .iter()
                .map(|d| {
                    Obj::new()
                        .field("path", d.path.as_str())
                        .field("state", d.state)
                        .field("size", d.size)
                        .field("bad_bytes", d.bad_bytes)
                        .field(
                            "ranges",
                            d.ranges
                                .iter()
                                .map(|b| Obj::new().field("offset", b.offset).field("len", b.len))
                                .collect::<Vec<_>>(),
                        )
                })
                .collect()
        })
        .unwrap_or_default();
    Obj::new()
        .field("title", title)
        .field(
            "path",
            dir.join(r.and_then(|r| r.placed.as_deref()).unwrap_or(title))
                .as_path(),
        )
        .field("ok", r.is_some_and(InstalledCheck::ok))
        .field("files", r.map_or(0, |r| r.files))
        .field("bytes", r.map_or(0, |r| r.bytes))
        .field("chunks", r.map_or(0, |r| r.chunks))
        .field("bad_bytes", r.map_or(0, InstalledCheck::bad_bytes))
        .field("damaged", damaged)
        .field("extra", r.map(|r| r.extra.clone()).unwrap_or_default())
        .field("error", error)
}

/// `repair`: checks the installed game, then rewrites its damaged files from a library,
/// reading only the ranges that differ.
fn repair(mut c: RepairCmd, out: &Output) -> Result<(), Failure> {
    usage_layout(&c.layout)?;
    if let Some(l) = &c.layout {
        c.install_dir = layout::installed_dir(&c.install_dir, l, &c.game)?;
    }
    let store = trust(&c.trusted_key)?;
    let m = installed_manifest(&c.install_dir, &c.game, &store)?;
    // Nothing is read from the source until the check has found damage.
    let scratch = c.install_dir.join(crate::install::STAGING_DIR);
    let lib = library(&c.romlib, &c.from, &scratch, &c.net())?;
    let mut progress = Reporter::new(c.progress, "repair", false);
    if let Some(remote) = lib.remote_source() {
        progress.count_downloads(|| remote.downloaded());
    }
    progress.phase(
        "verify-installed",
        Some(&c.game),
        Some(m.body().total_size),
        Some(m.body().chunk_count),
    );
    let check = check_installed(&c.install_dir, &m, &progress);
    progress.finish();
    let check = check?;
    let path = c.install_dir.join(&c.game);
    if check.ok() {
        out.result(
            Obj::new()
                .field("game", c.game.as_str())
                .field("path", path.as_path())
                .field("files", 0u64)
                .field("bytes_replaced", 0u64)
                .field("bytes_kept", 0u64)
                .field("bytes_downloaded", 0u64)
                .field("requests", 0u64),
            &format!("{}: nothing to repair, every file is as signed", c.game),
        );
        return Ok(());
    }
    let source = Game::open(&lib, &c.game, &store, RuzstdDecoder::default())?;
    progress.phase("repair", Some(&c.game), Some(check.bad_bytes()), None);
    let r = repair_installed(&c.install_dir, &m, &check, &source, &progress);
    progress.finish();
    let r = r?;
    let (bytes, requests) = lib.remote_source().map_or((0, 0), |r| r.transferred());
    let mut human = format!(
        "repaired {} in {}: {} rewritten, {} bytes replaced, {} bytes kept",
        c.game,
        path.display(),
        count(r.files as usize, "file", "files"),
        r.bytes_replaced,
        r.bytes_kept
    );
    if lib.remote_source().is_some() {
        human.push_str(&format!(
            "; downloaded {bytes} bytes in {}",
            count(requests as usize, "request", "requests")
        ));
    }
    out.result(
        Obj::new()
            .field("game", c.game.as_str())
            .field("path", path.as_path())
            .field("files", r.files)
            .field("bytes_replaced", r.bytes_replaced)
            .field("bytes_kept", r.bytes_kept)
            .field("bytes_downloaded", bytes)
            .field("requests", requests),
        &human,
    );
    Ok(())
}
