//! TCP flow tracking and stream reassembly.
//!
//! The flow table keys connections by their canonical 5-tuple, decides who is client and
//! server (SYN first, then the port as a guess the analyzer may correct by content), and
//! reassembles each direction by sequence number, never waiting for ACKs. Analyzers receive
//! per direction `Data`, `Gap`, `Fin` and `Reset` events through [`FlowHandler`].

mod assembler;
mod store;
mod table;

pub use assembler::{CHUNK_OVERHEAD, StreamAssembler, StreamSink, SynOutcome};
pub use table::{FlowKey, FlowTable};

use std::net::IpAddr;

use crate::decode::IcmpError;
use crate::time::Timestamp;

/// One end of a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// Direction of bytes relative to the flow's current client/server roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    ToServer,
    /// Server to client.
    ToClient,
}

impl Direction {
    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// How the flow table decided which side is the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleSource {
    /// A SYN (without ACK) was seen from the client.
    Syn,
    /// Only a SYN-ACK was seen; its receiver is the client.
    SynAck,
    /// No handshake: the side on a well-known or lower port is taken as server.
    Port,
    /// No handshake and no port hint: the sender of the first packet is taken as client.
    FirstPacket,
}

impl RoleSource {
    /// True when the roles were proven by the TCP handshake, so content must not flip them.
    pub fn from_handshake(self) -> bool {
        matches!(self, RoleSource::Syn | RoleSource::SynAck)
    }
}

/// What an analyzer receives for one direction of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// Bytes that just became contiguous, in order.
    Data(&'a [u8]),
    /// Bytes that will never arrive (lost, cut by snap length, before the capture started,
    /// or dropped at a buffer limit). Parsers must resynchronise after it.
    Gap(u64),
    /// The sender closed its direction (FIN), after all its data.
    Fin,
    /// The sender reset the connection.
    Reset,
}

/// Capture time and frame number of the packet that made an event happen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventMeta {
    pub ts: Timestamp,
    /// 1-based frame number within its capture (findings cite it).
    pub frame: u64,
}

/// Per-direction TCP facts, indexed by [`Direction::index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DirStats {
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub packets: u64,
    /// Payload bytes seen on the wire, including retransmissions and bytes the snap length cut.
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub payload_bytes: u64,
    /// Bytes delivered in order to the analyzer.
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub delivered_bytes: u64,
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub gaps: u64,
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub gap_bytes: u64,
    /// Segments that started beyond the next expected byte.
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub out_of_order_segments: u64,
    /// Segments carrying bytes already delivered or held (whole or partial duplicates).
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub retransmissions: u64,
    /// Overlapping segments whose bytes differ from what was already received.
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub conflicting_overlaps: u64,
    /// Stream bytes (sequence space) past the point where the analyzer answered
    /// [`Interest::Done`]: counted, never delivered or buffered.
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub skipped_bytes: u64,
    /// The direction's SYN (or SYN-ACK) was seen. When false the capture began mid-stream:
    /// delivery starts at the first segment seen and the unseen beginning is not a `Gap`.
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub syn: bool,
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub fin: bool,
    #[serde(skip_serializing_if = "crate::report::model::detail::lean_zero")]
    pub rst: bool,
    /// How far the peer acknowledged this direction (stream offset of its highest ACK): below
    /// `delivered_bytes` at the end, part of what was sent never reached the peer.
    #[serde(skip)]
    pub acked_bytes: u64,
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// FIN seen from both sides.
    Fin,
    Reset,
    IdleTimeout,
    /// Evicted to stay under the live-flow cap.
    Evicted,
    EndOfInput,
    /// A new SYN reused the 5-tuple of a finished-looking connection.
    PortReuse,
}

/// Everything the table knows about a flow, handed to the analyzer with every call.
#[derive(Clone, Debug)]
pub struct FlowInfo {
    pub client: Endpoint,
    pub server: Endpoint,
    pub roles: RoleSource,
    pub start: Timestamp,
    pub last: Timestamp,
    pub first_frame: u64,
    pub last_frame: u64,
    /// Indexed by [`Direction::index`].
    pub dirs: [DirStats; 2],
}

/// What an analyzer still wants from one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Keep delivering bytes.
    Bytes,
    /// Stop delivering `Data`/`Gap` for this direction (the table may skip reassembly and only
    /// count); `Fin` and `Reset` are still delivered.
    Done,
}

/// The analyzer side of the flow table.
pub trait FlowHandler {
    type State;
    /// A new flow was seen.
    fn open(&mut self, info: &FlowInfo, meta: EventMeta) -> Self::State;
    /// An event on one direction of the flow.
    fn event(
        &mut self,
        state: &mut Self::State,
        info: &FlowInfo,
        dir: Direction,
        ev: StreamEvent<'_>,
        meta: EventMeta,
    ) -> Interest;
    /// An ICMP destination-unreachable error quoting the client's SYN of this flow, before
    /// the server answered (see [`FlowTable::icmp_error`]).
    fn icmp_error(
        &mut self,
        _state: &mut Self::State,
        _info: &FlowInfo,
        _err: &IcmpError,
        _meta: EventMeta,
    ) {
    }
    /// The flow is finished; the table releases its memory right after.
    fn close(&mut self, state: Self::State, info: &FlowInfo, reason: CloseReason);
    /// Asked when the flow has been idle past the idle timeout: true keeps it open up to the
    /// stall timeout, because it waits on an answer (a banner, a handshake flight) whose late
    /// arrival, or the FIN or RST of a peer that gave up, must join this flow rather than
    /// open a new one.
    fn waiting(&self, _state: &Self::State, _info: &FlowInfo) -> bool {
        false
    }
}

/// Limits of the flow table and reassembly, with the defaults documented in the README.
#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    /// Idle time (capture time) after which a flow is finished; 0 disables the timeout.
    /// Checked once per capture second, so a flow may outlive it by under a second.
    pub idle_timeout_secs: u64,
    /// Idle time after which a flow the handler calls [`FlowHandler::waiting`] is finished
    /// (only when longer than `idle_timeout_secs`).
    pub stall_timeout_secs: u64,
    /// Live flows at most; beyond it the longest-idle flow is evicted.
    pub max_flows: usize,
    /// Bytes the live flows may hold at most, counted per flow: its entry (key, times,
    /// counters, index and idle-order entries; about 200 bytes for a connection that only
    /// sent a SYN) and, once it carries more, its reassembly state and full counters (about
    /// 450 bytes more). Beyond it the longest-idle flow is evicted, as Suricata's
    /// `flow.memcap` does. Out-of-order data has its own cap (`max_ooo_bytes_total`) and the
    /// protocol state of each flow its own per-flow caps.
    pub memcap: usize,
    /// Out-of-order bytes held per direction at most. Each held chunk also counts
    /// [`CHUNK_OVERHEAD`] bytes, so floods of tiny segments stay bounded in memory.
    pub max_ooo_bytes_per_flow: usize,
    /// Out-of-order bytes held across all flows at most (counted the same way).
    pub max_ooo_bytes_total: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            // Suricata's default for established TCP flows is 300 s; Zeek's tcp_inactivity_timeout 5 min.
            idle_timeout_secs: 300,
            // A client waiting on a silent server gives up within minutes (swaks 5 min,
            // Postfix smtp_helo_timeout 300 s); an hour keeps the latest of them in one flow.
            stall_timeout_secs: 3600,
            max_flows: 262_144,
            // Suricata's built-in `flow.memcap` is 32 MiB (its shipped suricata.yaml says
            // 128mb); 64 MiB holds the 262,144 flows of the cap when they are SYN-only (a
            // flood, a scan) and about 100,000 established ones.
            memcap: 64 * 1024 * 1024,
            max_ooo_bytes_per_flow: 256 * 1024,
            max_ooo_bytes_total: 32 * 1024 * 1024,
        }
    }
}

/// Table-wide counters, reported under `captures[].flow_table`. Every limit reached shows here.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlowTableStats {
    /// Flows opened in all.
    pub flows: u64,
    /// High-water mark of live flows.
    pub max_live_flows: u64,
    pub closed_fin: u64,
    pub closed_reset: u64,
    pub idle_timeouts: u64,
    /// Flows kept open past the idle timeout because they waited on an answer (a banner, a
    /// handshake flight).
    pub stalled_flows: u64,
    /// Waiting flows finished at the stall timeout (also counted in `idle_timeouts`).
    pub stall_timeouts: u64,
    /// Flows finished early because `max_flows` was reached (longest idle first).
    pub evicted_flow_cap: u64,
    /// Flows finished early because the memory budget (`memcap`) was reached (longest idle
    /// first).
    pub evicted_memcap: u64,
    /// New SYNs on a 5-tuple whose previous connection was finishing or finished.
    pub port_reuse: u64,
    /// Hole bytes given up (declared `Gap`) because a direction's out-of-order cap was reached.
    pub ooo_bytes_dropped_flow_cap: u64,
    /// Hole bytes given up (declared `Gap`) because the table-wide out-of-order cap was reached.
    pub ooo_bytes_dropped_total_cap: u64,
    /// Times the per-direction out-of-order cap was reached.
    pub ooo_flow_cap_hits: u64,
    /// Times the table-wide out-of-order cap was reached.
    pub ooo_total_cap_hits: u64,
    pub gaps: u64,
    pub conflicting_overlaps: u64,
    /// Segments (or held chunks) whose bytes lay after the sender's FIN, ignored.
    pub data_after_fin: u64,
    /// Flows finished at end of input.
    pub closed_end_of_input: u64,
    /// Packets of a connection already finished by FIN or RST (trailing ACKs,
    /// retransmitted FINs), ignored instead of opening a new flow.
    pub packets_after_close: u64,
    /// Finished connections forgotten early to keep that memory under `max_flows` entries;
    /// a later packet of one of them opens a new flow.
    pub closed_tracking_evicted: u64,
    /// ICMP destination-unreachable errors tied to a connection attempt (they quote its SYN).
    pub icmp_matched: u64,
    /// ICMP destination-unreachable errors quoting a segment of no live, unanswered attempt.
    pub icmp_unmatched: u64,
    /// Sources taken for scanners: many distinct servers or ports tried and never
    /// established within a short time, whose attempts get no `connection_failed` (counted by
    /// the run's correlator, not the table).
    pub scanners: u64,
    /// Failed attempts that could not be watched for a scan because the correlator's table
    /// of sources was full (their findings are written without waiting).
    pub scan_sources_untracked: u64,
    /// Flows with a `connection_failed` written before their wait for a scan verdict was
    /// over, because too many were waiting.
    pub scan_holds_overflow: u64,
    /// What the run's cross-connection tables turned away while this capture was read (see
    /// `Correlator::untracked`; counted by the correlator, not the table).
    pub cross_connection_untracked: u64,
}
