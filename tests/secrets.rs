//! Secrets never appear without `--reveal-secrets`: every output format of every fixture is
//! searched for every password and token the fixtures used (`fixtures/secrets.txt`), on
//! stdout and stderr. With `--reveal-secrets` they do appear, which proves the search works.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

fn secrets() -> Vec<String> {
    let text = std::fs::read_to_string(common::fixtures().join("secrets.txt"))
        .expect("fixtures/secrets.txt lists the fixtures' secrets");
    let v: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    assert!(!v.is_empty());
    v
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn no_secret_in_any_format_without_reveal() {
    let secrets = secrets();
    for path in common::fixture_captures() {
        let p = path.to_string_lossy().into_owned();
        for format in ["json", "ndjson", "ecs", "text"] {
            let out = common::run(&["--format", format, &p]);
            for s in &secrets {
                assert!(
                    !contains(&out.stdout, s),
                    "{p} --format {format}: secret {s:?} on stdout"
                );
                assert!(
                    !contains(&out.stderr, s),
                    "{p} --format {format}: secret {s:?} on stderr"
                );
            }
        }
    }
}

#[test]
fn reveal_secrets_shows_them() {
    let secrets = secrets();
    let mut revealed = 0;
    for path in common::fixture_captures() {
        let p = path.to_string_lossy().into_owned();
        let out = common::run(&["--format", "json", "--reveal-secrets", &p]);
        revealed += secrets.iter().filter(|s| contains(&out.stdout, s)).count();
    }
    assert!(
        revealed > 0,
        "--reveal-secrets showed none of the fixtures' secrets"
    );
}
