//! cargo fuzz run relay_batch
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xiebao_fuzz::relay_batch(data));
