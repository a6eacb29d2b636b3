//! The command line. Shared by both binaries: argument parsing with romlib's exit codes,
//! `--version`, progress ([`reporter`]), results and errors as text or JSON ([`output`],
//! [`json`]), and the commands both offer ([`play`]). The device's own commands: [`list`],
//! [`install`] and [`verify`], with the helpers they share here (the library of `-r` or
//! `--from`, the trust store, a usage failure).

pub mod adopt;
pub mod install;
pub mod json;
pub mod list;
pub mod output;
pub mod play;
pub mod reporter;
pub mod verify;

use crate::install::layout;
use crate::trusted::DEFAULT_TRUST_DIR;
use crate::{Error, Library, Result, TrustStore};
use std::path::{Path, PathBuf};

/// The device binary's name, in its messages.
pub const PROG: &str = "romlib-device";

/// Why a command failed.
pub enum Failure {
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

/// The library of `-r` or `--from` (exactly one); `scratch` is where a remote library's
/// manifests and locators are downloaded to (and unlinked at once).
pub fn library(
    romlib: &Option<PathBuf>,
    from: &Option<String>,
    scratch: &Path,
    net: &Net,
) -> Result<Library, Failure> {
    let (timeout, ca_file) = (net.timeout, &net.ca_file);
    if ca_file.is_some() && from.is_none() {
        return Err(Failure::Usage("--ca-file goes with --from URL".into()));
    }
    match (romlib, from) {
        (Some(r), None) => Ok(Library::open(r)?),
        (None, Some(url)) => Ok(Library::remote(
            url,
            scratch,
            std::time::Duration::from_secs(timeout.max(1)),
            net.min_rate,
            ca_file.as_deref(),
            net.allow_expired,
        )?),
        _ => Err(Failure::Usage(
            "give either -r LIBRARY or --from URL".into(),
        )),
    }
}

/// The network options of a command that reads a library over HTTP(S).
pub struct Net {
    /// `--timeout`: seconds before a stalled connection is given up.
    pub timeout: u64,
    /// `--min-rate`: bytes per second below which a server is given up.
    pub min_rate: u64,
    /// `--ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--allow-expired`: read a library whose signed snapshot expired.
    pub allow_expired: bool,
}

/// `net()`: the [`Net`] of a command's `--timeout`, `--min-rate` and `--ca-file`.
macro_rules! net_options {
    ($($cmd:ty),*) => {$(
        impl $cmd {
            fn net(&self) -> Net {
                Net {
                    timeout: self.timeout,
                    min_rate: self.min_rate,
                    ca_file: self.ca_file.clone(),
                    allow_expired: self.allow_expired,
                }
            }
        }
    )*};
}
net_options!(
    install::InstallCmd,
    list::ListCmd,
    verify::RepairCmd,
    adopt::AdoptCmd
);

/// `--min-rate`'s default: 4 KiB/s, far below any real link (a 1 MiB request would take
/// over four minutes), far above a server dripping bytes to hold the device.
pub const DEFAULT_MIN_RATE: u64 = 4096;

/// An unknown `--layout` is a usage error (exit 2), found before anything is read.
pub fn usage_layout(name: &Option<String>) -> Result<(), Failure> {
    match name.as_deref().map(layout::find_layout) {
        Some(Err(e)) => Err(Failure::Usage(e.to_string())),
        _ => Ok(()),
    }
}

/// The trust store of `--trusted-key` files, or the device's own folder.
pub fn trust(keys: &[PathBuf]) -> Result<TrustStore> {
    TrustStore::load(keys, Path::new(DEFAULT_TRUST_DIR))
}

/// What `--version` prints for binary `prog`: its version, then the formats it reads and
/// writes.
pub fn version_text(prog: &str) -> String {
    use romlib_format::{index, manifest, pack, portable};
    format!(
        "{prog} {}\nformats: library {} (reads 1 to {}), pack {}, manifest {}, portable file {}, \
         locator {} and {}, JSON output {}",
        env!("CARGO_PKG_VERSION"),
        index::LIBRARY_FORMAT_VERSION,
        index::LIBRARY_FORMAT_VERSION,
        pack::VERSION,
        manifest::VERSION,
        portable::VERSION,
        portable::LOCATOR_VERSION,
        portable::LOCATOR_VERSION_BASES,
        json::JSON_VERSION,
    )
}

/// Parses the process arguments as `T`. `--help` prints and exits 0; a usage error prints
/// argh's message and a hint, and exits 2 (romlib's usage exit code).
pub fn parse_args<T: argh::TopLevelCommand>(name: &'static str) -> T {
    let mut args: Vec<String> = std::env::args().collect();
    // One spelling for one thing on both binaries: a game is -g (or --game) everywhere;
    // uninstall's older -t and --title-id stay accepted.
    if args.get(1).is_some_and(|a| a == "uninstall") {
        for a in args.iter_mut().skip(2) {
            match a.as_str() {
                "-t" => *a = "-g".into(),
                "--title-id" => *a = "--game".into(),
                _ => {}
            }
        }
    }
    let parse = |args: &[String]| {
        let strs: Vec<&str> = args.iter().map(String::as_str).collect();
        T::from_args(&[name], &strs[1.min(strs.len())..])
    };
    let mut parsed = parse(&args);
    // -h is --help, wherever it is not an option's value (argh knows only --help).
    if parsed
        .as_ref()
        .is_err_and(|e| e.status.is_err() && e.output.contains("Unrecognized argument: -h"))
    {
        for a in args.iter_mut().skip(1) {
            if a == "-h" {
                *a = "--help".into();
            }
        }
        parsed = parse(&args);
    }
    match parsed {
        Ok(c) => c,
        Err(early) => {
            if early.status.is_ok() {
                println!("{}", early.output);
                std::process::exit(0);
            }
            output::usage_error(name, &args, &early.output);
            std::process::exit(2);
        }
    }
}

/// Standard output for bulk binary data: on Unix a duplicate of file descriptor 1, written
/// without `Stdout`'s line buffering (which scans every block for newlines).
pub fn raw_stdout() -> Box<dyn std::io::Write> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() {
            return Box::new(std::fs::File::from(fd));
        }
    }
    Box::new(std::io::stdout())
}
