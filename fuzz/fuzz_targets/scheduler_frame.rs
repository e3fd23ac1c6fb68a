//! cargo fuzz run scheduler_frame
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xiebao_fuzz::scheduler_frame(data));
