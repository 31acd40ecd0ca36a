//! Packet decoding of every link type from arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpaudit::capture::LinkType;
use smtpaudit::decode::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let link = match sel % 10 {
        0 => LinkType::NULL,
        1 => LinkType::ETHERNET,
        2 => LinkType::RAW,
        3 => LinkType::LOOP,
        4 => LinkType::LINUX_SLL,
        5 => LinkType::LINUX_SLL2,
        6 => LinkType::IPV4,
        7 => LinkType::IPV6,
        8 => LinkType::RAW_BSD,
        _ => LinkType(u32::from(sel)),
    };
    let mut d = Decoder::new();
    let orig = frame.len() as u32 + u32::from(sel >> 4);
    if let Some(seg) = d.decode(link, frame, orig) {
        assert!(seg.payload.len() <= frame.len());
    }
});
