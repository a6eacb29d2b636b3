//! The clrmamepro text DAT reader: `clrmamepro ( name "..." )`, then
//! `game ( ... rom ( ... ) )` blocks.

use super::model::{DatGame, DatHeader};
use super::region::region_from_name;
use super::rom_fields::{RomEntry, RomFields};
use super::source::{At, MAX_DAT_FIELD_LEN, READ_BUF};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::io::{self, Read};
use std::path::Path;

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

    /// Refuses a word or string that grew past [`MAX_DAT_FIELD_LEN`] (checked after each
    /// buffer's worth, so at most one buffer more is ever held).
    fn bounded(&self) -> Result<()> {
        if self.text.len() > MAX_DAT_FIELD_LEN {
            return Err(self.at().err(format!(
                "a word or string longer than {MAX_DAT_FIELD_LEN} bytes (MAX_DAT_FIELD_LEN)"
            )));
        }
        Ok(())
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
                None => self.bounded()?,
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
            self.bounded()?;
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

pub(super) struct CmpDat<'p, R> {
    tokens: Tokens<'p, R>,
    /// The key being read, or the last block name.
    key: Vec<u8>,
}

impl<'p, R: Read> CmpDat<'p, R> {
    pub(super) fn new(src: R, line: u64, path: &'p Path) -> Self {
        CmpDat {
            tokens: Tokens::new(src, line, path),
            key: Vec::new(),
        }
    }

    fn key(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.key)
    }

    pub(super) fn read(
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
                b"author" => header.author = self.text_value(open, what)?,
                b"header" => header.header_skipper = self.text_value(open, what)?,
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
                    match self.rom(rom_open)? {
                        RomEntry::Rom(rom) => game.roms.push(rom),
                        RomEntry::Bad(warning) => game.skipped.push(warning),
                        RomEntry::Part => {}
                    }
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

    fn rom(&mut self, open: u64) -> Result<RomEntry> {
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
