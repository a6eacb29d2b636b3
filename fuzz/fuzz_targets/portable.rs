//! Fuzz target `portable`: see `romlib_fuzz_harness::portable`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::portable(data));
