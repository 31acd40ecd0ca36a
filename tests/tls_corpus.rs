//! TLS analysis against the public capture corpus (`../shared/corpus` beside the repository, or `$SMTPAUDIT_CORPUS`), checked against
//! the ground truth in its labels and against tshark 4.0.17's `tls.handshake.ja3` /
//! `tls.handshake.ja3s`:
//!
//! ```text
//! tshark -r FILE -d tcp.port==25,smtp -d tcp.port==64132,tls \
//!     -Y 'tls.handshake.type==1 || tls.handshake.type==2' \
//!     -T fields -e frame.number -e tls.handshake.ja3 -e tls.handshake.ja3s
//! ```
//!
//! The flow table is not used: a small helper below reads the pcap, keeps one TCP
//! connection, puts each direction in sequence order and starts feeding a direction at its
//! first segment that looks like TLS (these captures are clean, and TLS starts on a segment
//! boundary after STARTTLS).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::PcapCapture;
use smtpaudit::findings::Kind;
use smtpaudit::flow::{Direction, EventMeta};
use smtpaudit::proto::tls::{EndKind, TlsContext, TlsSession, looks_like_tls};
use smtpaudit::report::model::{AlertLevel, HandshakeOutcome, Sender, TlsRecord};
use smtpaudit::time::Timestamp;

fn corpus() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SMTPAUDIT_CORPUS").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.is_dir());
    if found.is_none() {
        eprintln!("skipping: capture corpus not found (set SMTPAUDIT_CORPUS)");
    }
    found
}

struct Segment {
    frame: u64,
    ts: Timestamp,
    dir: Direction,
    seq: u32,
    syn: bool,
    fin: bool,
    rst: bool,
    payload: Vec<u8>,
}

/// The segments of the connection between `client` and `server_port`, in capture order.
fn segments(file: &str, client: (&str, u16), server_port: u16) -> Option<Vec<Segment>> {
    let path = corpus()?.join(file);
    let bytes = std::fs::read(&path).unwrap();
    let cap = PcapCapture::from_file(&bytes).unwrap();
    let client_ip: IpAddr = client.0.parse().unwrap();
    let mut out = Vec::new();
    for (i, b) in cap.blocks.iter().enumerate() {
        let Ok(p) = SlicedPacket::from_ethernet(b.data) else {
            continue;
        };
        let (src, dst) = match &p.net {
            Some(NetSlice::Ipv4(ip)) => (
                IpAddr::from(ip.header().source_addr()),
                IpAddr::from(ip.header().destination_addr()),
            ),
            Some(NetSlice::Ipv6(ip)) => (
                IpAddr::from(ip.header().source_addr()),
                IpAddr::from(ip.header().destination_addr()),
            ),
            _ => continue,
        };
        let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
            continue;
        };
        let dir = if src == client_ip
            && tcp.source_port() == client.1
            && tcp.destination_port() == server_port
        {
            Direction::ToServer
        } else if dst == client_ip
            && tcp.destination_port() == client.1
            && tcp.source_port() == server_port
        {
            Direction::ToClient
        } else {
            continue;
        };
        out.push(Segment {
            frame: i as u64 + 1,
            ts: Timestamp::new(b.ts_sec as i64, b.ts_usec * 1000),
            dir,
            seq: tcp.sequence_number(),
            syn: tcp.syn(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            payload: tcp.payload().to_vec(),
        });
    }
    Some(out)
}

/// Feeds one connection's TLS bytes to a session, in sequence order per direction and in
/// capture order across directions, with FIN and RST.
fn analyse(file: &str, client: (&str, u16), server_port: u16) -> Option<TlsSession> {
    let segs = segments(file, client, server_port)?;
    let mut s = TlsSession::new(TlsContext {
        starttls: server_port == 25 || server_port == 143,
        banner_host: None,
        starttls_refused: None,
        keys: None,
    })
    .follow_to_close(true);
    let mut next: [Option<u32>; 2] = [None, None];
    let mut in_tls = [false; 2];
    let mut held: [BTreeMap<u32, (Vec<u8>, EventMeta)>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for seg in segs {
        let d = seg.dir.index();
        let meta = EventMeta {
            ts: seg.ts,
            frame: seg.frame,
        };
        if seg.syn {
            next[d] = Some(seg.seq.wrapping_add(1));
        }
        if !seg.payload.is_empty() {
            let expected = *next[d].get_or_insert(seg.seq);
            // Retransmissions of delivered bytes are dropped; later segments wait.
            if (seg.seq.wrapping_sub(expected) as i32) >= 0 {
                held[d].insert(seg.seq, (seg.payload.clone(), meta));
            }
            while let Some((data, m)) = next[d].and_then(|n| held[d].remove(&n)) {
                next[d] = next[d].map(|n| n.wrapping_add(data.len() as u32));
                if !in_tls[d] {
                    in_tls[d] = looks_like_tls(&data) == Some(true);
                }
                if in_tls[d] {
                    s.feed(seg.dir, &data, m);
                }
            }
        }
        if seg.fin {
            s.end(seg.dir, EndKind::Fin, meta);
        }
        if seg.rst {
            s.end(seg.dir, EndKind::Reset, meta);
        }
    }
    Some(s)
}

fn alerts(r: &TlsRecord) -> Vec<(Sender, AlertLevel, Option<&str>, u64)> {
    r.alerts
        .iter()
        .map(|a| (a.from, a.level, a.description.as_deref(), a.frame))
        .collect()
}

fn kinds(s: &TlsSession) -> Vec<Kind> {
    s.findings().iter().map(|f| f.kind).collect()
}

#[test]
fn zeek_smtp_starttls_tls12() {
    let Some(s) = analyse("zeek/smtp-starttls.pcap", ("192.168.4.149", 54170), 25) else {
        return;
    };
    let r = s.record();
    assert_eq!(r.handshake, HandshakeOutcome::Complete);
    assert_eq!(r.version.as_deref(), Some("TLSv1.2"));
    assert_eq!(
        r.cipher.as_deref(),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
    assert_eq!(r.sni, None);
    assert_eq!(r.ja3.as_deref(), Some("13020a4ccb11b2d3c9c0e6c285c3c415"));
    assert_eq!(r.ja3s.as_deref(), Some("ccc514751b175866924439bdbb5bba34"));
    assert_eq!(r.ja3s_full.as_deref(), Some("771,49199,65281-11-35"));
    assert_eq!(
        r.outcome_evidence.as_ref().unwrap().rule,
        "ccs_finished_both"
    );
    // The close_notify at the end is encrypted (frame 34).
    assert_eq!(
        alerts(&r),
        vec![(Sender::Client, AlertLevel::Encrypted, None, 34)]
    );
    let cert = r.certificate.unwrap();
    assert!(cert.subject.contains("mx.google.com"), "{}", cert.subject);
    assert!(cert.chain_length >= 2);
    assert_eq!(cert.key_type, "RSA");
    assert!(
        s.findings()
            .iter()
            .all(|f| f.kind != Kind::TlsHandshakeFailure)
    );
}

#[test]
fn zeek_tls12_handshake_failure() {
    let Some(s) = analyse(
        "zeek/tls-1.2-handshake-failure.pcap",
        ("192.168.4.149", 53525),
        443,
    ) else {
        return;
    };
    let r = s.record();
    assert_eq!(r.handshake, HandshakeOutcome::Failed);
    assert!(r.client_hello_seen && !r.server_hello_seen);
    assert_eq!(r.version, None);
    assert_eq!(r.ja3.as_deref(), Some("62bd27c43a9a4d7fcbc45d8c9e7e04dd"));
    assert_eq!(
        alerts(&r),
        vec![(
            Sender::Server,
            AlertLevel::Fatal,
            Some("handshake_failure"),
            6
        )]
    );
    let f = s.findings();
    assert_eq!(kinds(&s), vec![Kind::TlsHandshakeFailure]);
    assert_eq!(f[0].frame, 6);
    assert_eq!(f[0].evidence["stage"], "before_server_hello");
}

#[test]
fn zeek_tls12_protocol_error() {
    let Some(s) = analyse(
        "zeek/tls-1.2-protocol-error.pcap",
        ("192.168.4.149", 53525),
        443,
    ) else {
        return;
    };
    let r = s.record();
    assert_eq!(r.handshake, HandshakeOutcome::Failed);
    assert!(r.alerts.is_empty());
    assert_eq!(r.ja3.as_deref(), Some("62bd27c43a9a4d7fcbc45d8c9e7e04dd"));
    assert_eq!(kinds(&s), vec![Kind::TlsHandshakeFailure]);
}

#[test]
fn zeek_tls12_late_protocol_error() {
    let Some(s) = analyse(
        "zeek/tls1.2-late-protocol-error.pcap",
        ("10.0.0.80", 56637),
        443,
    ) else {
        return;
    };
    let r = s.record();
    // The client's ChangeCipherSpec header is corrupt (version 0xffff, length 0xff01).
    assert_eq!(r.handshake, HandshakeOutcome::Failed);
    assert_eq!(r.outcome_evidence.as_ref().unwrap().rule, "protocol_error");
    assert_eq!(r.version.as_deref(), Some("TLSv1.2"));
    assert_eq!(r.cipher.as_deref(), Some("TLS_RSA_WITH_RC4_128_MD5"));
    assert_eq!(r.ja3.as_deref(), Some("bd9c99b3a0f752c3ab8b052a79e9de3e"));
    assert_eq!(r.ja3s.as_deref(), Some("c253ec3ad88e42f8da4032682892f9a0"));
    assert_eq!(
        r.anomalies,
        vec!["to_server: invalid_record_version at frame 10"]
    );
    assert_eq!(kinds(&s), vec![Kind::TlsHandshakeFailure, Kind::WeakCipher]);
    assert_eq!(r.certificate.unwrap().chain_length, 3);
}

#[test]
fn zeek_tls13_draft16_aborted() {
    for (port, ja3, frame) in [
        (54980, "9272a8e6d5f6c71129665bc776e80a51", 6),
        (54982, "558ec750499e3584c0d0fcd4b053ec9a", 16),
    ] {
        let Some(s) = analyse(
            "zeek/tls13draft16-ff52.a01-aborted.pcap",
            ("192.150.187.20", port),
            443,
        ) else {
            return;
        };
        let r = s.record();
        assert_eq!(r.handshake, HandshakeOutcome::Failed);
        assert_eq!(r.sni.as_deref(), Some("tls13.crypto.mozilla.org"));
        assert_eq!(r.ja3.as_deref(), Some(ja3));
        assert_eq!(
            alerts(&r),
            vec![(
                Sender::Server,
                AlertLevel::Fatal,
                Some("protocol_version"),
                frame
            )]
        );
        if port == 54980 {
            let ch = r.client.unwrap();
            assert_eq!(
                ch.supported_versions,
                vec!["TLSv1.3-draft16", "TLSv1.2", "TLSv1.1", "TLSv1.0"]
            );
        }
    }
}

#[test]
fn zeek_tls_early_alert_is_a_warning() {
    let Some(s) = analyse("zeek/tls-early-alert.pcap", ("192.168.6.217", 50020), 64132) else {
        return;
    };
    let r = s.record();
    assert_eq!(r.handshake, HandshakeOutcome::Complete);
    assert_eq!(r.sni.as_deref(), Some("jeffbryner.com"));
    assert_eq!(r.ja3.as_deref(), Some("07b4162d4db57554961824a21c4a0fde"));
    assert_eq!(r.ja3s.as_deref(), Some("389ed42c02ebecc32e73aa31def07e14"));
    assert_eq!(
        alerts(&r)[0],
        (
            Sender::Server,
            AlertLevel::Warning,
            Some("unrecognized_name"),
            6
        )
    );
}

#[test]
fn suricata_smtp_starttls_tls13() {
    let Some(s) = analyse(
        "suricata-verify/smtp-startssl/input.pcap",
        ("10.16.1.11", 34634),
        25,
    ) else {
        return;
    };
    let r = s.record();
    assert_eq!(r.handshake, HandshakeOutcome::Complete);
    assert_eq!(r.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(r.cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(r.ja3.as_deref(), Some("8708213741ab46424b1fbfcc9517ba07"));
    assert_eq!(r.ja3s.as_deref(), Some("15af977ce25de452b96affa2addb1036"));
    assert!(
        r.certificate.is_none(),
        "TLS 1.3 certificates are encrypted"
    );
    let e = r.outcome_evidence.unwrap();
    assert_eq!(e.rule, "app_data_both_ways");
    assert!(s.findings().is_empty(), "{:?}", s.findings());
}

#[test]
fn suricata_tls_extra_alert() {
    let Some(s) = analyse(
        "suricata-verify/tls-extra-alert/input.pcap",
        ("192.168.10.220", 37720),
        443,
    ) else {
        return;
    };
    let r = s.record();
    assert_eq!(r.handshake, HandshakeOutcome::Failed);
    assert_eq!(r.ja3.as_deref(), Some("709377ac59ab71c3788da5ab1ad4d287"));
    assert_eq!(
        alerts(&r)[0],
        (
            Sender::Server,
            AlertLevel::Fatal,
            Some("handshake_failure"),
            6
        )
    );
    assert_eq!(kinds(&s), vec![Kind::TlsHandshakeFailure]);
}

#[test]
fn arkime_smtp_starttls_tls10() {
    let Some(s) = analyse("arkime/smtp-starttls.pcap", ("10.0.0.1", 57406), 25) else {
        return;
    };
    let r = s.record();
    assert_eq!(r.handshake, HandshakeOutcome::Complete);
    assert_eq!(r.version.as_deref(), Some("TLSv1.0"));
    assert_eq!(r.cipher.as_deref(), Some("TLS_RSA_WITH_RC4_128_SHA"));
    assert_eq!(
        r.ja3_full.as_deref(),
        Some(
            "769,57-56-136-135-53-132-22-19-10-51-50-154-153-69-68-47-150-65-5-4-21-18-9-20-17-\
             8-6-3-255,35,,"
        )
    );
    assert_eq!(r.ja3.as_deref(), Some("fab507fe132c544e8a0eb7c394affeae"));
    assert_eq!(r.ja3s.as_deref(), Some("6b96cf9c27b0223177b0e9f135fe4899"));
    assert_eq!(kinds(&s), vec![Kind::WeakTlsVersion, Kind::WeakCipher]);
}

#[test]
fn zeek_smtp_pcap_https_flow() {
    let Some(s) = analyse("zeek/smtp.pcap", ("192.168.133.100", 49655), 443) else {
        return;
    };
    let r = s.record();
    assert_eq!(r.handshake, HandshakeOutcome::Complete);
    assert_eq!(r.version.as_deref(), Some("TLSv1.2"));
    assert_eq!(r.cipher.as_deref(), Some("TLS_RSA_WITH_RC4_128_MD5"));
    assert_eq!(r.sni.as_deref(), Some("p31-keyvalueservice.icloud.com"));
    assert_eq!(r.ja3.as_deref(), Some("799135475da362592a4be9199d258726"));
    assert_eq!(r.ja3s.as_deref(), Some("c253ec3ad88e42f8da4032682892f9a0"));
}

#[test]
fn zeek_imap_starttls() {
    let Some(s) = analyse("zeek/imap-starttls.pcap", ("192.168.17.53", 49640), 143) else {
        return;
    };
    let r = s.record();
    assert_eq!(r.handshake, HandshakeOutcome::Complete);
    assert_eq!(
        r.cipher.as_deref(),
        Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    );
    assert_eq!(r.ja3.as_deref(), Some("c369db2c355ad05c76f5660af3179b01"));
    assert_eq!(r.ja3s.as_deref(), Some("0debd3853f330c574b05e0b6d882dc27"));
    assert_eq!(
        alerts(&r),
        vec![
            (Sender::Server, AlertLevel::Encrypted, None, 27),
            (Sender::Client, AlertLevel::Encrypted, None, 30)
        ]
    );
}
