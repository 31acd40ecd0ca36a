//! The TLS session over arbitrary record streams in both directions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpaudit::flow::{Direction, EventMeta};
use smtpaudit::proto::tls::{EndKind, TlsContext, TlsSession};

fuzz_target!(|data: &[u8]| {
    let mut s = TlsSession::new(TlsContext::default());
    let mut rest = data;
    let mut frame = 0;
    while let Some((&ctl, tail)) = rest.split_first() {
        frame += 1;
        let dir = if ctl & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
        let len = usize::from(ctl >> 1).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        let meta = EventMeta { frame, ..Default::default() };
        match ctl {
            0xff => s.gap(dir, 5, meta),
            0xfe => s.end(dir, EndKind::Reset, meta),
            _ => {
                let _ = s.feed(dir, chunk, meta);
            }
        }
        rest = next;
    }
    s.end(Direction::ToServer, EndKind::Fin, EventMeta::default());
    let _ = s.record();
    let _ = s.findings();
});
