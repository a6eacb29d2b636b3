//! Fuzz target `manifest_body`: see `romlib_fuzz_harness::manifest_body`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::manifest_body(data));
