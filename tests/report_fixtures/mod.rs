//! Model values built in code for the report sink tests: a plaintext flow with AUTH, a
//! STARTTLS flow, a failed implicit-TLS flow (IPv6), a TLS mode mismatch, a flow from a second
//! capture, findings of every severity and one run-wide finding.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::IpAddr;
use std::rc::Rc;

use serde_json::json;
use smtpaudit::capture::CaptureFormat;
use smtpaudit::decode::DecodeStats;
use smtpaudit::findings::{Finding, Kind, Severity};
use smtpaudit::flow::{CloseReason, DirStats, EventMeta, FlowTableStats, RoleSource};
use smtpaudit::report::model::*;
use smtpaudit::time::Timestamp;

pub const T0: i64 = 1_769_860_800; // 2026-01-31T12:00:00Z

pub fn ts(offset_ms: i64) -> Timestamp {
    Timestamp::new(
        T0 + offset_ms.div_euclid(1000),
        (offset_ms.rem_euclid(1000) * 1_000_000) as u32,
    )
}

fn ep(ip: &str, port: u16) -> EndpointRecord {
    EndpointRecord {
        ip: ip.parse::<IpAddr>().unwrap(),
        port,
    }
}

fn tcp(first: u64, last: u64, close: CloseReason) -> TcpRecord {
    TcpRecord {
        roles: RoleSource::Syn,
        roles_corrected: false,
        close,
        first_frame: first,
        last_frame: last,
        last_frame_capture: None,
        to_server: DirStats {
            packets: 7,
            payload_bytes: 300,
            delivered_bytes: 300,
            syn: true,
            fin: true,
            ..DirStats::default()
        },
        to_client: DirStats {
            packets: 6,
            payload_bytes: 900,
            delivered_bytes: 900,
            syn: true,
            fin: true,
            ..DirStats::default()
        },
    }
}

/// The only literal `TlsRecord` in the tests: when the TLS analyzer's fields land, this is
/// the one place to extend.
#[allow(clippy::too_many_arguments)]
fn tls_record(
    version: Option<&str>,
    cipher: Option<&str>,
    sni: Option<&str>,
    handshake: HandshakeOutcome,
    alerts: Vec<AlertRecord>,
    ja3: Option<&str>,
    ja3s: Option<&str>,
    ja4: Option<&str>,
) -> TlsRecord {
    TlsRecord {
        version: version.map(Into::into),
        cipher: cipher.map(Into::into),
        sni: sni.map(Into::into),
        handshake,
        decrypted: false,
        key_source: None,
        alerts,
        ja3: ja3.map(Into::into),
        ja3s: ja3s.map(Into::into),
        ja4: ja4.map(Into::into),
        outcome_evidence: None,
        client_hello_seen: true,
        server_hello_seen: version.is_some(),
        hello_retry_request: false,
        client: None,
        server: None,
        ja3_full: None,
        ja3s_full: None,
        ja4_r: None,
        certificate: None,
        to_server: Default::default(),
        to_client: Default::default(),
        anomalies: Vec::new(),
    }
}

/// The only literal `AuthRecord` in the tests (see `tls_record`).
fn auth_record(
    mech: &str,
    user: &str,
    outcome: AuthOutcome,
    reply: u16,
    frame: u64,
    at_ms: i64,
) -> AuthRecord {
    AuthRecord {
        mechanism: mech.into(),
        username: Some(user.into()),
        in_cleartext: true,
        outcome,
        reply: Some(reply),
        frame,
        frame_capture: None,
        ts: ts(at_ms),
        authzid: None,
        secret: Some(SecretRecord::Redacted {
            redacted: true,
            length: 12,
        }),
        hashcat: None,
        secret_frame: Some(frame),
        secret_tag: Some(frame),
        secret_frame_capture: None,
        cancelled: false,
        undecodable: 0,
        cut: false,
        username_partial: None,
        inferred: false,
    }
}

/// SMTP records are built from `Default` so that fields added later do not break the tests.
fn smtp_record(banner: &str, helo: Option<&str>, caps: &[&str]) -> SmtpRecord {
    SmtpRecord {
        banner: Some(banner.into()),
        helo: helo.map(Into::into),
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
        ..SmtpRecord::default()
    }
}

// Assigned after `default()` rather than with `..Default::default()`, which clippy calls
// needless while these three are the only fields.
#[allow(clippy::field_reassign_with_default)]
fn starttls(offered: bool, issued: bool, reply: Option<u16>) -> StartTlsRecord {
    let mut s = StartTlsRecord::default();
    s.offered = offered;
    s.issued = issued;
    s.reply = reply;
    s
}

#[allow(clippy::too_many_arguments)]
fn flow(
    id: &str,
    capture: &str,
    client: EndpointRecord,
    server: EndpointRecord,
    start_ms: i64,
    end_ms: i64,
    class: FlowClass,
    frames: (u64, u64),
) -> FlowRecord {
    FlowRecord {
        id: id.into(),
        capture: capture.into(),
        client,
        server,
        start: ts(start_ms),
        end: ts(end_ms),
        duration_secs: (end_ms - start_ms) as f64 / 1000.0,
        class,
        smtp: None,
        tls: None,
        tcp: tcp(frames.0, frames.1, CloseReason::Fin),
    }
}

fn finding(kind: Kind, sev: Severity, flow: &str, at_ms: i64, frame: u64, msg: &str) -> Finding {
    let mut f = Finding::new(
        kind,
        sev,
        EventMeta {
            ts: ts(at_ms),
            frame,
        },
        msg,
    );
    f.flow = flow.into();
    f
}

/// Plaintext SMTP on 25 with AUTH PLAIN in clear (a.pcap).
pub fn plaintext_auth() -> (FlowRecord, Vec<Finding>) {
    let mut f = flow(
        "a-1",
        "a.pcap",
        ep("192.0.2.10", 50123),
        ep("198.51.100.7", 25),
        0,
        2_500,
        FlowClass::Plaintext,
        (1, 20),
    );
    let mut smtp = smtp_record(
        "220 mx.example.org ESMTP",
        Some("client.example.org"),
        &["PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN"],
    );
    smtp.auth = vec![
        auth_record("PLAIN", "alice", AuthOutcome::Success, 235, 9, 900),
        auth_record("LOGIN", "bob", AuthOutcome::Failure, 535, 12, 1_200),
    ];
    smtp.transactions = 1;
    f.smtp = Some(Box::new(smtp));
    // Deliberately out of report order (frame 14 before frame 5) to test sorting.
    let findings = vec![
        finding(
            Kind::CleartextMail,
            Severity::Low,
            "a-1",
            1_400,
            14,
            "message sent without TLS",
        ),
        finding(
            Kind::CleartextCredentials,
            Severity::Critical,
            "a-1",
            900,
            9,
            "AUTH PLAIN password of alice sent in cleartext",
        )
        .with("mechanism", "PLAIN")
        .with("username", "alice")
        .with("outcome", "success"),
        finding(
            Kind::CleartextAuthOffered,
            Severity::Low,
            "a-1",
            500,
            5,
            "AUTH PLAIN LOGIN offered before TLS",
        ),
    ];
    (f, findings)
}

/// STARTTLS on 587, TLS 1.2 completed, self-signed certificate (a.pcap).
pub fn starttls_ok() -> (FlowRecord, Vec<Finding>) {
    let mut f = flow(
        "a-2",
        "a.pcap",
        ep("192.0.2.11", 50200),
        ep("198.51.100.7", 587),
        1_000,
        4_000,
        FlowClass::Starttls,
        (3, 40),
    );
    let mut smtp = smtp_record(
        "220 mx.example.org ESMTP",
        Some("laptop"),
        &["PIPELINING", "STARTTLS"],
    );
    smtp.starttls = starttls(true, true, Some(220));
    f.smtp = Some(Box::new(smtp));
    f.tls = Some(Box::new(tls_record(
        Some("TLSv1.2"),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        Some("mail.example.org"),
        HandshakeOutcome::Complete,
        vec![],
        Some("e7d705a3286e19ea42f587b344ee6865"),
        Some("ccc514751b175866924439bdbb5bba34"),
        Some("t12d1209h2_d34a8e72043a_b39be8c56a14"),
    )));
    let findings = vec![
        finding(
            Kind::CertificateProblem,
            Severity::Low,
            "a-2",
            1_300,
            13,
            "certificate is self-signed",
        )
        .with("problem", "self_signed"),
    ];
    (f, findings)
}

/// Implicit TLS on 465 over IPv6; the server rejects the version with a fatal alert (a.pcap).
pub fn implicit_failed() -> (FlowRecord, Vec<Finding>) {
    let mut f = flow(
        "a-3",
        "a.pcap",
        ep("2001:db8::10", 40000),
        ep("2001:db8::25", 465),
        2_000,
        2_100,
        FlowClass::ImplicitTls,
        (50, 55),
    );
    f.tls = Some(Box::new(tls_record(
        None,
        None,
        Some("smtp.example.org"),
        HandshakeOutcome::Failed,
        vec![AlertRecord {
            from: Sender::Server,
            level: AlertLevel::Fatal,
            description: Some("protocol_version".into()),
            frame: 53,
            frame_capture: None,
        }],
        Some("6734f37431670b3ab4292b8f60f29984"),
        None,
        Some("t10d070600_c50f5591e341_1a3805c3aa63"),
    )));
    let findings = vec![
        finding(
            Kind::TlsHandshakeFailure,
            Severity::Medium,
            "a-3",
            2_050,
            53,
            "server sent fatal alert protocol_version",
        )
        .with("description", "protocol_version")
        .with("sender", "server"),
    ];
    (f, findings)
}

/// A client speaking implicit TLS to a plaintext server on 25; same start as `implicit_failed`
/// so the first frame breaks the tie (a.pcap).
pub fn mode_mismatch() -> (FlowRecord, Vec<Finding>) {
    let mut f = flow(
        "a-4",
        "a.pcap",
        ep("192.0.2.12", 50300),
        ep("198.51.100.7", 25),
        2_000,
        3_000,
        FlowClass::Unknown,
        (51, 60),
    );
    f.smtp = Some(Box::new(smtp_record("220 mx.example.org ESMTP", None, &[])));
    f.tls = Some(Box::new(tls_record(
        None,
        None,
        None,
        HandshakeOutcome::Incomplete,
        vec![],
        None,
        None,
        None,
    )));
    let findings = vec![
        finding(
            Kind::TlsModeMismatch,
            Severity::Medium,
            "a-4",
            2_010,
            52,
            "client sent a TLS ClientHello, server answered with SMTP text",
        )
        .with("tls_side", "client"),
    ];
    (f, findings)
}

/// A flow from a second capture, earlier in time than everything in a.pcap: it must still
/// sort after a.pcap's flows, since a.pcap was seen first.
pub fn second_capture() -> (FlowRecord, Vec<Finding>) {
    let mut f = flow(
        "b-1",
        "b.pcap",
        ep("192.0.2.20", 51000),
        ep("203.0.113.5", 25),
        -60_000,
        -59_000,
        FlowClass::Plaintext,
        (1, 8),
    );
    let mut smtp = smtp_record("220 relay.example.net", Some("relay"), &["STARTTLS"]);
    smtp.starttls = starttls(true, false, None);
    smtp.transactions = 1;
    f.smtp = Some(Box::new(smtp));
    let findings = vec![
        finding(
            Kind::StarttlsNotUsed,
            Severity::Medium,
            "b-1",
            -59_500,
            5,
            "STARTTLS offered but the client sent MAIL in cleartext",
        ),
        finding(
            Kind::StarttlsInjection,
            Severity::High,
            "b-1",
            -59_400,
            6,
            "plaintext pipelined after STARTTLS",
        ),
    ];
    (f, findings)
}

/// The run-wide finding passed to `finish`.
pub fn run_wide() -> Vec<Finding> {
    vec![
        finding(
            Kind::AuthBruteForce,
            Severity::High,
            "",
            5_000,
            30,
            "12 failed AUTH attempts from 192.0.2.10",
        )
        .with("client", "192.0.2.10")
        .with("attempts", json!(12)),
    ]
}

pub fn capture(path: &str, packets: u64, first_ms: i64, last_ms: i64) -> CaptureRecord {
    CaptureRecord {
        path: path.into(),
        format: Some(CaptureFormat::Pcap),
        error: None,
        packets,
        bytes: packets * 100,
        link_types: vec!["ethernet".into()],
        warnings: if path == "b.pcap" {
            vec!["truncated packet record at byte 4242".into()]
        } else {
            vec![]
        },
        first_packet: Some(ts(first_ms)),
        last_packet: Some(ts(last_ms)),
        tcp_flows: 6,
        reported_flows: 4,
        decode: DecodeStats::default(),
        flow_table: FlowTableStats::default(),
        chained_to: None,
    }
}

/// All flows in the order a parallel pipeline might finish them (not report order).
pub fn arrival_order() -> Vec<(FlowRecord, Vec<Finding>)> {
    vec![
        implicit_failed(),
        second_capture(),
        mode_mismatch(),
        plaintext_auth(),
        starttls_ok(),
    ]
}

/// Flow ids in report order.
pub const REPORT_ORDER: [&str; 5] = ["a-1", "a-2", "a-3", "a-4", "b-1"];

pub fn summary_of(flows: &[(FlowRecord, Vec<Finding>)], run_wide: &[Finding]) -> Summary {
    let mut s = Summary::default();
    for (f, fs) in flows {
        s.add_flow(f);
        for x in fs {
            s.add_finding(x);
        }
    }
    for x in run_wide {
        s.add_finding(x);
    }
    s
}

/// A writer the test keeps a handle on, to look at what a sink wrote so far.
#[derive(Clone, Default)]
pub struct Shared {
    pub buf: Rc<RefCell<Vec<u8>>>,
    pub flushes: Rc<RefCell<usize>>,
}

impl Shared {
    pub fn text(&self) -> String {
        String::from_utf8(self.buf.borrow().clone()).unwrap()
    }
}

impl Write for Shared {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.borrow_mut().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        *self.flushes.borrow_mut() += 1;
        Ok(())
    }
}

/// A writer whose reader went away (`smtpaudit ... | head`).
pub struct ClosedPipe;

impl Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
}
