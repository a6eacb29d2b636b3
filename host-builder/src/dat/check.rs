//! `romlib verify --dat`: a library judged against DAT files from its signed manifests
//! alone. No pack and no index is opened; DATs are streamed one game at a time, so the
//! report is written as it goes and memory does not grow with the DAT.

use crate::dat::fixdat::FixdatWriter;
use crate::dat::matching::{GameCheck, GameState, LibraryFiles, RomState};
use crate::dat::{read_dat, DatRom};
use crate::error::{Error, Result};
use romlib_device::{Library, TrustStore};
use serde_json::json;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Skipped-entry warnings a JSON report lists per DAT (all are counted; a text report
/// prints every one as it streams).
pub const MAX_JSON_WARNINGS: usize = 1000;

/// Counts of one DAT's games by verdict.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// Every dumped rom present and correct.
    pub complete: u64,
    /// Some roms missing.
    pub incomplete: u64,
    /// A rom present with the wrong size or hash.
    pub wrong_hash: u64,
    /// Not in the library.
    pub missing: u64,
    /// Rom entries skipped because a number or hash in them is malformed.
    pub skipped_roms: u64,
}

impl Totals {
    fn add(&mut self, s: GameState) {
        match s {
            GameState::Complete => self.complete += 1,
            GameState::Incomplete => self.incomplete += 1,
            GameState::WrongHash => self.wrong_hash += 1,
            GameState::Missing => self.missing += 1,
        }
    }

    /// Every game complete, and no entry skipped (a skipped rom was not checked).
    fn all_complete(&self) -> bool {
        self.incomplete + self.wrong_hash + self.missing + self.skipped_roms == 0
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "games": self.complete + self.incomplete + self.wrong_hash + self.missing,
            "complete": self.complete,
            "incomplete": self.incomplete,
            "wrong_hash": self.wrong_hash,
            "missing": self.missing,
            "skipped_roms": self.skipped_roms,
        })
    }
}

/// Reads and verifies every manifest; manifests that fail are returned as problems.
fn load_library(lib: &Library, trust: &TrustStore) -> Result<(LibraryFiles, Vec<String>)> {
    if lib.portable().is_none() && !lib.games_dir().is_dir() {
        return Err(Error::library(
            lib.root(),
            "not a romlib library (no games/ folder)",
        ));
    }
    let mut files = LibraryFiles::new();
    let mut problems = Vec::new();
    for title in lib.titles()? {
        match lib.open_manifest(&title).and_then(|m| m.verify(trust)) {
            Ok(m) => files.add(m.body()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    Ok((files, problems))
}

/// Checks the library against each DAT in turn and writes the report (text or JSON) to
/// `out`; with `fixdat`, also writes a DAT of every missing or wrong rom there (published
/// by rename once the check is done). Returns whether every DAT game is complete, no
/// entry was skipped and every manifest verified.
pub fn check_dats(
    lib: &Library,
    trust: &TrustStore,
    dats: &[PathBuf],
    as_json: bool,
    fixdat: Option<&Path>,
    out: &mut dyn Write,
) -> Result<bool> {
    let (files, problems) = load_library(lib, trust)?;
    let mut fix = fixdat.map(FixdatWriter::create).transpose()?;
    let mut sources = Vec::new();
    let werr = |e: std::io::Error| Error::io("<stdout>", "write", e);
    let mut known: BTreeSet<u32> = BTreeSet::new();
    let mut ok = problems.is_empty();
    if as_json {
        write!(out, "{{\"dats\":[").map_err(werr)?;
    }
    for (di, path) in dats.iter().enumerate() {
        let mut totals = Totals::default();
        let mut warnings = Vec::new();
        let mut first = true;
        if as_json {
            let sep = if di > 0 { "," } else { "" };
            write!(
                out,
                "{sep}\n{{\"path\":{},\"games\":[",
                json!(path.display().to_string())
            )
            .map_err(werr)?;
        }
        let mut titled = false;
        let header = read_dat(path, |header, game| {
            if !as_json && !titled && (!game.roms.is_empty() || !game.skipped.is_empty()) {
                writeln!(out, "DAT {} ({})", header.label(), path.display()).map_err(werr)?;
                titled = true;
            }
            totals.skipped_roms += game.skipped.len() as u64;
            for w in &game.skipped {
                if as_json {
                    if warnings.len() < MAX_JSON_WARNINGS {
                        warnings.push(w.clone());
                    }
                } else {
                    writeln!(out, "  warning: {w}").map_err(werr)?;
                }
            }
            if game.roms.is_empty() {
                // Device and BIOS stubs with nothing to dump say nothing about a library.
                return Ok(());
            }
            let (check, chosen) = files.check(&game);
            known.extend(chosen);
            totals.add(check.state);
            let wanted: Vec<&DatRom> = (game.roms.iter().zip(&check.roms))
                .filter(|(_, (_, s))| matches!(s, RomState::Missing | RomState::WrongHash { .. }))
                .map(|(r, _)| r)
                .collect();
            if let Some(fix) = fix.as_mut() {
                fix.add(&game, &wanted)?;
            }
            if as_json {
                let sep = if first { "" } else { "," };
                let wanted = fix.is_some().then_some(wanted.as_slice());
                write!(out, "{sep}\n{}", game_json(&check, wanted)).map_err(werr)?;
            } else {
                writeln!(out, "{}", game_line(&check)).map_err(werr)?;
            }
            first = false;
            Ok(())
        })?;
        ok &= totals.all_complete();
        if as_json {
            write!(
                out,
                "],\"source\":{},\"header_skipper\":{},\"warnings\":{},\"totals\":{}}}",
                json!(header.label()),
                json!(header.header_skipper),
                json!(warnings),
                totals.json()
            )
            .map_err(werr)?;
        } else {
            if !titled {
                writeln!(out, "DAT {} ({})", header.label(), path.display()).map_err(werr)?;
            }
            let skipped = if totals.skipped_roms > 0 {
                format!(
                    ", {} rom entr{} skipped (see the warnings)",
                    totals.skipped_roms,
                    if totals.skipped_roms == 1 { "y" } else { "ies" }
                )
            } else {
                String::new()
            };
            writeln!(
                out,
                "  {}: {} complete, {} incomplete, {} wrong hash, {} missing{skipped}",
                romlib_device::install::count(
                    (totals.complete + totals.incomplete + totals.wrong_hash + totals.missing)
                        as usize,
                    "game",
                    "games"
                ),
                totals.complete,
                totals.incomplete,
                totals.wrong_hash,
                totals.missing
            )
            .map_err(werr)?;
        }
        sources.push((header, path.clone()));
    }
    let fixdat_json = match (fix, fixdat) {
        (Some(fix), Some(path)) => {
            let (games, roms) = (fix.games, fix.roms);
            fix.finish(&sources)?;
            if !as_json {
                writeln!(
                    out,
                    "fixdat: {games} game(s), {roms} rom(s) written to {}",
                    path.display()
                )
                .map_err(werr)?;
            }
            json!({"path": path.display().to_string(), "games": games, "roms": roms})
        }
        _ => serde_json::Value::Null,
    };
    let unknown: Vec<_> = files
        .games()
        .iter()
        .enumerate()
        .filter(|(i, _)| !known.contains(&(*i as u32)))
        .map(|(_, g)| g)
        .collect();
    if as_json {
        let unknown: Vec<_> = unknown
            .iter()
            .map(|g| {
                json!({
                    "title_id": g.title,
                    "display_name": g.display_name,
                    "files_without_dat_hashes": g.unhashed_files,
                })
            })
            .collect();
        writeln!(
            out,
            "],\n\"unknown_games\":{},\n\"problems\":{},\n\"fixdat\":{},\n\"ok\":{ok}}}",
            json!(unknown),
            json!(problems),
            fixdat_json
        )
        .map_err(werr)?;
    } else {
        if !unknown.is_empty() {
            writeln!(out, "library games no DAT knows: {}", unknown.len()).map_err(werr)?;
            for g in &unknown {
                let note = if g.unhashed_files > 0 {
                    " (built without DAT hashes: rebuild it to check it)"
                } else {
                    ""
                };
                writeln!(out, "  {}{note}", g.title).map_err(werr)?;
            }
        }
        for p in &problems {
            writeln!(out, "problem: {p}").map_err(werr)?;
        }
        writeln!(out, "{}", if ok { "OK" } else { "NOT OK" }).map_err(werr)?;
    }
    Ok(ok)
}

fn game_line(c: &GameCheck) -> String {
    let target = c
        .library_title
        .as_ref()
        .map(|t| format!(" -> {t}"))
        .unwrap_or_default();
    let mut line = format!("  {:<10} {}{target}", c.state.as_str(), c.name);
    let missing: Vec<&str> = (c.roms.iter())
        .filter(|(_, s)| *s == RomState::Missing)
        .map(|(n, _)| n.as_str())
        .collect();
    if c.state != GameState::Missing && !missing.is_empty() {
        line += &format!("; missing: {}", missing.join(", "));
    }
    for (name, s) in &c.roms {
        if let RomState::WrongHash { path, detail } = s {
            line += &format!("; {name} is {path} with {detail}");
        }
    }
    line
}

/// A game's JSON: its verdict, each rom's state, and with `--fixdat`, `fixdat`: the roms
/// the fixdat lists for it (those missing or wrong, with the DAT's size and hashes). Only
/// then: it doubles the time a MAME-sized report takes.
fn game_json(c: &GameCheck, wanted: Option<&[&DatRom]>) -> serde_json::Value {
    let roms: Vec<_> = c
        .roms
        .iter()
        .map(|(name, s)| match s {
            RomState::Ok { path } => json!({"name": name, "state": "ok", "path": path}),
            RomState::Missing => json!({"name": name, "state": "missing"}),
            RomState::WrongHash { path, detail } => {
                json!({"name": name, "state": "wrong-hash", "path": path, "detail": detail})
            }
            RomState::NoDump => json!({"name": name, "state": "nodump"}),
        })
        .collect();
    let mut v = json!({
        "name": c.name,
        "state": c.state.as_str(),
        "library_title": c.library_title,
        "roms": roms,
    });
    if let Some(wanted) = wanted {
        v["fixdat"] = wanted.iter().map(|r| rom_json(r)).collect();
    }
    v
}

/// A DAT rom as the DAT gives it.
fn rom_json(r: &DatRom) -> serde_json::Value {
    use crate::dat::digests::hex;
    json!({
        "name": r.name,
        "size": r.size,
        "crc32": r.crc32.map(|c| format!("{c:08x}")),
        "md5": r.md5.map(|h| hex(&h)),
        "sha1": r.sha1.map(|h| hex(&h)),
        "sha256": r.sha256.map(|h| hex(&h)),
    })
}
