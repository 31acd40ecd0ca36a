//! The four report sinks on model values built in code: contract names, deterministic order,
//! schema validity, streaming, ECS key fields, the text summary, and closed pipes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod report_fixtures;

use std::io;

use report_fixtures::*;
use serde_json::Value;
use smtpaudit::report::{Format, SinkOptions, make_sink};

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/report.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn schema_errors(doc: &Value) -> Vec<String> {
    let schema = schema();
    let v = jsonschema::draft202012::new(&schema).unwrap();
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Runs a whole report through a sink: flows in arrival order, captures after their flows,
/// then finish.
fn run(format: Format, opts: SinkOptions) -> (Shared, Vec<(usize, usize)>) {
    let out = Shared::default();
    let mut sink = make_sink(format, Box::new(out.clone()), opts);
    let flows = arrival_order();
    let wide = run_wide();
    // Bytes written after each call, to check what was streamed when.
    let mut marks = Vec::new();
    for (i, (f, fs)) in flows.iter().enumerate() {
        sink.flow(f, fs).unwrap();
        marks.push((i, out.buf.borrow().len()));
        if i == 2 {
            sink.capture(&capture("a.pcap", 60, 0, 5_000)).unwrap();
        }
    }
    sink.capture(&capture("b.pcap", 8, -60_000, -59_000))
        .unwrap();
    sink.finish(&wide, &summary_of(&flows, &wide)).unwrap();
    (out, marks)
}

fn json_doc() -> Value {
    let (out, marks) = run(Format::Json, SinkOptions::default());
    // One document, pretty-printed, with a trailing newline.
    let text = out.text();
    assert!(text.ends_with("}\n"), "no trailing newline");
    assert!(text.contains("\n  \"flows\": ["), "not pretty-printed");
    // The JSON sink writes nothing before finish.
    assert!(marks.iter().all(|(_, n)| *n == 0));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn json_document_validates_against_the_schema() {
    let doc = json_doc();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema errors: {errors:#?}");
}

#[test]
fn schema_rejects_renames_and_unknown_enum_values() {
    let doc = json_doc();

    let mut renamed = doc.clone();
    let flow = renamed["flows"][0].as_object_mut().unwrap();
    let class = flow.remove("class").unwrap();
    flow.insert("kind".into(), class);
    assert!(
        !schema_errors(&renamed).is_empty(),
        "renamed class accepted"
    );

    let mut bad_enum = doc.clone();
    bad_enum["flows"][2]["tls"]["handshake"] = "done".into();
    assert!(
        !schema_errors(&bad_enum).is_empty(),
        "bad handshake accepted"
    );

    let mut bad_severity = doc.clone();
    bad_severity["findings"][0]["severity"] = "severe".into();
    assert!(!schema_errors(&bad_severity).is_empty());

    let mut missing = doc.clone();
    missing.as_object_mut().unwrap().remove("findings");
    assert!(
        !schema_errors(&missing).is_empty(),
        "missing findings accepted"
    );

    let mut bad_alert = doc;
    bad_alert["flows"][2]["tls"]["alerts"][0]["from"] = "peer".into();
    assert!(!schema_errors(&bad_alert).is_empty());
}

#[test]
fn json_document_has_the_contract_names() {
    let doc = json_doc();
    let top: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "schema_version",
        "tool",
        "captures",
        "summary",
        "flows",
        "findings",
    ] {
        assert!(top.contains(&k), "missing {k}");
    }
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["tool"]["name"], "smtpaudit");
    assert_eq!(doc["tool"]["version"], env!("CARGO_PKG_VERSION"));

    let cap = &doc["captures"][0];
    for k in [
        "path",
        "format",
        "packets",
        "bytes",
        "link_types",
        "warnings",
    ] {
        assert!(cap.get(k).is_some(), "capture lacks {k}");
    }
    assert_eq!(cap["format"], "pcap");

    let s = &doc["summary"];
    assert_eq!(s["flows"], 5);
    assert_eq!(s["classes"]["plaintext"], 2);
    assert_eq!(s["classes"]["implicit_tls"], 1);
    assert_eq!(s["findings"]["critical"], 1);
    assert_eq!(s["findings"]["high"], 2);

    let plain = &doc["flows"][0];
    assert_eq!(plain["client"]["ip"], "192.0.2.10");
    assert_eq!(plain["server"]["port"], 25);
    assert_eq!(plain["start"], "2026-01-31T12:00:00.000000Z");
    assert_eq!(plain["class"], "plaintext");
    assert_eq!(plain["tls"], Value::Null);
    let smtp = &plain["smtp"];
    assert_eq!(smtp["banner"], "220 mx.example.org ESMTP");
    assert_eq!(smtp["starttls"]["reply"], Value::Null);
    assert_eq!(smtp["auth"][0]["mechanism"], "PLAIN");
    assert_eq!(smtp["auth"][0]["in_cleartext"], true);
    assert_eq!(smtp["auth"][1]["outcome"], "failure");
    assert_eq!(smtp["transactions"], 1);

    let tls = &doc["flows"][1]["tls"];
    assert_eq!(tls["version"], "TLSv1.2");
    assert_eq!(tls["handshake"], "complete");
    for k in ["cipher", "sni", "alerts", "ja3", "ja3s", "ja4"] {
        assert!(tls.get(k).is_some(), "tls lacks {k}");
    }
    let alert = &doc["flows"][2]["tls"]["alerts"][0];
    assert_eq!(alert["from"], "server");
    assert_eq!(alert["level"], "fatal");
    assert_eq!(alert["description"], "protocol_version");
    assert_eq!(doc["flows"][2]["client"]["ip"], "2001:db8::10");

    let f = &doc["findings"][0];
    for k in [
        "kind", "severity", "flow", "ts", "frame", "message", "evidence",
    ] {
        assert!(f.get(k).is_some(), "finding lacks {k}");
    }
}

#[test]
fn json_order_is_deterministic() {
    let doc = json_doc();
    let ids: Vec<&str> = doc["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, REPORT_ORDER);

    let found: Vec<(String, u64, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["flow"].as_str().unwrap().to_string(),
                f["frame"].as_u64().unwrap(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, u64, String)> = [
        ("a-1", 5, "cleartext_auth_offered"),
        ("a-1", 9, "cleartext_credentials"),
        ("a-1", 14, "cleartext_mail"),
        ("a-2", 13, "certificate_problem"),
        ("a-3", 53, "tls_handshake_failure"),
        ("a-4", 52, "tls_mode_mismatch"),
        ("b-1", 5, "starttls_not_used"),
        ("b-1", 6, "starttls_injection"),
        ("", 30, "auth_brute_force"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), *b, c.to_string()))
    .collect();
    assert_eq!(found, expected);

    // Captures in the order capture() was called.
    assert_eq!(doc["captures"][0]["path"], "a.pcap");
    assert_eq!(doc["captures"][1]["path"], "b.pcap");

    // The same input in another arrival order gives the same bytes.
    let first = run(Format::Json, SinkOptions::default()).0.text();
    let out = Shared::default();
    let mut sink = make_sink(Format::Json, Box::new(out.clone()), SinkOptions::default());
    let mut flows = arrival_order();
    flows.reverse();
    // a.pcap must still be seen first for the same order: its flows lead after reversing.
    flows.rotate_left(1);
    for (f, fs) in &flows {
        sink.flow(f, fs).unwrap();
    }
    sink.capture(&capture("a.pcap", 60, 0, 5_000)).unwrap();
    sink.capture(&capture("b.pcap", 8, -60_000, -59_000))
        .unwrap();
    let wide = run_wide();
    sink.finish(&wide, &summary_of(&flows, &wide)).unwrap();
    assert_eq!(out.text(), first);
}

#[test]
fn json_lists_are_present_when_empty() {
    let out = Shared::default();
    let mut sink = make_sink(Format::Json, Box::new(out.clone()), SinkOptions::default());
    sink.capture(&capture("empty.pcap", 0, 0, 0)).unwrap();
    sink.finish(&[], &Default::default()).unwrap();
    let doc: Value = serde_json::from_str(&out.text()).unwrap();
    assert_eq!(doc["flows"], Value::Array(vec![]));
    assert_eq!(doc["findings"], Value::Array(vec![]));
    assert!(schema_errors(&doc).is_empty());
}

fn lines(text: &str) -> Vec<Value> {
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Without a live input, a run of flows is not flushed line by line nor flow by flow (no
/// write per line on a big file run): at most once a second, and at the end.
#[test]
fn streaming_sinks_flush_a_file_run_at_most_once_a_second() {
    for format in [Format::Ndjson, Format::Ecs] {
        let out = Shared::default();
        let mut sink = make_sink(format, Box::new(out.clone()), SinkOptions::default());
        let (plain, plain_findings) = plaintext_auth();
        for _ in 0..50 {
            sink.flow(&plain, &plain_findings).unwrap();
        }
        assert_eq!(*out.flushes.borrow(), 0, "{format:?}");
        let wide = run_wide();
        let flows = vec![(plain, plain_findings)];
        sink.finish(&wide, &summary_of(&flows, &wide)).unwrap();
        assert_eq!(*out.flushes.borrow(), 1, "{format:?}: flushed at the end");
    }
}

#[test]
fn ndjson_streams_one_object_per_line() {
    let out = Shared::default();
    let opts = SinkOptions {
        flush_each_flow: true,
        ..Default::default()
    };
    let mut sink = make_sink(Format::Ndjson, Box::new(out.clone()), opts);
    let (plain, plain_findings) = plaintext_auth();
    sink.flow(&plain, &plain_findings).unwrap();

    // Written before finish(): the flow line, then its findings in report order.
    let so_far = lines(&out.text());
    assert_eq!(so_far.len(), 4);
    assert_eq!(so_far[0]["event_type"], "flow");
    assert_eq!(so_far[0]["id"], "a-1");
    assert_eq!(so_far[0]["class"], "plaintext");
    assert_eq!(so_far[0]["smtp"]["auth"][0]["username"], "alice");
    let frames: Vec<u64> = so_far[1..]
        .iter()
        .map(|l| {
            assert_eq!(l["event_type"], "finding");
            assert_eq!(l["flow"], "a-1");
            l["frame"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(frames, vec![5, 9, 14]);
    assert_eq!(
        *out.flushes.borrow(),
        1,
        "one flush per flow with flush_each_flow"
    );

    let cap = capture("a.pcap", 60, 0, 5_000);
    sink.capture(&cap).unwrap();
    let wide = run_wide();
    let flows = vec![(plain, plain_findings)];
    sink.finish(&wide, &summary_of(&flows, &wide)).unwrap();

    let all = lines(&out.text());
    let types: Vec<&str> = all
        .iter()
        .map(|l| l["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "flow", "finding", "finding", "finding", "capture", "finding", "summary"
        ]
    );
    assert_eq!(all[4]["path"], "a.pcap");
    assert_eq!(all[4]["packets"], 60);
    assert_eq!(all[5]["kind"], "auth_brute_force");
    let summary = &all[6];
    assert_eq!(summary["schema_version"], 1);
    assert_eq!(summary["tool"]["name"], "smtpaudit");
    assert_eq!(summary["flows"], 1);
    assert_eq!(summary["findings"]["critical"], 1);
}

#[test]
fn ndjson_flow_lines_equal_the_json_flows() {
    let doc = json_doc();
    let (out, marks) = run(Format::Ndjson, SinkOptions::default());
    // Every flow() call wrote something at once.
    let mut last = 0;
    for (_, n) in marks {
        assert!(n > last);
        last = n;
    }
    for line in lines(&out.text()) {
        if line["event_type"] != "flow" {
            continue;
        }
        let mut obj = line.as_object().unwrap().clone();
        obj.remove("event_type");
        let id = obj["id"].clone();
        let in_doc = doc["flows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap();
        assert_eq!(&Value::Object(obj), in_doc);
    }
}

#[test]
fn ecs_lines_carry_the_key_fields() {
    let (out, _) = run(Format::Ecs, SinkOptions::default());
    let all = lines(&out.text());
    let by_dataset =
        |ds: &str| -> Vec<&Value> { all.iter().filter(|l| l["event"]["dataset"] == ds).collect() };
    assert_eq!(by_dataset("smtpaudit.flow").len(), 5);
    assert_eq!(by_dataset("smtpaudit.finding").len(), 9);
    assert_eq!(by_dataset("smtpaudit.capture").len(), 2);
    assert_eq!(by_dataset("smtpaudit.summary").len(), 1);
    for l in &all {
        assert_eq!(l["ecs"]["version"], "9.4.0");
        assert_eq!(l["event"]["module"], "smtpaudit");
        assert!(l["@timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(
            l.get("event_type").is_none(),
            "ecs uses event.kind, not event_type"
        );
    }

    let flow = |id: &str| {
        *by_dataset("smtpaudit.flow")
            .iter()
            .find(|l| l["smtpaudit"]["flow"]["id"] == id)
            .unwrap()
    };
    let plain = flow("a-1");
    assert_eq!(plain["@timestamp"], "2026-01-31T12:00:00.000000Z");
    assert_eq!(plain["event"]["kind"], "event");
    assert_eq!(plain["event"]["category"], serde_json::json!(["network"]));
    assert_eq!(plain["event"]["duration"], 2_500_000_000_i64);
    assert_eq!(plain["event"]["outcome"], "failure", "last AUTH failed");
    assert_eq!(plain["source"]["ip"], "192.0.2.10");
    assert_eq!(plain["source"]["port"], 50123);
    assert_eq!(plain["destination"]["ip"], "198.51.100.7");
    assert_eq!(plain["destination"]["port"], 25);
    assert_eq!(plain["network"]["transport"], "tcp");
    assert_eq!(plain["network"]["type"], "ipv4");
    assert_eq!(plain["network"]["protocol"], "smtp");
    assert!(
        plain["network"]["community_id"]
            .as_str()
            .unwrap()
            .starts_with("1:")
    );
    assert_eq!(plain["user"]["name"], "alice");
    assert_eq!(
        plain["related"]["user"],
        serde_json::json!(["alice", "bob"])
    );
    assert_eq!(plain["smtpaudit"]["class"], "plaintext");
    assert_eq!(plain["smtpaudit"]["smtp"]["auth"][1]["reply"], 535);
    assert!(plain.get("tls").is_none());

    let st = flow("a-2");
    assert_eq!(st["tls"]["version"], "1.2");
    assert_eq!(st["tls"]["version_protocol"], "tls");
    assert_eq!(st["tls"]["cipher"], "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    assert_eq!(st["tls"]["established"], true);
    assert_eq!(st["tls"]["client"]["server_name"], "mail.example.org");
    assert_eq!(
        st["tls"]["client"]["ja3"],
        "e7d705a3286e19ea42f587b344ee6865"
    );
    assert_eq!(
        st["tls"]["server"]["ja3s"],
        "ccc514751b175866924439bdbb5bba34"
    );
    assert_eq!(
        st["smtpaudit"]["tls"]["ja4"],
        "t12d1209h2_d34a8e72043a_b39be8c56a14"
    );
    assert_eq!(st["smtpaudit"]["tls"]["handshake"], "complete");
    assert_eq!(st["event"]["outcome"], "success");

    let failed = flow("a-3");
    assert_eq!(failed["network"]["type"], "ipv6");
    assert_eq!(failed["tls"]["established"], false);
    assert_eq!(failed["event"]["outcome"], "failure");
    assert_eq!(
        failed["smtpaudit"]["tls"]["alerts"][0]["description"],
        "protocol_version"
    );

    let findings = by_dataset("smtpaudit.finding");
    let cred = findings
        .iter()
        .find(|l| l["rule"]["name"] == "cleartext_credentials")
        .unwrap();
    assert_eq!(cred["event"]["kind"], "alert");
    assert_eq!(
        cred["event"]["category"],
        serde_json::json!(["network", "authentication"])
    );
    assert_eq!(cred["event"]["severity"], 99);
    assert_eq!(cred["user"]["name"], "alice");
    assert_eq!(cred["source"]["ip"], "192.0.2.10");
    assert_eq!(cred["smtpaudit"]["finding"]["frame"], 9);
    assert_eq!(cred["smtpaudit"]["finding"]["severity"], "critical");
    assert_eq!(
        cred["smtpaudit"]["finding"]["evidence"]["mechanism"],
        "PLAIN"
    );
    assert_eq!(
        cred["network"]["community_id"],
        plain["network"]["community_id"]
    );
    let brute = findings
        .iter()
        .find(|l| l["rule"]["id"] == "auth_brute_force")
        .unwrap();
    assert_eq!(brute["event"]["severity"], 73);
    assert!(brute.get("source").is_none());

    let cap = &by_dataset("smtpaudit.capture")[0];
    assert_eq!(cap["file"]["path"], "a.pcap");
    assert_eq!(cap["smtpaudit"]["capture"]["packets"], 60);
    let sum = &by_dataset("smtpaudit.summary")[0];
    assert_eq!(sum["smtpaudit"]["summary"]["flows"], 5);
    assert_eq!(sum["smtpaudit"]["schema_version"], 1);
    // Stamped with capture time (the latest seen), never the wall clock.
    assert_eq!(sum["@timestamp"], "2026-01-31T12:00:05.000000Z");
}

fn text_report(color: bool) -> String {
    let opts = SinkOptions {
        color,
        ..Default::default()
    };
    run(Format::Text, opts).0.text()
}

#[test]
fn text_summarises_for_people() {
    let t = text_report(false);
    println!("{t}");
    assert!(!t.contains('\x1b'), "ANSI escape without colour");
    let first = t.lines().next().unwrap();
    assert!(
        first.contains("2 captures, 68 packets, 5 mail flows"),
        "{first}"
    );
    assert!(t.contains("warning: truncated packet record at byte 4242"));
    assert!(t.contains("Flows: 2 plaintext, 1 starttls, 1 implicit_tls, 1 unknown"));
    // Nine findings, eight problems: the AUTH offered in clear explains the leak.
    assert!(
        t.contains("Problems: 8 (1 critical, 2 high, 3 medium, 2 low, 0 info) from 9 findings")
    );

    // Severity groups, most severe first.
    let pos = |needle: &str| {
        t.find(needle)
            .unwrap_or_else(|| panic!("missing {needle:?}"))
    };
    assert!(pos("\nCRITICAL (1 problem)") < pos("\nHIGH (2 problems)"));
    assert!(pos("\nHIGH (2 problems)") < pos("\nMEDIUM (3 problems)"));
    assert!(pos("\nMEDIUM (3 problems)") < pos("\nLOW (2 problems)"));
    assert!(!t.contains("\nINFO"));

    // The cause first, its symptom under it with its frame.
    assert!(t.contains("  cleartext_auth_offered -> cleartext_credentials (1)"));
    assert!(t.contains(
        "192.0.2.10:50123 -> 198.51.100.7:25  a.pcap  frame 5  AUTH PLAIN LOGIN offered"
    ));
    assert!(t.contains("      -> cleartext_credentials  frame 9  AUTH PLAIN"));
    assert!(t.contains("[2001:db8::10]:40000 -> [2001:db8::25]:465"));
    // Port 25 relay is STARTTLS only (RFC 8314): the remedy does not send it to 465.
    assert!(t.contains(
        "remedy: port 25 carries relay with STARTTLS only (RFC 3207, RFC 8314): set the client \
         to plaintext SMTP with STARTTLS for port 25, not TLS-on-connect"
    ));
    assert!(t.contains("(run-wide)"));

    // Posture table, within 120 columns.
    assert!(t.contains("SERVER"));
    assert!(t.contains("AUTH OFFERED  AUTH IN CLEAR"));
    let table = &t[pos("\nServers")..];
    assert!(table.lines().all(|l| l.chars().count() <= 120), "{table}");
    let row = |server: &str| {
        t.lines()
            .find(|l| l.trim_start().starts_with(server))
            .unwrap_or_else(|| panic!("no row for {server}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // 198.51.100.7:25: one plaintext flow with AUTH offered in clear, one mismatch that did
    // not complete a handshake.
    assert_eq!(
        row("198.51.100.7:25 "),
        "198.51.100.7:25 2 plain 1, unknown 1 never - 1 of 1 1 of 2 1 (mode 1)"
    );
    assert_eq!(
        row("198.51.100.7:587"),
        "198.51.100.7:587 1 starttls 1 always 1.2 no no 0"
    );
    assert_eq!(
        row("[2001:db8::25]:465"),
        "[2001:db8::25]:465 1 tls 1 - - - - 1 (tls 1)"
    );
}

#[test]
fn text_mode_mismatch_remedy_follows_the_tls_side() {
    let out = Shared::default();
    let mut sink = make_sink(Format::Text, Box::new(out.clone()), SinkOptions::default());
    let (f, mut fs) = mode_mismatch();
    fs[0] = fs[0].clone().with("tls_side", "server");
    sink.flow(&f, &fs).unwrap();
    sink.finish(&[], &summary_of(&[(f, fs)], &[])).unwrap();
    let t = out.text();
    assert!(t.contains("speaks TLS from the first byte"), "{t}");
    assert!(
        !t.contains("set the client to plaintext SMTP with STARTTLS"),
        "{t}"
    );
}

#[test]
fn text_colours_only_when_asked() {
    let t = text_report(true);
    assert!(t.contains("\x1b[1;31mCRITICAL (1 problem)\x1b[0m"));
    assert_eq!(
        strip_ansi(&t),
        text_report(false),
        "colour changes nothing but escapes"
    );
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            for d in it.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn closed_pipe_surfaces_as_broken_pipe() {
    let (f, fs) = plaintext_auth();
    for format in [Format::Ndjson, Format::Ecs] {
        let mut sink = make_sink(format, Box::new(ClosedPipe), SinkOptions::default());
        let err = sink.flow(&f, &fs).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{format:?}");
    }
    for format in [Format::Json, Format::Text, Format::Ndjson, Format::Ecs] {
        let mut sink = make_sink(format, Box::new(ClosedPipe), SinkOptions::default());
        let err = sink.finish(&[], &Default::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{format:?}");
    }
}

#[test]
fn documented_example_validates() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.md");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("```json\n").unwrap() + "```json\n".len();
    let len = text[start..].find("```").unwrap();
    let doc: Value = serde_json::from_str(&text[start..start + len]).unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "docs/report.md example: {errors:#?}");
}
