//! Several files that are one capture (a rotation, `tcpdump -C/-G/-W`, `dumpcap -b`): cutting
//! any fixture into N files at packet boundaries and analysing the files together gives the
//! analysis of the whole file: the same flows (endpoints, class, dialog, TLS and TCP facts)
//! and findings (kind, severity, evidence), every frame number mapped back to its packet in
//! the whole capture. Only flow ids and file names differ. The files' order on the command
//! line does not matter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use smtpaudit::capture::CaptureReader;

/// One packet as read, to be written again unchanged.
struct Pkt {
    ts_ns: i128,
    link: u32,
    data: Vec<u8>,
    orig_len: u32,
}

fn read_packets(path: &Path) -> Vec<Pkt> {
    let mut reader = CaptureReader::open(path.to_str().unwrap()).unwrap();
    let mut v = Vec::new();
    while let Ok(Some(f)) = reader.next_frame() {
        v.push(Pkt {
            ts_ns: f.ts.as_nanos(),
            link: f.link_type.0,
            data: f.data.to_vec(),
            orig_len: f.orig_len,
        });
    }
    v
}

/// Classic pcap with nanosecond timestamps (magic 0xa1b23c4d), so no capture time changes.
fn write_pcap(pkts: &[Pkt], path: &Path) {
    let link = pkts.first().map_or(1, |p| p.link);
    assert!(
        pkts.iter().all(|p| p.link == link),
        "{}: one link type per file",
        path.display()
    );
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&262_144u32.to_le_bytes());
    v.extend_from_slice(&link.to_le_bytes());
    for p in pkts {
        let secs = p.ts_ns.div_euclid(1_000_000_000);
        let nanos = p.ts_ns.rem_euclid(1_000_000_000);
        v.extend_from_slice(&(secs as u32).to_le_bytes());
        v.extend_from_slice(&(nanos as u32).to_le_bytes());
        v.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        v.extend_from_slice(&p.orig_len.to_le_bytes());
        v.extend_from_slice(&p.data);
    }
    std::fs::write(path, v).unwrap();
}

/// splitmix64.
fn rng(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whole-capture number of a frame `n` of capture `cap`.
fn whole(offsets: &BTreeMap<String, u64>, cap: &str, n: u64) -> u64 {
    offsets
        .get(cap)
        .copied()
        .unwrap_or_else(|| panic!("unknown capture {cap}"))
        + n
}

/// Every frame number in `v` (`frame`, `*_frame`, and "at frame N[ of FILE]" in notes) as a
/// number in the whole capture; `*_capture` fields name the file when it is not `home`.
fn map_frames(v: &mut Value, home: &str, offsets: &BTreeMap<String, u64>) {
    match v {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let is_frame = k == "frame" || k.ends_with("_frame");
                if is_frame && m[&k].is_u64() {
                    let cap = m
                        .get(&format!("{k}_capture"))
                        .and_then(Value::as_str)
                        .unwrap_or(home)
                        .to_string();
                    let n = m[&k].as_u64().unwrap();
                    m.insert(k.clone(), Value::from(whole(offsets, &cap, n)));
                    m.remove(&format!("{k}_capture"));
                } else if let Some(x) = m.get_mut(&k) {
                    map_frames(x, home, offsets);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| map_frames(x, home, offsets)),
        Value::String(s) => {
            if let Some(pos) = s.rfind(" at frame ") {
                let rest = &s[pos + 10..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let after = &rest[digits.len()..];
                let cap = after.strip_prefix(" of ").unwrap_or(home);
                if let Ok(n) = digits.parse::<u64>() {
                    *s = format!("{} at frame {}", &s[..pos], whole(offsets, cap, n));
                }
            }
        }
        _ => {}
    }
}

/// The analysis of a report in whole-capture terms: flows keyed by endpoints and start,
/// without ids and file names; findings with their flow's key instead of its id.
fn analysis(doc: &Value, offsets: &BTreeMap<String, u64>) -> Value {
    let mut key_of = BTreeMap::new();
    let mut flows = BTreeMap::new();
    for f in doc["flows"].as_array().unwrap() {
        let key = format!("{} -> {} at {}", f["client"], f["server"], f["start"]);
        key_of.insert(f["id"].as_str().unwrap().to_string(), key.clone());
        let mut f = f.clone();
        let home = f["capture"].as_str().unwrap().to_string();
        map_frames(&mut f, &home, offsets);
        let m = f.as_object_mut().unwrap();
        m.remove("id");
        m.remove("capture");
        flows.insert(key, f);
    }
    let mut findings = Vec::new();
    for x in doc["findings"].as_array().unwrap() {
        let mut x = x.clone();
        let home = x["capture"].as_str().unwrap().to_string();
        map_frames(&mut x, &home, offsets);
        let m = x.as_object_mut().unwrap();
        let flow = m.remove("flow").unwrap_or_default();
        m.remove("capture");
        let id = flow.as_str().unwrap_or("");
        m.insert(
            "flow".into(),
            Value::from(key_of.get(id).cloned().unwrap_or_default()),
        );
        // Related flows are named by id: compare what they point at.
        if let Some(Value::String(r)) = m
            .get_mut("evidence")
            .and_then(|e| e.get_mut("related_flow"))
        {
            *r = key_of.get(r.as_str()).cloned().unwrap_or_default();
        }
        findings.push(x);
    }
    findings.sort_by_key(|x| x.to_string());
    serde_json::json!({
        "flows": flows,
        "findings": findings,
        "summary": doc["summary"],
    })
}

fn run(paths: &[PathBuf]) -> Value {
    let (first, rest) = paths.split_first().unwrap();
    let rest: Vec<String> = rest
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let (doc, out) = common::run_json(first, &rest);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{paths:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    doc
}

/// Writes `pkts` cut before each index in `cuts` into `dir`, analyses the parts given in the
/// order `order` and checks the result against `want`.
fn check_split(
    name: &str,
    pkts: &[Pkt],
    cuts: &[usize],
    order_seed: u64,
    dir: &Path,
    want: &Value,
) {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(pkts.len());
    let mut parts = Vec::new();
    let mut offsets = BTreeMap::new();
    for (i, w) in bounds.windows(2).enumerate() {
        let path = dir.join(format!("{name}.part{i}.pcap"));
        write_pcap(&pkts[w[0]..w[1]], &path);
        offsets.insert(path.to_string_lossy().into_owned(), w[0] as u64);
        parts.push(path);
    }
    // Any order on the command line: the chain is ordered by first packet.
    let mut st = order_seed;
    for i in (1..parts.len()).rev() {
        let j = (rng(&mut st) % (i as u64 + 1)) as usize;
        parts.swap(i, j);
    }
    let doc = run(&parts);
    let captures = doc["captures"].as_array().unwrap();
    assert_eq!(captures.len(), bounds.len() - 1, "{name} {cuts:?}");
    for c in captures.iter().skip(1) {
        assert!(
            c["chained_to"].is_string(),
            "{name} cut at {cuts:?}: {} not chained",
            c["path"]
        );
    }
    let packets: u64 = captures
        .iter()
        .map(|c| c["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(packets, pkts.len() as u64);
    let got = analysis(&doc, &offsets);
    if got != *want {
        panic!(
            "{name} cut at {cuts:?}: the parts differ from the whole\nwhole: {}\nparts: {}",
            serde_json::to_string_pretty(want).unwrap(),
            serde_json::to_string_pretty(&got).unwrap()
        );
    }
    for p in &parts {
        std::fs::remove_file(p).unwrap();
    }
}

/// The boundaries where a cut keeps the parts in time order (a capture whose clock steps
/// back there would give overlapping files, which are independent by definition).
fn cuttable(pkts: &[Pkt]) -> Vec<usize> {
    (1..pkts.len())
        .filter(|&k| pkts[k].ts_ns >= pkts[k - 1].ts_ns)
        .collect()
}

#[test]
fn cutting_any_fixture_into_files_does_not_change_the_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = 0;
    for path in common::fixture_captures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let pkts = read_packets(&path);
        let whole_path = dir.path().join(format!("{name}.whole.pcap"));
        write_pcap(&pkts, &whole_path);
        let offsets = BTreeMap::from([(whole_path.to_string_lossy().into_owned(), 0)]);
        let want = analysis(&run(std::slice::from_ref(&whole_path)), &offsets);
        let points = cuttable(&pkts);
        // Two files: every boundary.
        for &k in &points {
            check_split(&name, &pkts, &[k], k as u64, dir.path(), &want);
            runs += 1;
        }
        // Three to five files at boundaries drawn at random (fixed seeds).
        let mut st = 0x5eed ^ pkts.len() as u64;
        for n in 3..=5usize {
            if points.len() < n - 1 {
                continue;
            }
            for _ in 0..4 {
                let mut cuts: Vec<usize> = Vec::new();
                while cuts.len() < n - 1 {
                    let k = points[(rng(&mut st) % points.len() as u64) as usize];
                    if !cuts.contains(&k) {
                        cuts.push(k);
                    }
                }
                cuts.sort_unstable();
                check_split(&name, &pkts, &cuts, rng(&mut st), dir.path(), &want);
                runs += 1;
            }
        }
    }
    assert!(runs > 100, "only {runs} splits checked");
}

/// The rotated fixture's files, in tcpdump's order (`FILE`, `FILE1`, `FILE2`, ...).
fn rotated() -> Vec<PathBuf> {
    let dir = common::fixtures().join("rotated");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort_by_key(|p| {
        let n = p.to_string_lossy().into_owned();
        let digits: String = n.chars().rev().take_while(char::is_ascii_digit).collect();
        (digits.len(), n)
    });
    assert!(v.len() >= 3, "{v:?}");
    v
}

#[test]
fn a_rotated_capture_is_one_capture_in_any_order() {
    let files = rotated();
    let dir = tempfile::tempdir().unwrap();
    let mut pkts = Vec::new();
    let mut offsets = BTreeMap::new();
    for f in &files {
        offsets.insert(f.to_string_lossy().into_owned(), pkts.len() as u64);
        pkts.extend(read_packets(f));
    }
    let whole_path = dir.path().join("whole.pcap");
    write_pcap(&pkts, &whole_path);
    let want = analysis(
        &run(std::slice::from_ref(&whole_path)),
        &BTreeMap::from([(whole_path.to_string_lossy().into_owned(), 0)]),
    );
    // Two connections continue into the next file; one sends its credentials there.
    assert_eq!(want["flows"].as_object().unwrap().len(), 3, "{want}");
    let mut reversed = files.clone();
    reversed.reverse();
    let first = run(&files);
    for order in [files.clone(), reversed] {
        let doc = run(&order);
        assert_eq!(doc, first, "the order of the files changed the report");
        assert_eq!(analysis(&doc, &offsets), want);
    }
    let spanning: Vec<&Value> = first["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["tcp"]["last_frame_capture"].is_string())
        .collect();
    assert_eq!(spanning.len(), 2, "{first}");
    let elsewhere = first["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| {
            let flow = first["flows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["id"] == x["flow"])
                .unwrap();
            x["capture"] != flow["capture"]
        })
        .expect("a finding in a later file than its flow's start");
    assert_eq!(elsewhere["kind"], "cleartext_credentials");
    // Each file keeps its own packet count and says which file it continues.
    let caps = first["captures"].as_array().unwrap();
    assert_eq!(caps[0]["chained_to"], Value::Null);
    assert_eq!(caps[1]["chained_to"], caps[0]["path"]);
    assert_eq!(caps[2]["chained_to"], caps[1]["path"]);
}

#[test]
fn overlapping_files_stay_independent() {
    let dir = tempfile::tempdir().unwrap();
    let pkts = read_packets(&common::fixtures().join("smtp-plain-auth-plain.pcap"));
    // Every other packet into each file: both span the whole session.
    let (a, b): (Vec<_>, Vec<_>) = pkts.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let a: Vec<Pkt> = a.into_iter().map(|(_, p)| p).collect();
    let b: Vec<Pkt> = b.into_iter().map(|(_, p)| p).collect();
    let (pa, pb) = (dir.path().join("a.pcap"), dir.path().join("b.pcap"));
    write_pcap(&a, &pa);
    write_pcap(&b, &pb);
    let doc = run(&[pa.clone(), pb.clone()]);
    for c in doc["captures"].as_array().unwrap() {
        assert_eq!(c["chained_to"], Value::Null, "{c}");
    }
    // One flow per file: the halves are analysed apart.
    assert_eq!(doc["flows"].as_array().unwrap().len(), 2, "{doc}");
    assert_eq!(run(&[pb, pa]), doc);
}
