//! Model-based check of reassembly: the model is the original byte stream. Any
//! re-segmentation, duplication (with other boundaries) and reordering that stays within the
//! out-of-order limits must come out of the flow table as exactly that stream, with no gap.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use smtpaudit::decode::{TcpFlags, TcpSegment};
use smtpaudit::flow::{
    CloseReason, Direction, EventMeta, FlowConfig, FlowHandler, FlowInfo, FlowTable, Interest,
    StreamEvent,
};
use smtpaudit::time::Timestamp;

#[derive(Default)]
struct Collect {
    bytes: Vec<u8>,
    /// Gaps are written into `layout` as `None` bytes, data as `Some`.
    layout: Vec<Option<u8>>,
    gaps: u64,
    fin_after_bytes: Option<usize>,
    events_after_fin: usize,
    closes: Vec<CloseReason>,
}

impl FlowHandler for Collect {
    type State = ();
    fn open(&mut self, _info: &FlowInfo, _meta: EventMeta) {}
    fn event(
        &mut self,
        _state: &mut (),
        _info: &FlowInfo,
        dir: Direction,
        ev: StreamEvent<'_>,
        _meta: EventMeta,
    ) -> Interest {
        assert_eq!(dir, Direction::ToServer, "only the client sends");
        if self.fin_after_bytes.is_some() {
            self.events_after_fin += 1;
        }
        match ev {
            StreamEvent::Data(d) => {
                self.bytes.extend_from_slice(d);
                self.layout.extend(d.iter().map(|b| Some(*b)));
            }
            StreamEvent::Gap(n) => {
                self.gaps += 1;
                self.layout
                    .extend(std::iter::repeat_n(None, usize::try_from(n).unwrap_or(0)));
            }
            StreamEvent::Fin => self.fin_after_bytes = Some(self.bytes.len()),
            StreamEvent::Reset => {}
        }
        Interest::Bytes
    }
    fn close(&mut self, _state: (), _info: &FlowInfo, reason: CloseReason) {
        self.closes.push(reason);
    }
}

/// One segment of the stream: offset and length in the original bytes.
type Piece = (usize, usize);

/// The stream cut at lengths taken cyclically from `lens`, plus the extra copies `dups`
/// (clipped to the stream), in an order chosen by the caller.
fn pieces(n: usize, lens: &[usize], dups: &[Piece]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < n {
        let len = lens.get(i % lens.len().max(1)).copied().unwrap_or(1).max(1);
        let len = len.min(n - at);
        out.push((at, len));
        at += len;
        i += 1;
    }
    for &(start, len) in dups {
        let start = start % n;
        let len = len.clamp(1, n - start);
        out.push((start, len));
    }
    out
}

fn scenario() -> impl Strategy<Value = (Vec<u8>, u32, bool, Vec<Piece>)> {
    let isn = prop_oneof![any::<u32>(), (u32::MAX - 4000)..=u32::MAX];
    (
        prop::collection::vec(any::<u8>(), 1..3000),
        isn,
        any::<bool>(),
        prop::collection::vec(1usize..400, 1..20),
        prop::collection::vec((0usize..3000, 1usize..500), 0..12),
    )
        .prop_flat_map(|(data, isn, v6, lens, dups)| {
            let order = pieces(data.len(), &lens, &dups);
            (Just(data), Just(isn), Just(v6), Just(order).prop_shuffle())
        })
}

fn segment(src: IpAddr, dst: IpAddr, seq: u32, flags: u8, payload: &[u8]) -> TcpSegment<'_> {
    cut_segment(src, dst, seq, flags, payload, 0)
}

fn cut_segment(
    src: IpAddr,
    dst: IpAddr,
    seq: u32,
    flags: u8,
    payload: &[u8],
    missing_payload: u32,
) -> TcpSegment<'_> {
    TcpSegment {
        src,
        dst,
        src_port: 40000,
        dst_port: 25,
        seq,
        ack: 1,
        flags: TcpFlags(flags),
        payload,
        missing_payload,
    }
}

fn run(data: &[u8], isn: u32, v6: bool, order: &[Piece]) -> (Collect, u64) {
    let config = FlowConfig {
        max_ooo_bytes_per_flow: 1 << 24,
        max_ooo_bytes_total: 1 << 24,
        ..FlowConfig::default()
    };
    run_with(data, isn, v6, order, config, usize::MAX)
}

/// Feeds the pieces; each piece's capture is cut to at most `snap` bytes.
fn run_with(
    data: &[u8],
    isn: u32,
    v6: bool,
    order: &[Piece],
    config: FlowConfig,
    snap: usize,
) -> (Collect, u64) {
    let (client, server): (IpAddr, IpAddr) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        )
    };
    let seg = |seq: u32, flags: u8, payload| segment(client, server, seq, flags, payload);
    let mut table = FlowTable::new(config, Collect::default());
    let mut frame = 0;
    let mut meta = || {
        frame += 1;
        EventMeta {
            ts: Timestamp::new(1_700_000_000, frame as u32),
            frame,
        }
    };
    table.process(&seg(isn, TcpFlags::SYN, b""), meta());
    for &(start, len) in order {
        let payload = data.get(start..start + len).unwrap_or(&[]);
        let seq = isn.wrapping_add(1).wrapping_add(start as u32);
        let mut flags = TcpFlags::ACK | TcpFlags::PSH;
        if start + len == data.len() {
            flags |= TcpFlags::FIN;
        }
        let kept = payload.len().min(snap);
        let missing = u32::try_from(payload.len() - kept).unwrap_or(0);
        let kept = payload.get(..kept).unwrap_or(&[]);
        table.process(
            &cut_segment(client, server, seq, flags, kept, missing),
            meta(),
        );
    }
    table.finish_all();
    let gaps = table.stats().gaps;
    (table.into_handler(), gaps)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/reassembly_props.txt",
            ),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_resegmentation_reordering_and_duplication_reassembles_exactly(
        (data, isn, v6, order) in scenario()
    ) {
        let (got, table_gaps) = run(&data, isn, v6, &order);
        prop_assert_eq!(got.gaps, 0);
        prop_assert_eq!(table_gaps, 0);
        prop_assert!(got.bytes == data, "reassembled {} bytes, expected {}", got.bytes.len(), data.len());
        prop_assert_eq!(got.fin_after_bytes, Some(data.len()));
        prop_assert_eq!(got.events_after_fin, 0);
        prop_assert_eq!(got.closes, vec![CloseReason::EndOfInput]);
    }

    /// Under tight limits and snap-length cuts bytes may be lost, but never misplaced: every
    /// delivered byte sits at its offset in the original, and data plus gaps cover the stream
    /// exactly once.
    #[test]
    fn limits_and_cuts_lose_bytes_but_never_misplace_them(
        (data, isn, v6, order) in scenario(),
        per_dir in 0usize..2000,
        total in 0usize..3000,
        snap in 1usize..500,
    ) {
        let config = FlowConfig {
            max_ooo_bytes_per_flow: per_dir,
            max_ooo_bytes_total: total,
            ..FlowConfig::default()
        };
        let (got, _) = run_with(&data, isn, v6, &order, config, snap);
        prop_assert_eq!(got.layout.len(), data.len());
        for (i, (seen, real)) in got.layout.iter().zip(&data).enumerate() {
            if let Some(b) = seen {
                prop_assert_eq!(b, real, "byte {} misplaced", i);
            }
        }
        prop_assert_eq!(got.fin_after_bytes.is_some(), true);
        prop_assert_eq!(got.events_after_fin, 0);
    }
}
