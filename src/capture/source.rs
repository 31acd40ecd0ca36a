//! The byte stream under the capture parsers: raw input counted for progress, gzip recognised
//! by its magic bytes (never by the file name), and read errors kept so the capture error can
//! say what failed (pcap-parser reduces them to a unit `ReadError`).

use std::io::{self, Chain, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;

/// gzip member header, RFC 1952 section 2.3.1 (ID1, ID2).
pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// `head` (all of a short input) is the start of a gzip magic but not all of it.
pub(super) fn is_cut_gzip_magic(head: &[u8]) -> bool {
    !head.is_empty() && head.len() < GZIP_MAGIC.len() && GZIP_MAGIC.starts_with(head)
}

/// Counts the raw bytes read from the underlying input (compressed bytes for gzip input).
struct Counted {
    inner: Box<dyn Read + Send>,
    count: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What the format parsers read from: the sniffed prefix, then the rest of the stream.
pub(super) type Stream = KeepError<Chain<Cursor<Vec<u8>>, Box<dyn Read + Send>>>;

/// Retries interrupted reads and stores the first real read error where the reader can
/// retrieve it after pcap-parser has reported only that "a read failed".
pub(super) struct KeepError<R> {
    inner: R,
    slot: Arc<Mutex<Option<io::Error>>>,
}

impl<R: Read> Read for KeepError<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = e.kind();
                    if let Ok(mut slot) = self.slot.lock() {
                        slot.get_or_insert(e);
                    }
                    return Err(io::Error::from(kind));
                }
                ok => return ok,
            }
        }
    }
}

/// The start of the (decompressed) capture stream, read ahead to recognise the format.
pub(super) struct Sniffed {
    /// Bytes already read from `rest`; they come first in [`Self::into_stream`].
    pub head: Vec<u8>,
    rest: Box<dyn Read + Send>,
    pub raw_count: Arc<AtomicU64>,
    pub read_error: Arc<Mutex<Option<io::Error>>>,
    /// The input is gzip-compressed: read errors may come from the decompressor.
    pub gzip: bool,
}

impl Sniffed {
    /// Wraps `src`, transparently decompressing it when it starts with the gzip magic. Only
    /// the two magic bytes are read here, so an error is one of the raw input; read the
    /// capture's start with [`Self::fill_to`], whose errors may come from the decompressor
    /// (see [`gzip_damage`]).
    pub fn new(src: Box<dyn Read + Send>) -> io::Result<Self> {
        let raw_count = Arc::new(AtomicU64::new(0));
        let mut raw: Box<dyn Read + Send> = Box::new(Counted {
            inner: src,
            count: Arc::clone(&raw_count),
        });
        let mut head = Vec::new();
        fill(&mut raw, &mut head, GZIP_MAGIC.len())?;
        let gzip = head.starts_with(&GZIP_MAGIC);
        let rest: Box<dyn Read + Send> = if gzip {
            // Multi-member: `cat a.gz b.gz` and bgzip-style files are one stream.
            let gz = MultiGzDecoder::new(Cursor::new(std::mem::take(&mut head)).chain(raw));
            Box::new(gz)
        } else {
            raw
        };
        Ok(Sniffed {
            head,
            rest,
            raw_count,
            read_error: Arc::new(Mutex::new(None)),
            gzip,
        })
    }

    /// Reads more of the stream until `head` holds `want` bytes or the input ends.
    pub fn fill_to(&mut self, want: usize) -> io::Result<()> {
        fill(&mut self.rest, &mut self.head, want)
    }

    /// The first `n` bytes, fewer when the input is shorter.
    pub fn prefix(&mut self, n: usize) -> io::Result<&[u8]> {
        self.fill_to(n)?;
        Ok(&self.head)
    }

    pub fn into_stream(self) -> Stream {
        KeepError {
            inner: Cursor::new(self.head).chain(self.rest),
            slot: self.read_error,
        }
    }
}

/// What is wrong with a gzip stream, when `e` came from the decompressor: flate2 reports a
/// stream that ends early (in the header, the deflate data or the trailer) as `UnexpectedEof`,
/// damaged deflate data, a bad header or a checksum mismatch (RFC 1952 section 2.3.1, CRC32 and
/// ISIZE) as `InvalidInput`. Reading a file or a pipe yields neither kind, so for gzip input
/// they name the gzip layer rather than the disk.
pub(super) fn gzip_damage(e: &io::Error) -> Option<String> {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Some("truncated gzip data".into()),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            Some(format!("corrupt gzip data ({e})"))
        }
        _ => None,
    }
}

/// Reads until `buf` holds `want` bytes or `src` ends, retrying interrupted reads; a pipe may
/// deliver a header in several pieces.
fn fill(src: &mut Box<dyn Read + Send>, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let missing = want.saturating_sub(buf.len()) as u64;
    if missing > 0 {
        src.by_ref().take(missing).read_to_end(buf)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A source that hands out one byte per read, like a slow pipe.
    struct Trickle(Vec<u8>, usize);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.get(self.1), buf.first_mut()) {
                (Some(b), Some(out)) => {
                    *out = *b;
                    self.1 += 1;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn head_is_filled_across_short_reads() {
        let mut s = Sniffed::new(Box::new(Trickle(b"0123456789".to_vec(), 0))).unwrap();
        s.fill_to(8).unwrap();
        assert_eq!(s.head, b"01234567");
        let mut all = Vec::new();
        s.into_stream().read_to_end(&mut all).unwrap();
        assert_eq!(all, b"0123456789");
    }

    #[test]
    fn gzip_is_recognised_by_magic_and_counted_raw() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&[7u8; 1000]).unwrap();
        let gz = enc.finish().unwrap();
        let gz_len = gz.len() as u64;
        let mut s = Sniffed::new(Box::new(Cursor::new(gz))).unwrap();
        assert!(s.gzip);
        s.fill_to(4).unwrap();
        assert_eq!(s.head, [7, 7, 7, 7]);
        let count = Arc::clone(&s.raw_count);
        let mut all = Vec::new();
        s.into_stream().read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), 1000);
        assert_eq!(count.load(Ordering::Relaxed), gz_len);
    }

    #[test]
    fn read_errors_are_kept() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let s = Sniffed {
            gzip: false,
            head: Vec::new(),
            rest: Box::new(Failing),
            raw_count: Arc::new(AtomicU64::new(0)),
            read_error: Arc::new(Mutex::new(None)),
        };
        let slot = Arc::clone(&s.read_error);
        let mut stream = s.into_stream();
        assert!(stream.read(&mut [0u8; 4]).is_err());
        let kept = slot.lock().unwrap().take().unwrap();
        assert_eq!(kept.to_string(), "disk on fire");
    }
}
