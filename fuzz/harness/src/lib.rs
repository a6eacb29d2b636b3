//! The fuzz harness: one function per romlib parser that takes bytes from outside, each of
//! which must return normally on any input. Errors are the expected outcome for most inputs
//! and are ignored; a panic, an abort, an allocation beyond the fuzzer's limit or a hang is
//! a bug in the parser.
//!
//! The cargo-fuzz crate (`fuzz/`) calls these functions from one-line targets, the
//! `make-seeds` binary writes their seed inputs, and `tests/replay.rs` runs every seed and
//! every kept crash (`fuzz/regressions/<target>/`) through them on each `cargo test`.
//!
//! Targets that need a file (the device opens manifests, locators and portable files by
//! path) write the input into a scratch directory first; see [`scratch_file`].

mod device;
mod format;
mod host;

pub use device::{
    http_response, locator, manifest, manifest_body, manifest_signed, portable, snapshot, test_key,
    zstd_delta, zstd_frame, MANIFEST_SIGNED_HEADER_LEN,
};
pub use format::{chunk_table, keyfile, pack, path};
pub use host::{dat, parity, run, sidecar, PARITY_REL};

use std::path::PathBuf;
use std::sync::OnceLock;

/// A fuzz target: its name (the file name under `fuzz/fuzz_targets/`, the folder under
/// `fuzz/seeds/` and `fuzz/regressions/`) and its function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target (`fuzz/run.sh` runs them in the order of their file names).
pub const TARGETS: &[Target] = &[
    ("manifest", manifest),
    ("manifest_signed", manifest_signed),
    ("manifest_body", manifest_body),
    ("chunk_table", chunk_table),
    ("pack", pack),
    ("locator", locator),
    ("zstd_frame", zstd_frame),
    ("zstd_delta", zstd_delta),
    ("portable", portable),
    ("http_response", http_response),
    ("dat", dat),
    ("sidecar", sidecar),
    ("keyfile", keyfile),
    ("snapshot", snapshot),
    ("path", path),
    ("parity", parity),
    ("run", run),
];

/// The target called `name`, if there is one.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Writes `data` to this thread's scratch file for target `name` and returns its path. The
/// scratch directory is created once per process and removed when it ends normally.
pub fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("romlib-fuzz-")
            .tempdir()
            .expect("the fuzz harness needs a scratch directory")
    });
    let path = dir
        .path()
        .join(format!("{name}-{:?}", std::thread::current().id()));
    std::fs::write(&path, data).expect("the fuzz harness cannot write its scratch file");
    path
}

/// Reads little-endian fields off the front of a fuzz input, giving zeros once it runs out
/// (so that every input, however short, means something).
#[derive(Debug)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Starts reading `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// The next `n` bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        a
    }

    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    /// The next little-endian u16.
    pub fn u16(&mut self) -> u16 {
        let mut b = [0u8; 2];
        let got = self.bytes(2);
        b[..got.len()].copy_from_slice(got);
        u16::from_le_bytes(b)
    }

    /// The next little-endian u32.
    pub fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        let got = self.bytes(4);
        b[..got.len()].copy_from_slice(got);
        u32::from_le_bytes(b)
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }
}
