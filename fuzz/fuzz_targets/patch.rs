#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stackdeploy::fuzzing::patch(data));
