//! Fuzz target `path`: see `romlib_fuzz_harness::path`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::path(data));
