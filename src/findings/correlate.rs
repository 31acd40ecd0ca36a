//! Facts that relate connections. Every finished flow of a run passes through one
//! [`Correlator`] in report order (the order one flow table closes them, whatever the thread
//! count), so what it decides is the same for any `--threads`. It is the one place that
//! remembers servers and clients across connections; every table in it is capped and its
//! overflow counted.
//!
//! A flow may arrive with [`FlowHints`]: observations its own analysis could not turn into a
//! finding alone (a plaintext client met by a silent server on a port that is not 465 needs
//! to know whether that server spoke implicit TLS earlier in the run).

use std::collections::HashSet;
use std::net::IpAddr;

use crate::findings::downgrade::StarttlsMemory;
use crate::findings::fallback::FallbackTracker;
use crate::findings::spraying::SprayTracker;
use crate::findings::{Finding, Kind, Severity};
use crate::flow::EventMeta;
use crate::report::model::{FlowClass, FlowRecord};

/// Servers (address and port) remembered as speaking TLS from the first byte.
const MAX_IMPLICIT_TLS_SERVERS: usize = 65_536;

/// What a flow's analysis saw but could not decide alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowHints {
    /// The client spoke plaintext SMTP (the frame of its first command) and the server never
    /// sent a byte before the connection ended: an implicit-TLS server waiting for a
    /// ClientHello behaves exactly so.
    pub silent_server: Option<EventMeta>,
    /// How (`fin` or `reset`) and when the silent server ended the connection.
    pub server_end: Option<(&'static str, EventMeta)>,
}

/// Why a silent server is taken for an implicit-TLS one (`evidence.basis`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SilentServerBasis {
    /// Port 465 is implicit TLS by RFC 8314.
    Port465,
    /// The same server address and port completed or began a TLS handshake from the first
    /// byte earlier in the run.
    SeenImplicitTls,
}

impl SilentServerBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            SilentServerBasis::Port465 => "port_465",
            SilentServerBasis::SeenImplicitTls => "server_seen_implicit_tls",
        }
    }
}

/// The `tls_mode_mismatch` of a plaintext client that waited on a silent server; `server_end`
/// says how (`fin` or `reset`) and when the server ended the connection, if it did.
pub fn silent_server_mismatch(
    meta: EventMeta,
    server_port: u16,
    basis: SilentServerBasis,
    server_end: Option<(&'static str, EventMeta)>,
) -> Finding {
    let mut f = Finding::new(
        Kind::TlsModeMismatch,
        Severity::Medium,
        meta,
        format!(
            "client spoke plaintext SMTP but the server on port {server_port} never answered: it \
             likely waits for a TLS ClientHello (implicit TLS)"
        ),
    )
    .with("tls_side", "server")
    .with("server_port", server_port)
    .with("server_silent", true)
    .with("basis", basis.as_str())
    .with("confidence", "likely")
    .with("server_closed", server_end.map_or("no", |(how, _)| how));
    if let Some((_, end)) = server_end {
        f = f.with("server_close_frame", end.frame);
    }
    f
}

/// Counters of the correlator's tables, for the run's report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorrelatorStats {
    /// Servers not remembered because the table was full.
    pub implicit_tls_servers_dropped: u64,
}

/// Cross-connection state of one run.
#[derive(Debug, Default)]
pub struct Correlator {
    implicit_tls_servers: HashSet<(IpAddr, u16)>,
    starttls: StarttlsMemory,
    fallback: FallbackTracker,
    spray: SprayTracker,
    stats: CorrelatorStats,
}

impl Correlator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> &CorrelatorStats {
        &self.stats
    }

    /// Cross-connection findings decided after the flow they belong to was reported (its
    /// evidence came from a connection that closed later); reported with the run's findings.
    pub fn take_late(&mut self) -> Vec<Finding> {
        let mut late = self.starttls.take_late();
        late.extend(self.fallback.take_late());
        late.sort_by_key(|f| (f.ts, f.frame, f.kind));
        late
    }

    /// A finished flow, in report order: amends its class and findings with what earlier
    /// flows show, then remembers what later flows may need from it.
    pub fn flow(
        &mut self,
        record: &mut FlowRecord,
        findings: &mut Vec<Finding>,
        hints: &FlowHints,
    ) {
        if let Some(meta) = hints.silent_server {
            let server = (record.server.ip, record.server.port);
            let already = findings.iter().any(|f| f.kind == Kind::TlsModeMismatch);
            if !already && self.implicit_tls_servers.contains(&server) {
                let mut f = silent_server_mismatch(
                    meta,
                    record.server.port,
                    SilentServerBasis::SeenImplicitTls,
                    hints.server_end,
                );
                f.flow.clone_from(&record.id);
                findings.push(f);
                findings.sort_by_key(|f| (f.frame, f.kind));
                record.class = FlowClass::Unknown;
            }
        }
        self.starttls.observe(record, findings);
        self.fallback.observe(record, findings);
        findings.extend(self.spray.observe(record));
        for f in findings.iter_mut().filter(|f| f.flow.is_empty()) {
            f.flow.clone_from(&record.id);
        }
        findings.sort_by_key(|f| (f.frame, f.kind));
        if record.class == FlowClass::ImplicitTls {
            let server = (record.server.ip, record.server.port);
            if self.implicit_tls_servers.len() < MAX_IMPLICIT_TLS_SERVERS {
                self.implicit_tls_servers.insert(server);
            } else if !self.implicit_tls_servers.contains(&server) {
                self.stats.implicit_tls_servers_dropped += 1;
            }
        }
    }
}
