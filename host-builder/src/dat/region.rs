//! The region a DAT game's name gives: No-Intro and Redump region names, TOSEC country
//! codes.

/// The region named by the first parenthesised group of `name` that holds only region
/// names, e.g. "Foo (USA, Europe) (Rev 1)" -> "USA, Europe", or TOSEC country codes, e.g.
/// "Foo (1990)(Sega)(US-JP)" -> "USA, Japan". Empty when there is none.
pub fn region_from_name(name: &str) -> String {
    let mut rest = name;
    while let Some(open) = rest.find('(') {
        let inside = &rest[open + 1..];
        let Some(close) = inside.find(')') else {
            break;
        };
        let group = &inside[..close];
        if let Some(region) = no_intro_region(group).or_else(|| tosec_region(group)) {
            return region;
        }
        rest = &inside[close + 1..];
    }
    String::new()
}

/// Region names as No-Intro and Redump write them.
const REGIONS: &[&str] = &[
    "World",
    "USA",
    "Europe",
    "Japan",
    "Asia",
    "Australia",
    "Brazil",
    "Canada",
    "China",
    "France",
    "Germany",
    "Hong Kong",
    "Italy",
    "Korea",
    "Netherlands",
    "Spain",
    "Sweden",
    "Taiwan",
    "UK",
    "Russia",
    "Scandinavia",
    "Latin America",
    "Greece",
    "Portugal",
    "Denmark",
    "Finland",
    "Norway",
    "Poland",
    "Mexico",
    "Argentina",
    "Unknown",
];

/// TOSEC's country codes (ISO 3166, upper case) for the regions above.
const TOSEC_CODES: &[(&str, &str)] = &[
    ("AR", "Argentina"),
    ("AS", "Asia"),
    ("AU", "Australia"),
    ("BR", "Brazil"),
    ("CA", "Canada"),
    ("CN", "China"),
    ("DE", "Germany"),
    ("DK", "Denmark"),
    ("ES", "Spain"),
    ("EU", "Europe"),
    ("FI", "Finland"),
    ("FR", "France"),
    ("GB", "UK"),
    ("GR", "Greece"),
    ("HK", "Hong Kong"),
    ("IT", "Italy"),
    ("JP", "Japan"),
    ("KR", "Korea"),
    ("MX", "Mexico"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("PL", "Poland"),
    ("PT", "Portugal"),
    ("RU", "Russia"),
    ("SE", "Sweden"),
    ("TW", "Taiwan"),
    ("US", "USA"),
];

/// "USA, Europe" -> itself (spacing normalised) when every part is a region name.
fn no_intro_region(group: &str) -> Option<String> {
    let parts: Vec<&str> = group.split(',').map(str::trim).collect();
    parts
        .iter()
        .all(|p| REGIONS.contains(p))
        .then(|| parts.join(", "))
}

/// "US-JP" -> "USA, Japan" when every part is a TOSEC country code of a known region.
fn tosec_region(group: &str) -> Option<String> {
    let names: Option<Vec<&str>> = group
        .split('-')
        .map(|code| {
            TOSEC_CODES
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, name)| *name)
        })
        .collect();
    names.map(|n| n.join(", "))
}
