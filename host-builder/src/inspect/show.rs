//! `romlib show`: one game's manifest in readable form.

use crate::dat::digests::{hex, DatHashes};
use crate::error::Result;
use romlib_device::chunks::locator::ChunkLocator;
use romlib_device::{Library, ManifestFile, TrustStore};
use romlib_format::layout::MANIFEST_EXT;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Reads a game's manifest (by title id, or a `.manifest` path) and describes it as JSON;
/// [`to_text`] renders the same value for people. The signature is checked against
/// `trust` and the outcome reported, not raised.
pub fn show_game(lib: &Library, game: &str, trust: &TrustStore) -> Result<Value> {
    let is_path = (game.strip_suffix(MANIFEST_EXT)).is_some_and(|stem| stem.ends_with('.'));
    let m = if is_path && lib.portable().is_none() {
        ManifestFile::open(&PathBuf::from(game))?
    } else {
        lib.open_manifest(game)?
    };
    let b = m.unverified_body().clone();
    let path = m.path().to_path_buf();
    let key_id =
        String::from_utf8_lossy(&romlib_format::manifest::key_id(m.claimed_key())).into_owned();
    let public_key = hex(m.claimed_key());
    // Where the chunks are now, per the index (the manifest's list is from build time).
    let mut packs = BTreeSet::new();
    let mut unique = BTreeSet::new();
    let mut unindexed = 0u64;
    let (mut delta_chunks, mut delta_bytes, mut unique_bytes) = (0u64, 0u64, 0u64);
    let index = ChunkLocator::open(lib, m.unverified_body()).ok();
    let mut table = m.unverified_chunks()?;
    let mut i = 0;
    while let Some(r) = table.next_chunk()? {
        i += 1;
        if !unique.insert(r.hash) {
            continue;
        }
        unique_bytes += r.len as u64;
        match index
            .as_ref()
            .and_then(|l| l.lookup(i - 1, &r.hash, r.len).ok().flatten())
        {
            Some(e) => {
                packs.insert(e.pack_id);
                if e.method == romlib_format::pack::Method::ZstdDelta {
                    delta_chunks += 1;
                    delta_bytes += r.len as u64;
                }
            }
            None => unindexed += 1,
        }
    }
    let table_ok = table.finish().is_ok();
    let signature = match m.verify(trust) {
        Ok(_) => json!({"verified": true, "problem": null}),
        Err(e) => json!({"verified": false, "problem": e.to_string()}),
    };
    let files: Vec<Value> = b
        .files
        .iter()
        .map(|f| {
            let h = DatHashes::from_entry(f);
            json!({
                "path": f.path,
                "size": f.size,
                "mode": format!("{:o}", f.mode),
                "chunks": f.chunk_count,
                "blake3": hex(&f.blake3),
                "crc32": h.map(|h| format!("{:08x}", h.crc32)),
                "md5": h.map(|h| hex(&h.md5)),
                "sha1": h.map(|h| hex(&h.sha1)),
                "sha256": h.map(|h| hex(&h.sha256)),
                "headerless": f.headerless.as_ref().map(|p| json!({
                    "detector": p.detector,
                    "header_size": p.header_size,
                    "size": p.size,
                    "crc32": format!("{:08x}", p.crc32),
                    "md5": hex(&p.md5),
                    "sha1": hex(&p.sha1),
                    "sha256": hex(&p.sha256),
                })),
            })
        })
        .collect();
    Ok(json!({
        "manifest": path.display().to_string(),
        "title_id": b.title_id,
        "display_name": b.display_name,
        "version": b.version,
        "system": b.system,
        "region": b.region,
        "languages": b.languages,
        "tags": b.tags,
        "description": b.description,
        "dat": b.dat.as_ref().map(|d| json!({
            "source": d.source, "name": d.name, "description": d.description, "region": d.region,
        })),
        "archive": b.archive.as_ref().map(|a| json!({"format": a.format, "name": a.name})),
        "total_size": b.total_size,
        "chunk_count": b.chunk_count,
        "unique_chunks": unique.len(),
        "chunk_table_ok": table_ok,
        "packs_needed": packs,
        "chunks_not_in_index": unindexed,
        "delta_chunks": delta_chunks,
        "delta_share": if unique_bytes == 0 { 0.0 } else { delta_bytes as f64 / unique_bytes as f64 },
        "avg_chunk": b.chunker.as_ref().map(|c| c.avg_size),
        "key_id": key_id,
        "public_key": public_key,
        "signature": signature,
        "files": files,
    }))
}

/// The text form of [`show_game`]'s value.
pub fn to_text(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        if !value.is_empty() {
            out += &format!("{label:<15}{value}\n");
        }
    };
    line("title id", s("title_id"));
    line("name", s("display_name"));
    line("version", s("version"));
    line("system", s("system"));
    line("region", s("region"));
    let list = |k: &str| {
        (v[k].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    line("languages", list("languages"));
    line("tags", list("tags"));
    line("description", s("description").replace('\n', " "));
    if let Some(d) = v["dat"].as_object() {
        let g = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        line("DAT", format!("{} (from {})", g("name"), g("source")));
    }
    if let Some(a) = v["archive"].as_object() {
        let g = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        line("came as", format!("{} archive {}", g("format"), g("name")));
    }
    line("size", format!("{} bytes", v["total_size"]));
    line(
        "chunks",
        format!(
            "{} ({} distinct, average {} bytes)",
            v["chunk_count"], v["unique_chunks"], v["avg_chunk"]
        ),
    );
    let packs: Vec<String> = (v["packs_needed"].as_array().into_iter().flatten())
        .map(|p| p.to_string())
        .collect();
    let mut packs = packs.join(", ");
    if v["chunks_not_in_index"].as_u64().unwrap_or(0) > 0 {
        packs += &format!(" ({} chunks NOT IN THE INDEX)", v["chunks_not_in_index"]);
    }
    line("packs needed", packs);
    line(
        "deltas",
        format!(
            "{} of the distinct chunks ({:.0}% of their bytes) are stored as deltas",
            v["delta_chunks"],
            v["delta_share"].as_f64().unwrap_or(0.0) * 100.0
        ),
    );
    line(
        "signing key",
        format!("{} ({})", s("key_id"), s("public_key")),
    );
    let sig = &v["signature"];
    line(
        "signature",
        if sig["verified"].as_bool() == Some(true) {
            "verified against a trusted key".to_string()
        } else {
            format!("NOT VERIFIED: {}", sig["problem"].as_str().unwrap_or(""))
        },
    );
    if v["chunk_table_ok"].as_bool() != Some(true) {
        line(
            "chunk table",
            "DAMAGED (does not match the signed hash)".into(),
        );
    }
    out += "files:\n";
    for f in v["files"].as_array().into_iter().flatten() {
        let g = |k: &str| f[k].as_str().unwrap_or("-").to_string();
        out += &format!(
            "  {}  {} bytes  mode {}  {} chunks\n    blake3 {}\n",
            g("path"),
            f["size"],
            g("mode"),
            f["chunks"],
            g("blake3")
        );
        if f["crc32"].is_string() {
            out += &format!(
                "    crc32 {}  md5 {}\n    sha1 {}\n    sha256 {}\n",
                g("crc32"),
                g("md5"),
                g("sha1"),
                g("sha256")
            );
        }
        let p = &f["headerless"];
        if p.is_object() {
            let g = |k: &str| p[k].as_str().unwrap_or("-").to_string();
            out += &format!(
                "    headerless ({} header, {} bytes skipped): {} bytes
                     crc32 {}  md5 {}
    sha1 {}
    sha256 {}
",
                g("detector"),
                p["header_size"],
                p["size"],
                g("crc32"),
                g("md5"),
                g("sha1"),
                g("sha256")
            );
        }
    }
    out
}
