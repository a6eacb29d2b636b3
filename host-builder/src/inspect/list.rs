//! Listing the games of a library, with metadata filters.

use crate::error::Result;
use romlib_device::{Library, TrustStore};
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
    /// System (may be empty).
    pub system: String,
    /// Region (may be empty).
    pub region: String,
    /// Languages.
    pub languages: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Description (may be empty).
    pub description: String,
    /// The matched DAT game's name and source, when built with `--dat`.
    pub dat: Option<(String, String)>,
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

/// Which games to list; empty fields match everything. Matching ignores case.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The system equals this.
    pub system: Option<String>,
    /// One of the tags equals this.
    pub tag: Option<String>,
    /// One of the comma-separated regions equals this.
    pub region: Option<String>,
    /// Every word occurs in the title, names, description, system, region or tags.
    pub search: Option<String>,
}

impl Filter {
    /// Whether a game passes.
    pub fn matches(&self, g: &GameListing) -> bool {
        let eq = |a: &str, b: &str| a.trim().to_lowercase() == b.trim().to_lowercase();
        if let Some(s) = &self.system {
            if !eq(&g.system, s) {
                return false;
            }
        }
        if let Some(t) = &self.tag {
            if !g.tags.iter().any(|x| eq(x, t)) {
                return false;
            }
        }
        if let Some(r) = &self.region {
            if !g.region.split(',').any(|x| eq(x, r)) {
                return false;
            }
        }
        if let Some(q) = &self.search {
            let mut hay = [&g.title, &g.name, &g.description, &g.system, &g.region]
                .map(|s| s.to_lowercase())
                .join("\n");
            for t in &g.tags {
                hay += &format!("\n{}", t.to_lowercase());
            }
            if let Some((n, _)) = &g.dat {
                hay += &format!("\n{}", n.to_lowercase());
            }
            if !q
                .split_whitespace()
                .all(|w| hay.contains(&w.to_lowercase()))
            {
                return false;
            }
        }
        true
    }
}

/// What [`list_games`] found: the games, and the titles whose manifest could not be read
/// (damaged or unreadable), with the one-line error.
#[derive(Debug, Default)]
pub struct Listing {
    /// The games whose manifest opened.
    pub games: Vec<GameListing>,
    /// Title, and why its manifest could not be read.
    pub damaged: Vec<(String, String)>,
}

/// Reads every manifest of a library; with `trust`, also checks each signature. A manifest
/// that cannot be read is listed as damaged; the others are still listed.
pub fn list_games(lib: &Library, trust: Option<&TrustStore>) -> Result<Listing> {
    let mut out = Listing::default();
    for title in lib.titles()? {
        let m = match lib.open_manifest(&title) {
            Ok(m) => m,
            Err(e) => {
                out.damaged.push((title, e.to_string()));
                continue;
            }
        };
        let b = m.unverified_body().clone();
        let key_id =
            String::from_utf8_lossy(&romlib_format::manifest::key_id(m.claimed_key())).into_owned();
        let verified = trust.map(|t| m.verify(t).is_ok());
        out.games.push(GameListing {
            title: b.title_id,
            name: b.display_name,
            version: b.version,
            system: b.system,
            region: b.region,
            languages: b.languages,
            tags: b.tags,
            description: b.description,
            dat: b.dat.map(|d| (d.name, d.source)),
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
pub fn to_json(games: &[GameListing], damaged: &[(String, String)]) -> serde_json::Value {
    json!({
        "damaged": damaged.iter().map(|(t, e)| json!({"title_id": t, "problem": e})).collect::<Vec<_>>(),
        "games": games.iter().map(|g| json!({
            "title_id": g.title,
            "display_name": g.name,
            "version": g.version,
            "system": g.system,
            "region": g.region,
            "languages": g.languages,
            "tags": g.tags,
            "description": g.description,
            "dat": g.dat.as_ref().map(|(name, source)| json!({"name": name, "source": source})),
            "files": g.files,
            "size": g.size,
            "chunks": g.chunks,
            "packs": g.packs,
            "key_id": g.key_id,
            "signature_ok": g.verified,
        })).collect::<Vec<_>>()
    })
}
