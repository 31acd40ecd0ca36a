//! One capture analysed by N worker threads, each owning the flows whose canonical 5-tuple
//! hashes to it ([`FlowKey::shard_hash`]), with a report identical to one thread's.
//!
//! Three kinds of thread. A reading thread reads and decodes, copies each TCP segment (header
//! fields and payload) into the batch of its shard, and hands the batches out in *rounds*: one
//! batch per worker, all covering the same frames. The workers run the flow tables. The
//! calling thread merges each round's finished flows into report order and writes them to the
//! sink (which stays on the thread that owns it), then returns the emptied batches to the
//! reader: the steady state allocates nothing per packet, and a few rounds in flight bound the
//! memory and give back-pressure. Reading is the longest stage (system read copies, framing,
//! decoding); keeping the sink off that thread is what lets a second core help.
//!
//! Why the merged order is the sequential order. One flow table closes flows
//! - while it processes frame `f` (FIN, RST, port reuse, eviction), in the order it decides;
//! - in an idle sweep when the capture clock enters a new second, before the frame that moved
//!   it, oldest touched first (capture second of the last packet, then creation order);
//! - at end of input, in creation order.
//!
//! The reader broadcasts every clock step to all workers as a tick placed before that frame,
//! so every shard sweeps at the same point of the capture. Each finished flow gets a
//! [`CloseKey`] saying where it closed; sorting a round's flows by key reproduces the order of
//! a single table, because creation order is first-frame order and a frame belongs to one
//! shard only. The high-water mark of live flows is recomputed the same way from per-shard
//! open/close events.
//!
//! Limits are split across shards: `max_flows` and `max_ooo_bytes_total` are divided by N,
//! so a capture that reaches them may be evicted or trimmed differently than with one
//! thread. Below the limits the output does not depend on N.

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use super::{CaptureFailure, Emit, InputFacts, Observer, PROGRESS_EVERY};
use crate::analysis::{Analyzer, FinishedFlow, FlowState};
use crate::capture::{CaptureError, CaptureReader};
use crate::cli::Config;
use crate::decode::{TcpFlags, TcpSegment};
use crate::flow::{
    CloseReason, Direction, EventMeta, FlowConfig, FlowHandler, FlowInfo, FlowKey, FlowTable,
    FlowTableStats, Interest, StreamEvent,
};
use crate::report::model::CaptureRecord;

/// A batch is handed out when its payload reaches this many bytes ...
const BATCH_BYTES: usize = 1024 * 1024;
/// ... or it holds this many segments.
const BATCH_SEGMENTS: usize = 8192;
/// Rounds handed out and not yet merged, at most (batches per worker, besides the one being
/// filled).
const ROUNDS_IN_FLIGHT: usize = 3;
/// A batch buffer that grew beyond this (one huge frame) is not kept for reuse.
const KEEP_CAPACITY: usize = 4 * BATCH_BYTES;

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

/// Report position of a finished flow; keys of different flows never compare equal.
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

/// A decoded TCP segment copied out of the reader's buffer; its payload is a range of the
/// batch's byte buffer.
#[derive(Clone, Copy, Debug)]
struct SegmentCopy {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload_at: usize,
    payload_len: usize,
    missing_payload: u32,
    meta: EventMeta,
}

#[derive(Clone, Copy, Debug)]
enum Item {
    Segment(SegmentCopy),
    /// The capture clock entered `meta.ts`'s second at frame `meta.frame`.
    Tick(EventMeta),
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

/// Travels reader -> worker (segments) -> reader (finished flows), then is reused.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    payload: Vec<u8>,
    flows: Vec<(CloseKey, FinishedFlow)>,
    live: Vec<LiveChange>,
    totals: Option<ShardTotals>,
}

impl Batch {
    fn clear(&mut self) {
        self.items.clear();
        self.payload.clear();
        self.flows.clear();
        self.live.clear();
        self.totals = None;
        if self.payload.capacity() > KEEP_CAPACITY {
            self.payload = Vec::with_capacity(BATCH_BYTES);
        }
    }

    fn is_full(&self) -> bool {
        self.payload.len() >= BATCH_BYTES || self.items.len() >= BATCH_SEGMENTS
    }
}

enum ToWorker {
    Batch(Batch),
    /// End of input: finish every flow, report totals in this batch, stop.
    Finish(Batch),
}

/// The analyzer of one shard, noting where each flow opened and closed.
struct Recorder {
    inner: Analyzer,
    pos: Pos,
    seq: u64,
    /// Clock steps `(frame, second)` back to the oldest second a live flow may have been
    /// touched in; finds the second of a swept flow's last packet.
    ticks: VecDeque<(u64, i64)>,
    flows: Vec<(CloseKey, FinishedFlow)>,
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
        self.inner.event(state, info, dir, ev, meta)
    }

    fn close(&mut self, state: FlowState, info: &FlowInfo, reason: CloseReason) {
        self.live.push(LiveChange {
            pos: self.pos,
            opened: false,
        });
        self.inner.close(state, info, reason);
        if !self.inner.has_finished() {
            return;
        }
        let (touched_sec, first_frame) = match self.pos.phase {
            Phase::Sweep => (self.second_at(info.last_frame), info.first_frame),
            Phase::Frame => (0, 0),
            Phase::End => (0, info.first_frame),
        };
        for flow in self.inner.take_finished() {
            let key = CloseKey {
                pos: self.pos,
                touched_sec,
                first_frame,
                seq: self.seq,
            };
            self.seq += 1;
            self.flows.push((key, flow));
        }
    }
}

/// A worker: owns one shard's flow table until the reader says the input ended (or hangs up).
fn worker(
    cfg: Config,
    flow_cfg: FlowConfig,
    capture: String,
    rx: Receiver<ToWorker>,
    tx: Sender<Batch>,
) {
    let timeout = i64::try_from(flow_cfg.idle_timeout_secs).unwrap_or(i64::MAX);
    let recorder = Recorder {
        inner: Analyzer::new(cfg, capture),
        pos: Pos {
            frame: 0,
            phase: Phase::Frame,
        },
        seq: 0,
        ticks: VecDeque::new(),
        flows: Vec::new(),
        live: Vec::new(),
    };
    let mut table = FlowTable::new(flow_cfg, recorder);
    while let Ok(msg) = rx.recv() {
        let (mut batch, last) = match msg {
            ToWorker::Batch(b) => (b, false),
            ToWorker::Finish(b) => (b, true),
        };
        for item in &batch.items {
            match *item {
                Item::Tick(meta) => {
                    let rec = table.handler_mut();
                    rec.pos = Pos {
                        frame: meta.frame,
                        phase: Phase::Sweep,
                    };
                    rec.ticks.push_back((meta.frame, meta.ts.secs));
                    table.advance_clock(meta.ts);
                    // Live flows were all touched within the timeout (the sweep just closed
                    // the others), so older steps are never asked for again.
                    let rec = table.handler_mut();
                    let oldest = meta.ts.secs.saturating_sub(timeout);
                    while rec.ticks.len() > 1
                        && rec.ticks.get(1).is_some_and(|&(_, sec)| sec <= oldest)
                    {
                        rec.ticks.pop_front();
                    }
                }
                Item::Segment(s) => {
                    table.handler_mut().pos = Pos {
                        frame: s.meta.frame,
                        phase: Phase::Frame,
                    };
                    let payload = batch
                        .payload
                        .get(s.payload_at..s.payload_at + s.payload_len)
                        .unwrap_or_default();
                    let seg = TcpSegment {
                        src: s.src,
                        dst: s.dst,
                        src_port: s.src_port,
                        dst_port: s.dst_port,
                        seq: s.seq,
                        ack: s.ack,
                        flags: s.flags,
                        payload,
                        missing_payload: s.missing_payload,
                    };
                    table.process(&seg, s.meta);
                }
            }
        }
        if last {
            table.handler_mut().pos = Pos {
                frame: u64::MAX,
                phase: Phase::End,
            };
            table.finish_all();
        }
        let rec = table.handler_mut();
        std::mem::swap(&mut batch.flows, &mut rec.flows);
        std::mem::swap(&mut batch.live, &mut rec.live);
        if last {
            let analyzer = &table.handler().inner;
            batch.totals = Some(ShardTotals {
                stats: table.stats().clone(),
                tcp_flows: analyzer.tcp_flows(),
                reported_flows: analyzer.reported_flows(),
            });
        }
        // The reader hung up (its output failed): nothing left to do.
        if tx.send(batch).is_err() || last {
            return;
        }
    }
}

/// The reading thread's side: the batches being filled and where free ones come from.
struct Feeder {
    to: Vec<Sender<ToWorker>>,
    free: Vec<Receiver<Batch>>,
    filling: Vec<Batch>,
}

/// The merger hung up (its output failed): stop reading.
struct Stopped;

impl Feeder {
    /// Hands the current batches out as one round (and finishes the workers when `last`).
    /// Waits for free batches, which the merger returns after each round: that bounds the
    /// rounds in flight.
    fn send_round(&mut self, last: bool) -> Result<(), Stopped> {
        for ((to, free), slot) in self.to.iter().zip(&self.free).zip(&mut self.filling) {
            let next = if last {
                Batch::default()
            } else {
                free.recv().map_err(|_| Stopped)?
            };
            let batch = std::mem::replace(slot, next);
            let msg = if last {
                ToWorker::Finish(batch)
            } else {
                ToWorker::Batch(batch)
            };
            to.send(msg).map_err(|_| Stopped)?;
        }
        Ok(())
    }
}

/// Progress of the reading thread, shown by the calling thread (the observer stays there).
#[derive(Default)]
struct Progress {
    input_bytes: AtomicU64,
    packets: AtomicU64,
}

/// What the reading thread hands back when the input ends.
struct ReadOutcome {
    reader: CaptureReader,
    facts: InputFacts,
    /// The error that ended the input early, if any.
    error: Option<CaptureError>,
}

/// The calling thread's side: rounds coming back from the workers, merged into report order.
struct Merger {
    from: Vec<Receiver<Batch>>,
    free: Vec<Sender<Batch>>,
    /// Each shard's live flows and the capture-wide high-water mark.
    live: Vec<u64>,
    max_live: u64,
    flows: Vec<(CloseKey, FinishedFlow)>,
    changes: Vec<(Pos, usize, bool)>,
    totals: Vec<ShardTotals>,
}

fn worker_gone() -> CaptureFailure {
    CaptureFailure::Output(io::Error::other("an analysis thread stopped unexpectedly"))
}

impl Merger {
    /// Waits for the next round from every worker and emits its flows in report order.
    /// Returns `false` once the last round (the one with the totals) has been merged.
    fn merge_round(&mut self, emit: &mut Emit<'_>) -> Result<bool, CaptureFailure> {
        for (s, from) in self.from.iter().enumerate() {
            let mut batch = from.recv().map_err(|_| worker_gone())?;
            self.flows.append(&mut batch.flows);
            self.changes
                .extend(batch.live.iter().map(|c| (c.pos, s, c.opened)));
            if let Some(t) = batch.totals.take() {
                self.totals.push(t);
            }
            batch.clear();
            if let Some(free) = self.free.get(s) {
                // The reader has finished once the last round is out: nothing to return to.
                let _ = free.send(batch);
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
        for (_, flow) in self.flows.drain(..) {
            emit(flow).map_err(CaptureFailure::Output)?;
        }
        Ok(self.totals.is_empty())
    }
}

/// One capture, its flows spread over `cfg.threads` workers: a reading thread, the workers,
/// and the calling thread merging their rounds into the sink.
pub(super) fn analyse_capture(
    cfg: &Config,
    reader: CaptureReader,
    obs: &mut dyn Observer,
    emit: &mut Emit<'_>,
) -> Result<CaptureRecord, CaptureFailure> {
    let path = reader.path().to_string();
    obs.start_capture(&path, reader.total_size());
    let shards = cfg.threads.max(1);
    let flow_cfg = FlowConfig {
        max_flows: (cfg.flow.max_flows / shards).max(1),
        max_ooo_bytes_total: cfg.flow.max_ooo_bytes_total / shards,
        ..cfg.flow
    };
    let progress = Progress::default();
    thread::scope(|scope| {
        let mut workers = Vec::with_capacity(shards);
        let mut feeder = Feeder {
            to: Vec::with_capacity(shards),
            free: Vec::with_capacity(shards),
            filling: Vec::with_capacity(shards),
        };
        let mut merger = Merger {
            from: Vec::with_capacity(shards),
            free: Vec::with_capacity(shards),
            live: vec![0; shards],
            max_live: 0,
            flows: Vec::new(),
            changes: Vec::new(),
            totals: Vec::new(),
        };
        let new_batch = || Batch {
            items: Vec::with_capacity(BATCH_SEGMENTS),
            payload: Vec::with_capacity(BATCH_BYTES),
            ..Batch::default()
        };
        for _ in 0..shards {
            let (to_tx, to_rx) = mpsc::channel();
            let (back_tx, back_rx) = mpsc::channel();
            let (free_tx, free_rx) = mpsc::channel();
            for _ in 0..ROUNDS_IN_FLIGHT {
                let _ = free_tx.send(new_batch());
            }
            let (cfg, capture) = (cfg.clone(), path.clone());
            workers.push(scope.spawn(move || worker(cfg, flow_cfg, capture, to_rx, back_tx)));
            feeder.to.push(to_tx);
            feeder.free.push(free_rx);
            feeder.filling.push(new_batch());
            merger.from.push(back_rx);
            merger.free.push(free_tx);
        }
        let progress = &progress;
        let reading = scope.spawn(move || read_capture(reader, feeder, progress));
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
        // Whatever happened, hang up so that the reader and every worker end, then wait.
        let Merger {
            max_live,
            totals,
            from,
            free,
            ..
        } = merger;
        drop((from, free));
        let read = reading.join();
        let mut panicked = false;
        for h in workers {
            panicked |= h.join().is_err();
        }
        merged?;
        let ReadOutcome {
            mut reader,
            mut facts,
            error,
        } = read.map_err(|_| worker_gone())?;
        if let Some(e) = error {
            facts.read_error(e, obs)?;
        }
        if panicked || totals.len() != shards {
            return Err(worker_gone());
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

/// The reading thread: reads, decodes and hands out every frame, then finishes the workers.
fn read_capture(mut reader: CaptureReader, mut feeder: Feeder, progress: &Progress) -> ReadOutcome {
    let shards = feeder.filling.len().max(1) as u64;
    let mut facts = InputFacts::new();
    let mut error = None;
    // The capture clock as a flow table keeps it: whole seconds, moved only forward, only by
    // TCP segments.
    let mut clock = i64::MIN;
    loop {
        let full = match reader.next_frame() {
            Ok(Some(frame)) => {
                let mut full = false;
                if let Some((seg, meta)) = facts.frame(&frame) {
                    if meta.ts.secs > clock {
                        clock = meta.ts.secs;
                        for b in &mut feeder.filling {
                            b.items.push(Item::Tick(meta));
                        }
                    }
                    let shard = (FlowKey::of(&seg).shard_hash() % shards) as usize;
                    if let Some(b) = feeder.filling.get_mut(shard) {
                        let payload_at = b.payload.len();
                        b.payload.extend_from_slice(seg.payload);
                        b.items.push(Item::Segment(SegmentCopy {
                            src: seg.src,
                            dst: seg.dst,
                            src_port: seg.src_port,
                            dst_port: seg.dst_port,
                            seq: seg.seq,
                            ack: seg.ack,
                            flags: seg.flags,
                            payload_at,
                            payload_len: seg.payload.len(),
                            missing_payload: seg.missing_payload,
                            meta,
                        }));
                        full = b.is_full();
                    }
                }
                if facts.packets % PROGRESS_EVERY == 0 {
                    progress
                        .input_bytes
                        .store(reader.input_position(), Ordering::Relaxed);
                    progress.packets.store(facts.packets, Ordering::Relaxed);
                }
                full
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        if full && feeder.send_round(false).is_err() {
            break;
        }
    }
    // Ends the workers in every case (after a hang-up the sends just fail).
    let _ = feeder.send_round(true);
    ReadOutcome {
        reader,
        facts,
        error,
    }
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
        evicted_flow_cap,
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
    } = s;
    sum.flows += flows;
    sum.closed_fin += closed_fin;
    sum.closed_reset += closed_reset;
    sum.idle_timeouts += idle_timeouts;
    sum.evicted_flow_cap += evicted_flow_cap;
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
}
