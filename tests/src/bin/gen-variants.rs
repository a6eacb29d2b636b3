//! Generates the variant set of the delta benchmark: a 2 MiB ROM-like base (code-like text
//! and incompressible data in 64 KiB stripes) and 16 variants of it, each with about 40
//! scattered edits of 1 to 16 bytes and one 1 KiB insertion, as regional variants and
//! revisions of one ROM differ. Deterministic.
//!
//! `gen-variants OUT_DIR` writes `OUT_DIR/base/rom.bin` and `OUT_DIR/variant-NN/rom.bin`;
//! `gen-variants --only-base OUT_DIR` and `--only-variants` write one part (so the base can
//! be built first, and the variants added by a later, incremental build).
//! `gen-variants --big MIB OUT_DIR` writes a disc image of MIB MiB (`big-base/disc.bin`) and a
//! revision with one small edit every 64 KiB (`big-rev/disc.bin`), whose chunks are nearly
//! all deltas: for install speed, memory and random reads of a delta-heavy game.

use romlib_tests::Rng;
use std::path::Path;

fn put(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, mib, out] = args.as_slice() {
        if flag == "--big" {
            let mib: usize = mib.parse().unwrap_or_else(|_| {
                eprintln!("gen-variants: --big takes a size in MiB");
                std::process::exit(2);
            });
            return big(mib, Path::new(out));
        }
    }
    let (mode, out) = match args.as_slice() {
        [out] => ("all", out),
        [flag, out] if flag == "--only-base" => ("base", out),
        [flag, out] if flag == "--only-variants" => ("variants", out),
        _ => {
            eprintln!("usage: gen-variants [--only-base|--only-variants] OUT_DIR");
            std::process::exit(2);
        }
    };
    let out = Path::new(out);
    let mut r = Rng::new(2027);
    let mut base = Vec::with_capacity(2 << 20);
    while base.len() < 2 << 20 {
        if (base.len() >> 16).is_multiple_of(2) {
            base.extend_from_slice(&r.text(1 << 16));
        } else {
            base.extend_from_slice(&r.bytes(1 << 16));
        }
    }
    if mode != "variants" {
        put(out, "base/rom.bin", &base);
    }
    for n in 1..=16 {
        let edits = 32 + (r.next_u64() % 17) as usize;
        let v = r.variant(&base, edits, 1024);
        if mode != "base" {
            put(out, &format!("variant-{n:02}/rom.bin"), &v);
        }
    }
}

/// A large disc image (code-like text and incompressible data in 1 MiB stripes) and a
/// revision of it with a few changed bytes every 64 KiB.
fn big(mib: usize, out: &Path) {
    let mut r = Rng::new(2028);
    let mut base = Vec::with_capacity(mib << 20);
    while base.len() < mib << 20 {
        if (base.len() >> 20).is_multiple_of(2) {
            base.extend_from_slice(&r.text(1 << 20));
        } else {
            base.extend_from_slice(&r.bytes(1 << 20));
        }
    }
    put(out, "big-base/disc.bin", &base);
    for at in (0..base.len()).step_by(64 << 10) {
        let at = at + (r.next_u64() % (60 << 10)) as usize;
        for b in base.iter_mut().skip(at).take(4) {
            *b ^= 0xA5;
        }
    }
    put(out, "big-rev/disc.bin", &base);
}
