//! NDJSON and ECS finding lines stand on their own (client, server and capture on every one,
//! run-wide findings included), and flow ids do not depend on how the capture's path was
//! spelled on the command line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

/// Brute force (a run-wide finding) and per-flow findings.
const FIXTURE: &str = "smtp-plain-auth-bruteforce.pcap";

fn lines(args: &[&str], dir: &std::path::Path) -> Vec<Value> {
    let out = std::process::Command::new(common::bin())
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_ndjson_finding_line_names_client_server_and_capture() {
    let path = format!("fixtures/{FIXTURE}");
    let all = lines(&["--format", "ndjson", &path], &common::repo());
    let findings: Vec<&Value> = all
        .iter()
        .filter(|l| l["event_type"] == "finding")
        .collect();
    let kinds: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains("auth_brute_force"), "{kinds:?}");
    for f in findings {
        assert_eq!(f["client"]["ip"], "192.0.2.10", "{f}");
        assert!(f["client"]["port"].is_u64(), "{f}");
        assert_eq!(f["server"]["ip"], "192.0.2.24", "{f}");
        assert_eq!(f["server"]["port"], 25, "{f}");
        assert_eq!(f["capture"], path.as_str(), "{f}");
    }
}

#[test]
fn every_ecs_finding_line_names_source_destination_and_file() {
    let path = format!("fixtures/{FIXTURE}");
    let all = lines(&["--format", "ecs", &path], &common::repo());
    let findings: Vec<&Value> = all
        .iter()
        .filter(|d| d["event"]["kind"] == "alert")
        .collect();
    assert!(findings.len() > 1);
    for f in findings {
        assert_eq!(f["source"]["ip"], "192.0.2.10", "{f}");
        assert_eq!(f["destination"]["ip"], "192.0.2.24", "{f}");
        assert_eq!(f["destination"]["port"], 25, "{f}");
        assert_eq!(f["log"]["file"]["path"], path.as_str(), "{f}");
    }
}

#[test]
fn flow_ids_do_not_depend_on_how_the_path_is_spelled() {
    let repo = common::repo();
    let fixtures = common::fixtures();
    let abs = fixtures.join(FIXTURE);
    let spellings = [
        (repo.clone(), format!("fixtures/{FIXTURE}")),
        (repo.clone(), format!("./fixtures/{FIXTURE}")),
        (fixtures.clone(), FIXTURE.to_string()),
        (fixtures.clone(), format!("./{FIXTURE}")),
        (std::env::temp_dir(), abs.to_str().unwrap().to_string()),
    ];
    let ids = |dir: &std::path::Path, path: &str| -> Vec<String> {
        lines(&["--format", "ndjson", path], dir)
            .iter()
            .filter_map(|l| l.get("flow").or_else(|| l.get("id")))
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let want = ids(&spellings[0].0, &spellings[0].1);
    assert!(!want.is_empty());
    assert!(want.iter().all(|id| id.len() == 16));
    for (dir, path) in &spellings[1..] {
        assert_eq!(ids(dir, path), want, "{path} from {}", dir.display());
    }
}
