//! Fuzz target `zstd_frame`: see `romlib_fuzz_harness::zstd_frame`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::zstd_frame(data));
