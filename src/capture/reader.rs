use std::io::Read;

use super::{CaptureError, CaptureFormat, Frame};

/// Streaming reader over a pcap or pcapng capture (gzip-compressed or not).
///
/// Skeleton: the real implementation lands with the capture work.
pub struct CaptureReader {
    path: String,
    format: CaptureFormat,
    _src: Box<dyn Read + Send>,
    warnings: Vec<String>,
}

impl CaptureReader {
    /// Opens `path`; `-` reads standard input.
    pub fn open(path: &str) -> Result<Self, CaptureError> {
        let src: Box<dyn Read + Send> = if path == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(path).map_err(|source| CaptureError::Open {
                path: path.to_string(),
                source,
            })?)
        };
        Self::from_read(path.to_string(), src)
    }

    /// Reads a capture from any byte source; `name` is used in messages and the report.
    pub fn from_read(name: String, src: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        Ok(CaptureReader {
            path: name,
            format: CaptureFormat::Pcap,
            _src: src,
            warnings: Vec::new(),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The next frame, `Ok(None)` at a clean end of input. After an `Err` the reader is done:
    /// the error says where the capture is damaged.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        Ok(None)
    }

    /// Bytes of the capture stream consumed so far (after gzip decompression): equals the
    /// file size once a complete uncompressed file has been read. Reported as `captures[].bytes`.
    pub fn bytes_read(&self) -> u64 {
        0
    }

    /// Raw input bytes read so far (compressed bytes for gzip input), for progress against
    /// [`Self::total_size`].
    pub fn input_position(&self) -> u64 {
        0
    }

    /// Size of the input when known (regular files), for progress.
    pub fn total_size(&self) -> Option<u64> {
        None
    }

    /// Non-fatal oddities seen so far (unknown blocks are not oddities; a packet referring to
    /// a missing interface is), each once.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}
