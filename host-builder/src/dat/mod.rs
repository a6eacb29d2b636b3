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
//!
//! [`model`] is what a DAT says, [`read_dat`] reads one; [`xml`] and [`clrmamepro`] are the two readers,
//! [`source`] the line-counting byte source both read from, [`rom_fields`] the parsing of a
//! rom's fields both formats share. [`digests`] computes the hashes DATs name files by,
//! [`matching`] matches games against DATs and [`check`] is `romlib verify --dat`.

pub mod check;
mod clrmamepro;
pub mod digests;
pub mod fixdat;
pub mod headers;
pub mod matching;
pub mod model;
mod region;
mod rom_fields;
mod source;
mod xml;

pub use model::{DatGame, DatHeader, DatRom, RomStatus};
pub use region::region_from_name;

use crate::error::{Error, Result};
use clrmamepro::CmpDat;
use source::{At, LineCounter, READ_BUF};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use xml::XmlDat;

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

/// Reads a DAT from any byte source; `path` only names it in errors.
pub fn read_dat_from<R: Read>(
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
            let head = src.fill_buf().map_err(|e| Error::io(path, "read", e))?;
            if !looks_like_clrmamepro(head) {
                let shown: String = String::from_utf8_lossy(&head[..head.len().min(24)])
                    .chars()
                    .take_while(|c| *c != '\n' && *c != '\r')
                    .collect();
                return Err(At::new(path, src.line()).err(format!(
                    "not a DAT file: it starts with {shown:?}; romlib reads Logiqx XML DATs \
                     (starting with <) and clrmamepro DATs (starting with a block such as \
                     `clrmamepro (` or `game (`)"
                )));
            }
            let (src, line) = src.into_parts();
            CmpDat::new(src, line, path).read(on_game)
        }
    }
}

/// Whether text starts as a clrmamepro DAT does: one of its block names, or any word
/// then `(`. Anything else is refused before parsing, with a message naming the formats,
/// rather than failing deep inside the parser ("expected ( after this").
fn looks_like_clrmamepro(head: &[u8]) -> bool {
    let word = head
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    if matches!(
        &head[..word],
        b"clrmamepro" | b"game" | b"machine" | b"resource" | b"emulator"
    ) {
        return true;
    }
    word > 0
        && head[word..]
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_none_or(|b| *b == b'(')
}

#[cfg(test)]
mod tests {
    use super::rom_fields::parse_hex;
    use super::*;
    use std::io;
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
                skipped: Vec::new(),
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
                skipped: Vec::new(),
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
                skipped: Vec::new(),
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
            author: "someone".into(),
            header_skipper: String::new(),
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

    /// The warnings for the skipped roms of `text`, without the "<path>: " prefix (which is
    /// checked); the reading itself must succeed, and the games still come through.
    fn warned(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warn.dat");
        std::fs::write(&path, text).unwrap();
        let prefix = format!("{}: ", path.display());
        let mut warnings = Vec::new();
        read_dat(&path, |_, g| {
            for w in g.skipped {
                assert!(!w.contains('\n'), "{w}");
                let w = w.strip_prefix(&prefix).unwrap_or_else(|| panic!("{w}"));
                warnings.push(w.to_owned());
            }
            Ok(())
        })
        .unwrap();
        warnings
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

        let w = warned("<datafile>\n<game name=\"a\">\n<rom name=\"a.bin\" crc=\"zz\"/>\n</game>\n</datafile>\n");
        assert_eq!(w, ["line 3: rom \"a.bin\": bad crc \"zz\"; entry skipped"]);

        let w = warned("<datafile>\n<game name=\"a\">\n<rom sha1=\"abc\" name=\"ö.bin\"/>\n</game>\n</datafile>\n");
        assert_eq!(
            w,
            ["line 3: rom \"ö.bin\": bad sha1 \"abc\"; entry skipped"]
        );

        let w = warned(
            "<datafile><game name=\"a\"><rom name=\"a.bin\" size=\"12x\"/></game></datafile>",
        );
        assert_eq!(
            w,
            ["line 1: rom \"a.bin\": bad size \"12x\"; entry skipped"]
        );

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

        let w = warned("game (\n\tname a\n\trom (\n\t\tname a.bin\n\t\tcrc 1234567\n\t)\n)\n");
        assert_eq!(
            w,
            ["line 5: rom \"a.bin\": bad crc \"1234567\"; entry skipped"]
        );

        let w = warned("game ( name a rom ( name a.bin size -1 ) )");
        assert_eq!(w, ["line 1: rom \"a.bin\": bad size \"-1\"; entry skipped"]);

        let w = warned("game ( name a rom ( name a.bin md5 0123456789abcdef0123456789abcdeg ) )");
        assert!(w[0].starts_with("line 1: rom \"a.bin\": bad md5"), "{w:?}");

        let e = fails("game ( name a rom ( name a.bin size ) )");
        assert_eq!(e, "line 1: \"size\" has no value");

        let e = fails("\n\ngame name a");
        assert_eq!(e, "line 3: expected \"(\" after \"game\"");

        // Neither XML nor clrmamepro: said before parsing, naming both formats.
        let e = fails("\n# my notes\nthis is not a dat\n");
        assert!(
            e.starts_with("line 2: not a DAT file: it starts with \"# my notes\""),
            "{e}"
        );
        assert!(
            e.contains("Logiqx XML") && e.contains("clrmamepro ("),
            "{e}"
        );
        let e = fails("ROM list (abc)");
        assert!(e.starts_with("line 1: not a DAT file"), "{e}");

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
        let (_, games) = read(cmp).unwrap();
        assert_eq!(
            games[0].skipped,
            ["t.dat: line 5: rom \"a.bin\": bad crc \"1234567\"; entry skipped"]
        );
        let xml = "<datafile>\n<game name=\"a\">\n\n<rom name=\"a.bin\" crc=\"zz\"/>\n</game>\n</datafile>\n";
        let (_, games) = read(xml).unwrap();
        assert_eq!(
            games[0].skipped,
            ["t.dat: line 4: rom \"a.bin\": bad crc \"zz\"; entry skipped"]
        );
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

    /// Every prefix of a software list reads or fails with one line, never panics.
    #[test]
    fn dat_software_list_truncations_never_panic() {
        let path = Path::new("nes.xml");
        let xml = "<softwarelist name=\"nes\" description=\"d\">\n<software name=\"s\">\n\
                   <description>S</description>\n<part name=\"cart\" interface=\"nes_cart\">\n\
                   <dataarea name=\"prg\" size=\"0x10\">\n<rom name=\"a\" size=\"0x10\" \
                   crc=\"00000001\" offset=\"0\"/>\n<rom size=\"0x10\" offset=\"0x10\" \
                   loadflag=\"continue\"/>\n</dataarea>\n</part>\n</software>\n</softwarelist>\n";
        let bytes = xml.as_bytes();
        for n in 0..=bytes.len() {
            if let Err(e) = read_dat_from(&bytes[..n], path, |_, _| Ok(())) {
                assert!(!e.to_string().contains('\n'), "{e}");
            }
        }
        let mut games = 0;
        read_dat_from(bytes, path, |_, g| {
            games += g.roms.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(games, 1);
    }

    /// A MAME software list as `hash/*.xml` spells it: the list's name and description are
    /// the header; roms in parts and data areas, hex sizes and offsets, `loadflag`
    /// continuations without a name, a `nodump` rom without hashes, a disk area.
    #[test]
    fn dat_software_list() {
        let xml = r#"<?xml version="1.0"?>
<!DOCTYPE softwarelist SYSTEM "softwarelist.dtd">
<softwarelist name="nes" description="Nintendo Entertainment System cartridges">
	<software name="smb" cloneof="x">
		<description>Super Game (World)</description>
		<year>1985</year>
		<publisher>Someone</publisher>
		<info name="serial" value="X-1"/>
		<sharedfeat name="compatibility" value="NTSC"/>
		<part name="cart" interface="nes_cart">
			<feature name="slot" value="nrom"/>
			<dataarea name="prg" size="0x8000">
				<rom name="smb.prg" size="0x8000" crc="5cf548d3" sha1="0123456789abcdef0123456789abcdef01234567" offset="00000"/>
			</dataarea>
			<dataarea name="chr" size="8192">
				<rom name="smb.chr" size="4096" crc="867b51ad" offset="0x0000"/>
				<rom size="4096" offset="0x1000" loadflag="continue"/>
				<rom name="smb.pal" size="32" status="nodump" offset="0"/>
			</dataarea>
		</part>
		<part name="flop" interface="floppy_3_5">
			<diskarea name="flop"><disk name="smb-disk" sha1="0123456789abcdef0123456789abcdef01234567"/></diskarea>
			<dataarea name="extra" size="0x10"><rom name="extra.bin" size="0X10" crc="00000001" loadflag="load16_word_swap"/></dataarea>
		</part>
	</software>
	<software name="empty"><description>Nothing</description><part name="cart" interface="nes_cart"/></software>
</softwarelist>
"#;
        let (header, games) = parse(xml.as_bytes()).unwrap();
        assert_eq!(header.name, "nes");
        assert_eq!(
            header.description,
            "Nintendo Entertainment System cartridges"
        );
        assert_eq!(games.len(), 2);
        let g = &games[0];
        assert_eq!(
            (g.name.as_str(), g.description.as_str()),
            ("smb", "Super Game (World)")
        );
        assert_eq!(g.region, "");
        let names: Vec<_> = g.roms.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["smb.prg", "smb.chr", "smb.pal", "extra.bin"]);
        assert_eq!(g.roms[0].size, Some(0x8000));
        assert_eq!(g.roms[0].crc32, Some(0x5cf5_48d3));
        assert_eq!(g.roms[1].size, Some(4096));
        assert_eq!(g.roms[2].status, RomStatus::NoDump);
        assert_eq!(g.roms[3].size, Some(16));
        assert!(g.skipped.is_empty());
        assert!(games[1].roms.is_empty());
    }

    #[test]
    fn dat_hex_sizes_in_both_formats() {
        let xml = "<datafile><header><name>h</name><clrmamepro header=\"No-Intro_NES.xml\"/></header>\
                   <game name=\"g\"><rom name=\"a\" size=\"0x4010\" crc=\"00000001\"/>\
                   <rom name=\"b\" size=\"0XfF\"/><rom name=\"c\" size=\"16400\"/></game></datafile>";
        let (header, games) = parse(xml.as_bytes()).unwrap();
        assert_eq!(header.header_skipper, "No-Intro_NES.xml");
        let sizes: Vec<_> = games[0].roms.iter().map(|r| r.size).collect();
        assert_eq!(sizes, [Some(0x4010), Some(255), Some(16400)]);
        let cmp = "clrmamepro ( name h header \"No-Intro_NES.xml\" )\ngame ( name g rom ( name a size 0x4010 crc 00000001 ) )";
        let (header, cmp_games) = parse(cmp.as_bytes()).unwrap();
        assert_eq!(header.header_skipper, "No-Intro_NES.xml");
        assert_eq!(cmp_games[0].roms[0].size, Some(0x4010));
        for bad in [
            "0x",
            "0x12g",
            "+5",
            " 1",
            "1.5",
            "0x-1",
            "99999999999999999999",
        ] {
            assert_eq!(rom_fields::parse_size(bad), None, "{bad:?}");
        }
    }

    /// A bad number skips its rom entry, not the DAT: the other roms and games still come.
    #[test]
    fn dat_bad_numbers_skip_only_their_entry() {
        let xml = "<datafile>\n<game name=\"a\">\n<rom name=\"a.bin\" size=\"0x1g\"/>\n\
                   <rom name=\"b.bin\" size=\"2\"/>\n</game>\n<game name=\"b\"><rom name=\"c\" size=\"3\"/></game>\n</datafile>";
        let (_, games) = parse(xml.as_bytes()).unwrap();
        assert_eq!(games.len(), 2);
        assert_eq!(games[0].roms.len(), 1);
        assert_eq!(games[0].roms[0].name, "b.bin");
        assert_eq!(games[0].skipped.len(), 1);
        assert!(games[0].skipped[0]
            .ends_with("line 3: rom \"a.bin\": bad size \"0x1g\"; entry skipped"));
        assert_eq!(games[1].roms.len(), 1);
        // A nameless rom outside a loadflag continuation is still an error.
        let e = fails(
            "<softwarelist name=\"x\"><software name=\"s\"><part name=\"p\"><dataarea name=\"d\">\
                       <rom size=\"1\" offset=\"0\"/></dataarea></part></software></softwarelist>",
        );
        assert_eq!(e, "line 1: a rom has no name");
    }
}
