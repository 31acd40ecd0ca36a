//! Per-flow analysis: classify each flow by ports and first bytes, drive the SMTP and TLS
//! sessions, and turn finished flows into report records and findings.
//!
//! Each direction of a flow is in one [`Mode`]: probing its first bytes, SMTP, TLS, or opaque.
//! The first bytes prove roles (a `220` reply or a ServerHello comes from the server) and may
//! correct the flow table's guess when it had no SYN to go by. STARTTLS moves a direction from
//! SMTP to TLS in place, at the byte the SMTP session names; the SMTP summary is kept.

pub mod classify;

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::cli::Config;
use crate::findings::correlate::FlowHints;
use crate::findings::{Finding, Kind, Severity};
use crate::flow::{
    CloseReason, Direction, EventMeta, FlowHandler, FlowInfo, Interest, StreamEvent,
};
use crate::proto::smtp::{Feed, SmtpSession};
use crate::proto::tls::{EndKind, TlsContext, TlsSession};
use crate::report::model::{EndpointRecord, FlowClass, FlowRecord, TcpRecord};
use classify::{LineScan, MAX_PROBE_LINE, Opening, find_smtp_line, probe_tls};

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

/// Analysis state of one flow, indexed by direction *after* role correction.
pub struct FlowState {
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
    mismatch: Option<Mismatch>,
    done: [bool; 2],
}

impl FlowState {
    fn new(roles_open: bool) -> Self {
        FlowState {
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
            mismatch: None,
            done: [false; 2],
        }
    }

    fn smtp(&mut self) -> &mut SmtpSession {
        self.smtp
            .get_or_insert_with(|| Box::new(SmtpSession::new()))
    }
}

/// A finished, reported flow with its findings, ready for the sinks.
pub struct FinishedFlow {
    pub record: FlowRecord,
    pub findings: Vec<Finding>,
    /// What the cross-connection stage needs to know of this flow.
    pub hints: FlowHints,
}

/// Drives the protocol sessions for every flow of one capture.
pub struct Analyzer {
    cfg: Config,
    capture: String,
    finished: Vec<FinishedFlow>,
    tcp_flows: u64,
    reported_flows: u64,
}

impl Analyzer {
    pub fn new(cfg: Config, capture: String) -> Self {
        Analyzer {
            cfg,
            capture,
            finished: Vec::new(),
            tcp_flows: 0,
            reported_flows: 0,
        }
    }

    /// Flows finished since the last call, in the order they finished.
    pub fn take_finished(&mut self) -> Vec<FinishedFlow> {
        std::mem::take(&mut self.finished)
    }

    pub fn has_finished(&self) -> bool {
        !self.finished.is_empty()
    }

    pub fn tcp_flows(&self) -> u64 {
        self.tcp_flows
    }

    pub fn reported_flows(&self) -> u64 {
        self.reported_flows
    }

    fn on_data(
        &mut self,
        st: &mut FlowState,
        info: &FlowInfo,
        dir: Direction,
        data: &[u8],
        meta: EventMeta,
    ) {
        match st.modes[dir.index()] {
            Mode::Probe => self.probe(st, info, dir, data, meta),
            Mode::Smtp => feed_smtp(st, dir, data, meta),
            Mode::Tls => {
                if let Some(tls) = st.tls.as_mut() {
                    if tls.feed(dir, data, meta) == Interest::Done {
                        st.done[dir.index()] = true;
                    }
                }
            }
            Mode::Opaque => {}
        }
    }

    /// Looks at the first bytes of a direction until they prove TLS or SMTP.
    fn probe(
        &mut self,
        st: &mut FlowState,
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
                    let tls = st
                        .tls
                        .get_or_insert_with(|| Box::new(new_tls(TlsContext::default())));
                    // Implicit TLS is proven by a handshake record (or an SSLv2 hello) as the
                    // first bytes, not by application data seen mid-stream.
                    if st.smtp.is_none() && hello.is_some() {
                        st.implicit_tls = true;
                    }
                    if !carry.is_empty() {
                        tls.feed(dir, &carry, meta);
                    }
                    tls.feed(dir, data, meta);
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
        st: &mut FlowState,
        _info: &FlowInfo,
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
        st.modes[i] = match what {
            Opening::Tls { .. } => Mode::Tls,
            Opening::SmtpReply | Opening::SmtpCommand => Mode::Smtp,
            Opening::Other => Mode::Opaque,
        };
        let other = st.openings[dir.reverse().index()];
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

    fn close_flow(&mut self, mut st: FlowState, info: &FlowInfo, reason: CloseReason) {
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
        if !smtp_spoken && !mail_port {
            return;
        }
        self.reported_flows += 1;

        let class = if st.mismatch.is_some() {
            FlowClass::Unknown
        } else if st.smtp.as_ref().is_some_and(|s| s.starttls_accepted()) {
            FlowClass::Starttls
        } else if smtp_spoken {
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
            findings.extend(tls.findings());
        }
        if let Some(m) = st.mismatch {
            findings.push(mismatch_finding(m, server.port));
        }
        for f in &mut findings {
            f.flow.clone_from(&id);
        }
        findings.sort_by_key(|f| (f.frame, f.kind));

        let record = FlowRecord {
            id,
            capture: self.capture.clone(),
            client: EndpointRecord {
                ip: client.ip,
                port: client.port,
            },
            server: EndpointRecord {
                ip: server.ip,
                port: server.port,
            },
            start: info.start,
            end: info.last,
            duration_secs: (info.last.as_nanos() - info.start.as_nanos()) as f64 / 1e9,
            class,
            smtp: st
                .smtp
                .as_ref()
                .filter(|_| smtp_spoken)
                .map(|s| s.record(reveal)),
            tls: st.tls.as_mut().map(|t| t.record()),
            tcp: TcpRecord {
                roles: info.roles,
                roles_corrected: st.swapped,
                close: reason,
                first_frame: info.first_frame,
                last_frame: info.last_frame,
                to_server,
                to_client,
                last_frame_capture: None,
            },
        };
        self.finished.push(FinishedFlow {
            record,
            findings,
            hints: FlowHints::default(),
        });
    }
}

/// TLS sessions frame records to the end of the flow: application data is counted (never
/// kept) whatever the segmentation, and encrypted alerts at close are seen.
fn new_tls(ctx: TlsContext) -> TlsSession {
    TlsSession::new(ctx).follow_to_close(true)
}

/// Findings that describe a server's or client's habits rather than an event worth an alert
/// on its own; reported with `--posture-findings`.
fn is_posture(kind: Kind) -> bool {
    matches!(kind, Kind::CleartextAuthOffered | Kind::CleartextMail)
}

fn feed_smtp(st: &mut FlowState, dir: Direction, data: &[u8], meta: EventMeta) {
    if data.is_empty() {
        return;
    }
    let feed = st.smtp().feed(dir, data, meta);
    if let Feed::Upgrade { offset } = feed {
        st.modes[dir.index()] = Mode::Tls;
        let banner_host = st
            .smtp
            .as_ref()
            .and_then(|s| s.banner_host().map(str::to_string));
        let tls = st.tls.get_or_insert_with(|| {
            Box::new(new_tls(TlsContext {
                starttls: true,
                banner_host,
            }))
        });
        if let Some(rest) = data.get(offset..) {
            if !rest.is_empty() && tls.feed(dir, rest, meta) == Interest::Done {
                st.done[dir.index()] = true;
            }
        }
    }
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

/// A flow id unique within a report and across runs: derived from the capture name and the
/// flow's key, start time and first frame.
pub(crate) fn flow_id(
    capture: &str,
    cip: IpAddr,
    cport: u16,
    sip: IpAddr,
    sport: u16,
    start_ns: i128,
    first_frame: u64,
) -> String {
    let mut h = Sha256::new();
    h.update(capture.as_bytes());
    h.update([0]);
    h.update(cip.to_string().as_bytes());
    h.update(cport.to_be_bytes());
    h.update(sip.to_string().as_bytes());
    h.update(sport.to_be_bytes());
    h.update(start_ns.to_be_bytes());
    h.update(first_frame.to_be_bytes());
    let digest = h.finalize();
    hex::encode(&digest[..8])
}

impl FlowHandler for Analyzer {
    type State = FlowState;

    fn open(&mut self, info: &FlowInfo, _meta: EventMeta) -> FlowState {
        FlowState::new(!info.roles.from_handshake())
    }

    fn event(
        &mut self,
        st: &mut FlowState,
        info: &FlowInfo,
        dir: Direction,
        ev: StreamEvent<'_>,
        meta: EventMeta,
    ) -> Interest {
        let dir = if st.swapped { dir.reverse() } else { dir };
        let i = dir.index();
        match ev {
            StreamEvent::Data(data) => self.on_data(st, info, dir, data, meta),
            StreamEvent::Gap(len) => match st.modes[i] {
                Mode::Probe => {
                    st.carry[i].clear();
                    st.gapped[i] = true;
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
        let opaque = st.modes[i] == Mode::Opaque;
        if st.done[i] || opaque {
            Interest::Done
        } else {
            Interest::Bytes
        }
    }

    fn close(&mut self, st: FlowState, info: &FlowInfo, reason: CloseReason) {
        self.close_flow(st, info, reason);
    }
}
