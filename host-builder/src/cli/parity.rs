//! `romlib parity` and `romlib repair`: Reed-Solomon recovery data for a library's packs
//! and manifests, and restoring damaged files from it (SPEC section 13).

use argh::FromArgs;
use romlib_device::cli::json::Obj;
use romlib_device::cli::output::Output;
use romlib_device::cli::reporter::ProgressMode;
use romlib_device::install::count;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(FromArgs)]
/// Write Reed-Solomon parity for every pack and manifest of a library (parity/ folder), so
/// that `romlib repair` can restore damaged files; writes only what is missing or stale.
/// Exit 1 when a damaged file could not be given parity (each is listed).
#[argh(subcommand, name = "parity")]
pub(super) struct ParityCmd {
    #[argh(option, short = 'r')]
    /// library folder
    romlib: PathBuf,
    #[argh(option, default = "crate::parity::DEFAULT_PERCENT")]
    /// redundancy in percent of each file, 1 to 100 (default 5); a contiguous burst of
    /// about this share of a file, and at least 64 KiB, is repairable
    percent: u32,
    #[argh(switch)]
    /// print the summary as one JSON object
    pub(super) json: bool,
}

#[derive(FromArgs)]
/// Restore a library's damaged packs and manifests from their parity: each is rebuilt
/// beside the original, checked against the BLAKE3 its parity recorded and swapped in
/// atomically. Exit 1 when anything stays damaged (each is listed).
#[argh(subcommand, name = "repair")]
pub(super) struct RepairCmd {
    #[argh(option, short = 'r')]
    /// library folder
    romlib: PathBuf,
    #[argh(switch)]
    /// print the report as one JSON object
    pub(super) json: bool,
}

fn pairs(v: &[(String, String)]) -> Vec<Obj> {
    v.iter()
        .map(|(p, w)| {
            Obj::new()
                .field("path", p.as_str())
                .field("problem", w.as_str())
        })
        .collect()
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

/// `romlib parity`.
pub(super) fn parity(c: ParityCmd) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let rep = crate::parity::update(&c.romlib, c.percent, &|_| {})?;
    let secs = started.elapsed().as_secs_f64();
    let mut text = String::new();
    for (p, w) in &rep.problems {
        text.push_str(&format!("PROBLEM: {p}: {w}\n"));
    }
    for p in &rep.removed {
        text.push_str(&format!(
            "removed the parity of {p} (no longer in the library)\n"
        ));
    }
    text.push_str(&format!(
        "parity at {}%: {} written ({:.1} MiB for {:.1} MiB), {} current in {secs:.1} s",
        c.percent,
        count(rep.written.len(), "file", "files"),
        mib(rep.parity_bytes),
        mib(rep.protected_bytes),
        rep.current,
    ));
    Output::new("romlib", "parity", c.json, ProgressMode::None).result(
        Obj::new()
            .field("ok", rep.problems.is_empty())
            .field("percent", c.percent)
            .field("written", rep.written.clone())
            .field("current", rep.current)
            .field("removed", rep.removed.clone())
            .field("protected_bytes", rep.protected_bytes)
            .field("parity_bytes", rep.parity_bytes)
            .field("problems", pairs(&rep.problems))
            .field("elapsed_ms", started.elapsed().as_millis() as u64),
        &text,
    );
    Ok(if rep.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `romlib repair`.
pub(super) fn repair(c: RepairCmd) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let rep = crate::parity::repair(&c.romlib, &|_| {})?;
    let secs = started.elapsed().as_secs_f64();
    let mut text = String::new();
    for (p, n) in &rep.repaired {
        text.push_str(&format!(
            "repaired {p} ({})\n",
            count(*n as usize, "block restored", "blocks restored")
        ));
    }
    for (p, w) in &rep.unrepaired {
        text.push_str(&format!("NOT REPAIRED: {p}: {w}\n"));
    }
    for (p, w) in &rep.parity_problems {
        text.push_str(&format!("parity: {p}: {w}\n"));
    }
    text.push_str(&format!(
        "{} repaired, {} still damaged, {} intact, {} without parity in {secs:.1} s",
        count(rep.repaired.len(), "file", "files"),
        rep.unrepaired.len(),
        rep.intact,
        rep.unprotected,
    ));
    let ok = rep.unrepaired.is_empty();
    Output::new("romlib", "repair-library", c.json, ProgressMode::None).result(
        Obj::new()
            .field("ok", ok)
            .field(
                "repaired",
                rep.repaired
                    .iter()
                    .map(|(p, n)| Obj::new().field("path", p.as_str()).field("blocks", *n))
                    .collect::<Vec<_>>(),
            )
            .field("unrepaired", pairs(&rep.unrepaired))
            .field("parity_problems", pairs(&rep.parity_problems))
            .field("intact", rep.intact)
            .field("unprotected", rep.unprotected)
            .field("repaired_bytes", rep.repaired_bytes)
            .field("elapsed_ms", started.elapsed().as_millis() as u64),
        &text,
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
