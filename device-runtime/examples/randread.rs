//! Benchmark helper for `bench/read.sh`: random reads the way an emulator reads sectors.
//! Makes N reads of BLOCK bytes at pseudo-random BLOCK-aligned offsets across one file (the
//! same offsets for the same N, BLOCK and file size), times each read on its own, and
//! prints one line: `reads=N block=B open_ms=.. p50_us=.. p99_us=.. mean_us=.. max_us=..
//! check=..` (`check` is a checksum of every byte read, to compare the read paths).
//!
//! ```text
//! randread N BLOCK api LIB TRUSTED_KEY TITLE PATH   # Game::read_at, opened as `cat` opens it
//! randread N BLOCK file PATH                        # pread on a plain (or mounted) file
//! ```

use romlib_device::chunks::decoder::RuzstdDecoder;
use romlib_device::play::read::Game;
use romlib_device::trusted::trust::DEFAULT_TRUST_DIR;
use romlib_device::{Library, TrustStore};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn usage() -> ! {
    eprintln!(
        "usage: randread N BLOCK api LIB TRUSTED_KEY TITLE PATH\n       randread N BLOCK file PATH"
    );
    std::process::exit(2);
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("randread: {what}: {e}");
    std::process::exit(1);
}

/// Reads exactly `buf.len()` bytes at the given offset, or exits.
type ReadFn = Box<dyn FnMut(u64, &mut [u8])>;

/// xorshift64*: deterministic, the same sequence in every mode.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        usage();
    }
    let n: usize = args[0].parse().unwrap_or_else(|_| usage());
    let block: usize = args[1].parse().unwrap_or_else(|_| usage());
    if n == 0 || block == 0 {
        usage();
    }
    let opened = Instant::now();
    // One read function per mode; `size` is the file's size.
    let (size, mut read): (u64, ReadFn) = match (&args[2][..], &args[3..]) {
        ("api", [lib, key, title, path]) => {
            let lib = Library::open(Path::new(lib)).unwrap_or_else(|e| fail("open", e));
            let trust = TrustStore::load(&[PathBuf::from(key)], Path::new(DEFAULT_TRUST_DIR))
                .unwrap_or_else(|e| fail("trust", e));
            let game = Game::open(&lib, title, &trust, RuzstdDecoder::default())
                .unwrap_or_else(|e| fail("open", e));
            let id = game.find(path).unwrap_or_else(|e| fail("find", e));
            let size = game.file(id).map_or(0, |f| f.size);
            let read = move |at: u64, buf: &mut [u8]| {
                let got = game
                    .read_at(id, at, buf)
                    .unwrap_or_else(|e| fail("read", e));
                if got != buf.len() {
                    fail("read", format!("short read at {at}"));
                }
            };
            (size, Box::new(read))
        }
        ("file", [path]) => {
            let f = std::fs::File::open(path).unwrap_or_else(|e| fail(path, e));
            let size = f.metadata().unwrap_or_else(|e| fail(path, e)).len();
            let read = move |at: u64, buf: &mut [u8]| {
                f.read_exact_at(buf, at)
                    .unwrap_or_else(|e| fail("pread", e));
            };
            (size, Box::new(read))
        }
        _ => usage(),
    };
    let open_ms = opened.elapsed().as_secs_f64() * 1e3;
    let blocks = size / block as u64;
    if blocks == 0 {
        fail("file", "smaller than one block");
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; block];
    let mut ns = Vec::with_capacity(n);
    let mut check = 0xcbf2_9ce4_8422_2325u64;
    for _ in 0..n {
        let at = (rng.next() % blocks) * block as u64;
        let t = Instant::now();
        read(at, &mut buf);
        ns.push(t.elapsed().as_nanos() as u64);
        // Outside the timed part: fold every byte read into the checksum.
        for w in buf.chunks(8) {
            let mut x = [0u8; 8];
            x[..w.len()].copy_from_slice(w);
            check = (check ^ u64::from_le_bytes(x)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let mean = ns.iter().sum::<u64>() as f64 / n as f64;
    ns.sort_unstable();
    // Nearest rank: the smallest value with at least p% of the reads at or below it.
    let pct = |p: usize| ns[(n * p).div_ceil(100).max(1) - 1] as f64 / 1e3;
    println!(
        "reads={n} block={block} open_ms={open_ms:.1} p50_us={:.1} p99_us={:.1} mean_us={:.1} max_us={:.1} check={check:016x}",
        pct(50),
        pct(99),
        mean / 1e3,
        ns[n - 1] as f64 / 1e3
    );
}
