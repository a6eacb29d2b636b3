//! The build commands: `keygen`, `build-packs`, `generate-manifests`, `build` and
//! `train-dict`, and the build summary they print.

use super::progress::report;
use crate::build::scan::{InputLayout, ScanOptions};
use crate::build::{build, BuildOptions, BuildSummary};
use crate::keys;
use crate::library::snapshot::ValidFor;
use argh::FromArgs;
use romlib_device::cli::json::Obj;
use romlib_device::cli::reporter::ProgressMode;
use romlib_device::install::count;
use romlib_format::layout::GamesLayout;
use std::path::PathBuf;

#[derive(FromArgs)]
/// Generate an Ed25519 key pair for signing manifests.
#[argh(subcommand, name = "keygen")]
pub(super) struct KeygenCmd {
    /// where to write the secret key (created with mode 0600; never overwritten)
    #[argh(option)]
    secret_key: PathBuf,
    /// where to write the public key
    #[argh(option)]
    public_key: PathBuf,
    /// do not add the public key to your trust store (the reading commands trust the
    /// store's keys when no --trusted-key is given; `romlib trust` manages it)
    #[argh(switch)]
    no_trust: bool,
}

#[derive(FromArgs)]
/// Sign a file (a release's SHA256SUMS, say) with a secret key from `romlib keygen`: writes
/// a one-line detached signature, FILE.sig unless -o is given.
#[argh(subcommand, name = "sign-file")]
pub(super) struct SignFileCmd {
    #[argh(positional)]
    /// the file to sign
    file: PathBuf,
    #[argh(option)]
    /// secret key file (from romlib keygen)
    signing_key: PathBuf,
    #[argh(option, short = 'o')]
    /// where to write the signature (default: FILE.sig)
    output: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Check a file against its detached signature (from `romlib sign-file`) and a trusted
/// public key: exit 0 when the key signed exactly these bytes, 1 otherwise.
#[argh(subcommand, name = "verify-file")]
pub(super) struct VerifyFileCmd {
    #[argh(positional)]
    /// the signed file
    file: PathBuf,
    #[argh(option)]
    /// the publisher's public key file
    trusted_key: PathBuf,
    #[argh(option)]
    /// the signature (default: FILE.sig)
    signature: Option<PathBuf>,
}

/// `FILE.sig`, the default signature path of `file`.
fn sig_path(file: &std::path::Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// `romlib sign-file`.
pub(super) fn sign_file(c: SignFileCmd) -> anyhow::Result<()> {
    let sig = c.output.unwrap_or_else(|| sig_path(&c.file));
    let pk = crate::file_signature::sign_file(&c.file, &c.signing_key, &sig)?;
    println!(
        "signed {} with key {}: {}",
        c.file.display(),
        String::from_utf8_lossy(&romlib_format::manifest::key_id(&pk)),
        sig.display()
    );
    Ok(())
}

/// `romlib verify-file`.
pub(super) fn verify_file(c: VerifyFileCmd) -> anyhow::Result<()> {
    let sig = c.signature.unwrap_or_else(|| sig_path(&c.file));
    crate::file_signature::verify_file(&c.file, &sig, &c.trusted_key)?;
    println!(
        "{}: good signature by {}",
        c.file.display(),
        c.trusted_key.display()
    );
    Ok(())
}

#[derive(FromArgs)]
/// Chunk, deduplicate and compress every game folder of the input into packs.
#[argh(subcommand, name = "build-packs")]
pub(super) struct BuildPacksCmd {
    #[argh(option, short = 'i')]
    /// input folder: one sub-folder per game, or one per system (see --input-layout)
    input: PathBuf,
    #[argh(option, short = 'o')]
    /// library folder (created if absent)
    output: PathBuf,
    #[argh(option, default = "32768")]
    /// average chunk size in bytes, a power of two from 1024 to 262144 (default 32768)
    avg_chunk: u32,
    #[argh(option, short = 'c', default = "crate::build::DEFAULT_LEVEL")]
    /// zstd level 1-22 (default 4; 19 for the smallest library, slowly)
    compression_level: i32,
    #[argh(option, short = 'd')]
    /// compress new chunks with this zstd dictionary (see train-dict)
    dict: Option<PathBuf>,
    #[argh(option, default = "1 << 30")]
    /// pack roll-over size in bytes (default 1 GiB; must be below 4 GiB)
    pack_size: u64,
    #[argh(switch)]
    /// store every new chunk whole, never as a delta against a similar chunk
    no_deltas: bool,
    #[argh(option, default = "crate::build::DEFAULT_DELTA_GAIN")]
    /// store a new chunk as a delta against a similar stored chunk only when that saves at
    /// least this percentage of its ordinary compressed size (default 50)
    delta_gain: u32,
    #[argh(option)]
    /// worker threads (default: all cores)
    threads: Option<usize>,
    #[argh(switch, short = 'q')]
    /// no progress bar and no summary
    quiet: bool,
    #[argh(switch)]
    /// keep .DS_Store, Thumbs.db, desktop.ini and ._* files (skipped by default)
    include_junk: bool,
    #[argh(switch)]
    /// accept file names that FAT32/exFAT cards or Windows cannot store (NUL, COM1, ...)
    allow_non_fat_names: bool,
    #[argh(switch)]
    /// build even when the input holds no game folder (refused by default)
    allow_empty: bool,
    #[argh(option, default = "InputLayout::Auto")]
    /// how the input holds its games: game-folders (a sub-folder per game), system-folders
    /// (a sub-folder per system, each file, disc or folder in it a game) or auto (default:
    /// system folders when the sub-folders are named after systems)
    input_layout: InputLayout,
    #[argh(switch)]
    /// refuse the build instead of skipping (with a warning) dangling links, sockets,
    /// unreadable files and broken disc sheets
    strict: bool,
    #[argh(switch)]
    /// follow symbolic links that lead outside the input (skipped by default)
    follow_symlinks: bool,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub(super) progress: ProgressMode,
    #[argh(switch)]
    /// print the summary (or the error) as one JSON object on standard output
    pub(super) json: bool,
}

#[derive(FromArgs)]
/// Write a signed manifest for every game of the input (its chunks must be in the packs).
#[argh(subcommand, name = "generate-manifests")]
pub(super) struct GenerateCmd {
    #[argh(option, short = 'i')]
    /// input folder, as given to build-packs
    input: PathBuf,
    #[argh(option, short = 'o')]
    /// library folder holding packs/ and index.db
    output: PathBuf,
    #[argh(option)]
    /// secret key file from `romlib keygen`
    signing_key: PathBuf,
    #[argh(option, default = "32768")]
    /// average chunk size used by build-packs (default 32768)
    avg_chunk: u32,
    #[argh(option, short = 'c', default = "crate::build::DEFAULT_LEVEL")]
    /// accepted for compatibility; manifests do not depend on the level
    compression_level: i32,
    #[argh(option)]
    /// name games after the DAT game (Logiqx XML or clrmamepro) their files match, and
    /// record that game's name, description, region and the DAT in the manifest (repeatable)
    dat: Vec<PathBuf>,
    #[argh(switch)]
    /// with --dat: title each game and name its files after the DAT game it matches (a
    /// later build with a newer DAT renames again; the old title leaves the library)
    rename: bool,
    #[argh(option)]
    /// a clrmamepro header-skipper detector file (repeatable), tried before the built-in
    /// iNES, FDS, Lynx, 7800 and SNES copier detectors: a file with a recognised header also
    /// records the DAT hashes of the rest of it
    header_skipper: Vec<PathBuf>,
    #[argh(option)]
    /// the system of games whose romlib.toml names none, e.g. nes or "Game Boy" (install
    /// --layout places games by it)
    system: Option<String>,
    #[argh(switch)]
    /// do not record CRC-32, MD5, SHA-1 and SHA-256 of each file (faster; `verify --dat`
    /// and `--dat` then cannot match the game)
    no_dat_hashes: bool,
    #[argh(option)]
    /// worker threads (default: all cores)
    threads: Option<usize>,
    #[argh(switch, short = 'q')]
    /// no progress bar and no summary
    quiet: bool,
    #[argh(switch)]
    /// keep file-manager junk files
    include_junk: bool,
    #[argh(switch)]
    /// accept file names that FAT32/exFAT cards or Windows cannot store (NUL, COM1, ...)
    allow_non_fat_names: bool,
    #[argh(switch)]
    /// build even when the input holds no game folder (refused by default)
    allow_empty: bool,
    #[argh(option, default = "InputLayout::Auto")]
    /// how the input holds its games: game-folders (a sub-folder per game), system-folders
    /// (a sub-folder per system, each file, disc or folder in it a game) or auto (default:
    /// system folders when the sub-folders are named after systems)
    input_layout: InputLayout,
    #[argh(switch)]
    /// refuse the build instead of skipping (with a warning) dangling links, sockets,
    /// unreadable files and broken disc sheets
    strict: bool,
    #[argh(switch)]
    /// follow symbolic links that lead outside the input (skipped by default)
    follow_symlinks: bool,
    #[argh(option, default = "Default::default()")]
    /// how long the library's signed snapshot stays valid, e.g. 30d, 12h or 2s (readers
    /// over a network refuse it afterwards, so a frozen mirror shows; `romlib refresh`
    /// re-signs it); never: no expiry. Default: what the last snapshot said, else never
    valid_for: ValidFor,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub(super) progress: ProgressMode,
    #[argh(switch)]
    /// print the summary (or the error) as one JSON object on standard output
    pub(super) json: bool,
}

#[derive(FromArgs)]
/// Build packs and signed manifests in one pass (build-packs + generate-manifests).
#[argh(subcommand, name = "build")]
pub(super) struct BuildCmd {
    #[argh(option, short = 'i')]
    /// input folder: one sub-folder per game, or one per system (see --input-layout)
    input: PathBuf,
    #[argh(option, short = 'o')]
    /// library folder (created if absent)
    output: PathBuf,
    #[argh(option)]
    /// secret key file from `romlib keygen`
    signing_key: PathBuf,
    #[argh(option, default = "32768")]
    /// average chunk size in bytes, a power of two from 1024 to 262144 (default 32768)
    avg_chunk: u32,
    #[argh(option)]
    /// name games after the DAT game (Logiqx XML or clrmamepro) their files match, and
    /// record that game's name, description, region and the DAT in the manifest (repeatable)
    dat: Vec<PathBuf>,
    #[argh(switch)]
    /// with --dat: title each game and name its files after the DAT game it matches (a
    /// later build with a newer DAT renames again; the old title leaves the library)
    rename: bool,
    #[argh(option)]
    /// a clrmamepro header-skipper detector file (repeatable), tried before the built-in
    /// iNES, FDS, Lynx, 7800 and SNES copier detectors: a file with a recognised header also
    /// records the DAT hashes of the rest of it
    header_skipper: Vec<PathBuf>,
    #[argh(option)]
    /// the system of games whose romlib.toml names none, e.g. nes or "Game Boy" (install
    /// --layout places games by it)
    system: Option<String>,
    #[argh(switch)]
    /// do not record CRC-32, MD5, SHA-1 and SHA-256 of each file (faster; `verify --dat`
    /// and `--dat` then cannot match the game)
    no_dat_hashes: bool,
    #[argh(option, short = 'c', default = "crate::build::DEFAULT_LEVEL")]
    /// zstd level 1-22 (default 4; 19 for the smallest library, slowly)
    compression_level: i32,
    #[argh(option, short = 'd')]
    /// compress new chunks with this zstd dictionary (see train-dict)
    dict: Option<PathBuf>,
    #[argh(option, default = "1 << 30")]
    /// pack roll-over size in bytes (default 1 GiB; must be below 4 GiB)
    pack_size: u64,
    #[argh(switch)]
    /// read every game again, even those whose files have not changed since they were
    /// built (by default such games are skipped: see .romlib-inputs in SPEC section 1)
    reread: bool,
    #[argh(switch)]
    /// remove the library's games whose input folder is gone, so the library mirrors the
    /// input (without it, the summary says how many have no input any more)
    remove_missing: bool,
    #[argh(switch)]
    /// check every pack first, and store again from the input every chunk a damaged pack
    /// holds (what `verify` found damaged and parity cannot repair); reads every game
    /// (--reread); then `romlib prune` deletes the damaged packs
    repair: bool,
    #[argh(switch)]
    /// store every new chunk whole, never as a delta against a similar chunk
    no_deltas: bool,
    #[argh(option, default = "crate::build::DEFAULT_DELTA_GAIN")]
    /// store a new chunk as a delta against a similar stored chunk only when that saves at
    /// least this percentage of its ordinary compressed size (default 50)
    delta_gain: u32,
    #[argh(option)]
    /// worker threads (default: all cores)
    threads: Option<usize>,
    #[argh(switch, short = 'q')]
    /// no progress bar and no summary
    quiet: bool,
    #[argh(switch)]
    /// keep .DS_Store, Thumbs.db, desktop.ini and ._* files (skipped by default)
    include_junk: bool,
    #[argh(switch)]
    /// accept file names that FAT32/exFAT cards or Windows cannot store (NUL, COM1, ...)
    allow_non_fat_names: bool,
    #[argh(switch)]
    /// build even when the input holds no game folder (refused by default)
    allow_empty: bool,
    #[argh(option, default = "InputLayout::Auto")]
    /// how the input holds its games: game-folders (a sub-folder per game), system-folders
    /// (a sub-folder per system, each file, disc or folder in it a game) or auto (default:
    /// system folders when the sub-folders are named after systems)
    input_layout: InputLayout,
    #[argh(switch)]
    /// refuse the build instead of skipping (with a warning) dangling links, sockets,
    /// unreadable files and broken disc sheets
    strict: bool,
    #[argh(switch)]
    /// follow symbolic links that lead outside the input (skipped by default)
    follow_symlinks: bool,
    #[argh(option, default = "Default::default()")]
    /// how long the library's signed snapshot stays valid, e.g. 30d, 12h or 2s (readers
    /// over a network refuse it afterwards, so a frozen mirror shows; `romlib refresh`
    /// re-signs it); never: no expiry. Default: what the last snapshot said, else never
    valid_for: ValidFor,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub(super) progress: ProgressMode,
    #[argh(switch)]
    /// print the summary (or the error) as one JSON object on standard output
    pub(super) json: bool,
    #[argh(option)]
    /// write Reed-Solomon parity at this percentage for new packs and changed manifests
    /// (see `romlib parity`); a library that has parity keeps it current without this
    parity: Option<u32>,
    #[argh(option, from_str_fn(parse_games_layout))]
    /// how games/ holds the manifests: flat (one folder; every romlib reads it) or sharded
    /// (256 folders, for thousands of games on FAT32 or exFAT cards; romlib readers that
    /// predate it do not find its games). Default: the library's layout, flat for a new one. A change
    /// moves the files and signs the snapshot again
    games_layout: Option<GamesLayout>,
}

/// `--games-layout`.
fn parse_games_layout(s: &str) -> Result<GamesLayout, String> {
    GamesLayout::parse(s).ok_or_else(|| format!("{s:?}: flat or sharded"))
}

/// A flat `games/` with more games than this draws a warning: FAT32 holds at most 65,536
/// entries in a folder, and a game takes two files of several entries each (long names).
const FLAT_GAMES_WARN: u64 = 4_000;

#[derive(FromArgs)]
/// Train a zstd dictionary from a library's own chunks.
#[argh(subcommand, name = "train-dict")]
pub(super) struct TrainCmd {
    #[argh(option, short = 'r')]
    /// library folder
    romlib: PathBuf,
    #[argh(option, short = 'o')]
    /// dictionary file to write
    output: PathBuf,
    #[argh(option, default = "112640")]
    /// dictionary size in bytes (default 110 KiB)
    size: usize,
    #[argh(option, default = "64 << 20")]
    /// most sample bytes to read (default 64 MiB)
    max_samples: usize,
}

/// `romlib keygen`.
pub(super) fn keygen(k: KeygenCmd) -> anyhow::Result<()> {
    let pk = keys::keygen(&k.secret_key, &k.public_key)?;
    let id = romlib_format::manifest::key_id(&pk);
    println!(
        "key {} written: secret {}, public {}",
        String::from_utf8_lossy(&id),
        k.secret_key.display(),
        k.public_key.display()
    );
    if !k.no_trust {
        let (t, _) = crate::trust_store::add_key(&pk)?;
        println!("trusted: added to your trust store as {}", t.path.display());
    }
    Ok(())
}

/// `romlib build-packs`.
pub(super) fn build_packs(c: BuildPacksCmd) -> anyhow::Result<()> {
    let opts = BuildOptions {
        avg_chunk: c.avg_chunk,
        level: c.compression_level,
        dict: c.dict,
        pack_size: c.pack_size,
        threads: threads(c.threads),
        store_chunks: true,
        signing_key: None,
        scan: ScanOptions {
            include_junk: c.include_junk,
            allow_non_fat_names: c.allow_non_fat_names,
            allow_empty: c.allow_empty,
            layout: c.input_layout,
            strict: c.strict,
            follow_symlinks: c.follow_symlinks,
        },
        // Manifests (written by generate-manifests) hold the hashes; packs do not.
        dat_hashes: false,
        dats: Vec::new(),
        header_skippers: Vec::new(),
        system: None,
        delta_gain: (!c.no_deltas).then_some(c.delta_gain),
        reread: false,
        repair: false,
        remove_missing: false,
        rename: false,
        valid_for: Default::default(),
        games_layout: None,
    };
    run_build(
        c.input,
        c.output,
        opts,
        Report::of(c.quiet, c.progress, c.json),
    )
}

/// `romlib generate-manifests`.
pub(super) fn generate_manifests(c: GenerateCmd) -> anyhow::Result<()> {
    let key = keys::load_signing_key(&c.signing_key)?;
    let _ = c.compression_level;
    let opts = BuildOptions {
        avg_chunk: c.avg_chunk,
        threads: threads(c.threads),
        store_chunks: false,
        signing_key: Some(key),
        scan: ScanOptions {
            include_junk: c.include_junk,
            allow_non_fat_names: c.allow_non_fat_names,
            allow_empty: c.allow_empty,
            layout: c.input_layout,
            strict: c.strict,
            follow_symlinks: c.follow_symlinks,
        },
        dat_hashes: !c.no_dat_hashes,
        dats: c.dat,
        header_skippers: c.header_skipper,
        system: c.system,
        rename: c.rename,
        valid_for: c.valid_for,
        ..BuildOptions::default()
    };
    run_build(
        c.input,
        c.output,
        opts,
        Report::of(c.quiet, c.progress, c.json),
    )
}

/// `romlib build`.
pub(super) fn build_all(c: BuildCmd) -> anyhow::Result<()> {
    if let Some(p) = c.parity {
        crate::parity::check_percent(p)?;
    }
    let key = keys::load_signing_key(&c.signing_key)?;
    let opts = BuildOptions {
        avg_chunk: c.avg_chunk,
        level: c.compression_level,
        dict: c.dict,
        pack_size: c.pack_size,
        threads: threads(c.threads),
        store_chunks: true,
        signing_key: Some(key),
        scan: ScanOptions {
            include_junk: c.include_junk,
            allow_non_fat_names: c.allow_non_fat_names,
            allow_empty: c.allow_empty,
            layout: c.input_layout,
            strict: c.strict,
            follow_symlinks: c.follow_symlinks,
        },
        dat_hashes: !c.no_dat_hashes,
        dats: c.dat,
        header_skippers: c.header_skipper,
        system: c.system,
        delta_gain: (!c.no_deltas).then_some(c.delta_gain),
        reread: c.reread,
        repair: c.repair,
        remove_missing: c.remove_missing,
        rename: c.rename,
        valid_for: c.valid_for,
        games_layout: c.games_layout,
    };
    run_build(
        c.input,
        c.output,
        opts,
        Report {
            parity: c.parity,
            ..Report::of(c.quiet, c.progress, c.json)
        },
    )
}

/// `romlib train-dict`.
pub(super) fn train_dict(c: TrainCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::new(&c.romlib);
    let r = crate::build::dict::train_dict(&lib, &c.output, c.size, c.max_samples)?;
    println!(
        "dictionary {:08x}: {} bytes from {} samples ({} bytes) written to {}",
        r.dict_id,
        r.dict_bytes,
        r.samples,
        r.sample_bytes,
        c.output.display()
    );
    Ok(())
}

/// How a build command reports: its `-q`, `--progress` and `--json`.
struct Report {
    quiet: bool,
    /// `--parity P` of `romlib build`.
    parity: Option<u32>,
    pub(super) progress: ProgressMode,
    pub(super) json: bool,
}

impl Report {
    fn of(quiet: bool, progress: ProgressMode, json: bool) -> Self {
        Self {
            quiet,
            parity: None,
            progress,
            json,
        }
    }
}

/// The summary as text.
fn summary_text(s: &BuildSummary) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let pct = |a: u64, b: u64| {
        if b == 0 {
            "n/a".to_string()
        } else {
            format!("{:.1}%", 100.0 * a as f64 / b as f64)
        }
    };
    let _ = writeln!(
        t,
        "{}, {}, {:.1} MiB in {:.2} s ({:.1} MiB/s)",
        count(s.games as usize, "game", "games"),
        count(s.files as usize, "file", "files"),
        mib(s.input_bytes),
        secs,
        mib(s.input_bytes) / secs
    );
    // What this run added, then what the library holds: a ratio over a run that added two
    // chunks says nothing.
    let read = s.input_bytes - s.skipped_bytes;
    let _ = writeln!(
        t,
        "{} read, {} new ({:.1} MiB): {} of the bytes read were already stored; the new \
         chunks took {:.1} MiB ({} of their size)",
        count(s.chunks as usize, "chunk", "chunks"),
        s.new_chunks,
        mib(s.new_bytes),
        pct(read - s.new_bytes.min(read), read),
        mib(s.stored_bytes),
        pct(s.stored_bytes, s.new_bytes)
    );
    if s.library_games > 0 {
        let _ = writeln!(
            t,
            "library: {}, {:.1} MiB of packs",
            count(s.library_games as usize, "game", "games"),
            mib(s.library_pack_bytes)
        );
    }
    if s.games_files_moved > 0 {
        let _ = writeln!(
            t,
            "games/: {} moved to the {} layout",
            count(s.games_files_moved as usize, "file", "files"),
            s.games_layout.name()
        );
    }
    if s.delta_chunks > 0 {
        let _ = writeln!(
            t,
            "{} ({:.1} MiB) stored as deltas against similar chunks",
            count(s.delta_chunks as usize, "new chunk", "new chunks"),
            mib(s.delta_bytes)
        );
    }
    let _ = writeln!(
        t,
        "stored {:.1} MiB in {}; manifests: {} written, {} unchanged",
        mib(s.stored_bytes),
        count(s.packs_written as usize, "new pack", "new packs"),
        s.manifests_written,
        s.manifests_unchanged
    );
    if s.skipped_games > 0 {
        let _ = writeln!(
            t,
            "{} ({:.1} MiB) unchanged since they were built: not read again (--reread reads them)",
            count(s.skipped_games as usize, "game", "games"),
            mib(s.skipped_bytes)
        );
    }
    if !s.titled.is_empty() {
        let _ = writeln!(
            t,
            "{} titled after the DAT game they match (--rename)",
            count(s.titled.len(), "game", "games"),
        );
    }
    if !s.renamed.is_empty() {
        let pairs: Vec<String> = s
            .renamed
            .iter()
            .map(|(a, b)| format!("{a} -> {b}"))
            .collect();
        let _ = writeln!(
            t,
            "renamed {} (the old titles left the library): {}",
            count(s.renamed.len(), "game", "games"),
            shortlist(&pairs)
        );
    }
    if !s.removed.is_empty() {
        let _ = writeln!(
            t,
            "removed {} whose input is gone: {}",
            count(s.removed.len(), "game", "games"),
            shortlist(&s.removed)
        );
    }
    if let Some(p) = &s.snapshot {
        let _ = writeln!(t, "{p}");
    }
    if !s.damaged_packs.is_empty() {
        let _ = writeln!(
            t,
            "repair: {} damaged ({}); {} stored again from the input; `romlib prune` deletes \
             the damaged packs once nothing needs them",
            count(s.damaged_packs.len(), "pack", "packs"),
            s.damaged_packs
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            count(s.repaired_chunks as usize, "chunk", "chunks"),
        );
    }
    if !s.no_input.is_empty() {
        let _ = writeln!(
            t,
            "{} of the library no longer in the input (kept; --remove-missing removes them): {}",
            count(s.no_input.len(), "game", "games"),
            shortlist(&s.no_input)
        );
    }
    let i = &s.input;
    if i.junk_files > 0 || i.loose_files > 0 {
        let _ = writeln!(
            t,
            "skipped {} ({} bytes) and {} outside game folders",
            count(i.junk_files as usize, "junk file", "junk files"),
            i.junk_bytes,
            count(i.loose_files as usize, "loose file", "loose files"),
        );
    }
    if i.save_files > 0 || i.front_end_files > 0 {
        let _ = writeln!(
            t,
            "skipped {} and {} in system folders",
            count(
                i.save_files as usize,
                "save or state file",
                "save and state files"
            ),
            count(
                i.front_end_files as usize,
                "front-end list",
                "front-end lists"
            ),
        );
    }
    if !i.skipped.is_empty() {
        let _ = writeln!(
            t,
            "skipped {} that could not be read as game data (warnings above; --strict refuses them)",
            count(i.skipped.len(), "entry", "entries")
        );
    }
    if i.qualified > 0 {
        let _ = writeln!(
            t,
            "{} in several system folders titled with their system, e.g. \"Title [gb]\"",
            count(i.qualified as usize, "game", "games")
        );
    }
    t
}

/// Up to ten titles, and how many more.
fn shortlist(titles: &[String]) -> String {
    let mut t = titles
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if titles.len() > 10 {
        t.push_str(&format!(" and {} more", titles.len() - 10));
    }
    t
}

/// The summary as JSON fields.
fn summary_json(s: &BuildSummary, output: &std::path::Path) -> Obj {
    crate::library::snapshot::json(Obj::new(), s.snapshot.as_ref())
        .field("library", output)
        .field("games", s.games)
        .field("files", s.files)
        .field("input_bytes", s.input_bytes)
        .field("chunks", s.chunks)
        .field("new_chunks", s.new_chunks)
        .field("new_bytes", s.new_bytes)
        .field("delta_chunks", s.delta_chunks)
        .field("delta_bytes", s.delta_bytes)
        .field("stored_bytes", s.stored_bytes)
        .field("packs_written", s.packs_written)
        .field("manifests_written", s.manifests_written)
        .field("manifests_unchanged", s.manifests_unchanged)
        .field("skipped_games", s.skipped_games)
        .field("skipped_bytes", s.skipped_bytes)
        .field("input_layout", s.input.layout.name())
        .field("systems", s.input.systems.clone())
        .field("junk_files", s.input.junk_files)
        .field("loose_files", s.input.loose_files)
        .field("save_files", s.input.save_files)
        .field("front_end_files", s.input.front_end_files)
        .field("skipped_inputs", skipped_json(&s.input.skipped))
        .field(
            "libraries_skipped",
            s.input
                .libraries_skipped
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>(),
        )
        .field("elapsed_ms", s.elapsed.as_millis() as u64)
        .field("library_games", s.library_games)
        .field("library_pack_bytes", s.library_pack_bytes)
        .field("games_layout", s.games_layout.name())
        .field("games_files_moved", s.games_files_moved)
        .field("recovered", s.recovered.clone())
        .field("damaged_packs", s.damaged_packs.clone())
        .field("repaired_chunks", s.repaired_chunks)
        .field("removed", s.removed.clone())
        .field("no_input", s.no_input.clone())
        .field(
            "renamed",
            (s.renamed.iter())
                .map(|(a, b)| Obj::new().field("from", a.as_str()).field("to", b.as_str()))
                .collect::<Vec<_>>(),
        )
}

/// Runs a build with progress and prints its summary, as `r` asks.
fn run_build(input: PathBuf, output: PathBuf, opts: BuildOptions, r: Report) -> anyhow::Result<()> {
    let (progress, out) = report("build", r.progress, r.json, r.quiet);
    let s = build(&input, &output, &opts, &progress);
    progress.finish();
    let s = s?;
    // Even with -q: a skipped DAT entry may be why a game is not named, a skipped file
    // why a game is incomplete.
    for w in &s.dat_warnings {
        out.warn(&format!("warning: {w}"));
    }
    for (path, why) in &s.input.skipped {
        out.warn(&format!("warning: skipped {}: {why}", path.display()));
    }
    for w in crate::library::snapshot::warnings(s.snapshot.as_ref()) {
        out.warn(&format!("warning: {w}"));
    }
    if s.games_layout == GamesLayout::Flat && s.library_games > FLAT_GAMES_WARN {
        out.warn(&format!(
            "warning: games/ holds {} games in one folder: FAT32 allows 65,536 entries in a \
             folder (a few thousand games with long titles) and exFAT searches a long folder \
             slowly; `romlib build --games-layout sharded` spreads them over 256 folders \
             (romlib readers older than this one do not find games there)",
            s.library_games
        ));
    }
    if !r.json && !r.progress.is_json() && !r.quiet {
        match s.input.layout {
            InputLayout::SystemFolders => eprintln!(
                "romlib: input layout: system folders ({})",
                shortlist(&s.input.systems)
            ),
            _ if s.input.loose_files > 0 => eprintln!(
                "romlib: input layout: game folders; {} directly in the input belong to no \
                 game (if the input is one game's folder, point -i at the folder that holds it)",
                count(s.input.loose_files as usize, "file", "files")
            ),
            _ => {}
        }
        for lib in &s.input.libraries_skipped {
            eprintln!(
                "romlib: left out {}: a romlib library inside the input",
                lib.display()
            );
        }
    }
    if !r.json && !r.progress.is_json() {
        for note in &s.recovered {
            eprintln!("romlib: recovered: {note}");
        }
    }
    // Parity is kept current when asked for, or when the library has some already: new
    // packs and changed manifests get theirs; current parity is not rewritten.
    let lib = romlib_device::Library::new(&output);
    let parity = match r.parity.or_else(|| crate::parity::library_percent(&lib)) {
        Some(p) => Some((p, crate::parity::update(&output, p, &|_| {})?)),
        None => None,
    };
    if let Some((_, rep)) = &parity {
        for (p, w) in &rep.problems {
            out.warn(&format!("parity: {p}: {w}"));
        }
    }
    if !r.quiet || r.json || r.progress.is_json() {
        let mut text = if r.quiet {
            String::new()
        } else {
            summary_text(&s)
        };
        if let (Some((p, rep)), false) = (&parity, r.quiet) {
            text.push_str(&format!(
                "\nparity at {p}%: {} written, {} current",
                count(rep.written.len(), "file", "files"),
                rep.current
            ));
        }
        let json = summary_json(&s, &output)
            .field("parity_percent", parity.as_ref().map(|(p, _)| *p))
            .field(
                "parity_written",
                parity
                    .as_ref()
                    .map_or_else(Vec::new, |(_, rep)| rep.written.clone()),
            )
            .field(
                "parity_bytes",
                parity.as_ref().map_or(0, |(_, rep)| rep.parity_bytes),
            )
            .field(
                "parity_problems",
                parity.as_ref().map_or(0, |(_, rep)| rep.problems.len()),
            );
        out.result(json, &text);
    }
    Ok(())
}

/// Worker threads: those asked for, else one per core.
fn threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Skipped inputs as JSON objects: `path` and `reason`.
fn skipped_json(skipped: &[(PathBuf, String)]) -> Vec<Obj> {
    skipped
        .iter()
        .map(|(p, r)| {
            Obj::new()
                .field("path", p.as_path())
                .field("reason", r.as_str())
        })
        .collect()
}
