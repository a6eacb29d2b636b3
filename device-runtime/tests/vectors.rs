//! Device runtime tests over the committed golden vectors (format-spec/vectors): they need
//! no host builder, so they run unchanged under QEMU for the ARM targets.

use ed25519_dalek::{Signer, SigningKey};
use prost::Message;
use romlib_device::chunks::decoder::RuzstdDecoder;
use romlib_device::install::{install_game, recover, uninstall, verify_game, MARKER};
use romlib_device::play::read::Game;
use romlib_device::{Error, Library, ManifestFile, TrustStore};
use romlib_format::keyfile::{encode, KeyKind};
use romlib_format::manifest::{ManifestHeader, SignatureBlock, SIGNATURE_DOMAIN};
use romlib_format::pack::{
    split_delta, Method, RecordHeader, FOOTER_LEN, HEADER_LEN, RECORD_HEADER_LEN,
};
use romlib_format::portable::{BaseEntry, LocatorEntry, LocatorHeader, LOCATOR_HEADER_V2_LEN};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../format-spec/vectors");
const SEED: [u8; 32] = [0x42; 32];

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A library made of the golden pack and manifests, with locators built from the pack.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        fs::create_dir_all(lib.join("packs")).unwrap();
        fs::create_dir_all(lib.join("games")).unwrap();
        let pack = fs::read(Path::new(VECTORS).join("pack-0001.pkg")).unwrap();
        fs::write(lib.join("packs/pack-0001.pkg"), &pack).unwrap();
        for g in ["demo", "other"] {
            fs::copy(
                Path::new(VECTORS).join(format!("{g}.manifest")),
                lib.join(format!("games/{g}.manifest")),
            )
            .unwrap();
        }
        // Each game's locator, from the pack's records.
        let mut at = std::collections::HashMap::new();
        let mut pos = HEADER_LEN;
        while pos < pack.len() - FOOTER_LEN {
            let r = RecordHeader::decode(&pack[pos..]).unwrap();
            let e = LocatorEntry {
                pack_id: 1,
                offset: pos as u32,
                clen: r.clen,
                method: r.method,
            };
            let payload = &pack[pos + RECORD_HEADER_LEN..pos + RECORD_HEADER_LEN + r.clen as usize];
            let base =
                (r.method == Method::ZstdDelta).then(|| split_delta(&r.hash, payload).unwrap().0);
            at.insert(r.hash, (e, base));
            pos += RECORD_HEADER_LEN + r.clen as usize;
        }
        for g in ["demo", "other"] {
            let m = ManifestFile::open(&lib.join(format!("games/{g}.manifest"))).unwrap();
            let body = m.unverified_body();
            // The base chunks its delta chunks name, sorted by hash.
            let mut entries = Vec::new();
            let mut bases = std::collections::BTreeMap::new();
            let mut table = m.unverified_chunks().unwrap();
            while let Some(c) = table.next_chunk().unwrap() {
                let (e, base) = at[&c.hash];
                entries.push(e);
                if let Some(b) = base {
                    bases.insert(b, at[&b].0);
                }
            }
            let header = LocatorHeader {
                count: body.chunk_count as u32,
                table_blake3: body.chunk_table_blake3.as_slice().try_into().unwrap(),
                bases: bases.len() as u32,
            };
            let mut loc = header.encode(&mut [0; LOCATOR_HEADER_V2_LEN]).to_vec();
            for e in &entries {
                loc.extend_from_slice(&e.encode());
            }
            for (hash, entry) in bases {
                loc.extend_from_slice(&BaseEntry { hash, entry }.encode());
            }
            fs::write(lib.join(format!("games/{g}.locator")), loc).unwrap();
        }
        let pk = SigningKey::from_bytes(&SEED).verifying_key().to_bytes();
        fs::write(dir.path().join("k.pub"), encode(KeyKind::Public, &pk)).unwrap();
        Fixture { dir }
    }

    fn lib(&self) -> Library {
        Library::new(self.dir.path().join("lib"))
    }

    fn trust(&self) -> TrustStore {
        TrustStore::from_files(&[self.dir.path().join("k.pub")]).unwrap()
    }

    fn inst(&self) -> PathBuf {
        self.dir.path().join("inst")
    }

    fn install(&self, game: &str) -> Result<(), Error> {
        let m = self.lib().open_game(game, &self.trust())?;
        install_game(&self.lib(), &m, &self.inst(), &mut RuzstdDecoder::default()).map(|_| ())
    }

    /// Re-signs `game` with `seed` after `edit`.
    fn resign(&self, game: &str, seed: [u8; 32], edit: impl FnOnce(&mut romlib_proto::Manifest)) {
        let path = self.lib().manifest_path(game);
        let orig = fs::read(Path::new(VECTORS).join(format!("{game}.manifest"))).unwrap();
        let m = ManifestFile::open(&Path::new(VECTORS).join(format!("{game}.manifest"))).unwrap();
        let mut body = m.unverified_body().clone();
        edit(&mut body);
        let old_header = ManifestHeader::decode(&orig).unwrap();
        let table = &orig[old_header.chunk_table_offset() as usize..];
        let body_bytes = body.encode_to_vec();
        let header = ManifestHeader {
            body_len: body_bytes.len() as u32,
        }
        .encode();
        let mut msg = SIGNATURE_DOMAIN.to_vec();
        msg.extend_from_slice(&header);
        msg.extend_from_slice(&body_bytes);
        let sk = SigningKey::from_bytes(&seed);
        let sig = SignatureBlock {
            public_key: sk.verifying_key().to_bytes(),
            signature: sk.sign(&msg).to_bytes(),
        };
        let mut out = header.to_vec();
        out.extend_from_slice(&body_bytes);
        out.extend_from_slice(&sig.encode());
        out.extend_from_slice(table);
        fs::write(path, out).unwrap();
    }

    fn visible(&self) -> Vec<String> {
        let mut v: Vec<String> = match fs::read_dir(self.inst()) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }
}

#[test]
fn installs_the_golden_games_exactly() {
    let f = Fixture::new();
    for g in ["demo", "other"] {
        f.install(g).unwrap();
        let m = ManifestFile::open(&f.lib().manifest_path(g)).unwrap();
        for file in &m.unverified_body().files {
            let bytes = fs::read(f.inst().join(g).join(&file.path)).unwrap();
            assert_eq!(bytes.len() as u64, file.size);
            assert_eq!(
                blake3::hash(&bytes).as_bytes().as_slice(),
                file.blake3.as_slice()
            );
        }
        assert!(f.inst().join(g).join(MARKER).is_file());
    }
    assert_eq!(f.visible(), vec!["demo", "other"]);
    // Reinstall over itself, then uninstall.
    f.install("demo").unwrap();
    uninstall(&f.inst(), "demo").unwrap();
    assert_eq!(f.visible(), vec!["other"]);
}

#[test]
fn verify_reads_everything_and_writes_nothing() {
    let f = Fixture::new();
    let m = f.lib().open_game("demo", &f.trust()).unwrap();
    let r = verify_game(
        &f.lib(),
        &m,
        &mut RuzstdDecoder::default(),
        &romlib_device::progress::NoProgress,
        romlib_device::install::DEFAULT_MAX_MEMORY,
    )
    .unwrap();
    assert_eq!(r.files, 2);
    assert_eq!(r.bytes, 9000);
    assert!(!f.inst().exists());
}

#[test]
fn corrupt_pack_byte_is_refused_and_nothing_is_visible() {
    let f = Fixture::new();
    let p = f.lib().pack_path(1);
    let mut b = fs::read(&p).unwrap();
    for at in [
        HEADER_LEN + RECORD_HEADER_LEN + 5,
        b.len() / 2,
        b.len() - FOOTER_LEN - 3,
    ] {
        let orig = b[at];
        b[at] ^= 0x10;
        fs::write(&p, &b).unwrap();
        let e = f.install("demo").and_then(|_| f.install("other"));
        assert!(e.is_err(), "flip at {at} not caught");
        b[at] = orig;
        let _ = uninstall(&f.inst(), "demo");
        let _ = uninstall(&f.inst(), "other");
        assert!(f.visible().is_empty(), "{:?}", f.visible());
    }
}

#[test]
fn every_manifest_byte_flip_is_caught() {
    let f = Fixture::new();
    let path = f.lib().manifest_path("other");
    let good = fs::read(&path).unwrap();
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x02;
        fs::write(&path, &b).unwrap();
        assert!(f.install("other").is_err(), "flip at byte {i} not caught");
        assert!(f.visible().is_empty());
    }
}

#[test]
fn collector_fields_decode_and_are_checked() {
    let f = Fixture::new();
    let m = f.lib().open_game("demo", &f.trust()).unwrap();
    let b = m.body();
    assert_eq!(b.display_name, "Démo");
    assert_eq!((b.system.as_str(), b.region.as_str()), ("Test", "World"));
    assert_eq!(
        (b.tags.clone(), b.languages.clone()),
        (vec!["golden".to_string()], vec!["en".to_string()])
    );
    assert_eq!(b.version, "2");
    for file in &b.files {
        assert!(file.crc32.is_some(), "{}", file.path);
        assert_eq!(
            (file.md5.len(), file.sha1.len(), file.sha256.len()),
            (16, 20, 32)
        );
    }
    // The empty file's DAT hashes are the well-known empty-input values.
    let empty = b.files.iter().find(|x| x.size == 0).unwrap();
    assert_eq!(empty.crc32, Some(0));
    assert_eq!(empty.md5[..4], [0xd4, 0x1d, 0x8c, 0xd9]);
    assert_eq!(empty.sha1[..4], [0xda, 0x39, 0xa3, 0xee]);
    // A partial or malformed hash set is refused even when signed.
    f.resign("demo", SEED, |m| m.files[0].md5.truncate(15));
    assert!(f
        .install("demo")
        .unwrap_err()
        .to_string()
        .contains("DAT hashes"));
    f.resign("demo", SEED, |m| m.files[0].crc32 = None);
    assert!(f
        .install("demo")
        .unwrap_err()
        .to_string()
        .contains("DAT hashes"));
    f.resign("demo", SEED, |m| m.tags = vec!["t".into(); 65]);
    assert!(f
        .install("demo")
        .unwrap_err()
        .to_string()
        .contains("MAX_TAGS"));
    // Files without any DAT hashes are still a valid manifest.
    f.resign("demo", SEED, |m| {
        for x in &mut m.files {
            (x.crc32, x.md5, x.sha1, x.sha256) = (None, vec![], vec![], vec![]);
        }
    });
    f.install("demo").unwrap();
    assert!(f.visible() == vec!["demo"]);
}

#[test]
fn other_keys_and_hostile_paths_are_refused() {
    let f = Fixture::new();
    f.resign("demo", [7; 32], |_| {});
    let e = f.install("demo").unwrap_err().to_string();
    assert!(e.contains("not in the trust store"), "{e}");
    for bad in ["../x", "/abs", "a//b", "./a", "a\\b", "a\0b"] {
        f.resign("demo", SEED, |m| m.files[0].path = bad.into());
        let e = f.install("demo").unwrap_err();
        assert!(matches!(e, Error::UnsafePath { .. }), "{bad:?}: {e}");
    }
    f.resign("demo", SEED, |m| {
        m.files[1].path = m.files[0].path.to_uppercase()
    });
    assert!(f
        .install("demo")
        .unwrap_err()
        .to_string()
        .contains("collide"));
    assert!(f.visible().is_empty());
    assert!(!f.dir.path().join("x").exists());
}

#[test]
fn interrupted_swap_is_rolled_back() {
    let f = Fixture::new();
    f.install("demo").unwrap();
    // A crash between moving the old copy aside and renaming the new one in.
    let staging = f.inst().join(".romlib-staging");
    fs::create_dir_all(&staging).unwrap();
    fs::rename(f.inst().join("demo"), staging.join("demo.old")).unwrap();
    fs::create_dir_all(staging.join("other.new/half")).unwrap();
    let r = recover(&f.inst()).unwrap();
    assert_eq!(r.done.len(), 2, "{:?}", r.done);
    assert!(r.left_alone().next().is_none(), "{:?}", r.lines());
    assert!(f.inst().join("demo").join(MARKER).is_file());
    assert!(!staging.join("other.new").exists());
}

/// A signed manifest naming a file like romlib's own install-folder entries (a completion
/// marker, the staging folder), in any case, is refused before anything is written.
#[test]
fn reserved_names_are_refused_even_when_signed() {
    for name in [
        ".romlib-installed",
        "x/.ROMLIB-STAGING/y",
        ".romlib-kept",
        "a/.romlib-resume",
    ] {
        let f = Fixture::new();
        f.resign("demo", SEED, |b| b.files[0].path = name.to_string());
        let e = f.install("demo").unwrap_err().to_string();
        assert!(e.contains("a name romlib keeps for itself"), "{name}: {e}");
        assert!(f.visible().is_empty(), "{name}: {:?}", f.visible());
    }
}

#[test]
fn reads_the_golden_games_in_place() {
    let f = Fixture::new();
    for g in ["demo", "other"] {
        let game = Game::open(&f.lib(), g, &f.trust(), RuzstdDecoder::default()).unwrap();
        let listed: Vec<_> = game.files().map(|x| (x.path, x.size)).collect();
        let files = game.manifest().body().files.clone();
        assert_eq!(listed.len(), files.len());
        for file in &files {
            let mut r = game.open_file(&file.path).unwrap();
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            assert_eq!(all.len() as u64, file.size, "{g}/{}", file.path);
            assert_eq!(
                blake3::hash(&all).as_bytes().as_slice(),
                file.blake3.as_slice(),
                "{g}/{}",
                file.path
            );
            // Backwards, a few bytes at a time, across every chunk edge.
            let mut back = vec![0u8; all.len()];
            let mut end = all.len();
            while end > 0 {
                let start = end.saturating_sub(333);
                r.seek(SeekFrom::Start(start as u64)).unwrap();
                r.read_exact(&mut back[start..end]).unwrap();
                end = start;
            }
            assert!(back == all, "{g}/{}", file.path);
        }
    }
}

/// The golden delta (SPEC section 2.2, method 3), made by C zstd against a committed base:
/// ruzstd decodes it to the committed target on every architecture (this runs under QEMU).
#[test]
fn golden_delta_decodes_against_its_base_and_nothing_else() {
    use romlib_device::chunks::decoder::{ChunkDecoder, RuzstdDecoder};
    let base = std::fs::read(format!("{VECTORS}/delta-0001.base")).unwrap();
    let payload = std::fs::read(format!("{VECTORS}/delta-0001.bin")).unwrap();
    let target = std::fs::read_to_string(format!("{VECTORS}/delta-0001.target")).unwrap();
    let (len, hash) = target.trim().split_once(' ').unwrap();
    let len: usize = len.parse().unwrap();
    assert_eq!(
        &payload[..32],
        blake3::hash(&base).as_bytes(),
        "names its base"
    );
    let frame = &payload[32..];
    let mut dec = RuzstdDecoder::default();
    let mut out = vec![0u8; len];
    dec.decode_delta(&base, frame, &mut out).unwrap();
    assert_eq!(blake3::hash(&out).to_hex().as_str(), hash);
    // The same decoder, reused, decodes it again (the base does not linger).
    out.fill(0);
    dec.decode_delta(&base, frame, &mut out).unwrap();
    assert_eq!(blake3::hash(&out).to_hex().as_str(), hash);

    // Another base never yields the target; a cut frame, a wrong length and a frame that
    // claims a window beyond MAX_WINDOW_SIZE are errors, never panics.
    let mut other = base.clone();
    other[5000] ^= 1;
    let r = dec.decode_delta(&other, frame, &mut out);
    assert!(r.is_err() || blake3::hash(&out).to_hex().as_str() != hash);
    assert!(dec
        .decode_delta(&base, &frame[..frame.len() / 2], &mut out)
        .is_err());
    assert!(dec
        .decode_delta(&base, frame, &mut vec![0u8; len - 1])
        .is_err());
    assert!(dec
        .decode_delta(&base, frame, &mut vec![0u8; len + 1])
        .is_err());
    // Magic, a descriptor with no single-segment flag, then a 1 GiB window.
    let mut huge = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8];
    huge.extend_from_slice(&frame[6..]);
    let err = dec.decode_delta(&base, &huge, &mut out).unwrap_err();
    assert!(err.contains("zstd"), "{err}");
}
