use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pcap_parser::PcapError;

use super::pcap::PcapInput;
use super::pcapng::{self, PcapngInput};
use super::source::{Sniffed, gzip_damage, is_cut_gzip_magic};
use super::{CaptureError, CaptureFormat, Frame, LinkType, SharedFrame};
use crate::time::Timestamp;

/// Initial size of the read buffer. Large enough that refills are rare, small enough that
/// many captures can be open at once.
pub const INITIAL_BUFFER: usize = 256 * 1024;

/// The largest pcapng block accepted (the buffer grows up to this, and no further). A block
/// declaring more is reported as a corrupt block length: real packet blocks are at most a
/// few hundred KiB, and this also bounds the memory a damaged or hostile file can claim.
pub const MAX_BLOCK_LEN: usize = 64 * 1024 * 1024;

/// Headroom above the largest block: pcap-parser asks for room strictly larger than a block.
const MAX_BUFFER: usize = MAX_BLOCK_LEN + 64 * 1024;

/// Magic numbers at the start of a capture (as bytes in file order).
const PCAP_MAGICS: [[u8; 4]; 5] = [
    [0xd4, 0xc3, 0xb2, 0xa1], // microseconds, little-endian
    [0xa1, 0xb2, 0xc3, 0xd4], // microseconds, big-endian
    [0x4d, 0x3c, 0xb2, 0xa1], // nanoseconds, little-endian
    [0xa1, 0xb2, 0x3c, 0x4d], // nanoseconds, big-endian
    [0x34, 0xcd, 0xb2, 0xa1], // "modified" pcap (Kuznetzov patches), little-endian
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAP_HEADER_LEN: usize = 24;
/// Enough of a section header block to read its byte-order magic and length.
const SHB_PREFIX_LEN: usize = 12;

/// A packet found by a format parser, located in its buffer: the bytes are sliced out only
/// after the parser's borrow has ended.
pub(super) struct FrameAt {
    /// Whole block or record, consumed when the caller asks for the next frame.
    pub block_len: usize,
    /// Packet data offset within the block.
    pub start: usize,
    pub caplen: usize,
    pub orig_len: u32,
    pub ts: Timestamp,
    pub link: LinkType,
}

/// One parse attempt at the start of the buffer, with no borrow of it.
pub(super) enum Step {
    Frame(FrameAt),
    /// A block that is not a packet (already taken into account); consume it.
    Skip(usize),
    /// The block is not all in the buffer; `declared` is its total length when its header is.
    NeedMore {
        declared: Option<usize>,
    },
    /// The input is exhausted; a non-empty buffer means the last block was cut short.
    Eof,
    ReadError,
    /// The block at the buffer start is damaged.
    Corrupt(String),
}

/// Maps pcap-parser's error (which borrows the buffer) to an owned step.
pub(super) fn parser_error_step(e: &PcapError<&[u8]>, declared: Option<usize>) -> Step {
    match e {
        PcapError::Eof | PcapError::UnexpectedEof => Step::Eof,
        PcapError::Incomplete(_) | PcapError::BufferTooSmall => Step::NeedMore { declared },
        PcapError::ReadError => Step::ReadError,
        _ => Step::Corrupt("corrupt block".into()),
    }
}

/// What the driver loop needs from a format: pcap-parser's refill/consume interface plus a
/// `step` that interprets one block.
pub(super) trait BlockSource {
    /// What a block cut short by the end of input is called in errors.
    const TRUNCATED: &'static str;
    fn step(&mut self, warnings: &mut Vec<String>) -> Step;
    fn data(&self) -> &[u8];
    fn consume(&mut self, n: usize);
    /// Stream offset of the buffer start.
    fn consumed(&self) -> u64;
    /// `false` on a read error.
    fn refill(&mut self) -> bool;
    fn exhausted(&self) -> bool;
    fn capacity(&self) -> usize;
    fn grow(&mut self, new_size: usize);
}

/// The format's interpreter over pcap-parser's streaming reader.
enum Input {
    Pcap(PcapInput),
    Pcapng(PcapngInput),
    /// Clean end or error: the buffer is released; `next_frame` keeps returning `Ok(None)`.
    Done,
}

/// Reader state that the format-specific part does not own.
struct Ctx {
    path: String,
    /// Bytes of the frame lent out, consumed at the next call (the frame borrows them).
    pending: usize,
    frames: u64,
    /// Stream offset just past the last block handed out or skipped.
    stream_pos: u64,
    warnings: Vec<String>,
    read_error: Arc<Mutex<Option<io::Error>>>,
    gzip: bool,
}

impl Ctx {
    fn corrupt(&self, offset: u64, what: impl Into<String>) -> CaptureError {
        CaptureError::Corrupt {
            path: self.path.clone(),
            offset,
            what: what.into(),
        }
    }

    fn io_error(&self, offset: u64) -> CaptureError {
        let source = self
            .read_error
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .unwrap_or_else(|| io::Error::other("read failed"));
        read_failure(&self.path, offset, self.gzip, source)
    }
}

/// A failed read at `offset`: the gzip layer's complaint when it is one, else an I/O error.
fn read_failure(path: &str, offset: u64, gzip: bool, source: io::Error) -> CaptureError {
    match gzip.then(|| gzip_damage(&source)).flatten() {
        Some(what) => CaptureError::Gzip {
            path: path.to_string(),
            offset,
            what,
        },
        None => CaptureError::Io {
            path: path.to_string(),
            offset,
            source,
        },
    }
}

/// Pulls blocks until one is a packet. Invariant on entry: the block at the buffer start is
/// the next unread one, except for `ctx.pending` bytes lent out with the previous frame.
fn drive<S: BlockSource>(src: &mut S, ctx: &mut Ctx) -> Result<Option<FrameAt>, CaptureError> {
    if ctx.pending > 0 {
        src.consume(ctx.pending);
        ctx.pending = 0;
    }
    loop {
        let offset = src.consumed();
        match src.step(&mut ctx.warnings) {
            Step::Frame(f) => {
                let end = f.start.checked_add(f.caplen);
                if end.is_none_or(|end| end > f.block_len || f.block_len > src.data().len()) {
                    return Err(ctx.corrupt(offset, "corrupt packet length"));
                }
                ctx.pending = f.block_len;
                ctx.frames += 1;
                ctx.stream_pos = offset + f.block_len as u64;
                return Ok(Some(f));
            }
            Step::Skip(n) => {
                src.consume(n);
                ctx.stream_pos = offset + n as u64;
            }
            Step::NeedMore { declared } => {
                let cap = src.capacity();
                if let Some(want) = declared {
                    if want > MAX_BLOCK_LEN {
                        return Err(ctx.corrupt(offset, format!("corrupt block length {want}")));
                    }
                    if want >= cap {
                        src.grow((want + 4096).max(cap.saturating_mul(2)).min(MAX_BUFFER));
                    }
                }
                let before = src.data().len();
                if !src.refill() {
                    return Err(ctx.io_error(offset));
                }
                if src.data().len() == before && !src.exhausted() {
                    // Full buffer and the parser still unsatisfied (block length not yet
                    // readable): grow once more, within the cap.
                    if cap >= MAX_BUFFER {
                        return Err(
                            ctx.corrupt(offset, format!("block larger than {MAX_BLOCK_LEN} bytes"))
                        );
                    }
                    src.grow(cap.saturating_mul(2).min(MAX_BUFFER));
                }
            }
            Step::Eof => {
                if src.data().is_empty() {
                    return Ok(None);
                }
                return Err(ctx.corrupt(offset, S::TRUNCATED));
            }
            Step::ReadError => return Err(ctx.io_error(offset)),
            Step::Corrupt(what) => return Err(ctx.corrupt(offset, what)),
        }
    }
}

/// Recognises the format by the first bytes and checks that its file header (pcap) or section
/// header block (pcapng) is all there; returns the format and that header's length.
fn identify(
    name: &str,
    gzip: bool,
    src: &mut Sniffed,
) -> Result<(CaptureFormat, usize), CaptureError> {
    // Nothing of the capture has been read yet: a failure is at its first byte.
    let io_err = |source| read_failure(name, 0, gzip, source);
    let head = src.prefix(PCAPNG_MAGIC.len()).map_err(io_err)?;
    if head.is_empty() {
        return Err(CaptureError::Empty { path: name.into() });
    }
    let is_pcap = PCAP_MAGICS.iter().any(|m| head.starts_with(m));
    let is_pcapng = head.starts_with(&PCAPNG_MAGIC);
    if !is_pcap && !is_pcapng {
        if is_cut_gzip_magic(head) {
            return Err(CaptureError::Gzip {
                path: name.into(),
                offset: 0,
                what: "truncated gzip data".into(),
            });
        }
        let prefix_of_magic = head.len() < 4
            && PCAP_MAGICS
                .iter()
                .chain(std::iter::once(&PCAPNG_MAGIC))
                .any(|m| m.starts_with(head));
        return Err(if prefix_of_magic {
            CaptureError::TruncatedHeader {
                path: name.into(),
                len: head.len(),
            }
        } else {
            CaptureError::NotACapture {
                path: name.into(),
                gzip,
            }
        });
    }
    let (format, header_len) = if is_pcap {
        (CaptureFormat::Pcap, PCAP_HEADER_LEN)
    } else {
        let head = src.prefix(SHB_PREFIX_LEN).map_err(io_err)?;
        let len = shb_len(head).map_err(|what| CaptureError::Corrupt {
            path: name.into(),
            offset: 0,
            what,
        })?;
        (CaptureFormat::Pcapng, len)
    };
    let head = src.prefix(header_len).map_err(io_err)?;
    if head.len() < header_len {
        return Err(CaptureError::TruncatedHeader {
            path: name.into(),
            len: head.len(),
        });
    }
    Ok((format, header_len))
}

/// Why a reader refused the file header (pcap-parser's error, reduced).
pub(super) enum HeaderError {
    NotRecognized,
    Other,
}

impl<I> From<&PcapError<I>> for HeaderError {
    fn from(e: &PcapError<I>) -> Self {
        match e {
            PcapError::HeaderNotRecognized => HeaderError::NotRecognized,
            _ => HeaderError::Other,
        }
    }
}

fn header_failure(name: &str, format: CaptureFormat, gzip: bool, e: HeaderError) -> CaptureError {
    match e {
        HeaderError::NotRecognized => CaptureError::NotACapture {
            path: name.into(),
            gzip,
        },
        HeaderError::Other => CaptureError::Corrupt {
            path: name.into(),
            offset: 0,
            what: match format {
                CaptureFormat::Pcap => "corrupt file header",
                CaptureFormat::Pcapng => "corrupt section header block",
            }
            .into(),
        },
    }
}

/// Applies `$body` to the format input whichever format it is.
macro_rules! each_input {
    ($input:expr, $src:ident => $body:expr, done => $done:expr) => {
        match $input {
            Input::Pcap($src) => $body,
            Input::Pcapng($src) => $body,
            Input::Done => $done,
        }
    };
}

/// Reader over a pcap or pcapng capture (gzip-compressed or not).
///
/// Every input (file, standard input, pipe, gzip) is read through one buffer of
/// [`INITIAL_BUFFER`] bytes that grows only for a block that does not fit (up to
/// [`MAX_BLOCK_LEN`]); it is never loaded whole and never seeked. Frames borrow the buffer.
pub struct CaptureReader {
    path: String,
    format: CaptureFormat,
    input: Input,
    ctx: Ctx,
    raw_count: Arc<AtomicU64>,
    total_size: Option<u64>,
    /// Link types, kept when the input is released at the end.
    link_types_at_end: Vec<LinkType>,
}

impl CaptureReader {
    /// Opens `path` and reads it; `-` reads standard input.
    pub fn open(path: &str) -> Result<Self, CaptureError> {
        if path == "-" {
            return Self::from_read(path.to_string(), Box::new(io::stdin()));
        }
        let open_err = |source| CaptureError::Open {
            path: path.to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        if meta.is_dir() {
            return Err(open_err(io::Error::other("is a directory")));
        }
        let total = meta.is_file().then_some(meta.len());
        // A regular file is read as it was when opened, even if a capture tool still appends
        // to it: the report's byte count and progress agree with the size taken here.
        let src: Box<dyn Read + Send> = match total {
            Some(len) => Box::new(file.take(len)),
            None => Box::new(file),
        };
        let mut reader = Self::from_read(path.to_string(), src)?;
        reader.total_size = total;
        Ok(reader)
    }

    /// Reads a capture from any byte source; `name` is used in messages and the report.
    pub fn from_read(name: String, src: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        let mut sniffed = Sniffed::new(src).map_err(|source| CaptureError::Io {
            path: name.clone(),
            offset: 0,
            source,
        })?;
        let gzip = sniffed.gzip;
        let (format, header_len) = identify(&name, gzip, &mut sniffed)?;
        let capacity = INITIAL_BUFFER.max(header_len.next_power_of_two());
        let raw_count = Arc::clone(&sniffed.raw_count);
        let read_error = Arc::clone(&sniffed.read_error);
        let stream = sniffed.into_stream();
        let failed = |e| header_failure(&name, format, gzip, e);
        let input = match format {
            CaptureFormat::Pcap => Input::Pcap(PcapInput::new(stream, capacity).map_err(failed)?),
            CaptureFormat::Pcapng => Input::Pcapng(PcapngInput::new(
                pcapng::stream_reader(stream, capacity).map_err(failed)?,
                capacity,
            )),
        };
        Ok(Self::assemble(
            name, format, input, raw_count, read_error, gzip,
        ))
    }

    fn assemble(
        name: String,
        format: CaptureFormat,
        input: Input,
        raw_count: Arc<AtomicU64>,
        read_error: Arc<Mutex<Option<io::Error>>>,
        gzip: bool,
    ) -> Self {
        let stream_pos = match format {
            CaptureFormat::Pcap => PCAP_HEADER_LEN as u64,
            CaptureFormat::Pcapng => 0,
        };
        CaptureReader {
            path: name.clone(),
            format,
            input,
            ctx: Ctx {
                path: name,
                pending: 0,
                frames: 0,
                stream_pos,
                warnings: Vec::new(),
                read_error,
                gzip,
            },
            raw_count,
            total_size: None,
            link_types_at_end: Vec::new(),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The next frame, `Ok(None)` at a clean end of input. After an `Err` the reader is done:
    /// the error says where the capture is damaged, every packet before that point has been
    /// delivered, and later calls return `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let found =
            each_input!(&mut self.input, src => drive(src, &mut self.ctx), done => return Ok(None));
        let at = match found {
            Ok(Some(at)) => at,
            Ok(None) => {
                self.finish();
                return Ok(None);
            }
            Err(e) => {
                self.finish();
                return Err(e);
            }
        };
        let buf = each_input!(&self.input, src => src.data(), done => &[]);
        // `drive` checked the range against the buffer.
        let data = buf.get(at.start..at.start + at.caplen).unwrap_or_default();
        let chunk = match &self.input {
            Input::Pcap(src) => {
                let (chunk, offset) = src.chunk();
                Some(SharedFrame {
                    chunk,
                    offset: offset + at.start,
                })
            }
            _ => None,
        };
        Ok(Some(Frame {
            number: self.ctx.frames,
            ts: at.ts,
            link_type: at.link,
            data,
            orig_len: at.orig_len,
            chunk,
        }))
    }

    fn finish(&mut self) {
        self.link_types_at_end = self.link_types();
        let missing = match &self.input {
            Input::Pcapng(src) => src.missing_interface_warning(),
            _ => None,
        };
        self.ctx.warnings.extend(missing);
        // Releases the buffer.
        self.input = Input::Done;
    }

    /// TLS key logs in pcapng Decryption Secrets Blocks go to `keys` as they are read (the
    /// blocks come before the packets they decrypt).
    pub fn set_key_store(
        &mut self,
        keys: Option<std::sync::Arc<crate::proto::tls::keylog::KeyStore>>,
    ) {
        if let Input::Pcapng(src) = &mut self.input {
            src.keys = keys;
        }
    }

    /// Frames handed out so far.
    pub fn frames_read(&self) -> u64 {
        self.ctx.frames
    }

    /// Link types the capture declares (`captures[].link_types`): the file header's for
    /// classic pcap, every interface's of every section read so far for pcapng, in first-seen
    /// order without repeats. Still available after the end.
    pub fn link_types(&self) -> Vec<LinkType> {
        match &self.input {
            Input::Pcap(src) => vec![src.link_type()],
            Input::Pcapng(src) => src.link_types().to_vec(),
            Input::Done => self.link_types_at_end.clone(),
        }
    }

    /// Bytes of the capture stream consumed so far (after gzip decompression), up to the end
    /// of the last frame handed out: equals the file size once a complete uncompressed file
    /// has been read. Reported as `captures[].bytes`.
    pub fn bytes_read(&self) -> u64 {
        self.ctx.stream_pos
    }

    /// Raw input bytes read so far (compressed bytes for gzip input), for progress against
    /// [`Self::total_size`]. Runs ahead of [`Self::bytes_read`] by up to a buffer.
    pub fn input_position(&self) -> u64 {
        self.raw_count.load(Ordering::Relaxed)
    }

    /// Size of the input when known (regular files), for progress.
    pub fn total_size(&self) -> Option<u64> {
        self.total_size
    }

    /// The input is gzip-compressed (decompressing it is most of the cost of reading it).
    pub fn is_compressed(&self) -> bool {
        self.ctx.gzip
    }

    /// Non-fatal oddities seen so far (unknown blocks are not oddities; a packet referring to
    /// a missing interface is), each once.
    /// Each names the file first, like the errors.
    pub fn take_warnings(&mut self) -> Vec<String> {
        let path = &self.path;
        std::mem::take(&mut self.ctx.warnings)
            .into_iter()
            .map(|w| format!("{path}: {w}"))
            .collect()
    }
}

/// Total length of the section header block whose first 12 bytes are in `head`.
fn shb_len(head: &[u8]) -> Result<usize, String> {
    let word = |at: usize| -> Option<[u8; 4]> { head.get(at..at + 4)?.try_into().ok() };
    let (Some(len), Some(bom)) = (word(4), word(8)) else {
        return Ok(SHB_PREFIX_LEN);
    };
    let (len, big_endian) = match bom {
        [0x4d, 0x3c, 0x2b, 0x1a] => (u32::from_le_bytes(len), false),
        [0x1a, 0x2b, 0x3c, 0x4d] => (u32::from_be_bytes(len), true),
        _ => return Err(pcapng::bad_bom(bom)),
    };
    let len = len as usize;
    // Section 4.1: type, length, BOM, versions, section length, length again = 28 bytes.
    if len < 28 || len % 4 != 0 || len > MAX_BLOCK_LEN {
        return Err(pcapng::bad_shb_len(len, big_endian));
    }
    Ok(len)
}
