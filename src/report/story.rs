//! Problems: a cause with the symptoms it explains, so a report leads with why a connection
//! broke and counts one broken connection once.
//!
//! The findings of one flow are linked by [`EXPLAINS`] (cause kind -> symptom kind); a finding
//! no rule links is a problem of its own. One rule crosses flows: a `plaintext_fallback`
//! names the failed attempt in `related_flow`, and joins the problem of that flow, so "465
//! blocked, then the password went in clear on 587" is one problem with its cause first.
//!
//! Memory stays bounded: problems go straight into groups (count plus a few samples) except
//! those that may still be linked across flows, which wait in tables capped at
//! [`MAX_WAITING`] entries (past it the oldest is grouped unlinked).

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::Value;

use super::model::{EndpointRecord, FlowRecord, SeverityCounts};
use super::remedy::remedy;
use crate::findings::{Finding, Kind, Severity};

/// Which finding explains which, in order of precedence: a symptom with several possible
/// causes in its flow is attached to the first rule that matches. The table is acyclic (a
/// test checks it), so every problem has one cause at its head.
pub const EXPLAINS: &[(Kind, Kind)] = &[
    // TLS that failed because of something the capture shows.
    (Kind::TlsModeMismatch, Kind::TlsHandshakeFailure),
    (Kind::CertificateProblem, Kind::TlsHandshakeFailure),
    (Kind::WeakTlsVersion, Kind::TlsHandshakeFailure),
    (Kind::StarttlsRefused, Kind::TlsHandshakeFailure),
    // STARTTLS removed on the way, and what went in clear because of it.
    (Kind::StarttlsStripped, Kind::StarttlsDowngrade),
    (Kind::StarttlsStripped, Kind::StarttlsNotUsed),
    (Kind::StarttlsDowngrade, Kind::StarttlsNotUsed),
    (Kind::StarttlsNotUsed, Kind::CleartextCredentials),
    (Kind::StarttlsNotUsed, Kind::CleartextMail),
    (Kind::StarttlsStripped, Kind::CleartextCredentials),
    (Kind::StarttlsStripped, Kind::CleartextMail),
    (Kind::StarttlsDowngrade, Kind::CleartextCredentials),
    (Kind::StarttlsDowngrade, Kind::CleartextMail),
    (Kind::StarttlsIgnored, Kind::CleartextCredentials),
    (Kind::StarttlsIgnored, Kind::CleartextMail),
    // A client that fell back: what it then sent in clear.
    (Kind::PlaintextFallback, Kind::CleartextCredentials),
    (Kind::PlaintextFallback, Kind::CleartextMail),
    (Kind::PlaintextFallback, Kind::StarttlsNotUsed),
    // A server that invites AUTH in clear, when nothing above explains the leak.
    (Kind::CleartextAuthOffered, Kind::CleartextCredentials),
];

/// Causes a `plaintext_fallback` of a later flow can point back to (through `related_flow`).
pub const FALLBACK_CAUSES: &[Kind] = &[
    Kind::ConnectionFailed,
    Kind::TlsHandshakeFailure,
    Kind::TlsModeMismatch,
    Kind::StarttlsRefused,
];

/// Problems waiting for a cross-flow link, and fallbacks waiting for their cause.
pub const MAX_WAITING: usize = 4096;
/// Example problems kept per group.
pub const SAMPLES_PER_GROUP: usize = 20;
/// Distinct groups; past it, new shapes share a group per signature without a remedy.
pub const MAX_GROUPS: usize = 2048;
/// Steps kept per sample problem.
const MAX_STEPS: usize = 12;

/// One finding as a step of a problem.
#[derive(Clone, Debug)]
pub struct Step {
    pub kind: Kind,
    pub severity: Severity,
    /// Position of the capture holding `frame` (the report's capture order).
    pub capture: usize,
    pub frame: u64,
    pub message: String,
    pub endpoints: Option<(EndpointRecord, EndpointRecord)>,
    /// "client -> server:port" for a run-wide finding that has no flow of its own.
    pub label: Option<String>,
    /// The secret and its hashcat line, present only with `--reveal-secrets`.
    pub secret: Option<String>,
    pub hashcat: Option<String>,
    flow: String,
    related_flow: Option<String>,
    failure: Option<String>,
}

/// A cause (`steps[0]`) with the symptoms it explains, in causal order.
#[derive(Clone, Debug)]
pub struct Problem {
    pub severity: Severity,
    pub steps: Vec<Step>,
    pub remedy: String,
    /// Steps beyond [`MAX_STEPS`] not kept.
    pub more_steps: u64,
}

impl Problem {
    pub fn cause(&self) -> &Step {
        &self.steps[0]
    }

    /// The kinds in causal order, each once: `tls_mode_mismatch -> tls_handshake_failure`.
    pub fn signature(&self) -> String {
        let mut kinds: Vec<&str> = Vec::new();
        for s in &self.steps {
            if !kinds.contains(&s.kind.as_str()) {
                kinds.push(s.kind.as_str());
            }
        }
        kinds.join(" -> ")
    }

    fn has(&self, kind: Kind) -> bool {
        self.steps.iter().any(|s| s.kind == kind)
    }

    /// Appends a problem of a later flow that this one caused.
    fn absorb(&mut self, later: Problem) {
        self.severity = self.severity.max(later.severity);
        for s in later.steps {
            if self.steps.len() < MAX_STEPS {
                self.steps.push(s);
            } else {
                self.more_steps += 1;
            }
        }
        self.more_steps += later.more_steps;
        self.remedy = join_remedy(&self.remedy, &later.remedy);
    }
}

fn join_remedy(first: &str, then: &str) -> String {
    if then.is_empty() || first.contains(then) {
        first.to_string()
    } else {
        format!("{first}; then: {then}")
    }
}

/// Splits one flow's findings (in report order) into problems.
pub fn problems_of_flow(
    findings: &[&Finding],
    flow: Option<&FlowRecord>,
    capture_of: &mut dyn FnMut(&Finding) -> usize,
) -> Vec<Problem> {
    let n = findings.len();
    let parent: Vec<Option<usize>> = (0..n)
        .map(|i| {
            let kind = findings[i].kind;
            EXPLAINS
                .iter()
                .filter(|(_, symptom)| *symptom == kind)
                .find_map(|(cause, _)| (0..n).find(|&j| j != i && findings[j].kind == *cause))
        })
        .collect();
    let mut out = Vec::new();
    for root in (0..n).filter(|&i| parent[i].is_none()) {
        let mut order = Vec::new();
        collect(root, &parent, &mut order);
        let steps: Vec<Step> = order
            .iter()
            .take(MAX_STEPS)
            .map(|&i| step(findings[i], flow, capture_of(findings[i])))
            .collect();
        let severity = order
            .iter()
            .map(|&i| findings[i].severity)
            .max()
            .unwrap_or(Severity::Info);
        let mut rem = remedy(findings[root], flow);
        // What a symptom adds that the cause's remedy does not say.
        for &i in order.iter().skip(1) {
            let f = findings[i];
            match f.kind {
                Kind::CleartextCredentials if !rem.contains("credentials") => {
                    rem.push_str("; change the exposed credentials");
                }
                Kind::PlaintextFallback => rem = join_remedy(&rem, &remedy(f, flow)),
                Kind::TlsHandshakeFailure
                    if f.evidence.get("rule").and_then(Value::as_str)
                        == Some("client_hello_after_starttls_refused") =>
                {
                    rem.push_str(
                        "; the client began TLS although the server refused STARTTLS: make it \
                         stop after a refusal",
                    );
                }
                _ => {}
            }
        }
        out.push(Problem {
            severity,
            steps,
            remedy: rem,
            more_steps: order.len().saturating_sub(MAX_STEPS) as u64,
        });
    }
    out
}

/// Pre-order walk: a finding, then what it explains, in report order.
fn collect(i: usize, parent: &[Option<usize>], out: &mut Vec<usize>) {
    // The parent relation follows the acyclic EXPLAINS table and no kind explains itself, so
    // the depth is bounded by the table; the guard keeps it so on any input.
    if out.contains(&i) || out.len() > parent.len() {
        return;
    }
    out.push(i);
    for (j, p) in parent.iter().enumerate() {
        if *p == Some(i) {
            collect(j, parent, out);
        }
    }
}

fn step(f: &Finding, flow: Option<&FlowRecord>, capture: usize) -> Step {
    let ev = &f.evidence;
    let get = |k: &str| ev.get(k).and_then(Value::as_str).map(str::to_string);
    let label = match (flow, get("client_ip"), get("server_ip")) {
        (None, Some(c), Some(s)) => {
            let port = ev
                .get("plaintext_port")
                .or_else(|| ev.get("server_port"))
                .and_then(Value::as_u64);
            Some(match (port, s.contains(':')) {
                (Some(p), true) => format!("{c} -> [{s}]:{p}"),
                (Some(p), false) => format!("{c} -> {s}:{p}"),
                (None, _) => format!("{c} -> {s}"),
            })
        }
        (None, Some(c), None) => Some(format!("client {c}")),
        _ => None,
    };
    Step {
        kind: f.kind,
        severity: f.severity,
        capture,
        frame: f.frame,
        message: f.message.clone(),
        endpoints: flow.map(|fl| (fl.client, fl.server)),
        label,
        secret: ev
            .get("secret")
            .and_then(|s| s.get("value"))
            .and_then(Value::as_str)
            .map(str::to_string),
        hashcat: get("hashcat"),
        flow: f.flow.clone(),
        related_flow: get("related_flow"),
        failure: get("failure"),
    }
}

/// Problems of a kind and shape with the same remedy: counted, with the earliest samples.
#[derive(Debug, Default)]
pub struct Group {
    pub count: u64,
    pub samples: Vec<Problem>,
}

impl Group {
    fn add(&mut self, p: Problem) {
        self.count += 1;
        let key = |p: &Problem| (p.cause().capture, p.cause().frame);
        let pos = self.samples.partition_point(|x| key(x) <= key(&p));
        if pos < SAMPLES_PER_GROUP {
            self.samples.insert(pos, p);
            self.samples.truncate(SAMPLES_PER_GROUP);
        }
    }
}

/// Severity (most severe first), signature, remedy.
pub type GroupKey = (Reverse<Severity>, String, String);

/// Every problem of a run, grouped; cross-flow links made as flows arrive in any order.
#[derive(Debug, Default)]
pub struct Book {
    groups: BTreeMap<GroupKey, Group>,
    /// Problems with a cause a later fallback may point to, by flow id (oldest first).
    waiting: HashMap<String, Vec<Problem>>,
    waiting_order: VecDeque<String>,
    /// Fallbacks whose failed flow has not arrived yet, by that flow's id.
    orphans: HashMap<String, Vec<Problem>>,
    orphan_order: VecDeque<String>,
    problems: SeverityCounts,
    findings: u64,
}

impl Book {
    /// Adds one flow's findings (report order), or run-wide ones with `flow` None.
    pub fn add(
        &mut self,
        findings: &[&Finding],
        flow: Option<&FlowRecord>,
        capture_of: &mut dyn FnMut(&Finding) -> usize,
    ) {
        self.findings += findings.len() as u64;
        for p in problems_of_flow(findings, flow, capture_of) {
            self.place(p);
        }
    }

    fn place(&mut self, mut p: Problem) {
        let cause = p.cause();
        if cause.kind == Kind::PlaintextFallback
            && let Some(related) = cause.related_flow.clone()
        {
            let failure = cause.failure.clone();
            if let Some(list) = self.waiting.get_mut(&related) {
                let i = list
                    .iter()
                    .position(|c| {
                        failure
                            .as_deref()
                            .is_some_and(|k| c.steps.iter().any(|s| s.kind.as_str() == k))
                    })
                    .unwrap_or(0);
                if let Some(c) = list.get_mut(i) {
                    c.absorb(p);
                    return;
                }
            }
            if !self.orphans.contains_key(&related) {
                self.orphan_order.push_back(related.clone());
                if self.orphan_order.len() > MAX_WAITING
                    && let Some(old) = self.orphan_order.pop_front()
                {
                    for q in self.orphans.remove(&old).unwrap_or_default() {
                        self.group(q);
                    }
                }
            }
            self.orphans.entry(related).or_default().push(p);
            return;
        }
        if FALLBACK_CAUSES.iter().any(|k| p.has(*k)) {
            let id = p.cause().flow.clone();
            if id.is_empty() {
                self.group(p);
                return;
            }
            for later in self.orphans.remove(&id).unwrap_or_default() {
                p.absorb(later);
            }
            if !self.waiting.contains_key(&id) {
                self.waiting_order.push_back(id.clone());
                if self.waiting_order.len() > MAX_WAITING
                    && let Some(old) = self.waiting_order.pop_front()
                {
                    for q in self.waiting.remove(&old).unwrap_or_default() {
                        self.group(q);
                    }
                }
            }
            self.waiting.entry(id).or_default().push(p);
            return;
        }
        self.group(p);
    }

    fn group(&mut self, p: Problem) {
        self.problems.add(p.severity);
        let mut key = (Reverse(p.severity), p.signature(), p.remedy.clone());
        if !self.groups.contains_key(&key) && self.groups.len() >= MAX_GROUPS {
            key.2 = String::new();
        }
        self.groups.entry(key).or_default().add(p);
    }

    /// Groups everything still waiting for a link; call once, after the last flow.
    pub fn settle(&mut self) {
        let mut ids: Vec<String> = self.waiting_order.drain(..).collect();
        ids.extend(self.orphan_order.drain(..));
        for id in ids {
            for p in self.waiting.remove(&id).unwrap_or_default() {
                self.group(p);
            }
            for p in self.orphans.remove(&id).unwrap_or_default() {
                self.group(p);
            }
        }
    }

    pub fn groups(&self) -> impl Iterator<Item = (&GroupKey, &Group)> {
        self.groups.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.waiting.is_empty() && self.orphans.is_empty()
    }

    /// Problems by severity (after [`Book::settle`]).
    pub fn problem_counts(&self) -> &SeverityCounts {
        &self.problems
    }

    pub fn finding_count(&self) -> u64 {
        self.findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::EventMeta;

    #[test]
    fn explains_is_acyclic_and_no_kind_explains_itself() {
        // Repeatedly strip kinds that explain nothing still present; a cycle would remain.
        let mut edges: Vec<(Kind, Kind)> = EXPLAINS.to_vec();
        assert!(edges.iter().all(|(a, b)| a != b));
        loop {
            let before = edges.len();
            let causes: Vec<Kind> = edges.iter().map(|e| e.0).collect();
            edges.retain(|(_, b)| causes.contains(b));
            if edges.len() == before {
                break;
            }
        }
        assert!(edges.is_empty(), "cycle in EXPLAINS: {edges:?}");
    }

    fn finding(kind: Kind, sev: Severity, frame: u64, flow: &str) -> Finding {
        let meta = EventMeta {
            frame,
            ..EventMeta::default()
        };
        let mut f = Finding::new(kind, sev, meta, kind.as_str());
        f.flow = flow.to_string();
        f
    }

    #[test]
    fn cause_leads_and_a_broken_connection_counts_once() {
        let a = finding(Kind::TlsHandshakeFailure, Severity::Medium, 9, "a");
        let b = finding(Kind::TlsModeMismatch, Severity::Medium, 6, "a");
        let ps = problems_of_flow(&[&a, &b], None, &mut |_| 0);
        assert_eq!(ps.len(), 1);
        assert_eq!(
            ps[0].signature(),
            "tls_mode_mismatch -> tls_handshake_failure"
        );
    }

    #[test]
    fn unlinked_findings_are_problems_of_their_own() {
        let a = finding(Kind::WeakCipher, Severity::High, 9, "a");
        let b = finding(Kind::StarttlsInjection, Severity::High, 6, "a");
        assert_eq!(problems_of_flow(&[&a, &b], None, &mut |_| 0).len(), 2);
    }

    #[test]
    fn a_fallback_joins_its_cause_in_either_order() {
        for cause_first in [true, false] {
            let failed = finding(Kind::ConnectionFailed, Severity::Medium, 3, "a");
            let fallback = finding(Kind::PlaintextFallback, Severity::High, 17, "b")
                .with("related_flow", "a")
                .with("failure", "connection_failed");
            let leak = finding(Kind::CleartextCredentials, Severity::Critical, 17, "b");
            let mut book = Book::default();
            if cause_first {
                book.add(&[&failed], None, &mut |_| 0);
                book.add(&[&fallback, &leak], None, &mut |_| 0);
            } else {
                book.add(&[&fallback, &leak], None, &mut |_| 0);
                book.add(&[&failed], None, &mut |_| 0);
            }
            book.settle();
            let groups: Vec<_> = book.groups().collect();
            assert_eq!(groups.len(), 1, "cause first: {cause_first}");
            assert_eq!(
                groups[0].0.1,
                "connection_failed -> plaintext_fallback -> cleartext_credentials"
            );
            assert_eq!(book.problem_counts().critical, 1);
            assert_eq!(book.finding_count(), 3);
        }
    }
}
