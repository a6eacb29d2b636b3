//! `romlib-device install`, `uninstall` and `cleanup`: a game onto the card, off it, and
//! what interrupted operations left.

use super::json::Obj;
use super::output::Output;
use super::reporter::{ProgressMode, Reporter};
use super::{library, trust, usage_layout, Failure};
use crate::chunks::decoder::RuzstdDecoder;
use crate::install::{
    cleanup, count, install_game_with, layout, uninstall, uninstalled_message, InstallOptions,
    Placement,
};
use crate::{Library, Result};
use argh::FromArgs;
use std::path::PathBuf;

#[derive(FromArgs)]
/// Verify and install a game; it appears only once complete.
#[argh(subcommand, name = "install")]
pub struct InstallCmd {
    #[argh(option, short = 'g')]
    /// title id, or the path of a .manifest file
    pub game: String,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    pub romlib: Option<PathBuf>,
    #[argh(option)]
    /// install from a library on a web server instead (http[s]://HOST[:PORT]/PATH/; any
    /// static server, an S3 bucket or `romlib serve`): fetches the manifest, the locator and
    /// only the chunk records needed, in ranged requests (from a server without ranges, by
    /// reading the packs through once, with a warning); follows redirects, never from https
    /// down to http
    pub from: Option<String>,
    #[argh(option)]
    /// with an https:// --from: a PEM file of certificate authorities to trust besides the
    /// system's (SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt and the like)
    pub ca_file: Option<PathBuf>,
    #[argh(option, default = "30")]
    /// seconds before a stalled connection is given up (with --from; default 30)
    pub timeout: u64,
    #[argh(option, default = "super::DEFAULT_MIN_RATE")]
    /// with --from: bytes per second below which a server that keeps sending is given up
    /// after 20 s of waiting on it (error code network; default 4096, 0 turns it off)
    pub min_rate: u64,
    #[argh(switch)]
    /// with --from: read the library even though its signed snapshot expired (a server
    /// left stale, or this device's clock wrong; error code expired without it)
    pub allow_expired: bool,
    #[argh(option)]
    /// with --from: a library folder on this device to take chunks from instead of
    /// downloading them (installed games and a cut-off earlier attempt are always reused)
    pub reuse: Option<PathBuf>,
    #[argh(option)]
    /// where games are installed
    pub install_dir: PathBuf,
    #[argh(option)]
    /// install into the folder a handheld OS expects for the game's system (from its
    /// signed manifest): muos, knulli (batocera), minui (nextui), onion, arkos (darkos);
    /// --install-dir is then the OS's ROM root
    pub layout: Option<String>,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys)
    pub trusted_key: Vec<PathBuf>,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub progress: ProgressMode,
    #[argh(switch)]
    /// do not refuse a game the file system seems to have no room for (a compressing file
    /// system holds more than its free space says); a full disk still leaves nothing
    pub no_room_check: bool,
    #[argh(switch)]
    /// refuse (error code locked) instead of waiting while another romlib operation works
    /// in the install folder
    pub no_wait: bool,
    #[argh(switch)]
    /// replace the installed game even by an older revision of it (refused otherwise,
    /// error code downgrade: a mirror or an old copy of the library serving an older
    /// release)
    pub allow_downgrade: bool,
    #[argh(option, default = "8")]
    /// memory it may take, in MiB (default 8, for a 128 MiB handheld): chunks are decoded
    /// on every core this process may use, on as many threads as fit in it
    pub max_memory: u64,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub json: bool,
}

#[derive(FromArgs)]
/// Remove a game that romlib installed.
#[argh(subcommand, name = "uninstall")]
pub struct UninstallCmd {
    #[argh(option, short = 'g')]
    /// title id of the game (-t and --title-id also work)
    pub game: String,
    #[argh(option)]
    /// where games are installed
    pub install_dir: PathBuf,
    #[argh(option)]
    /// the layout the game was installed with: it is looked for in that layout's system
    /// folders under --install-dir
    pub layout: Option<String>,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub json: bool,
}

#[derive(FromArgs)]
/// Finish or roll back interrupted installs and uninstalls in an install folder and remove
/// what they left (unfinished staging, cut-off downloads kept for reuse).
#[argh(subcommand, name = "cleanup")]
pub struct CleanupCmd {
    #[argh(option)]
    /// where games are installed
    pub install_dir: PathBuf,
    #[argh(option)]
    /// the layout games were installed with: its system folders under --install-dir are
    /// cleaned up too
    pub layout: Option<String>,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub json: bool,
}

impl InstallCmd {
    /// Installs the game and reports it.
    pub fn run(self, out: &Output) -> Result<(), Failure> {
        let c = self;
        usage_layout(&c.layout)?;
        // Before any other thread starts: SIGINT and SIGTERM then stop the install cleanly
        // (a download is kept for the next attempt).
        crate::cancel::arm().map_err(|e| crate::Error::io(&c.install_dir, "take signals", e))?;
        let scratch = c.install_dir.join(crate::install::STAGING_DIR);
        let lib = library(&c.romlib, &c.from, &scratch, &c.net())?;
        let m = lib.open_game(&c.game, &trust(&c.trusted_key)?)?;
        let reuse = c.reuse.as_ref().map(|p| Library::new(p.clone()));
        let (install_dir, placement) = match &c.layout {
            Some(l) => layout::layout_dir(&c.install_dir, l, m.body())?,
            None => (c.install_dir.clone(), Placement::Folder),
        };
        let mut progress = Reporter::new(c.progress, "install", false);
        if let Some(remote) = lib.remote_source() {
            progress.count_downloads(|| remote.downloaded());
        }
        let title = m.body().title_id.clone();
        progress.phase(
            "install",
            Some(&title),
            Some(m.body().total_size),
            Some(m.body().chunk_count),
        );
        let r = install_game_with(
            &lib,
            &m,
            &install_dir,
            &mut RuzstdDecoder::default(),
            &InstallOptions {
                reuse: reuse.as_ref(),
                progress: &progress,
                check_room: !c.no_room_check,
                wait: !c.no_wait,
                placement,
                allow_downgrade: c.allow_downgrade,
                max_memory: c.max_memory.saturating_mul(1 << 20),
            },
        );
        progress.finish();
        let no_ranges = lib.remote_source().and_then(|r| r.ranges_ignored());
        if let Some(extra) = no_ranges {
            out.warn(&format!(
                "{}: the server ignores byte ranges, so packs were read through from their \
                 start: {extra} bytes downloaded beyond the records needed (serve the library \
                 with nginx, `romlib serve` or another server with ranges to avoid them)",
                lib.root().display()
            ));
        }
        let r = r?;
        for note in r.recovered.iter().chain(&r.left_alone) {
            out.warn(note);
        }
        let mut human = r.installed_message(&title, &install_dir);
        let (bytes, requests) = lib.remote_source().map_or((0, 0), |r| r.transferred());
        if lib.remote_source().is_some() {
            human.push_str(&format!(
                "\ndownloaded {bytes} bytes in {}; {} ({} bytes) reused from this device",
                count(requests as usize, "request", "requests"),
                count(r.reused_chunks as usize, "chunk", "chunks"),
                r.reused_bytes
            ));
        }
        out.result(
            r.installed_json(
                &title,
                &install_dir,
                bytes,
                requests,
                no_ranges.unwrap_or(0),
            ),
            &human,
        );
        Ok(())
    }
}

impl UninstallCmd {
    /// Uninstalls the game and reports it.
    pub fn run(self, out: &Output) -> Result<(), Failure> {
        let c = self;
        usage_layout(&c.layout)?;
        let install_dir = match &c.layout {
            Some(l) => layout::installed_dir(&c.install_dir, l, &c.game)?,
            None => c.install_dir.clone(),
        };
        let u = uninstall(&install_dir, &c.game)?;
        report_uninstalled(out, &c.game, &install_dir, u);
        Ok(())
    }
}

impl CleanupCmd {
    /// Finishes or rolls back interrupted operations and reports what it did.
    pub fn run(self, out: &Output) -> Result<(), Failure> {
        let c = self;
        usage_layout(&c.layout)?;
        let mut folders = vec![c.install_dir.clone()];
        if let Some(l) = &c.layout {
            folders.extend(layout::layout_folders(&c.install_dir, l)?);
        }
        let (mut done, mut found) = (Vec::new(), Vec::new());
        for f in &folders {
            let (d, l) = cleanup(f)?;
            done.extend(d);
            found.extend(l);
        }
        if c.layout.is_none() && done.is_empty() && found.is_empty() {
            if let Some(e) = layout::needs_layout(&c.install_dir) {
                return Err(e.into());
            }
        }
        let (alone, handled): (Vec<_>, Vec<_>) = found.iter().partition(|f| f.left_alone());
        let bytes: u64 = handled.iter().map(|l| l.bytes).sum();
        let left_alone: Vec<String> = alone
            .iter()
            .map(|f| format!("{}: {}", crate::folder::shown(&f.path), f.describe()))
            .collect();
        for line in &left_alone {
            out.warn(line);
        }
        let mut human: String = done.iter().map(|d| format!("{d}\n")).collect();
        human.push_str(&format!(
            "{}: {} removed or finished, {bytes} bytes freed",
            c.install_dir.display(),
            count(handled.len(), "leftover", "leftovers")
        ));
        if !alone.is_empty() {
            human.push_str(&format!(
                "; {} left alone",
                count(alone.len(), "item", "items")
            ));
        }
        out.result(
            Obj::new()
                .field("install_dir", c.install_dir.as_path())
                .field("done", done)
                .field("bytes_freed", bytes)
                .field("left_alone", left_alone),
            &human,
        );
        Ok(())
    }
}

/// Reports an uninstall (both binaries' `uninstall`): the notes of what was recovered or
/// left alone as warnings, then the result (`game`, `path`, `kept`, `recovered`,
/// `left_alone` in JSON).
pub fn report_uninstalled(
    out: &Output,
    title: &str,
    install_dir: &std::path::Path,
    u: crate::install::Uninstalled,
) {
    for note in u.recovered.iter().chain(&u.left_alone) {
        out.warn(note);
    }
    let human = uninstalled_message(title, install_dir, &u.kept);
    out.result(
        Obj::new()
            .field("game", title)
            .field("path", install_dir.join(title).as_path())
            .field("kept", u.kept)
            .field("recovered", u.recovered)
            .field("left_alone", u.left_alone),
        &human,
    );
}
