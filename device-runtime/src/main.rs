//! `romlib-device`: the handheld's command line. Exit codes: 0 success, 1 failure, 2 usage.

use argh::FromArgs;
use romlib_device::chunks::decoder::RuzstdDecoder;
use romlib_device::cli::json::Obj;
use romlib_device::cli::output::Output;
use romlib_device::cli::play::{CatCmd, MountCmd};
use romlib_device::cli::reporter::{ProgressMode, Reporter};
use romlib_device::cli::version_text;
use romlib_device::install::{
    check_installed, cleanup, count, install_game_with, installed_games, installed_manifest,
    installed_titles, layout, leftovers, leftovers_note, repair_installed, uninstall,
    uninstalled_message, verify_game, InstallOptions, InstalledCheck,
};
use romlib_device::play::read::Game;
use romlib_device::trusted::DEFAULT_TRUST_DIR;
use romlib_device::{Error, Library, Result, TrustStore};
use std::path::{Path, PathBuf};

#[derive(FromArgs)]
/// romlib-device: verify, install and read games from a romlib library.
struct Cli {
    #[argh(switch)]
    /// print the version and the formats this binary reads and writes, then exit
    version: bool,
    #[argh(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    List(ListCmd),
    Install(InstallCmd),
    Uninstall(UninstallCmd),
    Verify(VerifyCmd),
    Cat(CatCmd),
    Mount(MountCmd),
    Repair(RepairCmd),
    Cleanup(CleanupCmd),
}

#[derive(FromArgs)]
/// List the games of a library and whether each is signed by a trusted key; or, with
/// --install-dir alone, the games installed there and anything interrupted operations left.
#[argh(subcommand, name = "list-games")]
struct ListCmd {
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: Option<PathBuf>,
    #[argh(option)]
    /// library on a web server instead (http[s]://HOST[:PORT]/PATH/; lists its catalog.txt)
    from: Option<String>,
    #[argh(option)]
    /// with an https:// --from: a PEM file of certificate authorities to trust besides the
    /// system's (for a server with a private CA)
    ca_file: Option<PathBuf>,
    #[argh(option)]
    /// list the games installed in this folder instead of a library
    install_dir: Option<PathBuf>,
    #[argh(option, default = "30")]
    /// seconds before a stalled connection is given up (with --from; default 30)
    timeout: u64,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys)
    trusted_key: Vec<PathBuf>,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    json: bool,
}

#[derive(FromArgs)]
/// Verify and install a game; it appears only once complete.
#[argh(subcommand, name = "install")]
struct InstallCmd {
    #[argh(option, short = 'g')]
    /// title id, or the path of a .manifest file
    game: String,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: Option<PathBuf>,
    #[argh(option)]
    /// install from a library on a web server instead (http[s]://HOST[:PORT]/PATH/; any
    /// static server, an S3 bucket or `romlib serve`): fetches the manifest, the locator and
    /// only the chunk records needed, in ranged requests (from a server without ranges, by
    /// reading the packs through once, with a warning); follows redirects, never from https
    /// down to http
    from: Option<String>,
    #[argh(option)]
    /// with an https:// --from: a PEM file of certificate authorities to trust besides the
    /// system's (SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt and the like)
    ca_file: Option<PathBuf>,
    #[argh(option, default = "30")]
    /// seconds before a stalled connection is given up (with --from; default 30)
    timeout: u64,
    #[argh(option)]
    /// with --from: a library folder on this device to take chunks from instead of
    /// downloading them (installed games and a cut-off earlier attempt are always reused)
    reuse: Option<PathBuf>,
    #[argh(option)]
    /// where games are installed
    install_dir: PathBuf,
    #[argh(option)]
    /// install into the folder a handheld OS expects for the game's system (from its
    /// signed manifest): muos, knulli (batocera), minui (nextui), onion, arkos (darkos);
    /// --install-dir is then the OS's ROM root
    layout: Option<String>,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys)
    trusted_key: Vec<PathBuf>,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    progress: ProgressMode,
    #[argh(switch)]
    /// do not refuse a game the file system seems to have no room for (a compressing file
    /// system holds more than its free space says); a full disk still leaves nothing
    no_room_check: bool,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    json: bool,
}

#[derive(FromArgs)]
/// Remove a game that romlib installed.
#[argh(subcommand, name = "uninstall")]
struct UninstallCmd {
    #[argh(option, short = 't')]
    /// title id
    title_id: String,
    #[argh(option)]
    /// where games are installed
    install_dir: PathBuf,
    #[argh(option)]
    /// the layout the game was installed with: it is looked for in that layout's system
    /// folders under --install-dir
    layout: Option<String>,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    json: bool,
}

#[derive(FromArgs)]
/// Check every chunk and file of a game in a library against its signed manifest; or,
/// with --installed, an installed game's files (bit rot on the card). Writes nothing;
/// exit 1 on any damage.
#[argh(subcommand, name = "verify")]
struct VerifyCmd {
    #[argh(option, short = 'g')]
    /// title id (or, in a library, the path of a .manifest file)
    game: Option<String>,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: Option<PathBuf>,
    #[argh(switch)]
    /// check the installed copy in --install-dir instead, against the signed manifest kept
    /// with it, naming the byte ranges that differ
    installed: bool,
    #[argh(option)]
    /// where games are installed (with --installed)
    install_dir: Option<PathBuf>,
    #[argh(switch)]
    /// with --installed: every game installed there
    all: bool,
    #[argh(option)]
    /// with --installed: the layout the games were installed with (looked for in its
    /// system folders under --install-dir)
    layout: Option<String>,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys)
    trusted_key: Vec<PathBuf>,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    progress: ProgressMode,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    json: bool,
}

#[derive(FromArgs)]
/// Repair an installed game that `verify --installed` finds damaged: only the chunks that
/// differ are read from the library (or downloaded), the repaired files are checked and
/// swapped in; on any failure the game stays as it was.
#[argh(subcommand, name = "repair")]
struct RepairCmd {
    #[argh(option, short = 'g')]
    /// title id of the installed game
    game: String,
    #[argh(option)]
    /// where games are installed
    install_dir: PathBuf,
    #[argh(option)]
    /// the layout the game was installed with: it is looked for in that layout's system
    /// folders under --install-dir
    layout: Option<String>,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`, holding the same version
    romlib: Option<PathBuf>,
    #[argh(option)]
    /// a library on a web server instead (http[s]://HOST[:PORT]/PATH/)
    from: Option<String>,
    #[argh(option)]
    /// with an https:// --from: a PEM file of certificate authorities to trust besides the
    /// system's
    ca_file: Option<PathBuf>,
    #[argh(option, default = "30")]
    /// seconds before a stalled connection is given up (with --from; default 30)
    timeout: u64,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys)
    trusted_key: Vec<PathBuf>,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    progress: ProgressMode,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    json: bool,
}

#[derive(FromArgs)]
/// Finish or roll back interrupted installs and uninstalls in an install folder and remove
/// what they left (unfinished staging, cut-off downloads kept for reuse).
#[argh(subcommand, name = "cleanup")]
struct CleanupCmd {
    #[argh(option)]
    /// where games are installed
    install_dir: PathBuf,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    json: bool,
}

fn main() {
    let cli: Cli = romlib_device::cli::parse_args(PROG);
    let Some(cmd) = cli.cmd else {
        if cli.version {
            println!("{}", version_text(PROG));
            std::process::exit(0);
        }
        eprintln!("{PROG}: give a command, or --version; run {PROG} --help for usage");
        std::process::exit(2);
    };
    let out = output(&cmd);
    if let Err(e) = run(cmd, &out) {
        match e {
            Failure::Usage(msg) => {
                out.error("usage", &msg, None, 2);
                std::process::exit(2);
            }
            Failure::Device(e) => {
                out.device_error(&e);
                std::process::exit(1);
            }
            Failure::Reported => std::process::exit(1),
        }
    }
}

const PROG: &str = "romlib-device";

/// Why a command failed.
enum Failure {
    /// The arguments do not go together (exit 2).
    Usage(String),
    /// The operation failed (exit 1).
    Device(Error),
    /// The operation failed and its result said so (exit 1).
    Reported,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Device(e)
    }
}

/// How command `cmd` reports its end.
fn output(cmd: &Cmd) -> Output {
    let none = ProgressMode::None;
    match cmd {
        Cmd::List(c) => Output::new(PROG, "list-games", c.json, none),
        Cmd::Install(c) => Output::new(PROG, "install", c.json, c.progress),
        Cmd::Uninstall(c) => Output::new(PROG, "uninstall", c.json, none),
        Cmd::Verify(c) if c.installed => Output::new(PROG, "verify-installed", c.json, c.progress),
        Cmd::Verify(c) => Output::new(PROG, "verify", c.json, c.progress),
        Cmd::Repair(c) => Output::new(PROG, "repair", c.json, c.progress),
        Cmd::Cat(c) => Output::new(PROG, "cat", c.json, none).data_on_stdout(),
        Cmd::Mount(_) => Output::new(PROG, "mount", false, none),
        Cmd::Cleanup(c) => Output::new(PROG, "cleanup", c.json, none),
    }
}

/// The library of `-r` or `--from` (exactly one); `scratch` is where a remote library's
/// manifests and locators are downloaded to (and unlinked at once).
fn library(
    romlib: &Option<PathBuf>,
    from: &Option<String>,
    scratch: &Path,
    timeout: u64,
    ca_file: &Option<PathBuf>,
) -> Result<Library, Failure> {
    if ca_file.is_some() && from.is_none() {
        return Err(Failure::Usage("--ca-file goes with --from URL".into()));
    }
    match (romlib, from) {
        (Some(r), None) => Ok(Library::open(r)?),
        (None, Some(url)) => Ok(Library::remote(
            url,
            scratch,
            std::time::Duration::from_secs(timeout.max(1)),
            ca_file.as_deref(),
        )?),
        _ => Err(Failure::Usage(
            "give either -r LIBRARY or --from URL".into(),
        )),
    }
}

/// An unknown `--layout` is a usage error (exit 2), found before anything is read.
fn usage_layout(name: &Option<String>) -> Result<(), Failure> {
    match name.as_deref().map(layout::find_layout) {
        Some(Err(e)) => Err(Failure::Usage(e.to_string())),
        _ => Ok(()),
    }
}

fn trust(keys: &[PathBuf]) -> Result<TrustStore> {
    TrustStore::load(keys, Path::new(DEFAULT_TRUST_DIR))
}

fn run(cmd: Cmd, out: &Output) -> Result<(), Failure> {
    match cmd {
        Cmd::List(c) => {
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
            let (mut human, mut games) = (String::new(), Vec::new());
            for t in &titles {
                let m = match lib.open_manifest(t) {
                    Ok(m) => m,
                    Err(e) => {
                        human.push_str(&format!("{t}\t-\tDAMAGED: {e}\n"));
                        games.push(
                            Obj::new()
                                .field("title", t.as_str())
                                .field("name", None::<String>)
                                .field("size", None::<u64>)
                                .field("trusted", false)
                                .field("damaged", e.to_string()),
                        );
                        damaged = Some(e);
                        continue;
                    }
                };
                let (name, size) = (
                    m.unverified_body().display_name.clone(),
                    m.unverified_body().total_size,
                );
                let ok = store.as_ref().is_some_and(|s| m.verify(s).is_ok());
                human.push_str(&format!(
                    "{t}\t{name}\t{size} bytes\t{}\n",
                    if ok { "trusted" } else { "UNTRUSTED" }
                ));
                games.push(
                    Obj::new()
                        .field("title", t.as_str())
                        .field("name", name)
                        .field("size", size)
                        .field("trusted", ok)
                        .field("damaged", None::<String>),
                );
            }
            human.push_str(&count(titles.len(), "game", "games"));
            // The list is the report, damaged games marked; a damaged one fails the command.
            out.result(
                Obj::new()
                    .field("library", lib.root())
                    .field("games", games),
                &human,
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
        Cmd::Install(c) => {
            usage_layout(&c.layout)?;
            let scratch = c.install_dir.join(romlib_device::install::STAGING_DIR);
            let lib = library(&c.romlib, &c.from, &scratch, c.timeout, &c.ca_file)?;
            let m = lib.open_game(&c.game, &trust(&c.trusted_key)?)?;
            let reuse = c.reuse.as_ref().map(|p| Library::new(p.clone()));
            let install_dir = match &c.layout {
                Some(l) => layout::layout_dir(&c.install_dir, l, m.body())?,
                None => c.install_dir.clone(),
            };
            let mut progress = Reporter::new(c.progress, "install", false);
            if let Some(remote) = lib.remote_source() {
                progress.count_downloads(|| remote.downloaded());
            }
            let title = m.body().title_id.clone();
            progress.phase(
                "install",
                Some(&title),
                Some(m.body().total_size),
                Some(m.body().chunk_count),
            );
            let r = install_game_with(
                &lib,
                &m,
                &install_dir,
                &mut RuzstdDecoder::default(),
                &InstallOptions {
                    reuse: reuse.as_ref(),
                    progress: &progress,
                    check_room: !c.no_room_check,
                },
            );
            progress.finish();
            let no_ranges = lib.remote_source().and_then(|r| r.ranges_ignored());
            if let Some(extra) = no_ranges {
                out.warn(&format!(
                    "{}: the server ignores byte ranges, so packs were read through as streams: \
                     {extra} bytes downloaded beyond the records needed (serve the library with \
                     nginx, `romlib serve` or another server with ranges to avoid them)",
                    lib.root().display()
                ));
            }
            let r = r?;
            for note in r.recovered.iter().chain(&r.left_alone) {
                out.warn(note);
            }
            let mut human = r.installed_message(&title, &install_dir);
            let (bytes, requests) = lib.remote_source().map_or((0, 0), |r| r.transferred());
            if lib.remote_source().is_some() {
                human.push_str(&format!(
                    "\ndownloaded {bytes} bytes in {}; {} ({} bytes) reused from this device",
                    count(requests as usize, "request", "requests"),
                    count(r.reused_chunks as usize, "chunk", "chunks"),
                    r.reused_bytes
                ));
            }
            out.result(
                r.installed_json(
                    &title,
                    &install_dir,
                    bytes,
                    requests,
                    no_ranges.unwrap_or(0),
                ),
                &human,
            );
            Ok(())
        }
        Cmd::Uninstall(c) => {
            usage_layout(&c.layout)?;
            let install_dir = match &c.layout {
                Some(l) => layout::installed_dir(&c.install_dir, l, &c.title_id)?,
                None => c.install_dir.clone(),
            };
            let u = uninstall(&install_dir, &c.title_id)?;
            for note in u.recovered.iter().chain(&u.left_alone) {
                out.warn(note);
            }
            let human = uninstalled_message(&c.title_id, &install_dir, &u.kept);
            out.result(
                Obj::new()
                    .field("game", c.title_id.as_str())
                    .field("path", install_dir.join(&c.title_id).as_path())
                    .field("kept", u.kept)
                    .field("recovered", u.recovered)
                    .field("left_alone", u.left_alone),
                &human,
            );
            Ok(())
        }
        Cmd::Cat(c) => {
            let lib = Library::open(&c.romlib)?;
            Ok(c.run(&lib, &trust(&c.trusted_key)?, RuzstdDecoder::default())?)
        }
        Cmd::Mount(c) => {
            let lib = Library::open(&c.romlib)?;
            Ok(c.run(
                &lib,
                trust(&c.trusted_key)?,
                RuzstdDecoder::default,
                "romlib-device",
            )?)
        }
        Cmd::Verify(c) if c.installed => verify_installed(c, out),
        Cmd::Repair(c) => repair(c, out),
        Cmd::Verify(c) => {
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
            let r = verify_game(&lib, &m, &mut RuzstdDecoder::default(), &progress);
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
        Cmd::Cleanup(c) => {
            let (done, found) = cleanup(&c.install_dir)?;
            let (alone, handled): (Vec<_>, Vec<_>) = found.iter().partition(|f| f.left_alone());
            let bytes: u64 = handled.iter().map(|l| l.bytes).sum();
            let left_alone: Vec<String> = alone
                .iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        romlib_device::folder::shown(&f.path),
                        f.describe()
                    )
                })
                .collect();
            for line in &left_alone {
                out.warn(line);
            }
            let mut human: String = done.iter().map(|d| format!("{d}\n")).collect();
            human.push_str(&format!(
                "{}: {} removed or finished, {bytes} bytes freed",
                c.install_dir.display(),
                count(handled.len(), "leftover", "leftovers")
            ));
            if !alone.is_empty() {
                human.push_str(&format!(
                    "; {} left alone",
                    count(alone.len(), "item", "items")
                ));
            }
            out.result(
                Obj::new()
                    .field("install_dir", c.install_dir.as_path())
                    .field("done", done)
                    .field("bytes_freed", bytes)
                    .field("left_alone", left_alone),
                &human,
            );
            Ok(())
        }
    }
}

/// `list-games --install-dir DIR`: the games installed in `dir` and the leftovers of
/// interrupted operations.
fn list_installed(dir: &Path, out: &Output) -> Result<()> {
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
            romlib_device::folder::shown(&l.path),
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
        .field("path", dir.join(title).as_path())
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
    let scratch = c.install_dir.join(romlib_device::install::STAGING_DIR);
    let lib = library(&c.romlib, &c.from, &scratch, c.timeout, &c.ca_file)?;
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
