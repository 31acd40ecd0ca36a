//! Classic libpcap files: both byte orders, microsecond and nanosecond magic, and the
//! "modified" (Kuznetzov) record layout that pcap-parser also reads.
//!
//! Record layout and limits: draft-ietf-opsawg-pcap (the libpcap file format), sections 4
//! (file header: SnapLen, LinkType with FCS bits in the upper half) and 5 (packet record).

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned};

use super::LinkType;
use super::reader::{BlockSource, FrameAt, HeaderError, Step, parser_error_step};
use super::source::Stream;
use crate::time::Timestamp;

/// The largest captured length accepted in a record: libpcap's own maximum snapshot length
/// (MAXIMUM_SNAPLEN, 256 KiB). A larger value is a damaged record header, not a reason to
/// allocate.
pub const MAX_RECORD_CAPLEN: u32 = 256 * 1024;

/// A record may exceed the file's snap length a little (some writers under-report it), but
/// not by more than this.
const SNAPLEN_SLACK: u32 = 64 * 1024;

/// Interprets the records that pcap-parser's streaming reader cuts out.
pub(super) struct PcapInput {
    reader: LegacyPcapReader<Stream>,
    capacity: usize,
    link: LinkType,
    nanos: bool,
    big_endian: bool,
    snaplen: u32,
    record_hdr: usize,
}

/// The streaming reader over `stream`, which must start with a complete 24-byte file header
/// (the caller sniffed it).
pub(super) fn stream_reader(
    stream: Stream,
    capacity: usize,
) -> Result<LegacyPcapReader<Stream>, HeaderError> {
    LegacyPcapReader::new(capacity, stream).map_err(|e| HeaderError::from(&e))
}

impl PcapInput {
    /// `reader` hands out the file header first; `capacity` is its buffer size.
    pub fn new(mut reader: LegacyPcapReader<Stream>, capacity: usize) -> Result<Self, HeaderError> {
        let (len, header) = match reader.next() {
            Ok((len, PcapBlockOwned::LegacyHeader(h))) => (len, h),
            _ => return Err(HeaderError::Other),
        };
        reader.consume_noshift(len);
        let record_hdr = if header.is_modified_format() { 24 } else { 16 };
        Ok(PcapInput {
            reader,
            capacity,
            // The upper 16 bits carry FCS information, not the link type.
            link: LinkType((header.network.0 as u32) & 0xffff),
            nanos: header.is_nanosecond_precision(),
            big_endian: header.is_bigendian(),
            snaplen: header.snaplen,
            record_hdr,
        })
    }

    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Captured length of the record at the start of `data`, when its header is there.
    fn peek_caplen(&self, data: &[u8]) -> Option<u32> {
        let b: [u8; 4] = data.get(8..12)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn caplen_is_absurd(&self, caplen: u32) -> bool {
        caplen > MAX_RECORD_CAPLEN
            || (self.snaplen != 0 && caplen > self.snaplen.saturating_add(SNAPLEN_SLACK))
    }

    fn timestamp(nanos: bool, secs: u32, frac: u32) -> Timestamp {
        let frac_ns = if nanos {
            u64::from(frac)
        } else {
            u64::from(frac) * 1_000
        };
        // A damaged fraction may exceed one second; carry it rather than lose it.
        Timestamp::new(
            i64::from(secs) + (frac_ns / 1_000_000_000) as i64,
            (frac_ns % 1_000_000_000) as u32,
        )
    }
}

impl BlockSource for PcapInput {
    const TRUNCATED: &'static str = "truncated packet record";

    fn step(&mut self, _warnings: &mut Vec<String>) -> Step {
        let declared = match self.peek_caplen(self.reader.data()) {
            Some(caplen) if self.caplen_is_absurd(caplen) => {
                return Step::Corrupt(format!(
                    "corrupt packet record (captured length {caplen}, snap length {})",
                    self.snaplen
                ));
            }
            Some(caplen) => Some(self.record_hdr + caplen as usize),
            None => None,
        };
        match self.reader.next() {
            Ok((len, PcapBlockOwned::Legacy(rec))) => Step::Frame(FrameAt {
                block_len: len,
                start: self.record_hdr,
                caplen: rec.data.len(),
                orig_len: rec.origlen,
                ts: Self::timestamp(self.nanos, rec.ts_sec, rec.ts_usec),
                link: self.link,
            }),
            Ok((len, _)) => Step::Skip(len),
            Err(e) => parser_error_step(&e, declared),
        }
    }

    buffer_methods!();
}
