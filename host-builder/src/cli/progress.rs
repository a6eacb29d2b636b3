//! Progress and results of the host's long commands: the device runtime's
//! [`Reporter`] (a bar on a terminal, JSON lines with `--progress json`) and [`Output`],
//! so both binaries draw and report the same way.

use crate::build::BuildProgress;
use romlib_device::cli::output::Output;
use romlib_device::cli::reporter::{ProgressMode, Reporter};

/// A build tells the reporter its input's size once scanned, then each byte stored.
impl BuildProgress for Reporter<'_> {
    fn start(&self, total: u64) {
        self.phase("build", None, Some(total), None);
    }

    fn advance(&self, n: u64) {
        romlib_device::progress::Progress::advance(self, n, 0);
    }

    fn finish(&self) {
        Reporter::finish(self);
    }
}

/// The reporter and output of host command `op`.
pub(super) fn report(
    op: &'static str,
    mode: ProgressMode,
    json: bool,
    quiet: bool,
) -> (Reporter<'static>, Output) {
    (
        Reporter::new(mode, op, quiet || json && mode != ProgressMode::Json),
        Output::new("romlib", op, json, mode),
    )
}
