//! Unit tests of the TLS session over hand-built records.

use super::*;
use crate::proto::tls::handshake::tests::{
    alpn_ext, client_hello_body, server_hello_body, sni_ext, u16_list_ext, versions_ext,
};
use crate::proto::tls::handshake::{HRR_RANDOM, ext};
use crate::time::Timestamp;

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

/// Self-signed RSA-1024 certificate for mx.example.org and *.mail.example.org, valid
/// from 1795526602 to 1798118602 (made with `openssl req -x509 -newkey rsa:1024`).
const CERT_HEX: &[&str] = &[
    "3082023f308201a8a0030201020214129a470b9bcfc71f2e2228224d1a8c3b2153f1ba300d06092a864886f70d01010b",
    "050030193117301506035504030c0e6d782e6578616d706c652e6f7267301e170d3236313132343133323332325a170d",
    "3236313232343133323332325a30193117301506035504030c0e6d782e6578616d706c652e6f726730819f300d06092a",
    "864886f70d010101050003818d0030818902818100d9e7885fb71c43738b68d97731875318da54f6895b5a8575b22a27",
    "4b9bfd55aa4f4722fb7cecc03297fb288e5e4e9a9d3ae9597369fd53c021364308dff9a2d10e3273d406554fd59ca584",
    "67be0aaaed15c71148e28c5b1897cc7fb11cf9164492476c3a36c58115b3ab908b11fa264ba4c92996ed6ad642fe113c",
    "b6a5f5e6a50203010001a38183308180301d0603551d0e04160414ce0969e6ae29134e00d7e79d3d2275aa4b940f0a30",
    "1f0603551d23041830168014ce0969e6ae29134e00d7e79d3d2275aa4b940f0a300f0603551d130101ff040530030101",
    "ff302d0603551d1104263024820e6d782e6578616d706c652e6f726782122a2e6d61696c2e6578616d706c652e6f7267",
    "300d06092a864886f70d01010b05000381810031a6719083c222ed5bfad162d5760b8593df94f1d164fcc4f677c7cf6a",
    "c83a96b4fce4ca3d64a965aff55600c25eb103efabaaed538a989a980e5d7c27cffcebe4bf7c43ce752eedf7d88fb49a",
    "4dc7326c3992abb981416d5e6965e794c003a8f215986e81d46d8430097b67eb799d5059f8fdf041b8871a4fe8c39e3b",
    "055fb3",
];
const CERT_NOT_BEFORE: i64 = 1_795_526_602;

pub(crate) fn cert_der() -> Vec<u8> {
    hex::decode(CERT_HEX.concat()).unwrap()
}

fn m(frame: u64) -> EventMeta {
    EventMeta {
        ts: Timestamp::new(CERT_NOT_BEFORE + 86_400, 0),
        frame,
    }
}

fn rec(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ty, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn hs(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![ty];
    h.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    h.extend_from_slice(body);
    h
}

fn ch12() -> Vec<u8> {
    client_hello_body(
        0x0303,
        &[],
        &[0xc02f, 0x009c, 0x00ff],
        &[
            sni_ext("mx.example.org"),
            u16_list_ext(ext::SUPPORTED_GROUPS, &[29, 23]),
            (ext::EC_POINT_FORMATS, vec![1, 0]),
        ],
    )
}

fn ch13() -> Vec<u8> {
    client_hello_body(
        0x0303,
        &[5; 32],
        &[0x1301, 0x1302],
        &[
            u16_list_ext(ext::SUPPORTED_GROUPS, &[29]),
            u16_list_ext(ext::SIGNATURE_ALGORITHMS, &[0x0403]),
            versions_ext(&[0x0304, 0x0303]),
            alpn_ext(&[b"smtp"]),
        ],
    )
}

fn certificate_msg(der: &[u8]) -> Vec<u8> {
    let mut list = Vec::new();
    list.extend_from_slice(&(der.len() as u32).to_be_bytes()[1..]);
    list.extend_from_slice(der);
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend_from_slice(&list);
    hs(11, &body)
}

/// Client and server byte streams of a full TLS 1.2 handshake plus one data record each.
fn tls12_streams(cipher: u16, version: u16, cert: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
    let mut c = rec(22, &hs(1, &ch12()));
    let mut flight = hs(
        2,
        &server_hello_body(version, [1; 32], cipher, &[(0xff01, vec![0])]),
    );
    if let Some(der) = cert {
        flight.extend(certificate_msg(der));
    }
    flight.extend(hs(14, &[]));
    let mut s = rec(22, &flight);
    c.extend(rec(22, &hs(16, &[0; 66])));
    c.extend(rec(20, &[1]));
    c.extend(rec(22, &[0xee; 40]));
    s.extend(rec(20, &[1]));
    s.extend(rec(22, &[0xdd; 40]));
    c.extend(rec(23, &[0xaa; 100]));
    s.extend(rec(23, &[0xbb; 100]));
    (c, s)
}

fn session() -> TlsSession {
    TlsSession::new(TlsContext::default())
}

fn kinds(s: &TlsSession) -> Vec<Kind> {
    s.findings().iter().map(|f| f.kind).collect()
}

fn evidence(s: &TlsSession) -> OutcomeEvidence {
    s.record().outcome_evidence.unwrap()
}

#[test]
fn tls12_complete() {
    let (c, s) = tls12_streams(0xc02f, 0x0303, None);
    let mut t = session();
    assert_eq!(t.feed(C, &c[..c.len() - 105], m(4)), Interest::Bytes);
    assert_eq!(t.feed(S, &s[..s.len() - 105], m(5)), Interest::Bytes);
    assert!(t.client_hello_seen() && t.server_hello_seen());
    assert_eq!(t.outcome(), HandshakeOutcome::Complete);
    assert_eq!(evidence(&t).rule, "ccs_finished_both");
    assert_eq!(evidence(&t).confidence, Confidence::Certain);
    // Settled: the first data record of each side releases it.
    assert_eq!(t.feed(C, &c[c.len() - 105..], m(6)), Interest::Done);
    assert_eq!(t.feed(S, &s[s.len() - 105..], m(7)), Interest::Done);
    let r = t.record();
    assert_eq!(r.version.as_deref(), Some("TLSv1.2"));
    assert_eq!(
        r.cipher.as_deref(),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
    assert_eq!(r.sni.as_deref(), Some("mx.example.org"));
    assert_eq!(
        r.ja3_full.as_deref(),
        Some("771,49199-156-255,0-10-11,29-23,0")
    );
    assert_eq!(r.ja3s_full.as_deref(), Some("771,49199,65281"));
    assert!(r.ja4.as_deref().unwrap().starts_with("t12d0303"));
    assert_eq!(r.to_server.change_cipher_spec, 1);
    assert_eq!(r.to_server.encrypted_handshake, 1);
    assert_eq!(r.to_client.application_data_bytes, 100);
    assert!(t.findings().is_empty());
    // A close after completion is not a failure.
    t.end(C, EndKind::Fin, m(8));
    t.end(S, EndKind::Reset, m(9));
    assert_eq!(t.outcome(), HandshakeOutcome::Complete);
}

#[test]
fn every_split_point_gives_the_same_result() {
    let (c, s) = tls12_streams(0xc02f, 0x0303, Some(&cert_der()));
    let mut whole = session();
    whole.feed(C, &c, m(1));
    whole.feed(S, &s, m(2));
    let want = whole.record();
    assert_eq!(want.handshake, HandshakeOutcome::Complete);
    for (dir, stream) in [(C, &c), (S, &s)] {
        for i in 1..stream.len() {
            let mut t = session().follow_to_close(true);
            // Capture order: the ClientHello always comes first.
            if dir == S {
                t.feed(C, &c, m(1));
            }
            t.feed(dir, &stream[..i], m(1));
            t.feed(dir, &stream[i..], m(1));
            if dir == C {
                t.feed(S, &s, m(2));
            }
            let got = t.record();
            assert_eq!(got.ja3, want.ja3, "split at {i}");
            assert_eq!(got.ja3s, want.ja3s, "split at {i}");
            assert_eq!(got.certificate, want.certificate, "split at {i}");
            assert_eq!(got.handshake, HandshakeOutcome::Complete, "split at {i}");
        }
    }
    // And one byte at a time.
    let mut t = session().follow_to_close(true);
    for b in &c {
        t.feed(C, std::slice::from_ref(b), m(1));
    }
    for b in &s {
        t.feed(S, std::slice::from_ref(b), m(2));
    }
    assert_eq!(t.record().ja3, want.ja3);
    assert_eq!(t.record().to_client, want.to_client);
}

#[test]
fn one_byte_handshake_fragments_across_records() {
    let msg = hs(1, &ch12());
    let mut stream = Vec::new();
    for b in &msg {
        stream.extend(rec(22, std::slice::from_ref(b)));
    }
    let mut t = session();
    t.feed(C, &stream, m(1));
    assert!(t.client_hello_seen());
    assert_eq!(t.record().sni.as_deref(), Some("mx.example.org"));
    assert_eq!(t.record().to_server.handshake, msg.len() as u64);
}

#[test]
fn several_messages_and_records_in_one_chunk() {
    let (c, s) = tls12_streams(0x0004, 0x0301, Some(&cert_der()));
    let mut t = session();
    t.feed(C, &c, m(1));
    t.feed(S, &s, m(2));
    let r = t.record();
    assert_eq!(r.version.as_deref(), Some("TLSv1.0"));
    assert_eq!(r.cipher.as_deref(), Some("TLS_RSA_WITH_RC4_128_MD5"));
    assert_eq!(r.certificate.as_ref().unwrap().chain_length, 1);
    let f = t.findings();
    let v = f.iter().find(|f| f.kind == Kind::WeakTlsVersion).unwrap();
    assert_eq!(v.severity, Severity::Medium);
    assert_eq!(v.frame, 2);
    let w = f.iter().find(|f| f.kind == Kind::WeakCipher).unwrap();
    assert_eq!(w.severity, Severity::Medium);
    assert_eq!(
        w.evidence["weaknesses"],
        serde_json::json!(["rc4", "md5_mac"])
    );
}

#[test]
fn sslv3_and_export_are_high() {
    let (c, s) = tls12_streams(0x0003, 0x0300, None);
    let mut t = session();
    t.feed(C, &c, m(1));
    t.feed(S, &s, m(2));
    let f = t.findings();
    assert!(f.iter().all(|f| f.severity == Severity::High), "{f:?}");
    assert_eq!(kinds(&t), vec![Kind::WeakTlsVersion, Kind::WeakCipher]);
}

#[test]
fn certificate_problems() {
    let der = cert_der();
    let (c, s) = tls12_streams(0xc02f, 0x0303, Some(&der));
    // SNI mx.example.org matches; the key is 1024 bits and the cert self-signed.
    let mut t = session();
    t.feed(C, &c, m(1));
    t.feed(S, &s, m(2));
    let r = t.record().certificate.unwrap();
    assert_eq!(r.subject, "CN=mx.example.org");
    assert_eq!(r.issuer, "CN=mx.example.org");
    assert_eq!(r.san, vec!["mx.example.org", "*.mail.example.org"]);
    assert_eq!(r.key_type, "RSA");
    assert_eq!(r.key_bits, Some(1024));
    assert_eq!(r.not_before, "2026-11-24T13:23:22.000000Z");
    assert_eq!(
        r.sha256,
        "f596659421d1d106e3f5483dcd4d2ca02c5911b753d0c9ee291ee24b2cd89604"
    );
    assert!(r.self_signed);
    let f = t.findings();
    let cp = f
        .iter()
        .find(|f| f.kind == Kind::CertificateProblem)
        .unwrap();
    assert_eq!(cp.severity, Severity::Medium);
    assert_eq!(
        cp.evidence["problems"],
        serde_json::json!(["weak_key", "self_signed"])
    );

    // Later than notAfter, with a banner host instead of SNI that the SANs do not cover.
    let ctx = TlsContext {
        starttls: true,
        banner_host: Some("smtp.example.net".into()),
        ..TlsContext::default()
    };
    let mut t = TlsSession::new(ctx);
    let no_sni = rec(22, &hs(1, &client_hello_body(0x0303, &[], &[0xc02f], &[])));
    t.feed(C, &no_sni, m(1));
    let late = EventMeta {
        ts: Timestamp::new(CERT_NOT_BEFORE + 90 * 86_400, 0),
        frame: 2,
    };
    t.feed(S, &s, late);
    let r = t.record().certificate.unwrap();
    assert_eq!(r.name_checked.as_deref(), Some("smtp.example.net"));
    assert_eq!(
        r.problems,
        vec!["expired", "weak_key", "self_signed", "name_mismatch"]
    );
    // Wildcard SAN covers exactly one label.
    let info = cert::inspect(&der, 1, Some("a.mail.example.org"), m(1).ts).unwrap();
    assert!(!info.problems.contains(&cert::CertProblem::NameMismatch));
    let early = Timestamp::new(CERT_NOT_BEFORE - 10, 0);
    let info = cert::inspect(&der, 1, Some("a.b.mail.example.org"), early).unwrap();
    assert!(info.problems.contains(&cert::CertProblem::NameMismatch));
    assert!(info.problems.contains(&cert::CertProblem::NotYetValid));
}

#[test]
fn fatal_alert_from_server_before_server_hello() {
    let mut t = session();
    t.feed(C, &rec(22, &hs(1, &ch12())), m(4));
    assert_eq!(t.feed(S, &rec(21, &[2, 40]), m(6)), Interest::Done);
    t.end(S, EndKind::Fin, m(7));
    assert_eq!(t.outcome(), HandshakeOutcome::Failed);
    let r = t.record();
    assert_eq!(r.alerts.len(), 1);
    assert_eq!(r.alerts[0].from, Sender::Server);
    assert_eq!(r.alerts[0].level, ReportAlertLevel::Fatal);
    assert_eq!(
        r.alerts[0].description.as_deref(),
        Some("handshake_failure")
    );
    assert_eq!(evidence(&t).rule, "fatal_alert");
    let f = t.findings();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind, Kind::TlsHandshakeFailure);
    assert_eq!(f[0].severity, Severity::Medium);
    assert_eq!(f[0].frame, 6);
    assert_eq!(f[0].evidence["sender"], "server");
    assert_eq!(f[0].evidence["description"], "handshake_failure");
    assert_eq!(f[0].evidence["stage"], "before_server_hello");
    assert_eq!(f[0].evidence["confidence"], "certain");
}

#[test]
fn fatal_alert_from_client_after_server_hello() {
    let (_, s) = tls12_streams(0xc02f, 0x0303, None);
    let mut t = session();
    t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
    t.feed(S, &s[..s.len() - 150], m(2));
    t.feed(C, &rec(21, &[2, 48]), m(3));
    let f = t.findings();
    assert_eq!(f[0].evidence["sender"], "client");
    assert_eq!(f[0].evidence["description"], "unknown_ca");
    assert_eq!(f[0].evidence["stage"], "after_server_hello");
}

#[test]
fn warning_alert_is_not_a_failure() {
    let mut t = session();
    t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
    t.feed(S, &rec(21, &[1, 112]), m(2));
    assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
    assert_eq!(t.record().alerts[0].level, ReportAlertLevel::Warning);
    assert!(t.findings().is_empty());
}

#[test]
fn reset_before_completion() {
    let mut t = session();
    t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
    t.end(C, EndKind::Reset, m(3));
    assert_eq!(t.outcome(), HandshakeOutcome::Failed);
    assert_eq!(evidence(&t).rule, "reset_before_completion");
    let f = t.findings();
    assert_eq!(f[0].evidence["sender"], "client");
    assert_eq!(f[0].frame, 3);
}

#[test]
fn fin_before_completion() {
    let (_, s) = tls12_streams(0xc02f, 0x0303, None);
    let mut t = session();
    t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
    t.feed(S, &s[..60], m(2));
    t.end(S, EndKind::Fin, m(3));
    assert_eq!(evidence(&t).rule, "closed_before_completion");
    assert_eq!(t.findings()[0].evidence["stage"], "after_server_hello");
}

#[test]
fn capture_ends_mid_handshake_is_incomplete() {
    let (c, s) = tls12_streams(0xc02f, 0x0303, None);
    let mut t = session();
    t.feed(C, &c[..c.len() - 150], m(1));
    t.feed(S, &s[..s.len() - 150], m(2));
    assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
    assert!(t.record().outcome_evidence.is_none());
    assert!(t.findings().is_empty());
}

fn tls13_server_flight() -> Vec<u8> {
    let sh = server_hello_body(
        0x0303,
        [2; 32],
        0x1302,
        &[
            (ext::SUPPORTED_VERSIONS, vec![3, 4]),
            (51, vec![0, 29, 0, 0]),
        ],
    );
    let mut s = rec(22, &hs(2, &sh));
    s.extend(rec(20, &[1]));
    s.extend(rec(23, &[0x42; 2500]));
    s
}

/// Found by the `tls_session` fuzz target (chunking differential): a TLS 1.3 ServerHello
/// followed, in the same handshake record and the same segment, by bytes that read as a
/// huge message header. Fed at once they were parsed as handshake (one overflow); fed
/// byte by byte they were left alone, as encrypted bytes must be.
#[test]
fn tls13_server_hello_settles_the_rest_of_the_segment() {
    let sh = server_hello_body(
        0x0303,
        [2; 32],
        0x1302,
        &[(ext::SUPPORTED_VERSIONS, vec![3, 4])],
    );
    let mut body = hs(2, &sh);
    body.extend_from_slice(&[0x0b, 0xff, 0xff, 0xff, 0x17, 0x03, 0x03]);
    let stream = rec(22, &body);
    let run = |pieces: Vec<&[u8]>| {
        let mut t = session();
        t.feed(C, &rec(22, &hs(1, &ch13())), m(1));
        for p in pieces {
            t.feed(S, p, m(2));
        }
        t.record()
    };
    let whole = run(vec![&stream]);
    assert_eq!(whole.to_client.handshake_overflow, 0);
    assert!(whole.anomalies.is_empty(), "{:?}", whole.anomalies);
    assert_eq!(whole, run(stream.chunks(1).collect()));
}

#[test]
fn tls13_complete() {
    let mut t = session();
    t.feed(C, &rec(22, &hs(1, &ch13())), m(14));
    t.feed(S, &tls13_server_flight(), m(16));
    assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
    let mut fin = rec(20, &[1]);
    fin.extend(rec(23, &[0x11; 69]));
    t.feed(C, &fin, m(19));
    t.feed(C, &rec(23, &[0x12; 38]), m(21));
    assert_eq!(t.outcome(), HandshakeOutcome::Complete);
    assert_eq!(evidence(&t).confidence, Confidence::Likely);
    t.feed(S, &rec(23, &[0x13; 250]), m(23));
    t.feed(S, &rec(23, &[0x14; 150]), m(25));
    let e = evidence(&t);
    assert_eq!(
        (e.rule.as_str(), e.confidence),
        ("app_data_both_ways", Confidence::Certain)
    );
    assert_eq!(e.frame, 21);
    let r = t.record();
    assert_eq!(r.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(r.cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(r.server.unwrap().legacy_version, "TLSv1.2");
    assert_eq!(r.ja3s_full.as_deref(), Some("771,4866,43-51"));
    assert!(r.ja4.unwrap().starts_with("t13i0204sp_"));
    assert!(t.findings().is_empty());
}

#[test]
fn tls13_client_rejects_server_flight() {
    let mut t = session();
    t.feed(C, &rec(22, &hs(1, &ch13())), m(4));
    t.feed(S, &tls13_server_flight(), m(6));
    let mut rej = rec(20, &[1]);
    rej.extend(rec(23, &[0x99; 19]));
    t.feed(C, &rej, m(8));
    assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
    t.end(C, EndKind::Fin, m(9));
    assert_eq!(t.outcome(), HandshakeOutcome::Failed);
    let e = evidence(&t);
    assert_eq!(e.rule, "tls13_client_rejected_server_flight");
    assert_eq!(e.confidence, Confidence::Likely);
    assert_eq!(e.frame, 8);
    let r = t.record();
    assert_eq!(r.alerts.len(), 1);
    assert_eq!(r.alerts[0].level, ReportAlertLevel::Encrypted);
    assert_eq!(r.alerts[0].description, None);
    let f = t.findings();
    assert_eq!(f[0].evidence["confidence"], "likely");
    assert_eq!(f[0].evidence["sender"], "client");
}

#[test]
fn hello_retry_request_is_not_the_server_hello() {
    let mut t = session();
    t.feed(C, &rec(22, &hs(1, &ch13())), m(1));
    let hrr = server_hello_body(
        0x0303,
        HRR_RANDOM,
        0x1301,
        &[(ext::SUPPORTED_VERSIONS, vec![3, 4])],
    );
    t.feed(S, &rec(22, &hs(2, &hrr)), m(2));
    assert!(!t.server_hello_seen());
    // Middlebox-compatible CCS, then the second ClientHello in clear.
    let mut c2 = rec(20, &[1]);
    c2.extend(rec(22, &hs(1, &ch13())));
    t.feed(C, &c2, m(3));
    t.feed(S, &tls13_server_flight(), m(4));
    let r = t.record();
    assert!(r.hello_retry_request);
    assert!(r.server_hello_seen);
    assert_eq!(r.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(r.to_server.handshake, 2);
}

#[test]
fn oversized_record_claim_stops_the_direction() {
    let mut t = session();
    let mut d = rec(22, &hs(1, &ch12()));
    d.extend_from_slice(&[0x17, 0x03, 0x03, 0xff, 0xff, 0, 0, 0]);
    assert_eq!(t.feed(C, &d, m(3)), Interest::Done);
    let r = t.record();
    assert!(r.to_server.stopped);
    assert_eq!(r.anomalies, vec!["to_server: record_too_long at frame 3"]);
    assert_eq!(evidence(&t).rule, "protocol_error");
    // Further bytes are ignored.
    assert_eq!(t.feed(C, &[0x16; 100], m(4)), Interest::Done);
    assert_eq!(t.record().to_server.records, 1);
}

#[test]
fn sixteen_megabyte_message_claim_allocates_nothing() {
    let mut t = session();
    // A handshake message announcing 0xffffff bytes, fed a record at a time.
    let mut body = vec![11, 0xff, 0xff, 0xff];
    body.extend_from_slice(&[0; 100]);
    t.feed(S, &rec(22, &body), m(1));
    for _ in 0..3 {
        t.feed(S, &rec(22, &[0; 16_000]), m(2));
    }
    let s = &t.dirs[S.index()];
    assert!(s.hs.buf.capacity() <= 64, "{}", s.hs.buf.capacity());
    assert_eq!(s.hs.skip, 0xff_ffff - 100 - 48_000);
    assert_eq!(t.record().to_client.handshake_overflow, 1);
    assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
}

#[test]
fn handshake_total_cap() {
    let mut t = session();
    // 300 small unknown messages of 1000 bytes: past 256 KiB, parsing stops, counted.
    for _ in 0..300 {
        t.feed(S, &rec(22, &hs(99, &[0; 1000])), m(1));
    }
    let s = &t.dirs[S.index()];
    assert!(s.hs.disabled);
    assert_eq!(s.stats.handshake_overflow, 1);
    assert_eq!(s.stats.handshake, 300);
}

#[test]
fn gap_resynchronises_at_the_next_record() {
    let (c, s) = tls12_streams(0xc02f, 0x0303, None);
    let mut t = session();
    t.feed(C, &c, m(1));
    // Lose the middle of the ServerHello record, then deliver the rest.
    t.feed(S, &s[..20], m(2));
    t.gap(S, 30, m(3));
    let rest = &s[50..];
    t.feed(S, rest, m(4));
    let r = t.record();
    assert_eq!(r.to_client.gap_bytes, 30);
    assert!(!r.to_client.stopped);
    assert!(r.to_client.change_cipher_spec == 1);
    assert!(r.anomalies[0].starts_with("to_client: gap of 30 bytes"));
}

/// Found by the `smtp_session` fuzz target (chunking differential): after a gap, a record
/// header that arrived split across chunks was skipped, so one byte per call lost the
/// application-data record that one call found. Its exact input: an SSLv2-looking hello
/// cut by a gap, then `17 03 03 0f 0e`.
#[test]
fn header_split_across_chunks_after_a_gap_is_found() {
    let head = b"\xba\x8a\x01\x18\x17\x03\x00\xc0\x0f\x0e\x45\x94\xb3\xe7";
    let after_gap = b"\x17\x03\x03\x0f\x0e";
    let run = |pieces: &[&[u8]]| {
        let mut t = session();
        t.feed(C, head, m(1));
        t.gap(C, 0x70ba << 27, m(2));
        for p in pieces {
            t.feed(C, p, m(3));
        }
        t.record().to_server
    };
    let whole = run(&[after_gap]);
    assert_eq!((whole.records, whole.application_data), (2, 1));
    assert_eq!(whole.application_data_bytes, 0x0f0e);
    let bytes: Vec<&[u8]> = after_gap.chunks(1).collect();
    assert_eq!(run(&bytes), whole);
    // A held prefix that turns out not to be a header is rescanned from its next byte.
    let mut t = session();
    t.gap(S, 1, m(1));
    t.feed(S, b"\x16\x03", m(2));
    t.feed(S, b"\x16\x03\x03\x00\x00", m(3));
    assert_eq!(t.record().to_client.records, 1);
}

#[test]
fn plaintext_answer_is_a_protocol_error() {
    let mut t = session();
    t.feed(C, &rec(22, &hs(1, &ch12())), m(5));
    t.feed(S, b"220 mx.example.org ESMTP\r\n", m(6));
    t.end(C, EndKind::Reset, m(7));
    assert_eq!(evidence(&t).rule, "protocol_error");
    assert_eq!(t.findings()[0].evidence["sender"], "server");
}

#[test]
fn encrypted_alert_after_completion_is_listed() {
    let (c, s) = tls12_streams(0xc02f, 0x0303, None);
    let mut t = session().follow_to_close(true);
    t.feed(C, &c, m(1));
    t.feed(S, &s, m(2));
    assert_eq!(t.feed(C, &rec(21, &[0x77; 26]), m(3)), Interest::Bytes);
    t.end(C, EndKind::Fin, m(4));
    let r = t.record();
    assert_eq!(r.handshake, HandshakeOutcome::Complete);
    assert_eq!(r.alerts[0].level, ReportAlertLevel::Encrypted);
    assert_eq!(r.alerts[0].from, Sender::Client);
}

#[test]
fn sslv2_compatible_client_hello() {
    // SSLv2 header (0x80, len), CLIENT-HELLO for TLS 1.0 offering two TLS suites and one
    // SSLv2 spec, no session id, 16-byte challenge.
    let mut msg = vec![0x01, 0x03, 0x01, 0x00, 0x09, 0x00, 0x00, 0x00, 0x10];
    msg.extend_from_slice(&[0x00, 0x00, 0x04, 0x00, 0x00, 0x2f, 0x01, 0x00, 0x80]);
    msg.extend_from_slice(&[0x5a; 16]);
    let mut c = vec![0x80, msg.len() as u8];
    c.extend_from_slice(&msg);
    assert_eq!(crate::proto::tls::looks_like_tls(&c), Some(true));
    let mut t = session();
    t.feed(C, &c, m(1));
    let sh = server_hello_body(0x0301, [1; 32], 0x0004, &[]);
    t.feed(S, &rec(22, &hs(2, &sh)), m(2));
    // The client goes on in TLS records.
    t.feed(C, &rec(22, &hs(16, &[0; 10])), m(3));
    let r = t.record();
    assert!(r.client.as_ref().unwrap().sslv2_format);
    assert_eq!(
        r.client.unwrap().ciphers,
        vec![
            "TLS_RSA_WITH_RC4_128_MD5",
            "TLS_RSA_WITH_AES_128_CBC_SHA",
            "SSL_CK_RC4_128_WITH_MD5"
        ]
    );
    assert_eq!(r.ja3_full.as_deref(), Some("769,4-47-65664,,,"));
    assert_eq!(r.version.as_deref(), Some("TLSv1.0"));
    assert_eq!(r.to_server.records, 2);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

#[test]
fn sslv2_server_hello() {
    let mut msg = vec![0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10];
    msg.extend_from_slice(&[0x01, 0x00, 0x80]);
    msg.extend_from_slice(&[0x5a; 16]);
    let mut c = vec![0x80, msg.len() as u8];
    c.extend_from_slice(&msg);
    let mut t = session();
    t.feed(C, &c, m(1));
    // SERVER-HELLO: no session hit, X.509 cert type, version 2, no cert, 3 bytes of
    // specs, 16 bytes of connection id.
    let mut sh = vec![
        0x04, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x10,
    ];
    sh.extend_from_slice(&[0x01, 0x00, 0x80]);
    sh.extend_from_slice(&[0x33; 16]);
    let mut s = vec![0x80, sh.len() as u8];
    s.extend_from_slice(&sh);
    t.feed(S, &s, m(2));
    // CLIENT-MASTER-KEY choosing RC4-128-MD5.
    t.feed(
        C,
        &[0x80, 0x0a, 0x02, 0x01, 0x00, 0x80, 0, 0, 0, 0, 0, 0],
        m(3),
    );
    let r = t.record();
    assert_eq!(r.version.as_deref(), Some("SSLv2"));
    assert_eq!(r.cipher.as_deref(), Some("SSL_CK_RC4_128_WITH_MD5"));
    assert_eq!(kinds(&t), vec![Kind::WeakTlsVersion, Kind::WeakCipher]);
    assert_eq!(t.findings()[0].severity, Severity::High);
}

#[test]
fn heartbeat_is_counted_and_overlong_noted() {
    let mut t = session();
    t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
    t.feed(C, &rec(24, &[1, 0x40, 0x00, 0x01, 0x02, 0x03]), m(2));
    let r = t.record();
    assert_eq!(r.to_server.heartbeat, 1);
    assert_eq!(
        r.anomalies,
        vec!["to_server: heartbeat_payload_overlong at frame 2"]
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // Deterministic xorshift: random streams, some starting with valid record headers,
    // cut at random points, with random gaps and ends.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (c, s) = tls12_streams(0xc02f, 0x0303, Some(&cert_der()));
    for round in 0..400 {
        let mut t = session().follow_to_close(round % 2 == 0);
        for _ in 0..20 {
            let dir = if next() % 2 == 0 { C } else { S };
            let len = (next() % 300) as usize;
            let mut chunk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            match next() % 4 {
                // Mutate a real stream so that parsing goes deep before it breaks.
                0 => {
                    chunk = if dir == C { c.clone() } else { s.clone() };
                    let i = (next() as usize) % chunk.len();
                    chunk[i] = next() as u8;
                }
                1 if len >= 5 => chunk[..5].copy_from_slice(&[22, 3, 3, 0, 200]),
                2 => t.gap(dir, next() % 100, m(1)),
                _ => {}
            }
            t.feed(dir, &chunk, m(2));
            if next() % 50 == 0 {
                t.end(dir, EndKind::Fin, m(3));
            }
        }
        let _ = t.record();
        let _ = t.findings();
    }
}

// ---- partial captures ---------------------------------------------------------------

/// A capture begun mid-session: one TLS 1.2 close_notify, encrypted with AES-GCM (2
/// bytes of alert, 8 of explicit nonce, 16 of tag), then FIN. Read in clear it would be
/// thirteen alerts and a handshake failure.
#[test]
fn encrypted_alert_mid_stream_is_one_encrypted_alert_not_a_failure() {
    let mut t = session();
    let body: Vec<u8> = (0u8..26).map(|i| i.wrapping_mul(37)).collect();
    t.feed(C, &rec(21, &body), m(1));
    t.end(C, EndKind::Fin, m(2));
    t.end(S, EndKind::Fin, m(4));
    let r = t.record();
    assert_eq!(r.alerts.len(), 1);
    assert_eq!(r.alerts[0].level, ReportAlertLevel::Encrypted);
    assert_eq!(r.alerts[0].description, None);
    assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
    assert_eq!(evidence(&t).rule, "handshake_not_captured");
    assert_eq!(evidence(&t).confidence, Confidence::Likely);
    assert!(t.findings().is_empty());
}

/// Two alerts in one clear record during a handshake seen in clear are still read.
#[test]
fn several_clear_alerts_in_one_record_during_the_handshake() {
    let mut t = session();
    t.feed(C, &rec(22, &hs(1, &ch12())), m(1));
    t.feed(
        S,
        &rec(22, &hs(2, &server_hello_body(0x0303, [1; 32], 0xc02f, &[]))),
        m(2),
    );
    t.feed(C, &rec(21, &[1, 0, 2, 40]), m(3));
    assert_eq!(t.record().alerts.len(), 2);
    assert_eq!(t.outcome(), HandshakeOutcome::Failed);
}

/// Records cut by a snap length: a reset before completion proves nothing.
#[test]
fn reset_after_cut_records_is_undecided() {
    let mut t = session();
    let full = rec(22, &hs(1, &ch12()));
    t.feed(C, &full[..30], m(1));
    t.gap(C, (full.len() - 30) as u64, m(1));
    t.end(C, EndKind::Reset, m(3));
    assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
    assert_eq!(evidence(&t).rule, "deciding_bytes_not_captured");
    assert_eq!(evidence(&t).frame, 3);
    assert!(t.findings().is_empty());
}

/// Only the server's side: its hello is there, the client's records are not.
#[test]
fn server_side_only_is_undecided() {
    let mut t = session();
    t.feed(
        S,
        &rec(22, &hs(2, &server_hello_body(0x0303, [1; 32], 0xc02f, &[]))),
        m(2),
    );
    t.end(S, EndKind::Fin, m(5));
    assert_eq!(t.outcome(), HandshakeOutcome::Incomplete);
    assert_eq!(evidence(&t).rule, "client_side_not_captured");
}

#[test]
fn client_hello_after_refused_starttls_fails_at_once() {
    let mut t = TlsSession::new(TlsContext {
        starttls: true,
        starttls_refused: Some(454),
        ..TlsContext::default()
    });
    t.feed(C, &rec(22, &hs(1, &ch12())), m(6));
    assert_eq!(t.outcome(), HandshakeOutcome::Failed);
    assert_eq!(evidence(&t).rule, "client_hello_after_starttls_refused");
    assert_eq!(evidence(&t).confidence, Confidence::Certain);
    let f = t.findings();
    assert_eq!((f[0].kind, f[0].frame), (Kind::TlsHandshakeFailure, 6));
    assert_eq!(f[0].evidence["starttls_refused_reply"], 454);
    assert!(f[0].message.contains("refused STARTTLS (454)"));
}

#[test]
fn record_at_the_end_is_the_same_record() {
    // Fingerprints, a certificate, an alert and the hellos' lists: everything the final
    // record moves instead of copying.
    let der = cert_der();
    let (c, s) = tls12_streams(0xc02f, 0x0303, Some(&der));
    let mut t = session();
    t.feed(C, &c, m(1));
    t.feed(S, &s, m(2));
    t.feed(S, &rec(21, &[1, 0]), m(3));
    let want = t.record();
    assert!(want.certificate.is_some() && want.ja4.is_some() && want.ja3s.is_some());
    assert!(!want.alerts.is_empty());
    assert!(
        want.client
            .as_ref()
            .is_some_and(|c| !c.extensions.is_empty())
    );
    assert_eq!(t.into_record(), want);
}

#[test]
fn memoised_certificates_are_judged_per_connection() {
    let der = cert_der();
    let memo = Arc::new(Mutex::new(cert::CertMemo::default()));
    let (_, s) = tls12_streams(0xc02f, 0x0303, Some(&der));
    let run = |host: Option<&str>, ts: Timestamp| {
        let ctx = TlsContext {
            starttls: true,
            banner_host: host.map(str::to_string),
            ..TlsContext::default()
        };
        let mut t = TlsSession::new(ctx).with_cert_memo(memo.clone());
        let no_sni = rec(22, &hs(1, &client_hello_body(0x0303, &[], &[0xc02f], &[])));
        t.feed(C, &no_sni, m(1));
        t.feed(S, &s, EventMeta { ts, frame: 2 });
        (t.record().certificate, t.findings())
    };
    let late = Timestamp::new(CERT_NOT_BEFORE + 90 * 86_400, 0);
    let early = Timestamp::new(CERT_NOT_BEFORE - 10, 0);
    let cases = [
        (Some("mx.example.org"), m(1).ts),
        (Some("smtp.example.net"), late),
        (Some("a.mail.example.org"), early),
        (None, m(1).ts),
    ];
    // First without the memo's entry, then from it: the same answers either way.
    for round in 0..2 {
        for (host, ts) in cases {
            let got = run(host, ts);
            let fresh = cert::inspect(&der, 1, host, ts).map(|i| i.record);
            assert_eq!(got.0, fresh, "round {round} host {host:?}");
        }
    }
    assert_eq!(memo.lock().unwrap().len(), 1);
}
