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
    #[error("{path}: not a pcap or pcapng file")]
    NotACapture { path: String },
    #[error("{path}: truncated file header")]
    TruncatedHeader { path: String },
    #[error("{path}: {what} at byte {offset}")]
    Corrupt {
        path: String,
        offset: u64,
        what: String,
    },
}
