//! The build pipeline: scan, chunk, hash, deduplicate, compress, append to packs, index,
//! and write signed manifests.
//!
//! A reader thread walks the input in sorted order and cuts chunks with FastCDC; the
//! calling thread takes batches of chunks, hashes and compresses them on the thread pool
//! (order-preserving), and appends them sequentially. Output is therefore the same for any
//! thread count and any directory listing order.
//!
//! [`options`] says what a build does; [`scan`] finds the games and reads their
//! [`sidecar`] metadata; [`reader`] is the reader thread, handing on [`batch`]es, and
//! [`dat_hashes`] the DAT-hash threads beside it; [`append`] deduplicates, compresses and
//! appends chunks and indexes them; [`manifest`] assembles, signs and publishes each
//! finished game's manifest and locator. [`compress`] is the per-chunk compression,
//! [`dict`] the training of a dictionary for it. [`input_cache`] lets a
//! build skip the games that have not changed since they were built.

mod append;
pub mod archive;
mod batch;
pub mod compress;
mod dat_hashes;
pub(crate) mod delta;
pub mod dict;
pub mod input_cache;
mod manifest;
mod options;
mod reader;
pub mod scan;
pub mod sidecar;

pub use delta::DEFAULT_DELTA_GAIN;
pub(crate) use manifest::now_ms;
pub use options::{BuildOptions, BuildProgress, BuildSummary, DEFAULT_LEVEL};

use crate::dat::headers::HeaderRules;
use crate::dat::matching::DatCatalog;
use crate::error::{Error, Result};
use crate::fsio::read_limited;
use crate::library::dicts::add_dict;
use crate::library::publish::publish_public_key;
use crate::library::writer::LibraryWriter;
use append::Run;
use compress::Compressor;
use ed25519_dalek::SigningKey;
use input_cache::InputCache;
use manifest::Manifests;
use reader::spawn_reader;
use romlib_format::chunker::ChunkerParams;
use romlib_format::limits::{MAX_DICT_LEN, MAX_PACK_SIZE, MIN_PACK_SIZE};
use scan::{scan, GameInput};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Runs a build of `input` into the library at `output`.
pub fn build(
    input: &Path,
    output: &Path,
    opts: &BuildOptions,
    progress: &dyn BuildProgress,
) -> Result<BuildSummary> {
    let started = Instant::now();
    let started_ns = input_cache::now_ns();
    let params = ChunkerParams::from_avg(opts.avg_chunk)
        .map_err(|e| Error::Usage(format!("--avg-chunk: {e}")))?;
    if !(1..=22).contains(&opts.level) {
        return Err(Error::Usage(format!(
            "-c {}: the level must be 1 to 22",
            opts.level
        )));
    }
    if opts.pack_size < MIN_PACK_SIZE || opts.pack_size >= MAX_PACK_SIZE {
        return Err(Error::Usage(format!(
            "--pack-size {}: must be at least {MIN_PACK_SIZE} and below 4 GiB ({MAX_PACK_SIZE})",
            opts.pack_size
        )));
    }
    if opts.delta_gain.is_some_and(|g| g > 100) {
        return Err(Error::Usage(format!(
            "--delta-gain {}: a percentage, 0 to 100",
            opts.delta_gain.unwrap_or(0)
        )));
    }
    if opts.rename && opts.dats.is_empty() {
        return Err(Error::Usage(
            "--rename titles games after the DAT game they match: give the DAT with --dat".into(),
        ));
    }
    let (games, report) = scan(input, Some(output), opts.scan)?;
    let files_total: u64 = games.iter().map(|g| g.files.len() as u64).sum();
    let bytes_total: u64 = games.iter().map(GameInput::size).sum();
    let catalog = if opts.dats.is_empty() {
        None
    } else if !opts.dat_hashes {
        return Err(Error::Usage(
            "--dat matches games by their DAT hashes; it cannot go with --no-dat-hashes".into(),
        ));
    } else {
        Some(DatCatalog::load_with(&opts.dats, opts.rename)?)
    };
    let header_rules = if opts.dat_hashes {
        Some(Arc::new(HeaderRules::load(&opts.header_skippers)?))
    } else if !opts.header_skippers.is_empty() {
        return Err(Error::Usage(
            "--header-skipper hashes files as DATs do; it cannot go with --no-dat-hashes".into(),
        ));
    } else {
        None
    };
    let mut store = crate::library::recovery::open_and_recover(output)?;
    let games_files_moved = match opts.games_layout {
        Some(l) => store.set_games_layout(l)?,
        None => 0,
    };
    if let Some(key) = &opts.signing_key {
        publish_key(store.library(), key)?;
    }
    // The input cache, for a full build (chunks stored, manifests signed): the games whose
    // input has not changed since they were built are not read at all.
    let settings = match opts.store_chunks && opts.signing_key.is_some() {
        true => Some(input_cache::settings_digest(opts)?),
        false => None,
    };
    let reread = opts.reread || opts.repair;
    let cache = match (&settings, reread) {
        (Some(s), false) => InputCache::load(store.library(), s),
        _ => InputCache::default(),
    };
    let mut skipped = Vec::new();
    let mut skipped_bytes = 0;
    let mut racy = false;
    let mut built = Vec::new();
    let mut to_build = Vec::with_capacity(games.len());
    for game in games {
        let Some(s) = &settings else {
            to_build.push(game);
            continue;
        };
        let digest = input_cache::game_digest(s, &game);
        if !reread && cache.unchanged(store.library(), &game, &digest) {
            skipped_bytes += game.size();
            skipped.push(game.title);
        } else {
            // Read again only because its files were too recent when the cache was
            // recorded: this build's cache, recorded later, can vouch for them (once they
            // are old enough for it too; until then a run with nothing new writes nothing).
            racy |= cache.racy(&game, &digest) && input_cache::settled(&game, started_ns);
            built.push((game.title.clone(), digest));
            to_build.push(game);
        }
    }
    let compressor = load_dictionary(&store, opts)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .build()
        .map_err(|e| Error::Usage(format!("--threads: {e}")))?;
    let total: u64 = to_build.iter().map(GameInput::size).sum();
    progress.start(total);
    let mut summary = BuildSummary {
        games: (to_build.len() + skipped.len()) as u64,
        files: files_total,
        input_bytes: bytes_total,
        skipped_games: skipped.len() as u64,
        skipped_bytes,
        manifests_unchanged: skipped.len() as u64,
        input: report,
        recovered: std::mem::take(&mut store.recovered),
        dat_warnings: catalog
            .as_ref()
            .map(|c| c.warnings.clone())
            .unwrap_or_default(),
        ..Default::default()
    };
    // --repair: every listed pack read and checked whole (footer checksum, record headers)
    // before anything is stored.
    let damaged = if opts.repair {
        damaged_packs(&store)?
    } else {
        Default::default()
    };
    summary.damaged_packs = damaged.iter().copied().collect();
    // A build that reads input merges the chunk index's large runs meanwhile, on a thread
    // of its own, so that its commits never have to (SPEC section 5.3).
    if total > 0 && opts.store_chunks {
        store.chunks_mut()?.start_background_merge(total);
    }
    let games = Arc::new(to_build);
    let (rx, dat) = spawn_reader(games.clone(), params, header_rules);
    let mut run = Run {
        store: &mut store,
        opts,
        compressor,
        games: &games,
        txn: None,
        pack: None,
        current: None,
        pending: Vec::new(),
        summary: &mut summary,
        progress,
        dat,
        bases: delta::Bases::new(),
        damaged,
        manifests: Manifests {
            key: opts.signing_key.as_ref(),
            params,
            games: &games,
            catalog: catalog.as_ref(),
            system: opts.system.as_deref(),
            rename: opts.rename,
            allow_non_fat: opts.scan.allow_non_fat_names,
            // Every input title, and the titles the skipped games were published under.
            taken: (games.iter().map(|g| g.title.as_str()))
                .chain(skipped.iter().map(String::as_str))
                .chain(skipped.iter().map(|t| cache.published(t)))
                .map(manifest::fold)
                .collect(),
            started_ms: manifest::now_ms(),
        },
    };
    let result = pool.install(|| run.consume(rx));
    let result = result.and_then(|()| run.finish());
    if result.is_err() {
        if let Some(p) = run.pack.take() {
            p.discard();
        }
    }
    progress.finish();
    result?;
    crate::library::locator::write_catalog(store.library())?;
    store.publish()?;
    // Each game's title in the library: its input's, or the one --rename gave it.
    let titled: HashMap<String, String> = summary.titled.iter().cloned().collect();
    let built: Vec<(String, [u8; 32], String)> = built
        .into_iter()
        .map(|(t, d)| {
            let p = titled.get(&t).cloned().unwrap_or_else(|| t.clone());
            (t, d, p)
        })
        .collect();
    // The library's games this input no longer holds: removed on request, else named.
    if opts.signing_key.is_some() {
        let mut input: Vec<&str> = (skipped.iter().map(|t| cache.published(t)))
            .chain(built.iter().map(|(_, _, p)| p.as_str()))
            .collect();
        input.sort();
        let titles = store.library().titles()?;
        summary.library_games = titles.len() as u64;
        let gone: Vec<String> = titles
            .into_iter()
            .filter(|t| input.binary_search(&t.as_str()).is_err())
            // Listed from games/: only a valid title id names files a removal deletes.
            .filter(|t| romlib_format::path::check_title_id(t).is_ok())
            .collect();
        // A game gone under its old title but built under a new one (--rename): renamed.
        let (renamed, gone) = renamed_titles(store.library(), &built, gone);
        if !renamed.is_empty() {
            let titles: Vec<String> = renamed.iter().map(|(o, _)| o.clone()).collect();
            crate::library::remove::remove_games(&mut store, &titles)?;
            summary.renamed = renamed;
        }
        if opts.remove_missing && !gone.is_empty() {
            summary.removed = crate::library::remove::remove_games(&mut store, &gone)?.removed;
        } else {
            summary.no_input = gone;
        }
    }
    if let Some(key) = &opts.signing_key {
        summary.snapshot = crate::library::snapshot::publish(
            store.library(),
            key,
            opts.valid_for,
            store.touched(),
            false,
        )?;
    }
    if let Some(s) = &settings {
        // A run that wrote nothing writes the cache too when games were read again only
        // for being too recent: else they would be read by every build until one writes.
        let wrote = summary.manifests_written > 0 || summary.packs_written > 0 || racy;
        input_cache::save(
            store.library(),
            s,
            started_ns,
            &cache,
            &skipped,
            &built,
            wrote,
        )?;
    }
    summary.library_games = (summary.library_games)
        .saturating_sub(summary.removed.len() as u64 + summary.renamed.len() as u64);
    summary.library_pack_bytes = pack_bytes(store.library());
    summary.games_layout = store.library().games_layout();
    summary.games_files_moved = games_files_moved;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Splits `gone`, the library's titles this build did not publish, into the old titles
/// of games `built` (input title, digest, title now published) published under a new one
/// (their manifest names the same input: `input_name`, or the title itself before any
/// rename), as (old, new) pairs, and the rest.
fn renamed_titles(
    lib: &romlib_device::Library,
    built: &[(String, [u8; 32], String)],
    gone: Vec<String>,
) -> (Vec<(String, String)>, Vec<String>) {
    let now: HashMap<&str, &str> = built
        .iter()
        .map(|(i, _, p)| (i.as_str(), p.as_str()))
        .collect();
    let (mut renamed, mut rest) = (Vec::new(), Vec::new());
    for old in gone {
        let from = romlib_device::trusted::ManifestFile::open(&lib.manifest_path(&old))
            .ok()
            .map(|m| {
                let b = m.unverified_body();
                match b.input_name.is_empty() {
                    true => b.title_id.clone(),
                    false => b.input_name.clone(),
                }
            });
        match from.as_deref().and_then(|f| now.get(f)) {
            Some(new) if **new != old => renamed.push((old, new.to_string())),
            _ => rest.push(old),
        }
    }
    (renamed, rest)
}

/// Bytes of the library's pack files.
fn pack_bytes(lib: &romlib_device::Library) -> u64 {
    std::fs::read_dir(lib.packs_dir())
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn load_dictionary(store: &LibraryWriter, opts: &BuildOptions) -> Result<Compressor> {
    let Some(path) = &opts.dict else {
        return Ok(Compressor::new(opts.level, None));
    };
    let bytes = read_limited(path, MAX_DICT_LEN, "dictionary")?;
    let id = zstd_safe::get_dict_id(&bytes)
        .map(|id| id.get())
        .unwrap_or(0);
    if id == 0 {
        return Err(Error::input(
            path,
            "not a zstd dictionary with an id (train one with `romlib train-dict`)",
        ));
    }
    add_dict(store.library(), id, &bytes)?;
    Ok(Compressor::new(opts.level, Some((Arc::new(bytes), id))))
}

/// Copies the signer's public key into the library's `keys/` folder (informational for
/// devices; the host's own `romlib install` trusts it by default). Written only if absent
/// or different.
fn publish_key(lib: &romlib_device::Library, key: &SigningKey) -> Result<()> {
    publish_public_key(lib, &key.verifying_key().to_bytes())
}

/// Hooks for tests that drive one step of the pipeline directly.
pub mod test_support {
    use super::reader::read_file;
    use super::scan::InputFile;
    use super::*;

    /// Chunks one file with the default chunker, as the reader thread does, and returns its
    /// BLAKE3 (or the error the build would report).
    pub fn read_file_once(file: &InputFile) -> Result<[u8; 32]> {
        let params = ChunkerParams::from_avg(romlib_format::chunker::DEFAULT_AVG_CHUNK)
            .map_err(|e| Error::Usage(e.to_string()))?;
        read_file(file, params, |_| true).map(|h| h.expect("never asked to stop"))
    }

    /// The lengths of the chunks the builder cuts from `file` with average `avg`.
    pub fn chunk_lengths(file: &InputFile, avg: u32) -> Result<Vec<usize>> {
        let params = ChunkerParams::from_avg(avg).map_err(|e| Error::Usage(e.to_string()))?;
        let mut lens = Vec::new();
        read_file(file, params, |d| {
            lens.push(d.len());
            true
        })?;
        Ok(lens)
    }
}

/// The packs the index lists whose file fails its check (missing, unreadable, a header, a
/// record header or the footer checksum).
fn damaged_packs(
    store: &crate::library::writer::LibraryWriter,
) -> Result<std::collections::BTreeSet<u32>> {
    use redb::ReadableTable;
    let lib = store.library();
    let index_path = lib.index_path();
    let ids: Vec<u32> = {
        let txn = store.begin_read()?;
        let t = txn
            .open_table(crate::library::index::PACKS)
            .map_err(|e| crate::library::writer::db_err(&index_path, e))?;
        let mut v = Vec::new();
        for row in t
            .iter()
            .map_err(|e| crate::library::writer::db_err(&index_path, e))?
        {
            v.push(
                row.map_err(|e| crate::library::writer::db_err(&index_path, e))?
                    .0
                    .value(),
            );
        }
        v
    };
    Ok(ids
        .into_iter()
        .filter(|&id| crate::library::pack_scan::scan_pack(&lib.pack_path(id), id).is_err())
        .collect())
}
