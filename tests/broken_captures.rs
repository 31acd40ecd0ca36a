//! Damaged captures made from the real fixtures, run through the binary: cut at every record
//! and block boundary and inside them, length fields damaged, magic numbers wrong, a pcapng
//! without its interface description, gzip cut short or holding garbage, random bytes, and
//! inputs that are not files at all.
//!
//! Every case states its documented outcome (docs/errors.md): the exit status, the exact line
//! on stderr, and the partial report: `captures[0].packets` is the number of whole packets
//! before the damage, `captures[0].warnings` names the damage with its byte offset, and the
//! flows are those of the undamaged capture cut at the damage (the same bytes up to the
//! damaged block, written as a file of their own). Expected figures come from walking the
//! structure of the damaged bytes with the small format walkers below, never from running
//! smtpaudit.
//!
//! Every run has a deadline (a hang is a failure, not a slow test); the cases run on a few
//! threads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A run that takes longer is taken to hang; the inputs are a few KiB.
const DEADLINE: Duration = Duration::from_secs(10);
const THREADS: usize = 4;

/// The name every damaged capture is given (each case runs in its own directory), so that
/// messages and flow records read the same in a case and in its reference run.
const NAME: &str = "damaged.cap";

/// pcap-parser's and libpcap's limit on one record's captured length, as the reader applies it.
const MAX_RECORD_CAPLEN: u32 = 256 * 1024;
const SNAPLEN_SLACK: u32 = 64 * 1024;
const MAX_BLOCK_LEN: usize = 64 * 1024 * 1024;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;

// ---- byte helpers ---------------------------------------------------------------------------

fn u32_at(b: &[u8], at: usize, be: bool) -> Option<u32> {
    let w: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    })
}

fn u16_at(b: &[u8], at: usize, be: bool) -> Option<u16> {
    let w: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if be {
        u16::from_be_bytes(w)
    } else {
        u16::from_le_bytes(w)
    })
}

/// `b` with the little-endian u32 at `at` replaced.
fn with_u32(b: &[u8], at: usize, v: u32) -> Vec<u8> {
    let mut b = b.to_vec();
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    b
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b).unwrap();
    enc.finish().unwrap()
}

/// Everything a gzip decoder yields before it stops, and why it stopped when that was not the
/// clean end of the stream.
fn gunzip_prefix(gz: &[u8]) -> (Vec<u8>, Option<std::io::Error>) {
    let mut dec = flate2::read::MultiGzDecoder::new(gz);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match dec.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// splitmix64: fixed seeds give the same "random" files on every run.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

// ---- the structure of the fixtures ----------------------------------------------------------

/// Where each record of a classic pcap starts, and its captured length (the fixtures are
/// little-endian with 16-byte record headers).
fn pcap_records(b: &[u8]) -> Vec<(usize, u32)> {
    let mut v = Vec::new();
    let mut at = 24;
    while at < b.len() {
        let caplen = u32_at(b, at + 8, false).unwrap();
        v.push((at, caplen));
        at += 16 + caplen as usize;
    }
    assert_eq!(at, b.len(), "fixture records end with the file");
    v
}

/// Where each pcapng block starts, its type and total length.
fn pcapng_blocks(b: &[u8]) -> Vec<(usize, u32, usize)> {
    let mut v = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let btype = u32_at(b, at, false).unwrap();
        let len = u32_at(b, at + 4, false).unwrap() as usize;
        v.push((at, btype, len));
        at += len;
    }
    assert_eq!(at, b.len(), "fixture blocks end with the file");
    v
}

// ---- what a reader must conclude from damaged bytes -----------------------------------------

/// Where reading stops.
#[derive(Clone, Debug, PartialEq)]
enum End {
    /// At the end of the input, on a boundary.
    Clean,
    /// A record or block starting at this offset is not all there.
    Truncated(u64),
    /// The record or block at this offset is damaged; the message says how.
    Corrupt(u64, String),
}

impl End {
    /// Offset where the undamaged part ends.
    fn stop(&self, len: usize) -> usize {
        match self {
            End::Clean => len,
            End::Truncated(at) | End::Corrupt(at, _) => *at as usize,
        }
    }
}

#[derive(Debug)]
struct Walk {
    packets: u64,
    end: End,
    /// Further warnings (pcapng packets whose interface is missing).
    extra: Vec<String>,
}

/// Classic pcap, after a file header that is whole and recognised: records follow each other;
/// a captured length beyond the limits is damage as soon as it is readable (12 bytes into the
/// record header), a record that the file does not hold whole is a truncation.
fn walk_pcap(b: &[u8]) -> Walk {
    let be = b.starts_with(&[0xa1, 0xb2]);
    let snaplen = u32_at(b, 16, be).unwrap();
    let mut packets = 0;
    let mut at = 24;
    let end = loop {
        let rest = b.len() - at;
        if rest == 0 {
            break End::Clean;
        }
        if let Some(caplen) = u32_at(b, at + 8, be) {
            if caplen > MAX_RECORD_CAPLEN
                || (snaplen != 0 && caplen > snaplen.saturating_add(SNAPLEN_SLACK))
            {
                break End::Corrupt(
                    at as u64,
                    format!(
                        "corrupt packet record (captured length {caplen}, snap length {snaplen})"
                    ),
                );
            }
            if rest >= 16 + caplen as usize {
                packets += 1;
                at += 16 + caplen as usize;
                continue;
            }
        }
        break End::Truncated(at as u64);
    };
    Walk {
        packets,
        end,
        extra: Vec::new(),
    }
}

fn block_name(btype: u32) -> String {
    match btype {
        SHB => "section header block".into(),
        IDB => "interface description block".into(),
        EPB => "enhanced packet block".into(),
        other => format!("block type {other:#x}"),
    }
}

/// Option list after an EPB's padded data (pcapng draft section 3.5).
fn options_ok(mut area: &[u8], be: bool) -> bool {
    while !area.is_empty() {
        let (Some(code), Some(len)) = (u16_at(area, 0, be), u16_at(area, 2, be)) else {
            return false;
        };
        if code == 0 {
            return true;
        }
        let next = 4 + usize::from(len).div_ceil(4) * 4;
        if next > area.len() {
            return false;
        }
        area = &area[next..];
    }
    true
}

/// pcapng from its first byte (the section header must have been accepted): each block's
/// total length must be sane, inside the input, and repeated at its end; an EPB's captured
/// length must fit its block and leave well-formed options; a packet whose interface was not
/// described is skipped and counted.
fn walk_pcapng(b: &[u8]) -> Walk {
    let mut be = false;
    let mut section = 0u32;
    let mut interfaces = 0u32;
    let mut packets = 0;
    let mut missing: Option<(u64, u32, u32, u64)> = None;
    let mut at = 0;
    let end = loop {
        let rest = &b[at..];
        if rest.is_empty() {
            break End::Clean;
        }
        let Some(raw_type) = u32_at(rest, 0, false) else {
            break End::Truncated(at as u64);
        };
        if raw_type == SHB {
            match rest.get(8..12) {
                None => break End::Truncated(at as u64),
                Some([0x4d, 0x3c, 0x2b, 0x1a]) => be = false,
                Some([0x1a, 0x2b, 0x3c, 0x4d]) => be = true,
                Some(bom) => {
                    break End::Corrupt(
                        at as u64,
                        format!(
                            "corrupt section header block (byte-order magic {})",
                            hex::encode(bom)
                        ),
                    );
                }
            }
        }
        let (Some(btype), Some(len)) = (u32_at(rest, 0, be), u32_at(rest, 4, be)) else {
            break End::Truncated(at as u64);
        };
        let len = len as usize;
        if len < 12 || len % 4 != 0 || len > MAX_BLOCK_LEN {
            let what = if btype == SHB {
                let order = if be { "big-endian" } else { "little-endian" };
                format!(
                    "corrupt block length {len} (section header block, read {order} as its \
                     byte-order magic says)"
                )
            } else {
                format!("corrupt block length {len} ({})", block_name(btype))
            };
            break End::Corrupt(at as u64, what);
        }
        if len > rest.len() {
            break End::Truncated(at as u64);
        }
        let trailer = u32_at(rest, len - 4, be).unwrap();
        if trailer != len as u32 {
            break End::Corrupt(
                at as u64,
                format!(
                    "corrupt block length {len} ({}; the copy at its end says {trailer})",
                    block_name(btype)
                ),
            );
        }
        match btype {
            SHB => {
                section += 1;
                interfaces = 0;
            }
            IDB => interfaces += 1,
            EPB => {
                let if_id = u32_at(rest, 8, be).unwrap();
                let caplen = u32_at(rest, 20, be).unwrap();
                if caplen as usize > len - 32 {
                    break End::Corrupt(
                        at as u64,
                        format!(
                            "corrupt enhanced packet block (captured length {caplen} exceeds \
                             the block length {len})"
                        ),
                    );
                }
                let padded_end = 28 + (caplen as usize).div_ceil(4) * 4;
                if !options_ok(&rest[padded_end..len - 4], be) {
                    break End::Corrupt(
                        at as u64,
                        format!(
                            "corrupt enhanced packet block (captured length {caplen} leaves \
                             {} bytes that are not options)",
                            len - 4 - padded_end
                        ),
                    );
                }
                if if_id < interfaces {
                    packets += 1;
                } else {
                    let m = missing.get_or_insert((at as u64, if_id, section, 0));
                    m.3 += 1;
                }
            }
            // Other blocks (statistics, name resolution) are skipped.
            _ => {}
        }
        at += len;
    };
    let extra = missing
        .map(|(first, if_id, section, n)| match n {
            1 => format!(
                "1 pcapng packet skipped (at byte {first}): it refers to interface {if_id}, \
                 which section {section} does not describe"
            ),
            n => format!(
                "{n} pcapng packets skipped (the first at byte {first}): they refer to \
                 interface {if_id}, which section {section} does not describe"
            ),
        })
        .into_iter()
        .collect();
    Walk {
        packets,
        end,
        extra,
    }
}

// ---- cases ----------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Msg {
    Exact(String),
    /// The rest comes from the operating system.
    Prefix(String),
}

impl Msg {
    fn matches(&self, got: &str) -> bool {
        match self {
            Msg::Exact(s) => got == s,
            Msg::Prefix(p) => got.starts_with(p.as_str()),
        }
    }
}

#[derive(Clone, Debug)]
enum Flows {
    /// The flows, findings and summary of this undamaged capture (run under the same name).
    SameAs(Vec<u8>),
    /// Only the number of flows (timestamps differ).
    Count(usize),
}

#[derive(Clone, Debug)]
enum Input {
    Bytes(Vec<u8>),
    Directory,
    Missing,
}

#[derive(Clone, Debug)]
struct Case {
    name: String,
    input: Input,
    /// Exit 2 with this one line; the report lists the capture with no format.
    fatal: Option<Msg>,
    /// Exit 0: these warnings, each on stderr and in `captures[0].warnings`.
    warnings: Vec<Msg>,
    format: Option<&'static str>,
    packets: u64,
    flows: Flows,
}

impl Case {
    fn fatal(name: impl Into<String>, input: Input, msg: Msg) -> Case {
        Case {
            name: name.into(),
            input,
            fatal: Some(msg),
            warnings: Vec::new(),
            format: None,
            packets: 0,
            flows: Flows::Count(0),
        }
    }
}

fn exact(s: impl Into<String>) -> Msg {
    Msg::Exact(s.into())
}

/// The case for damaged capture bytes whose header is accepted, from a walk over them.
fn walked(name: String, bytes: Vec<u8>, format: &'static str, walk: Walk) -> Case {
    let truncated = match format {
        "pcap" => "truncated packet record",
        _ => "truncated pcapng block",
    };
    let mut warnings = match &walk.end {
        End::Clean => Vec::new(),
        End::Truncated(at) => vec![exact(format!("{truncated} at byte {at}"))],
        End::Corrupt(at, what) => vec![exact(format!("{what} at byte {at}"))],
    };
    warnings.extend(walk.extra.iter().cloned().map(Msg::Exact));
    let reference = bytes[..walk.end.stop(bytes.len())].to_vec();
    Case {
        name,
        input: Input::Bytes(bytes),
        fatal: None,
        warnings,
        format: Some(format),
        packets: walk.packets,
        flows: Flows::SameAs(reference),
    }
}

fn pcap_case(name: String, bytes: Vec<u8>) -> Case {
    let walk = walk_pcap(&bytes);
    walked(name, bytes, "pcap", walk)
}

fn pcapng_case(name: String, bytes: Vec<u8>) -> Case {
    let walk = walk_pcapng(&bytes);
    walked(name, bytes, "pcapng", walk)
}

/// A capture cut inside its file header (pcap) or section header block (pcapng).
fn header_cut(name: String, bytes: &[u8], n: usize) -> Case {
    let msg = if n == 0 {
        "empty file".to_string()
    } else {
        format!("truncated file header (the file ends at byte {n})")
    };
    Case::fatal(name, Input::Bytes(bytes[..n].to_vec()), exact(msg))
}

/// A gzip file, possibly cut or damaged, holding a pcap: the outcome follows from what a gzip
/// decoder yields and why it stops.
fn gzip_case(name: String, gz: Vec<u8>) -> Case {
    let (plain, err) = gunzip_prefix(&gz);
    let gzip_msg = |at: usize| {
        let e = err.as_ref().unwrap();
        let what = match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "truncated gzip data".to_string(),
            _ => format!("corrupt gzip data ({e})"),
        };
        exact(format!("{what} at byte {at} of the decompressed capture"))
    };
    if plain.len() < 24 {
        let msg = match (&err, plain.len()) {
            (Some(_), _) => gzip_msg(0),
            (None, 0) => exact("empty file"),
            (None, n) => exact(format!("truncated file header (the file ends at byte {n})")),
        };
        return Case::fatal(name, Input::Bytes(gz), msg);
    }
    let walk = walk_pcap(&plain);
    let stop = walk.end.stop(plain.len());
    let warning = match (&walk.end, &err) {
        (End::Corrupt(at, what), _) => Some(exact(format!("{what} at byte {at}"))),
        (_, Some(_)) => Some(gzip_msg(stop)),
        (End::Truncated(at), None) => Some(exact(format!("truncated packet record at byte {at}"))),
        (End::Clean, None) => None,
    };
    Case {
        name,
        input: Input::Bytes(gz),
        fatal: None,
        warnings: warning.into_iter().collect(),
        format: Some("pcap"),
        packets: walk.packets,
        flows: Flows::SameAs(plain[..stop].to_vec()),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::fixtures().join(name)).expect("fixture")
}

const PCAP: &str = "smtp-plain-auth-plain.pcap";
const SLL2: &str = "smtp-plain-linux-any-sll2.pcap";
const PCAPNG: &str = "smtp-starttls-587-tls13.pcapng";
const GZ: &str = "smtp-plain-auth-plain.pcap.gz";

/// Cuts of a classic pcap: inside the file header, at every record boundary, and at five
/// places inside every record (its header, just after it, its data, its last byte).
fn pcap_truncations(fx: &str, cases: &mut Vec<Case>) {
    let b = fixture(fx);
    for n in [0, 1, 2, 3, 4, 12, 23] {
        cases.push(header_cut(format!("{fx} cut at {n} (file header)"), &b, n));
    }
    cases.push(pcap_case(
        format!("{fx} cut at 24 (no records)"),
        b[..24].to_vec(),
    ));
    for (i, &(at, caplen)) in pcap_records(&b).iter().enumerate() {
        let end = at + 16 + caplen as usize;
        let mut cuts = vec![
            (end, "boundary"),
            (at + 1, "record header"),
            (at + 12, "record header"),
            (at + 16, "no data"),
            (end - 1, "last byte"),
        ];
        if caplen > 1 {
            cuts.push((at + 16 + caplen as usize / 2, "packet data"));
        }
        for (cut, what) in cuts {
            let case = pcap_case(
                format!("{fx} cut at {cut} (record {}, {what})", i + 1),
                b[..cut].to_vec(),
            );
            // The walk and the structure agree on what was cut.
            assert_eq!(case.packets, i as u64 + u64::from(what == "boundary"));
            cases.push(case);
        }
    }
}

/// The same for pcapng: inside the section header, at every block boundary, inside every
/// other block.
fn pcapng_truncations(cases: &mut Vec<Case>) {
    let b = fixture(PCAPNG);
    let blocks = pcapng_blocks(&b);
    let shb_len = blocks[0].2;
    for n in [0, 1, 3, 4, 8, 11, 12, 100, shb_len - 1] {
        cases.push(header_cut(
            format!("{PCAPNG} cut at {n} (section header)"),
            &b,
            n,
        ));
    }
    let mut packets = 0u64;
    for &(at, btype, len) in &blocks {
        if at > 0 {
            for (cut, what) in [
                (at + 1, "block type"),
                (at + 7, "block length"),
                (at + 8, "block body"),
                (at + len / 2, "middle"),
                (at + len - 1, "last byte"),
            ] {
                let case = pcapng_case(
                    format!("{PCAPNG} cut at {cut} ({}, {what})", block_name(btype)),
                    b[..cut].to_vec(),
                );
                assert_eq!(case.packets, packets, "{}", case.name);
                cases.push(case);
            }
        }
        if btype == EPB {
            packets += 1;
        }
        let case = pcapng_case(
            format!("{PCAPNG} cut at {} (boundary)", at + len),
            b[..at + len].to_vec(),
        );
        assert_eq!(case.packets, packets);
        cases.push(case);
    }
}

/// Length fields of chosen pcap records set to damaged values.
fn pcap_lengths(fx: &str, cases: &mut Vec<Case>) {
    let b = fixture(fx);
    let recs = pcap_records(&b);
    let whole = walk_pcap(&b);
    assert_eq!(whole.end, End::Clean);
    for &k in &[0, recs.len() / 2, recs.len() - 1] {
        let (at, caplen) = recs[k];
        let incl = [
            (0, "zero"),
            (1, "one"),
            (caplen - 1, "one less"),
            (caplen + 1, "one more"),
            (caplen + 4000, "4000 more"),
            (MAX_RECORD_CAPLEN + 1, "just over the limit"),
            (u32::MAX, "huge"),
            (caplen.swap_bytes(), "byte-swapped"),
            (caplen ^ 0x8000_0000, "top bit flipped"),
        ];
        for (v, what) in incl {
            cases.push(pcap_case(
                format!("{fx} record {} incl_len {what} ({v})", k + 1),
                with_u32(&b, at + 8, v),
            ));
        }
        // The original length frames nothing: a damaged one reads like the intact file.
        for (v, what) in [
            (0, "zero"),
            (u32::MAX, "huge"),
            (caplen.swap_bytes(), "swapped"),
        ] {
            let mut case = pcap_case(
                format!("{fx} record {} orig_len {what} ({v})", k + 1),
                with_u32(&b, at + 12, v),
            );
            assert_eq!(case.packets, whole.packets);
            case.flows = Flows::SameAs(b.clone());
            cases.push(case);
        }
    }
}

/// pcapng block lengths (at the start and the end of a block) and EPB captured lengths.
fn pcapng_lengths(cases: &mut Vec<Case>) {
    let b = fixture(PCAPNG);
    let blocks = pcapng_blocks(&b);
    let epbs: Vec<usize> = (0..blocks.len()).filter(|&i| blocks[i].1 == EPB).collect();
    let chosen = [
        1,
        epbs[0],
        epbs[epbs.len() / 2],
        *epbs.last().unwrap(),
        blocks.len() - 1,
    ];
    for &i in &chosen {
        let (at, btype, len) = blocks[i];
        let len = len as u32;
        let name = block_name(btype);
        for (v, what) in [
            (len + 4, "4 more"),
            (len - 4, "4 less"),
            (len + 1, "not a multiple of 4"),
            (0, "zero"),
            (8, "below the minimum"),
            (1 << 20, "1 MiB, past the end of the file"),
            (MAX_BLOCK_LEN as u32 + 4, "over the limit"),
            (u32::MAX, "huge"),
            (len.swap_bytes(), "byte-swapped"),
        ] {
            cases.push(pcapng_case(
                format!("{PCAPNG} {name} at {at}: total length {what} ({v})"),
                with_u32(&b, at + 4, v),
            ));
        }
        let tail = at + len as usize - 4;
        for (v, what) in [
            (len + 4, "4 more"),
            (0, "zero"),
            (len.swap_bytes(), "swapped"),
        ] {
            cases.push(pcapng_case(
                format!("{PCAPNG} {name} at {at}: trailing total length {what} ({v})"),
                with_u32(&b, tail, v),
            ));
        }
        if btype == EPB {
            let caplen = u32_at(&b, at + 20, false).unwrap();
            for (v, what) in [
                (0, "zero"),
                (1, "one"),
                (caplen - 1, "one less (within the padding)"),
                (caplen - 8, "8 less"),
                (caplen + 8, "8 more"),
                (u32::MAX, "huge"),
                (caplen.swap_bytes(), "byte-swapped"),
            ] {
                cases.push(pcapng_case(
                    format!("{PCAPNG} EPB at {at}: captured length {what} ({v})"),
                    with_u32(&b, at + 20, v),
                ));
            }
            // A packet of an interface that is not described is skipped, the rest read on.
            let mut case = pcapng_case(
                format!("{PCAPNG} EPB at {at}: interface id 1"),
                with_u32(&b, at + 8, 1),
            );
            let mut without = b[..at].to_vec();
            without.extend_from_slice(&b[at + len as usize..]);
            case.flows = Flows::SameAs(without);
            assert_eq!(case.packets, epbs.len() as u64 - 1);
            cases.push(case);
        }
    }
}

fn magic_and_sections(cases: &mut Vec<Case>) {
    let p = fixture(PCAP);
    let ng = fixture(PCAPNG);
    let blocks = pcapng_blocks(&ng);
    let not_capture = || exact("not a pcap or pcapng file");
    cases.push(Case::fatal(
        "pcap magic zeroed",
        Input::Bytes(with_u32(&p, 0, 0)),
        not_capture(),
    ));
    let mut one = p.clone();
    one[0] ^= 0x01;
    cases.push(Case::fatal(
        "pcap magic, one bit flipped",
        Input::Bytes(one),
        not_capture(),
    ));
    // The other byte order's magic: the header and every record are read the wrong way round.
    let mut swapped = p.clone();
    swapped[..4].reverse();
    cases.push(pcap_case(
        "pcap magic in the other byte order".into(),
        swapped,
    ));
    // The nanosecond magic: nothing to detect, timestamps are read 1000 times too small.
    let nanos = with_u32(&p, 0, 0xa1b2_3c4d);
    let mut case = pcap_case("pcap with the nanosecond magic".into(), nanos);
    let intact = {
        let doc = run_ok_reference(&p);
        doc["flows"].as_array().map_or(0, Vec::len)
    };
    case.flows = Flows::Count(intact);
    cases.push(case);
    cases.push(Case::fatal(
        "pcapng magic zeroed",
        Input::Bytes(with_u32(&ng, 0, 0)),
        not_capture(),
    ));
    // A pcap magic on a pcapng file: the section header is read as a pcap header.
    cases.push(pcap_case(
        "pcap magic on a pcapng file".into(),
        [&p[..4], &ng[4..]].concat(),
    ));

    // Section header byte-order magic.
    let mut bom = ng.clone();
    bom[8..12].copy_from_slice(&[0x44, 0x33, 0x22, 0x11]);
    cases.push(Case::fatal(
        "pcapng byte-order magic garbage",
        Input::Bytes(bom),
        exact("corrupt section header block (byte-order magic 44332211) at byte 0"),
    ));
    let mut rev = ng.clone();
    rev[8..12].reverse();
    let be_len = u32::from_be_bytes(ng[4..8].try_into().unwrap());
    cases.push(Case::fatal(
        "pcapng byte-order magic reversed",
        Input::Bytes(rev),
        exact(format!(
            "corrupt block length {be_len} (section header block, read big-endian as its \
             byte-order magic says) at byte 0"
        )),
    ));
    // The same in a second section: the first is read.
    let two = [ng.as_slice(), ng.as_slice()].concat();
    let mut bom2 = two.clone();
    bom2[ng.len() + 8..ng.len() + 12].copy_from_slice(&[0x44, 0x33, 0x22, 0x11]);
    let case = pcapng_case(
        "pcapng second section, byte-order magic garbage".into(),
        bom2,
    );
    assert_eq!(case.packets, 40);
    cases.push(case);
    let mut rev2 = two.clone();
    rev2[ng.len() + 8..ng.len() + 12].reverse();
    cases.push(pcapng_case(
        "pcapng second section, byte-order magic reversed".into(),
        rev2,
    ));
    cases.push(pcapng_case("pcapng two sections".into(), two.clone()));

    // Interface description blocks removed.
    let (idb_at, idb_type, idb_len) = blocks[1];
    assert_eq!(idb_type, IDB);
    let no_idb = [&ng[..idb_at], &ng[idb_at + idb_len..]].concat();
    let mut case = pcapng_case("pcapng without its interface description".into(), no_idb);
    assert_eq!(case.packets, 0);
    case.flows = Flows::Count(0);
    cases.push(case);
    let first_no_idb = [&ng[..idb_at], &ng[idb_at + idb_len..], &ng[..]].concat();
    let mut case = pcapng_case(
        "pcapng, first of two sections without its interface description".into(),
        first_no_idb,
    );
    assert_eq!(case.packets, 40);
    case.flows = Flows::SameAs(ng.clone());
    cases.push(case);
}

fn gzip_cases(cases: &mut Vec<Case>) {
    let gz = fixture(GZ);
    let n = gz.len();
    let mut cuts: Vec<usize> = (1..n).step_by(41).collect();
    // Inside the 10-byte header, and inside the 8-byte trailer (CRC32, ISIZE).
    cuts.extend([2, 3, 9, 10, n - 8, n - 4, n - 1]);
    for cut in cuts {
        cases.push(gzip_case(format!("{GZ} cut at {cut}"), gz[..cut].to_vec()));
    }
    cases.push(gzip_case(format!("{GZ} whole"), gz.clone()));
    let mut crc = gz.clone();
    crc[n - 6] ^= 0x01;
    cases.push(gzip_case(format!("{GZ} checksum damaged"), crc));
    let mut mid = gz.clone();
    mid[n / 2] ^= 0xff;
    cases.push(gzip_case(format!("{GZ} deflate data damaged"), mid));
    // Well-formed gzip around damaged captures.
    let p = fixture(PCAP);
    let recs = pcap_records(&p);
    let (at, caplen) = recs[recs.len() / 2];
    cases.push(gzip_case(
        "gzip of a pcap cut inside a record".into(),
        gzip(&p[..at + 16 + caplen as usize / 2]),
    ));
    cases.push(gzip_case(
        "gzip of a pcap with a huge incl_len".into(),
        gzip(&with_u32(&p, at + 8, u32::MAX)),
    ));
    cases.push(gzip_case(
        "gzip of a pcap header only".into(),
        gzip(&p[..24]),
    ));
    cases.push(gzip_case(
        "gzip of a pcap header cut".into(),
        gzip(&p[..10]),
    ));
    cases.push(gzip_case("gzip of nothing".into(), gzip(&[])));
    let inside = exact("not a pcap or pcapng file (inside gzip)");
    cases.push(Case::fatal(
        "gzip of text",
        Input::Bytes(gzip(b"Received: from mail.example.org\r\n")),
        inside.clone(),
    ));
    for seed in 1..=3u64 {
        cases.push(Case::fatal(
            format!("gzip of random bytes, seed {seed}"),
            Input::Bytes(gzip(&random_bytes(seed, 3000))),
            inside.clone(),
        ));
    }
}

fn random_and_odd_inputs(cases: &mut Vec<Case>) {
    let magics: [&[u8]; 7] = [
        &[0xd4, 0xc3, 0xb2],
        &[0xa1, 0xb2, 0xc3],
        &[0x4d, 0x3c, 0xb2],
        &[0xa1, 0xb2, 0x3c],
        &[0x34, 0xcd, 0xb2],
        &[0x0a, 0x0d, 0x0d],
        &[0x1f, 0x8b],
    ];
    for seed in 1..=12u64 {
        let bytes = random_bytes(seed, 64 + seed as usize * 397);
        assert!(
            !magics.iter().any(|m| bytes.starts_with(m)),
            "seed {seed} starts like a capture"
        );
        cases.push(Case::fatal(
            format!("random bytes, seed {seed}"),
            Input::Bytes(bytes),
            exact("not a pcap or pcapng file"),
        ));
    }
    cases.push(Case::fatal(
        "4 KiB of zeros",
        Input::Bytes(vec![0; 4096]),
        exact("not a pcap or pcapng file"),
    ));
    // Random bytes after a good start: a pcap header, some records, a section with its IDB.
    let p = fixture(PCAP);
    let recs = pcap_records(&p);
    let ng = fixture(PCAPNG);
    let blocks = pcapng_blocks(&ng);
    for seed in 1..=8u64 {
        let noise = random_bytes(1000 + seed, 50 + seed as usize * 211);
        cases.push(pcap_case(
            format!("pcap header, then random bytes (seed {seed})"),
            [&p[..24], &noise[..]].concat(),
        ));
        let (at, _) = recs[5];
        cases.push(pcap_case(
            format!("pcap with 5 records, then random bytes (seed {seed})"),
            [&p[..at], &noise[..]].concat(),
        ));
        let idb_end = blocks[1].0 + blocks[1].2;
        cases.push(pcapng_case(
            format!("pcapng section and interface, then random bytes (seed {seed})"),
            [&ng[..idb_end], &noise[..]].concat(),
        ));
        let (at, _, _) = blocks[10];
        cases.push(pcapng_case(
            format!("pcapng with 8 packets, then random bytes (seed {seed})"),
            [&ng[..at], &noise[..]].concat(),
        ));
    }
    cases.push(Case::fatal(
        "empty file",
        Input::Bytes(Vec::new()),
        exact("empty file"),
    ));
    cases.push(Case::fatal(
        "a directory",
        Input::Directory,
        exact("cannot open: is a directory"),
    ));
    cases.push(Case::fatal(
        "a path that does not exist",
        Input::Missing,
        Msg::Prefix("cannot open: No such file or directory".into()),
    ));
}

// ---- running --------------------------------------------------------------------------------

struct Run {
    status: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs smtpaudit on `arg` in `dir` with `--format json`, killing it at the deadline.
fn run_bounded(dir: &Path, arg: &str) -> Result<Run, String> {
    let out_path = dir.join("stdout.json");
    let err_path = dir.join("stderr.txt");
    let mut child = Command::new(common::bin())
        .args(["--format", "json", arg])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {DEADLINE:?}: killed"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    };
    Ok(Run {
        status: status.code(),
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned(),
    })
}

/// The report of an undamaged capture, which must read without a word on stderr.
fn run_ok_reference(bytes: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(NAME), bytes).unwrap();
    let run = run_bounded(dir.path(), NAME).expect("reference run");
    assert_eq!(run.status, Some(0), "reference: {}", run.stderr);
    assert_eq!(run.stderr, "", "reference reads cleanly");
    let doc: Value = serde_json::from_slice(&run.stdout).expect("reference JSON");
    assert_eq!(doc["captures"][0]["warnings"], serde_json::json!([]));
    doc
}

type References = Mutex<HashMap<Vec<u8>, Value>>;

fn check(case: &Case, dir: &Path, refs: &References) -> Result<(), String> {
    let arg = match &case.input {
        Input::Bytes(b) => {
            std::fs::write(dir.join(NAME), b).unwrap();
            NAME
        }
        Input::Directory => {
            std::fs::create_dir(dir.join(NAME)).unwrap();
            NAME
        }
        Input::Missing => "missing.cap",
    };
    let run = run_bounded(dir, arg)?;
    if run.stderr.contains("panicked") {
        return Err(format!("panicked: {}", run.stderr));
    }
    if let Some(m) = &case.fatal {
        // Nothing could be read: the error on stderr, exit 2, and no report at all.
        let line = run.stderr.lines().collect::<Vec<_>>();
        let ok = line.len() == 1
            && line[0]
                .strip_prefix("smtpaudit: ")
                .and_then(|l| l.strip_prefix(&format!("{arg}: ")))
                .is_some_and(|l| m.matches(l));
        if run.status != Some(2) || !ok || !run.stdout.is_empty() {
            return Err(format!(
                "status {:?}, stderr {line:#?} (want one line {m:?}), {} bytes of report",
                run.status,
                run.stdout.len()
            ));
        }
        return Ok(());
    }
    let doc: Value = serde_json::from_slice(&run.stdout)
        .map_err(|e| format!("stdout is not JSON ({e}); stderr: {}", run.stderr))?;
    let cap = &doc["captures"][0];
    let warnings: Vec<String> = cap["warnings"]
        .as_array()
        .ok_or("no captures[0].warnings")?
        .iter()
        .map(|w| w.as_str().unwrap_or("").to_string())
        .collect();
    let lines: Vec<&str> = run.stderr.lines().collect();
    let want_status = if case.fatal.is_some() { 2 } else { 0 };
    if run.status != Some(want_status) {
        return Err(format!(
            "exit status {:?}, want {want_status}; stderr: {}",
            run.status, run.stderr
        ));
    }
    let (expected, prefix): (Vec<&Msg>, &str) = match &case.fatal {
        Some(m) => (vec![m], "smtpaudit: "),
        None => (case.warnings.iter().collect(), "smtpaudit: warning: "),
    };
    let ok_lines = lines.len() == expected.len()
        && lines.iter().zip(&expected).all(|(line, m)| {
            line.strip_prefix(prefix)
                .and_then(|l| l.strip_prefix(&format!("{arg}: ")))
                .is_some_and(|l| m.matches(l))
        });
    if !ok_lines {
        return Err(format!("stderr {lines:#?}, want {expected:#?}"));
    }
    let ok_warnings = warnings.len() == expected.len()
        && warnings.iter().zip(&expected).all(|(w, m)| {
            w.strip_prefix(&format!("{arg}: "))
                .is_some_and(|w| m.matches(w))
        });
    if !ok_warnings {
        return Err(format!(
            "captures[0].warnings {warnings:#?}, want {expected:#?}"
        ));
    }
    if cap["path"] != arg {
        return Err(format!("captures[0].path {}", cap["path"]));
    }
    if cap["format"].as_str() != case.format {
        return Err(format!(
            "captures[0].format {}, want {:?}",
            cap["format"], case.format
        ));
    }
    if cap["packets"].as_u64() != Some(case.packets) {
        return Err(format!(
            "captures[0].packets {}, want {}",
            cap["packets"], case.packets
        ));
    }
    match &case.flows {
        Flows::Count(n) => {
            let got = doc["flows"].as_array().map_or(0, Vec::len);
            if got != *n {
                return Err(format!("{got} flows, want {n}"));
            }
        }
        Flows::SameAs(reference) => {
            let cached = refs.lock().unwrap().get(reference).cloned();
            let want = match cached {
                Some(doc) => doc,
                None => {
                    let doc = run_ok_reference(reference);
                    refs.lock().unwrap().insert(reference.clone(), doc.clone());
                    doc
                }
            };
            if want["captures"][0]["packets"] != cap["packets"] {
                return Err(format!(
                    "the undamaged part alone has {} packets",
                    want["captures"][0]["packets"]
                ));
            }
            for key in ["flows", "findings", "summary"] {
                if doc[key] != want[key] {
                    return Err(format!(
                        "{key} differ from the undamaged part's:\n{}\nwant\n{}",
                        doc[key], want[key]
                    ));
                }
            }
        }
    }
    Ok(())
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    pcap_truncations(PCAP, &mut cases);
    pcap_truncations(SLL2, &mut cases);
    pcapng_truncations(&mut cases);
    pcap_lengths(PCAP, &mut cases);
    pcap_lengths(SLL2, &mut cases);
    pcapng_lengths(&mut cases);
    magic_and_sections(&mut cases);
    gzip_cases(&mut cases);
    random_and_odd_inputs(&mut cases);
    cases
}

#[test]
fn damaged_captures_have_their_documented_outcome() {
    let cases = all_cases();
    let root = tempfile::tempdir().unwrap();
    let refs = References::default();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let dir = root.path().join(format!("case-{i:04}"));
                    std::fs::create_dir(&dir).unwrap();
                    if let Err(e) = check(case, &dir, &refs) {
                        failures.lock().unwrap().push(format!("{}: {e}", case.name));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let fatal = cases.iter().filter(|c| c.fatal.is_some()).count();
    let damaged = cases
        .iter()
        .filter(|c| c.fatal.is_none() && !c.warnings.is_empty())
        .count();
    eprintln!(
        "{} damaged-capture cases: {fatal} unreadable (exit 2), {damaged} read up to the \
         damage, {} read whole",
        cases.len(),
        cases.len() - fatal - damaged
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    assert!(cases.len() >= 300, "{} cases", cases.len());
}

/// The walkers agree with the intact fixtures before they judge damaged ones.
#[test]
fn walkers_read_the_intact_fixtures() {
    for (fx, packets) in [(PCAP, 23), (SLL2, 21)] {
        let w = walk_pcap(&fixture(fx));
        assert_eq!((w.packets, w.end), (packets, End::Clean), "{fx}");
    }
    let w = walk_pcapng(&fixture(PCAPNG));
    assert_eq!((w.packets, w.end), (40, End::Clean));
    assert!(w.extra.is_empty());
    let (plain, err) = gunzip_prefix(&fixture(GZ));
    assert!(err.is_none());
    assert_eq!(plain, fixture(PCAP));
}
