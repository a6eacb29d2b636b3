//! Fuzz target `manifest_signed`: see `romlib_fuzz_harness::manifest_signed`.
#![no_main]
extern crate romlib_fuzz; // links the allocation cap (fuzz/src/lib.rs)
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::manifest_signed(data));
