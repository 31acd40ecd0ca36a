//! The whole pipeline, capture bytes to every report format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpaudit::cli::Config;
use smtpaudit::pipeline;
use smtpaudit::report::{Format, SinkOptions, make_sink};

fuzz_target!(|data: &[u8]| {
    let cfg = Config::default();
    for format in [Format::Json, Format::Ndjson, Format::Ecs, Format::Text] {
        let mut sink = make_sink(format, Box::new(std::io::sink()), SinkOptions::default());
        let _ = pipeline::run_bytes(&cfg, "fuzz", data.to_vec(), sink.as_mut());
    }
});
