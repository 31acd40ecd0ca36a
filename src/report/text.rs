//! `--format text` (the default): what a person takes in at a glance. A header with the
//! inputs, flow counts per class, problems (a cause with the symptoms it explains, see
//! [`super::story`]) by severity, each with endpoints, frame numbers and a remedy written from
//! its evidence, and a posture table per server that fits 120 columns.
//!
//! Memory stays bounded: flows are folded into per-server aggregates as they arrive
//! ([`super::posture`]), and each problem group keeps a few examples next to its exact count.
//!
//! Strings that came off the wire (messages quoting a banner, certificate names, paths) are
//! printed with control characters escaped, so a hostile capture cannot drive the terminal.

use std::cmp::Reverse;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::gather::{Gathered, capture_format, plural, sock};
use super::model::{CaptureRecord, EndpointRecord, FlowClass, FlowRecord, Summary, ToolInfo};
use super::posture::{MAX_SERVERS, ServerPosture, StarttlsPosture};
use super::story::Step;
use super::{ReportSink, SinkOptions};
use crate::findings::{Finding, Severity};

/// The widest the servers table may be; narrower when the terminal is (`SinkOptions::text_width`).
pub const MAX_WIDTH: usize = 120;

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

pub struct TextSink {
    out: Box<dyn Write>,
    pal: Palette,
    g: Gathered,
    width: usize,
}

impl TextSink {
    pub fn new(out: Box<dyn Write>, opts: SinkOptions) -> Self {
        let width = opts
            .text_width
            .filter(|&c| c >= 40)
            .map_or(MAX_WIDTH, |c| c.min(MAX_WIDTH));
        TextSink {
            out,
            pal: Palette { on: opts.color },
            g: Gathered::default(),
            width,
        }
    }

    fn render(&self, summary: &Summary) -> String {
        let p = self.pal;
        let mut s = String::new();
        let packets: u64 = self.g.captures.iter().map(|c| c.packets).sum();
        let tool = ToolInfo::default();
        let _ = writeln!(
            s,
            "{}{} {}{}: {}, {}, {}",
            p.bold(),
            tool.name,
            tool.version,
            p.reset(),
            plural(self.g.captures.len() as u64, "capture", "captures"),
            plural(packets, "packet", "packets"),
            plural(summary.flows, "mail flow", "mail flows"),
        );
        let unread = self.g.captures.iter().filter(|c| c.error.is_some()).count();
        if unread > 0 {
            let _ = writeln!(
                s,
                "  {}WARNING: {unread} of {} inputs could not be read; this report covers the others{}",
                p.bold(),
                self.g.captures.len(),
                p.reset(),
            );
        }
        for c in &self.g.captures {
            if let Some(e) = &c.error {
                let _ = writeln!(s, "  {}: NOT READ: {}", clean(&c.path), clean(e));
                continue;
            }
            let fmt = capture_format(c);
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
        let pc = self.g.book.problem_counts();
        let total = pc.critical + pc.high + pc.medium + pc.low + pc.info;
        let _ = writeln!(
            s,
            "Problems: {} ({} critical, {} high, {} medium, {} low, {} info) from {}",
            total,
            pc.critical,
            pc.high,
            pc.medium,
            pc.low,
            pc.info,
            plural(self.g.book.finding_count(), "finding", "findings"),
        );

        self.render_problems(&mut s);
        self.render_servers(&mut s);
        s
    }

    /// Where a step happened: endpoints (or the run-wide label), file when several, frame.
    fn step_place(&self, x: &Step) -> String {
        let mut line = String::new();
        match (&x.endpoints, &x.label) {
            (Some((c, sv)), _) => {
                let _ = write!(line, "{} -> {}", sock(*c), sock(*sv));
            }
            (None, Some(l)) => line.push_str(&clean(l)),
            (None, None) => line.push_str("(run-wide)"),
        }
        if self.g.order.len() > 1
            && let Some(path) = self.g.order.paths.get(x.capture)
        {
            let _ = write!(line, "  {}", clean(path));
        }
        let _ = write!(line, "  frame {}", x.frame);
        line
    }

    fn render_problems(&self, s: &mut String) {
        let p = self.pal;
        if self.g.book.is_empty() {
            let _ = writeln!(s, "\nNo findings.");
            return;
        }
        let mut current: Option<Severity> = None;
        for ((Reverse(sev), signature, rem), g) in self.g.book.groups() {
            if current != Some(*sev) {
                current = Some(*sev);
                let n: u64 = self
                    .g
                    .book
                    .groups()
                    .filter(|((Reverse(x), _, _), _)| x == sev)
                    .map(|(_, g)| g.count)
                    .sum();
                let _ = writeln!(
                    s,
                    "\n{}{} ({}){}",
                    p.severity(*sev),
                    sev.as_str().to_ascii_uppercase(),
                    plural(n, "problem", "problems"),
                    p.reset()
                );
            }
            let _ = writeln!(s, "  {signature} ({})", g.count);
            for problem in &g.samples {
                let cause = problem.cause();
                let _ = writeln!(
                    s,
                    "    {}  {}",
                    self.step_place(cause),
                    clean(&cause.message)
                );
                self.render_secret(s, cause, "      ");
                for x in problem.steps.iter().skip(1) {
                    // A symptom in the cause's flow needs no endpoints again.
                    let place = if x.endpoints.is_some() && x.endpoints == cause.endpoints {
                        format!("frame {}", x.frame)
                    } else {
                        self.step_place(x)
                    };
                    let _ = writeln!(
                        s,
                        "      -> {}  {place}  {}",
                        x.kind.as_str(),
                        clean(&x.message)
                    );
                    self.render_secret(s, x, "         ");
                }
                if problem.more_steps > 0 {
                    let _ = writeln!(s, "      ... and {} more findings", problem.more_steps);
                }
            }
            if g.count > g.samples.len() as u64 {
                let _ = writeln!(s, "    ... and {} more", g.count - g.samples.len() as u64);
            }
            if !rem.is_empty() {
                let _ = writeln!(s, "    {}remedy:{} {}", p.dim(), p.reset(), clean(rem));
            }
        }
    }

    /// The secret a finding exposed, present only when the run reveals secrets.
    fn render_secret(&self, s: &mut String, x: &Step, indent: &str) {
        if let Some(secret) = &x.secret {
            let _ = writeln!(s, "{indent}secret: {}", clean(secret));
        }
        if let Some(h) = &x.hashcat {
            let _ = writeln!(s, "{indent}hashcat: {}", clean(h));
        }
    }

    fn render_servers(&self, s: &mut String) {
        let p = self.pal;
        if self.g.servers.is_empty() {
            return;
        }
        let header = [
            "SERVER",
            "FLOWS",
            "MODES",
            "STARTTLS",
            "TLS",
            "AUTH OFFERED",
            "AUTH IN CLEAR",
            "FAILED",
        ];
        let rows: Vec<[String; 8]> = self
            .g
            .servers
            .iter()
            .map(|(e, sp)| server_row(e, sp))
            .collect();
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let _ = writeln!(s, "\n{}Servers{}", p.bold(), p.reset());
        let table_width = 2 + widths.iter().map(|w| w + 2).sum::<usize>();
        if table_width <= self.width {
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
        } else {
            // Too wide for the terminal: one block per server, one fact per line.
            for r in &rows {
                let _ = writeln!(s, "  {}", r[0]);
                for (h, c) in header.iter().zip(r.iter()).skip(1) {
                    let line = format!("{}: {c}", h.to_ascii_lowercase());
                    let _ = writeln!(s, "{}", wrap(4, &line, self.width, 6));
                }
            }
        }
        if self.g.servers.flows_not_tabulated() > 0 {
            let _ = writeln!(
                s,
                "  ... {} more flows to servers beyond the first {MAX_SERVERS} not tabulated",
                self.g.servers.flows_not_tabulated()
            );
        }
        for (server, sp) in self.g.servers.iter() {
            if !sp.fell_back_clients.is_empty() {
                let clients = sp
                    .fell_back_clients
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                let line = format!(
                    "{}: fell back to plaintext: {}",
                    sock(server),
                    clean(&clients)
                );
                let _ = writeln!(s, "{}", wrap(2, &line, self.width, 4));
            }
            if sp.bare_line_endings_accepted > 0 {
                let line = format!(
                    "{}: accepted bare line endings (LF without CR; SMTP smuggling risk) in {}",
                    sock(server),
                    plural(sp.bare_line_endings_accepted, "flow", "flows")
                );
                let _ = writeln!(s, "{}", wrap(2, &line, self.width, 4));
            }
        }
    }
}

/// The cells of one server's row, abbreviated to fit.
fn server_row(server: EndpointRecord, sp: &ServerPosture) -> [String; 8] {
    let modes = [
        (FlowClass::Plaintext, "plain", sp.classes.plaintext),
        (FlowClass::Starttls, "starttls", sp.classes.starttls),
        (FlowClass::ImplicitTls, "tls", sp.classes.implicit_tls),
        (FlowClass::Unknown, "unknown", sp.classes.unknown),
    ]
    .iter()
    .filter(|(_, _, n)| *n > 0)
    .map(|(_, name, n)| format!("{name} {n}"))
    .collect::<Vec<_>>()
    .join(", ");
    let starttls = match sp.starttls() {
        StarttlsPosture::Unknown => "-".to_string(),
        StarttlsPosture::Never => "never".to_string(),
        StarttlsPosture::Always => "always".to_string(),
        StarttlsPosture::Sometimes => format!(
            "missing {} of {}",
            sp.ehlo_seen - sp.starttls_offered,
            sp.ehlo_seen
        ),
    };
    // AUTH offered is out of the sessions whose EHLO reply was seen; AUTH in clear out of
    // all sessions.
    let of = |n: u64, of: u64| {
        if sp.ehlo_seen == 0 && n == 0 {
            "-".to_string()
        } else if n == 0 {
            "no".to_string()
        } else {
            format!("{n} of {of}")
        }
    };
    let versions = if sp.tls_versions.is_empty() {
        "-".to_string()
    } else {
        clean(
            &sp.tls_versions
                .iter()
                .map(|v| v.strip_prefix("TLSv").unwrap_or(v))
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    let failed = if sp.failed_flows == 0 {
        "0".to_string()
    } else {
        let f = &sp.failures;
        let parts: Vec<String> = [
            (f.connection_failed, "conn"),
            (f.tls_mode_mismatch, "mode"),
            (f.starttls_refused, "refused"),
            (f.tls_handshake_failure, "tls"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{w} {n}"))
        .collect();
        format!("{} ({})", sp.failed_flows, parts.join(", "))
    };
    [
        sock(server),
        sp.flows.to_string(),
        modes,
        starttls,
        versions,
        of(sp.auth_offered_before_tls, sp.ehlo_seen),
        of(sp.auth_used_in_clear, sp.flows),
        failed,
    ]
}

/// `text` after `first` leading spaces, broken at spaces to `width` columns, continued
/// lines indented by `indent` spaces.
fn wrap(first: usize, text: &str, width: usize, indent: usize) -> String {
    let mut out: String = " ".repeat(first);
    let mut col = first;
    let mut line_start = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let w = word.chars().count();
        if !line_start && col + 1 + w > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
            line_start = true;
        }
        if !line_start {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += w;
        line_start = false;
    }
    out
}

impl ReportSink for TextSink {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> io::Result<()> {
        self.g.flow(flow, findings);
        Ok(())
    }

    fn capture(&mut self, capture: &CaptureRecord) -> io::Result<()> {
        self.g.capture(capture);
        Ok(())
    }

    fn finish(&mut self, findings: &[Finding], summary: &Summary) -> io::Result<()> {
        self.g.finish(findings);
        let text = self.render(summary);
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }
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
}
