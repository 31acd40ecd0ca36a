//! Classic libpcap files: both byte orders, microsecond and nanosecond magic, and the
//! "modified" (Kuznetzov) record layout that pcap-parser also reads.
//!
//! Record layout and limits: draft-ietf-opsawg-pcap (the libpcap file format), sections 4
//! (file header: SnapLen, LinkType with FCS bits in the upper half) and 5 (packet record).

use pcap_parser::PcapError;
use pcap_parser::nom::{self, IResult};
use pcap_parser::pcap::{
    LegacyPcapBlock, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified,
    parse_pcap_header,
};

use super::LinkType;
use super::reader::{BlockSource, FrameAt, HeaderError, Step};
use super::shared::{Chunk, SharedBuffer};
use super::source::Stream;
use crate::time::Timestamp;

/// The largest captured length accepted in a record: libpcap's own maximum snapshot length
/// (MAXIMUM_SNAPLEN, 256 KiB). A larger value is a damaged record header, not a reason to
/// allocate.
pub const MAX_RECORD_CAPLEN: u32 = 256 * 1024;

/// A record may exceed the file's snap length a little (some writers under-report it), but
/// not by more than this.
const SNAPLEN_SLACK: u32 = 64 * 1024;

type ParseRecord = fn(&[u8]) -> IResult<&[u8], LegacyPcapBlock<'_>, PcapError<&[u8]>>;

/// Cuts records out of a [`SharedBuffer`] with pcap-parser's record parsers, so that a frame
/// can lend its chunk out (see `super::shared`).
pub(super) struct PcapInput {
    stream: Stream,
    buf: SharedBuffer,
    /// Stream offset of the buffer start.
    consumed: u64,
    exhausted: bool,
    parse: ParseRecord,
    link: LinkType,
    nanos: bool,
    big_endian: bool,
    snaplen: u32,
    record_hdr: usize,
}

impl PcapInput {
    /// `stream` must start with a complete 24-byte file header (the caller sniffed it);
    /// `capacity` is the buffer size.
    pub fn new(mut stream: Stream, capacity: usize) -> Result<Self, HeaderError> {
        let mut buf = SharedBuffer::with_capacity(capacity);
        buf.refill(&mut stream).map_err(|_| HeaderError::Other)?;
        let (len, header) = match parse_pcap_header(buf.data()) {
            Ok((rest, h)) => (buf.data().len() - rest.len(), h),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => return Err(HeaderError::from(&e)),
            Err(nom::Err::Incomplete(_)) => return Err(HeaderError::Other),
        };
        buf.consume(len);
        let record_hdr = if header.is_modified_format() { 24 } else { 16 };
        let parse: ParseRecord = if header.is_modified_format() {
            parse_pcap_frame_modified
        } else if header.is_bigendian() {
            parse_pcap_frame_be
        } else {
            parse_pcap_frame
        };
        Ok(PcapInput {
            stream,
            buf,
            consumed: len as u64,
            exhausted: false,
            parse,
            // The upper 16 bits carry FCS information, not the link type.
            link: LinkType((header.network.0 as u32) & 0xffff),
            nanos: header.is_nanosecond_precision(),
            big_endian: header.is_bigendian(),
            snaplen: header.snaplen,
            record_hdr,
        })
    }

    /// The chunk the buffer's data lies in and where that data starts in it.
    pub fn chunk(&self) -> (&Chunk, usize) {
        (self.buf.chunk(), self.buf.offset())
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
        let declared = match self.peek_caplen(self.buf.data()) {
            Some(caplen) if self.caplen_is_absurd(caplen) => {
                return Step::Corrupt(format!(
                    "corrupt packet record (captured length {caplen}, snap length {})",
                    self.snaplen
                ));
            }
            Some(caplen) => Some(self.record_hdr + caplen as usize),
            None => None,
        };
        let data = self.buf.data();
        if data.is_empty() && self.exhausted {
            return Step::Eof;
        }
        match (self.parse)(data) {
            Ok((rest, rec)) => Step::Frame(FrameAt {
                block_len: data.len() - rest.len(),
                start: self.record_hdr,
                caplen: rec.data.len(),
                orig_len: rec.origlen,
                ts: Self::timestamp(self.nanos, rec.ts_sec, rec.ts_usec),
                link: self.link,
            }),
            // A record cut short by the end of input: the caller names it.
            Err(nom::Err::Incomplete(_)) if self.exhausted => Step::Eof,
            Err(nom::Err::Incomplete(_)) => Step::NeedMore { declared },
            Err(nom::Err::Error(_) | nom::Err::Failure(_)) => Step::Corrupt("corrupt block".into()),
        }
    }

    fn data(&self) -> &[u8] {
        self.buf.data()
    }

    fn consume(&mut self, n: usize) {
        self.consumed += n as u64;
        self.buf.consume(n);
    }

    fn consumed(&self) -> u64 {
        self.consumed
    }

    fn refill(&mut self) -> bool {
        // A full buffer reads nothing, which is not the end of input.
        let full = self.buf.data().len() >= self.buf.capacity();
        match self.buf.refill(&mut self.stream) {
            Ok(n) => {
                self.exhausted = n == 0 && !full;
                true
            }
            Err(_) => false,
        }
    }

    fn exhausted(&self) -> bool {
        self.exhausted
    }

    fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn grow(&mut self, new_size: usize) {
        self.buf.grow(new_size);
    }
}
