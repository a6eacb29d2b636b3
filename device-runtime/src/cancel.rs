//! Stopping a long operation cleanly on SIGINT or SIGTERM, which is how a front end
//! cancels an install. [`arm`] blocks both signals in the calling thread before any other
//! thread starts (so every thread inherits the block) and leaves one thread waiting for
//! them with `sigwait`: no signal handler runs, the operation itself polls [`requested`]
//! between batches of chunks and stops as after an error, keeping what a network install
//! downloaded for the next attempt. A second signal ends the process at once.
//!
//! Without [`arm`] (tests, the library API, Windows) nothing is ever requested.

use crate::error::{Error, Result};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

/// The signal received, or 0.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Takes SIGINT and SIGTERM from now on (call it before starting other threads).
#[cfg(unix)]
pub fn arm() -> std::io::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block().map_err(std::io::Error::from)?;
    std::thread::Builder::new()
        .name("cancel".into())
        .spawn(move || loop {
            let Ok(sig) = signals.wait() else { return };
            if SIGNAL.swap(sig as i32, Ordering::SeqCst) != 0 {
                // Asked twice: stop now, as the default action would have.
                std::process::exit(128 + sig as i32);
            }
        })?;
    Ok(())
}

/// Without Unix signals, a cancel is the console's own interrupt.
#[cfg(not(unix))]
pub fn arm() -> std::io::Result<()> {
    Ok(())
}

/// The signal that asked the operation to stop, if one did.
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// `Err(Error::Cancelled)` about `subject` once a stop was asked for.
pub fn check(subject: &Path) -> Result<()> {
    match requested() {
        None => Ok(()),
        Some(signal) => Err(Error::Cancelled {
            path: subject.to_path_buf(),
            signal,
        }),
    }
}
