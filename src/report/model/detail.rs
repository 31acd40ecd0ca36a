//! How much of a flow record is written: `lean` (the default) leaves out what a SIEM would
//! pay to ingest and nobody reads (zero counters, false flags and nulls of fields REPORT.md
//! does not pin, the full ClientHello, raw fingerprint strings, per-direction statistics of a
//! direction that went normally); `full` writes every field. Fields REPORT.md pins are always
//! written, null included.
//!
//! The choice is per serialisation, not per record: a sink wraps its `serde_json` call in
//! [`with`], and the `skip_serializing_if` predicates below read it. A thread-local keeps the
//! records' derived `Serialize` (one pass, no intermediate value) and costs one load per
//! optional field.

use std::cell::Cell;

use super::{Confidence, OutcomeEvidence, ServerHelloRecord, SmtpStats, TlsDirRecord};
use crate::flow::{DirStats, RoleSource};

/// `--detail`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Detail {
    /// Pinned fields always; other fields only when they say something.
    #[default]
    Lean,
    /// Every field of the record.
    Full,
}

thread_local! {
    static LEAN: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a serialisation) at `detail`. Records serialised outside `with` are full, so a
/// caller that never heard of detail levels (a test, a debug print) sees everything.
pub fn with<R>(detail: Detail, f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            LEAN.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(LEAN.with(|l| l.replace(detail == Detail::Lean)));
    f()
}

pub(crate) fn lean() -> bool {
    LEAN.with(Cell::get)
}

pub(crate) fn lean_always<T>(_: &T) -> bool {
    lean()
}

pub(crate) fn lean_none<T>(v: &Option<T>) -> bool {
    v.is_none() && lean()
}

#[allow(clippy::ptr_arg)] // serde hands the field itself, a `&Vec`
pub(crate) fn lean_empty<T>(v: &Vec<T>) -> bool {
    v.is_empty() && lean()
}

pub(crate) fn lean_false(v: &bool) -> bool {
    !*v && lean()
}

pub(crate) fn lean_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default() && lean()
}

pub(crate) fn lean_syn(v: &RoleSource) -> bool {
    *v == RoleSource::Syn && lean()
}

/// A direction without loss, reordering or conflicting bytes: its counters only repeat what
/// the flow's class and duration say.
pub(crate) fn lean_normal_dir(d: &DirStats) -> bool {
    lean()
        && d.gaps == 0
        && d.out_of_order_segments == 0
        && d.conflicting_overlaps == 0
        && d.skipped_bytes == 0
}

/// A ServerHello that neither resumed nor chose an application protocol: version and cipher,
/// already in the record, are all it said.
pub(crate) fn lean_plain_server(s: &Option<ServerHelloRecord>) -> bool {
    lean() && s.as_ref().is_none_or(|s| !s.resumed && s.alpn.is_none())
}

/// No evidence, or a handshake seen to complete in clear: the rule and frame would only
/// repeat `handshake: complete`. Failures, and outcomes inferred from encrypted records, keep
/// theirs.
pub(crate) fn lean_plain_outcome(e: &Option<OutcomeEvidence>) -> bool {
    lean()
        && e.as_ref().is_none_or(|e| {
            e.confidence == Confidence::Certain
                && matches!(e.rule.as_str(), "ccs_finished_both" | "app_data_both_ways")
        })
}

/// Record counts of a TLS direction that parsed to the end without loss or overflow.
pub(crate) fn lean_normal_tls_dir(d: &TlsDirRecord) -> bool {
    lean() && !d.stopped && d.handshake_overflow == 0 && d.gap_bytes == 0
}

/// SMTP counters with nothing wrong in them: lean records keep only the counters of what went
/// wrong (unknown commands, unmatched replies, gaps, long lines, non-SMTP bytes, dropped
/// records, failed AUTH), and none when all are zero.
pub(crate) fn lean_quiet_stats(s: &SmtpStats) -> bool {
    lean()
        && s.unknown_commands == 0
        && s.unmatched_replies == 0
        && s.gaps == 0
        && s.gap_bytes == 0
        && s.long_lines == 0
        && s.non_smtp_bytes == 0
        && s.dropped_records == 0
        && s.auth_failures == 0
        && s.inferred_commands == 0
}
