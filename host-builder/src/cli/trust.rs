//! The keys a reading command trusts.

use romlib_device::cli::output::Output;
use std::path::PathBuf;

/// The keys to trust: those given, else the library's own `keys/` (which it says through
/// `say`, a warning, unless `None`: told to keep quiet because the output is a report).
pub(super) fn trust_store(
    lib: &romlib_device::Library,
    keys: &[PathBuf],
    say: Option<&Output>,
) -> anyhow::Result<romlib_device::TrustStore> {
    if keys.is_empty() {
        if let Some(p) = lib.portable() {
            anyhow::bail!(
                "{}: a portable file carries no keys to trust: pass --trusted-key",
                p.path().display()
            );
        }
        if let Some(out) = say {
            out.warn(&format!(
                "trusting the library's own keys in {} (pass --trusted-key to choose)",
                lib.keys_dir().display()
            ));
        }
        Ok(romlib_device::TrustStore::from_dir(&lib.keys_dir())?)
    } else {
        Ok(romlib_device::TrustStore::from_files(keys)?)
    }
}
