//! Capture input: pcap and pcapng (optionally gzip-compressed, detected by magic bytes), from
//! a file or standard input, read through a bounded buffer. The reader hands out frames
//! borrowed from its buffer; nothing downstream owns packet bytes.

mod error;
mod link;
mod pcap;
mod pcapng;
mod reader;
mod source;

pub use error::CaptureError;
pub use link::LinkType;
pub use pcap::MAX_RECORD_CAPLEN;
pub use reader::{CaptureReader, INITIAL_BUFFER, MAX_BLOCK_LEN};

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
}

#[cfg(test)]
mod tests;
