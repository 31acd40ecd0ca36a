//! The SMTP session over arbitrary two-way dialogs (script format: `src/lib.rs`), with the
//! STARTTLS hand-over to a TLS session done the way the analyzer does it.
//!
//! Besides "no panic", it checks that chunking does not matter: the same script fed once as
//! given and once one byte per call must give the same record and findings. Flow tables
//! deliver whatever segment sizes the wire had, so any difference is a bug.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtpaudit_fuzz::smtp_session(data));
