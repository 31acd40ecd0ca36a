//! What to do about a finding, written from its evidence and its flow.
//!
//! A remedy is only useful when it names the thing to change: the versions the client offered
//! and the one the server wants, the issuer a client does not trust, the name it expected and
//! the names the certificate holds, the path when the server's answer never arrived. Ports
//! follow RFC 8314 and RFC 3207: port 25 (relay between servers) uses STARTTLS and nothing
//! else, so no remedy for port 25 points at implicit TLS; submission prefers implicit TLS on
//! 465 with STARTTLS on 587 as the alternative.
//!
//! Everything quoted here may come off the wire (certificate names, SNI, reply text): the
//! callers escape it for their medium (terminal or HTML).

use serde_json::{Map, Value};

use super::model::FlowRecord;
use crate::findings::{Finding, Kind};

/// The role RFC 8314 gives a server port.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PortRole {
    /// 25: relay between servers; STARTTLS only.
    Relay,
    /// 465: submission over implicit TLS.
    Submissions,
    /// 587 and anything else that carries submission.
    Submission,
}

fn port_role(port: Option<u64>) -> PortRole {
    match port {
        Some(25) => PortRole::Relay,
        Some(465) => PortRole::Submissions,
        _ => PortRole::Submission,
    }
}

fn text<'a>(ev: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    ev.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn num(ev: &Map<String, Value>, key: &str) -> Option<u64> {
    ev.get(key).and_then(Value::as_u64)
}

fn strings(ev: &Map<String, Value>, key: &str) -> Vec<String> {
    ev.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A list for a sentence: `a, b and 3 more`.
fn list(items: &[String], max: usize) -> String {
    let shown: Vec<&str> = items.iter().take(max).map(String::as_str).collect();
    let mut s = shown.join(", ");
    if items.len() > max {
        s.push_str(&format!(" and {} more", items.len() - max));
    }
    s
}

/// The server port a finding is about: the flow's, else what its evidence says.
fn server_port(f: &Finding, flow: Option<&FlowRecord>) -> Option<u64> {
    flow.map(|fl| u64::from(fl.server.port))
        .or_else(|| num(&f.evidence, "server_port"))
        .or_else(|| num(&f.evidence, "plaintext_port"))
}

/// The TLS versions the client offered, newest first as it listed them (the supported_versions
/// extension when present, else the ClientHello version).
fn offered_versions(flow: Option<&FlowRecord>) -> Vec<String> {
    let Some(ch) = flow
        .and_then(|f| f.tls.as_ref())
        .and_then(|t| t.client.as_ref())
    else {
        return Vec::new();
    };
    if ch.supported_versions.is_empty() {
        vec![ch.version.clone()]
    } else {
        ch.supported_versions
            .iter()
            .filter(|v| !v.starts_with("GREASE") && !v.starts_with("0x"))
            .cloned()
            .collect()
    }
}

/// Newest version of a list by name (SSLv2 < SSLv3 < TLSv1.0 < ... < TLSv1.3).
fn version_rank(v: &str) -> u8 {
    match v {
        "SSLv2" => 1,
        "SSLv3" => 2,
        "TLSv1.0" => 3,
        "TLSv1.1" => 4,
        "TLSv1.2" => 5,
        "TLSv1.3" => 6,
        _ => 0,
    }
}

/// The one remedy for `f`, specific to what `flow` and the evidence show.
pub fn remedy(f: &Finding, flow: Option<&FlowRecord>) -> String {
    let ev = &f.evidence;
    let role = port_role(server_port(f, flow));
    match f.kind {
        Kind::CleartextCredentials => match role {
            PortRole::Relay => "change the exposed credentials; on the server, offer AUTH on \
                                port 25 only after STARTTLS (Postfix smtpd_tls_auth_only = yes), \
                                and have clients submit mail on a submission port with TLS"
                .into(),
            _ => "change the exposed credentials; on the server, offer AUTH only after TLS \
                  (Postfix smtpd_tls_auth_only = yes); set the client to implicit TLS on 465 \
                  (RFC 8314 prefers it for submission) or to STARTTLS on 587"
                .into(),
        },
        Kind::TlsHandshakeFailure => handshake_failure(f, flow),
        Kind::TlsModeMismatch => mode_mismatch(ev, server_port(f, flow)),
        Kind::StarttlsNotUsed | Kind::CleartextMail => match role {
            PortRole::Relay => "make the sending MTA use STARTTLS whenever it is offered \
                                (Postfix smtp_tls_security_level = may, or dane/encrypt to \
                                require it; MTA-STS or DANE publish that policy)"
                .into(),
            _ => "set the client to require TLS: implicit TLS on 465 (RFC 8314 prefers it for \
                  submission) or STARTTLS on 587 without falling back to plaintext"
                .into(),
        },
        Kind::StarttlsRefused => starttls_refused(ev, flow),
        Kind::StarttlsStripped => "find the device on the path that rewrites the EHLO reply \
                                   (firewall SMTP/ESMTP inspection, proxy) and turn that off; \
                                   make clients require TLS (MTA-STS or DANE between servers)"
            .into(),
        Kind::StarttlsInjection => {
            let side = text(ev, "side").unwrap_or("client");
            format!(
                "update the MTA: it must discard plaintext buffered across STARTTLS (the {side} \
                 sent bytes before the handshake; CVE-2011-0411 class)"
            )
        }
        Kind::WeakTlsVersion => weak_version(ev, flow),
        Kind::WeakCipher => {
            let cipher = text(ev, "cipher").unwrap_or("the suite");
            format!(
                "the server chose {cipher}: remove NULL, EXPORT, anonymous, RC4, DES, 3DES and \
                 MD5 suites from its configuration and prefer ECDHE with AES-GCM or \
                 ChaCha20-Poly1305"
            )
        }
        Kind::CertificateProblem => certificate(ev),
        Kind::CleartextAuthOffered => "advertise AUTH only after STARTTLS (Postfix \
                                       smtpd_tls_auth_only = yes, Exim auth_advertise_hosts \
                                       limited to TLS sessions)"
            .into(),
        Kind::AuthBruteForce => {
            if num(ev, "distinct_passwords") == Some(1) {
                "one wrong password retried: fix the client's stored credentials (a \
                 misconfigured client, not a guessing attack), or rate-limit it"
                    .into()
            } else {
                "rate-limit or block the client (fail2ban, postscreen, anvil limits) and check \
                 the targeted accounts for compromise"
                    .into()
            }
        }
        Kind::ConnectionFailed => connection_failed(ev).into(),
        Kind::SmtpSmuggling => smuggling(ev).into(),
        Kind::StarttlsIgnored => "STARTTLS was accepted but the session went on in plaintext: \
                                  if the capture was taken behind a TLS-intercepting device \
                                  this is expected, otherwise fix the client or server so the \
                                  handshake follows the 220"
            .into(),
        Kind::StarttlsDowngrade => {
            if text(ev, "starttls") == Some("mangled") {
                "the server offered STARTTLS before and the capability now arrives mangled: \
                 find the device on the path that rewrites EHLO (SMTP inspection) and turn \
                 that off; make clients require TLS (MTA-STS or DANE between servers)"
                    .into()
            } else {
                "the server offered STARTTLS before and not in this session: find what removes \
                 it (a middlebox on the path, or a server node without TLS behind the same \
                 address) and make clients require TLS (MTA-STS or DANE between servers)"
                    .into()
            }
        }
        Kind::PlaintextFallback => {
            let failure = text(ev, "failure").unwrap_or("a failed TLS attempt");
            format!(
                "set the client to require TLS and never retry in plaintext; fix the \
                 {failure} that made it fall back"
            )
        }
        Kind::AuthPasswordSpraying => "block the client, and check the targeted accounts for \
                                       compromise (many accounts tried from one client)"
            .into(),
        Kind::AuthDistributedBruteForce => "the account is attacked from many addresses: \
                                            protect it (lockout, MFA, app passwords) and check \
                                            it for compromise"
            .into(),
    }
}

fn smuggling(ev: &Map<String, Value>) -> &'static str {
    match text(ev, "server_reaction") {
        Some("treated_as_body") => {
            "this server read the sequence as body, so this hop was not fooled; the client \
             tried to smuggle a second message: check that sender, and make sure this server \
             does not pass bare line endings on to the next hop (Postfix \
             smtpd_forbid_bare_newline = normalize)"
        }
        Some("rejected") => {
            "the server refused the bare line ending, as it should; the client tried to \
             smuggle a second message: check that sender"
        }
        _ if text(ev, "body") == Some("bdat") => {
            "harmless on this hop (BDAT counts its bytes), dangerous if the message is relayed \
             with DATA: make the relaying MTA normalise bare line endings, and every receiving \
             MTA accept only <CRLF>.<CRLF> (Postfix smtpd_forbid_bare_newline, Exim 4.97.1+, \
             Sendmail 8.18+, aiosmtpd 1.4.5+)"
        }
        _ => {
            "update the receiving MTA so it accepts only <CRLF>.<CRLF> as end of data (Postfix \
             smtpd_forbid_bare_newline = normalize, Exim 4.97.1+, Sendmail 8.18+, aiosmtpd \
             1.4.5+)"
        }
    }
}

fn starttls_refused(ev: &Map<String, Value>, flow: Option<&FlowRecord>) -> String {
    let reply = num(ev, "reply");
    let offered = flow
        .and_then(|f| f.smtp.as_ref())
        .map(|s| s.starttls.offered);
    match (reply, offered) {
        (Some(code @ (500 | 502 | 503)), Some(false)) => format!(
            "the server does not support STARTTLS here ({code}, and its EHLO reply never \
             offered it): enable TLS on this server and port, or send to one that offers \
             STARTTLS; this is not a certificate problem"
        ),
        (Some(code @ (500 | 502)), _) => format!(
            "the server answered {code} (command not implemented) to STARTTLS: enable TLS in \
             the server's configuration for this port"
        ),
        (Some(454), _) => "the server offers STARTTLS but cannot start TLS now (454): most \
                           often its certificate or key file is missing or unreadable; the \
                           server's log names the cause"
            .into(),
        (Some(code), _) => format!(
            "the server refused STARTTLS ({code}): its log says why; fix its TLS \
             configuration (certificate, key, TLS enabled) so it accepts STARTTLS"
        ),
        (None, _) => "fix the server's TLS setup (certificate, key, TLS enabled) so it accepts \
                      STARTTLS"
            .into(),
    }
}

fn handshake_failure(f: &Finding, flow: Option<&FlowRecord>) -> String {
    let ev = &f.evidence;
    let tls = flow.and_then(|fl| fl.tls.as_ref());
    if text(ev, "rule") == Some("client_hello_after_starttls_refused") {
        return "the client began TLS although the server refused STARTTLS: fix the server's \
                TLS setup so it accepts STARTTLS, and make the client stop after a refusal"
            .into();
    }
    match text(ev, "silence") {
        Some("no_server_hello") => {
            return "the server took the connection and the ClientHello but never answered: \
                    check that a TLS server (not a plaintext or hung process) listens there, \
                    and that no middlebox on the path holds the handshake; TLS settings are \
                    not the cause"
                .into();
        }
        Some("server_flight_unacknowledged") => {
            return "the server's first flight never reached the client whole: a path-MTU \
                    black hole (large packets dropped, ICMP \"fragmentation needed\" / ICMPv6 \
                    \"packet too big\" filtered): allow those ICMP messages or clamp the TCP \
                    MSS on the path; TLS settings are not the cause"
                .into();
        }
        _ => {}
    }
    let sender = text(ev, "sender");
    let sni = tls.and_then(|t| t.sni.as_deref());
    let cert = tls.and_then(|t| t.certificate.as_ref());
    match text(ev, "rule") {
        Some("tls13_client_rejected_server_flight") => {
            let name = sni
                .map(|s| format!(" (it asked for {s})"))
                .unwrap_or_default();
            return format!(
                "the client rejected the server's encrypted TLS 1.3 flight, most often its \
                 certificate: a CA the client does not trust, an expired certificate, or a \
                 name that does not match{name}; check the chain against the client's trust \
                 store (with --keylog the alert and certificate can be read)"
            );
        }
        Some("tls13_server_rejected_client_finished") => {
            return "the server rejected the client's Finished: most often a client \
                    certificate the server requires was missing or not trusted; check the \
                    server's client-certificate settings"
                .into();
        }
        _ => {}
    }
    let Some(desc) = text(ev, "description") else {
        return "one side closed during the handshake without a readable alert: compare what \
                each side supports (TLS versions, cipher suites, certificate and SNI) and read \
                that side's log for the reason"
            .into();
    };
    let by = sender.unwrap_or("one side");
    match desc {
        "protocol_version" => {
            let offered = offered_versions(flow);
            let chosen = tls.and_then(|t| t.version.as_deref());
            let newest = offered.iter().map(|v| version_rank(v)).max().unwrap_or(0);
            match (sender, chosen) {
                (Some("client"), Some(v)) => format!(
                    "the server chose {v} and the client refused it (the client offered {}): \
                     enable TLS 1.2 and 1.3 on the server",
                    list(&offered, 4)
                ),
                _ if newest > 0 && newest < version_rank("TLSv1.2") => format!(
                    "the client offered only {} and the server wants TLS 1.2 or newer: enable \
                     TLS 1.2 and 1.3 in the client (TLS 1.0 and 1.1 are deprecated, RFC 8996)",
                    list(&offered, 4)
                ),
                _ if !offered.is_empty() => format!(
                    "the client offered {} and the server accepts none of them: the server \
                     wants another version (an old one, or TLS 1.3 only); enable TLS 1.2 and \
                     1.3 on both sides",
                    list(&offered, 4)
                ),
                _ => "the two sides share no TLS version: enable TLS 1.2 and 1.3 on both".into(),
            }
        }
        "handshake_failure" | "insufficient_security" => {
            let n = tls
                .and_then(|t| t.client.as_ref())
                .map(|c| c.ciphers.len())
                .unwrap_or(0);
            let offer = if n > 0 {
                format!(" (the client offered {n} cipher suites)")
            } else {
                String::new()
            };
            format!(
                "the {by} found nothing acceptable in common{offer}: align cipher suites, \
                 groups and signature algorithms; enable ECDHE with AES-GCM or \
                 ChaCha20-Poly1305 on both sides"
            )
        }
        "unknown_ca" | "bad_certificate" | "certificate_unknown" | "unsupported_certificate" => {
            match cert {
                Some(c) => format!(
                    "the {by} does not accept the server's certificate (issuer \"{}\", {}): \
                     serve a chain from a CA the clients trust, intermediates included, or add \
                     that CA to the client's trust store",
                    c.issuer,
                    if c.self_signed {
                        "self-signed"
                    } else {
                        "signed by that CA"
                    }
                ),
                None => format!(
                    "the {by} does not accept the server's certificate ({desc}); the \
                     certificate is not visible in this capture (TLS 1.3 encrypts it): check \
                     its issuer against the client's trust store"
                ),
            }
        }
        "certificate_expired" => match cert {
            Some(c) => format!(
                "the server's certificate expired on {}: renew it",
                c.not_after
            ),
            None => "the server's certificate has expired: renew it".into(),
        },
        "unrecognized_name" => format!(
            "the server has no certificate for the name the client asked for ({}): add it \
             to a certificate on the server, or fix the name set in the client",
            sni.unwrap_or("no SNI sent")
        ),
        "access_denied" => "the server refused the handshake by policy (access control, \
                            client certificate): check the server's TLS access rules"
            .into(),
        "decrypt_error" | "bad_record_mac" | "decryption_failed" => {
            "the two sides derived different keys: a middlebox altering the handshake, or a \
             broken TLS implementation; capture on both sides of the path"
                .into()
        }
        _ => format!(
            "the {by} gave up with alert {desc}: read that side's log for the reason and \
             compare what each side supports"
        ),
    }
}

fn mode_mismatch(ev: &Map<String, Value>, port: Option<u64>) -> String {
    let tls_side = text(ev, "tls_side");
    match (tls_side, port) {
        (Some("server"), Some(465)) => "port 465 is implicit TLS (RFC 8314): set the client to \
                                        TLS-on-connect (SMTPS) for 465, or to STARTTLS on 587"
            .into(),
        (Some("server"), Some(25)) => "a server on port 25 speaks TLS from the first byte: \
                                       relay on 25 is plaintext with STARTTLS (RFC 3207, RFC \
                                       8314); switch that listener to STARTTLS"
            .into(),
        (Some("server"), _) if ev.contains_key("basis") => "this server port spoke TLS from the \
                                                            first byte earlier in the capture: \
                                                            set the client to TLS-on-connect \
                                                            for it, or point it at the server's \
                                                            STARTTLS port (587 for submission)"
            .into(),
        (Some("server"), _) => "the server speaks implicit TLS where the client expects \
                                plaintext/STARTTLS: switch the client to TLS-on-connect for \
                                this port, or point it at the STARTTLS port (587)"
            .into(),
        (_, Some(465)) => "the server on 465 speaks plaintext SMTP where clients expect \
                           implicit TLS (RFC 8314): enable TLS-on-connect on 465, or move the \
                           client to STARTTLS on 587"
            .into(),
        (_, Some(25)) => "port 25 carries relay with STARTTLS only (RFC 3207, RFC 8314): set \
                          the client to plaintext SMTP with STARTTLS for port 25, not \
                          TLS-on-connect"
            .into(),
        (_, Some(587)) => "port 587 is plaintext with STARTTLS (RFC 8314): set the client to \
                           STARTTLS for 587, or to TLS-on-connect on 465"
            .into(),
        _ => "the client is set for implicit TLS where the server expects plaintext/STARTTLS: \
              switch the client to STARTTLS for this port, or point it at 465"
            .into(),
    }
}

fn weak_version(ev: &Map<String, Value>, flow: Option<&FlowRecord>) -> String {
    let chosen = text(ev, "version").unwrap_or("an old version");
    let offered = offered_versions(flow);
    let newest = offered.iter().map(|v| version_rank(v)).max().unwrap_or(0);
    if newest >= version_rank("TLSv1.2") {
        format!(
            "the client offered {} but the server chose {chosen}: enable TLS 1.2 and 1.3 on \
             the server and disable SSLv3, TLS 1.0 and 1.1 (RFC 8996)",
            list(&offered, 4)
        )
    } else if newest > 0 {
        format!(
            "the client offered only {}, so {chosen} was used: upgrade or reconfigure the \
             client for TLS 1.2 and 1.3, then disable SSLv3, TLS 1.0 and 1.1 on the server \
             (RFC 8996)",
            list(&offered, 4)
        )
    } else {
        format!(
            "{chosen} was negotiated: enable TLS 1.2 and 1.3 and disable SSLv3, TLS 1.0 and \
             1.1 on both sides (RFC 8996)"
        )
    }
}

fn certificate(ev: &Map<String, Value>) -> String {
    let problems = strings(ev, "problems");
    let mut parts = Vec::new();
    for p in &problems {
        match p.as_str() {
            "expired" => parts.push(format!(
                "renew the certificate, which expired on {}",
                text(ev, "not_after").unwrap_or("?")
            )),
            "not_yet_valid" => parts.push(format!(
                "the certificate is valid only from {}: check the server's clock or the \
                 certificate dates",
                text(ev, "not_before").unwrap_or("?")
            )),
            "self_signed" => parts.push(format!(
                "replace the self-signed certificate (issuer \"{}\") with one from a CA the \
                 clients trust, or pin it with DANE (TLSA) between servers",
                text(ev, "issuer").unwrap_or("?")
            )),
            "name_mismatch" => {
                let san = strings(ev, "san");
                let names = if san.is_empty() {
                    format!("\"{}\"", text(ev, "subject").unwrap_or("?"))
                } else {
                    list(&san, 4)
                };
                parts.push(format!(
                    "clients ask for {} but the certificate names {names}: add that name to \
                     its subjectAltName, or point clients at a name it holds",
                    text(ev, "name_checked").unwrap_or("another name")
                ));
            }
            "weak_key" => parts.push(format!(
                "replace the {} {}-bit key with RSA 2048 bits or more, or ECDSA P-256",
                text(ev, "key_type").unwrap_or("weak"),
                num(ev, "key_bits").map_or("?".to_string(), |b| b.to_string())
            )),
            _ => {}
        }
    }
    if parts.is_empty() {
        "install a valid certificate from a trusted CA that matches the server name, with a \
         strong key (RSA 2048 bits or more, or ECDSA)"
            .into()
    } else {
        parts.join("; ")
    }
}

/// What to do about a connection that never opened, from how it failed.
fn connection_failed(ev: &Map<String, Value>) -> &'static str {
    let port = num(ev, "server_port");
    // ICMP codes that say a filter refused the packet: IPv4 9, 10, 13 (RFC 1812), ICMPv6 1
    // (RFC 4443); and those that say nothing listens: IPv4 3, ICMPv6 4.
    let icmp = match (num(ev, "icmp_type"), num(ev, "icmp_code")) {
        (Some(3), Some(9 | 10 | 13)) | (Some(1), Some(1)) => Some("prohibited"),
        (Some(3), Some(3)) | (Some(1), Some(4)) => Some("port"),
        _ => None,
    };
    match (text(ev, "reason"), port) {
        (Some("reset"), Some(465)) => {
            "nothing listens on 465: enable implicit TLS (TLS on connect) there, which RFC 8314 \
             prefers for submission, or submit with STARTTLS on 587"
        }
        (Some("reset"), Some(25)) => {
            "nothing listens on 25: check that the MTA runs and listens on this address (relay \
             between servers is port 25, with STARTTLS)"
        }
        (Some("reset"), _) => {
            "nothing listens on that port: check that the mail server runs and listens on this \
             address and port, or that a firewall rule does not reject it"
        }
        (Some("icmp_unreachable"), _) if icmp == Some("prohibited") => {
            "a firewall rejects the port (ICMP administratively prohibited): allow it in the \
             rules of the server or of the path, or use the port the server offers"
        }
        (Some("icmp_unreachable"), _) if icmp == Some("port") => {
            "the server's host says nothing listens on that port (ICMP port unreachable), or a \
             firewall rejects it so: check the service and the firewall rules"
        }
        (Some("icmp_unreachable"), _) => {
            "a router or firewall rejected the connection (ICMP unreachable): check the firewall \
             rules and routes on the path to the server"
        }
        (_, Some(465)) => {
            "SYNs to 465 went unanswered: a firewall drops the port; open 465 for implicit TLS \
             (RFC 8314 prefers it for submission) or submit with STARTTLS on 587"
        }
        (_, Some(587)) => {
            "SYNs to 587 went unanswered: a firewall drops submission; open 587 (STARTTLS) or \
             use implicit TLS on 465 (RFC 8314)"
        }
        (_, Some(25)) => {
            "SYNs to 25 went unanswered: a firewall (or the provider) drops port 25; open it \
             between the mail servers (relay uses 25 with STARTTLS)"
        }
        _ => {
            "SYNs went unanswered: a firewall on the path drops the port, or the server is down; \
             check the firewall rules and that the server listens"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Severity;
    use crate::flow::EventMeta;

    fn finding(kind: Kind, ev: &[(&str, Value)]) -> Finding {
        let mut f = Finding::new(kind, Severity::Medium, EventMeta::default(), "m");
        for (k, v) in ev {
            f = f.with(k, v.clone());
        }
        f
    }

    #[test]
    fn port_25_remedies_never_suggest_implicit_tls() {
        for kind in [
            Kind::CleartextCredentials,
            Kind::StarttlsNotUsed,
            Kind::CleartextMail,
            Kind::TlsModeMismatch,
        ] {
            for side in ["client", "server"] {
                let f = finding(
                    kind,
                    &[("server_port", 25.into()), ("tls_side", side.into())],
                );
                let r = remedy(&f, None);
                assert!(!r.contains("465"), "{kind:?} on 25 suggests 465: {r}");
            }
        }
    }

    #[test]
    fn submission_prefers_implicit_tls() {
        let f = finding(Kind::StarttlsNotUsed, &[("server_port", 587.into())]);
        assert!(remedy(&f, None).contains("implicit TLS on 465"));
    }

    #[test]
    fn no_alert_never_talks_of_an_alert_description() {
        let f = finding(
            Kind::TlsHandshakeFailure,
            &[
                ("rule", "closed_before_completion".into()),
                ("description", Value::Null),
            ],
        );
        assert!(!remedy(&f, None).contains("alert description"));
        let silent = finding(
            Kind::TlsHandshakeFailure,
            &[("silence", "server_flight_unacknowledged".into())],
        );
        let r = remedy(&silent, None);
        assert!(r.contains("MSS") && !r.contains("cipher suites in"), "{r}");
    }

    #[test]
    fn refused_by_a_server_without_starttls_is_no_certificate_problem() {
        let f = finding(Kind::StarttlsRefused, &[("reply", 502.into())]);
        let r = remedy(&f, None);
        assert!(
            r.contains("502") && !r.contains("certificate or key"),
            "{r}"
        );
    }

    #[test]
    fn certificate_remedy_names_what_is_wrong() {
        let f = finding(
            Kind::CertificateProblem,
            &[
                ("problems", vec!["name_mismatch", "expired"].into()),
                ("name_checked", "mx.example.org".into()),
                ("san", vec!["other.example.org"].into()),
                ("not_after", "2020-01-01T00:00:00Z".into()),
            ],
        );
        let r = remedy(&f, None);
        assert!(
            r.contains("mx.example.org") && r.contains("other.example.org"),
            "{r}"
        );
        assert!(r.contains("2020-01-01"), "{r}");
    }
}
