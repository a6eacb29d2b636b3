//! Parity files (SPEC section 13): Reed-Solomon recovery data for one pack or manifest,
//! in `parity/<folder>/<name>.par`.
//!
//! The protected file is cut into `k` data shards of `shard_len` bytes (the last one padded
//! with zeros), shard `s` holding file bytes `s * shard_len ..`; `m` recovery shards are
//! computed column by column, one window of `window` bytes of every shard at a time. Every
//! (window, shard) block has a 16-byte BLAKE3 prefix in the block table, so damage is
//! located to a block and every window is repaired on its own. The header and the block
//! table are covered by `meta_blake3`; the recovered file by `file_blake3`.
//!
//! This module owns the bytes and the geometry; hashing and coding are the caller's (this
//! crate has no dependencies).

use crate::error::{limit, need, FormatError};
use crate::le::{array_at, put, u16_at, u32_at, u64_at};
use crate::limits::{
    MAX_PARITY_DATA_SHARDS, MAX_PARITY_PERCENT, MAX_PARITY_PROTECTED_LEN, MAX_PARITY_SHARDS,
    MAX_PARITY_WINDOW,
};

/// Magic of a parity file.
pub const MAGIC: [u8; 8] = *b"ROMLPRTY";
/// Version of the parity file layout.
pub const VERSION: u16 = 1;

/// Header field offsets: magic.
pub const P_MAGIC: usize = 0;
/// Layout version.
pub const P_VERSION: usize = P_MAGIC + 8;
/// Flags (zero).
pub const P_FLAGS: usize = P_VERSION + 2;
/// Number of data shards `k`.
pub const P_DATA_SHARDS: usize = P_FLAGS + 2;
/// Number of recovery shards `m`.
pub const P_PARITY_SHARDS: usize = P_DATA_SHARDS + 2;
/// Window length in bytes.
pub const P_WINDOW: usize = P_PARITY_SHARDS + 2;
/// The redundancy asked for, in percent.
pub const P_PERCENT: usize = P_WINDOW + 4;
/// Shard length in bytes.
pub const P_SHARD_LEN: usize = P_PERCENT + 4;
/// Length of the protected file.
pub const P_FILE_LEN: usize = P_SHARD_LEN + 8;
/// BLAKE3 of the protected file.
pub const P_FILE_BLAKE3: usize = P_FILE_LEN + 8;
/// First 16 bytes of the BLAKE3 of the protected file's library-relative path.
pub const P_NAME_HASH: usize = P_FILE_BLAKE3 + 32;
/// Reserved (zero).
pub const P_RESERVED: usize = P_NAME_HASH + 16;
/// BLAKE3 of header bytes `0 .. P_META_BLAKE3` followed by the block table.
pub const P_META_BLAKE3: usize = P_RESERVED + 8;
/// Length of the header.
pub const HEADER_LEN: usize = P_META_BLAKE3 + 32;

/// Length of one block hash in the block table (a BLAKE3 prefix).
pub const BLOCK_HASH_LEN: usize = 16;
/// Shard lengths and windows are multiples of this.
pub const SHARD_ALIGN: u64 = 64;
/// Window a writer uses (a reader accepts any multiple of [`SHARD_ALIGN`] up to
/// [`MAX_PARITY_WINDOW`]).
pub const DEFAULT_WINDOW: u32 = 32 << 10;
/// A contiguous burst of at least this many bytes (or the whole file, if smaller) is
/// repairable whatever the percentage: small files get proportionally more parity.
pub const MIN_GUARANTEED_BURST: u64 = 64 << 10;

/// The decoded header of a parity file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParityHeader {
    /// The shapes of the shards and where everything lies.
    pub geometry: Geometry,
    /// The redundancy asked for when it was written, in percent.
    pub percent: u32,
    /// BLAKE3 of the protected file.
    pub file_blake3: [u8; 32],
    /// BLAKE3 prefix of the protected file's library-relative path (`packs/pack-0001.pkg`).
    pub name_hash: [u8; 16],
    /// BLAKE3 of the header's first [`P_META_BLAKE3`] bytes and the block table.
    pub meta_blake3: [u8; 32],
}

/// How a protected file is cut into shards and windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Length of the protected file.
    pub file_len: u64,
    /// Data shards `k`.
    pub data_shards: u32,
    /// Recovery shards `m`.
    pub parity_shards: u32,
    /// Bytes of every shard.
    pub shard_len: u64,
    /// Bytes of every window but possibly the last.
    pub window: u32,
}

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

impl Geometry {
    /// The geometry a writer uses for a file of `file_len` bytes at `percent` redundancy:
    /// `k = min(MAX_PARITY_DATA_SHARDS, ceil(file_len / 64))`, `shard_len` the smallest
    /// multiple of 64 with `k * shard_len >= file_len`, and `m` the larger of
    /// `ceil(k * percent / 100)` and the shards a burst of [`MIN_GUARANTEED_BURST`] bytes can
    /// touch, at most `k`.
    pub fn for_file(file_len: u64, percent: u32) -> Result<Self, FormatError> {
        limit(
            "MAX_PARITY_PROTECTED_LEN",
            file_len,
            MAX_PARITY_PROTECTED_LEN,
        )?;
        limit(
            "MAX_PARITY_PERCENT",
            percent as u64,
            MAX_PARITY_PERCENT as u64,
        )?;
        if file_len == 0 || percent == 0 {
            return Err(FormatError::InvalidField {
                what: "parity request",
                field: if file_len == 0 { "file_len" } else { "percent" },
                found: 0,
            });
        }
        let k = file_len
            .div_ceil(SHARD_ALIGN)
            .min(MAX_PARITY_DATA_SHARDS as u64);
        let shard_len = Self::shard_len_for(file_len, k);
        let by_percent = (k * percent as u64).div_ceil(100);
        // A burst of B bytes touches at most ceil((B - 1) / shard_len) + 1 shards.
        let burst = MIN_GUARANTEED_BURST.min(file_len);
        let by_burst = (burst - 1).div_ceil(shard_len) + 1;
        let m = by_percent.max(by_burst).min(k);
        Ok(Self {
            file_len,
            data_shards: k as u32,
            parity_shards: m as u32,
            shard_len,
            window: shard_len.min(DEFAULT_WINDOW as u64) as u32,
        })
    }

    /// The shard length for `k` shards of a file of `file_len` bytes.
    fn shard_len_for(file_len: u64, k: u64) -> u64 {
        round_up(file_len.div_ceil(k), SHARD_ALIGN).max(SHARD_ALIGN)
    }

    /// Checks a decoded geometry against the limits and the rules of SPEC section 13.
    pub fn check(&self) -> Result<(), FormatError> {
        const WHAT: &str = "parity header";
        let bad = |field, found| {
            Err(FormatError::InvalidField {
                what: WHAT,
                field,
                found,
            })
        };
        limit(
            "MAX_PARITY_PROTECTED_LEN",
            self.file_len,
            MAX_PARITY_PROTECTED_LEN,
        )?;
        limit(
            "MAX_PARITY_DATA_SHARDS",
            self.data_shards as u64,
            MAX_PARITY_DATA_SHARDS as u64,
        )?;
        limit(
            "MAX_PARITY_SHARDS",
            self.parity_shards as u64,
            MAX_PARITY_SHARDS as u64,
        )?;
        limit(
            "MAX_PARITY_WINDOW",
            self.window as u64,
            MAX_PARITY_WINDOW as u64,
        )?;
        if self.file_len == 0 {
            return bad("file_len", 0);
        }
        if self.data_shards == 0 {
            return bad("data_shards", 0);
        }
        if self.parity_shards == 0 || self.parity_shards > self.data_shards {
            return bad("parity_shards", self.parity_shards as u64);
        }
        if self.shard_len != Self::shard_len_for(self.file_len, self.data_shards as u64) {
            return bad("shard_len", self.shard_len);
        }
        let w = self.window as u64;
        if w == 0 || !w.is_multiple_of(SHARD_ALIGN) || w > self.shard_len {
            return bad("window", w);
        }
        Ok(())
    }

    /// Number of windows.
    pub fn windows(&self) -> u64 {
        self.shard_len.div_ceil(self.window as u64)
    }

    /// Bytes of window `j` in every shard (the last window may be shorter).
    pub fn window_len(&self, j: u64) -> usize {
        let start = j * self.window as u64;
        (self.shard_len - start).min(self.window as u64) as usize
    }

    /// Offset in the protected file of window `j` of data shard `s` (may lie past its end:
    /// those bytes are zero).
    pub fn data_offset(&self, s: u32, j: u64) -> u64 {
        s as u64 * self.shard_len + j * self.window as u64
    }

    /// Total shards `k + m`.
    pub fn total_shards(&self) -> u32 {
        self.data_shards + self.parity_shards
    }

    /// Bytes of the block table: one hash per shard per window.
    pub fn table_len(&self) -> u64 {
        self.windows() * self.total_shards() as u64 * BLOCK_HASH_LEN as u64
    }

    /// Offset in the parity file of the hashes of window `j` (`k + m` of them: data shards
    /// first, then recovery shards).
    pub fn table_offset(&self, j: u64) -> u64 {
        HEADER_LEN as u64 + j * self.total_shards() as u64 * BLOCK_HASH_LEN as u64
    }

    /// Offset in the parity file of window `j` of recovery shard `r`: the recovery data is
    /// window-major (window 0 of every recovery shard, then window 1, ...).
    pub fn parity_offset(&self, r: u32, j: u64) -> u64 {
        HEADER_LEN as u64
            + self.table_len()
            + j * self.window as u64 * self.parity_shards as u64
            + r as u64 * self.window_len(j) as u64
    }

    /// Length of the whole parity file.
    pub fn parity_file_len(&self) -> u64 {
        HEADER_LEN as u64 + self.table_len() + self.parity_shards as u64 * self.shard_len
    }
}

impl ParityHeader {
    /// Encodes the header (`meta_blake3` as given).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let g = &self.geometry;
        let mut b = [0u8; HEADER_LEN];
        put(&mut b, P_MAGIC, &MAGIC);
        put(&mut b, P_VERSION, &VERSION.to_le_bytes());
        put(&mut b, P_DATA_SHARDS, &(g.data_shards as u16).to_le_bytes());
        put(
            &mut b,
            P_PARITY_SHARDS,
            &(g.parity_shards as u16).to_le_bytes(),
        );
        put(&mut b, P_WINDOW, &g.window.to_le_bytes());
        put(&mut b, P_PERCENT, &self.percent.to_le_bytes());
        put(&mut b, P_SHARD_LEN, &g.shard_len.to_le_bytes());
        put(&mut b, P_FILE_LEN, &g.file_len.to_le_bytes());
        put(&mut b, P_FILE_BLAKE3, &self.file_blake3);
        put(&mut b, P_NAME_HASH, &self.name_hash);
        put(&mut b, P_META_BLAKE3, &self.meta_blake3);
        b
    }

    /// Decodes and checks a header (not `meta_blake3`, which needs the block table and a
    /// hash function: the caller checks it before trusting any other field's meaning).
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        const WHAT: &str = "parity header";
        need(WHAT, b, HEADER_LEN)?;
        if b[P_MAGIC..P_VERSION] != MAGIC {
            return Err(FormatError::BadMagic { what: WHAT });
        }
        let version = u16_at(b, P_VERSION);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: WHAT,
                found: version as u32,
            });
        }
        let flags = u16_at(b, P_FLAGS);
        if flags != 0 {
            return Err(FormatError::InvalidField {
                what: WHAT,
                field: "flags",
                found: flags as u64,
            });
        }
        if b[P_RESERVED..P_META_BLAKE3].iter().any(|&x| x != 0) {
            return Err(FormatError::InvalidField {
                what: WHAT,
                field: "reserved",
                found: 1,
            });
        }
        let percent = u32_at(b, P_PERCENT);
        limit(
            "MAX_PARITY_PERCENT",
            percent as u64,
            MAX_PARITY_PERCENT as u64,
        )?;
        let geometry = Geometry {
            file_len: u64_at(b, P_FILE_LEN),
            data_shards: u16_at(b, P_DATA_SHARDS) as u32,
            parity_shards: u16_at(b, P_PARITY_SHARDS) as u32,
            shard_len: u64_at(b, P_SHARD_LEN),
            window: u32_at(b, P_WINDOW),
        };
        geometry.check()?;
        Ok(Self {
            geometry,
            percent,
            file_blake3: array_at(b, P_FILE_BLAKE3),
            name_hash: array_at(b, P_NAME_HASH),
            meta_blake3: array_at(b, P_META_BLAKE3),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> ParityHeader {
        ParityHeader {
            geometry: Geometry::for_file(1 << 30, 5).unwrap(),
            percent: 5,
            file_blake3: [7; 32],
            name_hash: [9; 16],
            meta_blake3: [3; 32],
        }
    }

    #[test]
    fn layout_matches_spec_table() {
        assert_eq!(
            [
                P_VERSION,
                P_FLAGS,
                P_DATA_SHARDS,
                P_PARITY_SHARDS,
                P_WINDOW,
                P_PERCENT,
                P_SHARD_LEN,
                P_FILE_LEN,
                P_FILE_BLAKE3,
                P_NAME_HASH,
                P_RESERVED,
                P_META_BLAKE3,
                HEADER_LEN
            ],
            [8, 10, 12, 14, 16, 20, 24, 32, 40, 72, 88, 96, 128]
        );
    }

    #[test]
    fn geometry_of_a_large_pack() {
        let g = Geometry::for_file(1 << 30, 5).unwrap();
        assert_eq!((g.data_shards, g.parity_shards), (256, 13));
        assert_eq!(g.shard_len, 4 << 20);
        assert_eq!(g.window, DEFAULT_WINDOW);
        assert_eq!(g.windows(), 128);
        assert_eq!(g.parity_file_len(), 128 + 128 * 269 * 16 + 13 * (4 << 20));
        let g = Geometry::for_file(MAX_PARITY_PROTECTED_LEN, 10).unwrap();
        assert_eq!((g.data_shards, g.parity_shards), (256, 26));
        g.check().unwrap();
    }

    #[test]
    fn small_files_keep_a_64k_burst_repairable() {
        // A 3000-byte manifest: every byte may be lost, so m = k.
        let g = Geometry::for_file(3000, 5).unwrap();
        assert_eq!(g.data_shards, 47);
        assert_eq!(g.parity_shards, 47);
        // 300 KiB: 256 shards of 1216 bytes; a 64 KiB burst touches at most 55 of them.
        let g = Geometry::for_file(300 << 10, 5).unwrap();
        assert_eq!(g.shard_len, 1216);
        assert_eq!(g.parity_shards, 55);
        assert!((g.parity_shards as u64 - 1) * g.shard_len >= MIN_GUARANTEED_BURST);
        for len in [1u64, 63, 64, 65, 4095, 1 << 20, (1 << 20) + 1, 3 << 30] {
            for p in [1, 5, 10, 100] {
                let g = Geometry::for_file(len, p).unwrap();
                g.check().unwrap();
                assert!(g.data_shards as u64 * g.shard_len >= len);
                let burst = MIN_GUARANTEED_BURST.min(len);
                // The worst placement of the burst touches at most m shards.
                let touched = ((burst - 1) / g.shard_len + 2).min(g.data_shards as u64);
                assert!(touched <= g.parity_shards as u64, "{len} {p}");
            }
        }
    }

    #[test]
    fn header_round_trip_and_rejects() {
        let h = header();
        let b = h.encode();
        assert_eq!(ParityHeader::decode(&b), Ok(h));
        for cut in 0..HEADER_LEN {
            assert!(matches!(
                ParityHeader::decode(&b[..cut]),
                Err(FormatError::Truncated { .. })
            ));
        }
        // Every single-bit flip outside the hashes is refused or decodes to what it says
        // (never a panic); flips in fields with rules are refused.
        for byte in 0..P_FILE_BLAKE3 {
            for bit in 0..8 {
                let mut bad = b;
                bad[byte] ^= 1 << bit;
                if let Ok(d) = ParityHeader::decode(&bad) {
                    // m, the window and the percentage may take other valid values: the
                    // meta_blake3 check (host) refuses those.
                    assert!(
                        (P_PARITY_SHARDS..P_SHARD_LEN).contains(&byte),
                        "byte {byte}"
                    );
                    assert_ne!(d, h);
                }
            }
        }
        let mut bad = b;
        bad[P_RESERVED] = 1;
        assert!(ParityHeader::decode(&bad).is_err());
    }

    #[test]
    fn oversized_fields_are_refused_by_name() {
        let mut b = header().encode();
        b[P_FILE_LEN..P_FILE_LEN + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            ParityHeader::decode(&b),
            Err(FormatError::LimitExceeded {
                limit: "MAX_PARITY_PROTECTED_LEN",
                ..
            })
        ));
        let mut b = header().encode();
        b[P_WINDOW..P_WINDOW + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            ParityHeader::decode(&b),
            Err(FormatError::LimitExceeded {
                limit: "MAX_PARITY_WINDOW",
                ..
            })
        ));
        let mut b = header().encode();
        b[P_DATA_SHARDS..P_DATA_SHARDS + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(
            ParityHeader::decode(&b),
            Err(FormatError::LimitExceeded {
                limit: "MAX_PARITY_DATA_SHARDS",
                ..
            })
        ));
        let mut b = header().encode();
        b[P_PARITY_SHARDS..P_PARITY_SHARDS + 2].copy_from_slice(&0u16.to_le_bytes());
        assert!(ParityHeader::decode(&b).is_err());
        let mut b = header().encode();
        b[P_SHARD_LEN..P_SHARD_LEN + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(ParityHeader::decode(&b).is_err());
    }
}
