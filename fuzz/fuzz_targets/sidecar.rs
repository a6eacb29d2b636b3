//! Fuzz target `sidecar`: see `romlib_fuzz_harness::sidecar`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::sidecar(data));
