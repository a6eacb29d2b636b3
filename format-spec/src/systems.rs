//! Output layouts: where each handheld OS looks for a system's games. `install --layout
//! NAME` places a game in `<install-dir>/<folder>/<title-id>/`, the folder being the one
//! [`LAYOUTS`] gives for the system recorded in the game's signed manifest.
//!
//! This file is the one table to maintain. Folder names are the ones each OS creates and
//! assigns emulators by, relative to its ROM root (point `--install-dir` there):
//! - muOS (`/mnt/mmc/ROMS/`, or `/mnt/sdcard/ROMS/`): folders named after the system's
//!   short id; muOS assigns a core from the folder name.
//! - Knulli and Batocera (`/userdata/roms/`): EmulationStation system names.
//! - MinUI, and its forks NextUI and MinUI-based Miyoo Mini setups (`/mnt/SDCARD/Roms/`):
//!   "Display Name (TAG)", where the tag in parentheses picks the emulator pak (MinUI's
//!   `skeleton/BASE/README.txt`: "you must keep the uppercase tag name in parentheses");
//!   systems beyond FC, SFC, GB, GBC, GBA, MD and PS need MinUI's Extras paks.
//! - Onion OS (Miyoo Mini, `/mnt/SDCARD/Roms/`): upper-case short names.
//! - ArkOS and dArkOS (`/roms/` or `/roms2/`): EmulationStation names, a few differing from
//!   Batocera's (e.g. `atarilynx`).
//!
//! Source of every folder name: the per-OS platform tables of RomM's handheld client Grout
//! (github.com/rommapp/grout, `docs/platforms/MUOS.md`, `KNULLI.md`, `NEXTUI.md`,
//! `onion.md`, `arkos.md`), which list the folders each OS recognises; where an OS
//! recognises several, the first listed is used. MinUI's base names are checked against
//! MinUI's own skeleton README.

/// An output layout: a handheld OS's convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The name `--layout` takes.
    pub name: &'static str,
    /// Other names accepted for it.
    pub aliases: &'static [&'static str],
    /// What it is, for messages and `--help`.
    pub description: &'static str,
}

/// The layouts, in the column order of [`System::folders`].
pub const LAYOUTS: &[Layout] = &[
    Layout {
        name: "muos",
        aliases: &[],
        description: "muOS (install into ROMS/)",
    },
    Layout {
        name: "knulli",
        aliases: &["batocera"],
        description: "Knulli and Batocera (install into roms/)",
    },
    Layout {
        name: "minui",
        aliases: &["nextui"],
        description: "MinUI and NextUI (install into Roms/)",
    },
    Layout {
        name: "onion",
        aliases: &[],
        description: "Onion OS (install into Roms/)",
    },
    Layout {
        name: "arkos",
        aliases: &["darkos"],
        description: "ArkOS and dArkOS (install into roms/)",
    },
];

/// A system: its id, the names a manifest or a DAT may call it by, and its folder in each
/// layout (`None`: that OS has no emulator for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct System {
    /// Short id, e.g. "nes".
    pub id: &'static str,
    /// Other names: display names, No-Intro and Redump DAT names (without their
    /// parenthesised tags), MAME software list names. Compared ignoring case, spaces and
    /// punctuation.
    pub aliases: &'static [&'static str],
    /// Folder per layout, in [`LAYOUTS`] order: muOS, Knulli/Batocera, MinUI, Onion, ArkOS.
    pub folders: [Option<&'static str>; 5],
}

const fn sys(
    id: &'static str,
    aliases: &'static [&'static str],
    folders: [Option<&'static str>; 5],
) -> System {
    System {
        id,
        aliases,
        folders,
    }
}

/// The systems, by id.
#[rustfmt::skip]
pub const SYSTEMS: &[System] = &[
    sys("nes", &["Nintendo Entertainment System", "NES", "Famicom", "Family Computer", "fc",
                 "Nintendo - Nintendo Entertainment System", "Nintendo - Family Computer"],
        [Some("nes"), Some("nes"), Some("Nintendo Entertainment System (FC)"), Some("FC"), Some("nes")]),
    sys("fds", &["Famicom Disk System", "Family Computer Disk System",
                 "Nintendo - Family Computer Disk System", "famicom_flop"],
        [Some("fds"), Some("fds"), Some("Famicom Disk System (FDS)"), Some("FDS"), Some("fds")]),
    sys("snes", &["Super Nintendo Entertainment System", "Super Nintendo", "Super Famicom", "SNES",
                  "sfc", "Nintendo - Super Nintendo Entertainment System"],
        [Some("snes"), Some("snes"), Some("Super Nintendo Entertainment System (SFC)"), Some("SFC"), Some("snes")]),
    sys("gb", &["Game Boy", "Nintendo - Game Boy", "gameboy"],
        [Some("gb"), Some("gb"), Some("Game Boy (GB)"), Some("GB"), Some("gb")]),
    sys("gbc", &["Game Boy Color", "Nintendo - Game Boy Color"],
        [Some("gbc"), Some("gbc"), Some("Game Boy Color (GBC)"), Some("GBC"), Some("gbc")]),
    sys("gba", &["Game Boy Advance", "Nintendo - Game Boy Advance"],
        [Some("gba"), Some("gba"), Some("Game Boy Advance (GBA)"), Some("GBA"), Some("gba")]),
    sys("n64", &["Nintendo 64", "Nintendo - Nintendo 64"],
        [Some("n64"), Some("n64"), Some("Nintendo 64 (N64)"), Some("N64"), Some("n64")]),
    sys("nds", &["Nintendo DS", "Nintendo - Nintendo DS"],
        [Some("nds"), Some("nds"), Some("Nintendo DS (NDS)"), Some("NDS"), Some("nds")]),
    sys("virtualboy", &["Virtual Boy", "Nintendo - Virtual Boy", "vboy"],
        [Some("vb"), Some("virtualboy"), Some("Virtual Boy (VB)"), Some("VB"), Some("virtualboy")]),
    sys("megadrive", &["Mega Drive", "Genesis", "Sega Genesis", "Sega Mega Drive", "md",
                       "Sega - Mega Drive - Genesis", "megadriv"],
        [Some("genesis"), Some("megadrive"), Some("Sega Genesis (MD)"), Some("MD"), Some("megadrive")]),
    sys("mastersystem", &["Master System", "Sega Master System", "sms",
                          "Sega - Master System - Mark III"],
        [Some("ms"), Some("mastersystem"), Some("Sega Master System (SMS)"), Some("MS"), Some("mastersystem")]),
    sys("gamegear", &["Game Gear", "Sega Game Gear", "gg", "Sega - Game Gear"],
        [Some("gg"), Some("gamegear"), Some("Sega Game Gear (GG)"), Some("GG"), Some("gamegear")]),
    sys("pcengine", &["PC Engine", "TurboGrafx-16", "TurboGrafx 16", "pce",
                      "NEC - PC Engine - TurboGrafx-16"],
        [Some("pce"), Some("pcengine"), Some("TurboGrafx-16 (PCE)"), Some("PCE"), Some("pcengine")]),
    sys("psx", &["PlayStation", "Sony PlayStation", "ps1", "Sony - PlayStation"],
        [Some("psx"), Some("psx"), Some("Sony PlayStation (PS)"), Some("PS"), Some("psx")]),
    sys("lynx", &["Atari Lynx", "Atari - Lynx"],
        [Some("lynx"), Some("lynx"), Some("Atari Lynx (LYNX)"), Some("LYNX"), Some("atarilynx")]),
    sys("atari7800", &["Atari 7800", "Atari - 7800", "a7800"],
        [Some("a7800"), Some("atari7800"), Some("Atari 7800 (A7800)"), Some("SEVENTYEIGHTHUNDRED"), Some("atari7800")]),
    sys("atari2600", &["Atari 2600", "Atari - 2600", "a2600"],
        [Some("a2600"), Some("atari2600"), Some("Atari 2600 (A2600)"), Some("ATARI"), Some("atari2600")]),
    sys("ngp", &["Neo Geo Pocket", "SNK - Neo Geo Pocket"],
        [Some("ngp"), Some("ngp"), Some("Neo Geo Pocket (NGP)"), Some("NGP"), Some("ngp")]),
    sys("ngpc", &["Neo Geo Pocket Color", "SNK - Neo Geo Pocket Color"],
        [Some("ngpc"), Some("ngpc"), Some("Neo Geo Pocket Color (NGPC)"), Some("NGP"), Some("ngpc")]),
    sys("arcade", &["Arcade", "MAME"],
        [Some("arcade"), Some("arcade"), Some("Arcade (FBN)"), Some("ARCADE"), Some("arcade")]),
];

/// Whether `a` and `b` are the same name ignoring case and everything but letters and
/// digits ("Game Boy" = "gameboy" = "GAME-BOY"). Compared without allocating.
pub fn same_name(a: &str, b: &str) -> bool {
    fn key(s: &str) -> impl Iterator<Item = char> + '_ {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
    }
    key(a).eq(key(b))
}

/// The layout named `name` (or one of its aliases), ignoring case.
pub fn layout(name: &str) -> Option<(usize, &'static Layout)> {
    LAYOUTS.iter().enumerate().find(|(_, l)| {
        l.name.eq_ignore_ascii_case(name) || l.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// The system a manifest's `system` field or a DAT's name means: matched against ids and
/// aliases; a DAT name's trailing parenthesised tags ("(Headered)", "(20240101-000000)")
/// are left out first.
pub fn system(name: &str) -> Option<&'static System> {
    let mut name = name.trim();
    // "Nintendo - Nintendo Entertainment System (Headered) (20240101)" -> without the tags.
    while let Some(open) = name.strip_suffix(')').and_then(|s| s.rfind('(')) {
        name = name[..open].trim_end();
    }
    if name.is_empty() {
        return None;
    }
    SYSTEMS
        .iter()
        .find(|s| same_name(s.id, name) || s.aliases.iter().any(|a| same_name(a, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_are_found_by_id_alias_and_dat_name() {
        assert_eq!(system("nes").unwrap().id, "nes");
        assert_eq!(system("Game Boy").unwrap().id, "gb");
        assert_eq!(system("GAME-BOY").unwrap().id, "gb");
        assert_eq!(system("gameboy").unwrap().id, "gb");
        assert_eq!(
            system("Nintendo - Nintendo Entertainment System (Headered) (20240101-000000)")
                .unwrap()
                .id,
            "nes"
        );
        assert_eq!(
            system("Sega - Mega Drive - Genesis").unwrap().id,
            "megadrive"
        );
        assert_eq!(system("a7800").unwrap().id, "atari7800");
        assert!(system("Amiga").is_none());
        assert!(system("").is_none());
        assert!(system("(x)").is_none());
    }

    #[test]
    fn layouts_by_name_and_alias() {
        assert_eq!(layout("muOS").unwrap().1.name, "muos");
        assert_eq!(layout("batocera").unwrap().1.name, "knulli");
        assert_eq!(layout("nextui").unwrap().1.name, "minui");
        assert!(layout("garlic").is_none());
    }

    /// Every folder is one safe path component (the install joins it under the install
    /// directory), distinct within its layout, and every id is unique; the four layouts
    /// the issue names have a folder for every system but the ones their OS lacks.
    #[test]
    fn the_table_is_consistent() {
        for (i, s) in SYSTEMS.iter().enumerate() {
            assert!(SYSTEMS[i + 1..].iter().all(|t| t.id != s.id), "{}", s.id);
            for (li, f) in s.folders.iter().enumerate() {
                let Some(f) = f else { continue };
                assert!(crate::path::check_title_id(f).is_ok(), "{f:?}");
                let clash = SYSTEMS[i + 1..]
                    .iter()
                    .any(|t| t.folders[li].is_some_and(|g| g.eq_ignore_ascii_case(f)));
                // Onion files NGP and NGPC in one folder, as its emulator plays both.
                assert!(!clash || *f == "NGP", "{f} twice in {}", LAYOUTS[li].name);
            }
            // Each alias leads back to its own system.
            for a in s.aliases {
                assert_eq!(system(a).unwrap().id, s.id, "{a}");
            }
        }
    }
}
