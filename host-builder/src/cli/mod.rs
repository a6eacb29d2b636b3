//! The `romlib` command line: the argument structs (one file per group of commands), the
//! dispatch, and the reports and progress bars the commands print. `main.rs` parses the
//! arguments into [`Cli`], calls [`run`] and maps its result to an exit code.

mod build;
mod inspect;
mod install;
mod progress;
mod read;
mod transfer;
mod trust;

use crate::error::Error;
use argh::FromArgs;
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
    RebuildIndex(inspect::RebuildIndexCmd),
    Show(inspect::ShowCmd),
    Cat(romlib_device::cli::play::CatCmd),
    Mount(romlib_device::cli::play::MountCmd),
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
        Cmd::RebuildIndex(c) => return inspect::rebuild_index(c),
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
