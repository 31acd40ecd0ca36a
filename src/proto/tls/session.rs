//! The per-connection TLS state machine: frames records in both directions as bytes arrive,
//! reassembles handshake messages (bounded), and decides the handshake outcome from what the
//! wire shows, with the rule that decided it.
//!
//! Invariants:
//! - Nothing is allocated from a length on the wire: a record header is validated before its
//!   body is looked at, handshake messages are buffered only up to [`MAX_MESSAGE`] each and
//!   [`MAX_HANDSHAKE_TOTAL`] per direction, and application data is counted, never copied.
//! - The outcome is sticky: once `Complete` or `Failed` it only changes from a `likely`
//!   completion to a `certain` one.
//! - Each anomaly is reported once per direction; after a framing anomaly the direction is
//!   not parsed any more (its counters are partial and say so).

use crate::findings::{Finding, Kind, Severity};
use crate::flow::{Direction, EventMeta, Interest};
use crate::report::model::{
    AlertLevel as ReportAlertLevel, AlertRecord, ClientHelloRecord, Confidence, HandshakeOutcome,
    OutcomeEvidence, Sender, ServerHelloRecord, TlsDirRecord, TlsRecord,
};

use super::cert::{self, CertInfo};
use super::handshake::{self, ClientHello, ServerHello};
use super::ja3::{self, Ja3};
use super::ja4::{self, Ja4};
use super::names::{
    AlertDescription, AlertLevel, ContentType, HandshakeType, Version, cipher_name,
    cipher_weaknesses, sslv2_cipher_name, sslv2_cipher_weaknesses,
};
use super::record::{self, HEADER_LEN, RecordHeader};
use super::{EndKind, TlsContext};

/// A handshake message larger than this is skipped (and counted). Certificate chains are the
/// largest messages in practice and stay well under it.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Handshake bytes examined per direction at most; past it handshake parsing stops (counted).
pub const MAX_HANDSHAKE_TOTAL: usize = 256 * 1024;
/// Alerts kept per connection; more are counted as an anomaly.
const MAX_ALERTS: usize = 32;
/// Anomaly lines kept per connection.
const MAX_ANOMALIES: usize = 16;
/// Alert and heartbeat bodies read in clear at most (a clear alert record holds 2 bytes per
/// alert; RFC 5246 section 6.2.1 allows several in one record).
const SMALL_BODY: usize = 32;
/// SSLv2 records are at most 32767 bytes (two-byte header, 15-bit length).
const MAX_SSLV2_HELLO: usize = 32 * 1024;

/// Ciphertext length of an encrypted TLS 1.3 alert: 2 bytes of alert, 1 byte of inner
/// content type and a 16-byte AEAD tag (RFC 8446 section 5.2), plus a little padding.
fn alert_sized(len: u16) -> bool {
    (19..=24).contains(&len)
}

/// A fixed-size buffer for the few record bodies read in clear (alerts, heartbeats).
#[derive(Clone, Copy, Debug, Default)]
struct Small {
    buf: [u8; SMALL_BODY],
    len: usize,
}

impl Small {
    fn push(&mut self, data: &[u8]) {
        let room = SMALL_BODY - self.len;
        let n = room.min(data.len());
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..self.len + n), data.get(..n)) {
            dst.copy_from_slice(src);
            self.len += n;
        }
    }
    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// Where a direction's byte stream is between records.
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// Before a record: the first byte tells a TLS header from an SSLv2 one.
    Start,
    Header {
        buf: [u8; HEADER_LEN],
        have: usize,
    },
    Body {
        hdr: RecordHeader,
        remaining: u16,
        small: Small,
    },
    V2Header {
        buf: [u8; 3],
        have: usize,
    },
    V2Body {
        remaining: usize,
        keep: bool,
    },
    /// After a gap: looking for the next plausible record header. The last bytes of a chunk
    /// that may begin one are held (fewer than a header), so that a header split across
    /// chunks is found as it would be in one piece.
    Resync {
        held: [u8; HEADER_LEN],
        have: usize,
    },
    /// Not parsed any more (anomaly or not TLS).
    Stopped,
}

/// Handshake message reassembly of one direction.
#[derive(Debug, Default)]
struct HsBuf {
    buf: Vec<u8>,
    /// Bytes of an oversized message still to skip.
    skip: usize,
    /// Handshake bytes examined so far.
    total: usize,
    /// Past the total cap: no more handshake parsing.
    disabled: bool,
}

#[derive(Debug)]
struct DirState {
    framing: Framing,
    hs: HsBuf,
    /// This side's records are encrypted from now on (after its CCS in TLS 1.2 and older;
    /// after the ServerHello for a TLS 1.3 server).
    keys_changed: bool,
    /// An encrypted handshake record (its Finished) followed its ChangeCipherSpec.
    finished_after_ccs: bool,
    /// Application-data records sent since the outcome became `Complete`.
    app_after_complete: u64,
    v2_records: u64,
    stats: TlsDirRecord,
    anomaly_reported: bool,
    closed: Option<(EndKind, EventMeta)>,
}

impl DirState {
    fn new() -> Self {
        DirState {
            framing: Framing::Start,
            hs: HsBuf::default(),
            keys_changed: false,
            finished_after_ccs: false,
            app_after_complete: 0,
            v2_records: 0,
            stats: TlsDirRecord::default(),
            anomaly_reported: false,
            closed: None,
        }
    }

    /// No more handshake bytes are needed from this side: free the buffer.
    fn settle_handshake(&mut self) {
        self.hs.buf = Vec::new();
        self.hs.disabled = true;
    }
}

/// Why a handshake failed.
#[derive(Clone, Debug, PartialEq)]
struct Failure {
    rule: &'static str,
    confidence: Confidence,
    meta: EventMeta,
    sender: Option<Sender>,
    /// Alert description in clear, when an alert decided it.
    description: Option<String>,
    stage: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Pending,
    Complete {
        rule: &'static str,
        confidence: Confidence,
        meta: EventMeta,
    },
    Failed(Failure),
}

/// TLS 1.3 progress, read from the order and sizes of encrypted records after the
/// ServerHello (everything after it is encrypted, RFC 8446 section 2).
#[derive(Debug, Default)]
struct Tls13Progress {
    /// Client application-data records after the ServerHello; the first is its Finished.
    client_records: u32,
    client_first_len: u16,
    client_first_meta: EventMeta,
    /// Server records after the client's first encrypted record.
    server_after_client: u32,
    server_after_client_first_len: u16,
}

fn sender(dir: Direction) -> Sender {
    match dir {
        Direction::ToServer => Sender::Client,
        Direction::ToClient => Sender::Server,
    }
}

fn sender_str(s: Sender) -> &'static str {
    match s {
        Sender::Client => "client",
        Sender::Server => "server",
    }
}

/// One resynchronisation step over `held` (bytes kept from earlier chunks, fewer than a
/// header) followed by `data`: the first position where a plausible record header starts.
/// Returns the bytes left to parse and the next framing state: a header (partly from `held`
/// when it straddles the chunks), or still resynchronising with the tail that may begin one.
fn resync<'a>(held: &[u8], data: &'a [u8]) -> (&'a [u8], Framing) {
    // Positions inside `held`: the header would continue into `data`.
    for i in 0..held.len() {
        let from_held = held.get(i..).unwrap_or_default();
        let want = HEADER_LEN - from_held.len();
        let mut window = [0u8; HEADER_LEN];
        let from_data = data.get(..want).unwrap_or(data);
        let len = from_held.len() + from_data.len();
        if let Some((a, b)) = window.split_at_mut_checked(from_held.len()) {
            a.copy_from_slice(from_held);
            if let Some(b) = b.get_mut(..from_data.len()) {
                b.copy_from_slice(from_data);
            }
        }
        let window = window.get(..len).unwrap_or_default();
        if len == HEADER_LEN && record::plausible_header(window) {
            let mut buf = [0; HEADER_LEN];
            if let Some(dst) = buf.get_mut(..from_held.len()) {
                dst.copy_from_slice(from_held);
            }
            // `data` is not consumed: the header state takes the rest of the header from it.
            let next = Framing::Header {
                buf,
                have: from_held.len(),
            };
            return (data, next);
        }
        if len < HEADER_LEN && record::plausible_header_prefix(window) {
            return (&[], resync_holding(window));
        }
    }
    for i in 0..data.len() {
        let rest = data.get(i..).unwrap_or_default();
        if rest.len() >= HEADER_LEN {
            if record::plausible_header(rest) {
                let next = Framing::Header {
                    buf: [0; HEADER_LEN],
                    have: 0,
                };
                return (rest, next);
            }
        } else if record::plausible_header_prefix(rest) {
            return (&[], resync_holding(rest));
        }
    }
    (&[], resync_holding(&[]))
}

/// Resynchronising, holding `tail` (shorter than a header).
fn resync_holding(tail: &[u8]) -> Framing {
    let mut held = [0; HEADER_LEN];
    let have = tail.len().min(HEADER_LEN - 1);
    if let (Some(dst), Some(src)) = (held.get_mut(..have), tail.get(..have)) {
        dst.copy_from_slice(src);
    }
    Framing::Resync { held, have }
}

fn dir_str(dir: Direction) -> &'static str {
    match dir {
        Direction::ToServer => "to_server",
        Direction::ToClient => "to_client",
    }
}

/// One TLS connection's handshake state.
#[derive(Debug)]
pub struct TlsSession {
    ctx: TlsContext,
    follow_to_close: bool,
    dirs: [DirState; 2],
    client_hello: Option<(ClientHello, EventMeta)>,
    client_hellos: u32,
    ja3: Option<Ja3>,
    ja4: Option<Ja4>,
    server_hello: Option<(ServerHello, EventMeta)>,
    ja3s: Option<Ja3>,
    hello_retry_request: bool,
    /// The server answered in SSLv2 (SERVER-HELLO): the whole connection is SSLv2.
    sslv2: bool,
    sslv2_cipher: Option<u32>,
    certificate: Option<(CertInfo, EventMeta)>,
    cert_seen: bool,
    alerts: Vec<AlertRecord>,
    tls13: Tls13Progress,
    outcome: Outcome,
    /// Why the outcome stays open at the end although the connection closed: the bytes that
    /// would decide it were never captured (cut by a snap length or lost, before the capture
    /// began, or in the direction the capture lacks). Reported as `incomplete`, never as a
    /// failure.
    undecided: Option<(&'static str, EventMeta)>,
    /// The last packet that brought bytes, for evidence when the capture ends first.
    last_meta: EventMeta,
    anomalies: Vec<String>,
}

impl TlsSession {
    pub fn new(ctx: TlsContext) -> Self {
        TlsSession {
            ctx,
            follow_to_close: false,
            dirs: [DirState::new(), DirState::new()],
            client_hello: None,
            client_hellos: 0,
            ja3: None,
            ja4: None,
            server_hello: None,
            ja3s: None,
            hello_retry_request: false,
            sslv2: false,
            sslv2_cipher: None,
            certificate: None,
            cert_seen: false,
            alerts: Vec::new(),
            tls13: Tls13Progress::default(),
            outcome: Outcome::Pending,
            undecided: None,
            last_meta: EventMeta::default(),
            anomalies: Vec::new(),
        }
    }

    /// Keep framing records after the handshake is settled, so that application data is
    /// counted to the end and encrypted alerts at close (close_notify) are listed. Off by
    /// default: a settled direction returns [`Interest::Done`] after its first
    /// application-data record, and the flow table may stop reassembling it.
    pub fn follow_to_close(mut self, on: bool) -> Self {
        self.follow_to_close = on;
        self
    }

    /// Bytes of one direction, in order, from the first byte of TLS.
    pub fn feed(&mut self, dir: Direction, data: &[u8], meta: EventMeta) -> Interest {
        let d = dir.index();
        // An empty chunk is no event: the frame named for an undecided outcome must not
        // depend on how the bytes were cut.
        if !data.is_empty() {
            self.last_meta = meta;
        }
        let mut data = data;
        while !data.is_empty() {
            let framing = match self.dirs.get(d) {
                Some(s) => s.framing,
                None => break,
            };
            let next = match framing {
                Framing::Stopped => break,
                Framing::Resync { held, have } => {
                    let (rest, next) = resync(held.get(..have).unwrap_or_default(), data);
                    data = rest;
                    next
                }
                Framing::Start => {
                    let first = data.first().copied().unwrap_or_default();
                    if self.sslv2 || (first & 0x80 != 0 && !ContentType(first).is_known()) {
                        Framing::V2Header {
                            buf: [0; 3],
                            have: 0,
                        }
                    } else {
                        Framing::Header {
                            buf: [0; HEADER_LEN],
                            have: 0,
                        }
                    }
                }
                Framing::Header { mut buf, mut have } => {
                    let n = (HEADER_LEN - have).min(data.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(have..have + n), data.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    have += n;
                    data = data.get(n..).unwrap_or_default();
                    if have < HEADER_LEN {
                        Framing::Header { buf, have }
                    } else {
                        match record::parse_header(buf) {
                            Ok(hdr) => {
                                self.on_record_start(dir, hdr, meta);
                                let body = Framing::Body {
                                    hdr,
                                    remaining: hdr.len,
                                    small: Small::default(),
                                };
                                if hdr.len == 0 {
                                    self.on_record_end(dir, hdr, &Small::default(), meta);
                                    Framing::Start
                                } else {
                                    body
                                }
                            }
                            Err(e) => {
                                self.stop(dir, e.as_str(), meta);
                                Framing::Stopped
                            }
                        }
                    }
                }
                Framing::Body {
                    hdr,
                    remaining,
                    mut small,
                } => {
                    let n = (remaining as usize).min(data.len());
                    let (piece, rest) = data.split_at_checked(n).unwrap_or((data, &[]));
                    data = rest;
                    self.on_record_piece(dir, hdr, piece, &mut small, meta);
                    let remaining = remaining - n as u16;
                    if remaining == 0 {
                        self.on_record_end(dir, hdr, &small, meta);
                        Framing::Start
                    } else {
                        Framing::Body {
                            hdr,
                            remaining,
                            small,
                        }
                    }
                }
                Framing::V2Header { mut buf, mut have } => {
                    // Two bytes are enough unless the high bit is clear (three-byte form).
                    let want = match buf.first() {
                        Some(b0) if have > 0 && b0 & 0x80 == 0 => 3,
                        _ if have == 0 && data.first().is_some_and(|b| b & 0x80 == 0) => 3,
                        _ => 2,
                    };
                    let n = (want - have).min(data.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(have..have + n), data.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    have += n;
                    data = data.get(n..).unwrap_or_default();
                    if have < want {
                        Framing::V2Header { buf, have }
                    } else {
                        match record::parse_sslv2_header(buf.get(..have).unwrap_or_default()) {
                            Some((_, len)) => self.on_v2_record_start(dir, len, meta),
                            None => {
                                self.stop(dir, "invalid_sslv2_record", meta);
                                Framing::Stopped
                            }
                        }
                    }
                }
                Framing::V2Body { remaining, keep } => {
                    let n = remaining.min(data.len());
                    let (piece, rest) = data.split_at_checked(n).unwrap_or((data, &[]));
                    data = rest;
                    if keep && let Some(s) = self.dirs.get_mut(d) {
                        s.hs.buf.extend_from_slice(piece);
                    }
                    if remaining - n == 0 {
                        if keep {
                            self.on_v2_record_end(dir, meta);
                        }
                        Framing::Start
                    } else {
                        Framing::V2Body {
                            remaining: remaining - n,
                            keep,
                        }
                    }
                }
            };
            let Some(s) = self.dirs.get_mut(d) else { break };
            // A callback may have stopped the direction; that wins over the next state.
            if !matches!(s.framing, Framing::Stopped) {
                s.framing = next;
            }
        }
        self.interest(dir)
    }

    /// Bytes that will never arrive: drop partial state and look for the next record.
    pub fn gap(&mut self, dir: Direction, len: u64, meta: EventMeta) {
        let Some(s) = self.dirs.get_mut(dir.index()) else {
            return;
        };
        s.stats.gap_bytes = s.stats.gap_bytes.saturating_add(len);
        if matches!(s.framing, Framing::Stopped) {
            return;
        }
        s.framing = Framing::Resync {
            held: [0; HEADER_LEN],
            have: 0,
        };
        s.hs.buf.clear();
        s.hs.skip = 0;
        self.note(format!(
            "{}: gap of {len} bytes at frame {}",
            dir_str(dir),
            meta.frame
        ));
    }

    /// The sender of `dir` closed (FIN) or reset its side.
    pub fn end(&mut self, dir: Direction, kind: EndKind, meta: EventMeta) {
        if let Some(s) = self.dirs.get_mut(dir.index()) {
            if s.closed.is_some() {
                return;
            }
            s.closed = Some((kind, meta));
        }
        if self.outcome != Outcome::Pending {
            return;
        }
        let stage = self.stage();
        // TLS 1.3: the client answered the server's encrypted flight with one alert-sized
        // record and the connection closed without data: it rejected the flight (most often
        // the certificate), RFC 8446 section 6.2.
        if self.tls13_negotiated()
            && self.tls13.client_records == 1
            && alert_sized(self.tls13.client_first_len)
            && self.tls13.server_after_client == 0
        {
            let am = self.tls13.client_first_meta;
            self.push_alert(AlertRecord {
                from: Sender::Client,
                level: ReportAlertLevel::Encrypted,
                description: None,
                frame: am.frame,
                frame_capture: None,
            });
            self.outcome = Outcome::Failed(Failure {
                rule: "tls13_client_rejected_server_flight",
                confidence: Confidence::Likely,
                meta: am,
                sender: Some(Sender::Client),
                description: None,
                stage,
            });
            return;
        }
        // The server answered the client's Finished with one alert-sized record, then close.
        if self.tls13_negotiated()
            && self.tls13.client_records == 1
            && self.tls13.server_after_client == 1
            && alert_sized(self.tls13.server_after_client_first_len)
        {
            self.outcome = Outcome::Failed(Failure {
                rule: "tls13_server_rejected_client_finished",
                confidence: Confidence::Likely,
                meta,
                sender: Some(Sender::Server),
                description: None,
                stage,
            });
            return;
        }
        let began = self.began();
        if let Some(rule) = self.undecidable(began) {
            if self.undecided.is_none() {
                self.undecided = Some((rule, meta));
                self.note(format!("outcome undecided: {rule}"));
            }
            return;
        }
        let rule = match (kind, began) {
            (EndKind::Reset, true) => "reset_before_completion",
            (EndKind::Fin, true) => "closed_before_completion",
            (EndKind::Reset, false) => "reset_before_client_hello",
            (EndKind::Fin, false) => "closed_before_client_hello",
        };
        self.outcome = Outcome::Failed(Failure {
            rule,
            confidence: Confidence::Certain,
            meta,
            sender: Some(sender(dir)),
            description: None,
            stage,
        });
    }

    /// When the (first) ClientHello was seen.
    pub fn client_hello_meta(&self) -> Option<EventMeta> {
        self.client_hello.as_ref().map(|(_, m)| *m)
    }

    /// A record (or SSLv2 hello) was seen: TLS began on the wire.
    fn began(&self) -> bool {
        self.client_hellos > 0
            || self
                .dirs
                .iter()
                .any(|s| s.stats.records > 0 || s.v2_records > 0)
    }

    /// Why the bytes in hand cannot decide a handshake that did not finish, if they cannot.
    fn undecidable(&self, began: bool) -> Option<&'static str> {
        let handshake_seen = self.client_hellos > 0
            || self.server_hello.is_some()
            || self
                .dirs
                .iter()
                .any(|s| s.stats.handshake > 0 || s.v2_records > 0);
        let [c, s] = [&self.dirs[0], &self.dirs[1]];
        if began && !handshake_seen {
            // Only records after the handshake (application data, encrypted alerts): the
            // capture began mid-session, the handshake is not in it.
            Some("handshake_not_captured")
        } else if self.server_hello.is_some() && c.stats.records == 0 && c.v2_records == 0 {
            // A ServerHello answers a ClientHello: the client's side is missing from the capture.
            Some("client_side_not_captured")
        } else if c.stats.gap_bytes > 0 || s.stats.gap_bytes > 0 {
            // Records cut by a snap length or lost: what would have decided it is not here.
            Some("deciding_bytes_not_captured")
        } else {
            None
        }
    }

    pub fn client_hello_seen(&self) -> bool {
        self.client_hellos > 0
    }

    pub fn server_hello_seen(&self) -> bool {
        self.server_hello.is_some()
    }

    /// Outcome as of now; `Incomplete` until the handshake completes or fails.
    pub fn outcome(&self) -> HandshakeOutcome {
        match self.outcome {
            Outcome::Pending => HandshakeOutcome::Incomplete,
            Outcome::Complete { .. } => HandshakeOutcome::Complete,
            Outcome::Failed(_) => HandshakeOutcome::Failed,
        }
    }

    /// The version the server selected, if a ServerHello was seen.
    pub fn version(&self) -> Option<Version> {
        if self.sslv2 {
            return Some(Version::SSL2);
        }
        self.server_hello
            .as_ref()
            .map(|(sh, _)| sh.selected_version)
    }

    /// The contract view.
    pub fn record(&self) -> TlsRecord {
        let outcome_evidence = match &self.outcome {
            // The capture may end before either side closed: the same reasons apply.
            Outcome::Pending => self
                .undecided
                .or_else(|| self.undecidable(self.began()).map(|r| (r, self.last_meta)))
                .map(|(rule, meta)| OutcomeEvidence {
                    frame_capture: None,
                    rule: rule.to_string(),
                    confidence: Confidence::Likely,
                    frame: meta.frame,
                }),
            Outcome::Complete {
                rule,
                confidence,
                meta,
            } => Some(OutcomeEvidence {
                frame_capture: None,
                rule: rule.to_string(),
                confidence: *confidence,
                frame: meta.frame,
            }),
            Outcome::Failed(f) => Some(OutcomeEvidence {
                rule: f.rule.to_string(),
                confidence: f.confidence,
                frame: f.meta.frame,
                frame_capture: None,
            }),
        };
        let cipher = match (&self.server_hello, self.sslv2_cipher) {
            (_, Some(c)) if self.sslv2 => Some(sslv2_cipher_name(c)),
            (Some((sh, _)), _) if !self.sslv2 => Some(cipher_name(sh.cipher)),
            _ => None,
        };
        let client = self.client_hello.as_ref().map(|(ch, m)| ClientHelloRecord {
            version: ch.version.name(),
            sslv2_format: ch.sslv2,
            supported_versions: ch.supported_versions.iter().map(|v| v.name()).collect(),
            ciphers: ch
                .ciphers
                .iter()
                .map(|&c| match u16::try_from(c) {
                    Ok(c) if !ch.sslv2 => cipher_name(c),
                    _ => sslv2_cipher_name(c),
                })
                .collect(),
            extensions: ch.extensions.clone(),
            supported_groups: ch.groups.clone(),
            ec_point_formats: ch.ec_point_formats.clone(),
            signature_algorithms: ch.signature_algorithms.clone(),
            alpn: ch.alpn.clone(),
            session_id: ch.session_id_len > 0,
            session_ticket: ch.session_ticket,
            pre_shared_key: ch.pre_shared_key,
            early_data: ch.early_data,
            frame: m.frame,
            frame_capture: None,
        });
        let server = self.server_hello.as_ref().map(|(sh, m)| ServerHelloRecord {
            legacy_version: sh.version.name(),
            extensions: sh.extensions.clone(),
            alpn: sh.alpn.clone(),
            resumed: self.resumed(),
            frame: m.frame,
            frame_capture: None,
        });
        let [to_server, to_client] = [&self.dirs[0], &self.dirs[1]].map(|s| {
            let mut st = s.stats;
            st.stopped = matches!(s.framing, Framing::Stopped);
            st
        });
        TlsRecord {
            version: self.version().map(Version::name),
            cipher,
            sni: self
                .client_hello
                .as_ref()
                .and_then(|(ch, _)| ch.sni.clone()),
            handshake: self.outcome(),
            alerts: self.alerts.clone(),
            ja3: self.ja3.as_ref().map(|j| j.hash.clone()),
            ja3s: self.ja3s.as_ref().map(|j| j.hash.clone()),
            ja4: self.ja4.as_ref().map(|j| j.hash.clone()),
            outcome_evidence,
            client_hello_seen: self.client_hello_seen(),
            server_hello_seen: self.server_hello_seen(),
            hello_retry_request: self.hello_retry_request,
            client,
            server,
            ja3_full: self.ja3.as_ref().map(|j| j.full.clone()),
            ja3s_full: self.ja3s.as_ref().map(|j| j.full.clone()),
            ja4_r: self.ja4.as_ref().map(|j| j.raw.clone()),
            certificate: self.certificate.as_ref().map(|(c, _)| c.record.clone()),
            to_server,
            to_client,
            anomalies: self.anomalies.clone(),
        }
    }

    /// Findings (flow id not yet attached).
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Outcome::Failed(f) = &self.outcome {
            let who = f.sender.map(sender_str);
            let message = match (f.rule, &f.description, who) {
                ("fatal_alert", Some(d), Some(w)) => {
                    format!("TLS handshake failed: {w} sent fatal alert {d}")
                }
                ("tls13_client_rejected_server_flight", _, _) => "TLS handshake likely failed: \
                     the client answered the server's TLS 1.3 flight with an encrypted alert \
                     and closed"
                    .to_string(),
                ("tls13_server_rejected_client_finished", _, _) => "TLS handshake likely \
                     failed: the server answered the client's Finished with an encrypted \
                     alert and closed"
                    .to_string(),
                ("client_hello_after_starttls_refused", _, _) => format!(
                    "TLS handshake failed: the client sent a ClientHello after the server \
                     refused STARTTLS ({}); the server was not ready for TLS",
                    self.ctx.starttls_refused.unwrap_or_default()
                ),
                ("protocol_error", _, Some(w)) => {
                    format!("TLS handshake failed: the {w} sent bytes that are not TLS")
                }
                ("reset_before_completion" | "reset_before_client_hello", _, Some(w)) => {
                    format!("TLS handshake failed: {w} reset the connection before completion")
                }
                (_, _, Some(w)) => {
                    format!("TLS handshake failed: {w} closed the connection before completion")
                }
                _ => "TLS handshake failed".to_string(),
            };
            let mut finding =
                Finding::new(Kind::TlsHandshakeFailure, Severity::Medium, f.meta, message)
                    .with("rule", f.rule)
                    .with("confidence", confidence_str(f.confidence))
                    .with("stage", f.stage)
                    .with("sender", who)
                    .with("description", f.description.clone());
            if let Some(code) = self.ctx.starttls_refused {
                finding = finding.with("starttls_refused_reply", code);
            }
            out.push(finding);
        }
        if let Some(v) = self.version() {
            let meta = self
                .server_hello
                .as_ref()
                .map(|(_, m)| *m)
                .unwrap_or_default();
            let severity = match v {
                Version::SSL2 | Version::SSL3 => Some(Severity::High),
                Version::TLS10 | Version::TLS11 => Some(Severity::Medium),
                _ => None,
            };
            if let Some(sev) = severity {
                out.push(
                    Finding::new(
                        Kind::WeakTlsVersion,
                        sev,
                        meta,
                        format!("{} negotiated", v.name()),
                    )
                    .with("version", v.name()),
                );
            }
            let (name, weaknesses) = match (&self.server_hello, self.sslv2_cipher) {
                (_, Some(c)) if self.sslv2 => (sslv2_cipher_name(c), sslv2_cipher_weaknesses(c)),
                (Some((sh, _)), _) if !self.sslv2 => {
                    (cipher_name(sh.cipher), cipher_weaknesses(sh.cipher))
                }
                _ => (String::new(), Vec::new()),
            };
            if !weaknesses.is_empty() {
                let sev = if weaknesses.iter().any(|w| w.is_high()) {
                    Severity::High
                } else {
                    Severity::Medium
                };
                let reasons: Vec<&str> = weaknesses.iter().map(|w| w.as_str()).collect();
                out.push(
                    Finding::new(
                        Kind::WeakCipher,
                        sev,
                        meta,
                        format!(
                            "weak cipher suite {name} negotiated ({})",
                            reasons.join(", ")
                        ),
                    )
                    .with("cipher", name)
                    .with("weaknesses", reasons),
                );
            }
        }
        if let Some((c, meta)) = &self.certificate
            && !c.problems.is_empty()
        {
            let sev = if c.problems.iter().any(|p| p.is_medium()) {
                Severity::Medium
            } else {
                Severity::Low
            };
            let problems: Vec<&str> = c.problems.iter().map(|p| p.as_str()).collect();
            out.push(
                Finding::new(
                    Kind::CertificateProblem,
                    sev,
                    *meta,
                    format!(
                        "server certificate {}: {}",
                        c.record.subject,
                        problems.join(", ")
                    ),
                )
                .with("problems", problems)
                .with("subject", c.record.subject.clone())
                .with("issuer", c.record.issuer.clone())
                .with("not_before", c.record.not_before.clone())
                .with("not_after", c.record.not_after.clone())
                .with("key_type", c.record.key_type.clone())
                .with("key_bits", c.record.key_bits)
                .with("name_checked", c.record.name_checked.clone())
                .with("san", c.record.san.clone())
                .with("sha256", c.record.sha256.clone()),
            );
        }
        out
    }

    // ---- record layer -------------------------------------------------------------

    fn on_record_start(&mut self, dir: Direction, hdr: RecordHeader, meta: EventMeta) {
        let tls13 = self.tls13_negotiated();
        let ccs_changes_keys = !tls13 && !self.hello_retry_request;
        let d = dir.index();
        let Some(s) = self.dirs.get_mut(d) else {
            return;
        };
        s.stats.records += 1;
        match hdr.content_type {
            ContentType::HANDSHAKE if s.keys_changed => {
                s.stats.encrypted_handshake += 1;
                if !tls13 {
                    s.finished_after_ccs = true;
                }
                self.evaluate(meta);
            }
            ContentType::HANDSHAKE => s.stats.handshake += 1,
            ContentType::CHANGE_CIPHER_SPEC => {
                s.stats.change_cipher_spec += 1;
                // In TLS 1.3 a CCS is only middlebox camouflage (RFC 8446 appendix D.4).
                if ccs_changes_keys {
                    s.keys_changed = true;
                    s.settle_handshake();
                }
            }
            ContentType::ALERT => {
                s.stats.alert += 1;
                if !alert_in_clear(s, hdr.len) {
                    self.push_alert(AlertRecord {
                        from: sender(dir),
                        level: ReportAlertLevel::Encrypted,
                        description: None,
                        frame: meta.frame,
                        frame_capture: None,
                    });
                }
            }
            ContentType::APPLICATION_DATA => {
                s.stats.application_data += 1;
                s.stats.application_data_bytes += hdr.len as u64;
                self.on_app_record(dir, hdr.len, meta);
            }
            ContentType::HEARTBEAT => s.stats.heartbeat += 1,
            _ => {}
        }
    }

    fn on_record_piece(
        &mut self,
        dir: Direction,
        hdr: RecordHeader,
        piece: &[u8],
        small: &mut Small,
        meta: EventMeta,
    ) {
        let Some(s) = self.dirs.get(dir.index()) else {
            return;
        };
        match hdr.content_type {
            ContentType::HANDSHAKE if !s.keys_changed && !s.hs.disabled => {
                self.hs_push(dir, piece, meta);
            }
            ContentType::ALERT | ContentType::HEARTBEAT if !s.keys_changed => small.push(piece),
            _ => {}
        }
    }

    fn on_record_end(&mut self, dir: Direction, hdr: RecordHeader, small: &Small, meta: EventMeta) {
        let Some(s) = self.dirs.get(dir.index()) else {
            return;
        };
        if s.keys_changed {
            return;
        }
        match hdr.content_type {
            ContentType::ALERT if alert_in_clear(s, hdr.len) => {
                for pair in small.bytes().chunks_exact(2) {
                    if let [level, desc] = pair {
                        self.on_clear_alert(dir, AlertLevel(*level), AlertDescription(*desc), meta);
                    }
                }
            }
            ContentType::HEARTBEAT => {
                // RFC 6520 section 4: type(1) payload_length(2) payload padding(>= 16); a
                // payload_length past the record is the Heartbleed over-read (CVE-2014-0160).
                if let [_, hi, lo, ..] = small.bytes() {
                    let claimed = u16::from_be_bytes([*hi, *lo]) as usize;
                    if claimed + 3 + 16 > hdr.len as usize {
                        self.note(format!(
                            "{}: heartbeat_payload_overlong at frame {}",
                            dir_str(dir),
                            meta.frame
                        ));
                    }
                }
            }
            _ => {}
        }
    }

    fn on_clear_alert(
        &mut self,
        dir: Direction,
        level: AlertLevel,
        desc: AlertDescription,
        meta: EventMeta,
    ) {
        let report_level = match level {
            AlertLevel::FATAL => ReportAlertLevel::Fatal,
            AlertLevel::WARNING => ReportAlertLevel::Warning,
            _ => {
                self.note(format!(
                    "{}: alert with unknown level {} at frame {}",
                    dir_str(dir),
                    level.0,
                    meta.frame
                ));
                ReportAlertLevel::Fatal
            }
        };
        self.push_alert(AlertRecord {
            from: sender(dir),
            level: report_level,
            description: Some(desc.name()),
            frame: meta.frame,
            frame_capture: None,
        });
        // TLS 1.3 treats every alert but close_notify and user_canceled as fatal whatever
        // its level (RFC 8446 section 6.2).
        let fatal = report_level == ReportAlertLevel::Fatal
            || (self.tls13_negotiated()
                && desc != AlertDescription::CLOSE_NOTIFY
                && desc != AlertDescription::USER_CANCELED);
        if fatal && self.outcome == Outcome::Pending {
            self.outcome = Outcome::Failed(Failure {
                rule: "fatal_alert",
                confidence: Confidence::Certain,
                meta,
                sender: Some(sender(dir)),
                description: Some(desc.name()),
                stage: self.stage(),
            });
        }
    }

    fn on_app_record(&mut self, dir: Direction, len: u16, meta: EventMeta) {
        if self.tls13_negotiated() {
            let t = &mut self.tls13;
            match dir {
                Direction::ToServer => {
                    t.client_records += 1;
                    if t.client_records == 1 {
                        t.client_first_len = len;
                        t.client_first_meta = meta;
                        if let Some(s) = self.dirs.get_mut(dir.index()) {
                            s.settle_handshake();
                        }
                    }
                }
                Direction::ToClient if t.client_records > 0 => {
                    t.server_after_client += 1;
                    if t.server_after_client == 1 {
                        t.server_after_client_first_len = len;
                    }
                }
                Direction::ToClient => {}
            }
        }
        if matches!(self.outcome, Outcome::Complete { .. })
            && let Some(s) = self.dirs.get_mut(dir.index())
        {
            s.app_after_complete += 1;
        }
        self.evaluate(meta);
    }

    /// Completion rules, checked whenever a record could have completed the handshake.
    fn evaluate(&mut self, meta: EventMeta) {
        let done = !matches!(
            self.outcome,
            Outcome::Pending
                | Outcome::Complete {
                    confidence: Confidence::Likely,
                    ..
                }
        );
        if done {
            return;
        }
        let [c, s] = [&self.dirs[0], &self.dirs[1]];
        let found: Option<(&'static str, Confidence)> = if self.sslv2 {
            // SSLv2: CLIENT-HELLO, CLIENT-MASTER-KEY, CLIENT-FINISHED against SERVER-HELLO,
            // SERVER-VERIFY, SERVER-FINISHED; all but the hellos encrypted.
            (c.v2_records >= 3 && s.v2_records >= 3)
                .then_some(("sslv2_records_both_ways", Confidence::Likely))
        } else if self.tls13_negotiated() {
            let t = &self.tls13;
            let finished = t.client_records >= 1 && !alert_sized(t.client_first_len);
            if finished && t.client_records >= 2 && t.server_after_client >= 2 {
                Some(("app_data_both_ways", Confidence::Certain))
            } else if finished
                && (t.client_records >= 2
                    || (t.server_after_client >= 1
                        && !alert_sized(t.server_after_client_first_len)))
            {
                Some(("tls13_client_finished_then_data", Confidence::Likely))
            } else {
                None
            }
        } else if c.finished_after_ccs && s.finished_after_ccs {
            Some(("ccs_finished_both", Confidence::Certain))
        } else if self.server_hello.is_some()
            && c.stats.application_data > 0
            && s.stats.application_data > 0
        {
            Some(("app_data_both_ways", Confidence::Certain))
        } else {
            None
        };
        if let Some((rule, confidence)) = found {
            let upgrade = matches!(self.outcome, Outcome::Complete { .. });
            if !upgrade || confidence == Confidence::Certain {
                let meta = match self.outcome {
                    // Keep the frame where completion was first seen.
                    Outcome::Complete { meta, .. } => meta,
                    _ => meta,
                };
                self.outcome = Outcome::Complete {
                    rule,
                    confidence,
                    meta,
                };
            }
        }
    }

    // ---- handshake messages ------------------------------------------------------

    /// Appends handshake-record bytes and handles every message they complete. Messages that
    /// arrive whole in one piece are handled in place, without copying.
    fn hs_push(&mut self, dir: Direction, piece: &[u8], meta: EventMeta) {
        let d = dir.index();
        let Some(s) = self.dirs.get_mut(d) else {
            return;
        };
        let mut hs = std::mem::take(&mut s.hs);
        let mut piece = piece;
        while !piece.is_empty() && !hs.disabled {
            if hs.skip > 0 {
                let n = hs.skip.min(piece.len());
                hs.skip -= n;
                piece = piece.get(n..).unwrap_or_default();
                continue;
            }
            if hs.buf.is_empty()
                && let Some((ty, body, total)) = whole_message(piece)
                && body.len() <= MAX_MESSAGE
            {
                if !count_total(&mut hs, total) {
                    self.hs_overflow(dir, meta);
                    break;
                }
                self.on_message(dir, HandshakeType(ty), body, meta);
                hs.disabled |= self.settled_meanwhile(d);
                piece = piece.get(total..).unwrap_or_default();
                continue;
            }
            // Fill the 4-byte message header first, then exactly the body it announces.
            if hs.buf.len() < 4 {
                let n = (4 - hs.buf.len()).min(piece.len());
                hs.buf.extend_from_slice(piece.get(..n).unwrap_or_default());
                piece = piece.get(n..).unwrap_or_default();
                if hs.buf.len() < 4 {
                    break;
                }
            }
            let Some((ty, body_len)) = message_header(&hs.buf) else {
                break;
            };
            if body_len > MAX_MESSAGE {
                // Skip the oversized message; keep parsing after it.
                hs.skip = body_len - (hs.buf.len() - 4);
                hs.buf.clear();
                self.hs_overflow(dir, meta);
                continue;
            }
            let need = 4 + body_len - hs.buf.len();
            let n = need.min(piece.len());
            hs.buf.extend_from_slice(piece.get(..n).unwrap_or_default());
            piece = piece.get(n..).unwrap_or_default();
            if hs.buf.len() == 4 + body_len {
                if !count_total(&mut hs, 4 + body_len) {
                    self.hs_overflow(dir, meta);
                    break;
                }
                let buf = std::mem::take(&mut hs.buf);
                self.on_message(
                    dir,
                    HandshakeType(ty),
                    buf.get(4..).unwrap_or_default(),
                    meta,
                );
                hs.disabled |= self.settled_meanwhile(d);
                hs.buf = buf;
                hs.buf.clear();
            }
        }
        if let Some(s) = self.dirs.get_mut(d) {
            // `on_message` may have settled this side meanwhile; keep that decision.
            if s.hs.disabled {
                hs.buf = Vec::new();
                hs.disabled = true;
            }
            s.hs = hs;
        }
    }

    /// `on_message` settled this side (a TLS 1.3 ServerHello: what follows is encrypted)
    /// while `hs_push` holds its buffer. The rest of the piece must then be left alone, as
    /// it would be had it come in a later call: otherwise encrypted bytes in the same
    /// segment were parsed as handshake messages (and counted as overflows).
    fn settled_meanwhile(&self, d: usize) -> bool {
        self.dirs.get(d).is_some_and(|s| s.hs.disabled)
    }

    fn hs_overflow(&mut self, dir: Direction, meta: EventMeta) {
        if let Some(s) = self.dirs.get_mut(dir.index()) {
            s.stats.handshake_overflow += 1;
        }
        self.note(format!(
            "{}: handshake message over the reassembly cap at frame {}",
            dir_str(dir),
            meta.frame
        ));
    }

    fn on_message(&mut self, dir: Direction, ty: HandshakeType, body: &[u8], meta: EventMeta) {
        match (dir, ty) {
            (Direction::ToServer, HandshakeType::CLIENT_HELLO) => {
                self.client_hellos += 1;
                if self.client_hello.is_some() {
                    // The second ClientHello after a HelloRetryRequest: the first one
                    // fingerprints the client.
                    return;
                }
                match handshake::parse_client_hello(body) {
                    Ok(ch) => self.set_client_hello(ch, meta),
                    Err(e) => self.note(format!("to_server: {e} at frame {}", meta.frame)),
                }
            }
            (Direction::ToClient, HandshakeType::SERVER_HELLO) => {
                match handshake::parse_server_hello(body) {
                    Ok(sh) if sh.hello_retry_request => self.hello_retry_request = true,
                    Ok(sh) if self.server_hello.is_none() => self.set_server_hello(sh, meta),
                    Ok(_) => self.note(format!(
                        "to_client: second ServerHello at frame {}",
                        meta.frame
                    )),
                    Err(e) => self.note(format!("to_client: {e} at frame {}", meta.frame)),
                }
            }
            // Draft-era HelloRetryRequest had its own type (draft-ietf-tls-tls13-18).
            (Direction::ToClient, HandshakeType(6)) => {
                let _ = handshake::parse_draft_hello_retry_request(body);
                self.hello_retry_request = true;
            }
            (Direction::ToClient, HandshakeType::CERTIFICATE) if !self.cert_seen => {
                self.cert_seen = true;
                match handshake::parse_certificate_chain(body) {
                    Ok(chain) => self.set_certificate(&chain, meta),
                    Err(e) => self.note(format!("to_client: {e} at frame {}", meta.frame)),
                }
            }
            _ => {}
        }
    }

    fn set_client_hello(&mut self, ch: ClientHello, meta: EventMeta) {
        self.ja3 = Some(ja3::ja3(&ch));
        self.ja4 = Some(ja4::ja4(&ch));
        self.client_hello = Some((ch, meta));
        if self.ctx.starttls_refused.is_some() && self.outcome == Outcome::Pending {
            // The server refused STARTTLS and still reads SMTP commands: this handshake
            // cannot complete (it answers the ClientHello as a bad command, or not at all).
            self.outcome = Outcome::Failed(Failure {
                rule: "client_hello_after_starttls_refused",
                confidence: Confidence::Certain,
                meta,
                sender: Some(Sender::Client),
                description: None,
                stage: self.stage(),
            });
        }
    }

    fn set_server_hello(&mut self, sh: ServerHello, meta: EventMeta) {
        self.ja3s = Some(ja3::ja3s(&sh));
        let tls13 = sh.selected_version.is_tls13_family();
        self.server_hello = Some((sh, meta));
        if tls13 && let Some(s) = self.dirs.get_mut(Direction::ToClient.index()) {
            // Everything the server sends after its ServerHello is encrypted.
            s.keys_changed = true;
            s.settle_handshake();
        }
    }

    fn set_certificate(&mut self, chain: &[&[u8]], meta: EventMeta) {
        let Some(leaf) = chain.first() else {
            return;
        };
        let host = self
            .client_hello
            .as_ref()
            .and_then(|(ch, _)| ch.sni.clone())
            .or_else(|| self.ctx.banner_host.clone());
        match cert::inspect(leaf, chain.len(), host.as_deref(), meta.ts) {
            Some(info) => self.certificate = Some((info, meta)),
            None => self.note(format!(
                "to_client: leaf certificate does not parse at frame {}",
                meta.frame
            )),
        }
    }

    // ---- SSLv2 -------------------------------------------------------------------

    fn on_v2_record_start(&mut self, dir: Direction, len: usize, _meta: EventMeta) -> Framing {
        let Some(s) = self.dirs.get_mut(dir.index()) else {
            return Framing::Stopped;
        };
        s.v2_records += 1;
        s.stats.records += 1;
        // Only the hellos and the CLIENT-MASTER-KEY are in clear and worth reading.
        let keep = len <= MAX_SSLV2_HELLO
            && match dir {
                Direction::ToServer => s.v2_records <= 2,
                Direction::ToClient => s.v2_records == 1,
            };
        s.hs.buf.clear();
        if len == 0 {
            return Framing::Start;
        }
        Framing::V2Body {
            remaining: len,
            keep,
        }
    }

    fn on_v2_record_end(&mut self, dir: Direction, meta: EventMeta) {
        let Some(s) = self.dirs.get_mut(dir.index()) else {
            return;
        };
        let msg = std::mem::take(&mut s.hs.buf);
        match (dir, msg.first().copied()) {
            (Direction::ToServer, Some(1)) if self.client_hello.is_none() => {
                self.client_hellos += 1;
                match handshake::parse_sslv2_client_hello(&msg) {
                    Ok(ch) => self.set_client_hello(ch, meta),
                    Err(e) => self.note(format!("to_server: {e} at frame {}", meta.frame)),
                }
            }
            // CLIENT-MASTER-KEY: msg 2, then the 3-byte CIPHER-KIND the client chose.
            (Direction::ToServer, Some(2)) => {
                if let Some(&[a, b, c]) = msg.get(1..4) {
                    self.sslv2_cipher = Some(u32::from_be_bytes([0, a, b, c]));
                }
            }
            // SERVER-HELLO: msg 4, session-id-hit, certificate type, version(2),
            // certificate length(2), cipher specs length(2), connection id length(2).
            (Direction::ToClient, Some(4)) => {
                let field = |i: usize| {
                    msg.get(i..i + 2)
                        .and_then(|b| <[u8; 2]>::try_from(b).ok())
                        .map(u16::from_be_bytes)
                };
                let (Some(version), Some(cert_len)) = (field(3), field(5)) else {
                    self.note(format!(
                        "to_client: malformed SSLv2 SERVER-HELLO at frame {}",
                        meta.frame
                    ));
                    return;
                };
                self.sslv2 = true;
                self.server_hello = Some((
                    ServerHello {
                        version: Version(version),
                        selected_version: Version::SSL2,
                        ..ServerHello::default()
                    },
                    meta,
                ));
                if let Some(der) = msg.get(11..11 + cert_len as usize) {
                    self.cert_seen = true;
                    self.set_certificate(&[der], meta);
                }
            }
            _ => {}
        }
        self.evaluate(meta);
    }

    // ---- helpers -----------------------------------------------------------------

    fn tls13_negotiated(&self) -> bool {
        self.server_hello
            .as_ref()
            .is_some_and(|(sh, _)| sh.selected_version.is_tls13_family())
    }

    fn resumed(&self) -> bool {
        let (Some((ch, _)), Some((sh, _))) = (&self.client_hello, &self.server_hello) else {
            return false;
        };
        if sh.selected_version.is_tls13_family() {
            return sh.pre_shared_key;
        }
        // RFC 5246 section 7.4.1.3: the server echoes the session id it resumes; a resumed
        // session skips the Certificate message.
        ch.session_id_len > 0 && !sh.session_id.is_empty() && !self.cert_seen && {
            let c = &self.dirs[1];
            c.keys_changed || c.stats.change_cipher_spec > 0
        }
    }

    fn stage(&self) -> &'static str {
        if self.server_hello.is_some() {
            "after_server_hello"
        } else {
            "before_server_hello"
        }
    }

    fn push_alert(&mut self, a: AlertRecord) {
        if self.alerts.len() < MAX_ALERTS {
            self.alerts.push(a);
        } else if self.alerts.len() == MAX_ALERTS {
            self.note(format!(
                "more than {MAX_ALERTS} alerts; the rest not listed"
            ));
        }
    }

    fn note(&mut self, s: String) {
        if self.anomalies.len() < MAX_ANOMALIES {
            self.anomalies.push(s);
        }
    }

    /// A framing anomaly: report it once, stop parsing the direction, and fail a pending
    /// handshake (the peer cannot complete a handshake over bytes that are not TLS).
    fn stop(&mut self, dir: Direction, what: &str, meta: EventMeta) {
        let Some(s) = self.dirs.get_mut(dir.index()) else {
            return;
        };
        s.framing = Framing::Stopped;
        s.hs = HsBuf {
            disabled: true,
            ..HsBuf::default()
        };
        let gapped = s.stats.gap_bytes > 0;
        if !s.anomaly_reported {
            s.anomaly_reported = true;
            self.note(format!("{}: {what} at frame {}", dir_str(dir), meta.frame));
        }
        // After a gap the framing may have resumed on bytes that only looked like a record:
        // not proof that the peer spoke something else.
        if self.outcome == Outcome::Pending && !gapped {
            self.outcome = Outcome::Failed(Failure {
                rule: "protocol_error",
                confidence: Confidence::Likely,
                meta,
                sender: Some(sender(dir)),
                description: None,
                stage: self.stage(),
            });
        }
    }

    fn interest(&self, dir: Direction) -> Interest {
        let Some(s) = self.dirs.get(dir.index()) else {
            return Interest::Done;
        };
        match (&s.framing, &self.outcome) {
            (Framing::Stopped, _) | (_, Outcome::Failed(_)) => Interest::Done,
            (_, Outcome::Complete { .. }) if !self.follow_to_close && s.app_after_complete > 0 => {
                Interest::Done
            }
            _ => Interest::Bytes,
        }
    }
}

/// Whether an alert record of `len` bytes from this side can be read in clear. A clear alert
/// is 2 bytes (level, description); RFC 5246 section 6.2.1 allows several in one record,
/// but only during a handshake seen in clear. After ChangeCipherSpec, or from a side whose
/// handshake was never seen (a capture begun mid-session), a longer alert record is
/// ciphertext: TLS 1.2's encrypted close_notify with AES-GCM is 26 bytes, which read in
/// clear would be thirteen alerts.
fn alert_in_clear(s: &DirState, len: u16) -> bool {
    if s.keys_changed {
        return false;
    }
    len == 2 || (s.stats.handshake > 0 && len > 2 && len % 2 == 0 && len as usize <= SMALL_BODY)
}

fn confidence_str(c: Confidence) -> &'static str {
    match c {
        Confidence::Certain => "certain",
        Confidence::Likely => "likely",
    }
}

/// Adds `n` to the handshake bytes of a direction; false when that passes the cap.
fn count_total(hs: &mut HsBuf, n: usize) -> bool {
    hs.total = hs.total.saturating_add(n);
    if hs.total > MAX_HANDSHAKE_TOTAL {
        hs.disabled = true;
        hs.buf = Vec::new();
        return false;
    }
    true
}

/// Handshake message header (RFC 8446 section 4): type(1), length(3).
fn message_header(b: &[u8]) -> Option<(u8, usize)> {
    match b {
        [ty, a, b, c, ..] => Some((*ty, u32::from_be_bytes([0, *a, *b, *c]) as usize)),
        _ => None,
    }
}

/// A whole message at the start of `b`: (type, body, total length).
fn whole_message(b: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (ty, len) = message_header(b)?;
    let body = b.get(4..4 + len)?;
    Some((ty, body, 4 + len))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::tls::handshake::tests::{
        alpn_ext, client_hello_body, server_hello_body, sni_ext, u16_list_ext, versions_ext,
    };
    use crate::proto::tls::handshake::{HRR_RANDOM, ext};
    use crate::time::Timestamp;

    const C: Direction = Direction::ToServer;
    const S: Direction = Direction::ToClient;

    /// Self-signed RSA-1024 certificate for mx.example.org and *.mail.example.org, valid
    /// from 1795526602 to 1798118602 (made with `openssl req -x509 -newkey rsa:1024`).
    const CERT_HEX: &[&str] = &[
        "3082023f308201a8a0030201020214129a470b9bcfc71f2e2228224d1a8c3b2153f1ba300d06092a864886f70d01010b",
        "050030193117301506035504030c0e6d782e6578616d706c652e6f7267301e170d3236313132343133323332325a170d",
        "3236313232343133323332325a30193117301506035504030c0e6d782e6578616d706c652e6f726730819f300d06092a",
        "864886f70d010101050003818d0030818902818100d9e7885fb71c43738b68d97731875318da54f6895b5a8575b22a27",
        "4b9bfd55aa4f4722fb7cecc03297fb288e5e4e9a9d3ae9597369fd53c021364308dff9a2d10e3273d406554fd59ca584",
        "67be0aaaed15c71148e28c5b1897cc7fb11cf9164492476c3a36c58115b3ab908b11fa264ba4c92996ed6ad642fe113c",
        "b6a5f5e6a50203010001a38183308180301d0603551d0e04160414ce0969e6ae29134e00d7e79d3d2275aa4b940f0a30",
        "1f0603551d23041830168014ce0969e6ae29134e00d7e79d3d2275aa4b940f0a300f0603551d130101ff040530030101",
        "ff302d0603551d1104263024820e6d782e6578616d706c652e6f726782122a2e6d61696c2e6578616d706c652e6f7267",
        "300d06092a864886f70d01010b05000381810031a6719083c222ed5bfad162d5760b8593df94f1d164fcc4f677c7cf6a",
        "c83a96b4fce4ca3d64a965aff55600c25eb103efabaaed538a989a980e5d7c27cffcebe4bf7c43ce752eedf7d88fb49a",
        "4dc7326c3992abb981416d5e6965e794c003a8f215986e81d46d8430097b67eb799d5059f8fdf041b8871a4fe8c39e3b",
        "055fb3",
    ];
    const CERT_NOT_BEFORE: i64 = 1_795_526_602;

    fn cert_der() -> Vec<u8> {
        hex::decode(CERT_HEX.concat()).unwrap()
    }

    fn m(frame: u64) -> EventMeta {
        EventMeta {
            ts: Timestamp::new(CERT_NOT_BEFORE + 86_400, 0),
            frame,
        }
    }

    fn rec(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![ty, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn hs(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut h = vec![ty];
        h.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        h.extend_from_slice(body);
        h
    }

    fn ch12() -> Vec<u8> {
        client_hello_body(
            0x0303,
            &[],
            &[0xc02f, 0x009c, 0x00ff],
            &[
                sni_ext("mx.example.org"),
                u16_list_ext(ext::SUPPORTED_GROUPS, &[29, 23]),
                (ext::EC_POINT_FORMATS, vec![1, 0]),
            ],
        )
    }

    fn ch13() -> Vec<u8> {
        client_hello_body(
            0x0303,
            &[5; 32],
            &[0x1301, 0x1302],
            &[
                u16_list_ext(ext::SUPPORTED_GROUPS, &[29]),
                u16_list_ext(ext::SIGNATURE_ALGORITHMS, &[0x0403]),
                versions_ext(&[0x0304, 0x0303]),
                alpn_ext(&[b"smtp"]),
            ],
        )
    }

    fn certificate_msg(der: &[u8]) -> Vec<u8> {
        let mut list = Vec::new();
        list.extend_from_slice(&(der.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(der);
        let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
        body.extend_from_slice(&list);
        hs(11, &body)
    }

    /// Client and server byte streams of a full TLS 1.2 handshake plus one data record each.
    fn tls12_streams(cipher: u16, version: u16, cert: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
        let mut c = rec(22, &hs(1, &ch12()));
        let mut flight = hs(
            2,
            &server_hello_body(version, [1; 32], cipher, &[(0xff01, vec![0])]),
        );
        if let Some(der) = cert {
            flight.extend(certificate_msg(der));
        }
        flight.extend(hs(14, &[]));
        let mut s = rec(22, &flight);
        c.extend(rec(22, &hs(16, &[0; 66])));
        c.extend(rec(20, &[1]));
        c.extend(rec(22, &[0xee; 40]));
        s.extend(rec(20, &[1]));
        s.extend(rec(22, &[0xdd; 40]));
        c.extend(rec(23, &[0xaa; 100]));
        s.extend(rec(23, &[0xbb; 100]));
        (c, s)
    }

    fn session() -> TlsSession {
        TlsSession::new(TlsContext::default())
    }

    fn kinds(s: &TlsSession) -> Vec<Kind> {
        s.findings().iter().map(|f| f.kind).collect()
    }

    fn evidence(s: &TlsSession) -> OutcomeEvidence {
        s.record().outcome_evidence.unwrap()
    }

    #[test]
    fn tls12_complete() {
        let (c, s) = tls12_streams(0xc02f, 0x0303, None);
        let mut t = session();
        assert_eq!(t.feed(C, &c[..c.len() - 105], m(4)), Interest::Bytes);
        assert_eq!(t.feed(S, &s[..s.len() - 105], m(5)), Interest::Bytes);
        assert!(t.client_hello_seen() && t.server_hello_seen());
        assert_eq!(t.outcome(), HandshakeOutcome::Complete);
        assert_eq!(evidence(&t).rule, "ccs_finished_both");
        assert_eq!(evidence(&t).confidence, Confidence::Certain);
        // Settled: the first data record of each side releases it.
        assert_eq!(t.feed(C, &c[c.len() - 105..], m(6)), Interest::Done);
        assert_eq!(t.feed(S, &s[s.len() - 105..], m(7)), Interest::Done);
        let r = t.record();
        assert_eq!(r.version.as_deref(), Some("TLSv1.2"));
        assert_eq!(
            r.cipher.as_deref(),
            Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        );
        assert_eq!(r.sni.as_deref(), Some("mx.example.org"));
        assert_eq!(
            r.ja3_full.as_deref(),
            Some("771,49199-156-255,0-10-11,29-23,0")
        );
        assert_eq!(r.ja3s_full.as_deref(), Some("771,49199,65281"));
        assert!(r.ja4.as_deref().unwrap().starts_with("t12d0303"));
        assert_eq!(r.to_server.change_cipher_spec, 1);
        assert_eq!(r.to_server.encrypted_handshake, 1);
        assert_eq!(r.to_client.application_data_bytes, 100);
        assert!(t.findings().is_empty());
        // A close after completion is not a failure.
        t.end(C, EndKind::Fin, m(8));
        t.end(S, EndKind::Reset, m(9));
        assert_eq!(t.outcome(), HandshakeOutcome::Complete);
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let (c, s) = tls12_streams(0xc02f, 0x0303, Some(&cert_der()));
        let mut whole = session();
        whole.feed(C, &c, m(1));
        whole.feed(S, &s, m(2));
        let want = whole.record();
        assert_eq!(want.handshake, HandshakeOutcome::Complete);
        for (dir, stream) in [(C, &c), (S, &s)] {
            for i in 1..stream.len() {
                let mut t = session().follow_to_close(true);
                // Capture order: the ClientHello always comes first.
                if dir == S {
                    t.feed(C, &c, m(1));
                }
                t.feed(dir, &stream[..i], m(1));
                t.feed(dir, &stream[i..], m(1));
                if dir == C {
                    t.feed(S, &s, m(2));
                }
                let got = t.record();
                assert_eq!(got.ja3, want.ja3, "split at {i}");
                assert_eq!(got.ja3s, want.ja3s, "split at {i}");
                assert_eq!(got.certificate, want.certificate, "split at {i}");
                assert_eq!(got.handshake, HandshakeOutcome::Complete, "split at {i}");
            }
        }
        // And one byte at a time.
        let mut t = session().follow_to_close(true);
        for b in &c {
            t.feed(C, std::slice::from_ref(b), m(1));
        }
        for b in &s {
            t.feed(S, std::slice::from_ref(b), m(2));
        }
        assert_eq!(t.record().ja3, want.ja3);
        assert_eq!(t.record().to_client, want.to_client);
    }

    #[test]
    fn one_byte_handshake_fragments_across_records() {
        let msg = hs(1, &ch12());
        let mut stream = Vec::new();
        for b in &msg {
            stream.extend(rec(22, std::slice::from_ref(b)));
        }
        let mut t = session();
        t.feed(C, &stream, m(1));
        assert!(t.client_hello_seen());
        assert_eq!(t.record().sni.as_deref(), Some("mx.example.org"));
        assert_eq!(t.record().to_server.handshake, msg.len() as u64);
    }

    #[test]
    fn several_messages_and_records_in_one_chunk() {
        let (c, s) = tls12_streams(0x0004, 0x0301, Some(&cert_der()));
        let mut t = session();
        t.feed(C, &c, m(1));
        t.feed(S, &s, m(2));
        let r = t.record();
        assert_eq!(r.version.as_deref(), Some("TLSv1.0"));
        assert_eq!(r.cipher.as_deref(), Some("TLS_RSA_WITH_RC4_128_MD5"));
        assert_eq!(r.certificate.as_ref().unwrap().chain_length, 1);
        let f = t.findings();
        let v = f.iter().find(|f| f.kind == Kind::WeakTlsVersion).unwrap();
        assert_eq!(v.severity, Severity::Medium);
        assert_eq!(v.frame, 2);
        let w = f.iter().find(|f| f.kind == Kind::WeakCipher).unwrap();
        assert_eq!(w.severity, Severity::Medium);
        assert_eq!(
            w.evidence["weaknesses"],
            serde_json::json!(["rc4", "md5_mac"])
        );
    }

    #[test]
    fn sslv3_and_export_are_high() {
        let (c, s) = tls12_streams(0x0003, 0x0300, None);
        let mut t = session();
        t.feed(C, &c, m(1));
        t.feed(S, &s, m(2));
        let f = t.findings();
        assert!(f.iter().all(|f| f.severity == Severity::High), "{f:?}");
        assert_eq!(kinds(&t), vec![Kind::WeakTlsVersion, Kind::WeakCipher]);
    }

    #[test]
    fn certificate_problems() {
        let der = cert_der();
        let (c, s) = tls12_streams(0xc02f, 0x0303, Some(&der));
        // SNI mx.example.org matches; the key is 1024 bits and the cert self-signed.
        let mut t = session();
        t.feed(C, &c, m(1));
        t.feed(S, &s, m(2));
        let r = t.record().certificate.unwrap();
        assert_eq!(r.subject, "CN=mx.example.org");
        assert_eq!(r.issuer, "CN=mx.example.org");
        assert_eq!(r.san, vec!["mx.example.org", "*.mail.example.org"]);
        assert_eq!(r.key_type, "RSA");
        assert_eq!(r.key_bits, Some(1024));
        assert_eq!(r.not_before, "2026-11-24T13:23:22.000000Z");
        assert_eq!(
            r.sha256,
            "f596659421d1d106e3f5483dcd4d2ca02c5911b753d0c9ee291ee24b2cd89604"
        );
        assert!(r.self_signed);
        let f = t.findings();
        let cp = f
            .iter()
            .find(|f| f.kind == Kind::CertificateProblem)
            .unwrap();
        assert_eq!(cp.severity, Severity::Medium);
        assert_eq!(
            cp.evidence["problems"],
            serde_json::json!(["weak_key", "self_signed"])
        );

        // Later than notAfter, with a banner host instead of SNI that the SANs do not cover.
        let ctx = TlsContext {
            starttls: true,
            banner_host: Some("smtp.example.net".into()),
            ..TlsContext::default()
        };
        let mut t = TlsSession::new(ctx);
        let no_sni = rec(22, &hs(1, &client_hello_body(0x0303, &[], &[0xc02f], &[])));
        t.feed(C, &no_sni, m(1));
        let late = EventMeta {
            ts: Timestamp::new(CERT_NOT_BEFORE + 90 * 86_400, 0),
            frame: 2,
        };
        t.feed(S, &s, late);
        let r = t.record().certificate.unwrap();
        assert_eq!(r.name_checked.as_deref(), Some("smtp.example.net"));
        assert_eq!(
            r.problems,
            vec!["expired", "weak_key", "self_signed", "name_mismatch"]
        );
        // Wildcard SAN covers exactly one label.
        let info = cert::inspect(&der, 1, Some("a.mail.example.org"), m(1).ts).unwrap();
        assert!(!info.problems.contains(&cert::CertProblem::NameMismatch));
        let early = Timestamp::new(CERT_NOT_BEFORE - 10, 0);
        let info = cert::inspect(&der, 1, Some("a.b.mail.example.org"), early).unwrap();
        assert!(info.problems.contains(&cert::CertProblem::NameMismatch));
        assert!(info.problems.contains(&cert::CertProblem::NotYetValid));
    }

    #[test]
    fn fatal_alert_from_server_before_server_hello() {
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch12())), m(4));
        assert_eq!(t.feed(S, &rec(21, &[2, 40]), m(6)), Interest::Done);
        t.end(S, EndKind::Fin, m(7));
        assert_eq!(t.outcome(), HandshakeOutcome::Failed);
        let r = t.record();
        assert_eq!(r.alerts.len(), 1);
        assert_eq!(r.alerts[0].from, Sender::Server);
        assert_eq!(r.alerts[0].level, ReportAlertLevel::Fatal);
        assert_eq!(
            r.alerts[0].description.as_deref(),
            Some("handshake_failure")
        );
        assert_eq!(evidence(&t).rule, "fatal_alert");
        let f = t.findings();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, Kind::TlsHandshakeFailure);
        assert_eq!(f[0].severity, Severity::Medium);
        assert_eq!(f[0].frame, 6);
        assert_eq!(f[0].evidence["sender"], "server");
        assert_eq!(f[0].evidence["description"], "handshake_failure");
        assert_eq!(f[0].evidence["stage"], "before_server_hello");
        assert_eq!(f[0].evidence["confidence"], "certain");
    }

    #[test]
    fn fatal_alert_from_client_after_server_hello() {
        let (_, s) = tls12_streams(0xc02f, 0x0303, None);
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
        t.feed(S, &s[..s.len() - 150], m(2));
        t.feed(C, &rec(21, &[2, 48]), m(3));
        let f = t.findings();
        assert_eq!(f[0].evidence["sender"], "client");
        assert_eq!(f[0].evidence["description"], "unknown_ca");
        assert_eq!(f[0].evidence["stage"], "after_server_hello");
    }

    #[test]
    fn warning_alert_is_not_a_failure() {
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
        t.feed(S, &rec(21, &[1, 112]), m(2));
        assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
        assert_eq!(t.record().alerts[0].level, ReportAlertLevel::Warning);
        assert!(t.findings().is_empty());
    }

    #[test]
    fn reset_before_completion() {
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
        t.end(C, EndKind::Reset, m(3));
        assert_eq!(t.outcome(), HandshakeOutcome::Failed);
        assert_eq!(evidence(&t).rule, "reset_before_completion");
        let f = t.findings();
        assert_eq!(f[0].evidence["sender"], "client");
        assert_eq!(f[0].frame, 3);
    }

    #[test]
    fn fin_before_completion() {
        let (_, s) = tls12_streams(0xc02f, 0x0303, None);
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
        t.feed(S, &s[..60], m(2));
        t.end(S, EndKind::Fin, m(3));
        assert_eq!(evidence(&t).rule, "closed_before_completion");
        assert_eq!(t.findings()[0].evidence["stage"], "after_server_hello");
    }

    #[test]
    fn capture_ends_mid_handshake_is_incomplete() {
        let (c, s) = tls12_streams(0xc02f, 0x0303, None);
        let mut t = session();
        t.feed(C, &c[..c.len() - 150], m(1));
        t.feed(S, &s[..s.len() - 150], m(2));
        assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
        assert!(t.record().outcome_evidence.is_none());
        assert!(t.findings().is_empty());
    }

    fn tls13_server_flight() -> Vec<u8> {
        let sh = server_hello_body(
            0x0303,
            [2; 32],
            0x1302,
            &[
                (ext::SUPPORTED_VERSIONS, vec![3, 4]),
                (51, vec![0, 29, 0, 0]),
            ],
        );
        let mut s = rec(22, &hs(2, &sh));
        s.extend(rec(20, &[1]));
        s.extend(rec(23, &[0x42; 2500]));
        s
    }

    /// Found by the `tls_session` fuzz target (chunking differential): a TLS 1.3 ServerHello
    /// followed, in the same handshake record and the same segment, by bytes that read as a
    /// huge message header. Fed at once they were parsed as handshake (one overflow); fed
    /// byte by byte they were left alone, as encrypted bytes must be.
    #[test]
    fn tls13_server_hello_settles_the_rest_of_the_segment() {
        let sh = server_hello_body(
            0x0303,
            [2; 32],
            0x1302,
            &[(ext::SUPPORTED_VERSIONS, vec![3, 4])],
        );
        let mut body = hs(2, &sh);
        body.extend_from_slice(&[0x0b, 0xff, 0xff, 0xff, 0x17, 0x03, 0x03]);
        let stream = rec(22, &body);
        let run = |pieces: Vec<&[u8]>| {
            let mut t = session();
            t.feed(C, &rec(22, &hs(1, &ch13())), m(1));
            for p in pieces {
                t.feed(S, p, m(2));
            }
            t.record()
        };
        let whole = run(vec![&stream]);
        assert_eq!(whole.to_client.handshake_overflow, 0);
        assert!(whole.anomalies.is_empty(), "{:?}", whole.anomalies);
        assert_eq!(whole, run(stream.chunks(1).collect()));
    }

    #[test]
    fn tls13_complete() {
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch13())), m(14));
        t.feed(S, &tls13_server_flight(), m(16));
        assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
        let mut fin = rec(20, &[1]);
        fin.extend(rec(23, &[0x11; 69]));
        t.feed(C, &fin, m(19));
        t.feed(C, &rec(23, &[0x12; 38]), m(21));
        assert_eq!(t.outcome(), HandshakeOutcome::Complete);
        assert_eq!(evidence(&t).confidence, Confidence::Likely);
        t.feed(S, &rec(23, &[0x13; 250]), m(23));
        t.feed(S, &rec(23, &[0x14; 150]), m(25));
        let e = evidence(&t);
        assert_eq!(
            (e.rule.as_str(), e.confidence),
            ("app_data_both_ways", Confidence::Certain)
        );
        assert_eq!(e.frame, 21);
        let r = t.record();
        assert_eq!(r.version.as_deref(), Some("TLSv1.3"));
        assert_eq!(r.cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
        assert_eq!(r.server.unwrap().legacy_version, "TLSv1.2");
        assert_eq!(r.ja3s_full.as_deref(), Some("771,4866,43-51"));
        assert!(r.ja4.unwrap().starts_with("t13i0204sp_"));
        assert!(t.findings().is_empty());
    }

    #[test]
    fn tls13_client_rejects_server_flight() {
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch13())), m(4));
        t.feed(S, &tls13_server_flight(), m(6));
        let mut rej = rec(20, &[1]);
        rej.extend(rec(23, &[0x99; 19]));
        t.feed(C, &rej, m(8));
        assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
        t.end(C, EndKind::Fin, m(9));
        assert_eq!(t.outcome(), HandshakeOutcome::Failed);
        let e = evidence(&t);
        assert_eq!(e.rule, "tls13_client_rejected_server_flight");
        assert_eq!(e.confidence, Confidence::Likely);
        assert_eq!(e.frame, 8);
        let r = t.record();
        assert_eq!(r.alerts.len(), 1);
        assert_eq!(r.alerts[0].level, ReportAlertLevel::Encrypted);
        assert_eq!(r.alerts[0].description, None);
        let f = t.findings();
        assert_eq!(f[0].evidence["confidence"], "likely");
        assert_eq!(f[0].evidence["sender"], "client");
    }

    #[test]
    fn hello_retry_request_is_not_the_server_hello() {
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch13())), m(1));
        let hrr = server_hello_body(
            0x0303,
            HRR_RANDOM,
            0x1301,
            &[(ext::SUPPORTED_VERSIONS, vec![3, 4])],
        );
        t.feed(S, &rec(22, &hs(2, &hrr)), m(2));
        assert!(!t.server_hello_seen());
        // Middlebox-compatible CCS, then the second ClientHello in clear.
        let mut c2 = rec(20, &[1]);
        c2.extend(rec(22, &hs(1, &ch13())));
        t.feed(C, &c2, m(3));
        t.feed(S, &tls13_server_flight(), m(4));
        let r = t.record();
        assert!(r.hello_retry_request);
        assert!(r.server_hello_seen);
        assert_eq!(r.version.as_deref(), Some("TLSv1.3"));
        assert_eq!(r.to_server.handshake, 2);
    }

    #[test]
    fn oversized_record_claim_stops_the_direction() {
        let mut t = session();
        let mut d = rec(22, &hs(1, &ch12()));
        d.extend_from_slice(&[0x17, 0x03, 0x03, 0xff, 0xff, 0, 0, 0]);
        assert_eq!(t.feed(C, &d, m(3)), Interest::Done);
        let r = t.record();
        assert!(r.to_server.stopped);
        assert_eq!(r.anomalies, vec!["to_server: record_too_long at frame 3"]);
        assert_eq!(evidence(&t).rule, "protocol_error");
        // Further bytes are ignored.
        assert_eq!(t.feed(C, &[0x16; 100], m(4)), Interest::Done);
        assert_eq!(t.record().to_server.records, 1);
    }

    #[test]
    fn sixteen_megabyte_message_claim_allocates_nothing() {
        let mut t = session();
        // A handshake message announcing 0xffffff bytes, fed a record at a time.
        let mut body = vec![11, 0xff, 0xff, 0xff];
        body.extend_from_slice(&[0; 100]);
        t.feed(S, &rec(22, &body), m(1));
        for _ in 0..3 {
            t.feed(S, &rec(22, &[0; 16_000]), m(2));
        }
        let s = &t.dirs[S.index()];
        assert!(s.hs.buf.capacity() <= 64, "{}", s.hs.buf.capacity());
        assert_eq!(s.hs.skip, 0xff_ffff - 100 - 48_000);
        assert_eq!(t.record().to_client.handshake_overflow, 1);
        assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
    }

    #[test]
    fn handshake_total_cap() {
        let mut t = session();
        // 300 small unknown messages of 1000 bytes: past 256 KiB, parsing stops, counted.
        for _ in 0..300 {
            t.feed(S, &rec(22, &hs(99, &[0; 1000])), m(1));
        }
        let s = &t.dirs[S.index()];
        assert!(s.hs.disabled);
        assert_eq!(s.stats.handshake_overflow, 1);
        assert_eq!(s.stats.handshake, 300);
    }

    #[test]
    fn gap_resynchronises_at_the_next_record() {
        let (c, s) = tls12_streams(0xc02f, 0x0303, None);
        let mut t = session();
        t.feed(C, &c, m(1));
        // Lose the middle of the ServerHello record, then deliver the rest.
        t.feed(S, &s[..20], m(2));
        t.gap(S, 30, m(3));
        let rest = &s[50..];
        t.feed(S, rest, m(4));
        let r = t.record();
        assert_eq!(r.to_client.gap_bytes, 30);
        assert!(!r.to_client.stopped);
        assert!(r.to_client.change_cipher_spec == 1);
        assert!(r.anomalies[0].starts_with("to_client: gap of 30 bytes"));
    }

    /// Found by the `smtp_session` fuzz target (chunking differential): after a gap, a record
    /// header that arrived split across chunks was skipped, so one byte per call lost the
    /// application-data record that one call found. Its exact input: an SSLv2-looking hello
    /// cut by a gap, then `17 03 03 0f 0e`.
    #[test]
    fn header_split_across_chunks_after_a_gap_is_found() {
        let head = b"\xba\x8a\x01\x18\x17\x03\x00\xc0\x0f\x0e\x45\x94\xb3\xe7";
        let after_gap = b"\x17\x03\x03\x0f\x0e";
        let run = |pieces: &[&[u8]]| {
            let mut t = session();
            t.feed(C, head, m(1));
            t.gap(C, 0x70ba << 27, m(2));
            for p in pieces {
                t.feed(C, p, m(3));
            }
            t.record().to_server
        };
        let whole = run(&[after_gap]);
        assert_eq!((whole.records, whole.application_data), (2, 1));
        assert_eq!(whole.application_data_bytes, 0x0f0e);
        let bytes: Vec<&[u8]> = after_gap.chunks(1).collect();
        assert_eq!(run(&bytes), whole);
        // A held prefix that turns out not to be a header is rescanned from its next byte.
        let mut t = session();
        t.gap(S, 1, m(1));
        t.feed(S, b"\x16\x03", m(2));
        t.feed(S, b"\x16\x03\x03\x00\x00", m(3));
        assert_eq!(t.record().to_client.records, 1);
    }

    #[test]
    fn plaintext_answer_is_a_protocol_error() {
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch12())), m(5));
        t.feed(S, b"220 mx.example.org ESMTP\r\n", m(6));
        t.end(C, EndKind::Reset, m(7));
        assert_eq!(evidence(&t).rule, "protocol_error");
        assert_eq!(t.findings()[0].evidence["sender"], "server");
    }

    #[test]
    fn encrypted_alert_after_completion_is_listed() {
        let (c, s) = tls12_streams(0xc02f, 0x0303, None);
        let mut t = session().follow_to_close(true);
        t.feed(C, &c, m(1));
        t.feed(S, &s, m(2));
        assert_eq!(t.feed(C, &rec(21, &[0x77; 26]), m(3)), Interest::Bytes);
        t.end(C, EndKind::Fin, m(4));
        let r = t.record();
        assert_eq!(r.handshake, HandshakeOutcome::Complete);
        assert_eq!(r.alerts[0].level, ReportAlertLevel::Encrypted);
        assert_eq!(r.alerts[0].from, Sender::Client);
    }

    #[test]
    fn sslv2_compatible_client_hello() {
        // SSLv2 header (0x80, len), CLIENT-HELLO for TLS 1.0 offering two TLS suites and one
        // SSLv2 spec, no session id, 16-byte challenge.
        let mut msg = vec![0x01, 0x03, 0x01, 0x00, 0x09, 0x00, 0x00, 0x00, 0x10];
        msg.extend_from_slice(&[0x00, 0x00, 0x04, 0x00, 0x00, 0x2f, 0x01, 0x00, 0x80]);
        msg.extend_from_slice(&[0x5a; 16]);
        let mut c = vec![0x80, msg.len() as u8];
        c.extend_from_slice(&msg);
        assert_eq!(crate::proto::tls::looks_like_tls(&c), Some(true));
        let mut t = session();
        t.feed(C, &c, m(1));
        let sh = server_hello_body(0x0301, [1; 32], 0x0004, &[]);
        t.feed(S, &rec(22, &hs(2, &sh)), m(2));
        // The client goes on in TLS records.
        t.feed(C, &rec(22, &hs(16, &[0; 10])), m(3));
        let r = t.record();
        assert!(r.client.as_ref().unwrap().sslv2_format);
        assert_eq!(
            r.client.unwrap().ciphers,
            vec![
                "TLS_RSA_WITH_RC4_128_MD5",
                "TLS_RSA_WITH_AES_128_CBC_SHA",
                "SSL_CK_RC4_128_WITH_MD5"
            ]
        );
        assert_eq!(r.ja3_full.as_deref(), Some("769,4-47-65664,,,"));
        assert_eq!(r.version.as_deref(), Some("TLSv1.0"));
        assert_eq!(r.to_server.records, 2);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    }

    #[test]
    fn sslv2_server_hello() {
        let mut msg = vec![0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10];
        msg.extend_from_slice(&[0x01, 0x00, 0x80]);
        msg.extend_from_slice(&[0x5a; 16]);
        let mut c = vec![0x80, msg.len() as u8];
        c.extend_from_slice(&msg);
        let mut t = session();
        t.feed(C, &c, m(1));
        // SERVER-HELLO: no session hit, X.509 cert type, version 2, no cert, 3 bytes of
        // specs, 16 bytes of connection id.
        let mut sh = vec![
            0x04, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x10,
        ];
        sh.extend_from_slice(&[0x01, 0x00, 0x80]);
        sh.extend_from_slice(&[0x33; 16]);
        let mut s = vec![0x80, sh.len() as u8];
        s.extend_from_slice(&sh);
        t.feed(S, &s, m(2));
        // CLIENT-MASTER-KEY choosing RC4-128-MD5.
        t.feed(
            C,
            &[0x80, 0x0a, 0x02, 0x01, 0x00, 0x80, 0, 0, 0, 0, 0, 0],
            m(3),
        );
        let r = t.record();
        assert_eq!(r.version.as_deref(), Some("SSLv2"));
        assert_eq!(r.cipher.as_deref(), Some("SSL_CK_RC4_128_WITH_MD5"));
        assert_eq!(kinds(&t), vec![Kind::WeakTlsVersion, Kind::WeakCipher]);
        assert_eq!(t.findings()[0].severity, Severity::High);
    }

    #[test]
    fn heartbeat_is_counted_and_overlong_noted() {
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
        t.feed(C, &rec(24, &[1, 0x40, 0x00, 0x01, 0x02, 0x03]), m(2));
        let r = t.record();
        assert_eq!(r.to_server.heartbeat, 1);
        assert_eq!(
            r.anomalies,
            vec!["to_server: heartbeat_payload_overlong at frame 2"]
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Deterministic xorshift: random streams, some starting with valid record headers,
        // cut at random points, with random gaps and ends.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (c, s) = tls12_streams(0xc02f, 0x0303, Some(&cert_der()));
        for round in 0..400 {
            let mut t = session().follow_to_close(round % 2 == 0);
            for _ in 0..20 {
                let dir = if next() % 2 == 0 { C } else { S };
                let len = (next() % 300) as usize;
                let mut chunk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                match next() % 4 {
                    // Mutate a real stream so that parsing goes deep before it breaks.
                    0 => {
                        chunk = if dir == C { c.clone() } else { s.clone() };
                        let i = (next() as usize) % chunk.len();
                        chunk[i] = next() as u8;
                    }
                    1 if len >= 5 => chunk[..5].copy_from_slice(&[22, 3, 3, 0, 200]),
                    2 => t.gap(dir, next() % 100, m(1)),
                    _ => {}
                }
                t.feed(dir, &chunk, m(2));
                if next() % 50 == 0 {
                    t.end(dir, EndKind::Fin, m(3));
                }
            }
            let _ = t.record();
            let _ = t.findings();
        }
    }

    // ---- partial captures ---------------------------------------------------------------

    /// A capture begun mid-session: one TLS 1.2 close_notify, encrypted with AES-GCM (2
    /// bytes of alert, 8 of explicit nonce, 16 of tag), then FIN. Read in clear it would be
    /// thirteen alerts and a handshake failure.
    #[test]
    fn encrypted_alert_mid_stream_is_one_encrypted_alert_not_a_failure() {
        let mut t = session();
        let body: Vec<u8> = (0u8..26).map(|i| i.wrapping_mul(37)).collect();
        t.feed(C, &rec(21, &body), m(1));
        t.end(C, EndKind::Fin, m(2));
        t.end(S, EndKind::Fin, m(4));
        let r = t.record();
        assert_eq!(r.alerts.len(), 1);
        assert_eq!(r.alerts[0].level, ReportAlertLevel::Encrypted);
        assert_eq!(r.alerts[0].description, None);
        assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
        assert_eq!(evidence(&t).rule, "handshake_not_captured");
        assert_eq!(evidence(&t).confidence, Confidence::Likely);
        assert!(t.findings().is_empty());
    }

    /// Two alerts in one clear record during a handshake seen in clear are still read.
    #[test]
    fn several_clear_alerts_in_one_record_during_the_handshake() {
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
        t.feed(
            S,
            &rec(22, &hs(2, &server_hello_body(0x0303, [1; 32], 0xc02f, &[]))),
            m(2),
        );
        t.feed(C, &rec(21, &[1, 0, 2, 40]), m(3));
        assert_eq!(t.record().alerts.len(), 2);
        assert_eq!(t.outcome(), HandshakeOutcome::Failed);
    }

    /// Records cut by a snap length: a reset before completion proves nothing.
    #[test]
    fn reset_after_cut_records_is_undecided() {
        let mut t = session();
        let full = rec(22, &hs(1, &ch12()));
        t.feed(C, &full[..30], m(1));
        t.gap(C, (full.len() - 30) as u64, m(1));
        t.end(C, EndKind::Reset, m(3));
        assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
        assert_eq!(evidence(&t).rule, "deciding_bytes_not_captured");
        assert_eq!(evidence(&t).frame, 3);
        assert!(t.findings().is_empty());
    }

    /// Only the server's side: its hello is there, the client's records are not.
    #[test]
    fn server_side_only_is_undecided() {
        let mut t = session();
        t.feed(
            S,
            &rec(22, &hs(2, &server_hello_body(0x0303, [1; 32], 0xc02f, &[]))),
            m(2),
        );
        t.end(S, EndKind::Fin, m(5));
        assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
        assert_eq!(evidence(&t).rule, "client_side_not_captured");
    }

    #[test]
    fn client_hello_after_refused_starttls_fails_at_once() {
        let mut t = TlsSession::new(TlsContext {
            starttls: true,
            starttls_refused: Some(454),
            ..TlsContext::default()
        });
        t.feed(C, &rec(22, &hs(1, &ch12())), m(6));
        assert_eq!(t.outcome(), HandshakeOutcome::Failed);
        assert_eq!(evidence(&t).rule, "client_hello_after_starttls_refused");
        assert_eq!(evidence(&t).confidence, Confidence::Certain);
        let f = t.findings();
        assert_eq!((f[0].kind, f[0].frame), (Kind::TlsHandshakeFailure, 6));
        assert_eq!(f[0].evidence["starttls_refused_reply"], 454);
        assert!(f[0].message.contains("refused STARTTLS (454)"));
    }
}
