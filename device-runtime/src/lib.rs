//! romlib device runtime: verify a game's signed manifest and install it from a library's
//! packs, verifying every chunk, in memory that does not grow with the game; or read its
//! files in place ([`read`]) with the same checks, also as a read-only FUSE file system
//! ([`mount`]).
//!
//! The host builder's `romlib install` uses this same code; only the zstd decoder differs
//! (the decoder is a seam).

pub mod cli;
pub mod decoder;
pub mod error;
pub mod http;
pub mod index;
pub mod install;
pub mod library;
pub mod locate;
pub mod manifest;
pub mod mount;
pub mod pack_reader;
pub mod portable;
pub mod read;
pub mod remote;
pub mod reuse;
pub mod trust;

pub use error::{Error, Result};
pub use library::Library;
pub use manifest::{ManifestFile, VerifiedManifest};
pub use trust::TrustStore;
