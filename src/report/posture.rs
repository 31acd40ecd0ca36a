//! The per-server posture: what every connection to one server (address and port) showed,
//! folded as flows arrive. The text, HTML and JSON reports all show it from here, so the three
//! agree on what "STARTTLS sometimes missing" or "2 failures" means.
//!
//! Memory is bounded: at most [`MAX_SERVERS`] servers (later ones are counted, not kept), and
//! each set (versions, ciphers, clients that fell back) holds at most [`MAX_SET`] entries.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use super::model::{ClassCounts, EndpointRecord, FlowRecord};
use crate::findings::{Finding, Kind};

/// Servers kept; flows to servers beyond it are counted in [`Postures::flows_not_tabulated`].
pub const MAX_SERVERS: usize = 10_000;
/// Distinct values remembered per set of one server.
pub const MAX_SET: usize = 8;

/// Whether a server offered STARTTLS in the EHLO replies seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StarttlsPosture {
    /// No EHLO reply seen (implicit TLS, failed connections, one-sided captures).
    Unknown,
    Always,
    /// Offered in some sessions, missing in others: a downgrade on the path, or several
    /// servers behind one address.
    Sometimes,
    Never,
}

/// Failed connections to a server, by the finding that says so (a flow counts once per kind).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailureCounts {
    pub connection_failed: u64,
    pub tls_handshake_failure: u64,
    pub tls_mode_mismatch: u64,
    pub starttls_refused: u64,
}

impl FailureCounts {
    pub fn total(&self) -> u64 {
        self.connection_failed
            + self.tls_handshake_failure
            + self.tls_mode_mismatch
            + self.starttls_refused
    }
}

/// One server's posture.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerPosture {
    pub flows: u64,
    pub classes: ClassCounts,
    /// Flows where the server's EHLO capabilities were seen before TLS.
    pub ehlo_seen: u64,
    /// Of those, flows where STARTTLS was among them.
    pub starttls_offered: u64,
    /// Flows where AUTH was advertised before TLS.
    pub auth_offered_before_tls: u64,
    /// Flows where an AUTH exchange actually ran in clear.
    pub auth_used_in_clear: u64,
    /// Flows where the server took a bare line ending: a smuggled end of data it honoured, or
    /// commands or body lines ended by a bare LF that it accepted (`smtp.bare_lf_accepted`).
    pub bare_line_endings_accepted: u64,
    pub tls_versions: BTreeSet<String>,
    pub ciphers: BTreeSet<String>,
    pub failures: FailureCounts,
    /// Flows with at least one of those failures.
    pub failed_flows: u64,
    /// Client addresses that fell back to plaintext with this server.
    pub fell_back_clients: BTreeSet<String>,
}

impl ServerPosture {
    pub fn starttls(&self) -> StarttlsPosture {
        if self.ehlo_seen == 0 {
            StarttlsPosture::Unknown
        } else if self.starttls_offered == 0 {
            StarttlsPosture::Never
        } else if self.starttls_offered >= self.ehlo_seen {
            StarttlsPosture::Always
        } else {
            StarttlsPosture::Sometimes
        }
    }

    fn add_flow(&mut self, flow: &FlowRecord, findings: &[Finding]) {
        self.flows += 1;
        self.classes.add(flow.class);
        if let Some(smtp) = &flow.smtp {
            if !smtp.capabilities.is_empty() {
                self.ehlo_seen += 1;
            }
            if smtp.starttls.offered {
                self.starttls_offered += 1;
            }
            // Capabilities are those offered before TLS; "AUTH PLAIN LOGIN" or the
            // pre-RFC 4954 "AUTH=LOGIN" both count.
            if smtp.capabilities.iter().any(|c| is_auth_capability(c)) {
                self.auth_offered_before_tls += 1;
            }
            if smtp.auth.iter().any(|a| a.in_cleartext) {
                self.auth_used_in_clear += 1;
            }
        }
        if let Some(tls) = &flow.tls {
            insert_capped(&mut self.tls_versions, tls.version.as_deref());
            insert_capped(&mut self.ciphers, tls.cipher.as_deref());
        }
        let has = |k: Kind| findings.iter().any(|f| f.kind == k);
        let fc = &mut self.failures;
        let before = fc.total();
        fc.connection_failed += u64::from(has(Kind::ConnectionFailed));
        fc.tls_handshake_failure += u64::from(has(Kind::TlsHandshakeFailure));
        fc.tls_mode_mismatch += u64::from(has(Kind::TlsModeMismatch));
        fc.starttls_refused += u64::from(has(Kind::StarttlsRefused));
        if fc.total() > before {
            self.failed_flows += 1;
        }
        let smuggled = findings.iter().any(|f| {
            f.kind == Kind::SmtpSmuggling
                && f.evidence.get("server_reaction").and_then(Value::as_str)
                    == Some("accepted_as_end")
        });
        let bare_lf = flow
            .smtp
            .as_ref()
            .and_then(|s| s.bare_lf_accepted)
            .unwrap_or(false);
        if smuggled || bare_lf {
            self.bare_line_endings_accepted += 1;
        }
    }
}

/// Every server's posture, keyed by address and port (different ports are different servers).
#[derive(Debug, Default)]
pub struct Postures {
    servers: BTreeMap<(IpAddr, u16), ServerPosture>,
    flows_not_tabulated: u64,
}

impl Postures {
    /// Folds one finished flow and its findings in.
    pub fn add_flow(&mut self, flow: &FlowRecord, findings: &[Finding]) {
        let key = (flow.server.ip, flow.server.port);
        if let Some(sp) = self.servers.get_mut(&key) {
            sp.add_flow(flow, findings);
        } else if self.servers.len() < MAX_SERVERS {
            self.servers
                .entry(key)
                .or_default()
                .add_flow(flow, findings);
        } else {
            self.flows_not_tabulated += 1;
        }
    }

    /// Notes a `plaintext_fallback` (from a flow or run-wide) under the server the plaintext
    /// went to.
    pub fn add_finding(&mut self, f: &Finding) {
        if f.kind != Kind::PlaintextFallback {
            return;
        }
        let get = |k: &str| f.evidence.get(k).and_then(Value::as_str);
        let port = f.evidence.get("plaintext_port").and_then(Value::as_u64);
        let (Some(client), Some(server), Some(port)) = (get("client_ip"), get("server_ip"), port)
        else {
            return;
        };
        let (Ok(ip), Ok(port)) = (server.parse::<IpAddr>(), u16::try_from(port)) else {
            return;
        };
        if let Some(sp) = self.servers.get_mut(&(ip, port)) {
            insert_capped(&mut sp.fell_back_clients, Some(client));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (EndpointRecord, &ServerPosture)> {
        self.servers
            .iter()
            .map(|(&(ip, port), sp)| (EndpointRecord { ip, port }, sp))
    }

    pub fn flows_not_tabulated(&self) -> u64 {
        self.flows_not_tabulated
    }

    /// The JSON form (the `servers` array of the document).
    pub fn to_json(&self) -> Vec<ServerJson<'_>> {
        self.iter()
            .map(|(server, p)| ServerJson {
                server,
                starttls: p.starttls(),
                posture: p,
            })
            .collect()
    }
}

/// One entry of the JSON `servers` array.
#[derive(Serialize)]
pub struct ServerJson<'a> {
    pub server: EndpointRecord,
    pub starttls: StarttlsPosture,
    #[serde(flatten)]
    pub posture: &'a ServerPosture,
}

pub fn is_auth_capability(c: &str) -> bool {
    let c = c.trim_start();
    c.get(..4).is_some_and(|h| h.eq_ignore_ascii_case("AUTH"))
        && matches!(c.as_bytes().get(4), None | Some(b' ') | Some(b'='))
}

fn insert_capped(set: &mut BTreeSet<String>, v: Option<&str>) {
    if let Some(v) = v
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .filter(|v| !set.contains(*v))
        && set.len() < MAX_SET
    {
        set.insert(v.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_capability_forms() {
        assert!(is_auth_capability("AUTH PLAIN LOGIN"));
        assert!(is_auth_capability("auth=LOGIN"));
        assert!(is_auth_capability("AUTH"));
        assert!(!is_auth_capability("AUTHX"));
        assert!(!is_auth_capability("STARTTLS"));
    }
}
