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

use std::sync::{Arc, Mutex};

use super::cert::{self, CertInfo, CertMemo};
use super::handshake::{self, ClientHello, ServerHello};
use super::ja3::{self, Ja3};
use super::ja4::{self, Ja4};
use super::names::{
    AlertDescription, AlertLevel, ContentType, HandshakeType, Version, cipher_name,
    cipher_weaknesses, sslv2_cipher_name, sslv2_cipher_weaknesses,
};
use super::record::{self, HEADER_LEN, RecordHeader};
use super::{EndKind, TlsContext};

mod decrypt;
mod early;
mod framing;
mod keys;
mod messages;
mod outcome;
mod records;
mod report;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
#[cfg(test)]
pub(crate) use tests::cert_der as test_cert_der;

use decrypt::Decryption;
use framing::Framing;
use messages::HsBuf;
use outcome::{Failure, Outcome, Tls13Progress};

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
    /// Why the outcome stays open at the end although the connection closed: the bytes that
    /// would decide it were never captured (cut by a snap length or lost, before the capture
    /// began, or in the direction the capture lacks). Reported as `incomplete`, never as a
    /// failure.
    undecided: Option<(&'static str, EventMeta)>,
    /// The last packet that brought bytes, for evidence when the capture ends first.
    last_meta: EventMeta,
    anomalies: Vec<String>,
    /// Keys and decryption state, when the run's key store has this session's secrets.
    dec: Option<Box<Decryption>>,
    /// Certificates already inspected by the analysis this session belongs to.
    certs: Option<Arc<Mutex<CertMemo>>>,
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
            dec: None,
            certs: None,
        }
    }

    /// Inspect certificates through `memo`, shared by the sessions of one analysis: the same
    /// server certificate is then parsed once, not in every connection that shows it.
    pub fn with_cert_memo(mut self, memo: Arc<Mutex<CertMemo>>) -> Self {
        self.certs = Some(memo);
        self
    }

    /// Keep framing records after the handshake is settled, so that application data is
    /// counted to the end and encrypted alerts at close (close_notify) are listed. Off by
    /// default: a settled direction returns [`Interest::Done`] after its first
    /// application-data record, and the flow table may stop reassembling it.
    pub fn follow_to_close(mut self, on: bool) -> Self {
        self.follow_to_close = on;
        self
    }

    /// When the (first) ClientHello was seen.
    pub fn client_hello_meta(&self) -> Option<EventMeta> {
        self.client_hello.as_ref().map(|(_, m)| *m)
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
