//! Password spraying and distributed brute force, measured the way fail2ban and IDS
//! thresholds do: within a window of capture time, failed AUTH attempts are counted per
//! client by distinct username (`auth_password_spraying`: one client trying many accounts)
//! and per username by distinct client (`auth_distributed_brute_force`: many clients trying
//! one account). Failures are counted in capture order as they cross the wire (evidence of
//! flows perhaps still open); a finding is raised on the flow whose failure crosses the
//! threshold and streams with that flow when it finishes; the same client (or username) is
//! not raised again while the window that raised it lasts.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use super::window::{KeyedWindows, WindowDrops};
use crate::findings::evidence::FlowRef;
use crate::findings::{Endpoints, Finding, Kind, Severity};
use crate::flow::EventMeta;
use crate::time::Timestamp;

/// Thresholds, with the defaults documented in docs/report.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SprayThresholds {
    /// Distinct usernames failing from one client within the window.
    pub usernames_per_client: usize,
    /// Distinct clients failing for one username within the window.
    pub clients_per_username: usize,
    pub window_secs: u64,
}

impl Default for SprayThresholds {
    fn default() -> Self {
        SprayThresholds {
            usernames_per_client: 5,
            clients_per_username: 5,
            window_secs: 600,
        }
    }
}

/// Keys tracked at most per table, and failures kept per key.
const MAX_KEYS: usize = 65_536;
const MAX_PER_KEY: usize = 256;
/// Names listed in a finding's evidence at most.
const MAX_LISTED: usize = 16;

#[derive(Debug)]
pub struct SprayTracker {
    limits: SprayThresholds,
    by_client: KeyedWindows<IpAddr, String>,
    by_username: KeyedWindows<String, IpAddr>,
    /// When each client or username was last raised, so a window raises once.
    raised_client: HashMap<IpAddr, Timestamp>,
    raised_username: HashMap<String, Timestamp>,
}

impl Default for SprayTracker {
    fn default() -> Self {
        Self::new(SprayThresholds::default())
    }
}

impl SprayTracker {
    pub fn new(limits: SprayThresholds) -> Self {
        SprayTracker {
            limits,
            by_client: KeyedWindows::new(limits.window_secs, MAX_KEYS, MAX_PER_KEY),
            by_username: KeyedWindows::new(limits.window_secs, MAX_KEYS, MAX_PER_KEY),
            raised_client: HashMap::new(),
            raised_username: HashMap::new(),
        }
    }

    /// What the caps turned away (per-client and per-username tables together).
    pub fn drops(&self) -> WindowDrops {
        let (a, b) = (self.by_client.drops(), self.by_username.drops());
        WindowDrops {
            keys_full: a.keys_full + b.keys_full,
            events_over_cap: a.events_over_cap + b.events_over_cap,
        }
    }

    /// Counts one failed AUTH attempt (as it was on the wire, its flow perhaps still open);
    /// returns the findings it raises, for that flow.
    pub fn failure(&mut self, flow: &FlowRef, user: &str, meta: EventMeta) -> Vec<Finding> {
        let mut out = Vec::new();
        if user.is_empty() {
            return out;
        }
        let client = flow.client.ip;
        let window = self.limits.window_secs;
        if let Some(events) = self.by_client.push(&client, meta.ts, user.to_string()) {
            let users: BTreeSet<&str> = events.iter().map(|(_, u)| u.as_str()).collect();
            let first = events.front().map_or(meta.ts, |(t, _)| *t);
            if users.len() >= self.limits.usernames_per_client
                && fresh(&mut self.raised_client, client, meta.ts, window)
            {
                out.push(spraying(client, &users, events.len(), first, meta, window));
            }
        }
        if let Some(events) = self.by_username.push(&user.to_string(), meta.ts, client) {
            let clients: BTreeSet<IpAddr> = events.iter().map(|(_, c)| *c).collect();
            let first = events.front().map_or(meta.ts, |(t, _)| *t);
            if clients.len() >= self.limits.clients_per_username
                && fresh(&mut self.raised_username, user.to_string(), meta.ts, window)
            {
                out.push(distributed(
                    user,
                    &clients,
                    events.len(),
                    first,
                    meta,
                    window,
                ));
            }
        }
        for f in &mut out {
            f.flow.clone_from(&flow.id);
            f.endpoints = Some(Endpoints {
                client: flow.client,
                server: flow.server,
            });
        }
        out
    }
}

/// True (and noted) when `key` was not raised within the window before `ts`.
fn fresh<K: std::hash::Hash + Eq>(
    raised: &mut HashMap<K, Timestamp>,
    key: K,
    ts: Timestamp,
    window: u64,
) -> bool {
    if raised
        .get(&key)
        .is_some_and(|t| ts.secs_since(*t) <= window)
    {
        return false;
    }
    if raised.len() >= MAX_KEYS {
        raised.retain(|_, t| ts.secs_since(*t) <= window);
    }
    if raised.len() < MAX_KEYS {
        raised.insert(key, ts);
    }
    true
}

fn spraying(
    client: IpAddr,
    users: &BTreeSet<&str>,
    failures: usize,
    first: Timestamp,
    meta: EventMeta,
    window: u64,
) -> Finding {
    let listed: Vec<&str> = users.iter().take(MAX_LISTED).copied().collect();
    Finding::new(
        Kind::AuthPasswordSpraying,
        Severity::High,
        meta,
        format!(
            "password spraying: {} distinct usernames failed AUTH from {client} within {} s",
            users.len(),
            meta.ts.secs_since(first)
        ),
    )
    .with("client_ip", client.to_string())
    .with("distinct_usernames", users.len())
    .with("usernames", listed)
    .with("failed_attempts", failures)
    .with("first", first.to_string())
    .with("window_secs", window)
}

fn distributed(
    user: &str,
    clients: &BTreeSet<IpAddr>,
    failures: usize,
    first: Timestamp,
    meta: EventMeta,
    window: u64,
) -> Finding {
    let listed: Vec<String> = clients
        .iter()
        .take(MAX_LISTED)
        .map(IpAddr::to_string)
        .collect();
    Finding::new(
        Kind::AuthDistributedBruteForce,
        Severity::High,
        meta,
        format!(
            "distributed brute force: AUTH as {user:?} failed from {} distinct clients within {} s",
            clients.len(),
            meta.ts.secs_since(first)
        ),
    )
    .with("username", user)
    .with("distinct_clients", clients.len())
    .with("clients", listed)
    .with("failed_attempts", failures)
    .with("first", first.to_string())
    .with("window_secs", window)
}
