//! The document's order of the flows, in bounded memory: an external merge sort of 40-byte
//! index entries.
//!
//! Entries are held in memory up to [`RUN_ENTRIES`] (2.5 MiB); a capture with fewer reported
//! flows is sorted there, as a plain stable sort. Past that, each full batch is sorted and
//! appended to the spill file as a run. Runs are merged [`FAN_IN`] at a time: those of one
//! size as soon as there are that many, and what is left at the end, so that one pass reads
//! at most `FAN_IN` runs, through a 10 KiB block each. Memory is then at most about 3 MiB,
//! whatever the number of flows. The spill file takes 40 bytes per flow for the runs, and 40
//! more per level of merges written (none below `RUN_ENTRIES * FAN_IN`, 4 million flows).
//! Flows mostly finish in start order, so runs overlap little; the merge then costs one
//! comparison per entry.
//!
//! The sort is stable: equal keys keep their arrival order (a batch's sort is stable, runs
//! hold consecutive arrivals, and a merge takes the earlier run first on a tie).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::spill::{Spill, SpillError};

/// Entries sorted in memory before a run is written: 2.5 MiB.
pub(super) const RUN_ENTRIES: usize = 1 << 16;
/// Runs merged at once.
pub(super) const FAN_IN: usize = 64;
/// Entries read at once from each run being merged.
const BLOCK_ENTRIES: usize = 256;

pub(super) const ENTRY_BYTES: usize = 40;

/// Where a flow's record is and where it goes in the document: 40 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub start_secs: i64,
    pub first_frame: u64,
    pub offset: u64,
    pub start_nanos: u32,
    pub capture: u32,
    pub len: u32,
    pub findings_at: u32,
}

pub(super) type Key = (u32, i64, u32, u64);

impl Entry {
    /// Document order: capture (as first seen), start time, first frame. The flow id breaks
    /// the remaining ties (the caller's part: it needs the records).
    pub(super) fn key(&self) -> Key {
        (
            self.capture,
            self.start_secs,
            self.start_nanos,
            self.first_frame,
        )
    }

    fn to_bytes(self) -> [u8; ENTRY_BYTES] {
        let mut b = [0u8; ENTRY_BYTES];
        b[0..8].copy_from_slice(&self.start_secs.to_le_bytes());
        b[8..16].copy_from_slice(&self.first_frame.to_le_bytes());
        b[16..24].copy_from_slice(&self.offset.to_le_bytes());
        b[24..28].copy_from_slice(&self.start_nanos.to_le_bytes());
        b[28..32].copy_from_slice(&self.capture.to_le_bytes());
        b[32..36].copy_from_slice(&self.len.to_le_bytes());
        b[36..40].copy_from_slice(&self.findings_at.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8; ENTRY_BYTES]) -> Self {
        // Constant ranges within the array: no index can fail.
        let w8 = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            w
        };
        let w4 = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&b[i..i + 4]);
            u32::from_le_bytes(w)
        };
        Entry {
            start_secs: i64::from_le_bytes(w8(0)),
            first_frame: u64::from_le_bytes(w8(8)),
            offset: u64::from_le_bytes(w8(16)),
            start_nanos: w4(24),
            capture: w4(28),
            len: w4(32),
            findings_at: w4(36),
        }
    }
}

/// Sorted entries in the spill file.
#[derive(Clone, Copy, Debug)]
struct Run {
    at: u64,
    count: u64,
    /// How many merges made it: runs of one level are merged together.
    level: u32,
}

pub(super) struct Order {
    /// Arrived since the last run was written (all of them while there is no run).
    held: Vec<Entry>,
    /// In arrival order.
    runs: Vec<Run>,
    run_entries: usize,
    fan_in: usize,
    sealed: bool,
}

impl Order {
    pub(super) fn new() -> Self {
        Self::with_sizes(RUN_ENTRIES, FAN_IN)
    }

    /// Smaller sizes let tests make many runs and merges from a few flows.
    pub(super) fn with_sizes(run_entries: usize, fan_in: usize) -> Self {
        Order {
            held: Vec::new(),
            runs: Vec::new(),
            run_entries: run_entries.max(1),
            fan_in: fan_in.max(2),
            sealed: false,
        }
    }

    /// One more entry; none after [`Order::seal`] (the sink refuses flows once finished).
    pub(super) fn push(&mut self, e: Entry, spill: &mut Spill) -> Result<(), SpillError> {
        debug_assert!(!self.sealed, "entry after the order was sealed");
        self.held.push(e);
        if self.held.len() >= self.run_entries {
            self.write_run(spill)?;
            while self.merge_due() {
                let from = self.runs.len() - self.fan_in;
                self.merge_runs(from, spill)?;
            }
        }
        Ok(())
    }

    /// The last `fan_in` runs are of one level.
    fn merge_due(&self) -> bool {
        let n = self.runs.len();
        n >= self.fan_in
            && self.runs[n - self.fan_in..]
                .iter()
                .all(|r| r.level == self.runs[n - 1].level)
    }

    /// Sorts the held entries and appends them as a run.
    fn write_run(&mut self, spill: &mut Spill) -> Result<(), SpillError> {
        if self.held.is_empty() {
            return Ok(());
        }
        self.held.sort_by_key(Entry::key);
        let mut block = Vec::with_capacity(BLOCK_ENTRIES * ENTRY_BYTES);
        let at = spill.len();
        for chunk in self.held.chunks(BLOCK_ENTRIES) {
            block.clear();
            for e in chunk {
                block.extend_from_slice(&e.to_bytes());
            }
            spill.append(&block)?;
        }
        self.runs.push(Run {
            at,
            count: self.held.len() as u64,
            level: 0,
        });
        self.held.clear();
        Ok(())
    }

    /// Merges runs `from..from + fan_in` (or to the end) into one, in their place.
    fn merge_runs(&mut self, from: usize, spill: &mut Spill) -> Result<(), SpillError> {
        let to = (from + self.fan_in).min(self.runs.len());
        let parts = self.runs.get(from..to).ok_or(SpillError::Corrupt)?;
        let level = parts.iter().map(|r| r.level).max().unwrap_or(0) + 1;
        let count = parts.iter().map(|r| r.count).sum();
        let mut merge = Merge::new(parts);
        let mut block = Vec::with_capacity(BLOCK_ENTRIES * ENTRY_BYTES);
        let at = spill.len();
        while let Some(e) = merge.next(spill)? {
            block.extend_from_slice(&e.to_bytes());
            if block.len() >= BLOCK_ENTRIES * ENTRY_BYTES {
                spill.append(&block)?;
                block.clear();
            }
        }
        spill.append(&block)?;
        self.runs.splice(from..to, [Run { at, count, level }]);
        Ok(())
    }

    /// No more entries: what is left is written out and merged until one pass can read all.
    /// Without any run written, the entries are sorted in memory.
    pub(super) fn seal(&mut self, spill: &mut Spill) -> Result<(), SpillError> {
        if self.sealed {
            return Ok(());
        }
        self.sealed = true;
        if self.runs.is_empty() {
            self.held.sort_by_key(Entry::key);
            return Ok(());
        }
        self.write_run(spill)?;
        self.held = Vec::new();
        while self.runs.len() > self.fan_in {
            self.merge_runs(0, spill)?;
        }
        Ok(())
    }

    /// One pass over the entries in order (after [`Order::seal`]); there may be several.
    pub(super) fn pass(&self) -> Pass<'_> {
        if self.runs.is_empty() {
            Pass::Held(self.held.iter())
        } else {
            Pass::Runs(Merge::new(&self.runs))
        }
    }
}

pub(super) enum Pass<'a> {
    Held(std::slice::Iter<'a, Entry>),
    Runs(Merge),
}

impl Pass<'_> {
    pub(super) fn next(&mut self, spill: &mut Spill) -> Result<Option<Entry>, SpillError> {
        match self {
            Pass::Held(it) => Ok(it.next().copied()),
            Pass::Runs(m) => m.next(spill),
        }
    }
}

/// Reads one run a block at a time.
struct Cursor {
    at: u64,
    left: u64,
    block: Vec<u8>,
    used: usize,
}

impl Cursor {
    fn next(&mut self, spill: &mut Spill) -> Result<Option<Entry>, SpillError> {
        if self.used >= self.block.len() {
            if self.left == 0 {
                return Ok(None);
            }
            let n = self.left.min(BLOCK_ENTRIES as u64) as usize;
            self.block.resize(n * ENTRY_BYTES, 0);
            spill.read_exact_at(self.at, &mut self.block)?;
            self.at += (n * ENTRY_BYTES) as u64;
            self.left -= n as u64;
            self.used = 0;
        }
        let bytes = self
            .block
            .get(self.used..self.used + ENTRY_BYTES)
            .and_then(|b| <&[u8; ENTRY_BYTES]>::try_from(b).ok())
            .ok_or(SpillError::Corrupt)?;
        self.used += ENTRY_BYTES;
        Ok(Some(Entry::from_bytes(bytes)))
    }
}

/// Where a run's next entry goes: on equal keys the earlier run's entry comes first.
type Slot = Reverse<(Key, usize)>;

/// A k-way merge of runs.
pub(super) struct Merge {
    cursors: Vec<Cursor>,
    heads: Vec<Option<Entry>>,
    heap: BinaryHeap<Slot>,
    /// The run just taken from, while its next entry is not in the heap: runs that do not
    /// overlap (flows mostly finish in start order) are read with one comparison per entry.
    last: Option<Slot>,
    started: bool,
}

impl Merge {
    fn new(runs: &[Run]) -> Self {
        Merge {
            cursors: runs
                .iter()
                .map(|r| Cursor {
                    at: r.at,
                    left: r.count,
                    block: Vec::new(),
                    used: 0,
                })
                .collect(),
            heads: vec![None; runs.len()],
            heap: BinaryHeap::with_capacity(runs.len()),
            last: None,
            started: false,
        }
    }

    /// Reads run `i`'s next entry.
    fn advance(&mut self, i: usize, spill: &mut Spill) -> Result<Option<Slot>, SpillError> {
        let cursor = self.cursors.get_mut(i).ok_or(SpillError::Corrupt)?;
        let next = cursor.next(spill)?;
        if let Some(head) = self.heads.get_mut(i) {
            *head = next;
        }
        Ok(next.map(|e| Reverse((e.key(), i))))
    }

    fn next(&mut self, spill: &mut Spill) -> Result<Option<Entry>, SpillError> {
        if !self.started {
            self.started = true;
            for i in 0..self.cursors.len() {
                if let Some(slot) = self.advance(i, spill)? {
                    self.heap.push(slot);
                }
            }
        }
        let Reverse((_, i)) = match self.last.take() {
            // Still before every other run's next entry (the heap is a max-heap of `Reverse`).
            Some(last) if self.heap.peek().is_none_or(|top| last > *top) => last,
            Some(last) => match self.heap.peek_mut() {
                Some(mut top) => std::mem::replace(&mut *top, last),
                None => last,
            },
            None => match self.heap.pop() {
                Some(top) => top,
                None => return Ok(None),
            },
        };
        let e = self
            .heads
            .get(i)
            .copied()
            .flatten()
            .ok_or(SpillError::Corrupt)?;
        self.last = self.advance(i, spill)?;
        Ok(Some(e))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor as Mem;

    use super::*;

    fn entry(capture: u32, secs: i64, nanos: u32, frame: u64, tag: u64) -> Entry {
        Entry {
            start_secs: secs,
            first_frame: frame,
            // Arrival number: equal keys must keep it increasing.
            offset: tag,
            start_nanos: nanos,
            capture,
            len: 0,
            findings_at: 0,
        }
    }

    /// A small deterministic generator (xorshift).
    fn keys(n: usize, seed: u64, spread: u64) -> Vec<Entry> {
        let mut x = seed | 1;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = x % spread;
                entry(
                    (v % 3) as u32,
                    (v / 3 % 5) as i64 - 2,
                    (v / 15 % 2) as u32,
                    v / 30,
                    i as u64,
                )
            })
            .collect()
    }

    fn sorted(entries: &[Entry], run: usize, fan_in: usize) -> (Vec<Entry>, usize) {
        let mut spill = Spill::file(Box::new(Mem::new(Vec::new())));
        let mut order = Order::with_sizes(run, fan_in);
        let mut most_runs = 0;
        for e in entries {
            order.push(*e, &mut spill).unwrap();
            most_runs = most_runs.max(order.runs.len());
            assert!(order.held.len() < run.max(1));
        }
        order.seal(&mut spill).unwrap();
        assert!(order.runs.len() <= fan_in);
        let mut out = Vec::new();
        for _ in 0..2 {
            let mut pass = order.pass();
            let mut got = Vec::new();
            while let Some(e) = pass.next(&mut spill).unwrap() {
                got.push(e);
            }
            if !out.is_empty() {
                assert_eq!(got, out, "a second pass gives the same order");
            }
            out = got;
        }
        (out, most_runs)
    }

    fn reference(entries: &[Entry]) -> Vec<Entry> {
        let mut v = entries.to_vec();
        v.sort_by_key(Entry::key);
        v
    }

    #[test]
    fn entries_survive_their_bytes() {
        let e = Entry {
            start_secs: -5,
            first_frame: u64::MAX - 1,
            offset: 1 << 40,
            start_nanos: 999_999_999,
            capture: 7,
            len: u32::MAX,
            findings_at: 12,
        };
        assert_eq!(Entry::from_bytes(&e.to_bytes()), e);
        assert_eq!(std::mem::size_of::<Entry>(), ENTRY_BYTES);
    }

    /// Many runs, several levels of merges, many equal keys: the same order as one stable
    /// sort, for any run size and fan-in.
    #[test]
    fn runs_merge_into_one_stable_sort() {
        for (n, spread) in [(0, 10), (1, 10), (1000, 60), (3000, 1_000_000), (2500, 2)] {
            let entries = keys(n, 0x9e37_79b9 + n as u64, spread);
            let expected = reference(&entries);
            for (run, fan_in) in [(1, 2), (2, 2), (3, 3), (7, 2), (16, 4), (64, 64), (5000, 8)] {
                let (got, _) = sorted(&entries, run, fan_in);
                assert_eq!(got, expected, "{n} entries, run {run}, fan-in {fan_in}");
            }
        }
    }

    #[test]
    fn all_keys_equal_keep_arrival_order() {
        let entries: Vec<Entry> = (0..500).map(|i| entry(1, 5, 5, 5, i)).collect();
        let (got, _) = sorted(&entries, 4, 3);
        assert_eq!(got, entries);
    }

    /// In-order arrivals (runs that do not overlap, ties at their edges) and reversed ones.
    #[test]
    fn runs_in_order_and_reversed() {
        let entries: Vec<Entry> = (0..1000)
            .map(|i| entry(0, i as i64 / 2, 0, i / 2, i))
            .collect();
        let (got, _) = sorted(&entries, 9, 4);
        assert_eq!(got, entries);
        let reversed: Vec<Entry> = entries.iter().rev().copied().collect();
        let (got, _) = sorted(&reversed, 9, 4);
        assert_eq!(got, reference(&reversed));
    }

    /// Runs are merged while entries arrive, so their number stays bounded by the fan-in
    /// per level however many entries come.
    #[test]
    fn the_number_of_runs_stays_bounded() {
        let entries: Vec<Entry> = (0..20_000u64)
            .map(|i| entry(0, (20_000 - i) as i64, 0, 0, i))
            .collect();
        let (got, most_runs) = sorted(&entries, 8, 4);
        assert_eq!(got, reference(&entries));
        // 2,500 runs of 8 written; four levels of fan-in 4 below 4^6 > 2,500.
        assert!(most_runs <= 4 * 6, "{most_runs} runs");
    }

    #[test]
    fn a_full_disk_while_writing_runs_is_an_error() {
        let full = super::super::spill::tests::Full {
            data: Mem::new(Vec::new()),
            budget: 1000,
        };
        let mut spill = Spill::file(Box::new(full));
        let mut order = Order::with_sizes(4, 2);
        let err = keys(100_000, 3, 1000)
            .into_iter()
            .map(|e| order.push(e, &mut spill))
            .find_map(Result::err)
            .expect("the disk fills up");
        assert!(matches!(err, SpillError::Write(_)), "{err:?}");
    }
}
