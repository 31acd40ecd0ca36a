//! Hostile traffic: captures built here, packet by packet, that try to make smtpaudit hold
//! memory without bound or lose count. Each test asserts the documented cap or counter that
//! handles its attack, never a timing. Also replays the fuzzers' regression inputs kept in
//! `tests/regressions/<target>/` through the targets' own code.
//!
//! Runtime: a few seconds in `cargo test --release` (the largest capture is ~48 MiB).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The fuzz targets' drivers and script format, so regression inputs run through exactly
// what the fuzzer ran.
#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzzlib;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use etherparse::PacketBuilder;
use serde_json::Value;
use smtpaudit::cli::Config;
use smtpaudit::findings::Finding;
use smtpaudit::flow::FlowConfig;
use smtpaudit::pipeline;
use smtpaudit::report::ReportSink;
use smtpaudit::report::model::{CaptureRecord, FlowRecord, Summary};

// ---------------------------------------------------------------------------------------
// Building captures

/// A classic pcap (Ethernet) being written in memory.
struct Pcap {
    buf: Vec<u8>,
    usec: u64,
}

impl Pcap {
    fn new() -> Self {
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&[0; 8]); // thiszone, sigfigs
        buf.extend_from_slice(&262_144u32.to_le_bytes());
        buf.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        Pcap {
            buf,
            usec: 1_700_000_000 * 1_000_000,
        }
    }

    fn frame(&mut self, frame: &[u8]) {
        self.usec += 10;
        let len = frame.len() as u32;
        self.buf
            .extend_from_slice(&((self.usec / 1_000_000) as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&((self.usec % 1_000_000) as u32).to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(frame);
    }
}

#[derive(Clone, Copy)]
enum Flags {
    Syn,
    SynAck,
    Ack,
    FinAck,
}

/// One TCP connection over IPv4, with both sides' next sequence numbers.
struct Conn {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    /// Next sequence number of the client and of the server.
    seq: [u32; 2],
}

const C: usize = 0;
const S: usize = 1;
/// Payload per segment for bulk data: large segments keep the packet count (and the
/// test's runtime) down; nothing in the analysis depends on the MSS.
const SEG: usize = 32 * 1024;

impl Conn {
    fn new(client_ip: [u8; 4], client_port: u16, server_port: u16) -> Self {
        Conn {
            client: (client_ip, client_port),
            server: ([198, 51, 100, 25], server_port),
            seq: [1_000_000, 5_000_000],
        }
    }

    /// One segment from `side` at an explicit sequence number (for overlaps).
    fn raw(&self, p: &mut Pcap, side: usize, seq: u32, flags: Flags, payload: &[u8]) {
        let ((sip, sport), (dip, dport)) = if side == C {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let ack = self.seq[1 - side];
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(sip, dip, 64)
            .tcp(sport, dport, seq, 65_000);
        let b = match flags {
            Flags::Syn => b.syn(),
            Flags::SynAck => b.syn().ack(ack),
            Flags::Ack => b.ack(ack).psh(),
            Flags::FinAck => b.fin().ack(ack),
        };
        let mut out = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut out, payload).unwrap();
        p.frame(&out);
    }

    fn syn(&mut self, p: &mut Pcap) {
        self.raw(p, C, self.seq[C], Flags::Syn, &[]);
        self.seq[C] += 1;
    }

    fn open(&mut self, p: &mut Pcap) {
        self.syn(p);
        self.raw(p, S, self.seq[S], Flags::SynAck, &[]);
        self.seq[S] += 1;
        self.raw(p, C, self.seq[C], Flags::Ack, &[]);
    }

    /// Bytes from `side`, cut into segments of at most [`SEG`].
    fn send(&mut self, p: &mut Pcap, side: usize, data: &[u8]) {
        for chunk in data.chunks(SEG) {
            self.raw(p, side, self.seq[side], Flags::Ack, chunk);
            self.seq[side] = self.seq[side].wrapping_add(chunk.len() as u32);
        }
    }

    fn client(&mut self, p: &mut Pcap, data: &[u8]) {
        self.send(p, C, data);
    }

    fn server(&mut self, p: &mut Pcap, data: &[u8]) {
        self.send(p, S, data);
    }

    fn close(&mut self, p: &mut Pcap) {
        for side in [C, S] {
            self.raw(p, side, self.seq[side], Flags::FinAck, &[]);
            self.seq[side] += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running the pipeline

/// Keeps what the pipeline reported, as the contract's JSON values (so the assertions use
/// the field names users see), or only counts flows when there are too many to keep.
#[derive(Default)]
struct Collect {
    keep_flows: bool,
    flow_count: u64,
    flows: Vec<Value>,
    findings: Vec<Value>,
    captures: Vec<Value>,
}

impl ReportSink for Collect {
    fn flow(&mut self, flow: &FlowRecord, findings: &[Finding]) -> std::io::Result<()> {
        self.flow_count += 1;
        if self.keep_flows {
            self.flows.push(serde_json::to_value(flow)?);
            for f in findings {
                self.findings.push(serde_json::to_value(f)?);
            }
        }
        Ok(())
    }
    fn capture(&mut self, capture: &CaptureRecord) -> std::io::Result<()> {
        self.captures.push(serde_json::to_value(capture)?);
        Ok(())
    }
    fn finish(&mut self, findings: &[Finding], _summary: &Summary) -> std::io::Result<()> {
        for f in findings {
            self.findings.push(serde_json::to_value(f)?);
        }
        Ok(())
    }
}

impl Collect {
    fn capture(&self) -> &Value {
        assert_eq!(self.captures.len(), 1);
        &self.captures[0]
    }
    fn only_flow(&self) -> &Value {
        assert_eq!(self.flows.len(), 1, "flows: {:#?}", self.flows);
        &self.flows[0]
    }
    fn findings_of(&self, kind: &str) -> Vec<&Value> {
        self.findings.iter().filter(|f| f["kind"] == kind).collect()
    }
}

fn analyse_with(cfg: &Config, p: Pcap, keep_flows: bool) -> Collect {
    let mut sink = Collect {
        keep_flows,
        ..Collect::default()
    };
    pipeline::run_bytes(cfg, "hostile.pcap", p.buf, &mut sink).unwrap();
    sink
}

fn analyse(p: Pcap) -> Collect {
    analyse_with(&Config::default(), p, true)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Runs the release binary on `pcap` with its heap (RLIMIT_DATA) capped at `limit_mib`, so a
/// buffer that grows with the input makes it fail. Returns the JSON report.
fn run_binary_capped(pcap: &Pcap, limit_mib: u64, extra: &[&str]) -> Value {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&pcap.buf).unwrap();
    file.flush().unwrap();
    let script = format!("ulimit -d {} && exec \"$0\" \"$@\"", limit_mib * 1024);
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_smtpaudit"))
        .args([
            "--format",
            "json",
            "--detail",
            "full",
            "--quiet",
            "--threads",
            "1",
        ])
        .args(extra)
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "smtpaudit failed under a {limit_mib} MiB heap limit: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn smtp_prologue(conn: &mut Conn, p: &mut Pcap) {
    conn.open(p);
    conn.server(p, b"220 mx.example.org ESMTP\r\n");
    conn.client(p, b"EHLO client.example.org\r\n");
    conn.server(
        p,
        b"250-mx.example.org\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
    );
}

// ---------------------------------------------------------------------------------------
// (a) Half-open connections

/// A million SYNs to port 25 from distinct sources and nothing else: the table never holds
/// more than `max_flows` live flows, evicts the longest idle (counted), and every flow is
/// still finished and counted once.
#[test]
fn syn_flood_is_held_to_the_flow_cap() {
    const SYNS: u32 = 1_000_000;
    let mut p = Pcap::new();
    for i in 0..SYNS {
        let ip = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
        let mut conn = Conn::new(ip, 1024 + (i % 60_000) as u16, 25);
        conn.syn(&mut p);
    }
    let cfg = Config {
        flow: FlowConfig {
            max_flows: 1000,
            ..FlowConfig::default()
        },
        ..Config::default()
    };
    let r = analyse_with(&cfg, p, false);
    let cap = r.capture();
    let ft = &cap["flow_table"];
    assert_eq!(u(&cap["packets"]), u64::from(SYNS));
    assert_eq!(u(&ft["flows"]), u64::from(SYNS));
    assert!(u(&ft["max_live_flows"]) <= 1000, "{ft}");
    assert!(u(&ft["evicted_flow_cap"]) >= u64::from(SYNS) - 1000, "{ft}");
    // Every connection to a mail port is reported, evicted or not.
    assert_eq!(u(&cap["tcp_flows"]), u64::from(SYNS));
    assert_eq!(r.flow_count, u64::from(SYNS));
}

// ---------------------------------------------------------------------------------------
// (b) Endless lines

/// 8 MiB from the client without a line ending, then more commands: the line is cut at
/// MAX_LINE (counted in `long_lines`), the dialog goes on after the next LF, and the heap
/// stays small.
#[test]
fn endless_line_is_cut_and_counted() {
    let mut p = Pcap::new();
    let mut conn = Conn::new([192, 0, 2, 10], 40_000, 25);
    smtp_prologue(&mut conn, &mut p);
    let junk = vec![b'A'; 8 << 20];
    conn.client(&mut p, &junk);
    conn.client(&mut p, b"\r\nMAIL FROM:<a@example.org>\r\n");
    conn.server(&mut p, b"500 5.5.2 line too long\r\n250 2.1.0 Ok\r\n");
    // The server may babble too.
    let mut babble = vec![b'9'; 4 << 20];
    babble.extend_from_slice(b"\r\n");
    conn.server(&mut p, &babble);
    conn.close(&mut p);

    let r = analyse(p);
    let f = r.only_flow();
    assert_eq!(f["class"], "plaintext");
    let stats = &f["smtp"]["stats"];
    assert_eq!(u(&stats["long_lines"]), 2, "{stats}");
    // The command after the long line was still understood.
    assert_eq!(u(&f["smtp"]["transactions"]), 1);
    assert!(u(&f["tcp"]["to_server"]["delivered_bytes"]) > 8 << 20);
}

/// The same attack through the binary with its heap capped well below the input size.
#[test]
fn endless_line_runs_in_bounded_memory() {
    let mut p = Pcap::new();
    let mut conn = Conn::new([192, 0, 2, 11], 40_001, 25);
    smtp_prologue(&mut conn, &mut p);
    let junk = vec![b'A'; 48 << 20];
    conn.client(&mut p, &junk);
    conn.close(&mut p);
    let report = run_binary_capped(&p, 40, &[]);
    let f = &report["flows"][0];
    assert_eq!(u(&f["smtp"]["stats"]["long_lines"]), 1);
}

// ---------------------------------------------------------------------------------------
// (c) A never-ending DATA body

/// 48 MiB of message body with no terminating dot: counted, not buffered (the binary runs
/// under a heap limit smaller than the body), and the message is still reported.
#[test]
fn endless_data_body_is_counted_not_buffered() {
    let mut p = Pcap::new();
    let mut conn = Conn::new([192, 0, 2, 12], 40_002, 25);
    smtp_prologue(&mut conn, &mut p);
    conn.client(&mut p, b"MAIL FROM:<a@example.org>\r\n");
    conn.server(&mut p, b"250 2.1.0 Ok\r\n");
    conn.client(&mut p, b"RCPT TO:<b@example.org>\r\n");
    conn.server(&mut p, b"250 2.1.5 Ok\r\n");
    conn.client(&mut p, b"DATA\r\n");
    conn.server(&mut p, b"354 End data with <CR><LF>.<CR><LF>\r\n");
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n";
    let body: Vec<u8> = line.iter().copied().cycle().take(48 << 20).collect();
    conn.client(&mut p, &body);
    conn.close(&mut p);

    // cleartext_mail is a posture finding, reported on request.
    let report = run_binary_capped(&p, 40, &["--posture-findings"]);
    let f = &report["flows"][0];
    assert_eq!(f["class"], "plaintext");
    let smtp = &f["smtp"];
    assert_eq!(u(&smtp["stats"]["data_bytes"]), body.len() as u64);
    assert_eq!(u(&smtp["messages"]), 1);
    let kinds: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["kind"])
        .collect();
    assert!(kinds.contains(&&Value::from("cleartext_mail")), "{kinds:?}");
}

// ---------------------------------------------------------------------------------------
// (d) AUTH floods

fn auth_plain(user: &str, password: &str) -> Vec<u8> {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    format!("AUTH PLAIN {token}\r\n").into_bytes()
}

/// Thousands of failed AUTH attempts in one flow and a hundred flows with two each: the
/// per-flow list is capped (the excess counted in `dropped_records`), and the run-wide
/// `auth_brute_force` finding appears exactly once per client address.
#[test]
fn auth_flood_is_capped_and_aggregated_once_per_client() {
    const IN_ONE_FLOW: usize = 3000;
    const FLOWS: u16 = 100;
    let mut p = Pcap::new();
    let mut conn = Conn::new([192, 0, 2, 50], 41_000, 587);
    smtp_prologue(&mut conn, &mut p);
    for i in 0..IN_ONE_FLOW {
        conn.client(&mut p, &auth_plain("admin", &format!("guess{i}")));
        conn.server(&mut p, b"535 5.7.8 Authentication credentials invalid\r\n");
    }
    conn.close(&mut p);
    for n in 0..FLOWS {
        let mut conn = Conn::new([192, 0, 2, 60], 42_000 + n, 587);
        smtp_prologue(&mut conn, &mut p);
        for i in 0..2 {
            conn.client(&mut p, &auth_plain("root", &format!("pw{n}-{i}")));
            conn.server(&mut p, b"535 5.7.8 Authentication credentials invalid\r\n");
        }
        conn.close(&mut p);
    }

    let r = analyse(p);
    assert_eq!(r.flows.len(), 1 + usize::from(FLOWS));
    let big = r
        .flows
        .iter()
        .find(|f| f["client"]["ip"] == "192.0.2.50")
        .unwrap();
    let auths = big["smtp"]["auth"].as_array().unwrap();
    assert!(
        auths.len() < IN_ONE_FLOW && !auths.is_empty(),
        "{}",
        auths.len()
    );
    let dropped = u(&big["smtp"]["stats"]["dropped_records"]);
    assert!(dropped >= (IN_ONE_FLOW - auths.len()) as u64, "{dropped}");

    let brute = r.findings_of("auth_brute_force");
    assert_eq!(brute.len(), 2, "one per client: {brute:#?}");
    let by_ip = |ip: &str| {
        brute
            .iter()
            .find(|f| f["evidence"]["client_ip"] == ip)
            .unwrap_or_else(|| panic!("no auth_brute_force for {ip}"))
    };
    let spread = by_ip("192.0.2.60");
    assert_eq!(
        u(&spread["evidence"]["failed_attempts"]),
        2 * u64::from(FLOWS)
    );
    assert_eq!(u(&spread["evidence"]["flows"]), u64::from(FLOWS));
    let single = by_ip("192.0.2.50");
    assert_eq!(u(&single["evidence"]["flows"]), 1);
    assert!(u(&single["evidence"]["failed_attempts"]) >= auths.len() as u64);
    // Every failure counts, beyond the cap on AUTH exchanges kept per flow.
    assert_eq!(
        u(&single["evidence"]["failed_attempts"]),
        IN_ONE_FLOW as u64
    );
}

// ---------------------------------------------------------------------------------------
// (e), (f) TLS framing attacks

fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![content_type, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![msg_type];
    h.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    h.extend_from_slice(body);
    h
}

fn extension(ty: u16, data: &[u8]) -> Vec<u8> {
    let mut e = ty.to_be_bytes().to_vec();
    e.extend_from_slice(&(data.len() as u16).to_be_bytes());
    e.extend_from_slice(data);
    e
}

/// A TLS 1.2 ClientHello with SNI `mail.example.org` (handshake message, no record).
fn client_hello() -> Vec<u8> {
    let name = b"mail.example.org";
    let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let mut exts = extension(0, &sni);
    exts.extend(extension(10, &[0, 2, 0, 0x1d]));
    exts.extend(extension(13, &[0, 2, 4, 3]));
    let mut b = vec![3, 3];
    b.extend_from_slice(&[7; 32]);
    b.push(0);
    b.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0xc0, 0x30]);
    b.extend_from_slice(&[1, 0]);
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend_from_slice(&exts);
    handshake(1, &b)
}

/// A TLS 1.2 ServerHello choosing ECDHE-RSA-AES128-GCM-SHA256.
fn server_hello() -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[9; 32]);
    b.push(0);
    b.extend_from_slice(&[0xc0, 0x2f, 0]);
    b.extend_from_slice(&[0, 0]);
    handshake(2, &b)
}

/// A handshake message claiming 16 MiB followed by 1 MiB of records, and on a second
/// connection a record header claiming 65535 bytes after a ClientHello (a first record
/// like that is not taken for TLS at all): nothing is allocated from the claims,
/// the oversized message is skipped (`handshake_overflow`), the impossible record stops
/// that direction (`stopped`), and the flows are still reported.
#[test]
fn tls_length_claims_are_not_trusted() {
    let mut p = Pcap::new();
    let mut conn = Conn::new([192, 0, 2, 70], 43_000, 465);
    conn.open(&mut p);
    let mut first = vec![1, 0xff, 0xff, 0xff];
    first.resize(16 * 1024, 0x41);
    let mut stream = record(22, &first);
    for _ in 0..63 {
        stream.extend(record(22, &[0x42; 16 * 1024]));
    }
    conn.client(&mut p, &stream);
    conn.close(&mut p);

    let mut conn = Conn::new([192, 0, 2, 71], 43_001, 465);
    conn.open(&mut p);
    let mut bogus = record(22, &client_hello());
    bogus.extend_from_slice(&[22, 3, 3, 0xff, 0xff]);
    bogus.extend_from_slice(&[0x43; 4096]);
    conn.client(&mut p, &bogus);
    conn.close(&mut p);

    let r = analyse(p);
    assert_eq!(r.flows.len(), 2);
    let claim = r
        .flows
        .iter()
        .find(|f| f["client"]["port"] == 43_000)
        .unwrap();
    let tls = &claim["tls"];
    assert_eq!(tls["client_hello_seen"], false);
    assert_eq!(u(&tls["to_server"]["records"]), 64);
    assert!(u(&tls["to_server"]["handshake_overflow"]) >= 1, "{tls}");
    assert_eq!(tls["to_server"]["stopped"], false);
    let bogus = r
        .flows
        .iter()
        .find(|f| f["client"]["port"] == 43_001)
        .unwrap();
    assert_eq!(bogus["tls"]["client_hello_seen"], true);
    let dir = &bogus["tls"]["to_server"];
    assert_eq!(dir["stopped"], true, "{}", bogus["tls"]);
    assert!(!bogus["tls"]["anomalies"].as_array().unwrap().is_empty());
}

/// ClientHello and ServerHello cut into one-byte records (the client's all in one segment,
/// the server's one record per segment): reassembled, fingerprinted and named as if whole.
#[test]
fn handshake_fragmented_one_byte_per_record() {
    let mut p = Pcap::new();
    let mut conn = Conn::new([192, 0, 2, 80], 44_000, 465);
    conn.open(&mut p);
    let ch: Vec<u8> = client_hello()
        .iter()
        .flat_map(|b| record(22, &[*b]))
        .collect();
    conn.client(&mut p, &ch);
    for b in server_hello() {
        conn.server(&mut p, &record(22, &[b]));
    }
    conn.close(&mut p);

    let r = analyse(p);
    let f = r.only_flow();
    assert_eq!(f["class"], "implicit_tls");
    let tls = &f["tls"];
    assert_eq!(tls["client_hello_seen"], true, "{tls}");
    assert_eq!(tls["server_hello_seen"], true, "{tls}");
    assert_eq!(tls["sni"], "mail.example.org");
    assert_eq!(tls["version"], "TLSv1.2");
    assert_eq!(tls["cipher"], "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    assert!(tls["ja3"].is_string() && tls["ja3s"].is_string() && tls["ja4"].is_string());
    assert_eq!(u(&tls["to_server"]["records"]), client_hello().len() as u64);
    assert_eq!(u(&tls["to_server"]["handshake_overflow"]), 0);
}

// ---------------------------------------------------------------------------------------
// (g) Overlapping segments with conflicting bytes

/// Two held out-of-order segments that disagree about the same range: the conflict is
/// counted for the direction and the table, and the first copy wins. A retransmission that
/// rewrites bytes already delivered cannot be compared (delivered bytes are not kept, see
/// the flow module's overlap policy) and counts as a retransmission; the first copy wins
/// there too.
#[test]
fn conflicting_overlaps_are_counted() {
    let mut p = Pcap::new();
    let mut conn = Conn::new([192, 0, 2, 90], 45_000, 25);
    conn.open(&mut p);
    conn.server(&mut p, b"220 mx.example.org ESMTP\r\n");
    let start = conn.seq[C];
    conn.client(&mut p, b"EHLO good.example\r\n");
    // Same sequence range, different bytes, after delivery.
    conn.raw(&mut p, C, start, Flags::Ack, b"EHLO evil.example\r\n");
    conn.server(&mut p, b"250 mx.example.org\r\n");
    // Out of order: the second segment arrives first, then a conflicting copy of it, then
    // the hole is filled.
    let first = b"MAIL FROM:<a@example.org>\r\n";
    let second = b"RCPT TO:<b@example.org>\r\n";
    let base = conn.seq[C];
    let second_seq = base.wrapping_add(first.len() as u32);
    conn.raw(&mut p, C, second_seq, Flags::Ack, second);
    conn.raw(
        &mut p,
        C,
        second_seq,
        Flags::Ack,
        b"RCPT TO:<x@example.org>\r\n",
    );
    conn.raw(&mut p, C, base, Flags::Ack, first);
    conn.seq[C] = second_seq.wrapping_add(second.len() as u32);
    conn.server(&mut p, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
    conn.close(&mut p);

    let r = analyse(p);
    let f = r.only_flow();
    let to_server = &f["tcp"]["to_server"];
    assert_eq!(u(&to_server["conflicting_overlaps"]), 1, "{to_server}");
    assert!(u(&to_server["retransmissions"]) >= 1, "{to_server}");
    assert_eq!(u(&f["tcp"]["to_client"]["conflicting_overlaps"]), 0);
    assert_eq!(u(&r.capture()["flow_table"]["conflicting_overlaps"]), 1);
    assert_eq!(f["smtp"]["helo"], "good.example");
    // The dialog stayed in step.
    assert_eq!(u(&f["smtp"]["transactions"]), 1);
    assert_eq!(u(&f["smtp"]["recipients"]), 1);
}

// ---------------------------------------------------------------------------------------
// Fuzzer regressions

fn regressions(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"));
    files.sort();
    files
}

/// Every input a fuzzer ever failed on, replayed through the target's own driver (a panic
/// names the file).
fn replay(target: &str, run: impl Fn(&[u8])) {
    for path in regressions(target) {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
        assert!(outcome.is_ok(), "regression input {} fails", path.display());
    }
}

#[test]
fn fuzz_regressions_smtp_session() {
    replay("smtp_session", fuzzlib::smtp_session);
}

#[test]
fn fuzz_regressions_tls_session() {
    replay("tls_session", fuzzlib::tls_session);
}

#[test]
fn fuzz_regressions_flow_analysis() {
    replay("flow_analysis", fuzzlib::flow_analysis);
}

#[test]
fn fuzz_regressions_pipeline() {
    replay("pipeline", fuzzlib::pipeline);
}

#[test]
fn fuzz_regressions_capture_reader() {
    replay("capture_reader", fuzzlib::capture_reader);
}

#[test]
fn fuzz_regressions_decode() {
    replay("decode", fuzzlib::decode);
}
