//! Conformance: every labelled flow of the public corpus (`../shared/corpus/labels.json`) and
//! of the project's own fixtures (`fixtures/labels.json`) must come out right: class,
//! STARTTLS fields, AUTH, TLS outcome/version/alert, every expected finding, and no finding
//! that is neither expected nor optional (false positive). Prints a table of what differs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

fn ep(v: &Value) -> String {
    let ip = v["ip"].as_str().unwrap_or("");
    let port = &v["port"];
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn norm_mech(m: &str) -> String {
    m.to_ascii_uppercase().replace('_', "-")
}

/// Checks one labels file; returns (checks done, misses).
fn check_labels(labels_path: &Path) -> (usize, Vec<String>) {
    let base = labels_path.parent().expect("labels dir");
    let labels: Value =
        serde_json::from_str(&std::fs::read_to_string(labels_path).expect("read labels"))
            .expect("labels JSON");
    let mut misses = Vec::new();
    let mut checks = 0usize;
    let mut miss = |checks: &mut usize, ok: bool, what: String| {
        *checks += 1;
        if !ok {
            misses.push(what);
        }
    };
    for cap in labels["captures"].as_array().expect("captures") {
        if cap["skipped"].as_bool() == Some(true) {
            continue;
        }
        let Some(flows) = cap["flows"].as_array().filter(|f| !f.is_empty()) else {
            continue;
        };
        let id = cap["id"].as_str().unwrap_or("?");
        let file = base.join(cap["file"].as_str().expect("file"));
        let args: Vec<String> = cap["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        // One capture written as several files (a rotation): every file in one run, where they
        // chain into one capture.
        let more: Vec<String> = cap["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|f| base.join(f))
            .filter(|f| *f != file)
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        let argrefs: Vec<&str> = args.iter().chain(&more).map(String::as_str).collect();
        let (doc, out) = common::run_json(&file, &argrefs);
        let code = out.status.code().unwrap_or(-1);
        miss(
            &mut checks,
            code == 0 || code == 1,
            format!("{id}: exit status {code}"),
        );
        let mut by_ep = BTreeMap::new();
        let mut endpoints_of = BTreeMap::new();
        for f in doc["flows"].as_array().expect("flows") {
            let key = (ep(&f["client"]), ep(&f["server"]));
            endpoints_of.insert(
                f["id"].as_str().unwrap_or("").to_string(),
                format!("{}->{}", key.0, key.1),
            );
            by_ep.insert(key, f.clone());
        }
        let mut findings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in doc["findings"].as_array().expect("findings") {
            findings
                .entry(f["flow"].as_str().unwrap_or("").to_string())
                .or_default()
                .insert(f["kind"].as_str().unwrap_or("").to_string());
        }
        let mut labelled = BTreeSet::new();
        for lab in flows {
            let c = lab["client"].as_str().unwrap_or("").to_string();
            let s = lab["server"].as_str().unwrap_or("").to_string();
            let here = format!("{id} {c}->{s}");
            let f = by_ep.get(&(c.clone(), s.clone()));
            let rev = by_ep.get(&(s.clone(), c.clone()));
            let class = lab["class"].as_str().unwrap_or("");
            if class == "absent" {
                let g = f.or(rev);
                let got = g.map(|g| g["class"].as_str().unwrap_or("").to_string());
                miss(
                    &mut checks,
                    got.is_none() || got.as_deref() == Some("unknown"),
                    format!("{here}: not SMTP but reported as {got:?}"),
                );
                if let Some(g) = g {
                    let gid = g["id"].as_str().unwrap_or("").to_string();
                    for k in findings.get(&gid).into_iter().flatten() {
                        miss(
                            &mut checks,
                            false,
                            format!("{here}: false positive {k} on a non-SMTP flow"),
                        );
                    }
                    labelled.insert(gid);
                }
                continue;
            }
            let Some(f) = f else {
                miss(
                    &mut checks,
                    false,
                    format!(
                        "{here}: flow not reported{}",
                        if rev.is_some() {
                            " (client/server swapped)"
                        } else {
                            ""
                        }
                    ),
                );
                continue;
            };
            let fid = f["id"].as_str().unwrap_or("").to_string();
            labelled.insert(fid.clone());
            let mut ok_classes: BTreeSet<&str> = [class].into();
            for a in lab["class_also_acceptable"]
                .as_array()
                .into_iter()
                .flatten()
            {
                ok_classes.insert(a.as_str().unwrap_or(""));
            }
            let got_class = f["class"].as_str().unwrap_or("");
            miss(
                &mut checks,
                ok_classes.contains(got_class),
                format!("{here}: class {got_class}, want {ok_classes:?}"),
            );
            let st = &lab["starttls"];
            let got_st = &f["smtp"]["starttls"];
            for k in ["offered", "issued", "reply"] {
                if st[k].is_null() {
                    continue;
                }
                let got = if k == "reply" {
                    got_st[k].clone()
                } else {
                    Value::Bool(got_st[k].as_bool().unwrap_or(false))
                };
                miss(
                    &mut checks,
                    got == st[k],
                    format!("{here}: starttls.{k} {got}, want {}", st[k]),
                );
            }
            let got_auth: Vec<(String, String)> = f["smtp"]["auth"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    (
                        norm_mech(a["mechanism"].as_str().unwrap_or("")),
                        a["username"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            for la in lab["auth"].as_array().into_iter().flatten() {
                let mech = norm_mech(la["mechanism"].as_str().unwrap_or(""));
                let user = la["username"].as_str();
                let hit = got_auth
                    .iter()
                    .any(|(m, u)| *m == mech && user.is_none_or(|w| w == u));
                miss(
                    &mut checks,
                    hit,
                    format!("{here}: auth want {mech} {user:?}, got {got_auth:?}"),
                );
            }
            let lt = &lab["tls"];
            let gt = &f["tls"];
            match lt["handshake"].as_str() {
                Some("none") => miss(
                    &mut checks,
                    gt.is_null() || gt["handshake"].is_null() || gt["handshake"] == "none",
                    format!("{here}: tls present ({}), want none", gt["handshake"]),
                ),
                Some(hs) => miss(
                    &mut checks,
                    gt["handshake"].as_str() == Some(hs),
                    format!("{here}: tls.handshake {}, want {hs}", gt["handshake"]),
                ),
                None => {}
            }
            if let Some(v) = lt["version"].as_str() {
                miss(
                    &mut checks,
                    gt["version"].as_str() == Some(v),
                    format!("{here}: tls.version {}, want {v}", gt["version"]),
                );
            }
            if let Some(a) = lt["alert"].as_str() {
                if lt["alert_encrypted"].as_bool() != Some(true) {
                    let descs: Vec<&str> = gt["alerts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x["description"].as_str())
                        .collect();
                    miss(
                        &mut checks,
                        descs.contains(&a),
                        format!("{here}: tls.alert {descs:?}, want {a}"),
                    );
                }
            }
            let want: BTreeSet<String> = lab["expected_findings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            let mut allowed = want.clone();
            allowed.extend(
                lab["optional_findings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from)),
            );
            let got = findings.get(&fid).cloned().unwrap_or_default();
            for k in &want {
                miss(
                    &mut checks,
                    got.contains(k),
                    format!("{here}: finding {k} missing (got {got:?})"),
                );
            }
            for k in got.difference(&allowed) {
                miss(&mut checks, false, format!("{here}: false positive {k}"));
            }
        }
        for (fid, kinds) in &findings {
            if !labelled.contains(fid) {
                for k in kinds {
                    // Run-wide aggregates point at a labelled flow; anything else is unlabelled.
                    let at = endpoints_of.get(fid).map_or("?", String::as_str);
                    miss(
                        &mut checks,
                        false,
                        format!("{id}: finding {k} on an unlabelled flow {at}"),
                    );
                }
            }
        }
    }
    (checks, misses)
}

/// Misses we stand by: where a label disagrees with the report contract, the contract wins.
/// Each entry carries its reason; an entry that no longer occurs fails the test too, so the
/// list cannot go stale.
fn deviations() -> BTreeMap<String, String> {
    let path = common::repo().join("tests/label_deviations.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read deviations"))
        .expect("deviations JSON");
    v.as_array()
        .expect("array")
        .iter()
        .map(|d| {
            (
                d["miss"].as_str().expect("miss").to_string(),
                d["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect()
}

/// The misses that are not accepted deviations.
fn unexpected(misses: &[String], accepted: &BTreeMap<String, String>) -> Vec<String> {
    misses
        .iter()
        .filter(|m| !accepted.contains_key(*m))
        .cloned()
        .collect()
}

fn report(name: &str, checks: usize, misses: &[String]) {
    eprintln!("{name}: {} of {checks} checks right", checks - misses.len());
    if !misses.is_empty() {
        eprintln!("{:-<100}", "");
        for m in misses {
            eprintln!("| {m}");
        }
        eprintln!("{:-<100}", "");
    }
}

#[test]
fn public_corpus_labels() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let (checks, misses) = check_labels(&corpus.join("labels.json"));
    report("public corpus", checks, &misses);
    assert!(checks > 100, "too few checks ran: {checks}");
    let accepted = deviations();
    for m in &misses {
        if let Some(why) = accepted.get(m) {
            eprintln!("accepted deviation: {m}\n    because {why}");
        }
    }
    let unexpected = unexpected(&misses, &accepted);
    assert!(
        unexpected.is_empty(),
        "{} conformance misses (table above): {unexpected:#?}",
        unexpected.len()
    );
    let stale: Vec<&String> = accepted.keys().filter(|k| !misses.contains(k)).collect();
    assert!(
        stale.is_empty(),
        "deviations that no longer occur: {stale:#?}"
    );
}

#[test]
fn fixture_labels() {
    let labels = common::fixtures().join("labels.json");
    assert!(labels.is_file(), "fixtures/labels.json is missing");
    let (checks, misses) = check_labels(&labels);
    report("fixtures", checks, &misses);
    assert!(checks > 50, "too few checks ran: {checks}");
    assert!(
        misses.is_empty(),
        "{} conformance misses (table above)",
        misses.len()
    );
}
