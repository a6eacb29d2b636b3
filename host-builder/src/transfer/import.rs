//! `romlib import`: the games of a portable file into a library.
//!
//! Every game's signature is checked against the trusted keys, the chunks the library
//! already holds are reused, the others are decoded, checked, and appended verbatim to new
//! packs, then the manifests are published exactly as a build publishes them (the index,
//! crash safety).

use super::{base_of, manifest_bytes, read_checked, Planned};
use crate::build::compress::Compressor;
use crate::build::DEFAULT_LEVEL;
use crate::error::{Error, Result};
use crate::fsio::sync_dir;
use crate::library::dicts::add_dict;
use crate::library::index::PACKS;
use crate::library::locator;
use crate::library::publish::{publish_manifests, publish_public_key, stage_manifest};
use crate::library::sketch::sketch;
use crate::library::writer::{db_err, unix_now, PackFile};
use crate::zstd_decoder::ZstdDecoder;
use romlib_device::chunks::packs::PackReader;
use romlib_device::chunks::BaseChunk;
use romlib_device::chunks::ChunkSource;
use romlib_device::{Library, ManifestFile, TrustStore};
use romlib_format::index::ChunkEntry;
use romlib_format::limits::{DEFAULT_PACK_SIZE, MAX_CHUNK_LEN};
use romlib_format::manifest::CHUNK_RECORD_LEN;
use romlib_format::pack::{Method, RecordHeader, RECORD_HEADER_LEN};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What an import did.
#[derive(Debug, Default, Clone)]
pub struct ImportSummary {
    /// Games whose manifest was written.
    pub games_written: u64,
    /// Games the library already had, identical.
    pub games_unchanged: u64,
    /// Chunks stored (the library lacked them).
    pub new_chunks: u64,
    /// Their uncompressed bytes.
    pub new_bytes: u64,
    /// Distinct chunks the library already held.
    pub reused_chunks: u64,
    /// Packs written.
    pub packs: u64,
    /// The signed snapshot published, when the import was given a signing key.
    pub snapshot: Option<crate::library::snapshot::Published>,
}

/// Adds the games of portable file `src` (those in `titles`, or all) to the library at
/// `dest`, storing only the chunks it lacks. Every game must be signed by a key `trust`
/// holds, and (unless `allow_downgrade`) be no lower a revision than the library's
/// manifest of its title; nothing is changed if one is not.
pub fn import(
    src: &Path,
    dest: &Path,
    titles: &[String],
    trust: &TrustStore,
    allow_downgrade: bool,
    signer: Option<(
        &ed25519_dalek::SigningKey,
        crate::library::snapshot::ValidFor,
    )>,
    progress: &dyn Fn(u64),
) -> Result<ImportSummary> {
    let lib = Library::open(src)?;
    if lib.portable().is_none() {
        return Err(Error::input(
            src,
            "not a portable file (made by `romlib export`)",
        ));
    }
    let titles = if titles.is_empty() {
        lib.titles()?
    } else {
        let mut t = titles.to_vec();
        t.sort();
        t.dedup();
        t
    };
    let mut games = Vec::new();
    for t in &titles {
        games.push(lib.open_game(t, trust)?);
    }
    let mut store = crate::library::recovery::open_and_recover(dest)?;
    let dlib = store.library().clone();
    // No game goes back to an older revision than the library holds (an old export would
    // roll it back), before anything is written.
    if !allow_downgrade {
        for m in &games {
            let body = m.body();
            let path = dlib.manifest_path(&body.title_id);
            if let Ok(have) = ManifestFile::open(&path) {
                let have = have.unverified_body().revision;
                if body.revision < have {
                    return Err(Error::Device(romlib_device::Error::Downgrade {
                        path,
                        title: body.title_id.clone(),
                        have,
                        offered: body.revision,
                    }));
                }
            }
        }
    }
    let index_path = dlib.index_path();

    // Which chunks are missing, in order of first use.
    let mut missing: Vec<Planned> = Vec::new();
    let mut seen: HashMap<[u8; 32], ()> = HashMap::new();
    let mut rewrite: HashSet<[u8; 32]> = HashSet::new();
    let mut summary = ImportSummary::default();
    {
        let chunks = store.chunks()?;
        let mut dicts = HashMap::new();
        let mut scratch = Vec::new();
        // What the library holds of a chunk: nothing, a whole chunk, or a delta.
        let held =
            |hash: &[u8; 32]| -> Result<Option<Method>> { Ok(chunks.get(hash)?.map(|e| e.method)) };
        for m in &games {
            let mut source = ChunkSource::open(&lib, m)?;
            let mut table = m.chunks()?;
            let mut i = 0;
            while let Some(c) = table.next_chunk()? {
                i += 1;
                if seen.insert(c.hash, ()).is_some() {
                    continue;
                }
                if held(&c.hash)?.is_some() {
                    summary.reused_chunks += 1;
                    continue;
                }
                let entry = source.locate(i - 1, &c)?;
                let base = base_of(&mut source, i - 1, &c, &entry, &mut scratch)?;
                let mut planned = Planned {
                    base,
                    ..Planned::new(source.packs(), &mut dicts, c.hash, c.len, entry)?
                };
                if let Some((bh, be)) = base {
                    match held(&bh)? {
                        // The library's copy of the base is a delta itself: a second link
                        // is not allowed, so this chunk is stored whole.
                        Some(Method::ZstdDelta) => {
                            planned.dict = 0;
                            rewrite.insert(c.hash);
                        }
                        Some(_) => {}
                        // The portable file carries the base: bring it too, first.
                        None => {
                            if seen.insert(bh, ()).is_none() {
                                let b = Planned::new(source.packs(), &mut dicts, bh, be.ulen, be)?;
                                missing.push(b);
                            }
                        }
                    }
                }
                missing.push(planned);
            }
            table.finish()?;
        }
    }

    // Dictionaries the new records need, then the records, one pack run per dictionary.
    let mut need_dicts: Vec<u32> = missing.iter().map(|c| c.dict).filter(|&d| d != 0).collect();
    need_dicts.sort_unstable();
    need_dicts.dedup();
    for d in &need_dicts {
        let bytes = lib.read_dict(*d)?;
        add_dict(&dlib, *d, &bytes)?;
    }
    let mut packs = PackReader::new(&lib);
    let mut dec = ZstdDecoder::default();
    let mut base = BaseChunk::default();
    let whole = Compressor::new(DEFAULT_LEVEL, None);
    let (mut rec, mut data) = (Vec::new(), Vec::new());
    let mut sealed: Vec<(u32, romlib_format::index::PackInfo)> = Vec::new();
    let mut entries: Vec<([u8; 32], ChunkEntry)> = Vec::new();
    // New deltas (chunk, base) and the sketches of new whole chunks.
    let mut delta_rows: Vec<([u8; 32], [u8; 32])> = Vec::new();
    let mut sketch_rows: Vec<(u64, [u8; 32])> = Vec::new();
    let mut open: Option<(u32, PackFile)> = None;
    let stored = (|| -> Result<()> {
        for c in &missing {
            read_checked(
                &lib, &mut packs, &mut dec, c, &mut base, &mut rec, &mut data,
            )?;
            if rewrite.contains(&c.hash) {
                // Stored whole: the record is made anew from the checked bytes.
                let (method, payload) = whole.compress(&data);
                let h = RecordHeader {
                    hash: c.hash,
                    ulen: c.ulen,
                    clen: payload.len() as u32,
                    method,
                };
                rec.clear();
                rec.extend_from_slice(&h.encode());
                rec.extend_from_slice(&payload);
            }
            match (&c.base, rewrite.contains(&c.hash)) {
                (Some((bh, _)), false) => delta_rows.push((c.hash, *bh)),
                _ => {
                    for sf in sketch(&data).iter().flatten() {
                        sketch_rows.push((*sf, c.hash));
                    }
                }
            }
            let rec_len = rec.len() as u64;
            let roll = (open.as_ref())
                .is_some_and(|(d, p)| *d != c.dict || p.must_roll_over(rec_len, DEFAULT_PACK_SIZE));
            if roll {
                let (_, p) = open.take().expect("open");
                let id = p.id();
                sealed.push((id, p.seal()?));
            }
            if open.is_none() {
                open = Some((c.dict, store.new_pack(c.dict)?));
            }
            let (_, p) = open.as_mut().expect("just opened");
            let h = RecordHeader::decode(&rec[..RECORD_HEADER_LEN])
                .map_err(|e| Error::input(src, e.to_string()))?;
            debug_assert!(rec.len() <= RECORD_HEADER_LEN + MAX_CHUNK_LEN as usize);
            let offset = p.append(&h, &rec[RECORD_HEADER_LEN..])?;
            entries.push((
                c.hash,
                ChunkEntry {
                    pack_id: p.id(),
                    offset,
                    clen: h.clen,
                    ulen: h.ulen,
                    method: h.method,
                    stored_at: unix_now(),
                },
            ));
            summary.new_chunks += 1;
            summary.new_bytes += c.ulen as u64;
            progress(c.ulen as u64);
        }
        if let Some((_, p)) = open.take() {
            let id = p.id();
            sealed.push((id, p.seal()?));
        }
        Ok(())
    })();
    if let Err(e) = stored {
        if let Some((_, p)) = open.take() {
            p.discard();
        }
        // Sealed packs stay: the next run adopts them (SPEC section 6).
        return Err(e);
    }
    summary.packs = sealed.len() as u64;

    // Index the new packs and chunks, then publish the manifests.
    let txn = if entries.is_empty() {
        None
    } else {
        let txn = store.begin()?;
        {
            let mut t = txn.open_table(PACKS).map_err(|e| db_err(&index_path, e))?;
            for (id, info) in &sealed {
                t.insert(*id, info.encode().as_slice())
                    .map_err(|e| db_err(&index_path, e))?;
            }
        }
        let chunks = store.chunks_mut()?;
        for (hash, e) in &entries {
            chunks.insert_chunk(*hash, *e);
        }
        for (hash, base) in &delta_rows {
            chunks.insert_delta(*hash, *base);
        }
        // The first chunk with a super-feature keeps it, as in a build.
        for (sf, hash) in &sketch_rows {
            chunks.insert_sketch(*sf, hash)?;
        }
        Some(txn)
    };
    // The new chunks are committed first, so the locators can be read from the index.
    if let Some(t) = txn {
        store.commit(t)?;
    }
    let mut staged = Vec::new();
    for m in &games {
        let body = m.body();
        let bytes = manifest_bytes(&lib, m)?;
        let title = &body.title_id;
        // The chunk table ends the manifest (SPEC section 3); its length was checked on open.
        let table_len = body.chunk_count as usize * CHUNK_RECORD_LEN;
        let table = &bytes[bytes.len() - table_len..];
        let entries = locator::from_index(&store, title, table)?;
        let loc = locator::encode(&dlib.locator_path(title), table, &entries)?;
        match stage_manifest(&dlib, title, &bytes, table, &loc)? {
            Some(s) => staged.push(s),
            None => {
                summary.games_unchanged += 1;
                if locator::refresh(&dlib, title, table, &entries)? {
                    store.touch(title);
                }
            }
        }
    }
    summary.games_written = match staged.is_empty() {
        true => 0,
        false => publish_manifests(&mut store, None, staged)?,
    };
    let mut signers: Vec<[u8; 32]> = games.iter().map(|m| *m.signer()).collect();
    signers.sort_unstable();
    signers.dedup();
    for pk in &signers {
        publish_public_key(&dlib, pk)?;
    }
    sync_dir(&dlib.games_dir())?;
    locator::write_catalog(&dlib)?;
    store.publish()?;
    if let Some((key, valid_for)) = signer {
        summary.snapshot =
            crate::library::snapshot::publish(&dlib, key, valid_for, store.touched(), false)?;
    }
    Ok(summary)
}
