//! `--format json`: one pretty-printed document, as `docs/report.md` and
//! `schema/report.schema.json` describe it.
//!
//! This is the one format whose memory grows with the number of reported flows: a single
//! document with sorted `flows` cannot be written before the last flow is known. Use `ndjson`
//! or `ecs` for captures of unbounded size.

use std::borrow::Cow;
use std::io::{self, BufWriter, Write};

use serde::Serialize;

use super::model::{CaptureRecord, FlowRecord, SCHEMA_VERSION, Summary, ToolInfo};
use super::{CaptureOrder, ReportSink, finding_for_flow, finding_order};
use crate::findings::Finding;
use crate::time::Timestamp;

/// A flow kept until the end as its compact JSON text (flow, then its findings): a few KB
/// instead of the record's tree of small allocations, re-indented when the document is
/// written.
struct HeldFlow {
    capture: usize,
    start: Timestamp,
    first_frame: u64,
    id: Box<str>,
    /// Compact JSON of the flow, then of each finding; `ends` marks where each one ends.
    json: Box<[u8]>,
    ends: Box<[u32]>,
}

impl HeldFlow {
    /// The flow's JSON, then each finding's.
    fn values(&self) -> impl Iterator<Item = &[u8]> {
        let mut from = 0usize;
        self.ends.iter().filter_map(move |&end| {
            let v = self.json.get(from..end as usize);
            from = end as usize;
            v
        })
    }
}

/// Everything of the document that comes before `flows`.
#[derive(Serialize)]
struct Head<'a> {
    schema_version: u32,
    tool: ToolInfo,
    captures: &'a [CaptureRecord],
    summary: &'a Summary,
}

pub struct JsonSink {
    out: Box<dyn Write>,
    order: CaptureOrder,
    captures: Vec<CaptureRecord>,
    flows: Vec<HeldFlow>,
    /// Run-wide findings' JSON, built at the end.
    scratch: Vec<u8>,
}

impl JsonSink {
    pub fn new(out: Box<dyn Write>) -> Self {
        JsonSink {
            out,
            order: CaptureOrder::default(),
            captures: Vec::new(),
            flows: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

/// Writes `compact` (serde_json's compact output) the way `serde_json::to_writer_pretty`
/// writes the same value nested `depth` levels deep: two spaces per level, `": "` after
/// keys, one member or element per line, `{}` and `[]` when empty. Bytes between two
/// structural bytes (strings, numbers, literals) are copied in one piece.
fn write_pretty(out: &mut Vec<u8>, compact: &[u8], depth: usize) {
    fn newline(out: &mut Vec<u8>, level: usize) {
        out.push(b'\n');
        out.resize(out.len() + level * 2, b' ');
    }
    let mut level = depth;
    let mut run = 0;
    let mut i = 0;
    while let Some(&b) = compact.get(i) {
        i += 1;
        if b == b'"' {
            // Skip the string: to its closing quote, over escapes.
            while let Some(p) = compact.get(i..).and_then(find_quote_or_backslash) {
                let at = i + p;
                i = at + 1;
                if compact.get(at) == Some(&b'"') {
                    break;
                }
                i += 1;
            }
            continue;
        }
        if !matches!(b, b'{' | b'[' | b'}' | b']' | b',' | b':') {
            continue;
        }
        out.extend_from_slice(compact.get(run..i - 1).unwrap_or_default());
        run = i;
        match b {
            b'{' | b'[' => {
                let close = if b == b'{' { b'}' } else { b']' };
                if compact.get(i) == Some(&close) {
                    out.extend_from_slice(&[b, close]);
                    i += 1;
                    run = i;
                } else {
                    out.push(b);
                    level += 1;
                    newline(out, level);
                }
            }
            b'}' | b']' => {
                level = level.saturating_sub(1);
                newline(out, level);
                out.push(b);
            }
            b',' => {
                out.push(b',');
                newline(out, level);
            }
            _ => out.extend_from_slice(b": "),
        }
    }
    out.extend_from_slice(compact.get(run..).unwrap_or_default());
}

/// Position of the first `"` or `\\` in `h`: whole blocks are tested without an early exit
/// (vector compares), bytes only in the block that has one.
fn find_quote_or_backslash(h: &[u8]) -> Option<usize> {
    const BLOCK: usize = 16;
    let mut at = 0;
    while let Some(block) = h
        .get(at..at + BLOCK)
        .and_then(|b| <&[u8; BLOCK]>::try_from(b).ok())
    {
        if block
            .iter()
            .fold(false, |hit, &c| hit | (c == b'"') | (c == b'\\'))
        {
            break;
        }
        at += BLOCK;
    }
    h.get(at..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|p| p + at)
}

/// Writes `"name": [ ... ]` as the last members of the document do, each value pretty at
/// array depth.
fn write_array<'a>(
    w: &mut impl Write,
    name: &str,
    values: impl Iterator<Item = &'a [u8]>,
) -> io::Result<()> {
    write!(w, ",\n  \"{name}\": [")?;
    let mut any = false;
    let mut text = Vec::with_capacity(16 * 1024);
    for v in values {
        text.clear();
        text.extend_from_slice(if any { b",\n    " } else { b"\n    " });
        write_pretty(&mut text, v, 2);
        w.write_all(&text)?;
        any = true;
    }
    w.write_all(if any { b"\n  ]" } else { b"]" })
}

impl ReportSink for JsonSink {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> io::Result<()> {
        let capture = self.order.index(&flow.capture);
        let mut findings: Vec<Cow<'_, Finding>> =
            findings.iter().map(|f| finding_for_flow(f, flow)).collect();
        findings.sort_by(|a, b| finding_order(a, b));
        let mut json = Vec::with_capacity(4096);
        let mut ends = Vec::with_capacity(1 + findings.len());
        serde_json::to_writer(&mut json, flow)?;
        ends.push(json.len());
        for f in &findings {
            serde_json::to_writer(&mut json, f.as_ref())?;
            ends.push(json.len());
        }
        let ends = ends
            .into_iter()
            .map(|e| u32::try_from(e).map_err(|_| io::Error::other("flow record over 4 GiB")))
            .collect::<io::Result<Vec<u32>>>()?;
        self.flows.push(HeldFlow {
            capture,
            start: flow.start,
            first_frame: flow.tcp.first_frame,
            id: flow.id.as_str().into(),
            json: json.into_boxed_slice(),
            ends: ends.into_boxed_slice(),
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
            (a.capture, a.start, a.first_frame, &a.id).cmp(&(
                b.capture,
                b.start,
                b.first_frame,
                &b.id,
            ))
        });
        let head = Head {
            schema_version: SCHEMA_VERSION,
            tool: ToolInfo::default(),
            captures: &self.captures,
            summary,
        };
        let mut w = BufWriter::with_capacity(64 * 1024, &mut self.out);
        // The head is a non-empty object: its pretty form ends with a line break and `}`,
        // after which the two arrays follow as further members.
        let mut text = serde_json::to_vec_pretty(&head)?;
        if text.ends_with(b"\n}") {
            text.truncate(text.len() - 2);
        }
        w.write_all(&text)?;
        write_array(
            &mut w,
            "flows",
            self.flows.iter().filter_map(|h| h.values().next()),
        )?;
        let mut run_wide = Vec::with_capacity(findings.len());
        self.scratch.clear();
        for f in findings {
            serde_json::to_writer(&mut self.scratch, f)?;
            run_wide.push(self.scratch.len());
        }
        let scratch = &self.scratch;
        let mut from = 0;
        let run_wide = run_wide.into_iter().filter_map(|end| {
            let v = scratch.get(from..end);
            from = end;
            v
        });
        write_array(
            &mut w,
            "findings",
            self.flows
                .iter()
                .flat_map(|h| h.values().skip(1))
                .chain(run_wide),
        )?;
        w.write_all(b"\n}\n")?;
        w.flush()?;
        drop(w);
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty_at_depth(v: &serde_json::Value, depth: usize) -> String {
        let mut out = Vec::new();
        write_pretty(&mut out, &serde_json::to_vec(v).unwrap(), depth);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn re_indents_compact_json_exactly_like_serde_json() {
        let v = serde_json::json!({
            "a": 1, "b": [], "c": {}, "d": [1, -2.5e-7, true, null, "x"],
            "e": {"f": [{"g": "q\"uo,te:{}[]\\"}, []], "h": {}},
            "s": "tab\t nl\n unicode \u{e9} \u{1f600}", "z": false
        });
        assert_eq!(
            pretty_at_depth(&v, 0),
            serde_json::to_string_pretty(&v).unwrap()
        );
        for scalar in [
            serde_json::json!(0),
            serde_json::json!("s"),
            serde_json::json!([]),
        ] {
            assert_eq!(
                pretty_at_depth(&scalar, 0),
                serde_json::to_string_pretty(&scalar).unwrap()
            );
        }
    }

    #[test]
    fn nested_values_are_indented_from_their_depth() {
        let v = serde_json::json!({"k": [1, {"x": 2}]});
        let whole =
            serde_json::to_string_pretty(&serde_json::json!({"outer": [v.clone()]})).unwrap();
        let inner = pretty_at_depth(&v, 2);
        assert!(
            whole.contains(&format!("    {inner}")),
            "{whole}\n---\n{inner}"
        );
    }
}
