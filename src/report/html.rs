//! `--format html`: one self-contained page (inline CSS, JavaScript and SVG; nothing fetched)
//! with the facts of the text report: the summary, problems grouped by cause with their
//! remedies, the per-server posture, a timeline of connections per server coloured by
//! outcome, and a searchable, paged flow table with each flow's dialog summary.
//!
//! Everything that came off the wire (banners, EHLO names, user names, SNI, certificate
//! names, messages quoting them) is attacker-controlled. The page is written with maud, which
//! escapes every interpolated string; the flow table travels as JSON inside a
//! `<script type="application/json">` with `<`, `>` and `&` escaped as `\u003c`... so no
//! string can close the element, and the script fills cells with `textContent` only.
//!
//! Memory stays bounded like the text report's: posture and problems as there, at most
//! [`MAX_FLOW_ROWS`] flow rows and [`MAX_TIMELINE_POINTS`] timeline points (the rest counted
//! and said on the page). At 25,000 flows the page is a few MB and the table shows 100 rows
//! per page.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::gather::{Gathered, capture_format, plural, sock};
use super::model::{
    CaptureRecord, EndpointRecord, FlowClass, FlowRecord, HandshakeOutcome, Summary, ToolInfo,
};
use super::posture::{ServerPosture, StarttlsPosture};
use super::story::{Problem, Step};
use super::{ReportSink, report_order};
use crate::findings::{Finding, Kind, Severity};

/// Flow rows kept for the table.
pub const MAX_FLOW_ROWS: usize = 50_000;
/// Connections kept for the timelines (all servers together).
pub const MAX_TIMELINE_POINTS: usize = 200_000;
/// Servers drawn in the timeline (those with most flows).
const TIMELINE_SERVERS: usize = 20;
/// Columns of a timeline.
const TIMELINE_BUCKETS: usize = 120;
/// Characters of a dialog summary.
const MAX_DIALOG: usize = 400;

/// How a connection ended, for colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// TLS completed (STARTTLS or implicit).
    Tls,
    /// SMTP that stayed plaintext.
    Plaintext,
    /// STARTTLS removed, mangled or ignored on the way.
    Downgraded,
    /// Never established, refused, mode mismatch, handshake failure.
    Failed,
    Other,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Tls,
        Outcome::Plaintext,
        Outcome::Downgraded,
        Outcome::Failed,
        Outcome::Other,
    ];

    fn of(flow: &FlowRecord, findings: &[Finding]) -> Self {
        let has = |ks: &[Kind]| findings.iter().any(|f| ks.contains(&f.kind));
        if has(&[
            Kind::ConnectionFailed,
            Kind::TlsHandshakeFailure,
            Kind::TlsModeMismatch,
            Kind::StarttlsRefused,
        ]) {
            return Outcome::Failed;
        }
        if has(&[
            Kind::StarttlsStripped,
            Kind::StarttlsDowngrade,
            Kind::StarttlsIgnored,
        ]) {
            return Outcome::Downgraded;
        }
        match flow.class {
            FlowClass::Plaintext => Outcome::Plaintext,
            FlowClass::Starttls | FlowClass::ImplicitTls => Outcome::Tls,
            FlowClass::Unknown => Outcome::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Outcome::Tls => "tls",
            Outcome::Plaintext => "plaintext",
            Outcome::Downgraded => "downgraded",
            Outcome::Failed => "failed",
            Outcome::Other => "other",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Outcome::Tls => "#2e7d32",
            Outcome::Plaintext => "#ef6c00",
            Outcome::Downgraded => "#6a1b9a",
            Outcome::Failed => "#c62828",
            Outcome::Other => "#9e9e9e",
        }
    }
}

/// A server: address and port.
type ServerKey = (std::net::IpAddr, u16);

/// One row of the flow table, as the page's script reads it.
#[derive(serde::Serialize)]
struct FlowRow(
    /// id
    String,
    /// start
    String,
    /// client
    String,
    /// server
    String,
    /// class
    &'static str,
    /// outcome
    &'static str,
    /// dialog summary
    String,
    /// finding kinds
    String,
);

pub struct HtmlSink {
    out: Box<dyn Write>,
    g: Gathered,
    rows: Vec<FlowRow>,
    rows_not_kept: u64,
    /// Capture time (ns) and outcome of connections, per server.
    points: BTreeMap<ServerKey, Vec<(i128, Outcome)>>,
    points_kept: usize,
    points_not_kept: u64,
}

impl HtmlSink {
    pub fn new(out: Box<dyn Write>) -> Self {
        HtmlSink {
            out,
            g: Gathered::default(),
            rows: Vec::new(),
            rows_not_kept: 0,
            points: BTreeMap::new(),
            points_kept: 0,
            points_not_kept: 0,
        }
    }

    fn page(&self, summary: &Summary) -> Markup {
        let tool = ToolInfo::default();
        let pc = self.g.book.problem_counts();
        let problems = pc.critical + pc.high + pc.medium + pc.low + pc.info;
        let cl = &summary.classes;
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    // No network: inline styles and scripts only, and the policy says so.
                    meta http-equiv="Content-Security-Policy"
                        content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";
                    title { (tool.name) " report" }
                    style { (PreEscaped(CSS)) }
                }
                body {
                    header {
                        h1 { (tool.name) " " (tool.version) }
                        p.meta {
                            (plural(self.g.captures.len() as u64, "capture", "captures")) ", "
                            (plural(self.g.captures.iter().map(|c| c.packets).sum(), "packet", "packets")) ", "
                            (plural(summary.flows, "mail flow", "mail flows"))
                        }
                    }
                    section #captures {
                        h2 { "Captures" }
                        table {
                            thead { tr { th { "file" } th { "format" } th { "packets" } th { "bytes" } th { "flows reported" } th { "notes" } } }
                            tbody {
                                @for c in &self.g.captures {
                                    tr {
                                        td.mono { (c.path) }
                                        td { (capture_format(c)) }
                                        td.num { (c.packets) }
                                        td.num { (c.bytes) }
                                        td.num { (c.reported_flows) " of " (c.tcp_flows) }
                                        td {
                                            @if let Some(e) = &c.error { div.warn { "NOT READ: " (e) } }
                                            @if let Some(p) = &c.chained_to { div { "continues " span.mono { (p) } } }
                                            @for w in &c.warnings { div.warn { "warning: " (w) } }
                                            @if c.flow_table.scanners > 0 {
                                                div { (plural(c.flow_table.scanners, "scanning source", "scanning sources")) " (no connection_failed for their probes)" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    section #summary {
                        h2 { "Summary" }
                        div.cards {
                            div.card { div.big { (summary.flows) } div { "mail flows" } }
                            div.card { div.big { (cl.plaintext) } div { "plaintext" } }
                            div.card { div.big { (cl.starttls) } div { "STARTTLS" } }
                            div.card { div.big { (cl.implicit_tls) } div { "implicit TLS" } }
                            div.card { div.big { (cl.unknown) } div { "unknown" } }
                            div.card.problems { div.big #problem-count { (problems) } div { "problems from " (plural(self.g.book.finding_count(), "finding", "findings")) } }
                        }
                        p.sev {
                            @for (sev, n) in [(Severity::Critical, pc.critical), (Severity::High, pc.high), (Severity::Medium, pc.medium), (Severity::Low, pc.low), (Severity::Info, pc.info)] {
                                span class=(format!("badge {}", sev.as_str())) { (n) " " (sev.as_str()) }
                                " "
                            }
                        }
                    }
                    section #problems {
                        h2 { "Problems" }
                        @if self.g.book.is_empty() {
                            p #no-findings { "No findings." }
                        }
                        @for ((Reverse(sev), signature, remedy), g) in self.g.book.groups() {
                            details.problem open class=(sev.as_str()) {
                                summary {
                                    span class=(format!("badge {}", sev.as_str())) { (sev.as_str()) }
                                    " " span.sig { (signature) } " "
                                    span.count { "(" (plural(g.count, "problem", "problems")) ")" }
                                }
                                ul.samples {
                                    @for p in &g.samples { (self.problem_item(p)) }
                                }
                                @if g.count > g.samples.len() as u64 {
                                    p.more { "... and " (g.count - g.samples.len() as u64) " more" }
                                }
                                @if !remedy.is_empty() {
                                    p.remedy { strong { "Remedy: " } (remedy) }
                                }
                            }
                        }
                    }
                    @if !self.g.servers.is_empty() {
                        section #servers {
                            h2 { "Servers" }
                            table {
                                thead { tr {
                                    th { "server" } th { "flows" } th { "modes" } th { "STARTTLS" }
                                    th { "TLS versions" } th { "ciphers" } th { "AUTH offered before TLS" }
                                    th { "AUTH used in clear" } th { "failed flows" } th { "notes" }
                                } }
                                tbody {
                                    @for (server, sp) in self.g.servers.iter() { (server_row(server, sp)) }
                                }
                            }
                            @if self.g.servers.flows_not_tabulated() > 0 {
                                p.more { (self.g.servers.flows_not_tabulated()) " more flows to servers beyond the first " (super::posture::MAX_SERVERS) " not tabulated" }
                            }
                        }
                    }
                    @if !self.points.is_empty() {
                        section #timeline {
                            h2 { "Connections over time" }
                            p.legend {
                                @for o in Outcome::ALL {
                                    span.swatch style=(format!("background:{}", o.colour())) {} " " (o.name()) " "
                                }
                            }
                            (self.timeline())
                            @if self.points_not_kept > 0 {
                                p.more { (self.points_not_kept) " connections past the timeline's limit are not drawn" }
                            }
                        }
                    }
                    section #flows {
                        h2 { "Flows" }
                        p {
                            input #filter type="search" placeholder="filter: address, port, class, EHLO name, user, finding..." autocomplete="off";
                            " " span #shown {}
                        }
                        table #flow-table {
                            thead { tr { th { "start" } th { "client" } th { "server" } th { "class" } th { "outcome" } th { "dialog" } th { "findings" } } }
                            tbody #flow-rows {}
                        }
                        p #pager {
                            button #prev type="button" { "previous" } " " span #page {} " " button #next type="button" { "next" }
                        }
                        noscript { p { "The flow table needs JavaScript; the sections above do not." } }
                        @if self.rows_not_kept > 0 {
                            p.more { (self.rows_not_kept) " flows past the first " (MAX_FLOW_ROWS) " are not in the table (the JSON report has all)" }
                        }
                        script #flow-data type="application/json" { (PreEscaped(self.rows_json())) }
                        script { (PreEscaped(JS)) }
                    }
                }
            }
        }
    }

    fn problem_item(&self, p: &Problem) -> Markup {
        let cause = p.cause();
        html! {
            li {
                div.cause { (self.place(cause)) " " span.msg { (cause.message) } }
                (secret(cause))
                @for x in p.steps.iter().skip(1) {
                    div.symptom {
                        "\u{2192} " span.kind { (x.kind.as_str()) } " " (self.place(x)) " " span.msg { (x.message) }
                    }
                    (secret(x))
                }
                @if p.more_steps > 0 { div.more { "... and " (p.more_steps) " more findings" } }
            }
        }
    }

    fn place(&self, x: &Step) -> Markup {
        let endpoints = match (&x.endpoints, &x.label) {
            (Some((c, s)), _) => format!("{} \u{2192} {}", sock(*c), sock(*s)),
            (None, Some(l)) => l.clone(),
            (None, None) => "run-wide".to_string(),
        };
        let file = (self.g.order.len() > 1)
            .then(|| self.g.order.paths.get(x.capture).cloned())
            .flatten();
        html! {
            span.where {
                span.mono { (endpoints) }
                @if let Some(f) = file { " " span.mono.file { (f) } }
                " frame " (x.frame)
            }
        }
    }

    /// One SVG per busy server: stacked columns of connections per time slice, by outcome.
    fn timeline(&self) -> Markup {
        let all = self.points.values().flatten().map(|(t, _)| *t);
        let (Some(lo), Some(hi)) = (all.clone().min(), all.max()) else {
            return html! {};
        };
        let span = (hi - lo).max(1);
        let mut busiest: Vec<(&ServerKey, &Vec<(i128, Outcome)>)> = self.points.iter().collect();
        busiest.sort_by_key(|(k, v)| (Reverse(v.len()), **k));
        busiest.truncate(TIMELINE_SERVERS);
        busiest.sort_by_key(|(k, _)| **k);
        html! {
            @for ((ip, port), pts) in busiest {
                (server_timeline(EndpointRecord { ip: *ip, port: *port }, pts, lo, span))
            }
        }
    }

    fn rows_json(&self) -> String {
        let json = serde_json::to_string(&self.rows).unwrap_or_else(|_| "[]".into());
        // Inside <script>, `</script>` or `<!--` in a string would end the element: these
        // escapes keep the JSON equal and the HTML parser blind to it.
        json.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }
}

/// One server's timeline: stacked columns of connections per time slice, by outcome.
fn server_timeline(
    server: EndpointRecord,
    pts: &[(i128, Outcome)],
    lo: i128,
    span: i128,
) -> Markup {
    let mut buckets = vec![[0u32; 5]; TIMELINE_BUCKETS];
    for (t, o) in pts {
        let i = (((t - lo) * (TIMELINE_BUCKETS as i128 - 1)) / span) as usize;
        if let (Some(b), Some(slot)) =
            (buckets.get_mut(i), Outcome::ALL.iter().position(|x| x == o))
        {
            b[slot] += 1;
        }
    }
    let max = buckets
        .iter()
        .map(|b| b.iter().sum::<u32>())
        .max()
        .unwrap_or(1)
        .max(1);
    let (w, h) = (TIMELINE_BUCKETS * 6, 60usize);
    html! {
        div.tl {
            div.mono { (sock(server)) " (" (plural(pts.len() as u64, "connection", "connections")) ")" }
            svg width=(w) height=(h + 14) viewBox=(format!("0 0 {w} {}", h + 14)) role="img" {
                title { "connections to " (sock(server)) " over time" }
                rect x="0" y="0" width=(w) height=(h) fill="#f5f5f5" {}
                (PreEscaped(bars(&buckets, max, h)))
                text x="0" y=(h + 12) font-size="10" { (fmt_ns(lo)) }
                text x=(w) y=(h + 12) font-size="10" text-anchor="end" { (fmt_ns(lo + span)) }
            }
        }
    }
}

/// The rects of one timeline (numbers only, so written without a template).
fn bars(buckets: &[[u32; 5]], max: u32, h: usize) -> String {
    let mut s = String::new();
    for (i, b) in buckets.iter().enumerate() {
        let mut y = h as f64;
        for (slot, n) in b.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let bh = (*n as f64) * (h as f64) / (max as f64);
            y -= bh;
            let _ = write!(
                s,
                "<rect x=\"{}\" y=\"{y:.1}\" width=\"5\" height=\"{bh:.1}\" fill=\"{}\"><title>{n} {}</title></rect>",
                i * 6,
                Outcome::ALL[slot].colour(),
                Outcome::ALL[slot].name()
            );
        }
    }
    s
}

fn secret(x: &Step) -> Markup {
    html! {
        @if let Some(s) = &x.secret { div.secret { "secret: " span.mono { (s) } } }
        @if let Some(h) = &x.hashcat { div.secret { "hashcat: " span.mono { (h) } } }
    }
}

fn server_row(server: EndpointRecord, sp: &ServerPosture) -> Markup {
    let starttls = match sp.starttls() {
        StarttlsPosture::Unknown => "-".to_string(),
        StarttlsPosture::Always => "always".to_string(),
        StarttlsPosture::Never => "never".to_string(),
        StarttlsPosture::Sometimes => format!(
            "missing in {} of {}",
            sp.ehlo_seen - sp.starttls_offered,
            sp.ehlo_seen
        ),
    };
    let c = &sp.classes;
    let modes: Vec<String> = [
        ("plaintext", c.plaintext),
        ("starttls", c.starttls),
        ("implicit_tls", c.implicit_tls),
        ("unknown", c.unknown),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(m, n)| format!("{m} {n}"))
    .collect();
    let f = &sp.failures;
    let failures: Vec<String> = [
        ("connection_failed", f.connection_failed),
        ("tls_mode_mismatch", f.tls_mode_mismatch),
        ("starttls_refused", f.starttls_refused),
        ("tls_handshake_failure", f.tls_handshake_failure),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| format!("{k} {n}"))
    .collect();
    let join =
        |v: &std::collections::BTreeSet<String>| v.iter().cloned().collect::<Vec<_>>().join(", ");
    html! {
        tr class=(if sp.starttls() == StarttlsPosture::Sometimes { "warnrow" } else { "" }) {
            td.mono { (sock(server)) }
            td.num { (sp.flows) }
            td { (modes.join(", ")) }
            td { (starttls) }
            td { (join(&sp.tls_versions)) }
            td.mono.small { (join(&sp.ciphers)) }
            td.num { (sp.auth_offered_before_tls) }
            td.num { (sp.auth_used_in_clear) }
            td { (sp.failed_flows) @if !failures.is_empty() { " (" (failures.join(", ")) ")" } }
            td {
                @if !sp.fell_back_clients.is_empty() { div { "fell back to plaintext: " (join(&sp.fell_back_clients)) } }
                @if sp.bare_line_endings_accepted > 0 { div { "accepted bare line endings (LF without CR; SMTP smuggling risk) in " (sp.bare_line_endings_accepted) " flows" } }
            }
        }
    }
}

/// The dialog of a flow in one line: banner, EHLO, STARTTLS, AUTH, messages, TLS.
fn dialog(flow: &FlowRecord) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(s) = &flow.smtp {
        if let Some(b) = &s.banner {
            parts.push(format!("banner {b}"));
        }
        if let Some(h) = &s.helo {
            parts.push(format!("EHLO {h}"));
        }
        let st = &s.starttls;
        match (st.offered, st.issued, st.reply) {
            (_, true, Some(r)) => parts.push(format!("STARTTLS {r}")),
            (true, false, _) => parts.push("STARTTLS offered, not used".into()),
            _ => {}
        }
        for a in s.auth.iter().take(3) {
            parts.push(format!(
                "AUTH {} {} {}{}",
                a.mechanism,
                a.username.as_deref().unwrap_or("?"),
                serde_json::to_value(a.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                if a.in_cleartext { " in clear" } else { "" }
            ));
        }
        if s.auth.len() > 3 {
            parts.push(format!("{} more AUTH", s.auth.len() - 3));
        }
        if s.transactions > 0 {
            parts.push(plural(
                u64::from(s.transactions),
                "transaction",
                "transactions",
            ));
        }
    }
    if let Some(t) = &flow.tls {
        let outcome = match t.handshake {
            HandshakeOutcome::Complete => "complete",
            HandshakeOutcome::Failed => "failed",
            HandshakeOutcome::Incomplete => "incomplete",
        };
        let mut s = format!("TLS {outcome}");
        for v in [&t.version, &t.cipher].into_iter().flatten() {
            s.push(' ');
            s.push_str(v);
        }
        if let Some(sni) = &t.sni {
            s.push_str(" SNI ");
            s.push_str(sni);
        }
        for a in &t.alerts {
            if let Some(d) = &a.description {
                s.push_str(" alert ");
                s.push_str(d);
            }
        }
        parts.push(s);
    }
    let mut s = parts.join(" \u{b7} ");
    if s.chars().count() > MAX_DIALOG {
        s = s.chars().take(MAX_DIALOG).collect::<String>() + "\u{2026}";
    }
    s
}

fn fmt_ns(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let t = time::OffsetDateTime::from_unix_timestamp(secs as i64).ok();
    t.and_then(|t| {
        t.format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]Z"
        ))
        .ok()
    })
    .unwrap_or_default()
}

impl ReportSink for HtmlSink {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> io::Result<()> {
        self.g.flow(flow, findings);
        let outcome = Outcome::of(flow, findings);
        if self.points_kept < MAX_TIMELINE_POINTS {
            self.points
                .entry((flow.server.ip, flow.server.port))
                .or_default()
                .push((flow.start.as_nanos(), outcome));
            self.points_kept += 1;
        } else {
            self.points_not_kept += 1;
        }
        if self.rows.len() < MAX_FLOW_ROWS {
            let mut kinds: Vec<&str> = report_order(findings)
                .iter()
                .map(|f| f.kind.as_str())
                .collect();
            kinds.dedup();
            self.rows.push(FlowRow(
                flow.id.clone(),
                flow.start.rfc3339(),
                sock(flow.client),
                sock(flow.server),
                flow.class.as_str(),
                outcome.name(),
                dialog(flow),
                kinds.join(" "),
            ));
        } else {
            self.rows_not_kept += 1;
        }
        Ok(())
    }

    fn capture(&mut self, capture: &CaptureRecord) -> io::Result<()> {
        self.g.capture(capture);
        Ok(())
    }

    fn finish(&mut self, findings: &[Finding], summary: &Summary) -> io::Result<()> {
        self.g.finish(findings);
        // Same order whatever order the flows finished in.
        self.rows.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        let page = self.page(summary).into_string();
        self.out.write_all(page.as_bytes())?;
        self.out.flush()
    }
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1400px;padding:0 1.5em 3em;color:#212121}
h1{font-size:1.6em;margin:.8em 0 .1em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.meta{color:#616161;margin:0}.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em;overflow-wrap:anywhere}
td.mono{white-space:nowrap}td.mono.small{white-space:normal}
.small{font-size:.8em}table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #eee;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#fafafa;position:sticky;top:0}.num{text-align:right}.warn{color:#b71c1c}.warnrow{background:#fff3e0}
.cards{display:flex;flex-wrap:wrap;gap:.8em}.card{border:1px solid #e0e0e0;border-radius:6px;padding:.6em 1em;min-width:7em}
.card .big{font-size:1.8em;font-weight:600}.card.problems{border-color:#c62828}
.badge{display:inline-block;border-radius:3px;padding:0 .45em;color:#fff;font-size:.85em;text-transform:uppercase}
.badge.critical{background:#b71c1c}.badge.high{background:#e53935}.badge.medium{background:#f9a825;color:#000}.badge.low{background:#0288d1}.badge.info{background:#757575}
details.problem{border:1px solid #e0e0e0;border-left:5px solid #9e9e9e;border-radius:4px;margin:.6em 0;padding:.4em .8em}
details.critical{border-left-color:#b71c1c}details.high{border-left-color:#e53935}details.medium{border-left-color:#f9a825}details.low{border-left-color:#0288d1}
summary{cursor:pointer;font-weight:600}.sig{font-family:ui-monospace,monospace}.samples{margin:.4em 0;padding-left:1.2em}
.samples li{margin:.3em 0}.symptom{margin-left:1.5em;color:#424242}.kind{font-family:ui-monospace,monospace;font-weight:600}
.where{color:#616161}.remedy{background:#e8f5e9;border-radius:4px;padding:.4em .6em;margin:.4em 0}.secret{margin-left:1.5em;color:#b71c1c}
.more{color:#757575}.legend .swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:middle}
.tl{margin:.5em 0}#filter{width:28em;max-width:100%;padding:.3em}
td.outcome-failed{color:#c62828;font-weight:600}td.outcome-downgraded{color:#6a1b9a;font-weight:600}td.outcome-plaintext{color:#ef6c00}td.outcome-tls{color:#2e7d32}
"#;

const JS: &str = r#"
(function(){
  var rows = JSON.parse(document.getElementById('flow-data').textContent);
  var body = document.getElementById('flow-rows');
  var filter = document.getElementById('filter');
  var shown = document.getElementById('shown');
  var pageLabel = document.getElementById('page');
  var PAGE = 100, page = 0, matches = rows;
  var text = rows.map(function(r){ return r.join(' ').toLowerCase(); });
  function cell(tr, value, cls){ var td = document.createElement('td'); td.textContent = value; if (cls) td.className = cls; tr.appendChild(td); }
  function render(){
    while (body.firstChild) body.removeChild(body.firstChild);
    var pages = Math.max(1, Math.ceil(matches.length / PAGE));
    if (page >= pages) page = pages - 1;
    matches.slice(page * PAGE, page * PAGE + PAGE).forEach(function(r){
      var tr = document.createElement('tr');
      tr.dataset.id = r[0];
      cell(tr, r[1]); cell(tr, r[2], 'mono'); cell(tr, r[3], 'mono'); cell(tr, r[4]);
      cell(tr, r[5], 'outcome-' + r[5]); cell(tr, r[6]); cell(tr, r[7], 'mono small');
      body.appendChild(tr);
    });
    shown.textContent = matches.length + ' of ' + rows.length + ' flows';
    pageLabel.textContent = 'page ' + (page + 1) + ' of ' + pages;
  }
  filter.addEventListener('input', function(){
    var terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    matches = rows.filter(function(r, i){ return terms.every(function(t){ return text[i].indexOf(t) >= 0; }); });
    page = 0; render();
  });
  document.getElementById('prev').addEventListener('click', function(){ if (page > 0) { page--; render(); } });
  document.getElementById('next').addEventListener('click', function(){ page++; render(); });
  render();
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn rows_json_cannot_close_the_script_element() {
        let mut sink = HtmlSink::new(Box::new(io::sink()));
        sink.rows.push(FlowRow(
            "x".into(),
            "t".into(),
            "c".into(),
            "s".into(),
            "plaintext",
            "plaintext",
            "EHLO </script><script>alert(1)</script> & <!--".into(),
            String::new(),
        ));
        let json = sink.rows_json();
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
        let back: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
        assert_eq!(
            back[0][6], "EHLO </script><script>alert(1)</script> & <!--",
            "escapes keep the JSON equal"
        );
    }
}
