//! `romlib-device adopt`: games already on the card brought under romlib
//! ([`crate::install::adopt`]).

use super::json::Obj;
use super::output::Output;
use super::{library, trust, usage_layout, Failure};
use crate::install::{adopt, count, layout, Adopted};
use argh::FromArgs;
use std::collections::HashSet;
use std::path::PathBuf;

#[derive(FromArgs)]
/// Find games already on the card that are byte for byte a library game (checked against
/// its signed manifest) and write their completion markers, so romlib lists, verifies,
/// upgrades and uninstalls them; nothing is moved, changed or deleted.
#[argh(subcommand, name = "adopt")]
pub struct AdoptCmd {
    #[argh(option)]
    /// where the games are (with --layout: the OS's ROM root)
    pub install_dir: PathBuf,
    #[argh(option)]
    /// look where this layout places games, in each of its system folders: muos, knulli
    /// (batocera), minui (nextui), onion, arkos (darkos); without it, games in folders
    /// named after them
    pub layout: Option<String>,
    #[argh(option, short = 'r')]
    /// library folder, or a portable file made by `romlib export`
    pub romlib: Option<PathBuf>,
    #[argh(option)]
    /// the library on a web server instead (http[s]://HOST[:PORT]/PATH/): only the
    /// manifests of games whose names are found on the card are fetched
    pub from: Option<String>,
    #[argh(option)]
    /// with an https:// --from: a PEM file of certificate authorities to trust besides the
    /// system's
    pub ca_file: Option<PathBuf>,
    #[argh(option, default = "30")]
    /// seconds before a stalled connection is given up (with --from; default 30)
    pub timeout: u64,
    #[argh(option, default = "super::DEFAULT_MIN_RATE")]
    /// with --from: bytes per second below which a server that keeps sending is given up
    /// after 20 s of waiting on it (error code network; default 4096, 0 turns it off)
    pub min_rate: u64,
    #[argh(switch)]
    /// with --from: read the library even though its signed snapshot expired (a server
    /// left stale, or this device's clock wrong; error code expired without it)
    pub allow_expired: bool,
    #[argh(option)]
    /// trusted public key file (repeatable; default: every *.pub in /etc/romlib/trusted-keys)
    pub trusted_key: Vec<PathBuf>,
    #[argh(switch)]
    /// print the result (or the error) as one JSON object on standard output
    pub json: bool,
}

impl AdoptCmd {
    /// Adopts what matches and reports matched, differing and unknown entries.
    pub fn run(self, out: &Output) -> Result<(), Failure> {
        let c = self;
        usage_layout(&c.layout)?;
        let scratch = c.install_dir.join(crate::install::STAGING_DIR);
        let lib = library(&c.romlib, &c.from, &scratch, &c.net())?;
        let trust = trust(&c.trusted_key)?;
        let titles: HashSet<String> = lib.titles()?.into_iter().collect();
        let folders = match &c.layout {
            Some(l) => layout::layout_folders(&c.install_dir, l)?,
            None => vec![c.install_dir.clone()],
        };
        if c.layout.is_none() {
            if let Some(e) = layout::needs_layout(&c.install_dir) {
                return Err(e.into());
            }
        }
        let mut all = Adopted::default();
        let adopted = (|| -> crate::Result<()> {
            for f in &folders {
                let a = adopt(f, c.layout.as_deref(), &lib, &trust, &titles)?;
                all.matched.extend(a.matched);
                all.differed.extend(a.differed);
                all.unknown.extend(a.unknown);
            }
            Ok(())
        })();
        adopted?;
        let mut human = String::new();
        for (t, p) in &all.matched {
            human.push_str(&format!("adopted {t}: {}\n", p.display()));
        }
        for (t, p, why) in &all.differed {
            human.push_str(&format!("differs {t}: {}: {why}\n", p.display()));
        }
        for p in &all.unknown {
            human.push_str(&format!("unknown {}\n", p.display()));
        }
        human.push_str(&format!(
            "{}: {} adopted, {} differ from the library, {} not in the library",
            c.install_dir.display(),
            count(all.matched.len(), "game", "games"),
            all.differed.len(),
            all.unknown.len()
        ));
        out.result(
            Obj::new()
                .field("install_dir", c.install_dir.as_path())
                .field(
                    "matched",
                    (all.matched.iter())
                        .map(|(t, p)| {
                            Obj::new()
                                .field("title", t.as_str())
                                .field("path", p.as_path())
                        })
                        .collect::<Vec<_>>(),
                )
                .field(
                    "differed",
                    (all.differed.iter())
                        .map(|(t, p, why)| {
                            Obj::new()
                                .field("title", t.as_str())
                                .field("path", p.as_path())
                                .field("problem", why.as_str())
                        })
                        .collect::<Vec<_>>(),
                )
                .field(
                    "unknown",
                    all.unknown
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>(),
                ),
            &human,
        );
        Ok(())
    }
}
