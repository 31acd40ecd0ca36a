//! Evidence one connection puts on the wire that a finding of another connection needs:
//! a server offering STARTTLS (or completing TLS after it), a TLS attempt failing, an AUTH
//! failing. The analysis hands each one on at the moment it is on the wire, while its
//! connection may stay open for long, so that a later connection that closes first already
//! knows it (see [`super::correlate`]). The pipeline keeps it in capture order among the
//! finished flows, whatever the thread count.

use crate::findings::Kind;
use crate::flow::EventMeta;
use crate::report::model::EndpointRecord;
use crate::time::Timestamp;

/// The connection evidence comes from, as its record will name it when it finishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRef {
    /// The flow id (a hash of the capture file name, the key, the start and the first frame:
    /// all known from the first packet, so the id is the one the record gets at close).
    pub id: String,
    pub client: EndpointRecord,
    pub server: EndpointRecord,
    pub start: Timestamp,
    pub first_frame: u64,
}

/// What was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// The server listed STARTTLS in an EHLO reply, or completed a TLS handshake after it.
    StarttlsOffered,
    /// A TLS attempt failed or was refused: `tls_handshake_failure`, `tls_mode_mismatch` or
    /// `starttls_refused`.
    TlsFailed(Kind),
    /// An AUTH exchange failed; `auth` is the AUTH command (what the findings cite).
    AuthFailed { username: String, auth: EventMeta },
}

/// One piece of evidence and where it is in the capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub flow: FlowRef,
    /// The packet that carried it.
    pub meta: EventMeta,
    pub fact: Fact,
}
