//! Facts that relate connections. Every finished flow of a run passes through one
//! [`Correlator`] in report order (the order one flow table closes them, whatever the thread
//! count), and with them, in capture order, the [`Evidence`] that flows still open showed
//! (a STARTTLS offer, a failed TLS attempt, a failed AUTH) at the packet that carried it. So
//! when a flow finishes, everything every other connection put on the wire before that moment
//! is known, whether or not that connection has finished, and what is decided is the same for
//! any `--threads`. It is the one place that remembers servers and clients across
//! connections; every table in it is capped and its overflow counted.
//!
//! What still comes too late for the flow it belongs to (the proof was on the wire only after
//! that flow finished, or is known only when its own connection ends: a connection to 465
//! never answered, a silent server) is decided when it shows up and reported with the run's
//! findings at the end ([`Correlator::take_late`]).
//!
//! A flow may arrive with [`FlowHints`]: observations its own analysis could not turn into a
//! finding alone (a plaintext client met by a silent server on a port that is not 465 needs
//! to know whether that server spoke implicit TLS earlier in the run; a connection that
//! never opened needs to know whether its source is scanning).
//!
//! Scans. A source that tried [`SCAN_THRESHOLD`] or more distinct server address and port
//! pairs within [`SCAN_WINDOW_SECS`] (by the start of each attempt), none of them
//! established, is scanning: its failed attempts are not mail problems and get no
//! `connection_failed`. A scan mostly hits ports that are not reported, so the analysis hands
//! those attempts on too (unreported [`FinishedFlow`]s, counted here and dropped). Since the
//! attempts that prove a scan may come after the first failure, a flow with a
//! `connection_failed` waits here until the capture clock (the close time of the flows
//! passing through) is the window past its own close; it goes earlier, without the finding,
//! once its source turns out to be scanning, and at the end of the capture at the latest.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;

use crate::findings::downgrade::StarttlsMemory;
use crate::findings::evidence::{Evidence, Fact};
use crate::findings::fallback::FallbackTracker;
use crate::findings::spraying::{SprayThresholds, SprayTracker};
use rustc_hash::FxHashMap;

use crate::analysis::FinishedFlow;
use crate::findings::{Finding, Kind, Severity};
use crate::flow::EventMeta;
use crate::report::model::{FlowClass, FlowRecord};
use crate::time::Timestamp;

/// Distinct servers (address and port) a source must try without success within the window
/// to be taken for a scanner (`--scan-threshold`; 0 turns the rule off).
pub const SCAN_THRESHOLD: usize = 10;
/// The scan window, and how long a `connection_failed` waits for its source to turn out to
/// be scanning, in seconds of capture time.
pub const SCAN_WINDOW_SECS: i64 = 60;
/// Sources watched for scans at most; beyond, a new source's findings are written at once.
const MAX_SCAN_SOURCES: usize = 65_536;
/// Flows waiting at most; beyond, the oldest goes early, with its finding.
const MAX_HELD_FLOWS: usize = 65_536;

/// Servers (address and port) remembered as speaking TLS from the first byte.
const MAX_IMPLICIT_TLS_SERVERS: usize = 65_536;
/// Flows still open with findings waiting for them (raised by their evidence) at most;
/// beyond, a finding goes with the run's findings at the end.
const MAX_PENDING_FLOWS: usize = 4_096;

/// What a flow's analysis saw but could not decide alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowHints {
    /// The client spoke plaintext SMTP (the frame of its first command) and the server never
    /// sent a byte before the connection ended: an implicit-TLS server waiting for a
    /// ClientHello behaves exactly so.
    pub silent_server: Option<EventMeta>,
    /// How (`fin` or `reset`) and when the silent server ended the connection.
    pub server_end: Option<(&'static str, EventMeta)>,
    /// The client's SYN was seen and the server never answered it with a SYN-ACK.
    pub never_opened: bool,
    /// Capture time at which the flow table finished the flow.
    pub closed: Timestamp,
}

/// Why a silent server is taken for an implicit-TLS one (`evidence.basis`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SilentServerBasis {
    /// Port 465 is implicit TLS by RFC 8314.
    Port465,
    /// The same server address and port completed or began a TLS handshake from the first
    /// byte earlier in the run.
    SeenImplicitTls,
}

impl SilentServerBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            SilentServerBasis::Port465 => "port_465",
            SilentServerBasis::SeenImplicitTls => "server_seen_implicit_tls",
        }
    }
}

/// The `tls_mode_mismatch` of a plaintext client that waited on a silent server; `server_end`
/// says how (`fin` or `reset`) and when the server ended the connection, if it did.
pub fn silent_server_mismatch(
    meta: EventMeta,
    server_port: u16,
    basis: SilentServerBasis,
    server_end: Option<(&'static str, EventMeta)>,
) -> Finding {
    let mut f = Finding::new(
        Kind::TlsModeMismatch,
        Severity::Medium,
        meta,
        format!(
            "client spoke plaintext SMTP but the server on port {server_port} never answered: it \
             likely waits for a TLS ClientHello (implicit TLS)"
        ),
    )
    .with("tls_side", "server")
    .with("server_port", server_port)
    .with("server_silent", true)
    .with("basis", basis.as_str())
    .with("confidence", "likely")
    .with("server_closed", server_end.map_or("no", |(how, _)| how));
    if let Some((_, end)) = server_end {
        f = f.with("server_close_frame", end.frame);
    }
    f
}

/// Counters of the correlator's tables, for the run's report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorrelatorStats {
    /// Servers not remembered because the table was full.
    pub implicit_tls_servers_dropped: u64,
    /// Findings of open flows written with the run's findings because too many flows had
    /// findings waiting.
    pub pending_overflow: u64,
}

/// What the scan rule counted during one capture (reported in its `flow_table`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanCounts {
    /// Sources taken for scanners (each scan once, however long it lasts).
    pub scanners: u64,
    /// Failed attempts not watched because the table of sources was full.
    pub sources_untracked: u64,
    /// Flows written before their wait was over because too many waited.
    pub holds_overflow: u64,
}

/// Cross-connection state of one run.
#[derive(Debug)]
pub struct Correlator {
    implicit_tls_servers: HashSet<(IpAddr, u16)>,
    starttls: StarttlsMemory,
    fallback: FallbackTracker,
    spray: SprayTracker,
    /// Findings raised by the evidence of flows still open, by flow id, until they finish.
    pending: FxHashMap<String, Vec<Finding>>,
    /// Findings decided after their flow was written.
    late: Vec<Finding>,
    scans: ScanWatch,
    stats: CorrelatorStats,
}

impl Default for Correlator {
    fn default() -> Self {
        Self::new(SCAN_THRESHOLD)
    }
}

impl Correlator {
    /// `scan_threshold`: distinct failed servers within the window that make a source a
    /// scanner (0: never).
    pub fn new(scan_threshold: usize) -> Self {
        Self::with_spray(scan_threshold, SprayThresholds::default())
    }

    /// [`new`](Self::new) with the thresholds of password spraying and distributed brute force.
    pub fn with_spray(scan_threshold: usize, spray: SprayThresholds) -> Self {
        Correlator {
            implicit_tls_servers: HashSet::new(),
            starttls: StarttlsMemory::default(),
            fallback: FallbackTracker::default(),
            spray: SprayTracker::new(spray),
            pending: FxHashMap::default(),
            late: Vec::new(),
            scans: ScanWatch::new(scan_threshold),
            stats: CorrelatorStats::default(),
        }
    }

    pub fn stats(&self) -> &CorrelatorStats {
        &self.stats
    }

    /// Everything a full cross-connection table turned away so far in the run: servers,
    /// client/server pairs, sources and usernames not remembered, entries dropped past a
    /// per-key cap, flows that could not wait for earlier evidence, findings of open flows
    /// written with the run's findings. The scan rule's limits are counted apart.
    pub fn untracked(&self) -> u64 {
        let starttls = self.starttls.drops();
        let fallback = self.fallback.drops();
        let spray = self.spray.drops();
        [
            starttls.servers_full,
            starttls.waiting_full,
            fallback.pairs_full,
            fallback.entries_over_cap,
            spray.keys_full,
            spray.events_over_cap,
            self.stats.implicit_tls_servers_dropped,
            self.stats.pending_overflow,
        ]
        .iter()
        .sum()
    }

    /// Cross-connection findings decided after the flow they belong to was reported (its
    /// evidence came from a connection that closed later); reported with the run's findings.
    /// Taken as soon as they are decided (the caller maps a chained capture's frame numbers
    /// with the files read so far) and in any case at the end of the run.
    pub fn take_late(&mut self) -> Vec<Finding> {
        let mut late = std::mem::take(&mut self.late);
        late.extend(self.starttls.take_late());
        late.extend(self.fallback.take_late());
        late.sort_by_key(|f| (f.ts, f.frame, f.kind));
        late
    }

    /// Evidence a flow put on the wire, in capture order among the finished flows (before
    /// the flow it comes from finishes).
    pub fn evidence(&mut self, ev: Evidence) {
        let Evidence { flow, meta, fact } = ev;
        match fact {
            Fact::StarttlsOffered => {
                self.starttls
                    .offer((flow.server.ip, flow.server.port), flow.start, &flow.id);
            }
            Fact::TlsFailed(kind) => {
                self.fallback.failure(&flow, meta.ts, kind);
            }
            Fact::AuthFailed { username, auth } => {
                for f in self.spray.failure(&flow, &username, auth) {
                    self.hold_for_flow(f);
                }
            }
        }
    }

    /// A finding of a flow that has not finished: it goes with that flow when it does.
    fn hold_for_flow(&mut self, f: Finding) {
        if let Some(list) = self.pending.get_mut(&f.flow) {
            list.push(f);
        } else if self.pending.len() < MAX_PENDING_FLOWS {
            self.pending.insert(f.flow.clone(), vec![f]);
        } else {
            self.stats.pending_overflow += 1;
            self.late.push(f);
        }
    }

    /// A finished flow (reported or not), in report order. What may be written now is
    /// appended to `ready`, in order: earlier flows whose wait is over, then this one unless
    /// it waits.
    pub fn flow(&mut self, mut f: FinishedFlow, ready: &mut Vec<FinishedFlow>) {
        self.amend_flow(&mut f);
        self.release(f, ready);
    }

    /// The first half of [`flow`](Self::flow): the flow's class and findings amended with
    /// what earlier flows show (for a caller that maps frame numbers in between).
    pub fn amend_flow(&mut self, f: &mut FinishedFlow) {
        if f.reported {
            self.amend(&mut f.record, &mut f.findings, &f.hints);
        }
    }

    /// The second half of [`flow`](Self::flow): an amended flow goes to the scan rule, which
    /// says what may be written now.
    pub fn release(&mut self, f: FinishedFlow, ready: &mut Vec<FinishedFlow>) {
        self.scans.flow(f, ready);
    }

    /// The end of a capture: every waiting flow is released with its findings, and the
    /// capture's scan counts are handed over.
    pub fn end_capture(&mut self, ready: &mut Vec<FinishedFlow>) -> ScanCounts {
        // Every flow of the capture has finished: a finding still waiting names a flow that
        // was not reported after all, and goes with the run's findings.
        let mut left: Vec<Finding> = self.pending.drain().flat_map(|(_, v)| v).collect();
        left.sort_by_key(|f| (f.ts, f.frame, f.kind));
        self.late.extend(left);
        self.scans.end_capture(ready)
    }

    /// Amends a flow's class and findings with what earlier flows show, then remembers what
    /// later flows may need from it.
    fn amend(&mut self, record: &mut FlowRecord, findings: &mut Vec<Finding>, hints: &FlowHints) {
        if let Some(meta) = hints.silent_server {
            let server = (record.server.ip, record.server.port);
            let already = findings.iter().any(|f| f.kind == Kind::TlsModeMismatch);
            if !already && self.implicit_tls_servers.contains(&server) {
                let mut f = silent_server_mismatch(
                    meta,
                    record.server.port,
                    SilentServerBasis::SeenImplicitTls,
                    hints.server_end,
                );
                f.flow.clone_from(&record.id);
                findings.push(f);
                findings.sort_by_key(|f| (f.frame, f.kind));
                record.class = FlowClass::Unknown;
            }
        }
        self.starttls.observe(record, findings);
        self.fallback.observe(record, findings);
        if let Some(raised) = self.pending.remove(&record.id) {
            findings.extend(raised);
        }
        for f in findings.iter_mut().filter(|f| f.flow.is_empty()) {
            f.flow.clone_from(&record.id);
        }
        findings.sort_by_key(|f| (f.frame, f.kind));
        if record.class == FlowClass::ImplicitTls {
            let server = (record.server.ip, record.server.port);
            if self.implicit_tls_servers.len() < MAX_IMPLICIT_TLS_SERVERS {
                self.implicit_tls_servers.insert(server);
            } else if !self.implicit_tls_servers.contains(&server) {
                self.stats.implicit_tls_servers_dropped += 1;
            }
        }
    }
}

/// One source's recent failed attempts.
#[derive(Debug, Default)]
struct Source {
    /// Distinct servers (address, port) tried and never established, each with the start of
    /// its latest attempt; none older than the window before `latest`, fewer than the
    /// threshold (reaching it ends the list).
    pairs: Vec<(IpAddr, u16, Timestamp)>,
    /// Start of the latest attempt seen.
    latest: Timestamp,
    /// While scanning: the start of the scan's latest attempt. Attempts up to a window after
    /// it belong to the same scan.
    scanning_until: Option<Timestamp>,
    /// Capture clock when the source was last seen, to forget it once idle.
    touched: Timestamp,
    /// Flows of this source waiting in the queue.
    held: usize,
}

/// A flow whose `connection_failed` waits for its source's verdict.
#[derive(Debug)]
struct Held {
    due: Timestamp,
    source: IpAddr,
    flow: FinishedFlow,
}

/// The scan rule: failed attempts per source in a sliding window, and the flows waiting.
#[derive(Debug)]
struct ScanWatch {
    threshold: usize,
    sources: FxHashMap<IpAddr, Source>,
    held: VecDeque<Held>,
    /// The capture clock: the latest close time of the flows seen.
    clock: Timestamp,
    /// Capture second of the last sweep of idle sources.
    last_prune: i64,
    counts: ScanCounts,
}

/// Before the first flow of a capture (timestamps may precede 1970).
const NO_CLOCK: Timestamp = Timestamp::new(i64::MIN, 0);

fn plus_window(t: Timestamp) -> Timestamp {
    Timestamp::new(t.secs.saturating_add(SCAN_WINDOW_SECS), t.nanos)
}

fn strip_connection_failed(f: &mut FinishedFlow) {
    f.findings.retain(|x| x.kind != Kind::ConnectionFailed);
}

impl ScanWatch {
    fn new(threshold: usize) -> Self {
        ScanWatch {
            threshold,
            // Sized for the cap at once: growing to it by doubling held the old and the new
            // table together (7 MB more at the top of a flood), while the pages of a table
            // reserved and not yet used are never touched, so a run that sees a few sources
            // does not pay for the rest.
            sources: FxHashMap::with_capacity_and_hasher(MAX_SCAN_SOURCES, Default::default()),
            held: VecDeque::new(),
            clock: NO_CLOCK,
            last_prune: i64::MIN,
            counts: ScanCounts::default(),
        }
    }

    fn flow(&mut self, mut f: FinishedFlow, ready: &mut Vec<FinishedFlow>) {
        self.clock = self.clock.max(f.hints.closed);
        self.release_due(ready);
        let hold = self.threshold > 0 && f.hints.never_opened && self.attempt(&mut f, ready);
        if hold {
            if self.held.len() >= MAX_HELD_FLOWS {
                self.counts.holds_overflow += 1;
                self.release_front(ready);
            }
            let source = f.record.client.ip;
            if let Some(s) = self.sources.get_mut(&source) {
                s.held += 1;
            }
            self.held.push_back(Held {
                due: plus_window(f.hints.closed),
                source,
                flow: f,
            });
        } else if f.reported {
            ready.push(f);
        }
    }

    /// Counts a failed attempt; returns whether its flow must wait (it has a finding and its
    /// source is not known to be scanning yet). A finding of a scanning source is removed.
    fn attempt(&mut self, f: &mut FinishedFlow, ready: &mut Vec<FinishedFlow>) -> bool {
        let has_finding = f.findings.iter().any(|x| x.kind == Kind::ConnectionFailed);
        let ip = f.record.client.ip;
        let t = f.record.start;
        let pair = (f.record.server.ip, f.record.server.port);
        let clock = self.clock;
        let threshold = self.threshold;
        if !self.sources.contains_key(&ip) && !self.make_room() {
            self.counts.sources_untracked += 1;
            return false;
        }
        let source = self.sources.entry(ip).or_default();
        source.touched = clock;
        if let Some(until) = source.scanning_until {
            if t <= plus_window(until) {
                source.scanning_until = Some(until.max(t));
                strip_connection_failed(f);
                return false;
            }
            source.scanning_until = None;
        }
        source.latest = source.latest.max(t);
        let floor = Timestamp::new(
            source.latest.secs.saturating_sub(SCAN_WINDOW_SECS),
            source.latest.nanos,
        );
        source.pairs.retain(|p| p.2 >= floor);
        if t >= floor {
            match source.pairs.iter_mut().find(|p| (p.0, p.1) == pair) {
                Some(p) => p.2 = p.2.max(t),
                None => {
                    // Most sources of a flood or a scan try once: room for one pair, not the
                    // four a first push would reserve (65,536 sources, 7 MB).
                    if source.pairs.capacity() == 0 {
                        source.pairs.reserve_exact(1);
                    }
                    source.pairs.push((pair.0, pair.1, t));
                }
            }
        }
        if source.pairs.len() < threshold {
            return has_finding;
        }
        // A scan: this attempt and every one of the source's waiting flows lose their finding.
        self.counts.scanners += 1;
        source.scanning_until = Some(source.latest);
        source.pairs = Vec::new();
        strip_connection_failed(f);
        if source.held > 0 {
            source.held = 0;
            let (mine, rest): (VecDeque<Held>, VecDeque<Held>) = std::mem::take(&mut self.held)
                .into_iter()
                .partition(|h| h.source == ip);
            self.held = rest;
            for mut h in mine {
                strip_connection_failed(&mut h.flow);
                ready.push(h.flow);
            }
        }
        false
    }

    /// Whether a new source fits, after forgetting idle ones (at most once per capture second:
    /// a full table of busy sources is not rescanned on every attempt).
    fn make_room(&mut self) -> bool {
        if self.sources.len() < MAX_SCAN_SOURCES {
            return true;
        }
        if self.clock.secs == self.last_prune {
            return false;
        }
        self.last_prune = self.clock.secs;
        let clock = self.clock;
        // A source seen within the window may still be mid-scan; one with waiting flows must
        // stay to have them dropped if it turns out to be scanning.
        self.sources
            .retain(|_, s| s.held > 0 || plus_window(s.touched) >= clock);
        self.sources.len() < MAX_SCAN_SOURCES
    }

    /// Flows whose wait is over, in the order they came.
    fn release_due(&mut self, ready: &mut Vec<FinishedFlow>) {
        while self.held.front().is_some_and(|h| h.due <= self.clock) {
            self.release_front(ready);
        }
    }

    fn release_front(&mut self, ready: &mut Vec<FinishedFlow>) {
        if let Some(h) = self.held.pop_front() {
            if let Some(s) = self.sources.get_mut(&h.source) {
                s.held = s.held.saturating_sub(1);
            }
            ready.push(h.flow);
        }
    }

    fn end_capture(&mut self, ready: &mut Vec<FinishedFlow>) -> ScanCounts {
        ready.extend(self.held.drain(..).map(|h| h.flow));
        // The next capture has its own clock and its own sources.
        self.sources.clear();
        self.clock = NO_CLOCK;
        self.last_prune = i64::MIN;
        std::mem::take(&mut self.counts)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::flow::{CloseReason, DirStats, RoleSource};
    use crate::report::model::{EndpointRecord, TcpRecord};

    const T0: i64 = 1_700_000_000;

    /// A connection attempt from 192.0.2.`src` to 198.51.100.7:`port` that started at
    /// `T0 + start` and was closed at `T0 + closed`; a reported one carries a
    /// `connection_failed`.
    fn attempt(src: u8, port: u16, start: i64, closed: i64, reported: bool) -> FinishedFlow {
        let ts = |s: i64| Timestamp::new(T0 + s, 0);
        let mut findings = Vec::new();
        if reported {
            let meta = EventMeta {
                ts: ts(start),
                frame: 1,
            };
            findings.push(Finding::new(
                Kind::ConnectionFailed,
                Severity::Medium,
                meta,
                "x",
            ));
        }
        FinishedFlow {
            record: FlowRecord {
                id: format!("{src}-{port}-{start}"),
                capture: String::new(),
                client: EndpointRecord {
                    ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, src)),
                    port: 40000,
                },
                server: EndpointRecord {
                    ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
                    port,
                },
                start: ts(start),
                end: ts(start),
                duration_secs: 0.0,
                class: FlowClass::Unknown,
                smtp: None,
                tls: None,
                tcp: TcpRecord {
                    roles: RoleSource::Syn,
                    roles_corrected: false,
                    close: CloseReason::Reset,
                    first_frame: 1,
                    last_frame: 2,
                    to_server: DirStats::default(),
                    to_client: DirStats::default(),
                    last_frame_capture: None,
                },
            },
            findings,
            hints: FlowHints {
                never_opened: true,
                closed: ts(closed),
                ..FlowHints::default()
            },
            reported,
        }
    }

    /// A flow that opened, only to move the clock.
    fn tick(at: i64) -> FinishedFlow {
        let mut f = attempt(99, 25, at, at, true);
        f.findings.clear();
        f.hints.never_opened = false;
        f
    }

    fn ids(ready: &[FinishedFlow]) -> Vec<(&str, usize)> {
        ready
            .iter()
            .map(|f| (f.record.id.as_str(), f.findings.len()))
            .collect()
    }

    #[test]
    fn a_lone_failure_waits_the_window_then_goes_with_its_finding() {
        let mut c = Correlator::new(SCAN_THRESHOLD);
        let mut ready = Vec::new();
        c.flow(attempt(1, 465, 0, 10, true), &mut ready);
        assert!(ready.is_empty(), "waits for a scan verdict");
        c.flow(tick(69), &mut ready);
        assert_eq!(ids(&ready), [("99-25-69", 0)]);
        ready.clear();
        c.flow(tick(70), &mut ready);
        assert_eq!(ids(&ready), [("1-465-0", 1), ("99-25-70", 0)]);
    }

    #[test]
    fn a_scan_drops_the_findings_of_its_waiting_and_later_attempts() {
        let mut c = Correlator::new(SCAN_THRESHOLD);
        let mut ready = Vec::new();
        c.flow(attempt(1, 2525, 0, 0, true), &mut ready);
        // Nine more ports within the minute, none of them reported.
        for (i, port) in (20u16..29).enumerate() {
            c.flow(
                attempt(1, port, 1 + i as i64, 1 + i as i64, false),
                &mut ready,
            );
        }
        assert_eq!(
            ids(&ready),
            [("1-2525-0", 0)],
            "released at once, no finding"
        );
        ready.clear();
        // The scan goes on: a mail port hit later gets nothing either, and goes at once.
        c.flow(attempt(1, 465, 50, 50, true), &mut ready);
        assert_eq!(ids(&ready), [("1-465-50", 0)]);
        ready.clear();
        // Another source meanwhile keeps its finding (after its wait).
        c.flow(attempt(2, 587, 51, 51, true), &mut ready);
        let counts = c.end_capture(&mut ready);
        assert_eq!(ids(&ready), [("2-587-51", 1)]);
        assert_eq!(counts.scanners, 1);
        assert_eq!(c.end_capture(&mut ready).scanners, 0, "handed over once");
    }

    #[test]
    fn retrying_one_server_or_a_slow_sweep_is_no_scan() {
        let mut c = Correlator::new(SCAN_THRESHOLD);
        let mut ready = Vec::new();
        for i in 0..20 {
            c.flow(attempt(1, 465, i, i, true), &mut ready);
        }
        // Ten ports, each more than a minute after the one before.
        for i in 0..10 {
            c.flow(
                attempt(3, 20 + i as u16, 100 + 61 * i, 100 + 61 * i, true),
                &mut ready,
            );
        }
        let counts = c.end_capture(&mut ready);
        assert_eq!(counts.scanners, 0);
        assert_eq!(ready.len(), 30);
        assert!(ready.iter().all(|f| f.findings.len() == 1));
    }

    #[test]
    fn threshold_zero_holds_nothing_back() {
        let mut c = Correlator::new(0);
        let mut ready = Vec::new();
        for port in 20..40 {
            c.flow(attempt(1, port, 0, 0, true), &mut ready);
        }
        assert_eq!(ready.len(), 20);
        assert!(ready.iter().all(|f| f.findings.len() == 1));
        assert_eq!(c.end_capture(&mut ready), ScanCounts::default());
    }

    /// A reported SMTP connection from 192.0.2.`src` to 198.51.100.7:`port`, begun at
    /// `T0 + start` and finished then; with EHLO capabilities (none listing STARTTLS).
    fn smtp_flow(id: &str, src: u8, port: u16, start: i64) -> FinishedFlow {
        let mut f = attempt(src, port, start, start + 1, true);
        f.findings.clear();
        f.hints.never_opened = false;
        f.record.id = id.to_string();
        f.record.class = FlowClass::Plaintext;
        f.record.smtp = Some(Box::new(crate::report::model::SmtpRecord {
            capabilities: vec!["SIZE 1048576".into()],
            ..Default::default()
        }));
        f
    }

    fn evidence(of: &FinishedFlow, at: i64, fact: Fact) -> Evidence {
        let r = &of.record;
        Evidence {
            flow: crate::findings::evidence::FlowRef {
                id: r.id.clone(),
                client: r.client,
                server: r.server,
                start: r.start,
                first_frame: r.tcp.first_frame,
            },
            meta: EventMeta {
                ts: Timestamp::new(T0 + at, 0),
                frame: 3,
            },
            fact,
        }
    }

    fn kinds(f: &FinishedFlow) -> Vec<Kind> {
        f.findings.iter().map(|x| x.kind).collect()
    }

    #[test]
    fn an_offer_from_a_connection_still_open_counts_for_the_one_that_finishes_first() {
        let mut c = Correlator::new(0);
        let mut ready = Vec::new();
        let open = smtp_flow("offering", 1, 587, 0);
        c.evidence(evidence(&open, 0, Fact::StarttlsOffered));
        c.flow(smtp_flow("stripped", 2, 587, 5), &mut ready);
        assert_eq!(kinds(&ready[0]), [Kind::StarttlsDowngrade]);
        assert_eq!(ready[0].findings[0].evidence["related_flow"], "offering");
        assert!(c.take_late().is_empty(), "decided with the later flow");
        // Another port of that address is another server.
        ready.clear();
        c.flow(smtp_flow("other", 2, 2525, 6), &mut ready);
        assert!(kinds(&ready[0]).is_empty());
    }

    #[test]
    fn a_failure_of_the_plaintext_connection_itself_is_no_fallback() {
        let mut c = Correlator::new(0);
        let mut ready = Vec::new();
        let mut f = smtp_flow("refused", 1, 587, 0);
        c.evidence(evidence(&f, 1, Fact::TlsFailed(Kind::StarttlsRefused)));
        f.record.smtp = Some(Box::new(crate::report::model::SmtpRecord {
            transactions: 1,
            transaction_list: vec![Default::default()],
            ..Default::default()
        }));
        c.flow(f, &mut ready);
        assert!(!kinds(&ready[0]).contains(&Kind::PlaintextFallback));
        assert!(c.take_late().is_empty());
    }

    #[test]
    fn spraying_raised_by_an_open_flow_waits_for_it_and_the_wait_is_capped() {
        let limits = SprayThresholds {
            usernames_per_client: 3,
            clients_per_username: 1000,
            window_secs: 600,
        };
        let mut c = Correlator::with_spray(0, limits);
        let mut ready = Vec::new();
        let sprayer = smtp_flow("sprayer", 1, 25, 0);
        for (i, user) in ["a", "b", "c"].into_iter().enumerate() {
            let fact = Fact::AuthFailed {
                username: user.into(),
                auth: EventMeta {
                    ts: Timestamp::new(T0 + i as i64, 0),
                    frame: 10 + i as u64,
                },
            };
            c.evidence(evidence(&sprayer, i as i64, fact));
        }
        c.flow(smtp_flow("bystander", 2, 25, 1), &mut ready);
        assert!(kinds(&ready[0]).is_empty());
        c.flow(sprayer, &mut ready);
        assert_eq!(kinds(&ready[1]), [Kind::AuthPasswordSpraying]);
        assert_eq!(ready[1].findings[0].frame, 12, "the failure that crossed");

        // More open flows with findings than the table holds: the rest go with the run's
        // findings, counted.
        let limits = SprayThresholds {
            usernames_per_client: 1,
            ..limits
        };
        let mut c = Correlator::with_spray(0, limits);
        for i in 0..=MAX_PENDING_FLOWS {
            let mut f = smtp_flow(&format!("f{i}"), 1, 25, 0);
            let b = (i % 250) as u8;
            f.record.client.ip = IpAddr::V4(Ipv4Addr::new(10, (i / 250) as u8, b, 1));
            let fact = Fact::AuthFailed {
                username: format!("u{i}"),
                auth: EventMeta {
                    ts: Timestamp::new(T0, 0),
                    frame: 1,
                },
            };
            c.evidence(evidence(&f, 0, fact));
        }
        assert_eq!(c.stats().pending_overflow, 1);
        assert_eq!(c.untracked(), 1, "the overflow is counted for the report");
        assert_eq!(c.take_late().len(), 1);
        // Flows that never finish: their findings go with the run's at the end of the capture.
        c.end_capture(&mut ready);
        assert_eq!(c.take_late().len(), MAX_PENDING_FLOWS);
    }

    #[test]
    fn unreported_attempts_are_never_written() {
        let mut c = Correlator::new(SCAN_THRESHOLD);
        let mut ready = Vec::new();
        c.flow(attempt(1, 80, 0, 0, false), &mut ready);
        c.end_capture(&mut ready);
        assert!(ready.is_empty());
    }
}
