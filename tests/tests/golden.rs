//! Golden vectors: a tiny library and FastCDC cut points, committed under
//! `format-spec/vectors/` and regenerated here. A difference means the format (or the
//! content addresses) changed: that is a format change with a version bump, never a test
//! update. After a deliberate change, run with `ROMLIB_BLESS=1` to rewrite the vectors and
//! record the change in SPEC.md's version history.
//!
//! Pack bytes also depend on the C zstd library's output at level 3; a zstd upgrade that
//! changes them shows here first.

use romlib_tests::*;
use std::fs;
use std::path::{Path, PathBuf};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/vectors")
}

fn bless() -> bool {
    std::env::var_os("ROMLIB_BLESS").is_some()
}

fn compare(name: &str, got: &[u8]) {
    let path = vectors().join(name);
    if bless() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, got).unwrap();
        return;
    }
    let want = fs::read(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with ROMLIB_BLESS=1", path.display()));
    assert!(
        want == got,
        "{name} drifted from the committed golden vector (format change?)"
    );
}

/// The fixed test input: two games sharing a chunk, one compressible, one not.
fn golden_input(root: &Path) {
    let mut r = Rng::new(2026);
    let shared = r.bytes(3000);
    let mut a = r.text(6000);
    a.extend_from_slice(&shared);
    write(root, "demo/boot.bin", &a);
    write(root, "demo/sub/empty.txt", b"");
    let mut b = shared.clone();
    b.extend_from_slice(&r.bytes(2000));
    write(root, "other/rom.bin", &b);
    // Metadata (revision 2), so readers on every target decode those fields too.
    write(
        root,
        "demo/romlib.toml",
        "name = \"Démo\"\nsystem = \"Test\"\nregion = \"World\"\nlanguages = [\"en\"]\n\
         tags = [\"golden\"]\nversion = \"2\"\n"
            .as_bytes(),
    );
}

#[test]
fn golden_library() {
    let dir = tempfile::tempdir().unwrap();
    let key = vectors().join("test-key.sec");
    if bless() {
        let sec =
            romlib_format::keyfile::encode(romlib_format::keyfile::KeyKind::Secret, &[0x42; 32]);
        fs::create_dir_all(vectors()).unwrap();
        fs::write(&key, sec).unwrap();
    }
    golden_input(&dir.path().join("in"));
    let lib = dir.path().join("lib");
    ok(romlib(&[
        "build",
        "-i",
        &dir.path().join("in").to_string_lossy(),
        "-o",
        &lib.to_string_lossy(),
        "--signing-key",
        &key.to_string_lossy(),
        "--avg-chunk",
        "1024",
        "-c",
        "3",
        "-q",
    ]));
    compare(
        "pack-0001.pkg",
        &fs::read(lib.join("packs/pack-0001.pkg")).unwrap(),
    );
    compare(
        "demo.manifest",
        &fs::read(lib.join("games/demo.manifest")).unwrap(),
    );
    compare(
        "other.manifest",
        &fs::read(lib.join("games/other.manifest")).unwrap(),
    );
    // The committed vectors decode and verify with the committed key.
    let pk = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32])
        .verifying_key()
        .to_bytes();
    fs::write(
        dir.path().join("k.pub"),
        romlib_format::keyfile::encode(romlib_format::keyfile::KeyKind::Public, &pk),
    )
    .unwrap();
    let trust = romlib_device::TrustStore::from_files(&[dir.path().join("k.pub")]).unwrap();
    let m = romlib_device::ManifestFile::open(&vectors().join("demo.manifest"))
        .unwrap()
        .verify(&trust)
        .unwrap();
    assert_eq!(m.body().files.len(), 2);
    assert_eq!(m.body().files[0].path, "boot.bin");
}

/// Cut points of FastCDC v2020 (normalization level 1) over a fixed 1 MiB buffer.
fn cut_points(avg: u32) -> String {
    let data = Rng::new(7).text(1 << 20);
    let p = romlib_format::chunker::ChunkerParams::from_avg(avg).unwrap();
    let mut out = format!(
        "# fastcdc-v2020 min={} avg={} max={} over Rng(7).text(1 MiB)\n",
        p.min, p.avg, p.max
    );
    let cdc = fastcdc::v2020::FastCDC::with_level(
        &data,
        p.min as usize,
        p.avg as usize,
        p.max as usize,
        fastcdc::v2020::Normalization::Level1,
    );
    for c in cdc {
        out.push_str(&format!("{} {}\n", c.offset, c.length));
    }
    out
}

#[test]
fn pinned_cut_points() {
    for avg in [1024u32, 8192, 32768] {
        compare(&format!("cutpoints-{avg}.txt"), cut_points(avg).as_bytes());
    }
}

#[test]
fn builder_uses_the_pinned_chunker() {
    // The builder's chunk boundaries for a file equal the pinned cut points.
    let dir = tempfile::tempdir().unwrap();
    let data = Rng::new(7).text(1 << 20);
    write(&dir.path().join("in"), "g/f.bin", &data);
    let (games, _) =
        romlib_host::build::scan::scan(&dir.path().join("in"), None, Default::default()).unwrap();
    let lens = romlib_host::build::test_support::chunk_lengths(&games[0].files[0], 32768).unwrap();
    let pinned = cut_points(32768);
    let want: Vec<usize> = pinned
        .lines()
        .skip(1)
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(lens, want);
}

/// A delta chunk (SPEC section 2.2, method 3): C zstd compresses a revision against the raw
/// bytes of its base; ruzstd on the device and C zstd on the host both decode it. This is
/// the pairing deltas rest on (ruzstd gets the base as a formatted dictionary's content).
#[test]
fn delta_frame_pairs_c_zstd_with_ruzstd() {
    use romlib_device::chunks::decoder::{ChunkDecoder, RuzstdDecoder};
    let mut r = Rng::new(14);
    let mut base = r.text(12_000);
    base.extend_from_slice(&r.bytes(4_000));
    let target = r.variant(&base, 12, 300);
    let base_hash = *blake3::hash(&base).as_bytes();
    let payload = romlib_host::build::compress::Compressor::new(3, None)
        .compress_delta(&target, &base_hash, &base)
        .unwrap();
    assert_eq!(&payload[..32], &base_hash);
    assert!(payload.len() < target.len() / 10, "{} bytes", payload.len());
    compare("delta-0001.bin", &payload);
    // The base and the target's BLAKE3, for the device's own test of the vector (which
    // runs under QEMU too, without C zstd or this generator).
    compare("delta-0001.base", &base);
    let want = format!("{} {}\n", target.len(), blake3::hash(&target).to_hex());
    compare("delta-0001.target", want.as_bytes());
    let frame = &fs::read(vectors().join("delta-0001.bin")).unwrap()[32..];
    let mut out = vec![0u8; target.len()];
    RuzstdDecoder::default()
        .decode_delta(&base, frame, &mut out)
        .unwrap();
    assert!(out == target, "ruzstd decoded other bytes");
    out.fill(0);
    romlib_host::zstd_decoder::ZstdDecoder::default()
        .decode_delta(&base, frame, &mut out)
        .unwrap();
    assert!(out == target, "C zstd decoded other bytes");
    // Against any other base, the frame never yields the target.
    let mut other = base.clone();
    other[100] ^= 1;
    let mut out = vec![0u8; target.len()];
    let _ = RuzstdDecoder::default().decode_delta(&other, frame, &mut out);
    assert!(out != target);
}
