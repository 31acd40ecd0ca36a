//! What servers said about STARTTLS across connections: `starttls_downgrade` (a server seen
//! offering STARTTLS is later seen without it) and the context of `starttls_ignored` (one
//! server ignoring STARTTLS for several clients is a TLS-intercepting device or a capture
//! taken after decryption, not one broken client).
//!
//! An offer is known from the EHLO reply that carried it (evidence handed on while its
//! connection is still open), so a connection without STARTTLS that closes before an earlier
//! one offering it gets its finding when it finishes. Only an earlier connection whose offer
//! crossed the wire after that moment (its EHLO came late) is not known yet: the flow then
//! waits (bounded) until such an offer shows up, and the finding it gets is reported with the
//! run's findings at the end.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::findings::{Endpoints, Finding, Kind, Severity};
use crate::flow::EventMeta;
use crate::report::model::FlowRecord;
use crate::time::Timestamp;

/// Servers remembered at most; flows waiting for an earlier offer at most.
const MAX_SERVERS: usize = 65_536;
const MAX_WAITING: usize = 4_096;
/// Clients remembered per server for `starttls_ignored`.
const MAX_CLIENTS_PER_SERVER: usize = 64;

type Server = (IpAddr, u16);

/// The earliest connection that showed a server offering STARTTLS.
#[derive(Clone, Debug)]
struct Offer {
    start: Timestamp,
    flow: String,
}

/// A connection to a server without STARTTLS in its capabilities.
#[derive(Clone, Debug)]
struct Missing {
    start: Timestamp,
    flow: String,
    capture: String,
    endpoints: Endpoints,
    meta: EventMeta,
    mangled: bool,
}

/// Counters for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DowngradeDrops {
    pub servers_full: u64,
    pub waiting_full: u64,
}

#[derive(Debug, Default)]
pub struct StarttlsMemory {
    offers: HashMap<Server, Offer>,
    waiting: HashMap<Server, Vec<Missing>>,
    waiting_len: usize,
    ignored_by: HashMap<Server, HashSet<IpAddr>>,
    late: Vec<Finding>,
    drops: DowngradeDrops,
}

impl StarttlsMemory {
    pub fn drops(&self) -> DowngradeDrops {
        self.drops
    }

    /// Findings decided after their flow was reported (see the module note).
    pub fn take_late(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.late)
    }

    /// A finished flow: adds its own cross-connection findings to `findings`.
    pub fn observe(&mut self, flow: &FlowRecord, findings: &mut Vec<Finding>) {
        let Some(smtp) = flow.smtp.as_ref() else {
            return;
        };
        let server = (flow.server.ip, flow.server.port);
        self.ignored_context(server, flow, findings);
        let offered = smtp.starttls.offered;
        let mangled = findings.iter().find(|f| f.kind == Kind::StarttlsStripped);
        if offered && mangled.is_none() {
            // Known from the flow's evidence already, unless it was not handed on.
            self.offer(server, flow.start, &flow.id);
            return;
        }
        // An EHLO answered with extensions, none of them STARTTLS (or STARTTLS mangled).
        if smtp.capabilities.is_empty() && mangled.is_none() {
            return;
        }
        let meta = mangled.map_or(
            EventMeta {
                ts: flow.start,
                frame: flow.tcp.first_frame,
            },
            |f| EventMeta {
                ts: f.ts,
                frame: f.frame,
            },
        );
        let missing = Missing {
            start: flow.start,
            flow: flow.id.clone(),
            capture: flow.capture.clone(),
            endpoints: Endpoints::of(flow),
            meta,
            mangled: mangled.is_some(),
        };
        match self.offers.get(&server) {
            Some(offer) if offer.start <= flow.start => {
                findings.push(downgrade(server, &missing, offer));
            }
            _ if self.waiting_len < MAX_WAITING => {
                self.waiting.entry(server).or_default().push(missing);
                self.waiting_len += 1;
            }
            _ => self.drops.waiting_full += 1,
        }
    }

    /// A connection that began at `start` showed `server` offering STARTTLS.
    pub fn offer(&mut self, server: Server, start: Timestamp, flow: &str) {
        let offer = Offer {
            start,
            flow: flow.to_string(),
        };
        if let Some(waiting) = self.waiting.get_mut(&server) {
            // Connections that closed first but began after this offer: downgraded.
            let (later, earlier): (Vec<_>, Vec<_>) =
                waiting.drain(..).partition(|m| m.start >= offer.start);
            self.waiting_len -= later.len();
            for m in &later {
                let mut f = downgrade(server, m, &offer);
                f.flow.clone_from(&m.flow);
                f.capture.clone_from(&m.capture);
                f.endpoints = Some(m.endpoints);
                self.late.push(f);
            }
            *waiting = earlier;
        }
        let full = self.offers.len() >= MAX_SERVERS;
        match self.offers.get_mut(&server) {
            Some(known) if known.start <= offer.start => {}
            Some(known) => *known = offer,
            None if !full => {
                self.offers.insert(server, offer);
            }
            None => self.drops.servers_full += 1,
        }
    }

    /// `starttls_ignored` seen for several clients of one server: say what it likely is, and
    /// put AUTH sent after it in that light.
    fn ignored_context(&mut self, server: Server, flow: &FlowRecord, findings: &mut [Finding]) {
        if !findings.iter().any(|f| f.kind == Kind::StarttlsIgnored) {
            return;
        }
        let clients = self.ignored_by.entry(server).or_default();
        if clients.len() < MAX_CLIENTS_PER_SERVER {
            clients.insert(flow.client.ip);
        }
        let n = clients.len();
        let context = if n >= 2 {
            "tls_interception_or_decrypted_capture"
        } else {
            "broken_client_or_tls_interception"
        };
        for f in findings.iter_mut() {
            match f.kind {
                Kind::StarttlsIgnored => {
                    f.evidence.insert("context".into(), context.into());
                    f.evidence.insert("server_clients_ignored".into(), n.into());
                    if n >= 2 {
                        f.message = format!(
                            "STARTTLS was answered but the dialog went on in plaintext, as for \
                             {n} clients of this server: a TLS-intercepting device or a capture \
                             taken after decryption"
                        );
                    }
                }
                Kind::CleartextCredentials => {
                    f.evidence
                        .insert("after_starttls_ignored".into(), true.into());
                    f.message.push_str(
                        " (after a STARTTLS that was answered 2xx: in clear in this capture, \
                         possibly encrypted beyond a TLS-intercepting device)",
                    );
                }
                _ => {}
            }
        }
    }
}

fn downgrade(server: Server, m: &Missing, offer: &Offer) -> Finding {
    let how = if m.mangled { "mangled" } else { "absent" };
    let (ip, port) = server;
    Finding::new(
        Kind::StarttlsDowngrade,
        Severity::High,
        m.meta,
        format!(
            "server {ip}:{port} offered STARTTLS in an earlier connection but not in this one \
             (the capability was {how})"
        ),
    )
    .with("related_flow", offer.flow.as_str())
    .with("starttls", how)
    .with("earlier_start", offer.start.to_string())
}
