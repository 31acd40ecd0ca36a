//! `--format json`: one pretty-printed document, as `docs/report.md` and
//! `schema/report.schema.json` describe it.
//!
//! This is the one format whose memory grows with the number of reported flows: a single
//! document with sorted `flows` cannot be written before the last flow is known. Use `ndjson`
//! or `ecs` for captures of unbounded size.

use std::io::{self, BufWriter, Write};

use serde::Serialize;

use super::model::{CaptureRecord, FlowRecord, SCHEMA_VERSION, Summary, ToolInfo};
use super::{CaptureOrder, ReportSink, finding_for_flow, finding_order};
use crate::findings::Finding;

struct HeldFlow {
    capture: usize,
    flow: FlowRecord,
    findings: Vec<Finding>,
}

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    tool: ToolInfo,
    captures: &'a [CaptureRecord],
    summary: &'a Summary,
    flows: Vec<&'a FlowRecord>,
    findings: Vec<&'a Finding>,
}

pub struct JsonSink {
    out: Box<dyn Write>,
    order: CaptureOrder,
    captures: Vec<CaptureRecord>,
    flows: Vec<HeldFlow>,
}

impl JsonSink {
    pub fn new(out: Box<dyn Write>) -> Self {
        JsonSink {
            out,
            order: CaptureOrder::default(),
            captures: Vec::new(),
            flows: Vec::new(),
        }
    }
}

impl ReportSink for JsonSink {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> io::Result<()> {
        let capture = self.order.index(&flow.capture);
        let mut findings: Vec<Finding> = findings
            .iter()
            .map(|f| finding_for_flow(f, flow).into_owned())
            .collect();
        findings.sort_by(finding_order);
        self.flows.push(HeldFlow {
            capture,
            flow: flow.clone(),
            findings,
        });
        Ok(())
    }

    fn capture(&mut self, capture: &CaptureRecord) -> io::Result<()> {
        self.order.index(&capture.path);
        self.captures.push(capture.clone());
        Ok(())
    }

    fn finish(&mut self, findings: &[Finding], summary: &Summary) -> io::Result<()> {
        // Deterministic whatever order the pipeline finished flows in: capture (as first
        // seen), start time, first frame, then id to break any remaining tie.
        self.flows.sort_by(|a, b| {
            (a.capture, a.flow.start, a.flow.tcp.first_frame, &a.flow.id).cmp(&(
                b.capture,
                b.flow.start,
                b.flow.tcp.first_frame,
                &b.flow.id,
            ))
        });
        let doc = Document {
            schema_version: SCHEMA_VERSION,
            tool: ToolInfo::default(),
            captures: &self.captures,
            summary,
            flows: self.flows.iter().map(|h| &h.flow).collect(),
            findings: self
                .flows
                .iter()
                .flat_map(|h| h.findings.iter())
                .chain(findings.iter())
                .collect(),
        };
        let mut w = BufWriter::with_capacity(64 * 1024, &mut self.out);
        serde_json::to_writer_pretty(&mut w, &doc)?;
        w.write_all(b"\n")?;
        w.flush()?;
        drop(w);
        self.out.flush()
    }
}
