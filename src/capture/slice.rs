//! The capture parsed in place from bytes that are already in memory: a file's shared windows
//! or a byte buffer. Frames borrow from the shared bytes; nothing is copied.
//!
//! [`SliceReader`] implements pcap-parser's `PcapReaderIterator`, the interface of the
//! streaming readers, so that `PcapInput` and `PcapngInput` interpret blocks with one `step`
//! whichever way the bytes arrive. It calls the same slice parsers the streaming readers call
//! and answers like them at the end of the input, so both give the same frames, warnings and
//! errors for the same bytes (tests/capture_reader.rs and the `capture_reader` fuzz target
//! compare them).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pcap_parser::nom::{self, IResult};
use pcap_parser::pcap::{
    LegacyPcapBlock, PcapHeader, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified,
    parse_pcap_header,
};
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le, parse_sectionheaderblock};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use super::reader::HeaderError;
use super::windows::{SharedFile, WINDOW, Window};

/// Where a capture's bytes are, shared by every reader of it.
#[derive(Clone)]
pub(super) enum Region {
    /// All of it, in memory.
    Bytes(Arc<[u8]>),
    /// A file, read a window at a time.
    File(Arc<SharedFile>),
}

/// The bytes a reader currently holds: all of a [`Region::Bytes`], or one window of a file.
enum Held {
    Bytes(Arc<[u8]>),
    Window(Arc<Window>),
}

impl Held {
    fn bytes(&self) -> &[u8] {
        match self {
            Held::Bytes(b) => b,
            Held::Window(w) => w.bytes(),
        }
    }
}

type LegacyParse = fn(&[u8]) -> IResult<&[u8], LegacyPcapBlock<'_>, PcapError<&[u8]>>;

/// How blocks are parsed, as the streaming reader of the format does it.
enum Format {
    /// Not yet known: only [`SliceReader::prefix`] is of use.
    Unknown,
    /// Classic pcap: the file header is handed out first (as `LegacyPcapReader` does), then
    /// records in the header's layout and byte order.
    Legacy {
        header: PcapHeader,
        parse: LegacyParse,
    },
    /// pcapng: the byte order changes at every section header block, as in `PcapNGReader`.
    Ng { big_endian: bool },
}

pub(super) struct SliceReader {
    region: Region,
    held: Held,
    /// Capture offset of `held`'s first byte.
    base: u64,
    /// Offset within `held` of the first unconsumed byte.
    pos: usize,
    total: u64,
    /// The smallest window the next refill asks for (raised by `grow` for a large block).
    min_window: usize,
    /// A refill found nothing more to add. Like the streaming readers, which learn of the
    /// end only when a read returns nothing, an incomplete block is first answered with
    /// "incomplete" (the caller then checks its declared length, or refuses a block that is
    /// whole but self-contradictory), and with "unexpected end" only after that refill.
    exhausted: bool,
    format: Format,
    /// Bytes made available so far (the end of the held window), for progress.
    raw_count: Arc<AtomicU64>,
    /// Why the last refill failed; the capture error names it.
    read_error: Arc<Mutex<Option<io::Error>>>,
}

/// `held`'s bytes from `pos`, as a free function so that the caller can update other fields
/// while they are borrowed.
fn unconsumed(held: &Held, pos: usize) -> &[u8] {
    held.bytes().get(pos..).unwrap_or_default()
}

impl SliceReader {
    /// A reader at the start of `region`. For a file, `first` is its window at offset
    /// 0 when the caller has it already.
    pub fn new(region: Region, first: Option<Arc<Window>>) -> io::Result<Self> {
        let (held, total) = match &region {
            Region::Bytes(b) => (Held::Bytes(Arc::clone(b)), b.len() as u64),
            Region::File(file) => {
                let first = match first {
                    Some(w) if w.start() == 0 => w,
                    _ => file.window(0, WINDOW)?,
                };
                (Held::Window(first), file.len())
            }
        };
        let available = held.bytes().len() as u64;
        Ok(SliceReader {
            region,
            held,
            base: 0,
            pos: 0,
            total,
            min_window: 0,
            exhausted: false,
            format: Format::Unknown,
            raw_count: Arc::new(AtomicU64::new(available)),
            read_error: Arc::new(Mutex::new(None)),
        })
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn raw_count(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.raw_count)
    }

    pub fn read_error(&self) -> Arc<Mutex<Option<io::Error>>> {
        Arc::clone(&self.read_error)
    }

    /// The first `n` bytes of the capture, or all of it when it is shorter (the sniffing
    /// that decides the format; before any block is consumed).
    pub fn prefix(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.base == 0 && self.held.bytes().len() < n && !self.holds_the_end() {
            if let Region::File(file) = &self.region {
                self.held = Held::Window(file.window(0, n)?);
                self.note_available();
            }
        }
        let held = self.held.bytes();
        Ok(held.get(..n.min(held.len())).unwrap_or_default())
    }

    /// Reads the classic pcap file header, as `LegacyPcapReader::new` does.
    pub fn into_legacy(mut self) -> Result<Self, HeaderError> {
        let header = match parse_pcap_header(unconsumed(&self.held, self.pos)) {
            Ok((_, h)) => h,
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => return Err(HeaderError::from(&e)),
            Err(nom::Err::Incomplete(_)) => return Err(HeaderError::Other),
        };
        let parse: LegacyParse = if header.is_modified_format() {
            parse_pcap_frame_modified
        } else if header.is_bigendian() {
            parse_pcap_frame_be
        } else {
            parse_pcap_frame
        };
        self.format = Format::Legacy { header, parse };
        Ok(self)
    }

    /// Checks the first section header block, as `PcapNGReader::new` does.
    pub fn into_ng(mut self) -> Result<Self, HeaderError> {
        match parse_sectionheaderblock(unconsumed(&self.held, self.pos)) {
            Ok(_) => {}
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => return Err(HeaderError::from(&e)),
            Err(nom::Err::Incomplete(_)) => return Err(HeaderError::Other),
        }
        self.format = Format::Ng { big_endian: false };
        Ok(self)
    }

    /// The held bytes reach the end of the capture.
    fn holds_the_end(&self) -> bool {
        self.base + self.held.bytes().len() as u64 >= self.total
    }

    fn note_available(&self) {
        let end = self.base + self.held.bytes().len() as u64;
        self.raw_count.store(end, Ordering::Relaxed);
    }
}

impl PcapReaderIterator for SliceReader {
    fn next(&mut self) -> Result<(usize, PcapBlockOwned<'_>), PcapError<&[u8]>> {
        let at_end = self.exhausted;
        let consumed = self.consumed();
        let data = unconsumed(&self.held, self.pos);
        let parsed = match &mut self.format {
            Format::Unknown => return Err(PcapError::ReadError),
            Format::Legacy { header, .. } if consumed == 0 => {
                return Ok((header.size(), PcapBlockOwned::from(header.clone())));
            }
            Format::Legacy { parse, .. } => parse(data).map(|(rest, b)| (rest, b.into())),
            Format::Ng { big_endian } => {
                let parse = if *big_endian {
                    parse_block_be
                } else {
                    parse_block_le
                };
                parse(data).map(|(rest, b)| {
                    if let Block::SectionHeader(shb) = &b {
                        *big_endian = shb.big_endian();
                    }
                    (rest, b.into())
                })
            }
        };
        match parsed {
            Ok((rest, block)) => Ok((data.len() - rest.len(), block)),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e),
            // The streaming readers' answers: the end of the input, or a refill wanted.
            Err(nom::Err::Incomplete(_)) if at_end => Err(PcapError::UnexpectedEof),
            Err(nom::Err::Incomplete(_)) => Err(PcapError::Incomplete(0)),
        }
    }

    fn consume(&mut self, offset: usize) {
        self.consume_noshift(offset);
    }

    fn consume_noshift(&mut self, offset: usize) {
        self.pos = self.pos.saturating_add(offset).min(self.held.bytes().len());
    }

    fn consumed(&self) -> usize {
        (self.base + self.pos as u64) as usize
    }

    /// Takes the next window from the first unconsumed byte; once the held bytes reach the
    /// end of the capture, notes that the input is exhausted instead.
    fn refill(&mut self) -> Result<(), PcapError<&[u8]>> {
        if self.holds_the_end() {
            self.exhausted = true;
            return Ok(());
        }
        let Region::File(file) = &self.region else {
            return Ok(());
        };
        let start = self.base + self.pos as u64;
        match file.window(start, self.min_window) {
            Ok(w) => {
                self.base = w.start();
                self.pos = (start - w.start()) as usize;
                self.held = Held::Window(w);
                self.note_available();
                Ok(())
            }
            Err(e) => {
                if let Ok(mut slot) = self.read_error.lock() {
                    slot.get_or_insert(e);
                }
                Err(PcapError::ReadError)
            }
        }
    }

    fn position(&self) -> usize {
        self.pos
    }

    fn grow(&mut self, new_size: usize) -> bool {
        self.min_window = self.min_window.max(new_size);
        true
    }

    fn data(&self) -> &[u8] {
        unconsumed(&self.held, self.pos)
    }

    fn reader_exhausted(&self) -> bool {
        self.exhausted
    }
}
