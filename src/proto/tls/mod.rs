//! TLS handshake analysis (skeleton): records, ClientHello/ServerHello, alerts, outcome,
//! fingerprints (JA3, JA3S, JA4), certificates, and the TLS findings.

use crate::findings::Finding;
use crate::flow::{Direction, EventMeta, Interest};
use crate::report::model::{HandshakeOutcome, TlsRecord};

/// What the TLS session knows about its surroundings.
#[derive(Clone, Debug, Default)]
pub struct TlsContext {
    /// TLS began after an SMTP STARTTLS (rather than from the first byte).
    pub starttls: bool,
    /// Host name the server announced in its SMTP banner, checked against the certificate
    /// when no SNI was sent.
    pub banner_host: Option<String>,
}

/// How a direction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndKind {
    Fin,
    Reset,
}

/// True when `data` starts like a TLS record (handshake, alert, ...) or an SSLv2-compatible
/// ClientHello; `None` when more bytes are needed to tell.
pub fn looks_like_tls(data: &[u8]) -> Option<bool> {
    let first = *data.first()?;
    if (20..=24).contains(&first) {
        let second = *data.get(1)?;
        return Some(second == 3);
    }
    if first & 0x80 != 0 {
        // SSLv2 record header: 2-byte length with the high bit set, then msg type 1 (CLIENT-HELLO).
        let msg = *data.get(2)?;
        return Some(msg == 1);
    }
    Some(false)
}

/// One TLS connection's handshake state.
#[derive(Debug)]
pub struct TlsSession {
    _ctx: TlsContext,
}

impl TlsSession {
    pub fn new(ctx: TlsContext) -> Self {
        TlsSession { _ctx: ctx }
    }

    /// Bytes of one direction, in order, from the first byte of TLS.
    pub fn feed(&mut self, _dir: Direction, _data: &[u8], _meta: EventMeta) -> Interest {
        Interest::Bytes
    }

    pub fn gap(&mut self, _dir: Direction, _len: u64, _meta: EventMeta) {}

    pub fn end(&mut self, _dir: Direction, _kind: EndKind, _meta: EventMeta) {}

    pub fn client_hello_seen(&self) -> bool {
        false
    }

    pub fn server_hello_seen(&self) -> bool {
        false
    }

    /// Outcome as of now; `Incomplete` until the handshake completes or fails.
    pub fn outcome(&self) -> HandshakeOutcome {
        HandshakeOutcome::Incomplete
    }

    /// The contract view.
    pub fn record(&self) -> TlsRecord {
        TlsRecord {
            version: None,
            cipher: None,
            sni: None,
            handshake: self.outcome(),
            alerts: Vec::new(),
            ja3: None,
            ja3s: None,
            ja4: None,
        }
    }

    /// Findings (flow id not yet attached).
    pub fn findings(&self) -> Vec<Finding> {
        Vec::new()
    }
}
