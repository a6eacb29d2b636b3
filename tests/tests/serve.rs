//! End-to-end tests of `romlib serve`: the real binary on loopback, spoken to with raw
//! HTTP/1.1 over TCP (no client library that could paper over protocol mistakes).

use romlib_tests::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

struct Served {
    child: Child,
    port: u16,
    out: BufReader<std::process::ChildStdout>,
}

impl Served {
    fn start(lib: &str) -> Self {
        let (child, port, out) = start_serve(lib);
        Served { child, port, out }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Sends SIGINT and waits for exit 0; returns the rest of stdout (the access log).
    fn stop(mut self) -> String {
        let st = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "serve did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(0));
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        rest
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One response: status, headers (lower-case names), body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read_response(r: &mut BufReader<TcpStream>, head_only: bool) -> Response {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':').unwrap();
        headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    let mut body = vec![0u8; if head_only { 0 } else { len }];
    r.read_exact(&mut body).unwrap();
    Response {
        status,
        headers,
        body,
    }
}

fn get(s: &Served, path: &str, extra: &str) -> Response {
    let mut c = s.connect();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut BufReader::new(c), false)
}

#[test]
fn serves_files_and_ranges_and_nothing_else() {
    let w = Workspace::new();
    sample_input(&w.p("in"), 3);
    ok(w.build("in", "lib", &["-q"]));
    let s = Served::start(&w.s("lib"));
    let pack = std::fs::read(w.p("lib/packs/pack-0001.pkg")).unwrap();
    let manifest = std::fs::read(w.p("lib/games/beta.manifest")).unwrap();

    let r = get(&s, "/games/beta.manifest", "");
    assert_eq!((r.status, r.body == manifest), (200, true));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(get(&s, "/games/beta.locator", "").status == 200);
    let r = get(&s, "/packs/pack-0001.pkg", "Range: bytes=100-4195\r\n");
    assert_eq!(r.status, 206);
    assert!(r.body == pack[100..4196]);
    let total = pack.len();
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 100-4195/{total}").as_str())
    );
    let r = get(&s, "/packs/pack-0001.pkg", "Range: bytes=-64\r\n");
    assert!(r.status == 206 && r.body == pack[total - 64..]);
    let r = get(
        &s,
        "/packs/pack-0001.pkg",
        &format!("Range: bytes={}-\r\n", total - 10),
    );
    assert!(r.status == 206 && r.body == pack[total - 10..]);
    let r = get(
        &s,
        "/packs/pack-0001.pkg",
        &format!("Range: bytes={total}-\r\n"),
    );
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{total}").as_str())
    );
    // Several ranges: the whole file (never a multipart body).
    let r = get(&s, "/packs/pack-0001.pkg", "Range: bytes=0-1,10-11\r\n");
    assert!(r.status == 200 && r.body == pack);

    // Outside the library, hidden, the index, folders, nonsense: 404 / 400 / 405.
    std::fs::write(w.p("secret.txt"), b"no").unwrap();
    std::os::unix::fs::symlink(w.p("secret.txt"), w.p("lib/games/link.manifest")).unwrap();
    for p in [
        "/../secret.txt",
        "/games/../../secret.txt",
        "/games/%2e%2e/%2e%2e/secret.txt",
        "/games/link.manifest",
        "/.romlib.lock",
        "/index.db",
        "/games",
        "/games/",
        "/nope",
    ] {
        assert_eq!(get(&s, p, "").status, 404, "{p}");
    }
    let mut c = s.connect();
    c.write_all(b"DELETE /games/beta.manifest HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut BufReader::new(c), false).status, 405);
    let mut c = s.connect();
    c.write_all(b"garbage\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut BufReader::new(c), false).status, 400);

    // HEAD, and several requests on one kept-alive connection.
    let mut c = s.connect();
    write!(
        c,
        "HEAD /games/beta.manifest HTTP/1.1\r\nHost: x\r\n\r\nGET /packs/pack-0001.pkg HTTP/1.1\r\nHost: x\r\nRange: bytes=0-31\r\n\r\nGET /games/beta.manifest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(c);
    let h = read_response(&mut r, true);
    assert_eq!(h.status, 200);
    assert_eq!(
        h.header("content-length"),
        Some(manifest.len().to_string().as_str())
    );
    let p = read_response(&mut r, false);
    assert!(p.status == 206 && p.body == pack[..32]);
    assert!(read_response(&mut r, false).body == manifest);

    // Many clients at once.
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let port = s.port;
            let want = pack.clone();
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let (a, b) = (i * 1000, i * 1000 + 60_000);
                write!(
                    c,
                    "GET /packs/pack-0001.pkg HTTP/1.1\r\nRange: bytes={a}-{b}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let r = read_response(&mut BufReader::new(c), false);
                assert!(r.status == 206 && r.body == want[a..=b]);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    let log = s.stop();
    assert!(
        log.contains("\"GET /games/beta.manifest HTTP/1.1\" 200"),
        "{log}"
    );
    assert!(log.contains("\"GET /index.db HTTP/1.1\" 404 0"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn refuses_a_folder_that_is_not_a_library_and_a_bad_address() {
    let w = Workspace::new();
    std::fs::create_dir(w.p("empty")).unwrap();
    fails(
        romlib(&["serve", "-r", &w.s("empty"), "--listen", "127.0.0.1:0"]),
        1,
        &["empty", "not a romlib library"],
    );
    sample_input(&w.p("in"), 3);
    ok(w.build("in", "lib", &["-q"]));
    fails(
        romlib(&["serve", "-r", &w.s("lib"), "--listen", "999.1.1.1:80"]),
        2,
        &["999.1.1.1:80"],
    );
}
