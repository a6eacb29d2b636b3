//! The manifest half of `romlib verify`: every manifest's signature against the trusted
//! keys, its chunk table, its locator, and the index entries of the chunks it needs.

use super::packs::{record_at, PLACED_LEN};
use super::{are, strip_path, VerifyReport};
use crate::error::Result;
use crate::fsio::TEMP_SUFFIX;
use crate::spill::{place_key, Sorted, Sorter};
use romlib_device::chunks::locator::ChunkLocator;
use romlib_device::error::short_hex;
use romlib_device::install::count;
use romlib_device::{Library, ManifestFile, TrustStore};
use romlib_format::layout::MANIFEST_EXT;
use romlib_format::portable::LocatorEntry;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

/// Names every game whose chunk table holds a chunk that cannot be decoded.
pub(super) fn report_broken_games(
    lib: &Library,
    titles: &[String],
    broken: &HashMap<[u8; 32], String>,
    rep: &mut VerifyReport,
) {
    if broken.is_empty() {
        return;
    }
    for title in titles {
        let path = lib.manifest_path(title);
        let Ok(m) = ManifestFile::open(&path) else {
            continue; // already reported
        };
        let Ok(mut table) = m.unverified_chunks() else {
            continue;
        };
        let mut hit: Vec<[u8; 32]> = Vec::new();
        while let Ok(Some(c)) = table.next_chunk() {
            if broken.contains_key(&c.hash) && !hit.contains(&c.hash) {
                hit.push(c.hash);
            }
        }
        if let Some(first) = hit.first() {
            rep.problem(
                &path,
                format!(
                    "game {title} cannot be installed: {} of its chunks cannot be decoded \
                     (chunk {}: {}); `romlib repair` restores damaged packs when the library \
                     has parity (`romlib parity`), else copy them again from a good copy",
                    hit.len(),
                    short_hex(first),
                    broken[first]
                ),
            );
        }
    }
}

/// What a manifest is checked against: the index's chunk table (when it could be read)
/// and the packs that could not be scanned.
pub(super) struct Known<'a> {
    pub(super) chunks: Option<&'a crate::library::runs::ChunkIndex>,
    /// Packs that could not be scanned (reported already).
    pub(super) unreadable: &'a BTreeSet<u32>,
}

/// Row length of a chunk a locator places: (pack, offset) key, the chunk's hash and
/// length as the manifest gives them, and the game's number among the titles.
pub(super) const LOCATED_LEN: usize = 12 + 32 + 4 + 4;

/// What the manifests give the later join: with no index, where each locator places each
/// chunk.
pub(super) struct Collect<'a> {
    pub(super) located: &'a mut Sorter<LOCATED_LEN>,
    /// Per game number: chunks its locator cannot place at all.
    pub(super) unplaced: &'a mut Vec<u64>,
}

/// The staged manifests `games/.<title>.manifest.tmp` that the index counts (`counted`
/// gives the chunk-table hash it records for a title), by title.
pub(super) fn staged_manifests(
    lib: &Library,
    counted: &dyn Fn(&str) -> Option<[u8; 32]>,
) -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    let suffix = format!(".{MANIFEST_EXT}{TEMP_SUFFIX}");
    let dirs = lib.game_dirs().unwrap_or_default();
    let entries = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(title) = name.strip_prefix('.').and_then(|n| n.strip_suffix(&suffix)) else {
            continue;
        };
        let Some(c) = counted(title) else { continue };
        let is_counted = ManifestFile::open(&e.path()).is_ok_and(|m| {
            m.unverified_body().title_id == title
                && m.unverified_body().chunk_table_blake3.as_slice() == c.as_slice()
        });
        if is_counted {
            out.insert(title.to_string(), e.path());
        }
    }
    out
}

/// The manifest of a game to check.
pub(super) struct Game<'a> {
    pub(super) title: &'a str,
    /// Its number among the titles checked.
    pub(super) game_no: u32,
    /// Its manifest, or its staged manifest that an interrupted build left counted.
    pub(super) path: PathBuf,
    /// The chunk-table hash the index counts for the title.
    pub(super) counted: Option<[u8; 32]>,
}

pub(super) fn check_manifest(
    lib: &Library,
    game: Game<'_>,
    trust: &TrustStore,
    known: Known<'_>,
    collect: Collect<'_>,
    rep: &mut VerifyReport,
) -> Result<()> {
    let Known {
        chunks,
        unreadable: unreadable_packs,
    } = known;
    let Game {
        title,
        game_no,
        path,
        counted,
    } = game;
    rep.games += 1;
    let m = match ManifestFile::open(&path) {
        Ok(m) => m,
        Err(e) => {
            rep.problem(&path, strip_path(&e.to_string(), &path));
            return Ok(());
        }
    };
    let body = m.unverified_body();
    if body.title_id != title {
        rep.problem(&path, format!("manifest is for title {:?}", body.title_id));
    }
    let counts = counted.is_some_and(|c| c.as_slice() == body.chunk_table_blake3.as_slice());
    // Without a readable index (reported once already), the game is checked through its
    // locator against the records found in the packs: what a device would read.
    if !counts && chunks.is_some() {
        rep.problem(
            &path,
            "the index does not hold this manifest as published (`romlib rebuild-index` \
             takes it in)",
        );
    }
    let locator = open_locator(lib, title, body, rep);
    let table = m.unverified_chunks();
    let verified = m.verify(trust);
    let mut table = match (verified, table) {
        (Ok(_), Ok(t)) => {
            rep.games_signed += 1;
            t
        }
        (Err(e), Ok(t)) => {
            rep.problem(&path, strip_path(&e.to_string(), &path));
            t
        }
        (_, Err(e)) => {
            rep.problem(&path, strip_path(&e.to_string(), &path));
            return Ok(());
        }
    };
    let mut missing = 0u64;
    let mut wrong_len = 0u64;
    let mut wrong_locations = 0u64;
    let mut i = 0u64;
    loop {
        match table.next_chunk() {
            Ok(Some(r)) => {
                i += 1;
                let entry = chunks.and_then(|t| t.get(&r.hash).ok().flatten());
                if let (Some(l), None) = (locator.as_ref(), chunks) {
                    match l.entry(i - 1).ok().flatten() {
                        Some(le) if unreadable_packs.contains(&le.pack_id) => {}
                        Some(le) => {
                            let mut row = [0u8; LOCATED_LEN];
                            row[..12].copy_from_slice(&place_key(le.pack_id, u64::from(le.offset)));
                            row[12..44].copy_from_slice(&r.hash);
                            row[44..48].copy_from_slice(&r.len.to_le_bytes());
                            row[48..].copy_from_slice(&game_no.to_le_bytes());
                            collect.located.push(row)?;
                        }
                        None => collect.unplaced[game_no as usize] += 1,
                    }
                    continue;
                }
                if let (Some(l), Some(e)) = (locator.as_ref(), entry.as_ref()) {
                    let same = l
                        .entry(i - 1)
                        .is_ok_and(|le| le.is_some() && le == LocatorEntry::from_index(e));
                    if !same {
                        wrong_locations += 1;
                    }
                }
                match entry {
                    None => missing += 1,
                    Some(e) if e.ulen != r.len => wrong_len += 1,
                    Some(_) => {}
                }
            }
            Ok(None) => break,
            Err(e) => {
                rep.problem(&path, strip_path(&e.to_string(), &path));
                return Ok(());
            }
        }
    }
    if let Err(e) = table.finish() {
        rep.problem(&path, strip_path(&e.to_string(), &path));
    }
    if missing > 0 {
        rep.problem(
            &path,
            format!(
                "{} of this game {} not in the index",
                count(missing as usize, "chunk", "chunks"),
                are(missing)
            ),
        );
    }
    if wrong_len > 0 {
        rep.problem(
            &path,
            format!(
                "{} a different length in the index",
                count(wrong_len as usize, "chunk has", "chunks have")
            ),
        );
    }
    if wrong_locations > 0 {
        rep.problem(
            lib.locator_path(title),
            format!(
                "{} with the index (`romlib build` rewrites it)",
                count(
                    wrong_locations as usize,
                    "entry disagrees",
                    "entries disagree"
                )
            ),
        );
    }
    Ok(())
}

/// With no index, joins where the locators place each game's chunks with the records
/// the packs hold (both in place order), and reports each game with chunks that are not
/// where its locator says (`unplaced` counts those it could not place at all).
pub(super) fn check_located(
    lib: &Library,
    titles: &[String],
    located: Sorted<LOCATED_LEN>,
    records: Sorted<PLACED_LEN>,
    mut unplaced: Vec<u64>,
    rep: &mut VerifyReport,
) -> Result<()> {
    let mut records = records.peekable();
    for row in located {
        let row = row?;
        let found = record_at(&mut records, &row[..12])?;
        let mut len = [0u8; 4];
        len.copy_from_slice(&row[44..48]);
        let mut no = [0u8; 4];
        no.copy_from_slice(&row[48..]);
        let fits = found
            .is_some_and(|rec| rec.hash[..] == row[12..44] && rec.ulen == u32::from_le_bytes(len));
        if !fits {
            if let Some(n) = unplaced.get_mut(u32::from_le_bytes(no) as usize) {
                *n += 1;
            }
        }
    }
    for (title, &n) in titles.iter().zip(&unplaced) {
        if n > 0 {
            rep.problem(
                lib.locator_path(title),
                format!(
                    "{} of this game {} not where its locator says",
                    count(n as usize, "chunk", "chunks"),
                    are(n)
                ),
            );
        }
    }
    Ok(())
}

/// Opens a game's locator if it exists and was written for this manifest (or, as a
/// reader does, the one a build staged beside it, SPEC section 6); otherwise records why
/// not and returns `None`.
fn open_locator(
    lib: &Library,
    title: &str,
    body: &romlib_proto::Manifest,
    rep: &mut VerifyReport,
) -> Option<ChunkLocator> {
    let path = lib.locator_path(title);
    match ChunkLocator::open_or_staged(&path, body) {
        Ok((l, None)) => Some(l),
        Ok((l, Some(staged))) => {
            rep.notice(
                &staged,
                "a build was interrupted while publishing this locator (the next build \
                 finishes it; readers use it meanwhile)",
            );
            Some(l)
        }
        Err(romlib_device::Error::NotFound { .. }) => {
            rep.problem(
                &path,
                "missing: no reader can find this game's chunks (`romlib build` or `romlib \
                 rebuild-index` writes it)",
            );
            None
        }
        Err(e) => {
            rep.problem(&path, strip_path(&e.to_string(), &path));
            None
        }
    }
}
