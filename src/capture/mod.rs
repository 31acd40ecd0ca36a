//! Capture input: pcap and pcapng (optionally gzip-compressed, detected by magic bytes), from
//! a file or standard input, read through a bounded buffer. The reader hands out frames
//! borrowed from its buffer; nothing downstream owns packet bytes.

/// The buffer half of `reader::BlockSource`, the same for both formats: pcap-parser's
/// streaming readers share these methods without a trait that offers `consume_noshift`.
macro_rules! buffer_methods {
    () => {
        fn data(&self) -> &[u8] {
            self.reader.data()
        }
        fn consume(&mut self, n: usize) {
            // No shift here: `refill` shifts once per read instead of once per half buffer.
            self.reader.consume_noshift(n);
        }
        fn consumed(&self) -> u64 {
            self.reader.consumed() as u64
        }
        fn refill(&mut self) -> bool {
            self.reader.refill().is_ok()
        }
        fn exhausted(&self) -> bool {
            self.reader.reader_exhausted()
        }
        fn capacity(&self) -> usize {
            self.capacity
        }
        fn grow(&mut self, new_size: usize) {
            if self.reader.grow(new_size) {
                self.capacity = new_size;
            }
        }
    };
}

mod error;
mod link;
mod live;
mod pcap;
mod pcapng;
mod reader;
mod shared;
mod source;

pub use error::CaptureError;
pub use link::LinkType;
pub use live::{LiveStream, Stop, stdin_source};
pub use pcap::MAX_RECORD_CAPLEN;
pub use reader::{CaptureReader, INITIAL_BUFFER, MAX_BLOCK_LEN};
pub use shared::Chunk;

use crate::time::Timestamp;

/// Container format of a capture file, as the report names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureFormat {
    Pcap,
    Pcapng,
}

/// One captured packet, borrowed from the reader's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// 1-based packet number in its capture, as Wireshark counts.
    pub number: u64,
    pub ts: Timestamp,
    pub link_type: LinkType,
    /// Captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// Length of the packet on the wire; larger than `data.len()` when the snap length cut it.
    pub orig_len: u32,
    /// Where `data` lies in a chunk of the capture that may be held past the next call (a
    /// classic pcap file); None when the bytes are only borrowed (pcapng).
    pub chunk: Option<SharedFrame<'a>>,
}

/// A frame's bytes as `chunk[offset..offset + data.len()]`: holding a clone of the chunk
/// keeps them, unchanged, after the reader has moved on.
#[derive(Clone, Copy, Debug)]
pub struct SharedFrame<'a> {
    pub chunk: &'a Chunk,
    pub offset: usize,
}

#[cfg(test)]
mod tests;
