//! End-to-end tests of verified in-place reads: `cat` on both binaries, and the read API
//! (`romlib_device::read`) on a library the real builder made, with chunks small enough
//! (`--avg-chunk 4096`) that a 5 MiB file spans about twenty seek-index groups.

use romlib_device::chunks::decoder::{ChunkDecoder, RuzstdDecoder};
use romlib_device::play::read::{FileReader, Game, GROUP};
use romlib_device::{Error, Library, ManifestFile, TrustStore};
use romlib_format::index::ChunkEntry;
use romlib_format::manifest::{ManifestHeader, CHUNK_RECORD_LEN};
use romlib_format::pack::RECORD_HEADER_LEN;
use romlib_host::zstd_decoder::ZstdDecoder;
use romlib_tests::*;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::process::Output;
use std::sync::Arc;

const TITLE: &str = "game";

/// One chunk of a file: its offset in the file, its length and its record.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    /// Position in the game's chunk table.
    index: u64,
    /// Offset inside its file.
    offset: u64,
    len: u64,
    hash: [u8; 32],
}

struct Fixture {
    w: Workspace,
    files: Vec<(String, Vec<u8>)>,
}

impl Fixture {
    fn new() -> Self {
        let w = Workspace::new();
        let mut r = Rng::new(8);
        let files = vec![
            ("disc.iso".to_string(), r.bytes(5 << 20)),
            ("data/level.txt".to_string(), r.text(600_000)),
            ("data/empty.cfg".to_string(), Vec::new()),
            ("tiny.bin".to_string(), r.bytes(100)),
        ];
        for (p, d) in &files {
            write(&w.p(&format!("in/{TITLE}")), p, d);
        }
        ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
        Fixture { w, files }
    }

    fn data(&self, path: &str) -> &[u8] {
        &self.files.iter().find(|(p, _)| p == path).unwrap().1
    }

    fn lib(&self) -> Library {
        Library::new(self.w.p("lib"))
    }

    fn trust(&self) -> TrustStore {
        TrustStore::from_files(&[self.w.p("k.pub")]).unwrap()
    }

    fn game<D: ChunkDecoder + Send>(&self, decoder: D) -> Game<D> {
        Game::open(&self.lib(), TITLE, &self.trust(), decoder).unwrap()
    }

    /// `romlib-device cat` with the workspace key and `extra` arguments.
    fn device_cat(&self, extra: &[&str]) -> Output {
        let (lib, key) = (self.w.s("lib"), self.w.s("k.pub"));
        let mut args = vec!["cat", "-g", TITLE, "-r", &lib, "--trusted-key", &key];
        args.extend_from_slice(extra);
        device(&args)
    }

    /// `romlib cat`, trusting the library's own keys.
    fn host_cat(&self, extra: &[&str]) -> Output {
        let lib = self.w.s("lib");
        let mut args = vec!["cat", "-g", TITLE, "-r", &lib];
        args.extend_from_slice(extra);
        romlib(&args)
    }

    /// The chunks of `path`, from the manifest's chunk table.
    fn chunks(&self, path: &str) -> Vec<Chunk> {
        let m = ManifestFile::open(&self.lib().manifest_path(TITLE)).unwrap();
        let mut table = m.unverified_chunks().unwrap();
        let mut index = 0;
        let mut out = Vec::new();
        for f in &m.unverified_body().files {
            let mut offset = 0;
            for _ in 0..f.chunk_count {
                let c = table.next_chunk().unwrap().unwrap();
                if f.path == path {
                    out.push(Chunk {
                        index,
                        offset,
                        len: c.len as u64,
                        hash: c.hash,
                    });
                }
                offset += c.len as u64;
                index += 1;
            }
        }
        out
    }

    fn entry(&self, hash: &[u8; 32]) -> ChunkEntry {
        romlib_host::library::runs::open_library(&self.w.p("lib"))
            .unwrap()
            .get(hash)
            .unwrap()
            .unwrap()
    }
}

/// Asserts a successful `cat` whose stdout is exactly `want`.
fn same(out: Output, want: &[u8], what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), want.len(), "{what}: length");
    assert!(out.stdout == want, "{what}: bytes differ");
}

fn slice(data: &[u8], offset: u64, length: u64) -> &[u8] {
    let lo = (offset as usize).min(data.len());
    let hi = offset.saturating_add(length).min(data.len() as u64) as usize;
    &data[lo..hi.max(lo)]
}

#[test]
fn cat_writes_whole_files_on_both_binaries() {
    let f = Fixture::new();
    assert!(
        f.chunks("disc.iso").len() > 10 * GROUP,
        "groups are exercised"
    );
    for (path, data) in &f.files {
        same(f.device_cat(&[path]), data, &format!("device {path}"));
        same(f.host_cat(&[path]), data, &format!("host {path}"));
    }
    // A game named by its manifest file works too.
    let manifest = f.w.s(&format!("lib/games/{TITLE}.manifest"));
    let lib = f.w.s("lib");
    same(
        romlib(&["cat", "-g", &manifest, "-r", &lib, "tiny.bin"]),
        f.data("tiny.bin"),
        "host by manifest path",
    );
}

#[test]
fn cat_ranges_match_the_source_at_chunk_and_group_edges() {
    let f = Fixture::new();
    let data = f.data("disc.iso");
    let chunks = f.chunks("disc.iso");
    let size = data.len() as u64;
    let mut cases: Vec<(u64, Option<u64>)> = vec![
        (0, Some(1)),
        (0, None),
        (size - 1, None),
        (size - 1, Some(10)),
        (size, None),
        (size, Some(5)),
        (size - 5000, Some(1 << 30)),
    ];
    // Around the first, a middle and the last group edge, and a plain chunk edge.
    for k in [1, GROUP, 5 * GROUP, (chunks.len() - 1) / GROUP * GROUP, 7] {
        let at = chunks[k].offset;
        for (off, len) in [(at - 1, 2), (at, 1), (at, chunks[k].len), (at + 1, 9000)] {
            cases.push((off, Some(len)));
        }
        // Exactly one whole group, and across it.
        cases.push((
            at,
            Some(chunks[k..].iter().take(GROUP).map(|c| c.len).sum()),
        ));
    }
    let mut r = Rng::new(3);
    for _ in 0..6 {
        cases.push((r.next_u64() % size, Some(r.next_u64() % 300_000)));
    }
    for (i, (off, len)) in cases.iter().enumerate() {
        let (o, l) = (off.to_string(), len.map(|l| l.to_string()));
        let mut args = vec!["disc.iso", "--offset", &o];
        if let Some(l) = &l {
            args.extend(["--length", l]);
        }
        let want = slice(data, *off, len.unwrap_or(u64::MAX));
        same(f.device_cat(&args), want, &format!("device {off}+{len:?}"));
        // The host binary on a sample of them (it runs the same library code).
        if i % 4 == 0 {
            same(f.host_cat(&args), want, &format!("host {off}+{len:?}"));
        }
    }
}

#[test]
fn cat_refuses_bad_requests_with_one_line() {
    let f = Fixture::new();
    let lib = f.w.s("lib");
    let key = f.w.s("k.pub");
    let nope = device(&[
        "cat",
        "-g",
        "nope",
        "-r",
        &lib,
        "--trusted-key",
        &key,
        "tiny.bin",
    ]);
    fails(nope, 1, &["nope.manifest", "no such game"]);
    fails(
        romlib(&["cat", "-g", "nope", "-r", &lib, "tiny.bin"]),
        1,
        &["nope.manifest", "no such game"],
    );
    for out in [f.device_cat(&["missing.bin"]), f.host_cat(&["missing.bin"])] {
        fails(out, 1, &["game/missing.bin", "no such file in this game"]);
    }
    // Paths are exact: no case folding, no leading slash.
    fails(f.device_cat(&["TINY.BIN"]), 1, &["no such file"]);
    fails(f.device_cat(&["/tiny.bin"]), 1, &["no such file"]);
    for out in [
        f.device_cat(&["tiny.bin", "--offset", "101"]),
        f.host_cat(&["tiny.bin", "--offset", "101"]),
    ] {
        let err = fails(out, 1, &["game/tiny.bin", "offset 101", "beyond the end"]);
        assert!(err.contains("(100 bytes)"), "{err}");
    }
    fails(
        f.device_cat(&["data/empty.cfg", "--offset", "1"]),
        1,
        &["beyond the end"],
    );
    // Usage errors exit 2.
    assert_eq!(f.device_cat(&[]).status.code(), Some(2));
    assert_eq!(
        f.device_cat(&["tiny.bin", "--offset", "-1"]).status.code(),
        Some(2)
    );
}

/// Reads `path` at an offset into a buffer, returning the count.
type ReadFn = Arc<dyn Fn(&str, u64, &mut [u8]) -> usize + Send + Sync>;

/// A read function over one shared game where each call has its own reader and position.
fn via_readers<D: ChunkDecoder + Send + 'static>(g: Game<D>) -> ReadFn {
    let g = Arc::new(g);
    Arc::new(move |path, off, buf| {
        let id = g.find(path).unwrap();
        let mut r = FileReader::new(Arc::clone(&g), id).unwrap();
        r.seek(SeekFrom::Start(off)).unwrap();
        let mut n = 0;
        // `read` may return less than asked; fill the buffer like an emulator would.
        loop {
            let got = r.read(&mut buf[n..]).unwrap();
            if got == 0 {
                break n;
            }
            n += got;
        }
    })
}

#[test]
fn read_api_lists_files_and_serves_many_threads() {
    let f = Fixture::new();
    for decoder in ["ruzstd", "C zstd"] {
        // The device's decoder and the host's plug-in behave the same.
        let check = |game: ReadFn| {
            std::thread::scope(|s| {
                for t in 0..4u64 {
                    let (f, game) = (&f, Arc::clone(&game));
                    s.spawn(move || {
                        let mut r = Rng::new(100 + t);
                        for _ in 0..150 {
                            let (path, data) = &f.files[(r.next_u64() % 4) as usize];
                            let off = r.next_u64() % (data.len() as u64 + 50);
                            let mut buf = vec![0u8; (r.next_u64() % 20_000) as usize];
                            let n = game(path, off, &mut buf);
                            let want = slice(data, off, buf.len() as u64);
                            assert!(&buf[..n] == want, "{decoder}: {path} at {off}");
                        }
                    });
                }
            });
        };
        if decoder == "ruzstd" {
            let g = f.game(RuzstdDecoder::default());
            let listed: Vec<(&str, u64, u32)> =
                g.files().map(|x| (x.path, x.size, x.mode)).collect();
            for (path, data) in &f.files {
                let mode = {
                    use std::os::unix::fs::PermissionsExt;
                    let p = f.w.p(&format!("in/{TITLE}/{path}"));
                    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
                };
                assert!(
                    listed.contains(&(path.as_str(), data.len() as u64, mode)),
                    "{path}: {listed:?}"
                );
            }
            assert_eq!(listed.len(), f.files.len());
            check(via_readers(g));
        } else {
            check(via_readers(f.game(ZstdDecoder::default())));
        }
    }
    // Whole files through `Read`, and `read_at` without a reader.
    let g = f.game(ZstdDecoder::default());
    for (path, data) in &f.files {
        let mut all = Vec::new();
        g.open_file(path).unwrap().read_to_end(&mut all).unwrap();
        assert!(all == *data, "{path}");
        let mut buf = vec![0u8; data.len() + 10];
        assert_eq!(
            g.read_at(g.find(path).unwrap(), 0, &mut buf).unwrap(),
            data.len()
        );
        assert!(buf[..data.len()] == data[..]);
    }
}

#[test]
fn seeks_and_reads_past_the_end() {
    let f = Fixture::new();
    let g = f.game(RuzstdDecoder::default());
    let data = f.data("disc.iso");
    let mut r = g.open_file("disc.iso").unwrap();
    let mut buf = [0u8; 16];
    let size = data.len() as u64;
    assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), size);
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    assert_eq!(r.seek(SeekFrom::End(1 << 40)).unwrap(), size + (1 << 40));
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    let e = r.seek(SeekFrom::End(-(size as i64) - 1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    r.seek(SeekFrom::End(-4)).unwrap();
    assert_eq!(r.read(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], &data[data.len() - 4..]);
    r.seek(SeekFrom::Start(1000)).unwrap();
    r.seek(SeekFrom::Current(-10)).unwrap();
    r.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, &data[990..1006]);
    assert_eq!(
        r.seek(SeekFrom::Current(-2000)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(r.stream_position().unwrap(), 1006);
}

#[test]
fn a_flipped_pack_byte_fails_only_the_reads_of_its_chunk() {
    let f = Fixture::new();
    let data = f.data("disc.iso");
    let chunks = f.chunks("disc.iso");
    // A chunk in the second group; random data is stored raw, so the flip decodes fine and
    // only the BLAKE3 check can catch it.
    let bad = chunks[GROUP + 3];
    let e = f.entry(&bad.hash);
    let pack = f.lib().pack_path(e.pack_id);
    flip(&pack, e.offset + RECORD_HEADER_LEN as u64 + bad.len / 2);
    let pack_name = pack.file_name().unwrap().to_string_lossy().into_owned();

    // The API: an InvalidData error naming the pack; nothing else is affected.
    let g = f.game(RuzstdDecoder::default());
    let mut r = g.open_file("disc.iso").unwrap();
    r.seek(SeekFrom::Start(bad.offset + 1)).unwrap();
    let mut buf = [0u8; 100];
    let err = r.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    let msg = err.to_string();
    assert!(msg.contains(&pack_name), "{msg}");
    assert!(msg.contains("does not match the signed hash"), "{msg}");
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert!(matches!(inner, Some(Error::Chunk { .. })), "{inner:?}");
    for c in [chunks[0], chunks[GROUP + 2], chunks[GROUP + 4], chunks[200]] {
        let mut buf = vec![0u8; c.len as usize];
        r.seek(SeekFrom::Start(c.offset)).unwrap();
        r.read_exact(&mut buf).unwrap();
        assert!(buf == data[c.offset as usize..(c.offset + c.len) as usize]);
    }
    // A read spanning into the bad chunk fails rather than stopping short with wrong data.
    let mut span = vec![0u8; chunks[GROUP + 2].len as usize + 10];
    let before = chunks[GROUP + 2].offset;
    assert!(g
        .read_at(g.find("disc.iso").unwrap(), before, &mut span)
        .is_err());

    // `cat` on both binaries: exit 1, one line naming the pack, and only correct bytes out.
    for out in [f.device_cat(&["disc.iso"]), f.host_cat(&["disc.iso"])] {
        let stdout = out.stdout.clone();
        fails(
            out,
            1,
            &[&pack_name, "does not match the signed hash", "corrupt pack"],
        );
        assert!(stdout.len() as u64 <= bad.offset, "{}", stdout.len());
        assert!(stdout == data[..stdout.len()], "wrong bytes written");
    }
    // Ranges that avoid the chunk still read.
    let (o, l) = ((bad.offset + bad.len).to_string(), (300_000u64).to_string());
    same(
        f.device_cat(&["disc.iso", "--offset", &o, "--length", &l]),
        slice(data, bad.offset + bad.len, 300_000),
        "after the bad chunk",
    );
    same(
        f.device_cat(&["tiny.bin"]),
        f.data("tiny.bin"),
        "other file",
    );
}

#[test]
fn an_untrusted_key_is_refused_before_anything_is_read() {
    let f = Fixture::new();
    ok(romlib(&[
        "keygen",
        "--secret-key",
        &f.w.s("other.sec"),
        "--public-key",
        &f.w.s("other.pub"),
    ]));
    // Without packs or index, the only thing there is to refuse is the signature.
    std::fs::rename(f.w.p("lib/packs"), f.w.p("packs.away")).unwrap();
    std::fs::rename(f.w.p("lib/index.db"), f.w.p("index.away")).unwrap();
    let (lib, other) = (f.w.s("lib"), f.w.s("other.pub"));
    for out in [
        device(&[
            "cat",
            "-g",
            TITLE,
            "-r",
            &lib,
            "--trusted-key",
            &other,
            "tiny.bin",
        ]),
        romlib(&[
            "cat",
            "-g",
            TITLE,
            "-r",
            &lib,
            "--trusted-key",
            &other,
            "tiny.bin",
        ]),
    ] {
        assert!(out.stdout.is_empty());
        fails(out, 1, &["game.manifest", "not in the trust store"]);
    }
    let trust = TrustStore::from_files(&[f.w.p("other.pub")]).unwrap();
    let e = Game::open(&f.lib(), TITLE, &trust, RuzstdDecoder::default()).unwrap_err();
    assert!(matches!(e, Error::Untrusted { .. }), "{e}");
}

#[test]
fn a_chunk_table_tampered_after_open_is_detected() {
    let f = Fixture::new();
    let data = f.data("disc.iso");
    let chunks = f.chunks("disc.iso");
    let g = f.game(RuzstdDecoder::default());
    let id = g.find("disc.iso").unwrap();
    // Swap two records of group 5 in place: both still name real chunks in the index,
    // so without the group check a read would return the right bytes in the wrong place.
    let (a, b) = (chunks[5 * GROUP + 1], chunks[5 * GROUP + 2]);
    let mpath = f.lib().manifest_path(TITLE);
    let mut m = std::fs::read(&mpath).unwrap();
    let table = ManifestHeader::decode(&m).unwrap().chunk_table_offset() as usize;
    let (ra, rb) = (
        table + a.index as usize * CHUNK_RECORD_LEN,
        table + b.index as usize * CHUNK_RECORD_LEN,
    );
    let rec_a = m[ra..ra + CHUNK_RECORD_LEN].to_vec();
    m.copy_within(rb..rb + CHUNK_RECORD_LEN, ra);
    m[rb..rb + CHUNK_RECORD_LEN].copy_from_slice(&rec_a);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&mpath)
        .unwrap()
        .write_all(&m)
        .unwrap();
    let mut buf = vec![0u8; 64];
    let e = g.read_at(id, a.offset, &mut buf).unwrap_err();
    assert!(
        e.to_string()
            .contains("changed since the manifest was verified"),
        "{e}"
    );
    // Other groups are untouched and still read.
    let n = g.read_at(id, chunks[GROUP].offset, &mut buf).unwrap();
    assert!(buf[..n] == data[chunks[GROUP].offset as usize..][..n]);
    // A new open checks the whole table against the signature and refuses it.
    fails(f.device_cat(&["disc.iso"]), 1, &["tampered"]);
}
