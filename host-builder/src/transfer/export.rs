//! `romlib export`: games into one portable file (`format-spec/SPEC.md` section 11).
//!
//! Export writes the chosen games' signed manifests byte for byte, a locator per game, and
//! exactly the chunk records they need, copied verbatim from the library's packs (no
//! recompression) after each was decoded and checked against its signed hash, so a damaged
//! library never yields a portable file that looks sound. The layout depends only on the
//! games: records in order of first use (games by title, chunks in table order), grouped
//! into packs by the dictionary they need, so exporting again gives identical bytes.

use super::{base_of, manifest_bytes, read_checked, Planned};
use crate::error::{Error, Result};
use crate::fsio::{rename_synced, temp_path};
use crate::library::pack_writer::PackWriter;
use crate::zstd_decoder::ZstdDecoder;
use romlib_device::chunks::packs::PackReader;
use romlib_device::chunks::{BaseChunk, ChunkSource};
use romlib_device::{Library, TrustStore};
use romlib_format::limits::{DEFAULT_PACK_SIZE, MAX_TITLE_ID_LEN};
use romlib_format::pack::{must_roll_over, Method, RecordHeader, HEADER_LEN, RECORD_HEADER_LEN};
use romlib_format::portable::{
    encode_header, BaseEntry, Entry, EntryKind, Footer, LocatorEntry, LocatorHeader,
    LOCATOR_HEADER_V2_LEN,
};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
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

/// Where a planned chunk goes in the file.
#[derive(Clone, Copy)]
struct Placed {
    pack: u32,
    offset: u32,
}

/// The portable file being written: counts its bytes and hashes them for its footer.
struct Out {
    path: PathBuf,
    w: BufWriter<File>,
    hasher: blake3::Hasher,
    at: u64,
}

impl Write for Out {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.w.write(b)?;
        self.hasher.update(&b[..n]);
        self.at += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl Out {
    /// Writes all of `b`.
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.write_all(b).map_err(|e| self.write_error(e))
    }

    fn write_error(&self, e: io::Error) -> Error {
        Error::io(&self.path, "write", e)
    }
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
        games.push(lib.open_game(t, trust)?);
    }

    // Plan: the distinct chunks in order of first use, and each game's table as indices.
    let mut plan: Vec<Planned> = Vec::new();
    let mut seen: HashMap<[u8; 32], u32> = HashMap::new();
    let mut tables: Vec<Vec<u32>> = Vec::new();
    let mut dicts = HashMap::new();
    let mut scratch = Vec::new();
    for m in &games {
        let mut source = ChunkSource::open(lib, m)?;
        let mut table = m.chunks()?;
        let mut idx = Vec::with_capacity(m.body().chunk_count as usize);
        let mut i = 0;
        while let Some(c) = table.next_chunk()? {
            let n = match seen.get(&c.hash) {
                Some(&n) => n,
                None => {
                    let entry = source.locate(i, &c)?;
                    // A delta's base counts as used just before the delta (SPEC section 11).
                    let base = base_of(&mut source, i, &c, &entry, &mut scratch)?;
                    if let Some((bh, be)) = base {
                        if let std::collections::hash_map::Entry::Vacant(v) = seen.entry(bh) {
                            v.insert(plan.len() as u32);
                            plan.push(Planned::new(source.packs(), &mut dicts, bh, be.ulen, be)?);
                        }
                    }
                    let n = plan.len() as u32;
                    let packs = source.packs();
                    plan.push(Planned {
                        base,
                        ..Planned::new(packs, &mut dicts, c.hash, c.len, entry)?
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
        // Bytes of this dictionary's open pack (0: none open yet).
        let mut size = 0;
        for &n in list {
            let rec_len = (RECORD_HEADER_LEN as u64) + plan[n as usize].entry.clen as u64;
            let records = packs_out.last().map_or(0, |p| p.2.len() as u64);
            if size == 0 || must_roll_over(records, size, rec_len, DEFAULT_PACK_SIZE) {
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
        out.put(&encode_header())?;
        for &dict in groups.keys().filter(|&&d| d != 0) {
            let bytes = lib.read_dict(dict)?;
            entries.push(section(EntryKind::Dict, dict, out.at, bytes.len() as u64));
            out.put(&bytes)?;
        }
        let mut packs = PackReader::new(lib);
        let mut dec = ZstdDecoder::default();
        let mut base = BaseChunk::default();
        let (mut rec, mut data) = (Vec::new(), Vec::new());
        let mut summary = ExportSummary::default();
        let write_error = |e| Error::io(&tmp, "write", e);
        for (id, dict, list) in &packs_out {
            let start = out.at;
            let mut pack = PackWriter::new(&mut out, *id, *dict).map_err(write_error)?;
            for &n in list {
                let c = &plan[n as usize];
                let src_dict =
                    read_checked(lib, &mut packs, &mut dec, c, &mut base, &mut rec, &mut data)?;
                if c.entry.method == Method::ZstdDict && src_dict != *dict {
                    return Err(Error::library(
                        lib.pack_path(c.entry.pack_id),
                        "pack's dictionary changed during the export",
                    ));
                }
                // The record is copied verbatim: its header, as the reader checked it, and
                // its payload.
                let h = RecordHeader::decode(&rec[..RECORD_HEADER_LEN])
                    .map_err(|e| Error::library(lib.pack_path(c.entry.pack_id), e.to_string()))?;
                let offset = pack
                    .append(&h, &rec[RECORD_HEADER_LEN..])
                    .map_err(write_error)?;
                debug_assert_eq!(offset, placed[n as usize].offset as u64);
                summary.chunks += 1;
                summary.chunk_bytes += c.ulen as u64;
                progress(c.ulen as u64);
            }
            pack.finish().map_err(write_error)?;
            entries.push(section(EntryKind::Pack, *id, start, out.at - start));
        }
        for (m, idx) in games.iter().zip(&tables) {
            let body = m.body();
            let bytes = manifest_bytes(lib, m)?;
            let moff = out.at;
            out.put(&bytes)?;
            let loff = out.at;
            // Where each base of the game's deltas lies, by hash.
            let mut bases: BTreeMap<[u8; 32], LocatorEntry> = BTreeMap::new();
            for &n in idx {
                if let Some((bh, _)) = &plan[n as usize].base {
                    let b = seen[bh] as usize;
                    bases.insert(*bh, located(&plan[b], placed[b]));
                }
            }
            out.put(
                LocatorHeader {
                    count: body.chunk_count as u32,
                    table_blake3: body
                        .chunk_table_blake3
                        .as_slice()
                        .try_into()
                        .map_err(|_| Error::library(m.path(), "bad chunk_table_blake3"))?,
                    bases: bases.len() as u32,
                }
                .encode(&mut [0; LOCATOR_HEADER_V2_LEN]),
            )?;
            for &n in idx {
                out.put(&located(&plan[n as usize], placed[n as usize]).encode())?;
            }
            for (hash, entry) in &bases {
                let b = BaseEntry {
                    hash: *hash,
                    entry: *entry,
                };
                out.put(&b.encode())?;
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
            out.put(&e.encode())?;
        }
        let footer = Footer {
            entry_count: entries.len() as u32,
            directory_offset,
            checksum: *out.hasher.finalize().as_bytes(),
        };
        out.put(&footer.encode())?;
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

/// Where planned chunk `c`, placed at `p`, lies in the portable file.
fn located(c: &Planned, p: Placed) -> LocatorEntry {
    LocatorEntry {
        pack_id: p.pack,
        offset: p.offset,
        clen: c.entry.clen,
        method: c.entry.method,
    }
}
