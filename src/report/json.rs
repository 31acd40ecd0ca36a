//! `--format json`: one pretty-printed document, as `docs/report.md` and
//! `schema/report.schema.json` describe it.
//!
//! The document's `flows` are sorted, so none can be written before the last flow is known.
//! Each flow is kept, with its findings, as JSON text in an unnamed temporary file
//! ([`spill`]), already indented as the document has it; a 40-byte index entry per flow (its
//! sort key and where its record is) is sorted in bounded memory, an external merge sort
//! through the same file past 65,536 flows ([`order`]). At the end the records are copied
//! into the document in its order, unchanged. Memory stays within a few MiB whatever the
//! number of flows.

mod batch;
mod order;
mod spill;

use std::borrow::Cow;
use std::io::{self, BufWriter, Write};

use serde::Serialize;

use super::model::{CaptureRecord, Detail, FlowRecord, SCHEMA_VERSION, Summary, ToolInfo, detail};
use super::posture::Postures;
use super::{CaptureOrder, ReportSink, finding_for_flow, sort_findings};
use crate::findings::Finding;
use batch::Batch;
use order::{Entry, Order, Pass};
use spill::Spill;

pub use spill::SpillError;

// A record is the flow's id (`u32` length, bytes) and JSON, then at `findings_at` its
// findings: a `u32` count, each one's end (`u32`, from the first one's start), their JSON;
// all JSON indented for depth 2 (elements of the document's arrays).

/// Splits a `u32` length or count off the front of `b`.
fn take_u32(b: &mut &[u8]) -> Result<u32, SpillError> {
    let (head, rest) = b.split_first_chunk::<4>().ok_or(SpillError::Corrupt)?;
    *b = rest;
    Ok(u32::from_le_bytes(*head))
}

/// The id and the flow's JSON of a record's first part.
fn split_head(mut head: &[u8]) -> Result<(&[u8], &[u8]), SpillError> {
    let n = take_u32(&mut head)? as usize;
    head.split_at_checked(n).ok_or(SpillError::Corrupt)
}

fn u32_len(n: usize) -> Result<u32, SpillError> {
    u32::try_from(n).map_err(|_| SpillError::RecordTooLarge)
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
    /// The records.
    spill: Spill,
    /// Their index entries, in the document's order at the end.
    entries: Order,
    finished: bool,
    /// One record as it is built; run-wide findings' JSON at the end.
    scratch: Vec<u8>,
    /// The per-server posture (the document's `servers` array).
    servers: Postures,
    detail: Detail,
}

impl JsonSink {
    pub fn new(out: Box<dyn Write>) -> Self {
        Self::with_parts(out, Spill::new(), Order::new())
    }

    fn with_parts(out: Box<dyn Write>, spill: Spill, entries: Order) -> Self {
        JsonSink {
            out,
            order: CaptureOrder::default(),
            captures: Vec::new(),
            spill,
            entries,
            finished: false,
            scratch: Vec::new(),
            servers: Postures::default(),
            detail: Detail::default(),
        }
    }

    /// How much of each flow record is written (lean by default).
    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }
}

/// Calls `each` for every entry in the document's order: [`Entry::key`], then the flow id
/// among equal keys, then arrival order among equal ids (the pass gives equal keys in arrival
/// order). Flows from the analysis never tie on the key within one capture, since a frame
/// opens at most one flow; they tie only when the same capture path is given twice, and then
/// their ids (derived from path, endpoints, start and first frame) are equal too, so arrival
/// order stays. The ids are read back only for ties, which other producers of records may
/// have; a tie holds as many entries as there are equal keys (as often as a path is given).
fn in_document_order(
    mut pass: Pass<'_>,
    spill: &mut Spill,
    mut each: impl FnMut(&Entry, &mut Spill) -> io::Result<()>,
) -> io::Result<()> {
    let mut tie: Vec<Entry> = Vec::new();
    let mut ided: Vec<(Vec<u8>, Entry)> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let next = pass.next(spill)?;
        let same = match (tie.last(), &next) {
            (Some(t), Some(n)) => t.key() == n.key(),
            _ => false,
        };
        if !same {
            if tie.len() > 1 {
                ided.clear();
                for e in &tie {
                    let (id, _) =
                        split_head(spill.read(e.offset, e.findings_at as usize, &mut buf)?)?;
                    ided.push((id.to_vec(), *e));
                }
                ided.sort_by(|a, b| a.0.cmp(&b.0));
                for (slot, (_, e)) in tie.iter_mut().zip(ided.drain(..)) {
                    *slot = e;
                }
            }
            for e in tie.drain(..) {
                each(&e, spill)?;
            }
        }
        match next {
            Some(e) => tie.push(e),
            None => return Ok(()),
        }
    }
}

/// `serde_json`'s pretty form (two spaces per level, `": "` after keys, one member or
/// element per line, `{}` and `[]` when empty) of a value nested `depth` levels deep in the
/// document: records are serialised once, in the bytes the document has, and copied into it
/// at the end without another pass.
struct Indented {
    level: usize,
    has_value: bool,
}

impl Indented {
    fn at(depth: usize) -> Self {
        Indented {
            level: depth,
            has_value: false,
        }
    }
}

fn newline<W: ?Sized + Write>(w: &mut W, level: usize) -> io::Result<()> {
    // A line break and the indentation of the usual depths in one write.
    const LINE: &[u8; 65] = b"\n                                                                ";
    let mut n = level * 2;
    let first = n.min(LINE.len() - 1);
    w.write_all(LINE.get(..1 + first).unwrap_or_default())?;
    n -= first;
    while n > 0 {
        let k = n.min(LINE.len() - 1);
        w.write_all(LINE.get(1..1 + k).unwrap_or_default())?;
        n -= k;
    }
    Ok(())
}

impl serde_json::ser::Formatter for Indented {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            newline(w, self.level)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        newline(w, self.level)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            newline(w, self.level)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        newline(w, self.level)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Appends `value` to `out` as the document has it at `depth`.
fn write_indented<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    depth: usize,
) -> io::Result<()> {
    super::emit::formatted(out, Indented::at(depth), value).map_err(io::Error::from)
}

/// Writes `"name": [ ... ]` as the last members of the document do, each value pretty at
/// array depth.
struct ArrayWriter<'a, W: Write> {
    w: &'a mut W,
    text: &'a mut Vec<u8>,
    any: bool,
}

impl<'a, W: Write> ArrayWriter<'a, W> {
    fn begin(w: &'a mut W, text: &'a mut Vec<u8>, name: &str) -> io::Result<Self> {
        write!(w, ",\n  \"{name}\": [")?;
        Ok(ArrayWriter {
            w,
            text,
            any: false,
        })
    }

    /// One element, already indented for array depth (see [`write_indented`]).
    fn indented(&mut self, v: &[u8]) -> io::Result<()> {
        self.w
            .write_all(if self.any { b",\n    " } else { b"\n    " })?;
        self.any = true;
        self.w.write_all(v)
    }

    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> io::Result<()> {
        self.text.clear();
        write_indented(self.text, v, 2)?;
        self.w
            .write_all(if self.any { b",\n    " } else { b"\n    " })?;
        self.any = true;
        self.w.write_all(self.text)
    }

    fn end(self) -> io::Result<()> {
        self.w.write_all(if self.any { b"\n  ]" } else { b"]" })
    }
}

impl ReportSink for JsonSink {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> io::Result<()> {
        let capture = u32::try_from(self.order.index(&flow.capture))
            .map_err(|_| io::Error::other("over 4 billion captures"))?;
        self.servers.add_flow(flow, findings);
        for f in findings {
            self.servers.add_finding(f);
        }
        let mut findings: Vec<Cow<'_, Finding>> =
            findings.iter().map(|f| finding_for_flow(f, flow)).collect();
        sort_findings(&mut findings);

        let detail = self.detail;
        let rec = &mut self.scratch;
        rec.clear();
        rec.extend_from_slice(&u32_len(flow.id.len())?.to_le_bytes());
        rec.extend_from_slice(flow.id.as_bytes());
        detail::with(detail, || write_indented(rec, flow, 2))?;
        let findings_at = rec.len();
        rec.extend_from_slice(&u32_len(findings.len())?.to_le_bytes());
        let ends_at = rec.len();
        rec.resize(ends_at + 4 * findings.len(), 0);
        let json_at = rec.len();
        for (i, f) in findings.iter().enumerate() {
            write_indented(rec, f.as_ref(), 2)?;
            let end = u32_len(rec.len() - json_at)?.to_le_bytes();
            if let Some(slot) = rec.get_mut(ends_at + 4 * i..ends_at + 4 * (i + 1)) {
                slot.copy_from_slice(&end);
            }
        }
        let len = u32_len(rec.len())?;
        if self.finished {
            return Err(io::Error::other(
                "JSON report: flow after the document was finished",
            ));
        }
        let offset = self.spill.append(rec)?;
        let entry = Entry {
            start_secs: flow.start.secs,
            first_frame: flow.tcp.first_frame,
            offset,
            start_nanos: flow.start.nanos,
            capture,
            len,
            findings_at: u32_len(findings_at)?,
        };
        self.entries.push(entry, &mut self.spill)?;
        // One huge flow (thousands of AUTH attempts) must not pin its buffer for the run.
        if rec.capacity() > 1 << 20 {
            *rec = Vec::new();
        }
        Ok(())
    }

    fn capture(&mut self, capture: &CaptureRecord) -> io::Result<()> {
        self.order.index(&capture.path);
        self.captures.push(capture.clone());
        Ok(())
    }

    fn finish(&mut self, findings: &[Finding], summary: &Summary) -> io::Result<()> {
        if std::mem::replace(&mut self.finished, true) {
            return Err(io::Error::other("JSON report finished twice"));
        }
        // Deterministic whatever order the pipeline finished flows in.
        self.entries.seal(&mut self.spill)?;
        self.spill.flush()?;

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
        text.clear();

        let mut batch = Batch::default();
        let mut flows = ArrayWriter::begin(&mut w, &mut text, "flows")?;
        let mut each = |head: &[u8]| -> io::Result<()> {
            let (_, json) = split_head(head)?;
            flows.indented(json)
        };
        in_document_order(self.entries.pass(), &mut self.spill, |e, spill| {
            batch.push((e.offset, e.findings_at as usize), spill, &mut each)
        })?;
        batch.flush(&mut self.spill, &mut each)?;
        flows.end()?;

        let mut all = ArrayWriter::begin(&mut w, &mut text, "findings")?;
        let mut each = |mut part: &[u8]| -> io::Result<()> {
            let n = take_u32(&mut part)? as usize;
            let (ends, json) = part.split_at_checked(4 * n).ok_or(SpillError::Corrupt)?;
            let mut from = 0usize;
            for end in ends.chunks_exact(4) {
                let end = u32::from_le_bytes(end.try_into().map_err(|_| SpillError::Corrupt)?);
                let end = end as usize;
                all.indented(json.get(from..end).ok_or(SpillError::Corrupt)?)?;
                from = end;
            }
            Ok(())
        };
        in_document_order(self.entries.pass(), &mut self.spill, |e, spill| {
            // Four bytes are the count alone: no findings, nothing to read.
            let Some(part) = e.len.checked_sub(e.findings_at).filter(|&n| n > 4) else {
                return Ok(());
            };
            let at = e.offset + u64::from(e.findings_at);
            batch.push((at, part as usize), spill, &mut each)
        })?;
        batch.flush(&mut self.spill, &mut each)?;
        for f in findings {
            all.value(f)?;
            self.servers.add_finding(f);
        }
        all.end()?;

        let mut servers = ArrayWriter::begin(&mut w, &mut text, "servers")?;
        for server in self.servers.to_json() {
            servers.value(&server)?;
        }
        servers.end()?;
        write!(
            w,
            ",\n  \"servers_not_tabulated\": {{\"flows\": {}, \"max_servers\": {}}}",
            self.servers.flows_not_tabulated(),
            super::posture::MAX_SERVERS
        )?;
        w.write_all(b"\n}\n")?;
        w.flush()?;
        drop(w);
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::io::Cursor;
    use std::rc::Rc;

    use super::*;
    use crate::findings::{Kind, Severity};
    use crate::flow::{CloseReason, DirStats, EventMeta, RoleSource};
    use crate::report::model::{EndpointRecord, FlowClass, TcpRecord};
    use crate::time::Timestamp;

    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn record(id: &str, capture: &str, start: Timestamp, first_frame: u64) -> FlowRecord {
        let ep = |ip: &str, port| EndpointRecord {
            ip: ip.parse().unwrap(),
            port,
        };
        FlowRecord {
            id: id.into(),
            capture: capture.into(),
            client: ep("192.0.2.10", 50_000),
            server: ep("198.51.100.7", 25),
            start,
            end: start,
            duration_secs: 0.0,
            class: FlowClass::Plaintext,
            smtp: None,
            tls: None,
            tcp: TcpRecord {
                roles: RoleSource::Syn,
                roles_corrected: false,
                close: CloseReason::Fin,
                first_frame,
                last_frame: first_frame + 9,
                last_frame_capture: None,
                to_server: DirStats::default(),
                to_client: DirStats::default(),
            },
        }
    }

    fn finding(kind: Kind, frame: u64, msg: &str) -> Finding {
        let meta = EventMeta {
            ts: Timestamp::new(1_700_000_000, 0),
            frame,
        };
        Finding::new(kind, Severity::High, meta, msg)
    }

    /// Flows in an arrival order unlike the document's: two captures, equal start times,
    /// ties on (capture, start, first frame) only the id decides, an identical record twice,
    /// flows with and without findings (given out of order), one very large flow.
    fn arrivals() -> Vec<(FlowRecord, Vec<Finding>)> {
        let t = |s: i64, n: u32| Timestamp::new(1_700_000_000 + s, n);
        let big = "x".repeat(200_000);
        vec![
            (record("b-1", "b.pcap", t(0, 0), 1), vec![]),
            (
                record("a-9", "a.pcap", t(5, 0), 40),
                vec![
                    finding(Kind::CleartextMail, 44, "later"),
                    finding(Kind::CleartextCredentials, 41, "\"quoted\" {[,:]}"),
                ],
            ),
            (record("a-tie-c", "a.pcap", t(3, 7), 30), vec![]),
            (
                record("a-tie-a", "a.pcap", t(3, 7), 30),
                vec![finding(Kind::StarttlsNotUsed, 31, "tie a")],
            ),
            (record("a-1", "a.pcap", t(1, 0), 10), vec![]),
            (
                record("a-tie-b", "a.pcap", t(3, 7), 30),
                vec![finding(Kind::StarttlsNotUsed, 32, &big)],
            ),
            (record("a-2", "a.pcap", t(3, 6), 99), vec![]),
            (record("a-1", "a.pcap", t(1, 0), 10), vec![]),
        ]
    }

    fn try_document(mut sink: JsonSink, out: &Shared) -> io::Result<Vec<u8>> {
        for (f, fs) in arrivals() {
            sink.flow(&f, &fs)?;
        }
        let wide = [finding(Kind::AuthBruteForce, 7, "run-wide")];
        sink.finish(&wide, &Summary::default())?;
        Ok(out.0.borrow().clone())
    }

    fn document(sink: JsonSink, out: &Shared) -> Vec<u8> {
        try_document(sink, out).unwrap()
    }

    fn sink(out: &Shared, spill: Spill, order: Order) -> JsonSink {
        JsonSink::with_parts(Box::new(out.clone()), spill, order)
    }

    /// Records and entries in memory, one batch sorted there.
    fn held() -> Vec<u8> {
        let out = Shared::default();
        let spill = Spill::memory(io::Error::other("no TMPDIR"));
        document(sink(&out, spill, Order::new()), &out)
    }

    #[test]
    fn document_order_and_ties_by_id() {
        let doc: serde_json::Value = serde_json::from_slice(&held()).unwrap();
        let ids: Vec<&str> = doc["flows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            // Captures as first seen: b.pcap's flow arrived first.
            [
                "b-1", "a-1", "a-1", "a-2", "a-tie-a", "a-tie-b", "a-tie-c", "a-9"
            ]
        );
        let found: Vec<(&str, u64)> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["flow"].as_str().unwrap(), f["frame"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            found,
            [
                ("a-tie-a", 31),
                ("a-tie-b", 32),
                ("a-9", 41),
                ("a-9", 44),
                ("", 7)
            ]
        );
    }

    /// In a file or in memory, sorted in one batch or through runs of every size and merges
    /// of them: the same bytes.
    #[test]
    fn spilled_records_and_runs_give_the_same_bytes_as_held_ones() {
        let expected = held();
        for (run, fan_in) in [(1, 2), (2, 2), (3, 2), (3, 3), (5, 64), (1 << 16, 64)] {
            let out = Shared::default();
            let file = Spill::file(Box::new(tempfile::tempfile().unwrap()));
            let got = document(sink(&out, file, Order::with_sizes(run, fan_in)), &out);
            assert_eq!(got, expected, "runs of {run}, fan-in {fan_in}");
            let out = Shared::default();
            let memory = Spill::memory(io::Error::other("no TMPDIR"));
            let got = document(sink(&out, memory, Order::with_sizes(run, fan_in)), &out);
            assert_eq!(got, expected, "in memory, runs of {run}, fan-in {fan_in}");
        }
    }

    /// The disk fills up while records or runs are written, or with the last records still
    /// buffered at the end: the run fails with the disk's error, before any of the document.
    #[test]
    fn a_full_disk_is_an_error_before_the_document() {
        let total = {
            let out = Shared::default();
            let mut sink = sink(
                &out,
                Spill::file(Box::new(Cursor::new(Vec::new()))),
                Order::new(),
            );
            for (f, fs) in arrivals() {
                sink.flow(&f, &fs).unwrap();
            }
            usize::try_from(sink.spill.len()).unwrap()
        };
        for budget in [0, 700, 3000, total / 2, total - 1] {
            for order in [Order::new(), Order::with_sizes(2, 2)] {
                let out = Shared::default();
                let full = spill::tests::Full {
                    data: Cursor::new(Vec::new()),
                    budget,
                };
                let err = try_document(sink(&out, Spill::file(Box::new(full)), order), &out)
                    .expect_err("the disk is full");
                assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
                assert!(err.to_string().contains("temporary file"), "{err}");
                assert!(out.0.borrow().is_empty(), "file full after {budget}");
            }
        }
    }

    /// Real captures (one given twice: its flows tie on the key and the id), through runs of
    /// one or two entries merged two at a time, give the bytes of the document sorted in one
    /// batch.
    #[test]
    fn fixtures_through_tiny_runs_give_the_same_document() {
        use crate::cli::Config;
        use crate::pipeline::{self, Observer};
        struct Quiet;
        impl Observer for Quiet {
            fn error(&mut self, e: &str) {
                panic!("{e}");
            }
            fn warning(&mut self, _: &str) {}
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/");
        let inputs: Vec<String> = [
            "smtp-smuggling-exim.pcap",
            "smtp-conn-port-scan.pcap",
            "smtp-plain-auth-distributed-brute-force.pcap",
            "smtp-smuggling-exim.pcap",
            "smtp-587-starttls-removed-by-relay.pcap",
        ]
        .iter()
        .map(|f| format!("{dir}{f}"))
        .collect();
        let run = |spill: Spill, order: Order| {
            let out = Shared::default();
            let mut sink = sink(&out, spill, order);
            pipeline::run(&Config::default(), &inputs, &mut sink, &mut Quiet).unwrap();
            out.0.borrow().clone()
        };
        let one_batch = run(Spill::new(), Order::new());
        let doc: serde_json::Value = serde_json::from_slice(&one_batch).unwrap();
        assert!(doc["flows"].as_array().unwrap().len() > 20);
        for (size, fan_in) in [(1, 2), (2, 2), (3, 3)] {
            let file = Spill::file(Box::new(tempfile::tempfile().unwrap()));
            let got = run(file, Order::with_sizes(size, fan_in));
            assert!(got == one_batch, "runs of {size}, fan-in {fan_in}");
        }
    }

    fn pretty_at_depth(v: &serde_json::Value, depth: usize) -> String {
        let mut out = Vec::new();
        write_indented(&mut out, v, depth).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn indents_exactly_like_serde_json() {
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
        // Deeper than one run of the indentation's spaces.
        let mut deep = serde_json::json!(1);
        for _ in 0..40 {
            deep = serde_json::json!([deep]);
        }
        let v = serde_json::json!({"k": [1, {"x": 2}], "deep": deep});
        let whole =
            serde_json::to_string_pretty(&serde_json::json!({"outer": [v.clone()]})).unwrap();
        let inner = pretty_at_depth(&v, 2);
        assert!(
            whole.contains(&format!("    {inner}")),
            "{whole}\n---\n{inner}"
        );
    }
}
