//! Rules for the names a manifest may carry: file paths and title ids.
//!
//! Paths are checked before use even when the manifest is signed (a signature proves who
//! made a manifest, not that its author was careful). The rules assume the install target
//! may be FAT32 or exFAT: case-insensitive, with a restricted character set.

use crate::limits::{MAX_COMPONENT_LEN, MAX_PATH_DEPTH, MAX_PATH_LEN, MAX_TITLE_ID_LEN};
use core::fmt;

/// Why a path or title id is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// Empty path or title id.
    Empty,
    /// Longer than [`MAX_PATH_LEN`] / [`MAX_TITLE_ID_LEN`].
    TooLong,
    /// A component longer than [`MAX_COMPONENT_LEN`].
    ComponentTooLong,
    /// Deeper than [`MAX_PATH_DEPTH`].
    TooDeep,
    /// Starts with `/`.
    Absolute,
    /// An empty component (`a//b` or a trailing `/`).
    EmptyComponent,
    /// A `.` component.
    DotComponent,
    /// A `..` component.
    DotDotComponent,
    /// Contains a NUL byte.
    Nul,
    /// Contains a backslash.
    Backslash,
    /// Contains a character FAT32/exFAT cannot store (`: ? * " < > |` or a control
    /// character), or a component ending in a dot or a space.
    NotFatSafe,
    /// A title id that contains `/` or starts with `.`.
    NotSingleComponent,
    /// A name Windows reserves for a device (`CON`, `NUL`, `COM1`, `LPT1`, ... with or
    /// without an extension): no Windows program can create or open such a file. Checked
    /// by the builder (see [`windows_reserved`]); readers do not refuse it.
    WindowsReserved,
    /// A name romlib keeps for its own files and folders in an install folder.
    Reserved,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::Empty => "is empty",
            PathError::TooLong => "is too long",
            PathError::ComponentTooLong => "has a component longer than 255 bytes",
            PathError::TooDeep => "is nested too deep",
            PathError::Absolute => "is absolute",
            PathError::EmptyComponent => "has an empty component",
            PathError::DotComponent => "has a '.' component",
            PathError::DotDotComponent => "has a '..' component",
            PathError::Nul => "contains a NUL byte",
            PathError::Backslash => "contains a backslash",
            PathError::NotFatSafe => {
                "has a character FAT32/exFAT cannot store (: ? * \" < > | or a control \
                 character) or a name ending in a dot or space"
            }
            PathError::NotSingleComponent => "is not a single path component",
            PathError::Reserved => {
                "is a name romlib keeps for itself in an install folder (.romlib-installed, \
                 .romlib-kept, .romlib-staging, .romlib-resume, in any case)"
            }
            PathError::WindowsReserved => {
                "is a name Windows reserves for a device (CON, PRN, AUX, NUL, COM0-9, LPT0-9, \
                 CONIN$, CONOUT$, with any extension)"
            }
        })
    }
}

/// Checks a relative file path inside a game (components separated by `/`).
///
/// With `fat_safe`, also refuses names FAT32/exFAT cannot store.
pub fn check_path(path: &str, fat_safe: bool) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if path.contains('\0') {
        return Err(PathError::Nul);
    }
    if path.contains('\\') {
        return Err(PathError::Backslash);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    let mut depth = 0;
    for comp in path.split('/') {
        depth += 1;
        check_component(comp, fat_safe)?;
    }
    if depth > MAX_PATH_DEPTH {
        return Err(PathError::TooDeep);
    }
    Ok(())
}

/// Checks one path component.
pub fn check_component(comp: &str, fat_safe: bool) -> Result<(), PathError> {
    match comp {
        "" => return Err(PathError::EmptyComponent),
        "." => return Err(PathError::DotComponent),
        ".." => return Err(PathError::DotDotComponent),
        _ => {}
    }
    if comp.len() > MAX_COMPONENT_LEN {
        return Err(PathError::ComponentTooLong);
    }
    if comp.contains('\0') {
        return Err(PathError::Nul);
    }
    if comp.contains('\\') {
        return Err(PathError::Backslash);
    }
    if is_reserved(comp) {
        return Err(PathError::Reserved);
    }
    if fat_safe && !is_fat_safe(comp) {
        return Err(PathError::NotFatSafe);
    }
    Ok(())
}

/// The names romlib gives its own entries in an install folder: the completion marker and
/// the kept-files note in a game's folder, the staging and resume folders beside the games.
/// No game may carry a file or folder by one of these names, in any case (a game's
/// `.romlib-installed` would pass for the marker; FAT and exFAT ignore case).
pub const RESERVED_NAMES: [&str; 4] = [
    ".romlib-installed",
    ".romlib-kept",
    ".romlib-staging",
    ".romlib-resume",
];

/// Whether `comp` is one of [`RESERVED_NAMES`], in any case.
pub fn is_reserved(comp: &str) -> bool {
    RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(comp))
}

/// Whether FAT32/exFAT can store `name` as one component.
pub fn is_fat_safe(name: &str) -> bool {
    let bad_char = name.chars().any(|c| {
        (c as u32) < 0x20 || c == '\x7f' || matches!(c, ':' | '?' | '*' | '"' | '<' | '>' | '|')
    });
    !bad_char && !name.ends_with('.') && !name.ends_with(' ')
}

/// The first component of `path` (`/`-separated) that Windows reserves for a device:
/// `CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9` (and `COM`/`LPT` with a
/// superscript 1, 2 or 3), `CONIN$`, `CONOUT$`, in any case, alone or before a dot (`nul.bin`,
/// `Con.tar.gz`), with any spaces before that dot (`NUL .txt`). Such a file cannot be
/// created or opened on Windows (the name opens the device), so a library or an install
/// holding one would differ between systems.
pub fn windows_reserved(path: &str) -> Option<&str> {
    path.split('/').find(|comp| {
        let stem = comp.split('.').next().unwrap_or("").trim_end_matches(' ');
        let is = |name: &str| stem.eq_ignore_ascii_case(name);
        if ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
            .into_iter()
            .any(is)
        {
            return true;
        }
        // COM or LPT and one digit (superscripts 1 to 3 included).
        let mut chars = stem.chars();
        let head: [Option<char>; 3] = [chars.next(), chars.next(), chars.next()];
        let (digit, rest) = (chars.next(), chars.next());
        let port = match head {
            [Some(a), Some(b), Some(c)] => {
                let h = [
                    a.to_ascii_uppercase(),
                    b.to_ascii_uppercase(),
                    c.to_ascii_uppercase(),
                ];
                h == ['C', 'O', 'M'] || h == ['L', 'P', 'T']
            }
            _ => false,
        };
        port && rest.is_none() && matches!(digit, Some('0'..='9' | '\u{b9}' | '\u{b2}' | '\u{b3}'))
    })
}

/// Checks a title id: one FAT-safe path component, not hidden (no leading `.`), at most
/// [`MAX_TITLE_ID_LEN`] bytes.
pub fn check_title_id(id: &str) -> Result<(), PathError> {
    if id.is_empty() {
        return Err(PathError::Empty);
    }
    if id.len() > MAX_TITLE_ID_LEN {
        return Err(PathError::TooLong);
    }
    if id.contains('/') || id.starts_with('.') {
        return Err(PathError::NotSingleComponent);
    }
    check_component(id, true)
}

/// Compares two names the way a case-insensitive file system does (Unicode simple lower
/// case, character by character).
pub fn fold_cmp(a: &str, b: &str) -> core::cmp::Ordering {
    let fa = a.chars().flat_map(char::to_lowercase);
    let fb = b.chars().flat_map(char::to_lowercase);
    fa.cmp(fb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(check_path("a/b.bin", true), Ok(()));
        assert_eq!(check_path("", true), Err(PathError::Empty));
        assert_eq!(check_path("/etc/passwd", true), Err(PathError::Absolute));
        assert_eq!(check_path("a/../b", true), Err(PathError::DotDotComponent));
        assert_eq!(check_path("..", true), Err(PathError::DotDotComponent));
        assert_eq!(check_path("a/./b", true), Err(PathError::DotComponent));
        assert_eq!(check_path("a//b", true), Err(PathError::EmptyComponent));
        assert_eq!(check_path("a/", true), Err(PathError::EmptyComponent));
        assert_eq!(check_path("a\\b", true), Err(PathError::Backslash));
        assert_eq!(check_path("a\0b", true), Err(PathError::Nul));
        assert_eq!(check_path("what?.bin", true), Err(PathError::NotFatSafe));
        assert_eq!(check_path("what?.bin", false), Ok(()));
        assert_eq!(check_path("trailing.", true), Err(PathError::NotFatSafe));
        assert_eq!(check_path("trailing /x", true), Err(PathError::NotFatSafe));
        assert_eq!(check_path("tab\there", true), Err(PathError::NotFatSafe));
        for reserved in [
            ".romlib-installed",
            "saves/.ROMLIB-KEPT",
            ".romlib-Staging/x",
            "a/.romlib-resume/b",
        ] {
            assert_eq!(check_path(reserved, false), Err(PathError::Reserved));
        }
        assert_eq!(check_path(".romlib-installed.bak", true), Ok(()));
        let deep = "a/".repeat(MAX_PATH_DEPTH) + "a";
        assert_eq!(check_path(&deep, true), Err(PathError::TooDeep));
    }

    #[test]
    fn title_ids() {
        assert_eq!(check_title_id("Super Game (USA) [v1.1]"), Ok(()));
        assert_eq!(check_title_id("a/b"), Err(PathError::NotSingleComponent));
        assert_eq!(
            check_title_id(".romlib-staging"),
            Err(PathError::NotSingleComponent)
        );
        assert_eq!(check_title_id(".."), Err(PathError::NotSingleComponent));
        assert_eq!(check_title_id("x:y"), Err(PathError::NotFatSafe));
    }

    #[test]
    fn windows_device_names() {
        for bad in [
            "CON",
            "con",
            "Nul",
            "aux.bin",
            "PRN.tar.gz",
            "COM1",
            "com9.txt",
            "LPT0",
            "lpt3.x",
            "NUL .txt",
            "CONIN$",
            "conout$.log",
            "COM\u{b9}",
            "lpt\u{b3}.bin",
        ] {
            assert_eq!(windows_reserved(bad), Some(bad), "{bad}");
        }
        assert_eq!(windows_reserved("game/con/x.bin"), Some("con"));
        for good in [
            "CONSOLE",
            "con_",
            "icon.png",
            "COM10",
            "LPT",
            "COMA",
            "NULL.bin",
            "xnul",
            "a/b/c.bin",
            "COM",
            "Aux Game",
            ".nul",
        ] {
            assert_eq!(windows_reserved(good), None, "{good}");
        }
    }

    #[test]
    fn folding() {
        assert_eq!(fold_cmp("ABC.bin", "abc.BIN"), core::cmp::Ordering::Equal);
        assert_eq!(fold_cmp("Ä", "ä"), core::cmp::Ordering::Equal);
        assert_ne!(fold_cmp("a", "b"), core::cmp::Ordering::Equal);
    }
}
