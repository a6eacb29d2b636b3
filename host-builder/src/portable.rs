//! `romlib export` and `romlib import`: one-file copies of games (SPEC "Portable files").
//!
//! Export writes the chosen games' signed manifests byte for byte, a locator per game, and
//! exactly the chunk records they need, copied verbatim from the library's packs (no
//! recompression) after each was decoded and checked against its signed hash, so a damaged
//! library never yields a portable file that looks sound. The layout depends only on the
//! games: records in order of first use (games by title, chunks in table order), grouped
//! into packs by the dictionary they need, so exporting again gives identical bytes.
//!
//! Import is the reverse: every game's signature is checked against the trusted keys, the
//! chunks the library already holds are reused, the others are decoded, checked, and
//! appended verbatim to new packs, then the manifests are published exactly as a build
//! publishes them (refcounts, crash safety).

use crate::library::dicts::add_dict;
use crate::library::publish::{publish_manifests, publish_public_key, Staged};
use crate::error::{Error, Result};
use crate::fsio::{parent_dir, rename_synced, sync_dir, temp_path, write_synced};
use crate::library::writer::{db_err, unix_now, LibraryWriter, PackFile};
use crate::zstd_decoder::ZstdDecoder;
use romlib_device::index::{CHUNKS, PACKS};
use romlib_device::install::open_game;
use romlib_device::locate::ChunkLocator;
use romlib_device::pack_reader::{check_chunk, decode_record, read_at, PackReader};
use romlib_device::{Library, TrustStore, VerifiedManifest};
use romlib_format::index::ChunkEntry;
use romlib_format::limits::{DEFAULT_PACK_SIZE, MAX_CHUNK_LEN, MAX_TITLE_ID_LEN};
use romlib_format::manifest::CHUNK_RECORD_LEN;
use romlib_format::pack::{
    Method, PackFooter, PackHeader, RecordHeader, FOOTER_LEN, HEADER_LEN, RECORD_HEADER_LEN,
};
use romlib_format::portable::{
    encode_header, Entry, EntryKind, Footer, LocatorEntry, LocatorHeader,
};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What an export wrote.
#[derive(Debug, Default, Clone)]
pub struct ExportSummary {
    /// Games written.
    pub games: u64,
    /// Distinct chunks written.
    pub chunks: u64,
    /// Their uncompressed bytes.
    pub chunk_bytes: u64,
    /// Packs in the file.
    pub packs: u64,
    /// Length of the file.
    pub file_len: u64,
}

/// One distinct chunk of an export, in order of first use.
struct Planned {
    hash: [u8; 32],
    ulen: u32,
    entry: ChunkEntry,
    /// Dictionary its record needs (0: none).
    dict: u32,
}

/// Where a planned chunk goes in the file.
#[derive(Clone, Copy)]
struct Placed {
    pack: u32,
    offset: u32,
}

/// Counts and hashes what goes to the output file.
struct Out {
    path: PathBuf,
    w: BufWriter<File>,
    hasher: blake3::Hasher,
    at: u64,
}

impl Out {
    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.w
            .write_all(b)
            .map_err(|e| Error::io(&self.path, "write", e))?;
        self.hasher.update(b);
        self.at += b.len() as u64;
        Ok(())
    }
}

/// The bytes of a game's manifest file, as the library holds them.
fn manifest_bytes(lib: &Library, m: &VerifiedManifest) -> Result<Vec<u8>> {
    if let Some(p) = lib.portable() {
        let title = &m.body().title_id;
        let g = p
            .game(title)
            .ok_or_else(|| Error::library(p.path(), format!("{title} vanished")))?;
        let mut buf = vec![0u8; g.manifest_len as usize];
        read_at(p.file(), &mut buf, g.manifest_offset)
            .map_err(|e| Error::io(p.path(), "read", e))?;
        return Ok(buf);
    }
    std::fs::read(m.path()).map_err(|e| Error::io(m.path(), "read", e))
}

/// The dictionary id of pack `id` (cached: the reader keeps only a few packs open).
fn pack_dict(packs: &mut PackReader, id: u32, cache: &mut HashMap<u32, u32>) -> Result<u32> {
    if let Some(d) = cache.get(&id) {
        return Ok(*d);
    }
    let d = packs.dict_id(id)?;
    cache.insert(id, d);
    Ok(d)
}

/// Reads the record of `c` from `lib`, decodes it and checks it against its signed hash;
/// leaves the whole record (header and payload, verbatim) in `rec` and returns the
/// dictionary id its pack uses.
fn read_checked(
    lib: &Library,
    packs: &mut PackReader,
    dec: &mut ZstdDecoder,
    c: &Planned,
    rec: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<u32> {
    rec.clear();
    let r = packs.read_record(&c.hash, &c.entry, c.ulen, rec)?;
    out.resize(c.ulen as usize, 0);
    decode_record(lib, &r, &c.hash, &rec[r.payload.clone()], dec, out)?;
    check_chunk(&lib.pack_path(r.pack_id), &c.hash, r.offset, out)?;
    Ok(r.dict_id)
}

/// Writes games `titles` of `lib` (each checked against `trust` first) into the portable
/// file `dest`, which appears only when complete.
pub fn export(
    lib: &Library,
    titles: &[String],
    trust: &TrustStore,
    dest: &Path,
    progress: &dyn Fn(u64),
) -> Result<ExportSummary> {
    let mut titles = titles.to_vec();
    titles.sort();
    titles.dedup();
    if titles.is_empty() {
        return Err(Error::Usage(
            "no game to export: give -g TITLE or --all".into(),
        ));
    }
    let mut games = Vec::new();
    for t in &titles {
        games.push(open_game(lib, t, trust)?);
    }

    // Plan: the distinct chunks in order of first use, and each game's table as indices.
    let mut plan: Vec<Planned> = Vec::new();
    let mut seen: HashMap<[u8; 32], u32> = HashMap::new();
    let mut tables: Vec<Vec<u32>> = Vec::new();
    let mut dicts = HashMap::new();
    let mut packs = PackReader::new(lib);
    for m in &games {
        let loc = ChunkLocator::open(lib, m.body())?;
        let mut table = m.chunks()?;
        let mut idx = Vec::with_capacity(m.body().chunk_count as usize);
        let mut i = 0;
        while let Some(c) = table.next_chunk()? {
            let n = match seen.get(&c.hash) {
                Some(&n) => n,
                None => {
                    let entry = loc.lookup(i, &c.hash, c.len)?.ok_or_else(|| {
                        Error::library(
                            lib.index_path(),
                            format!("{}: a chunk is missing from the index", m.body().title_id),
                        )
                    })?;
                    let dict = if entry.method == Method::ZstdDict {
                        pack_dict(&mut packs, entry.pack_id, &mut dicts)?
                    } else {
                        0
                    };
                    let n = plan.len() as u32;
                    plan.push(Planned {
                        hash: c.hash,
                        ulen: c.len,
                        entry,
                        dict,
                    });
                    seen.insert(c.hash, n);
                    n
                }
            };
            idx.push(n);
            i += 1;
        }
        table.finish()?;
        tables.push(idx);
    }

    // Layout: one run of packs per dictionary (none first), each under DEFAULT_PACK_SIZE.
    let mut groups: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (n, c) in plan.iter().enumerate() {
        groups.entry(c.dict).or_default().push(n as u32);
    }
    let mut placed = vec![Placed { pack: 0, offset: 0 }; plan.len()];
    // (pack id, dictionary, chunks in order)
    let mut packs_out: Vec<(u32, u32, Vec<u32>)> = Vec::new();
    for (&dict, list) in &groups {
        let mut size = 0;
        for &n in list {
            let rec_len = (RECORD_HEADER_LEN as u64) + plan[n as usize].entry.clen as u64;
            if size == 0 || size + rec_len + FOOTER_LEN as u64 > DEFAULT_PACK_SIZE {
                let id = packs_out.len() as u32 + 1;
                packs_out.push((id, dict, Vec::new()));
                size = HEADER_LEN as u64;
            }
            let last = packs_out.last_mut().expect("just pushed");
            placed[n as usize] = Placed {
                pack: last.0,
                offset: size as u32,
            };
            last.2.push(n);
            size += rec_len;
        }
    }

    // Write.
    let tmp = temp_path(dest);
    let file = File::create(&tmp).map_err(|e| Error::io(&tmp, "create", e))?;
    let mut out = Out {
        path: tmp.clone(),
        w: BufWriter::with_capacity(1 << 20, file),
        hasher: blake3::Hasher::new(),
        at: 0,
    };
    let written = (|| -> Result<ExportSummary> {
        let mut entries = Vec::new();
        out.write(&encode_header())?;
        for &dict in groups.keys().filter(|&&d| d != 0) {
            let bytes = lib.read_dict(dict)?;
            entries.push(section(EntryKind::Dict, dict, out.at, bytes.len() as u64));
            out.write(&bytes)?;
        }
        let mut dec = ZstdDecoder::default();
        let (mut rec, mut data) = (Vec::new(), Vec::new());
        let mut summary = ExportSummary::default();
        for (id, dict, list) in &packs_out {
            let start = out.at;
            let mut pack_hash = blake3::Hasher::new();
            let header = PackHeader {
                pack_id: *id,
                dict_id: *dict,
            }
            .encode();
            out.write(&header)?;
            pack_hash.update(&header);
            for &n in list {
                let c = &plan[n as usize];
                let src_dict = read_checked(lib, &mut packs, &mut dec, c, &mut rec, &mut data)?;
                if c.entry.method == Method::ZstdDict && src_dict != *dict {
                    return Err(Error::library(
                        lib.pack_path(c.entry.pack_id),
                        "pack's dictionary changed during the export",
                    ));
                }
                debug_assert_eq!(out.at - start, placed[n as usize].offset as u64);
                out.write(&rec)?;
                pack_hash.update(&rec);
                summary.chunks += 1;
                summary.chunk_bytes += c.ulen as u64;
                progress(c.ulen as u64);
            }
            let footer = PackFooter {
                record_count: list.len() as u64,
                records_len: out.at - start - HEADER_LEN as u64,
                checksum: *pack_hash.finalize().as_bytes(),
            };
            out.write(&footer.encode())?;
            entries.push(section(EntryKind::Pack, *id, start, out.at - start));
        }
        for (m, idx) in games.iter().zip(&tables) {
            let body = m.body();
            let bytes = manifest_bytes(lib, m)?;
            let moff = out.at;
            out.write(&bytes)?;
            let loff = out.at;
            out.write(
                &LocatorHeader {
                    count: body.chunk_count as u32,
                    table_blake3: body
                        .chunk_table_blake3
                        .as_slice()
                        .try_into()
                        .map_err(|_| Error::library(m.path(), "bad chunk_table_blake3"))?,
                }
                .encode(),
            )?;
            for &n in idx {
                let (c, p) = (&plan[n as usize], placed[n as usize]);
                let e = LocatorEntry {
                    pack_id: p.pack,
                    offset: p.offset,
                    clen: c.entry.clen,
                    method: c.entry.method,
                };
                out.write(&e.encode())?;
            }
            let mut g = section(EntryKind::Game, 0, moff, bytes.len() as u64);
            g.locator_offset = loff;
            g.locator_len = out.at - loff;
            let t = body.title_id.as_bytes();
            g.name[..t.len()].copy_from_slice(t);
            g.name_len = t.len() as u8;
            entries.push(g);
        }
        let directory_offset = out.at;
        for e in &entries {
            out.write(&e.encode())?;
        }
        let footer = Footer {
            entry_count: entries.len() as u32,
            directory_offset,
            checksum: *out.hasher.finalize().as_bytes(),
        };
        out.write(&footer.encode())?;
        summary.games = games.len() as u64;
        summary.packs = packs_out.len() as u64;
        summary.file_len = out.at;
        Ok(summary)
    })();
    let summary = match written {
        Ok(s) => s,
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let file = out
        .w
        .into_inner()
        .map_err(|e| Error::io(&tmp, "write", e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(&tmp, "fsync", e))?;
    drop(file);
    rename_synced(&tmp, dest)?;
    Ok(summary)
}

fn section(kind: EntryKind, id: u32, offset: u64, len: u64) -> Entry {
    Entry {
        kind,
        id,
        offset,
        len,
        locator_offset: 0,
        locator_len: 0,
        name: [0; MAX_TITLE_ID_LEN],
        name_len: 0,
    }
}

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
}

/// Adds the games of portable file `src` (those in `titles`, or all) to the library at
/// `dest`, storing only the chunks it lacks. Every game must be signed by a key `trust`
/// holds; nothing is changed if one is not.
pub fn import(
    src: &Path,
    dest: &Path,
    titles: &[String],
    trust: &TrustStore,
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
        games.push(open_game(&lib, t, trust)?);
    }
    let mut store = LibraryWriter::open(dest)?;
    let dlib = store.library().clone();
    let index_path = dlib.index_path();

    // Which chunks are missing, in order of first use.
    let mut missing: Vec<Planned> = Vec::new();
    let mut seen: HashMap<[u8; 32], ()> = HashMap::new();
    let mut summary = ImportSummary::default();
    {
        let rtx = store.begin_read()?;
        let chunks = match rtx.open_table(CHUNKS) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(db_err(&index_path, e)),
        };
        let mut dicts = HashMap::new();
        let mut packs = PackReader::new(&lib);
        for m in &games {
            let loc = ChunkLocator::open(&lib, m.body())?;
            let mut table = m.chunks()?;
            let mut i = 0;
            while let Some(c) = table.next_chunk()? {
                i += 1;
                if seen.insert(c.hash, ()).is_some() {
                    continue;
                }
                let have = match &chunks {
                    Some(t) => t
                        .get(&c.hash)
                        .map_err(|e| db_err(&index_path, e))?
                        .is_some(),
                    None => false,
                };
                if have {
                    summary.reused_chunks += 1;
                    continue;
                }
                let entry = loc.lookup(i - 1, &c.hash, c.len)?.ok_or_else(|| {
                    Error::input(
                        src,
                        format!("{}: a chunk has no locator entry", m.body().title_id),
                    )
                })?;
                let dict = if entry.method == Method::ZstdDict {
                    pack_dict(&mut packs, entry.pack_id, &mut dicts)?
                } else {
                    0
                };
                missing.push(Planned {
                    hash: c.hash,
                    ulen: c.len,
                    entry,
                    dict,
                });
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
    let (mut rec, mut data) = (Vec::new(), Vec::new());
    let mut sealed: Vec<(u32, romlib_format::index::PackInfo)> = Vec::new();
    let mut entries: Vec<([u8; 32], ChunkEntry)> = Vec::new();
    let mut open: Option<(u32, PackFile)> = None;
    let stored = (|| -> Result<()> {
        for c in &missing {
            read_checked(&lib, &mut packs, &mut dec, c, &mut rec, &mut data)?;
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
                    refcount: 0,
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
            let mut t = txn.open_table(CHUNKS).map_err(|e| db_err(&index_path, e))?;
            for (hash, e) in &entries {
                t.insert(hash, e.encode().as_slice())
                    .map_err(|e| db_err(&index_path, e))?;
            }
        }
        Some(txn)
    };
    let mut staged: Vec<Staged> = Vec::new();
    let mut tables = Vec::new();
    for m in &games {
        let body = m.body();
        let bytes = manifest_bytes(&lib, m)?;
        let path = dlib.manifest_path(&body.title_id);
        // The chunk table ends the manifest (SPEC 3); its length was checked on open.
        let table_len = body.chunk_count as usize * CHUNK_RECORD_LEN;
        let table = bytes[bytes.len() - table_len..].to_vec();
        tables.push((body.title_id.clone(), table.clone()));
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            summary.games_unchanged += 1;
            continue;
        }
        let tmp = temp_path(&path);
        write_synced(&tmp, &bytes, 0o644)?;
        let hash = *blake3::hash(&table).as_bytes();
        staged.push((body.title_id.clone(), path, tmp, table, hash));
    }
    summary.games_written = match (txn, staged.is_empty()) {
        (Some(t), true) => {
            store.commit(t)?;
            0
        }
        (t, false) => publish_manifests(&mut store, t, staged)?,
        (None, true) => 0,
    };
    for (title, table) in &tables {
        crate::library::locator::refresh(&store, title, table)?;
    }
    let mut signers: Vec<[u8; 32]> = games.iter().map(|m| *m.signer()).collect();
    signers.sort_unstable();
    signers.dedup();
    for pk in &signers {
        publish_public_key(&dlib, pk)?;
    }
    sync_dir(parent_dir(&dlib.manifest_path("x")))?;
    crate::library::locator::write_catalog(&dlib)?;
    if summary.new_chunks > 0 || summary.games_written > 0 {
        store.compact()?;
    }
    Ok(summary)
}
