//! Builds large benchmark captures deterministically from the real sessions in `fixtures/`.
//!
//!     cargo run --release --example gencorpus -- --size 1G --out bench-data/mixed-1G.pcap
//!
//! Every flow of a fixture named in `fixtures/labels.json` is a template. The generator
//! replays templates with rewritten addresses and ports (IPv4 and IPv6), shifted timestamps and
//! interleaved arrivals, inflates message bodies and TLS sessions (application data after a
//! completed handshake), duplicates a few segments (retransmissions) and swaps a few
//! (reordering). Beside the capture it writes `<out>.truth.csv` (one line per flow) and
//! `<out>.labels.json` (the shape `../shared/tools/score.py` reads), so the analysis can be
//! checked at speed. The same arguments always give the same bytes. `benches/README.md`
//! describes the mix and the options for the stress shapes (`--help` lists them).
//!
//! `tests/threads.rs` includes this file as a module and calls [`generate`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use smtpaudit::capture::CaptureReader;
use smtpaudit::decode::Decoder;

/// Client ip and port, server ip and port.
type FlowKey = (IpAddr, u16, IpAddr, u16);

#[derive(Clone)]
struct Seg {
    /// Microseconds since the template flow's first packet.
    t_us: u64,
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: Vec<u8>,
}

/// Ethernet, IP and TCP headers plus the pcap record header of one packet.
fn overhead(v6: bool) -> u64 {
    16 + 14 + if v6 { 40 } else { 20 } + 20
}

/// Payload per inserted filler segment (a typical Ethernet MSS).
const MSS: usize = 1448;

#[derive(Clone)]
struct Template {
    name: String,
    label: Value,
    server_port: u16,
    segs: Vec<Seg>,
    /// Index of the client segment that carries the end-of-data dot (for body inflation).
    body_end: Option<usize>,
    /// Handshake completed and the flow closes: application data goes before the close.
    tls_complete: bool,
}

/// `50M`, `1G`, `64K` or a plain number of bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('G' | 'g') => (&s[..s.len() - 1], 1u64 << 30),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('K' | 'k') => (&s[..s.len() - 1], 1 << 10),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// splitmix64: small, fast, deterministic.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

fn endpoint(s: &str) -> Option<(String, u16)> {
    let (ip, port) = s.rsplit_once(':')?;
    Some((
        ip.trim_matches(|c| c == '[' || c == ']').to_string(),
        port.parse().ok()?,
    ))
}

impl Template {
    /// Capture bytes of one replay, without inflation.
    fn wire_bytes(&self, v6: bool) -> u64 {
        self.segs
            .iter()
            .map(|s| overhead(v6) + s.payload.len() as u64)
            .sum()
    }
}

/// Capture bytes of `extra` payload bytes cut into segments of `mss`.
fn filler_bytes(extra: u32, mss: usize, v6: bool) -> u64 {
    let extra = u64::from(extra);
    extra + extra.div_ceil(mss as u64) * overhead(v6)
}

fn load_templates(fixtures: &Path) -> Vec<Template> {
    let labels: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("labels.json")).expect("fixtures/labels.json"),
    )
    .expect("labels JSON");
    let mut out = Vec::new();
    for cap in labels["captures"].as_array().expect("captures") {
        // A capture written as several files (the rotated fixture) holds megabyte sessions
        // cut across files: not a template for the benchmark's mix.
        if cap["args"].is_array() || cap["files"].is_array() {
            continue;
        }
        let file = cap["file"].as_str().unwrap_or("");
        let path = fixtures.join(file);
        let mut reader = match CaptureReader::open(path.to_str().unwrap_or("")) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("gencorpus: skipping {file}: {e}");
                continue;
            }
        };
        let mut decoder = Decoder::new();
        // (client ip, client port, server ip, server port) -> segments
        let mut flows: BTreeMap<FlowKey, Vec<(u64, bool, Seg)>> = BTreeMap::new();
        let labs: Vec<&Value> = cap["flows"].as_array().into_iter().flatten().collect();
        let mut t0 = None;
        while let Ok(Some(frame)) = reader.next_frame() {
            let Some(seg) = decoder.decode(frame.link_type, frame.data, frame.orig_len) else {
                continue;
            };
            let t = frame.ts.as_nanos() / 1000;
            let t0v = *t0.get_or_insert(t);
            for lab in &labs {
                let (Some((cip, cport)), Some((sip, sport))) = (
                    endpoint(lab["client"].as_str().unwrap_or("")),
                    endpoint(lab["server"].as_str().unwrap_or("")),
                ) else {
                    continue;
                };
                let (Ok(cip), Ok(sip)) = (cip.parse::<IpAddr>(), sip.parse::<IpAddr>()) else {
                    continue;
                };
                let from_client = seg.src == cip
                    && seg.src_port == cport
                    && seg.dst == sip
                    && seg.dst_port == sport;
                let to_client = seg.dst == cip
                    && seg.dst_port == cport
                    && seg.src == sip
                    && seg.src_port == sport;
                if from_client || to_client {
                    flows.entry((cip, cport, sip, sport)).or_default().push((
                        (t - t0v) as u64,
                        from_client,
                        Seg {
                            t_us: 0,
                            from_client,
                            seq: seg.seq,
                            ack: seg.ack,
                            flags: seg.flags.0,
                            payload: seg.payload.to_vec(),
                        },
                    ));
                }
            }
        }
        for lab in labs {
            if lab["class"] == "absent" || relates_connections(lab) {
                continue;
            }
            let (Some((cip, cport)), Some((sip, sport))) = (
                endpoint(lab["client"].as_str().unwrap_or("")),
                endpoint(lab["server"].as_str().unwrap_or("")),
            ) else {
                continue;
            };
            let key = (cip.parse().unwrap(), cport, sip.parse().unwrap(), sport);
            let Some(raw) = flows.get(&key) else { continue };
            let base = raw.first().map(|r| r.0).unwrap_or(0);
            let segs: Vec<Seg> = raw
                .iter()
                .map(|(t, _, s)| Seg {
                    t_us: t - base,
                    ..s.clone()
                })
                .collect();
            // A connection never established stands alone only when its SYNs were retried or
            // reset: an ICMP error is not replayed, and a scan's probes are quiet only as a
            // scan (one source, many servers), which a template replayed alone is not.
            let established = segs
                .iter()
                .any(|s| !s.from_client && s.flags & 0x12 == 0x12);
            let reset = segs.iter().any(|s| !s.from_client && s.flags & 0x04 != 0);
            let syns = segs
                .iter()
                .filter(|s| s.from_client && s.flags & 0x02 != 0)
                .count();
            let expects_failure = lab["expected_findings"]
                .as_array()
                .is_some_and(|a| a.iter().any(|k| k == "connection_failed"));
            if !established && (!expects_failure || (syns < 2 && !reset)) {
                continue;
            }
            let plaintext = lab["class"] == "plaintext";
            let body_end = if plaintext {
                segs.iter().position(|s| {
                    s.from_client
                        && (s.payload.windows(5).any(|w| w == b"\r\n.\r\n")
                            || s.payload.starts_with(b".\r\n"))
                })
            } else {
                None
            };
            // The application data goes before the first FIN or RST, from its sender.
            let tls_complete =
                lab["tls"]["handshake"] == "complete" && segs.iter().any(|s| s.flags & 0x05 != 0);
            if std::env::var_os("GENCORPUS_DEBUG").is_some() {
                eprintln!(
                    "template {file}: body_end {body_end:?}, tls {}, server close {}",
                    lab["tls"]["handshake"],
                    segs.iter().any(|s| !s.from_client && s.flags & 0x05 != 0)
                );
            }
            out.push(Template {
                name: format!("{file} {}", lab["client"].as_str().unwrap_or("")),
                label: (*lab).clone(),
                server_port: sport,
                segs,
                body_end,
                tls_complete,
            });
        }
    }
    out
}

/// Whether the label's findings need other connections of its capture (an earlier session
/// of the same server, another client): replayed alone, as a template is, they cannot hold.
fn relates_connections(lab: &Value) -> bool {
    let kinds = |k: &str| -> Vec<String> {
        lab[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    let all: Vec<String> = kinds("expected_findings")
        .into_iter()
        .chain(kinds("optional_findings"))
        .collect();
    let cross = [
        "starttls_downgrade",
        "plaintext_fallback",
        "auth_distributed_brute_force",
    ];
    // A plaintext client against a silent server that is not on 465 is a mismatch only
    // because the same server spoke TLS earlier in the capture.
    let port_465 = lab["server"].as_str().is_some_and(|s| s.ends_with(":465"));
    let silent_by_history = all.iter().any(|k| k == "tls_mode_mismatch")
        && matches!(lab["tls"]["handshake"].as_str(), None | Some("none"))
        && !port_465;
    all.iter().any(|k| cross.contains(&k.as_str())) || silent_by_history
}

/// Which traffic the corpus imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Few, large flows: every template alike, bodies and TLS sessions of about 200 KB on
    /// average, a new flow whenever one of `concurrent` slots frees.
    Large,
    /// A mail relay's day: many short sessions (40% implicit TLS, 40% STARTTLS, 20%
    /// plaintext, 7% failed handshakes), messages mostly 0.5-10 KB, Poisson arrivals, the
    /// receiver acknowledging every filler segment.
    MailDay,
}

/// How the corpus is shaped. The defaults give the large-flow benchmark corpus;
/// [`Options::mailday`] the small-flow one.
#[derive(Clone, Debug)]
pub struct Options {
    pub mix: Mix,
    /// Stop starting flows once the capture is expected to reach this many bytes.
    pub size: u64,
    pub out: PathBuf,
    pub seed: u64,
    pub fixtures: PathBuf,
    /// Flows replayed at once (interleaved).
    pub concurrent: usize,
    /// Mean microseconds between two flow starts (uniform 0.1-1.9x the mean with the large
    /// mix, exponential with the mail-day mix).
    pub arrival_us: u64,
    /// Every DATA body gets this many bytes (`None`: the mixed distribution; 0: none).
    pub body: Option<u32>,
    /// Every completed TLS session gets this much application data (`None`: mixed; 0: none).
    pub tls: Option<u32>,
    /// Largest payload per packet: template segments are cut to it (tiny-packet stress).
    pub mss: usize,
    /// Write `<out>.truth.csv` and `<out>.labels.json`.
    pub truth: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mix: Mix::Large,
            size: 50 << 20,
            out: PathBuf::from("bench-data/mixed.pcap"),
            seed: 1,
            fixtures: PathBuf::from("fixtures"),
            concurrent: 64,
            arrival_us: 2_000,
            body: None,
            tls: None,
            mss: MSS,
            truth: true,
        }
    }
}

impl Options {
    /// The mail-day mix: a busy relay's sessions, one every 20 ms on average (Poisson), as
    /// many live at once as their arrivals and durations make (up to 4,096).
    pub fn mailday() -> Options {
        Options {
            mix: Mix::MailDay,
            out: PathBuf::from("bench-data/mailday.pcap"),
            concurrent: 4_096,
            arrival_us: 20_000,
            ..Options::default()
        }
    }
}

/// What was written.
#[derive(Clone, Copy, Debug)]
pub struct Generated {
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// Message body sizes: mostly small mail, some attachments, a few very large ones
/// (mean about 200 KB).
fn mixed_body(rng: &mut Rng) -> u32 {
    match rng.below(100) {
        0..=59 => 1_000 + rng.below(19_000) as u32,
        60..=89 => 20_000 + rng.below(180_000) as u32,
        90..=98 => 200_000 + rng.below(1_800_000) as u32,
        _ => 2_000_000 + rng.below(8_000_000) as u32,
    }
}

/// Application data of a completed TLS session: a submission with its message, now and then
/// a long-lived relay session.
fn mixed_tls(rng: &mut Rng) -> u32 {
    match rng.below(100) {
        0..=59 => 1_000 + rng.below(19_000) as u32,
        60..=89 => 20_000 + rng.below(180_000) as u32,
        90..=98 => 200_000 + rng.below(1_800_000) as u32,
        _ => 2_000_000 + rng.below(18_000_000) as u32,
    }
}

/// Message sizes of a mail relay: mostly short mail, some attachments, a few large ones up
/// to 4 MB (mean about 36 KB).
fn mailday_body(rng: &mut Rng) -> u32 {
    match rng.below(1000) {
        0..=849 => 500 + rng.below(9_500) as u32,
        850..=991 => 10_000 + rng.below(190_000) as u32,
        _ => 200_000 + rng.below(3_800_000) as u32,
    }
}

/// Exponentially distributed microseconds with the given mean (Poisson arrivals).
fn exponential_us(rng: &mut Rng, mean: u64) -> u64 {
    // 53 random bits in (0, 1]: never ln(0).
    let u = ((rng.next() >> 11) + 1) as f64 / (1u64 << 53) as f64;
    (-u.ln() * mean as f64).round() as u64
}

/// Template indices of the mail-day mix, by kind.
struct Buckets {
    implicit: Vec<usize>,
    starttls: Vec<usize>,
    plaintext: Vec<usize>,
    failed: Vec<usize>,
}

impl Buckets {
    fn new(templates: &[Template]) -> Buckets {
        let mut b = Buckets {
            implicit: Vec::new(),
            starttls: Vec::new(),
            plaintext: Vec::new(),
            failed: Vec::new(),
        };
        for (i, t) in templates.iter().enumerate() {
            let l = &t.label;
            let expects = |k: &str| {
                l["expected_findings"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == k))
            };
            let hs = l["tls"]["handshake"].as_str().unwrap_or("none");
            match (l["class"].as_str().unwrap_or(""), hs) {
                (_, "failed") => b.failed.push(i),
                ("implicit_tls", "complete") if t.tls_complete => b.implicit.push(i),
                ("starttls", "complete") if t.tls_complete => b.starttls.push(i),
                // Smuggling probes are a test bench's traffic, not a relay's day.
                ("plaintext", "none") if !expects("smtp_smuggling") => b.plaintext.push(i),
                _ => {}
            }
        }
        b
    }

    /// 7% failed handshakes, the rest 40:40:20 implicit TLS, STARTTLS, plaintext.
    fn pick(&self, rng: &mut Rng) -> usize {
        let r = rng.below(1000);
        let bucket = match r {
            0..=69 => &self.failed,
            70..=441 => &self.implicit,
            442..=813 => &self.starttls,
            _ => &self.plaintext,
        };
        bucket[rng.below(bucket.len() as u64) as usize]
    }
}

/// One generated flow being replayed.
struct Cursor {
    tpl: usize,
    start_us: u64,
    client: IpAddr,
    server: IpAddr,
    client_port: u16,
    /// Bytes inserted into the client->server stream at `body_end` (message body filler).
    body_extra: u32,
    /// Bytes of TLS application data inserted before the first FIN or RST (by its sender).
    tls_extra: u32,
    next: usize,
    /// Segments to emit before template segment `next` (filler, retransmissions, swaps,
    /// pieces), last first; `true` when the sequence numbers are already final.
    pending: Vec<(Seg, bool)>,
    client_shift: u32,
    server_shift: u32,
    /// Microseconds the inserted filler took: later template segments move by as much.
    time_shift: u64,
    tls_inserted: bool,
}

struct Writer {
    out: BufWriter<File>,
    bytes: u64,
    packets: u64,
    buf: Vec<u8>,
}

impl Writer {
    fn new(path: &Path) -> Writer {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create output"));
        // Classic pcap, microseconds, Ethernet.
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
        out.write_all(&2u16.to_le_bytes()).unwrap();
        out.write_all(&4u16.to_le_bytes()).unwrap();
        out.write_all(&[0; 8]).unwrap();
        out.write_all(&262_144u32.to_le_bytes()).unwrap();
        out.write_all(&1u32.to_le_bytes()).unwrap();
        Writer {
            out,
            bytes: 24,
            packets: 0,
            buf: Vec::with_capacity(70_000),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn packet(
        &mut self,
        t_us: u64,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) {
        let eth = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let ip = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
            (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
            _ => return,
        };
        let mut tcp = ip.tcp(sport, dport, seq, 65535);
        if flags & 0x10 != 0 {
            tcp = tcp.ack(ack);
        }
        if flags & 0x02 != 0 {
            tcp = tcp.syn();
        }
        if flags & 0x01 != 0 {
            tcp = tcp.fin();
        }
        if flags & 0x04 != 0 {
            tcp = tcp.rst();
        }
        if flags & 0x08 != 0 {
            tcp = tcp.psh();
        }
        self.buf.clear();
        tcp.write(&mut self.buf, payload).expect("build packet");
        let len = self.buf.len() as u32;
        let mut hdr = [0u8; 16];
        hdr[0..4].copy_from_slice(&((t_us / 1_000_000) as u32).to_le_bytes());
        hdr[4..8].copy_from_slice(&((t_us % 1_000_000) as u32).to_le_bytes());
        hdr[8..12].copy_from_slice(&len.to_le_bytes());
        hdr[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&hdr).unwrap();
        self.out.write_all(&self.buf).unwrap();
        self.bytes += 16 + u64::from(len);
        self.packets += 1;
    }
}

/// Filler for a message body: printable lines, never a lone dot.
fn body_filler(len: usize) -> Vec<u8> {
    let line =
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n";
    line.iter().copied().cycle().take(len).collect()
}

/// TLS application data records totalling `len` bytes (header included).
fn tls_filler(len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    while v.len() + 6 <= len {
        let body = (len - v.len() - 5).min(16_384);
        v.extend_from_slice(&[23, 3, 3, (body >> 8) as u8, body as u8]);
        v.extend((0..body).map(|_| rng.next() as u8));
    }
    v.resize(len, 0);
    v
}

fn usage() -> ! {
    eprintln!(
        "usage: gencorpus [--mix large|mailday] [--size 50M|1G] [--out PATH] [--seed N]
                 [--fixtures DIR] [--concurrent N] [--arrival-us N] [--body SIZE]
                 [--tls SIZE] [--mss N] [--no-truth]
  --mix large (the default): few large flows; mailday: a mail relay's many short sessions
  (benches/README.md describes both; the other options override the mix's settings).
  --body/--tls SIZE give every DATA body / completed TLS session that much filler
  (0 for none); without them sizes follow the mixed distribution (benches/README.md)."
    );
    std::process::exit(2);
}

#[allow(dead_code)]
fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // The mix sets the defaults the other options then override, wherever it is given.
    let mut o = match argv
        .iter()
        .position(|a| a == "--mix")
        .map(|i| argv.get(i + 1))
    {
        None => Options::default(),
        Some(Some(m)) if m == "large" => Options::default(),
        Some(Some(m)) if m == "mailday" => Options::mailday(),
        Some(_) => usage(),
    };
    let mut args = argv.into_iter();
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        let size = |v: String| parse_size(&v).unwrap_or_else(|| usage());
        let num = |v: String| v.parse::<u64>().unwrap_or_else(|_| usage());
        match a.as_str() {
            "--mix" => drop(val()),
            "--size" => o.size = size(val()),
            "--out" => o.out = PathBuf::from(val()),
            "--seed" => o.seed = num(val()),
            "--fixtures" => o.fixtures = PathBuf::from(val()),
            "--concurrent" => o.concurrent = num(val()).max(1) as usize,
            "--arrival-us" => o.arrival_us = num(val()),
            "--body" => o.body = Some(u32::try_from(size(val())).unwrap_or_else(|_| usage())),
            "--tls" => o.tls = Some(u32::try_from(size(val())).unwrap_or_else(|_| usage())),
            "--mss" => o.mss = num(val()).clamp(1, 65_000) as usize,
            "--no-truth" => o.truth = false,
            _ => usage(),
        }
    }
    let g = generate(&o);
    eprintln!(
        "gencorpus: {} flows, {} packets, {} bytes -> {}",
        g.flows,
        g.packets,
        g.bytes,
        o.out.display()
    );
}

/// Writes the capture (and its truth files) that `o` describes.
pub fn generate(o: &Options) -> Generated {
    let templates = load_templates(&o.fixtures);
    assert!(
        !templates.is_empty(),
        "no templates found in {}",
        o.fixtures.display()
    );
    let out = &o.out;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    let mailday = o.mix == Mix::MailDay;
    let buckets = Buckets::new(&templates);
    if mailday {
        for (name, b) in [
            ("implicit TLS", &buckets.implicit),
            ("STARTTLS", &buckets.starttls),
            ("plaintext", &buckets.plaintext),
            ("failed handshake", &buckets.failed),
        ] {
            assert!(
                !b.is_empty(),
                "no {name} template in {}",
                o.fixtures.display()
            );
        }
    }
    let mut rng = Rng(o.seed);
    let mut w = Writer::new(out);
    let mut truth: Box<dyn Write> = if o.truth {
        Box::new(BufWriter::new(
            File::create(out.with_extension("truth.csv")).expect("truth csv"),
        ))
    } else {
        Box::new(std::io::sink())
    };
    writeln!(truth, "client,server,class,starttls_issued,auth,tls_handshake,tls_version,expected_findings,template").unwrap();
    let mut label_flows = Vec::new();

    // Up to `concurrent` flows are live at once, arrivals interleaved.
    let concurrent = o.concurrent.max(1);
    let mss = o.mss.max(1);
    let mut heap: BinaryHeap<std::cmp::Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut cursors: Vec<Option<Cursor>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut clock_us: u64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
    let mut flow_no: u64 = 0;
    // Capture bytes of everything started so far, as planned: flows stop starting when it
    // reaches the size, so the capture ends close to it (not a whole flight of flows later).
    let mut planned: u64 = 24;
    let servers_v4: Vec<IpAddr> = (0..templates.len())
        .map(|i| {
            IpAddr::V4(Ipv4Addr::new(
                198,
                51,
                100 + (i / 250) as u8,
                (i % 250) as u8 + 1,
            ))
        })
        .collect();
    let servers_v6: Vec<IpAddr> = (0..templates.len())
        .map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16 + 1)))
        .collect();

    let mut start_flow = |cursors: &mut Vec<Option<Cursor>>,
                          free: &mut Vec<usize>,
                          heap: &mut BinaryHeap<_>,
                          rng: &mut Rng,
                          clock_us: u64,
                          truth: &mut dyn Write,
                          label_flows: &mut Vec<Value>|
     -> u64 {
        flow_no += 1;
        let tpl = if mailday {
            buckets.pick(rng)
        } else {
            rng.below(templates.len() as u64) as usize
        };
        let t = &templates[tpl];
        let v6 = rng.chance(250);
        let n = flow_no;
        let client = if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0xc0,
                (n >> 48) as u16,
                (n >> 32) as u16,
                (n >> 16) as u16,
                n as u16,
                1,
            ))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                10,
                (n >> 16) as u8,
                (n >> 8) as u8,
                (n as u8).max(1),
            ))
        };
        // One server per template: a server that offered STARTTLS in one session and not in
        // the next would be a downgrade, which no template's label says.
        let server = if v6 {
            servers_v6[tpl % servers_v6.len()]
        } else {
            servers_v4[tpl % servers_v4.len()]
        };
        let client_port = 1024 + (rng.below(64_000) as u16);
        let body_extra = match (t.body_end.is_some(), o.body) {
            (false, _) => 0,
            (true, Some(n)) => n,
            (true, None) if mailday => mailday_body(rng),
            (true, None) => mixed_body(rng),
        };
        let tls_extra = match (t.tls_complete, o.tls) {
            (false, _) => 0,
            (true, Some(n)) => n,
            // A message inside TLS: its SMTP dialog records and TLS framing on top.
            (true, None) if mailday => 300 + mailday_body(rng),
            (true, None) => mixed_tls(rng),
        };
        let cur = Cursor {
            tpl,
            start_us: clock_us,
            client,
            server,
            client_port,
            body_extra,
            tls_extra,
            next: 0,
            pending: Vec::new(),
            client_shift: 0,
            server_shift: 0,
            time_shift: 0,
            tls_inserted: false,
        };
        let fmt_ep = |ip: IpAddr, port: u16| match ip {
            IpAddr::V4(a) => format!("{a}:{port}"),
            IpAddr::V6(a) => format!("[{a}]:{port}"),
        };
        let c = fmt_ep(client, client_port);
        let s = fmt_ep(server, t.server_port);
        let lab = &t.label;
        let auth: Vec<String> = lab["auth"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "{}:{}",
                    a["mechanism"].as_str().unwrap_or(""),
                    a["username"].as_str().unwrap_or("")
                )
            })
            .collect();
        let findings: Vec<&str> = lab["expected_findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str())
            .collect();
        writeln!(
            truth,
            "{c},{s},{},{},{},{},{},{},{}",
            lab["class"].as_str().unwrap_or(""),
            lab["starttls"]["issued"].as_bool().unwrap_or(false),
            auth.join(";"),
            lab["tls"]["handshake"].as_str().unwrap_or(""),
            lab["tls"]["version"].as_str().unwrap_or(""),
            findings.join(";"),
            t.name.replace(',', " ")
        )
        .unwrap();
        if o.truth {
            let mut l = lab.clone();
            l["client"] = json!(c);
            l["server"] = json!(s);
            // The corpus replays each template's AUTH from many clients within minutes: failed,
            // that is password spraying and distributed brute force by definition, whatever
            // the single recording's label says.
            // (Labels do not record AUTH outcomes: any template with AUTH may be one.)
            let auth = lab["auth"].as_array().is_some_and(|a| !a.is_empty());
            if auth && let Some(opt) = l["optional_findings"].as_array_mut() {
                for k in [
                    "auth_brute_force",
                    "auth_password_spraying",
                    "auth_distributed_brute_force",
                ] {
                    if !opt.iter().any(|x| x == k) {
                        opt.push(json!(k));
                    }
                }
            }
            label_flows.push(l);
        }
        let slot = free.pop().unwrap_or_else(|| {
            cursors.push(None);
            cursors.len() - 1
        });
        cursors[slot] = Some(cur);
        heap.push(std::cmp::Reverse((clock_us, slot)));
        // Template segments longer than the MSS are cut, each piece a packet.
        let pieces: u64 = t
            .segs
            .iter()
            .map(|s| (s.payload.len().div_ceil(mss) as u64).saturating_sub(1))
            .sum();
        // The receiver's acknowledgement of every filler segment (mail-day mix).
        let acks = |extra: u32| {
            if mailday {
                u64::from(extra).div_ceil(mss.min(MSS) as u64) * overhead(v6)
            } else {
                0
            }
        };
        t.wire_bytes(v6)
            + pieces * overhead(v6)
            + filler_bytes(body_extra, mss.min(MSS), v6)
            + filler_bytes(tls_extra, mss.min(MSS), v6)
            + acks(body_extra)
            + acks(tls_extra)
    };
    let mut next_arrival = clock_us;

    while planned < o.size || !heap.is_empty() {
        // Mail-day arrivals are a Poisson process: a flow starts when its time comes, however
        // many are live (up to `concurrent`).
        while mailday
            && planned < o.size
            && heap.len() < concurrent
            && heap
                .peek()
                .is_none_or(|std::cmp::Reverse((t, _))| next_arrival <= *t)
        {
            clock_us = next_arrival;
            next_arrival += exponential_us(&mut rng, o.arrival_us).max(1);
            planned += start_flow(
                &mut cursors,
                &mut free,
                &mut heap,
                &mut rng,
                clock_us,
                &mut *truth,
                &mut label_flows,
            );
        }
        while !mailday && planned < o.size && heap.len() < concurrent {
            clock_us += o.arrival_us / 10 + rng.below(o.arrival_us.max(1) * 9 / 5 + 1);
            planned += start_flow(
                &mut cursors,
                &mut free,
                &mut heap,
                &mut rng,
                clock_us,
                &mut *truth,
                &mut label_flows,
            );
        }
        let Some(std::cmp::Reverse((t_now, slot))) = heap.pop() else {
            break;
        };
        let cur = cursors[slot].as_mut().expect("live cursor");
        let tpl = &templates[cur.tpl];
        // Emit one segment: pending ones first (inserted, duplicated, swapped or cut).
        let (seg, fixed) = if let Some(p) = cur.pending.pop() {
            p
        } else if cur.next < tpl.segs.len() {
            let i = cur.next;
            cur.next += 1;
            let s = tpl.segs[i].clone();
            let body_here = Some(i) == tpl.body_end && cur.body_extra > 0;
            let tls_here = cur.tls_extra > 0 && !cur.tls_inserted && s.flags & 0x05 != 0;
            if body_here || tls_here {
                // Filler before this segment, at final sequence numbers; this segment and
                // everything after it in its direction move up by the filler's length, and
                // later by the time the filler takes at about 1 Gbit/s.
                let (data, from_client) = if body_here {
                    (body_filler(cur.body_extra as usize), true)
                } else {
                    cur.tls_inserted = true;
                    (tls_filler(cur.tls_extra as usize, &mut rng), s.from_client)
                };
                let (shift, peer_shift) = if from_client {
                    (cur.client_shift, cur.server_shift)
                } else {
                    (cur.server_shift, cur.client_shift)
                };
                let base = s.seq.wrapping_add(shift);
                let ack = s.ack.wrapping_add(peer_shift);
                let mut off = 0u32;
                let mut filler = Vec::new();
                for c in data.chunks(mss.min(MSS)) {
                    filler.push((
                        Seg {
                            t_us: s.t_us + cur.time_shift,
                            from_client,
                            seq: base.wrapping_add(off),
                            ack,
                            flags: 0x18,
                            payload: c.to_vec(),
                        },
                        true,
                    ));
                    cur.time_shift += 12;
                    off = off.wrapping_add(c.len() as u32);
                    // The receiver acknowledges every segment (as Linux does in quick-ack
                    // mode, at a connection's start), from where its own stream stands (the
                    // template segment's acknowledgement).
                    if mailday && s.flags & 0x10 != 0 {
                        filler.push((
                            Seg {
                                t_us: s.t_us + cur.time_shift,
                                from_client: !from_client,
                                seq: ack,
                                ack: base.wrapping_add(off),
                                flags: 0x10,
                                payload: Vec::new(),
                            },
                            true,
                        ));
                    }
                }
                if from_client {
                    cur.client_shift = cur.client_shift.wrapping_add(off);
                } else {
                    cur.server_shift = cur.server_shift.wrapping_add(off);
                }
                cur.pending.push((s, false));
                cur.pending.extend(filler.into_iter().rev());
                cur.pending.pop().expect("filler")
            } else {
                (s, false)
            }
        } else {
            // Flow done.
            cursors[slot] = None;
            free.push(slot);
            continue;
        };
        let (mut seg, mut fixed) = (seg, fixed);
        if seg.payload.len() > mss {
            // Cut to the MSS: the first piece goes now, the rest next (in order).
            // SYN stays on the first piece, FIN goes to the last (and the SYN's sequence
            // number comes before the payload).
            let syn = u32::from(seg.flags & 0x02 != 0);
            let pieces = seg.payload.len().div_ceil(mss);
            let rest: Vec<(Seg, bool)> = seg
                .payload
                .chunks(mss)
                .enumerate()
                .skip(1)
                .map(|(k, c)| {
                    let last = k + 1 == pieces;
                    let flags = seg.flags & !0x02 & if last { 0xff } else { !0x01 };
                    (
                        Seg {
                            seq: seg.seq.wrapping_add(syn + (k * mss) as u32),
                            flags,
                            payload: c.to_vec(),
                            ..seg.clone()
                        },
                        fixed,
                    )
                })
                .collect();
            cur.pending.extend(rest.into_iter().rev());
            seg.payload.truncate(mss);
            seg.flags &= !0x01;
        }
        // Rare retransmission or reordering of data segments.
        if !seg.payload.is_empty() && rng.chance(3) {
            cur.pending.push((seg.clone(), fixed));
        } else if !seg.payload.is_empty()
            && !fixed
            && rng.chance(3)
            && cur.pending.is_empty()
            && cur.next < tpl.segs.len()
            && tpl.segs[cur.next].from_client == seg.from_client
            && !tpl.segs[cur.next].payload.is_empty()
            && tpl.segs[cur.next].payload.len() <= mss
            && Some(cur.next) != tpl.body_end
        {
            // Swap with the next segment of the same direction.
            let nxt = tpl.segs[cur.next].clone();
            cur.next += 1;
            cur.pending.push((seg, false));
            seg = nxt;
            fixed = false;
        }
        let (cs, ss) = if fixed {
            (0, 0)
        } else {
            (cur.client_shift, cur.server_shift)
        };
        let (src, dst, sport, dport, seq, ack) = if seg.from_client {
            (
                cur.client,
                cur.server,
                cur.client_port,
                tpl.server_port,
                seg.seq.wrapping_add(cs),
                seg.ack.wrapping_add(ss),
            )
        } else {
            (
                cur.server,
                cur.client,
                tpl.server_port,
                cur.client_port,
                seg.seq.wrapping_add(ss),
                seg.ack.wrapping_add(cs),
            )
        };
        // Filler carries its own (already shifted) time; template segments move by the time
        // the filler before them took.
        let shift = if fixed { 0 } else { cur.time_shift };
        let t = (cur.start_us + seg.t_us + shift).max(t_now);
        w.packet(t, src, dst, sport, dport, seq, ack, seg.flags, &seg.payload);
        // Next event of this flow: its next template time, a little later for inserted ones.
        let next_t = if let Some((p, pf)) = cur.pending.last() {
            let shift = if *pf { 0 } else { cur.time_shift };
            (cur.start_us + p.t_us + shift).max(t + 1)
        } else if let Some(n) = tpl.segs.get(cur.next) {
            (cur.start_us + n.t_us + cur.time_shift).max(t + 1)
        } else {
            t + 1
        };
        heap.push(std::cmp::Reverse((next_t, slot)));
    }
    w.out.flush().unwrap();
    truth.flush().unwrap();
    if o.truth {
        let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let labels = json!({
            "generated_from": "examples/gencorpus.rs over fixtures/labels.json",
            "captures": [{"id": name, "file": name, "flows": label_flows}]
        });
        std::fs::write(
            out.with_extension("labels.json"),
            serde_json::to_vec_pretty(&labels).unwrap(),
        )
        .unwrap();
    }
    Generated {
        flows: flow_no,
        packets: w.packets,
        bytes: w.bytes,
    }
}
