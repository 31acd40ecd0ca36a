//! The binary end to end: every fixture and corpus capture, bad inputs, exit statuses and the
//! `captures[]` figures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A tiny valid classic pcap (Ethernet) with one TCP SYN to port 25.
fn tiny_pcap() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    let builder = etherparse::PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .tcp(40000, 25, 1000, 64240)
        .syn();
    let mut pkt = Vec::new();
    builder.write(&mut pkt, &[]).expect("build packet");
    for i in 0..2u32 {
        v.extend_from_slice(&(1_700_000_000u32 + i).to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        v.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        v.extend_from_slice(&pkt);
    }
    v
}

fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write temp file");
    p.to_string_lossy().into_owned()
}

#[test]
fn bad_inputs_get_one_clear_line_and_status_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = tiny_pcap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "text.pcap",
            b"hello, this is not a capture\n".to_vec(),
            "not a pcap or pcapng file",
        ),
        ("empty.pcap", Vec::new(), "empty file"),
        ("header.pcap", full[..10].to_vec(), "truncated file header"),
    ];
    for (name, bytes, msg) in cases {
        let path = write_temp(dir.path(), name, &bytes);
        let out = common::run(&["--format", "json", &path]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&path), "{name}: stderr names the file: {err}");
        assert!(err.contains(msg), "{name}: stderr says {msg:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
    }
    let out = common::run(&["--format", "json", "/nonexistent/capture.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/capture.pcap"));
}

#[test]
fn a_capture_damaged_part_way_is_analysed_up_to_the_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = tiny_pcap();
    // Cut the last packet short.
    let path = write_temp(dir.path(), "cut.pcap", &full[..full.len() - 10]);
    let (doc, out) = common::run_json(Path::new(&path), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let cap = &doc["captures"][0];
    assert_eq!(cap["packets"], 1);
    assert_eq!(cap["format"], "pcap");
    let warnings = cap["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].as_str().unwrap_or("").contains("byte"),
        "{warnings:?}"
    );
    assert!(stderr(&out).contains(&path));
}

#[test]
fn one_unreadable_input_among_several_is_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write_temp(dir.path(), "good.pcap", &tiny_pcap());
    let bad = write_temp(dir.path(), "bad.pcap", b"garbage");
    let out = common::run(&["--format", "json", &good, &bad]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["captures"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["captures"][0]["packets"], 2);
    assert!(doc["captures"][1]["format"].is_null());
}

#[test]
fn reads_standard_input() {
    let mut child = Command::new(common::bin())
        .args(["--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&tiny_pcap())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["captures"][0]["path"], "-");
    assert_eq!(doc["captures"][0]["packets"], 2);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(common::run(&[]).status.code(), Some(2));
    assert_eq!(
        common::run(&["--format", "xml", "x.pcap"]).status.code(),
        Some(2)
    );
    assert_eq!(
        common::run(&["--fail-on", "severe", "x.pcap"])
            .status
            .code(),
        Some(2)
    );
    let help = common::run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--format",
        "--output",
        "--reveal-secrets",
        "--fail-on",
        "--ports",
        "Examples:",
    ] {
        assert!(text.contains(flag), "--help mentions {flag}");
    }
    let version = common::run(&["--version"]);
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_report_skeleton_is_always_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_temp(dir.path(), "t.pcap", &tiny_pcap());
    let (doc, _) = common::run_json(Path::new(&path), &[]);
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["tool"]["name"], "smtpaudit");
    assert!(doc["flows"].is_array());
    assert!(doc["findings"].is_array());
    let cap = &doc["captures"][0];
    for k in [
        "path",
        "format",
        "packets",
        "bytes",
        "link_types",
        "warnings",
        "decode",
    ] {
        assert!(!cap[k].is_null(), "captures[].{k} present");
    }
    assert_eq!(cap["link_types"], serde_json::json!(["ethernet"]));
    assert_eq!(cap["bytes"], tiny_pcap().len());
}

/// Packet counts of every corpus capture equal the MANIFEST's; damage is a warning.
#[test]
fn corpus_captures_read_with_manifest_packet_counts() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("MANIFEST.json")).expect("read"))
            .expect("manifest");
    let mut checked = 0;
    for entry in manifest.as_array().expect("array") {
        let file = corpus.join(entry["file"].as_str().expect("file"));
        let (doc, out) = common::run_json(&file, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            file.display(),
            stderr(&out)
        );
        let cap = &doc["captures"][0];
        assert_eq!(
            cap["packets"],
            entry["packets"],
            "{}: packet count",
            file.display()
        );
        let damaged = entry["format"].as_str().unwrap_or("").contains("DAMAGED");
        // A snap length is no damage (its warning explains the gaps it leaves).
        let warnings = cap["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| !w.as_str().unwrap_or("").contains("cut by a snap length"))
            .count();
        assert_eq!(
            damaged,
            warnings > 0,
            "{}: warnings {:?}",
            file.display(),
            cap["warnings"]
        );
        checked += 1;
    }
    assert!(checked >= 50);
}

/// Every fixture reads completely with the packet count recorded when it was made.
#[test]
fn fixtures_read_with_recorded_packet_counts() {
    let counts: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixtures().join("packets.json"))
            .expect("fixtures/packets.json"),
    )
    .expect("packets.json");
    let captures = common::fixture_captures();
    assert!(captures.len() >= 10, "fixtures present");
    for path in captures {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let (doc, out) = common::run_json(&path, &[]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let cap = &doc["captures"][0];
        assert_eq!(cap["packets"], counts[&name], "{name}: packet count");
        let warnings = cap["warnings"].as_array().expect("warnings");
        if name.contains("snaplen") {
            // Recorded with `tcpdump -s 96`: the one warning says so.
            assert_eq!(warnings.len(), 1, "{name}");
            assert!(
                warnings[0]
                    .as_str()
                    .unwrap_or("")
                    .contains("cut by a snap length of 96 bytes"),
                "{name}: {warnings:?}"
            );
        } else {
            assert!(warnings.is_empty(), "{name}: no warnings, got {warnings:?}");
        }
    }
}
