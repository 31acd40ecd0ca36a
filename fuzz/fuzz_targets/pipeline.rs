//! The whole pipeline, capture bytes to every report format.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtpaudit_fuzz::pipeline(data));
