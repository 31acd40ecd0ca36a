//! One TCP connection through the analyzer as the flow table drives it (classification by
//! ports and first bytes, role correction, SMTP, the STARTTLS hand-off, TLS, findings), then
//! into every report sink. Needs no capture reader, decoder or flow table, so it reaches the
//! analysis with far fewer wasted bytes than the `pipeline` target.
//!
//! Input: two header bytes, then a script (`src/lib.rs`).
//!
//! ```text
//! byte 0  bits 0-2 server port (25 465 587 2525 443 10025 80 40000)
//!         bits 3-4 how the table set roles (syn, syn-ack, port, first packet)
//!         bit 5    --reveal-secrets      bit 6  IPv6
//! byte 1  bits 0-2 close reason          bits 3-4 copies of the flow (1-3; brute force)
//! ```
//!
//! Checks: no panic, the table contract kept (no data after `Interest::Done`), and every
//! sink writes well-formed output (JSON parses, NDJSON/ECS one JSON value per line, text is
//! UTF-8).
#![no_main]

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use smtpaudit::analysis::{Analyzer, FinishedFlow};
use smtpaudit::cli::Config;
use smtpaudit::findings::bruteforce::BruteForceTracker;
use smtpaudit::flow::{
    CloseReason, DirStats, Endpoint, FlowHandler, FlowInfo, Interest, RoleSource, StreamEvent,
};
use smtpaudit::report::model::{CaptureRecord, Summary};
use smtpaudit::report::{Format, SinkOptions, make_sink};
use smtpaudit_fuzz::{Op, Script, meta};

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

fuzz_target!(|data: &[u8]| {
    let [h0, h1, ref script @ ..] = *data else {
        return;
    };
    let cfg = Config {
        reveal_secrets: h0 & 0x20 != 0,
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
        finished.extend(analyzer.take_finished());
    }
    assert!(finished.len() <= copies);
    write_all_sinks(&finished);
});

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
    };
    for format in [Format::Json, Format::Ndjson, Format::Ecs, Format::Text] {
        let out = Shared::default();
        let opts = SinkOptions {
            color: format == Format::Text,
            line_flush: false,
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
        }
    }
}

fn ok(r: io::Result<()>) {
    if let Err(e) = r {
        panic!("sink failed writing to memory: {e}");
    }
}
