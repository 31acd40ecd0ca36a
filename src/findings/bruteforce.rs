//! Failed AUTH attempts aggregated per client address across flows and captures: one
//! `auth_brute_force` finding per client that failed often enough.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::findings::{Endpoints, Finding, Kind, Severity};
use crate::flow::EventMeta;
use crate::report::model::{AuthOutcome, FlowRecord};
use crate::time::Timestamp;

/// Failed attempts from one client at which the aggregate finding is raised.
pub const DEFAULT_THRESHOLD: u64 = 5;
/// Clients tracked at most; beyond it new clients are counted but not tracked.
const MAX_CLIENTS: usize = 65_536;

#[derive(Debug)]
struct Failures {
    count: u64,
    first: Timestamp,
    last: Timestamp,
    flows: u64,
    last_flow: String,
    last_endpoints: Option<Endpoints>,
    last_frame: u64,
    /// The capture holding `last_frame`.
    last_capture: String,
    servers: Vec<String>,
    usernames: Vec<String>,
    /// Tags of the secrets tried (see `Secret::tag`), up to `MAX_TAGS`.
    secrets: Vec<u64>,
}

/// Distinct secrets counted per client at most.
const MAX_TAGS: usize = 256;

/// Tracks failed AUTH attempts per client address.
#[derive(Debug)]
pub struct BruteForceTracker {
    threshold: u64,
    clients: BTreeMap<IpAddr, Failures>,
    untracked: u64,
}

impl Default for BruteForceTracker {
    fn default() -> Self {
        Self::new(DEFAULT_THRESHOLD)
    }
}

impl BruteForceTracker {
    pub fn new(threshold: u64) -> Self {
        BruteForceTracker {
            threshold: threshold.max(1),
            clients: BTreeMap::new(),
            untracked: 0,
        }
    }

    /// Counts the failed AUTH attempts of a finished flow.
    pub fn observe(&mut self, flow: &FlowRecord) {
        let Some(smtp) = flow.smtp.as_ref() else {
            return;
        };
        let failed: Vec<_> = smtp
            .auth
            .iter()
            .filter(|a| a.outcome == AuthOutcome::Failure)
            .collect();
        let Some(last) = failed.last() else {
            return;
        };
        if !self.clients.contains_key(&flow.client.ip) && self.clients.len() >= MAX_CLIENTS {
            self.untracked += failed.len() as u64;
            return;
        }
        let e = self
            .clients
            .entry(flow.client.ip)
            .or_insert_with(|| Failures {
                count: 0,
                first: failed[0].ts,
                last: last.ts,
                flows: 0,
                last_flow: String::new(),
                last_endpoints: None,
                last_frame: 0,
                last_capture: String::new(),
                servers: Vec::new(),
                usernames: Vec::new(),
                secrets: Vec::new(),
            });
        // The AUTH list is capped per flow; the session's counter is not.
        e.count += (failed.len() as u64).max(smtp.stats.auth_failures);
        e.flows += 1;
        e.first = e.first.min(failed[0].ts);
        if last.ts >= e.last || e.last_flow.is_empty() {
            e.last = last.ts;
            e.last_flow.clone_from(&flow.id);
            e.last_endpoints = Some(Endpoints::of(flow));
            e.last_frame = last.frame;
            e.last_capture = last
                .frame_capture
                .clone()
                .unwrap_or_else(|| flow.capture.clone());
        }
        let server = format!("{}:{}", flow.server.ip, flow.server.port);
        if !e.servers.contains(&server) && e.servers.len() < 16 {
            e.servers.push(server);
        }
        for a in &failed {
            if let Some(t) = a.secret_tag {
                if !e.secrets.contains(&t) && e.secrets.len() < MAX_TAGS {
                    e.secrets.push(t);
                }
            }
            if let Some(u) = &a.username {
                if !e.usernames.contains(u) && e.usernames.len() < 16 {
                    e.usernames.push(u.clone());
                }
            }
        }
    }

    /// One finding per client at or above the threshold, in address order.
    pub fn findings(&self) -> Vec<Finding> {
        self.clients
            .iter()
            .filter(|(_, f)| f.count >= self.threshold)
            .map(|(ip, f)| {
                let meta = EventMeta {
                    ts: f.last,
                    frame: f.last_frame,
                };
                // One wrong password retried for one user is a misconfigured client, not
                // guessing (one password over many users is spraying, and stays high).
                let retried = f.secrets.len() == 1 && f.usernames.len() <= 1;
                let (severity, what) = if retried {
                    (
                        Severity::Medium,
                        " (one password retried: a misconfigured client?)",
                    )
                } else {
                    (Severity::High, "")
                };
                let mut finding = Finding::new(
                    Kind::AuthBruteForce,
                    severity,
                    meta,
                    format!(
                        "{} failed AUTH attempts from {ip} in {} connection(s) between {} and \
                         {}{what}",
                        f.count, f.flows, f.first, f.last
                    ),
                )
                .with("distinct_passwords", f.secrets.len())
                .with("client_ip", ip.to_string())
                .with("failed_attempts", f.count)
                .with("flows", f.flows)
                .with("first", f.first.to_string())
                .with("last", f.last.to_string())
                .with("window_secs", f.last.secs_since(f.first))
                .with("servers", f.servers.clone())
                .with("usernames", f.usernames.clone());
                finding.flow.clone_from(&f.last_flow);
                finding.capture.clone_from(&f.last_capture);
                finding.endpoints = f.last_endpoints;
                finding
            })
            .collect()
    }
}
