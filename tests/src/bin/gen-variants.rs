//! Generates the variant set of the delta benchmark: a 2 MiB ROM-like base (code-like text
//! and incompressible data in 64 KiB stripes) and 16 variants of it, each with about 40
//! scattered edits of 1 to 16 bytes and one 1 KiB insertion, as regional variants and
//! revisions of one ROM differ. Deterministic.
//!
//! `gen-variants OUT_DIR` writes `OUT_DIR/base/rom.bin` and `OUT_DIR/variant-NN/rom.bin`;
//! `gen-variants --only-base OUT_DIR` and `--only-variants` write one part (so the base can
//! be built first, and the variants added by a later, incremental build).

use romlib_tests::Rng;
use std::path::Path;

fn put(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
