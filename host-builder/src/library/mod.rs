//! Writing a library (SPEC section 1): the index's tables and its checked opening
//! ([`index`]), the chunk index's sorted runs ([`runs`]), the locked library and its index written in place ([`writer`]), packs ([`pack_writer`], [`pack_scan`]), signed manifests
//! ([`manifest_writer`]) and their publishing ([`publish`]), locators and
//! the catalog ([`locator`]), dictionaries ([`dicts`]), crash recovery ([`recovery`]), removing games ([`remove`]), the signed snapshot ([`snapshot`]), rebuilding the index
//! ([`rebuild`]) and
//! the resemblance sketches of the index's `sketches` table ([`sketch`]).
//!
//! Crash-safety rules (SPEC section 6):
//! 1. A pack is written as `packs/.pack-NNNN.pkg.partial`, sealed with its footer, fsynced
//!    and renamed; only then does an index transaction that references it commit.
//! 2. A sealed pack that the index does not list (killed between rename and commit) is
//!    verified and adopted by the next run; `.partial` files are deleted.
//! 3. Manifests follow the roll-forward rule of [`publish`].
//! 4. `index.db` is the builder's own, written in place; the commits that files depend on
//!    are durable, and no reader opens it ([`writer`]).

pub mod dicts;
pub mod filter;
pub mod games_layout;
pub mod index;
pub mod locator;
pub mod manifest_writer;
pub mod pack_scan;
pub mod pack_writer;
pub mod prune;
pub mod publish;
pub mod rebuild;
pub mod recovery;
pub mod remove;
pub mod runs;
pub mod sketch;
pub mod snapshot;
pub mod writer;
