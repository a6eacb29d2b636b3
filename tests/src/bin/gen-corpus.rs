//! Generates a deterministic benchmark corpus of about SIZE MiB with realistic sharing:
//! a disc image and two revisions of it (scattered edits and an insertion that shifts
//! everything after it), several games that embed the same engine block, incompressible
//! media, and compressible data.
//!
//! `gen-corpus SIZE_MIB OUT_DIR`, or `gen-corpus --single SIZE_MIB OUT_DIR` for one game
//! (`game/disc.iso`, half text-like and half random in 1 MiB stripes).

use romlib_tests::Rng;
use std::io::Write;
use std::path::Path;

fn put(root: &Path, rel: &str, parts: &[&[u8]]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    for part in parts {
        f.write_all(part).unwrap();
    }
}

/// Half text-like, half random, in 1 MiB stripes (like a disc of code, assets and video).
fn mixed(r: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let k = (1 << 20).min(n - v.len());
        if (v.len() >> 20).is_multiple_of(2) {
            v.extend_from_slice(&r.text(k));
        } else {
            v.extend_from_slice(&r.bytes(k));
        }
    }
    v
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let single = args.get(1).is_some_and(|a| a == "--single");
    if single {
        args.remove(1);
    }
    if args.len() != 3 {
        eprintln!("usage: gen-corpus SIZE_MIB OUT_DIR");
        std::process::exit(2);
    }
    let mib: usize = args[1].parse().expect("SIZE_MIB");
    let out = Path::new(&args[2]);
    let total = mib << 20;
    let mut r = Rng::new(2026);
    if single {
        let p = out.join("game/disc.iso");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
        let mut left = total;
        while left > 0 {
            let k = (16 << 20).min(left);
            f.write_all(&mixed(&mut r, k)).unwrap();
            left -= k;
        }
        return;
    }
    // 1. A disc image (25%) and two revisions of it (50%): mostly shared content.
    let disc_len = total / 4;
    let disc = mixed(&mut r, disc_len);
    put(out, "disc-game-v1/disc.iso", &[&disc]);
    let mut rev = disc.clone();
    for _ in 0..32 {
        let at = (r.next_u64() as usize) % (disc_len - 4096);
        rev[at..at + 4096].copy_from_slice(&r.bytes(4096));
    }
    put(out, "disc-game-v2/disc.iso", &[&rev]);
    let cut = disc_len / 3;
    let inserted = r.bytes(100_000);
    put(
        out,
        "disc-game-v3/disc.iso",
        &[&rev[..cut], &inserted, &rev[cut..]],
    );
    drop((disc, rev));
    // 2. Games sharing an engine block (20%): 8 games, each engine + own data.
    let engine = mixed(&mut r, total / 40);
    for g in 0..8 {
        let own = mixed(&mut r, total / 40 - total / 80);
        put(out, &format!("engine-game-{g}/engine.bin"), &[&engine]);
        put(out, &format!("engine-game-{g}/data.pak"), &[&own]);
    }
    // 3. Incompressible media (5%) and small compressible files.
    put(out, "movie-game/intro.bik", &[&r.bytes(total / 20)]);
    for i in 0..50 {
        put(
            out,
            &format!("text-adventure/scripts/s{i:03}.txt"),
            &[&r.text(total / 2000)],
        );
    }
    eprintln!("gen-corpus: about {mib} MiB written to {}", out.display());
}
