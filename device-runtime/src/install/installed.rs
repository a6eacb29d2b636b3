//! Bit rot in installed games: checking an installed game against the signed manifest its
//! completion marker keeps (the signature is checked again: the marker alone proves
//! nothing), and repairing it by fetching only the chunks that differ.
//!
//! A check reads every file once, chunk by chunk (the chunk table gives each chunk's
//! length and BLAKE3), so it names the byte ranges that differ, in memory of one chunk
//! whatever the game's size. A repair writes each damaged file anew under
//! `<install-dir>/.romlib-staging/<title>.repair/`: the good ranges copied from the file
//! as it is, the bad ones read from a library (folder, portable file or HTTP server)
//! through the verified read path; each new file's size and BLAKE3 are checked against
//! the manifest, then every file is renamed over its damaged original. Until the first
//! rename nothing in the game has changed, so a failure (a full disk, a bad source) leaves
//! it as it was; [`super::recover`] removes an interrupted repair's staging.

use super::carry::owned_files;
use super::flat::{marker_placement, placed, Placement, RECORDS_DIR};
use super::names::{staging_entry, Role};
use super::{
    is_ours, marker_manifest_at, open_install_dir, recover_in, staging_clear, KEPT_MARKER, MARKER,
    STAGING_DIR,
};
use crate::chunks::decoder::ChunkDecoder;
use crate::error::{Error, Result};
use crate::folder::{unexpected, Folder, Kind};
use crate::play::read::Game;
use crate::progress::Progress;
use crate::trusted::{TrustStore, VerifiedManifest};
use romlib_format::limits::MAX_CHUNK_LEN;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

/// A byte range of an installed file that does not hold what the manifest signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRange {
    /// First byte.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
    /// The chunk-table record of its first chunk.
    pub first_chunk: u64,
    /// Its chunks.
    pub chunks: u64,
}

/// What is wrong with one file of an installed game.
#[derive(Debug, Clone)]
pub struct FileDamage {
    /// The file's path in the game.
    pub path: String,
    /// `"damaged"` (some chunks differ), `"missing"`, or `"size"` (longer or shorter than
    /// signed; the ranges say which chunks are affected).
    pub state: &'static str,
    /// The ranges that differ, merged where adjacent, in the signed file's offsets.
    pub ranges: Vec<BadRange>,
    /// The signed size.
    pub size: u64,
    /// Bytes of the ranges.
    pub bad_bytes: u64,
}

/// The result of checking one installed game.
#[derive(Debug, Clone, Default)]
pub struct InstalledCheck {
    /// Title id.
    pub title: String,
    /// Files checked (all the game owns).
    pub files: u64,
    /// Bytes the manifest signs.
    pub bytes: u64,
    /// Chunks checked.
    pub chunks: u64,
    /// Damaged and missing files.
    pub damaged: Vec<FileDamage>,
    /// Files in the folder that the game does not own (the user's: saves, configs).
    pub extra: Vec<String>,
    /// For a game placed without a folder: the file a front end lists, relative to the
    /// install folder.
    pub placed: Option<String>,
}

impl InstalledCheck {
    /// Whether every file the game owns is as signed.
    pub fn ok(&self) -> bool {
        self.damaged.is_empty()
    }

    /// Bytes of every damaged range.
    pub fn bad_bytes(&self) -> u64 {
        self.damaged.iter().map(|d| d.bad_bytes).sum()
    }
}

/// The verified manifest of installed game `title` in `install_dir`: the copy its
/// completion marker keeps, its signature checked against `trust` again.
pub fn installed_manifest(
    install_dir: &Path,
    title: &str,
    trust: &TrustStore,
) -> Result<VerifiedManifest> {
    romlib_format::path::check_title_id(title).map_err(|problem| Error::UnsafePath {
        path: install_dir.to_path_buf(),
        entry: title.to_string(),
        problem,
    })?;
    let (dir, marker) = installed_marker(&open_install_dir(install_dir, false)?, title)?;
    let m = marker_manifest_at(&dir, &marker).ok_or_else(|| {
        Error::manifest(
            dir.at(&marker),
            "the completion marker holds no readable manifest; install the game again",
        )
    })?;
    let m = m.verify(trust)?;
    if m.body().title_id != title {
        return Err(Error::manifest(
            dir.at(&marker),
            format!("the marker holds the manifest of {:?}", m.body().title_id),
        ));
    }
    Ok(m)
}

/// The folder holding installed game `title`'s completion marker, and the marker's name:
/// its game folder's `.romlib-installed`, or for a game placed without a folder its record
/// `.romlib-games/<title>`.
fn installed_marker(inst: &Folder, title: &str) -> Result<(Folder, String)> {
    if inst.kind(title)? == Kind::Missing {
        if let Some(records) = inst.sub(RECORDS_DIR)? {
            if records.kind(title)? == Kind::File {
                return Ok((records, title.to_string()));
            }
        }
    }
    let dir = game_folder(inst, title)?;
    if !is_ours(&dir) {
        return Err(Error::NotOurs {
            path: dir.path().to_path_buf(),
        });
    }
    Ok((dir, MARKER.to_string()))
}

/// Where installed game `title` lies in `inst`: the folder its paths are relative to, the
/// path of each manifest file there, and its placement. For a game placed without a
/// folder, the placement its record names.
fn on_card(inst: &Folder, m: &VerifiedManifest) -> Result<(Folder, Vec<String>, Placement)> {
    let title = &m.body().title_id;
    let (dir, marker) = installed_marker(inst, title)?;
    if marker == MARKER {
        let paths = m.body().files.iter().map(|f| f.path.clone()).collect();
        return Ok((dir, paths, Placement::Folder));
    }
    let placement = marker_placement(&dir, &marker);
    let paths = placed(m.body(), placement).ok_or_else(|| {
        Error::manifest(
            dir.at(&marker),
            "the record names files that cannot be placed",
        )
    })?;
    Ok((inst.try_clone()?, paths, placement))
}

/// Game folder `title` of `inst`: a real folder (a link there is an error naming it).
fn game_folder(inst: &Folder, title: &str) -> Result<Folder> {
    match inst.kind(title)? {
        Kind::Dir => inst.sub_dir(title),
        Kind::Missing => Err(Error::NotFound {
            path: inst.at(title),
            what: "installed game",
        }),
        k => Err(unexpected(inst.at(title), k, "a game's folder")),
    }
}

/// The titles of every game romlib installed in `install_dir`, sorted.
pub fn installed_titles(install_dir: &Path) -> Result<Vec<String>> {
    Ok(super::installed_games(install_dir)?
        .into_iter()
        .filter(|g| g.state == "installed")
        .map(|g| g.title)
        .collect())
}

/// Checks every file of installed game `m` in `install_dir` against its signed chunks;
/// tells `progress` of every chunk. Writes nothing.
pub fn check_installed(
    install_dir: &Path,
    m: &VerifiedManifest,
    progress: &dyn Progress,
) -> Result<InstalledCheck> {
    let title = m.body().title_id.clone();
    let (dir, paths, placement) = on_card(&open_install_dir(install_dir, false)?, m)?;
    let mpath = m.path().to_path_buf();
    let mut report = InstalledCheck {
        title,
        placed: (placement != Placement::Folder).then(|| super::flat::listed(&paths).to_string()),
        ..Default::default()
    };
    if placement == Placement::Zip {
        return check_zip(&dir, &paths[0], m, report, progress);
    }
    let mut table = m.chunks()?;
    let mut buf = vec![0u8; MAX_CHUNK_LEN as usize];
    for (f, placed) in m.body().files.iter().zip(&paths) {
        report.files += 1;
        report.bytes += f.size;
        let path = dir.at(placed);
        // Never through a link: one where the game has a folder or file stops the check.
        let mut file = dir.open_file_path(placed)?;
        let actual = match &file {
            Some(file) => file
                .metadata()
                .map_err(|e| Error::io(&path, "stat", e))?
                .len(),
            None => 0,
        };
        let mut ranges: Vec<BadRange> = Vec::new();
        let mut at = 0u64;
        for _ in 0..f.chunk_count {
            let c = table
                .next_chunk()?
                .ok_or_else(|| Error::manifest(&mpath, "chunk table ended early"))?;
            let len = c.len as usize;
            let good = match file.as_mut() {
                Some(file) if at + c.len as u64 <= actual => {
                    let piece = buf
                        .get_mut(..len)
                        .ok_or_else(|| Error::manifest(&mpath, "a chunk longer than allowed"))?;
                    file.read_exact(piece)
                        .map_err(|e| Error::io(&path, "read", e))?;
                    blake3::hash(piece).as_bytes() == &c.hash
                }
                _ => false,
            };
            if !good {
                match ranges.last_mut() {
                    Some(r) if r.offset + r.len == at => {
                        r.len += c.len as u64;
                        r.chunks += 1;
                    }
                    _ => ranges.push(BadRange {
                        offset: at,
                        len: c.len as u64,
                        first_chunk: report.chunks,
                        chunks: 1,
                    }),
                }
            }
            at += c.len as u64;
            report.chunks += 1;
            progress.advance(c.len as u64, 1);
        }
        let state = if file.is_none() {
            "missing"
        } else if actual != f.size {
            "size"
        } else {
            "damaged"
        };
        if file.is_none() || !ranges.is_empty() || actual != f.size {
            let bad_bytes = ranges.iter().map(|r| r.len).sum();
            report.damaged.push(FileDamage {
                path: f.path.clone(),
                state,
                ranges,
                size: f.size,
                bad_bytes,
            });
        }
    }
    table.finish()?;
    if placement != Placement::Folder {
        // The system folder's other files are other games' and the user's.
        return Ok(report);
    }
    let owned = owned_files(&dir);
    let mut extra = Vec::new();
    list_extra(&dir, "", &owned, &mut extra)?;
    extra.sort();
    report.extra = extra;
    Ok(report)
}

/// [`check_installed`] of a game installed as archive `name` of `dir`: every member whose
/// bytes differ is damaged as a whole (a repair reinstalls it), and so is the archive
/// itself when its headers or directory differ from what the manifest makes.
fn check_zip(
    dir: &Folder,
    name: &str,
    m: &VerifiedManifest,
    mut report: InstalledCheck,
    progress: &dyn Progress,
) -> Result<InstalledCheck> {
    let body = m.body();
    report.files = body.files.len() as u64;
    report.bytes = body.total_size;
    report.chunks = body.chunk_count;
    let whole = |path: &str, size: u64, state| FileDamage {
        path: path.to_string(),
        state,
        ranges: vec![BadRange {
            offset: 0,
            len: size,
            first_chunk: 0,
            chunks: 0,
        }],
        size,
        bad_bytes: size,
    };
    let Some(file) = dir.open_file(name)? else {
        report.damaged = body
            .files
            .iter()
            .map(|f| whole(&f.path, f.size, "missing"))
            .collect();
        return Ok(report);
    };
    let found = super::zip::check(file, &dir.at(name), body)?;
    progress.advance(body.total_size, body.chunk_count);
    for f in &body.files {
        if found.bad_members.contains(&f.path) {
            report.damaged.push(whole(&f.path, f.size, "damaged"));
        }
    }
    if found.bad_structure {
        report.damaged.push(FileDamage {
            path: name.to_string(),
            state: "damaged",
            ranges: Vec::new(),
            size: 0,
            bad_bytes: 0,
        });
    }
    Ok(report)
}

/// The files under `dir` (`rel` inside the game) that the game does not own.
fn list_extra(
    dir: &Folder,
    rel: &str,
    owned: &std::collections::HashSet<String>,
    out: &mut Vec<String>,
) -> Result<()> {
    for e in dir.entries()? {
        let name = e.name.to_string_lossy().into_owned();
        let here = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if rel.is_empty() && (name == MARKER || name == KEPT_MARKER) {
            continue;
        }
        let sub = match (e.kind, e.name_str()) {
            (Kind::Dir, Some(n)) => dir.sub(n)?,
            _ => None,
        };
        match sub {
            Some(sub) => list_extra(&sub, &here, owned, out)?,
            None if !owned.contains(&here) => out.push(here),
            None => {}
        }
    }
    Ok(())
}

/// Figures of a repair.
#[derive(Debug, Clone, Default)]
pub struct RepairReport {
    /// Files rewritten.
    pub files: u64,
    /// Bytes taken from the source (the damaged ranges).
    pub bytes_replaced: u64,
    /// Bytes kept from the installed files.
    pub bytes_kept: u64,
}

/// Repairs installed game `m` (whose check is `check`) in `install_dir` from `source`, a
/// game opened from a library and verified: only the damaged ranges are read from it.
/// The source must be the same version (the same signed chunk table). Tells `progress` of
/// every byte written.
pub fn repair_installed<D: ChunkDecoder>(
    install_dir: &Path,
    m: &VerifiedManifest,
    check: &InstalledCheck,
    source: &Game<D>,
    progress: &dyn Progress,
) -> Result<RepairReport> {
    let title = &m.body().title_id;
    if source.manifest().body().chunk_table_blake3 != m.body().chunk_table_blake3 {
        return Err(Error::manifest(
            source.manifest().path(),
            format!(
                "the source holds another version of {title} than the one installed (its chunk \
                 table differs); install it instead of repairing"
            ),
        ));
    }
    let mut report = RepairReport::default();
    if check.ok() {
        return Ok(report);
    }
    // Over HTTP, each range request takes only damaged chunks.
    let mut bad: Vec<(u64, u64)> = check
        .damaged
        .iter()
        .flat_map(|d| {
            d.ranges
                .iter()
                .map(|r| (r.first_chunk, r.first_chunk + r.chunks))
        })
        .collect();
    bad.sort_unstable();
    source.fetch_only(Box::new(move |k| {
        let i = bad.partition_point(|&(start, _)| start <= k);
        i > 0 && k < bad[i - 1].1
    }));
    let inst = open_install_dir(install_dir, false)?;
    let _lock = super::lock(&inst, true, progress)?;
    recover_in(&inst, false)?;
    let (live, paths, placement) = on_card(&inst, m)?;
    if placement == Placement::Zip {
        return Err(Error::manifest(
            live.at(&paths[0]),
            format!(
                "{title} is installed as an archive, which a repair does not rewrite; install \
                 it again (it replaces the archive)"
            ),
        ));
    }
    // The path of each damaged file where it lies (a game of one file placed without a
    // folder is called after its title).
    let placed_of = |p: &str| -> String {
        m.body()
            .files
            .iter()
            .zip(&paths)
            .find(|(f, _)| f.path == p)
            .map_or_else(|| p.to_string(), |(_, placed)| placed.clone())
    };
    let staging = inst.ensure_sub(STAGING_DIR)?;
    let drop_staging = || {
        let _ = inst.remove_empty_dir(OsStr::new(STAGING_DIR));
    };
    staging_clear(&staging, title).inspect_err(|_| drop_staging())?;
    let work_name = staging_entry(title, Role::Repair);
    let work = staging
        .create_dir(&work_name)
        .inspect_err(|_| drop_staging())?;
    let staged = (|| -> Result<Vec<String>> {
        let mut moves = Vec::new();
        for d in &check.damaged {
            let f = m
                .body()
                .files
                .iter()
                .find(|f| f.path == d.path)
                .ok_or_else(|| Error::manifest(m.path(), "a damaged file the game lacks"))?;
            // The installed copy, never through a link (one there stops the repair).
            let at = placed_of(&d.path);
            let old = live.open_file_path(&at)?;
            let (dir, name) = at.rsplit_once('/').unwrap_or(("", at.as_str()));
            let to = if dir.is_empty() {
                work.try_clone()?
            } else {
                work.ensure_path(dir)?
            };
            let out = to.create_file(name, (f.mode & 0o777) | 0o200)?;
            rebuild_file(
                old,
                &live.at(&at),
                out,
                &to.at(name),
                f,
                d,
                source,
                &mut report,
                progress,
            )?;
            moves.push(at);
            report.files += 1;
        }
        Ok(moves)
    })();
    let moves = match staged {
        Ok(moves) => moves,
        Err(e) => {
            let _ = staging.remove_tree(OsStr::new(&work_name));
            drop_staging();
            return Err(e);
        }
    };
    // Every new file is complete and checked: swap them in, each through handles (a link
    // on the way in the game's folder stops the repair with an error naming it).
    for rel in &moves {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
        let (from, to) = if dir.is_empty() {
            (work.try_clone()?, live.try_clone()?)
        } else {
            (
                work.sub_path(dir)?
                    .ok_or_else(|| unexpected(work.at(dir), Kind::Missing, "a folder"))?,
                live.ensure_path(dir)?,
            )
        };
        if matches!(to.kind(name)?, Kind::Dir) {
            return Err(unexpected(to.at(name), Kind::Dir, "a file"));
        }
        from.rename(name, &to, name)?;
        to.sync()?;
    }
    staging.remove_tree(OsStr::new(&work_name))?;
    drop_staging();
    Ok(report)
}

/// Writes file `f` anew into `out` (created at `to`): the ranges of `damage` from
/// `source`, the rest from `old` (the installed copy at `from`, if there is one); checks
/// its size and BLAKE3, fsyncs it.
#[allow(clippy::too_many_arguments)]
fn rebuild_file<D: ChunkDecoder>(
    mut old: Option<File>,
    from: &Path,
    out: File,
    to: &Path,
    f: &romlib_proto::FileEntry,
    damage: &FileDamage,
    source: &Game<D>,
    report: &mut RepairReport,
    progress: &dyn Progress,
) -> Result<()> {
    let mut w = Hashing {
        inner: BufWriter::with_capacity(256 * 1024, out),
        hasher: blake3::Hasher::new(),
        written: 0,
    };
    let id = source.find(&f.path)?;
    let mut pos = 0u64;
    // Copies the installed file's bytes from `*pos` up to `upto` (a range the check found
    // good) and counts them as kept.
    let mut copy_old =
        |w: &mut Hashing, upto: u64, pos: &mut u64, report: &mut RepairReport| -> Result<()> {
            let n = upto - *pos;
            let file = old.as_mut().ok_or_else(|| {
                Error::manifest(from, "a range marked good in a file that is missing")
            })?;
            std::io::Seek::seek(file, std::io::SeekFrom::Start(*pos))
                .map_err(|e| Error::io(from, "seek", e))?;
            let copied =
                std::io::copy(&mut file.take(n), w).map_err(|e| Error::io(from, "read", e))?;
            if copied != n {
                return Err(Error::io(
                    from,
                    "read",
                    std::io::Error::other("the file changed while it was repaired"),
                ));
            }
            report.bytes_kept += n;
            *pos = upto;
            Ok(())
        };
    for r in &damage.ranges {
        if r.offset > pos {
            copy_old(&mut w, r.offset, &mut pos, report)?;
        }
        // The signed size bounds the range (a file found longer than signed is cut).
        let len = r.len.min(f.size.saturating_sub(r.offset));
        source.copy_range(id, r.offset, Some(len), &mut w, to)?;
        pos = r.offset + r.len;
        report.bytes_replaced += r.len;
        progress.advance(r.len, 0);
    }
    if pos < f.size {
        copy_old(&mut w, f.size, &mut pos, report)?;
    }
    let Hashing {
        inner,
        hasher,
        written,
    } = w;
    if written != f.size || hasher.finalize().as_bytes().as_slice() != f.blake3.as_slice() {
        return Err(Error::manifest(
            to,
            format!(
                "repaired file {:?} does not match its signed size and hash",
                f.path
            ),
        ));
    }
    let file = inner
        .into_inner()
        .map_err(|e| Error::io(to, "write", e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(to, "fsync", e))
}

/// A writer that hashes and counts what it writes.
struct Hashing {
    inner: BufWriter<File>,
    hasher: blake3::Hasher,
    written: u64,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
