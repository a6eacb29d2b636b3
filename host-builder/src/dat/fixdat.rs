//! Fixdats: a Logiqx XML DAT of exactly what a check found missing or wrong, for a
//! collector's download or trading workflow (`romlib verify --dat D --fixdat OUT`).
//!
//! Games are streamed to a hidden body file beside the output as the check goes (a fixdat
//! of a MAME DAT can be as large as the DAT), then the header, which is only known once
//! every DAT has been read, and the body are written to a temporary file that is renamed
//! over the output: a crash or an error leaves no half-written fixdat.

use crate::dat::digests::hex;
use crate::dat::{DatGame, DatHeader, DatRom, RomStatus};
use crate::error::{Error, Result};
use crate::fsio::{rename_synced, temp_path};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What the name of a fixdat's header gets, after its source DAT's name.
pub const FIXDAT_MARK: &str = " (fixdat)";

/// A fixdat being written.
pub struct FixdatWriter {
    path: PathBuf,
    body_path: PathBuf,
    body: Option<BufWriter<File>>,
    /// Games written.
    pub games: u64,
    /// Roms written.
    pub roms: u64,
}

impl FixdatWriter {
    /// Starts a fixdat to be published at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .ok_or_else(|| Error::Usage(format!("--fixdat {}: not a file name", path.display())))?
            .to_string_lossy()
            .into_owned();
        let body_path = path.with_file_name(format!(".{name}.games.tmp"));
        let file = File::create(&body_path).map_err(|e| Error::io(&body_path, "create", e))?;
        Ok(Self {
            path: path.to_path_buf(),
            body_path,
            body: Some(BufWriter::new(file)),
            games: 0,
            roms: 0,
        })
    }

    /// Adds a game with the roms of it that are wanted (nothing when `roms` is empty).
    pub fn add(&mut self, game: &DatGame, roms: &[&DatRom]) -> Result<()> {
        if roms.is_empty() {
            return Ok(());
        }
        let mut s = format!("\t<game name=\"{}\">\n", escape(&game.name));
        if !game.description.is_empty() {
            s += &format!(
                "\t\t<description>{}</description>\n",
                escape(&game.description)
            );
        }
        for rom in roms {
            s += &rom_xml(rom);
        }
        s += "\t</game>\n";
        let body = self
            .body
            .as_mut()
            .expect("a fixdat is written until finished");
        body.write_all(s.as_bytes())
            .map_err(|e| Error::io(&self.body_path, "write", e))?;
        self.games += 1;
        self.roms += roms.len() as u64;
        Ok(())
    }

    /// Writes the header (from the source DATs' headers) and the games, and publishes the
    /// fixdat by rename.
    pub fn finish(mut self, sources: &[(DatHeader, PathBuf)]) -> Result<()> {
        let body = self.body.take().expect("finished once");
        body.into_inner()
            .map_err(|e| Error::io(&self.body_path, "write", e.into_error()))?;
        let tmp = temp_path(&self.path);
        let res = (|| -> std::io::Result<()> {
            let mut out = BufWriter::new(File::create(&tmp)?);
            out.write_all(header_xml(sources).as_bytes())?;
            let mut games = File::open(&self.body_path)?;
            std::io::copy(&mut games, &mut out)?;
            out.write_all(b"</datafile>\n")?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(&self.path, "write", e));
        }
        rename_synced(&tmp, &self.path)
    }
}

impl Drop for FixdatWriter {
    fn drop(&mut self) {
        // The body is scratch whether the fixdat was published or abandoned.
        self.body = None;
        let _ = fs::remove_file(&self.body_path);
    }
}

/// The XML declaration and header: the source DAT's name marked as a fixdat (several DATs'
/// names joined by " + "), its description, version and author, and its header skipper.
fn header_xml(sources: &[(DatHeader, PathBuf)]) -> String {
    let name_of = |(h, p): &(DatHeader, PathBuf)| {
        if h.name.is_empty() {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            h.name.clone()
        }
    };
    let names: Vec<String> = sources.iter().map(name_of).collect();
    let join = |f: fn(&DatHeader) -> &str| {
        let mut v: Vec<&str> = sources.iter().map(|(h, _)| f(h)).collect();
        v.retain(|s| !s.is_empty());
        v.dedup();
        v.join(" + ")
    };
    let mut s = String::from(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE datafile PUBLIC \"-//Logiqx//DTD ROM Management \
         Datafile//EN\" \"http://www.logiqx.com/Dats/datafile.dtd\">\n<datafile>\n\t<header>\n",
    );
    s += &format!(
        "\t\t<name>{}{FIXDAT_MARK}</name>\n",
        escape(&names.join(" + "))
    );
    let description = join(|h| &h.description);
    let description = if description.is_empty() {
        names.join(" + ")
    } else {
        description
    };
    s += &format!(
        "\t\t<description>{}{FIXDAT_MARK}</description>\n",
        escape(&description)
    );
    for (tag, value) in [
        ("version", join(|h| &h.version)),
        ("author", join(|h| &h.author)),
    ] {
        if !value.is_empty() {
            s += &format!("\t\t<{tag}>{}</{tag}>\n", escape(&value));
        }
    }
    let skipper = sources.iter().find(|(h, _)| !h.header_skipper.is_empty());
    if let Some((h, _)) = skipper {
        s += &format!(
            "\t\t<clrmamepro header=\"{}\"/>\n",
            escape(&h.header_skipper)
        );
    }
    s + "\t</header>\n"
}

fn rom_xml(rom: &DatRom) -> String {
    let mut s = format!("\t\t<rom name=\"{}\"", escape(&rom.name));
    if let Some(size) = rom.size {
        s += &format!(" size=\"{size}\"");
    }
    if let Some(crc) = rom.crc32 {
        s += &format!(" crc=\"{crc:08x}\"");
    }
    for (key, h) in [
        ("md5", rom.md5.as_ref().map(|h| &h[..])),
        ("sha1", rom.sha1.as_ref().map(|h| &h[..])),
        ("sha256", rom.sha256.as_ref().map(|h| &h[..])),
    ] {
        if let Some(h) = h {
            s += &format!(" {key}=\"{}\"", hex(h));
        }
    }
    match rom.status {
        RomStatus::BadDump => s += " status=\"baddump\"",
        RomStatus::Verified => s += " status=\"verified\"",
        RomStatus::Good | RomStatus::NoDump => {}
    }
    s + "/>\n"
}

/// Escapes text for XML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixdat_reads_back_as_the_same_games() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fix.xml");
        let header = DatHeader {
            name: "Nintendo - NES <Headered>".into(),
            description: "NES & co".into(),
            version: "2026".into(),
            author: "someone".into(),
            header_skipper: "No-Intro_NES.xml".into(),
        };
        let rom = DatRom {
            name: "a \"b\".nes".into(),
            size: Some(40976),
            crc32: Some(0x0102_0304),
            sha1: Some([7; 20]),
            status: RomStatus::BadDump,
            ..DatRom::default()
        };
        let game = DatGame {
            name: "Game & 'Co' (USA)".into(),
            description: "Game <1>".into(),
            region: "USA".into(),
            roms: vec![rom.clone()],
            skipped: Vec::new(),
        };
        let mut w = FixdatWriter::create(&path).unwrap();
        w.add(&game, &[&rom]).unwrap();
        w.add(&game, &[]).unwrap();
        assert_eq!((w.games, w.roms), (1, 1));
        w.finish(&[(header.clone(), dir.path().join("nes.dat"))])
            .unwrap();
        let mut games = Vec::new();
        let back = crate::dat::read_dat(&path, |_, g| {
            games.push(g);
            Ok(())
        })
        .unwrap();
        assert_eq!(back.name, "Nintendo - NES <Headered> (fixdat)");
        assert_eq!(back.description, "NES & co (fixdat)");
        assert_eq!(back.version, "2026");
        assert_eq!(back.header_skipper, "No-Intro_NES.xml");
        assert_eq!(games, vec![game]);
        // Only the published file is left.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn an_abandoned_fixdat_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fix.xml");
        let w = FixdatWriter::create(&path).unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
