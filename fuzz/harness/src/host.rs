//! Targets for what the builder reads from its input folder: DAT files and `romlib.toml`
//! sidecars.

use romlib_host::build::sidecar::Sidecar;
use romlib_host::dat::{read_dat_from, region_from_name};
use std::path::Path;

/// A DAT file (Logiqx XML, MAME listxml or clrmamepro text: the reader tells them apart
/// as `romlib build --dat` does), with the region taken from each game's name.
pub fn dat(data: &[u8]) {
    let _ = read_dat_from(data, Path::new("fuzz.dat"), |_, game| {
        let _ = region_from_name(&game.name);
        Ok(())
    });
}

/// A `romlib.toml` sidecar, as [`Sidecar::load`] reads it.
pub fn sidecar(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Sidecar::parse(text);
    }
}
