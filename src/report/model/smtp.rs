//! `flows[].smtp` of the report contract.

use serde::Serialize;

use crate::time::Timestamp;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StartTlsRecord {
    /// STARTTLS was in the server's EHLO capabilities.
    pub offered: bool,
    /// The client sent STARTTLS.
    pub issued: bool,
    /// Numeric reply to STARTTLS; null when not issued (or no reply seen).
    pub reply: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthOutcome {
    Success,
    Failure,
    Unknown,
}

/// A secret as the report shows it: without `--reveal-secrets` only that a secret of some
/// length was sent.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SecretRecord {
    Redacted { redacted: bool, length: usize },
    Revealed { value: String },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuthRecord {
    pub mechanism: String,
    pub username: Option<String>,
    pub in_cleartext: bool,
    pub outcome: AuthOutcome,
    /// Final numeric reply (235, 535, ...), null when none was seen.
    pub reply: Option<u16>,
    pub frame: u64,
    pub ts: Timestamp,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SmtpRecord {
    /// The server's greeting line, code included.
    pub banner: Option<String>,
    /// Argument of the first EHLO/HELO.
    pub helo: Option<String>,
    /// EHLO keywords as offered before TLS (full lines without the code, e.g. "AUTH PLAIN LOGIN").
    pub capabilities: Vec<String>,
    pub starttls: StartTlsRecord,
    pub auth: Vec<AuthRecord>,
    /// Mail transactions (MAIL FROM) attempted.
    pub transactions: u32,
}
