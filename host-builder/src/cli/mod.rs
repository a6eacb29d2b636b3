//! The `romlib` command line: the argument structs (one file per group of commands), the
//! dispatch, and the reports and progress bars the commands print. `main.rs` parses the
//! arguments into [`Cli`], calls [`run`] and maps its result to an exit code.

mod build;
mod inspect;
mod install;
mod parity;
mod progress;
mod read;
mod transfer;
mod trust;

use crate::error::Error;
use argh::FromArgs;
use romlib_device::cli::output::Output;
use romlib_device::cli::reporter::ProgressMode;
use std::process::ExitCode;

#[derive(FromArgs)]
/// romlib: build deduplicated, signed game libraries; install or read games from them.
pub struct Cli {
    #[argh(switch)]
    /// print the version and the formats this binary reads and writes, then exit
    version: bool,
    #[argh(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Keygen(build::KeygenCmd),
    SignFile(build::SignFileCmd),
    VerifyFile(build::VerifyFileCmd),
    BuildPacks(build::BuildPacksCmd),
    GenerateManifests(build::GenerateCmd),
    Build(build::BuildCmd),
    ListGames(inspect::ListCmd),
    TrainDict(build::TrainCmd),
    Install(install::InstallCmd),
    Uninstall(install::UninstallCmd),
    Verify(inspect::VerifyCmd),
    RebuildIndex(inspect::RebuildIndexCmd),
    Parity(parity::ParityCmd),
    Repair(parity::RepairCmd),
    Show(inspect::ShowCmd),
    Cat(romlib_device::cli::play::CatCmd),
    Mount(romlib_device::cli::play::MountCmd),
    Export(transfer::ExportCmd),
    Import(transfer::ImportCmd),
    Remove(transfer::RemoveCmd),
    Prune(transfer::PruneCmd),
    Refresh(transfer::RefreshCmd),
    Serve(transfer::ServeCmd),
    Publish(transfer::PublishCmd),
    Trust(trust::TrustCmd),
}

/// Runs a parsed command line. `Ok(ExitCode::FAILURE)` is a failure already reported (a
/// check that found problems); an error is reported by the caller.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Some(cmd) = cli.cmd else {
        if cli.version {
            println!("{}", romlib_device::cli::version_text("romlib"));
            return Ok(ExitCode::SUCCESS);
        }
        return Err(Error::Usage(
            "give a command, or --version; run romlib --help for usage".into(),
        )
        .into());
    };
    match cmd {
        Cmd::Keygen(c) => build::keygen(c),
        Cmd::SignFile(c) => build::sign_file(c),
        Cmd::VerifyFile(c) => build::verify_file(c),
        Cmd::BuildPacks(c) => build::build_packs(c),
        Cmd::GenerateManifests(c) => build::generate_manifests(c),
        Cmd::Build(c) => build::build_all(c),
        Cmd::ListGames(c) => inspect::list_games(c),
        Cmd::Install(c) => install::install(c),
        Cmd::Uninstall(c) => install::uninstall(c),
        Cmd::Verify(c) => return inspect::run_verify(c),
        Cmd::RebuildIndex(c) => return inspect::rebuild_index(c),
        Cmd::Parity(c) => return parity::parity(c),
        Cmd::Repair(c) => return parity::repair(c),
        Cmd::Cat(c) => read::cat(c),
        Cmd::Mount(c) => read::mount(c),
        Cmd::Export(c) => transfer::export(c),
        Cmd::Import(c) => transfer::import(c),
        Cmd::Remove(c) => transfer::remove(c),
        Cmd::Prune(c) => transfer::prune(c),
        Cmd::Refresh(c) => transfer::refresh(c),
        Cmd::Serve(c) => transfer::serve(c),
        Cmd::Publish(c) => transfer::publish(c),
        Cmd::Show(c) => inspect::show(c),
        Cmd::TrainDict(c) => build::train_dict(c),
        Cmd::Trust(c) => {
            let out = Output::new("romlib", "trust", c.json(), ProgressMode::None);
            trust::trust(c, &out)
        }
    }
    .map(|()| ExitCode::SUCCESS)
}

/// The exit code of an error: 2 for a usage error, 1 for any other failure.
pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    ExitCode::from(exit_status(e))
}

fn exit_status(e: &anyhow::Error) -> u8 {
    let usage = e.downcast_ref::<Error>().is_some_and(Error::is_usage);
    if usage {
        2
    } else {
        1
    }
}

impl Cli {
    /// How the command reports its end (text, or JSON with `--json` / `--progress json`).
    pub fn output(&self) -> Output {
        let none = ProgressMode::None;
        let (op, json, progress) = match &self.cmd {
            None => ("", false, none),
            Some(Cmd::BuildPacks(c)) => ("build-packs", c.json, c.progress),
            Some(Cmd::GenerateManifests(c)) => ("generate-manifests", c.json, c.progress),
            Some(Cmd::Build(c)) => ("build", c.json, c.progress),
            Some(Cmd::ListGames(c)) => ("list-games", c.json, none),
            Some(Cmd::Install(c)) => ("install", c.json, c.progress),
            Some(Cmd::Uninstall(c)) => ("uninstall", c.json, none),
            Some(Cmd::Verify(c)) => ("verify-library", c.json, c.progress),
            Some(Cmd::RebuildIndex(c)) => ("rebuild-index", c.json, none),
            Some(Cmd::Parity(c)) => ("parity", c.json, none),
            Some(Cmd::Repair(c)) => ("repair-library", c.json, none),
            Some(Cmd::Show(c)) => ("show", c.json, none),
            Some(Cmd::Cat(c)) => {
                return Output::new("romlib", "cat", c.json, none).data_on_stdout();
            }
            Some(Cmd::Export(c)) => ("export", c.json, c.progress),
            Some(Cmd::Import(c)) => ("import", c.json, c.progress),
            Some(Cmd::Remove(c)) => ("remove", c.json, c.progress),
            Some(Cmd::Prune(c)) => ("prune", c.json, c.progress),
            Some(Cmd::Refresh(c)) => ("refresh", c.json, none),
            Some(Cmd::Keygen(_)) => ("keygen", false, none),
            Some(Cmd::SignFile(_)) => ("sign-file", false, none),
            Some(Cmd::VerifyFile(_)) => ("verify-file", false, none),
            Some(Cmd::TrainDict(_)) => ("train-dict", false, none),
            Some(Cmd::Mount(_)) => ("mount", false, none),
            Some(Cmd::Serve(_)) => ("serve", false, none),
            Some(Cmd::Publish(c)) => ("publish", c.json, none),
            Some(Cmd::Trust(c)) => ("trust", c.json(), none),
        };
        Output::new("romlib", op, json, progress)
    }
}

/// Reports error `e` the way `out` says, and returns the exit code.
pub fn report_error(out: &Output, e: &anyhow::Error) -> ExitCode {
    let status = exit_status(e);
    let (code, path) = error_code(e);
    out.error(code, &e.to_string(), path.as_deref(), status);
    ExitCode::from(status)
}

/// The stable code (docs/handhelds.md, "Exit codes and error codes") and the subject of an error.
fn error_code(e: &anyhow::Error) -> (&'static str, Option<String>) {
    let path = |p: &std::path::Path| Some(p.to_string_lossy().into_owned());
    if let Some(d) = e.downcast_ref::<romlib_device::Error>() {
        return (d.code(), Some(d.subject()));
    }
    match e.downcast_ref::<Error>() {
        Some(Error::Device(d)) => (d.code(), Some(d.subject())),
        Some(Error::Io {
            path: p, source, ..
        }) => (
            if romlib_device::error::is_no_space(source) {
                "no_space"
            } else {
                "io"
            },
            path(p),
        ),
        Some(Error::Input { path: p, .. }) => ("bad_input", path(p)),
        Some(Error::Library { path: p, .. }) => ("damaged", path(p)),
        Some(Error::Locked { path: p }) => ("locked", path(p)),
        Some(Error::Key { path: p, .. }) => ("bad_key", path(p)),
        Some(Error::Usage(_)) => ("usage", None),
        _ => ("failed", None),
    }
}
