//! The commands that move games between libraries and devices: `export`, `import` and
//! `serve`.

use super::progress::{bytes_bar, progress};
use super::trust::trust_store;
use argh::FromArgs;
use std::path::PathBuf;

#[derive(FromArgs)]
/// Write games into one self-contained portable file: their signed manifests and exactly
/// the chunks they need, each checked on the way. Exporting the same games again gives a
/// byte-identical file. Devices and every reading command accept it in place of a library.
#[argh(subcommand, name = "export")]
pub(super) struct ExportCmd {
    #[argh(option, short = 'r')]
    /// library folder (or a portable file)
    romlib: PathBuf,
    #[argh(option, short = 'g')]
    /// title id of a game to export (repeatable)
    game: Vec<String>,
    #[argh(switch)]
    /// export every game of the library
    all: bool,
    #[argh(option, short = 'o')]
    /// portable file to write (replaced atomically when complete)
    output: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
    #[argh(switch, short = 'q')]
    /// no progress bar or summary
    quiet: bool,
}

#[derive(FromArgs)]
/// Add the games of a portable file to a library (created if absent), storing only the
/// chunks it lacks. Every game must be signed by a trusted key.
#[argh(subcommand, name = "import")]
pub(super) struct ImportCmd {
    #[argh(positional)]
    /// portable file made by `romlib export`
    file: PathBuf,
    #[argh(option, short = 'o')]
    /// library folder to add the games to
    output: PathBuf,
    #[argh(option, short = 'g')]
    /// only this game (repeatable; default: every game in the file)
    game: Vec<String>,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
    #[argh(switch, short = 'q')]
    /// no progress bar or summary
    quiet: bool,
}

#[derive(FromArgs)]
/// Serve the library read-only over HTTP/1.1 (GET, HEAD, byte ranges) for `romlib-device
/// install --from http://HOST:PORT/`; one access log line per request on stdout. Runs until
/// Ctrl-C (or SIGTERM), then finishes the open requests and exits 0.
#[argh(subcommand, name = "serve")]
pub(super) struct ServeCmd {
    #[argh(option, short = 'r')]
    /// library folder
    romlib: PathBuf,
    #[argh(option, default = "String::from(\"0.0.0.0:8080\")")]
    /// address and port to listen on (default 0.0.0.0:8080; port 0 picks a free one)
    listen: String,
}

/// `romlib export`.
pub(super) fn export(c: ExportCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let trust = trust_store(&lib, &c.trusted_key, !c.quiet)?;
    let titles = if c.all {
        if !c.game.is_empty() {
            anyhow::bail!("give either -g TITLE or --all, not both");
        }
        lib.titles()?
    } else {
        c.game
    };
    let bar = bytes_bar(progress(c.quiet), "exported");
    let s = crate::transfer::export::export(&lib, &titles, &trust, &c.output, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    if !c.quiet {
        println!(
            "exported {} game(s) to {}: {} chunks ({} bytes) in {} pack(s), {} bytes",
            s.games,
            c.output.display(),
            s.chunks,
            s.chunk_bytes,
            s.packs,
            s.file_len
        );
    }
    Ok(())
}

/// `romlib import`.
pub(super) fn import(c: ImportCmd) -> anyhow::Result<()> {
    let dest = romlib_device::Library::new(&c.output);
    let trust = trust_store(&dest, &c.trusted_key, !c.quiet)?;
    let bar = bytes_bar(progress(c.quiet), "stored");
    let s = crate::transfer::import::import(&c.file, &c.output, &c.game, &trust, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    if !c.quiet {
        println!(
                "imported {} game(s) into {} ({} unchanged): {} new chunk(s), {} bytes, in {} pack(s); {} chunk(s) already there",
                s.games_written,
                c.output.display(),
                s.games_unchanged,
                s.new_chunks,
                s.new_bytes,
                s.packs,
                s.reused_chunks
            );
    }
    Ok(())
}

/// `romlib serve`.
pub(super) fn serve(c: ServeCmd) -> anyhow::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    // Block the termination signals before any thread starts, so every thread
    // inherits that, and take them on one thread with sigwait.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block()?;
    crate::transfer::serve::serve(&c.romlib, &c.listen, |server| {
        println!(
            "serving {} at http://{}/ (Ctrl-C stops)",
            c.romlib.display(),
            server.addr()
        );
        let server = server.clone();
        std::thread::spawn(move || {
            if signals.wait().is_ok() {
                server.stop();
            }
        });
    })?;
    println!("stopped");
    Ok(())
}
