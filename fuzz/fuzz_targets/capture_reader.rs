//! Capture reader: pcap, pcapng and gzip from arbitrary bytes must never panic or loop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpaudit::capture::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) =
        CaptureReader::from_read("fuzz".into(), Box::new(std::io::Cursor::new(data.to_vec())))
    else {
        return;
    };
    // Each frame consumes at least one byte, so this terminates; the bound is a safety net.
    for _ in 0..100_000 {
        match reader.next_frame() {
            Ok(Some(frame)) => {
                assert!(frame.number > 0);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = reader.take_warnings();
});
