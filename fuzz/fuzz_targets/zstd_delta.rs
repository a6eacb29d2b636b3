//! Fuzz target `zstd_delta`: see `romlib_fuzz_harness::zstd_delta`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::zstd_delta(data));
