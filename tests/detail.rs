//! `--detail lean` (the default) and `--detail full`: lean flow records keep every pinned
//! field (null included) and leave out the rest when it says nothing; full records keep all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

fn flow_line(capture: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_smtpaudit"))
        .args(["--format", "ndjson", "-q"])
        .args(args)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/").to_string() + capture)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["event_type"] == "flow")
        .unwrap()
}

const TLS: &str = "smtp-starttls-587-tls13-auth-plain.pcap";

#[test]
fn lean_keeps_every_pinned_field_null_included() {
    let flow = flow_line(TLS, &[]);
    for k in [
        "id", "client", "server", "start", "end", "class", "smtp", "tls",
    ] {
        assert!(flow.get(k).is_some(), "{k} missing");
    }
    let smtp = &flow["smtp"];
    for k in ["banner", "helo", "capabilities", "auth", "transactions"] {
        assert!(smtp.get(k).is_some(), "smtp.{k} missing");
    }
    for k in ["offered", "issued", "reply"] {
        assert!(smtp["starttls"].get(k).is_some(), "starttls.{k} missing");
    }
    let tls = &flow["tls"];
    for k in [
        "version",
        "cipher",
        "sni",
        "handshake",
        "alerts",
        "ja3",
        "ja3s",
        "ja4",
    ] {
        assert!(tls.get(k).is_some(), "tls.{k} missing");
    }
    // A plaintext flow: `tls` is null, written.
    let plain = flow_line("smtp-plain-auth-login.pcap", &[]);
    assert_eq!(plain.get("tls"), Some(&Value::Null));
}

#[test]
fn lean_leaves_out_the_client_hello_and_counters_full_keeps_them() {
    let lean = flow_line(TLS, &[]);
    assert!(lean["tls"].get("client").is_none());
    assert!(lean["tls"].get("ja3_full").is_none());
    assert!(lean["tcp"].get("to_server").is_none());
    assert!(lean["smtp"].get("stats").is_none());
    // A handshake seen to complete in clear: the deciding rule says nothing more.
    assert_eq!(lean["tls"]["handshake"], "complete");
    assert!(lean["tls"].get("outcome_evidence").is_none());

    let full = flow_line(TLS, &["--detail", "full"]);
    assert!(
        full["tls"]["client"]["ciphers"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    assert!(full["tls"]["ja3_full"].is_string());
    assert!(
        full["tcp"]["to_server"]["packets"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    assert!(full["smtp"]["stats"]["reply_codes"].is_array());
    assert_eq!(full["tcp"]["roles"], "syn");
    assert_eq!(full["tls"]["outcome_evidence"]["confidence"], "certain");

    // What lean writes (scalars and arrays), full writes the same.
    for k in ["smtp", "tls"] {
        for (name, v) in lean[k].as_object().unwrap() {
            if !v.is_object() {
                assert_eq!(Some(v), full[k].get(name), "{k}.{name}");
            }
        }
    }
}

#[test]
fn lean_keeps_the_evidence_of_a_failed_handshake() {
    let lean = flow_line("smtps-465-tls12-no-shared-cipher.pcap", &[]);
    assert_eq!(lean["tls"]["handshake"], "failed");
    assert!(lean["tls"]["outcome_evidence"]["rule"].is_string());
}
