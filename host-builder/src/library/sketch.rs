//! Resemblance sketches: a few *super-features* per chunk such that two chunks that differ
//! in a few places very likely share at least one (the approach of Finesse, FAST 2019, and
//! Odess, 2021). They find a base for a delta in O(1) per chunk with a small index.
//!
//! A gear rolling hash runs over the chunk; at content-defined sample points (about one
//! byte in [`SAMPLE_EVERY`]) each of [`FEATURES`] linear transforms of the hash is taken and
//! the largest value of each kept: an edit changes only the samples near it, so most
//! maxima survive. Each super-feature hashes [`FEATURES_PER_SF`] features with its own
//! number, so equal super-features mean equal features, and different positions never
//! collide. Sketches are a builder's hint only (the `sketches` table of the index): a
//! different sketch finds other bases, never wrong bytes.

/// Super-features per chunk.
pub const SUPER_FEATURES: usize = 4;
/// Features hashed into one super-feature.
pub const FEATURES_PER_SF: usize = 3;
/// Features per chunk.
pub const FEATURES: usize = SUPER_FEATURES * FEATURES_PER_SF;
/// One sample point per this many bytes on average (a power of two).
pub const SAMPLE_EVERY: u64 = 64;
/// Chunks shorter than this get no sketch: too few samples to resemble anything.
pub const MIN_SKETCH_LEN: usize = 512;

/// SplitMix64: fixed pseudo-random constants for the gear table and the transforms.
const fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const GEAR: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = splitmix(0x5EED_0000 + i as u64);
        i += 1;
    }
    t
};

/// Multipliers (odd) and addends of the feature transforms.
const TRANSFORMS: [(u64, u64); FEATURES] = {
    let mut t = [(0u64, 0u64); FEATURES];
    let mut i = 0;
    while i < FEATURES {
        t[i] = (splitmix(0xA000 + i as u64) | 1, splitmix(0xB000 + i as u64));
        i += 1;
    }
    t
};

/// The super-features of `data`, or `None` when it is too short or has no sample point.
pub fn sketch(data: &[u8]) -> Option<[u64; SUPER_FEATURES]> {
    if data.len() < MIN_SKETCH_LEN {
        return None;
    }
    let mask = SAMPLE_EVERY - 1;
    let mut max = [0u64; FEATURES];
    let mut h: u64 = 0;
    let mut samples = 0u32;
    for &b in data {
        h = (h << 1).wrapping_add(GEAR[b as usize]);
        // The top bits depend on the last 64 bytes; test those for the sample points.
        if (h >> 40) & mask == 0 {
            samples += 1;
            for (m, &(a, c)) in max.iter_mut().zip(TRANSFORMS.iter()) {
                let v = a.wrapping_mul(h).wrapping_add(c);
                if v > *m {
                    *m = v;
                }
            }
        }
    }
    if samples == 0 {
        return None;
    }
    let mut out = [0u64; SUPER_FEATURES];
    for (j, sf) in out.iter_mut().enumerate() {
        let mut x = splitmix(j as u64 + 1);
        for f in &max[j * FEATURES_PER_SF..(j + 1) * FEATURES_PER_SF] {
            x = splitmix(x ^ f);
        }
        *sf = x;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(seed: u64, n: usize) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = splitmix(s);
                s as u8
            })
            .collect()
    }

    fn shared(a: &[u64; SUPER_FEATURES], b: &[u64; SUPER_FEATURES]) -> usize {
        a.iter().zip(b).filter(|(x, y)| x == y).count()
    }

    #[test]
    fn near_copies_share_super_features_and_strangers_do_not() {
        let base = data(1, 32 * 1024);
        let s = sketch(&base).unwrap();
        // A few scattered small edits.
        let mut edited = base.clone();
        for at in [1000, 9000, 20000] {
            edited[at] ^= 0x55;
        }
        assert!(shared(&s, &sketch(&edited).unwrap()) >= 1);
        // A short insertion shifts everything after it: features are position-free.
        let mut shifted = base.clone();
        shifted.splice(500..500, [1, 2, 3, 4, 5]);
        assert!(shared(&s, &sketch(&shifted).unwrap()) >= 1);
        // Unrelated data shares none.
        assert_eq!(shared(&s, &sketch(&data(2, 32 * 1024)).unwrap()), 0);
        // Deterministic, and nothing for tiny chunks.
        assert_eq!(sketch(&base), Some(s));
        assert_eq!(sketch(&base[..100]), None);
    }
}
