//! Every field `--format ecs` writes is either a real ECS 9.4.0 field of a compatible type
//! (checked against the released field list, `shared/ecs/fields-9.4.0.csv`) or sits under the
//! one custom namespace `smtpaudit.`; and docs/ecs.md names every ECS field we write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod report_fixtures;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use report_fixtures::*;
use serde_json::{Map, Value, json};
use smtpaudit::report::ecs::{ECS_VERSION, x509_doc};
use smtpaudit::report::{Format, SinkOptions, make_sink};

const NAMESPACE: &str = "smtpaudit";

fn csv_path() -> Option<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let name = format!("fields-{ECS_VERSION}.csv");
    std::env::var_os("SMTPAUDIT_ECS_CSV")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            manifest.join("../shared/ecs").join(&name),
            manifest.join("../../shared/ecs").join(&name),
        ])
        .find(|p| p.is_file())
}

/// RFC 4180 records: quoted fields may hold commas, doubled quotes and newlines.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

struct EcsField {
    ty: String,
    array: bool,
}

fn ecs_fields() -> Option<BTreeMap<String, EcsField>> {
    let Some(path) = csv_path() else {
        eprintln!(
            "skipped: ECS field list fields-{ECS_VERSION}.csv not found (set SMTPAUDIT_ECS_CSV)"
        );
        return None;
    };
    let rows = parse_csv(&std::fs::read_to_string(path).unwrap());
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (c_field, c_type, c_norm) = (col("Field"), col("Type"), col("Normalization"));
    Some(
        rows[1..]
            .iter()
            .filter(|r| r.len() > c_norm)
            .map(|r| {
                (
                    r[c_field].clone(),
                    EcsField {
                        ty: r[c_type].clone(),
                        array: r[c_norm].contains("array"),
                    },
                )
            })
            .collect(),
    )
}

/// Leaf paths and their values; arrays of scalars are leaves, arrays of objects are only
/// allowed under the custom namespace.
fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, x, out);
            }
        }
        _ => out.push((prefix.to_string(), v.clone())),
    }
}

fn scalar_fits(ty: &str, v: &Value) -> bool {
    match v {
        Value::String(s) => match ty {
            "keyword" | "constant_keyword" | "wildcard" | "match_only_text" | "text" => true,
            "ip" => s.parse::<IpAddr>().is_ok(),
            "date" => {
                let b = s.as_bytes();
                b.len() >= 20
                    && b.get(4) == Some(&b'-')
                    && b.get(10) == Some(&b'T')
                    && s.ends_with('Z')
            }
            _ => false,
        },
        Value::Number(n) => match ty {
            "long" | "integer" | "short" | "byte" | "unsigned_long" => n.is_u64() || n.is_i64(),
            "float" | "double" | "half_float" | "scaled_float" => true,
            _ => false,
        },
        Value::Bool(_) => ty == "boolean",
        _ => false,
    }
}

/// ECS allowed values for the categorisation fields (ECS 9.x reference, "ECS Categorization
/// Fields"); the CSV does not carry them.
fn allowed(field: &str) -> Option<&'static [&'static str]> {
    Some(match field {
        "event.kind" => &[
            "alert",
            "asset",
            "enrichment",
            "event",
            "metric",
            "state",
            "pipeline_error",
            "signal",
        ],
        "event.category" => &[
            "api",
            "authentication",
            "configuration",
            "database",
            "driver",
            "email",
            "file",
            "host",
            "iam",
            "intrusion_detection",
            "library",
            "malware",
            "network",
            "package",
            "process",
            "registry",
            "session",
            "threat",
            "vulnerability",
            "web",
        ],
        "event.type" => &[
            "access",
            "admin",
            "allowed",
            "change",
            "connection",
            "creation",
            "deletion",
            "denied",
            "end",
            "error",
            "group",
            "indicator",
            "info",
            "installation",
            "protocol",
            "start",
            "user",
        ],
        "event.outcome" => &["failure", "success", "unknown"],
        _ => return None,
    })
}

/// Everything the ECS sink writes for the synthetic run, plus the certificate mapping on a
/// certificate object with every field the TLS record may carry.
fn documents() -> Vec<Value> {
    let out = Shared::default();
    let mut sink = make_sink(Format::Ecs, Box::new(out.clone()), SinkOptions::default());
    let flows = arrival_order();
    for (f, fs) in &flows {
        sink.flow(f, fs).unwrap();
    }
    sink.capture(&capture("a.pcap", 60, 0, 5_000)).unwrap();
    sink.capture(&capture("b.pcap", 8, -60_000, -59_000))
        .unwrap();
    let wide = run_wide();
    sink.finish(&wide, &summary_of(&flows, &wide)).unwrap();
    let mut docs: Vec<Value> = out
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    // Shaped as the TLS analyzer's certificate record, plus the optional fields the mapping
    // also takes.
    let cert = json!({
        "subject": "C=US, O=Example, CN=mail.example.org",
        "issuer": "C=US, O=Example, CN=Example CA",
        "san": ["mail.example.org", "smtp.example.org"],
        "not_before": "2026-01-01T00:00:00Z",
        "not_after": "2026-04-01T00:00:00Z",
        "key_type": "RSA",
        "key_bits": 2048,
        "sha256": "abcdef",
        "self_signed": false,
        "chain_length": 2,
        "name_checked": "mail.example.org",
        "problems": [],
        "signature_algorithm": "sha256WithRSAEncryption",
        "serial_number": "0A1B2C",
        "sha1": "0123abcd"
    });
    let x = x509_doc(cert.as_object().unwrap());
    assert_eq!(x["tls"]["server"]["x509"]["public_key_size"], 2048);
    assert_eq!(x["tls"]["server"]["hash"]["sha256"], "ABCDEF");
    assert_eq!(
        x["tls"]["server"]["x509"]["alternative_names"],
        json!(["mail.example.org", "smtp.example.org"])
    );
    assert_eq!(
        x["tls"]["server"]["x509"]["subject"]["common_name"],
        json!(["mail.example.org"])
    );
    docs.push(Value::Object(x));
    docs
}

#[test]
fn every_field_is_ecs_or_custom() {
    let Some(ecs) = ecs_fields() else { return };
    assert!(
        !ecs.keys()
            .any(|k| k == NAMESPACE || k.starts_with("smtpaudit.")),
        "the custom namespace collides with ECS"
    );
    let mut problems = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for doc in documents() {
        let mut ls = Vec::new();
        leaves("", &doc, &mut ls);
        for (path, v) in ls {
            if path.starts_with("smtpaudit.") {
                continue;
            }
            seen.insert(path.clone());
            let Some(field) = ecs.get(&path) else {
                problems.insert(format!("{path}: not an ECS {ECS_VERSION} field"));
                continue;
            };
            let items: Vec<&Value> = match &v {
                Value::Array(a) => {
                    if !field.array {
                        problems.insert(format!("{path}: array written, ECS field is not"));
                    }
                    a.iter().collect()
                }
                other => vec![other],
            };
            for item in items {
                if !scalar_fits(&field.ty, item) {
                    problems.insert(format!("{path}: {item} does not fit ECS type {}", field.ty));
                }
                if let (Some(ok), Some(s)) = (allowed(&path), item.as_str()) {
                    if !ok.contains(&s) {
                        problems.insert(format!("{path}: {s:?} is not an allowed value"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The check saw the fields that matter (guards against a walk that finds nothing).
    for must in [
        "@timestamp",
        "source.ip",
        "destination.port",
        "tls.version",
        "tls.client.ja3",
        "tls.client.server_name",
        "tls.server.x509.not_after",
        "user.name",
        "rule.name",
        "event.severity",
        "network.community_id",
    ] {
        assert!(seen.contains(must), "{must} never written");
    }
}

#[test]
fn docs_name_every_ecs_field_written() {
    let docs_path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ecs.md");
    let text = std::fs::read_to_string(docs_path).unwrap();
    let mut missing = BTreeSet::new();
    for doc in documents() {
        let mut ls = Vec::new();
        leaves("", &doc, &mut ls);
        for (path, _) in ls {
            if !path.starts_with("smtpaudit.") && !text.contains(&format!("`{path}`")) {
                missing.insert(path);
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/ecs.md: {missing:#?}");
}

#[test]
fn every_document_has_the_ecs_base_fields() {
    let mut kinds = BTreeMap::new();
    for doc in documents() {
        let Some(m) = doc.as_object() else { continue };
        if !m.contains_key("event") {
            continue; // the bare certificate mapping
        }
        let m: &Map<String, Value> = m;
        assert!(m["@timestamp"].is_string());
        assert_eq!(m["ecs"]["version"], ECS_VERSION);
        assert!(m["event"]["category"].is_array());
        assert!(m["event"]["type"].is_array());
        assert!(m["message"].as_str().is_some_and(|s| !s.is_empty()));
        *kinds
            .entry(m["event"]["kind"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(kinds.get("alert"), Some(&9));
    assert_eq!(kinds.get("event"), Some(&8));
}
