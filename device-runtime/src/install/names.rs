//! The one description of the names romlib writes in an install folder's staging and
//! resume folders, and the one parser of them.
//!
//! Everything in an install folder may have been written by someone else (a theme, a ROM
//! pack unpacked onto the card, another front end). A name listed there becomes a path to
//! act on only through [`staging_name`] or [`resume_name`], which accept exactly the names a
//! romlib operation could have written: a title id valid by SPEC's rules (one component,
//! not starting with a dot, FAT-safe, at most 255 bytes, UTF-8) and a known suffix. Any
//! other name is reported and left alone.

use crate::folder::Kind;
use romlib_format::path::check_title_id;
use std::ffi::OsStr;

/// What a staging entry `<title>.<role>` is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `.new`: an install being written, or (just after a one-step swap) the copy it
    /// replaced.
    New,
    /// `.old`: the copy a reinstall replaced, until the user's files are carried out.
    Old,
    /// `.del`: a game being uninstalled, until the user's files are carried out.
    Del,
    /// `.repair`: a repair's rewritten files, until they are renamed into the game.
    Repair,
}

impl Role {
    const ALL: [Role; 4] = [Role::New, Role::Old, Role::Del, Role::Repair];

    /// The suffix, with its dot.
    pub fn suffix(self) -> &'static str {
        match self {
            Role::New => ".new",
            Role::Old => ".old",
            Role::Del => ".del",
            Role::Repair => ".repair",
        }
    }
}

/// A parsed staging entry of a game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The game's title id (valid).
    pub title: String,
    /// What the entry is for.
    pub role: Role,
}

impl Staged {
    /// The entry's name.
    pub fn name(&self) -> String {
        staging_entry(&self.title, self.role)
    }
}

/// A name romlib writes in the staging folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StagingName {
    /// `<title>.<role>`, a folder.
    Game(Staged),
    /// `.download.<pid>.<n>`: a file a network install downloads a manifest or locator
    /// into and unlinks at once (left only by a kill in between).
    Download,
}

/// The staging entry of game `title` for `role`.
pub fn staging_entry(title: &str, role: Role) -> String {
    format!("{title}{}", role.suffix())
}

/// The name of scratch download number `n` of process `pid`.
pub fn download_entry(pid: u32, n: u64) -> String {
    format!(".download.{pid}.{n}")
}

/// What a staging folder entry called `name`, of kind `kind`, is; `None` for anything a
/// romlib operation never writes there (the entry is then reported and left alone).
pub fn staging_name(name: &OsStr, kind: Kind) -> Option<StagingName> {
    let name = name.to_str()?;
    if let Some(rest) = name.strip_prefix(".download.") {
        let (pid, n) = rest.split_once('.')?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        return (kind == Kind::File && digits(pid) && digits(n)).then_some(StagingName::Download);
    }
    if kind != Kind::Dir {
        return None;
    }
    Role::ALL.into_iter().find_map(|role| {
        let title = name.strip_suffix(role.suffix())?;
        check_title_id(title).ok()?;
        Some(StagingName::Game(Staged {
            title: title.to_string(),
            role,
        }))
    })
}

/// An entry romlib writes in the resume folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resumed {
    /// `<title>`, a folder: the files a cut-off network install had written.
    Files(String),
    /// `<title>.manifest`, a file: the manifest they were written from.
    Manifest(String),
}

impl Resumed {
    /// The game's title id.
    pub fn title(&self) -> &str {
        match self {
            Resumed::Files(t) | Resumed::Manifest(t) => t,
        }
    }
}

/// What a resume folder entry called `name`, of kind `kind`, is; `None` for anything else.
pub fn resume_name(name: &OsStr, kind: Kind) -> Option<Resumed> {
    let name = name.to_str()?;
    match kind {
        Kind::Dir => check_title_id(name)
            .ok()
            .map(|()| Resumed::Files(name.to_string())),
        Kind::File => {
            let title = name.strip_suffix(".manifest")?;
            check_title_id(title)
                .ok()
                .map(|()| Resumed::Manifest(title.to_string()))
        }
        _ => None,
    }
}

/// A game folder in the install folder: a valid title id that is a real folder (not a
/// link). Other entries beside the games are not romlib's business and are never touched.
pub fn game_folder(name: &OsStr, kind: Kind) -> Option<&str> {
    let name = name.to_str()?;
    (kind == Kind::Dir && check_title_id(name).is_ok()).then_some(name)
}

/// Every place, relative to the install folder, where a file of the user's in game
/// `title`'s folder can be while an install, reinstall or uninstall of it runs or after
/// one was killed: the game's folder, and the staging entries whose files are carried
/// back into it (a replaced copy is `.new` for the instant between a one-step swap and its
/// rename to `.old`). The next romlib-device command puts every such file back.
pub fn user_file_homes(title: &str) -> Vec<String> {
    let staging = super::STAGING_DIR;
    let mut homes = vec![title.to_string()];
    for role in [Role::Old, Role::New, Role::Del] {
        homes.push(format!("{staging}/{}", staging_entry(title, role)));
    }
    homes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn staged(name: &str) -> Option<StagingName> {
        staging_name(OsStr::new(name), Kind::Dir)
    }

    #[test]
    fn only_names_romlib_writes_parse() {
        assert_eq!(
            staged("Super Game (USA).old"),
            Some(StagingName::Game(Staged {
                title: "Super Game (USA)".into(),
                role: Role::Old
            }))
        );
        assert_eq!(
            staged("a.old.new"),
            Some(StagingName::Game(Staged {
                title: "a.old".into(),
                role: Role::New
            }))
        );
        for bad in [
            "...old",
            "..old",
            ".old",
            ".new",
            "..new",
            "..del",
            ".repair",
            "old",
            "a:b.old",
            "x.OLD",
            "foo",
            "foo.bak",
            "a\nb.old",
            "trailing..old",
            "..",
            ".",
            "",
            "a/b.old",
        ] {
            assert_eq!(staged(bad), None, "{bad:?}");
        }
        let long = format!("{}.old", "t".repeat(300));
        assert_eq!(staged(&long), None);
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let raw = OsString::from_vec(b"\xff.old".to_vec());
            assert_eq!(staging_name(&raw, Kind::Dir), None);
        }
        // Right name, wrong kind.
        for kind in [Kind::File, Kind::Symlink, Kind::Other] {
            assert_eq!(staging_name(OsStr::new("game.old"), kind), None);
        }
        assert_eq!(
            staging_name(OsStr::new(".download.12.3"), Kind::File),
            Some(StagingName::Download)
        );
        for bad in [
            ".download.12.3",
            ".download..3",
            ".download.1.x",
            ".download.1",
        ] {
            let k = if bad == ".download.12.3" {
                Kind::Symlink
            } else {
                Kind::File
            };
            assert_eq!(staging_name(OsStr::new(bad), k), None, "{bad:?}");
        }
        assert_eq!(
            staging_name(OsStr::new(&download_entry(7, 9)), Kind::File),
            Some(StagingName::Download)
        );
    }

    #[test]
    fn resume_names() {
        assert_eq!(
            resume_name(OsStr::new("g"), Kind::Dir),
            Some(Resumed::Files("g".into()))
        );
        assert_eq!(
            resume_name(OsStr::new("g.manifest"), Kind::File),
            Some(Resumed::Manifest("g".into()))
        );
        for (bad, kind) in [
            ("..", Kind::Dir),
            (".hidden", Kind::Dir),
            ("g", Kind::Symlink),
            ("g.manifest", Kind::Symlink),
            (".manifest", Kind::File),
            ("g.manifest", Kind::Dir),
        ] {
            let parsed = resume_name(OsStr::new(bad), kind);
            assert!(
                parsed.is_none() || matches!(parsed, Some(Resumed::Files(ref t)) if t == bad),
                "{bad:?} {kind:?}: {parsed:?}"
            );
        }
        assert_eq!(resume_name(OsStr::new(".."), Kind::Dir), None);
        assert_eq!(resume_name(OsStr::new("g"), Kind::Symlink), None);
    }
}
