//! The report contract (`schema_version` 1), as types separate from the analyzers' domain
//! types. Field names here are what SIEMs and scripts rely on: see `docs/report.md` and
//! `schema/report.schema.json`. Adding fields is fine; renaming is not.

pub mod detail;
mod smtp;
mod tls;

pub use detail::Detail;

pub use smtp::*;
pub use tls::*;

use std::net::IpAddr;

use serde::Serialize;

use crate::capture::CaptureFormat;
use crate::decode::DecodeStats;
use crate::findings::{Finding, Severity};
use crate::flow::{CloseReason, DirStats, FlowTableStats, RoleSource};
use crate::time::Timestamp;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub version: &'static str,
}

impl Default for ToolInfo {
    fn default() -> Self {
        ToolInfo {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// One input capture and what reading it showed.
#[derive(Clone, Debug, Serialize)]
pub struct CaptureRecord {
    pub path: String,
    /// Null when the input could not be read at all.
    pub format: Option<CaptureFormat>,
    /// Why the input could not be read at all (the message stderr shows); null when it was.
    pub error: Option<String>,
    pub packets: u64,
    /// Captured bytes of all packets (sum of captured lengths).
    pub bytes: u64,
    pub link_types: Vec<String>,
    pub warnings: Vec<String>,
    /// First and last packet time.
    pub first_packet: Option<Timestamp>,
    pub last_packet: Option<Timestamp>,
    /// TCP flows seen in all, reported or not.
    pub tcp_flows: u64,
    /// Flows reported (mail by content or port).
    pub reported_flows: u64,
    pub decode: DecodeStats,
    pub flow_table: FlowTableStats,
    /// The file this one continues (several files that are one capture, chained by time);
    /// null for a file analysed on its own or the first of a chain.
    pub chained_to: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct EndpointRecord {
    pub ip: IpAddr,
    pub port: u16,
}

impl From<crate::flow::Endpoint> for EndpointRecord {
    fn from(e: crate::flow::Endpoint) -> Self {
        EndpointRecord {
            ip: e.ip,
            port: e.port,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowClass {
    Plaintext,
    Starttls,
    ImplicitTls,
    Unknown,
}

impl FlowClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowClass::Plaintext => "plaintext",
            FlowClass::Starttls => "starttls",
            FlowClass::ImplicitTls => "implicit_tls",
            FlowClass::Unknown => "unknown",
        }
    }
}

/// TCP facts of a reported flow.
#[derive(Clone, Debug, Serialize)]
pub struct TcpRecord {
    #[serde(skip_serializing_if = "detail::lean_syn")]
    pub roles: RoleSource,
    /// True when the analysis swapped the table's client/server guess after seeing content.
    #[serde(skip_serializing_if = "detail::lean_false")]
    pub roles_corrected: bool,
    pub close: CloseReason,
    pub first_frame: u64,
    pub last_frame: u64,
    /// The capture holding that frame, when it is not the flow's (a connection that continued
    /// into the next file of a chained capture); omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_frame_capture: Option<String>,
    #[serde(skip_serializing_if = "detail::lean_normal_dir")]
    pub to_server: DirStats,
    #[serde(skip_serializing_if = "detail::lean_normal_dir")]
    pub to_client: DirStats,
}

/// One reported TCP connection.
#[derive(Clone, Debug, Serialize)]
pub struct FlowRecord {
    pub id: String,
    /// Path of the capture this flow came from (as given on the command line).
    pub capture: String,
    pub client: EndpointRecord,
    pub server: EndpointRecord,
    pub start: Timestamp,
    pub end: Timestamp,
    pub duration_secs: f64,
    pub class: FlowClass,
    pub smtp: Option<Box<SmtpRecord>>,
    pub tls: Option<Box<TlsRecord>>,
    pub tcp: TcpRecord,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ClassCounts {
    pub plaintext: u64,
    pub starttls: u64,
    pub implicit_tls: u64,
    pub unknown: u64,
}

impl ClassCounts {
    pub fn add(&mut self, class: FlowClass) {
        match class {
            FlowClass::Plaintext => self.plaintext += 1,
            FlowClass::Starttls => self.starttls += 1,
            FlowClass::ImplicitTls => self.implicit_tls += 1,
            FlowClass::Unknown => self.unknown += 1,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SeverityCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub info: u64,
}

impl SeverityCounts {
    pub fn add(&mut self, s: Severity) {
        match s {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
            Severity::Info => self.info += 1,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub flows: u64,
    pub classes: ClassCounts,
    pub findings: SeverityCounts,
    /// Flows with TLS, by whether keys decrypted them.
    pub tls_decryption: TlsDecryptionCounts,
}

/// TLS flows of the run decrypted with known secrets, and those without keys (or whose
/// keys did not decrypt them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsDecryptionCounts {
    pub decrypted: u64,
    pub not_decrypted: u64,
}

impl Summary {
    pub fn add_flow(&mut self, flow: &FlowRecord) {
        self.flows += 1;
        self.classes.add(flow.class);
        match &flow.tls {
            Some(t) if t.decrypted => self.tls_decryption.decrypted += 1,
            Some(_) => self.tls_decryption.not_decrypted += 1,
            None => {}
        }
    }
    pub fn add_finding(&mut self, f: &Finding) {
        self.findings.add(f.severity);
    }
    /// Most severe finding so far, for `--fail-on`.
    pub fn worst(&self) -> Option<Severity> {
        let c = &self.findings;
        [
            (c.critical, Severity::Critical),
            (c.high, Severity::High),
            (c.medium, Severity::Medium),
            (c.low, Severity::Low),
            (c.info, Severity::Info),
        ]
        .into_iter()
        .find(|(n, _)| *n > 0)
        .map(|(_, s)| s)
    }
}
