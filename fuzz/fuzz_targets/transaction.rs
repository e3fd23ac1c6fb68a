//! cargo fuzz run transaction
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xiebao_fuzz::transaction(data));
