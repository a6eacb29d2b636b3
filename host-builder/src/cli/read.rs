//! The commands that read games in place through the device's code: `cat` and `mount`,
//! the same commands as `romlib-device`'s; here they trust the user's trust store by
//! default ([`crate::trust_store`]) and decode with C zstd.

use super::trust::trust_store;
use crate::zstd_decoder::ZstdDecoder;
use romlib_device::cli::play::{CatCmd, MountCmd};

/// `romlib cat`.
pub(super) fn cat(c: CatCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let trust = trust_store(&c.trusted_key)?;
    Ok(c.run(&lib, &trust, ZstdDecoder::default())?)
}

/// `romlib mount`.
pub(super) fn mount(c: MountCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let trust = trust_store(&c.trusted_key)?;
    Ok(c.run(&lib, trust, ZstdDecoder::default, "romlib")?)
}
