//! `romlib.toml`: optional metadata in a game folder, stored in the game's signed manifest.
//!
//! ```toml
//! name = "Pocket Quest"            # display name
//! system = "Game Boy"
//! region = "USA, Europe"
//! languages = ["en", "fr"]
//! version = "1.1"
//! tags = ["rpg", "homebrew"]
//! description = "A short adventure."
//! ```
//! Every key is optional; an unknown key is refused (a typo would otherwise vanish
//! silently). The file sits at the top of the game folder and is not a game file.

use crate::error::{Error, Result};
use romlib_format::limits::{MAX_TAGS, MAX_TEXT_LEN};
use serde::Deserialize;
use std::path::Path;

/// The sidecar's file name, at the top of a game folder.
pub const SIDECAR_NAME: &str = "romlib.toml";

/// Largest sidecar read, in bytes.
const MAX_SIDECAR_LEN: u64 = 64 << 10;

/// The metadata of one game folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    /// Display name.
    pub name: Option<String>,
    /// The system the game runs on.
    pub system: Option<String>,
    /// Region, e.g. "USA" or "USA, Europe".
    pub region: Option<String>,
    /// Languages.
    #[serde(default)]
    pub languages: Vec<String>,
    /// The game's own version string.
    pub version: Option<String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Longer description.
    pub description: Option<String>,
}

impl Sidecar {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = crate::fsio::read_limited(path, MAX_SIDECAR_LEN, "metadata file")?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| Error::input(path, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
        Self::parse(text).map_err(|problem| Error::input(path, problem))
    }

    /// Parses sidecar text; the error is one line naming the line and field.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let s: Sidecar = toml::from_str(text).map_err(|e| {
            let mut msg = e.message().trim().replace('\n', "; ");
            let Some(at) = e.span().map(|r| r.start.min(text.len())) else {
                return msg;
            };
            let line = text[..at].matches('\n').count() + 1;
            // Name the field even when the parser's message does not (bad string syntax).
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            if let Some((key, _)) = text[start..].split_once('=') {
                let key = key.trim();
                if !key.is_empty() && !msg.contains(key) && !key.contains(char::is_whitespace) {
                    msg = format!("field `{key}`: {msg}");
                }
            }
            format!("line {line}: {msg}")
        })?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let singles = [
            ("name", &self.name),
            ("system", &self.system),
            ("region", &self.region),
            ("version", &self.version),
            ("description", &self.description),
        ];
        for (field, v) in singles {
            if let Some(v) = v {
                check_text(field, v)?;
                if field != "description" && v.trim().is_empty() {
                    return Err(format!("field `{field}` is empty"));
                }
            }
        }
        for (field, list) in [("languages", &self.languages), ("tags", &self.tags)] {
            if list.len() > MAX_TAGS {
                return Err(format!("field `{field}` has more than {MAX_TAGS} entries"));
            }
            for v in list {
                check_text(field, v)?;
                if v.trim().is_empty() {
                    return Err(format!("field `{field}` has an empty entry"));
                }
            }
        }
        Ok(())
    }
}

fn check_text(field: &str, v: &str) -> std::result::Result<(), String> {
    if v.len() > MAX_TEXT_LEN {
        return Err(format!(
            "field `{field}` is longer than {MAX_TEXT_LEN} bytes"
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(format!("field `{field}` holds a control character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_sidecar() {
        let s = Sidecar::parse(
            "name = \"Pocket Quest\"\nsystem = \"Game Boy\"\nregion = \"USA, Europe\"\n\
             languages = [\"en\", \"fr\"]\nversion = \"1.1\"\ntags = [\"rpg\"]\n\
             description = \"\"\"Two\nlines\"\"\"\n",
        )
        .unwrap();
        assert_eq!(s.name.as_deref(), Some("Pocket Quest"));
        assert_eq!(s.languages, ["en", "fr"]);
        assert_eq!(s.tags, ["rpg"]);
        assert_eq!(s.description.as_deref(), Some("Two\nlines"));
        assert_eq!(Sidecar::parse("").unwrap(), Sidecar::default());
    }

    #[test]
    fn bad_fields_are_named() {
        let e = Sidecar::parse("name = \"x\"\nsytem = \"Game Boy\"\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("sytem"), "{e}");
        let e = Sidecar::parse("name = \"x\"\n\ntags = \"rpg\"\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("sequence"), "{e}");
        let e = Sidecar::parse("region = 3\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("string"), "{e}");
        let e = Sidecar::parse("name = \"  \"\n").unwrap_err();
        assert!(e.contains("`name`"), "{e}");
        let e = Sidecar::parse("tags = [\"a\u{7}\"]\n").unwrap_err();
        assert!(e.contains("`tags`"), "{e}");
        let e = Sidecar::parse("name = \"unterminated\n").unwrap_err();
        assert!(e.starts_with("line 1") && !e.contains('\n'), "{e}");
    }
}
