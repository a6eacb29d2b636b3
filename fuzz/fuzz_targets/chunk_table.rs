//! Fuzz target `chunk_table`: see `romlib_fuzz_harness::chunk_table`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::chunk_table(data));
