//! The read buffer of a classic pcap file, whose bytes a frame can lend out beyond the next
//! read.
//!
//! Why. A capture shared out over worker threads (`pipeline::framer`) used to copy every
//! segment's payload out of the read buffer into each worker's batch, because the next read
//! overwrote the buffer: a tenth of a two-thread run's CPU on a mail relay's traffic. Here
//! the storage is reference-counted: a frame hands out its chunk with its bytes, and the
//! buffer never writes into a chunk someone else still holds. It moves to another chunk
//! instead (one that was given back, or a new one), taking along only the unread tail, less
//! than one record. On one thread nobody holds a chunk and the buffer shifts in place, as a
//! plain buffer does.

use std::io::{self, Read};
use std::sync::Arc;

/// Bytes of the capture as read, shared with whoever holds a frame of them.
pub type Chunk = Arc<Vec<u8>>;

/// Bytes of chunks kept for reuse once their holders give them back. Workers hold a few
/// rounds of the capture (a few MiB); a chunk past this is freed when its last holder drops it.
const SPARE_BYTES: usize = 8 << 20;

/// A read buffer over one chunk: `data()` is `chunk[start..end]`, `chunk[end..]` is free.
pub(super) struct SharedBuffer {
    chunk: Chunk,
    start: usize,
    end: usize,
    /// Chunks this buffer left while they were held, to be refilled once they are not.
    spare: Vec<Chunk>,
}

impl SharedBuffer {
    pub fn with_capacity(capacity: usize) -> Self {
        SharedBuffer {
            chunk: Arc::new(vec![0; capacity]),
            start: 0,
            end: 0,
            spare: Vec::new(),
        }
    }

    pub fn data(&self) -> &[u8] {
        self.chunk.get(self.start..self.end).unwrap_or_default()
    }

    /// The chunk `data()` lies in: `data()` starts at [`Self::offset`] in it.
    pub fn chunk(&self) -> &Chunk {
        &self.chunk
    }

    pub fn offset(&self) -> usize {
        self.start
    }

    pub fn capacity(&self) -> usize {
        self.chunk.len()
    }

    pub fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
    }

    /// Moves the unread bytes to the front of a chunk nobody else holds, then reads once into
    /// the room after them. Returns the bytes read (0 at the end of input).
    pub fn refill(&mut self, src: &mut impl Read) -> io::Result<usize> {
        self.make_room(self.capacity());
        let Some(chunk) = Arc::get_mut(&mut self.chunk) else {
            // `make_room` leaves a chunk held by this buffer only.
            return Err(io::Error::other("read buffer still shared"));
        };
        let Some(space) = chunk.get_mut(self.end..) else {
            return Ok(0);
        };
        if space.is_empty() {
            return Ok(0);
        }
        let n = src.read(space)?;
        self.end += n;
        Ok(n)
    }

    /// Room for a block of up to `new_size` bytes.
    pub fn grow(&mut self, new_size: usize) {
        if new_size > self.capacity() {
            self.make_room(new_size);
        }
    }

    /// Puts the unread bytes at the start of a chunk of at least `capacity` bytes that only
    /// this buffer holds: in place when it can, else in a spare or a new chunk.
    fn make_room(&mut self, capacity: usize) {
        let unique = Arc::get_mut(&mut self.chunk).filter(|c| c.len() >= capacity);
        if let Some(chunk) = unique {
            if self.start > 0 {
                chunk.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            return;
        }
        let mut next = self.take_spare(capacity);
        if let (Some(dst), Some(src)) = (
            Arc::get_mut(&mut next).and_then(|c| c.get_mut(..self.end - self.start)),
            self.chunk.get(self.start..self.end),
        ) {
            dst.copy_from_slice(src);
        }
        let left = std::mem::replace(&mut self.chunk, next);
        self.end -= self.start;
        self.start = 0;
        // A chunk nobody holds any more (a grown-out one) is freed here; a held one waits
        // for its holders, kept for reuse if there is room.
        if Arc::strong_count(&left) > 1 && left.len() == capacity && capacity <= SPARE_BYTES {
            while self.spare.iter().map(|c| c.len()).sum::<usize>() + capacity > SPARE_BYTES {
                self.spare.remove(0);
            }
            self.spare.push(left);
        }
    }

    /// A chunk of `capacity` bytes held by nobody else: a spare given back, or a new one.
    fn take_spare(&mut self, capacity: usize) -> Chunk {
        let free = self
            .spare
            .iter()
            .position(|c| Arc::strong_count(c) == 1 && c.len() == capacity);
        match free {
            Some(i) => self.spare.swap_remove(i),
            None => Arc::new(vec![0; capacity]),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn filled(bytes: &[u8], capacity: usize) -> (SharedBuffer, io::Cursor<Vec<u8>>) {
        let mut src = io::Cursor::new(bytes.to_vec());
        let mut buf = SharedBuffer::with_capacity(capacity);
        buf.refill(&mut src).unwrap();
        (buf, src)
    }

    #[test]
    fn a_held_chunk_is_never_written_again() {
        let input: Vec<u8> = (0..=255).cycle().take(10_000).collect();
        let (mut buf, mut src) = filled(&input, 64);
        let mut held = Vec::new();
        let mut out = Vec::new();
        loop {
            // Every read ends in a partial record (the last 3 bytes); what is before it is
            // held, as a worker holds the frames of its round.
            let data = buf.data();
            let take = data.len().saturating_sub(3);
            held.push((Arc::clone(buf.chunk()), buf.offset(), data[..take].to_vec()));
            out.extend_from_slice(&data[..take]);
            buf.consume(take);
            if buf.refill(&mut src).unwrap() == 0 {
                out.extend_from_slice(buf.data());
                break;
            }
        }
        assert_eq!(out, input);
        for (chunk, at, seen) in &held {
            assert_eq!(&chunk[*at..*at + seen.len()], &seen[..]);
        }
    }

    #[test]
    fn chunks_given_back_are_reused() {
        let input = vec![7u8; 64 * 100];
        let (mut buf, mut src) = filled(&input, 64);
        let first = Arc::as_ptr(buf.chunk());
        let held = Arc::clone(buf.chunk());
        buf.consume(64);
        buf.refill(&mut src).unwrap();
        assert_ne!(Arc::as_ptr(buf.chunk()), first, "a held chunk is left");
        drop(held);
        let second = Arc::clone(buf.chunk());
        buf.consume(64);
        buf.refill(&mut src).unwrap();
        assert_eq!(
            Arc::as_ptr(buf.chunk()),
            first,
            "the chunk given back is refilled"
        );
        drop(second);
    }

    #[test]
    fn unshared_buffer_shifts_in_place_and_grows() {
        let input: Vec<u8> = (0..200).collect();
        let (mut buf, mut src) = filled(&input, 16);
        let first = Arc::as_ptr(buf.chunk());
        buf.consume(10);
        buf.refill(&mut src).unwrap();
        assert_eq!(Arc::as_ptr(buf.chunk()), first);
        assert_eq!(buf.data(), &input[10..26]);
        buf.grow(100);
        assert_eq!(buf.capacity(), 100);
        assert_eq!(buf.data(), &input[10..26]);
        buf.refill(&mut src).unwrap();
        assert_eq!(buf.data(), &input[10..110]);
    }
}
