//! Live captures: smtpaudit reads standard input from a producer process that keeps the pipe
//! open (as `tcpdump -U -w -` does), and a real SIGINT or SIGTERM ends the capture like the
//! end of input: every open flow finished, the report written, the usual exit status. NDJSON
//! lines reach an `-o` file while the capture still runs.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const FIXTURE: &str = "smtp-plain-auth-plain.pcap";

/// The first `packets` records of a classic pcap (header included).
fn first_packets(pcap: &[u8], packets: usize) -> Vec<u8> {
    let mut end = 24;
    for _ in 0..packets {
        let caplen = u32::from_le_bytes(pcap[end + 8..end + 12].try_into().unwrap()) as usize;
        end += 16 + caplen;
    }
    pcap[..end].to_vec()
}

/// A producer that writes `data` in two pieces, the first ending inside a packet record,
/// then keeps its end of the pipe open for a minute without writing.
fn producer(data: &Path) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(r#"head -c 100 "$1"; sleep 0.3; tail -c +101 "$1"; exec sleep 60"#)
        .arg("sh")
        .arg(data)
        .stdout(Stdio::piped())
        .spawn()
        .expect("producer")
}

/// smtpaudit reading `producer`'s output on standard input.
fn smtpaudit(producer: &mut Child, args: &[&str], stdout: Stdio) -> Child {
    Command::new(common::bin())
        .args(args)
        .arg("-")
        .stdin(Stdio::from(
            producer.stdout.take().expect("producer stdout"),
        ))
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("smtpaudit")
}

/// Sends `signal` (a `kill` name: INT, TERM) to `child` with the `kill` command.
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits for `child` to exit, at most `limit`.
fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("still running {limit:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop_producer(mut p: Child) {
    let _ = p.kill();
    let _ = p.wait();
}

/// A flow still open when the signal comes (its FIN not yet sent) is finished and reported
/// with its findings; the whole report is written and the exit status is the usual one.
fn signal_ends_capture(sig: &str, extra: &[&str], want_status: i32) {
    let dir = tempfile::tempdir().unwrap();
    let pcap = std::fs::read(common::fixtures().join(FIXTURE)).unwrap();
    // The AUTH (frame 8) and a little more; the close is not sent.
    let data = dir.path().join("part.pcap");
    std::fs::write(&data, first_packets(&pcap, 12)).unwrap();
    let mut prod = producer(&data);
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let mut child = smtpaudit(&mut prod, &args, Stdio::piped());
    // Long enough for the producer's two writes to be read; the capture stays open.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "ended before the signal"
    );
    signal(&child, sig);
    let status = wait_for(&mut child, Duration::from_secs(5));
    let out = child.wait_with_output().unwrap();
    stop_producer(prod);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(want_status), "stderr: {stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("a whole JSON report");
    let cap = &doc["captures"][0];
    assert_eq!(cap["path"], "-");
    assert_eq!(cap["packets"], 12);
    // Ending at the signal is the usual end of a live capture, not damage.
    assert_eq!(cap["warnings"], serde_json::json!([]), "stderr: {stderr}");
    let flows = doc["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["class"], "plaintext");
    let kinds: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"cleartext_credentials"), "{kinds:?}");
    assert!(stderr.contains("stopped by a signal"), "stderr: {stderr}");
}

#[test]
fn sigint_ends_a_live_capture_with_the_whole_report() {
    signal_ends_capture("INT", &[], 0);
}

#[test]
fn sigterm_ends_a_live_capture_and_fail_on_still_counts() {
    signal_ends_capture("TERM", &["--fail-on", "high"], 1);
}

/// The text report too: it is written at the signal, not lost.
#[test]
fn sigint_writes_the_text_report() {
    let mut prod = producer(&common::fixtures().join(FIXTURE));
    let mut child = smtpaudit(&mut prod, &["--color", "never"], Stdio::piped());
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "INT");
    let status = wait_for(&mut child, Duration::from_secs(5));
    let out = child.wait_with_output().unwrap();
    stop_producer(prod);
    assert_eq!(status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 plaintext"), "{text}");
    assert!(text.contains("cleartext_credentials"), "{text}");
}

/// NDJSON and ECS lines of a finished flow are in the `-o` file within a second, while the
/// capture still runs; the signal then adds the capture and summary lines.
#[test]
fn streaming_lines_reach_the_output_file_before_the_input_ends() {
    for format in ["ndjson", "ecs"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events.ndjson");
        let mut prod = producer(&common::fixtures().join(FIXTURE));
        let out_arg = out.to_str().unwrap();
        let mut child = smtpaudit(
            &mut prod,
            &["--format", format, "-o", out_arg],
            Stdio::null(),
        );
        // The producer is done within half a second (the flow closes with its FIN); the
        // lines must follow within a second.
        let started = Instant::now();
        let lines = loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if text.lines().count() >= 2 {
                break text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{format}: nothing in the file after {:?}",
                started.elapsed()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            child.try_wait().unwrap().is_none(),
            "{format}: still running"
        );
        assert!(lines.ends_with('\n'), "{format}: whole lines only");
        let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
        let is_flow =
            first["event_type"] == "flow" || first["event"]["dataset"] == "smtpaudit.flow";
        assert!(is_flow, "{format}: {first}");

        signal(&child, "INT");
        let status = wait_for(&mut child, Duration::from_secs(5));
        stop_producer(prod);
        assert_eq!(status.code(), Some(0), "{format}");
        let text = std::fs::read_to_string(&out).unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        let is_summary =
            last["event_type"] == "summary" || last["event"]["dataset"] == "smtpaudit.summary";
        assert!(is_summary, "{format}: {last}");
    }
}
