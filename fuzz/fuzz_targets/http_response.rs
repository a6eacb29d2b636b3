//! Fuzz target `http_response`: see `romlib_fuzz_harness::http_response`.
#![no_main]
extern crate romlib_fuzz; // links the allocation cap (fuzz/src/lib.rs)
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::http_response(data));
