//! Fuzz target `dat`: see `romlib_fuzz_harness::dat`.
#![no_main]
extern crate romlib_fuzz; // links the allocation cap (fuzz/src/lib.rs)
libfuzzer_sys::fuzz_target!(|data: &[u8]| romlib_fuzz_harness::dat(data));
