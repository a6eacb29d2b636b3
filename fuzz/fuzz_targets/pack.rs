//! Fuzz target `pack`: see `romlib_fuzz_harness::pack`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::pack(data));
