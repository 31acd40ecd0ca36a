//! Capture reader: pcap, pcapng and gzip from arbitrary bytes must never panic or loop, and
//! the streaming and in-place (shared file windows) backends must read them alike.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtpaudit_fuzz::capture_reader(data));
