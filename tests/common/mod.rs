//! Helpers shared by the integration tests: where the fixtures and the public corpus are, and
//! running the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The public capture corpus (`../shared/corpus` beside the repository), or `None` with a
/// message when it is absent (users' machines do not have it).
pub fn corpus() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SMTPAUDIT_CORPUS").map(PathBuf::from),
        Some(repo().join("../shared/corpus")),
        // A git worktree one level further down.
        Some(repo().join("../../shared/corpus")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.join("labels.json").is_file() {
            return Some(c);
        }
    }
    eprintln!("public corpus not found (../shared/corpus); skipping corpus checks");
    None
}

pub fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

/// Capture files shipped in `fixtures/`, sorted.
pub fn fixture_captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".gz")
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_smtpaudit")
}

/// Runs smtpaudit with `args` from the repository root.
pub fn run(args: &[&str]) -> Output {
    // The text report narrows its servers table to a smaller `COLUMNS`: outputs compared
    // with files must not depend on the terminal the tests run in.
    Command::new(bin())
        .env_remove("COLUMNS")
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("run smtpaudit")
}

/// Runs smtpaudit with `--format json` and parses the document.
pub fn run_json(path: &Path, extra: &[&str]) -> (serde_json::Value, Output) {
    let p = path.to_string_lossy().into_owned();
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    args.push(&p);
    let out = run(&args);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: stdout is not JSON ({e}); stderr: {}",
            p,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (doc, out)
}
