//! Progress bars: whether to show one, and the byte-counting kind.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

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
