//! One capture file analysed by N worker threads, each owning the flows whose canonical
//! 5-tuple hashes to it ([`crate::flow::FlowKey::shard_hash`]), with a report identical to one thread's.
//!
//! A reading thread ([`super::framer`]) reads and decodes every frame once and hands each
//! worker, in *rounds*, the segments of its shard and a tick whenever another shard's segment
//! moves the capture clock into a new second. Workers hand what they finished to the calling
//! thread after each round; since every worker gets a batch for every round, round `r` of
//! every worker covers the same frames. The calling thread merges each round's flows into
//! report order and writes them to the sink (which stays on the thread that owns it). A few
//! rounds in flight per worker bound the memory and keep the workers within reach of each
//! other.
//!
//! Why the merged order is the sequential order. One flow table closes flows
//! - while it processes frame `f` (FIN, RST, port reuse, eviction), in the order it decides;
//! - in an idle sweep when the capture clock enters a new second, before the frame that moved
//!   it, oldest touched first (capture second of the last packet, then creation order);
//! - at end of input, in creation order.
//!
//! Every worker moves its table's clock on every TCP segment of the capture that enters a new
//! second, its own or not (the reading thread's ticks), so every shard sweeps at the same
//! point of the capture. Each finished flow gets a
//! [`CloseKey`] saying where it closed; sorting a round's flows by key reproduces the order of
//! a single table, because creation order is first-frame order and a frame belongs to one
//! shard only. The high-water mark of live flows is recomputed the same way from per-shard
//! open/close events.
//!
//! Evidence for findings across connections (a STARTTLS offer, a failed TLS attempt, a
//! failed AUTH) travels in the same rounds, keyed like a flow closed while processing the
//! frame that carried it: merged with the flows, it reaches the correlator in the order one
//! table would have handed it on, whichever worker saw it.
//!
//! At the end of input each worker finishes its table in creation order and sends the flows
//! in rounds of [`END_FLOWS`], each marked with its last key; the merge writes only the flows
//! below the least such key of the workers still sending, so that a full table's records are
//! never all in memory at once.
//!
//! Limits are split across shards: `max_flows`, `memcap` and `max_ooo_bytes_total` are divided by N,
//! so a capture that reaches them may be evicted or trimmed differently than with one
//! thread. Below the limits the output does not depend on N.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread;

use super::framer::{Batch, Framer, Item, Progress, ReadOutcome, owner};
use super::{CaptureFailure, Emit, Observer};
use crate::analysis::{Analyzer, FinishedFlow, FlowState, Output};
use crate::capture::CaptureReader;
use crate::cli::Config;
use crate::decode::IcmpError;
use crate::flow::{
    CloseReason, Direction, Endpoint, EventMeta, FlowConfig, FlowHandler, FlowInfo, FlowKey,
    FlowTable, FlowTableStats, Interest, StreamEvent,
};
use crate::report::model::CaptureRecord;

/// Batches the reading thread may be ahead of a worker (each holds at most
/// [`super::framer::ROUND_BYTES`] of the capture's bytes). Deeper queues let a worker that
/// falls behind on a heavy round catch up without stalling the others: on the mail-relay
/// corpus, 2 -> 4 (with [`ROUNDS_IN_FLIGHT`]) took two threads from 0.96 to 0.94 s and peak
/// RSS from 38 to 50 MiB; 8 gained 0.01 s more for 60 MiB.
const BATCHES_IN_FLIGHT: usize = 4;
/// Rounds a worker may be ahead of the merge, at most.
const ROUNDS_IN_FLIGHT: usize = 4;
/// Flows per round at the end of input, where a worker finishes its whole table: a flood
/// leaves it full, and its records sent as one round would cost more than the table.
const END_FLOWS: usize = 256;

/// Where in the capture something happened, in the order one flow table does things.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    frame: u64,
    phase: Phase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// The idle sweep run when `frame` moved the capture clock, before the frame itself.
    Sweep,
    /// Processing `frame`.
    Frame,
    /// End of input (`frame` is `u64::MAX`).
    End,
}

/// Report position of a finished flow or of evidence; keys of different ones never compare
/// equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct CloseKey {
    pos: Pos,
    /// Sweeps: capture second of the flow's last packet (0 otherwise).
    touched_sec: i64,
    /// Sweeps and end of input: creation order (0 while processing a frame).
    first_frame: u64,
    /// While processing a frame: the order the one shard holding that frame closed them.
    seq: u64,
}

/// One live-flow count change of a shard.
#[derive(Clone, Copy, Debug)]
struct LiveChange {
    pos: Pos,
    opened: bool,
}

/// What a shard adds to the capture record, sent with its last batch.
#[derive(Debug, Default)]
struct ShardTotals {
    stats: FlowTableStats,
    tcp_flows: u64,
    reported_flows: u64,
}

/// The analyzer of one shard, noting where each flow opened and closed.
struct Recorder {
    inner: Analyzer,
    pos: Pos,
    seq: u64,
    /// Clock steps `(frame, second)` back to the oldest second a live flow may have been
    /// touched in; finds the second of a swept flow's last packet.
    ticks: VecDeque<(u64, i64)>,
    flows: Vec<(CloseKey, Output)>,
    live: Vec<LiveChange>,
}

impl Recorder {
    /// The capture second at frame `frame` (the clock value the table touched it with).
    fn second_at(&self, frame: u64) -> i64 {
        let after = self.ticks.partition_point(|&(f, _)| f <= frame);
        after
            .checked_sub(1)
            .and_then(|i| self.ticks.get(i))
            .map_or(i64::MIN, |&(_, sec)| sec)
    }
}

impl Recorder {
    /// Keys what the analysis handed on for the flow `info` (evidence, its finished record)
    /// with where it happened, in order.
    fn keep_output(&mut self, info: &FlowInfo) {
        if !self.inner.has_output() {
            return;
        }
        let (touched_sec, first_frame) = match self.pos.phase {
            Phase::Sweep => (self.second_at(info.last_frame), info.first_frame),
            Phase::Frame => (0, 0),
            Phase::End => (0, info.first_frame),
        };
        for out in self.inner.take_output() {
            let key = CloseKey {
                pos: self.pos,
                touched_sec,
                first_frame,
                seq: self.seq,
            };
            self.seq += 1;
            self.flows.push((key, out));
        }
    }
}

impl FlowHandler for Recorder {
    type State = FlowState;

    fn open(&mut self, info: &FlowInfo, meta: EventMeta) -> FlowState {
        self.live.push(LiveChange {
            pos: self.pos,
            opened: true,
        });
        self.inner.open(info, meta)
    }

    fn event(
        &mut self,
        state: &mut FlowState,
        info: &FlowInfo,
        dir: Direction,
        ev: StreamEvent<'_>,
        meta: EventMeta,
    ) -> Interest {
        let interest = self.inner.event(state, info, dir, ev, meta);
        // Evidence: while processing a frame of this shard, or flushed from a flow about to
        // close (then keyed like its close, and before it).
        self.keep_output(info);
        interest
    }

    fn waiting(&self, state: &FlowState, info: &FlowInfo) -> bool {
        self.inner.waiting(state, info)
    }

    fn icmp_error(
        &mut self,
        state: &mut FlowState,
        info: &FlowInfo,
        err: &IcmpError,
        meta: EventMeta,
    ) {
        self.inner.icmp_error(state, info, err, meta);
    }

    fn close(&mut self, state: FlowState, info: &FlowInfo, reason: CloseReason) {
        self.live.push(LiveChange {
            pos: self.pos,
            opened: false,
        });
        self.inner.close(state, info, reason);
        self.keep_output(info);
    }
}

/// What a worker finished in one round of frames.
#[derive(Default)]
struct Round {
    flows: Vec<(CloseKey, Output)>,
    live: Vec<LiveChange>,
    /// Set on the worker's last round (its input ended).
    totals: Option<ShardTotals>,
    /// Set on a round of the end of input that more will follow: the key of its last flow,
    /// below every key the worker sends later.
    partial: Option<CloseKey>,
}

/// One worker's flow table and where it stands in the capture.
struct Shard {
    table: FlowTable<Recorder>,
    /// Idle timeout in whole seconds, to forget clock steps no live flow can need.
    timeout: i64,
    /// The capture clock as a flow table keeps it: whole seconds, moved only forward, only
    /// by TCP segments (anyone's).
    clock: i64,
}

impl Shard {
    /// The capture clock entered `meta.ts`'s second at `meta.frame`: sweep as one table would
    /// before that frame.
    fn tick(&mut self, meta: EventMeta) {
        if meta.ts.secs <= self.clock {
            return;
        }
        self.clock = meta.ts.secs;
        let rec = self.table.handler_mut();
        rec.pos = Pos {
            frame: meta.frame,
            phase: Phase::Sweep,
        };
        rec.ticks.push_back((meta.frame, meta.ts.secs));
        self.table.advance_clock(meta.ts);
        // Live flows were all touched within the timeout (the sweep just closed the others),
        // so older steps are never asked for again.
        let rec = self.table.handler_mut();
        let oldest = meta.ts.secs.saturating_sub(self.timeout);
        while rec.ticks.len() > 1 && rec.ticks.get(1).is_some_and(|&(_, sec)| sec <= oldest) {
            rec.ticks.pop_front();
        }
    }

    /// What finished since the last round.
    fn round(&mut self) -> Round {
        let rec = self.table.handler_mut();
        Round {
            flows: std::mem::take(&mut rec.flows),
            live: std::mem::take(&mut rec.live),
            totals: None,
            partial: None,
        }
    }
}

/// A worker: runs the flow table of its shard on the batches the reading thread hands it,
/// and sends a round of what finished after each batch, until the input ends or the merge
/// hangs up.
struct Worker {
    cfg: Config,
    flow_cfg: FlowConfig,
    capture: String,
}

impl Worker {
    /// `spent`: flows of this shard the merge has written, to be freed here, where they were
    /// built (mimalloc frees another thread's memory by handing it back to the owner, at a
    /// cost that was 5% of a two-thread run's CPU on a mail relay's traffic).
    fn run(
        self,
        from: Receiver<Batch>,
        spare: Sender<Batch>,
        tx: SyncSender<Round>,
        spent: Receiver<Vec<FinishedFlow>>,
    ) {
        let recorder = Recorder {
            inner: Analyzer::new(self.cfg, self.capture),
            pos: Pos {
                frame: 0,
                phase: Phase::Frame,
            },
            seq: 0,
            ticks: VecDeque::new(),
            flows: Vec::new(),
            live: Vec::new(),
        };
        let mut shard = Shard {
            table: FlowTable::new(self.flow_cfg, recorder),
            timeout: i64::try_from(self.flow_cfg.idle_timeout_secs).unwrap_or(i64::MAX),
            clock: i64::MIN,
        };
        while let Ok(mut batch) = from.recv() {
            while let Ok(done) = spent.try_recv() {
                drop(done);
            }
            for item in &batch.items {
                match item {
                    Item::Tick(meta) => shard.tick(*meta),
                    Item::Segment(held, meta) => {
                        shard.tick(*meta);
                        shard.table.handler_mut().pos = Pos {
                            frame: meta.frame,
                            phase: Phase::Frame,
                        };
                        shard.table.process(&batch.segment(held), *meta);
                    }
                    Item::Icmp(err, meta) => shard.table.icmp_error(err, *meta),
                }
            }
            batch.clear();
            // The reading thread may have ended already; the batch is then simply dropped.
            let _ = spare.send(batch);
            // The merge hung up (its output failed): nothing left to do.
            if tx.send(shard.round()).is_err() {
                return;
            }
        }
        shard.table.handler_mut().pos = Pos {
            frame: u64::MAX,
            phase: Phase::End,
        };
        let mut hung_up = false;
        shard.table.finish_all_each(|rec| {
            // Finishing a full table takes many rounds: what the merge wrote of them comes
            // back meanwhile, and would pile up (a SYN flood's whole table) if left waiting.
            while let Ok(done) = spent.try_recv() {
                drop(done);
            }
            if !hung_up && rec.flows.len() >= END_FLOWS {
                let partial = rec.flows.last().map(|&(key, _)| key);
                let round = Round {
                    flows: std::mem::take(&mut rec.flows),
                    live: std::mem::take(&mut rec.live),
                    totals: None,
                    partial,
                };
                hung_up = tx.send(round).is_err();
            }
        });
        let mut last = shard.round();
        let analyzer = &shard.table.handler().inner;
        last.totals = Some(ShardTotals {
            stats: shard.table.stats().clone(),
            tcp_flows: analyzer.tcp_flows(),
            reported_flows: analyzer.reported_flows(),
        });
        let _ = tx.send(last);
    }
}

/// The calling thread's side: rounds coming in from the workers, merged into report order.
struct Merger {
    from: Vec<Receiver<Round>>,
    /// Per shard: flows written, sent back to be freed by the worker that built them.
    spent_to: Vec<Sender<Vec<FinishedFlow>>>,
    spent: Vec<FinishedFlow>,
    /// Each shard's live flows and the capture-wide high-water mark.
    live: Vec<u64>,
    max_live: u64,
    flows: Vec<(CloseKey, Output)>,
    changes: Vec<(Pos, usize, bool)>,
    /// Each shard's totals, once its last round is in.
    totals: Vec<Option<ShardTotals>>,
}

fn worker_gone() -> CaptureFailure {
    CaptureFailure::Output(io::Error::other("an analysis thread stopped unexpectedly"))
}

impl Merger {
    /// Waits for the next round from every worker still reading and emits its flows in report
    /// order. Returns `false` once every worker's last round has been merged.
    fn merge_round(&mut self, emit: &mut Emit<'_>) -> Result<bool, CaptureFailure> {
        // Below it every flow of every worker is in: the least of the last keys of the workers
        // that are part-way through their end of input.
        let mut upto = None;
        for (s, from) in self.from.iter().enumerate() {
            if self.totals.get(s).is_some_and(Option::is_some) {
                continue;
            }
            let mut round = from.recv().map_err(|_| worker_gone())?;
            if let Some(key) = round.partial {
                upto = Some(upto.map_or(key, |u: CloseKey| u.min(key)));
            }
            self.flows.append(&mut round.flows);
            self.changes
                .extend(round.live.iter().map(|c| (c.pos, s, c.opened)));
            if let (Some(t), Some(slot)) = (round.totals, self.totals.get_mut(s)) {
                *slot = Some(t);
            }
        }
        // Changes at the same position in different shards are all closes (sweeps, end of
        // input), so the stable sort gives every open its exact capture-wide count.
        self.changes.sort_by_key(|&(pos, _, _)| pos);
        for &(_, s, opened) in &self.changes {
            if let Some(n) = self.live.get_mut(s) {
                if opened {
                    *n += 1;
                } else {
                    *n = n.saturating_sub(1);
                }
            }
            if opened {
                self.max_live = self.max_live.max(self.live.iter().sum());
            }
        }
        self.changes.clear();
        self.flows.sort_unstable_by_key(|&(key, _)| key);
        let ready = upto.map_or(self.flows.len(), |u| {
            self.flows.partition_point(|&(key, _)| key <= u)
        });
        for (_, flow) in self.flows.drain(..ready) {
            emit(flow, &mut self.spent).map_err(CaptureFailure::Output)?;
        }
        self.send_back_spent();
        Ok(self.totals.iter().any(Option::is_none))
    }

    /// Hands each written flow back to the shard that owns its connection (a worker that has
    /// finished leaves them to be freed here).
    fn send_back_spent(&mut self) {
        if self.spent.is_empty() {
            return;
        }
        let shards = self.spent_to.len();
        let mut back: Vec<Vec<FinishedFlow>> = (0..shards).map(|_| Vec::new()).collect();
        for f in self.spent.drain(..) {
            let end = |e: &crate::report::model::EndpointRecord| Endpoint {
                ip: e.ip,
                port: e.port,
            };
            let key = FlowKey::new(end(&f.record.client), end(&f.record.server));
            if let Some(v) = back.get_mut(owner(&key, shards)) {
                v.push(f);
            }
        }
        for (to, flows) in self.spent_to.iter().zip(back) {
            if !flows.is_empty() {
                let _ = to.send(flows);
            }
        }
    }
}

/// One capture, read on a thread of its own, its flows spread over `cfg.threads` workers,
/// merged on the calling thread into the sink.
pub(super) fn analyse_capture(
    cfg: &Config,
    mut reader: CaptureReader,
    obs: &mut dyn Observer,
    emit: &mut Emit<'_>,
) -> Result<CaptureRecord, CaptureFailure> {
    let path = reader.path().to_string();
    // One store for the reader (it takes the key logs a pcapng file carries) and the workers.
    let capture_cfg = cfg.for_capture();
    reader.set_key_store(capture_cfg.keys.clone());
    let shards = cfg.threads.max(1);
    obs.start_capture(&path, reader.total_size());
    let flow_cfg = FlowConfig {
        max_flows: (cfg.flow.max_flows / shards).max(1),
        memcap: cfg.flow.memcap / shards,
        max_ooo_bytes_total: cfg.flow.max_ooo_bytes_total / shards,
        ..cfg.flow
    };
    let progress = Progress::default();
    thread::scope(|scope| {
        let (spare_tx, spare_rx) = mpsc::channel();
        let mut to_workers = Vec::with_capacity(shards);
        let mut workers = Vec::with_capacity(shards);
        let mut merger = Merger {
            from: Vec::with_capacity(shards),
            spent_to: Vec::with_capacity(shards),
            spent: Vec::new(),
            live: vec![0; shards],
            max_live: 0,
            flows: Vec::new(),
            changes: Vec::new(),
            totals: (0..shards).map(|_| None).collect(),
        };
        for i in 0..shards {
            let (batch_tx, batch_rx) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
            let (round_tx, round_rx) = mpsc::sync_channel(ROUNDS_IN_FLIGHT);
            let (spent_tx, spent_rx) = mpsc::channel();
            let worker = Worker {
                cfg: capture_cfg.clone(),
                flow_cfg,
                capture: path.clone(),
            };
            let spare = spare_tx.clone();
            let spawned = thread::Builder::new()
                .name(format!("shard-{i}"))
                .spawn_scoped(scope, move || {
                    worker.run(batch_rx, spare, round_tx, spent_rx)
                });
            match spawned {
                Ok(h) => workers.push(h),
                Err(e) => return Err(CaptureFailure::Output(e)),
            }
            to_workers.push(batch_tx);
            merger.from.push(round_rx);
            merger.spent_to.push(spent_tx);
        }
        drop(spare_tx);
        let framer = Framer {
            stop: cfg.stop.clone(),
            progress: &progress,
            to: to_workers,
            spare: spare_rx,
        };
        let reading = thread::Builder::new()
            .name("reader".to_string())
            .spawn_scoped(scope, move || framer.run(reader))
            .map_err(CaptureFailure::Output)?;
        let mut merged = Ok(());
        loop {
            match merger.merge_round(emit) {
                Ok(true) => obs.progress(
                    progress.input_bytes.load(Ordering::Relaxed),
                    progress.packets.load(Ordering::Relaxed),
                ),
                Ok(false) => break,
                Err(e) => {
                    merged = Err(e);
                    break;
                }
            }
        }
        // Whatever happened, hang up so that every worker and the reader end, then wait for
        // them.
        let Merger {
            max_live,
            totals,
            from,
            ..
        } = merger;
        drop(from);
        let mut panicked = false;
        for h in workers {
            panicked |= h.join().is_err();
        }
        let outcome = reading.join();
        merged?;
        let (Ok(outcome), false) = (outcome, panicked) else {
            return Err(worker_gone());
        };
        let totals: Vec<ShardTotals> = totals.into_iter().flatten().collect();
        if totals.len() != shards {
            return Err(worker_gone());
        }
        let ReadOutcome {
            mut reader,
            mut facts,
            error,
        } = outcome;
        if let Some(e) = error {
            facts.read_error(e, &cfg.stop, obs)?;
        }
        let mut flow_table = FlowTableStats::default();
        for t in &totals {
            add_stats(&mut flow_table, &t.stats);
        }
        flow_table.max_live_flows = max_live;
        let tcp_flows = totals.iter().map(|t| t.tcp_flows).sum();
        let reported_flows = totals.iter().map(|t| t.reported_flows).sum();
        Ok(facts.into_record(&mut reader, obs, tcp_flows, reported_flows, flow_table))
    })
}

/// Adds one shard's counters to the capture's (the high-water mark is merged separately).
fn add_stats(sum: &mut FlowTableStats, s: &FlowTableStats) {
    // Destructured so that a new counter cannot be forgotten here.
    let FlowTableStats {
        flows,
        max_live_flows: _,
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
    } = s;
    sum.flows += flows;
    sum.closed_fin += closed_fin;
    sum.closed_reset += closed_reset;
    sum.idle_timeouts += idle_timeouts;
    sum.stalled_flows += stalled_flows;
    sum.stall_timeouts += stall_timeouts;
    sum.evicted_flow_cap += evicted_flow_cap;
    sum.evicted_memcap += evicted_memcap;
    sum.port_reuse += port_reuse;
    sum.ooo_bytes_dropped_flow_cap += ooo_bytes_dropped_flow_cap;
    sum.ooo_bytes_dropped_total_cap += ooo_bytes_dropped_total_cap;
    sum.ooo_flow_cap_hits += ooo_flow_cap_hits;
    sum.ooo_total_cap_hits += ooo_total_cap_hits;
    sum.gaps += gaps;
    sum.conflicting_overlaps += conflicting_overlaps;
    sum.data_after_fin += data_after_fin;
    sum.closed_end_of_input += closed_end_of_input;
    sum.packets_after_close += packets_after_close;
    sum.closed_tracking_evicted += closed_tracking_evicted;
    sum.icmp_matched += icmp_matched;
    sum.icmp_unmatched += icmp_unmatched;
    sum.scanners += scanners;
    sum.scan_sources_untracked += scan_sources_untracked;
    sum.scan_holds_overflow += scan_holds_overflow;
    sum.cross_connection_untracked += cross_connection_untracked;
}
