//! TLS handshake analysis: records, ClientHello/ServerHello, alerts, outcome, fingerprints
//! (JA3, JA3S, JA4), certificates seen in clear, and the TLS findings.
//!
//! - [`record`]: record framing and validation (pure).
//! - [`handshake`]: hello and certificate message summaries (pure, over tls-parser).
//! - [`names`]: versions, alerts, cipher suites as newtypes that keep unknown codes.
//! - [`ja3`], [`ja4`]: fingerprints.
//! - [`cert`]: leaf certificate checks (x509-parser).
//! - [`session`]: the per-connection state machine that drives them and decides the outcome;
//!   an outcome the captured bytes cannot decide (records cut by a snap length, a capture
//!   begun mid-session or holding one side only) stays `incomplete`, with the reason. Split
//!   by responsibility: record framing, record meaning, handshake messages, outcome rules,
//!   and the report view.

pub mod cert;
pub mod decrypt;
pub mod handshake;
pub mod ja3;
pub mod ja4;
pub mod keylog;
pub mod names;
pub mod record;
pub mod session;

pub use record::looks_like_tls;
pub use session::TlsSession;

/// What the TLS session knows about its surroundings.
#[derive(Clone, Debug, Default)]
pub struct TlsContext {
    /// TLS began after an SMTP STARTTLS (rather than from the first byte).
    pub starttls: bool,
    /// Host name the server announced in its SMTP banner, checked against the certificate
    /// when no SNI was sent.
    pub banner_host: Option<String>,
    /// The server had refused STARTTLS with this reply and the client began TLS anyway: the
    /// server, still speaking SMTP, cannot answer the ClientHello.
    pub starttls_refused: Option<u16>,
    /// Secrets to decrypt the session with, when the run has any.
    pub keys: Option<std::sync::Arc<keylog::KeyStore>>,
}

/// How a direction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndKind {
    Fin,
    Reset,
}
