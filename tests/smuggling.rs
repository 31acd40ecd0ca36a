//! SMTP smuggling on the recorded fixtures: every variant against Postfix 3.7 with each
//! `smtpd_forbid_bare_newline` setting, against aiosmtpd and against Exim, with what each server really did;
//! the negatives and every other fixture without a false positive.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

const ALL: [&str; 8] = [
    "<LF>.<LF>",
    "<LF>.<CR><LF>",
    "<LF>.<CR>",
    "<CR><LF>.<LF>",
    "<CR><LF>.<CR>",
    "<CR>.<CR>",
    "<CR>.<CR><LF>",
    "<CR>.<LF>",
];

/// (sequence, server_reaction, transactions, bare_lf_accepted) of each smuggling finding.
fn smuggling(file: &str) -> Vec<(String, String, String, u64, Value)> {
    let (doc, out) = common::run_json(&common::fixtures().join(file), &[]);
    assert!(out.status.success());
    let flows = doc["flows"].as_array().unwrap();
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "smtp_smuggling")
        .map(|f| {
            let flow = flows.iter().find(|x| x["id"] == f["flow"]).unwrap();
            let e = &f["evidence"];
            assert_eq!(e["commands_follow"], true, "{file}");
            assert_eq!(e["smuggled_envelope"]["mail_from"], "<admin@test.example>");
            assert_eq!(e["smuggled_envelope"]["rcpt_to"][0], "<alice@test.example>");
            (
                e["sequence"].as_str().unwrap().to_string(),
                e["server_reaction"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                flow["smtp"]["transactions"].as_u64().unwrap(),
                flow["smtp"]["bare_lf_accepted"].clone(),
            )
        })
        .collect()
}

fn has_bare_lf(seq: &str) -> bool {
    seq.starts_with("<LF>") || seq.ends_with(".<LF>")
}

#[test]
fn postfix_forbid_no_honours_the_sequences_that_end_in_lf() {
    let got = smuggling("smtp-smuggling-postfix-forbid-no.pcap");
    assert_eq!(got.len(), 8);
    for ((seq, reaction, severity, txns, bare), want) in got.iter().zip(ALL) {
        assert_eq!(seq, want);
        // Postfix reads a line up to LF: `.` then LF (or CR LF) after any LF is its end.
        let honoured = matches!(want, "<LF>.<LF>" | "<LF>.<CR><LF>" | "<CR><LF>.<LF>");
        if honoured {
            assert_eq!(
                (reaction.as_str(), severity.as_str(), *txns),
                ("accepted_as_end", "critical", 2),
                "{seq}"
            );
        } else {
            assert_eq!(
                (reaction.as_str(), severity.as_str(), *txns),
                ("treated_as_body", "high", 1),
                "{seq}"
            );
        }
        let want_bare = if has_bare_lf(seq) {
            Value::Bool(true)
        } else {
            Value::Null
        };
        assert_eq!(*bare, want_bare, "{seq}");
    }
}

#[test]
fn postfix_forbid_yes_aiosmtpd_and_exim_read_every_sequence_as_body() {
    for file in [
        "smtp-smuggling-postfix-forbid-yes.pcap",
        "smtp-smuggling-aiosmtpd.pcap",
        "smtp-smuggling-exim.pcap",
    ] {
        let got = smuggling(file);
        assert_eq!(got.len(), 8, "{file}");
        for ((seq, reaction, severity, txns, _), want) in got.iter().zip(ALL) {
            assert_eq!(seq, want, "{file}");
            assert_eq!(
                (reaction.as_str(), severity.as_str(), *txns),
                ("treated_as_body", "high", 1),
                "{file} {seq}"
            );
        }
    }
}

#[test]
fn postfix_forbid_reject_refuses_bare_lf() {
    let got = smuggling("smtp-smuggling-postfix-forbid-reject.pcap");
    assert_eq!(got.len(), 8);
    for ((seq, reaction, severity, txns, bare), want) in got.iter().zip(ALL) {
        assert_eq!(seq, want);
        assert_eq!((severity.as_str(), *txns), ("high", 1), "{seq}");
        if has_bare_lf(seq) {
            assert_eq!(reaction, "rejected", "{seq}");
            assert_eq!(*bare, Value::Bool(false), "{seq}");
        } else {
            assert_eq!(reaction, "treated_as_body", "{seq}");
        }
    }
}

#[test]
fn no_smuggling_anywhere_else_in_the_fixtures() {
    for cap in common::fixture_captures() {
        let name = cap.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("smtp-smuggling-") && !name.contains("negatives") {
            continue;
        }
        let (doc, _) = common::run_json(&cap, &[]);
        let hits: Vec<&Value> = doc["findings"]
            .as_array()
            .map(|a| a.iter().filter(|f| f["kind"] == "smtp_smuggling").collect())
            .unwrap_or_default();
        assert!(hits.is_empty(), "{name}: {hits:?}");
    }
}

#[test]
fn negatives_keep_their_messages_and_bare_lf_posture() {
    let (doc, _) = common::run_json(
        &common::fixtures().join("smtp-smuggling-negatives-postfix.pcap"),
        &[],
    );
    let flows = doc["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 2);
    // Three DATA messages, one with bare-LF lines that Postfix (forbid no) accepted.
    assert_eq!(flows[0]["smtp"]["messages"], 3);
    assert_eq!(flows[0]["smtp"]["bare_lf_accepted"], true);
    // BDAT chunks: content, whatever they hold.
    assert_eq!(flows[1]["smtp"]["messages"], 1);
    assert_eq!(flows[1]["smtp"]["transaction_list"][0]["body"], "bdat");
}
