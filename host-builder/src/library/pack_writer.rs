//! Writing the bytes of one pack (`format-spec/SPEC.md` section 2) to any output: header, records,
//! footer with the running BLAKE3 checksum. The library's own packs (a file in `packs/`)
//! and the packs inside a portable file are both written by [`PackWriter`], so they are
//! laid out by one piece of code.

use romlib_format::index::PackInfo;
use romlib_format::pack::{
    must_roll_over, PackFooter, PackHeader, RecordHeader, FOOTER_LEN, HEADER_LEN,
};
use std::io::{self, Write};

/// A pack being written to `W`.
pub struct PackWriter<W: Write> {
    id: u32,
    dict_id: u32,
    out: W,
    hasher: blake3::Hasher,
    len: u64,
    records: u64,
}

impl<W: Write> PackWriter<W> {
    /// Starts pack `id`, whose records use dictionary `dict_id` (0: none), by writing its
    /// header to `out`.
    pub fn new(out: W, id: u32, dict_id: u32) -> io::Result<Self> {
        let mut w = Self {
            id,
            dict_id,
            out,
            hasher: blake3::Hasher::new(),
            len: 0,
            records: 0,
        };
        let header = PackHeader {
            pack_id: id,
            dict_id,
        }
        .encode();
        w.write(&header)?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.hasher.update(b);
        self.len += b.len() as u64;
        Ok(())
    }

    /// The pack's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The dictionary id its records use (0: none).
    pub fn dict_id(&self) -> u32 {
        self.dict_id
    }

    /// Bytes written so far (header included).
    pub fn bytes_written(&self) -> u64 {
        self.len
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Whether a record of `rec_len` bytes (header and payload) must go to a new pack
    /// instead, for packs of at most `pack_size` bytes (the format's roll-over rule).
    pub fn must_roll_over(&self, rec_len: u64, pack_size: u64) -> bool {
        must_roll_over(self.records, self.len, rec_len, pack_size)
    }

    /// Appends one record; returns its offset in the pack.
    pub fn append(&mut self, rec: &RecordHeader, payload: &[u8]) -> io::Result<u64> {
        let at = self.len;
        self.write(&rec.encode())?;
        self.write(payload)?;
        self.records += 1;
        Ok(at)
    }

    /// The output, e.g. to flush it before reading back what was written.
    pub fn output_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Writes the footer; returns the output and what the index records of the pack.
    pub fn finish(mut self) -> io::Result<(W, PackInfo)> {
        let checksum = *self.hasher.finalize().as_bytes();
        let footer = PackFooter {
            record_count: self.records,
            records_len: self.len - HEADER_LEN as u64,
            checksum,
        };
        self.out.write_all(&footer.encode())?;
        let info = PackInfo {
            file_len: self.len + FOOTER_LEN as u64,
            record_count: self.records,
            dict_id: self.dict_id,
            checksum,
        };
        Ok((self.out, info))
    }
}
