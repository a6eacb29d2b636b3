//! Progress bars: whether to show one, and the byte-counting kind.

use crate::build::BuildProgress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::OnceLock;

/// Whether to show a progress bar: not when told to keep quiet, nor when standard error is
/// not a terminal.
pub(super) fn progress(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// A byte-counting progress bar, or a hidden one.
pub(super) fn bytes_bar(show: bool, what: &str) -> ProgressBar {
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

/// The bar of a build: input bytes done of all, with speed and time left. It appears when
/// the build starts reading.
#[derive(Default)]
pub(super) struct BuildBar(OnceLock<ProgressBar>);

impl BuildProgress for BuildBar {
    fn start(&self, total: u64) {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let _ = self.0.set(b);
    }

    fn advance(&self, n: u64) {
        if let Some(b) = self.0.get() {
            b.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(b) = self.0.get() {
            b.finish_and_clear();
        }
    }
}
