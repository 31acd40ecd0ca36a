//! Inputs that cannot be read, in every format: none readable is an error and no report
//! (exit 2); one good and one bad is a report that says so, with the bad one in `captures[]`
//! (`format: null`, `error`), exit 0. Usage errors are one line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

const GOOD: &str = "fixtures/smtp-plain-auth-plain.pcap";
const MISSING: &str = "fixtures/no-such-capture.pcap";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ndjson(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn nothing_readable_prints_the_error_and_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pcap");
    std::fs::write(&garbage, b"not a capture at all").unwrap();
    let garbage = garbage.to_str().unwrap();
    for format in ["text", "json", "ndjson", "ecs"] {
        let out = common::run(&["--format", format, MISSING, garbage]);
        assert_eq!(out.status.code(), Some(2), "{format}");
        assert!(
            out.stdout.is_empty(),
            "{format}: no report, got {:?}",
            out.stdout
        );
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{format}: {err}");
        assert!(
            lines[0].starts_with(&format!("smtpaudit: {MISSING}: ")),
            "{err}"
        );
        assert!(lines[1].contains("not a pcap or pcapng file"), "{err}");
    }
}

#[test]
fn one_missing_among_good_ones_is_reported_in_every_format() {
    let text = common::run(&["--color", "never", GOOD, MISSING]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let report = String::from_utf8_lossy(&text.stdout);
    let top: Vec<&str> = report.lines().take(3).collect();
    assert!(
        top[1].contains("1 of 2 inputs could not be read"),
        "{report}"
    );
    assert!(
        report.contains(&format!("{MISSING}: NOT READ: ")),
        "{report}"
    );
    assert!(report.contains("cleartext_credentials"), "{report}");

    let json = common::run(&["--format", "json", GOOD, MISSING]);
    assert_eq!(json.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&json.stdout).unwrap();
    let caps = doc["captures"].as_array().unwrap();
    assert_eq!(caps.len(), 2);
    assert!(caps[0]["error"].is_null());
    assert_eq!(caps[0]["format"], "pcap");
    assert_eq!(caps[1]["path"], MISSING);
    assert!(caps[1]["format"].is_null());
    assert!(
        caps[1]["error"].as_str().unwrap().contains("No such file"),
        "{}",
        caps[1]
    );

    let nd = common::run(&["--format", "ndjson", MISSING, GOOD]);
    assert_eq!(nd.status.code(), Some(0));
    let lines = ndjson(&nd);
    let bad: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event_type"] == "capture" && l["path"] == MISSING)
        .collect();
    assert_eq!(bad.len(), 1);
    assert!(bad[0]["format"].is_null());
    assert!(bad[0]["error"].is_string());
    assert_eq!(lines.last().unwrap()["event_type"], "summary");

    let ecs = common::run(&["--format", "ecs", GOOD, MISSING]);
    assert_eq!(ecs.status.code(), Some(0));
    let docs = ndjson(&ecs);
    let bad: Vec<&Value> = docs
        .iter()
        .filter(|d| d["file"]["path"] == MISSING)
        .collect();
    assert_eq!(bad.len(), 1);
    assert!(bad[0]["error"]["message"].is_string(), "{}", bad[0]);
    assert!(
        bad[0]["message"]
            .as_str()
            .unwrap()
            .contains("could not be read")
    );
}

#[test]
fn zero_threads_and_a_second_stdin_are_refused_in_one_line() {
    let out = common::run(&["--threads", "0", GOOD]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        "smtpaudit: --threads 0: at least one thread is needed\n"
    );

    let out = common::run(&["-", GOOD, "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("standard input (`-`) is given 2 times"),
        "{err}"
    );
}
