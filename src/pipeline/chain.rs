//! Several files that are one capture: a ring buffer or rotation (`tcpdump -C/-G/-W`,
//! `dumpcap -b`) splits a long session across files. Before the analysis, every input that
//! is a regular file is read once for the times of its first and last packets ([`plan`]);
//! ordered by first packet, a file whose first packet is no earlier than the previous file's
//! last packet *chains* to it. Chained files run through one flow table, one after the other
//! ([`analyse_chain`]), so a connection that continues into the next file is one flow and
//! the end-of-input flush happens once, at the end of the chain. Files that overlap in time
//! stay independent captures, as do standard input and other pipes (which cannot be read
//! twice) and files without a packet.
//!
//! Frame numbers. Inside a chain, the flow table and the analyzers see one frame counter
//! that goes on from file to file (the second file's first packet is the first file's packet
//! count plus one): ordering by frame stays right across files, and the hot path pays one
//! addition per frame. [`Files`] maps those numbers back to (file, frame within the file, as
//! Wireshark counts) where a finished flow is reported: a flow's `capture` is the file where
//! it starts, a finding's `capture` the file that holds its `frame`, and any other frame
//! number that lies in another file than the one its record names gets a `*_capture` field
//! beside it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use serde_json::{Map, Value};

use super::{CaptureFailure, InputFacts, Observer, PROGRESS_EVERY};
use crate::analysis::{Analyzer, FinishedFlow, FlowState, Output, flow_id};
use crate::capture::CaptureReader;
use crate::cli::Config;
use crate::decode::Decoded;
use crate::findings::Finding;
use crate::findings::evidence::Evidence;
use crate::flow::{
    CloseReason, Direction, EventMeta, FlowHandler, FlowInfo, FlowTable, FlowTableStats, Interest,
    StreamEvent,
};
use crate::report::model::CaptureRecord;
use crate::time::Timestamp;

/// What runs as one: an input analysed on its own, or files chained into one capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Unit {
    One(String),
    Chain(Vec<String>),
}

/// Times of the first and last packet of a regular capture file; `None` for standard input,
/// pipes, files that cannot be read and files without a packet.
fn span_of(path: &str) -> Option<(Timestamp, Timestamp)> {
    // A pipe or device would be consumed by this pass: only regular files are read twice.
    if path == "-" || !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut reader = CaptureReader::open(path).ok()?;
    let mut first = None;
    let mut last = None;
    // A file damaged part-way is analysed up to the damage: its span ends there too.
    while let Ok(Some(frame)) = reader.next_frame() {
        first.get_or_insert(frame.ts);
        last = Some(frame.ts);
    }
    Some((first?, last?))
}

/// The spans of `inputs`, read by up to `threads` threads at once.
fn spans(inputs: &[String], threads: usize) -> Vec<Option<(Timestamp, Timestamp)>> {
    let found = Mutex::new(vec![None; inputs.len()]);
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..threads.clamp(1, inputs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = inputs.get(i) else {
                        break;
                    };
                    let span = span_of(path);
                    if let Ok(mut found) = found.lock()
                        && let Some(slot) = found.get_mut(i)
                    {
                        *slot = span;
                    }
                }
            });
        }
    });
    found.into_inner().unwrap_or_default()
}

/// Groups `inputs` into what runs as one, in the order the run analyses them: files with
/// packets by first packet (then last packet, then command-line position), each chained to
/// the one before it when it starts no earlier than that one ends; then standard input,
/// unreadable and empty inputs in command-line order. A lone input is not read beforehand.
pub(super) fn plan(inputs: &[String], threads: usize) -> Vec<Unit> {
    if inputs.len() < 2 {
        return inputs.iter().cloned().map(Unit::One).collect();
    }
    let spans = spans(inputs, threads);
    let mut timed: Vec<(Timestamp, Timestamp, usize)> = spans
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|(first, last)| (first, last, i)))
        .collect();
    timed.sort();
    let mut units = Vec::new();
    let mut chain: Vec<String> = Vec::new();
    let mut chain_last = None;
    let close = |chain: &mut Vec<String>, units: &mut Vec<Unit>| match chain.len() {
        0 => {}
        1 => units.extend(chain.drain(..).map(Unit::One)),
        _ => units.push(Unit::Chain(std::mem::take(chain))),
    };
    for (first, last, i) in timed {
        let Some(path) = inputs.get(i) else {
            continue;
        };
        if chain_last.is_some_and(|prev| first < prev) {
            close(&mut chain, &mut units);
        }
        chain.push(path.clone());
        chain_last = Some(last);
    }
    close(&mut chain, &mut units);
    units.extend(
        inputs
            .iter()
            .zip(&spans)
            .filter(|(_, s)| s.is_none())
            .map(|(p, _)| Unit::One(p.clone())),
    );
    units
}

/// The files of a chain seen so far and where each begins in the chain's frame numbering.
#[derive(Clone, Debug, Default)]
pub(super) struct Files {
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
struct Part {
    path: String,
    /// Frames of the chain before this file.
    base: u64,
}

impl Files {
    fn push(&mut self, path: &str, base: u64) {
        self.parts.push(Part {
            path: path.to_string(),
            base,
        });
    }

    pub(super) fn len(&self) -> usize {
        self.parts.len()
    }

    /// Which file holds chain frame `frame`, and its number there.
    fn locate(&self, frame: u64) -> (usize, u64) {
        let i = self
            .parts
            .partition_point(|p| p.base < frame)
            .saturating_sub(1);
        let base = self.parts.get(i).map_or(0, |p| p.base);
        (i, frame.saturating_sub(base))
    }

    fn path(&self, i: usize) -> &str {
        self.parts.get(i).map_or("", |p| p.path.as_str())
    }

    /// Names a finished flow after the file where it starts: `capture`, and an id derived
    /// from that file's path and the flow's frame there, as if that file had been analysed
    /// alone. Frames are left as they are (the cross-connection stage still compares them).
    pub(super) fn name(&self, f: &mut FinishedFlow) {
        let (i, first) = self.locate(f.record.tcp.first_frame);
        if i == 0 {
            // The analyzer named it after the chain's first file already.
            return;
        }
        let r = &mut f.record;
        let id = flow_id(
            self.path(i),
            r.client.ip,
            r.client.port,
            r.server.ip,
            r.server.port,
            r.start.as_nanos(),
            first,
        );
        for finding in &mut f.findings {
            if finding.flow == r.id {
                finding.flow.clone_from(&id);
            }
        }
        r.id = id;
        r.capture = self.path(i).to_string();
    }

    /// Names evidence after the file where its flow starts, as [`name`](Self::name) will
    /// name that flow when it finishes.
    pub(super) fn name_evidence(&self, ev: &mut Evidence) {
        let r = &mut ev.flow;
        let (i, first) = self.locate(r.first_frame);
        if i == 0 {
            return;
        }
        r.id = flow_id(
            self.path(i),
            r.client.ip,
            r.client.port,
            r.server.ip,
            r.server.port,
            r.start.as_nanos(),
            first,
        );
    }

    /// A finding written apart from its flow: its `frame` within the file that holds it,
    /// `capture` that file, and a `*_capture` beside each evidence frame in another file.
    pub(super) fn localize_finding(&self, finding: &mut Finding) {
        let (i, local) = self.locate(finding.frame);
        finding.frame = local;
        finding.capture = self.path(i).to_string();
        self.localize_evidence(&mut finding.evidence, i);
    }

    /// Turns chain frame numbers into numbers within their file: in the flow, with a
    /// `*_capture` beside each frame in another file than the flow's; in each finding, whose
    /// `capture` becomes the file holding its `frame`, with a `*_capture` beside each evidence
    /// frame in another file than that.
    pub(super) fn localize(&self, f: &mut FinishedFlow) {
        let home = self.locate(f.record.tcp.first_frame).0;
        let at = |frame: &mut u64, beside: &mut Option<String>| {
            let (i, local) = self.locate(*frame);
            *frame = local;
            if i != home {
                *beside = Some(self.path(i).to_string());
            }
        };
        let r = &mut f.record;
        r.tcp.first_frame = self.locate(r.tcp.first_frame).1;
        at(&mut r.tcp.last_frame, &mut r.tcp.last_frame_capture);
        if let Some(smtp) = r.smtp.as_mut() {
            let st = &mut smtp.starttls;
            if let Some(frame) = st.frame.as_mut() {
                at(frame, &mut st.frame_capture);
            }
            for a in &mut smtp.auth {
                at(&mut a.frame, &mut a.frame_capture);
                if let Some(frame) = a.secret_frame.as_mut() {
                    at(frame, &mut a.secret_frame_capture);
                }
            }
            for t in &mut smtp.transaction_list {
                at(&mut t.frame, &mut t.frame_capture);
            }
        }
        if let Some(tls) = r.tls.as_mut() {
            for a in &mut tls.alerts {
                at(&mut a.frame, &mut a.frame_capture);
            }
            if let Some(e) = tls.outcome_evidence.as_mut() {
                at(&mut e.frame, &mut e.frame_capture);
            }
            if let Some(c) = tls.client.as_mut() {
                at(&mut c.frame, &mut c.frame_capture);
            }
            if let Some(s) = tls.server.as_mut() {
                at(&mut s.frame, &mut s.frame_capture);
            }
            for note in &mut tls.anomalies {
                self.localize_note(note, home);
            }
        }
        for finding in &mut f.findings {
            self.localize_finding(finding);
        }
    }

    /// Evidence frames (`frame`, `*_frame`) at any depth, with `*_capture` beside those in
    /// another file than `home`.
    fn localize_evidence(&self, m: &mut Map<String, Value>, home: usize) {
        let mut beside = Vec::new();
        for (k, v) in m.iter_mut() {
            match v {
                Value::Number(n) if k == "frame" || k.ends_with("_frame") => {
                    if let Some(frame) = n.as_u64() {
                        let (i, local) = self.locate(frame);
                        *v = Value::from(local);
                        if i != home {
                            beside.push((format!("{k}_capture"), self.path(i).to_string()));
                        }
                    }
                }
                Value::Object(inner) => self.localize_evidence(inner, home),
                Value::Array(items) => {
                    for item in items {
                        if let Value::Object(inner) = item {
                            self.localize_evidence(inner, home);
                        }
                    }
                }
                _ => {}
            }
        }
        for (k, path) in beside {
            m.insert(k, Value::from(path));
        }
    }

    /// A TLS anomaly note ends "at frame N": N within its file, and the file when it is not
    /// the flow's.
    fn localize_note(&self, note: &mut String, home: usize) {
        const AT: &str = " at frame ";
        let Some(pos) = note.rfind(AT) else {
            return;
        };
        let digits_from = pos + AT.len();
        let digits = note.get(digits_from..).map_or(0, |rest| {
            rest.bytes().take_while(u8::is_ascii_digit).count()
        });
        let Some(frame) = note
            .get(digits_from..digits_from + digits)
            .and_then(|d| d.parse::<u64>().ok())
        else {
            return;
        };
        let (i, local) = self.locate(frame);
        let mut text = local.to_string();
        if i != home {
            text.push_str(" of ");
            text.push_str(self.path(i));
        }
        note.replace_range(digits_from..digits_from + digits, &text);
    }
}

/// The analyzer of a chain, counting flows by the file where they start (the capture entry
/// of each file says how many connections began in it).
struct PerFile {
    inner: Analyzer,
    /// Chain frames before each file, in chain order.
    bases: Vec<u64>,
    /// TCP flows and reported flows per file.
    counts: Vec<(u64, u64)>,
}

impl FlowHandler for PerFile {
    type State = FlowState;

    fn open(&mut self, info: &FlowInfo, meta: EventMeta) -> FlowState {
        self.inner.open(info, meta)
    }

    #[inline]
    fn event(
        &mut self,
        state: &mut FlowState,
        info: &FlowInfo,
        dir: Direction,
        ev: StreamEvent<'_>,
        meta: EventMeta,
    ) -> Interest {
        self.inner.event(state, info, dir, ev, meta)
    }

    fn icmp_error(
        &mut self,
        state: &mut FlowState,
        info: &FlowInfo,
        err: &crate::decode::IcmpError,
        meta: EventMeta,
    ) {
        self.inner.icmp_error(state, info, err, meta);
    }

    fn waiting(&self, state: &FlowState, info: &FlowInfo) -> bool {
        self.inner.waiting(state, info)
    }

    fn close(&mut self, state: FlowState, info: &FlowInfo, reason: CloseReason) {
        let before = (self.inner.tcp_flows(), self.inner.reported_flows());
        self.inner.close(state, info, reason);
        let i = self
            .bases
            .partition_point(|&b| b < info.first_frame)
            .saturating_sub(1);
        if let Some(c) = self.counts.get_mut(i) {
            c.0 += self.inner.tcp_flows().saturating_sub(before.0);
            c.1 += self.inner.reported_flows().saturating_sub(before.1);
        }
    }
}

/// Receives each finished flow of a chain, and the evidence seen meanwhile, in order, with
/// the files read so far.
pub(super) type ChainEmit<'a> = dyn FnMut(Output, &Files) -> std::io::Result<()> + 'a;

/// One file of a chain, once read: its record without the flow counts, and the flow table's
/// counters when it began and ended.
struct Read {
    /// Position of the file among those the flow table read (its flow counts).
    slot: usize,
    record: CaptureRecord,
    before: FlowTableStats,
    after: FlowTableStats,
}

/// Files chained into one capture, one after the other through one flow table, on the
/// calling thread. Returns each file's capture entry (or why it could not be read), in chain
/// order; stops at the first output error.
pub(super) fn analyse_chain(
    cfg: &Config,
    paths: &[String],
    obs: &mut dyn Observer,
    emit: &mut ChainEmit<'_>,
) -> Vec<(String, Result<CaptureRecord, CaptureFailure>)> {
    // One capture in several files: one store for its secrets blocks.
    let cfg = &cfg.for_capture();
    let first = paths.first().cloned().unwrap_or_default();
    let mut table = FlowTable::new(
        cfg.flow,
        PerFile {
            inner: Analyzer::new(cfg.clone(), first),
            bases: Vec::new(),
            counts: Vec::new(),
        },
    );
    let mut files = Files::default();
    let mut base = 0u64;
    let mut done: Vec<(String, Result<Read, CaptureFailure>)> = Vec::new();
    let mut flush = |table: &mut FlowTable<PerFile>, files: &Files| -> Result<(), CaptureFailure> {
        for out in table.handler_mut().inner.take_output() {
            emit(out, files).map_err(CaptureFailure::Output)?;
        }
        Ok(())
    };
    for path in paths {
        if cfg.stop.requested() {
            break;
        }
        let mut reader = match CaptureReader::open(path) {
            Ok(r) => r,
            // Readable a moment ago (the plan read it): removed or replaced since.
            Err(e) => {
                done.push((path.clone(), Err(CaptureFailure::Unreadable(e))));
                continue;
            }
        };
        files.push(path, base);
        let handler = table.handler_mut();
        handler.bases.push(base);
        handler.counts.push((0, 0));
        obs.start_capture(path, reader.total_size());
        reader.set_key_store(cfg.keys.clone());
        let before = table.stats().clone();
        let mut facts = InputFacts::new();
        facts.frame_base = base;
        let mut failed = None;
        loop {
            if cfg.stop.requested() {
                facts.stopped(&reader);
                break;
            }
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    match facts.frame(&frame) {
                        Some((Decoded::Tcp(seg), meta)) => table.process(&seg, meta),
                        Some((Decoded::IcmpError(err), meta)) => table.icmp_error(&err, meta),
                        None => {}
                    }
                    if table.handler().inner.has_output() {
                        if let Err(e) = flush(&mut table, &files) {
                            failed = Some(e);
                            break;
                        }
                    }
                    if facts.packets % PROGRESS_EVERY == 0 {
                        obs.progress(reader.input_position(), facts.packets);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if let Err(e) = facts.read_error(e, &cfg.stop, obs) {
                        failed = Some(e);
                    }
                    break;
                }
            }
        }
        if let Some(e) = failed {
            done.push((path.clone(), Err(e)));
            if matches!(done.last(), Some((_, Err(CaptureFailure::Output(_))))) {
                return finish(done, &table);
            }
            continue;
        }
        base += facts.packets;
        let record = facts.into_record(&mut reader, obs, 0, 0, FlowTableStats::default());
        done.push((
            path.clone(),
            Ok(Read {
                slot: files.len() - 1,
                record,
                before,
                after: table.stats().clone(),
            }),
        ));
    }
    // The end of the chain is the end of the input: what is still open finishes here.
    table.finish_all();
    if let Err(e) = flush(&mut table, &files) {
        done.push((String::new(), Err(e)));
        return finish(done, &table);
    }
    if let Some((_, Ok(last))) = done.iter_mut().rev().find(|(_, r)| r.is_ok()) {
        last.after = table.stats().clone();
    }
    finish(done, &table)
}

/// Each file's capture entry with its flow counts and the flow table's work while it was read.
fn finish(
    done: Vec<(String, Result<Read, CaptureFailure>)>,
    table: &FlowTable<PerFile>,
) -> Vec<(String, Result<CaptureRecord, CaptureFailure>)> {
    let handler = table.handler();
    let mut previous: Option<String> = None;
    done.into_iter()
        .map(|(path, r)| {
            let r = r.map(
                |Read {
                     slot,
                     mut record,
                     before,
                     after,
                 }| {
                    let (tcp, reported) = handler.counts.get(slot).copied().unwrap_or_default();
                    record.tcp_flows = tcp;
                    record.reported_flows = reported;
                    record.flow_table = stats_between(&before, &after);
                    record.chained_to = previous.replace(record.path.clone());
                    record
                },
            );
            (path, r)
        })
        .collect()
}

/// The flow table's counters from `b` to `a`; the high-water mark of live flows is the
/// chain's up to `a` (the table does not keep one per file).
fn stats_between(b: &FlowTableStats, a: &FlowTableStats) -> FlowTableStats {
    // Destructured so that a new counter cannot be forgotten here.
    let FlowTableStats {
        flows,
        max_live_flows,
        closed_fin,
        closed_reset,
        idle_timeouts,
        stalled_flows,
        stall_timeouts,
        evicted_flow_cap,
        evicted_memcap,
        port_reuse,
        ooo_bytes_dropped_flow_cap,
        ooo_bytes_dropped_total_cap,
        ooo_flow_cap_hits,
        ooo_total_cap_hits,
        gaps,
        conflicting_overlaps,
        data_after_fin,
        closed_end_of_input,
        packets_after_close,
        closed_tracking_evicted,
        icmp_matched,
        icmp_unmatched,
        scanners,
        scan_sources_untracked,
        scan_holds_overflow,
        cross_connection_untracked,
    } = a.clone();
    FlowTableStats {
        flows: flows.saturating_sub(b.flows),
        max_live_flows,
        closed_fin: closed_fin.saturating_sub(b.closed_fin),
        closed_reset: closed_reset.saturating_sub(b.closed_reset),
        idle_timeouts: idle_timeouts.saturating_sub(b.idle_timeouts),
        stalled_flows: stalled_flows.saturating_sub(b.stalled_flows),
        stall_timeouts: stall_timeouts.saturating_sub(b.stall_timeouts),
        evicted_flow_cap: evicted_flow_cap.saturating_sub(b.evicted_flow_cap),
        evicted_memcap: evicted_memcap.saturating_sub(b.evicted_memcap),
        port_reuse: port_reuse.saturating_sub(b.port_reuse),
        ooo_bytes_dropped_flow_cap: ooo_bytes_dropped_flow_cap
            .saturating_sub(b.ooo_bytes_dropped_flow_cap),
        ooo_bytes_dropped_total_cap: ooo_bytes_dropped_total_cap
            .saturating_sub(b.ooo_bytes_dropped_total_cap),
        ooo_flow_cap_hits: ooo_flow_cap_hits.saturating_sub(b.ooo_flow_cap_hits),
        ooo_total_cap_hits: ooo_total_cap_hits.saturating_sub(b.ooo_total_cap_hits),
        gaps: gaps.saturating_sub(b.gaps),
        conflicting_overlaps: conflicting_overlaps.saturating_sub(b.conflicting_overlaps),
        data_after_fin: data_after_fin.saturating_sub(b.data_after_fin),
        closed_end_of_input: closed_end_of_input.saturating_sub(b.closed_end_of_input),
        packets_after_close: packets_after_close.saturating_sub(b.packets_after_close),
        closed_tracking_evicted: closed_tracking_evicted.saturating_sub(b.closed_tracking_evicted),
        icmp_matched: icmp_matched.saturating_sub(b.icmp_matched),
        icmp_unmatched: icmp_unmatched.saturating_sub(b.icmp_unmatched),
        scanners: scanners.saturating_sub(b.scanners),
        scan_sources_untracked: scan_sources_untracked.saturating_sub(b.scan_sources_untracked),
        scan_holds_overflow: scan_holds_overflow.saturating_sub(b.scan_holds_overflow),
        cross_connection_untracked: cross_connection_untracked
            .saturating_sub(b.cross_connection_untracked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Files {
        let mut f = Files::default();
        f.push("a", 0);
        f.push("b", 10);
        f.push("c", 25);
        f
    }

    #[test]
    fn chain_frames_map_back_to_their_file() {
        let f = files();
        assert_eq!(f.locate(1), (0, 1));
        assert_eq!(f.locate(10), (0, 10));
        assert_eq!(f.locate(11), (1, 1));
        assert_eq!(f.locate(25), (1, 15));
        assert_eq!(f.locate(26), (2, 1));
        assert_eq!(f.locate(0), (0, 0));
    }

    #[test]
    fn notes_and_evidence_name_the_file_of_a_frame_elsewhere() {
        let f = files();
        let mut note = "to_client: gap of 3 bytes at frame 12".to_string();
        f.localize_note(&mut note, 0);
        assert_eq!(note, "to_client: gap of 3 bytes at frame 2 of b");
        let mut note = "to_server: second ServerHello at frame 12".to_string();
        f.localize_note(&mut note, 1);
        assert_eq!(note, "to_server: second ServerHello at frame 2");
        let mut ev = Map::new();
        ev.insert("auth_frame".into(), Value::from(3u64));
        ev.insert("frame".into(), Value::from(30u64));
        f.localize_evidence(&mut ev, 2);
        assert_eq!(ev["auth_frame"], 3);
        assert_eq!(ev["auth_frame_capture"], "a");
        assert_eq!(ev["frame"], 5);
        assert!(!ev.contains_key("frame_capture"));
    }
}
