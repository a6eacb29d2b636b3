//! What a build does and with which parameters, and the figures of a finished one.

use super::scan::ScanOptions;
use ed25519_dalek::SigningKey;
use std::path::PathBuf;
use std::time::Duration;

/// Default zstd level. Level 4 builds about twice as fast as 9 and stores about 2% more
/// (measured on real game data, `BENCHMARKS.md` at the repository root); devices decode
/// all levels at the same speed. `-c 19` is there for the smallest library.
pub const DEFAULT_LEVEL: i32 = 4;

/// What a build does and with which parameters.
#[derive(Clone)]
pub struct BuildOptions {
    /// FastCDC average chunk size.
    pub avg_chunk: u32,
    /// zstd level, 1 to 22.
    pub level: i32,
    /// A zstd dictionary file to compress new chunks with.
    pub dict: Option<PathBuf>,
    /// Pack roll-over size.
    pub pack_size: u64,
    /// Worker threads.
    pub threads: usize,
    /// Store new chunks (build-packs, build); otherwise every chunk must already be stored.
    pub store_chunks: bool,
    /// Sign and write manifests with this key (generate-manifests, build).
    pub signing_key: Option<SigningKey>,
    /// Input scanning rules.
    pub scan: ScanOptions,
    /// Record CRC-32, MD5, SHA-1 and SHA-256 of every file in its manifest.
    pub dat_hashes: bool,
    /// DAT files to name games by (their matched game is recorded in the manifest).
    pub dats: Vec<PathBuf>,
    /// clrmamepro header-skipper detector files, tried before the built-in detectors.
    pub header_skippers: Vec<PathBuf>,
    /// The system recorded for games whose `romlib.toml` names none.
    pub system: Option<String>,
    /// Store a new chunk as a delta against a similar stored chunk when that saves at
    /// least this share (percent) of its ordinary compressed size; `None`: no deltas.
    pub delta_gain: Option<u32>,
    /// Read every game again, ignoring the input cache (`--reread`).
    pub reread: bool,
    /// Check every pack, and store again from the input every chunk a damaged one holds
    /// (`--repair`; implies `reread`).
    pub repair: bool,
    /// Remove the library's games whose input is gone (`--remove-missing`).
    pub remove_missing: bool,
    /// Title games and name their files after the DAT game they match (`--rename`).
    pub rename: bool,
    /// How long the signed snapshot this build publishes stays valid (`--valid-for`).
    pub valid_for: crate::library::snapshot::ValidFor,
    /// The layout `games/` is brought to (`--games-layout`); `None`: the library's own.
    pub games_layout: Option<romlib_format::layout::GamesLayout>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            avg_chunk: romlib_format::chunker::DEFAULT_AVG_CHUNK,
            level: DEFAULT_LEVEL,
            dict: None,
            pack_size: romlib_format::limits::DEFAULT_PACK_SIZE,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            store_chunks: true,
            signing_key: None,
            scan: ScanOptions::default(),
            dat_hashes: true,
            dats: Vec::new(),
            header_skippers: Vec::new(),
            system: None,
            delta_gain: Some(super::delta::DEFAULT_DELTA_GAIN),
            reread: false,
            repair: false,
            remove_missing: false,
            rename: false,
            games_layout: None,
            valid_for: Default::default(),
        }
    }
}

/// Figures of a finished build.
#[derive(Debug, Default, Clone)]
pub struct BuildSummary {
    /// Games in the input.
    pub games: u64,
    /// DAT rom entries skipped because a number or hash in them is malformed, one line
    /// each (file, line, attribute).
    pub dat_warnings: Vec<String>,
    /// Files in them.
    pub files: u64,
    /// Bytes of those files.
    pub input_bytes: u64,
    /// What the input scan found and skipped: its layout, junk, unreadable entries.
    pub input: super::scan::ScanReport,
    /// Chunks cut.
    pub chunks: u64,
    /// Chunks that were new to the library.
    pub new_chunks: u64,
    /// Uncompressed bytes of the new chunks.
    pub new_bytes: u64,
    /// New chunks stored as deltas against a similar chunk.
    pub delta_chunks: u64,
    /// Their uncompressed bytes.
    pub delta_bytes: u64,
    /// Bytes appended to packs (records, headers and footers).
    pub stored_bytes: u64,
    /// Packs written.
    pub packs_written: u64,
    /// Manifests written or replaced.
    pub manifests_written: u64,
    /// Manifests already up to date.
    pub manifests_unchanged: u64,
    /// Games not read at all: unchanged since the build that published their manifest
    /// (the input cache; counted in `manifests_unchanged` too).
    pub skipped_games: u64,
    /// Their bytes (counted in `input_bytes`, not read).
    pub skipped_bytes: u64,
    /// Packs found damaged (`--repair`).
    pub damaged_packs: Vec<u32>,
    /// Chunks stored again from the input because their stored copy (or a delta's base)
    /// is in a damaged pack (counted in `new_chunks` too).
    pub repaired_chunks: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Repairs made to what an interrupted run left.
    pub recovered: Vec<String>,
    /// Games of the library that this build's input no longer holds (kept: no
    /// `--remove-missing`).
    pub no_input: Vec<String>,
    /// Games removed because their input is gone (`--remove-missing`).
    pub removed: Vec<String>,
    /// Games published under another title than their input's (`--rename`): (input
    /// title, published title).
    pub titled: Vec<(String, String)>,
    /// Games the library holds after the build (0 for `build-packs`, which publishes none).
    pub library_games: u64,
    /// Bytes of the library's packs after the build.
    pub library_pack_bytes: u64,
    /// Titles a game had before `--rename` gave it another: (old title, new title). The old
    /// one left the library.
    pub renamed: Vec<(String, String)>,
    /// The signed snapshot the build published, if it published one.
    pub snapshot: Option<crate::library::snapshot::Published>,
    /// The layout of the library's `games/` after the build.
    pub games_layout: romlib_format::layout::GamesLayout,
    /// Game files (manifests, locators, their parity) moved to that layout.
    pub games_files_moved: u64,
}

/// Hears how far a build has come (the command line draws its progress bar from it).
pub trait BuildProgress: Sync {
    /// The input is scanned and the library opened: `total` bytes of input follow.
    fn start(&self, _total: u64) {}
    /// `n` more bytes of input are stored or found already stored.
    fn advance(&self, _n: u64) {}
    /// The build is over, done or failed.
    fn finish(&self) {}
}

/// No progress reports.
impl BuildProgress for () {}
