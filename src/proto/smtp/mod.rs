//! SMTP dialog analysis (skeleton): replies, commands, capabilities, STARTTLS, AUTH,
//! transactions, and the SMTP findings.

use crate::findings::Finding;
use crate::flow::{Direction, EventMeta};
use crate::report::model::SmtpRecord;

/// What the session did with a chunk of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Every byte belonged to the SMTP dialog.
    Smtp,
    /// This direction switched to TLS: `data[offset..]` is the start of the TLS stream and
    /// every later byte of this direction belongs to TLS too.
    Upgrade { offset: usize },
}

/// One SMTP connection's dialog state.
#[derive(Debug, Default)]
pub struct SmtpSession {}

impl SmtpSession {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of one direction, in order.
    pub fn feed(&mut self, _dir: Direction, _data: &[u8], _meta: EventMeta) -> Feed {
        Feed::Smtp
    }

    /// `len` bytes of this direction are lost; resynchronise at the next line.
    pub fn gap(&mut self, _dir: Direction, _len: u64, _meta: EventMeta) {}

    /// The direction closed (FIN or RST).
    pub fn end(&mut self, _dir: Direction, _meta: EventMeta) {}

    /// The server spoke SMTP (a reply line such as `220 `) at least once.
    pub fn server_spoke_smtp(&self) -> bool {
        false
    }

    /// The client sent at least one SMTP command.
    pub fn client_spoke_smtp(&self) -> bool {
        false
    }

    /// STARTTLS was issued and answered 2xx (the flow's class becomes `starttls`).
    pub fn starttls_accepted(&self) -> bool {
        false
    }

    /// Host name announced in the banner (`220 mx.example.org ESMTP`), for certificate checks.
    pub fn banner_host(&self) -> Option<&str> {
        None
    }

    /// The contract view; secrets appear only when `reveal_secrets`.
    pub fn record(&self, _reveal_secrets: bool) -> SmtpRecord {
        SmtpRecord::default()
    }

    /// Findings so far (flow id not yet attached). Secrets appear only when `reveal_secrets`.
    pub fn findings(&self, _reveal_secrets: bool) -> Vec<Finding> {
        Vec::new()
    }
}
