//! What the reports for people (text and HTML) gather from a run as it goes: the capture
//! order, the captures, the per-server posture and the problems. Both render the same facts,
//! so both fold flows and run-wide findings in here the same way.

use super::model::{CaptureRecord, EndpointRecord, FlowRecord};
use super::posture::Postures;
use super::story::Book;
use super::{CaptureOrder, finding_for_flow, sort_findings};
use crate::findings::Finding;

#[derive(Debug, Default)]
pub(super) struct Gathered {
    pub order: CaptureOrder,
    pub captures: Vec<CaptureRecord>,
    pub servers: Postures,
    pub book: Book,
}

impl Gathered {
    pub fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) {
        let flow_capture = self.order.index(&flow.capture);
        self.servers.add_flow(flow, findings);
        let owned: Vec<_> = findings.iter().map(|f| finding_for_flow(f, flow)).collect();
        let mut refs: Vec<&Finding> = owned.iter().map(|c| c.as_ref()).collect();
        sort_findings(&mut refs);
        for f in &refs {
            self.servers.add_finding(f);
        }
        let order = &mut self.order;
        self.book.add(&refs, Some(flow), &mut |f: &Finding| {
            if f.capture.is_empty() {
                flow_capture
            } else {
                order.index(&f.capture)
            }
        });
    }

    pub fn capture(&mut self, capture: &CaptureRecord) {
        self.order.index(&capture.path);
        self.captures.push(capture.clone());
    }

    /// The run-wide findings, then the cross-flow links still waiting are settled.
    pub fn finish(&mut self, findings: &[Finding]) {
        for f in super::report_order(findings) {
            self.servers.add_finding(f);
            let order = &mut self.order;
            self.book.add(&[f], None, &mut |f: &Finding| {
                if f.capture.is_empty() {
                    usize::MAX
                } else {
                    order.index(&f.capture)
                }
            });
        }
        self.book.settle();
    }
}

/// `ip:port`, IPv6 in brackets.
pub(super) fn sock(e: EndpointRecord) -> String {
    match e.ip {
        std::net::IpAddr::V4(_) => format!("{}:{}", e.ip, e.port),
        std::net::IpAddr::V6(_) => format!("[{}]:{}", e.ip, e.port),
    }
}

pub(super) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The container format's name, or "unrecognised".
pub(super) fn capture_format(c: &CaptureRecord) -> String {
    match &c.format {
        Some(f) => serde_json::to_value(f)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "?".into()),
        None => "unrecognised".into(),
    }
}
