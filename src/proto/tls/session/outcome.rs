//! The handshake outcome: completion rules, failure at close, the TLS 1.3 inferences from
//! encrypted record sizes, and why an outcome stays undecided.

use super::*;

/// Why a handshake failed.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Failure {
    pub(super) rule: &'static str,
    pub(super) confidence: Confidence,
    pub(super) meta: EventMeta,
    pub(super) sender: Option<Sender>,
    /// Alert description in clear, when an alert decided it.
    pub(super) description: Option<String>,
    pub(super) stage: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Outcome {
    Pending,
    Complete {
        rule: &'static str,
        confidence: Confidence,
        meta: EventMeta,
    },
    Failed(Failure),
}

/// TLS 1.3 progress, read from the order and sizes of encrypted records after the
/// ServerHello (everything after it is encrypted, RFC 8446 section 2).
#[derive(Debug, Default)]
pub(super) struct Tls13Progress {
    /// Client application-data records after the ServerHello; the first is its Finished.
    pub(super) client_records: u32,
    pub(super) client_first_len: u16,
    pub(super) client_first_meta: EventMeta,
    /// Server records after the client's first encrypted record.
    pub(super) server_after_client: u32,
    pub(super) server_after_client_first_len: u16,
}

impl TlsSession {
    /// The sender of `dir` closed (FIN) or reset its side.
    pub fn end(&mut self, dir: Direction, kind: EndKind, meta: EventMeta) {
        if let Some(s) = self.dirs.get_mut(dir.index()) {
            if s.closed.is_some() {
                return;
            }
            s.closed = Some((kind, meta));
        }
        if self.outcome != Outcome::Pending {
            return;
        }
        let stage = self.stage();
        // TLS 1.3: the client answered the server's encrypted flight with one alert-sized
        // record and the connection closed without data: it rejected the flight (most often
        // the certificate), RFC 8446 section 6.2.
        if self.tls13_negotiated()
            && self.tls13.client_records == 1
            && alert_sized(self.tls13.client_first_len)
            && self.tls13.server_after_client == 0
        {
            let am = self.tls13.client_first_meta;
            self.push_alert(AlertRecord {
                from: Sender::Client,
                level: ReportAlertLevel::Encrypted,
                description: None,
                frame: am.frame,
                frame_capture: None,
            });
            self.outcome = Outcome::Failed(Failure {
                rule: "tls13_client_rejected_server_flight",
                confidence: Confidence::Likely,
                meta: am,
                sender: Some(Sender::Client),
                description: None,
                stage,
            });
            return;
        }
        // The server answered the client's Finished with one alert-sized record, then close.
        if self.tls13_negotiated()
            && self.tls13.client_records == 1
            && self.tls13.server_after_client == 1
            && alert_sized(self.tls13.server_after_client_first_len)
        {
            self.outcome = Outcome::Failed(Failure {
                rule: "tls13_server_rejected_client_finished",
                confidence: Confidence::Likely,
                meta,
                sender: Some(Sender::Server),
                description: None,
                stage,
            });
            return;
        }
        let began = self.began();
        if let Some(rule) = self.undecidable(began) {
            if self.undecided.is_none() {
                self.undecided = Some((rule, meta));
                self.note(format!("outcome undecided: {rule}"));
            }
            return;
        }
        let rule = match (kind, began) {
            (EndKind::Reset, true) => "reset_before_completion",
            (EndKind::Fin, true) => "closed_before_completion",
            (EndKind::Reset, false) => "reset_before_client_hello",
            (EndKind::Fin, false) => "closed_before_client_hello",
        };
        self.outcome = Outcome::Failed(Failure {
            rule,
            confidence: Confidence::Certain,
            meta,
            sender: Some(sender(dir)),
            description: None,
            stage,
        });
    }

    /// A record (or SSLv2 hello) was seen: TLS began on the wire.
    pub(super) fn began(&self) -> bool {
        self.client_hellos > 0
            || self
                .dirs
                .iter()
                .any(|s| s.stats.records > 0 || s.v2_records > 0)
    }

    /// Why the bytes in hand cannot decide a handshake that did not finish, if they cannot.
    pub(super) fn undecidable(&self, began: bool) -> Option<&'static str> {
        let handshake_seen = self.client_hellos > 0
            || self.server_hello.is_some()
            || self
                .dirs
                .iter()
                .any(|s| s.stats.handshake > 0 || s.v2_records > 0);
        let [c, s] = [&self.dirs[0], &self.dirs[1]];
        if began && !handshake_seen {
            // Only records after the handshake (application data, encrypted alerts): the
            // capture began mid-session, the handshake is not in it.
            Some("handshake_not_captured")
        } else if self.server_hello.is_some() && c.stats.records == 0 && c.v2_records == 0 {
            // A ServerHello answers a ClientHello: the client's side is missing from the capture.
            Some("client_side_not_captured")
        } else if c.stats.gap_bytes > 0 || s.stats.gap_bytes > 0 {
            // Records cut by a snap length or lost: what would have decided it is not here.
            Some("deciding_bytes_not_captured")
        } else {
            None
        }
    }
    /// Completion rules, checked whenever a record could have completed the handshake.
    pub(super) fn evaluate(&mut self, meta: EventMeta) {
        let done = !matches!(
            self.outcome,
            Outcome::Pending
                | Outcome::Complete {
                    confidence: Confidence::Likely,
                    ..
                }
        );
        if done {
            return;
        }
        let [c, s] = [&self.dirs[0], &self.dirs[1]];
        let found: Option<(&'static str, Confidence)> = if self.sslv2 {
            // SSLv2: CLIENT-HELLO, CLIENT-MASTER-KEY, CLIENT-FINISHED against SERVER-HELLO,
            // SERVER-VERIFY, SERVER-FINISHED; all but the hellos encrypted.
            (c.v2_records >= 3 && s.v2_records >= 3)
                .then_some(("sslv2_records_both_ways", Confidence::Likely))
        } else if self.tls13_negotiated() {
            let t = &self.tls13;
            let finished = t.client_records >= 1 && !alert_sized(t.client_first_len);
            if finished && t.client_records >= 2 && t.server_after_client >= 2 {
                Some(("app_data_both_ways", Confidence::Certain))
            } else if finished
                && (t.client_records >= 2
                    || (t.server_after_client >= 1
                        && !alert_sized(t.server_after_client_first_len)))
            {
                Some(("tls13_client_finished_then_data", Confidence::Likely))
            } else {
                None
            }
        } else if c.finished_after_ccs && s.finished_after_ccs {
            Some(("ccs_finished_both", Confidence::Certain))
        } else if self.server_hello.is_some()
            && c.stats.application_data > 0
            && s.stats.application_data > 0
        {
            Some(("app_data_both_ways", Confidence::Certain))
        } else {
            None
        };
        if let Some((rule, confidence)) = found {
            let upgrade = matches!(self.outcome, Outcome::Complete { .. });
            if !upgrade || confidence == Confidence::Certain {
                let meta = match self.outcome {
                    // Keep the frame where completion was first seen.
                    Outcome::Complete { meta, .. } => meta,
                    _ => meta,
                };
                self.outcome = Outcome::Complete {
                    rule,
                    confidence,
                    meta,
                };
            }
        }
    }
}

/// Ciphertext length of an encrypted TLS 1.3 alert: 2 bytes of alert, 1 byte of inner
/// content type and a 16-byte AEAD tag (RFC 8446 section 5.2), plus a little padding.
pub(super) fn alert_sized(len: u16) -> bool {
    (19..=24).contains(&len)
}
