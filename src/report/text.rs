//! `--format text` (the default): what a person takes in at a glance. A header with the
//! inputs, flow counts per class, findings grouped by severity (most severe first) with their
//! endpoints, frame numbers and a one-line remedy, and a posture table per server.
//!
//! Memory stays bounded: flows are folded into per-server aggregates as they arrive (at most
//! [`MAX_SERVERS`] rows, each with capped sets), and each finding group keeps at most
//! [`SAMPLES_PER_GROUP`] examples next to its exact count.
//!
//! Strings that came off the wire (messages quoting a banner, certificate names, paths) are
//! printed with control characters escaped, so a hostile capture cannot drive the terminal.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;

use serde_json::Value;

use super::model::{
    CaptureRecord, ClassCounts, EndpointRecord, FlowClass, FlowRecord, HandshakeOutcome, Summary,
    ToolInfo,
};
use super::{CaptureOrder, ReportSink, SinkOptions, finding_for_flow};
use crate::findings::{Finding, Kind, Severity};

/// Rows of the server table; servers beyond it are counted, not shown.
pub const MAX_SERVERS: usize = 10_000;
/// Example findings shown per (severity, kind, remedy) group.
pub const SAMPLES_PER_GROUP: usize = 20;
/// Distinct TLS versions or ciphers remembered per server.
const MAX_SET: usize = 8;

/// The one-line remedy printed under a group of findings. For `tls_mode_mismatch` the side
/// that must change depends on which side spoke TLS (evidence `tls_side`).
pub fn remedy(f: &Finding) -> &'static str {
    match f.kind {
        Kind::CleartextCredentials => {
            "refuse AUTH before TLS on the server, make the client use STARTTLS or implicit TLS \
             (465), and change the exposed credentials"
        }
        Kind::TlsHandshakeFailure
            if f.evidence.get("rule").and_then(Value::as_str)
                == Some("client_hello_after_starttls_refused") =>
        {
            "the client began TLS although the server refused STARTTLS: fix the server's TLS \
             setup so it accepts STARTTLS, and make the client stop after a refusal"
        }
        Kind::TlsHandshakeFailure => {
            let alert = f.evidence.get("description").is_some_and(|d| d.is_string());
            match f.evidence.get("silence").and_then(Value::as_str) {
                Some("no_server_hello") => {
                    "the server took the connection and the ClientHello but never answered: \
                     check that a TLS server (not a plaintext or hung process) listens there, \
                     and that no middlebox on the path holds the handshake"
                }
                Some("server_flight_unacknowledged") => {
                    "the server's first flight never reached the client whole: a path-MTU black \
                     hole (large packets dropped, ICMP \"fragmentation needed\" / ICMPv6 \
                     \"packet too big\" filtered): allow those ICMP messages or clamp the TCP \
                     MSS on the path; TLS settings are not the cause"
                }
                _ if alert => {
                    "compare what each side supports (TLS versions, cipher suites, certificate \
                     and SNI); the alert description names the side that gave up and why"
                }
                _ => {
                    "one side closed during the handshake without a readable alert: compare \
                     what each side supports (TLS versions, cipher suites, certificate and \
                     SNI) and read that side's log for the reason"
                }
            }
        }
        Kind::TlsModeMismatch => {
            let port = f.evidence.get("server_port").and_then(Value::as_u64);
            match (f.evidence.get("tls_side").and_then(Value::as_str), port) {
                (Some("server"), Some(465)) => {
                    "port 465 is implicit TLS (RFC 8314): set the client to TLS-on-connect \
                     (SMTPS) for 465, or to STARTTLS on 587"
                }
                (Some("server"), _) if f.evidence.contains_key("basis") => {
                    "this server port spoke TLS from the first byte earlier in the capture: set \
                     the client to TLS-on-connect for it, or point it at the server's STARTTLS \
                     port (587 for submission, 25 for relay)"
                }
                (Some("server"), _) => {
                    "the server speaks implicit TLS where the client expects plaintext/STARTTLS: \
                     point the client at the STARTTLS port (587 or 25) or switch it to implicit TLS"
                }
                (_, Some(465)) => {
                    "the server on 465 speaks plaintext SMTP where clients expect implicit TLS \
                     (RFC 8314): enable TLS-on-connect on 465, or move the client to STARTTLS on 587"
                }
                _ => {
                    "the client is set for implicit TLS where the server expects plaintext/STARTTLS: \
                     point the client at 465 or switch it to STARTTLS"
                }
            }
        }
        Kind::StarttlsNotUsed => {
            "make the client require STARTTLS when it is offered (or use implicit TLS on 465)"
        }
        Kind::StarttlsRefused => {
            "fix the server's TLS setup (certificate, key, TLS enabled) so it accepts STARTTLS"
        }
        Kind::StarttlsStripped => {
            "find the device on the path that rewrites EHLO (firewall SMTP inspection, proxy) and \
             stop it; make clients require TLS (MTA-STS or DANE between servers)"
        }
        Kind::StarttlsInjection => {
            "update the MTA: it must discard plaintext buffered across STARTTLS (CVE-2011-0411 \
             class)"
        }
        Kind::WeakTlsVersion => "disable SSLv2, SSLv3, TLS 1.0 and TLS 1.1; allow TLS 1.2 and 1.3",
        Kind::WeakCipher => {
            "remove NULL, EXPORT, anonymous, RC4, DES, 3DES and MD5 suites; prefer AES-GCM or \
             ChaCha20-Poly1305"
        }
        Kind::CertificateProblem => {
            "install a valid certificate from a trusted CA that matches the server name, with a \
             strong key (RSA 2048 bits or more, or ECDSA)"
        }
        Kind::CleartextAuthOffered => {
            "advertise AUTH only after STARTTLS (do not offer AUTH on plaintext connections)"
        }
        Kind::CleartextMail => "send mail over TLS: STARTTLS on both sides, or implicit TLS",
        Kind::AuthBruteForce => {
            "rate-limit or block the client and check the targeted accounts for compromise"
        }
        Kind::ConnectionFailed => connection_failed_remedy(f),
        Kind::SmtpSmuggling => {
            "update the receiving MTA (Postfix smtpd_forbid_bare_newline, Exim 4.97.1+, \
             Sendmail 8.18+, aiosmtpd 1.4.5+) so it accepts only <CRLF>.<CRLF> as end of data"
        }
        Kind::StarttlsIgnored => {
            "STARTTLS was accepted but the session went on in plaintext: if the capture was \
             taken behind a TLS-intercepting device this is expected, otherwise fix the client \
             or server so the handshake follows the 220"
        }
        Kind::StarttlsDowngrade => {
            "the server offered STARTTLS before: find what removes it on the path (firewall SMTP \
             inspection, proxy) and make clients require TLS (MTA-STS or DANE between servers)"
        }
        Kind::PlaintextFallback => {
            "configure the client to require TLS and never retry in plaintext; fix the TLS \
             failure that caused the fallback"
        }
        Kind::AuthPasswordSpraying => {
            "block the client, and check the targeted accounts for compromise"
        }
        Kind::AuthDistributedBruteForce => {
            "the account is attacked from many addresses: protect it (lockout, MFA, app \
             passwords) and check it for compromise"
        }
    }
}

/// What to do about a connection that never opened, from how it failed.
fn connection_failed_remedy(f: &Finding) -> &'static str {
    let ev = |k: &str| f.evidence.get(k).and_then(Value::as_u64);
    let port = ev("server_port");
    // ICMP codes that say a filter refused the packet: IPv4 9, 10, 13 (RFC 1812), ICMPv6 1
    // (RFC 4443); and those that say nothing listens: IPv4 3, ICMPv6 4.
    let icmp = match (ev("icmp_type"), ev("icmp_code")) {
        (Some(3), Some(9 | 10 | 13)) | (Some(1), Some(1)) => Some("prohibited"),
        (Some(3), Some(3)) | (Some(1), Some(4)) => Some("port"),
        _ => None,
    };
    match (f.evidence.get("reason").and_then(Value::as_str), port) {
        (Some("reset"), Some(465)) => {
            "nothing listens on 465: enable implicit TLS (TLS on connect) there, which RFC 8314 \
             prefers for submission, or submit with STARTTLS on 587"
        }
        (Some("reset"), Some(25)) => {
            "nothing listens on 25: check that the MTA runs and listens on this address (relay \
             between servers is port 25, with STARTTLS)"
        }
        (Some("reset"), _) => {
            "nothing listens on that port: check that the mail server runs and listens on this \
             address and port, or that a firewall rule does not reject it"
        }
        (Some("icmp_unreachable"), _) if icmp == Some("prohibited") => {
            "a firewall rejects the port (ICMP administratively prohibited): allow it in the \
             rules of the server or of the path, or use the port the server offers"
        }
        (Some("icmp_unreachable"), _) if icmp == Some("port") => {
            "the server's host says nothing listens on that port (ICMP port unreachable), or a \
             firewall rejects it so: check the service and the firewall rules"
        }
        (Some("icmp_unreachable"), _) => {
            "a router or firewall rejected the connection (ICMP unreachable): check the firewall \
             rules and routes on the path to the server"
        }
        (_, Some(465)) => {
            "SYNs to 465 went unanswered: a firewall drops the port; open 465 for implicit TLS \
             (RFC 8314 prefers it for submission) or submit with STARTTLS on 587"
        }
        (_, Some(587)) => {
            "SYNs to 587 went unanswered: a firewall drops submission; open 587 (STARTTLS) or \
             use implicit TLS on 465 (RFC 8314)"
        }
        (_, Some(25)) => {
            "SYNs to 25 went unanswered: a firewall (or the ISP) drops port 25; relay through a \
             submission server (587/465) or open 25 between the mail servers"
        }
        _ => {
            "SYNs went unanswered: a firewall on the path drops the port, or the server is down; \
             check the firewall rules and that the server listens"
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Palette {
    on: bool,
}

impl Palette {
    fn severity(self, s: Severity) -> &'static str {
        if !self.on {
            return "";
        }
        match s {
            Severity::Critical => "\x1b[1;31m",
            Severity::High => "\x1b[31m",
            Severity::Medium => "\x1b[33m",
            Severity::Low => "\x1b[36m",
            Severity::Info => "\x1b[2m",
        }
    }
    fn bold(self) -> &'static str {
        if self.on { "\x1b[1m" } else { "" }
    }
    fn dim(self) -> &'static str {
        if self.on { "\x1b[2m" } else { "" }
    }
    fn reset(self) -> &'static str {
        if self.on { "\x1b[0m" } else { "" }
    }
}

struct Sample {
    capture: usize,
    frame: u64,
    endpoints: Option<(EndpointRecord, EndpointRecord)>,
    message: String,
}

#[derive(Default)]
struct Group {
    count: u64,
    /// The smallest (capture, frame) examples, sorted, so the sample does not depend on the
    /// order flows finished in.
    samples: Vec<Sample>,
}

impl Group {
    fn add(&mut self, s: Sample) {
        self.count += 1;
        let key = (s.capture, s.frame);
        let pos = self
            .samples
            .partition_point(|x| (x.capture, x.frame) <= key);
        if pos < SAMPLES_PER_GROUP {
            self.samples.insert(pos, s);
            self.samples.truncate(SAMPLES_PER_GROUP);
        }
    }
}

#[derive(Default)]
struct ServerPosture {
    flows: u64,
    classes: ClassCounts,
    /// Flows where the EHLO capabilities were seen, and how many of them offered STARTTLS.
    ehlo_seen: u64,
    starttls_offered: u64,
    auth_before_tls: bool,
    versions: BTreeSet<String>,
    ciphers: BTreeSet<String>,
    /// TLS handshakes that did not complete, plus refused STARTTLS.
    failures: u64,
    /// Clients that fell back to plaintext with this server (`plaintext_fallback`).
    fell_back: BTreeSet<String>,
}

impl ServerPosture {
    fn add(&mut self, flow: &FlowRecord) {
        self.flows += 1;
        self.classes.add(flow.class);
        if let Some(smtp) = &flow.smtp {
            if !smtp.capabilities.is_empty() {
                self.ehlo_seen += 1;
            }
            if smtp.starttls.offered {
                self.starttls_offered += 1;
            }
            // Capabilities are those offered before TLS; "AUTH PLAIN LOGIN" or the
            // pre-RFC 4954 "AUTH=LOGIN" both count.
            if smtp.capabilities.iter().any(|c| is_auth_capability(c)) {
                self.auth_before_tls = true;
            }
            if matches!(smtp.starttls.reply, Some(r) if r >= 400) {
                self.failures += 1;
            }
        }
        if let Some(tls) = &flow.tls {
            // An incomplete handshake with evidence is one the capture cannot decide (cut by
            // a snap length, begun mid-session, one side only): not a failure.
            let undecided =
                tls.handshake == HandshakeOutcome::Incomplete && tls.outcome_evidence.is_some();
            if tls.handshake != HandshakeOutcome::Complete && !undecided {
                self.failures += 1;
            }
            insert_capped(&mut self.versions, tls.version.as_deref());
            insert_capped(&mut self.ciphers, tls.cipher.as_deref());
        }
    }
}

fn is_auth_capability(c: &str) -> bool {
    let c = c.trim_start();
    c.get(..4).is_some_and(|h| h.eq_ignore_ascii_case("AUTH"))
        && matches!(c.as_bytes().get(4), None | Some(b' ') | Some(b'='))
}

fn insert_capped(set: &mut BTreeSet<String>, v: Option<&str>) {
    if let Some(v) = v
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .filter(|v| !set.contains(*v))
    {
        if set.len() < MAX_SET {
            set.insert(v.to_string());
        }
    }
}

type GroupKey = (Reverse<Severity>, &'static str, &'static str);

pub struct TextSink {
    out: Box<dyn Write>,
    pal: Palette,
    order: CaptureOrder,
    captures: Vec<CaptureRecord>,
    servers: BTreeMap<(IpAddr, u16), ServerPosture>,
    servers_not_shown: u64,
    groups: BTreeMap<GroupKey, Group>,
}

impl TextSink {
    pub fn new(out: Box<dyn Write>, opts: SinkOptions) -> Self {
        TextSink {
            out,
            pal: Palette { on: opts.color },
            order: CaptureOrder::default(),
            captures: Vec::new(),
            servers: BTreeMap::new(),
            servers_not_shown: 0,
            groups: BTreeMap::new(),
        }
    }

    fn add_finding(&mut self, f: &Finding, flow: Option<(&FlowRecord, usize)>) {
        let key = (Reverse(f.severity), f.kind.as_str(), remedy(f));
        // The file holding the frame, which in a chained capture may follow the flow's.
        let capture = if f.capture.is_empty() {
            flow.map_or(usize::MAX, |(_, c)| c)
        } else {
            self.order.index(&f.capture)
        };
        self.groups.entry(key).or_default().add(Sample {
            capture,
            frame: f.frame,
            endpoints: flow.map(|(fl, _)| (fl.client, fl.server)),
            message: clean(&f.message),
        });
    }

    fn render(&self, summary: &Summary) -> String {
        let p = self.pal;
        let mut s = String::new();
        let packets: u64 = self.captures.iter().map(|c| c.packets).sum();
        let tool = ToolInfo::default();
        let _ = writeln!(
            s,
            "{}{} {}{}: {}, {}, {}",
            p.bold(),
            tool.name,
            tool.version,
            p.reset(),
            plural(self.captures.len() as u64, "capture", "captures"),
            plural(packets, "packet", "packets"),
            plural(summary.flows, "mail flow", "mail flows"),
        );
        for c in &self.captures {
            let fmt = match &c.format {
                Some(f) => serde_json::to_value(f)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "?".into()),
                None => "unrecognised".into(),
            };
            let chained = c
                .chained_to
                .as_ref()
                .map(|p| format!(", continues {}", clean(p)))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  {}: {}, {}, {} bytes, {} reported of {} TCP flows{chained}",
                clean(&c.path),
                fmt,
                plural(c.packets, "packet", "packets"),
                c.bytes,
                c.reported_flows,
                c.tcp_flows
            );
            for w in &c.warnings {
                let _ = writeln!(s, "    warning: {}", clean(w));
            }
            let scanners = c.flow_table.scanners;
            if scanners > 0 {
                let _ = writeln!(
                    s,
                    "    {} (failed connections of a scan get no connection_failed)",
                    plural(scanners, "scanning source", "scanning sources")
                );
            }
        }
        let cl = &summary.classes;
        let _ = writeln!(
            s,
            "\nFlows: {} plaintext, {} starttls, {} implicit_tls, {} unknown",
            cl.plaintext, cl.starttls, cl.implicit_tls, cl.unknown
        );
        let td = summary.tls_decryption;
        if td.decrypted > 0 {
            // Only a run with keys says it: without them the text is as it always was.
            let _ = writeln!(
                s,
                "TLS decrypted with keys: {} of {}",
                td.decrypted,
                plural(td.decrypted + td.not_decrypted, "TLS flow", "TLS flows")
            );
        }
        let fc = &summary.findings;
        let _ = writeln!(
            s,
            "Findings: {} critical, {} high, {} medium, {} low, {} info",
            fc.critical, fc.high, fc.medium, fc.low, fc.info
        );

        self.render_findings(&mut s);
        self.render_servers(&mut s);
        s
    }

    fn render_findings(&self, s: &mut String) {
        let p = self.pal;
        if self.groups.is_empty() {
            let _ = writeln!(s, "\nNo findings.");
            return;
        }
        let many_captures = self.order.len() > 1;
        let mut current: Option<Severity> = None;
        for ((Reverse(sev), kind, rem), g) in &self.groups {
            if current != Some(*sev) {
                current = Some(*sev);
                let n: u64 = self
                    .groups
                    .iter()
                    .filter(|((Reverse(x), _, _), _)| x == sev)
                    .map(|(_, g)| g.count)
                    .sum();
                let _ = writeln!(
                    s,
                    "\n{}{} ({}){}",
                    p.severity(*sev),
                    sev.as_str().to_ascii_uppercase(),
                    n,
                    p.reset()
                );
            }
            let _ = writeln!(s, "  {kind} ({})", g.count);
            for x in &g.samples {
                let mut line = String::from("    ");
                match x.endpoints {
                    Some((c, sv)) => {
                        let _ = write!(line, "{} -> {}", sock(c), sock(sv));
                    }
                    None => line.push_str("(run-wide)"),
                }
                if many_captures {
                    if let Some(path) = self.order.paths.get(x.capture) {
                        let _ = write!(line, "  {}", clean(path));
                    }
                }
                let _ = write!(line, "  frame {}  {}", x.frame, x.message);
                let _ = writeln!(s, "{line}");
            }
            if g.count > g.samples.len() as u64 {
                let _ = writeln!(s, "    ... and {} more", g.count - g.samples.len() as u64);
            }
            let _ = writeln!(s, "    {}remedy:{} {rem}", p.dim(), p.reset());
        }
    }

    fn render_servers(&self, s: &mut String) {
        let p = self.pal;
        if self.servers.is_empty() {
            return;
        }
        let header = [
            "SERVER",
            "FLOWS",
            "MODES",
            "STARTTLS",
            "TLS VERSIONS",
            "CIPHERS",
            "AUTH BEFORE TLS",
            "FAILURES",
        ];
        let mut rows: Vec<[String; 8]> = Vec::with_capacity(self.servers.len());
        for ((ip, port), sp) in &self.servers {
            let modes = [
                (FlowClass::Plaintext, sp.classes.plaintext),
                (FlowClass::Starttls, sp.classes.starttls),
                (FlowClass::ImplicitTls, sp.classes.implicit_tls),
                (FlowClass::Unknown, sp.classes.unknown),
            ]
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{} {n}", c.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
            let starttls = if sp.ehlo_seen == 0 && sp.starttls_offered == 0 {
                "-".to_string()
            } else if sp.starttls_offered == 0 {
                "never".to_string()
            } else if sp.starttls_offered >= sp.ehlo_seen {
                "always".to_string()
            } else {
                format!(
                    "missing {} of {}",
                    sp.ehlo_seen - sp.starttls_offered,
                    sp.ehlo_seen
                )
            };
            let auth = if sp.auth_before_tls {
                "yes"
            } else if sp.ehlo_seen > 0 {
                "no"
            } else {
                "-"
            };
            let set = |v: &BTreeSet<String>| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    clean(&v.iter().cloned().collect::<Vec<_>>().join(", "))
                }
            };
            rows.push([
                sock(EndpointRecord {
                    ip: *ip,
                    port: *port,
                }),
                sp.flows.to_string(),
                modes,
                starttls,
                set(&sp.versions),
                set(&sp.ciphers),
                auth.to_string(),
                sp.failures.to_string(),
            ]);
        }
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let _ = writeln!(s, "\n{}Servers{}", p.bold(), p.reset());
        let fmt_row = |cells: &[&str]| {
            let mut line = String::from(" ");
            for (i, (c, w)) in cells.iter().zip(widths.iter()).enumerate() {
                line.push(' ');
                line.push_str(c);
                if i + 1 < cells.len() {
                    let pad = w.saturating_sub(c.chars().count()) + 1;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line
        };
        let _ = writeln!(s, "{}", fmt_row(&header));
        for r in &rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            let _ = writeln!(s, "{}", fmt_row(&cells));
        }
        if self.servers_not_shown > 0 {
            let _ = writeln!(
                s,
                "  ... {} more flows to servers beyond the first {MAX_SERVERS} not tabulated",
                self.servers_not_shown
            );
        }
        for ((ip, port), sp) in &self.servers {
            if !sp.fell_back.is_empty() {
                let clients = sp.fell_back.iter().cloned().collect::<Vec<_>>().join(", ");
                let server = sock(EndpointRecord {
                    ip: *ip,
                    port: *port,
                });
                let _ = writeln!(s, "  {server}: fell back to plaintext: {}", clean(&clients));
            }
        }
    }

    /// Notes a `plaintext_fallback` under the server the plaintext went to.
    fn note_fallback(&mut self, f: &Finding) {
        let get = |k: &str| f.evidence.get(k).and_then(Value::as_str);
        let port = f.evidence.get("plaintext_port").and_then(Value::as_u64);
        let (Some(client), Some(server), Some(port)) = (get("client_ip"), get("server_ip"), port)
        else {
            return;
        };
        let (Ok(ip), Ok(port)) = (server.parse::<IpAddr>(), u16::try_from(port)) else {
            return;
        };
        if let Some(sp) = self.servers.get_mut(&(ip, port)) {
            insert_capped(&mut sp.fell_back, Some(client));
        }
    }
}

impl ReportSink for TextSink {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> io::Result<()> {
        let capture = self.order.index(&flow.capture);
        let key = (flow.server.ip, flow.server.port);
        if let Some(sp) = self.servers.get_mut(&key) {
            sp.add(flow);
        } else if self.servers.len() < MAX_SERVERS {
            self.servers.entry(key).or_default().add(flow);
        } else {
            self.servers_not_shown += 1;
        }
        for f in findings {
            if f.kind == Kind::PlaintextFallback {
                self.note_fallback(f);
            }
            self.add_finding(&finding_for_flow(f, flow), Some((flow, capture)));
        }
        Ok(())
    }

    fn capture(&mut self, capture: &CaptureRecord) -> io::Result<()> {
        self.order.index(&capture.path);
        self.captures.push(capture.clone());
        Ok(())
    }

    fn finish(&mut self, findings: &[Finding], summary: &Summary) -> io::Result<()> {
        for f in findings {
            if f.kind == Kind::PlaintextFallback {
                self.note_fallback(f);
            }
            self.add_finding(f, None);
        }
        let text = self.render(summary);
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }
}

fn sock(e: EndpointRecord) -> String {
    match e.ip {
        IpAddr::V4(_) => format!("{}:{}", e.ip, e.port),
        IpAddr::V6(_) => format!("[{}]:{}", e.ip, e.port),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Escapes control characters (ESC above all) in text that may come from the capture.
fn clean(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_escapes_terminal_controls() {
        assert_eq!(clean("220 ok"), "220 ok");
        assert_eq!(clean("a\x1b[31mb\r\n"), "a\\u{1b}[31mb\\r\\n");
    }

    #[test]
    fn auth_capability_forms() {
        assert!(is_auth_capability("AUTH PLAIN LOGIN"));
        assert!(is_auth_capability("auth=LOGIN"));
        assert!(is_auth_capability("AUTH"));
        assert!(!is_auth_capability("AUTHX"));
        assert!(!is_auth_capability("STARTTLS"));
    }
}
