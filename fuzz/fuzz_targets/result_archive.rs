//! cargo fuzz run result_archive
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xiebao_fuzz::result_archive(data));
