use serde::Serialize;
use serde_json::{Map, json};

use super::sorted::{Object, Sorted};
use super::*;
use crate::report::model::{CertRecord, ClientHelloRecord, Detail, ServerHelloRecord};

/// What `f` writes as a document, parsed back.
fn doc_of(f: impl FnOnce(&mut Doc<'_>)) -> (String, Value) {
    let mut out = Vec::new();
    let mut pool = Pool::default();
    let mut d = Doc::begin(&mut out, &mut pool);
    f(&mut d);
    d.end().unwrap();
    let text = String::from_utf8(out).unwrap();
    let v = serde_json::from_str(&text).unwrap();
    (text, v)
}

/// `v` through the key-sorting serializer.
fn sorted_json<T: Serialize + ?Sized>(v: &T) -> String {
    let mut out = Vec::new();
    let mut pool = Pool::default();
    v.serialize(&mut Sorted::new(&mut out, &mut pool)).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn tls_versions_map_to_ecs_spelling() {
    assert_eq!(ecs_tls_version("TLSv1.3"), Some(("tls", "1.3".into())));
    assert_eq!(ecs_tls_version("TLSv1.0"), Some(("tls", "1.0".into())));
    assert_eq!(ecs_tls_version("TLS 1.2"), Some(("tls", "1.2".into())));
    assert_eq!(ecs_tls_version("SSLv3"), Some(("ssl", "3.0".into())));
    assert_eq!(ecs_tls_version("SSLv2"), Some(("ssl", "2.0".into())));
    assert_eq!(ecs_tls_version("0x7f1c"), None);
    assert_eq!(ecs_tls_version("TLSv"), None);
    assert_eq!(ecs_tls_version(""), None);
}

#[test]
fn writer_escapes_strings_as_serde_json_does() {
    let nasty = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} del \u{7f} é 日本 😀";
    let (text, v) = doc_of(|d| {
        d.str("a", nasty);
        d.display("b", &format_args!("{nasty}!"));
        d.strs("c", [nasty, "plain"]);
    });
    assert_eq!(v["a"], nasty);
    assert_eq!(v["b"], format!("{nasty}!"));
    assert_eq!(v["c"], json!([nasty, "plain"]));
    let want = serde_json::to_string(&json!({"a": nasty, "b": format!("{nasty}!"),
        "c": [nasty, "plain"]}))
    .unwrap();
    assert_eq!(text, want);
    assert!(!text.contains('\n'), "one line");
}

#[test]
fn writer_groups_nested_objects_and_leaves_empty_ones_out() {
    let (text, _) = doc_of(|d| {
        d.str("@timestamp", "t");
        d.obj("empty", |d| d.obj("deeper", |_| {}));
        d.obj("tls", |d| {
            d.obj("client", |d| d.str("ja3", "x"));
            d.bool("established", true);
            d.obj("server", |d| {
                d.obj("hash", |_| {});
                d.obj("x509", |d| {
                    d.obj("subject", |d| d.strs("common_name", ["mx"]));
                });
            });
            d.str("version", "1.3");
        });
        d.u64("z", u64::MAX);
        d.i64("zz", -5);
    });
    assert_eq!(
        text,
        r#"{"@timestamp":"t","tls":{"client":{"ja3":"x"},"established":true,"server":{"x509":{"subject":{"common_name":["mx"]}}},"version":"1.3"},"z":18446744073709551615,"zz":-5}"#
    );
    let (text, _) = doc_of(|d| d.obj("a", |_| {}));
    assert_eq!(text, "{}");
}

#[derive(Serialize)]
struct Inner {
    zeta: Option<u32>,
    alpha: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u8>,
}

#[derive(Serialize)]
enum Shape {
    Unit,
    Newtype(u8),
    Tuple(u8, &'static str),
    Struct { y: u8, x: Option<u8> },
}

#[derive(Serialize)]
struct Outer {
    name: String,
    inner: Inner,
    map: std::collections::HashMap<String, i64>,
    evidence: Map<String, Value>,
    shapes: Vec<Shape>,
    ratio: f64,
    nothing: Option<String>,
    bytes: (u8, char),
}

fn outer() -> Outer {
    Outer {
        name: "n\"1".into(),
        inner: Inner {
            zeta: None,
            alpha: vec!["b", "a"],
            skipped: None,
        },
        map: [
            ("b".to_string(), 2),
            ("a".to_string(), -1),
            ("é".to_string(), 3),
        ]
        .into_iter()
        .collect(),
        evidence: json!({"z": {"y": 1, "x": [1, {"b": null, "a": 2}]}, "a": "s"})
            .as_object()
            .cloned()
            .unwrap(),
        shapes: vec![
            Shape::Unit,
            Shape::Newtype(1),
            Shape::Tuple(2, "t"),
            Shape::Struct { y: 3, x: None },
        ],
        ratio: 0.1,
        nothing: None,
        bytes: (7, 'c'),
    }
}

#[test]
fn sorted_serializer_matches_a_serde_json_value() {
    // What the events were built from before: a `Value`, whose maps are sorted.
    let o = outer();
    let want = serde_json::to_string(&serde_json::to_value(&o).unwrap()).unwrap();
    assert_eq!(sorted_json(&o), want);
    // Nulls kept inside records, as the value had them.
    assert!(want.contains(r#""nothing":null"#) && want.contains(r#""zeta":null"#));
}

#[test]
fn object_fields_filter_and_drop_top_level_nulls() {
    let o = outer();
    let mut out = Vec::new();
    let mut pool = Pool::default();
    let mut s = Sorted::new(&mut out, &mut pool);
    let mut obj = Object::begin(&mut s);
    obj.value("added", &1).unwrap();
    obj.fields(&o, &|k| k != "map" && k != "evidence", true)
        .unwrap();
    // A key given again keeps its last value, as a map insert would.
    obj.value("ratio", &2).unwrap();
    obj.end();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["added", "bytes", "inner", "name", "ratio", "shapes"],
        "sorted, filtered, top-level null `nothing` left out"
    );
    assert_eq!(v["ratio"], 2);
    assert_eq!(v["inner"]["zeta"], Value::Null, "nested nulls stay");
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with(r#"{"added":1,"bytes":[7,"c"],"inner":{"alpha":["b","a"]"#));

    // Only a struct's fields can join an object.
    let mut out = Vec::new();
    let mut s = Sorted::new(&mut out, &mut pool);
    let mut obj = Object::begin(&mut s);
    assert!(obj.fields(&5, &|_| true, false).is_err());
}

#[test]
fn map_keys_that_are_not_strings_are_an_error_not_a_panic() {
    let mut out = Vec::new();
    let mut pool = Pool::default();
    let m: std::collections::BTreeMap<u16, u8> = [(10, 1), (9, 2)].into_iter().collect();
    m.serialize(&mut Sorted::new(&mut out, &mut pool)).unwrap();
    // As a `Value` has them: text keys, sorted as text.
    assert_eq!(String::from_utf8(out).unwrap(), r#"{"10":1,"9":2}"#);
    let mut out = Vec::new();
    let bad: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
    assert!(
        bad.serialize(&mut Sorted::new(&mut out, &mut pool))
            .is_err()
    );
}

fn cert() -> CertRecord {
    CertRecord {
        subject: "C=US, O=Example, CN=mx.example.org".into(),
        issuer: "CN=mx.example.org".into(),
        san: vec!["mx.example.org".into()],
        not_before: "2025-01-01T00:00:00Z".into(),
        not_after: "2026-01-01T00:00:00Z".into(),
        key_type: "RSA".into(),
        key_bits: Some(1024),
        sha256: "00:ff".into(),
        self_signed: true,
        chain_length: 1,
        name_checked: None,
        problems: vec!["expired".into(), "weak_key".into()],
    }
}

fn tls() -> TlsRecord {
    TlsRecord {
        version: Some("TLSv1.2".into()),
        cipher: Some("TLS_RSA_WITH_RC4_128_SHA".into()),
        sni: Some("mx.example.org".into()),
        handshake: HandshakeOutcome::Complete,
        decrypted: false,
        key_source: None,
        alerts: Vec::new(),
        ja3: Some("ja3hash".into()),
        ja3s: None,
        ja4: None,
        outcome_evidence: None,
        client_hello_seen: true,
        server_hello_seen: true,
        hello_retry_request: false,
        client: Some(ClientHelloRecord {
            ciphers: vec!["TLS_RSA_WITH_RC4_128_SHA".into(), "0x00ff".into()],
            alpn: vec!["h2".into()],
            ..ClientHelloRecord::default()
        }),
        server: Some(ServerHelloRecord {
            legacy_version: "TLSv1.2".into(),
            alpn: Some("smtp".into()),
            ..ServerHelloRecord::default()
        }),
        ja3_full: None,
        ja3s_full: None,
        ja4_r: None,
        certificate: Some(cert()),
        to_server: Default::default(),
        to_client: Default::default(),
        anomalies: Vec::new(),
    }
}

#[test]
fn tls_record_fields_map_to_ecs() {
    let t = tls();
    let (_, d) = detail::with(Detail::Full, || doc_of(|d| tls_fields(d, &t)));
    let t = &d["tls"];
    assert_eq!(t["version"], "1.2");
    assert_eq!(t["version_protocol"], "tls");
    assert_eq!(t["established"], true);
    assert_eq!(t["cipher"], "TLS_RSA_WITH_RC4_128_SHA");
    assert_eq!(t["client"]["server_name"], "mx.example.org");
    assert_eq!(t["resumed"], false);
    assert_eq!(t["next_protocol"], "smtp");
    assert_eq!(t["client"]["supported_ciphers"][1], "0x00ff");
    assert!(t["server"].get("ja3s").is_none(), "null JA3S not mapped");
    let x = &t["server"]["x509"];
    assert_eq!(x["subject"]["common_name"], json!(["mx.example.org"]));
    assert_eq!(
        x["subject"]["distinguished_name"],
        "C=US, O=Example, CN=mx.example.org"
    );
    assert_eq!(x["issuer"]["common_name"], json!(["mx.example.org"]));
    assert_eq!(x["alternative_names"], json!(["mx.example.org"]));
    assert_eq!(x["public_key_size"], 1024);
    assert_eq!(x["public_key_algorithm"], "RSA");
    assert_eq!(x["not_after"], "2026-01-01T00:00:00Z");
    assert_eq!(t["server"]["not_after"], "2026-01-01T00:00:00Z");
    assert_eq!(t["server"]["hash"]["sha256"], "00FF");

    // Lean: no ClientHello, a ServerHello only for what it chose, no x509 copies.
    let t = tls();
    let (_, d) = detail::with(Detail::Lean, || doc_of(|d| tls_fields(d, &t)));
    let t = &d["tls"];
    assert!(t["client"].get("supported_ciphers").is_none());
    assert_eq!(t["next_protocol"], "smtp");
    assert_eq!(t["server"]["x509"]["public_key_size"], 1024);
    assert!(t["server"]["x509"].get("subject").is_none());
}

#[test]
fn tls_remainder_leaves_out_what_ecs_carries() {
    let t = tls();
    let rest = |detail_level| {
        detail::with(detail_level, || {
            doc_of(|d| d.sorted("tls", |o| tls_rest(o, &t))).1
        })
    };
    let full = rest(Detail::Full);
    let full = full["tls"].as_object().unwrap();
    for mapped in ["version", "cipher", "sni", "ja3"] {
        assert!(!full.contains_key(mapped), "{mapped}");
    }
    // Null ones were not mapped and stay, as does everything ECS has no field for.
    assert_eq!(full["ja3s"], Value::Null);
    assert_eq!(full["handshake"], "complete");
    assert!(full.contains_key("certificate") && full.contains_key("client"));
    let lean = rest(Detail::Lean);
    assert!(lean["tls"].get("certificate").is_none());
    assert_eq!(lean["tls"]["ja4"], Value::Null, "pinned, null included");
}

#[test]
fn severity_scale_is_monotonic() {
    let v: Vec<u8> = Severity::ALL_DESC
        .iter()
        .map(|s| ecs_severity(*s))
        .collect();
    assert_eq!(v, vec![99, 73, 47, 21, 1]);
}

#[test]
fn escape_check_finds_every_byte_that_needs_one_at_any_position() {
    for len in 1..20 {
        for at in 0..len {
            for b in 0..=255u8 {
                let mut s = vec![b'a'; len];
                s[at] = b;
                let naive = s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
                assert_eq!(sorted::needs_escape(&s), naive, "{len} {at} {b}");
            }
        }
    }
    // Bytes above one that matched (a borrow crossing lanes) change nothing.
    assert!(sorted::needs_escape(b"\x00\x01\x20\x21\x22abc"));
    assert!(!sorted::needs_escape("été 日本 0x7f \u{7f} ~".as_bytes()));
}
