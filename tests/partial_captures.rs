//! Captures that hold less than the connection: cut by a snap length, one direction only,
//! begun mid-session; and a ClientHello sent after a refused STARTTLS. Each fixture is real
//! software (fixtures/generate.sh); the goldens pin every byte, these tests pin the facts
//! that matter and say why.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

fn json(fixture: &str) -> Value {
    let path = common::repo().join("fixtures").join(fixture);
    let (doc, out) = common::run_json(&path, &["--detail", "full"]);
    assert_eq!(out.status.code(), Some(0), "{fixture}");
    doc
}

fn only_flow(doc: &Value) -> &Value {
    let flows = doc["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1);
    &flows[0]
}

fn kinds(doc: &Value) -> Vec<&str> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect()
}

fn finding<'a>(doc: &'a Value, kind: &str) -> &'a Value {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} finding"))
}

#[test]
fn snap_length_cut_auth_plain_is_cleartext_credentials_with_a_warning() {
    let doc = json("smtp-plain-auth-plain-snaplen96.pcap");
    let warnings = doc["captures"][0]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    let w = warnings[0].as_str().unwrap();
    assert!(
        w.contains("cut by a snap length of 96 bytes"),
        "warning: {w}"
    );
    let flow = only_flow(&doc);
    assert_eq!(flow["class"], "plaintext");
    let auth = &flow["smtp"]["auth"][0];
    assert_eq!(auth["mechanism"], "PLAIN");
    assert_eq!(auth["username"], Value::Null);
    assert_eq!(auth["cut"], true);
    assert_eq!(auth["outcome"], "success");
    assert!(
        auth["username_partial"]
            .as_str()
            .unwrap()
            .starts_with("alice@")
    );
    let f = finding(&doc, "cleartext_credentials");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["frame"], auth["frame"]);
    assert_eq!(f["evidence"]["cut"], true);

    // The same warning on stderr, named by file.
    let out = common::run(&["fixtures/smtp-plain-auth-plain-snaplen96.pcap"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(
        "smtpaudit: warning: fixtures/smtp-plain-auth-plain-snaplen96.pcap: TCP payloads of "
    ));
}

/// `tcpdump -s 96` of a STARTTLS session: before, a plaintext flow with a false handshake
/// failure; now a STARTTLS flow whose outcome the capture cannot decide.
#[test]
fn snap_length_cut_starttls_is_starttls_and_undecided() {
    let doc = json("smtp-starttls-587-auth-plain-snaplen96.pcap");
    let flow = only_flow(&doc);
    assert_eq!(flow["class"], "starttls");
    assert_eq!(flow["smtp"]["starttls"]["reply"], 220);
    assert_eq!(flow["smtp"]["starttls"]["server_tls"], true);
    assert_eq!(flow["tls"]["handshake"], "incomplete");
    assert_eq!(
        flow["tls"]["outcome_evidence"]["rule"],
        "deciding_bytes_not_captured"
    );
    assert_eq!(flow["tls"]["outcome_evidence"]["confidence"], "likely");
    assert!(!kinds(&doc).contains(&"tls_handshake_failure"));
}

#[test]
fn server_side_only_auth_is_cleartext_credentials_from_the_235() {
    let doc = json("smtp-plain-auth-plain-server-side-only.pcap");
    let flow = only_flow(&doc);
    assert_eq!(flow["class"], "plaintext");
    let smtp = &flow["smtp"];
    assert_eq!(smtp["auth"][0]["inferred"], true);
    assert_eq!(smtp["auth"][0]["outcome"], "success");
    assert_eq!(smtp["transactions"], 1);
    let f = finding(&doc, "cleartext_credentials");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["evidence"]["inferred_from"], "server_replies");
    assert_eq!(f["evidence"]["username"], Value::Null);
    // The frame is the 235 reply's.
    assert_eq!(f["frame"], smtp["auth"][0]["frame"]);
}

#[test]
fn server_side_only_starttls_is_accepted_and_undecided() {
    let doc = json("smtp-starttls-587-server-side-only.pcap");
    let flow = only_flow(&doc);
    assert_eq!(flow["class"], "starttls");
    let st = &flow["smtp"]["starttls"];
    assert_eq!(
        (st["offered"].clone(), st["issued"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(st["reply"], 220);
    assert_eq!(flow["tls"]["version"], "TLSv1.3");
    assert_eq!(flow["tls"]["handshake"], "incomplete");
    assert_eq!(
        flow["tls"]["outcome_evidence"]["rule"],
        "client_side_not_captured"
    );
    assert!(kinds(&doc).is_empty(), "{:?}", kinds(&doc));
}

#[test]
fn server_side_only_mangled_starttls_is_stripped() {
    let doc = json("smtp-starttls-stripped-server-side-only.pcap");
    assert_eq!(kinds(&doc), ["starttls_stripped"]);
    assert_eq!(
        finding(&doc, "starttls_stripped")["evidence"]["capability"],
        "XXXXXXXA"
    );
}

/// One encrypted TLS 1.2 alert (26 bytes) at the start of a capture is one alert, not
/// thirteen, and no handshake failure.
#[test]
fn mid_session_encrypted_alert_is_not_a_failure() {
    let doc = json("smtps-465-tls12-midstream-close-notify.pcap");
    let flow = only_flow(&doc);
    let alerts = flow["tls"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["level"], "encrypted");
    assert_eq!(flow["tls"]["handshake"], "incomplete");
    assert_eq!(
        flow["tls"]["outcome_evidence"]["rule"],
        "handshake_not_captured"
    );
    assert!(kinds(&doc).is_empty(), "{:?}", kinds(&doc));
}

#[test]
fn client_hello_after_refused_starttls_is_a_failed_tls_attempt() {
    for (fixture, code) in [
        ("smtp-starttls-refused-454-s_client-hello.pcap", 454),
        ("smtp-starttls-not-offered-s_client-hello.pcap", 503),
    ] {
        let doc = json(fixture);
        let flow = only_flow(&doc);
        assert_eq!(flow["class"], "plaintext", "{fixture}");
        assert_eq!(flow["smtp"]["stats"]["non_smtp_bytes"], 0, "{fixture}");
        assert_eq!(flow["tls"]["handshake"], "failed", "{fixture}");
        assert!(flow["tls"]["sni"].is_string(), "{fixture}");
        let f = finding(&doc, "tls_handshake_failure");
        assert_eq!(f["evidence"]["rule"], "client_hello_after_starttls_refused");
        assert_eq!(f["evidence"]["starttls_refused_reply"], code);
        assert_eq!(f["frame"], flow["tls"]["client"]["frame"]);
        assert!(kinds(&doc).contains(&"starttls_refused"));
        // The text report names the cause in its remedy.
        let out = common::run(&["--color", "never", &format!("fixtures/{fixture}")]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("the client began TLS although the server refused STARTTLS"),
            "{text}"
        );
    }
}

#[test]
fn servers_table_fits_the_terminal() {
    // The widest rows of the fixtures (IPv6 servers, several failure kinds) within 120
    // columns by default, and as one block per server, wrapped, on a narrow terminal.
    let fixtures = [
        "fixtures/smtp-ipv6-auth-plain-starttls-not-used.pcap",
        "fixtures/smtp-587-tls-fails-then-plaintext-auth.pcap",
        "fixtures/smtp-conn-465-blocked-587-works.pcap",
    ];
    for (columns, limit) in [(None, 120), (Some("60"), 60)] {
        let mut cmd = std::process::Command::new(common::bin());
        cmd.current_dir(common::repo())
            .args(["--color", "never"])
            .args(fixtures)
            .env_remove("COLUMNS");
        if let Some(c) = columns {
            cmd.env("COLUMNS", c);
        }
        let out = cmd.output().expect("run smtpaudit");
        let text = String::from_utf8_lossy(&out.stdout);
        let table = &text[text.find("\nServers").expect("servers table")..];
        for line in table.lines() {
            assert!(
                line.chars().count() <= limit,
                "{columns:?}: {} columns: {line}",
                line.chars().count()
            );
        }
        assert!(table.contains("[2001:db8:25::25]:587"), "{table}");
        if columns.is_some() {
            assert!(table.contains("    failed: 1 (mode 1, tls 1)"), "{table}");
        }
    }
}
