//! Protocol analyzer throughput.
//!
//! `tls_benches`: one TLS 1.2 handshake followed by 8 MiB of application data per direction,
//! fed in 1448-byte TCP-sized chunks. `follow_to_close` frames every record to the end (the
//! worst case: only record headers are read, bodies skipped); `release` is the default, where
//! each direction returns `Interest::Done` after its first data record. Both should run at
//! memory speed or better: application data costs next to nothing.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtpaudit::flow::{Direction, EventMeta, Interest};
use smtpaudit::proto::tls::{TlsContext, TlsSession};

const APP_BYTES: usize = 8 << 20;
const CHUNK: usize = 1448;

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

/// Client and server streams: a full TLS 1.2 handshake, then `APP_BYTES` of data records.
fn streams() -> (Vec<u8>, Vec<u8>) {
    let mut ch = vec![3, 3];
    ch.extend_from_slice(&[0x11; 32]);
    ch.push(0);
    ch.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0x00, 0xff, 1, 0]);
    let name = b"mx.example.org";
    let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let mut exts = vec![0, 0];
    exts.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    exts.extend_from_slice(&sni);
    ch.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    ch.extend_from_slice(&exts);

    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[0x22; 32]);
    sh.extend_from_slice(&[0, 0xc0, 0x2f, 0, 0, 0]);

    let mut c = rec(22, &hs(1, &ch));
    let mut flight = hs(2, &sh);
    flight.extend(hs(14, &[]));
    let mut s = rec(22, &flight);
    c.extend(rec(22, &hs(16, &[0; 66])));
    c.extend(rec(20, &[1]));
    c.extend(rec(22, &[0xee; 40]));
    s.extend(rec(20, &[1]));
    s.extend(rec(22, &[0xdd; 40]));
    let full = rec(23, &[0xab; 16 * 1024]);
    for _ in 0..APP_BYTES / (16 * 1024) {
        c.extend_from_slice(&full);
        s.extend_from_slice(&full);
    }
    (c, s)
}

fn run(c: &[u8], s: &[u8], follow: bool) -> TlsSession {
    let mut t = TlsSession::new(TlsContext::default()).follow_to_close(follow);
    let meta = EventMeta::default();
    let mut done = [false; 2];
    // Interleave the directions chunk by chunk, as a capture would.
    let (mut ci, mut si) = (c.chunks(CHUNK), s.chunks(CHUNK));
    loop {
        let (a, b) = (ci.next(), si.next());
        if a.is_none() && b.is_none() {
            break;
        }
        for (i, dir, chunk) in [(0, Direction::ToServer, a), (1, Direction::ToClient, b)] {
            if let Some(chunk) = chunk
                && !done[i]
            {
                done[i] = t.feed(dir, chunk, meta) == Interest::Done;
            }
        }
    }
    t
}

fn tls_benches(c: &mut Criterion) {
    let (cs, ss) = streams();
    let mut g = c.benchmark_group("tls");
    g.throughput(Throughput::Bytes((cs.len() + ss.len()) as u64));
    g.bench_function("handshake_plus_8MiB_app_data/follow_to_close", |b| {
        b.iter(|| run(&cs, &ss, true))
    });
    g.bench_function("handshake_plus_8MiB_app_data/release", |b| {
        b.iter(|| run(&cs, &ss, false))
    });
    g.finish();
}

criterion_group!(benches, tls_benches);
criterion_main!(benches);
