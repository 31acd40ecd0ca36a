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
//! Each event is written straight into the line buffer from the typed records ([`doc`]), one
//! object after the other in key order, with no JSON tree in between: the ECS fields by
//! hand, in the order of the table in the docs, and the custom namespace's records through a
//! serializer that sorts their keys ([`sorted`]). Keys come out sorted at every level, as
//! they did when events were built as `serde_json` maps, so output is stable.

mod doc;
mod sorted;
mod x509;

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;

use serde_json::Value;

use super::community_id;
use super::model::{
    AuthOutcome, CaptureRecord, EndpointRecord, FlowClass, FlowRecord, HandshakeOutcome,
    SCHEMA_VERSION, Summary, TlsRecord, ToolInfo, detail,
};
use super::{LineWriter, ReportSink, SinkOptions, finding_for_flow, report_order};
use crate::findings::{Finding, Kind, Severity};
use crate::time::Timestamp;
use doc::Doc;
use sorted::{Object, Pool};

pub use x509::x509_doc;

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
    /// Buffers of the key-sorting serializer, reused across events.
    pool: Pool,
    /// Latest capture time seen, for the summary's `@timestamp` (never the wall clock).
    latest: Option<Timestamp>,
}

impl EcsSink {
    pub fn new(out: Box<dyn Write>, opts: SinkOptions) -> Self {
        EcsSink {
            out: LineWriter::new(out, opts),
            pool: Pool::default(),
            latest: None,
        }
    }

    fn saw(&mut self, ts: Option<Timestamp>) {
        if let Some(ts) = ts {
            self.latest = Some(self.latest.map_or(ts, |l| l.max(ts)));
        }
    }

    /// One event, written by `f` into the line buffer.
    fn event(&mut self, f: impl FnOnce(&mut Doc<'_>)) -> io::Result<()> {
        let pool = &mut self.pool;
        let written = self.out.write_line(|buf| {
            let mut d = Doc::begin(buf, pool);
            f(&mut d);
            d.end()
        });
        self.pool.trim();
        written
    }
}

impl ReportSink for EcsSink {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> io::Result<()> {
        self.saw(Some(flow.end));
        self.event(|d| flow_event(d, flow))?;
        for f in report_order(findings) {
            let f = finding_for_flow(f, flow);
            self.event(|d| finding_event(d, &f, Some(flow)))?;
        }
        self.out.end_of_flow()
    }

    fn capture(&mut self, capture: &CaptureRecord) -> io::Result<()> {
        self.saw(capture.last_packet);
        let latest = self.latest;
        self.event(|d| capture_event(d, capture, latest))?;
        self.out.end_of_flow()
    }

    fn finish(&mut self, findings: &[Finding], summary: &Summary) -> io::Result<()> {
        for f in findings {
            self.saw(Some(f.ts));
            self.event(|d| finding_event(d, f, None))?;
        }
        let latest = self.latest;
        self.event(|d| summary_event(d, summary, latest))?;
        self.out.flush()
    }
}

/// The `event.*` object. Members in key order, as everywhere in a document.
struct EventFields<'a> {
    category: &'a [&'a str],
    dataset: &'static str,
    duration: Option<i64>,
    end: Option<Timestamp>,
    kind: &'static str,
    outcome: Option<&'static str>,
    severity: Option<u8>,
    start: Option<Timestamp>,
    ty: &'static str,
}

impl EventFields<'_> {
    fn write(&self, d: &mut Doc<'_>) {
        d.obj("event", |d| {
            d.strs("category", self.category.iter().copied());
            d.str("dataset", self.dataset);
            if let Some(n) = self.duration {
                d.i64("duration", n);
            }
            if let Some(t) = self.end {
                d.display("end", &t);
            }
            d.str("kind", self.kind);
            d.str("module", MODULE);
            if let Some(o) = self.outcome {
                d.str("outcome", o);
            }
            if let Some(s) = self.severity {
                d.u64("severity", u64::from(s));
            }
            if let Some(t) = self.start {
                d.display("start", &t);
            }
            d.strs("type", [self.ty]);
        });
    }
}

fn ecs_version(d: &mut Doc<'_>) {
    d.obj("ecs", |d| d.str("version", ECS_VERSION));
}

fn observer(d: &mut Doc<'_>) {
    let tool = ToolInfo::default();
    d.obj("observer", |d| {
        d.str("product", tool.name);
        d.str("version", tool.version);
    });
}

fn ip_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

/// An address as text, formatted once for the several fields of an event that carry it.
#[derive(Clone, Copy)]
struct IpText {
    buf: [u8; 64],
    len: usize,
}

impl IpText {
    fn new(ip: IpAddr) -> Self {
        let mut t = IpText {
            buf: [0; 64],
            len: 0,
        };
        // The longest address text is 45 bytes: it fits.
        let _ = fmt::Write::write_fmt(&mut t, format_args!("{ip}"));
        t
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// One end of a connection with its address as text.
#[derive(Clone, Copy)]
struct End {
    ep: EndpointRecord,
    ip: IpText,
}

impl End {
    fn new(ep: EndpointRecord) -> Self {
        End {
            ep,
            ip: IpText::new(ep.ip),
        }
    }
}

/// `ip:port`, `[ip]:port` for IPv6.
impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ep.ip {
            IpAddr::V4(_) => write!(f, "{}:{}", self.ip.as_str(), self.ep.port),
            IpAddr::V6(_) => write!(f, "[{}]:{}", self.ip.as_str(), self.ep.port),
        }
    }
}

/// The two ends of a connection, and whether it carried SMTP, shared by the flow document
/// and its findings so an alert can be searched by address without a join.
#[derive(Clone, Copy)]
struct Ends {
    client: End,
    server: End,
    smtp: bool,
}

impl Ends {
    fn new(client: EndpointRecord, server: EndpointRecord, smtp: bool) -> Self {
        Ends {
            client: End::new(client),
            server: End::new(server),
            smtp,
        }
    }

    fn of(flow: &FlowRecord) -> Self {
        let smtp = flow.smtp.is_some() || flow.class != FlowClass::Unknown;
        Ends::new(flow.client, flow.server, smtp)
    }
}

/// `source`, `destination` (and in full documents `client` and `server`, which ECS allows
/// beside them: lean ones do not repeat the same two objects). The client opened the
/// connection (REPORT.md), so it is the ECS source.
fn side(d: &mut Doc<'_>, key: &'static str, e: &End, packets: Option<u64>) {
    d.obj(key, |d| {
        d.str("ip", e.ip.as_str());
        if let Some(n) = packets {
            d.u64("packets", n);
        }
        d.u64("port", u64::from(e.ep.port));
    });
}

/// `network.*`; `packets` on flow documents.
fn network(d: &mut Doc<'_>, e: &Ends, packets: Option<u64>) {
    let full = !detail::lean();
    let (c, s) = (e.client.ep, e.server.ep);
    d.obj("network", |d| {
        d.str(
            "community_id",
            &community_id::tcp_v1((c.ip, c.port), (s.ip, s.port)),
        );
        if full {
            // `network.transport` says it.
            d.str("iana_number", "6");
            if let Some(n) = packets {
                d.u64("packets", n);
            }
        }
        if e.smtp {
            d.str("protocol", "smtp");
        }
        d.str("transport", "tcp");
        d.str("type", ip_type(c.ip));
    });
}

/// `related.*`: the SNI, the two addresses, the user names. Lean documents write only what
/// no other field of the event says: the addresses are `source.ip` and `destination.ip`, the
/// SNI is `tls.client.server_name`, a single user is `user.name`; more users than one are
/// written.
fn related(d: &mut Doc<'_>, host: Option<&str>, ends: Option<&Ends>, users: &[&str]) {
    let full = !detail::lean();
    d.obj("related", |d| {
        if let Some(h) = host.filter(|_| full) {
            d.strs("hosts", [h]);
        }
        if let Some(e) = ends.filter(|_| full) {
            let (c, s) = (e.client.ip.as_str(), e.server.ip.as_str());
            d.strs("ip", std::iter::once(c).chain((s != c).then_some(s)));
        }
        if users.len() > 1 || (full && !users.is_empty()) {
            d.strs("user", users.iter().copied());
        }
    });
}

/// The `tls.version_protocol` and `tls.version` ECS wants ("tls", "1.3") from the model's
/// name of the selected version ("TLSv1.3", "SSLv3"). Unknown spellings (an unassigned code
/// such as "0x7f1c") are not mapped and stay under `smtpaudit.tls.version`.
pub fn ecs_tls_version(v: &str) -> Option<(&'static str, Cow<'_, str>)> {
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
        Cow::Borrowed(rest)
    } else {
        Cow::Owned(format!("{rest}.0"))
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

/// `tls.*` of a flow: version, cipher, fingerprints, SNI, what the client offered and the
/// server chose beyond version and cipher (`client.ciphers`, `server.alpn`,
/// `server.resumed`, as far as the record at this detail level has them) and the server
/// certificate.
fn tls_fields(d: &mut Doc<'_>, tls: &TlsRecord) {
    let version = tls.version.as_deref().and_then(ecs_tls_version);
    // Written only where the record at this detail level has them.
    let offered = tls.client.as_ref().filter(|_| !detail::lean());
    let chosen = tls
        .server
        .as_ref()
        .filter(|_| !detail::lean_plain_server(&tls.server));
    d.obj("tls", |d| {
        if let Some(c) = &tls.cipher {
            d.str("cipher", c);
        }
        d.obj("client", |d| {
            if let Some(j) = &tls.ja3 {
                d.str("ja3", j);
            }
            if let Some(s) = &tls.sni {
                d.str("server_name", s);
            }
            if let Some(c) = offered.filter(|c| !c.ciphers.is_empty()) {
                d.strs("supported_ciphers", c.ciphers.iter().map(String::as_str));
            }
        });
        d.bool("established", tls.handshake == HandshakeOutcome::Complete);
        if let Some(p) = chosen.and_then(|s| s.alpn.as_deref()) {
            d.str("next_protocol", p);
        }
        if let Some(s) = chosen {
            d.bool("resumed", s.resumed);
        }
        d.obj("server", |d| {
            let cert = tls.certificate.as_ref().map(|c| c as &dyn x509::Cert);
            x509::server_fields(d, tls.ja3s.as_deref(), cert);
        });
        if let Some((proto, num)) = &version {
            d.str("version", num);
            d.str("version_protocol", proto);
        }
    });
}

/// `smtpaudit.tls`: the TLS record minus what the ECS fields carry (and, lean, minus the
/// certificate, which `tls.server.*` carries).
fn tls_rest(o: &mut Object<'_, '_>, tls: &TlsRecord) -> Result<(), serde_json::Error> {
    let mapped_version = tls.version.as_deref().and_then(ecs_tls_version).is_some();
    let lean = detail::lean();
    o.fields(
        tls,
        &|k| match k {
            "version" => !mapped_version,
            "cipher" => tls.cipher.is_none(),
            "sni" => tls.sni.is_none(),
            "ja3" => tls.ja3.is_none(),
            "ja3s" => tls.ja3s.is_none(),
            "certificate" => !lean,
            _ => true,
        },
        false,
    )
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

/// `message` of a flow, written as it is formatted.
struct FlowMessage<'a>(&'a FlowRecord, &'a Ends);

impl fmt::Display for FlowMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (flow, ends) = (self.0, self.1);
        write!(
            f,
            "{} SMTP connection {} -> {}",
            flow.class.as_str(),
            ends.client,
            ends.server
        )?;
        if let Some(tls) = &flow.tls {
            let hs = match tls.handshake {
                HandshakeOutcome::Complete => "complete",
                HandshakeOutcome::Failed => "failed",
                HandshakeOutcome::Incomplete => "incomplete",
            };
            write!(f, ", TLS handshake {hs}")?;
            // Lean documents have version and cipher in `tls.*` only.
            if let Some(v) = tls.version.as_ref().filter(|_| !detail::lean()) {
                write!(f, " ({v}")?;
                if let Some(c) = &tls.cipher {
                    write!(f, ", {c}")?;
                }
                f.write_str(")")?;
            }
        }
        Ok(())
    }
}

fn duration_nanos(start: Timestamp, end: Timestamp) -> i64 {
    let d = end.as_nanos().saturating_sub(start.as_nanos()).max(0);
    i64::try_from(d).unwrap_or(i64::MAX)
}

/// The first user who authenticated, then every other name tried, each once.
fn flow_users(flow: &FlowRecord) -> Vec<&str> {
    let mut users: Vec<&str> = Vec::new();
    for a in flow.smtp.iter().flat_map(|s| &s.auth) {
        match a.username.as_deref() {
            Some(u) if !users.contains(&u) => users.push(u),
            _ => {}
        }
    }
    users
}

/// The ECS document of one flow.
fn flow_event(d: &mut Doc<'_>, flow: &FlowRecord) {
    let full = !detail::lean();
    let ends = Ends::of(flow);
    let (up, down) = (flow.tcp.to_server.packets, flow.tcp.to_client.packets);
    // `user.name` is a single keyword in ECS: the first user who authenticated; every name
    // tried is in `related.user` (an array field) and `smtpaudit.smtp.auth`.
    let users = flow_users(flow);
    d.display("@timestamp", &flow.start);
    if full {
        side(d, "client", &ends.client, None);
    }
    side(d, "destination", &ends.server, Some(down));
    ecs_version(d);
    EventFields {
        category: &["network"],
        dataset: "smtpaudit.flow",
        duration: Some(duration_nanos(flow.start, flow.end)),
        // `@timestamp` plus `event.duration`.
        end: full.then_some(flow.end),
        kind: "event",
        outcome: flow_outcome(flow),
        severity: None,
        // `@timestamp` is the start already.
        start: full.then_some(flow.start),
        ty: "connection",
    }
    .write(d);
    d.obj("log", |d| d.obj("file", |d| d.str("path", &flow.capture)));
    d.display("message", &FlowMessage(flow, &ends));
    network(d, &ends, Some(up.saturating_add(down)));
    observer(d);
    let sni = flow.tls.as_ref().and_then(|t| t.sni.as_deref());
    related(d, sni, Some(&ends), &users);
    if full {
        side(d, "server", &ends.server, None);
    }
    // The record as the JSON report has it, minus what the ECS fields carry; class, smtp,
    // tcp and whatever the model grows later.
    d.sorted("smtpaudit", |o| {
        o.entry("flow", |s| {
            let mut f = Object::begin(s);
            // `log.file.path` is the capture; lean documents do not repeat it.
            if full {
                f.value("capture", &flow.capture)?;
            }
            f.value("id", &flow.id)?;
            f.end();
            Ok(())
        })?;
        if let Some(tls) = &flow.tls {
            o.entry("tls", |s| {
                let mut t = Object::begin(s);
                tls_rest(&mut t, tls)?;
                t.end();
                Ok(())
            })?;
        }
        o.fields(
            flow,
            &|k| {
                !matches!(
                    k,
                    "client"
                        | "server"
                        | "start"
                        | "end"
                        | "duration_secs"
                        | "id"
                        | "capture"
                        | "tls"
                )
            },
            true,
        )
    });
    side(d, "source", &ends.client, Some(up));
    if let Some(tls) = &flow.tls {
        tls_fields(d, tls);
    }
    if let Some(first) = users.first() {
        d.obj("user", |d| d.str("name", first));
    }
}

/// `event.category` of a finding: credential findings are authentication events too.
fn finding_category(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::CleartextCredentials
        | Kind::AuthBruteForce
        | Kind::AuthPasswordSpraying
        | Kind::AuthDistributedBruteForce => &["network", "authentication"],
        _ => &["network", "intrusion_detection"],
    }
}

/// The ECS document of one finding; `flow` is its flow (None for run-wide findings).
fn finding_event(d: &mut Doc<'_>, f: &Finding, flow: Option<&FlowRecord>) {
    let full = !detail::lean();
    // Every finding line names its ends and its capture, so that it stands alone in a SIEM
    // (REPORT.md): the capture is the file the event came from, ECS's `log.file.path`.
    let ends = match (flow, f.endpoints) {
        (Some(flow), _) => Some(Ends::of(flow)),
        // The cross-connection findings all come from SMTP dialogs.
        (None, Some(e)) => Some(Ends::new(e.client, e.server, true)),
        (None, None) => None,
    };
    let user = f.evidence.get("username").and_then(Value::as_str);
    let outcome = match f.kind {
        Kind::TlsHandshakeFailure | Kind::StarttlsRefused | Kind::ConnectionFailed => {
            Some("failure")
        }
        Kind::CleartextCredentials | Kind::AuthBruteForce => f
            .evidence
            .get("outcome")
            .and_then(Value::as_str)
            .and_then(|o| {
                ["success", "failure", "unknown"]
                    .into_iter()
                    .find(|x| *x == o)
            }),
        _ => None,
    };
    let ty = match f.kind {
        Kind::StarttlsRefused => "denied",
        Kind::ConnectionFailed => "connection",
        _ => "info",
    };

    d.display("@timestamp", &f.ts);
    if let Some(e) = ends.filter(|_| full) {
        side(d, "client", &e.client, None);
    }
    if let Some(e) = &ends {
        side(d, "destination", &e.server, None);
    }
    ecs_version(d);
    EventFields {
        category: finding_category(f.kind),
        dataset: "smtpaudit.finding",
        duration: None,
        end: None,
        kind: "alert",
        outcome,
        severity: Some(ecs_severity(f.severity)),
        start: None,
        ty,
    }
    .write(d);
    if !f.capture.is_empty() {
        d.obj("log", |d| d.obj("file", |d| d.str("path", &f.capture)));
    }
    d.str("message", &f.message);
    if let Some(e) = &ends {
        network(d, e, None);
    }
    observer(d);
    related(d, None, ends.as_ref(), user.as_slice());
    d.obj("rule", |d| {
        d.str("id", f.kind.as_str());
        d.str("name", f.kind.as_str());
        d.str("ruleset", MODULE);
    });
    if let Some(e) = ends.filter(|_| full) {
        side(d, "server", &e.server, None);
    }
    // kind, severity (the word), frame, evidence and any later field.
    d.sorted("smtpaudit", |o| {
        o.entry("finding", |s| {
            let mut x = Object::begin(s);
            // In `log.file.path` already.
            let capture_elsewhere = !full && !f.capture.is_empty();
            x.fields(
                f,
                &|k| match k {
                    "ts" | "message" | "flow" => false,
                    "capture" => !capture_elsewhere,
                    _ => true,
                },
                true,
            )?;
            x.end();
            Ok(())
        })?;
        if !f.flow.is_empty() {
            o.entry("flow", |s| {
                let mut x = Object::begin(s);
                x.value("id", &f.flow)?;
                x.end();
                Ok(())
            })?;
        }
        Ok(())
    });
    if let Some(e) = &ends {
        side(d, "source", &e.client, None);
    }
    if let Some(u) = user {
        d.obj("user", |d| d.str("name", u));
    }
}

/// The ECS document of one capture file; `fallback` stamps a capture without packets.
fn capture_event(d: &mut Doc<'_>, c: &CaptureRecord, fallback: Option<Timestamp>) {
    let ts = c.first_packet.or(fallback).unwrap_or_default();
    d.display("@timestamp", &ts);
    ecs_version(d);
    if let Some(e) = &c.error {
        // An input that could not be read at all (others could): ECS's `error.message`.
        d.obj("error", |d| d.str("message", e));
    }
    EventFields {
        category: &["file"],
        dataset: "smtpaudit.capture",
        duration: None,
        end: c.last_packet,
        kind: "event",
        outcome: None,
        severity: None,
        start: c.first_packet,
        ty: "info",
    }
    .write(d);
    d.obj("file", |d| d.str("path", &c.path));
    match &c.error {
        Some(e) => d.display(
            "message",
            &format_args!("capture {} could not be read: {e}", c.path),
        ),
        None => d.display(
            "message",
            &format_args!(
                "capture {}: {} packets, {} reported flows, {} warnings",
                c.path,
                c.packets,
                c.reported_flows,
                c.warnings.len()
            ),
        ),
    }
    observer(d);
    d.sorted("smtpaudit", |o| {
        o.entry("capture", |s| {
            let mut x = Object::begin(s);
            x.fields(
                c,
                &|k| !matches!(k, "path" | "first_packet" | "last_packet" | "error"),
                false,
            )?;
            x.end();
            Ok(())
        })
    });
}

/// The ECS document closing a run.
fn summary_event(d: &mut Doc<'_>, s: &Summary, latest: Option<Timestamp>) {
    d.display("@timestamp", &latest.unwrap_or_default());
    ecs_version(d);
    EventFields {
        category: &["network"],
        dataset: "smtpaudit.summary",
        duration: None,
        end: None,
        kind: "event",
        outcome: None,
        severity: None,
        start: None,
        ty: "info",
    }
    .write(d);
    let f = &s.findings;
    d.display(
        "message",
        &format_args!(
            "{} flows; findings: {} critical, {} high, {} medium, {} low, {} info",
            s.flows, f.critical, f.high, f.medium, f.low, f.info
        ),
    );
    observer(d);
    d.obj("smtpaudit", |d| {
        d.u64("schema_version", u64::from(SCHEMA_VERSION));
        d.record("summary", s);
    });
}

#[cfg(test)]
mod tests;
