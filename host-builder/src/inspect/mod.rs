//! Reading a library or portable file without changing it: the full integrity check
//! ([`verify`]), one game's manifest ([`show`]) and the list of games ([`list`]).

pub mod list;
pub mod show;
pub mod verify;
