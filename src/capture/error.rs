use std::io;

/// Why a capture could not be read, or where reading it had to stop. Every variant names the
/// file; offsets are byte offsets into the (decompressed) capture stream.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: read error at byte {offset}: {source}")]
    Io {
        path: String,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("{path}: empty file")]
    Empty { path: String },
    /// `gzip`: the bytes that are not a capture came out of a gzip stream.
    #[error("{path}: not a pcap or pcapng file{}", if *gzip { " (inside gzip)" } else { "" })]
    NotACapture { path: String, gzip: bool },
    /// The input ends inside the file header (pcap) or section header block (pcapng), after
    /// `len` bytes.
    #[error("{path}: truncated file header (the file ends at byte {len})")]
    TruncatedHeader { path: String, len: usize },
    /// The gzip layer failed: the compressed file is cut short (`what` = "truncated gzip
    /// data") or damaged. `offset` is where the first incomplete block of the capture inside
    /// starts, as a byte offset into the decompressed stream.
    #[error("{path}: {what} at byte {offset} of the decompressed capture")]
    Gzip {
        path: String,
        offset: u64,
        what: String,
    },
    #[error("{path}: {what} at byte {offset}")]
    Corrupt {
        path: String,
        offset: u64,
        what: String,
    },
}
