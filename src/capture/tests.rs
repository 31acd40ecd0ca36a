//! Reader tests over captures written byte by byte here, so each format detail is visible.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Cursor, Read, Write};

use super::*;

// ---- classic pcap ---------------------------------------------------------------------------

struct Rec<'a> {
    secs: u32,
    frac: u32,
    data: &'a [u8],
    orig: u32,
}

fn rec(secs: u32, frac: u32, data: &[u8]) -> Rec<'_> {
    Rec {
        secs,
        frac,
        data,
        orig: data.len() as u32,
    }
}

fn put32(v: &mut Vec<u8>, x: u32, be: bool) {
    v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
}

fn put16(v: &mut Vec<u8>, x: u16, be: bool) {
    v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
}

fn pcap(be: bool, nanos: bool, link: u32, snaplen: u32, recs: &[Rec<'_>]) -> Vec<u8> {
    let mut v = Vec::new();
    put32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }, be);
    put16(&mut v, 2, be);
    put16(&mut v, 4, be);
    put32(&mut v, 0, be); // thiszone
    put32(&mut v, 0, be); // sigfigs
    put32(&mut v, snaplen, be);
    put32(&mut v, link, be);
    for r in recs {
        put32(&mut v, r.secs, be);
        put32(&mut v, r.frac, be);
        put32(&mut v, r.data.len() as u32, be);
        put32(&mut v, r.orig, be);
        v.extend_from_slice(r.data);
    }
    v
}

// ---- pcapng ---------------------------------------------------------------------------------

/// Any block: type, total length, body padded to 32 bits, total length again.
fn block(be: bool, btype: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut v = Vec::new();
    put32(&mut v, btype, be);
    put32(&mut v, total, be);
    v.extend_from_slice(body);
    v.resize(8 + padded, 0);
    put32(&mut v, total, be);
    v
}

fn shb(be: bool) -> Vec<u8> {
    let mut b = Vec::new();
    put32(&mut b, 0x1A2B_3C4D, be);
    put16(&mut b, 1, be);
    put16(&mut b, 0, be);
    b.extend_from_slice(&[0xff; 8]); // section length unknown (-1)
    block(be, 0x0A0D_0D0A, &b)
}

fn option(v: &mut Vec<u8>, code: u16, value: &[u8], be: bool) {
    put16(v, code, be);
    put16(v, value.len() as u16, be);
    v.extend_from_slice(value);
    v.resize(v.len().div_ceil(4) * 4, 0);
}

fn idb(be: bool, link: u16, snaplen: u32, tsresol: Option<u8>, tsoffset: Option<i64>) -> Vec<u8> {
    let mut b = Vec::new();
    put16(&mut b, link, be);
    put16(&mut b, 0, be);
    put32(&mut b, snaplen, be);
    if tsresol.is_some() || tsoffset.is_some() {
        if let Some(r) = tsresol {
            option(&mut b, 9, &[r], be);
        }
        if let Some(o) = tsoffset {
            let bytes = if be { o.to_be_bytes() } else { o.to_le_bytes() };
            option(&mut b, 14, &bytes, be);
        }
        option(&mut b, 0, &[], be); // opt_endofopt
    }
    block(be, 1, &b)
}

fn epb(be: bool, if_id: u32, ts: u64, data: &[u8], orig: u32) -> Vec<u8> {
    let mut b = Vec::new();
    put32(&mut b, if_id, be);
    put32(&mut b, (ts >> 32) as u32, be);
    put32(&mut b, ts as u32, be);
    put32(&mut b, data.len() as u32, be);
    put32(&mut b, orig, be);
    b.extend_from_slice(data);
    block(be, 6, &b)
}

fn spb(be: bool, orig: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put32(&mut b, orig, be);
    b.extend_from_slice(data);
    block(be, 3, &b)
}

/// Obsolete Packet Block (type 2).
fn opb(be: bool, if_id: u16, ts: u64, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put16(&mut b, if_id, be);
    put16(&mut b, 0, be); // drops
    put32(&mut b, (ts >> 32) as u32, be);
    put32(&mut b, ts as u32, be);
    put32(&mut b, data.len() as u32, be);
    put32(&mut b, data.len() as u32, be);
    b.extend_from_slice(data);
    block(be, 2, &b)
}

// ---- reading --------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct Got {
    number: u64,
    ts: Timestamp,
    link: LinkType,
    data: Vec<u8>,
    orig_len: u32,
}

struct Outcome {
    frames: Vec<Got>,
    error: Option<CaptureError>,
    reader: CaptureReader,
}

fn read_from(src: Box<dyn Read + Send>) -> Result<Outcome, CaptureError> {
    let mut reader = CaptureReader::from_read("test.cap".into(), src)?;
    let mut frames = Vec::new();
    let error = loop {
        match reader.next_frame() {
            Ok(Some(f)) => frames.push(Got {
                number: f.number,
                ts: f.ts,
                link: f.link_type,
                data: f.data.to_vec(),
                orig_len: f.orig_len,
            }),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    // Done is sticky, after a clean end and after an error alike.
    assert!(matches!(reader.next_frame(), Ok(None)));
    Ok(Outcome {
        frames,
        error,
        reader,
    })
}

fn read(bytes: &[u8]) -> Result<Outcome, CaptureError> {
    read_from(Box::new(Cursor::new(bytes.to_vec())))
}

fn read_ok(bytes: &[u8]) -> Outcome {
    let out = read(bytes).unwrap();
    assert!(out.error.is_none(), "{:?}", out.error);
    out
}

/// Hands out one byte per read, like a slow pipe: nothing may assume full reads or seeking.
struct Trickle(Cursor<Vec<u8>>);
impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

// ---- classic pcap tests ---------------------------------------------------------------------

#[test]
fn pcap_both_byte_orders_micro_and_nano() {
    for be in [false, true] {
        for nanos in [false, true] {
            let file = pcap(
                be,
                nanos,
                1,
                65535,
                &[
                    rec(1_700_000_000, 123_456, b"abc"),
                    rec(1_700_000_001, 7, b"defg"),
                ],
            );
            let out = read_ok(&file);
            let scale = if nanos { 1 } else { 1000 };
            assert_eq!(out.reader.format(), CaptureFormat::Pcap);
            assert_eq!(
                out.frames,
                [
                    Got {
                        number: 1,
                        ts: Timestamp::new(1_700_000_000, 123_456 * scale),
                        link: LinkType::ETHERNET,
                        data: b"abc".to_vec(),
                        orig_len: 3
                    },
                    Got {
                        number: 2,
                        ts: Timestamp::new(1_700_000_001, 7 * scale),
                        link: LinkType::ETHERNET,
                        data: b"defg".to_vec(),
                        orig_len: 4
                    },
                ],
                "be={be} nanos={nanos}"
            );
            assert_eq!(out.reader.bytes_read(), file.len() as u64);
            assert_eq!(out.reader.input_position(), file.len() as u64);
        }
    }
}

#[test]
fn pcap_link_type_ignores_fcs_bits() {
    // Upper bits: FCS present, 4 bytes (draft-ietf-opsawg-pcap section 4).
    let file = pcap(false, false, 0x1400_0000 | 113, 65535, &[rec(1, 0, b"x")]);
    let out = read_ok(&file);
    assert_eq!(out.frames[0].link, LinkType::LINUX_SLL);
    assert_eq!(out.reader.link_types(), [LinkType::LINUX_SLL]);
}

#[test]
fn pcap_snapped_packet_keeps_orig_len() {
    let mut r = rec(1, 0, b"abcd");
    r.orig = 1500;
    let out = read_ok(&pcap(false, false, 1, 4, &[r]));
    assert_eq!(out.frames[0].data, b"abcd");
    assert_eq!(out.frames[0].orig_len, 1500);
}

#[test]
fn pcap_from_a_trickling_stream() {
    let file = pcap(
        true,
        false,
        1,
        65535,
        &[rec(1, 0, b"abc"), rec(2, 0, b"de")],
    );
    let out = read_from(Box::new(Trickle(Cursor::new(file.clone())))).unwrap();
    assert!(out.error.is_none());
    assert_eq!(out.frames.len(), 2);
    assert_eq!(out.frames[1].data, b"de");
    assert_eq!(out.reader.bytes_read(), file.len() as u64);
}

#[test]
fn pcap_packet_larger_than_the_initial_buffer() {
    let big = vec![0x5a; MAX_RECORD_CAPLEN as usize];
    assert!(big.len() + 16 > INITIAL_BUFFER);
    let file = pcap(
        false,
        false,
        1,
        MAX_RECORD_CAPLEN,
        &[rec(1, 0, b"a"), rec(2, 0, &big), rec(3, 0, b"c")],
    );
    let out = read_ok(&file);
    assert_eq!(out.frames.len(), 3);
    assert_eq!(out.frames[1].data, big);
    assert_eq!(out.frames[2].data, b"c");
}

#[test]
fn pcap_absurd_caplen_is_corruption_after_the_good_packets() {
    let mut file = pcap(
        false,
        false,
        1,
        65535,
        &[rec(1, 0, b"abc"), rec(2, 0, b"de")],
    );
    let damaged_at = file.len() as u64;
    // A record header claiming 3.9 GB, as in the corpus' damaged capture.
    put32(&mut file, 3, false);
    put32(&mut file, 0, false);
    put32(&mut file, 3_925_868_813, false);
    put32(&mut file, 60, false);
    file.extend_from_slice(&[0u8; 64]);
    let out = read(&file).unwrap();
    assert_eq!(out.frames.len(), 2);
    match out.error {
        Some(CaptureError::Corrupt { offset, what, .. }) => {
            assert_eq!(offset, damaged_at);
            assert!(what.starts_with("corrupt packet record"), "{what}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out.reader.bytes_read(), damaged_at);
}

#[test]
fn pcap_caplen_far_above_snaplen_is_corruption() {
    let big = vec![0u8; 100_000];
    let out = read(&pcap(false, false, 1, 96, &[rec(1, 0, &big)])).unwrap();
    assert!(out.frames.is_empty());
    assert!(matches!(
        out.error,
        Some(CaptureError::Corrupt { offset: 24, .. })
    ));
}

#[test]
fn pcap_last_packet_cut_short() {
    let file = pcap(
        false,
        false,
        1,
        65535,
        &[rec(1, 0, b"abc"), rec(2, 0, b"de"), rec(3, 0, &[9u8; 100])],
    );
    let third_at = (24 + 16 + 3 + 16 + 2) as u64;
    for cut in [file.len() - 1, third_at as usize + 10] {
        let out = read(&file[..cut]).unwrap();
        assert_eq!(out.frames.len(), 2, "cut at {cut}");
        match out.error {
            Some(CaptureError::Corrupt { offset, what, .. }) => {
                assert_eq!(offset, third_at);
                assert_eq!(what, "truncated packet record");
            }
            other => panic!("{other:?}"),
        }
    }
}

// ---- detection and header errors ------------------------------------------------------------

#[test]
fn empty_garbage_and_truncated_headers() {
    assert!(matches!(read(b""), Err(CaptureError::Empty { .. })));
    let e = read(b"hello, this is not a capture").err().unwrap();
    assert!(matches!(e, CaptureError::NotACapture { .. }));
    assert_eq!(e.to_string(), "test.cap: not a pcap or pcapng file");
    // Two bytes that are not the start of any magic.
    assert!(matches!(read(b"hi"), Err(CaptureError::NotACapture { .. })));

    let file = pcap(false, false, 1, 65535, &[]);
    for n in [2, 4, 10, 23] {
        assert!(
            matches!(read(&file[..n]), Err(CaptureError::TruncatedHeader { .. })),
            "pcap cut to {n}"
        );
    }
    // A header and no packets is a valid, empty capture.
    let out = read_ok(&file);
    assert!(out.frames.is_empty());
    assert_eq!(out.reader.bytes_read(), 24);

    let ng = shb(false);
    for n in [3, 4, 11, 12, ng.len() - 1] {
        assert!(
            matches!(read(&ng[..n]), Err(CaptureError::TruncatedHeader { .. })),
            "pcapng cut to {n}"
        );
    }
}

#[test]
fn gzip_is_detected_by_magic() {
    let file = pcap(false, true, 101, 65535, &[rec(5, 1, b"\x45abc")]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&file).unwrap();
    let gz = enc.finish().unwrap();
    let out = read_ok(&gz);
    assert_eq!(out.frames.len(), 1);
    assert_eq!(out.frames[0].link, LinkType::RAW);
    assert_eq!(out.reader.bytes_read(), file.len() as u64);
    assert_eq!(out.reader.input_position(), gz.len() as u64);

    // gzip of nothing is an empty capture; gzip of text is not a capture.
    let empty = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default())
        .finish()
        .unwrap();
    assert!(matches!(read(&empty), Err(CaptureError::Empty { .. })));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"just text").unwrap();
    let text = enc.finish().unwrap();
    let e = read(&text).err().unwrap();
    assert!(matches!(e, CaptureError::NotACapture { gzip: true, .. }));
    assert_eq!(
        e.to_string(),
        "test.cap: not a pcap or pcapng file (inside gzip)"
    );
}

#[test]
fn gzip_cut_short_is_an_io_error_after_the_readable_packets() {
    let recs: Vec<Vec<u8>> = (0..2000u32).map(|i| i.to_le_bytes().repeat(50)).collect();
    let recs: Vec<Rec<'_>> = recs.iter().map(|d| rec(1, 0, d)).collect();
    let file = pcap(false, false, 1, 65535, &recs);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&file).unwrap();
    let gz = enc.finish().unwrap();
    let out = read(&gz[..gz.len() * 3 / 4]).unwrap();
    assert!(!out.frames.is_empty() && out.frames.len() < 2000);
    let e = out.error.expect("an error for the cut gzip stream");
    // Packets are records of 16 + 200 bytes after the 24-byte header; the error points at the
    // first one the decompressed stream does not hold whole.
    let at = 24 + out.frames.len() as u64 * 216;
    match &e {
        CaptureError::Gzip { offset, what, .. } => {
            assert_eq!(*offset, at);
            assert_eq!(what, "truncated gzip data");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        e.to_string(),
        format!("test.cap: truncated gzip data at byte {at} of the decompressed capture")
    );
    // Cut inside the gzip header: nothing of the capture could be read.
    assert!(matches!(
        read(&gz[..5]),
        Err(CaptureError::Gzip { offset: 0, .. })
    ));
    // A damaged checksum is found after the last packet.
    let mut bad = gz.clone();
    let n = bad.len();
    bad[n - 6] ^= 1;
    let out = read(&bad).unwrap();
    assert_eq!(out.frames.len(), 2000);
    match out.error {
        Some(CaptureError::Gzip { offset, what, .. }) => {
            assert_eq!(offset, file.len() as u64);
            assert!(what.starts_with("corrupt gzip data ("), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

// ---- pcapng tests ---------------------------------------------------------------------------

#[test]
fn pcapng_two_sections_two_interfaces_and_resolutions() {
    let mut f = shb(false);
    // Interface 0: Ethernet, default microseconds. Interface 1: raw IP, nanoseconds.
    f.extend(idb(false, 1, 65535, None, None));
    f.extend(idb(false, 101, 65535, Some(9), None));
    f.extend(epb(false, 0, 1_000_000_500_000, b"eth", 3)); // 1_000_000.5 s
    f.extend(epb(false, 1, 2_000_000_000_000_000_123, b"raw", 3));
    // A second section, big-endian: interface ids restart, and interface 0 is now SLL2 with
    // 2^-10 resolution and a 1000 s offset.
    f.extend(shb(true));
    f.extend(idb(true, 276, 65535, Some(0x80 | 10), Some(1000)));
    f.extend(epb(true, 0, 1536, b"sll2", 4));
    let out = read_ok(&f);
    assert_eq!(out.reader.format(), CaptureFormat::Pcapng);
    let got: Vec<_> = out
        .frames
        .iter()
        .map(|g| (g.number, g.link, g.ts, g.data.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            (
                1,
                LinkType::ETHERNET,
                Timestamp::new(1_000_000, 500_000_000),
                &b"eth"[..]
            ),
            (
                2,
                LinkType::RAW,
                Timestamp::new(2_000_000_000, 123),
                &b"raw"[..]
            ),
            (
                3,
                LinkType::LINUX_SLL2,
                Timestamp::new(1001, 500_000_000),
                &b"sll2"[..]
            ),
        ]
    );
    assert_eq!(out.reader.bytes_read(), f.len() as u64);
    assert_eq!(
        out.reader.link_types(),
        [LinkType::ETHERNET, LinkType::RAW, LinkType::LINUX_SLL2]
    );
}

#[test]
fn pcapng_simple_obsolete_and_unknown_blocks() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 4, None, None));
    f.extend(epb(false, 0, 5_000_000, b"ab", 2));
    // SPB: snap length 4 cuts the 6-byte packet; the SPB has no timestamp of its own.
    f.extend(spb(false, 6, b"abcdef"));
    // SPB whose 3-byte packet is padded to 4 in the block: padding is not data.
    f.extend(spb(false, 3, b"xyz"));
    // A block type nobody defined, then a custom block: both skipped.
    f.extend(block(false, 0x0000_7777, b"whatever"));
    f.extend(block(false, 0x0000_0BAD, &[0, 0, 0, 0, 1, 2, 3, 4]));
    f.extend(opb(false, 0, 7_000_000, b"old"));
    let mut out = read_ok(&f);
    let got: Vec<_> = out
        .frames
        .iter()
        .map(|g| (g.number, g.ts.secs, g.data.as_slice(), g.orig_len))
        .collect();
    assert_eq!(
        got,
        [
            (1, 5, &b"ab"[..], 2),
            (2, 5, &b"abcd"[..], 6),
            (3, 5, &b"xyz"[..], 3),
            (4, 7, &b"old"[..], 3),
        ]
    );
    assert!(out.reader.take_warnings().is_empty());
}

#[test]
fn pcapng_packet_for_a_missing_interface_is_skipped_with_a_warning() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(epb(false, 3, 0, b"lost", 4));
    f.extend(epb(false, 3, 0, b"lost", 4));
    f.extend(epb(false, 0, 0, b"kept", 4));
    let mut out = read_ok(&f);
    assert_eq!(out.frames.len(), 1);
    assert_eq!(out.frames[0].number, 1);
    let w = out.reader.take_warnings();
    assert_eq!(
        w,
        [
            "test.cap: 2 pcapng packets skipped (the first at byte 48): they refer to interface 3, \
          which section 1 does not describe"
        ]
    );
}

#[test]
fn pcapng_block_larger_than_the_initial_buffer() {
    let big = vec![0xa5; INITIAL_BUFFER + 50_000];
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(epb(false, 0, 0, b"a", 1));
    f.extend(epb(false, 0, 0, &big, big.len() as u32));
    f.extend(epb(false, 0, 0, b"c", 1));
    let out = read_ok(&f);
    assert_eq!(out.frames.len(), 3);
    assert_eq!(out.frames[1].data, big);
    // Through a trickling stream too: the buffer grows while the block arrives.
    let out = read_from(Box::new(Trickle(Cursor::new(f)))).unwrap();
    assert!(out.error.is_none());
    assert_eq!(out.frames[1].data.len(), big.len());
}

#[test]
fn pcapng_corrupt_block_lengths() {
    let mut head = shb(false);
    head.extend(idb(false, 1, 0, None, None));
    head.extend(epb(false, 0, 0, b"fine", 4));
    let at = head.len() as u64;

    // Not a multiple of 4.
    let mut f = head.clone();
    put32(&mut f, 6, false);
    put32(&mut f, 45, false);
    f.extend_from_slice(&[0u8; 60]);
    // Larger than the cap: reported before any attempt to buffer it.
    let mut g = head.clone();
    put32(&mut g, 6, false);
    put32(&mut g, 0x7fff_fff0, false);
    g.extend_from_slice(&[0u8; 60]);
    // Trailing length disagrees.
    let mut h = head.clone();
    let mut bad = epb(false, 0, 0, b"oops", 4);
    let n = bad.len();
    bad[n - 4] ^= 0x10;
    h.extend(bad);
    for file in [f, g, h] {
        let out = read(&file).unwrap();
        assert_eq!(out.frames.len(), 1);
        match out.error {
            Some(CaptureError::Corrupt { offset, what, .. }) => {
                assert_eq!(offset, at);
                assert!(what.starts_with("corrupt block length"), "{what}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn pcapng_captured_length_past_the_block_is_corruption() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    let at = f.len() as u64;
    let mut b = epb(false, 0, 0, b"abcd", 4);
    // Captured length field (offset 20) says 400 in a 36-byte block.
    b[20..24].copy_from_slice(&400u32.to_le_bytes());
    f.extend(b);
    f.extend(epb(false, 0, 0, b"next", 4));
    let out = read(&f).unwrap();
    assert!(out.frames.is_empty());
    match out.error {
        Some(CaptureError::Corrupt { offset, what, .. }) => {
            assert_eq!(offset, at);
            assert_eq!(
                what,
                "corrupt enhanced packet block (captured length 400 exceeds the block length 36)"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pcapng_captured_length_short_of_the_block_is_corruption() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(epb(false, 0, 0, b"fine", 4));
    let at = f.len() as u64;
    // 12 bytes of packet data; a captured length of 0 leaves them where options belong, and
    // "t-" read as an option length runs past the block.
    let mut b = epb(false, 0, 0, b"not-options!", 12);
    b[20..24].copy_from_slice(&0u32.to_le_bytes());
    f.extend(b);
    f.extend(epb(false, 0, 0, b"next", 4));
    let out = read(&f).unwrap();
    assert_eq!(out.frames.len(), 1);
    match out.error {
        Some(CaptureError::Corrupt { offset, what, .. }) => {
            assert_eq!(offset, at);
            assert_eq!(
                what,
                "corrupt enhanced packet block (captured length 0 leaves 12 bytes that are not options)"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn section_header_byte_order_magic() {
    let good = shb(false);
    let mut junk = good.clone();
    junk[8..12].copy_from_slice(&[0x44, 0x33, 0x22, 0x11]);
    let e = read(&junk).err().unwrap();
    assert_eq!(
        e.to_string(),
        "test.cap: corrupt section header block (byte-order magic 44332211) at byte 0"
    );
    // Reversed: it reads as big-endian, and the length then makes no sense.
    let mut reversed = good.clone();
    reversed[8..12].reverse();
    let e = read(&reversed).err().unwrap();
    let len = u32::from_be_bytes(good[4..8].try_into().unwrap());
    assert_eq!(
        e.to_string(),
        format!(
            "test.cap: corrupt block length {len} (section header block, read big-endian as \
             its byte-order magic says) at byte 0"
        )
    );
}

#[test]
fn pcapng_last_block_cut_short() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(epb(false, 0, 0, b"one", 3));
    f.extend(epb(false, 0, 0, b"two", 3));
    let at = f.len() as u64;
    f.extend(epb(false, 0, 0, &[7u8; 200], 200));
    for cut in [f.len() - 1, at as usize + 5, at as usize + 40] {
        let out = read(&f[..cut]).unwrap();
        assert_eq!(out.frames.len(), 2, "cut at {cut}");
        match out.error {
            Some(CaptureError::Corrupt {
                offset, ref what, ..
            }) => {
                assert_eq!(offset, at);
                assert_eq!(what, "truncated pcapng block");
            }
            ref other => panic!("{other:?}"),
        }
        let msg = out.error.unwrap().to_string();
        assert_eq!(
            msg,
            format!("test.cap: truncated pcapng block at byte {at}")
        );
    }
}

#[test]
fn pcapng_bad_section_header() {
    let mut f = shb(false);
    f[8..12].copy_from_slice(b"nope");
    assert!(matches!(
        read(&f),
        Err(CaptureError::Corrupt { offset: 0, .. })
    ));
}

#[test]
fn open_reports_missing_files_and_sizes() {
    let e = CaptureReader::open("/nonexistent/x.pcap").err().unwrap();
    assert!(matches!(e, CaptureError::Open { .. }));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/x.pcap: cannot open")
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.pcap");
    let file = pcap(false, false, 1, 65535, &[rec(1, 0, b"abc")]);
    std::fs::write(&path, &file).unwrap();
    let mut r = CaptureReader::open(path.to_str().unwrap()).unwrap();
    assert_eq!(r.total_size(), Some(file.len() as u64));
    assert!(r.next_frame().unwrap().is_some());
    assert!(r.next_frame().unwrap().is_none());
    assert_eq!(r.bytes_read(), file.len() as u64);
    assert_eq!(r.path(), path.to_str().unwrap());
}

// ---- robustness -----------------------------------------------------------------------------

mod robustness {
    use super::*;
    use crate::decode::Decoder;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Valid captures of each layout to damage.
    fn seeds() -> Vec<Vec<u8>> {
        let frame = [
            0x45u8, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]
        .iter()
        .chain(&[0u8; 20])
        .copied()
        .collect::<Vec<u8>>();
        let mut ng = shb(false);
        ng.extend(idb(false, 101, 0, Some(9), Some(5)));
        ng.extend(epb(false, 0, 1, &frame, 40));
        ng.extend(spb(false, 40, &frame));
        ng.extend(shb(true));
        ng.extend(idb(true, 1, 64, Some(0x83), None));
        ng.extend(opb(true, 0, 9, &frame));
        ng.extend(block(true, 5, &[0u8; 16]));
        vec![
            pcap(
                false,
                false,
                101,
                65535,
                &[rec(1, 2, &frame), rec(3, 4, &frame)],
            ),
            pcap(
                true,
                true,
                0,
                96,
                &[rec(1, 2, &frame), rec(3, 4, &frame[..10])],
            ),
            ng,
        ]
    }

    fn read_and_decode(bytes: Vec<u8>) {
        let Ok(mut reader) = CaptureReader::from_read("fuzz".into(), Box::new(Cursor::new(bytes)))
        else {
            return;
        };
        let mut decoder = Decoder::new();
        let mut frames = 0u64;
        while let Ok(Some(f)) = reader.next_frame() {
            frames += 1;
            assert_eq!(f.number, frames);
            let _ = decoder.decode(f.link_type, f.data, f.orig_len);
        }
        assert!(matches!(reader.next_frame(), Ok(None)));
        let _ = reader.take_warnings();
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn damaged_captures_never_panic(
            which in 0usize..3,
            flips in vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let mut bytes = seeds().swap_remove(which);
            for (at, x) in flips {
                let n = bytes.len();
                if let Some(b) = bytes.get_mut(at % n) {
                    *b ^= x;
                }
            }
            bytes.truncate(cut % (bytes.len() + 1));
            read_and_decode(bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in vec(any::<u8>(), 0..400), magic in 0usize..4) {
            // Give most inputs a real magic so the block parsers see them.
            let magics: [&[u8]; 4] = [b"", &[0xd4, 0xc3, 0xb2, 0xa1], &[0x0a, 0x0d, 0x0d, 0x0a], &[0x1f, 0x8b]];
            let mut input = magics[magic].to_vec();
            input.append(&mut bytes);
            read_and_decode(input);
        }
    }
}

/// A frame of a classic pcap file lends out its chunk: holding the chunks (as the workers of
/// a sharded run do) keeps every frame's bytes as read, across refills and a grown buffer,
/// while the reader goes on.
#[test]
fn pcap_frames_held_by_their_chunk_stay_as_read() {
    let bodies: Vec<Vec<u8>> = (0..3000u32)
        .map(|i| {
            let len = if i == 1500 {
                MAX_RECORD_CAPLEN as usize
            } else {
                40 + (i % 300) as usize
            };
            (0..len).map(|j| (i as usize * 7 + j) as u8).collect()
        })
        .collect();
    let recs: Vec<Rec<'_>> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| rec(i as u32, 0, b))
        .collect();
    let file = pcap(false, false, 1, MAX_RECORD_CAPLEN, &recs);
    let mut reader =
        CaptureReader::from_read("test.cap".into(), Box::new(Cursor::new(file))).unwrap();
    let mut held = Vec::new();
    while let Some(f) = reader.next_frame().unwrap() {
        let shared = f.chunk.expect("a pcap frame lends its chunk");
        assert_eq!(
            &shared.chunk[shared.offset..shared.offset + f.data.len()],
            f.data
        );
        held.push((
            std::sync::Arc::clone(shared.chunk),
            shared.offset,
            f.data.len(),
        ));
    }
    assert_eq!(held.len(), bodies.len());
    for ((chunk, at, len), body) in held.iter().zip(&bodies) {
        assert_eq!(&chunk[*at..*at + *len], &body[..]);
    }
}

/// pcapng frames borrow pcap-parser's buffer: no chunk to hold.
#[test]
fn pcapng_frames_lend_no_chunk() {
    let mut file = shb(false);
    file.extend(idb(false, 1, 65535, None, None));
    file.extend(epb(false, 0, 1, b"abc", 3));
    let mut reader =
        CaptureReader::from_read("test.cap".into(), Box::new(Cursor::new(file))).unwrap();
    let f = reader.next_frame().unwrap().unwrap();
    assert_eq!(f.data, b"abc");
    assert!(f.chunk.is_none());
}
