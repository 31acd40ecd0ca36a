//! Findings across connections stream with the later connection: when the earlier connection
//! (the one that offered STARTTLS, or whose TLS attempt failed) is still open as the later one
//! finishes, its evidence was on the wire already and the finding is on the later flow's own
//! NDJSON line group, for any `--threads`. What is known only when the earlier connection ends
//! (SYNs never answered) goes with the run's findings, with its frame numbered within the file
//! that holds it when the capture is several chained files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use serde_json::Value;

fn ndjson(args: &[&str]) -> Vec<Value> {
    let out = common::run(args);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn is(line: &Value, event: &str) -> bool {
    line["event_type"] == event
}

fn flow_line(lines: &[Value], id: &Value) -> usize {
    lines
        .iter()
        .position(|l| is(l, "flow") && l["id"] == *id)
        .unwrap_or_else(|| panic!("no flow {id}"))
}

/// The `kind` finding follows its own flow's line, among that flow's findings, and names a
/// flow that began earlier and is written after it (it was still open).
fn assert_streams_with_later_flow(fixture: &str, kind: &str) {
    let path = format!("fixtures/{fixture}");
    let mut first: Option<Vec<Value>> = None;
    for threads in ["1", "2", "3"] {
        let lines = ndjson(&["--format", "ndjson", "--threads", threads, &path]);
        let at = lines
            .iter()
            .position(|l| is(l, "finding") && l["kind"] == kind)
            .unwrap_or_else(|| panic!("{fixture}: no {kind}"));
        let finding = &lines[at];
        let own = flow_line(&lines, &finding["flow"]);
        let earlier = flow_line(&lines, &finding["evidence"]["related_flow"]);
        assert!(own < at, "{fixture}: {kind} before its flow");
        assert!(
            lines[own + 1..at]
                .iter()
                .all(|l| is(l, "finding") && l["flow"] == finding["flow"]),
            "{fixture} --threads {threads}: {kind} is not with its flow's findings"
        );
        assert!(
            earlier > at,
            "{fixture}: the earlier flow was not open any more"
        );
        let first_frame = |i: usize| lines[i]["tcp"]["first_frame"].as_u64().unwrap();
        assert!(first_frame(earlier) < first_frame(own));
        match &first {
            None => first = Some(lines),
            Some(want) => assert_eq!(*want, lines, "{fixture}: --threads {threads} differs"),
        }
    }
}

#[test]
fn a_downgrade_streams_while_the_connection_that_offered_starttls_is_open() {
    assert_streams_with_later_flow(
        "smtp-587-starttls-removed-while-offer-open.pcap",
        "starttls_downgrade",
    );
}

#[test]
fn a_fallback_streams_while_the_failed_tls_attempt_is_open() {
    assert_streams_with_later_flow(
        "smtp-465-tls-fails-open-then-587-plaintext-auth.pcap",
        "plaintext_fallback",
    );
}

const BLOCKED: &str = "smtp-465-blocked-then-587-plaintext-auth.pcap";

/// The finding a fixture's run reports with the run's findings (after every flow).
fn run_wide(lines: &[Value], kind: &str) -> Value {
    let last_flow = lines.iter().rposition(|l| is(l, "flow")).unwrap();
    let at = lines
        .iter()
        .position(|l| is(l, "finding") && l["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"));
    assert!(at > last_flow, "{kind} is not with the run's findings");
    lines[at].clone()
}

#[test]
fn a_failure_known_only_when_its_attempt_ends_goes_with_the_run_findings() {
    let path = format!("fixtures/{BLOCKED}");
    let lines = ndjson(&["--format", "ndjson", &path]);
    let f = run_wide(&lines, "plaintext_fallback");
    let own = flow_line(&lines, &f["flow"]);
    assert_eq!(lines[own]["server"]["port"], 587);
    let earlier = flow_line(&lines, &f["evidence"]["related_flow"]);
    assert_eq!(lines[earlier]["server"]["port"], 465);
    assert_eq!(
        f["client"], lines[own]["client"],
        "the line stands on its own"
    );
    assert_eq!(f["capture"], path.as_str());
}

/// Pcap records: (offset, length) of each, after the 24-byte file header.
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let le = bytes[..4] == [0xd4, 0xc3, 0xb2, 0xa1];
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let mut n = [0u8; 4];
        n.copy_from_slice(&bytes[at + 8..at + 12]);
        let incl = if le {
            u32::from_le_bytes(n)
        } else {
            u32::from_be_bytes(n)
        } as usize;
        out.push((at, 16 + incl));
        at += 16 + incl;
    }
    out
}

/// TCP destination or source port 587 in an Ethernet/IPv4 frame.
fn is_587(frame: &[u8]) -> bool {
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let port = |i: usize| u16::from_be_bytes([frame[14 + ihl + i], frame[15 + ihl + i]]);
    port(0) == 587 || port(2) == 587
}

#[test]
fn a_late_finding_of_a_chained_capture_is_numbered_within_its_file() {
    let bytes = std::fs::read(common::fixtures().join(BLOCKED)).unwrap();
    let recs = records(&bytes);
    // Cut where the connection to 587 begins: the blocked 465 attempt in the first file, the
    // plaintext connection in the second, as a rotation would have written them.
    let cut = recs
        .iter()
        .position(|&(at, _)| is_587(&bytes[at + 16..]))
        .unwrap();
    assert!(cut > 0);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, part: &[(usize, usize)]| {
        let mut out = bytes[..24].to_vec();
        for &(at, len) in part {
            out.extend_from_slice(&bytes[at..at + len]);
        }
        let p = dir.path().join(name);
        std::fs::write(&p, out).unwrap();
        p.to_string_lossy().into_owned()
    };
    let a = write("rot0.pcap", &recs[..cut]);
    let b = write("rot1.pcap", &recs[cut..]);

    let whole = ndjson(&["--format", "ndjson", &format!("fixtures/{BLOCKED}")]);
    let want = run_wide(&whole, "plaintext_fallback");
    for threads in ["1", "2"] {
        let lines = ndjson(&["--format", "ndjson", "--threads", threads, &a, &b]);
        let got = run_wide(&lines, "plaintext_fallback");
        assert_eq!(got["capture"], b.as_str(), "the file that holds the frame");
        assert_eq!(
            got["frame"].as_u64().unwrap(),
            want["frame"].as_u64().unwrap() - cut as u64,
            "numbered within its file"
        );
        let own = flow_line(&lines, &got["flow"]);
        assert_eq!(lines[own]["capture"], b.as_str());
        let auth = &lines[own]["smtp"]["auth"][0];
        assert_eq!(auth["frame"], got["frame"]);
    }
    assert!(Path::new(&a).exists());
}
