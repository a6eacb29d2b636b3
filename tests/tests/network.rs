//! End-to-end tests of installing over HTTP: `romlib-device install --from URL` against
//! `romlib serve`, against nginx (Debian's package, started here on loopback with the
//! library folder as its root: no romlib code on the server), and against deliberately
//! broken servers. Every install must be byte-identical or refused with one line, with no
//! game visible and nothing written outside the install folder.

use romlib_tests::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fixture() -> Workspace {
    let w = Workspace::new();
    sample_input(&w.p("in"), 9);
    ok(w.build("in", "lib", &["--avg-chunk", "4096", "-q"]));
    w
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(lib: &str) -> (Proc, u16, BufReader<std::process::ChildStdout>) {
    let (child, port, out) = start_serve(lib);
    (Proc(child), port, out)
}

fn install(
    w: &Workspace,
    url: &str,
    game: &str,
    dir: &str,
    extra: &[&str],
) -> std::process::Output {
    let (d, k) = (w.s(dir), w.s("k.pub"));
    let mut args = vec![
        "install",
        "--from",
        url,
        "-g",
        game,
        "--install-dir",
        &d,
        "--trusted-key",
        &k,
    ];
    args.extend_from_slice(extra);
    device(&args)
}

/// The number in "downloaded N bytes".
fn downloaded(out: &str) -> u64 {
    out.split("downloaded ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no download figure in {out}"))
        .parse()
        .unwrap()
}

/// Bytes of the distinct records of `game` and of its deltas' bases (per its locator) plus
/// its manifest, its locator and the 32-byte header of each pack it needs: everything an
/// install needs to fetch.
/// Bytes of the snapshot, `game`'s manifest and its locator: what an install downloads
/// when every chunk is already on the device.
fn metadata_bytes(lib: &Path, game: &str) -> u64 {
    [
        "snapshot.txt",
        &format!("games/{game}.manifest"),
        &format!("games/{game}.locator"),
    ]
    .iter()
    .map(|f| std::fs::metadata(lib.join(f)).unwrap().len())
    .sum()
}

fn needed_bytes(lib: &Path, game: &str) -> u64 {
    use romlib_format::portable::{LocatorHeader, BASE_ENTRY_LEN, B_ENTRY, LOCATOR_ENTRY_LEN};
    let loc = std::fs::read(lib.join(format!("games/{game}.locator"))).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut packs = std::collections::HashSet::new();
    let mut total = 0;
    // The records of the game's chunks, and of the bases its delta chunks name.
    let h = LocatorHeader::decode(&loc).unwrap();
    let entries = loc[h.header_len()..h.bases_offset() as usize].chunks_exact(LOCATOR_ENTRY_LEN);
    let bases = loc[h.bases_offset() as usize..]
        .chunks_exact(BASE_ENTRY_LEN)
        .map(|b| &b[B_ENTRY..]);
    for e in entries.chain(bases) {
        let e = romlib_format::portable::LocatorEntry::decode(e).unwrap();
        if seen.insert((e.pack_id, e.offset)) {
            total += 42 + e.clen as u64;
        }
        if packs.insert(e.pack_id) {
            total += 32;
        }
    }
    let manifest = std::fs::metadata(lib.join(format!("games/{game}.manifest")))
        .unwrap()
        .len();
    // The signed snapshot, read once per command.
    let snapshot = std::fs::metadata(lib.join("snapshot.txt")).map_or(0, |m| m.len());
    total + manifest + loc.len() as u64 + snapshot
}

#[test]
fn installs_from_romlib_serve_by_host_name_fetching_only_what_it_needs() {
    let w = fixture();
    let (server, port, mut log) = serve(&w.s("lib"));
    let url = format!("http://localhost:{port}/");

    let out = ok(device(&[
        "list-games",
        "--from",
        &url,
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    for g in ["alpha\t", "alpha-v2\t", "beta\t", "3 games"] {
        assert!(out.contains(g), "{out}");
    }
    assert!(!out.contains("UNTRUSTED"), "{out}");

    let out = ok(install(&w, &url, "alpha", "inst", &[]));
    assert_same_tree(&w.p("in/alpha"), &w.p("inst/alpha"));
    let got = downloaded(&out);
    let need = needed_bytes(&w.p("lib"), "alpha");
    assert!(got <= need, "downloaded {got} bytes, the game needs {need}");
    assert!(
        !w.p("inst/.romlib-staging").exists()
            || std::fs::read_dir(w.p("inst/.romlib-staging"))
                .unwrap()
                .next()
                .is_none(),
        "scratch files left behind"
    );

    // Adjacent records come in one range request each: far fewer requests than chunks.
    let chunks = std::fs::read(w.p("lib/games/alpha.locator")).unwrap().len() / 16;
    let err = fails(
        install(&w, &url, "nope", "inst", &[]),
        1,
        &["nope.manifest", "no such game in this library"],
    );
    assert!(err.starts_with("romlib-device: http://localhost:"), "{err}");
    assert!(!w.p("inst/nope").exists());
    // Stop the server and read its access log.
    Command::new("kill")
        .args(["-INT", &server.0.id().to_string()])
        .status()
        .unwrap();
    let mut text = String::new();
    log.read_to_string(&mut text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let pack_requests = lines.iter().filter(|l| l.contains("/packs/")).count();
    assert!(
        pack_requests > 0 && pack_requests * 4 < chunks,
        "{pack_requests} requests for {chunks} chunks"
    );
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("/packs/"))
            .all(|l| l.contains("\" 206 ")),
        "{lines:?}"
    );
}

#[test]
fn installs_from_nginx_with_no_romlib_code_on_the_server() {
    let w = fixture();
    let nginx = Nginx::start(&w.p("lib"), &w.p("nginx"));
    let port = nginx.port;
    let url = format!("http://127.0.0.1:{port}");
    for g in ["beta", "alpha-v2"] {
        let out = ok(install(&w, &url, g, "inst", &[]));
        assert_same_tree(&w.p(&format!("in/{g}")), &w.p(&format!("inst/{g}")));
        assert!(downloaded(&out) <= needed_bytes(&w.p("lib"), g));
    }
    let out = ok(device(&[
        "list-games",
        "--from",
        &url,
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert!(out.contains("3 games"), "{out}");
    let access = nginx.access_log();
    assert!(
        access.contains("\"GET /packs/pack-0001.pkg HTTP/1.1\" 206"),
        "{access}"
    );
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Bad {
    /// Serves everything until this many pack requests, then drops every connection.
    DiesAfter(usize),
    NotFound,
    Status500,
    Truncated,
    WrongBytes,
    Stall,
    RedirectLoop,
    Larger,
    /// Honours the range of a pack's header, answers every other with the whole pack.
    IgnoresRange,
    /// Answers every pack range with the whole pack (`python3 -m http.server`).
    IgnoresAllRanges,
    /// Answers every request with a status line and then header lines without end.
    EndlessHeaders,
    /// Claims a body of a petabyte for every request.
    HugeLength,
    /// Sends pack ranges slowly (64 KiB per 25 ms), counting the bytes in [`SLOW_SENT`].
    Slow,
    /// Sends pack ranges one byte a second: never a stall, never an end.
    Drip,
    /// Answers a manifest with its bytes, then claims and sends 9 GB more.
    LongManifest,
    /// Answers a manifest with one byte of its body changed, claiming 9 GB.
    ForgedManifest,
}

/// Bytes past the manifest a [`Bad::LongManifest`] or [`Bad::ForgedManifest`] server
/// managed to send before the client hung up.
static MANIFEST_SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Pack bytes a [`Bad::Slow`] server sent.
static SLOW_SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A server that serves `root` correctly except for pack requests (or everything, for
/// `NotFound`, `Status500` and `RedirectLoop`), where it misbehaves as `bad` says.
fn bad_server(root: PathBuf, bad: Bad) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let n = count.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let (root, n) = (root.clone(), n.clone());
            std::thread::spawn(move || {
                let _ = bad_connection(&root, s, bad, &n);
            });
        }
    });
    (port, count)
}

fn bad_connection(root: &Path, s: TcpStream, bad: Bad, n: &AtomicUsize) -> std::io::Result<()> {
    let mut out = s.try_clone()?;
    let mut r = BufReader::new(s);
    loop {
        let mut first = String::new();
        if r.read_line(&mut first)? == 0 {
            return Ok(());
        }
        let mut range = None;
        loop {
            let mut h = String::new();
            r.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("Range: bytes=") {
                let (a, b) = v.split_once('-').unwrap();
                range = Some((a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()));
            }
        }
        let path = first.split(' ').nth(1).unwrap().to_string();
        // The signed snapshot is served as it is (and not counted): each bad answer is for
        // the files of the game.
        if path == "/snapshot.txt" {
            match std::fs::read(root.join("snapshot.txt")) {
                Ok(body) => {
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                    out.write_all(head.as_bytes())?;
                    out.write_all(&body)?;
                }
                Err(_) => out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?,
            }
            continue;
        }
        let is_pack = path.contains("/packs/");
        let seen = if is_pack {
            n.fetch_add(1, Ordering::SeqCst)
        } else {
            0
        };
        if !is_pack && !matches!(bad, Bad::DiesAfter(_)) {
            n.fetch_add(1, Ordering::SeqCst);
        }
        if let Bad::DiesAfter(k) = bad {
            if is_pack && seen >= k {
                return Ok(()); // connection dropped without an answer
            }
        }
        if matches!(bad, Bad::LongManifest | Bad::ForgedManifest) && path.ends_with(".manifest") {
            let mut m = std::fs::read(root.join(path.trim_start_matches('/'))).unwrap();
            if bad == Bad::ForgedManifest {
                m[20] ^= 1;
            }
            let claimed = m.len() as u64 + 9_000_000_000;
            write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\n\r\n")?;
            out.write_all(&m)?;
            let zeros = vec![0u8; 1 << 20];
            // Until the client hangs up (bounded: 9 GB).
            for _ in 0..9_000 {
                out.write_all(&zeros)?;
                MANIFEST_SENT.fetch_add(zeros.len() as u64, Ordering::SeqCst);
            }
            return Ok(());
        }
        match bad {
            Bad::EndlessHeaders => {
                out.write_all(b"HTTP/1.1 200 OK\r\n")?;
                let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
                // Until the client hangs up (bounded: 64 MiB).
                for _ in 0..65_536 {
                    out.write_all(line.as_bytes())?;
                }
                return Ok(());
            }
            Bad::HugeLength => {
                out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\n")?;
                out.write_all(&[0u8; 65536])?;
                return Ok(());
            }
            Bad::NotFound => {
                out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
                continue;
            }
            Bad::Status500 => {
                out.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")?;
                continue;
            }
            Bad::RedirectLoop => {
                write!(
                    out,
                    "HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\n\r\n"
                )?;
                continue;
            }
            _ => {}
        }
        let file = std::fs::read(root.join(path.trim_start_matches('/'))).unwrap_or_default();
        let (a, b) = range.unwrap_or((0, file.len() as u64 - 1));
        let mut body = file[a as usize..=b as usize].to_vec();
        let mut status = if range.is_some() { 206 } else { 200 };
        let mut crange = format!("bytes {a}-{b}/{}", file.len());
        if is_pack && range.is_some() {
            match bad {
                Bad::Stall => {
                    std::thread::sleep(Duration::from_secs(60));
                    return Ok(());
                }
                Bad::WrongBytes => {
                    for x in body.iter_mut().skip(50) {
                        *x ^= 0x5a;
                    }
                }
                Bad::Larger if a > 0 => {
                    let b2 = (b + 100).min(file.len() as u64 - 1);
                    body = file[a as usize..=b2 as usize].to_vec();
                    crange = format!("bytes {a}-{b2}/{}", file.len());
                }
                Bad::IgnoresRange if a > 0 => {
                    body = file.clone();
                    status = 200;
                }
                Bad::IgnoresAllRanges => {
                    body = file.clone();
                    status = 200;
                }
                _ => {}
            }
        }
        let reason = if status == 206 {
            "Partial Content"
        } else {
            "OK"
        };
        write!(
            out,
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n",
            body.len()
        )?;
        if status == 206 {
            write!(out, "Content-Range: {crange}\r\n")?;
        }
        out.write_all(b"\r\n")?;
        if bad == Bad::Truncated && is_pack && range.is_some() && body.len() > 100 {
            out.write_all(&body[..body.len() / 2])?;
            out.flush()?;
            return Ok(()); // connection closed mid-body
        }
        if bad == Bad::Drip && is_pack && range.is_some() {
            for b in &body {
                out.write_all(std::slice::from_ref(b))?;
                out.flush()?;
                std::thread::sleep(Duration::from_secs(1));
            }
            continue;
        }
        if bad == Bad::Slow && is_pack && range.is_some() {
            for piece in body.chunks(64 << 10) {
                out.write_all(piece)?;
                out.flush()?;
                SLOW_SENT.fetch_add(piece.len() as u64, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(25));
            }
            continue;
        }
        out.write_all(&body)?;
    }
}

#[test]
fn a_bad_server_fails_the_install_cleanly_with_one_line() {
    let w = fixture();
    for (bad, needles) in [
        (Bad::NotFound, &["alpha.manifest", "HTTP 404"][..]),
        (
            Bad::Status500,
            &["alpha.manifest", "HTTP 500", "after 3 attempts"][..],
        ),
        (
            Bad::Truncated,
            &["pack-0001.pkg", "cut short", "after 3 attempts"][..],
        ),
        (Bad::WrongBytes, &["pack-0001.pkg", "chunk"][..]),
        (Bad::Stall, &["pack-0001.pkg", "stalled"][..]),
        (Bad::RedirectLoop, &["alpha.manifest", "redirect"][..]),
        (Bad::Larger, &["pack-0001.pkg", "Content-Range"][..]),
        (
            Bad::EndlessHeaders,
            &["alpha.manifest", "head too long"][..],
        ),
        (Bad::HugeLength, &["alpha.manifest", "1000000000000000"][..]),
    ] {
        let (port, requests) = bad_server(w.p("lib"), bad);
        let dir = format!("inst-{bad:?}");
        let url = format!("http://127.0.0.1:{port}/");
        let started = Instant::now();
        let out = install(&w, &url, "alpha", &dir, &["--timeout", "1"]);
        let err = fails(out, 1, needles);
        assert!(!err.contains("panicked"), "{bad:?}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{bad:?} took {:?}",
            started.elapsed()
        );
        assert!(
            !w.p(&format!("{dir}/alpha")).exists(),
            "{bad:?}: a game is visible"
        );
        // Nothing in the install folder but what a later attempt resumes from (hidden).
        let left: Vec<_> = walk(&w.p(&dir))
            .into_iter()
            .filter(|p| !p.to_string_lossy().contains("/.romlib-resume/"))
            .collect();
        assert!(left.is_empty(), "{bad:?}: left behind {left:?}");
        if bad == Bad::Status500 {
            assert_eq!(requests.load(Ordering::SeqCst), 3, "retries are bounded");
        }
        if bad == Bad::RedirectLoop {
            assert_eq!(requests.load(Ordering::SeqCst), 6, "1 + 5 redirects");
        }
    }
    // Nothing was written next to the install folders.
    let mut names: Vec<String> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("inst-"))
        .collect();
    names.sort();
    assert_eq!(names, ["in", "k.pub", "k.sec", "lib"]);
}

/// A server that honours the range of a pack's header but answers the record ranges with
/// the whole pack (half-supported ranges): the device reads the pack as a stream instead,
/// A manifest answer is checked as it arrives: a forged one ends at its signature block,
/// and a genuine one followed by 9 GB of more bytes ends at its signed length; either way
/// at most a few KiB reach the card.
#[test]
fn a_manifest_answer_is_cut_at_its_signed_length() {
    let w = fixture();
    // Without a snapshot (a library written before them) the signed length is learnt from
    // the manifest's own header; with one, before the download, and a longer answer is
    // refused before a byte of it is written.
    std::fs::create_dir_all(w.p("nosnap")).unwrap();
    copy_tree(&w.p("lib"), &w.p("nosnap"));
    std::fs::remove_file(w.p("nosnap/snapshot.txt")).unwrap();
    for (bad, lib, code, needle) in [
        (
            Bad::LongManifest,
            "nosnap",
            "damaged",
            "longer than the manifest's signed",
        ),
        (Bad::LongManifest, "lib", "mismatch", "larger than the 9543"),
        (Bad::ForgedManifest, "nosnap", "untrusted", "alpha.manifest"),
        (Bad::ForgedManifest, "lib", "mismatch", "signed snapshot"),
    ] {
        let (port, _) = bad_server(w.p(lib), bad);
        let url = format!("http://127.0.0.1:{port}/");
        let dir = format!("inst-{bad:?}-{lib}");
        let started = Instant::now();
        let out = install(&w, &url, "alpha", &dir, &["--json"]);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["code"], code, "{bad:?}: {v}");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{bad:?}: {msg}");
        assert!(started.elapsed() < Duration::from_secs(20), "{bad:?}");
        // The client hung up at once: what the server got out beyond the manifest is what
        // the sockets' buffers hold, not gigabytes.
        std::thread::sleep(Duration::from_millis(500));
        let sent = MANIFEST_SENT.swap(0, Ordering::SeqCst);
        assert!(
            sent < 64 << 20,
            "{bad:?}: the server sent {sent} bytes more"
        );
    }
}

/// A server that sends a byte a second, each in time for the stall timeout, is given up
/// for sending under `--min-rate` (after its 20 s of grace, not retried), with one line and
/// code `network`; the download so far is kept for a later attempt.
#[test]
fn a_server_dripping_bytes_is_given_up_under_the_minimum_rate() {
    let w = fixture();
    let (port, requests) = bad_server(w.p("lib"), Bad::Drip);
    let url = format!("http://127.0.0.1:{port}/");
    let started = Instant::now();
    let out = install(&w, &url, "alpha", "inst", &["--json"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "network", "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("pack-0001.pkg")
            && msg.contains("under the minimum of 4096")
            && msg.contains("--min-rate"),
        "{msg}"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    // The manifest, the locator and the one pack request: no retry of a dripping server.
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    assert!(!w.p("inst/alpha").exists());
}

/// installs byte-identically, and says once how many bytes that cost.
#[test]
fn a_server_that_ignores_some_ranges_is_read_as_a_stream() {
    let w = fixture();
    let (port, _) = bad_server(w.p("lib"), Bad::IgnoresRange);
    let url = format!("http://127.0.0.1:{port}/");
    let out = install(&w, &url, "alpha", "inst", &["--timeout", "5"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert_same_tree(&w.p("in/alpha"), &w.p("inst/alpha"));
    assert_eq!(err.matches("ignores byte ranges").count(), 1, "{err}");
    assert!(
        err.contains("bytes downloaded beyond the records needed"),
        "{err}"
    );
    // JSON progress: the warning is a JSON line too.
    let out = install(&w, &url, "beta", "inst", &["--progress", "json"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    let warn = err
        .lines()
        .find(|l| l.contains("ignores byte ranges"))
        .unwrap_or_else(|| panic!("no warning in {err}"));
    assert!(
        warn.starts_with('{') && warn.contains("\"warning\""),
        "{warn}"
    );
    assert_same_tree(&w.p("in/beta"), &w.p("inst/beta"));
}

/// From a server that ignores byte ranges, a game whose records lie out of order in the
/// pack (the chunks it shares with another game, in reverse order, between its own) is
/// read in one forward pass: the pack once, at most, and not a stream reopened for each
/// record behind the ones read. The scratch copy leaves nothing behind.
#[test]
fn a_server_without_ranges_is_read_in_one_forward_pass() {
    let w = Workspace::new();
    let mut rng = Rng::new(32);
    let blocks: Vec<Vec<u8>> = (0..8).map(|_| rng.bytes(192 << 10)).collect();
    write(&w.p("in"), "a-first/data.bin", &blocks.concat());
    let mut b = Vec::new();
    for blk in blocks.iter().rev() {
        b.extend_from_slice(blk);
        b.extend_from_slice(&rng.bytes(64 << 10));
    }
    write(&w.p("in"), "b-second/data.bin", &b);
    let (url, pack) = library_without_ranges(&w);
    let v = install_in_one_pass(&w, &url, "b-second", pack);
    // What the pass read beyond the records is said: the other game's records it crossed.
    let extra = v["bytes_extra_without_ranges"].as_u64().unwrap();
    assert!(extra > 0 && extra < pack, "{v}");
    // Nothing but the game and its marker in the install folder: no scratch copy left.
    assert_eq!(
        files_below(&w.p("inst")),
        ["b-second/.romlib-installed", "b-second/data.bin"]
    );
}

#[test]
fn an_upgrade_from_a_server_without_ranges_reads_what_it_lacks_in_one_pass() {
    // The device has `a-old`; `c-new` interleaves its blocks with new ones, which an
    // earlier game stored in reverse order: read in table order without the pass, every new
    // record lies behind the one before and costs another pass over the pack.
    let w = Workspace::new();
    let mut rng = Rng::new(33);
    let old: Vec<Vec<u8>> = (0..8).map(|_| rng.bytes(128 << 10)).collect();
    let new: Vec<Vec<u8>> = (0..8).map(|_| rng.bytes(128 << 10)).collect();
    write(&w.p("in"), "a-old/data.bin", &old.concat());
    let reversed: Vec<u8> = new.iter().rev().flatten().copied().collect();
    write(&w.p("in"), "b-other/data.bin", &reversed);
    let mixed: Vec<u8> = old
        .iter()
        .zip(&new)
        .flat_map(|(a, b)| [a, b])
        .flatten()
        .copied()
        .collect();
    write(&w.p("in"), "c-new/data.bin", &mixed);
    let (url, pack) = library_without_ranges(&w);
    ok(install(&w, &url, "a-old", "inst", &[]));
    // The old blocks came from the device, the new ones in one pass.
    let v = install_in_one_pass(&w, &url, "c-new", pack);
    assert!(
        v["reused_bytes"].as_u64().unwrap() >= 7 * (128 << 10),
        "{v}"
    );
    assert_eq!(
        files_below(&w.p("inst")),
        [
            "a-old/.romlib-installed",
            "a-old/data.bin",
            "c-new/.romlib-installed",
            "c-new/data.bin"
        ]
    );
}

/// Builds `in` into `lib` (one pack) and serves it from a server that ignores every range:
/// its URL and the pack's length.
fn library_without_ranges(w: &Workspace) -> (String, u64) {
    ok(w.build("in", "lib", &["--avg-chunk", "16384", "-q"]));
    let pack = std::fs::metadata(w.p("lib/packs/pack-0001.pkg"))
        .unwrap()
        .len();
    let (port, _) = bad_server(w.p("lib"), Bad::IgnoresAllRanges);
    (format!("http://127.0.0.1:{port}/"), pack)
}

/// Installs `game` from `url` into `inst`, exactly, downloading at most the pack of
/// `pack` bytes once (the pass starts at its first byte, as the server sends it) besides
/// the game's metadata; returns the JSON result.
fn install_in_one_pass(w: &Workspace, url: &str, game: &str, pack: u64) -> serde_json::Value {
    let out = install(w, url, game, "inst", &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_same_tree(&w.p(&format!("in/{game}")), &w.p(&format!("inst/{game}")));
    let got = v["bytes_downloaded"].as_u64().unwrap();
    let meta = metadata_bytes(&w.p("lib"), game);
    assert!(
        got <= pack + meta,
        "downloaded {got} bytes for a pack of {pack}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

/// The paths of every file below `dir`, relative to it, sorted.
fn files_below(dir: &Path) -> Vec<String> {
    let mut left: Vec<_> = walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect();
    left.sort();
    left
}

/// Every file below `dir` (folders themselves are not listed).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn reads_past_unused_bytes_never_wrong_ones() {
    // A game installed over HTTP matches a local install exactly, file by file.
    let w = fixture();
    let (_server, port, _log) = serve(&w.s("lib"));
    ok(install(
        &w,
        &format!("http://127.0.0.1:{port}"),
        "alpha-v2",
        "net",
        &[],
    ));
    ok(device(&[
        "install",
        "-r",
        &w.s("lib"),
        "-g",
        "alpha-v2",
        "--install-dir",
        &w.s("local"),
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert!(snapshot(&w.p("net/alpha-v2")) == snapshot(&w.p("local/alpha-v2")));
    let mut buf = Vec::new();
    std::fs::File::open(w.p("net/alpha-v2/game.bin"))
        .unwrap()
        .read_to_end(&mut buf)
        .unwrap();
    assert_eq!(buf, std::fs::read(w.p("in/alpha-v2/game.bin")).unwrap());
}

#[test]
fn upgrades_reuse_the_installed_version_and_a_cut_install_resumes() {
    let w = fixture();
    let (_server, port, _log) = serve(&w.s("lib"));
    let url = format!("http://127.0.0.1:{port}/");

    // An upgrade: alpha-v2 differs from alpha in 100 bytes of one file.
    let first = ok(install(&w, &url, "alpha", "inst", &[]));
    let out = ok(install(&w, &url, "alpha-v2", "inst", &[]));
    assert_same_tree(&w.p("in/alpha-v2"), &w.p("inst/alpha-v2"));
    let (got, need) = (downloaded(&out), needed_bytes(&w.p("lib"), "alpha-v2"));
    assert!(
        got * 4 < need,
        "upgrade downloaded {got} of {need} bytes: {out}"
    );
    assert!(
        out.contains("reused from this device") && !out.contains(" 0 chunks (0 bytes) reused"),
        "{out}"
    );
    assert!(downloaded(&first) * 4 > need, "{first}");
    // A reinstall of an installed game fetches almost nothing.
    let out = ok(install(&w, &url, "alpha", "inst", &[]));
    assert!(downloaded(&out) * 4 < need, "{out}");

    // A cut install: the connection drops after the first range of records.
    let (bad_port, _) = bad_server(w.p("lib"), Bad::DiesAfter(2)); // the pack header, one span
    let bad_url = format!("http://127.0.0.1:{bad_port}/");
    let out = install(&w, &bad_url, "alpha", "fresh", &["--timeout", "1"]);
    fails(out, 1, &["pack-0001.pkg"]);
    assert!(!w.p("fresh/alpha").exists());
    assert!(w.p("fresh/.romlib-resume/alpha.manifest").is_file());
    // The next attempt fetches only what the first did not get, then cleans up.
    let out = ok(install(&w, &url, "alpha", "fresh", &[]));
    assert_same_tree(&w.p("in/alpha"), &w.p("fresh/alpha"));
    let need = needed_bytes(&w.p("lib"), "alpha");
    assert!(
        downloaded(&out) < need,
        "resumed install downloaded {} of {need}: {out}",
        downloaded(&out)
    );
    assert!(!out.contains(" 0 chunks (0 bytes) reused"), "{out}");
    assert!(!w.p("fresh/.romlib-resume").exists());
    // Uninstalling forgets the manifest copy too.
    ok(device(&[
        "uninstall",
        "-t",
        "alpha",
        "--install-dir",
        &w.s("fresh"),
    ]));
    assert!(!w.p("fresh/.romlib-manifests/alpha.manifest").exists());
}

#[test]
fn a_library_on_the_device_is_reused_instead_of_downloaded() {
    let w = fixture();
    let (_server, port, _log) = serve(&w.s("lib"));
    let url = format!("http://127.0.0.1:{port}/");
    // The device holds a library built from the alphas only.
    std::fs::create_dir_all(w.p("alphas")).unwrap();
    for g in ["alpha", "alpha-v2"] {
        copy_tree(&w.p(&format!("in/{g}")), &w.p(&format!("alphas/{g}")));
    }
    ok(w.build("alphas", "local", &["--avg-chunk", "4096", "-q"]));
    let out = ok(install(
        &w,
        &url,
        "alpha-v2",
        "inst",
        &["--reuse", &w.s("local")],
    ));
    assert_same_tree(&w.p("in/alpha-v2"), &w.p("inst/alpha-v2"));
    // Only the snapshot, the manifest and the locator came over the network.
    let meta = metadata_bytes(&w.p("lib"), "alpha-v2");
    assert_eq!(downloaded(&out), meta, "{out}");
    // A damaged local library is not trusted: the damaged chunks are downloaded instead.
    let pack = w.p("local/packs/pack-0001.pkg");
    let len = std::fs::metadata(&pack).unwrap().len();
    for k in 1..8 {
        flip(&pack, len * k / 8);
    }
    let out = ok(install(
        &w,
        &url,
        "alpha",
        "inst2",
        &["--reuse", &w.s("local")],
    ));
    assert_same_tree(&w.p("in/alpha"), &w.p("inst2/alpha"));
    assert!(downloaded(&out) > meta, "{out}");
}

/// The index of what the device holds covers a window of the new game's chunks at a time
/// (bounded memory whatever the chunk count): with windows of a few chunks, so that the
/// games here span dozens of them, an upgrade and a reinstall still take every chunk they
/// can from the installed version and from a library on the device, and download the same
/// bytes as with one window.
#[test]
fn reuse_works_window_by_window() {
    let w = fixture();
    let (_server, port, _log) = serve(&w.s("lib"));
    let url = format!("http://127.0.0.1:{port}/");
    let windowed = |game: &str, dir: &str, window: &str, extra: &[&str]| {
        let (d, k) = (w.s(dir), w.s("k.pub"));
        let mut c = device_cmd();
        c.env("ROMLIB_REUSE_WINDOW", window).args([
            "install",
            "--from",
            &url,
            "-g",
            game,
            "--install-dir",
            &d,
            "--trusted-key",
            &k,
        ]);
        c.args(extra);
        let out = ok(c.output().unwrap());
        assert_same_tree(&w.p(&format!("in/{game}")), &w.p(&format!("{dir}/{game}")));
        downloaded(&out)
    };
    let chunks = |game: &str| {
        romlib_device::ManifestFile::open(&w.p(&format!("lib/games/{game}.manifest")))
            .unwrap()
            .unverified_body()
            .chunk_count
    };
    assert!(chunks("alpha-v2") > 50, "the game spans many windows");
    for window in ["1000000", "7", "1"] {
        let dir = format!("inst-{window}");
        windowed("alpha", &dir, window, &[]);
        let upgrade = windowed("alpha-v2", &dir, window, &[]);
        let reinstall = windowed("alpha-v2", &dir, window, &[]);
        assert!(
            upgrade * 4 < needed_bytes(&w.p("lib"), "alpha-v2"),
            "window {window}: upgrade downloaded {upgrade}"
        );
        // Everything was on the device: only the snapshot, manifest and locator came.
        assert_eq!(
            reinstall,
            metadata_bytes(&w.p("lib"), "alpha-v2"),
            "window {window}"
        );
    }
    // A library on the device, window by window.
    std::fs::create_dir_all(w.p("alphas")).unwrap();
    for g in ["alpha", "alpha-v2"] {
        copy_tree(&w.p(&format!("in/{g}")), &w.p(&format!("alphas/{g}")));
    }
    ok(w.build("alphas", "local", &["--avg-chunk", "4096", "-q"]));
    let reuse = w.s("local");
    let got = windowed("alpha-v2", "from-lib", "5", &["--reuse", &reuse]);
    assert_eq!(got, metadata_bytes(&w.p("lib"), "alpha-v2"));
}

/// Waits until `dir` holds at least `bytes` in files (the install is under way).
fn wait_for_bytes(dir: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while snapshot(dir)
        .iter()
        .map(|(_, b)| b.len() as u64)
        .sum::<u64>()
        < bytes
    {
        assert!(
            Instant::now() < deadline,
            "nothing written under {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn sigterm_keeps_the_download_and_a_second_install_waits_for_the_first() {
    // A 12 MiB game (12 requests of 1 MiB spans) and a small one.
    let w = Workspace::new();
    let mut r = Rng::new(77);
    write(&w.p("in"), "big/big.bin", &r.bytes(12 << 20));
    write(&w.p("in"), "small/small.bin", &r.bytes(100_000));
    ok(w.build("in", "lib", &["-q"]));
    let (slow_port, _) = bad_server(w.p("lib"), Bad::Slow);
    let slow = format!("http://127.0.0.1:{slow_port}/");
    let device_bin = bin("romlib-device");
    let start = |game: &str, dir: &str, extra: &[&str]| {
        Command::new(&device_bin)
            .args(["install", "--from", &slow, "-g", game, "--install-dir"])
            .arg(w.p(dir))
            .arg("--trusted-key")
            .arg(w.p("k.pub"))
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // SIGTERM halfway: exit 143, a JSON error `cancelled`, nothing installed, the download
    // kept.
    let need = needed_bytes(&w.p("lib"), "big");
    SLOW_SENT.store(0, Ordering::SeqCst);
    let child = start("big", "inst", &["--json"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while SLOW_SENT.load(Ordering::SeqCst) < need / 2 {
        assert!(Instant::now() < deadline, "the install downloads nothing");
        std::thread::sleep(Duration::from_millis(10));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(143), "{stdout}");
    assert!(
        stdout.contains("\"code\":\"cancelled\"") && stdout.contains("SIGTERM"),
        "{stdout}"
    );
    assert!(!w.p("inst/big").exists());
    assert!(w.p("inst/.romlib-resume/big.manifest").is_file());
    let first = SLOW_SENT.swap(0, Ordering::SeqCst);
    assert!(first < need, "cancelled after {first} of {need} bytes");
    // The next install resumes: both attempts together download at most 25% more than one.
    let (_server, port, _log) = serve(&w.s("lib"));
    let fast = format!("http://127.0.0.1:{port}/");
    let out = ok(install(&w, &fast, "big", "inst", &[]));
    assert_same_tree(&w.p("in/big"), &w.p("inst/big"));
    let second = downloaded(&out);
    eprintln!("cancel at half, then resume: {first} + {second} bytes for {need}");
    assert!(
        (first + second) * 4 <= need * 5,
        "cancel then resume downloaded {first} + {second} for {need}"
    );

    // Two installs in one folder: the second refuses with --no-wait, else waits, and both
    // games end up installed (neither takes the other's staging for a crash's).
    let a = start("big", "two", &[]);
    wait_for_bytes(&w.p("two/.romlib-staging"), 1 << 20);
    let out = install(&w, &fast, "small", "two", &["--no-wait", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("\"code\":\"locked\""), "{text}");
    let waited = install(&w, &fast, "small", "two", &[]);
    let err = String::from_utf8_lossy(&waited.stderr).into_owned();
    ok(waited);
    assert!(err.contains("waiting for it"), "{err}");
    let a = a.wait_with_output().unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_same_tree(&w.p("in/big"), &w.p("two/big"));
    assert_same_tree(&w.p("in/small"), &w.p("two/small"));
}
