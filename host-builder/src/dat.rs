//! Streaming reader of ROM DAT files: the catalogues (No-Intro, Redump, TOSEC, MAME) that
//! name each game and list its files with their sizes and hashes.
//!
//! Two formats are read, told apart by the first non-blank byte (`<` means XML):
//! - Logiqx XML: `<datafile>` with a `<header>` and `<game>` elements (MAME's `<mame>` and
//!   `<machine>` spelling too);
//! - clrmamepro text: `clrmamepro ( name "..." )`, then `game ( ... rom ( ... ) )` blocks.
//!
//! MAME DATs are hundreds of MiB, so both readers stream: one reusable buffer, one game in
//! memory at a time. Unknown elements, attributes and keys are skipped so that newer or
//! tool-specific DATs still load; anything malformed is an error naming its line.

use crate::error::{Error, Result};
use quick_xml::encoding::Decoder;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::attributes::{Attribute, Attributes};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;
use std::borrow::Cow;
use std::fmt::Display;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

/// The DAT's own description of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatHeader {
    /// Short name, e.g. "Nintendo - Game Boy"; empty when the DAT has no header.
    pub name: String,
    /// Longer description.
    pub description: String,
    /// Version, often a date such as "20240101-123456".
    pub version: String,
}

impl DatHeader {
    /// "name (version)" or just the name: a short label for reports. Empty when the DAT names
    /// itself nowhere; callers then use the file name.
    pub fn label(&self) -> String {
        if self.name.is_empty() || self.version.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, self.version)
        }
    }
}

/// One file of a game as the DAT describes it. Any hash may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatRom {
    /// File name, possibly with folders (`/` or `\`).
    pub name: String,
    /// Size in bytes.
    pub size: Option<u64>,
    /// CRC-32.
    pub crc32: Option<u32>,
    /// MD5.
    pub md5: Option<[u8; 16]>,
    /// SHA-1.
    pub sha1: Option<[u8; 20]>,
    /// SHA-256.
    pub sha256: Option<[u8; 32]>,
    /// Whether the dump is known good.
    pub status: RomStatus,
}

/// How trustworthy a rom's dump is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RomStatus {
    /// An ordinary dump (no status given).
    #[default]
    Good,
    /// Known to be a bad dump: its hashes describe a damaged file.
    BadDump,
    /// Never dumped: no file is expected to match (hashes usually absent).
    NoDump,
    /// Verified by several dumpers.
    Verified,
}

/// One game (or MAME machine) of a DAT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatGame {
    /// The game's name, usually also the name of its folder or archive.
    pub name: String,
    /// Description (often the same as the name).
    pub description: String,
    /// From the first `<release region=..>` (or several joined by ", "), else derived from
    /// the name's No-Intro/TOSEC style parenthesised tags, e.g.
    /// "Foo (USA, Europe) (Rev 1)" -> "USA, Europe"; empty when unknown.
    pub region: String,
    /// The game's files, in DAT order.
    pub roms: Vec<DatRom>,
}

/// Streams a DAT file: calls `on_game` once per game in file order and returns the header.
/// Never holds more than one game in memory.
///
/// `on_game` also receives the header (a default one, with an empty name, when the DAT has
/// none before its games); its errors are returned unchanged.
pub fn read_dat(
    path: &Path,
    on_game: impl FnMut(&DatHeader, DatGame) -> Result<()>,
) -> Result<DatHeader> {
    let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    read_dat_from(file, path, on_game)
}

/// The region named by the first parenthesised group of `name` that holds only region
/// names, e.g. "Foo (USA, Europe) (Rev 1)" -> "USA, Europe", or TOSEC country codes, e.g.
/// "Foo (1990)(Sega)(US-JP)" -> "USA, Japan". Empty when there is none.
pub fn region_from_name(name: &str) -> String {
    let mut rest = name;
    while let Some(open) = rest.find('(') {
        let inside = &rest[open + 1..];
        let Some(close) = inside.find(')') else {
            break;
        };
        let group = &inside[..close];
        if let Some(region) = no_intro_region(group).or_else(|| tosec_region(group)) {
            return region;
        }
        rest = &inside[close + 1..];
    }
    String::new()
}

/// Region names as No-Intro and Redump write them.
const REGIONS: &[&str] = &[
    "World",
    "USA",
    "Europe",
    "Japan",
    "Asia",
    "Australia",
    "Brazil",
    "Canada",
    "China",
    "France",
    "Germany",
    "Hong Kong",
    "Italy",
    "Korea",
    "Netherlands",
    "Spain",
    "Sweden",
    "Taiwan",
    "UK",
    "Russia",
    "Scandinavia",
    "Latin America",
    "Greece",
    "Portugal",
    "Denmark",
    "Finland",
    "Norway",
    "Poland",
    "Mexico",
    "Argentina",
    "Unknown",
];

/// TOSEC's country codes (ISO 3166, upper case) for the regions above.
const TOSEC_CODES: &[(&str, &str)] = &[
    ("AR", "Argentina"),
    ("AS", "Asia"),
    ("AU", "Australia"),
    ("BR", "Brazil"),
    ("CA", "Canada"),
    ("CN", "China"),
    ("DE", "Germany"),
    ("DK", "Denmark"),
    ("ES", "Spain"),
    ("EU", "Europe"),
    ("FI", "Finland"),
    ("FR", "France"),
    ("GB", "UK"),
    ("GR", "Greece"),
    ("HK", "Hong Kong"),
    ("IT", "Italy"),
    ("JP", "Japan"),
    ("KR", "Korea"),
    ("MX", "Mexico"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("PL", "Poland"),
    ("PT", "Portugal"),
    ("RU", "Russia"),
    ("SE", "Sweden"),
    ("TW", "Taiwan"),
    ("US", "USA"),
];

/// "USA, Europe" -> itself (spacing normalised) when every part is a region name.
fn no_intro_region(group: &str) -> Option<String> {
    let parts: Vec<&str> = group.split(',').map(str::trim).collect();
    parts
        .iter()
        .all(|p| REGIONS.contains(p))
        .then(|| parts.join(", "))
}

/// "US-JP" -> "USA, Japan" when every part is a TOSEC country code of a known region.
fn tosec_region(group: &str) -> Option<String> {
    let names: Option<Vec<&str>> = group
        .split('-')
        .map(|code| {
            TOSEC_CODES
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, name)| *name)
        })
        .collect();
    names.map(|n| n.join(", "))
}

/// Size of the read buffers: large enough that reading costs few system calls.
const READ_BUF: usize = 64 << 10;

/// Reads a DAT from any byte source; `path` only names it in errors.
fn read_dat_from<R: Read>(
    src: R,
    path: &Path,
    on_game: impl FnMut(&DatHeader, DatGame) -> Result<()>,
) -> Result<DatHeader> {
    let mut src = LineCounter::new(BufReader::with_capacity(READ_BUF, src));
    let first = src.skip_blank().map_err(|e| Error::io(path, "read", e))?;
    match first {
        None => Err(At::new(path, src.line()).err("the file is empty, not a DAT")),
        Some(b'<') => XmlDat::new(src, path).read(on_game),
        Some(_) => {
            let (src, line) = src.into_parts();
            CmpDat::new(src, line, path).read(on_game)
        }
    }
}

/// Where a problem is: the file and the 1-based line.
#[derive(Clone, Copy)]
struct At<'a> {
    path: &'a Path,
    line: u64,
}

impl<'a> At<'a> {
    fn new(path: &'a Path, line: u64) -> Self {
        At { path, line }
    }

    fn err(self, problem: impl Display) -> Error {
        // Problems quote names from the file and the XML library's own messages: keep the
        // error on one line whatever they contain.
        let problem = problem.to_string().replace(['\n', '\r'], " ");
        Error::input(self.path, format!("line {}: {problem}", self.line))
    }

    /// The file ended before `what`, opened on line `open`, was closed.
    fn cut_short(self, what: &str, open: u64) -> Error {
        self.err(format!(
            "the file ends inside {what} opened on line {open}: it is cut short or unbalanced"
        ))
    }
}

/// A buffered source that counts the newlines consumed from it, so that an error can name
/// its line without re-reading the file.
struct LineCounter<R> {
    inner: BufReader<R>,
    newlines: u64,
}

impl<R: Read> LineCounter<R> {
    fn new(inner: BufReader<R>) -> Self {
        LineCounter { inner, newlines: 0 }
    }

    /// The line of the next unconsumed byte.
    fn line(&self) -> u64 {
        self.newlines + 1
    }

    fn into_parts(self) -> (BufReader<R>, u64) {
        let line = self.line();
        (self.inner, line)
    }

    /// Skips a UTF-8 byte-order mark and blank space. Returns the next byte, left unread, or
    /// `None` at the end of the file.
    fn skip_blank(&mut self) -> io::Result<Option<u8>> {
        // Byte by byte: a source may deliver the mark in pieces.
        for mark in *b"\xEF\xBB\xBF" {
            if self.fill_buf()?.first() != Some(&mark) {
                break;
            }
            self.consume(1);
        }
        loop {
            let buf = self.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    let first = buf[i];
                    self.consume(i);
                    return Ok(Some(first));
                }
                None => {
                    let n = buf.len();
                    self.consume(n);
                }
            }
        }
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        let buffered = self.inner.buffer();
        let done = &buffered[..amt.min(buffered.len())];
        self.newlines += done.iter().filter(|&&b| b == b'\n').count() as u64;
        self.inner.consume(amt);
    }
}

/// Collects a rom's fields as they are read. The first bad value is kept and reported once
/// the whole rom is read, because the rom's name, which the message quotes, may come after.
#[derive(Default)]
struct RomFields {
    rom: DatRom,
    /// The line and description of the first bad value.
    problem: Option<(u64, String)>,
}

impl RomFields {
    /// The keys [`RomFields::set`] uses.
    const KEYS: &[&[u8]] = &[
        b"name", b"size", b"crc", b"md5", b"sha1", b"sha256", b"status", b"flags",
    ];

    /// Takes one key and value, read on `line`; unknown keys are ignored.
    fn set(&mut self, key: &[u8], value: &str, line: u64) {
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
            b"size" => store(&mut rom.size, trimmed.parse().ok()),
            b"crc" => store(&mut rom.crc32, parse_hex(trimmed).map(u32::from_be_bytes)),
            b"md5" => store(&mut rom.md5, parse_hex(trimmed)),
            b"sha1" => store(&mut rom.sha1, parse_hex(trimmed)),
            b"sha256" => store(&mut rom.sha256, parse_hex(trimmed)),
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

    /// The rom, or the error for its first bad value; `at` is where the rom starts.
    fn finish(self, at: At) -> Result<DatRom> {
        if let Some((line, problem)) = self.problem {
            let name = &self.rom.name;
            return Err(At::new(at.path, line).err(format!("rom {name:?}: {problem}")));
        }
        if self.rom.name.is_empty() {
            return Err(at.err("a rom has no name"));
        }
        Ok(self.rom)
    }
}

/// Stores `value` when it parsed; false when it did not.
fn store<T>(slot: &mut Option<T>, value: Option<T>) -> bool {
    let ok = value.is_some();
    if ok {
        *slot = value;
    }
    ok
}

/// `N` bytes from exactly `2N` hex digits of either case.
fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
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

fn hex_digit(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

fn parse_status(s: &str) -> Option<RomStatus> {
    match s.to_ascii_lowercase().as_str() {
        "good" => Some(RomStatus::Good),
        "baddump" => Some(RomStatus::BadDump),
        "nodump" => Some(RomStatus::NoDump),
        "verified" => Some(RomStatus::Verified),
        _ => None,
    }
}

/// Adds a `<release>` region unless it is empty or already listed.
fn add_region(regions: &mut Vec<String>, region: Option<String>) {
    if let Some(r) = region {
        if !r.is_empty() && !regions.contains(&r) {
            regions.push(r);
        }
    }
}

// ----- Logiqx XML -----

/// How the XML reader treats the next event.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Inside an element the DAT defines: classify child elements, parse their attributes.
    Elements,
    /// Inside a text element: collect text and entities.
    Text,
    /// Inside an unknown element: only track nesting.
    Skip,
}

/// An element start, classified, with the attributes the DAT needs already parsed.
enum Tag {
    Root,
    Header,
    Game(String),
    Rom(DatRom),
    Release(Option<String>),
    Description,
    Name,
    Version,
    Other,
}

/// The part of an XML event the DAT reader needs; owned, so the reader's buffer is free.
enum Ev {
    Open { tag: Tag, empty: bool },
    Close,
    Eof,
    Other,
}

struct XmlDat<'p, R> {
    reader: Reader<LineCounter<R>>,
    /// The event buffer, reused for every event.
    buf: Vec<u8>,
    /// Text collected in [`Mode::Text`].
    text: String,
    /// The name of the last element opened in [`Mode::Elements`], for messages.
    element: String,
    path: &'p Path,
    /// The line where the last event starts.
    line: u64,
}

impl<'p, R: Read> XmlDat<'p, R> {
    fn new(src: LineCounter<R>, path: &'p Path) -> Self {
        XmlDat {
            reader: Reader::from_reader(src),
            buf: Vec::with_capacity(4096),
            text: String::new(),
            element: String::new(),
            path,
            line: 1,
        }
    }

    fn at(&self) -> At<'p> {
        At::new(self.path, self.line)
    }

    fn read(
        mut self,
        mut on_game: impl FnMut(&DatHeader, DatGame) -> Result<()>,
    ) -> Result<DatHeader> {
        let mut header = DatHeader::default();
        if !self.find_root()? {
            return Ok(header);
        }
        let open = self.line;
        loop {
            match self.next(Mode::Elements)? {
                Ev::Open {
                    tag: Tag::Header,
                    empty: false,
                } => header = self.header()?,
                Ev::Open {
                    tag: Tag::Game(name),
                    empty,
                } => {
                    let game = self.game(name, empty)?;
                    on_game(&header, game)?;
                }
                Ev::Open { empty: false, .. } => self.skip()?,
                Ev::Close => return Ok(header),
                Ev::Eof => return Err(self.at().cut_short("<datafile>", open)),
                Ev::Open { .. } | Ev::Other => {}
            }
        }
    }

    /// Reads up to the root element; false when it is empty (`<datafile/>`).
    fn find_root(&mut self) -> Result<bool> {
        loop {
            match self.next(Mode::Elements)? {
                Ev::Open {
                    tag: Tag::Root,
                    empty,
                } => return Ok(!empty),
                Ev::Open { .. } => {
                    let problem = format!(
                        "the root element is <{}>, not <datafile>: not a Logiqx DAT",
                        self.element
                    );
                    return Err(self.at().err(problem));
                }
                Ev::Eof => return Err(self.at().err("no <datafile> element: not a Logiqx DAT")),
                Ev::Close | Ev::Other => {}
            }
        }
    }

    fn header(&mut self) -> Result<DatHeader> {
        let open = self.line;
        let mut header = DatHeader::default();
        loop {
            match self.next(Mode::Elements)? {
                Ev::Open {
                    tag: Tag::Name,
                    empty,
                } => header.name = self.text(empty)?,
                Ev::Open {
                    tag: Tag::Description,
                    empty,
                } => header.description = self.text(empty)?,
                Ev::Open {
                    tag: Tag::Version,
                    empty,
                } => header.version = self.text(empty)?,
                Ev::Open { empty: false, .. } => self.skip()?,
                Ev::Close => return Ok(header),
                Ev::Eof => return Err(self.at().cut_short("<header>", open)),
                Ev::Open { .. } | Ev::Other => {}
            }
        }
    }

    /// Reads the rest of a `<game>` or `<machine>` (nothing more when it is `empty`).
    fn game(&mut self, name: String, empty: bool) -> Result<DatGame> {
        let mut game = DatGame {
            name,
            ..DatGame::default()
        };
        let mut regions = Vec::new();
        if !empty {
            self.game_children(&mut game, &mut regions)?;
        }
        game.region = if regions.is_empty() {
            region_from_name(&game.name)
        } else {
            regions.join(", ")
        };
        Ok(game)
    }

    /// Reads a game's children up to its end tag: its description, roms and release regions.
    fn game_children(&mut self, game: &mut DatGame, regions: &mut Vec<String>) -> Result<()> {
        let open = self.line;
        loop {
            match self.next(Mode::Elements)? {
                Ev::Open {
                    tag: Tag::Description,
                    empty,
                } => game.description = self.text(empty)?,
                Ev::Open {
                    tag: Tag::Rom(rom),
                    empty,
                } => {
                    game.roms.push(rom);
                    if !empty {
                        self.skip()?;
                    }
                }
                Ev::Open {
                    tag: Tag::Release(region),
                    empty,
                } => {
                    add_region(regions, region);
                    if !empty {
                        self.skip()?;
                    }
                }
                Ev::Open { empty: false, .. } => self.skip()?,
                Ev::Close => return Ok(()),
                Ev::Eof => {
                    let what = format!("game {:?}", game.name);
                    return Err(self.at().cut_short(&what, open));
                }
                Ev::Open { .. } | Ev::Other => {}
            }
        }
    }

    /// The text of the element just opened (nothing when it is `empty`), entities resolved
    /// and surrounding blank space trimmed; child elements are skipped.
    fn text(&mut self, empty: bool) -> Result<String> {
        self.text.clear();
        if !empty {
            self.collect_text()?;
        }
        Ok(self.text.trim().to_owned())
    }

    /// Collects text into `self.text` up to the end tag of the element just opened.
    fn collect_text(&mut self) -> Result<()> {
        let open = self.line;
        loop {
            match self.next(Mode::Text)? {
                Ev::Open { empty: false, .. } => self.skip()?,
                Ev::Close => return Ok(()),
                Ev::Eof => return Err(self.at().cut_short("a text element", open)),
                Ev::Open { .. } | Ev::Other => {}
            }
        }
    }

    /// Skips the rest of the element just opened, children included. A depth count rather
    /// than recursion, so that deep nesting cannot overflow the stack.
    fn skip(&mut self) -> Result<()> {
        let open = self.line;
        let mut depth = 1u64;
        while depth > 0 {
            match self.next(Mode::Skip)? {
                Ev::Open { empty: false, .. } => depth += 1,
                Ev::Close => depth -= 1,
                Ev::Eof => return Err(self.at().cut_short("an element", open)),
                Ev::Open { .. } | Ev::Other => {}
            }
        }
        Ok(())
    }

    /// Reads the next event; `mode` says what to keep of it.
    fn next(&mut self, mode: Mode) -> Result<Ev> {
        // Text is not trimmed, so every markup event starts a read of its own: the line
        // counted before the read is the line of its `<`, where quick-xml's errors point.
        self.line = self.reader.get_ref().line();
        let at = At::new(self.path, self.line);
        let decoder = self.reader.decoder();
        self.buf.clear();
        let event = match self.reader.read_event_into(&mut self.buf) {
            Ok(event) => event,
            Err(e) => return Err(xml_error(at, e)),
        };
        Ok(match event {
            Event::Start(e) => Ev::Open {
                tag: classify(&e, mode, at, decoder, &mut self.element)?,
                empty: false,
            },
            Event::Empty(e) => Ev::Open {
                tag: classify(&e, mode, at, decoder, &mut self.element)?,
                empty: true,
            },
            Event::End(_) => Ev::Close,
            Event::Eof => Ev::Eof,
            Event::Text(t) if mode == Mode::Text => {
                let t = t.xml10_content().map_err(|e| at.err(e))?;
                self.text.push_str(&t);
                Ev::Other
            }
            Event::CData(t) if mode == Mode::Text => {
                self.text.push_str(&t.decode().map_err(|e| at.err(e))?);
                Ev::Other
            }
            Event::GeneralRef(r) if mode == Mode::Text => {
                resolve_ref(&r, &mut self.text, at)?;
                Ev::Other
            }
            _ => Ev::Other,
        })
    }
}

fn xml_error(at: At, e: quick_xml::Error) -> Error {
    match e {
        quick_xml::Error::Io(shared) => {
            let e = Arc::try_unwrap(shared)
                .unwrap_or_else(|shared| io::Error::new(shared.kind(), shared.to_string()));
            Error::io(at.path, "read", e)
        }
        e => at.err(format!("not well-formed XML: {e}")),
    }
}

/// Appends the text of an entity or character reference found in text content.
fn resolve_ref(r: &BytesRef, text: &mut String, at: At) -> Result<()> {
    let bad = |e: &dyn Display| at.err(format!("not well-formed XML: {e}"));
    if let Some(c) = r.resolve_char_ref().map_err(|e| bad(&e))? {
        text.push(c);
        return Ok(());
    }
    let name = r.decode().map_err(|e| bad(&e))?;
    match resolve_predefined_entity(&name) {
        Some(s) => {
            text.push_str(s);
            Ok(())
        }
        None => Err(at.err(format!("unknown entity \"&{name};\""))),
    }
}

/// Classifies an element start; in [`Mode::Elements`] also parses the attributes the DAT
/// needs and records the element's name in `element`.
fn classify(
    e: &BytesStart,
    mode: Mode,
    at: At,
    decoder: Decoder,
    element: &mut String,
) -> Result<Tag> {
    if mode != Mode::Elements {
        return Ok(Tag::Other);
    }
    let name = e.local_name();
    element.clear();
    element.push_str(&String::from_utf8_lossy(name.as_ref()));
    Ok(match name.as_ref() {
        b"datafile" | b"mame" => Tag::Root,
        b"header" => Tag::Header,
        b"game" | b"machine" => match attr(e, b"name", at, decoder)? {
            Some(name) if !name.is_empty() => Tag::Game(name),
            _ => return Err(at.err(format!("<{element}> has no name attribute"))),
        },
        b"rom" => Tag::Rom(rom_from(e, at, decoder)?),
        b"release" => Tag::Release(attr(e, b"region", at, decoder)?),
        b"description" => Tag::Description,
        b"name" => Tag::Name,
        b"version" => Tag::Version,
        _ => Tag::Other,
    })
}

/// The attributes of `e`. Not checked for duplicates: that costs an allocation per element
/// (a third of the time on MAME DATs) and a repeated attribute harms nothing here.
fn attributes<'a>(e: &'a BytesStart) -> Attributes<'a> {
    let mut attributes = e.attributes();
    attributes.with_checks(false);
    attributes
}

/// The unescaped value of attribute `key`, if present.
fn attr(e: &BytesStart, key: &[u8], at: At, decoder: Decoder) -> Result<Option<String>> {
    for a in attributes(e) {
        let a = a.map_err(|err| at.err(format!("not well-formed XML: {err}")))?;
        if a.key.as_ref() == key {
            return Ok(Some(attr_value(&a, at, decoder)?.into_owned()));
        }
    }
    Ok(None)
}

fn rom_from(e: &BytesStart, at: At, decoder: Decoder) -> Result<DatRom> {
    let mut fields = RomFields::default();
    for a in attributes(e) {
        let a = a.map_err(|err| at.err(format!("not well-formed XML: {err}")))?;
        // MAME's region, offset etc. are not worth unescaping.
        if RomFields::KEYS.contains(&a.key.as_ref()) {
            fields.set(a.key.as_ref(), &attr_value(&a, at, decoder)?, at.line);
        }
    }
    fields.finish(at)
}

fn attr_value<'a>(a: &Attribute<'a>, at: At, decoder: Decoder) -> Result<Cow<'a, str>> {
    a.decode_and_unescape_value(decoder).map_err(|err| {
        let key = String::from_utf8_lossy(a.key.as_ref());
        at.err(format!("attribute {key}: {err}"))
    })
}

// ----- clrmamepro -----

/// A token of the clrmamepro format; a word's or string's text is in [`Tokens::text`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok {
    Open,
    Close,
    Word,
    Str,
    Eof,
}

/// The clrmamepro tokenizer: bare words, quoted strings and parentheses.
struct Tokens<'p, R> {
    src: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    path: &'p Path,
    /// The line of the next unread byte.
    line: u64,
    /// The line where the last token starts.
    tok_line: u64,
    /// The last word or string, unescaped; bytes, checked as UTF-8 only when used.
    text: Vec<u8>,
}

impl<'p, R: Read> Tokens<'p, R> {
    fn new(src: R, line: u64, path: &'p Path) -> Self {
        Tokens {
            src,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            pos: 0,
            end: 0,
            path,
            line,
            tok_line: line,
            text: Vec::new(),
        }
    }

    /// Where the last token starts.
    fn at(&self) -> At<'p> {
        At::new(self.path, self.tok_line)
    }

    /// Refills the buffer when it is used up; false at the end of the file.
    fn fill(&mut self) -> Result<bool> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = loop {
                match self.src.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io(self.path, "read", e)),
                }
            };
        }
        Ok(self.pos < self.end)
    }

    /// The unread part of the buffer (empty only at the end of the file, after `fill`).
    fn unread(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or_default()
    }

    fn next(&mut self) -> Result<Tok> {
        self.text.clear();
        // Runs of bytes are scanned in the buffer rather than byte by byte through a
        // fallible read: measured 1.6 times faster.
        let first = loop {
            if !self.fill()? {
                self.tok_line = self.line;
                return Ok(Tok::Eof);
            }
            let unread = self.unread();
            let n = unread
                .iter()
                .position(|c| !c.is_ascii_whitespace())
                .unwrap_or(unread.len());
            let newlines = unread[..n].iter().filter(|&&c| c == b'\n').count();
            let first = unread.get(n).copied();
            self.line += newlines as u64;
            self.pos += n;
            if let Some(c) = first {
                break c;
            }
        };
        self.tok_line = self.line;
        match first {
            b'(' => {
                self.pos += 1;
                Ok(Tok::Open)
            }
            b')' => {
                self.pos += 1;
                Ok(Tok::Close)
            }
            b'"' => {
                self.pos += 1;
                self.quoted()?;
                Ok(Tok::Str)
            }
            _ => {
                self.word()?;
                Ok(Tok::Word)
            }
        }
    }

    /// Moves the unread bytes up to the first one matching `stop` into `text`; returns that
    /// byte, left unread, or `None` when the buffer ran out first.
    fn take_until(&mut self, stop: impl Fn(u8) -> bool) -> Option<u8> {
        let unread = self.buf.get(self.pos..self.end).unwrap_or_default();
        let n = unread.iter().position(|&c| stop(c)).unwrap_or(unread.len());
        self.text.extend_from_slice(&unread[..n]);
        self.pos += n;
        unread.get(n).copied()
    }

    /// The rest of a quoted string. `\"` and `\\` are escapes; any other backslash is
    /// kept, as DATs use it in paths. A string cannot span lines, so a missing quote is
    /// reported where it is missing rather than at the end of the file.
    fn quoted(&mut self) -> Result<()> {
        loop {
            if !self.fill()? {
                return Err(self.at().err("unterminated quoted string"));
            }
            match self.take_until(|c| matches!(c, b'"' | b'\\' | b'\n')) {
                None => {}
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.fill()?;
                    match self.unread().first() {
                        Some(&c @ (b'"' | b'\\')) => {
                            self.text.push(c);
                            self.pos += 1;
                        }
                        _ => self.text.push(b'\\'),
                    }
                }
                Some(_) => return Err(self.at().err("unterminated quoted string")),
            }
        }
    }

    fn word(&mut self) -> Result<()> {
        while self.fill()? {
            let delimiter = |c: u8| c.is_ascii_whitespace() || matches!(c, b'(' | b')' | b'"');
            if self.take_until(delimiter).is_some() {
                break;
            }
        }
        Ok(())
    }

    /// The last word or string as text.
    fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.text).map_err(|_| self.at().err("text is not valid UTF-8"))
    }
}

/// What a top-level clrmamepro block holds.
enum Block {
    Header,
    Game,
    Other,
}

struct CmpDat<'p, R> {
    tokens: Tokens<'p, R>,
    /// The key being read, or the last block name.
    key: Vec<u8>,
}

impl<'p, R: Read> CmpDat<'p, R> {
    fn new(src: R, line: u64, path: &'p Path) -> Self {
        CmpDat {
            tokens: Tokens::new(src, line, path),
            key: Vec::new(),
        }
    }

    fn key(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.key)
    }

    fn read(
        mut self,
        mut on_game: impl FnMut(&DatHeader, DatGame) -> Result<()>,
    ) -> Result<DatHeader> {
        let mut header = DatHeader::default();
        loop {
            let block = match self.tokens.next()? {
                Tok::Eof => return Ok(header),
                Tok::Word => match self.tokens.text.as_slice() {
                    b"clrmamepro" => Block::Header,
                    b"game" | b"machine" | b"resource" => Block::Game,
                    _ => Block::Other,
                },
                Tok::Close => {
                    return Err(self
                        .tokens
                        .at()
                        .err("unexpected \")\": unbalanced parentheses"))
                }
                Tok::Open | Tok::Str => {
                    return Err(self.tokens.at().err("expected a block name such as game"))
                }
            };
            let open = self.tokens.tok_line;
            self.key.clone_from(&self.tokens.text);
            if self.tokens.next()? != Tok::Open {
                let problem = format!("expected \"(\" after {:?}", self.key());
                return Err(self.tokens.at().err(problem));
            }
            match block {
                Block::Header => header = self.header(open)?,
                Block::Game => {
                    let game = self.game(open)?;
                    on_game(&header, game)?;
                }
                Block::Other => self.skip_block(open)?,
            }
        }
    }

    fn header(&mut self, open: u64) -> Result<DatHeader> {
        let what = "the clrmamepro header";
        let mut header = DatHeader::default();
        while self.next_key(open, what)? {
            match self.key.as_slice() {
                b"name" => header.name = self.text_value(open, what)?,
                b"description" => header.description = self.text_value(open, what)?,
                b"version" => header.version = self.text_value(open, what)?,
                _ => self.skip_value(open, what)?,
            }
        }
        Ok(header)
    }

    fn game(&mut self, open: u64) -> Result<DatGame> {
        let what = "a game block";
        let mut game = DatGame::default();
        while self.next_key(open, what)? {
            match self.key.as_slice() {
                b"name" => game.name = self.text_value(open, what)?,
                b"description" => game.description = self.text_value(open, what)?,
                b"rom" => {
                    let rom_open = self.tokens.tok_line;
                    if self.value(open, what)? != Tok::Open {
                        return Err(self.tokens.at().err("expected \"(\" after rom"));
                    }
                    game.roms.push(self.rom(rom_open)?);
                }
                _ => self.skip_value(open, what)?,
            }
        }
        if game.name.is_empty() {
            return Err(At::new(self.tokens.path, open).err("a game block has no name"));
        }
        game.region = region_from_name(&game.name);
        Ok(game)
    }

    fn rom(&mut self, open: u64) -> Result<DatRom> {
        let what = "a rom block";
        let mut fields = RomFields::default();
        while self.next_key(open, what)? {
            if self.value(open, what)? == Tok::Open {
                self.skip_block(self.tokens.tok_line)?;
            } else {
                let line = self.tokens.tok_line;
                fields.set(&self.key, self.tokens.text()?, line);
            }
        }
        fields.finish(At::new(self.tokens.path, open))
    }

    /// Reads the next key of the block `what` opened on line `open` into `self.key`; false
    /// at the block's closing parenthesis.
    fn next_key(&mut self, open: u64, what: &str) -> Result<bool> {
        match self.tokens.next()? {
            Tok::Word => {
                self.key.clone_from(&self.tokens.text);
                Ok(true)
            }
            Tok::Close => Ok(false),
            Tok::Eof => Err(self.tokens.at().cut_short(what, open)),
            Tok::Open => Err(self
                .tokens
                .at()
                .err(format!("expected a key in {what}, found \"(\""))),
            Tok::Str => Err(self.tokens.at().err(format!(
                "expected a key in {what}, found the string {:?}",
                String::from_utf8_lossy(&self.tokens.text)
            ))),
        }
    }

    /// Reads the value of the current key: a word or string (in the tokenizer's text) or
    /// the opening parenthesis of a nested block.
    fn value(&mut self, open: u64, what: &str) -> Result<Tok> {
        match self.tokens.next()? {
            tok @ (Tok::Word | Tok::Str | Tok::Open) => Ok(tok),
            Tok::Close => Err(self
                .tokens
                .at()
                .err(format!("{:?} has no value", self.key()))),
            Tok::Eof => Err(self.tokens.at().cut_short(what, open)),
        }
    }

    fn text_value(&mut self, open: u64, what: &str) -> Result<String> {
        if self.value(open, what)? == Tok::Open {
            let problem = format!("{:?} must be a word or a quoted string", self.key());
            return Err(self.tokens.at().err(problem));
        }
        Ok(self.tokens.text()?.to_owned())
    }

    /// Skips the value of a key the DAT reader does not use, nested blocks included.
    fn skip_value(&mut self, open: u64, what: &str) -> Result<()> {
        if self.value(open, what)? == Tok::Open {
            self.skip_block(self.tokens.tok_line)?;
        }
        Ok(())
    }

    /// Skips to the parenthesis closing the block opened on line `open`. A depth count
    /// rather than recursion, so that deep nesting cannot overflow the stack.
    fn skip_block(&mut self, open: u64) -> Result<()> {
        let mut depth = 1u64;
        while depth > 0 {
            match self.tokens.next()? {
                Tok::Open => depth += 1,
                Tok::Close => depth -= 1,
                Tok::Eof => return Err(self.tokens.at().cut_short("a block", open)),
                Tok::Word | Tok::Str => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const MD5: &str = "0123456789abcdef0123456789abcdef";
    const SHA1: &str = "0123456789abcdef0123456789abcdef01234567";
    const SHA1_UPPER: &str = "89ABCDEF0123456789ABCDEF0123456789ABCDEF";
    const SHA256: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    /// Logiqx XML: the games of [`expected`], then one with releases.
    fn xml_fixture() -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE datafile PUBLIC "-//Logiqx//DTD ROM Management Datafile//EN" "http://www.logiqx.com/Dats/datafile.dtd">
<datafile>
	<header>
		<name>Test &amp; Co</name>
		<description>Test DAT &lt;ok&gt;</description>
		<version>20240101</version>
		<author>someone</author>
		<clrmamepro forcenodump="required"/>
		<romcenter plugin="arcade.dll"/>
	</header>
	<!-- a comment -->
	<game name="Pokémon - Red (USA, Europe) (Rev 1)" cloneof="x" id="12">
		<description>Pokémon &#233; &#x41; R&amp;D &quot;q&quot;</description>
		<rom name="a.bin" size="1024" crc="1234abcd" md5="{MD5}" sha1="{SHA1}" sha256="{SHA256}" status="verified" serial="X"/>
		<rom name="b.bin" size="2048" crc="DEADBEEF"/>
		<rom name="c.bin" sha1="{SHA1_UPPER}"/>
		<rom name="d.bin" size="4096" status="nodump"/>
	</game>
	<machine name="ポケットモンスター 赤 (Japan)" sourcefile="pokemon.cpp">
		<description>ポケットモンスター 赤</description>
		<year>1996</year>
		<softwarelist name="gameboy"><foo bar="1"><rom name="ignored" crc="zz"/></foo></softwarelist>
		<rom name="dir\e.bin" size="1" crc="00000001" region="maincpu" offset="0"><unknown a="b"/></rom>
		<disk name="disk" sha1="{SHA1}"/>
		<device_ref name="z80"/>
	</machine>
	<game name="Tetris (1989)(Nintendo)(US-JP)">
		<description>Tetris</description>
		<rom name="t.bin" size="32768" crc="46df91ad" status="baddump"/>
	</game>
	<game name="Empty"/>
	<game name="Released Game (Japan)">
		<description><![CDATA[a < b]]></description>
		<release name="Released Game" region="USA"/>
		<release name="Released Game" region="EUR"/>
		<release name="Released Game" region="USA"/>
		<rom name="f.bin" size="3" crc="00000002"/>
	</game>
</datafile>
"#
        )
    }

    /// clrmamepro text with the same games as [`expected`].
    fn cmp_fixture() -> String {
        format!(
            r#"clrmamepro (
	name "Test & Co"
	description "Test DAT <ok>"
	version 20240101
	author "someone"
	forcenodump required
)

emulator ( name "x" ( nested ( deeper ) ) )

game (
	name "Pokémon - Red (USA, Europe) (Rev 1)"
	description "Pokémon é A R&D \"q\""
	cloneof x
	rom ( name a.bin size 1024 crc 1234abcd md5 {MD5} sha1 {SHA1} sha256 {SHA256} flags verified serial X )
	rom ( name "b.bin" size 2048 crc DEADBEEF )
	rom ( name c.bin sha1 {SHA1_UPPER} )
	rom ( name d.bin size 4096 flags nodump )
)

machine (
	name "ポケットモンスター 赤 (Japan)"
	description "ポケットモンスター 赤"
	year 1996
	sample ( name x ( deeper ) )
	rom ( name "dir\e.bin" size 1 crc 00000001 region ( a b ) )
	disk ( name disk sha1 {SHA1} )
)

game (
	name "Tetris (1989)(Nintendo)(US-JP)"
	description Tetris
	rom ( name t.bin size 32768 crc 46df91ad status baddump )
)

resource ( name "Empty" )
"#
        )
    }

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        parse_hex(s).unwrap()
    }

    fn expected() -> Vec<DatGame> {
        let rom = |name: &str| DatRom {
            name: name.into(),
            ..DatRom::default()
        };
        vec![
            DatGame {
                name: "Pokémon - Red (USA, Europe) (Rev 1)".into(),
                description: "Pokémon é A R&D \"q\"".into(),
                region: "USA, Europe".into(),
                roms: vec![
                    DatRom {
                        size: Some(1024),
                        crc32: Some(0x1234_abcd),
                        md5: Some(hex(MD5)),
                        sha1: Some(hex(SHA1)),
                        sha256: Some(hex(SHA256)),
                        status: RomStatus::Verified,
                        ..rom("a.bin")
                    },
                    DatRom {
                        size: Some(2048),
                        crc32: Some(0xdead_beef),
                        ..rom("b.bin")
                    },
                    DatRom {
                        sha1: Some(hex(SHA1_UPPER)),
                        ..rom("c.bin")
                    },
                    DatRom {
                        size: Some(4096),
                        status: RomStatus::NoDump,
                        ..rom("d.bin")
                    },
                ],
            },
            DatGame {
                name: "ポケットモンスター 赤 (Japan)".into(),
                description: "ポケットモンスター 赤".into(),
                region: "Japan".into(),
                roms: vec![DatRom {
                    size: Some(1),
                    crc32: Some(1),
                    ..rom("dir\\e.bin")
                }],
            },
            DatGame {
                name: "Tetris (1989)(Nintendo)(US-JP)".into(),
                description: "Tetris".into(),
                region: "USA, Japan".into(),
                roms: vec![DatRom {
                    size: Some(32768),
                    crc32: Some(0x46df_91ad),
                    status: RomStatus::BadDump,
                    ..rom("t.bin")
                }],
            },
            DatGame {
                name: "Empty".into(),
                ..DatGame::default()
            },
        ]
    }

    fn expected_header() -> DatHeader {
        DatHeader {
            name: "Test & Co".into(),
            description: "Test DAT <ok>".into(),
            version: "20240101".into(),
        }
    }

    /// Writes `text` to a temporary file and reads it, also checking that every game is
    /// given the final header.
    fn parse(text: &[u8]) -> Result<(DatHeader, Vec<DatGame>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.dat");
        std::fs::write(&path, text).unwrap();
        let mut games = Vec::new();
        let mut headers = Vec::new();
        let header = read_dat(&path, |h, g| {
            headers.push(h.clone());
            games.push(g);
            Ok(())
        })?;
        assert!(headers.iter().all(|h| *h == header));
        Ok((header, games))
    }

    /// The error for `text`, without the "<path>: " prefix (which is checked).
    fn fails(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.dat");
        std::fs::write(&path, text).unwrap();
        let e = read_dat(&path, |_, _| Ok(())).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        let prefix = format!("{}: ", path.display());
        e.strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{e} does not name {prefix}"))
            .to_owned()
    }

    #[test]
    fn dat_xml() {
        let (header, games) = parse(xml_fixture().as_bytes()).unwrap();
        assert_eq!(header, expected_header());
        assert_eq!(header.label(), "Test & Co (20240101)");
        let want = expected();
        assert_eq!(games[..want.len()], want[..]);
        let released = &games[want.len()];
        assert_eq!(released.description, "a < b");
        // Releases win over the name's "(Japan)".
        assert_eq!(released.region, "USA, EUR");
        assert_eq!(games.len(), want.len() + 1);
    }

    #[test]
    fn dat_clrmamepro() {
        let (header, games) = parse(cmp_fixture().as_bytes()).unwrap();
        assert_eq!(header, expected_header());
        assert_eq!(games, expected());
    }

    #[test]
    fn dat_formats_agree() {
        let (xml_header, mut xml) = parse(xml_fixture().as_bytes()).unwrap();
        let (cmp_header, cmp) = parse(cmp_fixture().as_bytes()).unwrap();
        xml.pop(); // The game with releases, which clrmamepro cannot express.
        assert_eq!(xml_header, cmp_header);
        assert_eq!(xml, cmp);
    }

    #[test]
    fn dat_mame_root_bom_and_no_header() {
        let xml =
            "\u{feff}\n\n<mame build=\"0.262\">\n<machine name=\"pacman\"><rom name=\"p.6e\" \
                   size=\"4096\" crc=\"C1E6AB10\"/></machine>\n</mame>\n";
        let (header, games) = parse(xml.as_bytes()).unwrap();
        assert_eq!(header, DatHeader::default());
        assert_eq!(header.label(), "");
        assert_eq!(games.len(), 1);
        assert_eq!(games[0].roms[0].crc32, Some(0xc1e6_ab10));
        assert_eq!(games[0].region, "");

        let cmp = "\u{feff}  game ( name pacman rom ( name p.6e size 4096 crc c1e6ab10 ) )";
        let (header, cmp_games) = parse(cmp.as_bytes()).unwrap();
        assert_eq!(header, DatHeader::default());
        assert_eq!(cmp_games, games);

        let (_, none) = parse(b"<?xml version=\"1.0\"?>\n<datafile/>\n").unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn dat_header_label() {
        let mut h = DatHeader {
            name: "Sega - Mega Drive".into(),
            ..DatHeader::default()
        };
        assert_eq!(h.label(), "Sega - Mega Drive");
        h.version = "2024".into();
        assert_eq!(h.label(), "Sega - Mega Drive (2024)");
    }

    #[test]
    fn dat_region_from_name() {
        let cases = [
            ("Foo (USA, Europe) (Rev 1)", "USA, Europe"),
            ("Foo (Rev 1) (Japan)", "Japan"),
            ("Foo (En,Fr) (Hong Kong,Taiwan)", "Hong Kong, Taiwan"),
            ("Foo (Beta) (World)", "World"),
            ("Foo (1990)(Sega)(EU)", "Europe"),
            ("Foo (1990)(Sega)(US-GB)[!]", "USA, UK"),
            ("Foo (En) (Rev 1)", ""),
            ("Foo (usa)", ""),
            ("Foo (USA", ""),
            ("Foo", ""),
            ("", ""),
            ("Foo ()", ""),
        ];
        for (name, region) in cases {
            assert_eq!(region_from_name(name), region, "{name}");
        }
    }

    #[test]
    fn dat_errors_xml() {
        let e = fails("<?xml version=\"1.0\"?>\n<datafile>\n  <game name=\"a\">\n    <rom name=\"a.bin\" size=\"1\"/>\n  </gmae>\n</datafile>\n");
        assert!(e.starts_with("line 5: not well-formed XML"), "{e}");

        let e = fails("<datafile>\n  <game name=\"a\">\n    <rom name=\"a.bin\" size=\"1\"");
        assert!(e.starts_with("line 3: not well-formed XML"), "{e}");

        let e = fails("<datafile>\n<game name=\"a\">\n<rom name=\"a.bin\"/>\n");
        assert!(
            e.starts_with("line 4: the file ends inside game \"a\" opened on line 2"),
            "{e}"
        );

        let e = fails("<datafile>\n<header>\n<name>x</name>\n");
        assert!(
            e.starts_with("line 4: the file ends inside <header> opened on line 2"),
            "{e}"
        );

        let e = fails("<datafile>\n<game name=\"a\">\n<rom name=\"a.bin\" crc=\"zz\"/>\n</game>\n</datafile>\n");
        assert_eq!(e, "line 3: rom \"a.bin\": bad crc \"zz\"");

        let e = fails("<datafile>\n<game name=\"a\">\n<rom sha1=\"abc\" name=\"ö.bin\"/>\n</game>\n</datafile>\n");
        assert_eq!(e, "line 3: rom \"ö.bin\": bad sha1 \"abc\"");

        let e = fails(
            "<datafile><game name=\"a\"><rom name=\"a.bin\" size=\"12x\"/></game></datafile>",
        );
        assert_eq!(e, "line 1: rom \"a.bin\": bad size \"12x\"");

        let e = fails("<datafile>\n<game name=\"a\"><rom size=\"1\"/></game></datafile>");
        assert_eq!(e, "line 2: a rom has no name");

        let e = fails("<datafile>\n\n<machine><rom name=\"a\"/></machine></datafile>");
        assert_eq!(e, "line 3: <machine> has no name attribute");

        let e = fails(
            "<datafile>\n<game name=\"a\"><description>x &foo; y</description></game></datafile>",
        );
        assert_eq!(e, "line 2: unknown entity \"&foo;\"");

        let e = fails("<?xml version=\"1.0\"?>\n");
        assert!(e.starts_with("line 2: no <datafile> element"), "{e}");

        let e = fails("<!DOCTYPE html>\n<html><body/></html>");
        assert!(e.starts_with("line 2: the root element is <html>"), "{e}");
    }

    #[test]
    fn dat_errors_clrmamepro() {
        let e = fails("clrmamepro (\n\tname \"x\"\n)\ngame (\n\tname \"a\n)\n");
        assert_eq!(e, "line 5: unterminated quoted string");

        let e = fails("game (\n\tname a\n\trom ( name a.bin size 1 )\n");
        assert!(
            e.starts_with("line 4: the file ends inside a game block opened on line 1"),
            "{e}"
        );

        let e = fails("game ( name a\n\trom ( name a.bin size 1 )\n)\n)\n");
        assert_eq!(e, "line 4: unexpected \")\": unbalanced parentheses");

        let e = fails("game (\n\tname a\n\trom (\n\t\tname a.bin\n\t\tcrc 1234567\n\t)\n)\n");
        assert_eq!(e, "line 5: rom \"a.bin\": bad crc \"1234567\"");

        let e = fails("game ( name a rom ( name a.bin size -1 ) )");
        assert_eq!(e, "line 1: rom \"a.bin\": bad size \"-1\"");

        let e = fails("game ( name a rom ( name a.bin md5 0123456789abcdef0123456789abcdeg ) )");
        assert!(e.starts_with("line 1: rom \"a.bin\": bad md5"), "{e}");

        let e = fails("game ( name a rom ( name a.bin size ) )");
        assert_eq!(e, "line 1: \"size\" has no value");

        let e = fails("\n\ngame name a");
        assert_eq!(e, "line 3: expected \"(\" after \"game\"");

        let e = fails("game ( name a rom \"x\" )");
        assert_eq!(e, "line 1: expected \"(\" after rom");

        let e = fails("game ( rom ( name a.bin ) )");
        assert_eq!(e, "line 1: a game block has no name");
    }

    #[test]
    fn dat_errors_empty_and_io() {
        assert_eq!(fails(""), "line 1: the file is empty, not a DAT");
        assert_eq!(
            fails("\u{feff}\n \n\n"),
            "line 4: the file is empty, not a DAT"
        );
        let missing = PathBuf::from("/nonexistent/romlib/none.dat");
        let e = read_dat(&missing, |_, _| Ok(())).unwrap_err();
        assert!(matches!(e, Error::Io { op: "open", .. }), "{e}");
    }

    #[test]
    fn dat_callback_error_propagates() {
        for text in [xml_fixture(), cmp_fixture()] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("test.dat");
            std::fs::write(&path, text).unwrap();
            let mut calls = 0;
            let e = read_dat(&path, |_, _| {
                calls += 1;
                Err(Error::Usage("stop".into()))
            })
            .unwrap_err();
            assert!(matches!(&e, Error::Usage(m) if m == "stop"), "{e}");
            assert_eq!(calls, 1);
        }
    }

    /// Every prefix of a valid DAT reads or fails, never panics, and never gives an error on
    /// several lines.
    #[test]
    fn dat_truncations_never_panic() {
        let path = Path::new("cut.dat");
        for text in [xml_fixture(), cmp_fixture()] {
            let bytes = text.as_bytes();
            let mut failures = 0;
            for n in 0..=bytes.len() {
                match read_dat_from(&bytes[..n], path, |_, _| Ok(())) {
                    Ok(_) => {}
                    Err(e) => {
                        failures += 1;
                        assert!(!e.to_string().contains('\n'), "{e}");
                    }
                }
            }
            assert!(failures > bytes.len() / 2);
            assert!(read_dat_from(bytes, path, |_, _| Ok(())).is_ok());
        }
    }

    /// Gives one byte per read, so that every token and event straddles buffer boundaries.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(self.0.len()).min(1);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn dat_reads_across_buffer_boundaries() {
        let path = Path::new("t.dat");
        let read = |text: &str| {
            let mut games = Vec::new();
            read_dat_from(Trickle(text.as_bytes()), path, |_, g| {
                games.push(g);
                Ok(())
            })
            .map(|header| (header, games))
        };
        for text in [xml_fixture(), cmp_fixture()] {
            let (header, games) = read(&format!("\u{feff}{text}")).unwrap();
            assert_eq!(header, expected_header());
            assert_eq!(games[..4], expected()[..]);
        }
        let cmp = "game (\n\tname \"a\\\"b\"\n\trom (\n\t\tname a.bin\n\t\tcrc 1234567\n\t)\n)\n";
        let e = read(cmp).unwrap_err().to_string();
        assert_eq!(e, "t.dat: line 5: rom \"a.bin\": bad crc \"1234567\"");
        let xml = "<datafile>\n<game name=\"a\">\n\n<rom name=\"a.bin\" crc=\"zz\"/>\n</game>\n</datafile>\n";
        let e = read(xml).unwrap_err().to_string();
        assert_eq!(e, "t.dat: line 4: rom \"a.bin\": bad crc \"zz\"");
    }

    #[test]
    fn dat_deep_nesting_is_skipped_without_recursion() {
        let depth = 100_000;
        let mut xml = String::from("<datafile><game name=\"a\">");
        xml.push_str(&"<x>".repeat(depth));
        xml.push_str(&"</x>".repeat(depth));
        xml.push_str("</game></datafile>");
        let (_, games) = parse(xml.as_bytes()).unwrap();
        assert_eq!(games.len(), 1);

        let cmp = format!(
            "game ( name a x {}{} )",
            "( ".repeat(depth),
            ") ".repeat(depth)
        );
        let (_, games) = parse(cmp.as_bytes()).unwrap();
        assert_eq!(games.len(), 1);
    }
}
