//! `--threads N` changes how fast a report is made, never the report: every format, byte for
//! byte, for N = 1 (one straight line), 2 and 3 (one capture: flows sharded over workers and
//! merged back; several captures: one thread per independent capture or chain of files,
//! reported in the order of their first packets).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[allow(dead_code)]
#[path = "../examples/gencorpus.rs"]
mod gencorpus;

use std::net::Ipv4Addr;
use std::path::Path;

const FORMATS: [&str; 4] = ["json", "ndjson", "ecs", "text"];
const THREADS: [&str; 3] = ["1", "2", "3"];

/// Runs every format with every thread count and fails on the first difference.
fn assert_same_for_all_threads(inputs: &[&str], extra: &[&str]) {
    for format in FORMATS {
        let mut first: Option<Vec<u8>> = None;
        for n in THREADS {
            let mut args = vec!["--format", format, "--color", "never", "--threads", n];
            args.extend_from_slice(extra);
            args.extend_from_slice(inputs);
            let out = common::run(&args);
            assert!(
                out.status.code().is_some_and(|c| c <= 1)
                    || inputs.iter().any(|i| i.contains("no-such")),
                "{inputs:?} --format {format} --threads {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            match &first {
                None => first = Some(out.stdout),
                Some(want) => {
                    if *want != out.stdout {
                        let at = want
                            .iter()
                            .zip(&out.stdout)
                            .position(|(a, b)| a != b)
                            .unwrap_or(want.len().min(out.stdout.len()));
                        panic!(
                            "{inputs:?} {extra:?} --format {format}: --threads {n} differs from \
                             --threads 1 at byte {at}:\n1: {}\n{n}: {}",
                            excerpt(want, at),
                            excerpt(&out.stdout, at)
                        );
                    }
                }
            }
        }
    }
}

fn excerpt(b: &[u8], at: usize) -> String {
    let from = at.saturating_sub(120);
    String::from_utf8_lossy(&b[from..(at + 120).min(b.len())]).into_owned()
}

#[test]
fn every_fixture_gives_the_same_report_with_any_thread_count() {
    let captures = common::fixture_captures();
    assert!(!captures.is_empty(), "no fixtures");
    for path in &captures {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_same_for_all_threads(&[&format!("fixtures/{name}")], &[]);
    }
    // Several captures in one run: flows of each stay with their capture, in input order.
    let all: Vec<String> = captures
        .iter()
        .map(|p| format!("fixtures/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_same_for_all_threads(&all, &[]);
    // A capture written as several files: one chain (one flow table), on one thread.
    let mut rotated: Vec<String> = std::fs::read_dir(common::fixtures().join("rotated"))
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .collect();
    rotated.sort();
    let rotated: Vec<&str> = rotated.iter().map(String::as_str).collect();
    assert_same_for_all_threads(&rotated, &[]);
    // Chains and independent captures in one run: each unit on a thread of its own.
    let mut mixed = rotated.clone();
    mixed.extend([
        "fixtures/smtp-plain-auth-bruteforce.pcap",
        "fixtures/no-such-capture.pcap",
    ]);
    mixed.extend(all.iter().take(4));
    assert_same_for_all_threads(&mixed, &[]);
}

fn generate(dir: &Path, name: &str, o: gencorpus::Options) -> String {
    let out = dir.join(name);
    let g = gencorpus::generate(&gencorpus::Options {
        out: out.clone(),
        fixtures: common::fixtures(),
        truth: false,
        ..o
    });
    assert!(g.flows > 100 && g.packets > 1000, "{g:?}");
    out.to_string_lossy().into_owned()
}

#[test]
fn generated_mixed_capture_gives_the_same_report_with_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mixed = generate(
        dir.path(),
        "mixed.pcap",
        gencorpus::Options {
            size: 5 << 20,
            seed: 7,
            // Small bodies and sessions, so that a few megabytes hold hundreds of flows.
            concurrent: 128,
            body: Some(3_000),
            tls: Some(5_000),
            ..Default::default()
        },
    );
    assert_same_for_all_threads(&[&mixed], &[]);
    // Several inputs at once (one thread each), one of them unreadable: still input order.
    assert_same_for_all_threads(
        &[
            "fixtures/smtp-plain-auth-bruteforce.pcap",
            &mixed,
            "fixtures/no-such-capture.pcap",
            "fixtures/smtp-starttls-587-tls13.pcapng",
        ],
        &[],
    );
    // A one-second idle timeout makes the clock sweep flows of every shard at the same
    // ticks: the merge must put them in one table's order (last touched second, then age).
    assert_same_for_all_threads(&[&mixed], &["--idle-timeout", "1"]);

    // Damaged part-way (cut inside a record, past the first round of frames every worker
    // hands in): every worker stops at the same frame, and the warning is the capture's.
    let bytes = std::fs::read(&mixed).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 9 / 10 + 3]).unwrap();
    let cut = cut.to_string_lossy().into_owned();
    assert_same_for_all_threads(&[&cut], &[]);
    let out = common::run(&["--format", "json", "--threads", "2", &cut]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let capture = &report["captures"][0];
    assert!(
        capture["packets"].as_u64().unwrap() > 16_384,
        "the cut capture should span more than one round of frames: {capture}"
    );
    assert_eq!(
        capture["warnings"].as_array().unwrap().len(),
        1,
        "{capture}"
    );

    // gzip: decompressed once, by the reading thread, and spread over the workers.
    let gz = dir.path().join("mixed.pcap.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &bytes).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    assert_same_for_all_threads(&[&gz.to_string_lossy()], &[]);
}

#[test]
fn many_short_concurrent_flows_give_the_same_report_with_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let short = generate(
        dir.path(),
        "short.pcap",
        gencorpus::Options {
            size: 2 << 20,
            seed: 3,
            concurrent: 500,
            arrival_us: 100,
            body: Some(0),
            tls: Some(0),
            ..Default::default()
        },
    );
    assert_same_for_all_threads(&[&short], &[]);
    assert_same_for_all_threads(&[&short], &["--idle-timeout", "1"]);
}

/// Flows built so that one sweep closes flows of several shards touched in different
/// seconds, the older flows touched last (so creation order is not the report order), with
/// timestamps that step back, and flows still open at the end.
fn clock_torture(path: &Path) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut packet = |secs: u32, client: u16, from_server: bool, payload: &[u8]| {
        let c = Ipv4Addr::new(10, 1, (client >> 8) as u8, client as u8).octets();
        let s = Ipv4Addr::new(198, 51, 100, 1).octets();
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let (src, dst, sport, dport) = if from_server {
            (s, c, 25, 40_000 + client)
        } else {
            (c, s, 40_000 + client, 25)
        };
        let seq = if from_server { 1000 } else { 5000 };
        let tcp = b
            .ipv4(src, dst, 64)
            .tcp(sport, dport, seq, 1024)
            .ack(1)
            .psh();
        let mut frame = Vec::new();
        tcp.write(&mut frame, payload).unwrap();
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    };
    let base = 1_767_225_600u32;
    const PER_EPOCH: u16 = 12;
    for epoch in 0..20u16 {
        let t0 = base + u32::from(epoch) * 20;
        let first = epoch * PER_EPOCH;
        for k in 0..PER_EPOCH {
            packet(t0, first + k, true, b"220 mx.example ESMTP\r\n");
        }
        // Touched newest first, over the next two seconds; every fourth touch carries a
        // timestamp from before the clock (it keeps the clock's second).
        for k in (0..PER_EPOCH).rev() {
            let late = 1 + u32::from(PER_EPOCH - 1 - k) / 6;
            let t = if k % 4 == 0 { t0 } else { t0 + late };
            packet(t, first + k, false, b"EHLO client.example\r\n");
        }
    }
    // The clock jumps on: everything above is idle at once.
    packet(base + 1000, 9999, true, b"220 late.example ESMTP\r\n");
    std::fs::write(path, out).unwrap();
}

#[test]
fn sweeps_with_a_clock_that_steps_back_give_the_same_report_with_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock.pcap");
    clock_torture(&path);
    let p = path.to_string_lossy().into_owned();
    for timeout in ["1", "3", "30", "0"] {
        assert_same_for_all_threads(&[&p], &["--idle-timeout", timeout]);
    }
}
