//! Capture files read through memory maps, one window at a time. This is the crate's only
//! unsafe code: [`map_window`].
//!
//! Why map: read(2) copies every byte from the page cache into the reader's buffer (about a
//! third of a one-thread run over a cached 1 GB capture), and with `--threads N` every worker
//! reads the whole file, so the copy was paid N times. Workers that share one set of mapped
//! windows (see [`super::CaptureReader::reopen`]) pay the mapping once between them.
//!
//! What it does not do: make one reader faster. Measured on the 1 GB benchmark (Linux 6.18,
//! a VM), one reader of a mapped file took ~10% more CPU than reading it: setting up and
//! tearing down the page-table entry of every 4 KiB page costs about what copying the page
//! does, and the parser then waits for memory that the copy would have brought into the
//! cache. Huge-page advice, MAP_POPULATE and window sizes from 1 MiB to the whole file did
//! not change that. So the pipeline maps only for sharded workers (`Config::read_mode`).
//!
//! Why windows rather than one map of the whole file: every touched page of a mapping stays
//! resident (and counts in the process's RSS) until it is unmapped. One map of a 1 GB capture
//! ended the run with ~1 GB resident; windows of [`WINDOW`] bytes, of which at most
//! [`KEPT_WINDOWS`] stay mapped for the readers that lag, keep it bounded whatever the file
//! size. Releasing parts of one big map instead would need `madvise(MADV_DONTNEED)`, which
//! memmap2 offers only as unsafe: a second unsafe call for the same result.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};

use memmap2::{Advice, Mmap, MmapOptions};

/// Bytes mapped at a time (more when one block is larger). Mapping and unmapping cost a
/// system call each, negligible per byte from 1 MiB up; the size matters for sharing: see
/// [`KEPT_WINDOWS`].
pub(super) const WINDOW: usize = 4 * 1024 * 1024;

/// Recent windows kept mapped so that the other readers of the same file (one per worker,
/// see [`super::CaptureReader::reopen`]) find them instead of mapping and faulting the same
/// pages again. Sharded workers run up to two rounds of 4,096 frames apart (~10 MB of a
/// typical capture); 4 windows of 4 MiB cover that (measured on the 1 GB benchmark with two
/// workers: 19.5k page faults against 17k for one reader; 4 windows of 1 MiB gave 33k, as
/// the lagging worker mapped its own). A worker that lags further maps its own windows:
/// correct, only slower. Resident mapped pages stay below (1 + this) windows per file.
const KEPT_WINDOWS: usize = 4;

/// A regular file, mapped window by window, shared by every reader of it.
pub(super) struct MappedFile {
    file: File,
    /// The file's size when it was opened: like the reading path, the capture is the file as
    /// it was then, even if a capture tool still appends to it.
    len: u64,
    recent: Mutex<VecDeque<Arc<Window>>>,
}

/// One mapped range of a capture file.
pub(super) struct Window {
    start: u64,
    map: Mmap,
}

impl Window {
    /// Offset of the window's first byte in the file.
    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

impl MappedFile {
    /// Maps the first window of `file` (`len` bytes, more than zero): an error means the file
    /// cannot be mapped at all and should be read instead.
    pub fn new(file: File, len: u64) -> io::Result<(Arc<MappedFile>, Arc<Window>)> {
        let mapped = Arc::new(MappedFile {
            file,
            len,
            recent: Mutex::new(VecDeque::with_capacity(KEPT_WINDOWS + 1)),
        });
        let first = mapped.window(0, WINDOW)?;
        Ok((mapped, first))
    }

    pub fn len(&self) -> u64 {
        self.len
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
        let mut recent = self
            .recent
            .lock()
            .map_err(|_| io::Error::other("window cache poisoned"))?;
        // Every reader of the file cuts the same blocks and so asks for the same windows.
        if let Some(w) = recent
            .iter()
            .find(|w| w.start <= start && w.start + w.map.len() as u64 >= end)
        {
            return Ok(Arc::clone(w));
        }
        // A file cut shorter than what is about to be mapped would raise SIGBUS on the first
        // touch of a page past its new end. Checking first catches a file truncated between
        // two windows (a ring buffer's file being rewritten); it cannot catch one truncated
        // while a window is being read. That race is why `--no-mmap` exists.
        let now = self.file.metadata()?.len();
        if now < end {
            return Err(io::Error::other(format!(
                "the file shrank to {now} bytes while it was being read"
            )));
        }
        let len = usize::try_from(end - start).map_err(|_| io::Error::other("window too large"))?;
        let map = map_window(&self.file, start, len)?;
        // Read-ahead hint only; a kernel that refuses it reads the file all the same.
        let _ = map.advise(Advice::Sequential);
        let window = Arc::new(Window { start, map });
        recent.push_back(Arc::clone(&window));
        if recent.len() > KEPT_WINDOWS {
            recent.pop_front();
        }
        Ok(window)
    }
}

/// Maps `len` bytes of `file` from `start`, read-only.
#[allow(unsafe_code)]
fn map_window(file: &File, start: u64, len: usize) -> io::Result<Mmap> {
    // SAFETY: `map_copy_read_only` makes a private mapping with PROT_READ: nothing in this
    // process can write through it, and the file handle was opened read-only. memmap2 leaves
    // one obligation to the caller: the file must not change while it is mapped, since the
    // `&[u8]` handed out would then change under us. No process can guarantee that about a
    // file others may write. What keeps the consequences bounded here:
    // - the mapped bytes are untrusted input whatever happens: every parser reads them through
    //   bounds-checked slices and treats any content as possible, so bytes changed by another
    //   writer can only yield wrong frames or a capture error, never an out-of-bounds access;
    // - the window never extends past the file's length at the time it is mapped (checked by
    //   the caller), and memmap2 unmaps it when the last `Arc<Window>` drops, after every
    //   borrow of it has ended.
    // The real hazard is another process truncating the file while a window of it is mapped
    // (a capture tool's ring buffer, `tcpdump -W`, reopening the file with O_TRUNC): touching a
    // page past the new end raises SIGBUS and ends the process. That is not memory corruption,
    // but it is a crash, and the documented remedy is `--no-mmap` (docs/errors.md).
    unsafe {
        MmapOptions::new()
            .offset(start)
            .len(len)
            .map_copy_read_only(file)
    }
}
