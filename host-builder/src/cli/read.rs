//! The commands that read games in place through the device's code: `cat` and `mount`,
//! the same commands as `romlib-device`'s; here they trust the library's own keys by
//! default and decode with C zstd.

use super::trust::trust_store;
use crate::zstd_decoder::ZstdDecoder;
use romlib_device::cli::output::Output;
use romlib_device::cli::play::{CatCmd, MountCmd};
use romlib_device::cli::reporter::ProgressMode;

/// `romlib cat`.
pub(super) fn cat(c: CatCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let out = Output::new("romlib", "cat", c.json, ProgressMode::None).data_on_stdout();
    let trust = trust_store(&lib, &c.trusted_key, Some(&out))?;
    Ok(c.run(&lib, &trust, ZstdDecoder::default())?)
}

/// `romlib mount`.
pub(super) fn mount(c: MountCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let out = Output::new("romlib", "mount", false, ProgressMode::None);
    let trust = trust_store(&lib, &c.trusted_key, Some(&out))?;
    Ok(c.run(&lib, trust, ZstdDecoder::default, "romlib")?)
}
