//! Fuzz target `http_response`: see `romlib_fuzz_harness::http_response`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::http_response(data));
