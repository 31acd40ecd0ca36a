//! Connections that never open, on the recorded fixtures: how each failure reads, and a scan
//! that must stay quiet unless the scan rule is turned off.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

fn doc(fixture: &str, extra: &[&str]) -> Value {
    common::run_json(&common::fixtures().join(fixture), extra).0
}

/// (server port, class, kinds of its findings) per flow, in report order.
fn flows(d: &Value) -> Vec<(u64, String, Vec<String>)> {
    d["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let kinds = d["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| x["flow"] == f["id"])
                .map(|x| x["kind"].as_str().unwrap().to_string())
                .collect();
            (
                f["server"]["port"].as_u64().unwrap(),
                f["class"].as_str().unwrap().to_string(),
                kinds,
            )
        })
        .collect()
}

fn failures(d: &Value) -> Vec<&Value> {
    d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "connection_failed")
        .collect()
}

#[test]
fn blocked_465_then_587_reads_as_exactly_that() {
    // Reads the per-direction TCP counters, which lean records leave out.
    let d = doc(
        "smtp-conn-465-blocked-587-works.pcap",
        &["--detail", "full"],
    );
    let got = flows(&d);
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0],
        (465, "unknown".into(), vec!["connection_failed".into()])
    );
    assert_eq!(got[1].0, 587);
    assert_eq!(got[1].1, "starttls");
    assert!(!got[1].2.contains(&"connection_failed".to_string()));
    let f = failures(&d)[0];
    let ev = &f["evidence"];
    assert_eq!(ev["reason"], "no_answer");
    assert_eq!(ev["server_port"], 465);
    let attempts = ev["attempts"].as_u64().unwrap();
    assert!(attempts >= 2, "{attempts}");
    assert!(ev["duration_secs"].as_f64().unwrap() > 1.0);
    // The proof is the last SYN, and the flow counts the SYNs sent again.
    let flow = &d["flows"][0];
    assert_eq!(f["frame"], flow["tcp"]["last_frame"]);
    assert_eq!(
        flow["tcp"]["to_server"]["retransmissions"].as_u64(),
        Some(attempts - 1)
    );
}

#[test]
fn a_reset_and_icmp_errors_name_their_cause_and_frame() {
    let d = doc("smtp-conn-2525-reset.pcap", &[]);
    let f = failures(&d)[0];
    assert_eq!(f["evidence"]["reason"], "reset");
    assert_eq!(f["frame"], 2, "the RST");

    let d = doc("smtp-conn-icmp-unreachable.pcap", &[]);
    let got: Vec<(u64, u64, u64)> = failures(&d)
        .iter()
        .map(|f| {
            assert_eq!(f["evidence"]["reason"], "icmp_unreachable");
            (
                f["frame"].as_u64().unwrap(),
                f["evidence"]["icmp_type"].as_u64().unwrap(),
                f["evidence"]["icmp_code"].as_u64().unwrap(),
            )
        })
        .collect();
    // Port unreachable, admin prohibited, ICMPv6 admin prohibited (the last of two errors).
    assert_eq!(got, [(2, 3, 3), (4, 3, 13), (8, 1, 1)]);
    let cap = &d["captures"][0];
    assert_eq!(cap["decode"]["icmp_unreachable"], 4);
    assert_eq!(cap["flow_table"]["icmp_matched"], 4);
    assert_eq!(cap["flow_table"]["icmp_unmatched"], 0);
}

#[test]
fn a_connect_scan_is_quiet_unless_the_rule_is_off() {
    let d = doc("smtp-conn-port-scan.pcap", &[]);
    assert!(failures(&d).is_empty(), "{:#}", d["findings"]);
    assert_eq!(d["captures"][0]["flow_table"]["scanners"], 1);
    // Only the mail ports are reported; 2525 was refused like the other 26 closed ports.
    let ports: Vec<u64> = flows(&d).iter().map(|f| f.0).collect();
    assert_eq!(ports, [25, 465, 587, 2525]);

    let d = doc("smtp-conn-port-scan.pcap", &["--scan-threshold", "0"]);
    let f = failures(&d);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["evidence"]["server_port"], 2525);
    assert_eq!(d["captures"][0]["flow_table"]["scanners"], 0);
}

#[test]
fn every_format_carries_the_failure() {
    for (format, needle) in [
        ("ndjson", "\"kind\":\"connection_failed\""),
        ("ecs", "\"name\":\"connection_failed\""),
        ("text", "connection_failed (1)"),
    ] {
        let out = common::run(&[
            "--format",
            format,
            "--color",
            "never",
            "fixtures/smtp-conn-2525-reset.pcap",
        ]);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(needle), "{format}: {text}");
        if format == "text" {
            assert!(text.contains("nothing listens"), "{text}");
        }
    }
}
