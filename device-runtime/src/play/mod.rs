//! Playing without installing: a game's files read in place, verified chunk by chunk
//! ([`read`]), and a whole library as a read-only FUSE file system (`mount`, Linux only:
//! elsewhere the `mount` command says it is not supported on this system).

#[cfg(target_os = "linux")]
pub mod mount;
pub mod read;
