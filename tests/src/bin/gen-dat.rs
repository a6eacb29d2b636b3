//! Generates a deterministic MAME-style Logiqx XML DAT of at least SIZE MiB, to measure
//! the DAT reader's speed and memory on files as large as MAME's.
//!
//! `gen-dat [--listxml] SIZE_MIB OUT`
//!
//! With `--listxml` the file is shaped like MAME's `mame -listxml` output instead (about
//! 250 MiB and tens of thousands of machines for a real release): root `<mame build=..>`,
//! no header, and per machine the elements that make it large besides its roms: chips,
//! display, sound, inputs, DIP switches with their values, ports, driver status.
//!
//! The file has a header, then machines with a description, year, manufacturer, 5 to 40
//! roms (CRC-32 and SHA-1; now and then a bad dump or an undumped rom), a disk and device
//! references; a third are clones of an earlier machine. Names come from a fixed-seed
//! xorshift generator, so the same SIZE gives the same file.

use romlib_tests::Rng;
use std::io::Write;

const HEADER: &str = r#"<?xml version="1.0"?>
<!DOCTYPE datafile [
<!ELEMENT datafile (header?, machine*)>
<!ATTLIST machine name CDATA #REQUIRED>
]>
<datafile>
	<header>
		<name>gen-dat</name>
		<description>Synthetic MAME-style DAT</description>
		<version>1</version>
		<author>romlib gen-dat</author>
		<clrmamepro forcenodump="required"/>
	</header>
"#;

/// Manufacturers, some with characters that must be escaped or are not ASCII.
const MAKERS: &[&str] = &[
    "Namco",
    "Sega",
    "Taito &amp; Romstar",
    "Konami (コナミ)",
    "Capcom",
    "Data East",
    "Irem",
    "Nichibutsu",
];

const SOURCES: &[&str] = &[
    "namco/pacman",
    "sega/system16",
    "taito/taito_f2",
    "konami/twin16",
];

const REGIONS: &[&str] = &["maincpu", "audiocpu", "gfx1", "gfx2", "proms", "user1"];

const DEVICES: &[&str] = &[
    "z80",
    "m68000",
    "ym2151",
    "okim6295",
    "gfxdecode",
    "palette",
];

/// Appends `n` random bytes as lower-case hex.
fn hex(out: &mut Vec<u8>, r: &mut Rng, n: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut left = n;
    while left > 0 {
        let bits = r.next_u64().to_le_bytes();
        for &b in bits.iter().take(left) {
            out.push(DIGITS[usize::from(b >> 4)]);
            out.push(DIGITS[usize::from(b & 15)]);
        }
        left -= left.min(8);
    }
}

/// Appends a random lower-case name of 4 to 8 letters.
fn word(out: &mut Vec<u8>, r: &mut Rng) {
    let x = r.next_u64();
    for i in 0..4 + (x % 5) {
        out.push(b'a' + ((x >> (8 + 5 * i)) % 26) as u8);
    }
}

fn pick<'a>(r: &mut Rng, list: &[&'a str]) -> &'a str {
    list[(r.next_u64() % list.len() as u64) as usize]
}

const LISTXML_HEADER: &str = r#"<?xml version="1.0"?>
<!DOCTYPE mame [
<!ELEMENT mame (machine+)>
	<!ATTLIST mame build CDATA #IMPLIED>
	<!ATTLIST mame debug (yes|no) "no">
	<!ATTLIST mame mameconfig CDATA #REQUIRED>
	<!ELEMENT machine (description, year?, manufacturer?, biosset*, rom*, disk*, device_ref*, sample*, chip*, display*, sound?, input?, dipswitch*, configuration*, port*, adjuster*, driver?, feature*, device*, slot*, softwarelist*, ramoption*)>
		<!ATTLIST machine name CDATA #REQUIRED>
]>

<mame build="0.999 (gen-dat)" debug="no" mameconfig="10">
"#;

/// Appends the parts of a `-listxml` machine that are not roms (a real machine has
/// several KiB of them).
fn listxml_extras(out: &mut Vec<u8>, r: &mut Rng) {
    for (i, cpu) in ["maincpu", "audiocpu"].iter().enumerate() {
        out.extend_from_slice(
            format!(
                "\t\t<chip type=\"cpu\" tag=\"{cpu}\" name=\"{}\" clock=\"{}\"/>\n",
                pick(r, DEVICES),
                3_072_000 + i as u64 * 1000 + r.next_u64() % 1000
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(
        b"\t\t<chip type=\"audio\" tag=\"speaker\" name=\"Speaker\"/>\n\t\t<display tag=\"screen\" \
          type=\"raster\" rotate=\"90\" width=\"288\" height=\"224\" refresh=\"60.606061\" \
          pixclock=\"6144000\" htotal=\"384\" hbend=\"0\" hbstart=\"288\" vtotal=\"264\" \
          vbend=\"0\" vbstart=\"224\"/>\n\t\t<sound channels=\"1\"/>\n\t\t<input players=\"2\" \
          coins=\"2\">\n\t\t\t<control type=\"joy\" player=\"1\" buttons=\"1\" ways=\"4\"/>\n\
          \t\t\t<control type=\"joy\" player=\"2\" buttons=\"1\" ways=\"4\"/>\n\t\t</input>\n",
    );
    for d in 0..2 + r.next_u64() % 4 {
        out.extend_from_slice(
            format!(
                "\t\t<dipswitch name=\"Switch {d}\" tag=\"DSW{d}\" mask=\"{}\">\n",
                1u64 << (d % 8)
            )
            .as_bytes(),
        );
        for v in 0..2 {
            out.extend_from_slice(
                format!(
                    "\t\t\t<dipvalue name=\"{}\" value=\"{}\"{}/>\n",
                    if v == 0 { "Off" } else { "On" },
                    v << (d % 8),
                    if v == 0 { " default=\"yes\"" } else { "" }
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(b"\t\t</dipswitch>\n");
    }
    for p in 0..2 {
        out.extend_from_slice(format!("\t\t<port tag=\":IN{p}\">\n").as_bytes());
        for bit in [1, 2, 4, 8] {
            out.extend_from_slice(format!("\t\t\t<analog mask=\"{bit}\"/>\n").as_bytes());
        }
        out.extend_from_slice(b"\t\t</port>\n");
    }
    out.extend_from_slice(
        b"\t\t<driver status=\"good\" emulation=\"good\" savestate=\"supported\"/>\n\
          \t\t<feature type=\"sound\" status=\"imperfect\"/>\n",
    );
}

/// Appends one machine; `parent` is the last machine that is not a clone.
fn machine(out: &mut Vec<u8>, r: &mut Rng, index: u64, parent: &mut Vec<u8>, listxml: bool) {
    let mut name = Vec::new();
    word(&mut name, r);
    name.extend_from_slice(format!("{index:x}").as_bytes());
    out.extend_from_slice(b"\t<machine name=\"");
    out.extend_from_slice(&name);
    out.extend_from_slice(b"\" sourcefile=\"");
    out.extend_from_slice(pick(r, SOURCES).as_bytes());
    out.extend_from_slice(b".cpp\"");
    let clone = index % 3 == 1;
    if clone {
        out.extend_from_slice(b" cloneof=\"");
        out.extend_from_slice(parent);
        out.extend_from_slice(b"\" romof=\"");
        out.extend_from_slice(parent);
        out.push(b'"');
    }
    out.extend_from_slice(b">\n\t\t<description>");
    word(out, r);
    out.push(b' ');
    word(out, r);
    out.extend_from_slice(b" (World, set ");
    out.extend_from_slice(format!("{}", 1 + r.next_u64() % 4).as_bytes());
    out.extend_from_slice(b")</description>\n\t\t<year>");
    out.extend_from_slice(format!("{}", 1978 + r.next_u64() % 30).as_bytes());
    out.extend_from_slice(b"</year>\n\t\t<manufacturer>");
    out.extend_from_slice(pick(r, MAKERS).as_bytes());
    out.extend_from_slice(b"</manufacturer>\n");
    let roms = 5 + r.next_u64() % 36;
    for i in 0..roms {
        rom(out, r, &name, i);
    }
    if listxml {
        // A real -listxml machine: its hardware after the roms, disks are rarer.
        for _ in 0..1 + r.next_u64() % 3 {
            out.extend_from_slice(b"\t\t<device_ref name=\"");
            out.extend_from_slice(pick(r, DEVICES).as_bytes());
            out.extend_from_slice(b"\"/>\n");
        }
        listxml_extras(out, r);
        out.extend_from_slice(b"\t</machine>\n");
        if !clone {
            *parent = name;
        }
        return;
    }
    out.extend_from_slice(b"\t\t<disk name=\"");
    out.extend_from_slice(&name);
    out.extend_from_slice(b"\" sha1=\"");
    hex(out, r, 20);
    out.extend_from_slice(b"\" region=\"ide:0:hdd\" index=\"0\" writable=\"no\"/>\n");
    for _ in 0..1 + r.next_u64() % 3 {
        out.extend_from_slice(b"\t\t<device_ref name=\"");
        out.extend_from_slice(pick(r, DEVICES).as_bytes());
        out.extend_from_slice(b"\"/>\n");
    }
    out.extend_from_slice(b"\t</machine>\n");
    if !clone {
        *parent = name;
    }
}

/// Appends rom number `i` of machine `name`.
fn rom(out: &mut Vec<u8>, r: &mut Rng, name: &[u8], i: u64) {
    let kind = r.next_u64() % 100;
    out.extend_from_slice(b"\t\t<rom name=\"");
    out.extend_from_slice(name);
    out.extend_from_slice(format!("-{i}.u{}\" size=\"", 1 + kind).as_bytes());
    out.extend_from_slice(format!("{}", 256u64 << (r.next_u64() % 12)).as_bytes());
    if kind == 0 {
        out.extend_from_slice(b"\" status=\"nodump");
    } else {
        out.extend_from_slice(b"\" crc=\"");
        hex(out, r, 4);
        out.extend_from_slice(b"\" sha1=\"");
        hex(out, r, 20);
        if kind == 1 {
            out.extend_from_slice(b"\" status=\"baddump");
        }
    }
    out.extend_from_slice(b"\" region=\"");
    out.extend_from_slice(pick(r, REGIONS).as_bytes());
    out.extend_from_slice(b"\" offset=\"0\"/>\n");
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let listxml = args.get(1).is_some_and(|a| a == "--listxml");
    if listxml {
        args.remove(1);
    }
    if args.len() != 3 {
        eprintln!("usage: gen-dat [--listxml] SIZE_MIB OUT");
        std::process::exit(2);
    }
    let mib: u64 = args[1].parse().expect("SIZE_MIB");
    let out_path = &args[2];
    let file = std::fs::File::create(out_path).expect("create OUT");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let target = mib << 20;
    let mut r = Rng::new(0xDA7);
    let (header, footer) = if listxml {
        (LISTXML_HEADER, "</mame>\n")
    } else {
        (HEADER, "</datafile>\n")
    };
    let mut written = header.len() as u64;
    out.write_all(header.as_bytes()).unwrap();
    let mut parent = Vec::new();
    let mut chunk = Vec::with_capacity(16 << 10);
    let mut machines = 0u64;
    while written < target {
        chunk.clear();
        machine(&mut chunk, &mut r, machines, &mut parent, listxml);
        out.write_all(&chunk).unwrap();
        written += chunk.len() as u64;
        machines += 1;
    }
    out.write_all(footer.as_bytes()).unwrap();
    out.flush().unwrap();
    eprintln!("gen-dat: {machines} machines, {written} bytes written to {out_path}");
}
