//! Per-flow analysis: classify each flow by ports and first bytes, drive the SMTP and TLS
//! sessions, and turn finished flows into report records and findings.
//!
//! Each direction of a flow is in one [`Mode`]: probing its first bytes, SMTP, TLS, or opaque.
//! The first bytes prove roles (a `220` reply or a ServerHello comes from the server) and may
//! correct the flow table's guess when it had no SYN to go by. STARTTLS moves a direction from
//! SMTP to TLS in place, at the byte the SMTP session names; the SMTP summary is kept.

pub mod classify;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::cli::Config;
use crate::decode::IcmpError;
use crate::findings::correlate::{FlowHints, SilentServerBasis, silent_server_mismatch};
use crate::findings::evidence::{Evidence, Fact, FlowRef};
use crate::findings::{Finding, Kind, Severity};
use crate::flow::{
    CloseReason, DirStats, Direction, Endpoint, EventMeta, FlowHandler, FlowInfo, Interest,
    RoleSource, StreamEvent,
};
use crate::proto::smtp::{Feed, Signal, SmtpSession};
use crate::proto::tls::cert::CertMemo;
use crate::proto::tls::keylog::KeyStore;
use crate::proto::tls::{EndKind, TlsContext, TlsSession};
use crate::report::model::{FlowClass, FlowRecord, HandshakeOutcome, TcpRecord};
use crate::time::Timestamp;
use classify::{LineScan, MAX_PROBE_LINE, Opening, classify_line, find_smtp_line, probe_tls};

/// Bytes of a direction examined for an SMTP line before it is declared opaque. Tunnels
/// (HTTP CONNECT, SOCKS) put a short preamble before the SMTP dialog.
const PROBE_LIMIT: u64 = 16 * 1024;

/// What one direction of a flow is being parsed as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Probe,
    Smtp,
    Tls,
    Opaque,
}

/// How the two sides disagreed about TLS.
#[derive(Clone, Copy, Debug)]
struct Mismatch {
    tls_side: Direction,
    meta: EventMeta,
}

/// The analyzer's state of one flow: nothing but a flag until the flow delivers its first
/// event, so a connection that never gets past its SYN (a flood, a scan) costs 16 bytes here.
pub struct FlowState {
    /// Roles may still be corrected by content (as decided when the flow opened).
    roles_open: bool,
    analysis: Option<Box<Analysis>>,
}

impl FlowState {
    /// What the flow's analysis is, created on first use.
    fn analysis(&mut self, shared: &Shared) -> &mut Analysis {
        let roles_open = self.roles_open;
        self.analysis
            .get_or_insert_with(|| Box::new(Analysis::new(roles_open, Some(shared.clone()))))
    }

    /// The analysis, or that of a flow that delivered nothing (built on the stack).
    fn into_analysis(self) -> Analysis {
        match self.analysis {
            Some(a) => *a,
            None => Analysis::new(self.roles_open, None),
        }
    }
}

/// Analysis state of one flow, indexed by direction *after* role correction.
struct Analysis {
    swapped: bool,
    /// Roles may still be corrected by content (no handshake, nothing decided yet).
    roles_open: bool,
    modes: [Mode; 2],
    /// How each direction opened, once known.
    openings: [Option<Opening>; 2],
    /// Bytes seen by the probe so far per direction.
    probed: [u64; 2],
    /// Unfinished printable line held by the probe (bounded by MAX_PROBE_LINE).
    carry: [Vec<u8>; 2],
    /// A direction that has seen a gap before anything was decided cannot claim offset 0.
    gapped: [bool; 2],
    smtp: Option<Box<SmtpSession>>,
    tls: Option<Box<TlsSession>>,
    /// TLS began from the first byte (not after STARTTLS).
    implicit_tls: bool,
    /// A direction was recognised as TLS by its first bytes seen (not after STARTTLS).
    tls_from_probe: bool,
    /// The client's direction delivered bytes or a gap (in whatever mode), once roles were
    /// settled: the SMTP session then infers no command from a reply alone.
    client_present: bool,
    mismatch: Option<Mismatch>,
    done: [bool; 2],
    /// The last ICMP error quoting the client's SYN, before the server answered. Boxed: rare,
    /// and every live flow would otherwise carry its hundred bytes.
    icmp: Option<Box<(IcmpError, EventMeta)>>,
    /// The client's first SMTP command, when the client opened with one.
    first_command: Option<EventMeta>,
    /// The run's TLS secrets and the analyzer's certificate memo, for the TLS session this
    /// flow may start.
    shared: Option<Shared>,
    /// How and when the server ended its side (FIN or RST), if it did.
    server_end: Option<(ServerEnd, EventMeta)>,
    /// Evidence already handed on: a STARTTLS offer, a failed TLS attempt (once each).
    offer_sent: bool,
    failure_sent: bool,
}

/// How the server ended its direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerEnd {
    Fin,
    Reset,
}

impl ServerEnd {
    fn as_str(self) -> &'static str {
        match self {
            ServerEnd::Fin => "fin",
            ServerEnd::Reset => "reset",
        }
    }
}

impl Analysis {
    fn new(roles_open: bool, shared: Option<Shared>) -> Self {
        Analysis {
            swapped: false,
            roles_open,
            modes: [Mode::Probe; 2],
            openings: [None; 2],
            probed: [0; 2],
            carry: [Vec::new(), Vec::new()],
            gapped: [false; 2],
            smtp: None,
            tls: None,
            implicit_tls: false,
            tls_from_probe: false,
            client_present: false,
            mismatch: None,
            done: [false; 2],
            first_command: None,
            server_end: None,
            icmp: None,
            shared,
            offer_sent: false,
            failure_sent: false,
        }
    }

    fn smtp(&mut self) -> &mut SmtpSession {
        let client_present = self.client_present;
        self.smtp.get_or_insert_with(|| {
            let mut s = SmtpSession::new();
            if client_present {
                s.client_present();
            }
            Box::new(s)
        })
    }
}

/// A finished flow with its findings, ready for the sinks.
#[derive(Debug)]
pub struct FinishedFlow {
    pub record: FlowRecord,
    pub findings: Vec<Finding>,
    /// What the cross-connection stage needs to know of this flow.
    pub hints: FlowHints,
    /// False for a connection attempt to a port that is not reported, handed on only for the
    /// cross-connection stage to count (a scan mostly hits such ports). Its record is lean:
    /// no id, no capture name, no protocol records, so it costs no allocation.
    pub reported: bool,
}

/// What the analysis hands on, in the order it happened: finished flows, and evidence that
/// findings of other connections need, at the packet that carried it.
#[derive(Debug)]
// Flows are nearly everything handed on; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    Flow(FinishedFlow),
    Evidence(Evidence),
}

/// What every flow's TLS session gets from the analyzer.
#[derive(Clone)]
struct Shared {
    keys: Option<Arc<KeyStore>>,
    certs: Arc<Mutex<CertMemo>>,
}

impl Shared {
    fn tls(&self, ctx: TlsContext) -> TlsSession {
        // Framed to the end of the flow: application data is counted (never kept) whatever
        // the segmentation, and encrypted alerts at close are seen.
        TlsSession::new(TlsContext {
            keys: self.keys.clone(),
            ..ctx
        })
        .follow_to_close(true)
        .with_cert_memo(self.certs.clone())
    }
}

/// Drives the protocol sessions for every flow of one capture.
pub struct Analyzer {
    cfg: Config,
    shared: Shared,
    capture: String,
    out: Vec<Output>,
    tcp_flows: u64,
    reported_flows: u64,
}

impl Analyzer {
    pub fn new(cfg: Config, capture: String) -> Self {
        Analyzer {
            shared: Shared {
                keys: cfg.keys.clone(),
                certs: Arc::default(),
            },
            cfg,
            capture,
            out: Vec::new(),
            tcp_flows: 0,
            reported_flows: 0,
        }
    }

    /// Flows finished and evidence seen since the last call, in the order they happened.
    pub fn take_output(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Flows finished since the last call, in the order they finished, for a caller that
    /// relates no connections (the evidence is dropped).
    pub fn take_finished(&mut self) -> Vec<FinishedFlow> {
        self.take_output()
            .into_iter()
            .filter_map(|o| match o {
                Output::Flow(f) => Some(f),
                Output::Evidence(_) => None,
            })
            .collect()
    }

    pub fn tcp_flows(&self) -> u64 {
        self.tcp_flows
    }

    pub fn reported_flows(&self) -> u64 {
        self.reported_flows
    }

    fn on_data(
        &mut self,
        st: &mut Analysis,
        info: &FlowInfo,
        dir: Direction,
        data: &[u8],
        meta: EventMeta,
    ) {
        match st.modes[dir.index()] {
            Mode::Probe => self.probe(st, info, dir, data, meta),
            Mode::Smtp => feed_smtp(st, dir, data, meta),
            Mode::Tls => feed_tls(st, dir, data, meta),
            Mode::Opaque => {}
        }
    }

    /// Looks at the first bytes of a direction until they prove TLS or SMTP.
    fn probe(
        &mut self,
        st: &mut Analysis,
        info: &FlowInfo,
        dir: Direction,
        data: &[u8],
        meta: EventMeta,
    ) {
        let i = dir.index();
        let first = st.probed[i] == 0 && st.carry[i].is_empty() && !st.gapped[i];
        // TLS is only recognised from the first byte seen of a direction.
        if first || (!st.carry[i].is_empty() && st.probed[i] < 5 && !st.gapped[i]) {
            let mut head = [0u8; 8];
            let held = st.carry[i].len().min(head.len());
            head[..held].copy_from_slice(&st.carry[i][..held]);
            let take = (head.len() - held).min(data.len());
            head[held..held + take].copy_from_slice(&data[..take]);
            match probe_tls(&head[..held + take]) {
                Some(Opening::Tls { hello }) => {
                    let dir = self.decide(st, info, dir, Opening::Tls { hello }, meta);
                    let carry = std::mem::take(&mut st.carry[dir.index()]);
                    if st.tls.is_none() {
                        st.tls = st
                            .shared
                            .as_ref()
                            .map(|s| Box::new(s.tls(TlsContext::default())));
                    }
                    // Implicit TLS is proven by a handshake record (or an SSLv2 hello) as the
                    // first bytes, not by application data seen mid-stream.
                    if st.smtp.is_none() && hello.is_some() {
                        st.implicit_tls = true;
                    }
                    st.tls_from_probe = true;
                    // What the probe returned before is not the session's interest: only
                    // the data path marks a direction done.
                    let done = st.done[dir.index()];
                    if !carry.is_empty() {
                        feed_tls(st, dir, &carry, meta);
                    }
                    feed_tls(st, dir, data, meta);
                    st.done[dir.index()] = done;
                    return;
                }
                None => {
                    // Too few bytes to tell (at most a few): hold them.
                    st.carry[i].extend_from_slice(data);
                    return;
                }
                _ => {}
            }
        }
        st.probed[i] += data.len() as u64;

        // SMTP: at a line start, or at the start of a segment after binary tunnel bytes.
        let scan_owned;
        let buf: &[u8] = if st.carry[i].is_empty() {
            data
        } else {
            let mut v = std::mem::take(&mut st.carry[i]);
            v.extend_from_slice(data);
            scan_owned = v;
            &scan_owned
        };
        match find_smtp_line(buf) {
            LineScan::Found { offset, what } => {
                let dir = self.decide(st, info, dir, what, meta);
                feed_smtp(st, dir, &buf[offset..], meta);
            }
            LineScan::Pending { offset } => {
                let tail = &buf[offset..];
                let printable = tail.iter().all(|&b| b >= 0x20 || b == b'\t' || b == b'\r');
                if printable && tail.len() <= MAX_PROBE_LINE {
                    st.carry[i] = tail.to_vec();
                }
                let other_smtp = st.modes[dir.reverse().index()] == Mode::Smtp;
                if other_smtp {
                    // The peer speaks SMTP: whatever this side says belongs to that dialog
                    // (the session counts what is not SMTP).
                    st.modes[i] = Mode::Smtp;
                    st.openings[i].get_or_insert(Opening::Other);
                    let carry = std::mem::take(&mut st.carry[i]);
                    feed_smtp(st, dir, &carry, meta);
                } else if st.probed[i] > PROBE_LIMIT {
                    st.modes[i] = Mode::Opaque;
                    st.openings[i].get_or_insert(Opening::Other);
                    st.carry[i] = Vec::new();
                }
            }
        }
    }

    /// Records what a direction turned out to speak, corrects roles if the content proves the
    /// table's guess wrong, and notes a TLS/SMTP mismatch. Returns the (possibly corrected)
    /// direction of the bytes in hand.
    fn decide(
        &mut self,
        st: &mut Analysis,
        info: &FlowInfo,
        dir: Direction,
        what: Opening,
        meta: EventMeta,
    ) -> Direction {
        let mut dir = dir;
        if st.roles_open {
            st.roles_open = false;
            let from_server = dir == Direction::ToClient;
            let says_server = match what {
                Opening::SmtpReply => Some(true),
                Opening::SmtpCommand => Some(false),
                Opening::Tls { hello: Some(1) } => Some(false),
                Opening::Tls { hello: Some(2) } => Some(true),
                _ => None,
            };
            if let Some(says_server) = says_server {
                if says_server != from_server {
                    st.swapped = true;
                    dir = dir.reverse();
                    st.modes.swap(0, 1);
                    st.openings.swap(0, 1);
                    st.probed.swap(0, 1);
                    st.carry.swap(0, 1);
                    st.gapped.swap(0, 1);
                }
            }
        }
        let i = dir.index();
        st.openings[i] = Some(what);
        if dir == Direction::ToServer && what == Opening::SmtpCommand {
            st.first_command.get_or_insert(meta);
        }
        st.modes[i] = match what {
            Opening::Tls { .. } => Mode::Tls,
            Opening::SmtpReply | Opening::SmtpCommand => Mode::Smtp,
            Opening::Other => Mode::Opaque,
        };
        let other = st.openings[dir.reverse().index()];
        // Records other than a hello, in a direction whose start was not captured (no SYN),
        // prove nothing about the mode the connection began in: a capture started
        // mid-session sees a TLS alert from one side and anything from the other.
        let midstream = |st: &Analysis, d: Direction| {
            let table = if st.swapped { d.reverse() } else { d };
            !info.dirs[table.index()].syn
        };
        let proves = |o: Option<Opening>, d: Direction| match o {
            Some(Opening::Tls { hello: None }) => !midstream(st, d),
            _ => true,
        };
        if !proves(Some(what), dir) || !proves(other, dir.reverse()) {
            return dir;
        }
        let tls_here = matches!(what, Opening::Tls { .. });
        let smtp_here = matches!(what, Opening::SmtpReply | Opening::SmtpCommand);
        let tls_there = matches!(other, Some(Opening::Tls { .. }));
        let smtp_there = matches!(other, Some(Opening::SmtpReply | Opening::SmtpCommand));
        if st.mismatch.is_none() && ((tls_here && smtp_there) || (smtp_here && tls_there)) {
            let tls_side = if tls_here { dir } else { dir.reverse() };
            st.mismatch = Some(Mismatch { tls_side, meta });
        }
        dir
    }

    /// Hands on what this flow just showed that other connections' findings need (see
    /// [`crate::findings::evidence`]): a STARTTLS offer, a failed TLS attempt, failed AUTH.
    /// Only for a flow that will be reported, so that the evidence never names a flow the
    /// report lacks; what a flow shows only when it ends (a connection never opened, a
    /// silent server) goes with its record.
    fn gather_evidence(&mut self, st: &mut Analysis, info: &FlowInfo, meta: EventMeta) {
        let signals = match st.smtp.as_mut() {
            Some(s) if s.has_signals() => s.take_signals(),
            _ => Vec::new(),
        };
        let tls = st.tls.as_ref().map(|t| t.outcome());
        let mut facts: Vec<(EventMeta, Fact)> = Vec::new();
        if !st.failure_sent {
            let failed = if let Some(m) = st.mismatch {
                Some((m.meta, Kind::TlsModeMismatch))
            } else if tls == Some(HandshakeOutcome::Failed) {
                Some((meta, Kind::TlsHandshakeFailure))
            } else {
                signals.iter().find_map(|s| match s {
                    Signal::StarttlsRefused(m) => Some((*m, Kind::StarttlsRefused)),
                    _ => None,
                })
            };
            if let Some((m, kind)) = failed {
                st.failure_sent = true;
                facts.push((m, Fact::TlsFailed(kind)));
            }
        }
        for signal in signals {
            match signal {
                Signal::StarttlsOffered(m) if !st.offer_sent => {
                    st.offer_sent = true;
                    facts.push((m, Fact::StarttlsOffered));
                }
                Signal::AuthFailed {
                    username,
                    meta: auth,
                } => {
                    facts.push((meta, Fact::AuthFailed { username, auth }));
                }
                _ => {}
            }
        }
        if !st.offer_sent
            && tls == Some(HandshakeOutcome::Complete)
            && st.smtp.as_ref().is_some_and(|s| s.starttls_accepted())
        {
            st.offer_sent = true;
            facts.push((meta, Fact::StarttlsOffered));
        }
        if facts.is_empty() {
            return;
        }
        let (client, server) = if st.swapped {
            (info.server, info.client)
        } else {
            (info.client, info.server)
        };
        let reported = self.cfg.is_mail_port(server.port)
            || st.smtp.as_ref().is_some_and(|s| s.smtp_specific());
        if !reported {
            return;
        }
        let flow = FlowRef {
            id: flow_id(
                &self.capture,
                client.ip,
                client.port,
                server.ip,
                server.port,
                info.start.as_nanos(),
                info.first_frame,
            ),
            client: client.into(),
            server: server.into(),
            start: info.start,
            first_frame: info.first_frame,
        };
        for (meta, fact) in facts {
            self.out.push(Output::Evidence(Evidence {
                flow: flow.clone(),
                meta,
                fact,
            }));
        }
    }

    fn close_flow(&mut self, mut st: Analysis, info: &FlowInfo, reason: CloseReason) {
        self.tcp_flows += 1;
        let (client, server, to_server, to_client) = if st.swapped {
            (info.server, info.client, info.dirs[1], info.dirs[0])
        } else {
            (info.client, info.server, info.dirs[0], info.dirs[1])
        };
        let mail_port = self.cfg.is_mail_port(server.port);
        // On a mail port any SMTP line counts; elsewhere only what SMTP alone says.
        let smtp_spoken = st.smtp.as_ref().is_some_and(|s| {
            if mail_port {
                s.server_spoke_smtp() || s.client_spoke_smtp()
            } else {
                s.smtp_specific()
            }
        });
        // Client and server as the record will name them (the SYN proves the roles).
        let never_opened = info.roles == RoleSource::Syn && to_server.syn && !to_client.syn;
        let mut hints = FlowHints {
            never_opened,
            closed: closed_at(info, reason, self.cfg.flow.idle_timeout_secs),
            ..FlowHints::default()
        };
        if !smtp_spoken && !mail_port {
            // Only the scan rule wants these.
            if never_opened && self.cfg.scan_threshold > 0 {
                self.out.push(Output::Flow(FinishedFlow {
                    record: lean_record(info, client, server, to_server, to_client, reason),
                    findings: Vec::new(),
                    hints,
                    reported: false,
                }));
            }
            return;
        }
        self.reported_flows += 1;

        let mut silent_465 = None;
        let server_end = st.server_end.map(|(how, meta)| (how.as_str(), meta));
        if let Some(meta) = silent_server(&st, &to_client) {
            if server.port == 465 {
                silent_465 = Some(meta);
            } else {
                hints.silent_server = Some(meta);
                hints.server_end = server_end;
            }
        }

        let class = if st.mismatch.is_some() || silent_465.is_some() {
            FlowClass::Unknown
        } else if st.smtp.as_ref().is_some_and(|s| s.starttls_accepted()) {
            FlowClass::Starttls
        } else if smtp_spoken && !st.tls_from_probe {
            FlowClass::Plaintext
        } else if st.implicit_tls && st.tls.is_some() {
            // TLS from the first byte: the opening record was a handshake. A capture that
            // starts inside a TLS session shows only application data and proves nothing
            // about how the connection began.
            FlowClass::ImplicitTls
        } else {
            FlowClass::Unknown
        };

        let id = flow_id(
            &self.capture,
            client.ip,
            client.port,
            server.ip,
            server.port,
            info.start.as_nanos(),
            info.first_frame,
        );
        let reveal = self.cfg.reveal_secrets;
        let mut findings = Vec::new();
        if let Some(smtp) = st.smtp.as_ref() {
            let posture = self.cfg.posture_findings;
            findings.extend(
                smtp.findings(reveal)
                    .into_iter()
                    .filter(|f| posture || !is_posture(f.kind)),
            );
        }
        if let Some(tls) = st.tls.as_ref() {
            let from = findings.len();
            findings.extend(tls.findings());
            if let Some(silence) = tls_silence(tls, &to_server, &to_client) {
                explain_silence(&mut findings[from..], silence, info.last);
            }
        }
        if let Some(m) = st.mismatch {
            findings.push(mismatch_finding(m, server.port));
        }
        if let Some(meta) = silent_465 {
            findings.push(silent_server_mismatch(
                meta,
                server.port,
                SilentServerBasis::Port465,
                server_end,
            ));
        }
        if never_opened {
            let icmp = st.icmp.as_deref().copied();
            let failure = ConnectFailure::of(info, to_server, to_client, reason, icmp);
            findings.extend(failure.map(|f| f.finding(info, server.port)));
        }
        for f in &mut findings {
            f.flow.clone_from(&id);
        }
        findings.sort_by_key(|f| (f.frame, f.kind));

        // The reported record is the lean one with what the analysis found.
        let mut record = lean_record(info, client, server, to_server, to_client, reason);
        record.id = id;
        record.capture.clone_from(&self.capture);
        record.class = class;
        record.smtp = st
            .smtp
            .take()
            .filter(|_| smtp_spoken)
            .map(|s| Box::new(s.into_record(reveal)));
        record.tls = st.tls.take().map(|t| Box::new(t.into_record()));
        record.tcp.roles_corrected = st.swapped;
        self.out.push(Output::Flow(FinishedFlow {
            record,
            findings,
            hints,
            reported: true,
        }));
    }
}

/// Capture time at which the flow table finished a flow: an idle flow is swept the idle
/// timeout after its last packet, every other one at its last packet (or the end of input).
fn closed_at(info: &FlowInfo, reason: CloseReason, idle_timeout_secs: u64) -> Timestamp {
    match reason {
        CloseReason::IdleTimeout => Timestamp::new(
            info.last
                .secs
                .saturating_add(i64::try_from(idle_timeout_secs).unwrap_or(i64::MAX)),
            info.last.nanos,
        ),
        _ => info.last,
    }
}

/// The record of a flow that is not reported, for the cross-connection stage only.
fn lean_record(
    info: &FlowInfo,
    client: Endpoint,
    server: Endpoint,
    to_server: DirStats,
    to_client: DirStats,
    reason: CloseReason,
) -> FlowRecord {
    FlowRecord {
        id: String::new(),
        capture: String::new(),
        client: client.into(),
        server: server.into(),
        start: info.start,
        end: info.last,
        duration_secs: (info.last.as_nanos() - info.start.as_nanos()) as f64 / 1e9,
        class: FlowClass::Unknown,
        smtp: None,
        tls: None,
        tcp: TcpRecord {
            roles: info.roles,
            roles_corrected: false,
            close: reason,
            first_frame: info.first_frame,
            last_frame: info.last_frame,
            to_server,
            to_client,
            last_frame_capture: None,
        },
    }
}

/// How a client's connection attempt (its SYN seen, no SYN-ACK) failed, when it is a failure
/// worth a finding rather than a capture that simply ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FailReason {
    /// The SYN was sent at least twice and nothing came back: a firewall dropping the port.
    NoAnswer,
    /// The server (or a firewall in its name) answered with a reset: nothing listens.
    Reset,
    /// An ICMP destination-unreachable quoting the SYN.
    Icmp(IcmpError),
}

impl FailReason {
    fn as_str(self) -> &'static str {
        match self {
            FailReason::NoAnswer => "no_answer",
            FailReason::Reset => "reset",
            FailReason::Icmp(_) => "icmp_unreachable",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct ConnectFailure {
    reason: FailReason,
    /// SYNs the client sent (the first and its retransmissions).
    attempts: u64,
    /// The packet that proves it: the last SYN, the reset, or the ICMP error.
    proof: EventMeta,
}

impl ConnectFailure {
    fn of(
        info: &FlowInfo,
        to_server: DirStats,
        to_client: DirStats,
        reason: CloseReason,
        icmp: Option<(IcmpError, EventMeta)>,
    ) -> Option<Self> {
        let attempts = 1 + to_server.retransmissions;
        let last = EventMeta {
            ts: info.last,
            frame: info.last_frame,
        };
        let (reason, proof) = if let Some((err, meta)) = icmp {
            (FailReason::Icmp(err), meta)
        } else if to_client.rst && reason == CloseReason::Reset {
            // The reset closed the flow: it is the flow's last packet.
            (FailReason::Reset, last)
        } else if to_client.packets == 0 && attempts >= 2 {
            // Only the client's SYNs were seen: the last packet is the last SYN.
            (FailReason::NoAnswer, last)
        } else {
            return None;
        };
        Some(ConnectFailure {
            reason,
            attempts,
            proof,
        })
    }

    fn finding(&self, info: &FlowInfo, server_port: u16) -> Finding {
        let end = self.proof.ts.max(info.last);
        let secs = (end.as_nanos() - info.start.as_nanos()).max(0) as f64 / 1e9;
        // Microseconds, as timestamps are written.
        let secs = (secs * 1e6).round() / 1e6;
        let tries = match self.attempts {
            1 => "1 SYN".to_string(),
            n => format!("{n} SYNs over {secs:.1} s"),
        };
        let message = match self.reason {
            FailReason::NoAnswer => format!(
                "connection to port {server_port} never answered: {tries}, no reply (dropped on the way)"
            ),
            FailReason::Reset => format!(
                "connection to port {server_port} refused: {tries} answered by a reset (nothing listens)"
            ),
            FailReason::Icmp(e) => format!(
                "connection to port {server_port} rejected by ICMP{} {} from {} ({tries})",
                if e.src.is_ipv6() { "v6" } else { "" },
                icmp_meaning(&e),
                e.reporter,
            ),
        };
        let mut f = Finding::new(
            Kind::ConnectionFailed,
            Severity::Medium,
            self.proof,
            message,
        )
        .with("reason", self.reason.as_str())
        .with("server_port", server_port)
        .with("attempts", self.attempts)
        .with("duration_secs", secs);
        if let FailReason::Icmp(e) = self.reason {
            f = f
                .with("icmp_type", e.icmp_type)
                .with("icmp_code", e.icmp_code)
                .with("icmp_from", e.reporter.to_string());
        }
        f
    }
}

/// The name of an ICMP destination-unreachable code (RFC 792 and RFC 1812 for IPv4 type 3,
/// RFC 4443 for ICMPv6 type 1).
fn icmp_meaning(e: &IcmpError) -> &'static str {
    let v6 = e.src.is_ipv6();
    match (v6, e.icmp_code) {
        (false, 0) => "network unreachable",
        (false, 1) => "host unreachable",
        (false, 2) => "protocol unreachable",
        (false, 3) => "port unreachable",
        (false, 9 | 10 | 13) => "administratively prohibited",
        (true, 0) => "no route to destination",
        (true, 1) => "administratively prohibited",
        (true, 3) => "address unreachable",
        (true, 4) => "port unreachable",
        (true, 5) => "source address failed policy",
        (true, 6) => "reject route",
        _ => "destination unreachable",
    }
}

/// Findings that describe a server's or client's habits rather than an event worth an alert
/// on its own; reported with `--posture-findings`.
fn is_posture(kind: Kind) -> bool {
    matches!(kind, Kind::CleartextAuthOffered | Kind::CleartextMail)
}

fn feed_smtp(st: &mut Analysis, dir: Direction, data: &[u8], meta: EventMeta) {
    if data.is_empty() {
        return;
    }
    let feed = st.smtp().feed(dir, data, meta);
    if let Feed::Upgrade { offset } = feed {
        st.modes[dir.index()] = Mode::Tls;
        if st.tls.is_none() {
            let smtp = st.smtp.as_ref();
            let ctx = TlsContext {
                starttls: true,
                banner_host: smtp.and_then(|s| s.banner_host().map(str::to_string)),
                starttls_refused: smtp.and_then(|s| s.tls_after_refusal()),
                keys: None,
            };
            st.tls = st.shared.as_ref().map(|s| Box::new(s.tls(ctx)));
        }
        if let Some(rest) = data.get(offset..) {
            if !rest.is_empty() {
                feed_tls(st, dir, rest, meta);
            }
        }
    }
}

/// TLS bytes of a direction; with keys, what they decrypt to goes on to the SMTP session,
/// marked as inside TLS.
fn feed_tls(st: &mut Analysis, dir: Direction, data: &[u8], meta: EventMeta) {
    let Some(tls) = st.tls.as_mut() else {
        return;
    };
    if tls.feed(dir, data, meta) == Interest::Done {
        st.done[dir.index()] = true;
    }
    if !tls.has_keys() {
        return;
    }
    let plain = tls.take_plaintext(dir);
    if !plain.is_empty() {
        st.smtp().feed_inside_tls(dir, &plain, meta);
    }
}

/// What TCP shows about a TLS handshake the server never carried through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsSilence {
    /// The server acknowledged the ClientHello and never sent a byte.
    NoServerHello { client_hello: EventMeta },
    /// The server's flight was sent (and retransmitted) but the client never acknowledged
    /// all of it: large segments lost on the path (a path-MTU black hole) or a middlebox.
    FlightUnacknowledged {
        retransmissions: u64,
        sent: u64,
        acked: u64,
    },
}

fn tls_silence(
    tls: &TlsSession,
    to_server: &crate::flow::DirStats,
    to_client: &crate::flow::DirStats,
) -> Option<TlsSilence> {
    if !tls.client_hello_seen() || tls.outcome() == crate::report::model::HandshakeOutcome::Complete
    {
        return None;
    }
    let server_sent = to_client.delivered_bytes + to_client.skipped_bytes + to_client.gap_bytes;
    if to_client.payload_bytes == 0 && to_client.packets > 0 && to_server.acked_bytes > 0 {
        let client_hello = tls.client_hello_meta()?;
        return Some(TlsSilence::NoServerHello { client_hello });
    }
    // The client's ACKs never covered the flight: it did not arrive whole.
    (to_client.retransmissions > 0 && to_client.acked_bytes < server_sent).then_some(
        TlsSilence::FlightUnacknowledged {
            retransmissions: to_client.retransmissions,
            sent: server_sent,
            acked: to_client.acked_bytes,
        },
    )
}

/// Says in the handshake failure what the silence was, so the remedy points at the server
/// or the path instead of at TLS settings.
fn explain_silence(findings: &mut [Finding], silence: TlsSilence, end: crate::time::Timestamp) {
    let Some(f) = findings
        .iter_mut()
        .find(|f| f.kind == Kind::TlsHandshakeFailure)
    else {
        return;
    };
    match silence {
        TlsSilence::NoServerHello { client_hello } => {
            f.message = format!(
                "TLS handshake failed: the server acknowledged the ClientHello and never \
                 answered ({} s); {}",
                end.secs_since(client_hello.ts),
                f.message.trim_start_matches("TLS handshake failed: ")
            );
            f.evidence
                .insert("silence".into(), "no_server_hello".into());
            f.evidence
                .insert("client_hello_frame".into(), client_hello.frame.into());
            f.evidence.insert(
                "waited_secs".into(),
                serde_json::json!(end.secs_since(client_hello.ts)),
            );
        }
        TlsSilence::FlightUnacknowledged {
            retransmissions,
            sent,
            acked,
        } => {
            f.message = format!(
                "TLS handshake failed: the server's flight was retransmitted {retransmissions} \
                 time(s) and never acknowledged ({acked} of {sent} bytes); {}",
                f.message.trim_start_matches("TLS handshake failed: ")
            );
            f.evidence
                .insert("silence".into(), "server_flight_unacknowledged".into());
            f.evidence
                .insert("server_retransmissions".into(), retransmissions.into());
            f.evidence.insert("server_bytes_sent".into(), sent.into());
            f.evidence.insert("server_bytes_acked".into(), acked.into());
        }
    }
}

/// A plaintext SMTP client met by a server that never sent a byte: the frame of the client's
/// first command. The server's own packets (its SYN-ACK, ACKs, FIN or RST) must be in the
/// capture, so that a tap that lost the server's direction is not taken for silence.
fn silent_server(st: &Analysis, to_client: &crate::flow::DirStats) -> Option<EventMeta> {
    let first = st.first_command?;
    let server_seen = to_client.packets > 0 && (to_client.syn || st.server_end.is_some());
    let nothing_said = to_client.payload_bytes == 0 && to_client.gaps == 0;
    (st.mismatch.is_none() && server_seen && nothing_said).then_some(first)
}

fn mismatch_finding(m: Mismatch, server_port: u16) -> Finding {
    let (tls_side, message) = match m.tls_side {
        Direction::ToServer => (
            "client",
            format!(
                "client opened with TLS (implicit TLS) but the server on port {server_port} speaks plaintext SMTP"
            ),
        ),
        Direction::ToClient => (
            "server",
            format!(
                "client spoke plaintext SMTP but the server on port {server_port} speaks TLS from the first byte"
            ),
        ),
    };
    Finding::new(Kind::TlsModeMismatch, Severity::Medium, m.meta, message)
        .with("tls_side", tls_side)
        .with("server_port", server_port)
}

/// Key of the flow-id hash. Fixed: ids must be the same in every run, on every platform.
const FLOW_ID_KEY: (u64, u64) = (0x736d_7470_6175_6469, 0x742d_666c_6f77_2d69);

/// A flow id unique within a report and the same in every run: a hash of the capture's file
/// name (not the path as typed, so `./a.pcap`, `a.pcap` and `/tmp/a.pcap` give the same ids)
/// and the flow's key, start time and first frame, as 16 hex digits.
///
/// SipHash-1-3 with a fixed key: specified (Aumasson and Bernstein; the variant Rust's own
/// `HashMap` used), so its output does not depend on a crate version, and cheap enough to run
/// once per flow (a cryptographic hash is not needed: nobody has to be prevented from
/// finding collisions in ids of their own capture). The input is written as fixed-width
/// bytes (address family and octets, big-endian numbers), never formatted to text first.
pub(crate) fn flow_id(
    capture: &str,
    cip: IpAddr,
    cport: u16,
    sip: IpAddr,
    sport: u16,
    start_ns: i128,
    first_frame: u64,
) -> String {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(FLOW_ID_KEY.0, FLOW_ID_KEY.1);
    let name = std::path::Path::new(capture)
        .file_name()
        .map_or(capture.as_bytes(), |n| n.as_encoded_bytes());
    h.write(&(name.len() as u64).to_be_bytes());
    h.write(name);
    let mut ip = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => {
            h.write(&[4]);
            h.write(&v4.octets());
        }
        IpAddr::V6(v6) => {
            h.write(&[6]);
            h.write(&v6.octets());
        }
    };
    ip(cip);
    ip(sip);
    h.write(&cport.to_be_bytes());
    h.write(&sport.to_be_bytes());
    h.write(&start_ns.to_be_bytes());
    h.write(&first_frame.to_be_bytes());
    crate::proto::hexfmt::to_hex(&h.finish().to_be_bytes())
}

impl FlowHandler for Analyzer {
    type State = FlowState;

    fn open(&mut self, info: &FlowInfo, _meta: EventMeta) -> FlowState {
        FlowState {
            roles_open: !info.roles.from_handshake(),
            analysis: None,
        }
    }

    fn event(
        &mut self,
        st: &mut FlowState,
        info: &FlowInfo,
        dir: Direction,
        ev: StreamEvent<'_>,
        meta: EventMeta,
    ) -> Interest {
        let st = st.analysis(&self.shared);
        let table_dir = dir;
        let dir = if st.swapped { dir.reverse() } else { dir };
        let i = dir.index();
        match ev {
            StreamEvent::Data(data) => self.on_data(st, info, dir, data, meta),
            StreamEvent::Gap(len) => match st.modes[i] {
                Mode::Probe => {
                    // A first line cut by the gap (a banner cut by the snap length) is judged
                    // by what was captured of it, and handed to the SMTP session as cut.
                    let carry = std::mem::take(&mut st.carry[i]);
                    let opening = match classify_line(carry.strip_suffix(b"\r").unwrap_or(&carry)) {
                        found @ (Opening::SmtpReply | Opening::SmtpCommand) => Some(found),
                        _ => None,
                    };
                    match opening {
                        Some(what) if !st.gapped[i] => {
                            let dir = self.decide(st, info, dir, what, meta);
                            feed_smtp(st, dir, &carry, meta);
                            st.smtp().gap(dir, len, meta);
                        }
                        _ => st.gapped[i] = true,
                    }
                }
                Mode::Smtp => st.smtp().gap(dir, len, meta),
                Mode::Tls => {
                    if let Some(tls) = st.tls.as_mut() {
                        tls.gap(dir, len, meta);
                    }
                }
                Mode::Opaque => {}
            },
            StreamEvent::Fin | StreamEvent::Reset => {
                if dir == Direction::ToClient && st.server_end.is_none() {
                    let how = if ev == StreamEvent::Reset {
                        ServerEnd::Reset
                    } else {
                        ServerEnd::Fin
                    };
                    st.server_end = Some((how, meta));
                }
                if let Some(smtp) = st.smtp.as_mut() {
                    smtp.end(dir, meta);
                }
                if let Some(tls) = st.tls.as_mut() {
                    let kind = if ev == StreamEvent::Reset {
                        EndKind::Reset
                    } else {
                        EndKind::Fin
                    };
                    tls.end(dir, kind, meta);
                }
            }
        }
        // The client's side is in the capture even when it spoke TLS or junk, which the SMTP
        // session never sees; counted once the roles are settled (a swap may follow the
        // first bytes).
        if matches!(ev, StreamEvent::Data(_) | StreamEvent::Gap(_)) && !st.roles_open {
            let now = if st.swapped {
                table_dir.reverse()
            } else {
                table_dir
            };
            if now == Direction::ToServer && !st.client_present {
                st.client_present = true;
                if let Some(smtp) = st.smtp.as_mut() {
                    smtp.client_present();
                }
            }
        }
        self.gather_evidence(st, info, meta);
        let dir = if st.swapped {
            table_dir.reverse()
        } else {
            table_dir
        };
        let i = dir.index();
        let opaque = st.modes[i] == Mode::Opaque;
        if st.done[i] || opaque {
            Interest::Done
        } else {
            Interest::Bytes
        }
    }

    fn icmp_error(
        &mut self,
        st: &mut FlowState,
        _info: &FlowInfo,
        err: &IcmpError,
        meta: EventMeta,
    ) {
        // The last one: the error after which the client gave up.
        st.analysis(&self.shared).icmp = Some(Box::new((*err, meta)));
    }

    fn close(&mut self, st: FlowState, info: &FlowInfo, reason: CloseReason) {
        self.close_flow(st.into_analysis(), info, reason);
    }

    /// An established connection whose server has not said a word (a banner, or a TLS
    /// server's first flight), or whose TLS handshake began and is still unanswered.
    fn waiting(&self, st: &FlowState, info: &FlowInfo) -> bool {
        let fresh;
        let st = match &st.analysis {
            Some(a) => &**a,
            None => {
                fresh = Analysis::new(st.roles_open, None);
                &fresh
            }
        };
        let server = Direction::ToClient.index();
        // `info.dirs` follows the table's roles, `st` the corrected ones.
        let server_stats = info.dirs[if st.swapped { 0 } else { 1 }];
        let server_silent = st.openings[server].is_none()
            && st.probed[server] == 0
            && st.carry[server].is_empty()
            && !st.gapped[server];
        let handshake_pending = st.tls.as_ref().is_some_and(|t| {
            t.client_hello_seen()
                && t.outcome() == crate::report::model::HandshakeOutcome::Incomplete
        });
        server_stats.syn && (server_silent || handshake_pending)
    }
}

#[cfg(test)]
mod tests {
    use super::flow_id;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn id(capture: &str) -> String {
        flow_id(
            capture,
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            50123,
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            587,
            1_700_000_000_123_456_789,
            17,
        )
    }

    #[test]
    fn flow_id_depends_on_the_file_name_not_the_path_as_typed() {
        let plain = id("a.pcap");
        assert_eq!(plain.len(), 16);
        assert!(plain.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id("./a.pcap"), plain);
        assert_eq!(id("/tmp/x/a.pcap"), plain);
        assert_eq!(id("../x/./a.pcap"), plain);
        assert_ne!(id("b.pcap"), plain);
    }

    #[test]
    fn flow_id_is_pinned() {
        // Ids must not change between runs, platforms or versions of the hash crate.
        assert_eq!(id("a.pcap"), "635f649e808371c5");
    }

    #[test]
    fn flow_id_tells_every_part_of_the_key_apart() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 10));
        let base = flow_id("a.pcap", v4, 1, v6, 25, 5, 1);
        assert_ne!(flow_id("a.pcap", v6, 1, v4, 25, 5, 1), base);
        assert_ne!(flow_id("a.pcap", v4, 2, v6, 25, 5, 1), base);
        assert_ne!(flow_id("a.pcap", v4, 1, v6, 26, 5, 1), base);
        assert_ne!(flow_id("a.pcap", v4, 1, v6, 25, 6, 1), base);
        assert_ne!(flow_id("a.pcap", v4, 1, v6, 25, 5, 2), base);
    }
}
