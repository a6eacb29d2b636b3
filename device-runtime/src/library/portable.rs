//! Reading a portable file (SPEC "Portable files"): one file holding games' signed
//! manifests, their locators, and exactly the packs and dictionaries they need.
//!
//! Opening reads the footer and streams the directory once, checking every entry's bounds
//! and order; it keeps only a few words per entry. Nothing in the file is trusted: each
//! manifest's signature is checked when it is opened, and every chunk a locator points at is
//! checked against the signed manifest, exactly as for a library directory. The footer's
//! whole-file checksum is checked only by [`Portable::check_checksum`] (`verify`), not on
//! open, for the same reason packs' checksums are not: reading gigabytes to list games
//! would make the file useless on a handheld.

use crate::error::{Error, Result};
use crate::fsio::{file_len, open_existing, read_exact_at};
use romlib_format::path::check_title_id;
use romlib_format::portable::{
    decode_header, Entry, EntryKind, Footer, ENTRY_LEN, FOOTER_LEN, HEADER_LEN,
};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A byte range of the portable file holding a dictionary or a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// Dictionary or pack id.
    pub id: u32,
    /// Where it starts in the file.
    pub offset: u64,
    /// Its length.
    pub len: u64,
}

/// A game of a portable file: where its manifest and locator are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameSection {
    /// Title id (as the directory names it; the manifest must agree).
    pub title: String,
    /// Offset of the manifest file's bytes.
    pub manifest_offset: u64,
    /// Length of the manifest.
    pub manifest_len: u64,
    /// Offset of the locator.
    pub locator_offset: u64,
    /// Length of the locator.
    pub locator_len: u64,
}

/// An open portable file.
#[derive(Debug)]
pub struct Portable {
    path: PathBuf,
    file: File,
    len: u64,
    footer: Footer,
    dicts: Vec<Section>,
    packs: Vec<Section>,
    games: Vec<GameSection>,
}

impl Portable {
    /// Opens a portable file and checks its header, footer and directory.
    pub fn open(path: &Path) -> Result<Self> {
        let file = open_existing(path, "library or portable file")?;
        let len = file_len(&file, path)?;
        let least = (HEADER_LEN + FOOTER_LEN) as u64;
        if len < least {
            return Err(Error::format(
                path,
                romlib_format::FormatError::Truncated {
                    what: "portable file",
                    need: least as usize,
                    got: len as usize,
                },
            ));
        }
        let mut hb = [0u8; HEADER_LEN];
        read_exact_at(&file, &mut hb, 0).map_err(|e| Error::io(path, "read", e))?;
        decode_header(&hb).map_err(|e| Error::format(path, e))?;
        let mut fb = [0u8; FOOTER_LEN];
        read_exact_at(&file, &mut fb, len - FOOTER_LEN as u64)
            .map_err(|e| Error::io(path, "read", e))?;
        let footer = Footer::decode(&fb, len).map_err(|e| Error::format(path, e))?;

        let mut p = Self {
            path: path.to_path_buf(),
            file,
            len,
            footer,
            dicts: Vec::new(),
            packs: Vec::new(),
            games: Vec::new(),
        };
        let mut f = p.file.try_clone().map_err(|e| Error::io(path, "open", e))?;
        f.seek(SeekFrom::Start(footer.directory_offset))
            .map_err(|e| Error::io(path, "seek", e))?;
        let mut rd = BufReader::with_capacity(16 * 1024, f);
        let mut buf = [0u8; ENTRY_LEN];
        let mut last_kind = EntryKind::Dict;
        for n in 0..footer.entry_count {
            rd.read_exact(&mut buf)
                .map_err(|e| Error::io(path, "read directory", e))?;
            let bad =
                |problem: String| Error::manifest(path, format!("directory entry {n}: {problem}"));
            let e = Entry::decode(&buf, footer.directory_offset).map_err(|e| bad(e.to_string()))?;
            if e.kind < last_kind {
                return Err(bad("entries are out of order".into()));
            }
            last_kind = e.kind;
            match e.kind {
                EntryKind::Dict | EntryKind::Pack => {
                    let list = if e.kind == EntryKind::Dict {
                        &mut p.dicts
                    } else {
                        &mut p.packs
                    };
                    if list.last().is_some_and(|s| s.id >= e.id) {
                        return Err(bad(format!("id {} is out of order or repeated", e.id)));
                    }
                    list.push(Section {
                        id: e.id,
                        offset: e.offset,
                        len: e.len,
                    });
                }
                EntryKind::Game => {
                    let title = std::str::from_utf8(e.name())
                        .map_err(|_| bad("title id is not UTF-8".into()))?;
                    check_title_id(title)
                        .map_err(|problem| bad(format!("title id {title:?}: {problem}")))?;
                    if p.games.last().is_some_and(|g| g.title.as_str() >= title) {
                        return Err(bad(format!("game {title:?} is out of order or repeated")));
                    }
                    p.games.push(GameSection {
                        title: title.to_string(),
                        manifest_offset: e.offset,
                        manifest_len: e.len,
                        locator_offset: e.locator_offset,
                        locator_len: e.locator_len,
                    });
                }
            }
        }
        Ok(p)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file (read positionally; never through its cursor).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The file's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file holds no games.
    pub fn is_empty(&self) -> bool {
        self.games.is_empty()
    }

    /// The games, sorted by title id.
    pub fn games(&self) -> &[GameSection] {
        &self.games
    }

    /// The game `title`, if the file holds it.
    pub fn game(&self, title: &str) -> Option<&GameSection> {
        self.games
            .binary_search_by(|g| g.title.as_str().cmp(title))
            .ok()
            .map(|i| &self.games[i])
    }

    /// The packs, sorted by id.
    pub fn packs(&self) -> &[Section] {
        &self.packs
    }

    /// The dictionaries, sorted by id.
    pub fn dicts(&self) -> &[Section] {
        &self.dicts
    }

    /// Pack `id`, if the file holds it.
    pub fn pack(&self, id: u32) -> Option<Section> {
        find(&self.packs, id)
    }

    /// Dictionary `id`, if the file holds it.
    pub fn dict(&self, id: u32) -> Option<Section> {
        find(&self.dicts, id)
    }

    /// Recomputes the BLAKE3 of every byte before the footer and compares it with the
    /// footer's; `progress` is told how many bytes were read as it goes.
    pub fn check_checksum(&self, progress: &dyn Fn(u64)) -> Result<bool> {
        let mut f = self
            .file
            .try_clone()
            .map_err(|e| Error::io(&self.path, "open", e))?;
        f.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(&self.path, "seek", e))?;
        let mut left = self.len - FOOTER_LEN as u64;
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..n])
                .map_err(|e| Error::io(&self.path, "read", e))?;
            h.update(&buf[..n]);
            left -= n as u64;
            progress(n as u64);
        }
        Ok(h.finalize().as_bytes() == &self.footer.checksum)
    }
}

fn find(list: &[Section], id: u32) -> Option<Section> {
    list.binary_search_by_key(&id, |s| s.id)
        .ok()
        .map(|i| list[i])
}
