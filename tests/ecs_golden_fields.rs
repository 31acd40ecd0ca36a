//! ECS lines of the real fixtures, field by field against the golden files (`tests/golden`):
//! every line is JSON, in canonical form (keys sorted at every level, no key twice, compact),
//! and carries the same dotted fields as its golden line. `golden.rs` compares the bytes; this
//! names the fields that appeared or went missing, and holds the form at both detail levels.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

/// Dotted leaf paths; array elements that are objects are walked as `path[]`.
fn fields(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                fields(&p, x, out);
            }
        }
        Value::Array(a) if a.iter().any(Value::is_object) => {
            for x in a {
                fields(&format!("{prefix}[]"), x, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

fn ecs_lines(args: &[&str]) -> Vec<String> {
    let mut all = vec!["--format", "ecs"];
    all.extend_from_slice(args);
    let out = common::run(&all);
    assert_eq!(out.status.code(), Some(0), "{args:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Parses `line`, checking it is written as serde_json writes the parsed value (sorted keys
/// come back in the same order, a repeated key would be lost).
fn canonical(line: &str, what: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: {e}: {line}"));
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        line,
        "{what}: not canonical"
    );
    v
}

#[test]
fn every_ecs_line_has_the_fields_of_its_golden_line() {
    let golden = common::repo().join("tests/golden");
    let mut checked = 0;
    for path in common::fixture_captures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(want) = std::fs::read_to_string(golden.join(format!("{name}.ecs.ndjson"))) else {
            continue;
        };
        let rel = format!("fixtures/{name}");
        let got = ecs_lines(&["--color", "never", &rel]);
        let want: Vec<&str> = want.lines().collect();
        assert_eq!(got.len(), want.len(), "{name}: line count");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let what = format!("{name} line {}", i + 1);
            let (mut gf, mut wf) = (BTreeSet::new(), BTreeSet::new());
            fields("", &canonical(g, &what), &mut gf);
            fields("", &canonical(w, &format!("golden {what}")), &mut wf);
            let missing: Vec<_> = wf.difference(&gf).collect();
            let extra: Vec<_> = gf.difference(&wf).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{what}: missing {missing:?}, not in golden {extra:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} lines checked");
}

#[test]
fn full_detail_lines_are_canonical_and_keep_what_lean_leaves_out() {
    let rel = "fixtures/smtp-587-keylog-tls13-auth-plain.pcap";
    let full = ecs_lines(&["--detail", "full", rel]);
    let lean = ecs_lines(&[rel]);
    assert_eq!(full.len(), lean.len());
    for (i, (f, l)) in full.iter().zip(&lean).enumerate() {
        let (f, l) = (canonical(f, "full"), canonical(l, "lean"));
        let (mut ff, mut lf) = (BTreeSet::new(), BTreeSet::new());
        fields("", &f, &mut ff);
        fields("", &l, &mut lf);
        let lost: Vec<_> = lf.difference(&ff).collect();
        assert!(
            lost.is_empty(),
            "line {}: lean has {lost:?}, full not",
            i + 1
        );
    }
    let flow = canonical(&full[0], "full");
    for copy in [
        &flow["related"]["ip"],
        &flow["related"]["hosts"],
        &flow["event"]["end"],
        &flow["event"]["start"],
        &flow["client"]["ip"],
    ] {
        assert!(!copy.is_null(), "{flow}");
    }
    let lean_flow = canonical(&lean[0], "lean");
    assert!(lean_flow.get("related").is_none(), "{lean_flow}");
    assert!(lean_flow["event"].get("end").is_none());
    assert_eq!(lean_flow["source"]["ip"], flow["related"]["ip"][0]);
    assert_eq!(
        lean_flow["tls"]["client"]["server_name"],
        flow["related"]["hosts"][0]
    );
}
