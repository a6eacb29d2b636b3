//! `romlib-device`: the handheld's command line. Exit codes: 0 success, 1 failure, 2 usage.
//! Each command lives in the library's `cli` module; this file parses the arguments,
//! dispatches, and turns a failure into its exit code.

use argh::FromArgs;
use romlib_device::chunks::decoder::RuzstdDecoder;
use romlib_device::cli::adopt::AdoptCmd;
use romlib_device::cli::install::{CleanupCmd, InstallCmd, UninstallCmd};
use romlib_device::cli::list::ListCmd;
use romlib_device::cli::output::Output;
use romlib_device::cli::play::{CatCmd, MountCmd};
use romlib_device::cli::reporter::ProgressMode;
use romlib_device::cli::verify::{RepairCmd, VerifyCmd};
use romlib_device::cli::{trust, version_text, Failure, PROG};
use romlib_device::Library;

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
    Adopt(AdoptCmd),
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
                std::process::exit(i32::from(e.exit_status()));
            }
            Failure::Reported => std::process::exit(1),
        }
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
        Cmd::Adopt(c) => Output::new(PROG, "adopt", c.json, none),
    }
}

fn run(cmd: Cmd, out: &Output) -> Result<(), Failure> {
    match cmd {
        Cmd::List(c) => c.run(out),
        Cmd::Install(c) => c.run(out),
        Cmd::Uninstall(c) => c.run(out),
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
        Cmd::Verify(c) => c.run(out),
        Cmd::Repair(c) => c.run(out),
        Cmd::Cleanup(c) => c.run(out),
        Cmd::Adopt(c) => c.run(out),
    }
}
