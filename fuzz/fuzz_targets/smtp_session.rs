//! The SMTP session over arbitrary dialogs: the first byte of each chunk picks the direction
//! and the chunking, so splits land everywhere.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpaudit::flow::{Direction, EventMeta};
use smtpaudit::proto::smtp::SmtpSession;

fuzz_target!(|data: &[u8]| {
    let mut s = SmtpSession::new();
    let mut rest = data;
    let mut frame = 0;
    while let Some((&ctl, tail)) = rest.split_first() {
        frame += 1;
        let dir = if ctl & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
        let len = usize::from(ctl >> 1).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        let meta = EventMeta { frame, ..Default::default() };
        if ctl == 0xff {
            s.gap(dir, 17, meta);
        } else {
            let _ = s.feed(dir, chunk, meta);
        }
        rest = next;
    }
    s.end(Direction::ToServer, EventMeta::default());
    let _ = s.record(false);
    let _ = s.findings(false);
    let _ = s.record(true);
});
