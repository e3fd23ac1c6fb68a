//! cargo fuzz run block
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xiebao_fuzz::block(data));
