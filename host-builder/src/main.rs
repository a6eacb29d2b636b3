//! `romlib`: the host command line. Parses arguments, calls the library's command line
//! ([`romlib_host::cli`]), maps errors to exit codes (0 success, 1 failure, 2 usage).

use std::process::ExitCode;
use std::sync::Mutex;

/// Where the last panic happened and what it said, for the one-line report.
static PANIC: Mutex<Option<(String, String)>> = Mutex::new(None);

fn main() -> ExitCode {
    let cli: romlib_host::cli::Cli = romlib_device::cli::parse_args("romlib");
    let out = cli.output();
    // `verify` checks every index page before it reads a table, but a build opens the
    // index without that whole-file check, and redb may panic on a corrupt page. No
    // command may die of that: the panic becomes a one-line error. ROMLIB_BACKTRACE=1
    // shows the full report as well, for a developer.
    let verbose = std::env::var_os("ROMLIB_BACKTRACE").is_some();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| l.to_string()).unwrap_or_default();
        if let Ok(mut p) = PANIC.lock() {
            p.get_or_insert((msg, at));
        }
        if verbose {
            default_hook(info);
        }
    }));
    match std::panic::catch_unwind(|| romlib_host::cli::run(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => romlib_host::cli::report_error(&out, &e),
        Err(_) => {
            let (msg, at) = PANIC
                .lock()
                .ok()
                .and_then(|mut p| p.take())
                .unwrap_or_default();
            if at.contains("/redb-") {
                eprintln!(
                    "romlib: the library's index.db is damaged (redb: {msg}); `romlib \
                     rebuild-index -r LIBRARY` rebuilds it from the packs and manifests"
                );
            } else {
                eprintln!("romlib: internal error: {msg} (at {at}); please report it");
            }
            ExitCode::FAILURE
        }
    }
}
