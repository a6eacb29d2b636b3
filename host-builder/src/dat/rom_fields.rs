//! A rom's fields (name, size, CRC-32, MD5, SHA-1, SHA-256, status) as both DAT formats
//! spell them.

use super::model::{DatRom, RomStatus};
use super::source::At;
use crate::error::Result;

/// Collects a rom's fields as they are read. The first bad value is kept and reported once
/// the whole rom is read, because the rom's name, which the message quotes, may come after.
#[derive(Default)]
pub(super) struct RomFields {
    rom: DatRom,
    /// The line and description of the first bad value.
    problem: Option<(u64, String)>,
    /// A MAME `loadflag` was given: a nameless rom is then the continuation of the one before.
    loadflag: bool,
}

/// What a finished `<rom>` (or clrmamepro `rom ( ... )`) entry is.
#[derive(Debug)]
pub(super) enum RomEntry {
    /// A rom.
    Rom(DatRom),
    /// A rom with a malformed number or hash: skipped, with the warning that says so
    /// ("<file>: line N: rom \"x\": bad size \"12x\""). One bad attribute must not hide
    /// the rest of a DAT of thousands of games.
    Bad(String),
    /// A MAME software list's nameless `loadflag` entry (`continue`, `fill`, `reload`,
    /// `ignore`): more bytes of the rom before it, not a file of its own.
    Part,
}

impl RomFields {
    /// The keys [`RomFields::set`] uses.
    pub(super) const KEYS: &[&[u8]] = &[
        b"name",
        b"size",
        b"crc",
        b"md5",
        b"sha1",
        b"sha256",
        b"status",
        b"flags",
        b"loadflag",
    ];

    /// Takes one key and value, read on `line`; unknown keys are ignored.
    pub(super) fn set(&mut self, key: &[u8], value: &str, line: u64) {
        if key == b"name" {
            self.rom.name = value.to_owned();
            return;
        }
        let trimmed = value.trim();
        // Some DATs write an empty value rather than leave the field out.
        if trimmed.is_empty() {
            return;
        }
        let rom = &mut self.rom;
        let ok = match key {
            b"size" => store(&mut rom.size, parse_size(trimmed)),
            b"crc" => store(&mut rom.crc32, parse_hex(trimmed).map(u32::from_be_bytes)),
            b"md5" => store(&mut rom.md5, parse_hex(trimmed)),
            b"sha1" => store(&mut rom.sha1, parse_hex(trimmed)),
            b"sha256" => store(&mut rom.sha256, parse_hex(trimmed)),
            b"loadflag" => {
                self.loadflag = true;
                true
            }
            b"status" | b"flags" => {
                // Other clrmamepro flags and unknown statuses leave the rom an ordinary dump.
                if let Some(status) = parse_status(trimmed) {
                    rom.status = status;
                }
                true
            }
            _ => true,
        };
        if !ok && self.problem.is_none() {
            let key = String::from_utf8_lossy(key);
            self.problem = Some((line, format!("bad {key} {value:?}")));
        }
    }

    /// The rom, or the warning for its first bad value; `at` is where the rom starts. A
    /// rom without a name is an error (the DAT's structure is broken), unless it is a
    /// software list's `loadflag` continuation.
    pub(super) fn finish(self, at: At) -> Result<RomEntry> {
        if self.rom.name.is_empty() {
            if self.loadflag {
                return Ok(RomEntry::Part);
            }
            return Err(at.err("a rom has no name"));
        }
        if let Some((line, problem)) = self.problem {
            let name = &self.rom.name;
            let e = At::new(at.path, line).err(format!("rom {name:?}: {problem}; entry skipped"));
            return Ok(RomEntry::Bad(e.to_string()));
        }
        Ok(RomEntry::Rom(self.rom))
    }
}

/// Stores `value` when it parsed; false when it did not.
pub(super) fn store<T>(slot: &mut Option<T>, value: Option<T>) -> bool {
    let ok = value.is_some();
    if ok {
        *slot = value;
    }
    ok
}

/// A size in decimal or, as MAME and converted DATs write it, `0x` hexadecimal. Digits only:
/// no sign, no blank, no empty number.
pub(super) fn parse_size(s: &str) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.bytes().all(|b| char::from(b).is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// `N` bytes from exactly `2N` hex digits of either case.
pub(super) fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = (hex_digit(pair[0])?, hex_digit(pair[1])?);
        *byte = hi << 4 | lo;
    }
    Some(out)
}

pub(super) fn hex_digit(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

pub(super) fn parse_status(s: &str) -> Option<RomStatus> {
    match s.to_ascii_lowercase().as_str() {
        "good" => Some(RomStatus::Good),
        "baddump" => Some(RomStatus::BadDump),
        "nodump" => Some(RomStatus::NoDump),
        "verified" => Some(RomStatus::Verified),
        _ => None,
    }
}
