//! Capture files read a window at a time into memory that every reader of the file shares.
//!
//! Why: with `--threads N` every worker reads the whole file (each keeps the flows of its
//! shard and skips the others), and read(2) copying every byte from the page cache into a
//! reader's buffer was ~40% of a run over a cached 1 GB capture: N workers paid it N times.
//! Workers that share one [`SharedFile`] (see [`super::CaptureReader::reopen`]) find the
//! window another worker has just read in [`SharedFile::window`]'s cache and parse it in
//! place, so the file is copied into memory about once whoever asks first.
//!
//! Why reads rather than a memory map: mapping was measured too, and brought nothing here
//! (setting up a page-table entry per 4 KiB page costs about what copying it does), while it
//! needs unsafe code and turns a file truncated by another program into SIGBUS. A window
//! filled by a read is ordinary memory: a file that shrinks is a read error.
//!
//! Why windows rather than the whole file: the windows are heap memory and count in full in
//! the process's RSS. At most [`KEPT_WINDOWS`] stay cached, plus the one each reader holds,
//! so the memory is bounded whatever the file size.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// Bytes read at a time (more when one block is larger). Small enough that the reader which
/// reads a window still has it in its CPU cache when it parses it: on the 1 GB benchmark with
/// two workers, 1 MiB windows cost ~0.06 s more user time than 256 KiB ones (the parser
/// waiting for memory), while 128 KiB ones gained nothing more.
pub(super) const WINDOW: usize = 256 * 1024;

/// Recent windows kept so that the other readers of the same file (one per worker, see
/// [`super::CaptureReader::reopen`]) find them instead of reading the same bytes again:
/// 8 MiB. Sharded workers run up to `ROUNDS_IN_FLIGHT` rounds of `ROUND_FRAMES` frames apart
/// (src/pipeline/sharded.rs), ~2 MB of a typical capture; a worker that lags further than
/// the cache covers reads its own windows: correct, only slower. Memory: at most this many
/// windows plus one per reader, and [`SPARE_BUFFERS`].
const KEPT_WINDOWS: usize = 32;

/// Buffers of evicted windows kept for the next windows, so that a run does not allocate,
/// zero and fault in fresh memory for every window.
const SPARE_BUFFERS: usize = 2;

/// A regular file, read window by window, shared by every reader of it.
pub(super) struct SharedFile {
    file: File,
    /// Positioned reads where the platform has no `pread`: seek and read under this lock.
    #[cfg(not(unix))]
    seek_lock: Mutex<()>,
    /// The file's size when it was opened: like the streaming path, the capture is the file
    /// as it was then, even if a capture tool still appends to it.
    len: u64,
    cache: Mutex<Cache>,
}

struct Cache {
    recent: VecDeque<Arc<Window>>,
    spare: Vec<Box<[u8]>>,
}

impl Cache {
    /// The cached window that starts at or before `start` and reaches `end`. Every reader of
    /// the file cuts the same blocks and so asks for the same windows.
    fn find(&self, start: u64, end: u64) -> Option<Arc<Window>> {
        self.recent
            .iter()
            .find(|w| w.start <= start && w.end() >= end)
            .map(Arc::clone)
    }

    fn recycle(&mut self, bytes: Box<[u8]>) {
        if bytes.len() == WINDOW && self.spare.len() < SPARE_BUFFERS {
            self.spare.push(bytes);
        }
    }
}

/// One range of a capture file, in memory.
pub(super) struct Window {
    start: u64,
    bytes: Box<[u8]>,
}

impl Window {
    /// Offset of the window's first byte in the file.
    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl SharedFile {
    /// Reads the first window of `file` (`len` bytes, more than zero): an error means the
    /// file cannot be read this way and should be streamed instead.
    pub fn new(file: File, len: u64) -> io::Result<(Arc<SharedFile>, Arc<Window>)> {
        let shared = Arc::new(SharedFile {
            file,
            #[cfg(not(unix))]
            seek_lock: Mutex::new(()),
            len,
            cache: Mutex::new(Cache {
                recent: VecDeque::with_capacity(KEPT_WINDOWS + 1),
                spare: Vec::with_capacity(SPARE_BUFFERS),
            }),
        });
        let first = shared.window(0, WINDOW)?;
        Ok((shared, first))
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    fn cache(&self) -> io::Result<MutexGuard<'_, Cache>> {
        self.cache
            .lock()
            .map_err(|_| io::Error::other("window cache poisoned"))
    }

    /// The window that starts at `start` and holds at least `min_len` bytes, or what is left
    /// of the file when that is less. `start` must be below the file's length.
    pub fn window(&self, start: u64, min_len: usize) -> io::Result<Arc<Window>> {
        if start >= self.len {
            return Err(io::Error::other("window past the end of the file"));
        }
        let end = self
            .len
            .min(start.saturating_add(WINDOW.max(min_len) as u64));
        let len = usize::try_from(end - start).map_err(|_| io::Error::other("window too large"))?;
        // The lock is not held while reading: the other readers go on parsing the windows
        // they find, and one that wants the window being read reads it too (rare: readers
        // are usually a few windows apart) rather than waiting.
        let spare = {
            let mut cache = self.cache()?;
            if let Some(w) = cache.find(start, end) {
                return Ok(w);
            }
            cache.spare.pop().filter(|b| b.len() == len)
        };
        let mut bytes = spare.unwrap_or_else(|| vec![0; len].into_boxed_slice());
        if let Err(e) = self.read_at(&mut bytes, start) {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                let now = self.file.metadata()?.len();
                return Err(io::Error::other(format!(
                    "the file shrank to {now} bytes while it was being read"
                )));
            }
            return Err(e);
        }
        let mut cache = self.cache()?;
        if let Some(w) = cache.find(start, end) {
            cache.recycle(bytes);
            return Ok(w);
        }
        let window = Arc::new(Window { start, bytes });
        cache.recent.push_back(Arc::clone(&window));
        if cache.recent.len() > KEPT_WINDOWS {
            // Reusable only when no reader holds it any more.
            if let Some(old) = cache
                .recent
                .pop_front()
                .and_then(|w| Arc::try_unwrap(w).ok())
            {
                cache.recycle(old.bytes);
            }
        }
        Ok(window)
    }

    /// Fills `buf` from offset `at` of the file; `UnexpectedEof` when the file is shorter.
    #[cfg(unix)]
    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, at)
    }

    #[cfg(not(unix))]
    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let _seek = self
            .seek_lock
            .lock()
            .map_err(|_| io::Error::other("file lock poisoned"))?;
        let mut file = &self.file;
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(buf)
    }
}
