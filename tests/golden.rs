//! Golden outputs: every format of every fixture, compared byte for byte with
//! `tests/golden/<fixture>.<format>`; a capture written as several files (`fixtures/rotated/`)
//! is analysed in one run of all its files, `tests/golden/rotated.<format>`. Timestamps are the
//! capture's, so goldens are stable.
//! After a deliberate change, refresh them with
//!
//!     UPDATE_GOLDEN=1 cargo test --release --test golden
//!
//! and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

const FORMATS: [(&str, &str); 4] = [
    ("json", "json"),
    ("ndjson", "ndjson"),
    ("ecs", "ecs.ndjson"),
    ("text", "txt"),
];

#[test]
fn every_format_of_every_fixture_matches_its_golden_file() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = common::repo().join("tests/golden");
    std::fs::create_dir_all(&dir).unwrap();
    let captures = common::fixture_captures();
    assert!(!captures.is_empty(), "no fixtures");
    let mut mismatched = Vec::new();
    let mut runs: Vec<(String, Vec<String>)> = captures
        .iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let rel = format!("fixtures/{name}");
            (name, vec![rel])
        })
        .collect();
    let mut rotated: Vec<String> = std::fs::read_dir(common::fixtures().join("rotated"))
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            format!("fixtures/rotated/{name}")
        })
        .collect();
    // Name order on purpose (not the capture's): the chain orders the files by time.
    rotated.sort();
    runs.push(("rotated".into(), rotated));
    for (name, inputs) in &runs {
        let rel = inputs.join(" ");
        for (format, ext) in FORMATS {
            let mut args = vec!["--format", format, "--color", "never"];
            args.extend(inputs.iter().map(String::as_str));
            let out = common::run(&args);
            assert!(
                out.status.code() == Some(0),
                "{rel} --format {format}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let golden = dir.join(format!("{name}.{ext}"));
            if update {
                std::fs::write(&golden, &out.stdout).unwrap();
                continue;
            }
            match std::fs::read(&golden) {
                Ok(want) if want == out.stdout => {}
                Ok(_) => mismatched.push(format!("{} differs", golden.display())),
                Err(_) => mismatched.push(format!("{} missing", golden.display())),
            }
        }
    }
    assert!(
        mismatched.is_empty(),
        "golden mismatches (run with UPDATE_GOLDEN=1 and review the diff):\n{}",
        mismatched.join("\n")
    );
}
