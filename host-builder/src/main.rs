//! `romlib`: the host command line. Parses arguments, calls the library, maps errors to
//! exit codes (0 success, 1 failure, 2 usage).

use argh::FromArgs;
use indicatif::{ProgressBar, ProgressStyle};
use romlib_host::build::{build, BuildOptions, BuildSummary};
use romlib_host::build::scan::ScanOptions;
use romlib_host::{keys, Error};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(FromArgs)]
/// romlib: build deduplicated, signed game libraries; install or read games from them.
struct Cli {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Keygen(KeygenCmd),
    BuildPacks(BuildPacksCmd),
    GenerateManifests(GenerateCmd),
    Build(BuildCmd),
    ListGames(ListCmd),
    TrainDict(TrainCmd),
    Install(InstallCmd),
    Uninstall(UninstallCmd),
    Verify(VerifyCmd),
    Show(ShowCmd),
    Cat(CatCmd),
    Mount(MountCmd),
    Export(ExportCmd),
    Import(ImportCmd),
    Serve(ServeCmd),
}

#[derive(FromArgs)]
/// Serve the library read-only over HTTP/1.1 (GET, HEAD, byte ranges) for `romlib-device
/// install --from http://HOST:PORT/`; one access log line per request on stdout. Runs until
/// Ctrl-C (or SIGTERM), then finishes the open requests and exits 0.
#[argh(subcommand, name = "serve")]
struct ServeCmd {
    #[argh(option, short = 'r')]
    /// library folder
    romlib: PathBuf,
    #[argh(option, default = "String::from(\"0.0.0.0:8080\")")]
    /// address and port to listen on (default 0.0.0.0:8080; port 0 picks a free one)
    listen: String,
}

#[derive(FromArgs)]
/// Show the library as a read-only file system at MOUNTPOINT (an empty folder): one folder
/// per trusted game, every chunk checked before it is read. Runs until Ctrl-C or
/// `fusermount3 -u MOUNTPOINT`, then exits 0 with nothing left mounted.
#[argh(subcommand, name = "mount")]
struct MountCmd {
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
    #[argh(positional)]
    /// empty folder to mount the library on
    mountpoint: PathBuf,
}

#[derive(FromArgs)]
/// Write one file of a game, or a byte range of it, to standard output, straight from the
/// packs; every chunk is checked against the signed manifest before any of it is written.
#[argh(subcommand, name = "cat")]
struct CatCmd {
    #[argh(option, short = 'g')]
    /// title id, or the path of a .manifest file
    game: String,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
    #[argh(option, default = "0")]
    /// first byte to write (default 0; beyond the end of the file is an error)
    offset: u64,
    #[argh(option)]
    /// most bytes to write (default: up to the end of the file)
    length: Option<u64>,
    #[argh(positional)]
    /// path of the file inside the game, as the manifest lists it (e.g. data/level1.dat)
    path: String,
}

#[derive(FromArgs)]
/// Check a library: every pack, chunk, signature and index entry (exit 1 on any problem);
/// with --dat, check its games against DAT files from the signed manifests alone.
#[argh(subcommand, name = "verify")]
struct VerifyCmd {
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(option)]
    /// a Logiqx XML or clrmamepro DAT file to check the games against (repeatable); no pack
    /// is read, and the exit code is 0 only when every DAT game is complete and correct
    dat: Vec<PathBuf>,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
    #[argh(switch)]
    /// print the report as JSON
    json: bool,
    #[argh(switch, short = 'q')]
    /// no progress bar
    quiet: bool,
}

#[derive(FromArgs)]
/// Print one game's manifest: metadata, files with sizes and hashes, chunks, packs needed,
/// signing key and whether the signature verifies.
#[argh(subcommand, name = "show")]
struct ShowCmd {
    #[argh(option, short = 'g')]
    /// title id, or the path of a .manifest file
    game: String,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
    #[argh(switch)]
    /// print JSON
    json: bool,
}

#[derive(FromArgs)]
/// Verify and install a game from a library (the device's install code, with C zstd).
#[argh(subcommand, name = "install")]
struct InstallCmd {
    #[argh(option, short = 'g')]
    /// title id, or the path of a .manifest file
    game: String,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(option, default = "PathBuf::from(\"./install\")")]
    /// where games are installed (default ./install)
    install_dir: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
}

#[derive(FromArgs)]
/// Remove a game that romlib installed (nothing else is touched).
#[argh(subcommand, name = "uninstall")]
struct UninstallCmd {
    #[argh(option, short = 't')]
    /// title id
    title_id: String,
    #[argh(option, default = "PathBuf::from(\"./install\")")]
    /// where games are installed (default ./install)
    install_dir: PathBuf,
}

#[derive(FromArgs)]
/// Generate an Ed25519 key pair for signing manifests.
#[argh(subcommand, name = "keygen")]
struct KeygenCmd {
    /// where to write the secret key (created with mode 0600; never overwritten)
    #[argh(option)]
    secret_key: PathBuf,
    /// where to write the public key
    #[argh(option)]
    public_key: PathBuf,
}

#[derive(FromArgs)]
/// Chunk, deduplicate and compress every game folder of the input into packs.
#[argh(subcommand, name = "build-packs")]
struct BuildPacksCmd {
    #[argh(option, short = 'i')]
    /// input folder: one sub-folder per game, named by its title id
    input: PathBuf,
    #[argh(option, short = 'o')]
    /// library folder (created if absent)
    output: PathBuf,
    #[argh(option, default = "32768")]
    /// average chunk size in bytes, a power of two from 1024 to 262144 (default 32768)
    avg_chunk: u32,
    #[argh(option, short = 'c', default = "romlib_host::build::DEFAULT_LEVEL")]
    /// zstd level 1-22 (default 4; 19 for the smallest library, slowly)
    compression_level: i32,
    #[argh(option, short = 'd')]
    /// compress new chunks with this zstd dictionary (see train-dict)
    dict: Option<PathBuf>,
    #[argh(option, default = "1 << 30")]
    /// pack roll-over size in bytes (default 1 GiB; must be below 4 GiB)
    pack_size: u64,
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
    /// accept file names that FAT32/exFAT cards cannot store
    allow_non_fat_names: bool,
}

#[derive(FromArgs)]
/// Write a signed manifest for every game of the input (its chunks must be in the packs).
#[argh(subcommand, name = "generate-manifests")]
struct GenerateCmd {
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
    #[argh(option, short = 'c', default = "romlib_host::build::DEFAULT_LEVEL")]
    /// accepted for compatibility; manifests do not depend on the level
    compression_level: i32,
    #[argh(option)]
    /// name games after the DAT game (Logiqx XML or clrmamepro) their files match, and
    /// record that game's name, description, region and the DAT in the manifest (repeatable)
    dat: Vec<PathBuf>,
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
    /// accept file names that FAT32/exFAT cards cannot store
    allow_non_fat_names: bool,
}

#[derive(FromArgs)]
/// Build packs and signed manifests in one pass (build-packs + generate-manifests).
#[argh(subcommand, name = "build")]
struct BuildCmd {
    #[argh(option, short = 'i')]
    /// input folder: one sub-folder per game, named by its title id
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
    /// do not record CRC-32, MD5, SHA-1 and SHA-256 of each file (faster; `verify --dat`
    /// and `--dat` then cannot match the game)
    no_dat_hashes: bool,
    #[argh(option, short = 'c', default = "romlib_host::build::DEFAULT_LEVEL")]
    /// zstd level 1-22 (default 4; 19 for the smallest library, slowly)
    compression_level: i32,
    #[argh(option, short = 'd')]
    /// compress new chunks with this zstd dictionary (see train-dict)
    dict: Option<PathBuf>,
    #[argh(option, default = "1 << 30")]
    /// pack roll-over size in bytes (default 1 GiB; must be below 4 GiB)
    pack_size: u64,
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
    /// accept file names that FAT32/exFAT cards cannot store
    allow_non_fat_names: bool,
}

#[derive(FromArgs)]
/// List the games of a library.
#[argh(subcommand, name = "list-games")]
struct ListCmd {
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(switch)]
    /// print JSON
    json: bool,
    #[argh(option)]
    /// only games of this system (from romlib.toml; case-insensitive)
    system: Option<String>,
    #[argh(option)]
    /// only games with this tag
    tag: Option<String>,
    #[argh(option)]
    /// only games of this region (one of a "USA, Europe" list matches)
    region: Option<String>,
    #[argh(option)]
    /// only games whose title, names, description, system, region or tags contain every
    /// word of this text
    search: Option<String>,
    #[argh(option)]
    /// trusted public key file to check signatures with (repeatable; default: the
    /// library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
}

#[derive(FromArgs)]
/// Write games into one self-contained portable file: their signed manifests and exactly
/// the chunks they need, each checked on the way. Exporting the same games again gives a
/// byte-identical file. Devices and every reading command accept it in place of a library.
#[argh(subcommand, name = "export")]
struct ExportCmd {
    #[argh(option, short = 'r')]
    /// library folder (or a portable file)
    romlib: PathBuf,
    #[argh(option, short = 'g')]
    /// title id of a game to export (repeatable)
    game: Vec<String>,
    #[argh(switch)]
    /// export every game of the library
    all: bool,
    #[argh(option, short = 'o')]
    /// portable file to write (replaced atomically when complete)
    output: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
    #[argh(switch, short = 'q')]
    /// no progress bar or summary
    quiet: bool,
}

#[derive(FromArgs)]
/// Add the games of a portable file to a library (created if absent), storing only the
/// chunks it lacks. Every game must be signed by a trusted key.
#[argh(subcommand, name = "import")]
struct ImportCmd {
    #[argh(positional)]
    /// portable file made by `romlib export`
    file: PathBuf,
    #[argh(option, short = 'o')]
    /// library folder to add the games to
    output: PathBuf,
    #[argh(option, short = 'g')]
    /// only this game (repeatable; default: every game in the file)
    game: Vec<String>,
    #[argh(option)]
    /// trusted public key file (repeatable; default: the library's own keys/ folder)
    trusted_key: Vec<PathBuf>,
    #[argh(switch, short = 'q')]
    /// no progress bar or summary
    quiet: bool,
}

#[derive(FromArgs)]
/// Train a zstd dictionary from a library's own chunks.
#[argh(subcommand, name = "train-dict")]
struct TrainCmd {
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

fn threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

fn main() {
    let cli: Cli = romlib_device::cli::parse_args("romlib");
    match run(cli) {
        Ok(()) => {}
        Err(e) => {
            let usage = e.downcast_ref::<Error>().is_some_and(Error::is_usage);
            eprintln!("romlib: {e}");
            std::process::exit(if usage { 2 } else { 1 });
        }
    }
}

fn print_summary(s: &BuildSummary) {
    for r in &s.recovered {
        eprintln!("romlib: recovered: {r}");
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            "n/a".to_string()
        } else {
            format!("{:.2}x", a as f64 / b as f64)
        }
    };
    println!(
        "{} games, {} files, {:.1} MiB in {:.2} s ({:.1} MiB/s)",
        s.games,
        s.files,
        mib(s.input_bytes),
        secs,
        mib(s.input_bytes) / secs
    );
    println!(
        "{} chunks, {} new ({:.1} MiB); dedup ratio {}, compression ratio {}",
        s.chunks,
        s.new_chunks,
        mib(s.new_bytes),
        ratio(s.input_bytes, s.new_bytes),
        ratio(s.new_bytes, s.stored_bytes)
    );
    println!(
        "stored {:.1} MiB in {} new pack(s); manifests: {} written, {} unchanged",
        mib(s.stored_bytes),
        s.packs_written,
        s.manifests_written,
        s.manifests_unchanged
    );
    if s.junk_files > 0 || s.loose_files > 0 {
        println!(
            "skipped {} junk file(s) ({} bytes) and {} loose file(s) outside game folders",
            s.junk_files, s.junk_bytes, s.loose_files
        );
    }
}

fn run_build(
    input: PathBuf,
    output: PathBuf,
    opts: BuildOptions,
    quiet: bool,
) -> anyhow::Result<()> {
    let s = build(&input, &output, &opts)?;
    if !quiet {
        print_summary(&s);
    }
    Ok(())
}

/// The keys to trust: those given, else the library's own `keys/` (which it says, unless
/// told to keep quiet because the output is a report).
fn trust_store(
    lib: &romlib_device::Library,
    keys: &[PathBuf],
    say: bool,
) -> anyhow::Result<romlib_device::TrustStore> {
    if keys.is_empty() {
        if let Some(p) = lib.portable() {
            anyhow::bail!(
                "{}: a portable file carries no keys to trust: pass --trusted-key",
                p.path().display()
            );
        }
        if say {
            eprintln!(
                "romlib: trusting the library's own keys in {} (pass --trusted-key to choose)",
                lib.keys_dir().display()
            );
        }
        Ok(romlib_device::TrustStore::from_dir(&lib.keys_dir())?)
    } else {
        Ok(romlib_device::TrustStore::from_files(keys)?)
    }
}

fn run_verify(c: VerifyCmd, progress: impl Fn(bool) -> bool) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let trust = trust_store(&lib, &c.trusted_key, !c.json)?;
    let ok = if c.dat.is_empty() {
        let bar = if progress(c.quiet || c.json) {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template("{spinner} verified {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        } else {
            ProgressBar::hidden()
        };
        let started = std::time::Instant::now();
        let rep = if lib.portable().is_some() {
            romlib_host::inspect::verify::verify_portable(&lib, &trust, &|n| bar.inc(n))?
        } else {
            romlib_host::inspect::verify::verify_library(&lib, &trust, &|n| bar.inc(n))?
        };
        bar.finish_and_clear();
        if c.json {
            println!("{}", serde_json::to_string_pretty(&verify_json(&rep))?);
        } else {
            print_verify(&rep, started.elapsed().as_secs_f64());
        }
        rep.ok()
    } else {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let ok = romlib_host::dat::check::check_dats(&lib, &trust, &c.dat, c.json, &mut out)?;
        out.flush()?;
        ok
    };
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// A byte-counting progress bar, or a hidden one.
fn bytes_bar(show: bool, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(0);
    b.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} {what} {{bytes}} {{bytes_per_sec}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

fn verify_json(rep: &romlib_host::inspect::verify::VerifyReport) -> serde_json::Value {
    let f = |v: &[romlib_host::inspect::verify::Finding]| {
        v.iter()
            .map(|p| serde_json::json!({"path": p.path.display().to_string(), "problem": p.what}))
            .collect::<Vec<_>>()
    };
    serde_json::json!({
        "ok": rep.ok(),
        "portable": rep.portable,
        "packs": rep.packs,
        "pack_bytes": rep.pack_bytes,
        "records": rep.records,
        "chunk_bytes": rep.chunk_bytes,
        "index_chunks": rep.index_chunks,
        "games": rep.games,
        "games_signed": rep.games_signed,
        "problem_count": rep.problem_count,
        "problems": f(&rep.problems),
        "notices": f(&rep.notices),
    })
}

fn print_verify(rep: &romlib_host::inspect::verify::VerifyReport, secs: f64) {
    for n in &rep.notices {
        println!("notice: {}: {}", n.path.display(), n.what);
    }
    for p in &rep.problems {
        println!("PROBLEM: {}: {}", p.path.display(), p.what);
    }
    if rep.problem_count > rep.problems.len() as u64 {
        println!(
            "... and {} more problem(s)",
            rep.problem_count - rep.problems.len() as u64
        );
    }
    println!(
        "{} pack(s), {:.1} MiB read; {} chunk(s), {:.1} MiB decompressed and hashed in {secs:.1} s",
        rep.packs,
        rep.pack_bytes as f64 / 1048576.0,
        rep.records,
        rep.chunk_bytes as f64 / 1048576.0
    );
    if !rep.portable {
        println!("{} index entr(ies)", rep.index_chunks);
    }
    println!(
        "{} game(s), {} with a trusted signature",
        rep.games, rep.games_signed
    );
    let what = if rep.portable {
        "portable file"
    } else {
        "library"
    };
    if rep.ok() {
        println!("{what} OK");
    } else {
        println!("{what} NOT OK: {} problem(s)", rep.problem_count);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = |quiet: bool| !quiet && std::io::stderr().is_terminal();
    match cli.cmd {
        Cmd::Keygen(k) => {
            let pk = keys::keygen(&k.secret_key, &k.public_key)?;
            let id = romlib_format::manifest::key_id(&pk);
            println!(
                "key {} written: secret {}, public {}",
                String::from_utf8_lossy(&id),
                k.secret_key.display(),
                k.public_key.display()
            );
            Ok(())
        }
        Cmd::BuildPacks(c) => {
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
                },
                progress: progress(c.quiet),
                // Manifests (written by generate-manifests) hold the hashes; packs do not.
                dat_hashes: false,
                dats: Vec::new(),
            };
            run_build(c.input, c.output, opts, c.quiet)
        }
        Cmd::GenerateManifests(c) => {
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
                },
                progress: progress(c.quiet),
                dat_hashes: !c.no_dat_hashes,
                dats: c.dat,
                ..BuildOptions::default()
            };
            run_build(c.input, c.output, opts, c.quiet)
        }
        Cmd::Build(c) => {
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
                },
                progress: progress(c.quiet),
                dat_hashes: !c.no_dat_hashes,
                dats: c.dat,
            };
            run_build(c.input, c.output, opts, c.quiet)
        }
        Cmd::ListGames(c) => {
            let lib = romlib_device::Library::open(&c.romlib)?;
            let trust = if c.trusted_key.is_empty() {
                romlib_device::TrustStore::from_dir(&lib.keys_dir()).ok()
            } else {
                Some(romlib_device::TrustStore::from_files(&c.trusted_key)?)
            };
            let filter = romlib_host::inspect::list::Filter {
                system: c.system,
                tag: c.tag,
                region: c.region,
                search: c.search,
            };
            let mut games = romlib_host::inspect::list::list_games(&lib, trust.as_ref())?;
            games.retain(|g| filter.matches(g));
            if c.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&romlib_host::inspect::list::to_json(&games))?
                );
            } else {
                for g in &games {
                    let sig = match g.verified {
                        Some(true) => "signed",
                        Some(false) => "SIGNATURE NOT TRUSTED",
                        None => "unchecked",
                    };
                    let mut meta: Vec<&str> = Vec::new();
                    for m in [&g.system, &g.region, &g.version] {
                        if !m.is_empty() {
                            meta.push(m);
                        }
                    }
                    meta.extend(g.tags.iter().map(String::as_str));
                    let meta = if meta.is_empty() {
                        "-".to_string()
                    } else {
                        meta.join(", ")
                    };
                    println!(
                        "{}\t{}\t{meta}\t{} files\t{} bytes\tkey {} ({sig})",
                        g.title, g.name, g.files, g.size, g.key_id
                    );
                }
                println!("{} game(s)", games.len());
            }
            Ok(())
        }
        Cmd::Install(c) => {
            let lib = romlib_device::Library::open(&c.romlib)?;
            let trust = trust_store(&lib, &c.trusted_key, true)?;
            let m = romlib_device::install::open_game(&lib, &c.game, &trust)?;
            let mut dec = romlib_host::zstd_decoder::ZstdDecoder::default();
            let r = romlib_device::install::install_game(&lib, &m, &c.install_dir, &mut dec)?;
            println!(
                "installed {} into {}: {} files, {} bytes, {} chunks verified",
                m.body().title_id,
                c.install_dir.join(&m.body().title_id).display(),
                r.files,
                r.bytes,
                r.chunks
            );
            Ok(())
        }
        Cmd::Uninstall(c) => {
            romlib_device::install::uninstall(&c.install_dir, &c.title_id)?;
            println!("uninstalled {}", c.title_id);
            Ok(())
        }
        Cmd::Verify(c) => run_verify(c, progress),
        Cmd::Cat(c) => {
            let lib = romlib_device::Library::open(&c.romlib)?;
            let trust = trust_store(&lib, &c.trusted_key, true)?;
            let dec = romlib_host::zstd_decoder::ZstdDecoder::default();
            let game = romlib_device::read::Game::open(&lib, &c.game, &trust, dec)?;
            let id = game.find(&c.path)?;
            let out = &mut *romlib_device::cli::raw_stdout();
            let stdout = std::path::Path::new("standard output");
            match game.copy_range(id, c.offset, c.length, out, stdout) {
                // A reader that stopped early (`| head`) is not a failure of ours.
                Err(romlib_device::Error::Io {
                    op: "write",
                    source,
                    ..
                }) if source.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.map(|_| ()).map_err(Into::into),
            }
        }
        Cmd::Mount(c) => {
            let lib = romlib_device::Library::open(&c.romlib)?;
            let trust = trust_store(&lib, &c.trusted_key, true)?;
            let mp = c.mountpoint.clone();
            romlib_device::mount::serve(
                &lib,
                &c.mountpoint,
                trust,
                romlib_host::zstd_decoder::ZstdDecoder::default,
                "romlib",
                |m| {
                    eprintln!(
                        "romlib: mounted {} game(s) at {} ({} left out); Ctrl-C or `fusermount3 -u {}` unmounts",
                        m.games,
                        mp.display(),
                        m.skipped,
                        mp.display()
                    )
                },
            )
            .map_err(Into::into)
        }
        Cmd::Export(c) => {
            let lib = romlib_device::Library::open(&c.romlib)?;
            let trust = trust_store(&lib, &c.trusted_key, !c.quiet)?;
            let titles = if c.all {
                if !c.game.is_empty() {
                    anyhow::bail!("give either -g TITLE or --all, not both");
                }
                lib.titles()?
            } else {
                c.game
            };
            let bar = bytes_bar(progress(c.quiet), "exported");
            let s =
                romlib_host::transfer::export::export(&lib, &titles, &trust, &c.output, &|n| bar.inc(n))?;
            bar.finish_and_clear();
            if !c.quiet {
                println!(
                    "exported {} game(s) to {}: {} chunks ({} bytes) in {} pack(s), {} bytes",
                    s.games,
                    c.output.display(),
                    s.chunks,
                    s.chunk_bytes,
                    s.packs,
                    s.file_len
                );
            }
            Ok(())
        }
        Cmd::Import(c) => {
            let dest = romlib_device::Library::new(&c.output);
            let trust = trust_store(&dest, &c.trusted_key, !c.quiet)?;
            let bar = bytes_bar(progress(c.quiet), "stored");
            let s = romlib_host::transfer::import::import(&c.file, &c.output, &c.game, &trust, &|n| {
                bar.inc(n)
            })?;
            bar.finish_and_clear();
            if !c.quiet {
                println!(
                    "imported {} game(s) into {} ({} unchanged): {} new chunk(s), {} bytes, in {} pack(s); {} chunk(s) already there",
                    s.games_written,
                    c.output.display(),
                    s.games_unchanged,
                    s.new_chunks,
                    s.new_bytes,
                    s.packs,
                    s.reused_chunks
                );
            }
            Ok(())
        }
        Cmd::Serve(c) => {
            use nix::sys::signal::{SigSet, Signal};
            // Block the termination signals before any thread starts, so every thread
            // inherits that, and take them on one thread with sigwait.
            let mut signals = SigSet::empty();
            signals.add(Signal::SIGINT);
            signals.add(Signal::SIGTERM);
            signals.thread_block()?;
            romlib_host::transfer::serve::serve(&c.romlib, &c.listen, |server| {
                println!(
                    "serving {} at http://{}/ (Ctrl-C stops)",
                    c.romlib.display(),
                    server.addr()
                );
                let server = server.clone();
                std::thread::spawn(move || {
                    if signals.wait().is_ok() {
                        server.stop();
                    }
                });
            })?;
            println!("stopped");
            Ok(())
        }
        Cmd::Show(c) => {
            let lib = romlib_device::Library::open(&c.romlib)?;
            let trust = trust_store(&lib, &c.trusted_key, false)?;
            let v = romlib_host::inspect::show::show_game(&lib, &c.game, &trust)?;
            if c.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", romlib_host::inspect::show::to_text(&v));
            }
            Ok(())
        }
        Cmd::TrainDict(c) => {
            let lib = romlib_device::Library::new(&c.romlib);
            let r = romlib_host::build::dict::train_dict(&lib, &c.output, c.size, c.max_samples)?;
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
    }
}
