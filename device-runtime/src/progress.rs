//! The seam through which long operations (install, verify) tell how far they have come;
//! the command line's [`crate::cli::reporter::Reporter`] draws it as a bar or JSON lines.

/// Hears how far an install, verify or other long operation has come. Called from worker
/// threads.
pub trait Progress: Sync {
    /// `bytes` more bytes and `chunks` more chunks are done.
    fn advance(&self, bytes: u64, chunks: u64);

    /// The operation waits for something outside it (another operation's lock): `note`
    /// says what, for the user.
    fn waiting(&self, note: &str) {
        let _ = note;
    }
}

/// Hears nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _: u64, _: u64) {}
}
