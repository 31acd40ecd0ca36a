//! TLS decryption against Wireshark's own decryption captures (`wireshark-tls/` in the
//! shared corpus, `../shared/corpus` beside the repository or `$SMTPAUDIT_CORPUS`): each
//! capture is run with the key source its MANIFEST names (a key log, or the pcapng's own
//! Decryption Secrets Blocks), and every stream's decrypted byte counts, alerts and server
//! certificate are compared with what tshark 4.0.17 decrypted (`files[].expected`).
//!
//! What this decoder does not do yet is listed in [`KNOWN_GAPS`] with what it does instead,
//! so that a change on either side shows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn corpus() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SMTPAUDIT_CORPUS").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .map(|p| p.join("wireshark-tls"))
        .find(|p| p.join("MANIFEST.json").is_file());
    if found.is_none() {
        eprintln!("skipping: wireshark-tls corpus not found (set SMTPAUDIT_CORPUS)");
    }
    found
}

/// (capture, client endpoint, what we decrypt instead: client and server bytes).
const KNOWN_GAPS: &[(&str, &str, u64, u64)] = &[
    // TLS 1.3 draft 20 uses other labels in its key schedule: left encrypted.
    (
        "captures/tls13-20-chacha20poly1305.pcap",
        "10.42.0.1:40730",
        0,
        0,
    ),
    (
        "captures/tls13-20-chacha20poly1305.pcap",
        "10.42.0.1:40736",
        0,
        0,
    ),
];

fn run(dir: &Path, capture: &str, keylog: Option<&str>) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smtpaudit"));
    cmd.args([
        "--ports",
        "443,4433,8443",
        "--format",
        "json",
        "--threads",
        "1",
        // The per-direction decryption counters of a clean direction are left out of lean
        // records.
        "--detail",
        "full",
    ]);
    if let Some(k) = keylog {
        cmd.arg("--keylog").arg(dir.join(k));
    }
    cmd.arg(dir.join(capture));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{capture}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// RFC 2253 (`CN=a,O=b`) and ours (`O=b, CN=a`) as a sorted list of attributes.
fn dn(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .replace('\\', "")
        .split(',')
        .map(|p| p.trim().to_string())
        .collect();
    v.sort();
    v
}

fn flow<'a>(report: &'a Value, client: &str) -> &'a Value {
    report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            format!(
                "{}:{}",
                f["client"]["ip"].as_str().unwrap(),
                f["client"]["port"]
            ) == client
        })
        .unwrap_or_else(|| panic!("no flow from {client}"))
}

fn bytes(tls: &Value, dir: &str) -> u64 {
    tls[dir]["decrypted_bytes"].as_u64().unwrap_or(0)
}

#[test]
fn every_capture_decrypts_as_tshark_did() {
    let Some(dir) = corpus() else { return };
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let mut checked = 0;
    for file in manifest["files"].as_array().unwrap() {
        let capture = file["file"].as_str().unwrap();
        let expected = &file["expected"];
        let key_run = expected["key_run"].as_str().unwrap();
        let keylog = key_run.strip_prefix("keylog ");
        let report = run(&dir, capture, keylog);
        for s in expected["streams"].as_array().unwrap() {
            let client = s["client"].as_str().unwrap();
            let tls = &flow(&report, client)["tls"];
            let got = (bytes(tls, "to_server"), bytes(tls, "to_client"));
            if let Some(gap) = KNOWN_GAPS.iter().find(|g| g.0 == capture && g.1 == client) {
                assert_eq!(got, (gap.2, gap.3), "{capture} {client}: known gap changed");
                continue;
            }
            let where_ = format!("{capture} {client}");
            assert_eq!(tls["decrypted"], s["decrypted"], "{where_}: decrypted");
            let want = (
                s["decrypted_bytes"]["client_to_server"].as_u64().unwrap(),
                s["decrypted_bytes"]["server_to_client"].as_u64().unwrap(),
            );
            assert_eq!(got, want, "{where_}: decrypted bytes (client, server)");
            assert_eq!(
                tls["to_server"]["undecryptable_records"],
                Value::Null,
                "{where_}"
            );
            assert_eq!(
                tls["to_client"]["undecryptable_records"],
                Value::Null,
                "{where_}"
            );
            let source = if key_run == "dsb_embedded" {
                "pcapng_dsb"
            } else {
                "keylog"
            };
            assert_eq!(tls["key_source"], source, "{where_}: key source");
            // Alerts by name: "close_notify from client".
            let alerts: Vec<String> = tls["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    format!(
                        "{} from {}",
                        a["description"].as_str().unwrap_or("encrypted"),
                        a["from"].as_str().unwrap()
                    )
                })
                .collect();
            let want_alerts: Vec<String> = s["alerts_with_keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            assert_eq!(alerts, want_alerts, "{where_}: alerts");
            let certs = s["server_certificate_with_keys"].as_array().unwrap();
            match certs.first() {
                Some(c) => assert_eq!(
                    dn(tls["certificate"]["subject"].as_str().unwrap()),
                    dn(c.as_str().unwrap()),
                    "{where_}: certificate"
                ),
                None => assert_eq!(tls["certificate"], Value::Null, "{where_}: certificate"),
            }
            checked += 1;
        }
        // Without keys nothing is decrypted (the DSB capture carries its own: use the copy
        // without them).
        let bare = if key_run == "dsb_embedded" {
            "derived/tls12-dsb.stripped.pcapng"
        } else {
            capture
        };
        let report = run(&dir, bare, None);
        let counts = &report["summary"]["tls_decryption"];
        assert_eq!(counts["decrypted"], 0, "{bare} without keys");
        for f in report["flows"].as_array().unwrap() {
            assert_eq!(f["tls"]["decrypted"], false, "{bare} without keys");
            assert!(f["tls"].get("key_source").is_none());
        }
    }
    assert!(checked >= 12, "only {checked} streams compared");
}

#[test]
fn key_log_of_one_connection_decrypts_that_one_only() {
    let Some(dir) = corpus() else { return };
    let report = run(
        &dir,
        "derived/tls12-dsb.stripped.pcapng",
        Some("keys/tls12-dsb-1.keys"),
    );
    let counts = &report["summary"]["tls_decryption"];
    assert_eq!(
        (
            counts["decrypted"].as_u64(),
            counts["not_decrypted"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(flow(&report, "10.9.0.2:46800")["tls"]["decrypted"], true);
    assert_eq!(flow(&report, "10.9.0.2:46802")["tls"]["decrypted"], false);
}
