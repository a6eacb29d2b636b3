//! The names of a library's files and folders (SPEC section 1), in one place.
//!
//! Every reader and writer builds paths from these; nothing else spells them out.

/// Folder of the pack files.
pub const PACKS_DIR: &str = "packs";
/// Folder of the manifests and locators.
pub const GAMES_DIR: &str = "games";
/// Folder of the zstd dictionaries.
pub const DICTS_DIR: &str = "dicts";
/// Folder of the publisher's public keys.
pub const KEYS_DIR: &str = "keys";
/// Folder of the parity files (SPEC section 13): `parity/packs/` and `parity/games/`.
pub const PARITY_DIR: &str = "parity";
/// Extension added to a protected file's name to name its parity file.
pub const PARITY_EXT: &str = "par";
/// The redb index database.
pub const INDEX_FILE: &str = "index.db";
/// Folder of the chunk index's sorted runs (SPEC section 5.3): `<id as 16 hex digits>.run`.
pub const RUNS_DIR: &str = "runs";
/// Extension of a sorted run in [`RUNS_DIR`].
pub const RUN_EXT: &str = "run";
/// Extension of a run's Bloom filter beside it in [`RUNS_DIR`] (SPEC section 5.4), a
/// builder's cache.
pub const FILTER_EXT: &str = "bloom";
/// Checksums of an index published by rename (earlier builders; deleted on the first
/// in-place write, SPEC section 5.1).
pub const INDEX_SUM_FILE: &str = "index.sum";
/// The new index of `romlib rebuild-index` until it replaces `index.db` (SPEC section 5.1).
pub const INDEX_NEW_FILE: &str = ".index.db.new";
/// The list of title ids, one per line.
pub const CATALOG_FILE: &str = "catalog.txt";
/// The library's signed snapshot (SPEC section 15).
pub const SNAPSHOT_FILE: &str = "snapshot.txt";
/// The lock file a running builder holds.
pub const LOCK_FILE: &str = ".romlib.lock";
/// Extension of a game's signed manifest in `games/`.
pub const MANIFEST_EXT: &str = "manifest";
/// Extension of a game's locator in `games/` (section 11).
pub const LOCATOR_EXT: &str = "locator";
/// Extension of a dictionary in `dicts/`.
pub const DICT_EXT: &str = "zdict";
/// Length of a dictionary's file name: 8 hex digits, `.`, [`DICT_EXT`].
pub const DICT_FILE_NAME_LEN: usize = 8 + 1 + DICT_EXT.len();

/// The file name of dictionary `id` inside `dicts/`: its id as 8 lower-case hex digits.
pub fn dict_file_name(id: u32, out: &mut [u8; DICT_FILE_NAME_LEN]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out[..8].iter_mut().enumerate() {
        *b = HEX[((id >> (28 - 4 * i)) & 0xf) as usize];
    }
    out[8] = b'.';
    out[9..].copy_from_slice(DICT_EXT.as_bytes());
    core::str::from_utf8(out).unwrap_or("invalid.zdict")
}

/// Parses a dictionary's file name back into its id (only the canonical spelling).
pub fn parse_dict_file_name(name: &str) -> Option<u32> {
    let hex = name.strip_suffix(DICT_EXT)?.strip_suffix('.')?;
    if hex.len() != 8 || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// The file name of pack `id` inside `packs/`: `pack-` and the decimal id with at least
/// four digits and no further leading zeros, then `.pkg`.
pub fn pack_file_name(id: u32, out: &mut [u8; 20]) -> &str {
    // u32 has at most 10 digits.
    let mut digits = [0u8; 10];
    let mut n = id;
    let mut len = 0;
    while n > 0 || len < 4 {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
    }
    out[..5].copy_from_slice(b"pack-");
    for i in 0..len {
        out[5 + i] = digits[len - 1 - i];
    }
    out[5 + len..9 + len].copy_from_slice(b".pkg");
    core::str::from_utf8(&out[..9 + len]).unwrap_or("pack-invalid.pkg")
}

/// How `games/` holds the manifests and locators (SPEC section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GamesLayout {
    /// `games/<title>.manifest`: every game in one folder (every romlib reads it).
    #[default]
    Flat,
    /// `games/<shard>/<title>.manifest`, `<shard>` the two lower-case hex digits of the
    /// first byte of the BLAKE3 of the title id ([`shard_dir_name`]): 256 folders, so that
    /// no folder outgrows what FAT32 holds or exFAT searches quickly.
    Sharded,
}

impl GamesLayout {
    /// `flat` or `sharded`, as the snapshot and the command line spell it.
    pub fn name(self) -> &'static str {
        match self {
            GamesLayout::Flat => "flat",
            GamesLayout::Sharded => "sharded",
        }
    }

    /// The layout spelt `name` ([`GamesLayout::name`]).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "flat" => Some(GamesLayout::Flat),
            "sharded" => Some(GamesLayout::Sharded),
            _ => None,
        }
    }

    /// The other layout.
    pub fn other(self) -> Self {
        match self {
            GamesLayout::Flat => GamesLayout::Sharded,
            GamesLayout::Sharded => GamesLayout::Flat,
        }
    }
}

/// The name of the shard folder inside `games/` of a title whose id's BLAKE3 begins with
/// byte `first`: two lower-case hex digits.
pub fn shard_dir_name(first: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[usize::from(first >> 4)], HEX[usize::from(first & 0xf)]]
}

/// Parses a shard folder's name back into its byte (only the canonical spelling).
pub fn parse_shard_dir_name(name: &str) -> Option<u8> {
    let b = name.as_bytes();
    if b.len() != 2 || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u8::from_str_radix(name, 16).ok()
}

/// Parses `pack-NNNN.pkg` back into its id (only the canonical spelling).
pub fn parse_pack_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("pack-")?.strip_suffix(".pkg")?;
    if digits.len() < 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let id: u32 = digits.parse().ok()?;
    let mut buf = [0u8; 20];
    (pack_file_name(id, &mut buf) == name).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_names() {
        let mut b = [0u8; 20];
        assert_eq!(pack_file_name(1, &mut b), "pack-0001.pkg");
        assert_eq!(pack_file_name(12345, &mut b), "pack-12345.pkg");
        assert_eq!(pack_file_name(u32::MAX, &mut b), "pack-4294967295.pkg");
        assert_eq!(parse_pack_file_name("pack-0001.pkg"), Some(1));
        assert_eq!(parse_pack_file_name("pack-12345.pkg"), Some(12345));
        assert_eq!(parse_pack_file_name("pack-00001.pkg"), None);
        assert_eq!(parse_pack_file_name("pack-001.pkg"), None);
        assert_eq!(parse_pack_file_name("pack-0001.pkg.tmp"), None);
    }

    #[test]
    fn shard_names() {
        for b in 0..=255u8 {
            let n = shard_dir_name(b);
            assert_eq!(
                parse_shard_dir_name(core::str::from_utf8(&n).unwrap()),
                Some(b)
            );
        }
        assert_eq!(&shard_dir_name(0x0a), b"0a");
        assert_eq!(parse_shard_dir_name("0A"), None);
        assert_eq!(parse_shard_dir_name("a"), None);
        assert_eq!(parse_shard_dir_name("0a0"), None);
        assert_eq!(GamesLayout::parse("sharded"), Some(GamesLayout::Sharded));
        assert_eq!(
            GamesLayout::parse(GamesLayout::Flat.name()),
            Some(GamesLayout::Flat)
        );
        assert_eq!(GamesLayout::parse("Flat"), None);
    }

    #[test]
    fn dict_names() {
        let mut b = [0u8; DICT_FILE_NAME_LEN];
        assert_eq!(dict_file_name(0x00ab_cdef, &mut b), "00abcdef.zdict");
        assert_eq!(dict_file_name(u32::MAX, &mut b), "ffffffff.zdict");
        assert_eq!(parse_dict_file_name("00abcdef.zdict"), Some(0x00ab_cdef));
        assert_eq!(parse_dict_file_name("00ABCDEF.zdict"), None);
        assert_eq!(parse_dict_file_name("abcdef.zdict"), None);
        assert_eq!(parse_dict_file_name("00abcdef.zdict.tmp"), None);
    }
}
