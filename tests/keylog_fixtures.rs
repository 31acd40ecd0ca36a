//! The fixtures recorded with the client's key log (`fixtures/keys/CAPTURE.keys`): with
//! `--keylog` (or the pcapng's own Decryption Secrets Block) the SMTP dialog inside TLS is
//! analysed, and what it says matches tshark's decryption of the same capture with the same
//! key log (`-o tls.keylog_file:`); the tshark half skips with a message when tshark is
//! missing. Without keys the same captures say `tls.decrypted: false`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// AUTH inside TLS: mechanism, user, outcome.
type Auth = Option<(&'static str, &'static str, &'static str)>;

/// (capture, TLS version, class, AUTH, the client's alert when the handshake is rejected).
const CASES: &[(&str, &str, &str, Auth, Option<&str>)] = &[
    (
        "smtp-587-keylog-tls13-auth-plain.pcap",
        "TLSv1.3",
        "starttls",
        Some(("PLAIN", "alice@test.example", "success")),
        None,
    ),
    (
        "smtp-587-keylog-tls12-gcm-auth-login-fail.pcap",
        "TLSv1.2",
        "starttls",
        Some(("LOGIN", "bob@test.example", "failure")),
        None,
    ),
    (
        "smtps-465-keylog-tls12-chacha20-auth-plain.pcap",
        "TLSv1.2",
        "implicit_tls",
        Some(("PLAIN", "alice@test.example", "success")),
        None,
    ),
    (
        "smtp-587-keylog-tls12-cbc-sha1.pcap",
        "TLSv1.2",
        "starttls",
        Some(("PLAIN", "alice@test.example", "success")),
        None,
    ),
    (
        "smtps-465-keylog-tls13-client-rejects-cert.pcap",
        "TLSv1.3",
        "implicit_tls",
        None,
        Some("unknown_ca"),
    ),
    (
        "smtp-587-keylog-tls13-aes128-ccm-auth-plain.pcap",
        "TLSv1.3",
        "starttls",
        Some(("PLAIN", "alice@test.example", "success")),
        None,
    ),
    (
        "smtps-465-keylog-tls12-dhe-aes256-ccm-auth-login-fail.pcap",
        "TLSv1.2",
        "implicit_tls",
        Some(("LOGIN", "bob@test.example", "failure")),
        None,
    ),
    // No AUTH: the greeting and the message are what decryption shows.
    (
        "smtps-465-keylog-tls13-aes128-ccm8.pcap",
        "TLSv1.3",
        "implicit_tls",
        None,
        None,
    ),
];

/// The suite each capture negotiated, as tshark reads its ServerHello.
const SUITES: &[(&str, &str)] = &[
    ("smtp-587-keylog-tls13-aes128-ccm-auth-plain.pcap", "0x1304"),
    (
        "smtps-465-keylog-tls12-dhe-aes256-ccm-auth-login-fail.pcap",
        "0xc09f",
    ),
    ("smtps-465-keylog-tls13-aes128-ccm8.pcap", "0x1305"),
];

fn keys(capture: &str) -> PathBuf {
    common::fixtures()
        .join("keys")
        .join(format!("{capture}.keys"))
}

fn only_flow(doc: &Value) -> &Value {
    let flows = doc["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1);
    &flows[0]
}

fn kinds(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn decrypted_dialogs_say_what_ran_inside_tls() {
    for &(capture, version, class, auth, alert) in CASES {
        let path = common::fixtures().join(capture);
        let k = keys(capture);
        let (doc, out) = common::run_json(&path, &["--keylog", k.to_str().unwrap()]);
        assert!(out.status.success(), "{capture}");
        let f = only_flow(&doc);
        assert_eq!(f["class"], class, "{capture}");
        let tls = &f["tls"];
        assert_eq!(tls["version"], version, "{capture}");
        assert_eq!(tls["decrypted"], true, "{capture}");
        assert_eq!(tls["key_source"], "keylog", "{capture}");
        assert_eq!(doc["summary"]["tls_decryption"]["decrypted"], 1);
        // A certificate is read in both versions (TLS 1.3's only after decryption).
        assert!(
            tls["certificate"]["subject"]
                .as_str()
                .unwrap()
                .contains("mail.test.example"),
            "{capture}"
        );
        for dir in ["to_server", "to_client"] {
            assert!(tls[dir].get("undecryptable_records").is_none(), "{capture}");
        }
        let found = kinds(&doc);
        assert!(
            !found.iter().any(|k| k == "cleartext_credentials"),
            "{capture}: AUTH inside TLS is not cleartext: {found:?}"
        );
        match auth {
            Some((mech, user, outcome)) => {
                let a = &f["smtp"]["auth"][0];
                assert_eq!(a["mechanism"], mech, "{capture}");
                assert_eq!(a["username"], user, "{capture}");
                assert_eq!(a["outcome"], outcome, "{capture}");
                assert_eq!(a["in_cleartext"], false, "{capture}");
                if class == "starttls" {
                    let caps = f["smtp"]["capabilities_after_starttls"].as_array().unwrap();
                    assert!(
                        caps.iter()
                            .any(|c| c.as_str().unwrap().starts_with("AUTH "))
                    );
                    assert!(!found.iter().any(|k| k == "starttls_ignored"), "{capture}");
                }
            }
            None if alert.is_none() => {
                assert!(f["smtp"]["banner"].as_str().unwrap().starts_with("220 "));
                assert_eq!(f["smtp"]["messages"], 1, "{capture}");
            }
            None => {
                let a = &tls["alerts"][0];
                assert_eq!(a["description"], alert.unwrap(), "{capture}");
                assert_eq!(a["level"], "fatal", "{capture}");
                assert_eq!(tls["outcome_evidence"]["confidence"], "certain");
                assert_eq!(tls["outcome_evidence"]["rule"], "fatal_alert");
            }
        }
        // Without keys: the same handshake facts, nothing decrypted.
        let (bare, _) = common::run_json(&path, &[]);
        let bf = only_flow(&bare);
        assert_eq!(bf["tls"]["decrypted"], false, "{capture}");
        assert!(bf["tls"].get("key_source").is_none());
        assert_eq!(bare["summary"]["tls_decryption"]["not_decrypted"], 1);
        assert_eq!(bf["tls"]["version"], version);
    }
}

#[test]
fn pcapng_decryption_secrets_block_is_used_without_keylog() {
    let path = common::fixtures().join("smtp-587-keylog-tls13-auth-plain-dsb.pcapng");
    let (doc, _) = common::run_json(&path, &[]);
    let f = only_flow(&doc);
    assert_eq!(f["tls"]["decrypted"], true);
    assert_eq!(f["tls"]["key_source"], "pcapng_dsb");
    assert_eq!(f["smtp"]["auth"][0]["outcome"], "success");
}

#[test]
fn malformed_key_log_lines_are_warnings_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(keys(CASES[0].0)).unwrap();
    let secret_hex = good.split_whitespace().nth(2).unwrap().to_string();
    let bad = format!("CLIENT_RANDOM nothex {secret_hex}\nGARBAGE\n{good}");
    let kl = dir.path().join("bad.keys");
    std::fs::write(&kl, bad).unwrap();
    let path = common::fixtures().join(CASES[0].0);
    let (doc, out) = common::run_json(&path, &["--keylog", kl.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(only_flow(&doc)["tls"]["decrypted"], true);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 1: client random is not 32 bytes of hex"),
        "{err}"
    );
    assert!(
        err.contains("line 2: not `LABEL CLIENT_RANDOM SECRET`"),
        "{err}"
    );
    assert!(!err.contains(&secret_hex), "a secret on stderr");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&secret_hex));
    // A key log that cannot be opened is an error that names the path only.
    let out = common::run(&["--keylog", "/nonexistent/keys", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

fn tshark() -> Option<&'static str> {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: tshark not installed");
    }
    ok.then_some("tshark")
}

/// tshark's SMTP facts inside TLS: (AUTH mechanism, final AUTH reply code, alert descriptions).
fn tshark_facts(path: &Path, keys: &Path) -> (Vec<String>, Vec<u64>, Vec<u64>) {
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(path)
        .arg("-o")
        .arg(format!("tls.keylog_file:{}", keys.display()))
        .args([
            "-d",
            "tcp.port==465,tls",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
        ])
        .args([
            "-e",
            "smtp.req.command",
            "-e",
            "smtp.req.parameter",
            "-e",
            "smtp.response.code",
        ])
        .args(["-e", "tls.alert_message.desc"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut mechs, mut codes, mut alerts) = (Vec::new(), Vec::new(), Vec::new());
    let mut after_auth = false;
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let (cmd, param, code, alert) = (cols[0], cols[1], cols[2], cols[3]);
        if cmd.eq_ignore_ascii_case("AUTH") {
            mechs.push(param.split(' ').next().unwrap().to_uppercase());
            after_auth = true;
        }
        if let Ok(c) = code.parse::<u64>() {
            if after_auth && c != 334 {
                codes.push(c);
                after_auth = false;
            }
        }
        alerts.extend(alert.split(',').filter_map(|a| a.parse::<u64>().ok()));
    }
    (mechs, codes, alerts)
}

#[test]
fn ccm_captures_negotiated_ccm() {
    let Some(_) = tshark() else { return };
    for &(capture, suite) in SUITES {
        let out = Command::new("tshark")
            .arg("-n")
            .arg("-r")
            .arg(common::fixtures().join(capture))
            .args(["-d", "tcp.port==465,tls", "-Y", "tls.handshake.type == 2"])
            .args(["-T", "fields", "-e", "tls.handshake.ciphersuite"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.trim(), suite, "{capture}");
    }
}

#[test]
fn decrypted_facts_match_tshark() {
    let Some(_) = tshark() else { return };
    for &(capture, ..) in CASES {
        let path = common::fixtures().join(capture);
        let k = keys(capture);
        let (mechs, codes, alerts) = tshark_facts(&path, &k);
        let (doc, _) = common::run_json(&path, &["--keylog", k.to_str().unwrap()]);
        let f = only_flow(&doc);
        let ours: Vec<String> = f["smtp"]["auth"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x["mechanism"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(ours, mechs, "{capture}: AUTH mechanisms");
        let our_codes: Vec<u64> = f["smtp"]["auth"]
            .as_array()
            .map(|a| a.iter().map(|x| x["reply"].as_u64().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(our_codes, codes, "{capture}: AUTH replies");
        // Alert descriptions by code, as tshark numbers them.
        let names = [
            (0, "close_notify"),
            (48, "unknown_ca"),
            (42, "bad_certificate"),
        ];
        let our_alerts: Vec<u64> = f["tls"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let d = a["description"].as_str().unwrap();
                names
                    .iter()
                    .find(|(_, n)| *n == d)
                    .map(|(c, _)| *c)
                    .unwrap()
            })
            .collect();
        assert_eq!(our_alerts, alerts, "{capture}: alerts");
    }
}

/// A TLS 1.2 renegotiation inside the encrypted stream (openssl s_client `R`): the session
/// follows the second handshake (its randoms from the decrypted hellos, the key log's second
/// CLIENT_RANDOM line) and each side's ChangeCipherSpec switches it to the new keys, so the
/// commands after it decrypt like those before; tshark reads the same commands.
#[test]
fn renegotiation_is_followed() {
    let capture = "smtps-465-keylog-tls12-renegotiation.pcap";
    let path = common::fixtures().join(capture);
    let k = keys(capture);
    let full = ["--keylog", k.to_str().unwrap(), "--detail", "full"];
    let (doc, _) = common::run_json(&path, &full);
    let f = only_flow(&doc);
    let tls = &f["tls"];
    assert_eq!(tls["decrypted"], true);
    for dir in ["to_server", "to_client"] {
        assert_eq!(tls[dir]["renegotiations"], 1, "{dir}");
        assert!(tls[dir].get("undecryptable_records").is_none(), "{dir}");
    }
    let names: Vec<&str> = tls["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["description"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["close_notify", "close_notify"]);
    let stats = &f["smtp"]["stats"];
    let codes: Vec<u64> = stats["reply_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(codes, [220, 250, 250, 221]);
    // Without the key log's second line the records after the renegotiation fail.
    let dir = tempfile::tempdir().unwrap();
    let first = std::fs::read_to_string(&k)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CLIENT_RANDOM"))
        .unwrap()
        .to_string();
    let only_first = dir.path().join("first.keys");
    std::fs::write(&only_first, format!("{first}\n")).unwrap();
    let (doc, _) = common::run_json(
        &path,
        &["--keylog", only_first.to_str().unwrap(), "--detail", "full"],
    );
    let tls = &only_flow(&doc)["tls"];
    assert_eq!(tls["decrypted"], true);
    for dir in ["to_server", "to_client"] {
        assert!(tls[dir].get("renegotiations").is_none(), "{dir}");
        assert!(
            tls[dir]["undecryptable_records"].as_u64().unwrap() > 0,
            "{dir}"
        );
    }

    let Some(_) = tshark() else { return };
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(&path)
        .arg("-o")
        .arg(format!("tls.keylog_file:{}", k.display()))
        .args(["-d", "tcp.port==465,tls", "-Y", "smtp.req"])
        .args(["-T", "fields", "-e", "smtp.req.command"])
        .output()
        .unwrap();
    let cmds: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.to_uppercase())
        .collect();
    assert_eq!(cmds, ["EHLO", "NOOP", "QUIT"]);
    assert_eq!(stats["commands"], cmds.len() as u64);
}

fn flow_from(doc: &Value, port: u64) -> &Value {
    doc["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["client"]["port"] == port)
        .unwrap()
}

/// The client's SMTP commands tshark decrypts in one connection of a capture.
fn tshark_commands(path: &Path, keys: &Path, port: u64) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(path)
        .arg("-o")
        .arg(format!("tls.keylog_file:{}", keys.display()))
        .args(["-d", "tcp.port==465,tls", "-Y"])
        .arg(format!("smtp.req && tcp.srcport == {port}"))
        .args(["-T", "fields", "-e", "smtp.req.command"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.to_uppercase())
        .collect()
}

/// TLS 1.3 0-RTT: the second connection resumes with the first one's ticket and sends EHLO
/// as early data. Accepted, it decrypts with CLIENT_EARLY_TRAFFIC_SECRET and reaches the SMTP
/// session as tshark reads it; refused by the server (a new s_server that cannot read the
/// ticket), the server never read it, so neither does the session, and nothing counts as
/// undecryptable. Without the early secret the early records are passed over the same way.
#[test]
fn early_data_is_decrypted_when_the_server_takes_it() {
    let cases = [
        ("smtps-465-keylog-tls13-early-data.pcap", true),
        ("smtps-465-keylog-tls13-early-data-rejected.pcap", false),
    ];
    for (capture, accepted) in cases {
        let path = common::fixtures().join(capture);
        let k = keys(capture);
        let full = ["--keylog", k.to_str().unwrap(), "--detail", "full"];
        let (doc, _) = common::run_json(&path, &full);
        let flows = doc["flows"].as_array().unwrap();
        assert_eq!(flows.len(), 2, "{capture}");
        let second = flows
            .iter()
            .max_by_key(|f| f["client"]["port"].as_u64().unwrap())
            .unwrap();
        let port = second["client"]["port"].as_u64().unwrap();
        let tls = &second["tls"];
        assert_eq!(tls["decrypted"], true, "{capture}");
        assert_eq!(tls["client"]["early_data"], true, "{capture}");
        for dir in ["to_server", "to_client"] {
            assert!(
                tls[dir].get("undecryptable_records").is_none(),
                "{capture} {dir}"
            );
        }
        let smtp = &second["smtp"];
        if accepted {
            assert_eq!(smtp["helo"], "client.test.example", "{capture}");
            assert_eq!(smtp["stats"]["commands"], 2, "{capture}");
        } else {
            assert!(smtp["helo"].is_null(), "{capture}");
            assert_eq!(smtp["stats"]["commands"], 1, "{capture}");
        }
        // Without the early secret: the early records are skipped, not failures.
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(&k).unwrap();
        let no_early: String = text
            .lines()
            .filter(|l| !l.starts_with("CLIENT_EARLY_TRAFFIC_SECRET"))
            .map(|l| format!("{l}\n"))
            .collect();
        let kl = dir.path().join("noearly.keys");
        std::fs::write(&kl, no_early).unwrap();
        let (doc, _) = common::run_json(
            &path,
            &["--keylog", kl.to_str().unwrap(), "--detail", "full"],
        );
        let f = flow_from(&doc, port);
        assert_eq!(f["tls"]["decrypted"], true, "{capture}");
        assert!(
            f["tls"]["to_server"].get("undecryptable_records").is_none(),
            "{capture}"
        );
        assert!(f["smtp"]["helo"].is_null(), "{capture}");

        if tshark().is_none() {
            continue;
        }
        // tshark decrypts the early EHLO whether or not the server took it.
        let cmds = tshark_commands(&path, &k, port);
        assert_eq!(cmds, ["EHLO", "QUIT"], "{capture}");
        let ours = smtp["stats"]["commands"].as_u64().unwrap() as usize;
        assert_eq!(ours, if accepted { cmds.len() } else { cmds.len() - 1 });
    }
}
