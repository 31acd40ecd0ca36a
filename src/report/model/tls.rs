//! `flows[].tls` of the report contract.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HandshakeOutcome {
    Complete,
    Failed,
    Incomplete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sender {
    Client,
    Server,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertLevel {
    Fatal,
    Warning,
    Encrypted,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertRecord {
    pub from: Sender,
    pub level: AlertLevel,
    /// RFC 8446 name (`protocol_version`), `unknown_0xNN` for unknown codes, null when encrypted.
    pub description: Option<String>,
    pub frame: u64,
    /// The capture holding that frame, when it is not the flow's (a connection that continued
    /// into the next file of a chained capture); omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_capture: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlsRecord {
    /// Version the server selected (`TLSv1.3`), null without a ServerHello.
    pub version: Option<String>,
    /// IANA name of the suite the server selected, `0xNNNN` when unknown.
    pub cipher: Option<String>,
    pub sni: Option<String>,
    pub handshake: HandshakeOutcome,
    /// Records of this session were decrypted and authenticated with known secrets.
    pub decrypted: bool,
    /// Where the session's secrets came from (`keylog`, `pcapng_dsb`); omitted when the
    /// run had none for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_source: Option<String>,
    pub alerts: Vec<AlertRecord>,
    pub ja3: Option<String>,
    pub ja3s: Option<String>,
    pub ja4: Option<String>,
    /// Which rule decided `handshake`, and how sure it is; null while `incomplete`.
    #[serde(skip_serializing_if = "super::detail::lean_plain_outcome")]
    pub outcome_evidence: Option<OutcomeEvidence>,
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub client_hello_seen: bool,
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub server_hello_seen: bool,
    /// The server answered the first ClientHello with a HelloRetryRequest (RFC 8446 4.1.4).
    #[serde(skip_serializing_if = "super::detail::lean_false")]
    pub hello_retry_request: bool,
    /// What the client offered.
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub client: Option<ClientHelloRecord>,
    /// What the server chose beyond version and cipher.
    #[serde(skip_serializing_if = "super::detail::lean_plain_server")]
    pub server: Option<ServerHelloRecord>,
    /// JA3 string before hashing (`SSLVersion,Ciphers,Extensions,Curves,PointFormats`).
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub ja3_full: Option<String>,
    /// JA3S string before hashing (`SSLVersion,Cipher,Extensions`).
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub ja3s_full: Option<String>,
    /// JA4 before hashing, sorted (`ja4_r`).
    #[serde(skip_serializing_if = "super::detail::lean_always")]
    pub ja4_r: Option<String>,
    /// Server leaf certificate, when sent in clear (TLS 1.2 and older).
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub certificate: Option<CertRecord>,
    /// Record counts per direction.
    #[serde(skip_serializing_if = "super::detail::lean_normal_tls_dir")]
    pub to_server: TlsDirRecord,
    #[serde(skip_serializing_if = "super::detail::lean_normal_tls_dir")]
    pub to_client: TlsDirRecord,
    /// Things on the wire that are not well-formed TLS, each reported once per direction
    /// (`to_server: record_too_long at frame 12`).
    #[serde(skip_serializing_if = "super::detail::lean_empty")]
    pub anomalies: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Seen on the wire in clear.
    Certain,
    /// Inferred from the sizes and order of encrypted records.
    Likely,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutcomeEvidence {
    /// `ccs_finished_both`, `app_data_both_ways`, `tls13_client_finished_then_data`,
    /// `fatal_alert`, `reset_before_completion`, `closed_before_completion`,
    /// `protocol_error`, `tls13_client_rejected_server_flight`.
    pub rule: String,
    pub confidence: Confidence,
    /// Frame that decided it.
    pub frame: u64,
    /// The capture holding that frame, when it is not the flow's (a connection that continued
    /// into the next file of a chained capture); omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_capture: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ClientHelloRecord {
    /// `legacy_version`.
    pub version: String,
    /// Sent as an SSLv2-compatible CLIENT-HELLO.
    pub sslv2_format: bool,
    pub supported_versions: Vec<String>,
    /// IANA names, `0xNNNN` when unknown (SSLv2 specs `0xNNNNNN`), in offered order.
    pub ciphers: Vec<String>,
    /// Extension type numbers in wire order.
    pub extensions: Vec<u16>,
    pub supported_groups: Vec<u16>,
    pub ec_point_formats: Vec<u8>,
    pub signature_algorithms: Vec<u16>,
    pub alpn: Vec<String>,
    /// Resumption offered: non-empty session id (pre-1.3), session ticket, PSK, early data.
    pub session_id: bool,
    pub session_ticket: bool,
    pub pre_shared_key: bool,
    pub early_data: bool,
    pub frame: u64,
    /// The capture holding that frame, when it is not the flow's (a connection that continued
    /// into the next file of a chained capture); omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_capture: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServerHelloRecord {
    /// `legacy_version` of the ServerHello (TLS 1.3 servers send `TLSv1.2` here).
    pub legacy_version: String,
    pub extensions: Vec<u16>,
    pub alpn: Option<String>,
    /// The server resumed a session: it echoed the client's session id (TLS 1.2 and older)
    /// or accepted a pre-shared key (TLS 1.3).
    pub resumed: bool,
    pub frame: u64,
    /// The capture holding that frame, when it is not the flow's (a connection that continued
    /// into the next file of a chained capture); omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_capture: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CertRecord {
    pub subject: String,
    pub issuer: String,
    /// dNSName and iPAddress entries of subjectAltName.
    #[serde(skip_serializing_if = "super::detail::lean_empty")]
    pub san: Vec<String>,
    /// RFC 3339.
    pub not_before: String,
    pub not_after: String,
    /// `RSA`, `EC`, `Ed25519`, `Ed448`, `DSA` or `unknown`.
    pub key_type: String,
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub key_bits: Option<u32>,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    #[serde(skip_serializing_if = "super::detail::lean_false")]
    pub self_signed: bool,
    /// Certificates in the server's Certificate message.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub chain_length: u32,
    /// The name checked against the certificate (SNI, else the SMTP banner host).
    #[serde(skip_serializing_if = "super::detail::lean_none")]
    pub name_checked: Option<String>,
    /// `expired`, `not_yet_valid`, `weak_key`, `self_signed`, `name_mismatch`.
    #[serde(skip_serializing_if = "super::detail::lean_empty")]
    pub problems: Vec<String>,
}

/// Records one side sent, by type. Application data is counted, never kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsDirRecord {
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub records: u64,
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub handshake: u64,
    /// Handshake records sent after the keys changed (Finished and later), TLS 1.2 and older.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub encrypted_handshake: u64,
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub change_cipher_spec: u64,
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub alert: u64,
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub application_data: u64,
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub application_data_bytes: u64,
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub heartbeat: u64,
    /// Handshake messages dropped at the reassembly caps.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub handshake_overflow: u64,
    /// Bytes the capture lost inside TLS.
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub gap_bytes: u64,
    /// Parsing of this direction stopped at an anomaly (counts are partial after it).
    #[serde(skip_serializing_if = "super::detail::lean_zero")]
    pub stopped: bool,
    /// With keys: records decrypted and authenticated, records that failed to
    /// authenticate (counted, never read), and application bytes recovered. Omitted at 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub decrypted_records: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub undecryptable_records: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub decrypted_bytes: u64,
    /// With keys, TLS 1.2 and older: times this side switched to the keys of a renegotiation
    /// (a handshake inside the encrypted stream) at its ChangeCipherSpec. Omitted at 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub renegotiations: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
