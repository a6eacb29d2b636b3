//! Manifest assembly: a finished game's files, chunk table and packs, its sidecar
//! metadata and DAT match become a signed manifest, published (recorded in the index with
//! the runs that hold its chunks), then its locator.

use super::options::BuildSummary;
use super::scan::GameInput;
use crate::dat::matching::DatCatalog;
use crate::error::{Error, Result};
use crate::library::locator::{self, GameLocator};
use crate::library::publish::{publish_manifests, stage_manifest};
use crate::library::writer::LibraryWriter;
use ed25519_dalek::SigningKey;
use prost::Message;
use redb::WriteTransaction;
use romlib_format::chunker::ChunkerParams;
use romlib_format::chunker::{ALGORITHM_FASTCDC_V2020, NORMALIZATION_LEVEL};
use romlib_format::limits::MAX_MANIFEST_BODY_LEN;
use romlib_format::path::{check_path, check_title_id, fold_cmp, windows_reserved};
use romlib_proto::DatMatch;
use romlib_proto::{Chunker, FileEntry, Manifest, SourceArchive};
use std::collections::{BTreeSet, HashSet};

/// A game whose chunks are all appended, waiting for its packs to be committed.
pub(super) struct GameState {
    pub(super) game: usize,
    pub(super) files: Vec<FileEntry>,
    pub(super) file_chunks: u64,
    pub(super) table: Vec<u8>,
    pub(super) packs: BTreeSet<u32>,
    /// Where each chunk of `table` lies: the index entries written or found for it.
    pub(super) locator: GameLocator,
}

impl GameState {
    pub(super) fn new(game: usize) -> Self {
        Self {
            game,
            files: Vec::new(),
            file_chunks: 0,
            table: Vec::new(),
            packs: BTreeSet::new(),
            locator: GameLocator::default(),
        }
    }
}

/// What every manifest of a run shares.
pub(super) struct Manifests<'a> {
    /// The signing key (none: build-packs writes no manifest).
    pub(super) key: Option<&'a SigningKey>,
    /// The chunker the run cut with.
    pub(super) params: ChunkerParams,
    /// The scanned input.
    pub(super) games: &'a [GameInput],
    /// The DATs to name games by.
    pub(super) catalog: Option<&'a DatCatalog>,
    /// `--system`: the system of games whose `romlib.toml` names none.
    pub(super) system: Option<&'a str>,
    /// `--rename`: title games and name their files after the DAT game they match.
    pub(super) rename: bool,
    /// `--allow-non-fat-names`: what names a rename may give.
    pub(super) allow_non_fat: bool,
    /// Titles taken in this run (folded case): every input title, and each new title a
    /// rename gave. A rename to a taken title is not made.
    pub(super) taken: HashSet<String>,
    /// When the run started, in milliseconds since 1970: the revision of the manifests it
    /// writes (see [`revision`]).
    pub(super) started_ms: u64,
}

/// The revision of a new manifest replacing one of revision `old` (0: none), written by a
/// run started at `now_ms`: the run's time, or one more than `old` if the clock says less
/// (a clock set back, two runs within a millisecond), so a title's revisions only go up,
/// also across libraries rebuilt from scratch on a machine whose clock is right.
pub(crate) fn revision(old: u64, now_ms: u64) -> u64 {
    now_ms.max(old.saturating_add(1))
}

/// Now, in milliseconds since 1970 (0 before it); with `SOURCE_DATE_EPOCH` set (seconds,
/// the reproducible-builds convention), that time instead, so a build of the same input
/// gives the same bytes.
pub(crate) fn now_ms() -> u64 {
    if let Some(secs) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return secs.saturating_mul(1000);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A title folded as case-insensitive cards compare it.
pub(super) fn fold(title: &str) -> String {
    title.chars().flat_map(char::to_lowercase).collect()
}

impl Manifests<'_> {
    /// The title `--rename` gives `input`, matched as DAT game `m` whose roms `names` its
    /// files are; renames `files` too when every one of them is a rom of that game (a
    /// partial match keeps the file names, so a sheet still finds its tracks). A name that
    /// cannot be used, or a title another game of the run has, is not given: the game
    /// keeps its input's, with a warning.
    fn rename(
        &mut self,
        input: &GameInput,
        m: &DatMatch,
        names: &[Option<String>],
        files: &mut [FileEntry],
        warnings: &mut Vec<String>,
    ) -> String {
        let fat = !self.allow_non_fat;
        let usable_title = |t: &str| {
            check_title_id(t).is_ok() && windows_reserved(t).is_none() && check_path(t, fat).is_ok()
        };
        let title = if m.name == input.title {
            input.title.clone()
        } else if !usable_title(&m.name) {
            warnings.push(format!(
                "{}: DAT name {:?} cannot be a title id (not a usable file name): the game keeps \
                 its input's title",
                input.title, m.name
            ));
            input.title.clone()
        } else if fold_cmp(&m.name, &input.title).is_ne() && !self.taken.insert(fold(&m.name)) {
            warnings.push(format!(
                "{}: another game of this build already has the title {:?} (two dumps of \
                 one DAT game?): the game keeps its input's title",
                input.title, m.name
            ));
            input.title.clone()
        } else {
            m.name.clone()
        };
        // Files: all matched, every new name usable and distinct on a FAT card.
        let new: Option<Vec<&str>> = names.iter().map(|n| n.as_deref()).collect();
        let Some(new) = new else {
            return title;
        };
        let usable = new.iter().all(|n| {
            check_path(n, fat).is_ok() && (self.allow_non_fat || windows_reserved(n).is_none())
        });
        let mut folded: Vec<String> = new.iter().map(|n| fold(n)).collect();
        folded.sort();
        folded.dedup();
        if !usable || folded.len() != new.len() {
            warnings.push(format!(
                "{}: the DAT's file names cannot all be used (unusable or colliding names): the \
                 files keep their input names",
                input.title
            ));
            return title;
        }
        for (f, n) in files.iter_mut().zip(new) {
            f.path = n.to_string();
        }
        title
    }

    /// Signs and publishes the manifests of `pending`, finished games whose chunks are all
    /// committed, and writes their locators; a manifest already on disk is left alone and
    /// only its locator healed. Publishing commits `txn` if it is open.
    pub(super) fn publish(
        &mut self,
        store: &mut LibraryWriter,
        txn: &mut Option<WriteTransaction>,
        pending: Vec<GameState>,
        summary: &mut BuildSummary,
    ) -> Result<()> {
        let Some(key) = self.key else {
            return Ok(());
        };
        let lib = store.library().clone();
        let mut changed = Vec::new();
        for g in pending {
            let input = &self.games[g.game];
            let sc = &input.sidecar;
            let mut files = g.files;
            let matched = self
                .catalog
                .and_then(|c| c.best_match_roms(&input.title, &files));
            let title = match (&matched, self.rename) {
                (Some((m, names)), true) => {
                    self.rename(input, m, names, &mut files, &mut summary.dat_warnings)
                }
                _ => input.title.clone(),
            };
            if title != input.title {
                summary.titled.push((input.title.clone(), title.clone()));
            }
            let dat = matched.map(|(m, _)| m);
            let display_name = (sc.name.clone())
                .or_else(|| dat.as_ref().map(|d| d.name.clone()))
                .unwrap_or_else(|| input.title.clone());
            let region = (sc.region.clone())
                .or_else(|| dat.as_ref().map(|d| d.region.clone()))
                .unwrap_or_default();
            let body = Manifest {
                format_version: romlib_format::manifest::VERSION as u32,
                title_id: title.clone(),
                input_name: match title == input.title {
                    true => String::new(),
                    false => input.title.clone(),
                },
                version: sc.version.clone().unwrap_or_default(),
                display_name,
                system: (sc.system.clone())
                    .or_else(|| self.system.map(str::to_owned))
                    .or_else(|| input.folder_system.clone())
                    .unwrap_or_default(),
                region,
                languages: sc.languages.clone(),
                tags: sc.tags.clone(),
                description: sc.description.clone().unwrap_or_default(),
                dat,
                chunker: Some(Chunker {
                    algorithm: ALGORITHM_FASTCDC_V2020.into(),
                    min_size: self.params.min,
                    avg_size: self.params.avg,
                    max_size: self.params.max,
                    normalization: NORMALIZATION_LEVEL,
                }),
                files,
                pack_ids: g.packs.into_iter().collect(),
                total_size: input.size(),
                archive: input.archive.as_ref().map(|a| SourceArchive {
                    format: a.kind.name().into(),
                    name: a
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                }),
                ..Default::default()
            };
            let body_len = body.encoded_len() + 64;
            if body_len > MAX_MANIFEST_BODY_LEN as usize {
                return Err(Error::input(
                    &input.dir,
                    format!(
                        "the game's manifest would be about {body_len} bytes, over the format's \
                         limit of {MAX_MANIFEST_BODY_LEN}; it has too many files or too long names"
                    ),
                ));
            }
            // The revision stays when nothing else changed: the published manifest signs
            // the same body with the same key (its bytes are then these, and it is not
            // written again; compared without reading its chunk table). Otherwise it goes
            // up.
            let mut body = body;
            body.chunk_count = (g.table.len() / romlib_format::manifest::CHUNK_RECORD_LEN) as u64;
            body.chunk_table_blake3 = blake3::hash(&g.table).as_bytes().to_vec();
            let old = romlib_device::ManifestFile::open(&lib.manifest_path(&title))
                .ok()
                .filter(|m| m.unverified_body().title_id == title);
            let old_revision = old.as_ref().map_or(0, |m| m.unverified_body().revision);
            body.revision = old_revision;
            let same = old.is_some_and(|m| {
                m.claimed_key() == &key.verifying_key().to_bytes() && *m.unverified_body() == body
            });
            if !same {
                body.revision = revision(old_revision, self.started_ms);
            }
            let bytes = crate::library::manifest_writer::encode_signed(body, &g.table, key);
            let loc = locator::encode(&lib.locator_path(&title), &g.table, &g.locator)?;
            let Some(staged) = stage_manifest(&lib, &title, &bytes, &g.table, &loc)? else {
                summary.manifests_unchanged += 1;
                // Heals a locator that a crash or an older romlib left missing or stale.
                if locator::refresh(&lib, &title, &g.table, &g.locator)? {
                    store.touch(&title);
                }
                continue;
            };
            changed.push(staged);
        }
        if changed.is_empty() {
            return Ok(());
        }
        let txn = txn.take();
        summary.manifests_written += publish_manifests(store, txn, changed)?;
        Ok(())
    }
}
