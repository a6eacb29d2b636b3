//! Fuzz target `snapshot`: see `romlib_fuzz_harness::snapshot`.
#![no_main]
extern crate romlib_fuzz; // links the allocation cap (fuzz/src/lib.rs)
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::snapshot(data));
