//! Flow table + reassembly throughput over generated segments (no capture file needed: the
//! input is built here, so it can never be missing).
//!
//! Each scenario runs whole connections (handshake, data, FINs) through a fresh table per
//! iteration. Two groups measure the same work: `reassembly_bytes` (Throughput::Bytes, payload
//! bytes) and `reassembly_packets` (Throughput::Elements, packets), so ns/packet is
//! 1e9 / (elements per second) = time per iteration / packets per iteration.
//!
//!     cargo bench --bench reassembly

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use smtpaudit::decode::{TcpFlags, TcpSegment};
use smtpaudit::flow::{
    CloseReason, Direction, EventMeta, FlowConfig, FlowHandler, FlowInfo, FlowTable, Interest,
    StreamEvent,
};
use smtpaudit::time::Timestamp;

/// Touches every delivered byte's length, like the cheapest possible analyzer.
#[derive(Default)]
struct Count {
    bytes: u64,
    events: u64,
}

impl FlowHandler for Count {
    type State = ();
    fn open(&mut self, _info: &FlowInfo, _meta: EventMeta) {}
    fn event(
        &mut self,
        _state: &mut (),
        _info: &FlowInfo,
        _dir: Direction,
        ev: StreamEvent<'_>,
        _meta: EventMeta,
    ) -> Interest {
        self.events += 1;
        if let StreamEvent::Data(d) = ev {
            self.bytes += d.len() as u64;
        }
        Interest::Bytes
    }
    fn close(&mut self, _state: (), _info: &FlowInfo, _reason: CloseReason) {}
}

const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;
const FIN: u8 = TcpFlags::FIN;
const PSH: u8 = TcpFlags::PSH;

struct Conn {
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    cisn: u32,
    sisn: u32,
}

fn seg(
    from: (IpAddr, u16),
    to: (IpAddr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> TcpSegment<'_> {
    TcpSegment {
        src: from.0,
        dst: to.0,
        src_port: from.1,
        dst_port: to.1,
        seq,
        ack,
        flags: TcpFlags(flags),
        payload,
        missing_payload: 0,
    }
}

/// One connection: handshake, `n` client segments of `mss` bytes with a server ACK after
/// every second one, then FINs. `swap_pairs` delivers each pair of data segments reversed.
fn connection<'a>(c: &Conn, body: &'a [u8], mss: usize, swap_pairs: bool) -> Vec<TcpSegment<'a>> {
    let (cl, sv) = (c.client, c.server);
    let mut out = vec![
        seg(cl, sv, c.cisn, 0, SYN, b""),
        seg(sv, cl, c.sisn, c.cisn.wrapping_add(1), SYN | ACK, b""),
        seg(
            cl,
            sv,
            c.cisn.wrapping_add(1),
            c.sisn.wrapping_add(1),
            ACK,
            b"",
        ),
    ];
    let s_next = c.sisn.wrapping_add(1);
    let mut off = 0usize;
    let chunks: Vec<&[u8]> = body.chunks(mss).collect();
    let mut i = 0;
    while i < chunks.len() {
        let mut pair = Vec::new();
        for ch in chunks.iter().skip(i).take(2) {
            let seq = c.cisn.wrapping_add(1).wrapping_add(off as u32);
            pair.push(seg(cl, sv, seq, s_next, ACK | PSH, ch));
            off += ch.len();
        }
        if swap_pairs {
            pair.reverse();
        }
        out.extend(pair);
        let acked = c.cisn.wrapping_add(1).wrapping_add(off as u32);
        out.push(seg(sv, cl, s_next, acked, ACK, b""));
        i += 2;
    }
    let c_fin = c.cisn.wrapping_add(1).wrapping_add(off as u32);
    out.push(seg(cl, sv, c_fin, s_next, ACK | FIN, b""));
    out.push(seg(sv, cl, s_next, c_fin.wrapping_add(1), ACK | FIN, b""));
    out
}

fn conn(i: u32) -> Conn {
    Conn {
        client: (
            IpAddr::V4(Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8)),
            40000 + (i % 20000) as u16,
        ),
        server: (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25)), 25),
        // One connection's ISN sits right below the wrap so that path is measured too.
        cisn: if i == 0 {
            u32::MAX - 5000
        } else {
            i.wrapping_mul(2_654_435_761)
        },
        sisn: i.wrapping_mul(40_503),
    }
}

/// Interleaves the connections' packets round-robin, as a busy capture would.
fn interleave<'a>(conns: Vec<Vec<TcpSegment<'a>>>) -> Vec<TcpSegment<'a>> {
    let longest = conns.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::with_capacity(conns.iter().map(Vec::len).sum());
    for k in 0..longest {
        for c in &conns {
            if let Some(s) = c.get(k) {
                out.push(*s);
            }
        }
    }
    out
}

/// Capture time and frame of each packet, made outside the measured loop (the reader
/// provides them in the real pipeline).
fn metas(n: usize) -> Vec<EventMeta> {
    (0..n)
        .map(|i| EventMeta {
            ts: Timestamp::new(1_700_000_000 + (i / 100_000) as i64, (i % 100_000) as u32),
            frame: i as u64 + 1,
        })
        .collect()
}

fn run(segs: &[TcpSegment<'_>], metas: &[EventMeta]) -> u64 {
    let mut table = FlowTable::new(FlowConfig::default(), Count::default());
    for (s, meta) in segs.iter().zip(metas) {
        table.process(s, *meta);
    }
    table.finish_all();
    let h = table.into_handler();
    h.bytes + h.events
}

fn scenarios(body: &[u8]) -> Vec<(&'static str, Vec<TcpSegment<'_>>)> {
    vec![
        (
            "in_order_1448B",
            connection(
                &conn(0),
                body.get(..1448 * 1000).unwrap_or(body),
                1448,
                false,
            ),
        ),
        (
            "in_order_64B",
            connection(&conn(1), body.get(..64 * 4000).unwrap_or(body), 64, false),
        ),
        (
            "reordered_pairs_1448B",
            connection(
                &conn(2),
                body.get(..1448 * 1000).unwrap_or(body),
                1448,
                true,
            ),
        ),
        (
            "interleaved_1000_flows_256B",
            interleave(
                (0..1000)
                    .map(|i| connection(&conn(i), body.get(..256 * 20).unwrap_or(body), 256, false))
                    .collect(),
            ),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let body: Vec<u8> = (0..1448 * 1000).map(|i| (i % 251) as u8).collect();
    let all = scenarios(&body);
    for (unit, group_name) in [(true, "reassembly_bytes"), (false, "reassembly_packets")] {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(20);
        for (name, segs) in &all {
            let bytes: u64 = segs.iter().map(|s| s.payload.len() as u64).sum();
            let packets = segs.len() as u64;
            group.throughput(if unit {
                Throughput::Bytes(bytes)
            } else {
                Throughput::Elements(packets)
            });
            let metas = metas(segs.len());
            let id = format!("{name}/{packets}pkts");
            group.bench_function(id, |b| {
                b.iter_batched(
                    || (),
                    |()| black_box(run(black_box(segs), &metas)),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
