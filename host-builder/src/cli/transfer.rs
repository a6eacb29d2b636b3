//! The commands that move games between libraries and devices: `export`, `import`,
//! `remove` and `serve`.

use super::progress::report;
use super::trust::trust_store;
use argh::FromArgs;
use romlib_device::cli::json::Obj;
use romlib_device::cli::reporter::ProgressMode;
use romlib_device::install::count;
use romlib_device::progress::Progress;
use std::path::PathBuf;

#[derive(FromArgs)]
/// Write games into one self-contained portable file: their signed manifests and exactly
/// the chunks they need, each checked on the way. Exporting the same games again gives a
/// byte-identical file. Devices and every reading command accept it in place of a library.
#[argh(subcommand, name = "export")]
pub(super) struct ExportCmd {
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
    /// trusted public key file (repeatable; default: your trust store, see `romlib trust`)
    trusted_key: Vec<PathBuf>,
    #[argh(switch, short = 'q')]
    /// no progress bar or summary
    pub(super) quiet: bool,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub(super) progress: ProgressMode,
    #[argh(switch)]
    /// print the summary (or the error) as one JSON object on standard output
    pub(super) json: bool,
}

#[derive(FromArgs)]
/// Add the games of a portable file to a library (created if absent), storing only the
/// chunks it lacks. Every game must be signed by a trusted key.
#[argh(subcommand, name = "import")]
pub(super) struct ImportCmd {
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
    /// trusted public key file (repeatable; default: your trust store, see `romlib trust`)
    trusted_key: Vec<PathBuf>,
    #[argh(switch)]
    /// take a game even when the library holds a newer revision of it (refused otherwise,
    /// error code downgrade: an old export would roll the library back)
    allow_downgrade: bool,
    #[argh(option)]
    /// secret key file that signs the library's snapshot (needed once the library has
    /// one: every library built by this romlib)
    signing_key: Option<PathBuf>,
    #[argh(option, default = "Default::default()")]
    /// how long the new signed snapshot stays valid, e.g. 30d or 12h; never: no expiry
    /// (default: what the last snapshot said)
    valid_for: crate::library::snapshot::ValidFor,
    #[argh(switch, short = 'q')]
    /// no progress bar or summary
    pub(super) quiet: bool,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub(super) progress: ProgressMode,
    #[argh(switch)]
    /// print the summary (or the error) as one JSON object on standard output
    pub(super) json: bool,
}

#[derive(FromArgs)]
/// Remove games from a library: their manifests, locators and index references go, at
/// once for every game named (a run cut off is finished by the next command that opens the
/// library). Their chunks stay in the packs; the summary says how many no game references
/// any more.
#[argh(subcommand, name = "remove")]
pub(super) struct RemoveCmd {
    #[argh(option, short = 'r')]
    /// library folder
    romlib: PathBuf,
    #[argh(option, short = 'g')]
    /// title id of a game to remove (repeatable)
    game: Vec<String>,
    #[argh(option)]
    /// secret key file that signs the library's snapshot (needed once the library has
    /// one: every library built by this romlib)
    signing_key: Option<PathBuf>,
    #[argh(option, default = "Default::default()")]
    /// how long the new signed snapshot stays valid, e.g. 30d or 12h; never: no expiry
    /// (default: what the last snapshot said)
    valid_for: crate::library::snapshot::ValidFor,
    #[argh(switch, short = 'q')]
    /// no progress or summary
    pub(super) quiet: bool,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub(super) progress: ProgressMode,
    #[argh(switch)]
    /// print the summary (or the error) as one JSON object on standard output
    pub(super) json: bool,
}

#[derive(FromArgs)]
/// Give back the space of chunks no game needs any more (after `remove`, `build
/// --remove-missing` or a game's new version): counts every chunk the manifests reference,
/// deletes packs with nothing live and rewrites packs whose unused share is above
/// --max-unused, then rewrites the locators and signs the snapshot. Old packs are deleted
/// only after everything that named them is published; a run cut off is finished by the
/// next prune.
#[argh(subcommand, name = "prune")]
pub(super) struct PruneCmd {
    #[argh(option, short = 'r')]
    /// library folder
    romlib: PathBuf,
    #[argh(option, default = "crate::library::prune::DEFAULT_MAX_UNUSED_PERCENT")]
    /// rewrite a pack when more than this percentage of it is unused (0 to 100; default
    /// 10)
    max_unused: u32,
    #[argh(switch)]
    /// say what would be deleted and rewritten and how much is given back; change nothing
    dry_run: bool,
    #[argh(switch)]
    /// store the newest revision whole: a delta whose base is older and the base of no
    /// other delta is stored whole, and its base as a delta against it (fresh installs of
    /// the new revision decode no delta; the old revision's installs, and upgrades to the
    /// new one, read more)
    newest_whole: bool,
    #[argh(option)]
    /// secret key file that signs the library's snapshot (needed once the library has
    /// one: every library built by this romlib)
    signing_key: Option<PathBuf>,
    #[argh(option, default = "Default::default()")]
    /// how long the new signed snapshot stays valid, e.g. 30d or 12h; never: no expiry
    /// (default: what the last snapshot said)
    valid_for: crate::library::snapshot::ValidFor,
    #[argh(switch, short = 'q')]
    /// no progress or summary
    pub(super) quiet: bool,
    #[argh(option, default = "ProgressMode::Auto")]
    /// progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on
    /// standard error) or none
    pub(super) progress: ProgressMode,
    #[argh(switch)]
    /// print the summary (or the error) as one JSON object on standard output
    pub(super) json: bool,
}

#[derive(FromArgs)]
/// Sign the library's snapshot again (snapshot.txt: every game's manifest and locator, a
/// sequence number, an expiry), with a new expiry: what a cron job runs so that readers
/// over a network keep accepting a library that did not change. Also signs the first
/// snapshot of a library built before snapshots.
#[argh(subcommand, name = "refresh")]
pub(super) struct RefreshCmd {
    #[argh(option, short = 'r')]
    /// library folder
    romlib: PathBuf,
    #[argh(option)]
    /// secret key file that signs the snapshot
    signing_key: PathBuf,
    #[argh(option, default = "Default::default()")]
    /// how long the new snapshot stays valid, e.g. 30d, 12h or 2s; never: no expiry
    /// (default: what the last snapshot said)
    valid_for: crate::library::snapshot::ValidFor,
    #[argh(switch, short = 'q')]
    /// no summary
    pub(super) quiet: bool,
    #[argh(switch)]
    /// print the summary (or the error) as one JSON object on standard output
    pub(super) json: bool,
}

#[derive(FromArgs)]
/// Serve the library read-only over HTTP/1.1 (GET, HEAD, byte ranges) for `romlib-device
/// install --from http://HOST:PORT/`; one access log line per request on stdout. Runs until
/// Ctrl-C (or SIGTERM), then finishes the open requests and exits 0.
#[argh(subcommand, name = "serve")]
pub(super) struct ServeCmd {
    #[argh(option, short = 'r')]
    /// library folder
    romlib: PathBuf,
    #[argh(option, default = "String::from(\"0.0.0.0:8080\")")]
    /// address and port to listen on (default 0.0.0.0:8080; port 0 picks a free one)
    listen: String,
}

#[derive(FromArgs)]
/// Publish the library to an S3-compatible bucket (AWS S3, MinIO, Garage, SeaweedFS, ...)
/// for `romlib-device install --from` its HTTP endpoint: packs and dictionaries first, then
/// each game's locator and manifest, then catalog.txt, so no published game ever points at
/// a missing pack. Objects already there with the same size and MD5 (ETag) are skipped, so
/// running it again after a change, or after it was cut off, uploads only what is missing.
/// Last, objects of the kinds it publishes that the library no longer holds (removed
/// games, pruned packs) are deleted from the bucket; nothing else there is touched.
/// Credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN).
#[argh(subcommand, name = "publish")]
pub(super) struct PublishCmd {
    #[argh(option, short = 'r')]
    /// library folder
    romlib: PathBuf,
    #[argh(positional)]
    /// where: s3://BUCKET[/PREFIX]
    target: String,
    #[argh(option)]
    /// the S3 server, http[s]://HOST[:PORT] (default: $AWS_ENDPOINT_URL_S3, then
    /// $AWS_ENDPOINT_URL, then AWS's endpoint for the region)
    endpoint: Option<String>,
    #[argh(option)]
    /// the region to sign for (default: $AWS_REGION, then $AWS_DEFAULT_REGION, then
    /// us-east-1)
    region: Option<String>,
    #[argh(switch)]
    /// create the bucket if it does not exist
    create_bucket: bool,
    #[argh(switch)]
    /// make every uploaded object readable by anyone (the canned ACL public-read), for
    /// devices that read the bucket's endpoint directly; stores with ACLs disabled (AWS's
    /// default) want a bucket policy instead
    public: bool,
    #[argh(option)]
    /// a PEM file of certificate authorities to trust besides the system's (an https://
    /// endpoint with a private CA)
    ca_file: Option<PathBuf>,
    #[argh(option, default = "60")]
    /// seconds before a stalled connection is given up (default 60)
    timeout: u64,
    #[argh(switch)]
    /// leave in the bucket the packs, manifests and locators the library no longer holds
    /// (by default they are deleted once the new state is published)
    no_delete: bool,
    #[argh(switch, short = 'q')]
    /// print only the summary
    pub(super) quiet: bool,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub(super) json: bool,
}

/// `romlib publish`.
pub(super) fn publish(c: PublishCmd) -> anyhow::Result<()> {
    use crate::error::Error;
    use crate::transfer::s3::{Bucket, Credentials};
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (bucket_name, prefix) = crate::transfer::publish::parse_target(&c.target)?;
    let region = c
        .region
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    let endpoint = c
        .endpoint
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let (Some(access_key), Some(secret_key)) =
        (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
    else {
        return Err(Error::Usage(
            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
        )
        .into());
    };
    if !c.romlib.is_dir() {
        return Err(romlib_device::Error::NotFound {
            path: c.romlib.clone(),
            what: "library folder",
        }
        .into());
    }
    let creds = Credentials {
        access_key,
        secret_key,
        session_token: env("AWS_SESSION_TOKEN"),
    };
    let mut bucket = Bucket::new(
        &endpoint,
        &bucket_name,
        &region,
        creds,
        std::time::Duration::from_secs(c.timeout.max(1)),
        c.ca_file.as_deref(),
    )?;
    if c.public {
        bucket.acl = Some("public-read".into());
    }
    if !bucket.exists()? {
        if !c.create_bucket {
            return Err(romlib_device::Error::NotFound {
                path: PathBuf::from(bucket.url("").to_string()),
                what: "bucket (create it, or pass --create-bucket)",
            }
            .into());
        }
        bucket.create()?;
    }
    let (quiet, json) = (c.quiet, c.json);
    let p = crate::transfer::publish::publish(
        &c.romlib,
        &mut bucket,
        &prefix,
        !c.no_delete,
        &mut |key, done, len| {
            use crate::transfer::publish::Done;
            if !quiet && !json {
                match done {
                    Done::Uploaded => eprintln!("uploaded {key} ({len} bytes)"),
                    Done::Deleted => eprintln!("deleted {key} ({len} bytes)"),
                    Done::Unchanged => {}
                }
            }
        },
    )?;
    let out =
        romlib_device::cli::output::Output::new("romlib", "publish", c.json, ProgressMode::None);
    let url = bucket.url(&prefix);
    out.result(
        Obj::new()
            .field("target", c.target.as_str())
            .field("url", url.to_string())
            .field("uploaded", p.uploaded)
            .field("uploaded_bytes", p.uploaded_bytes)
            .field("unchanged", p.unchanged)
            .field("deleted", p.deleted)
            .field("requests", p.requests),
        &format!(
            "published {} to {}: {} uploaded ({} bytes), {} unchanged, {} deleted; devices \
             install with --from {url}",
            c.romlib.display(),
            c.target,
            count(p.uploaded as usize, "file", "files"),
            p.uploaded_bytes,
            p.unchanged,
            p.deleted,
        ),
    );
    Ok(())
}

/// `romlib export`.
pub(super) fn export(c: ExportCmd) -> anyhow::Result<()> {
    let lib = romlib_device::Library::open(&c.romlib)?;
    let (progress, out) = report("export", c.progress, c.json, c.quiet);
    let trust = trust_store(&c.trusted_key)?;
    let titles = if c.all {
        if !c.game.is_empty() {
            anyhow::bail!("give either -g TITLE or --all, not both");
        }
        lib.titles()?
    } else {
        c.game
    };
    progress.phase("export", None, None, None);
    let s = crate::transfer::export::export(&lib, &titles, &trust, &c.output, &|n| {
        progress.advance(n, 0)
    });
    progress.finish();
    let s = s?;
    let human = format!(
        "exported {} to {}: {} ({} bytes) in {}, {} bytes",
        count(s.games as usize, "game", "games"),
        c.output.display(),
        count(s.chunks as usize, "chunk", "chunks"),
        s.chunk_bytes,
        count(s.packs as usize, "pack", "packs"),
        s.file_len
    );
    out.result(
        Obj::new()
            .field("file", c.output.as_path())
            .field("games", s.games)
            .field("chunks", s.chunks)
            .field("chunk_bytes", s.chunk_bytes)
            .field("packs", s.packs)
            .field("file_bytes", s.file_len),
        if c.quiet { "" } else { &human },
    );
    Ok(())
}

/// `romlib import`.
pub(super) fn import(c: ImportCmd) -> anyhow::Result<()> {
    // The file first: a missing one is the problem to name, not the keys.
    if !c.file.is_file() {
        return Err(romlib_device::Error::NotFound {
            path: c.file.clone(),
            what: "portable file",
        }
        .into());
    }
    let dest = romlib_device::Library::new(&c.output);
    let (progress, out) = report("import", c.progress, c.json, c.quiet);
    let trust = trust_store(&c.trusted_key)?;
    let key = crate::library::snapshot::key_for(&c.output, c.signing_key.as_deref(), "import")?;
    progress.phase("import", None, None, None);
    let s = crate::transfer::import::import(
        &c.file,
        &c.output,
        &c.game,
        &trust,
        c.allow_downgrade,
        key.as_ref().map(|k| (k, c.valid_for)),
        &|n| progress.advance(n, 0),
    );
    progress.finish();
    let s = s?;
    // A library with parity keeps it current: the imported packs and manifests get theirs.
    if let Some(p) = crate::parity::library_percent(&dest) {
        let rep = crate::parity::update(&c.output, p, &|_| {})?;
        for (p, w) in &rep.problems {
            out.warn(&format!("parity: {p}: {w}"));
        }
    }
    let mut human = format!(
        "imported {} into {} ({} unchanged): {}, {} bytes, in {}; {} already there",
        count(s.games_written as usize, "game", "games"),
        c.output.display(),
        s.games_unchanged,
        count(s.new_chunks as usize, "new chunk", "new chunks"),
        s.new_bytes,
        count(s.packs as usize, "pack", "packs"),
        count(s.reused_chunks as usize, "chunk", "chunks"),
    );
    if let Some(p) = &s.snapshot {
        human += &format!("\n{p}");
    }
    for w in crate::library::snapshot::warnings(s.snapshot.as_ref()) {
        out.warn(&format!("warning: {w}"));
    }
    let snapshot = s.snapshot;
    out.result(
        crate::library::snapshot::json(Obj::new(), snapshot.as_ref())
            .field("library", c.output.as_path())
            .field("games_written", s.games_written)
            .field("games_unchanged", s.games_unchanged)
            .field("new_chunks", s.new_chunks)
            .field("new_bytes", s.new_bytes)
            .field("packs", s.packs)
            .field("reused_chunks", s.reused_chunks),
        if c.quiet { "" } else { &human },
    );
    Ok(())
}

/// `romlib remove`.
pub(super) fn remove(c: RemoveCmd) -> anyhow::Result<()> {
    if c.game.is_empty() {
        return Err(
            crate::error::Error::Usage("give at least one -g TITLE to remove".into()).into(),
        );
    }
    if !c.romlib.join(romlib_format::layout::INDEX_FILE).exists() {
        return Err(
            crate::error::Error::library(&c.romlib, "not a library (it has no index.db)").into(),
        );
    }
    let key = crate::library::snapshot::key_for(&c.romlib, c.signing_key.as_deref(), "remove")?;
    let (progress, out) = report("remove", c.progress, c.json, c.quiet);
    progress.phase("remove", None, None, Some(c.game.len() as u64));
    let mut store = crate::library::recovery::open_and_recover(&c.romlib)?;
    for r in std::mem::take(&mut store.recovered) {
        out.warn(&r);
    }
    let s = crate::library::remove::remove_games(&mut store, &c.game).and_then(|s| {
        let published = match &key {
            Some(k) => crate::library::snapshot::publish(
                store.library(),
                k,
                c.valid_for,
                store.touched(),
                false,
            )?,
            None => None,
        };
        Ok((s, published))
    });
    progress.finish();
    let (s, published) = s?;
    drop(store);
    let mut human = format!(
        "removed {} from {}: {}; {} ({} bytes) no game references any more",
        count(s.removed.len(), "game", "games"),
        c.romlib.display(),
        s.removed.join(", "),
        count(s.unreferenced_chunks as usize, "chunk", "chunks"),
        s.unreferenced_bytes,
    );
    if let Some(p) = &published {
        human += &format!("\n{p}");
    }
    for w in crate::library::snapshot::warnings(published.as_ref()) {
        out.warn(&format!("warning: {w}"));
    }
    out.result(
        crate::library::snapshot::json(Obj::new(), published.as_ref())
            .field("library", c.romlib.as_path())
            .field("removed", s.removed.clone())
            .field("unreferenced_chunks", s.unreferenced_chunks)
            .field("unreferenced_bytes", s.unreferenced_bytes),
        if c.quiet { "" } else { &human },
    );
    Ok(())
}

/// `romlib prune`.
pub(super) fn prune(c: PruneCmd) -> anyhow::Result<()> {
    if c.max_unused > 100 {
        return Err(crate::error::Error::Usage(format!(
            "--max-unused {} is not a percentage (0 to 100)",
            c.max_unused
        ))
        .into());
    }
    if !c.romlib.join(romlib_format::layout::INDEX_FILE).exists() {
        return Err(
            crate::error::Error::library(&c.romlib, "not a library (it has no index.db)").into(),
        );
    }
    let key = if c.dry_run {
        None
    } else {
        crate::library::snapshot::key_for(&c.romlib, c.signing_key.as_deref(), "prune")?
    };
    let (progress, out) = report("prune", c.progress, c.json, c.quiet);
    progress.phase("prune", None, None, None);
    let mut store = crate::library::recovery::open_and_recover(&c.romlib)?;
    for r in std::mem::take(&mut store.recovered) {
        out.warn(&r);
    }
    let done =
        crate::library::prune::prune(&mut store, c.max_unused, c.dry_run, c.newest_whole, &|n| {
            progress.advance(n, 0)
        })
        .and_then(|s| {
            let changed = !s.packs_deleted.is_empty()
                || !s.packs_rewritten.is_empty()
                || s.deltas_stored_whole > 0
                || s.deltas_turned > 0;
            if s.dry_run || !changed {
                return Ok((s, None, None));
            }
            // Everything that names the old packs is published before they go: the
            // locators (by prune), then the snapshot.
            let published = match &key {
                Some(k) => crate::library::snapshot::publish(
                    store.library(),
                    k,
                    c.valid_for,
                    store.touched(),
                    false,
                )?,
                None => None,
            };
            crate::library::prune::delete_packs(store.library(), &s)?;
            let parity = match crate::parity::library_percent(store.library()) {
                Some(p) => Some(crate::parity::update_locked(store.library(), p, &|_| {})?),
                None => None,
            };
            Ok((s, published, parity))
        });
    progress.finish();
    let (s, published, parity) = done?;
    drop(store);
    let mib = |b: u64| b as f64 / 1048576.0;
    let ids = |v: &[u32]| {
        v.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut human = format!(
        "{}{}: {} counted, {} live chunks ({:.1} MiB of {:.1} MiB in {})",
        if s.dry_run { "dry run: " } else { "" },
        c.romlib.display(),
        count(s.games as usize, "game", "games"),
        s.live_chunks,
        mib(s.live_bytes),
        mib(s.pack_bytes_before),
        count(s.packs_before as usize, "pack", "packs"),
    );
    let (del, rew) = if s.dry_run {
        ("would delete", "would rewrite")
    } else {
        ("deleted", "rewrote")
    };
    if s.packs_deleted.is_empty()
        && s.packs_rewritten.is_empty()
        && s.deltas_stored_whole == 0
        && s.deltas_turned == 0
    {
        human += &format!(
            "
nothing to prune: no pack is more than {}% unused",
            c.max_unused
        );
    } else {
        if !s.packs_deleted.is_empty() {
            human += &format!(
                "
{del} {} with nothing live: {}",
                count(s.packs_deleted.len(), "pack", "packs"),
                ids(&s.packs_deleted)
            );
        }
        if !s.packs_rewritten.is_empty() {
            human += &format!(
                "
{rew} {} more than {}% unused: {} ({:.1} MiB copied{})",
                count(s.packs_rewritten.len(), "pack", "packs"),
                c.max_unused,
                ids(&s.packs_rewritten),
                mib(s.bytes_copied),
                if s.dry_run {
                    String::new()
                } else {
                    format!(" into {}", ids(&s.packs_written))
                }
            );
        }
        human += &format!(
            "
{} {:.1} MiB: packs {:.1} MiB -> {:.1} MiB in {:.1} s",
            if s.dry_run {
                "would give back"
            } else {
                "gave back"
            },
            mib(s.reclaimed()),
            mib(s.pack_bytes_before),
            mib(s.pack_bytes_after),
            s.seconds
        );
        if s.deltas_stored_whole > 0 {
            human += &format!(
                "\n{} {} whole: no game needs {} base any more",
                if s.dry_run { "would store" } else { "stored" },
                count(
                    s.deltas_stored_whole as usize,
                    "delta chunk",
                    "delta chunks"
                ),
                if s.deltas_stored_whole == 1 {
                    "its"
                } else {
                    "their"
                },
            );
        }
        if s.deltas_turned > 0 {
            human += &format!(
                "\n{} {} whole and {} (the newest revision whole){}",
                if s.dry_run { "would store" } else { "stored" },
                count(s.deltas_turned as usize, "delta chunk", "delta chunks"),
                if s.deltas_turned == 1 {
                    "its base as a delta against it"
                } else {
                    "their bases as deltas against them"
                },
                if s.bases_kept_whole > 0 {
                    format!(
                        "; {} kept whole (a delta would save too little)",
                        count(s.bases_kept_whole as usize, "base", "bases")
                    )
                } else {
                    String::new()
                },
            );
        }
        if s.locators_rewritten > 0 {
            human += &format!(
                "
{} rewritten",
                count(s.locators_rewritten as usize, "locator", "locators")
            );
        }
    }
    if let Some(p) = &published {
        human += &format!(
            "
{p}"
        );
    }
    for w in crate::library::snapshot::warnings(published.as_ref()) {
        out.warn(&format!("warning: {w}"));
    }
    if let Some(r) = &parity {
        for (f, why) in &r.problems {
            out.warn(&format!("warning: parity of {f}: {why}"));
        }
    }
    out.result(
        crate::library::snapshot::json(Obj::new(), published.as_ref())
            .field("library", c.romlib.as_path())
            .field("dry_run", s.dry_run)
            .field("games", s.games)
            .field("live_chunks", s.live_chunks)
            .field("live_bytes", s.live_bytes)
            .field("packs_before", s.packs_before)
            .field("pack_bytes_before", s.pack_bytes_before)
            .field("pack_bytes_after", s.pack_bytes_after)
            .field("reclaimed_bytes", s.reclaimed())
            .field("packs_deleted", s.packs_deleted.clone())
            .field("packs_rewritten", s.packs_rewritten.clone())
            .field("packs_written", s.packs_written.clone())
            .field("bytes_copied", s.bytes_copied)
            .field("deltas_stored_whole", s.deltas_stored_whole)
            .field("deltas_turned", s.deltas_turned)
            .field("bases_kept_whole", s.bases_kept_whole)
            .field("locators_rewritten", s.locators_rewritten)
            .field("elapsed_ms", (s.seconds * 1000.0) as u64),
        if c.quiet { "" } else { &human },
    );
    Ok(())
}

/// `romlib refresh`.
pub(super) fn refresh(c: RefreshCmd) -> anyhow::Result<()> {
    let games = c.romlib.join(romlib_format::layout::GAMES_DIR);
    if !games.is_dir() {
        return Err(romlib_device::Error::NotFound {
            path: games,
            what: "library games folder",
        }
        .into());
    }
    let key = crate::keys::load_signing_key(&c.signing_key)?;
    let (_, out) = report("refresh", ProgressMode::None, c.json, c.quiet);
    let mut store = crate::library::recovery::open_and_recover(&c.romlib)?;
    for r in std::mem::take(&mut store.recovered) {
        out.warn(&r);
    }
    let p = crate::library::snapshot::publish(
        store.library(),
        &key,
        c.valid_for,
        store.touched(),
        true,
    )?;
    drop(store);
    for w in crate::library::snapshot::warnings(p.as_ref()) {
        out.warn(&format!("warning: {w}"));
    }
    let human = match &p {
        Some(p) => format!("{}: {p}", c.romlib.display()),
        None => String::new(),
    };
    out.result(
        crate::library::snapshot::json(Obj::new(), p.as_ref())
            .field("library", c.romlib.as_path())
            .field("games", p.as_ref().map_or(0, |p| p.games)),
        if c.quiet { "" } else { &human },
    );
    Ok(())
}

/// `romlib serve`.
///
/// On Unix SIGINT and SIGTERM are blocked before any thread starts (so every thread
/// inherits that) and taken on one thread with sigwait; on Windows Ctrl-C and Ctrl-Break
/// (console control events) are taken by the `ctrlc` crate's handler thread. Either way the
/// server is stopped from a plain thread, never from a signal handler.
pub(super) fn serve(c: ServeCmd) -> anyhow::Result<()> {
    let stopper = Stopper::install()?;
    crate::transfer::serve::serve(&c.romlib, &c.listen, |server| {
        println!(
            "serving {} at http://{}/ (Ctrl-C stops)",
            c.romlib.display(),
            server.addr()
        );
        stopper.on_stop(server.clone());
    })?;
    println!("stopped");
    Ok(())
}

/// What stops `romlib serve`: the termination signals on Unix, Ctrl-C elsewhere.
struct Stopper {
    #[cfg(unix)]
    signals: nix::sys::signal::SigSet,
    #[cfg(not(unix))]
    stop: std::sync::mpsc::Receiver<()>,
}

impl Stopper {
    /// Takes the signals (Unix) or installs the Ctrl-C handler (elsewhere).
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use nix::sys::signal::{SigSet, Signal};
            let mut signals = SigSet::empty();
            signals.add(Signal::SIGINT);
            signals.add(Signal::SIGTERM);
            signals.thread_block()?;
            Ok(Stopper { signals })
        }
        #[cfg(not(unix))]
        {
            let (tx, stop) = std::sync::mpsc::sync_channel(1);
            ctrlc::set_handler(move || {
                let _ = tx.try_send(());
            })
            .map_err(|e| anyhow::anyhow!("cannot take Ctrl-C: {e}"))?;
            Ok(Stopper { stop })
        }
    }

    /// Stops `server` from a thread of its own when the signal or Ctrl-C comes.
    fn on_stop(self, server: crate::transfer::serve::Server) {
        std::thread::spawn(move || {
            #[cfg(unix)]
            let stopped = self.signals.wait().is_ok();
            #[cfg(not(unix))]
            let stopped = self.stop.recv().is_ok();
            if stopped {
                server.stop();
            }
        });
    }
}
