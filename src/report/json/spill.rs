//! Where the JSON report keeps what waits for the end of the run: flow records and sorted
//! runs of their index entries, appended to one unnamed temporary file (in `TMPDIR`, gone
//! when the run ends) and read back by offset.
//!
//! Memory: a 64 KiB write buffer and a 64 KiB read window, whatever the size of the file.
//! Without a temporary file (read-only or missing `TMPDIR`) the bytes are held in memory up to
//! [`MEMORY_BUDGET`], then the run fails with [`SpillError::NoTempFile`] rather than growing
//! without bound; a full disk fails with [`SpillError::Write`].

use std::io::{self, Read, Seek, SeekFrom, Write};

/// What the bytes are written to: a file, or a fake one in tests.
pub(super) trait SpillFile: Read + Write + Seek {}
impl<T: Read + Write + Seek> SpillFile for T {}

/// The most bytes held in memory when no temporary file could be created.
pub(super) const MEMORY_BUDGET: u64 = 64 << 20;

const WRITE_BUFFER: usize = 64 * 1024;
const READ_WINDOW: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("cannot write the JSON report's temporary file (in TMPDIR)")]
    Write(#[source] io::Error),
    #[error("cannot read back the JSON report's temporary file")]
    Read(#[source] io::Error),
    #[error(
        "the JSON report holds over {} MiB of flows and could not create a temporary file for \
         them in TMPDIR (set TMPDIR to a writable directory, or use --format ndjson)",
        MEMORY_BUDGET >> 20
    )]
    NoTempFile(#[source] io::Error),
    #[error("malformed data in the JSON report's temporary file")]
    Corrupt,
    #[error("a flow record over 4 GiB")]
    RecordTooLarge,
}

impl From<SpillError> for io::Error {
    fn from(e: SpillError) -> Self {
        let kind = match &e {
            SpillError::Write(s) | SpillError::Read(s) | SpillError::NoTempFile(s) => s.kind(),
            SpillError::Corrupt => io::ErrorKind::InvalidData,
            SpillError::RecordTooLarge => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

enum Backing {
    File(Box<dyn SpillFile>),
    /// `why`: the temporary file could not be created.
    Memory {
        held: Vec<u8>,
        why: io::Error,
    },
}

pub(super) struct Spill {
    backing: Backing,
    /// Appended bytes not yet in the file.
    pending: Vec<u8>,
    /// Bytes appended in all.
    len: u64,
    /// Bytes in the file (`len` less `pending`).
    flushed: u64,
    /// A copy of the file's bytes from `window_at`: reads close together cost one `read`.
    window: Vec<u8>,
    window_at: u64,
}

impl Spill {
    /// An unnamed temporary file, or memory if none can be created (see [`MEMORY_BUDGET`]).
    pub(super) fn new() -> Self {
        match tempfile::tempfile() {
            Ok(f) => Self::file(Box::new(f)),
            Err(why) => Self::memory(why),
        }
    }

    pub(super) fn file(file: Box<dyn SpillFile>) -> Self {
        Self::with(Backing::File(file))
    }

    pub(super) fn memory(why: io::Error) -> Self {
        Self::with(Backing::Memory {
            held: Vec::new(),
            why,
        })
    }

    fn with(backing: Backing) -> Self {
        Spill {
            backing,
            pending: Vec::new(),
            len: 0,
            flushed: 0,
            window: Vec::new(),
            window_at: 0,
        }
    }

    /// Bytes appended so far: the offset of the next append.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Appends `bytes`; returns where they start.
    pub(super) fn append(&mut self, bytes: &[u8]) -> Result<u64, SpillError> {
        let at = self.len;
        match &mut self.backing {
            Backing::Memory { held, why } => {
                if at + bytes.len() as u64 > MEMORY_BUDGET {
                    let why = io::Error::new(why.kind(), why.to_string());
                    return Err(SpillError::NoTempFile(why));
                }
                held.extend_from_slice(bytes);
            }
            Backing::File(_) => {
                if self.pending.len() + bytes.len() > WRITE_BUFFER {
                    self.flush()?;
                }
                if bytes.len() > WRITE_BUFFER {
                    self.write_out(bytes)?;
                } else {
                    if self.pending.capacity() == 0 {
                        self.pending.reserve_exact(WRITE_BUFFER);
                    }
                    self.pending.extend_from_slice(bytes);
                }
            }
        }
        self.len += bytes.len() as u64;
        Ok(at)
    }

    /// Writes the buffered bytes to the file (before the document starts, so that a full disk
    /// stops the run before any of it is written).
    pub(super) fn flush(&mut self) -> Result<(), SpillError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let written = self.write_out(&pending);
        self.pending = pending;
        self.pending.clear();
        written
    }

    /// Writes `bytes` at the end of the file (after `flushed`).
    fn write_out(&mut self, bytes: &[u8]) -> Result<(), SpillError> {
        if let Backing::File(f) = &mut self.backing {
            f.seek(SeekFrom::Start(self.flushed))
                .and_then(|_| f.write_all(bytes))
                .map_err(SpillError::Write)?;
        }
        self.flushed += bytes.len() as u64;
        Ok(())
    }

    /// The `len` bytes at `at`: borrowed from memory or the read window where they are, else
    /// read into `buf`.
    pub(super) fn read<'a>(
        &'a mut self,
        at: u64,
        len: usize,
        buf: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], SpillError> {
        let end = at.checked_add(len as u64).ok_or(SpillError::Corrupt)?;
        if end > self.len {
            return Err(SpillError::Corrupt);
        }
        if matches!(self.backing, Backing::Memory { .. }) {
            return match &self.backing {
                Backing::Memory { held, .. } => slice(held, at, len),
                Backing::File(_) => Err(SpillError::Corrupt),
            };
        }
        if end > self.flushed {
            self.flush()?;
        }
        let in_window = at >= self.window_at && end <= self.window_at + self.window.len() as u64;
        if !in_window {
            if len > READ_WINDOW {
                buf.clear();
                buf.resize(len, 0);
                self.read_exact_at(at, buf)?;
                return Ok(buf);
            }
            let n = (self.len - at).min(READ_WINDOW as u64) as usize;
            let mut window = std::mem::take(&mut self.window);
            window.resize(n, 0);
            let read = self.read_exact_at(at, &mut window);
            self.window = window;
            self.window_at = at;
            if let Err(e) = read {
                self.window.clear();
                return Err(e);
            }
        }
        slice(&self.window, at - self.window_at, len)
    }

    /// Fills `out` from `at` on, bypassing the read window (for blocks read once).
    pub(super) fn read_exact_at(&mut self, at: u64, out: &mut [u8]) -> Result<(), SpillError> {
        let end = at
            .checked_add(out.len() as u64)
            .ok_or(SpillError::Corrupt)?;
        if end > self.len {
            return Err(SpillError::Corrupt);
        }
        if end > self.flushed {
            self.flush()?;
        }
        match &mut self.backing {
            Backing::Memory { held, .. } => {
                out.copy_from_slice(slice(held, at, out.len())?);
                Ok(())
            }
            Backing::File(f) => f
                .seek(SeekFrom::Start(at))
                .and_then(|_| f.read_exact(out))
                .map_err(SpillError::Read),
        }
    }
}

fn slice(bytes: &[u8], at: u64, len: usize) -> Result<&[u8], SpillError> {
    usize::try_from(at)
        .ok()
        .and_then(|at| bytes.get(at..at.checked_add(len)?))
        .ok_or(SpillError::Corrupt)
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Cursor;

    use super::*;

    /// Appends records of many sizes (some over the write buffer and the read window) and
    /// reads them back in another order, from a file and from memory.
    #[test]
    fn reads_back_what_was_appended() {
        let records: Vec<Vec<u8>> = (0..300u32)
            .map(|i| {
                let n = match i % 7 {
                    0 => 150_000,
                    1 => 0,
                    _ => (i as usize * 37) % 9000,
                };
                (0..n).map(|k| (k as u32 ^ i) as u8).collect()
            })
            .collect();
        for mut spill in [
            Spill::file(Box::new(Cursor::new(Vec::new()))),
            Spill::memory(io::Error::other("none")),
        ] {
            let mut at = Vec::new();
            for (i, r) in records.iter().enumerate() {
                at.push(spill.append(r).unwrap());
                // Reads while appending (of bytes still buffered, too).
                if i % 10 == 0 {
                    let mut buf = Vec::new();
                    let back = spill
                        .read(at[i / 2], records[i / 2].len(), &mut buf)
                        .unwrap();
                    assert_eq!(back, &records[i / 2][..]);
                }
            }
            let mut buf = Vec::new();
            for i in (0..records.len()).rev().chain(0..records.len()) {
                let back = spill.read(at[i], records[i].len(), &mut buf).unwrap();
                assert_eq!(back, &records[i][..], "record {i}");
                let mut exact = vec![0; records[i].len()];
                spill.read_exact_at(at[i], &mut exact).unwrap();
                assert_eq!(exact, records[i]);
            }
            let mut buf = Vec::new();
            assert!(matches!(
                spill.read(spill.len() - 1, 2, &mut buf),
                Err(SpillError::Corrupt)
            ));
        }
    }

    /// A file that takes `budget` bytes, the last write cut short, then fails like a full disk.
    pub(in crate::report::json) struct Full {
        pub data: Cursor<Vec<u8>>,
        pub budget: usize,
    }

    impl Write for Full {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            let n = b.len().min(self.budget);
            self.budget -= n;
            self.data.write(&b[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Read for Full {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.data.read(b)
        }
    }

    impl Seek for Full {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.data.seek(to)
        }
    }

    #[test]
    fn a_full_disk_is_a_write_error() {
        let mut spill = Spill::file(Box::new(Full {
            data: Cursor::new(Vec::new()),
            budget: 100_000,
        }));
        let err = (0..100)
            .map(|_| spill.append(&[7; 5000]))
            .find_map(Result::err)
            .expect("the disk fills up");
        assert!(matches!(&err, SpillError::Write(e) if e.kind() == io::ErrorKind::StorageFull));
        let io = io::Error::from(err);
        assert_eq!(io.kind(), io::ErrorKind::StorageFull);
        assert!(io.to_string().contains("temporary file"), "{io}");
    }

    #[test]
    fn a_failed_read_is_a_read_error() {
        struct NoRead(Cursor<Vec<u8>>);
        impl Read for NoRead {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("I/O error"))
            }
        }
        impl Write for NoRead {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.write(b)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl Seek for NoRead {
            fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
                self.0.seek(to)
            }
        }
        let mut spill = Spill::file(Box::new(NoRead(Cursor::new(Vec::new()))));
        spill.append(b"record").unwrap();
        let mut buf = Vec::new();
        assert!(matches!(
            spill.read(0, 6, &mut buf),
            Err(SpillError::Read(_))
        ));
    }

    #[test]
    fn memory_without_a_temporary_file_is_bounded() {
        let mut spill = Spill::memory(io::Error::from(io::ErrorKind::PermissionDenied));
        let block = vec![1u8; 1 << 20];
        for _ in 0..MEMORY_BUDGET >> 20 {
            spill.append(&block).unwrap();
        }
        let err = spill.append(b"x").unwrap_err();
        assert!(
            matches!(&err, SpillError::NoTempFile(e) if e.kind() == io::ErrorKind::PermissionDenied)
        );
        assert!(err.to_string().contains("TMPDIR"), "{err}");
        assert_eq!(spill.len(), MEMORY_BUDGET);
    }
}
