//! Builds large benchmark captures deterministically from the real sessions in `fixtures/`.
//!
//!     cargo run --release --example gencorpus -- --size 1G --out bench-data/mixed-1g.pcap
//!
//! Every flow of a fixture named in `fixtures/labels.json` is a template. The generator
//! replays templates with rewritten addresses and ports (IPv4 and IPv6), shifted timestamps and
//! interleaved arrivals, inflates some message bodies (a few KB to several MB) and some TLS
//! sessions (application data after a completed handshake), duplicates a few segments
//! (retransmissions) and swaps a few (reordering). Beside the capture it writes
//! `<out>.truth.csv` (one line per flow) and `<out>.labels.json` (the shape
//! `../shared/tools/score.py` reads), so the analysis can be checked at speed.
//! The same arguments always give the same bytes.

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

#[derive(Clone)]
struct Template {
    name: String,
    label: Value,
    server_port: u16,
    segs: Vec<Seg>,
    /// Index of the client segment that carries the end-of-data dot (for body inflation).
    body_end: Option<usize>,
    /// Handshake completed: application data may be inserted before the server's FIN.
    tls_complete: bool,
}

fn parse_size(s: &str) -> u64 {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('G' | 'g') => (&s[..s.len() - 1], 1u64 << 30),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('K' | 'k') => (&s[..s.len() - 1], 1 << 10),
        _ => (s, 1),
    };
    num.parse::<u64>().expect("size like 50M or 1G") * mult
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

fn load_templates(fixtures: &Path) -> Vec<Template> {
    let labels: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("labels.json")).expect("fixtures/labels.json"),
    )
    .expect("labels JSON");
    let mut out = Vec::new();
    for cap in labels["captures"].as_array().expect("captures") {
        if cap["args"].is_array() {
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
            if lab["class"] == "absent" {
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
            out.push(Template {
                name: format!("{file} {}", lab["client"].as_str().unwrap_or("")),
                label: (*lab).clone(),
                server_port: sport,
                segs,
                body_end,
                tls_complete: lab["tls"]["handshake"] == "complete",
            });
        }
    }
    out
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
    /// Bytes of TLS application data inserted before the server's first FIN.
    tls_extra: u32,
    next: usize,
    /// Segments to emit before template segment `next` (filler, retransmissions, swaps),
    /// last first; `true` when the sequence numbers are already final.
    pending: Vec<(Seg, bool)>,
    client_shift: u32,
    server_shift: u32,
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

fn main() {
    let mut size = 50u64 << 20;
    let mut out = PathBuf::from("bench-data/mixed.pcap");
    let mut seed = 1u64;
    let mut fixtures = PathBuf::from("fixtures");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => size = parse_size(&args.next().expect("--size N")),
            "--out" => out = PathBuf::from(args.next().expect("--out PATH")),
            "--seed" => seed = args.next().expect("--seed N").parse().expect("number"),
            "--fixtures" => fixtures = PathBuf::from(args.next().expect("--fixtures DIR")),
            _ => {
                eprintln!(
                    "usage: gencorpus [--size 50M|1G] [--out PATH] [--seed N] [--fixtures DIR]"
                );
                std::process::exit(2);
            }
        }
    }
    let templates = load_templates(&fixtures);
    assert!(
        !templates.is_empty(),
        "no templates found in {}",
        fixtures.display()
    );
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    let mut rng = Rng(seed);
    let mut w = Writer::new(&out);
    let mut truth =
        BufWriter::new(File::create(out.with_extension("truth.csv")).expect("truth csv"));
    writeln!(truth, "client,server,class,starttls_issued,auth,tls_handshake,tls_version,expected_findings,template").unwrap();
    let mut label_flows = Vec::new();

    // Replays overlap: up to CONCURRENT flows are live at once, arrivals interleaved.
    const CONCURRENT: usize = 64;
    let mut heap: BinaryHeap<std::cmp::Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut cursors: Vec<Option<Cursor>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut clock_us: u64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
    let mut flow_no: u64 = 0;
    let servers_v4: Vec<IpAddr> = (1..=8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)))
        .collect();
    let servers_v6: Vec<IpAddr> = (1..=8)
        .map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)))
        .collect();

    let mut start_flow = |cursors: &mut Vec<Option<Cursor>>,
                          free: &mut Vec<usize>,
                          heap: &mut BinaryHeap<_>,
                          rng: &mut Rng,
                          clock_us: u64,
                          truth: &mut BufWriter<File>,
                          label_flows: &mut Vec<Value>| {
        flow_no += 1;
        let tpl = rng.below(templates.len() as u64) as usize;
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
        let server = if v6 {
            servers_v6[rng.below(8) as usize]
        } else {
            servers_v4[rng.below(8) as usize]
        };
        let client_port = 1024 + (rng.below(64_000) as u16);
        let body_extra = if t.body_end.is_some() {
            match rng.below(10) {
                0..=5 => 2_000 + rng.below(30_000) as u32,
                6..=8 => 100_000 + rng.below(900_000) as u32,
                _ => 2_000_000 + rng.below(6_000_000) as u32,
            }
        } else {
            0
        };
        let tls_extra = if t.tls_complete {
            10_000 + rng.below(2_000_000) as u32
        } else {
            0
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
        let mut l = lab.clone();
        l["client"] = json!(c);
        l["server"] = json!(s);
        label_flows.push(l);
        let slot = free.pop().unwrap_or_else(|| {
            cursors.push(None);
            cursors.len() - 1
        });
        cursors[slot] = Some(cur);
        heap.push(std::cmp::Reverse((clock_us, slot)));
    };

    while w.bytes < size || !heap.is_empty() {
        while w.bytes < size && heap.len() < CONCURRENT {
            clock_us += 200 + rng.below(5_000);
            start_flow(
                &mut cursors,
                &mut free,
                &mut heap,
                &mut rng,
                clock_us,
                &mut truth,
                &mut label_flows,
            );
        }
        let Some(std::cmp::Reverse((t_now, slot))) = heap.pop() else {
            break;
        };
        let cur = cursors[slot].as_mut().expect("live cursor");
        let tpl = &templates[cur.tpl];
        // Emit one segment: pending ones first (inserted, duplicated or swapped).
        let (seg, fixed) = if let Some(p) = cur.pending.pop() {
            p
        } else if cur.next < tpl.segs.len() {
            let i = cur.next;
            cur.next += 1;
            let s = tpl.segs[i].clone();
            let body_here = Some(i) == tpl.body_end && cur.body_extra > 0;
            let tls_here =
                cur.tls_extra > 0 && !cur.tls_inserted && !s.from_client && s.flags & 0x05 != 0;
            if body_here || tls_here {
                // Filler before this segment, at final sequence numbers; this segment and
                // everything after it in its direction move up by the filler's length.
                let (data, from_client) = if body_here {
                    (body_filler(cur.body_extra as usize), true)
                } else {
                    cur.tls_inserted = true;
                    (tls_filler(cur.tls_extra as usize, &mut rng), false)
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
                for c in data.chunks(1448) {
                    filler.push((
                        Seg {
                            t_us: s.t_us,
                            from_client,
                            seq: base.wrapping_add(off),
                            ack,
                            flags: 0x18,
                            payload: c.to_vec(),
                        },
                        true,
                    ));
                    off = off.wrapping_add(c.len() as u32);
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
        // Rare retransmission or reordering of data segments.
        let (mut seg, mut fixed) = (seg, fixed);
        if !seg.payload.is_empty() && rng.chance(3) {
            cur.pending.push((seg.clone(), fixed));
        } else if !seg.payload.is_empty()
            && !fixed
            && rng.chance(3)
            && cur.pending.is_empty()
            && cur.next < tpl.segs.len()
            && tpl.segs[cur.next].from_client == seg.from_client
            && !tpl.segs[cur.next].payload.is_empty()
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
        let t = (cur.start_us + seg.t_us).max(t_now);
        w.packet(t, src, dst, sport, dport, seq, ack, seg.flags, &seg.payload);
        // Next event of this flow: its next template time, a little later for inserted ones.
        let next_t = if let Some((p, _)) = cur.pending.last() {
            (cur.start_us + p.t_us).max(t + 1)
        } else if let Some(n) = tpl.segs.get(cur.next) {
            (cur.start_us + n.t_us).max(t + 1)
        } else {
            t + 1
        };
        heap.push(std::cmp::Reverse((next_t, slot)));
    }
    w.out.flush().unwrap();
    truth.flush().unwrap();
    let labels = json!({
        "generated_from": "examples/gencorpus.rs over fixtures/labels.json",
        "captures": [{"id": out.file_name().and_then(|n| n.to_str()).unwrap_or(""), "file": out.file_name().and_then(|n| n.to_str()).unwrap_or(""), "flows": label_flows}]
    });
    std::fs::write(
        out.with_extension("labels.json"),
        serde_json::to_vec_pretty(&labels).unwrap(),
    )
    .unwrap();
    eprintln!(
        "gencorpus: {} flows, {} packets, {} bytes -> {}",
        flow_no,
        w.packets,
        w.bytes,
        out.display()
    );
}
