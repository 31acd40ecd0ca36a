//! What every fuzz target runs (one driver per target; the files in `fuzz_targets/` only
//! call them), kept here so that `tests/hostile.rs` replays the committed regression inputs through the
//! very same code (it includes this file with `#[path]`): the script format below, which
//! `make_seeds.py` also writes, and one driver per target.
//!
//! Panics are how a driver reports a broken invariant (that is what libFuzzer catches).
//!
//! An input is a script of operations on the two directions of one TCP connection, in the
//! order a flow table would deliver them. Each operation starts with a control byte:
//!
//! ```text
//! bit 0      direction: 0 client -> server, 1 server -> client
//! bits 1-2   kind:
//!              0  data, length = ctl >> 3 (0..=31), the bytes follow
//!              1  data, length = next two bytes (big-endian), the bytes follow
//!              2  gap, length = next two bytes (big-endian) << (ctl >> 3)
//!              3  end of the direction: bit 3 set = reset, clear = FIN
//! ```
//!
//! A length running past the end of the input takes what is left, so every byte string is
//! a valid script and truncation never hides a case.

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;

use smtpaudit::analysis::{Analyzer, FinishedFlow};
use smtpaudit::capture::{CaptureError, CaptureReader, LinkType};
use smtpaudit::cli::Config;
use smtpaudit::decode::{Decoded, Decoder};
use smtpaudit::findings::bruteforce::BruteForceTracker;
use smtpaudit::flow::{
    CloseReason, DirStats, Direction, Endpoint, EventMeta, FlowHandler, FlowInfo, Interest,
    RoleSource, StreamEvent,
};
use smtpaudit::pipeline;
use smtpaudit::proto::smtp::{Feed, SmtpSession};
use smtpaudit::proto::tls::keylog::{KeyLog, KeySource, KeyStore};
use smtpaudit::proto::tls::{EndKind, TlsContext, TlsSession};
use smtpaudit::report::model::{CaptureRecord, Summary};
use smtpaudit::report::{Format, SinkOptions, make_sink};
use smtpaudit::time::Timestamp;

/// One step of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Data(Direction, &'a [u8]),
    Gap(Direction, u64),
    /// `true` for a reset, `false` for a FIN.
    End(Direction, bool),
}

/// Decodes a script lazily; never fails.
pub struct Script<'a> {
    rest: &'a [u8],
}

impl<'a> Script<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Script { rest: data }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        head
    }

    fn u16(&mut self) -> u16 {
        let b = self.take(2);
        match *b {
            [hi, lo] => u16::from_be_bytes([hi, lo]),
            [hi] => u16::from(hi) << 8,
            _ => 0,
        }
    }
}

impl<'a> Iterator for Script<'a> {
    type Item = Op<'a>;

    fn next(&mut self) -> Option<Op<'a>> {
        let (&ctl, tail) = self.rest.split_first()?;
        self.rest = tail;
        let dir = if ctl & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        Some(match (ctl >> 1) & 3 {
            0 => Op::Data(dir, self.take(usize::from(ctl >> 3))),
            1 => {
                let len = self.u16();
                Op::Data(dir, self.take(usize::from(len)))
            }
            2 => {
                let len = u64::from(self.u16()) << (ctl >> 3);
                Op::Gap(dir, len)
            }
            _ => Op::End(dir, ctl & 8 != 0),
        })
    }
}

/// Capture-time metadata for the `n`th operation: one frame and one millisecond each, so
/// durations and frame citations stay meaningful.
pub fn meta(n: u64) -> EventMeta {
    EventMeta {
        ts: Timestamp::new(
            1_700_000_000 + (n / 1000) as i64,
            ((n % 1000) * 1_000_000) as u32,
        ),
        frame: n + 1,
    }
}

/// The `capture_reader` target: pcap, pcapng and gzip from arbitrary bytes must never panic
/// or loop, frame numbers count up from 1, a reader stays done after its end, and the
/// streaming reader gives the same frames, error, warnings and counters whether its source
/// hands it all the bytes it asks for or a few at a time (the sizes a pipe or a slow
/// decompressor hands out; the pattern is drawn from the input): what the reader makes of a
/// capture depends on its bytes, never on how the reads fall (except past damaged gzip
/// data, see below).
pub fn capture_reader(data: &[u8]) {
    let whole = CaptureReader::from_read("fuzz".into(), Box::new(io::Cursor::new(data.to_vec())));
    let seed = data
        .iter()
        .fold(data.len() as u64, |h, &b| h.rotate_left(5) ^ u64::from(b));
    let short =
        || CaptureReader::from_read("fuzz".into(), Box::new(ShortReads::new(data, seed, 64)));
    if let Err(diff) = same_reading(whole, short()) {
        // Where gzip's deflate data is damaged, how much of it the decompressor hands out
        // before it says so depends on the reads: only then may the readings differ.
        let whole =
            CaptureReader::from_read("fuzz".into(), Box::new(io::Cursor::new(data.to_vec())));
        if !(ends_in_gzip_error(whole) || ends_in_gzip_error(short())) {
            panic!("whole and short reads differ: {diff}");
        }
    }
}

/// The reading ends (at its open or later) with an error of the gzip layer.
fn ends_in_gzip_error(reader: Result<CaptureReader, CaptureError>) -> bool {
    let mut reader = match reader {
        Ok(r) => r,
        Err(e) => return matches!(e, CaptureError::Gzip { .. }),
    };
    // Every frame consumes input, so this ends; the bound is a safety net against a loop.
    for _ in 0..1_000_000 {
        match reader.next_frame() {
            Ok(Some(_)) => {}
            Ok(None) => return false,
            Err(e) => return matches!(e, CaptureError::Gzip { .. }),
        }
    }
    false
}

/// A source that hands out at most a few bytes per read (1 to `max`, varying with `seed`),
/// as a pipe or a decompressor may.
pub struct ShortReads {
    data: Vec<u8>,
    at: usize,
    state: u64,
    max: usize,
}

impl ShortReads {
    pub fn new(data: &[u8], seed: u64, max: usize) -> Self {
        ShortReads {
            data: data.to_vec(),
            at: 0,
            // xorshift needs a non-zero state.
            state: seed | 1,
            max: max.max(1),
        }
    }
}

impl io::Read for ShortReads {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let want = 1 + (self.state % self.max as u64) as usize;
        let rest = self.data.get(self.at..).unwrap_or_default();
        let n = want.min(buf.len()).min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads two readers of the same capture in step and says where they first differ: the
/// open error, any frame (number, timestamp, link type, bytes, original length), the final
/// error's text, the warnings, `bytes_read`, the format and the link types.
pub fn same_reading(
    a: Result<CaptureReader, CaptureError>,
    b: Result<CaptureReader, CaptureError>,
) -> Result<(), String> {
    let (mut a, mut b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(a), Err(b)) if a.to_string() == b.to_string() => return Ok(()),
        (a, b) => {
            return Err(format!(
                "open: {:?} / {:?}",
                a.err().map(|e| e.to_string()),
                b.err().map(|e| e.to_string())
            ));
        }
    };
    if a.format() != b.format() {
        return Err(format!("format {:?} / {:?}", a.format(), b.format()));
    }
    let mut last = 0;
    // Every frame consumes input, so this ends; the bound is a safety net against a loop.
    for _ in 0..1_000_000 {
        let (fa, fb) = (a.next_frame(), b.next_frame());
        let clean_end = match (fa, fb) {
            (Ok(Some(x)), Ok(Some(y))) => {
                assert_eq!(x.number, last + 1, "frame numbers skip");
                last = x.number;
                let same = x.number == y.number
                    && x.ts == y.ts
                    && x.link_type == y.link_type
                    && x.data == y.data
                    && x.orig_len == y.orig_len;
                if !same {
                    return Err(format!("frame {}: {x:?} / {y:?}", x.number));
                }
                continue;
            }
            (Ok(None), Ok(None)) => true,
            (Err(x), Err(y)) if x.to_string() == y.to_string() => false,
            (x, y) => {
                return Err(format!(
                    "after frame {last}: {:?} / {:?}",
                    x.map(|f| f.map(|f| f.number)).map_err(|e| e.to_string()),
                    y.map(|f| f.map(|f| f.number)).map_err(|e| e.to_string())
                ));
            }
        };
        if !matches!((a.next_frame(), b.next_frame()), (Ok(None), Ok(None))) {
            return Err("a reader goes on after its end".into());
        }
        let (wa, wb) = (a.take_warnings(), b.take_warnings());
        if wa != wb {
            return Err(format!("warnings {wa:?} / {wb:?}"));
        }
        let figures = |r: &CaptureReader| (r.frames_read(), r.bytes_read(), r.link_types());
        if figures(&a) != figures(&b) {
            return Err(format!(
                "frames, bytes, link types {:?} / {:?}",
                figures(&a),
                figures(&b)
            ));
        }
        // Where the input ends cleanly, both have taken in all of it, and an uncompressed
        // stream was consumed to its last byte. After an error a reader may have read further
        // ahead (its buffer), which is not a difference.
        if clean_end && a.input_position() != b.input_position() {
            return Err(format!(
                "input position {} / {}",
                a.input_position(),
                b.input_position()
            ));
        }
        if clean_end && !a.is_compressed() && a.bytes_read() != a.input_position() {
            return Err(format!(
                "clean end after {} of {} bytes",
                a.bytes_read(),
                a.input_position()
            ));
        }
        return Ok(());
    }
    Err("no end after 1,000,000 frames".into())
}

/// The `decode` target: the first byte picks the link type (and how much the snap length
/// cut), the rest is one frame.
pub fn decode(data: &[u8]) {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let link = match sel % 10 {
        0 => LinkType::NULL,
        1 => LinkType::ETHERNET,
        2 => LinkType::RAW,
        3 => LinkType::LOOP,
        4 => LinkType::LINUX_SLL,
        5 => LinkType::LINUX_SLL2,
        6 => LinkType::IPV4,
        7 => LinkType::IPV6,
        8 => LinkType::RAW_BSD,
        _ => LinkType(u32::from(sel)),
    };
    let mut d = Decoder::new();
    let orig = (frame.len() as u32).saturating_add(u32::from(sel >> 4) * 100);
    match d.decode_packet(link, frame, orig) {
        Some(Decoded::Tcp(seg)) => assert!(seg.payload.len() <= frame.len()),
        // Only destination unreachable (IPv4 type 3, ICMPv6 type 1) is decoded.
        Some(Decoded::IcmpError(e)) => assert!(matches!(e.icmp_type, 1 | 3)),
        None => {}
    }
    let _ = d.take_warnings();
}

/// The `pipeline` target: capture bytes through reader, decoder, flow table and analysis
/// into every report format.
pub fn pipeline(data: &[u8]) {
    let cfg = Config::default();
    for format in [
        Format::Json,
        Format::Ndjson,
        Format::Ecs,
        Format::Text,
        Format::Html,
    ] {
        let mut sink = make_sink(format, Box::new(io::sink()), SinkOptions::default());
        if let Err(e) = pipeline::run_bytes(&cfg, "fuzz", data.to_vec(), sink.as_mut()) {
            panic!("writing to io::sink failed: {e}");
        }
    }
}

/// The `smtp_session` target: the dialog fed as given and one byte per call must report
/// the same.
pub fn smtp_session(data: &[u8]) {
    let whole = smtp_run(data, false);
    let split = smtp_run(data, true);
    assert_eq!(whole, split, "result depends on chunking");
}

struct Dialog {
    smtp: SmtpSession,
    tls: Option<TlsSession>,
    upgraded: [bool; 2],
}

impl Dialog {
    fn data(&mut self, dir: Direction, bytes: &[u8], n: u64) {
        let m = meta(n);
        if self.upgraded[dir.index()] {
            if let Some(tls) = self.tls.as_mut() {
                tls.feed(dir, bytes, m);
            }
            return;
        }
        if let Feed::Upgrade { offset } = self.smtp.feed(dir, bytes, m) {
            assert!(offset <= bytes.len(), "upgrade offset past the chunk");
            self.upgraded[dir.index()] = true;
            let banner_host = self.smtp.banner_host().map(str::to_string);
            let starttls_refused = self.smtp.tls_after_refusal();
            let tls = self.tls.get_or_insert_with(|| {
                TlsSession::new(TlsContext {
                    starttls: true,
                    banner_host,
                    starttls_refused,
                    keys: None,
                })
            });
            if let Some(rest) = bytes.get(offset..).filter(|r| !r.is_empty()) {
                tls.feed(dir, rest, m);
            }
        }
    }
}

/// Runs the script and renders everything the session reports, secrets revealed and not.
fn smtp_run(data: &[u8], byte_at_a_time: bool) -> String {
    let mut d = Dialog {
        smtp: SmtpSession::new(),
        tls: None,
        upgraded: [false; 2],
    };
    for (n, op) in Script::new(data).enumerate() {
        let n = n as u64;
        match op {
            Op::Data(dir, bytes) if byte_at_a_time => {
                for b in bytes.chunks(1) {
                    d.data(dir, b, n);
                }
            }
            Op::Data(dir, bytes) => d.data(dir, bytes, n),
            Op::Gap(dir, len) => {
                if d.upgraded[dir.index()] {
                    if let Some(tls) = d.tls.as_mut() {
                        tls.gap(dir, len, meta(n));
                    }
                } else {
                    d.smtp.gap(dir, len, meta(n));
                }
            }
            Op::End(dir, reset) => {
                d.smtp.end(dir, meta(n));
                if let Some(tls) = d.tls.as_mut() {
                    let kind = if reset { EndKind::Reset } else { EndKind::Fin };
                    tls.end(dir, kind, meta(n));
                }
            }
        }
    }
    let mut out = String::new();
    for reveal in [false, true] {
        out += &to_json(&d.smtp.record(reveal));
        out += &to_json(&d.smtp.findings(reveal));
    }
    if let Some(tls) = d.tls.as_ref() {
        out += &to_json(&tls.record());
        out += &to_json(&tls.findings());
    }
    out
}

/// The `tls_session` target: first byte = context (bit 0 STARTTLS, bit 1 banner host,
/// bit 2 follow to close, bit 4 keys for the client random of 32 bytes 0x11, as the seeds'
/// ClientHellos carry), then a script; chunking must not matter, with or without
/// decryption (plaintext taken after every call).
pub fn tls_session(data: &[u8]) {
    let Some((&mode, script)) = data.split_first() else {
        return;
    };
    let whole = tls_run(mode, script, false);
    let split = tls_run(mode, script, true);
    assert_eq!(whole, split, "result depends on chunking");
}

fn tls_run(mode: u8, script: &[u8], byte_at_a_time: bool) -> String {
    let ctx = TlsContext {
        starttls: mode & 1 != 0,
        banner_host: (mode & 2 != 0).then(|| "mx.example.org".to_string()),
        starttls_refused: (mode & 8 != 0).then_some(454),
        keys: (mode & 16 != 0).then(fuzz_keys),
    };
    let mut s = TlsSession::new(ctx).follow_to_close(mode & 4 != 0);
    let mut plain: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for (n, op) in Script::new(script).enumerate() {
        let m = meta(n as u64);
        match op {
            // Interest::Done only allows the caller to stop; feeding on must stay harmless.
            Op::Data(dir, bytes) if byte_at_a_time => {
                for b in bytes.chunks(1) {
                    s.feed(dir, b, m);
                    plain[dir.index()].extend(s.take_plaintext(dir));
                }
            }
            Op::Data(dir, bytes) => {
                s.feed(dir, bytes, m);
                plain[dir.index()].extend(s.take_plaintext(dir));
            }
            Op::Gap(dir, len) => s.gap(dir, len, m),
            Op::End(dir, reset) => {
                let kind = if reset { EndKind::Reset } else { EndKind::Fin };
                s.end(dir, kind, m);
            }
        }
    }
    let _ = (s.client_hello_seen(), s.server_hello_seen(), s.version());
    let mut out = format!("{plain:?}");
    out += &to_json(&s.record());
    out += &to_json(&s.findings());
    out += &format!("{:?}", s.outcome());
    out
}

/// Secrets for the client random the seeds use, in every label: TLS 1.2 and 1.3 sessions
/// over them reach the decryption path (records then fail to authenticate, or, for inputs
/// the fuzzer builds to match, decrypt).
fn fuzz_keys() -> std::sync::Arc<KeyStore> {
    let cr = "11".repeat(32);
    let mut text = format!("CLIENT_RANDOM {cr} {}\n", "22".repeat(48));
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        text += &format!("{label} {cr} {}\n", "33".repeat(32));
    }
    let log = KeyLog::read(text.as_bytes(), KeySource::Keylog).unwrap_or_default();
    std::sync::Arc::new(KeyStore::new(log))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_string(v) {
        Ok(s) => s,
        Err(e) => panic!("report model does not serialise: {e}"),
    }
}

const PORTS: [u16; 8] = [25, 465, 587, 2525, 443, 10025, 80, 40000];
const ROLES: [RoleSource; 4] = [
    RoleSource::Syn,
    RoleSource::SynAck,
    RoleSource::Port,
    RoleSource::FirstPacket,
];
const CLOSE: [CloseReason; 8] = [
    CloseReason::Fin,
    CloseReason::Reset,
    CloseReason::IdleTimeout,
    CloseReason::Evicted,
    CloseReason::EndOfInput,
    CloseReason::PortReuse,
    CloseReason::Fin,
    CloseReason::EndOfInput,
];

/// The `flow_analysis` target: two header bytes, then a script (see the target's docs).
pub fn flow_analysis(data: &[u8]) {
    let [h0, h1, ref script @ ..] = *data else {
        return;
    };
    let cfg = Config {
        reveal_secrets: h0 & 0x20 != 0,
        posture_findings: h0 & 0x80 != 0,
        ..Config::default()
    };
    let (cip, sip): (IpAddr, IpAddr) = if h0 & 0x40 != 0 {
        (
            Ipv6Addr::LOCALHOST.into(),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 25).into(),
        )
    } else {
        (
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(198, 51, 100, 25).into(),
        )
    };
    let server = Endpoint {
        ip: sip,
        port: PORTS[usize::from(h0 & 7)],
    };
    let roles = ROLES[usize::from((h0 >> 3) & 3)];
    let reason = CLOSE[usize::from(h1 & 7)];
    let copies = 1 + usize::from((h1 >> 3) & 3).min(2);

    let mut analyzer = Analyzer::new(cfg, "fuzz".into());
    let mut finished = Vec::new();
    for copy in 0..copies {
        let client = Endpoint {
            ip: cip,
            port: 40_000 + copy as u16,
        };
        run_flow(&mut analyzer, client, server, roles, reason, script);
        // Attempts to unreported ports are only for the run's correlator.
        finished.extend(analyzer.take_finished().into_iter().filter(|f| f.reported));
    }
    assert!(finished.len() <= copies);
    write_all_sinks(&finished);
}

fn run_flow(
    analyzer: &mut Analyzer,
    client: Endpoint,
    server: Endpoint,
    roles: RoleSource,
    reason: CloseReason,
    script: &[u8],
) {
    let mut info = FlowInfo {
        client,
        server,
        roles,
        start: meta(0).ts,
        last: meta(0).ts,
        first_frame: 1,
        last_frame: 1,
        dirs: [DirStats::default(); 2],
    };
    let mut state = analyzer.open(&info, meta(0));
    let mut done = [false; 2];
    for (n, op) in Script::new(script).enumerate() {
        let m = meta(n as u64);
        info.last = m.ts;
        info.last_frame = m.frame;
        let (dir, ev) = match op {
            Op::Data(dir, bytes) => {
                let s = &mut info.dirs[dir.index()];
                s.packets += 1;
                s.payload_bytes += bytes.len() as u64;
                s.delivered_bytes += bytes.len() as u64;
                (dir, StreamEvent::Data(bytes))
            }
            Op::Gap(dir, len) => {
                let s = &mut info.dirs[dir.index()];
                s.gaps += 1;
                s.gap_bytes = s.gap_bytes.saturating_add(len);
                (dir, StreamEvent::Gap(len))
            }
            Op::End(dir, true) => {
                info.dirs[dir.index()].rst = true;
                (dir, StreamEvent::Reset)
            }
            Op::End(dir, false) => {
                info.dirs[dir.index()].fin = true;
                (dir, StreamEvent::Fin)
            }
        };
        // The table stops delivering data and gaps once a direction said Done.
        let data_like = matches!(ev, StreamEvent::Data(_) | StreamEvent::Gap(_));
        if data_like && done[dir.index()] {
            continue;
        }
        if analyzer.event(&mut state, &info, dir, ev, m) == Interest::Done {
            done[dir.index()] = true;
        }
    }
    analyzer.close(state, &info, reason);
}

/// A writer the test can read back after the sink is dropped.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_all_sinks(flows: &[FinishedFlow]) {
    let mut bruteforce = BruteForceTracker::default();
    let mut summary = Summary::default();
    for f in flows {
        bruteforce.observe(&f.record);
        summary.add_flow(&f.record);
        for finding in &f.findings {
            summary.add_finding(finding);
        }
    }
    let run_findings = bruteforce.findings();
    let capture = CaptureRecord {
        error: None,
        path: "fuzz".into(),
        format: None,
        packets: 0,
        bytes: 0,
        link_types: Vec::new(),
        warnings: Vec::new(),
        first_packet: None,
        last_packet: None,
        tcp_flows: flows.len() as u64,
        reported_flows: flows.len() as u64,
        decode: Default::default(),
        flow_table: Default::default(),
        chained_to: None,
    };
    for format in [
        Format::Json,
        Format::Ndjson,
        Format::Ecs,
        Format::Text,
        Format::Html,
    ] {
        let out = Shared::default();
        let opts = SinkOptions {
            color: format == Format::Text,
            flush_each_flow: false,
            ..SinkOptions::default()
        };
        let mut sink = make_sink(format, Box::new(out.clone()), opts);
        for f in flows {
            ok(sink.flow(&f.record, &f.findings));
        }
        ok(sink.capture(&capture));
        ok(sink.finish(&run_findings, &summary));
        drop(sink);
        let bytes = out.0.borrow();
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => panic!("{format:?} output is not UTF-8: {e}"),
        };
        match format {
            Format::Json => {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
                    panic!("JSON output does not parse: {e}");
                }
            }
            Format::Ndjson | Format::Ecs => {
                for line in text.lines() {
                    if let Err(e) = serde_json::from_str::<serde_json::Value>(line) {
                        panic!("{format:?} line does not parse: {e}: {line}");
                    }
                }
            }
            Format::Text => {}
            // Whatever the strings, the page keeps its own two scripts and gains no element
            // from them.
            Format::Html => {
                let scripts = text.matches("<script").count();
                if scripts != 2 {
                    panic!("HTML page has {scripts} script elements");
                }
            }
        }
    }
}

fn ok(r: io::Result<()>) {
    if let Err(e) = r {
        panic!("sink failed writing to memory: {e}");
    }
}

/// Encodes operations in the script format (for tests of the format itself and for
/// generating inputs from Rust).
pub fn encode(ops: &[Op<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        match *op {
            Op::Data(dir, bytes) => {
                // An empty op is kept (chunks() of nothing yields nothing).
                if bytes.is_empty() {
                    out.extend_from_slice(&[2 | dir_bit(dir), 0, 0]);
                }
                for chunk in bytes.chunks(usize::from(u16::MAX)) {
                    out.push(2 | dir_bit(dir));
                    out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
                    out.extend_from_slice(chunk);
                }
            }
            Op::Gap(dir, len) => {
                let shift = (64 - len.leading_zeros()).saturating_sub(16).min(31);
                out.push(4 | dir_bit(dir) | ((shift as u8) << 3));
                out.extend_from_slice(&((len >> shift) as u16).to_be_bytes());
            }
            Op::End(dir, reset) => out.push(6 | dir_bit(dir) | if reset { 8 } else { 0 }),
        }
    }
    out
}

fn dir_bit(dir: Direction) -> u8 {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ops = [
            Op::Data(Direction::ToClient, b"220 mx ESMTP\r\n"),
            Op::Data(Direction::ToServer, b""),
            Op::Gap(Direction::ToServer, 70_000),
            Op::Gap(Direction::ToClient, 3),
            Op::End(Direction::ToServer, true),
            Op::End(Direction::ToClient, false),
        ];
        let enc = encode(&ops);
        let dec: Vec<_> = Script::new(&enc).collect();
        // 70 000 does not fit 16 bits: it travels as 35 000 << 1.
        assert_eq!(dec, ops);
    }

    #[test]
    fn short_forms_and_truncation() {
        // 0x18: short data of 3 to the server; 0x0b: long data to the client whose length
        // (0x01 then nothing: 256) runs past the end.
        let dec: Vec<_> = Script::new(&[0x18, b'a', b'b', b'c', 0x0b, 0x01]).collect();
        assert_eq!(
            dec,
            [
                Op::Data(Direction::ToServer, b"abc"),
                Op::Data(Direction::ToClient, b"")
            ]
        );
    }
}
