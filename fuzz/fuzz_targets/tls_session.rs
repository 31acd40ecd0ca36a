//! The TLS session over arbitrary two-way record streams (script format: `src/lib.rs`),
//! implicit TLS or after STARTTLS (first byte of the input).
//!
//! Besides "no panic", it checks that chunking does not matter: the same script fed once as
//! given and once one byte per call must give the same record and findings.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtpaudit_fuzz::tls_session(data));
