//! The keys a reading command trusts.

use std::path::PathBuf;

/// The keys to trust: those given with `--trusted-key`, else the user's trust store
/// ([`crate::trust_store`]), never the library's own `keys/`.
pub(super) fn trust_store(keys: &[PathBuf]) -> anyhow::Result<romlib_device::TrustStore> {
    Ok(crate::trust_store::load(keys)?)
}

#[derive(argh::FromArgs)]
/// Manage your trust store: the public keys whose games `install`, `cat`, `mount`, `show`,
/// `verify`, `export`, `import` and `list-games` accept when no --trusted-key is given
/// (never the keys a library carries). It is $ROMLIB_CONFIG_DIR/trusted-keys, else
/// $XDG_CONFIG_HOME/romlib/trusted-keys or ~/.config/romlib/trusted-keys (on Windows
/// %APPDATA%\romlib\trusted-keys); `romlib keygen` adds its key there.
#[argh(subcommand, name = "trust")]
pub(super) struct TrustCmd {
    #[argh(subcommand)]
    what: TrustWhat,
}

impl TrustCmd {
    /// `--json` of the subcommand.
    pub(super) fn json(&self) -> bool {
        match &self.what {
            TrustWhat::Add(a) => a.json,
            TrustWhat::List(l) => l.json,
            TrustWhat::Remove(r) => r.json,
        }
    }
}

#[derive(argh::FromArgs)]
#[argh(subcommand)]
enum TrustWhat {
    Add(TrustAdd),
    List(TrustList),
    Remove(TrustRemove),
}

#[derive(argh::FromArgs)]
/// Trust the public key files given (a secret key file is refused).
#[argh(subcommand, name = "add")]
struct TrustAdd {
    #[argh(positional)]
    /// public key files
    files: Vec<PathBuf>,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    json: bool,
}

#[derive(argh::FromArgs)]
/// List the trusted keys.
#[argh(subcommand, name = "list")]
struct TrustList {
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    json: bool,
}

#[derive(argh::FromArgs)]
/// Stop trusting keys, by key id (as `romlib trust list` shows it) or public key file.
#[argh(subcommand, name = "remove")]
struct TrustRemove {
    #[argh(positional)]
    /// key ids or public key files
    keys: Vec<String>,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    json: bool,
}

/// `romlib trust`.
pub(super) fn trust(c: TrustCmd, out: &romlib_device::cli::output::Output) -> anyhow::Result<()> {
    use romlib_device::cli::json::Obj;
    let dir = crate::trust_store::dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let key_obj = |t: &crate::trust_store::Trusted| {
        Obj::new()
            .field("id", t.id.as_str())
            .field("path", t.path.as_path())
    };
    let (action, keys, human): (&str, Vec<Obj>, String) = match c.what {
        TrustWhat::Add(a) => {
            if a.files.is_empty() {
                return Err(crate::error::Error::Usage(
                    "give the public key files to trust".into(),
                )
                .into());
            }
            let mut keys = Vec::new();
            let mut lines = Vec::new();
            for f in &a.files {
                let (t, new) = crate::trust_store::add(f)?;
                lines.push(format!(
                    "{} key {} ({})",
                    if new { "trusted" } else { "already trusted:" },
                    t.id,
                    f.display()
                ));
                keys.push(key_obj(&t));
            }
            ("add", keys, lines.join("\n"))
        }
        TrustWhat::List(_) => {
            let all = crate::trust_store::list()?;
            let mut lines: Vec<String> = all
                .iter()
                .map(|t| format!("{}  {}", t.id, t.path.display()))
                .collect();
            lines.push(format!(
                "{} in {dir}",
                romlib_device::install::count(all.len(), "trusted key", "trusted keys")
            ));
            ("list", all.iter().map(key_obj).collect(), lines.join("\n"))
        }
        TrustWhat::Remove(r) => {
            if r.keys.is_empty() {
                return Err(crate::error::Error::Usage("give the key ids to remove".into()).into());
            }
            let mut keys = Vec::new();
            let mut lines = Vec::new();
            for k in &r.keys {
                let t = crate::trust_store::remove(k)?;
                lines.push(format!("no longer trusted: key {}", t.id));
                keys.push(key_obj(&t));
            }
            ("remove", keys, lines.join("\n"))
        }
    };
    out.result(
        Obj::new()
            .field("action", action)
            .field("store", dir.as_str())
            .field("keys", keys),
        &human,
    );
    Ok(())
}
