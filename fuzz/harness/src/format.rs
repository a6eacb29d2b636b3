//! Targets for the fixed binary structures of `romlib-format`, decoded from `&[u8]` as
//! every reader decodes them.

use romlib_format::keyfile::{self as kf, KeyKind};
use romlib_format::limits::MAX_GAME_CHUNKS;
use romlib_format::manifest::{expected_file_len, ChunkRef, ManifestHeader, CHUNK_RECORD_LEN};
use romlib_format::pack::{
    split_delta, Method, PackFooter, PackHeader, RecordHeader, FOOTER_LEN, HEADER_LEN,
    RECORD_HEADER_LEN,
};
use romlib_format::path::{check_component, check_path, check_title_id, fold_cmp, is_fat_safe};

/// A manifest header then a chunk table: decodes the header, walks the records as the
/// device's streamed chunk table does (hashing them as it goes) and computes the file
/// length the device expects for that many chunks.
pub fn chunk_table(data: &[u8]) {
    let header = ManifestHeader::decode(data).ok();
    let table = data.get(16..).unwrap_or_default();
    let mut hasher = blake3::Hasher::new();
    let mut count = 0u64;
    for rec in table.chunks_exact(CHUNK_RECORD_LEN) {
        hasher.update(rec);
        if ChunkRef::decode(rec).is_err() {
            break;
        }
        count += 1;
    }
    let _ = hasher.finalize();
    if let Some(h) = header {
        // The device checks the body's chunk count against MAX_GAME_CHUNKS first.
        let _ = expected_file_len(&h, count.min(MAX_GAME_CHUNKS));
        let _ = h.signed_prefix();
    }
}

/// A pack file: its header, every record header in turn (with the delta split of delta
/// records) as far as they chain, and its footer against the input's length.
pub fn pack(data: &[u8]) {
    let _ = PackHeader::decode(data);
    if data.len() >= FOOTER_LEN {
        let _ = PackFooter::decode(&data[data.len() - FOOTER_LEN..], data.len() as u64);
    }
    let mut at = HEADER_LEN;
    while let Some(rec) = data.get(at..) {
        let Ok(h) = RecordHeader::decode(rec) else {
            break;
        };
        let start = at + RECORD_HEADER_LEN;
        let Some(payload) = data.get(start..start + h.clen as usize) else {
            break;
        };
        if h.method == Method::ZstdDelta {
            let _ = split_delta(&h.hash, payload);
        }
        at = start + h.clen as usize;
    }
    // Every record header decoder path also runs on the input as it is.
    if let Ok(h) = RecordHeader::decode(data) {
        let _ = split_delta(&h.hash, data.get(RECORD_HEADER_LEN..).unwrap_or_default());
    }
}

/// A key file, read as a public and as a secret key. A key that decodes must encode back to
/// a file that decodes to the same key.
pub fn keyfile(data: &[u8]) {
    for kind in [KeyKind::Public, KeyKind::Secret] {
        if let Ok(key) = kf::decode(kind, data) {
            let again = kf::decode(kind, &kf::encode(kind, &key));
            assert_eq!(
                again,
                Ok(key),
                "a decoded key does not survive a round trip"
            );
        }
    }
}

/// A path and a title id, as a manifest or an input folder gives them: the input up to the
/// first NUL is one name, the rest another. Case-folded comparison must be an order.
pub fn path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_once('\0').unwrap_or((text, ""));
    for s in [a, b] {
        let _ = check_path(s, false);
        let _ = check_path(s, true);
        let _ = check_component(s, false);
        let _ = check_component(s, true);
        let _ = is_fat_safe(s);
        let _ = check_title_id(s);
    }
    assert!(fold_cmp(a, a).is_eq(), "a name differs from itself");
    assert_eq!(
        fold_cmp(a, b),
        fold_cmp(b, a).reverse(),
        "case-folded comparison is not antisymmetric"
    );
}
