//! The library's signed snapshot, `snapshot.txt` (SPEC section 15): which manifest and
//! locator of every game is the current one, the library's publication sequence and when the
//! snapshot stops being valid. UTF-8 text, one item per line, each line ended by `\n`:
//!
//! ```text
//! romlib snapshot 1
//! sequence <u64>
//! created <unix seconds>
//! expires <unix seconds>|never
//! valid-for <seconds>|never
//! games flat|sharded                (format 2 only)
//! game <revision> <manifest length> <manifest BLAKE3> <locator length> <locator BLAKE3> <title id>
//! ...
//! signature <public key> <signature>
//! ```
//!
//! Numbers are decimal without leading zeros, hashes and keys 64 (the signature 128)
//! lower-case hex digits, games sorted by title id (bytes), each title at most once. The
//! signature signs [`message`]: [`SIGNATURE_DOMAIN`], then the BLAKE3 and the length of every
//! byte before the signature line. So a reader checks a snapshot of any size streaming it
//! once, with only the lines it wants kept.
//!
//! This module parses one line at a time ([`Parser`]); the caller splits lines, hashes the
//! bytes and verifies the signature.

use crate::error::FormatError;
use crate::file_signature::hex_decode;
use crate::layout::GamesLayout;
use crate::limits::{MAX_GAME_CHUNKS, MAX_MANIFEST_BODY_LEN, MAX_TITLE_ID_LEN};
use crate::manifest::{CHUNK_RECORD_LEN, HEADER_LEN, SIGNATURE_BLOCK_LEN};
use crate::portable::LocatorHeader;
use core::fmt;

/// The first line of a snapshot of format 1 (a library whose `games/` is flat).
pub const MAGIC_LINE: &str = "romlib snapshot 1";
/// The first line of a snapshot of format 2, which adds the `games` line after `valid-for`
/// (written for a library whose `games/` is sharded, so that a reader that predates the
/// sharded layout refuses it instead of finding no games).
pub const MAGIC_LINE_2: &str = "romlib snapshot 2";
/// The newest snapshot format this crate reads.
pub const SNAPSHOT_FORMAT: u64 = 2;
/// What the signed message starts with, so a snapshot's signature can never be taken for a
/// manifest's or a file signature's.
pub const SIGNATURE_DOMAIN: &[u8; 29] = b"romlib snapshot signature v1\0";
/// Length of the signed message: domain, BLAKE3 of the signed bytes, their length (u64 LE).
pub const MESSAGE_LEN: usize = SIGNATURE_DOMAIN.len() + 32 + 8;
/// Largest snapshot a reader reads (about 190 bytes per game: some 350,000 games).
pub const MAX_SNAPSHOT_LEN: u64 = 64 << 20;
/// Longest line, `\n` excluded (a game line with the longest title id).
pub const MAX_LINE_LEN: usize = 5 + 3 * 21 + 2 * 65 + MAX_TITLE_ID_LEN + 8;

/// The bytes signed for a snapshot whose bytes before the signature line have BLAKE3 `hash`
/// and length `len`.
pub fn message(hash: &[u8; 32], len: u64) -> [u8; MESSAGE_LEN] {
    let mut m = [0u8; MESSAGE_LEN];
    let d = SIGNATURE_DOMAIN.len();
    m[..d].copy_from_slice(SIGNATURE_DOMAIN);
    m[d..d + 32].copy_from_slice(hash);
    m[d + 32..].copy_from_slice(&len.to_le_bytes());
    m
}

/// The largest manifest a game may have (SPEC section 3).
pub fn max_manifest_len() -> u64 {
    (HEADER_LEN + SIGNATURE_BLOCK_LEN) as u64
        + MAX_MANIFEST_BODY_LEN as u64
        + MAX_GAME_CHUNKS * CHUNK_RECORD_LEN as u64
}

/// The snapshot's header lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Greater in every later snapshot of the library.
    pub sequence: u64,
    /// When it was made (Unix seconds).
    pub created: u64,
    /// When readers over a network stop accepting it (Unix seconds); `None`: never.
    pub expires: Option<u64>,
    /// The validity the publisher asked for (seconds), which later publications reuse.
    pub valid_for: Option<u64>,
    /// Where the manifests and locators are in `games/` (format 1: flat).
    pub games: GamesLayout,
}

impl fmt::Display for Header {
    /// The header lines, each ended by `\n`: format 1 for a flat `games/` (every reader
    /// reads it), format 2 for a sharded one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sharded = self.games == GamesLayout::Sharded;
        writeln!(f, "{}", if sharded { MAGIC_LINE_2 } else { MAGIC_LINE })?;
        writeln!(f, "sequence {}", self.sequence)?;
        writeln!(f, "created {}", self.created)?;
        writeln!(f, "expires {}", Never(self.expires))?;
        writeln!(f, "valid-for {}", Never(self.valid_for))?;
        if sharded {
            writeln!(f, "games {}", self.games.name())?;
        }
        Ok(())
    }
}

/// A number, or `never`.
struct Never(Option<u64>);

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("never"),
        }
    }
}

/// A game's line: its title id and what its current manifest and locator are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The title id.
    pub title: &'a str,
    /// The manifest's `revision` (SPEC section 3.2).
    pub revision: u64,
    /// Length of `games/<title>.manifest`.
    pub manifest_len: u64,
    /// Its BLAKE3.
    pub manifest_blake3: [u8; 32],
    /// Length of `games/<title>.locator`.
    pub locator_len: u64,
    /// Its BLAKE3.
    pub locator_blake3: [u8; 32],
}

impl fmt::Display for Entry<'_> {
    /// The game line, ended by `\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "game {} {} {} {} {} {}",
            self.revision,
            self.manifest_len,
            Hex(&self.manifest_blake3),
            self.locator_len,
            Hex(&self.locator_blake3),
            self.title
        )
    }
}

/// Lower-case hex of some bytes.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The signature line, ended by `\n`.
pub struct SignatureLine {
    /// The signer's Ed25519 public key.
    pub public_key: [u8; 32],
    /// The Ed25519 signature of [`message`].
    pub signature: [u8; 64],
}

impl fmt::Display for SignatureLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "signature {} {}",
            Hex(&self.public_key),
            Hex(&self.signature)
        )
    }
}

/// What one line was.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A header line; [`Parser::header`] has the header once its last line is in.
    Header,
    /// A game.
    Game(Entry<'a>),
    /// The signature: the last line. Its bytes are not signed.
    Signature {
        /// The signer's public key.
        public_key: [u8; 32],
        /// The signature.
        signature: [u8; 64],
    },
}

/// Reads a snapshot line by line, checking each against the format and the order.
#[derive(Debug)]
pub struct Parser {
    /// Lines read so far.
    line: u64,
    /// The format its first line gave.
    format: u64,
    sequence: u64,
    created: u64,
    expires: Option<u64>,
    valid_for: Option<u64>,
    header: Option<Header>,
    last_title: [u8; MAX_TITLE_ID_LEN],
    last_title_len: usize,
    signed: bool,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

const WHAT: &str = "snapshot";

fn bad(field: &'static str, line: u64) -> FormatError {
    FormatError::InvalidField {
        what: WHAT,
        field,
        found: line,
    }
}

/// A decimal u64 in its canonical spelling.
fn number(text: &[u8], field: &'static str, line: u64) -> Result<u64, FormatError> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.iter().all(u8::is_ascii_digit)
        && (text[0] != b'0' || text.len() == 1);
    if !canonical {
        return Err(bad(field, line));
    }
    let mut n: u64 = 0;
    for &c in text {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .ok_or_else(|| bad(field, line))?;
    }
    Ok(n)
}

/// A number, or `never`.
fn number_or_never(
    text: &[u8],
    field: &'static str,
    line: u64,
) -> Result<Option<u64>, FormatError> {
    if text == b"never" {
        Ok(None)
    } else {
        number(text, field, line).map(Some)
    }
}

/// Lower-case hex digits only (the canonical spelling).
fn hex<const N: usize>(
    text: &[u8],
    field: &'static str,
    line: u64,
) -> Result<[u8; N], FormatError> {
    if !text.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad(field, line));
    }
    let mut out = [0u8; N];
    hex_decode(text, &mut out, WHAT, field).map_err(|_| bad(field, line))?;
    Ok(out)
}

/// `key value` with the expected key: the value.
fn keyed<'a>(
    line: &'a [u8],
    key: &str,
    field: &'static str,
    n: u64,
) -> Result<&'a [u8], FormatError> {
    line.strip_prefix(key.as_bytes())
        .and_then(|r| r.strip_prefix(b" "))
        .ok_or_else(|| bad(field, n))
}

impl Parser {
    /// A parser before the first line.
    pub fn new() -> Self {
        Parser {
            line: 0,
            format: 1,
            sequence: 0,
            created: 0,
            expires: None,
            valid_for: None,
            header: None,
            last_title: [0; MAX_TITLE_ID_LEN],
            last_title_len: 0,
            signed: false,
        }
    }

    /// The header, once its lines are in.
    pub fn header(&self) -> Option<Header> {
        self.header
    }

    /// Whether the signature line was read (nothing may follow it).
    pub fn signed(&self) -> bool {
        self.signed
    }

    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.line
    }

    fn header_with(&self, games: GamesLayout) -> Header {
        Header {
            sequence: self.sequence,
            created: self.created,
            expires: self.expires,
            valid_for: self.valid_for,
            games,
        }
    }

    /// Takes the next line (without its `\n`). The error names the line by its number
    /// (`found`).
    pub fn line<'a>(&mut self, text: &'a [u8]) -> Result<Line<'a>, FormatError> {
        self.line += 1;
        let n = self.line;
        if self.signed {
            return Err(bad("line after the signature, at line", n));
        }
        if text.len() > MAX_LINE_LEN {
            return Err(FormatError::LimitExceeded {
                limit: "snapshot line length",
                found: text.len() as u64,
                max: MAX_LINE_LEN as u64,
            });
        }
        match n {
            1 => {
                self.format = match text {
                    t if t == MAGIC_LINE.as_bytes() => 1,
                    t if t == MAGIC_LINE_2.as_bytes() => 2,
                    t => match t
                        .strip_prefix(b"romlib snapshot ")
                        .map(|v| number(v, "", 1))
                    {
                        Some(Ok(v)) => {
                            return Err(FormatError::UnsupportedVersion {
                                what: WHAT,
                                found: u32::try_from(v).unwrap_or(u32::MAX),
                            })
                        }
                        _ => return Err(FormatError::BadMagic { what: WHAT }),
                    },
                };
                return Ok(Line::Header);
            }
            2 => {
                self.sequence = number(
                    keyed(text, "sequence", "`sequence` line", n)?,
                    "sequence",
                    n,
                )?;
                return Ok(Line::Header);
            }
            3 => {
                self.created = number(keyed(text, "created", "`created` line", n)?, "created", n)?;
                return Ok(Line::Header);
            }
            4 => {
                self.expires =
                    number_or_never(keyed(text, "expires", "`expires` line", n)?, "expires", n)?;
                return Ok(Line::Header);
            }
            5 => {
                self.valid_for = number_or_never(
                    keyed(text, "valid-for", "`valid-for` line", n)?,
                    "valid-for",
                    n,
                )?;
                if self.format == 1 {
                    self.header = Some(self.header_with(GamesLayout::Flat));
                }
                return Ok(Line::Header);
            }
            6 if self.format == 2 => {
                let games = keyed(text, "games", "`games` line", n)?;
                let games = core::str::from_utf8(games)
                    .ok()
                    .and_then(GamesLayout::parse)
                    .ok_or_else(|| bad("`games` line (flat or sharded)", n))?;
                self.header = Some(self.header_with(games));
                return Ok(Line::Header);
            }
            _ => {}
        }
        if let Some(rest) = text.strip_prefix(b"signature ") {
            let mut parts = rest.split(|&c| c == b' ');
            let public_key = hex::<32>(parts.next().unwrap_or(b""), "signature key at line", n)?;
            let signature = hex::<64>(parts.next().unwrap_or(b""), "signature at line", n)?;
            if parts.next().is_some() {
                return Err(bad("signature line, at line", n));
            }
            self.signed = true;
            return Ok(Line::Signature {
                public_key,
                signature,
            });
        }
        let rest = keyed(
            text,
            "game",
            "line (neither `game` nor `signature`), at line",
            n,
        )?;
        let mut parts = rest.splitn(6, |&c| c == b' ');
        let mut field = |name: &'static str| parts.next().ok_or_else(|| bad(name, n));
        let revision = number(field("revision at line")?, "revision at line", n)?;
        let manifest_len = number(
            field("manifest length at line")?,
            "manifest length at line",
            n,
        )?;
        let manifest_blake3 = hex::<32>(
            field("manifest BLAKE3 at line")?,
            "manifest BLAKE3 at line",
            n,
        )?;
        let locator_len = number(
            field("locator length at line")?,
            "locator length at line",
            n,
        )?;
        let locator_blake3 = hex::<32>(
            field("locator BLAKE3 at line")?,
            "locator BLAKE3 at line",
            n,
        )?;
        let title = field("title id at line")?;
        let title =
            core::str::from_utf8(title).map_err(|_| bad("title id (not UTF-8) at line", n))?;
        crate::path::check_title_id(title).map_err(|_| bad("title id at line", n))?;
        if manifest_len < (HEADER_LEN + SIGNATURE_BLOCK_LEN) as u64
            || manifest_len > max_manifest_len()
        {
            return Err(bad("manifest length at line", n));
        }
        if locator_len > LocatorHeader::max_locator_len() {
            return Err(bad("locator length at line", n));
        }
        let last = &self.last_title[..self.last_title_len];
        if self.last_title_len > 0 && title.as_bytes() <= last {
            return Err(bad("order of titles (sorted, each once), at line", n));
        }
        self.last_title[..title.len()].copy_from_slice(title.as_bytes());
        self.last_title_len = title.len();
        Ok(Line::Game(Entry {
            title,
            revision,
            manifest_len,
            manifest_blake3,
            locator_len,
            locator_blake3,
        }))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn sample() -> String {
        let h = Header {
            sequence: 7,
            created: 1_767_225_600,
            expires: Some(1_767_312_000),
            valid_for: Some(86_400),
            games: GamesLayout::Flat,
        };
        let mut s = h.to_string();
        for (t, r) in [("Alpha (World)", 3u64), ("beta", 0)] {
            s += &Entry {
                title: t,
                revision: r,
                manifest_len: 300,
                manifest_blake3: [0xab; 32],
                locator_len: 96,
                locator_blake3: [0x01; 32],
            }
            .to_string();
        }
        s += &SignatureLine {
            public_key: [2; 32],
            signature: [3; 64],
        }
        .to_string();
        s
    }

    fn parse(text: &str) -> Result<(Option<Header>, Vec<String>, bool), FormatError> {
        let mut p = Parser::new();
        let mut games = Vec::new();
        for l in text.split_terminator('\n') {
            if let Line::Game(e) = p.line(l.as_bytes())? {
                games.push(e.title.to_string());
            }
        }
        if !p.signed() {
            return Err(bad("signature (missing)", p.lines()));
        }
        Ok((p.header(), games, p.signed()))
    }

    #[test]
    fn spec_figures() {
        // SPEC sections 8 and 15.
        assert_eq!(MAX_LINE_LEN, 334);
        assert_eq!(MESSAGE_LEN, 69);
        assert_eq!(MAX_SNAPSHOT_LEN, 64 << 20);
    }

    #[test]
    fn round_trip() {
        let (h, games, signed) = parse(&sample()).unwrap();
        let h = h.unwrap();
        assert_eq!(
            (h.sequence, h.expires, h.valid_for),
            (7, Some(1_767_312_000), Some(86_400))
        );
        assert_eq!(games, ["Alpha (World)", "beta"]);
        assert!(signed);
        let never = Header {
            sequence: 1,
            created: 0,
            expires: None,
            valid_for: None,
            games: GamesLayout::Flat,
        };
        let mut p = Parser::new();
        for l in never.to_string().split_terminator('\n') {
            assert_eq!(p.line(l.as_bytes()), Ok(Line::Header));
        }
        assert_eq!(p.header(), Some(never));
    }

    #[test]
    fn sharded_is_format_2() {
        let flat = sample();
        let sharded = flat.replacen(MAGIC_LINE, MAGIC_LINE_2, 1).replacen(
            "valid-for 86400\n",
            "valid-for 86400\ngames sharded\n",
            1,
        );
        let h = parse(&sharded).unwrap().0.unwrap();
        assert_eq!(h.games, GamesLayout::Sharded);
        // What the writer writes is what the parser reads.
        let written = Header {
            games: GamesLayout::Sharded,
            ..h
        }
        .to_string();
        assert!(sharded.starts_with(&written), "{written}");
        assert_eq!(parse(&flat).unwrap().0.unwrap().games, GamesLayout::Flat);
        // Format 2 needs its games line, and format 1 has none.
        let missing = flat.replacen(MAGIC_LINE, MAGIC_LINE_2, 1);
        assert!(parse(&missing).is_err());
        let stray = sharded.replacen(MAGIC_LINE_2, MAGIC_LINE, 1);
        assert!(parse(&stray).is_err());
        for bad_games in ["games Sharded", "games", "games sharded ", "games nested"] {
            let t = sharded.replacen("games sharded", bad_games, 1);
            assert!(parse(&t).is_err(), "{bad_games}");
        }
        // A later format says so.
        let later = flat.replacen(MAGIC_LINE, "romlib snapshot 3", 1);
        assert_eq!(
            parse(&later).unwrap_err(),
            FormatError::UnsupportedVersion {
                what: "snapshot",
                found: 3
            }
        );
    }

    #[test]
    fn refusals_never_panic() {
        let s = sample();
        let lines: Vec<&str> = s.split_terminator('\n').collect();
        // Each line replaced by a damaged copy: an error.
        for (i, l) in lines.iter().enumerate() {
            for bad_line in [
                String::new(),
                l.replacen(' ', "  ", 1),
                l.replacen('a', "A", 1),
                l.replacen(' ', " 0", 1),
                std::format!("{l}\t"),
            ] {
                if bad_line == *l {
                    continue;
                }
                let mut v = lines.clone();
                v[i] = &bad_line;
                assert!(parse(&v.join("\n")).is_err(), "line {i}: {bad_line:?}");
            }
        }
        // Out of order, duplicated, after the signature.
        let mut v = lines.clone();
        v.swap(5, 6);
        assert!(parse(&v.join("\n")).is_err());
        let mut v = lines.clone();
        v[6] = v[5];
        assert!(parse(&v.join("\n")).is_err());
        let mut v = lines.clone();
        v.push(lines[5]);
        assert!(parse(&v.join("\n")).is_err());
        // Titles a reader must never take: a path, a dot file, a huge number.
        for t in ["../x", ".hidden", "a/b"] {
            let l = lines[5].replace("Alpha (World)", t);
            let mut v = lines.clone();
            v[5] = &l;
            assert!(parse(&v.join("\n")).is_err(), "{t}");
        }
        let l = lines[1].replace('7', "99999999999999999999999");
        let mut v = lines.clone();
        v[1] = &l;
        assert!(parse(&v.join("\n")).is_err());
    }
}
