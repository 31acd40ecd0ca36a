//! `plaintext_fallback`: a client whose TLS attempt with a server failed (handshake failure,
//! mode mismatch, STARTTLS refused, or a connection to 465 that never opened) and that then
//! sent AUTH or mail to the same server address in plaintext within the window. A retry that
//! succeeds with TLS is no fallback; another client is another story.
//!
//! A failure is known from the packet that proved it (evidence handed on while its connection
//! is still open: an alert, a refusal, the mismatch), so a plaintext connection that closes
//! first still gets its finding when it finishes. A failure known only when its connection
//! ends (a connection to 465 never answered closes at its idle timeout, long after the
//! plaintext connection to 587 that followed it; a silent server) comes later: a plaintext
//! flow therefore also waits (bounded) for an earlier failure to show up, and what it then
//! gets is reported with the run's findings at the end.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::findings::evidence::FlowRef;
use crate::findings::{Endpoints, Finding, Kind, Severity};
use crate::flow::EventMeta;
use crate::report::model::{FlowClass, FlowRecord};
use crate::time::Timestamp;

/// Pairs remembered at most, and entries kept per pair.
const MAX_PAIRS: usize = 65_536;
const MAX_PER_PAIR: usize = 8;

/// Client address, server address.
type Pair = (IpAddr, IpAddr);

#[derive(Clone, Debug)]
struct Failure {
    ts: Timestamp,
    flow: String,
    kind: Kind,
    port: u16,
}

#[derive(Clone, Debug)]
struct Plaintext {
    client: IpAddr,
    server: IpAddr,
    ts: Timestamp,
    flow: String,
    capture: String,
    endpoints: Endpoints,
    meta: EventMeta,
    what: &'static str,
    port: u16,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FallbackDrops {
    pub pairs_full: u64,
    pub entries_over_cap: u64,
}

#[derive(Debug)]
pub struct FallbackTracker {
    window_secs: u64,
    failures: HashMap<Pair, Vec<Failure>>,
    plaintext: HashMap<Pair, Vec<Plaintext>>,
    late: Vec<Finding>,
    drops: FallbackDrops,
}

impl Default for FallbackTracker {
    fn default() -> Self {
        Self::new(3600)
    }
}

impl FallbackTracker {
    pub fn new(window_secs: u64) -> Self {
        FallbackTracker {
            window_secs,
            failures: HashMap::new(),
            plaintext: HashMap::new(),
            late: Vec::new(),
            drops: FallbackDrops::default(),
        }
    }

    pub fn drops(&self) -> FallbackDrops {
        self.drops
    }

    /// Findings decided after their flow was reported (see the module note).
    pub fn take_late(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.late)
    }

    /// A failed TLS attempt seen on the wire (its flow may still be open).
    pub fn failure(&mut self, flow: &FlowRef, ts: Timestamp, kind: Kind) {
        let fail = Failure {
            ts,
            flow: flow.id.clone(),
            kind,
            port: flow.server.port,
        };
        self.add_failure((flow.client.ip, flow.server.ip), fail);
    }

    /// A finished flow: its failure if only its end showed it, its fallback if it is one.
    pub fn observe(&mut self, flow: &FlowRecord, findings: &mut Vec<Finding>) {
        let pair = (flow.client.ip, flow.server.ip);
        if let Some(fail) = failed_tls(flow, findings) {
            self.add_failure(pair, fail);
        }
        let Some(plain) = plaintext_use(flow) else {
            return;
        };
        let window = self.window_secs;
        // A failure of this very connection (a refused STARTTLS) is no fallback: that needs a
        // later connection.
        let earlier = self.failures.get(&pair).and_then(|list| {
            list.iter()
                .filter(|f| f.flow != plain.flow)
                .filter(|f| f.ts <= plain.ts && plain.ts.secs_since(f.ts) <= window)
                .max_by_key(|f| f.ts)
                .cloned()
        });
        match earlier {
            Some(fail) => findings.push(finding(&plain, &fail)),
            None => push_capped(&mut self.plaintext, pair, plain, &mut self.drops),
        }
    }

    fn add_failure(&mut self, pair: Pair, fail: Failure) {
        // One failure per connection: its evidence, or its record when it had none.
        if self
            .failures
            .get(&pair)
            .is_some_and(|list| list.iter().any(|f| f.flow == fail.flow))
        {
            return;
        }
        let window = self.window_secs;
        if let Some(waiting) = self.plaintext.get_mut(&pair) {
            let (hit, keep): (Vec<_>, Vec<_>) = waiting.drain(..).partition(|p| {
                p.flow != fail.flow && fail.ts <= p.ts && p.ts.secs_since(fail.ts) <= window
            });
            *waiting = keep;
            for p in hit {
                let mut f = finding(&p, &fail);
                f.flow.clone_from(&p.flow);
                f.capture.clone_from(&p.capture);
                f.endpoints = Some(p.endpoints);
                self.late.push(f);
            }
        }
        push_capped(&mut self.failures, pair, fail, &mut self.drops);
    }
}

fn push_capped<T>(map: &mut HashMap<Pair, Vec<T>>, pair: Pair, item: T, drops: &mut FallbackDrops) {
    if !map.contains_key(&pair) && map.len() >= MAX_PAIRS {
        drops.pairs_full += 1;
        return;
    }
    let list = map.entry(pair).or_default();
    if list.len() >= MAX_PER_PAIR {
        list.remove(0);
        drops.entries_over_cap += 1;
    }
    list.push(item);
}

/// The TLS attempt of this flow that failed, if one did.
fn failed_tls(flow: &FlowRecord, findings: &[Finding]) -> Option<Failure> {
    let f = findings.iter().find(|f| match f.kind {
        Kind::TlsHandshakeFailure | Kind::TlsModeMismatch | Kind::StarttlsRefused => true,
        Kind::ConnectionFailed => flow.server.port == 465,
        _ => false,
    })?;
    Some(Failure {
        ts: f.ts,
        flow: flow.id.clone(),
        kind: f.kind,
        port: flow.server.port,
    })
}

/// AUTH or mail sent in plaintext on this flow.
fn plaintext_use(flow: &FlowRecord) -> Option<Plaintext> {
    if flow.class != FlowClass::Plaintext {
        return None;
    }
    let smtp = flow.smtp.as_ref()?;
    let (meta, what) = if let Some(a) = smtp.auth.first() {
        (
            EventMeta {
                ts: a.ts,
                frame: a.frame,
            },
            "auth",
        )
    } else {
        let t = smtp.transaction_list.first()?;
        (
            EventMeta {
                ts: flow.start,
                frame: t.frame,
            },
            "mail",
        )
    };
    Some(Plaintext {
        client: flow.client.ip,
        server: flow.server.ip,
        ts: meta.ts,
        flow: flow.id.clone(),
        capture: flow.capture.clone(),
        endpoints: Endpoints::of(flow),
        meta,
        what,
        port: flow.server.port,
    })
}

fn finding(p: &Plaintext, fail: &Failure) -> Finding {
    let what = if p.what == "auth" { "AUTH" } else { "mail" };
    Finding::new(
        Kind::PlaintextFallback,
        Severity::High,
        p.meta,
        format!(
            "after a failed TLS attempt on port {} ({}), the client sent {what} in plaintext on \
             port {} {} s later",
            fail.port,
            fail.kind,
            p.port,
            p.ts.secs_since(fail.ts)
        ),
    )
    .with("related_flow", fail.flow.as_str())
    .with("client_ip", p.client.to_string())
    .with("server_ip", p.server.to_string())
    .with("failure", fail.kind.as_str())
    .with("failed_port", fail.port)
    .with("plaintext_port", p.port)
    .with("sent", p.what)
    .with("secs_after_failure", p.ts.secs_since(fail.ts))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::flow::{CloseReason, DirStats, RoleSource};
    use crate::report::model::{AuthRecord, EndpointRecord, SmtpRecord, TcpRecord};

    fn at(secs: i64) -> Timestamp {
        Timestamp::new(secs, 0)
    }

    fn flow(id: &str, client: &str, port: u16, start: i64, class: FlowClass) -> FlowRecord {
        FlowRecord {
            id: id.into(),
            capture: "c.pcap".into(),
            client: EndpointRecord {
                ip: client.parse().unwrap(),
                port: 40000,
            },
            server: EndpointRecord {
                ip: "198.51.100.7".parse().unwrap(),
                port,
            },
            start: at(start),
            end: at(start + 1),
            duration_secs: 1.0,
            class,
            smtp: None,
            tls: None,
            tcp: TcpRecord {
                roles: RoleSource::Syn,
                roles_corrected: false,
                close: CloseReason::Fin,
                first_frame: 1,
                last_frame: 2,
                to_server: DirStats::default(),
                to_client: DirStats::default(),
                last_frame_capture: None,
            },
        }
    }

    fn with_auth(mut f: FlowRecord) -> FlowRecord {
        let auth = AuthRecord {
            mechanism: "PLAIN".into(),
            username: Some("alice".into()),
            in_cleartext: true,
            outcome: crate::report::model::AuthOutcome::Success,
            reply: Some(235),
            frame: 7,
            ts: f.start,
            authzid: None,
            secret: None,
            hashcat: None,
            secret_frame: None,
            secret_tag: None,
            cancelled: false,
            undecodable: 0,
            cut: false,
            username_partial: None,
            inferred: false,
            frame_capture: None,
            secret_frame_capture: None,
        };
        f.smtp = Some(Box::new(SmtpRecord {
            auth: vec![auth],
            ..SmtpRecord::default()
        }));
        f
    }

    fn failure(at_secs: i64, kind: Kind) -> Finding {
        Finding::new(
            kind,
            Severity::Medium,
            EventMeta {
                ts: at(at_secs),
                frame: 3,
            },
            "failed",
        )
    }

    #[test]
    fn plaintext_after_a_failure_is_a_fallback_in_either_close_order() {
        // The failure closes first: the finding goes with the plaintext flow.
        let mut t = FallbackTracker::default();
        let mut fs = vec![failure(100, Kind::TlsHandshakeFailure)];
        t.observe(
            &flow("a", "192.0.2.10", 465, 100, FlowClass::ImplicitTls),
            &mut fs,
        );
        let mut fs = Vec::new();
        t.observe(
            &with_auth(flow("b", "192.0.2.10", 587, 130, FlowClass::Plaintext)),
            &mut fs,
        );
        assert_eq!(fs.len(), 1);
        assert_eq!(fs[0].kind, Kind::PlaintextFallback);
        assert_eq!(fs[0].evidence["related_flow"], "a");
        assert_eq!(fs[0].evidence["secs_after_failure"], 30);

        // A blocked 465 closes long after the plaintext flow that followed it: decided late.
        let mut t = FallbackTracker::default();
        let mut fs = Vec::new();
        t.observe(
            &with_auth(flow("b", "192.0.2.10", 587, 130, FlowClass::Plaintext)),
            &mut fs,
        );
        assert!(fs.is_empty());
        let mut fs = vec![failure(100, Kind::ConnectionFailed)];
        t.observe(
            &flow("a", "192.0.2.10", 465, 100, FlowClass::Unknown),
            &mut fs,
        );
        let late = t.take_late();
        assert_eq!(late.len(), 1);
        assert_eq!((late[0].flow.as_str(), late[0].frame), ("b", 7));
    }

    #[test]
    fn no_fallback_for_another_client_a_later_failure_or_past_the_window() {
        let mut t = FallbackTracker::default();
        let mut fs = vec![failure(100, Kind::StarttlsRefused)];
        t.observe(
            &flow("a", "192.0.2.10", 587, 100, FlowClass::Plaintext),
            &mut fs,
        );
        let mut other = Vec::new();
        t.observe(
            &with_auth(flow("b", "192.0.2.11", 587, 130, FlowClass::Plaintext)),
            &mut other,
        );
        assert!(other.is_empty(), "another client");
        let mut late = Vec::new();
        t.observe(
            &with_auth(flow(
                "c",
                "192.0.2.10",
                587,
                100 + 3601,
                FlowClass::Plaintext,
            )),
            &mut late,
        );
        assert!(late.is_empty(), "past the hour");
        // A failure after the plaintext use explains nothing.
        let mut t = FallbackTracker::default();
        let mut fs = Vec::new();
        t.observe(
            &with_auth(flow("b", "192.0.2.10", 587, 50, FlowClass::Plaintext)),
            &mut fs,
        );
        let mut fs = vec![failure(100, Kind::TlsModeMismatch)];
        t.observe(
            &flow("a", "192.0.2.10", 465, 100, FlowClass::Unknown),
            &mut fs,
        );
        assert!(t.take_late().is_empty());
    }

    #[test]
    fn tables_are_capped_and_counted() {
        let mut t = FallbackTracker::default();
        for i in 0..(MAX_PER_PAIR + 3) {
            let mut fs = Vec::new();
            let f = with_auth(flow(
                &format!("p{i}"),
                "192.0.2.10",
                587,
                i as i64,
                FlowClass::Plaintext,
            ));
            t.observe(&f, &mut fs);
        }
        assert_eq!(t.drops().entries_over_cap, 3);
    }
}
