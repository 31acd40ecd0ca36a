//! Session tests: whole dialogs, fed in every chunking, must give the same record, findings
//! and TLS hand-over.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::findings::{Kind, Severity};
use crate::flow::{Direction, EventMeta};
use crate::report::model::{AuthOutcome, SecretRecord};

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

/// One packet of a dialog: direction and payload; its frame number is its index + 1.
type Step<'a> = (Direction, &'a [u8]);

#[derive(Debug, PartialEq)]
struct Outcome {
    record: crate::report::model::SmtpRecord,
    findings: Vec<(Kind, Severity, u64, String)>,
    /// Bytes handed to TLS per direction (client, server).
    tls: [Vec<u8>; 2],
    accepted: bool,
}

fn meta(frame: usize) -> EventMeta {
    EventMeta {
        frame: frame as u64,
        ..EventMeta::default()
    }
}

/// Feeds the steps, each cut into pieces by `split`.
fn run_with(steps: &[Step<'_>], split: impl Fn(&[u8]) -> Vec<&[u8]>) -> Outcome {
    let mut s = SmtpSession::new();
    let mut tls: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut upgraded = [false, false];
    for (i, (dir, data)) in steps.iter().enumerate() {
        for piece in split(data) {
            let d = dir.index();
            if upgraded[d] {
                tls[d].extend_from_slice(piece);
                continue;
            }
            match s.feed(*dir, piece, meta(i + 1)) {
                Feed::Smtp => {}
                Feed::Upgrade { offset } => {
                    upgraded[d] = true;
                    tls[d].extend_from_slice(&piece[offset..]);
                }
            }
        }
    }
    s.end(C, meta(steps.len() + 1));
    s.end(S, meta(steps.len() + 1));
    let o = outcome(&s, tls, true);
    // The record built at the end of a flow (moved out of the session) is the same.
    assert_eq!(s.into_record(true), o.record, "the final record differs");
    o
}

fn outcome(s: &SmtpSession, tls: [Vec<u8>; 2], reveal: bool) -> Outcome {
    Outcome {
        record: s.record(reveal),
        findings: s
            .findings(reveal)
            .into_iter()
            .map(|f| {
                (
                    f.kind,
                    f.severity,
                    f.frame,
                    serde_json::to_string(&f.evidence).unwrap(),
                )
            })
            .collect(),
        tls,
        accepted: s.starttls_accepted(),
    }
}

/// Runs the dialog whole, byte by byte, and split at every position of every step; all
/// must agree. Returns the whole-chunk outcome.
fn run(steps: &[Step<'_>]) -> Outcome {
    let whole = run_with(steps, |d| vec![d]);
    let bytes = run_with(steps, |d| d.chunks(1).collect());
    assert_eq!(whole, bytes, "byte-by-byte feeding differs");
    for (si, (_, data)) in steps.iter().enumerate() {
        for cut in 1..data.len() {
            let split = run_with(steps, |d| {
                if std::ptr::eq(d, steps[si].1) {
                    vec![&d[..cut], &d[cut..]]
                } else {
                    vec![d]
                }
            });
            assert_eq!(whole, split, "split of step {si} at {cut} differs");
        }
    }
    whole
}

fn kinds(o: &Outcome) -> Vec<Kind> {
    o.findings.iter().map(|f| f.0).collect()
}

fn finding(o: &Outcome, kind: Kind) -> &(Kind, Severity, u64, String) {
    o.findings
        .iter()
        .find(|f| f.0 == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", o.findings))
}

fn b64(s: &[u8]) -> String {
    STANDARD.encode(s)
}

const EHLO_CAPS: &[u8] = b"250-mail.example.org Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250 8BITMIME\r\n";

#[test]
fn plaintext_auth_login_and_message() {
    // The shape of zeek/smtp.pcap: AUTH LOGIN in clear after STARTTLS was offered.
    let steps: &[Step<'_>] = &[
        (S, b"220 mail.example.org ESMTP ready\r\n"),
        (C, b"EHLO client.example.net\r\n"),
        (S, EHLO_CAPS),
        (C, b"AUTH LOGIN\r\n"),
        (S, b"334 VXNlcm5hbWU6\r\n"),
        (C, b"Z3VycGFydGFwQHBhdHJpb3RzLmlu\r\n"),
        (S, b"334 UGFzc3dvcmQ6\r\n"),
        (C, b"cHVuamFiQDEyMw==\r\n"),
        (S, b"235 2.7.0 Authentication successful\r\n"),
        (C, b"MAIL FROM:<a@example.net>\r\n"),
        (S, b"250 OK\r\n"),
        (C, b"RCPT TO:<b@example.org>\r\n"),
        (S, b"250 Accepted\r\n"),
        (C, b"DATA\r\n"),
        (S, b"354 Enter message\r\n"),
        (
            C,
            b"Subject: hi\r\n\r\nQUIT\r\nRCPT TO:<x@y>\r\n..leading dot\r\n",
        ),
        (C, b"last line\r\n.\r\n"),
        (S, b"250 OK id=1\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ];
    let o = run(steps);
    let r = &o.record;
    assert_eq!(
        r.banner.as_deref(),
        Some("220 mail.example.org ESMTP ready")
    );
    assert_eq!(r.helo.as_deref(), Some("client.example.net"));
    assert_eq!(
        r.capabilities,
        vec![
            "PIPELINING",
            "SIZE 10240000",
            "STARTTLS",
            "AUTH PLAIN LOGIN CRAM-MD5",
            "8BITMIME"
        ]
    );
    assert!(r.starttls.offered && !r.starttls.issued);
    assert_eq!(r.starttls.reply, None);
    assert_eq!(r.auth.len(), 1);
    let a = &r.auth[0];
    assert_eq!(a.mechanism, "LOGIN");
    assert_eq!(a.username.as_deref(), Some("gurpartap@patriots.in"));
    assert_eq!(a.outcome, AuthOutcome::Success);
    assert_eq!(a.reply, Some(235));
    assert_eq!((a.frame, a.secret_frame), (4, Some(8)));
    assert_eq!(
        a.secret,
        Some(SecretRecord::Revealed {
            value: "punjab@123".into()
        })
    );
    assert_eq!(r.transactions, 1);
    assert_eq!(r.messages, 1);
    assert_eq!(r.recipients, 1);
    let t = &r.transaction_list[0];
    assert_eq!(
        (t.mail_reply, t.recipients_accepted, t.body, t.reply),
        (Some(250), 1, Some("data"), Some(250))
    );
    assert_eq!(t.body_bytes, 51 + 14);
    // The body's QUIT and RCPT lines are not commands.
    assert_eq!(r.stats.commands, 6);
    assert_eq!(
        r.stats.reply_codes,
        vec![220, 250, 334, 334, 235, 250, 250, 354, 250, 221]
    );
    assert!(!r.stats.pipelining_used);
    assert_eq!(s_banner_host(steps), Some("mail.example.org".to_string()));

    let creds = finding(&o, Kind::CleartextCredentials);
    assert_eq!((creds.1, creds.2), (Severity::Critical, 8));
    let not_used = finding(&o, Kind::StarttlsNotUsed);
    assert_eq!((not_used.1, not_used.2), (Severity::Medium, 4));
    let offered = finding(&o, Kind::CleartextAuthOffered);
    assert_eq!((offered.1, offered.2), (Severity::Low, 3));
    assert!(offered.3.contains("PLAIN") && offered.3.contains("LOGIN"));
    let mail = finding(&o, Kind::CleartextMail);
    assert_eq!((mail.1, mail.2), (Severity::Low, 16));
    assert!(!o.accepted);
}

fn s_banner_host(steps: &[Step<'_>]) -> Option<String> {
    let mut s = SmtpSession::new();
    for (i, (d, data)) in steps.iter().enumerate() {
        s.feed(*d, data, meta(i + 1));
    }
    s.banner_host().map(str::to_string)
}

const CLIENT_HELLO: &[u8] = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00";
const SERVER_HELLO: &[u8] = b"\x16\x03\x03\x00\x04\x02\x00\x00\x00";

#[test]
fn starttls_accepted_hands_both_sides_to_tls() {
    let mut server_220 = b"220 2.0.0 Ready to start TLS\r\n".to_vec();
    server_220.extend_from_slice(SERVER_HELLO);
    let steps: &[Step<'_>] = &[
        (S, b"220 mx.example.org ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, EHLO_CAPS),
        (C, b"STARTTLS\r\n"),
        (S, &server_220),
        (C, CLIENT_HELLO),
        (S, b"\x17\x03\x03\x00\x01\x00"),
    ];
    let o = run(steps);
    assert!(o.accepted);
    assert_eq!(o.tls[0], CLIENT_HELLO);
    let mut expect = SERVER_HELLO.to_vec();
    expect.extend_from_slice(b"\x17\x03\x03\x00\x01\x00");
    assert_eq!(o.tls[1], expect);
    let st = &o.record.starttls;
    assert!(st.offered && st.issued && st.client_tls && st.server_tls);
    assert_eq!((st.reply, st.frame), (Some(220), Some(4)));
    assert_eq!(st.reply_text.as_deref(), Some("2.0.0 Ready to start TLS"));
    assert_eq!((st.client_injected_bytes, st.server_injected_bytes), (0, 0));
    assert_eq!(kinds(&o), vec![Kind::CleartextAuthOffered]);
}

#[test]
fn starttls_answered_then_plaintext_dialog_is_ignored() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx.example.org ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 STARTTLS\r\n"),
        (C, b"STARTTLS\r\n"),
        (S, b"220 2.0.0 Ready to start TLS\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 8BITMIME\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ];
    let o = run(steps);
    assert!(o.accepted);
    assert!(o.tls[0].is_empty() && o.tls[1].is_empty());
    let (_, sev, frame, ev) = finding(&o, Kind::StarttlsIgnored);
    assert_eq!((*sev, *frame), (Severity::Medium, 6));
    assert!(
        ev.contains(r#""server_answered_in_plaintext":true"#),
        "{ev}"
    );
    assert!(ev.contains(r#""reply":220"#), "{ev}");
    assert!(!kinds(&o).contains(&Kind::StarttlsInjection));
}

#[test]
fn starttls_answered_then_one_plaintext_quit_unanswered_is_not_ignored() {
    // A client that gives up with QUIT and never hears back proves no plaintext dialog.
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 STARTTLS\r\n"),
        (C, b"STARTTLS\r\n"),
        (S, b"220 go ahead\r\n"),
        (C, b"QUIT\r\n"),
    ];
    let o = run(steps);
    assert!(!kinds(&o).contains(&Kind::StarttlsIgnored));
}

#[test]
fn client_hello_before_the_reply_still_upgrades() {
    let mut client = b"STARTTLS\r\n".to_vec();
    client.extend_from_slice(CLIENT_HELLO);
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 STARTTLS\r\n"),
        (C, &client),
        (S, b"220 go ahead\r\n"),
    ];
    let o = run(steps);
    assert!(o.accepted);
    assert_eq!(o.tls[0], CLIENT_HELLO);
    assert_eq!(o.record.starttls.client_injected_bytes, 0);
    assert!(!kinds(&o).contains(&Kind::StarttlsInjection));
}

#[test]
fn starttls_refused_stays_smtp() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 STARTTLS\r\n"),
        (C, b"STARTTLS\r\n"),
        (S, b"454 4.7.0 TLS not available due to local problem\r\n"),
        (C, b"MAIL FROM:<a@b>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ];
    let o = run(steps);
    assert!(!o.accepted);
    assert!(o.tls[0].is_empty() && o.tls[1].is_empty());
    assert_eq!(o.record.starttls.reply, Some(454));
    assert_eq!(o.record.transactions, 1);
    let f = finding(&o, Kind::StarttlsRefused);
    assert_eq!((f.1, f.2), (Severity::Medium, 5));
    assert!(f.3.contains("454") && f.3.contains("TLS not available"));
    // Refused is not "not used": the client tried.
    assert!(!kinds(&o).contains(&Kind::StarttlsNotUsed));
}

#[test]
fn starttls_stripped_capability() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (
            S,
            b"250-mx\r\n250-PIPELINING\r\n250-XXXXXXXA\r\n250 8BITMIME\r\n",
        ),
        (C, b"MAIL FROM:<a@b>\r\n"),
        (S, b"250 ok\r\n"),
    ];
    let o = run(steps);
    assert!(!o.record.starttls.offered);
    let f = finding(&o, Kind::StarttlsStripped);
    assert_eq!((f.1, f.2), (Severity::High, 3));
    assert!(f.3.contains("XXXXXXXA"));
    assert!(!kinds(&o).contains(&Kind::StarttlsNotUsed));
}

#[test]
fn starttls_offered_then_unrecognised() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 STARTTLS\r\n"),
        (C, b"STARTTLS\r\n"),
        (S, b"502 5.5.2 Error: command not recognized\r\n"),
    ];
    let o = run(steps);
    let stripped: Vec<_> = o
        .findings
        .iter()
        .filter(|f| f.0 == Kind::StarttlsStripped)
        .collect();
    assert_eq!(stripped.len(), 1);
    assert_eq!(stripped[0].2, 5);
    assert!(kinds(&o).contains(&Kind::StarttlsRefused));
}

#[test]
fn client_side_injection() {
    // CVE-2011-0411: a command pipelined behind STARTTLS, before the handshake.
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 STARTTLS\r\n"),
        (C, b"STARTTLS\r\nRSET\r\n"),
        (S, b"220 ready\r\n"),
        (C, CLIENT_HELLO),
    ];
    let o = run(steps);
    assert!(o.accepted);
    assert_eq!(o.tls[0], CLIENT_HELLO);
    assert_eq!(o.record.starttls.client_injected_bytes, 6);
    let f = finding(&o, Kind::StarttlsInjection);
    assert_eq!((f.1, f.2), (Severity::High, 4));
    assert!(f.3.contains("\"side\":\"client\"") && f.3.contains("\"bytes\":6"));
}

#[test]
fn client_pipelining_after_refused_starttls_is_no_injection() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\nSTARTTLS\r\nRSET\r\n"),
        (S, b"250 mx\r\n454 no\r\n250 ok\r\n"),
    ];
    let o = run(steps);
    assert!(!kinds(&o).contains(&Kind::StarttlsInjection));
    assert!(o.record.stats.pipelining_used);
}

#[test]
fn server_side_injection() {
    let mut server = b"220 ready\r\n250 injected\r\n".to_vec();
    server.extend_from_slice(SERVER_HELLO);
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 STARTTLS\r\n"),
        (C, b"STARTTLS\r\n"),
        (S, &server),
        (C, CLIENT_HELLO),
    ];
    let o = run(steps);
    assert_eq!(o.tls[1], SERVER_HELLO);
    assert_eq!(o.record.starttls.server_injected_bytes, 14);
    let f = finding(&o, Kind::StarttlsInjection);
    assert_eq!((f.1, f.2), (Severity::High, 5));
    assert!(f.3.contains("\"side\":\"server\""));
}

#[test]
fn accepted_starttls_then_plaintext_keeps_parsing() {
    // Like arkime/smtp-decrypted.pcap and suricata-verify/smtp-rset-starttls: after 220 the
    // dialog goes on in clear, which is neither injection nor TLS: `starttls_ignored`.
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\n"),
        (S, b"250-mx\r\n250-STARTTLS\r\n250 AUTH NTLM\r\n"),
        (C, b"rset\nstaRttLs\n"),
        (S, b"250 ok\n"),
        (S, b"220 2.0.0 SMTP server ready\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250-AUTH NTLM LOGIN\r\n250 CHUNKING\r\n"),
        (C, b"MAIL FROM:<a@b>\r\n"),
        (S, b"250 ok\r\n"),
    ];
    let o = run(steps);
    assert!(o.accepted);
    assert!(o.tls[0].is_empty() && o.tls[1].is_empty());
    let r = &o.record;
    assert_eq!(r.capabilities, vec!["STARTTLS", "AUTH NTLM"]);
    assert_eq!(
        r.capabilities_after_starttls,
        vec!["AUTH NTLM LOGIN", "CHUNKING"]
    );
    assert_eq!(r.auth_offered, vec!["NTLM"]);
    assert_eq!((r.starttls.reply, r.starttls.frame), (Some(220), Some(4)));
    assert_eq!(
        (
            r.starttls.client_injected_bytes,
            r.starttls.server_injected_bytes
        ),
        (0, 0)
    );
    assert_eq!(r.transactions, 1);
    assert_eq!(kinds(&o), vec![Kind::StarttlsIgnored], "{:?}", o.findings);
    assert_eq!(finding(&o, Kind::StarttlsIgnored).2, 7);
}

#[test]
fn pipelined_replies_match_their_commands() {
    let plain = b64(b"\0alice\0wrong");
    let auth_and_mail = format!(
        "AUTH PLAIN {plain}\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\nDATA\r\n"
    );
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"),
        (C, auth_and_mail.as_bytes()),
        (
            S,
            b"535 5.7.8 bad credentials\r\n250 ok\r\n550 no such user\r\n250 ok\r\n354 go\r\n",
        ),
        (C, b"body\r\n.\r\nQUIT\r\n"),
        (S, b"250 queued\r\n221 bye\r\n"),
    ];
    let o = run(steps);
    let r = &o.record;
    assert!(r.stats.pipelining_used);
    assert_eq!(r.auth[0].outcome, AuthOutcome::Failure);
    assert_eq!(r.auth[0].reply, Some(535));
    assert_eq!(r.auth[0].username.as_deref(), Some("alice"));
    let t = &r.transaction_list[0];
    assert_eq!(
        (t.mail_reply, t.recipients, t.recipients_accepted, t.reply),
        (Some(250), 2, 1, Some(250))
    );
    assert_eq!(r.stats.unmatched_replies, 0);
    assert_eq!(r.stats.commands, 7);
    let creds = finding(&o, Kind::CleartextCredentials);
    assert_eq!((creds.1, creds.2), (Severity::Critical, 4));
    assert!(creds.3.contains("\"outcome\":\"failure\""));
}

#[test]
fn body_sent_without_waiting_for_354() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"HELO c\r\n"),
        (S, b"250 mx\r\n"),
        (C, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nFrom: a@b\r\nSubject: x\r\n\r\nMAIL FROM:<evil>\r\n.\r\n"),
        (S, b"250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"),
        (C, b"QUIT\r\n"),
    ];
    let o = run(steps);
    let r = &o.record;
    assert_eq!(r.transactions, 1);
    assert_eq!(r.messages, 1);
    assert_eq!(r.transaction_list[0].reply, Some(250));
    assert_eq!(r.stats.commands, 5);
    assert_eq!(r.stats.unmatched_replies, 0);
}

#[test]
fn refused_data_means_no_body() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"MAIL FROM:<a@b>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"DATA\r\n"),
        (S, b"554 no valid recipients\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ];
    let o = run(steps);
    assert_eq!(o.record.messages, 0);
    assert_eq!(o.record.stats.commands, 3);
    assert!(!kinds(&o).contains(&Kind::CleartextMail));
}

#[test]
fn bdat_chunks_skipped_by_length() {
    // RFC 3030 §5.1-like; the chunk holds "QUIT\r\n" and CRLF.CRLF, which must not count.
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 CHUNKING\r\n"),
        (
            C,
            b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 12\r\nQUIT\r\n\r\n.\r\n",
        ),
        (C, b"xBDAT 3 LAST\r\nabc"),
        (S, b"250 ok\r\n250 ok\r\n250 12 octets\r\n250 done\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ];
    let o = run(steps);
    let r = &o.record;
    assert_eq!(r.stats.bdat_bytes, 15);
    assert_eq!(r.stats.commands, 6);
    assert_eq!(r.messages, 1);
    let t = &r.transaction_list[0];
    assert_eq!(
        (t.body, t.body_bytes, t.reply),
        (Some("bdat"), 15, Some(250))
    );
    let mail = finding(&o, Kind::CleartextMail);
    assert_eq!(mail.2, 4);
}

#[test]
fn cram_md5_in_session() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"AUTH CRAM-MD5\r\n"),
        (
            S,
            b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n",
        ),
        (C, b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"),
        (S, b"235 ok\r\n"),
    ];
    let o = run(steps);
    let a = &o.record.auth[0];
    assert_eq!(a.username.as_deref(), Some("tim"));
    assert_eq!(a.outcome, AuthOutcome::Success);
    assert!(a.hashcat.as_deref().unwrap().starts_with("$cram_md5$PDE4"));
    let f = finding(&o, Kind::CleartextCredentials);
    assert_eq!((f.1, f.2), (Severity::High, 4));
    assert!(f.3.contains("$cram_md5$"));
}

/// The SMTP flow of arkime/ntlm_synthetic.pcap.
const NTLM_DIALOG: &[Step<'static>] = &[
    (S, b"220 mail.example.com ESMTP\r\n"),
    (C, b"EHLO client.example.com\r\n"),
    (S, b"250-mail.example.com\r\n250-AUTH NTLM\r\n250 OK\r\n"),
    (C, b"AUTH NTLM\r\n"),
    (S, b"334 \r\n"),
    (C, b"TlRMTVNTUAABAAAABwIAAgcABwAoAAAACAAIAC8AAAAKAGFKAAAAD1NNVFBET01TTVRQSE9TVA==\r\n"),
    (S, b"334 TlRMTVNTUAACAAAADgAOADgAAAAFAgACASNFZ4mrze8AAAAAAAAAAAQABABGAAAACgBhSgAAAA9TAE0AVABQAFQARwBUAAAAAAA=\r\n"),
    (C, b"TlRMTVNTUAADAAAAGAAYAFgAAAAYABgAcAAAAA4ADgCIAAAACAAIAJYAAAAQABAAngAAABAAEACuAAAABQIAAgoAYUoAAAAPAAAAAAAAAAAAAAAAAAAAAExMTExMTExMTExMTExMTExMTExMTExMTE5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTlMATQBUAFAARABPAE0AagBhAGMAawBTAE0AVABQAEgATwBTAFQAS0tLS0tLS0tLS0tLS0tLSw==\r\n"),
    (S, b"235 Authentication successful\r\n"),
    (C, b"QUIT\r\n"),
    (S, b"221 Bye\r\n"),
];

#[test]
fn ntlm_in_session() {
    let o = run(NTLM_DIALOG);
    let a = &o.record.auth[0];
    assert_eq!(a.mechanism, "NTLM");
    assert_eq!(a.username.as_deref(), Some("SMTPDOM\\jack"));
    assert_eq!((a.outcome, a.secret_frame), (AuthOutcome::Success, Some(8)));
    assert!(a.hashcat.as_deref().unwrap().starts_with("jack::SMTPDOM:"));
    let f = finding(&o, Kind::CleartextCredentials);
    assert_eq!((f.1, f.2), (Severity::High, 8));
    assert_eq!(o.record.stats.commands, 3);
}

#[test]
fn xoauth2_and_oauthbearer_in_session() {
    let x = b64(b"user=someuser@example.com\x01auth=Bearer ya29.TOKENXYZ\x01\x01");
    let ob = b64(b"n,a=user@example.com,\x01auth=Bearer BEARERTOKEN\x01\x01");
    let c1 = format!("AUTH XOAUTH2 {x}\r\n");
    let c2 = format!("AUTH OAUTHBEARER {ob}\r\n");
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, c1.as_bytes()),
        (S, b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"),
        (C, b"\r\n"),
        (S, b"535 5.7.8 bad token\r\n"),
        (C, c2.as_bytes()),
        (S, b"235 ok\r\n"),
    ];
    let o = run(steps);
    let a = &o.record.auth;
    assert_eq!(a.len(), 2);
    assert_eq!(
        (a[0].mechanism.as_str(), a[0].outcome),
        ("XOAUTH2", AuthOutcome::Failure)
    );
    assert_eq!(
        a[0].secret,
        Some(SecretRecord::Revealed {
            value: "ya29.TOKENXYZ".into()
        })
    );
    assert_eq!(
        (a[1].mechanism.as_str(), a[1].outcome),
        ("OAUTHBEARER", AuthOutcome::Success)
    );
    assert_eq!(a[1].username.as_deref(), Some("user@example.com"));
    let creds: Vec<_> = o
        .findings
        .iter()
        .filter(|f| f.0 == Kind::CleartextCredentials)
        .collect();
    assert_eq!(creds.len(), 2);
    assert!(creds.iter().all(|f| f.1 == Severity::Critical));
    // The empty line after the error challenge is part of AUTH, not a command.
    assert_eq!(o.record.stats.commands, 2);
}

#[test]
fn auth_cancelled() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"AUTH LOGIN\r\n"),
        (S, b"334 VXNlcm5hbWU6\r\n"),
        (C, b"*\r\n"),
        (S, b"501 5.7.0 Authentication cancelled\r\n"),
    ];
    let o = run(steps);
    let a = &o.record.auth[0];
    assert!(a.cancelled);
    assert_eq!((a.outcome, a.reply), (AuthOutcome::Failure, Some(501)));
    assert!(!kinds(&o).contains(&Kind::CleartextCredentials));
}

#[test]
fn one_sided_client_capture_still_decodes_login() {
    let steps: &[Step<'_>] = &[
        (C, b"EHLO c\r\n"),
        (C, b"AUTH LOGIN\r\n"),
        (C, b"YWxpY2U=\r\n"),
        (C, b"c2VjcmV0\r\n"),
        (C, b"MAIL FROM:<a@b>\r\n"),
    ];
    let o = run(steps);
    let a = &o.record.auth[0];
    assert_eq!(a.username.as_deref(), Some("alice"));
    assert_eq!(
        a.secret,
        Some(SecretRecord::Revealed {
            value: "secret".into()
        })
    );
    assert_eq!(o.record.transactions, 1);
    assert!(o.record.banner.is_none());
    assert!(!o.record.stats.pipelining_used);
}

#[test]
fn capture_starting_mid_dialog_has_no_greeting() {
    let steps: &[Step<'_>] = &[
        (C, b"RCPT TO:<a@b>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"STARTTLS\r\n"),
        (S, b"220 go\r\n"),
    ];
    let o = run(steps);
    assert!(o.record.banner.is_none());
    assert!(o.accepted);
    assert_eq!(o.record.stats.unmatched_replies, 0);
}

#[test]
fn gap_resynchronises_at_next_line() {
    let mut s = SmtpSession::new();
    s.feed(S, b"220 mx ESMTP\r\n", meta(1));
    s.feed(C, b"MAIL FR", meta(2));
    s.gap(C, 100, meta(3));
    s.feed(C, b"OM:<x>\r\nRCPT TO:<y>\r\n", meta(4));
    let r = s.record(false);
    assert_eq!(r.stats.gaps, 1);
    assert_eq!(r.stats.gap_bytes, 100);
    // The line cut by the gap is still a MAIL command, as far as it goes; the tail after the
    // gap is no command and is dropped; the next line is read.
    assert_eq!(r.transactions, 1);
    assert_eq!(r.recipients, 1);
    assert_eq!(r.stats.commands, 2);
    assert_eq!(r.stats.non_smtp_bytes, 0);
}

#[test]
fn gap_inside_data_body_still_finds_the_end() {
    let mut s = SmtpSession::new();
    s.feed(S, b"220 mx ESMTP\r\n", meta(1));
    s.feed(C, b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n", meta(2));
    s.feed(S, b"250 ok\r\n250 ok\r\n354 go\r\n", meta(3));
    s.feed(C, b"Subject: x\r\n\r\nline", meta(4));
    s.gap(C, 1000, meta(5));
    // ".\r\n" right after the gap may be mid-line: not the end yet.
    s.feed(C, b".\r\nmore\r\nQUIT\r\n.\r\nQUIT\r\n", meta(6));
    s.feed(S, b"250 queued\r\n221 bye\r\n", meta(7));
    let r = s.record(false);
    assert_eq!(r.stats.commands, 4);
    assert_eq!(r.transaction_list[0].reply, Some(250));
    assert_eq!(r.stats.unmatched_replies, 0);
}

#[test]
fn gap_inside_bdat_chunk_shortens_it() {
    let mut s = SmtpSession::new();
    s.feed(C, b"BDAT 100 LAST\r\n0123456789", meta(1));
    s.gap(C, 80, meta(2));
    s.feed(C, b"0123456789QUIT\r\n", meta(3));
    let r = s.record(false);
    assert_eq!(r.stats.bdat_bytes, 20);
    assert_eq!(r.stats.commands, 2);

    // A gap that swallows the rest of the chunk and more: resume at the next line.
    let mut s = SmtpSession::new();
    s.feed(C, b"BDAT 10\r\n01234", meta(1));
    s.gap(C, 20, meta(2));
    s.feed(C, b"T\r\nNOOP\r\n", meta(3));
    let r = s.record(false);
    assert_eq!(r.stats.commands, 2);
    assert_eq!(r.stats.non_smtp_bytes, 0);
}

#[test]
fn long_line_is_capped_and_counted() {
    let mut ehlo = b"EHLO ".to_vec();
    ehlo.extend(std::iter::repeat_n(b'A', 3 * MAX_LINE));
    ehlo.extend_from_slice(b"\r\nMAIL FROM:<a@b>\r\n");
    let steps: &[Step<'_>] = &[(S, b"220 mx ESMTP\r\n"), (C, &ehlo)];
    let whole = run_with(steps, |d| vec![d]);
    let pieces = run_with(steps, |d| d.chunks(1000).collect());
    assert_eq!(whole, pieces);
    let r = &whole.record;
    assert_eq!(r.stats.long_lines, 1);
    assert_eq!(r.stats.commands, 2);
    assert_eq!(r.transactions, 1);
    assert_eq!(r.helo.as_ref().map(String::len), Some(255));
}

#[test]
fn non_smtp_bytes_are_counted() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"GET / HTTP/1.1\r\nHost: x\r\n"),
        (S, b"garbage\r\n"),
    ];
    let o = run(steps);
    // "GET / HTTP/1.1" parses as an unknown verb; "Host: x" and the server line do not.
    assert_eq!(o.record.stats.unknown_commands, 1);
    assert_eq!(o.record.stats.non_smtp_bytes, 9 + 9);
    assert!(o.record.stats.reply_codes == vec![220]);
    let mut s = SmtpSession::new();
    s.feed(C, b"GET / HTTP/1.1\r\nHost: x\r\n", meta(1));
    assert!(!s.client_spoke_smtp());
    s.feed(C, b"NOOP\r\n", meta(2));
    assert!(s.client_spoke_smtp());
    assert!(!s.server_spoke_smtp());
    s.feed(S, b"250 ok\r\n", meta(3));
    assert!(s.server_spoke_smtp());
}

#[test]
fn last_reply_without_line_ending() {
    let mut s = SmtpSession::new();
    s.feed(S, b"220 mx ESMTP\r\n", meta(1));
    s.feed(C, b"QUIT\r\n", meta(2));
    s.feed(S, b"221 bye", meta(3));
    s.end(S, meta(4));
    assert_eq!(s.record(false).stats.reply_codes, vec![220, 221]);
}

#[test]
fn secrets_absent_without_reveal() {
    let plain = b64(b"admin\0alice\0hunter2-PLAIN");
    let x = b64(b"user=bob\x01auth=Bearer TOKEN-SECRET-42\x01\x01");
    let c1 = format!("AUTH PLAIN {plain}\r\n");
    let c2 = format!("AUTH XOAUTH2 {x}\r\n");
    let mut steps: Vec<Step<'_>> = vec![
        (S, b"220 mx ESMTP\r\n"),
        (C, c1.as_bytes()),
        (S, b"535 no\r\n"),
        (C, c2.as_bytes()),
        (S, b"535 no\r\n"),
        (C, b"AUTH LOGIN\r\n"),
        (S, b"334 VXNlcm5hbWU6\r\n"),
        (C, b"YWxpY2U=\r\n"),
        (S, b"334 UGFzc3dvcmQ6\r\n"),
        (C, b"TE9HSU4tUEFTU1dPUkQ=\r\n"), // "LOGIN-PASSWORD"
        (S, b"535 no\r\n"),
    ];
    steps.extend_from_slice(&NTLM_DIALOG[3..9]);
    let mut s = SmtpSession::new();
    for (i, (d, data)) in steps.iter().enumerate() {
        s.feed(*d, data, meta(i + 1));
    }
    let secrets = [
        "hunter2-PLAIN",
        "TOKEN-SECRET-42",
        "LOGIN-PASSWORD",
        "4e4e4e4e", // NTLM NT response, hex
        "4c4c4c4c", // NTLM LM response, hex
        "jack::SMTPDOM",
    ];
    let record = serde_json::to_string(&s.record(false)).unwrap();
    let findings = serde_json::to_string(&s.findings(false)).unwrap();
    let messages: String = s
        .findings(false)
        .iter()
        .map(|f| f.message.clone())
        .collect();
    let debug = format!("{s:?}");
    for secret in secrets {
        assert!(!record.contains(secret), "{secret} in record");
        assert!(!findings.contains(secret), "{secret} in findings");
        assert!(!messages.contains(secret), "{secret} in messages");
        assert!(!debug.contains(secret), "{secret} in Debug");
    }
    assert!(record.contains("\"redacted\":true"));
    assert!(record.contains("\"length\":13"));
    assert_eq!(s.record(false).auth[0].authzid.as_deref(), Some("admin"));
    let creds = s
        .findings(false)
        .iter()
        .filter(|f| f.kind == Kind::CleartextCredentials)
        .count();
    assert_eq!(creds, 4);

    let revealed = serde_json::to_string(&s.record(true)).unwrap();
    let revealed_findings = serde_json::to_string(&s.findings(true)).unwrap();
    for secret in secrets {
        assert!(revealed.contains(secret), "{secret} not revealed in record");
        assert!(
            revealed_findings.contains(secret),
            "{secret} not revealed in findings"
        );
    }
}

#[test]
fn feed_after_upgrade_keeps_returning_upgrade() {
    let mut s = SmtpSession::new();
    s.feed(C, b"STARTTLS\r\n", meta(1));
    assert_eq!(
        s.feed(C, CLIENT_HELLO, meta(2)),
        Feed::Upgrade { offset: 0 }
    );
    assert_eq!(
        s.feed(C, b"\x17\x03\x03", meta(3)),
        Feed::Upgrade { offset: 0 }
    );
}

#[test]
fn server_bytes_after_client_went_on_are_no_injection() {
    // suricata-verify/protocol-change-failed-event: after its 220 the server switches to
    // HTTP. No client would read that as an SMTP answer: a mode mismatch, not injection.
    let steps: &[Step<'_>] = &[
        (S, b"220 f\n"),
        (C, b"EHLO\nSTARTTLS\n"),
        (S, b"220 2tart\r\n220 2tart\r\n"),
        (S, b"HTTP/1.1 101\nUpgrade:h2c\n\n"),
        (S, b"\0"),
    ];
    let o = run(steps);
    assert!(o.accepted);
    assert_eq!(o.record.starttls.server_injected_bytes, 0);
    assert_eq!(o.record.stats.non_smtp_bytes, 27);
    assert!(kinds(&o).is_empty(), "{:?}", o.findings);
}

#[test]
fn smtp_after_a_socks_header_is_found() {
    // arkime/socks5-smtp-503.pcap: SOCKS5 bytes without a line ending precede SMTP.
    let steps: &[Step<'_>] = &[
        (C, b"\x05\x01\x00"),
        (S, b"\x05\x00"),
        (C, b"\x05\x01\x00\x03\x0e010.000.00.003\x00\x19"),
        (S, b"\x05\x00\x00\x01\n\x00\x00\x01\xd1\xcd"),
        (S, b"220 mx.example.org ESMTP Exim\r\n"),
        (C, b"EHLO User\r\n"),
        (
            S,
            b"250-mx.example.org Hello\r\n250-STARTTLS\r\n250 HELP\r\n",
        ),
        (C, b"AUTH LOGIN\r\n"),
        (S, b"503 AUTH command used when not advertised\r\n"),
    ];
    let o = run(steps);
    let r = &o.record;
    assert_eq!(r.banner.as_deref(), Some("220 mx.example.org ESMTP Exim"));
    assert_eq!(r.helo.as_deref(), Some("User"));
    assert!(r.starttls.offered);
    assert_eq!(r.auth[0].outcome, AuthOutcome::Failure);
    assert_eq!(kinds(&o), vec![Kind::StarttlsNotUsed]);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    /// Pieces that steer the session into its states, mixed with arbitrary bytes.
    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"220 mx ESMTP\r\n".to_vec()),
            Just(b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n".to_vec()),
            Just(b"EHLO c\r\n".to_vec()),
            Just(b"STARTTLS\r\n".to_vec()),
            Just(b"220 go\r\n".to_vec()),
            Just(b"AUTH LOGIN\r\n".to_vec()),
            Just(b"AUTH NTLM TlRMTVNTUAADAAAA\r\n".to_vec()),
            Just(b"334 \r\n".to_vec()),
            Just(b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n".to_vec()),
            Just(b"354 go\r\n".to_vec()),
            Just(b"BDAT 7 LAST\r\n".to_vec()),
            Just(b"\r\n.\r\n".to_vec()),
            Just(b"\x16\x03\x01\x00\x02".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..64),
        ]
    }

    proptest! {
        #[test]
        fn never_panics(
            steps in proptest::collection::vec((any::<bool>(), token(), 1usize..9, any::<u8>()), 0..40),
        ) {
            let mut s = SmtpSession::new();
            for (i, (to_server, data, cut, gap)) in steps.iter().enumerate() {
                let dir = if *to_server { C } else { S };
                for piece in data.chunks(*cut) {
                    let _ = s.feed(dir, piece, meta(i + 1));
                }
                if *gap < 8 {
                    s.gap(dir, u64::from(*gap) * 1000, meta(i + 1));
                }
            }
            s.end(C, meta(0));
            s.end(S, meta(0));
            let _ = s.record(true);
            let _ = s.findings(true);
            let r = s.record(false);
            prop_assert!(r.capabilities.len() <= 64);
            prop_assert!(r.stats.reply_codes.len() <= 64);
        }
    }
}

/// Found by the `smtp_session` fuzz target (chunking differential): after STARTTLS, bytes
/// that start like an SSLv2 header but are not a hello (`fa 8a 0e`) were TLS when they came
/// one byte at a time and SMTP when they came together.
#[test]
fn starttls_then_binary_is_tls_whatever_the_chunking() {
    let o = run(&[(C, b"STARTTLS\n\xfa\x8a\x0e")]);
    assert!(o.record.starttls.client_tls);
    assert_eq!(o.tls[0], b"\xfa\x8a\x0e");
}

// ---- one side of the conversation, lines cut by the capture --------------------------------

/// A capture of the server's side only: each reply proves what it answers, where it can.
#[test]
fn server_side_only_replies_prove_their_commands() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx.example.org ESMTP\r\n"),
        (
            S,
            b"250-mx.example.org\r\n250-PIPELINING\r\n250-XXXXXXXA\r\n250 AUTH PLAIN\r\n",
        ),
        (S, b"235 2.7.0 Authentication successful\r\n"),
        (S, b"250 ok\r\n250 ok\r\n354 go ahead\r\n"),
        (S, b"250 2.0.0 Ok: queued as 4Fq1\r\n"),
        (S, b"221 bye\r\n"),
    ];
    let whole = run(steps);
    // Every chunking reads the same.
    assert_eq!(whole, run_with(steps, |d| d.chunks(1).collect()));
    let r = &whole.record;
    assert_eq!(r.capabilities, ["PIPELINING", "XXXXXXXA", "AUTH PLAIN"]);
    assert_eq!(r.auth.len(), 1);
    let a = &r.auth[0];
    assert_eq!(
        (a.mechanism.as_str(), a.username.as_deref()),
        ("unknown", None)
    );
    assert_eq!((a.outcome, a.inferred), (AuthOutcome::Success, true));
    assert_eq!(r.transactions, 1);
    assert_eq!(r.messages, 1);
    assert_eq!(r.transaction_list[0].reply, Some(250));
    assert_eq!(r.stats.inferred_commands, 3);
    let kinds: Vec<(Kind, Severity, u64)> =
        whole.findings.iter().map(|f| (f.0, f.1, f.2)).collect();
    assert!(kinds.contains(&(Kind::CleartextCredentials, Severity::Critical, 3)));
    assert!(kinds.contains(&(Kind::StarttlsStripped, Severity::High, 2)));
    let cred = whole
        .findings
        .iter()
        .find(|f| f.0 == Kind::CleartextCredentials);
    assert!(
        cred.unwrap()
            .3
            .contains("\"inferred_from\":\"server_replies\"")
    );
}

#[test]
fn server_side_only_starttls_accepted_then_tls() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx.example.org ESMTP\r\n"),
        (S, b"250-mx.example.org\r\n250 STARTTLS\r\n"),
        (S, b"220 2.0.0 Ready to start TLS\r\n"),
        (S, SERVER_HELLO),
    ];
    let o = run(steps);
    assert!(o.accepted);
    assert!(o.record.starttls.offered && o.record.starttls.issued);
    assert_eq!(o.record.starttls.reply, Some(220));
    assert_eq!(o.record.starttls.frame, Some(3));
    assert!(o.record.starttls.server_tls);
    assert_eq!(o.tls[1], SERVER_HELLO);
    assert!(o.findings.is_empty(), "{:?}", o.findings);
}

#[test]
fn server_side_only_login_challenge_names_the_mechanism() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (S, b"334 VXNlcm5hbWU6\r\n"),
        (S, b"334 UGFzc3dvcmQ6\r\n"),
        (S, b"535 5.7.8 Authentication failed\r\n"),
    ];
    let o = run(steps);
    let a = &o.record.auth[0];
    assert_eq!(
        (a.mechanism.as_str(), a.outcome),
        ("LOGIN", AuthOutcome::Failure)
    );
    assert_eq!(o.record.stats.auth_failures, 1);
    assert_eq!(o.findings[0].0, Kind::CleartextCredentials);
}

/// Replies without commands in a two-sided capture stay unmatched: nothing is inferred once
/// the client's side is known to be there.
#[test]
fn no_inference_when_the_client_is_seen() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"NOOP\r\n"),
        (S, b"250 ok\r\n"),
        (S, b"235 ok\r\n"),
    ];
    let o = run(steps);
    assert!(o.record.auth.is_empty());
    assert_eq!(o.record.stats.inferred_commands, 0);
    assert_eq!(o.record.stats.unmatched_replies, 1);
}

/// `tcpdump -s 96`: the AUTH PLAIN line ends at the snap length.
#[test]
fn auth_plain_cut_by_the_snap_length_is_cleartext_credentials() {
    let mut s = SmtpSession::new();
    s.feed(S, b"220 mx ESMTP\r\n", meta(1));
    s.feed(C, b"EHLO c\r\n", meta(2));
    s.feed(S, b"250 mx\r\n", meta(3));
    // base64("\0alice@example.org\0secret") cut after 18 characters.
    s.feed(C, b"AUTH PLAIN AGFsaWNlQGV4YW1wbG", meta(4));
    s.gap(C, 20, meta(4));
    s.feed(S, b"235 2.7.0 ok\r\n", meta(5));
    let r = s.record(false);
    let a = &r.auth[0];
    assert_eq!(a.mechanism, "PLAIN");
    assert_eq!(a.username, None);
    assert_eq!(a.username_partial.as_deref(), Some("alice@exampl"));
    assert!(a.cut);
    assert_eq!(a.outcome, AuthOutcome::Success);
    let f = s.findings(false);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].kind, f[0].severity, f[0].frame),
        (Kind::CleartextCredentials, Severity::Critical, 4)
    );
    assert_eq!(f[0].evidence["username_partial"], "alice@exampl");
}

/// The STARTTLS reply cut by the snap length is still a 220; the next segment's TLS record
/// starts at a segment boundary and is handed over.
#[test]
fn starttls_reply_cut_by_the_snap_length_still_upgrades() {
    let mut s = SmtpSession::new();
    s.feed(S, b"220 mx ESMTP\r\n", meta(1));
    s.feed(C, b"EHLO c\r\n", meta(2));
    s.feed(S, b"250-mx says hello to the cli", meta(3));
    s.gap(S, 60, meta(3));
    s.feed(C, b"STARTTLS\r\n", meta(4));
    s.feed(S, b"220 2.0.0 Ready to st", meta(5));
    s.gap(S, 10, meta(5));
    assert_eq!(
        s.feed(C, CLIENT_HELLO, meta(6)),
        Feed::Upgrade { offset: 0 }
    );
    assert_eq!(
        s.feed(S, SERVER_HELLO, meta(7)),
        Feed::Upgrade { offset: 0 }
    );
    assert!(s.starttls_accepted());
    let r = s.record(false);
    assert_eq!(r.starttls.reply, Some(220));
    assert!(r.starttls.server_tls);
    // The EHLO reply ended in the gap: its command is done, the next reply answers STARTTLS.
    assert_eq!(r.stats.unmatched_replies, 0);
}

/// The end-of-data line cut away with the body: the server's reply proves the body ended.
#[test]
fn end_of_data_lost_in_a_gap_is_ended_by_the_reply() {
    let mut s = SmtpSession::new();
    s.feed(S, b"220 mx ESMTP\r\n", meta(1));
    s.feed(C, b"MAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n", meta(2));
    s.feed(S, b"250 ok\r\n250 ok\r\n354 go\r\n", meta(3));
    s.feed(C, b"Subject: x\r\n\r\nbody", meta(4));
    s.gap(C, 200, meta(4));
    s.feed(S, b"250 queued as X\r\n", meta(5));
    s.feed(C, b"QUIT\r\n", meta(6));
    s.feed(S, b"221 bye\r\n", meta(7));
    let r = s.record(false);
    assert_eq!(r.transaction_list[0].reply, Some(250));
    assert_eq!(r.stats.unmatched_replies, 0);
    assert_eq!(r.stats.commands, 4);
}

/// OpenSSL `s_client -starttls smtp` sends its ClientHello whatever the reply to STARTTLS.
#[test]
fn client_hello_after_refused_starttls_is_a_tls_attempt() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 STARTTLS\r\n"),
        (C, b"STARTTLS\r\n"),
        (S, b"454 4.7.0 TLS not available\r\n"),
        (C, CLIENT_HELLO),
        (S, b"500 unrecognized command\r\n"),
    ];
    let o = run(steps);
    assert!(!o.accepted);
    assert_eq!(o.tls[0], CLIENT_HELLO);
    assert!(o.record.starttls.client_tls);
    assert_eq!(o.record.stats.non_smtp_bytes, 0);
    let mut s = SmtpSession::new();
    for (i, (d, b)) in steps.iter().enumerate() {
        s.feed(*d, b, meta(i + 1));
    }
    assert_eq!(s.tls_after_refusal(), Some(454));
}

mod smuggling;
