//! Runs captures through reader, decoder, flow table and analysis into a report sink.
//!
//! With one thread a capture runs in a straight line on the calling thread. With more,
//! [`sharded`] spreads its flows over worker threads and merges what they finish back into
//! the order one thread would have produced, so the report is the same byte for byte.

mod sharded;

use std::collections::BTreeSet;
use std::io;

use crate::analysis::{Analyzer, FinishedFlow};
use crate::capture::{CaptureError, CaptureReader, LinkType};
use crate::cli::Config;
use crate::decode::Decoder;
use crate::findings::bruteforce::BruteForceTracker;
use crate::flow::{EventMeta, FlowTable};
use crate::report::ReportSink;
use crate::report::model::{CaptureRecord, Summary};

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
/// flows finish.
pub fn run(
    cfg: &Config,
    inputs: &[String],
    sink: &mut dyn ReportSink,
    obs: &mut dyn Observer,
) -> io::Result<RunOutcome> {
    let opened = inputs
        .iter()
        .map(|path| (path.clone(), CaptureReader::open(path)));
    run_readers(cfg, opened, sink, obs)
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

fn run_readers(
    cfg: &Config,
    readers: impl IntoIterator<Item = (String, Result<CaptureReader, CaptureError>)>,
    sink: &mut dyn ReportSink,
    obs: &mut dyn Observer,
) -> io::Result<RunOutcome> {
    let mut outcome = RunOutcome::default();
    let mut bruteforce = BruteForceTracker::default();
    for (path, reader) in readers {
        let summary = &mut outcome.summary;
        let bruteforce = &mut bruteforce;
        let sink_ref = &mut *sink;
        let mut emit = move |f: FinishedFlow| -> io::Result<()> {
            bruteforce.observe(&f.record);
            summary.add_flow(&f.record);
            for finding in &f.findings {
                summary.add_finding(finding);
            }
            sink_ref.flow(&f.record, &f.findings)
        };
        let analysed = reader
            .map_err(CaptureFailure::Unreadable)
            .and_then(|reader| {
                if cfg.threads > 1 {
                    sharded::analyse_capture(cfg, reader, obs, &mut emit)
                } else {
                    analyse_capture(cfg, reader, obs, &mut emit)
                }
            });
        match analysed {
            Ok(record) => {
                outcome.inputs_read += 1;
                sink.capture(&record)?;
            }
            Err(CaptureFailure::Unreadable(e)) => {
                outcome.inputs_failed += 1;
                obs.error(&e.to_string());
                sink.capture(&unreadable_record(&path, &e))?;
            }
            Err(CaptureFailure::Output(e)) => return Err(e),
        }
    }
    let run_findings = bruteforce.findings();
    for f in &run_findings {
        outcome.summary.add_finding(f);
    }
    sink.finish(&run_findings, &outcome.summary)?;
    Ok(outcome)
}

/// The capture entry of an input that could not be read at all.
fn unreadable_record(path: &str, e: &CaptureError) -> CaptureRecord {
    CaptureRecord {
        path: path.to_string(),
        format: None,
        packets: 0,
        bytes: 0,
        link_types: Vec::new(),
        warnings: vec![e.to_string()],
        first_packet: None,
        last_packet: None,
        tcp_flows: 0,
        reported_flows: 0,
        decode: Default::default(),
        flow_table: Default::default(),
    }
}

fn emit_all(flows: Vec<FinishedFlow>, emit: &mut Emit<'_>) -> Result<(), CaptureFailure> {
    for f in flows {
        emit(f).map_err(CaptureFailure::Output)?;
    }
    Ok(())
}

enum CaptureFailure {
    /// The input could not be read at all.
    Unreadable(CaptureError),
    /// Writing the report failed (e.g. a closed pipe).
    Output(io::Error),
}

/// Receives each reported flow as it finishes, in the order of the report.
type Emit<'a> = dyn FnMut(FinishedFlow) -> io::Result<()> + 'a;

/// One capture from first byte to last flow, on the calling thread.
fn analyse_capture(
    cfg: &Config,
    mut reader: CaptureReader,
    obs: &mut dyn Observer,
    emit: &mut Emit<'_>,
) -> Result<CaptureRecord, CaptureFailure> {
    let path = reader.path().to_string();
    let path = path.as_str();
    obs.start_capture(path, reader.total_size());
    let mut decoder = Decoder::new();
    let mut table = FlowTable::new(cfg.flow, Analyzer::new(cfg.clone(), path.to_string()));
    let mut link_types = BTreeSet::<LinkType>::new();
    let mut warnings = Vec::new();
    let mut packets = 0u64;
    let mut first_packet = None;
    let mut last_packet = None;
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => {
                packets += 1;
                link_types.insert(frame.link_type);
                first_packet.get_or_insert(frame.ts);
                last_packet = Some(frame.ts);
                let meta = EventMeta {
                    ts: frame.ts,
                    frame: frame.number,
                };
                if let Some(seg) = decoder.decode(frame.link_type, frame.data, frame.orig_len) {
                    table.process(&seg, meta);
                }
                if table.handler().has_finished() {
                    emit_all(table.handler_mut().take_finished(), emit)?;
                }
                if packets % PROGRESS_EVERY == 0 {
                    obs.progress(reader.input_position(), packets);
                }
            }
            Ok(None) => break,
            Err(e) => {
                // A capture damaged part-way: keep what was read, say where it broke.
                if packets == 0 && matches!(e, CaptureError::Open { .. }) {
                    return Err(CaptureFailure::Unreadable(e));
                }
                obs.warning(&e.to_string());
                warnings.push(e.to_string());
                break;
            }
        }
    }
    table.finish_all();
    emit_all(table.handler_mut().take_finished(), emit)?;
    obs.progress(reader.input_position(), packets);
    obs.finish_capture();
    // Every warning names the file (the reader's already do), in the report and on stderr.
    let later = reader.take_warnings().into_iter().chain(
        decoder
            .take_warnings()
            .into_iter()
            .map(|w| format!("{path}: {w}")),
    );
    for w in later {
        obs.warning(&w);
        warnings.push(w);
    }
    let analyzer = table.handler();
    Ok(CaptureRecord {
        path: path.to_string(),
        format: Some(reader.format()),
        packets,
        bytes: reader.bytes_read(),
        link_types: link_types.iter().map(|l| l.name()).collect(),
        warnings,
        first_packet,
        last_packet,
        tcp_flows: analyzer.tcp_flows(),
        reported_flows: analyzer.reported_flows(),
        decode: decoder.stats().clone(),
        flow_table: table.stats().clone(),
    })
}
