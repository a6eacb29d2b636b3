//! The `romlib` command line: the argument structs (one file per group of commands), the
//! dispatch, and the reports and progress bars the commands print. `main.rs` parses the
//! arguments into [`Cli`], calls [`run`] and maps its result to an exit code.

mod build;
mod inspect;
mod install;
mod read;
mod transfer;

use crate::error::Error;
use argh::FromArgs;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(FromArgs)]
/// romlib: build deduplicated, signed game libraries; install or read games from them.
pub struct Cli {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Keygen(build::KeygenCmd),
    BuildPacks(build::BuildPacksCmd),
    GenerateManifests(build::GenerateCmd),
    Build(build::BuildCmd),
    ListGames(inspect::ListCmd),
    TrainDict(build::TrainCmd),
    Install(install::InstallCmd),
    Uninstall(install::UninstallCmd),
    Verify(inspect::VerifyCmd),
    Show(inspect::ShowCmd),
    Cat(read::CatCmd),
    Mount(read::MountCmd),
    Export(transfer::ExportCmd),
    Import(transfer::ImportCmd),
    Serve(transfer::ServeCmd),
}

/// Runs a parsed command line. `Ok(ExitCode::FAILURE)` is a failure already reported (a
/// check that found problems); an error is reported by the caller.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Keygen(c) => build::keygen(c),
        Cmd::BuildPacks(c) => build::build_packs(c),
        Cmd::GenerateManifests(c) => build::generate_manifests(c),
        Cmd::Build(c) => build::build_all(c),
        Cmd::ListGames(c) => inspect::list_games(c),
        Cmd::Install(c) => install::install(c),
        Cmd::Uninstall(c) => install::uninstall(c),
        Cmd::Verify(c) => return inspect::run_verify(c),
        Cmd::Cat(c) => read::cat(c),
        Cmd::Mount(c) => read::mount(c),
        Cmd::Export(c) => transfer::export(c),
        Cmd::Import(c) => transfer::import(c),
        Cmd::Serve(c) => transfer::serve(c),
        Cmd::Show(c) => inspect::show(c),
        Cmd::TrainDict(c) => build::train_dict(c),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// The exit code of an error: 2 for a usage error, 1 for any other failure.
pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    let usage = e.downcast_ref::<Error>().is_some_and(Error::is_usage);
    ExitCode::from(if usage { 2 } else { 1 })
}

/// Whether to show a progress bar: not when told to keep quiet, nor when standard error is
/// not a terminal.
fn progress(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// Worker threads: those asked for, else one per core.
fn threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// The keys to trust: those given, else the library's own `keys/` (which it says, unless
/// told to keep quiet because the output is a report).
fn trust_store(
    lib: &romlib_device::Library,
    keys: &[PathBuf],
    say: bool,
) -> anyhow::Result<romlib_device::TrustStore> {
    if keys.is_empty() {
        if let Some(p) = lib.portable() {
            anyhow::bail!(
                "{}: a portable file carries no keys to trust: pass --trusted-key",
                p.path().display()
            );
        }
        if say {
            eprintln!(
                "romlib: trusting the library's own keys in {} (pass --trusted-key to choose)",
                lib.keys_dir().display()
            );
        }
        Ok(romlib_device::TrustStore::from_dir(&lib.keys_dir())?)
    } else {
        Ok(romlib_device::TrustStore::from_files(keys)?)
    }
}

/// A byte-counting progress bar, or a hidden one.
fn bytes_bar(show: bool, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(0);
    b.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} {what} {{bytes}} {{bytes_per_sec}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}
