//! Matching DAT games against games by the hashes the DAT gives.
//!
//! Two directions, two indexes:
//! - [`DatCatalog`] holds the DATs in memory (compactly) while a build names its games:
//!   each built game is matched to the DAT game that covers most of its files.
//! - [`LibraryFiles`] holds the library's per-file hashes, read from the signed manifests
//!   alone, while DATs stream past it for `romlib verify --dat`: a DAT of any size is
//!   checked one game at a time, and no pack is ever opened.

use crate::dat::digests::{hex, DatHashes};
use crate::dat::{read_dat, DatGame, DatRom, RomStatus};
use crate::error::Result;
use romlib_proto::{DatMatch, FileEntry};
use std::collections::HashMap;
use std::hash::Hash;
use std::path::PathBuf;

/// Whether a file of `size` bytes with hashes `h` is the rom: every hash the DAT gives
/// (and the size, when given) must agree.
pub fn rom_fits(rom: &DatRom, size: u64, h: &DatHashes) -> bool {
    rom.size.is_none_or(|s| s == size)
        && rom.crc32.is_none_or(|c| c == h.crc32)
        && rom.md5.is_none_or(|m| m == h.md5)
        && rom.sha1.is_none_or(|s| s == h.sha1)
        && rom.sha256.is_none_or(|s| s == h.sha256)
}

/// Whether a rom is expected to exist (a `nodump` rom was never dumped).
fn dumped(rom: &DatRom) -> bool {
    rom.status != RomStatus::NoDump
        && (rom.crc32.is_some() || rom.md5.is_some() || rom.sha1.is_some() || rom.sha256.is_some())
}

/// A multimap from a hash to entry indexes, as one map plus a chain through the entries
/// (one allocation per map, not one per key).
struct Multi<K> {
    head: HashMap<K, u32>,
    next: Vec<u32>,
}

const END: u32 = u32::MAX;

impl<K: Hash + Eq> Multi<K> {
    fn new() -> Self {
        Self {
            head: HashMap::new(),
            next: Vec::new(),
        }
    }

    fn insert(&mut self, key: K, entry: u32) {
        if self.next.len() <= entry as usize {
            self.next.resize(entry as usize + 1, END);
        }
        let old = self.head.insert(key, entry).unwrap_or(END);
        self.next[entry as usize] = old;
    }

    fn get(&self, key: &K) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.head.get(key).copied().unwrap_or(END);
        std::iter::from_fn(move || {
            if at == END {
                return None;
            }
            let cur = at;
            at = self.next.get(cur as usize).copied().unwrap_or(END);
            Some(cur)
        })
    }
}

/// The four hash indexes, each entry filed under the strongest hash it has.
struct HashIndex {
    sha256: Multi<[u8; 32]>,
    sha1: Multi<[u8; 20]>,
    md5: Multi<[u8; 16]>,
    crc32: Multi<u32>,
}

impl HashIndex {
    fn new() -> Self {
        Self {
            sha256: Multi::new(),
            sha1: Multi::new(),
            md5: Multi::new(),
            crc32: Multi::new(),
        }
    }

    /// Files a rom under the strongest hash its DAT entry gives.
    fn insert_rom(&mut self, rom: &DatRom, entry: u32) {
        if let Some(h) = rom.sha256 {
            self.sha256.insert(h, entry);
        } else if let Some(h) = rom.sha1 {
            self.sha1.insert(h, entry);
        } else if let Some(h) = rom.md5 {
            self.md5.insert(h, entry);
        } else if let Some(h) = rom.crc32 {
            self.crc32.insert(h, entry);
        }
    }

    /// Every entry filed under any of a file's hashes.
    fn candidates<'a>(&'a self, h: &'a DatHashes) -> impl Iterator<Item = u32> + 'a {
        self.sha256
            .get(&h.sha256)
            .chain(self.sha1.get(&h.sha1))
            .chain(self.md5.get(&h.md5))
            .chain(self.crc32.get(&h.crc32))
    }
}

struct CatGame {
    source: u32,
    name: String,
    description: String,
    region: String,
    dumped_roms: u32,
}

/// DAT files loaded for naming games during a build.
pub struct DatCatalog {
    sources: Vec<String>,
    games: Vec<CatGame>,
    /// Rom hashes (names dropped) and the game each belongs to.
    roms: Vec<(DatRom, u32)>,
    index: HashIndex,
    /// Rom entries the DATs' readers skipped (malformed numbers or hashes), one line each.
    pub warnings: Vec<String>,
}

impl DatCatalog {
    /// Reads the DATs (streaming; only hashes and names are kept).
    pub fn load(paths: &[PathBuf]) -> Result<Self> {
        Self::load_with(paths, false)
    }

    /// [`Self::load`], keeping each rom's name when `rom_names` (what `--rename` gives
    /// files; left out otherwise, to keep a large DAT small in memory).
    pub fn load_with(paths: &[PathBuf], rom_names: bool) -> Result<Self> {
        let mut cat = Self {
            sources: Vec::new(),
            games: Vec::new(),
            roms: Vec::new(),
            index: HashIndex::new(),
            warnings: Vec::new(),
        };
        for path in paths {
            let source = cat.sources.len() as u32;
            let header = read_dat(path, |_, game| {
                cat.add(source, game, rom_names);
                Ok(())
            })?;
            let label = header.label();
            cat.sources.push(if label.is_empty() {
                path.display().to_string()
            } else {
                label
            });
        }
        Ok(cat)
    }

    fn add(&mut self, source: u32, mut game: DatGame, rom_names: bool) {
        self.warnings.append(&mut game.skipped);
        let gi = self.games.len() as u32;
        let mut dumped_roms = 0;
        for mut rom in game.roms {
            if !dumped(&rom) {
                continue;
            }
            dumped_roms += 1;
            if !rom_names {
                rom.name = String::new();
            }
            let ri = self.roms.len() as u32;
            self.index.insert_rom(&rom, ri);
            self.roms.push((rom, gi));
        }
        self.games.push(CatGame {
            source,
            name: game.name,
            description: game.description,
            region: game.region,
            dumped_roms,
        });
    }

    /// Games loaded.
    pub fn len(&self) -> usize {
        self.games.len()
    }

    /// Whether no game was loaded.
    pub fn is_empty(&self) -> bool {
        self.games.is_empty()
    }

    /// The DAT game covering most of `files`; ties go to the game named like the title,
    /// then to the one with fewest roms (the closest fit), then to the first in the DATs.
    pub fn best_match(&self, title: &str, files: &[FileEntry]) -> Option<DatMatch> {
        self.best_match_roms(title, files).map(|(m, _)| m)
    }

    /// [`Self::best_match`], with the name the matched DAT game gives each file (`None`
    /// for a file that is none of its roms), `/`-separated.
    pub fn best_match_roms(
        &self,
        title: &str,
        files: &[FileEntry],
    ) -> Option<(DatMatch, Vec<Option<String>>)> {
        let mut votes: HashMap<u32, u32> = HashMap::new();
        // Per file, the roms it is (the whole file, or its part after a header: whichever
        // the DAT lists).
        let mut fits: Vec<Vec<u32>> = Vec::with_capacity(files.len());
        for f in files {
            let mut roms: Vec<u32> = Vec::new();
            for (size, h) in DatHashes::views(f) {
                roms.extend(
                    self.index
                        .candidates(&h)
                        .filter(|&ri| rom_fits(&self.roms[ri as usize].0, size, &h)),
                );
            }
            let mut games: Vec<u32> = roms.iter().map(|&ri| self.roms[ri as usize].1).collect();
            games.sort_unstable();
            games.dedup();
            for g in games {
                *votes.entry(g).or_default() += 1;
            }
            fits.push(roms);
        }
        let (&best, _) = votes.iter().max_by(|a, b| {
            let (ga, gb) = (&self.games[*a.0 as usize], &self.games[*b.0 as usize]);
            a.1.cmp(b.1)
                .then_with(|| (ga.name == title).cmp(&(gb.name == title)))
                .then_with(|| gb.dumped_roms.cmp(&ga.dumped_roms))
                .then_with(|| b.0.cmp(a.0))
        })?;
        let g = &self.games[best as usize];
        let names = fits
            .iter()
            .map(|roms| {
                let ri = roms.iter().find(|&&ri| self.roms[ri as usize].1 == best)?;
                Some(self.roms[*ri as usize].0.name.replace('\\', "/"))
            })
            .collect();
        let m = DatMatch {
            source: self.sources[g.source as usize].clone(),
            name: g.name.clone(),
            description: g.description.clone(),
            region: g.region.clone(),
        };
        Some((m, names))
    }
}

/// One file of a library game.
struct LibFile {
    game: u32,
    path: String,
    size: u64,
    hashes: DatHashes,
}

/// A library game as DAT checking sees it.
#[derive(Debug, Clone)]
pub struct LibGame {
    /// Title id.
    pub title: String,
    /// Display name.
    pub display_name: String,
    /// The DAT name recorded at build time, if any.
    pub dat_name: String,
    /// Files without DAT hashes (built with `--no-dat-hashes`).
    pub unhashed_files: usize,
    /// Files in the manifest.
    pub files: usize,
}

/// The library's files and hashes, from its signed manifests.
pub struct LibraryFiles {
    games: Vec<LibGame>,
    files: Vec<LibFile>,
    /// Files by their own hashes (all four, so any hash a DAT gives finds them).
    by_sha256: Multi<[u8; 32]>,
    by_sha1: Multi<[u8; 20]>,
    by_md5: Multi<[u8; 16]>,
    by_crc: Multi<u32>,
    /// Games by title, display name and recorded DAT name.
    by_name: HashMap<String, u32>,
    /// Games by the names of their files (the last path component): a bad dump whose
    /// hashes match nothing is still found by its rom's name, whatever its title.
    by_file_name: HashMap<String, u32>,
    /// Files of each game: a range of `files`.
    ranges: Vec<std::ops::Range<u32>>,
}

/// How one rom of a DAT game stands in the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RomState {
    /// Present with every hash the DAT gives; `path` is the library file.
    Ok {
        /// The matching file in the library game.
        path: String,
    },
    /// Not in the library game.
    Missing,
    /// A file of that name is there but its size or hashes differ.
    WrongHash {
        /// The library file.
        path: String,
        /// What differs, e.g. "crc32 0badf00d, DAT says 12345678".
        detail: String,
    },
    /// `status="nodump"`: the DAT expects no file.
    NoDump,
}

/// The verdict on one DAT game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GameState {
    /// Every dumped rom is present and correct.
    Complete,
    /// Some roms are present, others missing.
    Incomplete,
    /// At least one rom is present under its name with the wrong size or hash.
    WrongHash,
    /// None of its roms is in the library.
    Missing,
}

impl GameState {
    /// The word reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            GameState::Complete => "complete",
            GameState::Incomplete => "incomplete",
            GameState::WrongHash => "wrong-hash",
            GameState::Missing => "missing",
        }
    }
}

/// One DAT game checked against the library.
#[derive(Debug, Clone)]
pub struct GameCheck {
    /// The DAT game's name.
    pub name: String,
    /// The verdict.
    pub state: GameState,
    /// The library game it was compared with, if any.
    pub library_title: Option<String>,
    /// Each rom's name and state, in DAT order.
    pub roms: Vec<(String, RomState)>,
}

impl LibraryFiles {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            games: Vec::new(),
            files: Vec::new(),
            by_sha256: Multi::new(),
            by_sha1: Multi::new(),
            by_md5: Multi::new(),
            by_crc: Multi::new(),
            by_name: HashMap::new(),
            by_file_name: HashMap::new(),
            ranges: Vec::new(),
        }
    }

    /// Adds one game from its (verified) manifest body.
    pub fn add(&mut self, body: &romlib_proto::Manifest) {
        let gi = self.games.len() as u32;
        let start = self.files.len() as u32;
        let mut unhashed = 0;
        for f in &body.files {
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            self.by_file_name.entry(name.to_string()).or_insert(gi);
            let views = DatHashes::views(f);
            if views.is_empty() {
                unhashed += 1;
            }
            // A headered file is filed twice: as a whole and as its part after the header,
            // so that a DAT listing either finds it.
            for (size, h) in views {
                let fi = self.files.len() as u32;
                self.by_sha256.insert(h.sha256, fi);
                self.by_sha1.insert(h.sha1, fi);
                self.by_md5.insert(h.md5, fi);
                self.by_crc.insert(h.crc32, fi);
                self.files.push(LibFile {
                    game: gi,
                    path: f.path.clone(),
                    size,
                    hashes: h,
                });
            }
        }
        self.ranges.push(start..self.files.len() as u32);
        let dat_name = body
            .dat
            .as_ref()
            .map(|d| d.name.clone())
            .unwrap_or_default();
        for n in [
            &dat_name,
            &body.display_name,
            &body.title_id,
            &body.input_name,
        ] {
            if !n.is_empty() {
                self.by_name.entry(n.clone()).or_insert(gi);
            }
        }
        self.games.push(LibGame {
            title: body.title_id.clone(),
            display_name: body.display_name.clone(),
            dat_name,
            unhashed_files: unhashed,
            files: body.files.len(),
        });
    }

    /// The games added, in order.
    pub fn games(&self) -> &[LibGame] {
        &self.games
    }

    /// Library files that are this rom (every hash the DAT gives agrees).
    fn files_for<'a>(&'a self, rom: &'a DatRom) -> impl Iterator<Item = u32> + 'a {
        let c: Box<dyn Iterator<Item = u32>> = if let Some(h) = &rom.sha256 {
            Box::new(self.by_sha256.get(h))
        } else if let Some(h) = &rom.sha1 {
            Box::new(self.by_sha1.get(h))
        } else if let Some(h) = &rom.md5 {
            Box::new(self.by_md5.get(h))
        } else if let Some(h) = &rom.crc32 {
            Box::new(self.by_crc.get(h))
        } else {
            Box::new(std::iter::empty())
        };
        c.filter(move |&fi| {
            let f = &self.files[fi as usize];
            rom_fits(rom, f.size, &f.hashes)
        })
    }

    /// Checks one DAT game. Returns the check and the index of the library game it was
    /// compared with (so the caller can tell which library games some DAT knows).
    pub fn check(&self, game: &DatGame) -> (GameCheck, Option<u32>) {
        // The library game: one named like the DAT game, else the one holding most roms.
        let chosen = self.by_name.get(&game.name).copied().or_else(|| {
            let mut votes: HashMap<u32, usize> = HashMap::new();
            for rom in game.roms.iter().filter(|r| dumped(r)) {
                let mut gs: Vec<u32> = self
                    .files_for(rom)
                    .map(|fi| self.files[fi as usize].game)
                    .collect();
                gs.sort_unstable();
                gs.dedup();
                for g in gs {
                    *votes.entry(g).or_default() += 1;
                }
            }
            votes
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                .map(|(g, _)| g)
        });
        // Nothing by name or hash: a game holding a file named like one of its roms.
        let chosen = chosen.or_else(|| {
            game.roms.iter().filter(|r| dumped(r)).find_map(|r| {
                let name = r.name.rsplit(['/', '\\']).next().unwrap_or(&r.name);
                self.by_file_name.get(name).copied()
            })
        });
        let mut roms = Vec::with_capacity(game.roms.len());
        let (mut ok, mut missing, mut wrong) = (0, 0, 0);
        for rom in &game.roms {
            let state = if !dumped(rom) {
                RomState::NoDump
            } else if let Some(g) = chosen {
                self.rom_in(rom, g)
            } else {
                RomState::Missing
            };
            match state {
                RomState::Ok { .. } => ok += 1,
                RomState::Missing => missing += 1,
                RomState::WrongHash { .. } => wrong += 1,
                RomState::NoDump => {}
            }
            roms.push((rom.name.clone(), state));
        }
        let state = if wrong > 0 {
            GameState::WrongHash
        } else if missing == 0 {
            GameState::Complete
        } else if ok > 0 {
            GameState::Incomplete
        } else {
            GameState::Missing
        };
        // A game compared only by name, with nothing of it present, is still "known".
        let check = GameCheck {
            name: game.name.clone(),
            state,
            library_title: chosen.map(|g| self.games[g as usize].title.clone()),
            roms,
        };
        (check, chosen)
    }

    fn rom_in(&self, rom: &DatRom, g: u32) -> RomState {
        if let Some(fi) = self
            .files_for(rom)
            .find(|&fi| self.files[fi as usize].game == g)
        {
            return RomState::Ok {
                path: self.files[fi as usize].path.clone(),
            };
        }
        // Same name (the full path, or the last component) but other contents.
        let range = self.ranges[g as usize].clone();
        let same_name = range.map(|fi| &self.files[fi as usize]).find(|f| {
            f.path == rom.name
                || f.path.rsplit('/').next()
                    == Some(rom.name.rsplit(['/', '\\']).next().unwrap_or(""))
        });
        match same_name {
            Some(f) => RomState::WrongHash {
                path: f.path.clone(),
                detail: differences(rom, f.size, &f.hashes),
            },
            None => RomState::Missing,
        }
    }
}

impl Default for LibraryFiles {
    fn default() -> Self {
        Self::new()
    }
}

/// What differs between a DAT rom and a file, e.g. "size 10 (DAT: 12), crc32 ...".
fn differences(rom: &DatRom, size: u64, h: &DatHashes) -> String {
    let mut out = Vec::new();
    if let Some(s) = rom.size.filter(|&s| s != size) {
        out.push(format!("size {size} (DAT: {s})"));
    }
    if let Some(c) = rom.crc32.filter(|&c| c != h.crc32) {
        out.push(format!("crc32 {:08x} (DAT: {c:08x})", h.crc32));
    }
    let mut hash = |name: &str, dat: Option<&[u8]>, ours: &[u8]| {
        if let Some(d) = dat.filter(|d| *d != ours) {
            out.push(format!("{name} {} (DAT: {})", hex(ours), hex(d)));
        }
    };
    hash("md5", rom.md5.as_ref().map(|x| &x[..]), &h.md5);
    hash("sha1", rom.sha1.as_ref().map(|x| &x[..]), &h.sha1);
    hash("sha256", rom.sha256.as_ref().map(|x| &x[..]), &h.sha256);
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, data: &[u8]) -> FileEntry {
        let mut e = FileEntry {
            path: path.into(),
            size: data.len() as u64,
            ..Default::default()
        };
        DatHashes::of(data).fill(&mut e);
        e
    }

    fn rom(name: &str, data: &[u8], which: &str) -> DatRom {
        let h = DatHashes::of(data);
        DatRom {
            name: name.into(),
            size: Some(data.len() as u64),
            crc32: which.contains('c').then_some(h.crc32),
            md5: which.contains('m').then_some(h.md5),
            sha1: which.contains('1').then_some(h.sha1),
            sha256: which.contains('2').then_some(h.sha256),
            status: RomStatus::Good,
        }
    }

    type Files<'a> = &'a [(&'a str, &'a [u8])];

    fn library(games: &[(&str, Files)]) -> LibraryFiles {
        let mut lib = LibraryFiles::new();
        for (title, files) in games {
            lib.add(&romlib_proto::Manifest {
                title_id: title.to_string(),
                display_name: title.to_string(),
                files: files.iter().map(|(p, d)| entry(p, d)).collect(),
                ..Default::default()
            });
        }
        lib
    }

    #[test]
    fn states() {
        let lib = library(&[
            ("a", &[("a.bin", b"alpha"), ("b.bin", b"beta")]),
            ("c", &[("c.bin", b"gamma")]),
        ]);
        let game = |name: &str, roms: Vec<DatRom>| DatGame {
            name: name.into(),
            roms,
            ..Default::default()
        };
        // Complete, matched by hash under other names, with partial hash sets.
        let (c, g) = lib.check(&game(
            "Alpha (World)",
            vec![rom("x.bin", b"alpha", "c"), rom("y.bin", b"beta", "1")],
        ));
        assert_eq!((c.state, g), (GameState::Complete, Some(0)));
        // One missing.
        let (c, _) = lib.check(&game(
            "A",
            vec![rom("a.bin", b"alpha", "cm12"), rom("z.bin", b"zeta", "c")],
        ));
        assert_eq!(c.state, GameState::Incomplete);
        assert_eq!(c.roms[1].1, RomState::Missing);
        // Same name, other bytes: wrong hash, with the difference spelled out.
        let (c, _) = lib.check(&game("c", vec![rom("c.bin", b"delta", "c1")]));
        assert_eq!(c.state, GameState::WrongHash);
        let RomState::WrongHash { detail, .. } = &c.roms[0].1 else {
            panic!("{c:?}")
        };
        assert!(
            detail.contains("crc32") && detail.contains("sha1"),
            "{detail}"
        );
        // Nothing of it there.
        let (c, g) = lib.check(&game("Other", vec![rom("o.bin", b"omega", "c")]));
        assert_eq!((c.state, g), (GameState::Missing, None));
        // nodump roms are not expected.
        let mut nd = rom("n.bin", b"", "c");
        nd.status = RomStatus::NoDump;
        let (c, _) = lib.check(&game("c", vec![rom("c.bin", b"gamma", "c"), nd]));
        assert_eq!(c.state, GameState::Complete);
        assert_eq!(c.roms[1].1, RomState::NoDump);
        // A CRC-32 match whose size differs is not a match: the file of that name is
        // there with the wrong size.
        let mut r = rom("c.bin", b"gamma", "c");
        r.size = Some(99);
        let (c, _) = lib.check(&game("Gamma", vec![r]));
        assert_eq!(c.state, GameState::WrongHash);
        let mut r = rom("zeta.bin", b"gamma", "c");
        r.size = Some(99);
        let (c, _) = lib.check(&game("Zeta", vec![r]));
        assert_eq!(c.state, GameState::Missing);
    }

    /// A headered file matches a DAT entry of the whole file and one of its headerless
    /// part; a file without the field matches only as a whole.
    #[test]
    fn headerless_hashes_match_either_way() {
        let mut rom_bytes = b"NES\x1a".to_vec();
        rom_bytes.resize(16, 0);
        rom_bytes.extend_from_slice(b"program and character data");
        let mut e = entry("game.nes", &rom_bytes);
        let part = DatHashes::of(&rom_bytes[16..]);
        e.headerless = Some(romlib_proto::Headerless {
            detector: "ines".into(),
            header_size: 16,
            size: rom_bytes.len() as u64 - 16,
            crc32: part.crc32,
            md5: part.md5.to_vec(),
            sha1: part.sha1.to_vec(),
            sha256: part.sha256.to_vec(),
        });
        let mut lib = LibraryFiles::new();
        lib.add(&romlib_proto::Manifest {
            title_id: "g".into(),
            files: vec![e.clone()],
            ..Default::default()
        });
        let game = |roms: Vec<DatRom>| DatGame {
            name: "Game (USA)".into(),
            roms,
            ..Default::default()
        };
        for r in [
            rom("Game (USA).nes", &rom_bytes, "c1"),
            rom("Game (USA).nes", &rom_bytes[16..], "c1"),
        ] {
            let (c, g) = lib.check(&game(vec![r]));
            assert_eq!((c.state, g), (GameState::Complete, Some(0)));
        }
        let mut cat = DatCatalog {
            sources: vec!["NES".into()],
            games: Vec::new(),
            roms: Vec::new(),
            index: HashIndex::new(),
            warnings: Vec::new(),
        };
        cat.add(0, game(vec![rom("x.nes", &rom_bytes[16..], "1")]), false);
        assert_eq!(
            cat.best_match("g", &[e.clone()]).unwrap().name,
            "Game (USA)"
        );
        e.headerless = None;
        assert!(cat.best_match("g", &[e]).is_none());
    }

    #[test]
    fn catalog_names_the_best_covering_game() {
        let mut cat = DatCatalog {
            sources: vec!["Test DAT (1)".into()],
            games: Vec::new(),
            roms: Vec::new(),
            index: HashIndex::new(),
            warnings: Vec::new(),
        };
        let g = |name: &str, roms: Vec<DatRom>| DatGame {
            name: name.into(),
            description: format!("{name} desc"),
            region: "Europe".into(),
            roms,
            skipped: Vec::new(),
        };
        cat.add(0, g("Small", vec![rom("a", b"alpha", "c")]), false);
        cat.add(
            0,
            g(
                "Big",
                vec![
                    rom("a", b"alpha", "1"),
                    rom("b", b"beta", "m"),
                    rom("z", b"z", "c"),
                ],
            ),
            false,
        );
        let files = [entry("a.bin", b"alpha"), entry("b.bin", b"beta")];
        let m = cat.best_match("t", &files).unwrap();
        assert_eq!(m.name, "Big");
        assert_eq!(m.source, "Test DAT (1)");
        assert_eq!(m.region, "Europe");
        // A tie goes to the smaller game.
        let m = cat.best_match("t", &files[..1]).unwrap();
        assert_eq!(m.name, "Small");
        assert!(cat.best_match("t", &[entry("q", b"nothing")]).is_none());
    }
}
