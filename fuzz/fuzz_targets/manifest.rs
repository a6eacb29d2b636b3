//! Fuzz target `manifest`: see `romlib_fuzz_harness::manifest`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::manifest(data));
