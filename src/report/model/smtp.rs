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
    /// Text of that reply (first line).
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub reply_text: Option<String>,
    /// Frame of the STARTTLS command.
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub frame: Option<u64>,
    /// The capture holding that frame, when it is not the flow's (a connection that continued
    /// into the next file of a chained capture); omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_capture: Option<String>,
    /// The client's bytes after STARTTLS began with a TLS record.
    #[serde(skip_serializing_if = "super::detail::lean_false")]
    pub client_tls: bool,
    /// The server's bytes after its 2xx reply began with a TLS record.
    #[serde(skip_serializing_if = "super::detail::lean_false")]
    pub server_tls: bool,
    /// Plaintext bytes the client pipelined after STARTTLS before the server's reply.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub client_injected_bytes: u64,
    /// Plaintext bytes the server sent after its 2xx reply that answered no command.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub server_injected_bytes: u64,
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
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub reply: Option<u16>,
    /// Frame of the AUTH command.
    pub frame: u64,
    /// The capture holding that frame, when it is not the flow's (a connection that continued
    /// into the next file of a chained capture); omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_capture: Option<String>,
    pub ts: Timestamp,
    /// SASL authorization identity when it differs from the user (PLAIN).
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub authzid: Option<String>,
    /// Password, bearer token or challenge response: `{"redacted": true, "length": N}`
    /// unless secrets are revealed; null when none was sent.
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub secret: Option<SecretRecord>,
    /// Crackable form for hashcat (CRAM-MD5 10200, NetNTLMv1 5500, NetNTLMv2 5600); only
    /// with revealed secrets.
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub hashcat: Option<String>,
    /// Frame of the client line that carried the secret.
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub secret_frame: Option<u64>,
    /// Tells secrets apart across attempts (brute force vs. one wrong password retried)
    /// without keeping them; never written out.
    #[serde(skip)]
    pub secret_tag: Option<u64>,
    /// The capture holding that frame, when it is not the flow's (a connection that continued
    /// into the next file of a chained capture); omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_frame_capture: Option<String>,
    /// The client cancelled the exchange with `*`.
    #[serde(skip_serializing_if = "super::detail::lean_false")]
    pub cancelled: bool,
    /// Messages of the exchange that could not be decoded (bad base64 or structure).
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub undecodable: u32,
    /// A client line of the exchange was cut by the capture (snap length or loss). Written
    /// only when true, as the next two: they describe partial captures, and complete ones
    /// keep their records unchanged.
    #[serde(skip_serializing_if = "is_false")]
    pub cut: bool,
    /// The start of a user name whose end was not captured (`username` is then null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_partial: Option<String>,
    /// Known from the server's replies alone: the client's lines are not in the capture.
    #[serde(skip_serializing_if = "is_false")]
    pub inferred: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One mail transaction (MAIL FROM up to the end of its message, RSET or the next MAIL).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TransactionRecord {
    /// Frame of the MAIL command.
    pub frame: u64,
    /// The capture holding that frame, when it is not the flow's (a connection that continued
    /// into the next file of a chained capture); omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_capture: Option<String>,
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub mail_reply: Option<u16>,
    /// RCPT commands, and those answered 2xx.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub recipients: u32,
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub recipients_accepted: u32,
    /// "data", "bdat" or null when no message body was sent.
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub body: Option<&'static str>,
    /// Message bytes that crossed (DATA body with its end line, or BDAT chunks).
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub body_bytes: u64,
    /// Reply to the end of the message (after the final dot or the BDAT LAST chunk).
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub reply: Option<u16>,
    /// The transaction was smuggled: it began after a non-standard end-of-data inside an
    /// earlier message's body, and the server took it as commands (`smtp_smuggling`).
    /// Written only when true.
    #[serde(skip_serializing_if = "is_false")]
    pub smuggled: bool,
}

/// Counters of one SMTP dialog; every cap reached shows here.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SmtpStats {
    /// Command lines (AUTH responses and message bodies excluded).
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub commands: u64,
    /// Commands with a verb smtpaudit does not know.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub unknown_commands: u64,
    /// Replies (a multi-line reply counts once).
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub replies: u64,
    /// Codes of the first replies in order (at most 64).
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub reply_codes: Vec<u16>,
    /// Replies that matched no outstanding command.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub unmatched_replies: u64,
    /// The client sent a command while an earlier one was unanswered (RFC 2920).
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub pipelining_used: bool,
    /// DATA body bytes skipped, end-of-data line included.
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub data_bytes: u64,
    /// BDAT chunk bytes skipped.
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub bdat_bytes: u64,
    /// Gaps in either direction, and their bytes.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub gaps: u64,
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub gap_bytes: u64,
    /// Lines longer than the 8 KiB cap (cut there).
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub long_lines: u64,
    /// Bytes that were neither commands nor replies nor message data.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub non_smtp_bytes: u64,
    /// Transactions, AUTH exchanges, capabilities or outstanding commands beyond their caps.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub dropped_records: u64,
    /// AUTH exchanges answered 4xx/5xx, including those beyond the cap on kept exchanges.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub auth_failures: u64,
    /// Commands known only from the reply that answered them (the client's side of the
    /// connection is not in the capture). Written only when not zero.
    #[serde(skip_serializing_if = "is_zero")]
    pub inferred_commands: u64,
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
    /// EHLO keywords offered after a STARTTLS that was answered 2xx but not followed by TLS
    /// (the dialog went on in plaintext).
    #[serde(skip_serializing_if = "super::detail::lean_empty")]
    pub capabilities_after_starttls: Vec<String>,
    /// Mechanisms of the AUTH capability offered before TLS.
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub auth_offered: Vec<String>,
    /// RCPT commands over all transactions.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub recipients: u32,
    /// Messages whose body crossed the wire (DATA or BDAT).
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub messages: u32,
    /// The first transactions (at most 64).
    #[serde(skip_serializing_if = "super::detail::lean_empty")]
    pub transaction_list: Vec<TransactionRecord>,
    /// Whether the server accepted a bare LF (an LF without CR before it) from the client:
    /// true when it answered 2xx/3xx to a command line or a message that held one, false
    /// when it refused every one (4xx/5xx). Omitted when the client sent none, or no reply
    /// to it was seen. Per-server posture aggregates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bare_lf_accepted: Option<bool>,
    #[serde(skip_serializing_if = "super::detail::lean_quiet_stats")]
    pub stats: SmtpStats,
}
