//! The SMTP session over arbitrary two-way dialogs (script format: `src/lib.rs`), with the
//! STARTTLS hand-off to a TLS session done the way the analyzer does it.
//!
//! Besides "no panic", it checks that chunking does not matter: the same script fed once as
//! given and once one byte per call must give the same record and findings. Flow tables
//! deliver whatever segment sizes the wire had, so any difference is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpaudit::flow::Direction;
use smtpaudit::proto::smtp::{Feed, SmtpSession};
use smtpaudit::proto::tls::{EndKind, TlsContext, TlsSession};
use smtpaudit_fuzz::{Op, Script, meta};

fuzz_target!(|data: &[u8]| {
    let whole = run(data, false);
    let split = run(data, true);
    assert_eq!(whole, split, "result depends on chunking");
});

struct Dialog {
    smtp: SmtpSession,
    tls: Option<TlsSession>,
    upgraded: [bool; 2],
}

impl Dialog {
    fn data(&mut self, dir: Direction, bytes: &[u8], n: u64) {
        let m = meta(n);
        if self.upgraded[dir.index()] {
            if let Some(tls) = self.tls.as_mut() {
                tls.feed(dir, bytes, m);
            }
            return;
        }
        if let Feed::Upgrade { offset } = self.smtp.feed(dir, bytes, m) {
            assert!(offset <= bytes.len(), "upgrade offset past the chunk");
            self.upgraded[dir.index()] = true;
            let banner_host = self.smtp.banner_host().map(str::to_string);
            let tls = self.tls.get_or_insert_with(|| {
                TlsSession::new(TlsContext {
                    starttls: true,
                    banner_host,
                })
            });
            if let Some(rest) = bytes.get(offset..).filter(|r| !r.is_empty()) {
                tls.feed(dir, rest, m);
            }
        }
    }
}

/// Runs the script and renders everything the session reports, secrets revealed and not.
fn run(data: &[u8], byte_at_a_time: bool) -> String {
    let mut d = Dialog {
        smtp: SmtpSession::new(),
        tls: None,
        upgraded: [false; 2],
    };
    for (n, op) in Script::new(data).enumerate() {
        let n = n as u64;
        match op {
            Op::Data(dir, bytes) if byte_at_a_time => {
                for b in bytes.chunks(1) {
                    d.data(dir, b, n);
                }
            }
            Op::Data(dir, bytes) => d.data(dir, bytes, n),
            Op::Gap(dir, len) => {
                if d.upgraded[dir.index()] {
                    if let Some(tls) = d.tls.as_mut() {
                        tls.gap(dir, len, meta(n));
                    }
                } else {
                    d.smtp.gap(dir, len, meta(n));
                }
            }
            Op::End(dir, reset) => {
                d.smtp.end(dir, meta(n));
                if let Some(tls) = d.tls.as_mut() {
                    let kind = if reset { EndKind::Reset } else { EndKind::Fin };
                    tls.end(dir, kind, meta(n));
                }
            }
        }
    }
    let mut out = String::new();
    for reveal in [false, true] {
        out += &to_json(&d.smtp.record(reveal));
        out += &to_json(&d.smtp.findings(reveal));
    }
    if let Some(tls) = d.tls.as_ref() {
        out += &to_json(&tls.record());
        out += &to_json(&tls.findings());
    }
    out
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_string(v) {
        Ok(s) => s,
        Err(e) => panic!("report model does not serialise: {e}"),
    }
}
