//! Progress of long operations (`--progress auto|bar|json|none`): a one-line bar on a
//! terminal, or JSON lines on standard error for a front end to draw its own (docs/handhelds.md,
//! "Machine-readable output"). Written by hand rather than with a progress-bar crate so
//! the device binary stays small.

use super::json::envelope;
use crate::progress::Progress;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a progress line is written at most (the final one always is).
const EVERY: Duration = Duration::from_millis(250);
/// Width of the terminal bar's gauge, in characters.
const GAUGE: usize = 20;

/// What `--progress` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A bar when standard error is a terminal, nothing otherwise.
    #[default]
    Auto,
    /// A bar even when standard error is not a terminal.
    Bar,
    /// JSON lines on standard error.
    Json,
    /// Nothing.
    None,
}

impl argh::FromArgValue for ProgressMode {
    fn from_arg_value(value: &str) -> Result<Self, String> {
        match value {
            "auto" => Ok(Self::Auto),
            "bar" => Ok(Self::Bar),
            "json" => Ok(Self::Json),
            "none" => Ok(Self::None),
            other => Err(format!(
                "unknown progress mode {other:?}: use auto, bar, json or none"
            )),
        }
    }
}

impl ProgressMode {
    /// Whether progress goes out as JSON lines.
    pub fn is_json(self) -> bool {
        self == Self::Json
    }
}

/// Where the figures stand.
struct State {
    phase: &'static str,
    game: Option<String>,
    bytes_done: u64,
    bytes_total: Option<u64>,
    chunks_done: u64,
    chunks_total: Option<u64>,
    started: Instant,
    last: Option<Instant>,
    /// A bar is on the terminal's last line (to be cleared).
    drawn: bool,
    /// The phase's final figures were reported.
    finished: bool,
}

/// Reports the progress of operation `op` as `--progress` asked: the [`Progress`] the
/// library code is handed.
pub struct Reporter<'a> {
    op: &'static str,
    style: Style,
    state: Mutex<State>,
    /// Bytes downloaded so far (installs over the network).
    downloaded: Option<Box<dyn Fn() -> u64 + Send + Sync + 'a>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Off,
    Bar,
    Json,
}

impl<'a> Reporter<'a> {
    /// A reporter for operation `op` (`"install"`, `"build"`, ...); `quiet` turns a bar
    /// (never JSON, which was asked for by name) off.
    pub fn new(mode: ProgressMode, op: &'static str, quiet: bool) -> Self {
        let style = match mode {
            ProgressMode::Json => Style::Json,
            ProgressMode::None => Style::Off,
            _ if quiet => Style::Off,
            ProgressMode::Bar => Style::Bar,
            ProgressMode::Auto if std::io::stderr().is_terminal() => Style::Bar,
            ProgressMode::Auto => Style::Off,
        };
        Self {
            op,
            style,
            state: Mutex::new(State {
                phase: op,
                game: None,
                bytes_done: 0,
                bytes_total: None,
                chunks_done: 0,
                chunks_total: None,
                started: Instant::now(),
                last: None,
                drawn: false,
                finished: true,
            }),
            downloaded: None,
        }
    }

    /// Counts downloaded bytes with `f` (a remote library's running total).
    pub fn count_downloads(&mut self, f: impl Fn() -> u64 + Send + Sync + 'a) {
        self.downloaded = Some(Box::new(f));
    }

    /// Whether a bar is drawn on the terminal (so nothing else should draw one).
    pub fn draws_bar(&self) -> bool {
        self.style == Style::Bar
    }

    /// Starts phase `phase` of game `game` (if any) with these totals (`None`: not
    /// known); reports at once.
    pub fn phase(
        &self,
        phase: &'static str,
        game: Option<&str>,
        bytes_total: Option<u64>,
        chunks_total: Option<u64>,
    ) {
        let Ok(mut s) = self.state.lock() else { return };
        s.phase = phase;
        s.game = game.map(str::to_string);
        s.bytes_done = 0;
        s.bytes_total = bytes_total;
        s.chunks_done = 0;
        s.chunks_total = chunks_total;
        s.started = Instant::now();
        s.finished = false;
        self.emit(&mut s);
    }

    /// Reports the phase's final figures (once, however often it is called) and clears a
    /// bar.
    pub fn finish(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        if s.finished {
            return;
        }
        s.finished = true;
        self.emit(&mut s);
        if s.drawn {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K");
            let _ = e.flush();
            s.drawn = false;
        }
    }

    fn emit(&self, s: &mut State) {
        let now = Instant::now();
        s.last = Some(now);
        // Integer arithmetic only: float formatting would cost the device binary ~20 KiB.
        let elapsed_ms = now.duration_since(s.started).as_millis() as u64;
        let rate = if elapsed_ms >= 50 {
            (u128::from(s.bytes_done) * 1000 / u128::from(elapsed_ms)) as u64
        } else {
            0
        };
        let eta = s
            .bytes_total
            .filter(|t| rate > 0 && *t >= s.bytes_done)
            .map(|t| (t - s.bytes_done).div_ceil(rate));
        match self.style {
            Style::Off => {}
            Style::Json => {
                let line = envelope("progress", self.op)
                    .field("phase", s.phase)
                    .field("game", s.game.clone())
                    .field("bytes_done", s.bytes_done)
                    .field("bytes_total", s.bytes_total)
                    .field("chunks_done", s.chunks_done)
                    .field("chunks_total", s.chunks_total)
                    .field(
                        "bytes_downloaded",
                        self.downloaded.as_ref().map_or(0, |f| f()),
                    )
                    .field("rate", rate)
                    .field("eta", eta)
                    .to_line();
                let mut e = std::io::stderr().lock();
                let _ = writeln!(e, "{line}");
            }
            Style::Bar => {
                let game = s
                    .game
                    .as_deref()
                    .map(|g| format!(" {g}"))
                    .unwrap_or_default();
                let mut line = match s.bytes_total {
                    Some(total) => {
                        // Per mille done.
                        let permille = if total > 0 {
                            (u128::from(s.bytes_done.min(total)) * 1000 / u128::from(total))
                                as usize
                        } else {
                            1000
                        };
                        let filled = permille * GAUGE / 1000;
                        format!(
                            "\r{}{game} [{}{}] {:>3}% {}/{} {}/s",
                            s.phase,
                            "#".repeat(filled),
                            "-".repeat(GAUGE - filled),
                            permille / 10,
                            mib(s.bytes_done),
                            mib(total),
                            mib(rate),
                        )
                    }
                    None => format!("\r{}{game} {} {}/s", s.phase, mib(s.bytes_done), mib(rate)),
                };
                if let Some(f) = &self.downloaded {
                    line.push_str(&format!(" ({} downloaded)", mib(f())));
                }
                if let Some(eta) = eta {
                    line.push_str(&format!(" eta {}", clock(eta)));
                }
                line.push_str("\x1b[K");
                let mut e = std::io::stderr().lock();
                let _ = e.write_all(line.as_bytes());
                let _ = e.flush();
                s.drawn = true;
            }
        }
    }
}

impl Progress for Reporter<'_> {
    fn waiting(&self, note: &str) {
        let mut e = std::io::stderr().lock();
        let _ = match self.style {
            Style::Json => writeln!(
                e,
                "{}",
                envelope("warning", self.op)
                    .field("message", note)
                    .to_line()
            ),
            _ => writeln!(e, "romlib: {note}"),
        };
    }

    fn advance(&self, bytes: u64, chunks: u64) {
        if self.style == Style::Off {
            return;
        }
        let Ok(mut s) = self.state.lock() else { return };
        s.bytes_done += bytes;
        s.chunks_done += chunks;
        if s.last.is_none_or(|t| t.elapsed() >= EVERY) {
            self.emit(&mut s);
        }
    }
}

/// `n` bytes in MiB with one decimal.
fn mib(n: u64) -> String {
    let tenths = u128::from(n) * 10 / (1024 * 1024);
    format!("{}.{} MiB", tenths / 10, tenths % 10)
}

/// Seconds as `m:ss` (or `h:mm:ss`).
fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_clock_reads() {
        use argh::FromArgValue;
        assert_eq!(ProgressMode::from_arg_value("json"), Ok(ProgressMode::Json));
        assert!(ProgressMode::from_arg_value("loud").is_err());
        assert_eq!(clock(59), "0:59");
        assert_eq!(clock(3725), "1:02:05");
        assert_eq!(mib(0), "0.0 MiB");
        assert_eq!(mib(1024 * 1024 * 3 / 2), "1.5 MiB");
        assert_eq!(mib(u64::MAX), "17592186044415.9 MiB");
    }
}
