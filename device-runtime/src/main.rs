//! `romlib-device`: the handheld's command line. Exit codes: 0 success, 1 failure, 2 usage.

use argh::FromArgs;
use romlib_device::chunks::decoder::RuzstdDecoder;
use romlib_device::cli::play::{CatCmd, MountCmd};
use romlib_device::install::{install_game_reusing, layout, uninstall, verify_game};
use romlib_device::trusted::DEFAULT_TRUST_DIR;
use romlib_device::{Library, Result, TrustStore};
use std::path::{Path, PathBuf};

#[derive(FromArgs)]
/// romlib-device: verify, install and read games from a romlib library.
struct Cli {
    #[argh(subcommand)]
    cmd: Cmd,
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
}

#[derive(FromArgs)]
/// List the games of a library and whether each is signed by a trusted key.
#[argh(subcommand, name = "list-games")]
struct ListCmd {
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: Option<PathBuf>,
    #[argh(option)]
    /// library on an HTTP server instead (http://HOST[:PORT]/PATH/; lists its catalog.txt)
    from: Option<String>,
    #[argh(option, default = "30")]
    /// seconds before a stalled connection is given up (with --from; default 30)
    timeout: u64,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys)
    trusted_key: Vec<PathBuf>,
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
    /// install from a library on an HTTP server instead (http://HOST[:PORT]/PATH/; any static
    /// server or `romlib serve`): fetches the manifest, the locator and only the chunk records
    /// needed, in ranged requests
    from: Option<String>,
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
}

fn main() {
    let cli: Cli = romlib_device::cli::parse_args("romlib-device");
    if let Err(e) = run(cli) {
        eprintln!("romlib-device: {e}");
        std::process::exit(1);
    }
}

/// The library of `-r` or `--from` (exactly one); `scratch` is where a remote library's
/// manifests and locators are downloaded to (and unlinked at once).
fn library(
    romlib: &Option<PathBuf>,
    from: &Option<String>,
    scratch: &Path,
    timeout: u64,
) -> Result<Library> {
    match (romlib, from) {
        (Some(r), None) => Library::open(r),
        (None, Some(url)) => {
            Library::remote(url, scratch, std::time::Duration::from_secs(timeout.max(1)))
        }
        _ => {
            eprintln!("romlib-device: give either -r LIBRARY or --from URL");
            std::process::exit(2);
        }
    }
}

/// An unknown `--layout` is a usage error (exit 2), found before anything is read.
fn usage_layout(name: &Option<String>) {
    if let Some(Err(e)) = name.as_deref().map(layout::find_layout) {
        eprintln!("romlib-device: {e}");
        std::process::exit(2);
    }
}

fn trust(keys: &[PathBuf]) -> Result<TrustStore> {
    TrustStore::load(keys, Path::new(DEFAULT_TRUST_DIR))
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::List(c) => {
            let lib = library(&c.romlib, &c.from, &std::env::temp_dir(), c.timeout)?;
            let store = match trust(&c.trusted_key) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("romlib-device: {e}; every game is shown as UNTRUSTED");
                    None
                }
            };
            let titles = lib.titles()?;
            let mut damaged = None;
            for t in &titles {
                let m = match lib.open_manifest(t) {
                    Ok(m) => m,
                    Err(e) => {
                        println!("{t}\t-\tDAMAGED: {e}");
                        damaged = Some(e);
                        continue;
                    }
                };
                let (name, size) = (
                    m.unverified_body().display_name.clone(),
                    m.unverified_body().total_size,
                );
                let ok = store.as_ref().is_some_and(|s| m.verify(s).is_ok());
                println!(
                    "{t}\t{name}\t{size} bytes\t{}",
                    if ok { "trusted" } else { "UNTRUSTED" }
                );
            }
            println!("{} game(s)", titles.len());
            damaged.map_or(Ok(()), Err)
        }
        Cmd::Install(c) => {
            usage_layout(&c.layout);
            let scratch = c.install_dir.join(romlib_device::install::STAGING_DIR);
            let lib = library(&c.romlib, &c.from, &scratch, c.timeout)?;
            let m = lib.open_game(&c.game, &trust(&c.trusted_key)?)?;
            let reuse = c.reuse.as_ref().map(|p| Library::new(p.clone()));
            let install_dir = match &c.layout {
                Some(l) => layout::layout_dir(&c.install_dir, l, m.body())?,
                None => c.install_dir.clone(),
            };
            let r = install_game_reusing(
                &lib,
                &m,
                &install_dir,
                &mut RuzstdDecoder::default(),
                reuse.as_ref(),
            )?;
            println!("{}", r.installed_message(&m.body().title_id, &install_dir));
            if let Some(remote) = lib.remote_source() {
                let (bytes, requests) = remote.transferred();
                println!(
                    "downloaded {bytes} bytes in {requests} request(s); {} chunk(s) ({} bytes) reused from this device",
                    r.reused_chunks, r.reused_bytes
                );
            }
            Ok(())
        }
        Cmd::Uninstall(c) => {
            usage_layout(&c.layout);
            let install_dir = match &c.layout {
                Some(l) => layout::installed_dir(&c.install_dir, l, &c.title_id)?,
                None => c.install_dir.clone(),
            };
            let kept = uninstall(&install_dir, &c.title_id)?;
            println!(
                "{}",
                romlib_device::install::uninstalled_message(&c.title_id, &install_dir, &kept)
            );
            Ok(())
        }
        Cmd::Cat(c) => {
            let lib = Library::open(&c.romlib)?;
            c.run(&lib, &trust(&c.trusted_key)?, RuzstdDecoder::default())
        }
        Cmd::Mount(c) => {
            let lib = Library::open(&c.romlib)?;
            c.run(
                &lib,
                trust(&c.trusted_key)?,
                RuzstdDecoder::default,
                "romlib-device",
            )
        }
        Cmd::Verify(c) => {
            let lib = Library::open(&c.romlib)?;
            let m = lib.open_game(&c.game, &trust(&c.trusted_key)?)?;
            let r = verify_game(&lib, &m, &mut RuzstdDecoder::default())?;
            println!(
                "{}: OK, {} files, {} bytes, {} chunks verified",
                m.body().title_id,
                r.files,
                r.bytes,
                r.chunks
            );
            Ok(())
        }
    }
}
