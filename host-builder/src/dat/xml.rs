//! The Logiqx XML DAT reader: `<datafile>` with a `<header>` and `<game>` elements (MAME's
//! `<mame>` and `<machine>` spelling too), and MAME software lists: `<softwarelist>` with
//! `<software>` elements whose roms lie in `<part>/<dataarea>` (or `<diskarea>`). A
//! software is a game; its parts and data areas are flattened into one list of roms, as
//! MAME finds them by name in the software's archive.

use super::model::{DatGame, DatHeader};
use super::region::region_from_name;
use super::rom_fields::{RomEntry, RomFields};
use super::source::{At, LineCounter};
use crate::error::{Error, Result};
use quick_xml::encoding::Decoder;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::attributes::{Attribute, Attributes};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;
use std::borrow::Cow;
use std::fmt::Display;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

/// Adds a `<release>` region unless it is empty or already listed.
fn add_region(regions: &mut Vec<String>, region: Option<String>) {
    if let Some(r) = region {
        if !r.is_empty() && !regions.contains(&r) {
            regions.push(r);
        }
    }
}

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
    /// `<datafile>`, `<mame>`, or a `<softwarelist>` with its header in its attributes.
    Root(Option<DatHeader>),
    Header,
    Game(String),
    /// A software list's `<part>`, `<dataarea>` or `<diskarea>`: its roms are the game's.
    Area,
    Rom(RomEntry),
    /// `<clrmamepro header="..."/>` in the header.
    Skipper(Option<String>),
    Author,
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

pub(super) struct XmlDat<'p, R> {
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
    pub(super) fn new(src: LineCounter<R>, path: &'p Path) -> Self {
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

    pub(super) fn read(
        mut self,
        mut on_game: impl FnMut(&DatHeader, DatGame) -> Result<()>,
    ) -> Result<DatHeader> {
        let (open_root, root_header) = self.find_root()?;
        let mut header = root_header.unwrap_or_default();
        if !open_root {
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

    /// Reads up to the root element; false when it is empty (`<datafile/>`), and the
    /// header a software list gives in its attributes.
    fn find_root(&mut self) -> Result<(bool, Option<DatHeader>)> {
        loop {
            match self.next(Mode::Elements)? {
                Ev::Open {
                    tag: Tag::Root(header),
                    empty,
                } => return Ok((!empty, header)),
                Ev::Open { .. } => {
                    let problem = format!(
                        "the root element is <{}>, not <datafile>, <mame> or <softwarelist>: \
                         not a Logiqx DAT or MAME software list",
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
                Ev::Open {
                    tag: Tag::Author,
                    empty,
                } => header.author = self.text(empty)?,
                Ev::Open {
                    tag: Tag::Skipper(skipper),
                    empty,
                } => {
                    header.header_skipper = skipper.unwrap_or_default();
                    if !empty {
                        self.skip()?;
                    }
                }
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

    /// Reads a game's children up to its end tag: its description, roms (inside software
    /// list parts and data areas too) and release regions.
    fn game_children(&mut self, game: &mut DatGame, regions: &mut Vec<String>) -> Result<()> {
        let open = self.line;
        // Open parts and data areas: a count, not recursion.
        let mut areas = 0u32;
        loop {
            match self.next(Mode::Elements)? {
                Ev::Open {
                    tag: Tag::Description,
                    empty,
                } => game.description = self.text(empty)?,
                Ev::Open {
                    tag: Tag::Area,
                    empty: false,
                } => areas += 1,
                Ev::Open {
                    tag: Tag::Rom(rom),
                    empty,
                } => {
                    match rom {
                        RomEntry::Rom(rom) => game.roms.push(rom),
                        RomEntry::Bad(warning) => game.skipped.push(warning),
                        RomEntry::Part => {}
                    }
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
                Ev::Close if areas > 0 => areas -= 1,
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
        b"datafile" | b"mame" => Tag::Root(None),
        b"softwarelist" => Tag::Root(Some(DatHeader {
            name: attr(e, b"name", at, decoder)?.unwrap_or_default(),
            description: attr(e, b"description", at, decoder)?.unwrap_or_default(),
            ..DatHeader::default()
        })),
        b"header" => Tag::Header,
        b"part" | b"dataarea" | b"diskarea" => Tag::Area,
        b"clrmamepro" => Tag::Skipper(attr(e, b"header", at, decoder)?),
        b"author" => Tag::Author,
        b"game" | b"machine" | b"software" => match attr(e, b"name", at, decoder)? {
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

fn rom_from(e: &BytesStart, at: At, decoder: Decoder) -> Result<RomEntry> {
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
