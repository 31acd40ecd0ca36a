//! `--format html`: one self-contained page, tested in a real headless browser (Chromium
//! through WebDriver, driven by `tests/browser/check_html.py`): the findings are shown, the
//! filter narrows the flow table, and markup that came off the wire (an EHLO of
//! `<script>alert(1)</script>`, recorded from swaks) shows as text and runs nothing.
//!
//! Without Chromium, chromedriver and selenium the browser half is skipped with a message,
//! unless `SMTPAUDIT_REQUIRE_BROWSER=1` (CI sets it after installing them) makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod report_fixtures;

use std::path::PathBuf;
use std::process::Command;

use report_fixtures::*;
use serde_json::Value;
use smtpaudit::report::{Format, SinkOptions, make_sink};

const FAILED_THEN_PLAIN: &str = "fixtures/smtp-587-tls-fails-then-plaintext-auth.pcap";
const HOSTILE: &str = "fixtures/smtp-hostile-ehlo-html.pcap";

fn html_of(files: &[&str], dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("report.html");
    let p = path.to_string_lossy().into_owned();
    let mut args = vec!["--format", "html", "-o", &p];
    args.extend_from_slice(files);
    let out = common::run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

#[test]
fn page_is_self_contained_and_escapes_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let page = std::fs::read_to_string(html_of(&[FAILED_THEN_PLAIN, HOSTILE], &dir)).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    // Nothing fetched: no external script, style, image or font.
    for needle in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
        "src=\"//",
    ] {
        assert!(!page.contains(needle), "external resource: {needle}");
    }
    // The hostile EHLO and sender never appear as markup.
    assert!(
        !page.contains("<script>alert(1)"),
        "raw script from the wire"
    );
    assert!(!page.contains("<img src=x"), "raw image tag from the wire");
    assert_eq!(
        page.matches("<script").count(),
        2,
        "only the page's own scripts"
    );
    // Problems with cause first, remedy, posture and timeline are in the page itself.
    assert!(page.contains("tls_mode_mismatch -&gt; tls_handshake_failure -&gt; plaintext_fallback -&gt; cleartext_credentials"));
    assert!(page.contains("Remedy: "));
    assert!(page.contains("fell back to plaintext: 192.0.2.10"));
    assert!(page.contains("<svg"));
}

#[test]
fn renders_in_headless_chromium_and_the_filter_narrows_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let report = html_of(&[FAILED_THEN_PLAIN, HOSTILE], &dir);
    let shot = dir.path().join("report.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/check_html.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&report)
        .arg(&shot)
        .arg("40105")
        .output()
        .expect("run python3");
    let required = std::env::var("SMTPAUDIT_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    if out.status.code() == Some(77) && !required {
        eprintln!(
            "SKIPPED: no headless browser ({}); install chromium, chromium-driver and \
             python3-selenium to run this test",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return;
    }
    assert!(
        out.status.success(),
        "browser check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("{seen:#}");
    assert_eq!(seen["alert"], Value::Null, "a script from the wire ran");
    assert_eq!(seen["scripts"], 2);
    assert_eq!(seen["images"], 0);
    assert_eq!(seen["external_resources"], serde_json::json!([]));
    let problems = seen["problems_text"].as_str().unwrap();
    assert!(problems.contains("CRITICAL"), "{problems}");
    assert!(problems.contains("tls_mode_mismatch -> tls_handshake_failure"));
    assert!(problems.contains("Remedy:"));
    assert!(
        seen["servers_text"]
            .as_str()
            .unwrap()
            .contains("192.0.2.24:587")
    );
    assert_eq!(seen["timeline_svgs"], 2);
    // Three flows; the client port of the fallback narrows it to one.
    assert_eq!(seen["rows_before"], 3);
    assert!(
        seen["table_text"]
            .as_str()
            .unwrap()
            .contains("EHLO <script>alert(1)</script>"),
        "the hostile EHLO shows as text"
    );
    assert_eq!(seen["rows_after"], 1);
    assert_eq!(seen["shown"], "1 of 3 flows");
    assert!(seen["rows_after_text"].as_str().unwrap().contains("40105"));
    assert_eq!(seen["rows_nomatch"], 0);
    assert!(seen["screenshot_bytes"].as_u64().unwrap() > 10_000);
    assert_eq!(seen["console_errors"], serde_json::json!([]));
}

#[test]
fn stays_a_few_megabytes_at_25000_flows() {
    let out = Shared::default();
    let mut sink = make_sink(Format::Html, Box::new(out.clone()), SinkOptions::default());
    let (base, findings) = plaintext_auth();
    let mut all = Vec::new();
    for i in 0..25_000u32 {
        let mut f = base.clone();
        f.id = format!("flow-{i}");
        f.client.port = 1024 + (i % 60_000) as u16;
        f.start = ts(i64::from(i) * 100);
        let fs: Vec<_> = findings
            .iter()
            .cloned()
            .map(|mut x| {
                x.flow.clone_from(&f.id);
                x
            })
            .collect();
        sink.flow(&f, &fs).unwrap();
        all.push((f, fs));
    }
    sink.finish(&[], &summary_of(&all, &[])).unwrap();
    let page = out.text();
    assert!(page.len() < 16 << 20, "{} bytes", page.len());
    // Problems are grouped, not listed 25,000 times.
    assert!(page.contains("... and 24980 more"), "samples are capped");
}
