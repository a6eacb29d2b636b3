//! Installing from the servers users actually have: nginx over HTTPS with a private
//! certificate authority (made here with openssl), an http -> https redirect,
//! `python3 -m http.server` (no byte ranges), and an S3-compatible server (moto's server
//! mode, installed with pip when missing) after `romlib publish`. Every install must be
//! byte-identical, or refused with one line naming the host or URL, with nothing visible.
//! Bad certificates (expired, for another host, from an unknown authority), redirect loops,
//! redirects to other schemes and down from https to http, and a bucket that lacks a pack
//! are refused in bounded time.

use romlib_tests::*;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn fixture() -> Workspace {
    let w = Workspace::new();
    sample_input(&w.p("in"), 21);
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

/// The servers of these tests take ports that [`free_port`] found free a moment before:
/// the tests of this file run one at a time, or two could be handed the same port (an
/// install meant for the wrong-certificate server then reached another test's good one).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16, what: &str, log: &dyn Fn() -> String) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not start: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// Asserts that the install failed with exit 1, with `code` in its JSON error and `needles`
/// in the message, within `limit`, and left no game behind.
fn refused(w: &Workspace, url: &str, dir: &str, extra: &[&str], code: &str, needles: &[&str]) {
    let started = Instant::now();
    let mut args = extra.to_vec();
    args.push("--json");
    let out = install(w, url, "alpha", dir, &args);
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{url}: {stdout}");
    assert!(
        stdout.contains(&format!("\"code\":\"{code}\"")),
        "{url}: wanted code {code}: {stdout}"
    );
    for n in needles {
        assert!(stdout.contains(n), "{url}: wanted {n:?} in {stdout}");
    }
    assert!(!stdout.contains("panicked"), "{stdout}");
    assert!(elapsed < Duration::from_secs(30), "{url} took {elapsed:?}");
    assert!(
        !w.p(&format!("{dir}/alpha")).exists(),
        "{url}: a game is visible"
    );
}

/// Certificates made with openssl in `dir`: `ca.pem` (a private RSA authority) and, each
/// with its `.key`, `good.pem` (localhost and 127.0.0.1), `wrong.pem` (another host name
/// only) and `expired.pem` (valid in 2020 only), all signed by it; `other-ca.pem` is an
/// authority that signed none of them.
fn make_certs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let script = r#"set -e
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj /CN=romlib-test-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 30 -subj /CN=romlib-other-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
for n in good wrong expired; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key -out $n.csr -subj /CN=$n
done
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > good.ext
printf 'subjectAltName=DNS:other.example\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > wrong.ext
openssl x509 -req -in good.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out good.pem -days 30 -extfile good.ext
openssl x509 -req -in wrong.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out wrong.pem -days 30 -extfile wrong.ext
mkdir -p db && : > db/index.txt && echo 1000 > db/serial
printf '[ca]\ndefault_ca=d\n[d]\ndatabase=db/index.txt\nnew_certs_dir=db\nserial=db/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' > ca.cnf
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
  -startdate 20200101000000Z -enddate 20201231000000Z -extfile good.ext -notext
"#;
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .expect("openssl is needed (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts nginx with `servers` (server blocks) in its http block; returns it.
fn nginx(prefix: &Path, servers: &str, ports: &[u16]) -> Proc {
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    std::fs::create_dir_all(prefix.join("tmp")).unwrap();
    let conf = format!(
        "worker_processes 1;\nerror_log {p}/logs/error.log;\npid {p}/nginx.pid;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log {p}/logs/access.log;\n  client_body_temp_path {p}/tmp;\n  proxy_temp_path {p}/tmp;\n  fastcgi_temp_path {p}/tmp;\n  uwsgi_temp_path {p}/tmp;\n  scgi_temp_path {p}/tmp;\n  log_format port '$server_port $request $status';\n{servers}\n}}\n",
        p = prefix.display(),
    );
    std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
    let bin = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|n| {
            Command::new(n)
                .arg("-v")
                .stderr(Stdio::null())
                .status()
                .is_ok()
        })
        .expect("nginx is not installed (.ci/run installs Debian's nginx)");
    let p = Proc(
        Command::new(bin)
            .args(["-p", &prefix.to_string_lossy(), "-c"])
            .arg(prefix.join("nginx.conf"))
            .args(["-g", "daemon off; master_process off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default();
    for &port in ports {
        wait_for(port, "nginx", &log);
    }
    p
}

/// nginx over HTTPS with a private authority: installs byte-identically with `--ca-file`,
/// and refuses (code `tls`, naming the host, nothing installed) without it, with a
/// certificate for another host, with an expired one, and with another authority's.
/// An http -> https redirect is followed once and the https URL reused; a redirect down
/// from https to http, to another scheme, or in a loop is refused.
#[test]
fn installs_over_https_with_a_private_ca_and_refuses_bad_certificates() {
    let _serial = serial();
    let w = fixture();
    let certs = w.p("certs");
    make_certs(&certs);
    // Five distinct ports: each is held until all are found (one free port handed out
    // twice would put two servers on it, and nginx would answer with the first one's
    // certificate).
    let held = [(); 5].map(|_| TcpListener::bind("127.0.0.1:0").unwrap());
    let [good, wrong, expired, plain, downgrade] =
        [0, 1, 2, 3, 4].map(|i| held[i].local_addr().unwrap().port());
    drop(held);
    let root = w.p("lib");
    let tls = |port: u16, cert: &str, extra: &str| {
        format!(
            "  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {c}/{cert}.pem;\n    ssl_certificate_key {c}/{cert}.key;\n    root {root};\n    access_log {p}/logs/{port}.log port;\n{extra}  }}\n",
            c = certs.display(),
            root = root.display(),
            p = w.p("nginx").display(),
        )
    };
    let servers = [
        tls(good, "good", "    location = /loop/catalog.txt { return 302 /loop/catalog.txt; }\n    location /ftp/ { return 302 ftp://127.0.0.1/x; }\n"),
        tls(wrong, "wrong", ""),
        tls(expired, "expired", ""),
        tls(
            downgrade,
            "good",
            &format!("    location / {{ return 301 http://127.0.0.1:{plain}$request_uri; }}\n"),
        ),
        format!(
            "  server {{\n    listen 127.0.0.1:{plain};\n    access_log {p}/logs/{plain}.log port;\n    location / {{ return 301 https://localhost:{good}$request_uri; }}\n  }}\n",
            p = w.p("nginx").display()
        ),
    ]
    .concat();
    let _nginx = nginx(
        &w.p("nginx"),
        &servers,
        &[good, wrong, expired, plain, downgrade],
    );
    let ca = w.s("certs/ca.pem");
    let ca_args = ["--ca-file", ca.as_str()];

    // A private authority, by IP address and by host name.
    for (url, dir) in [
        (format!("https://127.0.0.1:{good}/"), "inst-ip"),
        (format!("https://localhost:{good}"), "inst-name"),
    ] {
        let out = ok(install(&w, &url, "alpha", dir, &ca_args));
        assert!(out.contains("downloaded"), "{out}");
        assert_same_tree(&w.p("in/alpha"), &w.p(&format!("{dir}/alpha")));
    }
    let list = ok(device(&[
        "list-games",
        "--from",
        &format!("https://localhost:{good}/"),
        "--ca-file",
        &ca,
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert!(list.contains("alpha"), "{list}");

    // Through an http -> https redirect: one redirect, then the https URL for everything.
    let out = ok(install(
        &w,
        &format!("http://127.0.0.1:{plain}/"),
        "beta",
        "inst-redir",
        &ca_args,
    ));
    assert_same_tree(&w.p("in/beta"), &w.p("inst-redir/beta"));
    let plain_log = std::fs::read_to_string(w.p(&format!("nginx/logs/{plain}.log"))).unwrap();
    assert_eq!(
        plain_log.lines().count(),
        1,
        "redirected once, then reused: {plain_log}\n{out}"
    );

    // Refused: no private authority, the wrong host, expired, another authority.
    let other = w.s("certs/other-ca.pem");
    for (url, extra, needles, dir) in [
        (
            format!("https://127.0.0.1:{good}/"),
            vec![],
            vec!["127.0.0.1", "certificate"],
            "bad-noca",
        ),
        (
            format!("https://localhost:{wrong}/"),
            ca_args.to_vec(),
            vec!["localhost", "not valid for name", "other.example"],
            "bad-wrong",
        ),
        (
            format!("https://localhost:{expired}/"),
            ca_args.to_vec(),
            vec!["localhost", "xpired"],
            "bad-expired",
        ),
        (
            format!("https://localhost:{good}/"),
            vec!["--ca-file", other.as_str()],
            vec!["localhost", "UnknownIssuer"],
            "bad-other",
        ),
    ] {
        refused(&w, &url, dir, &extra, "tls", &needles);
    }
    // Never down from https to http, never to another scheme, never in circles.
    refused(
        &w,
        &format!("https://localhost:{downgrade}/"),
        "bad-down",
        &ca_args,
        "network",
        &["refused", "http://127.0.0.1"],
    );
    refused(
        &w,
        &format!("https://localhost:{good}/ftp/"),
        "bad-ftp",
        &ca_args,
        "network",
        &["ftp://", "not an http"],
    );
    let out = device(&[
        "list-games",
        "--from",
        &format!("https://localhost:{good}/loop/"),
        "--ca-file",
        &ca,
        "--trusted-key",
        &w.s("k.pub"),
    ]);
    fails(out, 1, &["redirect loop"]);
    // A --ca-file that is not a certificate file.
    refused(
        &w,
        &format!("https://localhost:{good}/"),
        "bad-cafile",
        &["--ca-file", &w.s("k.pub")],
        "tls",
        &["k.pub"],
    );
    let names: Vec<_> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("bad-"))
        .collect();
    for n in names {
        let left: Vec<_> = std::fs::read_dir(w.p(&n))
            .map(|d| {
                d.map(|e| e.unwrap().file_name())
                    .filter(|f| !f.to_string_lossy().starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "{n}: {left:?}");
    }
}

/// `python3 -m http.server` answers every range request with the whole file: the device
/// reads each pack as a stream, keeps only the records it needs, installs byte-identically
/// and warns once, stating the extra bytes.
#[test]
fn installs_from_python_http_server_without_ranges() {
    let _serial = serial();
    let w = fixture();
    let port = free_port();
    let _server = Proc(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(w.p("lib"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed"),
    );
    wait_for(port, "python3 -m http.server", &String::new);
    let url = format!("http://127.0.0.1:{port}/");
    for (g, dir) in [("alpha", "inst"), ("beta", "inst"), ("alpha-v2", "inst2")] {
        let out = install(&w, &url, g, dir, &[]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let text = ok(out);
        assert_same_tree(&w.p(&format!("in/{g}")), &w.p(&format!("{dir}/{g}")));
        assert_eq!(err.matches("ignores byte ranges").count(), 1, "{g}: {err}");
        let extra: u64 = err
            .split("from their start: ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no figure in {err}"));
        let pack_bytes: u64 = std::fs::read_dir(w.p("lib/packs"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        // Each pack is read forward once at most, into a scratch copy (a revision's
        // records lie both among and after those of the first version: read as streams,
        // that cost another pass over the pack).
        assert!(extra <= pack_bytes, "{g}: {extra} > {pack_bytes}; {text}");
    }
    let out = ok(device(&[
        "list-games",
        "--from",
        &url,
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert!(out.contains("alpha"), "{out}");
}

/// moto's S3 server on a free port: its process and endpoint.
fn moto(w: &Workspace) -> (Proc, String) {
    let have = Command::new("python3")
        .args(["-c", "import moto.server, flask, werkzeug"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        let st = Command::new("python3")
            .args(["-m", "pip", "install", "-q", "moto[server]>=5,<6"])
            .status()
            .expect("python3 -m pip");
        assert!(st.success(), "pip install moto[server] failed");
    }
    let port = free_port();
    let log = w.p("moto.log");
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let p = Proc(child);
    wait_for(port, "moto_server", &|| {
        std::fs::read_to_string(&log).unwrap_or_default()
    });
    (p, format!("http://127.0.0.1:{port}"))
}

fn publish(w: &Workspace, endpoint: &str, target: &str, extra: &[&str]) -> std::process::Output {
    linux_host_cmd()
        .args([
            "publish",
            "-r",
            &w.s("lib"),
            target,
            "--endpoint",
            endpoint,
            "--public",
        ])
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap()
}

fn field(json: &str, name: &str) -> u64 {
    json.split(&format!("\"{name}\":"))
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {json}"))
}

/// `romlib publish` to moto's S3 server, then a device installs from the bucket's HTTP
/// endpoint byte-identically; a second publish uploads nothing; a bucket that lacks a pack
/// fails the install cleanly (not_found, nothing visible), and publishing again (what a
/// cut-off publish does) puts back exactly what is missing.
#[test]
fn publishes_to_s3_and_installs_from_the_bucket() {
    let _serial = serial();
    let w = fixture();
    let (_moto, endpoint) = moto(&w);
    let out = publish(&w, &endpoint, "s3://games/lib/v1", &[]);
    fails(out, 1, &["bucket", "--create-bucket"]);
    let out = ok(publish(
        &w,
        &endpoint,
        "s3://games/lib/v1",
        &["--create-bucket", "--json"],
    ));
    let files = field(&out, "uploaded");
    assert!(files > 5, "{out}");
    assert_eq!(field(&out, "unchanged"), 0, "{out}");
    let url = format!("{endpoint}/games/lib/v1/");
    for g in ["alpha", "beta"] {
        ok(install(&w, &url, g, "inst", &[]));
        assert_same_tree(&w.p(&format!("in/{g}")), &w.p(&format!("inst/{g}")));
    }
    let list = ok(device(&[
        "list-games",
        "--from",
        &url,
        "--trusted-key",
        &w.s("k.pub"),
    ]));
    assert!(list.contains("3 games"), "{list}");
    // Incremental: nothing changed, nothing uploaded.
    let again = ok(publish(&w, &endpoint, "s3://games/lib/v1", &["--json"]));
    assert_eq!(
        (field(&again, "uploaded"), field(&again, "unchanged")),
        (0, files),
        "{again}"
    );

    // A bucket that lacks a pack: the install fails with one line, nothing visible.
    let mut bucket = romlib_host::transfer::s3::Bucket::new(
        &endpoint,
        "games",
        "us-east-1",
        romlib_host::transfer::s3::Credentials {
            access_key: "testing".into(),
            secret_key: "testing".into(),
            session_token: None,
        },
        Duration::from_secs(10),
        None,
    )
    .unwrap();
    bucket.delete("lib/v1/packs/pack-0001.pkg").unwrap();
    bucket.delete("lib/v1/games/alpha-v2.manifest").unwrap();
    let started = Instant::now();
    let out = install(&w, &url, "alpha", "inst-missing", &["--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("\"code\":\"not_found\"") && stdout.contains("pack-0001.pkg"),
        "{stdout}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!w.p("inst-missing/alpha").exists());
    // Publishing again uploads exactly the two missing objects.
    let resumed = ok(publish(&w, &endpoint, "s3://games/lib/v1", &["--json"]));
    assert_eq!(
        (field(&resumed, "uploaded"), field(&resumed, "unchanged")),
        (2, files - 2),
        "{resumed}"
    );
    ok(install(&w, &url, "alpha-v2", "inst-missing", &[]));
    assert_same_tree(&w.p("in/alpha-v2"), &w.p("inst-missing/alpha-v2"));

    // A game removed and the library pruned: publishing again deletes, once the new state
    // is up, the removed game's files and the packs the prune deleted, and nothing of a
    // kind it does not publish (here a note someone put beside the packs).
    let note = w.p("note.txt");
    std::fs::write(&note, b"not romlib's").unwrap();
    {
        use md5::Digest;
        let body = std::fs::read(&note).unwrap();
        let (sha, md5) = (sha2::Sha256::digest(&body), md5::Md5::digest(&body));
        let mut f = std::fs::File::open(&note).unwrap();
        bucket
            .put_file(
                "lib/v1/packs/notes.txt",
                &mut f,
                body.len() as u64,
                sha.into(),
                md5.into(),
            )
            .unwrap();
    }
    let sk = w.s("k.sec");
    ok(romlib(&[
        "remove",
        "-r",
        &w.s("lib"),
        "-g",
        "beta",
        "--signing-key",
        &sk,
        "-q",
    ]));
    let pruned = ok(romlib(&[
        "prune",
        "-r",
        &w.s("lib"),
        "--signing-key",
        &sk,
        "--max-unused",
        "0",
        "--json",
    ]));
    assert!(!pruned.contains("\"packs_rewritten\":[]"), "{pruned}");
    let listed = |b: &mut romlib_host::transfer::s3::Bucket| -> Vec<String> {
        b.list("lib/v1/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    let before = listed(&mut bucket);
    assert!(
        before.iter().any(|k| k == "lib/v1/packs/pack-0001.pkg"),
        "{before:?}"
    );
    let out = ok(publish(&w, &endpoint, "s3://games/lib/v1", &["--json"]));
    // beta's manifest and locator, and the pack the prune replaced.
    assert_eq!(field(&out, "deleted"), 3, "{out}");
    let after = listed(&mut bucket);
    for gone in [
        "lib/v1/games/beta.manifest",
        "lib/v1/games/beta.locator",
        "lib/v1/packs/pack-0001.pkg",
    ] {
        assert!(!after.iter().any(|k| k == gone), "{gone}: {after:?}");
    }
    assert!(
        after.iter().any(|k| k == "lib/v1/packs/notes.txt"),
        "{after:?}"
    );
    let mut local: Vec<String> = romlib_host::transfer::publish::plan(&w.p("lib"))
        .unwrap()
        .into_iter()
        .map(|r| format!("lib/v1/{r}"))
        .collect();
    local.push("lib/v1/packs/notes.txt".into());
    local.sort();
    assert_eq!(after, local);
    for g in ["alpha", "alpha-v2"] {
        ok(install(&w, &url, g, "inst-pruned", &[]));
        assert_same_tree(&w.p(&format!("in/{g}")), &w.p(&format!("inst-pruned/{g}")));
    }
    // Nothing more to do the next time.
    let again = ok(publish(&w, &endpoint, "s3://games/lib/v1", &["--json"]));
    assert_eq!(
        (field(&again, "uploaded"), field(&again, "deleted")),
        (0, 0),
        "{again}"
    );

    // Wrong credentials are not an endpoint problem: moto accepts any key, so check the
    // missing-credentials path instead.
    let out = linux_host_cmd()
        .args([
            "publish",
            "-r",
            &w.s("lib"),
            "s3://games/x",
            "--endpoint",
            &endpoint,
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    fails(out, 2, &["AWS_ACCESS_KEY_ID"]);
}
