//! romlib host builder: turns folders of games into a deduplicated, compressed library of
//! packs, a redb index and Ed25519-signed manifests (see `format-spec/SPEC.md`).
//!
//! The `romlib` binary is a thin layer over this library.

pub mod build;
pub mod cli;
pub mod dat;
pub mod error;
pub mod file_signature;
pub mod fsio;
pub mod inspect;
pub mod keys;
pub mod library;
pub mod parity;
pub(crate) mod spill;
pub mod transfer;
pub mod trust_store;
pub mod zstd_decoder;

pub use build::{build, BuildOptions, BuildSummary};
pub use error::{Error, Result};
