//! The zstd dictionaries of a library (`dicts/`): adding one that a build or an import
//! needs.

use crate::error::{Error, Result};
use crate::fsio::{create_dir, write_atomic};
use romlib_device::Library;

/// Stores dictionary `id` (`bytes`) in `lib` unless it holds it already; a different
/// dictionary under the same id is an error.
pub(crate) fn add_dict(lib: &Library, id: u32, bytes: &[u8]) -> Result<()> {
    let path = lib.dict_path(id);
    match std::fs::read(&path) {
        Ok(old) if old == bytes => Ok(()),
        Ok(_) => Err(Error::library(
            &path,
            format!("a different dictionary with id {id:08x} is already in the library"),
        )),
        Err(_) => {
            create_dir(&lib.dicts_dir())?;
            write_atomic(&path, bytes, 0o644)
        }
    }
}
