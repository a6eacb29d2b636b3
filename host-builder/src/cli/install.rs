//! The commands that install and remove games through the device's install code:
//! `install` and `uninstall`.

use super::progress::report;
use super::trust::trust_store;
use argh::FromArgs;
use romlib_device::cli::output::Output;
use romlib_device::cli::reporter::ProgressMode;
use romlib_device::install::{install_game_with, layout, InstallOptions, Placement};
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
    /// install into the folder a handheld OS expects for the game's system (from its
    /// signed manifest): muos, knulli (batocera), minui (nextui), onion, arkos (darkos);
    /// --install-dir is then the OS's ROM root
    layout: Option<String>,
    #[argh(option)]
    /// trusted public key file (repeatable; default: your trust store, see `romlib trust`)
    trusted_key: Vec<PathBuf>,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub(super) progress: ProgressMode,
    #[argh(switch)]
    /// refuse (error code locked) instead of waiting while another romlib operation works
    /// in the install folder
    no_wait: bool,
    #[argh(switch)]
    /// replace the installed game even by an older revision of it (refused otherwise,
    /// error code downgrade)
    allow_downgrade: bool,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub(super) json: bool,
}

#[derive(FromArgs)]
/// Remove a game that romlib installed (nothing else is touched).
#[argh(subcommand, name = "uninstall")]
pub(super) struct UninstallCmd {
    #[argh(option, short = 'g')]
    /// title id of the game (-t and --title-id also work)
    game: String,
    #[argh(option, default = "PathBuf::from(\"./install\")")]
    /// where games are installed (default ./install)
    install_dir: PathBuf,
    #[argh(option)]
    /// the layout the game was installed with: it is looked for in that layout's system
    /// folders under --install-dir
    layout: Option<String>,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub(super) json: bool,
}

/// `romlib install`.
pub(super) fn install(c: InstallCmd) -> anyhow::Result<()> {
    usage_layout(&c.layout)?;
    let lib = romlib_device::Library::open(&c.romlib)?;
    let (progress, out) = report("install", c.progress, c.json, false);
    let trust = trust_store(&c.trusted_key)?;
    let m = lib.open_game(&c.game, &trust)?;
    let (install_dir, placement) = match &c.layout {
        Some(l) => layout::layout_dir(&c.install_dir, l, m.body())?,
        None => (c.install_dir.clone(), Placement::Folder),
    };
    let mut dec = crate::zstd_decoder::ZstdDecoder::default();
    let title = m.body().title_id.clone();
    progress.phase(
        "install",
        Some(&title),
        Some(m.body().total_size),
        Some(m.body().chunk_count),
    );
    let opts = InstallOptions {
        progress: &progress,
        wait: !c.no_wait,
        placement,
        allow_downgrade: c.allow_downgrade,
        // The host decodes with C zstd, on every core.
        max_memory: u64::MAX,
        ..InstallOptions::default()
    };
    let r = install_game_with(&lib, &m, &install_dir, &mut dec, &opts);
    progress.finish();
    let r = r?;
    for note in r.recovered.iter().chain(&r.left_alone) {
        out.warn(note);
    }
    out.result(
        r.installed_json(&title, &install_dir, 0, 0, 0),
        &r.installed_message(&title, &install_dir),
    );
    Ok(())
}

/// `romlib uninstall`.
pub(super) fn uninstall(c: UninstallCmd) -> anyhow::Result<()> {
    usage_layout(&c.layout)?;
    let install_dir = match &c.layout {
        Some(l) => layout::installed_dir(&c.install_dir, l, &c.game)?,
        None => c.install_dir.clone(),
    };
    let u = romlib_device::install::uninstall(&install_dir, &c.game)?;
    let out = Output::new("romlib", "uninstall", c.json, ProgressMode::None);
    romlib_device::cli::install::report_uninstalled(&out, &c.game, &install_dir, u);
    Ok(())
}

/// An unknown `--layout` is a usage error (exit 2), found before anything is read.
fn usage_layout(name: &Option<String>) -> crate::error::Result<()> {
    if let Some(Err(e)) = name.as_deref().map(layout::find_layout) {
        return Err(crate::error::Error::Usage(e.to_string()));
    }
    Ok(())
}
