//! The flow table: canonical 5-tuple -> live flow, roles, lifecycle and limits.
//!
//! Invariants:
//! - `lru` holds exactly one entry `(lru_sec, id)` per live flow, so the first entry is the
//!   longest idle flow (ties broken by age); it is touched at most once per capture second
//!   per flow, which keeps the per-packet path free of tree operations;
//! - `budget.used` equals the sum of the held costs of every live direction;
//! - a key is either live (`flows`) or remembered as finished (`closed`), never both.
//!
//! Flows are closed in a deterministic order: idle sweeps and evictions follow `lru`,
//! `finish_all` follows creation order.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};

use super::{
    CloseReason, DirStats, Direction, Endpoint, EventMeta, FlowConfig, FlowHandler, FlowInfo,
    FlowTableStats, Interest, RoleSource, StreamAssembler, StreamEvent, StreamSink, SynOutcome,
};
use crate::decode::TcpSegment;
use crate::time::Timestamp;

/// Ports whose side is taken as the server when no handshake was seen (SMTP 25, submissions
/// 465 per RFC 8314, submission 587 per RFC 6409, and the common alternative 2525).
const MAIL_PORTS: [u16; 4] = [25, 465, 587, 2525];

/// How long a connection finished by FIN or RST is remembered, so its trailing ACKs do not
/// open a new flow: 2 MSL of RFC 9293 §3.3.2 TIME-WAIT with MSL = 2 minutes.
const TIME_WAIT_SECS: u64 = 240;

/// A SYN whose sequence number is this far from what a mid-stream direction expects is a new
/// connection on the same 5-tuple, not a stray SYN of the old one.
const REUSE_WINDOW: u32 = 1 << 20;

/// The canonical 5-tuple (protocol is always TCP): both endpoints, lower first, so both
/// directions of a connection map to the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    lo: Endpoint,
    hi: Endpoint,
}

impl FlowKey {
    pub fn new(a: Endpoint, b: Endpoint) -> Self {
        if a <= b {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }

    pub fn of(seg: &TcpSegment<'_>) -> Self {
        FlowKey::new(
            Endpoint {
                ip: seg.src,
                port: seg.src_port,
            },
            Endpoint {
                ip: seg.dst,
                port: seg.dst_port,
            },
        )
    }

    /// The same value for both directions: use it to shard flows across workers.
    pub fn shard_hash(&self) -> u64 {
        let mut h = FxHasher::default();
        self.hash(&mut h);
        h.finish()
    }

    pub fn endpoints(&self) -> (Endpoint, Endpoint) {
        (self.lo, self.hi)
    }
}

/// Who is client, from the first packet seen of a flow.
fn roles_of(seg: &TcpSegment<'_>) -> (Endpoint, Endpoint, RoleSource) {
    let src = Endpoint {
        ip: seg.src,
        port: seg.src_port,
    };
    let dst = Endpoint {
        ip: seg.dst,
        port: seg.dst_port,
    };
    let syn = seg.flags.syn();
    let ack = seg.flags.ack();
    if syn && !ack {
        return (src, dst, RoleSource::Syn);
    }
    if syn && ack {
        return (dst, src, RoleSource::SynAck);
    }
    let src_mail = MAIL_PORTS.contains(&src.port);
    let dst_mail = MAIL_PORTS.contains(&dst.port);
    if dst_mail && !src_mail {
        return (src, dst, RoleSource::Port);
    }
    if src_mail && !dst_mail {
        return (dst, src, RoleSource::Port);
    }
    if dst.port < 1024 && src.port >= 1024 {
        return (src, dst, RoleSource::Port);
    }
    if src.port < 1024 && dst.port >= 1024 {
        return (dst, src, RoleSource::Port);
    }
    (src, dst, RoleSource::FirstPacket)
}

/// The table-wide out-of-order budget.
#[derive(Debug)]
struct Budget {
    used: usize,
    max: usize,
}

struct Flow<S> {
    id: u64,
    /// Capture second of the flow's `lru` entry.
    lru_sec: i64,
    info: FlowInfo,
    asm: [StreamAssembler; 2],
    state: S,
}

impl<S> Flow<S> {
    fn direction_of(&self, seg: &TcpSegment<'_>) -> Direction {
        if seg.src == self.info.client.ip && seg.src_port == self.info.client.port {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }

    /// True when a SYN (without ACK) from `dir` starts a new connection on this 5-tuple.
    fn is_new_connection(&self, dir: Direction, seq: u32) -> bool {
        let asm = &self.asm[dir.index()];
        let closing = self.asm.iter().any(StreamAssembler::fin_seen);
        match (asm.isn(), asm.expected_seq()) {
            (Some(isn), _) => isn != seq,
            (None, Some(expected)) => {
                let d = seq.wrapping_add(1).wrapping_sub(expected);
                closing || d.min(d.wrapping_neg()) > REUSE_WINDOW
            }
            (None, None) => closing,
        }
    }
}

/// Connects one direction's assembler to the analyzer and the table's counters.
struct Sink<'a, H: FlowHandler> {
    handler: &'a mut H,
    state: &'a mut H::State,
    info: &'a mut FlowInfo,
    dir: Direction,
    meta: EventMeta,
    counters: &'a mut FlowTableStats,
    budget: &'a mut Budget,
}

impl<H: FlowHandler> StreamSink for Sink<'_, H> {
    fn event(&mut self, ev: StreamEvent<'_>) -> Interest {
        self.handler
            .event(self.state, self.info, self.dir, ev, self.meta)
    }

    fn stats(&mut self) -> &mut DirStats {
        &mut self.info.dirs[self.dir.index()]
    }

    fn counters(&mut self) -> &mut FlowTableStats {
        self.counters
    }

    fn reserve(&mut self, cost: usize) -> bool {
        if self.budget.used + cost > self.budget.max {
            return false;
        }
        self.budget.used += cost;
        true
    }

    fn release(&mut self, cost: usize) {
        self.budget.used = self.budget.used.saturating_sub(cost);
    }
}

/// Tracks live TCP flows and drives a [`FlowHandler`] with reassembled stream events.
pub struct FlowTable<H: FlowHandler> {
    handler: H,
    config: FlowConfig,
    stats: FlowTableStats,
    flows: FxHashMap<FlowKey, Flow<H::State>>,
    lru: BTreeMap<(i64, u64), FlowKey>,
    /// Connections finished by FIN or RST, with the capture second they are forgotten at.
    closed: FxHashMap<FlowKey, i64>,
    closed_queue: VecDeque<(i64, FlowKey)>,
    budget: Budget,
    /// Capture clock: the latest whole second seen (timestamps may step back a little).
    now: i64,
    last_sweep: i64,
    next_id: u64,
}

impl<H: FlowHandler> FlowTable<H> {
    pub fn new(config: FlowConfig, handler: H) -> Self {
        FlowTable {
            handler,
            config,
            stats: FlowTableStats::default(),
            flows: FxHashMap::default(),
            lru: BTreeMap::new(),
            closed: FxHashMap::default(),
            closed_queue: VecDeque::new(),
            budget: Budget {
                used: 0,
                max: config.max_ooo_bytes_total,
            },
            now: i64::MIN,
            last_sweep: i64::MIN,
            next_id: 0,
        }
    }

    /// Feeds one decoded segment (in capture order).
    pub fn process(&mut self, seg: &TcpSegment<'_>, meta: EventMeta) {
        self.advance_clock(meta.ts);
        let key = FlowKey::of(seg);
        let syn_only = seg.flags.syn() && !seg.flags.ack();

        if let Some(flow) = self.flows.get_mut(&key) {
            let dir = flow.direction_of(seg);
            if !(syn_only && flow.is_new_connection(dir, seg.seq)) {
                if flow.lru_sec != self.now {
                    self.lru.remove(&(flow.lru_sec, flow.id));
                    flow.lru_sec = self.now;
                    self.lru.insert((self.now, flow.id), key);
                }
                let end = drive(
                    flow,
                    dir,
                    seg,
                    meta,
                    &mut self.handler,
                    &mut self.stats,
                    &mut self.budget,
                );
                if let Some((reason, reset_by)) = end {
                    self.close(&key, reason, Some(meta), reset_by);
                }
                return;
            }
            self.stats.port_reuse += 1;
            self.close(&key, CloseReason::PortReuse, Some(meta), None);
        } else if self.closed.contains_key(&key) {
            if !syn_only {
                self.stats.packets_after_close += 1;
                return;
            }
            self.closed.remove(&key);
            self.stats.port_reuse += 1;
        }

        self.open(key, seg, meta);
        if let Some(flow) = self.flows.get_mut(&key) {
            let dir = flow.direction_of(seg);
            let end = drive(
                flow,
                dir,
                seg,
                meta,
                &mut self.handler,
                &mut self.stats,
                &mut self.budget,
            );
            if let Some((reason, reset_by)) = end {
                self.close(&key, reason, Some(meta), reset_by);
            }
        }
    }

    /// End of input: every live flow is finished with [`CloseReason::EndOfInput`], in the
    /// order the flows were opened.
    pub fn finish_all(&mut self) {
        let mut order: Vec<(u64, FlowKey)> = self.flows.iter().map(|(k, f)| (f.id, *k)).collect();
        order.sort_unstable();
        for (_, key) in order {
            self.close(&key, CloseReason::EndOfInput, None, None);
        }
        self.closed.clear();
        self.closed_queue.clear();
    }

    pub fn stats(&self) -> &FlowTableStats {
        &self.stats
    }

    /// Flows currently tracked.
    pub fn live_flows(&self) -> usize {
        self.flows.len()
    }

    /// Out-of-order bytes (with chunk overhead) currently held across all flows.
    pub fn ooo_bytes_held(&self) -> usize {
        self.budget.used
    }

    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }

    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    pub fn into_handler(self) -> H {
        self.handler
    }

    /// Moves the capture clock; once per new capture second, finishes idle flows and forgets
    /// old finished connections (cheap: both queues are ordered by time).
    fn advance_clock(&mut self, ts: Timestamp) {
        if ts.secs <= self.now {
            return;
        }
        self.now = ts.secs;
        if self.now <= self.last_sweep {
            return;
        }
        self.last_sweep = self.now;
        let timeout = i64::try_from(self.config.idle_timeout_secs).unwrap_or(i64::MAX);
        if timeout > 0 {
            // Idle for more than `timeout` whole seconds of capture time: at least `timeout`
            // seconds, at most one more.
            while let Some((&(sec, _), &key)) = self.lru.first_key_value() {
                if self.now.saturating_sub(sec) <= timeout {
                    break;
                }
                self.close(&key, CloseReason::IdleTimeout, None, None);
            }
        }
        while let Some(&(expires, key)) = self.closed_queue.front() {
            if expires > self.now {
                break;
            }
            self.closed_queue.pop_front();
            if self.closed.get(&key) == Some(&expires) {
                self.closed.remove(&key);
            }
        }
    }

    fn open(&mut self, key: FlowKey, seg: &TcpSegment<'_>, meta: EventMeta) {
        let cap = self.config.max_flows.max(1);
        while self.flows.len() >= cap {
            let Some((_, &victim)) = self.lru.first_key_value() else {
                break;
            };
            self.stats.evicted_flow_cap += 1;
            self.close(&victim, CloseReason::Evicted, None, None);
        }
        let (client, server, roles) = roles_of(seg);
        let info = FlowInfo {
            client,
            server,
            roles,
            start: meta.ts,
            last: meta.ts,
            first_frame: meta.frame,
            last_frame: meta.frame,
            dirs: [DirStats::default(); 2],
        };
        let state = self.handler.open(&info, meta);
        let id = self.next_id;
        self.next_id += 1;
        let per_dir = self.config.max_ooo_bytes_per_flow;
        self.flows.insert(
            key,
            Flow {
                id,
                lru_sec: self.now,
                info,
                asm: [StreamAssembler::new(per_dir), StreamAssembler::new(per_dir)],
                state,
            },
        );
        self.lru.insert((self.now, id), key);
        self.stats.flows += 1;
        self.stats.max_live_flows = self.stats.max_live_flows.max(self.flows.len() as u64);
    }

    /// Finishes a flow: remaining holes become gaps, held data and FINs are delivered, the
    /// sender of a RST gets `Reset`, then the analyzer's `close` and the memory is released.
    fn close(
        &mut self,
        key: &FlowKey,
        reason: CloseReason,
        meta: Option<EventMeta>,
        reset_by: Option<Direction>,
    ) {
        let Some(flow) = self.flows.remove(key) else {
            return;
        };
        self.lru.remove(&(flow.lru_sec, flow.id));
        let Flow {
            mut info,
            mut asm,
            mut state,
            ..
        } = flow;
        let meta = meta.unwrap_or(EventMeta {
            ts: info.last,
            frame: info.last_frame,
        });
        for dir in [Direction::ToServer, Direction::ToClient] {
            let mut sink = Sink {
                handler: &mut self.handler,
                state: &mut state,
                info: &mut info,
                dir,
                meta,
                counters: &mut self.stats,
                budget: &mut self.budget,
            };
            if let Some(a) = asm.get_mut(dir.index()) {
                a.flush(&mut sink);
            }
        }
        if let Some(dir) = reset_by {
            let mut sink = Sink {
                handler: &mut self.handler,
                state: &mut state,
                info: &mut info,
                dir,
                meta,
                counters: &mut self.stats,
                budget: &mut self.budget,
            };
            if let Some(a) = asm.get_mut(dir.index()) {
                a.reset(&mut sink);
            }
        }
        match reason {
            CloseReason::Fin => self.stats.closed_fin += 1,
            CloseReason::Reset => self.stats.closed_reset += 1,
            CloseReason::IdleTimeout => self.stats.idle_timeouts += 1,
            CloseReason::EndOfInput => self.stats.closed_end_of_input += 1,
            // Counted where they are decided.
            CloseReason::Evicted | CloseReason::PortReuse => {}
        }
        self.handler.close(state, &info, reason);
        if matches!(reason, CloseReason::Fin | CloseReason::Reset) {
            self.remember_closed(*key);
        }
    }

    fn remember_closed(&mut self, key: FlowKey) {
        let linger = match self.config.idle_timeout_secs {
            0 => TIME_WAIT_SECS,
            t => t.min(TIME_WAIT_SECS),
        };
        let expires = self
            .now
            .saturating_add(i64::try_from(linger).unwrap_or(i64::MAX));
        self.closed.insert(key, expires);
        self.closed_queue.push_back((expires, key));
        let cap = self.config.max_flows.max(1);
        while self.closed.len() > cap {
            let Some((expires, old)) = self.closed_queue.pop_front() else {
                break;
            };
            if self.closed.get(&old) == Some(&expires) {
                self.closed.remove(&old);
                self.stats.closed_tracking_evicted += 1;
            }
        }
    }
}

/// Applies one segment to a live flow. Returns how the flow ends, if this segment ends it.
fn drive<H: FlowHandler>(
    flow: &mut Flow<H::State>,
    dir: Direction,
    seg: &TcpSegment<'_>,
    meta: EventMeta,
    handler: &mut H,
    counters: &mut FlowTableStats,
    budget: &mut Budget,
) -> Option<(CloseReason, Option<Direction>)> {
    let Flow {
        info, asm, state, ..
    } = flow;
    if meta.ts > info.last {
        info.last = meta.ts;
    }
    info.last_frame = meta.frame;
    let d = dir.index();
    let flags = seg.flags;
    if let Some(s) = info.dirs.get_mut(d) {
        s.packets += 1;
        s.payload_bytes += seg.payload.len() as u64 + u64::from(seg.missing_payload);
        s.fin |= flags.fin();
        s.rst |= flags.rst();
    }
    let [to_server, to_client] = asm;
    let (mine, peer) = match dir {
        Direction::ToServer => (to_server, to_client),
        Direction::ToClient => (to_client, to_server),
    };

    let mut seq = seg.seq;
    if flags.syn() {
        match mine.syn(seg.seq) {
            SynOutcome::Anchored => {
                if let Some(s) = info.dirs.get_mut(d) {
                    s.syn = true;
                }
                if !flags.ack() && dir == Direction::ToServer {
                    info.roles = RoleSource::Syn;
                }
            }
            SynOutcome::Retransmission => {}
            // A SYN that does not belong to this sequence space carries nothing we can place.
            SynOutcome::Mismatch => {
                if let Some(s) = info.dirs.get_mut(d) {
                    s.retransmissions += 1;
                }
                return flags.rst().then_some((CloseReason::Reset, Some(dir)));
            }
        }
        // The SYN takes one sequence number (RFC 9293 §3.4).
        seq = seg.seq.wrapping_add(1);
    }

    // The peer's ACK first: causally it reports what arrived before this segment was sent,
    // so a gap it reveals belongs before this segment's bytes.
    if flags.ack() && !flags.rst() {
        let mut sink = Sink {
            handler: &mut *handler,
            state: &mut *state,
            info: &mut *info,
            dir: dir.reverse(),
            meta,
            counters: &mut *counters,
            budget: &mut *budget,
        };
        peer.peer_ack(seg.ack, &mut sink);
    }

    let mut sink = Sink {
        handler,
        state,
        info,
        dir,
        meta,
        counters,
        budget,
    };
    mine.segment(
        seq,
        seg.payload,
        seg.missing_payload,
        flags.fin(),
        &mut sink,
    );

    if flags.rst() {
        // RFC 9293 §3.10.7: a RST aborts the connection in both directions.
        return Some((CloseReason::Reset, Some(dir)));
    }
    if mine.fin_seen() && peer.fin_seen() {
        return Some((CloseReason::Fin, None));
    }
    None
}
