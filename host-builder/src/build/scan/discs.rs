//! Multi-file discs in a system folder: which files belong together as one game. A `.cue`
//! or `.gdi` names its tracks, `.ccd` and `.mds` images go with the files of their stem,
//! and an `.m3u` playlist names the discs of a multi-disc game. What a sheet names is
//! resolved against the sheet's own folder, exactly or, failing that, ignoring case (sheets
//! written on Windows often differ from the files in case).

use crate::error::{Error, Result};
use romlib_format::path::fold_cmp;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Largest cue sheet, GD-ROM table or playlist read, in bytes.
const MAX_SHEET_LEN: u64 = 1 << 20;

/// The kinds of sheet, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sheet {
    Cue,
    Gdi,
    Ccd,
    Mds,
    M3u,
}

fn sheet_kind(rel: &str) -> Option<Sheet> {
    let ext = rel.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "cue" => Sheet::Cue,
        "gdi" => Sheet::Gdi,
        "ccd" => Sheet::Ccd,
        "mds" => Sheet::Mds,
        "m3u" => Sheet::M3u,
        _ => return None,
    })
}

/// One game made of several files.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Group {
    /// Its title: the stem of its sheet.
    pub(super) title: String,
    /// Its sheets and the files they name, paths relative to the system folder, sorted.
    pub(super) members: Vec<String>,
    /// Why it cannot be built (a named file is missing...), with the sheet to blame.
    pub(super) problem: Option<(String, String)>,
}

/// The part of `rel` before its last `.`, after its last `/`.
pub(super) fn stem(rel: &str) -> &str {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.rsplit_once('.').map_or(name, |(s, _)| s)
}

/// The folder part of `rel` with its trailing `/` ("" at the top).
fn dir_prefix(rel: &str) -> &str {
    rel.rfind('/').map_or("", |i| &rel[..=i])
}

/// Files of one system folder, looked up exactly or ignoring case.
struct Names<'a> {
    exact: BTreeMap<&'a str, ()>,
    folded: HashMap<String, &'a str>,
}

impl<'a> Names<'a> {
    fn new(rels: &'a [String]) -> Self {
        let exact = rels.iter().map(|r| (r.as_str(), ())).collect();
        let mut folded = HashMap::new();
        for r in rels {
            folded.entry(r.to_lowercase()).or_insert(r.as_str());
        }
        Names { exact, folded }
    }

    fn find(&self, rel: &str) -> Option<&'a str> {
        if let Some((k, _)) = self.exact.get_key_value(rel) {
            return Some(k);
        }
        self.folded.get(&rel.to_lowercase()).copied()
    }
}

/// `name` as written in the sheet at `sheet`, as a path relative to the system folder;
/// `None` when it leaves the folder.
fn resolve(sheet: &str, name: &str) -> Option<String> {
    let name = name.trim().replace('\\', "/");
    if name.is_empty() || name.starts_with('/') || name.contains(':') {
        return None;
    }
    let mut parts: Vec<&str> = dir_prefix(sheet)
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The file names a sheet's text gives, as written.
fn named_in(kind: Sheet, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches('\u{feff}');
        match kind {
            // FILE "Game (Track 1).bin" BINARY  /  FILE track.bin BINARY
            Sheet::Cue => {
                let Some(rest) = line
                    .get(..5)
                    .filter(|k| k.eq_ignore_ascii_case("FILE "))
                    .map(|_| line[5..].trim_start())
                else {
                    continue;
                };
                if let Some(q) = rest.strip_prefix('"') {
                    if let Some(end) = q.find('"') {
                        out.push(q[..end].to_string());
                    }
                } else if let Some((n, _type)) = rest.rsplit_once(char::is_whitespace) {
                    out.push(n.trim().to_string());
                } else if !rest.is_empty() {
                    out.push(rest.to_string());
                }
            }
            // track lba type sector-size file offset; the file may be quoted.
            Sheet::Gdi => {
                let mut rest = line;
                let mut fields = 0;
                while fields < 4 {
                    rest = rest.trim_start();
                    let Some(end) = rest.find(char::is_whitespace) else {
                        rest = "";
                        break;
                    };
                    rest = &rest[end..];
                    fields += 1;
                }
                let rest = rest.trim();
                if fields < 4 || rest.is_empty() {
                    continue;
                }
                let file = match rest.strip_prefix('"') {
                    Some(q) => q.split('"').next().unwrap_or(""),
                    None => rest.split_whitespace().next().unwrap_or(""),
                };
                if !file.is_empty() {
                    out.push(file.to_string());
                }
            }
            Sheet::M3u => {
                if !line.is_empty() && !line.starts_with('#') {
                    out.push(line.to_string());
                }
            }
            Sheet::Ccd | Sheet::Mds => {}
        }
    }
    out
}

/// Appends to `out` the files sheet `rel` names, relative to the system folder; returns
/// what is wrong with it, if anything (the files found so far stay in `out`, so a broken
/// disc's tracks are not taken for games of their own). `read` gives a sheet's text.
fn members(
    rel: &str,
    kind: Sheet,
    names: &Names,
    read: &mut dyn FnMut(&str) -> Result<String>,
    nested: bool,
    out: &mut Vec<String>,
) -> Result<Option<String>> {
    let written: Vec<String> = match kind {
        // Images of the same stem: CloneCD's .img/.sub, Alcohol's .mdf.
        Sheet::Ccd | Sheet::Mds => {
            let s = stem(rel);
            let (required, optional): (&[&str], &[&str]) = match kind {
                Sheet::Ccd => (&["img"], &["sub"]),
                _ => (&["mdf"], &[]),
            };
            let mut problem = None;
            for (ext, needed) in required
                .iter()
                .map(|e| (e, true))
                .chain(optional.iter().map(|e| (e, false)))
            {
                match names.find(&format!("{}{s}.{ext}", dir_prefix(rel))) {
                    Some(f) => out.push(f.to_string()),
                    None if needed => problem = Some(format!("its image {s}.{ext} is missing")),
                    None => {}
                }
            }
            return Ok(problem);
        }
        _ => named_in(kind, &read(rel)?),
    };
    if written.is_empty() {
        return Ok(Some("it names no file".into()));
    }
    let mut problem = None;
    for w in written {
        let Some(target) = resolve(rel, &w) else {
            problem.get_or_insert(format!("it names {w:?}, a path outside its folder"));
            continue;
        };
        let Some(found) = names.find(&target) else {
            problem.get_or_insert(format!("it names {w:?}, which is missing"));
            continue;
        };
        out.push(found.to_string());
        // A playlist names discs, each with its own tracks.
        match sheet_kind(found) {
            Some(Sheet::M3u) if nested => {
                problem.get_or_insert(format!("it names another playlist, {w:?}"));
            }
            Some(inner) if nested => {
                if let Some(p) = members(found, inner, names, read, false, out)? {
                    problem.get_or_insert(format!("disc {w:?}: {p}"));
                }
            }
            _ => {}
        }
    }
    Ok(problem)
}

/// Groups the files `rels` (relative to system folder `dir`, sorted) into multi-file games.
/// Sheets named by a playlist belong to the playlist's game; groups of the same stem (a
/// `.ccd` and a `.cue` of one dump) are one game; a file two games both claim is an error
/// naming both.
pub(super) fn groups(dir: &Path, rels: &[String]) -> Result<Vec<Group>> {
    let names = Names::new(rels);
    let mut read = |rel: &str| -> Result<String> {
        let path = dir.join(rel);
        let bytes = crate::fsio::read_limited(&path, MAX_SHEET_LEN, "disc sheet")?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    // Playlists first: the sheets they name are theirs.
    let mut sheets: Vec<(&str, Sheet)> = rels
        .iter()
        .filter(|r| !r.contains('/'))
        .filter_map(|r| Some((r.as_str(), sheet_kind(r)?)))
        .collect();
    sheets.sort_by_key(|(r, k)| (*k != Sheet::M3u, *r));
    let mut by_title: BTreeMap<String, Group> = BTreeMap::new();
    let mut claimed: HashMap<String, String> = HashMap::new();
    for (rel, kind) in sheets {
        if claimed.contains_key(rel) && kind != Sheet::M3u {
            continue;
        }
        let title = stem(rel).to_string();
        let mut files = vec![rel.to_string()];
        let problem =
            members(rel, kind, &names, &mut read, true, &mut files)?.map(|p| (rel.to_string(), p));
        for f in &files {
            match claimed.get(f) {
                Some(other) if fold_cmp(other, &title).is_ne() => {
                    return Err(Error::input(
                        dir.join(f),
                        format!(
                            "named by two games, {other:?} and {title:?}: a file belongs to one \
                             game; fix the sheets"
                        ),
                    ))
                }
                _ => {
                    claimed.insert(f.clone(), title.clone());
                }
            }
        }
        let g = by_title.entry(title.clone()).or_insert_with(|| Group {
            title,
            members: Vec::new(),
            problem: None,
        });
        g.members.extend(files);
        g.problem = g.problem.take().or(problem);
    }
    Ok(by_title
        .into_values()
        .map(|mut g| {
            g.members.sort();
            g.members.dedup();
            g
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cue_and_gdi_names() {
        let cue = "FILE \"Game (Track 1).bin\" BINARY\r\n  TRACK 01 MODE1/2352\r\n\
                   file track2.bin BINARY\nREM FILE x\n";
        assert_eq!(
            named_in(Sheet::Cue, cue),
            ["Game (Track 1).bin", "track2.bin"]
        );
        let gdi = "3\n1 0 4 2352 track01.bin 0\n2 756 0 2352 \"track 02.raw\" 0\n3 45000 4 2352 track03.bin 0\n";
        assert_eq!(
            named_in(Sheet::Gdi, gdi),
            ["track01.bin", "track 02.raw", "track03.bin"]
        );
        assert_eq!(
            named_in(Sheet::M3u, "#EXTM3U\nA (Disc 1).cue\n\nA (Disc 2).cue\n"),
            ["A (Disc 1).cue", "A (Disc 2).cue"]
        );
    }

    #[test]
    fn paths_stay_in_the_folder() {
        assert_eq!(resolve("a.cue", "b.bin").as_deref(), Some("b.bin"));
        assert_eq!(
            resolve("a.m3u", ".hidden\\d1.cue").as_deref(),
            Some(".hidden/d1.cue")
        );
        assert_eq!(
            resolve(".hidden/d1.cue", "t.bin").as_deref(),
            Some(".hidden/t.bin")
        );
        assert_eq!(
            resolve(".hidden/d1.cue", "../t.bin").as_deref(),
            Some("t.bin")
        );
        assert_eq!(resolve("a.cue", "../x.bin"), None);
        assert_eq!(resolve("a.cue", "/etc/passwd"), None);
        assert_eq!(resolve("a.cue", "C:\\x.bin"), None);
    }
}
