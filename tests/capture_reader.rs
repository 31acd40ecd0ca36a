//! The capture reader against every capture of the public corpus: the frame count must match
//! the manifest (tshark's count), and the damaged capture must yield its readable packets and
//! then a `Corrupt` error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use smtpaudit::capture::{CaptureError, CaptureReader};
use smtpaudit::decode::Decoder;

/// The corpus folder, or `None` (with a message) when this machine does not have it.
fn corpus() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SMTPAUDIT_CORPUS").map(PathBuf::from),
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/corpus"
        ))),
        Some(PathBuf::from("/work/shared/corpus")),
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
