//! Targets for what the builder reads from its input folder (DAT files and `romlib.toml`
//! sidecars) and from a library someone else may have written (parity files, the chunk
//! index's sorted runs).

use romlib_format::parity::{ParityHeader, HEADER_LEN, P_META_BLAKE3, P_NAME_HASH};
use romlib_host::build::sidecar::Sidecar;
use romlib_host::dat::{read_dat_from, region_from_name};
use romlib_host::parity::file as parity_file;
use std::path::Path;

/// A DAT file (Logiqx XML, MAME listxml or clrmamepro text: the reader tells them apart
/// as `romlib build --dat` does), with the region taken from each game's name.
pub fn dat(data: &[u8]) {
    let _ = read_dat_from(data, Path::new("fuzz.dat"), |_, game| {
        let _ = region_from_name(&game.name);
        Ok(())
    });
}

/// A `romlib.toml` sidecar, as [`Sidecar::load`] reads it.
pub fn sidecar(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Sidecar::parse(text);
    }
}

/// The library-relative name the `parity` target's files protect.
pub const PARITY_REL: &str = "packs/pack-0001.pkg";

/// A parity file (SPEC section 13): the header decoder; then, with the name hash and the
/// header's `meta_blake3` made right so the fuzzer gets past them, the host's
/// `parity::file::open`, a block-by-block scan of a protected file made of the input, and
/// a repair of it when the file it claims to protect is at most 1 MiB.
pub fn parity(data: &[u8]) {
    let _ = ParityHeader::decode(data);
    let mut d = data.to_vec();
    if let Ok(h) = ParityHeader::decode(&d) {
        let table_end = (HEADER_LEN as u64).saturating_add(h.geometry.table_len());
        if d.len() as u64 >= table_end {
            d[P_NAME_HASH..P_NAME_HASH + 16].copy_from_slice(&parity_file::name_hash(PARITY_REL));
            let mut meta = blake3::Hasher::new();
            meta.update(&d[..P_META_BLAKE3]);
            meta.update(&d[HEADER_LEN..table_end as usize]);
            let sum = *meta.finalize().as_bytes();
            d[P_META_BLAKE3..HEADER_LEN].copy_from_slice(&sum);
        }
    }
    let par = crate::scratch_file("parity", &d);
    let Ok((f, h)) = parity_file::open(&par, PARITY_REL) else {
        return;
    };
    let len = (h.geometry.file_len as usize).min(data.len());
    let protected = crate::scratch_file("parity-protected", &data[..len]);
    let _ = parity_file::scan(&protected, &f, &par, &h);
    if h.geometry.file_len <= 1 << 20 {
        let _ = parity_file::repair(&protected, &f, &par, &h, None);
    }
}

/// A sorted run of the chunk index (SPEC section 5.3), with its trailer's checksum made
/// right so the fuzzer gets past it: opened as a builder opens it (header, trailer,
/// length, fences), looked up (the first chunk and delta rows' keys, a hash, a
/// super-feature and a prefix taken from the input), read in merged order, and checked
/// whole as `romlib verify` does.
pub fn run(data: &[u8]) {
    use romlib_format::index::RUN_TRAILER_LEN;
    use romlib_host::library::runs::{run_file_name, ChunkIndex};
    let mut d = data.to_vec();
    if d.len() >= RUN_TRAILER_LEN {
        let at = d.len() - 40;
        let sum = *blake3::hash(&d[..at]).as_bytes();
        d[at..at + 32].copy_from_slice(&sum);
    }
    let file = crate::scratch_file("run", &[]);
    let dir = file.with_extension("runs");
    let _ = std::fs::create_dir_all(&dir);
    if std::fs::write(dir.join(run_file_name(1)), &d).is_err() {
        return;
    }
    let Ok(ix) = ChunkIndex::open(&dir, &[1], false) else {
        return;
    };
    let key = |at: usize| -> [u8; 32] {
        let mut k = [0u8; 32];
        let src = data.get(at..).unwrap_or(&[]);
        let n = src.len().min(32);
        k[..n].copy_from_slice(&src[..n]);
        k
    };
    for k in [key(16), key(0), *blake3::hash(data).as_bytes()] {
        let _ = ix.get(&k);
        let _ = ix.delta_base(&k);
        let mut p = [0u8; 8];
        p.copy_from_slice(&k[..8]);
        let _ = ix.by_prefix(&p);
        let _ = ix.sketch(u64::from_be_bytes(p));
    }
    let _ = ix.all_chunks();
    let _ = ix.all_deltas();
    for r in ix.runs() {
        let _ = r.check();
    }
}
