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

/// The fixtures recorded with a key log, and that key log.
fn keylog_fixtures() -> Vec<(String, String)> {
    common::fixture_captures()
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let keys = common::fixtures().join("keys").join(format!("{name}.keys"));
            keys.is_file().then(|| {
                (
                    p.to_string_lossy().into_owned(),
                    keys.to_string_lossy().into_owned(),
                )
            })
        })
        .collect()
}

#[test]
fn decrypted_sessions_keep_passwords_and_keys_secret() {
    let secrets = secrets();
    let cases = keylog_fixtures();
    assert!(cases.len() >= 4, "key log fixtures missing");
    let mut revealed = 0;
    for (capture, keys) in &cases {
        // The key log's own secrets (the last field of each line) must not show either.
        let text = std::fs::read_to_string(keys).unwrap();
        let key_secrets: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2).map(str::to_lowercase))
            .collect();
        assert!(!key_secrets.is_empty());
        for format in ["json", "ndjson", "ecs", "text"] {
            let out = common::run(&["--format", format, "--keylog", keys, capture]);
            let (so, se) = (
                String::from_utf8_lossy(&out.stdout).to_lowercase(),
                String::from_utf8_lossy(&out.stderr).to_lowercase(),
            );
            for s in secrets
                .iter()
                .map(|s| s.to_lowercase())
                .chain(key_secrets.clone())
            {
                assert!(
                    !so.contains(&s),
                    "{capture} --format {format}: secret on stdout"
                );
                assert!(
                    !se.contains(&s),
                    "{capture} --format {format}: secret on stderr"
                );
            }
        }
        let out = common::run(&[
            "--format",
            "json",
            "--reveal-secrets",
            "--keylog",
            keys,
            capture,
        ]);
        revealed += secrets.iter().filter(|s| contains(&out.stdout, s)).count();
        for s in &key_secrets {
            assert!(
                !String::from_utf8_lossy(&out.stdout)
                    .to_lowercase()
                    .contains(s)
            );
        }
    }
    // With --reveal-secrets the passwords sent inside TLS show: they were decrypted.
    assert!(
        revealed >= 3,
        "only {revealed} secrets from inside TLS revealed"
    );
}
