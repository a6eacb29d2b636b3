//! Bloom filters over a sorted run's keys (SPEC section 5.4): most of a build's lookups
//! ask for keys the index does not hold (every chunk of a new game is looked up, then up
//! to four of its super-features), and without a filter each such miss reads and checks
//! one block of every run. A filter answers "not here" from memory for all but about 2%
//! of them.
//!
//! A filter is a cache: a builder keeps one in memory per run, loaded from
//! `runs/<id>.bloom` (written with the run, or from a scan of a run that has none) for
//! the runs it reads from disk, or made from the rows of the runs it holds in memory. A
//! missing, damaged or foreign file (one written for another run of the same id) is
//! replaced, never trusted: the file carries the run's checksum and its own. What a
//! builder holds of them is bounded ([`FILTER_BUDGET`]); a run beyond it is read without
//! one, as before.

/// Filter bits per key: about 2% false positives with [`PROBES`] bits in one 512-bit
/// block.
pub const BITS_PER_KEY: u64 = 8;
/// Bits set per key.
const PROBES: u32 = 5;
const BLOCK_BITS: u64 = 512;
const BLOCK_WORDS: usize = (BLOCK_BITS / 64) as usize;
/// Bytes of filters a builder holds at most: about 134 million keys, or 30 million
/// chunks (about 900 GB at the default 32 KiB chunks). Newer runs are served first: a
/// lookup costs the same block read in a small run as in a large one, so the budget goes
/// to as many runs as it covers.
pub const FILTER_BUDGET: u64 = 128 << 20;

/// The sections a filter covers: chunks and sketches (delta rows are looked up only for
/// chunks known to be deltas, so they hit).
pub const FILTERED: usize = 2;

const MAGIC: &[u8; 8] = b"ROMLBLM\0";
const VERSION: u32 = 1;
/// Magic, version, 4 zero bytes, the run's checksum, the block count of each section.
const HEADER_LEN: usize = 16 + 32 + 8 * FILTERED;
const SUM_LEN: usize = 32;

/// splitmix64's finalizer: every input bit reaches every output bit (the bits a key sets in
/// its block).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The filter of one section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionFilter {
    blocks: u64,
    words: Vec<u64>,
}

impl SectionFilter {
    /// An empty filter for up to `keys` keys.
    pub fn with_keys(keys: u64) -> Self {
        let blocks = blocks_for(keys);
        Self {
            blocks,
            words: vec![0; blocks as usize * BLOCK_WORDS],
        }
    }

    /// The block and the bits within it of the key whose first 8 bytes, read big-endian,
    /// are `prefix`. The block follows the prefix itself (keys are hashes, so blocks fill
    /// evenly), so a run's keys, written in order, fill the filter front to back: a merge
    /// writes it sequentially instead of at a random cache line per key.
    fn probes(&self, prefix: u64) -> (usize, [u32; PROBES as usize]) {
        let block = ((u128::from(prefix) * u128::from(self.blocks)) >> 64) as usize;
        let g = mix(prefix);
        let mut bits = [0u32; PROBES as usize];
        for (i, b) in bits.iter_mut().enumerate() {
            *b = ((g >> (9 * i)) & (BLOCK_BITS - 1)) as u32;
        }
        (block, bits)
    }

    /// Adds the key whose first 8 bytes are `prefix`.
    pub fn insert(&mut self, prefix: u64) {
        if self.blocks == 0 {
            return;
        }
        let (block, bits) = self.probes(prefix);
        let words = &mut self.words[block * BLOCK_WORDS..(block + 1) * BLOCK_WORDS];
        for b in bits {
            words[b as usize / 64] |= 1 << (b % 64);
        }
    }

    /// False only when no key added starts with the 8 bytes `prefix` (a filter without
    /// blocks may hold anything).
    pub fn may_contain(&self, prefix: u64) -> bool {
        if self.blocks == 0 {
            return true;
        }
        let (block, bits) = self.probes(prefix);
        let words = &self.words[block * BLOCK_WORDS..(block + 1) * BLOCK_WORDS];
        bits.iter()
            .all(|&b| words[b as usize / 64] & (1 << (b % 64)) != 0)
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.blocks * BLOCK_BITS / 8
    }
}

/// A run's filters: chunks, then sketches.
pub type RunFilter = [SectionFilter; FILTERED];

/// Blocks of the filter of `keys` keys.
fn blocks_for(keys: u64) -> u64 {
    keys.saturating_mul(BITS_PER_KEY).div_ceil(BLOCK_BITS)
}

/// How many times the blocks its rows need a filter may have: a merge sizes its filter
/// before the keys two sources share collapse.
const MAX_OVERSIZE: u64 = 4;

/// Bytes the filters of a run with `counts` rows per section take.
pub fn bytes_for(counts: &[u64]) -> u64 {
    counts[..FILTERED]
        .iter()
        .map(|&c| blocks_for(c) * BLOCK_BITS / 8)
        .sum()
}

/// Whether a filter sized for `sized` keys may serve `keys` (else it is not written, and
/// the next writer makes one to size from the run).
pub fn fits(sized: u64, keys: u64) -> bool {
    blocks_for(sized) <= MAX_OVERSIZE * blocks_for(keys) + 1
}

/// The bytes of `f`, the filter of the run whose checksum is `run_sum`.
pub fn encode(run_sum: &[u8; 32], f: &RunFilter) -> Vec<u8> {
    let mut b = Vec::with_capacity(
        HEADER_LEN + f.iter().map(|s| s.bytes() as usize).sum::<usize>() + SUM_LEN,
    );
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(run_sum);
    for s in f {
        b.extend_from_slice(&s.blocks.to_le_bytes());
    }
    for s in f {
        for w in &s.words {
            b.extend_from_slice(&w.to_le_bytes());
        }
    }
    let sum = *blake3::hash(&b).as_bytes();
    b.extend_from_slice(&sum);
    b
}

/// The longest filter file a run with `counts` rows per section may have (see [`fits`]):
/// a longer one is not read.
pub fn max_len(counts: &[u64]) -> u64 {
    HEADER_LEN as u64 + MAX_OVERSIZE * bytes_for(counts) + 64 * FILTERED as u64 + SUM_LEN as u64
}

/// The filter in `b`, the bytes of a filter file, when it is the filter of the run whose
/// checksum is `run_sum` and whose sections hold `counts` rows; `None` when it is damaged,
/// foreign or not sized for those rows (the caller makes it again).
pub fn decode(b: &[u8], run_sum: &[u8; 32], counts: &[u64]) -> Option<RunFilter> {
    if b.len() < HEADER_LEN + SUM_LEN || b.len() as u64 > max_len(counts) {
        return None;
    }
    let (body, sum) = b.split_at(b.len() - SUM_LEN);
    if body[..8] != MAGIC[..]
        || body[8..12] != VERSION.to_le_bytes()
        || body[16..48] != run_sum[..]
        || blake3::hash(body).as_bytes()[..] != sum[..]
    {
        return None;
    }
    let mut blocks = [0u64; FILTERED];
    let mut words_len = 0u64;
    for (s, n) in blocks.iter_mut().enumerate() {
        let at = 48 + 8 * s;
        *n = u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let least = blocks_for(counts[s]);
        if *n < least || *n > MAX_OVERSIZE * least + 1 {
            return None;
        }
        words_len += *n * (BLOCK_BITS / 8);
    }
    if HEADER_LEN as u64 + words_len != body.len() as u64 {
        return None;
    }
    let mut at = HEADER_LEN;
    let mut take = |n: u64| {
        let words: Vec<u64> = body[at..at + n as usize * 64]
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
            .collect();
        at += n as usize * 64;
        SectionFilter { blocks: n, words }
    };
    Some([take(blocks[0]), take(blocks[1])])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> u64 {
        mix(n.wrapping_add(0x1234))
    }

    #[test]
    fn a_filter_never_forgets_a_key_and_rarely_claims_one() {
        let mut f = SectionFilter::with_keys(100_000);
        for n in 0..100_000 {
            f.insert(key(n));
        }
        assert!((0..100_000).all(|n| f.may_contain(key(n))));
        let false_hits = (100_000..200_000)
            .filter(|&n| f.may_contain(key(n)))
            .count();
        // About 2% expected at 8 bits per key; a filter that answers "maybe" to
        // everything, or ignores a probe, fails.
        assert!(false_hits < 3_500, "{false_hits} false hits in 100000");
        assert!(
            false_hits > 500,
            "{false_hits} false hits: sized smaller than said?"
        );
    }

    #[test]
    fn a_filter_file_round_trips_and_refuses_damage_and_other_runs() {
        let mut f: RunFilter = [
            SectionFilter::with_keys(1000),
            SectionFilter::with_keys(3000),
        ];
        for n in 0..1000 {
            f[0].insert(key(n));
        }
        for n in 0..3000 {
            f[1].insert(key(n + 7));
        }
        let counts = [1000, 3000, 5];
        let good = encode(&[7; 32], &f);
        assert_eq!(decode(&good, &[7; 32], &counts), Some(f.clone()));
        // Another run's checksum, other counts, a flipped bit, a cut file: not used.
        assert_eq!(decode(&good, &[8; 32], &counts), None);
        assert_eq!(decode(&good, &[7; 32], &[5000, 3000, 5]), None);
        let mut bad = good.clone();
        bad[HEADER_LEN + 10] ^= 1;
        assert_eq!(decode(&bad, &[7; 32], &counts), None);
        assert_eq!(decode(&good[..good.len() - 1], &[7; 32], &counts), None);
        assert_eq!(decode(&[], &[7; 32], &counts), None);
    }
}
