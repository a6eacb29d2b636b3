//! Command-line plumbing shared by both binaries: argument parsing with romlib's exit
//! codes, `--version`, progress ([`progress`]), results and errors as text or JSON
//! ([`output`], [`json`]), and the commands both offer ([`play`]).

pub mod json;
pub mod output;
pub mod play;
pub mod reporter;

/// What `--version` prints for binary `prog`: its version, then the formats it reads and
/// writes.
pub fn version_text(prog: &str) -> String {
    use romlib_format::{index, manifest, pack, portable};
    format!(
        "{prog} {}\nformats: library {} (reads 1 and 2), pack {}, manifest {}, portable file {}, \
         locator {} and {}, JSON output {}",
        env!("CARGO_PKG_VERSION"),
        index::LIBRARY_FORMAT_VERSION,
        pack::VERSION,
        manifest::VERSION,
        portable::VERSION,
        portable::LOCATOR_VERSION,
        portable::LOCATOR_VERSION_BASES,
        output::JSON_VERSION,
    )
}

/// Parses the process arguments as `T`. `--help` prints and exits 0; a usage error prints
/// argh's message and a hint, and exits 2 (romlib's usage exit code).
pub fn parse_args<T: argh::TopLevelCommand>(name: &'static str) -> T {
    let args: Vec<String> = std::env::args().collect();
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match T::from_args(&[name], &strs[1.min(strs.len())..]) {
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
