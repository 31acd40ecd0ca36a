//! Report sinks: the same flows, findings and capture records written as JSON (one
//! document), NDJSON (one event per line, streamed), ECS (NDJSON with Elastic Common Schema
//! names) or text for people.
//!
//! Memory: `ndjson` and `ecs` write each flow and its findings when `flow()` is called and keep
//! nothing; `text` keeps per-server aggregates and a bounded sample of findings; `json` writes
//! a single document whose flows are sorted, so it keeps every reported flow until `finish()`:
//! in a temporary file, through which their index is sorted in bounded memory.
//!
//! Every sink method returns the writer's error as is, so a closed pipe surfaces as
//! [`io::ErrorKind::BrokenPipe`] for the CLI to end quietly.

pub mod community_id;
pub mod ecs;
mod emit;
mod gather;
mod html;
mod json;
pub mod model;
mod ndjson;
pub mod posture;
pub mod remedy;
pub mod story;
mod text;

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::findings::Finding;
use model::{CaptureRecord, Detail, FlowRecord, Summary, detail};

pub use ecs::EcsSink;
pub use html::HtmlSink;
pub use json::{JsonSink, SpillError as JsonSpillError};
pub use ndjson::NdjsonSink;
pub use text::TextSink;

/// Output format chosen with `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Ndjson,
    Ecs,
    Html,
}

/// Options every sink may honour.
#[derive(Clone, Copy, Debug, Default)]
pub struct SinkOptions {
    /// Use ANSI colours (text only; decided by the CLI from the terminal and `NO_COLOR`).
    pub color: bool,
    /// Flush the streaming formats after each flow's lines (a live input, whose flows a
    /// reader waits for). Otherwise they flush at a flow's end once a second has passed since
    /// the last flush: lines reach a file or pipe soon, with no write per line on a big run.
    pub flush_each_flow: bool,
    /// How much of each flow record `json`, `ndjson` and `ecs` write (`--detail`).
    pub detail: Detail,
    /// Columns of the terminal the text report goes to, when narrower than its 120 (the CLI
    /// reads `COLUMNS`); None for the full width.
    pub text_width: Option<usize>,
}

/// Receives the analysis as it happens. Flows arrive as they finish (streaming formats write
/// them at once); captures when each input is done; `finish` once at the end.
pub trait ReportSink {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> io::Result<()>;
    fn capture(&mut self, capture: &CaptureRecord) -> io::Result<()>;
    /// `findings` are the run-wide ones that belong to no single flow's close (e.g. brute force).
    fn finish(&mut self, findings: &[Finding], summary: &Summary) -> io::Result<()>;
}

/// Builds the sink for `format` writing to `out`. The sinks do not buffer `out` themselves
/// beyond one line (one write per line); pass a `BufWriter` and set `flush_each_flow` when
/// the input is live.
pub fn make_sink(format: Format, out: Box<dyn Write>, opts: SinkOptions) -> Box<dyn ReportSink> {
    match format {
        Format::Text => Box::new(TextSink::new(out, opts)),
        Format::Json => Box::new(JsonSink::new(out).with_detail(opts.detail)),
        Format::Ndjson => Box::new(NdjsonSink::new(out, opts)),
        Format::Ecs => Box::new(EcsSink::new(out, opts)),
        Format::Html => Box::new(HtmlSink::new(out)),
    }
}

/// Writes one JSON value per line through a reusable buffer: the value is serialised into
/// the buffer, then handed to the writer in one `write_all`, so a reader never sees half a
/// line from us and a closed pipe is noticed at the line that hit it.
struct LineWriter {
    out: Box<dyn Write>,
    buf: Vec<u8>,
    flush_each_flow: bool,
    last_flush: Instant,
    detail: Detail,
}

/// The longest a finished flow's lines wait in the output buffer on a run that is not live
/// (when more flows follow; the last ones go out at the end of the run).
const FLUSH_EVERY: Duration = Duration::from_secs(1);

impl LineWriter {
    fn new(out: Box<dyn Write>, opts: SinkOptions) -> Self {
        LineWriter {
            out,
            buf: Vec::with_capacity(4096),
            flush_each_flow: opts.flush_each_flow,
            last_flush: Instant::now(),
            detail: opts.detail,
        }
    }

    /// A flow's lines (or a capture's) are all written: they go out now on a live run, else
    /// when a second has passed since the last flush (one clock read per flow).
    fn end_of_flow(&mut self) -> io::Result<()> {
        if self.flush_each_flow || self.last_flush.elapsed() >= FLUSH_EVERY {
            self.out.flush()?;
            self.last_flush = Instant::now();
        }
        Ok(())
    }

    /// One line written by `f` into the buffer, at the sink's detail level.
    fn write_line(&mut self, f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<()> {
        self.buf.clear();
        detail::with(self.detail, || f(&mut self.buf))?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)?;
        // One huge flow (thousands of AUTH attempts) must not pin its buffer for the rest of
        // the run.
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::with_capacity(4096);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Assigns each capture path a position in order of first appearance (as a flow's `capture`
/// or in a `capture()` call); reports sort by it. Captures are few, so a linear scan is fine.
#[derive(Debug, Default)]
struct CaptureOrder {
    paths: Vec<String>,
}

impl CaptureOrder {
    fn index(&mut self, path: &str) -> usize {
        match self.paths.iter().position(|p| p == path) {
            Some(i) => i,
            None => {
                self.paths.push(path.to_string());
                self.paths.len() - 1
            }
        }
    }

    fn len(&self) -> usize {
        self.paths.len()
    }
}

/// Report order of one flow's findings: by frame, then kind name (stable, so equal keys keep
/// the analyzers' order).
fn finding_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    a.frame
        .cmp(&b.frame)
        .then_with(|| a.kind.as_str().cmp(b.kind.as_str()))
}

/// One flow's findings in report order, borrowed.
fn report_order(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = findings.iter().collect();
    sort_findings(&mut v);
    v
}

/// Sorts one flow's findings into report order. A flow that continued into later files of a
/// chained capture has findings in several files, each numbered within its own: those go file
/// by file, in the order the findings arrive (the pipeline hands them over in capture order),
/// then by frame and kind.
fn sort_findings<F: std::ops::Deref<Target = Finding>>(v: &mut [F]) {
    let one_file = v
        .first()
        .is_none_or(|first| v.iter().all(|f| f.capture == first.capture));
    if one_file {
        v.sort_by(|a, b| finding_order(a, b));
        return;
    }
    let mut files: Vec<String> = Vec::new();
    for f in v.iter() {
        if !files.contains(&f.capture) {
            files.push(f.capture.clone());
        }
    }
    let rank = |f: &Finding| files.iter().position(|c| *c == f.capture);
    v.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| finding_order(a, b)));
}

/// A finding as written: the flow's findings carry the flow id even if the analysis left it
/// empty (the contract says every flow finding names its flow), and a capture (the flow's
/// unless the pipeline named the file holding the frame).
fn finding_for_flow<'a>(f: &'a Finding, flow: &FlowRecord) -> Cow<'a, Finding> {
    if f.flow.is_empty() || f.capture.is_empty() {
        let mut owned = f.clone();
        if owned.flow.is_empty() {
            owned.flow.clone_from(&flow.id);
        }
        if owned.capture.is_empty() {
            owned.capture.clone_from(&flow.capture);
        }
        Cow::Owned(owned)
    } else {
        Cow::Borrowed(f)
    }
}
