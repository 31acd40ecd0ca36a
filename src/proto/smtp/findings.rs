//! The SMTP session's contract record and findings, built from what the session saw.

use serde_json::Value;

use crate::findings::{Finding, Kind, Severity};
use crate::report::model::{SmtpRecord, StartTlsRecord};

use super::auth::{AuthExchange, Mechanism, SecretKind};
use super::session::{Facts, TlsPhase};
use super::smuggle::{Reaction, SmuggleFact};

pub(super) fn record(f: &Facts, reveal: bool) -> SmtpRecord {
    let reply = f.starttls_reply.as_ref();
    SmtpRecord {
        banner: f.banner.clone(),
        helo: f.helo.clone(),
        capabilities: f.capabilities.clone(),
        starttls: StartTlsRecord {
            offered: f.starttls_offered,
            issued: f.starttls_meta.is_some(),
            reply: reply.map(|r| r.0.0),
            reply_text: reply.map(|r| r.1.clone()),
            frame: f.starttls_meta.map(|m| m.frame),
            client_tls: f.client_tls,
            server_tls: f.server_tls,
            client_injected_bytes: f.client_injected,
            server_injected_bytes: f.server_injected,
            frame_capture: None,
        },
        auth: f.auths.iter().map(|a| a.record(reveal)).collect(),
        transactions: f.transactions,
        capabilities_after_starttls: f.capabilities_after_starttls.clone(),
        auth_offered: f.auth_offered.clone(),
        recipients: f.recipients,
        messages: f.messages,
        transaction_list: f.txns.clone(),
        bare_lf_accepted: match (f.bare_lf_accepted, f.bare_lf_refused) {
            (true, _) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
        },
        stats: f.stats.clone(),
    }
}

/// The record at the end of the session, built without copies: the strings and lists the
/// record only repeats are moved into it. The same record as [`record`].
pub(super) fn into_record(mut f: Facts, reveal: bool) -> SmtpRecord {
    use std::mem::take;
    let banner = f.banner.take();
    let helo = f.helo.take();
    let capabilities = take(&mut f.capabilities);
    let after_starttls = take(&mut f.capabilities_after_starttls);
    let auth_offered = take(&mut f.auth_offered);
    let txns = take(&mut f.txns);
    let reply_codes = take(&mut f.stats.reply_codes);
    let reply_text = f.starttls_reply.as_mut().map(|r| take(&mut r.1));
    let mut r = record(&f, reveal);
    r.banner = banner;
    r.helo = helo;
    r.capabilities = capabilities;
    r.capabilities_after_starttls = after_starttls;
    r.auth_offered = auth_offered;
    r.transaction_list = txns;
    r.stats.reply_codes = reply_codes;
    r.starttls.reply_text = reply_text;
    r
}

pub(super) fn findings(f: &Facts, reveal: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(
        f.smuggling
            .iter()
            .filter(|s| s.content_after)
            .map(|s| smuggling(f, s)),
    );
    for ex in &f.auths {
        if let Some(finding) = credentials(ex, reveal) {
            out.push(finding);
        }
    }
    if let Some((what, meta)) = f.cleartext_after_offer {
        out.push(
            Finding::new(
                Kind::StarttlsNotUsed,
                Severity::Medium,
                meta,
                format!("server offered STARTTLS but the client sent {what} in cleartext"),
            )
            .with("command", what),
        );
    }
    if let (TlsPhase::Refused, Some((code, text, meta))) = (f.starttls_phase, &f.starttls_reply) {
        out.push(
            Finding::new(
                Kind::StarttlsRefused,
                Severity::Medium,
                *meta,
                format!("server refused STARTTLS with {}", code.0),
            )
            .with("reply", code.0)
            .with("reply_text", text.as_str()),
        );
    }
    if let Some((line, meta)) = &f.mangled {
        out.push(
            Finding::new(
                Kind::StarttlsStripped,
                Severity::High,
                *meta,
                format!("EHLO capability {line:?} looks like STARTTLS overwritten on the way"),
            )
            .with("capability", line.as_str()),
        );
    }
    if f.starttls_unrecognised {
        if let Some((code, text, meta)) = &f.starttls_reply {
            out.push(
                Finding::new(
                    Kind::StarttlsStripped,
                    Severity::High,
                    *meta,
                    format!(
                        "server offered STARTTLS, then answered it {} as an unknown command",
                        code.0
                    ),
                )
                .with("reply", code.0)
                .with("reply_text", text.as_str()),
            );
        }
    }
    let accepted = f.starttls_phase == TlsPhase::Accepted;
    if let Some(finding) = starttls_ignored(f) {
        out.push(finding);
    }
    if let (true, Some(meta)) = (accepted, f.client_injected_meta) {
        out.push(
            Finding::new(
                Kind::StarttlsInjection,
                Severity::High,
                meta,
                format!(
                    "client pipelined {} plaintext bytes after STARTTLS before the TLS handshake",
                    f.client_injected
                ),
            )
            .with("side", "client")
            .with("bytes", f.client_injected),
        );
    }
    if let Some(meta) = f.server_injected_meta {
        out.push(
            Finding::new(
                Kind::StarttlsInjection,
                Severity::High,
                meta,
                format!(
                    "server sent {} plaintext bytes after accepting STARTTLS before the TLS handshake",
                    f.server_injected
                ),
            )
            .with("side", "server")
            .with("bytes", f.server_injected),
        );
    }
    let weak: Vec<&str> = f
        .auth_offered
        .iter()
        .map(String::as_str)
        .filter(|m| matches!(*m, "PLAIN" | "LOGIN"))
        .collect();
    if let (false, Some(meta)) = (weak.is_empty(), f.auth_offered_meta) {
        out.push(
            Finding::new(
                Kind::CleartextAuthOffered,
                Severity::Low,
                meta,
                format!("server offered AUTH {} before TLS", weak.join(" ")),
            )
            .with("mechanisms", weak.clone())
            .with("starttls_accepted", accepted),
        );
    }
    if let Some(meta) = f.first_message {
        out.push(
            Finding::new(
                Kind::CleartextMail,
                Severity::Low,
                meta,
                "a message was sent without TLS",
            )
            .with("messages", f.messages),
        );
    }
    out
}

/// One `cleartext_credentials` finding for an exchange that carried a secret.
fn credentials(ex: &AuthExchange, reveal: bool) -> Option<Finding> {
    if ex.inside_tls {
        return None;
    }
    let meta = ex.secret_meta?;
    let kind = match ex.mechanism.secret_kind() {
        Some(kind) => kind,
        // Seen from the server's side only, the mechanism may be unknown; whatever it was,
        // the client's secret crossed before TLS. Without a challenge that names a
        // crackable mechanism, the worse case (a reusable password) is assumed.
        None if ex.inferred => SecretKind::Reusable,
        None => return None,
    };
    let severity = match (&ex.secret, kind) {
        (Some(_), SecretKind::Reusable) => Severity::Critical,
        (Some(_), SecretKind::Crackable) => Severity::High,
        // The line that carried the secret was sent but not (wholly) captured.
        (None, SecretKind::Reusable) if ex.cut || ex.inferred => Severity::Critical,
        (None, SecretKind::Crackable) if ex.cut || ex.inferred => Severity::High,
        // LOGIN where only the user name crossed before the dialog ended or failed.
        (None, _) if ex.mechanism == Mechanism::Login => Severity::Medium,
        (None, _) => return None,
    };
    let mech = ex.mechanism.name();
    let partial_who;
    let who = match (&ex.username, &ex.username_partial) {
        (Some(u), _) => u.as_str(),
        (None, Some(p)) => {
            partial_who = format!("{p}... (cut)");
            partial_who.as_str()
        }
        (None, None) => "an unknown user",
    };
    let what = match (&ex.secret, kind) {
        (None, _) if ex.inferred => "credentials",
        (None, _) if ex.cut => "credentials (line cut by the capture)",
        (None, _) => "user name (no password seen)",
        (Some(_), SecretKind::Reusable)
            if matches!(ex.mechanism, Mechanism::XOauth2 | Mechanism::OauthBearer) =>
        {
            "bearer token"
        }
        (Some(_), SecretKind::Reusable) => "password",
        (Some(_), SecretKind::Crackable) => "crackable challenge response",
    };
    let outcome = match ex.outcome {
        crate::report::model::AuthOutcome::Success => "success",
        crate::report::model::AuthOutcome::Failure => "failure",
        crate::report::model::AuthOutcome::Unknown => "unknown",
    };
    let secret = match &ex.secret {
        Some(s) => serde_json::to_value(s.record(reveal)).unwrap_or(Value::Null),
        None => Value::Null,
    };
    let message = if ex.inferred {
        let mech = match ex.mechanism {
            Mechanism::Other(_) => String::new(),
            _ => format!(" {mech}"),
        };
        format!(
            "AUTH{mech} before TLS (outcome {outcome}), seen in the server's replies only: \
             the client's credentials crossed in cleartext, mechanism and user name not captured"
        )
    } else {
        format!("AUTH {mech} {what} for {who} sent without TLS (outcome {outcome})")
    };
    let mut f = Finding::new(Kind::CleartextCredentials, severity, meta, message)
        .with("mechanism", mech)
        .with(
            "username",
            ex.username.clone().map_or(Value::Null, Value::from),
        )
        .with("outcome", outcome)
        .with("secret", secret)
        .with("auth_frame", ex.meta.frame);
    if let Some(authzid) = &ex.authzid {
        f = f.with("authzid", authzid.as_str());
    }
    if ex.inferred {
        f = f.with("inferred_from", "server_replies").with(
            "note",
            "the client's side is not in the capture: the mechanism and user name are unknown; \
             the server's reply proves an AUTH exchange took place before TLS",
        );
    }
    if ex.cut {
        f = f.with("cut", true).with(
            "note",
            "the client's line was cut by the capture (snap length or loss): the user name \
             and secret are partial or missing from the capture, not from the wire",
        );
        if let Some(p) = &ex.username_partial {
            f = f.with("username_partial", p.as_str());
        }
    }
    if let (true, Some(h)) = (reveal, &ex.hashcat) {
        f = f.with("hashcat", h.expose());
    }
    Some(f)
}

/// STARTTLS answered 2xx, no handshake from either side, and the dialog went on in plaintext:
/// the server answered a command sent after the 2xx, or (with only the client's side in the
/// capture) the client went on with more than one command.
fn starttls_ignored(f: &Facts) -> Option<Finding> {
    if f.starttls_phase != TlsPhase::Accepted || f.client_tls || f.server_tls {
        return None;
    }
    let first = f.plaintext_after_accept?;
    let answered = f.plaintext_reply_after_accept.is_some();
    if !answered && f.plaintext_commands_after_accept < 2 {
        return None;
    }
    let (code, _, _) = f.starttls_reply.as_ref()?;
    let how = if answered {
        "the server answered in plaintext"
    } else {
        "no handshake followed"
    };
    Some(
        Finding::new(
            Kind::StarttlsIgnored,
            Severity::Medium,
            first,
            format!(
                "STARTTLS was answered {} but the dialog went on in plaintext ({how}): a \
                 TLS-intercepting device, a capture taken after decryption, or a broken client",
                code.0
            ),
        )
        .with("reply", code.0)
        .with("server_answered_in_plaintext", answered)
        .with("plaintext_commands", f.plaintext_commands_after_accept),
    )
}

/// A non-standard end-of-data: critical when the server ended the message there (it will
/// deliver the smuggled one), high when it did not or it is unknown (another server on the
/// path may), medium in a BDAT chunk (content on this hop, dangerous if relayed with DATA).
fn smuggling(f: &Facts, s: &SmuggleFact) -> Finding {
    let txn_reply = s.txn.and_then(|i| f.txns.get(i)).and_then(|t| t.reply);
    let reaction = s.reaction(txn_reply);
    let severity = match (s.bdat, reaction) {
        (true, _) => Severity::Medium,
        (false, Reaction::AcceptedAsEnd) => Severity::Critical,
        (false, _) => Severity::High,
    };
    let seq = s.seq.to_string();
    let message = match (s.bdat, reaction) {
        (true, _) => format!(
            "non-standard end-of-data {seq} inside a BDAT chunk: content on this hop, a second \
             message if relayed with DATA to a server that honours it"
        ),
        (false, Reaction::AcceptedAsEnd) => format!(
            "SMTP smuggling: the server ended the message at {seq} and took what followed as commands"
        ),
        (false, _) => format!(
            "non-standard end-of-data {seq} inside a DATA body (server reaction: {})",
            reaction.name()
        ),
    };
    let mut envelope = serde_json::Map::new();
    envelope.insert("mail_from".into(), s.mail_from.clone().into());
    envelope.insert("rcpt_to".into(), s.rcpt_to.clone().into());
    Finding::new(Kind::SmtpSmuggling, severity, s.meta, message)
        .with("sequence", seq)
        .with("frame", s.meta.frame)
        .with("body", if s.bdat { "bdat" } else { "data" })
        .with("commands_follow", s.commands_follow)
        .with("smuggled_envelope", Value::Object(envelope))
        .with("server_reaction", reaction.name())
        .with("end_reply", s.end_reply)
}
