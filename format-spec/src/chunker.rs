//! Chunker identity: the algorithm and parameters that define content addresses.
//!
//! Changing any of these changes every cut point and so every chunk hash; that is a format
//! change, recorded in each manifest and in the index's `meta` table.

use crate::error::FormatError;
use crate::limits::{MAX_AVG_CHUNK, MAX_CHUNK_LEN, MIN_AVG_CHUNK};

/// The only chunking algorithm of format version 1: FastCDC as published in 2020.
pub const ALGORITHM_FASTCDC_V2020: &str = "fastcdc-v2020";
/// Normalization level used with FastCDC v2020 (the published default).
pub const NORMALIZATION_LEVEL: u32 = 1;
/// Default average chunk size.
pub const DEFAULT_AVG_CHUNK: u32 = 32 * 1024;

/// Minimum, average and maximum chunk sizes, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerParams {
    /// No chunk is shorter, except the last of a file.
    pub min: u32,
    /// The target average.
    pub avg: u32,
    /// No chunk is longer.
    pub max: u32,
}

impl ChunkerParams {
    /// Derives the parameters from an average: min = avg / 4, max = avg * 4.
    ///
    /// The average must be a power of two between [`MIN_AVG_CHUNK`] and [`MAX_AVG_CHUNK`].
    pub fn from_avg(avg: u32) -> Result<Self, FormatError> {
        if !(MIN_AVG_CHUNK..=MAX_AVG_CHUNK).contains(&avg) || !avg.is_power_of_two() {
            return Err(FormatError::InvalidField {
                what: "chunker parameters",
                field: "avg (a power of two from 1024 to 262144)",
                found: avg as u64,
            });
        }
        Ok(Self {
            min: avg / 4,
            avg,
            max: avg * 4,
        })
    }

    /// Checks parameters read from a manifest.
    pub fn check(&self) -> Result<(), FormatError> {
        let expect = Self::from_avg(self.avg)?;
        if *self != expect || self.max > MAX_CHUNK_LEN {
            return Err(FormatError::InvalidField {
                what: "chunker parameters",
                field: "min/max",
                found: self.max as u64,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avg_bounds() {
        assert!(ChunkerParams::from_avg(512).is_err());
        assert!(ChunkerParams::from_avg(3000).is_err());
        assert!(ChunkerParams::from_avg(1 << 19).is_err());
        let p = ChunkerParams::from_avg(DEFAULT_AVG_CHUNK).unwrap();
        assert_eq!((p.min, p.avg, p.max), (8192, 32768, 131072));
        assert_eq!(
            ChunkerParams::from_avg(MAX_AVG_CHUNK).unwrap().max,
            MAX_CHUNK_LEN
        );
    }
}
