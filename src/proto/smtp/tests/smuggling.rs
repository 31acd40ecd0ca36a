//! SMTP smuggling in whole dialogs: every sequence, each server reaction, and the dialog after.

use super::*;

const VARIANTS: [(&[u8], &str); 8] = [
    (b"\n.\n", "<LF>.<LF>"),
    (b"\n.\r\n", "<LF>.<CR><LF>"),
    (b"\n.\r", "<LF>.<CR>"),
    (b"\r\n.\n", "<CR><LF>.<LF>"),
    (b"\r\n.\r", "<CR><LF>.<CR>"),
    (b"\r.\r", "<CR>.<CR>"),
    (b"\r.\r\n", "<CR>.<CR><LF>"),
    (b"\r.\n", "<CR>.<LF>"),
];

/// A message whose body hides a second one behind `seq`.
fn smuggling_body(seq: &[u8]) -> Vec<u8> {
    let mut b = b"From: a@example.org\r\nSubject: first\r\n\r\nhello".to_vec();
    b.extend_from_slice(seq);
    b.extend_from_slice(
        b"MAIL FROM:<admin@example.org>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n\
          From: admin@example.org\r\nSubject: smuggled\r\n\r\nsecret text\r\n.\r\n",
    );
    b
}

fn dialog<'a>(body: &'a [u8], replies: &'a [u8], tail: &'a [Step<'a>]) -> Vec<Step<'a>> {
    let mut v: Vec<Step<'a>> = vec![
        (S, b"220 mx.example.net ESMTP\r\n"),
        (C, b"EHLO c.example.org\r\n"),
        (S, b"250-mx.example.net\r\n250 PIPELINING\r\n"),
        (
            C,
            b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n",
        ),
        (
            S,
            b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
        ),
        (C, body),
        (S, replies),
    ];
    v.extend_from_slice(tail);
    v
}

fn evidence(o: &Outcome) -> serde_json::Value {
    serde_json::from_str(&finding(o, Kind::SmtpSmuggling).3).unwrap()
}

#[test]
fn honoured_sequence_is_critical_and_the_dialog_follows_the_server() {
    let body = smuggling_body(b"\n.\r\n");
    let steps = dialog(
        &body,
        b"250 2.0.0 Ok: queued as A1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n\
          354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as B2\r\n",
        &[(C, b"QUIT\r\n"), (S, b"221 2.0.0 Bye\r\n")],
    );
    let o = run(&steps);
    let f = finding(&o, Kind::SmtpSmuggling);
    assert_eq!((f.1, f.2), (Severity::Critical, 6));
    let e = evidence(&o);
    assert_eq!(e["sequence"], "<LF>.<CR><LF>");
    assert_eq!(e["server_reaction"], "accepted_as_end");
    assert_eq!(e["commands_follow"], true);
    assert_eq!(e["smuggled_envelope"]["mail_from"], "<admin@example.org>");
    assert_eq!(e["smuggled_envelope"]["rcpt_to"][0], "<victim@example.net>");
    assert!(!f.3.contains("secret text"));
    let r = &o.record;
    assert_eq!((r.transactions, r.recipients, r.messages), (2, 2, 2));
    assert_eq!(r.transaction_list.len(), 2);
    let (first, second) = (&r.transaction_list[0], &r.transaction_list[1]);
    assert!(!first.smuggled && second.smuggled);
    assert_eq!((first.reply, second.reply), (Some(250), Some(250)));
    assert_eq!(
        (second.mail_reply, second.recipients_accepted),
        (Some(250), 1)
    );
    assert_eq!(r.stats.unmatched_replies, 0);
    assert_eq!(r.bare_lf_accepted, Some(true));
}

#[test]
fn sequence_read_as_body_is_high() {
    for (seq, name) in VARIANTS {
        let body = smuggling_body(seq);
        let steps = dialog(
            &body,
            b"250 2.0.0 Ok: queued as A1\r\n",
            &[(C, b"QUIT\r\n"), (S, b"221 2.0.0 Bye\r\n")],
        );
        let o = run(&steps);
        let f = finding(&o, Kind::SmtpSmuggling);
        assert_eq!(f.1, Severity::High, "{name}");
        let e = evidence(&o);
        assert_eq!(e["sequence"], name);
        assert_eq!(e["server_reaction"], "treated_as_body", "{name}");
        assert_eq!(e["commands_follow"], true, "{name}");
        let r = &o.record;
        assert_eq!(
            (r.transactions, r.recipients, r.messages),
            (1, 1, 1),
            "{name}"
        );
        assert_eq!(r.transaction_list.len(), 1);
        assert_eq!(r.stats.unmatched_replies, 0);
    }
}

#[test]
fn every_variant_honoured_is_found_in_any_chunking() {
    for (seq, name) in VARIANTS {
        let body = smuggling_body(seq);
        let steps = dialog(
            &body,
            b"250 2.0.0 Ok: queued as A1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n\
              354 go ahead\r\n250 2.0.0 Ok: queued as B2\r\n",
            &[(C, b"QUIT\r\n"), (S, b"221 2.0.0 Bye\r\n")],
        );
        let o = run(&steps);
        let e = evidence(&o);
        assert_eq!(e["sequence"], name);
        assert_eq!(e["server_reaction"], "accepted_as_end", "{name}");
        assert_eq!(o.record.transactions, 2, "{name}");
    }
}

#[test]
fn bare_lf_refusal_is_rejected() {
    let body = smuggling_body(b"\n.\r\n");
    let steps = dialog(&body, b"550 5.5.2 Error: bare <LF> received\r\n", &[]);
    let o = run(&steps);
    let f = finding(&o, Kind::SmtpSmuggling);
    assert_eq!(f.1, Severity::High);
    assert_eq!(evidence(&o)["server_reaction"], "rejected");
    assert_eq!(o.record.bare_lf_accepted, Some(false));
    assert_eq!(o.record.transactions, 1);
}

/// The server answers the early end before the client sent the rest: the rest is commands.
#[test]
fn reply_before_the_real_end_switches_to_commands() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250 mx\r\n"),
        (C, b"MAIL FROM:<a@x>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"RCPT TO:<b@y>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"DATA\r\n"),
        (S, b"354 go\r\n"),
        (C, b"hello\n.\nMAIL FROM:<boss@x>\r\n"),
        (S, b"250 queued as 1\r\n250 ok\r\n"),
        (C, b"RCPT TO:<c@y>\r\n"),
        (S, b"250 ok\r\n"),
        (C, b"DATA\r\n"),
        (S, b"354 go\r\n"),
        (C, b"pay now\r\n.\r\n"),
        (S, b"250 queued as 2\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ];
    let o = run(steps);
    let e = evidence(&o);
    assert_eq!(e["server_reaction"], "accepted_as_end");
    assert_eq!(e["sequence"], "<LF>.<LF>");
    assert_eq!(e["smuggled_envelope"]["mail_from"], "<boss@x>");
    let r = &o.record;
    assert_eq!((r.transactions, r.recipients, r.messages), (2, 2, 2));
    assert!(r.transaction_list[1].smuggled);
    assert_eq!(r.transaction_list[1].recipients_accepted, 1);
    assert_eq!(r.transaction_list[1].reply, Some(250));
    assert_eq!(r.stats.unmatched_replies, 0);
    assert_eq!(r.stats.reply_codes.last(), Some(&221));
}

#[test]
fn sequence_in_a_bdat_chunk_is_medium() {
    let chunk = b"Subject: x\r\n\r\nhi\n.\r\nMAIL FROM:<admin@x>\r\nRCPT TO:<v@y>\r\n";
    let bdat = format!("BDAT {} LAST\r\n", chunk.len());
    let mut c = bdat.into_bytes();
    c.extend_from_slice(chunk);
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\r\n"),
        (S, b"250-mx\r\n250 CHUNKING\r\n"),
        (C, b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"),
        (S, b"250 ok\r\n250 ok\r\n"),
        (C, &c),
        (S, b"250 queued\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ];
    let o = run(steps);
    let f = finding(&o, Kind::SmtpSmuggling);
    assert_eq!(f.1, Severity::Medium);
    let e = evidence(&o);
    assert_eq!(e["body"], "bdat");
    assert_eq!(e["commands_follow"], true);
    assert_eq!(e["server_reaction"], "treated_as_body");
    assert_eq!(e["smuggled_envelope"]["rcpt_to"][0], "<v@y>");
    assert_eq!(o.record.transactions, 1);
}

#[test]
fn bare_lfs_and_dot_stuffing_are_no_smuggling() {
    let body: &[u8] = b"Subject: x\n\nline one\nline two\r\n..\r\n..\n.x\n\
                        QUJDREVG\r\n..\r\nR0hJ\r\n.\r\n";
    let steps = dialog(
        body,
        b"250 ok\r\n",
        &[(C, b"QUIT\r\n"), (S, b"221 bye\r\n")],
    );
    let o = run(&steps);
    assert!(
        !kinds(&o).contains(&Kind::SmtpSmuggling),
        "{:?}",
        o.findings
    );
    assert_eq!(o.record.bare_lf_accepted, Some(true));
    assert_eq!(o.record.transactions, 1);
}

#[test]
fn crlf_only_dialog_says_nothing_about_bare_lf() {
    let steps = dialog(
        b"hi\r\n.\r\n",
        b"250 ok\r\n",
        &[(C, b"QUIT\r\n"), (S, b"221 bye\r\n")],
    );
    let o = run(&steps);
    assert_eq!(o.record.bare_lf_accepted, None);
    assert!(o.findings.iter().all(|f| f.0 != Kind::SmtpSmuggling));
}

#[test]
fn bare_lf_command_accepted() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\r\n"),
        (C, b"EHLO c\n"),
        (S, b"250 mx\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ];
    assert_eq!(run(steps).record.bare_lf_accepted, Some(true));
}

/// An LF-only client ends its message with `<LF>.<LF>`: nothing is smuggled, and the server's
/// 250 ends the body, so the dialog after it is read as commands.
#[test]
fn lf_only_client_ending_its_message_smuggles_nothing() {
    let steps: &[Step<'_>] = &[
        (S, b"220 mx ESMTP\n"),
        (C, b"HELO c\n"),
        (S, b"250 hi\n"),
        (C, b"MAIL FROM:<a@x>\n"),
        (S, b"250 ok\n"),
        (C, b"RCPT TO:<b@y>\n"),
        (S, b"250 ok\n"),
        (C, b"DATA\n"),
        (S, b"354 go\n"),
        (C, b"Subject: x\n\nbody\n"),
        (C, b".\n"),
        (S, b"250 queued\n"),
        (C, b"QUIT\n"),
        (S, b"221 bye\n"),
    ];
    let o = run(steps);
    assert!(
        !kinds(&o).contains(&Kind::SmtpSmuggling),
        "{:?}",
        o.findings
    );
    let r = &o.record;
    assert_eq!((r.transactions, r.messages), (1, 1));
    assert_eq!(r.transaction_list[0].reply, Some(250));
    assert_eq!(r.stats.unmatched_replies, 0);
    assert_eq!(r.stats.reply_codes.last(), Some(&221));
    assert_eq!(r.bare_lf_accepted, Some(true));
}

/// Blank lines after a non-standard end, and no reply: nothing smuggled.
#[test]
fn blank_lines_after_the_sequence_are_no_smuggling() {
    let steps = dialog(b"love\r\n.\n\n", b"", &[]);
    let o = run(&steps);
    assert!(
        !kinds(&o).contains(&Kind::SmtpSmuggling),
        "{:?}",
        o.findings
    );
}

/// The client pipelines MAIL, RCPT, DATA and the whole body without waiting for 354 (as the
/// SEC Consult tool can): the replies still outstanding come first in either reading.
#[test]
fn body_sent_before_354_still_decides() {
    let mut c = b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n".to_vec();
    c.extend_from_slice(&smuggling_body(b"\r\n.\n"));
    c.extend_from_slice(b"QUIT\r\n");
    let honoured: &[u8] = b"250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n354 go\r\n\
        250 queued 1\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued 2\r\n221 bye\r\n";
    let as_body: &[u8] = b"250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n354 go\r\n\
        250 queued 1\r\n221 bye\r\n";
    for (replies, reaction, txns) in [
        (honoured, "accepted_as_end", 2),
        (as_body, "treated_as_body", 1),
    ] {
        let steps: &[Step<'_>] = &[(S, b"220 mx ESMTP\r\n"), (C, &c), (S, replies)];
        let o = run(steps);
        assert_eq!(evidence(&o)["server_reaction"], reaction);
        assert_eq!(o.record.transactions, txns);
        assert_eq!(o.record.stats.unmatched_replies, 0, "{reaction}");
        assert_eq!(o.record.stats.reply_codes.last(), Some(&221));
    }
}
