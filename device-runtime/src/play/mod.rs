//! Playing without installing: a game's files read in place, verified chunk by chunk
//! ([`read`]), and a whole library as a read-only FUSE file system ([`mount`]).

pub mod mount;
pub mod read;
