//! Header skippers: recognising the copier or emulator header at the start of a ROM file
//! that DATs leave out of their hashes (No-Intro's NES, FDS, Lynx and 7800 sets, many SNES
//! sets), so that a build records the hashes of the rest of the file too.
//!
//! Built-in detectors cover the common headers; clrmamepro detector files (the XML that
//! clrmamepro and RomVault read, named in a DAT's `<clrmamepro header="..."/>`) add others.
//! A detector looks only at the first [`MAX_PROBE`] bytes of a file and at its size, name
//! and extension, so the build decides while it streams the file, in one read.

use crate::error::{Error, Result};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::path::Path;

/// Bytes at the start of a file a detector may look at.
pub const MAX_PROBE: usize = 4096;

/// The largest detector file read (real ones are under 2 KiB).
pub const MAX_DETECTOR_FILE: u64 = 1 << 20;

/// One test of a detector rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    /// The bytes at `offset`, combined with `mask` by `op`, equal `value`.
    Data {
        offset: usize,
        value: Vec<u8>,
        mask: Option<(BitOp, Vec<u8>)>,
        result: bool,
    },
    /// The file's size compared with `size` (or, with `None`, whether it is a power of two).
    FileSize {
        size: Option<u64>,
        op: SizeOp,
        result: bool,
    },
    /// The size modulo `modulus` is `rem` (a copier header is what makes it uneven).
    SizeMod { modulus: u64, rem: u64 },
    /// The file's extension (lower case) is one of these.
    Extension(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizeOp {
    Equal,
    Less,
    Greater,
}

/// A detector: when every test passes, the first `header_size` bytes are a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detector {
    /// Its name, recorded in the manifest ("ines", or a detector file's `<name>`).
    pub name: String,
    /// Bytes of header skipped.
    pub header_size: u64,
    tests: Vec<Test>,
}

/// A recognised header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The detector's name.
    pub detector: &'a str,
    /// Bytes of header at the start of the file.
    pub size: u64,
}

fn magic(name: &str, header_size: u64, offset: usize, value: &[u8]) -> Detector {
    Detector {
        name: name.into(),
        header_size,
        tests: vec![Test::Data {
            offset,
            value: value.to_vec(),
            mask: None,
            result: true,
        }],
    }
}

/// The built-in detectors, in the order they are tried.
pub fn builtin() -> Vec<Detector> {
    vec![
        // iNES and NES 2.0 (nesdev wiki, "INES" and "NES 2.0"): "NES" 0x1A, 16 bytes.
        magic("ines", 16, 0, b"NES\x1a"),
        // fwNES FDS images (nesdev wiki, "FDS file format"): "FDS" 0x1A, 16 bytes.
        magic("fds", 16, 0, b"FDS\x1a"),
        // Handy's .lnx (Atari Lynx): "LYNX", 64 bytes.
        magic("lynx", 64, 0, b"LYNX"),
        // A78 (Atari 7800): "ATARI7800" at offset 1, 128 bytes.
        magic("atari7800", 128, 1, b"ATARI7800"),
        // SNES copier header (Super Magicom, Super Wild Card...): 512 bytes before a ROM
        // whose size is a multiple of 1 KiB. That is a guess from the size alone, so it is
        // only made for the extensions SNES dumps use.
        Detector {
            name: "snes-copier".into(),
            header_size: 512,
            tests: vec![
                Test::Extension(&["smc", "sfc", "swc", "fig"]),
                Test::SizeMod {
                    modulus: 1024,
                    rem: 512,
                },
            ],
        },
    ]
}

impl Detector {
    /// Whether `probe` (the first bytes of a file, all of it when shorter than
    /// [`MAX_PROBE`]) of a file of `size` bytes named `name` starts with this header.
    fn matches(&self, probe: &[u8], size: u64, name: &str) -> bool {
        if size <= self.header_size {
            return false;
        }
        self.tests.iter().all(|t| match t {
            Test::Data {
                offset,
                value,
                mask,
                result,
            } => {
                let Some(bytes) = probe.get(*offset..offset + value.len()) else {
                    return !result;
                };
                let equal = match mask {
                    None => bytes == value.as_slice(),
                    Some((op, mask)) => bytes.iter().zip(mask).zip(value).all(|((b, m), v)| {
                        let x = match op {
                            BitOp::And => b & m,
                            BitOp::Or => b | m,
                            BitOp::Xor => b ^ m,
                        };
                        x == *v
                    }),
                };
                equal == *result
            }
            Test::FileSize {
                size: want,
                op,
                result,
            } => {
                let holds = match want {
                    None => size.is_power_of_two(),
                    Some(w) => match op {
                        SizeOp::Equal => size == *w,
                        SizeOp::Less => size < *w,
                        SizeOp::Greater => size > *w,
                    },
                };
                holds == *result
            }
            Test::SizeMod { modulus, rem } => size % modulus == *rem,
            Test::Extension(exts) => {
                let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
                ext.is_some_and(|e| exts.contains(&e.as_str()))
            }
        })
    }
}

/// The detectors a build applies: those of `--header-skipper` files first, then the
/// built-in ones.
#[derive(Debug, Clone)]
pub struct HeaderRules {
    detectors: Vec<Detector>,
}

impl Default for HeaderRules {
    fn default() -> Self {
        Self {
            detectors: builtin(),
        }
    }
}

impl HeaderRules {
    /// The built-in detectors after those read from `files`.
    pub fn load(files: &[std::path::PathBuf]) -> Result<Self> {
        let mut detectors = Vec::new();
        for f in files {
            let text = crate::fsio::read_limited(f, MAX_DETECTOR_FILE, "header skipper")?;
            detectors.extend(parse_detector(&text, f)?);
        }
        detectors.extend(builtin());
        Ok(Self { detectors })
    }

    /// The header `probe` starts with, if a detector recognises one.
    pub fn detect(&self, probe: &[u8], size: u64, name: &str) -> Option<Header<'_>> {
        self.detectors
            .iter()
            .find(|d| d.matches(probe, size, name))
            .map(|d| Header {
                detector: &d.name,
                size: d.header_size,
            })
    }
}

/// Reads a clrmamepro detector file: one [`Detector`] per `<rule>`, named by the file's
/// `<name>`. Only what hashing a headerless part needs is accepted: `operation="none"`
/// and `end_offset="EOF"`; other operations (byte swaps) are refused with the line.
pub fn parse_detector(text: &[u8], path: &Path) -> Result<Vec<Detector>> {
    let mut reader = Reader::from_reader(text);
    let mut buf = Vec::new();
    let mut name = String::new();
    let mut in_name = false;
    let mut saw_root = false;
    let mut rules: Vec<Detector> = Vec::new();
    let mut in_rule = false;
    let mut depth = 0u32;
    enum Kind {
        Empty,
        Other,
    }
    loop {
        let pos = reader.buffer_position() as usize;
        let line = 1 + text[..pos.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        // Problems quote names from the file: keep the error on one line whatever they hold.
        let err = |problem: String| {
            let problem = problem.replace(['\n', '\r'], " ");
            Error::input(path, format!("line {line}: {problem}"))
        };
        buf.clear();
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| err(format!("not well-formed XML: {e}")))?;
        let ev_kind = match &ev {
            Event::Empty(_) => Kind::Empty,
            _ => Kind::Other,
        };
        match ev {
            Event::Start(e) | Event::Empty(e) => {
                let is_empty = matches!(ev_kind, Kind::Empty);
                if !is_empty {
                    depth += 1;
                }
                match e.local_name().as_ref() {
                    b"detector" => saw_root = true,
                    b"name" if !in_rule => in_name = !is_empty,
                    b"rule" => {
                        let a = |k: &[u8]| attr(&e, k).map_err(&err);
                        if let Some(op) = a(b"operation")? {
                            if op != "none" {
                                return Err(err(format!(
                                    "rule operation {op:?} is not supported (only \"none\")"
                                )));
                            }
                        }
                        if let Some(end) = a(b"end_offset")? {
                            if !end.eq_ignore_ascii_case("EOF") {
                                return Err(err(format!(
                                    "rule end_offset {end:?} is not supported (only \"EOF\")"
                                )));
                            }
                        }
                        let start = match a(b"start_offset")? {
                            Some(s) => hex_u64(&s).ok_or_else(|| {
                                err(format!("rule start_offset {s:?} is not a hex number"))
                            })?,
                            None => 0,
                        };
                        rules.push(Detector {
                            name: String::new(),
                            header_size: start,
                            tests: Vec::new(),
                        });
                        in_rule = !is_empty;
                    }
                    test @ (b"data" | b"and" | b"or" | b"xor" | b"file") if in_rule => {
                        let t = parse_test(&e, test).map_err(&err)?;
                        rules.last_mut().expect("in a rule").tests.push(t);
                    }
                    other if in_rule => {
                        return Err(err(format!(
                            "unknown detector test <{}>",
                            String::from_utf8_lossy(other)
                        )))
                    }
                    _ => {}
                }
            }
            Event::Text(t) if in_name => {
                name.push_str(&t.decode().map_err(|e| err(e.to_string()))?);
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                match e.local_name().as_ref() {
                    b"name" => in_name = false,
                    b"rule" => in_rule = false,
                    _ => {}
                }
            }
            Event::Eof if depth > 0 => {
                return Err(err(
                    "not well-formed XML: the file ends inside an element".into()
                ))
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(Error::input(
            path,
            "no <detector> element: not a clrmamepro header skipper",
        ));
    }
    if rules.is_empty() {
        return Err(Error::input(path, "the detector has no <rule>"));
    }
    let name = name.trim();
    let name = if name.is_empty() {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        name.to_owned()
    };
    // The name is recorded in signed manifests, whose text fields readers bound.
    if name.len() > romlib_format::limits::MAX_TEXT_LEN {
        return Err(Error::input(
            path,
            "the detector's <name> is longer than MAX_TEXT_LEN (4096 bytes)",
        ));
    }
    for r in &mut rules {
        r.name.clone_from(&name);
    }
    Ok(rules)
}

fn attr(e: &BytesStart, key: &[u8]) -> std::result::Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|err| format!("not well-formed XML: {err}"))?;
        if a.key.as_ref() == key {
            let v = a
                .unescape_value()
                .map_err(|err| format!("attribute {}: {err}", String::from_utf8_lossy(key)))?;
            return Ok(Some(v.trim().to_owned()));
        }
    }
    Ok(None)
}

fn parse_test(e: &BytesStart, kind: &[u8]) -> std::result::Result<Test, String> {
    let tag = String::from_utf8_lossy(kind).into_owned();
    let result = match attr(e, b"result")?.as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(r) => return Err(format!("<{tag}> result {r:?} is not true or false")),
    };
    if kind == b"file" {
        let size = attr(e, b"size")?.ok_or_else(|| format!("<{tag}> has no size"))?;
        let size = if size.eq_ignore_ascii_case("PO2") {
            None
        } else {
            Some(
                hex_u64(&size)
                    .ok_or_else(|| format!("<file> size {size:?} is not a hex number"))?,
            )
        };
        let op = match attr(e, b"operator")?.as_deref() {
            None | Some("equal") => SizeOp::Equal,
            Some("less") => SizeOp::Less,
            Some("greater") => SizeOp::Greater,
            Some(o) => {
                return Err(format!(
                    "<file> operator {o:?} is not equal, less or greater"
                ))
            }
        };
        return Ok(Test::FileSize { size, op, result });
    }
    let offset = attr(e, b"offset")?.unwrap_or_else(|| "0".into());
    let offset = hex_u64(&offset)
        .and_then(|o| usize::try_from(o).ok())
        .ok_or_else(|| format!("<{tag}> offset {offset:?} is not a hex number"))?;
    let value = attr(e, b"value")?.ok_or_else(|| format!("<{tag}> has no value"))?;
    let value =
        hex_bytes(&value).ok_or_else(|| format!("<{tag}> value {value:?} is not hex bytes"))?;
    if offset + value.len() > MAX_PROBE {
        return Err(format!(
            "<{tag}> looks at byte {} of the file; detectors may look at the first {MAX_PROBE}",
            offset + value.len()
        ));
    }
    let mask = match kind {
        b"data" => None,
        _ => {
            let m = attr(e, b"mask")?.ok_or_else(|| format!("<{tag}> has no mask"))?;
            let m = hex_bytes(&m).ok_or_else(|| format!("<{tag}> mask {m:?} is not hex bytes"))?;
            if m.len() != value.len() {
                return Err(format!("<{tag}> mask and value differ in length"));
            }
            let op = match kind {
                b"and" => BitOp::And,
                b"or" => BitOp::Or,
                _ => BitOp::Xor,
            };
            Some((op, m))
        }
    };
    Ok(Test::Data {
        offset,
        value,
        mask,
        result,
    })
}

/// A number in hex, as detector files write offsets and sizes (no `0x`, though one is
/// accepted).
fn hex_u64(s: &str) -> Option<u64> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| {
            Some(super::rom_fields::hex_digit(p[0])? << 4 | super::rom_fields::hex_digit(p[1])?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headered(magic: &[u8], at: usize, header: usize, body: usize) -> Vec<u8> {
        let mut v = vec![0u8; header + body];
        v[at..at + magic.len()].copy_from_slice(magic);
        v
    }

    #[test]
    fn builtin_detectors() {
        let r = HeaderRules::default();
        let cases: [(&[u8], usize, usize, &str, &str); 4] = [
            (b"NES\x1a", 0, 16, "ines", "a.nes"),
            (b"FDS\x1a", 0, 16, "fds", "a.fds"),
            (b"LYNX", 0, 64, "lynx", "a.lnx"),
            (b"ATARI7800", 1, 128, "atari7800", "a.a78"),
        ];
        for (magic, at, size, name, file) in cases {
            let data = headered(magic, at, size, 8192);
            let h = r
                .detect(&data[..MAX_PROBE], data.len() as u64, file)
                .unwrap();
            assert_eq!((h.detector, h.size), (name, size as u64));
            // Not at that offset: nothing.
            let moved = headered(magic, at + 1, size, 8192);
            assert_eq!(r.detect(&moved, moved.len() as u64, file), None, "{name}");
        }
        // A header and nothing after it is no headered rom.
        assert_eq!(r.detect(b"NES\x1a", 16, "a.nes"), None);
        // SNES: by size, for SNES extensions only.
        let h = r.detect(&[0; 64], (1 << 20) + 512, "Game.SMC").unwrap();
        assert_eq!((h.detector, h.size), ("snes-copier", 512));
        assert_eq!(r.detect(&[0; 64], 1 << 20, "Game.sfc"), None);
        assert_eq!(r.detect(&[0; 64], (1 << 20) + 512, "notes.txt"), None);
    }

    const NES_DETECTOR: &str = r#"<?xml version="1.0"?>
<detector>
	<name>Test NES Skipper</name>
	<author>romlib</author>
	<version>1</version>
	<rule start_offset="10" end_offset="EOF" operation="none">
		<data offset="0" value="4E45531A" result="true"/>
		<file size="10" operator="greater"/>
	</rule>
	<rule start_offset="200" end_offset="EOF" operation="none">
		<and offset="1" mask="F0" value="A0"/>
		<file size="PO2" result="false"/>
	</rule>
</detector>
"#;

    /// Every prefix and every single-byte corruption of a detector file parses or gives a
    /// one-line error naming the file; none panics.
    #[test]
    fn detector_truncations_and_flips_never_panic() {
        let path = Path::new("d.xml");
        let bytes = NES_DETECTOR.as_bytes();
        for n in 0..=bytes.len() {
            if let Err(e) = parse_detector(&bytes[..n], path) {
                let e = e.to_string();
                assert!(e.starts_with("d.xml: ") && !e.contains('\n'), "{e}");
            }
        }
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x20, 0x80] {
                let mut b = bytes.to_vec();
                b[i] ^= flip;
                if let Err(e) = parse_detector(&b, path) {
                    assert!(!e.to_string().contains('\n'));
                }
            }
        }
    }

    #[test]
    fn clrmamepro_detector_files() {
        let path = Path::new("nes.xml");
        let rules = parse_detector(NES_DETECTOR.as_bytes(), path).unwrap();
        assert_eq!(rules.len(), 2);
        assert!(rules.iter().all(|d| d.name == "Test NES Skipper"));
        let r = HeaderRules { detectors: rules };
        let nes = headered(b"NES\x1a", 0, 16, 100);
        assert_eq!(
            r.detect(&nes, nes.len() as u64, "x").map(|h| h.size),
            Some(16)
        );
        let second = headered(&[0, 0xA7], 0, 0x200, 100);
        assert_eq!(
            r.detect(&second, second.len() as u64, "x").map(|h| h.size),
            Some(0x200)
        );
        // A power-of-two size fails the second rule's <file result="false">.
        let po2 = headered(&[0, 0xA7], 0, 0x200, 0x200);
        assert_eq!(r.detect(&po2, po2.len() as u64, "x"), None);

        for (text, needle) in [
            (
                "<detector><rule start_offset=\"10\" operation=\"byteswap\"/></detector>",
                "operation",
            ),
            (
                "<detector><rule start_offset=\"zz\"/></detector>",
                "start_offset",
            ),
            (
                "<detector><rule end_offset=\"100\"/></detector>",
                "end_offset",
            ),
            (
                "<detector><rule><data offset=\"2000\" value=\"00\"/></rule></detector>",
                "first 4096",
            ),
            (
                "<detector><rule><data value=\"0\"/></rule></detector>",
                "hex bytes",
            ),
            (
                "<detector><rule><shift/></rule></detector>",
                "unknown detector test <shift>",
            ),
            ("<detector><name>x</name></detector>", "no <rule>"),
            (
                &format!(
                    "<detector><name>{}</name><rule/></detector>",
                    "n".repeat(5000)
                ),
                "MAX_TEXT_LEN",
            ),
            ("<datafile/>", "no <detector>"),
            ("<detector><rule>", "not well-formed"),
        ] {
            let e = parse_detector(text.as_bytes(), path)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("nes.xml: ") && e.contains(needle),
                "{text}: {e}"
            );
            assert!(!e.contains('\n'));
        }
    }
}
