//! cargo fuzz run order_json
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xiebao_fuzz::order_json(data));
