//! Every limit of the format, by the name SPEC.md gives it.
//!
//! Readers check each length taken from disk against one of these before using it to size
//! a buffer; writers refuse to produce anything beyond them.

/// Largest uncompressed chunk, in bytes (the FastCDC maximum size is capped by it).
pub const MAX_CHUNK_LEN: u32 = 1 << 20;
/// Smallest `--avg-chunk` accepted, in bytes.
pub const MIN_AVG_CHUNK: u32 = 1024;
/// Largest `--avg-chunk` accepted, in bytes (4 x this is [`MAX_CHUNK_LEN`]).
pub const MAX_AVG_CHUNK: u32 = MAX_CHUNK_LEN / 4;
/// Largest zstd window a reader must support, as a log2 (8 MiB).
pub const MAX_WINDOW_LOG: u32 = 23;
/// Largest zstd window a reader must support, in bytes.
pub const MAX_WINDOW_SIZE: u64 = 1 << MAX_WINDOW_LOG;
/// A pack file is always smaller than this (FAT32 holds files up to 4 GiB - 1).
pub const MAX_PACK_SIZE: u64 = 4 << 30;
/// Default pack roll-over size.
pub const DEFAULT_PACK_SIZE: u64 = 1 << 30;
/// Smallest `--pack-size` accepted.
pub const MIN_PACK_SIZE: u64 = 1 << 20;
/// Largest encoded signed manifest body, in bytes.
pub const MAX_MANIFEST_BODY_LEN: u32 = 2 << 20;
/// Most files in one game.
pub const MAX_FILES: u32 = 10_000;
/// Most chunks in one game (2^28 chunks of the 1 KiB minimum average still exceeds any disc).
pub const MAX_GAME_CHUNKS: u64 = 1 << 28;
/// Most bytes in one file of a game.
pub const MAX_FILE_SIZE: u64 = 1 << 40;
/// Longest relative path of a file in a game, in bytes of UTF-8.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest single path component, in bytes of UTF-8 (FAT32/exFAT long names: 255 units).
pub const MAX_COMPONENT_LEN: usize = 255;
/// Deepest directory nesting of a file in a game.
pub const MAX_PATH_DEPTH: usize = 32;
/// Longest title id, in bytes.
pub const MAX_TITLE_ID_LEN: usize = 128;
/// Longest string field in a manifest other than paths (names, versions), in bytes.
pub const MAX_TEXT_LEN: usize = 4096;
/// Most entries in a manifest's `tags`, and separately in its `languages`.
pub const MAX_TAGS: usize = 64;
/// Most distinct packs one game may need.
pub const MAX_PACKS_PER_GAME: u32 = 4096;
/// Longest chain of delta chunks (SPEC section 2.2, method 3): a delta's base is never a
/// delta itself, so a reader holds at most one base chunk to decode any chunk.
pub const MAX_DELTA_DEPTH: u32 = 1;
/// Largest zstd dictionary accepted, in bytes.
pub const MAX_DICT_LEN: u64 = 1 << 20;
/// Directory entries in a portable file (dictionaries, packs and games together).
pub const MAX_PORTABLE_ENTRIES: u32 = 1 << 16;
/// Most data shards of a parity file (SPEC section 13).
pub const MAX_PARITY_DATA_SHARDS: u32 = 256;
/// Most recovery shards of a parity file (never more than its data shards).
pub const MAX_PARITY_SHARDS: u32 = MAX_PARITY_DATA_SHARDS;
/// Largest window of a parity file, in bytes: a reader holds one window of every shard,
/// so this bounds its memory (256 x 64 KiB).
pub const MAX_PARITY_WINDOW: u32 = 64 << 10;
/// Largest file a parity file protects (a pack is smaller than this).
pub const MAX_PARITY_PROTECTED_LEN: u64 = MAX_PACK_SIZE;
/// Largest redundancy of a parity file, in percent of the protected file.
pub const MAX_PARITY_PERCENT: u32 = 100;
