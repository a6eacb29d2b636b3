//! The commands that read games in place through the device's code: `cat` and `mount`.

use super::trust::trust_store;
use argh::FromArgs;
use std::path::PathBuf;

#[derive(FromArgs)]
/// Write one file of a game, or a byte range of it, to standard output, straight from the
/// packs; every chunk is checked against the signed manifest before any of it is written.
#[argh(subcommand, name = "cat")]
pub(super) struct CatCmd {
    #[argh(option, short = 'g')]
    /// title id, or the path of a .manifest file
    game: String,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
    #[argh(option, default = "0")]
    /// first byte to write (default 0; beyond the end of the file is an error)
    offset: u64,
    #[argh(option)]
    /// most bytes to write (default: up to the end of the file)
    length: Option<u64>,
    #[argh(positional)]
    /// path of the file inside the game, as the manifest lists it (e.g. data/level1.dat)
    path: String,
}

#[derive(FromArgs)]
/// Show the library as a read-only file system at MOUNTPOINT (an empty folder): one folder
/// per trusted game, every chunk checked before it is read. Runs until Ctrl-C or
/// `fusermount3 -u MOUNTPOINT`, then exits 0 with nothing left mounted.
#[argh(subcommand, name = "mount")]
pub(super) struct MountCmd {
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
    #[argh(positional)]
    /// empty folder to mount the library on
    mountpoint: PathBuf,
}

/// `romlib cat`.
pub(super) fn cat(c: CatCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let trust = trust_store(&lib, &c.trusted_key, true)?;
    let dec = crate::zstd_decoder::ZstdDecoder::default();
    let game = romlib_device::read::Game::open(&lib, &c.game, &trust, dec)?;
    let id = game.find(&c.path)?;
    let out = &mut *romlib_device::cli::raw_stdout();
    let stdout = std::path::Path::new("standard output");
    match game.copy_range(id, c.offset, c.length, out, stdout) {
        // A reader that stopped early (`| head`) is not a failure of ours.
        Err(romlib_device::Error::Io {
            op: "write",
            source,
            ..
        }) if source.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// `romlib mount`.
pub(super) fn mount(c: MountCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let trust = trust_store(&lib, &c.trusted_key, true)?;
    let mp = c.mountpoint.clone();
    romlib_device::mount::serve(
            &lib,
            &c.mountpoint,
            trust,
            crate::zstd_decoder::ZstdDecoder::default,
            "romlib",
            |m| {
                eprintln!(
                    "romlib: mounted {} game(s) at {} ({} left out); Ctrl-C or `fusermount3 -u {}` unmounts",
                    m.games,
                    mp.display(),
                    m.skipped,
                    mp.display()
                )
            },
        )
        .map_err(Into::into)
}
