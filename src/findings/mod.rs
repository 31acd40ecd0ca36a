//! Findings: what smtpaudit tells a security engineer, as data. Analyzers create them at the
//! moment they know, with the capture time and the frame that proves them; sinks only format.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::flow::EventMeta;
use crate::report::model::EndpointRecord;
use crate::time::Timestamp;

/// Finding kinds. Those named in `../shared/spec/REPORT.md` are pinned by the report contract; names are never reused
/// for another meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    CleartextCredentials,
    TlsHandshakeFailure,
    TlsModeMismatch,
    StarttlsNotUsed,
    StarttlsRefused,
    StarttlsStripped,
    StarttlsInjection,
    WeakTlsVersion,
    WeakCipher,
    CertificateProblem,
    /// The server offered AUTH PLAIN or LOGIN before TLS was in place.
    CleartextAuthOffered,
    /// A message (DATA or BDAT) was sent without TLS.
    CleartextMail,
    /// Many failed AUTH attempts from one client, aggregated across flows.
    AuthBruteForce,
    /// A client's connection to a mail port was never established (no answer, reset, ICMP).
    ConnectionFailed,
    /// A non-standard end-of-data (`<LF>.<LF>` and kin) inside a message body.
    SmtpSmuggling,
    /// STARTTLS answered 2xx, then the dialog went on in plaintext.
    StarttlsIgnored,
    /// A server seen with STARTTLS earlier is seen without it later (cross-connection).
    StarttlsDowngrade,
    /// A failed TLS attempt followed by AUTH or mail in plaintext (cross-connection).
    PlaintextFallback,
    /// Many distinct usernames failing from one client (cross-connection).
    AuthPasswordSpraying,
    /// One username failing from many clients (cross-connection).
    AuthDistributedBruteForce,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CleartextCredentials => "cleartext_credentials",
            Kind::TlsHandshakeFailure => "tls_handshake_failure",
            Kind::TlsModeMismatch => "tls_mode_mismatch",
            Kind::StarttlsNotUsed => "starttls_not_used",
            Kind::StarttlsRefused => "starttls_refused",
            Kind::StarttlsStripped => "starttls_stripped",
            Kind::StarttlsInjection => "starttls_injection",
            Kind::WeakTlsVersion => "weak_tls_version",
            Kind::WeakCipher => "weak_cipher",
            Kind::CertificateProblem => "certificate_problem",
            Kind::CleartextAuthOffered => "cleartext_auth_offered",
            Kind::CleartextMail => "cleartext_mail",
            Kind::AuthBruteForce => "auth_brute_force",
            Kind::ConnectionFailed => "connection_failed",
            Kind::SmtpSmuggling => "smtp_smuggling",
            Kind::StarttlsIgnored => "starttls_ignored",
            Kind::StarttlsDowngrade => "starttls_downgrade",
            Kind::PlaintextFallback => "plaintext_fallback",
            Kind::AuthPasswordSpraying => "auth_password_spraying",
            Kind::AuthDistributedBruteForce => "auth_distributed_brute_force",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity, ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL_DESC: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// One finding. `flow` is empty until the analysis attaches the flow id at close, `capture`
/// until the pipeline names the file that holds `frame`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    pub flow: String,
    /// The capture file holding `frame` (in a chained capture, not always the flow's).
    pub capture: String,
    pub ts: Timestamp,
    pub frame: u64,
    pub message: String,
    pub evidence: Map<String, Value>,
    /// The client and server of the flow `flow` names, kept by the cross-connection trackers
    /// for a finding written apart from that flow (at the end of the run), so that its
    /// NDJSON/ECS line stands on its own. Not a field of the FINDING object.
    #[serde(skip)]
    pub endpoints: Option<Endpoints>,
}

/// The two ends of a flow, as its record names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub client: EndpointRecord,
    pub server: EndpointRecord,
}

impl Endpoints {
    pub fn of(flow: &crate::report::model::FlowRecord) -> Self {
        Endpoints {
            client: flow.client,
            server: flow.server,
        }
    }
}

impl Finding {
    pub fn new(
        kind: Kind,
        severity: Severity,
        meta: EventMeta,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            kind,
            severity,
            flow: String::new(),
            capture: String::new(),
            ts: meta.ts,
            frame: meta.frame,
            message: message.into(),
            evidence: Map::new(),
            endpoints: None,
        }
    }

    /// Adds one evidence field (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.evidence.insert(key.to_string(), value.into());
        self
    }
}

pub mod bruteforce;
pub mod correlate;
pub mod downgrade;
pub mod evidence;
pub mod fallback;
pub mod spraying;
pub mod window;
