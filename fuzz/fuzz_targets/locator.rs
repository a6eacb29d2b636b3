//! Fuzz target `locator`: see `romlib_fuzz_harness::locator`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::locator(data));
