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
    /// After a gap: looking for the next plausible record header.
    Resync,
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
        let mut data = data;
        while !data.is_empty() {
            let framing = match self.dirs.get(d) {
                Some(s) => s.framing,
                None => break,
            };
            let next = match framing {
                Framing::Stopped => break,
                Framing::Resync => match (0..data.len())
                    .find(|&i| data.get(i..).is_some_and(record::plausible_header))
                {
                    Some(i) => {
                        data = data.get(i..).unwrap_or_default();
                        Framing::Header {
                            buf: [0; HEADER_LEN],
                            have: 0,
                        }
                    }
                    None => break,
                },
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
        s.framing = Framing::Resync;
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
        let began = self.client_hellos > 0
            || self
                .dirs
                .iter()
                .any(|s| s.stats.records > 0 || s.v2_records > 0);
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
            Outcome::Pending => None,
            Outcome::Complete {
                rule,
                confidence,
                meta,
            } => Some(OutcomeEvidence {
                rule: rule.to_string(),
                confidence: *confidence,
                frame: meta.frame,
            }),
            Outcome::Failed(f) => Some(OutcomeEvidence {
                rule: f.rule.to_string(),
                confidence: f.confidence,
                frame: f.meta.frame,
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
        });
        let server = self.server_hello.as_ref().map(|(sh, m)| ServerHelloRecord {
            legacy_version: sh.version.name(),
            extensions: sh.extensions.clone(),
            alpn: sh.alpn.clone(),
            resumed: self.resumed(),
            frame: m.frame,
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
            out.push(
                Finding::new(Kind::TlsHandshakeFailure, Severity::Medium, f.meta, message)
                    .with("rule", f.rule)
                    .with("confidence", confidence_str(f.confidence))
                    .with("stage", f.stage)
                    .with("sender", who)
                    .with("description", f.description.clone()),
            );
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
                // A clear alert is 2 bytes per alert; anything else is ciphertext.
                let clear = !s.keys_changed
                    && hdr.len >= 2
                    && hdr.len % 2 == 0
                    && hdr.len as usize <= SMALL_BODY;
                if !clear {
                    self.push_alert(AlertRecord {
                        from: sender(dir),
                        level: ReportAlertLevel::Encrypted,
                        description: None,
                        frame: meta.frame,
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
            ContentType::ALERT
                if hdr.len >= 2 && hdr.len % 2 == 0 && hdr.len as usize <= SMALL_BODY =>
            {
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
        if !s.anomaly_reported {
            s.anomaly_reported = true;
            self.note(format!("{}: {what} at frame {}", dir_str(dir), meta.frame));
        }
        if self.outcome == Outcome::Pending {
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
