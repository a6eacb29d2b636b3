//! What a device trusts and how it comes to trust it: the trust store of publisher keys,
//! and manifests, which become [`VerifiedManifest`]s only by a signature check against it.
//! Nothing above this module reads a manifest's bytes itself.

pub mod manifest;
pub mod snapshot;
pub mod trust;

pub use manifest::{ChunkTable, ManifestFile, VerifiedManifest};
pub use trust::{TrustStore, DEFAULT_TRUST_DIR};
