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
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlsRecord {
    /// Version the server selected (`TLSv1.3`), null without a ServerHello.
    pub version: Option<String>,
    /// IANA name of the suite the server selected, `0xNNNN` when unknown.
    pub cipher: Option<String>,
    pub sni: Option<String>,
    pub handshake: HandshakeOutcome,
    pub alerts: Vec<AlertRecord>,
    pub ja3: Option<String>,
    pub ja3s: Option<String>,
    pub ja4: Option<String>,
}
