//! Byte-level facts of the romlib on-disk format.
//!
//! This crate is the single owner of every byte layout that `SPEC.md` describes: magic
//! numbers, versions, offsets, limits and the exact bytes that are signed. It performs no
//! I/O and has no dependencies; every decoder takes `&[u8]` and checks every length against
//! a named limit in [`limits`] before a caller could use it to size anything.
#![no_std]

pub mod chunker;
pub mod error;
pub mod file_signature;
pub mod index;
pub mod keyfile;
pub mod layout;
pub mod limits;
pub mod manifest;
pub mod pack;
pub mod parity;
pub mod path;
pub mod portable;
pub mod snapshot;
pub mod systems;

mod le;

pub use error::FormatError;
