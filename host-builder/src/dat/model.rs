//! What a DAT says: its header, and its games with their roms.

/// The DAT's own description of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatHeader {
    /// Short name, e.g. "Nintendo - Game Boy"; empty when the DAT has no header.
    pub name: String,
    /// Longer description.
    pub description: String,
    /// Version, often a date such as "20240101-123456".
    pub version: String,
    /// Author(s).
    pub author: String,
    /// The header-skipper detector the DAT's hashes assume (`<clrmamepro header="..."/>`,
    /// e.g. "No-Intro_NES.xml"): its roms are hashed without their copier or emulator
    /// header. Empty when the DAT hashes whole files.
    pub header_skipper: String,
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
    /// Rom entries skipped because a number or hash in them is malformed: one warning each,
    /// naming the file, the line and the attribute.
    pub skipped: Vec<String>,
}
