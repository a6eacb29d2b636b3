//! Writes the fuzz seed corpora, `fuzz/seeds/<target>/<name>`, from real romlib files: the
//! golden vectors of `format-spec/vectors`, the committed version 1 library of
//! `tests/fixtures/v1-library`, and a fresh library built from that library's input plus a
//! revised copy of one game (so that packs hold delta records and a locator has a base
//! table), exported to a portable file as `romlib export` does. DAT files and HTTP
//! responses are written for the same games, the responses as nginx sends them.
//!
//! Deterministic: the same sources give the same seeds. Usage:
//! `cargo run -p romlib-fuzz-harness --bin make-seeds [-- OUT_DIR]` (default `fuzz/seeds`).

use romlib_device::chunks::decoder::{ChunkDecoder, RuzstdDecoder};
use romlib_device::{Library, TrustStore};
use romlib_format::layout::GamesLayout;
use romlib_format::manifest::{ManifestHeader, HEADER_LEN, SIGNATURE_BLOCK_LEN};
use romlib_format::pack::{self, Method, RecordHeader, RECORD_HEADER_LEN};
use romlib_fuzz_harness::{test_key, TARGETS};
use romlib_host::dat::digests::DatHashes;
use romlib_host::BuildOptions;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// Seeds by target, then by file name.
type Seeds = BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>;

fn add(seeds: &mut Seeds, target: &'static str, name: &str, bytes: Vec<u8>) {
    assert!(
        TARGETS.iter().any(|(t, _)| *t == target),
        "no target {target}"
    );
    seeds
        .entry(target)
        .or_default()
        .insert(name.to_string(), bytes);
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn le32(v: usize) -> [u8; 4] {
    u32::try_from(v).expect("fits u32").to_le_bytes()
}

/// Seeds from one manifest file: the file, its body, its header and table, and the
/// structure-aware form (flags 1: table hash and count filled in).
fn manifest_seeds(seeds: &mut Seeds, name: &str, file: &[u8]) {
    let h = ManifestHeader::decode(file).expect("a real manifest's header decodes");
    let body = &file[HEADER_LEN..HEADER_LEN + h.body_len as usize];
    let table = &file[h.chunk_table_offset() as usize..];
    add(seeds, "manifest", name, file.to_vec());
    add(seeds, "manifest_body", name, body.to_vec());
    let mut ct = file[..HEADER_LEN].to_vec();
    ct.extend_from_slice(table);
    add(seeds, "chunk_table", name, ct);
    let mut s = vec![1u8];
    s.extend_from_slice(&u16::try_from(body.len()).expect("small body").to_le_bytes());
    s.extend_from_slice(body);
    s.extend_from_slice(table);
    add(seeds, "manifest_signed", name, s);
    debug_assert!(h.signature_offset() as usize + SIGNATURE_BLOCK_LEN <= file.len());
}

/// Seeds from one pack: the pack, and each kind of record payload once through the
/// decoder targets (the first record of each method).
fn pack_seeds(seeds: &mut Seeds, name: &str, file: &[u8]) {
    add(seeds, "pack", name, file.to_vec());
    let mut at = pack::HEADER_LEN;
    let mut seen = Vec::new();
    while let Ok(r) = RecordHeader::decode(&file[at..]) {
        let start = at + RECORD_HEADER_LEN;
        let payload = &file[start..start + r.clen as usize];
        at = start + r.clen as usize;
        if seen.contains(&r.method) {
            continue;
        }
        seen.push(r.method);
        let seed = format!("{name}-{:?}", r.method).to_lowercase();
        if r.method == Method::ZstdDelta {
            let (base, frame) = pack::split_delta(&r.hash, payload).expect("a real delta");
            let base = chunk_in_pack(file, &base);
            let mut s = le32(r.ulen as usize).to_vec();
            s.extend_from_slice(&le32(base.len()));
            s.extend_from_slice(&base);
            s.extend_from_slice(frame);
            add(seeds, "zstd_delta", &seed, s);
        } else {
            let mut s = vec![r.method.to_byte()];
            s.extend_from_slice(&le32(r.ulen as usize));
            s.extend_from_slice(payload);
            add(seeds, "zstd_frame", &seed, s);
        }
    }
}

/// The bytes of the chunk `hash` stored (not as a delta) in `pack`: a delta's base.
fn chunk_in_pack(pack: &[u8], hash: &[u8; 32]) -> Vec<u8> {
    let mut at = pack::HEADER_LEN;
    while let Ok(r) = RecordHeader::decode(&pack[at..]) {
        let start = at + RECORD_HEADER_LEN;
        let payload = &pack[start..start + r.clen as usize];
        if r.hash == *hash {
            let mut out = vec![0u8; r.ulen as usize];
            RuzstdDecoder::default()
                .decode(r.method, payload, &mut out)
                .expect("a base decodes");
            return out;
        }
        at = start + r.clen as usize;
    }
    panic!("the base of a delta is in the same pack");
}

/// An HTTP response as nginx 1.24 sends a static file or a part of one.
fn nginx(status: &str, headers: &[String], body: &[u8]) -> Vec<u8> {
    let mut s = format!(
        "HTTP/1.1 {status}\r\nServer: nginx/1.24.0 (Ubuntu)\r\nDate: Tue, 01 Dec 2026 07:00:00 GMT\r\n"
    );
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    let mut out = s.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The `http_response` input for a response: mode, range start and length, limit.
fn http_seed(range: Option<(u32, u16)>, max: u32, response: Vec<u8>) -> Vec<u8> {
    let (start, len) = range.unwrap_or((0, 1));
    let mut s = vec![u8::from(range.is_some())];
    s.extend_from_slice(&start.to_le_bytes());
    s.extend_from_slice(&len.to_le_bytes());
    s.extend_from_slice(&max.to_le_bytes());
    s.extend_from_slice(&response);
    s
}

fn http_seeds(seeds: &mut Seeds, manifest: &[u8], pack: &[u8]) {
    let common = [
        "Content-Type: application/octet-stream".to_string(),
        "Last-Modified: Tue, 01 Dec 2026 06:00:00 GMT".to_string(),
        "Connection: keep-alive".to_string(),
        "ETag: \"692d3b60-2ef\"".to_string(),
    ];
    let mut h = vec![format!("Content-Length: {}", manifest.len())];
    h.extend_from_slice(&common);
    h.push("Accept-Ranges: bytes".into());
    let r = nginx("200 OK", &h, manifest);
    add(
        seeds,
        "http_response",
        "200-manifest",
        http_seed(None, 1 << 20, r),
    );

    let (start, len) = (16u32, 1024u16);
    let part = &pack[start as usize..start as usize + len as usize];
    let mut h = vec![format!("Content-Length: {len}")];
    h.extend_from_slice(&common);
    h.push(format!(
        "Content-Range: bytes {start}-{}/{}",
        start + u32::from(len) - 1,
        pack.len()
    ));
    let r = nginx("206 Partial Content", &h, part);
    add(
        seeds,
        "http_response",
        "206-pack",
        http_seed(Some((start, len)), 0, r),
    );

    let moved = b"<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n<body>\r\n<center><h1>301 Moved Permanently</h1></center>\r\n<hr><center>nginx/1.24.0 (Ubuntu)</center>\r\n</body>\r\n</html>\r\n";
    let h = [
        "Content-Type: text/html".to_string(),
        format!("Content-Length: {}", moved.len()),
        "Connection: keep-alive".into(),
        "Location: http://127.0.0.1:8080/lib/games/".into(),
    ];
    let r = nginx("301 Moved Permanently", &h, moved);
    add(seeds, "http_response", "301", http_seed(None, 1 << 20, r));

    let missing = b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx/1.24.0 (Ubuntu)</center>\r\n</body>\r\n</html>\r\n";
    let h = [
        "Content-Type: text/html".to_string(),
        format!("Content-Length: {}", missing.len()),
        "Connection: close".into(),
    ];
    let r = nginx("404 Not Found", &h, missing);
    add(seeds, "http_response", "404", http_seed(None, 1 << 20, r));

    // nginx answers a dynamic or gzip-filtered body in chunks; the client refuses them.
    let h = [
        "Content-Type: application/octet-stream".to_string(),
        "Transfer-Encoding: chunked".into(),
        "Connection: keep-alive".into(),
    ];
    let r = nginx("200 OK", &h, b"10\r\n0123456789abcdef\r\n0\r\n\r\n");
    add(
        seeds,
        "http_response",
        "200-chunked",
        http_seed(None, 1 << 20, r),
    );

    let h = [format!("Content-Range: bytes */{}", pack.len())];
    let r = nginx("416 Requested Range Not Satisfiable", &h, b"");
    add(
        seeds,
        "http_response",
        "416",
        http_seed(Some((1 << 30, 16)), 0, r),
    );
}

/// A game of the DAT seeds: its name and its files (name, bytes).
type DatGameFiles = (String, Vec<(String, Vec<u8>)>);

fn dat_seeds(seeds: &mut Seeds, games: &[DatGameFiles]) {
    let hex = |b: &[u8]| {
        b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
    };
    let mut logiqx = String::from(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE datafile PUBLIC \"-//Logiqx//DTD ROM Management Datafile//EN\" \"http://www.logiqx.com/Dats/datafile.dtd\">\n<datafile>\n\t<header>\n\t\t<name>Fuzz - Seeds</name>\n\t\t<description>Fuzz - Seeds (20261201)</description>\n\t\t<version>20261201</version>\n\t\t<author>romlib</author>\n\t</header>\n",
    );
    let mut mame = String::from(
        "<?xml version=\"1.0\"?>\n<mame build=\"0.262 (mame0262)\" debug=\"no\" mameconfig=\"10\">\n",
    );
    let mut cmp = String::from(
        "clrmamepro (\n\tname \"Fuzz - Seeds\"\n\tdescription \"Fuzz - Seeds (20261201)\"\n\tversion 20261201\n)\n\n",
    );
    for (game, files) in games {
        let _ = writeln!(
            logiqx,
            "\t<game name=\"{game} (USA, Europe) (Rev 1)\">\n\t\t<description>{game} (USA, Europe) (Rev 1)</description>"
        );
        let _ = writeln!(
            mame,
            "\t<machine name=\"{game}\" sourcefile=\"fuzz.cpp\">\n\t\t<description>{game} &amp; friends</description>\n\t\t<year>1994</year>"
        );
        let _ = writeln!(
            cmp,
            "game (\n\tname \"{game} (Japan)\"\n\tdescription \"{game} (Japan)\""
        );
        for (name, data) in files {
            let h = DatHashes::of(data);
            let (crc, md5, sha1) = (format!("{:08x}", h.crc32), hex(&h.md5), hex(&h.sha1));
            let _ = writeln!(
                logiqx,
                "\t\t<rom name=\"{name}\" size=\"{}\" crc=\"{crc}\" md5=\"{md5}\" sha1=\"{sha1}\" sha256=\"{}\" status=\"verified\"/>",
                data.len(),
                hex(&h.sha256)
            );
            let _ = writeln!(
                mame,
                "\t\t<rom name=\"{name}\" size=\"{}\" crc=\"{crc}\" sha1=\"{sha1}\" region=\"maincpu\" offset=\"0\"/>",
                data.len()
            );
            let _ = writeln!(
                cmp,
                "\trom ( name \"{name}\" size {} crc {crc} md5 {md5} sha1 {sha1} )",
                data.len()
            );
        }
        logiqx.push_str("\t</game>\n");
        mame.push_str("\t\t<driver status=\"good\"/>\n\t</machine>\n");
        cmp.push_str(")\n\n");
    }
    logiqx.push_str("</datafile>\n");
    mame.push_str("</mame>\n");
    add(seeds, "dat", "logiqx.dat", logiqx.into_bytes());
    add(seeds, "dat", "mame-listxml.xml", mame.into_bytes());
    add(seeds, "dat", "clrmamepro.dat", cmp.into_bytes());
}

const SIDECAR: &str = "name = \"Alpha: Revision\"\nsystem = \"Game Boy\"\nregion = \"USA, Europe\"\nlanguages = [\"en\", \"fr\"]\nversion = \"1.1\"\ntags = [\"rpg\", \"homebrew\"]\ndescription = \"\"\"\nA short adventure.\nTwo lines.\"\"\"\n";

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::args()
        .nth(1)
        .map_or_else(|| root.join("fuzz/seeds"), PathBuf::from);
    let vectors = root.join("format-spec/vectors");
    let v1 = root.join("tests/fixtures/v1-library");
    let mut seeds = Seeds::new();

    for m in ["demo.manifest", "other.manifest"] {
        manifest_seeds(&mut seeds, m, &read(&vectors.join(m)));
    }
    for g in ["alpha", "beta"] {
        let games = v1.join("lib/games");
        let name = format!("v1-{g}.manifest");
        manifest_seeds(
            &mut seeds,
            &name,
            &read(&games.join(format!("{g}.manifest"))),
        );
        add(
            &mut seeds,
            "locator",
            &format!("v1-{g}.locator"),
            read(&games.join(format!("{g}.locator"))),
        );
    }
    pack_seeds(
        &mut seeds,
        "vector-pack-0001",
        &read(&vectors.join("pack-0001.pkg")),
    );
    pack_seeds(
        &mut seeds,
        "v1-pack-0001",
        &read(&v1.join("lib/packs/pack-0001.pkg")),
    );
    let delta = read(&vectors.join("delta-0001.bin"));
    let base = read(&vectors.join("delta-0001.base"));
    let target = read(&vectors.join("delta-0001.target"));
    let mut s = le32(target.len()).to_vec();
    s.extend_from_slice(&le32(base.len()));
    s.extend_from_slice(&base);
    s.extend_from_slice(&delta[32..]);
    add(&mut seeds, "zstd_delta", "vector-delta-0001", s);

    // A fresh library: the v1 input, plus a revision of alpha with a sidecar.
    let work = tempfile::tempdir().expect("a temporary directory");
    let input = work.path().join("in");
    let mut dat_games = Vec::new();
    for g in ["alpha", "beta"] {
        let mut files = Vec::new();
        fs::create_dir_all(input.join(g)).expect("mkdir");
        for e in fs::read_dir(v1.join("in").join(g))
            .expect("the v1 input")
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let data = read(&e.path());
            fs::write(input.join(g).join(&name), &data).expect("write");
            files.push((name, data));
        }
        files.sort();
        dat_games.push((g.to_string(), files));
    }
    let rev = input.join("alpha-rev1");
    fs::create_dir_all(&rev).expect("mkdir");
    let mut game = read(&input.join("alpha/game.bin"));
    for i in (100..game.len()).step_by(2777) {
        game[i] ^= 0x5a;
    }
    fs::write(rev.join("game.bin"), &game).expect("write");
    fs::write(rev.join("romlib.toml"), SIDECAR).expect("write");
    add(
        &mut seeds,
        "sidecar",
        "romlib.toml",
        SIDECAR.as_bytes().to_vec(),
    );
    dat_seeds(&mut seeds, &dat_games);

    let lib_dir = work.path().join("lib");
    let opts = BuildOptions {
        avg_chunk: 4096,
        threads: 1,
        signing_key: Some(test_key()),
        ..Default::default()
    };
    romlib_host::build(&input, &lib_dir, &opts, &()).expect("the seed library builds");
    let lib = Library::new(&lib_dir);
    let packs = lib.packs_dir();
    let pack_file = read(&packs.join("pack-0001.pkg"));
    pack_seeds(&mut seeds, "delta-pack-0001", &pack_file);
    let rev_manifest = read(&lib.manifest_path("alpha-rev1"));
    manifest_seeds(&mut seeds, "alpha-rev1.manifest", &rev_manifest);
    add(
        &mut seeds,
        "locator",
        "alpha-rev1.locator",
        read(&lib.locator_path("alpha-rev1")),
    );
    http_seeds(&mut seeds, &rev_manifest, &pack_file);

    let trust_file = work.path().join("test.pub");
    fs::write(
        &trust_file,
        romlib_format::keyfile::encode(
            romlib_format::keyfile::KeyKind::Public,
            &test_key().verifying_key().to_bytes(),
        ),
    )
    .expect("write");
    let trust = TrustStore::from_files(&[trust_file]).expect("the test key loads");
    let portable = work.path().join("beta-rev.romlib");
    let titles = ["alpha-rev1".to_string(), "beta".to_string()];
    romlib_host::transfer::export::export(&lib, &titles, &trust, &portable, &|_| {})
        .expect("the seed export");
    add(
        &mut seeds,
        "portable",
        "alpha-rev1-beta.romlib",
        read(&portable),
    );

    add(
        &mut seeds,
        "keyfile",
        "test-key.sec",
        read(&vectors.join("test-key.sec")),
    );
    add(
        &mut seeds,
        "keyfile",
        "v1-library.pub",
        read(&v1.join("k.pub")),
    );
    // A signed snapshot of two games, and its lines without the signature (the target signs
    // what it is given too), of a flat library (format 1) and of a sharded one (format 2).
    for games in [GamesLayout::Flat, GamesLayout::Sharded] {
        use romlib_format::snapshot::{message, Entry, Header, SignatureLine};
        let mut text = Header {
            sequence: 1_767_225_600_000,
            created: 1_767_225_600,
            expires: Some(1_767_312_000),
            valid_for: Some(86_400),
            games,
        }
        .to_string();
        for (title, revision) in [("Super Game (USA)", 1_767_225_600_000u64), ("alpha", 0)] {
            text += &Entry {
                title,
                revision,
                manifest_len: 629,
                manifest_blake3: *blake3::hash(title.as_bytes()).as_bytes(),
                locator_len: 176,
                locator_blake3: *blake3::hash(&[1]).as_bytes(),
            }
            .to_string();
        }
        let name = games.name();
        add(
            &mut seeds,
            "snapshot",
            &format!("unsigned-{name}.txt"),
            text.clone().into_bytes(),
        );
        let key = romlib_fuzz_harness::test_key();
        let msg = message(blake3::hash(text.as_bytes()).as_bytes(), text.len() as u64);
        text += &SignatureLine {
            public_key: key.verifying_key().to_bytes(),
            signature: ed25519_dalek::Signer::sign(&key, &msg).to_bytes(),
        }
        .to_string();
        add(
            &mut seeds,
            "snapshot",
            &format!("signed-{name}.txt"),
            text.into_bytes(),
        );
    }
    // A sorted run of the chunk index: chunks (some sharing a hash prefix), sketches and
    // deltas, over more than one block of each, written by the builder's own code.
    {
        use romlib_host::library::runs::{run_file_name, ChunkIndex};
        let work = tempfile::tempdir().expect("tempdir");
        let mut ix = ChunkIndex::open(work.path(), &[], true).expect("runs folder");
        for n in 0u32..300 {
            let mut h = *blake3::hash(&n.to_le_bytes()).as_bytes();
            if n % 40 == 0 {
                h[..8].copy_from_slice(&[9; 8]);
            }
            ix.insert_chunk(
                h,
                romlib_format::index::ChunkEntry {
                    pack_id: 1 + n / 100,
                    offset: u64::from(n) * 4096,
                    clen: 4000,
                    ulen: 4096,
                    method: romlib_format::pack::Method::Zstd,
                    stored_at: 1_767_225_600,
                },
            );
            ix.insert_sketch(u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15), &h)
                .expect("sketch");
            if n % 3 == 0 {
                ix.insert_delta(h, *blake3::hash(&[n as u8]).as_bytes());
            }
        }
        let ids = ix.write().expect("run").expect("a run");
        add(
            &mut seeds,
            "run",
            "300-chunks.run",
            read(&work.path().join(run_file_name(ids[0]))),
        );
    }
    for (name, text) in [
        (
            "game-file",
            "Super Game (USA)/disc 1/game.iso\0Super Game (USA)",
        ),
        ("fold", "data/Level1.DAT\0DATA/level1.dat"),
        ("unicode", "Pokémon – Édition Rouge/ｓａｖｅ.sav\0POKÉMON"),
        ("fat-unsafe", "a:b/con.txt\0 trailing. "),
    ] {
        add(&mut seeds, "path", name, text.as_bytes().to_vec());
    }

    // Parity files of a small file (one window, m = k) and of a 9 MiB one (two windows),
    // written by the builder itself.
    let work = tempfile::tempdir().expect("tempdir");
    for (name, len, percent) in [("small", 3000usize, 5u32), ("two-windows", 9 << 20, 1)] {
        let file = work.path().join(name);
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        fs::write(&file, bytes).expect("write");
        let par = work.path().join(format!("{name}.par"));
        romlib_host::parity::file::write(&file, romlib_fuzz_harness::PARITY_REL, &par, percent)
            .expect("the seed parity");
        add(&mut seeds, "parity", &format!("{name}.par"), read(&par));
    }

    let mut total = 0;
    for (target, files) in &seeds {
        let dir = out.join(target);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        for (name, bytes) in files {
            fs::write(dir.join(name), bytes).expect("write a seed");
            total += bytes.len();
        }
    }
    let missing: Vec<_> = TARGETS
        .iter()
        .filter(|(t, _)| !seeds.contains_key(t))
        .map(|(t, _)| *t)
        .collect();
    assert!(missing.is_empty(), "targets without seeds: {missing:?}");
    println!(
        "wrote {} seeds for {} targets, {total} bytes, to {}",
        seeds.values().map(BTreeMap::len).sum::<usize>(),
        seeds.len(),
        out.display()
    );
}
