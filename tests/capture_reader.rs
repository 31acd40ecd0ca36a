//! The capture reader against every capture of the public corpus: the frame count must match
//! the manifest (tshark's count), and the damaged capture must yield its readable packets and
//! then a `Corrupt` error.
//!
//! Then the reader against itself: a file opened by path, the same bytes handed over whole
//! and the same bytes a few at a time (as a pipe or a decompressor hands them out) must give
//! the same frames, error, warnings and counters, for every fixture and corpus capture, for
//! damaged copies of them (cut, length fields changed, bytes flipped), and for captures much
//! larger than the read buffer, with blocks larger than the buffer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The `capture_reader` fuzz target's driver and its comparison.
#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzzlib;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use fuzzlib::{ShortReads, same_reading};
use smtpaudit::capture::{CaptureError, CaptureReader, INITIAL_BUFFER};
use smtpaudit::decode::Decoder;

/// The corpus folder, or `None` (with a message) when this machine does not have it.
fn corpus() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SMTPAUDIT_CORPUS").map(PathBuf::from),
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/corpus"
        ))),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("MANIFEST.json").is_file());
    if found.is_none() {
        eprintln!("corpus not found (set SMTPAUDIT_CORPUS): skipping");
    }
    found
}

struct Outcome {
    frames: u64,
    error: Option<CaptureError>,
    bytes_read: u64,
    tcp: u64,
}

fn read_all(path: &str) -> Outcome {
    let mut reader = CaptureReader::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut decoder = Decoder::new();
    let mut frames = 0;
    let mut tcp = 0;
    let error = loop {
        match reader.next_frame() {
            Ok(Some(f)) => {
                frames += 1;
                assert_eq!(
                    f.number, frames,
                    "{path}: frame numbers are 1-based and dense"
                );
                if decoder.decode(f.link_type, f.data, f.orig_len).is_some() {
                    tcp += 1;
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    // After the end (clean or not) the reader stays done.
    assert!(matches!(reader.next_frame(), Ok(None)));
    Outcome {
        frames,
        error,
        bytes_read: reader.bytes_read(),
        tcp,
    }
}

#[test]
fn every_corpus_capture_reads_its_manifest_packet_count() {
    let Some(dir) = corpus() else { return };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let entries = manifest.as_array().expect("MANIFEST.json is an array");
    assert!(!entries.is_empty());
    let mut damaged_seen = 0;
    for entry in entries {
        let file = entry["file"].as_str().unwrap();
        let packets = entry["packets"].as_u64().unwrap();
        let size = entry["bytes"].as_u64().unwrap();
        let damaged = entry["format"].as_str().unwrap_or("").contains("DAMAGED");
        let path = dir.join(file);
        let out = read_all(path.to_str().unwrap());
        assert_eq!(out.frames, packets, "{file}: frames read");
        assert!(out.tcp > 0, "{file}: no TCP segment decoded");
        if damaged {
            damaged_seen += 1;
            match out.error {
                Some(CaptureError::Corrupt {
                    offset, ref what, ..
                }) => {
                    assert!(offset < size, "{file}: offset {offset}");
                    assert!(what.contains("corrupt"), "{file}: {what}");
                    let msg = out.error.as_ref().unwrap().to_string();
                    assert!(msg.contains(file) && !msg.contains('\n'), "{msg}");
                }
                other => panic!("{file}: expected a Corrupt error, got {other:?}"),
            }
        } else {
            assert!(out.error.is_none(), "{file}: {:?}", out.error);
            assert_eq!(out.bytes_read, size, "{file}: bytes_read at a clean end");
        }
    }
    assert!(damaged_seen >= 1, "the corpus has a damaged capture");
}

#[test]
fn damaged_capture_stops_after_packet_18() {
    let Some(dir) = corpus() else { return };
    let path = dir.join("suricata-verify/smtp-to-comma/10.7.29.101_49898-178.63.41.150_25.pcap");
    if !path.is_file() {
        eprintln!("{} missing: skipping", path.display());
        return;
    }
    let out = read_all(path.to_str().unwrap());
    assert_eq!(out.frames, 18);
    match out.error {
        // The damaged record header starts right after packet 18.
        Some(CaptureError::Corrupt { offset, .. }) => assert_eq!(offset, out.bytes_read),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn gzip_corpus_capture_reads_like_the_original() {
    use std::io::Write;
    let Some(dir) = corpus() else { return };
    let path = dir.join("zeek/smtp.pcap");
    if !path.is_file() {
        eprintln!("{} missing: skipping", path.display());
        return;
    }
    let raw = std::fs::read(&path).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&raw).unwrap();
    let gz = enc.finish().unwrap();
    let gz_len = gz.len() as u64;
    let mut reader =
        CaptureReader::from_read("smtp.pcap.gz".into(), Box::new(std::io::Cursor::new(gz)))
            .unwrap();
    let mut n = 0;
    while reader.next_frame().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 125);
    assert_eq!(reader.bytes_read(), raw.len() as u64);
    assert_eq!(reader.input_position(), gz_len);
}

// ---------------------------------------------------------------------------------------
// The reader reads alike however the bytes reach it

/// The in-memory comparison, whole versus short reads: what the fuzz target runs.
fn assert_alike(name: &str, bytes: &[u8]) {
    let whole = CaptureReader::from_read(name.into(), Box::new(Cursor::new(bytes.to_vec())));
    let short = CaptureReader::from_read(name.into(), Box::new(ShortReads::new(bytes, 7, 61)));
    if let Err(diff) = same_reading(whole, short) {
        panic!("{name} ({} bytes): {diff}", bytes.len());
    }
    fuzzlib::capture_reader(bytes);
}

/// The same through a real file: opened by path versus its bytes in reads of up to `max`
/// bytes. Both name the capture by its path, so errors and warnings compare as text.
fn assert_file_alike(path: &Path, max: usize) {
    let p = path.to_str().unwrap();
    let bytes = std::fs::read(path).unwrap();
    let opened = CaptureReader::open(p);
    if let Ok(r) = &opened {
        assert_eq!(r.total_size(), Some(bytes.len() as u64), "{p}");
        assert_eq!(r.is_compressed(), bytes.starts_with(&[0x1f, 0x8b]), "{p}");
    }
    let seed = bytes.len() as u64;
    let short = CaptureReader::from_read(p.into(), Box::new(ShortReads::new(&bytes, seed, max)));
    if let Err(diff) = same_reading(opened, short) {
        panic!("{p}: {diff}");
    }
}

fn every_capture() -> Vec<PathBuf> {
    let mut all = common_fixtures();
    if let Some(dir) = corpus() {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
        for entry in manifest.as_array().unwrap() {
            all.push(dir.join(entry["file"].as_str().unwrap()));
        }
    }
    all
}

fn common_fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".gz")
        })
        .collect();
    v.sort();
    assert!(v.len() > 20, "fixtures missing");
    v
}

#[test]
fn every_fixture_and_corpus_capture_reads_alike_however_it_arrives() {
    let all = every_capture();
    for path in &all {
        let bytes = std::fs::read(path).unwrap();
        assert_alike(&path.display().to_string(), &bytes);
        assert_file_alike(path, 4096);
    }
}

/// Offsets where records (pcap) or blocks (pcapng) start, and the offset of each one's length
/// field with its byte order, walked without any check beyond staying in bounds.
fn structure(b: &[u8]) -> Vec<(usize, usize, bool)> {
    let u32_at = |at: usize, be: bool| -> Option<u32> {
        let w: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if be {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        })
    };
    let mut out = Vec::new();
    match b.get(..4) {
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => {
            let (mut at, mut be) = (0, false);
            while let Some(btype) = u32_at(at, false) {
                if btype == 0x0a0d_0d0a {
                    be = u32_at(at + 8, false) == Some(0x4d3c_2b1a);
                }
                let Some(len) = u32_at(at + 4, be) else { break };
                out.push((at, at + 4, be));
                if len < 12 {
                    break;
                }
                at += len as usize;
            }
        }
        Some(m) => {
            let be = m == [0xa1, 0xb2, 0xc3, 0xd4] || m == [0xa1, 0xb2, 0x3c, 0x4d];
            let hdr = if m == [0x34, 0xcd, 0xb2, 0xa1] {
                24
            } else {
                16
            };
            let mut at = 24;
            while let Some(caplen) = u32_at(at + 8, be) {
                out.push((at, at + 8, be));
                at += hdr + caplen as usize;
            }
        }
        None => {}
    }
    out
}

fn with_u32(b: &[u8], at: usize, v: u32, be: bool) -> Vec<u8> {
    let mut out = b.to_vec();
    let w = if be { v.to_be_bytes() } else { v.to_le_bytes() };
    if let Some(dst) = out.get_mut(at..at + 4) {
        dst.copy_from_slice(&w);
    }
    out
}

/// Cut, length-damaged and byte-flipped copies of `b`, named.
fn damaged(b: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let blocks = structure(b);
    let mut cuts: Vec<usize> = (0..40).collect();
    for &(start, _, _) in &blocks {
        for d in [-9, -4, -1, 0, 1, 3, 4, 8, 12, 15, 17, 29] {
            cuts.push(start.saturating_add_signed(d));
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts.into_iter().filter(|&c| c < b.len()) {
        out.push((format!("cut at {cut}"), b[..cut].to_vec()));
    }
    for &(start, len_at, be) in blocks.iter().take(12) {
        let Some(w) = b.get(len_at..len_at + 4) else {
            continue;
        };
        let w: [u8; 4] = w.try_into().unwrap();
        let len = if be {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        };
        for v in [
            0,
            1,
            11,
            12,
            len.wrapping_sub(4),
            len.wrapping_sub(1),
            len + 1,
            len + 4,
            len * 2,
            70_000,
            0x7fff_ffff,
            u32::MAX,
        ] {
            out.push((
                format!("length at {len_at} (block at {start}) = {v}"),
                with_u32(b, len_at, v, be),
            ));
        }
        // The other byte order, and the pcapng trailer copy.
        out.push((
            format!("length at {len_at} swapped"),
            with_u32(b, len_at, len.swap_bytes(), be),
        ));
        if b.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            let end = start + len as usize;
            if end >= 4 && end <= b.len() {
                out.push((
                    format!("trailer of block at {start}"),
                    with_u32(b, end - 4, len + 4, be),
                ));
            }
        }
    }
    // Seeded flips of 1-4 bytes, more often near the start where the framing is.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ b.len() as u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..150 {
        let mut v = b.to_vec();
        let span = if i % 2 == 0 {
            512.min(v.len())
        } else {
            v.len()
        };
        for _ in 0..=(next() % 4) {
            let at = (next() % span.max(1) as u64) as usize;
            if let Some(byte) = v.get_mut(at) {
                *byte ^= 1 << (next() % 8);
            }
        }
        out.push((format!("flips #{i}"), v));
    }
    out
}

#[test]
fn damaged_fixtures_read_alike_however_they_arrive() {
    let mut cases = 0;
    for path in common_fixtures() {
        let bytes = std::fs::read(&path).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for (what, v) in damaged(&bytes) {
            assert_alike(&format!("{name}, {what}"), &v);
            cases += 1;
        }
    }
    assert!(cases > 5_000, "only {cases} damaged copies");
}

#[test]
fn damaged_corpus_captures_read_alike_however_they_arrive() {
    let Some(dir) = corpus() else { return };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
    // A few of each format and size are enough next to the fixtures; the damage walk is
    // quadratic in the number of blocks.
    let mut picked = 0;
    for entry in manifest.as_array().unwrap() {
        let bytes = std::fs::read(dir.join(entry["file"].as_str().unwrap())).unwrap();
        if bytes.len() > 200_000 || picked >= 12 || bytes.starts_with(&[0x1f, 0x8b]) {
            continue;
        }
        picked += 1;
        for (what, v) in damaged(&bytes) {
            assert_alike(&format!("{}, {what}", entry["file"]), &v);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Captures much larger than the read buffer (256 KiB), some of whose blocks do not fit it

const MIB: usize = 1024 * 1024;

/// A little-endian microsecond pcap of `n` records whose sizes vary (60..1560 bytes), so
/// records straddle the end of the buffer at some point.
fn big_pcap(n: u32) -> Vec<u8> {
    let mut b = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65_535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..n {
        let caplen = 60 + (i * 7919) % 1500;
        b.extend_from_slice(&(1_700_000_000 + i).to_le_bytes());
        b.extend_from_slice(&(i % 1_000_000).to_le_bytes());
        b.extend_from_slice(&caplen.to_le_bytes());
        b.extend_from_slice(&(caplen + 4).to_le_bytes());
        b.extend((0..caplen).map(|j| (i + j) as u8));
    }
    b
}

fn pcapng_block(btype: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len().div_ceil(4) * 4) as u32;
    let mut b = btype.to_le_bytes().to_vec();
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(len as usize - 4, 0);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

/// A pcapng whose section header carries a `shb_extra`-byte comment, one Ethernet interface,
/// then EPBs of varied sizes with, after every `big_every`th, an unknown block of
/// `big_len` bytes.
fn big_pcapng(n: u32, shb_extra: usize, big_every: u32, big_len: usize) -> Vec<u8> {
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    if shb_extra > 0 {
        // opt_comment (1), then opt_endofopt.
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&(shb_extra as u16).to_le_bytes());
        shb.extend(std::iter::repeat_n(b'c', shb_extra.div_ceil(4) * 4));
        shb.extend_from_slice(&[0; 4]);
    }
    let mut b = pcapng_block(0x0a0d_0d0a, &shb);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&0u32.to_le_bytes());
    b.extend(pcapng_block(1, &idb));
    for i in 0..n {
        let caplen = 60 + (i * 7919) % 1500;
        let mut epb = 0u32.to_le_bytes().to_vec();
        let ts = 1_700_000_000_000_000u64 + u64::from(i);
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&caplen.to_le_bytes());
        epb.extend_from_slice(&caplen.to_le_bytes());
        epb.extend((0..caplen).map(|j| (i ^ j) as u8));
        b.extend(pcapng_block(6, &epb));
        if big_every > 0 && i % big_every == big_every - 1 {
            b.extend(pcapng_block(0x0000_0bad, &vec![0x5a; big_len]));
        }
    }
    b
}

/// Compares `bytes` written to a file and read by path with the same bytes in short reads,
/// and so for copies cut and length-damaged around a few offsets (1, 4 and 8 MiB).
fn check_big(dir: &Path, name: &str, bytes: &[u8]) {
    let write = |what: &str, b: &[u8]| {
        let p = dir.join(format!("{name}-{what}"));
        std::fs::write(&p, b).unwrap();
        p
    };
    // Reads of up to 64 KiB: smaller ones make a 5 MiB block take a refill per few bytes.
    let max = 64 * 1024;
    assert_file_alike(&write("whole", bytes), max);
    let blocks = structure(bytes);
    for boundary in [MIB, 4 * MIB, 8 * MIB] {
        // The block across the offset: cut inside it, damage its length.
        let Some(&(start, len_at, be)) = blocks.iter().rev().find(|(s, _, _)| *s < boundary) else {
            continue;
        };
        for cut in [boundary - 1, boundary, boundary + 1, start + 3] {
            if cut < bytes.len() {
                assert_file_alike(&write(&format!("cut{cut}"), &bytes[..cut]), max);
            }
        }
        for v in [0, 13, 70_000, 5 * MIB as u32, u32::MAX] {
            let damaged = with_u32(bytes, len_at, v, be);
            assert_file_alike(&write(&format!("len{start}-{v}"), &damaged), max);
        }
    }
}

#[test]
fn big_captures_read_alike_however_they_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = big_pcap(12_000);
    assert!(pcap.len() > 9 * MIB);
    check_big(dir.path(), "pcap", &pcap);
    // Blocks of 5 MiB (20 times the buffer) between packets, and a section header of 5 MiB.
    let ng = big_pcapng(12_000, 0, 5_000, 5 * MIB);
    assert!(ng.len() > 18 * MIB);
    check_big(dir.path(), "ng", &ng);
    let shb = big_pcapng(3_000, 5 * MIB, 0, 0);
    check_big(dir.path(), "shb", &shb);
    // A section header block too large to accept (over 64 MiB) is refused alike.
    let mut huge = big_pcapng(10, 0, 0, 0);
    huge.splice(4..8, (65 * MIB as u32).to_le_bytes());
    let p = write_tmp(dir.path(), "huge-shb", &huge);
    assert_file_alike(&p, 4096);
    let e = CaptureReader::open(p.to_str().unwrap()).err();
    assert!(
        matches!(e, Some(CaptureError::Corrupt { offset: 0, .. })),
        "{e:?}"
    );
}

fn write_tmp(dir: &Path, name: &str, b: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, b).unwrap();
    p
}

#[test]
fn big_capture_reads_every_frame_through_a_bounded_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = big_pcap(12_000);
    let p = write_tmp(dir.path(), "big.pcap", &pcap);
    let mut r = CaptureReader::open(p.to_str().unwrap()).unwrap();
    assert_eq!(r.total_size(), Some(pcap.len() as u64));
    let mut n = 0;
    while r.next_frame().unwrap().is_some() {
        n += 1;
        // Input never runs more than a buffer ahead of what was handed out.
        assert!(r.input_position() <= r.bytes_read() + INITIAL_BUFFER as u64);
    }
    assert_eq!(n, 12_000);
    assert_eq!(r.bytes_read(), pcap.len() as u64);
    assert_eq!(r.input_position(), pcap.len() as u64);
    assert!(!r.is_compressed());
}

#[test]
fn empty_and_gzip_files_open_as_they_should() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write_tmp(dir.path(), "empty.pcap", &[]);
    let e = CaptureReader::open(empty.to_str().unwrap()).err();
    assert!(matches!(e, Some(CaptureError::Empty { .. })), "{e:?}");
    // gzip: decompressed as it is read.
    let gz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/smtp-plain-auth-plain.pcap.gz");
    let r = CaptureReader::open(gz.to_str().unwrap()).unwrap();
    assert!(r.is_compressed());
    assert_file_alike(&gz, 61);
}

#[test]
fn a_file_cut_short_while_it_is_read_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = big_pcap(12_000);
    let p = write_tmp(dir.path(), "shrinks.pcap", &pcap);
    let mut r = CaptureReader::open(p.to_str().unwrap()).unwrap();
    // The first buffer is read; the file now loses its second half, as a ring buffer's file
    // rewritten by a capture tool would.
    r.next_frame().unwrap().unwrap();
    let keep = 6 * MIB as u64;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(keep)
        .unwrap();
    let mut frames = 1;
    let err = loop {
        match r.next_frame() {
            Ok(Some(_)) => frames += 1,
            Ok(None) => panic!("read to the end of a file that shrank"),
            Err(e) => break e,
        }
    };
    // Every record wholly before the new end was delivered, then the one it cuts is named.
    let msg = err.to_string();
    assert!(
        matches!(err, CaptureError::Corrupt { offset, .. } if offset == r.bytes_read() && offset < keep && offset + 2_000 > keep),
        "{msg}"
    );
    assert!(msg.contains("truncated packet record"), "{msg}");
    assert!(frames > 1_000 && frames < 12_000, "{frames}");
}
