//! Exit statuses (`--fail-on`), a closed pipe, and NDJSON that streams: flow lines appear
//! before the input ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PLAIN_AUTH: &str = "fixtures/smtp-plain-auth-plain.pcap";
const TLS13_OK: &str = "fixtures/smtps-465-tls13-auth-login.pcap";

#[test]
fn fail_on_sets_status_1_only_at_or_above_the_threshold() {
    // The AUTH PLAIN fixture has a critical finding.
    assert_eq!(
        common::run(&["--fail-on", "critical", PLAIN_AUTH])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        common::run(&["--fail-on", "high", PLAIN_AUTH])
            .status
            .code(),
        Some(1)
    );
    // A clean TLS 1.3 session has none.
    assert_eq!(
        common::run(&["--fail-on", "info", TLS13_OK]).status.code(),
        Some(0)
    );
    // Without --fail-on findings never change the status.
    assert_eq!(common::run(&[PLAIN_AUTH]).status.code(), Some(0));
}

#[test]
fn fail_on_severity_ordering() {
    // The refused-STARTTLS fixture's worst finding is medium.
    let f = "fixtures/smtp-starttls-refused-454.pcap";
    assert_eq!(
        common::run(&["--fail-on", "medium", f]).status.code(),
        Some(1)
    );
    assert_eq!(
        common::run(&["--fail-on", "high", f]).status.code(),
        Some(0)
    );
}

#[test]
fn a_closed_pipe_exits_quietly() {
    // Enough input that the report outgrows the pipe's buffer (64 KiB on Linux), so the
    // writer really meets the closed pipe.
    let inputs: Vec<&str> = std::iter::repeat_n(PLAIN_AUTH, 300).collect();
    for format in ["json", "ndjson", "ecs"] {
        let mut child = Command::new(common::bin())
            .args(["--format", format])
            .args(&inputs)
            .current_dir(common::repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one byte, then close our end, as `| head -c1` would.
        let mut stdout = child.stdout.take().unwrap();
        let mut one = [0u8; 1];
        stdout.read_exact(&mut one).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{format}: {err}");
        assert!(!err.contains("Broken pipe"), "{format}: {err}");
        assert!(
            matches!(out.status.code(), Some(0)),
            "{format}: {:?} {err}",
            out.status
        );
    }
}

#[test]
fn ndjson_flow_lines_appear_before_the_input_ends() {
    // Feed a capture through a pipe and keep the pipe open: the flow (closed by FINs) must be
    // written while smtpaudit still waits for more input.
    let bytes = std::fs::read(common::repo().join(PLAIN_AUTH)).unwrap();
    let mut child = Command::new(common::bin())
        .args(["--format", "ndjson", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes).unwrap();
    stdin.flush().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(20));
    // Only now end the input.
    drop(stdin);
    let first = first.expect("a flow line arrived while the input was still open");
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["event_type"], "flow");
    let rest: Vec<String> = rx.iter().collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("\"event_type\":\"summary\""))
    );
    assert!(child.wait().unwrap().success());
}
