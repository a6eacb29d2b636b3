//! Fuzz target `keyfile`: see `romlib_fuzz_harness::keyfile`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::keyfile(data));
