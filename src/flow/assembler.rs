//! Per-direction reassembly by sequence number.
//!
//! Sequence numbers are mapped to 64-bit stream offsets with serial arithmetic relative to
//! the next expected byte (RFC 1982 §3, as RFC 9293 §3.4 requires for TCP comparisons), so
//! 32-bit wraparound never reaches the buffering code. Offset 0 is the first byte after the
//! SYN, or the first byte of the first segment seen when the handshake was not captured: the
//! unseen beginning of a mid-stream capture is not a hole in what we saw, so no `Gap` is
//! reported for it (`DirStats::syn == false` tells the analyzer the start is missing).
//!
//! Invariants kept by every method of [`StreamAssembler`]:
//! - every held chunk starts after `next`, chunks never overlap, and `held_cost` is the sum of
//!   their costs (the same amount is reserved in the table-wide budget);
//! - `Interest::Done` holds nothing.
//!
//! Overlap policy: **first data wins**. Bytes already delivered or held are never replaced by
//! a later segment covering the same offsets. A later copy that differs from held bytes is
//! counted in `conflicting_overlaps` (an evasion or corruption hint); delivered bytes are not
//! kept (zero-copy), so a differing retransmission of them can only be counted as a
//! retransmission.

use std::collections::BTreeMap;

use super::{DirStats, FlowConfig, FlowTableStats, Interest, StreamEvent};

/// Where an assembler sends its events and counts what it does.
///
/// The flow table implements it over the analyzer; tests implement it over a `Vec`.
pub trait StreamSink {
    /// Delivers one event; the answer says whether more `Data`/`Gap` is wanted.
    fn event(&mut self, ev: StreamEvent<'_>) -> Interest;
    /// Counters of the direction being reassembled.
    fn stats(&mut self) -> &mut DirStats;
    /// Table-wide counters.
    fn counters(&mut self) -> &mut FlowTableStats;
    /// Reserves `cost` bytes of the table-wide out-of-order budget; false when it is spent.
    fn reserve(&mut self, cost: usize) -> bool;
    /// Gives back bytes reserved earlier.
    fn release(&mut self, cost: usize);
}

/// Accounting cost of holding one chunk beyond its payload, so a flood of tiny segments is
/// bounded in memory (tree node and vector header), not only in payload bytes.
pub const CHUNK_OVERHEAD: usize = 64;

/// Out-of-order bytes held for later: captured bytes followed by bytes the snap length cut.
#[derive(Debug)]
struct Chunk {
    data: Vec<u8>,
    missing: u64,
    cost: usize,
}

impl Chunk {
    fn len(&self) -> u64 {
        self.data.len() as u64 + self.missing
    }
}

/// Part of a segment being placed: captured bytes, or a run cut by the snap length.
#[derive(Clone, Copy, Debug)]
enum Piece<'a> {
    Data(&'a [u8]),
    Missing(u64),
}

impl<'a> Piece<'a> {
    fn len(&self) -> u64 {
        match self {
            Piece::Data(d) => d.len() as u64,
            Piece::Missing(n) => *n,
        }
    }

    /// Splits after `n` bytes (`n` is clamped to the length).
    fn split(self, n: u64) -> (Piece<'a>, Piece<'a>) {
        match self {
            Piece::Data(d) => {
                let at = usize::try_from(n).unwrap_or(usize::MAX).min(d.len());
                let (a, b) = d.split_at(at);
                (Piece::Data(a), Piece::Data(b))
            }
            Piece::Missing(m) => {
                let a = n.min(m);
                (Piece::Missing(a), Piece::Missing(m - a))
            }
        }
    }
}

/// How the direction's sequence space was anchored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Anchor {
    /// Nothing seen yet.
    None,
    /// SYN (or SYN-ACK) seen with this initial sequence number.
    Syn(u32),
    /// First segment seen mid-stream.
    Midstream,
}

/// What a SYN told an already running assembler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynOutcome {
    /// First SYN: the direction is now anchored at its ISN.
    Anchored,
    /// Same ISN as before: a retransmitted SYN.
    Retransmission,
    /// Different ISN, or the direction was anchored mid-stream: not this connection's SYN.
    Mismatch,
}

/// Which limit made the assembler give up waiting for a hole.
#[derive(Clone, Copy, Debug)]
enum CapHit {
    Direction,
    Total,
}

/// What happened to one segment's bytes, for the per-segment counters.
#[derive(Clone, Copy, Debug, Default)]
struct SegFlags {
    overlapped: bool,
    conflict: bool,
}

/// Reassembles one direction of a TCP connection.
#[derive(Debug)]
pub struct StreamAssembler {
    anchor: Anchor,
    /// Sequence number of stream offset 0.
    base: u32,
    /// Offset of the next byte to deliver (everything before it was delivered or declared a gap).
    next: u64,
    /// Offset the FIN occupies (one past the last data byte).
    fin_at: Option<u64>,
    fin_delivered: bool,
    interest: Interest,
    held: BTreeMap<u64, Chunk>,
    held_cost: usize,
    max_held: usize,
}

impl Default for StreamAssembler {
    fn default() -> Self {
        StreamAssembler::new(FlowConfig::default().max_ooo_bytes_per_flow)
    }
}

impl StreamAssembler {
    /// An assembler holding at most `max_held` bytes (payload plus [`CHUNK_OVERHEAD`] per
    /// chunk) of out-of-order data.
    pub fn new(max_held: usize) -> Self {
        StreamAssembler {
            anchor: Anchor::None,
            base: 0,
            next: 0,
            fin_at: None,
            fin_delivered: false,
            interest: Interest::Bytes,
            held: BTreeMap::new(),
            held_cost: 0,
            max_held,
        }
    }

    /// The ISN, when this direction's SYN was seen.
    pub fn isn(&self) -> Option<u32> {
        match self.anchor {
            Anchor::Syn(isn) => Some(isn),
            _ => None,
        }
    }

    /// Sequence number of the next byte expected, once anything anchored the direction.
    pub fn expected_seq(&self) -> Option<u32> {
        match self.anchor {
            Anchor::None => None,
            _ => Some(self.base.wrapping_add(self.next as u32)),
        }
    }

    /// True once a FIN was seen (delivered or not).
    pub fn fin_seen(&self) -> bool {
        self.fin_at.is_some()
    }

    pub fn fin_delivered(&self) -> bool {
        self.fin_delivered
    }

    pub fn interest(&self) -> Interest {
        self.interest
    }

    /// Out-of-order cost currently held.
    pub fn held_cost(&self) -> usize {
        self.held_cost
    }

    /// Stream offset of the next byte to deliver.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// A SYN with initial sequence number `isn`. The SYN takes one sequence number
    /// (RFC 9293 §3.4), so data starts at `isn + 1`.
    pub fn syn(&mut self, isn: u32) -> SynOutcome {
        match self.anchor {
            Anchor::None => {
                self.anchor = Anchor::Syn(isn);
                self.base = isn.wrapping_add(1);
                self.next = 0;
                SynOutcome::Anchored
            }
            Anchor::Syn(old) if old == isn => SynOutcome::Retransmission,
            _ => SynOutcome::Mismatch,
        }
    }

    /// How far into this direction's stream the peer's `ack` reaches (a FIN counts as one
    /// byte); `None` before the direction has a sequence anchor.
    pub fn acked_offset(&self, ack: u32) -> Option<u64> {
        if self.anchor == Anchor::None {
            return None;
        }
        u64::try_from(self.offset(ack)).ok()
    }

    /// Stream offset of `seq`, negative when it lies before offset 0.
    fn offset(&self, seq: u32) -> i64 {
        let next_seq = self.base.wrapping_add(self.next as u32);
        self.next as i64 + i64::from(seq.wrapping_sub(next_seq) as i32)
    }

    /// One segment of this direction: `seq` is the sequence number of its first payload byte
    /// (after the SYN's, for a SYN), `missing` the bytes the snap length cut after `payload`,
    /// `fin` whether it carries FIN (which follows all its bytes).
    #[inline]
    pub fn segment<S: StreamSink>(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        fin: bool,
        sink: &mut S,
    ) {
        // The common case, kept small enough to inline: the next bytes in order, nothing held,
        // no FIN anywhere, the analyzer still reading.
        if self.anchor != Anchor::None
            && self.base.wrapping_add(self.next as u32) == seq
            && missing == 0
            && !fin
            && self.fin_at.is_none()
            && self.interest == Interest::Bytes
            && self.held.is_empty()
        {
            self.deliver(payload, sink);
            return;
        }
        self.segment_general(seq, payload, missing, fin, sink);
    }

    #[inline(never)]
    fn segment_general<S: StreamSink>(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        fin: bool,
        sink: &mut S,
    ) {
        if self.anchor == Anchor::None {
            self.anchor = Anchor::Midstream;
            self.base = seq;
            self.next = 0;
        }
        let mut flags = SegFlags::default();
        let mut data = payload;
        let mut missing = u64::from(missing);
        let rel = self.offset(seq);
        let start = if rel < 0 {
            // Bytes before offset 0 (before the SYN, or before the first segment of a
            // mid-stream capture) were never part of what we deliver.
            let skip = rel.unsigned_abs();
            let from_data = usize::try_from(skip).unwrap_or(usize::MAX).min(data.len());
            data = data.get(from_data..).unwrap_or(&[]);
            missing = missing.saturating_sub(skip - from_data as u64);
            if from_data > 0 || skip > from_data as u64 {
                flags.overlapped = true;
            }
            0
        } else {
            rel.unsigned_abs()
        };
        let mut end = start + data.len() as u64 + missing;

        if let Some(f) = self.fin_at {
            if end > f {
                // RFC 9293 §3.10.7.4: nothing after the FIN's sequence number is data.
                sink.counters().data_after_fin += 1;
                let keep = f.saturating_sub(start);
                let keep_data = usize::try_from(keep).unwrap_or(usize::MAX).min(data.len());
                data = data.get(..keep_data).unwrap_or(&[]);
                missing = missing.min(keep - keep_data as u64);
                end = start + data.len() as u64 + missing;
            }
        } else if fin && end >= self.next {
            self.set_fin(end, sink);
        }

        if data.is_empty() && missing == 0 {
            if flags.overlapped {
                sink.stats().retransmissions += 1;
            }
            self.maybe_fin(sink);
            return;
        }

        if self.interest == Interest::Done {
            if end > self.next {
                sink.stats().skipped_bytes += end - self.next;
                self.next = end;
            } else {
                sink.stats().retransmissions += 1;
            }
            self.maybe_fin(sink);
            return;
        }

        if start > self.next {
            sink.stats().out_of_order_segments += 1;
        }

        // In order with nothing held: hand the packet's own bytes straight over.
        if start == self.next && missing == 0 && self.held.is_empty() {
            self.deliver(data, sink);
        } else {
            self.place(start, Piece::Data(data), &mut flags, sink);
            self.place(
                start + data.len() as u64,
                Piece::Missing(missing),
                &mut flags,
                sink,
            );
        }
        if self.interest == Interest::Done && end > self.next {
            sink.stats().skipped_bytes += end - self.next;
            self.next = end;
        }
        if flags.overlapped {
            sink.stats().retransmissions += 1;
        }
        if flags.conflict {
            sink.stats().conflicting_overlaps += 1;
            sink.counters().conflicting_overlaps += 1;
        }
        self.maybe_fin(sink);
    }

    /// True when a peer ACK could reveal a gap: something (data or the FIN) waits past a hole.
    #[inline]
    pub fn awaits_ack(&self) -> bool {
        self.anchor != Anchor::None
            && self.interest == Interest::Bytes
            && (!self.held.is_empty() || self.fin_at.is_some_and(|f| f > self.next))
    }

    /// The peer acknowledged `ack` of this direction. Bytes it acknowledged that we never saw
    /// were lost in capture, so a hole below the ACK with data (or the FIN) pending past it is
    /// declared a gap. The ACK never delivers data by itself.
    pub fn peer_ack<S: StreamSink>(&mut self, ack: u32, sink: &mut S) {
        if !self.awaits_ack() {
            return;
        }
        let acked = self.offset(ack);
        while acked > self.next as i64 && self.interest == Interest::Bytes {
            let pending = match (self.held.keys().next(), self.fin_at) {
                (Some(&k), _) => k,
                (None, Some(f)) if f > self.next && !self.fin_delivered => f,
                _ => break,
            };
            let target = pending.min(acked.unsigned_abs());
            self.gap(target - self.next, sink);
            self.drain(sink);
            self.maybe_fin(sink);
        }
    }

    /// The flow is ending: every remaining hole becomes a gap, held data is delivered, and the
    /// FIN if one was seen.
    pub fn flush<S: StreamSink>(&mut self, sink: &mut S) {
        while self.interest == Interest::Bytes {
            let Some(&k) = self.held.keys().next() else {
                break;
            };
            self.gap(k - self.next, sink);
            self.drain(sink);
        }
        if self.interest == Interest::Bytes {
            if let Some(f) = self.fin_at {
                if f > self.next {
                    self.gap(f - self.next, sink);
                }
            }
        }
        self.maybe_fin(sink);
        self.release_all(sink);
    }

    /// The sender reset the connection.
    pub fn reset<S: StreamSink>(&mut self, sink: &mut S) {
        sink.event(StreamEvent::Reset);
    }

    /// Drops everything held (returning the budget), e.g. when the analyzer lost interest.
    pub fn release_all<S: StreamSink>(&mut self, sink: &mut S) {
        if self.held_cost > 0 {
            sink.release(self.held_cost);
        }
        self.held.clear();
        self.held_cost = 0;
    }

    fn set_fin<S: StreamSink>(&mut self, f: u64, sink: &mut S) {
        self.fin_at = Some(f);
        // Held bytes at or past the FIN were never part of the stream.
        let beyond = self.held.split_off(&f);
        if !beyond.is_empty() {
            sink.counters().data_after_fin += beyond.len() as u64;
            let cost: usize = beyond.values().map(|c| c.cost).sum();
            self.held_cost -= cost;
            sink.release(cost);
        }
        if let Some((&k, last)) = self.held.iter_mut().next_back() {
            let end = k + last.len();
            if end > f {
                sink.counters().data_after_fin += 1;
                let keep = f - k;
                let keep_data = usize::try_from(keep)
                    .unwrap_or(usize::MAX)
                    .min(last.data.len());
                let dropped = last.data.len() - keep_data;
                last.data.truncate(keep_data);
                last.missing = last.missing.min(keep - keep_data as u64);
                let give = dropped.min(last.cost);
                last.cost -= give;
                self.held_cost -= give;
                sink.release(give);
            }
        }
    }

    /// Places a piece that starts at `cur >= 0`: skips what was already delivered or held
    /// (first data wins), delivers what is now in order, holds the rest.
    fn place<S: StreamSink>(
        &mut self,
        mut cur: u64,
        mut piece: Piece<'_>,
        flags: &mut SegFlags,
        sink: &mut S,
    ) {
        while piece.len() > 0 && self.interest == Interest::Bytes {
            if cur < self.next {
                let n = (self.next - cur).min(piece.len());
                piece = piece.split(n).1;
                cur += n;
                flags.overlapped = true;
                continue;
            }
            if let Some((&k, chunk)) = self.held.range(..=cur).next_back() {
                let chunk_end = k + chunk.len();
                if chunk_end > cur {
                    let n = (chunk_end - cur).min(piece.len());
                    if let Piece::Data(d) = piece {
                        let at = usize::try_from(cur - k).unwrap_or(usize::MAX);
                        let held = chunk.data.get(at..).unwrap_or(&[]);
                        let m = held.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                        if d.get(..m) != held.get(..m) {
                            flags.conflict = true;
                        }
                    }
                    piece = piece.split(n).1;
                    cur += n;
                    flags.overlapped = true;
                    continue;
                }
            }
            let room = self
                .held
                .range(cur.saturating_add(1)..)
                .next()
                .map_or(u64::MAX, |(&k, _)| k - cur);
            let (head, rest) = piece.split(room);
            let n = head.len();
            if cur == self.next {
                self.take(head, sink);
                self.drain(sink);
            } else {
                self.hold(cur, head, sink);
            }
            cur += n;
            piece = rest;
        }
    }

    /// Holds `head` (which lies in a hole starting after `next`), giving up on the oldest
    /// hole while a cap is reached.
    fn hold<S: StreamSink>(&mut self, cur: u64, head: Piece<'_>, sink: &mut S) {
        loop {
            if self.interest == Interest::Done {
                return;
            }
            if self.next == cur {
                self.take(head, sink);
                self.drain(sink);
                return;
            }
            let merge_into = match head {
                Piece::Data(_) => self
                    .held
                    .range(..cur)
                    .next_back()
                    .filter(|(k, c)| **k + c.len() == cur && c.missing == 0)
                    .map(|(&k, _)| k),
                Piece::Missing(_) => None,
            };
            let cost = match (head, merge_into) {
                (Piece::Data(d), Some(_)) => d.len(),
                (Piece::Data(d), None) => d.len() + CHUNK_OVERHEAD,
                (Piece::Missing(_), _) => CHUNK_OVERHEAD,
            };
            let hit = if self.held_cost + cost > self.max_held {
                Some(CapHit::Direction)
            } else if !sink.reserve(cost) {
                Some(CapHit::Total)
            } else {
                None
            };
            let Some(hit) = hit else {
                self.held_cost += cost;
                match (head, merge_into.and_then(|k| self.held.get_mut(&k))) {
                    (Piece::Data(d), Some(prev)) => {
                        prev.data.extend_from_slice(d);
                        prev.cost += cost;
                    }
                    (Piece::Data(d), None) => {
                        let chunk = Chunk {
                            data: d.to_vec(),
                            missing: 0,
                            cost,
                        };
                        self.held.insert(cur, chunk);
                    }
                    (Piece::Missing(m), _) => {
                        let chunk = Chunk {
                            data: Vec::new(),
                            missing: m,
                            cost,
                        };
                        self.held.insert(cur, chunk);
                    }
                }
                return;
            };
            // Stop waiting for the oldest hole: it becomes a gap and what follows it is
            // delivered, until the new piece fits or is itself in order.
            let target = match self.held.keys().next() {
                Some(&k) if k < cur => k,
                _ => cur,
            };
            let lost = target - self.next;
            let counters = sink.counters();
            match hit {
                CapHit::Direction => {
                    counters.ooo_flow_cap_hits += 1;
                    counters.ooo_bytes_dropped_flow_cap += lost;
                }
                CapHit::Total => {
                    counters.ooo_total_cap_hits += 1;
                    counters.ooo_bytes_dropped_total_cap += lost;
                }
            }
            self.gap(lost, sink);
            self.drain(sink);
        }
    }

    /// Delivers held chunks while the first one starts at `next`.
    fn drain<S: StreamSink>(&mut self, sink: &mut S) {
        while self.interest == Interest::Bytes {
            let Some(entry) = self.held.first_entry() else {
                return;
            };
            if *entry.key() != self.next {
                return;
            }
            let chunk = entry.remove();
            let chunk_end = self.next + chunk.len();
            self.held_cost -= chunk.cost;
            sink.release(chunk.cost);
            self.deliver(&chunk.data, sink);
            if self.interest == Interest::Bytes {
                self.gap(chunk.missing, sink);
            } else {
                self.next = self.next.max(chunk_end);
            }
        }
    }

    fn take<S: StreamSink>(&mut self, piece: Piece<'_>, sink: &mut S) {
        match piece {
            Piece::Data(d) => self.deliver(d, sink),
            Piece::Missing(m) => self.gap(m, sink),
        }
    }

    fn deliver<S: StreamSink>(&mut self, data: &[u8], sink: &mut S) {
        if data.is_empty() {
            return;
        }
        self.next += data.len() as u64;
        sink.stats().delivered_bytes += data.len() as u64;
        if sink.event(StreamEvent::Data(data)) == Interest::Done {
            self.lose_interest(sink);
        }
    }

    fn gap<S: StreamSink>(&mut self, len: u64, sink: &mut S) {
        if len == 0 {
            return;
        }
        self.next += len;
        let stats = sink.stats();
        stats.gaps += 1;
        stats.gap_bytes += len;
        sink.counters().gaps += 1;
        if sink.event(StreamEvent::Gap(len)) == Interest::Done {
            self.lose_interest(sink);
        }
    }

    fn lose_interest<S: StreamSink>(&mut self, sink: &mut S) {
        self.interest = Interest::Done;
        // Held bytes the analyzer will never read are skipped, not delivered.
        if let Some((&k, last)) = self.held.iter().next_back() {
            let end = k + last.len();
            sink.stats().skipped_bytes += end - self.next;
            self.next = end;
        }
        self.release_all(sink);
    }

    fn maybe_fin<S: StreamSink>(&mut self, sink: &mut S) {
        if self.fin_delivered {
            return;
        }
        let ready = match self.fin_at {
            Some(f) => f == self.next || self.interest == Interest::Done,
            None => false,
        };
        if ready {
            self.fin_delivered = true;
            sink.event(StreamEvent::Fin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Data(Vec<u8>),
        Gap(u64),
        Fin,
        Reset,
    }

    /// Records events; answers `Done` once `done_after` bytes were delivered.
    #[derive(Default)]
    struct VecSink {
        events: Vec<Ev>,
        /// Address of each delivered slice, to prove the in-order path does not copy.
        ptrs: Vec<usize>,
        stats: DirStats,
        counters: FlowTableStats,
        used: usize,
        max_total: Option<usize>,
        done_after: Option<u64>,
        delivered: u64,
    }

    impl StreamSink for VecSink {
        fn event(&mut self, ev: StreamEvent<'_>) -> Interest {
            self.events.push(match ev {
                StreamEvent::Data(d) => {
                    self.ptrs.push(d.as_ptr() as usize);
                    self.delivered += d.len() as u64;
                    Ev::Data(d.to_vec())
                }
                StreamEvent::Gap(n) => Ev::Gap(n),
                StreamEvent::Fin => Ev::Fin,
                StreamEvent::Reset => Ev::Reset,
            });
            match self.done_after {
                Some(n) if self.delivered >= n => Interest::Done,
                _ => Interest::Bytes,
            }
        }
        fn stats(&mut self) -> &mut DirStats {
            &mut self.stats
        }
        fn counters(&mut self) -> &mut FlowTableStats {
            &mut self.counters
        }
        fn reserve(&mut self, cost: usize) -> bool {
            if self.used + cost > self.max_total.unwrap_or(usize::MAX) {
                return false;
            }
            self.used += cost;
            true
        }
        fn release(&mut self, cost: usize) {
            self.used -= cost;
        }
    }

    impl VecSink {
        /// Data events merged, so tests compare streams regardless of how they were cut.
        fn merged(&self) -> Vec<Ev> {
            let mut out: Vec<Ev> = Vec::new();
            for ev in &self.events {
                match (out.last_mut(), ev) {
                    (Some(Ev::Data(prev)), Ev::Data(d)) => prev.extend_from_slice(d),
                    _ => out.push(ev.clone()),
                }
            }
            out
        }
    }

    fn data(s: &[u8]) -> Ev {
        Ev::Data(s.to_vec())
    }

    const ISN: u32 = 1000;

    fn synced() -> (StreamAssembler, VecSink) {
        let mut a = StreamAssembler::new(1 << 20);
        assert_eq!(a.syn(ISN), SynOutcome::Anchored);
        (a, VecSink::default())
    }

    #[test]
    fn in_order_data_is_passed_through_without_copying() {
        let (mut a, mut s) = synced();
        let p1 = b"EHLO a\r\n".to_vec();
        let p2 = b"MAIL FROM:<x>\r\n".to_vec();
        a.segment(ISN + 1, &p1, 0, false, &mut s);
        a.segment(ISN + 1 + p1.len() as u32, &p2, 0, false, &mut s);
        assert_eq!(s.events, vec![data(&p1), data(&p2)]);
        assert_eq!(s.ptrs, vec![p1.as_ptr() as usize, p2.as_ptr() as usize]);
        assert_eq!(s.stats.delivered_bytes, (p1.len() + p2.len()) as u64);
        assert_eq!(a.held_cost(), 0);
    }

    #[test]
    fn syn_takes_one_sequence_number() {
        let (mut a, mut s) = synced();
        // A segment at the ISN itself overlaps the SYN: only its second byte is data.
        a.segment(ISN, b"XA", 0, false, &mut s);
        assert_eq!(s.events, vec![data(b"A")]);
        assert_eq!(a.syn(ISN), SynOutcome::Retransmission);
        assert_eq!(a.syn(ISN + 7), SynOutcome::Mismatch);
    }

    #[test]
    fn out_of_order_held_until_hole_fills() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1 + 4, b"EFGH", 0, false, &mut s);
        a.segment(ISN + 1 + 8, b"IJ", 0, false, &mut s);
        assert!(s.events.is_empty());
        assert_eq!(s.stats.out_of_order_segments, 2);
        // Adjacent held segments are merged into one chunk.
        assert_eq!(a.held_cost(), 6 + CHUNK_OVERHEAD);
        assert_eq!(s.used, a.held_cost());
        a.segment(ISN + 1, b"ABCD", 0, false, &mut s);
        assert_eq!(s.events, vec![data(b"ABCD"), data(b"EFGHIJ")]);
        assert_eq!(a.held_cost(), 0);
        assert_eq!(s.used, 0);
        assert_eq!(s.stats.gaps, 0);
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1, b"ABCD", 0, false, &mut s);
        a.segment(ISN + 1, b"ABCD", 0, false, &mut s);
        a.segment(ISN + 1 + 6, b"GH", 0, false, &mut s);
        a.segment(ISN + 1 + 6, b"GH", 0, false, &mut s);
        a.segment(ISN + 1 + 2, b"CDEF", 0, false, &mut s);
        assert_eq!(s.merged(), vec![data(b"ABCDEFGH")]);
        assert_eq!(s.stats.retransmissions, 3);
        assert_eq!(s.stats.conflicting_overlaps, 0);
    }

    #[test]
    fn overlap_with_same_bytes_is_not_a_conflict() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1 + 4, b"EFGH", 0, false, &mut s);
        a.segment(ISN + 1 + 2, b"CDEFGHIJ", 0, false, &mut s);
        a.segment(ISN + 1, b"AB", 0, false, &mut s);
        assert_eq!(s.merged(), vec![data(b"ABCDEFGHIJ")]);
        assert_eq!(s.stats.conflicting_overlaps, 0);
        assert_eq!(s.counters.conflicting_overlaps, 0);
    }

    #[test]
    fn overlap_with_different_bytes_keeps_first_and_counts_conflict() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1 + 4, b"EFGH", 0, false, &mut s);
        a.segment(ISN + 1 + 2, b"CDxxxxIJ", 0, false, &mut s);
        a.segment(ISN + 1, b"AB", 0, false, &mut s);
        assert_eq!(s.merged(), vec![data(b"ABCDEFGHIJ")]);
        assert_eq!(s.stats.conflicting_overlaps, 1);
        assert_eq!(s.counters.conflicting_overlaps, 1);
    }

    #[test]
    fn hole_never_filled_becomes_gap_at_flush() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1, b"AB", 0, false, &mut s);
        a.segment(ISN + 1 + 5, b"FG", 0, false, &mut s);
        a.flush(&mut s);
        assert_eq!(s.events, vec![data(b"AB"), Ev::Gap(3), data(b"FG")]);
        assert_eq!(
            (s.stats.gaps, s.stats.gap_bytes, s.counters.gaps),
            (1, 3, 1)
        );
        assert_eq!(s.used, 0);
    }

    #[test]
    fn fin_behind_a_hole_waits_then_flush_declares_gap() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1, b"AB", 0, false, &mut s);
        a.segment(ISN + 1 + 4, b"EF", 0, true, &mut s);
        assert_eq!(s.events, vec![data(b"AB")]);
        a.segment(ISN + 1 + 2, b"CD", 0, false, &mut s);
        assert_eq!(
            s.events,
            vec![data(b"AB"), data(b"CD"), data(b"EF"), Ev::Fin]
        );
    }

    #[test]
    fn sequence_wraparound() {
        let isn = u32::MAX - 3;
        let mut a = StreamAssembler::new(1 << 20);
        let mut s = VecSink::default();
        a.syn(isn);
        // Offsets 0..3 are u32::MAX-2..=u32::MAX, offset 3 is seq 0.
        a.segment(isn.wrapping_add(1 + 6), b"GH", 0, false, &mut s); // seq 3: held across the wrap
        a.segment(isn.wrapping_add(1), b"ABCD", 0, false, &mut s); // crosses the wrap
        a.segment(isn.wrapping_add(1 + 4), b"EF", 0, false, &mut s); // seq 1
        a.segment(isn.wrapping_add(1 + 8), b"IJ", 0, true, &mut s);
        assert_eq!(s.merged(), vec![data(b"ABCDEFGHIJ"), Ev::Fin]);
        assert_eq!(s.stats.gaps, 0);
        assert_eq!(a.next_offset(), 10);
    }

    #[test]
    fn midstream_start_reports_no_gap_for_the_unseen_beginning() {
        let mut a = StreamAssembler::new(1 << 20);
        let mut s = VecSink::default();
        a.segment(77_777, b"250 OK\r\n", 0, false, &mut s);
        a.segment(77_777 + 8, b"354 go\r\n", 0, false, &mut s);
        // Older bytes before the first segment seen are not delivered.
        a.segment(77_700, b"x", 0, false, &mut s);
        assert_eq!(s.merged(), vec![data(b"250 OK\r\n354 go\r\n")]);
        assert_eq!(s.stats.gaps, 0);
        assert_eq!(a.isn(), None);
    }

    #[test]
    fn snaplen_cut_in_order_delivers_then_gap() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1, b"ABC", 5, false, &mut s);
        a.segment(ISN + 1 + 8, b"IJ", 0, false, &mut s);
        assert_eq!(s.events, vec![data(b"ABC"), Ev::Gap(5), data(b"IJ")]);
    }

    #[test]
    fn snaplen_cut_out_of_order_is_held_as_a_known_gap() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1 + 2, b"CD", 3, false, &mut s);
        a.segment(ISN + 1 + 7, b"HI", 0, false, &mut s);
        assert!(s.events.is_empty());
        a.segment(ISN + 1, b"AB", 0, false, &mut s);
        assert_eq!(
            s.events,
            vec![data(b"AB"), data(b"CD"), Ev::Gap(3), data(b"HI")]
        );
    }

    #[test]
    fn data_after_fin_is_ignored() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1 + 6, b"late", 0, false, &mut s); // held, then beyond the FIN
        a.segment(ISN + 1, b"QUIT", 0, true, &mut s);
        a.segment(ISN + 1 + 4, b"more", 0, false, &mut s);
        a.segment(ISN + 1 + 2, b"ITxx", 0, false, &mut s);
        assert_eq!(s.events, vec![data(b"QUIT"), Ev::Fin]);
        assert_eq!(s.counters.data_after_fin, 3);
        assert_eq!(s.used, 0);
        assert_eq!(a.held_cost(), 0);
    }

    #[test]
    fn direction_cap_declares_the_oldest_hole_a_gap() {
        let mut a = StreamAssembler::new(2 * (4 + CHUNK_OVERHEAD));
        let mut s = VecSink::default();
        a.syn(ISN);
        a.segment(ISN + 1 + 10, b"KLMN", 0, false, &mut s);
        a.segment(ISN + 1 + 20, b"UVWX", 0, false, &mut s);
        assert!(s.events.is_empty());
        // A third chunk does not fit: the hole before KLMN is given up.
        a.segment(ISN + 1 + 30, b"5678", 0, false, &mut s);
        assert_eq!(s.events, vec![Ev::Gap(10), data(b"KLMN")]);
        assert_eq!(s.counters.ooo_flow_cap_hits, 1);
        assert_eq!(s.counters.ooo_bytes_dropped_flow_cap, 10);
        a.flush(&mut s);
        assert_eq!(
            s.events[2..],
            [Ev::Gap(6), data(b"UVWX"), Ev::Gap(6), data(b"5678")]
        );
    }

    #[test]
    fn table_wide_cap_declares_a_gap_too() {
        let (mut a, mut s) = synced();
        s.max_total = Some(4 + CHUNK_OVERHEAD);
        a.segment(ISN + 1 + 10, b"KLMN", 0, false, &mut s);
        a.segment(ISN + 1 + 20, b"UVWX", 0, false, &mut s);
        assert_eq!(s.events, vec![Ev::Gap(10), data(b"KLMN")]);
        assert_eq!(s.counters.ooo_total_cap_hits, 1);
        assert_eq!(s.counters.ooo_bytes_dropped_total_cap, 10);
        assert!(s.used <= 4 + CHUNK_OVERHEAD);
    }

    #[test]
    fn segment_larger_than_the_cap_is_delivered_after_a_gap() {
        let mut a = StreamAssembler::new(8);
        let mut s = VecSink::default();
        a.syn(ISN);
        a.segment(ISN + 1 + 3, b"DEFGHIJKLMNOP", 0, false, &mut s);
        assert_eq!(s.events, vec![Ev::Gap(3), data(b"DEFGHIJKLMNOP")]);
        // The missing head arrives late: already declared lost, so it is a retransmission.
        a.segment(ISN + 1, b"ABC", 0, false, &mut s);
        assert_eq!(s.events.len(), 2);
    }

    #[test]
    fn peer_ack_past_a_hole_declares_it_lost() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1, b"AB", 0, false, &mut s);
        a.segment(ISN + 1 + 5, b"FG", 0, false, &mut s);
        // An ACK below the hole's end proves only part of it lost.
        a.peer_ack(ISN + 1 + 3, &mut s);
        assert_eq!(s.events, vec![data(b"AB"), Ev::Gap(1)]);
        a.peer_ack(ISN + 1 + 7, &mut s);
        assert_eq!(
            s.events,
            vec![data(b"AB"), Ev::Gap(1), Ev::Gap(2), data(b"FG")]
        );
    }

    #[test]
    fn peer_ack_without_pending_data_declares_nothing() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1, b"AB", 0, false, &mut s);
        a.peer_ack(ISN + 1 + 50, &mut s);
        assert_eq!(s.events, vec![data(b"AB")]);
        // The segment the ACK covered was only late in the capture: still delivered.
        a.segment(ISN + 1 + 2, b"CD", 0, false, &mut s);
        assert_eq!(s.merged(), vec![data(b"ABCD")]);
    }

    #[test]
    fn peer_ack_of_a_fin_behind_a_hole_delivers_gap_and_fin() {
        let (mut a, mut s) = synced();
        a.segment(ISN + 1 + 2, b"", 0, true, &mut s);
        a.peer_ack(ISN + 1 + 3, &mut s);
        assert_eq!(s.events, vec![Ev::Gap(2), Ev::Fin]);
    }

    #[test]
    fn done_stops_delivery_and_buffering_but_not_fin() {
        let (mut a, mut s) = synced();
        s.done_after = Some(4);
        a.segment(ISN + 1 + 8, b"IJKL", 0, false, &mut s); // held before the analyzer quits
        a.segment(ISN + 1, b"ABCD", 0, false, &mut s);
        assert_eq!(a.interest(), Interest::Done);
        assert_eq!(a.held_cost(), 0);
        assert_eq!(s.used, 0);
        a.segment(ISN + 1 + 20, b"UVWX", 0, false, &mut s);
        assert_eq!(a.held_cost(), 0);
        a.segment(ISN + 1 + 4, b"EFGH", 0, false, &mut s);
        a.segment(ISN + 1 + 24, b"", 0, true, &mut s);
        assert_eq!(s.events, vec![data(b"ABCD"), Ev::Fin]);
        assert_eq!(s.stats.delivered_bytes, 4);
        assert!(s.stats.skipped_bytes >= 12);
        assert_eq!(s.stats.gaps, 0);
    }

    #[test]
    fn reset_is_an_event() {
        let (mut a, mut s) = synced();
        a.reset(&mut s);
        assert_eq!(s.events, vec![Ev::Reset]);
    }
}
