//! Targets for what the device runtime reads from a library, a portable file or a server:
//! manifests and their signatures, locators, zstd frames, portable files and HTTP
//! responses, each through the device's own entry point.

use crate::{scratch_file, Fields};
use ed25519_dalek::SigningKey;
use prost::Message;
use romlib_device::chunks::decoder::{ChunkDecoder, RuzstdDecoder};
use romlib_device::chunks::locator::ChunkLocator;
use romlib_device::library::http::{read_response, Url};
use romlib_device::trusted::manifest::validate_body;
use romlib_device::trusted::ChunkTable;
use romlib_device::{Library, ManifestFile, TrustStore};
use romlib_format::index::{ChunkEntry, PackInfo};
use romlib_format::keyfile::{self, KeyKind};
use romlib_format::limits::MAX_CHUNK_LEN;
use romlib_format::manifest::CHUNK_RECORD_LEN;
use romlib_format::pack::Method;
use romlib_format::portable::{BaseEntry, LocatorEntry, LocatorHeader};
use romlib_proto::Manifest;
use std::path::Path;
use std::sync::OnceLock;

/// The seed of the key the structure-aware target signs with: the test key of
/// `format-spec/vectors/test-key.sec`, which also signed the golden manifests there.
const TEST_KEY_SEED: [u8; 32] = [0x42; 32];

/// The public key of the library in `tests/fixtures/v1-library`.
const V1_LIBRARY_KEY: &[u8] = include_bytes!("../../../tests/fixtures/v1-library/k.pub");

/// The key the structure-aware target signs with.
pub fn test_key() -> SigningKey {
    SigningKey::from_bytes(&TEST_KEY_SEED)
}

/// A trust store of the test key and the v1 fixture library's key, so that seeds made from
/// real manifests verify.
fn trust() -> &'static TrustStore {
    static STORE: OnceLock<TrustStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let test = keyfile::encode(KeyKind::Public, &test_key().verifying_key().to_bytes());
        let files = [
            scratch_file("test-key.pub", &test),
            scratch_file("v1-library.pub", V1_LIBRARY_KEY),
        ];
        TrustStore::from_files(&files).expect("the fuzz trust store loads")
    })
}

/// Reads a chunk table to its end and checks it against its signed hash.
fn walk(table: romlib_device::Result<ChunkTable>) {
    let Ok(mut table) = table else {
        return;
    };
    loop {
        match table.next_chunk() {
            Ok(Some(_)) => {}
            Ok(None) => {
                let _ = table.finish();
                return;
            }
            Err(_) => return,
        }
    }
}

/// Opens the manifest file at `path` as a library does, walks its chunk table, checks its
/// signature against the trust store and walks the verified table again.
fn open_manifest(path: &Path) {
    let Ok(m) = ManifestFile::open(path) else {
        return;
    };
    let _ = m.claimed_key();
    walk(m.unverified_chunks());
    if let Ok(v) = m.verify(trust()) {
        let _ = v.file_len();
        walk(v.chunks());
    }
}

/// A manifest file's bytes: envelope, body, signature check and chunk table walk.
pub fn manifest(data: &[u8]) {
    open_manifest(&scratch_file("manifest", data));
}

/// Bytes of the header of a [`manifest_signed`] input: flags (u8), then the body's length
/// (u16).
pub const MANIFEST_SIGNED_HEADER_LEN: usize = 3;

/// A manifest built from the input and signed with the test key, so that the fuzzer reaches
/// past the signature: flags (u8), the body's length (u16), the protobuf body, then the
/// chunk table. Flag 1 makes the body's chunk count and table hash match the table (cut to
/// whole records); flag 2 makes the totals add up from the file entries.
pub fn manifest_signed(data: &[u8]) {
    if let Some(file) = signed_manifest(data) {
        open_manifest(&scratch_file("manifest_signed", &file));
    }
}

/// The manifest file a [`manifest_signed`] input stands for, if its body decodes.
fn signed_manifest(data: &[u8]) -> Option<Vec<u8>> {
    let mut f = Fields::new(data);
    let flags = f.u8();
    let body_len = f.u16() as usize;
    let body = f.bytes(body_len);
    let mut table = f.rest();
    let mut body = Manifest::decode(body).ok()?;
    if flags & 1 != 0 {
        table = &table[..table.len() / CHUNK_RECORD_LEN * CHUNK_RECORD_LEN];
        body.chunk_count = (table.len() / CHUNK_RECORD_LEN) as u64;
        body.chunk_table_blake3 = blake3::hash(table).as_bytes().to_vec();
    }
    if flags & 2 != 0 {
        body.total_size = body.files.iter().fold(0u64, |a, f| a.wrapping_add(f.size));
        if flags & 1 == 0 {
            body.chunk_count = body
                .files
                .iter()
                .fold(0u64, |a, f| a.wrapping_add(f.chunk_count));
        }
    }
    Some(romlib_host::library::manifest_writer::sign_as_is(
        &body,
        table,
        &test_key(),
    ))
}

/// A manifest's protobuf body: decoded, then checked as the device checks every body.
pub fn manifest_body(data: &[u8]) {
    if let Ok(m) = Manifest::decode(data) {
        let _ = validate_body(Path::new("fuzz.manifest"), &m);
    }
}

/// Locator and index records: each record decoder on the input, then the input as a
/// locator file opened by the device for a manifest it matches (chunk count and table
/// hash from its own header), every entry read and a base looked up.
pub fn locator(data: &[u8]) {
    let _ = PackInfo::decode(data);
    let _ = BaseEntry::decode(data);
    if let Ok(e) = ChunkEntry::decode(data) {
        if let Some(l) = LocatorEntry::from_index(&e) {
            let _ = l.to_index(e.ulen);
        }
    }
    if let Ok(e) = LocatorEntry::decode(data) {
        let _ = e.to_index(1);
    }
    let Ok(h) = LocatorHeader::decode(data) else {
        return;
    };
    let _ = h.locator_len();
    let body = Manifest {
        title_id: "fuzz".into(),
        chunk_count: h.count as u64,
        chunk_table_blake3: h.table_blake3.to_vec(),
        ..Default::default()
    };
    let path = scratch_file("locator", data);
    let Ok(loc) = ChunkLocator::open_file(&path, &body) else {
        return;
    };
    // The locator's length was checked against its header, so this is bounded by the input.
    for i in 0..=h.count as u64 {
        if loc.entry(i).is_err() {
            break;
        }
    }
    let _ = loc.lookup(0, &[0; 32], 1);
    let _ = loc.base(&[0x80; 32]);
    let _ = loc.base_hashes();
}

/// A chunk length as a record header gives it: at most [`MAX_CHUNK_LEN`].
fn chunk_len(f: &mut Fields) -> usize {
    (f.u32() % (MAX_CHUNK_LEN + 1)) as usize
}

/// A record payload through the device's decoder: method (u8), the chunk's length (u32,
/// taken modulo [`MAX_CHUNK_LEN`] + 1 as the record header bounds it), then the payload.
pub fn zstd_frame(data: &[u8]) {
    let mut f = Fields::new(data);
    let Ok(method) = Method::from_byte(f.u8() % 4) else {
        return;
    };
    let ulen = chunk_len(&mut f);
    let mut out = vec![0u8; ulen];
    let _ = RuzstdDecoder::default().decode(method, f.rest(), &mut out);
}

/// A delta frame through the device's decoder: the chunk's length (u32, modulo
/// [`MAX_CHUNK_LEN`] + 1), the base's length (u32, likewise), the base, then the frame.
pub fn zstd_delta(data: &[u8]) {
    let mut f = Fields::new(data);
    let ulen = chunk_len(&mut f);
    let base_len = chunk_len(&mut f);
    let base = f.bytes(base_len);
    let mut out = vec![0u8; ulen];
    let _ = RuzstdDecoder::default().decode_delta(base, f.rest(), &mut out);
}

/// A portable file opened as a library (`-r FILE`): header, footer and directory, then for
/// the first games their manifests (within the file) and locators, a few entries each.
pub fn portable(data: &[u8]) {
    let path = scratch_file("portable", data);
    let Ok(lib) = Library::open(&path) else {
        return;
    };
    let Some(p) = lib.portable() else {
        return;
    };
    let _ = (p.pack(1), p.dict(1));
    let titles: Vec<String> = p.games().iter().take(4).map(|g| g.title.clone()).collect();
    for t in titles {
        let Ok(m) = lib.open_manifest(&t) else {
            continue;
        };
        walk(m.unverified_chunks());
        let Ok(loc) = ChunkLocator::open(&lib, m.unverified_body()) else {
            continue;
        };
        for i in 0..64 {
            if !matches!(loc.entry(i), Ok(Some(_))) {
                break;
            }
        }
        let _ = loc.base_hashes();
    }
}

/// A server's response to the device's HTTP client: mode (u8; bit 0: a range request),
/// the range's start (u32) and length (u16, at least 1), the largest whole file accepted
/// (u32), then the response bytes as they come off the socket.
pub fn http_response(data: &[u8]) {
    let mut f = Fields::new(data);
    let mode = f.u8();
    let start = f.u32() as u64;
    let len = (f.u16() as usize).max(1);
    let max = f.u32() as u64;
    let mut input = f.rest();
    let url =
        Url::parse("http://127.0.0.1:8080/lib/games/fuzz.manifest").expect("the fuzz URL parses");
    let mut out = Vec::new();
    if mode & 1 != 0 {
        let mut buf = vec![0u8; len];
        let _ = read_response(&mut input, &url, Some((start, &mut buf)), max, &mut out);
    } else {
        let _ = read_response(&mut input, &url, None, max, &mut out);
    }
}

/// A library's signed snapshot (SPEC section 15): the input line by line through the
/// format's parser, and as a file through the device's check (format, bounds, signature)
/// and a lookup; then the input signed with the test key (a signature line appended after
/// its last full line), so the fuzzer gets past the signature to the lookups and the expiry.
pub fn snapshot(data: &[u8]) {
    use romlib_device::trusted::snapshot::Snapshot;
    use romlib_format::snapshot::{message, Parser, SignatureLine};
    let mut parser = Parser::new();
    for line in data.split(|&c| c == b'\n') {
        if parser.line(line).is_err() {
            break;
        }
    }
    let look = |bytes: &[u8]| {
        let path = scratch_file("snapshot", bytes);
        let Ok(file) = std::fs::File::open(&path) else {
            return;
        };
        if let Ok(s) = Snapshot::open(&path, file, trust()) {
            let _ = s.check_expiry(0);
            let _ = s.check_expiry(u64::MAX);
            for title in ["fuzz", "alpha", "Super Game (USA)"] {
                let _ = s.expected(title, trust());
            }
        }
    };
    look(data);
    let end = data.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    let mut signed = data[..end].to_vec();
    let msg = message(blake3::hash(&signed).as_bytes(), signed.len() as u64);
    let key = test_key();
    let line = SignatureLine {
        public_key: key.verifying_key().to_bytes(),
        signature: ed25519_dalek::Signer::sign(&key, &msg).to_bytes(),
    };
    signed.extend_from_slice(line.to_string().as_bytes());
    look(&signed);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The structure-aware target is only worth its name if its seeds get past the
    /// signature and the body checks, to the verified chunk table.
    #[test]
    fn signed_seeds_verify_and_their_tables_match() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds/manifest_signed");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let file = signed_manifest(&std::fs::read(&path).unwrap()).unwrap();
            let m = ManifestFile::open(&scratch_file("test-signed", &file))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let v = m.verify(trust()).unwrap();
            let mut table = v.chunks().unwrap();
            while table.next_chunk().unwrap().is_some() {}
            table.finish().unwrap();
            n += 1;
        }
        assert!(n >= 3);
    }
}
