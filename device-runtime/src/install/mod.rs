//! Verify, install and uninstall: the one implementation both binaries use.
//!
//! Install (SPEC section 7): every file is written under
//! `<install-dir>/.romlib-staging/<title>.new/`, fsynced, and every chunk, file and the
//! chunk table are verified; then a completion marker is written last and the staged
//! folder is renamed to `<install-dir>/<title>`. Replacing an installed game swaps the two
//! folders in one step where the file system can ([`exchange`]), then names the replaced
//! copy `.romlib-staging/<title>.old`; elsewhere it first moves the game there, and for a
//! moment no game is visible. [`recover`] (run before every operation) rolls such a swap
//! back or forward after a crash, so the game is always the old or the new.
//!
//! The files in a game's folder that its manifest does not own (an emulator's saves,
//! configs, screenshots) are the user's: a reinstall or upgrade carries them into the new
//! version, and uninstall leaves them in the folder with a `.romlib-kept` note, which lets
//! a later install of the game take the folder back. They are moved by rename only, and
//! only after the new version is in place, so a crash at any point loses none of them:
//! [`recover`] finishes carrying them.

use crate::chunks::decoder::ChunkDecoder;
use crate::chunks::reuse::LocalChunks;
use crate::chunks::ChunkSource;
use crate::error::{Error, Result};
use crate::folder::{unexpected, Folder, Kind};
use crate::fsio;
use crate::library::Library;
use crate::progress::{NoProgress, Progress};
use crate::trusted::{ManifestFile, VerifiedManifest};
use std::ffi::OsStr;
use std::fs::{self};
use std::io::{BufWriter, Write};
use std::path::Path;

mod adopt;
mod carry;
pub mod flat;
mod installed;
mod inventory;
pub mod layout;
pub mod names;
mod recover;
mod stream;
pub mod target_fs;
mod uninstall;
mod zip;
pub use adopt::{adopt, Adopted};
use carry::{kept_note, retire_copy, Carry};
pub use carry::{uninstalled_message, KEPT_MARKER};
pub use flat::Placement;
pub use installed::{
    check_installed, installed_manifest, installed_titles, repair_installed, BadRange, FileDamage,
    InstalledCheck, RepairReport,
};
pub use inventory::{cleanup, count, installed_games, leftovers, leftovers_note, Installed};
use names::{staging_entry, Role};
pub use recover::{recover_in, survey, Found, Plan, Recovered};
pub use stream::{decoder_threads, verify_game, DEFAULT_MAX_MEMORY};
use stream::{stream_game, DirSink, Streaming};
pub use uninstall::{uninstall, Uninstalled};

/// The staging folder inside an install directory.
pub const STAGING_DIR: &str = ".romlib-staging";
/// Beside the games: what an install over the network that was cut off had written (a
/// folder per title, and the manifest it was written from), reused by the next attempt.
pub const RESUME_DIR: &str = ".romlib-resume";
/// The completion marker written last into an installed game's folder: a few text lines
/// (title, chunk-table hash, signer, `manifest-bytes N`), a blank line, then the N bytes
/// of the manifest it was installed from, so a later install over the network can reuse
/// the chunks its files hold.
pub const MARKER: &str = ".romlib-installed";

/// Figures of a verified or installed game.
#[derive(Debug, Clone, Default)]
pub struct GameReport {
    /// Files written or checked.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
    /// Chunks decoded and verified.
    pub chunks: u64,
    /// Of those, chunks taken from files already on the device (network installs).
    pub reused_chunks: u64,
    /// Their bytes.
    pub reused_bytes: u64,
    /// Files of the folder that the game does not own, carried into the new version
    /// (relative paths; a name the new version took got `.kept` added).
    pub kept: Vec<String>,
    /// What an interrupted earlier operation had left, finished or removed first.
    pub recovered: Vec<String>,
    /// What was found in the staging and resume folders that romlib did not write or
    /// cannot account for, left alone: one line each.
    pub left_alone: Vec<String>,
    /// For a game placed without a folder of its own ([`Placement::Files`],
    /// [`Placement::Zip`]): the file a front end lists, relative to the install folder (the
    /// ROM, the disc's sheet, the archive).
    pub placed: Option<String>,
}

impl GameReport {
    /// The result object both binaries print with `--json` once game `title` is installed
    /// into `install_dir`, `downloaded` bytes in `requests` HTTP requests, of which
    /// `extra_without_ranges` only because the server ignores byte ranges.
    pub fn installed_json(
        &self,
        title: &str,
        install_dir: &Path,
        downloaded: u64,
        requests: u64,
        extra_without_ranges: u64,
    ) -> crate::cli::json::Obj {
        crate::cli::json::Obj::new()
            .field("game", title)
            .field("path", self.path(title, install_dir).as_path())
            .field("files", self.files)
            .field("bytes", self.bytes)
            .field("chunks", self.chunks)
            .field("reused_chunks", self.reused_chunks)
            .field("reused_bytes", self.reused_bytes)
            .field("bytes_downloaded", downloaded)
            .field("requests", requests)
            .field("bytes_extra_without_ranges", extra_without_ranges)
            .field("kept", self.kept.clone())
            .field("recovered", self.recovered.clone())
            .field("left_alone", self.left_alone.clone())
    }

    /// Where game `title` lies in `install_dir`: its folder, or its placed file.
    pub fn path(&self, title: &str, install_dir: &Path) -> std::path::PathBuf {
        install_dir.join(self.placed.as_deref().unwrap_or(title))
    }

    /// What both binaries print once game `title` is installed into `install_dir`.
    pub fn installed_message(&self, title: &str, install_dir: &Path) -> String {
        format!(
            "installed {title} into {}: {}, {} bytes, {} verified{}",
            self.path(title, install_dir).display(),
            count(self.files as usize, "file", "files"),
            self.bytes,
            count(self.chunks as usize, "chunk", "chunks"),
            kept_note("; kept", &self.kept)
        )
    }
}

/// Takes install folder `inst`'s lock, held until the result is dropped by every operation
/// that changes the folder (install, uninstall, repair, cleanup), so two never work in one
/// folder at once: the second waits (telling `progress`) when `wait`, else refuses with
/// [`Error::Locked`], and never takes the first one's staging for an interrupted
/// operation's. The lock is on the folder itself: nothing is created for it.
pub(crate) fn lock(
    inst: &Folder,
    wait: bool,
    progress: &dyn Progress,
) -> Result<crate::folder::DirLock> {
    if let Some(held) = inst.lock(false)? {
        return Ok(held);
    }
    if !wait {
        return Err(Error::Locked {
            path: inst.path().to_path_buf(),
        });
    }
    progress.waiting(&format!(
        "{}: another romlib operation is working in this folder; waiting for it (--no-wait \
         refuses instead)",
        inst.path().display()
    ));
    inst.lock(true)?.ok_or_else(|| Error::Locked {
        path: inst.path().to_path_buf(),
    })
}

/// Whether `dir` is a game folder romlib completed: its completion marker is a file.
pub(crate) fn is_ours(dir: &Folder) -> bool {
    dir.kind(MARKER).is_ok_and(|k| k == Kind::File)
}

/// Whether `dir` holds an uninstall's note of the user's files left in it.
pub(crate) fn is_kept(dir: &Folder) -> bool {
    dir.kind(KEPT_MARKER).is_ok_and(|k| k == Kind::File)
}

/// Opens install folder `path`, creating it first with `create`. The user named it, so
/// it may lead through links; nothing below it is followed.
fn open_install_dir(path: &Path, create: bool) -> Result<Folder> {
    if create {
        if path.is_file() {
            return Err(Error::Unexpected {
                path: path.to_path_buf(),
                found: "a file",
                want: "a folder (the install folder, created if absent)",
            });
        }
        fs::create_dir_all(path).map_err(|e| Error::io(path, "create directory", e))?;
    }
    Folder::open(path).map_err(|e| match e {
        Error::NotFound { path, .. } => Error::NotFound {
            path,
            what: "install folder",
        },
        e => e,
    })
}

/// Cleans up after interrupted installs, reinstalls, uninstalls and repairs in
/// `install_dir` (see [`recover_in`]); cut-off downloads stay for reuse. An install folder
/// that does not exist has nothing to recover.
pub fn recover(install_dir: &Path) -> Result<Recovered> {
    match Folder::open(install_dir) {
        Ok(inst) => recover_in(&inst, false),
        Err(Error::NotFound { .. }) => Ok(Recovered::default()),
        Err(e) => Err(e),
    }
}

/// Game `title`'s folder in `inst`: `None` if there is none; the folder if romlib may
/// install over it (a game romlib completed, or the user's files an uninstall kept);
/// otherwise an error, nothing changed.
fn live_game(inst: &Folder, title: &str) -> Result<Option<Folder>> {
    match inst.kind(title)? {
        Kind::Missing => Ok(None),
        Kind::Dir => {
            let live = inst.sub_dir(title)?;
            if is_ours(&live) || is_kept(&live) {
                Ok(Some(live))
            } else {
                Err(Error::NotOurs {
                    path: inst.at(title),
                })
            }
        }
        k => Err(unexpected(inst.at(title), k, "a game's folder")),
    }
}

/// Refuses when a staging entry of game `title` is still there after [`recover_in`] (it
/// was left alone, so romlib will not work over it).
fn staging_clear(staging: &Folder, title: &str) -> Result<()> {
    for role in [Role::New, Role::Old, Role::Del, Role::Repair] {
        let name = staging_entry(title, role);
        match staging.kind(&name)? {
            Kind::Missing => {}
            k => {
                return Err(unexpected(
                    staging.at(&name),
                    k,
                    "none: it is not in a state romlib leaves, so romlib will not work over it \
                     (`list-games --install-dir` says why; move it away)",
                ))
            }
        }
    }
    Ok(())
}

/// The resume folder of `inst`, if it is there and is a folder (a link or file there is
/// left alone, and nothing is resumed or kept).
fn resume_folder(inst: &Folder) -> Option<Folder> {
    inst.sub(RESUME_DIR).ok().flatten()
}

/// Installs a verified game into `install_dir/<title>`, atomically.
pub fn install_game(
    lib: &Library,
    m: &VerifiedManifest,
    install_dir: &Path,
    decoder: &mut (dyn ChunkDecoder + Send),
) -> Result<GameReport> {
    install_game_with(lib, m, install_dir, decoder, &InstallOptions::default())
}

/// How an install goes beyond the defaults of [`install_game`].
pub struct InstallOptions<'a> {
    /// A library folder on the device to take chunks from instead of downloading them
    /// (installs from a remote library).
    pub reuse: Option<&'a Library>,
    /// Told of every batch of chunks written.
    pub progress: &'a dyn Progress,
    /// Refuse a game the file system has no room for, before writing (on by default; off
    /// where the file system's free space says little, e.g. a compressing one: a full disk
    /// then fails the install as it writes, which leaves nothing either).
    pub check_room: bool,
    /// Wait while another romlib operation works in the install folder (on by default);
    /// off, refuse at once with [`Error::Locked`] (`--no-wait`).
    pub wait: bool,
    /// Where the game's files go in the install folder ([`flat::choose`] for a layout).
    pub placement: Placement,
    /// Replace an installed game by a lower revision of it (`--allow-downgrade`); off,
    /// that is refused with [`Error::Downgrade`] before anything is written.
    pub allow_downgrade: bool,
    /// Memory the install may take (`--max-memory`): it bounds the decoder threads
    /// ([`decoder_threads`]).
    pub max_memory: u64,
}

impl Default for InstallOptions<'_> {
    fn default() -> Self {
        Self {
            reuse: None,
            progress: &NoProgress,
            check_room: true,
            wait: true,
            placement: Placement::Folder,
            allow_downgrade: false,
            max_memory: stream::DEFAULT_MAX_MEMORY,
        }
    }
}

/// [`install_game`] with [`InstallOptions`].
pub fn install_game_with(
    lib: &Library,
    m: &VerifiedManifest,
    install_dir: &Path,
    decoder: &mut (dyn ChunkDecoder + Send),
    opts: &InstallOptions,
) -> Result<GameReport> {
    let created = matches!(
        fs::symlink_metadata(install_dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound
    );
    let r = install_into(lib, m, install_dir, decoder, opts);
    // A failed install leaves no install folder it created (unless something was written
    // there meanwhile, a download kept for the next attempt among them: then it stays).
    if r.is_err() && created {
        let _ = fs::remove_dir(install_dir);
    }
    r
}

fn install_into(
    lib: &Library,
    m: &VerifiedManifest,
    install_dir: &Path,
    decoder: &mut (dyn ChunkDecoder + Send),
    opts: &InstallOptions,
) -> Result<GameReport> {
    let (reuse, progress, memory) = (opts.reuse, opts.progress, opts.max_memory);
    let title = m.body().title_id.clone();
    let inst = open_install_dir(install_dir, true)?;
    let _lock = lock(&inst, opts.wait, progress)?;
    let recovered = recover_in(&inst, false)?;
    let placement = opts.placement;
    let flat = placement != Placement::Folder;
    // Placed without a folder, a folder of the same name is replaced only when it is
    // romlib's copy of the game (installed as a folder before); the user's is no concern.
    let live = match flat {
        false => live_game(&inst, &title)?,
        true => match inst.kind(&title)? {
            Kind::Dir => Some(inst.sub_dir(&title)?).filter(is_ours),
            _ => None,
        },
    };
    if !opts.allow_downgrade {
        refuse_downgrade(&inst, m, live.as_ref())?;
    }
    let staging = inst.ensure_sub(STAGING_DIR)?;
    let drop_staging = || {
        let _ = inst.remove_empty_dir(OsStr::new(STAGING_DIR));
    };
    staging_clear(&staging, &title).inspect_err(|_| drop_staging())?;
    let new_name = staging_entry(&title, Role::New);
    let new = staging
        .create_dir(&new_name)
        .inspect_err(|_| drop_staging())?;
    // Only this process's own staging entry is ever removed whole here.
    let drop_new = || {
        let _ = staging.remove_tree(OsStr::new(&new_name));
        drop_staging();
    };
    // What the card can hold, before a byte of the game is written.
    let mut room = None;
    let fits = target_fs::probe(new.path()).and_then(|mut t| {
        if !opts.check_room {
            t.free = None;
        }
        let game: u64 = m.body().files.iter().map(|f| f.size).sum();
        room = t.free.map(|f| f.saturating_sub(game));
        target_fs::check_fits(&t, install_dir, &m.body().files)
    });
    if let Err(e) = fits {
        drop_new();
        return Err(e);
    }
    let mut sink = DirSink::new(new.try_clone()?);
    // Over the network, reuse what the device holds: a cut-off earlier attempt, and the
    // files of installed games.
    let remote = lib.remote_source().is_some();
    let mut local = None;
    let streamed = (|| {
        let mut source = ChunkSource::open(lib, m)?;
        if !remote {
            let how = Streaming {
                local: None,
                progress,
                max_memory: memory,
            };
            return stream_game(lib, m, source, decoder, &mut sink, how);
        }
        let mut sources = Vec::new();
        if let Some(res) = resume_folder(&inst) {
            let manifest = format!("{title}.manifest");
            if let (Ok(Some(_)), Ok(Some(file))) = (res.sub(&title), res.open_file(&manifest)) {
                let path = res.at(&manifest);
                let len = fsio::file_len(&file, &path)?;
                if let Ok(mf) = ManifestFile::open_in(&path, file, 0, len) {
                    sources.push((format!("{RESUME_DIR}/{title}"), mf, None));
                }
            }
        }
        for e in inst.entries()? {
            let Some(name) = names::game_folder(&e.name, e.kind) else {
                continue;
            };
            if let Ok(Some(dir)) = inst.sub(name) {
                if is_ours(&dir) {
                    if let Some(mf) = marker_manifest(&dir) {
                        sources.push((name.to_string(), mf, None));
                    }
                }
            }
        }
        // Games placed without a folder: their files lie where their records say.
        for r in flat::records(&inst)? {
            if r.placement == Placement::Files {
                sources.push((String::new(), r.manifest, Some(r.paths)));
            }
        }
        // The bases of the game's delta chunks too: an installed older version holds them.
        let bases = source.first_base_hashes(crate::chunks::reuse::window_len())?;
        let found = LocalChunks::build(m, &bases, &inst, sources)?;
        let found = local.insert(match reuse {
            Some(r) => found.with_library(r)?,
            None => found,
        });
        // From a server without byte ranges, what the device lacks of each pack is read
        // once, forward, into a scratch file beside the staging folder (when what it has
        // is known up front: not for a game of several windows, or with `--reuse`).
        let local = &*found;
        if local.is_empty() || local.covers_game() {
            source.spool_without_ranges(
                &staging,
                &format!("{title}.spool"),
                room,
                &mut |k| {
                    !local.is_empty()
                        && stream::table_hash(m, k).is_some_and(|h| local.may_hold(k, &h))
                },
                &mut |h| local.may_hold_any(h),
            )?;
        }
        let how = Streaming {
            local: Some(found),
            progress,
            max_memory: memory,
        };
        stream_game(lib, m, source, decoder, &mut sink, how)
    })();
    let mut report = match streamed {
        Ok(r) => r,
        Err(e) => {
            drop(sink);
            if remote {
                // Keep what was written for the next attempt (the larger of the two).
                let _ = keep_partial(&inst, &staging, &new_name, m);
            }
            drop_new();
            return Err(e);
        }
    };
    if let Some(l) = &local {
        report.reused_chunks = l.reused;
        report.reused_bytes = l.reused_bytes;
    }
    if flat {
        drop(sink);
        let staged = flat::stage(&new, m.body(), placement)
            .and_then(|listed| flat::precheck(&inst, &new, m.body(), placement).map(|()| listed));
        match staged {
            Ok(listed) => report.placed = Some(listed),
            Err(e) => {
                drop_new();
                return Err(e);
            }
        }
    }
    let mut leftover = None;
    let mut leftover_lines = Vec::new();
    let mut finish = || -> Result<Vec<String>> {
        write_marker(&new, MARKER, m, placement)?;
        sync_dirs(&new)?;
        if flat {
            flat::commit(&inst, &staging, &new_name, &title)?;
            // Installed as a folder before: that copy goes, the user's files in it stay.
            if live.is_some() {
                let mut alone = Vec::new();
                let kept = uninstall::retire_folder_game(&inst, &staging, &title, &mut alone)?;
                leftover_lines.extend(alone);
                return Ok(kept);
            }
            return Ok(Vec::new());
        }
        let old_name = staging_entry(&title, Role::Old);
        if live.is_some() {
            if staging.exchange(&new_name, &inst, &title)? {
                // One step: the new game is live and `new` holds the old copy, which
                // takes its `.old` name (a crash in between is finished by [`recover`]).
                inst.sync()?;
                staging.sync()?;
                staging.rename_noreplace(&new_name, &staging, &old_name)?;
            } else {
                // Two steps: for a moment no game is there (until [`recover`] rolls the
                // swap back or forward, a crash right here shows none).
                inst.rename_noreplace(&title, &staging, &old_name)?;
                staging.rename_noreplace(&new_name, &inst, &title)?;
            }
        } else {
            staging.rename_noreplace(&new_name, &inst, &title)?;
        }
        inst.sync()?;
        // Placed without a folder before: that copy goes.
        if flat::record(&inst, &title)?.is_some() {
            flat::uninstall(&inst, &staging, &title)?;
        }
        if staging.kind(&old_name)? == Kind::Missing {
            return Ok(Vec::new());
        }
        // Both folders changed: the old copy (and the user's files in it) must not be lost
        // to a power cut before they are carried.
        staging.sync()?;
        let (kept, gone) = retire_copy(&staging, &old_name, &inst, &title, Carry::IntoGame)?;
        if !gone {
            leftover = Some(staging.at(&old_name));
        }
        Ok(kept)
    };
    let finished = finish();
    report.recovered = recovered.done.clone();
    report.left_alone = recovered.lines();
    match finished {
        Ok(kept) => report.kept = kept,
        Err(e) => {
            let _ = recover_in(&inst, false);
            return Err(e);
        }
    }
    report.left_alone.extend(leftover_lines);
    if let Some(p) = leftover {
        report.left_alone.push(format!(
            "{}: holds files the game's previous version did not own and romlib could not carry; left alone",
            p.display()
        ));
    }
    drop_staging();
    // Done: forget the cut-off attempt, remember the manifest for later reuse. Neither
    // matters to the installed game, so failing here only costs reuse later.
    if let Some(res) = resume_folder(&inst) {
        let _ = res.remove_tree(OsStr::new(&title));
        let _ = res.remove_file(&format!("{title}.manifest"));
        let _ = inst.remove_empty_dir(OsStr::new(RESUME_DIR));
    }
    Ok(report)
}

/// Refuses to replace the installed game of `m`'s title in `inst` (its folder `live` if
/// romlib's, or its record) by `m` when `m` is a lower revision ([`Error::Downgrade`]).
/// The installed revision is read from its marker's manifest as it is on the card.
fn refuse_downgrade(inst: &Folder, m: &VerifiedManifest, live: Option<&Folder>) -> Result<()> {
    let title = &m.body().title_id;
    let offered = m.body().revision;
    let mut installed = Vec::new();
    if let Some(dir) = live.filter(|d| is_ours(d)) {
        if let Some(mf) = marker_manifest(dir) {
            installed.push((mf.unverified_body().revision, dir.path().to_path_buf()));
        }
    }
    if let Some(r) = flat::record(inst, title)? {
        let path = inst.at(flat::listed(&r.paths));
        installed.push((r.manifest.unverified_body().revision, path));
    }
    match installed.into_iter().max_by_key(|(r, _)| *r) {
        Some((have, path)) if offered < have => Err(Error::Downgrade {
            path,
            title: title.clone(),
            have,
            offered,
        }),
        _ => Ok(()),
    }
}

/// Writes completion marker `name` into `dir` for game `m` placed as `placement` (see
/// [`MARKER`]), and fsyncs it: written as `<name>.part` and renamed, so a marker is never
/// seen half-written (a kill in between leaves an unfinished install, which is removed).
fn write_marker(
    dir: &Folder,
    name: &str,
    m: &VerifiedManifest,
    placement: Placement,
) -> Result<()> {
    let table_hex: String = m
        .body()
        .chunk_table_blake3
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let placed = match placement {
        Placement::Folder => String::new(),
        p => format!("placement {}\n", p.word()),
    };
    let text = format!(
        "title {}\nchunk-table-blake3 {table_hex}\nsigner {}\n{placed}manifest-bytes {}\n\n",
        m.body().title_id,
        String::from_utf8_lossy(&romlib_format::manifest::key_id(m.signer())),
        m.file_len()
    );
    let part = format!("{name}.part");
    dir.remove_file(&part)?;
    let marker = dir.at(&part);
    let mut f = dir.create_file(&part, 0o644)?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(&marker, "write", e))?;
    let mut w = BufWriter::new(&mut f);
    m.write_to(&mut w)
        .and_then(|()| w.flush())
        .map_err(|e| Error::io(&marker, "write", e))?;
    drop(w);
    f.sync_all().map_err(|e| Error::io(&marker, "fsync", e))?;
    dir.rename(&part, dir, name)
}

/// The manifest an installed game's completion marker holds (unverified: only used to
/// find reusable chunks, which are hashed before use, and the files the game owns).
fn marker_manifest(dir: &Folder) -> Option<ManifestFile> {
    marker_manifest_at(dir, MARKER)
}

/// [`marker_manifest`] of the marker called `name` in `dir` (a record of a game placed
/// without a folder, [`flat`]).
fn marker_manifest_at(dir: &Folder, name: &str) -> Option<ManifestFile> {
    let file = dir.open_file(name).ok()??;
    let mut head = [0u8; 1024];
    let n = std::io::Read::read(&mut (&file), &mut head).ok()?;
    let text = &head[..n];
    let end = text.windows(2).position(|w| w == b"\n\n")? + 2;
    let len: u64 = std::str::from_utf8(&text[..end])
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("manifest-bytes "))?
        .parse()
        .ok()?;
    ManifestFile::open_in(&dir.at(name), file, end as u64, len).ok()
}

/// After a failed network install: keeps the staged files (staging entry `new_name`) as
/// the resume folder of the game (with a copy of the manifest) unless the one already
/// there holds more.
fn keep_partial(
    inst: &Folder,
    staging: &Folder,
    new_name: &str,
    m: &VerifiedManifest,
) -> Result<()> {
    let title = &m.body().title_id;
    let res = inst.ensure_sub(RESUME_DIR)?;
    let manifest = format!("{title}.manifest");
    let same_game = match res.open_file(&manifest) {
        Ok(Some(file)) => {
            let path = res.at(&manifest);
            let len = fsio::file_len(&file, &path)?;
            ManifestFile::open_in(&path, file, 0, len).is_ok_and(|old| {
                old.unverified_body().chunk_table_blake3 == m.body().chunk_table_blake3
            })
        }
        _ => false,
    };
    if same_game && res.tree_bytes(OsStr::new(title)) >= staging.tree_bytes(OsStr::new(new_name)) {
        return Ok(());
    }
    // The resume entries of a valid title (the signed manifest's).
    res.remove_tree(OsStr::new(title))?;
    res.remove_file(&manifest)?;
    staging.rename_noreplace(new_name, &res, title)?;
    let mut f = res.create_file(&manifest, 0o644)?;
    m.write_to(&mut f)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(res.at(&manifest), "write", e))
}

/// Fsyncs `root` and every folder below it.
fn sync_dirs(root: &Folder) -> Result<()> {
    for e in root.entries()? {
        if e.kind == Kind::Dir {
            if let Some(sub) = e.name_str().and_then(|n| root.sub(n).ok().flatten()) {
                sync_dirs(&sub)?;
            }
        }
    }
    root.sync()
}
