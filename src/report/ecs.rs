//! `--format ecs`: the `ndjson` events with Elastic Common Schema 9.4 field names, one nested
//! JSON document per line, ready for a Filebeat/Elastic Agent/Vector/Fluent Bit pipeline
//! (see `docs/ecs.md` for the mapping table and shipping examples).
//!
//! Fields that ECS has a home for go there (`source.ip`, `tls.client.ja3`, `user.name`,
//! `rule.name`, ...); everything else sits under the single custom namespace `smtpaudit.*`.
//! The model's own records (`smtp`, `tls`, `tcp`, capture counters, finding evidence) are
//! carried whole under `smtpaudit.*` minus the keys mapped to ECS, so a field the analyzers
//! add later reaches the SIEM without a change here.
//!
//! Documents are built as `serde_json` maps: one per flow, finding or capture, never per
//! packet, and the mapping reads like the table in the docs. Keys come out sorted (serde_json's
//! map is ordered), so output is stable.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::community_id;
use super::model::{
    AuthOutcome, CaptureRecord, EndpointRecord, FlowClass, FlowRecord, HandshakeOutcome,
    SCHEMA_VERSION, Summary, ToolInfo, detail,
};
use super::{LineWriter, ReportSink, SinkOptions, finding_for_flow, report_order};
use crate::findings::{Finding, Kind, Severity};
use crate::time::Timestamp;

/// The ECS release the field names and types are checked against (tests/ecs_fields.rs).
pub const ECS_VERSION: &str = "9.4.0";

/// `event.module` and the prefix of every `event.dataset`.
const MODULE: &str = "smtpaudit";

/// `event.severity` of a finding. ECS leaves the scale to the source; these are the default
/// risk scores Elastic Security gives its rule severities (low 21, medium 47, high 73,
/// critical 99), so a rule can use `event.severity` for its severity/risk-score override
/// without a lookup table. Info is 1, not 0: 0 reads as "emergency" to syslog-minded tools.
pub fn ecs_severity(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 21,
        Severity::Medium => 47,
        Severity::High => 73,
        Severity::Critical => 99,
    }
}

pub struct EcsSink {
    out: LineWriter,
    /// Latest capture time seen, for the summary's `@timestamp` (never the wall clock).
    latest: Option<Timestamp>,
}

impl EcsSink {
    pub fn new(out: Box<dyn Write>, opts: SinkOptions) -> Self {
        EcsSink {
            out: LineWriter::new(out, opts),
            latest: None,
        }
    }

    fn saw(&mut self, ts: Option<Timestamp>) {
        if let Some(ts) = ts {
            self.latest = Some(self.latest.map_or(ts, |l| l.max(ts)));
        }
    }
}

impl ReportSink for EcsSink {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> io::Result<()> {
        self.saw(Some(flow.end));
        let doc = detail::with(self.out.detail, || flow_doc(flow))?;
        self.out.line(&doc)?;
        for f in report_order(findings) {
            let f = finding_for_flow(f, flow);
            let doc = detail::with(self.out.detail, || finding_doc(&f, Some(flow)))?;
            self.out.line(&doc)?;
        }
        self.out.end_of_flow()
    }

    fn capture(&mut self, capture: &CaptureRecord) -> io::Result<()> {
        self.saw(capture.last_packet);
        let doc = capture_doc(capture, self.latest)?;
        self.out.line(&doc)?;
        self.out.end_of_flow()
    }

    fn finish(&mut self, findings: &[Finding], summary: &Summary) -> io::Result<()> {
        for f in findings {
            self.saw(Some(f.ts));
            let doc = detail::with(self.out.detail, || finding_doc(f, None))?;
            self.out.line(&doc)?;
        }
        let doc = summary_doc(summary, self.latest)?;
        self.out.line(&doc)?;
        self.out.flush()
    }
}

/// Sets a dotted ECS path in a nested document, creating the objects on the way. A path
/// whose prefix is already a non-object value is left alone (the first writer wins), which
/// cannot happen with the fixed paths below but must not panic if it ever does.
fn put(doc: &mut Map<String, Value>, path: &str, value: impl Into<Value>) {
    let mut cur = doc;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_string(), value.into());
            return;
        }
        let next = cur
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        match next {
            Value::Object(m) => cur = m,
            _ => return,
        }
    }
}

fn put_opt<T: Into<Value>>(doc: &mut Map<String, Value>, path: &str, value: Option<T>) {
    if let Some(v) = value {
        put(doc, path, v);
    }
}

fn to_map<T: Serialize>(v: &T) -> io::Result<Map<String, Value>> {
    match serde_json::to_value(v)? {
        Value::Object(m) => Ok(m),
        // The model's records are all structs; anything else is a programming error that
        // should show in the output rather than abort the run.
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other);
            Ok(m)
        }
    }
}

/// Fields every smtpaudit ECS document carries.
fn base(ts: Timestamp, kind: &str, dataset: &str) -> Map<String, Value> {
    let tool = ToolInfo::default();
    let mut d = Map::new();
    put(&mut d, "@timestamp", ts.to_string());
    put(&mut d, "ecs.version", ECS_VERSION);
    put(&mut d, "event.kind", kind);
    put(&mut d, "event.module", MODULE);
    put(&mut d, "event.dataset", dataset);
    put(&mut d, "observer.product", tool.name);
    put(&mut d, "observer.version", tool.version);
    d
}

fn ip_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

/// Endpoints and `network.*` of a flow, shared by the flow document and its findings so an
/// alert can be searched by address without a join.
fn endpoints(d: &mut Map<String, Value>, flow: &FlowRecord) {
    let smtp = flow.smtp.is_some() || flow.class != FlowClass::Unknown;
    endpoint_fields(d, flow.client, flow.server, smtp);
}

/// The fields of [`endpoints`] from the two ends alone (a run-wide finding has no record of
/// its flow at hand, only the ends its tracker kept).
fn endpoint_fields(d: &mut Map<String, Value>, c: EndpointRecord, s: EndpointRecord, smtp: bool) {
    // The client opened the connection (REPORT.md), so it is the ECS source. ECS allows
    // `client.*`/`server.*` beside them; lean documents do not repeat the same two objects.
    let (sources, destinations): (&[&str], &[&str]) = if detail::lean() {
        (&["source"], &["destination"])
    } else {
        (&["source", "client"], &["destination", "server"])
    };
    for prefix in sources {
        put(d, &format!("{prefix}.ip"), c.ip.to_string());
        put(d, &format!("{prefix}.port"), c.port);
    }
    for prefix in destinations {
        put(d, &format!("{prefix}.ip"), s.ip.to_string());
        put(d, &format!("{prefix}.port"), s.port);
    }
    put(d, "network.transport", "tcp");
    if !detail::lean() {
        // `network.transport` says it.
        put(d, "network.iana_number", "6");
    }
    put(d, "network.type", ip_type(c.ip));
    if smtp {
        put(d, "network.protocol", "smtp");
    }
    put(
        d,
        "network.community_id",
        community_id::tcp_v1((c.ip, c.port), (s.ip, s.port)),
    );
    let mut ips = vec![c.ip.to_string()];
    if s.ip != c.ip {
        ips.push(s.ip.to_string());
    }
    put(d, "related.ip", ips);
}

/// The `tls.version_protocol` and `tls.version` ECS wants ("tls", "1.3") from the model's
/// name of the selected version ("TLSv1.3", "SSLv3"). Unknown spellings (an unassigned code
/// such as "0x7f1c") are not mapped and stay under `smtpaudit.tls.version`.
pub fn ecs_tls_version(v: &str) -> Option<(&'static str, String)> {
    let v = v.trim();
    let (proto, rest) = if let Some(r) = strip_prefix_ci(v, "TLS") {
        ("tls", r)
    } else if let Some(r) = strip_prefix_ci(v, "SSL") {
        ("ssl", r)
    } else {
        return None;
    };
    let rest = rest.trim_start_matches(['v', 'V', ' ']);
    if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    // ECS examples write "1.2"; SSL versions are commonly "3.0"/"2.0".
    let num = if rest.contains('.') {
        rest.to_string()
    } else {
        format!("{rest}.0")
    };
    Some((proto, num))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// First value among `keys` in `m`.
fn pick<'a>(m: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| m.get(*k).filter(|v| !v.is_null()))
}

fn pick_str<'a>(m: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    pick(m, keys).and_then(Value::as_str)
}

/// A keyword array from a string or an array of strings.
fn pick_strings(m: &Map<String, Value>, keys: &[&str]) -> Option<Vec<Value>> {
    match pick(m, keys)? {
        Value::String(s) => Some(vec![Value::String(s.clone())]),
        Value::Array(a) => {
            let v: Vec<Value> = a.iter().filter(|x| x.is_string()).cloned().collect();
            (!v.is_empty()).then_some(v)
        }
        _ => None,
    }
}

/// `tls.*` of a flow. The certificate fields are read from the TLS record as serialised, by
/// the names the TLS analyzer uses for them (with a few aliases), so they map whether they
/// sit in `tls.certificate` or as the first (leaf) entry of `tls.certificates`.
fn tls_fields(d: &mut Map<String, Value>, raw: &mut Map<String, Value>) {
    // The pinned names of REPORT.md, read from the record as serialised so that the mapping
    // and the custom remainder come from one source.
    if let Some((proto, num)) = pick_str(raw, &["version"]).and_then(ecs_tls_version) {
        put(d, "tls.version_protocol", proto);
        put(d, "tls.version", num);
        raw.remove("version");
    }
    for (key, ecs) in [
        ("cipher", "tls.cipher"),
        ("sni", "tls.client.server_name"),
        ("ja3", "tls.client.ja3"),
        ("ja3s", "tls.server.ja3s"),
    ] {
        if let Some(v) = raw.get(key).and_then(Value::as_str).map(str::to_string) {
            if key == "sni" {
                put(d, "related.hosts", vec![v.clone()]);
            }
            put(d, ecs, v);
            raw.remove(key);
        }
    }
    if let Some(h) = raw.get("handshake").and_then(Value::as_str) {
        put(d, "tls.established", h == "complete");
    }
    // What the client offered and the server chose beyond version and cipher, as the TLS
    // record nests them (`client.ciphers`, `server.alpn`, `server.resumed`).
    if let Some(c) = raw
        .get("client")
        .and_then(Value::as_object)
        .and_then(|c| pick_strings(c, &["ciphers"]))
    {
        put(d, "tls.client.supported_ciphers", c);
    }
    if let Some(server) = raw.get("server").and_then(Value::as_object) {
        if let Some(r) = server.get("resumed").and_then(Value::as_bool) {
            put(d, "tls.resumed", r);
        }
        if let Some(p) = pick_str(server, &["alpn"]) {
            put(d, "tls.next_protocol", p);
        }
    }

    let cert = match pick(raw, &["certificate", "server_certificate", "certificates"]) {
        Some(Value::Object(m)) => Some(m.clone()),
        Some(Value::Array(a)) => a.first().and_then(Value::as_object).cloned(),
        _ => None,
    };
    if let Some(cert) = cert {
        x509_fields(d, &cert);
    }
}

/// The `tls.server.*` fields ECS has for a server certificate object as the TLS record
/// serialises it (`subject`, `issuer`, `not_before`, `not_after`, `alternative_names`/`san`,
/// `public_key_size`/`key_bits`, `sha256`, ...). Public so the mapping can be checked alone.
pub fn x509_doc(cert: &Map<String, Value>) -> Map<String, Value> {
    let mut d = Map::new();
    x509_fields(&mut d, cert);
    d
}

fn x509_fields(d: &mut Map<String, Value>, cert: &Map<String, Value>) {
    const X: &str = "tls.server.x509";
    // Lean documents write subject, issuer and validity once, in ECS's `tls.server.*`: the
    // `x509` copies (and the common names inside those names) would repeat them.
    let full = !detail::lean();
    if let Some(s) = pick_str(cert, &["subject", "subject_dn"]) {
        put(d, "tls.server.subject", s);
        if full {
            put(d, &format!("{X}.subject.distinguished_name"), s);
        }
    }
    let subject_cn = pick_strings(cert, &["subject_cn", "common_name", "cn"])
        .or_else(|| pick_str(cert, &["subject", "subject_dn"]).and_then(dn_common_names));
    if let Some(cn) = subject_cn.filter(|_| full) {
        put(d, &format!("{X}.subject.common_name"), cn);
    }
    if let Some(s) = pick_str(cert, &["issuer", "issuer_dn"]) {
        put(d, "tls.server.issuer", s);
        if full {
            put(d, &format!("{X}.issuer.distinguished_name"), s);
        }
    }
    let issuer_cn = pick_strings(cert, &["issuer_cn"])
        .or_else(|| pick_str(cert, &["issuer", "issuer_dn"]).and_then(dn_common_names));
    if let Some(cn) = issuer_cn.filter(|_| full) {
        put(d, &format!("{X}.issuer.common_name"), cn);
    }
    for (keys, ecs) in [
        (&["not_before", "valid_from"][..], "not_before"),
        (&["not_after", "valid_until", "valid_to"][..], "not_after"),
    ] {
        if let Some(t) = pick_str(cert, keys) {
            put(d, &format!("tls.server.{ecs}"), t);
            if full {
                put(d, &format!("{X}.{ecs}"), t);
            }
        }
    }
    if let Some(san) = pick_strings(
        cert,
        &[
            "alternative_names",
            "san",
            "sans",
            "subject_alt_names",
            "dns_names",
        ],
    ) {
        put(d, &format!("{X}.alternative_names"), san);
    }
    if let Some(bits) =
        pick(cert, &["public_key_size", "key_bits", "key_size"]).and_then(Value::as_u64)
    {
        put(d, &format!("{X}.public_key_size"), bits);
    }
    if let Some(a) = pick_str(cert, &["public_key_algorithm", "key_type", "key_algorithm"]) {
        put(d, &format!("{X}.public_key_algorithm"), a);
    }
    if let Some(a) = pick_str(cert, &["signature_algorithm"]) {
        put(d, &format!("{X}.signature_algorithm"), a);
    }
    if let Some(s) = pick_str(cert, &["serial_number", "serial"]) {
        put(d, &format!("{X}.serial_number"), s);
    }
    // ECS shows certificate hashes as uppercase hex.
    for (keys, ecs) in [
        (
            &["sha256", "fingerprint_sha256", "hash_sha256"][..],
            "sha256",
        ),
        (&["sha1", "fingerprint_sha1", "hash_sha1"][..], "sha1"),
    ] {
        if let Some(h) = pick_str(cert, keys) {
            put(
                d,
                &format!("tls.server.hash.{ecs}"),
                h.replace(':', "").to_ascii_uppercase(),
            );
        }
    }
}

/// The CN values of a distinguished name as x509-parser prints it (`C=US, O=Org, CN=name`).
/// An escaped comma inside a value would split it; CNs of mail servers are host names.
fn dn_common_names(dn: &str) -> Option<Vec<Value>> {
    let v: Vec<Value> = dn
        .split(',')
        .filter_map(|rdn| {
            let rdn = rdn.trim();
            strip_prefix_ci(rdn, "CN=").map(|cn| Value::String(cn.trim().to_string()))
        })
        .collect();
    (!v.is_empty()).then_some(v)
}

/// `event.outcome` of a flow: the TLS handshake when TLS was attempted, else the last AUTH.
fn flow_outcome(flow: &FlowRecord) -> Option<&'static str> {
    if let Some(tls) = &flow.tls {
        return Some(match tls.handshake {
            HandshakeOutcome::Complete => "success",
            HandshakeOutcome::Failed => "failure",
            HandshakeOutcome::Incomplete => "unknown",
        });
    }
    let auth = flow.smtp.as_ref()?.auth.last()?;
    Some(auth_outcome(auth.outcome))
}

fn auth_outcome(o: AuthOutcome) -> &'static str {
    match o {
        AuthOutcome::Success => "success",
        AuthOutcome::Failure => "failure",
        AuthOutcome::Unknown => "unknown",
    }
}

fn flow_message(flow: &FlowRecord) -> String {
    let mut m = format!(
        "{} SMTP connection {} -> {}",
        flow.class.as_str(),
        sock(flow.client.ip, flow.client.port),
        sock(flow.server.ip, flow.server.port)
    );
    if let Some(tls) = &flow.tls {
        let hs = match tls.handshake {
            HandshakeOutcome::Complete => "complete",
            HandshakeOutcome::Failed => "failed",
            HandshakeOutcome::Incomplete => "incomplete",
        };
        m.push_str(&format!(", TLS handshake {hs}"));
        // Lean documents have version and cipher in `tls.*` only.
        if let Some(v) = tls.version.as_ref().filter(|_| !detail::lean()) {
            m.push_str(&format!(" ({v}"));
            if let Some(c) = &tls.cipher {
                m.push_str(&format!(", {c}"));
            }
            m.push(')');
        }
    }
    m
}

fn sock(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}:{port}"),
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
    }
}

fn duration_nanos(start: Timestamp, end: Timestamp) -> i64 {
    let d = end.as_nanos().saturating_sub(start.as_nanos()).max(0);
    i64::try_from(d).unwrap_or(i64::MAX)
}

/// The ECS document of one flow.
pub fn flow_doc(flow: &FlowRecord) -> io::Result<Map<String, Value>> {
    let mut d = base(flow.start, "event", "smtpaudit.flow");
    put(&mut d, "event.category", json!(["network"]));
    put(&mut d, "event.type", json!(["connection"]));
    put_opt(&mut d, "event.outcome", flow_outcome(flow));
    if !detail::lean() {
        // `@timestamp` is the start already.
        put(&mut d, "event.start", flow.start.to_string());
    }
    put(&mut d, "event.end", flow.end.to_string());
    put(
        &mut d,
        "event.duration",
        duration_nanos(flow.start, flow.end),
    );
    endpoints(&mut d, flow);
    put(&mut d, "log.file.path", flow.capture.as_str());
    let (up, down) = (flow.tcp.to_server.packets, flow.tcp.to_client.packets);
    put(&mut d, "source.packets", up);
    put(&mut d, "destination.packets", down);
    if !detail::lean() {
        put(&mut d, "network.packets", up.saturating_add(down));
    }
    put(&mut d, "message", flow_message(flow));

    // The record as the JSON report has it, minus what ECS fields above already carry.
    let mut raw = to_map(flow)?;
    for k in ["client", "server", "start", "end", "duration_secs"] {
        raw.remove(k);
    }
    if let Some(Value::Object(mut raw_tls)) = raw.remove("tls") {
        tls_fields(&mut d, &mut raw_tls);
        if detail::lean() {
            // `tls.server.x509.*` carries it already.
            raw_tls.remove("certificate");
        }
        put(&mut d, "smtpaudit.tls", raw_tls);
    }
    if let Some(smtp) = &flow.smtp {
        let mut users: Vec<&str> = Vec::new();
        for a in &smtp.auth {
            match a.username.as_deref() {
                Some(u) if !users.contains(&u) => users.push(u),
                _ => {}
            }
        }
        // `user.name` is a single keyword in ECS: the first user who authenticated; every
        // name tried is in `related.user` (an array field) and `smtpaudit.smtp.auth`.
        if let Some(first) = users.first() {
            put(&mut d, "user.name", *first);
            put(&mut d, "related.user", users);
        }
    }
    if let Some(id) = raw.remove("id") {
        put(&mut d, "smtpaudit.flow.id", id);
    }
    // `log.file.path` is the capture; lean documents do not repeat it.
    if let Some(c) = raw.remove("capture").filter(|_| !detail::lean()) {
        put(&mut d, "smtpaudit.flow.capture", c);
    }
    // class, smtp, tcp and whatever the model grows later.
    for (k, v) in raw {
        if !v.is_null() {
            put(&mut d, &format!("smtpaudit.{k}"), v);
        }
    }
    Ok(d)
}

/// `event.category` of a finding: credential findings are authentication events too.
fn finding_category(kind: Kind) -> Value {
    match kind {
        Kind::CleartextCredentials
        | Kind::AuthBruteForce
        | Kind::AuthPasswordSpraying
        | Kind::AuthDistributedBruteForce => json!(["network", "authentication"]),
        _ => json!(["network", "intrusion_detection"]),
    }
}

/// The ECS document of one finding; `flow` is its flow (None for run-wide findings).
pub fn finding_doc(f: &Finding, flow: Option<&FlowRecord>) -> io::Result<Map<String, Value>> {
    let mut d = base(f.ts, "alert", "smtpaudit.finding");
    put(&mut d, "event.category", finding_category(f.kind));
    let ty = match f.kind {
        Kind::StarttlsRefused => "denied",
        Kind::ConnectionFailed => "connection",
        _ => "info",
    };
    put(&mut d, "event.type", json!([ty]));
    put(&mut d, "event.severity", ecs_severity(f.severity));
    let outcome = match f.kind {
        Kind::TlsHandshakeFailure | Kind::StarttlsRefused | Kind::ConnectionFailed => {
            Some("failure")
        }
        Kind::CleartextCredentials | Kind::AuthBruteForce => f
            .evidence
            .get("outcome")
            .and_then(Value::as_str)
            .filter(|o| matches!(*o, "success" | "failure" | "unknown")),
        _ => None,
    };
    put_opt(&mut d, "event.outcome", outcome);
    put(&mut d, "rule.id", f.kind.as_str());
    put(&mut d, "rule.name", f.kind.as_str());
    put(&mut d, "rule.ruleset", MODULE);
    put(&mut d, "message", f.message.as_str());
    // Every finding line names its ends and its capture, so that it stands alone in a SIEM
    // (REPORT.md): the capture is the file the event came from, ECS's `log.file.path`.
    match (flow, f.endpoints) {
        (Some(flow), _) => endpoints(&mut d, flow),
        // The cross-connection findings all come from SMTP dialogs.
        (None, Some(e)) => endpoint_fields(&mut d, e.client, e.server, true),
        (None, None) => {}
    }
    if !f.capture.is_empty() {
        put(&mut d, "log.file.path", f.capture.as_str());
    }
    if let Some(u) = f.evidence.get("username").and_then(Value::as_str) {
        put(&mut d, "user.name", u);
        put(&mut d, "related.user", vec![u]);
    }

    let mut raw = to_map(f)?;
    for k in ["ts", "message"] {
        raw.remove(k);
    }
    match raw.remove("flow") {
        Some(Value::String(id)) if !id.is_empty() => put(&mut d, "smtpaudit.flow.id", id),
        _ => {}
    }
    if detail::lean() && !f.capture.is_empty() {
        // In `log.file.path` already.
        raw.remove("capture");
    }
    // kind, severity (the word), frame, evidence and any later field.
    for (k, v) in raw {
        if !v.is_null() {
            put(&mut d, &format!("smtpaudit.finding.{k}"), v);
        }
    }
    Ok(d)
}

/// The ECS document of one capture file; `fallback` stamps a capture without packets.
pub fn capture_doc(
    c: &CaptureRecord,
    fallback: Option<Timestamp>,
) -> io::Result<Map<String, Value>> {
    let ts = c.first_packet.or(fallback).unwrap_or_default();
    let mut d = base(ts, "event", "smtpaudit.capture");
    put(&mut d, "event.category", json!(["file"]));
    put(&mut d, "event.type", json!(["info"]));
    put(&mut d, "file.path", c.path.as_str());
    put_opt(&mut d, "event.start", c.first_packet.map(|t| t.to_string()));
    put_opt(&mut d, "event.end", c.last_packet.map(|t| t.to_string()));
    let message = match &c.error {
        // An input that could not be read at all (others could): ECS's `error.message`.
        Some(e) => {
            put(&mut d, "error.message", e.as_str());
            format!("capture {} could not be read: {e}", c.path)
        }
        None => format!(
            "capture {}: {} packets, {} reported flows, {} warnings",
            c.path,
            c.packets,
            c.reported_flows,
            c.warnings.len()
        ),
    };
    put(&mut d, "message", message);
    let mut raw = to_map(c)?;
    for k in ["path", "first_packet", "last_packet", "error"] {
        raw.remove(k);
    }
    put(&mut d, "smtpaudit.capture", raw);
    Ok(d)
}

/// The ECS document closing a run.
pub fn summary_doc(s: &Summary, latest: Option<Timestamp>) -> io::Result<Map<String, Value>> {
    let mut d = base(latest.unwrap_or_default(), "event", "smtpaudit.summary");
    put(&mut d, "event.category", json!(["network"]));
    put(&mut d, "event.type", json!(["info"]));
    let f = &s.findings;
    put(
        &mut d,
        "message",
        format!(
            "{} flows; findings: {} critical, {} high, {} medium, {} low, {} info",
            s.flows, f.critical, f.high, f.medium, f.low, f.info
        ),
    );
    put(&mut d, "smtpaudit.schema_version", SCHEMA_VERSION);
    put(&mut d, "smtpaudit.summary", Value::Object(to_map(s)?));
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn put_nests_and_never_panics_on_a_scalar_prefix() {
        let mut d = Map::new();
        put(&mut d, "a.b.c", 1);
        put(&mut d, "a.b.d", 2);
        put(&mut d, "x", 3);
        put(&mut d, "x.y", 4);
        assert_eq!(
            Value::Object(d),
            json!({"a": {"b": {"c": 1, "d": 2}}, "x": 3})
        );
    }

    #[test]
    fn tls_record_fields_map_to_ecs() {
        // Shaped as the TLS analyzer serialises its record.
        let raw = json!({
            "version": "TLSv1.2", "cipher": "TLS_RSA_WITH_RC4_128_SHA", "sni": "mx.example.org",
            "handshake": "complete", "ja4": null,
            "client": {"ciphers": ["TLS_RSA_WITH_RC4_128_SHA", "0x00ff"], "alpn": ["h2"]},
            "server": {"resumed": false, "alpn": "smtp", "legacy_version": "TLSv1.2"},
            "certificate": {
                "subject": "C=US, O=Example, CN=mx.example.org",
                "issuer": "CN=mx.example.org",
                "san": ["mx.example.org"],
                "not_before": "2025-01-01T00:00:00Z", "not_after": "2026-01-01T00:00:00Z",
                "key_type": "RSA", "key_bits": 1024,
                "sha256": "00ff", "self_signed": true, "problems": ["expired", "weak_key"]
            }
        });
        let Value::Object(mut raw) = raw else {
            panic!("not an object")
        };
        let mut d = Map::new();
        tls_fields(&mut d, &mut raw);
        let d = Value::Object(d);
        let t = &d["tls"];
        assert_eq!(t["version"], "1.2");
        assert_eq!(t["version_protocol"], "tls");
        assert_eq!(t["established"], true);
        assert_eq!(t["cipher"], "TLS_RSA_WITH_RC4_128_SHA");
        assert_eq!(t["client"]["server_name"], "mx.example.org");
        assert_eq!(t["resumed"], false);
        assert_eq!(t["next_protocol"], "smtp");
        assert_eq!(t["client"]["supported_ciphers"][1], "0x00ff");
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
        // Mapped scalars leave the custom remainder; the rest stays there.
        assert!(!raw.contains_key("version") && !raw.contains_key("sni"));
        assert!(raw.contains_key("certificate") && raw.contains_key("handshake"));
    }

    #[test]
    fn severity_scale_is_monotonic() {
        let v: Vec<u8> = Severity::ALL_DESC
            .iter()
            .map(|s| ecs_severity(*s))
            .collect();
        assert_eq!(v, vec![99, 73, 47, 21, 1]);
    }
}
