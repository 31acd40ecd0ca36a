//! The flow table: canonical 5-tuple -> live flow, roles, lifecycle and limits.
//!
//! Invariants:
//! - `lru` or `stalled` (never both) holds exactly one entry `(lru_sec, id)` per live flow,
//!   so the first entry of each is its longest idle flow (ties broken by age); it is touched
//!   at most once per capture second per flow, which keeps the per-packet path free of tree
//!   operations; `stalled` holds the flows idle past the idle timeout that wait on an answer;
//! - `budget.used` equals the sum of the held costs of every live direction;
//! - a key is either live (`flows`) or remembered as finished (`closed`, by its
//!   [`ClosedTag`]), never both;
//! - `closed_queue` holds one entry per remembered connection in the order they were
//!   remembered (so by expiry), plus stale entries of tags forgotten or remembered again since,
//!   recognised by an expiry that no longer matches `closed` (a tag remembered twice in one
//!   capture second has two matching entries and goes with the first).
//!
//! Flows are closed in a deterministic order: idle sweeps and evictions follow `lru`,
//! `finish_all` follows creation order.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustc_hash::{FxHashMap, FxHasher};

use super::store::{FlowStore, INDEX_BYTES_PER_FLOW, Keyed};

use super::{
    CloseReason, DirStats, Direction, Endpoint, EventMeta, FlowConfig, FlowHandler, FlowInfo,
    FlowTableStats, Interest, RoleSource, StreamAssembler, StreamEvent, StreamSink, SynOutcome,
};
use crate::decode::{IcmpError, TcpSegment};
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

/// One endpoint packed into integers: comparing and hashing two words is far cheaper per
/// packet than going through `IpAddr`'s enum. IPv4 and IPv4-mapped IPv6 stay distinct.
/// The address is two 64-bit words (high first, so the order is the 128-bit one) rather than
/// a `u128`, whose 16-byte alignment would pad every key, and every remembered finished
/// connection, from 48 to 64 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PackedEndpoint {
    ip: [u64; 2],
    /// Port in the low 16 bits, bit 16 set for IPv6.
    port_family: u32,
}

impl PackedEndpoint {
    fn new(ip: IpAddr, port: u16) -> Self {
        match ip {
            IpAddr::V4(v4) => PackedEndpoint {
                ip: split(u128::from(v4.to_bits())),
                port_family: u32::from(port),
            },
            IpAddr::V6(v6) => PackedEndpoint {
                ip: split(v6.to_bits()),
                port_family: u32::from(port) | 1 << 16,
            },
        }
    }

    fn endpoint(self) -> Endpoint {
        let port = (self.port_family & 0xffff) as u16;
        let ip = if self.port_family & 1 << 16 != 0 {
            IpAddr::V6(Ipv6Addr::from_bits(join(self.ip)))
        } else {
            IpAddr::V4(Ipv4Addr::from_bits(self.ip[1] as u32))
        };
        Endpoint { ip, port }
    }
}

/// A 128-bit address as (high, low) words.
fn split(ip: u128) -> [u64; 2] {
    [(ip >> 64) as u64, ip as u64]
}

fn join(ip: [u64; 2]) -> u128 {
    u128::from(ip[0]) << 64 | u128::from(ip[1])
}

/// The canonical 5-tuple (protocol is always TCP): both endpoints, lower first, so both
/// directions of a connection map to the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    lo: PackedEndpoint,
    hi: PackedEndpoint,
}

impl Hash for FlowKey {
    /// Four words instead of the derived six: the upper halves of both addresses (zero for
    /// IPv4) are folded together, ports and families share one word.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.lo.ip[1]);
        state.write_u64(self.hi.ip[1]);
        state.write_u64(self.lo.ip[0] ^ self.hi.ip[0].rotate_left(29));
        state.write_u64(u64::from(self.lo.port_family) | u64::from(self.hi.port_family) << 32);
    }
}

impl FlowKey {
    pub fn new(a: Endpoint, b: Endpoint) -> Self {
        Self::packed(
            PackedEndpoint::new(a.ip, a.port),
            PackedEndpoint::new(b.ip, b.port),
        )
        .0
    }

    /// The key and whether `src` is its lower endpoint.
    fn packed(src: PackedEndpoint, dst: PackedEndpoint) -> (Self, bool) {
        if src <= dst {
            (FlowKey { lo: src, hi: dst }, true)
        } else {
            (FlowKey { lo: dst, hi: src }, false)
        }
    }

    /// The key of a segment and whether its sender is the key's lower endpoint.
    fn of_oriented(seg: &TcpSegment<'_>) -> (Self, bool) {
        Self::packed(
            PackedEndpoint::new(seg.src, seg.src_port),
            PackedEndpoint::new(seg.dst, seg.dst_port),
        )
    }

    pub fn of(seg: &TcpSegment<'_>) -> Self {
        Self::of_oriented(seg).0
    }

    /// The same value for both directions: use it to shard flows across workers.
    pub fn shard_hash(&self) -> u64 {
        let mut h = FxHasher::default();
        self.hash(&mut h);
        h.finish()
    }

    /// Both endpoints, lower first.
    pub fn endpoints(&self) -> (Endpoint, Endpoint) {
        (self.lo.endpoint(), self.hi.endpoint())
    }
}

/// What a finished connection is remembered by: 16 bytes in `closed` and in the queue where
/// the key itself took 48 in each, which matters when thousands of connections a minute
/// finish and each is remembered for [`TIME_WAIT_SECS`].
///
/// The tag is a 64-bit SipHash of every word of the key (not the folded words of `FlowKey`'s
/// `Hash`, which tuples chosen for it can share). A tag collision makes a new connection's
/// packets look like trailing packets of a finished one, and they would be dropped until its
/// first SYN. FxHash is an invertible multiply, so a sender could compute a 5-tuple that
/// collides with a recent connection's; SipHash with std's fixed keys
/// (`DefaultHasher::new()`) is not secret-keyed, but matching a given 64-bit output still
/// takes on the order of 2^64 tries, and accidental collisions among the at most `max_flows`
/// remembered connections are negligible (about n^2 / 2^65). Fixed keys keep runs
/// deterministic (std may change the algorithm between releases; that would only move which
/// improbable collisions exist). It is only computed on closes and on packets of no live flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ClosedTag(u64);

impl ClosedTag {
    fn of(key: &FlowKey) -> Self {
        let mut h = DefaultHasher::new();
        for end in [key.lo, key.hi] {
            h.write_u64(end.ip[0]);
            h.write_u64(end.ip[1]);
            h.write_u32(end.port_family);
        }
        ClosedTag(h.finish())
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

/// What a connection costs before it carries anything but its client's SYN: the facts that
/// a later close reports (times, frames, SYNs sent), and the ISN that ties a retransmitted
/// SYN or an ICMP error to it. A SYN flood or a scan is mostly such connections; the
/// reassembly state and the full [`FlowInfo`] are only built when the connection goes on.
#[derive(Clone, Copy, Debug)]
struct SynOnly {
    start: Timestamp,
    last: Timestamp,
    first_frame: u64,
    last_frame: u64,
    isn: u32,
    /// SYNs seen, the first included.
    syns: u32,
}

/// A connection past its first SYN: what the handler sees and both directions' reassembly.
struct Full {
    info: FlowInfo,
    asm: [StreamAssembler; 2],
}

enum Body {
    Syn(SynOnly),
    Full(Box<Full>),
}

struct Flow<S> {
    key: FlowKey,
    id: u64,
    /// Capture second of the flow's `lru` (or `stalled`) entry.
    lru_sec: i64,
    /// The client is the key's lower endpoint.
    client_is_lo: bool,
    /// The entry is in `stalled`, not `lru`.
    stalled: bool,
    state: S,
    body: Body,
}

impl<S> Keyed for Flow<S> {
    fn key(&self) -> &FlowKey {
        &self.key
    }
}

/// Bytes of a remembered live-flow entry beyond the entry itself: its `lru` entry (key,
/// slot, in B-tree nodes that may be half full) and its place in the free list.
const LRU_BYTES_PER_FLOW: usize = 2 * (16 + 4) + 16 + 4;

/// What the memory budget counts for a flow that has only sent a SYN.
fn entry_cost<S>() -> usize {
    std::mem::size_of::<Option<Flow<S>>>() + INDEX_BYTES_PER_FLOW + LRU_BYTES_PER_FLOW
}

/// What it counts on top once the flow carries more: the boxed [`Full`] and the
/// allocator's header.
const FULL_COST: usize = std::mem::size_of::<Full>() + 16;

/// True for a segment a [`SynOnly`] flow absorbs: a bare SYN, nothing else set that the
/// table acts on, no payload.
fn bare_syn(seg: &TcpSegment<'_>) -> bool {
    let f = seg.flags;
    f.syn()
        && !f.ack()
        && !f.rst()
        && !f.fin()
        && seg.payload.is_empty()
        && seg.missing_payload == 0
}

impl SynOnly {
    fn info(&self, key: &FlowKey, client_is_lo: bool) -> FlowInfo {
        let (lo, hi) = (key.lo.endpoint(), key.hi.endpoint());
        let (client, server) = if client_is_lo { (lo, hi) } else { (hi, lo) };
        let to_server = DirStats {
            packets: u64::from(self.syns),
            retransmissions: u64::from(self.syns.saturating_sub(1)),
            syn: true,
            ..DirStats::default()
        };
        FlowInfo {
            client,
            server,
            roles: RoleSource::Syn,
            start: self.start,
            last: self.last,
            first_frame: self.first_frame,
            last_frame: self.last_frame,
            dirs: [to_server, DirStats::default()],
        }
    }

    /// The reassembly state the SYNs seen so far would have built.
    fn full(&self, key: &FlowKey, client_is_lo: bool, per_dir: usize) -> Full {
        let mut to_server = StreamAssembler::new(per_dir);
        to_server.syn(self.isn);
        Full {
            info: self.info(key, client_is_lo),
            asm: [to_server, StreamAssembler::new(per_dir)],
        }
    }
}

impl<S> Flow<S> {
    fn direction(&self, src_is_lo: bool) -> Direction {
        if src_is_lo == self.client_is_lo {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }

    /// True when a SYN (without ACK) from `dir` starts a new connection on this 5-tuple.
    fn is_new_connection(&self, dir: Direction, seq: u32) -> bool {
        let full = match &self.body {
            Body::Syn(s) => return dir == Direction::ToServer && s.isn != seq,
            Body::Full(full) => full,
        };
        let asm = &full.asm[dir.index()];
        let closing = full.asm.iter().any(StreamAssembler::fin_seen);
        match (asm.isn(), asm.expected_seq()) {
            (Some(isn), _) => isn != seq,
            (None, Some(expected)) => {
                let d = seq.wrapping_add(1).wrapping_sub(expected);
                closing || d.min(d.wrapping_neg()) > REUSE_WINDOW
            }
            (None, None) => closing,
        }
    }

    /// The flow's facts as the handler sees them (built for a SYN-only flow).
    fn info(&self) -> std::borrow::Cow<'_, FlowInfo> {
        match &self.body {
            Body::Syn(s) => std::borrow::Cow::Owned(s.info(&self.key, self.client_is_lo)),
            Body::Full(full) => std::borrow::Cow::Borrowed(&full.info),
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

/// Why room is being made for a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Room {
    /// A new flow: the live-flow cap applies as well as the memory budget.
    Open,
    /// A SYN-only flow (this slot) grows into a full one: only the memory budget applies,
    /// and the flow itself is not a candidate.
    Grow(u32),
}

/// Tracks live TCP flows and drives a [`FlowHandler`] with reassembled stream events.
pub struct FlowTable<H: FlowHandler> {
    handler: H,
    config: FlowConfig,
    stats: FlowTableStats,
    flows: FlowStore<Flow<H::State>>,
    lru: BTreeMap<(i64, u64), u32>,
    /// Flows idle past the idle timeout that wait on an answer, ordered like `lru`; they are
    /// finished at the stall timeout instead.
    stalled: BTreeMap<(i64, u64), u32>,
    /// Connections finished by FIN or RST, with the capture second they are forgotten at.
    /// The tags are already uniform, so the cheap FxHash of the map only spreads them.
    closed: FxHashMap<ClosedTag, i64>,
    /// `(expires, tag)` in the order connections were remembered: a plain FIFO gives both
    /// expiry and "forget the oldest" over the cap in O(1) each, at 16 bytes an entry.
    closed_queue: VecDeque<(i64, ClosedTag)>,
    budget: Budget,
    /// Bytes the live flows hold by the memory budget's count (`FlowConfig::memcap`).
    mem_used: usize,
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
            flows: FlowStore::new(),
            lru: BTreeMap::new(),
            stalled: BTreeMap::new(),
            closed: FxHashMap::default(),
            closed_queue: VecDeque::new(),
            budget: Budget {
                used: 0,
                max: config.max_ooo_bytes_total,
            },
            mem_used: 0,
            now: i64::MIN,
            last_sweep: i64::MIN,
            next_id: 0,
        }
    }

    /// Feeds one decoded segment (in capture order).
    pub fn process(&mut self, seg: &TcpSegment<'_>, meta: EventMeta) {
        self.advance_clock(meta.ts);
        let (key, src_is_lo) = FlowKey::of_oriented(seg);
        let syn_only = seg.flags.syn() && !seg.flags.ack();

        if let Some(slot) = self.flows.find(&key) {
            if let Some(flow) = self.flows.get_mut(slot) {
                let dir = flow.direction(src_is_lo);
                if !(syn_only && flow.is_new_connection(dir, seg.seq)) {
                    if flow.lru_sec != self.now {
                        if std::mem::take(&mut flow.stalled) {
                            self.stalled.remove(&(flow.lru_sec, flow.id));
                        } else {
                            self.lru.remove(&(flow.lru_sec, flow.id));
                        }
                        flow.lru_sec = self.now;
                        self.lru.insert((self.now, flow.id), slot);
                    }
                    if let Body::Syn(s) = &mut flow.body {
                        if dir == Direction::ToServer && bare_syn(seg) && s.syns < u32::MAX {
                            // The same SYN again (a new ISN was port reuse above).
                            s.syns += 1;
                            s.last = s.last.max(meta.ts);
                            s.last_frame = meta.frame;
                            return;
                        }
                        self.grow(slot);
                    }
                    self.drive_slot(&key, slot, dir, seg, meta);
                    return;
                }
            }
            self.stats.port_reuse += 1;
            self.close(&key, CloseReason::PortReuse, Some(meta), None);
        } else if !self.closed.is_empty() {
            let tag = ClosedTag::of(&key);
            if self.closed.contains_key(&tag) {
                if !syn_only {
                    self.stats.packets_after_close += 1;
                    return;
                }
                self.closed.remove(&tag);
                self.stats.port_reuse += 1;
            }
        }

        let slot = self.open(key, src_is_lo, seg, meta);
        if let Some(slot) = slot {
            let dir = match self.flows.get(slot) {
                Some(flow) => flow.direction(src_is_lo),
                None => return,
            };
            self.drive_slot(&key, slot, dir, seg, meta);
        }
    }

    /// Applies a segment to the full flow in `slot`, and closes it if that ends it.
    fn drive_slot(
        &mut self,
        key: &FlowKey,
        slot: u32,
        dir: Direction,
        seg: &TcpSegment<'_>,
        meta: EventMeta,
    ) {
        let Some(flow) = self.flows.get_mut(slot) else {
            return;
        };
        let Body::Full(full) = &mut flow.body else {
            return;
        };
        let end = drive(
            full,
            &mut flow.state,
            dir,
            seg,
            meta,
            &mut self.handler,
            &mut self.stats,
            &mut self.budget,
        );
        if let Some((reason, reset_by)) = end {
            self.close(key, reason, Some(meta), reset_by);
        }
    }

    /// Turns the SYN-only flow in `slot` into a full one, within the memory budget.
    fn grow(&mut self, slot: u32) {
        self.make_room(FULL_COST, Room::Grow(slot));
        let per_dir = self.config.max_ooo_bytes_per_flow;
        if let Some(flow) = self.flows.get_mut(slot)
            && let Body::Syn(s) = flow.body
        {
            flow.body = Body::Full(Box::new(s.full(&flow.key, flow.client_is_lo, per_dir)));
            self.mem_used += FULL_COST;
        }
    }

    /// An ICMP destination-unreachable error. The live flow whose client's SYN it quotes (the
    /// same initial sequence number) and whose server has sent nothing takes it; any other
    /// quote (a data segment, an answered connection, a flow not seen) is only counted. The
    /// capture clock does not move: ICMP is not part of any flow.
    pub fn icmp_error(&mut self, err: &IcmpError, meta: EventMeta) {
        let (key, src_is_lo) = FlowKey::packed(
            PackedEndpoint::new(err.src, err.src_port),
            PackedEndpoint::new(err.dst, err.dst_port),
        );
        let flow = self.flows.find(&key).and_then(|s| self.flows.get_mut(s));
        let taken = match flow {
            Some(flow) => {
                let from_client = flow.direction(src_is_lo) == Direction::ToServer;
                let (unanswered, quotes_syn) = match &flow.body {
                    Body::Syn(s) => (true, s.isn == err.seq),
                    Body::Full(full) => (
                        full.info.dirs[Direction::ToClient.index()].packets == 0,
                        full.asm[Direction::ToServer.index()].isn() == Some(err.seq),
                    ),
                };
                if from_client && quotes_syn && unanswered {
                    let info = flow.info().into_owned();
                    self.handler.icmp_error(&mut flow.state, &info, err, meta);
                    true
                } else {
                    false
                }
            }
            None => false,
        };
        if taken {
            self.stats.icmp_matched += 1;
        } else {
            self.stats.icmp_unmatched += 1;
        }
    }

    /// End of input: every live flow is finished with [`CloseReason::EndOfInput`], in the
    /// order the flows were opened. The table is empty afterwards and may be fed another
    /// capture (whose clock may start earlier); counters keep adding up.
    pub fn finish_all(&mut self) {
        self.finish_all_each(|_| {});
    }

    /// [`finish_all`](Self::finish_all), calling `each` after every flow it finishes, so the
    /// caller can hand finished flows on as they come rather than hold them all.
    pub fn finish_all_each(&mut self, mut each: impl FnMut(&mut H)) {
        let mut order: Vec<(u64, u32)> = self.flows.iter().map(|(s, f)| (f.id, s)).collect();
        order.sort_unstable();
        for (_, slot) in order {
            if let Some(key) = self.flows.get(slot).map(|f| f.key) {
                self.close(&key, CloseReason::EndOfInput, None, None);
                each(&mut self.handler);
            }
        }
        self.flows.reset_if_empty();
        self.closed.clear();
        self.closed_queue.clear();
        self.now = i64::MIN;
        self.last_sweep = i64::MIN;
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

    /// Bytes the live flows hold, as the memory budget counts them.
    pub fn mem_used(&self) -> usize {
        self.mem_used
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
    ///
    /// [`process`](Self::process) calls it with every segment. A table that sees only a
    /// shard of a capture's flows is given the capture's clock here, before the segment that
    /// moves it, so its idle sweeps happen at the same packets as in one table for all flows.
    pub fn advance_clock(&mut self, ts: Timestamp) {
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
            let stall = i64::try_from(self.config.stall_timeout_secs).unwrap_or(i64::MAX);
            // Due flows of both queues close in one `(second, id)` order, the order a sharded
            // run merges its workers' closes in.
            loop {
                let due = |q: &BTreeMap<(i64, u64), u32>, limit: i64| {
                    q.first_key_value()
                        .filter(|(e, _)| self.now.saturating_sub(e.0) > limit)
                        .map(|(e, s)| (*e, *s))
                };
                let (entry, slot, from_stalled) =
                    match (due(&self.lru, timeout), due(&self.stalled, stall)) {
                        (Some(a), Some(b)) if b.0 < a.0 => (b.0, b.1, true),
                        (Some(a), _) => (a.0, a.1, false),
                        (None, Some(b)) => (b.0, b.1, true),
                        (None, None) => break,
                    };
                let Some(key) = self.flows.get(slot).map(|f| f.key) else {
                    // Cannot happen (every entry names a live slot); drop it to go on.
                    if from_stalled {
                        self.stalled.remove(&entry);
                    } else {
                        self.lru.remove(&entry);
                    }
                    continue;
                };
                if from_stalled {
                    self.stats.stall_timeouts += 1;
                } else if stall > timeout
                    && self
                        .flows
                        .get(slot)
                        .is_some_and(|f| self.handler.waiting(&f.state, &f.info()))
                {
                    self.lru.remove(&entry);
                    self.stalled.insert(entry, slot);
                    if let Some(f) = self.flows.get_mut(slot) {
                        f.stalled = true;
                    }
                    self.stats.stalled_flows += 1;
                    continue;
                }
                self.close(&key, CloseReason::IdleTimeout, None, None);
            }
        }
        while let Some(&(expires, tag)) = self.closed_queue.front() {
            if expires > self.now {
                break;
            }
            self.closed_queue.pop_front();
            if self.closed.get(&tag) == Some(&expires) {
                self.closed.remove(&tag);
            }
        }
    }

    /// The longest idle flow of all, waiting or not, other than `except`.
    fn oldest(&self, except: Option<u32>) -> Option<u32> {
        let first = |q: &BTreeMap<(i64, u64), u32>| {
            q.iter()
                .find(|&(_, &s)| Some(s) != except)
                .map(|(e, s)| (*e, *s))
        };
        match (first(&self.lru), first(&self.stalled)) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b.1 } else { a.1 }),
            (Some((_, s)), None) | (None, Some((_, s))) => Some(s),
            (None, None) => None,
        }
    }

    /// Evicts the longest idle flows until `cost` more bytes fit in the memory budget (and,
    /// for a new flow, one more fits under the live-flow cap). Each eviction is counted under
    /// the limit that made it.
    fn make_room(&mut self, cost: usize, room: Room) {
        let except = match room {
            Room::Open => None,
            Room::Grow(slot) => Some(slot),
        };
        let cap = self.config.max_flows.max(1);
        loop {
            let over_cap = room == Room::Open && self.flows.len() >= cap;
            let over_mem = self.mem_used + cost > self.config.memcap;
            if !over_cap && !over_mem {
                break;
            }
            let Some(victim) = self.oldest(except) else {
                break;
            };
            let Some(key) = self.flows.get(victim).map(|f| f.key) else {
                break;
            };
            if over_cap {
                self.stats.evicted_flow_cap += 1;
            } else {
                self.stats.evicted_memcap += 1;
            }
            self.close(&key, CloseReason::Evicted, None, None);
        }
    }

    fn open(
        &mut self,
        key: FlowKey,
        src_is_lo: bool,
        seg: &TcpSegment<'_>,
        meta: EventMeta,
    ) -> Option<u32> {
        let syn_only = bare_syn(seg);
        let cost = entry_cost::<H::State>() + if syn_only { 0 } else { FULL_COST };
        self.make_room(cost, Room::Open);
        let (client, server, roles) = roles_of(seg);
        // The first packet's sender is the client unless the roles say otherwise.
        let client_is_lo = src_is_lo == (client.ip == seg.src && client.port == seg.src_port);
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
        let body = if syn_only {
            Body::Syn(SynOnly {
                start: meta.ts,
                last: meta.ts,
                first_frame: meta.frame,
                last_frame: meta.frame,
                isn: seg.seq,
                syns: 1,
            })
        } else {
            let per_dir = self.config.max_ooo_bytes_per_flow;
            Body::Full(Box::new(Full {
                info,
                asm: [StreamAssembler::new(per_dir), StreamAssembler::new(per_dir)],
            }))
        };
        let slot = self.flows.insert(Flow {
            key,
            id,
            lru_sec: self.now,
            client_is_lo,
            stalled: false,
            state,
            body,
        });
        self.mem_used += cost;
        self.lru.insert((self.now, id), slot);
        self.stats.flows += 1;
        self.stats.max_live_flows = self.stats.max_live_flows.max(self.flows.len() as u64);
        // A bare SYN is all counted here; anything else goes through `drive`.
        (!syn_only).then_some(slot)
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
        let Some(flow) = self.flows.find(key).and_then(|s| self.flows.remove(s)) else {
            return;
        };
        if flow.stalled {
            self.stalled.remove(&(flow.lru_sec, flow.id));
        } else {
            self.lru.remove(&(flow.lru_sec, flow.id));
        }
        let Flow {
            key: _,
            id: _,
            lru_sec: _,
            client_is_lo,
            stalled: _,
            mut state,
            body,
        } = flow;
        let info = match body {
            Body::Syn(s) => {
                self.mem_used = self.mem_used.saturating_sub(entry_cost::<H::State>());
                s.info(key, client_is_lo)
            }
            Body::Full(full) => {
                self.mem_used = self
                    .mem_used
                    .saturating_sub(entry_cost::<H::State>() + FULL_COST);
                let Full {
                    mut info, mut asm, ..
                } = *full;
                self.flush(&mut state, &mut info, &mut asm, meta, reset_by);
                info
            }
        };
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

    /// Delivers what a closing flow still holds, and the `Reset` of the sender of a RST.
    fn flush(
        &mut self,
        state: &mut H::State,
        info: &mut FlowInfo,
        asm: &mut [StreamAssembler; 2],
        meta: Option<EventMeta>,
        reset_by: Option<Direction>,
    ) {
        let meta = meta.unwrap_or(EventMeta {
            ts: info.last,
            frame: info.last_frame,
        });
        for dir in [Direction::ToServer, Direction::ToClient] {
            let mut sink = Sink {
                handler: &mut self.handler,
                state: &mut *state,
                info: &mut *info,
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
                state,
                info,
                dir,
                meta,
                counters: &mut self.stats,
                budget: &mut self.budget,
            };
            if let Some(a) = asm.get_mut(dir.index()) {
                a.reset(&mut sink);
            }
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
        let tag = ClosedTag::of(&key);
        self.closed.insert(tag, expires);
        self.closed_queue.push_back((expires, tag));
        let cap = self.config.max_flows.max(1);
        while self.closed.len() > cap {
            let Some((expires, old)) = self.closed_queue.pop_front() else {
                break;
            };
            // Stale entries (the tag was forgotten, or remembered again later) are dropped
            // without counting: only a connection still remembered is evicted.
            if self.closed.get(&old) == Some(&expires) {
                self.closed.remove(&old);
                self.stats.closed_tracking_evicted += 1;
            }
        }
    }
}

/// Applies one segment to a live flow. Returns how the flow ends, if this segment ends it.
#[allow(clippy::too_many_arguments)]
fn drive<H: FlowHandler>(
    full: &mut Full,
    state: &mut H::State,
    dir: Direction,
    seg: &TcpSegment<'_>,
    meta: EventMeta,
    handler: &mut H,
    counters: &mut FlowTableStats,
    budget: &mut Budget,
) -> Option<(CloseReason, Option<Direction>)> {
    let Full { info, asm } = full;
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
            // A SYN sent again for want of an answer: what a dropped port looks like.
            SynOutcome::Retransmission => {
                if let Some(s) = info.dirs.get_mut(d) {
                    s.retransmissions += 1;
                }
            }
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
    if flags.ack() && !flags.rst() && peer.awaits_ack() {
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
    if flags.ack() && !flags.rst() {
        if let (Some(acked), Some(s)) = (
            peer.acked_offset(seg.ack),
            info.dirs.get_mut(dir.reverse().index()),
        ) {
            s.acked_bytes = s.acked_bytes.max(acked);
        }
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

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::decode::TcpFlags;

    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Data(Vec<u8>),
        Gap(u64),
        Fin,
        Reset,
    }

    /// Records every call; flow states are their opening order.
    #[derive(Default)]
    struct Rec {
        opened: Vec<FlowInfo>,
        events: Vec<(usize, Direction, Ev, u64)>,
        closed: Vec<(usize, CloseReason, FlowInfo)>,
        /// Directions whose analyzer answers `Done` after its first data.
        done_after_first: bool,
        /// Flows (by opening order) the analyzer says wait on an answer.
        waiting: Vec<usize>,
    }

    impl FlowHandler for Rec {
        type State = usize;
        fn open(&mut self, info: &FlowInfo, _meta: EventMeta) -> usize {
            self.opened.push(info.clone());
            self.opened.len() - 1
        }
        fn event(
            &mut self,
            state: &mut usize,
            _info: &FlowInfo,
            dir: Direction,
            ev: StreamEvent<'_>,
            meta: EventMeta,
        ) -> Interest {
            let ev = match ev {
                StreamEvent::Data(d) => Ev::Data(d.to_vec()),
                StreamEvent::Gap(n) => Ev::Gap(n),
                StreamEvent::Fin => Ev::Fin,
                StreamEvent::Reset => Ev::Reset,
            };
            let data = matches!(ev, Ev::Data(_));
            self.events.push((*state, dir, ev, meta.frame));
            if self.done_after_first && data {
                Interest::Done
            } else {
                Interest::Bytes
            }
        }
        fn close(&mut self, state: usize, info: &FlowInfo, reason: CloseReason) {
            self.closed.push((state, reason, info.clone()));
        }
        fn waiting(&self, state: &usize, _info: &FlowInfo) -> bool {
            self.waiting.contains(state)
        }
    }

    impl Rec {
        /// Bytes of one flow's direction, with gaps shown as `<gap N>`.
        fn stream(&self, flow: usize, dir: Direction) -> Vec<Ev> {
            let mut out: Vec<Ev> = Vec::new();
            for (f, d, ev, _) in &self.events {
                if *f != flow || *d != dir {
                    continue;
                }
                match (out.last_mut(), ev) {
                    (Some(Ev::Data(prev)), Ev::Data(b)) => prev.extend_from_slice(b),
                    _ => out.push(ev.clone()),
                }
            }
            out
        }
    }

    const C: (&str, u16) = ("192.0.2.10", 50123);
    const S: (&str, u16) = ("198.51.100.7", 25);
    const SYN: u8 = TcpFlags::SYN;
    const ACK: u8 = TcpFlags::ACK;
    const FIN: u8 = TcpFlags::FIN;
    const RST: u8 = TcpFlags::RST;
    const PSH: u8 = TcpFlags::PSH;

    fn ip(s: &str) -> IpAddr {
        s.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    fn seg<'a>(
        from: (&str, u16),
        to: (&str, u16),
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &'a [u8],
    ) -> TcpSegment<'a> {
        TcpSegment {
            src: ip(from.0),
            dst: ip(to.0),
            src_port: from.1,
            dst_port: to.1,
            seq,
            ack,
            flags: TcpFlags(flags),
            payload,
            missing_payload: 0,
        }
    }

    /// Feeds segments as consecutive frames, one second of capture time apart from `t0`.
    struct Feed {
        table: FlowTable<Rec>,
        frame: u64,
        secs: i64,
    }

    impl Feed {
        fn new(config: FlowConfig) -> Self {
            Feed {
                table: FlowTable::new(config, Rec::default()),
                frame: 0,
                secs: 1_700_000_000,
            }
        }
        fn at(&mut self, secs: i64) -> &mut Self {
            self.secs = secs;
            self
        }
        fn send(&mut self, s: TcpSegment<'_>) -> &mut Self {
            self.frame += 1;
            let meta = EventMeta {
                ts: Timestamp::new(self.secs, 0),
                frame: self.frame,
            };
            self.table.process(&s, meta);
            self
        }
        fn rec(&self) -> &Rec {
            self.table.handler()
        }
    }

    const CI: u32 = 100; // client ISN
    const SI: u32 = 5000; // server ISN

    fn handshake(f: &mut Feed) {
        f.send(seg(C, S, CI, 0, SYN, b""))
            .send(seg(S, C, SI, CI + 1, SYN | ACK, b""))
            .send(seg(C, S, CI + 1, SI + 1, ACK, b""));
    }

    #[test]
    fn syn_retransmissions_count_and_icmp_errors_tie_to_the_unanswered_syn() {
        let mut f = Feed::new(FlowConfig::default());
        f.send(seg(C, S, CI, 0, SYN, b""))
            .send(seg(C, S, CI, 0, SYN, b""))
            .send(seg(C, S, CI, 0, SYN, b""));
        let err = |from: (&str, u16), to: (&str, u16), seq| IcmpError {
            icmp_type: 3,
            icmp_code: 13,
            reporter: ip(S.0),
            src: ip(from.0),
            dst: ip(to.0),
            src_port: from.1,
            dst_port: to.1,
            seq,
        };
        let meta = EventMeta {
            ts: Timestamp::new(f.secs, 0),
            frame: 99,
        };
        // Another sequence number, the other direction, a connection not in the table.
        f.table.icmp_error(&err(C, S, CI + 1), meta);
        f.table.icmp_error(&err(S, C, CI), meta);
        f.table.icmp_error(&err(C, ("198.51.100.8", 25), CI), meta);
        f.table.icmp_error(&err(C, S, CI), meta);
        assert_eq!(
            (f.table.stats().icmp_matched, f.table.stats().icmp_unmatched),
            (1, 3)
        );
        // Once the server answered, an error quoting the SYN no longer says it never opened.
        f.send(seg(S, C, SI, CI + 1, SYN | ACK, b""));
        f.table.icmp_error(&err(C, S, CI), meta);
        assert_eq!(f.table.stats().icmp_unmatched, 4);
        f.table.finish_all();
        let (_, _, info) = &f.rec().closed[0];
        assert_eq!(info.dirs[0].retransmissions, 2);
        assert_eq!(info.dirs[0].packets, 3);
    }

    #[test]
    fn full_connection_delivers_both_directions_and_closes_on_fins() {
        let mut f = Feed::new(FlowConfig::default());
        handshake(&mut f);
        f.send(seg(S, C, SI + 1, CI + 1, ACK | PSH, b"220 hi\r\n"))
            .send(seg(C, S, CI + 1, SI + 9, ACK | PSH, b"QUIT\r\n"))
            .send(seg(S, C, SI + 9, CI + 7, ACK | PSH | FIN, b"221 bye\r\n"))
            .send(seg(C, S, CI + 7, SI + 19, ACK | FIN, b""));
        let r = f.rec();
        assert_eq!(r.opened.len(), 1);
        assert_eq!(r.opened[0].roles, RoleSource::Syn);
        assert_eq!(r.opened[0].client.port, 50123);
        assert_eq!(
            r.stream(0, Direction::ToServer),
            vec![Ev::Data(b"QUIT\r\n".to_vec()), Ev::Fin]
        );
        assert_eq!(
            r.stream(0, Direction::ToClient),
            vec![Ev::Data(b"220 hi\r\n221 bye\r\n".to_vec()), Ev::Fin]
        );
        assert_eq!(r.closed.len(), 1);
        let (_, reason, info) = &r.closed[0];
        assert_eq!(*reason, CloseReason::Fin);
        assert_eq!((info.first_frame, info.last_frame), (1, 7));
        assert!(info.dirs[0].syn && info.dirs[1].syn && info.dirs[0].fin);
        assert_eq!(info.dirs[1].delivered_bytes, 17);
        assert_eq!(f.table.stats().closed_fin, 1);
        assert_eq!(f.table.live_flows(), 0);

        // The last ACK arrives after the close: remembered, not a new flow.
        f.send(seg(S, C, SI + 18, CI + 8, ACK, b""));
        assert_eq!(f.rec().opened.len(), 1);
        assert_eq!(f.table.stats().packets_after_close, 1);
    }

    #[test]
    fn roles_from_syn_ack_port_and_first_packet() {
        let mut f = Feed::new(FlowConfig::default());
        f.send(seg(S, C, SI, CI + 1, SYN | ACK, b""));
        // Mail port wins over "lower port" (2525 vs 443 both sides known).
        f.send(seg(("10.0.0.1", 443), ("10.0.0.2", 2525), 1, 1, ACK, b"x"));
        f.send(seg(("10.0.0.3", 40000), ("10.0.0.4", 110), 1, 1, ACK, b"x"));
        f.send(seg(
            ("10.0.0.5", 40000),
            ("10.0.0.6", 40001),
            1,
            1,
            ACK,
            b"x",
        ));
        let o = &f.rec().opened;
        assert_eq!((o[0].roles, o[0].client.port), (RoleSource::SynAck, 50123));
        assert_eq!((o[1].roles, o[1].server.port), (RoleSource::Port, 2525));
        assert_eq!((o[2].roles, o[2].server.port), (RoleSource::Port, 110));
        assert_eq!(
            (o[3].roles, o[3].client.port),
            (RoleSource::FirstPacket, 40000)
        );
        assert!(RoleSource::SynAck.from_handshake());
    }

    #[test]
    fn ipv6_both_directions_share_one_flow() {
        let c = ("2001:db8::10", 50000);
        let s = ("2001:db8::25", 587);
        let mut f = Feed::new(FlowConfig::default());
        f.send(seg(s, c, 9, 1, ACK, b"220 v6\r\n"))
            .send(seg(c, s, 1, 17, ACK, b"EHLO x\r\n"));
        let r = f.rec();
        assert_eq!(r.opened.len(), 1);
        assert_eq!(r.opened[0].server.port, 587);
        assert_eq!(r.opened[0].roles, RoleSource::Port);
        assert_eq!(
            r.stream(0, Direction::ToClient),
            vec![Ev::Data(b"220 v6\r\n".to_vec())]
        );
        assert_eq!(
            r.stream(0, Direction::ToServer),
            vec![Ev::Data(b"EHLO x\r\n".to_vec())]
        );
    }

    #[test]
    fn one_sided_capture_still_delivers() {
        // Only client -> server packets, out of order, with no ACK from the server.
        let mut f = Feed::new(FlowConfig::default());
        f.send(seg(C, S, CI, 0, SYN, b""))
            .send(seg(C, S, CI + 1 + 6, SI + 1, ACK, b"AUTH "))
            .send(seg(C, S, CI + 1, SI + 1, ACK, b"EHLO\r\n"))
            .send(seg(C, S, CI + 12, SI + 1, ACK, b"PLAIN\r\n"));
        f.table.finish_all();
        let r = f.rec();
        assert_eq!(
            r.stream(0, Direction::ToServer),
            vec![Ev::Data(b"EHLO\r\nAUTH PLAIN\r\n".to_vec())]
        );
        assert_eq!(r.closed[0].1, CloseReason::EndOfInput);
        assert_eq!(f.table.stats().closed_end_of_input, 1);
    }

    #[test]
    fn rst_delivers_reset_to_its_sender_and_closes() {
        let mut f = Feed::new(FlowConfig::default());
        handshake(&mut f);
        f.send(seg(C, S, CI + 1, SI + 1, ACK, b"EH")).send(seg(
            S,
            C,
            SI + 1,
            CI + 3,
            RST | ACK,
            b"",
        ));
        let r = f.rec();
        assert_eq!(
            r.events.last(),
            Some(&(0, Direction::ToClient, Ev::Reset, 5))
        );
        assert_eq!(r.closed[0].1, CloseReason::Reset);
        assert!(r.closed[0].2.dirs[1].rst);
        assert_eq!(f.table.stats().closed_reset, 1);
        assert_eq!(f.table.live_flows(), 0);
    }

    #[test]
    fn rst_flushes_pending_data_behind_a_hole_first() {
        let mut f = Feed::new(FlowConfig::default());
        handshake(&mut f);
        f.send(seg(C, S, CI + 1 + 3, SI + 1, ACK, b"DEF")).send(seg(
            C,
            S,
            CI + 7,
            SI + 1,
            RST,
            b"",
        ));
        assert_eq!(
            f.rec().stream(0, Direction::ToServer),
            vec![Ev::Gap(3), Ev::Data(b"DEF".to_vec()), Ev::Reset]
        );
    }

    #[test]
    fn new_syn_after_close_is_port_reuse() {
        let mut f = Feed::new(FlowConfig::default());
        handshake(&mut f);
        f.send(seg(C, S, CI + 1, SI + 1, ACK | FIN, b"")).send(seg(
            S,
            C,
            SI + 1,
            CI + 2,
            ACK | FIN,
            b"",
        ));
        f.send(seg(C, S, 90_000, 0, SYN, b""))
            .send(seg(C, S, 90_001, 0, ACK, b"HELO\r\n"));
        let r = f.rec();
        assert_eq!(r.opened.len(), 2);
        assert_eq!(
            r.stream(1, Direction::ToServer),
            vec![Ev::Data(b"HELO\r\n".to_vec())]
        );
        assert_eq!(f.table.stats().port_reuse, 1);
    }

    #[test]
    fn new_syn_with_another_isn_on_a_live_flow_closes_it_as_port_reuse() {
        let mut f = Feed::new(FlowConfig::default());
        handshake(&mut f);
        f.send(seg(C, S, CI + 1, SI + 1, ACK, b"EHLO\r\n"));
        // Same SYN again: a retransmission, nothing changes.
        f.send(seg(C, S, CI, 0, SYN, b""));
        assert_eq!(f.rec().opened.len(), 1);
        f.send(seg(C, S, 777_777, 0, SYN, b""));
        let r = f.rec();
        assert_eq!(r.opened.len(), 2);
        assert_eq!(r.closed[0].1, CloseReason::PortReuse);
        assert_eq!(f.table.stats().port_reuse, 1);
        assert_eq!(f.table.live_flows(), 1);
    }

    #[test]
    fn idle_flows_time_out_in_capture_time() {
        let config = FlowConfig {
            idle_timeout_secs: 60,
            ..FlowConfig::default()
        };
        let mut f = Feed::new(config);
        let t0 = f.secs;
        f.send(seg(C, S, 1, 1, ACK, b"a"));
        f.at(t0 + 30)
            .send(seg(("10.9.9.9", 40000), ("10.9.9.8", 25), 1, 1, ACK, b"b"));
        f.at(t0 + 60)
            .send(seg(("10.9.9.9", 40000), ("10.9.9.8", 25), 2, 1, ACK, b"c"));
        assert!(f.rec().closed.is_empty(), "60 s idle is not more than 60 s");
        f.at(t0 + 61)
            .send(seg(("10.9.9.9", 40000), ("10.9.9.8", 25), 3, 1, ACK, b"d"));
        let r = f.rec();
        assert_eq!(r.closed.len(), 1);
        assert_eq!(r.closed[0].0, 0);
        assert_eq!(r.closed[0].1, CloseReason::IdleTimeout);
        assert_eq!(f.table.stats().idle_timeouts, 1);
        assert_eq!(f.table.live_flows(), 1);
        // A later packet of the timed-out flow starts a new flow.
        f.send(seg(C, S, 2, 1, ACK, b"e"));
        assert_eq!(f.rec().opened.len(), 3);
    }

    #[test]
    fn waiting_flows_outlive_the_idle_timeout_until_the_stall_timeout() {
        let config = FlowConfig {
            idle_timeout_secs: 60,
            stall_timeout_secs: 600,
            ..FlowConfig::default()
        };
        let mut f = Feed::new(config);
        f.table.handler_mut().waiting = vec![0];
        let t0 = f.secs;
        let other = (("10.9.9.9", 40000), ("10.9.9.8", 25));
        f.send(seg(C, S, 1, 1, ACK, b"a"));
        f.at(t0 + 50).send(seg(other.0, other.1, 1, 1, ACK, b"b"));
        f.at(t0 + 100).send(seg(other.0, other.1, 2, 1, ACK, b"c"));
        // Flow 0, idle for 100 s, waits: kept.
        assert!(f.rec().closed.is_empty());
        assert_eq!(f.table.stats().stalled_flows, 1);
        // A late packet joins the waiting flow and makes it an ordinary one again.
        f.at(t0 + 500).send(seg(C, S, 2, 1, ACK | FIN, b""));
        assert_eq!(f.rec().opened.len(), 2, "the late FIN joined flow 0");
        let r = f.rec();
        assert_eq!(r.closed.len(), 1, "flow 1 idle since t0 + 100");
        assert_eq!(r.closed[0].0, 1);
        // Idle again, it waits again, until the stall timeout.
        f.at(t0 + 561).send(seg(other.0, other.1, 9, 1, ACK, b"x"));
        assert_eq!(f.table.stats().stalled_flows, 2);
        f.at(t0 + 1101)
            .send(seg(other.0, other.1, 10, 1, ACK, b"y"));
        // Due in one sweep, they close in (second, id) order: flow 0 (t0 + 500), flow 2.
        let order: Vec<usize> = f.rec().closed.iter().map(|c| c.0).collect();
        assert_eq!(order, vec![1, 0, 2]);
        assert_eq!(f.table.stats().stall_timeouts, 1);
    }

    #[test]
    fn flow_cap_evicts_the_longest_idle_flow() {
        let config = FlowConfig {
            max_flows: 2,
            ..FlowConfig::default()
        };
        let mut f = Feed::new(config);
        let t0 = f.secs;
        let a = ("10.0.0.1", 40001);
        let b = ("10.0.0.1", 40002);
        let c = ("10.0.0.1", 40003);
        f.send(seg(a, S, 1, 1, ACK, b"a"));
        f.at(t0 + 1).send(seg(b, S, 1, 1, ACK, b"b"));
        // Flow a is touched again: b is now the longest idle.
        f.at(t0 + 2).send(seg(a, S, 2, 1, ACK, b"a"));
        f.at(t0 + 3).send(seg(c, S, 1, 1, ACK, b"c"));
        let r = f.rec();
        assert_eq!(r.closed.len(), 1);
        assert_eq!((r.closed[0].0, r.closed[0].1), (1, CloseReason::Evicted));
        assert_eq!(f.table.stats().evicted_flow_cap, 1);
        assert_eq!(f.table.stats().max_live_flows, 2);
        assert_eq!(f.table.live_flows(), 2);
    }

    #[test]
    fn a_syn_only_connection_costs_at_most_256_bytes() {
        assert!(entry_cost::<crate::analysis::FlowState>() <= 256);
    }

    #[test]
    fn memory_budget_evicts_the_longest_idle_flows_and_counts_them() {
        let entry = entry_cost::<usize>();
        // Room for three SYN-only flows, not four.
        let config = FlowConfig {
            memcap: 3 * entry + entry / 2,
            ..FlowConfig::default()
        };
        let mut f = Feed::new(config);
        let t0 = f.secs;
        let client = |n: u16| ("10.0.0.1", 40000 + n);
        for n in 0..5u16 {
            f.at(t0 + i64::from(n))
                .send(seg(client(n), S, CI, 0, SYN, b""));
            assert!(f.table.mem_used() <= config.memcap);
        }
        assert_eq!(f.table.live_flows(), 3);
        assert_eq!(f.table.stats().evicted_memcap, 2);
        assert_eq!(f.table.stats().evicted_flow_cap, 0);
        let closed: Vec<(usize, CloseReason)> =
            f.rec().closed.iter().map(|(n, r, _)| (*n, *r)).collect();
        assert_eq!(
            closed,
            [(0, CloseReason::Evicted), (1, CloseReason::Evicted)]
        );
        // A SYN-only flow reports what its SYNs said.
        let (_, _, info) = &f.rec().closed[0];
        assert_eq!((info.dirs[0].packets, info.dirs[0].syn), (1, true));
        assert_eq!(info.roles, RoleSource::Syn);

        // The newest flow is answered: it grows past the budget, and the longest idle of the
        // others goes, never the flow that grows.
        f.at(t0 + 5)
            .send(seg(S, client(4), SI, CI + 1, SYN | ACK, b""));
        assert!(f.table.mem_used() <= config.memcap);
        assert_eq!(f.table.stats().evicted_memcap, 4);
        assert_eq!(f.table.live_flows(), 1);
        assert!(f.rec().closed.iter().all(|(n, _, _)| *n != 4));
        f.send(seg(client(4), S, CI + 1, SI + 1, ACK, b"EHLO x\r\n"));
        assert_eq!(
            f.rec().stream(4, Direction::ToServer),
            [Ev::Data(b"EHLO x\r\n".to_vec())]
        );
        f.table.finish_all();
        assert_eq!(f.table.mem_used(), 0);
    }

    #[test]
    fn peer_ack_past_a_hole_declares_a_gap() {
        let mut f = Feed::new(FlowConfig::default());
        handshake(&mut f);
        // Client bytes 0..4 never captured; 4..8 held.
        f.send(seg(C, S, CI + 1 + 4, SI + 1, ACK, b"EFGH"));
        assert!(f.rec().stream(0, Direction::ToServer).is_empty());
        // The server acknowledged everything: the hole was lost in capture.
        f.send(seg(S, C, SI + 1, CI + 1 + 8, ACK, b"250 ok\r\n"));
        let r = f.rec();
        assert_eq!(
            r.stream(0, Direction::ToServer),
            vec![Ev::Gap(4), Ev::Data(b"EFGH".to_vec())]
        );
        // The gap is reported before the server's reply, with the ACK's frame.
        let order: Vec<_> = r.events.iter().map(|e| (e.1, e.3)).collect();
        assert_eq!(
            order,
            vec![
                (Direction::ToServer, 5),
                (Direction::ToServer, 5),
                (Direction::ToClient, 5)
            ]
        );
        assert_eq!(f.table.stats().gaps, 1);
    }

    #[test]
    fn snaplen_cut_payload_becomes_a_gap() {
        let mut f = Feed::new(FlowConfig::default());
        handshake(&mut f);
        let mut s = seg(C, S, CI + 1, SI + 1, ACK, b"AUTH PL");
        s.missing_payload = 9;
        f.send(s);
        f.send(seg(C, S, CI + 1 + 16, SI + 1, ACK, b"QUIT\r\n"));
        let r = f.rec();
        assert_eq!(
            r.stream(0, Direction::ToServer),
            vec![
                Ev::Data(b"AUTH PL".to_vec()),
                Ev::Gap(9),
                Ev::Data(b"QUIT\r\n".to_vec())
            ]
        );
        assert_eq!(f.table.stats().gaps, 1);
    }

    #[test]
    fn hole_never_filled_is_a_gap_at_end_of_input() {
        let mut f = Feed::new(FlowConfig::default());
        handshake(&mut f);
        f.send(seg(C, S, CI + 1, SI + 1, ACK, b"AB")).send(seg(
            C,
            S,
            CI + 1 + 4,
            SI + 1,
            ACK,
            b"EF",
        ));
        f.table.finish_all();
        assert_eq!(
            f.rec().stream(0, Direction::ToServer),
            vec![
                Ev::Data(b"AB".to_vec()),
                Ev::Gap(2),
                Ev::Data(b"EF".to_vec())
            ]
        );
        assert_eq!(f.table.ooo_bytes_held(), 0);
    }

    #[test]
    fn done_stops_buffering_for_that_direction() {
        let mut f = Feed::new(FlowConfig::default());
        f.table.handler_mut().done_after_first = true;
        handshake(&mut f);
        f.send(seg(S, C, SI + 1, CI + 1, ACK, b"\x16\x03\x01"))
            .send(seg(S, C, SI + 1 + 10, CI + 1, ACK, b"later"))
            .send(seg(S, C, SI + 1 + 3, CI + 1, ACK, b"more"));
        assert_eq!(f.table.ooo_bytes_held(), 0);
        f.send(seg(S, C, SI + 1 + 15, CI + 1, ACK | FIN, b""));
        let r = f.rec();
        assert_eq!(
            r.stream(0, Direction::ToClient),
            vec![Ev::Data(b"\x16\x03\x01".to_vec()), Ev::Fin]
        );
        f.table.finish_all();
        let info = &f.rec().closed[0].2;
        assert_eq!(info.dirs[1].delivered_bytes, 3);
        assert_eq!(info.dirs[1].skipped_bytes, 12);
    }

    #[test]
    fn total_ooo_cap_is_shared_across_flows() {
        let config = FlowConfig {
            max_ooo_bytes_total: 2 * (4 + crate::flow::CHUNK_OVERHEAD),
            ..FlowConfig::default()
        };
        let mut f = Feed::new(config);
        for port in [40001, 40002, 40003] {
            f.send(seg(("10.0.0.1", port), S, 100, 1, ACK, b"x"));
            f.send(seg(("10.0.0.1", port), S, 110, 1, ACK, b"HOLD"));
        }
        let st = f.table.stats();
        assert_eq!(st.ooo_total_cap_hits, 1);
        assert_eq!(st.ooo_bytes_dropped_total_cap, 9);
        assert_eq!(
            f.table.ooo_bytes_held(),
            2 * (4 + crate::flow::CHUNK_OVERHEAD)
        );
        f.table.finish_all();
        assert_eq!(f.table.ooo_bytes_held(), 0);
    }

    #[test]
    fn finish_all_closes_in_opening_order() {
        let mut f = Feed::new(FlowConfig::default());
        for port in [40005, 40001, 40009, 40003] {
            f.send(seg(("10.0.0.1", port), S, 1, 1, ACK, b"x"));
        }
        f.table.finish_all();
        let order: Vec<usize> = f.rec().closed.iter().map(|c| c.0).collect();
        assert_eq!(order, vec![0, 1, 2, 3]);
    }

    #[test]
    fn table_is_reusable_after_finish_all_with_an_earlier_clock() {
        let config = FlowConfig {
            idle_timeout_secs: 10,
            ..FlowConfig::default()
        };
        let mut f = Feed::new(config);
        let t0 = f.secs;
        f.at(t0 + 1000).send(seg(C, S, 1, 1, ACK, b"a"));
        f.table.finish_all();
        // Second capture, earlier clock: idle timeouts still follow its own time.
        f.at(t0).send(seg(C, S, 1, 1, ACK, b"b"));
        f.at(t0 + 11)
            .send(seg(("10.0.0.9", 40000), S, 1, 1, ACK, b"c"));
        let r = f.rec();
        assert_eq!(r.closed.len(), 2);
        assert_eq!(
            (r.closed[1].0, r.closed[1].1),
            (1, CloseReason::IdleTimeout)
        );
    }

    /// Opens and finishes one connection from `client` with FINs from both sides.
    fn fin_connection(f: &mut Feed, client: (&str, u16)) {
        f.send(seg(client, S, CI, 0, SYN, b""))
            .send(seg(S, client, SI, CI + 1, SYN | ACK, b""))
            .send(seg(client, S, CI + 1, SI + 1, ACK | FIN, b""))
            .send(seg(S, client, SI + 1, CI + 2, ACK | FIN, b""));
    }

    #[test]
    fn finished_connection_is_remembered_for_time_wait_then_forgotten() {
        let mut f = Feed::new(FlowConfig {
            idle_timeout_secs: 0,
            ..FlowConfig::default()
        });
        let t0 = f.secs;
        fin_connection(&mut f, C);
        // The last ACK, 239 s later: still the finished connection.
        f.at(t0 + 239).send(seg(C, S, CI + 2, SI + 2, ACK, b""));
        assert_eq!(f.rec().opened.len(), 1);
        assert_eq!(f.table.stats().packets_after_close, 1);
        // 240 s after the close it is forgotten: the same packet opens a new flow.
        f.at(t0 + 240).send(seg(C, S, CI + 2, SI + 2, ACK, b""));
        assert_eq!(f.rec().opened.len(), 2);
        assert_eq!(f.table.stats().packets_after_close, 1);
        assert_eq!(f.table.stats().closed_tracking_evicted, 0);
    }

    #[test]
    fn a_short_idle_timeout_shortens_the_memory_of_finished_connections() {
        let mut f = Feed::new(FlowConfig {
            idle_timeout_secs: 30,
            ..FlowConfig::default()
        });
        let t0 = f.secs;
        fin_connection(&mut f, C);
        f.at(t0 + 29).send(seg(C, S, CI + 2, SI + 2, ACK, b""));
        assert_eq!(f.rec().opened.len(), 1);
        f.at(t0 + 30).send(seg(C, S, CI + 2, SI + 2, ACK, b""));
        assert_eq!(f.rec().opened.len(), 2);
        assert_eq!(f.table.stats().packets_after_close, 1);
    }

    #[test]
    fn over_the_cap_the_oldest_finished_connection_is_forgotten_first() {
        let mut f = Feed::new(FlowConfig {
            max_flows: 2,
            ..FlowConfig::default()
        });
        let t0 = f.secs;
        let a = ("10.0.0.1", 40001);
        let b = ("10.0.0.1", 40002);
        let c = ("10.0.0.1", 40003);
        // a and b finish in the same second, c later: a is the oldest.
        fin_connection(&mut f, a);
        fin_connection(&mut f, b);
        f.at(t0 + 1);
        fin_connection(&mut f, c);
        assert_eq!(f.table.stats().closed_tracking_evicted, 1);
        assert_eq!(f.rec().opened.len(), 3);
        for late in [b, c] {
            f.send(seg(late, S, CI + 2, SI + 2, ACK, b""));
        }
        assert_eq!(f.rec().opened.len(), 3);
        assert_eq!(f.table.stats().packets_after_close, 2);
        f.send(seg(a, S, CI + 2, SI + 2, ACK, b""));
        assert_eq!(f.rec().opened.len(), 4);
        assert_eq!(f.table.stats().packets_after_close, 2);
    }

    #[test]
    fn a_reused_and_finished_again_tuple_is_evicted_once_by_its_newest_close() {
        let mut f = Feed::new(FlowConfig {
            max_flows: 2,
            ..FlowConfig::default()
        });
        let t0 = f.secs;
        let a = ("10.0.0.1", 40001);
        let b = ("10.0.0.1", 40002);
        let c = ("10.0.0.1", 40003);
        fin_connection(&mut f, a);
        f.at(t0 + 1);
        fin_connection(&mut f, b);
        // a again: the new SYN reuses the tuple, the connection finishes once more, so a's
        // first close is no longer what is remembered.
        f.at(t0 + 2);
        fin_connection(&mut f, a);
        assert_eq!(f.table.stats().port_reuse, 1);
        assert_eq!(f.table.stats().closed_tracking_evicted, 0);
        // Over the cap: b is now the oldest, not a.
        fin_connection(&mut f, c);
        assert_eq!(f.table.stats().closed_tracking_evicted, 1);
        f.send(seg(a, S, CI + 2, SI + 2, ACK, b""));
        assert_eq!(f.table.stats().packets_after_close, 1);
        assert_eq!(f.rec().opened.len(), 4);
        f.send(seg(b, S, CI + 2, SI + 2, ACK, b""));
        assert_eq!(f.rec().opened.len(), 5);
        // a expires 240 s after its second close, not its first.
        f.at(t0 + 241).send(seg(a, S, CI + 2, SI + 2, ACK, b""));
        assert_eq!(f.table.stats().packets_after_close, 2);
        f.at(t0 + 242).send(seg(a, S, CI + 2, SI + 2, ACK, b""));
        assert_eq!(f.table.stats().packets_after_close, 2);
        assert_eq!(f.rec().opened.len(), 6);
    }

    #[test]
    fn a_remembered_connection_costs_16_bytes_per_store() {
        assert_eq!(std::mem::size_of::<(ClosedTag, i64)>(), 16);
        assert_eq!(std::mem::size_of::<(i64, ClosedTag)>(), 16);
    }

    #[test]
    fn finished_connections_are_told_apart_by_every_address_bit() {
        // `FlowKey`'s `Hash` folds the upper halves of both IPv6 addresses into one word:
        // these two tuples feed it the same words, yet they are different connections.
        let one = (("::1", 40000), ("1000::2", 25));
        let two = (("0:0:600::1", 40000), ("2000::2", 25));
        let words = |k: FlowKey| {
            let mut h = FxHasher::default();
            k.hash(&mut h);
            h.finish()
        };
        let key = |(a, b): ((&str, u16), (&str, u16))| FlowKey::of(&seg(a, b, 1, 1, ACK, b""));
        assert_eq!(words(key(one)), words(key(two)));
        assert_ne!(key(one), key(two));

        let mut f = Feed::new(FlowConfig::default());
        f.send(seg(one.0, one.1, 1, 0, SYN, b""))
            .send(seg(one.1, one.0, 9, 2, SYN | ACK, b""))
            .send(seg(one.0, one.1, 2, 10, ACK | RST, b""));
        assert_eq!(f.table.stats().closed_reset, 1);
        f.send(seg(two.0, two.1, 2, 10, ACK, b"x"));
        assert_eq!(f.rec().opened.len(), 2);
        assert_eq!(f.table.stats().packets_after_close, 0);
        f.send(seg(one.0, one.1, 2, 10, ACK, b""));
        assert_eq!(f.table.stats().packets_after_close, 1);
    }

    #[test]
    fn finish_all_forgets_finished_connections() {
        let mut f = Feed::new(FlowConfig::default());
        fin_connection(&mut f, C);
        f.table.finish_all();
        f.send(seg(C, S, CI + 2, SI + 2, ACK, b""));
        assert_eq!(f.rec().opened.len(), 2);
        assert_eq!(f.table.stats().packets_after_close, 0);
    }

    #[test]
    fn flow_key_is_direction_free() {
        let a = seg(C, S, 1, 1, ACK, b"");
        let b = seg(S, C, 1, 1, ACK, b"");
        assert_eq!(FlowKey::of(&a), FlowKey::of(&b));
        assert_eq!(FlowKey::of(&a).shard_hash(), FlowKey::of(&b).shard_hash());
        let (lo, hi) = FlowKey::of(&a).endpoints();
        assert_eq!((lo.port, hi.port), (50123, 25));
        assert_eq!(lo.ip, ip(C.0));
        // IPv4 and the IPv4-mapped IPv6 address are different endpoints.
        let mapped = seg(("::ffff:192.0.2.10", 50123), S, 1, 1, ACK, b"");
        assert_ne!(FlowKey::of(&a), FlowKey::of(&mapped));
        let (lo, hi) = FlowKey::of(&mapped).endpoints();
        assert_eq!((lo.ip, hi.ip), (ip(S.0), ip("::ffff:192.0.2.10")));
    }
}
