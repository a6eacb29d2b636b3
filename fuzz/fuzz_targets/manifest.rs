//! Fuzz target `manifest`: see `romlib_fuzz_harness::manifest`.
#![no_main]
extern crate romlib_fuzz; // links the allocation cap (fuzz/src/lib.rs)
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::manifest(data));
