//! `romlib-device`: the handheld's command line. Exit codes: 0 success, 1 failure, 2 usage.

use argh::FromArgs;
use romlib_device::chunks::decoder::RuzstdDecoder;
use romlib_device::cli::json::Obj;
use romlib_device::cli::output::Output;
use romlib_device::cli::play::{CatCmd, MountCmd};
use romlib_device::cli::reporter::{ProgressMode, Reporter};
use romlib_device::cli::version_text;
use romlib_device::install::{
    cleanup, count, install_game_reusing, installed_games, leftovers, leftovers_note, uninstall,
    uninstalled_message, verify_game,
};
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
/// Remove a game that romlib installed.
#[argh(subcommand, name = "uninstall")]
struct UninstallCmd {
    #[argh(option, short = 't')]
    /// title id
    title_id: String,
    #[argh(option)]
    /// where games are installed
    install_dir: PathBuf,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    json: bool,
}

#[derive(FromArgs)]
/// Check every chunk and file of a game against its signed manifest; writes nothing.
#[argh(subcommand, name = "verify")]
struct VerifyCmd {
    #[argh(option, short = 'g')]
    /// title id, or the path of a .manifest file
    game: String,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
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
        Cmd::Verify(c) => Output::new(PROG, "verify", c.json, c.progress),
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
            let scratch = c.install_dir.join(romlib_device::install::STAGING_DIR);
            let lib = library(&c.romlib, &c.from, &scratch, c.timeout, &c.ca_file)?;
            let m = lib.open_game(&c.game, &trust(&c.trusted_key)?)?;
            let reuse = c.reuse.as_ref().map(|p| Library::new(p.clone()));
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
            let r = install_game_reusing(
                &lib,
                &m,
                &c.install_dir,
                &mut RuzstdDecoder::default(),
                reuse.as_ref(),
                &progress,
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
            for note in &r.recovered {
                out.warn(note);
            }
            let mut human = r.installed_message(&title, &c.install_dir);
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
                Obj::new()
                    .field("game", title.as_str())
                    .field("path", c.install_dir.join(&title).as_path())
                    .field("files", r.files)
                    .field("bytes", r.bytes)
                    .field("chunks", r.chunks)
                    .field("reused_chunks", r.reused_chunks)
                    .field("reused_bytes", r.reused_bytes)
                    .field("bytes_downloaded", bytes)
                    .field("requests", requests)
                    .field("bytes_extra_without_ranges", no_ranges.unwrap_or(0))
                    .field("kept", r.kept)
                    .field("recovered", r.recovered),
                &human,
            );
            Ok(())
        }
        Cmd::Uninstall(c) => {
            let kept = uninstall(&c.install_dir, &c.title_id)?;
            let human = uninstalled_message(&c.title_id, &c.install_dir, &kept);
            out.result(
                Obj::new()
                    .field("game", c.title_id.as_str())
                    .field("path", c.install_dir.join(&c.title_id).as_path())
                    .field("kept", kept),
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
        Cmd::Verify(c) => {
            let lib = Library::open(&c.romlib)?;
            let m = lib.open_game(&c.game, &trust(&c.trusted_key)?)?;
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
            let bytes: u64 = found.iter().map(|l| l.bytes).sum();
            let mut human: String = done.iter().map(|d| format!("{d}\n")).collect();
            human.push_str(&format!(
                "{}: {} removed or finished, {bytes} bytes freed",
                c.install_dir.display(),
                count(found.len(), "leftover", "leftovers")
            ));
            out.result(
                Obj::new()
                    .field("install_dir", c.install_dir.as_path())
                    .field("done", done)
                    .field("bytes_freed", bytes),
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
            l.path.display(),
            l.bytes,
            l.what
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
                            .field("what", l.what.as_str())
                    })
                    .collect::<Vec<_>>(),
            ),
        &human,
    );
    Ok(())
}
