//! `--format ndjson`: one JSON object per line, `event_type` first, then the contract object's
//! own fields. Each flow is written when `flow()` is called, followed by its findings; nothing
//! is kept, so memory does not grow with the input.

use std::io::{self, Write};

use serde::Serialize;

use super::model::{CaptureRecord, EndpointRecord, FlowRecord, SCHEMA_VERSION, Summary, ToolInfo};
use super::{LineWriter, ReportSink, SinkOptions, emit, finding_for_flow, report_order};
use crate::findings::Finding;

/// A contract object as one line with `event_type` in front: `{"event_type":"flow",` and then
/// the object's own fields, so a consumer reads a flow line exactly like an element of
/// `flows` in the JSON document, and fields added to the model appear here without a change.
/// `more` writes members that follow the object's own (each starting with its comma).
///
/// The object is serialised as the struct it is and its opening brace replaced: serde's
/// `flatten` would give the same bytes through map serialisation, a dynamic key per field.
fn event<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    event_type: &str,
    body: &T,
    more: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    buf.extend_from_slice(b"{\"event_type\":");
    emit::compact(buf, event_type)?;
    fields_of(buf, body, more)
}

/// The fields of object `body`, then what `more` writes, then the brace that closes the line's
/// object (opened by the caller, with at least one member in it).
fn fields_of<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    body: &T,
    more: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    let at = buf.len();
    emit::compact(buf, body)?;
    match buf.get(at..) {
        Some(b"{}") => buf.truncate(at),
        Some([b'{', .., b'}']) => {
            buf[at] = b',';
            buf.pop();
        }
        _ => return Err(io::Error::other("an NDJSON event body is not an object")),
    }
    more(buf)?;
    buf.push(b'}');
    Ok(())
}

/// `,"key":value`.
fn member<T: Serialize + ?Sized>(buf: &mut Vec<u8>, key: &str, v: &T) -> io::Result<()> {
    buf.push(b',');
    emit::compact(buf, key)?;
    buf.push(b':');
    Ok(emit::compact(buf, v)?)
}

/// A finding's line: the finding and, so that it stands on its own in a SIEM, the flow's
/// endpoints (its `capture` is the file holding its `frame`). They are null only for a
/// run-wide finding whose tracker kept no flow (none does today).
fn finding_line(
    buf: &mut Vec<u8>,
    f: &Finding,
    client: Option<&EndpointRecord>,
    server: Option<&EndpointRecord>,
) -> io::Result<()> {
    event(buf, "finding", f, |buf| {
        member(buf, "client", &client)?;
        member(buf, "server", &server)
    })
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
        self.out
            .write_line(|buf| event(buf, "flow", flow, |_| Ok(())))?;
        for f in report_order(findings) {
            let f = finding_for_flow(f, flow);
            self.out
                .write_line(|buf| finding_line(buf, &f, Some(&flow.client), Some(&flow.server)))?;
        }
        self.out.end_of_flow()
    }

    fn capture(&mut self, capture: &CaptureRecord) -> io::Result<()> {
        self.out
            .write_line(|buf| event(buf, "capture", capture, |_| Ok(())))?;
        self.out.end_of_flow()
    }

    fn finish(&mut self, findings: &[Finding], summary: &Summary) -> io::Result<()> {
        for f in findings {
            let ends = f.endpoints.as_ref();
            self.out.write_line(|buf| {
                finding_line(buf, f, ends.map(|e| &e.client), ends.map(|e| &e.server))
            })?;
        }
        self.out.write_line(|buf| {
            // `schema_version` and `tool` come before the summary's own fields.
            buf.extend_from_slice(b"{\"event_type\":\"summary\"");
            member(buf, "schema_version", &SCHEMA_VERSION)?;
            member(buf, "tool", &ToolInfo::default())?;
            fields_of(buf, summary, |_| Ok(()))
        })?;
        self.out.flush()
    }
}
