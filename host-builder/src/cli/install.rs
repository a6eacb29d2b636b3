//! The commands that install and remove games through the device's install code:
//! `install` and `uninstall`.

use super::trust::trust_store;
use argh::FromArgs;
use std::path::PathBuf;

#[derive(FromArgs)]
/// Verify and install a game from a library (the device's install code, with C zstd).
#[argh(subcommand, name = "install")]
pub(super) struct InstallCmd {
    #[argh(option, short = 'g')]
    /// title id, or the path of a .manifest file
    game: String,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(option, default = "PathBuf::from(\"./install\")")]
    /// where games are installed (default ./install)
    install_dir: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
}

#[derive(FromArgs)]
/// Remove a game that romlib installed (nothing else is touched).
#[argh(subcommand, name = "uninstall")]
pub(super) struct UninstallCmd {
    #[argh(option, short = 't')]
    /// title id
    title_id: String,
    #[argh(option, default = "PathBuf::from(\"./install\")")]
    /// where games are installed (default ./install)
    install_dir: PathBuf,
}

/// `romlib install`.
pub(super) fn install(c: InstallCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let trust = trust_store(&lib, &c.trusted_key, true)?;
    let m = lib.open_game(&c.game, &trust)?;
    let mut dec = crate::zstd_decoder::ZstdDecoder::default();
    let r = romlib_device::install::install_game(&lib, &m, &c.install_dir, &mut dec)?;
    println!(
        "{}",
        r.installed_message(&m.body().title_id, &c.install_dir)
    );
    Ok(())
}

/// `romlib uninstall`.
pub(super) fn uninstall(c: UninstallCmd) -> anyhow::Result<()> {
    let kept = romlib_device::install::uninstall(&c.install_dir, &c.title_id)?;
    println!(
        "{}",
        romlib_device::install::uninstalled_message(&c.title_id, &c.install_dir, &kept)
    );
    Ok(())
}
