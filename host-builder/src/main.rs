//! `romlib`: the host command line. Parses arguments, calls the library's command line
//! ([`romlib_host::cli`]), maps errors to exit codes (0 success, 1 failure, 2 usage).

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli: romlib_host::cli::Cli = romlib_device::cli::parse_args("romlib");
    match romlib_host::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("romlib: {e}");
            romlib_host::cli::exit_code(&e)
        }
    }
}
