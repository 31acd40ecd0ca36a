//! Capture reader: pcap, pcapng and gzip from arbitrary bytes must never panic or loop, and
//! must read alike whether the bytes come all at once or a few per read.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtpaudit_fuzz::capture_reader(data));
