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
//! Source of every folder name: each OS's own files, read for this table: muOS's folder
//! assignment lists (MustardOS/internal `init/MUOS/info/assign.json` and
//! `share/info/assign/<system>/global.ini`), Knulli's `es_systems.yml`
//! (knulli-cfw/distribution, Batocera's system keys), the `Roms` folders MinUI
//! (shauninman/MinUI `skeleton/BASE`, `skeleton/EXTRAS`) and NextUI (LoveRetro/NextUI)
//! ship, Onion's emulator packages (OnionUI/Onion `static/packages/Emu/*/config.json`,
//! `rompath`) and its ROM-folder reference, and dArkOS's `es_systems.cfg.rk3566`
//! (christianhaitian/dArkOS; ArkOS's last kept `es_systems.cfg` agrees wherever both have
//! a system); RomM's handheld client Grout (rommapp/grout, `cfw/<os>/data/platforms.json`)
//! where an OS's own files name nothing better. Where an OS recognises several folders,
//! the one it ships (or lists first) is used; an OS whose only folder for a system comes
//! from an optional expert package has `None`. Knulli and Batocera have no `arcade` system:
//! arcade sets go in `mame`. Some OSes play two systems from one folder (Onion's `NGP`,
//! `WS` and `MSX`), so those folders appear twice in a column.
//!
//! [`system`] finds a system by its id, an alias (No-Intro and Redump DAT names, short
//! names), or the folder any layout gives it, so an input laid out in system folders
//! copied from a card of any of these OSes is recognised.

/// An output layout: a handheld OS's convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The name `--layout` takes.
    pub name: &'static str,
    /// Other names accepted for it.
    pub aliases: &'static [&'static str],
    /// What it is, for messages and `--help`.
    pub description: &'static str,
    /// Whether the OS wants a game of several files (a cue sheet and its tracks, a `.m3u`
    /// and its discs) in a folder of its own named after the game (MinUI and NextUI
    /// document this); elsewhere such a game's files lie in the system folder.
    pub discs_in_folder: bool,
}

/// The layouts, in the column order of [`System::folders`].
pub const LAYOUTS: &[Layout] = &[
    Layout {
        name: "muos",
        aliases: &[],
        description: "muOS (install into ROMS/)",
        discs_in_folder: false,
    },
    Layout {
        name: "knulli",
        aliases: &["batocera"],
        description: "Knulli and Batocera (install into roms/)",
        discs_in_folder: false,
    },
    Layout {
        name: "minui",
        aliases: &["nextui"],
        description: "MinUI and NextUI (install into Roms/)",
        discs_in_folder: true,
    },
    Layout {
        name: "onion",
        aliases: &[],
        description: "Onion OS (install into Roms/)",
        discs_in_folder: false,
    },
    Layout {
        name: "arkos",
        aliases: &["darkos"],
        description: "ArkOS and dArkOS (install into roms/)",
        discs_in_folder: false,
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
    sys("nes", &["Nintendo Entertainment System", "NES", "Famicom", "Family Computer", "fc", "Nintendo - Nintendo Entertainment System", "Nintendo - Family Computer"],
        [Some("nes"), Some("nes"), Some("Nintendo Entertainment System (FC)"), Some("FC"), Some("nes")]),
    sys("fds", &["Famicom Disk System", "Family Computer Disk System", "Nintendo - Family Computer Disk System", "famicom_flop"],
        [Some("fds"), Some("fds"), Some("Famicom Disk System (FDS)"), Some("FDS"), Some("fds")]),
    sys("snes", &["Super Nintendo Entertainment System", "Super Nintendo", "Super Famicom", "SNES", "sfc", "Nintendo - Super Nintendo Entertainment System"],
        [Some("snes"), Some("snes"), Some("Super Nintendo Entertainment System (SFC)"), Some("SFC"), Some("snes")]),
    sys("satellaview", &["Nintendo - Satellaview", "BS-X"],
        [Some("satellaview"), Some("satellaview"), None, Some("SATELLAVIEW"), Some("satellaview")]),
    sys("sufami", &["Sufami Turbo", "Nintendo - Sufami Turbo"],
        [None, Some("sufami"), None, Some("SUFAMI"), Some("sufami")]),
    sys("gb", &["Game Boy", "Nintendo - Game Boy", "gameboy", "dmg"],
        [Some("gb"), Some("gb"), Some("Game Boy (GB)"), Some("GB"), Some("gb")]),
    sys("gbc", &["Game Boy Color", "Nintendo - Game Boy Color"],
        [Some("gbc"), Some("gbc"), Some("Game Boy Color (GBC)"), Some("GBC"), Some("gbc")]),
    sys("sgb", &["Super Game Boy", "Nintendo - Super Game Boy"],
        [None, Some("sgb"), Some("Super Game Boy (SGB)"), Some("SGB"), Some("sgb")]),
    sys("gba", &["Game Boy Advance", "Nintendo - Game Boy Advance"],
        [Some("gba"), Some("gba"), Some("Game Boy Advance (GBA)"), Some("GBA"), Some("gba")]),
    sys("n64", &["Nintendo 64", "Nintendo - Nintendo 64"],
        [Some("n64"), Some("n64"), Some("Nintendo 64 (N64)"), Some("N64"), Some("n64")]),
    sys("n64dd", &["Nintendo 64DD", "Nintendo - Nintendo 64DD", "64DD"],
        [Some("n64dd"), Some("n64dd"), None, None, Some("n64dd")]),
    sys("nds", &["Nintendo DS", "Nintendo - Nintendo DS"],
        [Some("nds"), Some("nds"), Some("Nintendo DS (NDS)"), Some("NDS"), Some("nds")]),
    sys("n3ds", &["Nintendo 3DS", "Nintendo - Nintendo 3DS", "3ds"],
        [None, Some("3ds"), None, None, None]),
    sys("virtualboy", &["Virtual Boy", "Nintendo - Virtual Boy", "vboy"],
        [Some("vb"), Some("virtualboy"), Some("Virtual Boy (VB)"), Some("VB"), Some("virtualboy")]),
    sys("pokemini", &["Pokemon Mini", "Pokémon Mini", "Nintendo - Pokemon Mini", "pokemonmini"],
        [Some("pokemini"), Some("pokemini"), Some("Pokémon mini (PKM)"), Some("POKE"), Some("pokemonmini")]),
    sys("gameandwatch", &["Game & Watch", "Game and Watch", "Nintendo - Game & Watch", "Handheld Electronic - Game and Watch"],
        [Some("gw"), Some("gameandwatch"), None, Some("GW"), Some("gameandwatch")]),
    sys("gc", &["GameCube", "Nintendo GameCube", "Nintendo - GameCube", "ngc"],
        [None, Some("gamecube"), None, None, Some("gc")]),
    sys("wii", &["Nintendo Wii", "Nintendo - Wii"],
        [None, Some("wii"), None, None, None]),
    sys("megadrive", &["Mega Drive", "Genesis", "Sega Genesis", "Sega Mega Drive", "md", "Sega - Mega Drive - Genesis", "megadriv"],
        [Some("genesis"), Some("megadrive"), Some("Sega Genesis (MD)"), Some("MD"), Some("megadrive")]),
    sys("mastersystem", &["Master System", "Sega Master System", "sms", "Sega - Master System - Mark III"],
        [Some("ms"), Some("mastersystem"), Some("Sega Master System (SMS)"), Some("MS"), Some("mastersystem")]),
    sys("gamegear", &["Game Gear", "Sega Game Gear", "gg", "Sega - Game Gear"],
        [Some("gg"), Some("gamegear"), Some("Sega Game Gear (GG)"), Some("GG"), Some("gamegear")]),
    sys("sg1000", &["SG-1000", "Sega SG-1000", "Sega - SG-1000"],
        [Some("sg1000"), Some("sg1000"), Some("Sega SG-1000 (SG1000)"), Some("SEGASGONE"), Some("sg-1000")]),
    sys("sega32x", &["32X", "Sega 32X", "Sega - 32X"],
        [Some("sega32x"), Some("sega32x"), Some("Sega 32X (32X)"), Some("THIRTYTWOX"), Some("sega32x")]),
    sys("segacd", &["Sega CD", "Mega-CD", "Mega CD", "Sega - Mega-CD - Sega CD", "megacd"],
        [Some("segacd"), Some("segacd"), Some("Sega CD (SEGACD)"), Some("SEGACD"), Some("segacd")]),
    sys("saturn", &["Sega Saturn", "Sega - Saturn"],
        [Some("saturn"), Some("saturn"), None, None, Some("saturn")]),
    sys("dreamcast", &["Sega Dreamcast", "Sega - Dreamcast"],
        [Some("dc"), Some("dreamcast"), None, None, Some("dreamcast")]),
    sys("vmu", &["Dreamcast VMU", "Visual Memory Unit", "Sega - Visual Memory Unit"],
        [Some("vemulator"), Some("vemulator"), None, None, Some("vmu")]),
    sys("naomi", &["Sega NAOMI", "Sega - Naomi"],
        [Some("naomi"), Some("naomi"), None, None, Some("naomi")]),
    sys("atomiswave", &["Sammy Atomiswave", "Sammy - Atomiswave"],
        [Some("atomiswave"), Some("atomiswave"), None, None, Some("atomiswave")]),
    sys("pcengine", &["PC Engine", "TurboGrafx-16", "TurboGrafx 16", "pce", "NEC - PC Engine - TurboGrafx-16"],
        [Some("pce"), Some("pcengine"), Some("TurboGrafx-16 (PCE)"), Some("PCE"), Some("pcengine")]),
    sys("pcenginecd", &["PC Engine CD", "TurboGrafx-CD", "TurboGrafx CD", "pcecd", "NEC - PC Engine CD - TurboGrafx-CD"],
        [Some("pcecd"), Some("pcenginecd"), None, Some("PCECD"), Some("pcenginecd")]),
    sys("supergrafx", &["SuperGrafx", "PC Engine SuperGrafx", "NEC - PC Engine SuperGrafx", "sgx"],
        [Some("supergrafx"), Some("supergrafx"), None, Some("SGFX"), Some("supergrafx")]),
    sys("pcfx", &["PC-FX", "NEC - PC-FX"],
        [Some("pcfx"), Some("pcfx"), None, None, Some("pcfx")]),
    sys("pc88", &["PC-8801", "PC-88", "NEC - PC-8801"],
        [None, Some("pc88"), None, None, None]),
    sys("pc98", &["PC-98", "PC-9801", "NEC - PC-98"],
        [Some("pc98"), Some("pc98"), None, None, Some("pc98")]),
    sys("psx", &["PlayStation", "Sony PlayStation", "ps1", "Sony - PlayStation"],
        [Some("psx"), Some("psx"), Some("Sony PlayStation (PS)"), Some("PS"), Some("psx")]),
    sys("psp", &["PlayStation Portable", "Sony PlayStation Portable", "Sony - PlayStation Portable"],
        [Some("psp"), Some("psp"), None, None, Some("psp")]),
    sys("ps2", &["PlayStation 2", "Sony PlayStation 2", "Sony - PlayStation 2"],
        [None, Some("ps2"), None, None, None]),
    sys("atari2600", &["Atari 2600", "Atari - 2600", "a2600", "Atari VCS"],
        [Some("a2600"), Some("atari2600"), Some("Atari 2600 (A2600)"), Some("ATARI"), Some("atari2600")]),
    sys("atari5200", &["Atari 5200", "Atari - 5200", "a5200"],
        [Some("a5200"), Some("atari5200"), Some("Atari 5200 (A5200)"), Some("FIFTYTWOHUNDRED"), Some("atari5200")]),
    sys("atari7800", &["Atari 7800", "Atari - 7800", "a7800"],
        [Some("a7800"), Some("atari7800"), Some("Atari 7800 (A7800)"), Some("SEVENTYEIGHTHUNDRED"), Some("atari7800")]),
    sys("atari800", &["Atari 800", "Atari 8-bit", "Atari - 8-bit"],
        [None, Some("atari800"), None, None, Some("atari800")]),
    sys("atarixegs", &["Atari XEGS", "Atari XE Game System", "Atari - XEGS"],
        [None, Some("xegs"), None, None, Some("atarixegs")]),
    sys("lynx", &["Atari Lynx", "Atari - Lynx", "atarilynx"],
        [Some("lynx"), Some("lynx"), Some("Atari Lynx (LYNX)"), Some("LYNX"), Some("atarilynx")]),
    sys("jaguar", &["Atari Jaguar", "Atari - Jaguar", "atarijaguar"],
        [Some("jaguar"), Some("jaguar"), None, None, Some("atarijaguar")]),
    sys("atarist", &["Atari ST", "Atari - ST"],
        [Some("atarist"), Some("atarist"), None, Some("ATARIST"), Some("atarist")]),
    sys("ngp", &["Neo Geo Pocket", "SNK - Neo Geo Pocket"],
        [Some("ngp"), Some("ngp"), Some("Neo Geo Pocket (NGP)"), Some("NGP"), Some("ngp")]),
    sys("ngpc", &["Neo Geo Pocket Color", "SNK - Neo Geo Pocket Color"],
        [Some("ngpc"), Some("ngpc"), Some("Neo Geo Pocket Color (NGPC)"), Some("NGP"), Some("ngpc")]),
    sys("neogeo", &["Neo Geo", "Neo-Geo", "SNK - Neo Geo", "Neo Geo MVS", "Neo Geo AES"],
        [Some("neogeo"), Some("neogeo"), None, Some("NEOGEO"), Some("neogeo")]),
    sys("neogeocd", &["Neo Geo CD", "SNK - Neo Geo CD", "neocd"],
        [Some("neocd"), Some("neogeocd"), None, Some("NEOCD"), Some("neogeocd")]),
    sys("wonderswan", &["WonderSwan", "Bandai - WonderSwan", "wswan"],
        [Some("ws"), Some("wswan"), None, Some("WS"), Some("wonderswan")]),
    sys("wonderswancolor", &["WonderSwan Color", "Bandai - WonderSwan Color", "wswanc"],
        [Some("wsc"), Some("wswanc"), None, Some("WS"), Some("wonderswancolor")]),
    sys("colecovision", &["ColecoVision", "Coleco - ColecoVision", "coleco"],
        [Some("colecovision"), Some("colecovision"), Some("Colecovision (COLECO)"), Some("COLECO"), Some("coleco")]),
    sys("intellivision", &["Mattel Intellivision", "Mattel - Intellivision", "intv"],
        [Some("intellivision"), Some("intellivision"), None, Some("INTELLIVISION"), Some("intellivision")]),
    sys("vectrex", &["GCE Vectrex", "GCE - Vectrex"],
        [Some("vectrex"), Some("vectrex"), None, Some("VECTREX"), Some("vectrex")]),
    sys("odyssey2", &["Odyssey2", "Magnavox Odyssey2", "Magnavox - Odyssey2", "Videopac G7000", "o2em"],
        [Some("odyssey2"), Some("o2em"), None, Some("ODYSSEY"), Some("odyssey2")]),
    sys("videopac", &["Videopac+", "Videopac Plus", "Philips - Videopac+", "videopacplus"],
        [Some("videopac"), Some("videopacplus"), None, Some("VIDEOPAC"), Some("videopac")]),
    sys("channelf", &["Channel F", "Fairchild Channel F", "Fairchild - Channel F"],
        [Some("channelf"), Some("channelf"), None, Some("FAIRCHILD"), Some("channelf")]),
    sys("supervision", &["Watara Supervision", "Watara - Supervision"],
        [Some("supervision"), Some("supervision"), None, Some("SUPERVISION"), Some("supervision")]),
    sys("megaduck", &["Mega Duck", "Cougar Boy", "Welback - Mega Duck"],
        [Some("megaduck"), Some("megaduck"), None, Some("MEGADUCK"), Some("megaduck")]),
    sys("arduboy", &["Arduboy Inc - Arduboy"],
        [Some("arduboy"), Some("arduboy"), None, None, Some("arduboy")]),
    sys("msx", &["MSX1", "Microsoft MSX", "Microsoft - MSX"],
        [Some("msx"), Some("msx1"), Some("Microsoft MSX (MSX)"), Some("MSX"), Some("msx")]),
    sys("msx2", &["MSX 2", "Microsoft MSX2", "Microsoft - MSX2"],
        [None, Some("msx2"), None, Some("MSX"), Some("msx2")]),
    sys("c64", &["Commodore 64", "Commodore - 64"],
        [Some("c64"), Some("c64"), Some("Commodore 64 (C64)"), Some("COMMODORE"), Some("c64")]),
    sys("c128", &["Commodore 128", "Commodore - 128"],
        [Some("c128"), Some("c128"), Some("Commodore 128 (C128)"), None, Some("c128")]),
    sys("vic20", &["VIC-20", "Commodore VIC-20", "Commodore - VIC-20", "c20"],
        [Some("vic20"), Some("c20"), Some("Commodore VIC20 (VIC)"), Some("VIC20"), Some("vic20")]),
    sys("pet", &["Commodore PET", "Commodore - PET"],
        [Some("pet"), Some("pet"), Some("Commodore PET (PET)"), None, None]),
    sys("cplus4", &["Commodore Plus/4", "Plus/4", "Commodore - Plus-4", "c16"],
        [None, Some("cplus4"), Some("Commodore Plus4 (PLUS4)"), None, Some("c16")]),
    sys("amiga", &["Commodore Amiga", "Commodore - Amiga", "amiga500"],
        [Some("amiga"), Some("amiga500"), Some("Amiga (PUAE)"), Some("AMIGA"), Some("amiga")]),
    sys("amigacd32", &["Amiga CD32", "Commodore - Amiga CD32", "cd32"],
        [None, Some("amigacd32"), None, None, Some("amigacd32")]),
    sys("zxspectrum", &["ZX Spectrum", "Sinclair ZX Spectrum", "Sinclair - ZX Spectrum", "Sinclair - ZX Spectrum +3", "zxs", "spectrum"],
        [Some("zxs"), Some("zxspectrum"), None, Some("ZXS"), Some("zxspectrum")]),
    sys("zx81", &["Sinclair ZX81", "Sinclair - ZX 81"],
        [Some("zx81"), Some("zx81"), None, None, Some("zx81")]),
    sys("amstradcpc", &["Amstrad CPC", "Amstrad - CPC", "cpc"],
        [Some("cpc"), Some("amstradcpc"), Some("Amstrad CPC (CPC)"), Some("CPC"), Some("amstradcpc")]),
    sys("gx4000", &["Amstrad GX4000", "Amstrad - GX4000"],
        [Some("gx4000"), Some("gx4000"), None, None, Some("gx4000")]),
    sys("x68000", &["Sharp X68000", "Sharp - X68000", "x68k"],
        [Some("x68000"), Some("x68000"), None, None, Some("x68000")]),
    sys("x1", &["Sharp X1", "Sharp - X1"],
        [Some("x1"), Some("x1"), None, None, Some("x1")]),
    sys("apple2", &["Apple II", "Apple - II", "appleii"],
        [None, Some("apple2"), None, None, Some("apple2")]),
    sys("bbcmicro", &["BBC Micro", "Acorn - BBC Micro", "bbc"],
        [None, Some("bbc"), None, None, Some("bbcmicro")]),
    sys("thomson", &["Thomson MO/TO", "Thomson - MOTO"],
        [None, Some("thomson"), None, None, Some("thomson")]),
    sys("dos", &["MS-DOS", "msdos", "IBM PC DOS"],
        [Some("dos"), Some("dos"), None, Some("DOS"), Some("dos")]),
    sys("scummvm", &["ScummVM", "scumm"],
        [Some("scummvm"), Some("scummvm"), None, Some("SCUMMVM"), Some("scummvm")]),
    sys("pico8", &["PICO-8", "Lexaloffle - PICO-8", "p8"],
        [Some("pico8"), Some("pico8"), Some("Pico-8 (P8)"), Some("PICO"), Some("pico-8")]),
    sys("segapico", &["Sega Pico", "Sega - PICO"],
        [None, Some("pico"), None, None, Some("pico")]),
    sys("tic80", &["TIC-80"],
        [Some("tic80"), Some("tic80"), None, Some("TIC"), Some("tic80")]),
    sys("lowresnx", &["LowRes NX"],
        [Some("lowresnx"), Some("lowresnx"), None, None, Some("lowresnx")]),
    sys("wasm4", &["WASM-4"],
        [Some("wasm4"), Some("wasm4"), None, None, Some("wasm4")]),
    sys("uzebox", &["Uzebox"],
        [Some("uzebox"), Some("uzebox"), None, None, Some("uzebox")]),
    sys("ports", &["PortMaster"],
        [Some("ports"), Some("ports"), None, Some("PORTS"), Some("ports")]),
    sys("openbor", &["OpenBOR"],
        [Some("openbor"), Some("openbor"), None, None, Some("openbor")]),
    sys("easyrpg", &["EasyRPG", "RPG Maker 2000", "RPG Maker 2003", "rpgmaker"],
        [Some("easyrpg"), Some("easyrpg"), None, None, Some("easyrpg")]),
    sys("solarus", &["Solarus"],
        [None, Some("solarus"), None, None, Some("solarus")]),
    sys("cavestory", &["Cave Story", "NXEngine"],
        [Some("cavestory"), Some("cavestory"), None, None, Some("cavestory")]),
    sys("doom", &["PrBoom"],
        [Some("doom"), Some("prboom"), Some("Doom (PRBOOM)"), None, Some("doom")]),
    sys("j2me", &["Java ME", "Java - J2ME"],
        [Some("java"), Some("j2me"), None, None, Some("j2me")]),
    sys("palm", &["Palm OS", "Palm - Palm OS"],
        [Some("palm"), None, None, None, Some("palm")]),
    sys("cdi", &["CD-i", "Philips CD-i", "Philips - CD-i"],
        [Some("cdi"), Some("cdi"), None, None, Some("cdimono1")]),
    sys("3do", &["Panasonic 3DO", "Panasonic - 3DO Interactive Multiplayer", "The 3DO Company - 3DO"],
        [Some("3do"), Some("3do"), None, None, Some("3do")]),
    sys("daphne", &["Daphne", "Hypseus", "LaserDisc"],
        [None, Some("daphne"), None, None, Some("daphne")]),
    sys("arcade", &["Arcade", "MAME", "FBNeo", "FinalBurn Neo", "fba"],
        [Some("arcade"), Some("mame"), Some("Arcade (FBN)"), Some("ARCADE"), Some("arcade")]),
];

/// The systems whose games the OS's emulators (MAME, FinalBurn Neo) load as zip archives
/// named after the set: a game built from such an archive installs as one again.
pub const ARCHIVE_SYSTEMS: &[&str] = &["arcade", "neogeo", "naomi", "atomiswave"];

/// Whether the games of system `id` install as archives ([`ARCHIVE_SYSTEMS`]).
pub fn wants_archive(id: &str) -> bool {
    ARCHIVE_SYSTEMS.contains(&id)
}

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
    // "Nintendo - Nintendo Entertainment System (Headered) (20240101)" -> without the tags.
    let name = without_tags(name);
    if name.is_empty() {
        return None;
    }
    SYSTEMS
        .iter()
        .find(|s| same_name(s.id, name) || s.aliases.iter().any(|a| same_name(a, name)))
        .or_else(|| {
            // A layout's folder name ("SEVENTYEIGHTHUNDRED", "ms"), its tag dropped above
            // for the MinUI ones ("Game Boy (GB)" is found by its alias already).
            SYSTEMS
                .iter()
                .find(|s| (s.folders.iter().flatten()).any(|f| same_name(without_tags(f), name)))
        })
}

/// `name` without its trailing parenthesised tags and surrounding spaces.
fn without_tags(name: &str) -> &str {
    let mut name = name.trim();
    while let Some(open) = name.strip_suffix(')').and_then(|s| s.rfind('(')) {
        name = name[..open].trim_end();
    }
    name
}

/// Folders a layout uses for two systems it plays with one emulator.
pub const SHARED_FOLDERS: &[&str] = &["NGP", "WS", "MSX"];

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
        assert!(system("Bally Astrocade").is_none());
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
                // Onion plays NGP and NGPC, WS and WSC, MSX and MSX2 from one folder each.
                assert!(
                    !clash || SHARED_FOLDERS.contains(f),
                    "{f} twice in {}",
                    LAYOUTS[li].name
                );
                // A folder copied from a card leads back to a system with that folder.
                let found = system(f).unwrap_or_else(|| panic!("{f} names no system"));
                // (A name two OSes give two systems leads to the first: Onion's PICO is
                // PICO-8, Knulli's pico the Sega Pico.)
                assert!(
                    found.folders.iter().flatten().any(|g| same_name(g, f)),
                    "{f} of {} leads to {}",
                    s.id,
                    found.id
                );
            }
            // Each id and alias leads back to its own system.
            assert_eq!(system(s.id).unwrap().id, s.id);
            for a in s.aliases {
                assert_eq!(system(a).unwrap().id, s.id, "{a}");
            }
        }
        // Every system the OSes list, at least 60.
        assert!(SYSTEMS.len() >= 60, "{}", SYSTEMS.len());
        for (li, l) in LAYOUTS.iter().enumerate() {
            let n = SYSTEMS.iter().filter(|s| s.folders[li].is_some()).count();
            assert!(n >= 25, "{} has folders for only {n} systems", l.name);
        }
    }

    #[test]
    fn card_folders_and_dat_names_find_their_systems() {
        for (name, id) in [
            ("SEVENTYEIGHTHUNDRED", "atari7800"),
            ("ms", "mastersystem"),
            ("Sega 32X (32X)", "sega32x"),
            ("THIRTYTWOX", "sega32x"),
            ("o2em", "odyssey2"),
            ("Sony - PlayStation Portable (20240101)", "psp"),
            ("Sinclair - ZX Spectrum +3", "zxspectrum"),
            ("Pokémon mini (PKM)", "pokemini"),
            ("pico", "pico8"),
            ("Sega - PICO", "segapico"),
            ("mame", "arcade"),
            ("NEOGEO", "neogeo"),
        ] {
            assert_eq!(system(name).map(|s| s.id), Some(id), "{name}");
        }
    }
}
