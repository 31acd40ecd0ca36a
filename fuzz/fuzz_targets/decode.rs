//! Packet decoding of every link type from arbitrary bytes (first byte: link type).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtpaudit_fuzz::decode(data));
