//! cargo fuzz run rpc_params
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xiebao_fuzz::rpc_params(data));
