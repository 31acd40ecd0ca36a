//! Runs captures through reader, decoder, flow table and analysis into a report sink.
//!
//! With one thread a capture runs in a straight line on the calling thread. With more,
//! [`sharded`] spreads the flows of a capture file over worker threads and merges what they
//! finish back into the order one thread would have produced, so the report is the same byte
//! for byte. Standard input and other pipes stay on one thread (see [`run`]).

mod chain;
mod files;
mod framer;
mod sharded;

use std::collections::BTreeSet;
use std::io;

use crate::analysis::{Analyzer, FinishedFlow, Output};
use crate::capture::{CaptureError, CaptureReader, Frame, LinkType, LiveStream, stdin_source};
use crate::cli::Config;
use crate::decode::{Decoded, Decoder};
use crate::findings::bruteforce::BruteForceTracker;
use crate::findings::correlate::Correlator;
use crate::flow::{EventMeta, FlowTable, FlowTableStats};
use crate::report::ReportSink;
use crate::report::model::{CaptureRecord, Summary};
use crate::time::Timestamp;

/// How a run went, for the exit status.
#[derive(Debug, Default)]
pub struct RunOutcome {
    pub summary: Summary,
    /// Inputs that could be read at least in part.
    pub inputs_read: usize,
    /// Inputs that could not be read at all.
    pub inputs_failed: usize,
}

/// Where progress and diagnostics go (the CLI decides: a progress bar, stderr, nothing).
pub trait Observer {
    /// A capture is being started; `total` is its size when known.
    fn start_capture(&mut self, _path: &str, _total: Option<u64>) {}
    /// Progress within the current capture (raw input bytes, packets).
    fn progress(&mut self, _input_bytes: u64, _packets: u64) {}
    fn finish_capture(&mut self) {}
    /// A fatal problem with one input (it could not be read at all).
    fn error(&mut self, message: &str);
    /// A capture damaged part-way, or another non-fatal problem.
    fn warning(&mut self, message: &str);
}

/// Packets between two progress updates.
const PROGRESS_EVERY: u64 = 1 << 14;

/// Analyses every capture in `inputs` (paths; `-` is standard input), writing to `sink` as
/// flows finish. Several files that follow each other in time are one capture and share one
/// flow table ([`chain`]); inputs are analysed in the order of their first packets, whatever
/// their order on the command line. With `cfg.threads` above one, several independent
/// inputs or chains run at once (one thread each, up to `cfg.threads`), and a single capture
/// file spreads its flows over `cfg.threads` workers; standard input alone is analysed on the
/// calling thread, so that a live capture's flows appear as they close. The report is the
/// same whatever the number of threads.
pub fn run(
    cfg: &Config,
    inputs: &[String],
    sink: &mut dyn ReportSink,
    obs: &mut dyn Observer,
) -> io::Result<RunOutcome> {
    let units = chain::plan(inputs, cfg.threads);
    if cfg.threads > 1 && units.len() > 1 {
        let outcome = files::run_units(cfg, &units, sink, obs);
        note_stop(cfg, obs);
        return outcome;
    }
    let mut tally = Tally::new(cfg);
    for unit in units {
        if cfg.stop.requested() {
            break;
        }
        match unit {
            chain::Unit::One(path) => {
                let reader = open_input(cfg, &path);
                tally.input(cfg, sink, obs, path, reader)?;
            }
            chain::Unit::Chain(paths) => {
                let mut emit =
                    |out: Output, files: &chain::Files| tally.output(sink, out, Some(files));
                let done = chain::analyse_chain(cfg, &paths, obs, &mut emit);
                for (path, analysed) in done {
                    tally.capture(sink, obs, &path, analysed)?;
                }
            }
        }
    }
    note_stop(cfg, obs);
    tally.finish(sink)
}

/// Opens one input; standard input through [`stdin_source`], so that a stop ends a live
/// capture even while no packet comes.
fn open_input(cfg: &Config, path: &str) -> Result<CaptureReader, CaptureError> {
    if path != "-" {
        // A named pipe (`mkfifo`) given by name is a live stream like standard input.
        let fifo = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
        if !fifo {
            return CaptureReader::open(path);
        }
        let open_err = |source| CaptureError::Open {
            path: path.to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(open_err)?;
        let live = LiveStream::from_stream(Box::new(file), cfg.stop.clone()).map_err(open_err)?;
        return CaptureReader::from_read(path.to_string(), Box::new(live));
    }
    let src = stdin_source(&cfg.stop).map_err(|source| CaptureError::Io {
        path: path.to_string(),
        offset: 0,
        source,
    })?;
    CaptureReader::from_read(path.to_string(), src)
}

/// Says once on stderr that the run was stopped, when it was.
fn note_stop(cfg: &Config, obs: &mut dyn Observer) {
    if cfg.stop.requested() {
        obs.warning("stopped by a signal: the report covers what was read until then");
    }
}

/// Analyses a capture held in memory (tests and fuzzing) along the same path as a file.
pub fn run_bytes(
    cfg: &Config,
    name: &str,
    bytes: Vec<u8>,
    sink: &mut dyn ReportSink,
) -> io::Result<RunOutcome> {
    struct Silent;
    impl Observer for Silent {
        fn error(&mut self, _: &str) {}
        fn warning(&mut self, _: &str) {}
    }
    let reader = CaptureReader::from_read(name.to_string(), Box::new(io::Cursor::new(bytes)));
    run_readers(cfg, [(name.to_string(), reader)], sink, &mut Silent)
}

/// What the run adds up across captures: the outcome, cross-connection findings, and brute
/// force over all flows.
struct Tally {
    outcome: RunOutcome,
    bruteforce: BruteForceTracker,
    correlator: Correlator,
    /// Flows the correlator let go, waiting to be written (reused, so it never allocates
    /// once grown).
    ready: Vec<FinishedFlow>,
    /// Cross-connection findings decided after their flow was written (frames already
    /// mapped to their file), for the end of the report.
    late: Vec<crate::findings::Finding>,
    /// Entries of inputs that could not be read, held until an input is read: when none is,
    /// there is no report (only the errors on stderr), so nothing may have been written.
    unread: Vec<CaptureRecord>,
    /// The correlator's `untracked` total already reported with an earlier capture.
    untracked_reported: u64,
    /// Flows written while `keep_spent` is set, handed back through [`Emit`] to be freed by
    /// the worker thread that built them (see [`sharded`]); otherwise they are freed here.
    spent: Vec<FinishedFlow>,
    keep_spent: bool,
}

impl Tally {
    fn new(cfg: &Config) -> Self {
        Tally {
            outcome: RunOutcome::default(),
            bruteforce: BruteForceTracker::default(),
            correlator: Correlator::with_spray(cfg.scan_threshold, cfg.spray),
            ready: Vec::new(),
            late: Vec::new(),
            unread: Vec::new(),
            untracked_reported: 0,
            spent: Vec::new(),
            keep_spent: false,
        }
    }

    /// What the analysis hands on, in capture order: evidence goes to the correlator at once
    /// (named, in a chain, after the file where its flow starts), finished flows through
    /// [`flow`](Self::flow).
    fn output(
        &mut self,
        sink: &mut dyn ReportSink,
        out: Output,
        files: Option<&chain::Files>,
    ) -> io::Result<()> {
        match out {
            Output::Flow(f) => self.flow(sink, f, files),
            Output::Evidence(mut ev) => {
                if let Some(files) = files {
                    files.name_evidence(&mut ev);
                }
                self.correlator.evidence(ev);
                self.collect_late(files);
                Ok(())
            }
        }
    }

    /// Takes what the correlator decided too late for its flow, with its frames mapped to
    /// their file while the chain's files are at hand.
    fn collect_late(&mut self, files: Option<&chain::Files>) {
        for mut f in self.correlator.take_late() {
            if let Some(files) = files {
                files.localize_finding(&mut f);
            }
            self.late.push(f);
        }
    }

    /// Every finished flow, reported or not, in report order: the correlator sees them all
    /// and says which reported ones may be written now. `files` when the flow comes from
    /// chained files, whose frame numbers run on from file to file: they are mapped back to
    /// each file here, after the correlator amended the flow and before it may hold it past
    /// the end of its chain.
    fn flow(
        &mut self,
        sink: &mut dyn ReportSink,
        mut f: FinishedFlow,
        files: Option<&chain::Files>,
    ) -> io::Result<()> {
        if let Some(files) = files {
            files.name(&mut f);
        }
        // Cross-connection facts compare frames of one numbering: before they are mapped.
        self.correlator.amend_flow(&mut f);
        self.collect_late(files);
        if let Some(files) = files {
            files.localize(&mut f);
        }
        let mut ready = std::mem::take(&mut self.ready);
        self.correlator.release(f, &mut ready);
        let written = self.write(sink, &mut ready);
        self.ready = ready;
        written
    }

    fn write(
        &mut self,
        sink: &mut dyn ReportSink,
        ready: &mut Vec<FinishedFlow>,
    ) -> io::Result<()> {
        for mut f in ready.drain(..) {
            // Findings of one file (or added across connections) name the flow's capture.
            for finding in &mut f.findings {
                if finding.capture.is_empty() {
                    finding.capture.clone_from(&f.record.capture);
                }
            }
            self.bruteforce.observe(&f.record);
            self.outcome.summary.add_flow(&f.record);
            for finding in &f.findings {
                self.outcome.summary.add_finding(finding);
            }
            sink.flow(&f.record, &f.findings)?;
            if self.keep_spent {
                self.spent.push(f);
            }
        }
        Ok(())
    }

    /// A capture is done (its flows all emitted): its entry goes to the sink.
    fn capture(
        &mut self,
        sink: &mut dyn ReportSink,
        obs: &mut dyn Observer,
        path: &str,
        analysed: Result<CaptureRecord, CaptureFailure>,
    ) -> io::Result<()> {
        // Flows still waiting on the correlator belong to this capture: they go before its entry.
        let mut ready = std::mem::take(&mut self.ready);
        let scans = self.correlator.end_capture(&mut ready);
        let written = self.write(sink, &mut ready);
        self.ready = ready;
        written?;
        match analysed {
            Ok(mut record) => {
                self.outcome.inputs_read += 1;
                record.flow_table.scanners += scans.scanners;
                record.flow_table.scan_sources_untracked += scans.sources_untracked;
                record.flow_table.scan_holds_overflow += scans.holds_overflow;
                let untracked = self.correlator.untracked();
                record.flow_table.cross_connection_untracked +=
                    untracked.saturating_sub(self.untracked_reported);
                self.untracked_reported = untracked;
                for unread in self.unread.drain(..) {
                    sink.capture(&unread)?;
                }
                sink.capture(&record)
            }
            Err(CaptureFailure::Unreadable(e)) => {
                self.outcome.inputs_failed += 1;
                obs.error(&e.to_string());
                let record = unreadable_record(path, &e);
                if self.outcome.inputs_read == 0 {
                    self.unread.push(record);
                    return Ok(());
                }
                sink.capture(&record)
            }
            Err(CaptureFailure::Output(e)) => Err(e),
        }
    }

    /// Writes the end of the report, unless no input could be read: then there is none (the
    /// errors are on stderr and the run exits 2), rather than a report of nothing.
    fn finish(mut self, sink: &mut dyn ReportSink) -> io::Result<RunOutcome> {
        if self.outcome.inputs_read == 0 {
            return Ok(self.outcome);
        }
        let mut run_findings = std::mem::take(&mut self.late);
        run_findings.extend(self.correlator.take_late());
        run_findings.sort_by_key(|f| (f.ts, f.frame, f.kind));
        run_findings.extend(self.bruteforce.findings());
        for f in &run_findings {
            self.outcome.summary.add_finding(f);
        }
        sink.finish(&run_findings, &self.outcome.summary)?;
        Ok(self.outcome)
    }

    /// One input analysed on its own, on the calling thread (its flows sharded over workers
    /// when that pays).
    fn input(
        &mut self,
        cfg: &Config,
        sink: &mut dyn ReportSink,
        obs: &mut dyn Observer,
        path: String,
        reader: Result<CaptureReader, CaptureError>,
    ) -> io::Result<()> {
        // A file (gzip included: it is decompressed once, by the reading thread) is shared out
        // in rounds of frames; a pipe (a live capture) runs on one thread so that its flows
        // are reported the moment they close, not a round later.
        let sharded = cfg.threads > 1 && reader.as_ref().is_ok_and(|r| r.total_size().is_some());
        self.keep_spent = sharded;
        let analysed = reader
            .map_err(CaptureFailure::Unreadable)
            .and_then(|reader| {
                let mut emit = |out: Output, spent: &mut Vec<FinishedFlow>| {
                    let written = self.output(sink, out, None);
                    spent.append(&mut self.spent);
                    written
                };
                if sharded {
                    sharded::analyse_capture(cfg, reader, obs, &mut emit)
                } else {
                    analyse_capture(cfg, reader, obs, &mut emit)
                }
            });
        self.keep_spent = false;
        self.spent.clear();
        self.capture(sink, obs, &path, analysed)
    }
}

fn run_readers(
    cfg: &Config,
    readers: impl IntoIterator<Item = (String, Result<CaptureReader, CaptureError>)>,
    sink: &mut dyn ReportSink,
    obs: &mut dyn Observer,
) -> io::Result<RunOutcome> {
    let mut tally = Tally::new(cfg);
    for (path, reader) in readers {
        tally.input(cfg, sink, obs, path, reader)?;
    }
    tally.finish(sink)
}

/// The capture entry of an input that could not be read at all.
fn unreadable_record(path: &str, e: &CaptureError) -> CaptureRecord {
    CaptureRecord {
        path: path.to_string(),
        format: None,
        error: Some(e.to_string()),
        packets: 0,
        bytes: 0,
        link_types: Vec::new(),
        warnings: Vec::new(),
        first_packet: None,
        last_packet: None,
        tcp_flows: 0,
        reported_flows: 0,
        decode: Default::default(),
        flow_table: Default::default(),
        chained_to: None,
    }
}

fn emit_all(outputs: Vec<Output>, emit: &mut Emit<'_>) -> Result<(), CaptureFailure> {
    // On one thread nothing is handed back.
    let mut spent = Vec::new();
    for out in outputs {
        emit(out, &mut spent).map_err(CaptureFailure::Output)?;
    }
    Ok(())
}

enum CaptureFailure {
    /// The input could not be read at all.
    Unreadable(CaptureError),
    /// Writing the report failed (e.g. a closed pipe).
    Output(io::Error),
}

/// Receives each finished flow in the order of the report, and the evidence seen meanwhile
/// in capture order among them. Flows written may be handed back in the vector, for the
/// caller to free where they were built.
type Emit<'a> = dyn FnMut(Output, &mut Vec<FinishedFlow>) -> io::Result<()> + 'a;

/// What the reading side learns about a capture on its own, whichever way it is analysed.
struct InputFacts {
    decoder: Decoder,
    packets: u64,
    link_types: BTreeSet<LinkType>,
    last_link_type: Option<LinkType>,
    warnings: Vec<String>,
    first_packet: Option<Timestamp>,
    last_packet: Option<Timestamp>,
    /// Frames of the files before this one in its chain (0 for a capture on its own): the
    /// flow table numbers a chain's frames on from file to file.
    frame_base: u64,
}

impl InputFacts {
    fn new() -> Self {
        InputFacts {
            decoder: Decoder::new(),
            packets: 0,
            link_types: BTreeSet::new(),
            last_link_type: None,
            warnings: Vec::new(),
            first_packet: None,
            last_packet: None,
            frame_base: 0,
        }
    }

    /// Counts a frame and decodes it; `Some` when it holds a TCP segment or an ICMP error
    /// quoting one.
    fn frame<'a>(&mut self, frame: &Frame<'a>) -> Option<(Decoded<'a>, EventMeta)> {
        self.packets += 1;
        // A set insert per frame is measurable; a capture's link type rarely changes.
        if self.last_link_type != Some(frame.link_type) {
            self.link_types.insert(frame.link_type);
            self.last_link_type = Some(frame.link_type);
        }
        self.first_packet.get_or_insert(frame.ts);
        self.last_packet = Some(frame.ts);
        let meta = EventMeta {
            ts: frame.ts,
            frame: self.frame_base + frame.number,
        };
        let decoded = self
            .decoder
            .decode_packet(frame.link_type, frame.data, frame.orig_len)?;
        Some((decoded, meta))
    }

    /// The run was stopped before this input ended: a file that was not read to its end says
    /// so (a live stream ending at a stop is the usual way for it to end).
    fn stopped(&mut self, reader: &CaptureReader) {
        if reader.total_size().is_some() {
            self.warnings.push(format!(
                "{}: stopped by a signal after {} packets; the rest of the file was not read",
                reader.path(),
                self.packets
            ));
        }
    }

    /// A read error: fatal when nothing could be read, else the capture ends here.
    fn read_error(
        &mut self,
        e: CaptureError,
        stop: &crate::capture::Stop,
        obs: &mut dyn Observer,
    ) -> Result<(), CaptureFailure> {
        // A stop can cut the block being read (it ends a live stream mid-packet): that is the
        // end the user asked for, not damage.
        if stop.requested() && self.packets > 0 {
            return Ok(());
        }
        // A capture damaged part-way: keep what was read, say where it broke.
        if self.packets == 0 && matches!(e, CaptureError::Open { .. }) {
            return Err(CaptureFailure::Unreadable(e));
        }
        obs.warning(&e.to_string());
        self.warnings.push(e.to_string());
        Ok(())
    }

    /// The capture record, once every flow has been emitted.
    fn into_record(
        mut self,
        reader: &mut CaptureReader,
        obs: &mut dyn Observer,
        tcp_flows: u64,
        reported_flows: u64,
        flow_table: FlowTableStats,
    ) -> CaptureRecord {
        let path = reader.path().to_string();
        obs.progress(reader.input_position(), self.packets);
        obs.finish_capture();
        // Every warning names the file (the reader's already do), in the report and on stderr.
        let later = reader.take_warnings().into_iter().chain(
            self.decoder
                .take_warnings()
                .into_iter()
                .map(|w| format!("{path}: {w}")),
        );
        for w in later {
            obs.warning(&w);
            self.warnings.push(w);
        }
        CaptureRecord {
            path,
            format: Some(reader.format()),
            error: None,
            packets: self.packets,
            bytes: reader.bytes_read(),
            link_types: self.link_types.iter().map(|l| l.name()).collect(),
            warnings: self.warnings,
            first_packet: self.first_packet,
            last_packet: self.last_packet,
            tcp_flows,
            reported_flows,
            decode: self.decoder.stats().clone(),
            flow_table,
            chained_to: None,
        }
    }
}

/// One capture from first byte to last flow, on the calling thread.
fn analyse_capture(
    cfg: &Config,
    mut reader: CaptureReader,
    obs: &mut dyn Observer,
    emit: &mut Emit<'_>,
) -> Result<CaptureRecord, CaptureFailure> {
    let cfg = &cfg.for_capture();
    reader.set_key_store(cfg.keys.clone());
    obs.start_capture(reader.path(), reader.total_size());
    let mut facts = InputFacts::new();
    let mut table = FlowTable::new(
        cfg.flow,
        Analyzer::new(cfg.clone(), reader.path().to_string()),
    );
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
                if table.handler().has_output() {
                    emit_all(table.handler_mut().take_output(), emit)?;
                }
                if facts.packets % PROGRESS_EVERY == 0 {
                    obs.progress(reader.input_position(), facts.packets);
                }
            }
            Ok(None) => break,
            Err(e) => {
                facts.read_error(e, &cfg.stop, obs)?;
                break;
            }
        }
    }
    // Handed on as they finish: a flood leaves a full table, whose records held all at
    // once would cost more than the table.
    let mut failed = None;
    table.finish_all_each(|analyzer| {
        if failed.is_none() && analyzer.has_output() {
            failed = emit_all(analyzer.take_output(), emit).err();
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    emit_all(table.handler_mut().take_output(), emit)?;
    let analyzer = table.handler();
    let (tcp_flows, reported_flows) = (analyzer.tcp_flows(), analyzer.reported_flows());
    let stats = table.stats().clone();
    Ok(facts.into_record(&mut reader, obs, tcp_flows, reported_flows, stats))
}
