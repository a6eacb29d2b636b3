//! The commands that read a library without changing it: `list-games`, `show` and
//! `verify`, and the reports they print.

use super::progress::report;
use super::trust::trust_store;
use argh::FromArgs;
use romlib_device::cli::json::Obj;
use romlib_device::cli::output::Output;
use romlib_device::cli::reporter::ProgressMode;
use romlib_device::install::count;
use romlib_device::progress::Progress;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(FromArgs)]
/// List the games of a library.
#[argh(subcommand, name = "list-games")]
pub(super) struct ListCmd {
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(switch)]
    /// print JSON
    pub(super) json: bool,
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
    /// trusted public key file to check signatures with (repeatable; default: your trust
    /// store, see `romlib trust`)
    trusted_key: Vec<PathBuf>,
}

#[derive(FromArgs)]
/// Print one game's manifest: metadata, files with sizes and hashes, chunks, packs needed,
/// signing key and whether the signature verifies.
#[argh(subcommand, name = "show")]
pub(super) struct ShowCmd {
    #[argh(option, short = 'g')]
    /// title id, or the path of a .manifest file
    game: String,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(option)]
    /// trusted public key file (repeatable; default: your trust store, see `romlib trust`)
    trusted_key: Vec<PathBuf>,
    #[argh(switch)]
    /// print JSON
    pub(super) json: bool,
}

#[derive(FromArgs)]
/// Check a library: every pack, chunk, signature and index entry (exit 1 on any problem);
/// with --dat, check its games against DAT files from the signed manifests alone. Memory
/// stays bounded whatever the library's size: past 32 MiB per join, what it compares is
/// sorted in temporary files (TMPDIR), about 150 bytes per chunk.
#[argh(subcommand, name = "verify")]
pub(super) struct VerifyCmd {
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    romlib: PathBuf,
    #[argh(option)]
    /// a Logiqx XML or clrmamepro DAT file to check the games against (repeatable); no pack
    /// is read, and the exit code is 0 only when every DAT game is complete and correct
    dat: Vec<PathBuf>,
    #[argh(option)]
    /// with --dat: write a Logiqx DAT of every missing or wrong game and rom to this file
    /// (a fixdat; written whole or not at all)
    fixdat: Option<PathBuf>,
    #[argh(option)]
    /// trusted public key file (repeatable; default: your trust store, see `romlib trust`)
    trusted_key: Vec<PathBuf>,
    #[argh(switch)]
    /// print the report as JSON
    pub(super) json: bool,
    #[argh(switch, short = 'q')]
    /// no progress bar
    quiet: bool,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub(super) progress: ProgressMode,
}

/// `romlib list-games`.
pub(super) fn list_games(c: ListCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    // Without a trust store every game is listed, as untrusted.
    let trust = if c.trusted_key.is_empty() {
        crate::trust_store::load(&[]).ok()
    } else {
        Some(romlib_device::TrustStore::from_files(&c.trusted_key)?)
    };
    let filter = crate::inspect::list::Filter {
        system: c.system,
        tag: c.tag,
        region: c.region,
        search: c.search,
    };
    let listing = crate::inspect::list::list_games(&lib, trust.as_ref())?;
    let (mut games, damaged) = (listing.games, listing.damaged);
    games.retain(|g| filter.matches(g));
    if c.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&crate::inspect::list::to_json(&games, &damaged))?
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
                "{}\t{}\t{meta}\t{}\t{} bytes\tkey {} ({sig})",
                g.title,
                g.name,
                count(g.files, "file", "files"),
                g.size,
                g.key_id
            );
        }
        for (t, e) in &damaged {
            println!("{t}\t-\tDAMAGED: {e}");
        }
        println!("{}", count(games.len() + damaged.len(), "game", "games"));
    }
    // The rest was listed; the exit status says that not everything could be.
    match damaged.first() {
        Some((_, e)) => Err(anyhow::anyhow!("{e}")),
        None => Ok(()),
    }
}

/// `romlib show`.
pub(super) fn show(c: ShowCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let trust = trust_store(&c.trusted_key)?;
    let v = crate::inspect::show::show_game(&lib, &c.game, &trust)?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", crate::inspect::show::to_text(&v));
    }
    Ok(())
}

/// `romlib verify`: exit code 1 when the check found a problem (the report says which).
pub(super) fn run_verify(c: VerifyCmd) -> anyhow::Result<ExitCode> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let (progress, _out) = report("verify-library", c.progress, c.json, c.quiet);
    let trust = trust_store(&c.trusted_key)?;
    if c.fixdat.is_some() && c.dat.is_empty() {
        return Err(crate::error::Error::Usage("--fixdat needs at least one --dat".into()).into());
    }
    let ok = if c.dat.is_empty() {
        progress.phase("verify", None, None, None);
        let started = std::time::Instant::now();
        let tick = |n| progress.advance(n, 0);
        let rep = if lib.portable().is_some() {
            crate::inspect::verify::verify_portable(&lib, &trust, &tick)
        } else {
            crate::inspect::verify::verify_library(&lib, &trust, &tick)
        };
        progress.finish();
        let rep = rep?;
        if c.json {
            println!("{}", serde_json::to_string_pretty(&verify_json(&rep))?);
        } else {
            print_verify(&rep, started.elapsed().as_secs_f64());
        }
        if c.progress.is_json() {
            // The stream ends with the result (the report itself is on standard output).
            Output::new("romlib", "verify-library", false, c.progress).result(
                Obj::new()
                    .field("ok", rep.ok())
                    .field("packs", rep.packs)
                    .field("chunks", rep.records)
                    .field("games", rep.games)
                    .field("problems", rep.problem_count),
                "",
            );
        }
        rep.ok()
    } else {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let ok = crate::dat::check::check_dats(
            &lib,
            &trust,
            &c.dat,
            c.json,
            c.fixdat.as_deref(),
            &mut out,
        )?;
        out.flush()?;
        ok
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(FromArgs)]
/// Rebuild a library's index.db from its packs and manifests (when `verify` reports it
/// damaged or it is lost); rewrites the games' locators from it. Exit 1 when a pack or a
/// game could not be indexed (each is listed; the rest is rebuilt).
#[argh(subcommand, name = "rebuild-index")]
pub(super) struct RebuildIndexCmd {
    #[argh(option, short = 'r')]
    /// library folder
    romlib: PathBuf,
    #[argh(switch)]
    /// print the report as JSON
    pub(super) json: bool,
}

/// `romlib rebuild-index`.
pub(super) fn rebuild_index(c: RebuildIndexCmd) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let rep = crate::library::rebuild::rebuild_index(&c.romlib)?;
    if c.json {
        let problems: Vec<_> = rep
            .problems
            .iter()
            .map(|(p, w)| serde_json::json!({"path": p.display().to_string(), "problem": w}))
            .collect();
        let v = serde_json::json!({
            "ok": rep.problems.is_empty(),
            "packs": rep.packs,
            "chunks": rep.chunks,
            "games": rep.games,
            "locators_rewritten": rep.locators_rewritten,
            "problems": problems,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (p, w) in &rep.problems {
            println!("PROBLEM: {}: {w}", p.display());
        }
        println!(
            "rebuilt {}: {}, {}, {} counted in {:.1} s",
            c.romlib.join(romlib_format::layout::INDEX_FILE).display(),
            count(rep.packs as usize, "pack", "packs"),
            count(rep.chunks as usize, "chunk", "chunks"),
            count(rep.games as usize, "game", "games"),
            started.elapsed().as_secs_f64()
        );
        let snapshot = c.romlib.join(romlib_format::layout::SNAPSHOT_FILE);
        if rep.locators_rewritten > 0 && snapshot.is_file() {
            println!(
                "note: {} written anew; {} still names the old ones, so readers over HTTP \
                 refuse them until `romlib refresh -r {} --signing-key KEY` signs a new one",
                count(rep.locators_rewritten as usize, "locator", "locators"),
                snapshot.display(),
                c.romlib.display()
            );
        }
    }
    Ok(if rep.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn verify_json(rep: &crate::inspect::verify::VerifyReport) -> serde_json::Value {
    let f = |v: &[crate::inspect::verify::Finding]| {
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

fn print_verify(rep: &crate::inspect::verify::VerifyReport, secs: f64) {
    for n in &rep.notices {
        println!("notice: {}: {}", n.path.display(), n.what);
    }
    for p in &rep.problems {
        println!("PROBLEM: {}: {}", p.path.display(), p.what);
    }
    if rep.problem_count > rep.problems.len() as u64 {
        println!(
            "... and {} more",
            count(
                (rep.problem_count - rep.problems.len() as u64) as usize,
                "problem",
                "problems"
            )
        );
    }
    println!(
        "{}, {:.1} MiB read; {}, {:.1} MiB decompressed and hashed in {secs:.1} s",
        count(rep.packs as usize, "pack", "packs"),
        rep.pack_bytes as f64 / 1048576.0,
        count(rep.records as usize, "chunk", "chunks"),
        rep.chunk_bytes as f64 / 1048576.0
    );
    if !rep.portable {
        println!(
            "{}",
            count(rep.index_chunks as usize, "index entry", "index entries")
        );
    }
    println!(
        "{}, {} with a trusted signature",
        count(rep.games as usize, "game", "games"),
        rep.games_signed
    );
    let what = if rep.portable {
        "portable file"
    } else {
        "library"
    };
    if rep.ok() {
        println!("{what} OK");
    } else {
        println!(
            "{what} NOT OK: {}",
            count(rep.problem_count as usize, "problem", "problems")
        );
    }
}
