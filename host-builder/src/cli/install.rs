//! The commands that install and remove games through the device's install code:
//! `install` and `uninstall`.

use super::progress::report;
use super::trust::trust_store;
use argh::FromArgs;
use romlib_device::cli::json::Obj;
use romlib_device::cli::output::Output;
use romlib_device::cli::reporter::ProgressMode;
use romlib_device::install::{install_game_reusing, uninstalled_message};
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
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub(super) progress: ProgressMode,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub(super) json: bool,
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
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub(super) json: bool,
}

/// `romlib install`.
pub(super) fn install(c: InstallCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let (progress, out) = report("install", c.progress, c.json, false);
    let trust = trust_store(&lib, &c.trusted_key, Some(&out))?;
    let m = lib.open_game(&c.game, &trust)?;
    let mut dec = crate::zstd_decoder::ZstdDecoder::default();
    let title = m.body().title_id.clone();
    progress.phase(
        "install",
        Some(&title),
        Some(m.body().total_size),
        Some(m.body().chunk_count),
    );
    let r = install_game_reusing(&lib, &m, &c.install_dir, &mut dec, None, &progress);
    progress.finish();
    let r = r?;
    for note in &r.recovered {
        out.warn(note);
    }
    out.result(
        Obj::new()
            .field("game", title.as_str())
            .field("path", c.install_dir.join(&title).as_path())
            .field("files", r.files)
            .field("bytes", r.bytes)
            .field("chunks", r.chunks)
            .field("reused_chunks", r.reused_chunks)
            .field("reused_bytes", r.reused_bytes)
            .field("bytes_downloaded", 0u64)
            .field("requests", 0u64)
            .field("bytes_extra_without_ranges", 0u64)
            .field("kept", r.kept.clone())
            .field("recovered", r.recovered.clone()),
        &r.installed_message(&title, &c.install_dir),
    );
    Ok(())
}

/// `romlib uninstall`.
pub(super) fn uninstall(c: UninstallCmd) -> anyhow::Result<()> {
    let kept = romlib_device::install::uninstall(&c.install_dir, &c.title_id)?;
    let out = Output::new("romlib", "uninstall", c.json, ProgressMode::None);
    let human = uninstalled_message(&c.title_id, &c.install_dir, &kept);
    out.result(
        Obj::new()
            .field("game", c.title_id.as_str())
            .field("path", c.install_dir.join(&c.title_id).as_path())
            .field("kept", kept),
        &human,
    );
    Ok(())
}
