//! One TCP connection through the analyzer as the flow table drives it (classification by
//! ports and first bytes, role correction, SMTP, the STARTTLS hand-off, TLS, findings), then
//! into every report sink. Needs no capture reader, decoder or flow table, so it reaches the
//! analysis with far fewer wasted bytes than the `pipeline` target.
//!
//! Input: two header bytes, then a script (`src/lib.rs`).
//!
//! ```text
//! byte 0  bits 0-2 server port (25 465 587 2525 443 10025 80 40000)
//!         bits 3-4 how the table set roles (syn, syn-ack, port, first packet)
//!         bit 5    --reveal-secrets      bit 6  IPv6      bit 7  --posture-findings
//! byte 1  bits 0-2 close reason          bits 3-4 copies of the flow (1-3; brute force)
//! ```
//!
//! Checks: no panic, the table contract kept (no data after `Interest::Done`), and every
//! sink writes well-formed output (JSON parses, NDJSON/ECS one JSON value per line, text is
//! UTF-8).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtpaudit_fuzz::flow_analysis(data));
