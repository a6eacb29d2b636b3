//! The `cat` and `mount` commands, which both binaries offer with the same arguments and
//! behaviour; each binary only chooses the trust store and the zstd decoder.

use crate::chunks::decoder::ChunkDecoder;
use crate::error::{Error, Result};
use crate::library::Library;
#[cfg(target_os = "linux")]
use crate::play::mount::{self, Mounted};
use crate::play::read::Game;
use crate::trusted::TrustStore;
use argh::FromArgs;
use std::path::{Path, PathBuf};

#[derive(FromArgs, Debug)]
/// Write one file of a game, or a byte range of it, to standard output, straight from the
/// packs; every chunk is checked against the signed manifest before any of it is written.
#[argh(subcommand, name = "cat")]
pub struct CatCmd {
    #[argh(option, short = 'g')]
    /// title id, or the path of a .manifest file
    pub game: String,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    pub romlib: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys
    /// for romlib-device, your trust store for romlib: see `romlib trust`)
    pub trusted_key: Vec<PathBuf>,
    #[argh(option, default = "0")]
    /// first byte to write (default 0; beyond the end of the file is an error)
    pub offset: u64,
    #[argh(option)]
    /// most bytes to write (default: up to the end of the file)
    pub length: Option<u64>,
    #[argh(switch)]
    /// report an error as one JSON object on standard error (standard output is the file)
    pub json: bool,
    #[argh(positional)]
    /// path of the file inside the game, as the manifest lists it (e.g. data/level1.dat)
    pub path: String,
}

impl CatCmd {
    /// Writes the file (or range) of the game in `lib` to standard output, trusting
    /// `trust`. A reader that stops early (`| head`) is not a failure.
    pub fn run<D: ChunkDecoder>(
        &self,
        lib: &Library,
        trust: &TrustStore,
        decoder: D,
    ) -> Result<()> {
        let game = Game::open(lib, &self.game, trust, decoder)?;
        let id = game.find(&self.path)?;
        let out = &mut *super::raw_stdout();
        let stdout = Path::new("standard output");
        match game.copy_range(id, self.offset, self.length, out, stdout) {
            Err(Error::Io {
                op: "write",
                source,
                ..
            }) if source.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

#[derive(FromArgs, Debug)]
/// Show the library as a read-only file system at MOUNTPOINT (an empty folder): one folder
/// per trusted game, every chunk checked before it is read. Runs until Ctrl-C or
/// `fusermount3 -u MOUNTPOINT`, then exits 0 with nothing left mounted. Linux only.
#[argh(subcommand, name = "mount")]
pub struct MountCmd {
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    pub romlib: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys
    /// for romlib-device, your trust store for romlib: see `romlib trust`)
    pub trusted_key: Vec<PathBuf>,
    #[argh(positional)]
    /// empty folder to mount the library on
    pub mountpoint: PathBuf,
}

impl MountCmd {
    /// Mounts `lib` and serves it until it is unmounted (see `play::mount::serve`); `prog`
    /// names the binary in what it prints on standard error. On systems other than Linux
    /// it fails at once, saying mounts are not supported there.
    pub fn run<D, F>(
        &self,
        lib: &Library,
        trust: TrustStore,
        new_decoder: F,
        prog: &'static str,
    ) -> Result<()>
    where
        D: ChunkDecoder + Send + 'static,
        F: Fn() -> D + Send + Sync + 'static,
    {
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (lib, trust, new_decoder, prog);
            Err(Error::Io {
                path: self.mountpoint.clone(),
                op: "mount",
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "not supported on this system (FUSE mounts are Linux only; use cat or install)",
                ),
            })
        }
        #[cfg(target_os = "linux")]
        let mp = self.mountpoint.display();
        #[cfg(target_os = "linux")]
        mount::serve(
            lib,
            &self.mountpoint,
            trust,
            new_decoder,
            prog,
            |m: Mounted| {
                eprintln!(
                "{prog}: mounted {} at {mp} ({} left out); Ctrl-C or `fusermount3 -u {mp}` unmounts",
                crate::install::count(m.games, "game", "games"), m.skipped,
            )
            },
        )
    }
}
