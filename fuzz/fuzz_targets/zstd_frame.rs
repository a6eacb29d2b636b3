//! Fuzz target `zstd_frame`: see `romlib_fuzz_harness::zstd_frame`.
#![no_main]
extern crate romlib_fuzz; // links the allocation cap (fuzz/src/lib.rs)
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::zstd_frame(data));
