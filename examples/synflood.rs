//! Writes a SYN flood for the memory benchmark (benches/README.md): `--count` SYNs to one
//! server's port, each from a distinct source address and port, none answered.
//!
//!     cargo run --release --example synflood -- --count 1000000 --port 25 --out bench-data/synflood-1M.pcap

use std::fs::File;
use std::io::{BufWriter, Write};

fn checksum(words: &[u8]) -> u16 {
    let mut sum: u32 = words
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn syn(i: u32, port: u16) -> Vec<u8> {
    // Sources 10.0.0.0/8 onwards, one address per SYN; the server is 192.0.2.25.
    let src = (0x0a00_0000u32 + i + 1).to_be_bytes();
    let dst = [192, 0, 2, 25];
    let sport = 1024 + (i % 60_000) as u16;
    let mut tcp = Vec::with_capacity(20);
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&port.to_be_bytes());
    tcp.extend_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes()); // seq
    tcp.extend_from_slice(&0u32.to_be_bytes()); // ack
    tcp.extend_from_slice(&[0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]); // SYN, window 64240
    let mut pseudo = Vec::with_capacity(32);
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    pseudo.extend_from_slice(&tcp);
    let c = checksum(&pseudo).to_be_bytes();
    tcp[16] = c[0];
    tcp[17] = c[1];
    let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&ip).to_be_bytes();
    ip[10] = c[0];
    ip[11] = c[1];
    let mut frame = vec![0x02, 0, 0, 0, 0, 0x25, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&tcp);
    frame
}

fn main() -> std::io::Result<()> {
    let mut count = 1_000_000u32;
    let mut port = 25u16;
    let mut out = String::from("bench-data/synflood-1M.pcap");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--count" => count = v.parse().unwrap_or(count),
            "--port" => port = v.parse().unwrap_or(port),
            "--out" => out = v,
            _ => {
                eprintln!("usage: synflood [--count N] [--port P] [--out PATH]");
                std::process::exit(2);
            }
        }
    }
    let mut w = BufWriter::new(File::create(&out)?);
    // Classic pcap, microseconds, Ethernet.
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&[
        2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ])?;
    // One SYN every 20 us from 2026-01-01.
    let t0: u64 = 1_767_225_600_000_000;
    for i in 0..count {
        let ts = t0 + u64::from(i) * 20;
        let f = syn(i, port);
        w.write_all(&((ts / 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&((ts % 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(&f)?;
    }
    w.flush()?;
    eprintln!("synflood: {count} SYNs to port {port} -> {out}");
    Ok(())
}
