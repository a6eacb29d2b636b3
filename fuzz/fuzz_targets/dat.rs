//! Fuzz target `dat`: see `romlib_fuzz_harness::dat`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::dat(data));
