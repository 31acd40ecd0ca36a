//! `--format ndjson`: one JSON object per line, `event_type` first, then the contract object's
//! own fields. Each flow is written when `flow()` is called, followed by its findings; nothing
//! is kept, so memory does not grow with the input.

use std::io::{self, Write};

use serde::Serialize;

use super::model::{CaptureRecord, EndpointRecord, FlowRecord, SCHEMA_VERSION, Summary, ToolInfo};
use super::{LineWriter, ReportSink, SinkOptions, finding_for_flow, report_order};
use crate::findings::Finding;

/// A contract object with `event_type` in front. Flattening keeps the object's fields at the
/// top level, so a consumer reads a flow line exactly like an element of `flows` in the JSON
/// document, and fields added to the model appear here without a change.
#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    event_type: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

/// A flow's finding line: the finding and, so that it stands on its own in a SIEM, the
/// flow's endpoints (its `capture` is the file holding its `frame`).
#[derive(Serialize)]
struct FindingLine<'a> {
    event_type: &'static str,
    #[serde(flatten)]
    body: &'a Finding,
    /// Null only for a run-wide finding whose tracker kept no flow (none does today).
    client: Option<&'a EndpointRecord>,
    server: Option<&'a EndpointRecord>,
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    event_type: &'static str,
    schema_version: u32,
    tool: ToolInfo,
    #[serde(flatten)]
    summary: &'a Summary,
}

pub struct NdjsonSink {
    out: LineWriter,
}

impl NdjsonSink {
    pub fn new(out: Box<dyn Write>, opts: SinkOptions) -> Self {
        NdjsonSink {
            out: LineWriter::new(out, opts),
        }
    }
}

impl ReportSink for NdjsonSink {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> io::Result<()> {
        self.out.line(&Event {
            event_type: "flow",
            body: flow,
        })?;
        for f in report_order(findings) {
            self.out.line(&FindingLine {
                event_type: "finding",
                body: finding_for_flow(f, flow).as_ref(),
                client: Some(&flow.client),
                server: Some(&flow.server),
            })?;
        }
        self.out.end_of_flow()
    }

    fn capture(&mut self, capture: &CaptureRecord) -> io::Result<()> {
        self.out.line(&Event {
            event_type: "capture",
            body: capture,
        })?;
        self.out.end_of_flow()
    }

    fn finish(&mut self, findings: &[Finding], summary: &Summary) -> io::Result<()> {
        for f in findings {
            let ends = f.endpoints.as_ref();
            self.out.line(&FindingLine {
                event_type: "finding",
                body: f,
                client: ends.map(|e| &e.client),
                server: ends.map(|e| &e.server),
            })?;
        }
        self.out.line(&SummaryLine {
            event_type: "summary",
            schema_version: SCHEMA_VERSION,
            tool: ToolInfo::default(),
            summary,
        })?;
        self.out.flush()
    }
}
