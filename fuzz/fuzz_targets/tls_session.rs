//! The TLS session over arbitrary two-way record streams (script format: `src/lib.rs`),
//! implicit TLS or after STARTTLS (first byte of the input).
//!
//! Besides "no panic", it checks that chunking does not matter: the same script fed once as
//! given and once one byte per call must give the same record and findings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpaudit::proto::tls::{EndKind, TlsContext, TlsSession};
use smtpaudit_fuzz::{Op, Script, meta};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, script)) = data.split_first() else {
        return;
    };
    let whole = run(mode, script, false);
    let split = run(mode, script, true);
    assert_eq!(whole, split, "result depends on chunking");
});

fn run(mode: u8, script: &[u8], byte_at_a_time: bool) -> String {
    let ctx = TlsContext {
        starttls: mode & 1 != 0,
        banner_host: (mode & 2 != 0).then(|| "mx.example.org".to_string()),
    };
    let mut s = TlsSession::new(ctx).follow_to_close(mode & 4 != 0);
    for (n, op) in Script::new(script).enumerate() {
        let m = meta(n as u64);
        match op {
            // Interest::Done only allows the caller to stop; feeding on must stay harmless.
            Op::Data(dir, bytes) if byte_at_a_time => {
                for b in bytes.chunks(1) {
                    s.feed(dir, b, m);
                }
            }
            Op::Data(dir, bytes) => {
                s.feed(dir, bytes, m);
            }
            Op::Gap(dir, len) => s.gap(dir, len, m),
            Op::End(dir, reset) => {
                let kind = if reset { EndKind::Reset } else { EndKind::Fin };
                s.end(dir, kind, m);
            }
        }
    }
    let _ = (s.client_hello_seen(), s.server_hello_seen(), s.version());
    let mut out = to_json(&s.record());
    out += &to_json(&s.findings());
    out += &format!("{:?}", s.outcome());
    out
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_string(v) {
        Ok(s) => s,
        Err(e) => panic!("report model does not serialise: {e}"),
    }
}
