//! Reading + decoding throughput: `CaptureReader` over an in-memory capture of about 50 MB
//! (classic pcap and pcapng), every frame passed through `Decoder::decode`.
//!
//! Input: the frames of a corpus capture repeated (set `SMTPAUDIT_CORPUS`, or have
//! `../shared/corpus` beside the repository); without the corpus, SMTP-sized TCP segments are synthesised with
//! etherparse. Run with `cargo bench --bench read_decode`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use smtpaudit::capture::CaptureReader;
use smtpaudit::decode::Decoder;

const TARGET_BYTES: usize = 50 * 1024 * 1024;
/// A real SMTP/TLS capture with full-size segments (1358 frames, 1 MB).
const CORPUS_CAPTURE: &str = "suricata-verify/issue-4220-01-ids/1flowB.pcap";

/// (link type, frame bytes, original length) of one packet.
type Packet = (u32, Vec<u8>, u32);

fn corpus_packets() -> Option<Vec<Packet>> {
    let explicit = std::env::var_os("SMTPAUDIT_CORPUS").map(PathBuf::from);
    let dir = explicit.clone().or_else(|| {
        [PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/corpus"
        ))]
        .into_iter()
        .find(|p| p.join("MANIFEST.json").is_file())
    })?;
    let path = dir.join(CORPUS_CAPTURE);
    if !path.is_file() {
        // Asked for a corpus that lacks the capture: say so rather than measure something else.
        assert!(
            explicit.is_none(),
            "read_decode bench: {} is missing from SMTPAUDIT_CORPUS",
            path.display()
        );
        return None;
    }
    let mut reader = CaptureReader::open(path.to_str()?)
        .unwrap_or_else(|e| panic!("read_decode bench: cannot read its input: {e}"));
    let mut packets = Vec::new();
    while let Some(f) = reader.next_frame().expect("bench input is a clean capture") {
        packets.push((f.link_type.0, f.data.to_vec(), f.orig_len));
    }
    assert!(
        !packets.is_empty(),
        "read_decode bench: {CORPUS_CAPTURE} has no packets"
    );
    eprintln!("read_decode: frames of {}", path.display());
    Some(packets)
}

fn synthetic_packets() -> Vec<Packet> {
    eprintln!("read_decode: corpus not found, synthesising SMTP-sized TCP segments");
    let body = vec![b'x'; 1448];
    (0..1000u32)
        .map(|i| {
            let payload = if i % 4 == 0 {
                &b"250 OK\r\n"[..]
            } else {
                &body[..]
            };
            let mut v = Vec::new();
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(40000, 25, i.wrapping_mul(1448), 512)
                .ack(1)
                .write(&mut v, payload)
                .unwrap();
            let len = v.len() as u32;
            (1, v, len)
        })
        .collect()
}

/// The packets repeated up to the target size, as a classic pcap (microseconds, LE).
fn build_pcap(packets: &[Packet]) -> Vec<u8> {
    let link = packets[0].0;
    let mut out = Vec::with_capacity(TARGET_BYTES + 65536);
    for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, link] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    let mut i = 0u32;
    while out.len() < TARGET_BYTES {
        for (_, data, orig) in packets {
            for x in [
                1_700_000_000 + i / 1000,
                (i % 1000) * 1000,
                data.len() as u32,
                *orig,
            ] {
                out.extend_from_slice(&x.to_le_bytes());
            }
            out.extend_from_slice(data);
            i += 1;
        }
    }
    out
}

/// The same as pcapng: one section, one interface, enhanced packet blocks.
fn build_pcapng(packets: &[Packet]) -> Vec<u8> {
    let link = packets[0].0 as u16;
    let mut out = Vec::with_capacity(TARGET_BYTES + 65536);
    let block = |out: &mut Vec<u8>, btype: u32, body: &[u8]| {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        out.extend_from_slice(&btype.to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + padded - body.len(), 0);
        out.extend_from_slice(&total.to_le_bytes());
    };
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&[0xff; 8]);
    block(&mut out, 0x0A0D_0D0A, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&link.to_le_bytes());
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&262_144u32.to_le_bytes());
    block(&mut out, 1, &idb);
    let mut body = Vec::with_capacity(70_000);
    let mut ts = 1_700_000_000_000_000u64;
    while out.len() < TARGET_BYTES {
        for (_, data, orig) in packets {
            body.clear();
            for x in [0, (ts >> 32) as u32, ts as u32, data.len() as u32, *orig] {
                body.extend_from_slice(&x.to_le_bytes());
            }
            body.extend_from_slice(data);
            block(&mut out, 6, &body);
            ts += 1000;
        }
    }
    out
}

fn read_and_decode(input: &Arc<[u8]>) -> u64 {
    let src = Box::new(Cursor::new(Arc::clone(input)));
    let mut reader = CaptureReader::from_read("bench".into(), src).unwrap();
    let mut decoder = Decoder::new();
    let mut payload = 0u64;
    while let Some(f) = reader.next_frame().unwrap() {
        if let Some(seg) = decoder.decode(f.link_type, f.data, f.orig_len) {
            payload += seg.payload.len() as u64;
        }
    }
    assert!(decoder.stats().tcp > 0, "the bench input decodes to TCP");
    payload
}

fn bench(c: &mut Criterion) {
    let packets = corpus_packets().unwrap_or_else(synthetic_packets);
    let mut group = c.benchmark_group("read_decode");
    group.sample_size(20);
    for (name, bytes) in [
        ("pcap", build_pcap(&packets)),
        ("pcapng", build_pcapng(&packets)),
    ] {
        let input: Arc<[u8]> = bytes.into();
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| b.iter(|| black_box(read_and_decode(&input))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
