//! Fuzz target `pack`: see `romlib_fuzz_harness::pack`.
#![no_main]
extern crate romlib_fuzz; // links the allocation cap (fuzz/src/lib.rs)
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::pack(data));
