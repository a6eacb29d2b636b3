//! romlib device runtime: verify a game's signed manifest and install it from a library's
//! packs, verifying every chunk, in memory that does not grow with the game; or read its
//! files in place with the same checks, also as a read-only FUSE file system.
//!
//! Rooms, from the bottom up (each uses only those below it):
//! - [`fsio`]: positional reads, opening with clear errors, directory fsync;
//! - [`trusted`]: the trust store, and manifests verified against it;
//! - [`library`]: what holds a library (folder, portable file, HTTP server) and its files;
//! - [`chunks`]: from a chunk-table record to verified bytes ([`chunks::ChunkSource`]);
//! - [`progress`]: the seam through which long operations report how far they are;
//! - [`install`]: staged, verified, atomic installs, uninstall and crash recovery;
//! - [`play`]: in-place reads and the FUSE mount;
//! - [`cli`]: argument plumbing and the commands both binaries share.
//!
//! Beside them, on x86_64 only, [`memcopy`]: the static musl build's `memcpy` and `memmove`,
//! the one module with unsafe code.
//!
//! The host builder's `romlib install` uses this same code; only the zstd decoder differs
//! (the decoder is a seam: [`chunks::decoder::ChunkDecoder`]).

pub mod cancel;
pub mod chunks;
pub mod cli;
pub mod error;
pub mod folder;
pub mod fsio;
pub mod install;
pub mod library;
#[cfg(target_arch = "x86_64")]
pub mod memcopy;
pub mod play;
pub mod progress;
pub mod trusted;

pub use error::{Error, Result};
pub use library::Library;
pub use trusted::{ManifestFile, TrustStore, VerifiedManifest};
