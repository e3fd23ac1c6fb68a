//! cargo fuzz run task_params
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xiebao_fuzz::task_params(data));
