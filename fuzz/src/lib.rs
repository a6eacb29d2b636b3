//! What every fuzz target links besides its harness function: a cap on single allocations.
//!
//! libFuzzer's `-malloc_limit_mb` only works through a sanitizer's allocator hooks, and
//! AddressSanitizer costs 8 to 10 times the executions per second on these targets
//! (measured: manifest_body 260k/s without, 34k/s with; zstd_frame 48k/s and 4.5k/s). So
//! `fuzz/run.sh` builds without a sanitizer and this allocator makes one allocation above
//! [`MAX_ALLOCATION`] abort, which libFuzzer reports as a crash and keeps: an untrusted
//! length that sizes a buffer before it is checked is found even when the buffer is never
//! touched (the RSS limit alone misses that).
//!
//! This is the one `unsafe` in romlib's fuzzing, and it is never built into a shipped binary:
//! implementing `GlobalAlloc` requires it, and every call forwards to the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

/// Largest single allocation a target may make: 256 MiB, as `-malloc_limit_mb=256`.
pub const MAX_ALLOCATION: usize = 256 << 20;

/// The system allocator, refusing (aborting on) any allocation above [`MAX_ALLOCATION`].
pub struct CappedAllocator;

fn check(size: usize) {
    if size > MAX_ALLOCATION {
        // No formatting: it could allocate, and we are inside the allocator.
        let _ = std::io::stderr().write_all(
            b"==romlib-fuzz== ERROR: one allocation above 256 MiB (unbounded length?)\n",
        );
        std::process::abort();
    }
}

// SAFETY: each method checks the size and then forwards its arguments unchanged to
// `System`, whose contract is the one `GlobalAlloc` states; the check neither allocates
// nor touches the memory.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: forwarded unchanged (see above).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: forwarded unchanged (see above).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        // SAFETY: forwarded unchanged (see above).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see above).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;
