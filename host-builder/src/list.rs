//! Listing the games of a library.

use crate::error::Result;
use romlib_device::{Library, ManifestFile, TrustStore};
use serde_json::json;

/// One game as `list-games` shows it.
#[derive(Debug, Clone)]
pub struct GameListing {
    /// Title id.
    pub title: String,
    /// Display name.
    pub name: String,
    /// Version string (may be empty).
    pub version: String,
    /// Number of files.
    pub files: usize,
    /// Sum of file sizes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// Packs needed.
    pub packs: Vec<u32>,
    /// Short id of the signing key.
    pub key_id: String,
    /// Whether the signature verifies against the trust store given, if any.
    pub verified: Option<bool>,
}

/// Reads every manifest of a library; with `trust`, also checks each signature.
pub fn list_games(lib: &Library, trust: Option<&TrustStore>) -> Result<Vec<GameListing>> {
    let mut out = Vec::new();
    for title in lib.titles()? {
        let m = ManifestFile::open(&lib.manifest_path(&title))?;
        let b = m.unverified_body().clone();
        let key_id =
            String::from_utf8_lossy(&romlib_format::manifest::key_id(m.claimed_key())).into_owned();
        let verified = trust.map(|t| m.verify(t).is_ok());
        out.push(GameListing {
            title: b.title_id,
            name: b.display_name,
            version: b.version,
            files: b.files.len(),
            size: b.total_size,
            chunks: b.chunk_count,
            packs: b.pack_ids,
            key_id,
            verified,
        });
    }
    Ok(out)
}

/// The JSON form of a listing.
pub fn to_json(games: &[GameListing]) -> serde_json::Value {
    json!({
        "games": games.iter().map(|g| json!({
            "title_id": g.title,
            "display_name": g.name,
            "version": g.version,
            "files": g.files,
            "size": g.size,
            "chunks": g.chunks,
            "packs": g.packs,
            "key_id": g.key_id,
            "signature_ok": g.verified,
        })).collect::<Vec<_>>()
    })
}
