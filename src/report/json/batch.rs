//! Reads the records' parts back in document order with few, large reads.
//!
//! The temporary file holds records in the order flows closed; the document wants them by
//! start. On a day of mail the two orders differ by hundreds of kilobytes, so reading each
//! record through a read window that begins at it fetched a fresh window per record: a
//! hundred times the file's bytes, copied out of the page cache. Here the parts of the next
//! entries in document order are gathered until they add up to [`BATCH`] bytes or number
//! [`MAX_PARTS`], read in file order (neighbours less than [`GAP`] apart in one read), then
//! handed out in document order. Memory: one batch and the holes read through, 2 MiB (or
//! one record larger than that), whatever the size of the file.

use super::spill::{Spill, SpillError};

/// Bytes of parts gathered before they are read (a larger part is a batch of its own).
const BATCH: usize = 1 << 20;

/// A hole between two parts this small is read through rather than skipped with a seek.
const GAP: u64 = 4 << 10;

/// Parts gathered at most, so that the holes read through stay within `MAX_PARTS * GAP`
/// bytes (findings parts are small, with a flow's record between each two).
const MAX_PARTS: usize = 256;

/// Parts (file offset, length) of the entries taken so far, in document order.
#[derive(Default)]
pub(super) struct Batch {
    parts: Vec<(u64, usize)>,
    total: usize,
    /// The parts' bytes, run by run in file order.
    bytes: Vec<u8>,
    /// Where each part is in `bytes`, by position in `parts`.
    at: Vec<usize>,
    /// Positions in `parts`, sorted by offset.
    by_offset: Vec<usize>,
}

impl Batch {
    /// Adds a part; when the batch is full, reads it and hands its parts to `each` in the
    /// order they were added.
    pub(super) fn push(
        &mut self,
        part: (u64, usize),
        spill: &mut Spill,
        each: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.parts.push(part);
        self.total = self.total.saturating_add(part.1);
        if self.total >= BATCH || self.parts.len() >= MAX_PARTS {
            self.flush(spill, each)?;
        }
        Ok(())
    }

    /// Reads and hands out what is gathered (call once more after the last part).
    pub(super) fn flush(
        &mut self,
        spill: &mut Spill,
        each: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.read(spill)?;
        for (&(_, len), &at) in self.parts.iter().zip(&self.at) {
            let part = self
                .bytes
                .get(at..at.saturating_add(len))
                .ok_or(SpillError::Corrupt)?;
            each(part)?;
        }
        self.parts.clear();
        self.total = 0;
        // A batch that one huge record grew is not kept for the rest of the run.
        if self.bytes.capacity() > 4 * BATCH {
            self.bytes = Vec::new();
        }
        Ok(())
    }

    /// Fills `bytes` and `at`: runs of parts close together in the file, one read each.
    fn read(&mut self, spill: &mut Spill) -> Result<(), SpillError> {
        let parts = &self.parts;
        self.by_offset.clear();
        self.by_offset.extend(0..parts.len());
        self.by_offset.sort_by_key(|&i| parts.get(i).map(|p| p.0));
        self.at.clear();
        self.at.resize(parts.len(), 0);
        self.bytes.clear();
        let mut i = 0;
        while i < self.by_offset.len() {
            // The run: parts from `start` while each begins within GAP of the run's end.
            let mut j = i;
            let mut start = u64::MAX;
            let mut end = 0u64;
            while let Some(&(offset, len)) = self.by_offset.get(j).and_then(|&k| parts.get(k)) {
                if j > i && offset > end.saturating_add(GAP) {
                    break;
                }
                start = start.min(offset);
                end = end.max(offset.checked_add(len as u64).ok_or(SpillError::Corrupt)?);
                j += 1;
            }
            let base = self.bytes.len();
            let run = usize::try_from(end - start).map_err(|_| SpillError::Corrupt)?;
            self.bytes.resize(base + run, 0);
            let to = self.bytes.get_mut(base..).ok_or(SpillError::Corrupt)?;
            spill.read_exact_at(start, to)?;
            for &k in self.by_offset.get(i..j).unwrap_or_default() {
                let offset = parts.get(k).ok_or(SpillError::Corrupt)?.0;
                let slot = self.at.get_mut(k).ok_or(SpillError::Corrupt)?;
                *slot = base + (offset - start) as usize;
            }
            i = j;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// Parts of every size (empty, larger than a batch), far apart and adjacent, in an order
    /// unlike the file's: handed out as added, byte for byte.
    #[test]
    fn hands_out_parts_in_the_order_added() {
        let mut spill = Spill::file(Box::new(Cursor::new(Vec::new())));
        let mut records = Vec::new();
        for i in 0..400u32 {
            let n = match i % 9 {
                0 => 0,
                1 => BATCH + 3,
                2 => 20_000,
                _ => (i as usize * 131) % 3000,
            };
            let bytes: Vec<u8> = (0..n)
                .map(|k| (k as u32 ^ i.wrapping_mul(7)) as u8)
                .collect();
            let at = spill.append(&bytes).unwrap();
            records.push((at, bytes));
        }
        // Every third record, then the others backwards, some twice.
        let mut order: Vec<usize> = (0..records.len()).step_by(3).collect();
        order.extend((0..records.len()).rev().filter(|i| i % 3 != 0));
        order.extend([5, 5, 0]);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut each = |p: &[u8]| -> std::io::Result<()> {
            got.push(p.to_vec());
            Ok(())
        };
        let mut batch = Batch::default();
        for &i in &order {
            let (at, bytes) = &records[i];
            batch
                .push((*at, bytes.len()), &mut spill, &mut each)
                .unwrap();
        }
        batch.flush(&mut spill, &mut each).unwrap();
        assert_eq!(got.len(), order.len());
        for (g, &i) in got.iter().zip(&order) {
            assert!(*g == records[i].1, "record {i}");
        }
    }

    #[test]
    fn a_part_beyond_the_file_is_an_error() {
        let mut spill = Spill::memory(std::io::Error::other("none"));
        spill.append(b"0123456789").unwrap();
        let mut batch = Batch::default();
        let mut each = |_: &[u8]| -> std::io::Result<()> { Ok(()) };
        batch.push((4, 10), &mut spill, &mut each).unwrap();
        assert!(batch.flush(&mut spill, &mut each).is_err());
    }
}
