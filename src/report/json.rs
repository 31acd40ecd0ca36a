//! `--format json`: one pretty-printed document, as `docs/report.md` and
//! `schema/report.schema.json` describe it.
//!
//! The document's `flows` are sorted, so none can be written before the last flow is known.
//! Each flow is kept, with its findings, as JSON text in an unnamed temporary file (in
//! `TMPDIR`, gone when the run ends), already indented as the document has it; memory holds
//! only a 40-byte index entry per flow (its sort key and where its record is), so it grows by
//! that rather than by the few KB a flow's JSON takes. At the end the records are copied into
//! the document in its order, unchanged. Should no temporary file be available (or writing
//! it fail), the records are held in memory instead, with the same output.

use std::borrow::Cow;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use serde::Serialize;

use super::model::{CaptureRecord, Detail, FlowRecord, SCHEMA_VERSION, Summary, ToolInfo, detail};
use super::posture::Postures;
use super::{CaptureOrder, ReportSink, finding_for_flow, sort_findings};
use crate::findings::Finding;

/// Where a flow's record is and where it goes in the document: 40 bytes.
///
/// A record is the flow's id (`u32` length, bytes) and JSON, then at `findings_at` its
/// findings: a `u32` count, each one's end (`u32`, from the first one's start), their JSON;
/// all JSON indented for depth 2 (elements of the document's arrays).
#[derive(Clone, Copy, Debug)]
struct Entry {
    start_secs: i64,
    first_frame: u64,
    offset: u64,
    start_nanos: u32,
    capture: u32,
    len: u32,
    findings_at: u32,
}

impl Entry {
    /// Document order: capture (as first seen), start time, first frame. The flow id breaks
    /// the remaining ties (see [`order_ties_by_id`]).
    fn key(&self) -> (u32, i64, u32, u64) {
        (
            self.capture,
            self.start_secs,
            self.start_nanos,
            self.first_frame,
        )
    }
}

/// What the records are written to: a file, or a fake one in tests.
trait SpillFile: Read + Write + Seek {}
impl<T: Read + Write + Seek> SpillFile for T {}

/// The records while flows arrive.
enum Store {
    Spill(BufWriter<Box<dyn SpillFile>>),
    Memory(Vec<u8>),
}

impl Store {
    /// Appends one record. `committed` is how many bytes the records before it took: when the
    /// file fails (disk full), what reached it is read back and the run goes on in memory.
    fn append(&mut self, record: &[u8], committed: u64) -> io::Result<()> {
        if let Store::Spill(w) = self {
            if w.write_all(record).is_ok() {
                return Ok(());
            }
            if let Store::Spill(w) = std::mem::replace(self, Store::Memory(Vec::new())) {
                *self = Store::Memory(recover(w, committed)?);
            }
        }
        if let Store::Memory(held) = self {
            held.extend_from_slice(record);
        }
        Ok(())
    }

    /// Ready for reading back the `written` bytes.
    fn into_source(self, written: u64) -> io::Result<Source> {
        match self {
            Store::Memory(held) => Ok(Source::Memory(held)),
            Store::Spill(w) => match w.into_inner() {
                Ok(file) => Ok(Source::Spill {
                    file: BufReader::with_capacity(64 * 1024, file),
                    pos: None,
                }),
                Err(e) => Ok(Source::Memory(recover(e.into_inner(), written)?)),
            },
        }
    }
}

/// The first `committed` bytes written through `w`, from the file and what `w` still holds
/// (a `BufWriter` that failed keeps the bytes it could not write, in order).
fn recover(w: BufWriter<Box<dyn SpillFile>>, committed: u64) -> io::Result<Vec<u8>> {
    let (mut file, unwritten) = w.into_parts();
    let mut held = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut held)?;
    held.extend_from_slice(&unwritten.unwrap_or_default());
    let committed = usize::try_from(committed).map_err(|_| lost())?;
    if held.len() < committed {
        return Err(lost());
    }
    held.truncate(committed);
    Ok(held)
}

fn lost() -> io::Error {
    io::Error::other("the JSON report's temporary file lost flow records")
}

fn corrupt() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "malformed flow record in the JSON report's temporary store",
    )
}

/// The records at the end.
enum Source {
    Spill {
        file: BufReader<Box<dyn SpillFile>>,
        /// Where the file is read next, once known: reads close ahead seek within the buffer.
        pos: Option<u64>,
    },
    Memory(Vec<u8>),
}

impl Source {
    /// `len` bytes from `at`, read into `buf` unless they are in memory already.
    fn read<'a>(&'a mut self, at: u64, len: u32, buf: &'a mut Vec<u8>) -> io::Result<&'a [u8]> {
        let len = len as usize;
        match self {
            Source::Memory(held) => usize::try_from(at)
                .ok()
                .and_then(|at| held.get(at..at.checked_add(len)?))
                .ok_or_else(corrupt),
            Source::Spill { file, pos } => {
                let ahead = pos.and_then(|p| i64::try_from(i128::from(at) - i128::from(p)).ok());
                match ahead {
                    Some(0) => {}
                    Some(d) => file.seek_relative(d)?,
                    None => {
                        file.seek(SeekFrom::Start(at))?;
                    }
                }
                *pos = None;
                buf.clear();
                buf.resize(len, 0);
                file.read_exact(buf)?;
                *pos = Some(at + len as u64);
                Ok(buf)
            }
        }
    }
}

/// Splits a `u32` length or count off the front of `b`.
fn take_u32(b: &mut &[u8]) -> io::Result<u32> {
    let (head, rest) = b.split_first_chunk::<4>().ok_or_else(corrupt)?;
    *b = rest;
    Ok(u32::from_le_bytes(*head))
}

/// The id and the flow's JSON of a record's first part.
fn split_head(mut head: &[u8]) -> io::Result<(&[u8], &[u8])> {
    let n = take_u32(&mut head)? as usize;
    if head.len() < n {
        return Err(corrupt());
    }
    Ok(head.split_at(n))
}

fn u32_len(n: usize) -> io::Result<u32> {
    u32::try_from(n).map_err(|_| io::Error::other("flow record over 4 GiB"))
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
    entries: Vec<Entry>,
    /// Taken by `finish`.
    store: Option<Store>,
    /// Bytes of all records so far.
    written: u64,
    /// One record as it is built; run-wide findings' JSON at the end.
    scratch: Vec<u8>,
    /// The per-server posture (the document's `servers` array).
    servers: Postures,
    detail: Detail,
}

impl JsonSink {
    pub fn new(out: Box<dyn Write>) -> Self {
        // No temporary file (read-only or missing TMPDIR) is no reason to fail the run: the
        // records are held in memory then.
        let store = match tempfile::tempfile() {
            Ok(file) => spill_store(Box::new(file)),
            Err(_) => Store::Memory(Vec::new()),
        };
        Self::with_store(out, store)
    }

    fn with_store(out: Box<dyn Write>, store: Store) -> Self {
        JsonSink {
            out,
            order: CaptureOrder::default(),
            captures: Vec::new(),
            entries: Vec::new(),
            store: Some(store),
            written: 0,
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

fn spill_store(file: Box<dyn SpillFile>) -> Store {
    Store::Spill(BufWriter::with_capacity(64 * 1024, file))
}

/// Sorts each run of entries with equal [`Entry::key`] by flow id, keeping arrival order
/// among equal ids: with the sort by key before, the same order as one stable sort by
/// (key, id). Flows from the analysis never tie on the key within one capture, since a
/// frame opens at most one flow; they tie only when the same capture path is given twice,
/// and then their ids (derived from path, endpoints, start and first frame) are equal too,
/// so arrival order stays. The ids are read back only for ties, which other producers of
/// records may have.
fn order_ties_by_id(
    entries: &mut [Entry],
    source: &mut Source,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    for run in entries.chunk_by_mut(|a, b| a.key() == b.key()) {
        if run.len() < 2 {
            continue;
        }
        let mut ided = Vec::with_capacity(run.len());
        for e in run.iter() {
            let (id, _) = split_head(source.read(e.offset, e.findings_at, buf)?)?;
            ided.push((id.to_vec(), *e));
        }
        ided.sort_by(|a, b| a.0.cmp(&b.0));
        for (slot, (_, e)) in run.iter_mut().zip(ided) {
            *slot = e;
        }
    }
    Ok(())
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
    const SPACES: &[u8; 64] = &[b' '; 64];
    w.write_all(b"\n")?;
    let mut n = level * 2;
    while n > 0 {
        let k = n.min(SPACES.len());
        w.write_all(SPACES.get(..k).unwrap_or_default())?;
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
    let mut ser = serde_json::Serializer::with_formatter(out, Indented::at(depth));
    value.serialize(&mut ser).map_err(io::Error::from)
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
        let store = self
            .store
            .as_mut()
            .ok_or_else(|| io::Error::other("JSON report: flow after the document was finished"))?;
        store.append(rec, self.written)?;
        self.entries.push(Entry {
            start_secs: flow.start.secs,
            first_frame: flow.tcp.first_frame,
            offset: self.written,
            start_nanos: flow.start.nanos,
            capture,
            len,
            findings_at: u32_len(findings_at)?,
        });
        self.written += u64::from(len);
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
        let mut source = self
            .store
            .take()
            .ok_or_else(|| io::Error::other("JSON report finished twice"))?
            .into_source(self.written)?;
        let mut buf = Vec::with_capacity(16 * 1024);
        // Deterministic whatever order the pipeline finished flows in.
        self.entries.sort_by_key(Entry::key);
        order_ties_by_id(&mut self.entries, &mut source, &mut buf)?;

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

        let mut flows = ArrayWriter::begin(&mut w, &mut text, "flows")?;
        for e in &self.entries {
            let (_, json) = split_head(source.read(e.offset, e.findings_at, &mut buf)?)?;
            flows.indented(json)?;
        }
        flows.end()?;

        let mut all = ArrayWriter::begin(&mut w, &mut text, "findings")?;
        for e in &self.entries {
            // Four bytes are the count alone: no findings, nothing to read.
            let Some(part) = e.len.checked_sub(e.findings_at).filter(|&n| n > 4) else {
                continue;
            };
            let mut part = source.read(e.offset + u64::from(e.findings_at), part, &mut buf)?;
            let n = take_u32(&mut part)? as usize;
            let (ends, json) = part.split_at_checked(4 * n).ok_or_else(corrupt)?;
            let mut from = 0usize;
            for end in ends.chunks_exact(4) {
                let end = u32::from_le_bytes(end.try_into().map_err(|_| corrupt())?) as usize;
                all.indented(json.get(from..end).ok_or_else(corrupt)?)?;
                from = end;
            }
        }
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

    /// A file that takes `budget` bytes, the last write cut short, then fails like a full disk.
    struct Full {
        data: Cursor<Vec<u8>>,
        budget: usize,
    }

    impl Write for Full {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::other("no space left"));
            }
            let n = b.len().min(self.budget);
            self.budget -= n;
            self.data.write(&b[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Read for Full {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.data.read(b)
        }
    }

    impl Seek for Full {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.data.seek(to)
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

    fn document(sink: JsonSink, out: &Shared) -> Vec<u8> {
        let mut sink = sink;
        for (f, fs) in arrivals() {
            sink.flow(&f, &fs).unwrap();
        }
        let wide = [finding(Kind::AuthBruteForce, 7, "run-wide")];
        sink.finish(&wide, &Summary::default()).unwrap();
        out.0.borrow().clone()
    }

    fn held() -> Vec<u8> {
        let out = Shared::default();
        document(
            JsonSink::with_store(Box::new(out.clone()), Store::Memory(Vec::new())),
            &out,
        )
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

    #[test]
    fn spilled_records_give_the_same_bytes_as_held_ones() {
        let out = Shared::default();
        let file = tempfile::tempfile().unwrap();
        let spilled = document(
            JsonSink::with_store(Box::new(out.clone()), spill_store(Box::new(file))),
            &out,
        );
        assert_eq!(String::from_utf8(spilled), String::from_utf8(held()));
    }

    #[test]
    fn a_full_disk_falls_back_to_memory_with_the_same_bytes() {
        let expected = held();
        // Small buffers: the failure hits while a record is appended (cut in the middle of
        // one, or at the first byte); a buffer larger than all records: it hits when the
        // file is flushed at the end.
        for (capacity, budget) in [(16, 700), (16, 0), (64 * 1024, 3000), (1 << 20, 3000)] {
            let out = Shared::default();
            let full = Full {
                data: Cursor::new(Vec::new()),
                budget,
            };
            let store = Store::Spill(BufWriter::with_capacity(capacity, Box::new(full)));
            let got = document(JsonSink::with_store(Box::new(out.clone()), store), &out);
            assert_eq!(got, expected, "buffer {capacity}, file full after {budget}");
        }
    }

    #[test]
    fn an_index_entry_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 40);
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
